/* retry.c - the one retry rule of every request (PROTOCOL.md, "Retries").
 *
 * Each way of sending a request (pfs_rpc for JSON-RPC, pfs_bin_call for
 * binary calls and synchronous I/O, async.c for async I/O) makes attempts
 * and hands each attempt's outcome to pfs_retry_step, which says what comes
 * next: the reply goes to the caller, the mount is made again first, the
 * attempt is repeated after a delay, or the call fails. The synchronous
 * callers wait the delay with pfs_retry_backoff; async.c queues the attempt
 * on its pool's worker with pfs_retry_delay. So the rule (which outcomes
 * are retried, how often, how long, what is uncertain, what the error says)
 * is written once, as hiredis keeps one protocol reader under its sync and
 * async APIs. */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

#define PFS_RETRY_FIRST_MS 10
#define PFS_RETRY_MAX_MS 500

void pfs_retry_init(pfs_retry_t *r, uint64_t timeout_ms)
{
    r->deadline_ms = pfs_now_ms() + timeout_ms;
    r->delay_ms = PFS_RETRY_FIRST_MS;
    r->lost = 0;
    r->uncertain = false;
    r->why = PFS_WHY_NONE;
}

pfs_step_t pfs_retry_step(pfs_retry_t *r, int status, bool bad_mount,
                          int err)
{
    switch (status) {
    case 0: /* a reply */
        if (bad_mount)
            return PFS_STEP_REMOUNT;
        if (err == EAGAIN && r->busy_is_retry) {
            /* Not run: the connection was at its in-flight limit (or was
             * refused at max_connections). */
            r->why = PFS_WHY_BUSY;
            return PFS_STEP_BACKOFF;
        }
        return PFS_STEP_REPLY;
    case ETIMEDOUT:
        r->why = PFS_WHY_NO_REPLY;
        return PFS_STEP_FAIL;
    case ENOMEM:
        r->why = PFS_WHY_NOMEM;
        return PFS_STEP_FAIL;
    case PFS_REFUSED:
        r->why = PFS_WHY_REFUSED;
        return PFS_STEP_FAIL;
    case PFS_LOST:
        /* The server may have run it: the caller applies PROTOCOL.md's
         * rule to the errno of a later attempt. */
        r->uncertain = true;
        if (++r->lost >= PFS_MAX_LOST) {
            r->why = PFS_WHY_LOST;
            return PFS_STEP_FAIL;
        }
        break;
    }
    r->why = PFS_WHY_UNREACHABLE; /* not sent, or lost: again later */
    return PFS_STEP_BACKOFF;
}

uint64_t pfs_retry_delay(pfs_retry_t *r)
{
    uint64_t d = r->delay_ms;

    r->delay_ms = d * 2 > PFS_RETRY_MAX_MS ? PFS_RETRY_MAX_MS : d * 2;
    return d;
}

bool pfs_retry_expired(const pfs_retry_t *r)
{
    return pfs_now_ms() >= r->deadline_ms;
}

bool pfs_retry_backoff(pfs_retry_t *r)
{
    uint64_t now = pfs_now_ms(), d;

    if (now >= r->deadline_ms)
        return false;
    d = pfs_retry_delay(r);
    pfs_sleep_ms(d < r->deadline_ms - now ? d : r->deadline_ms - now);
    return !pfs_retry_expired(r);
}

int pfs_retry_error(const pfs_retry_t *r, const char *what)
{
    switch (r->why) {
    case PFS_WHY_NO_REPLY:
        return pfs_set_error(ETIMEDOUT, "%s: no reply in time", what);
    case PFS_WHY_NOMEM:
        return pfs_set_error(ENOMEM, "%s: out of memory", what);
    case PFS_WHY_LOST:
        return pfs_set_error(EIO, "%s: connection lost %u times", what,
                             r->lost);
    case PFS_WHY_BUSY:
        return pfs_set_error(ETIMEDOUT, "%s: server busy", what);
    case PFS_WHY_REFUSED:
        return pfs_set_error(EACCES, "%s: %s", what, proxyfs_last_error());
    case PFS_WHY_UNREACHABLE:
    case PFS_WHY_NONE:
        break;
    }
    return pfs_set_error(ETIMEDOUT, "%s: proxyfsd unreachable: %s", what,
                         proxyfs_last_error());
}

bool pfs_backoff(uint64_t *delay, uint64_t deadline_ms)
{
    pfs_retry_t r = { .deadline_ms = deadline_ms, .delay_ms = *delay };
    bool more = pfs_retry_backoff(&r);

    *delay = r.delay_ms;
    return more;
}
