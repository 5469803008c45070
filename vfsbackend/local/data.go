package local

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// dataFile is an open data file in the cache. It enters the cache before
// its file is open, so that open(2), which can be slow, runs without the
// cache's mutex; ready is closed once f (or openErr) is set.
type dataFile struct {
	ino     vfsbackend.Ino
	ready   chan struct{}
	f       *os.File // nil if the open failed or found no file
	openErr error
	refs    int           // goroutines using f; guarded by dataStore.mu
	elem    *list.Element // position in the LRU while cached, else nil
	doomed  bool          // out of the cache: close f when refs drops to 0
}

// dataStore manages the per-inode data files and their descriptor cache.
type dataStore struct {
	root    string // <volume>/data
	volume  string
	maxOpen int

	mu        sync.Mutex
	open      map[vfsbackend.Ino]*dataFile
	lru       *list.List // of *dataFile with refs == 0 first to evict at Back
	dirty     map[vfsbackend.Ino]bool
	dirtyDirs map[string]bool
	haveDir   map[string]bool // directories known to exist
}

func (d *dataStore) init(volume string, maxOpen int) {
	d.volume = volume
	d.root = filepath.Join(volume, "data")
	d.maxOpen = maxOpen
	d.open = map[vfsbackend.Ino]*dataFile{}
	d.lru = list.New()
	d.dirty = map[vfsbackend.Ino]bool{}
	d.dirtyDirs = map[string]bool{}
	d.haveDir = map[string]bool{}
}

// subdir is <root>/<ino's low byte in 2 hex digits>; path is the data
// file in it, <subdir>/<ino in 16 hex digits>. Both are built by hand,
// not with Sprintf and filepath.Join: every stat of a regular file asks
// for its path (AllocatedData). root is clean and not "/", so the result
// is what filepath.Join would give.
func (d *dataStore) subdir(ino vfsbackend.Ino) string {
	return string(d.appendSubdir(make([]byte, 0, len(d.root)+3), ino))
}

func (d *dataStore) path(ino vfsbackend.Ino) string {
	b := d.appendSubdir(make([]byte, 0, len(d.root)+20), ino)
	return string(appendHex(append(b, filepath.Separator), uint64(ino), 16))
}

func (d *dataStore) appendSubdir(b []byte, ino vfsbackend.Ino) []byte {
	return appendHex(append(append(b, d.root...), filepath.Separator), uint64(uint8(ino)), 2)
}

// appendHex appends v as digits lower-case hex digits, zero-padded.
func appendHex(b []byte, v uint64, digits int) []byte {
	const hex = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hex[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// acquire returns ino's open file with a reference taken, or nil, nil if
// the file does not exist and create is false. Call release when done.
// Only the goroutine that opens a file waits for open(2); others asking
// for the same file wait for it, and everything else goes on.
func (d *dataStore) acquire(ino vfsbackend.Ino, create bool) (*dataFile, error) {
	for {
		d.mu.Lock()
		if df := d.open[ino]; df != nil {
			df.refs++
			if df.elem != nil {
				d.lru.MoveToFront(df.elem)
			}
			d.mu.Unlock()
			<-df.ready
			if df.f != nil {
				return df, nil
			}
			// Its opener failed or found no file, and took it out of the
			// cache: report that, or try again to create it.
			d.mu.Lock()
			df.refs--
			d.mu.Unlock()
			if df.openErr != nil {
				return nil, df.openErr
			}
			if !create {
				return nil, nil
			}
			continue
		}
		df := &dataFile{ino: ino, refs: 1, ready: make(chan struct{})}
		df.elem = d.lru.PushFront(df)
		d.open[ino] = df
		d.mu.Unlock()

		f, err := d.openFile(ino, create)

		d.mu.Lock()
		if f == nil {
			if df.elem != nil {
				d.lru.Remove(df.elem)
				df.elem = nil
				delete(d.open, ino)
			}
			df.refs--
			df.openErr = err
			close(df.ready)
			d.mu.Unlock()
			return nil, err
		}
		df.f = f
		close(df.ready)
		if df.doomed && df.refs == 0 {
			// Cannot happen (we hold a reference), but never leak f.
			_ = f.Close()
		}
		d.evictLocked()
		d.mu.Unlock()
		return df, nil
	}
}

// openFile opens ino's data file, creating it (and its directories) if
// create is set; nil, nil if it does not exist and create is not set.
// d.mu is not held.
func (d *dataStore) openFile(ino vfsbackend.Ino, create bool) (*os.File, error) {
	p := d.path(ino)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil, nil
		}
		if err := d.mkdirs(ino); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			d.mu.Lock()
			d.dirtyDirs[d.subdir(ino)] = true
			d.mu.Unlock()
		}
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// mkdirs creates data/ and data/<xx> if needed, noting which directories
// need an fsync for the new entries to be durable. It holds d.mu (mkdir
// is rare: once per directory per process).
func (d *dataStore) mkdirs(ino vfsbackend.Ino) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	sub := d.subdir(ino)
	if d.haveDir[sub] {
		return nil
	}
	for _, dir := range []string{d.root, sub} {
		if d.haveDir[dir] {
			continue
		}
		err := os.Mkdir(dir, 0o700)
		switch {
		case err == nil:
			d.dirtyDirs[filepath.Dir(dir)] = true
		case errors.Is(err, os.ErrExist):
		default:
			return err
		}
		d.haveDir[dir] = true
	}
	return nil
}

// evictLocked closes unused files beyond the cache size. d.mu is held.
func (d *dataStore) evictLocked() {
	for e := d.lru.Back(); e != nil && len(d.open) > d.maxOpen; {
		df := e.Value.(*dataFile)
		prev := e.Prev()
		if df.refs == 0 {
			d.dropLocked(df)
		}
		e = prev
	}
}

// dropLocked removes df from the cache; its file is closed now or by the
// last release. d.mu is held.
func (d *dataStore) dropLocked(df *dataFile) {
	if df.elem == nil {
		return
	}
	d.lru.Remove(df.elem)
	df.elem = nil
	delete(d.open, df.ino)
	df.doomed = true
	if df.refs == 0 && df.f != nil {
		_ = df.f.Close() // data already written is in the page cache; close cannot lose it on a local filesystem
	}
}

func (d *dataStore) release(df *dataFile) {
	d.mu.Lock()
	defer d.mu.Unlock()
	df.refs--
	if df.refs == 0 {
		if df.doomed {
			if df.f != nil {
				_ = df.f.Close()
			}
			return
		}
		d.evictLocked()
	}
}

func (d *dataStore) markDirty(ino vfsbackend.Ino) {
	d.mu.Lock()
	d.dirty[ino] = true
	d.mu.Unlock()
}

// ReadData implements vfsbackend.Backend.
func (b *Backend) ReadData(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) (int, error) {
	if err := checkCtx(ctx, b); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("local: read %d at %d: %w", ino, off, syscall.EINVAL)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if data, ok, err := b.inline(ino); err != nil {
		return 0, fmt.Errorf("local: read %d: %w", ino, err)
	} else if ok {
		if off >= int64(len(data)) {
			return 0, nil
		}
		return copy(p, data[off:]), nil
	}
	df, err := b.data.acquire(ino, false)
	if err != nil {
		return 0, fmt.Errorf("local: read %d: %w", ino, err)
	}
	if df == nil {
		return 0, nil
	}
	defer b.data.release(df)
	n, err := df.f.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("local: read %d: %w", ino, err)
	}
	return n, nil
}

// DataFile implements vfsbackend.FileData: ino's open data file (nil
// when it has none) for positional reads, such as sendfile with an
// offset, and the function that gives it back. The file stays open until
// then, even if the data is deleted meanwhile. Inline data (a small file)
// is not in a file: errors.ErrUnsupported.
func (b *Backend) DataFile(ctx context.Context, ino vfsbackend.Ino) (*os.File, func(), error) {
	if err := checkCtx(ctx, b); err != nil {
		return nil, nil, err
	}
	if _, ok, err := b.inline(ino); err != nil {
		return nil, nil, fmt.Errorf("local: open data %d: %w", ino, err)
	} else if ok {
		return nil, nil, fmt.Errorf("local: data of %d is inline: %w", ino, errors.ErrUnsupported)
	}
	df, err := b.data.acquire(ino, false)
	if err != nil {
		return nil, nil, fmt.Errorf("local: open data %d: %w", ino, err)
	}
	if df == nil {
		return nil, func() {}, nil
	}
	var once sync.Once
	return df.f, func() { once.Do(func() { b.data.release(df) }) }, nil
}

// WriteData implements vfsbackend.Backend. A zero-length write changes
// nothing (like pwrite(2), it does not extend the object).
func (b *Backend) WriteData(ctx context.Context, ino vfsbackend.Ino, p []byte, off int64) error {
	if err := checkWrite(ctx, b); err != nil {
		return err
	}
	if off < 0 {
		return fmt.Errorf("local: write %d at %d: %w", ino, off, syscall.EINVAL)
	}
	if off > math.MaxInt64-int64(len(p)) {
		return fmt.Errorf("local: write %d at %d: %w", ino, off, syscall.EFBIG)
	}
	if len(p) == 0 {
		return nil
	}
	mu := b.lockIno(ino)
	defer mu.Unlock()
	df, done, err := b.writeInline(ino, p, off)
	if done || err != nil {
		return err
	}
	if df == nil {
		if df, err = b.data.acquire(ino, true); err != nil {
			return fmt.Errorf("local: write %d: %w", ino, err)
		}
	}
	defer b.data.release(df)
	_, err = df.f.WriteAt(p, off)
	// Marked after the write, so that a Sync that races with it and misses
	// it leaves the mark for the next one. Marked on error too: part of p
	// may have been written.
	b.data.markDirty(ino)
	if err != nil {
		return fmt.Errorf("local: write %d: %w", ino, err)
	}
	return nil
}

// TruncateData implements vfsbackend.Backend.
func (b *Backend) TruncateData(ctx context.Context, ino vfsbackend.Ino, size int64) error {
	if err := checkWrite(ctx, b); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("local: truncate %d to %d: %w", ino, size, syscall.EINVAL)
	}
	mu := b.lockIno(ino)
	defer mu.Unlock()
	df, done, err := b.truncateInline(ino, size)
	if done || err != nil {
		return err
	}
	if df == nil {
		if df, err = b.data.acquire(ino, size > 0); err != nil {
			return fmt.Errorf("local: truncate %d: %w", ino, err)
		}
		if df == nil {
			return nil // missing object truncated to 0
		}
	}
	defer b.data.release(df)
	err = df.f.Truncate(size)
	b.data.markDirty(ino)
	if err != nil {
		return fmt.Errorf("local: truncate %d: %w", ino, err)
	}
	return nil
}

// DeleteData implements vfsbackend.Backend.
func (b *Backend) DeleteData(ctx context.Context, ino vfsbackend.Ino) error {
	if err := checkWrite(ctx, b); err != nil {
		return err
	}
	mu := b.lockIno(ino)
	defer mu.Unlock()
	if _, ok, err := b.inline(ino); err != nil {
		return fmt.Errorf("local: delete %d: %w", ino, err)
	} else if ok {
		if err := b.commitOps(true, walOp{kind: opInlineDel, key: inoKey(ino)}); err != nil {
			return fmt.Errorf("local: delete %d: %w", ino, err)
		}
		// A data file may be left from a move to a file that a crash
		// interrupted: remove it too.
	}
	d := &b.data
	d.mu.Lock()
	if df := d.open[ino]; df != nil {
		d.dropLocked(df)
	}
	delete(d.dirty, ino)
	d.mu.Unlock()
	// unlink(2) runs without the cache's mutex; the caller does not use
	// ino concurrently (package inode deletes data of removed inodes only).
	err := os.Remove(d.path(ino))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local: delete %d: %w", ino, err)
	}
	d.mu.Lock()
	d.dirtyDirs[d.subdir(ino)] = true
	d.mu.Unlock()
	return nil
}

// takeDirtyDirs empties and returns the set of directories to fsync.
func (d *dataStore) takeDirtyDirs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	dirs := make([]string, 0, len(d.dirtyDirs))
	// Parents last is not required: each fsync makes its own entries durable.
	for dir := range d.dirtyDirs {
		dirs = append(dirs, dir)
	}
	clear(d.dirtyDirs)
	return dirs
}

func (d *dataStore) syncDirs() error {
	dirs := d.takeDirtyDirs()
	for i, dir := range dirs {
		if err := syncDir(dir); err != nil {
			d.mu.Lock()
			for _, again := range dirs[i:] {
				d.dirtyDirs[again] = true
			}
			d.mu.Unlock()
			return err
		}
	}
	return nil
}

// syncFile fsyncs ino's file if it exists. The dirty mark is cleared before
// the fsync so that a write racing with it marks the file again.
func (d *dataStore) syncFile(ino vfsbackend.Ino) error {
	d.mu.Lock()
	delete(d.dirty, ino)
	d.mu.Unlock()
	df, err := d.acquire(ino, false)
	if err != nil || df == nil {
		return err
	}
	defer d.release(df)
	if err := df.f.Sync(); err != nil {
		d.markDirty(ino)
		return err
	}
	return nil
}

// syncDirty fsyncs every data file written since the last sync and the
// directories whose entries changed.
func (d *dataStore) syncDirty() error {
	d.mu.Lock()
	inos := make([]vfsbackend.Ino, 0, len(d.dirty))
	for ino := range d.dirty {
		inos = append(inos, ino)
	}
	d.mu.Unlock()
	var errs []error
	for _, ino := range inos {
		if err := d.syncFile(ino); err != nil {
			errs = append(errs, fmt.Errorf("data %d: %w", ino, err))
		}
	}
	if err := d.syncDirs(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// list walks data/ and calls fn for each data file.
func (d *dataStore) list(fn func(ino vfsbackend.Ino, size int64) bool) error {
	subs, err := os.ReadDir(d.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local: list data: %w", err)
	}
	for _, sub := range subs {
		if !sub.IsDir() || len(sub.Name()) != 2 {
			continue
		}
		dir := filepath.Join(d.root, sub.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("local: list data: %w", err)
		}
		for _, e := range ents {
			if len(e.Name()) != 16 || !e.Type().IsRegular() {
				continue
			}
			ino, err := strconv.ParseUint(e.Name(), 16, 64)
			if err != nil {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted while we walked
			}
			if err != nil {
				return fmt.Errorf("local: list data: %w", err)
			}
			if !fn(vfsbackend.Ino(ino), info.Size()) {
				return nil
			}
		}
	}
	return nil
}

// closeAll closes every cached file.
func (d *dataStore) closeAll() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, df := range d.open {
		if df.elem != nil {
			d.lru.Remove(df.elem)
			df.elem = nil
		}
		df.doomed = true
		if df.refs == 0 && df.f != nil {
			errs = append(errs, df.f.Close())
		}
	}
	clear(d.open)
	return errors.Join(errs...)
}
