package lock

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestGrace checks the grace period after a restart: only reclaims are
// granted, a non-reclaim SetLk or non-blocking Flock gets ErrGrace
// (EAGAIN), a blocking one waits for the end, GetLk answers from the
// reclaimed locks, unlocking works, and a reclaim after the end is
// ErrNoGrace (ENOLCK).
func TestGrace(t *testing.T) {
	c := newFakeClock()
	m := newManager(Options{GraceUntil: c.Now().Add(90 * time.Second)}, c.Now, c.afterFunc)
	if !m.InGrace() {
		t.Fatal("not in grace")
	}
	reclaim := func(r Request) Request { r.Reclaim = true; return r }

	if err := m.SetLk(rq(fileA, ownA, Write, 0, 10)); !errors.Is(err, ErrGrace) || errnoOf(err) != syscall.EAGAIN {
		t.Fatalf("non-reclaim SetLk in grace: %v", err)
	}
	if r := Reason(m.SetLk(rq(fileA, ownA, Write, 0, 10))); r != "grace" {
		t.Fatalf("Reason = %q", r)
	}
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownA, Type: Read, NonBlock: true}); !errors.Is(err, ErrGrace) {
		t.Fatalf("non-reclaim flock NB in grace: %v", err)
	}
	if err := m.SetLk(reclaim(rq(fileA, ownA, Write, 0, 10))); err != nil {
		t.Fatalf("reclaim: %v", err)
	}
	if err := m.SetLk(reclaim(rq(fileA, ownB, Read, 5, 10))); errnoOf(err) != syscall.EAGAIN || errors.Is(err, ErrGrace) {
		t.Fatalf("conflicting reclaim: %v, want a plain EAGAIN", err)
	}
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownB, Type: Write, Reclaim: true}); err != nil {
		t.Fatalf("flock reclaim: %v", err)
	}
	if l, err := m.GetLk(rq(fileA, ownC, Read, 0, 0)); err != nil || l.Owner != ownA {
		t.Fatalf("GetLk in grace: %+v, %v", l, err)
	}
	// Unlocking is not refused.
	if err := m.SetLk(reclaim(rq(fileA, ownA, Write, 20, 10))); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLk(rq(fileA, ownA, Unlock, 20, 10)); err != nil {
		t.Fatalf("unlock in grace: %v", err)
	}

	// Blocking requests wait for the end, then for the reclaimed lock.
	free := async(func() error { return m.SetLkW(bg, rq(fileA, ownC, Write, 100, 10)) })
	blocked := async(func() error { return m.SetLkW(bg, rq(fileA, ownD, Read, 0, 1)) })
	fl := async(func() error { return m.Flock(bg, FlockRequest{Key: fileB, Owner: ownC, Type: Write}) })
	ctx, stop := context.WithCancel(bg)
	cancelled := async(func() error { return m.SetLkW(ctx, rq(fileB, ownD, Read, 0, 1)) })
	pending(t, "SetLkW in grace", free)
	stop()
	if err := result(t, "cancelled", cancelled); errnoOf(err) != syscall.EINTR {
		t.Fatalf("cancelled wait for the grace: %v", err)
	}
	c.advance(89 * time.Second)
	pending(t, "SetLkW before the end", free)
	c.advance(time.Second)
	if m.InGrace() {
		t.Fatal("still in grace")
	}
	if err := result(t, "free", free); err != nil {
		t.Fatal(err)
	}
	if err := result(t, "flock", fl); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, m, 1)
	pending(t, "blocked", blocked)
	m.ReleaseOwner(fileA, ownA)
	if err := result(t, "blocked", blocked); err != nil {
		t.Fatal(err)
	}

	if err := m.SetLk(reclaim(rq(fileA, ownA, Write, 50, 1))); !errors.Is(err, ErrNoGrace) || errnoOf(err) != syscall.ENOLCK {
		t.Fatalf("reclaim after grace: %v", err)
	}
	if r := Reason(m.SetLk(reclaim(rq(fileA, ownA, Write, 50, 1)))); r != "no_grace" {
		t.Fatalf("Reason = %q", r)
	}
	if r := Reason(m.SetLk(rq(fileA, ownB, Write, 100, 1))); r != "" {
		t.Fatalf("Reason of a conflict = %q", r)
	}
	if err := m.Flock(bg, FlockRequest{Key: fileB, Owner: ownA, Type: Read, Reclaim: true}); !errors.Is(err, ErrNoGrace) {
		t.Fatalf("flock reclaim after grace: %v", err)
	}
	if err := m.SetLk(rq(fileA, ownA, Write, 50, 1)); err != nil {
		t.Fatalf("after grace: %v", err)
	}
}

// TestGraceEnds checks EndGrace, a grace deadline read from the clock
// without its timer, and that a past or zero GraceUntil means no grace.
func TestGraceEnds(t *testing.T) {
	c := newFakeClock()
	m := newManager(Options{GraceUntil: c.Now().Add(time.Minute)}, c.Now, c.afterFunc)
	w := async(func() error { return m.SetLkW(bg, rq(fileA, ownA, Write, 0, 0)) })
	pending(t, "in grace", w)
	m.EndGrace()
	m.EndGrace()
	if err := result(t, "after EndGrace", w); err != nil {
		t.Fatal(err)
	}

	m = newManager(Options{GraceUntil: c.Now().Add(time.Minute)}, c.Now, func(time.Duration, func()) stopper { return &fakeTimer{} })
	c.advance(time.Minute) // the timer never fires; the clock decides
	if m.InGrace() {
		t.Fatal("in grace after the deadline")
	}
	if err := m.SetLk(rq(fileA, ownA, Write, 0, 0)); err != nil {
		t.Fatal(err)
	}

	for _, until := range []time.Time{{}, c.Now().Add(-time.Second)} {
		m = newManager(Options{GraceUntil: until}, c.Now, c.afterFunc)
		if m.InGrace() {
			t.Fatalf("GraceUntil %v: in grace", until)
		}
		m.Close()
	}
}

// TestGraceWaitEnds checks that a wait for the grace to end is ended by
// Cancel (EINTR, counted) and by the release of its handle or mount
// (EBADF), as a queued wait is, and that an ended one takes no lock when
// the grace ends.
func TestGraceWaitEnds(t *testing.T) {
	c := newFakeClock()
	m := newManager(Options{GraceUntil: c.Now().Add(time.Minute)}, c.Now, c.afterFunc)
	posix := async(func() error { return m.SetLkW(bg, rq(fileA, ownA, Write, 0, 10)) })
	fl := async(func() error { return m.Flock(bg, FlockRequest{Key: fileB, Owner: ownA, Type: Write}) })
	byHandle := async(func() error { return m.SetLkW(bg, rq(fileA, ownB, Read, 0, 1)) })
	byMount := async(func() error { return m.Flock(bg, FlockRequest{Key: fileA, Owner: ownC, Type: Read}) })
	ownE := Owner{Mount: 3, Handle: 1, ID: "e"}
	kept := async(func() error { return m.SetLkW(bg, rq(fileA, ownE, Read, 50, 1)) })
	pending(t, "SetLkW in grace", posix)
	for m.graceWaitCount() < 5 {
		time.Sleep(time.Millisecond)
	}
	if n := m.Cancel(ownA); n != 2 {
		t.Fatalf("Cancel ended %d grace waits, want 2", n)
	}
	for _, w := range []<-chan error{posix, fl} {
		if err := result(t, "cancelled", w); errnoOf(err) != syscall.EINTR {
			t.Fatalf("cancelled grace wait: %v", err)
		}
	}
	m.ReleaseHandle(ownB.Mount, ownB.Handle)
	if err := result(t, "released handle", byHandle); errnoOf(err) != syscall.EBADF {
		t.Fatalf("grace wait of a released handle: %v", err)
	}
	m.ReleaseMount(ownC.Mount)
	if err := result(t, "released mount", byMount); errnoOf(err) != syscall.EBADF {
		t.Fatalf("grace wait of a released mount: %v", err)
	}
	pending(t, "kept", kept)
	c.advance(time.Minute)
	if err := result(t, "kept", kept); err != nil {
		t.Fatal(err)
	}
	if got := m.Locks(fileA); len(got) != 1 || got[0].Owner != ownE {
		t.Fatalf("locks after the grace: %+v", got)
	}
	if n := m.graceWaitCount(); n != 0 {
		t.Fatalf("%d grace waits left", n)
	}
}
