// Package etcdswifttest starts a private etcd and a one-node Swift on
// loopback for tests (scripts/scaleout-servers.sh), once per test binary.
package etcdswifttest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// RequireEnv names the environment variable that turns a missing server
// into a failure instead of a skip (make test sets it, so CI cannot skip).
const RequireEnv = "PROXYFS_REQUIRE_SCALEOUT"

// Servers are running etcd and Swift servers. Swift also serves the S3
// API (its s3api middleware) at S3Endpoint.
type Servers struct {
	Dir           string
	EtcdEndpoints []string
	SwiftAuthURL  string
	SwiftUser     string
	SwiftKey      string
	S3Endpoint    string
	S3Region      string
	S3AccessKey   string
	S3SecretKey   string
	// With Options.TLS: the CA of both servers' certificates, and the
	// client certificate and key etcd requires.
	CAFile, EtcdCertFile, EtcdKeyFile string
	script                            string
}

// binaries are what the script needs.
var binaries = []string{"etcd", "swift-ring-builder", "swift-proxy-server", "swift-account-server",
	"swift-container-server", "swift-object-server", "memcached", "python3"}

// Missing returns the server binaries that are not installed.
func Missing() []string {
	var out []string
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			out = append(out, b)
		}
	}
	return out
}

// Required says whether RequireEnv is set to 1.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "scaleout-servers.sh")
}

// base is where the servers' directory goes: $PROXYFS_SCALEOUT_TMP, else
// /dev/shm when there is one (tmpfs: the servers' fsyncs cost nothing, so
// the tests measure proxyfs rather than the test machine's disk), else the
// default temporary directory.
func base() string {
	if d := os.Getenv("PROXYFS_SCALEOUT_TMP"); d != "" {
		return d
	}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "proxyfs-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return ""
}

// Start starts the servers under a new temporary directory: a one-member
// etcd and a one-node Swift.
func Start() (*Servers, error) { return StartWith(Options{}) }

// Options says what StartWith starts.
type Options struct {
	// EtcdMembers is the number of etcd members (default 1); each gets
	// its own ports and data directory.
	EtcdMembers int
	// TLS makes both servers TLS-only (SCALEOUT_TLS=1): https URLs, a CA
	// in Servers.CAFile, and etcd requiring a client certificate.
	TLS bool
}

// StartWith starts the servers under a new temporary directory.
func StartWith(o Options) (*Servers, error) {
	dir, err := os.MkdirTemp(base(), "proxyfs-scaleout-")
	if err != nil {
		return nil, err
	}
	s := &Servers{Dir: dir, script: script()}
	cmd := exec.Command("sh", s.script, "start", dir)
	cmd.Env = os.Environ()
	if o.EtcdMembers > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("ETCD_MEMBERS=%d", o.EtcdMembers))
	}
	if o.TLS {
		cmd.Env = append(cmd.Env, "SCALEOUT_TLS=1")
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s start: %v\n%s%s", s.script, err, out.String(), errb.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "ETCD_ENDPOINTS":
			s.EtcdEndpoints = strings.Split(v, ",")
		case "SWIFT_AUTH_URL":
			s.SwiftAuthURL = v
		case "SWIFT_USER":
			s.SwiftUser = v
		case "SWIFT_KEY":
			s.SwiftKey = v
		case "S3_ENDPOINT":
			s.S3Endpoint = v
		case "S3_REGION":
			s.S3Region = v
		case "S3_ACCESS_KEY":
			s.S3AccessKey = v
		case "S3_SECRET_KEY":
			s.S3SecretKey = v
		case "ETCD_CA_FILE":
			s.CAFile = v
		case "ETCD_CERT_FILE":
			s.EtcdCertFile = v
		case "ETCD_KEY_FILE":
			s.EtcdKeyFile = v
		}
	}
	if len(s.EtcdEndpoints) == 0 || s.SwiftAuthURL == "" || s.S3Endpoint == "" || (o.TLS && s.CAFile == "") {
		s.Stop()
		return nil, fmt.Errorf("%s start printed no endpoints: %q", s.script, out.String())
	}
	return s, nil
}

// Kill kills one server with SIGKILL: "etcd1", "etcd2", ... for the etcd
// members, "swift-proxy", "swift-object", "swift-container",
// "swift-account" or "memcached".
func (s *Servers) Kill(name string) error {
	if out, err := exec.Command("sh", s.script, "kill", s.Dir, name).CombinedOutput(); err != nil {
		return fmt.Errorf("kill %s: %v: %s", name, err, out)
	}
	return nil
}

// Restart starts a killed server again, with its ports and data.
func (s *Servers) Restart(name string) error {
	if out, err := exec.Command("sh", s.script, "restart", s.Dir, name).CombinedOutput(); err != nil {
		return fmt.Errorf("restart %s: %v: %s", name, err, out)
	}
	return nil
}

// Stop stops the servers and removes their directory.
func (s *Servers) Stop() error {
	err := exec.Command("sh", s.script, "stop", s.Dir).Run()
	os.RemoveAll(s.Dir)
	return err
}

// Remote returns options for a volume named by name, its data in Swift
// through the native API: its own etcd prefix and container. With TLS
// servers, they carry the CA and etcd's client certificate.
func (s *Servers) Remote(name string, chunkBytes int) vfsbackend.RemoteOptions {
	h := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(h[:8])
	return vfsbackend.RemoteOptions{
		EtcdEndpoints:  s.EtcdEndpoints,
		EtcdPrefix:     "test/" + id + "/",
		EtcdTLSCA:      s.CAFile,
		EtcdTLSCert:    s.EtcdCertFile,
		EtcdTLSKey:     s.EtcdKeyFile,
		SwiftAuthURL:   s.SwiftAuthURL,
		SwiftUser:      s.SwiftUser,
		SwiftKey:       s.SwiftKey,
		SwiftContainer: "test-" + id,
		SwiftTLSCA:     s.CAFile,
		ChunkBytes:     chunkBytes,
	}
}

// RemoteS3 is Remote with the data in a bucket of Swift's S3 API (a
// container by another name: the same Swift account).
func (s *Servers) RemoteS3(name string, chunkBytes int) vfsbackend.RemoteOptions {
	r := s.Remote(name, chunkBytes)
	r.ObjectStore = "s3"
	r.S3Endpoint = s.S3Endpoint
	r.S3Region = s.S3Region
	r.S3AccessKey = s.S3AccessKey
	r.S3SecretKey = s.S3SecretKey
	r.S3Bucket = "s3-" + strings.TrimPrefix(r.SwiftContainer, "test-")
	r.S3TLSCA = s.CAFile
	r.SwiftAuthURL, r.SwiftUser, r.SwiftKey, r.SwiftContainer, r.SwiftTLSCA = "", "", "", "", ""
	return r
}
