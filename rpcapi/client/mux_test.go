package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// checkGoroutines fails t if, after f and a grace period, more goroutines
// run than before.
func checkGoroutines(t *testing.T) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutines: %d before, %d after Close\n%s", before, n, buf)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func fakeMount(t *testing.T, s *fakeServer, opts ...Option) (*Client, *Mount) {
	t.Helper()
	ctx := context.Background()
	c, err := Dial(ctx, s.addr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m, err := c.Mount(ctx, "default", MountOptions{User: "u", UID: 1, GID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

func TestFakeMuxConcurrent(t *testing.T) {
	s := newFakeServer(t)
	done := checkGoroutines(t)
	c, m := fakeMount(t, s, WithConns(1, 2))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ino := uint64(100 + g)
			for i := range 50 {
				data := []byte(fmt.Sprintf("g%d-i%d", g, i))
				if _, err := m.Write(ctx, ino, data, 0); err != nil {
					errs <- err
					return
				}
				buf := make([]byte, len(data))
				n, err := m.Read(ctx, ino, buf, 0)
				if err != nil || !bytes.Equal(buf[:n], data) {
					errs <- fmt.Errorf("read %q, %v; want %q", buf[:n], err, data)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Chunking: MaxIOSize is 1024 in the fake.
	big := bytes.Repeat([]byte("0123456789abcdef"), 700) // 11200 bytes: 11 chunks
	if n, err := m.Write(ctx, 7, big, 5); err != nil || n != len(big) {
		t.Fatalf("big write: %d, %v", n, err)
	}
	got := make([]byte, len(big)+3000)
	n, err := m.Read(ctx, 7, got, 5)
	if err != nil || n != len(big) || !bytes.Equal(got[:n], big) {
		t.Fatalf("big read: %d, %v", n, err)
	}
	// ENOENT -> EBADF.
	if _, err := m.Read(ctx, 999, got[:10], 0); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("read of missing inode: %v, want EBADF", err)
	}
	c.Close()
	done()
}

func TestFakeRestartRemount(t *testing.T) {
	s := newFakeServer(t)
	done := checkGoroutines(t)
	c, m := fakeMount(t, s, WithBackoff(time.Millisecond, 20*time.Millisecond))
	ctx := context.Background()
	id0 := m.MountID()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 100)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ino := uint64(200 + g)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				data := []byte(fmt.Sprintf("%d:%d", g, i))
				if _, err := m.Write(ctx, ino, data, 0); err != nil {
					errs <- err
					return
				}
				buf := make([]byte, 64)
				if n, err := m.Read(ctx, ino, buf, 0); err != nil || !bytes.HasPrefix(buf[:n], data) {
					errs <- fmt.Errorf("read %q, %v", buf[:n], err)
					return
				}
				p := fmt.Sprintf("/f%d-%d", g, i)
				if _, err := m.CreatePath(ctx, p, 0o644); err != nil {
					errs <- err
					return
				}
				if err := m.UnlinkPath(ctx, p); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 5 {
		time.Sleep(50 * time.Millisecond)
		s.restart()
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m.MountID() == id0 {
		t.Error("mount id did not change after restarts")
	}
	c.Close()
	done()
}

func TestFakeUncertainRetries(t *testing.T) {
	s := newFakeServer(t)
	_, m := fakeMount(t, s)
	ctx := context.Background()

	// The server creates the file, then the connection drops before the
	// reply: the retry gets EEXIST, which must be reported as success.
	s.mu.Lock()
	s.dropOnce["create_path"] = true
	s.mu.Unlock()
	st, err := m.CreatePath(ctx, "/a", 0o644)
	if err != nil {
		t.Fatalf("uncertain create: %v", err)
	}
	if st.Ino == 0 || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Fatalf("uncertain create: stat %+v", st)
	}
	if s.calls["create_path"] != 2 {
		t.Fatalf("create_path called %d times, want 2", s.calls["create_path"])
	}
	// Without the drop, EEXIST is reported.
	if _, err := m.CreatePath(ctx, "/a", 0o644); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("create of existing: %v, want EEXIST", err)
	}

	s.mu.Lock()
	s.dropOnce["unlink_path"] = true
	s.mu.Unlock()
	if err := m.UnlinkPath(ctx, "/a"); err != nil {
		t.Fatalf("uncertain unlink: %v", err)
	}
	if err = m.UnlinkPath(ctx, "/a"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("unlink of missing: %v, want ENOENT", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Op != "unlink_path" {
		t.Fatalf("error %#v", err)
	}
}

func TestFakeTimeouts(t *testing.T) {
	s := newFakeServer(t)
	done := checkGoroutines(t)
	c, m := fakeMount(t, s, WithCallTimeout(200*time.Millisecond))
	s.mu.Lock()
	s.stall["read"] = true
	s.stall["get_stat_path"] = true
	s.mu.Unlock()
	start := time.Now()
	_, err := m.Read(context.Background(), 5, make([]byte, 10), 0)
	if !errors.Is(err, syscall.ETIMEDOUT) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled read: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	_, err = m.GetStatPath(context.Background(), "/x")
	if !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("stalled get_stat_path: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = m.GetStatPath(ctx, "/x")
	if !errors.Is(err, syscall.EINTR) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled get_stat_path: %v", err)
	}
	// The client still works for other calls.
	if _, err := m.Write(context.Background(), 5, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := m.Write(context.Background(), 5, []byte("x"), 0); !errors.Is(err, ErrClosed) || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("write after Close: %v", err)
	}
	done()
}

func TestFakeDialErrors(t *testing.T) {
	s := newFakeServer(t)
	addr := s.addr()
	s.stop()
	_, err := Dial(context.Background(), addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial of stopped server: %v", err)
	}
	_, err = Dial(context.Background(), "/nonexistent/proxyfsd.sock")
	if err == nil {
		t.Fatal("dial of missing socket succeeded")
	}
}

// TestFakeCloseUnderLoad closes the Client while many calls are in flight:
// every call returns (success or ErrClosed) and no goroutine is left.
func TestFakeCloseUnderLoad(t *testing.T) {
	s := newFakeServer(t)
	done := checkGoroutines(t)
	c, m := fakeMount(t, s)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var err error
				if i%2 == 0 {
					_, err = m.Write(ctx, uint64(g), []byte("data"), 0)
				} else {
					_, err = m.GetStatPath(ctx, "/nope")
					if errors.Is(err, syscall.ENOENT) {
						err = nil
					}
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	c.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.Close() // idempotent
	done()
}
