/*
 * proxyfs.h - the C client API of proxyfs (libproxyfs.so.1).
 *
 * libproxyfs talks to proxyfsd over JSON-RPC 2.0 (metadata) and a binary
 * channel (file data); see PROTOCOL.md. This header is the whole public API.
 *
 * Conventions (they hold for every function below unless its comment says
 * otherwise):
 *
 *  - Return value: 0 on success, otherwise a positive errno value (EINVAL,
 *    ENOENT, ...). The library never sets the global errno: its value is the
 *    same after a call as before it.
 *  - A NULL or already unmounted handle, a NULL required pointer, or a bad
 *    argument returns EINVAL. A mount id the daemon does not know also
 *    returns EINVAL (after the library has tried to mount again, see below).
 *  - A human-readable detail of the last failure of the calling thread is
 *    available from proxyfs_last_error().
 *  - The server reports a missing inode as ENOENT; read, write and flush (sync
 *    and async) return EBADF for it, every other call ENOENT.
 *  - Input strings and buffers are only read during the call (except for the
 *    async calls, whose buffers the library uses until the callback). Results
 *    that the library allocates are allocated with malloc() and belong to the
 *    caller, who frees them with free(); each prototype says which.
 *  - Paths are relative to the volume root; a leading '/' is optional; the
 *    final component is never followed if it is a symlink. The root inode is
 *    found with proxyfs_lookup_path(mh, "/", &ino).
 *
 * Thread safety: every function may be called from any number of threads at
 * once, on one mount handle or on many. A process keeps a small pool of
 * connections to proxyfsd per server address (shared by all the mount
 * handles of that address: see proxyfs_mount_server) with many requests
 * in flight on each, plus up to 8 sockets that synchronous calls check out
 * one at a time; a pool's threads (one reader per pipelined connection and
 * one retry worker) are started by the first mount of its address and
 * joined when the last mount handle of that address is unmounted.
 *
 * Failures: the library never exits, aborts or prints. When a connection
 * breaks it reconnects with back-off, mounts again with the same volume and
 * identity when the daemon has forgotten the mount (it restarted), and
 * retries the call. A call that cannot complete within the call timeout (see
 * proxyfs_set_timeout, default 30 s) returns ETIMEDOUT. A call whose request
 * was lost in flight too many times returns EIO. A call that creates or
 * removes something and is retried after an attempt was lost in flight
 * checks a retry's EEXIST/ENOENT/ENODATA against the server's state: success
 * if it is what the call makes, the errno if another client made something
 * else, EIO if the check cannot be made (PROTOCOL.md, section 3 "Retries").
 *
 * Failover: a server address may be a list of gateways that serve the same
 * volumes (proxyfsd processes sharing etcdswift volumes), separated by
 * commas: "10.0.0.1:9450,10.0.0.2:9450" (spaces around an address are
 * ignored; no entry may be empty). The handles of one list (one pool) use
 * one gateway at a time, starting with the first; when a connection
 * cannot be opened to it (refused, unreachable, connect timeout of 5 s)
 * the pool moves to the next in turn, and the calls go on there as after a
 * daemon restart: the library mounts again, reopens the open handles with
 * reclaim (a handle of an unlinked file survives), re-takes the locks
 * with reclaim, and retries the call (async requests too). Locks move with
 * the client: every mount handle sends a random client instance id with
 * its mounts, by which the new gateway knows the locks left on the dead
 * one as this handle's own and grants their reclaims; a lock is lost
 * (proxyfs_lost_locks) only if another owner took a conflicting lock
 * meanwhile, which is possible only after the dead gateway's etcd lease
 * expired (10 s). PROTOCOL.md, "Semantics worth knowing", "Failover".
 *
 * fork(): a child process may go on using mount handles it inherited; on its
 * first call it opens its own connections (it never uses the parent's
 * sockets or threads). Async requests in flight at fork() complete only in
 * the parent.
 */
#ifndef PROXYFS_H
#define PROXYFS_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PROXYFS_VERSION_MAJOR 2
#define PROXYFS_VERSION_MINOR 0
#define PROXYFS_VERSION_PATCH 0

#if defined(__GNUC__)
#define PROXYFS_API __attribute__((visibility("default")))
#else
#define PROXYFS_API
#endif

/* ------------------------------------------------------------------ types */

/* An opaque mount handle, created by proxyfs_mount and released by
 * proxyfs_unmount. */
typedef struct proxyfs_mount_handle mount_handle_t;

typedef struct {
    uint64_t sec;  /* seconds since 1970 in two's complement: read it as
                    * (int64_t)ts.sec, which is negative before 1970; set
                    * it with ts.sec = (uint64_t)(int64_t)s */
    uint64_t nsec; /* nanoseconds, 0..999999999 */
} proxyfs_timespec_t;

typedef struct {
    uint64_t mode;            /* type bits (S_IFDIR/S_IFREG/S_IFLNK) | 07777 */
    uint64_t ino;             /* inode number */
    uint64_t dev;             /* identifies the volume */
    uint64_t nlink;           /* number of hard links */
    uint64_t uid;             /* owner */
    uint64_t gid;             /* group */
    uint64_t size;            /* size in bytes */
    proxyfs_timespec_t atim;  /* last access */
    proxyfs_timespec_t mtim;  /* last modification of the data */
    proxyfs_timespec_t ctim;  /* last change of the inode */
    proxyfs_timespec_t crtim; /* creation */
    /* Appended in 2.0 (the fields above keep their offsets; the struct
     * grew, hence the new soname libproxyfs.so.2): */
    uint64_t blocks;          /* st_blocks: 512-byte blocks allocated to the
                               * data (fewer than size/512 for a sparse
                               * file; 0 for directories and symlinks) */
    uint64_t blksize;         /* st_blksize: preferred I/O size (4096) */
} proxyfs_stat_t;

/* proxyfs_mount options. */
#define PROXYFS_MOUNT_READ_ONLY 0x1

/* proxyfs_setattr mask bits: each selects one field of proxyfs_setattr_t
 * (the _NOW bits none). */
#define PROXYFS_SETATTR_SIZE   0x01
#define PROXYFS_SETATTR_MODE   0x02
#define PROXYFS_SETATTR_UID    0x04
#define PROXYFS_SETATTR_GID    0x08
#define PROXYFS_SETATTR_ATIME  0x10
#define PROXYFS_SETATTR_MTIME  0x20
#define PROXYFS_SETATTR_CRTIME 0x40
/* Set atime or mtime to the server's clock (utimensat's UTIME_NOW); no
 * field. Both together need only write permission, not ownership. */
#define PROXYFS_SETATTR_ATIME_NOW 0x80
#define PROXYFS_SETATTR_MTIME_NOW 0x100

typedef struct {
    uint64_t size;            /* new size (like resize) */
    uint64_t mode;            /* permission bits 07777; type bits ignored */
    uint64_t uid;             /* new owner */
    uint64_t gid;             /* new group */
    proxyfs_timespec_t atim;  /* new access time */
    proxyfs_timespec_t mtim;  /* new modification time */
    proxyfs_timespec_t crtim; /* new creation time (SMB create time) */
} proxyfs_setattr_t;

/* proxyfs_set_xattr flags; the values are those of Linux <sys/xattr.h>. */
#define PROXYFS_XATTR_CREATE  0x1 /* fail with EEXIST if it exists */
#define PROXYFS_XATTR_REPLACE 0x2 /* fail with ENODATA if it does not */

/* Completion callback of the async calls; see proxyfs_read_send. */
typedef void (*proxyfs_done_callback_t)(void *in_request_id);

/* ----------------------------------------------------- configuration, errors */

/* Set where proxyfsd listens: "HOST:PORT" (TCP), "unix:/path" or "/path"
 * (Unix socket), or a comma-separated list of them: gateways of the same
 * volumes (see "Failover" above). It applies to connections opened after
 * the call. Without
 * it the address comes from the environment variable PROXYFS_SERVER, and
 * without that it is "127.0.0.1:9450". The string is copied.
 * Errors: EINVAL (NULL, empty or too long), ENOMEM. */
PROXYFS_API int proxyfs_set_server(const char *in_address);

/* Set the timeout of each call, in milliseconds (0 restores the default of
 * 30000). It covers reconnecting and retrying: a call not done by then
 * returns ETIMEDOUT. It applies to calls started after it. */
PROXYFS_API int proxyfs_set_timeout(uint32_t in_timeout_ms);

/* Set the call timeout of one mount handle's calls, in milliseconds, as
 * proxyfs_set_timeout does for the process (which stays the timeout of
 * the other handles); 0 goes back to the process-wide timeout. It applies
 * to calls started after it. (A handle's server address is chosen at
 * mount: proxyfs_mount_server.)
 * Errors: EINVAL (bad handle). */
PROXYFS_API int proxyfs_set_mount_timeout(mount_handle_t *in_mount_handle,
                                          uint32_t in_timeout_ms);

/* A human-readable description of the last failure of a proxyfs call made
 * by the calling thread ("" if none). The string belongs to the library and
 * stays valid until the calling thread's next proxyfs call; do not free it. */
PROXYFS_API const char *proxyfs_last_error(void);

/* ----------------------------------------------------------------- mount */

/* Mount the volume in_volume_name for the user in_auth_user with in_uid and
 * in_gid: the server checks every call's permissions against them (as on
 * Linux; uid 0 is root unless the volume squashes it) and they own the
 * inodes this mount creates (a setgid directory gives its own group).
 * It sends no supplementary groups: proxyfs_mount_groups does.
 * The server allows the identity only to a client allowed to act as it:
 * by default a process acts only as its own uid (with its own gid or one
 * of its groups as gid), and root (a gateway) as anyone; EPERM otherwise,
 * EACCES if the client may not connect or use the volume (see the README,
 * "Security").
 * Tokens: if the environment has PROXYFS_TOKEN (or else PROXYFS_TOKEN_FILE,
 * a file whose first line is the token), every connection of this
 * handle's pool authenticates with that token (auth) before anything
 * else; the variables are read at each connect. proxyfs_mount_opts gives
 * a token (and TLS) per mount instead.
 * in_mount_options: 0 or PROXYFS_MOUNT_READ_ONLY. The strings are copied.
 * On success *out_mount_handle is a new handle that the caller releases with
 * proxyfs_unmount.
 * Errors: EINVAL, ENODEV (proxyfsd cannot be reached), ENOENT (no such
 * volume), ENOMEM, ETIMEDOUT; EACCES also for a token the daemon refuses
 * or a token file that cannot be read. */
PROXYFS_API int proxyfs_mount(char *in_volume_name,
                              uint64_t in_mount_options,
                              char *in_auth_user,
                              uid_t in_uid,
                              gid_t in_gid,
                              mount_handle_t **out_mount_handle);

/* As proxyfs_mount, on the proxyfsd at in_server ("HOST:PORT", "unix:/path"
 * or "/path", or a comma-separated list of gateways of the same volumes,
 * as proxyfs_set_server; copied) instead of the process-wide
 * address; in_server NULL is proxyfs_mount. It lets one process (an smbd
 * serving shares of several volumes) use several daemons at once.
 *
 * Pools: the handles mounted on one address share one pool of connections
 * and threads (the addresses are compared as strings: "unix:/s" and "/s"
 * are two pools, to the same daemon); handles on different addresses use
 * different pools, and so do handles of proxyfs_mount, whose pool follows
 * proxyfs_set_server (a handle of proxyfs_mount and one of
 * proxyfs_mount_server may thus reach one daemon on two pools, which is
 * harmless). Everything the library does for a pool it does for each:
 * reconnecting, mounting again after a daemon restart (reopening the open
 * file handles), retrying async requests, fork() handling. A daemon that is
 * down or stalled delays only the calls on its own pool's handles. The
 * first mount of an address creates its pool (its threads start on first
 * use); the last unmount of a handle of that address closes the pool's
 * connections and joins its threads, leaving the other pools untouched.
 * The server address of a handle never changes (proxyfs_set_server does not
 * affect it); with a list, the gateway in use does (see "Failover").
 * Errors: as proxyfs_mount; EINVAL also for an empty or too long
 * in_server, or a list with an empty entry; ENODEV if nothing answers at
 * in_server (at any address of a list) or it cannot be parsed
 * or resolved (see proxyfs_last_error), after three quick attempts: well
 * under a second when the address refuses connections, longer only when
 * connecting itself hangs (a host that drops the packets: up to 5 s per
 * attempt) or name resolution is slow. */
PROXYFS_API int proxyfs_mount_server(const char *in_server,
                                     char *in_volume_name,
                                     uint64_t in_mount_options,
                                     char *in_auth_user,
                                     uid_t in_uid,
                                     gid_t in_gid,
                                     mount_handle_t **out_mount_handle);

/* As proxyfs_mount_server, with in_ngroups supplementary groups
 * in_groups[0..in_ngroups) (at most 32; the array is copied and stays the
 * caller's), which the server checks permissions against as Linux does.
 * in_server NULL is the process-wide address, as for proxyfs_mount.
 * Errors: as proxyfs_mount_server; EINVAL also for more than 32 groups or
 * NULL groups with in_ngroups > 0; EPERM for an identity this client may
 * not act as. */
PROXYFS_API int proxyfs_mount_groups(const char *in_server,
                                     char *in_volume_name,
                                     uint64_t in_mount_options,
                                     char *in_auth_user,
                                     uid_t in_uid,
                                     gid_t in_gid,
                                     size_t in_ngroups,
                                     const gid_t *in_groups,
                                     mount_handle_t **out_mount_handle);

/* ------------------------------------------------------- mount options */

/* The options of proxyfs_mount_opts. Zero the whole struct (= { 0 } or
 * memset), set size to sizeof(proxyfs_mount_opts_t), then the fields you
 * need; later versions of the library only add fields at the end, and
 * treat the fields past a caller's size as zero, so a program built with
 * an older proxyfs.h keeps working. Every pointer is borrowed for the call
 * only: the library copies what it keeps (the caller frees its own strings
 * and arrays whenever it likes after the call returns). */
typedef struct proxyfs_mount_opts {
    size_t size;               /* sizeof(proxyfs_mount_opts_t) */
    const char *server;        /* as proxyfs_mount_server; NULL: the
                                * process-wide address */
    const char *volume;        /* required */
    uint64_t options;          /* 0 or PROXYFS_MOUNT_READ_ONLY */
    const char *user;          /* a name for logs; NULL: "" */
    uid_t uid;                 /* the identity, as proxyfs_mount_groups */
    gid_t gid;
    size_t ngroups;            /* at most 32 */
    const gid_t *groups;
    /* A token of the daemon's tokens file (README, "Security"): every
     * connection of this mount's pool (JSON-RPC, binary pipelined and
     * direct sockets, and each reconnect after a daemon restart) sends
     * auth with it before anything else, and the daemon treats it as the
     * token's principal. At most 4096 bytes. token_file names a file
     * whose first line is the token (read once, at this call; trailing
     * spaces and the newline are not part of it). At most one of the two;
     * both NULL: the process's default token, PROXYFS_TOKEN or else the
     * first line of the file PROXYFS_TOKEN_FILE (read at each connect),
     * and if neither is set no auth is sent (the daemon goes by the
     * peer's credentials). */
    const char *token;
    const char *token_file;
    /* TLS (a daemon whose TCP listener has tls_cert): every connection of
     * the pool speaks TLS 1.2 or later, the server's certificate verified
     * against the CA certificates (PEM) in tls_ca_file (NULL: the
     * system's CAs) and checked to name the host (or IP address) of
     * server, which must be HOST:PORT. tls_cert_file and tls_key_file
     * (PEM, both or neither) are a client certificate, for a daemon with
     * tls_client_ca (with its access.cert_users the certificate alone is
     * the credential, no token needed). TLS is on if tls is nonzero or
     * any of the three files is set. The files are read at this call. A
     * certificate the library does not trust, or a handshake the daemon
     * refuses (no or a wrong client certificate), is EACCES. Each TLS
     * connection has a relay thread of its own (see libproxyfs/README). */
    int tls;
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
} proxyfs_mount_opts_t;

/* The size of the first version of proxyfs_mount_opts_t (the smallest
 * size proxyfs_mount_opts accepts). */
#define PROXYFS_MOUNT_OPTS_V1_SIZE sizeof(proxyfs_mount_opts_t)

/* Mounts as proxyfs_mount_groups does, with the options in *in_opts (see
 * proxyfs_mount_opts_t). Mounts with the same server, token and TLS
 * settings share one pool of connections; a different token (or none) is
 * another pool, so
 * connections authenticated as one principal never carry another's calls.
 * On success *out_mount_handle is a new handle (proxyfs_unmount releases
 * it). Returns 0 or a positive errno; errno is left untouched.
 * Errors: as proxyfs_mount_groups; EINVAL also for NULL in_opts, a size
 * below PROXYFS_MOUNT_OPTS_V1_SIZE, both token and token_file, an empty or
 * too long token, or a token file without a token on its first line, TLS
 * files that cannot be loaded, only one of tls_cert_file and tls_key_file,
 * or TLS to a Unix socket; EACCES also for a TLS handshake that fails on
 * a certificate (see above);
 * ENOENT or EACCES for a token file that cannot be read; EACCES when the
 * daemon does not know the token (or, as always, when the principal may
 * not connect or use the volume). A token the daemon refuses after a
 * restart or a SIGHUP (its tokens file changed) makes the calls of the handle fail
 * with EACCES rather than retry. */
PROXYFS_API int proxyfs_mount_opts(const proxyfs_mount_opts_t *in_opts,
                                   mount_handle_t **out_mount_handle);

/* ------------------------------------------------- per-thread identity */

/* Sets the identity that every call the calling thread makes from now on
 * runs as, on any mount handle, instead of the handle's own: uid, gid and
 * in_ngroups supplementary groups in_groups[0..in_ngroups) (at most 32;
 * copied, the array stays the caller's). It is for a gateway that serves
 * many users over one mount (an smbd: set the user's identity before each
 * call, root's around become_root()); only a client the server lets act as
 * other users may set another identity than its own (by default root on
 * the Unix socket or loopback TCP): the calls of any other get EPERM.
 * Every call and every async request made by the thread carries the
 * identity it had when the call was made (an async request keeps the
 * identity of its send, also for the retries a library thread makes).
 * Lock calls, which the server checks by handle only, and the reopening of
 * open files after a daemon restart run as the handle's identity. The
 * identity lasts until the thread sets another, clears it, or exits; it
 * belongs to the thread (a new thread starts without one).
 * Errors: EINVAL (more than 32 groups, or NULL groups with in_ngroups >
 * 0; the identity is then unchanged). */
PROXYFS_API int proxyfs_set_thread_identity(uid_t in_uid, gid_t in_gid,
                                            size_t in_ngroups,
                                            const gid_t *in_groups);

/* Clears the calling thread's identity: its calls run as each handle's own
 * identity again. Always 0. */
PROXYFS_API int proxyfs_clear_thread_identity(void);

/* Unmount and free the handle (even when telling the daemon fails; the
 * result says whether it did). It first waits for the async requests of
 * this handle still in flight (their callbacks run). The handle must not be
 * used afterwards, and must not be unmounted from inside an async callback
 * (EBUSY). The last unmount of the handles of a server address (all the
 * handles of proxyfs_mount count as one address) closes that pool's
 * connections and joins its threads; the last unmount in a process thus
 * leaves no library thread or socket.
 * Errors: EINVAL (NULL handle), EBUSY, and errors telling the daemon. */
PROXYFS_API int proxyfs_unmount(mount_handle_t *in_mount_handle);

/* The volume's maximum I/O size in bytes (the largest single async read
 * or write; synchronous calls split larger ones), as the daemon gave it at
 * mount (and again at a remount), in *out_size (the caller's).
 * Errors: EINVAL (bad handle, NULL out_size). */
PROXYFS_API int proxyfs_max_io_size(mount_handle_t *in_mount_handle,
                                    uint64_t *out_size);

/* ------------------------------------------------------------ namespace */

/* Look up in_basename in the directory in_inode_number, or the path
 * in_fullpath, and return its inode number in *out_inode_number.
 * Errors: EINVAL, ENAMETOOLONG, ENOENT, ENOTDIR, ELOOP. */
PROXYFS_API int proxyfs_lookup(mount_handle_t *in_mount_handle,
                               uint64_t in_inode_number,
                               char *in_basename,
                               uint64_t *out_inode_number);
PROXYFS_API int proxyfs_lookup_path(mount_handle_t *in_mount_handle,
                                    char *in_fullpath,
                                    uint64_t *out_inode_number);

/* Look up in_name in the directory in_dir_ino ignoring case, as an SMB
 * gateway does before it creates a file: the entry named exactly in_name if
 * there is one, else the first entry, in byte order of the UTF-8 names,
 * whose name matches under Unicode simple case folding (ASCII and other
 * letters with case, É/é, Σ/σ/ς; ß matches only ẞ, never "ss"; no
 * normalization: PROTOCOL.md, "Case-insensitive lookup"). The server finds
 * it in an index, in O(log n) of the directory's size: no directory scan.
 * Outputs (each may be NULL): *out_name, the entry's real name,
 * NUL-terminated, malloc()ed: the caller frees it with free(); *out_ino,
 * its inode number; *out_stat, its attributes. On failure the outputs are
 * left unchanged. "." and ".." are themselves.
 * Errors: EINVAL, ENAMETOOLONG, ENOENT (no name matches, or no such
 * directory), ENOTDIR, ENOMEM. */
PROXYFS_API int proxyfs_lookup_ci(mount_handle_t *mh,
                                  uint64_t dir_ino,
                                  const char *name,
                                  char **out_name,
                                  uint64_t *out_ino,
                                  proxyfs_stat_t *out_stat);

/* Create a regular file (exclusively) with the permission bits of in_mode
 * and return its inode number in *out_inode_number.
 * Errors: EINVAL, ENAMETOOLONG, ENOENT, ENOTDIR, EEXIST, EROFS, ENOMEM. */
PROXYFS_API int proxyfs_create(mount_handle_t *in_mount_handle,
                               uint64_t in_inode_number,
                               char *in_basename,
                               mode_t in_mode,
                               uint64_t *out_inode_number);
PROXYFS_API int proxyfs_create_path(mount_handle_t *in_mount_handle,
                                    char *in_fullpath,
                                    mode_t in_mode,
                                    uint64_t *out_inode_number);

/* Create a directory; proxyfs_mkdir returns its inode number in
 * *out_inode_number (which may be NULL).
 * Errors: EINVAL, ENAMETOOLONG, ENOENT, EEXIST, ENOTDIR, EIO, EROFS,
 * ENOMEM. */
PROXYFS_API int proxyfs_mkdir(mount_handle_t *in_mount_handle,
                              uint64_t in_inode_number,
                              char *in_basename,
                              mode_t in_mode,
                              uint64_t *out_inode_number);
PROXYFS_API int proxyfs_mkdir_path(mount_handle_t *in_mount_handle,
                                   char *in_fullpath,
                                   mode_t in_mode);

/* Create a symlink in_basename (or in_fullpath) whose target is the string
 * in_target (or in_target_fullpath), stored as given; mode 0777.
 * Errors: EINVAL, ENAMETOOLONG, ENOENT, EEXIST, ENOTDIR, EIO, EROFS. */
PROXYFS_API int proxyfs_symlink(mount_handle_t *in_mount_handle,
                                uint64_t in_inode_number,
                                char *in_basename,
                                char *in_target);
PROXYFS_API int proxyfs_symlink_path(mount_handle_t *in_mount_handle,
                                     char *in_fullpath,
                                     char *in_target_fullpath);

/* Return the target of a symlink in *out_target: a NUL-terminated string
 * allocated with malloc(); the caller frees it with free((void *)target).
 * Errors: EINVAL (also: not a symlink), ENOENT, EIO, ENOMEM. */
PROXYFS_API int proxyfs_read_symlink(mount_handle_t *in_mount_handle,
                                     uint64_t in_inode_number,
                                     const char **out_target);
PROXYFS_API int proxyfs_read_symlink_path(mount_handle_t *in_mount_handle,
                                          char *in_fullpath,
                                          const char **out_target);

/* Add the name in_basename in directory in_inode_number for the existing
 * inode in_target_inode_number; the path form links in_tgt_fullpath (new)
 * to in_src_fullpath (existing).
 *
 * !!! ARGUMENT ORDER: proxyfs_link_path(mh, EXISTING, NEW), as link(2) and
 * !!! ln(1). The original ProxyFS server's link-by-path call took (new,
 * !!! existing): code ported from it must swap the two paths, or it
 * !!! creates the link the other way round (or fails with EEXIST/ENOENT).
 * Errors: EINVAL, ENOENT, ENOTDIR, EEXIST, EIO, ENOMEM, EPERM (directory). */
PROXYFS_API int proxyfs_link(mount_handle_t *in_mount_handle,
                             uint64_t in_inode_number,
                             char *in_basename,
                             uint64_t in_target_inode_number);
PROXYFS_API int proxyfs_link_path(mount_handle_t *in_mount_handle,
                                  char *in_src_fullpath,
                                  char *in_tgt_fullpath);

/* Remove a name that is not a directory.
 * Errors: EINVAL, ENOENT, EIO, EISDIR, ENOMEM. */
PROXYFS_API int proxyfs_unlink(mount_handle_t *in_mount_handle,
                               uint64_t in_inode_number,
                               char *in_basename);
PROXYFS_API int proxyfs_unlink_path(mount_handle_t *in_mount_handle,
                                    char *in_fullpath);

/* Remove an empty directory.
 * Errors: EINVAL, ENOENT, ENOTDIR, ENOTEMPTY. */
PROXYFS_API int proxyfs_rmdir(mount_handle_t *in_mount_handle,
                              uint64_t in_inode_number,
                              char *in_basename);
PROXYFS_API int proxyfs_rmdir_path(mount_handle_t *in_mount_handle,
                                   char *in_fullpath);

/* Rename as rename(2): atomically replaces a file, or an empty directory
 * by a directory.
 * Errors: EINVAL, EIO, ENOENT, ENOTDIR, EISDIR, ENOTEMPTY, ENOMEM. */
PROXYFS_API int proxyfs_rename(mount_handle_t *in_mount_handle,
                               uint64_t in_src_dir_inode_number,
                               char *in_src_basename,
                               uint64_t in_dst_dir_inode_number,
                               char *in_dst_basename);
PROXYFS_API int proxyfs_rename_path(mount_handle_t *in_mount_handle,
                                    char *in_src_fullpath,
                                    char *in_dst_fullpath);

/* ------------------------------------------------------------ open files */

/* Open inode in_inode_number and return a handle in *out_fh (nonzero;
 * meaningful only with this mount handle). in_flags is the access mode
 * alone: O_RDONLY, O_WRONLY or O_RDWR (creating and truncating are separate
 * calls); any other bit is EINVAL. While a handle is open the file stays
 * usable through its inode number even after its last name is removed
 * (proxyfs_unlink, or a rename over it): read, write, get_stat, setattr,
 * flush and the xattr calls by inode number keep working, and the file is
 * freed when its last handle (of any client) closes. The handle needs no
 * buffer and allocates nothing the caller frees; every handle must be
 * closed with proxyfs_close, or goes when the mount handle is unmounted.
 * If the daemon restarts, the library opens its handles again when it
 * mounts again (at the first call after the restart; this must happen
 * within the daemon's reclaim_grace for unlinked files) and the fh stays
 * the same. A file that could not be opened again is lost: proxyfs_close
 * then returns EBADF. After fork(), parent and child share the handles
 * (closing one in either closes it for both).
 * Errors: EINVAL, ENOENT (no such inode, or no name left), EISDIR (a
 * directory for writing), EROFS, EMFILE (too many open files on the mount),
 * ENOMEM, EIO, ETIMEDOUT. */
PROXYFS_API int proxyfs_open(mount_handle_t *in_mount_handle,
                             uint64_t in_inode_number,
                             int in_flags,
                             uint64_t *out_fh);

/* Close a handle of proxyfs_open. The last close of a file without names
 * frees it.
 * Errors: EINVAL (bad mount handle), EBADF (not an open handle of this
 * mount handle: closed already, never opened, or lost), EIO, ETIMEDOUT. */
PROXYFS_API int proxyfs_close(mount_handle_t *in_mount_handle,
                              uint64_t in_fh);

/* ------------------------------------------------------------------ locks */

/* POSIX record locks (fcntl(2) F_GETLK, F_SETLK, F_SETLKW) and whole-file
 * flock(2) locks, held by proxyfsd for every client of the volume
 * (PROTOCOL.md, section 4 "Locks"). The constants are those of <fcntl.h>
 * and <sys/file.h>. Locks are advisory: read and write ignore them.
 *
 * A lock is taken through a handle of proxyfs_open, on its file, and is
 * held by an owner: the handle together with an owner string the caller
 * chooses to tell its lockers apart (an SMB lock context, a FUSE
 * lock_owner formatted as text, e.g. "%016" PRIx64). Locks of one owner
 * never conflict with each other; two handles are two owners even with the
 * same string (the semantics of Linux's open file description locks,
 * F_OFD_SETLK, not of per-process POSIX locks). proxyfs_close drops every
 * lock of the handle and ends its waits (EBADF); so does proxyfs_unmount
 * for all the mount handle's handles, and so does the daemon when a
 * process dies without unmounting (once its mount_grace is over). The
 * classic POSIX rule that closing any descriptor of a file drops the
 * process's locks on it is the caller's to apply (an F_UNLCK of the whole
 * file for each of its owners).
 *
 * Restarts. The library remembers the locks each handle holds (as the
 * server holds them, after fcntl's merging and splitting: memory grows
 * with the ranges held, not with the calls made). When the daemon
 * restarts, the first call that notices it mounts again, opens the
 * handles again and re-takes their locks ("reclaim") before it goes on; a
 * daemon that restarted grants only reclaims during its reclaim_grace, so
 * no other client takes them first. A lock that cannot be reclaimed (the
 * grace was over: another client may have taken it and changed the data)
 * is forgotten and counted: see proxyfs_lost_locks.
 *
 * Waiting. F_SETLKW and flock without LOCK_NB block the calling thread
 * until the lock is granted, without the call timeout (which still bounds
 * reconnecting if the connection breaks during the wait; the wait is then
 * sent again). Another thread ends such a wait with proxyfs_lock_cancel.
 * A non-waiting call made while a restarted daemon is in its grace period
 * is sent again every second until the grace ends (or the call timeout:
 * ETIMEDOUT). A waiting call occupies one of the daemon's in-flight slots
 * (max_inflight_per_conn, default 256) on one of the process's two
 * JSON-RPC connections: hundreds of waits at once slow down the process's
 * other calls. Closing a handle ends its waits (EBADF), but no call may
 * be running on a mount handle being unmounted: end its waits with
 * proxyfs_lock_cancel before proxyfs_unmount.
 *
 * fork(): a child inherits the handles and what the library remembers of
 * their locks, but waits and reclaims are per process. */

/* A lock reported by F_GETLK (the caller's struct; nothing is allocated). */
typedef struct {
    short type;      /* F_RDLCK, F_WRLCK, or F_UNLCK: nothing conflicts */
    int64_t start;   /* the conflicting lock's range (0 with F_UNLCK) */
    int64_t len;     /* 0: to end of file */
    char owner[65];  /* its owner string, NUL-terminated ("" with F_UNLCK);
                        the other client's handle and mount are not shown */
} proxyfs_lock_t;

/* A POSIX record lock through handle in_fh on its file.
 *  - in_cmd: F_SETLK takes the lock or fails with EAGAIN at once; F_SETLKW
 *    waits until it is granted (see "Waiting" above), failing with EDEADLK
 *    at once if waiting would close a cycle of owners waiting for each
 *    other (of any clients; an owner is bound to a handle, so such a
 *    cycle lies within one file), and with EINTR if
 *    proxyfs_lock_cancel ends the wait; F_GETLK tests: *out_conflict
 *    receives the conflicting lock with the lowest start, or type F_UNLCK
 *    if in_type could be taken.
 *  - in_type: F_RDLCK (needs a handle open for reading, else EBADF),
 *    F_WRLCK (needs one open for writing), F_UNLCK (not with F_GETLK;
 *    never waits; succeeds also when nothing was held, but an unlock in
 *    the middle of a range adds one, and at the daemon's limit of ranges
 *    per owner the daemon refuses it with ENOLCK). Within one
 *    owner a new lock or unlock over bytes it holds replaces them, as
 *    fcntl(2) does: a lock in the middle of another splits it, touching or
 *    overlapping ranges of one type merge.
 *  - in_start >= 0 and in_len: the bytes [start, start+len); len 0 runs to
 *    the end of the file, however far it grows; a negative len covers
 *    [start+len, start), as fcntl(2)'s negative l_len (EINVAL if that
 *    begins before 0). The range may not run past offset 2^63-1 (EINVAL).
 *  - in_owner: a NUL-terminated UTF-8 string of at most 64 bytes, possibly
 *    empty; the library does not keep the pointer.
 *  - out_conflict: the caller's struct, written only by a successful
 *    F_GETLK (required then; ignored, may be NULL, otherwise).
 * Errors: EINVAL (bad handle, cmd, type, range or owner, NULL
 * out_conflict with F_GETLK), EBADF (in_fh is not an open handle of this
 * mount handle, was lost at a remount, does not allow the lock type, or
 * was closed during a wait), EAGAIN (F_SETLK: a conflicting lock),
 * EDEADLK, EINTR, ENOLCK (over the daemon's limits: 10000 ranges per
 * owner, 100000 locks per mount), ENOMEM, EIO, ETIMEDOUT (also: a restarted
 * daemon still in its grace period when the call timeout passed). After
 * EIO or ETIMEDOUT the lock may or may not have been taken. */
PROXYFS_API int proxyfs_lock(mount_handle_t *in_mount_handle,
                             uint64_t in_fh,
                             int in_cmd,
                             short in_type,
                             int64_t in_start,
                             int64_t in_len,
                             const char *in_owner,
                             proxyfs_lock_t *out_conflict);

/* A flock(2) lock through handle in_fh on its whole file: in_operation is
 * LOCK_SH, LOCK_EX or LOCK_UN, optionally | LOCK_NB. One flock lock per
 * handle; taking the other type converts it. flock and POSIX locks do not
 * interact. Without LOCK_NB the call waits until granted (see "Waiting";
 * no deadlock detection, as on Linux); a conversion that has to wait first
 * drops the lock held before, as flock(2) does, so a wait cancelled with
 * proxyfs_lock_cancel(mh, fh, "", ...) (EINTR) leaves no flock lock held.
 * With LOCK_NB a conflict is EWOULDBLOCK (= EAGAIN) and a conversion that
 * fails keeps the lock held before. The handle's open mode does not
 * matter.
 * Errors: EINVAL (bad handle or operation), EBADF, EWOULDBLOCK, EINTR,
 * ENOLCK, EIO, ETIMEDOUT. */
PROXYFS_API int proxyfs_flock(mount_handle_t *in_mount_handle,
                              uint64_t in_fh,
                              int in_operation);

/* End, with EINTR, every wait of owner in_owner of handle in_fh: the
 * F_SETLKW calls of that owner string, and with "" also the handle's
 * blocking flock calls (and F_SETLKW calls with owner ""), in any thread
 * of this process. A waiting call that the cancel races with may still
 * return 0, holding the lock. The library sends the cancel again while a
 * wait it marked has not ended (its request may have reached the daemon
 * after the first cancel), so a wait begun by another thread during this
 * call may end too. *out_cancelled (may be NULL) receives how many waits
 * the daemon ended (a wait that was reconnecting at the time ends without
 * the daemon counting it).
 * Errors: EINVAL (bad handle, NULL or bad owner), EBADF, EIO, ETIMEDOUT. */
PROXYFS_API int proxyfs_lock_cancel(mount_handle_t *in_mount_handle,
                                    uint64_t in_fh,
                                    const char *in_owner,
                                    int *out_cancelled);

/* How many locks of this mount handle could not be reclaimed after the
 * daemon restarted (or forgot the mount, or the handle moved to another
 * gateway of its list and another owner had taken the range there) and
 * were forgotten, since the mount: each POSIX range and each flock lock
 * counts one, as do the locks of a handle that could not be opened again. The count only grows; a
 * caller compares it with an earlier value to learn of new losses (the
 * data such a lock protected may have been changed by another client).
 * *out_count is the caller's.
 * Errors: EINVAL (bad handle, NULL out_count). */
PROXYFS_API int proxyfs_lost_locks(mount_handle_t *in_mount_handle,
                                   uint64_t *out_count);

/* Create the regular file in_basename in directory in_inode_number with
 * the permission bits of in_mode (as proxyfs_create_stat) and open it with
 * the access mode in_flags (as proxyfs_open), in one request: *out_fh is
 * the handle (close it with proxyfs_close), *out_stat the new file's
 * attributes (the caller's struct; the inode number is out_stat->ino).
 * As open(2) with O_CREAT|O_EXCL, the creator gets the access it asks
 * for whatever in_mode says (a file made 0444 and opened O_RDWR is
 * writable through *out_fh with proxyfs_write_fh; calls by inode number
 * are checked against the mode as always). After a lost attempt, an
 * EEXIST whose entry is what the call makes is success (the file is then
 * opened with a second request, which is checked against its mode: a
 * mode that denies the access asked for is then EACCES).
 * Errors: those of proxyfs_create_stat and proxyfs_open. */
PROXYFS_API int proxyfs_create_open(mount_handle_t *in_mount_handle,
                                    uint64_t in_inode_number,
                                    const char *in_basename, mode_t in_mode,
                                    int in_flags, uint64_t *out_fh,
                                    proxyfs_stat_t *out_stat);

/* ------------------------------------------- namespace calls with stat */

/* The namespace calls above, returning the entry's attributes as well, in
 * the same single request (an SMB CREATE is an open and a stat: one round
 * trip instead of two). *out_stat is the caller's proxyfs_stat_t, filled
 * on success only; nothing is allocated, nothing is to be freed.
 * out_inode_number may be NULL (the inode is also out_stat->ino). The
 * strings are only read during the call. Errors and the retry rule are
 * those of the call without _stat (after a lost attempt, an EEXIST whose
 * entry is what the call makes is success, with that entry's stat).
 *
 * proxyfs_lookup_stat: lookup + stat of in_basename in the directory.
 * proxyfs_stat_at: the same without the inode number (fstatat with
 *   AT_SYMLINK_NOFOLLOW: a symlink's own attributes).
 * proxyfs_create_stat, proxyfs_mkdir_stat, proxyfs_symlink_stat: create,
 *   and return the new entry's attributes. */
PROXYFS_API int proxyfs_lookup_stat(mount_handle_t *in_mount_handle,
                                    uint64_t in_inode_number,
                                    const char *in_basename,
                                    uint64_t *out_inode_number,
                                    proxyfs_stat_t *out_stat);
PROXYFS_API int proxyfs_stat_at(mount_handle_t *in_mount_handle,
                                uint64_t in_inode_number,
                                const char *in_basename,
                                proxyfs_stat_t *out_stat);
PROXYFS_API int proxyfs_create_stat(mount_handle_t *in_mount_handle,
                                    uint64_t in_inode_number,
                                    const char *in_basename,
                                    mode_t in_mode,
                                    uint64_t *out_inode_number,
                                    proxyfs_stat_t *out_stat);
PROXYFS_API int proxyfs_mkdir_stat(mount_handle_t *in_mount_handle,
                                   uint64_t in_inode_number,
                                   const char *in_basename,
                                   mode_t in_mode,
                                   uint64_t *out_inode_number,
                                   proxyfs_stat_t *out_stat);
PROXYFS_API int proxyfs_symlink_stat(mount_handle_t *in_mount_handle,
                                     uint64_t in_inode_number,
                                     const char *in_basename,
                                     const char *in_target,
                                     uint64_t *out_inode_number,
                                     proxyfs_stat_t *out_stat);

/* stat(2) of a path, following a final symlink (proxyfs_get_stat_path is
 * lstat(2)), into the caller's *out_stat; nothing is allocated. One
 * JSON-RPC call (get_stat_path with "follow").
 * Errors: EINVAL, ENOENT (also a dangling symlink), ENOTDIR, ELOOP,
 * ENAMETOOLONG. */
PROXYFS_API int proxyfs_stat_path_follow(mount_handle_t *in_mount_handle,
                                         const char *in_fullpath,
                                         proxyfs_stat_t *out_stat);

/* realpath(3) within the volume: the canonical path of what in_fullpath
 * names, every symlink followed (the last component's too), "/" for the
 * root. *out_path is a NUL-terminated string allocated with malloc(); the
 * caller frees it with free(). *out_inode_number (may be NULL) is the
 * inode it names. One JSON-RPC call.
 * Errors: EINVAL, ENOENT (also a dangling symlink), ENOTDIR, ELOOP,
 * ENAMETOOLONG, ENOMEM. */
PROXYFS_API int proxyfs_realpath(mount_handle_t *in_mount_handle,
                                 const char *in_fullpath,
                                 char **out_path,
                                 uint64_t *out_inode_number);

/* ------------------------------------------------------------ attributes */

/* Return the attributes in *out_stat, a proxyfs_stat_t allocated with
 * malloc(); the caller frees it with free().
 * Errors: EINVAL, ENOENT, ENOMEM. */
PROXYFS_API int proxyfs_get_stat(mount_handle_t *in_mount_handle,
                                 uint64_t in_inode_number,
                                 proxyfs_stat_t **out_stat);
PROXYFS_API int proxyfs_get_stat_path(mount_handle_t *in_mount_handle,
                                      char *in_fullpath,
                                      proxyfs_stat_t **out_stat);

/* Return the type of an inode in *out_file_type: DT_DIR, DT_REG or DT_LNK.
 * Errors: EINVAL, ENOENT. */
PROXYFS_API int proxyfs_type(mount_handle_t *in_mount_handle,
                             uint64_t in_inode_number,
                             uint16_t *out_file_type);

/* Set the permission bits (07777) of in_mode; type bits are ignored.
 * Errors: EINVAL, ENAMETOOLONG, ENOENT. */
PROXYFS_API int proxyfs_chmod(mount_handle_t *in_mount_handle,
                              uint64_t in_inode_number,
                              mode_t in_mode);
PROXYFS_API int proxyfs_chmod_path(mount_handle_t *in_mount_handle,
                                   char *in_fullpath,
                                   mode_t in_mode);

/* Set owner and group; (uid_t)-1 or (gid_t)-1 leaves that id unchanged.
 * Errors: EINVAL, ENAMETOOLONG, ENOENT. */
PROXYFS_API int proxyfs_chown(mount_handle_t *in_mount_handle,
                              uint64_t in_inode_number,
                              uid_t in_owner,
                              gid_t in_group);
PROXYFS_API int proxyfs_chown_path(mount_handle_t *in_mount_handle,
                                   char *in_fullpath,
                                   uid_t in_owner,
                                   gid_t in_group);

/* Set the size of a file (truncate or extend with zeros).
 * Errors: EINVAL, ENOENT, EIO, EISDIR. */
PROXYFS_API int proxyfs_resize(mount_handle_t *in_mount_handle,
                               uint64_t in_inode_number,
                               uint64_t in_new_size);

/* Set atime and/or mtime (utimens); a NULL pointer leaves that time as it
 * is. The timespecs are only read.
 * Errors: EINVAL (also nsec > 999999999), EIO, ENOENT. */
PROXYFS_API int proxyfs_settime(mount_handle_t *in_mount_handle,
                                uint64_t in_inode_number,
                                proxyfs_timespec_t *in_atim,
                                proxyfs_timespec_t *in_mtim);
PROXYFS_API int proxyfs_settime_path(mount_handle_t *in_mount_handle,
                                     char *in_fullpath,
                                     proxyfs_timespec_t *in_atim,
                                     proxyfs_timespec_t *in_mtim);

/* Set in one call the fields of *in_attr that in_mask selects
 * (PROXYFS_SETATTR_* bits). in_attr is only read. If out_stat is not NULL
 * the caller-allocated *out_stat receives the attributes after the change.
 * Errors: EINVAL (unknown mask bit, NULL in_attr with a nonzero mask),
 * ENOENT, EISDIR (size of a directory), EIO. */
PROXYFS_API int proxyfs_setattr(mount_handle_t *in_mount_handle,
                                uint64_t in_inode_number,
                                uint64_t in_mask,
                                const proxyfs_setattr_t *in_attr,
                                proxyfs_stat_t *out_stat);
PROXYFS_API int proxyfs_setattr_path(mount_handle_t *in_mount_handle,
                                     const char *in_fullpath,
                                     uint64_t in_mask,
                                     const proxyfs_setattr_t *in_attr,
                                     proxyfs_stat_t *out_stat);

/* Return filesystem statistics of the mounted volume in *out_statvfs, a
 * struct statvfs allocated with malloc(); the caller frees it with free().
 * Errors: EINVAL, EIO, ENOMEM. */
PROXYFS_API int proxyfs_statvfs(mount_handle_t *in_mount_handle,
                                struct statvfs **out_statvfs);

/* ---------------------------------------------------------- directories */

/* Return one directory entry in *out_dir_ent, a struct dirent allocated with
 * malloc() that the caller frees with free(). in_prev_dir_loc is -1 for the
 * first entry, and otherwise the d_off of the entry returned before: d_off is
 * the cookie to continue after that entry. "." and ".." come first. At the
 * end of the directory the call returns 0 with *out_dir_ent == NULL.
 * proxyfs_readdir_plus also returns the entry's attributes in
 * *out_dir_ent_stats (malloc()ed, caller frees; NULL at the end).
 * The library fetches entries from the daemon in batches and serves
 * one-entry calls from a batch cached in the mount handle.
 * Errors: EINVAL, ENOENT, ENOTDIR, ENOMEM. */
PROXYFS_API int proxyfs_readdir(mount_handle_t *in_mount_handle,
                                uint64_t in_inode_number,
                                int64_t in_prev_dir_loc,
                                struct dirent **out_dir_ent);
PROXYFS_API int proxyfs_readdir_plus(mount_handle_t *in_mount_handle,
                                     uint64_t in_inode_number,
                                     int64_t in_prev_dir_loc,
                                     struct dirent **out_dir_ent,
                                     proxyfs_stat_t **out_dir_ent_stats);

/* One entry of proxyfs_readdir_plus_batch. */
typedef struct {
    uint64_t ino;          /* inode number */
    int64_t cookie;        /* in_prev_dir_loc to continue after this entry */
    uint8_t type;          /* DT_REG, DT_DIR, DT_LNK, ... */
    char name[256];        /* NUL-terminated */
    proxyfs_stat_t stat;   /* the entry's attributes */
} proxyfs_dirent_plus_t;

/* Return up to in_max entries (1..4096; 0 means 1024) after in_prev_dir_loc
 * (-1 or 0 for the first, else an entry's cookie) with their attributes, in
 * one request: *out_entries is an array of *out_count entries allocated with
 * malloc() that the caller frees with one free() (NULL when *out_count is
 * 0). *out_eof is 1 when the directory ends after the last entry returned
 * (a call after it returns 0 entries with *out_eof 1). For callers that
 * want a batch at a time (a language binding, a FUSE readdirplus); it
 * neither uses nor fills the one-entry calls' cache.
 * Errors: EINVAL, ENOENT, ENOTDIR, ENOMEM, EIO, ETIMEDOUT. */
PROXYFS_API int proxyfs_readdir_plus_batch(mount_handle_t *in_mount_handle,
                                           uint64_t in_inode_number,
                                           int64_t in_prev_dir_loc,
                                           uint32_t in_max,
                                           proxyfs_dirent_plus_t **out_entries,
                                           size_t *out_count,
                                           int *out_eof);

/* One requested extended attribute of a listed entry
 * (proxyfs_entry_xattrs_t.values). */
typedef struct {
    const char *name;   /* the requested name (NUL-terminated) */
    int err;            /* 0, or the errno proxyfs_get_xattr would give:
                         * ENODATA (no such attribute), EACCES, ... */
    size_t len;         /* the value's size in bytes (0 when err != 0) */
    const void *value;  /* the value (not NUL-terminated; NULL when err) */
} proxyfs_xattr_value_t;

/* The extended attributes of one entry of proxyfs_readdir_plus_xattr, as
 * proxyfs_list_xattr and proxyfs_get_xattr would give them to the caller
 * at the time of the listing. One block allocated with malloc(): every
 * pointer in it points into the block, and the caller frees it all with
 * one free(). */
typedef struct {
    int list_err;       /* 0, or the errno proxyfs_list_xattr would give for
                         * the entry (then names_len is 0 and every value
                         * has an err) */
    size_t names_len;   /* bytes of names: each name followed by a NUL, as
                         * listxattr(2) returns them (what proxyfs_list_xattr
                         * would report as *out_size) */
    const char *names;
    size_t count;       /* in_count of the call */
    proxyfs_xattr_value_t *values; /* count values, in in_names' order */
} proxyfs_entry_xattrs_t;

/* proxyfs_readdir_plus that also returns, in *out_xattrs, the entry's
 * extended attributes: the names of all of them, and the values of the
 * in_count names in in_names (at most 16, each 1..255 bytes; in_count 0:
 * the names only). A gateway that reads an attribute of every entry it
 * lists (Samba: user.DOSATTRIB, and the list for the EA size) gets them
 * with the listing's batches instead of two requests per entry. The same
 * cache rules as proxyfs_readdir_plus apply: entries come from a batch
 * fetched (binary READDIR_PLUS_XATTR) at most a second before, with
 * nothing changed through this mount handle since; a batch fetched for
 * other names is not used. *out_dir_ent, *out_dir_ent_stats and
 * *out_xattrs are malloc()ed, each freed by the caller with free(); all
 * three are NULL at the end of the directory. in_names is only read
 * during the call.
 * Errors: EINVAL (NULL pointers, bad names, over 16), ENOENT, ENOTDIR,
 * EACCES, ENOMEM, EIO, ETIMEDOUT. */
PROXYFS_API int proxyfs_readdir_plus_xattr(mount_handle_t *in_mount_handle,
                                           uint64_t in_inode_number,
                                           int64_t in_prev_dir_loc,
                                           const char *const *in_names,
                                           size_t in_count,
                                           struct dirent **out_dir_ent,
                                           proxyfs_stat_t **out_dir_ent_stats,
                                           proxyfs_entry_xattrs_t **out_xattrs);

/* ----------------------------------------------------------------- data */

/* Read up to min(in_length, in_bufsize) bytes at in_offset into the
 * caller's buffer in_bufptr; *out_bufsize is the number of bytes read
 * (fewer at the end of the file, 0 past it). The buffer is the caller's and
 * is only written during the call.
 * Errors: EINVAL, EBADF (no such inode), EIO, EISDIR, ETIMEDOUT. */
PROXYFS_API int proxyfs_read(mount_handle_t *in_mount_handle,
                             uint64_t in_inode_number,
                             uint64_t in_offset,
                             uint64_t in_length,
                             uint8_t *in_bufptr,
                             size_t in_bufsize,
                             size_t *out_bufsize);

/* Write in_bufsize bytes from in_bufptr at in_offset (a write past the end
 * leaves a hole of zeros); *out_size is the number of bytes written. The
 * buffer is only read during the call.
 * Errors: EINVAL, EBADF (no such inode), EIO, EISDIR, EROFS, ENOSPC,
 * ETIMEDOUT. */
PROXYFS_API int proxyfs_write(mount_handle_t *in_mount_handle,
                              uint64_t in_inode_number,
                              uint64_t in_offset,
                              uint8_t *in_bufptr,
                              size_t in_bufsize,
                              size_t *out_size);

/* Make the data and metadata of the inode durable (fsync).
 * Errors: EINVAL, EBADF (no such inode), EIO. */
PROXYFS_API int proxyfs_flush(mount_handle_t *in_mount_handle,
                              uint64_t in_inode_number);

/* I/O through a handle of proxyfs_open (PROTOCOL.md, "I/O through a
 * handle"): as proxyfs_read, proxyfs_write and proxyfs_flush on the
 * handle's inode, except that the access mode the handle was opened with
 * decides, as a file descriptor's does, and the file's permissions are not
 * checked again. A file opened O_WRONLY or O_RDWR stays writable through
 * its handle after a chmod 0444 or a chown away from the caller; reading
 * needs O_RDONLY or O_RDWR, writing O_WRONLY or O_RDWR (EBADF otherwise).
 * The calls by inode number check the file's mode every time. in_fh is a
 * handle of this mount handle (EBADF otherwise, and for a handle closed
 * or lost); the calls go on across daemon restarts as the handle does.
 * Errors: those of proxyfs_read, proxyfs_write, proxyfs_flush, and EBADF
 * for a handle without the access. */
PROXYFS_API int proxyfs_read_fh(mount_handle_t *in_mount_handle,
                                uint64_t in_fh,
                                uint64_t in_offset,
                                uint64_t in_length,
                                uint8_t *in_bufptr,
                                size_t in_bufsize,
                                size_t *out_bufsize);

PROXYFS_API int proxyfs_write_fh(mount_handle_t *in_mount_handle,
                                 uint64_t in_fh,
                                 uint64_t in_offset,
                                 uint8_t *in_bufptr,
                                 size_t in_bufsize,
                                 size_t *out_size);

PROXYFS_API int proxyfs_flush_fh(mount_handle_t *in_mount_handle,
                                 uint64_t in_fh);

/* ftruncate(2): set the size of the file of handle in_fh (opened O_WRONLY
 * or O_RDWR; EBADF otherwise), whatever its mode is now. One JSON-RPC call
 * (resize with "fh"). Errors: those of proxyfs_resize, and EBADF. */
PROXYFS_API int proxyfs_ftruncate(mount_handle_t *in_mount_handle,
                                  uint64_t in_fh,
                                  uint64_t in_size);

/* ------------------------------------------------- allocation, sparse */

/* proxyfs_fallocate modes: Linux's FALLOC_FL_* values. */
#define PROXYFS_FALLOC_KEEP_SIZE  0x01
#define PROXYFS_FALLOC_PUNCH_HOLE 0x02 /* only with KEEP_SIZE, as Linux */
#define PROXYFS_FALLOC_ZERO_RANGE 0x10

/* fallocate(2) on a regular file: mode 0 allocates [in_offset,
 * in_offset + in_length) and extends the size if the range ends beyond it;
 * KEEP_SIZE allocates without changing the size; PUNCH_HOLE|KEEP_SIZE
 * deallocates the range (it reads as zeros, st_blocks drops); ZERO_RANGE
 * (optionally with KEEP_SIZE) zeroes it. One JSON-RPC call; nothing is
 * allocated for the caller.
 * Errors: EINVAL (also length 0), EOPNOTSUPP (other modes, PUNCH_HOLE
 * without KEEP_SIZE), ENOENT, EISDIR, EFBIG, ENOSPC, EROFS, EIO. */
PROXYFS_API int proxyfs_fallocate(mount_handle_t *in_mount_handle,
                                  uint64_t in_inode_number,
                                  int in_mode,
                                  uint64_t in_offset,
                                  uint64_t in_length);

/* proxyfs_lseek whences: the values of Linux's SEEK_DATA and SEEK_HOLE. */
#define PROXYFS_SEEK_DATA 3
#define PROXYFS_SEEK_HOLE 4

/* lseek(2) SEEK_DATA / SEEK_HOLE on a regular file: *out_offset is the
 * first offset at or after in_offset that is data (or a hole; the end of
 * the file counts as one). Only writes *out_offset (the caller's).
 * Errors: EINVAL (whence, NULL out_offset), ENXIO (in_offset at or past
 * the size, or SEEK_DATA with only holes after it), ENOENT, EISDIR. */
PROXYFS_API int proxyfs_lseek(mount_handle_t *in_mount_handle,
                              uint64_t in_inode_number,
                              uint64_t in_offset,
                              int in_whence,
                              uint64_t *out_offset);

/* Server-side copy (SMB copy-chunk, copy_file_range): copy up to in_length
 * bytes of file in_src_inode_number at in_src_offset into file
 * in_dst_inode_number at in_dst_offset inside proxyfsd; the data never
 * crosses the wire. *out_copied (the caller's) is the bytes copied: fewer
 * at the end of the source (0 at or past it) and at most 64 MiB per call,
 * so a caller loops until it has copied what it wants or gets 0. The
 * destination grows as with proxyfs_write (a gap reads as zeros). One
 * JSON-RPC call; nothing is allocated.
 * Errors: EINVAL (NULL out_copied, overlapping ranges of one file), ENOENT
 * (either inode missing; not EBADF), EISDIR, EFBIG, ENOSPC, EROFS, EIO. */
PROXYFS_API int proxyfs_copy_range(mount_handle_t *in_mount_handle,
                                   uint64_t in_src_inode_number,
                                   uint64_t in_src_offset,
                                   uint64_t in_dst_inode_number,
                                   uint64_t in_dst_offset,
                                   uint64_t in_length,
                                   uint64_t *out_copied);

/* --------------------------------------------------------- async data */

/* Asynchronous read. The request is sent in the caller's thread (a single
 * read may not exceed the volume's maximum I/O size, 8 MiB by default).
 * in_request_id is the caller's key for the request: it must not equal the
 * id of another request that has not been received yet (EEXIST).
 *
 * On success (0) the library owns in_bufptr until the callback: it writes
 * the data there. in_done_callback (may be NULL) is then called exactly
 * once, with in_request_id, on a library thread, when the request has
 * completed, successfully or not (connection failures, timeouts, cancel
 * (proxyfs_async_cancel) and unmount included). The callback must not block: it runs on the thread
 * that reads the replies of other requests. It may call proxyfs_read_recv or
 * proxyfs_write_recv for its own id (which then return at once) but should
 * call no other proxyfs function (a send from there can stall that reader;
 * proxyfs_unmount returns EBUSY). Typically it wakes the caller's event
 * loop, which then calls *_recv. *_recv in any other thread returns only
 * after the callback has returned.
 * On failure (non-zero) nothing was sent, the callback is never called and
 * proxyfs_read_recv returns ENOENT for the id.
 * Errors: EINVAL, EEXIST (id in use), ENOMEM. */
PROXYFS_API int proxyfs_read_send(mount_handle_t *in_mount_handle,
                                  uint64_t in_inode_number,
                                  uint64_t in_offset,
                                  uint64_t in_length,
                                  uint8_t *in_bufptr,
                                  size_t in_bufsize,
                                  void *in_request_id,
                                  void (*in_done_callback)(void *in_request_id));

/* Wait until the read request in_request_id has completed, then return 0
 * with its status in *out_rsp_status (0, or EBADF, EISDIR, EIO, EINVAL,
 * ETIMEDOUT, ECANCELED after proxyfs_async_cancel, ...) and the number of bytes read in *out_bufsize, and forget
 * the request. Returns ENOENT if no such request is known (never sent, send
 * failed, already received, or a write or flush request), EINVAL for NULL
 * outputs. */
PROXYFS_API int proxyfs_read_recv(void *in_request_id,
                                  int *out_rsp_status,
                                  size_t *out_bufsize);

/* Asynchronous write; as proxyfs_read_send, except that the library only
 * reads in_bufptr (until the callback). */
PROXYFS_API int proxyfs_write_send(mount_handle_t *in_mount_handle,
                                   uint64_t in_inode_number,
                                   uint64_t in_offset,
                                   uint8_t *in_bufptr,
                                   size_t in_bufsize,
                                   void *in_request_id,
                                   void (*in_done_callback)(void *in_request_id));

/* As proxyfs_read_recv, for a write: *out_size is the number of bytes
 * written. */
PROXYFS_API int proxyfs_write_recv(void *in_request_id,
                                   int *out_rsp_status,
                                   size_t *out_size);

/* Asynchronous flush (fsync), for SMB2 FLUSH and write-through (Samba's
 * fsync_send): as proxyfs_read_send, with no buffer. On success (0) the
 * callback (may be NULL) is called exactly once on a library thread when
 * the data and metadata of the inode are durable, or the flush failed;
 * proxyfs_flush_recv then returns the status. in_request_id shares the
 * namespace of the read and write request ids (EEXIST if in use).
 * Errors: EINVAL, EEXIST (id in use), ENOMEM. */
PROXYFS_API int proxyfs_flush_send(mount_handle_t *in_mount_handle,
                                   uint64_t in_inode_number,
                                   void *in_request_id,
                                   void (*in_done_callback)(void *in_request_id));

/* Wait until the flush request in_request_id has completed (and its
 * callback returned), then return 0 with its status in *out_rsp_status (0,
 * or EBADF for an inode that does not exist, EIO, ETIMEDOUT, ...), and
 * forget the request. Returns ENOENT if no such flush request is known
 * (never sent, send failed, already received, or a read or write request),
 * EINVAL for a NULL out_rsp_status. Nothing is allocated. */
PROXYFS_API int proxyfs_flush_recv(void *in_request_id, int *out_rsp_status);

/* Async I/O through a handle of proxyfs_open: as proxyfs_read_send,
 * proxyfs_write_send and proxyfs_flush_send, with the rules of
 * proxyfs_read_fh (the handle's access mode decides: EBADF as the status
 * of a read through a handle opened O_WRONLY, ...). Received with
 * proxyfs_read_recv, proxyfs_write_recv and proxyfs_flush_recv, and
 * cancelled with proxyfs_async_cancel, as the others.
 * Errors: those of proxyfs_read_send, and EBADF (nothing sent) when the
 * mount handle has no such handle. */
PROXYFS_API int proxyfs_read_fh_send(mount_handle_t *in_mount_handle,
                                     uint64_t in_fh,
                                     uint64_t in_offset,
                                     uint64_t in_length,
                                     uint8_t *in_bufptr,
                                     size_t in_bufsize,
                                     void *in_request_id,
                                     void (*in_done_callback)(void *in_request_id));

PROXYFS_API int proxyfs_write_fh_send(mount_handle_t *in_mount_handle,
                                      uint64_t in_fh,
                                      uint64_t in_offset,
                                      uint8_t *in_bufptr,
                                      size_t in_bufsize,
                                      void *in_request_id,
                                      void (*in_done_callback)(void *in_request_id));

PROXYFS_API int proxyfs_flush_fh_send(mount_handle_t *in_mount_handle,
                                      uint64_t in_fh,
                                      void *in_request_id,
                                      void (*in_done_callback)(void *in_request_id));

/* Cancel the async request in_request_id (of proxyfs_read_send,
 * proxyfs_write_send or proxyfs_flush_send), as Samba's tevent cancel
 * functions do: the library stops waiting for it.
 *
 * Returns 0 if the request had not completed: it is now cancelled. Its
 * callback is still called, exactly once (it may be running already, or
 * be called on a library thread soon after this returns, even while the
 * daemon is unreachable or stopped), and *_recv then reports the status
 * ECANCELED with 0 bytes. Whatever the reply brings later is dropped.
 *  - read: the library writes nothing into the caller's buffer once this
 *    function has returned (bytes of the reply may have been written
 *    before: the buffer's content is undefined). The buffer is the
 *    caller's again as soon as this returns 0.
 *  - write: the write may still have happened on the server, wholly or in
 *    part (it may have been sent before the cancel, or be being sent):
 *    the file's content in that range is unknown. The library may still
 *    read the buffer until the callback (if the request is being written
 *    to a stalled daemon, the callback waits for that write to end or
 *    fail: at most the call timeout).
 *  - flush: the flush may still have happened (or be happening).
 * Returns EALREADY if the request has already completed (its result is
 * final, its callback has been or is being called): nothing changes, and
 * *_recv reports the request's own status. Returns ENOENT if no such
 * request is known (never sent, send failed, or already received), EINVAL
 * for a NULL id. Cancelling again before the request completes returns 0
 * again.
 *
 * Race-free with the reply: the request completes either before the
 * cancel (EALREADY, the real result) or after it (0, ECANCELED), never
 * both. The request is still received with *_recv, which forgets it (the
 * id can then be used again); proxyfs_unmount waits for the callbacks of
 * cancelled requests too, which come without waiting for the daemon.
 * Never blocks on the network; may be called from any thread, including
 * from inside a callback. Nothing is allocated.
 * Errors: EINVAL, ENOENT, EALREADY. */
PROXYFS_API int proxyfs_async_cancel(void *in_request_id);

/* --------------------------------------------------------------- xattrs */

/* Get the value of the extended attribute in_name (getxattr(2) rules):
 * with in_size 0 only the value's size is returned in *out_size; otherwise
 * the value is copied into the caller's buffer out_value and its size put in
 * *out_size, or ERANGE is returned (with the size needed in *out_size) if
 * in_size is too small. The value is not NUL-terminated.
 * Errors: EINVAL, ENOENT, ENODATA (no such attribute), ERANGE. */
PROXYFS_API int proxyfs_get_xattr(mount_handle_t *in_mount_handle,
                                  uint64_t in_inode_number,
                                  const char *in_name,
                                  void *out_value,
                                  size_t in_size,
                                  size_t *out_size);
PROXYFS_API int proxyfs_get_xattr_path(mount_handle_t *in_mount_handle,
                                       const char *in_fullpath,
                                       const char *in_name,
                                       void *out_value,
                                       size_t in_size,
                                       size_t *out_size);

/* List the attribute names (listxattr(2) rules): each name followed by a
 * NUL, copied into the caller's buffer out_list; *out_size is the total
 * length. in_size 0 asks for the size only; ERANGE (with the size needed in
 * *out_size) if in_size is too small.
 * Errors: EINVAL, ENOENT, ERANGE. */
PROXYFS_API int proxyfs_list_xattr(mount_handle_t *in_mount_handle,
                                   uint64_t in_inode_number,
                                   char *out_list,
                                   size_t in_size,
                                   size_t *out_size);
PROXYFS_API int proxyfs_list_xattr_path(mount_handle_t *in_mount_handle,
                                        const char *in_fullpath,
                                        char *out_list,
                                        size_t in_size,
                                        size_t *out_size);

/* Set the attribute in_name to the in_size bytes at in_value (up to 64 KiB;
 * in_value may be NULL if in_size is 0). in_flags: 0, PROXYFS_XATTR_CREATE
 * or PROXYFS_XATTR_REPLACE.
 * Errors: EINVAL, ENOENT, EEXIST (CREATE), ENODATA (REPLACE), ERANGE/E2BIG
 * (too long), EROFS. */
PROXYFS_API int proxyfs_set_xattr(mount_handle_t *in_mount_handle,
                                  uint64_t in_inode_number,
                                  const char *in_name,
                                  const void *in_value,
                                  size_t in_size,
                                  int in_flags);
PROXYFS_API int proxyfs_set_xattr_path(mount_handle_t *in_mount_handle,
                                       const char *in_fullpath,
                                       const char *in_name,
                                       const void *in_value,
                                       size_t in_size,
                                       int in_flags);

/* Remove the attribute in_name.
 * Errors: EINVAL, ENOENT, ENODATA (no such attribute), EROFS. */
PROXYFS_API int proxyfs_remove_xattr(mount_handle_t *in_mount_handle,
                                     uint64_t in_inode_number,
                                     const char *in_name);
PROXYFS_API int proxyfs_remove_xattr_path(mount_handle_t *in_mount_handle,
                                          const char *in_fullpath,
                                          const char *in_name);

#ifdef __cplusplus
}
#endif

#endif /* PROXYFS_H */
