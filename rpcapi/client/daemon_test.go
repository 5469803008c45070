package client

// Tests against the real proxyfsd (internal/daemontest), over TCP and the
// Unix socket.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/proxyfs/proxyfs/internal/daemontest"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// transports runs f once over TCP and once over the Unix socket, each with
// its own daemon.
func transports(t *testing.T, f func(t *testing.T, d *daemon, addr string)) {
	for _, tr := range []string{"tcp", "unix"} {
		t.Run(tr, func(t *testing.T) {
			d := startDaemon(t)
			addr := d.tcp()
			if tr == "unix" {
				addr = d.unix()
			}
			f(t, d, addr)
		})
	}
}

func dialMount(t *testing.T, addr string, mo MountOptions, opts ...Option) (*Client, *Mount) {
	t.Helper()
	ctx := context.Background()
	c, err := Dial(ctx, addr, opts...)
	if err != nil {
		t.Fatalf("Dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	m, err := c.Mount(ctx, "default", mo)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	return c, m
}

var alice = MountOptions{User: "alice", UID: 1000, GID: 1000}

// wantErrno fails t unless err matches errno (and is an *Error).
func wantErrno(t *testing.T, what string, err error, errno syscall.Errno) {
	t.Helper()
	var e *Error
	if !errors.Is(err, errno) || !errors.As(err, &e) {
		t.Errorf("%s: got %v, want %s", what, err, wire.ErrnoName(errno))
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestDaemonMethods(t *testing.T) {
	transports(t, func(t *testing.T, d *daemon, addr string) {
		done := checkGoroutines(t)
		c, m := dialMount(t, addr, alice)
		ctx := context.Background()
		root := m.RootInode()
		if root == 0 || m.MaxIOSize() == 0 || m.MountID() == 0 || m.Volume() != "default" {
			t.Fatalf("mount: root %d max_io %d id %d", root, m.MaxIOSize(), m.MountID())
		}
		if p, err := c.Ping(ctx); err != nil || p.Version != wire.Version {
			t.Fatalf("ping: %+v %v", p, err)
		}

		// Create, lookup, stat, type.
		f := must[Stat](t, "Create")(m.Create(ctx, root, "f", 0o640))
		if f.Mode != syscall.S_IFREG|0o640 || f.UID != 1000 || f.GID != 1000 || f.Nlink != 1 {
			t.Errorf("Create stat %+v", f)
		}
		wantErrno(t, "Create existing", errOf(m.Create(ctx, root, "f", 0o640)), syscall.EEXIST)
		fp := must[Stat](t, "CreatePath")(m.CreatePath(ctx, "/fp", 0o600))
		wantErrno(t, "CreatePath existing", errOf(m.CreatePath(ctx, "fp", 0o600)), syscall.EEXIST)
		wantErrno(t, "CreatePath no parent", errOf(m.CreatePath(ctx, "/nodir/x", 0o600)), syscall.ENOENT)
		if ino := must[uint64](t, "Lookup")(m.Lookup(ctx, root, "f")); ino != f.Ino {
			t.Errorf("Lookup = %d, want %d", ino, f.Ino)
		}
		wantErrno(t, "Lookup missing", errOf(m.Lookup(ctx, root, "nope")), syscall.ENOENT)
		if ino := must[uint64](t, "LookupPath")(m.LookupPath(ctx, "//./fp")); ino != fp.Ino {
			t.Errorf("LookupPath = %d, want %d", ino, fp.Ino)
		}
		wantErrno(t, "LookupPath missing", errOf(m.LookupPath(ctx, "/nope")), syscall.ENOENT)
		if st := must[Stat](t, "GetStat")(m.GetStat(ctx, f.Ino)); st.Ino != f.Ino || st.Mode != f.Mode {
			t.Errorf("GetStat %+v", st)
		}
		wantErrno(t, "GetStat missing", errOf(m.GetStat(ctx, 1<<40)), syscall.ENOENT)
		if st := must[Stat](t, "GetStatPath")(m.GetStatPath(ctx, "fp")); st.Ino != fp.Ino {
			t.Errorf("GetStatPath %+v", st)
		}
		wantErrno(t, "GetStatPath missing", errOf(m.GetStatPath(ctx, "nope")), syscall.ENOENT)
		if typ := must[uint8](t, "Type")(m.Type(ctx, f.Ino)); typ != DTReg {
			t.Errorf("Type = %d", typ)
		}
		if typ := must[uint8](t, "Type root")(m.Type(ctx, root)); typ != DTDir {
			t.Errorf("Type root = %d", typ)
		}

		// Directories.
		dir := must[Stat](t, "Mkdir")(m.Mkdir(ctx, root, "d", 0o755))
		if dir.Mode != syscall.S_IFDIR|0o755 || dir.Nlink != 2 {
			t.Errorf("Mkdir stat %+v", dir)
		}
		wantErrno(t, "Mkdir existing", errOf(m.Mkdir(ctx, root, "d", 0o755)), syscall.EEXIST)
		dp := must[Stat](t, "MkdirPath")(m.MkdirPath(ctx, "/d/sub", 0o700))
		wantErrno(t, "MkdirPath existing", errOf(m.MkdirPath(ctx, "d/sub", 0o700)), syscall.EEXIST)
		wantErrno(t, "Mkdir under file", errOf(m.MkdirPath(ctx, "f/x", 0o700)), syscall.ENOTDIR)
		if st := must[Stat](t, "GetStat dir")(m.GetStat(ctx, dir.Ino)); st.Nlink != 3 {
			t.Errorf("dir nlink = %d, want 3", st.Nlink)
		}

		// Symlinks.
		sl := must[Stat](t, "Symlink")(m.Symlink(ctx, root, "sl", "d/sub"))
		if sl.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			t.Errorf("Symlink stat %+v", sl)
		}
		if tg := must[string](t, "ReadSymlink")(m.ReadSymlink(ctx, sl.Ino)); tg != "d/sub" {
			t.Errorf("ReadSymlink = %q", tg)
		}
		wantErrno(t, "ReadSymlink of file", errOf(m.ReadSymlink(ctx, f.Ino)), syscall.EINVAL)
		must[Stat](t, "SymlinkPath")(m.SymlinkPath(ctx, "/d/sl2", "/fp"))
		if tg := must[string](t, "ReadSymlinkPath")(m.ReadSymlinkPath(ctx, "d/sl2")); tg != "/fp" {
			t.Errorf("ReadSymlinkPath = %q", tg)
		}
		wantErrno(t, "SymlinkPath existing", errOf(m.SymlinkPath(ctx, "sl", "x")), syscall.EEXIST)
		// An intermediate symlink is followed.
		if ino := must[uint64](t, "LookupPath via symlink")(m.LookupPath(ctx, "sl/..")); ino == 0 {
			t.Error("LookupPath via symlink")
		}

		// Hard links.
		noErr(t, "Link", m.Link(ctx, dir.Ino, "f-link", f.Ino))
		wantErrno(t, "Link existing", m.Link(ctx, dir.Ino, "f-link", f.Ino), syscall.EEXIST)
		wantErrno(t, "Link to dir", m.Link(ctx, root, "d-link", dir.Ino), syscall.EPERM)
		noErr(t, "LinkPath", m.LinkPath(ctx, "fp", "d/fp-link"))
		wantErrno(t, "LinkPath missing src", m.LinkPath(ctx, "nope", "d/x"), syscall.ENOENT)
		if st := must[Stat](t, "GetStat f")(m.GetStat(ctx, f.Ino)); st.Nlink != 2 {
			t.Errorf("nlink after link = %d", st.Nlink)
		}

		// Unlink, rmdir.
		noErr(t, "Unlink", m.Unlink(ctx, dir.Ino, "f-link"))
		wantErrno(t, "Unlink missing", m.Unlink(ctx, dir.Ino, "f-link"), syscall.ENOENT)
		wantErrno(t, "Unlink dir", m.Unlink(ctx, root, "d"), syscall.EISDIR)
		noErr(t, "UnlinkPath", m.UnlinkPath(ctx, "d/fp-link"))
		wantErrno(t, "UnlinkPath missing", m.UnlinkPath(ctx, "d/fp-link"), syscall.ENOENT)
		wantErrno(t, "Rmdir not empty", m.Rmdir(ctx, root, "d"), syscall.ENOTEMPTY)
		wantErrno(t, "Rmdir file", m.Rmdir(ctx, root, "f"), syscall.ENOTDIR)
		must[Stat](t, "Mkdir e")(m.Mkdir(ctx, root, "e", 0o755))
		noErr(t, "Rmdir", m.Rmdir(ctx, root, "e"))
		wantErrno(t, "Rmdir missing", m.Rmdir(ctx, root, "e"), syscall.ENOENT)
		must[Stat](t, "MkdirPath e2")(m.MkdirPath(ctx, "d/e2", 0o755))
		noErr(t, "RmdirPath", m.RmdirPath(ctx, "d/e2"))
		wantErrno(t, "RmdirPath missing", m.RmdirPath(ctx, "d/e2"), syscall.ENOENT)

		// Rename.
		noErr(t, "Rename", m.Rename(ctx, root, "f", dir.Ino, "f2"))
		wantErrno(t, "Rename missing", m.Rename(ctx, root, "f", dir.Ino, "f3"), syscall.ENOENT)
		wantErrno(t, "Rename into own subtree", m.Rename(ctx, root, "d", dp.Ino, "x"), syscall.EINVAL)
		noErr(t, "RenamePath", m.RenamePath(ctx, "d/f2", "f"))
		wantErrno(t, "RenamePath dir over file", m.RenamePath(ctx, "d/sub", "f"), syscall.ENOTDIR)
		if ino := must[uint64](t, "Lookup renamed")(m.Lookup(ctx, root, "f")); ino != f.Ino {
			t.Errorf("renamed inode %d, want %d", ino, f.Ino)
		}

		// Attributes.
		noErr(t, "Chmod", m.Chmod(ctx, f.Ino, 0o604))
		noErr(t, "ChmodPath", m.ChmodPath(ctx, "fp", 0o611))
		// Only root gives a file away, or to a group alice is not in.
		ac, admin := dialMount(t, addr, MountOptions{User: "admin"})
		wantErrno(t, "Chown by alice", m.Chown(ctx, f.Ino, 7, KeepID), syscall.EPERM)
		noErr(t, "Chown", admin.Chown(ctx, f.Ino, 7, KeepID))
		noErr(t, "ChownPath", admin.ChownPath(ctx, "fp", KeepID, 9))
		wantErrno(t, "Chmod missing", m.Chmod(ctx, 1<<40, 0o600), syscall.ENOENT)
		wantErrno(t, "ChownPath missing", m.ChownPath(ctx, "nope", 1, 1), syscall.ENOENT)
		if st := must[Stat](t, "GetStat f")(m.GetStat(ctx, f.Ino)); st.Mode != syscall.S_IFREG|0o604 || st.UID != 7 || st.GID != 1000 {
			t.Errorf("after chmod/chown: %+v", st)
		}
		if st := must[Stat](t, "GetStat fp")(m.GetStatPath(ctx, "fp")); st.Mode != syscall.S_IFREG|0o611 || st.UID != 1000 || st.GID != 9 {
			t.Errorf("after chmod/chown path: %+v", st)
		}
		noErr(t, "Chown back", admin.Chown(ctx, f.Ino, int64(alice.UID), KeepID))
		noErr(t, "Resize", m.Resize(ctx, f.Ino, 100))
		noErr(t, "ResizePath", m.ResizePath(ctx, "fp", 50))
		wantErrno(t, "Resize dir", m.Resize(ctx, dir.Ino, 1), syscall.EISDIR)
		if st := must[Stat](t, "GetStat")(m.GetStat(ctx, f.Ino)); st.Size != 100 {
			t.Errorf("size after resize %d", st.Size)
		}
		at, mt := &Timespec{Sec: 1000, Nsec: 5}, &Timespec{Sec: 2000, Nsec: 7}
		noErr(t, "SetTime", m.SetTime(ctx, f.Ino, at, mt))
		noErr(t, "SetTimePath", m.SetTimePath(ctx, "fp", nil, mt))
		wantErrno(t, "SetTime bad nsec", m.SetTime(ctx, f.Ino, &Timespec{Nsec: 2e9}, nil), syscall.EINVAL)
		if st := must[Stat](t, "GetStat")(m.GetStat(ctx, f.Ino)); st.Atime != *at || st.Mtime != *mt {
			t.Errorf("times %+v %+v", st.Atime, st.Mtime)
		}
		if st := must[Stat](t, "GetStatPath")(m.GetStatPath(ctx, "fp")); st.Mtime != *mt || st.Atime == *at {
			t.Errorf("times path %+v %+v", st.Atime, st.Mtime)
		}
		crt := TimespecOf(time.Unix(500, 42))
		st := must[Stat](t, "SetAttr")(m.SetAttr(ctx, f.Ino, Attrs{Mask: wire.SetSize | wire.SetMode | wire.SetCrtime, Size: 10, Mode: 0o666, Crtime: crt}))
		if st.Size != 10 || st.Mode != syscall.S_IFREG|0o666 || st.Crtime != *crt {
			t.Errorf("SetAttr: %+v", st)
		}
		st = must[Stat](t, "SetAttrPath")(admin.SetAttrPath(ctx, "fp", Attrs{Mask: wire.SetUID | wire.SetGID, UID: 3, GID: 4}))
		if st.UID != 3 || st.GID != 4 {
			t.Errorf("SetAttrPath: %+v", st)
		}
		// Zero values the mask selects are sent and applied (truncate to 0,
		// uid 0).
		st = must[Stat](t, "SetAttr zero")(admin.SetAttr(ctx, f.Ino, Attrs{Mask: wire.SetSize | wire.SetUID, Size: 0, UID: 0}))
		if st.Size != 0 || st.UID != 0 {
			t.Errorf("SetAttr zero values: %+v", st)
		}
		ac.Close()
		wantErrno(t, "SetAttrPath missing", errOf(m.SetAttrPath(ctx, "nope", Attrs{Mask: wire.SetMode})), syscall.ENOENT)

		// Data, flush, EBADF.
		data := []byte("hello, proxyfs")
		if n, err := m.Write(ctx, f.Ino, data, 3); err != nil || n != len(data) {
			t.Fatalf("Write: %d %v", n, err)
		}
		buf := make([]byte, 100)
		n, err := m.Read(ctx, f.Ino, buf, 0)
		if err != nil || n != 3+len(data) || !bytes.Equal(buf[3:n], data) || !bytes.Equal(buf[:3], []byte{0, 0, 0}) {
			t.Fatalf("Read: %d %v %q", n, err, buf[:n])
		}
		if n, err := m.Read(ctx, f.Ino, buf, 1000); err != nil || n != 0 {
			t.Errorf("Read past EOF: %d %v", n, err)
		}
		noErr(t, "Flush", m.Flush(ctx, f.Ino))
		missing := uint64(1 << 40)
		wantErrno(t, "Read missing", errOf(m.Read(ctx, missing, buf, 0)), syscall.EBADF)
		wantErrno(t, "Write missing", errOf(m.Write(ctx, missing, buf[:1], 0)), syscall.EBADF)
		wantErrno(t, "Flush missing", m.Flush(ctx, missing), syscall.EBADF)
		wantErrno(t, "Read dir", errOf(m.Read(ctx, root, buf, 0)), syscall.EISDIR)
		wantErrno(t, "Write dir", errOf(m.Write(ctx, root, buf[:1], 0)), syscall.EISDIR)

		// Readdir.
		ents, eof, err := m.ReadDir(ctx, root, -1, 2)
		if err != nil || len(ents) != 2 || ents[0].Name != "." || ents[1].Name != ".." || eof {
			t.Fatalf("ReadDir first batch: %+v %v %v", ents, eof, err)
		}
		rest, eof, err := m.ReadDir(ctx, root, ents[1].Cookie, 0)
		if err != nil || !eof {
			t.Fatalf("ReadDir rest: %v %v", eof, err)
		}
		names := entryNames(rest)
		if want := []string{"d", "f", "fp", "sl"}; !slices.Equal(sorted(names), want) {
			t.Errorf("ReadDir names %v, want %v", names, want)
		}
		plus, _, err := m.ReadDirPlus(ctx, root, -1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range plus {
			if e.Stat == nil || e.Stat.Ino != e.Inode {
				t.Errorf("ReadDirPlus entry %+v", e)
			}
		}
		wantErrno(t, "ReadDir of file", errOf3(m.ReadDir(ctx, f.Ino, -1, 0)), syscall.ENOTDIR)
		all, err := m.ReadDirAll(ctx, dir.Ino)
		if err != nil || !slices.Equal(sorted(entryNames(all)), []string{".", "..", "sl2", "sub"}) {
			t.Errorf("ReadDirAll: %v %v", entryNames(all), err)
		}
		var cnt int
		for e, err := range m.EntriesPlus(ctx, root) {
			if err != nil || e.Stat == nil {
				t.Fatalf("EntriesPlus: %+v %v", e, err)
			}
			cnt++
		}
		if cnt != 6 {
			t.Errorf("EntriesPlus: %d entries", cnt)
		}
		for _, err := range m.Entries(ctx, 1<<40) {
			wantErrno(t, "Entries missing", err, syscall.ENOENT)
		}

		// Statvfs.
		vfs := must[StatVFS](t, "StatVFS")(m.StatVFS(ctx))
		if vfs.Bsize == 0 || vfs.Blocks == 0 || vfs.Namemax != 255 || vfs.Flag&1 != 0 {
			t.Errorf("StatVFS %+v", vfs)
		}

		// Xattrs.
		noErr(t, "SetXattr", m.SetXattr(ctx, f.Ino, "user.a", []byte("va"), 0))
		wantErrno(t, "SetXattr create existing", m.SetXattr(ctx, f.Ino, "user.a", []byte("x"), wire.XattrCreate), syscall.EEXIST)
		wantErrno(t, "SetXattr replace missing", m.SetXattr(ctx, f.Ino, "user.b", []byte("x"), wire.XattrReplace), syscall.ENODATA)
		noErr(t, "SetXattrPath", m.SetXattrPath(ctx, "f", "user.b", []byte("vb"), wire.XattrCreate))
		noErr(t, "SetXattrPath empty", m.SetXattrPath(ctx, "f", "user.empty", nil, 0))
		if v := must[[]byte](t, "GetXattr")(m.GetXattr(ctx, f.Ino, "user.b")); string(v) != "vb" {
			t.Errorf("GetXattr = %q", v)
		}
		if v := must[[]byte](t, "GetXattrPath")(m.GetXattrPath(ctx, "f", "user.a")); string(v) != "va" {
			t.Errorf("GetXattrPath = %q", v)
		}
		if v := must[[]byte](t, "GetXattr empty")(m.GetXattr(ctx, f.Ino, "user.empty")); len(v) != 0 {
			t.Errorf("GetXattr empty = %q", v)
		}
		wantErrno(t, "GetXattr missing", errOf(m.GetXattr(ctx, f.Ino, "user.nope")), syscall.ENODATA)
		if l := must[[]string](t, "ListXattr")(m.ListXattr(ctx, f.Ino)); !slices.Equal(sorted(l), []string{"user.a", "user.b", "user.empty"}) {
			t.Errorf("ListXattr = %v", l)
		}
		noErr(t, "RemoveXattr", m.RemoveXattr(ctx, f.Ino, "user.a"))
		wantErrno(t, "RemoveXattr missing", m.RemoveXattr(ctx, f.Ino, "user.a"), syscall.ENODATA)
		noErr(t, "RemoveXattrPath", m.RemoveXattrPath(ctx, "f", "user.b"))
		wantErrno(t, "RemoveXattrPath missing", m.RemoveXattrPath(ctx, "f", "user.b"), syscall.ENODATA)
		if l := must[[]string](t, "ListXattrPath")(m.ListXattrPath(ctx, "f")); !slices.Equal(l, []string{"user.empty"}) {
			t.Errorf("ListXattrPath = %v", l)
		}
		wantErrno(t, "ListXattrPath missing", errOf(m.ListXattrPath(ctx, "nope")), syscall.ENOENT)

		// Read-only mount.
		ro, err := c.Mount(ctx, "default", MountOptions{ReadOnly: true, User: "bob", UID: 1, GID: 1})
		if err != nil {
			t.Fatal(err)
		}
		wantErrno(t, "read-only create", errOf(ro.CreatePath(ctx, "ro", 0o644)), syscall.EROFS)
		wantErrno(t, "read-only write", errOf(ro.Write(ctx, f.Ino, []byte("x"), 0)), syscall.EROFS)
		if n, err := ro.Read(ctx, f.Ino, buf, 3); err != nil || n != len(data) {
			t.Errorf("read-only read: %d %v", n, err)
		}
		if vfs := must[StatVFS](t, "StatVFS ro")(ro.StatVFS(ctx)); vfs.Flag&1 == 0 {
			t.Errorf("read-only statvfs flag %d", vfs.Flag)
		}
		noErr(t, "Unmount ro", ro.Unmount(ctx))

		// Unknown volume.
		if _, err := c.Mount(ctx, "no-such-volume", alice); err == nil {
			t.Error("mount of unknown volume succeeded")
		}

		// Unmount.
		noErr(t, "Unmount", m.Unmount(ctx))
		err = errOf(m.GetStat(ctx, root))
		wantErrno(t, "call after Unmount", err, syscall.EINVAL)
		if !IsBadMount(err) {
			t.Errorf("call after Unmount: %v, want bad_mount", err)
		}
		c.Close()
		done()
	})
}

func errOf[T any](_ T, err error) error { return err }

func errOf3[T, U any](_ T, _ U, err error) error { return err }

func entryNames(es []DirEntry) []string {
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
	}
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestDaemonBadMountIsNotRetriedForever checks that a stale mount id the
// server no longer knows makes the Mount mount again (the server-side
// unmount simulates a restart).
func TestDaemonRemountOnBadMount(t *testing.T) {
	d := startDaemon(t)
	c, m := dialMount(t, d.tcp(), alice)
	ctx := context.Background()
	old := m.MountID()
	// Unmount behind the Mount's back.
	if err := c.jsonAttempt(ctx, wire.MethodUnmount, wire.MountOnly{MountID: old}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetStat(ctx, m.RootInode()); err != nil {
		t.Fatalf("GetStat after server-side unmount: %v", err)
	}
	if _, err := m.Read(ctx, m.RootInode(), make([]byte, 1), 0); !errors.Is(err, syscall.EISDIR) {
		t.Fatalf("Read of root: %v", err)
	}
	if m.MountID() == old {
		t.Fatal("mount id unchanged")
	}
	// Binary channel remount.
	if err := c.jsonAttempt(ctx, wire.MethodUnmount, wire.MountOnly{MountID: m.MountID()}, nil); err != nil {
		t.Fatal(err)
	}
	st := must[Stat](t, "CreatePath")(m.CreatePath(ctx, "x", 0o644))
	if err := c.jsonAttempt(ctx, wire.MethodUnmount, wire.MountOnly{MountID: m.MountID()}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := m.Write(ctx, st.Ino, []byte("abc"), 0); err != nil || n != 3 {
		t.Fatalf("Write after server-side unmount: %d %v", n, err)
	}
}

func TestDaemonConcurrent(t *testing.T) {
	transports(t, func(t *testing.T, d *daemon, addr string) {
		done := checkGoroutines(t)
		c, m := dialMount(t, addr, alice)
		ctx := context.Background()
		root := m.RootInode()
		const G = 64
		runConcurrentWorkers(t, m, G, 40)
		all, err := m.ReadDirAll(ctx, root)
		if err != nil || len(all) != 2+G {
			t.Errorf("root has %d entries (%v), want %d", len(all), err, 2+G)
		}
		c.Close()
		done()
	})
}

// TestDaemonMaxConnections runs the concurrent workload against a daemon
// whose max_connections is below what the client wants: the connections
// over the limit are refused (EAGAIN) and every call still succeeds on the
// ones it has, without a caller seeing an error.
func TestDaemonMaxConnections(t *testing.T) {
	d := aliceDaemon(t, daemontest.Options{MaxConnections: 3})
	c, m := dialMount(t, d.TCPAddr, alice, WithConns(2, 4))
	runConcurrentWorkers(t, m, 16, 10)
	c.Close()
	if !strings.Contains(d.Logs(), "max_connections reached") {
		t.Error("no connection was refused: the test tests nothing")
	}
	d.Check(t)
}

// runConcurrentWorkers runs g concurrentWorkers of n files each in the
// root of m and reports their errors.
func runConcurrentWorkers(t *testing.T, m *Mount, g, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := concurrentWorker(context.Background(), m, m.RootInode(), i, n); err != nil {
				errs <- fmt.Errorf("worker %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func concurrentWorker(ctx context.Context, m *Mount, root uint64, g, n int) error {
	dir, err := m.Mkdir(ctx, root, fmt.Sprintf("w%d", g), 0o755)
	if err != nil {
		return err
	}
	for i := range n {
		name := fmt.Sprintf("f%d", i)
		st, err := m.Create(ctx, dir.Ino, name, 0o644)
		if err != nil {
			return err
		}
		data := bytes.Repeat([]byte{byte(g), byte(i)}, 100+i)
		if _, err := m.Write(ctx, st.Ino, data, uint64(i)); err != nil {
			return err
		}
		buf := make([]byte, len(data)+10)
		k, err := m.Read(ctx, st.Ino, buf, uint64(i))
		if err != nil {
			return err
		}
		if !bytes.Equal(buf[:k], data) {
			return fmt.Errorf("read back %d bytes, want %d", k, len(data))
		}
		if _, err := m.GetStatPath(ctx, fmt.Sprintf("w%d/%s", g, name)); err != nil {
			return err
		}
		if err := m.SetXattr(ctx, st.Ino, "user.i", []byte(name), 0); err != nil {
			return err
		}
		if _, err := m.Lookup(ctx, dir.Ino, "missing"); !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("lookup missing: %v", err)
		}
		if i%2 == 1 {
			if err := m.Unlink(ctx, dir.Ino, name); err != nil {
				return err
			}
		}
	}
	all, err := m.ReadDirAll(ctx, dir.Ino)
	if err != nil {
		return err
	}
	if len(all) != 2+n/2 {
		return fmt.Errorf("directory has %d entries, want %d", len(all), 2+n/2)
	}
	return nil
}

func TestDaemonLargeIO(t *testing.T) {
	transports(t, func(t *testing.T, d *daemon, addr string) {
		_, m := dialMount(t, addr, alice)
		ctx := context.Background()
		max := int(m.MaxIOSize())
		size := 3*max + max/2 + 17
		if size > 64<<20 {
			t.Skipf("max_io_size %d too large for this test", max)
		}
		data := make([]byte, size)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		st := must[Stat](t, "CreatePath")(m.CreatePath(ctx, "big", 0o644))
		const off = 12345
		n, err := m.Write(ctx, st.Ino, data, off)
		if err != nil || n != size {
			t.Fatalf("Write: %d %v", n, err)
		}
		got := make([]byte, size+2*max)
		n, err = m.Read(ctx, st.Ino, got, off)
		if err != nil || n != size || !bytes.Equal(got[:n], data) {
			t.Fatalf("Read: %d (want %d) %v, equal %v", n, size, err, bytes.Equal(got[:min(n, size)], data[:min(n, size)]))
		}
		// A read that starts in the hole.
		n, err = m.Read(ctx, st.Ino, got[:max+100], 0)
		if err != nil || n != max+100 || !bytes.Equal(got[:off], make([]byte, off)) || !bytes.Equal(got[off:n], data[:n-off]) {
			t.Fatalf("Read from 0: %d %v", n, err)
		}
		if s := must[Stat](t, "GetStat")(m.GetStat(ctx, st.Ino)); s.Size != uint64(off+size) {
			t.Errorf("size %d, want %d", s.Size, off+size)
		}
	})
}

// TestDaemonReadDirWhileChanging walks a 3000-entry directory while other
// goroutines add and remove entries: every entry that exists for the whole
// walk must be returned exactly once.
func TestDaemonReadDirWhileChanging(t *testing.T) {
	d := startDaemon(t)
	_, m := dialMount(t, d.unix(), alice)
	ctx := context.Background()
	dir := must[Stat](t, "Mkdir")(m.MkdirPath(ctx, "big", 0o755))
	const N = 3000
	stable := map[string]bool{}
	{
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		var mu sync.Mutex
		for i := range N {
			name := fmt.Sprintf("stable-%04d", i)
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, err := m.Create(ctx, dir.Ino, name, 0o644); err != nil {
					t.Error(err)
				}
				mu.Lock()
				stable[name] = true
				mu.Unlock()
			}()
			// Some entries that will be removed during the walk.
			if i%3 == 0 {
				if _, err := m.Create(ctx, dir.Ino, fmt.Sprintf("doomed-%04d", i), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		wg.Wait()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var churn atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += 4 {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := m.Create(ctx, dir.Ino, fmt.Sprintf("new-%d", i), 0o644); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 && i < N {
					if err := m.Unlink(ctx, dir.Ino, fmt.Sprintf("doomed-%04d", i)); err != nil && !errors.Is(err, syscall.ENOENT) {
						t.Error(err)
						return
					}
				}
				churn.Add(1)
			}
		}()
	}
	for pass := range 2 {
		seen := map[string]int{}
		it := m.Entries(ctx, dir.Ino)
		if pass == 1 {
			it = m.EntriesPlus(ctx, dir.Ino)
		}
		for e, err := range it {
			if err != nil {
				t.Fatal(err)
			}
			seen[e.Name]++
		}
		for name := range stable {
			if seen[name] != 1 {
				t.Errorf("pass %d: %s seen %d times", pass, name, seen[name])
			}
		}
		for name, k := range seen {
			if k != 1 {
				t.Errorf("pass %d: %s seen %d times", pass, name, k)
			}
		}
		if seen["."] != 1 || seen[".."] != 1 {
			t.Errorf("pass %d: . and .. missing", pass)
		}
	}
	close(stop)
	wg.Wait()
	if churn.Load() == 0 {
		t.Error("no churn during the walk")
	}
}

// TestDaemonRestart runs a workload in many goroutines while the daemon is
// killed with SIGKILL and restarted, then stopped with SIGTERM and
// restarted: callers must see no error at all, and everything acknowledged
// before a kill must be there after it.
func TestDaemonRestart(t *testing.T) {
	transports(t, func(t *testing.T, d *daemon, addr string) {
		done := checkGoroutines(t)
		logger, events := newCountingLogger()
		c, m := dialMount(t, addr, alice, WithBackoff(5*time.Millisecond, 200*time.Millisecond), WithLogger(logger))
		ctx := context.Background()
		root := m.RootInode()
		id0 := m.MountID()

		type acked struct {
			path string
			data []byte
			xval string
		}
		var mu sync.Mutex
		var files []acked
		var ops atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		const G = 16
		for g := range G {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fail := func(err error) { errs <- fmt.Errorf("worker %d: %w", g, err) }
				dname := fmt.Sprintf("r%d", g)
				dir, err := m.Mkdir(ctx, root, dname, 0o755)
				if err != nil {
					fail(err)
					return
				}
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					name := fmt.Sprintf("f%d", i)
					st, err := m.Create(ctx, dir.Ino, name, 0o644)
					if err != nil {
						fail(fmt.Errorf("create %s: %w", name, err))
						return
					}
					data := bytes.Repeat([]byte(fmt.Sprintf("%d/%d;", g, i)), 50+i%300)
					if n, err := m.Write(ctx, st.Ino, data, 0); err != nil || n != len(data) {
						fail(fmt.Errorf("write %s: %d %w", name, n, err))
						return
					}
					xval := fmt.Sprint(i)
					if err := m.SetXattr(ctx, st.Ino, "user.x", []byte(xval), wire.XattrCreate); err != nil {
						fail(fmt.Errorf("setxattr %s: %w", name, err))
						return
					}
					final := name
					switch i % 4 {
					case 1:
						final = name + ".renamed"
						if err := m.Rename(ctx, dir.Ino, name, dir.Ino, final); err != nil {
							fail(fmt.Errorf("rename %s: %w", name, err))
							return
						}
					case 2:
						if err := m.LinkPath(ctx, dname+"/"+name, dname+"/"+name+".link"); err != nil {
							fail(fmt.Errorf("link %s: %w", name, err))
							return
						}
						if err := m.Unlink(ctx, dir.Ino, name+".link"); err != nil {
							fail(fmt.Errorf("unlink %s: %w", name, err))
							return
						}
					case 3:
						sub := name + ".d"
						if _, err := m.MkdirPath(ctx, dname+"/"+sub, 0o755); err != nil {
							fail(fmt.Errorf("mkdir %s: %w", sub, err))
							return
						}
						if _, err := m.SymlinkPath(ctx, dname+"/"+sub+"/l", "../"+name); err != nil {
							fail(fmt.Errorf("symlink %s: %w", sub, err))
							return
						}
						if err := m.UnlinkPath(ctx, dname+"/"+sub+"/l"); err != nil {
							fail(fmt.Errorf("unlink symlink %s: %w", sub, err))
							return
						}
						if err := m.RmdirPath(ctx, dname+"/"+sub); err != nil {
							fail(fmt.Errorf("rmdir %s: %w", sub, err))
							return
						}
					}
					buf := make([]byte, len(data)+1)
					if n, err := m.Read(ctx, st.Ino, buf, 0); err != nil || !bytes.Equal(buf[:n], data) {
						fail(fmt.Errorf("read %s: %d %v", name, n, err))
						return
					}
					mu.Lock()
					files = append(files, acked{dname + "/" + final, data, xval})
					mu.Unlock()
					ops.Add(1)
				}
			}()
		}
		waitOps := func(n int64) {
			t.Helper()
			target := ops.Load() + n
			deadline := time.Now().Add(60 * time.Second)
			for ops.Load() < target {
				if time.Now().After(deadline) {
					t.Fatalf("workload stalled at %d ops", ops.Load())
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		waitOps(200)
		for round := range 2 {
			d.kill(t)
			time.Sleep(50 * time.Millisecond) // let callers notice
			d.restart(t)
			waitOps(200)
			t.Logf("SIGKILL round %d: %d ops so far", round, ops.Load())
		}
		d.term(t)
		d.restart(t)
		waitOps(200)
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if m.MountID() == id0 {
			t.Error("mount id did not change across restarts")
		}
		t.Logf("client events: %v", events)
		if n := events.count("proxyfs: mounted again"); n < 3 {
			t.Errorf("mounted again %d times, want at least 3", n)
		}
		if events.count("proxyfs: connection lost") == 0 || events.count("proxyfs: reconnected") == 0 {
			t.Error("no connection lost / reconnected events")
		}

		// Everything acknowledged is there, also after one more kill.
		d.kill(t)
		d.restart(t)
		mu.Lock()
		defer mu.Unlock()
		t.Logf("%d files acknowledged", len(files))
		for _, f := range files {
			st, err := m.GetStatPath(ctx, f.path)
			if err != nil {
				t.Errorf("%s: %v", f.path, err)
				continue
			}
			buf := make([]byte, len(f.data)+1)
			n, err := m.Read(ctx, st.Ino, buf, 0)
			if err != nil || !bytes.Equal(buf[:n], f.data) {
				t.Errorf("%s: read %d bytes, %v; want %d", f.path, n, err, len(f.data))
			}
			if v, err := m.GetXattr(ctx, st.Ino, "user.x"); err != nil || string(v) != f.xval {
				t.Errorf("%s: xattr %q %v, want %q", f.path, v, err, f.xval)
			}
		}
		c.Close()
		done()
	})
}
