package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// testPKI is a throwaway CA that signs the server's certificate (for
// 127.0.0.1) and client certificates, all written as PEM files in dir.
type testPKI struct {
	t    *testing.T
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	n    int64
	CA   string // the CA's PEM file
	Cert string // the server's certificate and key files
	Key  string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: t.TempDir(), n: 1}
	var err error
	if p.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pfs test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.CA = p.write("ca.pem", "CERTIFICATE", der)
	p.Cert, p.Key = p.issue("server", "127.0.0.1", x509.ExtKeyUsageServerAuth)
	return p
}

func (p *testPKI) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue writes a certificate with common name cn (and IP address ip, if
// any) and its key; it returns their paths.
func (p *testPKI) issue(cn, ip string, usage x509.ExtKeyUsage) (certPath, keyPath string) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.n++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.n), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if ip != "" {
		tmpl.IPAddresses = []net.IP{net.ParseIP(ip)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(cn+".pem", "CERTIFICATE", der), p.write(cn+".key", "EC PRIVATE KEY", kder)
}

// TestTokenAndTLSFlags: -token, -token-file (and PROXYFS_TOKEN), -tls-ca,
// -tls-cert and -tls-key against a daemon whose TCP listener speaks TLS
// and requires client certificates; tokens and certificates as
// credentials.
func TestTokenAndTLSFlags(t *testing.T) {
	p := newTestPKI(t)
	adminCert, adminKey := p.issue("admin", "", x509.ExtKeyUsageClientAuth)
	userCert, userKey := p.issue("user", "", x509.ExtKeyUsageClientAuth)
	strangerCert, strangerKey := p.issue("stranger", "", x509.ExtKeyUsageClientAuth)
	const token = "pfs-user-token-0123456789"
	tokens := filepath.Join(p.dir, "tokens")
	if err := os.WriteFile(tokens, []byte(fmt.Sprintf("%s pfsuser %d:%d\n", token, testUID, testGID)), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(p.dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, daemontest.Options{NoUnix: true, LogLevel: "info",
		ServerExtra: fmt.Sprintf("tls_cert = %q\ntls_key = %q\ntls_client_ca = %q", p.Cert, p.Key, p.CA),
		Access:      fmt.Sprintf("tokens_file = %q\n[access.cert_users]\nadmin = \"*\"\nuser = \"%d:%d\"\n", tokens, testUID, testGID)})

	// The administrator gives the root directory to the test's user.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	ac, err := tls.LoadX509KeyPair(adminCert, adminKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := client.Dial(ctx, d.TCPAddr, client.WithTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{ac}}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Mount(ctx, "default", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ChownPath(ctx, "/", testUID, testGID); err != nil {
		t.Fatal(err)
	}
	c.Close()

	tlsUser := []string{"-tls-ca", p.CA, "-tls-cert", userCert, "-tls-key", userKey, "-timeout", "5s"}
	tlsStranger := []string{"-tls-ca", p.CA, "-tls-cert", strangerCert, "-tls-key", strangerKey, "-timeout", "5s"}
	with := func(a []string, more ...string) []string { return append(append([]string{}, a...), more...) }

	// A certificate of cert_users: no token needed.
	ok(t, d.TCPAddr, with(tlsUser, "mkdir", "/bycert")...)
	// A certificate not listed: a token from a file, the command line, or
	// PROXYFS_TOKEN.
	ok(t, d.TCPAddr, with(tlsStranger, "-token-file", tokenFile, "mkdir", "/bytoken")...)
	if out := ok(t, d.TCPAddr, with(tlsStranger, "-token", token, "ls", "/")...); !strings.Contains(out, "bycert") || !strings.Contains(out, "bytoken") {
		t.Errorf("ls: %q", out)
	}
	t.Setenv("PROXYFS_TOKEN", token)
	ok(t, d.TCPAddr, with(tlsStranger, "stat", "/bytoken")...)
	t.Setenv("PROXYFS_TOKEN", "")

	// Refusals: no token, a wrong token, no TLS.
	if r := pfsAt(t, d.TCPAddr, nil, with(tlsStranger, "ls", "/")...); r.code != exitFail || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("unlisted certificate without a token: %+v", r)
	}
	if r := pfsAt(t, d.TCPAddr, nil, with(tlsStranger, "-token", "wrong-0123456789abcdef", "ls", "/")...); r.code != exitFail || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("wrong token: %+v", r)
	}
	if r := pfsAt(t, d.TCPAddr, nil, "-timeout", "3s", "-token", token, "ls", "/"); r.code != exitFail {
		t.Errorf("plain TCP to the TLS listener: %+v", r)
	}

	// Usage errors.
	if r := pfsAt(t, d.TCPAddr, nil, "-tls-cert", userCert, "ls", "/"); r.code != exitUsage || !strings.Contains(r.stderr, "-tls-cert and -tls-key go together") {
		t.Errorf("-tls-cert alone: %+v", r)
	}
	if r := pfsAt(t, d.TCPAddr, nil, "-token-file", filepath.Join(p.dir, "missing"), "ls", "/"); r.code != exitUsage || !strings.Contains(r.stderr, "token file") {
		t.Errorf("missing token file: %+v", r)
	}
	if r := pfsAt(t, d.TCPAddr, nil, "-tls-ca", tokenFile, "ls", "/"); r.code != exitUsage || !strings.Contains(r.stderr, "holds no PEM certificate") {
		t.Errorf("bad CA file: %+v", r)
	}
}
