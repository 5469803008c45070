package inode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"go.uber.org/zap"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// checkFile returns ino's record if it is a regular file: EISDIR for a
// directory, EINVAL for a symlink.
func (fs *FS) checkFile(ctx context.Context, ino Ino) (*record, error) {
	r, err := fs.get(ctx, ino)
	if err != nil {
		return nil, err
	}
	switch r.Mode & ModeType {
	case ModeDir:
		return nil, errIsDir(ino)
	case ModeSymlink:
		return nil, fmt.Errorf("read/write symlink %d: %w", ino, syscall.EINVAL)
	}
	return r, nil
}

// Read reads up to len(p) bytes of ino at off into p and returns how many
// it read: fewer at the end of the file, 0 at or past it. Holes read as
// zeros. Reads do not change atime. c needs read permission.
func (fs *FS) Read(ctx context.Context, c Caller, ino Ino, p []byte, off uint64) (int, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	r, err := fs.checkFile(ctx, ino)
	if err != nil {
		return 0, err
	}
	if err := c.may(&r.Attr, MayRead); err != nil {
		return 0, err
	}
	if off >= r.Size || len(p) == 0 {
		return 0, nil
	}
	n := int(min(uint64(len(p)), r.Size-off))
	m, err := fs.be.ReadData(ctx, ino, p[:n], int64(off))
	if err != nil {
		return 0, err
	}
	if m < n {
		if err := fs.missingData(ctx, ino, off+uint64(m)); err != nil {
			return 0, err
		}
	}
	clear(p[m:n])
	return n, nil
}

// missingData is called when ino's data object ends at end, before the
// end of a read within the file's size. Data objects cover their files'
// sizes (keyDataCovers), so unless the file was cut meanwhile by a racing
// resize (then the read's zeros are what it would have read after it),
// the data is damaged or missing: EIO, and an error in the log, never
// invented zeros.
func (fs *FS) missingData(ctx context.Context, ino Ino, end uint64) error {
	if !fs.dataCovers {
		return nil // short objects are holes on a volume not yet upgraded
	}
	r, err := fs.get(ctx, ino)
	if err != nil || r.Size <= end {
		return nil // removed or cut meanwhile
	}
	fs.log.Error("file data missing: the data object ends before the file's size (damaged or deleted outside proxyfs?)",
		zapIno(ino), zap.Uint64("data_end", end), zap.Uint64("size", r.Size))
	return fmt.Errorf("read %d: data missing from offset %d of %d: %w", ino, end, r.Size, syscall.EIO)
}

// Span is what a read returns, described rather than copied: N bytes,
// of which the first come from File at Off and the rest, past File's end,
// are zeros. File is nil when the file has no data at all (all zeros).
// Call Release when done; File must only be read with positional reads.
type Span struct {
	File    *os.File
	Off     int64
	N       int
	release func()
}

// Release gives the span's file back. It may be called more than once.
func (s *Span) Release() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

// ReadSpan is Read for callers that move the data themselves (sendfile):
// the same checks and length, but it returns where the bytes are. It
// returns an error wrapping errors.ErrUnsupported when the engine does not
// keep data in files. No lock is held once it returns: a truncate racing
// with the copy may make the file shorter than N, and the caller sends
// zeros for what is missing, as Read would have after the truncate.
func (fs *FS) ReadSpan(ctx context.Context, c Caller, ino Ino, off uint64, length int) (Span, error) {
	fd, ok := fs.be.(vfsbackend.FileData)
	if !ok {
		return Span{}, fmt.Errorf("read span: %w", errors.ErrUnsupported)
	}
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	r, err := fs.checkFile(ctx, ino)
	if err != nil {
		return Span{}, err
	}
	if err := c.may(&r.Attr, MayRead); err != nil {
		return Span{}, err
	}
	if off >= r.Size || length <= 0 {
		return Span{}, nil
	}
	n := int(min(uint64(length), r.Size-off))
	f, release, err := fd.DataFile(ctx, ino)
	if err != nil {
		return Span{}, err
	}
	end := uint64(0)
	if f != nil {
		st, err := f.Stat()
		if err != nil {
			release()
			return Span{}, fmt.Errorf("read %d: stat data: %w", ino, err)
		}
		end = uint64(st.Size())
	}
	if end < off+uint64(n) {
		if err := fs.missingData(ctx, ino, end); err != nil {
			release()
			return Span{}, err
		}
	}
	return Span{File: f, Off: int64(off), N: n, release: release}, nil
}

// Write writes p into ino at off, extending the file as needed; a gap
// between the old end and off reads as zeros. It sets mtime and ctime.
// Writes ending beyond MaxFileSize are EFBIG. c needs write permission; a
// write by anyone but root clears the setuid bit (and setgid with group
// execute).
func (fs *FS) Write(ctx context.Context, c Caller, ino Ino, p []byte, off uint64) error {
	if off > MaxFileSize || uint64(len(p)) > MaxFileSize-off {
		return fmt.Errorf("write %d bytes at %d: %w", len(p), off, syscall.EFBIG)
	}
	return fs.optimistic(ctx, func(ctx context.Context) error { return fs.writeOnce(ctx, c, ino, p, off) })
}

func (fs *FS) writeOnce(ctx context.Context, c Caller, ino Ino, p []byte, off uint64) error {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	mu := &fs.stripe[ino%stripes]
	mu.Lock()
	defer mu.Unlock()
	r, err := fs.checkFile(ctx, ino)
	if err != nil {
		return err
	}
	if err := c.may(&r.Attr, MayWrite); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	oldSize := r.Size
	grow := uint64(0)
	if end := off + uint64(len(p)); end > oldSize {
		grow = end - oldSize
	}
	if err := fs.reserve(ctx, grow); err != nil {
		return err
	}
	ok := false
	defer func() { fs.settle(grow, ok) }()
	if off > r.Size {
		// A hole: make sure nothing a failed call left beyond the old
		// size shows through it.
		if err := fs.cutLeftovers(ctx, ino, r.Size); err != nil {
			return err
		}
	}
	if err := fs.be.WriteData(ctx, ino, p, int64(off)); err != nil {
		return err
	}
	now := fs.now()
	r.Size = max(r.Size, off+uint64(len(p)))
	r.Mtime, r.Ctime = now, now
	c.wrote(&r.Attr)
	if err := fs.putResized(ctx, r, oldSize); err != nil {
		if r.Size > oldSize {
			// The bytes past the old size are not part of the file; cut
			// them now or, failing that, at the next Sync or Open.
			fs.undoGrowth(ctx, ino, oldSize)
		}
		return err
	}
	ok = true
	return nil
}
