package fusefs

import (
	"context"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// dirHandle is an open directory. The offset of an entry is the server's
// cookie for it, so a readdir at any offset the kernel got before (or
// seekdir to a telldir value) continues after that entry. The handle keeps
// the last batch the server sent, so that a kernel buffer smaller than a
// batch does not cost a server call per buffer.
type dirHandle struct {
	ino uint64

	mu    sync.Mutex
	after int64             // the cookie the batch follows (0: the start)
	batch []client.DirEntry // the last batch read
	eof   bool              // the directory ends after batch
	plus  bool              // batch has attributes (readdir_plus)
}

// OpenDir answers opendir. The server needs no handle: readdir calls carry
// the directory's inode and a cookie.
func (fs *FS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	st, err := m.GetStat(ctx, in.NodeId)
	if err != nil {
		return status(err)
	}
	if st.Mode&0o170000 != 0o040000 {
		return fuse.ENOTDIR
	}
	if !mayAccess(&in.Caller, &st, 4) {
		return fuse.EACCES // opendir(3) needs read permission
	}
	fs.mu.Lock()
	fs.fh++
	fh := fs.fh
	fs.dirs[fh] = &dirHandle{ino: in.NodeId}
	fs.mu.Unlock()
	out.Fh = fh
	return fuse.OK
}

// ReleaseDir answers releasedir.
func (fs *FS) ReleaseDir(in *fuse.ReleaseIn) {
	fs.mu.Lock()
	delete(fs.dirs, in.Fh)
	fs.mu.Unlock()
}

// FsyncDir answers fsyncdir: the volume's metadata reach stable storage.
func (fs *FS) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	return status(m.Flush(ctx, in.NodeId))
}

// ReadDir answers readdir: entries after the cookie in.Offset, "." and
// ".." included, as many as the kernel's buffer holds.
func (fs *FS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return fs.readDir(cancel, in, out, false)
}

// ReadDirPlus answers readdirplus: ReadDir with each entry's attributes,
// which the kernel takes as a lookup of each entry but "." and "..".
func (fs *FS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return fs.readDir(cancel, in, out, true)
}

func (fs *FS) readDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	ctx, m := fs.as(cancel, &in.Caller)
	fs.mu.Lock()
	d := fs.dirs[in.Fh]
	fs.mu.Unlock()
	if d == nil {
		return fuse.EBADF
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	off := int64(in.Offset)
	i := d.find(off, plus)
	if i < 0 {
		if err := d.fetch(ctx, m, off, plus); err != nil {
			return status(err)
		}
		i = 0
	}
	for {
		for ; i < len(d.batch); i++ {
			e := &d.batch[i]
			de := fuse.DirEntry{Name: e.Name, Ino: e.Inode, Mode: uint32(e.Type) << 12, Off: uint64(e.Cookie)}
			if !plus {
				if !out.AddDirEntry(de) {
					return fuse.OK
				}
				continue
			}
			eo := out.AddDirLookupEntry(de)
			if eo == nil {
				return fuse.OK
			}
			if e.Name != "." && e.Name != ".." && e.Stat != nil {
				fs.entry(e.Stat, eo)
			}
		}
		if d.eof || len(d.batch) == 0 {
			return fuse.OK
		}
		if err := d.fetch(ctx, m, d.batch[len(d.batch)-1].Cookie, plus); err != nil {
			return status(err)
		}
		i = 0
	}
}

// find returns the index in the cached batch of the entry after cookie
// off, or -1 if the batch does not have it. A read from the start (0, as
// after rewinddir) always goes to the server.
func (d *dirHandle) find(off int64, plus bool) int {
	if d.batch == nil || d.plus != plus {
		return -1
	}
	for i := range d.batch {
		if d.batch[i].Cookie == off {
			if i+1 == len(d.batch) && !d.eof {
				return -1 // the next batch is needed
			}
			return i + 1
		}
	}
	return -1
}

// fetch reads the batch of entries after cookie off from the server.
func (d *dirHandle) fetch(ctx context.Context, m *client.Mount, off int64, plus bool) error {
	var es []client.DirEntry
	var eof bool
	var err error
	if plus {
		es, eof, err = m.ReadDirPlus(ctx, d.ino, off, 0)
	} else {
		es, eof, err = m.ReadDir(ctx, d.ino, off, 0)
	}
	if err != nil {
		return err
	}
	d.after, d.batch, d.eof, d.plus = off, es, eof, plus
	return nil
}
