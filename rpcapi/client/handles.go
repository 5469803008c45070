package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
	const method = wire.MethodOpen
	if flags > OpenReadWrite {
		return nil, Stat{}, &Error{Op: method, Errno: syscall.EINVAL, Msg: fmt.Sprintf("access mode %d", flags)}
	}
	h := &Handle{m: m, ino: ino, flags: flags}
	var (
		data []byte
		used *mountState
	)
	// The binary OPEN (PROTOCOL.md section 2): a FUSE mount opens every
	// file it reads or writes, and JSON would cost more than the call.
	_, err := m.do(ctx, method, func(ctx context.Context, st *mountState) error {
		used = st
		var err error
		_, data, err = m.c.binAttemptBuf(ctx, method, wire.RequestHeader{
			Opcode: wire.OpOpen, MountID: st.MountID, Inode: ino, Offset: uint64(flags),
			Flags: wire.RequestFlagStatExt, As: m.as,
		}, nil, make([]byte, wire.StatExtSize+8), false)
		return err
	})
	if err != nil {
		return nil, Stat{}, err
	}
	fh, st, err := decodeOpenReply(method, data)
	if err != nil {
		return nil, Stat{}, err
	}
	m.register(ctx, h, used, fh)
	return h, st, nil
}

// decodeOpenReply decodes the reply of a binary OPEN or CREATE_OPEN: the
// handle, then the extended stat record.
func decodeOpenReply(method string, data []byte) (uint64, Stat, error) {
	if len(data) != wire.StatExtSize+8 {
		return 0, Stat{}, protocolError(method, fmt.Errorf("%w: open reply of %d bytes", wire.ErrBadFrame, len(data)))
	}
	st, err := wire.DecodeStatExt(data[8:])
	if err != nil {
		return 0, Stat{}, protocolError(method, err)
	}
	return binary.LittleEndian.Uint64(data), st, nil
}

// register lists the new handle h, opened as server handle fh on the
// mount used.
func (m *Mount) register(ctx context.Context, h *Handle, used *mountState, fh uint64) {
	h.st, h.fh = used, fh
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
}

// CreateOpen creates the regular file name in directory dir with
// permission bits mode (exclusive: EEXIST if name exists) and opens it
// with the access mode flags, in one request, as open(2) with
// O_CREAT|O_EXCL: the handle has the access asked for whatever mode the
// file was given (a file created 0444 can be written through a handle
// opened for writing). It returns the handle and the new file's
// attributes. If the request's outcome was uncertain (the connection
// broke) and a retry finds the name taken by a file that is the call's
// own (as Create decides), that file is opened with a plain Open, which
// checks its mode.
func (m *Mount) CreateOpen(ctx context.Context, dir uint64, name string, mode, flags uint32) (*Handle, Stat, error) {
	const method = wire.MethodCreate
	if len(name) > wire.MaxNamePayload {
		return nil, Stat{}, &Error{Op: method, Errno: syscall.ENAMETOOLONG, Msg: fmt.Sprintf("name of %d bytes", len(name))}
	}
	ctx, cancel := m.c.withTimeout(ctx)
	defer cancel()
	var (
		data []byte
		used *mountState
	)
	uncertain, err := m.doCtx(ctx, method, func(ctx context.Context, st *mountState) error {
		used = st
		var err error
		_, data, err = m.c.binAttemptBuf(ctx, method, wire.RequestHeader{
			Opcode: wire.OpCreateOpen, MountID: st.MountID, Inode: dir, Offset: wire.CreateOpenOffset(mode, flags),
			Length: uint32(len(name)), Flags: wire.RequestFlagStatExt, As: m.as,
		}, []byte(name), make([]byte, wire.StatExtSize+8), false)
		return err
	})
	if err != nil {
		if !uncertain || !errors.Is(err, syscall.EEXIST) {
			return nil, Stat{}, err
		}
		s, serr := m.statAt(dir, name)(ctx)
		switch {
		case serr != nil:
			return nil, Stat{}, ruleCheckFailed(method, err, serr)
		case s.Mode&syscall.S_IFMT != syscall.S_IFREG, s.UID != m.actsAs(), s.Mode&0o5777 != mode&0o5777:
			return nil, Stat{}, err
		}
		m.ruleOK(method)
		return m.Open(ctx, s.Ino, flags)
	}
	fh, st, err := decodeOpenReply(method, data)
	if err != nil {
		return nil, Stat{}, err
	}
	h := &Handle{m: m, ino: st.Ino, flags: flags}
	m.register(ctx, h, used, fh)
	return h, st, nil
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
		_, err := m.c.binAttempt(ctx, wire.MethodClose, wire.RequestHeader{
			Opcode: wire.OpClose, MountID: st.MountID, Offset: fh, As: m.as,
		}, nil, nil)
		return err
	})
	if err != nil && uncertain && errors.Is(err, syscall.EBADF) {
		m.ruleOK(wire.MethodClose)
		return nil
	}
	return err
}

// on returns h's server handle on the mount st, opening it again there
// first if the Mount mounted again since (as remount does for every
// handle): EBADF if h is closed or was lost.
func (h *Handle) on(ctx context.Context, op string, st *mountState) (uint64, error) {
	h.mu.Lock()
	if !h.closed && h.lost == nil && h.st != st {
		h.reopen(ctx, st)
	}
	h.mu.Unlock()
	_, fh, err := h.server(op)
	return fh, err
}

// I/O through a handle (PROTOCOL.md, "I/O through a handle"): the access
// mode h was opened with decides what it may do, as a file descriptor's
// does. Reading needs OpenReadOnly or OpenReadWrite, writing and
// truncating OpenWriteOnly or OpenReadWrite (EBADF otherwise), and the
// file's permissions are not checked again: a file opened for writing
// stays writable through its handle after a chmod 0444, or a chown, and
// one created with mode 0444 and opened for writing can be written.
// Calls by inode number (Mount.Read, ...) are checked every time.

// Read reads up to len(p) bytes at off through h, as Mount.Read does
// (fewer at the end of the file, 0 and no error at or past it). EBADF if
// h was opened write-only, is closed, or was lost.
func (h *Handle) Read(ctx context.Context, p []byte, off uint64) (int, error) {
	n, err := h.m.chunked(ctx, wire.OpRead, h, h.ino, p, off)
	return n, toEBADF(err)
}

// Write writes p at off through h, as Mount.Write does. EBADF if h was
// opened read-only, is closed, or was lost.
func (h *Handle) Write(ctx context.Context, p []byte, off uint64) (int, error) {
	n, err := h.m.chunked(ctx, wire.OpWrite, h, h.ino, p, off)
	return n, toEBADF(err)
}

// Truncate sets the file's size through h (ftruncate) and returns its
// attributes. EBADF if h was opened read-only, is closed, or was lost.
func (h *Handle) Truncate(ctx context.Context, size uint64) (Stat, error) {
	m := h.m
	var res wire.StatResult
	_, err := m.do(ctx, wire.MethodSetattr, func(ctx context.Context, st *mountState) error {
		fh, err := h.on(ctx, wire.MethodSetattr, st)
		if err != nil {
			return err
		}
		return m.jsonAttempt(ctx, wire.MethodSetattr, wire.SetattrParams{MountID: st.MountID, Inode: h.ino,
			SetattrFields: Attrs{Mask: wire.SetSize, Size: size}.Fields(), Fh: fh}, &res)
	})
	return res.Stat, err
}

// Flush makes the file's data and metadata durable (fsync), as
// Mount.Flush does, through h: EBADF if h is closed or was lost.
func (h *Handle) Flush(ctx context.Context) error {
	m := h.m
	_, err := m.do(ctx, wire.MethodFlush, func(ctx context.Context, st *mountState) error {
		fh, err := h.on(ctx, wire.MethodFlush, st)
		if err != nil {
			return err
		}
		_, err = m.c.binAttempt(ctx, wire.MethodFlush, wire.RequestHeader{
			Opcode: wire.OpFlush, MountID: st.MountID, Inode: h.ino, As: m.as, Fh: fh}, nil, nil)
		return err
	})
	return toEBADF(err)
}
