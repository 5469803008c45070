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

// TestSharedFailover: a client's locks left on gateway a (its Client and
// ID) never block the same client through b; its reclaims through b are
// granted out of b's grace and in it, POSIX and flock; a reclaim that meets
// another owner's lock, on b or on a, is ErrNoGrace (lost); another client
// is still blocked by both copies; and without a Client nothing changes.
func TestSharedFailover(t *testing.T) {
	st := newMemStore()
	a := NewShared(New(Options{}), gwStore{st, 1})
	b := NewShared(New(Options{}), gwStore{st, 2})
	g := NewShared(New(Options{GraceUntil: time.Now().Add(time.Hour)}), gwStore{st, 3})
	defer a.Close()
	defer b.Close()
	defer g.Close()
	k := Key{Volume: "v", Inode: 9}
	onA := Owner{Mount: 1, Handle: 1, ID: "p", Client: "c1"}
	onB := Owner{Mount: 2, Handle: 5, ID: "p", Client: "c1"}
	onG := Owner{Mount: 3, Handle: 6, ID: "p", Client: "c1"}
	other := Owner{Mount: 4, Handle: 7, ID: "p", Client: "c2"}
	for _, r := range []Request{
		{Key: k, Owner: onA, Type: Write, Start: 0, Len: 100},
		{Key: k, Owner: Owner{Mount: 1, Handle: 2, ID: "q", Client: "c1"}, Type: Write, Start: 500, Len: 10},
	} {
		if err := a.SetLk(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flock(context.Background(), FlockRequest{Key: k, Owner: Owner{Mount: 1, Handle: 1, Client: "c1"}, Type: Write, NonBlock: true}); err != nil {
		t.Fatal(err)
	}

	// Reclaims through b (not in grace) of what a holds.
	if err := b.SetLk(Request{Key: k, Owner: onB, Type: Write, Start: 0, Len: 100, Reclaim: true}); err != nil {
		t.Fatalf("reclaim through b over the client's own lock on a: %v", err)
	}
	if err := b.Flock(context.Background(), FlockRequest{Key: k, Owner: Owner{Mount: 2, Handle: 5, Client: "c1"}, Type: Write, Reclaim: true}); err != nil {
		t.Fatalf("flock reclaim through b: %v", err)
	}
	// The same client's new request over its own old lock: granted.
	if err := b.SetLk(Request{Key: k, Owner: onB, Type: Write, Start: 50, Len: 100}); err != nil {
		t.Fatalf("a new lock over the client's own lock on a: %v", err)
	}
	if l, err := b.GetLk(Request{Key: k, Owner: onB, Type: Write, Start: 0, Len: 200}); err != nil || l.Type != Unlock {
		t.Fatalf("GetLk of the client over its own locks: %+v, %v", l, err)
	}
	// Another owner string of the same client is another owner: a's lock
	// of "q" blocks it.
	if err := b.SetLk(Request{Key: k, Owner: Owner{Mount: 2, Handle: 5, ID: "r", Client: "c1"}, Type: Read, Start: 505, Len: 1}); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("another owner of the client over a's lock of q: %v, want EAGAIN", err)
	}
	// Another client is blocked by both copies.
	if err := b.SetLk(Request{Key: k, Owner: other, Type: Read, Start: 10, Len: 1}); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("another client: %v, want EAGAIN", err)
	}
	// In a gateway's own grace the reclaim is granted too (g's grace is
	// an hour), and a plain request of another client is ErrGrace.
	if err := g.SetLk(Request{Key: k, Owner: onG, Type: Read, Start: 1000, Len: 1, Reclaim: true}); err != nil {
		t.Fatalf("reclaim in g's grace: %v", err)
	}
	if err := g.SetLk(Request{Key: k, Owner: other, Type: Read, Start: 2000, Len: 1}); !errors.Is(err, ErrGrace) {
		t.Fatalf("plain request in g's grace: %v, want ErrGrace", err)
	}

	// Lost: another owner holds the range, on another gateway or here.
	if err := a.SetLk(Request{Key: k, Owner: other, Type: Write, Start: 3000, Len: 10}); err != nil {
		t.Fatal(err)
	}
	err := b.SetLk(Request{Key: k, Owner: onB, Type: Write, Start: 3000, Len: 1, Reclaim: true})
	if !errors.Is(err, ErrNoGrace) || !errors.Is(err, syscall.ENOLCK) || Reason(err) != "no_grace" {
		t.Fatalf("reclaim over another client's lock on a: %v, want ErrNoGrace", err)
	}
	if err := b.SetLk(Request{Key: k, Owner: Owner{Mount: 2, Handle: 8, ID: "x", Client: "c2"}, Type: Write, Start: 4000, Len: 10}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLkW(context.Background(), Request{Key: k, Owner: onB, Type: Read, Start: 4000, Len: 1, Reclaim: true}); !errors.Is(err, ErrNoGrace) {
		t.Fatalf("reclaim (setlkw) over another client's lock on b: %v, want ErrNoGrace at once", err)
	}
	if err := a.Flock(context.Background(), FlockRequest{Key: Key{Volume: "v", Inode: 10}, Owner: other, Type: Read, NonBlock: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flock(context.Background(), FlockRequest{Key: Key{Volume: "v", Inode: 10}, Owner: onB, Type: Write, Reclaim: true}); !errors.Is(err, ErrNoGrace) {
		t.Fatalf("flock reclaim over another client's flock: %v, want ErrNoGrace", err)
	}

	// Without a Client (an older client library) a's locks block as ever.
	bare := Owner{Mount: 1, Handle: 1, ID: "p"}
	if err := a.SetLk(Request{Key: Key{Volume: "v", Inode: 11}, Owner: bare, Type: Write, Start: 0, Len: 1}); err != nil {
		t.Fatal(err)
	}
	err = b.SetLk(Request{Key: Key{Volume: "v", Inode: 11}, Owner: Owner{Mount: 2, Handle: 5, ID: "p"}, Type: Write, Start: 0, Len: 1, Reclaim: true})
	if !errors.Is(err, ErrNoGrace) {
		t.Fatalf("reclaim without a client over a's lock: %v, want ErrNoGrace", err)
	}
}
