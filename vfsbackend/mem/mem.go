// Package mem is an in-memory storage engine. It keeps nothing across
// restarts and exists for tests and for the conformance suite's reference
// behaviour. Data objects are stored in fixed-size chunks so that holes cost
// nothing.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"syscall"

	"github.com/google/btree"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// chunkSize is the granularity of data storage. Unwritten chunks are holes.
const chunkSize = 64 << 10

type kv struct {
	key, value []byte
}

func lessKV(a, b kv) bool { return bytes.Compare(a.key, b.key) < 0 }

type object struct {
	size   int64
	chunks map[int64][]byte // chunk index -> chunkSize bytes
}

// Backend is the in-memory engine.
type Backend struct {
	capacity uint64

	mu      sync.RWMutex // protects everything below
	meta    *btree.BTreeG[kv]
	objects map[vfsbackend.Ino]*object
	used    uint64 // bytes held by keys, values and chunks
	closed  bool
}

var _ vfsbackend.Backend = (*Backend)(nil)

// New returns an empty in-memory engine.
func New(opts vfsbackend.Options) *Backend {
	c := opts.CapacityBytes
	if c == 0 {
		c = 1 << 30
	}
	return &Backend{
		capacity: c,
		meta:     btree.NewG(32, lessKV),
		objects:  map[vfsbackend.Ino]*object{},
	}
}

func init() {
	if err := vfsbackend.Register("memory", func(o vfsbackend.Options) (vfsbackend.Backend, error) { return New(o), nil }); err != nil {
		panic(err) // only reachable by a programming error at init time
	}
}

func (b *Backend) check() error {
	if b.closed {
		return fmt.Errorf("mem: closed: %w", syscall.EIO)
	}
	return nil
}

// Get implements vfsbackend.Backend.
func (b *Backend) Get(_ context.Context, key []byte) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return nil, err
	}
	it, ok := b.meta.Get(kv{key: key})
	if !ok {
		return nil, fmt.Errorf("mem: get %q: %w", key, syscall.ENOENT)
	}
	return bytes.Clone(it.value), nil
}

// Scan implements vfsbackend.Backend.
func (b *Backend) Scan(_ context.Context, prefix, start []byte, fn func(key, value []byte) bool) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return err
	}
	from := prefix
	if bytes.Compare(start, prefix) > 0 {
		from = start
	}
	b.meta.AscendGreaterOrEqual(kv{key: from}, func(it kv) bool {
		if !bytes.HasPrefix(it.key, prefix) {
			return false
		}
		return fn(it.key, it.value)
	})
	return nil
}

// Commit implements vfsbackend.Backend.
func (b *Backend) Commit(_ context.Context, batch *vfsbackend.Batch) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return err
	}
	if batch == nil {
		return nil
	}
	var grow uint64
	for _, op := range batch.Ops {
		if !op.Delete {
			grow += uint64(len(op.Key) + len(op.Value))
		}
	}
	if b.used+grow > b.capacity {
		return fmt.Errorf("mem: commit: %w", syscall.ENOSPC)
	}
	for _, op := range batch.Ops {
		if op.Delete {
			if old, ok := b.meta.Delete(kv{key: op.Key}); ok {
				b.used -= uint64(len(old.key) + len(old.value))
			}
			continue
		}
		it := kv{key: bytes.Clone(op.Key), value: bytes.Clone(op.Value)}
		if old, ok := b.meta.ReplaceOrInsert(it); ok {
			b.used -= uint64(len(old.key) + len(old.value))
		}
		b.used += uint64(len(it.key) + len(it.value))
	}
	return nil
}

// ReadData implements vfsbackend.Backend.
func (b *Backend) ReadData(_ context.Context, ino vfsbackend.Ino, p []byte, off int64) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("mem: read %d at %d: %w", ino, off, syscall.EINVAL)
	}
	o := b.objects[ino]
	if o == nil || off >= o.size {
		return 0, nil
	}
	n := int(min(int64(len(p)), o.size-off))
	for done := 0; done < n; {
		pos := off + int64(done)
		idx, in := pos/chunkSize, int(pos%chunkSize)
		m := min(n-done, chunkSize-in)
		if c := o.chunks[idx]; c != nil {
			copy(p[done:done+m], c[in:in+m])
		} else {
			clear(p[done : done+m])
		}
		done += m
	}
	return n, nil
}

// WriteData implements vfsbackend.Backend.
func (b *Backend) WriteData(_ context.Context, ino vfsbackend.Ino, p []byte, off int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return err
	}
	if off < 0 {
		return fmt.Errorf("mem: write %d at %d: %w", ino, off, syscall.EINVAL)
	}
	if off > math.MaxInt64-int64(len(p)) {
		return fmt.Errorf("mem: write %d at %d: %w", ino, off, syscall.EFBIG)
	}
	if len(p) == 0 {
		// Like pwrite(2): nothing is written, the object does not grow.
		return nil
	}
	o := b.objects[ino]
	if o == nil {
		o = &object{chunks: map[int64][]byte{}}
		b.objects[ino] = o
	}
	var newChunks uint64
	for idx := off / chunkSize; idx*chunkSize < off+int64(len(p)); idx++ {
		if o.chunks[idx] == nil {
			newChunks++
		}
	}
	if b.used+newChunks*chunkSize > b.capacity {
		return fmt.Errorf("mem: write %d: %w", ino, syscall.ENOSPC)
	}
	for done := 0; done < len(p); {
		pos := off + int64(done)
		idx, in := pos/chunkSize, int(pos%chunkSize)
		m := min(len(p)-done, chunkSize-in)
		c := o.chunks[idx]
		if c == nil {
			c = make([]byte, chunkSize)
			o.chunks[idx] = c
			b.used += chunkSize
		}
		copy(c[in:in+m], p[done:done+m])
		done += m
	}
	o.size = max(o.size, off+int64(len(p)))
	return nil
}

// TruncateData implements vfsbackend.Backend.
func (b *Backend) TruncateData(_ context.Context, ino vfsbackend.Ino, size int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("mem: truncate %d to %d: %w", ino, size, syscall.EINVAL)
	}
	o := b.objects[ino]
	if o == nil {
		if size == 0 {
			return nil
		}
		o = &object{chunks: map[int64][]byte{}}
		b.objects[ino] = o
	}
	if size < o.size {
		for idx, c := range o.chunks {
			start := idx * chunkSize
			switch {
			case start >= size:
				delete(o.chunks, idx)
				b.used -= chunkSize
			case start+chunkSize > size:
				clear(c[size-start:])
			}
		}
	}
	o.size = size
	return nil
}

// DeleteData implements vfsbackend.Backend.
func (b *Backend) DeleteData(_ context.Context, ino vfsbackend.Ino) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return err
	}
	if o := b.objects[ino]; o != nil {
		b.used -= uint64(len(o.chunks)) * chunkSize
		delete(b.objects, ino)
	}
	return nil
}

// SyncData implements vfsbackend.Backend; memory has nothing to sync.
func (b *Backend) SyncData(context.Context, vfsbackend.Ino) error {
	return b.Sync(context.Background())
}

// Sync implements vfsbackend.Backend; memory has nothing to sync.
func (b *Backend) Sync(context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.check()
}

// ListData implements vfsbackend.Backend.
func (b *Backend) ListData(_ context.Context, fn func(ino vfsbackend.Ino, size int64) bool) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return err
	}
	for ino, o := range b.objects {
		if !fn(ino, o.size) {
			break
		}
	}
	return nil
}

// Usage implements vfsbackend.Backend.
func (b *Backend) Usage(context.Context) (vfsbackend.Usage, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(); err != nil {
		return vfsbackend.Usage{}, err
	}
	free := b.capacity - min(b.used, b.capacity)
	return vfsbackend.Usage{TotalBytes: b.capacity, FreeBytes: free, AvailBytes: free}, nil
}

// Close implements vfsbackend.Backend.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}
