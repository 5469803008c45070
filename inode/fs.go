package inode

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Options configures an FS.
type Options struct {
	// Logger receives the FS's logs. Nil means no logs.
	Logger *zap.Logger
	// Now returns the current time; nil means the wall clock.
	Now func() Timespec
	// CapacityBytes, if not 0, caps the sum of the sizes of the volume's
	// files: writes and resizes beyond it fail with ENOSPC, and StatFS
	// reports it as the volume's size. Sizes are counted as the files'
	// lengths, holes included. On a shared volume the cap is the
	// volume's, whichever gateways write, within a slack (usage.go).
	CapacityBytes uint64
	// ReadOnly opens the volume for inspection (Check): nothing is
	// written, not even to format it or to repair the leftovers of a
	// crash (those are marked untidy instead, which Check does not report
	// as problems).
	ReadOnly bool
	// DeferRecovery leaves RecoverData to the caller, who runs it after
	// Open while the volume serves: Open then takes the same time however
	// many files have data. Ignored with ReadOnly (Check needs it first).
	DeferRecovery bool
}

// stripes is the number of per-inode locks; inodes share them by number.
const stripes = 256

// FS implements POSIX semantics for one volume on top of a Backend. It is
// safe for concurrent use.
type FS struct {
	be  vfsbackend.Backend
	log *zap.Logger
	now func() Timespec

	// ns protects the namespace. Calls that add, remove or move entries
	// hold it exclusively; every other call holds it shared. Take ns
	// before a stripe lock.
	ns sync.RWMutex
	// stripe serializes changes to one inode's record by calls that hold
	// ns shared (write, setattr, xattrs). Index: ino % stripes.
	stripe [stripes]sync.Mutex

	// nextIno and inodes mirror the counters stored under keyNextIno and
	// keyInodeUsed; they change only under ns held exclusively.
	nextIno Ino
	inodes  uint64
	// sharedIno is the engine's inode allocator, when it has one (engines
	// that several gateways share): new inode numbers come from it, in
	// blocks of inoBlock reserved at a time ([inoNext, inoEnd)), and
	// nextIno is not used. Under inoMu (creates on a shared volume hold
	// ns only shared: see mknodOnce).
	sharedIno       vfsbackend.InoAllocator
	inoMu           sync.Mutex
	inoNext, inoEnd Ino
	// shared is the engine when several gateways may change the volume
	// at once (shared.go): changes then run as optimistic attempts, and
	// the inode count (inodes, keyInodeUsed) is neither kept nor stored
	// but counted by the engine when asked for.
	shared vfsbackend.SharedEngine
	// pinner is the engine's record of which gateways have which inodes
	// open, on a shared volume opened read-write (orphan.go).
	pinner vfsbackend.Pinner

	// untidy holds inodes whose data a failed engine call left behind: a
	// removed inode's data, or data beyond a file's size. Reads never see
	// it; Sync (and the next Open) removes it.
	untidyMu sync.Mutex
	untidy   map[Ino]struct{}

	readOnly bool
	// volumeID is the volume's identity, chosen at format time.
	volumeID [16]byte
	// dataCovers says that data objects cover their files' sizes (see
	// keyDataCovers).
	dataCovers bool
	// ciIndexed says that the case-fold index is complete (keyCIIndex).
	ciIndexed bool

	// capacity is Options.CapacityBytes; used is the sum of the sizes of
	// every regular file, counted at Open and kept by every size change
	// (on a volume that is not shared).
	capacity uint64
	used     atomic.Uint64
	// usage replaces used on a shared volume (usage.go).
	usage *sharedUsage
	// kept, on a volume that is not shared, keeps used in the volume too
	// (usage keys of instance 0), so that Open reads it instead of
	// counting every file (usage.go); nil when opened read-only before
	// the volume had them.
	kept *keptUsage

	// pins are the open inodes and the orphan list (orphan.go).
	pins pins
}

func wallClock() Timespec {
	t := time.Now()
	return Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// Open opens the volume stored in be. An empty store gets a root
// directory (mode 0755, owner 0:0). Leftovers of an interrupted run are
// repaired: data objects of inodes that no longer exist are deleted and
// data beyond an inode's size is cut off (both are the traces of calls
// that never returned success).
func Open(ctx context.Context, be vfsbackend.Backend, opts Options) (*FS, error) {
	fs := &FS{be: be, log: opts.Logger, now: opts.Now, capacity: opts.CapacityBytes, readOnly: opts.ReadOnly}
	if fs.log == nil {
		fs.log = zap.NewNop()
	}
	if fs.now == nil {
		fs.now = wallClock
	}
	if err := fs.loadOrFormat(ctx); err != nil {
		return nil, err
	}
	if err := fs.probeInoAllocator(ctx); err != nil {
		return nil, err
	}
	if err := fs.probeShared(ctx); err != nil {
		return nil, err
	}
	if !opts.DeferRecovery || fs.readOnly {
		if err := fs.RecoverData(ctx); err != nil {
			return nil, err
		}
	}
	if err := fs.loadOrphans(ctx); err != nil {
		return nil, err
	}
	if err := fs.openKeptUsage(ctx); err != nil {
		return nil, err
	}
	if err := fs.openUsage(ctx); err != nil {
		return nil, err
	}
	if err := fs.upgrade(ctx); err != nil {
		return nil, err
	}
	if err := fs.upgradeCI(ctx); err != nil {
		return nil, err
	}
	return fs, nil
}

// VolumeID returns the volume's identity: 16 bytes chosen at random when
// it was formatted. It tells volumes apart even when they have the same
// name (stat dev, statvfs fsid). A volume formatted before identities
// existed gets one at its first read-write open; opened read-only before
// that, it has none (all zeros).
func (fs *FS) VolumeID() [16]byte { return fs.volumeID }

// upgrade brings a volume formatted by an earlier version up to date:
// it gives it an identity, and makes every file's data object cover its
// size (files grown by a resize used to have short data objects). A
// read-only FS only reads what is there.
func (fs *FS) upgrade(ctx context.Context) error {
	v, err := fs.be.Get(ctx, keyVolumeID)
	switch {
	case err == nil && len(v) == len(fs.volumeID):
		copy(fs.volumeID[:], v)
	case err == nil:
		return fmt.Errorf("open volume: bad volume id of %d bytes: %w", len(v), syscall.EIO)
	case !errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("open volume: volume id: %w", err)
	case !fs.readOnly:
		if _, err := rand.Read(fs.volumeID[:]); err != nil {
			return err
		}
		var b vfsbackend.Batch
		b.Put(keyVolumeID, fs.volumeID[:])
		if err := fs.be.Commit(ctx, &b); err != nil {
			return fmt.Errorf("open volume: set volume id: %w", err)
		}
		fs.log.Info("gave the volume an identity", zap.String("volume_id", fmt.Sprintf("%x", fs.volumeID)))
	}

	_, err = fs.be.Get(ctx, keyDataCovers)
	switch {
	case err == nil:
		fs.dataCovers = true
		return nil
	case !errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("open volume: %w", err)
	case fs.readOnly:
		return nil
	}
	sizes := map[Ino]int64{}
	if err := fs.be.ListData(ctx, func(ino Ino, size int64) bool {
		sizes[ino] = size
		return true
	}); err != nil {
		return fmt.Errorf("open volume: upgrade: %w", err)
	}
	type grow struct {
		ino  Ino
		size uint64
	}
	var grows []grow
	var derr error
	err = fs.be.Scan(ctx, []byte{pfxInode}, nil, func(k, v []byte) bool {
		r, err := decodeRecord(Ino(binary.BigEndian.Uint64(k[1:])), v)
		if err != nil {
			derr = err
			return false
		}
		if r.Mode&ModeType == ModeRegular && r.Size > 0 {
			if have, ok := sizes[r.Ino]; !ok || uint64(have) < r.Size {
				grows = append(grows, grow{r.Ino, r.Size})
			}
		}
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("open volume: upgrade: %w", err)
	}
	for _, g := range grows {
		if err := fs.be.TruncateData(ctx, g.ino, int64(g.size)); err != nil {
			return fmt.Errorf("open volume: upgrade: extend data of %d: %w", g.ino, err)
		}
	}
	// The extended objects must be durable before the key says so.
	if err := fs.be.Sync(ctx); err != nil {
		return fmt.Errorf("open volume: upgrade: %w", err)
	}
	for _, g := range grows {
		if err := fs.be.SyncData(ctx, g.ino); err != nil {
			return fmt.Errorf("open volume: upgrade: %w", err)
		}
	}
	var b vfsbackend.Batch
	b.Put(keyDataCovers, encodeUint64(1))
	if err := fs.be.Commit(ctx, &b); err != nil {
		return fmt.Errorf("open volume: upgrade: %w", err)
	}
	fs.dataCovers = true
	fs.log.Info("upgraded the volume: data objects now cover their files' sizes", zap.Int("extended", len(grows)))
	return nil
}

// reserve accounts for n more bytes of file data, failing with ENOSPC if
// that would exceed the volume's capacity.
func (fs *FS) reserve(ctx context.Context, n uint64) error {
	if n == 0 {
		return nil
	}
	if fs.usage != nil {
		return fs.reserveShared(ctx, n)
	}
	for {
		cur := fs.used.Load()
		if fs.capacity > 0 && (cur+n > fs.capacity || cur+n < cur) {
			return fmt.Errorf("volume capacity of %d bytes reached: %w", fs.capacity, syscall.ENOSPC)
		}
		if fs.used.CompareAndSwap(cur, cur+n) {
			return nil
		}
	}
}

// release gives back n bytes of file data.
func (fs *FS) release(n uint64) {
	if n > 0 {
		fs.used.Add(^(n - 1))
	}
}

// inoBlock is how many inode numbers a gateway reserves from a shared
// allocator at a time. Numbers it reserved but did not use when it stops
// are never used (inode numbers are not reused anyway).
const inoBlock = 64

// probeInoAllocator finds out whether the engine hands out inode numbers.
func (fs *FS) probeInoAllocator(ctx context.Context) error {
	a, ok := fs.be.(vfsbackend.InoAllocator)
	if !ok {
		return nil
	}
	if _, err := a.AllocInos(ctx, 0, fs.nextIno); errors.Is(err, errors.ErrUnsupported) {
		return nil
	} else if err != nil {
		return fmt.Errorf("open volume: inode allocator: %w", err)
	}
	fs.sharedIno = a
	return nil
}

func (fs *FS) loadOrFormat(ctx context.Context) error {
	v, err := fs.be.Get(ctx, keyNextIno)
	if err == nil {
		n, err := decodeUint64(v)
		if err != nil {
			return err
		}
		fs.nextIno = Ino(n)
		v, err = fs.be.Get(ctx, keyInodeUsed)
		if err != nil {
			return fmt.Errorf("open volume: inode count: %w", err)
		}
		fs.inodes, err = decodeUint64(v)
		return err
	}
	if !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("open volume: %w", err)
	}
	if fs.readOnly {
		return fmt.Errorf("open volume: not formatted (no root directory): %w", syscall.ENOENT)
	}
	if _, err := rand.Read(fs.volumeID[:]); err != nil {
		return err
	}
	now := fs.now()
	root := &record{
		Attr: Attr{Ino: RootIno, Mode: ModeDir | 0o755, Nlink: 2,
			Atime: now, Mtime: now, Ctime: now, Crtime: now},
		Parent: RootIno, NextCookie: firstCookie,
	}
	var b vfsbackend.Batch
	b.Put(inodeKey(RootIno), encodeRecord(root))
	b.Put(keyNextIno, encodeUint64(uint64(RootIno+1)))
	b.Put(keyInodeUsed, encodeUint64(1))
	b.Put(keyVolumeID, fs.volumeID[:])
	b.Put(keyDataCovers, encodeUint64(1))
	if err := fs.be.Commit(ctx, &b); err != nil {
		return fmt.Errorf("format volume: %w", err)
	}
	fs.nextIno, fs.inodes = RootIno+1, 1
	fs.log.Info("formatted new volume")
	return nil
}

// RecoverData removes what a crash can leave behind in the data store:
// the data objects of removed inodes (a crash between the commit of an
// unlink and the removal of its data) and data beyond a file's size (a
// crash between a write's data and the commit of its new size). Neither
// can be seen meanwhile: inode numbers are never used twice, reads stop
// at a file's size, and every call that grows a file cuts its object to
// the old size first. It lists every data object, so it takes time in
// proportion to the files that have data; Open runs it unless
// Options.DeferRecovery, with which the caller runs it while the volume
// serves (the daemon does, in the background). It streams the list,
// marks what to remove untidy, and removes it as tidy does (the namespace
// held exclusively once, for those inodes only). Read-only, it only
// marks them, which Check does not report as problems. On a shared
// volume data beyond a file's size is left alone: it may be another
// gateway's write in progress (data first, then the record), and the
// next growth cuts it.
func (fs *FS) RecoverData(ctx context.Context) error {
	var gerr error
	if err := fs.be.ListData(ctx, func(ino Ino, size int64) bool {
		if err := ctx.Err(); err != nil {
			gerr = err
			return false
		}
		r, err := fs.get(ctx, ino)
		switch {
		case errors.Is(err, syscall.ENOENT) || (err == nil && r.Mode&ModeType != ModeRegular):
			fs.markUntidy(ino)
		case err != nil:
			gerr = err
			return false
		case uint64(size) > r.Size && (fs.readOnly || fs.sharedIno == nil):
			fs.markUntidy(ino)
		}
		return true
	}); err != nil {
		return fmt.Errorf("recover: list data: %w", err)
	}
	if gerr != nil {
		return fmt.Errorf("recover: %w", gerr)
	}
	if fs.readOnly {
		return nil
	}
	if err := fs.tidy(ctx); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	return nil
}

// get loads ino's record; ENOENT if it does not exist.
func (fs *FS) get(ctx context.Context, ino Ino) (*record, error) {
	if ino == 0 {
		return nil, fmt.Errorf("inode 0: %w", syscall.ENOENT)
	}
	v, err := fs.be.Get(ctx, inodeKey(ino))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("inode %d: %w", ino, syscall.ENOENT)
		}
		return nil, err
	}
	return decodeRecord(ino, v)
}

// getDir loads ino's record and checks that it is a directory.
func (fs *FS) getDir(ctx context.Context, ino Ino) (*record, error) {
	r, err := fs.get(ctx, ino)
	if err != nil {
		return nil, err
	}
	if !r.IsDir() {
		return nil, fmt.Errorf("inode %d: %w", ino, syscall.ENOTDIR)
	}
	return r, nil
}

// searchDir loads directory ino's record and checks that c may search it
// (look names up in it).
func (fs *FS) searchDir(ctx context.Context, c Caller, ino Ino) (*record, error) {
	d, err := fs.getDir(ctx, ino)
	if err != nil {
		return nil, err
	}
	if err := c.search(&d.Attr); err != nil {
		return nil, err
	}
	return d, nil
}

// lookupEntry returns the entry name in directory dir (which must have been
// checked to be a directory).
func (fs *FS) lookupEntry(ctx context.Context, dir Ino, name string) (entry, error) {
	v, err := fs.be.Get(ctx, entryKey(dir, name))
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return entry{}, fmt.Errorf("lookup %d/%q: %w", dir, name, syscall.ENOENT)
		}
		return entry{}, err
	}
	return decodeEntry(v)
}

// lookup resolves one name in dir, including "." and "..", for c, who
// needs search permission on dir.
func (fs *FS) lookup(ctx context.Context, c Caller, dir Ino, name string) (Ino, error) {
	d, err := fs.searchDir(ctx, c, dir)
	if err != nil {
		return 0, err
	}
	switch name {
	case ".":
		return dir, nil
	case "..":
		return d.Parent, nil
	}
	e, err := fs.lookupEntry(ctx, dir, name)
	if err != nil {
		return 0, err
	}
	return e.Ino, nil
}

// Lookup returns the inode number of name in directory dir. "." and ".."
// are understood; ".." of the root is the root. c needs search
// permission on dir.
func (fs *FS) Lookup(ctx context.Context, c Caller, dir Ino, name string) (Ino, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	return fs.lookup(ctx, c, dir, name)
}

// GetAttr returns ino's attributes. It checks no permission: whoever
// could name the inode may stat it (stat(2) needs search permission on
// the path only, which the lookups that found it checked).
func (fs *FS) GetAttr(ctx context.Context, ino Ino) (Attr, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	r, err := fs.get(ctx, ino)
	if err != nil {
		return Attr{}, err
	}
	return r.Attr, nil
}

// Flush makes ino's data and metadata, and every change committed before,
// durable against power loss. Like fsync(2), it needs no permission.
func (fs *FS) Flush(ctx context.Context, ino Ino) error {
	fs.ns.RLock()
	r, err := fs.get(ctx, ino)
	fs.ns.RUnlock()
	if err != nil {
		return err
	}
	if r.Mode&ModeType == ModeRegular {
		return fs.be.SyncData(ctx, ino)
	}
	return fs.be.Sync(ctx)
}

// Sync removes data that failed calls left behind, then makes every
// committed change durable against power loss.
func (fs *FS) Sync(ctx context.Context) error {
	if err := fs.tidy(ctx); err != nil {
		return err
	}
	return fs.be.Sync(ctx)
}

// markUntidy notes that ino may have data to remove (see FS.untidy).
func (fs *FS) markUntidy(ino Ino) {
	fs.untidyMu.Lock()
	defer fs.untidyMu.Unlock()
	if fs.untidy == nil {
		fs.untidy = map[Ino]struct{}{}
	}
	fs.untidy[ino] = struct{}{}
}

// isUntidy reports whether ino is marked untidy.
func (fs *FS) isUntidy(ino Ino) bool {
	fs.untidyMu.Lock()
	defer fs.untidyMu.Unlock()
	_, ok := fs.untidy[ino]
	return ok
}

// tidy removes the data of removed inodes and cuts data beyond a file's
// size for every untidy inode. It holds the namespace exclusively so that
// no write is in progress while a file is cut to its committed size.
func (fs *FS) tidy(ctx context.Context) error {
	fs.untidyMu.Lock()
	n := len(fs.untidy)
	fs.untidyMu.Unlock()
	if n == 0 {
		return nil
	}
	fs.ns.Lock()
	defer fs.ns.Unlock()
	fs.untidyMu.Lock()
	defer fs.untidyMu.Unlock()
	for ino := range fs.untidy {
		r, err := fs.get(ctx, ino)
		switch {
		case errors.Is(err, syscall.ENOENT) || (err == nil && r.Mode&ModeType != ModeRegular):
			fs.log.Info("tidy: deleting data of a removed inode", zap.Uint64("ino", uint64(ino)))
			err = fs.be.DeleteData(ctx, ino)
		case err == nil:
			err = fs.be.TruncateData(ctx, ino, int64(r.Size))
		}
		if err != nil {
			return err
		}
		delete(fs.untidy, ino)
	}
	return nil
}

// StatFS reports the volume's space and inode use.
func (fs *FS) StatFS(ctx context.Context) (StatFS, error) {
	u, err := fs.be.Usage(ctx)
	if err != nil {
		return StatFS{}, err
	}
	fs.ns.RLock()
	used := fs.inodes
	fs.ns.RUnlock()
	if fs.shared != nil {
		if used, err = fs.shared.CountKeys(ctx, []byte{pfxInode}); err != nil {
			return StatFS{}, err
		}
	}
	const bs = 4096
	free := u.FreeInodes
	if free == 0 {
		// Each inode costs at least a record in the store; count one per
		// free block as the engine has no inode limit of its own.
		free = u.AvailBytes / bs
	}
	st := StatFS{
		BlockSize:   bs,
		Blocks:      u.TotalBytes / bs,
		BlocksFree:  u.FreeBytes / bs,
		BlocksAvail: u.AvailBytes / bs,
		Files:       used + free,
		FilesFree:   free,
		NameMax:     MaxNameLen,
	}
	if fs.capacity > 0 {
		// The volume's own size; free space is what the capacity leaves,
		// and never more than the engine has.
		st.Blocks = fs.capacity / bs
		usedBytes, err := fs.usedBytes(ctx)
		if err != nil {
			return StatFS{}, err
		}
		usedBlocks := (usedBytes + bs - 1) / bs
		left := uint64(0)
		if usedBlocks < st.Blocks {
			left = st.Blocks - usedBlocks
		}
		st.BlocksFree = min(st.BlocksFree, left)
		st.BlocksAvail = min(st.BlocksAvail, left)
	}
	return st, nil
}
