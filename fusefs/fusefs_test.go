package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// TestAttributes: create, write, read, truncate, ftruncate, chmod, chown,
// utimes (given times and now), stat through the mount and on the server.
func TestAttributes(t *testing.T) {
	e := start(t, Options{}, daemontest.Options{})
	p := e.path("f")
	if err := os.WriteFile(p, []byte("hello, world"), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "hello, world" {
		t.Fatalf("read %q %v", b, err)
	}
	if err := os.Truncate(p, 5); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(3); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o604); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2020, 5, 1, 12, 0, 0, 123456789, time.UTC)
	at := time.Date(2021, 6, 2, 13, 0, 0, 5, time.UTC)
	if err := os.Chtimes(p, at, mt); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 3 || st.Mode != syscall.S_IFREG|0o604 || st.Uid != 1234 || st.Gid != 5678 ||
		st.Mtim.Sec != mt.Unix() || st.Mtim.Nsec != 123456789 || st.Atim.Sec != at.Unix() || st.Nlink != 1 {
		t.Fatalf("stat: %+v", st)
	}
	sst, err := e.m.GetStat(context.Background(), st.Ino)
	if err != nil || sst.Size != 3 || sst.Mode&0o7777 != 0o604 || sst.UID != 1234 || sst.Mtime.Sec != mt.Unix() {
		t.Fatalf("server stat %+v %v", sst, err)
	}
	// utimensat with UTIME_NOW takes the server's clock.
	before := time.Now().Add(-2 * time.Second)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if time.Unix(st.Mtim.Unix()).Before(before) || time.Unix(st.Atim.Unix()).Before(before) {
		t.Fatalf("times not now: %v %v", st.Mtim, st.Atim)
	}
	// An empty file is created with O_CREAT|O_EXCL once.
	if _, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	if err := os.Mkdir(e.path("d"), 0o750); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(e.path("d")); err != nil || fi.Mode() != os.ModeDir|0o750 {
		t.Fatalf("mkdir: %v %v", fi.Mode(), err)
	}
	// mknod: regular files only.
	if err := syscall.Mknod(e.path("n"), syscall.S_IFREG|0o600, 0); err != nil {
		t.Fatalf("mknod regular: %v", err)
	}
	if err := syscall.Mknod(e.path("fifo"), syscall.S_IFIFO|0o600, 0); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("mknod fifo: %v, want EPERM", err)
	}
}

// TestReaddirMany lists a directory of more entries than one server batch
// (1024), while entries are removed behind the reader, and seeks back.
func TestReaddirMany(t *testing.T) {
	e := start(t, Options{}, daemontest.Options{})
	dir := e.path("many")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 2600
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("entry-%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	{
		names, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != n {
			t.Fatalf("readdir: %d entries, want %d", len(names), n)
		}
		seen := map[string]bool{}
		for _, d := range names {
			if seen[d.Name()] {
				t.Fatalf("%s twice", d.Name())
			}
			seen[d.Name()] = true
		}
	}
	// Remove entries while reading: the others are each seen once.
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first, err := f.Readdirnames(100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2000; i < n; i++ {
		if err := os.Remove(filepath.Join(dir, fmt.Sprintf("entry-%05d", i))); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	all := append(first, rest...)
	sort.Strings(all)
	if len(all) != 2000 || all[0] != "entry-00000" || all[1999] != "entry-01999" {
		t.Fatalf("readdir during removal: %d entries, %v ... %v", len(all), all[:2], all[len(all)-2:])
	}
}

// TestOpenFiles: a file unlinked while open, or renamed over while open,
// stays readable and writable through its descriptor; hard links and
// symlinks; xattrs; statfs.
func TestOpenFiles(t *testing.T) {
	e := start(t, Options{}, daemontest.Options{})
	a, b := e.path("a"), e.path("b")
	if err := os.WriteFile(a, []byte("new contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	fb, err := os.OpenFile(b, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 12)
	if _, err := fb.ReadAt(got, 0); err != nil || string(got) != "old contents" {
		t.Fatalf("renamed-over open file: %q %v", got, err)
	}
	if b, _ := os.ReadFile(b); string(b) != "new contents" {
		t.Fatalf("rename target: %q", b)
	}
	// Unlinked while open.
	u := e.path("u")
	if err := os.WriteFile(u, []byte("still here"), 0o644); err != nil {
		t.Fatal(err)
	}
	fu, err := os.OpenFile(u, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fu.Close()
	if err := os.Remove(u); err != nil {
		t.Fatal(err)
	}
	if _, err := fu.WriteAt([]byte("!"), 10); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 11)
	if _, err := fu.ReadAt(got, 0); err != nil || string(got) != "still here!" {
		t.Fatalf("unlinked open file: %q %v", got, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(fu.Fd()), &st); err != nil || st.Nlink != 0 || st.Size != 11 {
		t.Fatalf("fstat of unlinked file: %+v %v", st, err)
	}
	if err := fu.Truncate(4); err != nil {
		t.Fatalf("ftruncate of unlinked file: %v", err)
	}
	// Hard link and symlink.
	if err := os.Link(b, e.path("b2")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(e.path("b2"), &st); err != nil || st.Nlink != 2 {
		t.Fatalf("link: nlink %d %v", st.Nlink, err)
	}
	if err := os.Symlink("b", e.path("s")); err != nil {
		t.Fatal(err)
	}
	if tgt, err := os.Readlink(e.path("s")); err != nil || tgt != "b" {
		t.Fatalf("readlink %q %v", tgt, err)
	}
	if c, err := os.ReadFile(e.path("s")); err != nil || string(c) != "new contents" {
		t.Fatalf("through symlink: %q %v", c, err)
	}
	// Xattrs.
	if err := unix.Setxattr(b, "user.k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(b, "user.k", []byte("v2"), unix.XATTR_CREATE); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("XATTR_CREATE over an existing one: %v", err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(b, "user.k", buf); err != nil || string(buf[:n]) != "v1" {
		t.Fatalf("getxattr %q %v", buf[:n], err)
	}
	if n, err := unix.Listxattr(b, buf); err != nil || !bytes.Contains(buf[:n], []byte("user.k\x00")) {
		t.Fatalf("listxattr %q %v", buf[:n], err)
	}
	if err := unix.Removexattr(b, "user.k"); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Getxattr(b, "user.k", buf); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("getxattr after remove: %v", err)
	}
	// statfs.
	var sfs unix.Statfs_t
	if err := unix.Statfs(e.dir, &sfs); err != nil || sfs.Blocks == 0 || sfs.Files == 0 || sfs.Namelen != 255 {
		t.Fatalf("statfs %+v %v", sfs, err)
	}
	// RENAME_NOREPLACE and RENAME_EXCHANGE are EINVAL.
	// (The kernel itself refuses RENAME_NOREPLACE onto a name it knows.)
	if err := unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, e.path("b3"), unix.RENAME_NOREPLACE); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("RENAME_NOREPLACE: %v", err)
	}
	if err := os.WriteFile(e.path("c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, b, unix.AT_FDCWD, e.path("c"), unix.RENAME_EXCHANGE); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("RENAME_EXCHANGE: %v", err)
	}
	// A directory rename, and rmdir of a non-empty one.
	if err := os.MkdirAll(e.path("d1/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.path("d1"), e.path("d2")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(e.path("d2")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir non-empty: %v", err)
	}
}

// TestAllocSeekCopy: fallocate (allocate, punch a hole), SEEK_DATA and
// SEEK_HOLE, and copy_file_range through the server.
func TestAllocSeekCopy(t *testing.T) {
	e := start(t, Options{}, daemontest.Options{})
	p := e.path("sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const mib = 1 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), 4*mib/16)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, mib, mib); err != nil {
		t.Fatal(err)
	}
	if off, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE); err != nil || off != mib {
		t.Fatalf("SEEK_HOLE: %d %v", off, err)
	}
	if off, err := unix.Seek(int(f.Fd()), mib, unix.SEEK_DATA); err != nil || off != 2*mib {
		t.Fatalf("SEEK_DATA: %d %v", off, err)
	}
	if _, err := unix.Seek(int(f.Fd()), 4*mib, unix.SEEK_DATA); !errors.Is(err, syscall.ENXIO) {
		t.Fatalf("SEEK_DATA at the end: %v", err)
	}
	got := make([]byte, 16)
	if _, err := f.ReadAt(got, mib+100); err != nil || !bytes.Equal(got, make([]byte, 16)) {
		t.Fatalf("hole reads %q %v", got, err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 4*mib, mib); err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 5*mib {
		t.Fatalf("size after fallocate %d %v", fi.Size(), err)
	}
	// copy_file_range: 3 MiB from offset 2 MiB.
	dst, err := os.Create(e.path("copy"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	roff, woff := int64(2*mib), int64(0)
	total := 0
	for total < 3*mib {
		n, err := unix.CopyFileRange(int(f.Fd()), &roff, int(dst.Fd()), &woff, 3*mib-total, 0)
		if err != nil {
			t.Fatalf("copy_file_range: %v", err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	want := append(append([]byte{}, data[2*mib:]...), make([]byte, mib)...)
	if b, err := os.ReadFile(e.path("copy")); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("copy: %d bytes (%v), equal %v", len(b), err, bytes.Equal(b, want))
	}
}

// TestPermissions: as an unprivileged user (setpriv), what the kernel
// checks against the attributes (default_permissions), and that files a
// user creates are that user's.
func TestPermissions(t *testing.T) {
	if _, err := os.Stat("/usr/bin/setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root to switch users")
	}
	e := start(t, Options{}, daemontest.Options{})
	home := e.path("home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("secret"), []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	as := func(script string) (string, error) {
		out, err := execCmd("setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", "sh", "-c", script)
		return out, err
	}
	if out, err := as("cd " + home + " && echo x > mine && mkdir sub && ln -s mine l && stat -c '%u:%g %a' mine sub && stat -c '%u:%g' l"); err != nil ||
		out != "4242:4242 644\n4242:4242 755\n4242:4242\n" {
		t.Fatalf("create as 4242: %q %v", out, err)
	}
	if out, err := as("cat " + e.path("secret")); err == nil {
		t.Fatalf("read root's 0600 file as 4242: %q", out)
	} else if !strings.Contains(out, "Permission denied") {
		t.Fatalf("read root's 0600 file as 4242: %q", out)
	}
	if out, err := as("touch " + e.path("nothere")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("create in root's 0755 directory as 4242: %q %v", out, err)
	}
	if out, err := as("chmod 777 " + e.path("secret")); err == nil || !strings.Contains(out, "not permitted") {
		t.Fatalf("chmod of root's file as 4242: %q %v", out, err)
	}
}

// TestLookupCounts: the kernel's references that FS counts (lookup,
// create, readdirplus) all come back through forget once the files are
// gone from the kernel's caches (here: unlinked).
func TestLookupCounts(t *testing.T) {
	e := start(t, Options{}, daemontest.Options{})
	dir := e.path("counted")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var inos []uint64
	for i := range 20 {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		inos = append(inos, st.Ino)
	}
	run(t, dir, "ls", "-l") // readdirplus
	for _, ino := range inos {
		if n := e.fs.Lookups(ino); n == 0 {
			t.Fatalf("inode %d: lookup count 0 while the kernel knows it", ino)
		}
	}
	run(t, "", "rm", "-r", dir)
	deadline := time.Now().Add(10 * time.Second)
	for _, ino := range inos {
		for e.fs.Lookups(ino) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("inode %d: lookup count %d after its unlink", ino, e.fs.Lookups(ino))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	e.fs.mu.Lock()
	defer e.fs.mu.Unlock()
	for _, ino := range inos {
		if e.fs.nodes[ino] != nil {
			t.Fatalf("inode %d still recorded", ino)
		}
	}
}

// TestPageCacheCoherence: the kernel's page cache (explicit data cache
// control, FS.seen) shows another client's change at the next open, and,
// for a file held open, once the attributes are refreshed; this mount's
// own writes are read back as written.
func TestPageCacheCoherence(t *testing.T) {
	e := start(t, Options{AttrTimeout: 100 * time.Millisecond}, daemontest.Options{})
	ctx := context.Background()
	p := e.path("c")
	fill := func(b byte) []byte { return bytes.Repeat([]byte{b}, 8192) }
	if err := os.WriteFile(p, fill('a'), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, fill('a')) {
		t.Fatalf("own write read back: %d bytes %v", len(b), err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	other := func(b byte) {
		t.Helper()
		time.Sleep(10 * time.Millisecond) // a new mtime
		if _, err := e.m.Write(ctx, st.Ino, fill(b), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Another client's change is seen at the next open.
	other('b')
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, fill('b')) {
		t.Fatalf("after another client's write, the next open reads %q... %v", b[:min(len(b), 8)], err)
	}
	// A file held open sees it once its attributes are refreshed.
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 8192)
	if _, err := f.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, fill('b')) {
		t.Fatalf("read while open: %q... %v", buf[:8], err)
	}
	other('c')
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(150 * time.Millisecond) // past attr_timeout
		if _, err := f.Stat(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(buf, fill('c')) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the open file still reads %q... after another client's write and a refresh", buf[:8])
		}
	}
	// This mount's own writes through an open descriptor, then a new open.
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(fill('d')[:4096], 4096); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(fill('c')[:4096], fill('d')[:4096]...)
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("own write through a descriptor: %d bytes %v", len(b), err)
	}
	if got, err := e.m.Read(ctx, st.Ino, buf, 0); err != nil || !bytes.Equal(buf[:got], want) {
		t.Fatalf("the server's copy: %d bytes %v", got, err)
	}
}
