package client

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Outage is what the outage hook (WithOutageHook) is told: the server
// became unreachable and a call is retrying, or it is reachable again.
type Outage struct {
	// Addr is the server's address, as given to Dial (without "unix:").
	Addr string
	// Reconnected is false when the outage begins (a call could not
	// connect and is retrying) and true when it ends (a connection to
	// the server succeeded again).
	Reconnected bool
	// Op is the call that could not connect ("" when Reconnected).
	Op string
	// Err is the dial error (nil when Reconnected); errors.As finds its
	// syscall.Errno (ECONNREFUSED, ENOENT for a missing Unix socket, ...).
	Err error
	// RetryFor is how long that call goes on retrying: the time left
	// until its deadline (the call timeout or its context's); 0 when it
	// has no deadline, or when Reconnected.
	RetryFor time.Duration
	// Down is how long the server was unreachable (when Reconnected).
	Down time.Duration
}

// WithOutageHook sets f to be called when a call first fails to reach
// the server and starts retrying, at once rather than when the call
// finally gives up, and again when a connection succeeds after that. It
// is called once per outage, not per attempt: an outage begins with a
// failed dial (a connection that broke does not count while dialing again
// works) and ends with the next dial that succeeds. Dial itself does not
// retry and does not call f. f runs on the goroutine of the call that
// dialed, with no lock of the Client held; it must not block for long.
//
// Command-line tools use it to say at once that the server is gone:
//
//	client.WithOutageHook(func(o client.Outage) {
//		if !o.Reconnected {
//			log.Printf("%s unreachable (%v), retrying for %v", o.Addr, o.Err, o.RetryFor)
//		}
//	})
func WithOutageHook(f func(Outage)) Option {
	return func(o *options) { o.outageHook = f }
}

// UnreachableError is the cause of an error that ended a call while the
// server was unreachable: the call retried until its deadline (or until
// its context was canceled) and every dial failed. The *Error keeps its
// errno and reason (ETIMEDOUT and ReasonTimeout, or EINTR and
// ReasonCanceled); errors.As(err, &ue) with ue an *UnreachableError finds
// this.
type UnreachableError struct {
	// Addr is the server's address.
	Addr string
	// For is how long the call retried.
	For time.Duration
	// Err is the last dial error.
	Err error
}

// Error implements error.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("proxyfsd at %s unreachable, retried for %s; last dial error: %v", e.Addr, roundDuration(e.For), e.Err)
}

// Unwrap returns the last dial error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// roundDuration rounds d for a message: to the second from 10s up, else
// to the tenth of a second.
func roundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// outage is the Client's record of an outage: since when dials fail, and
// the last dial error.
type outage struct {
	since time.Time // zero: no outage
	err   error
}

// dialFailed records a failed dial of op (its context ctx still live) and
// calls the outage hook if this begins an outage.
func (c *Client) dialFailed(ctx context.Context, op string, err error) {
	c.outMu.Lock()
	begins := c.out.since.IsZero()
	if begins {
		c.out.since = time.Now()
	}
	c.out.err = err
	c.outMu.Unlock()
	if !begins || c.o.outageHook == nil {
		return
	}
	var left time.Duration
	if dl, ok := ctx.Deadline(); ok {
		left = max(time.Until(dl), 0)
	}
	c.o.logger.Warn("proxyfs: server unreachable, retrying", "addr", c.ep().addr, "op", op, "err", err)
	c.o.outageHook(Outage{Addr: c.ep().addr, Op: op, Err: err, RetryFor: left})
}

// dialSucceeded ends the outage, if any, and calls the outage hook.
func (c *Client) dialSucceeded() {
	c.outMu.Lock()
	since := c.out.since
	c.out = outage{}
	c.outMu.Unlock()
	if since.IsZero() || c.o.outageHook == nil {
		return
	}
	c.o.outageHook(Outage{Addr: c.ep().addr, Reconnected: true, Down: time.Since(since)})
}

// unreachable returns err, a call's final error, with an UnreachableError
// as its cause when the call ran out of time or was canceled while the
// server was unreachable (its last dial failed). start is when the call
// began; the retries are counted from it or from the outage's beginning,
// whichever is later. The errno and reason stay those of err.
func (c *Client) unreachable(err error, start time.Time) error {
	var e *Error
	if err == nil || !errors.As(err, &e) || (e.Reason != ReasonTimeout && e.Reason != ReasonCanceled) {
		return err
	}
	if _, ok := e.cause.(*unreachableCause); ok {
		return err // done already (by a nested call)
	}
	c.outMu.Lock()
	out := c.out
	c.outMu.Unlock()
	if out.since.IsZero() {
		return err
	}
	ue := &UnreachableError{Addr: c.ep().addr, For: time.Since(maxTime(start, out.since)), Err: out.err}
	n := *e
	n.Msg = e.Msg + ": " + ue.Error()
	n.cause = &unreachableCause{ctxErr: e.cause, ue: ue}
	return &n
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// unreachableCause is the cause of an Error rewritten by unreachable:
// the context error, which errors.Is still matches (context.
// DeadlineExceeded), and the UnreachableError, which only Error.As finds:
// the dial error's errno (ECONNREFUSED) must not be taken for the call's.
type unreachableCause struct {
	ctxErr error
	ue     *UnreachableError
}

func (u *unreachableCause) Error() string { return u.ue.Error() }
func (u *unreachableCause) Unwrap() error { return u.ctxErr }
