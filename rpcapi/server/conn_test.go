package server_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// dialFrom dials the daemon's TCP address from the loopback address
// local (Linux routes all of 127.0.0.0/8 to lo), so that a test can be
// several peers.
func dialFrom(t *testing.T, local, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c), nextID: 100}
}

// refused checks that the server refuses rc (EAGAIN, id null, a message
// containing why), then closes it.
func (rc *rawConn) refused(why string) {
	rc.t.Helper()
	rc.sendRaw(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	r := rc.recv()
	if string(r.ID) != "null" {
		rc.t.Errorf("refusal id %s, want null", r.ID)
	}
	if e := rc.checkErr(r, "refused connection", "EAGAIN", 11); !strings.Contains(e.Message, why) {
		rc.t.Errorf("refusal %q, want %q in it", e.Message, why)
	}
	rc.closed()
}

// TestConnectionFloodFromOnePeer checks that silent connections from one
// peer cannot lock other clients out: with max_connections 16, one peer
// gets at most 12 (the default max_connections_per_peer, three quarters),
// so the Unix socket and other addresses are still served at once.
func TestConnectionFloodFromOnePeer(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{MaxConnections: 16})
	for i := 0; i < 16; i++ {
		dial(t, "tcp", d.TCPAddr) // sends nothing
	}
	// The listener has handled the 16 before this one, refused for one
	// limit or the other.
	dial(t, "tcp", d.TCPAddr).refused("too many connections")

	u := dial(t, "unix", d.UnixPath)
	u.ok(wire.MethodPing, obj{}, nil)
	o := dialFrom(t, "127.0.0.2", d.TCPAddr)
	o.ok(wire.MethodPing, obj{}, nil)
}

// TestMaxConnectionsPerPeer checks the per-peer limit: by IP address on
// TCP, by user on the Unix socket, for both channels, and that a slot
// comes back when its connection closes.
func TestMaxConnectionsPerPeer(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{MaxConnections: 8, MaxConnectionsPerPeer: 2})
	a := dial(t, "tcp", d.TCPAddr)
	a.ok(wire.MethodPing, obj{}, nil)
	b := dialBin(t, "tcp", d.TCPAddr)
	b.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 1, MountID: 1, Inode: 1}, nil)
	if h, _ := b.reply(); h.Errno != uint32(syscall.EINVAL) || h.Flags&wire.ReplyFlagBadMount == 0 {
		t.Fatalf("binary getstat with a bad mount: %+v", h)
	}
	dial(t, "tcp", d.TCPAddr).refused("max_connections_per_peer 2")
	bc := dialBin(t, "tcp", d.TCPAddr)
	bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 77, MountID: 1, Inode: 1}, nil)
	if h, _ := bc.reply(); h.Errno != uint32(syscall.EAGAIN) || h.ID != 77 {
		t.Errorf("binary refusal %+v", h)
	}

	// Other peers: another address, and the Unix socket (by uid).
	u1 := dial(t, "unix", d.UnixPath)
	u1.ok(wire.MethodPing, obj{}, nil)
	u2 := dial(t, "unix", d.UnixPath)
	u2.ok(wire.MethodPing, obj{}, nil)
	dial(t, "unix", d.UnixPath).refused("max_connections_per_peer 2")
	o := dialFrom(t, "127.0.0.2", d.TCPAddr)
	o.ok(wire.MethodPing, obj{}, nil)

	// A closed connection gives its peer's slot back.
	a.c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dial(t, "tcp", d.TCPAddr)
		c.sendRaw(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		if body, err := c.readMsg(); err == nil && !strings.Contains(string(body), "EAGAIN") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the peer's slot did not come back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandshakeTimeout checks that a connection which does not send a
// complete first request within handshake_timeout is closed, on both
// channels and both listeners, and that the deadline no longer applies
// once it has.
func TestHandshakeTimeout(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{HandshakeTimeout: 500 * time.Millisecond})
	for _, c := range []struct{ name, network, data string }{
		{"silent tcp", "tcp", ""},
		{"silent unix", "unix", ""},
		{"partial header", "tcp", "Content-Length: 10\r\n"},
		{"partial body", "unix", "Content-Length: 10\r\n\r\n{}"},
		{"partial binary header", "tcp", wire.RequestMagic + "\x01\x00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := d.TCPAddr
			if c.network == "unix" {
				addr = d.UnixPath
			}
			rc := dial(t, c.network, addr)
			if c.data != "" {
				rc.write(c.data)
			}
			start := time.Now()
			rc.closed()
			if took := time.Since(start); took < 300*time.Millisecond {
				t.Errorf("closed after %v, before handshake_timeout", took)
			}
		})
	}
	// A connection that has sent a request may then be quiet for longer.
	rc := dial(t, "tcp", d.TCPAddr)
	rc.ok(wire.MethodPing, obj{}, nil)
	bc := dialBin(t, "unix", d.UnixPath)
	bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 1, MountID: 1, Inode: 1}, nil)
	bc.reply()
	time.Sleep(1500 * time.Millisecond)
	rc.ok(wire.MethodPing, obj{}, nil)
	bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 2, MountID: 1, Inode: 1}, nil)
	if h, _ := bc.reply(); h.ID != 2 {
		t.Errorf("binary reply after a quiet time: %+v", h)
	}
	if !strings.Contains(d.Logs(), "handshake_timeout") {
		t.Error("no log line names handshake_timeout")
	}
}

// TestIdleTimeout checks that a connection with nothing in flight that
// sends nothing for idle_timeout is closed, on both channels, and that a
// connection in use is not.
func TestIdleTimeout(t *testing.T) {
	// Under a second: the write deadline must keep up with short ones.
	const idle = 600 * time.Millisecond
	d := daemontest.Start(t, daemontest.Options{IdleTimeout: idle})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	bc := dialBin(t, "unix", d.UnixPath)
	bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 1, MountID: id, Inode: 1}, nil)
	if h, _ := bc.reply(); h.Errno != 0 {
		t.Fatalf("binary getstat: %+v", h)
	}
	last := time.Now()
	// When does the server close each one?
	closedAt := func(c net.Conn) <-chan time.Duration {
		ch := make(chan time.Duration, 1)
		go func() {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			n, err := c.Read(make([]byte, 1))
			if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				ch <- -1
				return
			}
			ch <- time.Since(last)
		}()
		return ch
	}
	jsonClosed, binClosed := closedAt(rc.c), closedAt(bc.c)

	// Busy: a request every 150ms for 5 idle timeouts.
	busy := dial(t, "unix", d.UnixPath)
	for end := time.Now().Add(5 * idle); time.Now().Before(end); time.Sleep(150 * time.Millisecond) {
		busy.ok(wire.MethodPing, obj{}, nil)
	}

	for name, ch := range map[string]<-chan time.Duration{"JSON": jsonClosed, "binary": binClosed} {
		// Generous bounds: the point is that it happens, after about
		// idle_timeout, not at some other deadline.
		if took := <-ch; took < idle*8/10 || took > 4*idle {
			t.Errorf("idle %s connection closed %v after its last request (-1: not closed), want about %v", name, took, idle)
		}
	}
	// The mount outlives its connection.
	busy = dial(t, "tcp", d.TCPAddr)
	busy.ok(wire.MethodGetStat, obj{"mount_id": id, "inode": 1}, nil)
}

// TestIdleKeepsOpenFiles checks that a connection holding a mount with
// open files is not closed for idleness (the files, and their locks, would
// close with the mount), on both channels, and that it idles out once the
// files are closed.
func TestIdleKeepsOpenFiles(t *testing.T) {
	const idle = 500 * time.Millisecond
	d := daemontest.Start(t, daemontest.Options{IdleTimeout: idle, MountGrace: 200 * time.Millisecond})
	rc := dial(t, "tcp", d.TCPAddr)
	id := rc.mount("default", 0).MountID
	fh := lockFile(t, rc, "/f", 2, id)[0]
	rc.ok(wire.MethodLock, lk(id, fh, "setlk", "write", 0, 0, "o"), nil)
	bc := dialBin(t, "unix", d.UnixPath)
	bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 1, MountID: id, Inode: 1}, nil)
	if h, _ := bc.reply(); h.Errno != 0 {
		t.Fatalf("binary getstat: %+v", h)
	}
	other := dial(t, "tcp", d.TCPAddr)
	other.mount("default", 0)
	time.Sleep(4 * idle)
	// The connections with the open file are still there, the other one
	// is not.
	rc.ok(wire.MethodLock, lk(id, fh, "getlk", "write", 0, 0, "o"), nil)
	bc.request(wire.RequestHeader{Opcode: wire.OpGetStat, ID: 2, MountID: id, Inode: 1}, nil)
	if h, _ := bc.reply(); h.Errno != 0 {
		t.Fatalf("binary getstat after idling: %+v", h)
	}
	other.c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := other.c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection without open files still open: %d %v", n, err)
	}
	// Closed files: the connection idles out.
	rc.ok(wire.MethodClose, obj{"mount_id": id, "fh": fh}, nil)
	rc.c.SetReadDeadline(time.Now().Add(4 * idle))
	if n, err := rc.c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection whose files are closed still open: %d %v", n, err)
	}
}
