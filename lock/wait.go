package lock

import (
	"context"
	"slices"
)

// waiter is a queued SetLkW or Flock. Its fields after done are guarded
// by graphMu (and changed with ino.mu held too).
type waiter struct {
	ino        *inode
	flock      bool
	owner      Owner
	typ        Type
	start, end uint64 // POSIX only
	done       chan error

	queued   bool
	blockers []Owner // POSIX only: the owners it waits for
}

// enqueue queues w on its file. Called with w.ino.mu and graphMu held.
func (m *Manager) enqueue(w *waiter) {
	w.done = make(chan error, 1)
	w.queued = true
	w.ino.waiters = append(w.ino.waiters, w)
	m.waiting[w.owner] = append(m.waiting[w.owner], w)
	m.stats.waits.Add(1)
}

// finish takes w off the queues and ends its wait with err. Called with
// w.ino.mu and graphMu held, w queued.
func (m *Manager) finish(w *waiter, err error) {
	w.queued = false
	ino := w.ino
	if i := slices.Index(ino.waiters, w); i >= 0 {
		ino.waiters = slices.Delete(ino.waiters, i, i+1)
	}
	ws := m.waiting[w.owner]
	if i := slices.Index(ws, w); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
	}
	if len(ws) == 0 {
		delete(m.waiting, w.owner)
	} else {
		m.waiting[w.owner] = ws
	}
	w.blockers = nil
	w.done <- err
}

// wait waits for w to be granted or ended.
func (m *Manager) wait(ctx context.Context, w *waiter) error {
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
	}
	m.cancel(w, eintr(ctx))
	return <-w.done
}

// cancel ends w's wait with err if it is still queued, and reports
// whether it was.
func (m *Manager) cancel(w *waiter, err error) bool {
	ino := w.ino
	ino.mu.Lock()
	m.graphMu.Lock()
	was := w.queued
	if was {
		m.finish(w, err)
		m.stats.cancelled.Add(1)
	}
	m.graphMu.Unlock()
	ino.unlock()
	return was
}

// Cancel ends every wait of o (SetLkW and Flock) with EINTR and returns
// how many it ended: the server's lock_cancel.
func (m *Manager) Cancel(o Owner) int {
	m.graphMu.Lock()
	ws := slices.Clone(m.waiting[o])
	m.graphMu.Unlock()
	n := m.endGraceWaits(func(w Owner) bool { return w == o }, errCancelled)
	for _, w := range ws {
		if m.cancel(w, errCancelled) {
			n++
		}
	}
	return n
}

// wake grants, oldest first, the waiters of ino that nothing blocks any
// longer, and records for the others who blocks them (the wait-for
// graph). A granted POSIX lock may have downgraded its owner's lock, so
// the pass repeats while it grants one. Called with ino.mu and graphMu
// held.
func (m *Manager) wake(ino *inode) {
	for again := true; again; {
		again = false
		for i := 0; i < len(ino.waiters); {
			w := ino.waiters[i]
			if w.flock {
				if ino.flockBlocked(w.owner, w.typ) {
					i++
					continue
				}
				err := m.flockSet(ino, w.owner, w.typ)
				if err == nil {
					m.stats.granted.Add(1)
				}
				m.finish(w, err) // removes ino.waiters[i]
				continue
			}
			b := ino.blockers(w.owner, w.typ, w.start, w.end)
			if len(b) > 0 {
				w.blockers = b
				i++
				continue
			}
			err := m.apply(ino, w.owner, w.typ, w.start, w.end)
			if err == nil {
				m.stats.granted.Add(1)
				again = true
			}
			m.finish(w, err)
		}
	}
}

// cycle reports whether o, about to wait for blockers, would close a cycle
// of the wait-for graph. Called with graphMu held.
func (m *Manager) cycle(o Owner, blockers []Owner) bool {
	seen := map[Owner]bool{}
	stack := slices.Clone(blockers)
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x == o {
			return true
		}
		if seen[x] {
			continue
		}
		seen[x] = true
		for _, w := range m.waiting[x] {
			stack = append(stack, w.blockers...)
		}
	}
	return false
}
