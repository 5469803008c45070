package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
	buildOut  []byte
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

// build builds proxyfs-fuse into a temporary directory, once.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "proxyfs-fuse-test")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "proxyfs-fuse")
		buildOut, buildErr = exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return binary
}

func needFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("FUSE tests skipped: no /dev/fuse (%v)", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("FUSE tests skipped: no fusermount3 (Debian: apt-get install fuse3)")
	}
}

func mounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == dir {
			return true
		}
	}
	return false
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processOf returns the pid of the proxyfs-fuse serving dir (0: none).
func processOf(dir string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "proxyfs-fuse") && strings.Contains(string(b), dir) {
			var pid int
			for _, c := range e.Name() {
				pid = pid*10 + int(c-'0')
			}
			return pid
		}
	}
	return 0
}

// TestBackgroundFusermount: without -f the command returns once the volume
// is mounted, the mount works, and fusermount3 -u ends the background
// process.
func TestBackgroundFusermount(t *testing.T) {
	needFUSE(t)
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info"})
	bin := build(t)
	dir := t.TempDir()
	out, err := exec.Command(bin, "default", dir, "-o", "server="+d.UnixPath+",allow_other,attr_timeout=0.5").CombinedOutput()
	if err != nil {
		t.Fatalf("proxyfs-fuse: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if mounted(dir) {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	if !mounted(dir) {
		t.Fatal("not mounted after proxyfs-fuse returned")
	}
	pid := processOf(dir)
	if pid == 0 {
		t.Fatal("no background proxyfs-fuse process")
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fusermount3", "-u", dir).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v %s", err, out)
	}
	waitFor(t, "the background process to exit", func() bool { return processOf(dir) == 0 })
	if mounted(dir) {
		t.Fatal("still mounted")
	}
	// A volume that does not exist: the error, in the foreground.
	out, err = exec.Command(bin, "-f", "-o", "server="+d.UnixPath, "nosuchvolume", dir).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("proxyfs-fuse:")) {
		t.Fatalf("mount of a missing volume: %v %s", err, out)
	}
}

// TestForegroundSIGTERM: with -f, SIGTERM unmounts and the command exits 0;
// so does umount(8).
func TestForegroundSIGTERM(t *testing.T) {
	needFUSE(t)
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info"})
	bin := build(t)
	for _, how := range []string{"SIGTERM", "umount"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(bin, "-f", "-o", "server="+d.UnixPath, "default", dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				if mounted(dir) {
					_ = syscall.Unmount(dir, syscall.MNT_DETACH)
				}
			})
			waitFor(t, "the mount", func() bool { return mounted(dir) })
			if err := os.WriteFile(filepath.Join(dir, how), []byte(how), 0o644); err != nil {
				t.Fatal(err)
			}
			if how == "SIGTERM" {
				_ = cmd.Process.Signal(syscall.SIGTERM)
			} else if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
				t.Fatalf("umount: %v %s", err, out)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after %s: %v\n%s", how, err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("still running 15s after %s", how)
			}
			if mounted(dir) {
				t.Fatalf("still mounted after %s", how)
			}
		})
	}
}

// TestDaemonGoneAtUnmount: fusermount3 -u ends the command even when
// proxyfsd is gone (it does not wait for the daemon to unmount there).
func TestDaemonGoneAtUnmount(t *testing.T) {
	needFUSE(t)
	d := daemontest.Start(t, daemontest.Options{LogLevel: "info"})
	bin := build(t)
	dir := t.TempDir()
	if out, err := exec.Command(bin, "-o", "server="+d.UnixPath, "default", dir).CombinedOutput(); err != nil {
		t.Fatalf("proxyfs-fuse: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if pid := processOf(dir); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if mounted(dir) {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	d.Kill()
	if out, err := exec.Command("fusermount3", "-u", dir).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v %s", err, out)
	}
	waitFor(t, "the process to exit with the daemon gone", func() bool { return processOf(dir) == 0 })
}

// TestUsage: bad command lines are exit status 2.
func TestUsage(t *testing.T) {
	var b bytes.Buffer
	for _, args := range [][]string{{}, {"onlyvolume"}, {"-x", "v", "/mnt"}, {"-o", "bogus", "v", "/mnt"}, {"-o", "attr_timeout=x", "v", "/mnt"}} {
		err := run(t.Context(), args, &b)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("%q: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}
