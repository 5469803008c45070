/* harness.c - starts proxyfsd for the integration tests. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

int t_pass, t_fail;

/* Returns a loopback TCP port nothing listens on (just released), or -1. */
int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int can_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* One JSON-RPC exchange on fd: sends body, reads the reply into out
 * (NUL-terminated). Returns 0, or -1 on a transport error. */
static int rpc_raw(int fd, const char *body, char *out, size_t outlen)
{
    char hdr[64];
    size_t got = 0, len;
    int n = snprintf(hdr, sizeof(hdr), "Content-Length: %zu\r\n\r\n", strlen(body));

    if (write(fd, hdr, (size_t)n) != n ||
        write(fd, body, strlen(body)) != (ssize_t)strlen(body))
        return -1;
    /* The header block, byte by byte up to the blank line. */
    while (got < outlen - 1) {
        if (read(fd, out + got, 1) != 1)
            return -1;
        got++;
        out[got] = '\0';
        if (got >= 4 && strcmp(out + got - 4, "\r\n\r\n") == 0)
            break;
    }
    if (sscanf(out, "Content-Length: %zu", &len) != 1 || len >= outlen)
        return -1;
    for (got = 0; got < len;) {
        ssize_t r = read(fd, out + got, len - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    out[len] = '\0';
    return 0;
}

/* Gives the root directory of a new volume to uid and gid 1000, as an
 * administrator would: the tests mount as 1000, and a new volume's root
 * is root's (mode 0755). It speaks JSON-RPC itself (mount as uid 0,
 * chown_path "/", unmount) so that the library's own state is untouched. */
static int give_root(test_daemon_t *d)
{
    struct sockaddr_in sa;
    char req[256], rep[1024];
    const char *p;
    unsigned long long id;
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)d->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    snprintf(req, sizeof(req),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"mount\",\"params\":"
             "{\"volume\":\"%s\",\"user\":\"admin\",\"uid\":0,\"gid\":0}}",
             d->volume ? d->volume : "default");
    if (rpc_raw(fd, req, rep, sizeof(rep)) != 0 ||
        (p = strstr(rep, "\"mount_id\":")) == NULL ||
        sscanf(p + strlen("\"mount_id\":"), "%llu", &id) != 1)
        goto out;
    snprintf(req, sizeof(req),
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"chown_path\",\"params\":"
             "{\"mount_id\":%llu,\"path\":\"/\",\"uid\":1000,\"gid\":1000}}", id);
    if (rpc_raw(fd, req, rep, sizeof(rep)) != 0 || strstr(rep, "\"error\"") != NULL)
        goto out;
    snprintf(req, sizeof(req),
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"unmount\",\"params\":"
             "{\"mount_id\":%llu}}", id);
    if (rpc_raw(fd, req, rep, sizeof(rep)) == 0)
        rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "could not give the volume's root to uid 1000\n");
    if (fd >= 0)
        close(fd);
    return rc;
}

int daemon_start(test_daemon_t *d)
{
    char log[400];

    if (d->dir[0] == '\0') {
        FILE *f;

        strcpy(d->dir, "/tmp/libproxyfs-test.XXXXXX");
        if (mkdtemp(d->dir) == NULL)
            return -1;
        d->port = free_port();
        snprintf(d->conf, sizeof(d->conf), "%s/proxyfsd.toml", d->dir);
        snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
        snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", d->port);
        f = fopen(d->conf, "w");
        if (f == NULL)
            return -1;
        fprintf(f,
                "[server]\ntcp = \"%s\"\nunix = \"%s\"\n%s"
                "[metrics]\nlisten = \"\"\n"
                "[log]\nlevel = \"warn\"\n"
                "[[volume]]\nname = \"%s\"\nengine = \"%s\"\n"
                "path = \"%s/data\"\nauto_format = true\n%s%s",
                d->addr, d->sock, d->server_extra ? d->server_extra : "",
                d->volume ? d->volume : "default",
                d->engine ? d->engine : "local", d->dir,
                d->volume_extra ? d->volume_extra : "",
                d->access_extra ? d->access_extra : "");
        fclose(f);
    }
    snprintf(log, sizeof(log), "%s/proxyfsd.log", d->dir);
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(d->bin, d->bin, "-config", d->conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        int st;

        if (can_connect(d->port)) {
            if (d->root_given)
                return 0;
            d->root_given = 1;
            return give_root(d);
        }
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "proxyfsd exited early; see %s\n", log);
            d->pid = 0;
            return -1;
        }
        nanosleep(&ts, NULL);
    }
    return -1;
}

void daemon_signal(test_daemon_t *d, int sig)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, sig);
    if (sig == SIGSTOP) {
        /* kill() returns before the process stops: wait for state T. */
        char path[64], buf[256];

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
        for (int i = 0; i < 200; i++) {
            FILE *f = fopen(path, "r");
            char *p = NULL;
            size_t n = 0;

            if (f != NULL) {
                n = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
            }
            buf[n] = '\0';
            p = strrchr(buf, ')');
            if (p != NULL && p[1] == ' ' && (p[2] == 'T' || p[2] == 't'))
                break;
            {
                struct timespec ts = { 0, 5 * 1000 * 1000 };

                nanosleep(&ts, NULL);
            }
        }
    }
    if (sig == SIGKILL || sig == SIGTERM) {
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
}

void daemon_cleanup(test_daemon_t *d)
{
    char cmd[400];

    daemon_signal(d, SIGTERM);
    if (d->dir[0] != '\0' && getenv("PROXYFS_TEST_KEEP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", d->dir);
    }
}
