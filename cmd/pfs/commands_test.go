package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// randomFile writes n random bytes to a new local file with mode 0644 and
// returns its path and contents.
func randomFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	p := filepath.Join(t.TempDir(), "random.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p, data
}

// putString uploads s to remote through stdin.
func putString(t *testing.T, addr, remote, s string) {
	t.Helper()
	putStringAs(t, addr, remote, s)
}

// putStringAs is putString with global flags before the command (-uid 0).
func putStringAs(t *testing.T, addr, remote, s string, flags ...string) {
	t.Helper()
	r := pfsAt(t, addr, strings.NewReader(s), append(flags, "put", "-", remote)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("put - %s: exit %d, %q", remote, r.code, r.stderr)
	}
}

// TestCommands runs every command against one real daemon over TCP.
func TestCommands(t *testing.T) {
	d := startDaemon(t)
	addr := d.TCPAddr
	ctx := context.Background()
	m := mountFor(t, addr)

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		t.Parallel()
		local, data := randomFile(t, 3<<20+12345) // many chunks, last one short
		ok(t, addr, "mkdir", "/rt")
		if out := ok(t, addr, "put", local, "/rt/file"); out != "" {
			t.Errorf("put printed %q", out)
		}
		st, err := m.GetStatPath(ctx, "/rt/file")
		if err != nil {
			t.Fatal(err)
		}
		if st.Size != uint64(len(data)) || st.Mode != syscall.S_IFREG|0o644 || st.UID != testUID || st.GID != testGID {
			t.Errorf("remote stat %+v", st)
		}
		got := filepath.Join(t.TempDir(), "got")
		ok(t, addr, "get", "/rt/file", got)
		b, err := os.ReadFile(got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("get returned %d bytes, differing from the %d put", len(b), len(data))
		}

		// stdin to stdout.
		r := pfsAt(t, addr, bytes.NewReader(data), "put", "-", "/rt/stdin")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("put -: %d %q", r.code, r.stderr)
		}
		if out := ok(t, addr, "get", "/rt/stdin", "-"); out != string(data) {
			t.Fatalf("get - returned %d bytes, differing", len(out))
		}

		// Putting a smaller file over it truncates.
		putString(t, addr, "/rt/stdin", "short\n")
		if out := ok(t, addr, "cat", "/rt/stdin"); out != "short\n" {
			t.Errorf("after overwrite: %q", out)
		}

		// Into a directory, local and remote.
		ok(t, addr, "put", local, "/rt")
		if _, err := m.LookupPath(ctx, "/rt/random.bin"); err != nil {
			t.Errorf("put into a directory: %v", err)
		}
		dir := t.TempDir()
		ok(t, addr, "get", "/rt/stdin", dir)
		if b, err := os.ReadFile(filepath.Join(dir, "stdin")); err != nil || string(b) != "short\n" {
			t.Errorf("get into a directory: %q %v", b, err)
		}

		// An empty file.
		putString(t, addr, "/rt/empty", "")
		if out := ok(t, addr, "get", "/rt/empty", "-"); out != "" {
			t.Errorf("empty: %q", out)
		}

		mustFail(t, addr, 1, "pfs: get /rt/nope: no such file or directory\n", "get", "/rt/nope", "-")
		mustFail(t, addr, 1, "pfs: get /rt: is a directory\n", "get", "/rt", "-")
		mustFail(t, addr, 1, "pfs: put /no/such/local: no such file or directory\n", "put", "/no/such/local", "/rt/x")
		mustFail(t, addr, 1, "pfs: put /rt/nodir/x: no such file or directory\n", "put", local, "/rt/nodir/x")
	})

	t.Run("Cat", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "/cat")
		putString(t, addr, "/cat/a", "hello\n")
		putString(t, addr, "/cat/b", "world\n")
		if out := ok(t, addr, "cat", "/cat/a", "cat/b"); out != "hello\nworld\n" {
			t.Errorf("cat: %q", out)
		}
		r := pfsAt(t, addr, nil, "cat", "/cat/a", "/cat/nope", "/cat/b")
		if r.code != 1 || r.stdout != "hello\nworld\n" || r.stderr != "pfs: cat /cat/nope: no such file or directory\n" {
			t.Errorf("cat with a missing file: %+v", r)
		}
		mustFail(t, addr, 1, "pfs: cat /cat: is a directory\n", "cat", "/cat")

		local, data := randomFile(t, 1<<20+1)
		ok(t, addr, "put", local, "/cat/big")
		if out := ok(t, addr, "cat", "/cat/big"); out != string(data) {
			t.Errorf("cat big: %d bytes, differing", len(out))
		}
		// Exactly two max_io_size chunks: the end is found by an empty read.
		local, data = randomFile(t, 2*testMaxIO)
		ok(t, addr, "put", local, "/cat/aligned")
		if out := ok(t, addr, "cat", "/cat/aligned"); out != string(data) {
			t.Errorf("cat aligned: %d bytes, differing", len(out))
		}
		// Through symlinks, relative and absolute.
		ok(t, addr, "ln", "-s", "a", "/cat/rel")
		ok(t, addr, "ln", "-s", "/cat/rel", "/cat/abs")
		if out := ok(t, addr, "cat", "/cat/abs"); out != "hello\n" {
			t.Errorf("cat through symlinks: %q", out)
		}
		ok(t, addr, "ln", "-s", "loop", "/cat/loop")
		mustFail(t, addr, 1, "pfs: cat /cat/loop: too many levels of symbolic links\n", "cat", "/cat/loop")
	})

	t.Run("Ls", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "-p", "/ls/sub")
		putString(t, addr, "/ls/b", "hello\n")
		putString(t, addr, "/ls/a", strings.Repeat("x", 300000))
		ok(t, addr, "ln", "/ls/b", "/ls/hard")
		ok(t, addr, "ln", "-s", "sub", "/ls/link")

		if out := ok(t, addr, "ls", "/ls"); out != "a\nb\nhard\nlink\nsub\n" {
			t.Errorf("ls: %q", out)
		}
		mt := func(p string) string {
			st, err := m.GetStatPath(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			return time.Unix(st.Mtime.Sec, st.Mtime.Nsec).Format("2006-01-02 15:04")
		}
		// Columns: nlink width 1, uid 4, gid 4, size 6.
		want := []string{
			"-rw-r--r-- 1 1234 5678 300000 " + mt("/ls/a") + " a",
			"-rw-r--r-- 2 1234 5678      6 " + mt("/ls/b") + " b",
			"-rw-r--r-- 2 1234 5678      6 " + mt("/ls/hard") + " hard",
			"lrwxrwxrwx 1 1234 5678      3 " + mt("/ls/link") + " link -> sub",
			"drwxr-xr-x 2 1234 5678      0 " + mt("/ls/sub") + " sub",
		}
		got := lines(ok(t, addr, "ls", "-l", "/ls"))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("ls -l:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// Files and directories named on the command line.
		if out := ok(t, addr, "ls", "/ls/b", "/ls/sub", "/ls/a"); out != "/ls/b\n/ls/a\n\n/ls/sub:\n" {
			t.Errorf("ls files and dirs: %q", out)
		}
		if out := ok(t, addr, "ls", "-l", "/ls/link"); out != "lrwxrwxrwx 1 1234 5678 3 "+mt("/ls/link")+" /ls/link -> sub\n" {
			t.Errorf("ls -l link: %q", out)
		}
		if out := ok(t, addr, "ls", "/ls/link"); out != "" { // followed: the empty sub
			t.Errorf("ls link: %q", out)
		}
		if out := ok(t, addr, "ls"); !strings.Contains(out, "ls\n") {
			t.Errorf("ls of the root: %q", out)
		}
		r := pfsAt(t, addr, nil, "ls", "/ls/nope", "/ls/b")
		if r.code != 1 || r.stdout != "/ls/b\n" || r.stderr != "pfs: ls /ls/nope: no such file or directory\n" {
			t.Errorf("ls with a missing path: %+v", r)
		}
	})

	t.Run("LsManyEntries", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "/many")
		const n = 1100 // more than one readdir batch (1024)
		for i := range n {
			if _, err := m.CreatePath(ctx, fmt.Sprintf("/many/f%04d", i), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got := lines(ok(t, addr, "ls", "-l", "/many"))
		if len(got) != n {
			t.Fatalf("%d lines, want %d", len(got), n)
		}
		if !strings.HasPrefix(got[0], "-rw------- 1 1234 5678 0 ") || !strings.HasSuffix(got[n-1], " f1099") {
			t.Errorf("first %q, last %q", got[0], got[n-1])
		}
	})

	t.Run("Stat", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "/st")
		putString(t, addr, "/st/f", "12345")
		ok(t, addr, "ln", "-s", "f", "/st/l")
		st, err := m.GetStatPath(ctx, "/st/f")
		if err != nil {
			t.Fatal(err)
		}
		ts := func(sec, nsec int64) string {
			return time.Unix(sec, nsec).Format("2006-01-02 15:04:05.000000000 -0700")
		}
		want := fmt.Sprintf(`  File: /st/f
  Type: regular file
   Ino: %d
  Mode: 0644 (-rw-r--r--)
 Nlink: 1
   Uid: 1234
   Gid: 5678
  Size: 5
   Dev: %d
 Atime: %s
 Mtime: %s
 Ctime: %s
Crtime: %s
`, st.Ino, st.Dev, ts(st.Atime.Sec, st.Atime.Nsec), ts(st.Mtime.Sec, st.Mtime.Nsec),
			ts(st.Ctime.Sec, st.Ctime.Nsec), ts(st.Crtime.Sec, st.Crtime.Nsec))
		if out := ok(t, addr, "stat", "/st/f"); out != want {
			t.Errorf("stat:\n%s\nwant:\n%s", out, want)
		}
		if !regexp.MustCompile(`(?m)^Crtime: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} [+-]\d{4}$`).MatchString(want) {
			t.Errorf("crtime without nanoseconds: %q", want)
		}

		out := ok(t, addr, "stat", "/st/l", "/st")
		blocks := strings.Split(out, "\n\n")
		if len(blocks) != 2 {
			t.Fatalf("two paths: %d blocks:\n%s", len(blocks), out)
		}
		if !strings.HasPrefix(blocks[0], "  File: /st/l -> f\n  Type: symbolic link\n") ||
			!strings.Contains(blocks[0], "  Mode: 0777 (lrwxrwxrwx)\n") {
			t.Errorf("stat symlink:\n%s", blocks[0])
		}
		if !strings.HasPrefix(blocks[1], "  File: /st\n  Type: directory\n") ||
			!strings.Contains(blocks[1], "  Mode: 0755 (drwxr-xr-x)\n") {
			t.Errorf("stat dir:\n%s", blocks[1])
		}

		mustFail(t, addr, 1, "pfs: stat /nope: no such file or directory\n", "stat", "/nope")
		r := pfsAt(t, addr, nil, "stat", "/st/nope", "/st/f")
		if r.code != 1 || r.stdout != want || r.stderr != "pfs: stat /st/nope: no such file or directory\n" {
			t.Errorf("stat with a missing path: %+v", r)
		}
		mustFail(t, addr, 1, "pfs: stat /st/f/x: not a directory\n", "stat", "/st/f/x")
	})

	t.Run("Mkdir", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "-p", "/mk/a/b/c")
		st, err := m.GetStatPath(ctx, "/mk/a/b/c")
		if err != nil || st.Mode != syscall.S_IFDIR|0o755 || st.UID != testUID {
			t.Fatalf("mkdir -p: %+v %v", st, err)
		}
		ok(t, addr, "mkdir", "-p", "/mk/a/b/c", "/mk/a") // existing: fine
		ok(t, addr, "mkdir", "/mk/x", "/mk/x/y")         // in order
		if _, err := m.LookupPath(ctx, "/mk/x/y"); err != nil {
			t.Error(err)
		}
		mustFail(t, addr, 1, "pfs: mkdir /mk/a: file exists\n", "mkdir", "/mk/a")
		mustFail(t, addr, 1, "pfs: mkdir /mk/no/such: no such file or directory\n", "mkdir", "/mk/no/such")
		putString(t, addr, "/mk/f", "")
		mustFail(t, addr, 1, "pfs: mkdir /mk/f/q: not a directory\n", "mkdir", "-p", "/mk/f/q")
		mustFail(t, addr, 1, "pfs: mkdir /mk/f: file exists\n", "mkdir", "-p", "/mk/f")
		// Continues after an error.
		r := pfsAt(t, addr, nil, "mkdir", "/mk/a", "/mk/z")
		if r.code != 1 || r.stderr != "pfs: mkdir /mk/a: file exists\n" {
			t.Errorf("%+v", r)
		}
		if _, err := m.LookupPath(ctx, "/mk/z"); err != nil {
			t.Errorf("mkdir did not go on: %v", err)
		}
	})

	t.Run("Rm", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "-p", "/rm/t/b/d/e", "/rm/keep", "/rm/t/empty")
		for _, f := range []string{"/rm/t/a", "/rm/t/b/c", "/rm/t/b/d/f", "/rm/t/b/d/e/g", "/rm/keep/k", "/rm/f1", "/rm/f2"} {
			putString(t, addr, f, f)
		}
		ok(t, addr, "ln", "-s", "/rm/keep", "/rm/t/b/s") // must not be followed
		ok(t, addr, "ln", "/rm/keep/k", "/rm/t/hard")

		mustFail(t, addr, 1, "pfs: rm /rm/t: is a directory\n", "rm", "/rm/t")
		ok(t, addr, "rm", "-r", "/rm/t")
		if _, err := m.LookupPath(ctx, "/rm/t"); err == nil {
			t.Error("/rm/t still exists")
		}
		if out := ok(t, addr, "cat", "/rm/keep/k"); out != "/rm/keep/k" {
			t.Errorf("symlink target damaged: %q", out)
		}
		if st, _ := m.GetStatPath(ctx, "/rm/keep/k"); st.Nlink != 1 {
			t.Errorf("nlink %d after removing the hard link", st.Nlink)
		}

		r := pfsAt(t, addr, nil, "rm", "/rm/nope", "/rm/f1")
		if r.code != 1 || r.stderr != "pfs: rm /rm/nope: no such file or directory\n" {
			t.Errorf("%+v", r)
		}
		if _, err := m.LookupPath(ctx, "/rm/f1"); err == nil {
			t.Error("rm did not go on after an error")
		}
		ok(t, addr, "rm", "-r", "/rm/f2") // -r on a file
		mustFail(t, addr, 1, "pfs: rm /: refusing to remove the volume root\n", "rm", "-r", "/")
		if _, err := m.LookupPath(ctx, "/rm/keep/k"); err != nil {
			t.Errorf("rm / removed things: %v", err)
		}
	})

	t.Run("Mv", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "-p", "/mv/dir")
		putString(t, addr, "/mv/a", "A")
		ok(t, addr, "mv", "/mv/a", "/mv/b")
		if out := ok(t, addr, "cat", "/mv/b"); out != "A" {
			t.Errorf("%q", out)
		}
		ok(t, addr, "mv", "/mv/b", "/mv/dir") // into the directory
		if out := ok(t, addr, "cat", "/mv/dir/b"); out != "A" {
			t.Errorf("%q", out)
		}
		if out := ok(t, addr, "ls", "/mv"); out != "dir\n" {
			t.Errorf("%q", out)
		}
		mustFail(t, addr, 1, "pfs: mv /mv/nope /mv/x: no such file or directory\n", "mv", "/mv/nope", "/mv/x")
	})

	t.Run("Ln", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "/ln")
		putString(t, addr, "/ln/f", "data")
		ok(t, addr, "ln", "/ln/f", "/ln/h")
		f, _ := m.GetStatPath(ctx, "/ln/f")
		h, _ := m.GetStatPath(ctx, "/ln/h")
		if f.Ino != h.Ino || h.Nlink != 2 {
			t.Errorf("hard link: %+v %+v", f, h)
		}
		ok(t, addr, "ln", "-s", "f", "/ln/s")
		if target, err := m.ReadSymlinkPath(ctx, "/ln/s"); err != nil || target != "f" {
			t.Errorf("symlink target %q %v", target, err)
		}
		if out := ok(t, addr, "cat", "/ln/s"); out != "data" {
			t.Errorf("%q", out)
		}
		ok(t, addr, "mkdir", "/ln/d")
		ok(t, addr, "ln", "-s", "../f", "/ln/d") // into the directory: /ln/d/f
		if out := ok(t, addr, "cat", "/ln/d/f"); out != "data" {
			t.Errorf("%q", out)
		}
		mustFail(t, addr, 1, "pfs: ln /ln/s: file exists\n", "ln", "-s", "x", "/ln/s")
		mustFail(t, addr, 1, "pfs: ln /ln/f /ln/h: file exists\n", "ln", "/ln/f", "/ln/h")
		mustFail(t, addr, 1, "pfs: ln /ln/d /ln/x: operation not permitted\n", "ln", "/ln/d", "/ln/x")
	})

	t.Run("Statvfs", func(t *testing.T) {
		t.Parallel()
		out := ok(t, addr, "statvfs")
		want := []string{
			`^Volume:     default \(read-write\)$`,
			`^Size:       \d+(\.\d)? [KMGTPE]?i?B \(\d+ blocks of \d+ bytes\)$`,
			`^Used:       \d+(\.\d)? [KMGTPE]?i?B \(\d+%\)$`,
			`^Available:  \d+(\.\d)? [KMGTPE]?i?B$`,
			`^Inodes:     \d+(\.\d[kMGTPE])? total, \d+(\.\d[kMGTPE])? used \(\d+%\), \d+(\.\d[kMGTPE])? free$`,
			`^Name max:   255$`,
			`^Fsid:       0x[0-9a-f]+$`,
		}
		got := lines(out)
		if len(got) != len(want) {
			t.Fatalf("statvfs:\n%s", out)
		}
		for i, re := range want {
			if !regexp.MustCompile(re).MatchString(got[i]) {
				t.Errorf("line %q does not match %s", got[i], re)
			}
		}
	})
}

// TestUnixSocket runs commands over the daemon's Unix socket.
func TestUnixSocket(t *testing.T) {
	d := startDaemon(t)
	addr := d.UnixPath
	if !strings.Contains(addr, "/") {
		t.Fatalf("unix path %q has no /", addr)
	}
	local, data := randomFile(t, 2<<20+7)
	ok(t, addr, "mkdir", "-p", "/u/v")
	ok(t, addr, "put", local, "/u/v/f")
	if out := ok(t, addr, "cat", "/u/v/f"); out != string(data) {
		t.Errorf("cat over the Unix socket: %d bytes, differing", len(out))
	}
	if out := ok(t, addr, "ls", "/u"); out != "v\n" {
		t.Errorf("ls: %q", out)
	}
	mustFail(t, addr, 1, "pfs: stat /nope: no such file or directory\n", "stat", "/nope")
	ok(t, addr, "rm", "-r", "/u")
	if out := ok(t, addr, "ls", "/"); out != "" {
		t.Errorf("ls after rm -r: %q", out)
	}
}

// TestDefaults checks $PROXYFS_SERVER and the default uid and gid.
func TestDefaults(t *testing.T) {
	d := startDaemonFor(t, uint32(os.Getuid()), uint32(os.Getgid()))
	t.Setenv("PROXYFS_SERVER", d.TCPAddr)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"put", "-", "/mine"}, strings.NewReader("x"), &out, &errb)
	if code != 0 || errb.Len() != 0 {
		t.Fatalf("put with $PROXYFS_SERVER: %d %q", code, errb.String())
	}
	st, err := mountFor(t, d.TCPAddr).GetStatPath(context.Background(), "/mine")
	if err != nil {
		t.Fatal(err)
	}
	if st.UID != uint32(os.Getuid()) || st.GID != uint32(os.Getgid()) {
		t.Errorf("owner %d:%d, want the caller's %d:%d", st.UID, st.GID, os.Getuid(), os.Getgid())
	}
	// -server wins over the environment.
	errb.Reset()
	code = run(context.Background(), []string{"-server", d.UnixPath, "cat", "/mine"}, nil, &out, &errb)
	if code != 0 || out.String() != "x" {
		t.Errorf("cat: %d %q %q", code, out.String(), errb.String())
	}
}

// TestConnectErrors checks errors reaching the daemon or the volume.
func TestConnectErrors(t *testing.T) {
	d := startDaemon(t)
	mustFail(t, d.TCPAddr, 1, "pfs: mount nope: no such volume on this server (pfs volumes lists them)\n", "-volume", "nope", "ls")
	sock := filepath.Join(t.TempDir(), "no.sock")
	mustFail(t, sock, 1, "pfs: connect "+sock+": no such file or directory\n", "ls")
	// A port nobody listens on: the daemon's, once it is stopped.
	addr := d.TCPAddr
	d.Stop()
	mustFail(t, addr, 1, "pfs: connect "+addr+": connection refused\n", "stat", "/a", "/b")
}
