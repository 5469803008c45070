/*
 * internal.h - declarations shared by the libproxyfs sources. Nothing here is
 * exported: the library is built with -fvisibility=hidden and a version
 * script, so only the PROXYFS_API functions of proxyfs.h are visible.
 *
 * Layers, bottom up:
 *   jsonrpc.c   JSON-RPC 2.0 codec: request framing, reply decoding (no I/O)
 *   binproto.c  binary channel codec: headers, stat records, READDIR_PLUS
 *               entries (no I/O)
 *   conn.c      one connection: connect, pipelined send, a reader thread that
 *               matches replies to pending calls by id
 *   direct.c    sockets a synchronous binary call checks out and reads its
 *               own reply from (no reader thread hand-off)
 *   pool.c      the pools of connections (one per server address, in a
 *               registry of slots), fork handling, the retry worker, and
 *               the retrying call loops used by the API
 *   mount.c     mount handles: mount, unmount, remount after a daemon restart
 *   api.c       the synchronous API functions
 *   readdir.c   readdir/readdir_plus served from cached batches
 *   async.c     proxyfs_{read,write}_{send,recv}, proxyfs_async_cancel
 *   handles.c   open handles, opened again after a remount
 *   locks.c     fcntl and flock locks on handles, reclaimed after a remount
 *   util.c      errors, clocks, configuration
 *
 * Lock order (outer first): mounts list (pfs_mounts_lock) -> mount handle
 * lock (mh->lock) -> pool registry (g_state.lock) -> connection write lock
 * (c->wlock) -> connection lock (c->lock); the async registry lock ->
 * an async request's cancel lock (a->cancel.lock), the worker lock (p->wl)
 * (proxyfs_async_cancel); the cancel lock, the worker lock and the direct
 * sockets' lock (p->dl) are leaves. So are the handle table's lock
 * (handles.c) and, after it, the lock waiters' lock (locks.c): nothing
 * else is taken while they are held. No lock is held while a callback
 * runs.
 */
#ifndef PROXYFS_INTERNAL_H
#define PROXYFS_INTERNAL_H

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../proxyfs.h"

/* ---------------------------------------------------------------- util.c */

#define PFS_DEFAULT_SERVER "127.0.0.1:9450"
#define PFS_DEFAULT_TIMEOUT_MS 30000u
#define PFS_MAX_ADDR 512

/* Internal outcomes of one attempt, besides 0 and positive errnos. */
#define PFS_NOTSENT (-1) /* nothing reached the server: safe to retry */
#define PFS_LOST (-2)    /* sent, but the connection broke before the reply */
/* The daemon refused the connection's token (auth), or the token could not
 * be read: nothing was sent, and retrying does not help (EACCES). */
#define PFS_REFUSED (-4)

/* A deadline that never passes: an attempt that waits at the server for as
 * long as it takes (F_SETLKW, blocking flock). */
#define PFS_NO_DEADLINE UINT64_MAX

/* Every public function saves errno on entry and restores it on exit. */
#define PFS_API_ENTER()          \
    int pfs_saved_errno_ = errno; \
    pfs_clear_error()
#define PFS_API_RETURN(rc)            \
    do {                              \
        int pfs_rc_ = (rc);           \
        errno = pfs_saved_errno_;     \
        return pfs_rc_;               \
    } while (0)

void pfs_clear_error(void);
/* Records a detail for proxyfs_last_error() and returns code. */
int pfs_set_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The ENOENT -> EBADF mapping of read, write and flush: rc, or EBADF with
 * a last error that says what happened (the inode is gone) rather than
 * the server's "no such file or directory". */
int pfs_gone(uint64_t ino, int rc);

uint64_t pfs_now_ms(void);
/* Sleeps for ms milliseconds (EINTR-safe, errno-preserving). */
void pfs_sleep_ms(uint64_t ms);
/* Converts a CLOCK_MONOTONIC deadline in ms into a timespec. */
void pfs_deadline_ts(uint64_t deadline_ms, struct timespec *ts);
/* Initializes a condition variable that waits on CLOCK_MONOTONIC. */
int pfs_cond_init(pthread_cond_t *c);

/* Copies the configured server address into buf (size PFS_MAX_ADDR). */
void pfs_config_server(char *buf);
/* Copies fixed (a pool's own address, proxyfs_mount_server) into buf, or
 * the configured address if fixed is NULL. */
void pfs_server_addr(const char *fixed, char *buf);
uint64_t pfs_config_timeout_ms(void);

const char *pfs_errno_name(int e);

/* ------------------------------------------------------------ jsonrpc.c */

/* Builds a framed request "Content-Length: N\r\n\r\n{...}". params is
 * borrowed. Returns a malloc()ed buffer and its length, or NULL (ENOMEM). */
char *pfs_json_encode_request(uint64_t id, const char *method,
                              const json_t *params, size_t *out_len);

/* Parses the header block hdr[0..len) (up to and including the blank line)
 * and returns the Content-Length in *out. 0 or EPROTO. */
int pfs_json_parse_header(const char *hdr, size_t len, size_t *out);

/* Decodes a reply body. On success *out_reply is the reply object (the
 * caller owns it) and *out_id its id; *out_has_id is false for "id":null.
 * Returns 0 or EPROTO. */
int pfs_json_decode_reply(const char *body, size_t len, json_t **out_reply,
                          uint64_t *out_id, bool *out_has_id);

/* Splits a reply into result or error. Returns 0 with *out_result borrowed
 * from reply, or the positive errno of the error reply, with *out_bad_mount
 * set when the error has "reason":"bad_mount". The error message is
 * recorded with pfs_set_error. */
int pfs_json_reply_status(json_t *reply, json_t **out_result,
                          bool *out_bad_mount);
/* The error.data.reason string of an error reply ("bad_mount", "grace",
 * "no_grace"), borrowed from reply, or NULL. */
const char *pfs_json_reply_reason(const json_t *reply);

/* Reads a stat object into *st. Returns 0 or EPROTO. */
int pfs_json_to_stat(const json_t *obj, proxyfs_stat_t *st);
/* Typed getters of a member: return 0 or EPROTO. */
int pfs_json_get_u64(const json_t *obj, const char *key, uint64_t *out);
int pfs_json_get_i64(const json_t *obj, const char *key, int64_t *out);
json_t *pfs_json_timespec(const proxyfs_timespec_t *ts);
/* Standard base64 with padding. encode returns a malloc()ed string or NULL;
 * decode returns 0 with a malloc()ed *out, ENOMEM or EPROTO. */
char *pfs_b64_encode(const uint8_t *in, size_t len);
int pfs_b64_decode(const char *in, uint8_t **out, size_t *out_len);

/* ----------------------------------------------------------- binproto.c */

#define PFS_BIN_REQ_HDR 48
#define PFS_BIN_REP_HDR 32
#define PFS_BIN_OP_READ 1
#define PFS_BIN_OP_WRITE 2
#define PFS_BIN_OP_LOOKUP 3       /* inode = dir, payload = name -> stat */
#define PFS_BIN_OP_GET_STAT 4     /* inode -> stat */
#define PFS_BIN_OP_CREATE 5       /* inode = dir, offset = mode, name -> stat */
#define PFS_BIN_OP_UNLINK 6       /* inode = dir, payload = name */
#define PFS_BIN_OP_READDIR_PLUS 7 /* offset = prev cookie, length = max */
#define PFS_BIN_OP_FLUSH 8        /* inode */
#define PFS_BIN_OP_LOOKUP_CI 9    /* inode = dir, name -> stat, real name */
#define PFS_BIN_OP_AUTH 10        /* payload = token; no reply payload */
/* payload = max (u32), names (u8 len + name) -> READDIR_PLUS entries, each
 * followed by its xattr block */
#define PFS_BIN_OP_READDIR_PLUS_XATTR 11
#define PFS_BIN_OP_OPEN 12        /* offset = access mode | reclaim -> fh, stat */
#define PFS_BIN_OP_CLOSE 13       /* offset = fh */
#define PFS_BIN_OP_LOCK 14        /* payload = fh, start, len, cmd, type, ... */
#define PFS_BIN_OP_SETATTR 15     /* payload = mask + fields (88) -> stat */
#define PFS_BIN_OP_GET_XATTR 16   /* payload = name -> value */
#define PFS_BIN_OP_SET_XATTR 17   /* offset = flags, payload = len, name, value */
#define PFS_BIN_OP_LIST_XATTR 18  /* -> names, each NUL-terminated */
/* inode = dir, offset = mode | access mode << 32, name -> fh, stat */
#define PFS_BIN_OP_CREATE_OPEN 19
#define PFS_BIN_OP_MAX 19
#define PFS_BIN_OPEN_RECLAIM 0x100u
#define PFS_BIN_SETATTR_LEN 88
#define PFS_BIN_XATTR_NAMES_MAX 16
/* Request flag: an identity block follows the header (per-call identity):
 * uid u32, gid u32, ngroups u16, reserved u16, then ngroups u32. */
#define PFS_BIN_REQ_IDENTITY 2u
#define PFS_MAX_GROUPS 32
#define PFS_BIN_ID_MAX (12 + 4 * PFS_MAX_GROUPS)
/* Request flag: an 8-byte server handle follows the header and the
 * identity block (I/O through a handle: READ, WRITE, FLUSH). */
#define PFS_BIN_REQ_HANDLE 4u
/* Room for a request header, its identity block and its handle. */
#define PFS_BIN_REQ_MAX (PFS_BIN_REQ_HDR + PFS_BIN_ID_MAX + 8)
#define PFS_BIN_FLAG_BAD_MOUNT 1u
#define PFS_BIN_STAT 120         /* stat record: 15 little-endian u64 */
/* Request flag: stat records of PFS_BIN_STAT_EXT bytes (+ blocks, blksize)
 * in LOOKUP, GET_STAT, CREATE and READDIR_PLUS replies. */
#define PFS_BIN_REQ_STAT_EXT 1u
#define PFS_BIN_STAT_EXT 136
#define PFS_BIN_MAX_NAME 4096    /* larger name payloads break the stream */
/* READDIR_PLUS entry: cookie, inode, type, namelen, name, stat record */
#define PFS_BIN_DIRENT_FIXED (18 + PFS_BIN_STAT)

typedef struct {
    uint16_t op;
    uint64_t id;
    uint64_t mount_id;
    uint64_t inode;
    uint64_t offset;
    uint32_t length;
    uint32_t flags; /* 0 or PFS_BIN_REQ_STAT_EXT */
    uint64_t fh;    /* a server handle (PFS_BIN_REQ_HANDLE), or 0 */
} pfs_bin_req_t;

typedef struct {
    uint16_t op;
    uint64_t id;
    uint32_t err;
    uint32_t flags;
    uint32_t length;
} pfs_bin_rep_t;

void pfs_bin_encode_request(const pfs_bin_req_t *r, uint8_t out[PFS_BIN_REQ_HDR]);

/* A per-call identity (proxyfs_set_thread_identity). */
typedef struct {
    bool set; /* false: the mount's identity */
    uint32_t uid, gid;
    uint32_t ngroups;
    uint32_t groups[PFS_MAX_GROUPS];
} pfs_ident_t;

/* The calling thread's identity (all zero: none). */
extern __thread pfs_ident_t pfs_thread_ident;
bool pfs_ident_equal(const pfs_ident_t *a, const pfs_ident_t *b);
/* Encodes r's header, then id's identity block if id is set (adding
 * PFS_BIN_REQ_IDENTITY to the flags), then r->fh if not 0 (adding
 * PFS_BIN_REQ_HANDLE). Returns the bytes written. */
size_t pfs_bin_encode_request_as(const pfs_bin_req_t *r, const pfs_ident_t *id,
                                 uint8_t out[PFS_BIN_REQ_MAX]);
/* Adds id as the member "as" of params if id is set. 0 or ENOMEM. */
int pfs_json_set_as(json_t *params, const pfs_ident_t *id);
void pfs_bin_encode_reply(const pfs_bin_rep_t *r, uint8_t out[PFS_BIN_REP_HDR]);
int pfs_bin_decode_request(const uint8_t in[PFS_BIN_REQ_HDR], pfs_bin_req_t *r);
/* Returns 0 or EPROTO (bad magic, version or opcode). */
int pfs_bin_decode_reply(const uint8_t in[PFS_BIN_REP_HDR], pfs_bin_rep_t *r);
void pfs_bin_encode_stat(const proxyfs_stat_t *st, uint8_t out[PFS_BIN_STAT]);
void pfs_bin_decode_stat(const uint8_t in[PFS_BIN_STAT], proxyfs_stat_t *st);
/* The extended record (PFS_BIN_STAT_EXT bytes: + blocks, blksize). */
void pfs_bin_encode_stat_ext(const proxyfs_stat_t *st, uint8_t out[PFS_BIN_STAT_EXT]);
void pfs_bin_decode_stat_ext(const uint8_t in[PFS_BIN_STAT_EXT], proxyfs_stat_t *st);

typedef struct pfs_dent pfs_dent_t;
/* READDIR_PLUS reply payloads: the eof byte, then entries. count checks a
 * whole payload (every entry complete, names 1..255 bytes without NUL)
 * and returns 0 with *eof and the number of entries, or EPROTO. decode
 * reads one entry of a checked payload into *d and returns its size. */
int pfs_bin_count_dirents(const uint8_t *in, size_t len, bool *eof, size_t *n);
size_t pfs_bin_decode_dirent(const uint8_t *in, pfs_dent_t *d);
/* The same for entries whose stat records are statlen bytes
 * (PFS_BIN_STAT or PFS_BIN_STAT_EXT). */
int pfs_bin_count_dirents_ext(const uint8_t *in, size_t len, size_t statlen,
                              bool *eof, size_t *n);
size_t pfs_bin_decode_dirent_ext(const uint8_t *in, size_t statlen,
                                 pfs_dent_t *d);
/* Appends one entry (for tests); returns its size. */
size_t pfs_bin_encode_dirent(const pfs_dent_t *d, uint8_t *out);
/* READDIR_PLUS_XATTR: an entry's xattr block (errno u32, names length u32,
 * names, then per requested name errno u32, length u32, value). Returns
 * the block's size if avail bytes at in hold a well-formed block for
 * nnames values (names NUL-terminated, none empty), else 0. */
size_t pfs_bin_xattr_block_size(const uint8_t *in, size_t avail, size_t nnames);
/* Checks a READDIR_PLUS_XATTR reply payload (as count_dirents_ext, each
 * entry followed by a block for nnames values). */
int pfs_bin_count_dirents_xattr(const uint8_t *in, size_t len, size_t statlen,
                                size_t nnames, bool *eof, size_t *n);
/* Builds the caller's proxyfs_entry_xattrs_t from a checked block and the
 * request's names (xkey: each a length byte and the name); NULL: ENOMEM. */
proxyfs_entry_xattrs_t *pfs_bin_build_xattrs(const uint8_t *blk,
                                             const uint8_t *xkey,
                                             size_t xkeylen, size_t nnames);

/* --------------------------------------------------------------- conn.c */

enum pfs_conn_kind { PFS_CONN_JSON = 1, PFS_CONN_BIN = 2 };

#define PFS_MAX_BIN_REPLY (16u * 1024 * 1024) /* metadata reply payloads */

typedef struct pfs_call pfs_call_t;

/* The cancel state of an async request (proxyfs_async_cancel, async.c).
 * cancelled is only set, with lock held (and the async registry's lock),
 * and read with __atomic loads (pfs_is_cancelled). The reader thread
 * writes a READ reply's payload into the caller's buffer only in pieces,
 * each with lock held and after checking cancelled (a non-blocking recv;
 * the wait for data is outside the lock), and skips the rest once it is
 * set: no byte lands in the buffer after cancelling returns, and
 * cancelling never waits for the network. */
typedef struct {
    pthread_mutex_t lock;
    bool cancelled;
} pfs_cancel_t;

static inline bool pfs_is_cancelled(pfs_cancel_t *k)
{
    return __atomic_load_n(&k->cancelled, __ATOMIC_ACQUIRE);
}

/* One request in flight. The submitter owns it; while it is pending on a
 * connection the connection's reader may complete it. done() is called
 * exactly once per successful pfs_conn_submit, without locks held. */
struct pfs_call {
    pfs_call_t *next, *prev; /* pending list of the connection */
    uint64_t id;
    int status; /* 0: reply below; PFS_NOTSENT, PFS_LOST, ETIMEDOUT */
    bool pending;
    bool is_async;
    uint64_t deadline_ms; /* async calls: expired by the worker */
    /* JSON reply (owned by the call once set) */
    json_t *reply;
    /* binary reply */
    pfs_bin_rep_t brep;
    uint8_t *rbuf; /* payload destination (READ data, metadata reply) */
    size_t rcap;
    /* ralloc: the reader malloc()s rbuf for a payload larger than rcap (up
     * to PFS_MAX_BIN_REPLY); the submitter frees rbuf if it changed. */
    bool ralloc;
    /* async requests: their cancel state (else NULL). A cancelled call is
     * not sent (pfs_conn_submit: PFS_NOTSENT), its payload is not written
     * (see pfs_cancel_t), and the worker takes it off the pending list
     * (pfs_conn_collect_expired). */
    pfs_cancel_t *cancel;
    void (*done)(pfs_call_t *call);
    void *arg;
};

/* A pool's credentials and transport security (its slot owns them). */
typedef struct {
    char *token;   /* NULL: the process's default (PROXYFS_TOKEN...) */
    bool tls;
    char *tls_ca, *tls_cert, *tls_key; /* NULL: system CAs, no client cert */
    void *tls_ctx; /* SSL_CTX, when tls */
} pfs_sec_t;

typedef struct pfs_conn {
    int kind;
    const char *addr;      /* the pool's address; NULL: the configured one */
    unsigned *gw;          /* the pool's gateway in use (pfs_connect_gw) */
    const pfs_sec_t *sec;  /* the pool's token and TLS */
    pthread_mutex_t wlock; /* serializes writes; taken before lock */
    pthread_mutex_t lock;  /* fd, shutdown, pending list */
    pthread_cond_t cond;   /* reader waits here for a connection */
    int fd;
    bool shutdown;
    /* The daemon refused this connection (max_connections: an EAGAIN reply,
     * then the close); the requests it did not answer were not run. Read
     * and written by the reader thread only. */
    bool refused;
    pfs_call_t *head, *tail;
    /* The async call whose request is being written (under wlock): it is
     * not expired or cancelled until the write ends, so that its callback
     * never runs while the library still reads a write's buffer. */
    pfs_call_t *sending;
    pthread_t reader;
    bool reader_started;
    /* reader's input buffer */
    char *buf;
    size_t bcap, blen, bpos;
} pfs_conn_t;

int pfs_conn_init(pfs_conn_t *c, int kind, const char *addr,
                  unsigned *gw, const pfs_sec_t *sec);
/* Stops the reader, closes the socket, fails anything pending. */
void pfs_conn_destroy(pfs_conn_t *c);
/* In a forked child: forget the parent's connection without touching its
 * threads (closes the fd copy, frees memory). */
void pfs_conn_abandon(pfs_conn_t *c);
/* Sends iov on the connection (connecting first if needed) and registers
 * call as pending. Returns 0 when the call will be completed through
 * call->done (also on later failure), else PFS_NOTSENT (done never called). */
int pfs_conn_submit(pfs_conn_t *c, pfs_call_t *call, const void *a,
                    size_t alen, const void *b, size_t blen);
/* (pfs_conn_submit also returns PFS_REFUSED, done never called, when a
 * new connection's auth was refused.) */
/* Removes call from the pending list. Returns true if it was pending (the
 * caller owns it again, done will not be called), false if the reader has
 * taken it (done is called or about to be). */
bool pfs_conn_cancel(pfs_conn_t *c, pfs_call_t *call);
/* Removes async calls whose deadline passed, or that were cancelled, into
 * *out (linked by next), but not one whose request is being written. */
void pfs_conn_collect_expired(pfs_conn_t *c, uint64_t now, pfs_call_t **out);
/* Opens a socket to addr. Returns an fd, or -1 with the error recorded. */
int pfs_connect_addr(const char *addr, uint64_t timeout_ms);
/* Writes a then b (blen may be 0) completely. Returns 0 or an errno. */
int pfs_send_all(int fd, const void *a, size_t alen, const void *b,
                 size_t blen);

/* --------------------------------------------------------------- auth.c */

#define PFS_MAX_TOKEN 4096 /* the binary channel's limit on AUTH payloads */

/* Opens a socket to addr for a connection of kind (PFS_CONN_JSON or
 * PFS_CONN_BIN), through TLS if sec says so, and, if the pool has a token
 * (sec's, else the process's default: PROXYFS_TOKEN, PROXYFS_TOKEN_FILE),
 * authenticates it before returning it. Returns 0 with *out_fd (close it
 * with pfs_sock_close), PFS_NOTSENT (cannot connect, or the exchange
 * broke: retry) or PFS_REFUSED (the token or the TLS handshake was
 * refused, or the token cannot be read); the error is recorded. */
int pfs_connect_auth(const char *addr, const pfs_sec_t *sec, int kind,
                     uint64_t timeout_ms, int *out_fd);

/* ---------------------------------------------------------------- tls.c */

/* Opens a connection as pfs_connect_auth does, to the pool address fixed
 * (NULL: the configured one), which may be a comma-separated list of
 * gateways of one volume: it connects to entry *gw (taken modulo the
 * number of entries) and, when nothing answers there (PFS_NOTSENT), moves
 * *gw to the next entry (unless another thread moved it already) and
 * tries that, each entry at most once. So all the connections of a pool
 * follow one gateway until it dies. */
int pfs_connect_gw(const char *fixed, unsigned *gw, const pfs_sec_t *sec,
                   int kind, uint64_t timeout_ms, int *out_fd);
/* The number of entries in the address list addr (at least 1), and entry
 * i of it (trimmed of spaces) into buf of size PFS_MAX_ADDR. */
unsigned pfs_addr_count(const char *addr);
void pfs_addr_entry(const char *addr, unsigned i, char *buf);

/* An SSL_CTX verifying servers with ca (NULL: the system's CAs) and
 * presenting cert/key if cert is not NULL. 0 or EINVAL, ENOMEM (recorded). */
int pfs_tls_ctx_new(const char *ca, const char *cert, const char *key,
                    void **out_ctx);
void pfs_tls_ctx_free(void *ctx);
/* Makes TLS on the connected socket fd to addr (HOST:PORT; the server's
 * certificate must name HOST) and returns in *out_fd the library's end of
 * a relay (see tls.c). fd is consumed. 0, PFS_NOTSENT or PFS_REFUSED (a
 * certificate or handshake refusal: EACCES), recorded. */
int pfs_tls_connect(int fd, void *ctx, const char *addr, uint64_t timeout_ms,
                    int *out_fd);
/* Whether the relay of the library's end fd ended on a TLS error (a
 * refused client certificate, after a TLS 1.3 handshake); if so the error
 * (EACCES) is recorded. */
bool pfs_tls_failed(int fd);
/* Closes a socket of the library: a TLS relay's end also ends its relay. */
void pfs_sock_close(int fd);
void pfs_tls_atfork_prepare(void);
void pfs_tls_atfork_parent(void);
void pfs_tls_atfork_child(void);
/* Reads the token on the first line of path into *out (malloc()ed).
 * 0, or ENOENT, EACCES, EINVAL (empty, too long), ENOMEM (recorded). */
int pfs_token_read_file(const char *path, char **out);

/* --------------------------------------------------------------- pool.c */

#define PFS_POOL_JSON 2
#define PFS_POOL_BIN 2
#define PFS_POOL_DIRECT 8
#define PFS_MAX_LOST 5 /* attempts lost in flight before EIO */

typedef struct pfs_async pfs_async_t;

/* A binary-channel socket that one synchronous call at a time checks out,
 * sends on and reads its own reply from (direct.c). */
typedef struct {
    int fd;          /* -1: not connected */
    bool busy;       /* checked out */
    unsigned gen;    /* pool's dgen when connected */
    uint64_t rcvtimeo_ms; /* SO_RCVTIMEO currently set */
} pfs_direct_t;

typedef struct pfs_pool {
    pid_t pid;
    const char *addr; /* the slot's address; NULL: the configured one */
    /* The index, in the address list, of the gateway the pool's
     * connections go to (atomic; see pfs_connect_gw). */
    unsigned gw;
    const pfs_sec_t *sec; /* the slot's token and TLS */
    pfs_conn_t json[PFS_POOL_JSON];
    pfs_conn_t bin[PFS_POOL_BIN];
    unsigned rr_json, rr_bin; /* round robin (atomic) */
    uint64_t next_id;         /* request ids (atomic) */
    /* retry worker */
    pthread_mutex_t wl;
    pthread_cond_t wc;
    bool wstop;
    bool wwake; /* pfs_pool_wake: scan again before waiting */
    bool wstarted;
    pthread_t worker;
    pfs_async_t *wq; /* async ops waiting for a retry */
    /* direct sockets of synchronous binary calls (direct.c) */
    pthread_mutex_t dl;
    pfs_direct_t direct[PFS_POOL_DIRECT];
    unsigned dgen; /* bumped when a direct socket breaks */
} pfs_pool_t;

/* The registry of pools: one slot per server address (and one for the
 * process-wide address of proxyfs_set_server / PROXYFS_SERVER), holding
 * the number of mount handles that use it and its pool. A slot outlives
 * its pool: the pool is created on first use and, in a child after fork,
 * created again; the slot goes with its last user. */
typedef struct pfs_pool_slot pfs_pool_slot_t;

/* Returns the slot's pool (creating it, and replacing a parent's pool
 * after fork) or NULL (ENOMEM, recorded). The caller holds a mount handle
 * of the slot, so the pool is not released under it. */
pfs_pool_t *pfs_pool_get(pfs_pool_slot_t *s);
/* Counts a mount handle as a user of the pool of addr (NULL: the
 * process-wide address; otherwise compared as a string) and returns its
 * slot, or NULL (ENOMEM, recorded). The last release of a slot destroys
 * its pool (closing its connections, joining its threads). */
pfs_pool_slot_t *pfs_pool_acquire(const char *addr);
/* The same for the pool of addr with token and TLS settings sec (borrowed;
 * NULL: none); pools are told apart by the address and all of sec. Returns
 * 0 with *out, or ENOMEM, EINVAL (TLS files; recorded). */
int pfs_pool_acquire_sec(const char *addr, const pfs_sec_t *sec,
                         pfs_pool_slot_t **out);
void pfs_pool_release(pfs_pool_slot_t *s);
pfs_conn_t *pfs_pool_json_conn(pfs_pool_t *p);
pfs_conn_t *pfs_pool_bin_conn(pfs_pool_t *p);
uint64_t pfs_pool_new_id(pfs_pool_t *p);
/* ------------------------------------------------------------- direct.c */

#define PFS_BUSY (-3) /* every direct socket is checked out */

void pfs_direct_init(pfs_pool_t *p);
/* Closes the direct sockets (none may be checked out). */
void pfs_direct_close(pfs_pool_t *p);
/* One binary call attempt on a checked-out direct socket: sends a then b
 * and reads the reply into call (brep, and the payload into rbuf with the
 * ralloc rule of pfs_call_t) in the calling thread, without the reader
 * thread hand-off of pfs_conn_submit. Returns 0 (reply in call),
 * PFS_NOTSENT, PFS_REFUSED, PFS_LOST, ETIMEDOUT, or PFS_BUSY when every direct socket
 * is in use (nothing was sent: use the pipelined connections). */
int pfs_direct_call(pfs_pool_t *p, pfs_call_t *call, const void *a,
                    size_t alen, const void *b, size_t blen,
                    uint64_t deadline_ms);

/* Queues an async op for the worker (retry after delay_ms; at once if it
 * is cancelled). */
void pfs_pool_queue_retry(pfs_pool_t *p, pfs_async_t *a, uint64_t delay_ms);
/* Wakes the worker (a request was cancelled: it collects it). */
void pfs_pool_wake(pfs_pool_t *p);

/* One JSON-RPC call attempt on the pool of slot s, waiting until
 * deadline (PFS_NO_DEADLINE: as long as it takes). Returns 0 with
 * *out_reply (caller owns), PFS_NOTSENT, PFS_LOST, ETIMEDOUT or ENOMEM. */
int pfs_json_call_once(pfs_pool_slot_t *s, const char *method,
                       const json_t *params, uint64_t deadline_ms,
                       json_t **out_reply);

/* A full JSON-RPC call on a mount: adds mount_id (if mh) to params,
 * retries with back-off across reconnects, remounts after bad_mount.
 * params is borrowed (and gets "mount_id" set). On success returns 0 and,
 * if out_result is not NULL, *out_result (caller owns, json_decref) is the
 * result. An error reply's errno is returned as the server sent it.
 * *out_uncertain (if not NULL) tells whether an attempt was lost in flight
 * (sent, then the connection broke before its reply), so that the server
 * may have run the call before the attempt that answered: a
 * non-idempotent call then applies the retry rule of PROTOCOL.md,
 * "Retries" (api.c). */
int pfs_rpc(mount_handle_t *mh, const char *method, json_t *params,
            bool *out_uncertain, json_t **out_result);
/* The same on mh's pool, with mh's timeout, but params as given (no
 * "mount_id" added) and no remount after bad_mount: for the mount call
 * itself and for calls on an explicit mount id (handles.c). */
/* pfs_rpc through the caller's handle fh of proxyfs_open: each attempt
 * sets "fh" to its server handle, "inode" to its inode and "mount_id" to
 * the mount it belongs to (EBADF, no attempt, without such a handle). */
int pfs_rpc_fh(mount_handle_t *mh, uint64_t fh, const char *method,
               json_t *params, json_t **out_result);
int pfs_rpc_nomount(mount_handle_t *mh, const char *method, json_t *params,
                    json_t **out_result);

/* -------------------------------------------------------------- retry.c */

/* The retry rule of every request (retry.c): a call keeps a pfs_retry_t
 * over its attempts and hands each attempt's outcome to pfs_retry_step. */
typedef enum {
    PFS_STEP_REPLY,   /* give the reply (success or the server's errno) */
    PFS_STEP_REMOUNT, /* bad mount: pfs_remount, then again at once */
    PFS_STEP_BACKOFF, /* not run, or lost: again after pfs_retry_delay */
    PFS_STEP_FAIL,    /* give up: pfs_retry_error */
} pfs_step_t;

typedef enum {
    PFS_WHY_NONE,
    PFS_WHY_UNREACHABLE, /* not sent, or lost in flight */
    PFS_WHY_BUSY,        /* EAGAIN: the request was not run */
    PFS_WHY_NO_REPLY,    /* the attempt timed out */
    PFS_WHY_LOST,        /* PFS_MAX_LOST attempts lost in flight */
    PFS_WHY_NOMEM,
    PFS_WHY_REFUSED,     /* the connection's token was refused */
} pfs_why_t;

typedef struct {
    uint64_t deadline_ms; /* the call's timeout, retries included */
    uint64_t delay_ms;    /* the next backoff: 10 ms doubling to 500 */
    unsigned lost;        /* attempts lost in flight */
    bool uncertain;       /* an attempt was lost in flight (see pfs_rpc) */
    /* EAGAIN is "not run, again later" (a reply of a data or metadata
     * call) rather than an answer (a lock conflict: locks.c). */
    bool busy_is_retry;
    pfs_why_t why;        /* why the last attempt did not give a reply */
} pfs_retry_t;

void pfs_retry_init(pfs_retry_t *r, uint64_t timeout_ms);
/* status: the attempt's transport outcome (0: a reply came, with
 * bad_mount and err from it; PFS_NOTSENT, PFS_LOST, ETIMEDOUT, ENOMEM). */
pfs_step_t pfs_retry_step(pfs_retry_t *r, int status, bool bad_mount,
                          int err);
/* The delay before the next attempt (and grows the one after). */
uint64_t pfs_retry_delay(pfs_retry_t *r);
bool pfs_retry_expired(const pfs_retry_t *r);
/* Sleeps the next delay (less if the deadline comes first); false if the
 * deadline has passed. */
bool pfs_retry_backoff(pfs_retry_t *r);
/* Records and returns the errno of a call that gives up, "what: why". */
int pfs_retry_error(const pfs_retry_t *r, const char *what);

/* Sleeps *delay ms (less if deadline_ms comes first) and doubles *delay up
 * to 500; false if the deadline has passed (pfs_retry_backoff, for the
 * lock calls' own waits). */
bool pfs_backoff(uint64_t *delay, uint64_t deadline_ms);

/* A synchronous binary read or write of at most max_io bytes. */
int pfs_bin_io(mount_handle_t *mh, int op, uint64_t ino, uint64_t off,
               uint8_t *buf, size_t len, size_t *out_len);
/* pfs_bin_io through the caller's handle fh of proxyfs_open (0: none). */
int pfs_bin_io_fh(mount_handle_t *mh, int op, uint64_t fh, uint64_t ino,
                  uint64_t off, uint8_t *buf, size_t len, size_t *out_len);
/* A write like pfs_bin_io's, with len split into pieces that are in
 * flight at once. */
#define PFS_STRIPE (256u * 1024)
#define PFS_STRIPE_MAX 8
int pfs_bin_write_striped(mount_handle_t *mh, uint64_t ino, uint64_t off,
                          uint8_t *buf, size_t len, size_t *out_len);

/* A binary call (LOOKUP .. FLUSH, and READ/WRITE through pfs_bin_io) on
 * a mount, under the retry rule of pfs_rpc (retry.c): reconnects, remount
 * after bad_mount; errnos are returned as the server sent them, with
 * uncertain set as pfs_rpc's *out_uncertain. */
typedef struct {
    uint16_t op;
    uint64_t ino;
    uint64_t off;
    uint32_t length;   /* header length field when there is no name */
    uint32_t flags;    /* request flags (PFS_BIN_REQ_STAT_EXT) */
    const char *name;  /* name payload (LOOKUP, CREATE, UNLINK) or NULL */
    size_t namelen;
    const uint8_t *payload; /* data payload (WRITE) when name is NULL */
    size_t paylen;
    uint64_t fh;       /* a handle of proxyfs_open to go through, or 0 */
    uint8_t *rbuf;     /* reply payload destination, rcap bytes */
    size_t rcap;
    bool ralloc;       /* a larger reply is malloc()ed */
    /* results */
    uint8_t *reply;    /* the payload: rbuf, or malloc()ed (free if != rbuf) */
    size_t rlen;       /* its length */
    bool uncertain;    /* an attempt was lost in flight (see pfs_rpc) */
    uint64_t mount_id; /* the mount id of the attempt that answered */
} pfs_bin_call_t;

/* Returns 0 or a positive errno (recorded). A name longer than
 * PFS_BIN_MAX_NAME is ENAMETOOLONG without a request. */
int pfs_bin_call(mount_handle_t *mh, pfs_bin_call_t *bc);

/* ------------------------------------------------------------ binmeta.c */

/* The per-file calls on the binary channel (opcodes 12-18), under
 * pfs_bin_call's retry rule; each returns 0 or a positive errno
 * (recorded). */
/* OPEN: the server's handle, and the mount id it belongs to. */
int pfs_bin_open(mount_handle_t *mh, uint64_t ino, int acc, uint64_t *out_sfh,
                 uint64_t *out_mid);
/* CLOSE of server handle sfh; *uncertain: an attempt was lost in flight;
 * *out_mid: the mount id of the attempt that answered. */
int pfs_bin_close(mount_handle_t *mh, uint64_t sfh, bool *uncertain,
                  uint64_t *out_mid);
/* LOCK getlk on server handle sfh; the conflict in *out (type F_UNLCK:
 * none); *out_mid as pfs_bin_close's. */
int pfs_bin_getlk(mount_handle_t *mh, uint64_t sfh, short type, int64_t start,
                  int64_t len, const char *owner, proxyfs_lock_t *out,
                  uint64_t *out_mid);
int pfs_bin_setattr(mount_handle_t *mh, uint64_t ino, uint64_t mask,
                    const proxyfs_setattr_t *a, proxyfs_stat_t *out_stat);
/* GET_XATTR with get_xattr's size rules (in_size 0: the size only;
 * ERANGE for a smaller buffer). */
int pfs_bin_get_xattr(mount_handle_t *mh, uint64_t ino, const char *name,
                      void *value, size_t size, size_t *out_size);
/* SET_XATTR; *uncertain as pfs_bin_close's. name at most 255 bytes,
 * value at most 64 KiB (the caller sends others as JSON-RPC). */
int pfs_bin_set_xattr(mount_handle_t *mh, uint64_t ino, const char *name,
                      const void *value, size_t size, int flags,
                      bool *uncertain);
int pfs_bin_list_xattr(mount_handle_t *mh, uint64_t ino, char *list,
                       size_t size, size_t *out_size);

/* --------------------------------------------------------------- api.c */

/* A binary call whose reply is a stat record (LOOKUP, GET_STAT, CREATE):
 * 0 with *st, or a positive errno (recorded). *uncertain (if not NULL): an
 * attempt was lost in flight (see pfs_rpc). */
int pfs_bin_stat_call(mount_handle_t *mh, uint16_t op, uint64_t ino,
                      const char *name, uint64_t off, proxyfs_stat_t *st,
                      bool *uncertain);

/* What a create, mkdir or symlink makes, and where. */
typedef struct {
    const char *method;
    uint64_t type;       /* S_IFREG, S_IFDIR or S_IFLNK */
    uint64_t perm;       /* permission bits (not checked for symlinks) */
    const char *target;  /* symlink target, else NULL */
    uint64_t dir;        /* inode form: directory and name */
    const char *name;
    const char *path;    /* path form (name NULL) */
} pfs_newent_t;

/* The retry rule (PROTOCOL.md, "Retries") for a create, mkdir or symlink
 * that got EEXIST after an uncertain attempt: 0 with the entry's stat in
 * *out_st if it is what the call makes, else EEXIST or EIO (recorded). */
int pfs_newent_rule(mount_handle_t *mh, const pfs_newent_t *e,
                    proxyfs_stat_t *out_st);

/* ------------------------------------------------------------- mount.c */

#define PFS_DCACHE_SLOTS 4

/* One directory entry of a READDIR_PLUS batch. */
struct pfs_dent {
    char name[256];
    uint64_t ino;
    uint8_t type;
    int64_t cookie;
    proxyfs_stat_t st;
};

typedef struct {
    bool valid;
    bool eof;
    uint64_t dir;
    int64_t prev;   /* cookie the batch was fetched after */
    uint64_t gen;   /* mh->mutations when fetched */
    uint64_t when;  /* pfs_now_ms() when fetched */
    uint64_t used;  /* for LRU */
    size_t n;
    size_t last;    /* index of the entry served last (lookup hint) */
    pfs_ident_t ident; /* the identity that fetched it: served only to it */
    pfs_dent_t *ents;
    /* A READDIR_PLUS_XATTR batch: the names asked for (each a length byte
     * and the name; NULL for a READDIR_PLUS batch), the reply payload and
     * each entry's xattr block in it. */
    uint8_t *xkey;
    size_t xkeylen;
    size_t xcount;
    uint8_t *xraw;
    size_t *xoff;
} pfs_batch_t;

struct proxyfs_mount_handle {
    struct proxyfs_mount_handle *next; /* pfs_mounts list */
    pfs_pool_slot_t *pool; /* the pool of its server address */
    pthread_mutex_t lock; /* mount identity, async counter */
    pthread_cond_t cond;  /* async_inflight reached 0 */
    uint64_t mount_id;
    uint64_t root_inode;
    uint64_t max_io;
    uint64_t options;
    char *volume;
    char *user;
    uid_t uid;
    gid_t gid;
    uint32_t ngroups; /* supplementary groups of the mount */
    uint32_t groups[PFS_MAX_GROUPS];
    uint64_t act_uid; /* the uid the server acts as (mount's reply; root_squash) */
    unsigned async_inflight;
    uint64_t mutations; /* atomic: bumped by each changing call */
    uint32_t timeout_ms; /* atomic: the call timeout; 0: the process's */
    uint64_t lost_locks; /* atomic: locks that could not be reclaimed */
    /* The client instance this handle mounts as ("client"): random, the
     * same at every remount, on any gateway of a list, so that a gateway
     * knows the locks it left on another as its own. */
    char client[33];
    pthread_mutex_t dlock; /* readdir cache */
    pfs_batch_t dcache[PFS_DCACHE_SLOTS];
    uint64_t dclock;
};

extern pthread_rwlock_t pfs_mounts_lock;
extern mount_handle_t *pfs_mounts;

/* Returns true if mh is a live mount handle of this process. */
bool pfs_mount_valid(mount_handle_t *mh);
uint64_t pfs_mount_id(mount_handle_t *mh);
uint64_t pfs_mount_max_io(mount_handle_t *mh);
/* The call timeout of mh's calls (proxyfs_set_mount_timeout, else the
 * process-wide one); mh may be NULL (info.c). */
uint64_t pfs_mount_timeout_ms(mount_handle_t *mh);
/* Mounts again if the handle's mount id is still old_id. */
int pfs_remount(mount_handle_t *mh, uint64_t old_id, uint64_t deadline_ms);
void pfs_mount_changed(mount_handle_t *mh);
void pfs_mount_async_begin(mount_handle_t *mh);
void pfs_mount_async_end(mount_handle_t *mh);
void pfs_dcache_clear(mount_handle_t *mh);
/* ----------------------------------------------------------- locks.c */

#define PFS_LK_OWNER_MAX 64  /* bytes of an owner string */
#define PFS_LK_EOF ((uint64_t)1 << 63) /* end of a range to end of file */

/* One POSIX lock of an owner: the bytes [start, end), end PFS_LK_EOF for a
 * lock to end of file; type F_RDLCK or F_WRLCK. */
typedef struct {
    uint64_t start, end;
    short type;
} pfs_lk_range_t;

/* An owner's locks on one handle, as the server holds them: sorted by
 * start, disjoint, and ranges of one type that touch are merged. */
typedef struct {
    pfs_lk_range_t *r; /* malloc()ed, cap entries */
    size_t n, cap;
} pfs_lk_set_t;

/* Makes room for one change (cap >= n + 2, the most one change adds), so
 * that pfs_lk_apply does not allocate. 0 or ENOMEM (s unchanged). */
int pfs_lk_reserve(pfs_lk_set_t *s);
/* Sets the bytes [start, end) (start < end <= PFS_LK_EOF) to type:
 * F_RDLCK or F_WRLCK replace what the set held there, F_UNLCK removes it,
 * as fcntl(2) does (a lock over part of another is split, touching or
 * overlapping ranges of one type merge). 0, or ENOMEM (s unchanged) when
 * it needs room that pfs_lk_reserve did not make and none can be had. */
int pfs_lk_apply(pfs_lk_set_t *s, short type, uint64_t start, uint64_t end);
void pfs_lk_set_free(pfs_lk_set_t *s);

typedef struct pfs_lk_owner {
    struct pfs_lk_owner *next;
    char id[PFS_LK_OWNER_MAX + 1];
    pfs_lk_set_t set;
} pfs_lk_owner_t;

/* The locks a handle holds: POSIX locks per owner string, and its flock
 * (0, LOCK_SH or LOCK_EX). */
typedef struct {
    pfs_lk_owner_t *owners;
    short flock;
} pfs_lockset_t;

/* How many locks ls holds (each range, and the flock, counts one). */
size_t pfs_lockset_count(const pfs_lockset_t *ls);
void pfs_lockset_free(pfs_lockset_t *ls);
/* Re-takes the locks of ls with "reclaim": true on server handle sfh of
 * mount mid (the handle was just opened again after a remount). The locks
 * that cannot be re-taken are removed from ls and counted in
 * mh->lost_locks. Called without locks held. */
void pfs_locks_reclaim(mount_handle_t *mh, uint64_t mid, uint64_t sfh,
                       pfs_lockset_t *ls);
/* Counts every lock of ls as lost (its handle could not be opened again)
 * and frees them. */
void pfs_locks_lose(mount_handle_t *mh, pfs_lockset_t *ls);
/* fork(): the waiters' lock is held across it; the child forgets the
 * waits (their threads are the parent's). */
void pfs_locks_atfork_prepare(void);
void pfs_locks_atfork_parent(void);
void pfs_locks_atfork_child(void);

/* ---------------------------------------------------------- handles.c */

/* One handle of proxyfs_open. */
typedef struct pfs_fh {
    struct pfs_fh *next;
    mount_handle_t *mh;
    uint64_t fh;       /* the caller's handle: the server's first one */
    uint64_t sfh;      /* the server's current handle */
    uint64_t mount_id; /* the mount sfh belongs to */
    uint64_t ino;
    int acc;           /* O_RDONLY, O_WRONLY or O_RDWR */
    int lost;          /* an errno: could not be opened again */
    /* A thread is opening it again and reclaiming its locks (which it
     * took out of locks meanwhile). */
    bool reopening;
    pfs_lockset_t locks; /* the locks held through it (locks.c) */
} pfs_fh_t;

/* The handle table's lock, and a lookup made with it held. */
void pfs_handles_lock(void);
void pfs_handles_unlock(void);
pfs_fh_t *pfs_handle_find(mount_handle_t *mh, uint64_t fh);
/* Opens every handle of mh again on its current mount (after a remount)
 * and reclaims its locks; returns when no handle of mh is left to open
 * again, including those other threads were opening. */
void pfs_handles_reopen(mount_handle_t *mh);
/* The server's side of the caller's handle fh of mh, for one attempt of
 * a call through it: its current server handle, the mount id it belongs
 * to (the attempt's mount id: a stale one gets bad_mount, and the
 * remount opens the handle again) and its inode. 0, or EBADF (no such
 * handle) or the errno it was lost with (recorded). */
int pfs_handle_server(mount_handle_t *mh, uint64_t fh, uint64_t *out_mount_id,
                      uint64_t *out_sfh, uint64_t *out_ino);
/* Frees mh's handles (at unmount). */
void pfs_handles_forget(mount_handle_t *mh);
/* fork(): the handle table's lock is held across it. */
void pfs_handles_atfork_prepare(void);
void pfs_handles_atfork_parent(void);
void pfs_handles_atfork_child(void);

/* Thread-local: set while a user callback runs on this thread. */
extern __thread bool pfs_in_callback;

/* ------------------------------------------------------------- async.c */

struct pfs_async {
    pfs_async_t *hnext; /* registry chain */
    pfs_async_t *qnext; /* worker queue */
    void *req_id;
    int op;
    mount_handle_t *mh;
    uint64_t ino, off;
    uint64_t fh; /* the caller's handle to go through, or 0 */
    int fh_err;  /* the handle was closed or lost: the request fails so */
    uint8_t *buf;
    size_t len;
    proxyfs_done_callback_t cb;
    pfs_ident_t ident; /* the sender thread's identity at send time */
    pfs_call_t call;
    pfs_cancel_t cancel; /* proxyfs_async_cancel */
    pfs_pool_t *pool;
    pfs_retry_t retry; /* the retry rule's state over the attempts */
    uint64_t retry_at;
    uint64_t used_mount_id;
    bool need_remount;
    bool completed; /* result set; the callback may be running */
    pthread_t cb_thread;
    bool done;      /* the callback has returned */
    int status;
    size_t result;
};

/* Sends an async binary request (READ, WRITE or FLUSH; buf/len are the
 * data of READ and WRITE, NULL/0 for FLUSH) registered under req_id.
 * 0, or EINVAL, EEXIST, ENOMEM (nothing sent). ENOENT in the reply is
 * reported as EBADF. */
int pfs_async_send(mount_handle_t *mh, int op, uint64_t ino, uint64_t off,
                   uint8_t *buf, size_t len, void *req_id,
                   proxyfs_done_callback_t cb);
/* pfs_async_send through the caller's handle fh of proxyfs_open: EBADF
 * (nothing sent) if mh has no such handle. */
int pfs_async_send_fh(mount_handle_t *mh, int op, uint64_t fh, uint64_t off,
                      uint8_t *buf, size_t len, void *req_id,
                      proxyfs_done_callback_t cb);
/* Waits for the request req_id of opcode op and forgets it: 0 with its
 * status and result, or ENOENT (no such request of that opcode). */
int pfs_async_recv(int op, void *req_id, int *out_status, size_t *out_n);
/* Worker side: retry (or fail) an async op taken from the queue. */
void pfs_async_retry(pfs_pool_t *p, pfs_async_t *a);
/* After fork, in the child: forget every async request. */
void pfs_async_atfork_child(void);
void pfs_async_atfork_prepare(void);
void pfs_async_atfork_parent(void);
/* At unmount: drop completed requests of mh that nobody received. */
void pfs_async_forget_mount(mount_handle_t *mh);

#endif /* PROXYFS_INTERNAL_H */
