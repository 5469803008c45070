/* handles.c - open file handles: proxyfs_open, proxyfs_close (PROTOCOL.md,
 * "Open files and orphans").
 *
 * The library keeps a table of the handles it opened. The caller's fh is
 * the server's handle from the first open; when the library mounts again
 * (the daemon restarted or reclaimed the mount), it opens every handle of
 * that mount handle again with "reclaim" and keeps a map from the caller's
 * fh to the server's new one, so callers see nothing (pfs_handles_reopen,
 * called by pfs_remount). Each handle also keeps the locks held through it
 * (locks.c), which the reopening thread reclaims before the handle is
 * usable again: one thread reopens a handle (pfs_fh_t.reopening) while the
 * other threads that noticed the remount wait for it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static pthread_mutex_t fh_lock = PTHREAD_MUTEX_INITIALIZER;
/* Broadcast when a thread is done opening a handle again. */
static pthread_cond_t fh_cond = PTHREAD_COND_INITIALIZER;
static pfs_fh_t *fh_list;

/* Finds (mh, fh); called with fh_lock held. */
static pfs_fh_t **fh_find(mount_handle_t *mh, uint64_t fh)
{
    pfs_fh_t **pp;

    for (pp = &fh_list; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->mh == mh && (*pp)->fh == fh)
            return pp;
    return NULL;
}

void pfs_handles_lock(void)
{
    pthread_mutex_lock(&fh_lock);
}

void pfs_handles_unlock(void)
{
    pthread_mutex_unlock(&fh_lock);
}

pfs_fh_t *pfs_handle_find(mount_handle_t *mh, uint64_t fh)
{
    pfs_fh_t **pp = fh_find(mh, fh);

    return pp != NULL ? *pp : NULL;
}

int pfs_handle_server(mount_handle_t *mh, uint64_t fh, uint64_t *out_mount_id,
                      uint64_t *out_sfh, uint64_t *out_ino)
{
    pfs_fh_t *h;
    int lost = 0;

    pthread_mutex_lock(&fh_lock);
    h = pfs_handle_find(mh, fh);
    if (h != NULL && (lost = h->lost) == 0) {
        *out_mount_id = h->mount_id;
        *out_sfh = h->sfh;
        *out_ino = h->ino;
    }
    pthread_mutex_unlock(&fh_lock);
    if (h == NULL)
        return pfs_set_error(EBADF, "no open handle %llu on this mount handle",
                             (unsigned long long)fh);
    if (lost != 0)
        return pfs_set_error(lost, "handle %llu was lost when the mount was "
                             "made again", (unsigned long long)fh);
    return 0;
}

static void fh_free(pfs_fh_t *h)
{
    pfs_lockset_free(&h->locks);
    free(h);
}

/* One open call on mount id mount_id (on mh's pool), without remounting:
 * the server's fh in *out_sfh. */
static int open_on(mount_handle_t *mh, uint64_t mount_id, uint64_t ino,
                   int acc, bool reclaim, uint64_t *out_sfh)
{
    json_t *params, *res = NULL;
    int rc;

    params = json_pack("{sIsIsIsb}", "mount_id", (json_int_t)mount_id,
                       "inode", (json_int_t)ino, "flags", (json_int_t)acc,
                       "reclaim", reclaim);
    if (params == NULL)
        return pfs_set_error(ENOMEM, "out of memory");
    rc = pfs_rpc_nomount(mh, "open", params, &res);
    json_decref(params);
    if (rc == 0 && (pfs_json_get_u64(res, "fh", out_sfh) != 0 || *out_sfh == 0))
        rc = pfs_set_error(EIO, "open: malformed reply: no fh");
    json_decref(res);
    return rc;
}

/* Closes server handle sfh of mount mount_id, ignoring errors. */
static void close_on(mount_handle_t *mh, uint64_t mount_id, uint64_t sfh)
{
    json_t *params = json_pack("{sIsI}", "mount_id", (json_int_t)mount_id,
                               "fh", (json_int_t)sfh);

    if (params != NULL)
        (void)pfs_rpc_nomount(mh, "close", params, NULL);
    json_decref(params);
}

void pfs_handles_reopen(mount_handle_t *mh)
{
    uint64_t mid = pfs_mount_id(mh);

    pthread_mutex_lock(&fh_lock);
    for (;;) {
        pfs_fh_t *h, **pp, want;
        pfs_lockset_t locks;
        bool busy = false;
        uint64_t sfh = 0;
        int rc;

        for (h = fh_list; h != NULL; h = h->next) {
            if (h->mh != mh || h->mount_id == mid || h->lost != 0)
                continue;
            if (!h->reopening)
                break;
            busy = true;
        }
        if (h == NULL) {
            if (!busy)
                break;
            /* Another thread is opening a handle again: its locks must be
             * back before this thread's call goes on. */
            pthread_cond_wait(&fh_cond, &fh_lock);
            continue;
        }
        h->reopening = true;
        want = *h;
        locks = h->locks;
        h->locks = (pfs_lockset_t){ 0 };
        pthread_mutex_unlock(&fh_lock);
        rc = open_on(mh, mid, want.ino, want.acc, true, &sfh);
        if (rc == 0)
            pfs_locks_reclaim(mh, mid, sfh, &locks);
        pthread_mutex_lock(&fh_lock);
        pp = fh_find(mh, want.fh);
        if (pp == NULL || (*pp)->mount_id != want.mount_id) {
            /* Closed meanwhile (closing a handle that is being opened
             * again leaves the server's new handle to this thread). */
            pthread_cond_broadcast(&fh_cond);
            pthread_mutex_unlock(&fh_lock);
            pfs_lockset_free(&locks);
            if (rc == 0)
                close_on(mh, mid, sfh);
            pthread_mutex_lock(&fh_lock);
            continue;
        }
        h = *pp;
        h->reopening = false;
        if (rc == 0) {
            h->sfh = sfh;
            h->mount_id = mid;
            h->locks = locks;
        } else {
            h->lost = rc == ENOENT ? EBADF : rc;
            pfs_locks_lose(mh, &locks);
        }
        pthread_cond_broadcast(&fh_cond);
    }
    pthread_mutex_unlock(&fh_lock);
}

void pfs_handles_atfork_prepare(void)
{
    pthread_mutex_lock(&fh_lock);
}

void pfs_handles_atfork_parent(void)
{
    pthread_mutex_unlock(&fh_lock);
}

/* The child keeps the table: its handles are the parent's server handles
 * (closing one in either process closes it for both). A handle that a
 * parent's thread was opening again stays to be opened again (its locks
 * were with that thread: the child does not hold them). */
void pfs_handles_atfork_child(void)
{
    for (pfs_fh_t *h = fh_list; h != NULL; h = h->next)
        h->reopening = false;
    pthread_mutex_init(&fh_lock, NULL);
    pthread_cond_init(&fh_cond, NULL);
}

void pfs_handles_forget(mount_handle_t *mh)
{
    pfs_fh_t **pp, *h;

    pthread_mutex_lock(&fh_lock);
    for (pp = &fh_list; *pp != NULL;) {
        h = *pp;
        if (h->mh == mh) {
            *pp = h->next;
            fh_free(h);
        } else {
            pp = &h->next;
        }
    }
    pthread_mutex_unlock(&fh_lock);
}

/* Adds h as the caller's handle for server handle sfh of mount mid, on
 * inode ino with access mode acc. If the caller already holds that number
 * (a handle from before a remount: vanishingly rare), the server handle is
 * closed and the file opened again for another number. 0, or the errno of
 * that open (h is freed then). */
static int handle_insert(mount_handle_t *mh, pfs_fh_t *h, uint64_t sfh,
                         uint64_t mid, uint64_t ino, int acc, uint64_t *out_fh)
{
    int rc;

    for (;;) {
        pthread_mutex_lock(&fh_lock);
        if (fh_find(mh, sfh) == NULL)
            break;
        pthread_mutex_unlock(&fh_lock);
        close_on(mh, mid, sfh);
        /* Binary OPEN; mid is the mount of the attempt that answered. */
        if ((rc = pfs_bin_open(mh, ino, acc, &sfh, &mid)) != 0) {
            free(h);
            return rc;
        }
    }
    *h = (pfs_fh_t){ .next = fh_list, .mh = mh, .fh = sfh, .sfh = sfh,
                     .mount_id = mid, .ino = ino, .acc = acc };
    fh_list = h;
    pthread_mutex_unlock(&fh_lock);
    /* A remount between the open and the insertion did not see it. */
    if (pfs_mount_id(mh) != mid)
        pfs_handles_reopen(mh);
    *out_fh = sfh;
    return 0;
}

static int check_open_flags(int flags)
{
    if ((flags & ~O_ACCMODE) != 0 || (flags & O_ACCMODE) == O_ACCMODE)
        return pfs_set_error(EINVAL, "open: flags %#x: only O_RDONLY, "
                             "O_WRONLY or O_RDWR", (unsigned)flags);
    return 0;
}

int proxyfs_open(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                 int in_flags, uint64_t *out_fh)
{
    mount_handle_t *mh = in_mount_handle;
    pfs_fh_t *h;
    uint64_t sfh = 0, mid = 0;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_fh == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    *out_fh = 0;
    if ((rc = check_open_flags(in_flags)) != 0)
        PFS_API_RETURN(rc);
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    /* Binary OPEN; mid is the mount of the attempt that answered. */
    rc = pfs_bin_open(mh, in_inode_number, in_flags & O_ACCMODE, &sfh, &mid);
    if (rc != 0) {
        free(h);
        PFS_API_RETURN(rc);
    }
    PFS_API_RETURN(handle_insert(mh, h, sfh, mid, in_inode_number,
                                 in_flags & O_ACCMODE, out_fh));
}

int proxyfs_create_open(mount_handle_t *in_mount_handle,
                        uint64_t in_inode_number, const char *in_basename,
                        mode_t in_mode, int in_flags, uint64_t *out_fh,
                        proxyfs_stat_t *out_stat)
{
    mount_handle_t *mh = in_mount_handle;
    int acc = in_flags & O_ACCMODE;
    pfs_newent_t e = { .method = "create", .type = S_IFREG,
                       .perm = in_mode & 07777, .dir = in_inode_number,
                       .name = in_basename };
    uint8_t rbuf[8 + PFS_BIN_STAT_EXT];
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_CREATE_OPEN, .ino = in_inode_number,
                          .off = (uint64_t)(in_mode & 07777) | ((uint64_t)acc << 32),
                          .flags = PFS_BIN_REQ_STAT_EXT, .rbuf = rbuf,
                          .rcap = sizeof(rbuf) };
    proxyfs_stat_t st;
    uint64_t sfh = 0, mid = 0;
    pfs_fh_t *h;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (in_basename == NULL || out_fh == NULL || out_stat == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    *out_fh = 0;
    if ((rc = check_open_flags(in_flags)) != 0)
        PFS_API_RETURN(rc);
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    bc.name = in_basename;
    bc.namelen = strlen(in_basename);
    rc = pfs_bin_call(mh, &bc);
    pfs_mount_changed(mh);
    if (rc == 0) {
        if (bc.rlen != sizeof(rbuf)) {
            free(h);
            PFS_API_RETURN(pfs_set_error(EIO, "create_open: malformed reply"));
        }
        for (int i = 7; i >= 0; i--)
            sfh = (sfh << 8) | rbuf[i];
        pfs_bin_decode_stat_ext(rbuf + 8, &st);
        mid = bc.mount_id;
    } else if (rc == EEXIST && bc.uncertain) {
        /* The lost attempt may have made it (and opened a handle this
         * call does not know, which pins the file until the mount goes,
         * as a lost open's does): the create's rule, then an open. */
        if ((rc = pfs_newent_rule(mh, &e, &st)) == 0)
            rc = pfs_bin_open(mh, st.ino, acc, &sfh, &mid);
    }
    if (rc != 0) {
        free(h);
        PFS_API_RETURN(rc);
    }
    if ((rc = handle_insert(mh, h, sfh, mid, st.ino, acc, out_fh)) == 0)
        *out_stat = st;
    PFS_API_RETURN(rc);
}

int proxyfs_close(mount_handle_t *in_mount_handle, uint64_t in_fh)
{
    mount_handle_t *mh = in_mount_handle;
    pfs_fh_t **pp, *h;
    bool uncertain = false;
    uint64_t mid = 0;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    pthread_mutex_lock(&fh_lock);
    pp = fh_find(mh, in_fh);
    h = pp != NULL ? *pp : NULL;
    if (h != NULL)
        *pp = h->next;
    pthread_mutex_unlock(&fh_lock);
    if (h == NULL)
        PFS_API_RETURN(pfs_set_error(EBADF, "close: no open handle %llu on "
                                     "this mount", (unsigned long long)in_fh));
    if (h->lost != 0) {
        rc = pfs_set_error(EBADF, "close: the file was lost when the volume "
                           "was mounted again (errno %d)", h->lost);
        fh_free(h);
        PFS_API_RETURN(rc);
    }
    if (h->mount_id != pfs_mount_id(mh)) {
        /* Mounted again and not reopened yet: the server handle went
         * with the old mount. */
        fh_free(h);
        PFS_API_RETURN(0);
    }
    rc = pfs_bin_close(mh, h->sfh, &uncertain, &mid);
    /* EBADF after an attempt lost in flight: that attempt closed it; after
     * a remount: the handle went with the old mount. */
    if (rc == EBADF && (uncertain || mid != h->mount_id ||
                        pfs_mount_id(mh) != h->mount_id)) {
        pfs_clear_error();
        rc = 0;
    }
    fh_free(h);
    PFS_API_RETURN(rc);
}
