package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/internal/testpki"
	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// The tests of who may connect and act as whom run a client as an
// unprivileged user: the test binary runs itself as nobody (65534, which
// every Debian system has, in the user database too, for loopback TCP)
// with helperEnv set, and the helper prints one "step=ERRNO" line per
// step.
const (
	helperEnv = "PROXYFS_AUTH_HELPER"
	nobody    = 65534
	bob       = 1001
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(authHelper(os.Getenv(helperEnv), os.Getenv("PROXYFS_AUTH_ADDR")))
	}
	os.Exit(m.Run())
}

// errnoName is the errno of a client error as a name ("ok" for nil).
func errnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Errno.Error()
	}
	return "other: " + err.Error()
}

// authHelper runs a scenario as whoever it runs as and prints its steps'
// results.
func authHelper(scenario, addr string) int {
	if scenario == "saved-root" {
		// As smbd acting for a user: effective uid nobody, real and
		// saved uid 0.
		if err := syscall.Setresuid(0, nobody, 0); err != nil {
			fmt.Printf("setresuid=%v\n", err)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.WithCallTimeout(5*time.Second))
	if err != nil {
		fmt.Printf("dial=%s\n", errnoName(err))
		return 0
	}
	defer c.Close()
	step := func(name string, err error) { fmt.Printf("%s=%s\n", name, errnoName(err)) }
	mount := func(uid, gid uint32, groups ...uint32) (*client.Mount, error) {
		return c.Mount(ctx, "default", client.MountOptions{UID: uid, GID: gid, Groups: groups})
	}
	switch scenario {
	case "saved-root":
		_, err := mount(0, 0)
		step("mount_root", err)
	case "refused":
		_, err := mount(nobody, nobody)
		step("mount_self", err)
	case "ordinary":
		_, err := mount(0, 0)
		step("mount_root", err)
		_, err = mount(bob, bob)
		step("mount_bob", err)
		_, err = mount(nobody, 0)
		step("mount_gid0", err)
		_, err = mount(nobody, nobody, 0)
		step("mount_group0", err)
		m, err := mount(nobody, nobody)
		step("mount_self", err)
		if err != nil {
			return 0
		}
		_, err = m.GetStatPath(ctx, "/")
		step("stat_self", err)
		asBob := m.As(client.Identity{UID: bob, GID: bob})
		_, err = asBob.GetStatPath(ctx, "/")
		step("as_bob_json", err)
		_, err = asBob.GetStat(ctx, m.RootInode())
		step("as_bob_binary", err)
		_, err = m.As(client.Identity{UID: 0, GID: 0}).GetStat(ctx, m.RootInode())
		step("as_root_binary", err)
		self := m.As(client.Identity{UID: nobody, GID: nobody})
		_, err = self.GetStatPath(ctx, "/")
		step("as_self_json", err)
		_, err = self.GetStat(ctx, m.RootInode())
		step("as_self_binary", err)
		ino, err := m.LookupPath(ctx, "/bob0600")
		step("lookup_bob_file", err)
		buf := make([]byte, 8)
		_, err = m.Read(ctx, ino, buf, 0)
		step("read_bob_file", err)
	default:
		fmt.Printf("unknown scenario %q\n", scenario)
		return 2
	}
	return 0
}

// runHelper runs scenario as nobody against addr and returns its steps.
func runHelper(t *testing.T, scenario, addr string) map[string]string {
	return runHelperAs(t, scenario, addr, &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{nobody}})
}

// runHelperAs runs scenario with cred (nil: as the test, root).
func runHelperAs(t *testing.T, scenario, addr string, cred *syscall.Credential) map[string]string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pfsauth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, cerr := io.Copy(dst, src)
	src.Close()
	if err := errors.Join(cerr, dst.Close()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = []string{helperEnv + "=" + scenario, "PROXYFS_AUTH_ADDR=" + addr, "PATH=/usr/bin:/bin"}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", scenario, err, out)
	}
	steps := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("helper %s: stray output %q\n%s", scenario, line, out)
		}
		steps[k] = v
	}
	return steps
}

func wantSteps(t *testing.T, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s: %q, want %q", k, got[k], want[k])
		}
	}
	if len(got) != len(want) {
		t.Errorf("steps %v, want %v", got, want)
	}
}

// requireRoot skips tests that need to switch users.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a client as another user")
	}
}

// rootClient dials addr as the test (root: a gateway by default).
func rootClient(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestAuthOrdinaryUser: an unprivileged process, identified by the
// kernel (SO_PEERCRED on the Unix socket, the socket table on loopback
// TCP), may mount and act only as itself; permissions then apply.
func TestAuthOrdinaryUser(t *testing.T) {
	requireRoot(t)
	d := daemontest.Start(t, daemontest.Options{})
	if err := os.Chmod(filepath.Dir(d.UnixPath), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := rootClient(t, d.UnixPath)
	root, err := c.Mount(ctx, "default", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := root.CreatePath(ctx, "/bob0600", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Chown(ctx, st.Ino, bob, bob); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"mount_root": "operation not permitted", "mount_bob": "operation not permitted",
		"mount_gid0": "operation not permitted", "mount_group0": "operation not permitted",
		"mount_self": "ok", "stat_self": "ok",
		"as_bob_json": "operation not permitted", "as_bob_binary": "operation not permitted",
		"as_root_binary": "operation not permitted",
		"as_self_json":   "ok", "as_self_binary": "ok",
		"lookup_bob_file": "ok", "read_bob_file": "permission denied",
	}
	for _, addr := range []string{d.UnixPath, d.TCPAddr} {
		t.Run(addr, func(t *testing.T) {
			wantSteps(t, runHelper(t, "ordinary", addr), want)
		})
	}
	// Each refusal is one log line naming the peer and the identity.
	if !strings.Contains(d.Logs(), `"peer": "uid 65534 (unix)"`) || !strings.Contains(d.Logs(), "may act only as itself, not as uid 0") {
		t.Errorf("no refusal logged:\n%s", d.Logs())
	}
}

// TestAuthSavedRoot: a process that can become root again (real and
// saved uid 0, as smbd while it acts for a user) is root on the Unix
// socket; on loopback TCP only the socket's owner is known (its fsuid).
func TestAuthSavedRoot(t *testing.T) {
	requireRoot(t)
	d := daemontest.Start(t, daemontest.Options{})
	if err := os.Chmod(filepath.Dir(d.UnixPath), 0o755); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, runHelperAs(t, "saved-root", d.UnixPath, nil), map[string]string{"mount_root": "ok"})
	wantSteps(t, runHelperAs(t, "saved-root", d.TCPAddr, nil), map[string]string{"mount_root": "operation not permitted"})
}

// TestAuthUsersList: access.users limits who may connect; a volume's
// users limit who may mount it.
func TestAuthUsersList(t *testing.T) {
	requireRoot(t)
	d := daemontest.Start(t, daemontest.Options{Access: `users = ["root"]`,
		Volumes: []daemontest.Volume{{Name: "default"}, {Name: "private", Extra: `users = ["1001"]`}}})
	if err := os.Chmod(filepath.Dir(d.UnixPath), 0o755); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, runHelper(t, "refused", d.UnixPath), map[string]string{"mount_self": "permission denied"})
	// root is a gateway, but not in private's users.
	c := rootClient(t, d.UnixPath)
	_, err := c.Mount(context.Background(), "private", client.MountOptions{})
	if errnoName(err) != "permission denied" {
		t.Errorf("root mounting private: %v", err)
	}
	if _, err := c.Mount(context.Background(), "default", client.MountOptions{}); err != nil {
		t.Errorf("root mounting default: %v", err)
	}
}

// TestPerCallIdentity: a gateway (root) acts for alice and bob over one
// mount; each call is checked as its own identity, on both channels.
func TestPerCallIdentity(t *testing.T) {
	const alice = 1000
	transports(t, daemontest.Options{}, func(t *testing.T, d *daemontest.Daemon, network, addr string) {
		ctx := context.Background()
		if network == "unix" {
			addr = "unix:" + addr
		}
		c := rootClient(t, addr)
		m, err := c.Mount(ctx, "default", client.MountOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.ChmodPath(ctx, "/", 0o777); err != nil {
			t.Fatal(err)
		}
		asAlice := m.As(client.Identity{UID: alice, GID: alice})
		asBob := m.As(client.Identity{UID: bob, GID: bob, Groups: []uint32{100}})
		st, err := asAlice.CreatePath(ctx, "/alice0600", 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if st.UID != alice || st.GID != alice {
			t.Errorf("alice's file owned by %d:%d", st.UID, st.GID)
		}
		if _, err := asAlice.Write(ctx, st.Ino, []byte("secret"), 0); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := asBob.Read(ctx, st.Ino, buf, 0); errnoName(err) != "permission denied" {
			t.Errorf("bob reads alice's 0600 file (binary): %v", err)
		}
		if _, err := asBob.GetXattr(ctx, st.Ino, "user.x"); errnoName(err) != "permission denied" {
			t.Errorf("bob reads alice's xattr (JSON): %v", err)
		}
		if err := asBob.ChmodPath(ctx, "/alice0600", 0o666); errnoName(err) != "operation not permitted" {
			t.Errorf("bob chmods alice's file (JSON): %v", err)
		}
		if _, err := asBob.Create(ctx, m.RootInode(), "bobs", 0o644); err != nil {
			t.Errorf("bob creates (binary): %v", err)
		} else if bst, err := m.GetStatPath(ctx, "/bobs"); err != nil || bst.UID != bob {
			t.Errorf("bob's file: %+v %v", bst, err)
		}
		if n, err := asAlice.Read(ctx, st.Ino, buf, 0); err != nil || string(buf[:n]) != "secret" {
			t.Errorf("alice reads her file: %q %v", buf[:n], err)
		}
		// The mount itself is still root: no identity, the mount's.
		if n, err := m.Read(ctx, st.Ino, buf, 0); err != nil || n != 6 {
			t.Errorf("root reads alice's file: %d %v", n, err)
		}
	})
}

// TestSocketPerms: server.unix_mode, unix_owner and unix_group.
func TestSocketPerms(t *testing.T) {
	requireRoot(t)
	d := daemontest.Start(t, daemontest.Options{ServerExtra: "unix_mode = \"0660\"\nunix_owner = \"1001\"\nunix_group = \"65534\""})
	fi, err := os.Stat(d.UnixPath)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o660 || st.Uid != 1001 || st.Gid != 65534 {
		t.Errorf("socket mode %v owner %d:%d, want 0660 1001:65534", fi.Mode().Perm(), st.Uid, st.Gid)
	}
	d2 := daemontest.Start(t, daemontest.Options{NoTCP: true})
	if fi, err := os.Stat(d2.UnixPath); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("default socket mode: %v %v, want 0666", fi.Mode().Perm(), err)
	}
}

// TestPlainTCPBeyondLoopbackRefused: proxyfsd will not start on a
// non-loopback address without TLS, and says why in one line.
func TestPlainTCPBeyondLoopbackRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.toml")
	body := fmt.Sprintf("[server]\ntcp = \"0.0.0.0:0\"\nunix = \"\"\n[metrics]\nlisten = \"\"\n[[volume]]\nname = \"default\"\nengine = \"memory\"\npath = %q\n", dir)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemontest.Binary(t), "-config", cfg)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("proxyfsd started on 0.0.0.0 without TLS:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "server.tcp 0.0.0.0:0 is not a loopback address: plain TCP beyond loopback is refused") {
		t.Errorf("refusal: %q", out)
	}
}

// TestTLSTokens: with TLS on, every TCP connection authenticates with a
// token; the token says whom it may act as; a wrong token is refused.
func TestTLSTokens(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir, "ca")
	certPath, keyPath := pki.Server("server")
	pool := pki.Pool
	tokens := filepath.Join(dir, "tokens")
	const (
		gwToken    = "gw-0123456789abcdef"
		aliceToken = "alice-0123456789abcdef"
	)
	if err := os.WriteFile(tokens, []byte("# token name acts-as\n"+gwToken+" smbgw *\n"+aliceToken+" alice 1000:1000:100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, daemontest.Options{NoUnix: true,
		ServerExtra: fmt.Sprintf("tls_cert = %q\ntls_key = %q", certPath, keyPath),
		Access:      fmt.Sprintf("tokens_file = %q", tokens)})
	ctx := context.Background()
	tcfg := &tls.Config{RootCAs: pool}

	// The gateway token acts as anyone.
	gw := rootClient(t, d.TCPAddr, client.WithTLS(tcfg), client.WithToken(gwToken))
	m, err := gw.Mount(ctx, "default", client.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ChmodPath(ctx, "/", 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := m.As(client.Identity{UID: 1000, GID: 1000}).CreatePath(ctx, "/a", 0o600); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	ino, err := m.LookupPath(ctx, "/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.As(client.Identity{UID: bob, GID: bob}).Read(ctx, ino, buf, 0); errnoName(err) != "permission denied" {
		t.Errorf("bob through the gateway token: %v", err)
	}

	// alice's token acts as alice only.
	ac := rootClient(t, d.TCPAddr, client.WithTLS(tcfg), client.WithToken(aliceToken))
	if _, err := ac.Mount(ctx, "default", client.MountOptions{}); errnoName(err) != "operation not permitted" {
		t.Errorf("alice's token mounting as root: %v", err)
	}
	am, err := ac.Mount(ctx, "default", client.MountOptions{UID: 1000, GID: 1000, Groups: []uint32{100}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := am.Read(ctx, ino, buf, 0); err != nil {
		t.Errorf("alice reads her file: %v", err)
	}
	if _, err := am.As(client.Identity{UID: bob, GID: bob}).Read(ctx, ino, buf, 0); errnoName(err) != "operation not permitted" {
		t.Errorf("alice's token acting as bob: %v", err)
	}

	// A wrong token, no token, no TLS.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := client.Dial(dctx, d.TCPAddr, client.WithTLS(tcfg), client.WithToken("wrong-0123456789abcdef")); errnoName(err) != "permission denied" {
		t.Errorf("wrong token: %v", err)
	}
	nt := rootClient(t, d.TCPAddr, client.WithTLS(tcfg), client.WithCallTimeout(3*time.Second))
	if _, err := nt.Mount(ctx, "default", client.MountOptions{UID: 1000, GID: 1000}); errnoName(err) != "permission denied" {
		t.Errorf("no token: %v", err)
	}
	if _, err := client.Dial(dctx, d.TCPAddr, client.WithCallTimeout(2*time.Second)); err == nil {
		t.Errorf("plain TCP to a TLS listener worked")
	}
	if !strings.Contains(d.Logs(), "unknown token") {
		t.Errorf("wrong token not logged")
	}
}
