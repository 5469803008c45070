package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/fusefs"
	"github.com/proxyfs/proxyfs/internal/version"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// usageError is a bad command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = "usage: proxyfs-fuse [-f] [-o OPTIONS] VOLUME MOUNTPOINT"

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// unmountTimeout bounds the unmount on the server at exit.
const unmountTimeout = 5 * time.Second

// readyEnv names the descriptor on which a background child reports that
// the mount is there ("ok") or why it failed.
const readyEnv = "PROXYFS_FUSE_READY_FD"

// run parses args, mounts, and serves until ctx ends (SIGTERM, SIGINT:
// unmount) or the mount goes (fusermount -u, umount).
func run(ctx context.Context, args []string, stderr io.Writer) error {
	var opts []string
	var pos []string
	foreground := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f":
			foreground = true
		case a == "-d":
			opts = append(opts, "debug")
			foreground = true
		case a == "-o":
			if i+1 == len(args) {
				return usageError{"-o needs an option list\n" + usage}
			}
			i++
			opts = append(opts, args[i])
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case a == "-version" || a == "--version":
			fmt.Fprintln(stderr, "proxyfs-fuse", version.String())
			return nil
		case a == "-h" || a == "-help" || a == "--help":
			fmt.Fprintln(stderr, usage)
			return nil
		case strings.HasPrefix(a, "-") && a != "-":
			return usageError{fmt.Sprintf("unknown flag %s\n%s", a, usage)}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return usageError{usage}
	}
	volume, dir := pos[0], pos[1]
	cfg, err := fusefs.ParseOptions(opts...)
	if err != nil {
		return usageError{err.Error()}
	}
	if cfg.Server == "" {
		cfg.Server = os.Getenv("PROXYFS_SERVER")
	}
	if cfg.Server == "" {
		cfg.Server = "127.0.0.1:9450"
	}
	if !foreground && os.Getenv(readyEnv) == "" {
		return background(args, stderr)
	}
	err = serve(ctx, volume, dir, cfg, stderr)
	if fd := os.Getenv(readyEnv); fd != "" {
		// Serve failed before it could report (a report of its own
		// was "ok", and then the pipe is closed already).
		ready(err)
	}
	return err
}

// serve mounts and serves in this process.
func serve(ctx context.Context, volume, dir string, cfg fusefs.MountConfig, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.Dial(ctx, cfg.Server, client.WithGateways(cfg.Gateways...), client.WithCallTimeout(cfg.Timeout), client.WithLogger(logger),
		client.WithOutageHook(func(o client.Outage) {
			if o.Reconnected {
				logger.Warn("proxyfsd reachable again", "server", cfg.Server)
			} else {
				logger.Warn("proxyfsd unreachable: calls wait for it", "server", cfg.Server, "err", o.Err)
			}
		}))
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := c.Mount(ctx, volume, client.MountOptions{User: "proxyfs-fuse", UID: cfg.UID, GID: cfg.GID, ReadOnly: cfg.ReadOnly})
	if err != nil {
		return err
	}
	defer func() {
		// The FUSE mount is gone; the server's mount goes too, but the
		// daemon may be gone as well: do not wait for it (the server
		// reclaims the mount after its mount_grace anyway).
		ctx, cancel := context.WithTimeout(context.Background(), unmountTimeout)
		defer cancel()
		_ = m.Unmount(ctx)
	}()
	fs := fusefs.New(m, cfg.Options)
	srv, err := fs.Mount(dir)
	if err != nil {
		return err
	}
	ready(nil)
	select {
	case <-srv.Done():
		return nil
	case <-ctx.Done():
		return srv.Unmount()
	}
}

var readyDone bool

// ready tells the waiting parent of a background child that the mount is
// there (err nil) or why not, once.
func ready(err error) {
	fd := os.Getenv(readyEnv)
	if fd == "" || readyDone {
		return
	}
	readyDone = true
	f := os.NewFile(3, "ready")
	if f == nil {
		return
	}
	msg := "ok\n"
	if err != nil {
		msg = strings.ReplaceAll(err.Error(), "\n", " ") + "\n"
	}
	_, _ = f.WriteString(msg)
	_ = f.Close()
	// stderr goes nowhere from now on.
	if devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		_ = syscall.Dup2(int(devnull.Fd()), 2)
	}
}

// background runs this program again, in the foreground and in a session
// of its own, and returns once it reports that the mount is there (or
// fails).
func background(args []string, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, append([]string{"-f"}, args...)...)
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = stderr // until it is ready
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		_ = cmd.Wait()
		return errors.New("the mount process ended before mounting")
	}
	if line = strings.TrimSuffix(line, "\n"); line != "ok" {
		_ = cmd.Wait()
		return errors.New(line)
	}
	return cmd.Process.Release()
}
