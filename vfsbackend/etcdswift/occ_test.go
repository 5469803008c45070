package etcdswift_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/vfsbackend"
)

func put(t *testing.T, b vfsbackend.Backend, kv ...string) {
	t.Helper()
	var batch vfsbackend.Batch
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			batch.Delete([]byte(kv[i]))
		} else {
			batch.Put([]byte(kv[i]), []byte(kv[i+1]))
		}
	}
	if err := b.Commit(ctx, &batch); err != nil {
		t.Fatal(err)
	}
}

// TestReadSetConflicts: a commit with a read set fails with ErrConflict,
// changing nothing, when another gateway changed, created or deleted a
// key it read (alone or in a scanned range) after it read it; and
// succeeds, bringing the set up to date, when nothing changed.
func TestReadSetConflicts(t *testing.T) {
	a := open(t, t.Name(), 0, vfsbackend.FormatIfNew)
	b := open(t, t.Name(), 0, vfsbackend.FormatNever) // the other gateway
	put(t, a, "k1", "1", "r/a", "1", "r/c", "1")

	cases := []struct {
		name  string
		read  func(ctx context.Context) error
		other []string // what the other gateway commits in between ("" value: delete)
	}{
		{"changed key", func(ctx context.Context) error { _, err := a.Get(ctx, []byte("k1")); return err }, []string{"k1", "2"}},
		{"created key", func(ctx context.Context) error {
			_, err := a.Get(ctx, []byte("k2"))
			if errors.Is(err, syscall.ENOENT) {
				err = nil
			}
			return err
		}, []string{"k2", "x"}},
		{"created in range", func(ctx context.Context) error {
			return a.Scan(ctx, []byte("r/"), nil, func(_, _ []byte) bool { return true })
		}, []string{"r/b", "1"}},
		{"deleted from range", func(ctx context.Context) error {
			return a.Scan(ctx, []byte("r/"), nil, func(_, _ []byte) bool { return true })
		}, []string{"r/a", ""}},
		{"changed in range", func(ctx context.Context) error {
			return a.Scan(ctx, []byte("r/"), nil, func(_, _ []byte) bool { return true })
		}, []string{"r/c", "2"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rctx, rs := vfsbackend.WithReadSet(ctx)
			if err := c.read(rctx); err != nil {
				t.Fatal(err)
			}
			if err := a.ValidateReads(rctx); err != nil {
				t.Fatalf("ValidateReads before the change: %v", err)
			}
			put(t, b, c.other...)
			if err := a.ValidateReads(rctx); !errors.Is(err, vfsbackend.ErrConflict) {
				t.Fatalf("ValidateReads after the change: %v, want ErrConflict", err)
			}
			mark := fmt.Sprintf("mark%d", i)
			var batch vfsbackend.Batch
			batch.Put([]byte(mark), []byte("x"))
			if err := a.Commit(rctx, &batch); !errors.Is(err, vfsbackend.ErrConflict) {
				t.Fatalf("Commit after the change: %v, want ErrConflict", err)
			}
			if rs.Committed() {
				t.Fatal("the set says committed")
			}
			if _, err := b.Get(ctx, []byte(mark)); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("the refused commit wrote its key: %v", err)
			}
		})
	}

	// Nothing changed: the commit succeeds, and a second commit in the
	// same attempt too (the set knows the first one's writes).
	rctx, rs := vfsbackend.WithReadSet(ctx)
	if _, err := a.Get(rctx, []byte("k1")); err != nil {
		t.Fatal(err)
	}
	if err := a.Scan(rctx, []byte("r/"), nil, func(_, _ []byte) bool { return true }); err != nil {
		t.Fatal(err)
	}
	put(t, b, "elsewhere", "1") // outside what was read
	for i := range 2 {
		var batch vfsbackend.Batch
		batch.Put([]byte("k1"), []byte(fmt.Sprint("mine", i)))
		batch.Put([]byte("r/new"), []byte("1"))
		if err := a.Commit(rctx, &batch); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	if !rs.Committed() {
		t.Fatal("the set does not say committed")
	}
	if v, err := b.Get(ctx, []byte("k1")); err != nil || string(v) != "mine1" {
		t.Fatalf("k1 = %q, %v", v, err)
	}
}

// TestTwoFSOneName: file systems on two engines (two gateways) of one
// volume race to create, link and rename onto the same names: each name
// is won exactly once, the losers get EEXIST (never a second entry or a
// lost one), and Check is clean with an inode count taken from etcd.
func TestTwoFSOneName(t *testing.T) {
	fss := twoFS(t, 0)
	root := inode.Caller{}
	const names, racers = 10, 6
	var wg sync.WaitGroup
	wins := make([][names]bool, racers)
	errs := make(chan error, racers*names)
	for r := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs := fss[r%2]
			for n := range names {
				_, err := fs.Create(ctx, root, inode.RootIno, fmt.Sprint("n", n), 0o644)
				switch {
				case err == nil:
					wins[r][n] = true
				case !errors.Is(err, syscall.EEXIST):
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := range names {
		won := 0
		for r := range racers {
			if wins[r][n] {
				won++
			}
		}
		if won != 1 {
			t.Errorf("n%d created %d times", n, won)
		}
	}
	// Both rename the names onto one target, one at a time each: the
	// target ends up naming one of them, and every other is gone.
	var mu sync.Mutex
	renamed := 0
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := g; n < names; n += 2 {
				err := fss[g].Rename(ctx, root, inode.RootIno, fmt.Sprint("n", n), inode.RootIno, "target")
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				renamed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ents, _, err := fss[1].ReadDir(ctx, root, inode.RootIno, 0, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if e.Name != "." && e.Name != ".." {
			got = append(got, e.Name)
		}
	}
	if renamed != names || len(got) != 1 || got[0] != "target" {
		t.Errorf("after %d renames onto one name the root holds %v", renamed, got)
	}
	st, err := fss[0].StatFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if used := st.Files - st.FilesFree; used != 2 { // the root and target
		t.Errorf("statfs: %d inodes in use, want 2", used)
	}
	for i, fs := range fss {
		probs, err := fs.Check(ctx)
		if err != nil || len(probs) > 0 {
			t.Errorf("check through %d: %v %v", i, probs, err)
		}
	}
}

// TestTwoFSOneFile: writers on two gateways grow one file at the same
// time, each writing its own blocks (so every write makes a hole that
// another gateway's write in progress may fill, and cuts what lies beyond
// the size it read). Every acknowledged block is there afterwards, and
// the size is right.
func TestTwoFSOneFile(t *testing.T) {
	fss := twoFS(t, 4096)
	root := inode.Caller{}
	f, err := fss[0].Create(ctx, root, inode.RootIno, fmt.Sprint("f", time.Now().UnixNano()), 0o644) // -count=n reuses the volume
	if err != nil {
		t.Fatal(err)
	}
	const writers, blocks, bs = 4, 32, 3000 // blocks straddle chunks
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs := fss[w%2]
			// Writer w writes blocks w, w+writers, ... in ascending
			// order, so that most writes grow the file past a hole.
			for k := w; k < blocks; k += writers {
				p := bytes.Repeat([]byte{byte('a' + k)}, bs)
				if err := fs.Write(ctx, root, f.Ino, p, uint64(k*bs)); err != nil {
					errs <- fmt.Errorf("writer %d block %d: %w", w, k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, fs := range fss {
		got := make([]byte, blocks*bs+10)
		n, err := fs.Read(ctx, root, f.Ino, got, 0)
		if err != nil || n != blocks*bs {
			t.Fatalf("read through %d: %d bytes, %v; want %d", i, n, err, blocks*bs)
		}
		for k := range blocks {
			if b := got[k*bs : (k+1)*bs]; !bytes.Equal(b, bytes.Repeat([]byte{byte('a' + k)}, bs)) {
				t.Errorf("through %d: block %d lost: starts %q", i, k, b[:8])
			}
		}
	}
}

// twoFS opens file systems on two engines (two gateways) of one new
// volume with chunks of chunk bytes (0: the default), and makes sure
// inode sees the engine as shared.
func twoFS(t *testing.T, chunk int) []*inode.FS {
	t.Helper()
	var fss []*inode.FS
	name := uniqueName(t)
	for i := range 2 {
		format := vfsbackend.FormatNever
		if i == 0 {
			format = vfsbackend.FormatIfNew
		}
		fs, err := inode.Open(ctx, open(t, name, chunk, format), inode.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !fs.Shared() {
			t.Fatal("the etcdswift engine is not seen as shared")
		}
		fss = append(fss, fs)
	}
	return fss
}
