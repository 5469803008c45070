/*
 * vfs_proxyfs.c - a Samba VFS module (interface 47, Samba 4.17) that serves
 * a proxyfs volume through libproxyfs.
 *
 * smb.conf:
 *
 *   [share]
 *     path = /dir/in/the/volume
 *     vfs objects = proxyfs            (or: proxyfs acl_xattr ... in
 *                                       front of it; proxyfs is the last)
 *     proxyfs:volume  = NAME           default: the share's name
 *     proxyfs:server  = HOST:PORT | unix:/path   default: PROXYFS_SERVER,
 *                                       else libproxyfs's default; or a
 *                                       comma-separated list of gateways
 *                                       of one volume (failover)
 *     proxyfs:timeout = MS             call timeout of the share's mount
 *                                       (0: libproxyfs's default, 30 s)
 *     proxyfs:pathref handles = yes    also pin pathref (O_PATH) opens
 *                                       with a proxyfs_open handle
 *
 * The share's "path" is a path inside the volume. At connect the module
 * mounts the volume once per tree connect with the uid and gid of the
 * connecting session (its unix token), so new files are owned by that user,
 * and sets for the share: smbd async dosmode = no, kernel share modes = no,
 * kernel oplocks = no. ("kernel change notify" is
 * global in Samba 4.17: set it to no in [global], or smbd's inotify watches
 * the local directory of the same name as the share's path.)
 *
 * Design:
 *  - Each open fsp carries an extension (struct pfs_fh) with the inode
 *    number and, for every successful open, a proxyfs_open handle that pins
 *    the inode (an unlinked open file stays usable); close releases it.
 *    smbd gets an arbitrary fd number (PFS_FAKE_FD): every operation that
 *    would use a kernel fd is implemented here.
 *  - "at" calls resolve (dirfsp, name) to (directory inode, name); names
 *    relative to conn->cwd_fsp (fd AT_FDCWD) resolve against the
 *    directory the module tracks for chdir/getwd.
 *  - Async pread/pwrite/fsync use libproxyfs's read_send/write_send/
 *    flush_send. Their callback (a library thread) only queues the job under
 *    a mutex and writes to an eventfd that a tevent fd event of smbd's event
 *    loop watches; the event handler then calls *_recv (which returns at
 *    once) and completes the tevent request. smbd never waits on the network
 *    in its event loop for data I/O.
 *  - Byte-range locks: smbd's posix locking (posix locking = yes, Samba's
 *    default) mirrors SMB locks as proxyfsd's byte-range locks through
 *    lock/getlock (proxyfs_lock, one owner per fsp), so other gateways and
 *    clients of the volume see them.
 *  - Copy-chunk (offload read/write) copies inside proxyfsd with
 *    proxyfs_copy_range; MS-DFS links are "msdfs:" symlinks.
 *
 * See samba/README.md for the parameters, what is stubbed and the tests.
 */

#include "includes.h"
#include "smbd/smbd.h"
#include "auth.h"
#include "lib/util/tevent_unix.h"
#include "lib/util/tevent_ntstatus.h"
#include "smbd/globals.h"
#include "modules/offload_token.h"
#include "librpc/gen_ndr/ioctl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>

#include "proxyfs.h"

#undef DBGC_CLASS
#define DBGC_CLASS pfs_debug_class
static int pfs_debug_class = DBGC_VFS;

#define PFS_MODULE_NAME "proxyfs"
/* The fd smbd sees for an open fsp; arbitrary, never a kernel fd. */
#define PFS_FAKE_FD 0x50465344 /* "PFSD" */

/* --------------------------------------------------------------- types */

struct pfs_conn {
	mount_handle_t *mh;
	char *volume;
	uint64_t root_ino;
	char *cwd;	  /* canonical volume path of the current directory */
	uint64_t cwd_ino;
	char *share_path; /* canonical volume path of the share, at connect */
	uint64_t share_ino;
	uint64_t max_io;
	bool pathref_handles;
	uint64_t nhandles; /* proxyfs_open handles held (leak check) */
	uint64_t lost_locks; /* proxyfs_lost_locks already logged */
	/*
	 * The entry pfs_readdir returned last, with the stat of its
	 * readdir_plus batch. smbd opens a pathref of every entry it lists
	 * right after reading it (to read its DOS attributes): that openat
	 * takes the inode and stat from here instead of a lookup round trip.
	 * Used once, for PFS_RD_TTL_NS at most, and forgotten on any change
	 * made through this connection.
	 */
	struct {
		bool valid;
		uint64_t dir_ino;
		uint64_t ino;
		struct timespec when; /* CLOCK_MONOTONIC */
		proxyfs_stat_t st;
		char name[256];
	} rd;
	uint64_t rd_hits; /* openat served from rd (DBG_DEBUG at disconnect) */
	uint64_t gen;	  /* changes made through this process (pfs_rd_forget) */
	/*
	 * The extended attributes this connection knows for one inode, for
	 * PFS_RD_TTL_NS at most: a file it has just created has none (none),
	 * and the value it has just set (name, value) is the value. smbd
	 * reads user.DOSATTRIB back right after creating a file and after
	 * setting it, and again after the first write.
	 */
	struct {
		bool valid;
		bool none;	 /* no xattrs at all */
		uint64_t ino;
		struct timespec when;
		char name[64];
		size_t len;
		char value[256];
	} xc;
	uint64_t xc_hits;
	/*
	 * The extended attributes of the entry pfs_readdir returned last,
	 * from the same batch (proxyfs_readdir_plus_xattr): its xattr names
	 * and its user.DOSATTRIB. smbd reads both for every entry it lists
	 * (the DOS attributes, and the list for the EA size). Used for
	 * PFS_RD_TTL_NS at most, by the identity that listed, and forgotten
	 * on any change made through this connection.
	 */
	struct {
		proxyfs_entry_xattrs_t *x; /* NULL: none */
		uint64_t ino;
		uint64_t gen;
		uid_t uid;
		gid_t gid;
		struct timespec when;
	} lx;
	uint64_t lx_hits;
	/* The case-insensitive lookup of the last exact lookup that failed:
	 * smbd asks get_real_filename_at right after (dir_ino, name) is not
	 * found. Used once, within PFS_RD_TTL_NS. */
	struct {
		bool valid;
		bool found;
		uint64_t dir_ino;
		struct timespec when;
		char name[256];
		char real[256];
	} ci;
};

#define PFS_RD_TTL_NS 1000000000LL

struct pfs_fh {
	uint64_t ino;
	uint64_t fh;	  /* proxyfs_open handle, 0: none */
	int flags;	  /* open flags */
	bool is_dir;
	off_t pos;	  /* for lseek(SEEK_CUR) */
	bool have_stat;	  /* st is from the open and not yet used */
	/* a directory's st (from the open or the last fstat) stays good while
	 * this process changes nothing (pc->gen) and for PFS_RD_TTL_NS */
	uint64_t st_gen;
	struct timespec st_when;
	SMB_STRUCT_STAT st;
};

struct pfs_dir {
	struct files_struct *fsp;
	uint64_t ino;
	int64_t prev;	  /* cookie of the last entry returned; -1: start */
	struct dirent de;
};

/* A resolved "at" name: an entry (dir_ino, base) or a known inode. */
struct pfs_at {
	bool is_self;	  /* the name denotes self_ino itself ("", ".", "/") */
	uint64_t self_ino;
	uint64_t dir_ino;
	const char *base;
	char *path;	  /* full volume path (talloc), when it was built */
};

/* ------------------------------------------------------------- helpers */

/* Every proxyfs call runs as smbd's current identity: the session's user,
 * or root inside become_root() (vfs_acl_xattr writes security.NTACL so).
 * The library carries this thread's identity with each call and async
 * send (proxyfs_set_thread_identity); proxyfsd lets smbd, a root process,
 * act as anyone. At most 32 supplementary groups are sent (proxyfsd's
 * limit): a user in more is checked with the first 32. */
static void pfs_set_identity(connection_struct *conn)
{
	const struct security_unix_token *tok = get_current_utok(conn);
	uint32_t n = 0;
	int rc;

	if (tok != NULL) {
		n = tok->ngroups < 32 ? tok->ngroups : 32;
	}
	rc = proxyfs_set_thread_identity(get_current_uid(conn),
					 get_current_gid(conn), n,
					 tok != NULL ? tok->groups : NULL);
	if (rc != 0) {
		DBG_ERR("proxyfs: set identity: %s\n", strerror(rc));
	}
}

/* The connection's state; it also sets smbd's current identity for the
 * proxyfs calls that follow (every operation starts here). */
static struct pfs_conn *pfs_get_conn(struct vfs_handle_struct *handle)
{
	pfs_set_identity(handle->conn);
	return (struct pfs_conn *)handle->data;
}

static int pfs_fail(int err)
{
	errno = err;
	return -1;
}

static void pfs_ts_to_timespec(const proxyfs_timespec_t *in,
			       struct timespec *out)
{
	out->tv_sec = (time_t)(int64_t)in->sec;
	out->tv_nsec = (long)in->nsec;
}

static void pfs_stat_to_ex(const proxyfs_stat_t *ps, SMB_STRUCT_STAT *st)
{
	ZERO_STRUCTP(st);
	st->st_ex_dev = (dev_t)ps->dev;
	st->st_ex_ino = (ino_t)ps->ino;
	st->st_ex_mode = (mode_t)ps->mode;
	st->st_ex_nlink = (nlink_t)ps->nlink;
	st->st_ex_uid = (uid_t)ps->uid;
	st->st_ex_gid = (gid_t)ps->gid;
	st->st_ex_rdev = 0;
	st->st_ex_size = (off_t)ps->size;
	pfs_ts_to_timespec(&ps->atim, &st->st_ex_atime);
	pfs_ts_to_timespec(&ps->mtim, &st->st_ex_mtime);
	pfs_ts_to_timespec(&ps->ctim, &st->st_ex_ctime);
	pfs_ts_to_timespec(&ps->crtim, &st->st_ex_btime);
	st->st_ex_blksize = ps->blksize != 0 ? (blksize_t)ps->blksize : 4096;
	st->st_ex_blocks = (blkcnt_t)ps->blocks;
	st->st_ex_flags = 0;
	st->st_ex_iflags = 0; /* btime is the real creation time */
}

/*
 * Append the components of rel to the absolute, normalized path in *buf,
 * handling "." and ".." lexically. *buf is talloc'ed; the result is
 * absolute, without a trailing slash (except "/").
 */
static char *pfs_join(TALLOC_CTX *mem_ctx, const char *base, const char *rel)
{
	size_t cap = strlen(base) + strlen(rel) + 3;
	char *out = talloc_array(mem_ctx, char, cap);
	size_t len = 0;
	const char *parts[2] = { base, rel };
	int i;

	if (out == NULL) {
		return NULL;
	}
	out[len++] = '/';
	out[len] = '\0';
	for (i = 0; i < 2; i++) {
		const char *p = parts[i];
		if (i == 1 && p[0] == '/') {
			len = 1; /* absolute rel restarts at the root */
			out[len] = '\0';
		}
		while (*p != '\0') {
			const char *e;
			size_t n;
			while (*p == '/') {
				p++;
			}
			if (*p == '\0') {
				break;
			}
			e = strchrnul(p, '/');
			n = e - p;
			if (n == 1 && p[0] == '.') {
				/* nothing */
			} else if (n == 2 && p[0] == '.' && p[1] == '.') {
				while (len > 1 && out[len - 1] != '/') {
					len--;
				}
				if (len > 1) {
					len--; /* the slash */
				}
				out[len] = '\0';
			} else {
				if (len > 1) {
					out[len++] = '/';
				}
				memcpy(out + len, p, n);
				len += n;
				out[len] = '\0';
			}
			p = e;
		}
	}
	return out;
}

/* The fsp's extension, if it is an fsp this module opened. */
static struct pfs_fh *pfs_fetch_fh(struct vfs_handle_struct *handle,
				   const struct files_struct *fsp)
{
	if (fsp == NULL) {
		return NULL;
	}
	return (struct pfs_fh *)VFS_FETCH_FSP_EXTENSION(
		handle, discard_const_p(struct files_struct, fsp));
}

/* The fsp's file changes: the stat of its open is stale. */
static void pfs_rd_forget(struct pfs_conn *pc)
{
	if (pc != NULL) {
		pc->rd.valid = false;
		pc->ci.valid = false;
		pc->gen++;
		free(pc->lx.x);
		pc->lx.x = NULL;
	}
}

static uint64_t pfs_elapsed_ns(const struct timespec *start)
{
	struct timespec now;
	int64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (int64_t)(now.tv_sec - start->tv_sec) * 1000000000LL +
	     (now.tv_nsec - start->tv_nsec);
	return ns < 0 ? 0 : (uint64_t)ns;
}

/* Whether a remembered answer taken at *when is still young enough. */
static bool pfs_fresh(const struct timespec *when)
{
	return pfs_elapsed_ns(when) <= (uint64_t)PFS_RD_TTL_NS;
}

/* What this connection knows of ino's xattrs (see struct pfs_conn). */
static void pfs_xc_none(struct pfs_conn *pc, uint64_t ino)
{
	pc->xc.valid = true;
	pc->xc.none = true;
	pc->xc.ino = ino;
	pc->xc.name[0] = '\0';
	pc->xc.len = 0;
	clock_gettime(CLOCK_MONOTONIC, &pc->xc.when);
}

static void pfs_xc_set(struct pfs_conn *pc, uint64_t ino, const char *name,
		       const void *value, size_t len)
{
	size_t n = strlen(name);

	pc->xc.valid = false;
	if (n >= sizeof(pc->xc.name) || len > sizeof(pc->xc.value)) {
		return;
	}
	memcpy(pc->xc.name, name, n + 1);
	memcpy(pc->xc.value, value, len);
	pc->xc.len = len;
	pc->xc.none = false;
	pc->xc.ino = ino;
	clock_gettime(CLOCK_MONOTONIC, &pc->xc.when);
	pc->xc.valid = true;
}

/* The xattrs the listing gave for ino, if still good for this caller. */
static const proxyfs_entry_xattrs_t *pfs_lx_get(struct pfs_conn *pc,
						 connection_struct *conn,
						 uint64_t ino)
{
	if (pc->lx.x == NULL || pc->lx.ino != ino || pc->lx.gen != pc->gen ||
	    pc->lx.uid != get_current_uid(conn) ||
	    pc->lx.gid != get_current_gid(conn) || !pfs_fresh(&pc->lx.when)) {
		return NULL;
	}
	return pc->lx.x;
}

/* Exact lookup of name in dir_ino, through the case-insensitive lookup:
 * when nothing matches, get_real_filename_at (which smbd calls next) is
 * answered without another round trip. */
static int pfs_lookup_exact(struct pfs_conn *pc, uint64_t dir_ino,
			    const char *name, uint64_t *ino,
			    proxyfs_stat_t *ps)
{
	char *real = NULL;
	uint64_t i = 0;
	proxyfs_stat_t st;
	size_t n = strlen(name);
	int rc;

	pc->ci.valid = false;
	rc = proxyfs_lookup_ci(pc->mh, dir_ino, name, &real, &i, &st);
	if (rc == 0 && strcmp(real, name) == 0) {
		free(real);
		if (ino != NULL) {
			*ino = i;
		}
		*ps = st;
		return 0;
	}
	if (rc == ENOENT && n < sizeof(pc->ci.name)) {
		memcpy(pc->ci.name, name, n + 1);
		pc->ci.dir_ino = dir_ino;
		pc->ci.found = false;
		clock_gettime(CLOCK_MONOTONIC, &pc->ci.when);
		pc->ci.valid = true;
		return ENOENT;
	}
	if (rc != 0) {
		return rc;
	}
	/* another case matches: the exact name may exist too ("Foo" and
	 * "foo" side by side) */
	rc = proxyfs_lookup_stat(pc->mh, dir_ino, name, ino, ps);
	if (rc == ENOENT && n < sizeof(pc->ci.name) &&
	    strlen(real) < sizeof(pc->ci.real)) {
		memcpy(pc->ci.name, name, n + 1);
		memcpy(pc->ci.real, real, strlen(real) + 1);
		pc->ci.dir_ino = dir_ino;
		pc->ci.found = true;
		clock_gettime(CLOCK_MONOTONIC, &pc->ci.when);
		pc->ci.valid = true;
	}
	free(real);
	return rc;
}

/* Remember the entry readdir returned (name in dir_ino, with its stat). */
static void pfs_rd_remember(struct pfs_conn *pc, uint64_t dir_ino,
			    const char *name, const proxyfs_stat_t *ps)
{
	size_t n = strlen(name);

	pc->rd.valid = false;
	if (n >= sizeof(pc->rd.name) || ps->ino == 0 ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		return;
	}
	memcpy(pc->rd.name, name, n + 1);
	pc->rd.dir_ino = dir_ino;
	pc->rd.ino = ps->ino;
	pc->rd.st = *ps;
	clock_gettime(CLOCK_MONOTONIC, &pc->rd.when);
	pc->rd.valid = true;
}

/* The entry (dir_ino, name) if readdir has just returned it: its inode
 * and stat, once. */
static bool pfs_rd_take(struct pfs_conn *pc, uint64_t dir_ino,
			const char *name, uint64_t *ino, proxyfs_stat_t *ps)
{
	if (!pc->rd.valid || pc->rd.dir_ino != dir_ino ||
	    strcmp(pc->rd.name, name) != 0) {
		return false;
	}
	pc->rd.valid = false;
	if (!pfs_fresh(&pc->rd.when)) {
		return false;
	}
	*ino = pc->rd.ino;
	*ps = pc->rd.st;
	pc->rd_hits++;
	return true;
}

static void pfs_fh_changed(struct vfs_handle_struct *handle,
			   const struct files_struct *fsp)
{
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);

	pfs_rd_forget(pfs_get_conn(handle));
	if (pfh != NULL) {
		pfh->have_stat = false;
	}
}

static bool pfs_is_cwd_fsp(const struct files_struct *fsp)
{
	return fsp == NULL || fsp == fsp->conn->cwd_fsp ||
	       fsp_get_pathref_fd(fsp) == AT_FDCWD;
}

/* The absolute volume path of a path relative to the current directory. */
static char *pfs_abs_path(TALLOC_CTX *mem_ctx, struct pfs_conn *pc,
			  const char *name)
{
	return pfs_join(mem_ctx, pc->cwd, name != NULL ? name : "");
}

/*
 * The absolute volume path of an fsp: smbd names fsps relative to the
 * share's root (or absolutely).
 */
static char *pfs_fsp_path(TALLOC_CTX *mem_ctx,
			  struct vfs_handle_struct *handle,
			  const struct files_struct *fsp)
{
	const char *name = fsp->fsp_name != NULL ? fsp->fsp_name->base_name
						 : ".";
	return pfs_join(mem_ctx, handle->conn->connectpath, name);
}

/* Look up the inode of an absolute volume path (no final-symlink follow). */
static int pfs_lookup_abs(struct pfs_conn *pc, const char *path,
			  uint64_t *ino)
{
	if (strcmp(path, "/") == 0) {
		*ino = pc->root_ino;
		return 0;
	}
	if (pc->cwd != NULL && strcmp(path, pc->cwd) == 0 && pc->cwd_ino != 0) {
		*ino = pc->cwd_ino;
		return 0;
	}
	return proxyfs_lookup_path(pc->mh, discard_const_p(char, path), ino);
}

/*
 * Resolve an absolute path into (parent inode, base name) or the root.
 */
static int pfs_resolve_abs(struct pfs_conn *pc, char *path, struct pfs_at *at)
{
	char *slash;
	int rc;

	at->path = path;
	if (strcmp(path, "/") == 0) {
		at->is_self = true;
		at->self_ino = pc->root_ino;
		return 0;
	}
	slash = strrchr(path, '/');
	at->base = slash + 1;
	if (slash == path) {
		at->dir_ino = pc->root_ino;
		return 0;
	}
	*slash = '\0';
	rc = pfs_lookup_abs(pc, path, &at->dir_ino);
	*slash = '/';
	return rc;
}

/*
 * Resolve (dirfsp, name) as the *at calls see it: name is one component
 * relative to dirfsp's directory, or (with conn->cwd_fsp as dirfsp) a path
 * relative to the current directory, or absolute within the volume.
 * Returns 0 or an errno.
 */
static int pfs_resolve_at(TALLOC_CTX *mem_ctx,
			  struct vfs_handle_struct *handle,
			  const struct files_struct *dirfsp,
			  const char *name,
			  struct pfs_at *at)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *dfh = NULL;
	char *path;

	ZERO_STRUCTP(at);
	if (name == NULL) {
		name = "";
	}
	if (!pfs_is_cwd_fsp(dirfsp)) {
		dfh = pfs_fetch_fh(handle, dirfsp);
	}
	if (dfh != NULL && name[0] != '/') {
		if (name[0] == '\0' || strcmp(name, ".") == 0) {
			at->is_self = true;
			at->self_ino = dfh->ino;
			return 0;
		}
		if (strchr(name, '/') == NULL && strcmp(name, "..") != 0) {
			at->dir_ino = dfh->ino;
			at->base = name;
			return 0;
		}
		path = pfs_join(mem_ctx, pfs_fsp_path(mem_ctx, handle, dirfsp),
				name);
	} else if (dirfsp != NULL && !pfs_is_cwd_fsp(dirfsp)) {
		/* an fsp of another module or without a handle */
		path = pfs_join(mem_ctx, pfs_fsp_path(mem_ctx, handle, dirfsp),
				name);
	} else {
		if (name[0] != '/' && strchr(name, '/') == NULL &&
		    strcmp(name, "..") != 0 && pc->cwd_ino != 0) {
			if (name[0] == '\0' || strcmp(name, ".") == 0) {
				at->is_self = true;
				at->self_ino = pc->cwd_ino;
				return 0;
			}
			at->dir_ino = pc->cwd_ino;
			at->base = name;
			return 0;
		}
		path = pfs_abs_path(mem_ctx, pc, name);
	}
	if (path == NULL) {
		return ENOMEM;
	}
	return pfs_resolve_abs(pc, path, at);
}

/* The full volume path of a resolved name (built on demand). */
static char *pfs_at_path(TALLOC_CTX *mem_ctx,
			 struct vfs_handle_struct *handle,
			 const struct files_struct *dirfsp,
			 const char *name,
			 const struct pfs_at *at)
{
	struct pfs_conn *pc = pfs_get_conn(handle);

	if (at->path != NULL) {
		return at->path;
	}
	if (name != NULL && name[0] == '/') {
		return pfs_join(mem_ctx, "/", name);
	}
	if (!pfs_is_cwd_fsp(dirfsp)) {
		return pfs_join(mem_ctx, pfs_fsp_path(mem_ctx, handle, dirfsp),
				name != NULL ? name : "");
	}
	return pfs_abs_path(mem_ctx, pc, name);
}

/* Stat of a resolved name: lstat semantics. */
static int pfs_at_stat(struct pfs_conn *pc, const struct pfs_at *at,
		       uint64_t *ino, proxyfs_stat_t *ps)
{
	int rc;

	if (at->is_self) {
		proxyfs_stat_t *p = NULL;
		rc = proxyfs_get_stat(pc->mh, at->self_ino, &p);
		if (rc == 0) {
			*ps = *p;
			free(p);
			if (ino != NULL) {
				*ino = at->self_ino;
			}
		}
		return rc;
	}
	return pfs_lookup_exact(pc, at->dir_ino, at->base, ino, ps);
}

/*
 * The inode of an fsp: its extension's, the current directory's for
 * conn->cwd_fsp, else looked up from its name.
 */
static int pfs_fsp_ino(struct vfs_handle_struct *handle,
		       const struct files_struct *fsp, uint64_t *ino)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	char *path;
	int rc;

	if (pfh != NULL) {
		*ino = pfh->ino;
		return 0;
	}
	if (fsp == NULL) {
		return EBADF;
	}
	if (fsp == fsp->conn->cwd_fsp) {
		*ino = pc->cwd_ino;
		return 0;
	}
	if (fsp->base_fsp != NULL) {
		return pfs_fsp_ino(handle, fsp->base_fsp, ino);
	}
	path = pfs_fsp_path(talloc_tos(), handle, fsp);
	if (path == NULL) {
		return ENOMEM;
	}
	rc = pfs_lookup_abs(pc, path, ino);
	TALLOC_FREE(path);
	return rc;
}

/* ------------------------------------------------ connect, disconnect */

static int pfs_connect(struct vfs_handle_struct *handle,
		       const char *service,
		       const char *user)
{
	struct connection_struct *conn = handle->conn;
	int snum = SNUM(conn);
	struct pfs_conn *pc = NULL;
	const char *volume;
	const char *server;
	int timeout_ms;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	uint32_t ngroups = 0;
	const gid_t *groups = NULL;
	char *uname;
	char *canon = NULL;
	uint64_t ino = 0;
	uint16_t type = 0;
	int rc;

	volume = lp_parm_const_string(snum, PFS_MODULE_NAME, "volume", service);
	server = lp_parm_const_string(snum, PFS_MODULE_NAME, "server", NULL);
	timeout_ms = lp_parm_int(snum, PFS_MODULE_NAME, "timeout", 0);

	if (conn->session_info != NULL &&
	    conn->session_info->unix_token != NULL) {
		uid = conn->session_info->unix_token->uid;
		gid = conn->session_info->unix_token->gid;
		ngroups = conn->session_info->unix_token->ngroups;
		groups = conn->session_info->unix_token->groups;
		if (ngroups > 32) {
			ngroups = 32;
		}
	}
	/* The mount is the session user's (with its groups); each call
	 * carries smbd's current identity on top (pfs_set_identity). */
	pfs_set_identity(conn);

	pc = talloc_zero(conn, struct pfs_conn);
	if (pc == NULL) {
		return pfs_fail(ENOMEM);
	}
	pc->volume = talloc_strdup(pc, volume);
	uname = talloc_strdup(pc, user != NULL ? user : "");
	if (pc->volume == NULL || uname == NULL) {
		TALLOC_FREE(pc);
		return pfs_fail(ENOMEM);
	}
	pc->pathref_handles = lp_parm_bool(snum, PFS_MODULE_NAME,
					   "pathref handles", true);

	/* Each share has its own address (NULL: the library's default). */
	rc = proxyfs_mount_groups((server != NULL && server[0] != '\0') ?
				  server : NULL,
				  pc->volume, 0, uname, uid, gid, ngroups, groups,
				  &pc->mh);
	if (rc != 0) {
		DBG_ERR("proxyfs: mount of volume '%s' (server %s) as "
			"uid %u gid %u failed: %s (%s)\n",
			pc->volume, server != NULL ? server : "default",
			(unsigned)uid, (unsigned)gid, strerror(rc),
			proxyfs_last_error());
		TALLOC_FREE(pc);
		return pfs_fail(rc);
	}
	if (timeout_ms > 0) {
		(void)proxyfs_set_mount_timeout(pc->mh, (uint32_t)timeout_ms);
	}
	if (proxyfs_max_io_size(pc->mh, &pc->max_io) != 0 || pc->max_io == 0) {
		pc->max_io = 8 * 1024 * 1024;
	}
	rc = proxyfs_lookup_path(pc->mh, discard_const_p(char, "/"),
				 &pc->root_ino);
	if (rc != 0) {
		goto fail;
	}

	/* Start in the share's directory (smbd may skip the first chdir). */
	rc = proxyfs_realpath(pc->mh, conn->connectpath, &canon, &ino);
	if (rc == 0) {
		rc = proxyfs_type(pc->mh, ino, &type);
	}
	if (rc == 0 && type != DT_DIR) {
		rc = ENOTDIR;
	}
	if (rc != 0) {
		DBG_ERR("proxyfs: share path '%s' in volume '%s': %s\n",
			conn->connectpath, pc->volume, strerror(rc));
		free(canon);
		goto fail;
	}
	pc->cwd = talloc_strdup(pc, canon);
	pc->share_path = talloc_strdup(pc, canon);
	free(canon);
	if (pc->cwd == NULL || pc->share_path == NULL) {
		rc = ENOMEM;
		goto fail;
	}
	pc->cwd_ino = ino;
	pc->share_ino = ino;

	handle->data = pc;

	/* What this module does not provide (see README.md). */
	lp_do_parameter(snum, "smbd async dosmode", "false");
	lp_do_parameter(snum, "kernel share modes", "false");
	lp_do_parameter(snum, "kernel oplocks", "false");

	DBG_NOTICE("proxyfs: share '%s' mounted volume '%s' as uid %u gid %u "
		   "at '%s'\n", service, pc->volume, (unsigned)uid,
		   (unsigned)gid, pc->cwd);
	return 0;

fail:
	(void)proxyfs_unmount(pc->mh);
	TALLOC_FREE(pc);
	return pfs_fail(rc);
}

static void pfs_disconnect(struct vfs_handle_struct *handle)
{
	struct pfs_conn *pc = pfs_get_conn(handle);

	if (pc != NULL) {
		DBG_DEBUG("proxyfs: %llu pathref opens served by readdir's "
			  "stat, %llu xattr reads by what was just set, "
			  "%llu by the listing\n",
			  (unsigned long long)pc->rd_hits,
			  (unsigned long long)pc->xc_hits,
			  (unsigned long long)pc->lx_hits);
		free(pc->lx.x);
		pc->lx.x = NULL;
	}

	if (pc == NULL) {
		return;
	}
	if (pc->nhandles != 0) {
		/* smbd closes every file of a connection before this */
		DBG_WARNING("proxyfs: %" PRIu64 " proxyfs handles still open at "
			    "disconnect of '%s' (released by the unmount)\n",
			    pc->nhandles, pc->volume);
	}
	if (pc->mh != NULL) {
		int rc = proxyfs_unmount(pc->mh);
		if (rc != 0) {
			DBG_WARNING("proxyfs: unmount of '%s': %s\n",
				    pc->volume, strerror(rc));
		}
		pc->mh = NULL;
	}
	handle->data = NULL;
	TALLOC_FREE(pc);
}

/* ------------------------------------------------------- file system */

#define PFS_FS_CAPS (FILE_CASE_SENSITIVE_SEARCH | FILE_CASE_PRESERVED_NAMES | \
		     FILE_SUPPORTS_SPARSE_FILES)

static int pfs_statvfs(struct vfs_handle_struct *handle,
		       const struct smb_filename *smb_fname,
		       struct vfs_statvfs_struct *st)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct statvfs *sv = NULL;
	int rc;

	(void)smb_fname;
	rc = proxyfs_statvfs(pc->mh, &sv);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	ZERO_STRUCTP(st);
	st->OptimalTransferSize = sv->f_bsize;
	st->BlockSize = sv->f_frsize != 0 ? sv->f_frsize : sv->f_bsize;
	st->TotalBlocks = sv->f_blocks;
	st->BlocksAvail = sv->f_bfree;
	st->UserBlocksAvail = sv->f_bavail;
	st->TotalFileNodes = sv->f_files;
	st->FreeFileNodes = sv->f_ffree;
	st->FsIdentifier = sv->f_fsid;
	st->FsCapabilities = PFS_FS_CAPS;
	free(sv);
	return 0;
}

static uint64_t pfs_disk_free(struct vfs_handle_struct *handle,
			      const struct smb_filename *smb_fname,
			      uint64_t *bsize, uint64_t *dfree, uint64_t *dsize)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct statvfs *sv = NULL;
	int rc;

	(void)smb_fname;
	rc = proxyfs_statvfs(pc->mh, &sv);
	if (rc != 0) {
		errno = rc;
		return (uint64_t)-1;
	}
	*bsize = sv->f_frsize != 0 ? sv->f_frsize : sv->f_bsize;
	*dfree = sv->f_bavail;
	*dsize = sv->f_blocks;
	free(sv);
	return *dfree;
}

static uint32_t pfs_fs_capabilities(struct vfs_handle_struct *handle,
				    enum timestamp_set_resolution *p_ts_res)
{
	(void)handle;
	*p_ts_res = TIMESTAMP_SET_NT_OR_BETTER;
	return PFS_FS_CAPS;
}

static const char *pfs_connectpath(struct vfs_handle_struct *handle,
				   const struct smb_filename *smb_fname)
{
	(void)smb_fname;
	return handle->conn->connectpath;
}

/* ------------------------------------------------------- directories */

static DIR *pfs_fdopendir(struct vfs_handle_struct *handle,
			  files_struct *fsp, const char *mask, uint32_t attr)
{
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	struct pfs_dir *d;

	(void)mask;
	(void)attr;
	if (pfh == NULL) {
		errno = EBADF;
		return NULL;
	}
	if (!pfh->is_dir) {
		errno = ENOTDIR;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	d->fsp = fsp;
	d->ino = pfh->ino;
	d->prev = -1;
	return (DIR *)d;
}

/* The xattr whose value each listed entry brings along. */
static const char *const pfs_lx_names[] = { "user.DOSATTRIB" };

static struct dirent *pfs_readdir(struct vfs_handle_struct *handle,
				  struct files_struct *dirfsp,
				  DIR *dirp,
				  SMB_STRUCT_STAT *sbuf)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_dir *d = (struct pfs_dir *)dirp;
	struct dirent *de = NULL;
	proxyfs_stat_t *ps = NULL;
	proxyfs_entry_xattrs_t *x = NULL;
	int rc;

	(void)dirfsp;
	if (sbuf != NULL) {
		SET_STAT_INVALID(*sbuf);
	}
	free(pc->lx.x);
	pc->lx.x = NULL;
	rc = proxyfs_readdir_plus_xattr(pc->mh, d->ino, d->prev, pfs_lx_names,
					1, &de, &ps, &x);
	if (rc != 0) {
		errno = rc;
		return NULL;
	}
	if (de == NULL) {
		free(ps);
		free(x);
		return NULL; /* end, errno unchanged */
	}
	if (x != NULL) {
		pc->lx.x = x;
		pc->lx.ino = de->d_ino;
		pc->lx.gen = pc->gen;
		pc->lx.uid = get_current_uid(handle->conn);
		pc->lx.gid = get_current_gid(handle->conn);
		clock_gettime(CLOCK_MONOTONIC, &pc->lx.when);
	}
	d->de = *de;
	d->prev = de->d_off;
	if (ps != NULL) {
		pfs_rd_remember(pc, d->ino, de->d_name, ps);
		if (sbuf != NULL) {
			pfs_stat_to_ex(ps, sbuf);
		}
	} else {
		pfs_rd_forget(pc);
	}
	free(de);
	free(ps);
	return &d->de;
}

/* smbd's magic offsets are 0 (start), 0x80000000 and -1; proxyfs cookies
 * start at 1 ("."), and cookie 0 also means the start. */
static long pfs_telldir(struct vfs_handle_struct *handle, DIR *dirp)
{
	struct pfs_dir *d = (struct pfs_dir *)dirp;

	(void)handle;
	return d->prev < 0 ? 0 : (long)d->prev;
}

static void pfs_seekdir(struct vfs_handle_struct *handle, DIR *dirp,
			long offset)
{
	struct pfs_dir *d = (struct pfs_dir *)dirp;

	(void)handle;
	d->prev = offset <= 0 ? -1 : (int64_t)offset;
}

static void pfs_rewind_dir(struct vfs_handle_struct *handle, DIR *dirp)
{
	struct pfs_dir *d = (struct pfs_dir *)dirp;

	(void)handle;
	d->prev = -1;
}

static int pfs_release_fsp(struct vfs_handle_struct *handle,
			   struct files_struct *fsp);

static int pfs_closedir(struct vfs_handle_struct *handle, DIR *dirp)
{
	struct pfs_dir *d = (struct pfs_dir *)dirp;
	int ret = 0;

	if (d == NULL) {
		return pfs_fail(EBADF);
	}
	/* As closedir(3) closes the fd of fdopendir(3): smbd sets the fsp's
	 * fd to -1 afterwards and does not call close. */
	if (d->fsp != NULL) {
		ret = pfs_release_fsp(handle, d->fsp);
	}
	free(d);
	return ret;
}

static int pfs_mkdirat(struct vfs_handle_struct *handle,
		       struct files_struct *dirfsp,
		       const struct smb_filename *smb_fname,
		       mode_t mode)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame = talloc_stackframe();
	struct pfs_at at;
	proxyfs_stat_t ps;
	int rc;

	pfs_rd_forget(pc);

	rc = pfs_resolve_at(frame, handle, dirfsp, smb_fname->base_name, &at);
	if (rc == 0 && at.is_self) {
		rc = EEXIST;
	}
	if (rc == 0) {
		rc = proxyfs_mkdir_stat(pc->mh, at.dir_ino, at.base,
					mode & 07777, NULL, &ps);
	}
	TALLOC_FREE(frame);
	return rc == 0 ? 0 : pfs_fail(rc);
}

/* ------------------------------------------------------ open, close */

static void pfs_fh_destroy(void *p)
{
	(void)p; /* handles are released by close/closedir, or at unmount */
}

/* Creates a regular file; with acc >= 0 also opens it with that access
 * mode in the same request (*fh: the handle), else *fh is 0. */
static int pfs_create(struct pfs_conn *pc, uint64_t dir_ino, const char *base,
		      mode_t mode, int acc, uint64_t *ino, uint64_t *fh,
		      proxyfs_stat_t *ps)
{
	int rc;

	*fh = 0;
	if (acc < 0) {
		return proxyfs_create_stat(pc->mh, dir_ino, base, mode, ino,
					   ps);
	}
	rc = proxyfs_create_open(pc->mh, dir_ino, base, mode, acc, fh, ps);
	if (rc == 0) {
		*ino = ps->ino;
	}
	return rc;
}

static int pfs_openat(struct vfs_handle_struct *handle,
		      const struct files_struct *dirfsp,
		      const struct smb_filename *smb_fname,
		      files_struct *fsp,
		      const struct vfs_open_how *how)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame = talloc_stackframe();
	int flags = how->flags;
	int accmode = flags & O_ACCMODE;
	bool opath = (flags & O_PATH) != 0 || fsp->fsp_flags.is_pathref;
	bool created = false;
	bool listed = false; /* the entry readdir has just returned */
	struct pfs_at at;
	struct pfs_fh *pfh;
	proxyfs_stat_t ps;
	uint64_t ino = 0;
	uint64_t fh = 0;
	mode_t type;
	int rc;

	if (how->resolve != 0) {
		TALLOC_FREE(frame);
		return pfs_fail(ENOSYS);
	}
	if (is_named_stream(smb_fname) || dirfsp == NULL) {
		/* no named streams here (use streams_xattr in front) */
		TALLOC_FREE(frame);
		return pfs_fail(ENOENT);
	}

	rc = pfs_resolve_at(frame, handle, dirfsp, smb_fname->base_name, &at);
	if (rc != 0) {
		goto out;
	}
	if ((flags & (O_CREAT | O_TRUNC)) || accmode != O_RDONLY) {
		pfs_rd_forget(pc); /* it may change what readdir returned */
	}

	if (at.is_self) {
		if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
			rc = EEXIST;
			goto out;
		}
		rc = pfs_at_stat(pc, &at, &ino, &ps);
	} else if ((flags & O_CREAT) && (flags & O_EXCL)) {
		rc = pfs_create(pc, at.dir_ino, at.base, how->mode & 07777,
				opath ? -1 : accmode, &ino, &fh, &ps);
		created = (rc == 0);
	} else if (flags & O_CREAT) {
		rc = proxyfs_lookup_stat(pc->mh, at.dir_ino, at.base, &ino,
					 &ps);
		if (rc == ENOENT) {
			rc = pfs_create(pc, at.dir_ino, at.base,
					how->mode & 07777,
					opath ? -1 : accmode, &ino, &fh, &ps);
			created = (rc == 0);
			if (rc == EEXIST) { /* lost a race: it exists now */
				rc = proxyfs_lookup_stat(pc->mh, at.dir_ino,
							 at.base, &ino, &ps);
			}
		}
	} else if (opath && pfs_rd_take(pc, at.dir_ino, at.base, &ino, &ps)) {
		listed = true;
	} else {
		rc = pfs_lookup_exact(pc, at.dir_ino, at.base, &ino, &ps);
	}
	if (rc != 0) {
		goto out;
	}
	if (created) {
		pfs_xc_none(pc, ino);
	}

	type = ps.mode & S_IFMT;
	if (type == S_IFLNK) {
		if (flags & O_DIRECTORY) {
			rc = ENOTDIR; /* as Linux with O_NOFOLLOW|O_DIRECTORY */
			goto out;
		}
		if (!opath) {
			if (flags & O_NOFOLLOW) {
				rc = ELOOP;
				goto out;
			}
			/* follow: the target's inode */
			{
				char *full = pfs_at_path(frame, handle, dirfsp,
							 smb_fname->base_name,
							 &at);
				char *canon = NULL;
				proxyfs_stat_t *tp = NULL;
				if (full == NULL) {
					rc = ENOMEM;
					goto out;
				}
				rc = proxyfs_realpath(pc->mh, full, &canon,
						      &ino);
				free(canon);
				if (rc == 0) {
					rc = proxyfs_get_stat(pc->mh, ino, &tp);
				}
				if (rc != 0) {
					goto out;
				}
				ps = *tp;
				free(tp);
				type = ps.mode & S_IFMT;
			}
		}
	}
	if ((flags & O_DIRECTORY) && type != S_IFDIR) {
		rc = ENOTDIR;
		goto out;
	}
	if (type == S_IFDIR && !opath && accmode != O_RDONLY) {
		rc = EISDIR;
		goto out;
	}

	if ((flags & O_TRUNC) && !created && !opath && type == S_IFREG &&
	    accmode != O_RDONLY && ps.size != 0) {
		proxyfs_setattr_t sa = { .size = 0 };
		rc = proxyfs_setattr(pc->mh, ino, PROXYFS_SETATTR_SIZE, &sa,
				     &ps);
		if (rc != 0) {
			goto out;
		}
	}

	/*
	 * A pathref of an entry being listed takes no handle: smbd reads its
	 * DOS attributes and closes it at once, and a handle would only pin
	 * the file for that moment (an open and a close per listed entry).
	 */
	if (fh != 0) {
		pc->nhandles++; /* opened with the create */
	} else if (!opath || (pc->pathref_handles && !listed)) {
		int oflags = opath ? O_RDONLY : accmode;
		rc = proxyfs_open(pc->mh, ino, oflags, &fh);
		if (rc != 0) {
			goto out;
		}
		pc->nhandles++;
	}

	pfh = VFS_ADD_FSP_EXTENSION(handle, fsp, struct pfs_fh, pfs_fh_destroy);
	if (pfh == NULL) {
		if (fh != 0) {
			pc->nhandles--; /* closed below */
		}
		rc = ENOMEM;
		goto out;
	}
	ZERO_STRUCTP(pfh);
	pfh->ino = ino;
	pfh->fh = fh;
	pfh->flags = flags;
	pfh->is_dir = (type == S_IFDIR);
	pfh->pos = 0;
	pfs_stat_to_ex(&ps, &pfh->st);
	pfh->have_stat = true;
	pfh->st_gen = pc->gen;
	clock_gettime(CLOCK_MONOTONIC, &pfh->st_when);

	fsp->fsp_flags.have_proc_fds = false;

out:
	if (rc != 0) {
		DBG_DEBUG("proxyfs: openat '%s' flags 0%o: %s\n",
			  smb_fname->base_name, (unsigned)flags, strerror(rc));
		if (fh != 0) {
			/* opened (with the create, or after it) and not kept */
			(void)proxyfs_close(pc->mh, fh);
		}
	}
	TALLOC_FREE(frame);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	return PFS_FAKE_FD;
}

/* Release the fsp's proxyfs handle and extension. */
static int pfs_release_fsp(struct vfs_handle_struct *handle,
			   struct files_struct *fsp)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	int rc = 0;

	if (pfh == NULL) {
		return 0;
	}
	if (pfh->fh != 0 && pc != NULL && pc->mh != NULL) {
		pc->nhandles--;
		rc = proxyfs_close(pc->mh, pfh->fh);
		if (rc == EBADF) {
			rc = 0; /* lost at a daemon restart: nothing to free */
		}
	}
	VFS_REMOVE_FSP_EXTENSION(handle, fsp);
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_close(struct vfs_handle_struct *handle, files_struct *fsp)
{
	return pfs_release_fsp(handle, fsp);
}

/* ---------------------------------------------------------- data I/O */

static ssize_t pfs_pread(struct vfs_handle_struct *handle, files_struct *fsp,
			 void *data, size_t n, off_t offset)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	size_t got = 0;
	int rc;

	if (pfh == NULL) {
		return pfs_fail(EBADF);
	}
	if (pfh->is_dir) {
		return pfs_fail(EISDIR);
	}
	if (offset < 0) {
		return pfs_fail(EINVAL);
	}
	rc = proxyfs_read(pc->mh, pfh->ino, (uint64_t)offset, n, data, n,
			  &got);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	return (ssize_t)got;
}

static ssize_t pfs_pwrite(struct vfs_handle_struct *handle, files_struct *fsp,
			  const void *data, size_t n, off_t offset)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	size_t done = 0;
	int rc;

	pfs_rd_forget(pc);

	if (pfh == NULL) {
		return pfs_fail(EBADF);
	}
	if (pfh->is_dir) {
		return pfs_fail(EISDIR);
	}
	if (offset < 0) {
		return pfs_fail(EINVAL);
	}
	pfh->have_stat = false;
	rc = proxyfs_write(pc->mh, pfh->ino, (uint64_t)offset,
			   discard_const_p(uint8_t, data), n, &done);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	return (ssize_t)done;
}

static off_t pfs_lseek(struct vfs_handle_struct *handle, files_struct *fsp,
		       off_t offset, int whence)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	proxyfs_stat_t *ps = NULL;
	uint64_t out = 0;
	off_t pos;
	int rc;

	if (pfh == NULL) {
		return pfs_fail(EBADF);
	}
	switch (whence) {
	case SEEK_SET:
		pos = offset;
		break;
	case SEEK_CUR:
		pos = pfh->pos + offset;
		break;
	case SEEK_END:
		rc = proxyfs_get_stat(pc->mh, pfh->ino, &ps);
		if (rc != 0) {
			return pfs_fail(rc);
		}
		pos = (off_t)ps->size + offset;
		free(ps);
		break;
#ifdef SEEK_DATA
	case SEEK_DATA:
	case SEEK_HOLE:
		if (offset < 0) {
			return pfs_fail(ENXIO);
		}
		rc = proxyfs_lseek(pc->mh, pfh->ino, (uint64_t)offset,
				   whence == SEEK_DATA ? PROXYFS_SEEK_DATA
						       : PROXYFS_SEEK_HOLE,
				   &out);
		if (rc != 0) {
			return pfs_fail(rc);
		}
		pos = (off_t)out;
		break;
#endif
	default:
		return pfs_fail(EINVAL);
	}
	if (pos < 0) {
		return pfs_fail(EINVAL);
	}
	pfh->pos = pos;
	return pos;
}

static int pfs_fsync(struct vfs_handle_struct *handle, files_struct *fsp)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	int rc;

	if (pfh == NULL) {
		return pfs_fail(EBADF);
	}
	rc = proxyfs_flush(pc->mh, pfh->ino);
	return rc == 0 ? 0 : pfs_fail(rc);
}

/* ------------------------------------------------ async I/O (tevent) */

enum pfs_job_kind { PFS_JOB_READ, PFS_JOB_WRITE, PFS_JOB_FLUSH };

/*
 * One request in flight in libproxyfs. malloc()ed, not talloc'ed: it is
 * touched by the library's thread (the completion queue) and must outlive
 * the tevent request if smbd frees that early.
 */
struct pfs_job {
	struct pfs_job *next;	  /* on the completion queue */
	enum pfs_job_kind kind;
	struct tevent_req *req;	  /* NULL once the request is gone */
	bool received;		  /* *_recv was called (status, n valid) */
	int status;
	size_t n;
	struct timespec start;
};

struct pfs_aio_state {
	struct pfs_job *job;	  /* in flight, else NULL */
	ssize_t ret;
	struct vfs_aio_state vfs_aio_state;
};

/* The completion queue of this process, drained by smbd's event loop. */
static struct {
	pthread_mutex_t mu;
	struct pfs_job *done;	  /* completed, LIFO */
	int efd;
	pid_t pid;
	struct tevent_context *ev;
	struct tevent_fd *fde;
} pfs_q = { .mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1 };

/* libproxyfs's callback: on a library thread; must not block. */
static void pfs_job_callback(void *id)
{
	struct pfs_job *job = (struct pfs_job *)id;
	uint64_t one = 1;
	ssize_t w;

	pthread_mutex_lock(&pfs_q.mu);
	job->next = pfs_q.done;
	pfs_q.done = job;
	pthread_mutex_unlock(&pfs_q.mu);
	do {
		w = write(pfs_q.efd, &one, sizeof(one));
	} while (w == -1 && errno == EINTR);
	/* EAGAIN: the counter is already non-zero, a wakeup is pending */
}

static void pfs_job_recv(struct pfs_job *job)
{
	int rc = 0;

	if (job->received) {
		return;
	}
	switch (job->kind) {
	case PFS_JOB_READ:
		rc = proxyfs_read_recv(job, &job->status, &job->n);
		break;
	case PFS_JOB_WRITE:
		rc = proxyfs_write_recv(job, &job->status, &job->n);
		break;
	case PFS_JOB_FLUSH:
		rc = proxyfs_flush_recv(job, &job->status);
		job->n = 0;
		break;
	}
	if (rc != 0) {
		job->status = rc;
	}
	job->received = true;
}

static void pfs_job_finish(struct pfs_job *job)
{
	struct tevent_req *req = job->req;
	struct pfs_aio_state *state;

	pfs_job_recv(job);
	if (req == NULL) {
		free(job); /* its request went away first */
		return;
	}
	state = tevent_req_data(req, struct pfs_aio_state);
	state->job = NULL;
	state->vfs_aio_state.duration = pfs_elapsed_ns(&job->start);
	if (job->status != 0) {
		state->ret = -1;
		state->vfs_aio_state.error = job->status;
	} else {
		state->ret = (ssize_t)job->n;
		state->vfs_aio_state.error = 0;
	}
	DBG_DEBUG("proxyfs: aio kind %d done: status %d, %zu bytes\n",
		  (int)job->kind, job->status, job->n);
	free(job);
	tevent_req_done(req);
}

static void pfs_q_handler(struct tevent_context *ev, struct tevent_fd *fde,
			  uint16_t flags, void *private_data)
{
	struct pfs_job *list, *rev = NULL, *next;
	uint64_t v;
	ssize_t r;

	(void)ev;
	(void)fde;
	(void)flags;
	(void)private_data;
	do {
		r = read(pfs_q.efd, &v, sizeof(v));
	} while (r == -1 && errno == EINTR);

	pthread_mutex_lock(&pfs_q.mu);
	list = pfs_q.done;
	pfs_q.done = NULL;
	pthread_mutex_unlock(&pfs_q.mu);

	for (; list != NULL; list = next) { /* oldest first */
		next = list->next;
		list->next = rev;
		rev = list;
	}
	for (; rev != NULL; rev = next) {
		next = rev->next;
		pfs_job_finish(rev);
	}
}

/* Make sure the queue exists in this process and is watched by ev. */
static bool pfs_q_ready(struct tevent_context *ev)
{
	pid_t pid = getpid();

	if (pfs_q.efd != -1 && pfs_q.pid == pid && pfs_q.ev == ev &&
	    pfs_q.fde != NULL) {
		return true;
	}
	if (pfs_q.efd != -1 && pfs_q.pid == pid && pfs_q.ev != NULL &&
	    pfs_q.ev != ev) {
		return false; /* one event context per process (smbd's) */
	}
	if (pfs_q.efd == -1 || pfs_q.pid != pid) {
		/* first use, or a forked child: a queue of its own (the
		 * parent's jobs complete only in the parent) */
		pfs_q.done = NULL;
		pfs_q.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (pfs_q.efd == -1) {
			return false;
		}
		pfs_q.pid = pid;
		pfs_q.ev = NULL;
		pfs_q.fde = NULL;
	}
	/* a child of ev: lives as long as smbd's event loop */
	pfs_q.fde = tevent_add_fd(ev, ev, pfs_q.efd, TEVENT_FD_READ,
				  pfs_q_handler, NULL);
	if (pfs_q.fde == NULL) {
		return false;
	}
	pfs_q.ev = ev;
	return true;
}

/*
 * The request is being freed before its job completed (smbd shuts down a
 * connection): wait for the job, since the library still uses the
 * caller's buffer. The callback has queued the job by the time *_recv
 * returns; the queue handler frees it.
 */
static int pfs_aio_state_destructor(struct pfs_aio_state *state)
{
	struct pfs_job *job = state->job;

	if (job != NULL) {
		pfs_job_recv(job);
		job->req = NULL;
		state->job = NULL;
	}
	return 0;
}

static struct tevent_req *pfs_aio_send(struct vfs_handle_struct *handle,
				       TALLOC_CTX *mem_ctx,
				       struct tevent_context *ev,
				       files_struct *fsp,
				       enum pfs_job_kind kind,
				       void *data, size_t n, off_t offset)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	struct tevent_req *req;
	struct pfs_aio_state *state;
	struct pfs_job *job;
	uint64_t max_io = 0;
	int rc;

	if (kind == PFS_JOB_WRITE) {
		pfs_rd_forget(pc);
	}

	req = tevent_req_create(mem_ctx, &state, struct pfs_aio_state);
	if (req == NULL) {
		return NULL;
	}
	state->ret = -1;
	if (pfh == NULL) {
		tevent_req_error(req, EBADF);
		return tevent_req_post(req, ev);
	}
	if (kind != PFS_JOB_FLUSH && (offset < 0 || pfh->is_dir)) {
		tevent_req_error(req, offset < 0 ? EINVAL : EISDIR);
		return tevent_req_post(req, ev);
	}

	if (kind == PFS_JOB_WRITE) {
		pfh->have_stat = false;
	}
	/* the daemon may give another limit when the library mounts again */
	if (proxyfs_max_io_size(pc->mh, &max_io) != 0 || max_io == 0) {
		max_io = pc->max_io;
	}
	if (!pfs_q_ready(ev) || (kind != PFS_JOB_FLUSH && n > max_io)) {
		/* synchronous fallback (no queue, or larger than one async
		 * request may be; the sync calls split) */
		struct timespec t0;
		DBG_DEBUG("proxyfs: aio kind %d of %zu bytes done "
			  "synchronously\n", (int)kind, n);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		switch (kind) {
		case PFS_JOB_READ:
			state->ret = pfs_pread(handle, fsp, data, n, offset);
			break;
		case PFS_JOB_WRITE:
			state->ret = pfs_pwrite(handle, fsp, data, n, offset);
			break;
		case PFS_JOB_FLUSH:
			state->ret = pfs_fsync(handle, fsp);
			break;
		}
		state->vfs_aio_state.error = state->ret == -1 ? errno : 0;
		state->vfs_aio_state.duration = pfs_elapsed_ns(&t0);
		tevent_req_done(req);
		return tevent_req_post(req, ev);
	}

	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		tevent_req_error(req, ENOMEM);
		return tevent_req_post(req, ev);
	}
	job->kind = kind;
	job->req = req;
	clock_gettime(CLOCK_MONOTONIC, &job->start);

	switch (kind) {
	case PFS_JOB_READ:
		rc = proxyfs_read_send(pc->mh, pfh->ino, (uint64_t)offset, n,
				       data, n, job, pfs_job_callback);
		break;
	case PFS_JOB_WRITE:
		rc = proxyfs_write_send(pc->mh, pfh->ino, (uint64_t)offset,
					data, n, job, pfs_job_callback);
		break;
	case PFS_JOB_FLUSH:
	default:
		rc = proxyfs_flush_send(pc->mh, pfh->ino, job,
					pfs_job_callback);
		break;
	}
	if (rc != 0) {
		free(job);
		tevent_req_error(req, rc);
		return tevent_req_post(req, ev);
	}
	state->job = job;
	talloc_set_destructor(state, pfs_aio_state_destructor);
	DBG_DEBUG("proxyfs: aio kind %d ino %" PRIu64 " off %jd len %zu "
		  "sent\n", (int)kind, pfh->ino, (intmax_t)offset, n);
	return req;
}

static ssize_t pfs_aio_recv(struct tevent_req *req,
			    struct vfs_aio_state *vfs_aio_state)
{
	struct pfs_aio_state *state = tevent_req_data(req,
						      struct pfs_aio_state);

	if (tevent_req_is_unix_error(req, &vfs_aio_state->error)) {
		tevent_req_received(req);
		return -1;
	}
	*vfs_aio_state = state->vfs_aio_state;
	tevent_req_received(req);
	return state->ret;
}

static struct tevent_req *pfs_pread_send(struct vfs_handle_struct *handle,
					 TALLOC_CTX *mem_ctx,
					 struct tevent_context *ev,
					 files_struct *fsp,
					 void *data, size_t n, off_t offset)
{
	return pfs_aio_send(handle, mem_ctx, ev, fsp, PFS_JOB_READ, data, n,
			    offset);
}

static struct tevent_req *pfs_pwrite_send(struct vfs_handle_struct *handle,
					  TALLOC_CTX *mem_ctx,
					  struct tevent_context *ev,
					  files_struct *fsp,
					  const void *data, size_t n,
					  off_t offset)
{
	return pfs_aio_send(handle, mem_ctx, ev, fsp, PFS_JOB_WRITE,
			    discard_const_p(void, data), n, offset);
}

static struct tevent_req *pfs_fsync_send(struct vfs_handle_struct *handle,
					 TALLOC_CTX *mem_ctx,
					 struct tevent_context *ev,
					 files_struct *fsp)
{
	return pfs_aio_send(handle, mem_ctx, ev, fsp, PFS_JOB_FLUSH, NULL, 0,
			    0);
}

static int pfs_fsync_recv(struct tevent_req *req,
			  struct vfs_aio_state *vfs_aio_state)
{
	return (int)pfs_aio_recv(req, vfs_aio_state);
}

/* -------------------------------------------------------------- stat */

static int pfs_stat(struct vfs_handle_struct *handle,
		    struct smb_filename *smb_fname)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	proxyfs_stat_t ps;
	char *path;
	int rc;

	if (is_named_stream(smb_fname)) {
		return pfs_fail(ENOENT);
	}
	path = pfs_abs_path(talloc_tos(), pc, smb_fname->base_name);
	if (path == NULL) {
		return pfs_fail(ENOMEM);
	}
	rc = proxyfs_stat_path_follow(pc->mh, path, &ps);
	TALLOC_FREE(path);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	pfs_stat_to_ex(&ps, &smb_fname->st);
	return 0;
}

static int pfs_lstat(struct vfs_handle_struct *handle,
		     struct smb_filename *smb_fname)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame;
	struct pfs_at at;
	proxyfs_stat_t ps;
	int rc;

	if (is_named_stream(smb_fname)) {
		return pfs_fail(ENOENT);
	}
	frame = talloc_stackframe();
	rc = pfs_resolve_at(frame, handle, NULL, smb_fname->base_name, &at);
	if (rc == 0) {
		rc = pfs_at_stat(pc, &at, NULL, &ps);
	}
	TALLOC_FREE(frame);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	pfs_stat_to_ex(&ps, &smb_fname->st);
	return 0;
}

static int pfs_fstat(struct vfs_handle_struct *handle, files_struct *fsp,
		     SMB_STRUCT_STAT *sbuf)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);
	proxyfs_stat_t *ps = NULL;
	uint64_t ino;
	int rc;

	if (pfh != NULL && pfh->have_stat) {
		/* the stat of the open itself: smbd stats every open */
		pfh->have_stat = false;
		*sbuf = pfh->st;
		return 0;
	}
	if (pfh != NULL && pfh->is_dir && pfh->st_gen == pc->gen &&
	    pfs_fresh(&pfh->st_when)) {
		/* smbd stats a parent directory again before a create in it */
		*sbuf = pfh->st;
		return 0;
	}
	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	rc = proxyfs_get_stat(pc->mh, ino, &ps);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	pfs_stat_to_ex(ps, sbuf);
	free(ps);
	if (pfh != NULL && pfh->is_dir) {
		pfh->st = *sbuf;
		pfh->st_gen = pc->gen;
		clock_gettime(CLOCK_MONOTONIC, &pfh->st_when);
	}
	return 0;
}

static int pfs_fstatat(struct vfs_handle_struct *handle,
		       const struct files_struct *dirfsp,
		       const struct smb_filename *smb_fname,
		       SMB_STRUCT_STAT *sbuf,
		       int flags)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame = talloc_stackframe();
	struct pfs_at at;
	proxyfs_stat_t ps;
	int rc;

	rc = pfs_resolve_at(frame, handle, dirfsp, smb_fname->base_name, &at);
	if (rc == 0) {
		rc = pfs_at_stat(pc, &at, NULL, &ps);
	}
	if (rc == 0 && S_ISLNK(ps.mode) && !(flags & AT_SYMLINK_NOFOLLOW)) {
		char *path = pfs_at_path(frame, handle, dirfsp,
					 smb_fname->base_name, &at);
		rc = path == NULL ? ENOMEM
				  : proxyfs_stat_path_follow(pc->mh, path, &ps);
	}
	TALLOC_FREE(frame);
	if (rc != 0) {
		return pfs_fail(rc);
	}
	pfs_stat_to_ex(&ps, sbuf);
	return 0;
}

static uint64_t pfs_get_alloc_size(struct vfs_handle_struct *handle,
				   files_struct *fsp,
				   const SMB_STRUCT_STAT *sbuf)
{
	uint64_t result;

	if (S_ISDIR(sbuf->st_ex_mode)) {
		return 0;
	}
	result = (uint64_t)sbuf->st_ex_blocks * 512;
	if (fsp != NULL && fsp->initial_allocation_size != 0) {
		result = MAX(result, fsp->initial_allocation_size);
	}
	return smb_roundup(handle->conn, result);
}

/* --------------------------------------------------------- namespace */

static int pfs_unlinkat(struct vfs_handle_struct *handle,
			struct files_struct *dirfsp,
			const struct smb_filename *smb_fname,
			int flags)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame = talloc_stackframe();
	struct pfs_at at;
	int rc;

	pfs_rd_forget(pc);

	if (is_named_stream(smb_fname)) {
		TALLOC_FREE(frame);
		return pfs_fail(ENOENT);
	}
	rc = pfs_resolve_at(frame, handle, dirfsp, smb_fname->base_name, &at);
	if (rc == 0 && at.is_self) {
		rc = (flags & AT_REMOVEDIR) ? EBUSY : EISDIR;
	}
	if (rc == 0) {
		if (flags & AT_REMOVEDIR) {
			rc = proxyfs_rmdir(pc->mh, at.dir_ino,
					   discard_const_p(char, at.base));
		} else {
			rc = proxyfs_unlink(pc->mh, at.dir_ino,
					    discard_const_p(char, at.base));
		}
	}
	TALLOC_FREE(frame);
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_renameat(struct vfs_handle_struct *handle,
			struct files_struct *srcfsp,
			const struct smb_filename *smb_fname_src,
			struct files_struct *dstfsp,
			const struct smb_filename *smb_fname_dst)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame = talloc_stackframe();
	struct pfs_at src, dst;
	int rc;

	pfs_rd_forget(pc);

	if (is_named_stream(smb_fname_src) ||
	    is_named_stream(smb_fname_dst)) {
		TALLOC_FREE(frame);
		return pfs_fail(ENOENT);
	}
	rc = pfs_resolve_at(frame, handle, srcfsp, smb_fname_src->base_name,
			    &src);
	if (rc == 0) {
		rc = pfs_resolve_at(frame, handle, dstfsp,
				    smb_fname_dst->base_name, &dst);
	}
	if (rc == 0 && (src.is_self || dst.is_self)) {
		rc = EBUSY;
	}
	if (rc == 0) {
		rc = proxyfs_rename(pc->mh, src.dir_ino,
				    discard_const_p(char, src.base),
				    dst.dir_ino,
				    discard_const_p(char, dst.base));
	}
	TALLOC_FREE(frame);
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_linkat(struct vfs_handle_struct *handle,
		      struct files_struct *srcfsp,
		      const struct smb_filename *old_smb_fname,
		      struct files_struct *dstfsp,
		      const struct smb_filename *new_smb_fname,
		      int flags)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame = talloc_stackframe();
	struct pfs_at src, dst;
	uint64_t ino = 0;
	int rc;

	pfs_rd_forget(pc);

	(void)flags;
	rc = pfs_resolve_at(frame, handle, srcfsp, old_smb_fname->base_name,
			    &src);
	if (rc == 0) {
		rc = pfs_resolve_at(frame, handle, dstfsp,
				    new_smb_fname->base_name, &dst);
	}
	if (rc == 0 && dst.is_self) {
		rc = EEXIST;
	}
	if (rc == 0) {
		if (src.is_self) {
			ino = src.self_ino;
		} else {
			rc = proxyfs_lookup(pc->mh, src.dir_ino,
					    discard_const_p(char, src.base),
					    &ino);
		}
	}
	if (rc == 0) {
		rc = proxyfs_link(pc->mh, dst.dir_ino,
				  discard_const_p(char, dst.base), ino);
	}
	TALLOC_FREE(frame);
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_symlinkat(struct vfs_handle_struct *handle,
			 const struct smb_filename *link_contents,
			 struct files_struct *dirfsp,
			 const struct smb_filename *new_smb_fname)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame = talloc_stackframe();
	struct pfs_at at;
	proxyfs_stat_t ps;
	int rc;

	pfs_rd_forget(pc);

	rc = pfs_resolve_at(frame, handle, dirfsp, new_smb_fname->base_name,
			    &at);
	if (rc == 0 && at.is_self) {
		rc = EEXIST;
	}
	if (rc == 0) {
		rc = proxyfs_symlink_stat(pc->mh, at.dir_ino, at.base,
					  link_contents->base_name, NULL, &ps);
	}
	TALLOC_FREE(frame);
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_readlinkat(struct vfs_handle_struct *handle,
			  const struct files_struct *dirfsp,
			  const struct smb_filename *smb_fname,
			  char *buf, size_t bufsiz)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	TALLOC_CTX *frame = talloc_stackframe();
	struct pfs_at at;
	const char *target = NULL;
	uint64_t ino = 0;
	size_t len;
	int rc;

	rc = pfs_resolve_at(frame, handle, dirfsp, smb_fname->base_name, &at);
	if (rc == 0) {
		if (at.is_self) {
			ino = at.self_ino;
		} else {
			rc = proxyfs_lookup(pc->mh, at.dir_ino,
					    discard_const_p(char, at.base),
					    &ino);
		}
	}
	if (rc == 0) {
		rc = proxyfs_read_symlink(pc->mh, ino, &target);
	}
	TALLOC_FREE(frame);
	if (rc != 0) {
		return pfs_fail(rc); /* EINVAL: not a symlink, as readlink */
	}
	len = strlen(target);
	if (len > bufsiz) {
		len = bufsiz;
	}
	memcpy(buf, target, len);
	free(discard_const_p(char, target));
	return (int)len;
}

static struct smb_filename *pfs_realpath(struct vfs_handle_struct *handle,
					 TALLOC_CTX *ctx,
					 const struct smb_filename *smb_fname)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct smb_filename *result = NULL;
	char *path;
	char *canon = NULL;
	int rc;

	path = pfs_abs_path(talloc_tos(), pc, smb_fname->base_name);
	if (path == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	rc = proxyfs_realpath(pc->mh, path, &canon, NULL);
	TALLOC_FREE(path);
	if (rc != 0) {
		errno = rc;
		return NULL;
	}
	result = synthetic_smb_fname(ctx, canon, NULL, NULL, 0, 0);
	free(canon);
	if (result == NULL) {
		errno = ENOMEM;
	}
	return result;
}

static int pfs_chdir(struct vfs_handle_struct *handle,
		     const struct smb_filename *smb_fname)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	char *path;
	char *canon = NULL;
	char *cwd;
	uint64_t ino = 0;
	uint16_t type = 0;
	int rc;

	path = pfs_abs_path(talloc_tos(), pc, smb_fname->base_name);
	if (path == NULL) {
		return pfs_fail(ENOMEM);
	}
	/*
	 * smbd goes back to the share's directory after most operations
	 * that chdir (and on every switch between connections): that one
	 * was resolved at connect.
	 */
	if (strcmp(path, pc->cwd) == 0) {
		TALLOC_FREE(path);
		return 0;
	}
	if (strcmp(path, pc->share_path) == 0) {
		TALLOC_FREE(path);
		cwd = talloc_strdup(pc, pc->share_path);
		if (cwd == NULL) {
			return pfs_fail(ENOMEM);
		}
		TALLOC_FREE(pc->cwd);
		pc->cwd = cwd;
		pc->cwd_ino = pc->share_ino;
		return 0;
	}
	rc = proxyfs_realpath(pc->mh, path, &canon, &ino);
	TALLOC_FREE(path);
	if (rc == 0) {
		rc = proxyfs_type(pc->mh, ino, &type);
	}
	if (rc == 0 && type != DT_DIR) {
		rc = ENOTDIR;
	}
	if (rc != 0) {
		free(canon);
		return pfs_fail(rc);
	}
	cwd = talloc_strdup(pc, canon);
	free(canon);
	if (cwd == NULL) {
		return pfs_fail(ENOMEM);
	}
	TALLOC_FREE(pc->cwd);
	pc->cwd = cwd;
	pc->cwd_ino = ino;
	return 0;
}

static struct smb_filename *pfs_getwd(struct vfs_handle_struct *handle,
				      TALLOC_CTX *ctx)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct smb_filename *result;

	result = synthetic_smb_fname(ctx, pc->cwd, NULL, NULL, 0, 0);
	if (result == NULL) {
		errno = ENOMEM;
	}
	return result;
}

static NTSTATUS pfs_get_real_filename_at(struct vfs_handle_struct *handle,
					 struct files_struct *dirfsp,
					 const char *name,
					 TALLOC_CTX *mem_ctx,
					 char **found_name)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	uint64_t dir_ino;
	char *real = NULL;
	int rc;

	rc = pfs_fsp_ino(handle, dirfsp, &dir_ino);
	if (rc == 0 && pc->ci.valid && pc->ci.dir_ino == dir_ino &&
	    strcmp(pc->ci.name, name) == 0 && pfs_fresh(&pc->ci.when)) {
		/* the lookup that has just failed asked this already */
		pc->ci.valid = false;
		if (!pc->ci.found) {
			return NT_STATUS_OBJECT_NAME_NOT_FOUND;
		}
		real = strdup(pc->ci.real);
		rc = real == NULL ? ENOMEM : 0;
	} else if (rc == 0) {
		rc = proxyfs_lookup_ci(pc->mh, dir_ino, name, &real, NULL,
				       NULL);
	}
	if (rc == ENOENT) {
		return NT_STATUS_OBJECT_NAME_NOT_FOUND;
	}
	if (rc != 0) {
		return map_nt_error_from_unix(rc);
	}
	*found_name = talloc_strdup(mem_ctx, real);
	free(real);
	if (*found_name == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	return NT_STATUS_OK;
}

/* -------------------------------------------------------- attributes */

static int pfs_fchmod(struct vfs_handle_struct *handle, files_struct *fsp,
		      mode_t mode)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	uint64_t ino;
	int rc;

	pfs_fh_changed(handle, fsp);
	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0) {
		rc = proxyfs_chmod(pc->mh, ino, mode & 07777);
	}
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_fchown(struct vfs_handle_struct *handle, files_struct *fsp,
		      uid_t uid, gid_t gid)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	uint64_t ino;
	int rc;

	pfs_fh_changed(handle, fsp);
	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0) {
		rc = proxyfs_chown(pc->mh, ino, uid, gid);
	}
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_lchown(struct vfs_handle_struct *handle,
		      const struct smb_filename *smb_fname,
		      uid_t uid, gid_t gid)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	char *path;
	int rc;

	pfs_rd_forget(pc);

	path = pfs_abs_path(talloc_tos(), pc, smb_fname->base_name);
	if (path == NULL) {
		return pfs_fail(ENOMEM);
	}
	rc = proxyfs_chown_path(pc->mh, path, uid, gid);
	TALLOC_FREE(path);
	return rc == 0 ? 0 : pfs_fail(rc);
}

static void pfs_timespec_in(const struct timespec *ts, proxyfs_timespec_t *o)
{
	o->sec = (uint64_t)(int64_t)ts->tv_sec;
	o->nsec = (uint64_t)ts->tv_nsec;
}

static int pfs_fntimes(struct vfs_handle_struct *handle, files_struct *fsp,
		       struct smb_file_time *ft)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	proxyfs_setattr_t sa;
	uint64_t mask = 0;
	uint64_t ino;
	int rc;

	ZERO_STRUCT(sa);
	if (!is_omit_timespec(&ft->atime)) {
		pfs_timespec_in(&ft->atime, &sa.atim);
		mask |= PROXYFS_SETATTR_ATIME;
	}
	if (!is_omit_timespec(&ft->mtime)) {
		pfs_timespec_in(&ft->mtime, &sa.mtim);
		mask |= PROXYFS_SETATTR_MTIME;
	}
	if (!is_omit_timespec(&ft->create_time)) {
		pfs_timespec_in(&ft->create_time, &sa.crtim);
		mask |= PROXYFS_SETATTR_CRTIME;
	}
	if (mask == 0) {
		return 0;
	}
	pfs_fh_changed(handle, fsp);
	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0) {
		rc = proxyfs_setattr(pc->mh, ino, mask, &sa, NULL);
	}
	if (rc != 0) {
		return pfs_fail(rc);
	}
	if (mask & PROXYFS_SETATTR_CRTIME) {
		/*
		 * smbd keeps the create time in the DOS attributes xattr too
		 * and prefers it to the stat's btime: update it as
		 * vfs_default does (the server's crtime is for other
		 * clients of the volume).
		 */
		(void)set_create_timespec_ea(fsp, ft->create_time);
	}
	return 0;
}

static int pfs_ftruncate(struct vfs_handle_struct *handle, files_struct *fsp,
			 off_t len)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	uint64_t ino;
	int rc;

	if (len < 0) {
		return pfs_fail(EINVAL);
	}
	pfs_fh_changed(handle, fsp);
	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0) {
		rc = proxyfs_resize(pc->mh, ino, (uint64_t)len);
	}
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_fallocate(struct vfs_handle_struct *handle, files_struct *fsp,
			 uint32_t mode, off_t offset, off_t len)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	int pmode = 0;
	uint64_t ino;
	int rc;

	if (offset < 0 || len <= 0) {
		return pfs_fail(EINVAL);
	}
	if (mode & VFS_FALLOCATE_FL_KEEP_SIZE) {
		pmode |= PROXYFS_FALLOC_KEEP_SIZE;
	}
	if (mode & VFS_FALLOCATE_FL_PUNCH_HOLE) {
		pmode |= PROXYFS_FALLOC_PUNCH_HOLE;
	}
	if (mode & ~(uint32_t)(VFS_FALLOCATE_FL_KEEP_SIZE |
			       VFS_FALLOCATE_FL_PUNCH_HOLE)) {
		return pfs_fail(EOPNOTSUPP);
	}
	pfs_fh_changed(handle, fsp);
	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0) {
		rc = proxyfs_fallocate(pc->mh, ino, pmode, (uint64_t)offset,
				       (uint64_t)len);
	}
	return rc == 0 ? 0 : pfs_fail(rc);
}

/* ------------------------------------------------------------ xattrs */

static ssize_t pfs_fgetxattr(struct vfs_handle_struct *handle,
			     files_struct *fsp, const char *name,
			     void *value, size_t size)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	const proxyfs_entry_xattrs_t *lx;
	size_t out = 0;
	uint64_t ino;
	int rc;

	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0 && pc->xc.valid && pc->xc.ino == ino &&
	    (pc->xc.none || strcmp(pc->xc.name, name) == 0) &&
	    pfs_fresh(&pc->xc.when)) {
		pc->xc_hits++;
		if (pc->xc.none) {
			return pfs_fail(ENODATA);
		}
		if (size == 0) {
			return (ssize_t)pc->xc.len;
		}
		if (size < pc->xc.len) {
			return pfs_fail(ERANGE);
		}
		memcpy(value, pc->xc.value, pc->xc.len);
		return (ssize_t)pc->xc.len;
	}
	if (rc == 0 && (lx = pfs_lx_get(pc, handle->conn, ino)) != NULL) {
		const proxyfs_xattr_value_t *v = NULL;

		if (strcmp(name, lx->values[0].name) == 0) {
			v = &lx->values[0];
		}
		if (v != NULL && v->err != 0) {
			pc->lx_hits++;
			return pfs_fail(v->err);
		}
		if (v != NULL) {
			pc->lx_hits++;
			if (size == 0) {
				return (ssize_t)v->len;
			}
			if (size < v->len) {
				return pfs_fail(ERANGE);
			}
			if (v->len > 0) {
				memcpy(value, v->value, v->len);
			}
			return (ssize_t)v->len;
		}
	}
	if (rc == 0) {
		rc = proxyfs_get_xattr(pc->mh, ino, name, value, size, &out);
	}
	if (rc != 0) {
		return pfs_fail(rc);
	}
	return (ssize_t)out;
}

static ssize_t pfs_flistxattr(struct vfs_handle_struct *handle,
			      files_struct *fsp, char *list, size_t size)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	const proxyfs_entry_xattrs_t *lx;
	size_t out = 0;
	uint64_t ino;
	int rc;

	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0 && pc->xc.valid && pc->xc.none && pc->xc.ino == ino &&
	    pfs_fresh(&pc->xc.when)) {
		pc->xc_hits++;
		return 0; /* created by this connection, nothing set since */
	}
	if (rc == 0 && (lx = pfs_lx_get(pc, handle->conn, ino)) != NULL &&
	    lx->list_err == 0) {
		pc->lx_hits++;
		if (size == 0) {
			return (ssize_t)lx->names_len;
		}
		if (size < lx->names_len) {
			return pfs_fail(ERANGE);
		}
		memcpy(list, lx->names, lx->names_len);
		return (ssize_t)lx->names_len;
	}
	if (rc == 0) {
		rc = proxyfs_list_xattr(pc->mh, ino, list, size, &out);
	}
	if (rc != 0) {
		return pfs_fail(rc);
	}
	return (ssize_t)out;
}

static int pfs_fremovexattr(struct vfs_handle_struct *handle,
			    files_struct *fsp, const char *name)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	uint64_t ino;
	int rc;

	pfs_fh_changed(handle, fsp);
	pc->xc.valid = false;
	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0) {
		rc = proxyfs_remove_xattr(pc->mh, ino, name);
	}
	return rc == 0 ? 0 : pfs_fail(rc);
}

static int pfs_fsetxattr(struct vfs_handle_struct *handle, files_struct *fsp,
			 const char *name, const void *value, size_t size,
			 int flags)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	int pflags = 0;
	uint64_t ino;
	int rc;

	if (flags & XATTR_CREATE) {
		pflags |= PROXYFS_XATTR_CREATE;
	}
	if (flags & XATTR_REPLACE) {
		pflags |= PROXYFS_XATTR_REPLACE;
	}
	pfs_fh_changed(handle, fsp);
	pc->xc.valid = false;
	rc = pfs_fsp_ino(handle, fsp, &ino);
	if (rc == 0) {
		rc = proxyfs_set_xattr(pc->mh, ino, name, value, size, pflags);
	}
	if (rc == 0) {
		pfs_xc_set(pc, ino, name, value, size);
	}
	return rc == 0 ? 0 : pfs_fail(rc);
}

/* ---------------------------------------------- MS-DFS links (symlinks) */

static NTSTATUS pfs_create_dfs_pathat(struct vfs_handle_struct *handle,
				      struct files_struct *dirfsp,
				      const struct smb_filename *smb_fname,
				      const struct referral *reflist,
				      size_t referral_count)
{
	TALLOC_CTX *frame = talloc_stackframe();
	struct smb_filename target = { 0 };
	char *msdfs_link;
	NTSTATUS status = NT_STATUS_OK;

	msdfs_link = msdfs_link_string(frame, reflist, referral_count);
	if (msdfs_link == NULL) {
		TALLOC_FREE(frame);
		return NT_STATUS_NO_MEMORY;
	}
	target.base_name = msdfs_link;
	if (pfs_symlinkat(handle, &target, dirfsp, smb_fname) != 0) {
		status = map_nt_error_from_unix(errno);
	}
	TALLOC_FREE(frame);
	return status;
}

static NTSTATUS pfs_read_dfs_pathat(struct vfs_handle_struct *handle,
				    TALLOC_CTX *mem_ctx,
				    struct files_struct *dirfsp,
				    struct smb_filename *smb_fname,
				    struct referral **ppreflist,
				    size_t *preferral_count)
{
	char *target;
	int len;
	NTSTATUS status = NT_STATUS_OK;

	if (is_named_stream(smb_fname)) {
		return NT_STATUS_OBJECT_NAME_NOT_FOUND;
	}
	target = talloc_array(talloc_tos(), char, PATH_MAX);
	if (target == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	len = pfs_readlinkat(handle, dirfsp, smb_fname, target, PATH_MAX - 1);
	if (len == -1) {
		status = (errno == EINVAL) ? NT_STATUS_OBJECT_TYPE_MISMATCH
					   : map_nt_error_from_unix(errno);
		goto out;
	}
	target[len] = '\0';
	if (!strnequal(target, "msdfs:", 6)) {
		status = NT_STATUS_OBJECT_TYPE_MISMATCH;
		goto out;
	}
	if (pfs_fstatat(handle, dirfsp, smb_fname, &smb_fname->st,
			AT_SYMLINK_NOFOLLOW) != 0) {
		status = map_nt_error_from_unix(errno);
		goto out;
	}
	if (ppreflist == NULL && preferral_count == NULL) {
		goto out; /* only: is it a DFS link? */
	}
	if (!parse_msdfs_symlink(mem_ctx,
				 lp_msdfs_shuffle_referrals(SNUM(handle->conn)),
				 target, ppreflist, preferral_count)) {
		status = NT_STATUS_NO_MEMORY;
	}
out:
	TALLOC_FREE(target);
	return status;
}

/* ---------------------------------------- server-side copy (copy-chunk) */

/*
 * vfs_default's copy-chunk tries copy_file_range(2) on the fds, which
 * cannot work with this module's fds; so the module keeps the resume keys
 * itself and copies inside proxyfsd with proxyfs_copy_range (the data
 * never crosses the wire). Sources that are not on the same proxyfs
 * volume, and overlapping ranges of one file, are copied through
 * pread/pwrite.
 */
static struct vfs_offload_ctx *pfs_offload_ctx;

struct pfs_offload_read_state {
	DATA_BLOB token;
};

static struct tevent_req *pfs_offload_read_send(TALLOC_CTX *mem_ctx,
						struct tevent_context *ev,
						struct vfs_handle_struct *handle,
						struct files_struct *fsp,
						uint32_t fsctl,
						uint32_t ttl,
						off_t offset,
						size_t to_copy)
{
	struct tevent_req *req;
	struct pfs_offload_read_state *state;
	NTSTATUS status;

	(void)handle;
	(void)ttl;
	(void)offset;
	(void)to_copy;
	req = tevent_req_create(mem_ctx, &state,
				struct pfs_offload_read_state);
	if (req == NULL) {
		return NULL;
	}
	if (fsctl != FSCTL_SRV_REQUEST_RESUME_KEY) {
		tevent_req_nterror(req, NT_STATUS_INVALID_DEVICE_REQUEST);
		return tevent_req_post(req, ev);
	}
	status = vfs_offload_token_ctx_init(fsp->conn->sconn->client,
					    &pfs_offload_ctx);
	if (tevent_req_nterror(req, status)) {
		return tevent_req_post(req, ev);
	}
	status = vfs_offload_token_create_blob(state, fsp, fsctl,
					       &state->token);
	if (tevent_req_nterror(req, status)) {
		return tevent_req_post(req, ev);
	}
	status = vfs_offload_token_db_store_fsp(pfs_offload_ctx, fsp,
						&state->token);
	if (tevent_req_nterror(req, status)) {
		return tevent_req_post(req, ev);
	}
	tevent_req_done(req);
	return tevent_req_post(req, ev);
}

static NTSTATUS pfs_offload_read_recv(struct tevent_req *req,
				      struct vfs_handle_struct *handle,
				      TALLOC_CTX *mem_ctx,
				      uint32_t *flags,
				      uint64_t *xferlen,
				      DATA_BLOB *token)
{
	struct pfs_offload_read_state *state = tevent_req_data(
		req, struct pfs_offload_read_state);
	NTSTATUS status;

	(void)handle;
	if (tevent_req_is_nterror(req, &status)) {
		tevent_req_received(req);
		return status;
	}
	*flags = 0;
	*xferlen = 0;
	token->length = state->token.length;
	token->data = talloc_move(mem_ctx, &state->token.data);
	tevent_req_received(req);
	return NT_STATUS_OK;
}

struct pfs_offload_write_state {
	off_t copied;
};

static struct vfs_fn_pointers pfs_fns;

/* This module's handle in the VFS stack of conn, if any. */
static struct vfs_handle_struct *pfs_conn_handle(struct connection_struct *conn)
{
	struct vfs_handle_struct *h;

	for (h = conn->vfs_handles; h != NULL; h = h->next) {
		if (h->fns == &pfs_fns) {
			return h;
		}
	}
	return NULL;
}

/* Copy through smbd's buffers: sync pread/pwrite of the VFS stacks. */
static NTSTATUS pfs_copy_buffered(struct files_struct *src_fsp, off_t src_off,
				  struct files_struct *dst_fsp, off_t dst_off,
				  off_t len, off_t *copied)
{
	size_t bufsize = MIN(len, 1024 * 1024);
	uint8_t *buf = talloc_array(talloc_tos(), uint8_t, bufsize);

	if (buf == NULL) {
		return NT_STATUS_NO_MEMORY;
	}
	while (len > 0) {
		size_t n = MIN((off_t)bufsize, len);
		ssize_t r, w;
		bool ok;

		ok = change_to_user_and_service_by_fsp(src_fsp);
		if (!ok) {
			TALLOC_FREE(buf);
			return NT_STATUS_ACCESS_DENIED;
		}
		r = SMB_VFS_PREAD(src_fsp, buf, n, src_off);
		if (r == -1) {
			TALLOC_FREE(buf);
			return map_nt_error_from_unix(errno);
		}
		if (r == 0) {
			break;
		}
		ok = change_to_user_and_service_by_fsp(dst_fsp);
		if (!ok) {
			TALLOC_FREE(buf);
			return NT_STATUS_ACCESS_DENIED;
		}
		w = SMB_VFS_PWRITE(dst_fsp, buf, (size_t)r, dst_off);
		if (w == -1) {
			TALLOC_FREE(buf);
			return map_nt_error_from_unix(errno);
		}
		if (w != r) {
			TALLOC_FREE(buf);
			return NT_STATUS_DISK_FULL;
		}
		src_off += r;
		dst_off += r;
		len -= r;
		*copied += r;
	}
	TALLOC_FREE(buf);
	return NT_STATUS_OK;
}

static NTSTATUS pfs_lock_check(struct files_struct *fsp, off_t off, off_t len,
			       enum brl_type type)
{
	struct lock_struct lck;

	init_strict_lock_struct(fsp, fsp->op->global->open_persistent_id,
				(uint64_t)off, (uint64_t)len, type,
				lp_posix_cifsu_locktype(fsp), &lck);
	if (!SMB_VFS_STRICT_LOCK_CHECK(fsp->conn, fsp, &lck)) {
		return NT_STATUS_FILE_LOCK_CONFLICT;
	}
	return NT_STATUS_OK;
}

static struct tevent_req *pfs_offload_write_send(struct vfs_handle_struct *handle,
						 TALLOC_CTX *mem_ctx,
						 struct tevent_context *ev,
						 uint32_t fsctl,
						 DATA_BLOB *token,
						 off_t transfer_offset,
						 struct files_struct *dest_fsp,
						 off_t dest_off,
						 off_t to_copy)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	struct tevent_req *req;
	struct pfs_offload_write_state *state;
	struct files_struct *src_fsp = NULL;
	struct vfs_handle_struct *src_handle;
	struct pfs_conn *src_pc = NULL;
	struct pfs_fh *src_fh, *dst_fh;
	off_t src_off = transfer_offset;
	off_t remaining = to_copy;
	NTSTATUS status;
	bool changed_user = false;

	req = tevent_req_create(mem_ctx, &state,
				struct pfs_offload_write_state);
	if (req == NULL) {
		return NULL;
	}
	switch (fsctl) {
	case FSCTL_SRV_COPYCHUNK:
	case FSCTL_SRV_COPYCHUNK_WRITE:
		break;
	case FSCTL_OFFLOAD_WRITE:
		tevent_req_nterror(req, NT_STATUS_NOT_IMPLEMENTED);
		return tevent_req_post(req, ev);
	case FSCTL_DUP_EXTENTS_TO_FILE:
		tevent_req_nterror(req, NT_STATUS_INVALID_PARAMETER);
		return tevent_req_post(req, ev);
	default:
		tevent_req_nterror(req, NT_STATUS_INTERNAL_ERROR);
		return tevent_req_post(req, ev);
	}
	if (to_copy == 0) {
		tevent_req_done(req);
		return tevent_req_post(req, ev);
	}
	if (to_copy < 0 || src_off < 0 || dest_off < 0 ||
	    src_off > INT64_MAX - to_copy || dest_off > INT64_MAX - to_copy) {
		tevent_req_nterror(req, NT_STATUS_INVALID_PARAMETER);
		return tevent_req_post(req, ev);
	}
	if (pfs_offload_ctx == NULL) {
		tevent_req_nterror(req, NT_STATUS_OBJECT_NAME_NOT_FOUND);
		return tevent_req_post(req, ev);
	}
	status = vfs_offload_token_db_fetch_fsp(pfs_offload_ctx, token,
						&src_fsp);
	if (tevent_req_nterror(req, status)) {
		return tevent_req_post(req, ev);
	}
	status = vfs_offload_token_check_handles(fsctl, src_fsp, dest_fsp);
	if (tevent_req_nterror(req, status)) {
		return tevent_req_post(req, ev);
	}

	if (!change_to_user_and_service_by_fsp(src_fsp)) {
		tevent_req_nterror(req, NT_STATUS_ACCESS_DENIED);
		return tevent_req_post(req, ev);
	}
	changed_user = true;
	status = vfs_stat_fsp(src_fsp);
	if (!NT_STATUS_IS_OK(status)) {
		goto done;
	}
	if (src_fsp->fsp_name->st.st_ex_size < src_off + to_copy) {
		/* MS-SMB2 3.3.5.15.6, as Windows answers */
		status = NT_STATUS_INVALID_VIEW_SIZE;
		goto done;
	}
	status = pfs_lock_check(src_fsp, src_off, to_copy, READ_LOCK);
	if (!NT_STATUS_IS_OK(status)) {
		goto done;
	}
	status = pfs_lock_check(dest_fsp, dest_off, to_copy, WRITE_LOCK);
	if (!NT_STATUS_IS_OK(status)) {
		goto done;
	}

	src_handle = pfs_conn_handle(src_fsp->conn);
	if (src_handle != NULL) {
		src_pc = pfs_get_conn(src_handle);
	}
	src_fh = src_handle != NULL ? pfs_fetch_fh(src_handle, src_fsp) : NULL;
	dst_fh = pfs_fetch_fh(handle, dest_fsp);

	if (src_pc != NULL && src_fh != NULL && dst_fh != NULL &&
	    src_pc->mh != NULL && strcmp(src_pc->volume, pc->volume) == 0 &&
	    src_fsp->fsp_name->st.st_ex_dev ==
		    dest_fsp->fsp_name->st.st_ex_dev) {
		/* same volume: copy inside proxyfsd */
		while (remaining > 0) {
			uint64_t n = 0;
			int rc = proxyfs_copy_range(pc->mh, src_fh->ino,
						    (uint64_t)src_off,
						    dst_fh->ino,
						    (uint64_t)dest_off,
						    (uint64_t)remaining, &n);
			if (rc == EINVAL && src_fh->ino == dst_fh->ino) {
				break; /* overlap: buffered below */
			}
			if (rc != 0) {
				status = map_nt_error_from_unix(rc);
				goto done;
			}
			if (n == 0) {
				remaining = 0;
				break;
			}
			src_off += n;
			dest_off += n;
			remaining -= n;
			state->copied += n;
		}
		dst_fh->have_stat = false;
	}
	if (remaining > 0) {
		status = pfs_copy_buffered(src_fsp, src_off, dest_fsp, dest_off,
					   remaining, &state->copied);
		if (!NT_STATUS_IS_OK(status)) {
			goto done;
		}
	}
	status = NT_STATUS_OK;
done:
	if (changed_user && !change_to_user_and_service_by_fsp(dest_fsp)) {
		smb_panic("proxyfs: cannot change back to the user of the "
			  "copy-chunk destination");
	}
	if (tevent_req_nterror(req, status)) {
		return tevent_req_post(req, ev);
	}
	tevent_req_done(req);
	return tevent_req_post(req, ev);
}

static NTSTATUS pfs_offload_write_recv(struct vfs_handle_struct *handle,
				       struct tevent_req *req,
				       off_t *copied)
{
	struct pfs_offload_write_state *state = tevent_req_data(
		req, struct pfs_offload_write_state);
	NTSTATUS status;

	(void)handle;
	if (tevent_req_is_nterror(req, &status)) {
		*copied = 0;
		tevent_req_received(req);
		return status;
	}
	*copied = state->copied;
	tevent_req_received(req);
	return NT_STATUS_OK;
}

/* ------------------------------------------------------------- stubs */

static ssize_t pfs_sendfile(struct vfs_handle_struct *handle, int tofd,
			    files_struct *fromfsp, const DATA_BLOB *hdr,
			    off_t offset, size_t n)
{
	(void)handle;
	(void)tofd;
	(void)fromfsp;
	(void)hdr;
	(void)offset;
	(void)n;
	return pfs_fail(ENOTSUP);
}

static ssize_t pfs_recvfile(struct vfs_handle_struct *handle, int fromfd,
			    files_struct *tofsp, off_t offset, size_t n)
{
	(void)handle;
	(void)fromfd;
	(void)tofsp;
	(void)offset;
	(void)n;
	return pfs_fail(ENOTSUP);
}

static int pfs_fcntl(struct vfs_handle_struct *handle, files_struct *fsp,
		     int cmd, va_list cmd_arg)
{
	(void)handle;
	(void)fsp;
	(void)cmd_arg;
	/* smbd only uses it to clear O_NONBLOCK (vfs_set_blocking). */
	if (cmd == F_GETFL) {
		return 0;
	}
	if (cmd == F_SETFL) {
		return 0;
	}
	return pfs_fail(EINVAL);
}

/*
 * Byte-range locks, held by proxyfsd (proxyfs_lock), so that every client of
 * the volume sees them: other smbd gateways, Go and C clients.
 *
 * smbd's posix locking (source3/locking/posix.c) keeps SMB locks in its
 * brlock database and mirrors them as POSIX locks through SMB_VFS_LOCK
 * (always F_SETLK: it never asks to wait) and tests for other programs'
 * locks through SMB_VFS_GETLOCK before granting a lock or, with strict
 * locking, a read or write. With Linux, vfs_default uses open file
 * description locks (F_OFD_SETLK, unless "smbd:force process locks"):
 * locks belong to the open file, not to the process. proxyfsd's locks
 * have those semantics: an owner is a proxyfs_open handle plus a string.
 * Each fsp has its own handle, so the module's locks behave as
 * vfs_default's on a local file system, across every gateway.
 *
 * The owner string names the gateway host, the smbd process and the fsp
 * ("smb:HOST:PID:FNUM"): stable for the fsp's life, and what another
 * client's F_GETLK reports.
 *
 * These calls are synchronous round trips (one per range; smbd's SMB lock
 * code is synchronous), bounded by the mount's timeout. They never wait for
 * a lock: F_SETLKW is sent as F_SETLK, and smbd retries blocking SMB locks
 * itself, from its event loop.
 */
#define PFS_LOCK_OWNER_MAX 64

static void pfs_lock_owner(const files_struct *fsp, char *owner)
{
	static char host[33];

	if (host[0] == '\0') {
		char h[256] = "";
		if (gethostname(h, sizeof(h) - 1) != 0 || h[0] == '\0') {
			snprintf(h, sizeof(h), "localhost");
		}
		snprintf(host, sizeof(host), "%.32s", h);
	}
	snprintf(owner, PFS_LOCK_OWNER_MAX + 1, "smb:%s:%d:%" PRIu64, host,
		 (int)getpid(), fsp->fnum);
}

/* Log locks lost at a daemon restart (another client may have taken them
 * and changed the data while proxyfsd was down and its grace was over). */
static void pfs_check_lost_locks(struct pfs_conn *pc)
{
	uint64_t n = 0;

	if (proxyfs_lost_locks(pc->mh, &n) == 0 && n > pc->lost_locks) {
		DBG_ERR("proxyfs: %" PRIu64 " byte-range locks of volume '%s' "
			"could not be reclaimed after proxyfsd restarted\n",
			n - pc->lost_locks, pc->volume);
		pc->lost_locks = n;
	}
}

/*
 * The handle that carries an fsp's locks. A named stream (streams_xattr
 * above this module) has no extension of its own: its locks stay in
 * smbd's brlock database only (*local = true), as a stream is not a file
 * any other client of the volume can lock.
 */
static int pfs_lock_fh(struct vfs_handle_struct *handle, files_struct *fsp,
		       uint64_t *fh, bool *local)
{
	struct pfs_fh *pfh = pfs_fetch_fh(handle, fsp);

	*local = false;
	if (pfh == NULL) {
		if (fsp != NULL && fsp_is_alternate_stream(fsp)) {
			*local = true;
			return 0;
		}
		return EBADF;
	}
	if (pfh->fh == 0 || pfh->is_dir) {
		return EBADF;
	}
	*fh = pfh->fh;
	return 0;
}

static bool pfs_lock(struct vfs_handle_struct *handle, files_struct *fsp,
		     int op, off_t offset, off_t count, int type)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	char owner[PFS_LOCK_OWNER_MAX + 1];
	uint64_t fh = 0;
	bool local;
	int rc;

	switch (op) {
	case F_SETLK:
	case F_SETLKW: /* never wait in smbd: smbd retries blocking locks */
#if defined(F_OFD_SETLK)
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
#endif
		break;
	default:
		errno = EINVAL;
		return false;
	}
	rc = pfs_lock_fh(handle, fsp, &fh, &local);
	if (rc == 0 && local) {
		return true;
	}
	if (rc == 0) {
		pfs_lock_owner(fsp, owner);
		rc = proxyfs_lock(pc->mh, fh, F_SETLK, (short)type, offset,
				  count, owner, NULL);
		pfs_check_lost_locks(pc);
	}
	if (rc != 0) {
		DBG_DEBUG("proxyfs: lock %s type %d [%jd, +%jd): %s\n",
			  fsp_str_dbg(fsp), type, (intmax_t)offset,
			  (intmax_t)count, strerror(rc));
		errno = rc;
		return false;
	}
	return true;
}

static bool pfs_getlock(struct vfs_handle_struct *handle, files_struct *fsp,
			off_t *poffset, off_t *pcount, int *ptype, pid_t *ppid)
{
	struct pfs_conn *pc = pfs_get_conn(handle);
	char owner[PFS_LOCK_OWNER_MAX + 1];
	proxyfs_lock_t conflict;
	uint64_t fh = 0;
	bool local;
	int rc;

	rc = pfs_lock_fh(handle, fsp, &fh, &local);
	if (rc == 0 && local) {
		*ptype = F_UNLCK;
		return true;
	}
	if (rc == 0) {
		pfs_lock_owner(fsp, owner);
		rc = proxyfs_lock(pc->mh, fh, F_GETLK, (short)*ptype,
				  *poffset, *pcount, owner, &conflict);
		pfs_check_lost_locks(pc);
	}
	if (rc != 0) {
		DBG_DEBUG("proxyfs: getlock %s [%jd, +%jd): %s\n",
			  fsp_str_dbg(fsp), (intmax_t)*poffset,
			  (intmax_t)*pcount, strerror(rc));
		errno = rc;
		return false;
	}
	*ptype = conflict.type;
	if (conflict.type != F_UNLCK) {
		*poffset = conflict.start;
		*pcount = conflict.len;
		DBG_DEBUG("proxyfs: getlock %s: held by '%s'\n",
			  fsp_str_dbg(fsp), conflict.owner);
	}
	*ppid = -1; /* as F_OFD_GETLK: the holder is not a local process */
	return true;
}

static int pfs_filesystem_sharemode(struct vfs_handle_struct *handle,
				    files_struct *fsp, uint32_t share_access,
				    uint32_t access_mask)
{
	(void)handle;
	(void)fsp;
	(void)share_access;
	(void)access_mask;
	return pfs_fail(ENOSYS);
}

static int pfs_linux_setlease(struct vfs_handle_struct *handle,
			      files_struct *fsp, int leasetype)
{
	(void)handle;
	(void)fsp;
	(void)leasetype;
	return pfs_fail(ENOSYS);
}

static int pfs_fchflags(struct vfs_handle_struct *handle,
			struct files_struct *fsp, unsigned int flags)
{
	(void)handle;
	(void)fsp;
	(void)flags;
	return pfs_fail(ENOSYS);
}

static int pfs_mknodat(struct vfs_handle_struct *handle,
		       struct files_struct *dirfsp,
		       const struct smb_filename *smb_fname,
		       mode_t mode, SMB_DEV_T dev)
{
	(void)handle;
	(void)dirfsp;
	(void)smb_fname;
	(void)mode;
	(void)dev;
	return pfs_fail(ENOSYS); /* no special files in proxyfs */
}

static bool pfs_aio_force(struct vfs_handle_struct *handle,
			  struct files_struct *fsp)
{
	(void)handle;
	(void)fsp;
	return false;
}

/* ----------------------------------------------------- registration */

static struct vfs_fn_pointers pfs_fns = {
	/* Disk operations */
	.connect_fn = pfs_connect,
	.disconnect_fn = pfs_disconnect,
	.disk_free_fn = pfs_disk_free,
	.get_quota_fn = vfs_not_implemented_get_quota,
	.set_quota_fn = vfs_not_implemented_set_quota,
	.statvfs_fn = pfs_statvfs,
	.fs_capabilities_fn = pfs_fs_capabilities,

	/* Directory operations */
	.fdopendir_fn = pfs_fdopendir,
	.readdir_fn = pfs_readdir,
	.seekdir_fn = pfs_seekdir,
	.telldir_fn = pfs_telldir,
	.rewind_dir_fn = pfs_rewind_dir,
	.mkdirat_fn = pfs_mkdirat,
	.closedir_fn = pfs_closedir,

	/* File operations */
	.openat_fn = pfs_openat,
	.create_file_fn = NULL,		/* vfs_default (smbd's create logic) */
	.close_fn = pfs_close,
	.pread_fn = pfs_pread,
	.pread_send_fn = pfs_pread_send,
	.pread_recv_fn = pfs_aio_recv,
	.pwrite_fn = pfs_pwrite,
	.pwrite_send_fn = pfs_pwrite_send,
	.pwrite_recv_fn = pfs_aio_recv,
	.lseek_fn = pfs_lseek,
	.sendfile_fn = pfs_sendfile,
	.recvfile_fn = pfs_recvfile,
	.renameat_fn = pfs_renameat,
	.fsync_send_fn = pfs_fsync_send,
	.fsync_recv_fn = pfs_fsync_recv,
	.stat_fn = pfs_stat,
	.fstat_fn = pfs_fstat,
	.lstat_fn = pfs_lstat,
	.fstatat_fn = pfs_fstatat,
	.get_alloc_size_fn = pfs_get_alloc_size,
	.unlinkat_fn = pfs_unlinkat,
	.fchmod_fn = pfs_fchmod,
	.fchown_fn = pfs_fchown,
	.lchown_fn = pfs_lchown,
	.chdir_fn = pfs_chdir,
	.getwd_fn = pfs_getwd,
	.fntimes_fn = pfs_fntimes,
	.ftruncate_fn = pfs_ftruncate,
	.fallocate_fn = pfs_fallocate,
	.lock_fn = pfs_lock,
	.filesystem_sharemode_fn = pfs_filesystem_sharemode,
	.fcntl_fn = pfs_fcntl,
	.linux_setlease_fn = pfs_linux_setlease,
	.getlock_fn = pfs_getlock,
	.symlinkat_fn = pfs_symlinkat,
	.readlinkat_fn = pfs_readlinkat,
	.linkat_fn = pfs_linkat,
	.mknodat_fn = pfs_mknodat,
	.realpath_fn = pfs_realpath,
	.fchflags_fn = pfs_fchflags,
	.file_id_create_fn = NULL,	/* vfs_default: from dev/ino */
	.offload_read_send_fn = pfs_offload_read_send,
	.offload_read_recv_fn = pfs_offload_read_recv,
	.offload_write_send_fn = pfs_offload_write_send,
	.offload_write_recv_fn = pfs_offload_write_recv,
	.fstreaminfo_fn = NULL,		/* vfs_default: ::$DATA via fstat */
	.get_real_filename_at_fn = pfs_get_real_filename_at,
	.connectpath_fn = pfs_connectpath,
	.create_dfs_pathat_fn = pfs_create_dfs_pathat,
	.read_dfs_pathat_fn = pfs_read_dfs_pathat,

	/* Samba's own byte-range lock database (vfs_default) */
	.brl_lock_windows_fn = NULL,
	.brl_unlock_windows_fn = NULL,
	.strict_lock_check_fn = NULL,
	.translate_name_fn = NULL,
	.fsctl_fn = NULL,

	/* NT ACLs: vfs_default (from the mode bits) or acl_xattr above us */
	.fget_nt_acl_fn = NULL,
	.fset_nt_acl_fn = NULL,
	.audit_file_fn = NULL,

	/* POSIX ACLs: none */
	.sys_acl_get_fd_fn = vfs_not_implemented_sys_acl_get_fd,
	.sys_acl_blob_get_fd_fn = vfs_not_implemented_sys_acl_blob_get_fd,
	.sys_acl_set_fd_fn = vfs_not_implemented_sys_acl_set_fd,
	.sys_acl_delete_def_fd_fn = vfs_not_implemented_sys_acl_delete_def_fd,

	/* EA operations; no async getxattrat (smbd async dosmode = no) */
	.getxattrat_send_fn = vfs_not_implemented_getxattrat_send,
	.getxattrat_recv_fn = vfs_not_implemented_getxattrat_recv,
	.fgetxattr_fn = pfs_fgetxattr,
	.flistxattr_fn = pfs_flistxattr,
	.fremovexattr_fn = pfs_fremovexattr,
	.fsetxattr_fn = pfs_fsetxattr,

	/* aio */
	.aio_force_fn = pfs_aio_force,

	/* durable handles: vfs_default */
	.durable_cookie_fn = NULL,
	.durable_disconnect_fn = NULL,
	.durable_reconnect_fn = NULL,
};

/*
 * The name the module registers: its file's name without ".so", so that
 * MODULESDIR/vfs/proxyfs.so is "proxyfs" and a copy installed under another
 * name (test.sh installs proxyfs_test_PID.so, so that test runs of several
 * trees on one machine do not replace each other's module) is that name.
 * The smb.conf parameters stay "proxyfs:...".
 */
static const char *pfs_vfs_name(void)
{
	static char name[64];
	Dl_info info;
	const char *base;
	size_t n;

	if (dladdr((void *)pfs_vfs_name, &info) == 0 || info.dli_fname == NULL) {
		return PFS_MODULE_NAME;
	}
	base = strrchr(info.dli_fname, '/');
	base = base != NULL ? base + 1 : info.dli_fname;
	n = strlen(base);
	if (n <= 3 || n - 3 >= sizeof(name) ||
	    strcmp(base + n - 3, ".so") != 0) {
		return PFS_MODULE_NAME;
	}
	memcpy(name, base, n - 3);
	name[n - 3] = '\0';
	return name;
}

NTSTATUS samba_init_module(TALLOC_CTX *ctx)
{
	NTSTATUS status;

	(void)ctx;
	status = smb_register_vfs(SMB_VFS_INTERFACE_VERSION, pfs_vfs_name(),
				  &pfs_fns);
	if (!NT_STATUS_IS_OK(status)) {
		return status;
	}
	pfs_debug_class = debug_add_class(PFS_MODULE_NAME);
	if (pfs_debug_class == -1) {
		pfs_debug_class = DBGC_VFS;
	}
	return NT_STATUS_OK;
}
