package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// testMaxIO is the daemon's max_io_size in these tests: small, so that
// transfers of a few MiB span many chunks.
const testMaxIO = 256 << 10

// Identity of the mounts the tests make.
const (
	testUID = 1234
	testGID = 5678
)

// startDaemon starts a real proxyfsd for t whose volume's root directory
// belongs to testUID:testGID, whom the tests run pfs as.
func startDaemon(t *testing.T) *daemontest.Daemon {
	t.Helper()
	return startDaemonFor(t, testUID, testGID)
}

// startDaemonFor starts a real proxyfsd for t and gives its volume's root
// directory to uid:gid (see startDaemonWith).
func startDaemonFor(t *testing.T, uid, gid uint32) *daemontest.Daemon {
	t.Helper()
	return startDaemonWith(t, daemontest.Options{MaxIOBytes: testMaxIO, LogLevel: "info"}, uid, gid)
}

// startDaemonWith starts a real proxyfsd with opts and gives the root
// directory of each of its volumes to uid:gid, as an administrator would
// (a new volume's root is root's, mode 0755).
func startDaemonWith(t *testing.T, opts daemontest.Options, uid, gid uint32) *daemontest.Daemon {
	t.Helper()
	d := daemontest.Start(t, opts)
	ctx := context.Background()
	c, err := client.Dial(ctx, d.TCPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	vols := []string{"default"}
	if len(opts.Volumes) > 0 {
		vols = vols[:0]
		for _, v := range opts.Volumes {
			vols = append(vols, v.Name)
		}
	}
	for _, v := range vols {
		m, err := c.Mount(ctx, v, client.MountOptions{User: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.ChownPath(ctx, "/", int64(uid), int64(gid)); err != nil {
			t.Fatal(err)
		}
		if err := m.Unmount(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// result is the outcome of one in-process run.
type result struct {
	stdout, stderr string
	code           int
}

// pfsAt runs pfs in-process against addr with stdin, as testUID/testGID.
func pfsAt(t *testing.T, addr string, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"-server", addr, "-uid", "1234", "-gid", "5678"}, args...)
	code := run(ctx, full, stdin, &out, &errb)
	return result{out.String(), errb.String(), code}
}

// ok runs pfs and fails the test unless it succeeds silently on stderr.
func ok(t *testing.T, addr string, args ...string) string {
	t.Helper()
	r := pfsAt(t, addr, nil, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("pfs %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// mustFail runs pfs and checks the exit code and the exact stderr.
func mustFail(t *testing.T, addr string, code int, stderr string, args ...string) result {
	t.Helper()
	r := pfsAt(t, addr, nil, args...)
	if r.code != code || r.stderr != stderr {
		t.Fatalf("pfs %s: exit %d, stderr %q; want exit %d, stderr %q",
			strings.Join(args, " "), r.code, r.stderr, code, stderr)
	}
	return r
}

// mountFor mounts the default volume of addr with the Go client, to check
// what pfs did independently of pfs.
func mountFor(t *testing.T, addr string) *client.Mount {
	t.Helper()
	ctx := context.Background()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m, err := c.Mount(ctx, "default", client.MountOptions{UID: testUID, GID: testGID})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// lines splits output into lines without the final newline.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
