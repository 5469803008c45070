package backendtest

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// The optional capabilities package inode uses when an engine has them:
// allocation (fallocate, SEEK_DATA/SEEK_HOLE, allocated bytes) and an
// in-engine copy. Their interfaces are package inode's; these are the
// same method sets.
type allocator interface {
	FallocateData(ctx context.Context, ino vfsbackend.Ino, mode uint32, off, length int64) error
	SeekData(ctx context.Context, ino vfsbackend.Ino, off int64, hole bool) (int64, error)
	AllocatedData(ctx context.Context, ino vfsbackend.Ino) (int64, error)
}

type copier interface {
	CopyData(ctx context.Context, src vfsbackend.Ino, srcOff int64, dst vfsbackend.Ino, dstOff int64, n int64) (int64, error)
}

// testAlloc checks allocation, for engines that have it: a punched range
// reads as zeros, never changes the object's size, and is a hole that
// SEEK_HOLE/SEEK_DATA find (at the engine's granularity); allocation
// counts; ENXIO past the end.
func (s *suite) testAlloc(t *testing.T) {
	e := s.fresh(t)
	a, ok := e.Backend.(allocator)
	if !ok {
		t.Skip("engine has no allocation")
	}
	const size = 1 << 20
	data := pattern(size, 3)
	e.write(5, data, 0)
	full, err := a.AllocatedData(ctx, 5)
	if err != nil || full < size {
		t.Fatalf("AllocatedData of a written object: %d, %v", full, err)
	}
	// Punch [256K, 768K) (KEEP_SIZE|PUNCH_HOLE).
	if err := a.FallocateData(ctx, 5, 0x03, 256<<10, 512<<10); err != nil {
		t.Fatal(err)
	}
	e.wantSize(5, size)
	e.wantData(5, 0, cat(data[:256<<10], zeros(512<<10), data[768<<10:]), 10)
	if n, err := a.AllocatedData(ctx, 5); err != nil || n > full-(256<<10) {
		t.Errorf("AllocatedData after punching 512K: %d (before %d), %v", n, full, err)
	}
	if p, err := a.SeekData(ctx, 5, 0, true); err != nil || p < 256<<10 || p >= 768<<10 {
		t.Errorf("SEEK_HOLE from 0 = %d, %v", p, err)
	}
	if p, err := a.SeekData(ctx, 5, 512<<10, false); err != nil || p != 768<<10 {
		t.Errorf("SEEK_DATA from 512K = %d, %v", p, err)
	}
	if _, err := a.SeekData(ctx, 5, size, false); !errors.Is(err, syscall.ENXIO) {
		t.Errorf("SEEK_DATA at the end: %v", err)
	}
	// Zero range: zeros, size unchanged.
	if err := a.FallocateData(ctx, 5, 0x11, 10, 20); err != nil {
		t.Fatal(err)
	}
	e.wantSize(5, size)
	e.wantData(5, 0, cat(data[:10], zeros(20), data[30:100]), 0)
	// An allocation within the object keeps its data and size.
	if err := a.FallocateData(ctx, 5, 0x01, 0, size); err != nil {
		t.Fatal(err)
	}
	e.wantSize(5, size)
	e.wantData(5, 768<<10, data[768<<10:(768<<10)+100], 0)
	// A small object punched whole (engines may keep small objects apart,
	// e.g. inline in their metadata): zeros, the same size, and a hole
	// that SEEK_DATA skips, with nothing allocated. A 4 KiB file punched
	// and queried with FSCTL_QUERY_ALLOCATED_RANGES is what an SMB client
	// (smbtorture's smb2.ioctl.sparse_punch) does.
	small := pattern(4096, 4)
	e.write(7, small, 0)
	if err := a.FallocateData(ctx, 7, 0x03, 0, 4096); err != nil {
		t.Fatal(err)
	}
	e.wantSize(7, 4096)
	e.wantData(7, 0, zeros(4096), 0)
	if p, err := a.SeekData(ctx, 7, 0, false); !errors.Is(err, syscall.ENXIO) {
		t.Errorf("SEEK_DATA in a small object punched whole = %d, %v (want ENXIO)", p, err)
	}
	if p, err := a.SeekData(ctx, 7, 0, true); err != nil || p != 0 {
		t.Errorf("SEEK_HOLE in a small object punched whole = %d, %v (want 0)", p, err)
	}
	if n, err := a.AllocatedData(ctx, 7); err != nil || n != 0 {
		t.Errorf("AllocatedData of a small object punched whole: %d, %v", n, err)
	}
	// A small object's bytes zeroed (ZERO_RANGE) are still data.
	e.write(8, small[:100], 0)
	if err := a.FallocateData(ctx, 8, 0x11, 0, 100); err != nil {
		t.Fatal(err)
	}
	e.wantData(8, 0, zeros(100), 0)
	if p, err := a.SeekData(ctx, 8, 0, false); err != nil || p != 0 {
		t.Errorf("SEEK_DATA in a zeroed small object = %d, %v (want 0)", p, err)
	}
	// A missing object: nothing to do, nothing allocated.
	if err := a.FallocateData(ctx, 6, 0x03, 0, 10); err != nil {
		t.Errorf("punch of a missing object: %v", err)
	}
	if n, err := a.AllocatedData(ctx, 6); err != nil || n != 0 {
		t.Errorf("AllocatedData of a missing object: %d, %v", n, err)
	}
}

// testCopy checks the in-engine copy, for engines that have it: what it
// copies reads back, it extends the destination as a write does, it stops
// at the source's end, and errors.ErrUnsupported means nothing was copied.
func (s *suite) testCopy(t *testing.T) {
	e := s.fresh(t)
	c, ok := e.Backend.(copier)
	if !ok {
		t.Skip("engine has no copy")
	}
	src := pattern(300000, 9)
	e.write(5, src, 0)
	n, err := c.CopyData(ctx, 5, 100, 6, 50, 200000)
	if errors.Is(err, errors.ErrUnsupported) {
		if n != 0 {
			t.Fatalf("unsupported copy copied %d", n)
		}
		t.Skip("copy unsupported here")
	}
	if err != nil || n != 200000 {
		t.Fatalf("CopyData = %d, %v", n, err)
	}
	e.wantData(6, 0, cat(zeros(50), src[100:200100]), 10)
	if n, err := c.CopyData(ctx, 5, 299990, 6, 0, 100); err != nil || n != 10 {
		t.Fatalf("CopyData at the end of the source = %d, %v", n, err)
	}
	got := e.read(6, 0, 10)
	if !bytes.Equal(got, src[299990:]) {
		t.Fatal("data copied at the end of the source")
	}
}
