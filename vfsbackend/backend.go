// Package vfsbackend defines the storage engine interface that proxyfs volumes
// are built on, and a registry of engines.
//
// An engine stores two things and knows nothing about POSIX:
//
//   - metadata, as an ordered key/value map changed only through atomic
//     batches (Commit), read with Get and ordered prefix Scan;
//   - file data, as one sparse byte object per inode number (ReadData,
//     WriteData, TruncateData, DeleteData).
//
// Everything else (inodes, directories, link counts, timestamps, rename
// rules, xattrs) is encoded on top of this by package inode, once, so that
// every engine behaves the same. The split mirrors where engines are going:
// a distributed key/value store for metadata and an object store for data.
//
// # Durability contract
//
// Every engine promises, for every call that returned nil:
//
//   - Commit: the batch is visible to every later call and survives a crash
//     of the process (SIGKILL) at any later moment. It reaches stable storage
//     (survives power loss) no later than the next Sync or SyncData, and in
//     the local engine within its configured sync interval.
//   - WriteData / TruncateData / DeleteData: the change survives a crash of
//     the process; it reaches stable storage no later than SyncData on that
//     inode.
//   - SyncData(ino): ino's data and every batch committed before the call are
//     on stable storage.
//
// Engines never reorder a Commit after a later Commit: after a crash, the
// visible metadata is the result of a prefix of the acknowledged batches (at
// least all acknowledged ones, for a process crash).
//
// # Errors
//
// Methods return errors that wrap syscall.Errno values where one applies
// (ENOENT for a missing key, ENOSPC, EIO, ...). Package inode converts any
// other error to EIO.
package vfsbackend

import (
	"context"
	"os"
	"syscall"
)

// Ino is an inode number. Data objects are keyed by it.
type Ino uint64

// Backend is a storage engine. Implementations must be safe for concurrent
// use by many goroutines. Package inode serializes conflicting updates
// itself; a Backend only has to make each call atomic.
type Backend interface {
	// Get returns a copy of the value stored under key. It returns an error
	// wrapping syscall.ENOENT if the key does not exist.
	Get(ctx context.Context, key []byte) ([]byte, error)

	// Scan calls fn for every key that starts with prefix and is >= start
	// (a nil start means the first key with the prefix), in ascending byte
	// order, until fn returns false or the keys run out. key and value are
	// only valid during the call to fn and must not be modified. fn must not
	// call into the Backend. Scan sees every batch committed before it was
	// called; batches committed while it runs may or may not be seen.
	Scan(ctx context.Context, prefix, start []byte, fn func(key, value []byte) bool) error

	// Commit applies every operation of b atomically, in order: after a
	// crash either all of them are visible or none. An empty batch is a
	// no-op. The batch must not be used again after Commit returns.
	Commit(ctx context.Context, b *Batch) error

	// ReadData reads up to len(p) bytes of ino's data object at off into p
	// and returns how many bytes the object holds there. Ranges that were
	// never written, inside the object, read as zeros. It returns n < len(p)
	// with a nil error when the object ends before off+len(p), and 0, nil
	// when there is no object for ino.
	ReadData(ctx context.Context, ino Ino, p []byte, off int64) (n int, err error)

	// WriteData writes p at off into ino's data object, creating it if
	// needed and leaving a hole (zeros) between its old end and off.
	WriteData(ctx context.Context, ino Ino, p []byte, off int64) error

	// TruncateData sets ino's data object to size bytes, cutting data or
	// extending with zeros. Truncating a missing object to 0 is a no-op.
	TruncateData(ctx context.Context, ino Ino, size int64) error

	// DeleteData removes ino's data object. Deleting a missing object is a
	// no-op (it is idempotent).
	DeleteData(ctx context.Context, ino Ino) error

	// SyncData makes ino's data object and every batch committed before the
	// call durable against power loss (fsync).
	SyncData(ctx context.Context, ino Ino) error

	// Sync makes every batch committed before the call durable against
	// power loss.
	Sync(ctx context.Context) error

	// ListData calls fn with the inode number and size of every data
	// object, in no particular order, until fn returns false. It is used by
	// recovery and by the consistency checker, not on hot paths.
	ListData(ctx context.Context, fn func(ino Ino, size int64) bool) error

	// Usage reports space use for statvfs.
	Usage(ctx context.Context) (Usage, error)

	// Close syncs and releases everything. No method may be called after
	// Close.
	Close() error
}

// FileData is implemented by engines that keep each data object in an
// operating-system file, so that callers can have the kernel copy file
// data to a socket (sendfile) instead of reading it into a buffer first.
//
// DataFile returns ino's data file, or a nil file when ino has no data
// object, and a function to call when done with it; until then the file
// stays open (also if the object is deleted meanwhile). The file may only
// be read, with positional reads (pread, sendfile with an offset): it is
// shared. Bytes past the file's end, within the inode's size, read as
// zeros, as with ReadData. Wrappers return an error wrapping
// errors.ErrUnsupported when the engine they wrap has no data files.
type FileData interface {
	DataFile(ctx context.Context, ino Ino) (f *os.File, release func(), err error)
}

// InoAllocator is implemented by engines whose volume several gateways
// (proxyfsd processes) may serve at once, such as etcdswift: inode numbers
// then come from the engine, so that they are unique across gateways,
// instead of from a counter that each process caches.
//
// AllocInos reserves n inode numbers, none of which it ever hands out
// again to any caller on any gateway, all at least min, and returns the
// first: they are [first, first+n). With n = 0 it reserves nothing and
// returns the next number it would hand out (it writes nothing, so it
// works on a volume opened read-only). Wrappers return an error wrapping
// errors.ErrUnsupported when the engine they wrap has no allocator.
type InoAllocator interface {
	AllocInos(ctx context.Context, n uint64, min Ino) (first Ino, err error)
}

// Usage is an engine's view of its space, in bytes.
type Usage struct {
	// TotalBytes is the capacity of the store.
	TotalBytes uint64
	// FreeBytes is the space still free.
	FreeBytes uint64
	// AvailBytes is the space free for unprivileged use (usually FreeBytes).
	AvailBytes uint64
	// TotalInodes and FreeInodes describe the underlying store's own object
	// limits; zero means "no limit of its own".
	TotalInodes uint64
	FreeInodes  uint64
}

// Batch is an ordered list of key/value changes applied atomically by
// Backend.Commit. The zero value is an empty batch ready to use.
type Batch struct {
	Ops []Op
	// Frees marks a batch that gives space back (it removes an inode or
	// shrinks a file). An engine lets such a batch use the space it keeps
	// in reserve when its storage is full, so that a full volume can
	// always be cleaned up: without it, deleting a file needs a log
	// append that a full disk refuses.
	Frees bool
}

// Op is one change in a Batch.
type Op struct {
	// Delete is true to remove Key (a missing key is not an error);
	// false to set Key to Value.
	Delete bool
	Key    []byte
	Value  []byte
}

// Put records setting key to value. The batch keeps key and value; the
// caller must not modify them afterwards.
func (b *Batch) Put(key, value []byte) {
	b.Ops = append(b.Ops, Op{Key: key, Value: value})
}

// Delete records removing key.
func (b *Batch) Delete(key []byte) {
	b.Ops = append(b.Ops, Op{Delete: true, Key: key})
}

// Len returns the number of operations in the batch.
func (b *Batch) Len() int { return len(b.Ops) }

// ErrNotFound is what Get returns (wrapped or not) for a missing key.
var ErrNotFound = syscall.ENOENT
