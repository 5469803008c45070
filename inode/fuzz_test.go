package inode_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
)

// fuzzTree builds a small tree with symlinks of every kind used by the
// path fuzzer: relative, absolute, full of "..", looping, and to a file.
func fuzzTree(t *testing.T) *inode.FS {
	fs, _ := inodetest.New(t)
	a := mustMkdir(t, fs, inode.RootIno, "a")
	b := mustMkdir(t, fs, a.Ino, "b")
	mustCreate(t, fs, b.Ino, "f")
	for name, target := range map[string]string{
		"abs": "/a/b", "rel": "a/b", "loop": "loop", "file": "a/b/f",
		"up": "../../../..", "dot": ".", "root": "/",
	} {
		if _, err := fs.Symlink(ctx, root, inode.RootIno, name, target); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fs.Symlink(ctx, root, b.Ino, "escape", "../../../../../../etc"); err != nil {
		t.Fatal(err)
	}
	return fs
}

var resolveErrnos = []syscall.Errno{syscall.ENOENT, syscall.ENOTDIR, syscall.ELOOP, syscall.EINVAL, syscall.ENAMETOOLONG}

// FuzzResolve: any path resolves to a live inode of the volume or fails
// with one of the path errnos; ".." above the root is the root, so
// "../"+p always names what p names.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"", "/", "a/b/f", "../../a", "abs/f", "rel/../b", "loop/x", "file/x",
		"a/b/escape", "a/b/escape/x", "up/a", "dot/dot/a", "root/a/b", "a//./b/", "a/\xff", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		fs := fuzzTree(t)
		ino, err := fs.Resolve(ctx, root, path)
		if err != nil {
			for _, e := range resolveErrnos {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("resolve %q: unexpected error %v", path, err)
		}
		if _, err := fs.GetAttr(ctx, ino); err != nil {
			t.Fatalf("resolve %q gave %d which is not live: %v", path, ino, err)
		}
		if len(path) <= inode.MaxPathLen-3 {
			ino2, err := fs.Resolve(ctx, root, "../"+path)
			if err != nil || ino2 != ino {
				t.Fatalf("resolve ../%q = %d, %v; want %d", path, ino2, err, ino)
			}
		}
	})
}

// FuzzCreateName: a name is either created (and then found by Lookup and
// listed by ReadDir under exactly that name) or refused with EINVAL or
// ENAMETOOLONG.
func FuzzCreateName(f *testing.F) {
	for _, s := range []string{"a", ".", "..", "...", "a/b", "\x00", "é", "\xc3", "x\xffy", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		fs, _ := inodetest.New(t)
		a, err := fs.Create(ctx, root, inode.RootIno, name, 0o644)
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENAMETOOLONG) {
				t.Fatalf("create %q: %v", name, err)
			}
			return
		}
		if got := lookup(t, fs, inode.RootIno, name); got != a.Ino {
			t.Fatalf("lookup %q = %d, want %d", name, got, a.Ino)
		}
		ents := listAll(t, fs, inode.RootIno, 0)
		if len(ents) != 3 || ents[2].Name != name {
			t.Fatalf("listing %q", names(ents))
		}
	})
}
