package fusefs

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// lockerPy is another process that takes a POSIX lock (fcntl, through
// Python's lockf) on a file and holds it until its stdin closes. Modes:
// try (F_SETLK: prints "locked" or "EAGAIN"), wait (F_SETLKW: prints
// "locked" once granted), alarm (F_SETLKW interrupted by SIGALRM after a
// second: "interrupted"), get (F_GETLK: prints the type and the pid).
const lockerPy = `
import fcntl, os, signal, struct, sys
path, mode = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
def alarm(*a):
    raise InterruptedError()
signal.signal(signal.SIGALRM, alarm)
try:
    if mode == "try":
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    elif mode == "wait":
        fcntl.lockf(fd, fcntl.LOCK_EX)
    elif mode == "alarm":
        signal.alarm(1)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        signal.alarm(0)
    elif mode == "get":
        lk = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
        t, _, _, _, pid = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, lk))
        print({fcntl.F_RDLCK: "F_RDLCK", fcntl.F_WRLCK: "F_WRLCK", fcntl.F_UNLCK: "F_UNLCK"}[t], pid, flush=True)
        sys.exit(0)
    print("locked", flush=True)
except InterruptedError:
    print("interrupted", flush=True)
except OSError as e:
    print("EAGAIN" if e.errno in (11, 13) else str(e), flush=True)
sys.stdin.read()
`

// locker is a running lockerPy.
type locker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startLocker starts a locker on path in mode; it is stopped when the
// test ends.
func startLocker(t *testing.T, path, mode string) *locker {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	cmd := exec.Command("python3", "-c", lockerPy, path, mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := &locker{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
		close(l.lines)
	}()
	t.Cleanup(l.stop)
	return l
}

// line returns the locker's next line, or "" if none comes within d.
func (l *locker) line(d time.Duration) string {
	select {
	case s := <-l.lines:
		return s
	case <-time.After(d):
		return ""
	}
}

// stop closes the locker's stdin (it releases its lock by exiting).
func (l *locker) stop() {
	if l.stdin != nil {
		l.stdin.Close()
		l.stdin = nil
		_ = l.cmd.Wait()
	}
}

func setlk(f *os.File, cmd int, typ int16) error {
	return syscall.FcntlFlock(f.Fd(), cmd, &syscall.Flock_t{Type: typ, Whence: 0})
}

// TestLocksTwoProcesses: POSIX locks between processes (conflict, wait,
// wake at close, F_GETLK with the holder's pid, an interrupted wait that
// leaves nothing behind), within one process (a second descriptor does not
// conflict, and closing any descriptor releases the process's locks), and
// flock.
func TestLocksTwoProcesses(t *testing.T) {
	e := start(t, Options{}, daemontest.Options{})
	p := e.path("locked")
	if err := os.WriteFile(p, []byte("data"), 0o666); err != nil {
		t.Fatal(err)
	}
	f1, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f2, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := setlk(f1, syscall.F_SETLK, syscall.F_WRLCK); err != nil {
		t.Fatal(err)
	}
	// Same process, another descriptor: no conflict (as on ext4); the
	// lock is now a read lock, and write-locked again.
	if err := setlk(f2, syscall.F_SETLK, syscall.F_RDLCK); err != nil {
		t.Fatalf("same process, second descriptor: %v", err)
	}
	if err := setlk(f2, syscall.F_SETLK, syscall.F_WRLCK); err != nil {
		t.Fatal(err)
	}
	if got := startLocker(t, p, "try").line(10 * time.Second); got != "EAGAIN" {
		t.Fatalf("another process's F_SETLK: %q, want EAGAIN", got)
	}
	if got := startLocker(t, p, "get").line(10 * time.Second); got != "F_WRLCK "+strconv.Itoa(os.Getpid()) {
		t.Fatalf("F_GETLK: %q, want F_WRLCK %d", got, os.Getpid())
	}
	waiter := startLocker(t, p, "wait")
	if got := waiter.line(500 * time.Millisecond); got != "" {
		t.Fatalf("F_SETLKW granted while locked: %q", got)
	}
	// Closing any descriptor of the file releases the process's locks.
	f2.Close()
	if got := waiter.line(10 * time.Second); got != "locked" {
		t.Fatalf("waiter after the holder's close: %q", got)
	}
	// A wait interrupted by a signal ends with EINTR, and is not granted
	// later.
	interrupted := startLocker(t, p, "alarm")
	if got := interrupted.line(10 * time.Second); got != "interrupted" {
		t.Fatalf("F_SETLKW with SIGALRM: %q", got)
	}
	waiter.stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := setlk(f1, syscall.F_SETLK, syscall.F_WRLCK)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EAGAIN) || time.Now().After(deadline) {
			t.Fatalf("F_SETLK after the waiter left and the other wait was interrupted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	interrupted.stop()

	// An open file description lock (F_OFD_SETLK) ends with its file,
	// even while another descriptor keeps the file open.
	if err := setlk(f1, syscall.F_SETLK, syscall.F_UNLCK); err != nil {
		t.Fatal(err)
	}
	fo, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.FcntlFlock(fo.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
		t.Fatalf("F_OFD_SETLK: %v", err)
	}
	if got := startLocker(t, p, "try").line(10 * time.Second); got != "EAGAIN" {
		t.Fatalf("another process against an OFD lock: %q, want EAGAIN", got)
	}
	fo.Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		l := startLocker(t, p, "try")
		got := l.line(10 * time.Second)
		l.stop()
		if got == "locked" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the OFD lock's file closed: %q, want locked", got)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// flock: conflicts with another open file description, waits.
	if err := syscall.Flock(int(f1.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	out, err := execCmd("flock", "-n", "-E", "99", p, "true")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 99 {
		t.Fatalf("flock -n on a locked file: %v %q", err, out)
	}
	cmd := exec.Command("flock", p, "echo", "got it")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stdout)
		got <- string(b)
	}()
	select {
	case s := <-got:
		t.Fatalf("blocking flock granted while locked: %q", s)
	case <-time.After(300 * time.Millisecond):
	}
	if err := syscall.Flock(int(f1.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if err := cmd.Wait(); err != nil || strings.TrimSpace(s) != "got it" {
			t.Fatalf("blocking flock: %v %q", err, s)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("blocking flock not granted after the unlock")
	}
}
