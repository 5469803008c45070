/* direct.c - synchronous binary calls on a checked-out socket.
 *
 * A pipelined connection (conn.c) hands every reply from its reader thread
 * to the waiting caller: two thread wake-ups per call, which on a loaded or
 * virtualized machine cost more than the call itself. A synchronous call
 * has nothing else to do while it waits, so it checks out one of a few
 * direct sockets, writes its request and reads its own reply in the
 * calling thread: one wake-up, no hand-off. Only one call is ever in flight
 * on a direct socket, so everything read from it belongs to that call; a
 * reply that does not fit the protocol, a timeout or a broken socket closes
 * it (a late reply must never be read as the next call's).
 *
 * When every direct socket is checked out, the call goes to the pipelined
 * connections instead (PFS_BUSY), so any number of threads can call.
 * A socket that broke makes the others suspect too (the daemon probably
 * restarted): the pool's generation is bumped and idle sockets of an older
 * generation are reconnected before use, so a retry does not meet a chain
 * of dead sockets one after another. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

void pfs_direct_init(pfs_pool_t *p)
{
    pthread_mutex_init(&p->dl, NULL);
    for (int i = 0; i < PFS_POOL_DIRECT; i++) {
        p->direct[i].fd = -1;
        p->direct[i].busy = false;
    }
}

void pfs_direct_close(pfs_pool_t *p)
{
    for (int i = 0; i < PFS_POOL_DIRECT; i++) {
        if (p->direct[i].fd >= 0)
            pfs_sock_close(p->direct[i].fd);
        p->direct[i].fd = -1;
    }
}

/* Checks out a slot: an idle connected one if there is one, else an idle
 * unconnected one. Returns NULL when all are busy. */
static pfs_direct_t *checkout(pfs_pool_t *p)
{
    pfs_direct_t *free_slot = NULL, *got = NULL;

    pthread_mutex_lock(&p->dl);
    for (int i = 0; i < PFS_POOL_DIRECT; i++) {
        pfs_direct_t *d = &p->direct[i];

        if (d->busy)
            continue;
        if (d->fd >= 0 && d->gen != p->dgen) {
            pfs_sock_close(d->fd); /* connected before a failure: suspect */
            d->fd = -1;
        }
        if (d->fd >= 0) {
            got = d;
            break;
        }
        if (free_slot == NULL)
            free_slot = d;
    }
    if (got == NULL)
        got = free_slot;
    if (got != NULL)
        got->busy = true;
    pthread_mutex_unlock(&p->dl);
    return got;
}

static void checkin(pfs_pool_t *p, pfs_direct_t *d, bool broken)
{
    pthread_mutex_lock(&p->dl);
    if (broken) {
        if (d->fd >= 0)
            pfs_sock_close(d->fd);
        d->fd = -1;
        p->dgen++;
    }
    d->busy = false;
    pthread_mutex_unlock(&p->dl);
}

/* Makes the socket's receive timeout end near deadline_ms, changing it
 * only when it is off by more than a tenth (most calls keep the value). */
static void set_rcvtimeo(pfs_direct_t *d, uint64_t deadline_ms)
{
    uint64_t now = pfs_now_ms();
    uint64_t left = deadline_ms > now ? deadline_ms - now : 1;
    struct timeval tv;

    if (left <= d->rcvtimeo_ms && d->rcvtimeo_ms - left <= left / 10)
        return;
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
    if (setsockopt(d->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0)
        d->rcvtimeo_ms = left;
}

/* Reads into iov until at least min bytes came. Returns 0 with *got, or
 * ETIMEDOUT, or PFS_LOST (end of stream, error). */
static int recv_min(pfs_direct_t *d, struct iovec *iov, int iovcnt,
                    size_t min, size_t *got, uint64_t deadline_ms)
{
    *got = 0;
    while (*got < min) {
        ssize_t n;

        set_rcvtimeo(d, deadline_ms);
        n = readv(d->fd, iov, iovcnt);
        if (n > 0) {
            size_t k = (size_t)n;

            *got += k;
            while (iovcnt > 0 && k >= iov->iov_len) {
                k -= iov->iov_len;
                iov++;
                iovcnt--;
            }
            if (iovcnt > 0) {
                iov->iov_base = (char *)iov->iov_base + k;
                iov->iov_len -= k;
            } else if (*got < min) {
                return PFS_LOST; /* cannot happen: min <= the iov total */
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (pfs_now_ms() >= deadline_ms)
                return ETIMEDOUT;
            continue;
        }
        return PFS_LOST;
    }
    return 0;
}

/* Reads the reply of call. Returns 0 (with *spoiled set when the call has
 * its answer but the socket holds unread bytes and must be closed),
 * PFS_LOST or ETIMEDOUT (the socket must be closed). */
static int read_reply(pfs_direct_t *d, pfs_call_t *call, uint64_t deadline_ms,
                      bool *spoiled)
{
    uint8_t hdr[PFS_BIN_REP_HDR];
    struct iovec iov[2];
    pfs_bin_rep_t rep;
    size_t got, have, plen;
    int rc;

    *spoiled = false;
    iov[0].iov_base = hdr;
    iov[0].iov_len = sizeof(hdr);
    iov[1].iov_base = call->rbuf;
    iov[1].iov_len = call->rbuf != NULL ? call->rcap : 0;
    rc = recv_min(d, iov, iov[1].iov_len > 0 ? 2 : 1, sizeof(hdr), &got,
                  deadline_ms);
    if (rc != 0)
        return rc;
    if (pfs_bin_decode_reply(hdr, &rep) != 0 || rep.id != call->id) {
        pfs_set_error(EPROTO, "unexpected reply on the binary channel");
        return PFS_LOST;
    }
    /* Every successful reply but WRITE's carries length payload bytes. */
    plen = (rep.op != PFS_BIN_OP_WRITE && rep.err == 0) ? rep.length : 0;
    have = got - sizeof(hdr);
    if (have > plen) {
        pfs_set_error(EPROTO, "reply longer than announced");
        return PFS_LOST;
    }
    if (plen > call->rcap) {
        uint8_t *nb;

        if (!call->ralloc || plen > PFS_MAX_BIN_REPLY ||
            (nb = malloc(plen)) == NULL) {
            /* A reply larger than asked (a server bug) or no memory for
             * it: fail the call; the unread rest spoils the socket. */
            call->brep = rep;
            call->brep.err = call->ralloc && plen <= PFS_MAX_BIN_REPLY ? ENOMEM
                                                                       : EIO;
            call->brep.flags = 0;
            call->brep.length = 0;
            call->status = 0;
            *spoiled = true;
            return 0;
        }
        if (have > 0)
            memcpy(nb, call->rbuf, have);
        call->rbuf = nb;
        call->rcap = plen;
    }
    if (have < plen) {
        size_t more;

        iov[0].iov_base = call->rbuf + have;
        iov[0].iov_len = plen - have;
        if ((rc = recv_min(d, iov, 1, plen - have, &more, deadline_ms)) != 0)
            return rc;
    }
    call->brep = rep;
    call->status = 0;
    /* EAGAIN on the binary channel is the daemon refusing the connection
     * (max_connections): it closes it after this reply. */
    if (rep.err == EAGAIN)
        *spoiled = true;
    return 0;
}

int pfs_direct_call(pfs_pool_t *p, pfs_call_t *call, const void *a,
                    size_t alen, const void *b, size_t blen,
                    uint64_t deadline_ms)
{
    pfs_direct_t *d = checkout(p);
    bool spoiled;
    int rc;

    if (d == NULL)
        return PFS_BUSY;
    if (d->fd < 0) {
        rc = pfs_connect_gw(p->addr, &p->gw, p->sec, PFS_CONN_BIN, 5000, &d->fd);
        if (rc != 0) {
            checkin(p, d, false);
            return rc;
        }
        d->rcvtimeo_ms = 0;
        pthread_mutex_lock(&p->dl);
        d->gen = p->dgen;
        pthread_mutex_unlock(&p->dl);
    }
    /* A send that fails leaves at most part of the frame on the server,
     * which never runs an incomplete request. */
    if (pfs_send_all(d->fd, a, alen, b, blen) != 0) {
        checkin(p, d, true);
        return PFS_NOTSENT;
    }
    rc = read_reply(d, call, deadline_ms, &spoiled);
    checkin(p, d, rc != 0 || spoiled);
    if (rc == PFS_LOST)
        call->status = PFS_LOST;
    return rc;
}
