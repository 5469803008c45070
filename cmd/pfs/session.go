package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// config is what the global flags set.
type config struct {
	server, volume string
	uid, gid       uint32
	timeout        time.Duration // the call timeout (0: none)
	token          string        // sent with auth on every connection ("": none)
	tls            *tls.Config   // nil: plain
}

// session is one run of a command: the streams, the (lazily opened)
// connection and mount, and whether an operation failed.
type session struct {
	ctx    context.Context
	cfg    config
	stdin  io.Reader
	stdout io.Writer     // unbuffered, for bulk data
	out    *bufio.Writer // buffered stdout, for listings

	// errMu serializes writes to stderr: the outage hook runs on the
	// goroutines of the client's calls. prog is the progress line on
	// screen, cleared before a message.
	errMu       sync.Mutex
	stderr      io.Writer
	prog        *progress
	unreachable bool // the outage message was printed

	c       *client.Client
	m       *client.Mount
	connErr error // set once connecting or mounting failed

	failed      bool
	interrupted bool // "interrupted" was reported
}

func newSession(ctx context.Context, cfg config, stdin io.Reader, stdout, stderr io.Writer) *session {
	return &session{ctx: ctx, cfg: cfg, stdin: stdin, stdout: stdout, out: bufio.NewWriter(stdout), stderr: stderr}
}

// connect dials the server on first use. A failure is reported (once)
// and returned; the command should then stop.
func (s *session) connect() (*client.Client, error) {
	if s.c != nil || s.connErr != nil {
		return s.c, s.connErr
	}
	opts := []client.Option{client.WithConns(1, 2), client.WithCallTimeout(s.cfg.timeout), client.WithOutageHook(s.outage)}
	if s.cfg.token != "" {
		opts = append(opts, client.WithToken(s.cfg.token))
	}
	if s.cfg.tls != nil {
		opts = append(opts, client.WithTLS(s.cfg.tls))
	}
	c, err := client.Dial(s.ctx, s.cfg.server, opts...)
	if err != nil {
		s.connErr = err
		s.fail("connect", s.cfg.server, err)
		return nil, err
	}
	s.c = c
	return c, nil
}

// mount connects and mounts the volume on first use. A failure is
// reported (once) and returned; the command should then stop.
func (s *session) mount() (*client.Mount, error) {
	if s.m != nil || s.connErr != nil {
		return s.m, s.connErr
	}
	c, err := s.connect()
	if err != nil {
		return nil, err
	}
	m, err := c.Mount(s.ctx, s.cfg.volume, client.MountOptions{User: userName(), UID: s.cfg.uid, GID: s.cfg.gid})
	if err != nil {
		s.connErr = err
		shown := err
		if errors.Is(err, syscall.ENOENT) {
			// One message for an unknown volume, not the errno's text.
			shown = errors.New("no such volume on this server (pfs volumes lists them)")
		}
		s.fail("mount", s.cfg.volume, shown)
		return nil, err
	}
	s.m = m
	return m, nil
}

// close unmounts and closes the connection.
func (s *session) close() {
	if s.c != nil {
		_ = s.c.Close() // Close unmounts
	}
}

// outage is the client's outage hook: it says at once that the server is
// unreachable and that pfs retries, and when it is back.
func (s *session) outage(o client.Outage) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if o.Reconnected {
		if s.unreachable {
			s.unreachable = false
			s.noticeLocked(fmt.Sprintf("pfs: proxyfsd at %s reachable again after %s", o.Addr, roughDuration(o.Down)))
		}
		return
	}
	s.unreachable = true
	msg := fmt.Sprintf("pfs: proxyfsd at %s unreachable (%s), retrying", o.Addr, errText(o.Err))
	if o.RetryFor > 0 {
		msg += " for " + roughDuration(o.RetryFor).String()
	}
	s.noticeLocked(msg + "...")
}

// roughDuration rounds d for a message: whole seconds from 1s up.
func roughDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// noticeLocked writes line to stderr, clearing the progress line first;
// s.errMu is held.
func (s *session) noticeLocked(line string) {
	s.prog.clear()
	fmt.Fprintln(s.stderr, line)
}

// fail reports "pfs: OP PATH: message" on stderr and marks the run as
// failed. After an interrupt (SIGINT, SIGTERM), the calls that fail
// because of it are reported once.
func (s *session) fail(op, name string, err error) {
	s.failed = true
	if errors.Is(err, context.Canceled) && s.ctx.Err() != nil {
		if s.interrupted {
			return
		}
		s.interrupted = true
	}
	_ = s.out.Flush() // keep stdout and stderr in order
	s.errMu.Lock()
	s.noticeLocked(fmt.Sprintf("pfs: %s %s: %s", op, name, errText(err)))
	s.errMu.Unlock()
}

// errText is the message of err: the strerror of its errno if it has one
// ("no such file or directory"), else its text; "interrupted" for a call
// canceled by a signal; for a call that gave up while the server was
// unreachable, the server, how long it was retried and the last error.
func errText(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	var ue *client.UnreachableError
	if errors.As(err, &ue) {
		return fmt.Sprintf("%s: proxyfsd at %s unreachable, retried for %s (%s)", errno.Error(), ue.Addr,
			roughDuration(ue.For), errText(ue.Err))
	}
	return errno.Error()
}

// newProgress returns the progress of a transfer of total bytes (< 0:
// unknown) on stderr, or nil (see newProgress in progress.go).
func (s *session) newProgress(total int64) *progress {
	p := newProgress(s.stderr, total)
	if p == nil {
		return nil
	}
	p.mu = &s.errMu
	s.errMu.Lock()
	s.prog = p
	s.errMu.Unlock()
	return p
}

// endProgress clears p's line and forgets it.
func (s *session) endProgress(p *progress) {
	if p == nil {
		return
	}
	p.finish()
	s.errMu.Lock()
	if s.prog == p {
		s.prog = nil
	}
	s.errMu.Unlock()
}

// cleanupCtx is the context of the cleanup after a failed or interrupted
// transfer: not canceled by the interrupt, and bounded.
func (s *session) cleanupCtx() (context.Context, context.CancelFunc) {
	d := 10 * time.Second
	if s.cfg.timeout > 0 {
		d = min(d, s.cfg.timeout)
	}
	return context.WithTimeout(context.WithoutCancel(s.ctx), d)
}

// remoteName is the name of a remote path for display and joining: a
// leading "/" is added if missing.
func remoteName(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "/" + p
	}
	return p
}

// isRoot reports whether remote path p names the volume root.
func isRoot(p string) bool { return path.Clean("/"+p) == "/" }

// maxSymlinks is how many symlinks resolve follows (as the server).
const maxSymlinks = 40

// resolve returns the path and stat of p after following symlinks in its
// last component (the server follows the intermediate ones). Relative
// targets are taken from the link's directory, absolute ones from the
// volume root.
func (s *session) resolve(m *client.Mount, p string) (string, client.Stat, error) {
	for range maxSymlinks + 1 {
		st, err := m.GetStatPath(s.ctx, p)
		if err != nil {
			return p, st, err
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			return p, st, nil
		}
		target, err := m.ReadSymlink(s.ctx, st.Ino)
		if err != nil {
			return p, st, err
		}
		if strings.HasPrefix(target, "/") {
			p = target
		} else {
			p = path.Join(path.Dir(remoteName(p)), target)
		}
	}
	return p, client.Stat{}, syscall.ELOOP
}

// isDir reports whether st is a directory.
func isDir(st client.Stat) bool { return st.Mode&syscall.S_IFMT == syscall.S_IFDIR }

func isSymlink(st client.Stat) bool { return st.Mode&syscall.S_IFMT == syscall.S_IFLNK }

// userName is the user name the mount is made for (informational).
func userName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return strconv.Itoa(os.Getuid())
}
