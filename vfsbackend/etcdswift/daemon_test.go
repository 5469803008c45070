package etcdswift_test

// End to end: proxyfsd serving volumes on the etcdswift engine, through
// the Go client.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/internal/daemontest"
	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/vfsbackend"
)

// volumeTOML is the etcdswift part of a volume's configuration.
func volumeTOML(r vfsbackend.RemoteOptions) string {
	eps := make([]string, len(r.EtcdEndpoints))
	for i, e := range r.EtcdEndpoints {
		eps[i] = fmt.Sprintf("%q", e)
	}
	s := fmt.Sprintf("etcd_endpoints = [%s]\netcd_prefix = %q\nchunk_bytes = %d\n", strings.Join(eps, ", "), r.EtcdPrefix, r.ChunkBytes)
	// Optional keys, written when set.
	for _, kv := range []struct{ k, v string }{
		{"etcd_tls_ca", r.EtcdTLSCA}, {"etcd_tls_cert", r.EtcdTLSCert}, {"etcd_tls_key", r.EtcdTLSKey},
		{"etcd_user", r.EtcdUser}, {"etcd_password", r.EtcdPassword}, {"object_store", r.ObjectStore},
		{"swift_auth_url", r.SwiftAuthURL}, {"swift_user", r.SwiftUser}, {"swift_key", r.SwiftKey},
		{"swift_container", r.SwiftContainer}, {"swift_tls_ca", r.SwiftTLSCA},
		{"s3_endpoint", r.S3Endpoint}, {"s3_region", r.S3Region}, {"s3_access_key", r.S3AccessKey},
		{"s3_secret_key", r.S3SecretKey}, {"s3_bucket", r.S3Bucket}, {"s3_tls_ca", r.S3TLSCA},
	} {
		if kv.v != "" {
			s += fmt.Sprintf("%s = %q\n", kv.k, kv.v)
		}
	}
	return s
}

func startGateway(t *testing.T, r vfsbackend.RemoteOptions) *daemontest.Daemon {
	t.Helper()
	return daemontest.Start(t, daemontest.Options{
		LogLevel: "info",
		Volumes:  []daemontest.Volume{{Name: "default", Engine: "etcdswift", Extra: volumeTOML(r)}},
	})
}

func mountRoot(t *testing.T, d *daemontest.Daemon) *client.Mount {
	t.Helper()
	c, err := client.Dial(ctx, d.TCPAddr)
	if err != nil {
		t.Fatalf("Dial %s: %v", d.TCPAddr, err)
	}
	t.Cleanup(func() { c.Close() })
	m, err := c.Mount(ctx, "default", client.MountOptions{User: "root"})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	return m
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func writeFile(t *testing.T, m *client.Mount, path string, data []byte) client.Stat {
	t.Helper()
	st, err := m.CreatePath(ctx, path, 0o644)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	if n, err := m.Write(ctx, st.Ino, data, 0); err != nil || n != len(data) {
		t.Fatalf("write %s: %d, %v", path, n, err)
	}
	return st
}

func wantFile(t *testing.T, m *client.Mount, path string, want []byte) {
	t.Helper()
	st, err := m.GetStatPath(ctx, path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if st.Size != uint64(len(want)) {
		t.Fatalf("%s: size %d, want %d", path, st.Size, len(want))
	}
	got := make([]byte, len(want)+10)
	n, err := m.Read(ctx, st.Ino, got, 0)
	if err != nil || !bytes.Equal(got[:n], want) {
		t.Fatalf("read %s: %d bytes (want %d), %v, equal %v", path, n, len(want), err, bytes.Equal(got[:n], want))
	}
}

func names(t *testing.T, m *client.Mount, path string) []string {
	t.Helper()
	dir, err := m.LookupPath(ctx, path)
	if err != nil {
		t.Fatalf("lookup %s: %v", path, err)
	}
	ents, err := m.ReadDirAll(ctx, dir)
	if err != nil {
		t.Fatalf("readdir %s: %v", path, err)
	}
	var out []string
	for _, e := range ents {
		if e.Name != "." && e.Name != ".." {
			out = append(out, e.Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestDaemonKill9: files written through a gateway survive its SIGKILL
// (write-through: every acknowledged call is in etcd and Swift), and
// proxyfsd -check finds the volume clean.
func TestDaemonKill9(t *testing.T) {
	r := servers.Remote(t.Name(), 256<<10)
	d := startGateway(t, r)
	m := mountRoot(t, d)
	if _, err := m.MkdirPath(ctx, "dir", 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for i := range 10 {
		p := fmt.Sprintf("dir/f%02d", i)
		files[p] = randBytes(100*i+1, uint64(i))
		writeFile(t, m, p, files[p])
	}
	big := randBytes(3<<20+12345, 99) // several chunks and several writes
	files["big"] = big
	writeFile(t, m, "big", big)
	if err := m.RenamePath(ctx, "dir/f00", "dir/renamed"); err != nil {
		t.Fatal(err)
	}
	files["dir/renamed"] = files["dir/f00"]
	delete(files, "dir/f00")
	if err := m.UnlinkPath(ctx, "dir/f01"); err != nil {
		t.Fatal(err)
	}
	delete(files, "dir/f01")
	// Overwrite in the middle of big, across a chunk boundary.
	st, err := m.GetStatPath(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	patch := randBytes(1000, 7)
	if _, err := m.Write(ctx, st.Ino, patch, 256<<10-500); err != nil {
		t.Fatal(err)
	}
	copy(big[256<<10-500:], patch)

	d.Kill()
	d.Restart()
	m = mountRoot(t, d)
	for p, want := range files {
		wantFile(t, m, p, want)
	}
	if got, want := names(t, m, "dir"), []string{"f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09", "renamed"}; !slices.Equal(got, want) {
		t.Errorf("dir after kill -9: %v, want %v", got, want)
	}
	d.Check(t)

	// The garbage command: nothing is an hour old here; a shorter age
	// than the least safe one is refused.
	d.Stop()
	if code, out := d.Run(t, time.Minute, "-collect-garbage"); code != 0 || !strings.Contains(out, "deleted 0 unreferenced object(s) older than 1h0m0s") {
		t.Errorf("proxyfsd -collect-garbage: exit %d\n%s", code, out)
	}
	if code, out := d.Run(t, time.Minute, "-collect-garbage", "-garbage-age", "1m"); code != 1 || !strings.Contains(out, "write in progress") {
		t.Errorf("proxyfsd -collect-garbage -garbage-age 1m: exit %d\n%s", code, out)
	}
}

// TestDaemonTwoGateways: two proxyfsd processes serve one volume (same etcd
// prefix, same container). What phase 1 guarantees, and this test checks:
// a change acknowledged by one gateway is seen by the next call on the
// other (no metadata or data is cached across calls: every call reads
// etcd, and chunk versions are immutable), inode numbers are unique across
// the gateways (etcd counter), and calls made one at a time through either
// gateway keep the volume consistent. Concurrent changes, open files and
// locks across gateways have tests of their own (concurrent_test.go,
// handles_test.go, locks_test.go).
func TestDaemonTwoGateways(t *testing.T) {
	r := servers.Remote(t.Name(), 256<<10)
	a := startGateway(t, r)
	b := startGateway(t, r)
	ma, mb := mountRoot(t, a), mountRoot(t, b)

	fa := randBytes(300<<10, 1)
	sa := writeFile(t, ma, "from-a", fa)
	wantFile(t, mb, "from-a", fa)

	fb := randBytes(5000, 2)
	sb := writeFile(t, mb, "from-b", fb)
	wantFile(t, ma, "from-b", fb)
	if sa.Ino == sb.Ino {
		t.Fatalf("both gateways gave out inode %d", sa.Ino)
	}

	// A directory made by one, filled by both.
	if _, err := ma.MkdirPath(ctx, "shared", 0o777); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]string{sa.Ino: "from-a", sb.Ino: "from-b"}
	for i := range 6 {
		m := []*client.Mount{ma, mb}[i%2]
		p := fmt.Sprintf("shared/%d", i)
		st := writeFile(t, m, p, []byte(p))
		if prev, dup := seen[st.Ino]; dup {
			t.Fatalf("inode %d given to %s and %s", st.Ino, prev, p)
		}
		seen[st.Ino] = p
	}
	want := []string{"0", "1", "2", "3", "4", "5"}
	for _, m := range []*client.Mount{ma, mb} {
		if got := names(t, m, "shared"); !slices.Equal(got, want) {
			t.Errorf("shared: %v, want %v", got, want)
		}
	}

	// A write through b to a's file, seen by a's next read; a rename
	// through a, seen by b.
	patch := []byte("written through gateway b")
	if _, err := mb.Write(ctx, sa.Ino, patch, 1000); err != nil {
		t.Fatal(err)
	}
	copy(fa[1000:], patch)
	wantFile(t, ma, "from-a", fa)
	if err := ma.RenamePath(ctx, "from-b", "shared/moved"); err != nil {
		t.Fatal(err)
	}
	wantFile(t, mb, "shared/moved", fb)
	if _, err := mb.GetStatPath(ctx, "from-b"); err == nil {
		t.Error("b still finds from-b after a renamed it")
	}

	// Killing one gateway loses nothing the other acknowledged or it did.
	a.Kill()
	wantFile(t, mb, "from-a", fa)
	wantFile(t, mb, "shared/3", []byte("shared/3"))
}
