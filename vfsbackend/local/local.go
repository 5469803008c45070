package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/btree"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Name is the name the engine is registered under.
const Name = "local"

const (
	defaultSyncInterval     = time.Second
	defaultCompactThreshold = 64 << 20
	defaultMaxOpenFiles     = 256
	compactRetry            = 10 * time.Second // pause after a failed compaction
)

// ErrLocked is returned (wrapped, together with syscall.EBUSY) by Open when
// another process, or another Open in this process, holds the volume.
var ErrLocked = errors.New("volume is in use by another process")

func init() {
	if err := vfsbackend.Register(Name, func(o vfsbackend.Options) (vfsbackend.Backend, error) { return Open(o) }); err != nil {
		panic(err) // only reachable by a programming error at init time
	}
}

// tuning holds knobs that tests change; Open uses the defaults.
type tuning struct {
	compactThreshold int64 // WAL size that triggers a checkpoint
	memMax           int64 // overlay heap that triggers a checkpoint (half the metadata cache)
	maxOpenFiles     int   // size of the data file descriptor cache
	inlineMax        int64 // largest inline data object (0: none inline)
	reserveBytes     int64 // space held back for records that free space
}

// Backend is the local engine. Create it with Open.
type Backend struct {
	dir     string
	log     *zap.Logger
	tune    tuning
	lock    *os.File     // holds the flock
	dirMu   sync.RWMutex // protects dirFile against Close
	dirFile *os.File     // the volume directory, open, for Health
	closed  atomic.Bool
	failed  atomic.Pointer[error] // set by fail: every call returns it

	readOnly  bool       // Options.ReadOnly: nothing is ever written
	repair    bool       // Options.Repair
	formatted bool       // Open formatted a new volume
	closeMu   sync.Mutex // serializes Close

	// commitMu serializes commits: seq assignment, the WAL write and the
	// index update happen in the same order.
	commitMu sync.Mutex
	wal      *os.File // active WAL; swapped under commitMu and walMu
	walGen   uint64
	walSize  int64 // bytes in the active WAL
	seq      uint64
	broken   error // set when the WAL can no longer be appended to safely

	// walMu is held shared by Sync while it uses a WAL file, and
	// exclusively by compaction and Close to close one.
	//
	// Lock order: walMu before commitMu before idxMu. syncWAL holds walMu
	// while it takes commitMu to read the active WAL, so anything that
	// holds commitMu must never wait for walMu.
	walMu     sync.RWMutex
	syncedSeq atomic.Uint64 // every record <= syncedSeq is fsynced

	// idxMu protects act, frz and ckptDone. The store has its own
	// locking; lock order: a store read transaction before idxMu (Scan),
	// and nothing waits for the store while holding idxMu.
	idxMu    sync.RWMutex
	act      *memtable     // commits since the last checkpoint began
	frz      *memtable     // commits a checkpoint is writing to the store, or nil
	frzSeq   uint64        // the sequence number frz ends at
	frzGen   uint64        // the WAL generation that followed frz
	ckptDone chan struct{} // closed when the running checkpoint ends
	store    *store        // the on-disk index; nil only read-only without one

	// inoMu serializes the data operations that may move an inode's data
	// between inline and a data file (see inline.go).
	inoMu [64]sync.Mutex

	// reserve is space held back for records that free space (see
	// reserve.go).
	reserve reserve

	compacting atomic.Bool
	// compactAfter holds back compaction after a failed one (UnixNano):
	// on a full disk, every commit would start one and log its failure.
	compactAfter atomic.Int64
	compactWG    sync.WaitGroup

	data dataStore

	stop chan struct{}
	// observe times the periodic sync and the background checkpoints
	// (vfsbackend.Options.Observe); nil
	// if not asked for.
	observe  func(op string, start time.Time, err error)
	syncerWG sync.WaitGroup
}

var _ vfsbackend.Backend = (*Backend)(nil)

// Open opens (creating if needed) the volume in opts.Path.
func Open(opts vfsbackend.Options) (*Backend, error) {
	if opts.InlineBytes < 0 || opts.InlineBytes > vfsbackend.MaxInlineBytes {
		return nil, fmt.Errorf("local: open: InlineBytes %d is out of range 0..%d: %w", opts.InlineBytes, vfsbackend.MaxInlineBytes, syscall.EINVAL)
	}
	if opts.MetadataCacheBytes < 0 {
		return nil, fmt.Errorf("local: open: MetadataCacheBytes %d is negative: %w", opts.MetadataCacheBytes, syscall.EINVAL)
	}
	cache := opts.MetadataCacheBytes
	if cache == 0 {
		cache = vfsbackend.DefaultMetadataCacheBytes
	}
	tune := tuning{compactThreshold: defaultCompactThreshold, memMax: max(cache/2, minMemMax), maxOpenFiles: defaultMaxOpenFiles, inlineMax: int64(opts.InlineBytes), reserveBytes: defaultReserveBytes}
	return open(opts, tune)
}

func open(opts vfsbackend.Options, tune tuning) (_ *Backend, err error) {
	if opts.Path == "" {
		return nil, fmt.Errorf("local: open: empty Path: %w", syscall.EINVAL)
	}
	if tune.memMax <= 0 {
		tune.memMax = vfsbackend.DefaultMetadataCacheBytes / 2
	}
	dir, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("local: open %s: %w", opts.Path, err)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("engine", Name), zap.String("path", dir))
	if err := prepareDir(dir, opts); err != nil {
		return nil, fmt.Errorf("local: open: %w", err)
	}

	lockFlags := os.O_RDWR | os.O_CREATE
	if opts.ReadOnly {
		lockFlags = os.O_RDONLY
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), lockFlags, 0o600)
	if opts.ReadOnly && errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("local: open: %w", noVolume(dir, "it has no LOCK file"))
	}
	if err != nil {
		return nil, fmt.Errorf("local: open: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("local: open %s: %w (LOCK is held; is another proxyfsd serving it?): %w", dir, ErrLocked, syscall.EBUSY)
		}
		return nil, fmt.Errorf("local: open %s: flock: %w", dir, err)
	}
	b := &Backend{
		dir:      dir,
		log:      log,
		tune:     tune,
		lock:     lock,
		readOnly: opts.ReadOnly,
		repair:   opts.Repair,
		act:      newMemtable(),
		ckptDone: closedChan,
		stop:     make(chan struct{}),
		observe:  opts.Observe,
	}
	b.data.init(dir, tune.maxOpenFiles)
	defer func() {
		if err != nil {
			if b.wal != nil {
				_ = b.wal.Close()
			}
			if b.store != nil {
				_ = b.store.close()
			}
			_ = b.closeDir()
			_ = lock.Close()
		}
	}()
	if b.formatted, err = identify(dir, opts, log); err != nil {
		return nil, fmt.Errorf("local: open: %w", err)
	}
	if err := b.watchDir(); err != nil {
		return nil, fmt.Errorf("local: open: %w", err)
	}
	if err := b.recover(); err != nil {
		return nil, fmt.Errorf("local: open %s: %w", dir, err)
	}
	if !opts.ReadOnly {
		b.reserve.init(filepath.Join(dir, reserveName), tune.reserveBytes)
		b.reserve.refill(log)
	}
	if opts.ReadOnly {
		log.Info("volume opened read-only", zap.Uint64("seq", b.seq), zap.Int("replayed_keys", b.act.len()))
		return b, nil
	}
	interval := opts.SyncInterval
	if interval <= 0 {
		interval = defaultSyncInterval
	}
	log.Info("volume opened", zap.Uint64("seq", b.seq), zap.Uint64("index_seq", b.storeSeq()), zap.Int("replayed_keys", b.act.len()), zap.Int64("wal_bytes", b.walSize))
	b.syncerWG.Add(1)
	go b.syncer(interval)
	if b.overCheckpoint(b.act.mem) && b.compacting.CompareAndSwap(false, true) {
		// A long replay (a checkpoint that a crash interrupted, a volume
		// converted from a snapshot or made with a larger cache): write it
		// to the index in the background, as a commit would have.
		b.compactWG.Add(1)
		go b.compact()
	}
	return b, nil
}

// recover loads the snapshot and replays the WALs, leaving the last WAL
// open for appending. A torn tail (the last record of the last WAL cut
// short or garbled, with nothing intact behind it: an unacknowledged
// commit) is cut off. Damage with intact records behind it is not a
// torn tail: recover refuses to drop those records (ErrDamaged) unless
// b.repair is set, in which case it saves the damaged WAL aside first. A
// read-only backend replays in memory and writes nothing.
func (b *Backend) recover() error {
	if !b.readOnly {
		// A compaction (before the index) or a conversion that did not finish.
		_ = os.Remove(filepath.Join(b.dir, snapTmpName))
		_ = os.Remove(filepath.Join(b.dir, indexTmpName))
	}
	wals, err := listWALs(b.dir)
	if err != nil {
		return err
	}
	if err := b.openIndex(len(wals) > 0); err != nil {
		return err
	}
	if b.store != nil {
		b.seq = b.store.seq.Load()
	}
	// A compaction creates the next WAL before it switches to it. If we
	// died in between, the new WAL is empty and the previous one may end in
	// a torn record: drop the empty one so that the torn tail is the last
	// WAL's and gets truncated. The previous WAL becomes the active one,
	// which is fine at any stage of a compaction (records the snapshot
	// already holds are skipped by sequence number).
	for len(wals) > 1 {
		last := wals[len(wals)-1]
		st, err := os.Stat(last.path)
		if err != nil {
			return err
		}
		if st.Size() > int64(len(walMagic)) {
			break
		}
		wals = wals[:len(wals)-1]
		if b.readOnly {
			continue
		}
		b.log.Warn("removing empty WAL left by an interrupted compaction", zap.String("wal", last.path))
		if err := os.Remove(last.path); err != nil {
			return err
		}
		if err := syncDir(b.dir); err != nil {
			return err
		}
	}
	for i, w := range wals {
		data, err := os.ReadFile(w.path)
		if err != nil {
			return err
		}
		good, torn, err := replayWAL(data, b.act.apply, &b.seq)
		if err != nil {
			return fmt.Errorf("%s: %w", w.path, err)
		}
		last := i == len(wals)-1
		if torn && !last {
			return fmt.Errorf("%w: %w: %s is damaged at offset %d and is not the last WAL; restore the volume from a backup",
				errCorrupt, vfsbackend.ErrDamaged, w.path, good)
		}
		if !last {
			continue
		}
		if torn {
			if n, lastSeq := recordsAfterDamage(data, good, b.seq); n > 0 {
				if !b.repair {
					return fmt.Errorf("%w: %w: %s is damaged at offset %d of %d, and %d intact records "+
						"(sequence %d to %d) follow the damage, so this is not the torn tail of a crash; "+
						"nothing was changed. Run proxyfsd -repair to save the WAL aside and keep only the "+
						"records before the damage (losing those %d), or restore the volume from a backup",
						errCorrupt, vfsbackend.ErrDamaged, w.path, good, len(data), n, b.seq+1, lastSeq, n)
				}
				saved, err := saveAside(w.path, data)
				if err != nil {
					return fmt.Errorf("repair: save %s aside: %w", w.path, err)
				}
				b.log.Error("repair: WAL damaged before its end: dropping the intact records behind the damage; "+
					"the damaged WAL was saved aside",
					zap.String("wal", w.path), zap.String("saved", saved), zap.Int64("offset", good), zap.Int("records", n),
					zap.Uint64("from_seq", b.seq+1), zap.Uint64("to_seq", lastSeq))
			} else {
				b.log.Warn("truncating torn WAL tail (an unacknowledged commit)",
					zap.String("wal", w.path), zap.Int64("offset", good), zap.Int("size", len(data)), zap.Bool("read_only", b.readOnly))
			}
		}
		if b.readOnly {
			b.walGen, b.walSize = w.gen, good
			continue
		}
		f, err := os.OpenFile(w.path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		b.wal, b.walGen = f, w.gen
		if good < int64(len(walMagic)) {
			if err := f.Truncate(0); err != nil {
				return err
			}
			if _, err := f.WriteAt([]byte(walMagic), 0); err != nil {
				return err
			}
			good = int64(len(walMagic))
		} else if torn {
			if err := f.Truncate(good); err != nil {
				return err
			}
		}
		if torn {
			if err := f.Sync(); err != nil {
				return err
			}
		}
		b.walSize = good
	}
	b.syncedSeq.Store(b.seq)
	if b.readOnly {
		return nil
	}
	if b.wal == nil {
		f, err := createWAL(b.dir, 1)
		if err != nil {
			return err
		}
		b.wal, b.walGen, b.walSize = f, 1, int64(len(walMagic))
	}
	// Everything replayed may only be in the page cache (the previous
	// process was killed): make it durable before we build on it.
	return b.wal.Sync()
}

// saveAside copies a damaged file's content (data) to a new file beside it
// named <path>.damaged-<time>, durably, and returns its path.
func saveAside(path string, data []byte) (string, error) {
	dst := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return "", err
	}
	return dst, syncDir(filepath.Dir(dst))
}

// Formatted reports whether Open formatted a new volume (rather than
// opening an existing one).
func (b *Backend) Formatted() bool { return b.formatted }

func (b *Backend) check() error {
	if b.closed.Load() {
		return fmt.Errorf("local: backend is closed: %w", syscall.EIO)
	}
	if p := b.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// errReadOnly is what every change of a volume opened read-only returns.
var errReadOnly = fmt.Errorf("local: volume opened read-only: %w", syscall.EROFS)

// checkWrite is checkCtx for calls that change the volume.
func checkWrite(ctx context.Context, b *Backend) error {
	if b.readOnly {
		return errReadOnly
	}
	return checkCtx(ctx, b)
}

func checkCtx(ctx context.Context, b *Backend) error {
	if err := b.check(); err != nil {
		return err
	}
	if ctx != nil {
		return ctx.Err()
	}
	return nil
}

// errNoKey is Get's answer for a missing key: the inode layer asks for
// missing keys on every create (is the name free?), so the error is made
// once rather than formatted with the key each time.
var errNoKey = fmt.Errorf("local: get: key not found: %w", syscall.ENOENT)

// Get implements vfsbackend.Backend.
func (b *Backend) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := checkCtx(ctx, b); err != nil {
		return nil, err
	}
	v, ok, err := b.lookup(false, key)
	if err != nil {
		return nil, fmt.Errorf("local: get: %w", err)
	}
	if !ok {
		return nil, errNoKey
	}
	return v, nil
}

// lookup finds key in the key space, or with inline set the inline object
// whose inoKey is key: the overlays first, newest first, then the store.
// The value is the caller's (a copy).
func (b *Backend) lookup(inline bool, key []byte) ([]byte, bool, error) {
	b.idxMu.RLock()
	act, frz, st := b.act, b.frz, b.store
	var v []byte
	var del, found bool
	if inline {
		v, del, found = lookup(act.inl, key)
		if !found && frz != nil {
			v, del, found = lookup(frz.inl, key)
		}
	} else {
		v, del, found = lookup(act.kv, key)
		if !found && frz != nil {
			v, del, found = lookup(frz.kv, key)
		}
	}
	b.idxMu.RUnlock()
	switch {
	case found && del:
		return nil, false, nil
	case found:
		// Overlay values are never modified in place (a put replaces the
		// entry), but callers may modify what we return.
		return bytes.Clone(v), true, nil
	case st == nil:
		return nil, false, nil
	}
	bucket := bucketKeys
	if inline {
		bucket = bucketInline
	}
	v, ok, err := st.get(bucket, key)
	if err != nil {
		return nil, false, fmt.Errorf("metadata index: %w: %w", err, syscall.EIO)
	}
	return v, ok, nil
}

// Scan implements vfsbackend.Backend.
func (b *Backend) Scan(ctx context.Context, prefix, start []byte, fn func(key, value []byte) bool) error {
	if err := checkCtx(ctx, b); err != nil {
		return err
	}
	from := prefix
	if bytes.Compare(start, prefix) > 0 {
		from = start
	}
	return b.scan(bucketKeys, prefix, from, fn)
}

// scan merges the overlays and the store's bucket (bucketKeys or
// bucketInline) from from on, for keys with prefix.
func (b *Backend) scan(bucket, prefix, from []byte, fn func(key, value []byte) bool) error {
	for {
		if again, err := b.scanOnce(bucket, prefix, from, fn); !again {
			return err
		}
	}
}

// scanOnce is scan; again says that a checkpoint's write started or ended
// between the store's read transaction and the overlays, and that nothing
// was scanned: the transaction could miss what a frozen overlay, already
// dropped, held.
func (b *Backend) scanOnce(bucket, prefix, from []byte, fn func(key, value []byte) bool) (again bool, err error) {
	// The store's read transaction first, then idxMu (see Backend.idxMu).
	b.idxMu.RLock()
	st := b.store
	b.idxMu.RUnlock()
	var sc *bolt.Cursor
	var rt *readTx
	scanned := false // mergeScan returned: no damage, no panic of fn
	if st != nil {
		var rerr error
		if rt, rerr = st.readTx(); rerr != nil {
			return false, fmt.Errorf("local: scan: metadata index: %w: %w", rerr, syscall.EIO)
		}
		sc = rt.keys
		if bytes.Equal(bucket, bucketInline) {
			sc = rt.inl
		}
		// The transaction is kept for reuse only after a scan that ended
		// normally (not after damage, nor a panic of fn).
		defer func() {
			if scanned {
				st.release(rt)
			} else {
				_ = rt.tx.Rollback()
			}
		}()
	}
	b.idxMu.RLock()
	defer b.idxMu.RUnlock()
	if rt != nil && !st.current(rt) {
		return true, nil
	}
	act, frz := b.act.kv, (*btree.BTreeG[ment])(nil)
	if bytes.Equal(bucket, bucketInline) {
		act = b.act.inl
	}
	if b.frz != nil {
		frz = b.frz.kv
		if bytes.Equal(bucket, bucketInline) {
			frz = b.frz.inl
		}
	}
	// bbolt panics on some damaged pages (recoverDamage); a panic of the
	// caller's fn is the caller's own and is not taken for damage.
	inFn := false
	defer func() {
		if inFn {
			return
		}
		if r := recover(); r != nil {
			err = damaged(r)
		}
	}()
	mergeScan(act, frz, sc, prefix, from, func(key, value []byte) bool {
		inFn = true
		more := fn(key, value)
		inFn = false
		return more
	})
	scanned = true
	return false, nil
}

// Commit implements vfsbackend.Backend.
func (b *Backend) Commit(ctx context.Context, batch *vfsbackend.Batch) error {
	if err := checkWrite(ctx, b); err != nil {
		return err
	}
	if batch == nil || len(batch.Ops) == 0 {
		return nil
	}
	for _, op := range batch.Ops {
		if len(op.Key) > maxKeySize {
			return fmt.Errorf("local: commit: key of %d bytes: keys are at most %d bytes: %w", len(op.Key), maxKeySize, syscall.EINVAL)
		}
	}
	return b.commitRecord(encodeRecord(batch), batch.Frees, func() {
		for _, op := range batch.Ops {
			if op.Delete {
				b.act.apply(opDelete, op.Key, nil)
			} else {
				b.act.apply(opPut, op.Key, op.Value)
			}
		}
	})
}

// commitOps appends one WAL record holding ops and applies them; frees is
// vfsbackend.Batch.Frees.
func (b *Backend) commitOps(frees bool, ops ...walOp) error {
	return b.commitRecord(encodeOps(ops), frees, func() {
		for _, op := range ops {
			b.act.apply(op.kind, op.key, op.value)
		}
	})
}

// commitRecord appends rec (from encodeRecord or encodeOps) to the WAL
// and then calls apply, which applies the same ops to b.act, with idxMu
// held. A record that frees space and meets a full disk gives up the
// space reserve and tries again.
func (b *Backend) commitRecord(rec []byte, frees bool, apply func()) error {
	if len(rec)-recHeaderSize > maxRecordSize {
		// Replay would take a longer record for garbage.
		return fmt.Errorf("local: commit: batch of %d bytes is over the %d byte limit: %w", len(rec), maxRecordSize, syscall.EFBIG)
	}
	crc := crc32.Checksum(rec[recHeaderSize:], castagnoli)

	b.waitCheckpoint()
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	if err := b.check(); err != nil {
		return err
	}
	if b.broken != nil {
		return fmt.Errorf("local: commit: WAL unusable after an earlier error (%v): %w", b.broken, syscall.EIO)
	}
	seq := b.seq + 1
	finishRecord(rec, crc, seq)
	err := b.appendWAL(rec)
	if err != nil && frees && errors.Is(err, syscall.ENOSPC) && b.reserve.release(b.log) {
		err = b.appendWAL(rec)
	}
	if err != nil {
		return fmt.Errorf("local: commit: %w", err)
	}
	b.walSize += int64(len(rec))
	b.seq = seq

	b.idxMu.Lock()
	apply()
	mem := b.act.mem
	retry := b.frz != nil // a failed checkpoint's overlay waits to be written
	b.idxMu.Unlock()

	if (retry || b.overCheckpoint(mem)) && time.Now().UnixNano() >= b.compactAfter.Load() &&
		b.compacting.CompareAndSwap(false, true) {
		b.compactWG.Add(1)
		go b.compact()
	}
	return nil
}

// appendWAL writes rec at the end of the active WAL, with commitMu held.
// After a failure the WAL is cut back to its last good record.
func (b *Backend) appendWAL(rec []byte) error {
	if b.broken != nil {
		return fmt.Errorf("WAL unusable after an earlier error (%v): %w", b.broken, syscall.EIO)
	}
	if _, err := b.wal.WriteAt(rec, b.walSize); err != nil {
		// A partial record may be on disk: cut it off so the next record
		// follows the last good one.
		if terr := b.wal.Truncate(b.walSize); terr != nil {
			b.broken = terr
			b.log.Error("cannot truncate WAL after failed write", zap.Error(err), zap.NamedError("truncate_error", terr))
		}
		return err
	}
	return nil
}

// Sync implements vfsbackend.Backend.
func (b *Backend) Sync(ctx context.Context) error {
	if err := checkCtx(ctx, b); err != nil {
		return err
	}
	return b.sync()
}

func (b *Backend) sync() error {
	// A flush must not be acknowledged into a deleted directory.
	if err := b.Health(); err != nil {
		return err
	}
	if err := b.data.syncDirty(); err != nil {
		return fmt.Errorf("local: sync data: %w", err)
	}
	return b.syncWAL()
}

// syncWAL fsyncs the active WAL if it holds records not yet fsynced.
func (b *Backend) syncWAL() error {
	b.walMu.RLock()
	defer b.walMu.RUnlock()
	b.commitMu.Lock()
	w, seq := b.wal, b.seq
	b.commitMu.Unlock()
	if b.syncedSeq.Load() >= seq {
		return nil
	}
	if err := w.Sync(); err != nil {
		return fmt.Errorf("local: sync WAL: %w", err)
	}
	for {
		old := b.syncedSeq.Load()
		if old >= seq || b.syncedSeq.CompareAndSwap(old, seq) {
			return nil
		}
	}
}

// SyncData implements vfsbackend.Backend.
//
// The three fsyncs it needs (the data file, the directories whose entries
// changed, the WAL) are independent, so they run at once: a journaling
// filesystem then commits them together. Measured on ext4 for a new 4 KiB
// file: 770 us one after the other, 475 us at once. An inline object is in
// the WAL: one fsync.
func (b *Backend) SyncData(ctx context.Context, ino vfsbackend.Ino) error {
	if err := checkCtx(ctx, b); err != nil {
		return err
	}
	if err := b.Health(); err != nil {
		return err
	}
	if _, ok, err := b.inline(ino); err != nil {
		return fmt.Errorf("local: sync data %d: %w", ino, err)
	} else if ok {
		return b.syncWAL() // the object is in the WAL
	}
	var wg sync.WaitGroup
	var fileErr, dirErr error
	wg.Add(2)
	go func() { defer wg.Done(); fileErr = b.data.syncFile(ino) }()
	go func() { defer wg.Done(); dirErr = b.data.syncDirs() }()
	walErr := b.syncWAL()
	wg.Wait()
	if err := errors.Join(fileErr, dirErr); err != nil {
		return fmt.Errorf("local: sync data %d: %w", ino, err)
	}
	return walErr
}

// syncer calls Sync every interval until Close.
func (b *Backend) syncer(interval time.Duration) {
	defer b.syncerWG.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			if b.failed.Load() != nil {
				continue // logged once, by fail
			}
			start := time.Now()
			err := b.sync()
			if b.observe != nil {
				b.observe("sync", start, err)
			}
			if err != nil {
				b.log.Error("periodic sync failed", zap.Error(err))
			}
			b.reserve.refill(b.log)
		}
	}
}

// ListData implements vfsbackend.Backend.
func (b *Backend) ListData(ctx context.Context, fn func(ino vfsbackend.Ino, size int64) bool) error {
	if err := checkCtx(ctx, b); err != nil {
		return err
	}
	more, err := b.listInline(fn)
	if err != nil || !more {
		return err
	}
	var lerr error
	err = b.data.list(func(ino vfsbackend.Ino, size int64) bool {
		_, inline, err := b.lookup(true, inoKey(ino))
		if err != nil {
			lerr = err
			return false
		}
		if inline {
			return true // a file left by an interrupted move: not the object
		}
		return fn(ino, size)
	})
	return errors.Join(err, lerr)
}

// Usage implements vfsbackend.Backend. It reports the numbers of the
// filesystem that holds the volume.
func (b *Backend) Usage(ctx context.Context) (vfsbackend.Usage, error) {
	if err := checkCtx(ctx, b); err != nil {
		return vfsbackend.Usage{}, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.dir, &st); err != nil {
		return vfsbackend.Usage{}, fmt.Errorf("local: statfs %s: %w", b.dir, err)
	}
	bs := uint64(st.Frsize) // block counts are in fragment units
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return vfsbackend.Usage{
		TotalBytes:  st.Blocks * bs,
		FreeBytes:   st.Bfree * bs,
		AvailBytes:  st.Bavail * bs,
		TotalInodes: st.Files,
		FreeInodes:  st.Ffree,
	}, nil
}

// Close implements vfsbackend.Backend: it stops the background work, syncs
// and closes every file. Calling Close again returns nil.
func (b *Backend) Close() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	if b.closed.Load() {
		return nil
	}
	close(b.stop)
	b.syncerWG.Wait()
	// From here on new calls fail and no compaction starts (both are
	// decided under commitMu); wait for a running one to finish.
	b.commitMu.Lock()
	b.closed.Store(true)
	b.commitMu.Unlock()
	b.compactWG.Wait()
	errs := []error{b.sync()}

	b.walMu.Lock() // lock order: walMu before commitMu (see Backend)
	b.commitMu.Lock()
	if b.wal != nil {
		errs = append(errs, b.wal.Close())
	}
	b.commitMu.Unlock()
	b.walMu.Unlock()

	if b.store != nil {
		errs = append(errs, b.store.close())
	}
	errs = append(errs, b.data.closeAll(), b.closeDir(), b.lock.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("local: close: %w", err)
	}
	b.log.Info("volume closed")
	return nil
}
