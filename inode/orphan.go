package inode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Open inodes and orphans.
//
// A client that opens a file (OpenInode) pins its inode until it closes it
// (CloseInode). When the last link of a pinned file (any non-directory) goes,
// by unlink or by a rename over it, the inode is not deleted: the same commit
// that removes the entry keeps its record with nlink 0 and adds an orphan
// key, o<ino>. It stays readable and writable through its inode number. The
// commit that drops its last pin deletes the record, the orphan key and the
// xattrs; its data goes after that commit (as for any removed inode), and
// its space is given back.
//
// Pins live in memory; orphan keys are durable. After a crash or a restart
// the orphan list is loaded at Open and nothing is pinned: clients that
// still have the file open pin it again with OpenInode(reclaim=true), and
// the server calls FreeOrphans once its grace period is over, which frees
// every orphan that nobody pinned again. Directories can be opened (pinned)
// too, but a removed directory is never kept.

// pfxOrphan is the orphan list: o<ino> -> 1, one key per orphan.
const pfxOrphan = 'o'

func orphanKey(ino Ino) []byte { return inoKey(pfxOrphan, ino) }

// pins is an FS's open-inode bookkeeping.
type pins struct {
	// mu guards opens.
	mu    sync.Mutex
	opens map[Ino]int // pins by inode; no entry: not open
	// orphans is the orphan list (the o keys). Changed only with FS.ns
	// held exclusively; read with it held shared. On a shared volume it
	// is only what this gateway saw: the o keys are the list.
	orphans map[Ino]struct{}
	// order serializes, per inode, a change of its count in opens with
	// the engine's Pin or Unpin (shared volumes). Index: ino % len.
	order [64]sync.Mutex
	// unpinned is when SweepOrphans first saw each orphan pinned by no
	// gateway (shared volumes).
	unpinned map[Ino]time.Time
}

// openAnywhere reports whether ino is open: through this gateway, or, on
// a volume shared with other gateways, through any (read through ctx's
// read set, so that an open after the read makes the call start again).
func (fs *FS) openAnywhere(ctx context.Context, ino Ino) (bool, error) {
	if fs.pinner == nil {
		return fs.isOpen(ino), nil
	}
	return fs.pinner.Pinned(ctx, ino)
}

// orphanListed reports whether ino is on the orphan list.
func (fs *FS) orphanListed(ctx context.Context, ino Ino) (bool, error) {
	if fs.pinner == nil {
		_, listed := fs.pins.orphans[ino]
		return listed, nil
	}
	_, err := fs.be.Get(ctx, orphanKey(ino))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.ENOENT):
		return false, nil
	}
	return false, err
}

// isOpen reports whether ino is pinned.
func (fs *FS) isOpen(ino Ino) bool {
	fs.pins.mu.Lock()
	defer fs.pins.mu.Unlock()
	return fs.pins.opens[ino] > 0
}

// loadOrphans reads the orphan list. Called by Open.
func (fs *FS) loadOrphans(ctx context.Context) error {
	fs.pins.orphans = map[Ino]struct{}{}
	fs.pins.opens = map[Ino]int{}
	err := fs.be.Scan(ctx, []byte{pfxOrphan}, nil, func(k, _ []byte) bool {
		if len(k) == 9 {
			fs.pins.orphans[Ino(binary.BigEndian.Uint64(k[1:]))] = struct{}{}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("open volume: orphan list: %w", err)
	}
	if n := len(fs.pins.orphans); n > 0 {
		fs.log.Info("orphans (unlinked files that were open) wait for their clients to reopen them", zap.Int("orphans", n))
	}
	return nil
}

// orphanInode makes r, whose last link the txn removes while it is open,
// an orphan: nlink 0, kept, listed. Called with ns held exclusively.
func (t *txn) orphanInode(r *record, now Timespec) {
	r.Nlink = 0
	r.Ctime = now
	t.put(r)
	t.batch.Put(orphanKey(r.Ino), []byte{1})
	t.orphaned = append(t.orphaned, r.Ino)
}

// OpenInode pins ino (see the package's orphan rules) and returns its
// attributes. An inode with no link left (an orphan) can only be pinned
// with reclaim set, as a client does to reopen its files after a daemon
// restart; without it, and for an inode that does not exist, it is ENOENT.
//
// acc is the access the open asks for (MayRead, MayWrite or both), checked
// as open(2) does: a directory opened for writing is EISDIR, then c needs
// that access to the inode (EACCES); a symlink is never checked. A reclaim
// is checked like any open.
func (fs *FS) OpenInode(ctx context.Context, c Caller, ino Ino, acc Access, reclaim bool) (Attr, error) {
	if fs.pinner == nil {
		return fs.openInodeOnce(ctx, c, ino, acc, reclaim)
	}
	return optimistic1(ctx, fs, func(ctx context.Context) (Attr, error) {
		return fs.openInodeOnce(ctx, c, ino, acc, reclaim)
	})
}

func (fs *FS) openInodeOnce(ctx context.Context, c Caller, ino Ino, acc Access, reclaim bool) (Attr, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	r, err := fs.get(ctx, ino)
	if err != nil {
		return Attr{}, err
	}
	if !r.IsDir() && r.Nlink == 0 {
		listed, err := fs.orphanListed(ctx, ino)
		if err != nil {
			return Attr{}, err
		}
		if !reclaim || !listed {
			return Attr{}, fmt.Errorf("open inode %d: unlinked: %w", ino, syscall.ENOENT)
		}
	}
	if r.IsDir() && acc&MayWrite != 0 {
		return Attr{}, fmt.Errorf("open directory %d for writing: %w", ino, syscall.EISDIR)
	}
	if err := c.may(&r.Attr, acc&(MayRead|MayWrite)); err != nil {
		return Attr{}, err
	}
	if fs.pinner != nil {
		// The first open through this gateway pins the inode for every
		// gateway to see, if nothing read above changed meanwhile.
		o := &fs.pins.order[ino%Ino(len(fs.pins.order))]
		o.Lock()
		defer o.Unlock()
		if !fs.isOpen(ino) {
			if err := fs.pinner.Pin(ctx, ino); err != nil {
				return Attr{}, err
			}
		}
	}
	fs.pins.mu.Lock()
	fs.pins.opens[ino]++
	fs.pins.mu.Unlock()
	return r.Attr, nil
}

// CloseInode drops one pin of ino (taken by OpenInode). Dropping the last
// pin of an orphan frees it: one commit deletes its record, orphan key and
// xattrs, then its data is deleted. A failure to free it is logged and
// leaves it on the orphan list (FreeOrphans, or the next start, frees it);
// the pin is dropped either way.
func (fs *FS) CloseInode(ctx context.Context, ino Ino) error {
	if fs.pinner != nil {
		o := &fs.pins.order[ino%Ino(len(fs.pins.order))]
		o.Lock()
		defer o.Unlock()
	}
	fs.pins.mu.Lock()
	n := fs.pins.opens[ino]
	switch {
	case n <= 0:
		fs.pins.mu.Unlock()
		return fmt.Errorf("close inode %d: not open: %w", ino, syscall.EBADF)
	case n == 1:
		delete(fs.pins.opens, ino)
	default:
		fs.pins.opens[ino] = n - 1
	}
	fs.pins.mu.Unlock()
	if n > 1 || fs.readOnly {
		return nil
	}
	if fs.pinner != nil {
		if err := fs.pinner.Unpin(ctx, ino); err != nil {
			// Its pin stays until this gateway's lease ends.
			fs.log.Warn("unpin at the last close", zapIno(ino), zapErr(err))
		}
		// Most closes are of files with links: spare them the exclusive
		// lock. (An unlink after the unpin above deletes the file itself;
		// one before it listed the orphan, which this sees.)
		if listed, err := fs.orphanListed(ctx, ino); err != nil || !listed {
			return nil
		}
	}
	fs.ns.Lock()
	defer fs.ns.Unlock()
	if listed, err := fs.orphanListed(ctx, ino); err != nil || !listed || fs.isOpen(ino) {
		return nil // (on an error, FreeOrphans or a sweep frees it)
	}
	if err := fs.freeOrphan(ctx, ino); err != nil && !errors.Is(err, errStillOpen) {
		fs.log.Warn("free orphan at its last close", zapIno(ino), zapErr(err))
	}
	return nil
}

// errStillOpen is freeOrphan's answer for an orphan that another gateway
// has open: it stays.
var errStillOpen = errors.New("the orphan is open through another gateway")

// freeOrphan deletes orphan ino in one commit: record, orphan key,
// xattrs; then its data. Called with ns held exclusively.
func (fs *FS) freeOrphan(ctx context.Context, ino Ino) error {
	if err := fs.optimistic(ctx, func(ctx context.Context) error { return fs.freeOrphanOnce(ctx, ino) }); err != nil {
		return err
	}
	delete(fs.pins.orphans, ino)
	return nil
}

func (fs *FS) freeOrphanOnce(ctx context.Context, ino Ino) error {
	if fs.pinner != nil {
		// Another gateway may have it open.
		open, err := fs.openAnywhere(ctx, ino)
		if err != nil {
			return err
		}
		if open {
			return errStillOpen
		}
	}
	t := fs.newTxn()
	t.batch.Delete(orphanKey(ino))
	r, err := t.get(ctx, ino)
	switch {
	case errors.Is(err, syscall.ENOENT):
		// Listed but gone: only the key is left to remove.
		t.frees = true
	case err != nil:
		return err
	case r.IsDir() || r.Nlink > 0:
		// Listed by mistake: it has links again; just unlist it.
		t.frees = true
	default:
		if err := t.deleteInode(ctx, r); err != nil {
			return err
		}
	}
	return t.commit(ctx)
}

// Orphans returns the orphan list, sorted: inodes without links that are
// kept because they are (or were, before a restart) open.
func (fs *FS) Orphans() []Ino {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	out := make([]Ino, 0, len(fs.pins.orphans))
	for ino := range fs.pins.orphans {
		out = append(out, ino)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// FreeOrphans frees every orphan that is not pinned, and returns how many
// it freed. The server calls it when the grace for reopening after a start
// ends. It stops at the first failure. On a volume shared with other
// gateways it frees nothing: SweepOrphans does.
func (fs *FS) FreeOrphans(ctx context.Context) (int, error) {
	if fs.readOnly {
		return 0, nil
	}
	if fs.pinner != nil {
		// Shared volume: an orphan may have lost its last pin a moment
		// ago, when another gateway died, and its clients are owed a
		// grace from then on; SweepOrphans, which tracks since when each
		// orphan has been unpinned, frees them all.
		return 0, nil
	}
	fs.ns.Lock()
	defer fs.ns.Unlock()
	freed := 0
	for ino := range fs.pins.orphans {
		if fs.isOpen(ino) {
			continue
		}
		if err := fs.freeOrphan(ctx, ino); err != nil {
			return freed, fmt.Errorf("free orphan %d: %w", ino, err)
		}
		freed++
	}
	return freed, nil
}

// SweepOrphans frees, on a volume shared with other gateways, the orphans
// that no gateway has had open for at least grace: those that a gateway
// that died (its lease ended) had open, once its clients had the grace to
// reopen them through another gateway. An orphan seen unpinned for the
// first time is only noted; a gateway runs this every so often. It
// returns how many it freed; on a volume not shared it does nothing.
func (fs *FS) SweepOrphans(ctx context.Context, grace time.Duration) (int, error) {
	if fs.pinner == nil || fs.readOnly {
		return 0, nil
	}
	fs.ns.Lock()
	defer fs.ns.Unlock()
	return fs.freeUnpinned(ctx, grace)
}

// freeUnpinned frees the orphans on the engine's list that no gateway has
// open and that were first seen so at least grace ago. Called with ns
// held exclusively.
func (fs *FS) freeUnpinned(ctx context.Context, grace time.Duration) (int, error) {
	var list []Ino
	if err := fs.be.Scan(ctx, []byte{pfxOrphan}, nil, func(k, _ []byte) bool {
		if len(k) == 9 {
			list = append(list, Ino(binary.BigEndian.Uint64(k[1:])))
		}
		return true
	}); err != nil {
		return 0, fmt.Errorf("orphan list: %w", err)
	}
	now := time.Now()
	if fs.pins.unpinned == nil {
		fs.pins.unpinned = map[Ino]time.Time{}
	}
	seen := map[Ino]bool{}
	freed := 0
	for _, ino := range list {
		seen[ino] = true
		if fs.isOpen(ino) {
			delete(fs.pins.unpinned, ino)
			continue
		}
		open, err := fs.pinner.Pinned(ctx, ino)
		if err != nil {
			return freed, err
		}
		if open {
			delete(fs.pins.unpinned, ino)
			continue
		}
		since, ok := fs.pins.unpinned[ino]
		if !ok {
			fs.pins.unpinned[ino] = now
			since = now
		}
		if now.Sub(since) < grace {
			continue
		}
		err = fs.freeOrphan(ctx, ino)
		if errors.Is(err, errStillOpen) {
			delete(fs.pins.unpinned, ino)
			continue
		}
		if err != nil {
			return freed, fmt.Errorf("free orphan %d: %w", ino, err)
		}
		delete(fs.pins.unpinned, ino)
		freed++
	}
	for ino := range fs.pins.unpinned {
		if !seen[ino] {
			delete(fs.pins.unpinned, ino)
		}
	}
	return freed, nil
}

// checkOrphans adds Check's findings about the orphan list: a listed
// inode must exist, be no directory and have no link; every file without
// a link must be listed. recs are the inode records, links the entries
// pointing at each.
func (fs *FS) checkOrphans(ctx context.Context, recs map[Ino]*record, links map[Ino]uint64, report func(string, ...any)) (map[Ino]bool, error) {
	listed := map[Ino]bool{}
	err := fs.be.Scan(ctx, []byte{pfxOrphan}, nil, func(k, _ []byte) bool {
		if len(k) != 9 {
			report("orphan key %q: malformed", k)
			return true
		}
		ino := Ino(binary.BigEndian.Uint64(k[1:]))
		listed[ino] = true
		switch r := recs[ino]; {
		case r == nil:
			report("orphan %d: listed, but the inode does not exist", ino)
		case r.IsDir():
			report("orphan %d: listed, but it is a directory", ino)
		case r.Nlink != 0 || links[ino] != 0:
			report("orphan %d: listed, but it has nlink %d and %d entries", ino, r.Nlink, links[ino])
		}
		return true
	})
	return listed, err
}
