/* pool.c - the connection pools, fork handling, the retry worker and the
 * retrying call loops (pfs_rpc, pfs_bin_io) used by the API.
 *
 * There is one pool per server address: a registry of slots, one for the
 * process-wide address (proxyfs_mount: proxyfs_set_server, PROXYFS_SERVER,
 * read when a connection is opened) and one for each address given to
 * proxyfs_mount_server. A mount handle points to its slot. A slot's pool
 * is created by the first call that needs it and destroyed, with every
 * thread joined, when the slot's last mount handle is released. A child
 * process after fork() never touches the parent's pools: it abandons them
 * (closing only its copies of the sockets) and builds its own. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct pfs_pool_slot {
    pfs_pool_slot_t *next;
    char *addr;       /* NULL: the process-wide address */
    pfs_sec_t sec;    /* token and TLS (owned) */
    unsigned users;   /* mount handles (under g_state.lock) */
    pfs_pool_t *pool; /* atomic; NULL until first use, and after fork */
};

static struct {
    pthread_mutex_t lock;
    pfs_pool_slot_t *slots;
} g_state = { PTHREAD_MUTEX_INITIALIZER, NULL };

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static pid_t g_pid; /* the pid the pools were created in (0: none) */

/* ------------------------------------------------------------- fork */

static void atfork_prepare(void)
{
    pthread_rwlock_wrlock(&pfs_mounts_lock);
    pthread_mutex_lock(&g_state.lock);
    pfs_async_atfork_prepare();
    pfs_handles_atfork_prepare();
    pfs_locks_atfork_prepare();
    pfs_tls_atfork_prepare();
}

static void atfork_parent(void)
{
    pfs_tls_atfork_parent();
    pfs_locks_atfork_parent();
    pfs_handles_atfork_parent();
    pfs_async_atfork_parent();
    pthread_mutex_unlock(&g_state.lock);
    pthread_rwlock_unlock(&pfs_mounts_lock);
}

static void pool_abandon(pfs_pool_t *p)
{
    for (int i = 0; i < PFS_POOL_JSON; i++)
        pfs_conn_abandon(&p->json[i]);
    for (int i = 0; i < PFS_POOL_BIN; i++)
        pfs_conn_abandon(&p->bin[i]);
    pfs_direct_close(p);
    free(p);
}

static void atfork_child(void)
{
    pfs_tls_atfork_child(); /* before the pools: see tls.c */
    pfs_locks_atfork_child();
    pfs_handles_atfork_child();
    pfs_async_atfork_child();
    g_pid = 0;
    for (pfs_pool_slot_t *s = g_state.slots; s != NULL; s = s->next) {
        if (s->pool != NULL) {
            pool_abandon(s->pool);
            s->pool = NULL;
        }
    }
    /* Locks of the handles may have been held by threads that do not exist
     * in the child. */
    for (mount_handle_t *mh = pfs_mounts; mh != NULL; mh = mh->next) {
        pthread_mutex_init(&mh->lock, NULL);
        pthread_mutex_init(&mh->dlock, NULL);
        pfs_cond_init(&mh->cond);
        mh->async_inflight = 0;
    }
    /* Re-initialized rather than unlocked: a write-locked rwlock records its
     * owner's thread id, which differs in the child. */
    pthread_mutex_init(&g_state.lock, NULL);
    pthread_rwlock_init(&pfs_mounts_lock, NULL);
}

static void register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ------------------------------------------------------------ worker */

static void *worker_main(void *arg)
{
    pfs_pool_t *p = arg;

    pthread_mutex_lock(&p->wl);
    while (!p->wstop) {
        uint64_t now = pfs_now_ms();
        uint64_t wake = now + 100;
        pfs_async_t *ready = NULL, **pp = &p->wq;
        pfs_call_t *expired = NULL;
        struct timespec ts;

        while (*pp != NULL) {
            pfs_async_t *a = *pp;

            if (a->retry_at <= now || pfs_is_cancelled(&a->cancel)) {
                *pp = a->qnext;
                a->qnext = ready;
                ready = a;
            } else {
                if (a->retry_at < wake)
                    wake = a->retry_at;
                pp = &a->qnext;
            }
        }
        pthread_mutex_unlock(&p->wl);
        while (ready != NULL) {
            pfs_async_t *next = ready->qnext;

            ready->qnext = NULL;
            pfs_async_retry(p, ready);
            ready = next;
        }
        for (int i = 0; i < PFS_POOL_BIN; i++)
            pfs_conn_collect_expired(&p->bin[i], pfs_now_ms(), &expired);
        while (expired != NULL) {
            pfs_call_t *next = expired->next;

            expired->next = NULL;
            expired->status = ETIMEDOUT;
            expired->done(expired);
            expired = next;
        }
        pthread_mutex_lock(&p->wl);
        if (p->wstop)
            break;
        if (p->wq != NULL) {
            bool due = false;

            now = pfs_now_ms();
            for (pfs_async_t *a = p->wq; a != NULL; a = a->qnext)
                if (a->retry_at <= now || pfs_is_cancelled(&a->cancel))
                    due = true;
            if (due)
                continue;
        }
        if (p->wwake) {
            p->wwake = false;
            continue;
        }
        pfs_deadline_ts(wake, &ts);
        pthread_cond_timedwait(&p->wc, &p->wl, &ts);
    }
    pthread_mutex_unlock(&p->wl);
    return NULL;
}

void pfs_pool_queue_retry(pfs_pool_t *p, pfs_async_t *a, uint64_t delay_ms)
{
    pthread_mutex_lock(&p->wl);
    a->retry_at = pfs_now_ms() + delay_ms;
    a->qnext = p->wq;
    p->wq = a;
    pthread_cond_signal(&p->wc);
    pthread_mutex_unlock(&p->wl);
}

void pfs_pool_wake(pfs_pool_t *p)
{
    pthread_mutex_lock(&p->wl);
    p->wwake = true;
    pthread_cond_signal(&p->wc);
    pthread_mutex_unlock(&p->wl);
}

/* -------------------------------------------------------------- pool */

static void pool_destroy(pfs_pool_t *p)
{
    if (p->wstarted) {
        pthread_mutex_lock(&p->wl);
        p->wstop = true;
        pthread_cond_signal(&p->wc);
        pthread_mutex_unlock(&p->wl);
        pthread_join(p->worker, NULL);
    }
    for (int i = 0; i < PFS_POOL_JSON; i++)
        pfs_conn_destroy(&p->json[i]);
    for (int i = 0; i < PFS_POOL_BIN; i++)
        pfs_conn_destroy(&p->bin[i]);
    pfs_direct_close(p);
    pthread_mutex_destroy(&p->dl);
    pthread_cond_destroy(&p->wc);
    pthread_mutex_destroy(&p->wl);
    free(p);
}

static pfs_pool_t *pool_create(const char *addr, const pfs_sec_t *sec)
{
    pfs_pool_t *p = calloc(1, sizeof(*p));
    sigset_t all, old;
    int rc;

    if (p == NULL)
        return NULL;
    p->pid = getpid();
    p->addr = addr;
    p->sec = sec;
    p->next_id = 1;
    pthread_mutex_init(&p->wl, NULL);
    pfs_cond_init(&p->wc);
    pfs_direct_init(p);
    for (int i = 0; i < PFS_POOL_JSON; i++)
        if (pfs_conn_init(&p->json[i], PFS_CONN_JSON, addr, &p->gw, sec) != 0)
            goto fail;
    for (int i = 0; i < PFS_POOL_BIN; i++)
        if (pfs_conn_init(&p->bin[i], PFS_CONN_BIN, addr, &p->gw, sec) != 0)
            goto fail;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&p->worker, NULL, worker_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        goto fail;
    p->wstarted = true;
    return p;
fail:
    pool_destroy(p);
    return NULL;
}

pfs_pool_t *pfs_pool_get(pfs_pool_slot_t *s)
{
    pfs_pool_t *p;

    /* Fast path, no lock: the pool exists and belongs to this process (the
     * atfork child handler clears the slots' pools and g_pid). A caller
     * holds a mount handle of the slot, so the pool is not released under
     * it. */
    p = __atomic_load_n(&s->pool, __ATOMIC_ACQUIRE);
    if (p != NULL && p->pid == __atomic_load_n(&g_pid, __ATOMIC_RELAXED))
        return p;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&g_state.lock);
    if (s->pool != NULL && s->pool->pid != getpid()) {
        pool_abandon(s->pool);
        __atomic_store_n(&s->pool, NULL, __ATOMIC_RELEASE);
    }
    if (s->pool == NULL) {
        json_object_seed(0);
        __atomic_store_n(&g_pid, getpid(), __ATOMIC_RELAXED);
        __atomic_store_n(&s->pool, pool_create(s->addr, &s->sec), __ATOMIC_RELEASE);
    }
    p = s->pool;
    pthread_mutex_unlock(&g_state.lock);
    if (p == NULL)
        pfs_set_error(ENOMEM, "cannot create the connection pool");
    return p;
}

static bool same_addr(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

pfs_pool_slot_t *pfs_pool_acquire(const char *addr)
{
    pfs_pool_slot_t *s = NULL;

    pfs_pool_acquire_sec(addr, NULL, &s);
    return s;
}

static void sec_free(pfs_sec_t *sec)
{
    if (sec->token != NULL) {
        explicit_bzero(sec->token, strlen(sec->token));
        free(sec->token);
    }
    free(sec->tls_ca);
    free(sec->tls_cert);
    free(sec->tls_key);
    if (sec->tls_ctx != NULL)
        pfs_tls_ctx_free(sec->tls_ctx);
    memset(sec, 0, sizeof(*sec));
}

static bool same_sec(const pfs_sec_t *a, const pfs_sec_t *b)
{
    static const pfs_sec_t none;

    if (b == NULL)
        b = &none;
    return same_addr(a->token, b->token) && a->tls == b->tls &&
           same_addr(a->tls_ca, b->tls_ca) && same_addr(a->tls_cert, b->tls_cert) &&
           same_addr(a->tls_key, b->tls_key);
}

/* Copies o's strings into sec and makes its SSL_CTX. 0, ENOMEM or EINVAL. */
static int sec_copy(pfs_sec_t *sec, const pfs_sec_t *o)
{
    memset(sec, 0, sizeof(*sec));
    if (o == NULL)
        return 0;
    sec->tls = o->tls;
    if ((o->token != NULL && (sec->token = strdup(o->token)) == NULL) ||
        (o->tls_ca != NULL && (sec->tls_ca = strdup(o->tls_ca)) == NULL) ||
        (o->tls_cert != NULL && (sec->tls_cert = strdup(o->tls_cert)) == NULL) ||
        (o->tls_key != NULL && (sec->tls_key = strdup(o->tls_key)) == NULL)) {
        sec_free(sec);
        return pfs_set_error(ENOMEM, "out of memory");
    }
    if (sec->tls) {
        int rc = pfs_tls_ctx_new(sec->tls_ca, sec->tls_cert, sec->tls_key,
                                 &sec->tls_ctx);

        if (rc != 0) {
            sec_free(sec);
            return rc;
        }
    }
    return 0;
}

int pfs_pool_acquire_sec(const char *addr, const pfs_sec_t *sec,
                         pfs_pool_slot_t **out)
{
    pfs_pool_slot_t *s;
    int rc = 0;

    *out = NULL;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&g_state.lock);
    for (s = g_state.slots; s != NULL; s = s->next)
        if (same_addr(s->addr, addr) && same_sec(&s->sec, sec))
            break;
    if (s == NULL) {
        if ((s = calloc(1, sizeof(*s))) == NULL) {
            rc = pfs_set_error(ENOMEM, "out of memory");
        } else if (addr != NULL && (s->addr = strdup(addr)) == NULL) {
            rc = pfs_set_error(ENOMEM, "out of memory");
        } else {
            rc = sec_copy(&s->sec, sec);
        }
        if (rc != 0) {
            if (s != NULL)
                free(s->addr);
            free(s);
            s = NULL;
        } else {
            s->next = g_state.slots;
            g_state.slots = s;
        }
    }
    if (s != NULL)
        s->users++;
    pthread_mutex_unlock(&g_state.lock);
    *out = s;
    return rc;
}

void pfs_pool_release(pfs_pool_slot_t *s)
{
    pfs_pool_t *p = NULL;
    bool last = false;

    pthread_mutex_lock(&g_state.lock);
    if (s->users > 0 && --s->users == 0) {
        pfs_pool_slot_t **pp;

        for (pp = &g_state.slots; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        }
        p = s->pool;
        __atomic_store_n(&s->pool, NULL, __ATOMIC_RELEASE);
        last = true;
    }
    pthread_mutex_unlock(&g_state.lock);
    if (p != NULL) {
        if (p->pid == getpid())
            pool_destroy(p);
        else
            pool_abandon(p);
    }
    if (last) {
        free(s->addr); /* after the pool: its connections point to it */
        sec_free(&s->sec);
        free(s);
    }
}

pfs_conn_t *pfs_pool_json_conn(pfs_pool_t *p)
{
    unsigned n = __atomic_fetch_add(&p->rr_json, 1, __ATOMIC_RELAXED);

    return &p->json[n % PFS_POOL_JSON];
}

pfs_conn_t *pfs_pool_bin_conn(pfs_pool_t *p)
{
    unsigned n = __atomic_fetch_add(&p->rr_bin, 1, __ATOMIC_RELAXED);

    return &p->bin[n % PFS_POOL_BIN];
}

uint64_t pfs_pool_new_id(pfs_pool_t *p)
{
    return __atomic_fetch_add(&p->next_id, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------ sync waiting */

typedef struct {
    pfs_call_t call;
    pthread_mutex_t m;
    pthread_cond_t cv;
    bool done;
} pfs_waiter_t;

static void waiter_done(pfs_call_t *call)
{
    pfs_waiter_t *w = call->arg;

    pthread_mutex_lock(&w->m);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->m);
}

static void waiter_init(pfs_waiter_t *w, uint64_t id)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->m, NULL);
    pfs_cond_init(&w->cv);
    w->call.id = id;
    w->call.done = waiter_done;
    w->call.arg = w;
}

static void waiter_fini(pfs_waiter_t *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->m);
}

/* Waits for a submitted call. Returns ETIMEDOUT or the call's status
 * (0 = reply in the call, PFS_LOST). With PFS_NO_DEADLINE (a lock call
 * that waits at the server: F_SETLKW, blocking flock) it waits until the
 * reply comes or the connection breaks, however long that takes: the
 * call timeout does not apply to a wait. */
static int wait_done(pfs_conn_t *c, pfs_waiter_t *w, uint64_t deadline_ms)
{
    struct timespec ts;

    pthread_mutex_lock(&w->m);
    if (deadline_ms == PFS_NO_DEADLINE) {
        while (!w->done)
            pthread_cond_wait(&w->cv, &w->m);
        pthread_mutex_unlock(&w->m);
        return w->call.status;
    }
    pfs_deadline_ts(deadline_ms, &ts);
    while (!w->done) {
        if (pthread_cond_timedwait(&w->cv, &w->m, &ts) == ETIMEDOUT &&
            !w->done) {
            pthread_mutex_unlock(&w->m);
            if (pfs_conn_cancel(c, &w->call))
                return ETIMEDOUT;
            /* The reader owns the call: it finishes soon. */
            pthread_mutex_lock(&w->m);
            while (!w->done)
                pthread_cond_wait(&w->cv, &w->m);
            break;
        }
    }
    pthread_mutex_unlock(&w->m);
    return w->call.status;
}

/* Submits and waits. Returns PFS_NOTSENT, ETIMEDOUT, or the call's status
 * (0 = reply in the call, PFS_LOST). */
static int submit_wait(pfs_conn_t *c, pfs_waiter_t *w, const void *a,
                       size_t alen, const void *b, size_t blen,
                       uint64_t deadline_ms)
{
    int rc = pfs_conn_submit(c, &w->call, a, alen, b, blen);

    if (rc != 0)
        return rc; /* PFS_NOTSENT or PFS_REFUSED */
    return wait_done(c, w, deadline_ms);
}

/* One synchronous binary attempt: on a direct socket when one is free,
 * else pipelined. Same results as submit_wait. */
static int bin_attempt(pfs_pool_t *p, pfs_waiter_t *w, const void *a,
                       size_t alen, const void *b, size_t blen,
                       uint64_t deadline_ms)
{
    int rc = pfs_direct_call(p, &w->call, a, alen, b, blen, deadline_ms);

    if (rc != PFS_BUSY)
        return rc;
    return submit_wait(pfs_pool_bin_conn(p), w, a, alen, b, blen, deadline_ms);
}

int pfs_json_call_once(pfs_pool_slot_t *s, const char *method,
                       const json_t *params, uint64_t deadline_ms,
                       json_t **out_reply)
{
    pfs_pool_t *p = pfs_pool_get(s);
    pfs_waiter_t w;
    char *frame;
    size_t len;
    int rc;

    if (p == NULL)
        return ENOMEM;
    waiter_init(&w, pfs_pool_new_id(p));
    frame = pfs_json_encode_request(w.call.id, method, params, &len);
    if (frame == NULL) {
        waiter_fini(&w);
        return pfs_set_error(ENOMEM, "cannot encode %s request", method);
    }
    rc = submit_wait(pfs_pool_json_conn(p), &w, frame, len, NULL, 0, deadline_ms);
    free(frame);
    if (rc == 0)
        *out_reply = w.call.reply;
    else if (w.call.reply != NULL)
        json_decref(w.call.reply);
    waiter_fini(&w);
    return rc;
}

/* ------------------------------------------------------ retrying calls */

/* pfs_rpc (with_mount) and pfs_rpc_nomount: attempts under the retry rule
 * (retry.c). */
static int rpc(mount_handle_t *mh, bool with_mount, uint64_t fh,
               const char *method, json_t *params, bool *out_uncertain,
               json_t **out_result)
{
    pfs_retry_t r;

    pfs_retry_init(&r, pfs_mount_timeout_ms(mh));
    r.busy_is_retry = true;
    if (out_result != NULL)
        *out_result = NULL;
    if (out_uncertain != NULL)
        *out_uncertain = false;
    for (;;) {
        uint64_t mid = 0;
        json_t *reply = NULL, *res = NULL;
        bool bad_mount = false;
        int rc, e = 0;

        if (with_mount) {
            mid = pfs_mount_id(mh);
            if (fh != 0) {
                /* Through a handle: its server handle, on the mount it
                 * was opened on (see pfs_bin_call). */
                uint64_t sfh, ino;

                if ((rc = pfs_handle_server(mh, fh, &mid, &sfh, &ino)) != 0)
                    return rc;
                if (json_object_set_new(params, "fh",
                                        json_integer((json_int_t)sfh)) != 0 ||
                    json_object_set_new(params, "inode",
                                        json_integer((json_int_t)ino)) != 0)
                    return pfs_set_error(ENOMEM, "out of memory");
            }
            if (json_object_set_new(params, "mount_id",
                                    json_integer((json_int_t)mid)) != 0)
                return pfs_set_error(ENOMEM, "out of memory");
            /* The calling thread's identity; unmount takes none. */
            if (strcmp(method, "unmount") != 0 &&
                pfs_json_set_as(params, &pfs_thread_ident) != 0)
                return pfs_set_error(ENOMEM, "out of memory");
        }
        rc = pfs_json_call_once(mh->pool, method, params, r.deadline_ms,
                                &reply);
        if (rc == 0) {
            e = pfs_json_reply_status(reply, &res, &bad_mount);
            bad_mount = bad_mount && with_mount;
        }
        switch (pfs_retry_step(&r, rc, bad_mount, e)) {
        case PFS_STEP_REPLY:
            if (out_uncertain != NULL)
                *out_uncertain = r.uncertain;
            if (e == 0 && out_result != NULL)
                *out_result = json_incref(res);
            json_decref(reply);
            /* An errno as the server sent it; after an attempt lost in
             * flight (*out_uncertain) the caller applies the retry rule
             * of PROTOCOL.md, "Retries". */
            return e;
        case PFS_STEP_REMOUNT:
            json_decref(reply);
            if ((rc = pfs_remount(mh, mid, r.deadline_ms)) != 0)
                return rc;
            continue;
        case PFS_STEP_BACKOFF:
            json_decref(reply);
            if (pfs_retry_backoff(&r))
                continue;
            break;
        case PFS_STEP_FAIL:
            json_decref(reply);
            break;
        }
        if (out_uncertain != NULL)
            *out_uncertain = r.uncertain;
        return pfs_retry_error(&r, method);
    }
}

int pfs_rpc(mount_handle_t *mh, const char *method, json_t *params,
            bool *out_uncertain, json_t **out_result)
{
    return rpc(mh, true, 0, method, params, out_uncertain, out_result);
}

int pfs_rpc_fh(mount_handle_t *mh, uint64_t fh, const char *method,
               json_t *params, json_t **out_result)
{
    return rpc(mh, true, fh, method, params, NULL, out_result);
}

int pfs_rpc_nomount(mount_handle_t *mh, const char *method, json_t *params,
                    json_t **out_result)
{
    return rpc(mh, false, 0, method, params, NULL, out_result);
}

int pfs_bin_io(mount_handle_t *mh, int op, uint64_t ino, uint64_t off,
               uint8_t *buf, size_t len, size_t *out_len)
{
    return pfs_bin_io_fh(mh, op, 0, ino, off, buf, len, out_len);
}

int pfs_bin_io_fh(mount_handle_t *mh, int op, uint64_t fh, uint64_t ino,
                  uint64_t off, uint8_t *buf, size_t len, size_t *out_len)
{
    pfs_bin_call_t bc = { .op = (uint16_t)op, .ino = ino, .off = off, .fh = fh };
    int rc;

    if (op == PFS_BIN_OP_WRITE) {
        bc.payload = buf;
        bc.paylen = len;
    } else {
        bc.length = (uint32_t)len;
        bc.rbuf = buf;
        bc.rcap = len;
    }
    if ((rc = pfs_bin_call(mh, &bc)) != 0)
        return rc;
    *out_len = bc.rlen;
    return 0;
}

/* A synchronous binary write of len bytes (at most max_io), split into
 * pieces of about PFS_STRIPE bytes that are all in flight at once, over the
 * binary connections in turn. The server runs requests concurrently, so its
 * disk writes overlap the transfer of the other pieces instead of
 * alternating with it. A piece whose attempt did not get a clean reply
 * (connection lost, not sent, stale mount, refused connection) is done
 * again alone through pfs_bin_io, with its retry rules. (Reads are not
 * striped: the daemon sends them with sendfile as the socket drains.) */
int pfs_bin_write_striped(mount_handle_t *mh, uint64_t ino, uint64_t off,
                          uint8_t *buf, size_t len, size_t *out_len)
{
    const int op = PFS_BIN_OP_WRITE;
    pfs_waiter_t w[PFS_STRIPE_MAX];
    pfs_conn_t *conn[PFS_STRIPE_MAX];
    size_t poff[PFS_STRIPE_MAX], plen[PFS_STRIPE_MAX], total = 0, piece;
    int st[PFS_STRIPE_MAX];
    unsigned n, i;
    uint64_t deadline, mid;
    pfs_pool_t *p;
    int rc = 0;

    if (len < 2 * PFS_STRIPE)
        return pfs_bin_io(mh, op, ino, off, buf, len, out_len);
    if ((p = pfs_pool_get(mh->pool)) == NULL)
        return ENOMEM;
    n = (unsigned)((len + PFS_STRIPE - 1) / PFS_STRIPE);
    if (n > PFS_STRIPE_MAX)
        n = PFS_STRIPE_MAX;
    piece = (len + n - 1) / n;
    piece = (piece + 4095) & ~(size_t)4095;
    deadline = pfs_now_ms() + pfs_mount_timeout_ms(mh);
    mid = pfs_mount_id(mh);
    for (i = 0; i < n && i * piece < len; i++) {
        pfs_bin_req_t req = { .flags = 0 };
        uint8_t hdr[PFS_BIN_REQ_MAX];
        size_t hlen;

        poff[i] = i * piece;
        plen[i] = len - poff[i] < piece ? len - poff[i] : piece;
        waiter_init(&w[i], pfs_pool_new_id(p));
        req.op = (uint16_t)op;
        req.id = w[i].call.id;
        req.mount_id = mid;
        req.inode = ino;
        req.offset = off + poff[i];
        req.length = (uint32_t)plen[i];
        hlen = pfs_bin_encode_request_as(&req, &pfs_thread_ident, hdr);
        conn[i] = pfs_pool_bin_conn(p);
        st[i] = pfs_conn_submit(conn[i], &w[i].call, hdr, hlen,
                                buf + poff[i], plen[i]) != 0
                    ? PFS_NOTSENT
                    : 0;
    }
    n = i;
    for (i = 0; i < n; i++)
        if (st[i] == 0)
            st[i] = wait_done(conn[i], &w[i], deadline);
    for (i = 0; i < n; i++) {
        size_t got = 0;
        int r;

        if (rc != 0) {
            /* after an error: only clean up */
            waiter_fini(&w[i]);
            continue;
        }
        if (st[i] == 0 && !(w[i].call.brep.flags & PFS_BIN_FLAG_BAD_MOUNT) &&
            w[i].call.brep.err != EAGAIN) {
            r = w[i].call.brep.err;
            if (r != 0)
                pfs_set_error(r, "write of inode %llu", (unsigned long long)ino);
            got = w[i].call.brep.length;
        } else if (st[i] == ETIMEDOUT) {
            r = pfs_set_error(ETIMEDOUT, "no reply in time");
        } else {
            r = pfs_bin_io(mh, op, ino, off + poff[i], buf + poff[i], plen[i],
                           &got);
        }
        waiter_fini(&w[i]);
        if (r != 0) {
            rc = r;
            continue;
        }
        total += got;
        if (got < plen[i])
            rc = pfs_set_error(EIO, "short write of inode %llu",
                               (unsigned long long)ino);
    }
    if (rc == 0)
        *out_len = total;
    return rc;
}

/* ------------------------------------------------- binary metadata calls */

static const char *bin_op_name(int op)
{
    switch (op) {
    case PFS_BIN_OP_LOOKUP: return "lookup";
    case PFS_BIN_OP_GET_STAT: return "get_stat";
    case PFS_BIN_OP_CREATE: return "create";
    case PFS_BIN_OP_UNLINK: return "unlink";
    case PFS_BIN_OP_READDIR_PLUS: return "readdir_plus";
    case PFS_BIN_OP_FLUSH: return "flush";
    case PFS_BIN_OP_LOOKUP_CI: return "lookup_ci";
    case PFS_BIN_OP_READDIR_PLUS_XATTR: return "readdir_plus";
    case PFS_BIN_OP_OPEN: return "open";
    case PFS_BIN_OP_CLOSE: return "close";
    case PFS_BIN_OP_LOCK: return "lock";
    case PFS_BIN_OP_SETATTR: return "setattr";
    case PFS_BIN_OP_GET_XATTR: return "get_xattr";
    case PFS_BIN_OP_SET_XATTR: return "set_xattr";
    case PFS_BIN_OP_LIST_XATTR: return "list_xattr";
    case PFS_BIN_OP_CREATE_OPEN: return "create_open";
    case PFS_BIN_OP_READ: return "read";
    case PFS_BIN_OP_WRITE: return "write";
    }
    return "binary call";
}

/* Records the error of a binary metadata reply, in the style of the
 * server's JSON-RPC messages: "lookup 1/\"name\"" or "get_stat 5". */
static int bin_error(const pfs_bin_call_t *bc, int e, const char *what)
{
    if (bc->name != NULL)
        return pfs_set_error(e, "%s %llu/\"%.*s\"%s%s", bin_op_name(bc->op),
                             (unsigned long long)bc->ino,
                             (int)(bc->namelen > 200 ? 200 : bc->namelen),
                             bc->name, what[0] ? ": " : "", what);
    return pfs_set_error(e, "%s %llu%s%s", bin_op_name(bc->op),
                         (unsigned long long)bc->ino, what[0] ? ": " : "", what);
}

int pfs_bin_call(mount_handle_t *mh, pfs_bin_call_t *bc)
{
    const void *payload = bc->name != NULL ? (const void *)bc->name : bc->payload;
    size_t paylen = bc->name != NULL ? bc->namelen : bc->paylen;
    pfs_retry_t r;
    pfs_pool_t *p;

    pfs_retry_init(&r, pfs_mount_timeout_ms(mh));
    r.busy_is_retry = true;
    bc->reply = NULL;
    bc->rlen = 0;
    bc->uncertain = false;
    if (bc->name != NULL && bc->namelen > PFS_BIN_MAX_NAME)
        return bin_error(bc, ENAMETOOLONG, "name too long");
    for (;;) {
        pfs_waiter_t w;
        pfs_bin_req_t req = { .flags = 0 };
        uint8_t hdr[PFS_BIN_REQ_MAX];
        size_t hlen;
        pfs_bin_rep_t rep;
        int rc;

        if ((p = pfs_pool_get(mh->pool)) == NULL)
            return ENOMEM;
        req.mount_id = pfs_mount_id(mh);
        if (bc->fh != 0) {
            /* Through a handle: its server handle, on the mount it was
             * opened on (a stale one gets bad_mount, and the remount
             * opens it again). */
            if ((rc = pfs_handle_server(mh, bc->fh, &req.mount_id, &req.fh,
                                        &bc->ino)) != 0)
                return rc;
        }
        waiter_init(&w, pfs_pool_new_id(p));
        req.op = bc->op;
        req.id = w.call.id;
        req.inode = bc->ino;
        req.offset = bc->off;
        req.length = payload != NULL ? (uint32_t)paylen : bc->length;
        req.flags = bc->flags;
        hlen = pfs_bin_encode_request_as(&req, &pfs_thread_ident, hdr);
        w.call.rbuf = bc->rbuf;
        w.call.rcap = bc->rcap;
        w.call.ralloc = bc->ralloc;
        rc = bin_attempt(p, &w, hdr, hlen, payload, paylen, r.deadline_ms);
        waiter_fini(&w);
        rep = w.call.brep;
        if (w.call.rbuf != bc->rbuf &&
            (rc != 0 || rep.err != 0 || (rep.flags & PFS_BIN_FLAG_BAD_MOUNT))) {
            free(w.call.rbuf); /* a reply buffer the reader allocated */
            w.call.rbuf = bc->rbuf;
        }
        switch (pfs_retry_step(&r, rc, rc == 0 && (rep.flags & PFS_BIN_FLAG_BAD_MOUNT),
                               rc == 0 ? (int)rep.err : 0)) {
        case PFS_STEP_REPLY:
            bc->uncertain = r.uncertain;
            bc->mount_id = req.mount_id;
            if (rep.err != 0)
                return bin_error(bc, (int)rep.err, ""); /* see pfs_rpc */
            bc->reply = w.call.rbuf;
            bc->rlen = rep.length;
            return 0;
        case PFS_STEP_REMOUNT:
            if ((rc = pfs_remount(mh, req.mount_id, r.deadline_ms)) != 0)
                return rc;
            continue;
        case PFS_STEP_BACKOFF:
            if (pfs_retry_backoff(&r))
                continue;
            break;
        case PFS_STEP_FAIL:
            break;
        }
        bc->uncertain = r.uncertain;
        return pfs_retry_error(&r, bin_op_name(bc->op));
    }
}
