package fusefs

import (
	"context"
	"errors"
	"math"
	"strconv"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// POSIX record locks belong to a process (the kernel's lock owner), not to
// a file descriptor: a process's locks on a file are one set whichever of
// its descriptors took them, and any close(2) of the file by the process
// releases them all. The server's locks belong to a handle and an owner
// string, so FS takes every POSIX lock on an inode through one server
// handle per inode (node.locks), with the kernel's lock owner as the owner
// string: locks of one process merge, locks of two processes (or of two
// clients) conflict. That handle is opened at the first lock and closed at
// the inode's last release. flock locks belong to the open file
// description, as the server's flock locks belong to a handle, so they are
// taken through the file's own handle.

// ownerString is the server's lock owner for a kernel lock owner.
func ownerString(owner uint64) string { return strconv.FormatUint(owner, 16) }

// lockHandle returns the handle through which the POSIX locks on inode ino
// are taken, opening it if needed (read-write, or read-only where the mount
// or the file allows no writing: the kernel has checked that a write lock
// comes from a descriptor open for writing).
func (fs *FS) lockHandle(ctx context.Context, m *client.Mount, ino uint64) (*client.Handle, error) {
	fs.mu.Lock()
	if n := fs.nodes[ino]; n != nil && n.locks != nil {
		h := n.locks
		fs.mu.Unlock()
		return h, nil
	}
	fs.mu.Unlock()
	// The lock handle is the mount's, not the caller's: the caller's
	// permission was checked when it opened the file it locks through.
	h, _, err := fs.m.Open(ctx, ino, client.OpenReadWrite)
	if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) {
		h, _, err = fs.m.Open(ctx, ino, client.OpenReadOnly)
	}
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	n := fs.node(ino)
	if n.locks == nil {
		n.locks = h
		h = nil
	}
	held := n.locks
	fs.mu.Unlock()
	if h != nil { // another request opened one first
		_ = h.Close(ctx)
	}
	return held, nil
}

// unlockOwner releases every POSIX lock of owner on inode ino (close(2)).
func (fs *FS) unlockOwner(ctx context.Context, m *client.Mount, ino, owner uint64) error {
	fs.mu.Lock()
	var h *client.Handle
	if n := fs.nodes[ino]; n != nil && n.locks != nil {
		if _, ok := n.owners[owner]; ok {
			h = n.locks
			delete(n.owners, owner)
		}
	}
	fs.mu.Unlock()
	if h == nil {
		return nil
	}
	_, err := m.Lock(ctx, h, client.SetLk, client.LockUnlock, 0, 0, ownerString(owner))
	return err
}

// lockType converts fcntl's lock type.
func lockType(t uint32) (client.LockType, error) {
	switch t {
	case syscall.F_RDLCK:
		return client.LockRead, nil
	case syscall.F_WRLCK:
		return client.LockWrite, nil
	case syscall.F_UNLCK:
		return client.LockUnlock, nil
	}
	return 0, syscall.EINVAL
}

// lockRange converts FUSE's inclusive range (End math.MaxInt64: to the
// end of the file) to the server's start and length (0: to the end).
func lockRange(lk *fuse.FileLock) (start, length int64) {
	start = int64(lk.Start)
	if lk.End >= math.MaxInt64 {
		return start, 0
	}
	return start, int64(lk.End-lk.Start) + 1
}

// GetLk answers fcntl F_GETLK (and F_OFD_GETLK): the first lock that
// would conflict, F_UNLCK if none. The pid of a lock held through this
// mount is its process's; of another client's, 0.
func (fs *FS) GetLk(cancel <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	typ, err := lockType(in.Lk.Typ)
	if err != nil {
		return status(err)
	}
	h, err := fs.lockHandle(ctx, m, in.NodeId)
	if err != nil {
		return status(err)
	}
	start, length := lockRange(&in.Lk)
	info, err := m.Lock(ctx, h, client.GetLk, typ, start, length, ownerString(in.Owner))
	if err != nil {
		return status(err)
	}
	if info == nil {
		out.Lk = fuse.FileLock{Typ: syscall.F_UNLCK}
		return fuse.OK
	}
	out.Lk.Typ = syscall.F_RDLCK
	if info.Type == client.LockWrite {
		out.Lk.Typ = syscall.F_WRLCK
	}
	out.Lk.Start = uint64(info.Start)
	out.Lk.End = math.MaxInt64
	if info.Len > 0 {
		out.Lk.End = uint64(info.Start+info.Len) - 1
	}
	if o, err := strconv.ParseUint(info.Owner, 16, 64); err == nil {
		fs.mu.Lock()
		if n := fs.nodes[in.NodeId]; n != nil {
			out.Lk.Pid = n.owners[o]
		}
		fs.mu.Unlock()
	}
	return fuse.OK
}

// SetLk answers F_SETLK and non-blocking flock: EAGAIN on a conflict.
func (fs *FS) SetLk(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return fs.setLk(cancel, in, false)
}

// SetLkw answers F_SETLKW and blocking flock: the wait is the server's,
// and ends with EINTR when the kernel interrupts the request (a signal to
// the caller); EDEADLK when the wait would deadlock.
func (fs *FS) SetLkw(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return fs.setLk(cancel, in, true)
}

func (fs *FS) setLk(cancel <-chan struct{}, in *fuse.LkIn, wait bool) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	if wait {
		ctx = interruptible(ctx, cancel)
	}
	typ, err := lockType(in.Lk.Typ)
	if err != nil {
		return status(err)
	}
	if in.LkFlags&fuse.FUSE_LK_FLOCK != 0 {
		f := fs.file(in.Fh)
		if f == nil {
			return fuse.EBADF
		}
		op := map[client.LockType]client.FlockOp{client.LockUnlock: client.FlockUnlock,
			client.LockRead: client.FlockShared, client.LockWrite: client.FlockExclusive}[typ]
		return status(m.Flock(ctx, f.h, op, !wait))
	}
	h, err := fs.lockHandle(ctx, m, in.NodeId)
	if err != nil {
		return status(err)
	}
	cmd := client.SetLk
	if wait {
		cmd = client.SetLkW
	}
	if typ != client.LockUnlock {
		// Counted before the call, so that a close racing with a wait
		// releases what the wait takes.
		fs.mu.Lock()
		n := fs.node(in.NodeId)
		if n.owners == nil {
			n.owners = map[uint64]uint32{}
		}
		n.owners[in.Owner] = in.Lk.Pid
		if f := fs.files[in.Fh]; f != nil {
			if f.owners == nil {
				f.owners = map[uint64]bool{}
			}
			f.owners[in.Owner] = true
		}
		fs.mu.Unlock()
	}
	start, length := lockRange(&in.Lk)
	_, err = m.Lock(ctx, h, cmd, typ, start, length, ownerString(in.Owner))
	return status(err)
}
