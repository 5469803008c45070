/* locks.c - POSIX record locks and flock locks on open handles:
 * proxyfs_lock, proxyfs_flock, proxyfs_lock_cancel, proxyfs_lost_locks
 * (PROTOCOL.md, section 4 "Locks").
 *
 * Calls. Every attempt of a lock call first resolves the caller's fh to
 * the server's current handle (handles.c), so that an attempt after a
 * remount goes to the reopened handle. An attempt of F_SETLKW or of a
 * blocking flock waits at the server without the call timeout
 * (PFS_NO_DEADLINE): it ends when the server answers (granted, EDEADLK,
 * EINTR after proxyfs_lock_cancel) or the connection breaks, in which case
 * the call is sent again after reconnecting (lock calls are idempotent;
 * the call timeout then bounds the reconnecting). An EAGAIN with
 * "reason":"grace" (the daemon restarted and waits for its clients to
 * reclaim their locks) is sent again every second until the call timeout;
 * one with "reason":"busy" (the connection's in-flight limit) after a
 * back-off, like any call's; a plain EAGAIN is F_SETLK's conflict.
 *
 * Bookkeeping. Each handle (pfs_fh_t) keeps the locks held through it as
 * the server holds them: per owner string the sorted disjoint ranges
 * after fcntl's replacing, splitting and merging (pfs_lk_apply), and its
 * flock. They change under the handle table's lock after each successful
 * call, and only if the handle is still on the mount the call went to:
 * otherwise the handle was opened again meanwhile (from a snapshot of its
 * locks that could not include this call's change) and the call is sent
 * again to the new handle.
 *
 * Reclaim. When handles.c opens a handle again after a remount it gives
 * the handle's locks to pfs_locks_reclaim, which re-takes each one with
 * "reclaim": true before the handle is usable again. A lock that cannot
 * be re-taken is forgotten and counted in the mount handle's lost_locks.
 *
 * Cancel. Blocking calls register as waiters. proxyfs_lock_cancel marks
 * the waiters of its (mount handle, fh, owner), so that none of them is
 * sent again, and sends lock_cancel; it sends it again every 100 ms while
 * a marked waiter has not ended (its request may have reached the server
 * after the first lock_cancel did), until the call timeout. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "internal.h"

#define LK_GRACE_RETRY_MS 1000u
#define LK_CANCEL_RETRY_MS 100u
#define LK_MAX_RESEND 5 /* a change sent again after the handle reopened */

/* ------------------------------------------------------ range bookkeeping */

int pfs_lk_reserve(pfs_lk_set_t *s)
{
    pfs_lk_range_t *r;
    size_t cap;

    if (s->cap >= s->n + 2)
        return 0;
    cap = s->cap < 4 ? 4 : s->cap * 2;
    while (cap < s->n + 2)
        cap *= 2;
    r = realloc(s->r, cap * sizeof(*r));
    if (r == NULL)
        return ENOMEM;
    s->r = r;
    s->cap = cap;
    return 0;
}

int pfs_lk_apply(pfs_lk_set_t *s, short type, uint64_t start, uint64_t end)
{
    pfs_lk_range_t m[3];
    size_t lo = 0, hi = s->n, nm = 0, k;

    if (s->n == 0 && type == F_UNLCK)
        return 0;
    if (pfs_lk_reserve(s) != 0)
        return ENOMEM;
    /* lo: the first range that ends at or after start (binary search:
     * the ranges are disjoint, so their ends are sorted too). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->r[mid].end < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* r[lo..hi) overlap or touch [start, end]: the only ranges that can
     * change or merge. Only the first can begin before start, and only
     * the last can run past end (one range may do both: a split). */
    hi = lo;
    while (hi < s->n && s->r[hi].start <= end)
        hi++;
    if (lo < hi && s->r[lo].start < start)
        m[nm++] = (pfs_lk_range_t){ s->r[lo].start,
                                    s->r[lo].end < start ? s->r[lo].end : start,
                                    s->r[lo].type };
    if (type != F_UNLCK) {
        if (nm > 0 && m[nm - 1].type == type && m[nm - 1].end >= start)
            m[nm - 1].end = end; /* the left part has the same type: merge */
        else
            m[nm++] = (pfs_lk_range_t){ start, end, type };
    }
    if (lo < hi && s->r[hi - 1].end > end) {
        pfs_lk_range_t right = { s->r[hi - 1].start > end ? s->r[hi - 1].start : end,
                                 s->r[hi - 1].end, s->r[hi - 1].type };

        if (nm > 0 && m[nm - 1].type == right.type && m[nm - 1].end >= right.start)
            m[nm - 1].end = right.end;
        else
            m[nm++] = right;
    }
    /* Replace r[lo..hi) by m[0..nm): at most 2 more (a split). */
    k = hi - lo;
    if (nm != k)
        memmove(&s->r[lo + nm], &s->r[hi], (s->n - hi) * sizeof(s->r[0]));
    memcpy(&s->r[lo], m, nm * sizeof(m[0]));
    s->n = s->n - k + nm;
    /* Bounded memory: give back most of a set that shrank. */
    if (s->n == 0) {
        pfs_lk_set_free(s);
    } else if (s->cap > 16 && s->n * 4 < s->cap) {
        pfs_lk_range_t *r = realloc(s->r, s->n * 2 * sizeof(*r));

        if (r != NULL) {
            s->r = r;
            s->cap = s->n * 2;
        }
    }
    return 0;
}

void pfs_lk_set_free(pfs_lk_set_t *s)
{
    free(s->r);
    *s = (pfs_lk_set_t){ 0 };
}

size_t pfs_lockset_count(const pfs_lockset_t *ls)
{
    size_t n = ls->flock != 0 ? 1 : 0;

    for (const pfs_lk_owner_t *o = ls->owners; o != NULL; o = o->next)
        n += o->set.n;
    return n;
}

void pfs_lockset_free(pfs_lockset_t *ls)
{
    while (ls->owners != NULL) {
        pfs_lk_owner_t *o = ls->owners;

        ls->owners = o->next;
        pfs_lk_set_free(&o->set);
        free(o);
    }
    ls->flock = 0;
}

/* The entry of owner id in ls, created if create (NULL: none, or no
 * memory). */
static pfs_lk_owner_t *lk_owner(pfs_lockset_t *ls, const char *id, bool create)
{
    pfs_lk_owner_t *o;

    for (o = ls->owners; o != NULL; o = o->next)
        if (strcmp(o->id, id) == 0)
            return o;
    if (!create || (o = calloc(1, sizeof(*o))) == NULL)
        return NULL;
    strcpy(o->id, id); /* checked: at most PFS_LK_OWNER_MAX bytes */
    o->next = ls->owners;
    ls->owners = o;
    return o;
}

/* Drops the entries of owners that hold nothing. */
static void lk_prune(pfs_lockset_t *ls)
{
    pfs_lk_owner_t **pp = &ls->owners;

    while (*pp != NULL) {
        pfs_lk_owner_t *o = *pp;

        if (o->set.n == 0) {
            *pp = o->next;
            pfs_lk_set_free(&o->set);
            free(o);
        } else {
            pp = &o->next;
        }
    }
}

static void lk_count_lost(mount_handle_t *mh, uint64_t n)
{
    if (n > 0)
        __atomic_fetch_add(&mh->lost_locks, n, __ATOMIC_RELAXED);
}

void pfs_locks_lose(mount_handle_t *mh, pfs_lockset_t *ls)
{
    lk_count_lost(mh, pfs_lockset_count(ls));
    pfs_lockset_free(ls);
}

/* ------------------------------------------------------------- waiters */

/* A blocking call in progress, on the caller's stack. */
typedef struct lk_waiter {
    struct lk_waiter *next;
    mount_handle_t *mh;
    uint64_t fh;
    const char *owner;
    bool cancelled; /* by proxyfs_lock_cancel: not to be sent again */
} lk_waiter_t;

static pthread_mutex_t wl_lock = PTHREAD_MUTEX_INITIALIZER;
static lk_waiter_t *wl_list;

static void waiter_add(lk_waiter_t *w)
{
    pthread_mutex_lock(&wl_lock);
    w->next = wl_list;
    wl_list = w;
    pthread_mutex_unlock(&wl_lock);
}

static void waiter_del(lk_waiter_t *w)
{
    pthread_mutex_lock(&wl_lock);
    for (lk_waiter_t **pp = &wl_list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&wl_lock);
}

static bool waiter_cancelled(lk_waiter_t *w)
{
    bool c;

    pthread_mutex_lock(&wl_lock);
    c = w->cancelled;
    pthread_mutex_unlock(&wl_lock);
    return c;
}

/* Marks the waiters of (mh, fh, owner) cancelled if mark; returns how many
 * cancelled ones there are. */
static unsigned waiters_cancel(mount_handle_t *mh, uint64_t fh,
                               const char *owner, bool mark)
{
    unsigned n = 0;

    pthread_mutex_lock(&wl_lock);
    for (lk_waiter_t *w = wl_list; w != NULL; w = w->next) {
        if (w->mh != mh || w->fh != fh || strcmp(w->owner, owner) != 0)
            continue;
        if (mark)
            w->cancelled = true;
        if (w->cancelled)
            n++;
    }
    pthread_mutex_unlock(&wl_lock);
    return n;
}

void pfs_locks_atfork_prepare(void)
{
    pthread_mutex_lock(&wl_lock);
}

void pfs_locks_atfork_parent(void)
{
    pthread_mutex_unlock(&wl_lock);
}

void pfs_locks_atfork_child(void)
{
    wl_list = NULL; /* the waiting threads are the parent's */
    pthread_mutex_init(&wl_lock, NULL);
}

/* ---------------------------------------------------------------- calls */

/* One lock call: its target, and how its replies are read. */
typedef struct {
    mount_handle_t *mh;
    uint64_t fh;         /* the caller's handle, resolved at each attempt */
    bool fixed;          /* reclaim: mid and sfh are given; no remount */
    uint64_t mid, sfh;   /* the target of the last attempt */
    const char *method;
    json_t *params;      /* borrowed; mount_id and fh are set per attempt */
    bool blocking;       /* waits at the server: no call timeout for it */
    bool eagain_answer;  /* EAGAIN without reason is the answer (conflict) */
    lk_waiter_t *waiter; /* blocking calls */
    json_t *result;      /* on success; the caller json_decref()s it */
    bool no_grace;       /* the error reply said "reason":"no_grace" */
} lk_call_t;

/* The server's handle for the caller's fh on mh's current mount, waiting
 * for (or doing) its reopening after a remount. 0, EBADF (not an open
 * handle of mh, or lost at a remount) or ETIMEDOUT. */
static int lk_resolve(mount_handle_t *mh, uint64_t fh, uint64_t deadline,
                      uint64_t *out_mid, uint64_t *out_sfh)
{
    for (;;) {
        uint64_t cur = pfs_mount_id(mh);
        pfs_fh_t *h;
        int lost;

        pfs_handles_lock();
        h = pfs_handle_find(mh, fh);
        if (h == NULL || h->lost != 0) {
            lost = h != NULL ? h->lost : 0;
            pfs_handles_unlock();
            if (lost != 0)
                return pfs_set_error(EBADF, "lock: the file of handle %llu was "
                                     "lost when the volume was mounted again "
                                     "(errno %d)", (unsigned long long)fh, lost);
            return pfs_set_error(EBADF, "lock: no open handle %llu on this "
                                 "mount", (unsigned long long)fh);
        }
        if (!h->reopening && h->mount_id == cur) {
            *out_mid = cur;
            *out_sfh = h->sfh;
            pfs_handles_unlock();
            return 0;
        }
        pfs_handles_unlock();
        if (pfs_now_ms() >= deadline)
            return pfs_set_error(ETIMEDOUT, "lock: handle %llu not opened "
                                 "again in time", (unsigned long long)fh);
        pfs_handles_reopen(mh);
    }
}

/* Runs the call c until it gets an answer: 0 with c->result, or an errno
 * (recorded). Retries as pfs_rpc does (reconnects, remounts after
 * bad_mount, in-flight EAGAIN) and sends a call refused for the grace
 * again every second; see the top of the file for blocking calls. */
static int lk_call(lk_call_t *c)
{
    uint64_t tmo = pfs_mount_timeout_ms(c->mh);
    uint64_t deadline = pfs_now_ms() + tmo, delay = 10;
    unsigned lost = 0;

    c->result = NULL;
    c->no_grace = false;
    for (;;) {
        json_t *reply = NULL, *res;
        const char *reason;
        uint64_t sent;
        bool bad, grace, busy;
        int rc, e;

        if (!c->fixed && (rc = lk_resolve(c->mh, c->fh, deadline, &c->mid,
                                          &c->sfh)) != 0)
            return rc;
        if (c->waiter != NULL && waiter_cancelled(c->waiter))
            return pfs_set_error(EINTR, "%s: wait cancelled", c->method);
        if (json_object_set_new(c->params, "mount_id",
                                json_integer((json_int_t)c->mid)) != 0 ||
            json_object_set_new(c->params, "fh",
                                json_integer((json_int_t)c->sfh)) != 0)
            return pfs_set_error(ENOMEM, "out of memory");
        sent = pfs_now_ms();
        rc = pfs_json_call_once(c->mh->pool, c->method, c->params,
                                c->blocking ? PFS_NO_DEADLINE : deadline, &reply);
        if (rc == 0) {
            e = pfs_json_reply_status(reply, &res, &bad);
            if (e == 0) {
                c->result = json_incref(res);
                json_decref(reply);
                return 0;
            }
            reason = pfs_json_reply_reason(reply);
            grace = reason != NULL && strcmp(reason, "grace") == 0;
            busy = reason != NULL && strcmp(reason, "busy") == 0;
            c->no_grace = reason != NULL && strcmp(reason, "no_grace") == 0;
            json_decref(reply);
            if (bad && !c->fixed) {
                int r = pfs_remount(c->mh, c->mid, deadline);

                if (r != 0)
                    return r;
                continue;
            }
            if (e == EAGAIN && grace) {
                uint64_t now = pfs_now_ms();

                if (now >= deadline)
                    return pfs_set_error(ETIMEDOUT, "%s: the daemon restarted "
                                         "and grants only reclaims until its "
                                         "grace period ends, after the call "
                                         "timeout", c->method);
                pfs_sleep_ms(deadline - now < LK_GRACE_RETRY_MS
                                 ? deadline - now : LK_GRACE_RETRY_MS);
                continue;
            }
            if (e == EAGAIN && (busy || !c->eagain_answer)) {
                /* The connection is at its in-flight limit ("busy"; a
                 * daemon older than that reason says EAGAIN alone, which
                 * only F_SETLK and LOCK_NB calls take for a conflict). */
                if (!pfs_backoff(&delay, deadline))
                    return pfs_set_error(ETIMEDOUT, "%s: server busy", c->method);
                continue;
            }
            return e; /* recorded by pfs_json_reply_status */
        }
        if (rc == ETIMEDOUT)
            return pfs_set_error(ETIMEDOUT, "%s: no reply in time", c->method);
        if (rc == ENOMEM)
            return rc;
        if (rc == PFS_REFUSED) /* the connection's token or TLS: no retry */
            return pfs_set_error(EACCES, "%s: %s", c->method, proxyfs_last_error());
        if (rc == PFS_LOST) {
            uint64_t now = pfs_now_ms();

            if (c->blocking && now - sent >= 1000) {
                /* A wait the server had (its connection broke): send it
                 * again; the call timeout bounds the reconnecting. */
                lost = 0;
                deadline = now + tmo;
            } else if (++lost >= PFS_MAX_LOST) {
                return pfs_set_error(EIO, "%s: connection lost %u times",
                                     c->method, lost);
            }
        }
        if (!pfs_backoff(&delay, deadline))
            return pfs_set_error(ETIMEDOUT, "%s: proxyfsd unreachable: %s",
                                 c->method, proxyfs_last_error());
    }
}

/* A change of the handle's locks, made when its call succeeds. */
typedef struct {
    bool is_flock;
    short type;        /* F_RDLCK, F_WRLCK, F_UNLCK; flock: LOCK_SH, LOCK_EX, LOCK_UN */
    uint64_t start, end;
    const char *owner; /* POSIX */
} lk_change_t;

/* Applies ch (call result rc) to ls; called with the handle table locked.
 * Returns rc, or ENOMEM if the lock cannot be recorded. */
static int lk_change_apply(pfs_lockset_t *ls, const lk_change_t *ch, int rc)
{
    pfs_lk_owner_t *o;

    if (ch->is_flock) {
        if (rc == 0)
            ls->flock = ch->type == LOCK_UN ? 0 : ch->type;
        else if (rc == EINTR)
            /* A blocking flock that waited dropped the lock held before
             * (flock(2)); a cancelled wait then holds nothing. */
            ls->flock = 0;
        return rc;
    }
    if (rc != 0) {
        lk_prune(ls); /* the entry lk_reserve may have made */
        return rc;
    }
    o = lk_owner(ls, ch->owner, ch->type != F_UNLCK);
    if (o != NULL)
        rc = pfs_lk_apply(&o->set, ch->type, ch->start, ch->end);
    else if (ch->type != F_UNLCK)
        rc = ENOMEM;
    lk_prune(ls);
    if (rc != 0)
        return pfs_set_error(rc, "lock: granted, but no memory to remember "
                             "it: it will not be reclaimed after a restart "
                             "(unlock it)");
    return 0;
}

/* Makes room before the call so that recording its success does not
 * allocate (in the common case). 0, EBADF or ENOMEM. */
static int lk_reserve(mount_handle_t *mh, uint64_t fh, const lk_change_t *ch)
{
    pfs_lk_owner_t *o;
    pfs_fh_t *h;
    int rc = 0;

    if (ch->is_flock)
        return 0;
    pfs_handles_lock();
    h = pfs_handle_find(mh, fh);
    if (h == NULL)
        rc = pfs_set_error(EBADF, "lock: no open handle %llu on this mount",
                           (unsigned long long)fh);
    else if ((o = lk_owner(&h->locks, ch->owner, ch->type != F_UNLCK)) != NULL)
        rc = pfs_lk_reserve(&o->set);
    else if (ch->type != F_UNLCK)
        rc = ENOMEM;
    if (rc == ENOMEM) {
        lk_prune(&h->locks);
        pfs_set_error(ENOMEM, "out of memory");
    }
    pfs_handles_unlock();
    return rc;
}

/* Runs a call that changes the handle's locks and records the change (see
 * "Bookkeeping" at the top). */
static int lk_call_change(lk_call_t *c, const lk_change_t *ch)
{
    int rc = lk_reserve(c->mh, c->fh, ch);

    if (rc != 0)
        return rc;
    for (int sent = 1;; sent++) {
        pfs_fh_t *h;

        rc = lk_call(c);
        json_decref(c->result);
        c->result = NULL;
        pfs_handles_lock();
        h = pfs_handle_find(c->mh, c->fh);
        if (h == NULL) {
            /* Closed meanwhile: the server dropped its locks. */
            pfs_handles_unlock();
            return rc;
        }
        if (!h->reopening && h->mount_id == c->mid) {
            rc = lk_change_apply(&h->locks, ch, rc);
            pfs_handles_unlock();
            return rc;
        }
        pfs_handles_unlock();
        if (rc != 0)
            return rc;
        /* Opened again since the call went out: the call changed the locks
         * of the old mount, which are gone, and the reclaim could not see
         * it. Make the change again on the new handle. */
        if (sent >= LK_MAX_RESEND)
            return pfs_set_error(EIO, "%s: the volume was mounted again %d "
                                 "times during the call", c->method, sent);
    }
}

static const char *lk_type_name(short type)
{
    switch (type) {
    case F_RDLCK: return "read";
    case F_WRLCK: return "write";
    default: return "unlock";
    }
}

/* Checks an owner string: 0 or EINVAL (recorded). */
static int lk_check_owner(const char *owner)
{
    if (owner == NULL)
        return pfs_set_error(EINVAL, "lock: NULL owner");
    if (strnlen(owner, PFS_LK_OWNER_MAX + 1) > PFS_LK_OWNER_MAX)
        return pfs_set_error(EINVAL, "lock: owner longer than %d bytes",
                             PFS_LK_OWNER_MAX);
    return 0;
}

/* {"owner": owner} plus more members; NULL if owner is not UTF-8 (or no
 * memory). */
static json_t *lk_params_owner(const char *owner)
{
    json_t *p = json_object(), *o = json_string(owner);

    if (p == NULL || o == NULL || json_object_set_new(p, "owner", o) != 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* ------------------------------------------------------------- reclaim */

/* One reclaim; true if the server holds the lock again. *give_up is set
 * when the locks still to be reclaimed would fail the same way (the grace
 * is over, or the daemon cannot be reached or restarted again). */
static bool lk_reclaim_one(mount_handle_t *mh, uint64_t mid, uint64_t sfh,
                           const char *method, json_t *params, bool *give_up)
{
    lk_call_t c = { .mh = mh, .fixed = true, .mid = mid, .sfh = sfh,
                    .method = method, .params = params, .eagain_answer = true };
    int rc;

    if (params == NULL)
        return false;
    rc = lk_call(&c);
    json_decref(c.result);
    json_decref(params);
    if (rc == ETIMEDOUT || rc == EIO || rc == EINVAL ||
        (rc == ENOLCK && c.no_grace))
        *give_up = true;
    return rc == 0;
}

void pfs_locks_reclaim(mount_handle_t *mh, uint64_t mid, uint64_t sfh,
                       pfs_lockset_t *ls)
{
    bool give_up = false;
    uint64_t lost = 0;

    if (ls->flock != 0) {
        json_t *p = json_pack("{sssbsb}", "op",
                              ls->flock == LOCK_SH ? "shared" : "exclusive",
                              "nonblock", 1, "reclaim", 1);

        if (!lk_reclaim_one(mh, mid, sfh, "flock", p, &give_up)) {
            ls->flock = 0;
            lost++;
        }
    }
    for (pfs_lk_owner_t *o = ls->owners; o != NULL; o = o->next) {
        size_t keep = 0;

        for (size_t i = 0; i < o->set.n; i++) {
            pfs_lk_range_t r = o->set.r[i];
            json_t *p = NULL;

            if (!give_up && (p = lk_params_owner(o->id)) != NULL &&
                (json_object_set_new(p, "cmd", json_string("setlk")) != 0 ||
                 json_object_set_new(p, "type", json_string(lk_type_name(r.type))) != 0 ||
                 json_object_set_new(p, "start", json_integer((json_int_t)r.start)) != 0 ||
                 json_object_set_new(p, "len", json_integer(r.end == PFS_LK_EOF ? 0
                                     : (json_int_t)(r.end - r.start))) != 0 ||
                 json_object_set_new(p, "reclaim", json_true()) != 0)) {
                json_decref(p);
                p = NULL;
            }
            if (!give_up && lk_reclaim_one(mh, mid, sfh, "lock", p, &give_up))
                o->set.r[keep++] = r;
            else
                lost++;
        }
        o->set.n = keep;
    }
    lk_prune(ls);
    lk_count_lost(mh, lost);
}

/* F_GETLK through the caller's handle fh, on the binary channel: resolved
 * to the server's handle as lk_call does, and again when the volume was
 * mounted again during the call. */
static int lk_getlk(mount_handle_t *mh, uint64_t fh, short type, int64_t start,
                    int64_t len, const char *owner, proxyfs_lock_t *out)
{
    uint64_t deadline = pfs_now_ms() + pfs_mount_timeout_ms(mh);

    for (int sent = 1;; sent++) {
        uint64_t mid, sfh, used = 0;
        proxyfs_lock_t l;
        int rc = lk_resolve(mh, fh, deadline, &mid, &sfh);

        if (rc != 0)
            return rc;
        rc = pfs_bin_getlk(mh, sfh, type, start, len, owner, &l, &used);
        if (rc == EBADF && used != mid && sent < LK_MAX_RESEND)
            continue; /* sent with a new mount: the handle is reopened */
        if (rc == 0)
            *out = l;
        return rc;
    }
}

/* ----------------------------------------------------------------- API */

int proxyfs_lock(mount_handle_t *in_mount_handle, uint64_t in_fh, int in_cmd,
                 short in_type, int64_t in_start, int64_t in_len,
                 const char *in_owner, proxyfs_lock_t *out_conflict)
{
    mount_handle_t *mh = in_mount_handle;
    lk_change_t ch = { .type = in_type, .owner = in_owner };
    lk_waiter_t w = { .mh = mh, .fh = in_fh, .owner = in_owner };
    lk_call_t c = { .mh = mh, .fh = in_fh, .method = "lock" };
    const char *cmd;
    int64_t start = in_start, len = in_len;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (in_cmd != F_GETLK && in_cmd != F_SETLK && in_cmd != F_SETLKW)
        PFS_API_RETURN(pfs_set_error(EINVAL, "lock: cmd %d: not F_GETLK, "
                                     "F_SETLK or F_SETLKW", in_cmd));
    if (in_type != F_RDLCK && in_type != F_WRLCK && in_type != F_UNLCK)
        PFS_API_RETURN(pfs_set_error(EINVAL, "lock: type %d: not F_RDLCK, "
                                     "F_WRLCK or F_UNLCK", in_type));
    if (in_cmd == F_GETLK && in_type == F_UNLCK)
        PFS_API_RETURN(pfs_set_error(EINVAL, "lock: F_GETLK of F_UNLCK"));
    if (in_cmd == F_GETLK && out_conflict == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "lock: F_GETLK without "
                                     "out_conflict"));
    if ((rc = lk_check_owner(in_owner)) != 0)
        PFS_API_RETURN(rc);
    /* fcntl(2): a negative length covers [start+len, start). */
    if (start < 0)
        PFS_API_RETURN(pfs_set_error(EINVAL, "lock: negative start %lld",
                                     (long long)start));
    if (len < 0) {
        start = in_start + in_len; /* no overflow: in_start >= 0 */
        if (start < 0)
            PFS_API_RETURN(pfs_set_error(EINVAL, "lock: start %lld len %lld "
                                         "begins before offset 0",
                                         (long long)in_start,
                                         (long long)in_len));
        len = in_start - start;
    }
    if (len > 0 && (uint64_t)len > PFS_LK_EOF - (uint64_t)start)
        PFS_API_RETURN(pfs_set_error(EINVAL, "lock: start %lld len %lld runs "
                                     "past the largest offset",
                                     (long long)start, (long long)len));
    ch.start = (uint64_t)start;
    ch.end = len == 0 ? PFS_LK_EOF : (uint64_t)start + (uint64_t)len;

    c.params = lk_params_owner(in_owner);
    if (c.params == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "lock: owner is not valid UTF-8"));
    if (in_cmd == F_GETLK) {
        /* On the binary channel (a getlk is never refused for the grace,
         * which only JSON-RPC replies could tell). */
        json_decref(c.params);
        PFS_API_RETURN(lk_getlk(mh, in_fh, in_type, start, len, in_owner,
                                out_conflict));
    }
    /* An unlock never waits: F_SETLKW of F_UNLCK is sent as setlk. */
    cmd = in_cmd == F_GETLK ? "getlk"
          : in_cmd == F_SETLKW && in_type != F_UNLCK ? "setlkw" : "setlk";
    if (json_object_set_new(c.params, "cmd", json_string(cmd)) != 0 ||
        json_object_set_new(c.params, "type", json_string(lk_type_name(in_type))) != 0 ||
        json_object_set_new(c.params, "start", json_integer(start)) != 0 ||
        json_object_set_new(c.params, "len", json_integer(len)) != 0) {
        json_decref(c.params);
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    }

    if (in_cmd == F_GETLK) {
        proxyfs_lock_t l = { .type = F_UNLCK };
        const char *t = NULL, *o = "";
        int64_t s = 0, n = 0;

        rc = lk_call(&c);
        json_decref(c.params);
        if (rc != 0)
            PFS_API_RETURN(rc);
        if (json_unpack(c.result, "{s:s}", "type", &t) != 0 ||
            (strcmp(t, "unlock") != 0 && strcmp(t, "read") != 0 &&
             strcmp(t, "write") != 0) ||
            (strcmp(t, "unlock") != 0 &&
             (pfs_json_get_i64(c.result, "start", &s) != 0 ||
              pfs_json_get_i64(c.result, "len", &n) != 0 ||
              json_unpack(c.result, "{s:s}", "owner", &o) != 0 ||
              strlen(o) > PFS_LK_OWNER_MAX))) {
            json_decref(c.result);
            PFS_API_RETURN(pfs_set_error(EIO, "lock: malformed getlk reply"));
        }
        if (strcmp(t, "unlock") != 0) {
            l.type = strcmp(t, "read") == 0 ? F_RDLCK : F_WRLCK;
            l.start = s;
            l.len = n;
            strcpy(l.owner, o);
        }
        json_decref(c.result);
        *out_conflict = l;
        PFS_API_RETURN(0);
    }

    c.eagain_answer = true;
    c.blocking = strcmp(cmd, "setlkw") == 0;
    if (c.blocking) {
        c.waiter = &w;
        waiter_add(&w);
    }
    rc = lk_call_change(&c, &ch);
    if (c.blocking)
        waiter_del(&w);
    json_decref(c.params);
    PFS_API_RETURN(rc);
}

int proxyfs_flock(mount_handle_t *in_mount_handle, uint64_t in_fh,
                  int in_operation)
{
    mount_handle_t *mh = in_mount_handle;
    int op = in_operation & ~LOCK_NB;
    bool nb = (in_operation & LOCK_NB) != 0;
    lk_change_t ch = { .is_flock = true, .type = (short)op };
    lk_waiter_t w = { .mh = mh, .fh = in_fh, .owner = "" };
    lk_call_t c = { .mh = mh, .fh = in_fh, .method = "flock",
                    .eagain_answer = true };
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (op != LOCK_SH && op != LOCK_EX && op != LOCK_UN)
        PFS_API_RETURN(pfs_set_error(EINVAL, "flock: operation %#x: not "
                                     "LOCK_SH, LOCK_EX or LOCK_UN, with or "
                                     "without LOCK_NB", (unsigned)in_operation));
    c.params = json_pack("{sssb}", "op", op == LOCK_SH ? "shared"
                         : op == LOCK_EX ? "exclusive" : "unlock",
                         "nonblock", nb || op == LOCK_UN);
    if (c.params == NULL)
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    c.blocking = !nb && op != LOCK_UN;
    if (c.blocking) {
        c.waiter = &w;
        waiter_add(&w);
    }
    rc = lk_call_change(&c, &ch);
    if (c.blocking)
        waiter_del(&w);
    json_decref(c.params);
    PFS_API_RETURN(rc);
}

int proxyfs_lock_cancel(mount_handle_t *in_mount_handle, uint64_t in_fh,
                        const char *in_owner, int *out_cancelled)
{
    mount_handle_t *mh = in_mount_handle;
    lk_call_t c = { .mh = mh, .fh = in_fh, .method = "lock_cancel" };
    uint64_t deadline;
    int rc, total = 0;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if ((rc = lk_check_owner(in_owner)) != 0)
        PFS_API_RETURN(rc);
    if ((c.params = lk_params_owner(in_owner)) == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "lock_cancel: owner is not valid "
                                     "UTF-8"));
    pfs_handles_lock();
    rc = pfs_handle_find(mh, in_fh) == NULL ? EBADF : 0;
    pfs_handles_unlock();
    if (rc != 0) {
        json_decref(c.params);
        PFS_API_RETURN(pfs_set_error(EBADF, "lock_cancel: no open handle %llu "
                                     "on this mount",
                                     (unsigned long long)in_fh));
    }
    (void)waiters_cancel(mh, in_fh, in_owner, true);
    deadline = pfs_now_ms() + pfs_mount_timeout_ms(mh);
    for (;;) {
        uint64_t n = 0;

        rc = lk_call(&c);
        if (rc == 0 && pfs_json_get_u64(c.result, "cancelled", &n) != 0)
            rc = pfs_set_error(EIO, "lock_cancel: malformed reply");
        json_decref(c.result);
        if (rc != 0) {
            json_decref(c.params);
            PFS_API_RETURN(rc);
        }
        total += n > INT32_MAX ? INT32_MAX : (int)n;
        /* A marked wait still going may have reached the server after
         * this lock_cancel: cancel again. */
        for (unsigned t = 0; t < LK_CANCEL_RETRY_MS / 10 &&
                             waiters_cancel(mh, in_fh, in_owner, false) > 0; t++)
            pfs_sleep_ms(10);
        if (waiters_cancel(mh, in_fh, in_owner, false) == 0 ||
            pfs_now_ms() >= deadline)
            break;
    }
    json_decref(c.params);
    if (out_cancelled != NULL)
        *out_cancelled = total;
    PFS_API_RETURN(0);
}

int proxyfs_lost_locks(mount_handle_t *in_mount_handle, uint64_t *out_count)
{
    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_count == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    *out_count = __atomic_load_n(&in_mount_handle->lost_locks, __ATOMIC_RELAXED);
    PFS_API_RETURN(0);
}
