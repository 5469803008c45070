package lock

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeClock replaces time.Now and time.AfterFunc: time moves, and timers
// fire, only when the test says.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (ft *fakeTimer) Stop() bool {
	was := ft.stopped
	ft.stopped = true
	return !was
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, ft)
	return ft
}

// advance moves the clock by d and runs the timers that are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	kept := c.timers[:0]
	for _, ft := range c.timers {
		if !ft.stopped && !ft.at.After(c.now) {
			due = append(due, ft)
		} else if !ft.stopped {
			kept = append(kept, ft)
		}
	}
	c.timers = kept
	c.mu.Unlock()
	for _, ft := range due {
		ft.f()
	}
}

// newTest returns a manager on a fake clock.
func newTest(opts Options) (*Manager, *fakeClock) {
	c := newFakeClock()
	return newManager(opts, c.Now, c.afterFunc), c
}

var (
	fileA = Key{Volume: "v", Inode: 10}
	fileB = Key{Volume: "v", Inode: 11}
	fileC = Key{Volume: "w", Inode: 10} // same inode, other volume

	ownA = Owner{Mount: 1, Handle: 1, ID: "a"}
	ownB = Owner{Mount: 1, Handle: 2, ID: "b"}
	ownC = Owner{Mount: 2, Handle: 1, ID: "c"}
	ownD = Owner{Mount: 2, Handle: 2, ID: "d"}
)

func rq(k Key, o Owner, t Type, start, length int64) Request {
	return Request{Key: k, Owner: o, Type: t, Start: start, Len: length}
}

// errnoOf returns the errno err matches among those the package returns,
// or 0 for nil.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, e := range []syscall.Errno{syscall.EAGAIN, syscall.EDEADLK, syscall.EINTR, syscall.EBADF, syscall.ENOLCK, syscall.EINVAL} {
		if errors.Is(err, e) {
			return e
		}
	}
	return syscall.Errno(0xffff)
}

// async runs f in a goroutine and returns the channel of its result.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// waitQueued waits until the manager has n queued waiters.
func waitQueued(t *testing.T, m *Manager, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.Stats().Waiting != n {
		if time.Now().After(deadline) {
			t.Fatalf("waiters: %d, want %d", m.Stats().Waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// pending asserts that ch has no result yet.
func pending(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s: returned %v, want still waiting", what, err)
	case <-time.After(20 * time.Millisecond):
	}
}

// result returns ch's result, failing the test if none comes soon.
func result(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting", what)
		return nil
	}
}

var bg = context.Background()
