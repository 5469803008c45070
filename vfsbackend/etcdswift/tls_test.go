package etcdswift_test

// TLS to both servers: an etcd that serves https only and requires a
// client certificate, and a Swift proxy (native and S3 API) that serves
// https only, with certificates of a CA of their own.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/proxyfs/proxyfs/internal/testpki"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift/etcdswifttest"
)

// tlsServers starts TLS-only servers for one test.
func tlsServers(t *testing.T) *etcdswifttest.Servers {
	t.Helper()
	s, err := etcdswifttest.StartWith(etcdswifttest.Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping the TLS servers: %v", err)
		}
	})
	for _, e := range s.EtcdEndpoints {
		if !strings.HasPrefix(e, "https://") {
			t.Fatalf("etcd endpoint %s is not https", e)
		}
	}
	if !strings.HasPrefix(s.SwiftAuthURL, "https://") || !strings.HasPrefix(s.S3Endpoint, "https://") {
		t.Fatalf("object store URLs %s, %s are not https", s.SwiftAuthURL, s.S3Endpoint)
	}
	return s
}

// openFails opens r and wants an error naming all of want, within limit
// (a certificate problem is reported, not waited out).
func openFails(t *testing.T, what string, r vfsbackend.RemoteOptions, limit time.Duration, want ...string) {
	t.Helper()
	start := time.Now()
	b, err := etcdswift.Open(vfsbackend.Options{Remote: r, Format: vfsbackend.FormatIfNew})
	took := time.Since(start)
	if err == nil {
		b.Close()
		t.Fatalf("%s: Open succeeded", what)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not name %q", what, err, w)
		}
	}
	if took > limit {
		t.Errorf("%s: Open took %v to fail (want under %v): %v", what, took.Round(time.Millisecond), limit, err)
	}
	t.Logf("%s: failed in %v: %v", what, took.Round(time.Millisecond), err)
}

// TestTLS: volumes over TLS-only etcd with Swift's native API and with its
// S3 API, both over https; a gateway serving one; and the errors of a
// wrong CA or a missing client certificate, at once and naming the
// problem.
func TestTLS(t *testing.T) {
	s := tlsServers(t)
	data := bytes.Repeat([]byte("tls!"), 5000) // several 4 KiB chunks
	for _, r := range []vfsbackend.RemoteOptions{s.Remote(t.Name(), 4096), s.RemoteS3(t.Name()+"/s3", 4096)} {
		b, err := etcdswift.Open(vfsbackend.Options{Remote: r, Format: vfsbackend.FormatIfNew})
		if err != nil {
			t.Fatalf("Open (object store %q) over TLS: %v", r.ObjectStore, err)
		}
		if err := b.WriteData(ctx, 5, data, 0); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, len(data)+1)
		if n, err := b.ReadData(ctx, 5, p, 0); err != nil || !bytes.Equal(p[:n], data) {
			t.Fatalf("ReadData over TLS = %d, %v", n, err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A gateway over TLS to both, and -check of its volume.
	r := s.RemoteS3(t.Name()+"/gateway", 64<<10)
	d := startGateway(t, r)
	m := mountRoot(t, d)
	big := randBytes(300<<10, 5)
	writeFile(t, m, "f", big)
	d.Kill()
	d.Restart()
	wantFile(t, mountRoot(t, d), "f", big)
	d.Stop()
	d.Check(t)

	// Wrong CAs and a missing client certificate.
	other := testpki.New(t, t.TempDir(), "not-the-servers-ca")
	bad := s.Remote(t.Name(), 4096)
	bad.EtcdTLSCA = other.Path
	openFails(t, "etcd, wrong CA", bad, 15*time.Second, "etcd", "certificate", "etcd_tls_ca")
	bad = s.Remote(t.Name(), 4096)
	bad.EtcdTLSCert, bad.EtcdTLSKey = "", ""
	openFails(t, "etcd, no client certificate", bad, 15*time.Second, "etcd", "certificate")
	bad = s.Remote(t.Name(), 4096)
	bad.EtcdTLSCA = ""
	openFails(t, "etcd, system CAs", bad, 15*time.Second, "etcd", "certificate")
	bad = s.Remote(t.Name(), 4096)
	bad.SwiftTLSCA = other.Path
	openFails(t, "Swift, wrong CA", bad, 15*time.Second, "Swift", "certificate", "swift_tls_ca")
	bad = s.RemoteS3(t.Name()+"/s3", 4096)
	bad.S3TLSCA = other.Path
	openFails(t, "S3, wrong CA", bad, 15*time.Second, "S3", "certificate", "s3_tls_ca")

	// The daemon with a wrong CA: it refuses to start, saying why.
	cfg, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(cfg), "etcd_tls_ca = \""+s.CAFile+"\"", "etcd_tls_ca = \""+other.Path+"\"", 1)
	if wrong == string(cfg) {
		t.Fatalf("no etcd_tls_ca line in the gateway's configuration:\n%s", cfg)
	}
	if err := os.WriteFile(d.ConfigPath, []byte(wrong), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out := d.Run(t, time.Minute)
	if code == 0 || !strings.Contains(out, "certificate") || !strings.Contains(out, "etcd_tls_ca") {
		t.Errorf("proxyfsd with a wrong etcd CA: exit %d\n%s", code, out)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("proxyfsd with a wrong etcd CA took %v to give up", took)
	}

	// Last, as it changes the servers for good: etcd with authentication,
	// a user allowed the volume's prefix only.
	testEtcdUser(t, s)
}

// testEtcdUser enables authentication on s's etcd, with a user that may
// read and write one prefix, and opens a volume there as that user; a
// wrong password fails Open, naming the cause.
func testEtcdUser(t *testing.T, s *etcdswifttest.Servers) {
	r := s.Remote(t.Name()+"/user", 4096)
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(s.EtcdCertFile, s.EtcdKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsc := &tls.Config{RootCAs: x509.NewCertPool(), Certificates: []tls.Certificate{cert}}
	if !tlsc.RootCAs.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", s.CAFile)
	}
	admin, err := clientv3.New(clientv3.Config{Endpoints: s.EtcdEndpoints, TLS: tlsc, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-secret"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "proxyfs-vol"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "proxyfs-vol", r.EtcdPrefix, clientv3.GetPrefixRangeEnd(r.EtcdPrefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "gateway", "gw-secret"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "gateway", "proxyfs-vol"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("etcd auth setup step %d: %v", i, err)
		}
	}
	r.EtcdUser, r.EtcdPassword = "gateway", "gw-secret"
	b, err := etcdswift.Open(vfsbackend.Options{Remote: r, Format: vfsbackend.FormatIfNew})
	if err != nil {
		t.Fatalf("Open as etcd user %q: %v", r.EtcdUser, err)
	}
	defer b.Close()
	if err := b.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: []byte("k"), Value: []byte("as gateway")}}}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, []byte("k")); err != nil || string(v) != "as gateway" {
		t.Fatalf("Get as etcd user = %q, %v", v, err)
	}
	if err := b.WriteData(ctx, 9, []byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	// Another prefix is out of the user's reach.
	other := s.Remote(t.Name()+"/not-granted", 4096)
	other.EtcdUser, other.EtcdPassword = r.EtcdUser, r.EtcdPassword
	openFails(t, "etcd user, prefix not granted", other, 15*time.Second, "permission denied")
	bad := r
	bad.EtcdPassword = "wrong"
	openFails(t, "etcd user, wrong password", bad, 15*time.Second, "authentication failed")
}
