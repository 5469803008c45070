/* token.c - tokens (proxyfs_mount_opts, PROXYFS_TOKEN, PROXYFS_TOKEN_FILE)
 * against a real proxyfsd whose [access] lets no local user in: without a
 * token even root is refused, so every call that works proves that its
 * connection sent auth, also after the daemon was killed and restarted. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../proxyfs.h"
#include "harness.h"

#define GW_TOKEN "gw-token-0123456789abcdef"
#define ALICE_TOKEN "alice-token-0123456789abcdef"

static volatile int done_count;

static void done_cb(void *id)
{
    (void)id;
    __atomic_fetch_add(&done_count, 1, __ATOMIC_RELAXED);
}

/* A write and read-back on the binary channel: synchronous (a direct
 * socket), striped (the pipelined connections) and async (pipelined, the
 * worker's retries); and JSON calls. */
static void io_round(mount_handle_t *mh, uint64_t dir, const char *name)
{
    static uint8_t big[1024 * 1024];
    uint8_t back[16];
    uint64_t f = 0;
    size_t n = 0;
    int status = -1;
    char req;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    CHECK_RC(proxyfs_create(mh, dir, (char *)name, 0600, &f), 0);   /* binary */
    CHECK_RC(proxyfs_write(mh, f, 0, big, sizeof(big), &n), 0);       /* striped */
    CHECK(n == sizeof(big));
    CHECK_RC(proxyfs_read(mh, f, 4096, sizeof(back), back, sizeof(back), &n), 0);
    CHECK(n == sizeof(back) && back[0] == big[4096] && back[15] == big[4111]);
    done_count = 0;
    CHECK_RC(proxyfs_read_send(mh, f, 100, sizeof(back), back, sizeof(back), &req, done_cb), 0);
    CHECK_RC(proxyfs_read_recv(&req, &status, &n), 0);
    CHECK(status == 0 && n == sizeof(back) && back[0] == big[100]);
    CHECK_RC(proxyfs_chmod(mh, f, 0640), 0);                           /* JSON */
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

void token_tests(const char *bin)
{
    char dir[] = "/tmp/libproxyfs-token.XXXXXX";
    char tokens[128], extra[512], tfile[128], badfile[128], emptyfile[128];
    test_daemon_t d = { .bin = bin };
    proxyfs_mount_opts_t o;
    mount_handle_t *gw = NULL, *alice = NULL, *mh = (mount_handle_t *)1;
    uint64_t top = 0, ino = 0, secret = 0;
    uint8_t buf[8];
    size_t n = 0;
    int saved;

    if (mkdtemp(dir) == NULL) {
        CHECK(0);
        return;
    }
    snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
    snprintf(tfile, sizeof(tfile), "%s/gw.token", dir);
    snprintf(badfile, sizeof(badfile), "%s/bad.token", dir);
    snprintf(emptyfile, sizeof(emptyfile), "%s/empty.token", dir);
    CHECK(write_file(tokens, "# name acts-as\n" GW_TOKEN " gw *\n"
                     ALICE_TOKEN " alice 1000:1000\n") == 0);
    CHECK(write_file(tfile, GW_TOKEN "  \n") == 0);
    CHECK(write_file(badfile, "not-a-known-token-at-all\n") == 0);
    CHECK(write_file(emptyfile, "\n" GW_TOKEN "\n") == 0);
    /* No local user may connect (65533 is nobody's uid here), root is no
     * gateway: only tokens get in. */
    snprintf(extra, sizeof(extra),
             "[access]\nusers = [\"65533\"]\ngateway_users = []\n"
             "tokens_file = \"%s\"\n", tokens);
    d.access_extra = extra;
    d.root_given = 1; /* giving the root away needs a token: done below */
    if (daemon_start(&d) != 0) {
        fprintf(stderr, "cannot start proxyfsd with tokens\n");
        CHECK(0);
        goto out;
    }

    /* Without a token: refused (root's connection may not connect). */
    CHECK_RC(proxyfs_mount_server(d.addr, "default", 0, "t", 0, 0, &mh), EACCES);
    CHECK(mh == NULL);

    /* Option errors; errno untouched. */
    saved = errno = 4321;
    CHECK_RC(proxyfs_mount_opts(NULL, &mh), EINVAL);
    memset(&o, 0, sizeof(o));
    o.volume = "default";
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EINVAL);          /* size not set */
    o.size = sizeof(o);
    o.server = d.addr;
    o.token = GW_TOKEN;
    o.token_file = tfile;
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EINVAL);          /* both */
    o.token_file = NULL;
    o.token = "";
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EINVAL);
    o.token = NULL;
    o.token_file = "/nonexistent/token";
    CHECK_RC(proxyfs_mount_opts(&o, &mh), ENOENT);
    o.token_file = emptyfile;                               /* first line empty */
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EINVAL);
    CHECK(errno == saved);
    CHECK(mh == NULL);

    /* A wrong token: EACCES, from a token or a token file. */
    o.token_file = NULL;
    o.token = "wrong-token-0123456789abcdef";
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EACCES);
    CHECK(strstr(proxyfs_last_error(), "token") != NULL);
    o.token = NULL;
    o.token_file = badfile;
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EACCES);
    CHECK(mh == NULL);

    /* The gateway token, from its file: acts as root. */
    o.token_file = tfile;
    o.user = "gw";
    CHECK_RC(proxyfs_mount_opts(&o, &gw), 0);
    if (gw == NULL)
        goto out;
    CHECK_RC(proxyfs_mkdir_path(gw, "/tok", 0755), 0);
    CHECK_RC(proxyfs_lookup_path(gw, "/tok", &top), 0);
    CHECK_RC(proxyfs_create(gw, top, "secret", 0600, &secret), 0);
    CHECK_RC(proxyfs_write(gw, secret, 0, (uint8_t *)"hidden", 6, &n), 0);
    CHECK_RC(proxyfs_mkdir(gw, top, "alice", 0755, &ino), 0);
    CHECK_RC(proxyfs_chown(gw, ino, 1000, 1000), 0);
    io_round(gw, top, "a");

    /* alice's token acts only as 1000:1000. */
    o.token_file = NULL;
    o.token = ALICE_TOKEN;
    o.user = "alice";
    CHECK_RC(proxyfs_mount_opts(&o, &mh), EPERM);           /* as uid 0 */
    o.uid = 1000;
    o.gid = 1000;
    CHECK_RC(proxyfs_mount_opts(&o, &alice), 0);
    if (alice != NULL) {
        CHECK_RC(proxyfs_read(alice, secret, 0, sizeof(buf), buf, sizeof(buf), &n), EACCES);
        CHECK_RC(proxyfs_lookup_path(alice, "/tok/alice", &ino), 0);
        io_round(alice, ino, "mine");
    }

    /* kill -9 and restart: every reconnect authenticates again. */
    daemon_signal(&d, SIGKILL);
    if (daemon_start(&d) != 0) {
        CHECK(0);
        goto out;
    }
    io_round(gw, top, "b");
    if (alice != NULL) {
        CHECK_RC(proxyfs_read(alice, secret, 0, sizeof(buf), buf, sizeof(buf), &n), EACCES);
        io_round(alice, ino, "again");
    }
    /* And again, with the gateway handle's calls the first after it. */
    daemon_signal(&d, SIGKILL);
    if (daemon_start(&d) != 0) {
        CHECK(0);
        goto out;
    }
    CHECK_RC(proxyfs_read(gw, secret, 0, sizeof(buf), buf, sizeof(buf), &n), 0);
    CHECK(n == 6 && memcmp(buf, "hidden", 6) == 0);
    io_round(gw, top, "c");

    /* The process's default token: PROXYFS_TOKEN, then PROXYFS_TOKEN_FILE. */
    setenv("PROXYFS_TOKEN", GW_TOKEN, 1);
    CHECK_RC(proxyfs_mount_server(d.addr, "default", 0, "env", 0, 0, &mh), 0);
    if (mh != NULL) {
        CHECK_RC(proxyfs_lookup_path(mh, "/tok/secret", &ino), 0);
        CHECK_RC(proxyfs_unmount(mh), 0);
    }
    mh = NULL;
    unsetenv("PROXYFS_TOKEN");
    setenv("PROXYFS_TOKEN_FILE", tfile, 1);
    CHECK_RC(proxyfs_mount_server(d.addr, "default", 0, "env", 0, 0, &mh), 0);
    if (mh != NULL) {
        CHECK_RC(proxyfs_lookup_path(mh, "/tok/secret", &ino), 0);
        CHECK_RC(proxyfs_unmount(mh), 0);
    }
    mh = NULL;
    setenv("PROXYFS_TOKEN_FILE", badfile, 1);
    CHECK_RC(proxyfs_mount_server(d.addr, "default", 0, "env", 0, 0, &mh), EACCES);
    unsetenv("PROXYFS_TOKEN_FILE");

out:
    if (alice != NULL)
        CHECK_RC(proxyfs_unmount(alice), 0);
    if (gw != NULL)
        CHECK_RC(proxyfs_unmount(gw), 0);
    daemon_cleanup(&d);
    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", dir);
    }
}
