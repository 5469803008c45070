package local

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// Small files keep their data inline: a data object that has never been
// longer than inlineMax bytes lives in the metadata (one WAL record per
// write, the overlay, and the index) instead of in a data file of its own.
// A new small file then costs no file creation, and its flush is one fsync
// of the WAL instead of fsyncs of the WAL, a new file and its directory.
//
// An object moves to a data file, for good, when a write or a truncate
// takes it past inlineMax (toFile). The move writes the file, fsyncs it
// and its directory, and only then commits the removal of the inline copy:
// until that commit the inline copy is the object, whatever the file holds,
// so a crash at any point leaves either the old inline object or the
// complete file. A file left behind by an interrupted move is ignored while
// the inline copy exists (reads, ListData) and overwritten by the next move
// or removed by DeleteData.
//
// Inline objects live in the index like the rest of the metadata, and in
// memory only until the next checkpoint. Options.InlineBytes (the
// volume's inline_bytes) sets inlineMax, or turns inlining off.

// lockIno locks the stripe of ino's data operations that may move its data
// between inline and a file, and returns it for Unlock.
func (b *Backend) lockIno(ino vfsbackend.Ino) *sync.Mutex {
	mu := &b.inoMu[uint64(ino)%uint64(len(b.inoMu))]
	mu.Lock()
	return mu
}

// inline returns (a copy of) ino's inline data and whether it has any.
func (b *Backend) inline(ino vfsbackend.Ino) ([]byte, bool, error) {
	return b.lookup(true, inoKey(ino))
}

// putInline commits data as ino's inline object; frees says it is
// smaller than the object it replaces.
func (b *Backend) putInline(ino vfsbackend.Ino, data []byte, frees bool) error {
	return b.commitOps(frees, walOp{kind: opInlinePut, key: inoKey(ino), value: data})
}

// writeInline does WriteData when the object is, or may become, inline;
// called with ino's stripe locked. done reports that it did the write (or
// failed it). Otherwise the write goes to the data file: df, acquired here
// when the file exists (the caller releases it), or nil to create it.
func (b *Backend) writeInline(ino vfsbackend.Ino, p []byte, off int64) (df *dataFile, done bool, err error) {
	end := off + int64(len(p))
	return b.updateInline(ino, end, "write",
		func(f *os.File) error {
			_, err := f.WriteAt(p, off)
			return err
		},
		func(cur []byte) []byte {
			data := make([]byte, max(int64(len(cur)), end))
			copy(data, cur)
			copy(data[off:], p)
			return data
		})
}

// truncateInline is writeInline for TruncateData.
func (b *Backend) truncateInline(ino vfsbackend.Ino, size int64) (df *dataFile, done bool, err error) {
	return b.updateInline(ino, size, "truncate",
		func(f *os.File) error { return f.Truncate(size) },
		func(cur []byte) []byte {
			if cur == nil && size == 0 {
				return nil // a missing object truncated to 0: nothing to do
			}
			data := make([]byte, size)
			copy(data, cur)
			return data
		})
}

// updateInline is the part writeInline and truncateInline share. When the
// object is inline, or there is no object yet, and its new size (newSize)
// fits inline, edit makes the new object from the current one (nil when
// there is none; a nil result means nothing to do) and it is committed;
// an inline object that outgrows the limit moves to a data file, where
// change is applied. Otherwise the caller does the operation on the data
// file (df, as for writeInline). what names the operation in errors.
func (b *Backend) updateInline(ino vfsbackend.Ino, newSize int64, what string,
	change func(*os.File) error, edit func(cur []byte) []byte) (df *dataFile, done bool, err error) {
	cur, ok, err := b.inline(ino)
	if err != nil {
		return nil, true, fmt.Errorf("local: %s %d: %w", what, ino, err)
	}
	switch {
	case ok && newSize > b.tune.inlineMax:
		return nil, true, b.toFile(ino, cur, change)
	case !ok && newSize > b.tune.inlineMax:
		return nil, false, nil
	case !ok:
		// No inline object: there is a data file, or no data yet.
		if df, err = b.data.acquire(ino, false); err != nil || df != nil {
			if err != nil {
				err = fmt.Errorf("local: %s %d: %w", what, ino, err)
			}
			return df, err != nil, err
		}
	}
	data := edit(cur)
	if data == nil {
		return nil, true, nil
	}
	if err := b.putInline(ino, data, len(data) < len(cur)); err != nil {
		return nil, true, fmt.Errorf("local: %s %d: %w", what, ino, err)
	}
	return nil, true, nil
}

// toFile moves ino's inline object cur to a data file and applies change
// to the file; see the comment at the top of this file for the order.
func (b *Backend) toFile(ino vfsbackend.Ino, cur []byte, change func(*os.File) error) error {
	df, err := b.data.acquire(ino, true)
	if err != nil {
		return fmt.Errorf("local: move %d to a data file: %w", ino, err)
	}
	defer b.data.release(df)
	err = df.f.Truncate(0) // a file left by an interrupted move
	if err == nil && len(cur) > 0 {
		_, err = df.f.WriteAt(cur, 0)
	}
	if err == nil {
		err = change(df.f)
	}
	if err == nil {
		err = df.f.Sync()
	}
	if err == nil {
		err = b.data.syncDirs()
	}
	if err == nil {
		err = b.commitOps(false, walOp{kind: opInlineDel, key: inoKey(ino)})
	}
	if err != nil {
		b.data.markDirty(ino)
		return fmt.Errorf("local: move %d to a data file: %w", ino, err)
	}
	return nil
}

// listInline calls fn for each inline object, a chunk at a time, with
// no lock held during fn; more is false if fn stopped the listing.
func (b *Backend) listInline(fn func(ino vfsbackend.Ino, size int64) bool) (more bool, err error) {
	type obj struct {
		ino  vfsbackend.Ino
		size int64
	}
	var from []byte
	for {
		var chunk []obj
		err := b.scan(bucketInline, nil, from, func(key, value []byte) bool {
			chunk = append(chunk, obj{vfsbackend.Ino(binary.BigEndian.Uint64(key)), int64(len(value))})
			return len(chunk) < 4096
		})
		if err != nil {
			return false, err
		}
		for _, o := range chunk {
			if !fn(o.ino, o.size) {
				return false, nil
			}
		}
		if len(chunk) < 4096 {
			return true, nil
		}
		from = append(inoKey(chunk[len(chunk)-1].ino), 0)
	}
}
