package local

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// TestCloseRacesSync runs Commit, Sync and SyncData against Close, over
// and over: Close used to take commitMu then walMu while syncWAL takes
// walMu then commitMu, and a flush racing Close hung for good.
func TestCloseRacesSync(t *testing.T) {
	iters := 200
	if testing.Short() {
		iters = 50
	}
	for i := 0; i < iters; i++ {
		b := openT(t, t.TempDir(), tuning{})
		ctx := context.Background()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					// Errors are expected once Close has begun.
					k := fmt.Sprintf("k%d-%d", g, n)
					_ = b.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{putOp(k, "v")}})
					if g%2 == 0 {
						_ = b.SyncData(ctx, vfsbackend.Ino(1000+g))
					} else {
						_ = b.Sync(ctx)
					}
				}
			}(g)
		}
		time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		done := make(chan error, 1)
		go func() { done <- b.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("iteration %d: Close: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("iteration %d: Close hung (lock-order deadlock with a racing sync)", i)
		}
		close(stop)
		wg.Wait()
	}
}
