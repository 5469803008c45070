package etcdswift

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

var _ vfsbackend.SharedEngine = (*Backend)(nil)

// Name is the name the engine is registered under.
const Name = "etcdswift"

// MaxPendingAge bounds how long a data change may take between writing its
// new chunk objects and switching them in; a change that took longer
// writes them again. MinGarbageAge is the least age at which garbage
// collection may take objects that no chunk key names: above MaxPendingAge
// with room for clock skew between the gateways and Swift.
const (
	MaxPendingAge = 10 * time.Minute
	MinGarbageAge = time.Hour
)

// DefaultChunkBytes is the chunk size of a volume formatted without one.
const DefaultChunkBytes = 1 << 20

// MaxChunkBytes bounds the chunk size (a chunk is read and written whole
// when a write covers it in part).
const MaxChunkBytes = 64 << 20

const (
	scanPage = 512 // keys per etcd range read
	// maxChunksPerTxn bounds the chunks one write switches in with one
	// etcd transaction (below etcd's default of 128 operations); a longer
	// write is applied in pieces of this many chunks, each atomic.
	maxChunksPerTxn = 64
	// parallel is how many Swift requests one call runs at once.
	parallel = 8
	// cacheBytes bounds the chunk cache (see chunkCache).
	cacheBytes = 64 << 20
	// deleteWorkers delete replaced chunk versions in the background;
	// deleteQueue is how many may wait before deletes block the writer.
	deleteWorkers = 2
	deleteQueue   = 4096
	// maxRetries bounds the optimistic retries of one data change that
	// loses races with another gateway.
	maxRetries = 50
	// defaultCapacity is reported by Usage when neither the volume's
	// configuration nor a Swift quota gives one.
	defaultCapacity = 1 << 50
	markerPrefix    = "etcdswift 1 chunk="
)

func init() {
	if err := vfsbackend.Register(Name, func(o vfsbackend.Options) (vfsbackend.Backend, error) { return Open(o) }); err != nil {
		panic(err)
	}
}

// Backend is the etcd + Swift engine. Create it with Open.
type Backend struct {
	log       *zap.Logger
	etcd      *clientv3.Client
	etcdURLs  []string    // the etcd endpoints, for messages
	store     objectStore // Swift or S3 (objstore.go)
	transport *http.Transport
	container string // the container or bucket, for messages
	chunk     int64
	capacity  uint64
	readOnly  bool
	formatted bool
	closed    atomic.Bool

	// Keys, all starting with the volume's prefix.
	marker, meta, sizes, chunks, counters, pinKeys, lockKeys string

	// pins are this gateway's open inodes in etcd (pins.go).
	pins pinState

	cache *chunkCache
	// metaCache caches metadata for the reads of changing calls
	// (metacache.go).
	metaCache *metaCache

	// Replaced chunk versions are deleted in the background (deleteLoop):
	// their deletion is not part of any change, only of tidying up.
	delMu     sync.RWMutex // protects delq against Close
	delq      chan string
	delClosed bool
	delWG     sync.WaitGroup
	delCtx    context.Context
	delCancel context.CancelFunc

	// stripe serializes this gateway's data changes to one object (the
	// etcd compare makes them safe between gateways; this only saves
	// retries). Index: ino % len(stripe).
	stripe [256]sync.Mutex
}

// Open connects to etcd and Swift and opens (or, as opts.Format allows,
// formats) the volume under opts.Remote.EtcdPrefix.
func Open(opts vfsbackend.Options) (*Backend, error) {
	r := opts.Remote
	switch {
	case len(r.EtcdEndpoints) == 0:
		return nil, fmt.Errorf("etcdswift: no etcd endpoints: %w", syscall.EINVAL)
	case r.EtcdPrefix == "":
		return nil, fmt.Errorf("etcdswift: empty etcd prefix: %w", syscall.EINVAL)
	case r.ChunkBytes < 0 || r.ChunkBytes > MaxChunkBytes:
		return nil, fmt.Errorf("etcdswift: chunk size %d out of range 0..%d: %w", r.ChunkBytes, MaxChunkBytes, syscall.EINVAL)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	b := &Backend{
		log:       log,
		capacity:  opts.CapacityBytes,
		readOnly:  opts.ReadOnly,
		marker:    r.EtcdPrefix + "v",
		meta:      r.EtcdPrefix + "m",
		sizes:     r.EtcdPrefix + "s",
		chunks:    r.EtcdPrefix + "c",
		counters:  r.EtcdPrefix + "n",
		pinKeys:   r.EtcdPrefix + "p",
		lockKeys:  r.EtcdPrefix + "k",
		metaCache: newMetaCache(),
	}
	if err := b.newStore(r); err != nil {
		return nil, err
	}
	if err := b.newEtcd(r, log); err != nil {
		b.closeClients()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.open(ctx, opts.Format, r.ChunkBytes); err != nil {
		b.closeClients()
		return nil, err
	}
	b.cache = newChunkCache(cacheBytes)
	b.delq = make(chan string, deleteQueue)
	b.delCtx, b.delCancel = context.WithCancel(context.Background())
	for range deleteWorkers {
		b.delWG.Add(1)
		go b.deleteLoop()
	}
	return b, nil
}

func (b *Backend) open(ctx context.Context, format vfsbackend.FormatPolicy, chunk int) error {
	if err := b.store.connect(ctx); err != nil {
		return fmt.Errorf("etcdswift: %w", err)
	}
	resp, err := b.etcd.Get(ctx, b.marker)
	if err != nil {
		return b.etcdOpenErr(err)
	}
	if len(resp.Kvs) == 1 {
		return b.loadMarker(resp.Kvs[0].Value)
	}
	if format == vfsbackend.FormatNever || b.readOnly {
		return fmt.Errorf("etcdswift: no volume under etcd prefix %q: %w", strings.TrimSuffix(b.marker, "v"), vfsbackend.ErrNoVolume)
	}
	// Format only an empty prefix and an absent or empty container.
	prefix := strings.TrimSuffix(b.marker, "v")
	resp, err = b.etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("etcdswift: etcd: %w", err)
	}
	if resp.Count > 0 {
		return fmt.Errorf("etcdswift: etcd prefix %q holds %d keys but no volume: not formatting over them: %w", prefix, resp.Count, syscall.EEXIST)
	}
	empty, err := b.store.prepare(ctx)
	if err != nil {
		return fmt.Errorf("etcdswift: %s: %w", b.store, err)
	}
	if !empty {
		return fmt.Errorf("etcdswift: %s holds objects but etcd holds no volume: not formatting over them: %w", b.store, syscall.EEXIST)
	}
	if chunk == 0 {
		chunk = DefaultChunkBytes
	}
	value := markerPrefix + strconv.Itoa(chunk)
	txn, err := b.etcd.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(b.marker), "=", 0)).
		Then(clientv3.OpPut(b.marker, value)).Else(clientv3.OpGet(b.marker)).Commit()
	if err != nil {
		return fmt.Errorf("etcdswift: format: %w", err)
	}
	if !txn.Succeeded { // another gateway formatted it meanwhile
		return b.loadMarker(txn.Responses[0].GetResponseRange().Kvs[0].Value)
	}
	b.formatted = true
	b.chunk = int64(chunk)
	b.log.Info("formatted a new volume", zap.String("etcd_prefix", prefix), zap.Stringer("object_store", b.store), zap.Int("chunk_bytes", chunk))
	return nil
}

func (b *Backend) loadMarker(v []byte) error {
	s, ok := strings.CutPrefix(string(v), markerPrefix)
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n <= 0 || n > MaxChunkBytes {
		return fmt.Errorf("etcdswift: volume marker %q not understood: %w", v, vfsbackend.ErrDamaged)
	}
	b.chunk = int64(n)
	return nil
}

// Formatted says whether Open formatted a new volume.
func (b *Backend) Formatted() bool { return b.formatted }

// ChunkBytes is the volume's chunk size.
func (b *Backend) ChunkBytes() int64 { return b.chunk }

// Health reports whether etcd answers (a linearizable read of the volume
// marker) and the marker is still there.
func (b *Backend) Health() error {
	if err := b.check(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := b.etcd.Get(ctx, b.marker)
	if err != nil {
		return fmt.Errorf("etcdswift: etcd: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("etcdswift: the volume marker %q is gone: %w", b.marker, syscall.EIO)
	}
	return nil
}

func (b *Backend) check() error {
	if b.closed.Load() {
		return fmt.Errorf("etcdswift: backend is closed: %w", syscall.EIO)
	}
	return nil
}

func (b *Backend) checkWrite() error {
	if err := b.check(); err != nil {
		return err
	}
	if b.readOnly {
		return fmt.Errorf("etcdswift: volume opened read-only: %w", syscall.EROFS)
	}
	return nil
}

// etcdErr converts an etcd error, keeping it wrapped.
func etcdErr(what string, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("etcdswift: %s: %w (raise etcd's --max-txn-ops): %w", what, err, syscall.E2BIG)
	case errors.Is(err, rpctypes.ErrRequestTooLarge), errors.Is(err, rpctypes.ErrGRPCRequestTooLarge):
		return fmt.Errorf("etcdswift: %s: %w (raise etcd's --max-request-bytes): %w", what, err, syscall.EFBIG)
	case strings.Contains(err.Error(), "too many operations in txn request"):
		return fmt.Errorf("etcdswift: %s: %w (raise etcd's --max-txn-ops): %w", what, err, syscall.E2BIG)
	case strings.Contains(err.Error(), "request is too large"), strings.Contains(err.Error(), "larger than max"):
		return fmt.Errorf("etcdswift: %s: %w (raise etcd's --max-request-bytes): %w", what, err, syscall.EFBIG)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("etcdswift: %s: %w", what, err)
	}
	return fmt.Errorf("etcdswift: %s: %w: %w", what, err, syscall.EIO)
}

func swiftErr(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("etcdswift: %s: %w", what, err)
	}
	return fmt.Errorf("etcdswift: %s: %w: %w", what, err, syscall.EIO)
}

// Get returns a copy of key's value.
func (b *Backend) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	k := b.meta + string(key)
	rs := vfsbackend.ReadSetFrom(ctx)
	var opts []clientv3.OpOption
	if rs != nil {
		// After the call's commit, read etcd: the commit compared only
		// what was read before it.
		if c, ok := b.metaCache.get(k); ok && !rs.Committed() && !rs.Through() {
			rs.Key(k, c.rev)
			return []byte(c.value), nil
		}
		opts = append(opts, clientv3.WithSerializable()) // see scanRangeKV
	}
	resp, err := b.etcd.Get(ctx, k, opts...)
	if err != nil {
		return nil, etcdErr("get", err)
	}
	if len(resp.Kvs) == 0 {
		if rs != nil {
			rs.Key(k, 0)
		}
		return nil, fmt.Errorf("etcdswift: get %q: %w", key, syscall.ENOENT)
	}
	v := resp.Kvs[0].Value
	if v == nil {
		v = []byte{}
	}
	if rs != nil {
		rs.Key(k, resp.Kvs[0].ModRevision)
		b.metaCache.put(k, string(v), resp.Kvs[0].ModRevision)
	}
	return v, nil
}

// Scan calls fn for the keys with prefix that are >= start, in order, from
// one snapshot of the volume.
func (b *Backend) Scan(ctx context.Context, prefix, start []byte, fn func(key, value []byte) bool) error {
	if err := b.check(); err != nil {
		return err
	}
	from := b.meta + string(prefix)
	if bytes.Compare(start, prefix) > 0 {
		from = b.meta + string(start)
	}
	end := clientv3.GetPrefixRangeEnd(b.meta + string(prefix))
	return b.scanTracked(ctx, from, end, func(k, v []byte) bool { return fn(k[len(b.meta):], v) })
}

// scanTracked is scanRange for a call that reads through a read set, if
// ctx carries one: it notes every key seen and the range covered (up to
// the last key seen if fn stopped early), so that the call's commit fails
// if a key in it was created, changed or deleted meanwhile.
func (b *Backend) scanTracked(ctx context.Context, from, end string, fn func(key, value []byte) bool) error {
	rs := vfsbackend.ReadSetFrom(ctx)
	if rs == nil {
		return b.scanRange(ctx, from, end, fn)
	}
	var last string
	stopped := false
	var kvs []*mvccpb.KeyValue
	rev, err := b.scanRangeKV(ctx, from, end, true, func(kv *mvccpb.KeyValue) bool {
		kvs = append(kvs, kv)
		last = string(kv.Key)
		v := kv.Value
		if v == nil {
			v = []byte{}
		}
		if !fn(kv.Key, v) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		rs.Key(string(kv.Key), kv.ModRevision)
	}
	if stopped {
		end = last + "\x00"
	}
	rs.Range(from, end, rev)
	return nil
}

// scanRange reads [from, end) in pages, each at the first page's revision.
func (b *Backend) scanRange(ctx context.Context, from, end string, fn func(key, value []byte) bool) error {
	_, err := b.scanRangeKV(ctx, from, end, false, func(kv *mvccpb.KeyValue) bool {
		v := kv.Value
		if v == nil {
			v = []byte{}
		}
		return fn(kv.Key, v)
	})
	return err
}

// scanRangeKV is scanRange with etcd's key-values, returning the revision
// read at. If that revision was compacted away meanwhile, the rest is read
// at the present one, and the first revision is still the one returned
// (compares against it are conservative: they may fail, never pass
// wrongly).
//
// Reads for a call with a read set are serializable: the etcd member that
// answers does not first confirm with the leader that it is up to date (a
// round trip to a quorum, which stalls for seconds when the leader dies).
// A stale answer costs nothing but a retry: the call's commit compares the
// mod revisions it read with the current ones and fails, and a call that
// does not commit validates its reads with a linearizable transaction.
func (b *Backend) scanRangeKV(ctx context.Context, from, end string, serializable bool, fn func(kv *mvccpb.KeyValue) bool) (int64, error) {
	var rev, first int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(scanPage)}
		if serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := b.etcd.Get(ctx, from, opts...)
		if errors.Is(err, rpctypes.ErrCompacted) && rev != 0 {
			rev = 0 // the snapshot was compacted away: go on from the present
			continue
		}
		if err != nil {
			return 0, etcdErr("scan", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		if first == 0 {
			first = rev
		}
		for _, kv := range resp.Kvs {
			if !fn(kv) {
				return first, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return first, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Commit applies b's operations as one etcd transaction.
func (b *Backend) Commit(ctx context.Context, batch *vfsbackend.Batch) error {
	if err := b.check(); err != nil {
		return err
	}
	if batch.Len() == 0 {
		return nil
	}
	if b.readOnly {
		return fmt.Errorf("etcdswift: commit: volume opened read-only: %w", syscall.EROFS)
	}
	// The last operation on a key wins; etcd takes each key once.
	last := make(map[string]int, len(batch.Ops))
	for i, op := range batch.Ops {
		last[string(op.Key)] = i
	}
	ops := make([]clientv3.Op, 0, len(last))
	rs := vfsbackend.ReadSetFrom(ctx)
	written := make(map[string]bool, len(last))
	values := make(map[string]string, len(last))
	for i, op := range batch.Ops {
		if last[string(op.Key)] != i {
			continue
		}
		k := b.meta + string(op.Key)
		if op.Delete {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			v := string(op.Value)
			ops = append(ops, clientv3.OpPut(k, v))
			values[k] = v
		}
		written[k] = op.Delete
	}
	if rs == nil {
		// Whether or not it succeeded, what it wrote is no longer what
		// the cache holds.
		for k := range written {
			b.metaCache.drop(k)
		}
		resp, err := b.etcd.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return etcdErr(fmt.Sprintf("commit of %d operations", len(ops)), err)
		}
		b.cacheWritten(resp.Header.Revision, written, values)
		return nil
	}
	resp, err := b.etcd.Txn(ctx).If(readCompares(rs)...).Then(ops...).Commit()
	if err != nil {
		for k := range written { // it may have been applied
			b.metaCache.drop(k)
		}
		return etcdErr(fmt.Sprintf("commit of %d operations", len(ops)), err)
	}
	if !resp.Succeeded {
		b.metaCache.dropRead(rs)
		return fmt.Errorf("etcdswift: commit of %d operations: %w", len(ops), vfsbackend.ErrConflict)
	}
	rs.CommittedAt(resp.Header.Revision, written)
	b.cacheWritten(resp.Header.Revision, written, values)
	return nil
}

// cacheWritten notes a commit's writes at its revision in the metadata
// cache: a put key at its new value, a deleted one dropped.
func (b *Backend) cacheWritten(rev int64, written map[string]bool, values map[string]string) {
	for k, deleted := range written {
		if deleted {
			b.metaCache.drop(k)
		} else {
			b.metaCache.put(k, values[k], rev)
		}
	}
}

// readCompares turns a read set into the compares of an etcd transaction:
// each key read still has the mod revision it was read at (0: still
// absent), and no key in a range read was changed or created after the
// revision it was read at. (A key deleted from a range is caught by its
// own compare: every key a range read returned is in the set.)
func readCompares(rs *vfsbackend.ReadSet) []clientv3.Cmp {
	cmps := make([]clientv3.Cmp, 0, 4)
	rs.Each(func(k string, version int64) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", version))
	}, func(r vfsbackend.ReadRange) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.From), "<", r.Rev+1).WithRange(r.End))
	})
	return cmps
}

// ValidateReads fails with vfsbackend.ErrConflict if a key read through
// ctx's read set changed since (vfsbackend.SharedEngine): one etcd
// transaction of compares only.
func (b *Backend) ValidateReads(ctx context.Context) error {
	if err := b.check(); err != nil {
		return err
	}
	rs := vfsbackend.ReadSetFrom(ctx)
	if rs == nil || rs.Empty() {
		return nil
	}
	resp, err := b.etcd.Txn(ctx).If(readCompares(rs)...).Commit()
	if err != nil {
		return etcdErr("validate reads", err)
	}
	if !resp.Succeeded {
		b.metaCache.dropRead(rs)
		return fmt.Errorf("etcdswift: validate reads: %w", vfsbackend.ErrConflict)
	}
	return nil
}

// CountKeys counts the metadata keys with prefix (vfsbackend.SharedEngine).
func (b *Backend) CountKeys(ctx context.Context, prefix []byte) (uint64, error) {
	if err := b.check(); err != nil {
		return 0, err
	}
	resp, err := b.etcd.Get(ctx, b.meta+string(prefix), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, etcdErr("count keys", err)
	}
	return uint64(resp.Count), nil
}

// Sync has nothing to do: every Commit is on etcd's disks when it returns.
func (b *Backend) Sync(ctx context.Context) error { return b.check() }

// SyncData has nothing to do: data is written through to Swift.
func (b *Backend) SyncData(ctx context.Context, ino vfsbackend.Ino) error { return b.check() }

// Usage reports the space of the volume. With a configured capacity it is
// all free as far as the engine knows: the volume's use against it is the
// sum of its files' sizes, which package inode counts (the usage keys of
// every gateway) and subtracts. Without one it reports the bytes in the
// container or bucket against the container's Swift quota, else 1 PiB.
// Swift updates container statistics asynchronously, so the used bytes
// may lag behind recent writes; S3 keeps none, so they are summed from a
// listing of the bucket at most once a minute.
func (b *Backend) Usage(ctx context.Context) (vfsbackend.Usage, error) {
	if err := b.check(); err != nil {
		return vfsbackend.Usage{}, err
	}
	if b.capacity > 0 {
		return vfsbackend.Usage{TotalBytes: b.capacity, FreeBytes: b.capacity, AvailBytes: b.capacity}, nil
	}
	usedBytes, quota, err := b.store.usage(ctx)
	if err != nil {
		return vfsbackend.Usage{}, swiftErr("usage of the "+b.store.String(), err)
	}
	total := b.capacity
	if total == 0 && quota > 0 {
		total = uint64(quota)
	}
	if total == 0 {
		total = defaultCapacity
	}
	used := uint64(max(usedBytes, 0))
	free := uint64(0)
	if used < total {
		free = total - used
	}
	return vfsbackend.Usage{TotalBytes: total, FreeBytes: free, AvailBytes: free}, nil
}

// Close closes the connections to etcd and Swift.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	// Let the background deletes finish, for a while.
	b.delMu.Lock()
	b.delClosed = true
	close(b.delq)
	b.delMu.Unlock()
	done := make(chan struct{})
	go func() { b.delWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.log.Warn("etcdswift: close: replaced chunk versions still being deleted; the rest stays garbage until collected")
		b.delCancel()
		<-done
	}
	b.delCancel()
	b.closePins()
	return b.closeClients()
}

func (b *Backend) closeClients() error {
	var err error
	if b.etcd != nil {
		err = b.etcd.Close()
	}
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	return err
}

// randomVersion names a new chunk object version.
func randomVersion() (string, error) {
	var v [12]byte
	if _, err := rand.Read(v[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(v[:]), nil
}

func be64(n uint64) string {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], n)
	return string(p[:])
}

// AllocInos reserves n inode numbers from the volume's counter in etcd,
// unique across every gateway of the volume, and returns the first; the
// numbers are [first, first+n). The counter never goes below min. With
// n = 0 it only reads (vfsbackend.InoAllocator).
func (b *Backend) AllocInos(ctx context.Context, n uint64, min vfsbackend.Ino) (vfsbackend.Ino, error) {
	if err := b.check(); err != nil {
		return 0, err
	}
	if n > 0 {
		if err := b.checkWrite(); err != nil {
			return 0, err
		}
	}
	key := b.counters + "ino"
	for range maxRetries {
		resp, err := b.etcd.Get(ctx, key)
		if err != nil {
			return 0, etcdErr("inode counter", err)
		}
		next, rev := uint64(min), int64(0)
		if len(resp.Kvs) == 1 {
			if next, err = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64); err != nil {
				return 0, fmt.Errorf("etcdswift: inode counter %q: %w", resp.Kvs[0].Value, syscall.EIO)
			}
			rev = resp.Kvs[0].ModRevision
			next = max(next, uint64(min))
		}
		if n == 0 {
			return vfsbackend.Ino(next), nil
		}
		txn, err := b.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, strconv.FormatUint(next+n, 10))).Commit()
		if err != nil {
			return 0, etcdErr("inode counter", err)
		}
		if txn.Succeeded {
			return vfsbackend.Ino(next), nil
		}
	}
	return 0, fmt.Errorf("etcdswift: inode counter: too much contention: %w", syscall.EAGAIN)
}

// deleteObjects has replaced versions deleted in the background.
func (b *Backend) deleteObjects(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	var sync []string
	b.delMu.RLock()
	for _, n := range names {
		b.cache.drop(n)
		if b.delClosed {
			sync = append(sync, n)
			continue
		}
		select {
		case b.delq <- n:
		default:
			sync = append(sync, n) // queue full: delete here
		}
	}
	b.delMu.RUnlock()
	b.deleteNow(ctx, sync)
}

func (b *Backend) deleteLoop() {
	defer b.delWG.Done()
	for n := range b.delq {
		b.deleteNow(b.delCtx, []string{n})
	}
}

func (b *Backend) deleteNow(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	err := forEach(len(names), func(i int) error {
		return b.retry(ctx, func() error { return b.store.remove(ctx, names[i]) })
	})
	if err != nil {
		b.log.Warn("etcdswift: replaced chunk objects not deleted (garbage until collected)", zap.Int("objects", len(names)), zap.Error(err))
	}
}

// forEach runs fn(0..n-1), parallel at most at a time, and returns the
// first error.
func forEach(n int, fn func(i int) error) error {
	if n == 1 {
		return fn(0)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, parallel)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
