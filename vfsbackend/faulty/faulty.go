// Package faulty wraps a storage engine and makes chosen operations fail
// with a chosen errno, to test that errors such as ENOSPC and EIO reach
// the caller, that nothing already acknowledged is damaged, and that
// service resumes when the fault is gone.
package faulty

import (
	"context"
	"fmt"
	"sync"
	"syscall"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Op names an engine operation that a fault can target.
type Op string

// The operations a fault can target.
const (
	Get      Op = "get"
	Scan     Op = "scan"
	Commit   Op = "commit"
	ReadData Op = "read_data"
	// WriteData faults fail the write before any byte is stored.
	WriteData    Op = "write_data"
	TruncateData Op = "truncate_data"
	DeleteData   Op = "delete_data"
	SyncData     Op = "sync_data"
	Sync         Op = "sync"
)

// Ops lists every Op.
var Ops = []Op{Get, Scan, Commit, ReadData, WriteData, TruncateData, DeleteData, SyncData, Sync}

// Backend is a vfsbackend.Backend whose operations fail on demand. It is
// safe for concurrent use.
type Backend struct {
	vfsbackend.Backend
	mu     sync.Mutex
	faults map[Op]*fault
	hits   map[Op]int
}

type fault struct {
	errno syscall.Errno
	left  int // failures still to inject; < 0 means until cleared
}

// Wrap returns be with no faults set.
func Wrap(be vfsbackend.Backend) *Backend {
	return &Backend{Backend: be, faults: map[Op]*fault{}, hits: map[Op]int{}}
}

// Set makes the next count calls of op fail with errno (count < 0: every
// call until Clear).
func (b *Backend) Set(op Op, errno syscall.Errno, count int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.faults[op] = &fault{errno: errno, left: count}
}

// Clear removes every fault.
func (b *Backend) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.faults = map[Op]*fault{}
}

// Injected returns how many failures were injected into op so far.
func (b *Backend) Injected(op Op) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits[op]
}

// check returns the error to inject for op, if any.
func (b *Backend) check(op Op) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.faults[op]
	if f == nil || f.left == 0 {
		return nil
	}
	if f.left > 0 {
		f.left--
	}
	b.hits[op]++
	return fmt.Errorf("faulty: injected %s: %w", op, f.errno)
}

// Get implements vfsbackend.Backend.
func (b *Backend) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := b.check(Get); err != nil {
		return nil, err
	}
	return b.Backend.Get(ctx, key)
}

// Scan implements vfsbackend.Backend.
func (b *Backend) Scan(ctx context.Context, prefix, start []byte, fn func(k, v []byte) bool) error {
	if err := b.check(Scan); err != nil {
		return err
	}
	return b.Backend.Scan(ctx, prefix, start, fn)
}

// Commit implements vfsbackend.Backend.
func (b *Backend) Commit(ctx context.Context, batch *vfsbackend.Batch) error {
	if err := b.check(Commit); err != nil {
		return err
	}
	return b.Backend.Commit(ctx, batch)
}

// ReadData implements vfsbackend.Backend.
func (b *Backend) ReadData(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) (int, error) {
	if err := b.check(ReadData); err != nil {
		return 0, err
	}
	return b.Backend.ReadData(ctx, ino, p, off)
}

// WriteData implements vfsbackend.Backend.
func (b *Backend) WriteData(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) error {
	if err := b.check(WriteData); err != nil {
		return err
	}
	return b.Backend.WriteData(ctx, ino, p, off)
}

// TruncateData implements vfsbackend.Backend.
func (b *Backend) TruncateData(ctx context.Context, ino vfsbackend.Ino, size int64) error {
	if err := b.check(TruncateData); err != nil {
		return err
	}
	return b.Backend.TruncateData(ctx, ino, size)
}

// DeleteData implements vfsbackend.Backend.
func (b *Backend) DeleteData(ctx context.Context, ino vfsbackend.Ino) error {
	if err := b.check(DeleteData); err != nil {
		return err
	}
	return b.Backend.DeleteData(ctx, ino)
}

// SyncData implements vfsbackend.Backend.
func (b *Backend) SyncData(ctx context.Context, ino vfsbackend.Ino) error {
	if err := b.check(SyncData); err != nil {
		return err
	}
	return b.Backend.SyncData(ctx, ino)
}

// Sync implements vfsbackend.Backend.
func (b *Backend) Sync(ctx context.Context) error {
	if err := b.check(Sync); err != nil {
		return err
	}
	return b.Backend.Sync(ctx)
}
