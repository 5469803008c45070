package fusefs

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// TestDaemonRestart: kill -9 of proxyfsd and a restart are a pause. An
// open file, a file unlinked while open and a POSIX lock survive it, and
// writes in flight during the outage complete.
func TestDaemonRestart(t *testing.T) {
	e := start(t, Options{}, daemontest.Options{ReclaimGrace: 3 * time.Second})
	p, u := e.path("open"), e.path("unlinked")
	if err := os.WriteFile(p, []byte("before"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u, []byte("orphan"), 0o666); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fu, err := os.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	defer fu.Close()
	if err := os.Remove(u); err != nil {
		t.Fatal(err)
	}
	if err := setlk(f, syscall.F_SETLK, syscall.F_WRLCK); err != nil {
		t.Fatal(err)
	}

	// A writer that goes on through the outage.
	w, err := os.Create(e.path("stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written int
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := w.Write(chunk)
			written += n
			if err != nil {
				werr = err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	e.d.Kill()
	time.Sleep(500 * time.Millisecond)
	e.d.Restart()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatalf("write across the restart: %v", werr)
	}
	if fi, err := w.Stat(); err != nil || fi.Size() != int64(written) {
		t.Fatalf("stream: size %d, wrote %d (%v)", fi.Size(), written, err)
	}

	got := make([]byte, 6)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "before" {
		t.Fatalf("open file after the restart: %q %v", got, err)
	}
	if _, err := f.WriteAt([]byte("after!"), 0); err != nil {
		t.Fatalf("write after the restart: %v", err)
	}
	if _, err := fu.ReadAt(got, 0); err != nil || string(got) != "orphan" {
		t.Fatalf("unlinked open file after the restart: %q %v", got, err)
	}
	// The lock was taken again: another process still conflicts once
	// the grace is over.
	if got := startLocker(t, p, "try").line(30 * time.Second); got != "EAGAIN" {
		t.Fatalf("another process's lock after the restart: %q, want EAGAIN", got)
	}
	if lost := e.c.LostLocks(); lost != 0 {
		t.Fatalf("%d locks lost", lost)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "after!" {
		t.Fatalf("content: %q %v", b, err)
	}
}
