package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// The metadata index: an on-disk ordered store (bbolt) that holds the state
// as of a WAL sequence number, under an in-memory overlay of the commits
// since (see doc.go, "Metadata").

const (
	indexName    = "index"     // the store
	indexTmpName = "index.tmp" // a conversion from a snapshot in progress
	// memEntryOverhead estimates the heap an overlay entry costs beyond
	// its key and value (the item in its btree node, slice headers).
	memEntryOverhead = 80
	// checkpointOps bounds the operations of one store transaction when a
	// checkpoint writes the overlay (see writeStore).
	checkpointOps = 64 << 10
	// fillPercent is how full bbolt fills a page before it splits it when
	// a checkpoint writes: most keys are written in ascending order (inode
	// numbers, cookies, and each checkpoint sorts its keys), where bbolt's
	// default of half full would leave half of each page empty.
	fillPercent = 0.9
	// initialMmapSize is the address space bbolt maps at once. When the
	// file outgrows its map, bbolt maps it again, and that waits for every
	// read and holds back new ones: with a map larger than any index, reads
	// never wait for a checkpoint. It is address space, not memory.
	initialMmapSize = 64 << 30
	// maxKeySize is the longest key: bbolt's limit, less storeKey's byte.
	maxKeySize = bolt.MaxKeySize - 1
)

var (
	bucketKeys   = []byte("k") // the key space
	bucketInline = []byte("i") // inline data objects, by 8-byte inode number
	bucketMeta   = []byte("m") // metaSeq, metaFormat
	metaSeq      = []byte("seq")
	metaFormat   = []byte("format")
	indexFormat  = []byte("PFSIDX01")
)

// ment is an overlay entry: a key's latest value, or its deletion (del)
// that hides the store's value.
type ment struct {
	key, value []byte
	del        bool
}

func lessMent(a, b ment) bool { return string(a.key) < string(b.key) }

// memtable is the overlay of one generation of commits: the key space and
// the inline data objects (keyed by inoKey), with the heap they cost.
type memtable struct {
	kv, inl *btree.BTreeG[ment]
	mem     int64
	ops     int
}

func newMemtable() *memtable {
	return &memtable{kv: btree.NewG(32, lessMent), inl: btree.NewG(32, lessMent)}
}

// apply records one op, copying key and value.
func (m *memtable) apply(kind byte, key, value []byte) {
	t := m.kv
	e := ment{key: bytes.Clone(key)}
	switch kind {
	case opPut:
		e.value = append([]byte{}, value...)
	case opDelete:
		e.del = true
	case opInlinePut:
		t, e.value = m.inl, append([]byte{}, value...)
	case opInlineDel:
		t, e.del = m.inl, true
	}
	if e.key == nil {
		e.key = []byte{}
	}
	if old, ok := t.ReplaceOrInsert(e); ok {
		m.mem -= int64(len(old.key) + len(old.value) + memEntryOverhead)
	} else {
		m.ops++
	}
	m.mem += int64(len(e.key) + len(e.value) + memEntryOverhead)
}

func (m *memtable) len() int { return m.kv.Len() + m.inl.Len() }

// lookup finds key in t: found says the overlay decides (a value, or a
// deletion when del).
func lookup(t *btree.BTreeG[ment], key []byte) (value []byte, del, found bool) {
	e, ok := t.Get(ment{key: key})
	if !ok {
		return nil, false, false
	}
	return e.value, e.del, true
}

// store is the on-disk part of the index.
type store struct {
	db  *bolt.DB
	seq atomic.Uint64 // the WAL sequence number the store reflects

	// Read transactions that get reuses: beginning and ending a bbolt
	// transaction takes two of the database's global mutexes, allocates,
	// and opening a bucket searches the root, for every key; a lookup
	// reads three or four. A transaction is one goroutine's at a time (it
	// is taken out of idle while used). Only writes change the store
	// (write, by a checkpoint): a write empties idle and keeps nothing
	// while it runs, and gen changes at its start and end, so a
	// transaction kept in idle always began after the last write ended
	// and sees the store as it is. Keeping none during a write also means
	// that bbolt never waits for an idle transaction (to remap the file,
	// or to close the database).
	txMu    sync.Mutex
	idle    []*readTx
	gen     uint64 // changes at the start and end of every write
	writing bool   // a write (or close) is under way: keep nothing
}

// readTx is a read transaction of the store with a cursor on each bucket
// (reused: bbolt's Bucket.Get makes a cursor, and grows its stack, for
// every key).
type readTx struct {
	tx        *bolt.Tx
	keys, inl *bolt.Cursor
	gen       uint64 // store.gen when it began
}

// maxIdleTx bounds the read transactions a store keeps for reuse.
const maxIdleTx = 64

// openStore opens dir/index, creating it (empty, as of sequence 0) when
// create is set and it does not exist. It returns nil, nil when it does not
// exist and create is not set.
func openStore(dir string, create, readOnly bool) (*store, error) {
	path := filepath.Join(dir, indexName)
	if _, err := os.Stat(path); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if !create || readOnly {
			return nil, nil
		}
		if err := createStore(dir, path, func(*bolt.Tx) error { return nil }, 0); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second, // our LOCK file already excludes other processes
		ReadOnly:        readOnly,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %w: cannot open the metadata index %s: %w", errCorrupt, vfsbackend.ErrDamaged, errDamagedIndex, path, err)
	}
	s := &store{db: db}
	if err := db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil || tx.Bucket(bucketKeys) == nil || tx.Bucket(bucketInline) == nil {
			return errors.New("buckets missing")
		}
		if f := m.Get(metaFormat); !bytes.Equal(f, indexFormat) {
			return fmt.Errorf("format %q, want %q", f, indexFormat)
		}
		v := m.Get(metaSeq)
		if len(v) != 8 {
			return errors.New("no sequence number")
		}
		s.seq.Store(binary.BigEndian.Uint64(v))
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %w: %w: metadata index %s: %w", errCorrupt, vfsbackend.ErrDamaged, errDamagedIndex, path, err)
	}
	return s, nil
}

// errDamagedIndex tells an operator what a damaged index means.
var errDamagedIndex = errors.New("the metadata index is damaged; restore the volume from a backup")

// createStore writes a new store holding what fill puts, as of seq, to
// dir/index.tmp, fsyncs it and renames it to path durably: a crash leaves
// either no index or the complete one.
func createStore(dir, path string, fill func(*bolt.Tx) error, seq uint64) error {
	tmp := filepath.Join(dir, indexTmpName)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketKeys, bucketInline, bucketMeta} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if err := m.Put(metaFormat, indexFormat); err != nil {
			return err
		}
		if err := m.Put(metaSeq, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return err
		}
		return fill(tx)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// Keys are stored behind a zero byte, since bbolt keys cannot be empty
// and ours can.
func storeKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	copy(k[1:], key)
	return k
}

// get reads key from bucket (bucketKeys or bucketInline) into a copy; ok
// is false if it is missing.
func (s *store) get(bucket, key []byte) (value []byte, ok bool, err error) {
	rt, err := s.readTx()
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if r := recover(); r != nil {
			// A damaged page: end the transaction rather than keep it.
			_ = rt.tx.Rollback()
			value, ok, err = nil, false, damaged(r)
			return
		}
		s.release(rt)
	}()
	c := rt.keys
	if bytes.Equal(bucket, bucketInline) {
		c = rt.inl
	}
	var kb [128]byte // storeKey on the stack, for most keys
	var k []byte
	if len(key) < len(kb) {
		k = append(append(kb[:0], 0), key...)
	} else {
		k = storeKey(key)
	}
	// Bucket.Get, with our cursor (the buckets hold no nested buckets).
	if sk, v := c.Seek(k); sk != nil && bytes.Equal(sk, k) {
		return append([]byte{}, v...), true, nil
	}
	return nil, false, nil
}

// readTx returns an idle read transaction, or begins one; give it back
// with release.
func (s *store) readTx() (rt *readTx, err error) {
	s.txMu.Lock()
	if n := len(s.idle); n > 0 {
		rt = s.idle[n-1]
		s.idle[n-1] = nil
		s.idle = s.idle[:n-1]
		s.txMu.Unlock()
		return rt, nil
	}
	gen := s.gen
	s.txMu.Unlock()
	defer recoverDamage(&err)
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	keys, inl := tx.Bucket(bucketKeys), tx.Bucket(bucketInline)
	if keys == nil || inl == nil {
		_ = tx.Rollback()
		return nil, errors.New("buckets missing")
	}
	return &readTx{tx: tx, keys: keys.Cursor(), inl: inl.Cursor(), gen: gen}, nil
}

// release keeps rt for reuse if no write started since it began, else
// ends it.
func (s *store) release(rt *readTx) {
	s.txMu.Lock()
	if !s.writing && rt.gen == s.gen && len(s.idle) < maxIdleTx {
		s.idle = append(s.idle, rt)
		rt = nil
	}
	s.txMu.Unlock()
	if rt != nil {
		_ = rt.tx.Rollback()
	}
}

// current says whether no write started or ended since rt began: then rt
// sees every write that ended before the caller's call, and a write under
// way still has its frozen overlay in place.
func (s *store) current(rt *readTx) bool {
	s.txMu.Lock()
	defer s.txMu.Unlock()
	return rt.gen == s.gen
}

// quiesce ends the idle read transactions and keeps none until resume;
// writing starts with it. Transactions in use end when released.
func (s *store) quiesce() {
	s.txMu.Lock()
	idle := s.idle
	s.idle = nil
	s.writing = true
	s.gen++
	s.txMu.Unlock()
	for _, rt := range idle {
		_ = rt.tx.Rollback()
	}
}

// resume lets read transactions be kept again, after a write.
func (s *store) resume() {
	s.txMu.Lock()
	s.writing = false
	s.gen++
	s.txMu.Unlock()
}

// close ends the idle read transactions and closes the database.
func (s *store) close() error {
	s.quiesce()
	return s.db.Close()
}

// write applies a memtable to the store and records seq, in transactions
// of at most checkpointOps operations each fsynced by bbolt; only the last
// one records seq. A crash between them leaves the store with part of m
// but the older sequence number: replaying the WAL from there puts or
// deletes every key m touched again, in order, so the result is the same.
func (s *store) write(m *memtable, seq uint64) error {
	s.quiesce()
	defer s.resume()
	type src struct {
		t      *btree.BTreeG[ment]
		bucket []byte
	}
	var pending []ment
	var pendingBucket []byte
	flush := func(last bool) error {
		err := s.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(pendingBucket)
			bk.FillPercent = fillPercent
			for _, e := range pending {
				var err error
				if e.del {
					err = bk.Delete(storeKey(e.key))
				} else {
					err = bk.Put(storeKey(e.key), e.value)
				}
				if err != nil {
					return fmt.Errorf("key %q: %w", e.key, err)
				}
			}
			if last {
				return tx.Bucket(bucketMeta).Put(metaSeq, binary.BigEndian.AppendUint64(nil, seq))
			}
			return nil
		})
		pending = pending[:0]
		return err
	}
	for _, sc := range []src{{m.kv, bucketKeys}, {m.inl, bucketInline}} {
		var err error
		pendingBucket = sc.bucket
		sc.t.Ascend(func(e ment) bool {
			pending = append(pending, e)
			if len(pending) >= checkpointOps {
				err = flush(false)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
		if len(pending) > 0 {
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	if err := flush(true); err != nil {
		return err
	}
	s.seq.Store(seq)
	return nil
}

// recoverDamage turns a panic of bbolt, which it raises on some damaged
// pages, into an error: a damaged index fails calls, it does not crash the
// daemon.
func recoverDamage(err *error) {
	if r := recover(); r != nil {
		*err = damaged(r)
	}
}

// damaged is the error of a bbolt panic r.
func damaged(r any) error {
	return fmt.Errorf("%w: %w: %v", errCorrupt, errDamagedIndex, r)
}

// memCursor walks a memtable's btree in key order, a few entries at a
// time, for a merge with the store (the btree has no iterator of its own).
// The tree must not change while the cursor is used: the caller holds
// idxMu for reading. It stops at the first key without prefix: a scan of
// a few keys (a case-insensitive lookup) copies those, not a chunk of the
// keys after them.
type memCursor struct {
	t      *btree.BTreeG[ment]
	prefix []byte
	buf    []ment
	i      int
	last   []byte // the last key buffered
	done   bool
}

const memCursorChunk = 64

func newMemCursor(t *btree.BTreeG[ment], prefix, from []byte) *memCursor {
	c := &memCursor{t: t, prefix: prefix}
	if t == nil {
		c.done = true
		return c
	}
	c.fill(from, true)
	return c
}

func (c *memCursor) fill(from []byte, inclusive bool) {
	c.buf, c.i = c.buf[:0], 0
	c.t.AscendGreaterOrEqual(ment{key: from}, func(e ment) bool {
		if !inclusive && bytes.Equal(e.key, from) {
			return true
		}
		if !bytes.HasPrefix(e.key, c.prefix) {
			c.done = true
			return false
		}
		c.buf = append(c.buf, e)
		return len(c.buf) < memCursorChunk
	})
	if len(c.buf) < memCursorChunk {
		c.done = true
	}
	if len(c.buf) > 0 {
		c.last = c.buf[len(c.buf)-1].key
	}
}

// cur returns the current entry; ok is false at the end.
func (c *memCursor) cur() (ment, bool) {
	if c.i < len(c.buf) {
		return c.buf[c.i], true
	}
	if c.done || c.t == nil {
		return ment{}, false
	}
	c.fill(c.last, false)
	if c.i < len(c.buf) {
		return c.buf[c.i], true
	}
	return ment{}, false
}

func (c *memCursor) next() { c.i++ }

// mergeScan calls fn for each live key >= from that starts with prefix,
// in order, from the overlays (newest first: act shadows frz, which
// shadows the store) and the store's bucket read in tx (nil: no store).
func mergeScan(act, frz *btree.BTreeG[ment], sc *bolt.Cursor, prefix, from []byte, fn func(key, value []byte) bool) {
	a, f := newMemCursor(act, prefix, from), newMemCursor(frz, prefix, from)
	var sk, sv []byte
	if sc != nil {
		sk, sv = sc.Seek(storeKey(from))
		if sk != nil {
			sk = sk[1:]
		}
	}
	for {
		ae, aok := a.cur()
		fe, fok := f.cur()
		// The smallest key among the three sources; an equal key in a newer
		// source shadows the older ones.
		var key []byte
		if aok {
			key = ae.key
		}
		if fok && (key == nil || bytes.Compare(fe.key, key) < 0) {
			key = fe.key
		}
		if sk != nil && (key == nil || bytes.Compare(sk, key) < 0) {
			key = sk
		}
		if key == nil || !bytes.HasPrefix(key, prefix) {
			return
		}
		var value []byte
		del, decided := false, false
		if aok && bytes.Equal(ae.key, key) {
			value, del, decided = ae.value, ae.del, true
			a.next()
		}
		if fok && bytes.Equal(fe.key, key) {
			if !decided {
				value, del, decided = fe.value, fe.del, true
			}
			f.next()
		}
		if sk != nil && bytes.Equal(sk, key) {
			if !decided {
				value = sv
			}
			sk, sv = sc.Next()
			if sk != nil {
				sk = sk[1:]
			}
		}
		if del {
			continue
		}
		if !fn(key, value) {
			return
		}
	}
}

// logCheckpoint is how a finished checkpoint is logged.
func logCheckpoint(log *zap.Logger, seq uint64, n int, took time.Duration) {
	log.Info("checkpoint: metadata written to the index", zap.Uint64("seq", seq), zap.Int("entries", n), zap.Duration("took", took))
}
