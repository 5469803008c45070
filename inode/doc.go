// Package inode implements POSIX filesystem semantics for one volume on
// top of an ordered key-value engine (vfsbackend.Backend): the namespace
// (entries, paths, symlinks, rename), attributes, file data, extended
// attributes, readdir cookies, the case-insensitive lookup of gateways,
// open inodes and orphans (orphan.go), capacity, and Check, the fsck. The
// key layout is in record.go. Every call returns errors that wrap a
// syscall.Errno.
//
// # Locking
//
// FS.ns is the namespace lock: calls that add, remove or move entries
// (Create, Mkdir, Symlink, Link, Unlink, Rmdir, Rename, the freeing of
// orphans) hold it exclusively, every other call holds it shared, so a
// path resolution, a lookup or a readdir sees no entry change half done.
// On a shared volume (shared.go) Create, Mkdir and Symlink hold it shared
// and take their directory's stripe: there the engine's commit, not ns,
// keeps a change whole against other calls, which other gateways make
// anyway (see mknodOnce).
// Calls that change one inode's record while holding ns shared (Write,
// SetAttr, Fallocate, the xattr calls, CopyRange) also take that inode's
// stripe lock (FS.stripe, by inode number), so changes to one file apply
// one at a time and whole; ns is always taken before a stripe, and
// CopyRange takes its two stripes in index order. Reads take no stripe:
// a read may see a write in progress (PROTOCOL.md says exactly what is
// guaranteed). The pin table of open inodes has its own small mutex.
// Permission checks are made on the records loaded under these locks,
// within the same call, so nothing changes between a check and the change
// it allows.
//
// # Permissions
//
// Every call that Linux permission-checks takes a Caller (uid, primary
// gid, supplementary groups) and checks it in this package, in perm.go
// and nowhere else; the server only decides which Caller a call runs as.
// The rules are Linux's:
//
//   - Access to an inode (Caller.may, generic_permission): the owner's
//     bits apply to its owner, the group's bits to members of its group
//     (primary or supplementary), the others' bits to everyone else.
//     Denied is EACCES. Root (uid 0) may read and write anything and
//     search any directory; it may execute only a file with an execute
//     bit. A symlink's own mode is never checked.
//   - Lookups (Lookup, LookupCI, and every path resolution: Resolve,
//     ResolveParent, Realpath) need search permission on each directory
//     a name is looked up in, ".." included. GetAttr, ReadSymlink, Flush
//     and CloseInode need nothing: stat needs only the path's search
//     permission, which the lookup that found the inode checked.
//   - ReadDir needs read permission on the directory, and with the
//     attributes of the entries (plus) search permission too.
//   - Creating an entry (Create, Mkdir, Symlink, Link) needs search, then
//     write permission on the directory (EEXIST comes before the write
//     check, as in Linux). Removing one (Unlink, Rmdir) needs search and
//     write; in a sticky directory only the file's owner, the
//     directory's owner or root may remove it (EPERM). Rename combines
//     them for both directories, and a directory moving to another parent
//     needs write permission on itself (its "..").
//   - New inodes belong to the caller's uid and gid; in a setgid
//     directory they take the directory's group, and new directories
//     inherit the setgid bit. A file created there with setgid and group
//     execute loses setgid if its creator is neither in the group nor
//     root.
//   - Data: Read, ReadSpan and Seek need read permission; Write, a size
//     change, Fallocate and the destination of CopyRange need write
//     permission (its source read). Such a change by anyone but root
//     clears a regular file's setuid bit, and its setgid bit if group
//     execute is set. OpenInode checks the access it is asked for, as
//     open(2) does. Calls by inode number are checked every time, unless
//     the Caller carries the grant of an open handle on that inode
//     (Caller.Opened, set by the server for a call through a handle):
//     then the access granted at open is not checked again.
//   - SetAttr (Caller.checkSetAttr): chmod by the owner or root (EPERM),
//     dropping setgid when the caller is not root and not in the file's
//     group; changing the owner only by root, the group by the owner to
//     one of its groups or by root (EPERM), which clears setuid (and
//     setgid with group execute) of a regular file, whoever does it; any
//     time by the owner or root (EPERM), both atime and mtime to now
//     (SetAtimeNow|SetMtimeNow) by anyone with write permission too
//     (EACCES).
//   - Extended attributes (Caller.mayXattr): trusted.*, security.* and
//     system.* are root's: to anyone else they read as absent (ENODATA,
//     left out of lists) and cannot be set or removed (EPERM). Other
//     names (user.*) follow the file's permissions (read to get and list,
//     write to set and remove), exist only on regular files and
//     directories (EPERM to set one on a symlink, even for root), and on
//     a sticky directory only its owner or root may change them (EPERM).
//
// Read-only volumes and mounts (EROFS), root squashing and where an
// identity comes from are the server's business; this package trusts the
// Caller it is given.
package inode
