// Package client is the Go client of proxyfsd.
//
// A Client is a small pool of connections to one daemon: a few JSON-RPC
// 2.0 connections (Content-Length framing) for metadata calls, and a few
// binary-channel connections for Read and Write and for the hot metadata
// calls, Lookup, LookupCI, GetStat, ReadDirPlus, Flush, Open, CreateOpen,
// Handle.Close and Unlink (see PROTOCOL.md; JSON would cost them more
// than the call itself).
// Many calls are in flight on each connection at once, so a Client is
// meant to be shared by all the goroutines of a program. Close stops every
// goroutine the Client started.
//
//	c, err := client.Dial(ctx, "127.0.0.1:9450") // or a Unix socket path
//	if err != nil { ... }
//	defer c.Close()
//	m, err := c.Mount(ctx, "default", client.MountOptions{User: "alice", UID: 1000, GID: 1000})
//	if err != nil { ... }
//	// Every call is checked against alice's identity (PROTOCOL.md,
//	// "Permissions"): here the volume's root is hers.
//	st, err := m.CreatePath(ctx, "/hello.txt", 0o644)
//	if errors.Is(err, syscall.EEXIST) { ... }
//	_, err = m.Write(ctx, st.Ino, []byte("hello world"), 0)
//	buf := make([]byte, 64)
//	n, err := m.Read(ctx, st.Ino, buf, 0)
//
// # Identity
//
// proxyfsd believes a mount's identity only from a client allowed to act
// as it (PROTOCOL.md, "Who may connect, and act as whom"): by default a
// process acts as itself, root as anyone. A gateway that serves many users
// over one mount (root, or a token that acts as "*") makes views with
// Mount.As: each call of the view carries its identity, on both channels,
// and is checked as it.
//
//	bob := m.As(client.Identity{UID: 1001, GID: 1001, Groups: []uint32{100}})
//	_, err = bob.Read(ctx, st.Ino, buf, 0) // EACCES if bob may not read it
//
// Calls by inode are checked every time. For POSIX descriptor semantics
// (permissions checked at open), do the I/O through a Handle: Handle.Read,
// Handle.Write, Handle.Truncate and Handle.Flush are decided by the access
// mode the handle was opened with, not by the file's mode now, and
// Mount.CreateOpen creates and opens in one request (PROTOCOL.md, "I/O
// through a handle"):
//
//	h, _, err := bob.CreateOpen(ctx, dir, "ro", 0o444, client.OpenWriteOnly)
//	_, err = h.Write(ctx, []byte("x"), 0) // allowed: open(O_CREAT|O_WRONLY, 0444)
//
// Over TLS (and wherever a token should replace the kernel's idea of the
// peer) dial with WithTLS and WithToken; every connection then sends auth
// first.
//
// # Errors
//
// Every method returns nil or an *Error carrying the operation, the errno
// (errors.Is(err, syscall.ENOENT) works), the server's reason if any, and a
// message. As PROTOCOL.md ("Errors") specifies, a missing inode (ENOENT) is reported as
// EBADF by Read, Write and Flush only. A call that runs out of time fails
// with ETIMEDOUT (and matches context.DeadlineExceeded), one whose context
// is canceled with EINTR (matching context.Canceled), and calls on a
// closed Client with EBADF (matching ErrClosed).
//
// Every call is bounded by its context and by the call timeout
// (WithCallTimeout), which covers reconnects and retries too; only the
// lock waits are bounded by their context alone (see Locks).
//
// # Locks
//
// POSIX record locks and flock locks are taken through an open Handle
// (PROTOCOL.md section 4):
//
//	h, _, err := m.Open(ctx, ino, client.OpenReadWrite)
//	_, err = m.Lock(ctx, h, client.SetLk, client.LockWrite, 0, 100, "owner-1") // EAGAIN on conflict
//	conflict, err := m.Lock(ctx, h, client.GetLk, client.LockRead, 0, 0, "owner-2") // nil: none
//	_, err = m.Lock(ctx, h, client.SetLkW, client.LockRead, 0, 0, "owner-2") // waits
//	n, err := m.LockCancel(ctx, h, "owner-2") // ends owner-2's waits with EINTR
//	err = m.Flock(ctx, h, client.FlockExclusive, true) // nonblock
//
// A lock's owner is the handle together with the owner string (Linux's
// open file description locks); closing the handle, or unmounting,
// releases its locks. Waiting calls (SetLkW, Flock without nonblock) are
// bounded by their context only, not by the call timeout; when the
// context ends first, the client cancels the wait on the server and
// reports whether the lock was granted meanwhile (see Mount.Lock). Lock,
// Flock and LockCancel are idempotent and are simply sent again after a
// broken connection. EAGAIN from Lock and Flock is a conflict, and is
// returned; an EAGAIN with Reason wire.ReasonGrace (the server grants
// only reclaims for its reclaim_grace after a restart) is sent again
// every second within the call timeout. Each Handle keeps a record of the
// locks it holds, as the server holds them, and takes them again with
// "reclaim" when it is opened again after a daemon restart; locks that
// cannot be taken again are forgotten and counted by Client.LostLocks.
//
// # Reconnects and retries
//
// When a connection breaks (the daemon was restarted), the call reconnects
// with exponential back-off (WithBackoff) until its deadline, and retries.
// When the server answers bad_mount for a Mount that was not unmounted (the
// restarted daemon no longer knows its mount id, or it reclaimed the mount
// because none of the client's connections was open for the daemon's
// mount_grace; see PROTOCOL.md, "Mounts and connections"), the Mount mounts the
// volume again with the same volume name and identity, switches atomically
// to the new mount id (one remount serves all concurrent callers), and
// retries the call. Before that call goes on, the remount opens every
// open Handle (Mount.Open) again with "reclaim", so that files unlinked
// while open survive a daemon restart (see Handle). EAGAIN (the server's
// in-flight limit) is retried with
// back-off too. A binary connection the server refuses (over its
// max_connections or max_connections_per_peer: an EAGAIN reply, then the
// close) makes the calls on it retry as never run, and its slot waits
// before dialing again while calls go to the connections that work. A
// connection the server closed for its idle_timeout is dialed again on
// the next call that needs it.
//
// A server that cannot be reached (every dial fails: the daemon is down)
// is retried like a broken connection, until the call's deadline. To hear
// of it at once rather than when the call gives up, set WithOutageHook: it
// is called on the first failed dial of an outage (with the address, the
// dial error and how long the call will go on retrying) and when a dial
// succeeds again. A call that gives up during an outage keeps its errno
// and reason (ETIMEDOUT and ReasonTimeout, or EINTR and ReasonCanceled),
// and its message names the server, how long the call retried and the
// last dial error:
//
//	proxyfs: get_stat: ETIMEDOUT (timeout): call timed out: proxyfsd at 127.0.0.1:9450 unreachable, retried for 30s; last dial error: dial tcp 127.0.0.1:9450: connect: connection refused
//
// errors.As(err, &ue), with ue an *UnreachableError, gets these as fields.
// (Dial itself does not retry: it fails at once with ReasonConnection.)
//
// Reads, writes (same offset, same data), lookups, stats, chmod, chown,
// resize, settime, setattr, set_xattr without flags or with
// wire.XattrReplace and readdir are idempotent and are simply retried. A
// call that changes the namespace may have been executed by the server
// before the connection broke without its reply arriving; such an
// attempt's outcome is unknown ("uncertain"). If a retry of an uncertain
// call then fails with the errno that its own earlier success would cause,
// the client checks the server's state, following the rule of PROTOCOL.md,
// section 3 "Retries", which libproxyfs follows too:
//
//   - Create, Mkdir (and path forms) failing with EEXIST succeed if the
//     existing entry has the type the call creates, the uid the Mount acts
//     as (what mount returned: root_squash may replace 0) and the call's
//     permission bits apart from setgid; Symlink (and SymlinkPath) if it is
//     a symlink of that uid with the same target. The group is not
//     compared (a setgid directory gives its own). They return the
//     existing entry's Stat.
//   - Link failing with EEXIST succeeds if the existing entry is the
//     link's target inode; LinkPath if both paths name the same inode.
//   - Rename and RenamePath failing with ENOENT succeed if the destination
//     exists.
//   - SetXattr with wire.XattrCreate failing with EEXIST succeeds if the
//     attribute holds the value being set.
//   - Unlink, Rmdir (and path forms) failing with ENOENT, and RemoveXattr
//     failing with ENODATA, succeed: the reply says that it is gone.
//
// When the check finds something else, or nothing (ENOENT, ENOTDIR,
// ENODATA), the retry's errno is returned; when the check itself fails
// otherwise, EIO (the outcome is unknown). The check cannot tell the
// call's own earlier attempt from another client doing the same thing at
// the same moment; it is the usual NFS-style trade-off. The rule applies
// only after an uncertain attempt: without a broken connection, every
// errno is reported as the server sent it.
package client
