package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Locks shared between gateways.
//
// When several gateways serve one volume, each keeps its own clients'
// locks in its Manager and publishes them, per file, in a Store that
// every gateway reads (etcdswift: one etcd key per file and gateway,
// attached to the gateway's lease, so that a dead gateway's locks go when
// its lease expires). Shared wraps a Manager so: before it grants a lock
// it checks the other gateways' locks on the file and publishes its own
// locks together with the new one, on the condition that the others' did
// not change since it read them; only then does it apply the lock locally,
// and it then publishes exactly what it holds. So two gateways never both
// hold conflicting locks: each publishes before it grants, and the second
// publication fails its condition and reads again.
//
// Requests that must wait (F_SETLKW, blocking flock) wait by trying again
// whenever another gateway's locks on the file change (Store.Changed) or,
// for a conflict within this gateway, after a short pause: there is no
// queue across gateways (no fairness between them), no deadlock detection
// across them, and a blocking flock conversion keeps its old lock while it
// waits. Grace periods stay per gateway.
//
// # Failover
//
// A client whose gateway dies (or that loses it) moves to another gateway
// and reclaims its locks there (Request.Reclaim) while the locks it held
// are still published under the dead gateway's lease, for up to that
// lease's TTL. Owners carry the client instance (Owner.Client, the mount's
// "client"), which is the same on every gateway, while the mount and
// handle differ. So:
//
//   - another gateway's lock of the same Client and ID never conflicts
//     with a request (a client uses one gateway at a time: such a lock is
//     one it left behind, and goes with that gateway's lease or mount);
//   - a reclaim is granted, in or out of this gateway's own grace, when
//     nothing else conflicts: no other owner took the range, here or on
//     another gateway;
//   - a reclaim that conflicts with another owner's lock is refused with
//     ErrNoGrace (ENOLCK): the lock was lost (another owner took the range
//     after the dead gateway's lease expired). A reclaim never waits.
//
// What a reclaim cannot see is a conflicting lock that another owner took
// and released again between the expiry of the dead gateway's lease and
// the reclaim; clients reclaim as soon as they reconnect, well within the
// lease's TTL unless they are cut off for longer.

// ErrStoreConflict is what Store.Publish returns (wrapped) when the other
// gateways' locks changed since the token was read.
var ErrStoreConflict = errors.New("lock: the other gateways' locks changed")

// Store keeps each gateway's locks on each file for the others to see.
type Store interface {
	// Others returns the locks that other gateways hold on k (POSIX and
	// flock) and a token for Publish and Changed.
	Others(ctx context.Context, k Key) (posix, flocks []Lock, token int64, err error)
	// Publish replaces this gateway's locks on k, if no other gateway's
	// changed since token (ErrStoreConflict otherwise); a token of 0
	// publishes unconditionally (only ever fewer locks than before).
	Publish(ctx context.Context, k Key, posix, flocks []Lock, token int64) error
	// Changed returns a channel closed when another gateway's locks on k
	// may have changed after token, or ctx is done.
	Changed(ctx context.Context, k Key, token int64) <-chan struct{}
}

// Shared is a Locker whose locks hold across the gateways that share st.
type Shared struct {
	m  *Manager
	st Store

	order [64]sync.Mutex // serializes this gateway's changes per file

	mu      sync.Mutex
	waits   map[*sharedWait]struct{}
	closed  bool
	closeCh chan struct{}
}

type sharedWait struct {
	owner Owner
	end   chan error // buffered: the first error ends the wait
}

// storeTimeout bounds one Store call made for a request without a
// deadline of its own (SetLk, GetLk, releases).
const storeTimeout = 30 * time.Second

// localRetry is the pause before a waiting request tries again after a
// conflict within this gateway.
const localRetry = 20 * time.Millisecond

// NewShared wraps m so that its locks hold across the gateways of st.
func NewShared(m *Manager, st Store) *Shared {
	return &Shared{m: m, st: st, waits: map[*sharedWait]struct{}{}, closeCh: make(chan struct{})}
}

var _ Locker = (*Shared)(nil)

func (s *Shared) lockFile(k Key) func() {
	mu := &s.order[k.Inode%uint64(len(s.order))]
	mu.Lock()
	return mu.Unlock
}

// foreign drops from ls (the other gateways' locks) those of o's client
// and ID: locks o's client left on a gateway it moved away from.
func foreign(ls []Lock, o Owner) []Lock {
	if o.Client == "" {
		return ls
	}
	var out []Lock
	for _, l := range ls {
		if l.Owner.Client == o.Client && l.Owner.ID == o.ID {
			continue
		}
		out = append(out, l)
	}
	return out
}

// lostReclaim turns the EAGAIN of a reclaim into ErrNoGrace (the lock was
// lost); other errors stay.
func lostReclaim(err error) error {
	if errors.Is(err, syscall.EAGAIN) {
		return fmt.Errorf("lock: reclaim: another owner holds a conflicting lock: %w", ErrNoGrace)
	}
	return err
}

// localReclaim is what a reclaim asks of the local manager: the reclaim
// itself in this gateway's grace, else a plain request (the manager would
// refuse a reclaim outside its grace; a conflict is made ErrNoGrace).
func (s *Shared) localReclaim(reclaim bool) bool {
	return reclaim && s.m.InGrace()
}

// conflictsPosix returns the first of ls that conflicts with t on [st, e).
func conflictsPosix(ls []Lock, t Type, st, e uint64) (Lock, bool) {
	for _, l := range ls {
		ls, le, err := span(l.Start, l.Len)
		if err != nil || ls >= e || st >= le {
			continue
		}
		if t == Write || l.Type == Write {
			return l, true
		}
	}
	return Lock{}, false
}

func conflictsFlock(ls []Lock, t Type) bool {
	for _, l := range ls {
		if t == Write || l.Type == Write {
			return true
		}
	}
	return false
}

// GetLk is F_GETLK: this gateway's first conflicting lock, else another
// gateway's.
func (s *Shared) GetLk(r Request) (Lock, error) {
	l, err := s.m.GetLk(r)
	if err != nil || l.Type != Unlock {
		return l, err
	}
	st, e, _ := span(r.Start, r.Len)
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	others, _, _, err := s.st.Others(ctx, r.Key)
	if err != nil {
		return Lock{}, err
	}
	if l, ok := conflictsPosix(foreign(others, r.Owner), r.Type, st, e); ok {
		return l, nil
	}
	return Lock{Type: Unlock}, nil
}

// publish publishes what this gateway holds on k now. Called with k's
// order lock held.
func (s *Shared) publish(ctx context.Context, k Key, extraPosix, extraFlock *Lock, token int64) error {
	posix, flocks := s.m.Locks(k), s.m.Flocks(k)
	if extraPosix != nil {
		posix = append(posix, *extraPosix)
	}
	if extraFlock != nil {
		flocks = append(flocks, *extraFlock)
	}
	return s.st.Publish(ctx, k, posix, flocks, token)
}

// try makes one attempt at a lock: EAGAIN (with remote telling whether
// another gateway's lock is in the way, and the token to wait on) or the
// outcome.
func (s *Shared) try(ctx context.Context, k Key, conflict func(posix, flocks []Lock) bool, pending func() (p, f *Lock), local func() error) (remote bool, token int64, err error) {
	unlock := s.lockFile(k)
	defer unlock()
	for {
		posix, flocks, tok, err := s.st.Others(ctx, k)
		if err != nil {
			return false, 0, err
		}
		if conflict(posix, flocks) {
			return true, tok, syscall.EAGAIN
		}
		p, f := pending()
		err = s.publish(ctx, k, p, f, tok)
		if errors.Is(err, ErrStoreConflict) {
			continue
		}
		if err != nil {
			return false, 0, err
		}
		lerr := local()
		// Publish what it holds now: the new lock, or (refused here) not.
		// If that fails, the set published with the new lock stays, which
		// is safe (others wait longer) until the next change of the file.
		_ = s.publish(ctx, k, nil, nil, 0)
		return false, tok, lerr
	}
}

// SetLk is F_SETLK across gateways.
func (s *Shared) SetLk(r Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	return s.setLk(ctx, r)
}

func (s *Shared) setLk(ctx context.Context, r Request) error {
	st, e, err := r.check(true)
	if err != nil {
		return err
	}
	if r.Type == Unlock {
		unlock := s.lockFile(r.Key)
		defer unlock()
		if err := s.m.SetLk(r); err != nil {
			return err
		}
		return s.publish(ctx, r.Key, nil, nil, 0)
	}
	lr := r
	lr.Reclaim = s.localReclaim(r.Reclaim)
	_, _, err = s.try(ctx, r.Key,
		func(posix, _ []Lock) bool {
			_, c := conflictsPosix(foreign(posix, r.Owner), r.Type, st, e)
			return c
		},
		func() (*Lock, *Lock) { return &Lock{Type: r.Type, Start: r.Start, Len: r.Len, Owner: r.Owner}, nil },
		func() error { return s.m.SetLk(lr) })
	if r.Reclaim {
		return lostReclaim(err)
	}
	return err
}

// SetLkW is F_SETLKW across gateways: it tries again whenever it may
// succeed, until granted, ctx ends (EINTR), Cancel (EINTR) or a release
// of the owner's handle or mount (EBADF).
func (s *Shared) SetLkW(ctx context.Context, r Request) error {
	if r.Type == Unlock || r.Reclaim {
		return s.setLk(ctx, r)
	}
	st, e, err := r.check(false)
	if err != nil {
		return err
	}
	return s.wait(ctx, r.Owner, r.Key, func(ctx context.Context) (bool, int64, error) {
		return s.try(ctx, r.Key,
			func(posix, _ []Lock) bool {
				_, c := conflictsPosix(foreign(posix, r.Owner), r.Type, st, e)
				return c
			},
			func() (*Lock, *Lock) { return &Lock{Type: r.Type, Start: r.Start, Len: r.Len, Owner: r.Owner}, nil },
			func() error { return s.m.SetLk(r) })
	})
}

// Flock is flock(2) across gateways.
func (s *Shared) Flock(ctx context.Context, r FlockRequest) error {
	if r.Type == Unlock {
		unlock := s.lockFile(r.Key)
		defer unlock()
		if err := s.m.Flock(ctx, r); err != nil {
			return err
		}
		return s.publish(ctx, r.Key, nil, nil, 0)
	}
	nb := r
	nb.NonBlock = true
	nb.Reclaim = s.localReclaim(r.Reclaim)
	attempt := func(ctx context.Context) (bool, int64, error) {
		return s.try(ctx, r.Key,
			func(_, flocks []Lock) bool { return conflictsFlock(foreign(flocks, r.Owner), r.Type) },
			func() (*Lock, *Lock) { return nil, &Lock{Type: r.Type, Owner: r.Owner} },
			func() error { return s.m.Flock(ctx, nb) })
	}
	if r.Reclaim {
		_, _, err := attempt(ctx)
		return lostReclaim(err)
	}
	if r.NonBlock {
		_, _, err := attempt(ctx)
		return err
	}
	return s.wait(ctx, r.Owner, r.Key, attempt)
}

// wait runs attempt until it is not EAGAIN, pausing in between until
// another gateway's locks change (remote conflict) or for localRetry.
func (s *Shared) wait(ctx context.Context, o Owner, k Key, attempt func(context.Context) (bool, int64, error)) error {
	w := &sharedWait{owner: o, end: make(chan error, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errReleased
	}
	s.waits[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waits, w)
		s.mu.Unlock()
	}()
	waited := false
	for {
		remote, tok, err := attempt(ctx)
		if !errors.Is(err, syscall.EAGAIN) || errors.Is(err, ErrGrace) {
			if errors.Is(err, ErrGrace) {
				// Only reclaims now: try again shortly.
				remote, tok = false, 0
			} else {
				if waited {
					s.m.stats.waits.Add(1)
				}
				return err
			}
		}
		waited = true
		wctx, cancel := context.WithCancel(ctx)
		var wake <-chan struct{}
		if remote {
			wake = s.st.Changed(wctx, k, tok)
		}
		t := time.NewTimer(localRetry)
		if remote {
			t.Reset(time.Second) // a missed change costs a second, not forever
		}
		var end error
		select {
		case <-ctx.Done():
			end = eintr(ctx)
		case end = <-w.end:
		case <-s.closeCh:
			end = errReleased
		case <-wake:
		case <-t.C:
		}
		t.Stop()
		cancel()
		if end != nil {
			s.m.stats.cancelled.Add(1)
			return end
		}
	}
}

// endWaits ends the waits of the owners that match with err.
func (s *Shared) endWaits(match func(Owner) bool, err error) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for w := range s.waits {
		if match(w.owner) {
			select {
			case w.end <- err:
				n++
			default:
			}
		}
	}
	return n
}

// Cancel ends the owner's waits with EINTR.
func (s *Shared) Cancel(o Owner) int {
	return s.m.Cancel(o) + s.endWaits(func(x Owner) bool { return x == o }, errCancelled)
}

// ReleaseOwner drops the owner's POSIX locks on k.
func (s *Shared) ReleaseOwner(k Key, o Owner) {
	unlock := s.lockFile(k)
	defer unlock()
	s.m.ReleaseOwner(k, o)
	s.republish(k)
}

// ReleaseHandle drops the locks of a handle's owners.
func (s *Shared) ReleaseHandle(mount, handle uint64) {
	s.endWaits(func(o Owner) bool { return o.Mount == mount && o.Handle == handle }, errReleased)
	s.releaseAndPublish(mount, func() { s.m.ReleaseHandle(mount, handle) })
}

// ReleaseMount drops the locks of a mount's owners.
func (s *Shared) ReleaseMount(mount uint64) {
	s.endWaits(func(o Owner) bool { return o.Mount == mount }, errReleased)
	s.releaseAndPublish(mount, func() { s.m.ReleaseMount(mount) })
}

func (s *Shared) releaseAndPublish(mount uint64, release func()) {
	files := s.m.filesOf(mount)
	release()
	for _, k := range files {
		unlock := s.lockFile(k)
		s.republish(k)
		unlock()
	}
}

// republish publishes what this gateway holds on k after a release (fewer
// locks: unconditional). A failure leaves the older, larger set published
// until the next change of the file or the gateway's lease ends: others
// wait longer, never conflict.
func (s *Shared) republish(k Key) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	_ = s.publish(ctx, k, nil, nil, 0)
}

// Stats are the local manager's.
func (s *Shared) Stats() Stats { return s.m.Stats() }

// InGrace is the local manager's grace.
func (s *Shared) InGrace() bool { return s.m.InGrace() }

// Close ends the waits and closes the local manager.
func (s *Shared) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closeCh)
	}
	s.mu.Unlock()
	s.m.Close()
}
