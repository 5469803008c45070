package client

import (
	"bytes"
	"context"
	"syscall"
	"testing"
)

func TestDaemonCopyRange(t *testing.T) {
	d := startDaemon(t)
	_, m := dialMount(t, d.tcp(), alice)
	ctx := context.Background()
	root := m.RootInode()
	src := must[Stat](t, "Create")(m.Create(ctx, root, "src", 0o644))
	dst := must[Stat](t, "Create")(m.Create(ctx, root, "dst", 0o644))
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640000 bytes
	for off := 0; off < len(data); off += 128 << 10 {
		end := min(off+128<<10, len(data))
		if _, err := m.Write(ctx, src.Ino, data[off:end], uint64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if n := must[uint64](t, "CopyRange")(m.CopyRange(ctx, src.Ino, 16, dst.Ino, 4096, 600000)); n != 600000 {
		t.Fatalf("copied %d", n)
	}
	if n := must[uint64](t, "CopyRange at end")(m.CopyRange(ctx, src.Ino, 639990, dst.Ino, 0, 100)); n != 10 {
		t.Fatalf("copied %d at the end", n)
	}
	want := make([]byte, 4096+600000)
	copy(want[4096:], data[16:600016])
	copy(want, data[639990:])
	got := make([]byte, len(want)+10)
	if n, err := m.Read(ctx, dst.Ino, got, 0); err != nil || n != len(want) || !bytes.Equal(got[:n], want) {
		t.Fatalf("dst: %d bytes, %v", n, err)
	}
	wantErrno(t, "overlap", errOf(m.CopyRange(ctx, src.Ino, 0, src.Ino, 10, 100)), syscall.EINVAL)
	wantErrno(t, "directory", errOf(m.CopyRange(ctx, root, 0, dst.Ino, 0, 1)), syscall.EISDIR)
	wantErrno(t, "missing", errOf(m.CopyRange(ctx, 1<<40, 0, dst.Ino, 0, 1)), syscall.ENOENT)
}
