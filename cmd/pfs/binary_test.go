package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildPFS builds the pfs binary into a temporary directory.
func buildPFS(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "pfs")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary runs the real binary as a subprocess, so that exit statuses
// and the standard streams are tested for real.
func TestBinary(t *testing.T) {
	bin := buildPFS(t)
	d := startDaemon(t)

	exe := func(stdin string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "PROXYFS_SERVER="+d.UnixPath)
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			code = ee.ExitCode()
		default:
			t.Fatalf("run %v: %v", args, err)
		}
		return o.String(), e.String(), code
	}

	if _, stderr, code := exe("", "-server", d.TCPAddr, "stat", "/nope"); code != 1 ||
		stderr != "pfs: stat /nope: no such file or directory\n" {
		t.Errorf("stat /nope: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := exe("", "bogus"); code != 2 || stderr != "pfs: unknown command \"bogus\"\n"+usageText {
		t.Errorf("bogus: exit %d, stderr %q", code, stderr)
	}
	if stdout, stderr, code := exe("hello\n", "put", "-", "/hello"); code != 0 || stdout != "" || stderr != "" {
		t.Errorf("put: exit %d, %q %q", code, stdout, stderr)
	}
	if stdout, stderr, code := exe("", "cat", "/hello"); code != 0 || stdout != "hello\n" || stderr != "" {
		t.Errorf("cat: exit %d, %q %q", code, stdout, stderr)
	}
	if stdout, _, code := exe("", "help"); code != 0 || stdout != usageText {
		t.Errorf("help: exit %d, %q", code, stdout)
	}
}

// TestVersionShared builds pfs and proxyfsd with a version set at link
// time, as the Makefile does: both print it.
func TestVersionShared(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	const v = "9.8.7-pfs-test"
	dir := t.TempDir()
	for _, name := range []string{"pfs", "proxyfsd"} {
		cmd := exec.Command("go", "build", "-ldflags", "-X github.com/proxyfs/proxyfs/internal/version.Version="+v,
			"-o", filepath.Join(dir, name), "../"+name)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
		out, err := exec.Command(filepath.Join(dir, name), "-version").Output()
		if err != nil || string(out) != name+" "+v+"\n" {
			t.Errorf("%s -version: %q %v", name, out, err)
		}
	}
}
