package fusefs

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// The workloads run against the proxyfs-fuse command, built without the
// race detector, as users run it: the race detector covers FS in the other
// tests, and would make these several times slower.

var (
	cmdOnce sync.Once
	cmdPath string
	cmdErr  error
	cmdOut  []byte
)

// startCmd starts a daemon and mounts its volume with proxyfs-fuse (in
// the background, options opts); it is unmounted when the test ends.
func startCmd(t *testing.T, opts string, dopts daemontest.Options) *env {
	t.Helper()
	needFUSE(t)
	cmdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fusefs-test")
		if err != nil {
			cmdErr = err
			return
		}
		cmdPath = filepath.Join(dir, "proxyfs-fuse")
		cmdOut, cmdErr = exec.Command("go", "build", "-o", cmdPath, "github.com/proxyfs/proxyfs/cmd/proxyfs-fuse").CombinedOutput()
	})
	if cmdErr != nil {
		t.Fatalf("go build proxyfs-fuse: %v\n%s", cmdErr, cmdOut)
	}
	if dopts.LogLevel == "" {
		dopts.LogLevel = "info"
	}
	e := &env{t: t, d: daemontest.Start(t, dopts), dir: t.TempDir()}
	if opts != "" {
		opts = "," + opts
	}
	run(t, "", cmdPath, "-o", "server="+e.d.UnixPath+opts, "default", e.dir)
	t.Cleanup(func() {
		if out, err := exec.Command("fusermount3", "-u", e.dir).CombinedOutput(); err != nil {
			t.Errorf("fusermount3 -u: %v %s", err, out)
			_ = syscall.Unmount(e.dir, syscall.MNT_DETACH)
		}
	})
	return e
}

// needTool skips the test when a program it runs is missing (.ci/run
// installs them all).
func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed", n)
		}
	}
}

// TestUntarDiff unpacks part of Go's own source tree (src/cmd and
// src/crypto: over 5 000 files) onto the mount with tar and compares it
// with the original (diff -r), then removes it.
func TestUntarDiff(t *testing.T) {
	needTool(t, "tar", "diff")
	e := startCmd(t, "", daemontest.Options{})
	goroot := runtime.GOROOT()
	dst := e.path("goroot")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	run(t, "", "sh", "-c", "tar -C "+goroot+" -cf - src/cmd src/crypto | tar -C "+dst+" -xf -")
	untar := time.Since(t0)
	out := run(t, "", "sh", "-c", "find "+dst+" -type f | wc -l")
	if n, _ := strconv.Atoi(strings.TrimSpace(out)); n < 5000 {
		t.Fatalf("only %d files", n)
	}
	t0 = time.Now()
	for _, d := range []string{"cmd", "crypto"} {
		run(t, "", "diff", "-r", "--no-dereference", filepath.Join(goroot, "src", d), filepath.Join(dst, "src", d))
	}
	t.Logf("untar of %s files: %v; diff -r: %v", strings.TrimSpace(out), untar.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	run(t, "", "rm", "-rf", dst)
	if ents, err := os.ReadDir(e.dir); err != nil || len(ents) != 0 {
		t.Fatalf("after rm -rf: %v %v", ents, err)
	}
}

// TestGit runs git in a work tree on the mount: init, add, commit, status,
// a change, diff and another commit.
func TestGit(t *testing.T) {
	needTool(t, "git")
	e := startCmd(t, "", daemontest.Options{})
	repo := e.path("repo")
	run(t, "", "cp", "-r", filepath.Join(runtime.GOROOT(), "src", "bufio"), repo)
	git := func(args ...string) string {
		t.Helper()
		return run(t, repo, "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "first")
	if st := git("status", "--porcelain"); st != "" {
		t.Fatalf("status after commit: %q", st)
	}
	if err := os.WriteFile(filepath.Join(repo, "bufio.go"), []byte("package bufio\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := git("status", "--porcelain"); st != " M bufio.go\n" {
		t.Fatalf("status after a change: %q", st)
	}
	git("commit", "-q", "-am", "second")
	if log := git("log", "--oneline"); strings.Count(log, "\n") != 2 {
		t.Fatalf("log: %q", log)
	}
	git("fsck", "--no-progress")
}

// TestRsync copies a tree with hard links, symlinks, xattrs and modes in
// with rsync -aHAX, out again, and compares.
func TestRsync(t *testing.T) {
	needTool(t, "rsync", "diff", "getfattr")
	e := startCmd(t, "", daemontest.Options{})
	src := t.TempDir()
	run(t, src, "sh", "-c", `mkdir -p a/b c && echo one > a/one && echo two > a/b/two && ln a/one c/hard &&
		ln -s ../a/one c/sym && chmod 0750 a/b && chmod 0604 a/b/two && setfattr -n user.color -v blue a/one &&
		dd if=/dev/urandom of=c/big bs=1M count=3 2>/dev/null && touch -d 2001-02-03 a/one`)
	in := e.path("in")
	run(t, "", "rsync", "-aHAX", src+"/", in+"/")
	back := t.TempDir()
	run(t, "", "rsync", "-aHAX", in+"/", back+"/")
	run(t, "", "diff", "-r", "--no-dereference", src, back)
	stat := func(dir string) string {
		return run(t, dir, "stat", "-c", "%h %a %Y", "a/one", "c/hard", "a/b/two", "c/big") + run(t, dir, "stat", "-c", "%a %Y", "a/b")
	}
	want := stat(src)
	if !strings.HasPrefix(want, "2 644 981158400\n2 644 981158400\n1 604 ") {
		t.Fatalf("source tree: %q", want)
	}
	for _, dir := range []string{in, back} {
		if got := stat(dir); got != want {
			t.Errorf("%s: links, modes, mtimes: %q, want %q", dir, got, want)
		}
		if got := run(t, dir, "getfattr", "--only-values", "-n", "user.color", "a/one"); got != "blue" {
			t.Errorf("%s: xattr %q", dir, got)
		}
	}
	// A second rsync finds nothing to do.
	if out := run(t, "", "rsync", "-aHAXi", src+"/", in+"/"); out != "" {
		t.Errorf("second rsync changed: %q", out)
	}
}

// TestFioKill runs fio random reads and writes with crc32c verification on
// the mount while proxyfsd is killed (kill -9) and restarted: fio finishes
// and its verification passes.
func TestFioKill(t *testing.T) {
	needTool(t, "fio")
	e := startCmd(t, "", daemontest.Options{ReclaimGrace: 5 * time.Second})
	cmd := exec.Command("fio", "--name=verify", "--directory="+e.dir, "--rw=randrw", "--bs=4k", "--size=16m",
		"--ioengine=psync", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--time_based=0",
		"--numjobs=2", "--group_reporting", "--verify_state_save=0")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(time.Second)
	e.d.Kill()
	time.Sleep(500 * time.Millisecond)
	e.d.Restart()
	select {
	case err := <-done:
		if err != nil || strings.Contains(out.String(), "verify:") && strings.Contains(out.String(), "bad") {
			t.Fatalf("fio: %v\n%s", err, out.String())
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("fio did not finish\n%s", out.String())
	}
	if !strings.Contains(out.String(), "err= 0") {
		t.Fatalf("fio reported errors:\n%s", out.String())
	}
}
