// Package mount is proxyfsd's mount table. A client mounts a volume under
// an identity (user name, uid, gid) with options and gets a mount id that
// every later call carries. Mount ids are random, nonzero, below 2^53 (so
// that every JSON implementation reads them exactly) and not guessable;
// they do not survive a daemon restart, so a client that presents an id
// from before a restart gets a bad-mount error and mounts again.
package mount

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// Options bits (the mount call's options).
const (
	// ReadOnly makes every call that changes the volume fail with EROFS.
	ReadOnly = 1
	// KnownOptions are the bits a mount may set; others are EINVAL.
	KnownOptions = ReadOnly
)

// MaxID bounds mount ids: every id is in [1, MaxID].
const MaxID = 1<<53 - 1

// Mount is one mounted volume and the identity calls on it run as. A Mount
// is immutable.
type Mount struct {
	// ID is the mount id clients pass with every call.
	ID uint64
	// Volume is the name of the mounted volume.
	Volume string
	// User is the user name given at mount time (informational).
	User string
	// UID and GID are the owner of inodes created through this mount.
	UID, GID uint32
	// ReadOnly is set when the mount refuses changes (EROFS).
	ReadOnly bool
}

// ErrBadMount is matched (errors.Is) by the error for a bad, unknown,
// stale or already unmounted mount id. That error also matches
// syscall.EINVAL, which is what the C API reports for it.
var ErrBadMount = errors.New("bad mount id")

// BadMountError is the error for a mount id that is not in the table.
type BadMountError struct {
	// ID is the mount id that was presented.
	ID uint64
}

// Error implements error.
func (e *BadMountError) Error() string {
	return fmt.Sprintf("mount id %d: bad, stale or unmounted: %v", e.ID, syscall.EINVAL)
}

// Is makes errors.Is match ErrBadMount and syscall.EINVAL.
func (e *BadMountError) Is(target error) bool {
	return target == ErrBadMount || target == syscall.EINVAL
}

// Unwrap returns syscall.EINVAL, the errno of a bad mount.
func (e *BadMountError) Unwrap() error { return syscall.EINVAL }

// IsBadMount reports whether err is (or wraps) a bad-mount error.
func IsBadMount(err error) bool { return errors.Is(err, ErrBadMount) }

// Table is the mount table. It is safe for concurrent use.
type Table struct {
	volumes func(name string) bool
	rand    func(b []byte) // fills b with random bytes; replaceable in tests

	mu     sync.RWMutex
	mounts map[uint64]*Mount
}

// NewTable returns an empty table. hasVolume reports whether a volume of
// that name exists; mounting any other name is ENOENT.
func NewTable(hasVolume func(name string) bool) *Table {
	return &Table{
		volumes: hasVolume,
		rand:    func(b []byte) { _, _ = rand.Read(b) }, // never fails (Go 1.24+)
		mounts:  map[uint64]*Mount{},
	}
}

// Mount adds a mount of volume for the given identity and returns it. An
// unknown volume is ENOENT; options with bits other than KnownOptions are
// EINVAL.
func (t *Table) Mount(volume string, options uint64, user string, uid, gid uint32) (*Mount, error) {
	if options&^KnownOptions != 0 {
		return nil, fmt.Errorf("mount %q: unknown option bits %#x: %w", volume, options&^KnownOptions, syscall.EINVAL)
	}
	if !t.volumes(volume) {
		return nil, fmt.Errorf("mount %q: no such volume: %w", volume, syscall.ENOENT)
	}
	m := &Mount{Volume: volume, User: user, UID: uid, GID: gid, ReadOnly: options&ReadOnly != 0}
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		var b [8]byte
		t.rand(b[:])
		id := binary.LittleEndian.Uint64(b[:]) & MaxID
		if id == 0 {
			continue
		}
		if _, taken := t.mounts[id]; taken {
			continue
		}
		m.ID = id
		t.mounts[id] = m
		return m, nil
	}
}

// Get returns the mount with that id, or a *BadMountError.
func (t *Table) Get(id uint64) (*Mount, error) {
	t.mu.RLock()
	m := t.mounts[id]
	t.mu.RUnlock()
	if m == nil {
		return nil, &BadMountError{ID: id}
	}
	return m, nil
}

// Unmount removes the mount with that id; an id that is not mounted is a
// *BadMountError. Calls already running on the mount finish normally.
func (t *Table) Unmount(id uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mounts[id]; !ok {
		return &BadMountError{ID: id}
	}
	delete(t.mounts, id)
	return nil
}

// Count returns the number of mounts.
func (t *Table) Count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.mounts)
}
