package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// shadow counts, per file and byte, the readers and writers that the
// manager told they hold it; a second writer, or a reader beside a
// writer, is a violation of mutual exclusion.
type shadow struct {
	cells int
	rd    [][]atomic.Int32
	wr    [][]atomic.Int32
}

func newShadow(files, cells int) *shadow {
	s := &shadow{cells: cells, rd: make([][]atomic.Int32, files), wr: make([][]atomic.Int32, files)}
	for i := range files {
		s.rd[i] = make([]atomic.Int32, cells)
		s.wr[i] = make([]atomic.Int32, cells)
	}
	return s
}

// mark records that the caller holds [a, b) of file f with type ty
// (delta 1) or no longer does (delta -1), and returns an error if that
// breaks mutual exclusion.
func (s *shadow) mark(f int, ty Type, a, b int, delta int32) error {
	for c := a; c < b; c++ {
		if ty == Write {
			if n := s.wr[f][c].Add(delta); delta > 0 && (n != 1 || s.rd[f][c].Load() != 0) {
				return fmt.Errorf("file %d byte %d: writer granted beside %d writers, %d readers", f, c, n-1, s.rd[f][c].Load())
			}
		} else {
			s.rd[f][c].Add(delta)
			if delta > 0 && s.wr[f][c].Load() != 0 {
				return fmt.Errorf("file %d byte %d: reader granted beside a writer", f, c)
			}
		}
	}
	return nil
}

// TestStress runs many goroutines that take, downgrade and release POSIX
// locks on two files at a time in random order (so that deadlocks happen
// and must be detected), flock locks with conversions, cancellations by
// context and by Cancel, and releases by handle, and checks mutual
// exclusion throughout, that every wait ends (a lost wake-up or a missed
// deadlock would hang the test), and that nothing is left at the end.
func TestStress(t *testing.T) {
	// Without cancellations a missed deadlock or a lost wake-up hangs for
	// good; with them, cancellation races with grants and releases.
	t.Run("no cancellations", func(t *testing.T) { stress(t, false) })
	t.Run("cancellations", func(t *testing.T) { stress(t, true) })
}

func stress(t *testing.T, cancels bool) {
	const (
		files   = 3
		cells   = 64
		workers = 16
	)
	iters := 400
	if testing.Short() {
		iters = 100
	}
	m, _ := newTest(Options{})
	keys := make([]Key, files)
	for i := range keys {
		keys[i] = Key{Volume: "stress", Inode: uint64(i + 1)}
	}
	posix := newShadow(files, cells)
	flk := newShadow(files, 1)
	owners := make([]Owner, workers)
	for g := range owners {
		owners[g] = Owner{Mount: uint64(g%4 + 1), Handle: uint64(g), ID: fmt.Sprint("w", g)}
	}
	var (
		deadlocks, interrupted, granted atomic.Int64
		wg                              sync.WaitGroup
		stop                            = make(chan struct{})
	)
	fail := func(err error) {
		t.Error(err)
	}

	worker := func(g int) {
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(uint64(g), 42))
		o := owners[g]
		type hold struct {
			f, a, b int
			ty      Type
		}
		for range iters {
			if rnd.IntN(4) == 0 {
				flockRound(t, m, rnd, keys, flk, o, &interrupted)
				continue
			}
			var holds []hold
			release := func(byHandle bool) {
				for _, h := range holds {
					if err := posix.mark(h.f, h.ty, h.a, h.b, -1); err != nil {
						fail(err)
					}
				}
				if byHandle {
					m.ReleaseHandle(o.Mount, o.Handle)
				} else {
					for _, h := range holds {
						if err := m.SetLk(rq(keys[h.f], o, Unlock, 0, 0)); err != nil {
							fail(err)
						}
					}
				}
				holds = nil
			}
			first := rnd.IntN(files)
			for _, f := range []int{first, (first + 1 + rnd.IntN(files-1)) % files} {
				a := rnd.IntN(cells)
				b := a + 1 + rnd.IntN(cells-a)
				length := int64(b - a)
				if b == cells && rnd.IntN(2) == 0 {
					length = 0 // to end of file
				}
				ty := Read
				if rnd.IntN(2) == 0 {
					ty = Write
				}
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if cancels && rnd.IntN(10) == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rnd.IntN(200))*time.Microsecond)
				}
				err := m.SetLkW(ctx, rq(keys[f], o, ty, int64(a), length))
				cancel()
				switch {
				case err == nil:
					granted.Add(1)
					if err := posix.mark(f, ty, a, b, 1); err != nil {
						fail(err)
					}
					holds = append(holds, hold{f, a, b, ty})
				case errors.Is(err, syscall.EDEADLK):
					deadlocks.Add(1)
				case errors.Is(err, syscall.EINTR):
					interrupted.Add(1)
				default:
					fail(fmt.Errorf("SetLkW: %v", err))
				}
				if err != nil {
					break
				}
				runtime.Gosched()
				if ty == Write && rnd.IntN(3) == 0 { // downgrade
					if err := posix.mark(f, Write, a, b, -1); err != nil {
						fail(err)
					}
					if err := posix.mark(f, Read, a, b, 1); err != nil {
						fail(err)
					}
					holds[len(holds)-1].ty = Read
					if err := m.SetLk(rq(keys[f], o, Read, int64(a), length)); err != nil {
						fail(fmt.Errorf("downgrade: %v", err))
					}
				}
			}
			runtime.Gosched()
			release(rnd.IntN(5) == 0)
		}
	}
	wg.Add(workers)
	for g := range workers {
		go worker(g)
	}
	// Chaos: Cancel random owners and ask GetLk while the workers run.
	var chaos sync.WaitGroup
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		rnd := rand.New(rand.NewPCG(7, 7))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if cancels {
				m.Cancel(owners[rnd.IntN(workers)])
			}
			if _, err := m.GetLk(rq(keys[rnd.IntN(files)], owners[0], Write, 0, 0)); err != nil {
				t.Error(err)
			}
			_ = m.Stats()
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("stress: workers hung (lost wake-up or undetected deadlock)")
	}
	close(stop)
	chaos.Wait()
	s := m.Stats()
	t.Logf("granted %d, deadlocks %d, interrupted %d, stats %+v", granted.Load(), deadlocks.Load(), interrupted.Load(), s)
	if s.Files != 0 || s.Waiting != 0 {
		t.Fatalf("left behind: %+v", s)
	}
	for mnt := uint64(1); mnt <= 4; mnt++ {
		if n := m.HeldByMount(mnt); n != 0 {
			t.Fatalf("mount %d still holds %d", mnt, n)
		}
	}
	if s.Granted == 0 || deadlocks.Load() == 0 {
		t.Logf("warning: the run saw no deadlock or no grant")
	}
}

// flockRound takes a flock lock on a random file, maybe converts it, and
// releases it, checking exclusion on the flock shadow.
func flockRound(t *testing.T, m *Manager, rnd *rand.Rand, keys []Key, sh *shadow, o Owner, interrupted *atomic.Int64) {
	f := rnd.IntN(len(keys))
	ty := Type(1 + rnd.IntN(2))
	if err := m.Flock(context.Background(), FlockRequest{Key: keys[f], Owner: o, Type: ty, NonBlock: rnd.IntN(3) == 0}); err != nil {
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR) {
			t.Errorf("flock: %v", err)
		}
		return
	}
	if err := sh.mark(f, ty, 0, 1, 1); err != nil {
		t.Error(err)
	}
	runtime.Gosched()
	if rnd.IntN(2) == 0 {
		to := Read + Write - ty
		nb := rnd.IntN(2) == 0
		// A blocking conversion drops the lock first: unmark before.
		if !nb || to == Read {
			if err := sh.mark(f, ty, 0, 1, -1); err != nil {
				t.Error(err)
			}
		}
		err := m.Flock(context.Background(), FlockRequest{Key: keys[f], Owner: o, Type: to, NonBlock: nb})
		switch {
		case err == nil:
			if nb && to == Write {
				_ = sh.mark(f, ty, 0, 1, -1)
			}
			if err := sh.mark(f, to, 0, 1, 1); err != nil {
				t.Error(err)
			}
			ty = to
		case nb && errors.Is(err, syscall.EAGAIN):
			// still holds ty
		case errors.Is(err, syscall.EINTR):
			interrupted.Add(1)
			return // holds nothing (dropped before waiting)
		default:
			t.Errorf("flock conversion: %v", err)
			return
		}
	}
	if err := sh.mark(f, ty, 0, 1, -1); err != nil {
		t.Error(err)
	}
	if err := m.Flock(context.Background(), FlockRequest{Key: keys[f], Owner: o, Type: Unlock}); err != nil {
		t.Error(err)
	}
}
