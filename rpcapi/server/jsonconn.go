package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/sourcegraph/jsonrpc2"
	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/metrics"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Framing limits besides max_message_bytes.
const (
	maxHeaderLines = 32
)

// jsonStream is a jsonrpc2.ObjectStream with Content-Length framing (the
// framing of jsonrpc2.VSCodeObjectCodec, which writes replies) that also
// enforces max_message_bytes before allocating a body, and answers bodies
// that are not JSON (-32700) or not a request (-32600) itself, so that
// such a message does not close the connection (jsonrpc2.Conn closes on
// any read error).
type jsonStream struct {
	s    *Server
	nc   net.Conn
	cr   *connReader
	r    *bufio.Reader
	max  int
	wmu  sync.Mutex
	w    *bufio.Writer
	wd   writeDeadline
	peer string
}

var _ jsonrpc2.ObjectStream = (*jsonStream)(nil)

// WriteObject implements jsonrpc2.ObjectStream, with the framing of
// jsonrpc2.VSCodeObjectCodec. A failed write closes the connection: part
// of a message may have been sent, so the stream is broken.
func (st *jsonStream) WriteObject(obj any) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return err // nothing was sent
	}
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.wd.arm()
	if _, err = fmt.Fprintf(st.w, "Content-Length: %d\r\n\r\n", len(data)); err == nil {
		if _, err = st.w.Write(data); err == nil {
			err = st.w.Flush()
		}
	}
	if err != nil {
		st.nc.Close()
	}
	return err
}

// Close implements jsonrpc2.ObjectStream.
func (st *jsonStream) Close() error { return st.nc.Close() }

// ReadObject implements jsonrpc2.ObjectStream. An error closes the
// connection, so it returns one only when the framing is broken.
func (st *jsonStream) ReadObject(v any) error {
	for {
		body, err := st.readFrame()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			case errors.Is(err, errIdleTimeout):
				st.s.log.Debug("closing idle JSON-RPC connection", zap.String("remote", st.peer))
			default:
				st.s.log.Info("closing JSON-RPC connection", zap.String("remote", st.peer), zap.Error(err))
			}
			return err
		}
		st.cr.started()
		if !json.Valid(body) {
			st.replyRaw(nil, &protoError{code: jsonrpc2.CodeParseError, errno: syscall.EINVAL, msg: "parse error: body is not valid JSON"})
			continue
		}
		if err := checkUnicode(body); err != nil {
			// encoding/json would quietly turn these into U+FFFD, so a
			// name could silently become another name.
			st.replyRaw(requestID(body), &protoError{code: jsonrpc2.CodeParseError, errno: syscall.EINVAL, msg: "parse error: " + err.Error()})
			continue
		}
		// Decode into a fresh value: a failed decode may leave a partial
		// one behind.
		tmp := reflect.New(reflect.TypeOf(v).Elem())
		if err := json.Unmarshal(body, tmp.Interface()); err != nil {
			st.replyRaw(requestID(body), &protoError{code: jsonrpc2.CodeInvalidRequest, errno: syscall.EINVAL,
				msg: "invalid request: " + err.Error()})
			continue
		}
		reflect.ValueOf(v).Elem().Set(tmp.Elem())
		return nil
	}
}

// readFrame reads one message's header block and body.
func (st *jsonStream) readFrame() ([]byte, error) {
	length := -1
	for n := 0; ; n++ {
		if n == maxHeaderLines {
			return nil, errors.New("too many header lines")
		}
		line, err := st.r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, errors.New("header line too long")
			}
			if errors.Is(err, io.EOF) && (n > 0 || len(line) > 0) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return nil, errors.New(`header line does not end with \r\n`)
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("malformed header line %q", line)
		}
		if !strings.EqualFold(string(bytes.TrimSpace(name)), "Content-Length") {
			continue
		}
		l, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 10, 63)
		if err != nil {
			return nil, fmt.Errorf("malformed Content-Length %q", val)
		}
		if l > uint64(st.max) {
			return nil, fmt.Errorf("message of %d bytes exceeds max_message_bytes (%d)", l, st.max)
		}
		length = int(l)
	}
	if length < 0 {
		return nil, errors.New("no Content-Length header")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(st.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// requestID returns the "id" member of a JSON object if it is a number or
// a string, else nil.
func requestID(body []byte) json.RawMessage {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &m) != nil || len(m.ID) == 0 {
		return nil
	}
	switch m.ID[0] {
	case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return m.ID
	}
	return nil
}

// replyRaw sends an error reply for a message jsonrpc2 never saw.
func (st *jsonStream) replyRaw(id json.RawMessage, err error) {
	if id == nil {
		id = json.RawMessage("null")
	}
	w := st.s.classify("jsonrpc", err)
	msg := struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *jsonrpc2.Error `json:"error"`
	}{"2.0", id, w.jsonError()}
	if err := st.WriteObject(msg); err != nil {
		st.s.log.Debug("write error reply", zap.String("remote", st.peer), zap.Error(err))
	}
}

// jsonHandler runs requests concurrently, at most max_inflight_per_conn
// at a time per connection, and bounds the memory its replies hold.
type jsonHandler struct {
	s        *Server
	peer     string
	hd       *mount.Holder // the connection's mounts
	cr       *connReader
	budget   replyBudget
	inflight atomic.Int64
	calls    sync.WaitGroup // the calls' goroutines, until their replies are written
	// connCtx is done when the connection closes or the server begins
	// to shut down: the context of lock calls, whose waits end with it.
	connCtx context.Context
}

// Handle implements jsonrpc2.Handler. It runs on the connection's read
// loop: it only admits the request and starts it in its own goroutine.
// While the replies the connection is owed (estimated by replyCost) add
// up to more than max_message_bytes, it waits for them to be sent before
// admitting another request: a client that does not read its replies
// stops being read (back-pressure), as on the binary channel, instead of
// making the server hold every reply it would send.
func (h *jsonHandler) Handle(ctx context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request) {
	if req.Notif {
		return
	}
	cost, err := h.s.replyCost(req)
	if err != nil {
		h.reply(ctx, conn, req, nil, err)
		return
	}
	if !h.budget.acquire(cost) {
		return // the connection is closed
	}
	if h.inflight.Add(1) > int64(h.s.cfg.MaxInflightPerConn) {
		h.inflight.Add(-1)
		h.budget.release(cost)
		h.reply(ctx, conn, req, nil, &reasonError{reason: wire.ReasonBusy, err: fmt.Errorf("more than %d requests in flight on this connection: %w",
			h.s.cfg.MaxInflightPerConn, syscall.EAGAIN)})
		return
	}
	if !h.s.inflight.acquire() {
		// Draining for shutdown: the connection closes soon and the
		// client retries elsewhere or after a restart.
		h.inflight.Add(-1)
		h.budget.release(cost)
		return
	}
	h.cr.begin()
	h.calls.Add(1)
	go func() {
		defer h.calls.Done() // last: after the reply
		defer h.s.inflight.release()
		done := h.s.metrics.Request(metrics.ChannelJSON, methodLabel(req.Method))
		// A call that started finishes even if its client goes away,
		// except a lock wait, which ends with the connection (PROTOCOL.md
		// section 4, "Waiting").
		callCtx := context.WithoutCancel(ctx)
		waits := req.Method == wire.MethodLock || req.Method == wire.MethodFlock
		if waits {
			callCtx = h.connCtx
		}
		result, err := h.s.dispatch(callCtx, h.hd, h.peer, req.Method, req.Params)
		// Leave the per-connection count before replying: a client that
		// waits for each reply must never see EAGAIN.
		h.inflight.Add(-1)
		if waits && err != nil && callCtx.Err() != nil {
			// The wait ended because the connection closed or the server
			// is stopping: no reply; the client sends the call again
			// after reconnecting.
			done(wire.ErrnoName(syscall.EINTR))
		} else {
			done(h.reply(ctx, conn, req, result, err))
		}
		h.budget.release(cost)
		h.cr.end()
	}()
}

// Reply sizes for replyCost.
const (
	// replyCostMin is the cost of a reply of no particular size.
	replyCostMin = 1 << 10
	// Per entry of readdir and readdir_plus (an estimate).
	replyCostDirEntry     = 256
	replyCostDirEntryPlus = 512
	// get_xattr and list_xattr: up to a 64 KiB value in base64.
	replyCostXattr = 96 << 10
	// jsonReplyReserve is what a read's reply needs besides the base64
	// of its data, for an id of up to jsonReplyReserve-64 bytes.
	jsonReplyReserve = 1 << 10
)

// replyCost estimates how many bytes the reply to req will hold, from the
// request alone: for a read, the base64 of its length. It fails a read
// whose reply could exceed max_message_bytes (EINVAL).
func (s *Server) replyCost(req *jsonrpc2.Request) (int64, error) {
	switch req.Method {
	case wire.MethodRead:
		var p struct {
			Length uint64 `json:"length"`
		}
		if req.Params == nil || json.Unmarshal(*req.Params, &p) != nil || p.Length > uint64(s.cfg.MaxIOBytes) {
			return replyCostMin, nil // the handler reports what is wrong
		}
		if max := s.jsonReadMax(req.ID); p.Length > uint64(max) {
			return 0, fmt.Errorf("read of %d bytes: its base64 reply would exceed max_message_bytes %d (JSON reads are limited to %d bytes; the binary channel takes up to max_io_size): %w",
				p.Length, s.cfg.MaxMessageBytes, max, syscall.EINVAL)
		}
		return int64(base64.StdEncoding.EncodedLen(int(p.Length))) + replyCostMin, nil
	case wire.MethodReaddir, wire.MethodReaddirPlus:
		var p struct {
			MaxEntries uint32 `json:"max_entries"`
		}
		n := int64(readdirDefault)
		if req.Params != nil && json.Unmarshal(*req.Params, &p) == nil && p.MaxEntries != 0 {
			n = int64(min(p.MaxEntries, readdirMax))
		}
		if req.Method == wire.MethodReaddirPlus {
			return replyCostMin + n*replyCostDirEntryPlus, nil
		}
		return replyCostMin + n*replyCostDirEntry, nil
	case wire.MethodGetXattr, wire.MethodGetXattrPath, wire.MethodListXattr, wire.MethodListXattrPath:
		return replyCostXattr, nil
	}
	return replyCostMin, nil
}

// jsonReadMax is the longest JSON read whose reply, with request id id,
// fits in max_message_bytes: 3 * floor((max_message_bytes - 1024) / 4),
// less for an id longer than 960 bytes.
func (s *Server) jsonReadMax(id jsonrpc2.ID) int {
	reserve := jsonReplyReserve
	if b, err := json.Marshal(id); err == nil {
		reserve = max(reserve, 64+len(b))
	}
	return max(0, (s.cfg.MaxMessageBytes-reserve)/4*3)
}

// replyBudget bounds the bytes of the replies a JSON-RPC connection owes:
// acquire waits while the replies in flight cost more than max, except
// that a request is always admitted when none is in flight (so any single
// request can be served).
type replyBudget struct {
	mu     sync.Mutex
	cond   sync.Cond
	used   int64
	max    int64
	closed bool
}

func (b *replyBudget) init(max int64) {
	b.max = max
	b.cond.L = &b.mu
}

// acquire waits until cost fits; false once the budget is closed.
func (b *replyBudget) acquire(cost int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && b.used > 0 && b.used+cost > b.max {
		b.cond.Wait()
	}
	if b.closed {
		return false
	}
	b.used += cost
	return true
}

func (b *replyBudget) release(cost int64) {
	b.mu.Lock()
	b.used -= cost
	b.mu.Unlock()
	b.cond.Broadcast()
}

// close wakes acquire for good.
func (b *replyBudget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

// methodLabel is method as a metrics label: unknown methods share one
// value, so clients cannot grow the label set.
func methodLabel(method string) string {
	if _, ok := methods[method]; ok {
		return method
	}
	return "unknown"
}

// reply sends the call's result or error and returns the errno name
// reported ("" for success).
func (h *jsonHandler) reply(ctx context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request, result any, err error) string {
	var serr error
	errno := ""
	if err != nil {
		we := h.s.classify(req.Method, err)
		errno = wire.ErrnoName(we.errno)
		serr = conn.ReplyWithError(ctx, req.ID, we.jsonError())
	} else {
		serr = conn.Reply(ctx, req.ID, result)
	}
	if serr != nil && !errors.Is(serr, jsonrpc2.ErrClosed) {
		h.s.log.Debug("reply not sent", zap.String("remote", h.peer), zap.String("method", req.Method), zap.Error(serr))
	}
	return errno
}

// serveJSON serves a JSON-RPC connection until it closes.
func (s *Server) serveJSON(nc net.Conn, br *bufio.Reader, cr *connReader, a *connAuth) {
	peer := remote(nc)
	st := &jsonStream{s: s, nc: nc, cr: cr, r: br, max: s.cfg.MaxMessageBytes, w: bufio.NewWriterSize(nc, ioBufSize),
		wd: writeDeadline{nc: nc, idle: s.cfg.IdleTimeout}, peer: peer}
	hd := s.mounts.NewHolder()
	defer hd.Release() // after the calls below have finished
	cr.keep = s.holdsOpenFiles(hd)
	connCtx, cancelConn := context.WithCancel(withAuth(s.stopCtx, a))
	defer cancelConn()
	h := &jsonHandler{s: s, peer: peer, hd: hd, cr: cr, connCtx: connCtx}
	h.budget.init(int64(s.cfg.MaxMessageBytes))
	defer s.metrics.ConnOpened(metrics.ChannelJSON)()
	s.log.Debug("JSON-RPC connection", zap.String("remote", peer))
	c := jsonrpc2.NewConn(withAuth(context.Background(), a), st, h,
		jsonrpc2.SetLogger(stdLogAtDebug(s.log)))
	<-c.DisconnectNotify()
	cancelConn() // lock waits of this connection end
	h.budget.close()
	// Let running calls finish their replies (they fail fast on the
	// closed connection) before the connection is forgotten.
	h.calls.Wait()
}

// dispatch decodes and runs one call on a connection whose mounts hd
// holds; it never panics.
func (s *Server) dispatch(ctx context.Context, hd *mount.Holder, peer, method string, params *json.RawMessage) (result any, err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", zap.String("method", method), zap.Any("panic", r), zap.Stack("stack"))
			result, err = nil, fmt.Errorf("internal error in %s: %w", method, syscall.EIO)
		}
		if ce := s.accessCheck(); ce != nil {
			ce.Write(s.accessFields(ctx, peer, method, params, time.Since(start), err)...)
		}
	}()
	m, ok := methods[method]
	if !ok {
		return nil, errMethod(method)
	}
	a := authOf(ctx)
	if a == nil {
		return nil, fmt.Errorf("%s: %w: %w", method, errNoAuth, syscall.EACCES)
	}
	if p := a.get(); p.refused != "" && method != wire.MethodPing && method != wire.MethodAuth {
		return nil, p.errRefused()
	}
	return m.json(ctx, s, hd, params)
}

// stdLogAtDebug adapts log for jsonrpc2, whose messages (a client sent a
// response, a protocol error already logged by jsonStream) are debug
// material.
func stdLogAtDebug(log *zap.Logger) jsonrpc2.Logger {
	l, err := zap.NewStdLogAt(log, zap.DebugLevel)
	if err != nil {
		return zap.NewStdLog(zap.NewNop())
	}
	return l
}

// accessFields are the fields of a request's access line (the access
// log, or debug level), which answers who did what: method, peer
// (address, or uid on the Unix socket), the connection's principal,
// mount id and the mount's user and uid, a per-call identity's uid and
// gid, the inode, handle, name or path the params have, duration and
// error. Never file data or
// xattr values.
func (s *Server) accessFields(ctx context.Context, peer, method string, params *json.RawMessage, took time.Duration, err error) []zap.Field {
	f := []zap.Field{zap.String("method", method), zap.String("peer", peer)}
	if a := authOf(ctx); a != nil {
		f = append(f, zap.String("principal", a.get().desc))
	}
	if params != nil {
		var ids struct {
			As      *wire.Identity `json:"as"`
			Volume  string         `json:"volume"`
			UID     *uint32        `json:"uid"`
			MountID uint64         `json:"mount_id"`
			Inode   uint64         `json:"inode"`
			Fh      uint64         `json:"fh"`
			Name    string         `json:"name"`
			Path    string         `json:"path"`
			SrcName string         `json:"src_name"`
			DstName string         `json:"dst_name"`
			SrcPath string         `json:"src_path"`
			DstPath string         `json:"dst_path"`
		}
		if json.Unmarshal(*params, &ids) == nil {
			if ids.MountID != 0 {
				f = append(f, zap.Uint64("mount", ids.MountID))
				f = append(f, s.identityFields(ids.MountID)...)
			}
			if ids.As != nil {
				f = append(f, zap.Uint32("as_uid", ids.As.UID), zap.Uint32("as_gid", ids.As.GID))
			}
			if method == wire.MethodMount {
				f = append(f, zap.String("volume", ids.Volume))
				if ids.UID != nil {
					f = append(f, zap.Uint32("uid", *ids.UID))
				}
			}
			if ids.Inode != 0 {
				f = append(f, zap.Uint64("inode", ids.Inode))
			}
			if ids.Fh != 0 {
				f = append(f, zap.Uint64("fh", ids.Fh))
			}
			for _, kv := range [][2]string{{"name", ids.Name}, {"path", ids.Path},
				{"src_name", ids.SrcName}, {"dst_name", ids.DstName}, {"src_path", ids.SrcPath}, {"dst_path", ids.DstPath}} {
				if kv[1] != "" {
					f = append(f, zap.String(kv[0], kv[1]))
				}
			}
		}
	}
	f = append(f, zap.Duration("took", took))
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			f = append(f, zap.String("errno", wire.ErrnoName(errno)))
		}
		f = append(f, zap.String("error", err.Error()))
	}
	return f
}

// identityFields are the access log's user and uid of mount id, if it is
// live.
func (s *Server) identityFields(id uint64) []zap.Field {
	m, err := s.mounts.Get(id)
	if err != nil {
		return nil
	}
	return []zap.Field{zap.String("user", m.User), zap.Uint32("uid", m.UID)}
}

// checkUnicode reports an error if body, valid JSON, is not valid UTF-8
// or has a string escape that is a lone UTF-16 surrogate (\ud800 without
// its pair): neither is a Unicode string, and RFC 8259 requires UTF-8.
func checkUnicode(body []byte) error {
	if !utf8.Valid(body) {
		return errors.New("message is not valid UTF-8")
	}
	inString := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\':
			i++
			if i >= len(body) || body[i] != 'u' {
				continue
			}
			r := hex4(body[i+1:])
			i += 4
			if r < 0xd800 || r > 0xdfff {
				continue
			}
			// A high surrogate must be followed by an escaped low one.
			if r >= 0xdc00 || i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
				return errors.New("string has a lone UTF-16 surrogate escape")
			}
			if lo := hex4(body[i+3:]); lo < 0xdc00 || lo > 0xdfff {
				return errors.New("string has a lone UTF-16 surrogate escape")
			}
			i += 6
		}
	}
	return nil
}

// hex4 decodes the 4 hex digits at the start of b (valid JSON has them
// after \u); -1 if they are not there.
func hex4(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	v := 0
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}
