/* readdir.c - proxyfs_readdir and proxyfs_readdir_plus return one entry per
 * call, as Samba asks for them, but fetch them from proxyfsd in batches.
 *
 * Both fetch with the binary READDIR_PLUS opcode (readdir drops the stats:
 * a binary batch with stats costs both sides less than a JSON-RPC readdir
 * batch without them). A batch fetched after cookie P holds entries e[0..n)
 * with cookies c[i]; the entry after cookie P is e[0] and the entry after
 * c[i] is e[i+1]. The mount handle caches a few batches keyed by directory;
 * a call with in_prev_dir_loc found in a cached batch is served from it. A
 * cached batch is used only while nothing was changed through this mount
 * handle since it was fetched and for at most PFS_DCACHE_MS; a listing
 * that starts (-1) always fetches afresh. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PFS_DCACHE_MS 1000
#define PFS_READDIR_BATCH 1024
#define PFS_READDIR_MAX 4096 /* the server's largest batch */

static void batch_free(pfs_batch_t *b)
{
    free(b->ents);
    free(b->xkey);
    free(b->xraw);
    free(b->xoff);
    memset(b, 0, sizeof(*b));
}

/* The names of a proxyfs_readdir_plus_xattr call, as the request payload
 * carries them (a length byte and the name, each): *out malloc()ed. */
static int xattr_key(const char *const *names, size_t count, uint8_t **out,
                     size_t *outlen)
{
    size_t len = 0;
    uint8_t *k;

    if (count > PFS_BIN_XATTR_NAMES_MAX)
        return pfs_set_error(EINVAL, "readdir_plus_xattr: %zu names (at most %d)",
                             count, PFS_BIN_XATTR_NAMES_MAX);
    for (size_t i = 0; i < count; i++) {
        size_t l = names[i] != NULL ? strlen(names[i]) : 0;

        if (l == 0 || l > 255)
            return pfs_set_error(EINVAL, "readdir_plus_xattr: name %zu: %s", i,
                                 names[i] == NULL ? "NULL" : "not 1..255 bytes");
        len += 1 + l;
    }
    if ((k = malloc(len + 1)) == NULL)
        return pfs_set_error(ENOMEM, "out of memory");
    len = 0;
    for (size_t i = 0; i < count; i++) {
        size_t l = strlen(names[i]);

        k[len] = (uint8_t)l;
        memcpy(k + len + 1, names[i], l);
        len += 1 + l;
    }
    *out = k;
    *outlen = len;
    return 0;
}

void pfs_dcache_clear(mount_handle_t *mh)
{
    for (int i = 0; i < PFS_DCACHE_SLOTS; i++)
        batch_free(&mh->dcache[i]);
}

/* Fetches a batch of up to max entries over the binary channel
 * (READDIR_PLUS; READDIR_PLUS_XATTR when xkey is not NULL: b takes xkey,
 * a malloc()ed key of xcount names, in any case). */
static int fetch_batch(mount_handle_t *mh, uint64_t dir, int64_t prev,
                       uint32_t max, uint8_t *xkey, size_t xkeylen,
                       size_t xcount, pfs_batch_t *b)
{
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_READDIR_PLUS, .ino = dir,
                          .off = (uint64_t)prev, .length = max,
                          .flags = PFS_BIN_REQ_STAT_EXT, .ralloc = true };
    uint8_t *payload = NULL;
    const uint8_t *p;
    int rc;

    memset(b, 0, sizeof(*b));
    b->xkey = xkey;
    b->xkeylen = xkeylen;
    b->xcount = xcount;
    b->gen = __atomic_load_n(&mh->mutations, __ATOMIC_RELAXED);
    if (xkey != NULL) {
        if ((payload = malloc(4 + xkeylen)) == NULL) {
            batch_free(b);
            return pfs_set_error(ENOMEM, "out of memory");
        }
        for (int i = 0; i < 4; i++)
            payload[i] = (uint8_t)(max >> (8 * i));
        memcpy(payload + 4, xkey, xkeylen);
        bc.op = PFS_BIN_OP_READDIR_PLUS_XATTR;
        bc.payload = payload;
        bc.paylen = 4 + xkeylen;
        bc.length = 0;
    }
    rc = pfs_bin_call(mh, &bc);
    free(payload);
    if (rc != 0) {
        batch_free(b);
        return rc;
    }
    if ((xkey == NULL
             ? pfs_bin_count_dirents_ext(bc.reply, bc.rlen, PFS_BIN_STAT_EXT,
                                         &b->eof, &b->n)
             : pfs_bin_count_dirents_xattr(bc.reply, bc.rlen, PFS_BIN_STAT_EXT,
                                           xcount, &b->eof, &b->n)) != 0) {
        free(bc.reply);
        batch_free(b);
        return pfs_set_error(EIO, "malformed readdir_plus reply");
    }
    if (b->n > 0 && ((b->ents = malloc(b->n * sizeof(*b->ents))) == NULL ||
                     (xkey != NULL &&
                      (b->xoff = malloc(b->n * sizeof(*b->xoff))) == NULL))) {
        free(bc.reply);
        batch_free(b);
        return pfs_set_error(ENOMEM, "out of memory");
    }
    p = bc.reply + 1;
    for (size_t i = 0; i < b->n; i++) {
        p += pfs_bin_decode_dirent_ext(p, PFS_BIN_STAT_EXT, &b->ents[i]);
        if (xkey != NULL) {
            b->xoff[i] = (size_t)(p - bc.reply);
            p += pfs_bin_xattr_block_size(p, bc.rlen - b->xoff[i], xcount);
        }
    }
    if (xkey != NULL)
        b->xraw = bc.reply; /* the blocks stay where they are */
    else
        free(bc.reply);
    b->valid = true;
    b->dir = dir;
    b->prev = prev;
    b->when = pfs_now_ms();
    return 0;
}

/* Looks prev up in batch b. Returns the index of the entry after it (n if
 * the batch ends there), or -1 if the batch does not know prev. */
static long batch_find(const pfs_batch_t *b, int64_t prev)
{
    if (b->prev == prev)
        return 0;
    /* A listing asks for the entry after the one served last: O(1). */
    if (b->last < b->n && b->ents[b->last].cookie == prev)
        return (long)b->last + 1;
    for (size_t i = 0; i < b->n; i++)
        if (b->ents[i].cookie == prev)
            return (long)i + 1;
    return -1;
}

/* Serves entry i of b; out_st and out_xa may be NULL. */
static int serve(const pfs_batch_t *b, size_t i, struct dirent **out_de,
                 proxyfs_stat_t **out_st, proxyfs_entry_xattrs_t **out_xa)
{
    const pfs_dent_t *d = &b->ents[i];
    struct dirent *de = calloc(1, sizeof(*de));
    proxyfs_stat_t *st = NULL;

    if (de == NULL)
        return pfs_set_error(ENOMEM, "out of memory");
    if (out_xa != NULL) {
        *out_xa = pfs_bin_build_xattrs(b->xraw + b->xoff[i], b->xkey,
                                       b->xkeylen, b->xcount);
        if (*out_xa == NULL) {
            free(de);
            return pfs_set_error(ENOMEM, "out of memory");
        }
    }
    if (out_st != NULL) {
        st = malloc(sizeof(*st));
        if (st == NULL) {
            free(de);
            if (out_xa != NULL) {
                free(*out_xa);
                *out_xa = NULL;
            }
            return pfs_set_error(ENOMEM, "out of memory");
        }
        *st = d->st;
    }
    de->d_ino = d->ino;
    de->d_off = d->cookie;
    de->d_reclen = sizeof(*de);
    de->d_type = d->type;
    strcpy(de->d_name, d->name);
    *out_de = de;
    if (out_st != NULL)
        *out_st = st;
    return 0;
}

/* Serves the entry after prev from the cache, under dlock. Returns 1 if
 * served (rc in *rc), 0 if the cache cannot answer. */
static int from_cache(mount_handle_t *mh, uint64_t dir, int64_t prev,
                      const uint8_t *xkey, size_t xkeylen,
                      struct dirent **out_de, proxyfs_stat_t **out_st,
                      proxyfs_entry_xattrs_t **out_xa, int *rc)
{
    uint64_t gen = __atomic_load_n(&mh->mutations, __ATOMIC_RELAXED);
    uint64_t now = pfs_now_ms();

    for (int s = 0; s < PFS_DCACHE_SLOTS; s++) {
        pfs_batch_t *b = &mh->dcache[s];
        long i;

        /* A batch serves only the identity that fetched it (which the
         * server checked): never another thread's per-call identity. */
        if (!b->valid || b->dir != dir || !pfs_ident_equal(&b->ident, &pfs_thread_ident))
            continue;
        /* An xattr call is served only by a batch of the same names. */
        if (xkey != NULL && (b->xkey == NULL || b->xkeylen != xkeylen ||
                             memcmp(b->xkey, xkey, xkeylen) != 0))
            continue;
        if (b->gen != gen || now - b->when > PFS_DCACHE_MS) {
            batch_free(b);
            continue;
        }
        if ((i = batch_find(b, prev)) < 0)
            continue;
        if ((size_t)i < b->n) {
            b->used = ++mh->dclock;
            b->last = (size_t)i;
            *rc = serve(b, (size_t)i, out_de, out_st, out_xa);
            return 1;
        }
        if (b->eof) {
            *rc = 0; /* end of directory */
            return 1;
        }
    }
    return 0;
}

/* out_st is NULL for readdir; out_xa is not NULL for readdir_plus_xattr,
 * whose key xkey (malloc()ed) this consumes. */
static int readdir_common(mount_handle_t *mh, uint64_t dir, int64_t prev,
                          uint8_t *xkey, size_t xkeylen, size_t xcount,
                          struct dirent **out_de, proxyfs_stat_t **out_st,
                          proxyfs_entry_xattrs_t **out_xa)
{
    pfs_batch_t nb;
    int rc, slot = 0;

    *out_de = NULL;
    if (out_st != NULL)
        *out_st = NULL;
    if (out_xa != NULL)
        *out_xa = NULL;
    if (prev == 0)
        prev = -1;
    pthread_mutex_lock(&mh->dlock);
    if (prev != -1 && from_cache(mh, dir, prev, xkey, xkeylen, out_de, out_st,
                                 out_xa, &rc)) {
        pthread_mutex_unlock(&mh->dlock);
        free(xkey);
        return rc;
    }
    pthread_mutex_unlock(&mh->dlock);

    if ((rc = fetch_batch(mh, dir, prev, PFS_READDIR_BATCH, xkey, xkeylen,
                          xcount, &nb)) != 0)
        return rc;
    if (nb.n == 0) {
        batch_free(&nb);
        return 0; /* end of directory */
    }
    rc = serve(&nb, 0, out_de, out_st, out_xa);

    pthread_mutex_lock(&mh->dlock);
    /* An empty slot, or else the least recently used one. */
    for (int s = 0; s < PFS_DCACHE_SLOTS; s++) {
        if (!mh->dcache[s].valid) {
            slot = s;
            break;
        }
        if (mh->dcache[s].used < mh->dcache[slot].used)
            slot = s;
    }
    batch_free(&mh->dcache[slot]);
    nb.used = ++mh->dclock;
    nb.ident = pfs_thread_ident;
    mh->dcache[slot] = nb;
    pthread_mutex_unlock(&mh->dlock);
    return rc;
}

int proxyfs_readdir(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                    int64_t in_prev_dir_loc, struct dirent **out_dir_ent)
{
    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_dir_ent == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "NULL pointer"));
    PFS_API_RETURN(readdir_common(in_mount_handle, in_inode_number,
                                  in_prev_dir_loc, NULL, 0, 0, out_dir_ent,
                                  NULL, NULL));
}

int proxyfs_readdir_plus(mount_handle_t *in_mount_handle,
                         uint64_t in_inode_number, int64_t in_prev_dir_loc,
                         struct dirent **out_dir_ent,
                         proxyfs_stat_t **out_dir_ent_stats)
{
    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_dir_ent == NULL || out_dir_ent_stats == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "NULL pointer"));
    PFS_API_RETURN(readdir_common(in_mount_handle, in_inode_number,
                                  in_prev_dir_loc, NULL, 0, 0, out_dir_ent,
                                  out_dir_ent_stats, NULL));
}

int proxyfs_readdir_plus_xattr(mount_handle_t *in_mount_handle,
                               uint64_t in_inode_number,
                               int64_t in_prev_dir_loc,
                               const char *const *in_names, size_t in_count,
                               struct dirent **out_dir_ent,
                               proxyfs_stat_t **out_dir_ent_stats,
                               proxyfs_entry_xattrs_t **out_xattrs)
{
    uint8_t *xkey = NULL;
    size_t xkeylen = 0;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_dir_ent == NULL || out_dir_ent_stats == NULL ||
        out_xattrs == NULL || (in_names == NULL && in_count > 0))
        PFS_API_RETURN(pfs_set_error(EINVAL, "NULL pointer"));
    *out_dir_ent = NULL;
    *out_dir_ent_stats = NULL;
    *out_xattrs = NULL;
    if ((rc = xattr_key(in_names, in_count, &xkey, &xkeylen)) != 0)
        PFS_API_RETURN(rc);
    PFS_API_RETURN(readdir_common(in_mount_handle, in_inode_number,
                                  in_prev_dir_loc, xkey, xkeylen, in_count,
                                  out_dir_ent, out_dir_ent_stats, out_xattrs));
}

int proxyfs_readdir_plus_batch(mount_handle_t *in_mount_handle,
                               uint64_t in_inode_number,
                               int64_t in_prev_dir_loc, uint32_t in_max,
                               proxyfs_dirent_plus_t **out_entries,
                               size_t *out_count, int *out_eof)
{
    proxyfs_dirent_plus_t *ents = NULL;
    pfs_batch_t b;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_entries == NULL || out_count == NULL || out_eof == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "NULL pointer"));
    *out_entries = NULL;
    *out_count = 0;
    *out_eof = 0;
    if (in_max == 0)
        in_max = PFS_READDIR_BATCH;
    if (in_max > PFS_READDIR_MAX)
        PFS_API_RETURN(pfs_set_error(EINVAL, "in_max over 4096"));
    if (in_prev_dir_loc == 0)
        in_prev_dir_loc = -1;
    if ((rc = fetch_batch(in_mount_handle, in_inode_number, in_prev_dir_loc,
                          in_max, NULL, 0, 0, &b)) != 0)
        PFS_API_RETURN(rc);
    if (b.n > 0 && (ents = malloc(b.n * sizeof(*ents))) == NULL) {
        batch_free(&b);
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    }
    for (size_t i = 0; i < b.n; i++) {
        ents[i].ino = b.ents[i].ino;
        ents[i].cookie = b.ents[i].cookie;
        ents[i].type = b.ents[i].type;
        memcpy(ents[i].name, b.ents[i].name, sizeof(ents[i].name));
        ents[i].stat = b.ents[i].st;
    }
    *out_entries = ents;
    *out_count = b.n;
    *out_eof = b.eof ? 1 : 0;
    batch_free(&b);
    PFS_API_RETURN(0);
}
