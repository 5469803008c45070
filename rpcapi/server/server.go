// Package server is proxyfsd's protocol server: it serves the volumes that
// package volume opened (taking them over: it syncs and closes them at
// Shutdown), owns the mount table, the open files, the locks and the
// listeners, and serves PROTOCOL.md on TCP and a Unix socket. A
// connection whose first four bytes are "PFSB" is a binary data channel;
// any other connection speaks JSON-RPC 2.0 with Content-Length framing.
//
// Limits from the configuration are enforced here: message size, I/O size,
// connections (in all and per peer), requests in flight and unsent reply
// bytes per connection, and the handshake and idle timeouts. Shutdown
// stops accepting, drains in-flight calls for a grace period, then syncs
// and closes the engines.
package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sourcegraph/jsonrpc2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/metrics"
	"github.com/proxyfs/proxyfs/mount"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
	vol "github.com/proxyfs/proxyfs/volume"
)

// volume is one served volume: the open volume (package volume) and what
// the server keeps for it. The fields it copies from vol.Volume are
// shorthands for the handlers.
type volume struct {
	vol   *vol.Volume
	name  string
	dev   uint64 // stat dev and statvfs fsid
	fs    *inode.FS
	locks *volumeLocks // its lock manager (locks.go)

	// readOnly refuses every change by a client (EROFS); rootSquash
	// makes uid 0 and gid 0 act as anon (see env.caller).
	readOnly   bool
	rootSquash bool
	anon       inode.Caller
	// access is who may mount the volume (nil: everyone who may
	// connect).
	access *volumeAccess
}

// Server serves the proxyfs protocol. Create it with Open, start it with
// Start, stop it with Shutdown.
type Server struct {
	cfg       conf.Server
	access    *accessPolicy // [access], resolved
	log       *zap.Logger
	accessLog *zap.Logger // the access log; nil: Logger at debug level
	version   string
	metrics   *metrics.Metrics // nil: no metrics

	volumes map[string]*volume
	order   []*volume // config order, for shutdown
	mounts  *mount.Table
	hs      handles // open file handles (handles.go)

	preBound *Listeners // Options.Listeners

	// stopCtx is cancelled when Shutdown begins: lock waits end with it.
	stopCtx   context.Context
	stop      context.CancelFunc
	sweepDone chan struct{} // closed to stop the lock mark sweeper
	sweepWG   sync.WaitGroup

	inflight tracker
	// refusing bounds the connections being refused (over
	// max_connections) at once.
	refusing chan struct{}

	mu        sync.Mutex
	listeners []net.Listener
	tcpAddr   string
	unixPath  string
	conns     map[net.Conn]string // the peer key of each connection
	auths     map[net.Conn]*connAuth
	tlsr      *tlsReloader   // the TCP listener's TLS configuration (Reload)
	peers     map[string]int // connections by peer key
	closing   bool
	connWG    sync.WaitGroup // connection goroutines
	acceptWG  sync.WaitGroup
	shutdown  bool
	closedVol bool
	started   bool
	startTime time.Time // when Start began serving (status: uptime)
}

// Options configures a Server beyond the configuration file.
type Options struct {
	// Logger receives the server's logs; nil means none.
	Logger *zap.Logger
	// AccessLog, if set, receives one "call" line per request on either
	// channel, at whatever level (the access log of [log] access);
	// without it the same lines go to Logger at debug level.
	AccessLog *zap.Logger
	// Version is the server's version, reported by ping as
	// "proxyfsd <Version>".
	Version string
	// Metrics receives the server's metrics; nil means none.
	Metrics *metrics.Metrics
	// Listeners, if set, are the sockets (from Listen) that Start serves;
	// the server closes them at Shutdown.
	Listeners *Listeners
	// Volumes, if set, are the volumes to serve, in the configuration's
	// order (opened with vol.OpenAll); the server syncs and closes them at
	// Shutdown, or when Open fails. Nil: Open opens cfg's volumes itself.
	Volumes []*vol.Volume
}

// accessCheck returns the entry of a call's access line, or nil when
// neither the access log nor debug logging is on.
func (s *Server) accessCheck() *zapcore.CheckedEntry {
	if s.accessLog != nil {
		return s.accessLog.Check(zap.InfoLevel, "call")
	}
	return s.log.Check(zap.DebugLevel, "call")
}

// accessOn reports whether calls are logged (accessCheck would not be
// nil).
func (s *Server) accessOn() bool {
	return s.accessLog != nil || s.log.Core().Enabled(zap.DebugLevel)
}

// Open returns a server of the volumes in opts.Volumes (or, if nil, of
// every volume of cfg, opened as vol.OpenAll does) that is not listening
// yet.
func Open(ctx context.Context, cfg *conf.Config, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		cfg:       cfg.Server,
		log:       log,
		accessLog: opts.AccessLog,
		version:   opts.Version,
		metrics:   opts.Metrics,
		preBound:  opts.Listeners,
		volumes:   map[string]*volume{},
		conns:     map[net.Conn]string{},
		auths:     map[net.Conn]*connAuth{},
		peers:     map[string]int{},
		refusing:  make(chan struct{}, 64),
		sweepDone: make(chan struct{}),
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.inflight.init()
	vols := opts.Volumes
	closeAll := func() {
		for _, ov := range vols {
			ov.Close()
		}
	}
	var err error
	if s.access, err = newAccessPolicy(cfg.Access); err != nil {
		closeAll()
		return nil, err
	}
	vaccess := map[string]*volumeAccess{}
	for _, vc := range cfg.Volumes {
		if vaccess[vc.Name], err = newVolumeAccess(vc); err != nil {
			closeAll()
			return nil, err
		}
	}
	if vols == nil {
		if vols, err = vol.OpenAll(ctx, cfg, vol.Options{Logger: log, Metrics: s.metrics}); err != nil {
			return nil, err
		}
	}
	for _, ov := range vols {
		v := &volume{vol: ov, name: ov.Name, dev: ov.Dev, fs: ov.FS,
			readOnly: ov.ReadOnly, rootSquash: ov.RootSquash, anon: ov.Anon,
			access: vaccess[ov.Name]}
		s.order = append(s.order, v)
	}
	for _, v := range s.order {
		if s.volumes[v.name] != nil {
			s.closeVolumes()
			return nil, fmt.Errorf("volume %q: served twice", v.name)
		}
		s.volumes[v.name] = v
		if err := s.openLocks(ctx, v); err != nil {
			s.closeVolumes()
			return nil, err
		}
		if err := s.metrics.RegisterVolume(v.name, v.vol.Usage); err != nil {
			s.closeVolumes()
			return nil, err
		}
	}
	s.mounts = mount.NewTable(func(name string) bool { return s.volumes[name] != nil }, mount.Options{
		Grace:        s.cfg.MountGrace,
		MaxPerHolder: s.cfg.MaxMountsPerConn,
		OnReclaim: func(m *mount.Mount) {
			s.log.Debug("mount reclaimed: no connection used it for mount_grace",
				zap.Uint64("mount", m.ID), zap.String("volume", m.Volume), zap.String("user", m.User))
			s.closeMount(m.ID)
		},
	})
	if err := s.metrics.RegisterMounts(func() metrics.MountStats {
		st := s.mounts.Stats()
		ms := metrics.MountStats{Mounts: st.Mounts, Orphaned: st.Orphaned, Reclaimed: st.Reclaimed, Handles: s.hs.count()}
		for _, v := range s.order {
			ls := v.locks.m.Stats()
			ms.LockedFiles += ls.Files
			ms.LockWaiters += ls.Waiting
			ms.LockConflicts += ls.Conflicts
			ms.LockDeadlocks += ls.Deadlocks
			if v.locks.m.InGrace() {
				ms.LockGrace++
			}
		}
		return ms
	}); err != nil {
		s.closeVolumes()
		return nil, err
	}
	return s, nil
}

// Listeners are the server's bound sockets, opened by Listen before the
// volumes so that a port in use or a bad socket path fails a start
// before anything is changed on disk.
type Listeners struct {
	tcp, unix net.Listener
	tlsr      *tlsReloader // the TCP listener's TLS configuration, if any
}

// Listen binds the listeners cfg configures. A TCP address with port 0
// gets a free port. A stale Unix socket file (nobody answering on it) is
// replaced; anything else at the Unix socket's path is an error.
func Listen(cfg conf.Server) (*Listeners, error) {
	ls := &Listeners{}
	if cfg.TCP == "" && cfg.Unix == "" {
		return nil, errors.New("no listener: server.tcp and server.unix are both disabled")
	}
	if cfg.TCP != "" && !conf.IsLoopback(cfg.TCP) && !cfg.TLS() {
		// conf refuses this too; a Server built by hand gets the same.
		return nil, fmt.Errorf("server.tcp %s is not a loopback address: plain TCP beyond loopback is refused (set server.tls_cert and server.tls_key)", cfg.TCP)
	}
	if cfg.TLS() {
		var err error
		if ls.tlsr, err = newTLSReloader(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.TCP != "" {
		l, err := net.Listen("tcp", cfg.TCP)
		if err != nil {
			return nil, err // names the address: "listen tcp 127.0.0.1:9450: bind: ..."
		}
		if ls.tlsr != nil {
			l = tls.NewListener(l, ls.tlsr.listenerConfig())
		}
		ls.tcp = l
	}
	if cfg.Unix != "" {
		l, err := listenUnix(cfg)
		if err != nil {
			ls.Close()
			return nil, err
		}
		ls.unix = l
	}
	return ls, nil
}

// Close closes the listeners (when the start fails before Start).
func (ls *Listeners) Close() {
	for _, l := range []net.Listener{ls.tcp, ls.unix} {
		if l != nil {
			l.Close()
		}
	}
}

// Start serves the listeners in the background: those of
// Options.Listeners, else it binds them first as Listen does.
func (s *Server) Start() error {
	ls := s.preBound
	if ls == nil {
		var err error
		if ls, err = Listen(s.cfg); err != nil {
			return err
		}
	}
	if ls.tcp != nil {
		s.tcpAddr = ls.tcp.Addr().String()
		s.listeners = append(s.listeners, ls.tcp)
	}
	if ls.unix != nil {
		s.unixPath = s.cfg.Unix
		s.listeners = append(s.listeners, ls.unix)
	}
	for _, l := range s.listeners {
		s.log.Info("listening", zap.String("network", l.Addr().Network()), zap.String("addr", l.Addr().String()))
		s.acceptWG.Add(1)
		go s.accept(l)
	}
	s.mu.Lock()
	s.tlsr = ls.tlsr
	s.started = true
	s.startTime = time.Now()
	s.mu.Unlock()
	s.startReclaim()
	s.sweepWG.Add(1)
	go func() {
		defer s.sweepWG.Done()
		s.runLockSweeper(s.sweepDone)
	}()
	return nil
}

// Ready reports whether the server serves requests: its volumes are open
// and its listeners up, and it is not shutting down (for /readyz).
func (s *Server) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shutdown:
		return errors.New("shutting down")
	case !s.started:
		return errors.New("listeners not started")
	}
	for _, v := range s.order {
		if err := v.vol.Health(); err != nil {
			return fmt.Errorf("volume %q: %w", v.name, err)
		}
	}
	return nil
}

// listenUnix listens on the Unix socket path. Whatever is at path stays
// untouched unless it is a stale socket: a socket file that nobody answers
// on (a daemon that was killed leaves one) is removed; anything else there
// (a regular file, a directory, a symlink, a socket that answers or that
// cannot be probed) is an error naming the path.
func listenUnix(cfg conf.Server) (net.Listener, error) {
	path := cfg.Unix
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err // names the path
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := socketPerms(cfg); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	return l, nil
}

// socketPerms gives the Unix socket file its configured mode, owner and
// group (server.unix_mode, unix_owner, unix_group).
func socketPerms(cfg conf.Server) error {
	uid, gid := -1, -1
	if cfg.UnixOwner != "" {
		id, err := resolveID(cfg.UnixOwner, false)
		if err != nil {
			return fmt.Errorf("server.unix_owner: %w", err)
		}
		uid = int(id)
	}
	if cfg.UnixGroup != "" {
		id, err := resolveID(cfg.UnixGroup, true)
		if err != nil {
			return fmt.Errorf("server.unix_group: %w", err)
		}
		gid = int(id)
	}
	if uid >= 0 || gid >= 0 {
		if err := os.Lchown(cfg.Unix, uid, gid); err != nil {
			return fmt.Errorf("server.unix_owner/unix_group: %w", err)
		}
	}
	if err := os.Chmod(cfg.Unix, cfg.UnixMode); err != nil {
		return fmt.Errorf("server.unix_mode: %w", err)
	}
	return nil
}

// serverTLS is the TCP listener's TLS configuration: its certificate,
// and the client CAs if client certificates are required.
func serverTLS(cfg conf.Server) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("server.tls_cert/tls_key: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("server.tls_client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.tls_client_ca: %s holds no PEM certificate", cfg.TLSClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// removeStaleSocket removes path if it is a socket that refuses
// connections; nil if there is nothing at path.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("exists and is not a socket (%s); remove it or choose another server.unix", fileKind(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return errors.New("another process is serving this socket")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// EACCES, a full backlog, a timeout: perhaps alive; not ours to
		// remove.
		return fmt.Errorf("socket exists and may be in use: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

// fileKind names a file type for an error message.
func fileKind(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symlink"
	case fs.ModeNamedPipe:
		return "a named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return "a file of another type"
}

// TCPAddr returns the TCP address the server listens on ("" if none).
func (s *Server) TCPAddr() string { return s.tcpAddr }

// UnixPath returns the Unix socket path the server listens on ("" if none).
func (s *Server) UnixPath() string { return s.unixPath }

// Mounts returns the number of live mounts.
func (s *Server) Mounts() int { return s.mounts.Count() }

func (s *Server) accept(l net.Listener) {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept", zap.Error(err), zap.Duration("retry_in", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if why := s.addConn(nc); why != nil {
			s.refuse(nc, why)
			continue
		}
		go s.serveConn(nc)
	}
}

// refuse closes a connection over max_connections or
// max_connections_per_peer; why says which. A JSON-RPC client gets an
// error reply first (EAGAIN, id null) so that it can tell why; a binary
// channel gets an EAGAIN reply to its first request (which is not run), so
// that a client can tell a refusal, to retry after a back-off, from a
// connection lost with its request in flight.
func (s *Server) refuse(nc net.Conn, why error) {
	select {
	case s.refusing <- struct{}{}:
	default:
		nc.Close() // a flood: no time for courtesy
		return
	}
	go func() {
		defer func() { <-s.refusing }()
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(time.Second))
		var magic [4]byte
		if _, err := io.ReadFull(nc, magic[:]); err != nil {
			return
		}
		if string(magic[:]) == wire.RequestMagic {
			var hdr [wire.RequestHeaderSize]byte
			copy(hdr[:], magic[:])
			if _, err := io.ReadFull(nc, hdr[len(magic):]); err != nil {
				return
			}
			h, err := wire.DecodeRequest(hdr[:])
			if err != nil {
				return
			}
			nc.Write(wire.AppendReply(nil, wire.ReplyHeader{Opcode: h.Opcode, ID: h.ID, Errno: uint32(syscall.EAGAIN)}))
			return
		}
		we := s.classify("accept", why)
		body, err := json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      *int            `json:"id"`
			Error   *jsonrpc2.Error `json:"error"`
		}{"2.0", nil, we.jsonError()})
		if err == nil {
			fmt.Fprintf(nc, "Content-Length: %d\r\n\r\n%s", len(body), body)
		}
	}()
}

// addConn registers a connection; an error (wrapping EAGAIN) if the
// server is closing, at max_connections, or at max_connections_per_peer
// for the connection's peer.
func (s *Server) addConn(nc net.Conn) error {
	peer := peerKey(nc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return fmt.Errorf("server shutting down: %w", syscall.EAGAIN)
	}
	if len(s.conns) >= s.cfg.MaxConnections {
		s.log.Warn("connection refused: max_connections reached",
			zap.Int("max_connections", s.cfg.MaxConnections), zap.String("remote", remote(nc)))
		return fmt.Errorf("too many connections (max_connections %d): %w", s.cfg.MaxConnections, syscall.EAGAIN)
	}
	if s.peers[peer] >= s.cfg.MaxConnectionsPerPeer {
		s.log.Warn("connection refused: max_connections_per_peer reached",
			zap.Int("max_connections_per_peer", s.cfg.MaxConnectionsPerPeer), zap.String("peer", peer),
			zap.String("remote", remote(nc)))
		return fmt.Errorf("too many connections from this peer (%s, max_connections_per_peer %d): %w",
			peer, s.cfg.MaxConnectionsPerPeer, syscall.EAGAIN)
	}
	s.conns[nc] = peer
	s.peers[peer]++
	s.connWG.Add(1)
	return nil
}

func (s *Server) removeConn(nc net.Conn) {
	s.mu.Lock()
	if peer, ok := s.conns[nc]; ok {
		if s.peers[peer]--; s.peers[peer] <= 0 {
			delete(s.peers, peer)
		}
		delete(s.conns, nc)
	}
	delete(s.auths, nc)
	s.mu.Unlock()
	s.connWG.Done()
}

func remote(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return nc.LocalAddr().Network()
}

// ioBufSize is the size of each connection's read buffer.
const ioBufSize = 64 << 10

// serveConn tells the two protocols apart by the first four bytes and
// serves the connection until it closes. The connection has
// handshake_timeout to send its first complete request.
func (s *Server) serveConn(nc net.Conn) {
	defer s.removeConn(nc)
	defer nc.Close()
	cr := newConnReader(nc, s.cfg.HandshakeTimeout, s.cfg.IdleTimeout)
	br := bufio.NewReaderSize(cr, ioBufSize)
	magic, err := br.Peek(4)
	if err != nil {
		switch {
		case errors.Is(err, errHandshakeTimeout):
			s.log.Info("closing connection: no request within handshake_timeout",
				zap.String("remote", remote(nc)), zap.Duration("handshake_timeout", s.cfg.HandshakeTimeout))
		case !errors.Is(err, io.EOF):
			s.log.Debug("connection closed before its first bytes", zap.String("remote", remote(nc)), zap.Error(err))
		}
		return
	}
	a := &connAuth{}
	p := s.connPrincipal(nc)
	a.p.Store(p)
	s.mu.Lock()
	s.auths[nc] = a
	s.mu.Unlock()
	if p.refused != "" && p.known {
		s.log.Info("refused", zap.String("peer", p.desc), zap.String("reason", p.refused))
	}
	if string(magic) == wire.RequestMagic {
		s.serveBinary(nc, br, cr, a)
		return
	}
	s.serveJSON(nc, br, cr, a)
}

// Shutdown stops accepting connections, lets in-flight calls finish until
// ctx is done, closes every connection, then syncs and closes the volumes.
// Requests that arrive while it drains are not run and get no reply (their
// connection closes; a client retries them after reconnecting). It returns
// the first error from syncing or closing a volume.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return errors.New("server: already shut down")
	}
	s.shutdown = true
	s.closing = true
	s.mu.Unlock()
	s.stop() // lock waits end (their connections close without a reply)
	s.closeListeners()
	s.acceptWG.Wait()

	n := s.inflight.closeAndWait(ctx)
	if n > 0 {
		s.log.Warn("shutdown grace expired with calls in flight", zap.Int("inflight", n))
	} else {
		s.log.Info("in-flight calls drained")
	}
	s.mu.Lock()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		s.log.Warn("connections still closing")
	}
	s.mounts.Close() // stops the grace timers
	s.stopReclaim()
	close(s.sweepDone)
	s.sweepWG.Wait()
	s.closeLocks()
	return s.closeVolumes()
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		l.Close()
	}
}

// closeVolumes syncs and closes every open volume once.
func (s *Server) closeVolumes() error {
	s.mu.Lock()
	if s.closedVol {
		s.mu.Unlock()
		return nil
	}
	s.closedVol = true
	s.mu.Unlock()
	var first error
	for _, v := range s.order {
		if err := v.fs.Sync(context.Background()); err != nil {
			s.log.Error("sync volume", zap.String("volume", v.name), zap.Error(err))
			first = cmpErr(first, fmt.Errorf("volume %q: sync: %w", v.name, err))
		}
		if err := v.vol.Close(); err != nil {
			s.log.Error("close volume", zap.String("volume", v.name), zap.Error(err))
			first = cmpErr(first, fmt.Errorf("volume %q: close: %w", v.name, err))
		}
	}
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// tracker counts calls in flight across the server so that Shutdown can
// drain them.
type tracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{} // closed when closed && n == 0
}

func (t *tracker) init() { t.zero = make(chan struct{}) }

// acquire registers a call; false once the server is draining.
func (t *tracker) acquire() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.closed && t.n == 0 {
		close(t.zero)
	}
}

// closeAndWait refuses new calls and waits until none are in flight or ctx
// is done; it returns how many are still in flight.
func (t *tracker) closeAndWait(ctx context.Context) int {
	t.mu.Lock()
	t.closed = true
	if t.n == 0 {
		close(t.zero)
	}
	t.mu.Unlock()
	select {
	case <-t.zero:
		return 0
	case <-ctx.Done():
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.n
	}
}
