/* mount.c - mount handles: mount, unmount, and mounting again with the same
 * volume and identity when the daemon no longer knows the mount id (it
 * restarted). The new mount id is swapped in under the handle's lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"

pthread_rwlock_t pfs_mounts_lock = PTHREAD_RWLOCK_INITIALIZER;
mount_handle_t *pfs_mounts;
__thread bool pfs_in_callback;

bool pfs_mount_valid(mount_handle_t *mh)
{
    bool ok = false;

    if (mh == NULL)
        return false;
    pthread_rwlock_rdlock(&pfs_mounts_lock);
    for (mount_handle_t *m = pfs_mounts; m != NULL; m = m->next) {
        if (m == mh) {
            ok = true;
            break;
        }
    }
    pthread_rwlock_unlock(&pfs_mounts_lock);
    return ok;
}

uint64_t pfs_mount_id(mount_handle_t *mh)
{
    uint64_t id;

    pthread_mutex_lock(&mh->lock);
    id = mh->mount_id;
    pthread_mutex_unlock(&mh->lock);
    return id;
}

uint64_t pfs_mount_max_io(mount_handle_t *mh)
{
    uint64_t m;

    pthread_mutex_lock(&mh->lock);
    m = mh->max_io;
    pthread_mutex_unlock(&mh->lock);
    return m;
}

void pfs_mount_changed(mount_handle_t *mh)
{
    __atomic_fetch_add(&mh->mutations, 1, __ATOMIC_RELAXED);
}

void pfs_mount_async_begin(mount_handle_t *mh)
{
    pthread_mutex_lock(&mh->lock);
    mh->async_inflight++;
    pthread_mutex_unlock(&mh->lock);
}

void pfs_mount_async_end(mount_handle_t *mh)
{
    pthread_mutex_lock(&mh->lock);
    if (--mh->async_inflight == 0)
        pthread_cond_broadcast(&mh->cond);
    pthread_mutex_unlock(&mh->lock);
}

/* Fills buf (33 bytes) with a random client instance id: 32 hex digits.
 * Returns 0 or an errno (recorded). */
static int new_client_id(char *buf)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    size_t got = 0;
    int saved = errno;

    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

        if (n < 0) {
            int err = errno;

            if (err == EINTR)
                continue;
            errno = saved;
            return pfs_set_error(err, "mount: getrandom: %s", strerror(err));
        }
        got += (size_t)n;
    }
    errno = saved;
    for (size_t i = 0; i < sizeof(r); i++) {
        buf[2 * i] = hex[r[i] >> 4];
        buf[2 * i + 1] = hex[r[i] & 15];
    }
    buf[32] = '\0';
    return 0;
}

static json_t *mount_params(mount_handle_t *mh)
{
    json_t *p = json_pack("{sssIsssIsIss}", "volume", mh->volume, "options",
                          (json_int_t)mh->options, "user", mh->user, "uid",
                          (json_int_t)mh->uid, "gid", (json_int_t)mh->gid,
                          "client", mh->client);
    json_t *g;

    if (p == NULL || mh->ngroups == 0)
        return p;
    if ((g = json_array()) == NULL || json_object_set_new(p, "groups", g) != 0) {
        json_decref(p);
        return NULL;
    }
    for (uint32_t i = 0; i < mh->ngroups; i++) {
        if (json_array_append_new(g, json_integer((json_int_t)mh->groups[i])) != 0) {
            json_decref(p);
            return NULL;
        }
    }
    return p;
}

/* ------------------------------------------------ per-thread identity */

__thread pfs_ident_t pfs_thread_ident;

bool pfs_ident_equal(const pfs_ident_t *a, const pfs_ident_t *b)
{
    if (a->set != b->set)
        return false;
    if (!a->set)
        return true;
    return a->uid == b->uid && a->gid == b->gid && a->ngroups == b->ngroups &&
           memcmp(a->groups, b->groups, a->ngroups * sizeof(a->groups[0])) == 0;
}

int pfs_json_set_as(json_t *params, const pfs_ident_t *id)
{
    json_t *as, *g;

    if (id == NULL || !id->set)
        return 0;
    as = json_pack("{sIsI}", "uid", (json_int_t)id->uid, "gid",
                   (json_int_t)id->gid);
    if (as == NULL)
        return ENOMEM;
    if (id->ngroups > 0) {
        if ((g = json_array()) == NULL || json_object_set_new(as, "groups", g) != 0) {
            json_decref(as);
            return ENOMEM;
        }
        for (uint32_t i = 0; i < id->ngroups; i++) {
            if (json_array_append_new(g, json_integer((json_int_t)id->groups[i])) != 0) {
                json_decref(as);
                return ENOMEM;
            }
        }
    }
    return json_object_set_new(params, "as", as) != 0 ? ENOMEM : 0;
}

int proxyfs_set_thread_identity(uid_t in_uid, gid_t in_gid, size_t in_ngroups,
                                const gid_t *in_groups)
{
    PFS_API_ENTER();
    if (in_ngroups > PFS_MAX_GROUPS)
        PFS_API_RETURN(pfs_set_error(EINVAL, "%zu groups (at most %d)",
                                     in_ngroups, PFS_MAX_GROUPS));
    if (in_ngroups > 0 && in_groups == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "NULL groups"));
    pfs_thread_ident.uid = (uint32_t)in_uid;
    pfs_thread_ident.gid = (uint32_t)in_gid;
    pfs_thread_ident.ngroups = (uint32_t)in_ngroups;
    for (size_t i = 0; i < in_ngroups; i++)
        pfs_thread_ident.groups[i] = (uint32_t)in_groups[i];
    pfs_thread_ident.set = true;
    PFS_API_RETURN(0);
}

int proxyfs_clear_thread_identity(void)
{
    PFS_API_ENTER();
    memset(&pfs_thread_ident, 0, sizeof(pfs_thread_ident));
    PFS_API_RETURN(0);
}

static int mount_result(mount_handle_t *mh, json_t *res)
{
    uint64_t id, root, maxio = 0, uid;

    if (pfs_json_get_u64(res, "mount_id", &id) != 0 ||
        pfs_json_get_u64(res, "root_inode", &root) != 0)
        return pfs_set_error(EIO, "malformed mount reply");
    pfs_json_get_u64(res, "max_io_size", &maxio);
    if (maxio == 0 || maxio > UINT32_MAX)
        maxio = 8u << 20;
    /* The uid the server acts as (root_squash may replace 0); a server
     * older than permissions does not say: the mount's own. */
    if (pfs_json_get_u64(res, "uid", &uid) != 0 || uid > UINT32_MAX)
        uid = (uint64_t)mh->uid;
    mh->mount_id = id;
    mh->root_inode = root;
    mh->max_io = maxio;
    mh->act_uid = uid;
    return 0;
}

int pfs_remount(mount_handle_t *mh, uint64_t old_id, uint64_t deadline_ms)
{
    json_t *params, *res = NULL;
    int rc = 0;

    (void)deadline_ms;
    pthread_mutex_lock(&mh->lock);
    if (mh->mount_id == old_id) {
        params = mount_params(mh);
        if (params == NULL) {
            rc = pfs_set_error(ENOMEM, "out of memory");
        } else {
            rc = pfs_rpc_nomount(mh, "mount", params, &res);
            json_decref(params);
            if (rc == 0)
                rc = mount_result(mh, res);
            json_decref(res);
            if (rc != 0 && rc != ETIMEDOUT && rc != EIO && rc != ENOMEM &&
                rc != EACCES)
                rc = pfs_set_error(EINVAL, "mount lost and mounting again "
                                   "failed: %s", proxyfs_last_error());
        }
    }
    pthread_mutex_unlock(&mh->lock);
    if (rc == 0) {
        pfs_mount_changed(mh);
        pfs_handles_reopen(mh); /* open files again, within reclaim_grace */
    }
    return rc;
}

static void mh_free(mount_handle_t *mh)
{
    pfs_dcache_clear(mh);
    pthread_cond_destroy(&mh->cond);
    pthread_mutex_destroy(&mh->dlock);
    pthread_mutex_destroy(&mh->lock);
    free(mh->volume);
    free(mh->user);
    free(mh);
}

/* proxyfs_mount (server NULL: the process-wide address) and
 * proxyfs_mount_server. Returns 0 or an errno (recorded). */
static int mount_at(const char *server, const pfs_sec_t *sec,
                    const char *in_volume_name,
                    uint64_t in_mount_options, const char *in_auth_user,
                    uid_t in_uid, gid_t in_gid, size_t in_ngroups,
                    const gid_t *in_groups, mount_handle_t **out_mount_handle)
{
    mount_handle_t *mh;
    json_t *params, *reply = NULL, *res;
    uint64_t deadline;
    bool bad;
    int rc = PFS_NOTSENT;

    if (out_mount_handle == NULL || in_volume_name == NULL ||
        in_volume_name[0] == '\0')
        return pfs_set_error(EINVAL, "mount: missing volume name or "
                             "output pointer");
    *out_mount_handle = NULL;
    if (in_mount_options & ~(uint64_t)PROXYFS_MOUNT_READ_ONLY)
        return pfs_set_error(EINVAL, "mount: unknown option bits");
    if (in_ngroups > PFS_MAX_GROUPS || (in_ngroups > 0 && in_groups == NULL))
        return pfs_set_error(EINVAL, "mount: %zu groups (at most %d, not NULL)",
                             in_ngroups, PFS_MAX_GROUPS);
    mh = calloc(1, sizeof(*mh));
    if (mh == NULL)
        return pfs_set_error(ENOMEM, "out of memory");
    mh->volume = strdup(in_volume_name);
    mh->user = strdup(in_auth_user != NULL ? in_auth_user : "");
    if (mh->volume == NULL || mh->user == NULL) {
        free(mh->volume);
        free(mh->user);
        free(mh);
        return pfs_set_error(ENOMEM, "out of memory");
    }
    mh->options = in_mount_options;
    mh->uid = in_uid;
    mh->gid = in_gid;
    mh->ngroups = (uint32_t)in_ngroups;
    for (size_t i = 0; i < in_ngroups; i++)
        mh->groups[i] = (uint32_t)in_groups[i];
    pthread_mutex_init(&mh->lock, NULL);
    pthread_mutex_init(&mh->dlock, NULL);
    pfs_cond_init(&mh->cond);
    if ((rc = new_client_id(mh->client)) != 0) {
        mh_free(mh);
        return rc;
    }

    params = mount_params(mh);
    if (params == NULL) {
        mh_free(mh);
        return pfs_set_error(EINVAL, "mount: volume or user name is not "
                             "valid UTF-8");
    }
    if ((rc = pfs_pool_acquire_sec(server, sec, &mh->pool)) != 0) {
        json_decref(params);
        mh_free(mh);
        return rc;
    }
    /* A few quick attempts: an unreachable daemon is ENODEV, not a wait. */
    deadline = pfs_now_ms() + pfs_config_timeout_ms();
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt > 0)
            pfs_sleep_ms(50u << attempt);
        rc = pfs_json_call_once(mh->pool, "mount", params, deadline, &reply);
        if (rc != PFS_NOTSENT && rc != PFS_LOST)
            break;
    }
    json_decref(params);
    if (rc == PFS_NOTSENT || rc == PFS_LOST) {
        rc = pfs_set_error(ENODEV, "cannot reach proxyfsd: %s",
                           proxyfs_last_error());
    } else if (rc == PFS_REFUSED) {
        rc = pfs_set_error(EACCES, "mount: %s", proxyfs_last_error());
    } else if (rc == 0) {
        rc = pfs_json_reply_status(reply, &res, &bad);
        if (rc == 0)
            rc = mount_result(mh, res);
        json_decref(reply);
    }
    if (rc != 0) {
        pfs_pool_slot_t *s = mh->pool;

        mh_free(mh);
        pfs_pool_release(s);
        return rc;
    }
    pthread_rwlock_wrlock(&pfs_mounts_lock);
    mh->next = pfs_mounts;
    pfs_mounts = mh;
    pthread_rwlock_unlock(&pfs_mounts_lock);
    *out_mount_handle = mh;
    return 0;
}

int proxyfs_mount(char *in_volume_name, uint64_t in_mount_options,
                  char *in_auth_user, uid_t in_uid, gid_t in_gid,
                  mount_handle_t **out_mount_handle)
{
    PFS_API_ENTER();
    PFS_API_RETURN(mount_at(NULL, NULL, in_volume_name, in_mount_options,
                            in_auth_user, in_uid, in_gid, 0, NULL,
                            out_mount_handle));
}

static int check_server(const char *in_server,
                        mount_handle_t **out_mount_handle)
{
    if (in_server != NULL && in_server[0] == '\0') {
        if (out_mount_handle != NULL)
            *out_mount_handle = NULL;
        return pfs_set_error(EINVAL, "mount: empty server address");
    }
    if (in_server != NULL && strlen(in_server) >= PFS_MAX_ADDR) {
        if (out_mount_handle != NULL)
            *out_mount_handle = NULL;
        return pfs_set_error(EINVAL, "mount: server address too long");
    }
    if (in_server != NULL) {
        char e[PFS_MAX_ADDR];
        unsigned n = pfs_addr_count(in_server);

        for (unsigned i = 0; i < n; i++) {
            pfs_addr_entry(in_server, i, e);
            if (e[0] == '\0') {
                if (out_mount_handle != NULL)
                    *out_mount_handle = NULL;
                return pfs_set_error(EINVAL, "mount: empty address in the "
                                     "server list \"%s\"", in_server);
            }
        }
    }
    return 0;
}

int proxyfs_mount_groups(const char *in_server, char *in_volume_name,
                         uint64_t in_mount_options, char *in_auth_user,
                         uid_t in_uid, gid_t in_gid, size_t in_ngroups,
                         const gid_t *in_groups,
                         mount_handle_t **out_mount_handle)
{
    int rc;

    PFS_API_ENTER();
    if ((rc = check_server(in_server, out_mount_handle)) != 0)
        PFS_API_RETURN(rc);
    PFS_API_RETURN(mount_at(in_server, NULL, in_volume_name, in_mount_options,
                            in_auth_user, in_uid, in_gid, in_ngroups,
                            in_groups, out_mount_handle));
}

int proxyfs_mount_server(const char *in_server, char *in_volume_name,
                         uint64_t in_mount_options, char *in_auth_user,
                         uid_t in_uid, gid_t in_gid,
                         mount_handle_t **out_mount_handle)
{
    int rc;

    PFS_API_ENTER();
    if ((rc = check_server(in_server, out_mount_handle)) != 0)
        PFS_API_RETURN(rc);
    PFS_API_RETURN(mount_at(in_server, NULL, in_volume_name, in_mount_options,
                            in_auth_user, in_uid, in_gid, 0, NULL,
                            out_mount_handle));
}

int proxyfs_unmount(mount_handle_t *in_mount_handle)
{
    mount_handle_t *mh = in_mount_handle, **pp;
    json_t *params;
    int rc;

    PFS_API_ENTER();
    if (pfs_in_callback)
        PFS_API_RETURN(pfs_set_error(EBUSY, "unmount inside an async callback"));
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));

    pthread_mutex_lock(&mh->lock);
    while (mh->async_inflight > 0)
        pthread_cond_wait(&mh->cond, &mh->lock);
    pthread_mutex_unlock(&mh->lock);

    params = json_object();
    rc = params ? pfs_rpc(mh, "unmount", params, NULL, NULL)
                : pfs_set_error(ENOMEM, "out of memory");
    json_decref(params);

    pthread_rwlock_wrlock(&pfs_mounts_lock);
    for (pp = &pfs_mounts; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == mh) {
            *pp = mh->next;
            break;
        }
    }
    pthread_rwlock_unlock(&pfs_mounts_lock);
    pfs_async_forget_mount(mh);
    pfs_handles_forget(mh);
    {
        pfs_pool_slot_t *s = mh->pool;

        mh_free(mh);
        pfs_pool_release(s); /* the last handle of the pool closes it */
    }
    PFS_API_RETURN(rc);
}

int proxyfs_mount_opts(const proxyfs_mount_opts_t *in_opts,
                       mount_handle_t **out_mount_handle)
{
    proxyfs_mount_opts_t o;
    char *token = NULL;
    int rc;

    PFS_API_ENTER();
    if (out_mount_handle != NULL)
        *out_mount_handle = NULL;
    if (in_opts == NULL || in_opts->size < PROXYFS_MOUNT_OPTS_V1_SIZE)
        PFS_API_RETURN(pfs_set_error(EINVAL, "mount: options missing or "
                                     "their size not set"));
    /* Fields past the caller's size (an older header) are zero. */
    memset(&o, 0, sizeof(o));
    memcpy(&o, in_opts, in_opts->size < sizeof(o) ? in_opts->size : sizeof(o));
    if ((rc = check_server(o.server, out_mount_handle)) != 0)
        PFS_API_RETURN(rc);
    if (o.token != NULL && o.token_file != NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "mount: both token and "
                                     "token_file"));
    if (o.token != NULL) {
        if (o.token[0] == '\0' || strlen(o.token) > PFS_MAX_TOKEN)
            PFS_API_RETURN(pfs_set_error(EINVAL, "mount: token empty or "
                                         "longer than %d bytes",
                                         PFS_MAX_TOKEN));
        if ((token = strdup(o.token)) == NULL)
            PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    } else if (o.token_file != NULL &&
               (rc = pfs_token_read_file(o.token_file, &token)) != 0) {
        PFS_API_RETURN(rc);
    }
    bool tls = o.tls || o.tls_ca_file != NULL || o.tls_cert_file != NULL;

    if ((o.tls_cert_file == NULL) != (o.tls_key_file == NULL)) {
        rc = pfs_set_error(EINVAL, "mount: tls_cert_file and tls_key_file "
                           "go together");
    } else if (tls && o.server != NULL &&
               (strncmp(o.server, "unix:", 5) == 0 || o.server[0] == '/' ||
                o.server[0] == '.')) {
        rc = pfs_set_error(EINVAL, "mount: TLS over the Unix socket %s: use "
                           "a HOST:PORT server", o.server);
    } else {
        pfs_sec_t sec = {
            .token = token,
            .tls = tls,
            .tls_ca = (char *)o.tls_ca_file,
            .tls_cert = (char *)o.tls_cert_file,
            .tls_key = (char *)o.tls_key_file,
        };

        rc = mount_at(o.server, &sec, o.volume, o.options,
                      o.user != NULL ? o.user : "", o.uid, o.gid, o.ngroups,
                      o.groups, out_mount_handle);
    }
    if (token != NULL) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    PFS_API_RETURN(rc);
}
