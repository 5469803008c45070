package inode

import (
	"context"
	"fmt"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// txn gathers the changes of one call into one atomic batch. It caches the
// records it loads, so that a call touching the same inode twice (rename
// within one directory) sees its own changes.
type txn struct {
	fs    *FS
	recs  map[Ino]*record
	dirty map[Ino]bool
	batch vfsbackend.Batch
	// deleteData lists inodes whose data is removed after the commit.
	deleteData []Ino
	// freed is the size of the files the txn deletes, released from the
	// volume's space count once the commit succeeded.
	freed uint64
	// inodes is the FS's inode count when the txn began, restored if the
	// commit fails.
	inodes uint64
	// frees says the txn gives space back (vfsbackend.Batch.Frees).
	frees bool
	// orphaned lists the open inodes whose last link the txn removes:
	// listed as orphans once the commit succeeded (orphan.go).
	orphaned []Ino
	// usage is the change of the regular files' sizes per stripe, added
	// to the usage keys at commit on a shared volume (usage.go).
	usage map[int]int64
	// keptLocked are the stripes whose kept usage locks t holds during
	// its commit (a volume that is not shared; usage.go).
	keptLocked []int
}

func (fs *FS) newTxn() *txn {
	return &txn{fs: fs, recs: map[Ino]*record{}, dirty: map[Ino]bool{}, inodes: fs.inodes}
}

func (t *txn) get(ctx context.Context, ino Ino) (*record, error) {
	if r, ok := t.recs[ino]; ok && r != nil {
		return r, nil
	}
	r, err := t.fs.get(ctx, ino)
	if err != nil {
		return nil, err
	}
	t.recs[ino] = r
	return r, nil
}

func (t *txn) getDir(ctx context.Context, ino Ino) (*record, error) {
	r, err := t.get(ctx, ino)
	if err != nil {
		return nil, err
	}
	if !r.IsDir() {
		return nil, errNotDir(ino)
	}
	return r, nil
}

// searchDir is getDir plus the check that c may search the directory.
func (t *txn) searchDir(ctx context.Context, c Caller, ino Ino) (*record, error) {
	d, err := t.getDir(ctx, ino)
	if err != nil {
		return nil, err
	}
	if err := c.search(&d.Attr); err != nil {
		return nil, err
	}
	return d, nil
}

// put marks r to be written at commit.
func (t *txn) put(r *record) {
	t.recs[r.Ino] = r
	t.dirty[r.Ino] = true
}

// touchDir sets a directory's mtime and ctime, as an entry change does.
func (t *txn) touchDir(d *record, now Timespec) {
	d.Mtime, d.Ctime = now, now
	t.put(d)
}

// addEntry adds name -> child to directory d with the next cookie.
func (t *txn) addEntry(d *record, name string, child Ino, typ uint8) {
	c := d.NextCookie
	d.NextCookie++
	t.batch.Put(entryKey(d.Ino, name), encodeEntry(entry{Ino: child, Cookie: c, Type: typ}))
	t.batch.Put(cookieKey(d.Ino, c), encodeCookieValue(child, typ, name))
	t.addFold(d.Ino, name, child)
	t.put(d)
}

// removeEntry removes the entry e named name from directory d.
func (t *txn) removeEntry(d *record, name string, e entry) {
	t.batch.Delete(entryKey(d.Ino, name))
	t.batch.Delete(cookieKey(d.Ino, e.Cookie))
	t.delFold(d.Ino, name)
	t.put(d)
}

// dropLink removes one link from r, deleting the inode when none is left
// (directories: when called for their only entry), unless it is open: then
// it becomes an orphan (orphan.go).
func (t *txn) dropLink(ctx context.Context, r *record, now Timespec) error {
	if !r.IsDir() && r.Nlink <= 1 {
		open, err := t.fs.openAnywhere(ctx, r.Ino)
		if err != nil {
			return err
		}
		if open {
			t.orphanInode(r, now)
			return nil
		}
	}
	if r.IsDir() || r.Nlink <= 1 {
		return t.deleteInode(ctx, r)
	}
	r.Nlink--
	r.Ctime = now
	t.put(r)
	return nil
}

// deleteInode removes r's record, symlink target and xattrs, and schedules
// its data for deletion after the commit.
func (t *txn) deleteInode(ctx context.Context, r *record) error {
	t.frees = true
	t.batch.Delete(inodeKey(r.Ino))
	delete(t.dirty, r.Ino)
	t.recs[r.Ino] = nil
	switch r.Mode & ModeType {
	case ModeSymlink:
		t.batch.Delete(symlinkKey(r.Ino))
	case ModeRegular:
		t.deleteData = append(t.deleteData, r.Ino)
		t.freed += r.Size
		t.resized(r.Ino, r.Size, 0)
	}
	var keys [][]byte
	if err := t.fs.be.Scan(ctx, inoKey(pfxXattr, r.Ino), nil, func(k, _ []byte) bool {
		keys = append(keys, append([]byte(nil), k...))
		return true
	}); err != nil {
		return err
	}
	for _, k := range keys {
		t.batch.Delete(k)
	}
	if t.fs.shared == nil {
		t.fs.inodes--
		t.batch.Put(keyInodeUsed, encodeUint64(t.fs.inodes))
	}
	return nil
}

// newInode allocates an inode number and counts the inode. Only valid
// with ns held exclusively, or shared on a shared volume (which keeps no
// count: the block of numbers has its own mutex).
func (t *txn) newInode(ctx context.Context) (Ino, error) {
	if a := t.fs.sharedIno; a != nil {
		t.fs.inoMu.Lock()
		defer t.fs.inoMu.Unlock()
		if t.fs.inoNext == t.fs.inoEnd {
			first, err := a.AllocInos(ctx, inoBlock, t.fs.nextIno)
			if err != nil {
				return 0, fmt.Errorf("allocate inode numbers: %w", err)
			}
			t.fs.inoNext, t.fs.inoEnd = first, first+inoBlock
		}
		ino := t.fs.inoNext
		t.fs.inoNext++
		if t.fs.shared == nil {
			t.fs.inodes++
			t.batch.Put(keyInodeUsed, encodeUint64(t.fs.inodes))
		}
		return ino, nil
	}
	ino := t.fs.nextIno
	t.fs.nextIno++
	t.fs.inodes++
	t.batch.Put(keyNextIno, encodeUint64(uint64(t.fs.nextIno)))
	t.batch.Put(keyInodeUsed, encodeUint64(t.fs.inodes))
	return ino, nil
}

// commit writes every dirty record and the batch atomically, then deletes
// the data of removed inodes. On failure nothing changed, and the inode
// count is restored (inode numbers handed out stay used: they are never
// reused, failure or not).
func (t *txn) commit(ctx context.Context) error {
	for ino := range t.dirty {
		if r := t.recs[ino]; r != nil {
			t.batch.Put(inodeKey(ino), encodeRecord(r))
		}
	}
	if err := t.putUsage(ctx); err != nil {
		return err
	}
	// On a volume that is not shared the usage keys are written from
	// memory, under their stripes' locks until the commit is done.
	unlock := t.putKeptUsage()
	t.batch.Frees = t.frees
	err := t.fs.be.Commit(ctx, &t.batch)
	if err == nil {
		t.keptCommitted()
	}
	unlock()
	if err != nil {
		if t.fs.shared == nil { // a shared volume keeps no count
			t.fs.inodes = t.inodes
		}
		return err
	}
	t.fs.freed(t.freed)
	for _, ino := range t.orphaned {
		t.fs.pins.orphans[ino] = struct{}{}
	}
	for _, ino := range t.deleteData {
		if err := t.fs.be.DeleteData(ctx, ino); err != nil {
			// The inode is gone; its data is garbage that the next Sync
			// or Open removes. Report success: the change is durable.
			t.fs.log.Warn("delete data of removed inode", zapIno(ino), zapErr(err))
			t.fs.markUntidy(ino)
		}
	}
	return nil
}
