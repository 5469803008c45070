/* tls.c - TLS with OpenSSL, for the mounts whose options ask for it.
 *
 * The rest of the library speaks to plain file descriptors: the reader
 * threads recv() with MSG_DONTWAIT between cancel checks, direct sockets
 * rely on SO_RCVTIMEO and readv, and a sender wakes a reader with
 * shutdown(). Rather than teach each of them TLS (and share one SSL object
 * between a reader and concurrent senders, which OpenSSL does not allow),
 * a TLS connection is a relay: after the handshake, pfs_tls_connect hands
 * the library one end of a socketpair, and a relay thread, the only user
 * of the SSL object, moves bytes between the other end and the TLS
 * stream. Everything above works unchanged, and plain connections cost
 * nothing more than before. A TLS connection costs a thread and a copy.
 *
 * Every library end of a relay is closed with pfs_sock_close, which also
 * joins the relay (it ends when its end of the pair sees the close). In a
 * child after fork() the relays do not exist: pfs_tls_atfork_child closes
 * the child's copies of their sockets, so that the parent's connections
 * close when the parent closes them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"

#define RELAY_BUF (64 * 1024)

typedef struct relay {
    struct relay *next;
    int app;   /* the library's end of the pair */
    int mine;  /* the relay's end */
    int net;   /* the TCP socket */
    SSL *ssl;
    pthread_t th;
    /* Set (before the relay shuts its end) when the TLS stream ended on
     * a TLS error, such as the server's alert refusing the client's
     * certificate after a TLS 1.3 handshake; why says which. */
    bool tls_error;
    char why[160];
} relay_t;

static pthread_mutex_t relays_lock = PTHREAD_MUTEX_INITIALIZER;
static relay_t *relays;

/* The OpenSSL error queue as text (and cleared). */
static const char *ssl_errors(char *buf, size_t cap)
{
    unsigned long e;
    size_t n = 0;

    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        if (n + 2 < cap) {
            if (n > 0) {
                buf[n++] = ';';
                buf[n++] = ' ';
            }
            ERR_error_string_n(e, buf + n, cap - n);
            n = strlen(buf);
        }
    }
    return buf[0] ? buf : "unknown error";
}

int pfs_tls_ctx_new(const char *ca, const char *cert, const char *key,
                    void **out_ctx)
{
    SSL_CTX *ctx;
    char eb[256];

    *out_ctx = NULL;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return pfs_set_error(ENOMEM, "TLS: %s", ssl_errors(eb, sizeof(eb)));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
                    : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        SSL_CTX_free(ctx);
        return pfs_set_error(EINVAL, "TLS: CA file %s: %s", ca ? ca : "(system)",
                             ssl_errors(eb, sizeof(eb)));
    }
    if (cert != NULL &&
        (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(ctx) != 1)) {
        SSL_CTX_free(ctx);
        return pfs_set_error(EINVAL, "TLS: client certificate %s / key %s: %s",
                             cert, key, ssl_errors(eb, sizeof(eb)));
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    *out_ctx = ctx;
    return 0;
}

void pfs_tls_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

/* Moves bytes both ways until either side closes or fails. */
static void *relay_main(void *arg)
{
    relay_t *r = arg;
    uint8_t *up = malloc(RELAY_BUF), *down = malloc(RELAY_BUF);
    size_t up_off = 0, up_len = 0, down_off = 0, down_len = 0;

    if (up == NULL || down == NULL)
        goto done;
    for (;;) {
        bool progress = false, net_in = false, net_out = false;
        struct pollfd p[2];
        int n;

        /* net -> library */
        if (down_len == 0) {
            n = SSL_read(r->ssl, down, RELAY_BUF);
            if (n > 0) {
                down_off = 0;
                down_len = (size_t)n;
                progress = true;
            } else {
                int e = SSL_get_error(r->ssl, n);

                if (e == SSL_ERROR_WANT_READ)
                    net_in = true;
                else if (e == SSL_ERROR_WANT_WRITE)
                    net_out = true;
                else
                    goto failed; /* closed by the server, or broken */
            }
        }
        if (down_len > 0) {
            ssize_t w = send(r->mine, down + down_off, down_len, MSG_NOSIGNAL | MSG_DONTWAIT);

            if (w > 0) {
                down_off += (size_t)w;
                down_len -= (size_t)w;
                progress = true;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                goto done;
            }
        }
        /* library -> net */
        if (up_len == 0) {
            ssize_t k = recv(r->mine, up, RELAY_BUF, MSG_DONTWAIT);

            if (k > 0) {
                up_off = 0;
                up_len = (size_t)k;
                progress = true;
            } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                goto done; /* the library closed its end */
            }
        }
        if (up_len > 0) {
            n = SSL_write(r->ssl, up + up_off, (int)up_len);
            if (n > 0) {
                up_off += (size_t)n;
                up_len -= (size_t)n;
                progress = true;
            } else {
                int e = SSL_get_error(r->ssl, n);

                if (e == SSL_ERROR_WANT_READ)
                    net_in = true;
                else if (e == SSL_ERROR_WANT_WRITE)
                    net_out = true;
                else
                    goto failed;
            }
        }
        if (progress)
            continue;
        p[0].fd = r->net;
        p[0].events = (short)((net_in || down_len == 0 ? POLLIN : 0) | (net_out ? POLLOUT : 0));
        p[1].fd = r->mine;
        p[1].events = (short)((up_len == 0 ? POLLIN : 0) | (down_len > 0 ? POLLOUT : 0));
        p[0].revents = p[1].revents = 0;
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            goto done;
        /* The library's end gone (closed, or shut down): stop. */
        if (p[1].revents & (POLLHUP | POLLERR | POLLNVAL))
            goto done;
        if (p[0].revents & (POLLERR | POLLNVAL))
            goto done;
    }
failed:
    /* Only an alert the server sent (a reason code from SSL_AD_REASON_OFFSET
     * on), not a connection that merely ended (a daemon restart). */
    if (ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_SSL &&
        ERR_GET_REASON(ERR_peek_error()) >= SSL_AD_REASON_OFFSET) {
        char eb[128];

        snprintf(r->why, sizeof(r->why), "%s", ssl_errors(eb, sizeof(eb)));
        __atomic_store_n(&r->tls_error, true, __ATOMIC_RELEASE);
    }
    ERR_clear_error();
done:
    free(up);
    free(down);
    /* Tell the library (its reader sees the end of the stream). */
    shutdown(r->mine, SHUT_RDWR);
    return NULL;
}

/* Frees a relay whose thread has ended (or never started). */
static void relay_free(relay_t *r)
{
    if (r->ssl != NULL)
        SSL_free(r->ssl);
    if (r->net >= 0)
        close(r->net);
    if (r->mine >= 0)
        close(r->mine);
    free(r);
}

/* The TLS handshake on the connected blocking socket fd, within
 * timeout_ms. 0 with *out_ssl, PFS_NOTSENT or PFS_REFUSED (recorded). */
static int handshake(int fd, void *ctx, const char *host, uint64_t timeout_ms,
                     SSL **out_ssl)
{
    struct timeval tv = { .tv_sec = (time_t)(timeout_ms / 1000),
                          .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };
    struct timeval zero = { 0, 0 };
    unsigned char ipbuf[16];
    char eb[256];
    SSL *ssl;
    int rc;

    ERR_clear_error();
    ssl = SSL_new(ctx);
    if (ssl == NULL)
        return pfs_set_error(ENOMEM, "TLS: %s", ssl_errors(eb, sizeof(eb))), PFS_NOTSENT;
    /* The server's name or address must be in its certificate. */
    if (inet_pton(AF_INET, host, ipbuf) == 1 || inet_pton(AF_INET6, host, ipbuf) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return pfs_set_error(ENOMEM, "TLS: %s", ssl_errors(eb, sizeof(eb))), PFS_NOTSENT;
    }
    rc = SSL_connect(ssl);
    if (rc != 1) {
        int e = SSL_get_error(ssl, rc);
        long v = SSL_get_verify_result(ssl);

        if (v != X509_V_OK) {
            pfs_set_error(EACCES, "TLS: the server's certificate: %s",
                          X509_verify_cert_error_string(v));
            rc = PFS_REFUSED;
        } else if (e == SSL_ERROR_SSL) {
            /* A protocol failure or an alert: the server refused us (no
             * or a wrong client certificate) or speaks no TLS. */
            pfs_set_error(EACCES, "TLS handshake with %s: %s", host,
                          ssl_errors(eb, sizeof(eb)));
            rc = PFS_REFUSED;
        } else {
            pfs_set_error(ENODEV, "TLS handshake with %s: %s", host,
                          e == SSL_ERROR_SYSCALL && errno != 0 ? strerror(errno)
                                                               : "connection closed");
            rc = PFS_NOTSENT;
        }
        ERR_clear_error();
        SSL_free(ssl);
        return rc;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &zero, sizeof(zero));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof(zero));
    *out_ssl = ssl;
    return 0;
}

int pfs_tls_connect(int fd, void *ctx, const char *addr, uint64_t timeout_ms,
                    int *out_fd)
{
    char host[PFS_MAX_ADDR];
    const char *colon = strrchr(addr, ':');
    relay_t *r;
    int sv[2], rc, fl;
    sigset_t all, old;

    *out_fd = -1;
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
        close(fd);
        return pfs_set_error(EINVAL, "TLS needs a HOST:PORT server, not %s", addr),
               PFS_REFUSED;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        close(fd);
        return pfs_set_error(ENOMEM, "out of memory"), PFS_NOTSENT;
    }
    r->net = fd;
    r->mine = r->app = -1;
    if ((rc = handshake(fd, ctx, host, timeout_ms, &r->ssl)) != 0) {
        relay_free(r);
        return rc;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        pfs_set_error(ENODEV, "socketpair: %s", strerror(errno));
        relay_free(r);
        return PFS_NOTSENT;
    }
    r->app = sv[0];
    r->mine = sv[1];
    fl = fcntl(r->net, F_GETFL);
    fcntl(r->net, F_SETFL, fl | O_NONBLOCK);
    fl = fcntl(r->mine, F_GETFL);
    fcntl(r->mine, F_SETFL, fl | O_NONBLOCK);
    /* Library threads block every signal. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_mutex_lock(&relays_lock);
    rc = pthread_create(&r->th, NULL, relay_main, r);
    if (rc == 0) {
        r->next = relays;
        relays = r;
    }
    pthread_mutex_unlock(&relays_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(r->app);
        relay_free(r);
        return pfs_set_error(EAGAIN, "cannot start a TLS relay thread"), PFS_NOTSENT;
    }
    *out_fd = sv[0];
    return 0;
}

void pfs_sock_close(int fd)
{
    relay_t *r = NULL, **pp;

    if (fd < 0)
        return;
    if (__atomic_load_n(&relays, __ATOMIC_ACQUIRE) != NULL) {
        pthread_mutex_lock(&relays_lock);
        for (pp = &relays; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->app == fd) {
                r = *pp;
                *pp = r->next;
                break;
            }
        }
        pthread_mutex_unlock(&relays_lock);
    }
    close(fd);
    if (r != NULL) {
        /* The relay sees the close (POLLHUP on its end) and ends. */
        pthread_join(r->th, NULL);
        relay_free(r);
    }
}

void pfs_tls_atfork_prepare(void)
{
    pthread_mutex_lock(&relays_lock);
}

void pfs_tls_atfork_parent(void)
{
    pthread_mutex_unlock(&relays_lock);
}

void pfs_tls_atfork_child(void)
{
    /* The relays are the parent's threads: close this process's copies of
     * their sockets and free this copy of their state (SSL_free sends
     * nothing: the parent's sessions go on). The library ends are closed
     * with the pools (pool_abandon). */
    for (relay_t *r = relays, *next; r != NULL; r = next) {
        next = r->next;
        relay_free(r); /* closes the copies; SSL_free sends nothing */
    }
    relays = NULL;
    pthread_mutex_init(&relays_lock, NULL);
}

bool pfs_tls_failed(int fd)
{
    bool failed = false;

    pthread_mutex_lock(&relays_lock);
    for (relay_t *r = relays; r != NULL; r = r->next) {
        if (r->app == fd && __atomic_load_n(&r->tls_error, __ATOMIC_ACQUIRE)) {
            pfs_set_error(EACCES, "TLS: the server ended the connection: %s", r->why);
            failed = true;
            break;
        }
    }
    pthread_mutex_unlock(&relays_lock);
    return failed;
}
