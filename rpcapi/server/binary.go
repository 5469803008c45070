package server

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

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/metrics"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// binConn is one binary data channel connection.
type binConn struct {
	s    *Server
	nc   net.Conn
	peer string

	wmu sync.Mutex // serializes reply frames
	wg  sync.WaitGroup
	sem chan struct{} // one token per request in flight
}

// serveBinary serves a binary data channel until it closes. Requests run
// concurrently, at most max_inflight_per_conn at a time: at the limit the
// connection is not read until a reply has been sent (back-pressure).
// Replies are written whole, in completion order.
func (s *Server) serveBinary(nc net.Conn, br *bufio.Reader) {
	c := &binConn{s: s, nc: nc, peer: remote(nc), sem: make(chan struct{}, s.cfg.MaxInflightPerConn)}
	defer s.metrics.ConnOpened(metrics.ChannelBinary)()
	s.log.Debug("binary connection", zap.String("remote", c.peer))
	defer c.wg.Wait() // every reply is written (or fails) before nc closes
	var hdr [wire.RequestHeaderSize]byte
	for {
		c.sem <- struct{}{}
		h, err := wire.ReadRequest(br, &hdr)
		if err != nil {
			<-c.sem
			c.readErr(err)
			return
		}
		if h.Length > uint32(s.cfg.MaxIOBytes) {
			// Checked before anything is allocated.
			err := fmt.Errorf("binary %s of %d bytes exceeds max_io_size %d: %w", opName(h.Opcode), h.Length, s.cfg.MaxIOBytes, syscall.EINVAL)
			if h.Opcode == wire.OpRead {
				c.reply(h, s.classify("read", err), 0, nil)
				<-c.sem
				continue
			}
			// The payload cannot be skipped safely: answer, then close.
			c.wg.Wait()
			c.reply(h, s.classify("write", err), 0, nil)
			s.log.Info("closing binary connection: oversized write", zap.String("remote", c.peer), zap.Uint32("length", h.Length))
			return
		}
		var payload []byte
		if h.Opcode == wire.OpWrite {
			payload = make([]byte, h.Length)
			if _, err := io.ReadFull(br, payload); err != nil {
				<-c.sem
				c.readErr(err)
				return
			}
		}
		if !s.inflight.acquire() {
			// Draining for shutdown: stop reading; the connection is
			// closed once in-flight calls are done.
			<-c.sem
			return
		}
		c.wg.Add(1)
		go c.run(h, payload)
	}
}

func (c *binConn) readErr(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, wire.ErrBadFrame):
		c.s.log.Info("closing binary connection: broken stream", zap.String("remote", c.peer), zap.Error(err))
	default:
		c.s.log.Debug("binary connection read", zap.String("remote", c.peer), zap.Error(err))
	}
}

func opName(op uint16) string {
	if op == wire.OpRead {
		return "read"
	}
	return "write"
}

// run executes one request and sends its reply.
func (c *binConn) run(h wire.RequestHeader, payload []byte) {
	defer c.wg.Done()
	defer func() { <-c.sem }()
	defer c.s.inflight.release()
	start := time.Now()
	done := c.s.metrics.Request(metrics.ChannelBinary, opName(h.Opcode))
	n, data, err := c.s.binaryOp(h, payload)
	var we wireErr
	errno := ""
	if err != nil {
		we = c.s.classify("binary "+opName(h.Opcode), err)
		errno = wire.ErrnoName(we.errno)
		n, data = 0, nil
	} else if h.Opcode == wire.OpRead {
		c.s.metrics.DataRead(metrics.ChannelBinary, int(n))
	} else {
		c.s.metrics.DataWritten(metrics.ChannelBinary, int(n))
	}
	c.reply(h, we, n, data)
	done(errno)
	if ce := c.s.log.Check(zap.DebugLevel, "call"); ce != nil {
		f := []zap.Field{zap.String("method", "binary "+opName(h.Opcode)), zap.Uint64("mount", h.MountID),
			zap.Uint64("inode", h.Inode), zap.Uint64("offset", h.Offset), zap.Uint32("length", h.Length),
			zap.Duration("took", time.Since(start))}
		if errno != "" {
			f = append(f, zap.String("errno", errno))
		}
		ce.Write(f...)
	}
}

// binaryOp runs a READ or WRITE; it never panics.
func (s *Server) binaryOp(h wire.RequestHeader, payload []byte) (n uint32, data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in binary handler", zap.Any("panic", r), zap.Stack("stack"))
			n, data, err = 0, nil, fmt.Errorf("internal error: %w", syscall.EIO)
		}
	}()
	ctx := context.Background()
	e, err := s.env(h.MountID, h.Opcode == wire.OpWrite)
	if err != nil {
		return 0, nil, err
	}
	if h.Opcode == wire.OpRead {
		buf := make([]byte, h.Length)
		m, err := e.fs.Read(ctx, inode.Ino(h.Inode), buf, h.Offset)
		if err != nil {
			return 0, nil, err
		}
		return uint32(m), buf[:m], nil
	}
	if err := e.fs.Write(ctx, inode.Ino(h.Inode), payload, h.Offset); err != nil {
		return 0, nil, err
	}
	return uint32(len(payload)), nil, nil
}

// reply writes one reply frame; a failed write closes the connection
// (which ends the read loop).
func (c *binConn) reply(h wire.RequestHeader, we wireErr, n uint32, data []byte) {
	rh := wire.ReplyHeader{Opcode: h.Opcode, ID: h.ID, Length: n}
	if we.errno != 0 {
		rh.Errno = uint32(we.errno)
		if we.badMount {
			rh.Flags = wire.ReplyFlagBadMount
		}
	}
	hdr := wire.AppendReply(make([]byte, 0, wire.ReplyHeaderSize), rh)
	bufs := net.Buffers{hdr}
	if len(data) > 0 {
		bufs = append(bufs, data)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := bufs.WriteTo(c.nc); err != nil {
		c.s.log.Debug("binary reply not sent", zap.String("remote", c.peer), zap.Error(err))
		c.nc.Close()
	}
}
