// Package lock is proxyfsd's lock manager: POSIX record locks (fcntl(2)
// F_GETLK, F_SETLK, F_SETLKW) and whole-file flock(2) locks, held by the
// server so that every client of a volume sees them. SMB gateways (byte
// range locks) and FUSE clients use it. The package knows nothing of the
// server: locks are keyed by a Key (volume, inode) and held by an Owner
// (mount, handle, client-chosen id), and the server calls Manager's
// methods from its lock RPCs and when handles close and mounts end.
//
// # Owners
//
// An Owner is opaque to the manager and compared as a whole: two requests
// are from the same owner when Mount, Handle and ID are all equal. Locks
// of one owner never conflict with each other. Because the handle is part
// of the owner, two handles are two owners even with the same ID: the
// semantics are those of Linux's open file description locks
// (F_OFD_SETLK), where a lock belongs to an open file, rather than of
// classic per-process POSIX locks, where one process's locks through two
// descriptors of one file merge. A client that needs per-process locks
// across handles uses one handle for its locks of a file; the classic
// rule that closing any descriptor drops the process's locks on the file
// is applied by the client (an Unlock of the whole file per owner) or by
// the server with ReleaseOwner (see "Release").
//
// # POSIX record locks
//
// A lock covers the bytes [Start, Start+Len) of a file; Len 0 means "to
// the end of the file", whatever the file's size is now or later (up to
// and including offset MaxOffset). Start must be >= 0, Len >= 0, and
// Start+Len-1 must not exceed MaxOffset (EINVAL otherwise; a negative
// Len, which fcntl(2) allows, is normalized by the client). Read locks
// (shared) conflict only with write locks (exclusive) of other owners;
// write locks conflict with every lock of another owner that overlaps.
//
// An owner's locks on a file never overlap: a new lock (or Unlock) over
// bytes the owner already holds replaces them, so that a read lock over
// part of a write lock converts that part, an Unlock in the middle of a
// lock splits it in two, and ranges of one type that touch or overlap
// merge into one. This is fcntl(2)'s rule: the ranges one owner holds
// after any sequence of requests are those Linux reports.
//
// GetLk reports the conflicting lock with the lowest start, or a Lock of
// type Unlock when there is none. SetLk grants a lock or fails with EAGAIN
// at once. SetLkW waits until the lock can be granted (see "Waiting").
//
// # flock locks
//
// Flock takes shared (Read) or exclusive (Write) whole-file locks, one per
// owner and file. They are a separate namespace: flock and POSIX locks do
// not interact, as on Linux. A held lock converts in place to the other
// type when it can; a non-blocking conversion that cannot be granted
// fails with EWOULDBLOCK (EAGAIN) and keeps the lock held before; a
// blocking conversion that has to wait first drops the lock held before,
// as flock(2) does (otherwise two shared holders that both upgrade would
// wait for each other forever).
//
// # Waiting
//
// A waiting SetLkW or Flock is queued on its file. Whenever a file's locks
// change (an unlock, a downgrade, a release), the waiters of that file are
// examined in the order they arrived and each that no lock now blocks is
// granted, so a waiter is woken exactly when it is granted (no thundering
// herd: the others stay asleep) and no release is missed. A waiter does
// not hold back the waiters behind it: a read lock may be granted while an
// earlier write lock still waits, and new SetLk requests are granted over
// waiting ones, as on Linux; a writer can therefore starve under a steady
// stream of readers.
//
// A wait ends with the lock granted (nil), or with EINTR when its context
// is done or Cancel is called for its owner, or with EBADF when its handle
// or mount is released. The waiter is then off every queue. A cancellation
// racing with the grant returns either nil with the lock held, or EINTR
// with nothing held, never both.
//
// Deadlocks: before a SetLkW waits, the manager follows the wait-for graph
// (an owner waits for the owners of the locks that block its waiting
// requests, on any file). If some owner that blocks the request waits,
// directly or through others, for the requesting owner, the request fails
// with EDEADLK instead of waiting. flock waits are not in the graph (as on
// Linux, flock deadlocks are not detected). The graph follows the locks:
// when a waiter is granted, the waiters it now blocks wait for it. As on
// Linux, the test runs when a request would wait: a cycle closed by a
// grant (possible only when one owner has several waits at once, from
// several threads) is not detected; those waits end by cancellation.
// An EDEADLK may also be a false alarm when a wait in the cycle was
// about to be cancelled.
//
// # Release
//
// ReleaseHandle drops every lock (POSIX and flock) whose owner has that
// mount and handle, and fails their waiters with EBADF: the server calls
// it when a handle is closed. ReleaseMount does the same for every owner
// of a mount: the server calls it on unmount and when a mount is
// reclaimed. ReleaseOwner drops one owner's POSIX locks on one file (the
// classic POSIX rule that closing any descriptor of a file drops the
// process's locks on it, when a client asks for it).
//
// # Grace after a restart
//
// Locks live in memory and are lost when the daemon restarts; clients
// hold them still. A manager created with Options.GraceUntil in the future
// starts in a grace period, as an NFSv4 server does: until then only
// requests with Reclaim set are granted (clients re-take the locks they
// held), so that no other client takes a lock that is being reclaimed. In
// the grace, a request without Reclaim that would take a lock fails with
// ErrGrace (which is EAGAIN) if it does not wait (SetLk, Flock with
// NonBlock) and waits for the grace to end if it does; unlocking always
// works; GetLk answers from the locks reclaimed so far. After the grace a
// request with Reclaim fails with ErrNoGrace (ENOLCK): the lock was lost,
// and the client must treat it so. EndGrace ends the grace early (when
// every client has reclaimed).
//
// # Limits
//
// An owner holds at most Options.MaxPerOwner locks and a mount at most
// Options.MaxPerMount (counting each disjoint POSIX range and each flock
// lock as one): a request that would exceed either fails with ENOLCK, so
// that a client cannot exhaust the server's memory. An owner ID is at most
// MaxOwnerID bytes (EINVAL beyond). Waiters are not counted: each is a
// call in flight, which the server already bounds per connection.
//
// # Errors
//
// Every error matches (errors.Is) one syscall.Errno: EAGAIN (conflict, or
// ErrGrace), EDEADLK, EINTR (cancelled; it matches the context's error
// too), EBADF (released while waiting), ENOLCK (a limit, or ErrNoGrace),
// EINVAL (bad range, type or owner).
//
// # Cost and concurrency
//
// Files are spread over 64 shards, and each file with locks has its own
// mutex, so requests on different files do not contend. A file keeps
// each owner's POSIX locks in a slice sorted by start; an owner's ranges
// are disjoint, so they are sorted by end too and binary search finds
// the ones a range touches. For a file with p owners and an owner with r
// ranges there: a conflict test costs O(p log r + k) (k ranges
// examined), a change O(p log r + c) plus a copy of the owner's slice
// when its count changes (c ranges replaced). So one owner's many
// locks (up to MaxPerOwner) cost others little. Waking waiters costs one
// conflict test per waiter of the file per pass, repeated only after a
// pass granted a POSIX lock (which may have downgraded another). Deadlock
// detection runs only before a wait and costs O(edges) of the wait-for
// graph; the graph and the wait queues of files that have waiters are
// changed under one manager-wide mutex, so only contended files (with
// waiters) share it. Limits are counted per mount in 64 shards.
//
// # Wiring into the server
//
// The server (rpcapi/server, locks.go) keeps one Manager per volume,
// created at startup with GraceUntil = start + reclaim_grace when the
// volume is marked as having held locks, and closed at shutdown. Per call
// of PROTOCOL.md section 4:
//
//   - lock: look up the handle (mount_id, fh) for its volume, inode and
//     open mode (EBADF if it is not open on that mount, or if a write lock
//     is asked on a handle not open for writing, a read lock on one not
//     open for reading); Key{Volume, Inode}; Owner{mount_id, fh, owner,
//     the mount's client}; ParseType(type); then GetLk, SetLk, or SetLkW
//     with a context that is cancelled when the call's connection closes
//     or the daemon stops.
//   - flock: the same lookup, Owner{mount_id, fh, "", client},
//     ParseFlockOp(op), Flock with that context (NonBlock, Reclaim from
//     the params).
//   - lock_cancel: Cancel(Owner{mount_id, fh, owner, client}).
//   - close of a handle: ReleaseHandle(mount_id, fh), once the handle is
//     out of the handle table and no lock call on it is still running (a
//     call that looked the handle up before the close and takes a lock
//     after ReleaseHandle would leave that lock behind: hold a reference
//     on the handle for the length of a lock call, or release again when
//     the last one returns).
//   - unmount, and the mount table's OnReclaim: ReleaseMount(mount_id),
//     after the handles of the mount are closed.
//   - errors: the errno is the syscall.Errno the error matches
//     (errors.As); Reason(err) is the error's data.reason ("grace",
//     "no_grace" or "").
//   - metrics: Stats.
//
// # Scaling out
//
// The server should depend on the Locker interface, which Manager
// implements. A distributed implementation (several gateways, state in a
// store such as etcd) implements the same interface: each file's lock
// list is a key updated by compare-and-swap, each mount's locks are
// attached to a lease whose expiry releases them (ReleaseMount then comes
// from the store), waiters watch their file's key and re-run the
// conflict test on every change, the wait-for graph is kept per owner
// under a key of its own, and the grace is a key written at startup.
package lock

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Type is a lock type.
type Type uint8

// Lock types. For flock, Read is shared and Write exclusive.
const (
	// Unlock removes locks (F_UNLCK, LOCK_UN); GetLk returns a Lock of
	// this type when nothing conflicts.
	Unlock Type = iota
	// Read is a shared lock (F_RDLCK, LOCK_SH).
	Read
	// Write is an exclusive lock (F_WRLCK, LOCK_EX).
	Write
)

// String returns "unlock", "read" or "write", the wire names.
func (t Type) String() string {
	switch t {
	case Unlock:
		return "unlock"
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType returns the Type of a wire name ("read", "write", "unlock"),
// or EINVAL.
func ParseType(s string) (Type, error) {
	switch s {
	case "unlock":
		return Unlock, nil
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	}
	return 0, fmt.Errorf("lock type %q: %w", s, syscall.EINVAL)
}

// ParseFlockOp returns the Type of a flock wire op ("shared", "exclusive",
// "unlock"), or EINVAL.
func ParseFlockOp(s string) (Type, error) {
	switch s {
	case "unlock":
		return Unlock, nil
	case "shared":
		return Read, nil
	case "exclusive":
		return Write, nil
	}
	return 0, fmt.Errorf("flock op %q: %w", s, syscall.EINVAL)
}

// Reason returns the wire reason of an error of the manager: "grace" for
// ErrGrace, "no_grace" for ErrNoGrace, "" for every other error.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrGrace):
		return "grace"
	case errors.Is(err, ErrNoGrace):
		return "no_grace"
	}
	return ""
}

// MaxOffset is the largest byte offset a lock covers: a Len of 0 locks up
// to and including it.
const MaxOffset = 1<<63 - 1

// eof is the internal end of a range that runs to the end of the file.
const eof = uint64(1) << 63

// MaxOwnerID is the longest Owner.ID, in bytes.
const MaxOwnerID = 64

// Key names a file: locks on different keys are independent.
type Key struct {
	// Volume is the volume's name.
	Volume string
	// Inode is the file's inode number.
	Inode uint64
}

// Owner holds locks. The manager only compares owners (all fields).
type Owner struct {
	// Mount is the mount id the lock was taken through; ReleaseMount
	// drops every lock with it.
	Mount uint64
	// Handle is the open file handle (fh); ReleaseHandle drops every lock
	// with it and Mount.
	Handle uint64
	// ID is what the client passes to tell its lockers apart (an SMB lock
	// context, a FUSE lock_owner); at most MaxOwnerID bytes, any bytes.
	ID string
	// Client is the client instance the mount was made by (the mount's
	// "client", possibly ""). Shared uses it to tell a client's own locks
	// left on another gateway (see "Locks shared between gateways").
	Client string
}

// Lock is a held lock, as GetLk and Locks report it.
type Lock struct {
	// Type is Read or Write; Unlock in GetLk's answer means "no conflict".
	Type Type
	// Start is the first byte; Len the length, 0 meaning to end of file.
	Start, Len int64
	// Owner holds the lock.
	Owner Owner
}

// Request is a POSIX lock request.
type Request struct {
	// Key is the file.
	Key Key
	// Owner is the requesting owner.
	Owner Owner
	// Type is Read, Write, or Unlock (not for GetLk).
	Type Type
	// Start and Len give the range [Start, Start+Len); Len 0 runs to end
	// of file.
	Start, Len int64
	// Reclaim marks a lock the client held before a daemon restart; see
	// "Grace after a restart".
	Reclaim bool
}

// FlockRequest is a flock request.
type FlockRequest struct {
	// Key is the file.
	Key Key
	// Owner is the requesting owner (the server passes the handle; ID is
	// usually empty).
	Owner Owner
	// Type is Read (shared), Write (exclusive) or Unlock.
	Type Type
	// NonBlock fails with EWOULDBLOCK instead of waiting (LOCK_NB).
	NonBlock bool
	// Reclaim marks a lock held before a daemon restart.
	Reclaim bool
}

// Locker is the lock manager's interface, the one the server should
// depend on so that a distributed implementation can replace Manager.
// Every method is safe for concurrent use.
type Locker interface {
	// GetLk is F_GETLK: the first conflicting lock, or type Unlock.
	GetLk(r Request) (Lock, error)
	// SetLk is F_SETLK: grant, or EAGAIN.
	SetLk(r Request) error
	// SetLkW is F_SETLKW: grant, waiting if need be.
	SetLkW(ctx context.Context, r Request) error
	// Flock is flock(2).
	Flock(ctx context.Context, r FlockRequest) error
	// Cancel ends the owner's waits with EINTR.
	Cancel(o Owner) int
	// ReleaseOwner drops the owner's POSIX locks on one file.
	ReleaseOwner(k Key, o Owner)
	// ReleaseHandle drops the locks of a handle's owners (close).
	ReleaseHandle(mount, handle uint64)
	// ReleaseMount drops the locks of a mount's owners (unmount).
	ReleaseMount(mount uint64)
}

var _ Locker = (*Manager)(nil)

// Errors.
var (
	// ErrGrace is the error for a request without Reclaim during the
	// grace period; it matches syscall.EAGAIN.
	ErrGrace error = &errnoError{msg: "lock: in grace period after restart, only reclaims are granted", errno: syscall.EAGAIN}
	// ErrNoGrace is the error for a request with Reclaim outside the grace
	// period (the lock was lost); it matches syscall.ENOLCK.
	ErrNoGrace error = &errnoError{msg: "lock: reclaim outside the grace period, the lock was lost", errno: syscall.ENOLCK}
)

// errnoError is a sentinel error with its own identity that matches an
// errno.
type errnoError struct {
	msg   string
	errno syscall.Errno
}

func (e *errnoError) Error() string   { return e.msg }
func (e *errnoError) Unwrap() error   { return e.errno }
func (e *errnoError) Is(t error) bool { return t == e.errno }

// Options configures a Manager.
type Options struct {
	// MaxPerOwner caps the locks one owner holds (ENOLCK beyond); 0 means
	// DefaultMaxPerOwner, negative no cap.
	MaxPerOwner int
	// MaxPerMount caps the locks all owners of one mount hold; 0 means
	// DefaultMaxPerMount, negative no cap.
	MaxPerMount int
	// GraceUntil, if in the future, starts the manager in a grace period
	// that ends then; the zero time means no grace.
	GraceUntil time.Time
}

// Default limits.
const (
	DefaultMaxPerOwner = 10000
	DefaultMaxPerMount = 100000
)

// stopper is a timer (*time.Timer).
type stopper interface{ Stop() bool }

// Manager holds the locks of a daemon's volumes. It is safe for concurrent
// use.
type Manager struct {
	maxOwner, maxMount int
	now                func() time.Time
	afterFunc          func(d time.Duration, f func()) stopper

	seed   maphash.Seed
	shards [nShards]shard

	// graphMu guards every waiter's state and the waiters map, and is
	// held while a file that has waiters changes. Lock order: ino.mu,
	// then graphMu, then an account shard's mu.
	graphMu sync.Mutex
	waiting map[Owner][]*waiter // queued waiters, by owner

	accounts [nShards]accountShard

	graceMu    sync.Mutex
	graceEnd   time.Time
	graceDone  chan struct{} // closed when the grace ends
	graceOver  atomic.Bool
	graceTimer stopper
	graceWaits map[*graceWait]struct{} // requests waiting for the grace to end

	stats struct {
		granted, conflicts, waits, deadlocks, cancelled, limited atomic.Uint64
	}
}

const nShards = 64

type shard struct {
	mu    sync.Mutex
	files map[Key]*inode
}

// New returns a manager with the given options.
func New(opts Options) *Manager {
	return newManager(opts, time.Now, func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) })
}

// newManager is New with a clock (tests pass a fake one).
func newManager(opts Options, now func() time.Time, afterFunc func(time.Duration, func()) stopper) *Manager {
	m := &Manager{
		maxOwner:  opts.MaxPerOwner,
		maxMount:  opts.MaxPerMount,
		now:       now,
		afterFunc: afterFunc,
		seed:      maphash.MakeSeed(),
		waiting:   map[Owner][]*waiter{},
		graceDone: make(chan struct{}),
	}
	if m.maxOwner == 0 {
		m.maxOwner = DefaultMaxPerOwner
	}
	if m.maxMount == 0 {
		m.maxMount = DefaultMaxPerMount
	}
	for i := range m.shards {
		m.shards[i].files = map[Key]*inode{}
		m.accounts[i].mounts = map[uint64]*account{}
	}
	if d := opts.GraceUntil.Sub(now()); !opts.GraceUntil.IsZero() && d > 0 {
		m.graceEnd = opts.GraceUntil
		// EndGrace reads graceTimer under graceMu, and the timer may
		// fire before afterFunc returns.
		m.graceMu.Lock()
		m.graceTimer = afterFunc(d, m.EndGrace)
		m.graceMu.Unlock()
	} else {
		m.graceOver.Store(true)
		close(m.graceDone)
	}
	return m
}

// InGrace reports whether the manager is in its grace period.
func (m *Manager) InGrace() bool {
	if m.graceOver.Load() {
		return false
	}
	if !m.now().Before(m.graceEnd) {
		m.EndGrace()
		return false
	}
	return true
}

// EndGrace ends the grace period now (if any): requests waiting for it
// go on. It is idempotent.
func (m *Manager) EndGrace() {
	m.graceMu.Lock()
	defer m.graceMu.Unlock()
	if m.graceOver.Load() {
		return
	}
	m.graceOver.Store(true)
	if m.graceTimer != nil {
		m.graceTimer.Stop()
	}
	close(m.graceDone)
}

// Close stops the manager's timer (the daemon is shutting down). Locks
// and waiters are left as they are.
func (m *Manager) Close() {
	m.graceMu.Lock()
	defer m.graceMu.Unlock()
	if m.graceTimer != nil {
		m.graceTimer.Stop()
	}
}

// graceCheck returns nil if a request that would take a lock may go on
// now, ErrNoGrace for a reclaim outside the grace, or ErrGrace (with the
// channel to wait on) for a non-reclaim in the grace.
func (m *Manager) graceCheck(reclaim bool) (<-chan struct{}, error) {
	in := m.InGrace()
	switch {
	case in && !reclaim:
		return m.graceDone, ErrGrace
	case !in && reclaim:
		return nil, ErrNoGrace
	}
	return nil, nil
}

// file returns the state of k, created if need be, locked.
func (m *Manager) file(k Key) *inode {
	sh := &m.shards[maphash.Comparable(m.seed, k)%nShards]
	for {
		sh.mu.Lock()
		ino := sh.files[k]
		if ino == nil {
			ino = &inode{key: k, sh: sh, owners: map[Owner][]rng{}}
			sh.files[k] = ino
		}
		sh.mu.Unlock()
		ino.mu.Lock()
		if !ino.dead {
			return ino
		}
		ino.mu.Unlock() // removed meanwhile: take the new one
	}
}

// lookup returns the state of k locked, or nil if k has none.
func (m *Manager) lookup(k Key) *inode {
	sh := &m.shards[maphash.Comparable(m.seed, k)%nShards]
	sh.mu.Lock()
	ino := sh.files[k]
	sh.mu.Unlock()
	if ino == nil {
		return nil
	}
	ino.mu.Lock()
	if ino.dead {
		ino.mu.Unlock()
		return nil
	}
	return ino
}

// unlock unlocks ino, first removing it from its shard if it holds
// nothing.
func (ino *inode) unlock() {
	if len(ino.owners) == 0 && len(ino.flocks) == 0 && len(ino.waiters) == 0 {
		ino.dead = true
		ino.sh.mu.Lock()
		if ino.sh.files[ino.key] == ino {
			delete(ino.sh.files, ino.key)
		}
		ino.sh.mu.Unlock()
	}
	ino.mu.Unlock()
}

// inode is the lock state of one file.
type inode struct {
	key Key
	sh  *shard

	mu   sync.Mutex
	dead bool // removed from the shard: look it up again
	// owners holds each owner's POSIX locks, sorted by start and
	// disjoint (so sorted by end too).
	owners map[Owner][]rng
	flocks []flock // flock holders, one per owner
	// waiters are the queued waiters (POSIX and flock), oldest first.
	// Changed under mu and graphMu.
	waiters []*waiter
}

// Stats are a manager's numbers, for metrics.
type Stats struct {
	// Files is the number of files with locks or waiters.
	Files int
	// Waiting is the number of queued waiters.
	Waiting int
	// Granted counts the locks granted (at once or after a wait).
	Granted uint64
	// Conflicts counts requests that found a conflict (EAGAIN or a wait).
	Conflicts uint64
	// Waits counts the waits begun (SetLkW and Flock queued).
	Waits uint64
	// Deadlocks counts EDEADLK answers.
	Deadlocks uint64
	// Cancelled counts waits ended by EINTR or EBADF.
	Cancelled uint64
	// Limited counts ENOLCK answers for a limit.
	Limited uint64
}

// Stats returns the manager's numbers.
func (m *Manager) Stats() Stats {
	var s Stats
	for i := range m.shards {
		m.shards[i].mu.Lock()
		s.Files += len(m.shards[i].files)
		m.shards[i].mu.Unlock()
	}
	m.graphMu.Lock()
	for _, ws := range m.waiting {
		s.Waiting += len(ws)
	}
	m.graphMu.Unlock()
	s.Granted = m.stats.granted.Load()
	s.Conflicts = m.stats.conflicts.Load()
	s.Waits = m.stats.waits.Load()
	s.Deadlocks = m.stats.deadlocks.Load()
	s.Cancelled = m.stats.cancelled.Load()
	s.Limited = m.stats.limited.Load()
	return s
}

// eintr is the error of a wait ended by its context.
func eintr(ctx context.Context) error {
	return fmt.Errorf("lock wait cancelled: %w (%w)", syscall.EINTR, context.Cause(ctx))
}

// errCancelled is the error of a wait ended by Cancel.
var errCancelled = fmt.Errorf("lock wait cancelled: %w", syscall.EINTR)

// errReleased is the error of a wait whose handle or mount was released.
var errReleased = fmt.Errorf("lock wait: handle or mount released: %w", syscall.EBADF)
