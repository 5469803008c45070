package inode

import (
	"context"
	"fmt"
	"syscall"
)

// SetAttr applies the fields of sa selected by sa.Mask in one atomic step,
// as c, and returns the new attributes. Any change sets ctime; a size
// change also sets mtime unless sa sets mtime itself. Changing the size of
// a directory is EISDIR, of a symlink EINVAL; unknown mask bits are
// EINVAL, and so are a time and its "now" bit together. Who may change
// what is checkSetAttr's rule (perm.go). A size change by anyone but root
// clears the file's setuid bit (and setgid with group execute), as a
// write does; so does a change of owner or group of a regular file, by
// anyone, unless sa sets the mode too.
func (fs *FS) SetAttr(ctx context.Context, c Caller, ino Ino, sa SetAttr) (Attr, error) {
	if sa.Mask&^SetMaskAll != 0 {
		return Attr{}, fmt.Errorf("setattr: mask %#x: %w", sa.Mask, syscall.EINVAL)
	}
	if sa.Mask&(SetAtime|SetAtimeNow) == SetAtime|SetAtimeNow || sa.Mask&(SetMtime|SetMtimeNow) == SetMtime|SetMtimeNow {
		return Attr{}, fmt.Errorf("setattr: mask %#x sets a time and asks for now: %w", sa.Mask, syscall.EINVAL)
	}
	for _, tm := range []struct {
		bit uint32
		t   Timespec
	}{{SetAtime, sa.Atime}, {SetMtime, sa.Mtime}, {SetCrtime, sa.Crtime}} {
		if sa.Mask&tm.bit != 0 {
			if err := checkTime(tm.t); err != nil {
				return Attr{}, err
			}
		}
	}
	if sa.Mask&SetSize != 0 && sa.Size > MaxFileSize {
		return Attr{}, fmt.Errorf("setattr: size %d: %w", sa.Size, syscall.EFBIG)
	}
	return optimistic1(ctx, fs, func(ctx context.Context) (Attr, error) { return fs.setAttrOnce(ctx, c, ino, sa) })
}

func (fs *FS) setAttrOnce(ctx context.Context, c Caller, ino Ino, sa SetAttr) (Attr, error) {
	fs.ns.RLock()
	defer fs.ns.RUnlock()
	mu := &fs.stripe[ino%stripes]
	mu.Lock()
	defer mu.Unlock()
	r, err := fs.get(ctx, ino)
	if err != nil {
		return Attr{}, err
	}
	if sa.Mask == 0 {
		return r.Attr, nil
	}
	now := fs.now()
	oldSize := r.Size
	if sa.Mask&SetSize != 0 {
		switch r.Mode & ModeType {
		case ModeDir:
			return Attr{}, errIsDir(ino)
		case ModeSymlink:
			return Attr{}, fmt.Errorf("resize symlink %d: %w", ino, syscall.EINVAL)
		}
	}
	mode, err := c.checkSetAttr(&r.Attr, &sa)
	if err != nil {
		return Attr{}, err
	}
	if sa.Mask&SetSize != 0 {
		r.Size = sa.Size
		r.Mtime = now
		c.wrote(&r.Attr)
	}
	if sa.Mask&(SetUID|SetGID) != 0 {
		clearSetID(&r.Attr)
	}
	if sa.Mask&SetMode != 0 {
		r.Mode = mode
	}
	if sa.Mask&SetUID != 0 {
		r.UID = sa.UID
	}
	if sa.Mask&SetGID != 0 {
		r.GID = sa.GID
	}
	if sa.Mask&SetAtime != 0 {
		r.Atime = sa.Atime
	}
	if sa.Mask&SetAtimeNow != 0 {
		r.Atime = now
	}
	if sa.Mask&SetMtime != 0 {
		r.Mtime = sa.Mtime
	}
	if sa.Mask&SetMtimeNow != 0 {
		r.Mtime = now
	}
	if sa.Mask&SetCrtime != 0 {
		r.Crtime = sa.Crtime
	}
	r.Ctime = now
	if r.Size > oldSize {
		if err := fs.reserve(ctx, r.Size-oldSize); err != nil {
			return Attr{}, err
		}
	}
	committed := false
	defer func() {
		if r.Size > oldSize {
			fs.settle(r.Size-oldSize, committed)
		}
	}()
	if r.Size > oldSize {
		// Cut anything a failed call left beyond the old size before the
		// new size exposes it, then extend the data object (sparse) to
		// the new size: data objects cover their files' sizes, so that
		// short data can be told from a hole (keyDataCovers).
		if err := fs.cutLeftovers(ctx, ino, oldSize); err != nil {
			return Attr{}, err
		}
		if err := fs.be.TruncateData(ctx, ino, int64(r.Size)); err != nil {
			fs.markUntidy(ino) // cut back to the old size by the next Sync
			return Attr{}, err
		}
	}
	t := fs.newTxn()
	t.put(r)
	if r.Mode&ModeType == ModeRegular {
		t.resized(ino, oldSize, r.Size)
	}
	if sa.Mask&(SetSize|SetUID|SetGID) != 0 {
		if err := fs.dropCaps(ctx, t, r); err != nil {
			return Attr{}, err
		}
	}
	t.frees = r.Size < oldSize // a full volume can still be cleaned up
	if err := t.commit(ctx); err != nil {
		return Attr{}, err
	}
	committed = true
	if r.Size < oldSize {
		fs.freed(oldSize - r.Size)
		// The new size is committed, so the call succeeded; data beyond
		// it is unreachable even if this fails, and Sync or Open cuts it.
		if err := fs.be.TruncateData(ctx, ino, int64(r.Size)); err != nil {
			fs.log.Warn("cut data after shrink", zapIno(ino), zapErr(err))
			fs.markUntidy(ino)
		}
	}
	return r.Attr, nil
}

// putResized commits regular file r's record, its data changed and its
// size changed from oldSize, with the removal of its file capabilities
// (dropCaps).
func (fs *FS) putResized(ctx context.Context, r *record, oldSize uint64) error {
	t := fs.newTxn()
	t.put(r)
	t.resized(r.Ino, oldSize, r.Size)
	if err := fs.dropCaps(ctx, t, r); err != nil {
		return err
	}
	return t.commit(ctx)
}
