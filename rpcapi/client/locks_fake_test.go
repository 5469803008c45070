package client

// Tests of the lock calls' client machinery (grace retries, waits beyond
// the call timeout, cancellation, reclaims) against the fake server, with
// scripted lock answers. The real daemon's lock semantics are tested in
// locks_daemon_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// fakeLocks serves open, close, lock, flock and lock_cancel on a
// fakeServer: it records every call and answers lock and flock with the
// test's script (default: granted).
type fakeLocks struct {
	mu      sync.Mutex
	nextFh  uint64
	opens   []wire.OpenParams
	locks   []wire.LockParams
	flocks  []wire.FlockParams
	cancels []wire.LockCancelParams
	lock    func(ctx context.Context, p wire.LockParams) (any, error)
	flock   func(ctx context.Context, p wire.FlockParams) (any, error)
	// cancelled receives every lock_cancel.
	cancelled chan wire.LockCancelParams
}

func newFakeLocks(t *testing.T) (*fakeServer, *fakeLocks) {
	s := newFakeServer(t)
	f := &fakeLocks{nextFh: 100, cancelled: make(chan wire.LockCancelParams, 16)}
	s.extra = map[string]func(context.Context, json.RawMessage) (any, error){
		wire.MethodOpen: func(_ context.Context, raw json.RawMessage) (any, error) {
			var p wire.OpenParams
			_ = json.Unmarshal(raw, &p)
			f.mu.Lock()
			defer f.mu.Unlock()
			f.opens = append(f.opens, p)
			f.nextFh++
			return wire.OpenResult{Fh: f.nextFh, Stat: wire.Stat{Ino: p.Inode, Mode: syscall.S_IFREG | 0o644, Nlink: 1}}, nil
		},
		wire.MethodClose: func(context.Context, json.RawMessage) (any, error) { return wire.Empty{}, nil },
		wire.MethodLock: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var p wire.LockParams
			_ = json.Unmarshal(raw, &p)
			f.mu.Lock()
			f.locks = append(f.locks, p)
			script := f.lock
			f.mu.Unlock()
			if script != nil {
				return script(ctx, p)
			}
			if p.Cmd == wire.LockGetLk {
				return wire.LockResult{Type: wire.LockUnlock}, nil
			}
			return wire.Empty{}, nil
		},
		wire.MethodFlock: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var p wire.FlockParams
			_ = json.Unmarshal(raw, &p)
			f.mu.Lock()
			f.flocks = append(f.flocks, p)
			script := f.flock
			f.mu.Unlock()
			if script != nil {
				return script(ctx, p)
			}
			return wire.Empty{}, nil
		},
		wire.MethodLockCancel: func(_ context.Context, raw json.RawMessage) (any, error) {
			var p wire.LockCancelParams
			_ = json.Unmarshal(raw, &p)
			f.mu.Lock()
			f.cancels = append(f.cancels, p)
			f.mu.Unlock()
			select {
			case f.cancelled <- p:
			default:
			}
			return wire.LockCancelResult{Cancelled: 1}, nil
		},
	}
	return s, f
}

func (f *fakeLocks) setLock(script func(context.Context, wire.LockParams) (any, error)) {
	f.mu.Lock()
	f.lock = script
	f.mu.Unlock()
}

func (f *fakeLocks) setFlock(script func(context.Context, wire.FlockParams) (any, error)) {
	f.mu.Lock()
	f.flock = script
	f.mu.Unlock()
}

// takeLocks returns and forgets the lock calls received.
func (f *fakeLocks) takeLocks() []wire.LockParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.locks
	f.locks = nil
	return l
}

func (f *fakeLocks) takeFlocks() []wire.FlockParams {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.flocks
	f.flocks = nil
	return l
}

// fakeLockMount dials the fake with a short call timeout and opens a
// handle.
func fakeLockMount(t *testing.T, s *fakeServer, opts ...Option) (*Client, *Mount, *Handle) {
	t.Helper()
	opts = append([]Option{WithCallTimeout(400 * time.Millisecond), WithBackoff(time.Millisecond, 20*time.Millisecond)}, opts...)
	c, m := dialMount(t, s.addr(), alice, opts...)
	h, _, err := m.Open(context.Background(), 7, OpenReadWrite)
	noErr(t, "open", err)
	return c, m, h
}

// posixOf and flockOf return h's record of its locks.
func posixOf(h *Handle) map[string][]lockRange {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.posix)
}

func flockOf(h *Handle) FlockOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.flock
}

func shortGrace(t *testing.T) {
	old := graceRetryDelay
	graceRetryDelay = 50 * time.Millisecond
	t.Cleanup(func() { graceRetryDelay = old })
}

func TestFakeLockGraceRetry(t *testing.T) {
	shortGrace(t)
	s, f := newFakeLocks(t)
	_, m, h := fakeLockMount(t, s)
	ctx := context.Background()

	// Refused twice for the grace, then granted.
	n := 0
	f.setLock(func(_ context.Context, p wire.LockParams) (any, error) {
		if n++; n <= 2 {
			return nil, rpcErr(syscall.EAGAIN, wire.ReasonGrace)
		}
		return wire.Empty{}, nil
	})
	start := time.Now()
	_, err := m.Lock(ctx, h, SetLk, LockWrite, 0, 10, "o")
	noErr(t, "setlk in the grace", err)
	if got := len(f.takeLocks()); got != 3 {
		t.Fatalf("%d lock calls, want 3", got)
	}
	if d := time.Since(start); d < 2*graceRetryDelay {
		t.Fatalf("took %v, want the grace delay twice", d)
	}
	if got := posixOf(h)["o"]; !slices.Equal(got, []lockRange{{0, 9, LockWrite}}) {
		t.Fatalf("record %v", got)
	}

	// A grace that outlasts the call timeout: the refusal is returned.
	f.setLock(func(context.Context, wire.LockParams) (any, error) {
		return nil, rpcErr(syscall.EAGAIN, wire.ReasonGrace)
	})
	_, err = m.Lock(ctx, h, SetLk, LockRead, 100, 10, "o")
	var e *Error
	if !errors.As(err, &e) || e.Errno != syscall.EAGAIN || e.Reason != wire.ReasonGrace {
		t.Fatalf("setlk through the whole grace: %v", err)
	}
	if got := len(f.takeLocks()); got < 3 {
		t.Fatalf("only %d attempts in the call timeout", got)
	}
	// Flock nonblock is retried the same way.
	n = 0
	f.setFlock(func(context.Context, wire.FlockParams) (any, error) {
		if n++; n == 1 {
			return nil, rpcErr(syscall.EAGAIN, wire.ReasonGrace)
		}
		return wire.Empty{}, nil
	})
	noErr(t, "flock in the grace", m.Flock(ctx, h, FlockShared, true))
	if got := len(f.takeFlocks()); got != 2 || flockOf(h) != FlockShared {
		t.Fatalf("%d flock calls, record %v", got, flockOf(h))
	}

	// A conflict is the answer: not retried, nothing recorded.
	f.setLock(func(context.Context, wire.LockParams) (any, error) { return nil, rpcErr(syscall.EAGAIN, "") })
	_, err = m.Lock(ctx, h, SetLk, LockWrite, 50, 1, "o")
	if !errors.As(err, &e) || e.Errno != syscall.EAGAIN || e.Reason != "" {
		t.Fatalf("conflict: %v", err)
	}
	if got := len(f.takeLocks()); got != 1 {
		t.Fatalf("conflict sent %d times", got)
	}
	if got := posixOf(h)["o"]; !slices.Equal(got, []lockRange{{0, 9, LockWrite}}) {
		t.Fatalf("record after a conflict %v", got)
	}
}

func TestFakeLockParamsAndGetLk(t *testing.T) {
	s, f := newFakeLocks(t)
	_, m, h := fakeLockMount(t, s)
	ctx := context.Background()
	// A negative length is normalized, as fcntl's.
	_, err := m.Lock(ctx, h, SetLk, LockRead, 100, -10, "own")
	noErr(t, "negative len", err)
	got := f.takeLocks()
	want := wire.LockParams{MountID: m.MountID(), Fh: h.Fh(), Cmd: "setlk", Type: "read", Start: 90, Len: 10, Owner: "own"}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("sent %+v, want %+v", got, want)
	}
	_, err = m.Lock(ctx, h, SetLk, LockRead, 5, -10, "own")
	wantErrno(t, "range before 0", err, syscall.EINVAL)
	_, err = m.Lock(ctx, h, LockCmd(9), LockRead, 0, 0, "own")
	wantErrno(t, "bad cmd", err, syscall.EINVAL)

	info, err := m.Lock(ctx, h, GetLk, LockWrite, 0, 0, "own")
	if err != nil || info != nil {
		t.Fatalf("getlk without conflict: %v %v", info, err)
	}
	f.setLock(func(context.Context, wire.LockParams) (any, error) {
		s, l, o := int64(3), int64(0), "them"
		return wire.LockResult{Type: wire.LockRead, Start: &s, Len: &l, Owner: &o}, nil
	})
	info, err = m.Lock(ctx, h, GetLk, LockWrite, 0, 0, "own")
	if err != nil || info == nil || *info != (LockInfo{Type: LockRead, Start: 3, Len: 0, Owner: "them"}) {
		t.Fatalf("getlk: %+v %v", info, err)
	}
	if len(posixOf(h)) != 1 {
		t.Fatalf("getlk changed the record: %v", posixOf(h))
	}
	// Another mount's handle is EBADF, as is a closed one.
	_, m2 := dialMount(t, s.addr(), alice)
	_, err = m2.Lock(ctx, h, SetLk, LockRead, 0, 1, "x")
	wantErrno(t, "handle of another mount", err, syscall.EBADF)
	noErr(t, "close", h.Close(ctx))
	if posixOf(h) != nil {
		t.Fatalf("close kept the record %v", posixOf(h))
	}
	_, err = m.Lock(ctx, h, SetLk, LockRead, 0, 1, "x")
	wantErrno(t, "closed handle", err, syscall.EBADF)
	err = m.Flock(ctx, h, FlockShared, false)
	wantErrno(t, "flock on a closed handle", err, syscall.EBADF)
}

// A wait longer than the call timeout is answered; ctx's end cancels a
// wait, which reports what the server answered to the cancellation.
func TestFakeLockWait(t *testing.T) {
	s, f := newFakeLocks(t)
	_, m, h := fakeLockMount(t, s) // call timeout 400ms
	ctx := context.Background()

	f.setLock(func(ctx context.Context, p wire.LockParams) (any, error) {
		time.Sleep(time.Second)
		return wire.Empty{}, nil
	})
	_, err := m.Lock(ctx, h, SetLkW, LockWrite, 0, 0, "w")
	noErr(t, "setlkw waiting past the call timeout", err)
	if len(f.takeLocks()) != 1 || len(posixOf(h)["w"]) != 1 {
		t.Fatalf("record %v", posixOf(h))
	}

	// The server ends the wait with EINTR when cancelled.
	cancelEnds := func(answer error) func(context.Context, wire.LockParams) (any, error) {
		return func(ctx context.Context, p wire.LockParams) (any, error) {
			select {
			case <-f.cancelled:
				return wire.Empty{}, answer
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	f.setLock(cancelEnds(rpcErr(syscall.EINTR, "")))
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = m.Lock(cctx, h, SetLkW, LockRead, 100, 10, "r")
	cancel()
	wantErrno(t, "setlkw past ctx", err, syscall.ETIMEDOUT)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("not DeadlineExceeded: %v", err)
	}
	f.mu.Lock()
	cs := f.cancels
	f.mu.Unlock()
	if len(cs) != 1 || cs[0].Owner != "r" || cs[0].Fh != h.Fh() {
		t.Fatalf("cancels %+v", cs)
	}
	if _, ok := posixOf(h)["r"]; ok {
		t.Fatalf("cancelled wait recorded: %v", posixOf(h))
	}

	// The grant raced with the cancellation: the lock is held.
	f.setLock(cancelEnds(nil))
	cctx, cancel = context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = m.Lock(cctx, h, SetLkW, LockRead, 100, 10, "r")
	noErr(t, "granted as cancelled", err)
	if got := posixOf(h)["r"]; !slices.Equal(got, []lockRange{{100, 109, LockRead}}) {
		t.Fatalf("record %v", got)
	}

	// LockCancel from another goroutine ends the wait with EINTR (the
	// server's, not a context error).
	f.setLock(cancelEnds(rpcErr(syscall.EINTR, "")))
	done := make(chan error, 1)
	go func() {
		_, err := m.Lock(ctx, h, SetLkW, LockWrite, 200, 1, "q")
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	n, err := m.LockCancel(ctx, h, "q")
	if err != nil || n != 1 {
		t.Fatalf("LockCancel: %d %v", n, err)
	}
	err = <-done
	var e *Error
	if !errors.As(err, &e) || e.Errno != syscall.EINTR || e.Reason != "" || errors.Is(err, context.Canceled) {
		t.Fatalf("wait ended by LockCancel: %v", err)
	}

	// A cancellation that gets no answer within the call timeout.
	f.setLock(func(ctx context.Context, p wire.LockParams) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	cctx, cancel = context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = m.Lock(cctx, h, SetLkW, LockWrite, 300, 1, "z")
	wantErrno(t, "unanswered cancellation", err, syscall.EINTR)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("not Canceled: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

// A blocking flock conversion that is interrupted leaves no flock lock:
// the client releases it.
func TestFakeFlockInterruptedConversion(t *testing.T) {
	s, f := newFakeLocks(t)
	_, m, h := fakeLockMount(t, s)
	ctx := context.Background()
	noErr(t, "shared", m.Flock(ctx, h, FlockShared, false))
	f.setFlock(func(ctx context.Context, p wire.FlockParams) (any, error) {
		if p.Op == wire.FlockUnlock {
			return wire.Empty{}, nil
		}
		select {
		case <-f.cancelled:
			return nil, rpcErr(syscall.EINTR, "")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	f.takeFlocks()
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := m.Flock(cctx, h, FlockExclusive, false)
	cancel()
	wantErrno(t, "interrupted conversion", err, syscall.ETIMEDOUT)
	fl := f.takeFlocks()
	if len(fl) != 2 || fl[1].Op != wire.FlockUnlock || flockOf(h) != FlockUnlock {
		t.Fatalf("flocks %+v, record %v", fl, flockOf(h))
	}
	f.mu.Lock()
	cs := f.cancels
	f.mu.Unlock()
	if len(cs) != 1 || cs[0].Owner != "" {
		t.Fatalf("cancels %+v", cs)
	}
}

// After a restart the handle is opened again and every recorded lock
// re-taken with reclaim, before the call that noticed goes on; a lock
// that fails is lost and counted.
func TestFakeLockReclaim(t *testing.T) {
	s, f := newFakeLocks(t)
	c, m, h := fakeLockMount(t, s)
	ctx := context.Background()
	for _, l := range []struct {
		typ           LockType
		start, length int64
		owner         string
	}{
		{LockWrite, 0, 100, "a"},
		{LockUnlock, 40, 20, "a"}, // a: write 0-39, 60-99
		{LockRead, 1000, 0, "b"},  // b: read 1000-
		{LockRead, 10, 10, ""},    // "": read 10-19
		{LockUnlock, 0, 0, ""},    // "": nothing
	} {
		_, err := m.Lock(ctx, h, SetLk, l.typ, l.start, l.length, l.owner)
		noErr(t, "lock", err)
	}
	noErr(t, "flock", m.Flock(ctx, h, FlockExclusive, true))
	f.takeLocks()
	f.takeFlocks()

	s.restart()
	// b's reclaim fails: lost.
	f.setLock(func(_ context.Context, p wire.LockParams) (any, error) {
		if p.Owner == "b" {
			return nil, rpcErr(syscall.ENOLCK, wire.ReasonNoGrace)
		}
		return wire.Empty{}, nil
	})
	_, err := m.GetStatPath(ctx, "/nope")
	wantErrno(t, "call after the restart", err, syscall.ENOENT)
	mid := m.MountID()
	want := []wire.LockParams{
		{MountID: mid, Fh: h.Fh(), Cmd: "setlk", Type: "write", Start: 0, Len: 40, Owner: "a", Reclaim: true},
		{MountID: mid, Fh: h.Fh(), Cmd: "setlk", Type: "write", Start: 60, Len: 40, Owner: "a", Reclaim: true},
		{MountID: mid, Fh: h.Fh(), Cmd: "setlk", Type: "read", Start: 1000, Len: 0, Owner: "b", Reclaim: true},
	}
	if got := f.takeLocks(); !slices.Equal(got, want) {
		t.Fatalf("reclaims\n got %+v\nwant %+v", got, want)
	}
	wantF := []wire.FlockParams{{MountID: mid, Fh: h.Fh(), Op: "exclusive", NonBlock: true, Reclaim: true}}
	if got := f.takeFlocks(); !slices.Equal(got, wantF) {
		t.Fatalf("flock reclaims %+v", got)
	}
	if c.LostLocks() != 1 {
		t.Fatalf("LostLocks %d, want 1", c.LostLocks())
	}
	if _, ok := posixOf(h)["b"]; ok || len(posixOf(h)["a"]) != 2 {
		t.Fatalf("record after reclaim %v", posixOf(h))
	}
	// The next restart reclaims what is left; the flock fails this time.
	f.setFlock(func(context.Context, wire.FlockParams) (any, error) { return nil, rpcErr(syscall.EAGAIN, "") })
	s.restart()
	_, err = m.GetStatPath(ctx, "/nope")
	wantErrno(t, "call after the second restart", err, syscall.ENOENT)
	if got := f.takeLocks(); len(got) != 2 {
		t.Fatalf("second reclaims %+v", got)
	}
	if c.LostLocks() != 2 || flockOf(h) != FlockUnlock {
		t.Fatalf("LostLocks %d flock %v", c.LostLocks(), flockOf(h))
	}
	// A handle that cannot be opened again loses all its locks.
	s.extra[wire.MethodOpen] = func(context.Context, json.RawMessage) (any, error) { return nil, rpcErr(syscall.ENOENT, "") }
	s.restart()
	_, err = m.GetStatPath(ctx, "/nope")
	wantErrno(t, "call after the third restart", err, syscall.ENOENT)
	if c.LostLocks() != 4 || posixOf(h) != nil {
		t.Fatalf("LostLocks %d record %v", c.LostLocks(), posixOf(h))
	}
}

// A wait whose connection breaks (the daemon restarted) is sent again
// after the remount and its reclaims.
func TestFakeLockWaitAcrossRestart(t *testing.T) {
	s, f := newFakeLocks(t)
	_, m, h := fakeLockMount(t, s)
	ctx := context.Background()
	_, err := m.Lock(ctx, h, SetLk, LockRead, 0, 10, "held")
	noErr(t, "setlk", err)
	f.takeLocks()
	var mu sync.Mutex
	waits := 0
	started := make(chan struct{}, 4)
	f.setLock(func(ctx context.Context, p wire.LockParams) (any, error) {
		if p.Cmd != wire.LockSetLkW {
			return wire.Empty{}, nil
		}
		mu.Lock()
		waits++
		first := waits == 1
		mu.Unlock()
		started <- struct{}{}
		if first {
			<-ctx.Done() // the connection breaks
			return nil, ctx.Err()
		}
		return wire.Empty{}, nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := m.Lock(ctx, h, SetLkW, LockWrite, 50, 0, "w")
		done <- err
	}()
	<-started
	time.Sleep(600 * time.Millisecond) // past the call timeout
	s.restart()
	noErr(t, "setlkw across a restart", <-done)
	got := f.takeLocks()
	// setlkw (broken), reclaim of "held", setlkw again.
	if len(got) != 3 || got[1].Owner != "held" || !got[1].Reclaim || got[2].Cmd != "setlkw" || got[2].MountID == got[0].MountID {
		t.Fatalf("calls %+v", got)
	}
	if len(posixOf(h)) != 2 {
		t.Fatalf("record %v", posixOf(h))
	}
}
