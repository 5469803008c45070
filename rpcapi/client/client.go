package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Defaults of the Dial options.
const (
	DefaultJSONConns   = 2
	DefaultBinaryConns = 2
	DefaultCallTimeout = 30 * time.Second
	DefaultMinBackoff  = 10 * time.Millisecond
	DefaultMaxBackoff  = 1 * time.Second
)

// Option configures a Client (see Dial).
type Option func(*options)

type options struct {
	jsonConns   int
	binConns    int
	callTimeout time.Duration
	logger      *slog.Logger
	minBackoff  time.Duration
	maxBackoff  time.Duration
	outageHook  func(Outage)
	tls         *tls.Config // WithTLS
	token       string      // WithToken
	gateways    []string    // WithGateways
}

// WithGateways names the addresses of more gateways that serve the same
// volumes (proxyfsd processes sharing volumes of the etcdswift engine;
// README, "Volumes on etcd and Swift"). The Client uses one gateway at a
// time, starting with Dial's address; when it cannot reach the one it
// uses (it died, or its machine did), it dials the next in turn, where its
// mounts are made again, its open handles reopened with reclaim and its
// locks taken again with reclaim, as after a restart of one daemon
// (PROTOCOL.md section 3): handles of unlinked files survive the move, and
// so do locks: every mount carries the Client's instance id ("client"), by
// which the new gateway knows the locks the Client left on the dead one as
// its own and grants their reclaims (PROTOCOL.md, "Failover"). A lock is
// reported lost (LostLocks) only when another owner took a conflicting
// lock meanwhile (after the dead gateway's etcd lease expired).
func WithGateways(addrs ...string) Option {
	return func(o *options) { o.gateways = append(o.gateways, addrs...) }
}

// newClientID returns a random client instance id (32 hex digits).
func newClientID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// endpoint is one gateway's address.
type endpoint struct{ network, addr string }

func parseEndpoint(addr string) endpoint {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		return endpoint{"unix", strings.TrimPrefix(addr, "unix:")}
	case strings.Contains(addr, "/"):
		return endpoint{"unix", addr}
	}
	return endpoint{"tcp", addr}
}

// splitGateways splits Dial's address list at commas, trimming spaces.
func splitGateways(list string) ([]string, error) {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, &Error{Op: "dial", Errno: syscall.EINVAL,
				Msg: fmt.Sprintf("empty gateway address in %q", list)}
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// ep returns the gateway the Client uses now.
func (c *Client) ep() endpoint { return c.eps[int(c.cur.Load())%len(c.eps)] }

// nextGateway moves from gateway i (an index into eps) to the next, unless
// another goroutine moved already.
func (c *Client) nextGateway(i uint32, err error) {
	if len(c.eps) > 1 && c.cur.CompareAndSwap(i, (i+1)%uint32(len(c.eps))) {
		c.o.logger.Warn("proxyfs: gateway unreachable, moving to the next", "from", c.eps[i].addr, "to", c.ep().addr, "err", err)
	}
}

// WithConns sets how many JSON-RPC and binary-channel connections the
// Client keeps (defaults DefaultJSONConns and DefaultBinaryConns; values
// below 1 are taken as 1). Calls are spread over them round-robin and many
// calls are in flight on each.
func WithConns(jsonConns, binaryConns int) Option {
	return func(o *options) {
		o.jsonConns = max(jsonConns, 1)
		o.binConns = max(binaryConns, 1)
	}
}

// WithCallTimeout bounds every call, reconnects and retries included
// (default DefaultCallTimeout). A call also ends when its context does.
// Zero means no timeout beyond the context's. It also bounds how long a
// single write to a socket may block.
func WithCallTimeout(d time.Duration) Option {
	return func(o *options) { o.callTimeout = d }
}

// WithLogger sets the logger for connection events (reconnects,
// remounts). The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithBackoff sets the reconnect back-off: the first retry waits min, each
// further one twice as long, up to max (defaults DefaultMinBackoff and
// DefaultMaxBackoff).
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) {
		if min <= 0 {
			min = DefaultMinBackoff
		}
		if max < min {
			max = min
		}
		o.minBackoff, o.maxBackoff = min, max
	}
}

// Client is a connection pool to one proxyfsd. It is safe for concurrent
// use by many goroutines. Use Mount to mount a volume.
type Client struct {
	eps []endpoint    // Dial's address, then WithGateways'
	id  string        // the client instance, sent with every mount ("client")
	cur atomic.Uint32 // the index of the gateway in use
	o   options

	jsonSlots []*slot[*jsonConn]
	binSlots  []*slot[*binConn]
	jrr, brr  atomic.Uint64

	done      chan struct{}
	closing   atomic.Bool // set when Close starts (before it unmounts)
	closeOnce sync.Once
	readers   sync.WaitGroup // binary-channel reader goroutines

	mu     sync.Mutex
	mounts map[*Mount]struct{}

	lostLocks atomic.Uint64 // LostLocks

	outMu sync.Mutex
	out   outage // the server is unreachable (outage.go)
}

// Dial connects to proxyfsd at addr: "host:port" for TCP, or the path of
// its Unix socket (any addr containing '/', or prefixed with "unix:").
// addr may also be a comma-separated list of gateways (spaces around each
// ignored), as libproxyfs takes it: the first is dialled first and the
// others are as WithGateways (which adds to the list's end); an empty
// entry is EINVAL. It opens one JSON-RPC connection and pings the server
// before returning; the other connections are opened when first needed.
// Dial does not retry one address: it fails if no gateway can be reached.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := options{
		jsonConns:   DefaultJSONConns,
		binConns:    DefaultBinaryConns,
		callTimeout: DefaultCallTimeout,
		logger:      slog.New(slog.DiscardHandler),
		minBackoff:  DefaultMinBackoff,
		maxBackoff:  DefaultMaxBackoff,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	addrs, err := splitGateways(addr)
	if err != nil {
		return nil, err
	}
	c := &Client{o: o, done: make(chan struct{}), mounts: map[*Mount]struct{}{}, id: newClientID()}
	for _, a := range append(addrs, o.gateways...) {
		c.eps = append(c.eps, parseEndpoint(a))
	}
	for range o.jsonConns {
		c.jsonSlots = append(c.jsonSlots, &slot[*jsonConn]{c: c, kind: "json", dial: c.dialJSON})
	}
	for range o.binConns {
		c.binSlots = append(c.binSlots, &slot[*binConn]{c: c, kind: "binary", dial: c.dialBinary})
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	jc, err := c.dialJSON(ctx)
	for i := 1; err != nil && i < len(c.eps) && ctx.Err() == nil; i++ {
		jc, err = c.dialJSON(ctx) // the next gateway (dialNet moved on)
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctxError("dial", ctx.Err())
		}
		return nil, &Error{Op: "dial", Errno: errnoOf(err), Reason: ReasonConnection, Msg: err.Error(), cause: err}
	}
	c.jsonSlots[0].set(jc)
	if _, err := c.Ping(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// errnoOf extracts a syscall.Errno from a dial error, or ECONNREFUSED.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.ECONNREFUSED
}

// Ping checks that the server answers and returns its version.
func (c *Client) Ping(ctx context.Context) (wire.PingResult, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var res wire.PingResult
	err := c.retryConn(ctx, wire.MethodPing, func(ctx context.Context) error {
		return c.jsonAttempt(ctx, wire.MethodPing, wire.Empty{}, &res)
	})
	return res, err
}

// Close unmounts (best effort, without reconnecting) the mounts still
// live, closes every connection and stops every goroutine the Client
// started. Calls in flight and later calls fail with an error that
// matches ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.mu.Lock()
		var ms []*Mount
		for m := range c.mounts {
			ms = append(ms, m)
		}
		c.mu.Unlock()
		for _, m := range ms {
			m.unmountOnClose()
		}
		c.mu.Lock()
		close(c.done)
		c.mu.Unlock()
		for _, s := range c.jsonSlots {
			s.close()
		}
		for _, s := range c.binSlots {
			s.close()
		}
		c.readers.Wait()
	})
	return nil
}

func (c *Client) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// withTimeout applies the call timeout to ctx.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.o.callTimeout > 0 {
		return context.WithTimeout(ctx, c.o.callTimeout)
	}
	return context.WithCancel(ctx)
}

// writeTimeout bounds one write to a socket.
func (c *Client) writeTimeout() time.Duration {
	if c.o.callTimeout > 0 {
		return c.o.callTimeout
	}
	return DefaultCallTimeout
}

// backoff returns the n-th (0-based) back-off delay.
func (c *Client) backoff(n int) time.Duration {
	d := c.o.minBackoff
	for i := 0; i < n && d < c.o.maxBackoff; i++ {
		d *= 2
	}
	return min(d, c.o.maxBackoff)
}

// sleep waits d, or until ctx ends or the client closes.
func (c *Client) sleep(ctx context.Context, op string, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxError(op, ctx.Err())
	case <-c.done:
		return closedError(op)
	}
}

func (c *Client) dialNet(ctx context.Context, binary bool) (net.Conn, error) {
	var d net.Dialer
	i := c.cur.Load() % uint32(len(c.eps))
	ep := c.eps[i]
	nc, err := d.DialContext(ctx, ep.network, ep.addr)
	if err != nil {
		c.nextGateway(i, err)
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c.secure(ctx, nc, binary)
}

// connError is returned by an attempt whose connection broke. uncertain
// is true when the request was sent and no reply came: the server may or
// may not have executed it.
type connError struct {
	err       error
	uncertain bool
}

func (e *connError) Error() string { return "connection broken: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// retryConn runs attempt until it returns something other than a broken
// connection or an EAGAIN (server in-flight limit), with back-off, within
// ctx. It is for calls that do not depend on a mount.
func (c *Client) retryConn(ctx context.Context, op string, attempt func(context.Context) error) error {
	start := time.Now()
	for n := 0; ; n++ {
		err := attempt(ctx)
		var ce *connError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ce):
		case errors.Is(err, syscall.EAGAIN):
		default:
			return c.unreachable(err, start)
		}
		if err := c.sleep(ctx, op, c.backoff(n)); err != nil {
			return c.unreachable(err, start)
		}
	}
}

// ---- JSON-RPC connections ----

type jsonConn struct {
	rpc *jsonrpc2.Conn
}

func (j *jsonConn) broken() bool {
	select {
	case <-j.rpc.DisconnectNotify():
		return true
	default:
		return false
	}
}

func (j *jsonConn) close() { _ = j.rpc.Close() }

// refused is always false: a JSON-RPC refusal (an EAGAIN reply with id
// null) cannot be told apart from other protocol errors without the
// request id.
func (j *jsonConn) refused() bool { return false }

// deadlineConn puts a deadline on every write, so that a server that stops
// reading cannot block a writer (and the callers queued behind it) forever.
type deadlineConn struct {
	net.Conn
	d time.Duration
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.d))
	return c.Conn.Write(p)
}

// noHandler ignores requests from the server (it sends none).
type noHandler struct{}

func (noHandler) Handle(context.Context, *jsonrpc2.Conn, *jsonrpc2.Request) {}

type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, v ...any) {
	a.l.Debug("jsonrpc2", "msg", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (c *Client) dialJSON(ctx context.Context) (*jsonConn, error) {
	nc, err := c.dialNet(ctx, false)
	if err != nil {
		return nil, err
	}
	stream := jsonrpc2.NewBufferedStream(&deadlineConn{Conn: nc, d: c.writeTimeout()}, jsonrpc2.VSCodeObjectCodec{})
	rpc := jsonrpc2.NewConn(context.Background(), stream, noHandler{}, jsonrpc2.SetLogger(logAdapter{c.o.logger}))
	return &jsonConn{rpc: rpc}, nil
}

// jsonAttempt makes one JSON-RPC call on one of the pool's connections.
// It returns nil, an *Error, or a *connError.
func (c *Client) jsonAttempt(ctx context.Context, method string, params, result any) error {
	jc, err := c.jsonSend(ctx, method, params)
	if err != nil {
		return err
	}
	return jc.wait(ctx, result)
}

// jsonCall is a JSON-RPC request sent whole on one connection, waiting
// for its reply (see jsonSend).
type jsonCall struct {
	c      *Client
	s      *slot[*jsonConn]
	jc     *jsonConn
	w      jsonrpc2.Waiter
	method string
}

// jsonSend sends one JSON-RPC request on one of the pool's connections;
// wait then reads its reply. It returns an *Error or a *connError (never
// uncertain: the request was not sent whole).
func (c *Client) jsonSend(ctx context.Context, method string, params any) (*jsonCall, error) {
	if err := ctx.Err(); err != nil {
		// Never send a call whose context has already ended: its reply
		// would race the context in wait.
		return nil, ctxError(method, err)
	}
	s := pickSlot(c.jsonSlots, &c.jrr)
	jc, err := s.get(ctx, method)
	if err != nil {
		return nil, err
	}
	w, err := jc.rpc.DispatchCall(ctx, method, params)
	if err != nil {
		if c.closed() {
			return nil, closedError(method)
		}
		var ne net.Error
		if jc.broken() || errors.Is(err, jsonrpc2.ErrClosed) || errors.As(err, &ne) ||
			errors.Is(err, io.ErrShortWrite) || errors.Is(err, syscall.EPIPE) {
			s.invalidate(jc, err)
			// A failed write cannot have delivered a complete request.
			return nil, &connError{err: err}
		}
		return nil, protocolError(method, err)
	}
	return &jsonCall{c: c, s: s, jc: jc, w: w, method: method}, nil
}

// wait reads the reply of a request jsonSend sent, until ctx ends. It
// returns nil, an *Error, or a *connError (uncertain). It may be called
// again after ctx ended.
func (jc *jsonCall) wait(ctx context.Context, result any) error {
	c, s, method := jc.c, jc.s, jc.method
	err := jc.w.Wait(ctx, result)
	if err == nil {
		return nil
	}
	var re *jsonrpc2.Error
	switch {
	case errors.As(err, &re):
		return fromRPC(method, re)
	case ctx.Err() != nil:
		return ctxError(method, ctx.Err())
	case c.closed():
		return closedError(method)
	case errors.Is(err, jsonrpc2.ErrClosed):
		s.invalidate(jc.jc, err)
		return &connError{err: err, uncertain: true}
	default:
		return protocolError(method, err)
	}
}

// ---- connection slots ----

// pooledConn is a connection a slot holds.
type pooledConn interface {
	broken() bool
	// refused reports that the server refused the connection (over its
	// max_connections): the slot then backs off before dialing again.
	refused() bool
	close()
}

// refusedBackoffStep is the back-off step (see Client.backoff) a slot
// waits after the server refused its connection.
const refusedBackoffStep = 4

// pickSlot returns the next slot in round-robin order or, when that one
// has no live connection and is waiting to dial (after failures or
// refusals) or dialing, a slot that has one: a slot the server keeps
// refusing, or one still reconnecting after a restart, does not hold up
// calls while others work. A slot that is free to dial is used as is, so
// dead slots are redialed.
func pickSlot[T pooledConn](slots []*slot[T], rr *atomic.Uint64) *slot[T] {
	i := rr.Add(1)
	s := slots[i%uint64(len(slots))]
	if !s.waiting() {
		return s
	}
	for k := 1; k < len(slots); k++ {
		o := slots[(i+uint64(k))%uint64(len(slots))]
		if _, ok := o.peek(); ok {
			return o
		}
	}
	return s
}

// slot holds one connection of the pool and (re)dials it on demand, with
// back-off after failures. Only one caller dials at a time; the others
// wait for it.
type slot[T pooledConn] struct {
	c    *Client
	kind string
	dial func(context.Context) (T, error)

	mu       sync.Mutex
	cur      T
	has      bool
	closed   bool
	dialing  chan struct{} // closed when the dial in progress ends
	failures int
	next     time.Time // no dial before this
}

func (s *slot[T]) set(conn T) {
	s.mu.Lock()
	s.cur, s.has = conn, true
	s.mu.Unlock()
}

// get returns a live connection, dialing one if needed.
func (s *slot[T]) get(ctx context.Context, op string) (T, error) {
	var zero T
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return zero, closedError(op)
		}
		if s.has && !s.cur.broken() {
			conn := s.cur
			s.mu.Unlock()
			return conn, nil
		}
		if s.has {
			if s.cur.refused() {
				// Dialing worked but the server refused the connection:
				// wait a while before dialing again. (A fixed delay: the
				// failure count resets with each dial that connects.)
				s.next = time.Now().Add(s.c.backoff(refusedBackoffStep))
			}
			s.cur.close()
			s.cur, s.has = zero, false
		}
		if ch := s.dialing; ch != nil {
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return zero, ctxError(op, ctx.Err())
			case <-s.c.done:
				return zero, closedError(op)
			}
		}
		wait := time.Until(s.next)
		ch := make(chan struct{})
		s.dialing = ch
		s.mu.Unlock()

		var conn T
		var err error
		if wait > 0 {
			err = s.c.sleep(ctx, op, wait)
		}
		if err == nil {
			conn, err = s.dial(ctx)
		}

		s.mu.Lock()
		s.dialing = nil
		close(ch)
		switch {
		case err == nil && s.closed:
			s.mu.Unlock()
			conn.close()
			return zero, closedError(op)
		case err == nil:
			if s.failures > 0 {
				s.c.o.logger.Info("proxyfs: reconnected", "kind", s.kind, "addr", s.c.ep().addr, "failures", s.failures)
			}
			s.cur, s.has = conn, true
			s.failures = 0
			s.next = time.Time{}
			s.mu.Unlock()
			s.c.dialSucceeded()
			return conn, nil
		}
		var ee *Error
		isErr := errors.As(err, &ee)
		if !isErr {
			// A dial failure: back off before the next one.
			s.next = time.Now().Add(s.c.backoff(s.failures))
			s.failures++
			s.c.o.logger.Debug("proxyfs: dial failed", "kind", s.kind, "addr", s.c.ep().addr, "err", err)
		}
		s.mu.Unlock()
		if isErr {
			return zero, err // context ended or client closed while waiting
		}
		if ctx.Err() != nil {
			return zero, ctxError(op, ctx.Err())
		}
		if s.c.closed() {
			return zero, closedError(op)
		}
		s.c.dialFailed(ctx, op, err)
	}
}

// invalidate drops conn if it is still the slot's connection.
func (s *slot[T]) invalidate(conn T, err error) {
	conn.close()
	s.mu.Lock()
	if s.has && any(s.cur) == any(conn) {
		var zero T
		s.cur, s.has = zero, false
		s.c.o.logger.Info("proxyfs: connection lost", "kind", s.kind, "addr", s.c.ep().addr, "err", err)
	}
	s.mu.Unlock()
}

// waiting reports whether the slot has no live connection and is dialing
// or must wait before it may dial.
func (s *slot[T]) waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.has && !s.cur.broken() {
		return false
	}
	return s.dialing != nil || time.Now().Before(s.next) || (s.has && s.cur.refused())
}

// peek returns the slot's connection if it has a live one, without
// dialing.
func (s *slot[T]) peek() (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.has && !s.closed && !s.cur.broken() {
		return s.cur, true
	}
	var zero T
	return zero, false
}

func (s *slot[T]) close() {
	s.mu.Lock()
	s.closed = true
	if s.has {
		s.cur.close()
		var zero T
		s.cur, s.has = zero, false
	}
	s.mu.Unlock()
}
