/*
 * netfloor: the least a file write over the network costs on this machine,
 * for reading write_seq and write_async (see ../BENCHMARKS.md).
 *
 *   netfloor [DIR] [ROUNDS]
 *
 * A receiver process reads 1 MiB blocks from a loopback TCP connection and
 * pwrite()s each into a file in DIR, then fsyncs; the sender writes 256 MiB,
 * either waiting for a one-byte acknowledgement after each MiB (like
 * synchronous proxyfs_write calls) or streaming. No protocol, no metadata:
 * just the copies and wake-ups any network file server pays. Each round
 * prints both rates beside the disk baseline of the benchmark (one process:
 * pwrite 1 MiB blocks, then fsync), measured in the same round.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1 << 20)
#define BLOCKS 256

static void die(const char *what)
{
    fprintf(stderr, "netfloor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void read_full(int fd, char *b, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, b + got, n - got);

        if (r <= 0)
            die("read");
        got += (size_t)r;
    }
}

static void write_full(int fd, const char *b, size_t n)
{
    for (size_t put = 0; put < n;) {
        ssize_t w = write(fd, b + put, n - put);

        if (w <= 0)
            die("write");
        put += (size_t)w;
    }
}

/* pwrite BLOCKS MiB into DIR/disk, fsync; MiB/s. */
static double disk(const char *dir, char *buf)
{
    char path[4096];
    double t0, t;
    int fd;

    snprintf(path, sizeof(path), "%s/disk", dir);
    if ((fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644)) < 0)
        die("open");
    t0 = now();
    for (int i = 0; i < BLOCKS; i++)
        if (pwrite(fd, buf, MIB, (off_t)i * MIB) != MIB)
            die("pwrite");
    if (fsync(fd) != 0)
        die("fsync");
    t = now() - t0;
    close(fd);
    unlink(path);
    return BLOCKS / t;
}

/* The receiver: BLOCKS MiB from c into DIR/net, an ack per MiB if sync,
 * fsync, then a final byte. */
static void receiver(int c, const char *dir, int sync, char *buf)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s/net", dir);
    if ((fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644)) < 0)
        die("open");
    for (int i = 0; i < BLOCKS; i++) {
        read_full(c, buf, MIB);
        if (pwrite(fd, buf, MIB, (off_t)i * MIB) != MIB)
            die("pwrite");
        if (sync)
            write_full(c, "k", 1);
    }
    if (fsync(fd) != 0)
        die("fsync");
    write_full(c, "d", 1);
    close(fd);
    unlink(path);
}

/* Sends BLOCKS MiB to a forked receiver; MiB/s up to its final byte. */
static double net(const char *dir, int sync, char *buf)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t slen = sizeof(sa);
    int l, s, one = 1, status;
    double t0, t;
    pid_t pid;
    char ack;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &slen) != 0)
        die("listen");
    if ((pid = fork()) < 0)
        die("fork");
    if (pid == 0) {
        int c = accept(l, NULL, NULL);

        if (c < 0)
            die("accept");
        receiver(c, dir, sync, buf);
        _exit(0);
    }
    if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    t0 = now();
    for (int i = 0; i < BLOCKS; i++) {
        write_full(s, buf, MIB);
        if (sync)
            read_full(s, &ack, 1);
    }
    read_full(s, &ack, 1);
    t = now() - t0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("receiver");
    close(s);
    close(l);
    return BLOCKS / t;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    char *buf = malloc(MIB);

    if (buf == NULL)
        die("malloc");
    memset(buf, 7, MIB);
    for (int r = 0; r < rounds; r++) {
        double d = disk(dir, buf), ns = net(dir, 1, buf), nst = net(dir, 0, buf);

        printf("disk %.0f MiB/s | network, ack per MiB %.0f MiB/s (ratio %.2f) | "
               "network, streaming %.0f MiB/s (ratio %.2f)\n",
               d, ns, ns / d, nst, nst / d);
        fflush(stdout);
    }
    free(buf);
    return 0;
}
