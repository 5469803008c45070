package fusefs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// accessMode returns the server's access mode for open(2) flags. With the
// writeback cache the kernel also reads through a handle opened for
// writing (to fill partial pages), so such a handle is opened read-write.
func (fs *FS) accessMode(flags uint32) uint32 {
	switch flags & syscall.O_ACCMODE {
	case syscall.O_WRONLY:
		if fs.opts.WritebackCache {
			return client.OpenReadWrite
		}
		return client.OpenWriteOnly
	case syscall.O_RDWR:
		return client.OpenReadWrite
	}
	return client.OpenReadOnly
}

// opened records the open file h of inode st.Ino and fills out: the FUSE
// handle, and FOPEN_KEEP_CACHE when the file still has the mtime and size
// the kernel last saw, or changed since only through this mount's own
// writes (so its cached pages are still the file's data); otherwise the
// kernel drops them.
func (fs *FS) opened(h *client.Handle, st *client.Stat, out *fuse.OpenOut) {
	fs.mu.Lock()
	n := fs.node(st.Ino)
	n.opens++
	keep := n.ok && (n.wrote || n.mtime == st.Mtime && n.size == st.Size)
	n.mtime, n.size, n.ok, n.wrote = st.Mtime, st.Size, true, false
	fs.fh++
	fh := fs.fh
	fs.files[fh] = &file{ino: st.Ino, h: h}
	fs.mu.Unlock()
	out.Fh = fh
	if keep {
		out.OpenFlags |= fuse.FOPEN_KEEP_CACHE
	}
	if fs.opts.DirectIO {
		out.OpenFlags |= fuse.FOPEN_DIRECT_IO
	}
}

// file returns the open file of FUSE handle fh (nil if there is none).
func (fs *FS) file(fh uint64) *file {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.files[fh]
}

// Open answers open: a server handle on the inode, which keeps the file
// usable if its last name goes while it is open.
func (fs *FS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	h, st, err := m.Open(ctx, in.NodeId, fs.accessMode(in.Flags))
	if err != nil {
		return status(err)
	}
	fs.opened(h, &st, out)
	return fuse.OK
}

// Create answers create: a new regular file, opened. Without O_EXCL a
// name that another client created meanwhile is opened instead (and
// truncated for O_TRUNC), as open(2) with O_CREAT does.
func (fs *FS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	acc := fs.accessMode(in.Flags)
	// One request: the server creates the file and opens it with the
	// access asked for, whatever mode the new file has (open(2) with
	// O_CREAT may write a file it creates 0444).
	h, st, err := m.CreateOpen(ctx, in.NodeId, name, in.Mode&0o7777, acc)
	if errors.Is(err, syscall.EEXIST) && in.Flags&syscall.O_EXCL == 0 {
		h, st, err = fs.openExisting(ctx, m, in.NodeId, name, acc, in.Flags&syscall.O_TRUNC != 0)
	}
	if err != nil {
		return status(err)
	}
	fs.entry(&st, &out.EntryOut)
	fs.opened(h, &st, &out.OpenOut)
	return fuse.OK
}

// openExisting opens name in directory dir, which another client created
// after the kernel's lookup, as open(2) without O_EXCL does: EISDIR for a
// directory, and truncated if trunc.
func (fs *FS) openExisting(ctx context.Context, m *client.Mount, dir uint64, name string, acc uint32, trunc bool) (*client.Handle, client.Stat, error) {
	st, err := m.LookupStat(ctx, dir, name)
	if err != nil {
		return nil, st, err
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return nil, st, syscall.EISDIR
	}
	h, st, err := m.Open(ctx, st.Ino, acc)
	if err != nil || !trunc {
		return h, st, err
	}
	if acc == client.OpenReadOnly {
		st, err = m.SetAttr(ctx, st.Ino, client.Attrs{Mask: wire.SetSize, Size: 0})
	} else {
		st, err = h.Truncate(ctx, 0)
	}
	if err != nil {
		_ = h.Close(ctx)
		return nil, st, err
	}
	return h, st, nil
}

// Tmpfile answers open with O_TMPFILE: a file in no directory. The server
// has no such call, so the file is created under a random name, opened
// and unlinked at once (another client listing the directory meanwhile
// may see the name).
func (fs *FS) Tmpfile(cancel <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := ".proxyfs-tmpfile-" + hex.EncodeToString(b[:])
	h, st, err := m.CreateOpen(ctx, in.NodeId, name, in.Mode&0o7777, fs.accessMode(in.Flags))
	if err != nil {
		return status(err)
	}
	err = m.Unlink(ctx, in.NodeId, name)
	if err == nil {
		st, err = m.GetStat(ctx, st.Ino)
	}
	if err != nil {
		_ = h.Close(ctx)
		_ = m.Unlink(ctx, in.NodeId, name)
		return status(err)
	}
	fs.entry(&st, &out.EntryOut)
	fs.opened(h, &st, &out.OpenOut)
	return fuse.OK
}

// Read answers read: up to in.Size bytes at in.Offset (fewer at the end of
// the file).
func (fs *FS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	ctx, m := fs.as(cancel, &in.Caller)
	if int(in.Size) < len(buf) {
		buf = buf[:in.Size]
	}
	var n int
	var err error
	if f := fs.file(in.Fh); f != nil && f.ino == in.NodeId {
		n, err = f.h.Read(ctx, buf, in.Offset) // the access granted at open decides
	} else {
		n, err = m.Read(ctx, in.NodeId, buf, in.Offset)
	}
	if err != nil {
		return nil, status(err)
	}
	return fuse.ReadResultData(buf[:n]), fuse.OK
}

// Write answers write.
func (fs *FS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	ctx, m := fs.as(cancel, &in.Caller)
	var n int
	var err error
	if f := fs.file(in.Fh); f != nil && f.ino == in.NodeId {
		n, err = f.h.Write(ctx, data, in.Offset) // the access granted at open decides
	} else {
		// A write the kernel sends without a file (writeback of a
		// file no longer open): checked against the file's mode.
		n, err = m.Write(ctx, in.NodeId, data, in.Offset)
	}
	if err == nil {
		fs.wrote(in.NodeId)
	}
	return uint32(n), status(err)
}

// wrote records that ino's data changed through this mount (see seen).
func (fs *FS) wrote(ino uint64) {
	fs.mu.Lock()
	if n := fs.nodes[ino]; n != nil {
		n.wrote = true
	}
	fs.mu.Unlock()
}

// Flush answers flush, sent at every close(2) of a file descriptor: the
// POSIX locks of the closing process on the file go, as close(2) requires.
// Data needs no flushing (every write is on the server already).
func (fs *FS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	return status(fs.unlockOwner(ctx, m, in.NodeId, in.LockOwner))
}

// Fsync answers fsync and fdatasync: the file's data and all metadata
// reach stable storage on the server.
func (fs *FS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	if f := fs.file(in.Fh); f != nil && f.ino == in.NodeId {
		return status(f.h.Flush(ctx))
	}
	return status(m.Flush(ctx, in.NodeId))
}

// Release answers release, the last close of an open file: its server
// handle closes (releasing its flock lock, and freeing the file if it has
// no name left and no other handle).
func (fs *FS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	ctx, m := fs.as(cancel, &in.Caller)
	fs.mu.Lock()
	f := fs.files[in.Fh]
	delete(fs.files, in.Fh)
	var locks *client.Handle
	var owners []uint64
	if f != nil {
		if n := fs.nodes[f.ino]; n != nil {
			n.opens--
			if n.opens == 0 && n.locks != nil {
				locks, n.locks, n.owners = n.locks, nil, nil
			}
			fs.drop(f.ino, n)
		}
		for o := range f.owners {
			owners = append(owners, o)
		}
	}
	fs.mu.Unlock()
	if f == nil {
		return
	}
	if locks != nil {
		_ = locks.Close(ctx) // releases every POSIX lock on the inode
	} else {
		// Open file description locks (F_OFD_SETLK) belong to this
		// file and end with it; the kernel does not say so (its flush
		// carries the closing process as owner), so every owner that
		// locked through the file is released. A process's own locks
		// taken through it are gone already: its close flushed them.
		for _, o := range owners {
			_ = fs.unlockOwner(ctx, m, f.ino, o)
		}
	}
	_ = f.h.Close(ctx)
}

// Fallocate answers fallocate: mode 0, FALLOC_FL_KEEP_SIZE,
// FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE and FALLOC_FL_ZERO_RANGE as the
// server does them; other modes are EOPNOTSUPP.
func (fs *FS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	return status(m.Fallocate(ctx, in.NodeId, in.Mode, in.Offset, in.Length))
}

// lseek whence values the kernel leaves to the filesystem.
const (
	seekData = 3
	seekHole = 4
)

// Lseek answers lseek with SEEK_DATA and SEEK_HOLE (the kernel does the
// others itself): ENXIO at or past the end of the file.
func (fs *FS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	var off uint64
	var err error
	switch in.Whence {
	case seekData:
		off, err = m.SeekData(ctx, in.NodeId, in.Offset)
	case seekHole:
		off, err = m.SeekHole(ctx, in.NodeId, in.Offset)
	default:
		return fuse.EINVAL
	}
	if err != nil {
		return status(err)
	}
	out.Offset = off
	return fuse.OK
}

// CopyFileRange answers copy_file_range with the server's copy_range: the
// data does not leave the server. A call copies at most 64 MiB (the
// caller's copy_file_range returns the count, and callers loop).
func (fs *FS) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	if in.Flags != 0 {
		return 0, fuse.EINVAL
	}
	ctx, m := fs.as(cancel, &in.Caller)
	n, err := m.CopyRange(ctx, in.NodeId, in.OffIn, in.NodeIdOut, in.OffOut, min(in.Len, 1<<30))
	if err != nil {
		return 0, status(err)
	}
	return uint32(n), fuse.OK
}
