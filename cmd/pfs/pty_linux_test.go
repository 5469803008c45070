package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal and returns its master and slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		master.Close()
		t.Skipf("TIOCSPTLCK: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		master.Close()
		t.Skipf("TIOCGPTN: %v", e)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Skipf("open slave: %v", err)
	}
	return master, slave
}

// TestProgressOnTerminal runs put and get of a file above the threshold
// with stderr on a pseudo-terminal, and one below it.
func TestProgressOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	if !isTerminal(slave) {
		t.Fatal("the pty slave is not taken for a terminal")
	}
	var screen bytes.Buffer
	drained := make(chan struct{})
	go func() {
		io.Copy(&screen, master) // ends with EIO once the slave is closed
		close(drained)
	}()

	d := startDaemon(t)
	local, data := randomFile(t, progressThreshold+1<<20)
	small, _ := randomFile(t, 1<<20)
	dir := t.TempDir()
	ctx := context.Background()
	var out bytes.Buffer
	for _, args := range [][]string{
		{"put", local, "/big"},
		{"get", "/big", filepath.Join(dir, "big")},
		{"put", small, "/small"},
		{"get", "/small", filepath.Join(dir, "small")},
	} {
		full := append([]string{"-server", d.TCPAddr}, args...)
		if code := run(ctx, full, nil, &out, slave); code != 0 {
			t.Fatalf("pfs %v: exit %d", args, code)
		}
	}
	slave.Close()
	<-drained
	if b, _ := os.ReadFile(filepath.Join(dir, "big")); !bytes.Equal(b, data) {
		t.Error("get with progress returned different data")
	}
	s := screen.String()
	if strings.Count(s, "] 100%  9.0 MiB / 9.0 MiB") < 2 {
		// The last update of each transfer may be throttled away, but the
		// first one is always drawn.
		if strings.Count(s, "/ 9.0 MiB  ") < 2 {
			t.Errorf("no progress lines for put and get:\n%q", s)
		}
	}
	if strings.Contains(s, "/ 1.0 MiB") {
		t.Errorf("progress shown for a small file:\n%q", s)
	}
	// Every line drawn is cleared: the screen ends with spaces and \r.
	if !strings.HasSuffix(s, " \r") {
		t.Errorf("progress not cleared at the end:\n%q", s)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q", out.String())
	}
}
