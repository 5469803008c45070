package inode_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// usageKeys returns the volume's usage keys and their sum.
func usageKeys(t *testing.T, be vfsbackend.Backend) (map[string]int64, int64) {
	t.Helper()
	keys := map[string]int64{}
	var sum int64
	if err := be.Scan(ctx, []byte{'u'}, nil, func(k, v []byte) bool {
		n := int64(binary.BigEndian.Uint64(v))
		keys[string(k)] = n
		sum += n
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return keys, sum
}

// TestKeptUsage: on a volume that is not shared the space in use is kept
// in the volume with every size change, so that Open reads it (not every
// inode): after writes, truncates, unlinks and a rename over a file from
// many goroutines, the kept use is the files' sizes, a reopen enforces
// the capacity with it, and -check finds a wrong key.
func TestKeptUsage(t *testing.T) {
	be := mem.New(vfsbackend.Options{})
	const capacity = 1 << 20
	open := func() *inode.FS {
		fs, err := inode.Open(ctx, be, inode.Options{CapacityBytes: capacity})
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	fs := open()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				name := fmt.Sprintf("f%d-%d", g, i)
				f, err := fs.Create(ctx, root, inode.RootIno, name, 0o644)
				if err != nil {
					t.Error(err)
					return
				}
				if err := fs.Write(ctx, root, f.Ino, make([]byte, 1000+i*10), 0); err != nil {
					t.Error(err)
				}
				switch i % 4 {
				case 1:
					if _, err := fs.SetAttr(ctx, root, f.Ino, inode.SetAttr{Mask: inode.SetSize, Size: 100}); err != nil {
						t.Error(err)
					}
				case 2:
					if err := fs.Unlink(ctx, root, inode.RootIno, name); err != nil {
						t.Error(err)
					}
				case 3:
					if err := fs.Rename(ctx, root, inode.RootIno, name, inode.RootIno, fmt.Sprintf("f%d-%d", g, i-3)); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	var want uint64
	for _, e := range listAll(t, fs, inode.RootIno, 50) {
		if e.Name != "." && e.Name != ".." {
			want += attr(t, fs, e.Ino).Size
		}
	}
	if _, sum := usageKeys(t, be); sum != int64(want) {
		t.Errorf("usage keys add up to %d, the files' sizes to %d", sum, want)
	}
	inodetest.MustCheck(t, fs)

	// A reopen reads the kept use: the capacity holds to the byte.
	fs = open()
	st, err := fs.StatFS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := mustCreate(t, fs, inode.RootIno, "fill")
	wantErr(t, "write up to capacity", fs.Write(ctx, root, f.Ino, make([]byte, capacity-want), 0), 0)
	wantErr(t, "write past capacity", fs.Write(ctx, root, f.Ino, []byte{1}, capacity-want), syscall.ENOSPC)
	if st.BlocksFree == 0 {
		t.Errorf("statfs before filling: %+v", st)
	}

	// A wrong usage key: -check says so.
	keys, _ := usageKeys(t, be)
	var b vfsbackend.Batch
	for k, n := range keys {
		b.Put([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(n+7)))
		break
	}
	if err := be.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	probs, err := open().Check(ctx)
	if err != nil || len(probs) != 1 || !strings.Contains(probs[0], "usage keys add up to") {
		t.Errorf("check of a wrong usage key: %q, %v", probs, err)
	}
}

// TestKeptUsageUpgrade: a volume without usage keys (made by an older
// proxyfs) is counted at its first read-write open, which keeps the count;
// a read-only open counts it and writes nothing.
func TestKeptUsageUpgrade(t *testing.T) {
	be := mem.New(vfsbackend.Options{})
	fs, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := mustCreate(t, fs, inode.RootIno, "f")
	wantErr(t, "write", fs.Write(ctx, root, f.Ino, make([]byte, 12345), 0), 0)
	// What an older proxyfs left: no usage keys, no marker.
	keys, _ := usageKeys(t, be)
	var b vfsbackend.Batch
	for k := range keys {
		b.Delete([]byte(k))
	}
	b.Delete([]byte("susage_keys"))
	if err := be.Commit(ctx, &b); err != nil {
		t.Fatal(err)
	}
	ro, err := inode.Open(ctx, be, inode.Options{ReadOnly: true, CapacityBytes: 12345})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := ro.StatFS(ctx); err != nil || st.BlocksFree != 0 {
		t.Errorf("read-only open: statfs %+v, %v", st, err)
	}
	if keys, _ := usageKeys(t, be); len(keys) != 0 {
		t.Errorf("a read-only open wrote usage keys: %v", keys)
	}
	fs, err = inode.Open(ctx, be, inode.Options{CapacityBytes: 12345})
	if err != nil {
		t.Fatal(err)
	}
	if _, sum := usageKeys(t, be); sum != 12345 {
		t.Errorf("usage keys after the upgrade add up to %d, want 12345", sum)
	}
	wantErr(t, "write past capacity after the upgrade", fs.Write(ctx, root, f.Ino, []byte{1}, 12345), syscall.ENOSPC)
	inodetest.MustCheck(t, fs)
}
