package inode_test

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
)

func TestCopyRange(t *testing.T) {
	allocEngines(t, func(t *testing.T, fs *inode.FS, _ uint64) {
		big := bytes.Repeat([]byte("0123456789"), 50000) // 500000 bytes: a data file
		src := mustCreate(t, fs, inode.RootIno, "src")
		wantErr(t, "write src", fs.Write(ctx, root, src.Ino, big, 0), 0)
		small := mustCreate(t, fs, inode.RootIno, "small")
		wantErr(t, "write small", fs.Write(ctx, root, small.Ino, []byte("hello"), 0), 0)
		dst := mustCreate(t, fs, inode.RootIno, "dst")
		read := func(ino inode.Ino) []byte {
			t.Helper()
			a := attr(t, fs, ino)
			buf := make([]byte, a.Size)
			n, err := fs.Read(ctx, root, ino, buf, 0)
			if err != nil || uint64(n) != a.Size {
				t.Fatalf("read %d: %d %v", ino, n, err)
			}
			return buf
		}
		copyRange := func(s inode.Ino, so uint64, d inode.Ino, do, n uint64) uint64 {
			t.Helper()
			m, err := fs.CopyRange(ctx, root, s, so, d, do, n)
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			return m
		}
		// Into an empty file, past a hole.
		if n := copyRange(src.Ino, 1000, dst.Ino, 100, 300000); n != 300000 {
			t.Fatalf("copied %d", n)
		}
		want := make([]byte, 300100)
		copy(want[100:], big[1000:301000])
		if got := read(dst.Ino); !bytes.Equal(got, want) {
			t.Fatal("dst after the first copy")
		}
		// Over existing data, past the end of src: a short copy.
		if n := copyRange(src.Ino, 499990, dst.Ino, 50, 100); n != 10 {
			t.Fatalf("copy at the end of src: %d", n)
		}
		copy(want[50:], big[499990:])
		if got := read(dst.Ino); !bytes.Equal(got, want) {
			t.Fatal("dst after the short copy")
		}
		if n := copyRange(src.Ino, 500000, dst.Ino, 0, 10); n != 0 {
			t.Fatalf("copy at src's end: %d", n)
		}
		// From a small (inline on local) file, and within one file.
		if n := copyRange(small.Ino, 0, dst.Ino, 300100, 5); n != 5 {
			t.Fatalf("copy from small: %d", n)
		}
		want = append(want, "hello"...)
		if got := read(dst.Ino); !bytes.Equal(got, want) {
			t.Fatal("dst after copy from a small file")
		}
		if n := copyRange(src.Ino, 0, src.Ino, 500000, 10); n != 10 {
			t.Fatalf("copy within: %d", n)
		}
		if got := read(src.Ino); len(got) != 500010 || string(got[500000:]) != "0123456789" {
			t.Fatal("src after copy within")
		}
		_, err := fs.CopyRange(ctx, root, src.Ino, 0, src.Ino, 5, 10)
		wantErr(t, "overlap", err, syscall.EINVAL)
		_, err = fs.CopyRange(ctx, root, inode.RootIno, 0, dst.Ino, 0, 10)
		wantErr(t, "from a directory", err, syscall.EISDIR)
		_, err = fs.CopyRange(ctx, root, src.Ino, 0, inode.RootIno, 0, 10)
		wantErr(t, "to a directory", err, syscall.EISDIR)
		_, err = fs.CopyRange(ctx, root, src.Ino, 0, 999999, 0, 10)
		wantErr(t, "to nothing", err, syscall.ENOENT)
		_, err = fs.CopyRange(ctx, root, src.Ino, 0, dst.Ino, inode.MaxFileSize, 10)
		wantErr(t, "too far", err, syscall.EFBIG)
		_, err = fs.CopyRange(ctx, root, src.Ino, 0, dst.Ino, 66<<20, 500000)
		wantErr(t, "past capacity", err, syscall.ENOSPC)
		if sz := attr(t, fs, dst.Ino).Size; sz != 300105 {
			t.Fatalf("dst size after a failed copy: %d", sz)
		}
	})
}
