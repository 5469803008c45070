// Command pfs is a small command-line client of proxyfsd for operators
// and scripts, built on rpcapi/client.
//
// Usage:
//
//	pfs [-server ADDR] [-volume NAME] [-uid N -gid N] [-timeout D] COMMAND [ARGS...]
//	pfs -version
//
// Global flags:
//
//	-server ADDR   daemon address: host:port for TCP, or the path of its
//	               Unix socket (any ADDR containing '/'), or a
//	               comma-separated list of gateways serving the same
//	               volumes; default $PROXYFS_SERVER, else 127.0.0.1:9450
//	-volume NAME   volume to mount (default "default")
//	-uid N, -gid N identity of the mount; new files and directories are
//	               owned by it (default: the caller's uid and gid)
//	-timeout D     bound of every call, reconnects and retries included
//	               (default 30s; 0: none)
//	-version       print pfs's version and exit
//
// Commands (remote paths are paths from the volume root):
//
//	ls [-l] [PATH...]          list directories (default /); -l shows
//	                           mode, nlink, uid, gid, size, mtime, name,
//	                           and "-> target" for symlinks
//	stat PATH...               show every attribute (ino, times with
//	                           nanoseconds, crtime, ...)
//	cat PATH...                write files to stdout
//	put [-r] LOCAL... REMOTE   upload LOCAL ("-" = stdin) to REMOTE,
//	                           replacing it, and flush it; -r: directories
//	                           recursively; several LOCALs: into the
//	                           directory REMOTE
//	get [-r] REMOTE... LOCAL   download REMOTE to LOCAL ("-" = stdout)
//	cp [-r] SRC... DST         copy on the server (copy_range: the data
//	                           does not cross the wire)
//	mv SRC DST                 rename SRC to DST (into DST if it is a
//	                           directory)
//	rm [-r] PATH...            remove files, symlinks (-r: and directories,
//	                           recursively)
//	mkdir [-p] PATH...         create directories (-p: with parents, no
//	                           error if they exist)
//	ln [-s] TARGET LINKNAME    make a hard link (-s: a symbolic link)
//	chmod MODE PATH...         set permission bits: octal (644) or
//	                           symbolic (u+x,go-w)
//	chown OWNER PATH...        set the owner: UID, UID:GID or :GID,
//	                           numbers or local user and group names
//	touch [-d TIME] PATH...    create empty files, or set the access and
//	                           modification times to now (or TIME)
//	truncate -s SIZE PATH...   set sizes (SIZE: bytes, with K, M, G, T
//	                           suffixes; +SIZE, -SIZE: relative); creates
//	                           missing files
//	xattr list PATH            list extended attribute names
//	xattr get PATH NAME        write an attribute's value to stdout
//	xattr set PATH NAME VALUE  set an attribute (VALUE "-": stdin)
//	xattr rm PATH NAME         remove an attribute
//	du [-s] [-h] [PATH...]     space used under each directory, in KiB
//	                           (-s: only the total of each PATH; -h:
//	                           human-readable)
//	statvfs                    the mounted volume's size, usage and inodes
//	df                         size, usage and inodes of every volume
//	volumes                    every volume with its size, inodes and
//	                           mounts
//	status                     the server's version, uptime, connections,
//	                           mounts, open files and volume states
//	help                       show this help
//
// Command flags may appear anywhere among the command's arguments; "--"
// ends them. cat, get, put, ls (without -l), cp, chmod, chown, touch,
// truncate and xattr follow a symlink named on the command line; rm, mv,
// stat, du and ln never do.
//
// put, get and cp write to a temporary name in the destination's
// directory (".NAME.pfs-partial-XXXXXXXX") and rename it over NAME at the
// end, so that NAME is either the old file or the whole new one. A
// transfer that fails, or that SIGINT or SIGTERM interrupts, removes the
// temporary file (remote or local).
//
// Errors go to stderr as "pfs: OP PATH: message", for example
// "pfs: stat /a/b: no such file or directory". A command given several
// paths goes on with the next one after an error. The exit status is 0 on
// success, 1 if an operation failed, 2 for a usage error (unknown
// command, missing arguments, bad flag), and 128+N after signal N (130
// for SIGINT, 143 for SIGTERM).
//
// When the server cannot be reached during a command (the daemon went
// away), pfs says so at once on stderr and retries until -timeout, then
// fails with the server's address and the last connection error.
//
// put and get show progress on stderr for files larger than 8 MiB (and
// for stdin once 8 MiB went through) when stderr is a terminal.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/internal/version"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // an operation failed
	exitUsage = 2 // bad command line
)

// defaultServer is the daemon address without -server or $PROXYFS_SERVER.
const defaultServer = "127.0.0.1:9450"

const usageText = `usage: pfs [-server ADDR] [-volume NAME] [-uid N -gid N] [-timeout D] COMMAND [ARGS...]
       pfs -version

Files:
  ls [-l] [PATH...]          list directories (-l: long format)
  stat PATH...               show all attributes
  cat PATH...                write files to stdout
  put [-r] LOCAL... REMOTE   upload files (LOCAL "-" = stdin; -r: directories)
  get [-r] REMOTE... LOCAL   download files (LOCAL "-" = stdout; -r: directories)
  cp [-r] SRC... DST         copy on the server (-r: directories)
  mv SRC DST                 rename or move
  rm [-r] PATH...            remove files (-r: directories recursively)
  mkdir [-p] PATH...         create directories (-p: with parents)
  ln [-s] TARGET LINKNAME    make a hard link (-s: a symbolic link)
  chmod MODE PATH...         set permissions (644, u+x,go-w)
  chown OWNER PATH...        set the owner (UID, UID:GID, :GID; names too)
  touch [-d TIME] PATH...    create files or set their times to now (or TIME)
  truncate -s SIZE PATH...   set sizes (SIZE: 10M, +1G, -4K)
  xattr list PATH            list extended attributes
  xattr get PATH NAME        write an attribute's value to stdout
  xattr set PATH NAME VALUE  set an attribute (VALUE "-" = stdin)
  xattr rm PATH NAME         remove an attribute
  du [-s] [-h] [PATH...]     space used, in KiB (-s: totals; -h: human-readable)

Volumes and server:
  statvfs                    usage of the mounted volume
  df                         usage of every volume
  volumes                    list volumes with size, inodes and mounts
  status                     server version, uptime, connections, volume states
  help                       show this help

Global flags:
  -server ADDR  host:port or Unix socket path, or a comma-separated list of gateways
                (default $PROXYFS_SERVER or 127.0.0.1:9450)
  -volume NAME  volume to mount (default "default")
  -uid N        uid of the mount (default: yours)
  -gid N        gid of the mount (default: yours)
  -timeout D    bound of every call, retries included (default 30s; 0: none)
  -token-file F authenticate with the token on the first line of F
                (default $PROXYFS_TOKEN_FILE); -token T gives it on the
                command line (visible to other local users; default
                $PROXYFS_TOKEN)
  -tls          speak TLS to a TCP server, verified with the system's CAs
  -tls-ca F     ... verified with the CA certificates in F (implies -tls)
  -tls-cert F, -tls-key F
                client certificate and key (implies -tls)
  -version      print the version
`

// command is one pfs command.
type command struct {
	// flags are the single-letter flags the command accepts; valueFlags
	// those that take a value ("-s SIZE").
	flags, valueFlags string
	// minArgs and maxArgs bound the operands (maxArgs -1: no limit).
	minArgs, maxArgs int
	// noMount: the command needs a connection but no mount.
	noMount bool
	// check validates the flags and operands before connecting (nil:
	// nothing beyond the counts); its error is a usage error.
	check func(f cmdFlags, args []string) error
	// run runs the command; it reports operation errors through s.
	run func(s *session, f cmdFlags, args []string)
}

// commands is the dispatch table.
var commands = map[string]command{
	"ls":       {flags: "l", minArgs: 0, maxArgs: -1, run: cmdLs},
	"stat":     {minArgs: 1, maxArgs: -1, run: cmdStat},
	"cat":      {minArgs: 1, maxArgs: -1, run: cmdCat},
	"put":      {flags: "r", minArgs: 2, maxArgs: -1, run: cmdPut},
	"get":      {flags: "r", minArgs: 2, maxArgs: -1, run: cmdGet},
	"cp":       {flags: "r", minArgs: 2, maxArgs: -1, run: cmdCp},
	"mkdir":    {flags: "p", minArgs: 1, maxArgs: -1, run: cmdMkdir},
	"rm":       {flags: "r", minArgs: 1, maxArgs: -1, run: cmdRm},
	"mv":       {minArgs: 2, maxArgs: 2, run: cmdMv},
	"ln":       {flags: "s", minArgs: 2, maxArgs: 2, run: cmdLn},
	"chmod":    {minArgs: 2, maxArgs: -1, check: checkChmod, run: cmdChmod},
	"chown":    {minArgs: 2, maxArgs: -1, check: checkChown, run: cmdChown},
	"touch":    {valueFlags: "d", minArgs: 1, maxArgs: -1, check: checkTouch, run: cmdTouch},
	"truncate": {valueFlags: "s", minArgs: 1, maxArgs: -1, check: checkTruncate, run: cmdTruncate},
	"xattr":    {minArgs: 2, maxArgs: 4, check: checkXattr, run: cmdXattr},
	"du":       {flags: "sh", minArgs: 0, maxArgs: -1, run: cmdDu},
	"statvfs":  {minArgs: 0, maxArgs: 0, run: cmdStatvfs},
	"df":       {minArgs: 0, maxArgs: 0, noMount: true, run: cmdDf},
	"volumes":  {minArgs: 0, maxArgs: 0, noMount: true, run: cmdVolumes},
	"status":   {minArgs: 0, maxArgs: 0, noMount: true, run: cmdStatus},
}

// run is pfs with its arguments (without the program name) and standard
// streams; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	cfg := config{volume: "default", uid: uint32(os.Getuid()), gid: uint32(os.Getgid()), timeout: client.DefaultCallTimeout}
	cfg.server = os.Getenv("PROXYFS_SERVER")
	if cfg.server == "" {
		cfg.server = defaultServer
	}
	fs := flag.NewFlagSet("pfs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.server, "server", cfg.server, "")
	fs.StringVar(&cfg.volume, "volume", cfg.volume, "")
	fs.Func("uid", "", idFlag(&cfg.uid))
	fs.Func("gid", "", idFlag(&cfg.gid))
	fs.Func("timeout", "", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("not a duration such as 30s or 2m")
		}
		cfg.timeout = d
		return nil
	})
	showVersion := fs.Bool("version", false, "")
	token, tokenFile := os.Getenv("PROXYFS_TOKEN"), os.Getenv("PROXYFS_TOKEN_FILE")
	fs.Func("token", "", func(v string) error { token, tokenFile = v, ""; return nil })
	fs.Func("token-file", "", func(v string) error { tokenFile, token = v, ""; return nil })
	useTLS := fs.Bool("tls", false, "")
	tlsCA := fs.String("tls-ca", "", "")
	tlsCert := fs.String("tls-cert", "", "")
	tlsKey := fs.String("tls-key", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
		return usageError(stderr, err.Error())
	}
	if token == "" && tokenFile != "" {
		t, err := readToken(tokenFile)
		if err != nil {
			return usageError(stderr, err.Error())
		}
		token = t
	}
	cfg.token = token
	if *useTLS || *tlsCA != "" || *tlsCert != "" || *tlsKey != "" {
		tc, err := tlsConfig(*tlsCA, *tlsCert, *tlsKey)
		if err != nil {
			return usageError(stderr, err.Error())
		}
		cfg.tls = tc
	}
	if *showVersion {
		fmt.Fprintf(stdout, "pfs %s\n", version.String())
		return exitOK
	}
	args = fs.Args()
	if len(args) == 0 {
		return usageError(stderr, "missing command")
	}
	name, args := args[0], args[1:]
	if name == "help" {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		return usageError(stderr, fmt.Sprintf("unknown command %q", name))
	}
	f, args, err := parseCmdFlags(cmd.flags, cmd.valueFlags, args)
	if err != nil {
		return usageError(stderr, name+": "+err.Error())
	}
	switch {
	case len(args) < cmd.minArgs:
		return usageError(stderr, name+": missing operand")
	case cmd.maxArgs >= 0 && len(args) > cmd.maxArgs:
		return usageError(stderr, name+": too many operands")
	}
	if cmd.check != nil {
		if err := cmd.check(f, args); err != nil {
			return usageError(stderr, name+": "+err.Error())
		}
	}
	s := newSession(ctx, cfg, stdin, stdout, stderr)
	defer s.close()
	if cmd.noMount {
		if _, err := s.connect(); err == nil {
			cmd.run(s, f, args)
		}
	} else {
		cmd.run(s, f, args)
	}
	if err := s.out.Flush(); err != nil && !s.failed {
		s.fail("write", "stdout", err)
	}
	if s.failed {
		return exitFail
	}
	return exitOK
}

// usageError prints msg and the usage to stderr and returns exitUsage.
func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "pfs: %s\n%s", msg, usageText)
	return exitUsage
}

// readToken returns the token on the first line of the file path
// (without the newline and trailing blanks).
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, " \t\r")
	if line == "" {
		return "", fmt.Errorf("token file %s: no token on its first line", path)
	}
	return line, nil
}

// tlsConfig is the TLS configuration of -tls, -tls-ca, -tls-cert and
// -tls-key: the server verified with the CAs in ca (the system's if ""),
// and the client certificate cert with key, if given.
func tlsConfig(ca, cert, key string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca: %s holds no PEM certificate", ca)
		}
		tc.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// idFlag parses a uid or gid flag into *p.
func idFlag(p *uint32) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return errors.New("not a 32-bit unsigned number")
		}
		*p = uint32(n)
		return nil
	}
}

// cmdFlags are the flags given to a command.
type cmdFlags struct {
	set  map[byte]bool
	vals map[byte]string
}

// on reports whether flag c was given.
func (f cmdFlags) on(c byte) bool { return f.set[c] }

// val returns the value of flag c and whether it was given.
func (f cmdFlags) val(c byte) (string, bool) {
	v, ok := f.vals[c]
	return v, ok
}

// parseCmdFlags takes the flags among args (anywhere before "--"; "-" is
// an operand) and returns them and the operands. Flags may be combined
// ("-rl"); a flag of valueFlags takes the rest of its argument or, if
// that is empty, the next argument ("-s10M", "-s 10M").
func parseCmdFlags(allowed, valueFlags string, args []string) (cmdFlags, []string, error) {
	f := cmdFlags{set: map[byte]bool{}, vals: map[byte]string{}}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
	letters:
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case containsByte(valueFlags, c):
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return f, nil, fmt.Errorf("flag -%c needs a value", c)
					}
					i++
					v = args[i]
				}
				f.set[c] = true
				f.vals[c] = v
				break letters
			case containsByte(allowed, c):
				f.set[c] = true
			default:
				return f, nil, fmt.Errorf("unknown flag -%c", c)
			}
		}
	}
	return f, rest, nil
}

func containsByte(s string, c byte) bool {
	return strings.IndexByte(s, c) >= 0
}

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got syscall.Signal
	caught := make(chan struct{})
	go func() {
		sig := <-sigs
		got = sig.(syscall.Signal)
		close(caught)
		cancel() // the command cleans up (temporary files) and returns
		<-sigs   // a second signal: give up on the cleanup
		os.Exit(128 + int(got))
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	select {
	case <-caught:
		code = 128 + int(got)
	default:
	}
	os.Exit(code)
}
