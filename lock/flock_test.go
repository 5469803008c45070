package lock

import (
	"context"
	"errors"
	"syscall"
	"testing"
)

// fstep is one non-blocking Flock and the errno it must give.
type fstep struct {
	o    Owner
	t    Type
	want syscall.Errno
}

// TestFlockRules runs sequences of non-blocking Flock calls and checks
// each answer and the locks held after: shared and exclusive conflicts,
// conversion both ways, unlock, and that a failed conversion keeps the
// lock held before.
func TestFlockRules(t *testing.T) {
	tests := []struct {
		name  string
		steps []fstep
		want  []held
	}{
		{"shared shared", []fstep{{ownA, Read, 0}, {ownB, Read, 0}}, []held{{ownA, Read, 0, 0}, {ownB, Read, 0, 0}}},
		{"shared then exclusive", []fstep{{ownA, Read, 0}, {ownB, Write, syscall.EWOULDBLOCK}}, []held{{ownA, Read, 0, 0}}},
		{"exclusive then shared", []fstep{{ownA, Write, 0}, {ownB, Read, syscall.EWOULDBLOCK}}, []held{{ownA, Write, 0, 0}}},
		{"same owner again", []fstep{{ownA, Write, 0}, {ownA, Write, 0}}, []held{{ownA, Write, 0, 0}}},
		{"upgrade alone", []fstep{{ownA, Read, 0}, {ownA, Write, 0}}, []held{{ownA, Write, 0, 0}}},
		{"downgrade", []fstep{{ownA, Write, 0}, {ownA, Read, 0}, {ownB, Read, 0}}, []held{{ownA, Read, 0, 0}, {ownB, Read, 0, 0}}},
		{"failed upgrade keeps shared", []fstep{{ownA, Read, 0}, {ownB, Read, 0}, {ownA, Write, syscall.EWOULDBLOCK}}, []held{{ownA, Read, 0, 0}, {ownB, Read, 0, 0}}},
		{"unlock", []fstep{{ownA, Write, 0}, {ownA, Unlock, 0}, {ownB, Write, 0}}, []held{{ownB, Write, 0, 0}}},
		{"unlock of nothing", []fstep{{ownA, Unlock, 0}}, []held{}},
		{"other handle of same id conflicts", []fstep{{ownA, Write, 0}, {Owner{Mount: 1, Handle: 7, ID: "a"}, Read, syscall.EWOULDBLOCK}}, []held{{ownA, Write, 0, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTest(Options{})
			for i, s := range tc.steps {
				err := m.Flock(bg, FlockRequest{Key: fileA, Owner: s.o, Type: s.t, NonBlock: true})
				if errnoOf(err) != s.want {
					t.Fatalf("step %d: %v, want errno %d", i, err, s.want)
				}
			}
			if got := heldOf(m.Flocks(fileA)); !equalHeld(got, tc.want) {
				t.Fatalf("flocks %v, want %v", got, tc.want)
			}
		})
	}
	if syscall.EWOULDBLOCK != syscall.EAGAIN {
		t.Fatal("EWOULDBLOCK is not EAGAIN")
	}
}

// TestFlockIndependentOfPOSIX checks that flock and POSIX locks of
// different owners on one file do not conflict, and that releasing one
// kind leaves the other.
func TestFlockIndependentOfPOSIX(t *testing.T) {
	m, _ := newTest(Options{})
	if err := m.SetLk(rq(fileA, ownA, Write, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownB, Type: Write, NonBlock: true}); err != nil {
		t.Fatalf("flock over a POSIX lock: %v", err)
	}
	if err := m.SetLk(rq(fileA, ownB, Read, 0, 0)); errnoOf(err) != syscall.EAGAIN {
		t.Fatalf("POSIX lock still conflicts with POSIX: %v", err)
	}
	if l, _ := m.GetLk(rq(fileA, ownC, Write, 0, 0)); l.Owner != ownA {
		t.Fatalf("GetLk sees %+v, want a's POSIX lock only", l)
	}
	m.ReleaseOwner(fileA, ownA)
	if got := m.Flocks(fileA); len(got) != 1 {
		t.Fatalf("ReleaseOwner dropped a flock lock: %v", got)
	}
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownB, Type: Unlock}); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Files != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestFlockWait checks blocking flock: FIFO grant on unlock, every shared
// waiter granted together, wake on downgrade, cancellation by context.
func TestFlockWait(t *testing.T) {
	m, _ := newTest(Options{})
	fl := func(ctx context.Context, o Owner, ty Type) <-chan error {
		return async(func() error { return m.Flock(ctx, FlockRequest{Key: fileA, Owner: o, Type: ty}) })
	}
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownA, Type: Write}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(bg)
	defer stop()
	cw := fl(ctx, ownD, Write)
	waitQueued(t, m, 1)
	b := fl(bg, ownB, Read)
	waitQueued(t, m, 2)
	c := fl(bg, ownC, Read)
	waitQueued(t, m, 3)
	stop()
	if err := result(t, "cancelled", cw); errnoOf(err) != syscall.EINTR || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled flock: %v", err)
	}
	pending(t, "b", b)
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownA, Type: Read}); err != nil { // downgrade
		t.Fatal(err)
	}
	for _, ch := range []<-chan error{b, c} {
		if err := result(t, "shared waiter", ch); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Flocks(fileA); len(got) != 3 {
		t.Fatalf("flocks %v", got)
	}
}

// TestFlockBlockingUpgradeDropsFirst checks that two shared holders that
// both upgrade with a wait do not deadlock: each drops its shared lock
// before it waits, as flock(2) does, so one gets the exclusive lock.
func TestFlockBlockingUpgradeDropsFirst(t *testing.T) {
	m, _ := newTest(Options{})
	for _, o := range []Owner{ownA, ownB} {
		if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: o, Type: Read}); err != nil {
			t.Fatal(err)
		}
	}
	a := async(func() error { return m.Flock(bg, FlockRequest{Key: fileA, Owner: ownA, Type: Write}) })
	waitQueued(t, m, 1)
	if got := heldOf(m.Flocks(fileA)); !equalHeld(got, []held{{ownB, Read, 0, 0}}) {
		t.Fatalf("flocks while a waits %v", got)
	}
	// b upgrades: nothing else holds the file, so b gets it at once and a
	// still waits.
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownB, Type: Write}); err != nil {
		t.Fatal(err)
	}
	pending(t, "a", a)
	m.ReleaseHandle(ownB.Mount, ownB.Handle)
	if err := result(t, "a", a); err != nil {
		t.Fatal(err)
	}
	if got := heldOf(m.Flocks(fileA)); !equalHeld(got, []held{{ownA, Write, 0, 0}}) {
		t.Fatalf("flocks %v", got)
	}
}
