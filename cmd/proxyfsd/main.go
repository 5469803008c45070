// Command proxyfsd is the proxyfs daemon: it serves the volumes of its
// configuration over JSON-RPC and the binary data channel (PROTOCOL.md).
//
//	proxyfsd [-config FILE]         serve (no -config: the embedded default)
//	proxyfsd -check [-config FILE]  check every volume's consistency, writing nothing, and exit
//	proxyfsd -repair [-config FILE] open every volume allowing repairs that drop damaged
//	                                log records (saved aside first), check it, and exit
//	proxyfsd -format [-config FILE] create every volume that does not exist yet, and exit
//	proxyfsd -collect-garbage [-garbage-age D] [-config FILE]
//	                                delete the data objects that no file references and that are
//	                                older than D (etcdswift volumes; default and least 1h), and exit
//	proxyfsd -version               print the version and exit
//
// Once every listener is up it prints one line on standard output,
//
//	proxyfsd ready tcp=127.0.0.1:9450 unix=proxyfs-data/proxyfsd.sock metrics=127.0.0.1:9451
//
// with "-" for a disabled listener; a TCP port 0 in the configuration
// shows the port actually bound. The metrics address serves /metrics,
// /healthz, /readyz (and /debug/pprof/ when metrics.pprof is set). SIGTERM and SIGINT drain in-flight calls
// for server.shutdown_grace, sync the volumes and exit 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/proxyfs/proxyfs/conf"
	pversion "github.com/proxyfs/proxyfs/internal/version"
	"github.com/proxyfs/proxyfs/metrics"
	"github.com/proxyfs/proxyfs/rpcapi/server"
	"github.com/proxyfs/proxyfs/volume"

	// The storage engines.
	_ "github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
	_ "github.com/proxyfs/proxyfs/vfsbackend/local"
	_ "github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// version is the build's version (package internal/version, set at
// build time with -ldflags "-X github.com/proxyfs/proxyfs/internal/version.Version=...").
var version = pversion.Version

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("proxyfsd", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configFile := fl.String("config", "", "configuration `file` (TOML); none: the embedded default")
	check := fl.Bool("check", false, "check the consistency of every volume, writing nothing (daemon must not be running), and exit: 0 clean, 1 problems")
	repair := fl.Bool("repair", false, "open every volume allowing repairs that drop damaged log records (saved aside first), check it, and exit: 0 clean, 1 problems")
	format := fl.Bool("format", false, "create every volume that does not exist yet (never touching an existing one) and exit")
	collect := fl.Bool("collect-garbage", false, "delete the data objects of etcdswift volumes that no file references (left by interrupted writes), and exit")
	garbageAge := fl.Duration("garbage-age", volume.MinGarbageAge, "with -collect-garbage: only objects older than this (at least the default: younger ones may belong to writes in progress on a gateway)")
	showVersion := fl.Bool("version", false, "print the version and exit")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "proxyfsd: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "proxyfsd %s\n", pversion.String())
		return 0
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "proxyfsd: "+format+"\n", args...)
		return 1
	}

	var cfg *conf.Config
	var err error
	if *configFile != "" {
		cfg, err = conf.Load(*configFile)
	} else {
		cfg, err = conf.Default()
	}
	if err != nil {
		return fail("%v", err)
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return fail("log: %v", err)
	}
	defer log.Sync()
	ctx := context.Background()
	accessLog, closeAccess, err := newAccessLogger(cfg.Log, stderr)
	if err != nil {
		return fail("log.access: %v", err)
	}
	defer closeAccess()

	if n := count(*check, *repair, *format, *collect); n > 1 {
		return fail("-check, -repair, -format and -collect-garbage exclude each other")
	}
	if *collect {
		if *garbageAge < volume.MinGarbageAge {
			return fail("-garbage-age %v: less than %v could delete the objects of a write in progress", *garbageAge, volume.MinGarbageAge)
		}
		lines, err := volume.CollectGarbage(ctx, cfg, log, *garbageAge)
		for _, l := range lines {
			fmt.Fprintln(stdout, l)
		}
		if err != nil {
			return fail("collect garbage: %v", err)
		}
		return 0
	}
	if *format {
		lines, err := volume.Format(ctx, cfg, log)
		for _, l := range lines {
			fmt.Fprintln(stdout, l)
		}
		if err != nil {
			return fail("format: %v", err)
		}
		return 0
	}
	if *check || *repair {
		what, checkFn := "check", volume.Check
		if *repair {
			what, checkFn = "repair", volume.Repair
		}
		start := time.Now()
		probs, err := checkFn(ctx, cfg, log, stderr)
		for _, p := range probs {
			fmt.Fprintln(stdout, p)
		}
		if err != nil {
			return fail("%s: %v", what, err)
		}
		if len(probs) > 0 {
			fmt.Fprintf(stdout, "proxyfsd: %s: %d problem(s)\n", what, len(probs))
			return 1
		}
		fmt.Fprintf(stdout, "proxyfsd: %s: %d volume(s) consistent (%.2fs)\n", what, len(cfg.Volumes), time.Since(start).Seconds())
		return 0
	}

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err == nil {
		err = m.RegisterBuildInfo(version)
	}
	if err != nil {
		return fail("metrics: %v", err)
	}
	// Every socket first: a port in use or a bad socket path fails the
	// start, in one line, before any volume is opened (or formatted).
	var ml net.Listener
	if cfg.Metrics.Listen != "" {
		if cfg.Metrics.WebConfigFile != "" {
			if err := metrics.CheckWebConfig(cfg.Metrics.WebConfigFile, conf.IsLoopback(cfg.Metrics.Listen)); err != nil {
				return fail("metrics: %v", err)
			}
		}
		if ml, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fail("metrics: %v", err)
		}
	}
	ls, err := server.Listen(cfg.Server)
	if err != nil {
		closeQuietly(ml)
		return fail("%v", err)
	}
	log.Info("starting", zap.String("version", version), zap.String("commit", pversion.Commit), zap.String("config", configName(*configFile)))
	vols, err := volume.OpenAll(ctx, cfg, volume.Options{Logger: log, Metrics: m})
	if err != nil {
		closeQuietly(ml)
		ls.Close()
		return fail("%v", err)
	}
	srv, err := server.Open(ctx, cfg, server.Options{Logger: log, AccessLog: accessLog, Version: version, Metrics: m, Listeners: ls, Volumes: vols})
	if err != nil {
		closeQuietly(ml)
		ls.Close()
		return fail("%v", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := srv.Start(); err != nil {
		closeQuietly(ml)
		srv.Shutdown(ctx)
		return fail("%v", err)
	}
	metricsAddr := ""
	var hs *http.Server
	if ml != nil {
		metricsAddr = ml.Addr().String()
		hs = &http.Server{Handler: metrics.Handler(reg, srv.Ready, cfg.Metrics.Pprof), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := metrics.Serve(ml, hs, cfg.Metrics.WebConfigFile); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", zap.Error(err))
			}
		}()
		log.Info("metrics listening", zap.String("addr", metricsAddr), zap.Bool("pprof", cfg.Metrics.Pprof),
			zap.String("web_config_file", cfg.Metrics.WebConfigFile))
	}
	fmt.Fprintf(stdout, "proxyfsd ready tcp=%s unix=%s metrics=%s\n", dash(srv.TCPAddr()), dash(srv.UnixPath()), dash(metricsAddr))

	var sig os.Signal
	for sig == nil {
		select {
		case sig = <-sigs:
		case <-hup:
			// Tokens, cert_users and TLS files; errors are logged, the
			// old ones stay.
			log.Info("SIGHUP: reloading access.tokens_file, access.cert_users and the TLS files")
			_ = srv.Reload(rereadConfig(*configFile, log))
		}
	}
	log.Info("shutting down", zap.String("signal", sig.String()), zap.Duration("grace", cfg.Server.ShutdownGrace))
	sctx, cancel := context.WithTimeout(ctx, cfg.Server.ShutdownGrace)
	defer cancel()
	if hs != nil {
		// /readyz answers 503 while the server drains; then it goes away.
		defer hs.Close()
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

// count returns how many of flags are set.
func count(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func configName(f string) string {
	if f == "" {
		return "(embedded default)"
	}
	return f
}

// newLogger builds the daemon's logger from the [log] section; logs go to
// w (standard error).
func newLogger(c conf.Log, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	if c.Format == "json" {
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl), zap.ErrorOutput(zapcore.AddSync(w))), nil
}

// newAccessLogger builds the access log of [log] access: nil when it is
// off; the daemon's stream and format at any level for true; else a file
// of JSON lines, appended to. close syncs and closes it.
func newAccessLogger(c conf.Log, w io.Writer) (l *zap.Logger, close func(), err error) {
	switch c.Access {
	case "":
		return nil, func() {}, nil
	case conf.AccessToLog:
		base, err := newLogger(conf.Log{Level: "debug", Format: c.Format}, w)
		if err != nil {
			return nil, nil, err
		}
		l = base.Named("access")
		return l, func() { _ = l.Sync() }, nil
	}
	f, err := os.OpenFile(c.Access, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, nil, err
	}
	base, err := newLogger(conf.Log{Level: "debug", Format: "json"}, f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	l = base.Named("access")
	return l, func() { _ = l.Sync(); f.Close() }, nil
}

// closeQuietly closes l if it is open; used on failure paths only.
func closeQuietly(l net.Listener) {
	if l != nil {
		l.Close()
	}
}

// rereadConfig reads the configuration file again for a reload; nil (and
// logged) if there is none or it does not load, so that only the files
// it names are read again.
func rereadConfig(path string, log *zap.Logger) *conf.Config {
	if path == "" {
		return nil
	}
	c, err := conf.Load(path)
	if err != nil {
		log.Error("reload: the configuration file does not load; access.cert_users kept as they were", zap.Error(err))
		return nil
	}
	return c
}
