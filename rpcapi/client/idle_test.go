package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// TestDaemonIdleTimeout checks that a client whose connections the daemon
// closed for idle_timeout works on its next calls, idempotent or not,
// without an error reaching the caller: it notices the closed connections
// and dials again.
func TestDaemonIdleTimeout(t *testing.T) {
	const idle = 500 * time.Millisecond
	for _, tr := range []string{"tcp", "unix"} {
		t.Run(tr, func(t *testing.T) {
			d := aliceDaemon(t, daemontest.Options{IdleTimeout: idle, Metrics: true, LogLevel: "info"})
			addr := d.TCPAddr
			if tr == "unix" {
				addr = d.UnixPath
			}
			ctx := context.Background()
			logger, events := newCountingLogger()
			_, m := dialMount(t, addr, alice, WithConns(2, 2), WithLogger(logger))
			root := m.RootInode()
			st := must[Stat](t, "create")(m.Create(ctx, root, "f", 0o644))
			must[int](t, "write")(m.Write(ctx, st.Ino, []byte("before"), 0))
			must[Stat](t, "getstat")(m.GetStat(ctx, st.Ino))

			waitConnections(t, d, 0)

			// Every kind of call, on a client whose connections are gone.
			for i := range 3 {
				name := fmt.Sprintf("g%d", i)
				g := must[Stat](t, "create after idle")(m.Create(ctx, root, name, 0o644))
				must[Stat](t, "mkdir after idle")(m.Mkdir(ctx, root, "d"+name, 0o755))
				must[int](t, "write after idle")(m.Write(ctx, g.Ino, []byte("after"), 0))
				buf := make([]byte, 16)
				n := must[int](t, "read after idle")(m.Read(ctx, st.Ino, buf, 0))
				if !bytes.Equal(buf[:n], []byte("before")) {
					t.Fatalf("read after idle: %q", buf[:n])
				}
				if _, _, err := m.ReadDirPlus(ctx, root, -1, 0); err != nil {
					t.Fatalf("readdir_plus after idle: %v", err)
				}
				noErr(t, "unlink after idle", m.Unlink(ctx, root, name))
				if i < 2 {
					waitConnections(t, d, 0)
				}
			}
			t.Logf("client events: %s", events)
		})
	}
}

// waitConnections waits until the daemon has n client connections open
// (its proxyfs_connections gauges).
func waitConnections(t *testing.T, d *daemontest.Daemon, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		total, err := openConnections(d)
		if err != nil {
			t.Fatal(err)
		}
		if total == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after 20s, want %d", total, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openConnections sums the proxyfs_connections gauges of the daemon.
func openConnections(d *daemontest.Daemon) (int, error) {
	resp, err := http.Get("http://" + d.MetricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "proxyfs_connections{") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
			return 0, fmt.Errorf("%q: %v", line, err)
		}
		total += int(v)
	}
	return total, nil
}
