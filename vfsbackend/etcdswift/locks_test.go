package etcdswift_test

// Locks shared between gateways (issue 18, phase 2).

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

// TestDaemonLocksAcrossGateways: a lock taken through gateway a blocks a
// conflicting one through gateway b (F_SETLK fails, F_GETLK reports it,
// F_SETLKW waits until a releases it), compatible locks are granted, flock
// locks conflict across gateways too; and the locks of a gateway killed
// with -9 are released when its etcd lease expires.
func TestDaemonLocksAcrossGateways(t *testing.T) {
	r := servers.Remote(uniqueName(t), 64<<10)
	a := startGateway(t, r)
	b := startGateway(t, r)
	ma, mb := mountRoot(t, a), mountRoot(t, b)
	st := writeFile(t, ma, "f", []byte("locked file"))
	ha, _, err := ma.Open(ctx, st.Ino, client.OpenReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	hb, _, err := mb.Open(ctx, st.Ino, client.OpenReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ma.Lock(ctx, ha, client.SetLk, client.LockWrite, 0, 100, "pa"); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Lock(ctx, hb, client.SetLk, client.LockWrite, 50, 10, "pb"); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("conflicting write lock through b: %v, want EAGAIN", err)
	}
	if _, err := mb.Lock(ctx, hb, client.SetLk, client.LockRead, 99, 1, "pb"); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("conflicting read lock through b: %v, want EAGAIN", err)
	}
	info, err := mb.Lock(ctx, hb, client.GetLk, client.LockWrite, 0, 0, "pb")
	if err != nil || info == nil || info.Type != client.LockWrite || info.Start != 0 || info.Len != 100 || info.Owner != "pa" {
		t.Fatalf("F_GETLK through b: %+v, %v; want a's write lock [0,100) of pa", info, err)
	}
	if _, err := mb.Lock(ctx, hb, client.SetLk, client.LockWrite, 100, 50, "pb"); err != nil {
		t.Fatalf("a lock beside a's through b: %v", err)
	}
	// And a's lock is blocked by b's now.
	if _, err := ma.Lock(ctx, ha, client.SetLk, client.LockRead, 120, 1, "pa"); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("read lock through a over b's write lock: %v, want EAGAIN", err)
	}

	// F_SETLKW through b waits for a's unlock.
	done := make(chan error, 1)
	go func() {
		_, err := mb.Lock(ctx, hb, client.SetLkW, client.LockWrite, 0, 10, "pb")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("F_SETLKW through b returned %v while a holds the lock", err)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := ma.Lock(ctx, ha, client.SetLk, client.LockUnlock, 0, 0, "pa"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("F_SETLKW through b after a's unlock: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("F_SETLKW through b still waits 10s after a's unlock")
	}

	// flock.
	if err := ma.Flock(ctx, ha, client.FlockExclusive, true); err != nil {
		t.Fatal(err)
	}
	if err := mb.Flock(ctx, hb, client.FlockShared, true); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("flock shared through b while a holds it exclusive: %v, want EWOULDBLOCK", err)
	}

	// a dies holding its flock and a new POSIX lock: b gets both once a's
	// lease has expired.
	if _, err := ma.Lock(ctx, ha, client.SetLk, client.LockWrite, 1000, 0, "pa"); err != nil {
		t.Fatal(err)
	}
	a.Kill()
	killed := time.Now()
	if _, err := mb.Lock(ctx, hb, client.SetLkW, client.LockWrite, 2000, 10, "pb"); err != nil {
		t.Fatal(err)
	}
	if err := mb.Flock(ctx, hb, client.FlockExclusive, false); err != nil {
		t.Fatal(err)
	}
	d := time.Since(killed)
	if d < etcdswift.LeaseTTL-2*time.Second || d > etcdswift.LeaseTTL+10*time.Second {
		t.Errorf("the killed gateway's locks were released %v after the kill; its lease lives %v", d, etcdswift.LeaseTTL)
	}
	t.Logf("the killed gateway's locks were released %v after the kill", d.Round(100*time.Millisecond))
}
