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
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// binConn is one binary data channel connection.
type binConn struct {
	s    *Server
	nc   net.Conn
	peer string
	hd   *mount.Holder // the connection's mounts
	auth *connAuth     // who the connection is

	cr  *connReader
	wmu sync.Mutex // serializes reply frames
	wd  writeDeadline
	wg  sync.WaitGroup
	sem chan struct{} // one token per request in flight

	// raw is the socket for sendfile(2), nil when nc is not an OS socket
	// (then large reads are copied through a buffer like small ones).
	raw syscall.RawConn
}

// sendfileMin is the smallest READ sent from the data file by sendfile(2);
// smaller ones cost less through a buffer (one writev for header and data).
const sendfileMin = 64 << 10

// serveBinary serves a binary data channel until it closes. Requests run
// concurrently, at most max_inflight_per_conn at a time: at the limit the
// connection is not read until a reply has been sent (back-pressure).
// Replies are written whole, in completion order.
func (s *Server) serveBinary(nc net.Conn, br *bufio.Reader, cr *connReader, a *connAuth) {
	c := &binConn{s: s, nc: nc, peer: remote(nc), hd: s.mounts.NewHolder(), auth: a, cr: cr, sem: make(chan struct{}, s.cfg.MaxInflightPerConn),
		wd: writeDeadline{nc: nc, idle: s.cfg.IdleTimeout}}
	defer c.hd.Release() // after c.wg.Wait below: every call has finished
	cr.keep = s.holdsOpenFiles(c.hd)
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
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
		// Lengths are checked before anything is allocated.
		if fatal, err := s.checkLength(h); err != nil {
			if !fatal {
				cr.started()
				c.reply(h, s.classify(wire.OpName(h.Opcode), err), 0, nil, nil)
				<-c.sem
				continue
			}
			// The payload cannot be skipped safely: answer, then close.
			c.wg.Wait()
			c.reply(h, s.classify(wire.OpName(h.Opcode), err), 0, nil, nil)
			s.log.Info("closing binary connection: oversized payload", zap.String("remote", c.peer),
				zap.String("op", wire.OpName(h.Opcode)), zap.Uint32("length", h.Length))
			return
		}
		var payload []byte
		if wire.HasPayload(h.Opcode) {
			payload = getBuf(int(h.Length))
			if _, err := io.ReadFull(br, payload); err != nil {
				putBuf(payload)
				<-c.sem
				c.readErr(err)
				return
			}
		}
		cr.started()
		if !s.inflight.acquire() {
			// Draining for shutdown: stop reading; the connection is
			// closed once in-flight calls are done.
			putBuf(payload)
			<-c.sem
			return
		}
		cr.begin()
		c.wg.Add(1)
		if inlineOp(h) && br.Buffered() == 0 {
			// Nothing else is waiting on this connection: a short
			// metadata call runs on the read loop, which saves a
			// goroutine hand-off (and often a thread wake-up) per call.
			c.run(h, payload)
		} else {
			go c.run(h, payload)
		}
	}
}

// inlineOp reports whether a request is short work (no fsync, no large
// transfer) that may run on the connection's read loop.
func inlineOp(h wire.RequestHeader) bool {
	switch h.Opcode {
	case wire.OpLookup, wire.OpGetStat, wire.OpCreate, wire.OpUnlink, wire.OpReaddirPlus, wire.OpLookupCI,
		wire.OpReaddirPlusXattr, wire.OpOpen, wire.OpClose, wire.OpLock, wire.OpSetattr,
		wire.OpGetXattr, wire.OpSetXattr, wire.OpListXattr, wire.OpCreateOpen:
		return true
	case wire.OpRead, wire.OpWrite:
		return h.Length <= inlineIOMax
	}
	return false
}

// inlineIOMax is the largest READ or WRITE run on the read loop.
const inlineIOMax = 64 << 10

// checkLength checks a request's length field; fatal means the payload
// that follows cannot be skipped and the connection must close.
func (s *Server) checkLength(h wire.RequestHeader) (fatal bool, err error) {
	switch h.Opcode {
	case wire.OpRead, wire.OpWrite:
		if h.Length > uint32(s.cfg.MaxIOBytes) {
			return h.Opcode == wire.OpWrite,
				fmt.Errorf("binary %s of %d bytes exceeds max_io_size %d: %w", wire.OpName(h.Opcode), h.Length, s.cfg.MaxIOBytes, syscall.EINVAL)
		}
	case wire.OpSetXattr:
		if h.Length > wire.MaxSetXattrPayload {
			return true, fmt.Errorf("binary set_xattr: payload of %d bytes: %w", h.Length, syscall.E2BIG)
		}
	case wire.OpLookup, wire.OpCreate, wire.OpUnlink, wire.OpLookupCI, wire.OpAuth,
		wire.OpReaddirPlusXattr, wire.OpLock, wire.OpSetattr, wire.OpGetXattr, wire.OpCreateOpen:
		if h.Length > wire.MaxNamePayload {
			return true, fmt.Errorf("binary %s: name of %d bytes: %w", wire.OpName(h.Opcode), h.Length, syscall.ENAMETOOLONG)
		}
	}
	return false, nil
}

func (c *binConn) readErr(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, errHandshakeTimeout):
		c.s.log.Info("closing binary connection: no complete request within handshake_timeout", zap.String("remote", c.peer))
	case errors.Is(err, errIdleTimeout):
		c.s.log.Debug("closing idle binary connection", zap.String("remote", c.peer))
	case errors.Is(err, wire.ErrBadFrame):
		c.s.log.Info("closing binary connection: broken stream", zap.String("remote", c.peer), zap.Error(err))
	default:
		c.s.log.Debug("binary connection read", zap.String("remote", c.peer), zap.Error(err))
	}
}

// run executes one request and sends its reply.
func (c *binConn) run(h wire.RequestHeader, payload []byte) {
	defer c.wg.Done()
	defer func() { <-c.sem }()
	defer c.cr.end()
	defer c.s.inflight.release()
	start := time.Now()
	op := wire.OpName(h.Opcode)
	done := c.s.metrics.Request(metrics.ChannelBinary, op)
	var (
		data, pooled []byte
		span         inode.Span
		spanned      bool
		err          error
	)
	if h.Opcode == wire.OpRead && h.Length >= sendfileMin && c.raw != nil {
		span, err = c.s.readSpan(c.auth, c.hd, h)
		spanned = err == nil
		if errors.Is(err, errors.ErrUnsupported) {
			err = nil // an engine without data files: through a buffer
		}
	}
	if !spanned && err == nil {
		data, pooled, err = c.s.binaryOp(c.auth, c.hd, h, payload)
	}
	var name string // for the access log: the name a metadata call carries
	if c.s.accessOn() {
		name = binaryAccessName(h.Opcode, payload)
	}
	putBuf(payload)
	var we wireErr
	errno := ""
	n := uint32(len(data))
	switch {
	case err != nil:
		we = c.s.classify("binary "+op, err)
		errno = wire.ErrnoName(we.errno)
		n, data = 0, nil
	case spanned:
		n = uint32(span.N)
		c.s.metrics.DataRead(metrics.ChannelBinary, span.N)
	case h.Opcode == wire.OpRead:
		c.s.metrics.DataRead(metrics.ChannelBinary, len(data))
	case h.Opcode == wire.OpWrite:
		n = h.Length // WRITE replies carry the bytes written and no payload
		c.s.metrics.DataWritten(metrics.ChannelBinary, int(n))
	}
	if spanned {
		c.replySpan(h, &span)
		span.Release()
	} else {
		c.reply(h, we, n, data, pooled)
	}
	done(errno)
	if ce := c.s.accessCheck(); ce != nil {
		f := []zap.Field{zap.String("method", "binary "+op), zap.String("peer", c.peer),
			zap.String("principal", c.auth.get().desc), zap.Uint64("mount", h.MountID)}
		f = append(f, c.s.identityFields(h.MountID)...)
		if h.As != nil {
			f = append(f, zap.Uint32("as_uid", h.As.UID), zap.Uint32("as_gid", h.As.GID))
		}
		f = append(f, zap.Uint64("inode", h.Inode))
		if h.Fh != 0 {
			f = append(f, zap.Uint64("fh", h.Fh))
		}
		if name != "" {
			f = append(f, zap.String("name", name))
		}
		f = append(f, zap.Uint64("offset", h.Offset), zap.Uint32("length", h.Length), zap.Duration("took", time.Since(start)))
		if errno != "" {
			f = append(f, zap.String("errno", errno))
		}
		ce.Write(f...)
	}
}

// readSpan looks up where a binary READ's bytes are, for replySpan; it
// never panics. An error wrapping errors.ErrUnsupported means the volume's
// engine has no data files.
func (s *Server) readSpan(a *connAuth, hd *mount.Holder, h wire.RequestHeader) (span inode.Span, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in binary handler", zap.Any("panic", r), zap.Stack("stack"))
			span.Release()
			span, err = inode.Span{}, fmt.Errorf("internal error: %w", syscall.EIO)
		}
	}()
	e, err := s.env(a.get(), hd, h.MountID, false, h.As)
	if err != nil {
		return inode.Span{}, err
	}
	if err := checkFhFlag(h); err != nil {
		return inode.Span{}, err
	}
	c, err := s.through(e, "binary read", inode.Ino(h.Inode), h.Fh, inode.MayRead)
	if err != nil {
		return inode.Span{}, err
	}
	return e.fs.ReadSpan(context.Background(), c, inode.Ino(h.Inode), h.Offset, int(h.Length))
}

// binaryOp runs one binary request; it never panics. It returns the reply
// payload, and the pooled buffer backing it (to give back once sent).
func (s *Server) binaryOp(a *connAuth, hd *mount.Holder, h wire.RequestHeader, payload []byte) (data, pooled []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in binary handler", zap.Any("panic", r), zap.Stack("stack"))
			data, pooled, err = nil, nil, fmt.Errorf("internal error: %w", syscall.EIO)
		}
	}()
	ctx := context.Background()
	if h.Opcode == wire.OpAuth {
		_, err := s.authenticate(a, string(payload))
		return nil, nil, err
	}
	// The method table decides the call's policy, as for its JSON form.
	m, ok := methods[wire.OpName(h.Opcode)]
	if !ok {
		return nil, nil, fmt.Errorf("binary opcode %d: %w", h.Opcode, syscall.ENOSYS)
	}
	e, err := s.env(a.get(), hd, h.MountID, m.mutates, h.As)
	if err != nil {
		return nil, nil, err
	}
	ino := inode.Ino(h.Inode)
	// A handle (RequestFlagHandle) decides the access of READ and WRITE
	// and is checked by FLUSH; no other opcode takes one.
	var need inode.Access
	switch h.Opcode {
	case wire.OpRead:
		need = inode.MayRead
	case wire.OpWrite:
		need = inode.MayWrite
	case wire.OpFlush:
	default:
		if h.Flags&wire.RequestFlagHandle != 0 {
			return nil, nil, fmt.Errorf("binary %s: no handle is taken: %w", wire.OpName(h.Opcode), syscall.EINVAL)
		}
	}
	if err := checkFhFlag(h); err != nil {
		return nil, nil, err
	}
	if data, ok, err := s.binaryMeta(ctx, e, h, payload); ok {
		return data, nil, err
	}
	caller, err := s.through(e, "binary "+wire.OpName(h.Opcode), ino, h.Fh, need)
	if err != nil {
		return nil, nil, err
	}
	statReply := func(a inode.Attr, err error) ([]byte, []byte, error) {
		if err != nil {
			return nil, nil, err
		}
		st := e.stat(a)
		return wire.AppendStatRecord(make([]byte, 0, wire.StatExtSize), &st, h.Flags), nil, nil
	}
	switch h.Opcode {
	case wire.OpRead:
		buf := getBuf(int(h.Length))
		m, err := e.fs.Read(ctx, caller, ino, buf, h.Offset)
		if err != nil {
			putBuf(buf)
			return nil, nil, err
		}
		return buf[:m], buf, nil
	case wire.OpWrite:
		return nil, nil, e.fs.Write(ctx, caller, ino, payload, h.Offset)
	case wire.OpLookup:
		child, err := e.fs.Lookup(ctx, e.caller(), ino, string(payload))
		if err != nil {
			return nil, nil, err
		}
		return statReply(e.fs.GetAttr(ctx, child))
	case wire.OpGetStat:
		return statReply(e.fs.GetAttr(ctx, ino))
	case wire.OpCreate:
		if err := checkMode(wire.MethodCreate, h.Offset); err != nil {
			return nil, nil, err
		}
		return statReply(e.fs.Create(ctx, e.caller(), ino, string(payload), uint32(h.Offset)))
	case wire.OpUnlink:
		return nil, nil, e.fs.Unlink(ctx, e.caller(), ino, string(payload))
	case wire.OpFlush:
		return nil, nil, e.fs.Flush(ctx, ino)
	case wire.OpLookupCI:
		return e.binLookupCI(ctx, ino, string(payload), h.Flags)
	case wire.OpReaddirPlus:
		ents, eof, err := e.fs.ReadDir(ctx, e.caller(), ino, int64(h.Offset), readdirBatch(uint64(h.Length)), true)
		if err != nil {
			return nil, nil, err
		}
		b := make([]byte, 1, 1+len(ents)*(18+32+wire.StatRecordSize(h.Flags)))
		if eof {
			b[0] = 1
		}
		for _, d := range ents {
			st := e.stat(d.Attr)
			b = wire.AppendDirEntryRecord(b, &wire.DirEntry{Name: d.Name, Inode: uint64(d.Ino), Type: d.Type, Cookie: d.Cookie, Stat: &st}, h.Flags)
		}
		return b, nil, nil
	}
	return nil, nil, fmt.Errorf("binary opcode %d: %w", h.Opcode, syscall.ENOSYS)
}

// reply writes one reply frame; a failed write closes the connection
// (which ends the read loop). pooled, if not nil, goes back to the pool
// once data is written.
func (c *binConn) reply(h wire.RequestHeader, we wireErr, n uint32, data, pooled []byte) {
	defer putBuf(pooled)
	rh := wire.ReplyHeader{Opcode: h.Opcode, ID: h.ID, Length: n}
	if we.errno != 0 {
		rh.Errno = uint32(we.errno)
		if we.badMount {
			rh.Flags = wire.ReplyFlagBadMount
		}
	}
	var hdr [wire.ReplyHeaderSize]byte
	bufs := net.Buffers{wire.AppendReply(hdr[:0], rh)}
	if len(data) > 0 {
		bufs = append(bufs, data)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wd.arm()
	if _, err := bufs.WriteTo(c.nc); err != nil {
		c.s.log.Debug("binary reply not sent", zap.String("remote", c.peer), zap.Error(err))
		c.nc.Close()
	}
}

// replySpan writes a successful READ reply whose data the kernel copies
// from the data file to the socket (sendfile(2)): no read into a buffer,
// no copy out of it. A failed write closes the connection.
func (c *binConn) replySpan(h wire.RequestHeader, sp *inode.Span) {
	var hdr [wire.ReplyHeaderSize]byte
	rh := wire.ReplyHeader{Opcode: h.Opcode, ID: h.ID, Length: uint32(sp.N)}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wd.arm()
	if err := c.writeSpan(wire.AppendReply(hdr[:0], rh), sp); err != nil {
		c.s.log.Debug("binary reply not sent", zap.String("remote", c.peer), zap.Error(err))
		c.nc.Close()
	}
}

// zeros is sent for the part of a span past its file's end.
var zeros [64 << 10]byte

// writeSpan writes hdr and then the span's N bytes: sendfile from the file
// while it has data, zeros after its end (a sparse tail, or a truncate
// that raced with the read). Called with c.wmu held.
func (c *binConn) writeSpan(hdr []byte, sp *inode.Span) error {
	if _, err := c.nc.Write(hdr); err != nil {
		return err
	}
	sent := 0
	if sp.File != nil {
		fc, err := sp.File.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		cerr := fc.Control(func(src uintptr) {
			off := sp.Off
			werr := c.raw.Write(func(dst uintptr) bool {
				for sent < sp.N {
					m, err := syscall.Sendfile(int(dst), int(src), &off, sp.N-sent)
					if m > 0 {
						sent += m
						continue
					}
					switch err {
					case nil:
						return true // the file ends here
					case syscall.EINTR:
						continue
					case syscall.EAGAIN:
						return false // wait until the socket takes more
					}
					serr = fmt.Errorf("sendfile: %w", err)
					return true
				}
				return true
			})
			if serr == nil {
				serr = werr
			}
		})
		if err := errors.Join(cerr, serr); err != nil {
			return err
		}
	}
	for sent < sp.N {
		k := min(len(zeros), sp.N-sent)
		if _, err := c.nc.Write(zeros[:k]); err != nil {
			return err
		}
		sent += k
	}
	return nil
}

// Buffers for file data come from pools by power-of-two size class, so a
// stream of 1 MiB reads and writes does not allocate (and zero) 1 MiB per
// request.
const (
	minBufClass = 12 // 4 KiB
	maxBufClass = 24 // 16 MiB
)

var bufPools [maxBufClass + 1]sync.Pool

func bufClass(n int) int {
	c := minBufClass
	for 1<<c < n {
		c++
	}
	return c
}

// getBuf returns a buffer of length n (contents undefined).
func getBuf(n int) []byte {
	if n == 0 {
		return nil
	}
	c := bufClass(n)
	if c > maxBufClass {
		return make([]byte, n)
	}
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<c)
}

// putBuf gives b, from getBuf, back to its pool.
func putBuf(b []byte) {
	c := cap(b)
	if c < 1<<minBufClass || c&(c-1) != 0 {
		return
	}
	k := bufClass(c)
	if k > maxBufClass {
		return
	}
	b = b[:0]
	bufPools[k].Put(&b)
}

// checkFhFlag returns EBADF for a request whose handle block
// (RequestFlagHandle) holds 0, which is never a handle.
func checkFhFlag(h wire.RequestHeader) error {
	if h.Flags&wire.RequestFlagHandle != 0 && h.Fh == 0 {
		return fmt.Errorf("binary %s: handle 0: %w", wire.OpName(h.Opcode), syscall.EBADF)
	}
	return nil
}
