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
                "[[volume]]\nname = \"%s\"\nengine = \"local\"\n"
                "path = \"%s/data\"\nauto_format = true\n",
                d->addr, d->sock, d->server_extra ? d->server_extra : "",
                d->volume ? d->volume : "default", d->dir);
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

        if (can_connect(d->port))
            return 0;
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
