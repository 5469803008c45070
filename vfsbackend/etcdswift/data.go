package etcdswift

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// object is what etcd says about one data object at one revision.
type object struct {
	exists bool
	size   int64
	rev    int64            // the size key's mod revision (0: absent)
	chunks map[int64]string // chunk number -> object name
}

func (b *Backend) sizeKey(ino vfsbackend.Ino) string { return b.sizes + be64(uint64(ino)) }

func (b *Backend) chunkKey(ino vfsbackend.Ino, c int64) string {
	return b.chunks + be64(uint64(ino)) + be64(uint64(c))
}

// chunkEnd is the end of ino's chunk key range.
func (b *Backend) chunkEnd(ino vfsbackend.Ino) string {
	return clientv3.GetPrefixRangeEnd(b.chunks + be64(uint64(ino)))
}

func (b *Backend) objectName(ino vfsbackend.Ino, c int64) (string, error) {
	v, err := randomVersion()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%016x/%016x/%s", uint64(ino), uint64(c), v), nil
}

// load reads ino's size and its chunk keys from first to last (inclusive;
// last < 0: to the end) in one read-only transaction, so they agree.
func (b *Backend) load(ctx context.Context, ino vfsbackend.Ino, first, last int64) (object, error) {
	end := b.chunkEnd(ino)
	if last >= 0 && last < math.MaxInt64 {
		end = b.chunkKey(ino, last+1)
	}
	txn, err := b.etcd.Txn(ctx).Then(
		clientv3.OpGet(b.sizeKey(ino)),
		clientv3.OpGet(b.chunkKey(ino, first), clientv3.WithRange(end)),
	).Commit()
	if err != nil {
		return object{}, etcdErr(fmt.Sprintf("data object %d", ino), err)
	}
	var o object
	if kvs := txn.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		o.exists = true
		o.rev = kvs[0].ModRevision
		if o.size, err = strconv.ParseInt(string(kvs[0].Value), 10, 64); err != nil || o.size < 0 {
			return object{}, fmt.Errorf("etcdswift: size of %d is %q: %w", ino, kvs[0].Value, syscall.EIO)
		}
	}
	kvs := txn.Responses[1].GetResponseRange().Kvs
	o.chunks = make(map[int64]string, len(kvs))
	prefixLen := len(b.chunks) + 8
	for _, kv := range kvs {
		if len(kv.Key) != prefixLen+8 {
			return object{}, fmt.Errorf("etcdswift: malformed chunk key %q: %w", kv.Key, syscall.EIO)
		}
		o.chunks[int64(binary.BigEndian.Uint64(kv.Key[prefixLen:]))] = string(kv.Value)
	}
	return o, nil
}

// switchIn commits a data change: it sets ino's size, points chunk keys at
// new objects, and deletes the chunk keys from delFrom on (delFrom < 0:
// none), if the size key is still at o.rev. It reports whether it won.
//
// A change made for a call that reads through a vfsbackend.ReadSet and has
// not committed yet (package inode writes data, then the record) is also
// conditional on the set: it fails with vfsbackend.ErrConflict, changing
// nothing, if a key the call read changed (so that a call working from a
// stale size never cuts or overwrites what another gateway committed), and
// once it is made the set notes the size key's new revision (so that the
// call's commit fails if another gateway changed the data before it: the
// call then writes again).
func (b *Backend) switchIn(ctx context.Context, ino vfsbackend.Ino, o object, size int64, puts map[int64]string, delFrom int64) (bool, error) {
	ops := make([]clientv3.Op, 0, len(puts)+2)
	ops = append(ops, clientv3.OpPut(b.sizeKey(ino), strconv.FormatInt(size, 10)))
	if delFrom >= 0 {
		ops = append(ops, clientv3.OpDelete(b.chunkKey(ino, delFrom), clientv3.WithRange(b.chunkEnd(ino))))
	}
	for c, name := range puts {
		ops = append(ops, clientv3.OpPut(b.chunkKey(ino, c), name))
	}
	sizeCmp := clientv3.Compare(clientv3.ModRevision(b.sizeKey(ino)), "=", o.rev)
	rs := vfsbackend.ReadSetFrom(ctx)
	if rs == nil || rs.Committed() {
		txn, err := b.etcd.Txn(ctx).If(sizeCmp).Then(ops...).Commit()
		if err != nil {
			return false, etcdErr(fmt.Sprintf("data object %d", ino), err)
		}
		return txn.Succeeded, nil
	}
	txn, err := b.etcd.Txn(ctx).If(append(readCompares(rs), sizeCmp)...).Then(ops...).Else(clientv3.OpGet(b.sizeKey(ino))).Commit()
	if err != nil {
		return false, etcdErr(fmt.Sprintf("data object %d", ino), err)
	}
	if txn.Succeeded {
		rs.Wrote(b.sizeKey(ino), txn.Header.Revision)
		return true, nil
	}
	rev := int64(0)
	if kvs := txn.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		rev = kvs[0].ModRevision
	}
	if rev == o.rev {
		// The size key is as it was: what failed is the call's reads.
		return false, fmt.Errorf("etcdswift: data object %d: %w", ino, vfsbackend.ErrConflict)
	}
	return false, nil
}

func (b *Backend) lock(ino vfsbackend.Ino) func() {
	m := &b.stripe[uint64(ino)%uint64(len(b.stripe))]
	m.Lock()
	return m.Unlock
}

// ReadData reads ino's bytes at off into p.
func (b *Backend) ReadData(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) (int, error) {
	if err := b.check(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("etcdswift: read %d at %d: %w", ino, off, syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := off + int64(len(p))
	if end < off {
		end = math.MaxInt64
	}
	// A concurrent change may delete a version between the etcd read and
	// the Swift read: read again from the new versions.
	for range maxRetries {
		o, err := b.load(ctx, ino, off/b.chunk, (end-1)/b.chunk)
		if err != nil {
			return 0, err
		}
		if !o.exists || off >= o.size {
			return 0, nil
		}
		n := int(min(int64(len(p)), o.size-off))
		q := p[:n]
		clear(q)
		var cs []int64
		for c := off / b.chunk; c <= (off+int64(n)-1)/b.chunk; c++ {
			if _, ok := o.chunks[c]; ok {
				cs = append(cs, c)
			}
		}
		gone := false
		err = forEach(len(cs), func(i int) error {
			c := cs[i]
			lo := max(off, c*b.chunk)
			hi := min(off+int64(n), (c+1)*b.chunk)
			_, err := b.getRange(ctx, o.chunks[c], q[lo-off:hi-off], lo-c*b.chunk)
			if errors.Is(err, errObjectNotFound) {
				gone = true
				return nil
			}
			return err
		})
		if err != nil {
			return 0, swiftErr(fmt.Sprintf("read %d at %d", ino, off), err)
		}
		if !gone {
			return n, nil
		}
	}
	return 0, fmt.Errorf("etcdswift: read %d at %d: chunks keep changing: %w", ino, off, syscall.EAGAIN)
}

// WriteData writes p at off into ino's object.
func (b *Backend) WriteData(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) error {
	if err := b.checkWrite(); err != nil {
		return err
	}
	if off < 0 {
		return fmt.Errorf("etcdswift: write %d at %d: %w", ino, off, syscall.EINVAL)
	}
	if len(p) == 0 {
		return nil
	}
	if off+int64(len(p)) < off {
		return fmt.Errorf("etcdswift: write %d at %d: %w", ino, off, syscall.EFBIG)
	}
	defer b.lock(ino)()
	// Pieces of at most maxChunksPerTxn chunks, each switched in whole.
	for len(p) > 0 {
		n := int64(len(p))
		if lim := (off/b.chunk+maxChunksPerTxn)*b.chunk - off; n > lim {
			n = lim
		}
		if err := b.writePiece(ctx, ino, p[:n], off); err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

func (b *Backend) writePiece(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) error {
	end := off + int64(len(p))
	first, last := off/b.chunk, (end-1)/b.chunk
	for range maxRetries {
		o, err := b.load(ctx, ino, first, last)
		if err != nil {
			return err
		}
		started := time.Now()
		cs := make([]int64, 0, last-first+1)
		for c := first; c <= last; c++ {
			cs = append(cs, c)
		}
		names := make([]string, len(cs))
		err = forEach(len(cs), func(i int) error {
			c := cs[i]
			base := c * b.chunk
			lo, hi := max(off, base)-base, min(end, base+b.chunk)-base
			var data []byte
			if old, ok := o.chunks[c]; ok && (lo > 0 || hi < b.chunk) {
				prev, err := b.getObject(ctx, old)
				if err != nil {
					return err // ObjectNotFound: replaced meanwhile; the switch will fail
				}
				// Nothing at or past the object's size is kept in a chunk.
				if keep := o.size - base; int64(len(prev)) > keep {
					prev = prev[:max(keep, 0)]
				}
				data = prev
				if int64(len(data)) < hi {
					data = append(data, make([]byte, hi-int64(len(data)))...)
				}
			} else {
				data = make([]byte, hi)
			}
			copy(data[lo:hi], p[base+lo-off:base+hi-off])
			name, err := b.objectName(ino, c)
			if err != nil {
				return err
			}
			if err := b.putObject(ctx, name, data); err != nil {
				return err
			}
			names[i] = name
			return nil
		})
		if err != nil {
			b.deleteObjects(ctx, nonEmpty(names))
			if errors.Is(err, errObjectNotFound) {
				continue
			}
			return swiftErr(fmt.Sprintf("write %d at %d", ino, off), err)
		}
		puts := make(map[int64]string, len(cs))
		var old []string
		for i, c := range cs {
			puts[c] = names[i]
			if prev, ok := o.chunks[c]; ok {
				old = append(old, prev)
			}
		}
		if time.Since(started) > MaxPendingAge {
			// Garbage collection may take objects this old: write again.
			b.deleteObjects(ctx, names)
			continue
		}
		won, err := b.switchIn(ctx, ino, o, max(o.size, end), puts, -1)
		if errors.Is(err, vfsbackend.ErrConflict) {
			b.deleteObjects(ctx, names) // refused: nothing names them
			return err
		}
		if err != nil {
			// Unknown outcome: the new objects may be in use; leave them.
			return err
		}
		if !won {
			b.deleteObjects(ctx, names)
			continue
		}
		b.deleteObjects(ctx, old)
		return nil
	}
	return fmt.Errorf("etcdswift: write %d at %d: too much contention: %w", ino, off, syscall.EAGAIN)
}

// TruncateData sets ino's object to size bytes.
func (b *Backend) TruncateData(ctx context.Context, ino vfsbackend.Ino, size int64) error {
	if err := b.checkWrite(); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("etcdswift: truncate %d to %d: %w", ino, size, syscall.EINVAL)
	}
	defer b.lock(ino)()
	cut := size / b.chunk // the chunk the new end falls in
	for range maxRetries {
		o, err := b.load(ctx, ino, cut, -1)
		if err != nil {
			return err
		}
		if !o.exists && size == 0 {
			return nil
		}
		if o.exists && size == o.size {
			return nil
		}
		started := time.Now()
		puts := map[int64]string{}
		var old, made []string
		delFrom := int64(-1)
		if size < o.size {
			// Chunks past the end go; the one the end cuts through is
			// rewritten shorter.
			delFrom = cut
			if within := size - cut*b.chunk; within > 0 {
				delFrom = cut + 1
				if prev, ok := o.chunks[cut]; ok {
					data, err := b.getObject(ctx, prev)
					if errors.Is(err, errObjectNotFound) {
						continue
					}
					if err != nil {
						return swiftErr(fmt.Sprintf("truncate %d", ino), err)
					}
					if int64(len(data)) > within {
						name, err := b.objectName(ino, cut)
						if err != nil {
							return err
						}
						if err := b.putObject(ctx, name, data[:within]); err != nil {
							return swiftErr(fmt.Sprintf("truncate %d", ino), err)
						}
						puts[cut] = name
						made = append(made, name)
						old = append(old, prev)
					}
				}
			}
			for c, name := range o.chunks {
				if c >= delFrom {
					old = append(old, name)
				}
			}
		}
		if len(made) > 0 && time.Since(started) > MaxPendingAge {
			b.deleteObjects(ctx, made)
			continue
		}
		won, err := b.switchIn(ctx, ino, o, size, puts, delFrom)
		if errors.Is(err, vfsbackend.ErrConflict) {
			b.deleteObjects(ctx, made)
			return err
		}
		if err != nil {
			return err
		}
		if !won {
			b.deleteObjects(ctx, made)
			continue
		}
		b.deleteObjects(ctx, old)
		return nil
	}
	return fmt.Errorf("etcdswift: truncate %d: too much contention: %w", ino, syscall.EAGAIN)
}

// DeleteData removes ino's object.
func (b *Backend) DeleteData(ctx context.Context, ino vfsbackend.Ino) error {
	if err := b.checkWrite(); err != nil {
		return err
	}
	defer b.lock(ino)()
	for range maxRetries {
		o, err := b.load(ctx, ino, 0, -1)
		if err != nil {
			return err
		}
		if !o.exists {
			return nil
		}
		txn, err := b.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(b.sizeKey(ino)), "=", o.rev)).Then(
			clientv3.OpDelete(b.sizeKey(ino)),
			clientv3.OpDelete(b.chunkKey(ino, 0), clientv3.WithRange(b.chunkEnd(ino))),
		).Commit()
		if err != nil {
			return etcdErr(fmt.Sprintf("delete data %d", ino), err)
		}
		if !txn.Succeeded {
			continue
		}
		names := make([]string, 0, len(o.chunks))
		for _, n := range o.chunks {
			names = append(names, n)
		}
		b.deleteObjects(ctx, names)
		return nil
	}
	return fmt.Errorf("etcdswift: delete data %d: too much contention: %w", ino, syscall.EAGAIN)
}

// ListData calls fn with every data object's inode number and size.
func (b *Backend) ListData(ctx context.Context, fn func(ino vfsbackend.Ino, size int64) bool) error {
	if err := b.check(); err != nil {
		return err
	}
	var bad error
	err := b.scanRange(ctx, b.sizes, clientv3.GetPrefixRangeEnd(b.sizes), func(k, v []byte) bool {
		size, err := strconv.ParseInt(string(v), 10, 64)
		if len(k) != len(b.sizes)+8 || err != nil {
			bad = fmt.Errorf("etcdswift: malformed size key %q = %q: %w", k, v, syscall.EIO)
			return false
		}
		return fn(vfsbackend.Ino(binary.BigEndian.Uint64(k[len(b.sizes):])), size)
	})
	if err != nil {
		return err
	}
	return bad
}

// Garbage calls fn with the name of every object in the volume's
// container that no chunk key names and that Swift last modified more than
// olderThan ago: the leftovers of data changes interrupted between Swift
// and etcd, or of replaced versions whose deletion failed. A change in
// progress (on any gateway) has objects that no key names yet, but never
// switches in objects older than MaxPendingAge (it writes them again), so
// with olderThan >= MinGarbageAge, which leaves room for clock skew between
// the gateways and Swift, no object a change may still use is listed.
func (b *Backend) Garbage(ctx context.Context, olderThan time.Duration, fn func(name string) bool) error {
	if err := b.check(); err != nil {
		return err
	}
	// List the container first: an object written after its listing was
	// read and switched in before the scan below is then not listed at
	// all, and one switched in before the scan is seen by it.
	cutoff := time.Now().Add(-olderThan)
	var candidates []string
	err := b.store.list(ctx, func(name string, modified time.Time) bool {
		if strings.Count(name, "/") == 2 && modified.Before(cutoff) {
			candidates = append(candidates, name)
		}
		return true
	})
	if err != nil {
		return swiftErr("list the "+b.store.String(), err)
	}
	used := map[string]bool{}
	if err := b.scanRange(ctx, b.chunks, clientv3.GetPrefixRangeEnd(b.chunks), func(_, v []byte) bool {
		used[string(v)] = true
		return true
	}); err != nil {
		return err
	}
	for _, n := range candidates {
		if !used[n] && !fn(n) {
			return nil
		}
	}
	return nil
}

// CollectGarbage deletes the objects Garbage(olderThan) finds and returns
// how many.
func (b *Backend) CollectGarbage(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := b.checkWrite(); err != nil {
		return 0, err
	}
	var names []string
	if err := b.Garbage(ctx, olderThan, func(n string) bool { names = append(names, n); return true }); err != nil {
		return 0, err
	}
	err := forEach(len(names), func(i int) error {
		return b.retry(ctx, func() error { return b.store.remove(ctx, names[i]) })
	})
	if err != nil {
		return 0, swiftErr("collect garbage", err)
	}
	return len(names), nil
}

func nonEmpty(names []string) []string {
	out := names[:0:0]
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}
