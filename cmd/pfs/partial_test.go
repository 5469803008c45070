package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// remoteNames lists remote directory dir with the Go client.
func remoteNames(t *testing.T, m *client.Mount, dir string) []string {
	t.Helper()
	ctx := context.Background()
	ino, err := m.LookupPath(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := m.ReadDirAll(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name != "." && e.Name != ".." {
			names = append(names, e.Name)
		}
	}
	return names
}

// waitPartial waits until directory dir holds a temporary file of pfs
// with at least n bytes, and returns its name.
func waitPartial(t *testing.T, m *client.Mount, dir string, n uint64) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, name := range remoteNames(t, m, dir) {
			if !strings.Contains(name, partialTag) {
				continue
			}
			st, err := m.GetStatPath(context.Background(), dir+"/"+name)
			if err == nil && st.Size >= n {
				return name
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no temporary file of %d bytes in %s: %v", n, dir, remoteNames(t, m, dir))
	return ""
}

// TestPutSIGTERM interrupts the real binary's put from stdin with
// SIGTERM while it waits for more input: no file is left under the final
// name, nor the temporary file, and a file that was being replaced keeps
// its old contents. The exit status is 143.
func TestPutSIGTERM(t *testing.T) {
	bin := buildPFS(t)
	d := startDaemon(t)
	m := mountFor(t, d.TCPAddr)
	ok(t, d.TCPAddr, "mkdir", "/new", "/old")
	putString(t, d.TCPAddr, "/old/f", "old contents")

	for _, target := range []string{"/new/big1g", "/old/f"} {
		cmd := exec.Command(bin, "-server", d.TCPAddr, "put", "-", target)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 1<<20)
		if _, err := stdin.Write(chunk); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Dir(target)
		waitPartial(t, m, dir, 3*testMaxIO) // written up to what pfs read
		// pfs now waits for stdin, which stays open.
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("put did not end after SIGTERM; stderr %q", stderr.String())
		}
		stdin.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 143 {
			t.Errorf("put %s after SIGTERM: %v, want exit status 143", target, err)
		}
		if got := stderr.String(); got != "pfs: put "+target+": interrupted\n" {
			t.Errorf("stderr %q", got)
		}
		names := remoteNames(t, m, dir)
		switch target {
		case "/new/big1g":
			if len(names) != 0 {
				t.Errorf("left in %s: %v", dir, names)
			}
		case "/old/f":
			if len(names) != 1 || names[0] != "f" {
				t.Errorf("left in %s: %v", dir, names)
			}
			if out := ok(t, d.TCPAddr, "cat", "/old/f"); out != "old contents" {
				t.Errorf("the replaced file changed: %q", out)
			}
		}
	}
}

// TestPutENOSPC fills a small volume: the put fails with ENOSPC and
// leaves neither a partial file nor its temporary file; a file it was to
// replace is intact.
func TestPutENOSPC(t *testing.T) {
	d := startDaemonWith(t, daemontest.Options{MaxIOBytes: testMaxIO, LogLevel: "info",
		Volumes: []daemontest.Volume{{Name: "default", CapacityBytes: 2 << 20}}}, testUID, testGID)
	addr := d.TCPAddr
	m := mountFor(t, addr)
	local, _ := randomFile(t, 4<<20)
	mustFail(t, addr, 1, "pfs: put /big: no space left on device\n", "put", local, "/big")
	if names := remoteNames(t, m, "/"); len(names) != 0 {
		t.Errorf("left after ENOSPC: %v", names)
	}
	putString(t, addr, "/f", "keep me")
	mustFail(t, addr, 1, "pfs: put /f: no space left on device\n", "put", local, "/f")
	if names := remoteNames(t, m, "/"); len(names) != 1 {
		t.Errorf("left after ENOSPC: %v", names)
	}
	if out := ok(t, addr, "cat", "/f"); out != "keep me" {
		t.Errorf("replaced file: %q", out)
	}
	// cp too.
	ok(t, addr, "truncate", "-s", "1500K", "/f")
	mustFail(t, addr, 1, "pfs: cp /f /g: no space left on device\n", "cp", "/f", "/g")
	if names := remoteNames(t, m, "/"); len(names) != 1 {
		t.Errorf("left after cp ENOSPC: %v", names)
	}
}

// TestGetInterrupted interrupts get after two chunks: the local file is
// not created (nor left as a temporary file), and a local file it was to
// replace keeps its contents.
func TestGetInterrupted(t *testing.T) {
	d := startDaemon(t)
	addr := d.TCPAddr
	local, data := randomFile(t, 8*testMaxIO)
	ok(t, addr, "put", local, "/big")

	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	os.WriteFile(existing, []byte("old"), 0o600)
	for _, target := range []string{filepath.Join(dir, "new"), existing} {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		testHookChunk = func() {
			if n++; n == 2 {
				cancel()
			}
		}
		var out, errb bytes.Buffer
		code := run(ctx, []string{"-server", addr, "get", "/big", target}, nil, &out, &errb)
		testHookChunk = nil
		cancel()
		if code != 1 || errb.String() != "pfs: get /big: interrupted\n" {
			t.Errorf("interrupted get: exit %d, stderr %q", code, errb.String())
		}
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if len(names) != 1 || names[0] != "existing" {
			t.Errorf("left in %s: %v", dir, names)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "old" {
		t.Errorf("the replaced file: %q", b)
	}
	// Completed, it replaces the file, keeping its permissions.
	ok(t, addr, "get", "/big", existing)
	b, _ := os.ReadFile(existing)
	fi, _ := os.Stat(existing)
	if !bytes.Equal(b, data) || fi.Mode().Perm() != 0o600 {
		t.Errorf("get over a file: %d bytes, mode %v", len(b), fi.Mode())
	}
	// Something that is not a regular file is written to as it is.
	ok(t, addr, "get", "/big", "/dev/null")
}

// TestUnreachable stops the daemon while pfs writes a file: pfs says at
// once that the server is unreachable and that it retries, then gives up
// after -timeout with the server's address, and says that it could not
// remove its temporary file, which it names.
func TestUnreachable(t *testing.T) {
	d := startDaemon(t)
	addr := d.TCPAddr
	m := mountFor(t, addr)
	pr, pw := io.Pipe()
	defer pw.Close()
	var stderr syncBuffer
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-server", addr, "-timeout", "3s", "put", "-", "/x"}, pr, &out, &stderr)
	}()
	if _, err := pw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	tmp := waitPartial(t, m, "/", 3*testMaxIO)
	d.Stop()
	stopped := time.Now()
	go pw.Write(make([]byte, 1<<20)) // the next write finds the daemon gone

	want := regexp.MustCompile(`^pfs: proxyfsd at ` + regexp.QuoteMeta(addr) +
		` unreachable \(connection refused\), retrying for [23]s\.\.\.\n`)
	for !want.MatchString(stderr.String()) {
		if time.Since(stopped) > 1500*time.Millisecond {
			t.Fatalf("no unreachable message after %v: %q", time.Since(stopped), stderr.String())
		}
		select {
		case code := <-done:
			t.Fatalf("pfs ended (%d) before saying the server is unreachable: %q", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("unreachable message after %v", time.Since(stopped))
	defer func() { t.Logf("stderr:\n%s", stderr.String()) }()
	code := <-done
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if len(lines) != 3 || strings.Count(stderr.String(), "retrying") != 1 {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
	if want := "pfs: put /x: connection timed out: proxyfsd at " + addr + " unreachable, retried for 3s (connection refused)"; lines[1] != want {
		t.Errorf("error line %q, want %q", lines[1], want)
	}
	if !regexp.MustCompile(`^pfs: /` + regexp.QuoteMeta(tmp) + `: cannot remove this partial file: connection timed out: proxyfsd at .* unreachable, retried for [0-9.]+s \(connection refused\)$`).MatchString(
		strings.Replace(lines[2], "pfs: put /", "pfs: /", 1)) {
		t.Errorf("cleanup line %q (temporary file %s)", lines[2], tmp)
	}
	// The daemon is back: the temporary file is there to remove.
	d.Restart()
	m = mountFor(t, addr)
	if names := remoteNames(t, m, "/"); len(names) != 1 || names[0] != tmp {
		t.Errorf("after the restart: %v, want %s", names, tmp)
	}
}

// TestReachableAgain: the daemon restarts within -timeout; pfs says it is
// unreachable, then that it is back, and the put completes.
func TestReachableAgain(t *testing.T) {
	d := startDaemon(t)
	addr := d.TCPAddr
	m := mountFor(t, addr)
	pr, pw := io.Pipe()
	var stderr syncBuffer
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-server", addr, "-timeout", "20s", "put", "-", "/x"}, pr, &out, &stderr)
	}()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	pw.Write(data)
	waitPartial(t, m, "/", 3*testMaxIO)
	d.Stop()
	go func() {
		pw.Write(data)
		pw.Close()
	}()
	for !strings.Contains(stderr.String(), "unreachable") {
		time.Sleep(10 * time.Millisecond)
	}
	d.Restart()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if !regexp.MustCompile(`^pfs: proxyfsd at \S+ unreachable \(connection refused\), retrying for \d+s\.\.\.\n` +
		`pfs: proxyfsd at \S+ reachable again after [0-9.]+m?s\n$`).MatchString(stderr.String()) {
		t.Errorf("stderr %q", stderr.String())
	}
	m = mountFor(t, addr)
	if out := ok(t, addr, "cat", "/x"); out != string(data)+string(data) {
		t.Errorf("after the restart: %d bytes", len(out))
	}
	if names := remoteNames(t, m, "/"); len(names) != 1 {
		t.Errorf("names %v", names)
	}
}
