package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/internal/testpki"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// waitLog waits until the daemon's log holds want n times.
func waitLog(t *testing.T, d *daemontest.Daemon, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(d.Logs(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q %d times:\n%s", want, n, d.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadOnSIGHUP: SIGHUP reloads the tokens file and the TLS
// certificate. A removed token's connections are closed and cannot come
// back; an unchanged token's connections go on; a new token works at
// once; the next handshake presents the new certificate; a tokens file
// that fails to load leaves the previous tokens in force.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca1 := testpki.New(t, dir, "ca1")
	certPath, keyPath := ca1.Server("server")
	tokens := filepath.Join(dir, "tokens")
	const (
		gwToken    = "gw-0123456789abcdef"
		aliceToken = "alice-0123456789abcdef"
		carolToken = "carol-0123456789abcdef"
	)
	writeTokens := func(body string) {
		t.Helper()
		if err := os.WriteFile(tokens, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeTokens(gwToken + " smbgw *\n" + aliceToken + " alice 1000:1000\n")
	d := daemontest.Start(t, daemontest.Options{NoUnix: true, LogLevel: "info",
		ServerExtra: fmt.Sprintf("tls_cert = %q\ntls_key = %q", certPath, keyPath),
		Access:      fmt.Sprintf("tokens_file = %q", tokens)})
	ctx := context.Background()
	old := &tls.Config{RootCAs: ca1.Pool}
	alice := client.MountOptions{UID: 1000, GID: 1000}

	gw := rootClient(t, d.TCPAddr, client.WithTLS(old), client.WithToken(gwToken))
	gm, err := gw.Mount(ctx, "default", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ac := rootClient(t, d.TCPAddr, client.WithTLS(old), client.WithToken(aliceToken), client.WithCallTimeout(3*time.Second))
	am, err := ac.Mount(ctx, "default", alice)
	if err != nil {
		t.Fatal(err)
	}
	root, err := am.LookupPath(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}

	// Alice's token goes, carol's comes; the certificate is renewed.
	writeTokens(gwToken + " smbgw *\n" + carolToken + " carol 1001:1001\n")
	c2, k2 := ca1.Server("renewed")
	for _, mv := range [][2]string{{c2, certPath}, {k2, keyPath}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(d.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "reloaded access.tokens_file", 1)
	waitLog(t, d, "reloaded the TLS certificate", 1)
	if !strings.Contains(d.Logs(), "its token was removed or changed") {
		t.Errorf("alice's connection was not closed")
	}

	if _, err := am.GetStat(ctx, root); errnoName(err) != "permission denied" {
		t.Errorf("alice's mount after her token was removed: %v", errnoName(err))
	}
	if _, err := gm.GetStat(ctx, root); err != nil {
		t.Errorf("the gateway's mount after the reload: %v", err)
	}
	conn, err := tls.Dial("tcp", d.TCPAddr, &tls.Config{RootCAs: ca1.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "renewed" {
		t.Errorf("the server presents %q after the reload, want the renewed certificate", cn)
	}
	conn.Close()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cc := rootClient(t, d.TCPAddr, client.WithTLS(old), client.WithToken(carolToken))
	if _, err := cc.Mount(ctx, "default", client.MountOptions{UID: 1001, GID: 1001}); err != nil {
		t.Errorf("carol's new token: %v", err)
	}
	if _, err := client.Dial(dctx, d.TCPAddr, client.WithTLS(old), client.WithToken(aliceToken)); errnoName(err) != "permission denied" {
		t.Errorf("alice's removed token: %v", errnoName(err))
	}

	// A tokens file that does not load: the previous tokens stay.
	writeTokens("short smbgw *\n")
	if err := syscall.Kill(d.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "access.tokens_file kept as it was", 1)
	cc2 := rootClient(t, d.TCPAddr, client.WithTLS(old), client.WithToken(carolToken))
	if _, err := cc2.Mount(ctx, "default", client.MountOptions{UID: 1001, GID: 1001}); err != nil {
		t.Errorf("carol after a failed reload: %v", err)
	}
	if _, err := gm.GetStat(ctx, root); err != nil {
		t.Errorf("the gateway after a failed reload: %v", err)
	}

	// A certificate file that does not load: the previous one stays.
	if err := os.WriteFile(certPath, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(d.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "TLS certificate kept as it was", 1)
	cc3 := rootClient(t, d.TCPAddr, client.WithTLS(old), client.WithToken(carolToken))
	if _, err := cc3.Mount(ctx, "default", client.MountOptions{UID: 1001, GID: 1001}); err != nil {
		t.Errorf("a new connection after a failed certificate reload: %v", err)
	}
}

// TestReloadCertUsers: SIGHUP reads access.cert_users from the
// configuration file again. A removed certificate user's connections are
// closed and its reconnect is refused; an unchanged one goes on; a new
// one works at once; a configuration file that does not load keeps them.
func TestReloadCertUsers(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir, "server-ca")
	certPath, keyPath := pki.Server("server")
	clients := testpki.New(t, dir, "clients")
	certUsers := func(users string) string {
		return "[access.cert_users]\n" + users
	}
	d := daemontest.Start(t, daemontest.Options{NoUnix: true, LogLevel: "info",
		ServerExtra: fmt.Sprintf("tls_cert = %q\ntls_key = %q\ntls_client_ca = %q", certPath, keyPath, clients.Path),
		Access:      certUsers("\"gw-host\" = \"*\"\n\"alice-host\" = \"1000:1000\"\n")})
	ctx := context.Background()
	withCert := func(cn string) client.Option {
		return client.WithTLS(&tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{clients.Client(cn)}})
	}
	gm, err := rootClient(t, d.TCPAddr, withCert("gw-host")).Mount(ctx, "default", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	am, err := rootClient(t, d.TCPAddr, withCert("alice-host"), client.WithCallTimeout(3*time.Second)).
		Mount(ctx, "default", client.MountOptions{UID: 1000, GID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	root, err := am.LookupPath(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}

	// alice-host goes, bob-host comes.
	d.Reconfigure(func(o *daemontest.Options) {
		o.Access = certUsers("\"gw-host\" = \"*\"\n\"bob-host\" = \"1002:1002\"\n")
	})
	if err := syscall.Kill(d.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "reloaded access.cert_users", 1)
	if !strings.Contains(d.Logs(), "its client certificate's access.cert_users entry was removed or changed") {
		t.Errorf("alice-host's connection was not closed")
	}
	if _, err := am.GetStat(ctx, root); errnoName(err) != "permission denied" {
		t.Errorf("alice-host's mount after its entry was removed: %v", errnoName(err))
	}
	if _, err := gm.GetStat(ctx, root); err != nil {
		t.Errorf("gw-host's mount after the reload: %v", err)
	}
	bm, err := rootClient(t, d.TCPAddr, withCert("bob-host")).Mount(ctx, "default", client.MountOptions{UID: 1002, GID: 1002})
	if err != nil {
		t.Fatalf("bob-host, added by the reload: %v", err)
	}

	// A configuration file that does not load: cert_users stay.
	if err := os.WriteFile(d.ConfigPath, []byte("[access\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(d.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "the configuration file does not load", 1)
	if _, err := bm.GetStat(ctx, root); err != nil {
		t.Errorf("bob-host after a failed reload: %v", err)
	}
	if _, err := rootClient(t, d.TCPAddr, withCert("bob-host")).Mount(ctx, "default", client.MountOptions{UID: 1002, GID: 1002}); err != nil {
		t.Errorf("a new bob-host connection after a failed reload: %v", err)
	}
}
