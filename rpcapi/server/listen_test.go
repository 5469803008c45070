package server_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/rpcapi/server"
	_ "github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// openUnixServer opens a server on a memory volume that listens only on
// the Unix socket path.
func openUnixServer(t *testing.T, path string) *server.Server {
	t.Helper()
	cfg, err := conf.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.TCP = ""
	cfg.Server.Unix = path
	cfg.Volumes = []conf.Volume{{Name: "default", Engine: "memory", Path: t.TempDir()}}
	s, err := server.Open(context.Background(), cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// socketDir returns a short temporary directory (Unix socket paths are
// limited to 107 bytes; t.TempDir() paths can be longer).
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pfsl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestUnixPathNotASocket checks that the daemon never removes what is at
// [server] unix unless it is a stale socket: a regular file, a directory,
// a symlink or a live socket there is a startup error naming the path,
// and is left as it was.
func TestUnixPathNotASocket(t *testing.T) {
	dir := socketDir(t)

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(dir, "dir")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink to a stale socket: even so, the symlink is not ours to
	// remove.
	stale := filepath.Join(dir, "stale.sock")
	staleSocket(t, stale)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(stale, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nothing"), dangling); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	l, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	for _, c := range []struct{ name, path, want string }{
		{"regular file", file, "not a socket"},
		{"empty directory", emptyDir, "not a socket"},
		{"symlink", link, "not a socket"},
		{"dangling symlink", dangling, "not a socket"},
		{"live socket", live, "another process"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, err := os.Lstat(c.path)
			if err != nil {
				t.Fatal(err)
			}
			s := openUnixServer(t, c.path)
			err = s.Start()
			if err == nil {
				t.Fatalf("Start with unix = %s succeeded", c.path)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q: want the path and %q", err, c.want)
			}
			after, err := os.Lstat(c.path)
			if err != nil {
				t.Fatalf("%s is gone: %v", c.path, err)
			}
			if !os.SameFile(before, after) {
				t.Errorf("%s was replaced", c.path)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("regular file: %q, %v", b, err)
	}
	if fi, err := os.Lstat(stale); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the symlink's target: %v, %v", fi, err)
	}
}

// TestUnixStaleSocketReplaced checks that a socket file nobody answers on
// (left by a daemon that was killed) is replaced.
func TestUnixStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(socketDir(t), "proxyfsd.sock")
	staleSocket(t, path)
	s := openUnixServer(t, path)
	if err := s.Start(); err != nil {
		t.Fatalf("Start over a stale socket: %v", err)
	}
	rc := dial(t, "unix", path)
	rc.ok("ping", obj{}, nil)
}

// staleSocket leaves a socket file at path that nothing listens on.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("stale socket %s: %v, %v", path, fi, err)
	}
}
