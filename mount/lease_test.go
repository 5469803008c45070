package mount

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeClock replaces time.Now and time.AfterFunc: time moves, and timers
// fire, only when the test says.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (ft *fakeTimer) Stop() bool {
	was := ft.stopped
	ft.stopped = true
	return !was
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, ft)
	return ft
}

// advance moves the clock by d and runs the timers that are due, and
// those they set that are due too.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due *fakeTimer
		for i, ft := range c.timers {
			if !ft.stopped && !ft.at.After(c.now) {
				due = ft
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		if due == nil {
			return
		}
		due.f()
	}
}

// pending counts the timers set and not stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ft := range c.timers {
		if !ft.stopped {
			n++
		}
	}
	return n
}

const testGrace = time.Minute

// leaseTable is a table with a fake clock that records reclaimed mounts.
func leaseTable(t *testing.T, max int) (*Table, *fakeClock, func() []uint64) {
	t.Helper()
	var mu sync.Mutex
	var reclaimed []uint64
	tb := NewTable(vols("a"), Options{Grace: testGrace, MaxPerHolder: max, OnReclaim: func(m *Mount) {
		mu.Lock()
		reclaimed = append(reclaimed, m.ID)
		mu.Unlock()
	}})
	c := &fakeClock{now: time.Unix(1e9, 0)}
	tb.now, tb.afterFunc = c.Now, c.afterFunc
	return tb, c, func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]uint64(nil), reclaimed...)
	}
}

func mustMount(t *testing.T, h *Holder) *Mount {
	t.Helper()
	m, err := h.Mount("a", 0, Identity{User: "u", UID: 1, GID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func wantStats(t *testing.T, tb *Table, want Stats) {
	t.Helper()
	if got := tb.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}

// A mount whose only holder is released is reclaimed after the grace.
func TestLeaseReclaimAfterGrace(t *testing.T) {
	tb, clk, reclaimed := leaseTable(t, 0)
	h := tb.NewHolder()
	m := mustMount(t, h)
	wantStats(t, tb, Stats{Mounts: 1})
	if clk.pending() != 0 {
		t.Fatal("a timer runs with nothing orphaned")
	}
	h.Release()
	h.Release() // idempotent
	wantStats(t, tb, Stats{Mounts: 1, Orphaned: 1})
	if clk.pending() != 1 {
		t.Fatalf("timers: %d", clk.pending())
	}
	clk.advance(testGrace - 1)
	wantStats(t, tb, Stats{Mounts: 1, Orphaned: 1})
	clk.advance(1)
	wantStats(t, tb, Stats{Mounts: 0, Reclaimed: 1})
	if r := reclaimed(); len(r) != 1 || r[0] != m.ID {
		t.Fatalf("OnReclaim got %v", r)
	}
	if clk.pending() != 0 || len(tb.graces) != 0 {
		t.Fatalf("after the last grace: %d timers, %d graces queued", clk.pending(), len(tb.graces))
	}
	if _, err := tb.NewHolder().Get(m.ID); !IsBadMount(err) {
		t.Fatalf("Get after reclaim: %v", err)
	}
	// A released holder only looks ids up, and its mounts start orphaned.
	if _, err := h.Get(m.ID); !IsBadMount(err) {
		t.Fatalf("released Get: %v", err)
	}
	m2 := mustMount(t, h)
	wantStats(t, tb, Stats{Mounts: 1, Orphaned: 1, Reclaimed: 1})
	if got, err := h.Get(m2.ID); err != nil || got != m2 {
		t.Fatalf("released Get of its orphan: %v, %v", got, err)
	}
	wantStats(t, tb, Stats{Mounts: 1, Orphaned: 1, Reclaimed: 1})
	clk.advance(testGrace)
	wantStats(t, tb, Stats{Mounts: 0, Reclaimed: 2})
}

// Using a mount id during its grace attaches it to the new holder: the
// grace ends and the mount lives while that holder does. Only its latest
// grace counts.
func TestLeaseReattachInGrace(t *testing.T) {
	tb, clk, reclaimed := leaseTable(t, 0)
	h1 := tb.NewHolder()
	m := mustMount(t, h1)
	h1.Release()
	clk.advance(testGrace / 2)
	h2 := tb.NewHolder()
	if got, err := h2.Get(m.ID); err != nil || got != m {
		t.Fatalf("Get in grace: %v, %v", got, err)
	}
	wantStats(t, tb, Stats{Mounts: 1})
	clk.advance(testGrace) // the first grace's time passes: nothing happens
	wantStats(t, tb, Stats{Mounts: 1})
	// Orphaned, taken and orphaned again: only the latest grace ends it.
	h2.Release()
	clk.advance(testGrace / 2)
	h3 := tb.NewHolder()
	if _, err := h3.Get(m.ID); err != nil {
		t.Fatal(err)
	}
	h3.Release()
	clk.advance(testGrace - 1)
	wantStats(t, tb, Stats{Mounts: 1, Orphaned: 1})
	clk.advance(1)
	wantStats(t, tb, Stats{Mounts: 0, Reclaimed: 1})
	if len(reclaimed()) != 1 {
		t.Fatalf("reclaimed %v", reclaimed())
	}
}

// A mount held by two holders survives the release of one of them.
func TestLeaseTwoHolders(t *testing.T) {
	tb, clk, _ := leaseTable(t, 0)
	h1, h2 := tb.NewHolder(), tb.NewHolder()
	m := mustMount(t, h1)
	for range 3 { // attaching twice counts once
		if _, err := h2.Get(m.ID); err != nil {
			t.Fatal(err)
		}
	}
	h1.Release()
	wantStats(t, tb, Stats{Mounts: 1})
	clk.advance(2 * testGrace)
	if _, err := h2.Get(m.ID); err != nil {
		t.Fatalf("Get after the other holder left: %v", err)
	}
	h2.Release()
	wantStats(t, tb, Stats{Mounts: 1, Orphaned: 1})
	clk.advance(testGrace)
	wantStats(t, tb, Stats{Reclaimed: 1})
}

// Graces end in the order they started, each after exactly the grace.
func TestLeaseGraceOrder(t *testing.T) {
	tb, clk, reclaimed := leaseTable(t, 0)
	var ids []uint64
	for range 200 {
		h := tb.NewHolder()
		ids = append(ids, mustMount(t, h).ID)
		h.Release()
		clk.advance(testGrace / 100)
	}
	// Mount i was orphaned at i*grace/100 and it is now 2*grace: mounts
	// 0..100 have ended (the last one exactly now), the others not.
	wantStats(t, tb, Stats{Mounts: 99, Orphaned: 99, Reclaimed: 101})
	for range 99 {
		clk.advance(testGrace / 100)
	}
	wantStats(t, tb, Stats{Reclaimed: 200})
	r := reclaimed()
	for i := range ids {
		if r[i] != ids[i] {
			t.Fatalf("reclaim %d: %d, want %d", i, r[i], ids[i])
		}
	}
	if clk.pending() != 0 || len(tb.graces) != 0 || tb.gracesN != 0 {
		t.Fatalf("%d timers, %d graces queued", clk.pending(), len(tb.graces))
	}
}

// Unmount removes a mount whoever holds it, in its grace too, and is not
// a reclaim.
func TestLeaseUnmount(t *testing.T) {
	tb, clk, reclaimed := leaseTable(t, 0)
	h1, h2 := tb.NewHolder(), tb.NewHolder()
	a, b := mustMount(t, h1), mustMount(t, h1)
	if _, err := h2.Get(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := h2.Unmount(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h1.Get(a.ID); !IsBadMount(err) {
		t.Fatalf("other holder's Get after Unmount: %v", err)
	}
	h1.Release()
	wantStats(t, tb, Stats{Mounts: 1, Orphaned: 1})
	if err := h2.Unmount(b.ID); err != nil {
		t.Fatal(err)
	}
	wantStats(t, tb, Stats{})
	clk.advance(testGrace)
	if err := tb.Unmount(b.ID); !IsBadMount(err) {
		t.Fatalf("second Unmount: %v", err)
	}
	wantStats(t, tb, Stats{})
	if len(reclaimed()) != 0 {
		t.Fatalf("unmounts reported as reclaimed: %v", reclaimed())
	}
	h2.Release()
}

// A holder holds at most MaxPerHolder mounts: Mount and the first Get of
// one more are EMFILE; Unmount always works and makes room.
func TestLeaseCap(t *testing.T) {
	tb, _, _ := leaseTable(t, 2)
	h, other := tb.NewHolder(), tb.NewHolder()
	a, b := mustMount(t, h), mustMount(t, h)
	_, err := h.Mount("a", 0, Identity{})
	var tm *TooManyMountsError
	if !errors.Is(err, syscall.EMFILE) || !errors.As(err, &tm) || tm.Max != 2 || IsBadMount(err) {
		t.Fatalf("third mount: %v", err)
	}
	c := mustMount(t, other)
	if _, err := h.Get(c.ID); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Get of a third mount: %v", err)
	}
	if _, err := h.Get(a.ID); err != nil { // held ones still work
		t.Fatal(err)
	}
	if err := h.Unmount(c.ID); err != nil { // not held: no room needed
		t.Fatal(err)
	}
	if err := other.Unmount(b.ID); err != nil { // gone elsewhere: room
		t.Fatal(err)
	}
	d := mustMount(t, h)
	if _, err := h.Mount("a", 0, Identity{}); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("mount over the cap again: %v", err)
	}
	if err := h.Unmount(d.ID); err != nil {
		t.Fatal(err)
	}
	mustMount(t, h)
	wantStats(t, tb, Stats{Mounts: 2})
	if len(tb.mounts) != 2 {
		t.Fatalf("failed mounts left entries: %d", len(tb.mounts))
	}
}

// After Close nothing is reclaimed and no timer runs.
func TestLeaseClose(t *testing.T) {
	tb, clk, _ := leaseTable(t, 0)
	h := tb.NewHolder()
	mustMount(t, h)
	h.Release()
	tb.Close()
	if clk.pending() != 0 {
		t.Fatal("Close left the timer running")
	}
	h2 := tb.NewHolder()
	m := mustMount(t, h2)
	h2.Release()
	if clk.pending() != 0 {
		t.Fatal("a timer started after Close")
	}
	clk.advance(2 * testGrace)
	wantStats(t, tb, Stats{Mounts: 2, Orphaned: 2})
	if _, err := tb.Get(m.ID); err != nil {
		t.Fatal(err)
	}
}

// With real timers: a loop of mount-and-release leaves nothing behind
// once the grace is over.
func TestLeaseRealTimers(t *testing.T) {
	var reclaimed sync.WaitGroup
	reclaimed.Add(100)
	tb := NewTable(vols("a"), Options{Grace: 10 * time.Millisecond, OnReclaim: func(*Mount) { reclaimed.Done() }})
	for range 100 {
		h := tb.NewHolder()
		mustMount(t, h)
		h.Release()
	}
	reclaimed.Wait()
	wantStats(t, tb, Stats{Reclaimed: 100})
	tb.Close()
}

// Holders racing on the same mounts (run with -race).
func TestLeaseConcurrent(t *testing.T) {
	tb := NewTable(vols("a"), Options{Grace: time.Millisecond, MaxPerHolder: 5})
	shared := tb.NewHolder()
	var ids []uint64
	for range 4 {
		ids = append(ids, mustMount(t, shared).ID)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				h := tb.NewHolder()
				for _, id := range ids {
					if _, err := h.Get(id); err != nil {
						t.Errorf("Get %d: %v", id, err)
						return
					}
				}
				m, err := h.Mount("a", 0, Identity{})
				if err != nil {
					t.Error(err)
					return
				}
				if (g+i)%2 == 0 {
					if err := h.Unmount(m.ID); err != nil {
						t.Error(err)
					}
				}
				if _, err := h.Mount("a", 0, Identity{}); !errors.Is(err, syscall.EMFILE) && (g+i)%2 == 1 {
					t.Errorf("mount over the cap: %v", err)
				}
				h.Release()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for tb.Count() != 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	wantStats(t, tb, Stats{Mounts: 4, Reclaimed: tb.Stats().Reclaimed})
	for _, id := range ids {
		if _, err := tb.Get(id); err != nil {
			t.Fatalf("a held mount was lost: %v", err)
		}
	}
	shared.Release()
	tb.Close()
}

// The hot path: every call resolves its mount id.
func BenchmarkHolderGet(b *testing.B) {
	tb := NewTable(vols("a"), Options{Grace: time.Minute, MaxPerHolder: 256})
	h := tb.NewHolder()
	m, err := h.Mount("a", 0, Identity{})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Get(m.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
