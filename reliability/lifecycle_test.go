package reliability

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// TestSIGTERMKeepsAcknowledged writes from several goroutines while the
// daemon gets SIGTERM: it must exit 0 after draining, and every write
// acknowledged before it went away must be there after a restart.
func TestSIGTERMKeepsAcknowledged(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info"})
	c, m := dialMount(t, d.TCPAddr)
	ctx := context.Background()
	f, err := m.CreatePath(ctx, "/f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	const workers, block = 8, 64 << 10
	block0 := func(w, i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("w%02d-i%05d;", w, i)), block/11+1)[:block]
	}
	wctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	acked := map[int64][]byte{} // offset -> data
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				off := int64(i*workers+w) * block
				data := block0(w, i)
				if _, err := m.Write(wctx, f.Ino, data, uint64(off)); err != nil {
					return
				}
				mu.Lock()
				acked[off] = data
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	d.Stop() // SIGTERM; fails the test unless the daemon exits 0
	cancel()
	wg.Wait()
	c.Close()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before SIGTERM")
	}
	d.Check(t)
	d.Restart()
	c, m = dialMount(t, d.TCPAddr)
	defer c.Close()
	buf := make([]byte, block)
	for off, want := range acked {
		n, err := m.Read(ctx, f.Ino, buf, uint64(off))
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("block at %d after SIGTERM and restart: %d bytes, %v", off, n, err)
		}
	}
	t.Logf("%d writes acknowledged before SIGTERM, all present after restart", len(acked))
}
