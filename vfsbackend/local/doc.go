// Package local is proxyfs's embedded, durable default storage engine. It is
// registered as "local" with package vfsbackend and keeps one volume in one
// directory (vfsbackend.Options.Path):
//
//	LOCK                     flock(LOCK_EX|LOCK_NB): one process per volume
//	index                    the metadata index (bbolt) as of some sequence number
//	wal.<16 hex digits>      write-ahead logs, oldest first, the last one active
//	data/<xx>/<16 hex>       one sparse file per inode whose data outgrew the
//	                         inline limit; xx is the inode's low byte
//
// # Metadata
//
// Every Commit encodes its batch as one record
//
//	length uint32 | CRC32-C uint32 | seq uint64 | ops
//
// (little endian; the CRC covers ops and seq; an op is a kind byte, put,
// delete, inline put or inline delete, then its uvarint-prefixed key and, for
// puts, value) and appends it to the active
// WAL with a single pwrite(2), then applies it to the in-memory overlay.
// Commits are serialized by a mutex whose critical section is just "assign
// seq, write, apply". Once the write returned the record is in the kernel's
// page cache, so a crash of the process (kill -9) cannot lose an
// acknowledged commit. Power-loss durability comes from fsync: Sync fsyncs
// the WAL, a background goroutine calls Sync every Options.SyncInterval
// (default 1s), and SyncData fsyncs one inode's data file and the WAL. Many
// commits thus share one fsync (group commit) without any commit waiting
// for a disk flush.
//
// The applied state lives in three layers, read newest first:
//
//   - the active overlay: an in-memory ordered map (github.com/google/btree)
//     of the commits since the last checkpoint began, each key's latest
//     value or its deletion (a tombstone);
//   - the frozen overlay, while a checkpoint writes it to the index;
//   - the index: an on-disk B+tree (go.etcd.io/bbolt, file "index") with
//     the key space, the inline data objects and the sequence number of the
//     last commit it holds. Keys are stored behind a zero byte (bbolt keys
//     cannot be empty), so a key is at most 32767 bytes (EINVAL beyond).
//
// Get looks in the active overlay, then the frozen one, then the index.
// Scan merges the three in key order (a cursor on each; a tombstone hides
// the index's key), so a directory of any size streams with constant
// memory. Reads of the index go through bbolt's read-only mmap: they cost
// page cache, which the kernel bounds and reclaims, not Go heap. Get reuses
// bbolt read transactions (each one goroutine's at a time, with a cursor
// per bucket) instead of beginning one per key: only a checkpoint writes
// the index, and it ends the idle ones and keeps none while it writes, so
// a reused transaction never sees an index older than the last
// checkpoint's write, and bbolt never waits for one to remap or close.
//
// A batch is refused with EFBIG if its record would exceed 1 GiB. If the
// WAL write fails (ENOSPC, EIO) the partial record is truncated away and the
// commit fails; if even that truncate fails, every later commit fails with
// EIO rather than append after garbage.
//
// # Checkpoints
//
// When the active WAL grows past 64 MiB, or the active overlay's estimated
// heap past half of Options.MetadataCacheBytes (default 256 MiB), a
// background checkpoint runs:
//
//  1. Under the commit lock: fsync the active WAL, switch to a new,
//     pre-created WAL, freeze the overlay and start an empty one. This
//     blocks commits for the duration of one fsync of the WAL's unsynced
//     tail.
//  2. Write the frozen overlay to the index in bbolt transactions of at
//     most 65536 operations, each fsynced by bbolt (only the checkpoint
//     writes to the index, so commits never wait for these fsyncs); the
//     last transaction records the sequence number. A crash between them
//     leaves some of the overlay in the index under the older sequence
//     number: replay puts and deletes every key those records touched
//     again, in order, so the result is the same.
//  3. Drop the frozen overlay; remove the WALs the index covers.
//
// While a checkpoint runs and the new overlay is full, commits wait for it:
// the metadata held in memory stays within the cache. A checkpoint that
// fails keeps its overlay frozen (reads still see it) and is tried again
// after a pause; the WALs it covers stay.
//
// On open the index is opened (bbolt reads its two meta pages, whatever its
// size) and only the WALs' records after its sequence number are replayed
// into the overlay; sequence numbers must be contiguous. Restart time thus
// depends on the WAL since the last checkpoint (at most 64 MiB), not on the
// volume. If the replayed overlay is over a checkpoint's threshold, a
// checkpoint starts at once, in the background. The first torn or CRC-bad
// record of the last WAL ends the log:
// it and anything after it were never acknowledged as durable (a kill -9
// can only cut the write in progress; a power loss can only lose what was
// not yet fsynced), so the file is truncated there and the result is still
// a prefix of the acknowledged commits. If intact records follow the
// damage (which a kill -9 cannot cause: a lost page after a power failure,
// or corruption), they are dropped too, to keep that prefix, and an error
// names how many and which sequence numbers. Damage in an older WAL is reported
// as corruption and the volume does not open. Empty WALs at the end (left
// by a checkpoint interrupted between creating the next WAL and switching
// to it) are removed first.
//
// A damaged index (bbolt cannot open it, or its buckets or sequence number
// are missing), or a missing one where the WALs do not start at the first
// commit, is an error wrapping vfsbackend.ErrDamaged that changes nothing;
// bbolt's panics on a damaged page become errors of the call (EIO).
//
// # Volumes made before the index
//
// They hold "snapshot" (the whole key space and inline data as of a
// sequence number, "PFSSNP02", or "PFSSNP01" without inline data) and
// WALs. The first read-write open converts them: the snapshot is loaded
// (once, in memory), written to index.tmp with its sequence number,
// fsynced, renamed to index (and the directory fsynced), and then the
// snapshot is removed; the WALs replay on top as usual. A crash before the
// rename leaves the old format (index.tmp is removed at the next open); a
// crash after it leaves a complete index, and a leftover snapshot is
// removed. A snapshot newer than the index (an older proxyfs served the
// volume after its conversion and compacted) is converted again. A read-only open (proxyfsd -check) of such a volume reads the
// snapshot into the overlay and writes nothing.
//
// # Data
//
// A data object that has never been longer than 4 KiB is inline: it lives
// in the metadata (each WriteData or TruncateData appends one WAL record with
// the whole object; the overlay and the index hold it like a key), so a small
// file costs no file creation, and SyncData of it is one fsync of the WAL.
// When a write or a truncate takes it past 4 KiB it moves to a data file
// for good: the file is written, fsynced with its directory, and only then
// is the inline copy's removal committed, so a crash leaves either the
// inline object or the complete file (a file left by an interrupted move is
// ignored, and replaced or removed later). See inline.go.
//
// Every other inode's data is a sparse file: WriteData is pwrite, ReadData is pread
// (holes and ranges past EOF behave as in the memory engine), TruncateData is
// ftruncate and DeleteData is unlink; DataFile (vfsbackend.FileData) hands
// out the open file, so the daemon sends large reads with sendfile(2).
// Directories and files are created lazily; a zero-length write changes
// nothing. Open files are kept in a bounded LRU cache (256 files); entries are reference counted so a file is
// never closed while another goroutine is using it (the cache may briefly
// exceed its size while more files than that are in use). A file enters
// the cache before it is open, so open(2) and unlink(2), which can take
// hundreds of microseconds on a fresh ext4 directory, run without the
// cache's mutex; callers wanting the same file wait for its opener only.
// Data files (and the directories whose entries changed) written
// since the last Sync are fsynced by the next Sync.
//
// Usage reports the numbers of the filesystem that holds Path (statfs);
// Options.CapacityBytes is ignored, as the vfsbackend.Options doc says; a
// volume's configured capacity is enforced by package inode.
//
// # Why bbolt under our own WAL
//
// The WAL gives what no embedded store gave cheaply: one write per commit,
// safe against kill -9 at once, with fsync grouped in the background. The
// index only has to hold the applied state durably at checkpoints, which
// are rare and off the commit path, so each of its transactions can be
// fsynced. bbolt fits that: its copy-on-write commit makes a checkpoint
// atomic with its sequence number, it opens in constant time, its reads
// cost page cache rather than heap, and it is small and maintained (etcd's
// store). An LSM store (pebble) would bring its own WAL and memtable, which
// we would disable, a large dependency tree and background compactions,
// for a write rate the checkpoint does not need.
package local
