package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// config is what the global flags set.
type config struct {
	server, volume string
	uid, gid       uint32
}

// session is one run of a command: the streams, the (lazily opened)
// connection and mount, and whether an operation failed.
type session struct {
	ctx    context.Context
	cfg    config
	stdin  io.Reader
	stdout io.Writer     // unbuffered, for bulk data
	out    *bufio.Writer // buffered stdout, for listings
	stderr io.Writer

	c       *client.Client
	m       *client.Mount
	connErr error // set once connecting failed

	failed bool
}

func newSession(ctx context.Context, cfg config, stdin io.Reader, stdout, stderr io.Writer) *session {
	return &session{ctx: ctx, cfg: cfg, stdin: stdin, stdout: stdout, out: bufio.NewWriter(stdout), stderr: stderr}
}

// mount connects and mounts the volume on first use. A failure is
// reported (once) and returned; the command should then stop.
func (s *session) mount() (*client.Mount, error) {
	if s.m != nil || s.connErr != nil {
		return s.m, s.connErr
	}
	c, err := client.Dial(s.ctx, s.cfg.server, client.WithConns(1, 2))
	if err != nil {
		s.connErr = err
		s.fail("connect", s.cfg.server, err)
		return nil, err
	}
	m, err := c.Mount(s.ctx, s.cfg.volume, client.MountOptions{User: userName(), UID: s.cfg.uid, GID: s.cfg.gid})
	if err != nil {
		c.Close()
		s.connErr = err
		s.fail("mount", s.cfg.volume, err)
		return nil, err
	}
	s.c, s.m = c, m
	return m, nil
}

// close unmounts and closes the connection.
func (s *session) close() {
	if s.c != nil {
		_ = s.c.Close() // Close unmounts
	}
}

// fail reports "pfs: OP PATH: message" on stderr and marks the run as
// failed.
func (s *session) fail(op, name string, err error) {
	s.failed = true
	_ = s.out.Flush() // keep stdout and stderr in order
	fmt.Fprintf(s.stderr, "pfs: %s %s: %s\n", op, name, errText(err))
}

// errText is the message of err: the strerror of its errno if it has one
// ("no such file or directory"), else its text.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
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

// userName is the user name the mount is made for (informational).
func userName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return strconv.Itoa(os.Getuid())
}
