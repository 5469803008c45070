package lock

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memStore is a Store in memory shared by the gateways of a test: each
// gateway's view (gwStore) publishes under its own id.
type memStore struct {
	mu      sync.Mutex
	rev     int64
	locks   map[uint64]map[int]memEntry // inode -> gateway -> its locks
	changed chan struct{}               // closed and replaced at each change
}

type memEntry struct {
	posix, flocks []Lock
	rev           int64
}

type gwStore struct {
	s  *memStore
	id int
}

func newMemStore() *memStore {
	return &memStore{locks: map[uint64]map[int]memEntry{}, changed: make(chan struct{})}
}

func (g gwStore) Others(_ context.Context, k Key) ([]Lock, []Lock, int64, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	var p, f []Lock
	for id, e := range g.s.locks[k.Inode] {
		if id != g.id {
			p = append(p, e.posix...)
			f = append(f, e.flocks...)
		}
	}
	return p, f, g.s.rev, nil
}

func (g gwStore) Publish(_ context.Context, k Key, posix, flocks []Lock, token int64) error {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	if token != 0 {
		for id, e := range g.s.locks[k.Inode] {
			if id != g.id && e.rev > token {
				return ErrStoreConflict
			}
		}
	}
	g.s.rev++
	if g.s.locks[k.Inode] == nil {
		g.s.locks[k.Inode] = map[int]memEntry{}
	}
	g.s.locks[k.Inode][g.id] = memEntry{posix: posix, flocks: flocks, rev: g.s.rev}
	close(g.s.changed)
	g.s.changed = make(chan struct{})
	return nil
}

func (g gwStore) Changed(ctx context.Context, _ Key, token int64) <-chan struct{} {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	if g.s.rev > token {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return g.s.changed
}

// TestSharedAcrossGateways: two Shared lockers over one store act as one
// lock manager for conflicting requests.
func TestSharedAcrossGateways(t *testing.T) {
	st := newMemStore()
	a := NewShared(New(Options{}), gwStore{st, 1})
	b := NewShared(New(Options{}), gwStore{st, 2})
	defer a.Close()
	defer b.Close()
	k := Key{Volume: "v", Inode: 7}
	oa := Owner{Mount: 1, Handle: 1, ID: "a"}
	ob := Owner{Mount: 1, Handle: 1, ID: "b"} // same ids on another gateway
	if err := a.SetLk(Request{Key: k, Owner: oa, Type: Write, Start: 0, Len: 100}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLk(Request{Key: k, Owner: ob, Type: Read, Start: 99, Len: 1}); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("conflicting lock through b: %v", err)
	}
	if l, err := b.GetLk(Request{Key: k, Owner: ob, Type: Write, Start: 0, Len: 0}); err != nil || l.Type != Write || l.Owner.ID != "a" {
		t.Fatalf("GetLk through b: %+v %v", l, err)
	}
	if err := b.SetLk(Request{Key: k, Owner: ob, Type: Write, Start: 100, Len: 50}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- b.SetLkW(context.Background(), Request{Key: k, Owner: ob, Type: Write, Start: 0, Len: 10})
	}()
	select {
	case err := <-done:
		t.Fatalf("SetLkW returned %v while a holds the lock", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := a.SetLk(Request{Key: k, Owner: oa, Type: Unlock, Start: 0, Len: 0}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("SetLkW after the unlock: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SetLkW still waits")
	}
	// Cancel and release end waits.
	go func() {
		done <- a.SetLkW(context.Background(), Request{Key: k, Owner: oa, Type: Read, Start: 0, Len: 1})
	}()
	time.Sleep(50 * time.Millisecond)
	if n := a.Cancel(oa); n != 1 {
		t.Errorf("Cancel ended %d waits", n)
	}
	if err := <-done; !errors.Is(err, syscall.EINTR) {
		t.Fatalf("cancelled wait: %v", err)
	}
	// flock: b's release lets a in.
	if err := b.Flock(context.Background(), FlockRequest{Key: k, Owner: ob, Type: Write, NonBlock: true}); err != nil {
		t.Fatal(err)
	}
	if err := a.Flock(context.Background(), FlockRequest{Key: k, Owner: oa, Type: Read, NonBlock: true}); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("flock through a: %v", err)
	}
	go func() { done <- a.Flock(context.Background(), FlockRequest{Key: k, Owner: oa, Type: Read}) }()
	b.ReleaseHandle(1, 1)
	if err := <-done; err != nil {
		t.Fatalf("flock through a after b's release: %v", err)
	}
	// POSIX locks and flock locks do not interact.
	if err := b.SetLk(Request{Key: k, Owner: ob, Type: Write, Start: 0, Len: 0}); err != nil {
		t.Fatalf("POSIX write lock through b beside a's flock: %v", err)
	}
}
