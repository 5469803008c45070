package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// binConn is one binary-channel connection with many requests in flight:
// callers write whole frames under a writer lock (a one-slot semaphore, so
// that waiting for it honours the context), and one reader goroutine reads
// the replies and hands each to the caller waiting for its request id.
type binConn struct {
	nc       net.Conn
	wsem     chan struct{}
	wtimeout time.Duration

	mu      sync.Mutex
	pending map[uint64]*binCall
	nextID  uint64
	dead    chan struct{} // closed when the connection broke
	err     error
	// wasRefused: the server refused the connection (max_connections):
	// it answered one request with EAGAIN and closes it without running
	// the others.
	wasRefused bool
}

// binCall is one request in flight.
type binCall struct {
	buf  []byte // where the reply payload goes
	grow bool   // buf may be replaced by a larger one for the payload
	done chan struct{}
	hdr  wire.ReplyHeader
	err  error // the connection broke before the reply was complete
	// notRun: the connection broke because the server refused it, so the
	// request was not run (its outcome is not uncertain).
	notRun bool
}

func (c *Client) dialBinary(ctx context.Context) (*binConn, error) {
	nc, err := c.dialNet(ctx, true)
	if err != nil {
		return nil, err
	}
	b := &binConn{
		nc:       nc,
		wsem:     make(chan struct{}, 1),
		wtimeout: c.writeTimeout(),
		pending:  map[uint64]*binCall{},
		nextID:   1,
		dead:     make(chan struct{}),
	}
	// Register the reader under c.mu so that Close, which closes c.done
	// under c.mu before waiting for the readers, never races with Add.
	c.mu.Lock()
	if c.closed() {
		c.mu.Unlock()
		nc.Close()
		return nil, net.ErrClosed
	}
	c.readers.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.readers.Done()
		b.readLoop()
	}()
	return b, nil
}

func (b *binConn) broken() bool {
	select {
	case <-b.dead:
		return true
	default:
		return false
	}
}

func (b *binConn) close() { b.fail(net.ErrClosed) }

// refused reports that the server refused the connection (see
// wasRefused) and it is broken.
func (b *binConn) refused() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wasRefused && b.err != nil
}

// fail marks the connection broken, fails every call waiting on it and
// closes the socket (which ends the reader).
func (b *binConn) fail(err error) {
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return
	}
	b.err = err
	close(b.dead)
	for id, call := range b.pending {
		delete(b.pending, id)
		call.err = err
		call.notRun = b.wasRefused
		close(call.done)
	}
	b.mu.Unlock()
	_ = b.nc.Close()
}

func (b *binConn) readLoop() {
	br := bufio.NewReaderSize(b.nc, 64<<10)
	var hb [wire.ReplyHeaderSize]byte
	for {
		h, err := wire.ReadReply(br, &hb)
		if err != nil {
			b.fail(err)
			return
		}
		b.mu.Lock()
		call := b.pending[h.ID]
		delete(b.pending, h.ID)
		if h.Errno == uint32(syscall.EAGAIN) {
			// The binary channel answers EAGAIN only to refuse the
			// connection (PROTOCOL.md, max_connections).
			b.wasRefused = true
		}
		b.mu.Unlock()
		var n int
		if h.Opcode != wire.OpWrite && h.Errno == 0 {
			// Every successful reply but WRITE's carries Length bytes.
			n = int(h.Length)
		}
		if call == nil {
			// The caller gave up (its context ended): skip the payload.
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				b.fail(err)
				return
			}
			continue
		}
		if n > len(call.buf) && call.grow && n <= maxReplyPayload {
			call.buf = make([]byte, n)
		}
		if n > len(call.buf) {
			err := fmt.Errorf("%w: reply of %d bytes for a buffer of %d", wire.ErrBadFrame, n, len(call.buf))
			call.err = err
			close(call.done)
			b.fail(err)
			return
		}
		if n > 0 {
			if _, err := io.ReadFull(br, call.buf[:n]); err != nil {
				call.err = err
				close(call.done)
				b.fail(err)
				return
			}
		}
		call.hdr = h
		close(call.done)
	}
}

// do sends one request and waits for its reply. For a WRITE, payload
// follows the header; for a READ, the reply's payload is read into dst.
// It returns the reply header, a *connError if the connection broke, or a
// context error.
func (b *binConn) do(ctx context.Context, op string, h wire.RequestHeader, payload, dst []byte) (wire.ReplyHeader, error) {
	rh, _, err := b.doBuf(ctx, op, h, payload, dst, false)
	return rh, err
}

// maxReplyPayload bounds a reply payload the reader allocates for (a
// READDIR_PLUS batch of 4096 entries is under 1.7 MB).
const maxReplyPayload = 64 << 20

// doBuf is do that also returns the reply payload; with grow, a payload
// larger than dst gets a buffer of its own.
func (b *binConn) doBuf(ctx context.Context, op string, h wire.RequestHeader, payload, dst []byte, grow bool) (wire.ReplyHeader, []byte, error) {
	call := &binCall{buf: dst, grow: grow, done: make(chan struct{})}
	rh, err := b.send(ctx, op, h, payload, call)
	if err != nil || rh.Opcode == wire.OpWrite {
		return rh, nil, err
	}
	return rh, call.buf[:rh.Length], nil
}

// send sends one request for call and waits for its reply.
func (b *binConn) send(ctx context.Context, op string, h wire.RequestHeader, payload []byte, call *binCall) (wire.ReplyHeader, error) {
	if err := ctx.Err(); err != nil {
		return wire.ReplyHeader{}, ctxError(op, err)
	}
	b.mu.Lock()
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return wire.ReplyHeader{}, &connError{err: err}
	}
	h.ID = b.nextID
	b.nextID++
	b.pending[h.ID] = call
	b.mu.Unlock()

	select {
	case b.wsem <- struct{}{}:
	case <-ctx.Done():
		b.forget(h.ID)
		return wire.ReplyHeader{}, ctxError(op, ctx.Err())
	case <-b.dead:
		b.forget(h.ID)
		return wire.ReplyHeader{}, &connError{err: b.deadErr()}
	}
	hdr := wire.AppendRequest(make([]byte, 0, wire.RequestHeaderSize), h)
	_ = b.nc.SetWriteDeadline(time.Now().Add(b.wtimeout))
	bufs := net.Buffers{hdr}
	if len(payload) > 0 {
		bufs = append(bufs, payload)
	}
	_, err := bufs.WriteTo(b.nc)
	<-b.wsem
	if err != nil {
		// A failed write never delivers a complete frame, so the server
		// did not run it.
		b.fail(err)
		return wire.ReplyHeader{}, &connError{err: err}
	}

	select {
	case <-call.done:
	case <-ctx.Done():
		if b.forget(h.ID) {
			return wire.ReplyHeader{}, ctxError(op, ctx.Err())
		}
		// The reader owns the call and may be filling dst: wait for it,
		// but not for long.
		t := time.NewTimer(time.Second)
		select {
		case <-call.done:
			t.Stop()
		case <-t.C:
			b.fail(errors.New("read of a reply payload timed out"))
			<-call.done
		}
		return wire.ReplyHeader{}, ctxError(op, ctx.Err())
	}
	if call.err != nil {
		return wire.ReplyHeader{}, &connError{err: call.err, uncertain: !call.notRun}
	}
	return call.hdr, nil
}

// forget removes a call from the pending table; it reports whether the
// call was still there (so the reader will never touch it).
func (b *binConn) forget(id uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.pending[id]
	delete(b.pending, id)
	return ok
}

func (b *binConn) deadErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// binAttempt makes one binary-channel request on one of the pool's
// connections. It returns the reply header (errno 0), an *Error, or a
// *connError.
func (c *Client) binAttempt(ctx context.Context, op string, h wire.RequestHeader, payload, dst []byte) (wire.ReplyHeader, error) {
	rh, _, err := c.binAttemptBuf(ctx, op, h, payload, dst, false)
	return rh, err
}

// binAttemptBuf is binAttempt that also returns the reply payload (see
// binConn.doBuf).
func (c *Client) binAttemptBuf(ctx context.Context, op string, h wire.RequestHeader, payload, dst []byte, grow bool) (wire.ReplyHeader, []byte, error) {
	s := pickSlot(c.binSlots, &c.brr)
	bc, err := s.get(ctx, op)
	if err != nil {
		return wire.ReplyHeader{}, nil, err
	}
	rh, data, err := bc.doBuf(ctx, op, h, payload, dst, grow)
	if err != nil {
		var ce *connError
		if errors.As(err, &ce) {
			if c.closed() {
				return rh, nil, closedError(op)
			}
			s.invalidate(bc, ce.err)
		}
		return rh, nil, err
	}
	if rh.Errno != 0 {
		return rh, nil, fromBinary(op, rh.Errno, rh.Flags)
	}
	return rh, data, nil
}
