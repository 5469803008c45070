package client

import (
	"context"
	"errors"
	"sync"
	"syscall"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Open access modes for Mount.Open (Linux's O_RDONLY, O_WRONLY, O_RDWR).
const (
	OpenReadOnly  = wire.OpenReadOnly
	OpenWriteOnly = wire.OpenWriteOnly
	OpenReadWrite = wire.OpenReadWrite
)

// Handle is an open file (PROTOCOL.md, "Open files and orphans"). While it
// is open, the file's inode stays usable through its number even after its
// last link is removed (unlink, or a rename over it): Read, Write, GetStat,
// SetAttr, Flush and the xattr calls by inode number keep working, and the
// file is freed at its last Close.
//
// A Handle survives daemon restarts: when the Mount mounts again, it opens
// every open Handle again with "reclaim" (allowed within the server's
// reclaim_grace after its start), and the Handle goes on with the new
// server handle; callers see nothing. The client notices a restart at its
// first call after it, so a client that makes no call for the whole
// reclaim_grace loses its unlinked files. A file that could not be opened
// again (it was freed meanwhile: its mount was reclaimed after
// mount_grace, or the grace ran out) is lost: Close then reports EBADF.
//
// Locks are taken through a Handle (Mount.Lock, Mount.Flock) and live no
// longer than it: Close releases them. The Handle keeps a record of the
// locks it holds, as the server holds them, and when it is opened again
// after a restart it takes them again with "reclaim" before the call that
// noticed the restart goes on; a lock that cannot be taken again is lost
// (Client.LostLocks).
//
// Its methods are safe for concurrent use.
type Handle struct {
	m     *Mount
	ino   uint64
	flags uint32

	mu     sync.Mutex
	st     *mountState // the mount the server handle belongs to
	fh     uint64      // the server's handle
	lost   error       // not nil: could not be opened again after a remount
	closed bool
	// The locks held through the handle, as the server holds them
	// (locks.go): per owner, the sorted disjoint POSIX ranges; the flock
	// lock (FlockUnlock: none).
	posix map[string][]lockRange
	flock FlockOp
}

// handleSet is a Mount's open handles.
type handleSet struct {
	mu sync.Mutex
	hs map[*Handle]struct{}
}

// Ino returns the inode number of the open file.
func (h *Handle) Ino() uint64 { return h.ino }

// Fh returns the server's current handle id (it changes when the Mount
// mounts again).
func (h *Handle) Fh() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fh
}

// Open opens inode ino with the access mode flags (OpenReadOnly,
// OpenWriteOnly, OpenReadWrite) and returns its handle and attributes. An
// inode that does not exist, or has no link left, is ENOENT; opening for
// writing on a read-only mount is EROFS, a directory EISDIR.
//
// An open whose first attempt was uncertain (the connection broke) and
// that ran twice leaves one more server handle, which pins the file until
// the mount goes.
func (m *Mount) Open(ctx context.Context, ino uint64, flags uint32) (*Handle, Stat, error) {
	h := &Handle{m: m, ino: ino, flags: flags}
	var res wire.OpenResult
	var used *mountState
	_, err := m.do(ctx, wire.MethodOpen, func(ctx context.Context, st *mountState) error {
		used = st
		return m.jsonAttempt(ctx, wire.MethodOpen, wire.OpenParams{MountID: st.MountID, Inode: ino, Flags: flags}, &res)
	})
	if err != nil {
		return nil, Stat{}, err
	}
	h.st, h.fh = used, res.Fh
	m.hs.mu.Lock()
	if m.hs.hs == nil {
		m.hs.hs = map[*Handle]struct{}{}
	}
	m.hs.hs[h] = struct{}{}
	m.hs.mu.Unlock()
	// A remount that ran after the open but before the handle was listed
	// did not open it again: do it now.
	if cur := m.st.Load(); cur != used {
		h.mu.Lock()
		h.reopen(ctx, cur)
		h.mu.Unlock()
	}
	return h, res.Stat, nil
}

// reopenHandles opens every open handle again on the mount st, after a
// remount. Called by remount, which holds remountMu.
func (m *Mount) reopenHandles(ctx context.Context, st *mountState) {
	m.hs.mu.Lock()
	hs := make([]*Handle, 0, len(m.hs.hs))
	for h := range m.hs.hs {
		hs = append(hs, h)
	}
	m.hs.mu.Unlock()
	for _, h := range hs {
		h.mu.Lock()
		h.reopen(ctx, st)
		h.mu.Unlock()
	}
}

// reopen opens h again, with reclaim, on mount st, unless it is closed,
// lost or already open there, and takes its locks again (reclaimLocks).
// Called with h.mu held.
func (h *Handle) reopen(ctx context.Context, st *mountState) {
	if h.closed || h.lost != nil || h.st == st {
		return
	}
	m := h.m
	var res wire.OpenResult
	p := wire.OpenParams{MountID: st.MountID, Inode: h.ino, Flags: h.flags, Reclaim: true}
	err := m.c.retryConn(ctx, wire.MethodOpen, func(ctx context.Context) error {
		return m.jsonAttempt(ctx, wire.MethodOpen, p, &res)
	})
	if err != nil {
		h.lost = err
		m.c.o.logger.Warn("proxyfs: could not open a file again after mounting again", "ino", h.ino, "err", err)
		h.forgetLocks(true, err)
		return
	}
	h.st, h.fh = st, res.Fh
	h.reclaimLocks(ctx, st)
}

// Close closes the handle. The last close of a file without links frees
// it. Closing twice is EBADF, and so is closing a handle that was lost
// (see Handle).
func (h *Handle) Close(ctx context.Context) error {
	m := h.m
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return &Error{Op: wire.MethodClose, Errno: syscall.EBADF, Msg: "handle already closed"}
	}
	h.closed = true
	lost := h.lost
	h.forgetLocks(false, nil) // the server drops them with the handle
	h.mu.Unlock()
	m.hs.mu.Lock()
	delete(m.hs.hs, h)
	m.hs.mu.Unlock()
	if lost != nil {
		return &Error{Op: wire.MethodClose, Errno: syscall.EBADF, Msg: "the file was lost when the mount was made again: " + lost.Error(), cause: lost}
	}
	uncertain, err := m.do(ctx, wire.MethodClose, func(ctx context.Context, st *mountState) error {
		h.mu.Lock()
		if h.st != st {
			// Mounted again since h was opened: the server handle went
			// with the old mount, and so did the pin.
			h.mu.Unlock()
			return nil
		}
		fh := h.fh
		h.mu.Unlock()
		return m.jsonAttempt(ctx, wire.MethodClose, wire.CloseParams{MountID: st.MountID, Fh: fh}, nil)
	})
	if err != nil && uncertain && errors.Is(err, syscall.EBADF) {
		m.ruleOK(wire.MethodClose)
		return nil
	}
	return err
}
