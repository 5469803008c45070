// Package conf is proxyfsd's configuration: the TOML format, its loader
// and validator, and the embedded default configuration (default.toml).
//
// A configuration file looks like default.toml. Every key is optional
// except each volume's name; a missing key takes its default. Unknown keys
// and bad values are errors that name the key, for example
//
//	config: volume[0].sync_interval: invalid duration "x"
package conf

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// DefaultTOML is the embedded default configuration (conf/default.toml):
// loopback TCP, a Unix socket and one durable volume "default", all under
// proxyfs-data/ in the working directory.
//
//go:embed default.toml
var DefaultTOML []byte

// Defaults for keys a configuration leaves out.
const (
	DefaultTCP                = "127.0.0.1:9450"
	DefaultUnix               = "proxyfs-data/proxyfsd.sock"
	DefaultMaxMessageBytes    = 4 << 20
	DefaultMaxIOBytes         = 8 << 20
	DefaultMaxConnections     = 1024
	DefaultMaxInflightPerConn = 256
	DefaultShutdownGrace      = 10 * time.Second
	DefaultMountGrace         = 60 * time.Second
	DefaultReclaimGrace       = 60 * time.Second
	DefaultMaxMountsPerConn   = 256
	DefaultHandshakeTimeout   = 10 * time.Second
	DefaultIdleTimeout        = 10 * time.Minute
	DefaultMetricsListen      = "127.0.0.1:9451"
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "console"
	DefaultEngine             = "local"
	DefaultSyncInterval       = time.Second
	DefaultInlineBytes        = vfsbackend.DefaultInlineBytes
	MaxInlineBytes            = vfsbackend.MaxInlineBytes
	// MaxChunkBytes is the largest chunk_bytes accepted (etcdswift).
	MaxChunkBytes = 64 << 20
	// DefaultAnonID is the default anon_uid and anon_gid: "nobody" and
	// "nogroup".
	DefaultAnonID = 65534
	// DefaultDataDir is where volumes live when their path is not set:
	// DefaultDataDir/<name>.
	DefaultDataDir = "proxyfs-data"
)

// Limits on values.
const (
	// MaxIOBytesLimit is the largest max_io_bytes accepted (the binary
	// channel's length field is 32 bits; 1 GiB keeps buffers sane).
	MaxIOBytesLimit = 1 << 30
	// MaxMessageBytesLimit is the largest max_message_bytes accepted.
	MaxMessageBytesLimit = 1 << 30
	// MinMessageBytes is the smallest max_message_bytes accepted: every
	// call but read/write fits in it.
	MinMessageBytes = 16 << 10
	// MaxUnixPathLen is the longest Unix socket path Linux accepts.
	MaxUnixPathLen = 107
	// MaxMountGrace is the longest mount_grace accepted.
	MaxMountGrace = 24 * time.Hour
	// MaxReclaimGrace is the longest reclaim_grace accepted.
	MaxReclaimGrace = 24 * time.Hour
	// MaxMountsPerConnLimit is the largest max_mounts_per_connection
	// accepted.
	MaxMountsPerConnLimit = 1 << 16
)

// Engines are the storage engine names a volume may use.
var Engines = []string{"etcdswift", "local", "memory"}

// Config is a validated proxyfsd configuration.
type Config struct {
	Server  Server
	Access  Access
	Metrics Metrics
	Log     Log
	Volumes []Volume
}

// Server configures the listeners and the limits they enforce.
type Server struct {
	// TCP is the TCP listen address ("host:port"); "" disables TCP. Port 0
	// picks a free port (the daemon logs the one it got).
	TCP string
	// Unix is the Unix socket path; "" disables it.
	Unix string
	// MaxMessageBytes is the largest JSON-RPC message accepted.
	MaxMessageBytes int
	// MaxIOBytes is the largest read or write.
	MaxIOBytes int
	// MaxConnections is the number of connections served at once.
	MaxConnections int
	// MaxConnectionsPerPeer is the number of connections one peer may
	// hold at once: one remote IP address (an IPv6 /64) on TCP, one user id (the
	// peer's credentials) on the Unix socket. The file's 0, the default,
	// is MaxConnections - MaxConnections/4 here.
	MaxConnectionsPerPeer int
	// MaxInflightPerConn is the number of requests in flight per
	// connection.
	MaxInflightPerConn int
	// ShutdownGrace bounds how long shutdown waits for in-flight calls.
	ShutdownGrace time.Duration
	// MountGrace is how long a mount outlives the last connection that
	// held it (created or used it); a client that reconnects within it
	// keeps its mount id. 0: the mount goes with that connection.
	MountGrace time.Duration
	// ReclaimGrace is how long after the daemon starts clients may reopen
	// (reclaim) the unlinked files they had open before; then the orphans
	// nobody reopened are freed. 0: at once.
	ReclaimGrace time.Duration
	// MaxMountsPerConn is the number of mounts one connection may hold
	// (EMFILE beyond).
	MaxMountsPerConn int
	// HandshakeTimeout is how long a new connection has to send its first
	// complete request before it is closed.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that has no request in flight and
	// has sent nothing for this long, and one that takes no bytes of a
	// reply for this long; 0 never closes idle connections.
	IdleTimeout time.Duration

	// UnixMode is the Unix socket file's permission bits (connecting
	// needs write permission on it).
	UnixMode os.FileMode
	// UnixOwner and UnixGroup, if set (a name or a numeric id), are the
	// socket file's owner and group.
	UnixOwner, UnixGroup string

	// TLSCert and TLSKey are the PEM files of the TCP listener's
	// certificate and key; set, every TCP connection speaks TLS and must
	// authenticate with a token. TLSClientCA, if set, is a PEM file of
	// the CAs that client certificates must be signed by: a client
	// without a valid certificate is refused in the TLS handshake.
	TLSCert, TLSKey, TLSClientCA string
}

// TLS reports whether the TCP listener speaks TLS.
func (s *Server) TLS() bool { return s.TLSCert != "" }

// Access says who may connect and whom they may act as.
type Access struct {
	// Users and Groups (names or numeric ids; "*" in Users is everyone)
	// are the local users, and members of groups, that may connect over
	// the Unix socket and loopback TCP, each identified by the kernel.
	Users, Groups []string
	// GatewayUsers and GatewayGroups may act as any identity: mount as
	// any uid and send per-call identities (smbd runs as root).
	GatewayUsers, GatewayGroups []string
	// TokensFile names a file of tokens ("TOKEN NAME ACTS_AS" lines), the
	// credentials of TCP clients over TLS (and of any client that sends
	// auth); "" means none.
	TokensFile string
	// CertUsers maps the subject common name (CN) of a verified client
	// certificate (server.tls_client_ca) to whom the connection may act
	// as: "*" (a gateway) or "UID:GID[:G1,G2,...]", as ACTS_AS in the
	// tokens file. Such a connection needs no token; its principal is
	// named "cert:CN" in volume access lists.
	CertUsers map[string]string
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the HTTP listen address for /metrics, /healthz and
	// /readyz; "" disables it.
	Listen string
	// Pprof also serves Go's profiler under /debug/pprof/ on Listen.
	Pprof bool
	// WebConfigFile is a web configuration file of the Prometheus
	// exporter toolkit (TLS, basic auth); required for a Listen that is
	// not loopback, where it must enable TLS and either basic auth or
	// verified client certificates.
	WebConfigFile string
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string
	// Format is console or json.
	Format string
	// Access turns the access log on, whatever Level says: one line per
	// call on either channel (peer, principal, uid, method, inode, name
	// or path, result). "" off; AccessToLog into the daemon's log;
	// anything else is a file the lines are appended to (JSON).
	Access string
}

// AccessToLog is Log.Access for "access = true": the daemon's own log.
const AccessToLog = "log"

// Volume configures one volume.
type Volume struct {
	// Name is what clients pass to mount.
	Name string
	// Engine is the storage engine: "local", "memory" or "etcdswift".
	Engine string
	// Remote locates an etcdswift volume: etcd endpoints, prefix and TLS,
	// the object store (Swift or S3: credentials, container or bucket,
	// TLS), chunk size. Empty for other engines.
	Remote vfsbackend.RemoteOptions
	// Path is the directory holding the volume's files.
	Path string
	// SyncInterval bounds how long committed metadata may stay unsynced.
	SyncInterval time.Duration
	// CapacityBytes is the capacity reported and enforced; 0 means the
	// size of the filesystem holding Path (memory engine: 1 GiB).
	CapacityBytes uint64
	// InlineBytes is the size up to which a file's data is kept in the
	// metadata instead of a data file of its own (local engine); 0 means
	// never.
	InlineBytes int
	// MetadataCacheBytes bounds the memory the engine holds metadata in
	// (local engine: recent commits not yet in its on-disk index); 0
	// means the engine's default.
	MetadataCacheBytes int64
	// AutoFormat lets the daemon format the volume at start when its
	// directory is new (absent or empty) and no volume was ever formatted
	// there. Without it, a volume is created only by proxyfsd -format, so
	// that a deleted directory or an unmounted disk stops the daemon
	// instead of being replaced by an empty volume.
	AutoFormat bool
	// ReadOnly makes every change by a client fail with EROFS, whatever
	// its mount's options.
	ReadOnly bool
	// RootSquash makes a mount with uid 0 act as AnonUID, and gid 0 (as
	// the primary or a supplementary group) act as AnonGID, as NFS's
	// root_squash does.
	RootSquash bool
	// AnonUID and AnonGID are the identity of a squashed root.
	AnonUID, AnonGID uint32
	// Users and Groups, if either is set, are the only principals that
	// may mount the volume and use its mounts: a connection whose user
	// (or token name as "token:NAME", or client certificate CN as
	// "cert:CN") is in Users or which is in one of
	// Groups. Unset: everyone who may connect.
	Users, Groups []string
	// UsersRO and GroupsRO (same forms) may use the volume read-only:
	// their mounts are read-only whatever they ask for, and their changes
	// are EROFS on any mount. Users and Groups win over them. Setting
	// only these closes the volume to everyone else too.
	UsersRO, GroupsRO []string
}

// raw mirrors the file; pointers tell a missing key from a zero value.
type raw struct {
	Server struct {
		TCP                *string `toml:"tcp"`
		Unix               *string `toml:"unix"`
		MaxMessageBytes    *int64  `toml:"max_message_bytes"`
		MaxIOBytes         *int64  `toml:"max_io_bytes"`
		MaxConnections     *int64  `toml:"max_connections"`
		MaxConnsPerPeer    *int64  `toml:"max_connections_per_peer"`
		MaxInflightPerConn *int64  `toml:"max_inflight_per_conn"`
		ShutdownGrace      *string `toml:"shutdown_grace"`
		MountGrace         *string `toml:"mount_grace"`
		ReclaimGrace       *string `toml:"reclaim_grace"`
		MaxMountsPerConn   *int64  `toml:"max_mounts_per_connection"`
		HandshakeTimeout   *string `toml:"handshake_timeout"`
		IdleTimeout        *string `toml:"idle_timeout"`
		UnixMode           *string `toml:"unix_mode"`
		UnixOwner          *string `toml:"unix_owner"`
		UnixGroup          *string `toml:"unix_group"`
		TLSCert            *string `toml:"tls_cert"`
		TLSKey             *string `toml:"tls_key"`
		TLSClientCA        *string `toml:"tls_client_ca"`
	} `toml:"server"`
	Access struct {
		Users         *[]string          `toml:"users"`
		Groups        *[]string          `toml:"groups"`
		GatewayUsers  *[]string          `toml:"gateway_users"`
		GatewayGroups *[]string          `toml:"gateway_groups"`
		TokensFile    *string            `toml:"tokens_file"`
		CertUsers     *map[string]string `toml:"cert_users"`
	} `toml:"access"`
	Metrics struct {
		Listen        *string `toml:"listen"`
		Pprof         *bool   `toml:"pprof"`
		WebConfigFile *string `toml:"web_config_file"`
	} `toml:"metrics"`
	Log struct {
		Level  *string `toml:"level"`
		Format *string `toml:"format"`
		Access any     `toml:"access"`
	} `toml:"log"`
	Volume []struct {
		Name          *string  `toml:"name"`
		Engine        *string  `toml:"engine"`
		Path          *string  `toml:"path"`
		SyncInterval  *string  `toml:"sync_interval"`
		CapacityBytes *int64   `toml:"capacity_bytes"`
		InlineBytes   *int64   `toml:"inline_bytes"`
		MetadataCache *int64   `toml:"metadata_cache_bytes"`
		AutoFormat    *bool    `toml:"auto_format"`
		ReadOnly      *bool    `toml:"read_only"`
		RootSquash    *bool    `toml:"root_squash"`
		AnonUID       *int64   `toml:"anon_uid"`
		AnonGID       *int64   `toml:"anon_gid"`
		Users         []string `toml:"users"`
		Groups        []string `toml:"groups"`
		UsersRO       []string `toml:"users_ro"`
		GroupsRO      []string `toml:"groups_ro"`

		EtcdEndpoints  []string `toml:"etcd_endpoints"`
		EtcdPrefix     *string  `toml:"etcd_prefix"`
		EtcdTLSCA      *string  `toml:"etcd_tls_ca"`
		EtcdTLSCert    *string  `toml:"etcd_tls_cert"`
		EtcdTLSKey     *string  `toml:"etcd_tls_key"`
		EtcdUser       *string  `toml:"etcd_user"`
		EtcdPassword   *string  `toml:"etcd_password"`
		ObjectStore    *string  `toml:"object_store"`
		SwiftAuthURL   *string  `toml:"swift_auth_url"`
		SwiftUser      *string  `toml:"swift_user"`
		SwiftKey       *string  `toml:"swift_key"`
		SwiftContainer *string  `toml:"swift_container"`
		SwiftTLSCA     *string  `toml:"swift_tls_ca"`
		S3Endpoint     *string  `toml:"s3_endpoint"`
		S3Region       *string  `toml:"s3_region"`
		S3AccessKey    *string  `toml:"s3_access_key"`
		S3SecretKey    *string  `toml:"s3_secret_key"`
		S3Bucket       *string  `toml:"s3_bucket"`
		S3TLSCA        *string  `toml:"s3_tls_ca"`
		ChunkBytes     *int64   `toml:"chunk_bytes"`
	} `toml:"volume"`
}

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// Default returns the embedded default configuration. An error means a
// broken build (the embedded file is tested).
func Default() (*Config, error) {
	c, err := Parse(DefaultTOML)
	if err != nil {
		return nil, fmt.Errorf("config: the embedded default is invalid: %w", err)
	}
	return c, nil
}

// Parse decodes and validates a configuration.
func Parse(data []byte) (*Config, error) {
	var r raw
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&r)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("config: line %d: %s", pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("config: %v", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = strconv.Quote(k.String())
		}
		return nil, fmt.Errorf("config: unknown key %s", strings.Join(keys, ", "))
	}
	return r.validate()
}

func (r *raw) validate() (*Config, error) {
	c := &Config{}
	s := &r.Server
	var err error
	if c.Server.TCP, err = addr("server.tcp", s.TCP, DefaultTCP); err != nil {
		return nil, err
	}
	c.Server.Unix = str(s.Unix, DefaultUnix)
	if len(c.Server.Unix) > MaxUnixPathLen {
		return nil, fmt.Errorf("config: server.unix: path of %d bytes is longer than %d", len(c.Server.Unix), MaxUnixPathLen)
	}
	if strings.IndexByte(c.Server.Unix, 0) >= 0 {
		return nil, fmt.Errorf("config: server.unix: path contains NUL")
	}
	if c.Server.TCP == "" && c.Server.Unix == "" {
		return nil, fmt.Errorf("config: server.tcp and server.unix are both empty: nothing to listen on")
	}
	for _, n := range []struct {
		key      string
		v        *int64
		def, min int64
		max      int64
		dst      *int
	}{
		{"server.max_message_bytes", s.MaxMessageBytes, DefaultMaxMessageBytes, MinMessageBytes, MaxMessageBytesLimit, &c.Server.MaxMessageBytes},
		{"server.max_io_bytes", s.MaxIOBytes, DefaultMaxIOBytes, 1, MaxIOBytesLimit, &c.Server.MaxIOBytes},
		{"server.max_connections", s.MaxConnections, DefaultMaxConnections, 1, 1 << 20, &c.Server.MaxConnections},
		{"server.max_inflight_per_conn", s.MaxInflightPerConn, DefaultMaxInflightPerConn, 1, 1 << 16, &c.Server.MaxInflightPerConn},
		{"server.max_mounts_per_connection", s.MaxMountsPerConn, DefaultMaxMountsPerConn, 1, MaxMountsPerConnLimit, &c.Server.MaxMountsPerConn},
	} {
		v := n.def
		if n.v != nil {
			v = *n.v
		}
		if v < n.min || v > n.max {
			return nil, fmt.Errorf("config: %s: %d is out of range [%d, %d]", n.key, v, n.min, n.max)
		}
		*n.dst = int(v)
	}
	c.Server.MaxConnectionsPerPeer = c.Server.MaxConnections - c.Server.MaxConnections/4
	if v := s.MaxConnsPerPeer; v != nil && *v != 0 {
		if *v < 0 || *v > int64(c.Server.MaxConnections) {
			return nil, fmt.Errorf("config: server.max_connections_per_peer: %d is out of range [0, max_connections %d]", *v, c.Server.MaxConnections)
		}
		c.Server.MaxConnectionsPerPeer = int(*v)
	}
	if c.Server.ShutdownGrace, err = duration("server.shutdown_grace", s.ShutdownGrace, DefaultShutdownGrace, true); err != nil {
		return nil, err
	}
	if c.Server.MountGrace, err = duration("server.mount_grace", s.MountGrace, DefaultMountGrace, true); err != nil {
		return nil, err
	}
	if c.Server.MountGrace > MaxMountGrace {
		return nil, fmt.Errorf("config: server.mount_grace: %q is longer than %v", *s.MountGrace, MaxMountGrace)
	}
	if c.Server.ReclaimGrace, err = duration("server.reclaim_grace", s.ReclaimGrace, DefaultReclaimGrace, true); err != nil {
		return nil, err
	}
	if c.Server.ReclaimGrace > MaxReclaimGrace {
		return nil, fmt.Errorf("config: server.reclaim_grace: %q is longer than %v", *s.ReclaimGrace, MaxReclaimGrace)
	}
	if c.Server.HandshakeTimeout, err = duration("server.handshake_timeout", s.HandshakeTimeout, DefaultHandshakeTimeout, false); err != nil {
		return nil, err
	}
	if c.Server.IdleTimeout, err = duration("server.idle_timeout", s.IdleTimeout, DefaultIdleTimeout, true); err != nil {
		return nil, err
	}
	if err := r.validateSecurity(c); err != nil {
		return nil, err
	}
	if c.Metrics.Listen, err = addr("metrics.listen", r.Metrics.Listen, DefaultMetricsListen); err != nil {
		return nil, err
	}
	if r.Metrics.Pprof != nil {
		c.Metrics.Pprof = *r.Metrics.Pprof
	}
	c.Metrics.WebConfigFile = str(r.Metrics.WebConfigFile, "")
	if c.Metrics.Listen != "" && !IsLoopback(c.Metrics.Listen) && c.Metrics.WebConfigFile == "" {
		return nil, fmt.Errorf("config: metrics.listen %s is not a loopback address: /metrics beyond loopback needs metrics.web_config_file (TLS and basic auth)", c.Metrics.Listen)
	}
	c.Log.Level = str(r.Log.Level, DefaultLogLevel)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("config: log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch a := r.Log.Access.(type) {
	case nil:
	case bool:
		if a {
			c.Log.Access = AccessToLog
		}
	case string:
		c.Log.Access = a
		if a == AccessToLog || a == "true" || a == "false" {
			return nil, fmt.Errorf("config: log.access: %q: write true, false or a file's path", a)
		}
	default:
		return nil, fmt.Errorf("config: log.access: want true, false or a file's path, not %v", a)
	}
	c.Log.Format = str(r.Log.Format, DefaultLogFormat)
	switch c.Log.Format {
	case "console", "json":
	default:
		return nil, fmt.Errorf("config: log.format: %q is not one of console, json", c.Log.Format)
	}

	if len(r.Volume) == 0 {
		return nil, fmt.Errorf("config: no [[volume]]: at least one volume is needed")
	}
	names := map[string]int{}
	paths := map[string]int{}
	for i, rv := range r.Volume {
		key := func(k string) string { return fmt.Sprintf("volume[%d].%s", i, k) }
		v := Volume{}
		if rv.Name == nil {
			return nil, fmt.Errorf("config: %s: missing", key("name"))
		}
		v.Name = *rv.Name
		if !validName.MatchString(v.Name) {
			return nil, fmt.Errorf("config: %s: %q is not a valid volume name (1..255 of A-Z a-z 0-9 . _ -, starting with a letter or digit)", key("name"), v.Name)
		}
		if j, dup := names[v.Name]; dup {
			return nil, fmt.Errorf("config: %s: %q is already the name of volume[%d]", key("name"), v.Name, j)
		}
		names[v.Name] = i
		v.Engine = str(rv.Engine, DefaultEngine)
		if !isEngine(v.Engine) {
			return nil, fmt.Errorf("config: %s: unknown engine %q (have %s)", key("engine"), v.Engine, strings.Join(Engines, ", "))
		}
		v.Path = str(rv.Path, filepath.Join(DefaultDataDir, v.Name))
		if v.Path == "" {
			return nil, fmt.Errorf("config: %s: empty", key("path"))
		}
		swiftKeys := rv.SwiftAuthURL != nil || rv.SwiftUser != nil || rv.SwiftKey != nil || rv.SwiftContainer != nil || rv.SwiftTLSCA != nil
		s3Keys := rv.S3Endpoint != nil || rv.S3Region != nil || rv.S3AccessKey != nil || rv.S3SecretKey != nil || rv.S3Bucket != nil || rv.S3TLSCA != nil
		remote := rv.EtcdEndpoints != nil || rv.EtcdPrefix != nil || rv.EtcdTLSCA != nil || rv.EtcdTLSCert != nil || rv.EtcdTLSKey != nil ||
			rv.EtcdUser != nil || rv.EtcdPassword != nil || rv.ObjectStore != nil || swiftKeys || s3Keys || rv.ChunkBytes != nil
		if remote && v.Engine != "etcdswift" {
			return nil, fmt.Errorf("config: volume[%d]: etcd_*, object_store, swift_* and s3_* keys and chunk_bytes are for engine \"etcdswift\", not %q", i, v.Engine)
		}
		if v.Engine == "etcdswift" {
			r := &v.Remote
			r.EtcdEndpoints = rv.EtcdEndpoints
			if len(r.EtcdEndpoints) == 0 {
				return nil, fmt.Errorf("config: %s: missing (engine etcdswift)", key("etcd_endpoints"))
			}
			for _, e := range r.EtcdEndpoints {
				if e == "" {
					return nil, fmt.Errorf("config: %s: empty endpoint", key("etcd_endpoints"))
				}
			}
			r.EtcdPrefix = str(rv.EtcdPrefix, "proxyfs/"+v.Name+"/")
			if r.EtcdPrefix == "" {
				return nil, fmt.Errorf("config: %s: empty", key("etcd_prefix"))
			}
			r.EtcdTLSCA = str(rv.EtcdTLSCA, "")
			r.EtcdTLSCert = str(rv.EtcdTLSCert, "")
			r.EtcdTLSKey = str(rv.EtcdTLSKey, "")
			if (r.EtcdTLSCert == "") != (r.EtcdTLSKey == "") {
				return nil, fmt.Errorf("config: %s and %s go together: set both or neither", key("etcd_tls_cert"), key("etcd_tls_key"))
			}
			r.EtcdUser = str(rv.EtcdUser, "")
			r.EtcdPassword = str(rv.EtcdPassword, "")
			if (r.EtcdUser == "") != (r.EtcdPassword == "") {
				return nil, fmt.Errorf("config: %s and %s go together: set both or neither", key("etcd_user"), key("etcd_password"))
			}
			r.ObjectStore = str(rv.ObjectStore, "swift")
			switch r.ObjectStore {
			case "swift":
				if s3Keys {
					return nil, fmt.Errorf("config: volume[%d]: s3_* keys need object_store = \"s3\"", i)
				}
				r.SwiftAuthURL = str(rv.SwiftAuthURL, "")
				if r.SwiftAuthURL == "" {
					return nil, fmt.Errorf("config: %s: missing (engine etcdswift, object_store swift)", key("swift_auth_url"))
				}
				r.SwiftUser = str(rv.SwiftUser, "")
				r.SwiftKey = str(rv.SwiftKey, "")
				r.SwiftContainer = str(rv.SwiftContainer, "proxyfs-"+v.Name)
				if r.SwiftContainer == "" || strings.Contains(r.SwiftContainer, "/") {
					return nil, fmt.Errorf("config: %s: %q is not a container name", key("swift_container"), r.SwiftContainer)
				}
				r.SwiftTLSCA = str(rv.SwiftTLSCA, "")
			case "s3":
				if swiftKeys {
					return nil, fmt.Errorf("config: volume[%d]: swift_* keys need object_store = \"swift\"", i)
				}
				r.S3Endpoint = str(rv.S3Endpoint, "")
				if u, err := url.Parse(r.S3Endpoint); r.S3Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
					return nil, fmt.Errorf("config: %s: %q is not an http:// or https:// URL of a host (engine etcdswift, object_store s3)", key("s3_endpoint"), r.S3Endpoint)
				}
				r.S3Region = str(rv.S3Region, "")
				r.S3AccessKey = str(rv.S3AccessKey, "")
				r.S3SecretKey = str(rv.S3SecretKey, "")
				r.S3Bucket = str(rv.S3Bucket, "proxyfs-"+strings.ToLower(strings.ReplaceAll(v.Name, "_", "-")))
				if !validBucket.MatchString(r.S3Bucket) || strings.Contains(r.S3Bucket, "..") {
					return nil, fmt.Errorf("config: %s: %q is not an S3 bucket name (3..63 of a-z 0-9 . -, starting and ending with a letter or digit)", key("s3_bucket"), r.S3Bucket)
				}
				r.S3TLSCA = str(rv.S3TLSCA, "")
			default:
				return nil, fmt.Errorf("config: %s: %q is not one of swift, s3", key("object_store"), r.ObjectStore)
			}
			if rv.ChunkBytes != nil {
				if *rv.ChunkBytes < 4096 || *rv.ChunkBytes > MaxChunkBytes {
					return nil, fmt.Errorf("config: %s: %d is out of range 4096..%d", key("chunk_bytes"), *rv.ChunkBytes, MaxChunkBytes)
				}
				r.ChunkBytes = int(*rv.ChunkBytes)
			}
		}
		if v.Engine == "local" {
			clean := filepath.Clean(v.Path)
			if j, dup := paths[clean]; dup {
				return nil, fmt.Errorf("config: %s: %q is already the path of volume[%d]", key("path"), v.Path, j)
			}
			paths[clean] = i
		}
		if v.SyncInterval, err = duration(key("sync_interval"), rv.SyncInterval, DefaultSyncInterval, false); err != nil {
			return nil, err
		}
		if rv.CapacityBytes != nil {
			if *rv.CapacityBytes < 0 {
				return nil, fmt.Errorf("config: %s: %d is negative", key("capacity_bytes"), *rv.CapacityBytes)
			}
			v.CapacityBytes = uint64(*rv.CapacityBytes)
		}
		v.InlineBytes = DefaultInlineBytes
		if rv.InlineBytes != nil {
			if *rv.InlineBytes < 0 || *rv.InlineBytes > MaxInlineBytes {
				return nil, fmt.Errorf("config: %s: %d is out of range 0..%d", key("inline_bytes"), *rv.InlineBytes, MaxInlineBytes)
			}
			v.InlineBytes = int(*rv.InlineBytes)
		}
		if rv.MetadataCache != nil {
			if *rv.MetadataCache < 64<<10 {
				return nil, fmt.Errorf("config: %s: %d is under the minimum of %d", key("metadata_cache_bytes"), *rv.MetadataCache, 64<<10)
			}
			v.MetadataCacheBytes = *rv.MetadataCache
		}
		if rv.AutoFormat != nil {
			v.AutoFormat = *rv.AutoFormat
		}
		if rv.ReadOnly != nil {
			v.ReadOnly = *rv.ReadOnly
		}
		if rv.RootSquash != nil {
			v.RootSquash = *rv.RootSquash
		}
		for _, id := range []struct {
			key string
			v   *int64
			dst *uint32
		}{{"anon_uid", rv.AnonUID, &v.AnonUID}, {"anon_gid", rv.AnonGID, &v.AnonGID}} {
			*id.dst = DefaultAnonID
			if id.v != nil {
				if *id.v < 0 || *id.v > math.MaxUint32 {
					return nil, fmt.Errorf("config: %s: %d is out of range 0..%d", key(id.key), *id.v, uint32(math.MaxUint32))
				}
				*id.dst = uint32(*id.v)
			}
		}
		v.Users, v.Groups = rv.Users, rv.Groups
		v.UsersRO, v.GroupsRO = rv.UsersRO, rv.GroupsRO
		for _, l := range []struct {
			key  string
			list []string
		}{{"users", v.Users}, {"groups", v.Groups}, {"users_ro", v.UsersRO}, {"groups_ro", v.GroupsRO}} {
			if err := principals(key(l.key), l.list, false); err != nil {
				return nil, err
			}
		}
		c.Volumes = append(c.Volumes, v)
	}
	return c, nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

// validBucket is an S3 bucket name (DNS-compatible; ".." is checked apart).
var validBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func isEngine(e string) bool {
	for _, n := range Engines {
		if n == e {
			return true
		}
	}
	return false
}

func str(v *string, def string) string {
	if v == nil {
		return def
	}
	return *v
}

// addr validates a "host:port" listen address; "" is allowed (disabled).
func addr(key string, v *string, def string) (string, error) {
	a := str(v, def)
	if a == "" {
		return "", nil
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("config: %s: invalid address %q: want host:port", key, a)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (port != "0" && p == 0) {
		return "", fmt.Errorf("config: %s: invalid port %q in %q", key, port, a)
	}
	return a, nil
}

// duration parses a Go duration string ("10s", "500ms").
func duration(key string, v *string, def time.Duration, zeroOK bool) (time.Duration, error) {
	if v == nil {
		return def, nil
	}
	d, err := time.ParseDuration(*v)
	if err != nil {
		return 0, fmt.Errorf("config: %s: invalid duration %q", key, *v)
	}
	if d < 0 || (d == 0 && !zeroOK) {
		return 0, fmt.Errorf("config: %s: duration %q must be positive", key, *v)
	}
	return d, nil
}

// Volume returns the volume named name, or nil.
func (c *Config) Volume(name string) *Volume {
	for i := range c.Volumes {
		if c.Volumes[i].Name == name {
			return &c.Volumes[i]
		}
	}
	return nil
}

// Defaults of the security keys (README, "Security").
const (
	// DefaultUnixMode lets every local user reach the socket: the peer's
	// credentials, not the file's mode, decide what a connection may do.
	DefaultUnixMode = 0o666
)

// DefaultUsers and DefaultGatewayUsers are access.users and
// access.gateway_users when the file leaves them out: every local user
// may connect and act as themselves; root may act as anyone.
var (
	DefaultUsers        = []string{"*"}
	DefaultGatewayUsers = []string{"root"}
)

// validateSecurity reads the socket, TLS and [access] keys, and refuses
// plain TCP beyond loopback.
func (r *raw) validateSecurity(c *Config) error {
	s := &r.Server
	c.Server.UnixMode = DefaultUnixMode
	if s.UnixMode != nil {
		m, err := strconv.ParseUint(*s.UnixMode, 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("config: server.unix_mode: %q is not an octal mode 0..0777 (as \"0660\")", *s.UnixMode)
		}
		c.Server.UnixMode = os.FileMode(m)
	}
	c.Server.UnixOwner = str(s.UnixOwner, "")
	c.Server.UnixGroup = str(s.UnixGroup, "")
	c.Server.TLSCert = str(s.TLSCert, "")
	c.Server.TLSKey = str(s.TLSKey, "")
	c.Server.TLSClientCA = str(s.TLSClientCA, "")
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		return fmt.Errorf("config: server.tls_cert and server.tls_key go together: set both or neither")
	}
	if c.Server.TLSClientCA != "" && c.Server.TLSCert == "" {
		return fmt.Errorf("config: server.tls_client_ca needs server.tls_cert and server.tls_key")
	}
	a := &r.Access
	c.Access.Users = DefaultUsers
	if a.Users != nil {
		c.Access.Users = *a.Users
	}
	c.Access.GatewayUsers = DefaultGatewayUsers
	if a.GatewayUsers != nil {
		c.Access.GatewayUsers = *a.GatewayUsers
	}
	if a.Groups != nil {
		c.Access.Groups = *a.Groups
	}
	if a.GatewayGroups != nil {
		c.Access.GatewayGroups = *a.GatewayGroups
	}
	c.Access.TokensFile = str(a.TokensFile, "")
	if a.CertUsers != nil && len(*a.CertUsers) > 0 {
		c.Access.CertUsers = *a.CertUsers
		if c.Server.TLSClientCA == "" {
			return fmt.Errorf("config: access.cert_users needs server.tls_client_ca (the CAs of the client certificates)")
		}
		for cn := range c.Access.CertUsers {
			if cn == "" {
				return fmt.Errorf("config: access.cert_users: an empty common name")
			}
		}
	}
	for _, l := range []struct {
		key  string
		list []string
		star bool
	}{{"access.users", c.Access.Users, true}, {"access.groups", c.Access.Groups, false},
		{"access.gateway_users", c.Access.GatewayUsers, false}, {"access.gateway_groups", c.Access.GatewayGroups, false}} {
		if err := principals(l.key, l.list, l.star); err != nil {
			return err
		}
	}
	if c.Server.TCP != "" && !IsLoopback(c.Server.TCP) {
		if !c.Server.TLS() {
			return fmt.Errorf("config: server.tcp %s is not a loopback address: plain TCP beyond loopback is refused; set server.tls_cert, server.tls_key and access.tokens_file", c.Server.TCP)
		}
		if c.Access.TokensFile == "" && len(c.Access.CertUsers) == 0 {
			return fmt.Errorf("config: server.tcp %s is not a loopback address: TLS clients need tokens or client certificates; set access.tokens_file or access.cert_users", c.Server.TCP)
		}
	}
	return nil
}

// principals checks a list of user or group names or numeric ids.
func principals(key string, list []string, star bool) error {
	for _, p := range list {
		switch {
		case p == "*" && star:
		case p == "*":
			return fmt.Errorf("config: %s: \"*\" is not allowed here (name the users or groups)", key)
		case p == "", strings.ContainsAny(p, " \t\n:") && !strings.HasPrefix(p, "token:") && !strings.HasPrefix(p, "cert:"):
			return fmt.Errorf("config: %s: %q is not a user or group name or id", key, p)
		}
	}
	return nil
}

// IsLoopback reports whether a listen address ("host:port") binds only
// loopback: an IP in 127.0.0.0/8 or ::1, or "localhost". An empty host
// (every address) is not loopback.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
