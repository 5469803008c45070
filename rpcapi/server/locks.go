package server

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/lock"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Byte-range and flock locks (PROTOCOL.md section 4).
//
// Each volume has its own lock.Manager. Locks are taken through open
// handles (handles.go): the owner is (mount id, fh, the client's owner
// string, the mount's client instance), the file is the handle's inode.
// Closing a handle releases its locks, the end of a mount those of all its
// handles.
//
// Locks live in memory. So that clients can reclaim theirs after a
// restart, a volume on which locks may have been held when the daemon
// stopped starts in a grace period of reclaim_grace; the volume records
// this with a durable mark (inode.FS.MarkLocks), set before the first lock
// is granted and removed once the volume has held no lock for
// lockMarkIdle, or at a shutdown while it holds none.

// lockMarkIdle is how long a volume holds no lock (nor lock call in
// progress) before its mark is removed.
const lockMarkIdle = 10 * time.Second

// locker is what the server needs of a lock manager: lock.Manager, or
// one whose state lives in a store shared by several gateways.
type locker interface {
	lock.Locker
	// Stats tells whether the volume holds locks (Files).
	Stats() lock.Stats
	// InGrace reports whether only reclaims are granted.
	InGrace() bool
	// Close stops its timers at shutdown.
	Close()
}

// volumeLocks is a volume's lock manager and its durable mark.
type volumeLocks struct {
	m locker

	mu     sync.Mutex
	marked bool      // the volume carries the mark
	calls  int       // lock-taking calls in progress
	idle   time.Time // when the volume was last seen without locks; zero while it has some
}

func init() {
	methods[wire.MethodLock] = handler(ro, []string{"owner", "reclaim"}, func(ctx context.Context, s *Server, e *env, p *wire.LockParams) (any, error) {
		return s.lock(ctx, e, p)
	})
	methods[wire.MethodFlock] = handler(ro, []string{"nonblock", "reclaim"}, func(ctx context.Context, s *Server, e *env, p *wire.FlockParams) (any, error) {
		return empty(s.flock(ctx, e, p))
	})
	methods[wire.MethodLockCancel] = handler(ro, []string{"owner"}, func(_ context.Context, s *Server, e *env, p *wire.LockCancelParams) (any, error) {
		h := s.hs.get(e.m.ID, p.Fh)
		if h == nil {
			return nil, errNoHandle("lock_cancel", e.m.ID, p.Fh)
		}
		n := h.v.locks.m.Cancel(lock.Owner{Mount: e.m.ID, Handle: p.Fh, ID: p.Owner, Client: e.m.Client})
		return wire.LockCancelResult{Cancelled: n}, nil
	})
}

// openLocks creates the lock manager of v: in a grace period of
// reclaim_grace if the volume carries the mark.
func (s *Server) openLocks(ctx context.Context, v *volume) error {
	marked, err := v.fs.LocksMarked(ctx)
	if err != nil {
		return fmt.Errorf("volume %q: %w", v.name, err)
	}
	v.locks = &volumeLocks{marked: marked, idle: time.Now()}
	opts := lock.Options{}
	if marked && s.cfg.ReclaimGrace > 0 {
		opts.GraceUntil = time.Now().Add(s.cfg.ReclaimGrace)
		s.log.Info("locks may have been held when the daemon stopped: only reclaims are granted during reclaim_grace",
			zap.String("volume", v.name), zap.Duration("reclaim_grace", s.cfg.ReclaimGrace))
	}
	m := lock.New(opts)
	v.locks.m = m
	if v.vol != nil && v.vol.LockStore != nil {
		// Several gateways serve the volume: locks hold across them.
		v.locks.m = lock.NewShared(m, v.vol.LockStore)
	}
	return nil
}

func errNoHandle(op string, mountID, fh uint64) error {
	return fmt.Errorf("%s: no handle %d on mount %d: %w", op, fh, mountID, syscall.EBADF)
}

// lockHandle returns the open handle fh of e's mount and the lock owner
// (that handle, owner string id).
func (s *Server) lockHandle(op string, e *env, fh uint64, id string) (*handle, lock.Owner, error) {
	h := s.hs.get(e.m.ID, fh)
	if h == nil {
		return nil, lock.Owner{}, errNoHandle(op, e.m.ID, fh)
	}
	if len(id) > wire.MaxLockOwner {
		return nil, lock.Owner{}, fmt.Errorf("%s: owner of %d bytes (at most %d): %w", op, len(id), wire.MaxLockOwner, syscall.EINVAL)
	}
	return h, lock.Owner{Mount: e.m.ID, Handle: fh, ID: id, Client: e.m.Client}, nil
}

func (s *Server) lock(ctx context.Context, e *env, p *wire.LockParams) (any, error) {
	h, o, err := s.lockHandle("lock", e, p.Fh, p.Owner)
	if err != nil {
		return nil, err
	}
	t, err := lock.ParseType(p.Type)
	if err != nil {
		return nil, err
	}
	r := lock.Request{Key: h.lockKey(), Owner: o, Type: t, Start: p.Start, Len: p.Len, Reclaim: p.Reclaim}
	lm := h.v.locks
	if p.Cmd == wire.LockGetLk {
		l, err := lm.m.GetLk(r)
		if err != nil {
			return nil, err
		}
		if l.Type == lock.Unlock {
			return wire.LockResult{Type: wire.LockUnlock}, nil
		}
		return wire.LockResult{Type: l.Type.String(), Start: &l.Start, Len: &l.Len, Owner: &l.Owner.ID}, nil
	}
	if p.Cmd != wire.LockSetLk && p.Cmd != wire.LockSetLkW {
		return nil, fmt.Errorf("lock: cmd %q: %w", p.Cmd, syscall.EINVAL)
	}
	// fcntl(2): a read lock needs a descriptor open for reading, a write
	// lock one open for writing.
	switch {
	case t == lock.Read && h.acc == wire.OpenWriteOnly:
		return nil, fmt.Errorf("lock: read lock on handle %d, open for writing only: %w", p.Fh, syscall.EBADF)
	case t == lock.Write && h.acc == wire.OpenReadOnly:
		return nil, fmt.Errorf("lock: write lock on handle %d, open for reading only: %w", p.Fh, syscall.EBADF)
	}
	if t == lock.Unlock {
		return wire.Empty{}, lm.m.SetLk(r)
	}
	done, err := s.lockCall(ctx, h.v)
	if err != nil {
		return nil, err
	}
	defer done()
	if p.Cmd == wire.LockSetLk {
		err = lm.m.SetLk(r)
	} else {
		err = lm.m.SetLkW(ctx, r)
	}
	if err != nil {
		return nil, conflict("lock", err)
	}
	return wire.Empty{}, s.lockedThrough(h)
}

func (s *Server) flock(ctx context.Context, e *env, p *wire.FlockParams) error {
	h, o, err := s.lockHandle("flock", e, p.Fh, "")
	if err != nil {
		return err
	}
	t, err := lock.ParseFlockOp(p.Op)
	if err != nil {
		return err
	}
	r := lock.FlockRequest{Key: h.lockKey(), Owner: o, Type: t, NonBlock: p.NonBlock, Reclaim: p.Reclaim}
	if t == lock.Unlock {
		return h.v.locks.m.Flock(ctx, r)
	}
	done, err := s.lockCall(ctx, h.v)
	if err != nil {
		return err
	}
	defer done()
	if err := h.v.locks.m.Flock(ctx, r); err != nil {
		return conflict("flock", err)
	}
	return s.lockedThrough(h)
}

// conflict names the manager's bare EAGAIN (a conflicting lock) in the
// reply's message.
func conflict(op string, err error) error {
	if err == syscall.EAGAIN {
		return fmt.Errorf("%s: conflicting lock: %w", op, err)
	}
	return err
}

// lockedThrough checks, after a lock was granted through h, that h is
// still open: a close that ran during the call released the handle's
// locks before this one was granted, so it is released again here.
func (s *Server) lockedThrough(h *handle) error {
	if s.hs.get(h.mountID, h.fh) == h {
		return nil
	}
	h.v.locks.m.ReleaseHandle(h.mountID, h.fh)
	return fmt.Errorf("lock: handle %d closed during the call: %w", h.fh, syscall.EBADF)
}

// lockCall begins a call that may take a lock on v: the volume is marked
// first. done ends it.
func (s *Server) lockCall(ctx context.Context, v *volume) (done func(), err error) {
	vl := v.locks
	vl.mu.Lock()
	defer vl.mu.Unlock()
	if !vl.marked {
		if err := v.fs.MarkLocks(ctx, true); err != nil {
			return nil, err
		}
		vl.marked = true
	}
	vl.calls++
	vl.idle = time.Time{}
	return func() {
		vl.mu.Lock()
		vl.calls--
		vl.mu.Unlock()
	}, nil
}

// sweepLockMarks removes the mark of every volume that has held no lock
// for lockMarkIdle (called periodically).
func (s *Server) sweepLockMarks(now time.Time) {
	for _, v := range s.order {
		vl := v.locks
		vl.mu.Lock()
		switch {
		case !vl.marked:
		case vl.calls > 0 || vl.m.Stats().Files > 0 || vl.m.InGrace():
			vl.idle = time.Time{}
		case vl.idle.IsZero():
			vl.idle = now
		case now.Sub(vl.idle) >= lockMarkIdle:
			if err := v.fs.MarkLocks(context.Background(), false); err != nil {
				s.log.Warn("remove the locks mark of an idle volume", zap.String("volume", v.name), zap.Error(err))
			} else {
				vl.marked = false
			}
		}
		vl.mu.Unlock()
	}
}

// runLockSweeper calls sweepLockMarks until stop is closed.
func (s *Server) runLockSweeper(stop <-chan struct{}) {
	t := time.NewTicker(lockMarkIdle / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.sweepLockMarks(now)
		}
	}
}

// releaseLocks drops the locks of a closed handle.
func (h *handle) releaseLocks() {
	h.v.locks.m.ReleaseHandle(h.mountID, h.fh)
}

// lockKey is the lock manager's key of h's file.
func (h *handle) lockKey() lock.Key {
	return lock.Key{Volume: h.v.name, Inode: uint64(h.ino)}
}

// closeLocks stops the lock managers at shutdown. A volume that holds no
// lock loses its mark: no client has one to reclaim after the restart.
func (s *Server) closeLocks() {
	for _, v := range s.order {
		vl := v.locks
		vl.m.Close()
		vl.mu.Lock()
		if vl.marked && vl.calls == 0 && vl.m.Stats().Files == 0 {
			if err := v.fs.MarkLocks(context.Background(), false); err != nil {
				s.log.Warn("remove the locks mark at shutdown", zap.String("volume", v.name), zap.Error(err))
			} else {
				vl.marked = false
			}
		}
		vl.mu.Unlock()
	}
}
