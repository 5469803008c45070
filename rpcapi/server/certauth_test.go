package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/internal/testpki"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// TestTLSClientCertificates: with tls_client_ca and access.cert_users, a
// verified client certificate is the connection's principal (no token):
// its CN says whom it may act as; a CN not listed must still send a
// token; a certificate of another CA, or none, is refused in the
// handshake; "cert:CN" in a volume's users admits it.
func TestTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir, "server-ca")
	certPath, keyPath := pki.Server("server")
	pool := pki.Pool
	ca := testpki.New(t, dir, "clients")
	other := testpki.New(t, dir, "other")
	tokens := filepath.Join(dir, "tokens")
	const gwToken = "gw-0123456789abcdef"
	if err := os.WriteFile(tokens, []byte(gwToken+" smbgw *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, daemontest.Options{NoUnix: true,
		Volumes:     []daemontest.Volume{{Name: "default"}, {Name: "alices", Extra: `users = ["cert:alice-host"]`}},
		ServerExtra: fmt.Sprintf("tls_cert = %q\ntls_key = %q\ntls_client_ca = %q", certPath, keyPath, ca.Path),
		Access: fmt.Sprintf("tokens_file = %q\n[access.cert_users]\n\"gw-host\" = \"*\"\n\"alice-host\" = \"1000:1000:100\"\n",
			tokens)})
	ctx := context.Background()
	withCert := func(c tls.Certificate) client.Option {
		return client.WithTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{c}})
	}

	// The gateway certificate acts as anyone, without a token.
	gw := rootClient(t, d.TCPAddr, withCert(ca.Client("gw-host")))
	m, err := gw.Mount(ctx, "default", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ChmodPath(ctx, "/", 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := m.As(client.Identity{UID: bob, GID: bob}).CreatePath(ctx, "/bobs", 0o600); err != nil {
		t.Fatal(err)
	}
	bobs, err := m.LookupPath(ctx, "/bobs")
	if err != nil {
		t.Fatal(err)
	}
	// It is not listed for the volume "alices".
	if _, err := gw.Mount(ctx, "alices", client.MountOptions{}); errnoName(err) != "permission denied" {
		t.Errorf("gateway certificate on alices: %v", err)
	}

	// alice's certificate acts as alice only.
	ac := rootClient(t, d.TCPAddr, withCert(ca.Client("alice-host")))
	if _, err := ac.Mount(ctx, "default", client.MountOptions{}); errnoName(err) != "operation not permitted" {
		t.Errorf("alice's certificate mounting as root: %v", err)
	}
	am, err := ac.Mount(ctx, "default", client.MountOptions{UID: 1000, GID: 1000, Groups: []uint32{100}})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := am.Read(ctx, bobs, buf, 0); errnoName(err) != "permission denied" {
		t.Errorf("alice reads bob's 0600 file: %v", err)
	}
	if _, err := am.CreatePath(ctx, "/alices", 0o600); err != nil {
		t.Errorf("alice creates a file: %v", err)
	}
	if _, err := ac.Mount(ctx, "alices", client.MountOptions{UID: 1000, GID: 1000}); err != nil {
		t.Errorf("alice's certificate on alices: %v", err)
	}

	// A CN not in cert_users: nobody until it sends a token.
	sc := rootClient(t, d.TCPAddr, withCert(ca.Client("stranger")), client.WithCallTimeout(3*time.Second))
	if _, err := sc.Mount(ctx, "default", client.MountOptions{UID: 1000, GID: 1000}); errnoName(err) != "permission denied" {
		t.Errorf("unlisted certificate without a token: %v", err)
	}
	st := rootClient(t, d.TCPAddr, withCert(ca.Client("stranger")), client.WithToken(gwToken))
	if _, err := st.Mount(ctx, "default", client.MountOptions{}); err != nil {
		t.Errorf("unlisted certificate with a token: %v", err)
	}

	// Another CA's certificate, or none: the handshake fails.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c, err := client.Dial(dctx, d.TCPAddr, withCert(other.Client("gw-host")), client.WithCallTimeout(2*time.Second)); err == nil {
		_, err = c.Mount(ctx, "default", client.MountOptions{})
		c.Close()
		if err == nil {
			t.Errorf("a certificate of another CA was accepted")
		}
	}
	if c, err := client.Dial(dctx, d.TCPAddr, client.WithTLS(&tls.Config{RootCAs: pool}), client.WithToken(gwToken), client.WithCallTimeout(2*time.Second)); err == nil {
		_, err = c.Mount(ctx, "default", client.MountOptions{})
		c.Close()
		if err == nil {
			t.Errorf("no client certificate was accepted")
		}
	}
	if !strings.Contains(d.Logs(), `client certificate CN \"stranger\" is not in access.cert_users`) &&
		!strings.Contains(d.Logs(), `client certificate CN "stranger" is not in access.cert_users`) {
		t.Errorf("unlisted certificate not logged:\n%s", d.Logs())
	}
}
