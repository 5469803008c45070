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
// large I/O spans several chunks without huge buffers.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return &daemon{daemontest.Start(t, daemontest.Options{MaxIOBytes: 256 << 10, LogLevel: "info"})}
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
