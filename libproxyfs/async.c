/* async.c - proxyfs_read_send/_recv and proxyfs_write_send/_recv (and the
 * machinery of proxyfs_flush_send/_recv, flush_async.c), and
 * proxyfs_async_cancel.
 *
 * Each request is a pfs_async_t kept in a process-wide registry keyed by the
 * caller's request id. The send goes out in the caller's thread on a binary
 * connection; the completion comes on that connection's reader thread. A
 * request lost with its connection, or answered "bad mount", goes to the
 * pool's worker thread, which remounts if needed and sends it again, until
 * it succeeds, the call timeout passes (ETIMEDOUT) or it was lost too often
 * (EIO). The user callback runs exactly once, on a library thread, and no
 * library lock is held while it runs. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AREG_BUCKETS 256

static pthread_mutex_t areg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t areg_cond = PTHREAD_COND_INITIALIZER;
static pfs_async_t *areg[AREG_BUCKETS];

static unsigned areg_hash(void *id)
{
    uintptr_t v = (uintptr_t)id;

    v ^= v >> 17;
    v *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (unsigned)(v >> 24) % AREG_BUCKETS;
}

/* Under areg_lock. */
static pfs_async_t *areg_find(void *id)
{
    for (pfs_async_t *a = areg[areg_hash(id)]; a != NULL; a = a->hnext)
        if (a->req_id == id)
            return a;
    return NULL;
}

/* Under areg_lock. */
static void areg_remove(pfs_async_t *a)
{
    pfs_async_t **pp = &areg[areg_hash(a->req_id)];

    for (; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == a) {
            *pp = a->hnext;
            a->hnext = NULL;
            return;
        }
    }
}

static void async_free(pfs_async_t *a)
{
    pthread_mutex_destroy(&a->cancel.lock);
    free(a);
}

static void finish(pfs_async_t *a, int status, size_t result)
{
    proxyfs_done_callback_t cb = a->cb;
    void *id = a->req_id;
    mount_handle_t *mh = a->mh;
    pfs_async_t *self = a;

    if (status == ENOENT)
        status = EBADF; /* the inode is gone: EBADF for read and write */
    /* The result is ready before the callback runs (a recv inside the
     * callback returns it); other threads' recv return after it ran. */
    pthread_mutex_lock(&areg_lock);
    if (pfs_is_cancelled(&a->cancel)) {
        /* Cancelled before this completion (under the same lock): the
         * request's outcome is ECANCELED whatever the reply said. */
        status = ECANCELED;
        result = 0;
    }
    a->status = status;
    a->result = result;
    a->completed = true;
    a->cb_thread = pthread_self();
    pthread_mutex_unlock(&areg_lock);
    if (cb != NULL) {
        pfs_in_callback = true;
        cb(id);
        pfs_in_callback = false;
    }
    pthread_mutex_lock(&areg_lock);
    a = areg_find(id);
    if (a == self) /* not yet received by the callback itself */
        a->done = true;
    pthread_cond_broadcast(&areg_cond);
    pthread_mutex_unlock(&areg_lock);
    /* From here on the request may be freed by proxyfs_*_recv. */
    pfs_mount_async_end(mh);
}

/* An attempt's outcome, under the retry rule (retry.c): the reply
 * finishes the request; a remount or another attempt is queued on the
 * pool's worker (never run on the reader thread that calls this). */
static void async_done(pfs_call_t *call)
{
    pfs_async_t *a = call->arg;
    bool bad_mount = call->status == 0 &&
                     (call->brep.flags & PFS_BIN_FLAG_BAD_MOUNT);

    switch (pfs_retry_step(&a->retry, call->status, bad_mount,
                           call->status == 0 ? (int)call->brep.err : 0)) {
    case PFS_STEP_REPLY:
        finish(a, (int)call->brep.err, call->brep.err ? 0 : call->brep.length);
        return;
    case PFS_STEP_REMOUNT:
        a->need_remount = true;
        pfs_pool_queue_retry(a->pool, a, 0);
        return;
    case PFS_STEP_BACKOFF:
        pfs_pool_queue_retry(a->pool, a, pfs_retry_delay(&a->retry));
        return;
    case PFS_STEP_FAIL:
        finish(a, pfs_retry_error(&a->retry, "async request"), 0);
        return;
    }
}

/* Sends one attempt. 0: async_done will be called; PFS_NOTSENT or
 * PFS_REFUSED: not. */
static int start_attempt(pfs_async_t *a)
{
    pfs_bin_req_t req = { .flags = 0 };
    uint8_t hdr[PFS_BIN_REQ_MAX];
    size_t hlen;

    if (pfs_is_cancelled(&a->cancel))
        return PFS_NOTSENT; /* the worker finishes it */
    memset(&a->call, 0, sizeof(a->call));
    a->call.cancel = &a->cancel;
    a->call.id = pfs_pool_new_id(a->pool);
    a->call.is_async = true;
    a->call.deadline_ms = a->retry.deadline_ms;
    a->call.done = async_done;
    a->call.arg = a;
    if (a->op == PFS_BIN_OP_READ) {
        a->call.rbuf = a->buf;
        a->call.rcap = a->len;
    }
    a->used_mount_id = pfs_mount_id(a->mh);
    if (a->fh != 0) {
        /* Through a handle: its server handle on its own mount (see
         * pfs_bin_call). */
        int rc = pfs_handle_server(a->mh, a->fh, &a->used_mount_id, &req.fh,
                                   &a->ino);

        if (rc != 0) {
            a->fh_err = rc;
            return PFS_NOTSENT; /* the worker fails it */
        }
    }
    req.op = (uint16_t)a->op;
    req.id = a->call.id;
    req.mount_id = a->used_mount_id;
    req.inode = a->ino;
    req.offset = a->off;
    req.length = (uint32_t)a->len;
    /* The identity of the thread that sent it, also on a retry. */
    hlen = pfs_bin_encode_request_as(&req, &a->ident, hdr);
    return pfs_conn_submit(pfs_pool_bin_conn(a->pool), &a->call, hdr,
                           hlen, a->op == PFS_BIN_OP_WRITE ? a->buf : NULL,
                           a->op == PFS_BIN_OP_WRITE ? a->len : 0);
}

void pfs_async_retry(pfs_pool_t *p, pfs_async_t *a)
{
    (void)p;
    if (pfs_is_cancelled(&a->cancel)) {
        finish(a, ECANCELED, 0);
        return;
    }
    if (pfs_retry_expired(&a->retry)) {
        finish(a, pfs_retry_error(&a->retry, "async request"), 0);
        return;
    }
    if (a->need_remount) {
        int rc = pfs_remount(a->mh, a->used_mount_id, a->retry.deadline_ms);

        a->need_remount = false;
        if (rc != 0) {
            finish(a, rc, 0);
            return;
        }
    }
    {
        int rc = start_attempt(a);

        if (rc == 0)
            return;
        if (a->fh_err != 0) {
            finish(a, a->fh_err, 0);
            return;
        }
        /* PFS_NOTSENT: again later; PFS_REFUSED (the token): EACCES. */
        if (pfs_retry_step(&a->retry, rc, false, 0) == PFS_STEP_FAIL) {
            finish(a, pfs_retry_error(&a->retry, "async request"), 0);
            return;
        }
        pfs_pool_queue_retry(a->pool, a, pfs_retry_delay(&a->retry));
    }
}

static int async_send(mount_handle_t *mh, int op, uint64_t fh, uint64_t ino,
                      uint64_t off, uint8_t *buf, size_t len, void *req_id,
                      proxyfs_done_callback_t cb);

int pfs_async_send(mount_handle_t *mh, int op, uint64_t ino, uint64_t off,
                      uint8_t *buf, size_t len, void *req_id,
                      proxyfs_done_callback_t cb)
{
    return async_send(mh, op, 0, ino, off, buf, len, req_id, cb);
}

int pfs_async_send_fh(mount_handle_t *mh, int op, uint64_t fh, uint64_t off,
                      uint8_t *buf, size_t len, void *req_id,
                      proxyfs_done_callback_t cb)
{
    uint64_t mid, sfh, ino;
    int rc;

    if (!pfs_mount_valid(mh))
        return pfs_set_error(EINVAL, "invalid mount handle");
    if ((rc = pfs_handle_server(mh, fh, &mid, &sfh, &ino)) != 0)
        return rc;
    return async_send(mh, op, fh, ino, off, buf, len, req_id, cb);
}

static int async_send(mount_handle_t *mh, int op, uint64_t fh, uint64_t ino,
                      uint64_t off, uint8_t *buf, size_t len, void *req_id,
                      proxyfs_done_callback_t cb)
{
    pfs_async_t *a;
    pfs_pool_t *p;

    if (!pfs_mount_valid(mh))
        return pfs_set_error(EINVAL, "invalid mount handle");
    if (req_id == NULL || (buf == NULL && len > 0))
        return pfs_set_error(EINVAL, "NULL request id or buffer");
    if (len > pfs_mount_max_io(mh))
        return pfs_set_error(EINVAL, "request of %zu bytes is over the "
                             "maximum I/O size", len);
    if ((p = pfs_pool_get(mh->pool)) == NULL)
        return ENOMEM;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return pfs_set_error(ENOMEM, "out of memory");
    a->req_id = req_id;
    a->op = op;
    a->mh = mh;
    a->ino = ino;
    a->fh = fh;
    a->off = off;
    a->buf = buf;
    a->len = len;
    a->cb = cb;
    a->ident = pfs_thread_ident;
    a->pool = p;
    pfs_retry_init(&a->retry, pfs_mount_timeout_ms(mh));
    a->retry.busy_is_retry = true;
    pthread_mutex_init(&a->cancel.lock, NULL);

    pthread_mutex_lock(&areg_lock);
    if (areg_find(req_id) != NULL) {
        pthread_mutex_unlock(&areg_lock);
        async_free(a);
        return pfs_set_error(EEXIST, "request id %p is in use", req_id);
    }
    a->hnext = areg[areg_hash(req_id)];
    areg[areg_hash(req_id)] = a;
    pthread_mutex_unlock(&areg_lock);

    pfs_mount_async_begin(mh);
    if (op == PFS_BIN_OP_WRITE)
        pfs_mount_changed(mh);
    if (start_attempt(a) != 0) {
        /* Not connected (or refused): the worker tries again, and fails
         * it if its connection is refused again. */
        pfs_retry_step(&a->retry, PFS_NOTSENT, false, 0);
        pfs_pool_queue_retry(p, a, pfs_retry_delay(&a->retry));
    }
    return 0;
}

int pfs_async_recv(int op, void *req_id, int *out_status, size_t *out_n)
{
    pfs_async_t *a;

    if (out_status == NULL || out_n == NULL)
        return pfs_set_error(EINVAL, "NULL output pointer");
    pthread_mutex_lock(&areg_lock);
    for (;;) {
        a = areg_find(req_id);
        if (a == NULL || a->op != op) {
            pthread_mutex_unlock(&areg_lock);
            return pfs_set_error(ENOENT, "no %s request %p",
                                 op == PFS_BIN_OP_READ    ? "read"
                                 : op == PFS_BIN_OP_WRITE ? "write"
                                                          : "flush",
                                 req_id);
        }
        if (a->done || (a->completed && pfs_in_callback &&
                        pthread_equal(a->cb_thread, pthread_self())))
            break;
        pthread_cond_wait(&areg_cond, &areg_lock);
    }
    areg_remove(a);
    pthread_mutex_unlock(&areg_lock);
    *out_status = a->status;
    *out_n = a->result;
    async_free(a);
    return 0;
}

int proxyfs_async_cancel(void *in_request_id)
{
    pfs_async_t *a;
    int rc = 0;

    PFS_API_ENTER();
    if (in_request_id == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "NULL request id"));
    pthread_mutex_lock(&areg_lock);
    a = areg_find(in_request_id);
    if (a == NULL) {
        rc = pfs_set_error(ENOENT, "no request %p", in_request_id);
    } else if (a->completed) {
        rc = pfs_set_error(EALREADY, "request %p has completed",
                           in_request_id);
    } else {
        /* Not completed: finish() has not taken areg_lock yet, so the
         * request, its mount handle and its pool stay alive while we hold
         * it. Once the flag is set under the cancel lock, the reader thread
         * writes nothing more into a read's buffer. */
        pthread_mutex_lock(&a->cancel.lock);
        __atomic_store_n(&a->cancel.cancelled, true, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&a->cancel.lock);
        /* The worker takes it off its connection (or its retry queue) and
         * completes it; a reply arriving meanwhile completes it as well,
         * as ECANCELED (finish). */
        pfs_pool_wake(a->pool);
    }
    pthread_mutex_unlock(&areg_lock);
    PFS_API_RETURN(rc);
}

int proxyfs_read_send(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                      uint64_t in_offset, uint64_t in_length, uint8_t *in_bufptr,
                      size_t in_bufsize, void *in_request_id,
                      void (*in_done_callback)(void *in_request_id))
{
    size_t n = in_length < in_bufsize ? (size_t)in_length : in_bufsize;

    PFS_API_ENTER();
    PFS_API_RETURN(pfs_async_send(in_mount_handle, PFS_BIN_OP_READ, in_inode_number,
                              in_offset, in_bufptr, n, in_request_id,
                              in_done_callback));
}

int proxyfs_read_recv(void *in_request_id, int *out_rsp_status,
                      size_t *out_bufsize)
{
    PFS_API_ENTER();
    PFS_API_RETURN(pfs_async_recv(PFS_BIN_OP_READ, in_request_id, out_rsp_status,
                              out_bufsize));
}

int proxyfs_write_send(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                       uint64_t in_offset, uint8_t *in_bufptr, size_t in_bufsize,
                       void *in_request_id,
                       void (*in_done_callback)(void *in_request_id))
{
    PFS_API_ENTER();
    PFS_API_RETURN(pfs_async_send(in_mount_handle, PFS_BIN_OP_WRITE, in_inode_number,
                              in_offset, in_bufptr, in_bufsize, in_request_id,
                              in_done_callback));
}

int proxyfs_write_recv(void *in_request_id, int *out_rsp_status,
                       size_t *out_size)
{
    PFS_API_ENTER();
    PFS_API_RETURN(pfs_async_recv(PFS_BIN_OP_WRITE, in_request_id, out_rsp_status,
                              out_size));
}

void pfs_async_forget_mount(mount_handle_t *mh)
{
    pthread_mutex_lock(&areg_lock);
    for (int i = 0; i < AREG_BUCKETS; i++) {
        pfs_async_t **pp = &areg[i];

        while (*pp != NULL) {
            pfs_async_t *a = *pp;

            if (a->mh == mh && a->done) {
                *pp = a->hnext;
                async_free(a);
            } else {
                pp = &a->hnext;
            }
        }
    }
    pthread_cond_broadcast(&areg_cond);
    pthread_mutex_unlock(&areg_lock);
}

void pfs_async_atfork_prepare(void)
{
    pthread_mutex_lock(&areg_lock);
}

void pfs_async_atfork_parent(void)
{
    pthread_mutex_unlock(&areg_lock);
}

void pfs_async_atfork_child(void)
{
    /* The parent's requests complete in the parent only. */
    for (int i = 0; i < AREG_BUCKETS; i++) {
        while (areg[i] != NULL) {
            pfs_async_t *a = areg[i];

            areg[i] = a->hnext;
            free(a); /* its cancel lock may be held by a parent's thread */
        }
    }
    pthread_mutex_init(&areg_lock, NULL);
    pthread_cond_init(&areg_cond, NULL);
}
