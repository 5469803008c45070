/* auth.c - tokens: which token a pool's connections send, and the auth
 * exchange that every new connection makes before anything else.
 *
 * A pool has a token when its mounts were made with one
 * (proxyfs_mount_opts: token or token_file); a pool without one uses the
 * process's default, PROXYFS_TOKEN or else the first line of the file
 * PROXYFS_TOKEN_FILE, read at each connect (so a rotated file is picked
 * up by the next reconnect); neither set: no auth is sent, and the daemon
 * goes by the peer's credentials. pfs_connect_auth opens a socket and, when
 * there is a token, sends auth on it and reads the reply in the calling
 * thread (JSON-RPC method auth, or binary opcode AUTH), so the socket
 * reaches the reader thread or a direct call already authenticated: the
 * first connect, every reconnect after a daemon restart, every direct
 * socket. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

int pfs_token_read_file(const char *path, char **out)
{
    char buf[PFS_MAX_TOKEN + 2];
    FILE *f;
    size_t n;

    *out = NULL;
    f = fopen(path, "re");
    if (f == NULL)
        return pfs_set_error(errno == ENOENT ? ENOENT : EACCES,
                             "token file %s: %s", path, strerror(errno));
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    n = strcspn(buf, "\r\n");
    if (n > PFS_MAX_TOKEN)
        return pfs_set_error(EINVAL, "token file %s: the token is longer "
                             "than %d bytes", path, PFS_MAX_TOKEN);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (n == 0)
        return pfs_set_error(EINVAL, "token file %s: no token on its first "
                             "line", path);
    *out = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    return *out != NULL ? 0 : pfs_set_error(ENOMEM, "out of memory");
}

/* The token a connection of a pool with token fixed sends: a copy of
 * fixed, or the process's default (NULL in *out: none). 0 or an errno. */
static int token_for(const char *fixed, char **out)
{
    const char *env;

    *out = NULL;
    if (fixed != NULL) {
        *out = strdup(fixed);
        return *out != NULL ? 0 : pfs_set_error(ENOMEM, "out of memory");
    }
    env = getenv("PROXYFS_TOKEN");
    if (env != NULL && env[0] != '\0') {
        if (strlen(env) > PFS_MAX_TOKEN)
            return pfs_set_error(EINVAL, "PROXYFS_TOKEN is longer than %d "
                                 "bytes", PFS_MAX_TOKEN);
        *out = strdup(env);
        return *out != NULL ? 0 : pfs_set_error(ENOMEM, "out of memory");
    }
    env = getenv("PROXYFS_TOKEN_FILE");
    if (env != NULL && env[0] != '\0')
        return pfs_token_read_file(env, out);
    return 0;
}

static void free_token(char *t)
{
    if (t != NULL) {
        explicit_bzero(t, strlen(t));
        free(t);
    }
}

/* Reads exactly len bytes before deadline_ms. 0 or PFS_NOTSENT. */
static int read_full(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
    size_t got = 0;

    while (got < len) {
        uint64_t now = pfs_now_ms();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;
        int r;

        if (now >= deadline_ms)
            return pfs_set_error(ETIMEDOUT, "auth: no reply in time"), PFS_NOTSENT;
        r = poll(&pfd, 1, (int)(deadline_ms - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue; /* the deadline check above ends it */
        n = recv(fd, (char *)buf + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        pfs_set_error(ENODEV, "auth: connection closed before the reply");
        return PFS_NOTSENT;
    }
    return 0;
}

static int auth_bin(int fd, const char *token, uint64_t deadline_ms)
{
    pfs_bin_req_t req = { .op = PFS_BIN_OP_AUTH, .id = 1 };
    uint8_t hdr[PFS_BIN_REQ_HDR], rhdr[PFS_BIN_REP_HDR];
    pfs_bin_rep_t rep;
    size_t len = strlen(token);

    req.length = (uint32_t)len;
    pfs_bin_encode_request(&req, hdr);
    if (pfs_send_all(fd, hdr, sizeof(hdr), token, len) != 0) {
        pfs_set_error(ENODEV, "auth: send: %s", strerror(errno));
        return PFS_NOTSENT;
    }
    if (read_full(fd, rhdr, sizeof(rhdr), deadline_ms) != 0)
        return PFS_NOTSENT;
    if (pfs_bin_decode_reply(rhdr, &rep) != 0 || rep.op != PFS_BIN_OP_AUTH ||
        rep.id != 1 || rep.length != 0) {
        pfs_set_error(EPROTO, "auth: unexpected reply on the binary channel");
        return PFS_NOTSENT;
    }
    if (rep.err == EACCES) {
        pfs_set_error(EACCES, "auth: the server does not know the token");
        return PFS_REFUSED;
    }
    if (rep.err != 0) {
        /* EAGAIN: refused at max_connections; anything else: not now. */
        pfs_set_error((int)rep.err, "auth: the server answered %s",
                      pfs_errno_name((int)rep.err));
        return PFS_NOTSENT;
    }
    return 0;
}

static int auth_json(int fd, const char *token, uint64_t deadline_ms)
{
    json_t *params = json_pack("{s:s}", "token", token), *reply = NULL, *res;
    char hdr[256], *frame, *body;
    size_t flen, hlen = 0, blen;
    uint64_t id = 0;
    bool has_id, bad;
    int rc;

    if (params == NULL)
        return pfs_set_error(EINVAL, "auth: the token is not valid UTF-8"),
               PFS_REFUSED;
    frame = pfs_json_encode_request(1, "auth", params, &flen);
    json_decref(params);
    if (frame == NULL)
        return pfs_set_error(ENOMEM, "out of memory"), PFS_NOTSENT;
    rc = pfs_send_all(fd, frame, flen, NULL, 0);
    explicit_bzero(frame, flen);
    free(frame);
    if (rc != 0)
        return pfs_set_error(ENODEV, "auth: send: %s", strerror(rc)), PFS_NOTSENT;
    /* The header, a byte at a time: nothing else comes before the reply. */
    for (;;) {
        if (hlen == sizeof(hdr))
            return pfs_set_error(EPROTO, "auth: reply header too long"), PFS_NOTSENT;
        if (read_full(fd, hdr + hlen, 1, deadline_ms) != 0)
            return PFS_NOTSENT;
        hlen++;
        if (hlen >= 4 && memcmp(hdr + hlen - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (pfs_json_parse_header(hdr, hlen, &blen) != 0 || blen > 65536)
        return pfs_set_error(EPROTO, "auth: bad reply header"), PFS_NOTSENT;
    body = malloc(blen + 1);
    if (body == NULL)
        return pfs_set_error(ENOMEM, "out of memory"), PFS_NOTSENT;
    if (read_full(fd, body, blen, deadline_ms) != 0) {
        free(body);
        return PFS_NOTSENT;
    }
    rc = pfs_json_decode_reply(body, blen, &reply, &id, &has_id);
    free(body);
    if (rc != 0 || !has_id || id != 1) {
        json_decref(reply);
        return pfs_set_error(EPROTO, "auth: unexpected reply"), PFS_NOTSENT;
    }
    rc = pfs_json_reply_status(reply, &res, &bad);
    json_decref(reply);
    if (rc == EACCES)
        return PFS_REFUSED; /* the server's message is recorded */
    return rc == 0 ? 0 : PFS_NOTSENT;
}

unsigned pfs_addr_count(const char *addr)
{
    unsigned n = 1;

    for (; *addr != '\0'; addr++)
        if (*addr == ',')
            n++;
    return n;
}

void pfs_addr_entry(const char *addr, unsigned i, char *buf)
{
    const char *end;
    size_t len;

    for (; i > 0; i--) {
        const char *c = strchr(addr, ',');

        if (c == NULL)
            break;
        addr = c + 1;
    }
    end = strchr(addr, ',');
    if (end == NULL)
        end = addr + strlen(addr);
    while (addr < end && *addr == ' ')
        addr++;
    while (end > addr && end[-1] == ' ')
        end--;
    len = (size_t)(end - addr);
    if (len >= PFS_MAX_ADDR)
        len = PFS_MAX_ADDR - 1;
    memcpy(buf, addr, len);
    buf[len] = '\0';
}

int pfs_connect_gw(const char *fixed, unsigned *gw, const pfs_sec_t *sec,
                   int kind, uint64_t timeout_ms, int *out_fd)
{
    char list[PFS_MAX_ADDR], addr[PFS_MAX_ADDR];
    unsigned n, tries;
    int rc = PFS_NOTSENT;

    pfs_server_addr(fixed, list);
    n = pfs_addr_count(list);
    for (tries = 0; tries < n; tries++) {
        unsigned cur = __atomic_load_n(gw, __ATOMIC_ACQUIRE);

        pfs_addr_entry(list, cur % n, addr);
        rc = pfs_connect_auth(addr, sec, kind, timeout_ms, out_fd);
        if (rc != PFS_NOTSENT || n == 1)
            return rc;
        /* Nothing answers there: the next gateway, unless another
         * connection of the pool moved already. */
        __atomic_compare_exchange_n(gw, &cur, (cur % n + 1) % n, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    return rc;
}

int pfs_connect_auth(const char *addr, const pfs_sec_t *sec, int kind,
                     uint64_t timeout_ms, int *out_fd)
{
    uint64_t deadline = pfs_now_ms() + timeout_ms;
    bool tls = sec != NULL && sec->tls;
    char *tok = NULL;
    int fd, rc;

    *out_fd = -1;
    if (tls && (strncmp(addr, "unix:", 5) == 0 || addr[0] == '/' || addr[0] == '.'))
        return pfs_set_error(EINVAL, "TLS over the Unix socket %s: use a "
                             "HOST:PORT server", addr), PFS_REFUSED;
    if (token_for(sec != NULL ? sec->token : NULL, &tok) != 0)
        return PFS_REFUSED; /* a token that cannot be read: not a retry */
    fd = pfs_connect_addr(addr, timeout_ms);
    if (fd < 0) {
        free_token(tok);
        return PFS_NOTSENT;
    }
    if (tls && (rc = pfs_tls_connect(fd, sec->tls_ctx, addr, timeout_ms, &fd)) != 0) {
        free_token(tok);
        return rc;
    }
    if (tok != NULL) {
        rc = kind == PFS_CONN_JSON ? auth_json(fd, tok, deadline)
                                   : auth_bin(fd, tok, deadline);
        free_token(tok);
        /* TLS 1.3: a server refusing the client's certificate says so
         * after the client's side of the handshake, on the first read. */
        if (rc == PFS_NOTSENT && tls && pfs_tls_failed(fd))
            rc = PFS_REFUSED;
        if (rc != 0) {
            pfs_sock_close(fd);
            return rc;
        }
    }
    *out_fd = fd;
    return 0;
}
