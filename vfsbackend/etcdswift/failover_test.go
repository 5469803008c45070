package etcdswift_test

// Clients moving from a dead gateway to another (issue 18, phase 2).

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

// TestDaemonFailover: a Go client given two gateways' addresses works
// through the first; when that one is killed with -9 mid-workload, the
// client moves to the second: no call fails, every acknowledged file is
// there, a handle of an unlinked file is reopened there (reclaim) and
// still reads, and proxyfsd -check is clean.
func TestDaemonFailover(t *testing.T) {
	r := servers.Remote(uniqueName(t), 64<<10)
	const grace = time.Second
	a := startGatewayGrace(t, r, grace)
	b := startGatewayGrace(t, r, grace)
	c, err := client.Dial(ctx, a.TCPAddr, client.WithGateways(b.TCPAddr), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m, err := c.Mount(ctx, "default", client.MountOptions{User: "root"})
	if err != nil {
		t.Fatal(err)
	}
	kept := randBytes(70000, 9)
	st := writeFile(t, m, "kept-open", kept)
	h, _, err := m.Open(ctx, st.Ino, client.OpenReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.UnlinkPath(ctx, "kept-open"); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		files = map[string][]byte{}
		errs  []error
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		after int // files written after the kill
	)
	var killedAt time.Time
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("f%d-%d", g, n)
				data := randBytes(500+n%3000, uint64(g<<20+n))
				st, err := m.CreatePath(ctx, p, 0o644)
				if err == nil {
					_, err = m.Write(ctx, st.Ino, data, 0)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", p, err))
				} else {
					files[p] = data
					if !killedAt.IsZero() {
						after++
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	a.Kill()
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("a call failed: %v", err)
	}
	if after == 0 {
		t.Fatal("nothing was written after the gateway died")
	}
	t.Logf("%d files, %d written after the kill", len(files), after)

	// The handle of the unlinked file was reopened on b.
	got := make([]byte, len(kept)+1)
	if n, err := m.Read(ctx, h.Ino(), got, 0); err != nil || n != len(kept) || string(got[:n]) != string(kept) {
		t.Fatalf("read through the handle after failover: %d, %v", n, err)
	}
	mb := mountRoot(t, b)
	for p, data := range files {
		wantFile(t, mb, p, data)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The dead gateway's pin keeps it until its lease expires; then b's
	// sweep frees it after the grace.
	for {
		_, err := mb.GetStat(ctx, st.Ino)
		if errors.Is(err, syscall.ENOENT) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(killedAt); d > etcdswift.LeaseTTL+10*grace+10*time.Second {
			t.Fatalf("the unlinked file is still there %v after the kill and its last close", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Check(t)
}
