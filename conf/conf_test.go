package conf

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

func TestDefault(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.TCP != DefaultTCP || c.Server.Unix != DefaultUnix {
		t.Errorf("listeners: %q %q", c.Server.TCP, c.Server.Unix)
	}
	if c.Server.MaxMessageBytes != 4<<20 || c.Server.MaxIOBytes != 8<<20 ||
		c.Server.MaxConnections != 1024 || c.Server.MaxInflightPerConn != 256 ||
		c.Server.ShutdownGrace != 10*time.Second || c.Server.MountGrace != time.Minute ||
		c.Server.MaxMountsPerConn != 256 || c.Server.MaxConnectionsPerPeer != 768 ||
		c.Server.HandshakeTimeout != 10*time.Second || c.Server.IdleTimeout != 10*time.Minute {
		t.Errorf("server limits: %+v", c.Server)
	}
	if c.Metrics.Listen != "127.0.0.1:9451" || c.Log.Level != "info" || c.Log.Format != "console" {
		t.Errorf("metrics/log: %+v %+v", c.Metrics, c.Log)
	}
	if len(c.Volumes) != 1 {
		t.Fatalf("volumes: %+v", c.Volumes)
	}
	v := c.Volumes[0]
	if v.Name != "default" || v.Engine != "local" || v.Path != "proxyfs-data/default" ||
		v.SyncInterval != time.Second || v.CapacityBytes != 0 ||
		v.ReadOnly || v.RootSquash || v.AnonUID != 65534 || v.AnonGID != 65534 {
		t.Errorf("volume: %+v", v)
	}
	if c.Volume("default") != &c.Volumes[0] || c.Volume("nope") != nil {
		t.Error("Config.Volume lookup")
	}
}

func TestMinimalGetsDefaults(t *testing.T) {
	c, err := Parse([]byte("[[volume]]\nname = \"v1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != d.Server || c.Metrics != d.Metrics || c.Log != d.Log {
		t.Errorf("got %+v, want defaults %+v", c, d)
	}
	v := c.Volumes[0]
	if v.Engine != "local" || v.Path != filepath.Join("proxyfs-data", "v1") || v.SyncInterval != time.Second ||
		v.ReadOnly || v.RootSquash || v.AnonUID != DefaultAnonID || v.AnonGID != DefaultAnonID {
		t.Errorf("volume defaults: %+v", v)
	}
}

func TestFull(t *testing.T) {
	c, err := Parse([]byte(`
[server]
tcp = ""
unix = "/tmp/x.sock"
max_message_bytes = 65536
max_io_bytes = 1048576
max_connections = 10
max_connections_per_peer = 3
max_inflight_per_conn = 4
shutdown_grace = "250ms"
mount_grace = "0s"
reclaim_grace = "5s"
max_mounts_per_connection = 1
handshake_timeout = "2s"
idle_timeout = "0s"
[metrics]
listen = ""
pprof = true
[log]
level = "debug"
format = "json"
[[volume]]
name = "a"
engine = "memory"
capacity_bytes = 12345
sync_interval = "5s"
inline_bytes = 0
metadata_cache_bytes = 67108864
read_only = true
root_squash = true
anon_uid = 99
anon_gid = 4294967295
[[volume]]
name = "b.c-d_e"
path = "/var/lib/b"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Server{TCP: "", Unix: "/tmp/x.sock", MaxMessageBytes: 65536, MaxIOBytes: 1 << 20,
		MaxConnections: 10, MaxConnectionsPerPeer: 3, MaxInflightPerConn: 4, ShutdownGrace: 250 * time.Millisecond,
		MountGrace: 0, ReclaimGrace: 5 * time.Second, MaxMountsPerConn: 1, HandshakeTimeout: 2 * time.Second, IdleTimeout: 0, UnixMode: DefaultUnixMode}
	if c.Server != want {
		t.Errorf("server %+v, want %+v", c.Server, want)
	}
	if c.Metrics.Listen != "" || !c.Metrics.Pprof || c.Log != (Log{Level: "debug", Format: "json"}) {
		t.Errorf("metrics/log %+v %+v", c.Metrics, c.Log)
	}
	if !reflect.DeepEqual(c.Volumes[0], Volume{Name: "a", Engine: "memory", Path: "proxyfs-data/a", SyncInterval: 5 * time.Second, CapacityBytes: 12345, InlineBytes: 0, MetadataCacheBytes: 64 << 20,
		ReadOnly: true, RootSquash: true, AnonUID: 99, AnonGID: 1<<32 - 1}) {
		t.Errorf("volume a: %+v", c.Volumes[0])
	}
	if !reflect.DeepEqual(c.Volumes[1], Volume{Name: "b.c-d_e", Engine: "local", Path: "/var/lib/b", SyncInterval: time.Second, InlineBytes: DefaultInlineBytes,
		AnonUID: DefaultAnonID, AnonGID: DefaultAnonID}) {
		t.Errorf("volume b: %+v", c.Volumes[1])
	}
}

// The security keys: defaults, and a TLS listener beyond loopback.
func TestSecurityKeys(t *testing.T) {
	c, err := Parse([]byte("[[volume]]\nname = \"v\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.UnixMode != 0o666 || c.Server.TLS() || !reflect.DeepEqual(c.Access.Users, []string{"*"}) ||
		!reflect.DeepEqual(c.Access.GatewayUsers, []string{"root"}) || c.Access.TokensFile != "" {
		t.Errorf("defaults: %+v %+v", c.Server, c.Access)
	}
	c, err = Parse([]byte("[server]\ntcp = \"[::]:9450\"\nunix_mode = \"0660\"\nunix_group = \"proxyfs\"\n" +
		"tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_ca = \"ca.pem\"\n" +
		"[access]\nusers = [\"alice\", \"1001\"]\ngroups = [\"staff\"]\ngateway_users = []\ngateway_groups = [\"smbgw\"]\ntokens_file = \"/etc/t\"\n" +
		"[[volume]]\nname = \"v\"\nusers = [\"alice\", \"token:gw\"]\ngroups = [\"staff\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.UnixMode != 0o660 || c.Server.UnixGroup != "proxyfs" || !c.Server.TLS() || c.Server.TLSClientCA != "ca.pem" ||
		len(c.Access.GatewayUsers) != 0 || c.Access.GatewayGroups[0] != "smbgw" || c.Volumes[0].Users[1] != "token:gw" {
		t.Errorf("parsed: %+v %+v %+v", c.Server, c.Access, c.Volumes[0])
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "127.0.0.2:1": true, "[::1]:1": true, "localhost:1": true,
		":1": false, "0.0.0.0:1": false, "10.1.2.3:1": false, "example.com:1": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}

func TestErrors(t *testing.T) {
	const vol = "\n[[volume]]\nname = \"v\"\n"
	for _, tc := range []struct {
		toml string
		want string // substring of the error
	}{
		{"[server]\ntcpp = \"x\"" + vol, `unknown key "server.tcpp"`},
		{"bogus = 1" + vol, `unknown key "bogus"`},
		{"[[volume]]\nname = \"v\"\nfoo = 1\n", `unknown key "volume.foo"`},
		{"[[volume]]\nname = \"v\"\nsync_interval = \"x\"\n", `config: volume[0].sync_interval: invalid duration "x"`},
		{"[[volume]]\nname = \"v\"\nsync_interval = \"0s\"\n", `volume[0].sync_interval`},
		{"[[volume]]\nname = \"v\"\n[[volume]]\nname = \"v\"\n", `volume[1].name: "v" is already the name of volume[0]`},
		{"[[volume]]\nname = \"\"\n", `volume[0].name`},
		{"[[volume]]\nname = \"../x\"\n", `volume[0].name`},
		{"[[volume]]\nengine = \"local\"\n", `volume[0].name: missing`},
		{"[[volume]]\nname = \"v\"\nengine = \"s3\"\n", `volume[0].engine: unknown engine "s3"`},
		{"[[volume]]\nname = \"v\"\ncapacity_bytes = -1\n", `volume[0].capacity_bytes`},
		{"[[volume]]\nname = \"v\"\ninline_bytes = 65537\n", `volume[0].inline_bytes: 65537 is out of range`},
		{"[[volume]]\nname = \"v\"\ninline_bytes = -1\n", `volume[0].inline_bytes`},
		{"[[volume]]\nname = \"v\"\nmetadata_cache_bytes = 1000\n", `volume[0].metadata_cache_bytes: 1000 is under the minimum`},
		{"[[volume]]\nname = \"v\"\nanon_uid = -1\n", `volume[0].anon_uid: -1 is out of range 0..4294967295`},
		{"[[volume]]\nname = \"v\"\nanon_gid = 4294967296\n", `volume[0].anon_gid: 4294967296 is out of range`},
		{"[[volume]]\nname = \"v\"\nroot_squash = 1\n", `root_squash`},
		{"[[volume]]\nname = \"v\"\nread_only = \"yes\"\n", `read_only`},
		{"[[volume]]\nname = \"a\"\npath = \"p\"\n[[volume]]\nname = \"b\"\npath = \"p/\"\n", `volume[1].path`},
		{"[server]\nshutdown_grace = \"soon\"" + vol, `server.shutdown_grace: invalid duration "soon"`},
		{"[server]\nmax_io_bytes = 0" + vol, `server.max_io_bytes: 0 is out of range`},
		{"[server]\nmax_message_bytes = 10" + vol, `server.max_message_bytes`},
		{"[server]\nmax_connections = -5" + vol, `server.max_connections`},
		{"[server]\nmax_inflight_per_conn = 0" + vol, `server.max_inflight_per_conn`},
		{"[server]\nmount_grace = \"1 min\"" + vol, `server.mount_grace: invalid duration "1 min"`},
		{"[server]\nmount_grace = 60" + vol, `mount_grace`},
		{"[server]\nmount_grace = \"-1s\"" + vol, `server.mount_grace: duration "-1s" must be positive`},
		{"[server]\nmount_grace = \"25h\"" + vol, `server.mount_grace: "25h" is longer than 24h0m0s`},
		{"[server]\nmax_mounts_per_connection = 0" + vol, `server.max_mounts_per_connection: 0 is out of range [1, 65536]`},
		{"[server]\nmax_mounts_per_connection = 65537" + vol, `server.max_mounts_per_connection`},
		{"[server]\nmax_connections = 10\nmax_connections_per_peer = 11" + vol, `server.max_connections_per_peer: 11 is out of range`},
		{"[server]\nmax_connections_per_peer = -1" + vol, `server.max_connections_per_peer`},
		{"[server]\nhandshake_timeout = \"0s\"" + vol, `server.handshake_timeout: duration "0s" must be positive`},
		{"[server]\nunix_mode = \"0999\"" + vol, `server.unix_mode: "0999" is not an octal mode`},
		{"[server]\nunix_mode = 438" + vol, `unix_mode`},
		{"[server]\ntls_cert = \"c.pem\"" + vol, `server.tls_cert and server.tls_key go together`},
		{"[server]\ntls_client_ca = \"ca.pem\"" + vol, `server.tls_client_ca needs server.tls_cert`},
		{"[server]\ntcp = \"0.0.0.0:9450\"" + vol, `server.tcp 0.0.0.0:9450 is not a loopback address: plain TCP beyond loopback is refused`},
		{"[server]\ntcp = \":9450\"" + vol, `is not a loopback address`},
		{"[server]\ntcp = \"10.0.0.1:9450\"\ntls_cert = \"c\"\ntls_key = \"k\"" + vol, `TLS clients need tokens or client certificates; set access.tokens_file or access.cert_users`},
		{"[server]\ntls_cert = \"c\"\ntls_key = \"k\"\n[access.cert_users]\nalice = \"1000:1000\"" + vol, `access.cert_users needs server.tls_client_ca`},
		{"[access]\nusers = [\"a b\"]" + vol, `access.users: "a b" is not a user`},
		{"[access]\ngateway_users = [\"*\"]" + vol, `access.gateway_users: "*"`},
		{"[access]\nuser = []" + vol, `unknown key "access.user"`},
		{"[[volume]]\nname = \"v\"\nusers = [\"\"]\n", `volume[0].users`},
		{"[[volume]]\nname = \"v\"\nusers_ro = [\"a b\"]\n", `volume[0].users_ro`},
		{"[server]\nhandshake_timeout = \"-1s\"" + vol, `server.handshake_timeout`},
		{"[server]\nidle_timeout = \"-1s\"" + vol, `server.idle_timeout`},
		{"[server]\nidle_timeout = \"soon\"" + vol, `server.idle_timeout: invalid duration "soon"`},
		{"[server]\nidle_timeout = 600" + vol, `idle_timeout`},
		{"[server]\nmax_io_bytes = \"big\"" + vol, `max_io_bytes`},
		{"[server]\ntcp = \"localhost\"" + vol, `server.tcp: invalid address "localhost"`},
		{"[server]\ntcp = \"localhost:http\"" + vol, `server.tcp: invalid port`},
		{"[server]\nunix = \"/" + strings.Repeat("x", 200) + "\"" + vol, `server.unix`},
		{"[metrics]\nlisten = \"nope\"" + vol, `metrics.listen`},
		{"[metrics]\nlisten = \"0.0.0.0:9451\"" + vol, `metrics.listen 0.0.0.0:9451 is not a loopback address: /metrics beyond loopback needs metrics.web_config_file`},
		{"[metrics]\npprof = \"yes\"" + vol, `pprof`},
		{"[log]\nlevel = \"loud\"" + vol, `log.level: "loud"`},
		{"[log]\nformat = \"xml\"" + vol, `log.format: "xml"`},
		{"[log]\naccess = 1" + vol, `log.access: want true, false or a file's path`},
		{"[log]\naccess = \"true\"" + vol, `log.access: "true": write true`},
		{"[server]\n", `no [[volume]]`},
		{"[server]\ntcp = \"\"\nunix = \"\"" + vol, `server.tcp and server.unix are both empty`},
		{"[server\n", `config: line 2`},
	} {
		_, err := Parse([]byte(tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.toml, err, tc.want)
		}
	}
}

// max_connections_per_peer defaults to three quarters of max_connections
// (rounded up), whatever max_connections is.
func TestPerPeerDefault(t *testing.T) {
	for max, want := range map[int]int{1: 1, 2: 2, 3: 3, 4: 3, 10: 8, 1024: 768, 4096: 3072} {
		c, err := Parse([]byte(fmt.Sprintf("[server]\nmax_connections = %d\n[[volume]]\nname = \"v\"\n", max)))
		if err != nil {
			t.Fatal(err)
		}
		if c.Server.MaxConnectionsPerPeer != want {
			t.Errorf("max_connections %d: per peer %d, want %d", max, c.Server.MaxConnectionsPerPeer, want)
		}
	}
	c, err := Parse([]byte("[server]\nmax_connections = 10\nmax_connections_per_peer = 0\n[[volume]]\nname = \"v\"\n"))
	if err != nil || c.Server.MaxConnectionsPerPeer != 8 {
		t.Errorf("max_connections_per_peer = 0: %+v, %v", c, err)
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	if _, err := Load(p); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	if err := os.WriteFile(p, []byte("[[volume]]\nname=\"x\"\nengine=\"nope\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Load error %v does not name the file", err)
	}
	if err := os.WriteFile(p, DefaultTOML, 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(p); err != nil || c.Volumes[0].Name != "default" {
		t.Errorf("Load(default) = %+v, %v", c, err)
	}
}

// The example config that make install ships must load.
func TestShippedExample(t *testing.T) {
	c, err := Load("../dist/proxyfsd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Unix != "/run/proxyfs/proxyfsd.sock" || c.Volumes[0].Path != "/var/lib/proxyfs/default" || c.Log.Format != "json" {
		t.Errorf("example config: %+v", c)
	}
}

func TestEtcdSwiftVolume(t *testing.T) {
	base := "[[volume]]\nname = \"v\"\n"
	c, err := Parse([]byte(base + `engine = "etcdswift"
etcd_endpoints = ["http://127.0.0.1:2379", "http://127.0.0.2:2379"]
swift_auth_url = "http://127.0.0.1:8080/auth/v1.0"
swift_user = "test:tester"
swift_key = "testing"
chunk_bytes = 262144
`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Volumes[0].Remote
	want := vfsbackend.RemoteOptions{EtcdEndpoints: []string{"http://127.0.0.1:2379", "http://127.0.0.2:2379"}, EtcdPrefix: "proxyfs/v/",
		SwiftAuthURL: "http://127.0.0.1:8080/auth/v1.0", SwiftUser: "test:tester", SwiftKey: "testing", SwiftContainer: "proxyfs-v", ChunkBytes: 262144,
		ObjectStore: "swift"}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("remote %+v, want %+v", r, want)
	}
	for _, bad := range []string{
		`engine = "etcdswift"` + "\n" + `swift_auth_url = "http://x/auth/v1.0"`,                                // no endpoints
		`engine = "etcdswift"` + "\n" + `etcd_endpoints = ["http://e:2379"]`,                                   // no Swift
		`engine = "local"` + "\n" + `etcd_endpoints = ["http://e:2379"]`,                                       // wrong engine
		`engine = "etcdswift"` + "\n" + `etcd_endpoints = ["e"]` + "\nswift_auth_url = \"u\"\nchunk_bytes = 1", // chunk too small
		`engine = "local"` + "\n" + `s3_endpoint = "http://e:9000"`,                                            // wrong engine
	} {
		if _, err := Parse([]byte(base + bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestEtcdSwiftVolumeS3TLS: an S3 object store and TLS to both etcd and
// the object store.
func TestEtcdSwiftVolumeS3TLS(t *testing.T) {
	base := "[[volume]]\nname = \"My_Vol\"\nengine = \"etcdswift\"\n"
	c, err := Parse([]byte(base + `etcd_endpoints = ["https://e1:2379", "https://e2:2379"]
etcd_tls_ca = "/etc/proxyfs/etcd-ca.pem"
etcd_tls_cert = "/etc/proxyfs/etcd-client.pem"
etcd_tls_key = "/etc/proxyfs/etcd-client.key"
etcd_user = "proxyfs"
etcd_password = "secret"
object_store = "s3"
s3_endpoint = "https://s3.example.com"
s3_region = "eu-west-1"
s3_access_key = "AK"
s3_secret_key = "SK"
s3_tls_ca = "/etc/proxyfs/s3-ca.pem"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := vfsbackend.RemoteOptions{EtcdEndpoints: []string{"https://e1:2379", "https://e2:2379"}, EtcdPrefix: "proxyfs/My_Vol/",
		EtcdTLSCA: "/etc/proxyfs/etcd-ca.pem", EtcdTLSCert: "/etc/proxyfs/etcd-client.pem", EtcdTLSKey: "/etc/proxyfs/etcd-client.key",
		EtcdUser: "proxyfs", EtcdPassword: "secret", ObjectStore: "s3",
		S3Endpoint: "https://s3.example.com", S3Region: "eu-west-1", S3AccessKey: "AK", S3SecretKey: "SK",
		S3Bucket: "proxyfs-my-vol", S3TLSCA: "/etc/proxyfs/s3-ca.pem"}
	if r := c.Volumes[0].Remote; !reflect.DeepEqual(r, want) {
		t.Errorf("remote %+v, want %+v", r, want)
	}
	// Swift over https with its own CA.
	c, err = Parse([]byte(base + `etcd_endpoints = ["http://e:2379"]
swift_auth_url = "https://swift.example.com/auth/v1.0"
swift_tls_ca = "/etc/proxyfs/swift-ca.pem"
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Volumes[0].Remote; r.ObjectStore != "swift" || r.SwiftTLSCA != "/etc/proxyfs/swift-ca.pem" || r.SwiftContainer != "proxyfs-My_Vol" {
		t.Errorf("swift over TLS: %+v", r)
	}
	eps := `etcd_endpoints = ["https://e:2379"]` + "\n"
	for bad, wantErr := range map[string]string{
		eps + `object_store = "gcs"`:                                                   "not one of swift, s3",
		eps + `object_store = "s3"`:                                                    "s3_endpoint",
		eps + "object_store = \"s3\"\ns3_endpoint = \"s3.example.com\"":                "s3_endpoint",
		eps + "object_store = \"s3\"\ns3_endpoint = \"https://h/path\"":                "s3_endpoint",
		eps + "object_store = \"s3\"\ns3_endpoint = \"https://h\"\ns3_bucket = \"Up\"": "s3_bucket",
		eps + "object_store = \"s3\"\ns3_endpoint = \"https://h\"\nswift_key = \"k\"":  "swift_* keys",
		eps + "swift_auth_url = \"https://h/auth/v1.0\"\ns3_bucket = \"b\"":            "s3_* keys",
		eps + "swift_auth_url = \"u\"\netcd_tls_cert = \"c.pem\"":                      "etcd_tls_key",
		eps + "swift_auth_url = \"u\"\netcd_user = \"u\"":                              "etcd_password",
		`engine = "local"` + "\n" + `etcd_tls_ca = "ca.pem"`:                           "for engine",
	} {
		_, err := Parse([]byte(strings.Replace(base, "engine = \"etcdswift\"\n", "", 1) + ensureEngine(bad)))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: %v, want an error naming %q", bad, err, wantErr)
		}
	}
}

// ensureEngine adds engine = "etcdswift" to a volume body that names no
// engine.
func ensureEngine(body string) string {
	if strings.Contains(body, "engine =") {
		return body
	}
	return "engine = \"etcdswift\"\n" + body
}

func TestLogAccess(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"":                          "",
		"access = false\n":          "",
		"access = true\n":           AccessToLog,
		"access = \"/var/log/a\"\n": "/var/log/a",
	} {
		p := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(p, []byte("[log]\n"+body+"[[volume]]\nname = \"v\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if c.Log.Access != want {
			t.Errorf("%q: access %q, want %q", body, c.Log.Access, want)
		}
	}
}
