package inode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

var (
	ctx   = context.Background()
	alice = inode.Caller{UID: 1000, GID: 100}
	// root is who the tests of other rules than permissions act as.
	root = inode.Caller{}
)

// wantErr fails the test unless err is the errno want (nil for success).
func wantErr(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func mustCreate(t *testing.T, fs *inode.FS, dir inode.Ino, name string) inode.Attr {
	t.Helper()
	a, err := fs.Create(ctx, root, dir, name, 0o644)
	wantErr(t, "create "+name, err, 0)
	return a
}

func mustMkdir(t *testing.T, fs *inode.FS, dir inode.Ino, name string) inode.Attr {
	t.Helper()
	a, err := fs.Mkdir(ctx, root, dir, name, 0o755)
	wantErr(t, "mkdir "+name, err, 0)
	return a
}

func attr(t *testing.T, fs *inode.FS, ino inode.Ino) inode.Attr {
	t.Helper()
	a, err := fs.GetAttr(ctx, ino)
	wantErr(t, fmt.Sprintf("getattr %d", ino), err, 0)
	return a
}

func lookup(t *testing.T, fs *inode.FS, dir inode.Ino, name string) inode.Ino {
	t.Helper()
	ino, err := fs.Lookup(ctx, root, dir, name)
	wantErr(t, "lookup "+name, err, 0)
	return ino
}

func listAll(t *testing.T, fs *inode.FS, dir inode.Ino, batch int) []inode.DirEntry {
	t.Helper()
	var all []inode.DirEntry
	cookie := int64(-1)
	for {
		ents, eof, err := fs.ReadDir(ctx, root, dir, cookie, batch, false)
		wantErr(t, "readdir", err, 0)
		all = append(all, ents...)
		if len(ents) > 0 {
			cookie = ents[len(ents)-1].Cookie
		}
		if eof {
			return all
		}
		if len(ents) == 0 {
			t.Fatalf("readdir returned no entries and no eof")
		}
	}
}

func names(ents []inode.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name)
	}
	return out
}

func TestRootAfterFormat(t *testing.T) {
	fs, _ := inodetest.New(t)
	a := attr(t, fs, inode.RootIno)
	if !a.IsDir() || a.Nlink != 2 || a.Mode&inode.ModePerm != 0o755 {
		t.Fatalf("root attr %+v", a)
	}
	ents := listAll(t, fs, inode.RootIno, 0)
	if got := strings.Join(names(ents), ","); got != ".,.." {
		t.Fatalf("root listing %q", got)
	}
	if ents[1].Ino != inode.RootIno {
		t.Fatalf("root's .. is %d", ents[1].Ino)
	}
}

// Names: 1..255 bytes of valid UTF-8, no '/' or NUL; '.' and '..' cannot be created.
func TestNameRules(t *testing.T) {
	fs, _ := inodetest.New(t)
	cases := []struct {
		name string
		want syscall.Errno
	}{
		{"", syscall.EINVAL},
		{".", syscall.EINVAL},
		{"..", syscall.EINVAL},
		{"a/b", syscall.EINVAL},
		{"a\x00b", syscall.EINVAL},
		{"bad\xff", syscall.EINVAL},
		{strings.Repeat("x", 256), syscall.ENAMETOOLONG},
		{strings.Repeat("x", 255), 0},
		{"héllo wörld", 0},
		{"...", 0},
	}
	for _, c := range cases {
		_, err := fs.Create(ctx, root, inode.RootIno, c.name, 0o644)
		wantErr(t, fmt.Sprintf("create %q", c.name), err, c.want)
		_, err = fs.Mkdir(ctx, root, inode.RootIno, c.name+"d", 0o755)
		if c.want == 0 && len(c.name) < 255 {
			wantErr(t, fmt.Sprintf("mkdir %q", c.name+"d"), err, 0)
		}
	}
	_, err := fs.Symlink(ctx, root, inode.RootIno, "..", "x")
	wantErr(t, "symlink ..", err, syscall.EINVAL)
	err = fs.Link(ctx, root, inode.RootIno, ".", inode.RootIno)
	wantErr(t, "link .", err, syscall.EINVAL)
	_, err = fs.Lookup(ctx, root, inode.RootIno, strings.Repeat("y", 300))
	wantErr(t, "lookup long", err, syscall.ENAMETOOLONG)
}

// Create is exclusive; new inodes take the caller's ids; the mode keeps
// its 07777 bits and the type bits come from the call.
func TestCreateExclusiveAndOwnership(t *testing.T) {
	fs, _ := inodetest.New(t)
	_, err := fs.SetAttr(ctx, root, inode.RootIno, inode.SetAttr{Mask: inode.SetMode, Mode: 0o777})
	wantErr(t, "chmod root", err, 0)
	a, err := fs.Create(ctx, alice, inode.RootIno, "f", inode.ModeDir|0o4755)
	wantErr(t, "create", err, 0)
	if a.Mode != inode.ModeRegular|0o4755 || a.UID != 1000 || a.GID != 100 || a.Nlink != 1 || a.Size != 0 {
		t.Fatalf("attr %+v", a)
	}
	_, err = fs.Create(ctx, root, inode.RootIno, "f", 0o644)
	wantErr(t, "create again", err, syscall.EEXIST)
	_, err = fs.Mkdir(ctx, root, inode.RootIno, "f", 0o755)
	wantErr(t, "mkdir over file", err, syscall.EEXIST)
	_, err = fs.Symlink(ctx, root, inode.RootIno, "f", "t")
	wantErr(t, "symlink over file", err, syscall.EEXIST)
	d := mustMkdir(t, fs, inode.RootIno, "d")
	if d.Mode != inode.ModeDir|0o755 || d.Nlink != 2 {
		t.Fatalf("dir attr %+v", d)
	}
	s, err := fs.Symlink(ctx, root, inode.RootIno, "s", "f")
	wantErr(t, "symlink", err, 0)
	if s.Mode != inode.ModeSymlink|0o777 || s.Size != 1 {
		t.Fatalf("symlink attr %+v", s)
	}
	target, err := fs.ReadSymlink(ctx, s.Ino)
	wantErr(t, "readlink", err, 0)
	if target != "f" {
		t.Fatalf("target %q", target)
	}
	_, err = fs.ReadSymlink(ctx, a.Ino)
	wantErr(t, "readlink of a file", err, syscall.EINVAL)
	_, err = fs.Create(ctx, root, a.Ino, "x", 0o644)
	wantErr(t, "create in a file", err, syscall.ENOTDIR)
	_, err = fs.Create(ctx, root, 999, "x", 0o644)
	wantErr(t, "create in missing dir", err, syscall.ENOENT)
	_, err = fs.GetAttr(ctx, 999)
	wantErr(t, "getattr missing", err, syscall.ENOENT)
}

// nlink: files count their links; a directory has 2 plus one per subdirectory.
func TestNlink(t *testing.T) {
	fs, _ := inodetest.New(t)
	d := mustMkdir(t, fs, inode.RootIno, "d")
	mustMkdir(t, fs, d.Ino, "s1")
	mustMkdir(t, fs, d.Ino, "s2")
	mustCreate(t, fs, d.Ino, "file")
	if n := attr(t, fs, d.Ino).Nlink; n != 4 {
		t.Fatalf("dir with 2 subdirs has nlink %d", n)
	}
	if n := attr(t, fs, inode.RootIno).Nlink; n != 3 {
		t.Fatalf("root nlink %d", n)
	}
	f := lookup(t, fs, d.Ino, "file")
	wantErr(t, "link", fs.Link(ctx, root, inode.RootIno, "l1", f), 0)
	wantErr(t, "link", fs.Link(ctx, root, d.Ino, "l2", f), 0)
	if n := attr(t, fs, f).Nlink; n != 3 {
		t.Fatalf("file nlink %d", n)
	}
	wantErr(t, "unlink", fs.Unlink(ctx, root, d.Ino, "file"), 0)
	if n := attr(t, fs, f).Nlink; n != 2 {
		t.Fatalf("file nlink after unlink %d", n)
	}
	wantErr(t, "rmdir", fs.Rmdir(ctx, root, d.Ino, "s1"), 0)
	if n := attr(t, fs, d.Ino).Nlink; n != 3 {
		t.Fatalf("dir nlink after rmdir %d", n)
	}
	wantErr(t, "rename dir up", fs.Rename(ctx, root, d.Ino, "s2", inode.RootIno, "s2"), 0)
	if n := attr(t, fs, d.Ino).Nlink; n != 2 {
		t.Fatalf("old parent nlink %d", n)
	}
	if n := attr(t, fs, inode.RootIno).Nlink; n != 4 {
		t.Fatalf("new parent nlink %d", n)
	}
	wantErr(t, "unlink l1", fs.Unlink(ctx, root, inode.RootIno, "l1"), 0)
	wantErr(t, "unlink l2", fs.Unlink(ctx, root, d.Ino, "l2"), 0)
	_, err := fs.GetAttr(ctx, f)
	wantErr(t, "getattr after last unlink", err, syscall.ENOENT)
}

// link to a directory: EPERM; unlink of a directory: EISDIR; rmdir: ENOTDIR, ENOTEMPTY.
func TestLinkUnlinkRmdirErrors(t *testing.T) {
	fs, _ := inodetest.New(t)
	d := mustMkdir(t, fs, inode.RootIno, "d")
	f := mustCreate(t, fs, inode.RootIno, "f")
	mustCreate(t, fs, d.Ino, "inner")
	wantErr(t, "link dir", fs.Link(ctx, root, inode.RootIno, "dl", d.Ino), syscall.EPERM)
	wantErr(t, "link existing name", fs.Link(ctx, root, inode.RootIno, "d", f.Ino), syscall.EEXIST)
	wantErr(t, "link missing inode", fs.Link(ctx, root, inode.RootIno, "x", 4242), syscall.ENOENT)
	wantErr(t, "link into a file", fs.Link(ctx, root, f.Ino, "x", f.Ino), syscall.ENOTDIR)
	wantErr(t, "unlink dir", fs.Unlink(ctx, root, inode.RootIno, "d"), syscall.EISDIR)
	wantErr(t, "unlink missing", fs.Unlink(ctx, root, inode.RootIno, "nope"), syscall.ENOENT)
	wantErr(t, "unlink .", fs.Unlink(ctx, root, inode.RootIno, "."), syscall.EINVAL)
	wantErr(t, "rmdir file", fs.Rmdir(ctx, root, inode.RootIno, "f"), syscall.ENOTDIR)
	wantErr(t, "rmdir nonempty", fs.Rmdir(ctx, root, inode.RootIno, "d"), syscall.ENOTEMPTY)
	wantErr(t, "rmdir missing", fs.Rmdir(ctx, root, inode.RootIno, "nope"), syscall.ENOENT)
	wantErr(t, "rmdir .", fs.Rmdir(ctx, root, d.Ino, "."), syscall.EINVAL)
	wantErr(t, "rmdir .. (as Linux)", fs.Rmdir(ctx, root, d.Ino, ".."), syscall.ENOTEMPTY)
	wantErr(t, "unlink inner", fs.Unlink(ctx, root, d.Ino, "inner"), 0)
	wantErr(t, "rmdir empty", fs.Rmdir(ctx, root, inode.RootIno, "d"), 0)
	_, err := fs.GetAttr(ctx, d.Ino)
	wantErr(t, "getattr removed dir", err, syscall.ENOENT)
	_, err = fs.Create(ctx, root, d.Ino, "x", 0o644)
	wantErr(t, "create in removed dir", err, syscall.ENOENT)
}

// The rename matrix of rename(2).
func TestRenameMatrix(t *testing.T) {
	type setup func(t *testing.T, fs *inode.FS) (src, dst inode.Ino)
	cases := []struct {
		name     string
		src, dst string // "dir/name" within the tree below
		want     syscall.Errno
	}{
		{"file onto missing", "a/f", "b/new", 0},
		{"file onto file", "a/f", "b/g", 0},
		{"file onto empty dir", "a/f", "b/empty", syscall.EISDIR},
		{"dir onto file", "a/sub", "b/g", syscall.ENOTDIR},
		{"dir onto empty dir", "a/sub", "b/empty", 0},
		{"dir onto nonempty dir", "a/sub", "b/full", syscall.ENOTEMPTY},
		{"dir into itself", "/a", "a/sub/x", syscall.EINVAL},
		{"dir into own child", "/a", "a/x", syscall.EINVAL},
		{"missing source", "a/nope", "b/x", syscall.ENOENT},
		{"onto itself", "a/f", "a/f", 0},
		{"onto other link", "a/f", "b/flink", 0},
		{"dir onto itself", "a/sub", "a/sub", 0},
		{"dot source", "a/.", "b/x", syscall.EINVAL},
		{"dotdot target", "a/f", "b/..", syscall.EINVAL},
		{"long target", "a/f", "b/" + strings.Repeat("z", 256), syscall.ENAMETOOLONG},
		{"into a file", "a/f", "b/g/x", syscall.ENOTDIR},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := inodetest.New(t)
			a := mustMkdir(t, fs, inode.RootIno, "a")
			b := mustMkdir(t, fs, inode.RootIno, "b")
			f := mustCreate(t, fs, a.Ino, "f")
			sub := mustMkdir(t, fs, a.Ino, "sub")
			g := mustCreate(t, fs, b.Ino, "g")
			mustMkdir(t, fs, b.Ino, "empty")
			full := mustMkdir(t, fs, b.Ino, "full")
			mustCreate(t, fs, full.Ino, "x")
			wantErr(t, "link", fs.Link(ctx, root, b.Ino, "flink", f.Ino), 0)
			dirs := map[string]inode.Ino{"": inode.RootIno, "a": a.Ino, "b": b.Ino, "a/sub": sub.Ino, "b/g": g.Ino}
			split := func(p string) (inode.Ino, string) {
				i := strings.LastIndexByte(p, '/')
				return dirs[p[:i]], p[i+1:]
			}
			sd, sn := split(c.src)
			dd, dn := split(c.dst)
			var srcIno inode.Ino
			if c.want == 0 {
				srcIno = lookup(t, fs, sd, sn)
			}
			before := attr(t, fs, f.Ino)
			err := fs.Rename(ctx, root, sd, sn, dd, dn)
			wantErr(t, "rename", err, c.want)
			if c.want != 0 {
				return
			}
			if got := lookup(t, fs, dd, dn); got != srcIno {
				t.Fatalf("target names %d, want %d", got, srcIno)
			}
			same := c.src == c.dst || c.dst == "b/flink"
			if same {
				// Nothing changes: the source is still there, nlink unchanged.
				lookup(t, fs, sd, sn)
				if after := attr(t, fs, f.Ino); after.Nlink != before.Nlink || after.Ctime != before.Ctime {
					t.Fatalf("no-op rename changed %+v -> %+v", before, after)
				}
				return
			}
			_, err = fs.Lookup(ctx, root, sd, sn)
			wantErr(t, "source gone", err, syscall.ENOENT)
			if c.dst == "b/g" {
				_, err = fs.GetAttr(ctx, g.Ino)
				wantErr(t, "replaced file gone", err, syscall.ENOENT)
			}
			if c.src == "a/sub" {
				ents := listAll(t, fs, sub.Ino, 0)
				if ents[1].Ino != b.Ino {
					t.Fatalf("moved dir's .. is %d, want %d", ents[1].Ino, b.Ino)
				}
			}
		})
	}
}

// Timestamps: nanoseconds; write and resize set mtime+ctime; attribute
// changes set ctime; entry changes set the parent's mtime+ctime; crtime at
// creation; reads do not update atime.
func TestTimestamps(t *testing.T) {
	fs, _ := inodetest.New(t)
	root0 := attr(t, fs, inode.RootIno)
	f := mustCreate(t, fs, inode.RootIno, "f")
	if f.Crtime != f.Mtime || f.Ctime != f.Mtime || f.Atime != f.Mtime {
		t.Fatalf("new file times differ: %+v", f)
	}
	root1 := attr(t, fs, inode.RootIno)
	if !(after(root1.Mtime, root0.Mtime) && root1.Ctime == root1.Mtime) {
		t.Fatalf("create did not touch parent: %+v -> %+v", root0, root1)
	}
	wantErr(t, "write", fs.Write(ctx, root, f.Ino, []byte("hello"), 0), 0)
	w := attr(t, fs, f.Ino)
	if !after(w.Mtime, f.Mtime) || w.Ctime != w.Mtime || w.Atime != f.Atime || w.Crtime != f.Crtime {
		t.Fatalf("write times %+v -> %+v", f, w)
	}
	buf := make([]byte, 5)
	if _, err := fs.Read(ctx, root, f.Ino, buf, 0); err != nil {
		t.Fatal(err)
	}
	if r := attr(t, fs, f.Ino); r != w {
		t.Fatalf("read changed attrs %+v -> %+v", w, r)
	}
	c, err := fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetMode, Mode: 0o600})
	wantErr(t, "chmod", err, 0)
	if c.Mtime != w.Mtime || !after(c.Ctime, w.Ctime) || c.Mode != inode.ModeRegular|0o600 {
		t.Fatalf("chmod times %+v -> %+v", w, c)
	}
	r, err := fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 100})
	wantErr(t, "resize", err, 0)
	if !after(r.Mtime, c.Mtime) || r.Ctime != r.Mtime || r.Size != 100 {
		t.Fatalf("resize times %+v -> %+v", c, r)
	}
	want := inode.Timespec{Sec: 1234, Nsec: 567890123}
	crt := inode.Timespec{Sec: 99, Nsec: 1}
	s, err := fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetAtime | inode.SetMtime | inode.SetCrtime, Atime: want, Mtime: want, Crtime: crt})
	wantErr(t, "settime", err, 0)
	if s.Atime != want || s.Mtime != want || s.Crtime != crt || !after(s.Ctime, r.Ctime) {
		t.Fatalf("settime %+v", s)
	}
	_, err = fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetMtime, Mtime: inode.Timespec{Nsec: 1e9}})
	wantErr(t, "nsec out of range", err, syscall.EINVAL)
	_, err = fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: 1 << 20})
	wantErr(t, "unknown mask bit", err, syscall.EINVAL)
	u, err := fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetUID | inode.SetGID, UID: 7, GID: 8})
	wantErr(t, "chown", err, 0)
	if u.UID != 7 || u.GID != 8 {
		t.Fatalf("chown %+v", u)
	}
	root2 := attr(t, fs, inode.RootIno)
	wantErr(t, "unlink", fs.Unlink(ctx, root, inode.RootIno, "f"), 0)
	root3 := attr(t, fs, inode.RootIno)
	if !after(root3.Mtime, root2.Mtime) || root3.Ctime != root3.Mtime {
		t.Fatalf("unlink did not touch parent")
	}
}

func after(a, b inode.Timespec) bool {
	return a.Sec > b.Sec || (a.Sec == b.Sec && a.Nsec > b.Nsec)
}

// read past EOF returns 0 bytes; a write past EOF leaves a hole of zeros;
// read or write on a directory is EISDIR.
func TestDataHolesAndEISDIR(t *testing.T) {
	fs, _ := inodetest.New(t)
	f := mustCreate(t, fs, inode.RootIno, "f")
	wantErr(t, "write", fs.Write(ctx, root, f.Ino, []byte("tail"), 1<<20), 0)
	if sz := attr(t, fs, f.Ino).Size; sz != 1<<20+4 {
		t.Fatalf("size %d", sz)
	}
	buf := make([]byte, 1<<20+100)
	n, err := fs.Read(ctx, root, f.Ino, buf, 0)
	wantErr(t, "read", err, 0)
	if n != 1<<20+4 || !bytes.Equal(buf[:1<<20], make([]byte, 1<<20)) || string(buf[1<<20:n]) != "tail" {
		t.Fatalf("read %d bytes, hole not zero or tail wrong", n)
	}
	n, err = fs.Read(ctx, root, f.Ino, buf, 1<<21)
	wantErr(t, "read past eof", err, 0)
	if n != 0 {
		t.Fatalf("read past EOF gave %d bytes", n)
	}
	// Shrink then grow: the cut bytes must read as zeros.
	_, err = fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 1<<20 + 2})
	wantErr(t, "shrink", err, 0)
	_, err = fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 1<<20 + 4})
	wantErr(t, "grow", err, 0)
	n, _ = fs.Read(ctx, root, f.Ino, buf[:4], 1<<20)
	if n != 4 || string(buf[:4]) != "ta\x00\x00" {
		t.Fatalf("after shrink+grow: %q", buf[:n])
	}
	// Overwrite in the middle.
	wantErr(t, "overwrite", fs.Write(ctx, root, f.Ino, []byte("XY"), 10), 0)
	n, _ = fs.Read(ctx, root, f.Ino, buf[:14], 0)
	if n != 14 || string(buf[10:12]) != "XY" || buf[9] != 0 || buf[12] != 0 {
		t.Fatalf("overwrite: %q", buf[:n])
	}
	wantErr(t, "write dir", fs.Write(ctx, root, inode.RootIno, []byte("x"), 0), syscall.EISDIR)
	_, err = fs.Read(ctx, root, inode.RootIno, buf, 0)
	wantErr(t, "read dir", err, syscall.EISDIR)
	_, err = fs.SetAttr(ctx, root, inode.RootIno, inode.SetAttr{Mask: inode.SetSize, Size: 0})
	wantErr(t, "resize dir", err, syscall.EISDIR)
	_, err = fs.Read(ctx, root, 4242, buf, 0)
	wantErr(t, "read missing", err, syscall.ENOENT)
	wantErr(t, "write missing", fs.Write(ctx, root, 4242, buf[:1], 0), syscall.ENOENT)
	wantErr(t, "flush missing", fs.Flush(ctx, 4242), syscall.ENOENT)
	wantErr(t, "flush", fs.Flush(ctx, f.Ino), 0)
	wantErr(t, "write beyond max", fs.Write(ctx, root, f.Ino, []byte("x"), inode.MaxFileSize), syscall.EFBIG)
}

// Paths: relative to the root, leading '/' optional, '.' and '//' ignored,
// '..' never leaves the volume, intermediate symlinks followed (absolute
// from the volume root, ELOOP after 40), the last component never followed.
func TestPathResolution(t *testing.T) {
	fs, _ := inodetest.New(t)
	a := mustMkdir(t, fs, inode.RootIno, "a")
	b := mustMkdir(t, fs, a.Ino, "b")
	f := mustCreate(t, fs, b.Ino, "f")
	abs, _ := fs.Symlink(ctx, root, inode.RootIno, "abs", "/a/b")
	fs.Symlink(ctx, root, inode.RootIno, "rel", "a/b")
	fs.Symlink(ctx, root, b.Ino, "up", "../../../../..")
	fs.Symlink(ctx, root, inode.RootIno, "loop1", "loop2")
	fs.Symlink(ctx, root, inode.RootIno, "loop2", "loop1")
	fs.Symlink(ctx, root, inode.RootIno, "tofile", "a/b/f")
	cases := []struct {
		path string
		want inode.Ino
		err  syscall.Errno
	}{
		{"", inode.RootIno, 0},
		{"/", inode.RootIno, 0},
		{"a/b/f", f.Ino, 0},
		{"/a/b/f", f.Ino, 0},
		{"//a/./b//f", f.Ino, 0},
		{"a/b/../b/f", f.Ino, 0},
		{"..", inode.RootIno, 0},
		{"../../..", inode.RootIno, 0},
		{"/../a/../../a/b/f", f.Ino, 0},
		{"abs/f", f.Ino, 0},
		{"rel/f", f.Ino, 0},
		{"abs", abs.Ino, 0},        // last component not followed
		{"a/b/up/a/b/f", f.Ino, 0}, // a symlink full of .. stays in the volume
		{"a/b/up", 0, 0},           // (checked below: the link itself)
		{"loop1/x", 0, syscall.ELOOP},
		{"tofile/x", 0, syscall.ENOTDIR},
		{"a/b/f/x", 0, syscall.ENOTDIR},
		{"a/b/f/", 0, syscall.ENOTDIR},
		{"a/b/", b.Ino, 0},
		{"abs/", b.Ino, 0}, // a trailing slash follows the symlink, as POSIX
		{"a/nope/f", 0, syscall.ENOENT},
		{"a/" + strings.Repeat("n", 256), 0, syscall.ENAMETOOLONG},
		{strings.Repeat("a/", 2049), 0, syscall.ENAMETOOLONG},
		{"a/\xff", 0, syscall.EINVAL},
		{"a\x00b", 0, syscall.EINVAL},
	}
	for _, c := range cases {
		got, err := fs.Resolve(ctx, root, c.path)
		wantErr(t, fmt.Sprintf("resolve %q", c.path), err, c.err)
		if c.err == 0 && c.want != 0 && got != c.want {
			t.Errorf("resolve %q = %d, want %d", c.path, got, c.want)
		}
	}
	up, err := fs.Resolve(ctx, root, "a/b/up")
	wantErr(t, "resolve link", err, 0)
	if attr(t, fs, up).Mode&inode.ModeType != inode.ModeSymlink {
		t.Fatalf("last component was followed")
	}
	// A chain of 40 symlinks resolves; 41 is ELOOP.
	prev := "a"
	for i := 1; i <= 41; i++ {
		name := fmt.Sprintf("c%d", i)
		if _, err := fs.Symlink(ctx, root, inode.RootIno, name, prev); err != nil {
			t.Fatal(err)
		}
		prev = name
	}
	_, err = fs.Resolve(ctx, root, "c40/b/f")
	wantErr(t, "40 links", err, 0)
	_, err = fs.Resolve(ctx, root, "c41/b/f")
	wantErr(t, "41 links", err, syscall.ELOOP)

	dir, name, err := fs.ResolveParent(ctx, root, "/abs/newfile")
	wantErr(t, "resolve parent", err, 0)
	if dir != b.Ino || name != "newfile" {
		t.Fatalf("parent %d %q", dir, name)
	}
	_, _, err = fs.ResolveParent(ctx, root, "a/b/f/")
	wantErr(t, "resolve parent of file/", err, syscall.ENOTDIR)
	dir, name, err = fs.ResolveParent(ctx, root, "a/newdir/")
	wantErr(t, "resolve parent of newdir/", err, 0)
	if dir != a.Ino || name != "newdir" {
		t.Fatalf("parent %d %q", dir, name)
	}
	dir, name, err = fs.ResolveParent(ctx, root, "/")
	wantErr(t, "resolve parent of root", err, 0)
	if _, err := fs.Create(ctx, root, dir, name, 0o644); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("create at root path: %v", err)
	}
	dir, name, err = fs.ResolveParent(ctx, root, "a/.")
	wantErr(t, "resolve parent a/.", err, 0)
	if _, err := fs.Mkdir(ctx, root, dir, name, 0o755); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("mkdir a/.: %v", err)
	}
}

// readdir: '.' and '..' first; each cookie continues after its entry; an
// entry present for the whole listing is returned exactly once while the
// directory changes.
func TestReadDirCookies(t *testing.T) {
	fs, _ := inodetest.New(t)
	d := mustMkdir(t, fs, inode.RootIno, "d")
	const n = 500
	for i := 0; i < n; i++ {
		mustCreate(t, fs, d.Ino, fmt.Sprintf("f%03d", i))
	}
	// One entry per call, as the C library does, must give the same as
	// big batches.
	one := listAll(t, fs, d.Ino, 1)
	big := listAll(t, fs, d.Ino, 0)
	if len(one) != n+2 || len(big) != n+2 {
		t.Fatalf("listed %d and %d entries, want %d", len(one), len(big), n+2)
	}
	for i := range one {
		if one[i].Name != big[i].Name || one[i].Cookie != big[i].Cookie {
			t.Fatalf("entry %d differs: %+v vs %+v", i, one[i], big[i])
		}
	}
	if one[0].Name != "." || one[1].Name != ".." || one[1].Ino != inode.RootIno {
		t.Fatalf("first entries %+v %+v", one[0], one[1])
	}
	// Resuming after the last cookie gives nothing and eof.
	ents, eof, err := fs.ReadDir(ctx, root, d.Ino, big[len(big)-1].Cookie, 10, false)
	wantErr(t, "readdir at end", err, 0)
	if len(ents) != 0 || !eof {
		t.Fatalf("after end: %d entries eof=%v", len(ents), eof)
	}

	// Change the directory while listing it, in batches of 7: remove the
	// entries with an odd number (some before, some after the cursor), add
	// new ones and rename some. Every even entry must be seen exactly once.
	seen := map[string]int{}
	cookie := int64(-1)
	step := 0
	for {
		ents, eof, err := fs.ReadDir(ctx, root, d.Ino, cookie, 7, true)
		wantErr(t, "readdir", err, 0)
		for _, e := range ents {
			seen[e.Name]++
			if e.Attr.Ino != e.Ino {
				t.Fatalf("readdir_plus attr of %q is for %d", e.Name, e.Attr.Ino)
			}
		}
		if len(ents) > 0 {
			cookie = ents[len(ents)-1].Cookie
		}
		if eof {
			break
		}
		for k := 0; k < 3; k++ {
			i := (step*37 + k*101) % n
			if i%2 == 1 {
				fs.Unlink(ctx, root, d.Ino, fmt.Sprintf("f%03d", i))
			}
			mustCreate(t, fs, d.Ino, fmt.Sprintf("new%d-%d", step, k))
		}
		step++
	}
	for i := 0; i < n; i += 2 {
		if c := seen[fmt.Sprintf("f%03d", i)]; c != 1 {
			t.Errorf("f%03d seen %d times", i, c)
		}
	}
	for name, c := range seen {
		if c != 1 {
			t.Errorf("%s seen %d times", name, c)
		}
	}
	_, _, err = fs.ReadDir(ctx, root, lookup(t, fs, d.Ino, "f000"), -1, 0, false)
	wantErr(t, "readdir of a file", err, syscall.ENOTDIR)
	_, _, err = fs.ReadDir(ctx, root, 4242, -1, 0, false)
	wantErr(t, "readdir of missing", err, syscall.ENOENT)
}

// Xattrs: get/set/list/remove with XATTR_CREATE / XATTR_REPLACE and ENODATA.
func TestXattrs(t *testing.T) {
	fs, _ := inodetest.New(t)
	f := mustCreate(t, fs, inode.RootIno, "f")
	_, err := fs.GetXattr(ctx, root, f.Ino, "user.a")
	wantErr(t, "get missing", err, syscall.ENODATA)
	wantErr(t, "replace missing", fs.SetXattr(ctx, root, f.Ino, "user.a", []byte("1"), inode.XattrReplace), syscall.ENODATA)
	wantErr(t, "create", fs.SetXattr(ctx, root, f.Ino, "user.a", []byte("1"), inode.XattrCreate), 0)
	wantErr(t, "create again", fs.SetXattr(ctx, root, f.Ino, "user.a", []byte("2"), inode.XattrCreate), syscall.EEXIST)
	wantErr(t, "replace", fs.SetXattr(ctx, root, f.Ino, "user.a", []byte("2"), inode.XattrReplace), 0)
	wantErr(t, "set", fs.SetXattr(ctx, root, f.Ino, "user.b", nil, 0), 0)
	wantErr(t, "both flags", fs.SetXattr(ctx, root, f.Ino, "user.c", nil, 3), syscall.EINVAL)
	wantErr(t, "empty name", fs.SetXattr(ctx, root, f.Ino, "", nil, 0), syscall.EINVAL)
	wantErr(t, "long name", fs.SetXattr(ctx, root, f.Ino, strings.Repeat("n", 256), nil, 0), syscall.ERANGE)
	wantErr(t, "huge value", fs.SetXattr(ctx, root, f.Ino, "user.big", make([]byte, inode.MaxXattrValueLen+1), 0), syscall.E2BIG)
	wantErr(t, "max value", fs.SetXattr(ctx, root, f.Ino, "user.big", bytes.Repeat([]byte{7}, inode.MaxXattrValueLen), 0), 0)
	v, err := fs.GetXattr(ctx, root, f.Ino, "user.a")
	if err != nil || string(v) != "2" {
		t.Fatalf("get: %q %v", v, err)
	}
	list, err := fs.ListXattr(ctx, root, f.Ino)
	wantErr(t, "list", err, 0)
	if strings.Join(list, ",") != "user.a,user.b,user.big" {
		t.Fatalf("list %v", list)
	}
	wantErr(t, "remove", fs.RemoveXattr(ctx, root, f.Ino, "user.a"), 0)
	wantErr(t, "remove again", fs.RemoveXattr(ctx, root, f.Ino, "user.a"), syscall.ENODATA)
	wantErr(t, "on dir", fs.SetXattr(ctx, root, inode.RootIno, "user.d", []byte("x"), 0), 0)
	_, err = fs.ListXattr(ctx, root, 4242)
	wantErr(t, "list missing inode", err, syscall.ENOENT)
	// Unlinking the file drops its xattrs (Check at cleanup finds no leak).
	wantErr(t, "unlink", fs.Unlink(ctx, root, inode.RootIno, "f"), 0)
}

// Inode numbers are never reused in a volume, also across a reopen.
func TestInodeNumbersNeverReused(t *testing.T) {
	fs, be := inodetest.New(t)
	used := map[inode.Ino]bool{inode.RootIno: true}
	for i := 0; i < 50; i++ {
		a := mustCreate(t, fs, inode.RootIno, "f")
		if used[a.Ino] {
			t.Fatalf("inode %d reused", a.Ino)
		}
		used[a.Ino] = true
		wantErr(t, "unlink", fs.Unlink(ctx, root, inode.RootIno, "f"), 0)
	}
	fs2, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := fs2.Create(ctx, root, inode.RootIno, "g", 0o644)
	wantErr(t, "create after reopen", err, 0)
	if used[a.Ino] {
		t.Fatalf("inode %d reused after reopen", a.Ino)
	}
	inodetest.MustCheck(t, fs2)
}

func TestStatFS(t *testing.T) {
	fs, _ := inodetest.New(t)
	s0, err := fs.StatFS(ctx)
	wantErr(t, "statfs", err, 0)
	for i := 0; i < 10; i++ {
		mustCreate(t, fs, inode.RootIno, fmt.Sprintf("f%d", i))
	}
	s1, _ := fs.StatFS(ctx)
	if s0.NameMax != 255 || s0.BlockSize == 0 || s1.Files-s1.FilesFree != s0.Files-s0.FilesFree+10 {
		t.Fatalf("statfs %+v -> %+v", s0, s1)
	}
}

// Check finds corruption planted directly in the store.
func TestCheckFindsCorruption(t *testing.T) {
	fs, be := inodetest.New(t)
	f := mustCreate(t, fs, inode.RootIno, "f")
	wantErr(t, "write", fs.Write(ctx, root, f.Ino, []byte("data"), 0), 0)
	probs, err := fs.Check(ctx)
	if err != nil || len(probs) != 0 {
		t.Fatalf("clean volume: %v %v", probs, err)
	}
	// Leaked data for an inode that does not exist.
	if err := be.WriteData(ctx, 777, []byte("leak"), 0); err != nil {
		t.Fatal(err)
	}
	probs, _ = fs.Check(ctx)
	if len(probs) == 0 {
		t.Fatalf("leaked data not found")
	}
	// Reopening repairs it (as after a crash between data and metadata).
	fs2, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inodetest.MustCheck(t, fs2)
	// A dangling entry: delete the file's inode record behind the FS's back.
	var keys, vals [][]byte
	be.Scan(ctx, []byte{'i'}, nil, func(k, v []byte) bool {
		keys = append(keys, append([]byte(nil), k...))
		vals = append(vals, append([]byte(nil), v...))
		return true
	})
	if len(keys) != 2 {
		t.Fatalf("expected 2 inode records, got %d", len(keys))
	}
	if err := be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: keys[1], Delete: true}}}); err != nil {
		t.Fatal(err)
	}
	probs, _ = fs2.Check(ctx)
	if len(probs) == 0 {
		t.Fatalf("dangling entry not found")
	}
	// Put it back; the cleanup check must then pass.
	if err := be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: keys[1], Value: vals[1]}}}); err != nil {
		t.Fatal(err)
	}
}

// Many goroutines changing one directory and their own files: the volume
// stays consistent (race detector on in make test).
func TestConcurrentChanges(t *testing.T) {
	fs, _ := inodetest.New(t)
	d := mustMkdir(t, fs, inode.RootIno, "d")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				name := fmt.Sprintf("g%d-%d", g, i)
				a, err := fs.Create(ctx, root, d.Ino, name, 0o644)
				if err != nil {
					errs <- err
					return
				}
				if err := fs.Write(ctx, root, a.Ino, []byte(name), uint64(i)); err != nil {
					errs <- err
					return
				}
				if i%3 == 0 {
					if err := fs.Rename(ctx, root, d.Ino, name, inode.RootIno, name); err != nil {
						errs <- err
						return
					}
				} else if i%3 == 1 {
					if err := fs.Unlink(ctx, root, d.Ino, name); err != nil {
						errs <- err
						return
					}
				}
				fs.ReadDir(ctx, root, d.Ino, -1, 16, true)
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// CapacityBytes caps the sum of file sizes: writes and resizes beyond it
// are ENOSPC, removing files gives the space back, and the count survives
// a reopen.
func TestCapacity(t *testing.T) {
	be := mem.New(vfsbackend.Options{})
	open := func() *inode.FS {
		fs, err := inode.Open(ctx, be, inode.Options{CapacityBytes: 40960})
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	fs := open()
	f := mustCreate(t, fs, inode.RootIno, "f")
	g := mustCreate(t, fs, inode.RootIno, "g")
	wantErr(t, "write 32K", fs.Write(ctx, root, f.Ino, make([]byte, 32768), 0), 0)
	wantErr(t, "write past capacity", fs.Write(ctx, root, g.Ino, make([]byte, 8193), 0), syscall.ENOSPC)
	wantErr(t, "overwrite within size", fs.Write(ctx, root, f.Ino, make([]byte, 32768), 0), 0)
	_, err := fs.SetAttr(ctx, root, g.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 9000})
	wantErr(t, "grow past capacity", err, syscall.ENOSPC)
	wantErr(t, "write up to capacity", fs.Write(ctx, root, g.Ino, make([]byte, 8192), 0), 0)
	st, _ := fs.StatFS(ctx)
	if st.Blocks != 10 || st.BlocksFree != 0 || st.BlocksAvail != 0 {
		t.Fatalf("statfs at capacity: %+v", st)
	}
	if a := attr(t, fs, g.Ino); a.Size != 8192 {
		t.Fatalf("failed grow changed size to %d", a.Size)
	}
	_, err = fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 4096})
	wantErr(t, "shrink", err, 0)
	wantErr(t, "unlink g", fs.Unlink(ctx, root, inode.RootIno, "g"), 0)
	st, _ = fs.StatFS(ctx)
	if st.BlocksFree != 9 {
		t.Fatalf("after shrink and unlink: %+v", st)
	}
	fs2 := open()
	st, _ = fs2.StatFS(ctx)
	if st.BlocksFree != 9 {
		t.Fatalf("after reopen: %+v", st)
	}
	wantErr(t, "write after reopen", fs2.Write(ctx, root, f.Ino, make([]byte, 36864), 4096), 0)
	wantErr(t, "write past capacity after reopen", fs2.Write(ctx, root, f.Ino, []byte{1}, 40960), syscall.ENOSPC)
	inodetest.MustCheck(t, fs2)
}
