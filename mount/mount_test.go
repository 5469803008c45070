package mount

import (
	"errors"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func vols(names ...string) func(string) bool {
	return func(n string) bool {
		for _, v := range names {
			if v == n {
				return true
			}
		}
		return false
	}
}

func TestMountGetUnmount(t *testing.T) {
	tb := NewTable(vols("a", "b"), Options{Grace: time.Hour})
	h := tb.NewHolder()
	groups := []uint32{7, 8}
	m, err := h.Mount("a", ReadOnly, Identity{User: "alice", UID: 1000, GID: 100, Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	groups[0] = 9 // the mount keeps its own copy
	if m.ID == 0 || m.ID > MaxID || m.Volume != "a" || m.User != "alice" || m.UID != 1000 || m.GID != 100 || !m.ReadOnly ||
		!slices.Equal(m.Groups, []uint32{7, 8}) {
		t.Fatalf("mount %+v", m)
	}
	got, err := tb.Get(m.ID)
	if err != nil || got != m {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if got, err := h.Get(m.ID); err != nil || got != m {
		t.Fatalf("Holder.Get = %v, %v", got, err)
	}
	m2, err := h.Mount("b", 0, Identity{})
	if err != nil || m2.ReadOnly || m2.ID == m.ID {
		t.Fatalf("second mount %+v, %v", m2, err)
	}
	if tb.Count() != 2 {
		t.Errorf("Count = %d", tb.Count())
	}
	if err := tb.Unmount(m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Get(m.ID); !IsBadMount(err) || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Get after unmount: %v", err)
	}
	if _, err := h.Get(m.ID); !IsBadMount(err) {
		t.Errorf("Holder.Get after unmount: %v", err)
	}
	if err := tb.Unmount(m.ID); !IsBadMount(err) {
		t.Errorf("second Unmount: %v", err)
	}
	var bm *BadMountError
	if _, err := tb.Get(42); !errors.As(err, &bm) || bm.ID != 42 {
		t.Errorf("Get(42): %v", err)
	}
	if tb.Count() != 1 {
		t.Errorf("Count = %d", tb.Count())
	}
}

func TestMountErrors(t *testing.T) {
	tb := NewTable(vols("a"), Options{})
	h := tb.NewHolder()
	if _, err := h.Mount("nope", 0, Identity{}); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("unknown volume: %v", err)
	}
	if _, err := h.Mount("a", 2, Identity{}); !errors.Is(err, syscall.EINVAL) || IsBadMount(err) {
		t.Errorf("bad options: %v", err)
	}
	if _, err := h.Mount("a", 0, Identity{Groups: make([]uint32, MaxGroups+1)}); !errors.Is(err, syscall.EINVAL) || IsBadMount(err) {
		t.Errorf("%d groups: %v", MaxGroups+1, err)
	}
	if tb.Count() != 0 {
		t.Errorf("failed mounts left entries: %d", tb.Count())
	}
	if _, err := h.Mount("a", 0, Identity{Groups: make([]uint32, MaxGroups)}); err != nil {
		t.Errorf("%d groups: %v", MaxGroups, err)
	}
}

func TestIDsSkipZeroAndCollisions(t *testing.T) {
	tb := NewTable(vols("a"), Options{})
	h := tb.NewHolder()
	seq := [][]byte{{0, 0, 0, 0, 0, 0, 0, 0}, {7}, {7}, {0, 0, 0, 0, 0, 0, 0xe0, 0xff}, {0, 0, 0, 0, 0, 0, 0xff, 0xff}}
	tb.rand = func(b []byte) {
		clear(b)
		copy(b, seq[0])
		seq = seq[1:]
	}
	m1, _ := h.Mount("a", 0, Identity{})
	m2, _ := h.Mount("a", 0, Identity{})
	if m1.ID != 7 || m2.ID != 0x1f_0000_0000_0000 {
		t.Errorf("ids %#x %#x", m1.ID, m2.ID)
	}
}

func TestConcurrent(t *testing.T) {
	tb := NewTable(vols("a"), Options{Grace: time.Hour})
	var wg sync.WaitGroup
	ids := make(chan uint64, 800)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := tb.NewHolder()
			for i := 0; i < 100; i++ {
				m, err := h.Mount("a", 0, Identity{})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := tb.Get(m.ID); err != nil {
					t.Error(err)
				}
				ids <- m.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[uint64]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %d", id)
		}
		seen[id] = true
	}
	if tb.Count() != 800 {
		t.Errorf("Count = %d", tb.Count())
	}
}
