package fusefs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Options tunes a mount: what the kernel may cache and how large its
// requests are. The zero value of a field means its default
// (DefaultOptions).
type Options struct {
	// AttrTimeout is how long the kernel may use an inode's attributes
	// without asking again (default 1s; a negative value: 0).
	AttrTimeout time.Duration
	// EntryTimeout is how long the kernel may use a name's lookup without
	// asking again (default 1s; a negative value: 0).
	EntryTimeout time.Duration
	// NegativeTimeout is how long the kernel may remember that a name does
	// not exist (default 0: never, so that a file another client creates
	// is seen at once; a negative value: 0).
	NegativeTimeout time.Duration
	// WritebackCache lets the kernel gather writes in its page cache and
	// send them later, in large requests (FUSE's writeback_cache): faster
	// small writes, but another client sees them only after the kernel
	// wrote them back (at close, fsync, or memory pressure).
	WritebackCache bool
	// DirectIO makes every read and write bypass the kernel's page cache
	// (FUSE's direct_io): another client's writes are seen at once, but
	// mmap of a file is not possible and every read is a server call.
	DirectIO bool
	// MaxWrite is the largest read or write request of the kernel (default
	// and upper bound 1 MiB).
	MaxWrite int
	// AllowOther lets users other than the one who mounted use the mount
	// (FUSE's allow_other; for a mount by root it is what makes the volume
	// a shared filesystem).
	AllowOther bool
	// ReadOnly makes the mount read-only.
	ReadOnly bool
	// FsName is the source shown by mount and df (default
	// "proxyfs:VOLUME").
	FsName string
	// Debug logs every FUSE request and reply (go-fuse's debug output).
	Debug bool
	// DefaultPermissions makes the kernel check every caller's
	// permissions against the attributes it caches before a request
	// reaches the filesystem (FUSE's default_permissions). Off by
	// default: the server checks each caller itself (requests carry the
	// caller's identity), as it does for every other client.
	DefaultPermissions bool
}

// DefaultOptions are the options of a mount that asks for nothing.
var DefaultOptions = Options{
	AttrTimeout:  time.Second,
	EntryTimeout: time.Second,
	MaxWrite:     1 << 20,
}

func (o Options) withDefaults() Options {
	d := DefaultOptions
	if o.AttrTimeout == 0 {
		o.AttrTimeout = d.AttrTimeout
	}
	if o.EntryTimeout == 0 {
		o.EntryTimeout = d.EntryTimeout
	}
	for _, p := range []*time.Duration{&o.AttrTimeout, &o.EntryTimeout, &o.NegativeTimeout} {
		if *p < 0 {
			*p = 0
		}
	}
	if o.MaxWrite <= 0 || o.MaxWrite > d.MaxWrite {
		o.MaxWrite = d.MaxWrite
	}
	return o
}

// MountConfig is everything a comma-separated -o list says: the
// filesystem's Options and how to reach the daemon.
type MountConfig struct {
	Options
	// Server is the daemon's address (server=ADDR; "" for the caller's
	// default).
	Server string
	// Gateways are more gateways serving the same volumes, tried in turn
	// when the one in use cannot be reached (gateway=ADDR, repeatable;
	// client.WithGateways).
	Gateways []string
	// Timeout bounds every server call, reconnects included (timeout=D;
	// 0, the default: calls wait for the daemon as long as it takes, and
	// end only when the caller is interrupted, as an NFS hard mount).
	Timeout time.Duration
	// UID and GID are the identity of the mount on the server (uid=N,
	// gid=N; default 0, root). See the package documentation, "Identity".
	UID, GID uint32
}

// ignoredOptions are generic mount(8) options that fstab lines carry and
// that mean nothing to the filesystem, or that the FUSE mount helper
// already applied.
var ignoredOptions = map[string]bool{
	"rw": true, "auto": true, "noauto": true, "user": true, "nouser": true, "users": true,
	"_netdev": true, "nofail": true, "defaults": true, "dev": true, "nodev": true,
	"suid": true, "nosuid": true, "exec": true, "noexec": true, "atime": true,
	"noatime": true, "relatime": true, "async": true,
}

// ParseOptions parses a -o list (several lists may be given; later values
// win): server=ADDR, gateway=ADDR (repeatable: each adds one), timeout=D, uid=N, gid=N, attr_timeout=S,
// entry_timeout=S, negative_timeout=S (seconds, fractions allowed),
// writeback_cache, direct_io, max_write=BYTES, allow_other, ro, fsname=NAME,
// debug, default_permissions, and the generic mount options of fstab
// (ignored).
func ParseOptions(lists ...string) (MountConfig, error) {
	var c MountConfig
	for _, list := range lists {
		for _, opt := range strings.Split(list, ",") {
			if opt == "" {
				continue
			}
			key, val, hasVal := strings.Cut(opt, "=")
			var err error
			switch key {
			case "server":
				c.Server = val
			case "gateway":
				c.Gateways = append(c.Gateways, val)
			case "timeout":
				c.Timeout, err = time.ParseDuration(val)
			case "uid", "gid":
				var n uint64
				n, err = strconv.ParseUint(val, 10, 32)
				if key == "uid" {
					c.UID = uint32(n)
				} else {
					c.GID = uint32(n)
				}
			case "attr_timeout", "entry_timeout", "negative_timeout":
				var f float64
				f, err = strconv.ParseFloat(val, 64)
				d := time.Duration(f * float64(time.Second))
				if f == 0 {
					d = -1 // explicitly none
				}
				switch key {
				case "attr_timeout":
					c.AttrTimeout = d
				case "entry_timeout":
					c.EntryTimeout = d
				default:
					c.NegativeTimeout = d
				}
			case "max_write":
				c.MaxWrite, err = strconv.Atoi(val)
			case "writeback_cache":
				c.WritebackCache = true
			case "direct_io":
				c.DirectIO = true
			case "allow_other":
				c.AllowOther = true
			case "ro":
				c.ReadOnly = true
			case "fsname":
				c.FsName = val
			case "debug":
				c.Debug = true
			case "default_permissions":
				c.DefaultPermissions = true
			default:
				if ignoredOptions[key] && !hasVal {
					continue
				}
				return c, fmt.Errorf("unknown mount option %q", opt)
			}
			if err != nil {
				return c, fmt.Errorf("mount option %q: %v", opt, err)
			}
			if key == "gateway" && val == "" {
				return c, fmt.Errorf("mount option %q needs an address", key)
			}
			if !hasVal && (key == "server" || key == "timeout" || key == "uid" || key == "gid" ||
				key == "max_write" || key == "fsname" || strings.HasSuffix(key, "_timeout")) {
				return c, fmt.Errorf("mount option %q needs a value", key)
			}
		}
	}
	return c, nil
}
