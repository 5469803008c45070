package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// minMemMax is the smallest overlay that triggers a checkpoint, whatever
// the configured cache.
const minMemMax = 32 << 10

// closedChan is Backend.ckptDone while no checkpoint ever ran.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// overCheckpoint says whether the overlay (mem bytes of heap) or the
// active WAL is large enough for a checkpoint; called with commitMu held
// or before the volume serves.
func (b *Backend) overCheckpoint(mem int64) bool {
	return mem >= b.tune.memMax || b.walSize > b.tune.compactThreshold
}

// waitCheckpoint holds a commit back while the overlay is full and a
// checkpoint is writing the previous one, or while it is twice full and a
// checkpoint is about to freeze it, so that the metadata held in memory
// stays near the cache (two overlays of memMax). A checkpoint that fails
// does not hold commits back: it is tried again later.
func (b *Backend) waitCheckpoint() {
	for b.compacting.Load() {
		b.idxMu.RLock()
		wait := b.act.mem >= 2*b.tune.memMax || (b.frz != nil && b.act.mem >= b.tune.memMax)
		ch := b.ckptDone
		b.idxMu.RUnlock()
		if !wait {
			return
		}
		select {
		case <-ch:
		case <-b.stop:
			return
		case <-time.After(10 * time.Millisecond): // ch may be an older checkpoint's
		}
	}
}

// storeSeq is the sequence number the store reflects (0 without a store).
func (b *Backend) storeSeq() uint64 {
	b.idxMu.RLock()
	st := b.store
	b.idxMu.RUnlock()
	if st == nil {
		return 0
	}
	return st.seq.Load()
}

// compact runs a checkpoint in its own goroutine; b.compacting is true
// while it runs.
func (b *Backend) compact() {
	defer b.compactWG.Done()
	defer b.compacting.Store(false)
	start := time.Now()
	err := b.doCheckpoint()
	if b.observe != nil {
		b.observe("checkpoint", start, err)
	}
	if err != nil {
		b.compactAfter.Store(time.Now().Add(compactRetry).UnixNano())
		b.log.Error("checkpoint failed; trying again after a pause", zap.Duration("pause", compactRetry), zap.Error(err))
	}
}

// doCheckpoint writes the overlay to the store and retires the WALs the
// store then covers:
//
//  1. Under commitMu: fsync the active WAL and switch to a new,
//     pre-created one; the overlay becomes frozen (still read, no longer
//     changed) and a new, empty one takes the commits.
//  2. Write the frozen overlay to the store with its sequence number
//     (store.write; bbolt fsyncs each transaction).
//  3. Drop the frozen overlay and remove the older WALs.
//
// A checkpoint that failed in step 2 leaves its overlay frozen; the next
// one writes it before anything else.
func (b *Backend) doCheckpoint() error {
	if b.closed.Load() {
		return nil
	}
	start := time.Now()
	done := make(chan struct{})
	defer close(done)
	b.idxMu.Lock()
	b.ckptDone = done
	frz, seq, gen := b.frz, b.frzSeq, b.frzGen
	b.idxMu.Unlock()

	if frz == nil {
		// Create the next WAL before taking the lock.
		b.commitMu.Lock()
		gen = b.walGen + 1
		b.commitMu.Unlock()
		next, err := createWAL(b.dir, gen)
		if err != nil {
			return err
		}
		b.commitMu.Lock()
		if b.closed.Load() || b.broken != nil {
			b.commitMu.Unlock()
			_ = next.Close()
			return os.Remove(filepath.Join(b.dir, walName(gen)))
		}
		// The retired WAL must be durable before any record of the new one
		// can reach the disk, or a power loss could leave a gap.
		if err := b.wal.Sync(); err != nil {
			b.commitMu.Unlock()
			_ = next.Close()
			_ = os.Remove(filepath.Join(b.dir, walName(gen)))
			return err
		}
		b.syncedSeq.Store(b.seq)
		old := b.wal
		b.wal, b.walGen, b.walSize = next, gen, int64(len(walMagic))
		seq = b.seq
		b.idxMu.Lock()
		frz = b.act
		b.frz, b.frzSeq, b.frzGen = frz, seq, gen
		b.act = newMemtable()
		b.idxMu.Unlock()
		b.commitMu.Unlock()

		b.walMu.Lock()
		cerr := old.Close()
		b.walMu.Unlock()
		if cerr != nil {
			return cerr
		}
	}

	if err := b.store.write(frz, seq); err != nil {
		return fmt.Errorf("write the metadata index: %w", err)
	}
	b.idxMu.Lock()
	b.frz = nil
	b.idxMu.Unlock()

	wals, err := listWALs(b.dir)
	if err != nil {
		return err
	}
	for _, w := range wals {
		if w.gen < gen {
			if err := os.Remove(w.path); err != nil {
				return err
			}
		}
	}
	if err := syncDir(b.dir); err != nil {
		return err
	}
	logCheckpoint(b.log, seq, frz.len(), time.Since(start))
	return nil
}

// openIndex opens the store, creating it on a new volume and converting
// a volume made before it (a snapshot and WALs) on its first read-write
// open. haveWALs says whether the volume has WAL files. A volume opened
// read-only without a store gets its snapshot read into the overlay.
func (b *Backend) openIndex(haveWALs bool) error {
	snapPath := filepath.Join(b.dir, snapName)
	haveSnap := true
	if _, err := os.Stat(snapPath); errors.Is(err, os.ErrNotExist) {
		haveSnap = false
	} else if err != nil {
		return err
	}
	if !haveWALs && !haveSnap && !b.formatted {
		// Every volume has a WAL from its format on: its metadata was
		// removed, and opening it would serve an empty volume.
		return fmt.Errorf("%w: %w: %s has a %s file but no WAL and no snapshot: its metadata is gone; "+
			"nothing was changed. Restore it from a backup, or move the directory away and run proxyfsd -format",
			errCorrupt, vfsbackend.ErrDamaged, b.dir, volumeFileName)
	}
	st, err := openStore(b.dir, false, b.readOnly)
	if err != nil {
		return err
	}
	if st != nil && haveSnap {
		// A snapshot newer than the index was written by an older proxyfs
		// that served the volume after it was converted (its compaction
		// then removed the WALs the snapshot covers): the snapshot holds
		// the volume, so convert it again.
		snapSeq, err := snapshotSeq(snapPath)
		if err != nil {
			_ = st.close()
			return err
		}
		if snapSeq > st.seq.Load() {
			b.log.Warn("the snapshot is newer than the metadata index (an older proxyfs served the volume): converting it again",
				zap.Uint64("snapshot_seq", snapSeq), zap.Uint64("index_seq", st.seq.Load()))
			if err := st.close(); err != nil {
				return err
			}
			st = nil
			if !b.readOnly {
				if err := os.Remove(filepath.Join(b.dir, indexName)); err != nil {
					return err
				}
				if err := syncDir(b.dir); err != nil {
					return err
				}
			}
		}
	}
	if st != nil {
		b.store = st
		if haveSnap && !b.readOnly {
			// A conversion that died after the index was complete.
			b.log.Info("removing the snapshot the metadata index replaced", zap.String("snapshot", snapPath))
			if err := os.Remove(snapPath); err != nil {
				return err
			}
			return syncDir(b.dir)
		}
		return nil
	}
	if !haveSnap && haveWALs {
		if err := b.checkWALsStartAtOne(); err != nil {
			return err
		}
	}
	m := newMemtable()
	var seq uint64
	if haveSnap {
		if seq, err = loadSnapshot(snapPath, m); err != nil {
			return err
		}
	}
	if b.readOnly {
		b.act, b.seq = m, seq
		return nil
	}
	start := time.Now()
	err = createStore(b.dir, filepath.Join(b.dir, indexName), func(tx *bolt.Tx) error {
		for _, t := range []struct {
			m      *memtable
			bucket []byte
		}{{m, bucketKeys}, {m, bucketInline}} {
			tree := t.m.kv
			if string(t.bucket) == string(bucketInline) {
				tree = t.m.inl
			}
			bk := tx.Bucket(t.bucket)
			bk.FillPercent = fillPercent
			var perr error
			tree.Ascend(func(e ment) bool {
				perr = bk.Put(storeKey(e.key), e.value)
				return perr == nil
			})
			if perr != nil {
				return perr
			}
		}
		return nil
	}, seq)
	if err != nil {
		return fmt.Errorf("create the metadata index: %w", err)
	}
	if b.store, err = openStore(b.dir, false, false); err != nil {
		return err
	}
	if haveSnap {
		b.log.Info("converted the snapshot to the metadata index", zap.Int("entries", m.len()), zap.Uint64("seq", seq), zap.Duration("took", time.Since(start)))
		if err := os.Remove(snapPath); err != nil {
			return err
		}
		return syncDir(b.dir)
	}
	return nil
}

// checkWALsStartAtOne checks, for a volume with neither index nor
// snapshot, that its oldest WAL is the first one and starts at the first
// commit, as in a volume made before the index that never compacted:
// otherwise the index that held the commits before it is gone.
func (b *Backend) checkWALsStartAtOne() error {
	wals, err := listWALs(b.dir)
	if err != nil || len(wals) == 0 {
		return err
	}
	if wals[0].gen != 1 {
		return fmt.Errorf("%w: %w: %s has no %s file, but its oldest WAL is %s: the metadata index "+
			"holding the commits before it is gone; nothing was changed. Restore the volume from a backup",
			errCorrupt, vfsbackend.ErrDamaged, b.dir, indexName, filepath.Base(wals[0].path))
	}
	f, err := os.Open(wals[0].path)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [len(walMagic) + recHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil // too short to hold a record: replay decides
	}
	if string(hdr[:len(walMagic)]) != walMagic {
		return nil
	}
	if seq := binary.LittleEndian.Uint64(hdr[len(walMagic)+8:]); seq > 1 {
		return fmt.Errorf("%w: %w: %s has no %s file, but its oldest WAL starts at commit %d: the metadata index "+
			"holding the commits before it is gone; nothing was changed. Restore the volume from a backup",
			errCorrupt, vfsbackend.ErrDamaged, b.dir, indexName, seq)
	}
	return nil
}
