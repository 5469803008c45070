package local

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"go.uber.org/zap"
)

// A full disk must never wedge a volume: removing a file has to append a
// WAL record, and a full disk refuses the append. So the engine keeps a
// file of reserveBytes allocated in the volume directory (RESERVE). When a
// record that frees space (vfsbackend.Batch.Frees: an unlink, a shrink, an
// xattr removal, the deletion of inline data) meets ENOSPC, the reserve is
// released and the append tried again. Records that use space never touch
// it, so they keep failing with ENOSPC while deletions go through. The
// syncer allocates the reserve again once the filesystem has twice its
// size available.
const (
	reserveName         = "RESERVE"
	defaultReserveBytes = 8 << 20
)

// reserve is the RESERVE file's state. Its methods are safe for
// concurrent use.
type reserve struct {
	mu   sync.Mutex
	path string
	size int64 // 0: no reserve
	held bool  // the file holds size bytes
}

func (r *reserve) init(path string, size int64) {
	r.path, r.size = path, size
}

// refill allocates the reserve if it is not held and the filesystem has
// room for it twice over. A failure is logged and tried again later.
func (r *reserve) refill(log *zap.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held || r.size <= 0 {
		return
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(r.path), &st); err != nil {
		return
	}
	if int64(st.Bavail)*st.Bsize < 2*r.size {
		return // still (nearly) full: keep what little there is for frees
	}
	f, err := os.OpenFile(r.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		log.Warn("cannot create the space reserve", zap.Error(err))
		return
	}
	defer f.Close()
	err = syscall.Fallocate(int(f.Fd()), 0, 0, r.size)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		// No fallocate: write zeros (on a filesystem that compresses
		// them away, the reserve holds less than it says).
		_, err = f.WriteAt(make([]byte, r.size), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		_ = f.Truncate(0)
		log.Warn("cannot allocate the space reserve", zap.Int64("bytes", r.size), zap.Error(err))
		return
	}
	r.held = true
}

// release gives the reserve's space back to the filesystem, and reports
// whether there was any to give.
func (r *reserve) release(log *zap.Logger) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.held {
		return false
	}
	r.held = false
	if err := os.Truncate(r.path, 0); err != nil {
		log.Error("cannot release the space reserve", zap.Error(err))
		return false
	}
	log.Warn("disk full: released the space reserve so that files can be removed", zap.Int64("bytes", r.size))
	return true
}
