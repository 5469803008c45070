package etcdswift_test

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

// openFS opens an FS on a new engine of the volume name.
func openFS(t *testing.T, name string, format vfsbackend.FormatPolicy) (*inode.FS, *etcdswift.Backend) {
	t.Helper()
	b := open(t, name, 0, format)
	fs, err := inode.Open(ctx, b, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !fs.Shared() {
		t.Fatal("the etcdswift engine is not seen as shared")
	}
	return fs, b
}

// TestCreateRoundTrips: a create in a directory that this gateway created
// in before costs one etcd request (the commit), plus the inode number
// allocator's two per block of numbers.
func TestCreateRoundTrips(t *testing.T) {
	fs, b := openFS(t, uniqueName(t), vfsbackend.FormatIfNew)
	root := inode.Caller{}
	d, err := fs.Mkdir(ctx, root, inode.RootIno, "d", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	n := etcdswift.CountEtcdForTest(b)
	const creates = 256
	for i := range creates {
		if _, err := fs.Create(ctx, root, d.Ino, fmt.Sprint("f", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := n.Load()
	t.Logf("%d etcd requests for %d creates (%.2f each)", got, creates, float64(got)/creates)
	// 256 commits, and at most 5 blocks of 64 numbers at 2 requests each.
	if got > creates+10 {
		t.Errorf("%d etcd requests for %d creates, want at most %d", got, creates, creates+10)
	}
	// An existing name is still EEXIST (the first attempt assumed it
	// absent; its commit fails and the next one reads it), and costs no
	// inode and changes nothing.
	if _, err := fs.Create(ctx, root, d.Ino, "f0", 0o644); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("create of an existing name: %v, want EEXIST", err)
	}
	ents, _, err := fs.ReadDir(ctx, root, d.Ino, 0, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != creates+2 {
		t.Errorf("readdir: %d entries, want %d", len(ents), creates+2)
	}
}

// TestCreateStaleCache: a gateway's cached directory record goes stale
// when another gateway creates in the directory; its next create still
// succeeds (the commit fails on the record, and the next attempt reads
// it), the directory holds every name once with distinct cookies, and
// inode numbers are never handed out twice. An existing name found only
// by the commit is EEXIST, also for a caller who may not write the
// directory (Linux checks the name first).
func TestCreateStaleCache(t *testing.T) {
	name := uniqueName(t)
	a, _ := openFS(t, name, vfsbackend.FormatIfNew)
	b, _ := openFS(t, name, vfsbackend.FormatNever)
	root := inode.Caller{}
	d, err := a.Mkdir(ctx, root, inode.RootIno, "d", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	// Alternate gateways in one directory: each create finds the other's
	// change to the record.
	inos := map[inode.Ino]string{}
	for i := range 20 {
		fs := []*inode.FS{a, b}[i%2]
		st, err := fs.Create(ctx, root, d.Ino, fmt.Sprint("f", i), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		inos[st.Ino] = fmt.Sprint("f", i)
	}
	// Concurrently, several goroutines on each gateway, one directory
	// each and one shared by all.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 6 {
		fs := []*inode.FS{a, b}[g%2]
		own, err := fs.Mkdir(ctx, root, d.Ino, fmt.Sprint("own", g), 0o755)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				dir, nm := own.Ino, fmt.Sprint("x", i)
				if i%2 == 1 {
					dir, nm = d.Ino, fmt.Sprint("g", g, "-", i)
				}
				st, err := fs.Create(ctx, root, dir, nm, 0o644)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, ok := inos[st.Ino]; ok {
					t.Errorf("inode %d handed out for %s and %s", st.Ino, prev, nm)
				}
				inos[st.Ino] = nm
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ents, _, err := b.ReadDir(ctx, root, d.Ino, 0, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	names, cookies := map[string]bool{}, map[int64]bool{}
	for _, e := range ents {
		if names[e.Name] || cookies[e.Cookie] {
			t.Errorf("entry %q (cookie %d) twice", e.Name, e.Cookie)
		}
		names[e.Name], cookies[e.Cookie] = true, true
	}
	if want := 2 + 20 + 6 + 6*10; len(ents) != want {
		t.Errorf("readdir: %d entries, want %d", len(ents), want)
	}
	// f1 was created through b; a's first attempt assumes it absent.
	if _, err := a.Create(ctx, root, d.Ino, "f1", 0o644); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("create of a name the other gateway made: %v, want EEXIST", err)
	}
	user := inode.Caller{UID: 1000, GID: 1000}
	if _, err := a.Create(ctx, user, d.Ino, "f3", 0o644); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("create of an existing name without write permission: %v, want EEXIST", err)
	}
	if _, err := a.Create(ctx, user, d.Ino, "new", 0o644); !errors.Is(err, syscall.EACCES) {
		t.Errorf("create without write permission: %v, want EACCES", err)
	}
	for i, fs := range []*inode.FS{a, b} {
		probs, err := fs.Check(ctx)
		if err != nil || len(probs) > 0 {
			t.Errorf("check through %d: %v %v", i, probs, err)
		}
	}
}

// TestInoBlockGap: inode numbers come from the etcd counter in blocks of
// 64 per gateway; a gateway that goes away with most of its block unused
// leaves a gap, and a gateway opened later never hands out a number of
// that block.
func TestInoBlockGap(t *testing.T) {
	name := uniqueName(t)
	a, ab := openFS(t, name, vfsbackend.FormatIfNew)
	root := inode.Caller{}
	first, err := a.Create(ctx, root, inode.RootIno, "a", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := ab.Close(); err != nil { // gone, as if killed: its block is not given back
		t.Fatal(err)
	}
	b, _ := openFS(t, name, vfsbackend.FormatNever)
	for i := range 3 {
		st, err := b.Create(ctx, root, inode.RootIno, fmt.Sprint("b", i), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ino < first.Ino+64 {
			t.Errorf("inode %d handed out after %d, within the gone gateway's block", st.Ino, first.Ino)
		}
	}
	probs, err := b.Check(ctx)
	if err != nil || len(probs) > 0 {
		t.Errorf("check: %v %v", probs, err)
	}
}
