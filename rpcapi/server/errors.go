package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"

	"github.com/sourcegraph/jsonrpc2"
	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/lock"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// protoError is a JSON-RPC protocol error: a reserved code (-32700 parse
// error, -32600 invalid request, -32601 method not found, -32602 invalid
// params) and the errno a client reports for it.
type protoError struct {
	code  int64
	errno syscall.Errno
	msg   string
}

func (e *protoError) Error() string { return e.msg }

// Unwrap returns the errno, so errors.Is(err, syscall.EINVAL) holds for
// invalid params.
func (e *protoError) Unwrap() error { return e.errno }

func errParams(format string, args ...any) error {
	return &protoError{code: jsonrpc2.CodeInvalidParams, errno: syscall.EINVAL, msg: "invalid params: " + fmt.Sprintf(format, args...)}
}

func errMethod(method string) error {
	return &protoError{code: jsonrpc2.CodeMethodNotFound, errno: syscall.ENOSYS, msg: fmt.Sprintf("method %q not found", method)}
}

// reasonError gives an error a data.reason of its own.
type reasonError struct {
	err    error
	reason string
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// wireErr is an error as the wire shows it.
type wireErr struct {
	code     int64         // JSON-RPC error code
	errno    syscall.Errno // never 0
	badMount bool
	reason   string // data.reason besides bad_mount (the lock calls')
	msg      string
}

// classify turns any error into what the wire reports. It is the one
// place where errors are mapped: protocol errors keep their code; a
// bad-mount error is EINVAL with the bad_mount reason; a syscall.Errno
// anywhere in the chain is reported as itself; everything else is EIO and
// logged, because it means a bug or a failing engine.
func (s *Server) classify(op string, err error) wireErr {
	var pe *protoError
	var errno syscall.Errno
	switch {
	case errors.As(err, &pe):
		return wireErr{code: pe.code, errno: pe.errno, msg: pe.msg}
	case mount.IsBadMount(err):
		return wireErr{code: int64(syscall.EINVAL), errno: syscall.EINVAL, badMount: true, msg: err.Error()}
	case errors.As(err, &errno) && errno != 0:
		if errno == syscall.EIO {
			s.log.Warn("I/O error", zap.String("op", op), zap.Error(err))
		}
		reason := lock.Reason(err)
		var re *reasonError
		if errors.As(err, &re) {
			reason = re.reason
		}
		return wireErr{code: int64(errno), errno: errno, reason: reason, msg: err.Error()}
	default:
		s.log.Error("unexpected error, reported as EIO", zap.String("op", op), zap.Error(err))
		return wireErr{code: int64(syscall.EIO), errno: syscall.EIO, msg: fmt.Sprintf("%v: %v", err, syscall.EIO)}
	}
}

// data is the error's "data" member.
func (w wireErr) data() wire.ErrorData {
	d := wire.ErrorData{Errno: int(w.errno), Name: wire.ErrnoName(w.errno)}
	switch {
	case w.badMount:
		d.Reason = wire.ReasonBadMount
	case w.reason != "":
		d.Reason = w.reason
	}
	return d
}

// jsonError is w as a JSON-RPC error object.
func (w wireErr) jsonError() *jsonrpc2.Error {
	e := &jsonrpc2.Error{Code: w.code, Message: w.msg}
	b, _ := json.Marshal(w.data()) // cannot fail
	raw := json.RawMessage(b)
	e.Data = &raw
	return e
}
