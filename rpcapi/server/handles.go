package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Open file handles (PROTOCOL.md, "Open files and orphans").
//
// A handle pins its inode in the volume's inode.FS (OpenInode) so that an
// unlink or a rename over it keeps the inode as an orphan until the last
// handle closes. Handles belong to a mount: they die with it (unmount, or
// the mount reclaimed after mount_grace), and a handle presented with
// another mount id is EBADF. They live in memory only; after a restart
// clients reopen their files with "reclaim": true, and the orphans nobody
// reopened within reclaim_grace are freed.

// maxHandlesPerMount caps the handles one mount may hold (EMFILE beyond).
const maxHandlesPerMount = 1 << 16

// handle is one open file.
type handle struct {
	fh      uint64
	mountID uint64
	v       *volume
	ino     inode.Ino
	acc     uint32 // the access mode it was opened with (wire.OpenReadOnly, ...)
}

// handles is the server's handle table and the orphan reclaim timer.
type handles struct {
	mu      sync.Mutex
	byFh    map[uint64]*handle
	byMount map[uint64]map[uint64]*handle

	// The reclaim_grace timer, started by Start when a volume has orphans.
	timerMu sync.Mutex
	timer   *time.Timer
	stopped bool
	running sync.WaitGroup
}

func init() {
	methods[wire.MethodOpen] = handler(ro, []string{"flags", "reclaim"}, func(ctx context.Context, s *Server, e *env, p *wire.OpenParams) (any, error) {
		return s.open(ctx, e, p)
	})
	methods[wire.MethodClose] = handler(ro, nil, func(ctx context.Context, s *Server, e *env, p *wire.CloseParams) (any, error) {
		return empty(s.closeHandle(ctx, e.m.ID, p.Fh))
	})
}

func (s *Server) open(ctx context.Context, e *env, p *wire.OpenParams) (any, error) {
	want, err := openAccess(e, wire.MethodOpen, p.Flags)
	if err != nil {
		return nil, err
	}
	return s.openAs(ctx, e, e.caller(), inode.Ino(p.Inode), p.Flags, want, p.Reclaim)
}

// openAccess checks the access mode acc of an open (0, 1 or 2: EINVAL
// otherwise; EROFS for writing on a read-only mount) and returns the
// access it asks for.
func openAccess(e *env, op string, acc uint32) (inode.Access, error) {
	if acc&^3 != 0 || acc == 3 {
		return 0, fmt.Errorf("%s: flags %#x: only the access mode 0, 1 or 2: %w", op, acc, syscall.EINVAL)
	}
	if acc != wire.OpenReadOnly {
		if err := e.writable(); err != nil {
			return 0, err
		}
	}
	return accessOf(acc), nil
}

// accessOf is the access an open with access mode acc (0, 1 or 2) grants.
func accessOf(acc uint32) inode.Access {
	switch acc {
	case wire.OpenWriteOnly:
		return inode.MayWrite
	case wire.OpenReadWrite:
		return inode.MayRead | inode.MayWrite
	}
	return inode.MayRead
}

// createOpen creates file name in directory dir and opens it with access
// mode acc in one step, as open(2) with O_CREAT|O_EXCL: the new file's
// handle has the access asked for whatever mode the file was given (a
// file created 0444 and opened for writing can be written through it).
// If the open fails after the create (EMFILE), the file stays.
func (s *Server) createOpen(ctx context.Context, e *env, op string, dir inode.Ino, name string, mode, acc uint32) (inode.Attr, uint64, error) {
	want, err := openAccess(e, op, acc)
	if err != nil {
		return inode.Attr{}, 0, err
	}
	a, err := e.fs.Create(ctx, e.caller(), dir, name, mode)
	if err != nil {
		return inode.Attr{}, 0, err
	}
	c := e.caller()
	c.Opened, c.OpenedIno = want, a.Ino
	res, err := s.openAs(ctx, e, c, a.Ino, acc, want, false)
	if err != nil {
		return inode.Attr{}, 0, err
	}
	return a, res.Fh, nil
}

// openAs opens inode ino for caller c with access mode acc (want: the
// access it asks for) and adds the handle.
func (s *Server) openAs(ctx context.Context, e *env, c inode.Caller, ino inode.Ino, acc uint32, want inode.Access, reclaim bool) (wire.OpenResult, error) {
	a, err := e.fs.OpenInode(ctx, c, ino, want, reclaim)
	if err != nil {
		return wire.OpenResult{}, err
	}
	h := &handle{mountID: e.m.ID, v: e.v, ino: ino, acc: acc}
	if err := s.hs.add(h); err != nil {
		_ = e.fs.CloseInode(ctx, ino)
		return wire.OpenResult{}, err
	}
	// The mount may have gone (unmounted, reclaimed) since env resolved
	// it; its handles were then dropped before h was added, or are dropped
	// after this check (see closeMount).
	if _, err := s.mounts.Get(e.m.ID); err != nil {
		_ = s.closeHandle(ctx, e.m.ID, h.fh)
		return wire.OpenResult{}, err
	}
	return wire.OpenResult{Fh: h.fh, Stat: e.stat(a)}, nil
}

// add gives h a fresh random id and adds it.
func (t *handles) add(h *handle) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byFh == nil {
		t.byFh = map[uint64]*handle{}
		t.byMount = map[uint64]map[uint64]*handle{}
	}
	mine := t.byMount[h.mountID]
	if len(mine) >= maxHandlesPerMount {
		return fmt.Errorf("mount %d holds %d open files: %w", h.mountID, len(mine), syscall.EMFILE)
	}
	for {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
		fh := binary.LittleEndian.Uint64(b[:]) & mount.MaxID
		if fh == 0 || t.byFh[fh] != nil {
			continue
		}
		h.fh = fh
		break
	}
	if mine == nil {
		mine = map[uint64]*handle{}
		t.byMount[h.mountID] = mine
	}
	mine[h.fh] = h
	t.byFh[h.fh] = h
	return nil
}

// take removes handle fh of mount mountID; nil if there is none.
func (t *handles) take(mountID, fh uint64) *handle {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.byFh[fh]
	if h == nil || h.mountID != mountID {
		return nil
	}
	delete(t.byFh, fh)
	mine := t.byMount[mountID]
	delete(mine, fh)
	if len(mine) == 0 {
		delete(t.byMount, mountID)
	}
	return h
}

// takeMount removes every handle of mount mountID.
func (t *handles) takeMount(mountID uint64) []*handle {
	t.mu.Lock()
	defer t.mu.Unlock()
	mine := t.byMount[mountID]
	delete(t.byMount, mountID)
	out := make([]*handle, 0, len(mine))
	for fh, h := range mine {
		delete(t.byFh, fh)
		out = append(out, h)
	}
	return out
}

// get returns handle fh of mount mountID; nil if there is none.
func (t *handles) get(mountID, fh uint64) *handle {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h := t.byFh[fh]; h != nil && h.mountID == mountID {
		return h
	}
	return nil
}

// mountHasHandles reports whether mount mountID holds open handles.
func (t *handles) mountHasHandles(mountID uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byMount[mountID]) > 0
}

// holdsOpenFiles returns connReader.keep for a connection whose mounts hd
// holds: a connection that holds a mount with open handles (and so,
// perhaps, locks) is not closed for idleness, because the end of the
// mount would close them.
func (s *Server) holdsOpenFiles(hd *mount.Holder) func() bool {
	return func() bool { return hd.Any(s.hs.mountHasHandles) }
}

// count returns the number of open handles.
func (t *handles) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byFh)
}

// closeHandle closes handle fh of mount mountID: EBADF if that mount has
// no such handle. The last close of an orphan frees it.
func (s *Server) closeHandle(ctx context.Context, mountID, fh uint64) error {
	h := s.hs.take(mountID, fh)
	if h == nil {
		return errNoHandle("close", mountID, fh)
	}
	h.releaseLocks()
	return h.v.fs.CloseInode(ctx, h.ino)
}

// closeMount closes every handle of a mount that has gone (unmounted or
// reclaimed).
func (s *Server) closeMount(mountID uint64) {
	hs := s.hs.takeMount(mountID)
	for _, v := range s.order {
		v.locks.m.ReleaseMount(mountID)
	}
	for _, h := range hs {
		if err := h.v.fs.CloseInode(context.Background(), h.ino); err != nil {
			s.log.Warn("close handle of a gone mount", zap.Uint64("mount", mountID), zap.Uint64("ino", uint64(h.ino)), zap.Error(err))
		}
	}
	if len(hs) > 0 {
		s.log.Debug("closed the handles of a gone mount", zap.Uint64("mount", mountID), zap.Int("handles", len(hs)))
	}
}

// startReclaim starts the reclaim_grace timer if a volume has orphans from
// before the start: when it fires, the orphans nobody reopened are freed.
func (s *Server) startReclaim() {
	n := 0
	for _, v := range s.order {
		n += len(v.fs.Orphans())
	}
	if n == 0 {
		return
	}
	s.log.Info("orphans wait for their clients to reopen them", zap.Int("orphans", n), zap.Duration("reclaim_grace", s.cfg.ReclaimGrace))
	t := &s.hs
	t.timerMu.Lock()
	defer t.timerMu.Unlock()
	if t.stopped {
		return
	}
	t.running.Add(1)
	t.timer = time.AfterFunc(s.cfg.ReclaimGrace, func() {
		defer t.running.Done()
		t.timerMu.Lock()
		stopped := t.stopped
		t.timerMu.Unlock()
		if !stopped {
			s.freeOrphans()
		}
	})
}

// freeOrphans frees, in every volume, the orphans that no handle holds.
func (s *Server) freeOrphans() {
	for _, v := range s.order {
		n, err := v.fs.FreeOrphans(context.Background())
		if err != nil {
			s.log.Error("free orphans after reclaim_grace", zap.String("volume", v.name), zap.Int("freed", n), zap.Error(err))
			continue
		}
		if n > 0 {
			s.log.Info("freed orphans that no client reopened within reclaim_grace", zap.String("volume", v.name), zap.Int("freed", n))
		}
	}
}

// stopReclaim stops the reclaim timer and waits for a run in progress.
func (s *Server) stopReclaim() {
	t := &s.hs
	t.timerMu.Lock()
	t.stopped = true
	if t.timer != nil && t.timer.Stop() {
		t.running.Done() // it will not run
	}
	t.timerMu.Unlock()
	t.running.Wait()
}

// through returns the identity of a call on inode ino of e's mount made
// through handle fh (wire.FhMember, wire.RequestFlagHandle), a call that
// needs the access need (inode.MayRead, inode.MayWrite, or 0 for flush).
// The handle's access mode decides, as a file descriptor's does: EBADF
// for a handle the mount does not have, one of another inode, or one
// whose mode lacks need (a read through a write-only handle, a write
// through a read-only one); and the access granted at open is not
// checked again (inode.Caller.Opened). fh 0 is a call without a handle:
// e.caller(), checked against the file's mode as ever.
func (s *Server) through(e *env, op string, ino inode.Ino, fh uint64, need inode.Access) (inode.Caller, error) {
	c := e.caller()
	if fh == 0 {
		return c, nil
	}
	h := s.hs.get(e.m.ID, fh)
	if h == nil {
		return c, errNoHandle(op, e.m.ID, fh)
	}
	if h.ino != ino {
		return c, fmt.Errorf("%s: handle %d of mount %d is open on inode %d, not %d: %w", op, fh, e.m.ID, h.ino, ino, syscall.EBADF)
	}
	granted := accessOf(h.acc)
	if need&^granted != 0 {
		what := "reading"
		if need&inode.MayWrite != 0 {
			what = "writing"
		}
		return c, fmt.Errorf("%s: handle %d is not open for %s: %w", op, fh, what, syscall.EBADF)
	}
	c.Opened, c.OpenedIno = granted, ino
	return c, nil
}
