package server

import (
	"net"
	"testing"
)

// addrConn is a net.Conn with a given remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }
func (c addrConn) LocalAddr() net.Addr  { return c.remote }

func TestPeerKey(t *testing.T) {
	key := func(ip string) string {
		return peerKey(addrConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1234}})
	}
	for _, c := range []struct{ a, b string }{
		{"10.0.0.1", "10.0.0.1"},
		{"10.0.0.1", "::ffff:10.0.0.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"}, // one /64
	} {
		if key(c.a) != key(c.b) {
			t.Errorf("%s and %s: keys %q and %q, want the same", c.a, c.b, key(c.a), key(c.b))
		}
	}
	for _, c := range []struct{ a, b string }{
		{"10.0.0.1", "10.0.0.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"127.0.0.1", "::1"},
	} {
		if key(c.a) == key(c.b) {
			t.Errorf("%s and %s: both %q, want different keys", c.a, c.b, key(c.a))
		}
	}
	if k := key("2001:db8:1:2::1"); k != "ip 2001:db8:1:2::/64" {
		t.Errorf("IPv6 key %q", k)
	}
}
