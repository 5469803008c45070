package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// allocEngine is the optional allocation capability of an engine (see
// package inode's allocator), passed through by the wrapper, timed.
type allocEngine interface {
	FallocateData(ctx context.Context, ino vfsbackend.Ino, mode uint32, off, length int64) error
	SeekData(ctx context.Context, ino vfsbackend.Ino, off int64, hole bool) (int64, error)
	AllocatedData(ctx context.Context, ino vfsbackend.Ino) (int64, error)
}

var errNoAlloc = fmt.Errorf("engine has no allocation: %w", errors.ErrUnsupported)

func (b *instrumented) FallocateData(ctx context.Context, ino vfsbackend.Ino, mode uint32, off, length int64) error {
	a, ok := b.Backend.(allocEngine)
	if !ok {
		return errNoAlloc
	}
	t := time.Now()
	err := a.FallocateData(ctx, ino, mode, off, length)
	b.m.engineOp(b.volume, "fallocate_data", t, err)
	return err
}

func (b *instrumented) SeekData(ctx context.Context, ino vfsbackend.Ino, off int64, hole bool) (int64, error) {
	a, ok := b.Backend.(allocEngine)
	if !ok {
		return 0, errNoAlloc
	}
	return a.SeekData(ctx, ino, off, hole) // ENXIO is an answer: not timed as a failure
}

func (b *instrumented) AllocatedData(ctx context.Context, ino vfsbackend.Ino) (int64, error) {
	a, ok := b.Backend.(allocEngine)
	if !ok {
		return 0, errNoAlloc
	}
	return a.AllocatedData(ctx, ino)
}

// copyEngine is the optional in-engine copy (package inode's copier).
type copyEngine interface {
	CopyData(ctx context.Context, src vfsbackend.Ino, srcOff int64, dst vfsbackend.Ino, dstOff int64, n int64) (int64, error)
}

func (b *instrumented) CopyData(ctx context.Context, src vfsbackend.Ino, srcOff int64, dst vfsbackend.Ino, dstOff int64, n int64) (int64, error) {
	c, ok := b.Backend.(copyEngine)
	if !ok {
		return 0, fmt.Errorf("engine has no copy: %w", errors.ErrUnsupported)
	}
	t := time.Now()
	m, err := c.CopyData(ctx, src, srcOff, dst, dstOff, n)
	merr := err
	if errors.Is(err, errors.ErrUnsupported) {
		merr = nil // the caller copies through a buffer: not a failure
	}
	b.m.engineOp(b.volume, "copy_data", t, merr)
	return m, err
}

func (b *instrumented) AllocInos(ctx context.Context, n uint64, min vfsbackend.Ino) (vfsbackend.Ino, error) {
	a, ok := b.Backend.(vfsbackend.InoAllocator)
	if !ok {
		return 0, fmt.Errorf("engine has no inode allocator: %w", errors.ErrUnsupported)
	}
	t := time.Now()
	first, err := a.AllocInos(ctx, n, min)
	b.m.engineOp(b.volume, "alloc_inos", t, err)
	return first, err
}

var errNotShared = fmt.Errorf("engine is not shared between gateways: %w", errors.ErrUnsupported)

// ValidateReads passes vfsbackend.SharedEngine through, timed.
func (b *instrumented) ValidateReads(ctx context.Context) error {
	s, ok := b.Backend.(vfsbackend.SharedEngine)
	if !ok {
		return errNotShared
	}
	t := time.Now()
	err := s.ValidateReads(ctx)
	merr := err
	if errors.Is(err, vfsbackend.ErrConflict) {
		merr = nil // an answer (the caller starts again), not a failure
	}
	b.m.engineOp(b.volume, "validate_reads", t, merr)
	return err
}

// CountKeys passes vfsbackend.SharedEngine through, timed.
func (b *instrumented) CountKeys(ctx context.Context, prefix []byte) (uint64, error) {
	s, ok := b.Backend.(vfsbackend.SharedEngine)
	if !ok {
		return 0, errNotShared
	}
	t := time.Now()
	n, err := s.CountKeys(ctx, prefix)
	b.m.engineOp(b.volume, "count_keys", t, err)
	return n, err
}

// AssumeAbsent passes vfsbackend.SharedEngine through (it does no I/O).
func (b *instrumented) AssumeAbsent(ctx context.Context, key []byte) bool {
	s, ok := b.Backend.(vfsbackend.SharedEngine)
	return ok && s.AssumeAbsent(ctx, key)
}

var errNoPins = fmt.Errorf("engine keeps no open files: %w", errors.ErrUnsupported)

// Pin passes vfsbackend.Pinner through, timed.
func (b *instrumented) Pin(ctx context.Context, ino vfsbackend.Ino) error {
	p, ok := b.Backend.(vfsbackend.Pinner)
	if !ok {
		return errNoPins
	}
	t := time.Now()
	err := p.Pin(ctx, ino)
	merr := err
	if errors.Is(err, vfsbackend.ErrConflict) {
		merr = nil
	}
	b.m.engineOp(b.volume, "pin", t, merr)
	return err
}

// Unpin passes vfsbackend.Pinner through, timed.
func (b *instrumented) Unpin(ctx context.Context, ino vfsbackend.Ino) error {
	p, ok := b.Backend.(vfsbackend.Pinner)
	if !ok {
		return errNoPins
	}
	t := time.Now()
	err := p.Unpin(ctx, ino)
	b.m.engineOp(b.volume, "unpin", t, err)
	return err
}

// Pinned passes vfsbackend.Pinner through.
func (b *instrumented) Pinned(ctx context.Context, ino vfsbackend.Ino) (bool, error) {
	p, ok := b.Backend.(vfsbackend.Pinner)
	if !ok {
		return false, errNoPins
	}
	return p.Pinned(ctx, ino)
}
