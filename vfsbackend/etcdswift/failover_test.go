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

// TestDaemonFailoverLocks: locks move with a client that fails over.
// Client c holds a POSIX lock and a flock through gateway a (it knows b
// too); a is killed with -9 and c moves to b at once, while a's locks are
// still published under a's lease: b grants c's reclaims (the only
// conflicting locks are c's own, left on a), c's own lock left on a does
// not block c's new requests, and after a's lease expired another client
// on b still finds c's locks held (EAGAIN, F_GETLK names c's owner).
// Client c2 held a lock through a too but stays idle until a's lease
// expired and another owner took the range on b: its reclaim is refused
// and the lock counted lost.
func TestDaemonFailoverLocks(t *testing.T) {
	r := servers.Remote(uniqueName(t), 64<<10)
	const grace = time.Second
	a := startGatewayGrace(t, r, grace)
	b := startGatewayGrace(t, r, grace)
	dial := func() (*client.Client, *client.Mount) {
		c, err := client.Dial(ctx, a.TCPAddr, client.WithGateways(b.TCPAddr), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		m, err := c.Mount(ctx, "default", client.MountOptions{User: "root"})
		if err != nil {
			t.Fatal(err)
		}
		return c, m
	}
	c, m := dial()
	c2, m2 := dial()
	mb := mountRoot(t, b)
	st := writeFile(t, m, "locked", []byte("a file with locks"))
	st2 := writeFile(t, m, "lost", []byte("a lock to lose"))
	open := func(m *client.Mount, ino uint64) *client.Handle {
		t.Helper()
		h, _, err := m.Open(ctx, ino, client.OpenReadWrite)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h, hf := open(m, st.Ino), open(m, st.Ino)
	h2 := open(m2, st2.Ino)
	hb, hb2 := open(mb, st.Ino), open(mb, st2.Ino)
	if _, err := m.Lock(ctx, h, client.SetLk, client.LockWrite, 0, 100, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Flock(ctx, hf, client.FlockExclusive, true); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Lock(ctx, h2, client.SetLk, client.LockWrite, 0, 0, "q"); err != nil {
		t.Fatal(err)
	}

	a.Kill()
	killed := time.Now()
	// c's next call finds a dead and moves to b, reopening and reclaiming.
	if _, err := m.GetStat(ctx, st.Ino); err != nil {
		t.Fatal(err)
	}
	if n := c.LostLocks(); n != 0 {
		t.Fatalf("c lost %d locks moving to b", n)
	}
	// c's own lock left on a does not block c: a new lock of the same
	// owner over it, through b.
	if _, err := m.Lock(ctx, h, client.SetLk, client.LockWrite, 50, 100, "p1"); err != nil {
		t.Fatalf("c's lock over its own lock left on a: %v", err)
	}
	if d := time.Since(killed); d >= etcdswift.LeaseTTL {
		t.Fatalf("failover took %v, longer than a's lease (%v): the test shows nothing", d, etcdswift.LeaseTTL)
	}
	t.Logf("c moved to b and reclaimed its locks %v after the kill", time.Since(killed).Round(time.Millisecond))

	// Another owner takes c2's range on b once a's lease has expired.
	for {
		_, err := mb.Lock(ctx, hb2, client.SetLk, client.LockWrite, 0, 10, "other")
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EAGAIN) {
			t.Fatal(err)
		}
		if time.Since(killed) > etcdswift.LeaseTTL+10*time.Second {
			t.Fatal("c2's lock left on a still blocks 10 s after a's lease expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	d := time.Since(killed)
	if d < etcdswift.LeaseTTL-2*time.Second {
		t.Fatalf("c2's lock on a was released %v after the kill, before a's lease (%v) expired", d, etcdswift.LeaseTTL)
	}
	// c's locks are b's now: still held after a's lease expired.
	if _, err := mb.Lock(ctx, hb, client.SetLk, client.LockRead, 10, 1, "other"); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("a read lock over c's moved write lock: %v, want EAGAIN", err)
	}
	info, err := mb.Lock(ctx, hb, client.GetLk, client.LockWrite, 0, 0, "other")
	if err != nil || info == nil || info.Type != client.LockWrite || info.Owner != "p1" {
		t.Fatalf("F_GETLK after a's lease expired: %+v, %v; want c's write lock of p1", info, err)
	}
	if err := mb.Flock(ctx, hb, client.FlockShared, true); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("flock over c's moved flock: %v, want EWOULDBLOCK", err)
	}

	// c2 comes back now: its reclaim meets the other owner's lock.
	if _, err := m2.GetStat(ctx, st2.Ino); err != nil {
		t.Fatal(err)
	}
	if n := c2.LostLocks(); n != 1 {
		t.Fatalf("c2 lost %d locks; want 1 (another owner took the range)", n)
	}
	info, err = mb.Lock(ctx, hb2, client.GetLk, client.LockWrite, 0, 0, "probe")
	if err != nil || info == nil || info.Owner != "other" {
		t.Fatalf("F_GETLK on c2's file: %+v, %v; want the other owner's lock", info, err)
	}

	// c releases: the other client gets the range.
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Lock(ctx, hb, client.SetLk, client.LockWrite, 0, 0, "other"); err != nil {
		t.Fatalf("the range after c closed its handle: %v", err)
	}
	b.Check(t)
}
