package lock

import (
	"context"
	"slices"
	"syscall"
)

// flock is one owner's flock lock on a file.
type flock struct {
	owner Owner
	typ   Type
}

// flockOf returns the index of o's flock lock on ino, or -1. Called with
// ino.mu held.
func (ino *inode) flockOf(o Owner) int {
	return slices.IndexFunc(ino.flocks, func(f flock) bool { return f.owner == o })
}

// flockBlocked reports whether another owner's flock lock blocks a lock of
// type t by o. Called with ino.mu held.
func (ino *inode) flockBlocked(o Owner, t Type) bool {
	for _, f := range ino.flocks {
		if f.owner != o && (t == Write || f.typ == Write) {
			return true
		}
	}
	return false
}

// flockSet gives o a flock lock of type t (Unlock: none), converting the
// one it holds. Called with ino.mu held, and graphMu if ino has waiters.
func (m *Manager) flockSet(ino *inode, o Owner, t Type) error {
	i := ino.flockOf(o)
	switch {
	case t == Unlock && i >= 0:
		ino.flocks = slices.Delete(ino.flocks, i, i+1)
		return m.charge(ino.key, o, -1)
	case t == Unlock:
		return nil
	case i >= 0:
		ino.flocks[i].typ = t
		return nil
	}
	if err := m.charge(ino.key, o, 1); err != nil {
		return err
	}
	ino.flocks = append(ino.flocks, flock{owner: o, typ: t})
	return nil
}

// Flock takes, converts or releases r.Owner's whole-file lock on r.Key
// (flock(2)): Read is shared, Write exclusive, Unlock releases. A
// conflict with NonBlock is EWOULDBLOCK (EAGAIN) and leaves the lock held
// before in place; without NonBlock Flock waits, first dropping the lock
// held before if it is a conversion (see the package documentation), and
// ends as SetLkW does (EINTR, EBADF), without deadlock detection. flock
// locks and POSIX locks do not interact.
func (m *Manager) Flock(ctx context.Context, r FlockRequest) error {
	if err := checkType(r.Type, true); err != nil {
		return err
	}
	if err := checkOwner(r.Owner); err != nil {
		return err
	}
	if r.Type == Unlock {
		ino := m.file(r.Key)
		defer ino.unlock()
		return m.change(ino, func() error { return m.flockSet(ino, r.Owner, Unlock) })
	}
	if r.NonBlock {
		if _, err := m.graceCheck(r.Reclaim); err != nil {
			return err
		}
	} else if err := m.waitGrace(ctx, r.Owner, r.Reclaim); err != nil {
		return err
	}
	ino := m.file(r.Key)
	i := ino.flockOf(r.Owner)
	if i >= 0 && ino.flocks[i].typ == r.Type {
		ino.unlock()
		return nil
	}
	if !ino.flockBlocked(r.Owner, r.Type) {
		err := m.change(ino, func() error { return m.flockSet(ino, r.Owner, r.Type) })
		ino.unlock()
		if err == nil {
			m.stats.granted.Add(1)
		}
		return err
	}
	m.stats.conflicts.Add(1)
	if r.NonBlock {
		ino.unlock()
		return syscall.EWOULDBLOCK
	}
	if ctx.Err() != nil {
		ino.unlock()
		return eintr(ctx)
	}
	m.graphMu.Lock()
	if i >= 0 {
		// A conversion that waits drops the lock first, as flock(2).
		_ = m.flockSet(ino, r.Owner, Unlock)
		m.wake(ino)
	}
	w := &waiter{ino: ino, flock: true, owner: r.Owner, typ: r.Type}
	m.enqueue(w)
	m.graphMu.Unlock()
	ino.mu.Unlock()
	return m.wait(ctx, w)
}

// Flocks returns the flock locks held on k (Start and Len 0), in the order
// they were taken.
func (m *Manager) Flocks(k Key) []Lock {
	ino := m.lookup(k)
	if ino == nil {
		return nil
	}
	defer ino.mu.Unlock()
	out := make([]Lock, len(ino.flocks))
	for i, f := range ino.flocks {
		out[i] = Lock{Type: f.typ, Owner: f.owner}
	}
	return out
}
