package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/internal/testpki"
)

func metricsConfig(t *testing.T, dir, listen, webConfig string) string {
	t.Helper()
	cfg := filepath.Join(dir, "m.toml")
	body := fmt.Sprintf("[server]\ntcp = \"127.0.0.1:0\"\nunix = \"\"\n[metrics]\nlisten = %q\nweb_config_file = %q\n"+
		"[[volume]]\nname = \"default\"\nengine = \"memory\"\npath = %q\n", listen, webConfig, filepath.Join(dir, "v"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// refused runs proxyfsd with cfg and returns its last line of output; it
// must exit 1.
func refused(t *testing.T, cfg string) string {
	t.Helper()
	cmd := exec.Command(daemontest.Binary(t), "-config", cfg)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("proxyfsd with %s: %v\n%s", cfg, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// TestMetricsBeyondLoopback: metrics.listen beyond loopback needs an
// exporter toolkit web config with TLS and basic auth (one line at
// startup otherwise); with it, /metrics answers only over TLS and only
// with the password.
func TestMetricsBeyondLoopback(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir, "ca")
	certPath, keyPath := pki.Server("metrics")
	pool := pki.Pool
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tlsPart := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", certPath, keyPath)
	usersPart := fmt.Sprintf("basic_auth_users:\n  prom: %s\n", hash)
	full := write("web.yml", tlsPart+usersPart)

	// Refusals, each one line.
	if l := refused(t, metricsConfig(t, dir, "0.0.0.0:0", "")); !strings.Contains(l, "metrics.listen 0.0.0.0:0 is not a loopback address: /metrics beyond loopback needs metrics.web_config_file") {
		t.Errorf("no web config: %q", l)
	}
	if l := refused(t, metricsConfig(t, dir, "0.0.0.0:0", write("auth-only.yml", usersPart))); !strings.Contains(l, "needs TLS") {
		t.Errorf("basic auth without TLS: %q", l)
	}
	if l := refused(t, metricsConfig(t, dir, "0.0.0.0:0", write("tls-only.yml", tlsPart))); !strings.Contains(l, "neither basic_auth_users nor client_auth_type") {
		t.Errorf("TLS without auth: %q", l)
	}
	if l := refused(t, metricsConfig(t, dir, "0.0.0.0:0", write("bad.yml", "tls_server_config:\n  cert_file: /nonexistent\n  key_file: /nonexistent\n"+usersPart))); !strings.Contains(l, "metrics.web_config_file") {
		t.Errorf("bad web config: %q", l)
	}

	// With TLS and basic auth.
	cmd := exec.Command(daemontest.Binary(t), "-config", metricsConfig(t, dir, "0.0.0.0:0", full))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	port := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, m, ok := strings.Cut(sc.Text(), " metrics="); ok && strings.HasPrefix(sc.Text(), "proxyfsd ready") {
			_, port, _ = net.SplitHostPort(m)
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if port == "" {
		t.Fatal("no ready line with the metrics address")
	}
	url := "https://127.0.0.1:" + port + "/metrics"
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(user, pass string) (int, string) {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("no password: %d", code)
	}
	if code, _ := get("prom", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	if code, body := get("prom", "s3cret"); code != http.StatusOK || !strings.Contains(body, "proxyfs_") {
		t.Errorf("with the password: %d %.200q", code, body)
	}
	// Plain HTTP gets no metrics.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://127.0.0.1:" + port + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "proxyfs_") {
			t.Errorf("plain HTTP served metrics: %d", resp.StatusCode)
		}
	}
}
