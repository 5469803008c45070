package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Allocation (fallocate, SEEK_DATA/SEEK_HOLE, allocated bytes), for
// package inode's optional allocator capability: fallocate(2), lseek(2)
// and stat(2) on the data files, so that sparse files are sparse on disk
// and report it.
//
// Inline objects (small files, inline.go) count as fully allocated and as
// all data: a zero range zeroes their bytes in place (one WAL record) and
// an allocation is a no-op; they stay inline. A punch moves the object to
// a data file (toFile) and punches the file, so that the hole is a hole:
// SEEK_DATA skips it and the allocated bytes drop, as for a large file
// (an SMB client's FSCTL_QUERY_ALLOCATED_RANGES asks exactly that). Where
// the filesystem cannot punch (EOPNOTSUPP), the inline bytes are zeroed in
// place instead.

const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
	seekData        = 3 // SEEK_DATA
	seekHole        = 4 // SEEK_HOLE
)

// control runs fn on df's descriptor (without os.File.Fd's side effects).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// fallocate is fallocate(2), retried on EINTR.
func fallocate(fd int, mode uint32, off, length int64) error {
	for {
		err := syscall.Fallocate(fd, mode, off, length)
		if err != syscall.EINTR {
			return err
		}
	}
}

// FallocateData applies fallocate(2) with mode (KEEP_SIZE always added:
// the object's size is package inode's to set) to ino's data file. A
// missing object is left alone. A filesystem without fallocate gives an
// error wrapping EOPNOTSUPP.
func (b *Backend) FallocateData(ctx context.Context, ino vfsbackend.Ino, mode uint32, off, length int64) error {
	if err := checkWrite(ctx, b); err != nil {
		return err
	}
	if off < 0 || length <= 0 {
		return fmt.Errorf("local: fallocate %d: %d bytes at %d: %w", ino, length, off, syscall.EINVAL)
	}
	mu := b.lockIno(ino)
	defer mu.Unlock()
	cur, ok, err := b.inline(ino)
	if err != nil {
		return fmt.Errorf("local: fallocate %d: %w", ino, err)
	}
	if ok {
		if mode&(fallocPunchHole|fallocZeroRange) == 0 || off >= int64(len(cur)) {
			return nil
		}
		if mode&fallocPunchHole != 0 {
			err := b.toFile(ino, cur, func(f *os.File) error {
				return control(f, func(fd int) error { return fallocate(fd, mode|fallocKeepSize, off, length) })
			})
			if !errors.Is(err, syscall.EOPNOTSUPP) {
				return err
			}
		}
		data := make([]byte, len(cur))
		copy(data, cur)
		clear(data[off:min(off+length, int64(len(data)))])
		if err := b.putInline(ino, data, false); err != nil {
			return fmt.Errorf("local: fallocate %d: %w", ino, err)
		}
		return nil
	}
	df, err := b.data.acquire(ino, false)
	if err != nil {
		return fmt.Errorf("local: fallocate %d: %w", ino, err)
	}
	if df == nil {
		return nil
	}
	defer b.data.release(df)
	err = control(df.f, func(fd int) error { return fallocate(fd, mode|fallocKeepSize, off, length) })
	b.data.markDirty(ino)
	if err != nil {
		return fmt.Errorf("local: fallocate %d: %w", ino, err)
	}
	return nil
}

// SeekData is lseek(2) SEEK_DATA/SEEK_HOLE on ino's data file; the
// file's offset is not used by anything else (data files are only read
// and written with positional calls).
func (b *Backend) SeekData(ctx context.Context, ino vfsbackend.Ino, off int64, hole bool) (int64, error) {
	if err := checkCtx(ctx, b); err != nil {
		return 0, err
	}
	data, ok, err := b.inline(ino)
	if err != nil {
		return 0, fmt.Errorf("local: seek %d: %w", ino, err)
	}
	if ok {
		switch {
		case off < 0 || off >= int64(len(data)):
			return 0, fmt.Errorf("local: seek %d to %d: %w", ino, off, syscall.ENXIO)
		case hole:
			return int64(len(data)), nil
		default:
			return off, nil
		}
	}
	df, err := b.data.acquire(ino, false)
	if err != nil {
		return 0, fmt.Errorf("local: seek %d: %w", ino, err)
	}
	if df == nil {
		return 0, fmt.Errorf("local: seek %d: no data: %w", ino, syscall.ENXIO)
	}
	defer b.data.release(df)
	whence := seekData
	if hole {
		whence = seekHole
	}
	var pos int64
	err = control(df.f, func(fd int) error {
		var err error
		pos, err = syscall.Seek(fd, off, whence)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("local: seek %d to %d: %w", ino, off, err)
	}
	return pos, nil
}

// AllocatedData returns st_blocks*512 of ino's data file (stat(2) by
// path: no descriptor is opened), or the length of an inline object.
func (b *Backend) AllocatedData(ctx context.Context, ino vfsbackend.Ino) (int64, error) {
	if err := checkCtx(ctx, b); err != nil {
		return 0, err
	}
	if data, ok, err := b.inline(ino); err != nil {
		return 0, fmt.Errorf("local: allocated %d: %w", ino, err)
	} else if ok {
		return int64(len(data)), nil
	}
	var st syscall.Stat_t
	err := syscall.Stat(b.data.path(ino), &st)
	if errors.Is(err, syscall.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("local: stat data %d: %w", ino, err)
	}
	return st.Blocks * 512, nil
}
