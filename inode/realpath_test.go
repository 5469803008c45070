package inode_test

import (
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
)

func TestRealpath(t *testing.T) {
	fs, _ := inodetest.New(t)
	d := mustMkdir(t, fs, inode.RootIno, "d")
	e := mustMkdir(t, fs, d.Ino, "e")
	f := mustCreate(t, fs, e.Ino, "f")
	for _, l := range []struct {
		dir          inode.Ino
		name, target string
	}{
		{inode.RootIno, "lf", "d/e/f"},    // relative, to a file
		{d.Ino, "up", ".."},               // to the parent
		{inode.RootIno, "abs", "/d/e"},    // absolute, to a directory
		{inode.RootIno, "chain", "abs/f"}, // through another symlink
		{inode.RootIno, "dangling", "nope"},
		{inode.RootIno, "loop", "loop"},
	} {
		if _, err := fs.Symlink(ctx, root, l.dir, l.name, l.target); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		path, want string
		ino        inode.Ino
	}{
		{"", "/", inode.RootIno},
		{"/", "/", inode.RootIno},
		{"//d/./e/../e/f", "/d/e/f", f.Ino},
		{"lf", "/d/e/f", f.Ino},
		{"d/up/d/e", "/d/e", e.Ino},
		{"abs", "/d/e", e.Ino},
		{"abs/", "/d/e", e.Ino},
		{"chain", "/d/e/f", f.Ino},
	} {
		p, ino, err := fs.Realpath(ctx, root, c.path)
		if err != nil || p != c.want || ino != c.ino {
			t.Errorf("Realpath(%q) = %q, %d, %v; want %q, %d", c.path, p, ino, err, c.want, c.ino)
		}
	}
	for _, c := range []struct {
		path string
		want syscall.Errno
	}{
		{"dangling", syscall.ENOENT},
		{"loop", syscall.ELOOP},
		{"lf/", syscall.ENOTDIR},
		{"d/nope", syscall.ENOENT},
		{"/d/e/f/..", syscall.ENOTDIR},
	} {
		_, _, err := fs.Realpath(ctx, root, c.path)
		wantErr(t, "Realpath "+c.path, err, c.want)
	}
}
