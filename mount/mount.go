// Package mount is proxyfsd's mount table. A client mounts a volume under
// an identity (user name, uid, gid, supplementary groups) with options and gets a mount id that
// every later call carries. Mount ids are random, nonzero, below 2^53 (so
// that every JSON implementation reads them exactly) and not guessable;
// they do not survive a daemon restart, so a client that presents an id
// from before a restart gets a bad-mount error and mounts again.
//
// # Leases
//
// A mount lives while a client holds it. A Holder is one client
// connection: the server makes one with Table.NewHolder when a connection
// opens and calls Holder.Release when it closes. A holder holds every
// mount it created (Holder.Mount) or used (Holder.Get: the first use of a
// mount id on a holder attaches the mount to it). One mount may be held by
// many holders at once: clients keep a pool of connections and use one
// mount id on all of them.
//
// When the last holder of a mount lets go, the mount is orphaned: it stays
// in the table for the grace period (Options.Grace), so that a client whose
// connections broke can reconnect and go on with the same mount id; any use
// of the id in that time attaches it to the new connection and ends the
// grace. A mount still orphaned when the grace runs out is reclaimed: it
// leaves the table as if unmounted (its id is then a bad mount, and clients
// mount again) and Options.OnReclaim is told. Unmount removes a mount at
// once, whoever holds it.
//
// A holder holds at most Options.MaxPerHolder mounts: Mount, or the first
// Get of one more mount, fails with EMFILE (unmounting one makes room).
// So a connection that mounts in a loop without unmounting cannot grow the
// table past the cap, and one that closes without unmounting leaves
// nothing behind once the grace is over.
//
// Cost: Get of a mount the holder already holds reads only the holder's
// own set (no lock, nothing shared is written). Only the first use of a
// mount on a holder, Mount, Unmount and Release take the table's lock.
//
// # Growing the lease
//
// The lease is the unit to extend and to distribute. Other state that
// must not outlive its client, such as open file handles, fits the same
// rule: held by the holders that opened or used it, orphaned when the last
// one lets go, reclaimed after the grace, and at the latest with its mount
// (OnReclaim is where a mount's dependent state is freed). For a daemon
// spread over several nodes, the table's state maps onto a store with
// leases such as etcd: each mount is a key attached to a lease whose TTL is
// the grace; a node keeps that lease alive while one of its holders holds
// the mount and stops when its last holder lets go, and the store deletes
// the key (on every node) when the TTL runs out. The API below (NewHolder,
// Mount, Get, Unmount, Release, OnReclaim) does not change with the store.
package mount

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/wire"
)

// Options bits (the mount call's options, as the wire defines them).
const (
	// ReadOnly makes every call that changes the volume fail with EROFS.
	ReadOnly = wire.MountReadOnly
	// KnownOptions are the bits a mount may set; others are EINVAL.
	KnownOptions = ReadOnly
)

// MaxID bounds mount ids: every id is in [1, MaxID].
const MaxID = 1<<53 - 1

// MaxGroups is the most supplementary groups a mount may carry (as the
// wire defines it).
const MaxGroups = wire.MaxMountGroups

// Identity is who the calls on a mount run as: the server builds the
// caller of every permission check from it.
type Identity struct {
	// User is the user name given at mount time (informational).
	User string
	// UID and GID are the user and its primary group: they own the
	// inodes created through the mount.
	UID, GID uint32
	// Groups are the supplementary groups (at most MaxGroups).
	Groups []uint32
	// Client is the client instance given at mount time (optional): lock
	// owners carry it, so that a client's locks are known as its own on
	// every gateway of a shared volume. It grants nothing.
	Client string
}

// Mount is one mounted volume and the identity calls on it run as. A Mount
// is immutable (its Groups too).
type Mount struct {
	// ID is the mount id clients pass with every call.
	ID uint64
	// Volume is the name of the mounted volume.
	Volume string
	Identity
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

// Options configures a Table.
type Options struct {
	// Grace is how long a mount that no holder holds stays in the table
	// before it is reclaimed; 0 reclaims it as soon as its last holder
	// lets go.
	Grace time.Duration
	// MaxPerHolder caps the mounts one holder holds (EMFILE beyond); 0
	// means no cap.
	MaxPerHolder int
	// OnReclaim, if not nil, is called with each mount reclaimed after its
	// grace (not for Unmount), once it has left the table. It runs on the
	// table's timer goroutine with no lock held and must not block for
	// long.
	OnReclaim func(*Mount)
}

// Table is the mount table. It is safe for concurrent use.
type Table struct {
	volumes func(name string) bool
	rand    func(b []byte) // fills b with random bytes; replaceable in tests
	opts    Options
	// now and afterFunc are time.Now and time.AfterFunc; replaceable in
	// tests.
	now       func() time.Time
	afterFunc func(d time.Duration, f func()) stopper

	mu       sync.RWMutex
	mounts   map[uint64]*entry
	orphaned int  // mounts with no holder (in their grace)
	closed   bool // Close was called: no more reclaims
	// graces holds the graces started, oldest first. The grace is the
	// same for every mount, so this is also the order in which they end,
	// and one timer, for the oldest, is enough. A grace that ended early
	// (a holder took the mount, or it was unmounted) stays in the queue
	// until its time and is then skipped.
	graces  []graceItem
	gracesN int     // graces[:gracesN] are done (not yet compacted)
	timer   stopper // runs sweep when the oldest grace ends; nil if none

	reclaimed atomic.Uint64
}

// entry is a mount and its lease.
type entry struct {
	m *Mount
	// gone is set, under Table.mu, when the mount leaves the table
	// (unmounted or reclaimed); holders read it without the lock.
	gone atomic.Bool

	// Guarded by Table.mu.
	holders int    // holders that hold it
	grace   uint64 // counts e's graces, so that a stale queue item does nothing
}

// graceItem is one grace in Table.graces.
type graceItem struct {
	e     *entry
	grace uint64 // e.grace when it started
	end   time.Time
}

// NewTable returns an empty table. hasVolume reports whether a volume of
// that name exists; mounting any other name is ENOENT.
func NewTable(hasVolume func(name string) bool, opts Options) *Table {
	return &Table{
		volumes: hasVolume,
		rand:    func(b []byte) { _, _ = rand.Read(b) }, // never fails (Go 1.24+)
		opts:    opts,
		mounts:  map[uint64]*entry{},
		now:     time.Now,
		afterFunc: func(d time.Duration, f func()) stopper {
			return time.AfterFunc(d, f)
		},
	}
}

// stopper is a timer (*time.Timer).
type stopper interface{ Stop() bool }

// Holder holds mounts for one client connection; see the package
// documentation. Its methods are safe for concurrent use.
type Holder struct {
	t *Table
	// held maps a mount id to its entry: every mount this holder holds,
	// and possibly some that have gone since (removed lazily). Loads are
	// lock-free; stores happen under mu.
	held sync.Map // uint64 -> *entry

	mu       sync.Mutex
	n        int  // entries in held, gone ones included
	released bool // Release was called
}

// NewHolder returns a holder that holds nothing yet.
func (t *Table) NewHolder() *Holder { return &Holder{t: t} }

// TooManyMountsError is the error for a holder at its cap; it matches
// syscall.EMFILE.
type TooManyMountsError struct {
	// Max is the cap (Options.MaxPerHolder).
	Max int
}

// Error implements error.
func (e *TooManyMountsError) Error() string {
	return fmt.Sprintf("this connection already holds %d mounts (max_mounts_per_connection): %v", e.Max, syscall.EMFILE)
}

// Unwrap returns syscall.EMFILE.
func (e *TooManyMountsError) Unwrap() error { return syscall.EMFILE }

// NoVolumeError is the error for a mount of a volume the server does not
// serve; it matches syscall.ENOENT, and its text says which volume.
type NoVolumeError struct {
	// Volume is the name asked for.
	Volume string
}

// Error implements error.
func (e *NoVolumeError) Error() string {
	return fmt.Sprintf("mount: this server has no volume %q (ENOENT)", e.Volume)
}

// Unwrap returns syscall.ENOENT.
func (e *NoVolumeError) Unwrap() error { return syscall.ENOENT }

// Mount adds a mount of volume for the given identity, held by h, and
// returns it. An unknown volume is ENOENT; options with bits other than
// KnownOptions, and more than MaxGroups groups, are EINVAL; a holder at
// its cap is EMFILE. A mount made through a released holder starts
// orphaned.
func (h *Holder) Mount(volume string, options uint64, id Identity) (*Mount, error) {
	if options&^KnownOptions != 0 {
		return nil, fmt.Errorf("mount %q: unknown option bits %#x: %w", volume, options&^KnownOptions, syscall.EINVAL)
	}
	if len(id.Groups) > MaxGroups {
		return nil, fmt.Errorf("mount %q: %d groups (at most %d): %w", volume, len(id.Groups), MaxGroups, syscall.EINVAL)
	}
	if !h.t.volumes(volume) {
		return nil, &NoVolumeError{Volume: volume}
	}
	id.Groups = slices.Clone(id.Groups)
	e := &entry{m: &Mount{Volume: volume, Identity: id, ReadOnly: options&ReadOnly != 0}}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.roomForOne(); err != nil {
		return nil, err
	}
	t := h.t
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
		e.m.ID = id
		break
	}
	t.mounts[e.m.ID] = e
	if h.released {
		t.orphan(e)
	} else {
		e.holders = 1
		h.held.Store(e.m.ID, e)
		h.n++
	}
	return e.m, nil
}

// Get returns the mount with that id, or a *BadMountError, and attaches
// the mount to h if h does not hold it yet (EMFILE if h is at its cap).
// After Release, Get only looks the id up.
func (h *Holder) Get(id uint64) (*Mount, error) {
	if v, ok := h.held.Load(id); ok {
		if e := v.(*entry); !e.gone.Load() {
			return e.m, nil
		}
	}
	return h.attach(id)
}

// attach is Get's slow path: the first use of a mount on h.
func (h *Holder) attach(id uint64) (*Mount, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.held.Load(id); ok {
		e := v.(*entry)
		if !e.gone.Load() {
			return e.m, nil // attached by a concurrent Get
		}
		h.held.Delete(id)
		h.n--
	}
	if h.released {
		return h.t.Get(id)
	}
	t := h.t
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.mounts[id]
	if e == nil {
		return nil, &BadMountError{ID: id}
	}
	if err := h.roomForOne(); err != nil {
		return nil, err
	}
	if e.holders == 0 {
		t.unorphan(e)
	}
	e.holders++
	h.held.Store(id, e)
	h.n++
	return e.m, nil
}

// roomForOne returns a *TooManyMountsError if h is at its cap, after
// forgetting the mounts that have gone. Called with h.mu held.
func (h *Holder) roomForOne() error {
	max := h.t.opts.MaxPerHolder
	if max <= 0 || h.n < max {
		return nil
	}
	h.held.Range(func(k, v any) bool {
		if v.(*entry).gone.Load() {
			h.held.Delete(k)
			h.n--
		}
		return true
	})
	if h.n < max {
		return nil
	}
	return &TooManyMountsError{Max: max}
}

// Any reports whether fn returns true for the id of a mount h holds
// (stopping at the first).
func (h *Holder) Any(fn func(id uint64) bool) bool {
	found := false
	h.held.Range(func(k, v any) bool {
		if !v.(*entry).gone.Load() && fn(k.(uint64)) {
			found = true
			return false
		}
		return true
	})
	return found
}

// Unmount removes the mount with that id, whoever holds it; an id that is
// not mounted is a *BadMountError. It does not attach the mount to h, so
// a holder at its cap can always unmount. Calls already running on the
// mount finish normally.
func (h *Holder) Unmount(id uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.held.LoadAndDelete(id); ok {
		h.n--
	}
	return h.t.Unmount(id)
}

// Release lets go of every mount h holds (the connection closed): those
// no other holder holds are orphaned and reclaimed after the grace unless
// used again. Release is idempotent. After it, h's Get only looks ids up,
// and mounts made through h start orphaned.
func (h *Holder) Release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	t := h.t
	t.mu.Lock()
	defer t.mu.Unlock()
	h.held.Range(func(k, v any) bool {
		h.held.Delete(k)
		e := v.(*entry)
		if e.gone.Load() {
			return true
		}
		e.holders--
		if e.holders == 0 {
			t.orphan(e)
		}
		return true
	})
	h.n = 0
}

// orphan starts e's grace. Called with t.mu held.
func (t *Table) orphan(e *entry) {
	t.orphaned++
	e.grace++
	if t.closed {
		return
	}
	t.graces = append(t.graces, graceItem{e: e, grace: e.grace, end: t.now().Add(t.opts.Grace)})
	if t.timer == nil {
		t.timer = t.afterFunc(t.opts.Grace, t.sweep)
	}
}

// unorphan ends e's grace: a holder took it (its queue item is skipped
// when its time comes). Called with t.mu held.
func (t *Table) unorphan(e *entry) {
	t.orphaned--
	e.grace++
}

// sweep reclaims the mounts whose grace has ended and sets the timer for
// the next grace to end.
func (t *Table) sweep() {
	t.mu.Lock()
	t.timer = nil
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := t.now()
	var reclaimed []*Mount
	for t.gracesN < len(t.graces) {
		g := t.graces[t.gracesN]
		if g.end.After(now) {
			t.timer = t.afterFunc(g.end.Sub(now), t.sweep)
			break
		}
		t.graces[t.gracesN] = graceItem{}
		t.gracesN++
		if e := g.e; e.grace == g.grace && e.holders == 0 && !e.gone.Load() {
			t.orphaned--
			t.remove(e)
			reclaimed = append(reclaimed, e.m)
		}
	}
	// Compact once the done part is half the queue.
	if t.gracesN == len(t.graces) {
		t.graces, t.gracesN = t.graces[:0], 0
	} else if t.gracesN > 64 && 2*t.gracesN >= len(t.graces) {
		n := copy(t.graces, t.graces[t.gracesN:])
		clear(t.graces[n:])
		t.graces, t.gracesN = t.graces[:n], 0
	}
	t.reclaimed.Add(uint64(len(reclaimed))) // with the lock: Stats agree
	t.mu.Unlock()
	if t.opts.OnReclaim != nil {
		for _, m := range reclaimed {
			t.opts.OnReclaim(m)
		}
	}
}

// remove takes e out of the table. Called with t.mu held.
func (t *Table) remove(e *entry) {
	delete(t.mounts, e.m.ID)
	e.gone.Store(true)
}

// Get returns the mount with that id, or a *BadMountError, without
// attaching it to anyone.
func (t *Table) Get(id uint64) (*Mount, error) {
	t.mu.RLock()
	e := t.mounts[id]
	t.mu.RUnlock()
	if e == nil {
		return nil, &BadMountError{ID: id}
	}
	return e.m, nil
}

// Unmount removes the mount with that id, whoever holds it; an id that is
// not mounted is a *BadMountError. Calls already running on the mount
// finish normally.
func (t *Table) Unmount(id uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.mounts[id]
	if e == nil {
		return &BadMountError{ID: id}
	}
	if e.holders == 0 {
		t.unorphan(e)
	}
	t.remove(e)
	return nil
}

// Count returns the number of mounts (orphaned ones included).
func (t *Table) Count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.mounts)
}

// Stats are a table's numbers, for metrics.
type Stats struct {
	// Mounts is the number of mounts, orphaned ones included.
	Mounts int
	// Orphaned is the number of mounts no holder holds (in their grace).
	Orphaned int
	// Reclaimed counts the mounts reclaimed after their grace so far.
	Reclaimed uint64
}

// Stats returns the table's numbers.
func (t *Table) Stats() Stats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return Stats{Mounts: len(t.mounts), Orphaned: t.orphaned, Reclaimed: t.reclaimed.Load()}
}

// Close stops the table's timer (the daemon is shutting down): nothing is
// reclaimed after it. The table still answers.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.graces, t.gracesN = nil, 0
}
