package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors that close a connection for its timeouts.
var (
	errHandshakeTimeout = errors.New("no complete request within handshake_timeout")
	errIdleTimeout      = errors.New("idle for idle_timeout")
)

// connReader is the read side of a connection. It enforces
// handshake_timeout (the first complete request must arrive in time) and
// idle_timeout (a connection with no request in flight that sends nothing
// for that long is closed) with one read deadline, moved only when it
// fires: requests cost no timer updates.
//
// The channel code calls started once it has read a complete request, and
// begin and end around each request it runs (end after the reply is
// written).
type connReader struct {
	nc   net.Conn
	raw  syscall.RawConn // for the last look before an idle close; nil if none
	idle time.Duration   // 0: never idle out
	t0   time.Time       // base of the monotonic stamps below
	// keep, if set (before the connection is served), tells that the
	// connection must not idle out: it holds a mount with open files,
	// which would die with the mount.
	keep func() bool

	handshook atomic.Bool
	inflight  atomic.Int64
	lastRecv  atomic.Int64 // stamp of the last bytes received
	idleSince atomic.Int64 // stamp of the last end
}

// newConnReader arms nc's handshake deadline.
func newConnReader(nc net.Conn, handshake, idle time.Duration) *connReader {
	r := &connReader{nc: nc, idle: idle, t0: time.Now()}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
		}
	}
	nc.SetReadDeadline(r.t0.Add(handshake))
	return r
}

func (r *connReader) now() int64 { return int64(time.Since(r.t0)) }

// started records that the connection has sent a complete request: the
// handshake deadline gives way to the idle one. It is called on the read
// loop, as Read is.
func (r *connReader) started() {
	if r.handshook.Load() {
		return
	}
	r.handshook.Store(true)
	var next time.Time // none
	if r.idle > 0 {
		next = time.Now().Add(r.idle)
	}
	r.nc.SetReadDeadline(next)
}

// begin and end bracket a request in flight.
func (r *connReader) begin() { r.inflight.Add(1) }

func (r *connReader) end() {
	// idleSince first: whoever sees inflight at 0 sees it.
	r.idleSince.Store(r.now())
	r.inflight.Add(-1)
}

// Read implements io.Reader. It returns errHandshakeTimeout or
// errIdleTimeout when the connection is to be closed for a timeout, and
// never a timeout for a deadline that fired early.
func (r *connReader) Read(p []byte) (int, error) {
	for {
		n, err := r.nc.Read(p)
		if n > 0 {
			r.lastRecv.Store(r.now())
		}
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if !r.handshook.Load() {
			return 0, errHandshakeTimeout
		}
		next, expired := r.nextDeadline()
		if expired {
			return r.lastLook(p)
		}
		if err := r.nc.SetReadDeadline(next); err != nil {
			return 0, err
		}
	}
}

// nextDeadline returns when the connection may have been idle for
// idle_timeout, or expired if it has been.
func (r *connReader) nextDeadline() (next time.Time, expired bool) {
	if r.idle <= 0 {
		return time.Time{}, false
	}
	now := r.now()
	if r.inflight.Load() > 0 {
		return r.t0.Add(time.Duration(now) + r.idle), false
	}
	last := max(r.lastRecv.Load(), r.idleSince.Load())
	if now-last < int64(r.idle) {
		return r.t0.Add(time.Duration(last) + r.idle), false
	}
	if r.keep != nil && r.keep() {
		return r.t0.Add(time.Duration(now) + r.idle), false
	}
	return time.Time{}, true
}

// lastLook reads what arrived just as the idle deadline fired (Go does not
// read once a deadline has passed), so that a request sent at that moment
// is served rather than lost with the connection; errIdleTimeout if there
// is nothing.
func (r *connReader) lastLook(p []byte) (int, error) {
	if r.raw == nil {
		return 0, errIdleTimeout
	}
	if err := r.nc.SetReadDeadline(time.Time{}); err != nil {
		return 0, err
	}
	var (
		n    int
		rerr error
	)
	err := r.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				return true // one attempt: never wait
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, errIdleTimeout
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	now := r.now()
	r.lastRecv.Store(now)
	if err := r.nc.SetReadDeadline(r.t0.Add(time.Duration(now) + r.idle)); err != nil {
		return 0, err
	}
	return n, nil
}

// timeoutErr reports whether err closed a connection for one of its
// timeouts (a normal end, not worth more than a debug line).
func timeoutErr(err error) bool {
	return errors.Is(err, errHandshakeTimeout) || errors.Is(err, errIdleTimeout)
}

// writeDeadline keeps a connection's write deadline about idle_timeout
// ahead (at least three quarters of it), so that a reply the peer does not
// take for that long closes the connection instead of holding its
// goroutines and buffers forever. The deadline moves at most once a second
// (or every quarter of idle_timeout if that is shorter), not for every
// reply. Its methods are called with the connection's write lock held.
type writeDeadline struct {
	nc   net.Conn
	idle time.Duration
	set  time.Time // when the deadline was last moved
}

// arm is called before each reply is written.
func (w *writeDeadline) arm() {
	if w.idle <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(w.set) < min(time.Second, w.idle/4) {
		return
	}
	w.nc.SetWriteDeadline(now.Add(w.idle))
	w.set = now
}

// peerKey identifies the peer of a connection for max_connections_per_peer:
// its IP address on TCP (for IPv6, its /64 network: one host commonly has
// a whole /64), its user id on a Unix socket.
func peerKey(nc net.Conn) string {
	switch a := nc.RemoteAddr().(type) {
	case *net.TCPAddr:
		if a.IP.To4() == nil && len(a.IP) == net.IPv6len {
			return "ip " + a.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
		}
		return "ip " + a.IP.String()
	}
	if uc, ok := nc.(*net.UnixConn); ok {
		if uid, ok := peerUID(uc); ok {
			return fmt.Sprintf("uid %d", uid)
		}
		return "unix"
	}
	return nc.LocalAddr().Network()
}
