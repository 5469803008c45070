package etcdswift_test

// The engine with its data in an S3 bucket: Swift's own S3 API (the s3api
// middleware in the test proxy's pipeline), through the S3 client.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/backendtest"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

func openerS3(chunk int) backendtest.OpenFunc {
	return func(t *testing.T, dir string) vfsbackend.Backend {
		b, err := etcdswift.Open(vfsbackend.Options{Remote: servers.RemoteS3(dir, chunk), Format: vfsbackend.FormatIfNew})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestS3Conformance runs the suite on an S3 bucket, with 64 KiB chunks.
func TestS3Conformance(t *testing.T) {
	backendtest.Run(t, openerS3(64<<10), backendtest.Durable())
}

func openS3(t *testing.T, name string, chunk int, format vfsbackend.FormatPolicy) *etcdswift.Backend {
	t.Helper()
	b, err := etcdswift.Open(vfsbackend.Options{Remote: servers.RemoteS3(name, chunk), Format: format})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestS3FormatAndGarbage: formatting creates the bucket, a bucket holding
// objects but no volume is not formatted over, garbage is found and
// collected, and usage counts the bucket's bytes.
func TestS3FormatAndGarbage(t *testing.T) {
	b := openS3(t, t.Name(), 4096, vfsbackend.FormatIfNew)
	if !b.Formatted() || b.ChunkBytes() != 4096 {
		t.Fatalf("Formatted %v, chunk %d", b.Formatted(), b.ChunkBytes())
	}
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := b.WriteData(ctx, 3, data, 0); err != nil {
		t.Fatal(err)
	}
	// The same bucket under another etcd prefix: objects, no volume.
	r := servers.RemoteS3(t.Name(), 0)
	r.EtcdPrefix += "other/"
	if _, err := etcdswift.Open(vfsbackend.Options{Remote: r, Format: vfsbackend.FormatForce}); !errors.Is(err, syscall.EEXIST) || !strings.Contains(err.Error(), "S3 bucket") {
		t.Fatalf("format over a bucket holding objects: %v, want EEXIST naming the bucket", err)
	}
	if err := b.PutOrphanForTest(ctx, 3, 7); err != nil {
		t.Fatal(err)
	}
	if n, err := b.CollectGarbage(ctx, etcdswift.MinGarbageAge); err != nil || n != 0 {
		t.Fatalf("CollectGarbage(MinGarbageAge) of a new object = %d, %v; want 0", n, err)
	}
	// S3 listings give modification times in whole seconds, and Swift's
	// s3api rounds them up: an object made now may be listed as made
	// up to a second from now.
	time.Sleep(1100 * time.Millisecond)
	if n, err := b.CollectGarbage(ctx, 0); err != nil || n != 1 {
		t.Fatalf("CollectGarbage = %d, %v; want 1", n, err)
	}
	var left []string
	if err := b.Garbage(ctx, 0, func(n string) bool { left = append(left, n); return true }); err != nil || len(left) != 0 {
		t.Fatalf("Garbage after collecting: %v, %v", left, err)
	}
	p := make([]byte, len(data)+1)
	if n, err := b.ReadData(ctx, 3, p, 0); err != nil || !bytes.Equal(p[:n], data) {
		t.Fatalf("ReadData after collecting = %d, %v", n, err)
	}
	u, err := b.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if used := u.TotalBytes - u.FreeBytes; used != uint64(len(data)) {
		t.Errorf("Usage: %d bytes used, want %d (the bucket's chunks)", used, len(data))
	}
	// A read past a chunk object's end (a hole at the file's end).
	if err := b.TruncateData(ctx, 3, 50000); err != nil {
		t.Fatal(err)
	}
	q := make([]byte, 100)
	if n, err := b.ReadData(ctx, 3, q, 20000); err != nil || n != 100 || !bytes.Equal(q, make([]byte, 100)) {
		t.Fatalf("read in the hole = %d, %v, %q", n, err, q[:10])
	}
}

// TestS3BadCredentials: a wrong secret key fails Open, naming S3.
func TestS3BadCredentials(t *testing.T) {
	r := servers.RemoteS3(t.Name(), 0)
	r.S3SecretKey = "wrong"
	_, err := etcdswift.Open(vfsbackend.Options{Remote: r, Format: vfsbackend.FormatIfNew})
	if err == nil || !strings.Contains(err.Error(), "S3") {
		t.Fatalf("Open with a wrong S3 secret: %v, want an error naming S3", err)
	}
}

// TestDaemonS3: a gateway writes to a volume on S3, another reads it, the
// first is killed with SIGKILL and nothing it acknowledged is lost;
// proxyfsd -check finds the volume clean and -collect-garbage works.
func TestDaemonS3(t *testing.T) {
	r := servers.RemoteS3(t.Name(), 256<<10)
	a := startGateway(t, r)
	b := startGateway(t, r)
	ma, mb := mountRoot(t, a), mountRoot(t, b)
	if _, err := ma.MkdirPath(ctx, "dir", 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for i := range 8 {
		p := fmt.Sprintf("dir/f%02d", i)
		files[p] = randBytes(1000*i+1, uint64(i))
		writeFile(t, ma, p, files[p])
	}
	big := randBytes(2<<20+4321, 42) // several chunks
	files["big"] = big
	writeFile(t, ma, "big", big)
	st, err := ma.GetStatPath(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	patch := randBytes(3000, 8) // across a chunk boundary
	if _, err := ma.Write(ctx, st.Ino, patch, 256<<10-1000); err != nil {
		t.Fatal(err)
	}
	copy(big[256<<10-1000:], patch)
	for p, want := range files {
		wantFile(t, mb, p, want)
	}

	a.Kill()
	for p, want := range files {
		wantFile(t, mb, p, want)
	}
	a.Restart()
	ma = mountRoot(t, a)
	for p, want := range files {
		wantFile(t, ma, p, want)
	}
	b.Stop()
	a.Stop()
	a.Check(t)
	if code, out := a.Run(t, time.Minute, "-collect-garbage"); code != 0 || !strings.Contains(out, "deleted 0 unreferenced object(s) older than 1h0m0s") {
		t.Errorf("proxyfsd -collect-garbage: exit %d\n%s", code, out)
	}
}
