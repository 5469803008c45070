package etcdswift_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/backendtest"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift/etcdswifttest"
)

var servers *etcdswifttest.Servers

func TestMain(m *testing.M) {
	if miss := etcdswifttest.Missing(); len(miss) > 0 {
		if etcdswifttest.Required() {
			fmt.Fprintf(os.Stderr, "FAIL: %s=1 but %v are not installed (apt-get install etcd-server swift swift-proxy swift-account swift-container swift-object memcached)\n", etcdswifttest.RequireEnv, miss)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "\n*** SKIPPING the etcdswift tests: %v not installed (set %s=1 to make this a failure) ***\n\n", miss, etcdswifttest.RequireEnv)
		os.Exit(0)
	}
	s, err := etcdswifttest.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting etcd and Swift: %v\n", err)
		os.Exit(1)
	}
	servers = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the servers: %v\n", err)
	}
	os.Exit(code)
}

func opener(chunk int) backendtest.OpenFunc {
	return func(t *testing.T, dir string) vfsbackend.Backend {
		b, err := etcdswift.Open(vfsbackend.Options{Remote: servers.Remote(dir, chunk), Format: vfsbackend.FormatIfNew})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestConformance runs the suite with 64 KiB chunks, so that its data
// tests cross chunk boundaries.
func TestConformance(t *testing.T) {
	backendtest.Run(t, opener(64<<10), backendtest.Durable())
}

// TestConformanceDefaultChunks runs the suite again with the default chunk
// size (1 MiB); about a minute, so only with PROXYFS_SCALEOUT_FULL=1.
func TestConformanceDefaultChunks(t *testing.T) {
	if os.Getenv("PROXYFS_SCALEOUT_FULL") != "1" {
		t.Skip("set PROXYFS_SCALEOUT_FULL=1 to run the suite with 1 MiB chunks too")
	}
	backendtest.Run(t, opener(0), backendtest.Durable())
}

var ctx = context.Background()

func open(t *testing.T, name string, chunk int, format vfsbackend.FormatPolicy) *etcdswift.Backend {
	t.Helper()
	b, err := etcdswift.Open(vfsbackend.Options{Remote: servers.Remote(name, chunk), Format: format})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestFormatPolicy(t *testing.T) {
	name := t.Name()
	_, err := etcdswift.Open(vfsbackend.Options{Remote: servers.Remote(name, 0)})
	if !errors.Is(err, vfsbackend.ErrNoVolume) {
		t.Fatalf("FormatNever on an empty prefix: %v, want ErrNoVolume", err)
	}
	b := open(t, name, 4096, vfsbackend.FormatIfNew)
	if !b.Formatted() || b.ChunkBytes() != 4096 {
		t.Fatalf("Formatted %v, chunk %d", b.Formatted(), b.ChunkBytes())
	}
	// Reopening keeps the formatted chunk size whatever is asked.
	b2 := open(t, name, 0, vfsbackend.FormatNever)
	if b2.Formatted() || b2.ChunkBytes() != 4096 {
		t.Fatalf("reopen: Formatted %v, chunk %d", b2.Formatted(), b2.ChunkBytes())
	}
	// A prefix holding keys that are not a volume is never formatted over.
	r := servers.Remote(name+"/other", 0)
	r.EtcdPrefix = "test/" // holds every test volume's keys, and no marker of its own
	if _, err := etcdswift.Open(vfsbackend.Options{Remote: r, Format: vfsbackend.FormatForce}); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("format over foreign keys: %v, want EEXIST", err)
	}
	// Read-only: every change fails with EROFS.
	ro, err := etcdswift.Open(vfsbackend.Options{Remote: servers.Remote(name, 0), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: []byte("k")}}}); !errors.Is(err, syscall.EROFS) {
		t.Errorf("read-only Commit: %v", err)
	}
	if err := ro.WriteData(ctx, 1, []byte("x"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("read-only WriteData: %v", err)
	}
	if err := ro.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}
}

// TestTwoGateways opens one volume twice, as two gateways do: a change
// through either is seen by the next call on the other, concurrent
// writes to one object through both keep every acknowledged byte, and the
// inode counter hands out disjoint ranges.
func TestTwoGateways(t *testing.T) {
	a := open(t, t.Name(), 4096, vfsbackend.FormatIfNew)
	b := open(t, t.Name(), 0, vfsbackend.FormatNever)
	if err := a.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: []byte("k"), Value: []byte("from a")}}}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, []byte("k")); err != nil || string(v) != "from a" {
		t.Fatalf("b.Get = %q, %v", v, err)
	}
	if err := a.WriteData(ctx, 7, []byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	if n, err := b.ReadData(ctx, 7, p, 0); err != nil || string(p[:n]) != "hello" {
		t.Fatalf("b.ReadData = %q, %v", p[:n], err)
	}
	// Both write disjoint 100-byte records of the same chunks at once.
	const rounds = 40
	errs := make(chan error, 2)
	for g, be := range []*etcdswift.Backend{a, b} {
		go func() {
			for i := range rounds {
				rec := bytes.Repeat([]byte{byte('a' + g)}, 100)
				if err := be.WriteData(ctx, 8, rec, int64(i*2+g)*100); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, rounds*2*100+10)
	n, err := a.ReadData(ctx, 8, got, 0)
	if err != nil || n != rounds*2*100 {
		t.Fatalf("ReadData = %d, %v", n, err)
	}
	for i := range rounds * 2 {
		if want := strings.Repeat(string(rune('a'+i%2)), 100); string(got[i*100:i*100+100]) != want {
			t.Fatalf("record %d = %q, want %q (a write was lost)", i, got[i*100:i*100+100], want)
		}
	}
	// Inode numbers: disjoint ranges from both.
	seen := map[vfsbackend.Ino]bool{}
	for i := range 20 {
		be := []*etcdswift.Backend{a, b}[i%2]
		first, err := be.AllocInos(ctx, 3, 100)
		if err != nil {
			t.Fatal(err)
		}
		if first < 100 {
			t.Fatalf("AllocInos below min: %d", first)
		}
		for j := range vfsbackend.Ino(3) {
			if seen[first+j] {
				t.Fatalf("inode %d handed out twice", first+j)
			}
			seen[first+j] = true
		}
	}
}

// TestLimits: a batch over etcd's transaction limit fails whole, with
// E2BIG, and changes nothing.
func TestLimits(t *testing.T) {
	b := open(t, t.Name(), 0, vfsbackend.FormatIfNew)
	var batch vfsbackend.Batch
	for i := range 20000 { // the servers run with --max-txn-ops 16384
		batch.Put(fmt.Appendf(nil, "k%05d", i), []byte("v"))
	}
	if err := b.Commit(ctx, &batch); !errors.Is(err, syscall.E2BIG) {
		t.Fatalf("Commit of 20000 operations: %v, want E2BIG", err)
	}
	if _, err := b.Get(ctx, []byte("k00000")); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("a refused batch left k00000: %v", err)
	}
	// Duplicate keys in one batch are fine (the last wins).
	batch = vfsbackend.Batch{}
	batch.Put([]byte("d"), []byte("1"))
	batch.Delete([]byte("d"))
	batch.Put([]byte("d"), []byte("3"))
	if err := b.Commit(ctx, &batch); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, []byte("d")); err != nil || string(v) != "3" {
		t.Fatalf("Get(d) = %q, %v", v, err)
	}
}

// TestGarbage: versions left by an interrupted change are found and
// collected; referenced chunks are not.
func TestGarbage(t *testing.T) {
	b := open(t, t.Name(), 4096, vfsbackend.FormatIfNew)
	if err := b.WriteData(ctx, 3, bytes.Repeat([]byte("x"), 10000), 0); err != nil {
		t.Fatal(err)
	}
	var g []string
	if err := b.Garbage(ctx, 0, func(n string) bool { g = append(g, n); return true }); err != nil || len(g) != 0 {
		t.Fatalf("Garbage of a clean volume: %v, %v", g, err)
	}
	// An object as a crash between Swift and etcd leaves it.
	if err := b.PutOrphanForTest(ctx, 3, 1); err != nil {
		t.Fatal(err)
	}
	// Not yet: it could be a change in progress.
	if n, err := b.CollectGarbage(ctx, etcdswift.MinGarbageAge); err != nil || n != 0 {
		t.Fatalf("CollectGarbage(MinGarbageAge) of a new object = %d, %v; want 0", n, err)
	}
	n, err := b.CollectGarbage(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("CollectGarbage = %d, %v; want 1", n, err)
	}
	p := make([]byte, 10001)
	if n, err := b.ReadData(ctx, 3, p, 0); err != nil || n != 10000 || !bytes.Equal(p[:n], bytes.Repeat([]byte("x"), 10000)) {
		t.Fatalf("ReadData after collecting = %d, %v", n, err)
	}
}

// TestOpenLeavesOthersWrites: a gateway opening the volume does not cut
// data beyond a file's size, which on a shared volume may be another
// gateway's write in progress (package inode writes data, then the size).
func TestOpenLeavesOthersWrites(t *testing.T) {
	a := open(t, t.Name(), 4096, vfsbackend.FormatIfNew)
	fsA, err := inode.Open(ctx, a, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsA.Create(ctx, inode.Caller{}, inode.RootIno, "f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// Gateway a's write in progress: the data is there, the size not yet.
	if err := a.WriteData(ctx, vfsbackend.Ino(f.Ino), []byte("in flight"), 0); err != nil {
		t.Fatal(err)
	}
	b := open(t, t.Name(), 0, vfsbackend.FormatNever)
	if _, err := inode.Open(ctx, b, inode.Options{}); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 20)
	if n, err := a.ReadData(ctx, vfsbackend.Ino(f.Ino), p, 0); err != nil || string(p[:n]) != "in flight" {
		t.Fatalf("after another gateway's open the data is %q, %v", p[:n], err)
	}
	// And a file that grows exposes zeros, not the leftover, if the write
	// never completed.
	if err := fsA.Write(ctx, inode.Caller{}, f.Ino, []byte("x"), 100); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 101)
	if n, err := fsA.Read(ctx, inode.Caller{}, f.Ino, got, 0); err != nil || n != 101 || !bytes.Equal(got[:100], make([]byte, 100)) {
		t.Fatalf("read after growing: %d, %v, %q", n, err, got[:20])
	}
}
