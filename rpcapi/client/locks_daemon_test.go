package client

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// lockFile creates path on m and opens it with flags.
func lockFile(t *testing.T, m *Mount, path string, flags uint32) (uint64, *Handle) {
	t.Helper()
	ctx := context.Background()
	ino, err := m.LookupPath(ctx, path)
	if errors.Is(err, syscall.ENOENT) {
		st, cerr := m.CreatePath(ctx, path, 0o644)
		noErr(t, "create "+path, cerr)
		ino, err = st.Ino, nil
	}
	noErr(t, "lookup "+path, err)
	h, _, err := m.Open(ctx, ino, flags)
	noErr(t, "open "+path, err)
	return ino, h
}

// wantLockErr fails t unless err is an *Error with errno and reason.
func wantLockErr(t *testing.T, what string, err error, errno syscall.Errno, reason string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Errno != errno || e.Reason != reason {
		t.Fatalf("%s: got %v, want %s (reason %q)", what, err, wire.ErrnoName(errno), reason)
	}
}

func setlk(m *Mount, h *Handle, typ LockType, start, length int64, owner string) error {
	_, err := m.Lock(context.Background(), h, SetLk, typ, start, length, owner)
	return err
}

// waitResult runs f in a goroutine and returns a channel of its result.
func waitResult(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// notYet fails t if ch delivers within d.
func notYet(t *testing.T, what string, ch <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned early: %v", what, err)
	case <-time.After(d):
	}
}

func within(t *testing.T, what string, ch <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s: no answer within %v", what, d)
		return nil
	}
}

// cancelUntil sends LockCancel for owner until it ends a wait (a cancel
// that overtakes the wait ends nothing).
func cancelUntil(t *testing.T, m *Mount, h *Handle, owner string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := m.LockCancel(context.Background(), h, owner)
		noErr(t, "lock_cancel", err)
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock_cancel of %q never ended a wait", owner)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two clients on one daemon: conflicts, getlk with the owner string,
// owners of one handle, open modes.
func TestDaemonLockConflicts(t *testing.T) {
	d := startHandleDaemon(t, 0)
	ctx := context.Background()
	_, a := dialMount(t, d.TCPAddr, alice)
	_, b := dialMount(t, d.UnixPath, alice)
	_, ha := lockFile(t, a, "/f", OpenReadWrite)
	ino, hb := lockFile(t, b, "/f", OpenReadWrite)

	noErr(t, "A write 0-99", setlk(a, ha, LockWrite, 0, 100, "smb:a1"))
	wantLockErr(t, "B read over A's write", setlk(b, hb, LockRead, 50, 10, "fuse:b1"), syscall.EAGAIN, "")
	info, err := b.Lock(ctx, hb, GetLk, LockRead, 50, 0, "fuse:b1")
	noErr(t, "getlk", err)
	if info == nil || *info != (LockInfo{Type: LockWrite, Start: 0, Len: 100, Owner: "smb:a1"}) {
		t.Fatalf("getlk: %+v", info)
	}
	noErr(t, "B read past A's lock", setlk(b, hb, LockRead, 100, 0, "fuse:b1"))
	info, err = a.Lock(ctx, ha, GetLk, LockWrite, 0, 0, "smb:a1")
	noErr(t, "getlk by A", err)
	if info == nil || *info != (LockInfo{Type: LockRead, Start: 100, Len: 0, Owner: "fuse:b1"}) {
		t.Fatalf("getlk by A: %+v", info)
	}
	// A read lock of another owner does not conflict with B's read.
	info, err = a.Lock(ctx, ha, GetLk, LockRead, 100, 10, "smb:a2")
	if err != nil || info != nil {
		t.Fatalf("getlk read over read: %+v %v", info, err)
	}
	// Two owners of one handle conflict; an owner never with itself.
	wantLockErr(t, "other owner, same handle", setlk(a, ha, LockWrite, 10, 1, "smb:a2"), syscall.EAGAIN, "")
	noErr(t, "same owner converts", setlk(a, ha, LockRead, 10, 10, "smb:a1"))
	noErr(t, "B reads the converted part", setlk(b, hb, LockRead, 12, 2, "fuse:b1"))
	// Unlock in the middle, then the hole is free.
	noErr(t, "B unlock", setlk(b, hb, LockUnlock, 0, 0, "fuse:b1"))
	noErr(t, "A unlock the middle", setlk(a, ha, LockUnlock, 40, 20, "smb:a1"))
	noErr(t, "B write in the hole", setlk(b, hb, LockWrite, 40, 20, "fuse:b1"))
	wantLockErr(t, "B write over A's head", setlk(b, hb, LockWrite, 39, 2, "fuse:b1"), syscall.EAGAIN, "")
	noErr(t, "unlock twice", setlk(b, hb, LockUnlock, 0, 0, "fuse:b1"))
	noErr(t, "unlock twice", setlk(b, hb, LockUnlock, 0, 0, "fuse:b1"))

	// Open modes: a write lock needs writing, a read lock reading; getlk
	// needs neither.
	hr, _, err := b.Open(ctx, ino, OpenReadOnly)
	noErr(t, "open ro", err)
	hw, _, err := b.Open(ctx, ino, OpenWriteOnly)
	noErr(t, "open wo", err)
	wantLockErr(t, "write lock on a read-only handle", setlk(b, hr, LockWrite, 500, 1, "x"), syscall.EBADF, "")
	wantLockErr(t, "read lock on a write-only handle", setlk(b, hw, LockRead, 500, 1, "x"), syscall.EBADF, "")
	noErr(t, "read lock on a read-only handle", setlk(b, hr, LockRead, 500, 1, "x"))
	noErr(t, "write lock on a write-only handle", setlk(b, hw, LockWrite, 600, 1, "x"))
	_, err = b.Lock(ctx, hr, GetLk, LockWrite, 0, 0, "x")
	noErr(t, "getlk on a read-only handle", err)
	// Bad requests.
	_, err = b.Lock(ctx, hr, GetLk, LockUnlock, 0, 0, "x")
	wantLockErr(t, "getlk of unlock", err, syscall.EINVAL, "")
	wantLockErr(t, "owner too long", setlk(b, hr, LockRead, 0, 1, string(make([]byte, 65))), syscall.EINVAL, "")
	wantLockErr(t, "past 2^63-1", setlk(b, hr, LockRead, maxLockOffset, 2, "x"), syscall.EINVAL, "")
	noErr(t, "the last byte", setlk(b, hr, LockRead, maxLockOffset, 1, "x"))
	d.Check(t)
}

// setlkw waits past the call timeout and wakes on the unlock; EDEADLK;
// lock_cancel; ctx's end.
func TestDaemonLockWait(t *testing.T) {
	d := startHandleDaemon(t, 0)
	ctx := context.Background()
	_, a := dialMount(t, d.TCPAddr, alice, WithCallTimeout(time.Second))
	_, b := dialMount(t, d.TCPAddr, alice, WithCallTimeout(time.Second))
	_, ha := lockFile(t, a, "/f1", OpenReadWrite)
	_, hb := lockFile(t, b, "/f1", OpenReadWrite)
	_, ha2 := lockFile(t, a, "/f2", OpenReadWrite)
	_, hb2 := lockFile(t, b, "/f2", OpenReadWrite)

	// Waits past the call timeout, wakes on the unlock.
	noErr(t, "A write", setlk(a, ha, LockWrite, 0, 0, "a"))
	w := waitResult(func() error {
		_, err := b.Lock(ctx, hb, SetLkW, LockRead, 10, 10, "b")
		return err
	})
	notYet(t, "setlkw", w, 1500*time.Millisecond)
	noErr(t, "A unlock", setlk(a, ha, LockUnlock, 0, 0, "a"))
	noErr(t, "setlkw after the unlock", within(t, "setlkw", w, 5*time.Second))
	wantLockErr(t, "A write over B's granted read", setlk(a, ha, LockWrite, 15, 1, "a"), syscall.EAGAIN, "")
	noErr(t, "B unlock", setlk(b, hb, LockUnlock, 0, 0, "b"))

	// EDEADLK. An owner is (mount, handle, owner string) and a handle is
	// one file, so a cycle of owners is on one file: A holds 0-9 and
	// waits for 10-19, which B holds; B asks for 0-9.
	noErr(t, "A holds 0-9", setlk(a, ha, LockWrite, 0, 10, "x"))
	noErr(t, "B holds 10-19", setlk(b, hb, LockWrite, 10, 10, "y"))
	wa := waitResult(func() error {
		_, err := a.Lock(ctx, ha, SetLkW, LockWrite, 10, 10, "x")
		return err
	})
	notYet(t, "A waits for B", wa, 300*time.Millisecond)
	_, err := b.Lock(ctx, hb, SetLkW, LockWrite, 0, 10, "y")
	wantLockErr(t, "B waits for A", err, syscall.EDEADLK, "")
	// Another owner of B's handle is not in the cycle: it just waits.
	wb := waitResult(func() error {
		_, err := b.Lock(ctx, hb, SetLkW, LockWrite, 0, 10, "y2")
		return err
	})
	notYet(t, "B's other owner waits", wb, 300*time.Millisecond)
	noErr(t, "B unlocks", setlk(b, hb, LockUnlock, 0, 0, "y"))
	noErr(t, "A's wait granted", within(t, "A's wait", wa, 5*time.Second))
	// lock_cancel ends a wait with EINTR.
	cancelUntil(t, b, hb, "y2")
	wantLockErr(t, "cancelled wait", within(t, "B's wait", wb, 5*time.Second), syscall.EINTR, "")
	noErr(t, "A unlocks", setlk(a, ha, LockUnlock, 0, 0, "x"))

	// Files are independent: locks on f2 do not see f1's.
	noErr(t, "A holds f2", setlk(a, ha2, LockWrite, 0, 0, "x"))
	noErr(t, "B holds f1", setlk(b, hb, LockWrite, 0, 0, "x"))

	// ctx's end cancels the wait; nothing is held afterwards.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, err = b.Lock(cctx, hb2, SetLkW, LockRead, 0, 0, "c")
	cancel()
	wantLockErr(t, "wait past ctx", err, syscall.ETIMEDOUT, ReasonTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("not DeadlineExceeded: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("cancelled wait took %v", el)
	}
	noErr(t, "A unlocks f2", setlk(a, ha2, LockUnlock, 0, 0, "x"))
	noErr(t, "a third owner writes f2: the cancelled wait holds nothing", setlk(a, ha2, LockWrite, 0, 0, "z"))
	if n, err := b.LockCancel(ctx, hb2, "c"); err != nil || n != 0 {
		t.Fatalf("lock_cancel with no wait: %d %v", n, err)
	}
	d.Check(t)
}

// Closing a handle and unmounting release its locks (and end its waits
// with EBADF).
func TestDaemonLockRelease(t *testing.T) {
	d := startHandleDaemon(t, 0)
	ctx := context.Background()
	ca, a := dialMount(t, d.TCPAddr, alice)
	_, b := dialMount(t, d.TCPAddr, alice)
	ino, ha := lockFile(t, a, "/f", OpenReadWrite)
	_, hb := lockFile(t, b, "/f", OpenReadWrite)

	noErr(t, "A write", setlk(a, ha, LockWrite, 0, 100, "a"))
	noErr(t, "A flock", a.Flock(ctx, ha, FlockExclusive, true))
	wantLockErr(t, "B write", setlk(b, hb, LockWrite, 0, 1, "b"), syscall.EAGAIN, "")
	wantLockErr(t, "B flock", b.Flock(ctx, hb, FlockShared, true), syscall.EAGAIN, "")
	noErr(t, "A closes", ha.Close(ctx))
	noErr(t, "B write after A's close", setlk(b, hb, LockWrite, 0, 1, "b"))
	noErr(t, "B flock after A's close", b.Flock(ctx, hb, FlockShared, true))

	// A wait of a handle that closes ends with EBADF.
	ha2, _, err := a.Open(ctx, ino, OpenReadWrite)
	noErr(t, "open again", err)
	w := waitResult(func() error {
		_, err := a.Lock(ctx, ha2, SetLkW, LockWrite, 0, 0, "a")
		return err
	})
	notYet(t, "A's wait", w, 300*time.Millisecond)
	noErr(t, "close under the wait", ha2.Close(ctx))
	wantLockErr(t, "wait of a closed handle", within(t, "A's wait", w, 5*time.Second), syscall.EBADF, "")

	// Unmount releases.
	ha3, _, err := a.Open(ctx, ino, OpenReadWrite)
	noErr(t, "open again", err)
	noErr(t, "B unlock", setlk(b, hb, LockUnlock, 0, 0, "b"))
	noErr(t, "A write again", setlk(a, ha3, LockWrite, 0, 0, "a"))
	wantLockErr(t, "B write", setlk(b, hb, LockWrite, 50, 1, "b"), syscall.EAGAIN, "")
	noErr(t, "A unmounts", a.Unmount(ctx))
	noErr(t, "B write after A's unmount", setlk(b, hb, LockWrite, 50, 1, "b"))
	if ca.LostLocks() != 0 {
		t.Fatalf("LostLocks %d", ca.LostLocks())
	}
	d.Check(t)
}

// flock: shared with shared, exclusive against both, conversions,
// nonblock and waiting, independent of POSIX locks and of the open mode.
func TestDaemonFlock(t *testing.T) {
	d := startHandleDaemon(t, 0)
	ctx := context.Background()
	_, a := dialMount(t, d.TCPAddr, alice)
	_, b := dialMount(t, d.UnixPath, alice)
	ino, ha := lockFile(t, a, "/f", OpenReadOnly)
	hb, _, err := b.Open(ctx, ino, OpenReadOnly)
	noErr(t, "open", err)

	noErr(t, "A shared", a.Flock(ctx, ha, FlockShared, true))
	noErr(t, "B shared", b.Flock(ctx, hb, FlockShared, true))
	wantLockErr(t, "B exclusive", b.Flock(ctx, hb, FlockExclusive, true), syscall.EAGAIN, "")
	// The failed conversion kept B's shared lock.
	wantLockErr(t, "A exclusive", a.Flock(ctx, ha, FlockExclusive, true), syscall.EAGAIN, "")
	noErr(t, "POSIX locks do not see flock", setlk(a, ha, LockRead, 0, 0, "p"))
	noErr(t, "A unlock", a.Flock(ctx, ha, FlockUnlock, false))
	noErr(t, "B converts (read-only handle)", b.Flock(ctx, hb, FlockExclusive, true))
	w := waitResult(func() error { return a.Flock(ctx, ha, FlockShared, false) })
	notYet(t, "A's flock wait", w, 300*time.Millisecond)
	noErr(t, "B unlock", b.Flock(ctx, hb, FlockUnlock, true))
	noErr(t, "A's flock granted", within(t, "A's flock", w, 5*time.Second))
	wantLockErr(t, "B exclusive", b.Flock(ctx, hb, FlockExclusive, true), syscall.EAGAIN, "")

	// lock_cancel with owner "" ends a flock wait.
	w = waitResult(func() error { return b.Flock(ctx, hb, FlockExclusive, false) })
	notYet(t, "B's flock wait", w, 300*time.Millisecond)
	cancelUntil(t, b, hb, "")
	wantLockErr(t, "cancelled flock wait", within(t, "B's flock", w, 5*time.Second), syscall.EINTR, "")
	noErr(t, "B shared", b.Flock(ctx, hb, FlockShared, true))
	d.Check(t)
}

// Across kill -9: A's locks are reclaimed by its first call after the
// restart; B, during the grace, is refused (retried internally) and then
// gets the conflict; B's setlkw waits for A's unlock.
func TestDaemonLockReclaim(t *testing.T) {
	const grace = 3 * time.Second
	d := startHandleDaemon(t, grace)
	ctx := context.Background()
	bo := WithBackoff(5*time.Millisecond, 100*time.Millisecond)
	ca, a := dialMount(t, d.TCPAddr, alice, bo)
	_, b := dialMount(t, d.TCPAddr, alice, bo, WithCallTimeout(20*time.Second))
	ino, ha := lockFile(t, a, "/f", OpenReadWrite)
	_, hb := lockFile(t, b, "/f", OpenReadWrite)

	noErr(t, "A write 0-99", setlk(a, ha, LockWrite, 0, 100, "a"))
	noErr(t, "A read 200-", setlk(a, ha, LockRead, 200, 0, "a"))
	noErr(t, "A flock", a.Flock(ctx, ha, FlockExclusive, true))
	fh0 := ha.Fh()

	d.Kill()
	d.Restart()
	restarted := time.Now()
	// A's first call notices the restart: remount, reopen, reclaim.
	_, err := a.GetStat(ctx, ino)
	noErr(t, "A's call after the restart", err)
	if ha.Fh() == fh0 {
		t.Fatalf("handle not reopened")
	}
	if time.Since(restarted) > grace {
		t.Skip("A's reclaim took longer than reclaim_grace on this machine")
	}

	// B: refused for the grace (retried), then the conflict.
	_, err = b.Lock(ctx, hb, SetLk, LockWrite, 50, 10, "b")
	elapsed := time.Since(restarted)
	wantLockErr(t, "B in the grace, then against A's reclaimed lock", err, syscall.EAGAIN, "")
	if elapsed < grace-500*time.Millisecond {
		t.Fatalf("B's setlk answered after %v, within the grace of %v", elapsed, grace)
	}
	info, err := b.Lock(ctx, hb, GetLk, LockWrite, 0, 0, "b")
	noErr(t, "getlk", err)
	if info == nil || *info != (LockInfo{Type: LockWrite, Start: 0, Len: 100, Owner: "a"}) {
		t.Fatalf("getlk after the reclaim: %+v", info)
	}
	noErr(t, "B read between A's ranges", setlk(b, hb, LockRead, 100, 100, "b"))
	wantLockErr(t, "B write over A's read", setlk(b, hb, LockWrite, 300, 1, "b"), syscall.EAGAIN, "")
	wantLockErr(t, "B flock", b.Flock(ctx, hb, FlockShared, true), syscall.EAGAIN, "")

	// B's setlkw waits until A unlocks.
	w := waitResult(func() error {
		_, err := b.Lock(ctx, hb, SetLkW, LockWrite, 0, 10, "b2")
		return err
	})
	notYet(t, "B's setlkw", w, 300*time.Millisecond)
	noErr(t, "A unlocks 0-49", setlk(a, ha, LockUnlock, 0, 50, "a"))
	noErr(t, "B's setlkw granted", within(t, "B's setlkw", w, 5*time.Second))
	noErr(t, "A unlocks", setlk(a, ha, LockUnlock, 0, 0, "a"))
	noErr(t, "B write over A's old read", setlk(b, hb, LockWrite, 300, 1, "b"))
	if ca.LostLocks() != 0 {
		t.Fatalf("A lost %d locks", ca.LostLocks())
	}
	d.Check(t)
}

// A lock whose holder comes back after the grace is lost: B took it.
func TestDaemonLockLost(t *testing.T) {
	const grace = 2 * time.Second
	d := startHandleDaemon(t, grace)
	ctx := context.Background()
	bo := WithBackoff(5*time.Millisecond, 100*time.Millisecond)
	ca, a := dialMount(t, d.TCPAddr, alice, bo)
	cb, b := dialMount(t, d.TCPAddr, alice, bo, WithCallTimeout(20*time.Second))
	ino, ha := lockFile(t, a, "/f", OpenReadWrite)
	_, hb := lockFile(t, b, "/f", OpenReadWrite)
	noErr(t, "A write", setlk(a, ha, LockWrite, 0, 0, "a"))
	noErr(t, "A flock", a.Flock(ctx, ha, FlockShared, true))

	d.Kill()
	d.Restart()
	// A stays idle; B's setlk is refused for the grace, then granted.
	noErr(t, "B write after the grace", setlk(b, hb, LockWrite, 0, 10, "b"))
	// A's reclaims fail: the write conflicts with B's (or the grace is
	// over: no_grace); the flock fails with no_grace.
	_, err := a.GetStat(ctx, ino)
	noErr(t, "A's call after the grace", err)
	if got := ca.LostLocks(); got != 2 {
		t.Fatalf("A lost %d locks, want 2", got)
	}
	if got := posixOf(ha); len(got) != 0 || flockOf(ha) != FlockUnlock {
		t.Fatalf("A still records %v, flock %v", got, flockOf(ha))
	}
	wantLockErr(t, "A write against B", setlk(a, ha, LockWrite, 5, 1, "a"), syscall.EAGAIN, "")
	noErr(t, "A write past B", setlk(a, ha, LockWrite, 10, 0, "a"))
	if cb.LostLocks() != 0 {
		t.Fatalf("B lost %d", cb.LostLocks())
	}
	d.Check(t)
}
