package inode

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Several gateways on one volume.
//
// On an engine that several gateways change at once
// (vfsbackend.SharedEngine), FS's own locks only order the calls of this
// process. Every call that changes metadata therefore runs as attempts:
// each attempt reads through a context carrying a vfsbackend.ReadSet, and
// its commit succeeds only if no key it read changed meanwhile; otherwise
// the engine refuses it (vfsbackend.ErrConflict), nothing changed, and the
// call starts again from the beginning, re-reading everything. A call that
// ends without committing (an error such as EEXIST or ENOENT, or a rename
// onto itself) first validates its reads, so that its answer comes from
// one consistent state of the volume, and starts again if they changed.
//
// What each gateway could keep in memory is derived from the engine
// instead: inode numbers come from the engine's allocator, the inode count
// is counted when asked for (StatFS), and nothing else is cached.

// maxAttempts bounds the attempts of one call that keeps losing races
// with other gateways; it then fails with EAGAIN.
const maxAttempts = 64

// probeShared finds out whether several gateways may change the volume.
func (fs *FS) probeShared(ctx context.Context) error {
	s, ok := fs.be.(vfsbackend.SharedEngine)
	if !ok {
		return nil
	}
	if err := s.ValidateReads(ctx); errors.Is(err, errors.ErrUnsupported) {
		return nil
	} else if err != nil {
		return fmt.Errorf("open volume: shared engine: %w", err)
	}
	fs.shared = s
	if p, ok := fs.be.(vfsbackend.Pinner); ok && !fs.readOnly {
		if _, err := p.Pinned(ctx, 0); err == nil {
			fs.pinner = p
		} else if !errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("open volume: open files: %w", err)
		}
	}
	return nil
}

// Shared says whether the volume's engine lets several gateways change it
// at once.
func (fs *FS) Shared() bool { return fs.shared != nil }

// optimistic runs fn, a call that may change metadata, as attempts (see
// above). Without a shared engine it runs fn once, as it is.
func (fs *FS) optimistic(ctx context.Context, fn func(ctx context.Context) error) error {
	if fs.shared == nil {
		return fn(ctx)
	}
	for attempt := 0; ; attempt++ {
		actx, rs := vfsbackend.WithReadSet(ctx)
		if attempt > 0 {
			rs.ReadThrough() // no cached value nor assumption of the engine's lost again
		}
		err := fn(actx)
		conflict := errors.Is(err, vfsbackend.ErrConflict)
		switch {
		case rs.Committed():
			// Done: a later failure (rare: the commit of a second batch)
			// is not retried, since the first one stands.
			if conflict {
				return fmt.Errorf("%w: %w", err, syscall.EIO)
			}
			return err
		case !conflict && !rs.Empty():
			verr := fs.shared.ValidateReads(actx)
			if verr == nil {
				return err
			}
			if !errors.Is(verr, vfsbackend.ErrConflict) {
				if err != nil {
					return err
				}
				return verr
			}
		case !conflict:
			return err
		}
		if attempt+1 >= maxAttempts {
			return fmt.Errorf("%d attempts lost races with other gateways: %w: %w", maxAttempts, vfsbackend.ErrConflict, syscall.EAGAIN)
		}
		// Back off a little, more after each loss, at random so that the
		// gateways that collided do not collide again.
		d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// optimistic1 is optimistic for calls that return a value.
func optimistic1[T any](ctx context.Context, fs *FS, fn func(ctx context.Context) (T, error)) (T, error) {
	var v T
	err := fs.optimistic(ctx, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	})
	return v, err
}

// cutLeftovers cuts ino's data object to size, the file's committed size,
// before a call grows the file, so that nothing a failed call left beyond
// the size shows through.
//
// On a shared volume the bytes beyond the size may be another gateway's
// write in progress (data first, then the record). Cutting them is safe:
// the cut is conditional on the call's reads (an engine with a read set
// refuses a data change for a call whose reads changed, so a cut never
// works from a stale size), and the other gateway's commit then fails,
// since its data changed after it wrote it, and it writes again.
func (fs *FS) cutLeftovers(ctx context.Context, ino Ino, size uint64) error {
	return fs.be.TruncateData(ctx, ino, int64(size))
}

// undoGrowth cuts the data a failed call wrote beyond the file's size
// (oldSize), or marks the inode untidy if that fails. A call that lost a
// race (ErrConflict) leaves it: its cut would be refused for the same
// reason, and its next attempt writes again.
func (fs *FS) undoGrowth(ctx context.Context, ino Ino, oldSize uint64) {
	if err := fs.be.TruncateData(ctx, ino, int64(oldSize)); err != nil && !errors.Is(err, vfsbackend.ErrConflict) {
		fs.markUntidy(ino)
	}
}
