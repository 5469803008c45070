// Package etcdswift is a storage engine (vfsbackend.Backend) whose metadata
// lives in etcd and whose file data lives in an object store (OpenStack
// Swift through its native API, or any S3 API: objstore.go), so that the
// volume is kept by replicated services rather than one machine's disk, and
// several gateways can open it. It is registered as "etcdswift".
//
// # Keys in etcd
//
// Every key of a volume starts with its prefix P (Options.Remote.EtcdPrefix,
// for example "proxyfs/vol1/"):
//
//	P "v"                      the volume marker: "etcdswift 1 chunk=N"
//	P "m" key                  metadata: the engine's ordered map (Get, Scan, Commit)
//	P "s" ino(8, big-endian)   a data object's size (decimal); present = the object exists
//	P "c" ino(8) chunk(8)      the object holding chunk number chunk of ino
//	P "n" name                 counters (the inode number allocator: "n" "ino")
//	P "p" ino(8) lease(8)      a gateway has ino open (pins.go), under its lease
//	P "k" ino(8) lease(8)      a gateway's locks on ino (locks.go), under its lease
//
// A Commit is one etcd transaction, so it is atomic and, when it returns, on a quorum of etcd's members' disks
// (etcd fsyncs its Raft log before it answers). Within a batch, the last
// operation on a key wins; the batch is reduced to one operation per key
// first (etcd refuses a transaction that names a key twice). etcd limits
// the number of operations in one transaction (--max-txn-ops, 128 by
// default) and the size of one request (--max-request-bytes, 1.5 MiB): a
// batch over either limit fails as a whole with E2BIG or EFBIG and changes
// nothing. It is never split, which would give up its atomicity: run etcd
// with the limits raised (scripts/scaleout-servers.sh uses 16384 operations
// and 16 MiB). A Commit with a vfsbackend.ReadSet in its context (package
// inode's calls on a volume that several gateways share) also compares the
// mod revision of every key the call read, and of every range it scanned,
// in the transaction's If: it fails with vfsbackend.ErrConflict, changing
// nothing, if any changed. Get is a linearizable read, except with a read
// set: then it is a serializable one, or an answer from the gateway's cache
// of what it read and committed (metacache.go), both checked by the
// call's commit or validation. AssumeAbsent notes a key as absent without
// reading it. Scan reads pages of 512 keys, every page at the revision of
// the first, so a Scan sees one snapshot.
//
// # Data in the object store
//
// A data object is cut in chunks of ChunkBytes (1 MiB by default, fixed
// when the volume is formatted). Chunk i of inode ino is an object
// named "%016x/%016x/%s" (ino, i, a random version), written once and never
// changed: a write stores new versions of the chunks it touches (reading
// the old version of a chunk it covers only in part), then switches them
// in with one etcd transaction that also sets the object's size and that
// succeeds only if the size key has not changed since it was read
// (compare on its mod revision). Every data change rewrites the size key,
// so changes to one object apply one at a time and whole, also between
// gateways; a loser of the race deletes its new versions and tries again.
// Replaced versions are deleted after the switch. A chunk object may be
// shorter than ChunkBytes: bytes past its end, within the object's size,
// read as zeros, as do chunks that have no object (holes). No chunk ever
// holds bytes at or past the object's size: truncation rewrites the chunk
// it cuts through, so growing the object again exposes zeros.
//
// Because chunk objects are immutable and named by version, a reader never
// sees a half-written chunk nor depends on the store's consistency for
// overwrites (Swift's is eventual): it reads the versions etcd names. A
// crash between the object writes and the etcd transaction, or before the replaced versions
// are deleted, leaves garbage (objects that no chunk key names), never a
// wrong byte; Garbage lists such objects and CollectGarbage deletes them.
//
// # Durability
//
// Write-through: an acknowledged Commit is in etcd (on a quorum's disks),
// an acknowledged WriteData/TruncateData/DeleteData has its data in the
// object store (Swift's object server fsyncs before answering) and its
// chunk map in etcd.
// Sync and SyncData therefore have nothing left to do.
package etcdswift
