package mem

import (
	"context"
	"fmt"
	"syscall"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Allocation (fallocate, SEEK_DATA/SEEK_HOLE, allocated bytes), for
// package inode's optional allocator capability. The unit of allocation
// is the chunk (64 KiB): a chunk that exists is allocated and data, a
// missing one is a hole. Only the range within the object's size is
// allocated (a KEEP_SIZE preallocation past the end is ignored).

const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
)

// FallocateData allocates (mode 0 or KEEP_SIZE: zero-filled chunks),
// punches (PUNCH_HOLE: chunks wholly inside the range are dropped, the
// rest zeroed) or zeroes (ZERO_RANGE: zeroed and allocated) a range of
// ino's object. It never changes the object's size.
func (b *Backend) FallocateData(_ context.Context, ino vfsbackend.Ino, mode uint32, off, length int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return err
	}
	if off < 0 || length <= 0 {
		return fmt.Errorf("mem: fallocate %d: %d bytes at %d: %w", ino, length, off, syscall.EINVAL)
	}
	o := b.objects[ino]
	if o == nil || off >= o.size {
		return nil
	}
	end := min(off+length, o.size)
	punch := mode&fallocPunchHole != 0
	if !punch {
		var newChunks uint64
		for idx := off / chunkSize; idx*chunkSize < end; idx++ {
			if o.chunks[idx] == nil {
				newChunks++
			}
		}
		if b.used+newChunks*chunkSize > b.capacity {
			return fmt.Errorf("mem: fallocate %d: %w", ino, syscall.ENOSPC)
		}
	}
	for idx := off / chunkSize; idx*chunkSize < end; idx++ {
		start := idx * chunkSize
		lo, hi := max(off, start)-start, min(end, start+chunkSize)-start
		c := o.chunks[idx]
		switch {
		case punch && c != nil && lo == 0 && (hi == chunkSize || start+hi >= o.size):
			delete(o.chunks, idx)
			b.used -= chunkSize
		case c == nil && !punch:
			o.chunks[idx] = make([]byte, chunkSize)
			b.used += chunkSize
		case c != nil && mode&(fallocPunchHole|fallocZeroRange) != 0:
			clear(c[lo:hi])
		}
	}
	return nil
}

// SeekData is SEEK_DATA/SEEK_HOLE by chunk; ENXIO at or past the end, or
// when no data follows off.
func (b *Backend) SeekData(_ context.Context, ino vfsbackend.Ino, off int64, hole bool) (int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return 0, err
	}
	o := b.objects[ino]
	if o == nil || off < 0 || off >= o.size {
		return 0, fmt.Errorf("mem: seek %d to %d: %w", ino, off, syscall.ENXIO)
	}
	for idx := off / chunkSize; idx*chunkSize < o.size; idx++ {
		if (o.chunks[idx] == nil) == hole {
			return max(off, idx*chunkSize), nil
		}
	}
	if hole {
		return o.size, nil
	}
	return 0, fmt.Errorf("mem: seek %d: no data after %d: %w", ino, off, syscall.ENXIO)
}

// AllocatedData returns the bytes of ino's chunks.
func (b *Backend) AllocatedData(_ context.Context, ino vfsbackend.Ino) (int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return 0, err
	}
	if o := b.objects[ino]; o != nil {
		return int64(len(o.chunks)) * chunkSize, nil
	}
	return 0, nil
}
