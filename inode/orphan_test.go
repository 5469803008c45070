package inode_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

func hasData(t *testing.T, be vfsbackend.Backend, ino inode.Ino) bool {
	t.Helper()
	found := false
	if err := be.ListData(ctx, func(i inode.Ino, _ int64) bool {
		found = found || i == ino
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

func hasKey(t *testing.T, be vfsbackend.Backend, k []byte) bool {
	t.Helper()
	_, err := be.Get(ctx, k)
	return err == nil
}

func orphanKeyOf(ino inode.Ino) []byte {
	return []byte{'o', byte(ino >> 56), byte(ino >> 48), byte(ino >> 40), byte(ino >> 32), byte(ino >> 24), byte(ino >> 16), byte(ino >> 8), byte(ino)}
}

// Unlinking an open file orphans it: it stays usable by inode number,
// listed durably, and goes (record, key, xattrs, data, space) at its
// last close.
func TestOrphanUnlinkOpen(t *testing.T) {
	be := mem.New(vfsbackend.Options{})
	fs, err := inode.Open(ctx, be, inode.Options{Now: inodetest.NewClock().Now, CapacityBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inodetest.MustCheck(t, fs) })
	f := mustCreate(t, fs, inode.RootIno, "f")
	wantErr(t, "write", fs.Write(ctx, root, f.Ino, bytes.Repeat([]byte("x"), 8192), 0), 0)
	wantErr(t, "setxattr", fs.SetXattr(ctx, root, f.Ino, "user.a", []byte("v"), 0), 0)
	before, _ := fs.StatFS(ctx)

	_, err = fs.OpenInode(ctx, root, f.Ino, inode.MayRead|inode.MayWrite, false)
	wantErr(t, "open", err, 0)
	_, err = fs.OpenInode(ctx, root, f.Ino, inode.MayRead|inode.MayWrite, false)
	wantErr(t, "open again", err, 0)
	wantErr(t, "unlink", fs.Unlink(ctx, root, inode.RootIno, "f"), 0)
	if a := attr(t, fs, f.Ino); a.Nlink != 0 || a.Size != 8192 {
		t.Fatalf("orphan attr %+v", a)
	}
	if !hasKey(t, be, orphanKeyOf(f.Ino)) || !slices.Equal(fs.Orphans(), []inode.Ino{f.Ino}) {
		t.Fatalf("orphan not listed: %v", fs.Orphans())
	}
	inodetest.MustCheck(t, fs)
	// Still readable and writable by inode number.
	wantErr(t, "write orphan", fs.Write(ctx, root, f.Ino, []byte("hello"), 0), 0)
	buf := make([]byte, 5)
	n, err := fs.Read(ctx, root, f.Ino, buf, 0)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read orphan: %q %v", buf[:n], err)
	}
	if v, err := fs.GetXattr(ctx, root, f.Ino, "user.a"); err != nil || string(v) != "v" {
		t.Fatalf("getxattr orphan: %q %v", v, err)
	}
	// A plain open of an orphan is ENOENT; a link to it too.
	_, err = fs.OpenInode(ctx, root, f.Ino, inode.MayRead|inode.MayWrite, false)
	wantErr(t, "open orphan", err, syscall.ENOENT)
	wantErr(t, "link orphan", fs.Link(ctx, root, inode.RootIno, "back", f.Ino), syscall.ENOENT)

	wantErr(t, "close 1", fs.CloseInode(ctx, f.Ino), 0)
	if _, err := fs.GetAttr(ctx, f.Ino); err != nil {
		t.Fatalf("orphan gone before its last close: %v", err)
	}
	wantErr(t, "close 2", fs.CloseInode(ctx, f.Ino), 0)
	_, err = fs.GetAttr(ctx, f.Ino)
	wantErr(t, "stat after last close", err, syscall.ENOENT)
	if hasKey(t, be, orphanKeyOf(f.Ino)) || len(fs.Orphans()) != 0 || hasData(t, be, f.Ino) {
		t.Fatalf("orphan left traces: key %v list %v data %v", hasKey(t, be, orphanKeyOf(f.Ino)), fs.Orphans(), hasData(t, be, f.Ino))
	}
	if _, err := fs.ListXattr(ctx, root, f.Ino); err == nil {
		t.Fatal("xattrs of a freed orphan still listed")
	}
	after, _ := fs.StatFS(ctx)
	if after.BlocksFree != before.BlocksFree+2 {
		t.Fatalf("space not given back: free blocks %d before, %d after", before.BlocksFree, after.BlocksFree)
	}
	wantErr(t, "close once more", fs.CloseInode(ctx, f.Ino), syscall.EBADF)
}

// Rename over an open file orphans it; a file that keeps links is not
// affected by its closes; a closed file is deleted at once.
func TestOrphanRenameOverAndLinks(t *testing.T) {
	fs, be := inodetest.New(t)
	a := mustCreate(t, fs, inode.RootIno, "a")
	b := mustCreate(t, fs, inode.RootIno, "b")
	wantErr(t, "write b", fs.Write(ctx, root, b.Ino, []byte("old"), 0), 0)
	_, err := fs.OpenInode(ctx, root, b.Ino, inode.MayRead|inode.MayWrite, false)
	wantErr(t, "open b", err, 0)
	wantErr(t, "rename a over b", fs.Rename(ctx, root, inode.RootIno, "a", inode.RootIno, "b"), 0)
	if got := lookup(t, fs, inode.RootIno, "b"); got != a.Ino {
		t.Fatalf("b is %d, want %d", got, a.Ino)
	}
	if at := attr(t, fs, b.Ino); at.Nlink != 0 {
		t.Fatalf("renamed-over file: %+v", at)
	}
	wantErr(t, "close b", fs.CloseInode(ctx, b.Ino), 0)
	_, err = fs.GetAttr(ctx, b.Ino)
	wantErr(t, "old b after close", err, syscall.ENOENT)
	if hasData(t, be, b.Ino) {
		t.Fatal("data of freed orphan left")
	}

	// Two links, one removed while open: no orphan; close changes nothing.
	c := mustCreate(t, fs, inode.RootIno, "c")
	wantErr(t, "link", fs.Link(ctx, root, inode.RootIno, "c2", c.Ino), 0)
	_, err = fs.OpenInode(ctx, root, c.Ino, inode.MayRead|inode.MayWrite, false)
	wantErr(t, "open c", err, 0)
	wantErr(t, "unlink c", fs.Unlink(ctx, root, inode.RootIno, "c"), 0)
	if len(fs.Orphans()) != 0 {
		t.Fatalf("orphans %v", fs.Orphans())
	}
	wantErr(t, "close c", fs.CloseInode(ctx, c.Ino), 0)
	if at := attr(t, fs, c.Ino); at.Nlink != 1 {
		t.Fatalf("c after close: %+v", at)
	}
	// Not open: unlink deletes at once.
	wantErr(t, "unlink c2", fs.Unlink(ctx, root, inode.RootIno, "c2"), 0)
	_, err = fs.GetAttr(ctx, c.Ino)
	wantErr(t, "c after unlink", err, syscall.ENOENT)

	// Directories can be opened but are never kept once removed.
	d := mustMkdir(t, fs, inode.RootIno, "d")
	_, err = fs.OpenInode(ctx, root, d.Ino, inode.MayRead, false)
	wantErr(t, "open dir", err, 0)
	wantErr(t, "rmdir", fs.Rmdir(ctx, root, inode.RootIno, "d"), 0)
	_, err = fs.GetAttr(ctx, d.Ino)
	wantErr(t, "dir after rmdir", err, syscall.ENOENT)
	wantErr(t, "close dir", fs.CloseInode(ctx, d.Ino), 0)
	_, err = fs.OpenInode(ctx, root, 9999, inode.MayRead|inode.MayWrite, false)
	wantErr(t, "open missing", err, syscall.ENOENT)
}

// After a restart (a new FS on the same store) the orphan list is loaded;
// a reclaim open pins an orphan again, FreeOrphans frees the others, and
// Check accepts orphans and reports broken lists.
func TestOrphanRestartReclaim(t *testing.T) {
	be := mem.New(vfsbackend.Options{})
	fs, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var inos []inode.Ino
	for _, name := range []string{"keep", "drop"} {
		f := mustCreate(t, fs, inode.RootIno, name)
		wantErr(t, "write", fs.Write(ctx, root, f.Ino, []byte(name), 0), 0)
		_, err := fs.OpenInode(ctx, root, f.Ino, inode.MayRead|inode.MayWrite, false)
		wantErr(t, "open", err, 0)
		wantErr(t, "unlink", fs.Unlink(ctx, root, inode.RootIno, name), 0)
		inos = append(inos, f.Ino)
	}
	keep, drop := inos[0], inos[1]

	// "Crash": reopen the store without closing anything.
	fs2, err := inode.Open(ctx, be, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inodetest.MustCheck(t, fs2)
	ro, err := inode.Open(ctx, be, inode.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	inodetest.MustCheck(t, ro)
	if !slices.Equal(fs2.Orphans(), []inode.Ino{keep, drop}) {
		t.Fatalf("orphans after restart: %v", fs2.Orphans())
	}
	_, err = fs2.OpenInode(ctx, root, keep, inode.MayRead|inode.MayWrite, false)
	wantErr(t, "plain open of orphan", err, syscall.ENOENT)
	_, err = fs2.OpenInode(ctx, root, keep, inode.MayRead|inode.MayWrite, true)
	wantErr(t, "reclaim open", err, 0)
	n, err := fs2.FreeOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("FreeOrphans: %d %v", n, err)
	}
	_, err = fs2.GetAttr(ctx, drop)
	wantErr(t, "dropped orphan", err, syscall.ENOENT)
	if hasData(t, be, drop) || hasKey(t, be, orphanKeyOf(drop)) {
		t.Fatal("dropped orphan left traces")
	}
	buf := make([]byte, 8)
	if n, err := fs2.Read(ctx, root, keep, buf, 0); err != nil || string(buf[:n]) != "keep" {
		t.Fatalf("read kept orphan: %q %v", buf[:n], err)
	}
	_, err = fs2.OpenInode(ctx, root, drop, inode.MayRead|inode.MayWrite, true)
	wantErr(t, "reclaim open of freed orphan", err, syscall.ENOENT)
	inodetest.MustCheck(t, fs2)

	// Check: an orphan key without its inode, and an unlinked inode that
	// is not listed, are problems.
	if err := be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: orphanKeyOf(drop), Value: []byte{1}}}}); err != nil {
		t.Fatal(err)
	}
	if probs, _ := fs2.Check(ctx); len(probs) != 1 {
		t.Fatalf("listed missing orphan: problems %q", probs)
	}
	if err := be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: orphanKeyOf(drop), Delete: true}, {Key: orphanKeyOf(keep), Delete: true}}}); err != nil {
		t.Fatal(err)
	}
	if probs, _ := fs2.Check(ctx); len(probs) != 1 {
		t.Fatalf("unlisted nlink-0 inode: problems %q", probs)
	}
	if err := be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{{Key: orphanKeyOf(keep), Value: []byte{1}}}}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "close kept", fs2.CloseInode(ctx, keep), 0)
	_, err = fs2.GetAttr(ctx, keep)
	wantErr(t, "kept orphan after close", err, syscall.ENOENT)
	inodetest.MustCheck(t, fs2)
}

// Opens, closes, unlinks and re-creations of one name race; at the end,
// with every handle closed, no orphan is left and the volume is consistent.
func TestOrphanConcurrent(t *testing.T) {
	fs, _ := inodetest.New(t)
	const workers, rounds = 4, 200
	done := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range rounds {
				a, err := fs.Create(ctx, root, inode.RootIno, "f", 0o644)
				if err != nil && !errors.Is(err, syscall.EEXIST) {
					done <- err
					return
				}
				ino := a.Ino
				if err != nil {
					if ino, err = fs.Lookup(ctx, root, inode.RootIno, "f"); err != nil {
						continue // unlinked meanwhile
					}
				}
				if _, err := fs.OpenInode(ctx, root, ino, inode.MayRead|inode.MayWrite, false); err != nil {
					continue // unlinked (and freed, or orphaned) meanwhile
				}
				if (w+i)%2 == 0 {
					_ = fs.Unlink(ctx, root, inode.RootIno, "f")
				}
				if err := fs.Write(ctx, root, ino, []byte("x"), 0); err != nil {
					done <- fmt.Errorf("write to an open file: %w", err)
					return
				}
				if err := fs.CloseInode(ctx, ino); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range workers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if o := fs.Orphans(); len(o) != 0 {
		t.Fatalf("orphans left with no handle open: %v", o)
	}
}
