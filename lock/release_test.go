package lock

import (
	"syscall"
	"testing"
)

// TestRelease checks which locks ReleaseHandle, ReleaseMount and
// ReleaseOwner drop, on several files and of both kinds, and that they
// wake the waiters they unblock.
func TestRelease(t *testing.T) {
	// ownA: mount 1 handle 1; ownB: mount 1 handle 2; ownC: mount 2
	// handle 1 (same handle number, other mount).
	sameHandleOtherID := Owner{Mount: 1, Handle: 1, ID: "a2"}
	setup := func(t *testing.T) *Manager {
		m, _ := newTest(Options{})
		for i, o := range []Owner{ownA, ownB, ownC, sameHandleOtherID} {
			for _, k := range []Key{fileA, fileB} {
				if err := m.SetLk(rq(k, o, Read, int64(10*i), 5)); err != nil {
					t.Fatal(err)
				}
				if err := m.Flock(bg, FlockRequest{Key: k, Owner: o, Type: Read, NonBlock: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return m
	}
	owners := func(ls []Lock) map[Owner]int {
		n := map[Owner]int{}
		for _, l := range ls {
			n[l.Owner]++
		}
		return n
	}
	tests := []struct {
		name     string
		release  func(m *Manager)
		left     []Owner // owners whose POSIX locks remain on both files
		flockOut []Owner // owners whose flock locks are gone
	}{
		{"handle", func(m *Manager) { m.ReleaseHandle(1, 1) }, []Owner{ownB, ownC}, []Owner{ownA, sameHandleOtherID}},
		{"mount", func(m *Manager) { m.ReleaseMount(1) }, []Owner{ownC}, []Owner{ownA, ownB, sameHandleOtherID}},
		{"other mount", func(m *Manager) { m.ReleaseMount(2) }, []Owner{ownA, ownB, sameHandleOtherID}, []Owner{ownC}},
		{"unknown mount", func(m *Manager) { m.ReleaseMount(99); m.ReleaseHandle(99, 1) }, []Owner{ownA, ownB, ownC, sameHandleOtherID}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := setup(t)
			tc.release(m)
			for _, k := range []Key{fileA, fileB} {
				got := owners(m.Locks(k))
				if len(got) != len(tc.left) {
					t.Fatalf("%v: POSIX owners left %v, want %v", k, got, tc.left)
				}
				for _, o := range tc.left {
					if got[o] != 1 {
						t.Fatalf("%v: POSIX owners left %v, want %v", k, got, tc.left)
					}
				}
				fl := owners(m.Flocks(k))
				if len(fl) != 4-len(tc.flockOut) {
					t.Fatalf("%v: flock owners left %v", k, fl)
				}
				for _, o := range tc.flockOut {
					if fl[o] != 0 {
						t.Fatalf("%v: flock of %v left", k, o)
					}
				}
			}
			for _, o := range tc.flockOut {
				if n := m.Held(o); n != 0 {
					t.Fatalf("%v still holds %d", o, n)
				}
			}
		})
	}

	t.Run("owner on one file", func(t *testing.T) {
		m := setup(t)
		m.ReleaseOwner(fileA, ownA)
		m.ReleaseOwner(Key{Volume: "none"}, ownA)
		if n := owners(m.Locks(fileA))[ownA]; n != 0 {
			t.Fatal("a's POSIX lock on file A left")
		}
		if n := owners(m.Locks(fileB))[ownA]; n != 1 {
			t.Fatal("a's POSIX lock on file B dropped")
		}
		if n := owners(m.Flocks(fileA))[ownA]; n != 1 {
			t.Fatal("a's flock lock on file A dropped")
		}
	})

	t.Run("wakes waiters", func(t *testing.T) {
		m, _ := newTest(Options{})
		if err := m.SetLk(rq(fileA, ownA, Write, 0, 0)); err != nil {
			t.Fatal(err)
		}
		if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownA, Type: Write}); err != nil {
			t.Fatal(err)
		}
		p := async(func() error { return m.SetLkW(bg, rq(fileA, ownC, Write, 0, 0)) })
		f := async(func() error { return m.Flock(bg, FlockRequest{Key: fileA, Owner: ownC, Type: Write}) })
		waitQueued(t, m, 2)
		m.ReleaseHandle(ownA.Mount, ownA.Handle)
		for _, ch := range []<-chan error{p, f} {
			if err := result(t, "waiter", ch); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestLimits checks ENOLCK at the per-owner and per-mount caps, that a
// change which lowers the count is always allowed, that a refused change
// changes nothing, and that releases give the room back.
func TestLimits(t *testing.T) {
	m, _ := newTest(Options{MaxPerOwner: 3, MaxPerMount: 5})
	for i := range 3 {
		if err := m.SetLk(rq(fileA, ownA, Read, int64(10*i), 5)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SetLk(rq(fileA, ownA, Read, 100, 5)); errnoOf(err) != syscall.ENOLCK {
		t.Fatalf("4th range: %v", err)
	}
	if err := m.Flock(bg, FlockRequest{Key: fileA, Owner: ownA, Type: Read, NonBlock: true}); errnoOf(err) != syscall.ENOLCK {
		t.Fatalf("flock over the cap: %v", err)
	}
	// A write in the middle of a read splits it: one more range.
	if err := m.SetLk(rq(fileA, ownA, Write, 1, 1)); errnoOf(err) != syscall.ENOLCK {
		t.Fatalf("split over the cap: %v", err)
	}
	if got := len(m.Locks(fileA)); got != 3 {
		t.Fatalf("refused change left %d locks", got)
	}
	// Extending a range or merging two keeps or lowers the count.
	if err := m.SetLk(rq(fileA, ownA, Read, 0, 15)); err != nil {
		t.Fatalf("merge at the cap: %v", err)
	}
	if m.Held(ownA) != 2 {
		t.Fatalf("held %d, want 2", m.Held(ownA))
	}
	// Mount cap: a has 2, b (same mount) may take 3, then none.
	for i := range 3 {
		if err := m.SetLk(rq(fileB, ownB, Read, int64(10*i), 5)); err != nil {
			t.Fatalf("b %d: %v", i, err)
		}
	}
	if err := m.SetLk(rq(fileA, ownA, Read, 200, 1)); errnoOf(err) != syscall.ENOLCK {
		t.Fatalf("over the mount cap: %v", err)
	}
	if err := m.SetLk(rq(fileA, ownC, Read, 200, 1)); err != nil {
		t.Fatalf("another mount: %v", err)
	}
	// A waiter granted over the cap gets ENOLCK.
	if err := m.SetLk(rq(fileB, ownC, Write, 100, 1)); err != nil {
		t.Fatal(err)
	}
	w := async(func() error { return m.SetLkW(bg, rq(fileB, ownB, Read, 100, 1)) })
	waitQueued(t, m, 1)
	m.ReleaseOwner(fileB, ownC)
	if err := result(t, "waiter", w); errnoOf(err) != syscall.ENOLCK {
		t.Fatalf("waiter over the cap: %v", err)
	}
	if m.HeldByMount(1) != 5 {
		t.Fatalf("mount holds %d", m.HeldByMount(1))
	}
	m.ReleaseMount(1)
	if m.HeldByMount(1) != 0 || m.Held(ownA) != 0 {
		t.Fatal("release left counts")
	}
	if s := m.Stats(); s.Limited != 5 {
		t.Fatalf("stats %+v", s)
	}

	m, _ = newTest(Options{MaxPerOwner: -1, MaxPerMount: -1})
	for i := range DefaultMaxPerOwner + 1 {
		if err := m.SetLk(rq(fileA, ownA, Read, int64(2*i), 1)); err != nil {
			t.Fatalf("no cap, lock %d: %v", i, err)
		}
	}
	m, _ = newTest(Options{})
	for i := range DefaultMaxPerOwner {
		if err := m.SetLk(rq(fileA, ownA, Write, int64(2*i), 1)); err != nil {
			t.Fatalf("default cap, lock %d: %v", i, err)
		}
	}
	if err := m.SetLk(rq(fileB, ownA, Read, 0, 1)); errnoOf(err) != syscall.ENOLCK {
		t.Fatalf("over the default cap: %v", err)
	}
}
