package daemontest

import (
	"net"
	"strings"
	"testing"
)

func dialOK(t *testing.T, network, addr string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	c.Close()
}

func TestStartRestartStopCheck(t *testing.T) {
	d := Start(t, Options{Volumes: []Volume{{Name: "a"}, {Name: "m", Engine: "memory"}}})
	if !strings.HasPrefix(d.TCPAddr, "127.0.0.1:") || strings.HasSuffix(d.TCPAddr, ":0") {
		t.Fatalf("TCPAddr %q", d.TCPAddr)
	}
	dialOK(t, "tcp", d.TCPAddr)
	dialOK(t, "unix", d.UnixPath)
	addr := d.TCPAddr
	d.Kill()
	if d.Running() {
		t.Fatal("running after Kill")
	}
	d.Restart()
	if d.TCPAddr != addr {
		t.Errorf("restart moved TCP from %s to %s", addr, d.TCPAddr)
	}
	dialOK(t, "tcp", d.TCPAddr)
	dialOK(t, "unix", d.UnixPath)
	d.Check(t)
	if !d.Running() {
		t.Fatal("Check did not restart the daemon")
	}
	d.Stop()
	if !strings.Contains(d.Logs(), "listening") {
		t.Errorf("no listening line in logs:\n%s", d.Logs())
	}
}
