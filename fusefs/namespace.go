package fusefs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Lookup answers lookup: the entry name in directory header.NodeId, with
// its attributes, counted as a kernel reference. A missing name is ENOENT,
// remembered by the kernel for NegativeTimeout if that is not 0.
func (fs *FS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	ctx, m := fs.as(cancel, &header.Caller)
	st, err := m.LookupStat(ctx, header.NodeId, name)
	if err != nil {
		if status(err) == fuse.ENOENT && fs.opts.NegativeTimeout > 0 {
			out.NodeId = 0
			out.SetEntryTimeout(fs.opts.NegativeTimeout)
			return fuse.OK
		}
		return status(err)
	}
	fs.entry(&st, out)
	return fuse.OK
}

// GetAttr answers getattr (stat, fstat: an unlinked open file included).
func (fs *FS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	st, err := m.GetStat(ctx, in.NodeId)
	if err != nil {
		return status(err)
	}
	fs.attr(&st, out)
	return fuse.OK
}

// SetAttr answers setattr (chmod, chown, truncate and ftruncate, utimes):
// the fields of the request's mask in one server call. Times set to now
// take the server's clock. ctime is the server's to set.
func (fs *FS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	var a client.Attrs
	if in.Valid&fuse.FATTR_MODE != 0 {
		a.Mask |= wire.SetMode
		a.Mode = in.Mode & 0o7777
	}
	if in.Valid&fuse.FATTR_UID != 0 {
		a.Mask |= wire.SetUID
		a.UID = in.Uid
	}
	if in.Valid&fuse.FATTR_GID != 0 {
		a.Mask |= wire.SetGID
		a.GID = in.Gid
	}
	if in.Valid&fuse.FATTR_SIZE != 0 {
		a.Mask |= wire.SetSize
		a.Size = in.Size
	}
	// A truncate carries the kernel's own clock as mtime (and ctime):
	// the server sets mtime with the size, so the times are left to it
	// (setting them explicitly is the owner's privilege, and a truncate
	// needs write permission only).
	switch {
	case in.Valid&fuse.FATTR_SIZE != 0:
	case in.Valid&fuse.FATTR_ATIME_NOW != 0:
		a.Mask |= wire.SetAtimeNow
	case in.Valid&fuse.FATTR_ATIME != 0:
		a.Mask |= wire.SetAtime
		a.Atime = &client.Timespec{Sec: int64(in.Atime), Nsec: int64(in.Atimensec)}
	}
	switch {
	case in.Valid&fuse.FATTR_SIZE != 0:
	case in.Valid&fuse.FATTR_MTIME_NOW != 0:
		a.Mask |= wire.SetMtimeNow
	case in.Valid&fuse.FATTR_MTIME != 0:
		a.Mask |= wire.SetMtime
		a.Mtime = &client.Timespec{Sec: int64(in.Mtime), Nsec: int64(in.Mtimensec)}
	}
	var st client.Stat
	var err error
	var f *file
	if in.Valid&fuse.FATTR_FH != 0 {
		f = fs.file(in.Fh)
	}
	switch {
	case a.Mask == 0:
		st, err = m.GetStat(ctx, in.NodeId) // ctime alone, or only bits FS leaves to the server
	case a.Mask == wire.SetSize && f != nil && f.ino == in.NodeId:
		// ftruncate: through the handle, whose access mode decides.
		st, err = f.h.Truncate(ctx, a.Size)
	default:
		st, err = m.SetAttr(ctx, in.NodeId, a)
	}
	if err == nil && a.Mask&wire.SetSize != 0 {
		fs.wrote(in.NodeId) // the kernel cut its pages itself
	}
	if err != nil {
		return status(err)
	}
	fs.attr(&st, out)
	return fuse.OK
}

// Mkdir answers mkdir.
func (fs *FS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	st, err := m.Mkdir(ctx, in.NodeId, name, in.Mode&0o7777)
	if err != nil {
		return status(err)
	}
	fs.entry(&st, out)
	return fuse.OK
}

// Mknod answers mknod for regular files; the server stores no fifos,
// sockets or devices, so those are EPERM.
func (fs *FS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	if in.Mode&syscall.S_IFMT != syscall.S_IFREG && in.Mode&syscall.S_IFMT != 0 {
		return fuse.EPERM
	}
	ctx, m := fs.as(cancel, &in.Caller)
	st, err := m.Create(ctx, in.NodeId, name, in.Mode&0o7777)
	if err != nil {
		return status(err)
	}
	fs.entry(&st, out)
	return fuse.OK
}

// Symlink answers symlink: linkName in directory header.NodeId, pointing
// to target.
func (fs *FS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, target string, linkName string, out *fuse.EntryOut) fuse.Status {
	ctx, m := fs.as(cancel, &header.Caller)
	st, err := m.Symlink(ctx, header.NodeId, linkName, target)
	if err != nil {
		return status(err)
	}
	fs.entry(&st, out)
	return fuse.OK
}

// Readlink answers readlink.
func (fs *FS) Readlink(cancel <-chan struct{}, header *fuse.InHeader) ([]byte, fuse.Status) {
	ctx, m := fs.as(cancel, &header.Caller)
	target, err := m.ReadSymlink(ctx, header.NodeId)
	if err != nil {
		return nil, status(err)
	}
	return []byte(target), fuse.OK
}

// Link answers link: a new name for inode in.Oldnodeid.
func (fs *FS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	if err := m.Link(ctx, in.NodeId, name, in.Oldnodeid); err != nil {
		return status(err)
	}
	st, err := m.GetStat(ctx, in.Oldnodeid)
	if err != nil {
		return status(err)
	}
	fs.entry(&st, out)
	return fuse.OK
}

// Unlink answers unlink. A file that is open somewhere stays usable
// through its handles until the last one is released.
func (fs *FS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	ctx, m := fs.as(cancel, &header.Caller)
	return status(m.Unlink(ctx, header.NodeId, name))
}

// Rmdir answers rmdir.
func (fs *FS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	ctx, m := fs.as(cancel, &header.Caller)
	return status(m.Rmdir(ctx, header.NodeId, name))
}

// Linux's renameat2 flags.
const (
	renameNoReplace = 1 << 0
	renameExchange  = 1 << 1
)

// Rename answers rename and renameat2 without flags; a file replaced while
// open stays usable through its handles. RENAME_NOREPLACE and
// RENAME_EXCHANGE are EINVAL: the server cannot do either atomically, and
// emulating them would race with other clients (programs such as mv fall
// back to a plain rename on EINVAL).
func (fs *FS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName string, newName string) fuse.Status {
	if in.Flags != 0 { // renameNoReplace, renameExchange, RENAME_WHITEOUT
		return fuse.EINVAL
	}
	ctx, m := fs.as(cancel, &in.Caller)
	return status(m.Rename(ctx, in.NodeId, oldName, in.Newdir, newName))
}

// StatFs answers statfs from the server's statvfs of the volume.
func (fs *FS) StatFs(cancel <-chan struct{}, header *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	ctx, m := fs.as(cancel, &header.Caller)
	v, err := m.StatVFS(ctx)
	if err != nil {
		return status(err)
	}
	out.Blocks, out.Bfree, out.Bavail = v.Blocks, v.Bfree, v.Bavail
	out.Files, out.Ffree = v.Files, v.Ffree
	out.Bsize = uint32(v.Bsize)
	out.Frsize = uint32(v.Frsize)
	out.NameLen = uint32(v.Namemax)
	return fuse.OK
}
