package lock

import (
	"context"
	"fmt"
	"slices"
	"syscall"
)

// plock is one POSIX lock: the bytes [start, end) held by owner; end is
// eof for a lock to end of file.
type plock struct {
	owner      Owner
	typ        Type
	start, end uint64
}

func (p plock) lock() Lock {
	l := Lock{Type: p.typ, Start: int64(p.start), Owner: p.owner}
	if p.end != eof {
		l.Len = int64(p.end - p.start)
	}
	return l
}

// span checks a range and returns it as [start, end).
func span(start, length int64) (uint64, uint64, error) {
	if start < 0 || length < 0 {
		return 0, 0, fmt.Errorf("lock range start %d len %d: negative: %w", start, length, syscall.EINVAL)
	}
	if length == 0 {
		return uint64(start), eof, nil
	}
	end := uint64(start) + uint64(length) // both < 2^63: no overflow
	if end > eof {
		return 0, 0, fmt.Errorf("lock range start %d len %d: past the largest offset: %w", start, length, syscall.EINVAL)
	}
	return uint64(start), end, nil
}

func checkOwner(o Owner) error {
	if len(o.ID) > MaxOwnerID {
		return fmt.Errorf("lock owner id of %d bytes (max %d): %w", len(o.ID), MaxOwnerID, syscall.EINVAL)
	}
	return nil
}

func checkType(t Type, unlock bool) error {
	if t == Read || t == Write || (unlock && t == Unlock) {
		return nil
	}
	return fmt.Errorf("lock type %v: %w", t, syscall.EINVAL)
}

// check validates a request and returns its range.
func (r *Request) check(unlock bool) (uint64, uint64, error) {
	if err := checkType(r.Type, unlock); err != nil {
		return 0, 0, err
	}
	if err := checkOwner(r.Owner); err != nil {
		return 0, 0, err
	}
	return span(r.Start, r.Len)
}

// conflicts returns the locks of other owners that conflict with a lock
// of type t on [s, e) by o, in start order; with first it stops at the
// first. Called with ino.mu held.
func (ino *inode) conflicts(o Owner, t Type, s, e uint64, first bool) []plock {
	var out []plock
	for _, l := range ino.locks {
		if l.start >= e {
			break // sorted by start: none further overlaps
		}
		if l.end > s && l.owner != o && (t == Write || l.typ == Write) {
			out = append(out, l)
			if first {
				break
			}
		}
	}
	return out
}

// blockers returns the owners whose locks block a lock of type t on
// [s, e) by o, each once. Called with ino.mu held.
func (ino *inode) blockers(o Owner, t Type, s, e uint64) []Owner {
	var out []Owner
	for _, l := range ino.conflicts(o, t, s, e, false) {
		if !slices.Contains(out, l.owner) {
			out = append(out, l.owner)
		}
	}
	return out
}

// apply sets o's locks on [s, e) to type t (Unlock removes them): the
// owner's ranges are split, replaced and merged as fcntl(2) does. It
// changes nothing and returns ENOLCK if o would go over a limit. Called
// with ino.mu held, and graphMu if ino has waiters.
func (m *Manager) apply(ino *inode, o Owner, t Type, s, e uint64) error {
	var mine []plock
	for _, l := range ino.locks {
		if l.owner == o {
			mine = append(mine, l)
		}
	}
	if len(mine) == 0 && t == Unlock {
		return nil
	}
	nw := make([]plock, 0, len(mine)+2)
	for _, l := range mine {
		if l.end <= s || l.start >= e {
			nw = append(nw, l)
			continue
		}
		if l.start < s {
			nw = append(nw, plock{o, l.typ, l.start, s})
		}
		if l.end > e {
			nw = append(nw, plock{o, l.typ, e, l.end})
		}
	}
	if t != Unlock {
		nw = append(nw, plock{o, t, s, e})
	}
	slices.SortFunc(nw, func(a, b plock) int { return cmpU(a.start, b.start) })
	merged := nw[:0]
	for _, l := range nw {
		if n := len(merged); n > 0 && merged[n-1].typ == l.typ && merged[n-1].end >= l.start {
			merged[n-1].end = max(merged[n-1].end, l.end)
			continue
		}
		merged = append(merged, l)
	}
	if err := m.charge(ino.key, o, len(merged)-len(mine)); err != nil {
		return err
	}
	// Merge the others' locks (sorted) with the new ones (sorted).
	all := make([]plock, 0, len(ino.locks)-len(mine)+len(merged))
	j := 0
	for _, l := range ino.locks {
		if l.owner == o {
			continue
		}
		for j < len(merged) && merged[j].start < l.start {
			all = append(all, merged[j])
			j++
		}
		all = append(all, l)
	}
	all = append(all, merged[j:]...)
	ino.locks = all
	return nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// change runs f, which changes ino's locks, and then grants the waiters
// that can now go on. Called with ino.mu held.
func (m *Manager) change(ino *inode, f func() error) error {
	if len(ino.waiters) == 0 {
		return f()
	}
	m.graphMu.Lock()
	defer m.graphMu.Unlock()
	err := f()
	m.wake(ino)
	return err
}

// GetLk returns the first lock (lowest start) that conflicts with r, or a
// Lock of type Unlock if none does (F_GETLK). r.Type must be Read or
// Write. In the grace period it answers from the locks reclaimed so far.
func (m *Manager) GetLk(r Request) (Lock, error) {
	s, e, err := r.check(false)
	if err != nil {
		return Lock{}, err
	}
	ino := m.lookup(r.Key)
	if ino == nil {
		return Lock{Type: Unlock}, nil
	}
	defer ino.mu.Unlock()
	if c := ino.conflicts(r.Owner, r.Type, s, e, true); len(c) > 0 {
		return c[0].lock(), nil
	}
	return Lock{Type: Unlock}, nil
}

// SetLk takes (Read, Write) or releases (Unlock) r.Owner's lock on the
// range (F_SETLK). A conflict is EAGAIN; in the grace period a request
// without Reclaim that takes a lock is ErrGrace; a limit is ENOLCK.
func (m *Manager) SetLk(r Request) error {
	s, e, err := r.check(true)
	if err != nil {
		return err
	}
	if r.Type != Unlock {
		if _, err := m.graceCheck(r.Reclaim); err != nil {
			return err
		}
	}
	ino := m.file(r.Key)
	defer ino.unlock()
	if r.Type != Unlock && len(ino.conflicts(r.Owner, r.Type, s, e, true)) > 0 {
		m.stats.conflicts.Add(1)
		return syscall.EAGAIN
	}
	return m.set(ino, r.Owner, r.Type, s, e)
}

// set applies a lock that no other owner's lock blocks. Called with ino.mu
// held.
func (m *Manager) set(ino *inode, o Owner, t Type, s, e uint64) error {
	err := m.change(ino, func() error { return m.apply(ino, o, t, s, e) })
	if err == nil && t != Unlock {
		m.stats.granted.Add(1)
	}
	return err
}

// SetLkW is SetLk that waits instead of failing with EAGAIN (F_SETLKW):
// it returns nil once the lock is granted. It returns EDEADLK, without
// waiting, if waiting would close a cycle in the wait-for graph; EINTR
// (matching the context's error too) if ctx is done or Cancel is called
// for the owner first; EBADF if the owner's handle or mount is released
// first. In the grace period, a request without Reclaim waits for the
// grace to end first.
func (m *Manager) SetLkW(ctx context.Context, r Request) error {
	if r.Type == Unlock {
		return m.SetLk(r)
	}
	s, e, err := r.check(false)
	if err != nil {
		return err
	}
	if err := m.waitGrace(ctx, r.Reclaim); err != nil {
		return err
	}
	ino := m.file(r.Key)
	blockers := ino.blockers(r.Owner, r.Type, s, e)
	if len(blockers) == 0 {
		err := m.set(ino, r.Owner, r.Type, s, e)
		ino.unlock()
		return err
	}
	m.stats.conflicts.Add(1)
	if ctx.Err() != nil {
		ino.unlock()
		return eintr(ctx)
	}
	m.graphMu.Lock()
	if m.cycle(r.Owner, blockers) {
		m.graphMu.Unlock()
		ino.unlock()
		m.stats.deadlocks.Add(1)
		return fmt.Errorf("lock: waiting would deadlock: %w", syscall.EDEADLK)
	}
	w := &waiter{ino: ino, owner: r.Owner, typ: r.Type, start: s, end: e, blockers: blockers}
	m.enqueue(w)
	m.graphMu.Unlock()
	ino.mu.Unlock()
	return m.wait(ctx, w)
}

// waitGrace waits, if the manager is in its grace period and the request
// is not a reclaim, for the grace to end; it returns ErrNoGrace for a
// reclaim outside the grace.
func (m *Manager) waitGrace(ctx context.Context, reclaim bool) error {
	ch, err := m.graceCheck(reclaim)
	if err != ErrGrace {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return eintr(ctx)
	}
}

// Locks returns the POSIX locks held on k, in start order (for tests,
// debugging and a distributed implementation's handover).
func (m *Manager) Locks(k Key) []Lock {
	ino := m.lookup(k)
	if ino == nil {
		return nil
	}
	defer ino.mu.Unlock()
	out := make([]Lock, len(ino.locks))
	for i, l := range ino.locks {
		out[i] = l.lock()
	}
	return out
}

// ReleaseOwner drops o's POSIX locks on k (not its flock lock): the
// classic POSIX rule that closing a descriptor drops the process's locks
// on the file, for a server or client that wants it. Waiters of o are
// left waiting.
func (m *Manager) ReleaseOwner(k Key, o Owner) {
	ino := m.lookup(k)
	if ino == nil {
		return
	}
	_ = m.set(ino, o, Unlock, 0, eof) // an unlock never fails
	ino.unlock()
}

// ReleaseHandle drops every lock (POSIX and flock) of the owners with
// that mount and handle, and ends their waits with EBADF. The server
// calls it when the handle is closed. Cost: O(files the mount has locks
// on).
func (m *Manager) ReleaseHandle(mount, handle uint64) {
	m.release(mount, func(o Owner) bool { return o.Mount == mount && o.Handle == handle })
}

// ReleaseMount drops every lock of the mount's owners and ends their waits
// with EBADF. The server calls it on unmount and when a mount is
// reclaimed.
func (m *Manager) ReleaseMount(mount uint64) {
	m.release(mount, func(o Owner) bool { return o.Mount == mount })
}

// release ends the waits, then drops the locks, of the owners of mount
// that match.
func (m *Manager) release(mount uint64, match func(Owner) bool) {
	m.graphMu.Lock()
	var ws []*waiter
	for o, l := range m.waiting {
		if match(o) {
			ws = append(ws, l...)
		}
	}
	m.graphMu.Unlock()
	for _, w := range ws {
		m.cancel(w, errReleased)
	}
	for _, k := range m.filesOf(mount) {
		ino := m.lookup(k)
		if ino == nil {
			continue
		}
		_ = m.change(ino, func() error {
			removed := map[Owner]int{}
			ino.locks = slices.DeleteFunc(ino.locks, func(l plock) bool {
				if match(l.owner) {
					removed[l.owner]++
					return true
				}
				return false
			})
			ino.flocks = slices.DeleteFunc(ino.flocks, func(f flock) bool {
				if match(f.owner) {
					removed[f.owner]++
					return true
				}
				return false
			})
			for o, n := range removed {
				_ = m.charge(k, o, -n)
			}
			return nil
		})
		ino.unlock()
	}
}
