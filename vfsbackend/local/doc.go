// Package local is proxyfs's embedded, durable default storage engine. It is
// registered as "local" with package vfsbackend and keeps one volume in one
// directory (vfsbackend.Options.Path):
//
//	LOCK                     flock(LOCK_EX|LOCK_NB): one process per volume
//	snapshot                 the whole metadata index as of some sequence number
//	wal.<16 hex digits>      write-ahead logs, oldest first, the last one active
//	data/<xx>/<16 hex>       one sparse file per inode whose data outgrew the
//	                         inline limit; xx is the inode's low byte
//
// # Metadata
//
// Metadata lives in an in-memory ordered index (github.com/google/btree).
// Every Commit encodes its batch as one record
//
//	length uint32 | CRC32-C uint32 | seq uint64 | ops
//
// (little endian; the CRC covers ops and seq; an op is a kind byte, put,
// delete, inline put or inline delete, then its uvarint-prefixed key and, for
// puts, value) and appends it to the active
// WAL with a single pwrite(2), then applies it to the index. Commits are
// serialized by a mutex whose critical section is just "assign seq, write,
// apply". Once the write returned the record is in the kernel's page cache,
// so a crash of the process (kill -9) cannot lose an acknowledged commit.
// Power-loss durability comes from fsync: Sync fsyncs the WAL, a background
// goroutine calls Sync every Options.SyncInterval (default 1s), and SyncData
// fsyncs one inode's data file and the WAL. Many commits thus share one fsync
// (group commit) without any commit waiting for a disk flush.
//
// A batch is refused with EFBIG if its record would exceed 1 GiB. If the
// WAL write fails (ENOSPC, EIO) the partial record is truncated away and the
// commit fails; if even that truncate fails, every later commit fails with
// EIO rather than append after garbage.
//
// On open the snapshot is loaded, then every WAL is replayed in order,
// skipping records already in the snapshot; sequence numbers must be
// contiguous. The first torn or CRC-bad record of the last WAL ends the log:
// it and anything after it were never acknowledged as durable (a kill -9
// can only cut the write in progress; a power loss can only lose what was
// not yet fsynced), so the file is truncated there and the result is still
// a prefix of the acknowledged commits. If intact records follow the
// damage (which a kill -9 cannot cause: a lost page after a power failure,
// or corruption), they are dropped too, to keep that prefix, and an error
// names how many and which sequence numbers. Damage in an older WAL is reported
// as corruption and the volume does not open. Empty WALs at the end (left
// by a compaction interrupted between creating the next WAL and switching
// to it) are removed first.
//
// # Compaction
//
// When the active WAL grows past a threshold (64 MiB) and past twice the live
// size of the index, a background compaction runs:
//
//  1. Under the commit lock: clone the index (a lazy copy-on-write clone,
//     O(1)), fsync the active WAL, and switch to a new, pre-created WAL. This
//     blocks commits for the duration of one fsync of the WAL's unsynced
//     tail; everything else runs without the lock.
//  2. Write the clone to snapshot.tmp, fsync it, rename it over snapshot and
//     fsync the directory. A snapshot ("PFSSNP02") holds the keys, then the
//     inline data objects; the older format without the second section
//     ("PFSSNP01") is still read.
//  3. Remove the WALs the snapshot covers.
//
// A crash at any point leaves either the old snapshot plus all WALs, or the
// new snapshot plus WALs whose already-covered records are skipped by
// sequence number.
//
// # Data
//
// A data object that has never been longer than 4 KiB is inline: it lives
// in the metadata (each WriteData or TruncateData appends one WAL record with
// the whole object; snapshots and memory hold it like a key), so a small
// file costs no file creation, and SyncData of it is one fsync of the WAL.
// When a write or a truncate takes it past 4 KiB it moves to a data file
// for good: the file is written, fsynced with its directory, and only then
// is the inline copy's removal committed, so a crash leaves either the
// inline object or the complete file (a file left by an interrupted move is
// ignored, and replaced or removed later). See inline.go. The price is
// memory: up to 4 KiB per small file stays in memory with the metadata.
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
// # Why not an existing embedded store
//
// No mature embedded Go key/value store gives us, without heavy
// dependencies, both a single write per commit with group fsync that stays
// safe against kill -9, and sparse per-inode data files. bbolt fsyncs every
// transaction, which is far too slow for our file-create rate targets, and
// LSM stores (badger, pebble) bring large dependency trees and their own
// value-log/compaction machinery that we would still have to pair with a
// separate data store. The metadata needed here (an ordered map with atomic
// batches) is small enough to keep in memory and to log ourselves.
package local
