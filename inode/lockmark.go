package inode

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/proxyfs/proxyfs/vfsbackend"
)

// keyLocksHeld is present while locks may be held on the volume: the
// server writes it before it grants the first lock and removes it once
// no lock has been held for a while. A daemon that starts on a volume
// with it gives clients the reclaim grace for their locks.
var keyLocksHeld = []byte("slocks_held")

// LocksMarked reports whether the volume is marked as possibly holding
// locks (see MarkLocks).
func (fs *FS) LocksMarked(ctx context.Context) (bool, error) {
	_, err := fs.be.Get(ctx, keyLocksHeld)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.ENOENT):
		return false, nil
	}
	return false, fmt.Errorf("locks mark: %w", err)
}

// MarkLocks durably marks the volume as possibly holding locks (held
// true), or removes the mark. The lock state itself is not stored: the
// mark only tells the next start whether clients may have locks to
// reclaim.
func (fs *FS) MarkLocks(ctx context.Context, held bool) error {
	if fs.readOnly {
		return fmt.Errorf("locks mark: %w", syscall.EROFS)
	}
	op := vfsbackend.Op{Key: keyLocksHeld, Value: []byte{1}}
	if !held {
		op = vfsbackend.Op{Delete: true, Key: keyLocksHeld}
	}
	if err := fs.be.Commit(ctx, &vfsbackend.Batch{Ops: []vfsbackend.Op{op}}); err != nil {
		return fmt.Errorf("locks mark: %w", err)
	}
	return nil
}
