package inode

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Fallocate modes (Linux's FALLOC_FL_* bits, as fallocate(2) takes them).
const (
	FallocKeepSize  = 0x01 // FALLOC_FL_KEEP_SIZE: do not change the size
	FallocPunchHole = 0x02 // FALLOC_FL_PUNCH_HOLE: deallocate (with KEEP_SIZE)
	FallocZeroRange = 0x10 // FALLOC_FL_ZERO_RANGE: zero the range
)

// BlockSize is the st_blksize reported for every inode: the preferred
// I/O size.
const BlockSize = 4096

// allocator is the optional engine capability behind Fallocate, Seek and
// Blocks: real allocation of data objects. Engines without it (or
// wrappers of one without it, which return errors wrapping
// errors.ErrUnsupported) still give every call its data semantics: a
// punched or zeroed range reads as zeros, a hole is only at the end of the
// file, and a file's blocks are its size rounded up.
type allocator interface {
	// FallocateData applies fallocate(2) to ino's data object: mode is a
	// combination of the Falloc* bits. It never changes the object's size
	// (package inode sizes the object itself first): KEEP_SIZE is implied;
	// an allocation past the object's end may be ignored.
	FallocateData(ctx context.Context, ino Ino, mode uint32, off, length int64) error
	// SeekData is lseek(2) SEEK_DATA (hole false) or SEEK_HOLE (hole true)
	// on ino's data object; an error wrapping ENXIO when off is at or past
	// the end, or no data follows it.
	SeekData(ctx context.Context, ino Ino, off int64, hole bool) (int64, error)
	// AllocatedData returns the bytes of storage allocated to ino's data
	// object (st_blocks * 512); 0 when it has none.
	AllocatedData(ctx context.Context, ino Ino) (int64, error)
}

// alloc returns the engine's allocator, or nil.
func (fs *FS) alloc() allocator {
	a, _ := fs.be.(allocator)
	return a
}

func unsupported(err error) bool {
	return errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS)
}

// Fallocate is fallocate(2) on the regular file ino: mode 0 allocates
// [off, off+length) and extends the size if the range ends beyond it;
// FallocKeepSize allocates without changing the size; FallocPunchHole
// (with FallocKeepSize, as Linux requires) deallocates the range, which
// then reads as zeros; FallocZeroRange zeroes the range (extending the size
// unless FallocKeepSize). Any other mode is EOPNOTSUPP; length 0 is
// EINVAL; a range ending beyond MaxFileSize is EFBIG. A change of the
// size, or of the data (punch, zero), sets mtime and ctime. Size growth
// is reserved against the volume's capacity as a write's is.
//
// The data object keeps covering exactly the file's size (keyDataCovers):
// the object is resized to the new size first, and the engine's
// allocation never changes its size (space allocated beyond the size by
// FallocKeepSize is the engine's business, and may be dropped when the
// object is truncated). Punched holes are holes inside the object, not a
// short object.
//
// c needs write permission; a change by anyone but root clears the
// setuid bit (and setgid with group execute), as a write does.
func (fs *FS) Fallocate(ctx context.Context, c Caller, ino Ino, mode uint32, off, length uint64) error {
	switch mode {
	case 0, FallocKeepSize, FallocPunchHole | FallocKeepSize, FallocZeroRange, FallocZeroRange | FallocKeepSize:
	default:
		return fmt.Errorf("fallocate %d: mode %#x: %w", ino, mode, syscall.EOPNOTSUPP)
	}
	if length == 0 {
		return fmt.Errorf("fallocate %d: length 0: %w", ino, syscall.EINVAL)
	}
	if off > MaxFileSize || length > MaxFileSize-off {
		return fmt.Errorf("fallocate %d: %d bytes at %d: %w", ino, length, off, syscall.EFBIG)
	}
	return fs.optimistic(ctx, func(ctx context.Context) error { return fs.fallocateOnce(ctx, c, ino, mode, off, length) })
}

func (fs *FS) fallocateOnce(ctx context.Context, c Caller, ino Ino, mode uint32, off, length uint64) error {
	end := off + length
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	mu := &fs.stripe[ino%stripes]
	mu.Lock()
	defer mu.Unlock()
	r, err := fs.checkFile(ctx, ino)
	if err != nil {
		return err
	}
	if err := c.may(&r.Attr, MayWrite); err != nil {
		return err
	}
	oldSize := r.Size
	newSize := oldSize
	if mode&FallocKeepSize == 0 && end > oldSize {
		newSize = end
	}
	grow := newSize - oldSize
	if err := fs.reserve(ctx, grow); err != nil {
		return err
	}
	ok := false
	defer func() { fs.settle(grow, ok) }()
	if grow > 0 {
		// As SetAttr: cut what a failed call left, then extend the object
		// (sparse) to the new size so that it covers it.
		if err := fs.cutLeftovers(ctx, ino, oldSize); err != nil {
			return err
		}
		if err := fs.be.TruncateData(ctx, ino, int64(newSize)); err != nil {
			fs.markUntidy(ino)
			return err
		}
	}
	undo := func() {
		if grow > 0 {
			fs.undoGrowth(ctx, ino, oldSize)
		}
	}
	// The engine's range: within the new size, except for a KEEP_SIZE
	// preallocation, which the engine may honour beyond it.
	eoff, elen := off, length
	if mode != FallocKeepSize {
		if off >= newSize {
			elen = 0
		} else {
			elen = min(end, newSize) - off
		}
	}
	if elen > 0 {
		if err := fs.fallocateData(ctx, ino, mode, eoff, elen); err != nil {
			undo()
			return err
		}
	}
	if grow > 0 || mode&(FallocPunchHole|FallocZeroRange) != 0 {
		now := fs.now()
		r.Size = newSize
		r.Mtime, r.Ctime = now, now
		c.wrote(&r.Attr)
		if err := fs.putResized(ctx, r, oldSize); err != nil {
			undo()
			return err
		}
	}
	ok = true
	return nil
}

// fallocateData runs the engine's fallocate, or, without one, what gives
// the same data: zeros written over a punched or zeroed range.
func (fs *FS) fallocateData(ctx context.Context, ino Ino, mode uint32, off, length uint64) error {
	if a := fs.alloc(); a != nil {
		err := a.FallocateData(ctx, ino, mode|FallocKeepSize, int64(off), int64(length))
		if err == nil || !unsupported(err) {
			return err
		}
	}
	if mode&(FallocPunchHole|FallocZeroRange) == 0 {
		return nil // allocation is a hint: the object already covers the size
	}
	zeros := make([]byte, min(length, 1<<20))
	for done := uint64(0); done < length; {
		n := min(uint64(len(zeros)), length-done)
		if err := fs.be.WriteData(ctx, ino, zeros[:n], int64(off+done)); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// Seek is lseek(2) SEEK_DATA (hole false) or SEEK_HOLE (hole true) on the
// regular file ino: the offset of the first data (or hole) at or after
// off. The end of the file counts as a hole. ENXIO when off is at or past
// the size, or (SEEK_DATA) only holes follow. On an engine without
// allocation the whole file is data. c needs read permission.
func (fs *FS) Seek(ctx context.Context, c Caller, ino Ino, off uint64, hole bool) (uint64, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	mu := &fs.stripe[ino%stripes]
	mu.Lock()
	defer mu.Unlock()
	r, err := fs.checkFile(ctx, ino)
	if err != nil {
		return 0, err
	}
	if err := c.may(&r.Attr, MayRead); err != nil {
		return 0, err
	}
	if off >= r.Size {
		return 0, fmt.Errorf("seek %d: offset %d at or past size %d: %w", ino, off, r.Size, syscall.ENXIO)
	}
	if a := fs.alloc(); a != nil {
		pos, err := a.SeekData(ctx, ino, int64(off), hole)
		switch {
		case err == nil:
			return min(uint64(pos), r.Size), nil
		case errors.Is(err, syscall.ENXIO):
			if hole {
				return r.Size, nil
			}
			return 0, fmt.Errorf("seek %d: no data after %d: %w", ino, off, syscall.ENXIO)
		case !unsupported(err):
			return 0, err
		}
	}
	if hole {
		return r.Size, nil
	}
	return off, nil
}

// Blocks returns st_blocks of a: the 512-byte blocks allocated to a
// regular file's data (fewer than its size for a sparse file; an engine
// without allocation reports the size rounded up); 0 for directories and
// symlinks, whose space is metadata. An engine error counts as the size
// rounded up (a stat does not fail for it).
func (fs *FS) Blocks(ctx context.Context, a Attr) uint64 {
	if a.Mode&ModeType != ModeRegular {
		return 0
	}
	if al := fs.alloc(); al != nil {
		if n, err := al.AllocatedData(ctx, a.Ino); err == nil {
			return (uint64(n) + 511) / 512
		}
	}
	return (a.Size + 511) / 512
}
