package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestOutage stops the daemon under a mounted client: the next call
// reports the outage through the hook at once, and its error after the
// call timeout names the server, the time it retried and the last dial
// error, with the errno of a timeout. When the daemon is back, the hook
// hears of it and calls work again.
func TestOutage(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	var mu sync.Mutex
	var events []Outage
	got := make(chan Outage, 10)
	const timeout = 2 * time.Second
	c, err := Dial(ctx, d.tcp(), WithCallTimeout(timeout), WithOutageHook(func(o Outage) {
		mu.Lock()
		events = append(events, o)
		mu.Unlock()
		got <- o
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := c.Mount(ctx, "default", alice)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.CreatePath(ctx, "/f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.term(t)

	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := m.GetStat(ctx, st.Ino)
		errc <- err
	}()
	select {
	case o := <-got:
		if wait := time.Since(start); wait > timeout/2 {
			t.Errorf("hook called after %v", wait)
		}
		if o.Reconnected || o.Addr != d.tcp() || !errors.Is(o.Err, syscall.ECONNREFUSED) || o.Op == "" ||
			o.RetryFor <= 0 || o.RetryFor > timeout {
			t.Errorf("outage event %+v", o)
		}
	case err := <-errc:
		t.Fatalf("call ended (%v) before the hook was called", err)
	}
	err = <-errc
	elapsed := time.Since(start)
	if elapsed < timeout {
		t.Errorf("call gave up after %v, before its timeout", elapsed)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Errno != syscall.ETIMEDOUT || ce.Reason != ReasonTimeout {
		t.Fatalf("error %#v, want ETIMEDOUT with reason timeout", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("%v does not match DeadlineExceeded and ETIMEDOUT", err)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v matches ECONNREFUSED: the dial error's errno leaked", err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) || errno != syscall.ETIMEDOUT {
		t.Errorf("errors.As errno: %v", errno)
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("%v: no UnreachableError", err)
	}
	if ue.Addr != d.tcp() || ue.For < timeout-500*time.Millisecond || ue.For > elapsed || !errors.Is(ue.Err, syscall.ECONNREFUSED) {
		t.Errorf("UnreachableError %+v", ue)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, want := range []string{"ETIMEDOUT (timeout)", "proxyfsd at " + d.tcp() + " unreachable", "retried for 2", "connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	// Once per outage: a second call does not call the hook again.
	if _, err := m.GetStat(ctx, st.Ino); !errors.As(err, &ue) {
		t.Errorf("second call: %v", err)
	}
	mu.Lock()
	if len(events) != 1 {
		t.Errorf("%d events during one outage: %+v", len(events), events)
	}
	mu.Unlock()

	d.restart(t)
	if _, err := m.GetStat(ctx, st.Ino); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	select {
	case o := <-got:
		if !o.Reconnected || o.Addr != d.tcp() || o.Err != nil || o.Down < timeout {
			t.Errorf("reconnect event %+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnect event")
	}
	// A timeout that is not an outage keeps its plain message.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = m.GetStat(cctx, st.Ino)
	if !errors.As(err, &ce) || ce.Reason != ReasonCanceled || errors.As(err, &ue) || strings.Contains(err.Error(), "unreachable") {
		t.Errorf("canceled call while reachable: %v", err)
	}
}

// TestOutageUnixSocket: a Unix socket that is gone (ENOENT) is an outage
// too, and a canceled call says so as well.
func TestOutageUnixSocket(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	got := make(chan Outage, 10)
	c, err := Dial(ctx, d.unix(), WithOutageHook(func(o Outage) { got <- o }))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := c.Mount(ctx, "default", alice)
	if err != nil {
		t.Fatal(err)
	}
	d.term(t)
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := m.GetStatPath(cctx, "/")
		errc <- err
	}()
	o := <-got
	if o.Reconnected || !errors.Is(o.Err, syscall.ENOENT) && !errors.Is(o.Err, syscall.ECONNREFUSED) || o.RetryFor <= 0 {
		t.Errorf("outage event %+v", o)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	err = <-errc
	var ce *Error
	var ue *UnreachableError
	if !errors.As(err, &ce) || ce.Errno != syscall.EINTR || ce.Reason != ReasonCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want EINTR canceled", err)
	}
	if !errors.As(err, &ue) || ue.Addr != d.unix() || ue.For < 100*time.Millisecond {
		t.Errorf("UnreachableError %+v in %v", ue, err)
	}
}
