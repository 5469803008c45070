package client

import (
	"bytes"
	"context"
	"syscall"
	"testing"
)

// A hole punched in the middle of a written file over the real daemon
// (local engine): SEEK_HOLE/SEEK_DATA find it, st_blocks drops, the data
// reads as zeros there; allocation past the end grows the size.
func TestDaemonFallocateSeek(t *testing.T) {
	d := startDaemon(t)
	_, m := dialMount(t, d.tcp(), alice)
	ctx := context.Background()
	f := must[Stat](t, "Create")(m.Create(ctx, m.RootInode(), "sparse", 0o644))
	const size = 1 << 20
	data := bytes.Repeat([]byte("abcdefgh"), size/8)
	for off := 0; off < size; off += 128 << 10 {
		if _, err := m.Write(ctx, f.Ino, data[off:off+128<<10], uint64(off)); err != nil {
			t.Fatal(err)
		}
	}
	before := must[Stat](t, "GetStat")(m.GetStat(ctx, f.Ino))
	if before.Blocks < size/512 || before.Blksize != 4096 {
		t.Fatalf("written file: blocks %d blksize %d", before.Blocks, before.Blksize)
	}
	if err := m.Fallocate(ctx, f.Ino, FallocPunchHole|FallocKeepSize, 256<<10, 512<<10); err != nil {
		t.Fatal(err)
	}
	after := must[Stat](t, "GetStat")(m.GetStat(ctx, f.Ino))
	if after.Size != size || after.Blocks > before.Blocks-(512<<10)/512 {
		t.Errorf("after punching 512K: size %d blocks %d (before %d)", after.Size, after.Blocks, before.Blocks)
	}
	if js := must[Stat](t, "GetStatPath")(m.GetStatPath(ctx, "sparse")); js != after {
		t.Errorf("JSON stat %+v, binary %+v", js, after)
	}
	if p := must[uint64](t, "SeekHole")(m.SeekHole(ctx, f.Ino, 0)); p != 256<<10 {
		t.Errorf("SeekHole(0) = %d", p)
	}
	if p := must[uint64](t, "SeekData")(m.SeekData(ctx, f.Ino, 300<<10)); p != 768<<10 {
		t.Errorf("SeekData(300K) = %d", p)
	}
	if p := must[uint64](t, "SeekHole")(m.SeekHole(ctx, f.Ino, 800<<10)); p != size {
		t.Errorf("SeekHole(800K) = %d", p)
	}
	wantErrno(t, "SeekData at end", errOf(m.SeekData(ctx, f.Ino, size)), syscall.ENXIO)
	buf := make([]byte, size)
	if n, err := m.Read(ctx, f.Ino, buf, 0); err != nil || n != size {
		t.Fatalf("read %d %v", n, err)
	}
	want := bytes.Clone(data)
	clear(want[256<<10 : 768<<10])
	if !bytes.Equal(buf, want) {
		t.Error("data after punch")
	}
	// Allocate past the end, and the mode rules.
	if err := m.Fallocate(ctx, f.Ino, 0, size, 64<<10); err != nil {
		t.Fatal(err)
	}
	if st := must[Stat](t, "GetStat")(m.GetStat(ctx, f.Ino)); st.Size != size+64<<10 || st.Blocks < after.Blocks+(64<<10)/512 {
		t.Errorf("after allocating 64K past the end: %+v", st)
	}
	wantErrno(t, "punch without keep size", m.Fallocate(ctx, f.Ino, FallocPunchHole, 0, 1), syscall.EOPNOTSUPP)
	wantErrno(t, "length 0", m.Fallocate(ctx, f.Ino, 0, 0, 0), syscall.EINVAL)
	wantErrno(t, "directory", m.Fallocate(ctx, m.RootInode(), 0, 0, 1), syscall.EISDIR)
	ents, _, err := m.ReadDirPlus(ctx, m.RootInode(), -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name == "sparse" && (e.Stat.Blocks == 0 || e.Stat.Blksize != 4096) {
			t.Errorf("readdir_plus stat %+v", e.Stat)
		}
	}
}
