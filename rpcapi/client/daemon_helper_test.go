package client

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
)

// daemon wraps daemontest.Daemon for these tests.
type daemon struct {
	d *daemontest.Daemon
}

// startDaemon starts a real proxyfsd with a small max_io_size, so that
// large I/O spans several chunks without huge buffers. The volume's root
// is alice's (see aliceDaemon).
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return &daemon{aliceDaemon(t, daemontest.Options{MaxIOBytes: 256 << 10, LogLevel: "info"})}
}

// aliceDaemon starts a real proxyfsd and gives the root directory of its
// volumes to alice, as an administrator would: the tests mount as alice,
// and a new volume's root is root's (mode 0755).
func aliceDaemon(t *testing.T, opts daemontest.Options) *daemontest.Daemon {
	t.Helper()
	d := daemontest.Start(t, opts)
	ctx := context.Background()
	c, err := Dial(ctx, d.TCPAddr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	vols := []string{"default"}
	if len(opts.Volumes) > 0 {
		vols = vols[:0]
		for _, v := range opts.Volumes {
			vols = append(vols, v.Name)
		}
	}
	for _, v := range vols {
		m, err := c.Mount(ctx, v, MountOptions{User: "admin"})
		if err != nil {
			t.Fatalf("Mount %s as root: %v", v, err)
		}
		if err := m.ChownPath(ctx, "/", int64(alice.UID), int64(alice.GID)); err != nil {
			t.Fatalf("chown the root of %s to alice: %v", v, err)
		}
		if err := m.Unmount(ctx); err != nil {
			t.Fatalf("Unmount: %v", err)
		}
	}
	return d
}

func (d *daemon) tcp() string  { return d.d.TCPAddr }
func (d *daemon) unix() string { return d.d.UnixPath }

// kill kills the daemon with SIGKILL.
func (d *daemon) kill(t *testing.T) { t.Helper(); d.d.Kill() }

// term stops the daemon with SIGTERM.
func (d *daemon) term(t *testing.T) { t.Helper(); d.d.Stop() }

// restart starts the daemon again (it must not be running).
func (d *daemon) restart(t *testing.T) { t.Helper(); d.d.Restart() }

// countingHandler is a slog.Handler that counts messages.
type countingHandler struct {
	mu     sync.Mutex
	counts map[string]int
}

func newCountingLogger() (*slog.Logger, *countingHandler) {
	h := &countingHandler{counts: map[string]int{}}
	return slog.New(h), h
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.counts[r.Message]++
	h.mu.Unlock()
	return nil
}

func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[msg]
}

func (h *countingHandler) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprint(h.counts)
}
