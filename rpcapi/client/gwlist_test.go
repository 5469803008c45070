package client

import (
	"context"
	"errors"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestSplitGateways: Dial's address is a comma-separated list of gateways,
// spaces around each ignored; an empty entry is EINVAL.
func TestSplitGateways(t *testing.T) {
	for in, want := range map[string][]string{
		"127.0.0.1:9450":                        {"127.0.0.1:9450"},
		"a:1,b:2":                               {"a:1", "b:2"},
		" a:1 , /run/proxyfs.sock ,unix:x.sock": {"a:1", "/run/proxyfs.sock", "unix:x.sock"},
	} {
		got, err := splitGateways(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitGateways(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a:1,", ",a:1", "a:1,,b:2", " , "} {
		if _, err := splitGateways(in); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("splitGateways(%q): %v, want EINVAL", in, err)
		}
		if _, err := Dial(context.Background(), in); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Dial(%q): %v, want EINVAL", in, err)
		}
	}
}

// TestDialGatewayList: a list whose first gateway refuses connections
// reaches the next one, and a mount there works.
func TestDialGatewayList(t *testing.T) {
	d := startDaemon(t)
	// A port nobody listens on: bind it, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, dead+", "+d.tcp())
	if err != nil {
		t.Fatalf("Dial of a list past a refusing gateway: %v", err)
	}
	defer c.Close()
	m, err := c.Mount(ctx, "default", alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreatePath(ctx, "/via-list", 0o644); err != nil {
		t.Errorf("create through the second gateway of the list: %v", err)
	}
	if _, err := Dial(ctx, dead); err == nil {
		t.Errorf("Dial of a refusing gateway alone succeeded")
	}
}
