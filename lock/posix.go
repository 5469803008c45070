package lock

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"syscall"
)

// rng is one POSIX lock of an owner: the bytes [start, end); end is eof
// for a lock to end of file.
type rng struct {
	typ        Type
	start, end uint64
}

func (r rng) lock(o Owner) Lock {
	l := Lock{Type: r.typ, Start: int64(r.start), Owner: o}
	if r.end != eof {
		l.Len = int64(r.end - r.start)
	}
	return l
}

// lessOwner orders owners, to make answers deterministic.
func lessOwner(a, b Owner) bool {
	if a.Mount != b.Mount {
		return a.Mount < b.Mount
	}
	if a.Handle != b.Handle {
		return a.Handle < b.Handle
	}
	return a.ID < b.ID
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

// firstConflict returns the index of the first (lowest start) range of
// rs that conflicts with a lock of type t on [s, e), or -1. rs is one
// owner's ranges: sorted, disjoint, so their ends are sorted too.
func firstConflict(rs []rng, t Type, s, e uint64) int {
	i, _ := slices.BinarySearchFunc(rs, s, func(r rng, s uint64) int {
		if r.end <= s {
			return -1
		}
		return 1
	}) // the first range that ends after s
	for ; i < len(rs) && rs[i].start < e; i++ {
		if t == Write || rs[i].typ == Write {
			return i
		}
	}
	return -1
}

// firstConflict returns the conflicting lock of another owner with the
// lowest start (then the lowest owner), if any. Called with ino.mu held.
func (ino *inode) firstConflict(o Owner, t Type, s, e uint64) (Lock, bool) {
	var best Lock
	found := false
	for x, rs := range ino.owners {
		if x == o {
			continue
		}
		if i := firstConflict(rs, t, s, e); i >= 0 {
			l := rs[i].lock(x)
			if !found || l.Start < best.Start || (l.Start == best.Start && lessOwner(x, best.Owner)) {
				best, found = l, true
			}
		}
	}
	return best, found
}

// blockers returns the owners whose locks block a lock of type t on
// [s, e) by o. Called with ino.mu held.
func (ino *inode) blockers(o Owner, t Type, s, e uint64) []Owner {
	var out []Owner
	for x, rs := range ino.owners {
		if x != o && firstConflict(rs, t, s, e) >= 0 {
			out = append(out, x)
		}
	}
	return out
}

// apply sets o's locks on [s, e) to type t (Unlock removes them): the
// owner's ranges are split, replaced and merged as fcntl(2) does. It
// changes nothing and returns ENOLCK if o would go over a limit. Cost:
// O(log r + c) for r ranges of o of which c touch [s, e), plus the
// slice's copy when the count changes. Called with ino.mu held, and
// graphMu if ino has waiters.
func (m *Manager) apply(ino *inode, o Owner, t Type, s, e uint64) error {
	rs := ino.owners[o]
	if len(rs) == 0 && t == Unlock {
		return nil
	}
	// rs[lo:hi] are the ranges that overlap or touch [s, e]: the only ones
	// that can change or merge.
	lo, _ := slices.BinarySearchFunc(rs, s, func(r rng, s uint64) int {
		if r.end < s {
			return -1
		}
		return 1
	})
	hi := lo
	for hi < len(rs) && rs[hi].start <= e {
		hi++
	}
	var left, right []rng
	for _, r := range rs[lo:hi] {
		if r.start < s {
			left = append(left, rng{r.typ, r.start, min(r.end, s)})
		}
		if r.end > e {
			right = append(right, rng{r.typ, max(r.start, e), r.end})
		}
	}
	nw := left
	if t != Unlock {
		nw = append(nw, rng{t, s, e})
	}
	nw = append(nw, right...)
	merged := nw[:0]
	for _, r := range nw {
		if n := len(merged); n > 0 && merged[n-1].typ == r.typ && merged[n-1].end >= r.start {
			merged[n-1].end = max(merged[n-1].end, r.end)
			continue
		}
		merged = append(merged, r)
	}
	if err := m.charge(ino.key, o, len(merged)-(hi-lo)); err != nil {
		return err
	}
	rs = slices.Replace(rs, lo, hi, merged...)
	if len(rs) == 0 {
		delete(ino.owners, o)
	} else {
		ino.owners[o] = rs
	}
	return nil
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
	if l, ok := ino.firstConflict(r.Owner, r.Type, s, e); ok {
		return l, nil
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
	if r.Type != Unlock && len(ino.blockers(r.Owner, r.Type, s, e)) > 0 {
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
	if err := m.waitGrace(ctx, r.Owner, r.Reclaim); err != nil {
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
// Cancel and release end such a wait too (graceWait).
func (m *Manager) waitGrace(ctx context.Context, o Owner, reclaim bool) error {
	ch, err := m.graceCheck(reclaim)
	if err != ErrGrace {
		return err
	}
	gw := &graceWait{owner: o, end: make(chan error, 1)}
	m.graceMu.Lock()
	if m.graceWaits == nil {
		m.graceWaits = map[*graceWait]struct{}{}
	}
	m.graceWaits[gw] = struct{}{}
	m.graceMu.Unlock()
	forget := func() {
		m.graceMu.Lock()
		delete(m.graceWaits, gw)
		m.graceMu.Unlock()
	}
	select {
	case <-ch:
	case <-ctx.Done():
		forget()
		return eintr(ctx)
	case err := <-gw.end:
		forget()
		return err
	}
	forget()
	// A Cancel that counted this wait as the grace ended must end it.
	select {
	case err := <-gw.end:
		return err
	default:
		return nil
	}
}

// graceWait is a request waiting for the grace to end.
type graceWait struct {
	owner Owner
	end   chan error // receives the error that ends the wait (buffered)
}

// endGraceWaits ends the grace waits of the owners that match with err,
// and returns how many it ended.
func (m *Manager) endGraceWaits(match func(Owner) bool, err error) int {
	m.graceMu.Lock()
	defer m.graceMu.Unlock()
	n := 0
	for gw := range m.graceWaits {
		if !match(gw.owner) {
			continue
		}
		select {
		case gw.end <- err:
			n++
		default: // ended already
		}
	}
	return n
}

// Locks returns the POSIX locks held on k, in start order (for tests,
// debugging and a distributed implementation's handover).
func (m *Manager) Locks(k Key) []Lock {
	ino := m.lookup(k)
	if ino == nil {
		return nil
	}
	defer ino.mu.Unlock()
	var out []Lock
	for o, rs := range ino.owners {
		for _, r := range rs {
			out = append(out, r.lock(o))
		}
	}
	slices.SortFunc(out, func(a, b Lock) int {
		switch {
		case a.Start != b.Start:
			return cmp.Compare(a.Start, b.Start)
		case lessOwner(a.Owner, b.Owner):
			return -1
		case lessOwner(b.Owner, a.Owner):
			return 1
		}
		return 0
	})
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
	m.endGraceWaits(match, errReleased)
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
			for o, rs := range ino.owners {
				if match(o) {
					removed[o] += len(rs)
					delete(ino.owners, o)
				}
			}
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

// graceWaitCount returns the number of requests waiting for the grace
// to end (for tests).
func (m *Manager) graceWaitCount() int {
	m.graceMu.Lock()
	defer m.graceMu.Unlock()
	return len(m.graceWaits)
}
