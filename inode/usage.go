package inode

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// The space of a shared volume (several gateways: shared.go).
//
// The volume's use is the sum of the sizes of its regular files. On a
// volume that one gateway changes, FS keeps it in memory (fs.used) and in
// the volume (keptUsage, below), which Open reads. On a shared volume every gateway's changes count, so
// the use is kept in the volume as usage keys: one per (gateway instance,
// inode stripe), pfxUsage + instance (8 bytes) + stripe (1 byte), holding
// a signed count (two's complement, 8 bytes big-endian). Every commit that
// changes a regular file's size, or deletes one, adds the change to the
// key of this instance and the inode's stripe, in the same commit, reading
// the key through the call's read set. Only this instance writes its keys,
// so they add no conflict with other gateways; the stripe lock (or the
// namespace lock held exclusively) serializes this gateway's commits on
// one key, so they do not conflict with each other either, and if two
// did, the read set makes the second start again rather than write a
// stale count. A gateway that dies leaves its keys, exact since they
// changed only with its commits; a restarted gateway is a new instance
// starting from nothing (its key goes negative if it frees what an older
// instance counted). The key of instance 0 is the base: what the volume
// held when it got usage keys (keyUsageKeys).
//
// The use is the sum of every usage key (one range read), which StatFS
// reads, and which a gateway re-reads before its growth since the last
// read passes usageSlack or before it refuses a growth. A growth is
// refused (ENOSPC) when the last sum plus this gateway's growth since
// (committed or in flight) passes the capacity. The other gateways'
// growth since that read is not seen, so the volume may exceed its
// capacity by at most usageSlack per other gateway (a single call that
// grows a file by more than that counts whole).
const pfxUsage = 'u'

// keyUsageKeys says that the usage keys count every regular file's size.
var keyUsageKeys = []byte("susage_keys")

// maxUsageSlack bounds usageSlack.
const maxUsageSlack = 64 << 20

// usageSlack is how much a gateway of a shared volume grows files by
// before it re-reads the volume's use: capacity/64, at most 64 MiB.
func usageSlack(capacity uint64) int64 {
	return int64(min(capacity/64, maxUsageSlack))
}

func usageKey(instance uint64, stripe int) []byte {
	k := make([]byte, 0, 10)
	k = append(k, pfxUsage)
	k = binary.BigEndian.AppendUint64(k, instance)
	return append(k, byte(stripe))
}

// sharedUsage is a gateway's view of a shared volume's use.
type sharedUsage struct {
	instance uint64 // this gateway's instance (random, not 0)
	mu       sync.Mutex
	sum      int64 // the sum of the usage keys when last read
	since    int64 // this gateway's committed change since that read
	inflight int64 // growth reserved and not yet committed or given back
}

// openUsage sets up the usage keys of a shared volume: it gives the
// volume its base (once, for a volume made before usage keys) and reads
// the sum.
func (fs *FS) openUsage(ctx context.Context) error {
	if fs.shared == nil {
		return nil
	}
	var id [8]byte
	for binary.BigEndian.Uint64(id[:]) == 0 {
		if _, err := rand.Read(id[:]); err != nil {
			return fmt.Errorf("open volume: usage instance: %w", err)
		}
	}
	fs.usage = &sharedUsage{instance: binary.BigEndian.Uint64(id[:])}
	if !fs.readOnly {
		err := fs.optimistic(ctx, func(ctx context.Context) error {
			if _, err := fs.be.Get(ctx, keyUsageKeys); err == nil {
				return nil
			} else if !errors.Is(err, syscall.ENOENT) {
				return err
			}
			// Counted at one revision each, not together: exact only if
			// no other gateway changes sizes meanwhile (-check tells).
			sizes, err := fs.sumSizes(vfsbackend.WithoutReadSet(ctx))
			if err != nil {
				return err
			}
			keys, err := fs.readUsage(ctx)
			if err != nil {
				return err
			}
			var b vfsbackend.Batch
			b.Put(usageKey(0, 0), encodeUint64(uint64(int64(sizes)-keys)))
			b.Put(keyUsageKeys, []byte{1})
			if err := fs.be.Commit(ctx, &b); err != nil {
				return err
			}
			fs.log.Info("upgraded the volume: usage keys count the space of every gateway", zap.Uint64("bytes", sizes))
			return nil
		})
		if err != nil {
			return fmt.Errorf("open volume: usage keys: %w", err)
		}
	}
	sum, err := fs.readUsage(ctx)
	if err != nil {
		return fmt.Errorf("open volume: %w", err)
	}
	fs.usage.sum = sum
	return nil
}

// readUsage sums the usage keys (not noted in ctx's read set).
func (fs *FS) readUsage(ctx context.Context) (int64, error) {
	var sum int64
	var derr error
	err := fs.be.Scan(vfsbackend.WithoutReadSet(ctx), []byte{pfxUsage}, nil, func(k, v []byte) bool {
		n, err := decodeUint64(v)
		if err != nil {
			derr = fmt.Errorf("usage key %x: %w", k, err)
			return false
		}
		sum += int64(n)
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return 0, fmt.Errorf("read the volume's use: %w", err)
	}
	return sum, nil
}

// sumSizes adds up the sizes of the regular files.
func (fs *FS) sumSizes(ctx context.Context) (uint64, error) {
	var sum uint64
	var derr error
	err := fs.be.Scan(ctx, []byte{pfxInode}, nil, func(k, v []byte) bool {
		r, err := decodeRecord(Ino(binary.BigEndian.Uint64(k[1:])), v)
		if err != nil {
			derr = err
			return false
		}
		if r.Mode&ModeType == ModeRegular {
			sum += r.Size
		}
		return true
	})
	if err == nil {
		err = derr
	}
	return sum, err
}

// reserveShared is reserve on a shared volume.
func (fs *FS) reserveShared(ctx context.Context, n uint64) error {
	u := fs.usage
	u.mu.Lock()
	defer u.mu.Unlock()
	g := int64(n)
	if g < 0 {
		return fmt.Errorf("volume capacity of %d bytes reached: %w", fs.capacity, syscall.ENOSPC)
	}
	if fs.capacity == 0 {
		u.inflight += g // counted, not limited
		return nil
	}
	capacity := int64(min(fs.capacity, 1<<62))
	over := func() bool { return u.sum+u.since+u.inflight+g > capacity }
	if over() || u.since+u.inflight+g > usageSlack(fs.capacity) {
		// Read the sum again (under u.mu, so that commits settling
		// meanwhile wait: a commit that lands before the read is in
		// the sum and in inflight, counted twice, never missed).
		sum, err := fs.readUsage(ctx)
		if err != nil {
			return err
		}
		u.sum, u.since = sum, 0
		if over() {
			return fmt.Errorf("volume capacity of %d bytes reached: %w", fs.capacity, syscall.ENOSPC)
		}
	}
	u.inflight += g
	return nil
}

// settle ends a reservation of n bytes: committed (the growth counts) or
// given back.
func (fs *FS) settle(n uint64, committed bool) {
	if n == 0 {
		return
	}
	if fs.usage == nil {
		if !committed {
			fs.release(n)
		}
		return
	}
	u := fs.usage
	u.mu.Lock()
	u.inflight -= int64(n)
	if committed {
		u.since += int64(n)
	}
	u.mu.Unlock()
}

// freed counts n bytes of committed shrinking or deletion.
func (fs *FS) freed(n uint64) {
	if n == 0 {
		return
	}
	if fs.usage == nil {
		fs.release(n)
		return
	}
	fs.usage.mu.Lock()
	fs.usage.since -= int64(n)
	fs.usage.mu.Unlock()
}

// usedBytes is the volume's use for StatFS: on a shared volume the sum of
// the usage keys, read now.
func (fs *FS) usedBytes(ctx context.Context) (uint64, error) {
	if fs.usage == nil {
		return fs.used.Load(), nil
	}
	sum, err := fs.readUsage(ctx)
	if err != nil {
		return 0, err
	}
	fs.usage.mu.Lock()
	fs.usage.sum, fs.usage.since = sum, 0
	fs.usage.mu.Unlock()
	return uint64(max(sum, 0)), nil
}

// resized notes that regular file ino's size goes from old to new in t.
func (t *txn) resized(ino Ino, old, new uint64) {
	if (t.fs.usage == nil && t.fs.kept == nil) || old == new {
		return
	}
	if t.usage == nil {
		t.usage = map[int]int64{}
	}
	t.usage[int(ino%stripes)] += int64(new) - int64(old)
}

// putUsage adds t's size changes to this instance's usage keys in t's
// batch, reading them through ctx's read set (a shared volume).
func (t *txn) putUsage(ctx context.Context) error {
	if t.fs.usage == nil {
		return nil
	}
	for stripe, d := range t.usage {
		if d == 0 {
			continue
		}
		k := usageKey(t.fs.usage.instance, stripe)
		var cur int64
		switch v, err := t.fs.be.Get(ctx, k); {
		case err == nil:
			n, err := decodeUint64(v)
			if err != nil {
				return fmt.Errorf("usage key %x: %w", k, err)
			}
			cur = int64(n)
		case !errors.Is(err, syscall.ENOENT):
			return err
		}
		t.batch.Put(k, encodeUint64(uint64(cur+d)))
	}
	return nil
}

// checkUsage reports a shared volume whose usage keys do not add up to
// the sizes of its regular files. Other gateways changing sizes during
// the check may make it report a difference that is not there.
func (fs *FS) checkUsage(ctx context.Context) ([]string, error) {
	if fs.shared == nil {
		return fs.checkKeptUsage(ctx)
	}
	if _, err := fs.be.Get(ctx, keyUsageKeys); errors.Is(err, syscall.ENOENT) {
		return nil, nil // made before usage keys; the next read-write open adds them
	} else if err != nil {
		return nil, err
	}
	sizes, err := fs.sumSizes(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := fs.readUsage(ctx)
	if err != nil {
		return nil, err
	}
	if keys != int64(sizes) {
		return []string{fmt.Sprintf("volume use: the usage keys add up to %d bytes, the regular files' sizes to %d", keys, sizes)}, nil
	}
	return nil, nil
}

// keptUsage is the use of a volume that is not shared, kept in the volume
// as the usage keys of instance 0, one per inode stripe, so that Open sums
// at most 256 keys instead of reading every inode. Every commit that
// changes a regular file's size writes the new value of its stripe's key
// in the same batch (so a crash keeps them exact) while holding that
// stripe's lock here until the commit is done; val is what the keys hold.
// A volume made before them gets them at its first read-write open:
// counted once from the inode records, as a base in stripe 0 (the other
// stripes' keys may then go negative).
type keptUsage struct {
	mu  [stripes]sync.Mutex
	val [stripes]int64
}

// openKeptUsage sets fs.used on a volume that is not shared: from the
// usage keys, or by counting the files once (and keeping the count, read-
// write).
func (fs *FS) openKeptUsage(ctx context.Context) error {
	if fs.shared != nil {
		return nil // openUsage
	}
	switch _, err := fs.be.Get(ctx, keyUsageKeys); {
	case err == nil:
		k := &keptUsage{}
		var sum int64
		var derr error
		err := fs.be.Scan(ctx, []byte{pfxUsage}, nil, func(key, v []byte) bool {
			n, err := decodeUint64(v)
			if err != nil || len(key) != 10 || binary.BigEndian.Uint64(key[1:9]) != 0 {
				derr = fmt.Errorf("usage key %x: malformed", key)
				return false
			}
			k.val[key[9]] = int64(n)
			sum += int64(n)
			return true
		})
		if err == nil {
			err = derr
		}
		if err != nil {
			return fmt.Errorf("open volume: read the volume's use: %w", err)
		}
		if sum < 0 {
			return fmt.Errorf("open volume: the usage keys add up to %d bytes: %w", sum, syscall.EIO)
		}
		fs.used.Store(uint64(sum))
		fs.kept = k
		return nil
	case !errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("open volume: %w", err)
	}
	sum, err := fs.sumSizes(ctx)
	if err != nil {
		return fmt.Errorf("open volume: count space: %w", err)
	}
	fs.used.Store(sum)
	if fs.readOnly {
		return nil // counted at each open until a read-write one keeps it
	}
	var b vfsbackend.Batch
	for _, k := range fs.scanKeys(ctx, []byte{pfxUsage}) {
		b.Delete(k) // none expected: a volume without the marker
	}
	b.Put(usageKey(0, 0), encodeUint64(sum))
	b.Put(keyUsageKeys, []byte{1})
	if err := fs.be.Commit(ctx, &b); err != nil {
		return fmt.Errorf("open volume: keep the volume's use: %w", err)
	}
	fs.kept = &keptUsage{}
	fs.kept.val[0] = int64(sum)
	fs.log.Info("upgraded the volume: its space in use is kept, not counted at each open", zap.Uint64("bytes", sum))
	return nil
}

// putKeptUsage puts the new values of t's stripes' usage keys in t's
// batch on a volume that is not shared, holding their locks; it returns
// what unlocks them, to call when the commit is done.
func (t *txn) putKeptUsage() (unlock func()) {
	k := t.fs.kept
	if k == nil || len(t.usage) == 0 {
		return func() {}
	}
	ss := make([]int, 0, len(t.usage))
	for s, d := range t.usage {
		if d != 0 {
			ss = append(ss, s)
		}
	}
	slices.Sort(ss) // one order: no deadlock between two commits
	for _, s := range ss {
		k.mu[s].Lock()
		t.batch.Put(usageKey(0, s), encodeUint64(uint64(k.val[s]+t.usage[s])))
	}
	t.keptLocked = ss
	return func() {
		for _, s := range ss {
			k.mu[s].Unlock()
		}
		t.keptLocked = nil
	}
}

// keptCommitted records t's committed size changes in the kept values;
// called with their locks held.
func (t *txn) keptCommitted() {
	if k := t.fs.kept; k != nil {
		for _, s := range t.keptLocked {
			k.val[s] += t.usage[s]
		}
	}
}

// scanKeys returns the keys with prefix (few: used for the usage keys).
func (fs *FS) scanKeys(ctx context.Context, prefix []byte) [][]byte {
	var keys [][]byte
	_ = fs.be.Scan(ctx, prefix, nil, func(k, _ []byte) bool {
		keys = append(keys, append([]byte(nil), k...))
		return true
	})
	return keys
}

// checkKeptUsage reports a volume that is not shared whose usage keys do
// not add up to its regular files' sizes; size changes wait meanwhile.
func (fs *FS) checkKeptUsage(ctx context.Context) ([]string, error) {
	if _, err := fs.be.Get(ctx, keyUsageKeys); errors.Is(err, syscall.ENOENT) {
		return nil, nil // the next read-write open keeps them
	} else if err != nil {
		return nil, err
	}
	if k := fs.kept; k != nil {
		for i := range k.mu {
			k.mu[i].Lock()
		}
		defer func() {
			for i := range k.mu {
				k.mu[i].Unlock()
			}
		}()
	}
	sizes, err := fs.sumSizes(ctx)
	if err != nil {
		return nil, err
	}
	var keys int64
	var derr error
	err = fs.be.Scan(ctx, []byte{pfxUsage}, nil, func(k, v []byte) bool {
		n, err := decodeUint64(v)
		if err != nil {
			derr = fmt.Errorf("usage key %x: %w", k, err)
			return false
		}
		keys += int64(n)
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	if keys != int64(sizes) {
		return []string{fmt.Sprintf("volume use: the usage keys add up to %d bytes, the regular files' sizes to %d", keys, sizes)}, nil
	}
	return nil, nil
}
