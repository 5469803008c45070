package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Error is the error every Client and Mount method returns. Errno is the
// errno to report; errors.Is(err, syscall.ENOENT) and friends work because
// Unwrap returns it.
type Error struct {
	// Op is the operation that failed, usually the JSON-RPC method name
	// ("lookup", "read", ...).
	Op string
	// Errno is the Linux errno the operation failed with.
	Errno syscall.Errno
	// Reason is the server's machine-readable reason, if any
	// (wire.ReasonBadMount; for the lock calls wire.ReasonGrace and
	// wire.ReasonNoGrace), or one of the client's own reasons:
	// ReasonTimeout, ReasonCanceled, ReasonClosed, ReasonConnection,
	// ReasonProtocol.
	Reason string
	// Msg is a human-readable message (the server's, or the client's).
	Msg string

	cause error // optional underlying cause, matched by Is
}

// Client-side reasons in Error.Reason.
const (
	// ReasonTimeout means the call's context expired (or the call timeout
	// elapsed) before the call completed; Errno is ETIMEDOUT.
	ReasonTimeout = "timeout"
	// ReasonCanceled means the call's context was canceled; Errno is
	// EINTR.
	ReasonCanceled = "canceled"
	// ReasonClosed means the Client was closed; Errno is EBADF.
	ReasonClosed = "closed"
	// ReasonConnection means Dial could not connect to the server.
	ReasonConnection = "connection"
	// ReasonProtocol means the server sent something the client could not
	// understand; Errno is EIO.
	ReasonProtocol = "protocol"
)

// ErrClosed is matched (errors.Is) by the errors of calls made on a closed
// Client.
var ErrClosed = errors.New("proxyfs client: closed")

// Error implements error.
func (e *Error) Error() string {
	s := "proxyfs: " + e.Op + ": " + wire.ErrnoName(e.Errno)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap returns e.Errno, so that errors.Is(err, syscall.EXXX) works.
func (e *Error) Unwrap() error { return e.Errno }

// Is reports whether e's underlying cause (a context error, ErrClosed)
// matches target; errors.Is(err, context.DeadlineExceeded) is true for a
// call that timed out.
func (e *Error) Is(target error) bool {
	return e.cause != nil && errors.Is(e.cause, target)
}

// As sets target, an **UnreachableError, to the UnreachableError of a
// call that ended while the server was unreachable. It matches nothing
// else: the errno of the dial error is not the call's.
func (e *Error) As(target any) bool {
	t, ok := target.(**UnreachableError)
	if !ok {
		return false
	}
	if u, ok := e.cause.(*unreachableCause); ok {
		*t = u.ue
		return true
	}
	return false
}

// IsBadMount reports whether err is the server's "bad or stale mount"
// error (EINVAL with reason bad_mount).
func IsBadMount(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == wire.ReasonBadMount
}

// reasonOf returns the Reason of err if it is an *Error, else "".
func reasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// fromRPC converts a JSON-RPC error reply into an *Error.
func fromRPC(op string, re *jsonrpc2.Error) *Error {
	e := &Error{Op: op, Errno: syscall.EIO, Msg: re.Message}
	var d wire.ErrorData
	if re.Data != nil && json.Unmarshal(*re.Data, &d) == nil && d.Errno > 0 {
		e.Errno = syscall.Errno(d.Errno)
		e.Reason = d.Reason
		return e
	}
	// No usable data: fall back on the code.
	switch {
	case re.Code > 0 && re.Code < 4096:
		e.Errno = syscall.Errno(re.Code)
	case re.Code == jsonrpc2.CodeMethodNotFound:
		e.Errno = syscall.ENOSYS
	case re.Code == jsonrpc2.CodeParseError, re.Code == jsonrpc2.CodeInvalidRequest,
		re.Code == jsonrpc2.CodeInvalidParams:
		e.Errno = syscall.EINVAL
	}
	return e
}

// fromBinary converts a binary-channel reply errno into an *Error.
func fromBinary(op string, errno uint32, flags uint32) *Error {
	e := &Error{Op: op, Errno: syscall.Errno(errno)}
	if flags&wire.ReplyFlagBadMount != 0 {
		e.Reason = wire.ReasonBadMount
	}
	e.Msg = e.Errno.Error()
	return e
}

// ctxError converts a context error into an *Error.
func ctxError(op string, err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Op: op, Errno: syscall.ETIMEDOUT, Reason: ReasonTimeout, Msg: "call timed out", cause: err}
	}
	return &Error{Op: op, Errno: syscall.EINTR, Reason: ReasonCanceled, Msg: "call canceled", cause: err}
}

// closedError is the error of a call on a closed client.
func closedError(op string) *Error {
	return &Error{Op: op, Errno: syscall.EBADF, Reason: ReasonClosed, Msg: "client closed", cause: ErrClosed}
}

// protocolError is the error for a reply the client cannot decode.
func protocolError(op string, err error) *Error {
	return &Error{Op: op, Errno: syscall.EIO, Reason: ReasonProtocol, Msg: fmt.Sprint(err), cause: err}
}

// toEBADF maps ENOENT to EBADF (read, write and flush).
func toEBADF(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Errno == syscall.ENOENT {
		c := *e
		c.Errno = syscall.EBADF
		// Say what the mapping means rather than the server's "no such
		// file or directory" beside EBADF.
		c.Msg = "the file is gone (removed, and open nowhere); the server said: " + e.Msg
		return &c
	}
	return err
}
