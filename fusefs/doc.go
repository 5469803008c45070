// Package fusefs serves a proxyfs volume as a local filesystem through
// FUSE: the Linux kernel sends the requests of every program that uses the
// mount point, and FS answers each one with calls of the Go client
// (rpcapi/client) to proxyfsd.
//
// FS implements go-fuse's raw interface (fuse.RawFileSystem), one method per
// FUSE request, rather than go-fuse's node tree (package fs): the server
// already has what that tree would keep, so the kernel's node ids are the
// server's inode numbers (the volume root is inode 1, FUSE's root id, and
// the server never reuses a number), directory offsets are the server's
// readdir cookies, and a FUSE file handle names a server-side open handle.
// Nothing is cached in the process beyond what the kernel needs counted.
//
// # Requests
//
//   - lookup, forget: FS counts the kernel's references to each inode
//     (Lookups) as the FUSE contract requires: every reply that hands an
//     entry to the kernel (lookup, create, mknod, mkdir, symlink, link,
//     each entry of readdirplus but . and ..) adds one, forget takes them
//     away. Inodes live on the server, which frees a file at its last unlink
//     unless a handle is open on it, so forget needs no server call.
//   - open, create: each FUSE open is a server handle (Mount.Open; create
//     is one request, Mount.CreateOpen). A file unlinked, or renamed over,
//     while open stays readable and writable until its last release, also
//     across a daemon restart (the client opens its handles again with
//     reclaim). read, write, fsync and ftruncate go through the handle.
//   - opendir, readdir, readdirplus, releasedir: the offset of an entry is
//     the server's cookie (. is 1, .. is 2), so seekdir and telldir work and
//     entries added or removed meanwhile never make others repeat or vanish.
//   - getattr, setattr: every field of the setattr mask, sizes through open
//     handles (ftruncate of an unlinked file), and times set to now on the
//     server's clock.
//   - getlk, setlk, setlkw, flock: POSIX record locks and flock go to the
//     server's lock manager, so they hold between every client of the
//     volume. A process's POSIX locks go at any close(2) of the file by
//     it, open file description locks (F_OFD_SETLK) with their file,
//     flock locks with theirs. A setlkw or blocking flock waits on the server and ends with
//     EINTR when the kernel interrupts it (a signal to the caller).
//   - fallocate, lseek (SEEK_DATA, SEEK_HOLE) and copy_file_range are the
//     server's fallocate, lseek and copy_range: a copy does not cross the
//     wire.
//   - rename: plain rename(2); RENAME_NOREPLACE and RENAME_EXCHANGE are
//     EINVAL, since the server has no atomic form of either.
//   - mknod: regular files only; fifos, sockets and devices are EPERM
//     (the server stores none of them).
//   - getxattr, setxattr, listxattr, removexattr, statfs, access, fsync,
//     fsyncdir, flush.
//
// # Identity
//
// Every server call goes through FS.as, which makes it a call of the FUSE
// request's caller: its uid, gid and supplementary groups (from /proc) as
// a per-call identity (client.Mount.As), so that the server checks the
// caller's permissions and owns new inodes to it. Open files follow POSIX
// (permissions checked at open): reads, writes, fsync and ftruncate go
// through the file's server handle (client.Handle), whose access mode
// decides. default_permissions (Options.DefaultPermissions) adds the
// kernel's own check in front; it is off by default. The removal of
// privileges when a file changes (setuid, setgid, security.capability on
// a write, a truncation or a chown) is the server's, in the change's own
// commit (HANDLE_KILLPRIV_V2), so the kernel does not ask for
// security.capability before every write. The lock handle of
// an inode (locks.go) is the mount's own.
//
// A program that serves the mount in its own process (FS.Mount) should not
// start child processes in a directory of the mount (exec.Cmd.Dir):
// without default_permissions the child's chdir asks the filesystem for
// access (FUSE access) between fork and exec, and the tests saw that wait
// for the serving process forever. Let the child change directory itself
// after exec; proxyfs-fuse, a process of its own, is not affected.
//
// # Caching
//
// The kernel keeps attributes and entries for AttrTimeout and
// EntryTimeout. Its page cache is under explicit control
// (ExplicitDataCacheControl): FS keeps a file's pages at open when the file
// is unchanged or changed only by this mount's writes (FOPEN_KEEP_CACHE),
// and drops them (notify) when it sees another client's change in fresh
// attributes (FS.seen). Readahead is raised to ReadAhead (8 MiB) when root mounts.
//
// # Errors
//
// Every handler returns the errno of the server's answer, converted in one
// place (status): a client error carries the server's errno, a canceled
// call is EINTR, anything else EIO.
package fusefs
