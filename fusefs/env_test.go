package fusefs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// TestMain runs the tests against a proxyfsd built without the race
// detector (unless PROXYFS_DAEMON_RACE says otherwise): the daemon's own
// tests run it under the detector, and here it would only make the
// workloads several times slower.
func TestMain(m *testing.M) {
	if os.Getenv("PROXYFS_DAEMON_RACE") == "" {
		os.Setenv("PROXYFS_DAEMON_RACE", "0")
	}
	code := m.Run()
	if cmdPath != "" {
		os.RemoveAll(filepath.Dir(cmdPath))
	}
	os.Exit(code)
}

// env is a real proxyfsd, a Client mounted on its volume as root, and that
// volume mounted through FUSE on dir by an FS.
type env struct {
	t   *testing.T
	d   *daemontest.Daemon
	c   *client.Client
	m   *client.Mount
	fs  *FS
	srv *Server
	dir string
}

// needFUSE skips the test when this machine cannot mount FUSE
// filesystems (CI has /dev/fuse and runs as root).
func needFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("FUSE tests skipped: no /dev/fuse (%v)", err)
	}
	if os.Getuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			t.Skip("FUSE tests skipped: not root and no fusermount3 (Debian: apt-get install fuse3)")
		}
	}
}

// start starts a daemon (dopts) and mounts its volume with o; everything
// is unmounted and stopped when the test ends, failed or not.
func start(t *testing.T, o Options, dopts daemontest.Options) *env {
	t.Helper()
	needFUSE(t)
	if dopts.LogLevel == "" {
		dopts.LogLevel = "info"
	}
	d := daemontest.Start(t, dopts)
	e := &env{t: t, d: d}
	e.mount(o)
	return e
}

// mount mounts the daemon's volume on a new directory with o.
func (e *env) mount(o Options) {
	t := e.t
	t.Helper()
	ctx := context.Background()
	c, err := client.Dial(ctx, e.d.UnixPath, client.WithCallTimeout(60*time.Second))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	m, err := c.Mount(ctx, "default", client.MountOptions{User: "root"})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	e.c, e.m = c, m
	e.dir = t.TempDir()
	// Other users (TestPermissions) need to reach the mount point.
	for _, d := range []string{e.dir, filepath.Dir(e.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o.AllowOther = true
	e.fs = New(m, o)
	e.srv, err = e.fs.Mount(e.dir)
	if err != nil {
		t.Fatalf("FUSE mount: %v", err)
	}
	srv := e.srv
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
}

// path returns the path of name on the mount.
func (e *env) path(name string) string { return filepath.Join(e.dir, name) }

// mounted says whether dir is a mount point (in /proc/self/mounts).
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// run runs a command in dir and fails the test on error, with its output.
// The command changes to dir itself (through sh): a child that this
// process, which serves the mount, started in a directory on the mount
// would ask for that directory (FUSE access, without default_permissions)
// between fork and exec, while the fork holds syscall.ForkLock, and the
// two could wait for each other.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if dir != "" {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `cd "$0" && exec "$@"`, dir, name}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// execCmd runs a command and returns its combined output.
func execCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
