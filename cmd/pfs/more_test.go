package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// localTree makes a local directory tree for put -r and returns its root:
//
//	top/a (0644, "A"), top/exec (0755, "#!"), top/sub/b ("B"),
//	top/sub/deep/c (300 KiB), top/link -> sub/b, top/empty/
func localTree(t *testing.T) string {
	t.Helper()
	top := filepath.Join(t.TempDir(), "top")
	for _, d := range []string{"sub/deep", "empty"} {
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"a": "A", "exec": "#!", "sub/b": "B", "sub/deep/c": strings.Repeat("c", 300<<10)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(top, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(top, "exec"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/b", filepath.Join(top, "link")); err != nil {
		t.Fatal(err)
	}
	return top
}

// listLocal lists a local tree as "path type [content-or-target]" lines.
func listLocal(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case fi.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, fmt.Sprintf("%s %o %d", rel, fi.Mode().Perm(), len(b)))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// TestMoreCommands runs the commands added for operators against one
// real daemon.
func TestMoreCommands(t *testing.T) {
	d := startDaemon(t)
	addr := d.TCPAddr
	ctx := context.Background()
	m := mountFor(t, addr)

	t.Run("PutGetRecursive", func(t *testing.T) {
		t.Parallel()
		top := localTree(t)
		ok(t, addr, "mkdir", "/rec")
		ok(t, addr, "put", "-r", top, "/rec") // into the directory: /rec/top
		if out := ok(t, addr, "ls", "-l", "/rec/top"); !regexp.MustCompile(
			`(?m)^-rw-r--r-- 1 1234 5678 1 .* a\n` +
				`drwxr-xr-x 2 1234 5678 0 .* empty\n` +
				`-rwxr-xr-x 1 1234 5678 2 .* exec\n` +
				`lrwxrwxrwx 1 1234 5678 5 .* link -> sub/b\n` +
				`drwxr-xr-x 3 1234 5678 0 .* sub\n$`).MatchString(out) {
			t.Errorf("ls -l after put -r:\n%s", out)
		}
		if out := ok(t, addr, "cat", "/rec/top/sub/deep/c"); out != strings.Repeat("c", 300<<10) {
			t.Errorf("deep file: %d bytes", len(out))
		}
		// Again, over the existing tree (into /rec: /rec/top), and to a
		// new name.
		os.WriteFile(filepath.Join(top, "a"), []byte("AA"), 0o644)
		ok(t, addr, "put", "-r", top, "/rec")
		if out := ok(t, addr, "cat", "/rec/top/a", "/rec/top/link"); out != "AAB" {
			t.Errorf("put -r over a tree: %q", out)
		}
		ok(t, addr, "put", "-r", top, "/rec/copy")
		if out := ok(t, addr, "ls", "/rec/copy"); out != "a\nempty\nexec\nlink\nsub\n" {
			t.Errorf("put -r to a new name: %q", out)
		}

		// get -r brings back the same tree.
		dst := t.TempDir()
		ok(t, addr, "get", "-r", "/rec/copy", dst) // into the directory: dst/copy
		want := listLocal(t, top)
		if got := listLocal(t, filepath.Join(dst, "copy")); !slices.Equal(got, want) {
			t.Errorf("get -r:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		ok(t, addr, "get", "-r", "/rec/copy", filepath.Join(dst, "new"))
		if got := listLocal(t, filepath.Join(dst, "new")); !slices.Equal(got, want) {
			t.Errorf("get -r to a new name:\n%s", strings.Join(got, "\n"))
		}
		ok(t, addr, "get", "-r", "/rec/copy", filepath.Join(dst, "new")) // over it: into it
		if got := listLocal(t, filepath.Join(dst, "new", "copy")); !slices.Equal(got, want) {
			t.Errorf("get -r into an existing directory:\n%s", strings.Join(got, "\n"))
		}

		// Without -r, directories are refused; several sources need a
		// directory.
		mustFail(t, addr, 1, "pfs: put "+top+": is a directory\n", "put", top, "/rec/x")
		mustFail(t, addr, 1, "pfs: get /rec/copy: is a directory\n", "get", "/rec/copy", dst)
		ok(t, addr, "put", filepath.Join(top, "a"), filepath.Join(top, "exec"), "/rec")
		if out := ok(t, addr, "cat", "/rec/a", "/rec/exec"); out != "AA#!" {
			t.Errorf("put of two files: %q", out)
		}
		mustFail(t, addr, 1, "pfs: put /rec/a: not a directory\n", "put", filepath.Join(top, "a"), filepath.Join(top, "exec"), "/rec/a")
		ok(t, addr, "get", "/rec/a", "/rec/exec", dst)
		if b, _ := os.ReadFile(filepath.Join(dst, "exec")); string(b) != "#!" {
			t.Errorf("get of two files: %q", b)
		}
		mustFail(t, addr, 1, "pfs: get "+filepath.Join(dst, "exec")+": not a directory\n", "get", "/rec/a", "/rec/exec", filepath.Join(dst, "exec"))
	})

	t.Run("PutReplace", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "/pr")
		putString(t, addr, "/pr/f", "old")
		ok(t, addr, "chmod", "640", "/pr/f")
		// Root gives f away (only root may), and keeps its owner when it
		// replaces it below.
		ok(t, addr, "-uid", "0", "-gid", "0", "chown", "42:43", "/pr/f")
		ok(t, addr, "ln", "/pr/f", "/pr/hard")
		ok(t, addr, "ln", "-s", "f", "/pr/link")
		before, _ := m.GetStatPath(ctx, "/pr/f")
		mustFail(t, addr, 1, "pfs: put /pr/f: operation not permitted\n", "put", "-", "/pr/link") // not root: cannot keep 42:43
		putStringAs(t, addr, "/pr/link", "new", "-uid", "0", "-gid", "0")                         // through the symlink: replaces f
		st, err := m.GetStatPath(ctx, "/pr/f")
		if err != nil || st.Ino == before.Ino || st.Mode != syscall.S_IFREG|0o640 || st.UID != 42 || st.GID != 43 {
			t.Errorf("replaced file %+v %v (old %+v)", st, err, before)
		}
		if out := ok(t, addr, "-uid", "0", "cat", "/pr/f", "/pr/hard", "/pr/link"); out != "newoldnew" {
			t.Errorf("after put over a symlink: %q", out)
		}
		if target, err := m.ReadSymlinkPath(ctx, "/pr/link"); err != nil || target != "f" {
			t.Errorf("the symlink became %q %v", target, err)
		}
		if out := ok(t, addr, "ls", "/pr"); out != "f\nhard\nlink\n" {
			t.Errorf("ls: %q", out)
		}
	})

	t.Run("Cp", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "-p", "/cp/d/sub")
		local, data := randomFile(t, 1<<20+3)
		ok(t, addr, "put", local, "/cp/d/big")
		putString(t, addr, "/cp/d/sub/s", "small")
		ok(t, addr, "ln", "-s", "big", "/cp/d/link")
		ok(t, addr, "chmod", "600", "/cp/d/big")

		ok(t, addr, "cp", "/cp/d/big", "/cp/big2")
		if out := ok(t, addr, "cat", "/cp/big2"); out != string(data) {
			t.Fatalf("cp: %d bytes, differing", len(out))
		}
		src, _ := m.GetStatPath(ctx, "/cp/d/big")
		dst, _ := m.GetStatPath(ctx, "/cp/big2")
		if dst.Ino == src.Ino || dst.Mode != syscall.S_IFREG|0o600 {
			t.Errorf("cp made %+v of %+v", dst, src)
		}
		// Over an existing file: its mode stays.
		putString(t, addr, "/cp/over", "old")
		ok(t, addr, "chmod", "640", "/cp/over")
		ok(t, addr, "cp", "/cp/d/sub/s", "/cp/over")
		if st, _ := m.GetStatPath(ctx, "/cp/over"); st.Mode != syscall.S_IFREG|0o640 || st.Size != 5 {
			t.Errorf("cp over a file: %+v", st)
		}
		// Recursive, into a directory, symlinks kept as symlinks.
		ok(t, addr, "mkdir", "/cp/into")
		ok(t, addr, "cp", "-r", "/cp/d", "/cp/into")
		if out := ok(t, addr, "ls", "/cp/into/d"); out != "big\nlink\nsub\n" {
			t.Errorf("cp -r: %q", out)
		}
		if target, err := m.ReadSymlinkPath(ctx, "/cp/into/d/link"); err != nil || target != "big" {
			t.Errorf("cp -r symlink: %q %v", target, err)
		}
		if out := ok(t, addr, "cat", "/cp/into/d/sub/s", "/cp/into/d/link"); out != "small"+string(data) {
			t.Errorf("cp -r contents: %d bytes", len(out))
		}
		mustFail(t, addr, 1, "pfs: cp /cp/d: is a directory\n", "cp", "/cp/d", "/cp/x")
		mustFail(t, addr, 1, "pfs: cp /cp/d: cannot copy a directory into itself\n", "cp", "-r", "/cp/d", "/cp/d/sub")
		mustFail(t, addr, 1, "pfs: cp /cp/big2 /cp/big2: are the same file\n", "cp", "/cp/big2", "/cp")
		mustFail(t, addr, 1, "pfs: cp /cp/nope: no such file or directory\n", "cp", "/cp/nope", "/cp/x")
		if out := ok(t, addr, "ls", "/cp"); strings.Contains(out, partialTag) {
			t.Errorf("temporary files left: %q", out)
		}
	})

	t.Run("ChmodChown", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "/ch")
		putString(t, addr, "/ch/f", "x")
		ok(t, addr, "ln", "-s", "f", "/ch/l")
		mode := func(p string) uint32 {
			st, err := m.GetStatPath(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			return st.Mode & 0o7777
		}
		for _, tc := range []struct {
			spec string
			want uint32
		}{
			{"600", 0o600}, {"u+x", 0o700}, {"go+r", 0o744}, {"a-w", 0o544}, {"u=rw,go=", 0o600},
			{"4755", 0o4755}, {"u-s,+t", 0o1755}, {"o-t,g+s", 0o2755}, {"=r", 0o444}, {"a+X", 0o444},
			{"u+x,a+X", 0o555},
		} {
			ok(t, addr, "chmod", tc.spec, "/ch/l") // through the symlink
			if got := mode("/ch/f"); got != tc.want {
				t.Errorf("chmod %s: %04o, want %04o", tc.spec, got, tc.want)
			}
		}
		if got := mode("/ch/l"); got != 0o777 {
			t.Errorf("the symlink's own mode changed: %o", got)
		}
		ok(t, addr, "chmod", "--", "-w", "/ch/f") // a mode that looks like a flag
		if got := mode("/ch/f"); got != 0o555 {
			t.Errorf("chmod -- -w: %04o", got)
		}
		ok(t, addr, "chmod", "go-rx,a+X", "/ch") // X: a directory gets x
		if got := mode("/ch"); got != 0o711 {
			t.Errorf("chmod a+X on a directory: %o", got)
		}
		// Only root gives files away, or to groups the owner is not in.
		mustFail(t, addr, 1, "pfs: chown /ch/f: operation not permitted\n", "chown", "42:43", "/ch/f")
		mustFail(t, addr, 1, "pfs: chown /ch/f: operation not permitted\n", "chown", ":45", "/ch/f")
		ok(t, addr, "chown", fmt.Sprintf(":%d", testGID), "/ch/f") // its own group
		asRoot := func(args ...string) []string { return append([]string{"-uid", "0", "-gid", "0"}, args...) }
		ok(t, addr, asRoot("chown", "42:43", "/ch/f")...)
		ok(t, addr, asRoot("chown", "44", "/ch/l")...)
		ok(t, addr, asRoot("chown", ":45", "/ch/f")...)
		st, _ := m.GetStatPath(ctx, "/ch/f")
		if st.UID != 44 || st.GID != 45 {
			t.Errorf("chown: %d:%d", st.UID, st.GID)
		}
		ok(t, addr, asRoot("chown", "root:0", "/ch/f")...) // names, from this machine
		if st, _ := m.GetStatPath(ctx, "/ch/f"); st.UID != 0 || st.GID != 0 {
			t.Errorf("chown root:0: %d:%d", st.UID, st.GID)
		}
		r := pfsAt(t, addr, nil, asRoot("chmod", "644", "/ch/nope", "/ch/f")...)
		if r.code != 1 || r.stderr != "pfs: chmod /ch/nope: no such file or directory\n" || mode("/ch/f") != 0o644 {
			t.Errorf("chmod with a missing path: %+v", r)
		}
		mustFail(t, addr, 1, "pfs: chown /ch/nope: no such file or directory\n", "chown", "1", "/ch/nope")
	})

	t.Run("TouchTruncate", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "/tt")
		before := time.Now().Add(-2 * time.Second)
		ok(t, addr, "touch", "/tt/new")
		st, err := m.GetStatPath(ctx, "/tt/new")
		if err != nil || st.Size != 0 || st.Mode != syscall.S_IFREG|0o644 {
			t.Fatalf("touch created %+v %v", st, err)
		}
		ok(t, addr, "touch", "-d", "2001-02-03 04:05:06.5", "/tt/new")
		st, _ = m.GetStatPath(ctx, "/tt/new")
		want := time.Date(2001, 2, 3, 4, 5, 6, 5e8, time.Local)
		if !tsTime(st.Mtime).Equal(want) || !tsTime(st.Atime).Equal(want) {
			t.Errorf("touch -d: atime %v mtime %v, want %v", tsTime(st.Atime), tsTime(st.Mtime), want)
		}
		ok(t, addr, "touch", "/tt/new")
		st, _ = m.GetStatPath(ctx, "/tt/new")
		if tsTime(st.Mtime).Before(before) || tsTime(st.Atime).Before(before) {
			t.Errorf("touch of an old file: mtime %v", tsTime(st.Mtime))
		}
		ok(t, addr, "touch", "-d", "@1000000000.25", "/tt/new", "/tt/new2") // creates new2 with that time
		st, _ = m.GetStatPath(ctx, "/tt/new2")
		if !tsTime(st.Mtime).Equal(time.Unix(1e9, 25e7)) {
			t.Errorf("touch -d @: %v", tsTime(st.Mtime))
		}
		ok(t, addr, "touch", "-d", "2020-01-01T00:00:00Z", "/tt")
		st, _ = m.GetStatPath(ctx, "/tt")
		if st.Mtime.Sec != 1577836800 {
			t.Errorf("touch a directory: %v", st.Mtime)
		}
		mustFail(t, addr, 1, "pfs: touch /tt/no/x: no such file or directory\n", "touch", "/tt/no/x")
		// Another user may touch a file it may write, not set its times.
		ok(t, addr, "chmod", "666", "/tt/new")
		ok(t, addr, "-uid", "4321", "touch", "/tt/new")
		mustFail(t, addr, 1, "pfs: touch /tt/new: operation not permitted\n", "-uid", "4321", "touch", "-d", "@1", "/tt/new")
		ok(t, addr, "chmod", "644", "/tt/new")
		mustFail(t, addr, 1, "pfs: touch /tt/new: permission denied\n", "-uid", "4321", "touch", "/tt/new")

		ok(t, addr, "truncate", "-s", "10K", "/tt/new", "/tt/made")
		for _, p := range []string{"/tt/new", "/tt/made"} {
			if st, err := m.GetStatPath(ctx, p); err != nil || st.Size != 10240 {
				t.Errorf("truncate -s 10K %s: %+v %v", p, st, err)
			}
		}
		for _, tc := range []struct {
			size string
			want uint64
		}{{"+1K", 11264}, {"-2K", 9216}, {"-1M", 0}, {"3MB", 3e6}, {"0", 0}, {"1GiB", 1 << 30}, {"5", 5}} {
			ok(t, addr, "truncate", "-s", tc.size, "/tt/new")
			if st, _ := m.GetStatPath(ctx, "/tt/new"); st.Size != tc.want {
				t.Errorf("truncate -s %s: %d, want %d", tc.size, st.Size, tc.want)
			}
		}
		if out := ok(t, addr, "cat", "/tt/new"); out != "\x00\x00\x00\x00\x00" {
			t.Errorf("after truncate: %q", out)
		}
		mustFail(t, addr, 1, "pfs: truncate /tt: is a directory\n", "truncate", "-s", "0", "/tt")
	})

	t.Run("Xattr", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "/xa")
		putString(t, addr, "/xa/f", "x")
		ok(t, addr, "ln", "-s", "f", "/xa/l")
		ok(t, addr, "xattr", "set", "/xa/f", "user.b", "two")
		ok(t, addr, "xattr", "set", "/xa/l", "user.a", "one") // through the symlink
		r := pfsAt(t, addr, strings.NewReader("bin\x00ary\n"), "xattr", "set", "/xa/f", "user.c", "-")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("xattr set from stdin: %+v", r)
		}
		if out := ok(t, addr, "xattr", "list", "/xa/f"); out != "user.a\nuser.b\nuser.c\n" {
			t.Errorf("xattr list: %q", out)
		}
		if out := ok(t, addr, "xattr", "get", "/xa/l", "user.c"); out != "bin\x00ary\n" {
			t.Errorf("xattr get: %q", out)
		}
		if out := ok(t, addr, "xattr", "get", "/xa/f", "user.b"); out != "two" {
			t.Errorf("xattr get: %q", out)
		}
		ok(t, addr, "xattr", "rm", "/xa/f", "user.b")
		if out := ok(t, addr, "xattr", "list", "/xa/f"); out != "user.a\nuser.c\n" {
			t.Errorf("after rm: %q", out)
		}
		mustFail(t, addr, 1, "pfs: xattr /xa/f user.b: no data available\n", "xattr", "get", "/xa/f", "user.b")
		mustFail(t, addr, 1, "pfs: xattr /xa/f user.b: no data available\n", "xattr", "rm", "/xa/f", "user.b")
		mustFail(t, addr, 1, "pfs: xattr /xa/nope: no such file or directory\n", "xattr", "list", "/xa/nope")
	})

	t.Run("Du", func(t *testing.T) {
		t.Parallel()
		ok(t, addr, "mkdir", "-p", "/du/a/b", "/du/c")
		local, _ := randomFile(t, 1<<20)
		ok(t, addr, "put", local, "/du/a/b/f")
		ok(t, addr, "put", local, "/du/c/g")
		ok(t, addr, "ln", "/du/c/g", "/du/c/h") // counted once
		ok(t, addr, "ln", "-s", "/du/a", "/du/link")
		blocks := func(p string) uint64 {
			st, err := m.GetStatPath(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			return st.Blocks * 512
		}
		kib := func(n uint64) string { return fmt.Sprint((n + 1023) / 1024) }
		f, g := blocks("/du/a/b/f"), blocks("/du/c/g")
		if f < 1<<20 {
			t.Fatalf("a 1 MiB file has %d bytes of blocks", f)
		}
		b := blocks("/du/a/b") + f
		a := blocks("/du/a") + b
		c := blocks("/du/c") + g
		top := blocks("/du") + a + c + blocks("/du/link")
		want := kib(b) + "\t/du/a/b\n" + kib(a) + "\t/du/a\n" + kib(c) + "\t/du/c\n" + kib(top) + "\t/du\n"
		if out := ok(t, addr, "du", "/du"); out != want {
			t.Errorf("du:\n%s\nwant:\n%s", out, want)
		}
		if out := ok(t, addr, "du", "-s", "/du/a/b/f", "/du/c"); out != kib(f)+"\t/du/a/b/f\n"+kib(c)+"\t/du/c\n" {
			t.Errorf("du -s: %q", out)
		}
		// As du(1), an inode with several links counts once in a run.
		if out := ok(t, addr, "du", "-s", "/du", "/du/c/g"); out != kib(top)+"\t/du\n0\t/du/c/g\n" {
			t.Errorf("du -s of a hard link counted already: %q", out)
		}
		if out := ok(t, addr, "du", "-sh", "/du/a"); out != humanBytes(a)+"\t/du/a\n" {
			t.Errorf("du -sh: %q", out)
		}
		mustFail(t, addr, 1, "pfs: du /du/nope: no such file or directory\n", "du", "/du/nope")
	})
}

// TestVolumesDfStatus checks the commands about the whole daemon, with two
// volumes, one of which fails.
func TestVolumesDfStatus(t *testing.T) {
	d := startDaemonWith(t, daemontest.Options{MaxIOBytes: testMaxIO, LogLevel: "info", Volumes: []daemontest.Volume{
		{Name: "default", Engine: "memory", CapacityBytes: 64 << 20},
		{Name: "archive", CapacityBytes: 1 << 30}}}, testUID, testGID)
	addr := d.UnixPath
	local, _ := randomFile(t, 1<<20)
	ok(t, addr, "put", local, "/f")
	mountFor(t, addr) // one mount that stays

	out := ok(t, addr, "volumes")
	if !regexp.MustCompile(`^Volume +Size +Inodes +Mounts\n` +
		`default +64\.0 MiB +1\d\.\dk +1\n` +
		`archive +\d+\.\d GiB +\d+(\.\d[kMG])? +0\n$`).MatchString(out) {
		t.Errorf("volumes:\n%s", out)
	}
	out = ok(t, addr, "df")
	if !regexp.MustCompile(`^Volume +Size +Used +Avail +Use% +Inodes +IUsed +IFree +IUse%\n` +
		`default +64\.0 MiB +1\.0 MiB +63\.0 MiB +2% +1\d\.\dk +2 +1\d\.\dk +1%\n` +
		`archive +\d+\.\d GiB +\d+(\.\d)? [KMG]?i?B +\d+\.\d GiB +\d+% +\S+ +1 +\S+ +1%\n$`).MatchString(out) {
		t.Errorf("df:\n%s", out)
	}
	out = ok(t, addr, "status")
	if !regexp.MustCompile(`^Server: +proxyfsd \S+ \(protocol 1\) at ` + regexp.QuoteMeta(addr) + `\n` +
		`Uptime: +\d+s\n` +
		`Connections: +[1-9]\d*\n` +
		`Mounts: +1\n` +
		`Open files: +0\n` +
		`Volumes:\n` +
		`  default +ok\n` +
		`  archive +ok\n$`).MatchString(out) {
		t.Errorf("status:\n%s", out)
	}

	// archive's directory goes away: status says so and exits 1.
	dir := filepath.Join(d.DataDir, "archive")
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	r := pfsAt(t, addr, nil, "status")
	if r.code != 1 || !regexp.MustCompile(`(?m)^  archive +failed: local: .*volume directory`).MatchString(r.stdout) ||
		r.stderr != "pfs: volume archive: failed\n" {
		t.Errorf("status with a failed volume: %+v", r)
	}
	os.Rename(dir+".moved", dir)

	// Without a server (killed: a daemon with a failed volume exits 1).
	d.Kill()
	mustFail(t, addr, 1, "pfs: connect "+addr+": connection refused\n", "volumes")
}

// TestStdinProgress checks the progress of a put from stdin (size
// unknown): nothing for the first 8 MiB, then bytes and rate, cleared at
// the end.
func TestStdinProgress(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	var screen bytes.Buffer
	drained := make(chan struct{})
	go func() {
		screen.ReadFrom(master)
		close(drained)
	}()
	d := startDaemon(t)
	data := make([]byte, progressThreshold+2<<20)
	// A reader that is not an *os.File: the size is unknown.
	r := struct{ *bytes.Reader }{bytes.NewReader(data)}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-server", d.TCPAddr, "put", "-", "/stdin"}, r, &out, slave); code != 0 {
		t.Fatalf("put -: exit %d", code)
	}
	small := struct{ *bytes.Reader }{bytes.NewReader(data[:1<<20])}
	if code := run(context.Background(), []string{"-server", d.TCPAddr, "put", "-", "/small"}, small, &out, slave); code != 0 {
		t.Fatalf("put - small: exit %d", code)
	}
	slave.Close()
	<-drained
	s := screen.String()
	if !regexp.MustCompile(`\r(8\.[0-9]|9\.[0-9]|10\.0) MiB  \d+\.\d MiB/s`).MatchString(s) {
		t.Errorf("no progress line for stdin:\n%q", s)
	}
	if strings.Contains(s, "%") || strings.Contains(s, "[") {
		t.Errorf("a bar or a percentage for a transfer of unknown size:\n%q", s)
	}
	if regexp.MustCompile(`\r[0-7]\.\d MiB`).MatchString(s) {
		t.Errorf("progress shown before 8 MiB:\n%q", s)
	}
	if !strings.HasSuffix(s, " \r") {
		t.Errorf("progress not cleared:\n%q", s)
	}
}

// TestPutReadOnlyModes: the server checks every write against the file's
// mode (its calls carry no open file), so pfs fills the files and
// directories it makes open to their owner and gives them their modes at
// the end. Read-only and setuid files and a read-only directory upload
// and copy whole, with their modes, as an ordinary user.
func TestPutReadOnlyModes(t *testing.T) {
	d := startDaemon(t)
	addr := d.TCPAddr
	ctx := context.Background()
	m := mountFor(t, addr)
	top := t.TempDir()
	ro := filepath.Join(top, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"a": 0o444, "s": 0o500} {
		p := filepath.Join(ro, name)
		if err := os.WriteFile(p, []byte(name+name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o755) }) // before TempDir's removal
	want := func(p string, mode uint32, data string) {
		t.Helper()
		st, err := m.GetStatPath(ctx, p)
		if err != nil || st.Mode&0o7777 != mode || st.UID != testUID {
			t.Errorf("%s: %+v %v, want mode %#o", p, st, err, mode)
		}
		if data != "" {
			if out := ok(t, addr, "cat", p); out != data {
				t.Errorf("%s holds %q, want %q", p, out, data)
			}
		}
	}
	ok(t, addr, "put", filepath.Join(ro, "a"), "/a")
	want("/a", 0o444, "aa")
	ok(t, addr, "put", filepath.Join(ro, "s"), "/s")
	want("/s", 0o500, "ss")
	ok(t, addr, "put", "-r", ro, "/t")
	want("/t", 0o555, "")
	want("/t/a", 0o444, "aa")
	want("/t/s", 0o500, "ss")
	ok(t, addr, "cp", "/a", "/a2")
	want("/a2", 0o444, "aa")
	// A write by anyone but root clears setuid: the copy gets it back.
	ok(t, addr, "chmod", "4755", "/s")
	ok(t, addr, "cp", "/s", "/s2")
	want("/s2", 0o4755, "ss")
	ok(t, addr, "cp", "-r", "/t", "/t2")
	want("/t2", 0o555, "")
	want("/t2/a", 0o444, "aa")
	putString(t, addr, "/a", "new") // replaces a read-only file of one's own
	want("/a", 0o444, "new")
}
