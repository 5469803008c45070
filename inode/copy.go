package inode

import (
	"context"
	"fmt"
	"syscall"
)

// MaxCopyRange is the most CopyRange copies in one call; a caller that
// wants more calls again from where it stopped (as with
// copy_file_range(2), a short copy is not an error).
const MaxCopyRange = 64 << 20

// copier is the optional engine capability behind CopyRange: copy n bytes
// of src's data object at srcOff into dst's at dstOff inside the engine
// (copy_file_range(2) between data files), extending dst's object as a
// write would. It returns how many bytes it copied; an error wrapping
// errors.ErrUnsupported (with 0 copied) when it cannot for these objects
// (one is inline, or missing), and then package inode copies through a
// buffer. Fewer bytes than n with a nil error mean src's object ended.
type copier interface {
	CopyData(ctx context.Context, src Ino, srcOff int64, dst Ino, dstOff int64, n int64) (int64, error)
}

// CopyRange copies up to length bytes of regular file src at srcOff into
// regular file dst at dstOff, inside the server, and returns how many it
// copied: fewer at the end of src (0 at or past it), and at most
// MaxCopyRange. dst grows as a write would (a gap reads as zeros), counted
// against the capacity, and gets a new mtime and ctime. Overlapping ranges
// of one file are EINVAL, as with copy_file_range(2); directories are
// EISDIR. c needs read permission on src and write permission on dst,
// whose setuid bit (and setgid with group execute) a copy by anyone but
// root clears, as a write does.
func (fs *FS) CopyRange(ctx context.Context, c Caller, src Ino, srcOff uint64, dst Ino, dstOff uint64, length uint64) (uint64, error) {
	length = min(length, MaxCopyRange)
	if srcOff > MaxFileSize || dstOff > MaxFileSize || length > MaxFileSize-dstOff {
		return 0, fmt.Errorf("copy %d bytes from %d at %d to %d at %d: %w", length, src, srcOff, dst, dstOff, syscall.EFBIG)
	}
	if src == dst && srcOff < dstOff+length && dstOff < srcOff+length && length > 0 {
		return 0, fmt.Errorf("copy within %d: overlapping ranges: %w", src, syscall.EINVAL)
	}
	return optimistic1(ctx, fs, func(ctx context.Context) (uint64, error) {
		return fs.copyRangeOnce(ctx, c, src, srcOff, dst, dstOff, length)
	})
}

func (fs *FS) copyRangeOnce(ctx context.Context, c Caller, src Ino, srcOff uint64, dst Ino, dstOff uint64, length uint64) (uint64, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	// Both stripes, in index order (one if they share it).
	a, b := src%stripes, dst%stripes
	if a > b {
		a, b = b, a
	}
	fs.stripe[a].Lock()
	defer fs.stripe[a].Unlock()
	if b != a {
		fs.stripe[b].Lock()
		defer fs.stripe[b].Unlock()
	}
	sr, err := fs.checkFile(ctx, src)
	if err != nil {
		return 0, err
	}
	dr, err := fs.checkFile(ctx, dst)
	if err != nil {
		return 0, err
	}
	if err := c.may(&sr.Attr, MayRead); err != nil {
		return 0, err
	}
	if err := c.may(&dr.Attr, MayWrite); err != nil {
		return 0, err
	}
	if srcOff >= sr.Size || length == 0 {
		return 0, nil
	}
	n := min(length, sr.Size-srcOff)
	oldSize := dr.Size
	grow := uint64(0)
	if end := dstOff + n; end > oldSize {
		grow = end - oldSize
	}
	if err := fs.reserve(ctx, grow); err != nil {
		return 0, err
	}
	ok := false
	defer func() { fs.settle(grow, ok) }()
	if dstOff > oldSize {
		// A hole, as in Write: nothing a failed call left shows through.
		if err := fs.cutLeftovers(ctx, dst, oldSize); err != nil {
			return 0, err
		}
	}
	undo := func() {
		if grow > 0 {
			fs.undoGrowth(ctx, dst, oldSize)
		}
	}
	if err := fs.copyData(ctx, src, srcOff, dst, dstOff, n); err != nil {
		undo()
		return 0, err
	}
	now := fs.now()
	dr.Size = max(oldSize, dstOff+n)
	dr.Mtime, dr.Ctime = now, now
	c.wrote(&dr.Attr)
	if err := fs.putResized(ctx, dr, oldSize); err != nil {
		undo()
		return 0, err
	}
	ok = true
	return n, nil
}

// copyData copies n bytes, which src's size covers: in the engine where it
// can, the rest through a buffer. Data missing from src's object within
// its size is EIO (missingData), never zeros.
func (fs *FS) copyData(ctx context.Context, src Ino, srcOff uint64, dst Ino, dstOff uint64, n uint64) error {
	done := uint64(0)
	if c, ok := fs.be.(copier); ok {
		m, err := c.CopyData(ctx, src, int64(srcOff), dst, int64(dstOff), int64(n))
		if err != nil && !unsupported(err) {
			return err
		}
		done = uint64(m)
	}
	if done == n {
		return nil
	}
	buf := make([]byte, min(n-done, 1<<20))
	for done < n {
		want := int(min(uint64(len(buf)), n-done))
		m, err := fs.be.ReadData(ctx, src, buf[:want], int64(srcOff+done))
		if err != nil {
			return err
		}
		if m < want {
			if err := fs.missingData(ctx, src, srcOff+done+uint64(m)); err != nil {
				return err
			}
			clear(buf[m:want])
		}
		if err := fs.be.WriteData(ctx, dst, buf[:want], int64(dstOff+done)); err != nil {
			return err
		}
		done += uint64(want)
	}
	return nil
}
