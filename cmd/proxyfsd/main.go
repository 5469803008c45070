// Command proxyfsd is the proxyfs daemon: it serves the volumes of its
// configuration over JSON-RPC and the binary data channel (PROTOCOL.md).
//
//	proxyfsd [-config FILE]         serve (no -config: the embedded default)
//	proxyfsd -check [-config FILE]  check every volume's consistency and exit
//	proxyfsd -version               print the version and exit
//
// Once every listener is up it prints one line on standard output,
//
//	proxyfsd ready tcp=127.0.0.1:9450 unix=proxyfs-data/proxyfsd.sock
//
// with "-" for a disabled listener; a TCP port 0 in the configuration
// shows the port actually bound. SIGTERM and SIGINT drain in-flight calls
// for server.shutdown_grace, sync the volumes and exit 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/proxyfs/proxyfs/conf"
	"github.com/proxyfs/proxyfs/rpcapi/server"

	// The storage engines.
	_ "github.com/proxyfs/proxyfs/vfsbackend/local"
	_ "github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("proxyfsd", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configFile := fl.String("config", "", "configuration `file` (TOML); none: the embedded default")
	check := fl.Bool("check", false, "check the consistency of every volume (daemon must not be running) and exit: 0 clean, 1 problems")
	showVersion := fl.Bool("version", false, "print the version and exit")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "proxyfsd: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "proxyfsd %s\n", version)
		return 0
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "proxyfsd: "+format+"\n", args...)
		return 1
	}

	cfg := conf.Default()
	if *configFile != "" {
		var err error
		if cfg, err = conf.Load(*configFile); err != nil {
			return fail("%v", err)
		}
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return fail("log: %v", err)
	}
	defer log.Sync()
	ctx := context.Background()

	if *check {
		probs, err := server.Check(ctx, cfg, log)
		for _, p := range probs {
			fmt.Fprintln(stdout, p)
		}
		if err != nil {
			return fail("check: %v", err)
		}
		if len(probs) > 0 {
			fmt.Fprintf(stdout, "proxyfsd: check: %d problem(s)\n", len(probs))
			return 1
		}
		fmt.Fprintf(stdout, "proxyfsd: check: %d volume(s) consistent\n", len(cfg.Volumes))
		return 0
	}

	log.Info("starting", zap.String("version", version), zap.String("config", configName(*configFile)))
	srv, err := server.Open(ctx, cfg, server.Options{Logger: log, Version: version})
	if err != nil {
		return fail("%v", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := srv.Start(); err != nil {
		srv.Shutdown(ctx)
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "proxyfsd ready tcp=%s unix=%s\n", dash(srv.TCPAddr()), dash(srv.UnixPath()))

	sig := <-sigs
	log.Info("shutting down", zap.String("signal", sig.String()), zap.Duration("grace", cfg.Server.ShutdownGrace))
	sctx, cancel := context.WithTimeout(ctx, cfg.Server.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
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
