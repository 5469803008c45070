/* conn.c - one connection to proxyfsd: connect, pipelined sends, and a reader
 * thread that matches each reply to its pending call by request id.
 *
 * The reader thread lives as long as the connection object. When the socket
 * breaks it closes it, completes every pending call with PFS_LOST and waits
 * until a sender connects again. Only the reader (or pfs_conn_destroy, after
 * joining it) closes the socket; senders that see a write error shut it down
 * so that the reader notices. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define PFS_RBUF_INIT (64 * 1024)
#define PFS_MAX_JSON_MSG (64u * 1024 * 1024)
#define PFS_MAX_HEADER 8192

/* ------------------------------------------------------------- sockets */

static int set_blocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        return -1;
    return 0;
}

static int connect_wait(int fd, const struct sockaddr *sa, socklen_t len,
                        uint64_t timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int err = 0;
    socklen_t elen = sizeof(err);

    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return errno;
    for (;;) {
        int n = poll(&pfd, 1, (int)(timeout_ms > 60000 ? 60000 : timeout_ms));

        if (n > 0)
            break;
        if (n == 0)
            return ETIMEDOUT;
        if (errno != EINTR)
            return errno;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        return errno;
    return err;
}

static void set_sock_opts(int fd, bool tcp)
{
    int one = 1;
    uint64_t t = pfs_config_timeout_ms();
    struct timeval tv = { .tv_sec = (time_t)(t / 1000),
                          .tv_usec = (suseconds_t)(t % 1000) * 1000 };

    if (tcp)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A sender blocked on a stalled daemon gives up after the call timeout. */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int pfs_connect_addr(const char *addr, uint64_t timeout_ms)
{
    int saved = errno;
    int fd = -1, err = 0;
    const char *path = NULL;

    if (strncmp(addr, "unix:", 5) == 0)
        path = addr + 5;
    else if (addr[0] == '/' || addr[0] == '.')
        path = addr;

    if (path != NULL) {
        struct sockaddr_un sun;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (strlen(path) >= sizeof(sun.sun_path)) {
            pfs_set_error(EINVAL, "unix socket path too long: %s", path);
            errno = saved;
            return -1;
        }
        strcpy(sun.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err = errno;
        } else if ((err = connect_wait(fd, (struct sockaddr *)&sun,
                                       sizeof(sun), timeout_ms)) != 0 ||
                   set_blocking(fd) != 0) {
            if (err == 0)
                err = errno;
            close(fd);
            fd = -1;
        } else {
            set_sock_opts(fd, false);
        }
        if (fd < 0)
            pfs_set_error(ENODEV, "connect %s: %s", path, strerror(err));
        errno = saved;
        return fd;
    }

    /* HOST:PORT, HOST may be [v6] */
    char host[PFS_MAX_ADDR];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints, *res = NULL, *ai;
    int gai;

    if (colon == NULL || colon == addr || colon[1] == '\0') {
        pfs_set_error(EINVAL, "bad server address %s", addr);
        errno = saved;
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) {
        pfs_set_error(ENODEV, "resolve %s: %s", addr, gai_strerror(gai));
        errno = saved;
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = connect_wait(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
        if (err == 0 && set_blocking(fd) == 0)
            break;
        if (err == 0)
            err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        pfs_set_error(ENODEV, "connect %s: %s", addr, strerror(err));
    else
        set_sock_opts(fd, true);
    errno = saved;
    return fd;
}

int pfs_send_all(int fd, const void *a, size_t alen, const void *b,
                 size_t blen)
{
    struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
    struct iovec *v = iov;
    int cnt = blen > 0 ? 2 : 1;

    while (cnt > 0) {
        struct msghdr mh;
        ssize_t n;

        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = v;
        mh.msg_iovlen = (size_t)cnt;
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        while (cnt > 0 && (size_t)n >= v->iov_len) {
            n -= (ssize_t)v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + n;
            v->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* ------------------------------------------------------- pending calls */

static void pending_add(pfs_conn_t *c, pfs_call_t *call)
{
    call->next = NULL;
    call->prev = c->tail;
    if (c->tail)
        c->tail->next = call;
    else
        c->head = call;
    c->tail = call;
    call->pending = true;
}

static void pending_del(pfs_conn_t *c, pfs_call_t *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        c->head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        c->tail = call->prev;
    call->next = call->prev = NULL;
    call->pending = false;
}

/* Finds and removes the call with this id (under c->lock). */
static pfs_call_t *pending_take(pfs_conn_t *c, uint64_t id)
{
    pfs_call_t *call;

    for (call = c->head; call != NULL; call = call->next) {
        if (call->id == id) {
            pending_del(c, call);
            return call;
        }
    }
    return NULL;
}

static void complete_list(pfs_call_t *list, int status)
{
    while (list != NULL) {
        pfs_call_t *next = list->next;

        list->next = list->prev = NULL;
        list->status = status;
        list->done(list);
        list = next;
    }
}

/* ------------------------------------------------------------- reader */

static int rd_fill(pfs_conn_t *c, int fd, size_t need)
{
    if (c->blen - c->bpos >= need)
        return 0;
    if (c->bpos > 0) {
        memmove(c->buf, c->buf + c->bpos, c->blen - c->bpos);
        c->blen -= c->bpos;
        c->bpos = 0;
    }
    if (need > c->bcap) {
        size_t ncap = c->bcap * 2 > need ? c->bcap * 2 : need;
        char *nb = realloc(c->buf, ncap);

        if (nb == NULL)
            return ENOMEM;
        c->buf = nb;
        c->bcap = ncap;
    }
    while (c->blen < need) {
        ssize_t n = recv(fd, c->buf + c->blen, c->bcap - c->blen, 0);

        if (n > 0)
            c->blen += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return EPIPE;
    }
    return 0;
}

static int read_json_frame(pfs_conn_t *c, int fd)
{
    size_t hlen = 0, blen;
    json_t *reply = NULL;
    uint64_t id;
    bool has_id;
    pfs_call_t *call;
    int rc;

    for (;;) {
        size_t avail = c->blen - c->bpos;
        char *p = c->buf + c->bpos;
        char *e = avail >= 4 ? memmem(p, avail, "\r\n\r\n", 4) : NULL;

        if (e != NULL) {
            hlen = (size_t)(e - p) + 4;
            break;
        }
        if (avail > PFS_MAX_HEADER)
            return EPROTO;
        if ((rc = rd_fill(c, fd, avail + 1)) != 0)
            return rc;
    }
    if (pfs_json_parse_header(c->buf + c->bpos, hlen, &blen) != 0 ||
        blen > PFS_MAX_JSON_MSG)
        return EPROTO;
    if ((rc = rd_fill(c, fd, hlen + blen)) != 0)
        return rc;
    rc = pfs_json_decode_reply(c->buf + c->bpos + hlen, blen, &reply, &id, &has_id);
    c->bpos += hlen + blen;
    if (rc != 0)
        return rc;
    if (!has_id) {
        /* A protocol error the server could not tie to a request, or the
         * refusal of the connection (EAGAIN). */
        json_t *result;
        bool bad_mount;

        if (pfs_json_reply_status(reply, &result, &bad_mount) == EAGAIN)
            c->refused = true;
        json_decref(reply);
        return 0;
    }
    pthread_mutex_lock(&c->lock);
    call = pending_take(c, id);
    pthread_mutex_unlock(&c->lock);
    if (call == NULL) {
        json_decref(reply); /* its caller timed out */
        return 0;
    }
    call->reply = reply;
    call->status = 0;
    call->done(call);
    return 0;
}

/* Skips left payload bytes of the stream. 0 or an error. */
static int skip_bytes(pfs_conn_t *c, int fd, size_t left)
{
    while (left > 0) {
        size_t avail = c->blen - c->bpos;
        int rc;

        if (avail == 0) {
            if ((rc = rd_fill(c, fd, 1)) != 0)
                return rc;
            continue;
        }
        if (avail > left)
            avail = left;
        c->bpos += avail;
        left -= avail;
    }
    return 0;
}

/* Reads the plen payload bytes of an async call (call->cancel set) into
 * its buffer, by the rule of pfs_cancel_t: each piece under the cancel
 * lock, after checking the flag, with a non-blocking recv; the wait for
 * more data (poll) outside the lock; once cancelled, the rest is skipped.
 * 0, or EPIPE (the stream broke). */
static int read_payload_cancellable(pfs_conn_t *c, int fd, pfs_call_t *call,
                                    size_t plen)
{
    pfs_cancel_t *k = call->cancel;
    size_t got = 0;

    while (got < plen) {
        size_t have = c->blen - c->bpos;
        ssize_t n;
        int e = 0;

        pthread_mutex_lock(&k->lock);
        if (pfs_is_cancelled(k)) {
            pthread_mutex_unlock(&k->lock);
            return skip_bytes(c, fd, plen - got) != 0 ? EPIPE : 0;
        }
        if (have > 0) {
            n = (ssize_t)(have < plen - got ? have : plen - got);
            memcpy(call->rbuf + got, c->buf + c->bpos, (size_t)n);
            c->bpos += (size_t)n;
        } else {
            n = recv(fd, call->rbuf + got, plen - got, MSG_DONTWAIT);
            e = errno;
        }
        pthread_mutex_unlock(&k->lock);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && e == EINTR)
            continue;
        if (n == 0 || (e != EAGAIN && e != EWOULDBLOCK))
            return EPIPE;
        for (;;) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };

            if (poll(&pfd, 1, -1) >= 0)
                break;
            if (errno != EINTR)
                return EPIPE;
        }
    }
    return 0;
}

static int read_bin_frame(pfs_conn_t *c, int fd)
{
    pfs_bin_rep_t rep;
    pfs_call_t *call;
    size_t plen, have, got = 0;
    int rc;

    if ((rc = rd_fill(c, fd, PFS_BIN_REP_HDR)) != 0)
        return rc;
    if (pfs_bin_decode_reply((const uint8_t *)c->buf + c->bpos, &rep) != 0)
        return EPROTO;
    c->bpos += PFS_BIN_REP_HDR;
    /* Every successful reply but WRITE's carries length payload bytes. */
    plen = (rep.op != PFS_BIN_OP_WRITE && rep.err == 0) ? rep.length : 0;
    /* The binary channel answers EAGAIN only when it refuses the
     * connection (max_connections). */
    if (rep.err == EAGAIN)
        c->refused = true;

    pthread_mutex_lock(&c->lock);
    call = pending_take(c, rep.id);
    pthread_mutex_unlock(&c->lock);

    if (call != NULL && call->ralloc && plen > call->rcap &&
        plen <= PFS_MAX_BIN_REPLY) {
        uint8_t *nb = malloc(plen);

        if (nb != NULL) {
            call->rbuf = nb;
            call->rcap = plen;
        }
    }
    if (call == NULL || plen > call->rcap) {
        /* Unknown (timed out, cancelled) call or a reply larger than asked
         * (a server bug, or no memory for it): skip the payload and fail
         * the call. */
        if ((rc = skip_bytes(c, fd, plen)) != 0) {
            if (call != NULL) {
                call->status = PFS_LOST;
                call->done(call);
            }
            return rc;
        }
        if (call != NULL) {
            call->status = 0;
            call->brep = rep;
            call->brep.err = call->ralloc && plen <= PFS_MAX_BIN_REPLY ? ENOMEM : EIO;
            call->brep.flags = 0;
            call->brep.length = 0;
            call->done(call);
        }
        return 0;
    }
    if (call->cancel != NULL) {
        if ((rc = read_payload_cancellable(c, fd, call, plen)) != 0) {
            call->status = PFS_LOST;
            call->done(call);
            return rc;
        }
        call->brep = rep;
        call->status = 0;
        call->done(call);
        return 0;
    }
    have = c->blen - c->bpos;
    if (have > plen)
        have = plen;
    if (have > 0) {
        memcpy(call->rbuf, c->buf + c->bpos, have);
        c->bpos += have;
        got = have;
    }
    while (got < plen) {
        ssize_t n = recv(fd, call->rbuf + got, plen - got, 0);

        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            call->status = PFS_LOST;
            call->done(call);
            return EPIPE;
        }
    }
    call->brep = rep;
    call->status = 0;
    call->done(call);
    return 0;
}

static void conn_fail(pfs_conn_t *c, int fd)
{
    pfs_call_t *list;
    /* On a refused connection nothing was run: the calls can be sent again
     * without the rules for calls whose outcome is unknown. */
    int status = c->refused ? PFS_NOTSENT : PFS_LOST;

    shutdown(fd, SHUT_RDWR);
    pthread_mutex_lock(&c->wlock);
    pthread_mutex_lock(&c->lock);
    if (c->fd == fd) {
        pfs_sock_close(fd);
        c->fd = -1;
    }
    list = c->head;
    for (pfs_call_t *p = list; p != NULL; p = p->next)
        p->pending = false;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&c->wlock);
    c->refused = false;
    complete_list(list, status);
}

static void *reader_main(void *arg)
{
    pfs_conn_t *c = arg;

    for (;;) {
        int fd;

        pthread_mutex_lock(&c->lock);
        while (c->fd < 0 && !c->shutdown)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->shutdown && c->fd < 0) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        fd = c->fd;
        pthread_mutex_unlock(&c->lock);
        c->blen = c->bpos = 0;
        for (;;) {
            int rc = c->kind == PFS_CONN_JSON ? read_json_frame(c, fd)
                                              : read_bin_frame(c, fd);
            if (rc != 0)
                break;
        }
        conn_fail(c, fd);
    }
    return NULL;
}

/* ----------------------------------------------------------- lifecycle */

int pfs_conn_init(pfs_conn_t *c, int kind, const char *addr,
                  unsigned *gw, const pfs_sec_t *sec)
{
    sigset_t all, old;
    int rc;

    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->addr = addr;
    c->gw = gw;
    c->sec = sec;
    c->fd = -1;
    c->buf = malloc(PFS_RBUF_INIT);
    if (c->buf == NULL)
        return ENOMEM;
    c->bcap = PFS_RBUF_INIT;
    pthread_mutex_init(&c->wlock, NULL);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    /* Library threads block every signal: the host's handlers run on the
     * host's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&c->reader, NULL, reader_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->wlock);
        free(c->buf);
        c->buf = NULL;
        return rc;
    }
    c->reader_started = true;
    return 0;
}

void pfs_conn_destroy(pfs_conn_t *c)
{
    pfs_call_t *list;

    if (c->buf == NULL && !c->reader_started)
        return;
    pthread_mutex_lock(&c->lock);
    c->shutdown = true;
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (c->reader_started)
        pthread_join(c->reader, NULL);
    c->reader_started = false;
    if (c->fd >= 0) {
        pfs_sock_close(c->fd);
        c->fd = -1;
    }
    list = c->head;
    for (pfs_call_t *p = list; p != NULL; p = p->next)
        p->pending = false;
    c->head = c->tail = NULL;
    complete_list(list, PFS_LOST);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->wlock);
    free(c->buf);
    c->buf = NULL;
}

void pfs_conn_abandon(pfs_conn_t *c)
{
    /* The parent's threads do not exist here, and its locks may be held
     * forever: only close our copy of the socket and free memory. */
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->reader_started = false;
}

int pfs_conn_submit(pfs_conn_t *c, pfs_call_t *call, const void *a,
                    size_t alen, const void *b, size_t blen)
{
    int fd;

    pthread_mutex_lock(&c->wlock);
    pthread_mutex_lock(&c->lock);
    if (c->shutdown) {
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&c->wlock);
        pfs_set_error(ENODEV, "library is shutting down");
        return PFS_NOTSENT;
    }
    if (c->fd < 0) {
        int rc;

        pthread_mutex_unlock(&c->lock);
        /* The reader waits for c->fd: the auth exchange (if any) is ours. */
        rc = pfs_connect_gw(c->addr, c->gw, c->sec, c->kind, 5000, &fd);
        pthread_mutex_lock(&c->lock);
        if (rc != 0) {
            pthread_mutex_unlock(&c->lock);
            pthread_mutex_unlock(&c->wlock);
            return rc;
        }
        c->fd = fd;
        pthread_cond_broadcast(&c->cond);
    }
    if (call->cancel != NULL && pfs_is_cancelled(call->cancel)) {
        /* Cancelled: nothing is sent (the caller completes it). */
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&c->wlock);
        return PFS_NOTSENT;
    }
    fd = c->fd;
    pending_add(c, call);
    if (call->is_async)
        c->sending = call;
    pthread_mutex_unlock(&c->lock);
    if (pfs_send_all(fd, a, alen, b, blen) != 0) {
        /* The reader sees the broken socket and completes the call. */
        shutdown(fd, SHUT_RDWR);
    }
    if (c->sending != NULL) { /* only written under wlock, which we hold */
        /* Not call->is_async: the call may be completed and freed by now. */
        pthread_mutex_lock(&c->lock);
        c->sending = NULL;
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&c->wlock);
    return 0;
}

bool pfs_conn_cancel(pfs_conn_t *c, pfs_call_t *call)
{
    bool was;

    pthread_mutex_lock(&c->lock);
    was = call->pending;
    if (was)
        pending_del(c, call);
    pthread_mutex_unlock(&c->lock);
    return was;
}

void pfs_conn_collect_expired(pfs_conn_t *c, uint64_t now, pfs_call_t **out)
{
    pfs_call_t *call, *next;

    pthread_mutex_lock(&c->lock);
    for (call = c->head; call != NULL; call = next) {
        next = call->next;
        if (call == c->sending)
            continue;
        if (call->is_async &&
            (call->deadline_ms <= now ||
             (call->cancel != NULL && pfs_is_cancelled(call->cancel)))) {
            pending_del(c, call);
            call->next = *out;
            *out = call;
        }
    }
    pthread_mutex_unlock(&c->lock);
}
