/* tls.c - TLS (proxyfs_mount_opts: tls_ca_file, tls_cert_file,
 * tls_key_file) against a real proxyfsd whose TCP listener speaks TLS and
 * requires client certificates (tls_client_ca), with tokens and
 * access.cert_users. A throwaway CA, server and client certificates are
 * made with the openssl command. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../proxyfs.h"
#include "harness.h"

#define TOKEN "tls-token-0123456789abcdef"

static char pki[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A CA named ca, and a certificate cn signed by it with extensions ext. */
static int make_ca(const char *ca)
{
    return sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
              "-nodes -keyout %s.key -out %s.pem -days 1 -subj /CN=%s >/dev/null 2>&1",
              pki, ca, ca, ca);
}

static int make_cert(const char *ca, const char *cn, const char *ext)
{
    return sh("cd %s && printf '%s\\n' > %s.ext && "
              "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
              "-keyout %s.key -out %s.csr -subj /CN=%s >/dev/null 2>&1 && "
              "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial "
              "-out %s.pem -days 1 -extfile %s.ext >/dev/null 2>&1",
              pki, ext, cn, cn, cn, cn, cn, ca, ca, cn, cn);
}

static void done_cb(void *id)
{
    (void)id;
}

static void opts_init(proxyfs_mount_opts_t *o, const char *server, char *ca,
                      char *cert, char *key)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->server = server;
    o->volume = "default";
    o->user = "tls";
    o->tls_ca_file = ca;
    o->tls_cert_file = cert;
    o->tls_key_file = key;
}

static void io_check(mount_handle_t *mh, const char *name)
{
    uint64_t ino = 0;
    uint8_t buf[300000], back[16];
    size_t n = 0;
    int status = -1;
    char req;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 13);
    CHECK_RC(proxyfs_create(mh, 1, (char *)name, 0644, &ino), 0);     /* binary, direct */
    CHECK_RC(proxyfs_write(mh, ino, 0, buf, sizeof(buf), &n), 0);      /* striped */
    CHECK(n == sizeof(buf));
    CHECK_RC(proxyfs_read(mh, ino, 1000, sizeof(back), back, sizeof(back), &n), 0);
    CHECK(n == sizeof(back) && back[0] == buf[1000] && back[15] == buf[1015]);
    CHECK_RC(proxyfs_read_send(mh, ino, 5, sizeof(back), back, sizeof(back), &req, done_cb), 0);
    CHECK_RC(proxyfs_read_recv(&req, &status, &n), 0);                 /* async */
    CHECK(status == 0 && n == sizeof(back) && back[0] == buf[5]);
    CHECK_RC(proxyfs_chmod(mh, ino, 0600), 0);                         /* JSON */
}

void tls_tests(const char *bin)
{
    char ca[128], other[128], srv[128], srvkey[128], ucert[128], ukey[128];
    char scert[128], skey[128], tokens[128], sextra[512], aextra[512];
    test_daemon_t d = { .bin = bin };
    proxyfs_mount_opts_t o;
    mount_handle_t *mh = NULL, *viacert = NULL, *viatoken = NULL;
    uint64_t ino = 0;

    strcpy(pki, "/tmp/libproxyfs-tls.XXXXXX");
    if (mkdtemp(pki) == NULL) {
        CHECK(0);
        return;
    }
    if (make_ca("ca") != 0 || make_ca("other") != 0 ||
        make_cert("ca", "server", "subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth") != 0 ||
        make_cert("ca", "user", "extendedKeyUsage=clientAuth") != 0 ||
        make_cert("ca", "stranger", "extendedKeyUsage=clientAuth") != 0) {
        fprintf(stderr, "tls: cannot make certificates with openssl\n");
        CHECK(0);
        goto out;
    }
    snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
    snprintf(other, sizeof(other), "%s/other.pem", pki);
    snprintf(srv, sizeof(srv), "%s/server.pem", pki);
    snprintf(srvkey, sizeof(srvkey), "%s/server.key", pki);
    snprintf(ucert, sizeof(ucert), "%s/user.pem", pki);
    snprintf(ukey, sizeof(ukey), "%s/user.key", pki);
    snprintf(scert, sizeof(scert), "%s/stranger.pem", pki);
    snprintf(skey, sizeof(skey), "%s/stranger.key", pki);
    snprintf(tokens, sizeof(tokens), "%s/tokens", pki);
    {
        FILE *f = fopen(tokens, "w");

        if (f == NULL) {
            CHECK(0);
            goto out;
        }
        fprintf(f, TOKEN " gw *\n");
        fclose(f);
    }
    snprintf(sextra, sizeof(sextra), "tls_cert = \"%s\"\ntls_key = \"%s\"\ntls_client_ca = \"%s\"\n",
             srv, srvkey, ca);
    snprintf(aextra, sizeof(aextra), "[access]\ntokens_file = \"%s\"\n"
             "[access.cert_users]\nuser = \"0:0\"\n", tokens);
    d.server_extra = sextra;
    d.access_extra = aextra;
    d.root_given = 1;
    if (daemon_start(&d) != 0) {
        fprintf(stderr, "cannot start proxyfsd with TLS\n");
        CHECK(0);
        goto out;
    }

    /* A client certificate of access.cert_users: no token needed. */
    opts_init(&o, d.addr, ca, ucert, ukey);
    CHECK_RC(proxyfs_mount_opts(&o, &viacert), 0);
    /* A certificate not listed, with a token. */
    opts_init(&o, d.addr, ca, scert, skey);
    o.token = TOKEN;
    CHECK_RC(proxyfs_mount_opts(&o, &viatoken), 0);
    if (viacert == NULL || viatoken == NULL)
        goto out;
    io_check(viacert, "a");
    io_check(viatoken, "b");

    /* kill -9 and restart: reconnects make TLS and auth again. */
    daemon_signal(&d, SIGKILL);
    if (daemon_start(&d) != 0) {
        CHECK(0);
        goto out;
    }
    CHECK_RC(proxyfs_lookup(viatoken, 1, "a", &ino), 0);
    io_check(viatoken, "c");
    io_check(viacert, "d");

    /* Refusals. The server's certificate from another CA: EACCES. */
    opts_init(&o, d.addr, other, ucert, ukey);
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EACCES);
    CHECK(strstr(proxyfs_last_error(), "certificate") != NULL);
    /* A certificate not listed, without a token: EACCES from the server. */
    opts_init(&o, d.addr, ca, scert, skey);
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EACCES);
    /* ... with a wrong token. */
    o.token = "wrong-token-0123456789abcdef";
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EACCES);
    /* No client certificate: the daemon refuses the handshake (with TLS
     * 1.3 after the client's side of it is done: its alert comes with the
     * reply to auth): EACCES. Without a token to send, the first request
     * meets the closed connection: ENODEV. */
    opts_init(&o, d.addr, ca, NULL, NULL);
    o.token = TOKEN;
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EACCES);
    CHECK(strstr(proxyfs_last_error(), "TLS") != NULL);
    o.token = NULL;
    CHECK(proxyfs_mount_opts(&o, &mh) != 0);
    CHECK(mh == NULL);
    /* Option errors. */
    opts_init(&o, d.addr, ca, ucert, NULL);
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EINVAL);
    opts_init(&o, d.addr, tokens, NULL, NULL); /* not a certificate */
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EINVAL);
    opts_init(&o, d.sock, ca, ucert, ukey);    /* a Unix socket */
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EINVAL);
    /* Plain TCP to the TLS listener does not get through. */
    CHECK(proxyfs_mount_server(d.addr, "default", 0, "t", 0, 0, &mh) != 0);
    CHECK(mh == NULL);

out:
    if (viacert != NULL)
        CHECK_RC(proxyfs_unmount(viacert), 0);
    if (viatoken != NULL)
        CHECK_RC(proxyfs_unmount(viatoken), 0);
    daemon_cleanup(&d);
    if (pki[0] != '\0' && getenv("PROXYFS_TEST_KEEP") == NULL)
        sh("rm -rf '%s'", pki);
}
