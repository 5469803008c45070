package inode_test

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/inode"
	"github.com/proxyfs/proxyfs/inode/inodetest"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/local"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

// allocEngines runs fn on an FS over each engine with allocation: mem
// (64 KiB chunks) and local (data files; inline small files).
func allocEngines(t *testing.T, fn func(t *testing.T, fs *inode.FS, unit uint64)) {
	t.Run("mem", func(t *testing.T) {
		be := mem.New(vfsbackend.Options{})
		fs, err := inode.Open(context.Background(), be, inode.Options{Now: inodetest.NewClock().Now, CapacityBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { inodetest.MustCheck(t, fs) })
		fn(t, fs, 64<<10)
	})
	t.Run("local", func(t *testing.T) {
		be, err := local.Open(vfsbackend.Options{Path: t.TempDir(), Format: vfsbackend.FormatIfNew, InlineBytes: vfsbackend.DefaultInlineBytes})
		if err != nil {
			t.Fatal(err)
		}
		fs, err := inode.Open(context.Background(), be, inode.Options{Now: inodetest.NewClock().Now, CapacityBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			inodetest.MustCheck(t, fs)
			if err := be.Close(); err != nil {
				t.Error(err)
			}
		})
		fn(t, fs, 4096)
	})
}

func TestFallocatePunchSeek(t *testing.T) {
	allocEngines(t, func(t *testing.T, fs *inode.FS, unit uint64) {
		const size = 1 << 20
		f := mustCreate(t, fs, inode.RootIno, "f")
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		wantErr(t, "write", fs.Write(ctx, root, f.Ino, data, 0), 0)
		full := fs.Blocks(ctx, attr(t, fs, f.Ino))
		if full < size/512 {
			t.Fatalf("blocks of a written file: %d", full)
		}
		// Punch [256K, 512K).
		wantErr(t, "punch", fs.Fallocate(ctx, root, f.Ino, inode.FallocPunchHole|inode.FallocKeepSize, 256<<10, 256<<10), 0)
		a := attr(t, fs, f.Ino)
		if a.Size != size {
			t.Fatalf("size after punch %d", a.Size)
		}
		if b := fs.Blocks(ctx, a); b > full-(256<<10)/512 {
			t.Errorf("blocks after punching 256K: %d, before %d", b, full)
		}
		buf := make([]byte, size)
		if n, err := fs.Read(ctx, root, f.Ino, buf, 0); err != nil || n != size {
			t.Fatalf("read: %d %v", n, err)
		}
		want := append([]byte(nil), data...)
		clear(want[256<<10 : 512<<10])
		if !bytes.Equal(buf, want) {
			t.Fatal("data after punch")
		}
		seek := func(off uint64, hole bool) uint64 {
			t.Helper()
			p, err := fs.Seek(ctx, root, f.Ino, off, hole)
			if err != nil {
				t.Fatalf("seek(%d, hole=%v): %v", off, hole, err)
			}
			return p
		}
		if p := seek(0, true); p != 256<<10 {
			t.Errorf("SEEK_HOLE from 0 = %d, want %d", p, 256<<10)
		}
		if p := seek(300<<10, false); p != 512<<10 {
			t.Errorf("SEEK_DATA from 300K = %d, want %d", p, 512<<10)
		}
		if p := seek(0, false); p != 0 {
			t.Errorf("SEEK_DATA from 0 = %d", p)
		}
		if p := seek(600<<10, true); p != size {
			t.Errorf("SEEK_HOLE from 600K = %d, want the size", p)
		}
		_, err := fs.Seek(ctx, root, f.Ino, size, false)
		wantErr(t, "seek at size", err, syscall.ENXIO)
		_, err = fs.Seek(ctx, root, f.Ino, size, true)
		wantErr(t, "seek hole at size", err, syscall.ENXIO)

		// Zero range within the file: zeros, size unchanged.
		wantErr(t, "zero range", fs.Fallocate(ctx, root, f.Ino, inode.FallocZeroRange|inode.FallocKeepSize, 10, 20), 0)
		clear(want[10:30])
		if n, _ := fs.Read(ctx, root, f.Ino, buf, 0); n != size || !bytes.Equal(buf, want) {
			t.Fatal("data after zero range")
		}
		// Allocate past the end: the size grows, the new range reads as
		// zeros and is allocated.
		before := fs.Blocks(ctx, attr(t, fs, f.Ino))
		wantErr(t, "allocate", fs.Fallocate(ctx, root, f.Ino, 0, size, 256<<10), 0)
		a = attr(t, fs, f.Ino)
		if a.Size != size+256<<10 {
			t.Fatalf("size after allocate %d", a.Size)
		}
		if b := fs.Blocks(ctx, a); b < before+(256<<10)/512 {
			t.Errorf("blocks after allocating 256K: %d, before %d", b, before)
		}
		// (SEEK_DATA in an allocated but unwritten range may report data or
		// a hole: ext4 reports a hole, as Linux allows.)
		// KEEP_SIZE past the end: the size stays (and Check finds the data
		// object still covering exactly the size).
		wantErr(t, "allocate keep size", fs.Fallocate(ctx, root, f.Ino, inode.FallocKeepSize, a.Size, 1<<20), 0)
		if sz := attr(t, fs, f.Ino).Size; sz != a.Size {
			t.Fatalf("size after KEEP_SIZE allocation %d", sz)
		}
		// Modes and arguments as Linux.
		wantErr(t, "punch without keep size", fs.Fallocate(ctx, root, f.Ino, inode.FallocPunchHole, 0, 1), syscall.EOPNOTSUPP)
		wantErr(t, "unknown mode", fs.Fallocate(ctx, root, f.Ino, 0x40, 0, 1), syscall.EOPNOTSUPP)
		wantErr(t, "length 0", fs.Fallocate(ctx, root, f.Ino, 0, 0, 0), syscall.EINVAL)
		wantErr(t, "too far", fs.Fallocate(ctx, root, f.Ino, 0, inode.MaxFileSize, 1), syscall.EFBIG)
		wantErr(t, "directory", fs.Fallocate(ctx, root, inode.RootIno, 0, 0, 1), syscall.EISDIR)
		_, err = fs.Seek(ctx, root, inode.RootIno, 0, true)
		wantErr(t, "seek directory", err, syscall.EISDIR)
		// Growth is reserved against the capacity.
		wantErr(t, "allocate past capacity", fs.Fallocate(ctx, root, f.Ino, 0, 0, 128<<20), syscall.ENOSPC)
		wantErr(t, "zero range past capacity", fs.Fallocate(ctx, root, f.Ino, inode.FallocZeroRange, 0, 128<<20), syscall.ENOSPC)
		// A small (inline on local) file: punch zeroes it, it stays all
		// data.
		g := mustCreate(t, fs, inode.RootIno, "g")
		wantErr(t, "write small", fs.Write(ctx, root, g.Ino, []byte("hello world"), 0), 0)
		wantErr(t, "punch small", fs.Fallocate(ctx, root, g.Ino, inode.FallocPunchHole|inode.FallocKeepSize, 2, 3), 0)
		if n, _ := fs.Read(ctx, root, g.Ino, buf[:20], 0); string(buf[:n]) != "he\x00\x00\x00 world" {
			t.Fatalf("small file after punch: %q", buf[:n])
		}
		if p := seek0(t, fs, g.Ino, 0, true); p != 11 {
			t.Errorf("SEEK_HOLE of a small file = %d", p)
		}
		_ = unit
	})
}

func seek0(t *testing.T, fs *inode.FS, ino inode.Ino, off uint64, hole bool) uint64 {
	t.Helper()
	p, err := fs.Seek(ctx, root, ino, off, hole)
	if err != nil {
		t.Fatalf("seek: %v", err)
	}
	return p
}

// plainEngine hides an engine's optional capabilities.
type plainEngine struct{ vfsbackend.Backend }

// Without allocation in the engine, every call keeps its data semantics.
func TestFallocateWithoutEngineSupport(t *testing.T) {
	fs, err := inode.Open(ctx, plainEngine{mem.New(vfsbackend.Options{})}, inode.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inodetest.MustCheck(t, fs)
	f := mustCreate(t, fs, inode.RootIno, "f")
	wantErr(t, "write", fs.Write(ctx, root, f.Ino, bytes.Repeat([]byte("x"), 100), 0), 0)
	wantErr(t, "punch", fs.Fallocate(ctx, root, f.Ino, inode.FallocPunchHole|inode.FallocKeepSize, 10, 10), 0)
	wantErr(t, "allocate", fs.Fallocate(ctx, root, f.Ino, 0, 0, 200), 0)
	buf := make([]byte, 300)
	n, err := fs.Read(ctx, root, f.Ino, buf, 0)
	if err != nil || n != 200 || !bytes.Equal(buf[:10], bytes.Repeat([]byte("x"), 10)) ||
		!bytes.Equal(buf[10:20], make([]byte, 10)) || !bytes.Equal(buf[100:200], make([]byte, 100)) {
		t.Fatalf("read %d %v %q", n, err, buf[:n])
	}
	if p := seek0(t, fs, f.Ino, 0, true); p != 200 {
		t.Errorf("SEEK_HOLE = %d, want the size", p)
	}
	if p := seek0(t, fs, f.Ino, 5, false); p != 5 {
		t.Errorf("SEEK_DATA = %d", p)
	}
	if b := fs.Blocks(ctx, attr(t, fs, f.Ino)); b != 1 {
		t.Errorf("blocks = %d, want the size rounded up", b)
	}
}
