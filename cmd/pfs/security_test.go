package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/internal/testpki"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// TestTokenAndTLSFlags: -token, -token-file (and PROXYFS_TOKEN), -tls-ca,
// -tls-cert and -tls-key against a daemon whose TCP listener speaks TLS
// and requires client certificates; tokens and certificates as
// credentials.
func TestTokenAndTLSFlags(t *testing.T) {
	dir := t.TempDir()
	p := testpki.New(t, dir, "ca")
	serverCert, serverKey := p.Server("server")
	adminCert, adminKey := p.ClientFiles("admin")
	userCert, userKey := p.ClientFiles("user")
	strangerCert, strangerKey := p.ClientFiles("stranger")
	const token = "pfs-user-token-0123456789"
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(fmt.Sprintf("%s pfsuser %d:%d\n", token, testUID, testGID)), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, daemontest.Options{NoUnix: true, LogLevel: "info",
		ServerExtra: fmt.Sprintf("tls_cert = %q\ntls_key = %q\ntls_client_ca = %q", serverCert, serverKey, p.Path),
		Access:      fmt.Sprintf("tokens_file = %q\n[access.cert_users]\nadmin = \"*\"\nuser = \"%d:%d\"\n", tokens, testUID, testGID)})

	// The administrator gives the root directory to the test's user.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(p.Path)
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

	tlsUser := []string{"-tls-ca", p.Path, "-tls-cert", userCert, "-tls-key", userKey, "-timeout", "5s"}
	tlsStranger := []string{"-tls-ca", p.Path, "-tls-cert", strangerCert, "-tls-key", strangerKey, "-timeout", "5s"}
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
	if r := pfsAt(t, d.TCPAddr, nil, "-token-file", filepath.Join(dir, "missing"), "ls", "/"); r.code != exitUsage || !strings.Contains(r.stderr, "token file") {
		t.Errorf("missing token file: %+v", r)
	}
	if r := pfsAt(t, d.TCPAddr, nil, "-tls-ca", tokenFile, "ls", "/"); r.code != exitUsage || !strings.Contains(r.stderr, "holds no PEM certificate") {
		t.Errorf("bad CA file: %+v", r)
	}
}
