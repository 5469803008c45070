package vfsbackend

import (
	"context"
	"errors"
	"sync"
)

// Optimistic concurrency for engines that several gateways change at once.
//
// Package inode makes each change atomic inside one process with its own
// locks. When several processes serve one volume, a change must also be
// conditional on what it read: it commits only if no key it read changed
// in between, else it starts again from the beginning. The engine tracks
// what a call read in a ReadSet that travels in the call's context (so
// that the Backend interface stays as it is): the caller makes one with
// WithReadSet for each attempt, every Get and Scan with that context notes
// the versions it saw, and Commit with that context compares them and
// fails with ErrConflict, changing nothing, if one changed. A successful
// Commit brings the set up to date (the keys it wrote are known at their
// new versions), so one attempt may commit more than once.

// ErrConflict is what Commit and SharedEngine.ValidateReads return (wrapped)
// when a key read through the context's ReadSet changed since it was read.
var ErrConflict = errors.New("vfsbackend: a key read by the call changed before it committed")

// SharedEngine is implemented by engines whose volume several gateways may
// change at once (etcdswift). Wrappers return an error wrapping
// errors.ErrUnsupported when the engine they wrap is not one.
type SharedEngine interface {
	// ValidateReads returns an error wrapping ErrConflict if a key read
	// through ctx's ReadSet changed since it was read, nil otherwise (and
	// nil when ctx carries no ReadSet). A call that returns without
	// committing validates its reads so that it never answers from a
	// mixture of states (say, ENOENT for an inode that an entry it read
	// had named).
	ValidateReads(ctx context.Context) error
	// CountKeys returns the number of metadata keys that start with
	// prefix: counts that each gateway cannot keep in memory (the number
	// of inodes) are counted when asked for.
	CountKeys(ctx context.Context, prefix []byte) (uint64, error)
	// AssumeAbsent notes in ctx's ReadSet that key is absent, without
	// reading it, and returns true; it returns false, doing nothing, when
	// ctx carries no ReadSet or one that reads through (the caller then
	// reads key). The call's commit, or its validation, fails with
	// ErrConflict if key exists. It saves the read of a key that a call
	// expects not to find (the name a create adds).
	AssumeAbsent(ctx context.Context, key []byte) bool
}

// ReadSet records the versions of the metadata keys a call read, for the
// engine to compare at Commit. Its contents are the engine's: keys and
// versions in the engine's own terms. It is safe for concurrent use.
type ReadSet struct {
	mu        sync.Mutex
	keys      map[string]int64
	ranges    []ReadRange
	committed bool
	through   bool
}

// ReadRange is a range [From, End) of keys read at revision Rev: the
// commit fails if a key in it was created or changed after Rev.
type ReadRange struct {
	From, End string
	Rev       int64
}

type readSetKey struct{}

// WithReadSet returns a context carrying a new, empty ReadSet.
func WithReadSet(ctx context.Context) (context.Context, *ReadSet) {
	rs := &ReadSet{keys: map[string]int64{}}
	return context.WithValue(ctx, readSetKey{}, rs), rs
}

// ReadSetFrom returns the ReadSet ctx carries, or nil.
func ReadSetFrom(ctx context.Context) *ReadSet {
	rs, _ := ctx.Value(readSetKey{}).(*ReadSet)
	return rs
}

// Key notes that key was read at version (0: it did not exist). The first
// version seen is kept: if a later read saw another, the key changed
// during the call and the commit must fail, which comparing the first
// makes it do.
func (rs *ReadSet) Key(key string, version int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.keys[key]; !ok {
		rs.keys[key] = version
	}
}

// Wrote notes that the call itself set key to version (0: deleted it)
// without committing its changes yet (a data change that the metadata
// commit then makes part of the file): a later commit fails if someone
// else changed key after that.
func (rs *ReadSet) Wrote(key string, version int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.keys[key] = version
}

// Range notes that the keys in [from, end) were read at revision rev.
func (rs *ReadSet) Range(from, end string, rev int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.ranges = append(rs.ranges, ReadRange{From: from, End: end, Rev: rev})
}

// ReadThrough asks the engine to read from its store, not from a cache of
// its own, and to assume nothing (SharedEngine.AssumeAbsent): for the
// attempts after one that lost a race, which a stale cached value could
// make lose again.
func (rs *ReadSet) ReadThrough() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.through = true
}

// Through says whether ReadThrough was called.
func (rs *ReadSet) Through() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.through
}

// Empty says whether nothing was read.
func (rs *ReadSet) Empty() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.keys) == 0 && len(rs.ranges) == 0
}

// Each calls key for every key read and rng for every range read.
func (rs *ReadSet) Each(key func(k string, version int64), rng func(r ReadRange)) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for k, v := range rs.keys {
		key(k, v)
	}
	for _, r := range rs.ranges {
		rng(r)
	}
}

// Committed says whether a Commit with the set succeeded.
func (rs *ReadSet) Committed() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.committed
}

// CommittedAt brings the set up to date after a successful commit at
// revision rev: every key read is still at the version it was read at
// (the commit compared them), written keys are at rev (deleted: absent),
// and every range holds what it held, as of rev.
func (rs *ReadSet) CommittedAt(rev int64, written map[string]bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.committed = true
	for k, deleted := range written {
		if deleted {
			rs.keys[k] = 0
		} else {
			rs.keys[k] = rev
		}
	}
	for i := range rs.ranges {
		rs.ranges[i].Rev = max(rs.ranges[i].Rev, rev)
	}
}

// Pinner is implemented by engines that several gateways share: it keeps,
// in the engine, which inodes each gateway has open, so that a gateway
// never frees an unlinked file that another one still has open. A
// gateway's pins are tied to its liveness (etcdswift: an etcd lease): a
// gateway that dies loses them when that ends. Package inode pins an
// inode when this gateway's first handle opens it and unpins it when the
// last one closes. Wrappers return an error wrapping errors.ErrUnsupported
// when the engine they wrap has none.
type Pinner interface {
	// Pin notes that this gateway has ino open. With a ReadSet in ctx it
	// is a commit: it fails with ErrConflict, changing nothing, if a key
	// the call read changed.
	Pin(ctx context.Context, ino Ino) error
	// Unpin notes that this gateway no longer has ino open.
	Unpin(ctx context.Context, ino Ino) error
	// Pinned reports whether any gateway (this one included) has ino
	// open, read through ctx's ReadSet if it has one (a pin taken after
	// the read makes the call's commit fail).
	Pinned(ctx context.Context, ino Ino) (bool, error)
}

// WithoutReadSet returns ctx without its ReadSet: reads through it are not
// noted, so the call's commit does not depend on them.
func WithoutReadSet(ctx context.Context) context.Context {
	if ReadSetFrom(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, readSetKey{}, (*ReadSet)(nil))
}
