package lock

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestSetLkWGrantsAtOnce checks that a free range is granted without a
// wait, and that Unlock through SetLkW works.
func TestSetLkWGrantsAtOnce(t *testing.T) {
	m, _ := newTest(Options{})
	if err := m.SetLkW(bg, rq(fileA, ownA, Write, 0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLkW(bg, rq(fileA, ownB, Write, 10, 10)); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLkW(bg, rq(fileA, ownA, Unlock, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if got := heldOf(m.Locks(fileA)); len(got) != 1 || got[0].o != ownB {
		t.Fatalf("locks %v", got)
	}
}

// TestSetLkWWakeOrder checks that writers waiting for one range are
// granted one at a time in arrival order, each only when the previous
// unlocks (no thundering herd, no lost wake-up).
func TestSetLkWWakeOrder(t *testing.T) {
	m, _ := newTest(Options{})
	if err := m.SetLk(rq(fileA, ownA, Write, 0, 100)); err != nil {
		t.Fatal(err)
	}
	owners := []Owner{ownB, ownC, ownD}
	var chs []<-chan error
	for i, o := range owners {
		chs = append(chs, async(func() error { return m.SetLkW(bg, rq(fileA, o, Write, 10, 10)) }))
		waitQueued(t, m, i+1) // so that the arrival order is known
	}
	if err := m.SetLk(rq(fileA, ownA, Unlock, 0, 0)); err != nil {
		t.Fatal(err)
	}
	for i, o := range owners {
		if err := result(t, o.ID, chs[i]); err != nil {
			t.Fatalf("%s: %v", o.ID, err)
		}
		for _, later := range chs[i+1:] {
			pending(t, "later waiter", later)
		}
		if got := heldOf(m.Locks(fileA)); len(got) != 1 || got[0] != (held{o, Write, 10, 10}) {
			t.Fatalf("locks %v, want %s's", got, o.ID)
		}
		if err := m.SetLk(rq(fileA, o, Unlock, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if s := m.Stats(); s.Waiting != 0 || s.Files != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSetLkWWakeReaders checks that every waiting reader is granted on a
// writer's unlock, and that a waiting writer queued first does not hold
// back a reader whose range it does not block (no head-of-line blocking).
func TestSetLkWWakeReaders(t *testing.T) {
	m, _ := newTest(Options{})
	if err := m.SetLk(rq(fileA, ownA, Write, 0, 100)); err != nil {
		t.Fatal(err)
	}
	ownE := Owner{Mount: 3, ID: "e"}
	if err := m.SetLk(rq(fileA, ownE, Read, 200, 10)); err != nil {
		t.Fatal(err)
	}
	w := async(func() error { return m.SetLkW(bg, rq(fileA, ownD, Write, 0, 0)) }) // blocked by A and E
	waitQueued(t, m, 1)
	r1 := async(func() error { return m.SetLkW(bg, rq(fileA, ownB, Read, 0, 10)) })
	r2 := async(func() error { return m.SetLkW(bg, rq(fileA, ownC, Read, 50, 100)) })
	waitQueued(t, m, 3)
	if err := m.SetLk(rq(fileA, ownA, Unlock, 0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan error{r1, r2} {
		if err := result(t, "reader", ch); err != nil {
			t.Fatal(err)
		}
	}
	pending(t, "writer behind readers", w)
	m.ReleaseOwner(fileA, ownB)
	m.ReleaseOwner(fileA, ownE)
	pending(t, "writer behind one reader", w)
	m.ReleaseOwner(fileA, ownC)
	if err := result(t, "writer", w); err != nil {
		t.Fatal(err)
	}
	if got := heldOf(m.Locks(fileA)); len(got) != 1 || got[0] != (held{ownD, Write, 0, 0}) {
		t.Fatalf("locks %v", got)
	}
}

// TestSetLkWWokenByDowngradeAndSplit checks that a waiter is granted when
// the blocking lock is downgraded or partly unlocked, not only when it
// goes.
func TestSetLkWWokenByDowngradeAndSplit(t *testing.T) {
	m, _ := newTest(Options{})
	if err := m.SetLk(rq(fileA, ownA, Write, 0, 100)); err != nil {
		t.Fatal(err)
	}
	r := async(func() error { return m.SetLkW(bg, rq(fileA, ownB, Read, 10, 10)) })
	w := async(func() error { return m.SetLkW(bg, rq(fileA, ownC, Write, 50, 10)) })
	waitQueued(t, m, 2)
	if err := m.SetLk(rq(fileA, ownA, Read, 0, 30)); err != nil { // downgrade [0,30)
		t.Fatal(err)
	}
	if err := result(t, "reader", r); err != nil {
		t.Fatal(err)
	}
	pending(t, "writer", w)
	if err := m.SetLk(rq(fileA, ownA, Unlock, 40, 30)); err != nil { // split
		t.Fatal(err)
	}
	if err := result(t, "writer", w); err != nil {
		t.Fatal(err)
	}
	want := []held{{ownA, Read, 0, 30}, {ownB, Read, 10, 10}, {ownA, Write, 30, 10}, {ownC, Write, 50, 10}, {ownA, Write, 70, 30}}
	if got := heldOf(m.Locks(fileA)); !equalHeld(got, want) {
		t.Fatalf("locks %v, want %v", got, want)
	}
}

func equalHeld(a, b []held) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSetLkWCancel checks the three ways a wait ends without the lock:
// its context (EINTR matching the context's error), Cancel (EINTR), and
// a release of its handle (EBADF); each leaves no waiter behind and
// later unlocks grant nothing to it.
func TestSetLkWCancel(t *testing.T) {
	tests := []struct {
		name   string
		cancel func(m *Manager, stop context.CancelFunc)
		want   syscall.Errno
		ctxErr error
	}{
		{"context cancelled", func(m *Manager, stop context.CancelFunc) { stop() }, syscall.EINTR, context.Canceled},
		{"Cancel of the owner", func(m *Manager, stop context.CancelFunc) {
			if n := m.Cancel(ownB); n != 1 {
				panic("Cancel ended no wait")
			}
		}, syscall.EINTR, nil},
		{"handle released", func(m *Manager, stop context.CancelFunc) { m.ReleaseHandle(ownB.Mount, ownB.Handle) }, syscall.EBADF, nil},
		{"mount released", func(m *Manager, stop context.CancelFunc) { m.ReleaseMount(ownB.Mount) }, syscall.EBADF, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTest(Options{})
			if err := m.SetLk(rq(fileA, ownC, Write, 0, 0)); err != nil {
				t.Fatal(err)
			}
			ctx, stop := context.WithCancel(bg)
			defer stop()
			ch := async(func() error { return m.SetLkW(ctx, rq(fileA, ownB, Write, 0, 10)) })
			other := async(func() error { return m.SetLkW(bg, rq(fileA, ownD, Read, 5, 10)) })
			waitQueued(t, m, 2)
			tc.cancel(m, stop)
			err := result(t, "cancelled waiter", ch)
			if errnoOf(err) != tc.want || (tc.ctxErr != nil && !errors.Is(err, tc.ctxErr)) {
				t.Fatalf("wait: %v, want errno %d (%v)", err, tc.want, tc.ctxErr)
			}
			waitQueued(t, m, 1)
			pending(t, "other waiter", other)
			if err := m.SetLk(rq(fileA, ownC, Unlock, 0, 0)); err != nil {
				t.Fatal(err)
			}
			if err := result(t, "other waiter", other); err != nil {
				t.Fatal(err)
			}
			if got := heldOf(m.Locks(fileA)); len(got) != 1 || got[0].o != ownD {
				t.Fatalf("locks %v, want only d's", got)
			}
			if m.Cancel(ownB) != 0 {
				t.Fatal("Cancel found a wait after it ended")
			}
		})
	}
}

// TestSetLkWCancelledBefore checks that a wait with a context already done
// fails at once with EINTR, and one with a deadline ends at it.
func TestSetLkWCancelledBefore(t *testing.T) {
	m, _ := newTest(Options{})
	if err := m.SetLk(rq(fileA, ownA, Write, 0, 0)); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(bg)
	stop()
	if err := m.SetLkW(ctx, rq(fileA, ownB, Read, 0, 1)); errnoOf(err) != syscall.EINTR {
		t.Fatalf("done context: %v", err)
	}
	ctx, stop = context.WithTimeout(bg, 20*time.Millisecond)
	defer stop()
	if err := m.SetLkW(ctx, rq(fileA, ownB, Read, 0, 1)); errnoOf(err) != syscall.EINTR || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if s := m.Stats(); s.Waiting != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestDeadlock checks EDEADLK for cycles of two and three owners, on one
// file and across files, and that a chain without a cycle waits.
func TestDeadlock(t *testing.T) {
	type hold struct {
		k Key
		o Owner
	}
	type wait struct {
		k Key
		o Owner
	}
	tests := []struct {
		name  string
		holds []hold
		waits []wait // each waits; the last one is the request under test
		last  wait
		want  syscall.Errno
	}{
		{"two owners one file",
			[]hold{{fileA, ownA}, {fileA, ownB}}, []wait{{fileA, ownA}}, wait{fileA, ownB}, syscall.EDEADLK},
		{"two owners two files",
			[]hold{{fileA, ownA}, {fileB, ownB}}, []wait{{fileB, ownA}}, wait{fileA, ownB}, syscall.EDEADLK},
		{"three owners three files",
			[]hold{{fileA, ownA}, {fileB, ownB}, {fileC, ownC}}, []wait{{fileB, ownA}, {fileC, ownB}}, wait{fileA, ownC}, syscall.EDEADLK},
		{"chain without cycle waits",
			[]hold{{fileA, ownA}, {fileB, ownB}, {fileC, ownC}}, []wait{{fileB, ownA}, {fileC, ownB}}, wait{fileC, ownD}, 0},
	}
	// Ranges: holder o holds [10*i, 10*i+10) of its file, i by owner;
	// waits ask for the whole file.
	idx := map[Owner]int64{ownA: 0, ownB: 1, ownC: 2, ownD: 3}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTest(Options{})
			for _, h := range tc.holds {
				if err := m.SetLk(rq(h.k, h.o, Write, 10*idx[h.o], 10)); err != nil {
					t.Fatal(err)
				}
			}
			var chs []<-chan error
			for i, w := range tc.waits {
				chs = append(chs, async(func() error { return m.SetLkW(bg, rq(w.k, w.o, Write, 0, 0)) }))
				waitQueued(t, m, i+1)
			}
			last := async(func() error { return m.SetLkW(bg, rq(tc.last.k, tc.last.o, Write, 0, 0)) })
			if tc.want != 0 {
				if err := result(t, "last", last); errnoOf(err) != tc.want {
					t.Fatalf("last request: %v, want errno %d", err, tc.want)
				}
				if m.Stats().Deadlocks != 1 {
					t.Fatalf("stats %+v", m.Stats())
				}
			} else {
				waitQueued(t, m, len(tc.waits)+1)
				chs = append(chs, last)
			}
			// Releasing both mounts ends every wait, granted or EBADF.
			m.ReleaseMount(1)
			m.ReleaseMount(2)
			for _, ch := range chs {
				err := result(t, "waiter", ch)
				if err != nil && errnoOf(err) != syscall.EBADF {
					t.Fatalf("waiter: %v", err)
				}
			}
		})
	}
}

// TestCancelRacesGrant races a wait's cancellation with the unlock that
// grants it, many times: the wait must end either granted with the lock
// held, or with EINTR and nothing held, and never leave a waiter behind.
func TestCancelRacesGrant(t *testing.T) {
	m, _ := newTest(Options{})
	var granted, interrupted int
	for i := range 300 {
		if err := m.SetLk(rq(fileA, ownA, Write, 0, 0)); err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(bg)
		ch := async(func() error { return m.SetLkW(ctx, rq(fileA, ownB, Write, 0, 10)) })
		waitQueued(t, m, 1)
		go stop()
		if i%2 == 0 {
			m.Cancel(ownB)
		}
		if err := m.SetLk(rq(fileA, ownA, Unlock, 0, 0)); err != nil {
			t.Fatal(err)
		}
		err := result(t, "waiter", ch)
		holds := len(m.Locks(fileA)) == 1
		switch {
		case err == nil && holds:
			granted++
		case errnoOf(err) == syscall.EINTR && !holds:
			interrupted++
		default:
			t.Fatalf("wait %v, holds %v", err, holds)
		}
		m.ReleaseOwner(fileA, ownB)
		stop()
		if s := m.Stats(); s.Waiting != 0 || s.Files != 0 {
			t.Fatalf("left behind: %+v", s)
		}
	}
	t.Logf("granted %d, interrupted %d", granted, interrupted)
}

// TestDeadlockEdgesFollowGrants checks that the wait-for graph follows
// the locks: when a waiter is granted, the waiters it now blocks wait for
// it, so a cycle through it is detected.
func TestDeadlockEdgesFollowGrants(t *testing.T) {
	m, _ := newTest(Options{})
	if err := m.SetLk(rq(fileA, ownA, Write, 0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLk(rq(fileB, ownC, Write, 0, 10)); err != nil {
		t.Fatal(err)
	}
	b := async(func() error { return m.SetLkW(bg, rq(fileA, ownB, Write, 0, 10)) })
	waitQueued(t, m, 1)
	c := async(func() error { return m.SetLkW(bg, rq(fileA, ownC, Write, 0, 10)) })
	waitQueued(t, m, 2)
	m.ReleaseOwner(fileA, ownA) // b is granted; c now waits for b
	if err := result(t, "b", b); err != nil {
		t.Fatal(err)
	}
	ch := async(func() error { return m.SetLkW(bg, rq(fileB, ownB, Write, 0, 10)) })
	if err := result(t, "b's wait for c", ch); errnoOf(err) != syscall.EDEADLK {
		t.Fatalf("b waiting for c who waits for b: %v", err)
	}
	m.ReleaseOwner(fileA, ownB)
	if err := result(t, "c", c); err != nil {
		t.Fatal(err)
	}
}
