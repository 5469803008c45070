/*
 * bench.c - proxyfs benchmark through libproxyfs, with baselines measured in
 * the same run (see ../BENCHMARKS.md).
 *
 *   bench [-quick] [-proxyfsd PATH] [-tmp DIR] [-only a,b,...] [-n FILES]
 *         [-mib MIB] [-keep]
 *
 * -only runs the named phases (create and unlink always run when any
 * metadata phase does); -n and -mib override the sizes (for profiling).
 *
 * It starts proxyfsd itself (loopback TCP on a free port, engine "local",
 * data directory in a fresh temp dir under -tmp / $TMPDIR / /tmp, where the
 * local-disk baseline files live too), mounts the default volume and runs
 * the phases. Each line: phase, threads, figure, baseline, ratio, target,
 * PASS/MISS, and the daemon's CPU seconds during the phase.
 *
 * Exit status: 0 when every call succeeded and all data verified (targets
 * missed or not), 1 when something is broken, 2 for bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proxyfs.h"

#define MIB (1024u * 1024u)
#define MAXT 4

/* ----------------------------------------------------------- settings */

static struct {
    bool quick;
    bool keep;
    const char *proxyfsd;
    const char *tmpbase;
    const char *only;
    unsigned nfiles;     /* metadata phases: files per thread directory */
    unsigned nsmall;     /* small_files: files in all, split over threads */
    unsigned mib;        /* write_seq/read_seq/write_async size */
    unsigned ci_n;       /* ci_create: entries in its one directory */
    double rtt_secs;     /* duration of each raw-TCP baseline */
} cfg = { .nfiles = 5000, .nsmall = 2000, .mib = 256, .rtt_secs = 1.5, .ci_n = 100000 };

static char g_dir[512];  /* temp dir: daemon config, data, local files */
static int g_port, g_mport;
static pid_t g_pid;
static mount_handle_t *g_mh;
static uint64_t g_root;
static int g_broken;
static int g_misses;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void cleanup(void)
{
    if (g_pid > 0) {
        kill(g_pid, SIGTERM);
        waitpid(g_pid, NULL, 0);
        g_pid = 0;
    }
    if (g_dir[0] != '\0' && !cfg.keep) {
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: cannot remove %s\n", g_dir);
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "bench: BROKEN: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stdout);
    cleanup();
    exit(1);
}

#define CHECK(rc, what, ...)                                              \
    do {                                                                  \
        int rc_ = (rc);                                                   \
        if (rc_ != 0)                                                     \
            die(what ": %s (%s)", ##__VA_ARGS__, strerror(rc_),           \
                proxyfs_last_error());                                    \
    } while (0)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool want(const char *phase)
{
    const char *p;
    size_t n = strlen(phase);

    if (cfg.only == NULL)
        return true;
    for (p = cfg.only; (p = strstr(p, phase)) != NULL; p += n)
        if ((p == cfg.only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

/* -------------------------------------------------------- daemon stats */

static double srv_cpu(void)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)g_pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL)
        return 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long srv_status_kb(const char *key)
{
    char path[64], line[256];
    long v = -1;
    size_t kl = strlen(key);
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)g_pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* -------------------------------------------------------------- output */

static double g_cpu0, g_ccpu0;

/* CPU seconds of this process (the client: library + bench). */
static double cli_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void phase_begin(void)
{
    g_cpu0 = srv_cpu();
    g_ccpu0 = cli_cpu();
}

/* target <= 0: no target. */
static void report(const char *phase, int threads, double fig, const char *unit,
                   double base, const char *bunit, double target)
{
    double ratio = base > 0 ? fig / base : 0;
    char tbuf[32] = "-", res[8] = "-";

    if (target > 0) {
        snprintf(tbuf, sizeof(tbuf), ">=%.2f", target);
        strcpy(res, ratio >= target ? "PASS" : "MISS");
        if (ratio < target)
            g_misses++;
    }
    printf("%-12s T=%d %10.1f %-7s base %10.1f %-9s ratio %6.3f target %-6s %-4s cpu srv %5.2fs cli %5.2fs\n",
           phase, threads, fig, unit, base, bunit, ratio, tbuf, res,
           srv_cpu() - g_cpu0, cli_cpu() - g_ccpu0);
    fflush(stdout);
}

/* ------------------------------------------------------------- threads */

typedef struct {
    int idx;
    int nthreads;
    void *(*fn)(void *);
    double t0, t1;
    int rc;
    uint64_t dir;       /* proxyfs directory of this thread */
    uint64_t *inos;     /* inode of each file */
    char ldir[600];     /* local directory of this thread */
    unsigned n;
    uint64_t count;     /* ops done (e.g. entries read) */
    double step[4];     /* small_files: seconds in each of the 4 steps */
} worker_t;

static pthread_barrier_t g_bar;

static void *worker_trampoline(void *arg)
{
    worker_t *w = arg;

    pthread_barrier_wait(&g_bar);
    w->t0 = now_s();
    w->fn(w);
    w->t1 = now_s();
    return NULL;
}

/* Runs fn on each worker at once; returns the wall time from the common
 * start to the last finish. */
static double run_workers(worker_t *ws, int n, void *(*fn)(void *))
{
    pthread_t th[MAXT];
    double t0 = 1e300, t1 = 0;

    pthread_barrier_init(&g_bar, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        ws[i].fn = fn;
        if (pthread_create(&th[i], NULL, worker_trampoline, &ws[i]) != 0)
            die("pthread_create");
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&g_bar);
    for (int i = 0; i < n; i++) {
        if (ws[i].t0 < t0)
            t0 = ws[i].t0;
        if (ws[i].t1 > t1)
            t1 = ws[i].t1;
    }
    return t1 - t0;
}

/* ------------------------------------------------ raw loopback baselines */

static int listen_any(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, 16) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die("listen: %s", strerror(errno));
    *port = ntohs(sa.sin_port);
    return fd;
}

static int connect_port(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect 127.0.0.1:%d: %s", port, strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);

        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
    size_t put = 0;

    while (put < len) {
        ssize_t n = write(fd, (const char *)buf + put, len - put);

        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return -1;
        }
        put += (size_t)n;
    }
    return 0;
}

typedef struct {
    int fd;
    size_t msg;        /* ping-pong message size, or 0 for stream sink */
    uint64_t count;
    volatile bool *stop;
} echo_t;

/* Server side of a ping-pong pair: echo msg-byte messages until EOF. */
static void *echo_main(void *arg)
{
    echo_t *e = arg;
    char buf[64];

    while (read_full(e->fd, buf, e->msg) == 0 && write_full(e->fd, buf, e->msg) == 0)
        ;
    return NULL;
}

typedef struct {
    int fd;
    double secs;
    uint64_t count;
    double elapsed;
} ping_t;

static void *ping_main(void *arg)
{
    ping_t *p = arg;
    char buf[64];
    double t0, t;

    memset(buf, 'p', sizeof(buf));
    pthread_barrier_wait(&g_bar);
    t0 = now_s();
    do {
        for (int i = 0; i < 64; i++) {
            if (write_full(p->fd, buf, 64) != 0 || read_full(p->fd, buf, 64) != 0)
                die("ping-pong: %s", strerror(errno));
            p->count++;
        }
        t = now_s();
    } while (t - t0 < p->secs);
    p->elapsed = t - t0;
    return NULL;
}

/* Round trips per second (total) of T concurrent 64-byte ping-pong pairs:
 * the best of three runs (the machine is noisy; the baseline should be
 * what loopback can do). */
static double raw_rtt_once(int nt);

static double raw_rtt_rate(int nt)
{
    double best = 0;

    for (int i = 0; i < 3; i++) {
        double r = raw_rtt_once(nt);

        if (r > best)
            best = r;
    }
    return best;
}

static double raw_rtt_once(int nt)
{
    int lport, lfd = listen_any(&lport);
    pthread_t et[MAXT], pt[MAXT];
    echo_t e[MAXT];
    ping_t p[MAXT];
    double rate = 0;

    for (int i = 0; i < nt; i++) {
        int one = 1;

        p[i].fd = connect_port(lport);
        p[i].secs = cfg.rtt_secs / 3;
        p[i].count = 0;
        e[i].fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (e[i].fd < 0)
            die("accept: %s", strerror(errno));
        setsockopt(e[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        e[i].msg = 64;
        pthread_create(&et[i], NULL, echo_main, &e[i]);
    }
    pthread_barrier_init(&g_bar, NULL, (unsigned)nt);
    for (int i = 0; i < nt; i++)
        pthread_create(&pt[i], NULL, ping_main, &p[i]);
    for (int i = 0; i < nt; i++) {
        pthread_join(pt[i], NULL);
        rate += (double)p[i].count / p[i].elapsed;
        close(p[i].fd);
    }
    for (int i = 0; i < nt; i++) {
        pthread_join(et[i], NULL);
        close(e[i].fd);
    }
    pthread_barrier_destroy(&g_bar);
    close(lfd);
    return rate;
}

static void *sink_main(void *arg)
{
    echo_t *e = arg;
    char *buf = malloc(MIB);

    if (buf == NULL)
        die("malloc");
    for (;;) {
        ssize_t n = read(e->fd, buf, MIB);

        if (n > 0)
            e->count += (uint64_t)n;
        else if (!(n < 0 && errno == EINTR))
            break;
    }
    free(buf);
    return NULL;
}

/* MiB/s of one loopback TCP stream written in 1 MiB writes (best of 3). */
static double raw_tcp_bw_once(double secs);

static double raw_tcp_bw(void)
{
    double best = 0;

    for (int i = 0; i < 3; i++) {
        double r = raw_tcp_bw_once(cfg.rtt_secs / 3);

        if (r > best)
            best = r;
    }
    return best;
}

static double raw_tcp_bw_once(double secs)
{
    int lport, lfd = listen_any(&lport), cfd;
    pthread_t st;
    echo_t e = { 0 };
    char *buf = malloc(MIB);
    uint64_t sent = 0;
    double t0, t;

    if (buf == NULL)
        die("malloc");
    memset(buf, 'x', MIB);
    cfd = connect_port(lport);
    e.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (e.fd < 0)
        die("accept: %s", strerror(errno));
    pthread_create(&st, NULL, sink_main, &e);
    t0 = now_s();
    do {
        if (write_full(cfd, buf, MIB) != 0)
            die("stream: %s", strerror(errno));
        sent += MIB;
        t = now_s();
    } while (t - t0 < secs);
    shutdown(cfd, SHUT_WR);
    pthread_join(st, NULL);
    t = now_s();
    close(cfd);
    close(e.fd);
    close(lfd);
    free(buf);
    if (e.count != sent)
        die("stream: sent %llu, received %llu", (unsigned long long)sent,
            (unsigned long long)e.count);
    return (double)sent / MIB / (t - t0);
}

/* ---------------------------------------------------------- data pattern */

static uint8_t *g_pattern; /* 1 MiB of pseudo-random bytes */

static void make_pattern(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;

    g_pattern = malloc(MIB);
    if (g_pattern == NULL)
        die("malloc");
    for (size_t i = 0; i < MIB; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(g_pattern + i, &x, 8);
    }
}

/* Block i of a file: the pattern with i stamped at both ends. */
static void fill_block(uint8_t *buf, uint64_t i, uint64_t tag)
{
    memcpy(buf, g_pattern, MIB);
    memcpy(buf, &i, 8);
    memcpy(buf + MIB - 16, &i, 8);
    memcpy(buf + MIB - 8, &tag, 8);
}

static bool check_block(const uint8_t *buf, uint64_t i, uint64_t tag)
{
    return memcmp(buf, &i, 8) == 0 && memcmp(buf + MIB - 16, &i, 8) == 0 &&
           memcmp(buf + MIB - 8, &tag, 8) == 0 &&
           memcmp(buf + 8, g_pattern + 8, MIB - 24) == 0;
}

/* ----------------------------------------------------- local disk baseline */

/* MiB/s of pwrite in 1 MiB pieces + fsync, on the temp dir's filesystem. */
/* Seconds the last local_write_bw spent in pwrite and in fsync. */
static double g_lw_write, g_lw_sync;

static double local_write_bw(unsigned mib)
{
    char path[700];
    uint8_t *buf = malloc(MIB);
    double t0, tw, t1;
    int fd;

    if (buf == NULL)
        die("malloc");
    snprintf(path, sizeof(path), "%s/local/seq", g_dir);
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    t0 = now_s();
    for (unsigned i = 0; i < mib; i++) {
        fill_block(buf, i, 0);
        if (pwrite(fd, buf, MIB, (off_t)i * MIB) != (ssize_t)MIB)
            die("pwrite %s: %s", path, strerror(errno));
    }
    tw = now_s();
    if (fsync(fd) != 0)
        die("fsync %s: %s", path, strerror(errno));
    t1 = now_s();
    g_lw_write = tw - t0;
    g_lw_sync = t1 - tw;
    close(fd);
    unlink(path);
    free(buf);
    return mib / (t1 - t0);
}

/* ---------------------------------------------------- metadata phases */

static void name_of(char *buf, size_t len, unsigned i)
{
    snprintf(buf, len, "file-%06u", i);
}

static void *w_create(void *arg)
{
    worker_t *w = arg;
    char name[64];

    for (unsigned i = 0; i < w->n; i++) {
        name_of(name, sizeof(name), i);
        CHECK(proxyfs_create(g_mh, w->dir, name, 0644, &w->inos[i]), "create %s", name);
    }
    return NULL;
}

static void *w_lookup(void *arg)
{
    worker_t *w = arg;
    char name[64];
    uint64_t ino;

    for (unsigned i = 0; i < w->n; i++) {
        name_of(name, sizeof(name), i);
        CHECK(proxyfs_lookup(g_mh, w->dir, name, &ino), "lookup %s", name);
        if (ino != w->inos[i])
            die("lookup %s: inode %llu, created as %llu", name,
                (unsigned long long)ino, (unsigned long long)w->inos[i]);
    }
    return NULL;
}

static void *w_getstat(void *arg)
{
    worker_t *w = arg;

    for (unsigned i = 0; i < w->n; i++) {
        proxyfs_stat_t *st = NULL;

        CHECK(proxyfs_get_stat(g_mh, w->inos[i], &st), "get_stat %llu",
              (unsigned long long)w->inos[i]);
        if (st->ino != w->inos[i] || (st->mode & S_IFMT) != S_IFREG)
            die("get_stat %llu: wrong attributes", (unsigned long long)w->inos[i]);
        free(st);
    }
    return NULL;
}

static void *w_readdir_plus(void *arg)
{
    worker_t *w = arg;
    int64_t prev = -1;

    w->count = 0;
    for (;;) {
        struct dirent *de = NULL;
        proxyfs_stat_t *st = NULL;

        CHECK(proxyfs_readdir_plus(g_mh, w->dir, prev, &de, &st), "readdir_plus");
        if (de == NULL)
            break;
        if (st == NULL || st->ino != de->d_ino)
            die("readdir_plus: entry %s without its attributes", de->d_name);
        prev = de->d_off;
        w->count++;
        free(de);
        free(st);
    }
    if (w->count != (uint64_t)w->n + 2)
        die("readdir_plus: %llu entries, expected %u", (unsigned long long)w->count,
            w->n + 2);
    return NULL;
}

static void *w_unlink(void *arg)
{
    worker_t *w = arg;
    char name[64];

    for (unsigned i = 0; i < w->n; i++) {
        name_of(name, sizeof(name), i);
        CHECK(proxyfs_unlink(g_mh, w->dir, name), "unlink %s", name);
    }
    return NULL;
}

static void metadata_phases(int nt, double rtt)
{
    worker_t ws[MAXT];
    static const struct {
        const char *name;
        void *(*fn)(void *);
        double t1, t4;
    } ph[] = {
        { "create", w_create, 0.25, 0.4 },
        { "lookup", w_lookup, 0.4, 0.7 },
        { "getstat", w_getstat, 0.4, 0.7 },
        { "readdir_plus", w_readdir_plus, 2.5, 2.5 },
        { "unlink", w_unlink, 0.25, 0.4 },
    };
    static unsigned round;
    char name[64];

    round++;
    for (int i = 0; i < nt; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        ws[i].idx = i;
        ws[i].nthreads = nt;
        ws[i].n = cfg.nfiles;
        ws[i].inos = calloc(cfg.nfiles, sizeof(uint64_t));
        if (ws[i].inos == NULL)
            die("calloc");
        snprintf(name, sizeof(name), "meta-r%u-t%d-%d", round, nt, i);
        CHECK(proxyfs_mkdir(g_mh, g_root, name, 0755, &ws[i].dir), "mkdir %s", name);
    }
    for (size_t p = 0; p < sizeof(ph) / sizeof(ph[0]); p++) {
        double secs, ops = 0;

        /* create and unlink always run: the others need the files */
        if (!want(ph[p].name) && p != 0 && p != 4)
            continue;
        phase_begin();
        secs = run_workers(ws, nt, ph[p].fn);
        for (int i = 0; i < nt; i++)
            ops += p == 3 ? (double)ws[i].count : (double)ws[i].n;
        if (want(ph[p].name))
            report(ph[p].name, nt, ops / secs, p == 3 ? "ent/s" : "ops/s", rtt,
                   "rtt/s", nt == 1 ? ph[p].t1 : ph[p].t4);
    }
    for (int i = 0; i < nt; i++) {
        snprintf(name, sizeof(name), "meta-r%u-t%d-%d", round, nt, i);
        CHECK(proxyfs_rmdir(g_mh, g_root, name), "rmdir %s", name);
        free(ws[i].inos);
    }
}

/* --------------------------------------------------------- data phases */

static uint64_t g_bigino;

static void write_seq_phase(void)
{
    uint8_t *buf = malloc(MIB);
    double base, t0, tw, t1;
    size_t out;

    if (buf == NULL)
        die("malloc");
    base = local_write_bw(cfg.mib);
    CHECK(proxyfs_create(g_mh, g_root, "big-seq", 0644, &g_bigino), "create big-seq");
    phase_begin();
    t0 = now_s();
    for (unsigned i = 0; i < cfg.mib; i++) {
        fill_block(buf, i, 1);
        CHECK(proxyfs_write(g_mh, g_bigino, (uint64_t)i * MIB, buf, MIB, &out),
              "write block %u", i);
        if (out != MIB)
            die("write block %u: %zu bytes written", i, out);
    }
    tw = now_s();
    CHECK(proxyfs_flush(g_mh, g_bigino), "flush");
    t1 = now_s();
    report("write_seq", 1, cfg.mib / (t1 - t0), "MiB/s", base, "disk", 0.8);
    printf("#   write_seq seconds: proxyfs writes %.3f flush %.3f | disk pwrite %.3f "
           "fsync %.3f\n", tw - t0, t1 - tw, g_lw_write, g_lw_sync);
    free(buf);
}

static void read_seq_phase(void)
{
    uint8_t *buf = malloc(MIB);
    double base, t0, t1;
    size_t out;

    if (buf == NULL)
        die("malloc");
    base = raw_tcp_bw();
    phase_begin();
    t0 = now_s();
    for (unsigned i = 0; i < cfg.mib; i++) {
        CHECK(proxyfs_read(g_mh, g_bigino, (uint64_t)i * MIB, MIB, buf, MIB, &out),
              "read block %u", i);
        if (out != MIB || !check_block(buf, i, 1))
            die("read block %u: wrong data (%zu bytes)", i, out);
    }
    /* EOF */
    CHECK(proxyfs_read(g_mh, g_bigino, (uint64_t)cfg.mib * MIB, MIB, buf, MIB, &out),
          "read at EOF");
    if (out != 0)
        die("read at EOF returned %zu bytes", out);
    t1 = now_s();
    report("read_seq", 1, cfg.mib / (t1 - t0), "MiB/s", base, "tcp MiB/s", 0.6);
    free(buf);
}

#define ASYNC_DEPTH 8

/* Completed request ids, pushed by the callback (on a library thread). */
static pthread_mutex_t a_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t a_cond = PTHREAD_COND_INITIALIZER;
static void *a_doneq[ASYNC_DEPTH];
static unsigned a_ndone;

static void async_done(void *id)
{
    pthread_mutex_lock(&a_lock);
    a_doneq[a_ndone++] = id;
    pthread_cond_signal(&a_cond);
    pthread_mutex_unlock(&a_lock);
}

static void write_async_phase(void)
{
    uint8_t *bufs[ASYNC_DEPTH], *free_slots[ASYNC_DEPTH];
    uint64_t ino;
    double base, t0, t1;
    unsigned next = 0, reaped = 0, nfree = ASYNC_DEPTH;

    for (int i = 0; i < ASYNC_DEPTH; i++) {
        bufs[i] = malloc(MIB);
        if (bufs[i] == NULL)
            die("malloc");
        free_slots[i] = bufs[i];
    }
    base = local_write_bw(cfg.mib);
    CHECK(proxyfs_create(g_mh, g_root, "big-async", 0644, &ino), "create big-async");
    a_ndone = 0;
    phase_begin();
    t0 = now_s();
    while (reaped < cfg.mib) {
        void *done[ASYNC_DEPTH];
        unsigned nd;

        while (nfree > 0 && next < cfg.mib) {
            uint8_t *b = free_slots[--nfree];

            fill_block(b, next, 2);
            CHECK(proxyfs_write_send(g_mh, ino, (uint64_t)next * MIB, b, MIB, b,
                                     async_done),
                  "write_send block %u", next);
            next++;
        }
        pthread_mutex_lock(&a_lock);
        while (a_ndone == 0)
            pthread_cond_wait(&a_cond, &a_lock);
        nd = a_ndone;
        memcpy(done, a_doneq, nd * sizeof(void *));
        a_ndone = 0;
        pthread_mutex_unlock(&a_lock);
        for (unsigned i = 0; i < nd; i++) {
            int st;
            size_t out;

            CHECK(proxyfs_write_recv(done[i], &st, &out), "write_recv");
            if (st != 0)
                die("async write: %s", strerror(st));
            if (out != MIB)
                die("async write: %zu bytes written", out);
            free_slots[nfree++] = done[i];
            reaped++;
        }
    }
    CHECK(proxyfs_flush(g_mh, ino), "flush big-async");
    t1 = now_s();
    report("write_async", 1, cfg.mib / (t1 - t0), "MiB/s", base, "disk", 0.8);
    /* verify some blocks */
    for (unsigned i = 0; i < cfg.mib; i += cfg.mib / 8 ? cfg.mib / 8 : 1) {
        size_t out;

        CHECK(proxyfs_read(g_mh, ino, (uint64_t)i * MIB, MIB, bufs[0], MIB, &out),
              "read back async block %u", i);
        if (out != MIB || !check_block(bufs[0], i, 2))
            die("async block %u: wrong data", i);
    }
    CHECK(proxyfs_unlink(g_mh, g_root, "big-async"), "unlink big-async");
    for (int i = 0; i < ASYNC_DEPTH; i++)
        free(bufs[i]);
}

/* ------------------------------------------------------------ small files */

static void small_content(uint8_t *buf, unsigned t, unsigned i)
{
    memcpy(buf, g_pattern + ((t * 7919u + i) % 255u) * 4096u, 4096);
    memcpy(buf, &i, sizeof(i));
    memcpy(buf + 8, &t, sizeof(t));
}

static void *w_small_pfs(void *arg)
{
    worker_t *w = arg;
    uint8_t buf[4096], rbuf[4096];
    char name[64];
    size_t out;

    for (unsigned i = 0; i < w->n; i++) {
        uint64_t ino;

        name_of(name, sizeof(name), i);
        small_content(buf, (unsigned)w->idx, i);
        double t[5];

        t[0] = now_s();
        CHECK(proxyfs_create(g_mh, w->dir, name, 0644, &ino), "create %s", name);
        t[1] = now_s();
        CHECK(proxyfs_write(g_mh, ino, 0, buf, sizeof(buf), &out), "write %s", name);
        if (out != sizeof(buf))
            die("write %s: %zu bytes", name, out);
        t[2] = now_s();
        CHECK(proxyfs_flush(g_mh, ino), "flush %s", name);
        t[3] = now_s();
        CHECK(proxyfs_read(g_mh, ino, 0, sizeof(rbuf), rbuf, sizeof(rbuf), &out),
              "read %s", name);
        t[4] = now_s();
        if (out != sizeof(rbuf) || memcmp(buf, rbuf, sizeof(buf)) != 0)
            die("read %s: wrong data", name);
        for (int k = 0; k < 4; k++)
            w->step[k] += t[k + 1] - t[k];
    }
    return NULL;
}

static void *w_small_local(void *arg)
{
    worker_t *w = arg;
    uint8_t buf[4096], rbuf[4096];
    char path[700];

    for (unsigned i = 0; i < w->n; i++) {
        int fd;

        snprintf(path, sizeof(path), "%s/file-%06u", w->ldir, i);
        double t[5];

        small_content(buf, (unsigned)w->idx, i);
        t[0] = now_s();
        fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
        if (fd < 0)
            die("open %s: %s", path, strerror(errno));
        t[1] = now_s();
        if (pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
            die("pwrite %s: %s", path, strerror(errno));
        t[2] = now_s();
        if (fsync(fd) != 0)
            die("fsync %s: %s", path, strerror(errno));
        t[3] = now_s();
        if (pread(fd, rbuf, sizeof(rbuf), 0) != (ssize_t)sizeof(rbuf) ||
            memcmp(buf, rbuf, sizeof(buf)) != 0)
            die("pread %s: wrong data", path);
        t[4] = now_s();
        close(fd);
        for (int k = 0; k < 4; k++)
            w->step[k] += t[k + 1] - t[k];
    }
    return NULL;
}

static void small_files_phase(int nt)
{
    worker_t ws[MAXT];
    double lsecs, psecs;
    char name[64], cmd[800];

    for (int i = 0; i < nt; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        ws[i].idx = i;
        ws[i].nthreads = nt;
        ws[i].n = cfg.nsmall / (unsigned)nt;
        snprintf(ws[i].ldir, sizeof(ws[i].ldir), "%s/local/small-t%d-%d", g_dir, nt, i);
        if (mkdir(ws[i].ldir, 0755) != 0)
            die("mkdir %s: %s", ws[i].ldir, strerror(errno));
        snprintf(name, sizeof(name), "small-t%d-%d", nt, i);
        CHECK(proxyfs_mkdir(g_mh, g_root, name, 0755, &ws[i].dir), "mkdir %s", name);
    }
    lsecs = run_workers(ws, nt, w_small_local);
    double lstep[4] = { 0 };

    for (int i = 0; i < nt; i++)
        for (int k = 0; k < 4; k++) {
            lstep[k] += ws[i].step[k];
            ws[i].step[k] = 0;
        }
    phase_begin();
    psecs = run_workers(ws, nt, w_small_pfs);
    {
        double n = (double)(ws[0].n * (unsigned)nt), pstep[4] = { 0 };

        report("small_files", nt, n / psecs, "files/s", n / lsecs, "disk f/s",
               nt == 1 ? 0.5 : 0);
        for (int i = 0; i < nt; i++)
            for (int k = 0; k < 4; k++)
                pstep[k] += ws[i].step[k];
        printf("#   small_files T=%d mean us per file: proxyfs create %.0f write %.0f "
               "flush %.0f read %.0f | disk open %.0f pwrite %.0f fsync %.0f "
               "pread %.0f\n", nt, pstep[0] / n * 1e6, pstep[1] / n * 1e6,
               pstep[2] / n * 1e6, pstep[3] / n * 1e6, lstep[0] / n * 1e6,
               lstep[1] / n * 1e6, lstep[2] / n * 1e6, lstep[3] / n * 1e6);
    }
    for (int i = 0; i < nt; i++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ws[i].ldir);
        if (system(cmd) != 0)
            die("rm %s", ws[i].ldir);
    }
}

/* ------------------------------------------- case-insensitive creates */

/* ci_create: what an SMB gateway does to fill one directory. Every create
 * is preceded by a case-insensitive existence check (proxyfs_lookup_ci of
 * the name in another case, which must be ENOENT), and, as the baseline in
 * the same loop, an exact proxyfs_lookup miss. Per band of cfg.ci_n / 10
 * entries it prints the mean cost of each call, the ratio lookup_ci /
 * lookup, and what one miss would cost a gateway without the index: a
 * readdir_plus of the whole directory at that size. A flat lookup_ci column
 * (and ratio) is the point: the index makes a miss O(log n). */
static double ci_scan_ms(uint64_t dir, unsigned want_entries)
{
    double t0 = now_s();
    int64_t prev = -1;
    unsigned n = 0;

    for (;;) {
        struct dirent *de = NULL;
        proxyfs_stat_t *st = NULL;

        CHECK(proxyfs_readdir_plus(g_mh, dir, prev, &de, &st), "readdir_plus ci");
        if (de == NULL)
            break;
        prev = de->d_off;
        n++;
        free(de);
        free(st);
    }
    if (n != want_entries + 2)
        die("readdir_plus ci: %u entries, expected %u", n, want_entries + 2);
    return (now_s() - t0) * 1e3;
}

static void ci_create_phase(void)
{
    const unsigned n = cfg.ci_n, band = n / 10 > 0 ? n / 10 : 1;
    double t_ci = 0, t_lk = 0, t_cr = 0, last_ci = 0, last_lk = 0, last_scan = 0;
    double all_ci = 0, all_lk = 0;
    uint64_t dir, ino = 0;
    unsigned lo = 0;
    char name[64], ask[64], *real = NULL;

    phase_begin();
    CHECK(proxyfs_mkdir(g_mh, g_root, "ci-big", 0755, &dir), "mkdir ci-big");
    printf("# ci_create: %u creates in one directory, each after a lookup_ci miss "
           "(baseline: an exact lookup miss in the same loop); mean us per call\n", n);
    printf("#   %-15s %9s %9s %7s %9s %14s\n", "entries", "lookup_ci", "lookup",
           "ratio", "create", "scan miss ms");
    for (unsigned i = 0; i < n; i++) {
        double t0, t1, t2, t3;
        int rc;

        snprintf(name, sizeof(name), "Doc-%07u.TXT", i);
        snprintf(ask, sizeof(ask), "doc-%07u.txt", i);
        t0 = now_s();
        rc = proxyfs_lookup_ci(g_mh, dir, ask, NULL, NULL, NULL);
        t1 = now_s();
        if (rc != ENOENT)
            die("lookup_ci %s before its create: %s, want ENOENT", ask, strerror(rc));
        rc = proxyfs_lookup(g_mh, dir, ask, &ino);
        t2 = now_s();
        if (rc != ENOENT)
            die("lookup %s: %s, want ENOENT", ask, strerror(rc));
        CHECK(proxyfs_create(g_mh, dir, name, 0644, &ino), "create %s", name);
        t3 = now_s();
        t_ci += t1 - t0;
        t_lk += t2 - t1;
        t_cr += t3 - t2;
        if ((i + 1) % band == 0 || i + 1 == n) {
            unsigned cnt = i + 1 - lo;
            double ci_us = t_ci / cnt * 1e6, lk_us = t_lk / cnt * 1e6;
            uint64_t got = 0;

            /* The name just created is found in any case. */
            CHECK(proxyfs_lookup_ci(g_mh, dir, ask, &real, &got, NULL), "lookup_ci %s", ask);
            if (strcmp(real, name) != 0 || got != ino)
                die("lookup_ci %s: %s (%llu), want %s (%llu)", ask, real,
                    (unsigned long long)got, name, (unsigned long long)ino);
            free(real);
            real = NULL;
            last_scan = ci_scan_ms(dir, i + 1);
            printf("#   %7u-%-7u %9.1f %9.1f %7.2f %9.1f %14.1f\n", lo, i + 1, ci_us,
                   lk_us, ci_us / lk_us, t_cr / cnt * 1e6, last_scan);
            fflush(stdout);
            last_ci = ci_us;
            last_lk = lk_us;
            all_ci += t_ci;
            all_lk += t_lk;
            t_ci = t_lk = t_cr = 0;
            lo = i + 1;
        }
    }
    /* lookup_ci misses against exact lookup misses: over the whole run, and
     * in the last band (the largest directory). */
    printf("#   without the index, a miss at %u entries would cost a gateway a "
           "directory scan: %.1f ms, %.0f times a lookup_ci\n", n, last_scan,
           last_scan * 1e3 / last_ci);
    report("ci_lookup", 1, n / all_ci, "ops/s", n / all_lk, "lookup/s", 0.5);
    report("ci_last", 1, 1e6 / last_ci, "ops/s", 1e6 / last_lk, "lookup/s", 0.5);
}

/* ---------------------------------------------------------------- daemon */

static int free_port(void)
{
    int port, fd = listen_any(&port);

    close(fd);
    return port;
}

static bool can_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void start_daemon(void)
{
    char conf[600], log[600], local[600];
    FILE *f;

    snprintf(g_dir, sizeof(g_dir), "%s/proxyfs-bench.XXXXXX", cfg.tmpbase);
    if (mkdtemp(g_dir) == NULL)
        die("mkdtemp %s: %s", g_dir, strerror(errno));
    snprintf(local, sizeof(local), "%s/local", g_dir);
    if (mkdir(local, 0755) != 0)
        die("mkdir %s: %s", local, strerror(errno));
    g_port = free_port();
    g_mport = free_port();
    snprintf(conf, sizeof(conf), "%s/proxyfsd.toml", g_dir);
    snprintf(log, sizeof(log), "%s/proxyfsd.log", g_dir);
    if ((f = fopen(conf, "w")) == NULL)
        die("%s: %s", conf, strerror(errno));
    fprintf(f,
            "[server]\ntcp = \"127.0.0.1:%d\"\nunix = \"\"\n"
            "[metrics]\nlisten = \"127.0.0.1:%d\"\npprof = true\n"
            "[log]\nlevel = \"warn\"\n"
            "[[volume]]\nname = \"default\"\nengine = \"local\"\n"
            "path = \"%s/data\"\nauto_format = true\n",
            g_port, g_mport, g_dir);
    fclose(f);
    g_pid = fork();
    if (g_pid < 0)
        die("fork: %s", strerror(errno));
    if (g_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

        /* The daemon goes away with the benchmark, however it ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(cfg.proxyfsd, cfg.proxyfsd, "-config", conf, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        int st;

        if (can_connect(g_port))
            return;
        if (waitpid(g_pid, &st, WNOHANG) == g_pid) {
            g_pid = 0;
            cfg.keep = true;
            die("proxyfsd exited at start; see %s", log);
        }
        nanosleep(&ts, NULL);
    }
    die("proxyfsd does not listen on port %d", g_port);
}

static void print_machine(void)
{
    char line[512], model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    struct statfs sfs;
    const char *fst = "?";
    char data[600];

    if (f != NULL) {
        while (fgets(line, sizeof(line), f) != NULL)
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');

                if (p != NULL) {
                    snprintf(model, sizeof(model), "%s", p + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        fclose(f);
    }
    snprintf(data, sizeof(data), "%s/local", g_dir);
    if (statfs(data, &sfs) == 0) {
        switch ((unsigned long)sfs.f_type) {
        case 0xEF53: fst = "ext4"; break;
        case 0x01021994: fst = "tmpfs"; break;
        case 0x58465342: fst = "xfs"; break;
        case 0x9123683E: fst = "btrfs"; break;
        case 0x794c7630: fst = "overlayfs"; break;
        default: fst = "other"; break;
        }
    }
    printf("# machine: nproc=%ld cpu=\"%s\" fs(%s)=%s mode=%s files=%u small=%u size=%uMiB\n",
           sysconf(_SC_NPROCESSORS_ONLN), model, g_dir, fst,
           cfg.quick ? "quick" : "full", cfg.nfiles, cfg.nsmall, cfg.mib);
    printf("# proxyfsd pid %d, tcp 127.0.0.1:%d, pprof http://127.0.0.1:%d/debug/pprof/\n",
           (int)g_pid, g_port, g_mport);
    fflush(stdout);
}

/* ------------------------------------------------------------------ main */

static void on_signal(int sig)
{
    (void)sig;
    die("interrupted");
}

static void usage(void)
{
    fprintf(stderr, "usage: bench [-quick] [-proxyfsd PATH] [-tmp DIR] "
                    "[-only phase,...] [-n FILES] [-mib MIB] [-keep]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    char addr[64];
    double t_start = now_s(), rtt1 = 0, rtt4 = 0;
    unsigned n_override = 0, mib_override = 0;

    cfg.proxyfsd = getenv("PROXYFSD");
    cfg.tmpbase = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-quick") == 0) {
            cfg.quick = true;
        } else if (strcmp(argv[i], "-keep") == 0) {
            cfg.keep = true;
        } else if (strcmp(argv[i], "-proxyfsd") == 0 && i + 1 < argc) {
            cfg.proxyfsd = argv[++i];
        } else if (strcmp(argv[i], "-tmp") == 0 && i + 1 < argc) {
            cfg.tmpbase = argv[++i];
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            n_override = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-mib") == 0 && i + 1 < argc) {
            mib_override = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-only") == 0 && i + 1 < argc) {
            cfg.only = argv[++i];
        } else {
            usage();
        }
    }
    if (cfg.proxyfsd == NULL || cfg.proxyfsd[0] == '\0')
        usage();
    if (cfg.quick) {
        cfg.nfiles = 500;
        cfg.nsmall = 200;
        cfg.mib = 32;
        cfg.rtt_secs = 0.4;
        cfg.ci_n = 10000;
    }
    if (n_override > 0)
        cfg.nfiles = cfg.nsmall = n_override;
    if (mib_override > 0)
        cfg.mib = mib_override;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    make_pattern();
    start_daemon();
    print_machine();

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", g_port);
    CHECK(proxyfs_set_server(addr), "set_server");
    {
        /* The volume is new: its root is root's (0755). Give it to the
         * user the benchmark mounts as, as an administrator would, so
         * that the calls are checked as an ordinary user's are. */
        mount_handle_t *admin;

        CHECK(proxyfs_mount("default", 0, "admin", 0, 0, &admin), "mount as root");
        CHECK(proxyfs_chown_path(admin, "/", getuid(), getgid()), "chown /");
        CHECK(proxyfs_unmount(admin), "unmount");
    }
    CHECK(proxyfs_mount("default", 0, "bench", getuid(), getgid(), &g_mh), "mount");
    CHECK(proxyfs_lookup_path(g_mh, "/", &g_root), "lookup /");
    if (getenv("BENCH_PAUSE") != NULL) {
        printf("# paused %s s before the phases\n", getenv("BENCH_PAUSE"));
        fflush(stdout);
        sleep((unsigned)atoi(getenv("BENCH_PAUSE")));
    }

    if (want("create") || want("lookup") || want("getstat") || want("readdir_plus") ||
        want("unlink")) {
        rtt1 = raw_rtt_rate(1);
        printf("# raw loopback TCP 64-byte round trips: T=1 %.0f/s", rtt1);
        fflush(stdout);
        rtt4 = raw_rtt_rate(4);
        printf(", T=4 %.0f/s\n", rtt4);
        metadata_phases(1, rtt1);
        metadata_phases(4, rtt4);
    }
    if (want("write_seq") || want("read_seq"))
        write_seq_phase();
    if (want("read_seq"))
        read_seq_phase();
    if (g_bigino != 0)
        CHECK(proxyfs_unlink(g_mh, g_root, "big-seq"), "unlink big-seq");
    if (want("write_async"))
        write_async_phase();
    if (want("small_files")) {
        small_files_phase(1);
        small_files_phase(4);
    }
    if (want("ci_create"))
        ci_create_phase();
    CHECK(proxyfs_unmount(g_mh), "unmount");
    printf("# server: cpu %.2fs total, peak RSS (VmHWM) %ld KiB; run %.1fs; %d target(s) missed\n",
           srv_cpu(), srv_status_kb("VmHWM"), now_s() - t_start, g_misses);
    cleanup();
    return g_broken ? 1 : 0;
}
