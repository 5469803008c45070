// Command pfs is a small command-line client of proxyfsd for operators
// and scripts, built on rpcapi/client.
//
// Usage:
//
//	pfs [-server ADDR] [-volume NAME] [-uid N -gid N] COMMAND [ARGS...]
//
// Global flags:
//
//	-server ADDR   daemon address: host:port for TCP, or the path of its
//	               Unix socket (any ADDR containing '/'); default
//	               $PROXYFS_SERVER, else 127.0.0.1:9450
//	-volume NAME   volume to mount (default "default")
//	-uid N, -gid N identity of the mount; new files and directories are
//	               owned by it (default: the caller's uid and gid)
//
// Commands (remote paths are paths from the volume root):
//
//	ls [-l] [PATH...]        list directories (default /); -l shows mode,
//	                         nlink, uid, gid, size, mtime, name, and
//	                         "-> target" for symlinks
//	stat PATH...             show every attribute (ino, times with
//	                         nanoseconds, crtime, ...)
//	cat PATH...              write files to stdout
//	put LOCAL REMOTE         upload LOCAL ("-" = stdin) to REMOTE, creating
//	                         or truncating it, and flush it
//	get REMOTE LOCAL         download REMOTE to LOCAL ("-" = stdout)
//	mkdir [-p] PATH...       create directories (-p: with parents, no
//	                         error if they exist)
//	rm [-r] PATH...          remove files, symlinks (-r: and directories,
//	                         recursively)
//	mv SRC DST               rename SRC to DST (into DST if it is a
//	                         directory)
//	ln [-s] TARGET LINKNAME  make a hard link (-s: a symbolic link)
//	statvfs                  show the volume's size, usage and inodes
//	help                     show this help
//
// Command flags may appear anywhere among the command's arguments; "--"
// ends them. cat, get, put and ls follow a symlink named on the command
// line (ls only without -l); rm, mv, stat and ln never do.
//
// Errors go to stderr as "pfs: OP PATH: message", for example
// "pfs: stat /a/b: no such file or directory". A command given several
// paths goes on with the next one after an error. The exit status is 0 on
// success, 1 if an operation failed, and 2 for a usage error (unknown
// command, missing arguments, bad flag).
//
// put and get show a progress bar on stderr for files larger than 8 MiB
// when stderr is a terminal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // an operation failed
	exitUsage = 2 // bad command line
)

// defaultServer is the daemon address without -server or $PROXYFS_SERVER.
const defaultServer = "127.0.0.1:9450"

const usageText = `usage: pfs [-server ADDR] [-volume NAME] [-uid N -gid N] COMMAND [ARGS...]

Commands:
  ls [-l] [PATH...]        list directories (-l: long format)
  stat PATH...             show all attributes
  cat PATH...              write files to stdout
  put LOCAL REMOTE         upload a file (LOCAL "-" = stdin)
  get REMOTE LOCAL         download a file (LOCAL "-" = stdout)
  mkdir [-p] PATH...       create directories (-p: with parents)
  rm [-r] PATH...          remove files (-r: directories recursively)
  mv SRC DST               rename or move
  ln [-s] TARGET LINKNAME  make a hard link (-s: a symbolic link)
  statvfs                  show volume usage
  help                     show this help

Global flags:
  -server ADDR  host:port or Unix socket path (default $PROXYFS_SERVER or 127.0.0.1:9450)
  -volume NAME  volume to mount (default "default")
  -uid N        uid of the mount (default: yours)
  -gid N        gid of the mount (default: yours)
`

// command is one pfs command.
type command struct {
	// flags are the single-letter flags the command accepts.
	flags string
	// minArgs and maxArgs bound the operands (maxArgs -1: no limit).
	minArgs, maxArgs int
	// run runs the command; it reports operation errors through s.
	run func(s *session, f cmdFlags, args []string)
}

// commands is the dispatch table.
var commands = map[string]command{
	"ls":      {flags: "l", minArgs: 0, maxArgs: -1, run: cmdLs},
	"stat":    {minArgs: 1, maxArgs: -1, run: cmdStat},
	"cat":     {minArgs: 1, maxArgs: -1, run: cmdCat},
	"put":     {minArgs: 2, maxArgs: 2, run: cmdPut},
	"get":     {minArgs: 2, maxArgs: 2, run: cmdGet},
	"mkdir":   {flags: "p", minArgs: 1, maxArgs: -1, run: cmdMkdir},
	"rm":      {flags: "r", minArgs: 1, maxArgs: -1, run: cmdRm},
	"mv":      {minArgs: 2, maxArgs: 2, run: cmdMv},
	"ln":      {flags: "s", minArgs: 2, maxArgs: 2, run: cmdLn},
	"statvfs": {minArgs: 0, maxArgs: 0, run: cmdStatvfs},
}

// run is pfs with its arguments (without the program name) and standard
// streams; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	cfg := config{volume: "default", uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
		return usageError(stderr, err.Error())
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
	f, args, err := parseCmdFlags(cmd.flags, args)
	if err != nil {
		return usageError(stderr, name+": "+err.Error())
	}
	switch {
	case len(args) < cmd.minArgs:
		return usageError(stderr, name+": missing operand")
	case cmd.maxArgs >= 0 && len(args) > cmd.maxArgs:
		return usageError(stderr, name+": too many operands")
	}
	s := newSession(ctx, cfg, stdin, stdout, stderr)
	defer s.close()
	cmd.run(s, f, args)
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

// cmdFlags are the single-letter flags given to a command.
type cmdFlags map[byte]bool

// parseCmdFlags takes the flags among args (anywhere before "--"; "-" is
// an operand) and returns them and the operands. Flags may be combined
// ("-rl").
func parseCmdFlags(allowed string, args []string) (cmdFlags, []string, error) {
	f := cmdFlags{}
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
		for j := 1; j < len(a); j++ {
			c := a[j]
			if !containsByte(allowed, c) {
				return nil, nil, fmt.Errorf("unknown flag -%c", c)
			}
			f[c] = true
		}
	}
	return f, rest, nil
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
