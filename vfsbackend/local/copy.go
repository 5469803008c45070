package local

import (
	"context"
	"errors"
	"fmt"
	"math"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// CopyData copies n bytes of src's data file at srcOff into dst's at
// dstOff with copy_file_range(2): the kernel copies (or, on filesystems
// that can, shares extents), nothing passes through the daemon. It returns
// the bytes copied: fewer than n when src's file ends, or when the kernel
// stops early (the caller copies the rest). Inline objects, a missing
// object, or a kernel or filesystem without copy_file_range give an error
// wrapping errors.ErrUnsupported (the caller copies through a buffer).
func (b *Backend) CopyData(ctx context.Context, src vfsbackend.Ino, srcOff int64, dst vfsbackend.Ino, dstOff int64, n int64) (int64, error) {
	if err := checkWrite(ctx, b); err != nil {
		return 0, err
	}
	if srcOff < 0 || dstOff < 0 || n < 0 || dstOff > math.MaxInt64-n {
		return 0, fmt.Errorf("local: copy %d bytes from %d at %d to %d at %d: %w", n, src, srcOff, dst, dstOff, syscall.EINVAL)
	}
	// Both stripes (inline moves), in index order.
	i, j := uint64(src)%uint64(len(b.inoMu)), uint64(dst)%uint64(len(b.inoMu))
	if i > j {
		i, j = j, i
	}
	b.inoMu[i].Lock()
	defer b.inoMu[i].Unlock()
	if j != i {
		b.inoMu[j].Lock()
		defer b.inoMu[j].Unlock()
	}
	if _, ok, err := b.inline(src); err != nil {
		return 0, fmt.Errorf("local: copy from %d: %w", src, err)
	} else if ok {
		return 0, fmt.Errorf("local: copy from %d: inline: %w", src, errors.ErrUnsupported)
	}
	if _, ok, err := b.inline(dst); err != nil {
		return 0, fmt.Errorf("local: copy to %d: %w", dst, err)
	} else if ok {
		return 0, fmt.Errorf("local: copy to %d: inline: %w", dst, errors.ErrUnsupported)
	}
	sdf, err := b.data.acquire(src, false)
	if err != nil {
		return 0, fmt.Errorf("local: copy from %d: %w", src, err)
	}
	if sdf == nil {
		return 0, fmt.Errorf("local: copy from %d: no data file: %w", src, errors.ErrUnsupported)
	}
	defer b.data.release(sdf)
	// The destination file is created if needed (a new file's object
	// becomes a data file: the copy is not inlined).
	ddf, err := b.data.acquire(dst, true)
	if err != nil {
		return 0, fmt.Errorf("local: copy to %d: %w", dst, err)
	}
	defer b.data.release(ddf)
	var done int64
	err = control(sdf.f, func(sfd int) error {
		return control(ddf.f, func(dfd int) error {
			for done < n {
				roff, woff := srcOff+done, dstOff+done
				m, err := unix.CopyFileRange(sfd, &roff, dfd, &woff, int(min(n-done, 1<<30)), 0)
				switch {
				case err == syscall.EINTR:
					continue
				case err != nil:
					return err
				case m == 0:
					return nil // src's file ends
				}
				done += int64(m)
			}
			return nil
		})
	})
	if done > 0 {
		b.data.markDirty(dst)
	}
	if err != nil {
		if done == 0 && (errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EXDEV) ||
			errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL)) {
			return 0, fmt.Errorf("local: copy_file_range: %v: %w", err, errors.ErrUnsupported)
		}
		return done, fmt.Errorf("local: copy %d to %d: %w", src, dst, err)
	}
	return done, nil
}
