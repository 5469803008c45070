package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// ---- chmod ----

var octalMode = regexp.MustCompile(`^[0-7]{1,4}$`)

// applyMode returns the permission bits that chmod MODE spec gives a file
// with mode old (isDir: a directory). spec is octal ("644", "4755"), or
// symbolic clauses separated by commas: [ugoa]*([+-=][rwxXst]*)+, as
// chmod(1), except that a clause without [ugoa] is taken as "a" whatever
// the umask.
func applyMode(spec string, old uint32, isDir bool) (uint32, error) {
	if octalMode.MatchString(spec) {
		n, _ := strconv.ParseUint(spec, 8, 32)
		return uint32(n), nil
	}
	bad := fmt.Errorf("invalid mode %q", spec)
	mode := old & 0o7777
	for _, clause := range strings.Split(spec, ",") {
		i := 0
		var who uint32
		for ; i < len(clause) && strings.IndexByte("ugoa", clause[i]) >= 0; i++ {
			switch clause[i] {
			case 'u':
				who |= 0o4700
			case 'g':
				who |= 0o2070
			case 'o':
				who |= 0o1007
			case 'a':
				who |= 0o7777
			}
		}
		if who == 0 {
			who = 0o7777
		}
		if i == len(clause) {
			return 0, bad
		}
		for i < len(clause) {
			op := clause[i]
			if op != '+' && op != '-' && op != '=' {
				return 0, bad
			}
			i++
			var bits uint32
			for ; i < len(clause) && strings.IndexByte("rwxXst", clause[i]) >= 0; i++ {
				switch clause[i] {
				case 'r':
					bits |= 0o444
				case 'w':
					bits |= 0o222
				case 'x':
					bits |= 0o111
				case 'X':
					if isDir || mode&0o111 != 0 {
						bits |= 0o111
					}
				case 's':
					bits |= 0o6000
				case 't':
					bits |= 0o1000
				}
			}
			bits &= who
			switch op {
			case '+':
				mode |= bits
			case '-':
				mode &^= bits
			case '=':
				mode = mode&^who | bits
			}
		}
	}
	return mode, nil
}

func checkChmod(_ cmdFlags, args []string) error {
	_, err := applyMode(args[0], 0, false)
	return err
}

// cmdChmod sets the permission bits of each path (following symlinks).
func cmdChmod(s *session, _ cmdFlags, args []string) {
	m, err := s.mount()
	if err != nil {
		return
	}
	spec := args[0]
	for _, a := range args[1:] {
		if s.ctx.Err() != nil {
			return
		}
		_, st, err := s.resolve(m, a)
		if err != nil {
			s.fail("chmod", a, err)
			continue
		}
		mode, _ := applyMode(spec, st.Mode, isDir(st))
		if err := m.Chmod(s.ctx, st.Ino, mode); err != nil {
			s.fail("chmod", a, err)
		}
	}
}

// ---- chown ----

// parseOwner parses chown's OWNER: UID, UID:GID, UID: (the uid only) or
// :GID, each a number or a local user or group name.
func parseOwner(spec string) (uid, gid int64, err error) {
	uid, gid = client.KeepID, client.KeepID
	u, g, _ := strings.Cut(spec, ":")
	if u == "" && g == "" {
		return uid, gid, fmt.Errorf("invalid owner %q", spec)
	}
	if u != "" {
		if uid, err = lookupID(u, "user", func(n string) (string, error) {
			usr, err := user.Lookup(n)
			if err != nil {
				return "", err
			}
			return usr.Uid, nil
		}); err != nil {
			return uid, gid, err
		}
	}
	if g != "" {
		if gid, err = lookupID(g, "group", func(n string) (string, error) {
			grp, err := user.LookupGroup(n)
			if err != nil {
				return "", err
			}
			return grp.Gid, nil
		}); err != nil {
			return uid, gid, err
		}
	}
	return uid, gid, nil
}

// lookupID returns name as a number, or the id lookup gives it.
func lookupID(name, kind string, lookup func(string) (string, error)) (int64, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return int64(n), nil
	}
	id, err := lookup(name)
	if err != nil {
		return 0, fmt.Errorf("unknown %s %q", kind, name)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q has id %q, not a number", kind, name, id)
	}
	return int64(n), nil
}

func checkChown(_ cmdFlags, args []string) error {
	_, _, err := parseOwner(args[0])
	return err
}

// cmdChown sets the owner and/or group of each path (following
// symlinks).
func cmdChown(s *session, _ cmdFlags, args []string) {
	uid, gid, _ := parseOwner(args[0])
	m, err := s.mount()
	if err != nil {
		return
	}
	for _, a := range args[1:] {
		if s.ctx.Err() != nil {
			return
		}
		_, st, err := s.resolve(m, a)
		if err != nil {
			s.fail("chown", a, err)
			continue
		}
		if err := m.Chown(s.ctx, st.Ino, uid, gid); err != nil {
			s.fail("chown", a, err)
		}
	}
}

// ---- touch ----

// timeLayouts are the forms of touch -d TIME besides RFC 3339 and
// @SECONDS, in local time.
var timeLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02",
}

// parseTime parses touch -d TIME: RFC 3339 ("2024-05-01T12:00:00Z",
// with a zone), "2024-05-01 12:00:00[.nnn]", "2024-05-01T12:00:00",
// "2024-05-01 12:00" or "2024-05-01" in local time, or "@SECONDS[.FRAC]"
// since the epoch.
func parseTime(v string) (time.Time, error) {
	if rest, ok := strings.CutPrefix(v, "@"); ok {
		secStr, frac, _ := strings.Cut(rest, ".")
		sec, err := strconv.ParseInt(secStr, 10, 64)
		if err == nil && len(frac) <= 9 {
			var nsec int64
			if frac != "" {
				nsec, err = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			}
			if err == nil && nsec >= 0 {
				return time.Unix(sec, nsec), nil
			}
		}
		return time.Time{}, fmt.Errorf("invalid time %q", v)
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q (use 2006-01-02 15:04:05, RFC 3339 or @SECONDS)", v)
}

func checkTouch(f cmdFlags, _ []string) error {
	if v, ok := f.val('d'); ok {
		_, err := parseTime(v)
		return err
	}
	return nil
}

// cmdTouch creates each path as an empty file if it does not exist, else
// sets its access and modification times to now (the server's clock: as
// touch(1), this needs only write permission, not ownership), or to -d
// TIME (the owner's or root's to set). A symlink is followed.
func cmdTouch(s *session, f cmdFlags, args []string) {
	var at *time.Time
	if v, ok := f.val('d'); ok {
		t, _ := parseTime(v)
		at = &t
	}
	m, err := s.mount()
	if err != nil {
		return
	}
	for _, a := range args {
		if s.ctx.Err() != nil {
			return
		}
		p, st, err := s.resolve(m, a)
		if errors.Is(err, syscall.ENOENT) {
			st, err = m.CreatePath(s.ctx, p, 0o644)
			if err == nil && at == nil {
				continue // a new file has the current times
			}
		}
		if err != nil {
			s.fail("touch", a, err)
			continue
		}
		if at == nil {
			if _, err := m.SetAttr(s.ctx, st.Ino, client.Attrs{Mask: wire.SetAtimeNow | wire.SetMtimeNow}); err != nil {
				s.fail("touch", a, err)
			}
			continue
		}
		ts := client.TimespecOf(*at)
		if err := m.SetTime(s.ctx, st.Ino, ts, ts); err != nil {
			s.fail("touch", a, err)
		}
	}
}

// ---- truncate ----

// sizeSuffixes are the units of truncate -s: powers of 1024, or of 1000
// with "B" ("KB").
var sizeSuffixes = map[string]uint64{
	"": 1, "B": 1,
	"K": 1 << 10, "KIB": 1 << 10, "KB": 1e3,
	"M": 1 << 20, "MIB": 1 << 20, "MB": 1e6,
	"G": 1 << 30, "GIB": 1 << 30, "GB": 1e9,
	"T": 1 << 40, "TIB": 1 << 40, "TB": 1e12,
	"P": 1 << 50, "PIB": 1 << 50, "PB": 1e15,
}

// parseSize parses truncate -s SIZE: a number with an optional unit
// suffix, and an optional sign: rel is 0 (set), +1 (extend by) or -1
// (shrink by).
func parseSize(v string) (rel int, n uint64, err error) {
	bad := fmt.Errorf("invalid size %q", v)
	s := v
	switch {
	case strings.HasPrefix(s, "+"):
		rel, s = 1, s[1:]
	case strings.HasPrefix(s, "-"):
		rel, s = -1, s[1:]
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, 0, bad
	}
	num, err := strconv.ParseUint(s[:i], 10, 64)
	mult, ok := sizeSuffixes[strings.ToUpper(s[i:])]
	if err != nil || !ok || (num != 0 && mult > math.MaxUint64/num) {
		return 0, 0, bad
	}
	return rel, num * mult, nil
}

func checkTruncate(f cmdFlags, _ []string) error {
	v, ok := f.val('s')
	if !ok {
		return errors.New("-s SIZE is required")
	}
	_, _, err := parseSize(v)
	return err
}

// cmdTruncate sets the size of each path (following symlinks), creating
// missing files.
func cmdTruncate(s *session, f cmdFlags, args []string) {
	v, _ := f.val('s')
	rel, n, _ := parseSize(v)
	m, err := s.mount()
	if err != nil {
		return
	}
	for _, a := range args {
		if s.ctx.Err() != nil {
			return
		}
		p, st, err := s.resolve(m, a)
		if errors.Is(err, syscall.ENOENT) {
			st, err = m.CreatePath(s.ctx, p, 0o644)
		}
		if err == nil && isDir(st) {
			err = syscall.EISDIR
		}
		if err != nil {
			s.fail("truncate", a, err)
			continue
		}
		size := n
		switch rel {
		case 1:
			size = st.Size + n
			if size < st.Size {
				s.fail("truncate", a, syscall.EFBIG)
				continue
			}
		case -1:
			size = st.Size - min(n, st.Size)
		}
		if err := m.Resize(s.ctx, st.Ino, size); err != nil {
			s.fail("truncate", a, err)
		}
	}
}

// ---- xattr ----

// xattrArgs are the operand counts of the xattr subcommands (the
// subcommand included).
var xattrArgs = map[string]int{"list": 2, "get": 3, "set": 4, "rm": 3}

func checkXattr(_ cmdFlags, args []string) error {
	n, ok := xattrArgs[args[0]]
	switch {
	case !ok:
		return fmt.Errorf("unknown subcommand %q (list, get, set, rm)", args[0])
	case len(args) < n:
		return errors.New("missing operand")
	case len(args) > n:
		return errors.New("too many operands")
	}
	return nil
}

// cmdXattr lists, gets, sets or removes extended attributes of a path
// (following symlinks). get writes the value as it is, without a newline.
func cmdXattr(s *session, _ cmdFlags, args []string) {
	sub, p := args[0], args[1]
	var value []byte
	if sub == "set" {
		value = []byte(args[3])
		if args[3] == "-" {
			b, err := io.ReadAll(s.stdin)
			if err != nil {
				s.fail("xattr", "stdin", err)
				return
			}
			value = b
		}
	}
	m, err := s.mount()
	if err != nil {
		return
	}
	_, st, err := s.resolve(m, p)
	if err != nil {
		s.fail("xattr", p, err)
		return
	}
	switch sub {
	case "list":
		names, err := m.ListXattr(s.ctx, st.Ino)
		if err != nil {
			s.fail("xattr", p, err)
			return
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintln(s.out, n)
		}
	case "get":
		v, err := m.GetXattr(s.ctx, st.Ino, args[2])
		if err != nil {
			s.fail("xattr", p+" "+args[2], err)
			return
		}
		s.out.Write(v)
	case "set":
		if err := m.SetXattr(s.ctx, st.Ino, args[2], value, 0); err != nil {
			s.fail("xattr", p+" "+args[2], err)
		}
	case "rm":
		if err := m.RemoveXattr(s.ctx, st.Ino, args[2]); err != nil {
			s.fail("xattr", p+" "+args[2], err)
		}
	}
}
