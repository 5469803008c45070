package inode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"syscall"

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
	// held exclusively; read with it held shared.
	orphans map[Ino]struct{}
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
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	r, err := fs.get(ctx, ino)
	if err != nil {
		return Attr{}, err
	}
	if !r.IsDir() && r.Nlink == 0 {
		if _, listed := fs.pins.orphans[ino]; !reclaim || !listed {
			return Attr{}, fmt.Errorf("open inode %d: unlinked: %w", ino, syscall.ENOENT)
		}
	}
	if r.IsDir() && acc&MayWrite != 0 {
		return Attr{}, fmt.Errorf("open directory %d for writing: %w", ino, syscall.EISDIR)
	}
	if err := c.may(&r.Attr, acc&(MayRead|MayWrite)); err != nil {
		return Attr{}, err
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
	fs.ns.Lock()
	defer fs.ns.Unlock()
	if _, listed := fs.pins.orphans[ino]; !listed || fs.isOpen(ino) {
		return nil
	}
	if err := fs.freeOrphan(ctx, ino); err != nil {
		fs.log.Warn("free orphan at its last close", zapIno(ino), zapErr(err))
	}
	return nil
}

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
// ends. It stops at the first failure.
func (fs *FS) FreeOrphans(ctx context.Context) (int, error) {
	if fs.readOnly {
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
