// Package daemontest runs the real proxyfsd binary for integration tests.
//
// Start builds proxyfsd once per test process (with -race when the test
// binary has it; PROXYFS_DAEMON_RACE=0 or 1 overrides), writes a
// configuration into a temporary directory, starts the daemon and waits
// until it listens:
//
//	d := daemontest.Start(t, daemontest.Options{})
//	conn, _ := net.Dial("tcp", d.TCPAddr)
//
// The daemon listens on a free loopback TCP port and on a Unix socket;
// Restart brings it back on the same addresses with the same data. The
// daemon is killed when the test ends; d.Check runs proxyfsd -check (the
// fsck) on its volumes.
package daemontest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Volume is one volume of the daemon's configuration.
type Volume struct {
	// Name is the volume name; required.
	Name string
	// Engine is "local" (the default), "memory" or "etcdswift".
	Engine string
	// CapacityBytes is the volume's capacity (0: engine default).
	CapacityBytes uint64
	// SyncInterval is the volume's sync interval (0: 1s).
	SyncInterval time.Duration
	// ReadOnly and RootSquash set read_only and root_squash; AnonUID and
	// AnonGID, if not 0, set anon_uid and anon_gid.
	ReadOnly, RootSquash bool
	AnonUID, AnonGID     uint32
	// Extra is more of the volume's TOML, one key = value per line (the
	// etcdswift engine's keys, for example).
	Extra string
}

// Options configures a test daemon. Zero values take the daemon's
// defaults, except as noted.
type Options struct {
	// Volumes defaults to one local volume named "default".
	Volumes []Volume
	// NoTCP and NoUnix disable a listener.
	NoTCP, NoUnix bool
	// Limits (0: the daemon's default).
	MaxMessageBytes    int
	MaxIOBytes         int
	MaxConnections     int
	MaxInflightPerConn int
	// ShutdownGrace defaults to 5s.
	ShutdownGrace time.Duration
	// MountGrace is server.mount_grace (0: the daemon's default).
	MountGrace time.Duration
	// ReclaimGrace is server.reclaim_grace (0: the daemon's default).
	ReclaimGrace time.Duration
	// MaxMountsPerConnection is server.max_mounts_per_connection (0: the
	// daemon's default).
	MaxMountsPerConnection int
	// Connection limits (0: the daemon's default).
	MaxConnectionsPerPeer         int
	HandshakeTimeout, IdleTimeout time.Duration
	// LogLevel defaults to "debug".
	LogLevel string
	// LogAccess is log.access: "" off, "true" the daemon's log, else a
	// file's path.
	LogAccess string
	// StartTimeout bounds the wait for the daemon to listen (default 30s).
	StartTimeout time.Duration
	// Metrics serves /metrics, /healthz and /readyz on a free loopback
	// port (Daemon.MetricsAddr); Pprof adds /debug/pprof/.
	Metrics, Pprof bool
	// DataDir is where the volumes live (default: a directory under the
	// test's temporary directory); set it to put them on a filesystem of
	// the test's own, such as a small tmpfs.
	DataDir string
	// ServerExtra is more TOML lines for [server] (socket mode, TLS).
	ServerExtra string
	// Access, if set, is the body of an [access] table.
	Access string
}

// Daemon is a running (or stopped) proxyfsd.
type Daemon struct {
	// TCPAddr is the loopback TCP address ("" with NoTCP).
	TCPAddr string
	// UnixPath is the Unix socket path ("" with NoUnix).
	UnixPath string
	// MetricsAddr is the HTTP address of /metrics ("" without
	// Options.Metrics).
	MetricsAddr string
	// DataDir holds the volumes: DataDir/<volume name>.
	DataDir string
	// ConfigPath is the daemon's configuration file.
	ConfigPath string

	t       testing.TB
	opts    Options
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	werr error         // cmd.Wait's result, valid after done
	logs *lockedBuffer
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a proxyfsd binary built from this checkout,
// building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("daemontest: %v", buildErr)
	}
	return binPath
}

func build() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the proxyfs module")
	}
	race := raceEnabled
	if v := os.Getenv("PROXYFS_DAEMON_RACE"); v != "" {
		race = v == "1"
	}
	// One binary per user and build mode, shared by every test process:
	// each process builds into a temporary file and renames it into place
	// (a running daemon keeps its old inode), so nothing piles up in /tmp.
	// Per checkout too (a hash of its go.mod path), so that two work
	// trees testing at once never run each other's daemon.
	h := fnv.New32a()
	h.Write([]byte(gomod))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("proxyfsd-test-%d-%08x", os.Getuid(), h.Sum32()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	name := "proxyfsd"
	if race {
		name += "-race"
	}
	bin := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, name+".tmp-")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"build", "-o", tmp.Name()}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/proxyfsd")
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// Start starts a daemon for t and waits until it listens. The daemon is
// killed when t ends.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	bin := Binary(t)
	if len(opts.Volumes) == 0 {
		opts.Volumes = []Volume{{Name: "default"}}
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = 5 * time.Second
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "debug"
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	base := t.TempDir()
	d := &Daemon{
		t:          t,
		opts:       opts,
		DataDir:    opts.DataDir,
		ConfigPath: filepath.Join(base, "proxyfsd.toml"),
		logPath:    filepath.Join(base, "proxyfsd.log"),
		logs:       &lockedBuffer{},
	}
	if d.DataDir == "" {
		d.DataDir = filepath.Join(base, "data")
	}
	if !opts.NoTCP {
		d.TCPAddr = "127.0.0.1:0"
	}
	if !opts.NoUnix {
		// Unix socket paths are limited to 107 bytes; t.TempDir() paths
		// can be longer.
		sdir, err := os.MkdirTemp("", "pfsd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(sdir) })
		d.UnixPath = filepath.Join(sdir, "proxyfsd.sock")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemontest: proxyfsd log (%s):\n%s", d.logPath, d.tail(80))
		}
		d.kill()
	})
	d.writeConfig()
	d.start(bin)
	// Keep the port: Restart comes back on the same address.
	d.writeConfig()
	return d
}

func (d *Daemon) writeConfig() {
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\ntcp = %q\nunix = %q\n", d.TCPAddr, d.UnixPath)
	o := d.opts
	for _, n := range []struct {
		key string
		v   int
	}{{"max_message_bytes", o.MaxMessageBytes}, {"max_io_bytes", o.MaxIOBytes},
		{"max_connections", o.MaxConnections}, {"max_inflight_per_conn", o.MaxInflightPerConn},
		{"max_mounts_per_connection", o.MaxMountsPerConnection},
		{"max_connections_per_peer", o.MaxConnectionsPerPeer}} {
		if n.v != 0 {
			fmt.Fprintf(&b, "%s = %d\n", n.key, n.v)
		}
	}
	for _, n := range []struct {
		key string
		v   time.Duration
	}{{"handshake_timeout", o.HandshakeTimeout}, {"idle_timeout", o.IdleTimeout},
		{"reclaim_grace", o.ReclaimGrace}} {
		if n.v != 0 {
			fmt.Fprintf(&b, "%s = %q\n", n.key, n.v.String())
		}
	}
	fmt.Fprintf(&b, "shutdown_grace = %q\n", o.ShutdownGrace.String())
	if o.ServerExtra != "" {
		fmt.Fprintf(&b, "%s\n", o.ServerExtra)
	}
	if o.MountGrace != 0 {
		fmt.Fprintf(&b, "mount_grace = %q\n", o.MountGrace.String())
	}
	metricsAddr := ""
	if o.Metrics {
		metricsAddr = d.MetricsAddr
		if metricsAddr == "" {
			metricsAddr = "127.0.0.1:0"
		}
	}
	fmt.Fprintf(&b, "\n[metrics]\nlisten = %q\npprof = %v\n", metricsAddr, o.Pprof)
	fmt.Fprintf(&b, "\n[log]\nlevel = %q\nformat = \"console\"\n", o.LogLevel)
	switch o.LogAccess {
	case "":
	case "true":
		fmt.Fprintf(&b, "access = true\n")
	default:
		fmt.Fprintf(&b, "access = %q\n", o.LogAccess)
	}
	if o.Access != "" {
		fmt.Fprintf(&b, "\n[access]\n%s\n", o.Access)
	}
	for _, v := range o.Volumes {
		engine := v.Engine
		if engine == "" {
			engine = "local"
		}
		fmt.Fprintf(&b, "\n[[volume]]\nname = %q\nengine = %q\npath = %q\nauto_format = true\n", v.Name, engine, filepath.Join(d.DataDir, v.Name))
		if v.CapacityBytes != 0 {
			fmt.Fprintf(&b, "capacity_bytes = %d\n", v.CapacityBytes)
		}
		if v.SyncInterval != 0 {
			fmt.Fprintf(&b, "sync_interval = %q\n", v.SyncInterval.String())
		}
		fmt.Fprintf(&b, "read_only = %v\nroot_squash = %v\n", v.ReadOnly, v.RootSquash)
		if v.AnonUID != 0 {
			fmt.Fprintf(&b, "anon_uid = %d\n", v.AnonUID)
		}
		if v.AnonGID != 0 {
			fmt.Fprintf(&b, "anon_gid = %d\n", v.AnonGID)
		}
		if v.Extra != "" {
			b.WriteString(strings.TrimSuffix(v.Extra, "\n") + "\n")
		}
	}
	if err := os.WriteFile(d.ConfigPath, []byte(b.String()), 0o644); err != nil {
		d.t.Fatalf("daemontest: %v", err)
	}
}

// start runs the binary and waits for its ready line.
func (d *Daemon) start(bin string) {
	d.t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatalf("daemontest: %v", err)
	}
	fmt.Fprintf(io.MultiWriter(logf, d.logs), "==== daemontest: starting %s -config %s\n", bin, d.ConfigPath)
	cmd := exec.Command(bin, "-config", d.ConfigPath)
	cmd.Dir = filepath.Dir(d.ConfigPath)
	out := io.MultiWriter(logf, d.logs)
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatalf("daemontest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("daemontest: start proxyfsd: %v", err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if strings.HasPrefix(line, "proxyfsd ready ") {
				select {
				case ready <- line:
				default:
				}
			}
		}
	}()
	done := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		d.mu.Lock()
		d.werr = err
		d.mu.Unlock()
		close(done)
	}()

	select {
	case line := <-ready:
		for _, f := range strings.Fields(line)[2:] {
			k, v, _ := strings.Cut(f, "=")
			if k == "tcp" && v != "-" {
				d.TCPAddr = v
			}
			if k == "metrics" && v != "-" {
				d.MetricsAddr = v
			}
		}
	case <-done:
		d.t.Fatalf("daemontest: proxyfsd exited before it was ready (%v); log:\n%s", d.exitErr(), d.tail(40))
	case <-time.After(d.opts.StartTimeout):
		d.kill()
		d.t.Fatalf("daemontest: proxyfsd not ready after %v; log:\n%s", d.opts.StartTimeout, d.tail(40))
	}
}

func (d *Daemon) exitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.werr
}

// running returns the current process's done channel, or nil if the
// daemon is not running.
func (d *Daemon) running() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return nil
	}
	select {
	case <-d.done:
		return nil
	default:
		return d.done
	}
}

// Running reports whether the daemon process is alive.
func (d *Daemon) Running() bool { return d.running() != nil }

func (d *Daemon) kill() {
	done := d.running()
	if done == nil {
		return
	}
	d.mu.Lock()
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.mu.Unlock()
	<-done
}

// Kill kills the daemon with SIGKILL (a crash) and waits for it to exit.
func (d *Daemon) Kill() {
	d.t.Helper()
	d.kill()
}

// Stop sends SIGTERM, waits for the daemon to exit and fails the test
// unless it exits with status 0 within the shutdown grace plus 30s.
func (d *Daemon) Stop() {
	d.t.Helper()
	done := d.running()
	if done == nil {
		d.t.Errorf("daemontest: Stop: daemon is not running (exit: %v)", d.exitErr())
		return
	}
	d.mu.Lock()
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.mu.Unlock()
	select {
	case <-done:
	case <-time.After(d.opts.ShutdownGrace + 30*time.Second):
		d.kill()
		d.t.Errorf("daemontest: proxyfsd did not exit after SIGTERM; log:\n%s", d.tail(40))
		return
	}
	if err := d.exitErr(); err != nil {
		d.t.Errorf("daemontest: proxyfsd exited after SIGTERM with %v; log:\n%s", err, d.tail(40))
	}
}

// Restart starts the daemon again with the same configuration, data and
// addresses. A running daemon is stopped first (SIGTERM).
func (d *Daemon) Restart() {
	d.t.Helper()
	if d.Running() {
		d.Stop()
	}
	d.start(Binary(d.t))
}

// Reconfigure rewrites the daemon's configuration file with change
// applied to its options, without restarting it (for a reload).
func (d *Daemon) Reconfigure(change func(*Options)) {
	d.t.Helper()
	change(&d.opts)
	d.writeConfig()
}

// RestartWith changes the daemon's options with change, then restarts it
// as Restart does, on the same addresses and data. Only what a restart
// can change may be changed (volume options such as ReadOnly or
// RootSquash, limits), not the listeners or the data directory.
func (d *Daemon) RestartWith(change func(*Options)) {
	d.t.Helper()
	if d.Running() {
		d.Stop()
	}
	change(&d.opts)
	d.writeConfig()
	d.start(Binary(d.t))
}

// Check runs proxyfsd -check on the daemon's volumes and fails the test
// if it reports problems. A running daemon is stopped for the check
// (SIGTERM) and started again afterwards. Memory volumes are empty after a
// restart, so only durable volumes are really checked.
func (d *Daemon) Check(t testing.TB) {
	t.Helper()
	wasRunning := d.Running()
	if wasRunning {
		d.Stop()
	}
	cmd := exec.Command(Binary(t), "-check", "-config", d.ConfigPath)
	cmd.Dir = filepath.Dir(d.ConfigPath)
	out, err := cmd.CombinedOutput()
	fmt.Fprintf(d.logs, "==== daemontest: proxyfsd -check: %v\n%s", err, out)
	if err != nil {
		t.Errorf("daemontest: proxyfsd -check: %v\n%s", err, out)
	}
	if wasRunning {
		d.start(Binary(t))
	}
}

// Run runs the daemon's binary with its configuration and args (for
// example -check, -repair, -format, or none to see it refuse to start)
// and returns its exit code and everything it printed. A run that has not
// ended after timeout is killed and fails the test. The daemon must not be
// running.
func (d *Daemon) Run(t testing.TB, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(Binary(t), append([]string{"-config", d.ConfigPath}, args...)...)
	cmd.Dir = filepath.Dir(d.ConfigPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("daemontest: run proxyfsd %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("daemontest: proxyfsd %v still running after %v:\n%s", args, timeout, out.String())
	}
	fmt.Fprintf(d.logs, "==== daemontest: proxyfsd %v: %v\n%s", args, err, out.String())
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("daemontest: run proxyfsd %v: %v", args, err)
	}
	return code, out.String()
}

// Logs returns everything the daemon wrote to stdout and stderr so far,
// across restarts.
func (d *Daemon) Logs() string { return d.logs.String() }

func (d *Daemon) tail(n int) string {
	lines := strings.Split(strings.TrimRight(d.logs.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"... (" + strconv.Itoa(len(lines)-n) + " lines before)"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Pid returns the process id of the running daemon, or 0 if it is not
// running.
func (d *Daemon) Pid() int {
	if d.running() == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.Process.Pid
}
