/* servers.c - integration tests of proxyfs_mount_server: one process with
 * mount handles on two daemons (a second proxyfsd serving the volume
 * "second"). Handles of one address share a pool, handles of different
 * addresses (and those of proxyfs_mount) do not; I/O, sync and async, goes
 * to the right daemon; a daemon killed (-9) and restarted, or stopped,
 * delays only its own handles, which then mount again and reopen their
 * files; the last unmount of an address closes that pool's connections and
 * joins its threads, leaving the others working; fork; a bad address is
 * ENODEV at once; a list of addresses goes past one that refuses. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../proxyfs.h"
#include "harness.h"

void servers_tests(test_daemon_t *d1);

/* Threads of one pool: a reader per pipelined connection (2 JSON-RPC + 2
 * binary) and the retry worker (libproxyfs/internal.h, PFS_POOL_*). */
#define POOL_THREADS 5

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The thread count, once it is want (a joined thread may linger in
 * /proc/self/task for a moment), or after a second. */
static int threads_settle(int want)
{
    int n = count_threads();

    for (int i = 0; i < 100 && n != want; i++) {
        sleep_ms(10);
        n = count_threads();
    }
    return n;
}

/* TCP connections of this process to 127.0.0.1:port (its socket inodes
 * matched against /proc/net/tcp), or -1. */
static int conns_to(int port)
{
    unsigned long inodes[1024];
    int ninodes = 0, n = 0;
    char line[512], link[64], path[300];
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    FILE *f;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL && ninodes < 1024) {
        ssize_t k;
        unsigned long ino;

        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        k = readlink(path, link, sizeof(link) - 1);
        if (k <= 0)
            continue;
        link[k] = '\0';
        if (sscanf(link, "socket:[%lu]", &ino) == 1)
            inodes[ninodes++] = ino;
    }
    closedir(d);
    f = fopen("/proc/net/tcp", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned rport, st;
        unsigned long ino;
        char local[64], remote[64];

        /* sl local rem st tx:rx tr:when retr uid timeout inode */
        if (sscanf(line, " %*s %63s %63s %x %*s %*s %*s %*s %*s %lu", local,
                   remote, &st, &ino) != 4)
            continue;
        if (sscanf(strchr(remote, ':') ? strchr(remote, ':') + 1 : "", "%x",
                   &rport) != 1)
            continue;
        if (st != 1 /* ESTABLISHED */ || rport != (unsigned)port)
            continue;
        for (int i = 0; i < ninodes; i++)
            if (inodes[i] == ino)
                n++;
    }
    fclose(f);
    return n;
}

static mount_handle_t *mount_at(const char *addr, const char *vol)
{
    mount_handle_t *mh = NULL;

    CHECK_RC(proxyfs_mount_server(addr, (char *)vol, 0, "tester", 1000, 1000,
                                  &mh),
             0);
    return mh;
}

static void put(mount_handle_t *mh, const char *path, const char *s)
{
    uint64_t ino = 0;
    size_t n = 0;

    CHECK_RC(proxyfs_create_path(mh, (char *)path, 0644, &ino), 0);
    CHECK_RC(proxyfs_write(mh, ino, 0, (uint8_t *)s, strlen(s), &n), 0);
    CHECK(n == strlen(s));
}

/* True if path reads as want. */
static int holds(mount_handle_t *mh, const char *path, const char *want)
{
    uint8_t buf[128];
    uint64_t ino = 0;
    size_t n = 0;

    if (proxyfs_lookup_path(mh, (char *)path, &ino) != 0 ||
        proxyfs_read(mh, ino, 0, sizeof(buf), buf, sizeof(buf), &n) != 0)
        return 0;
    return n == strlen(want) && memcmp(buf, want, n) == 0;
}

/* ------------------------------------------------------------ async */

static int cb_count[64];

static void cb(void *id)
{
    __atomic_fetch_add((int *)id, 1, __ATOMIC_SEQ_CST);
}

/* 8 async writes, a flush and 8 reads on each of two handles at once; the
 * data read back is each daemon's own. */
static void async_both(mount_handle_t *a, mount_handle_t *b)
{
    enum { N = 8, SZ = 16384 };
    static uint8_t wbuf[2][N][SZ], rbuf[2][N][SZ];
    mount_handle_t *mh[2] = { a, b };
    uint64_t f[2] = { 0, 0 };
    int status, bad = 0;
    size_t n;

    memset(cb_count, 0, sizeof(cb_count));
    for (int m = 0; m < 2; m++) {
        CHECK_RC(proxyfs_create_path(mh[m], "/async-two", 0644, &f[m]), 0);
        for (int i = 0; i < N; i++)
            memset(wbuf[m][i], 'a' + m * N + i, SZ);
    }
    for (int i = 0; i < N; i++)
        for (int m = 0; m < 2; m++)
            CHECK_RC(proxyfs_write_send(mh[m], f[m], (uint64_t)i * SZ,
                                        wbuf[m][i], SZ, &cb_count[m * N + i], cb),
                     0);
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < N; i++)
            if (proxyfs_write_recv(&cb_count[m * N + i], &status, &n) != 0 ||
                status != 0 || n != SZ)
                bad++;
    for (int m = 0; m < 2; m++)
        CHECK_RC(proxyfs_flush_send(mh[m], f[m], &cb_count[32 + m], cb), 0);
    for (int m = 0; m < 2; m++) {
        CHECK_RC(proxyfs_flush_recv(&cb_count[32 + m], &status), 0);
        CHECK(status == 0);
    }
    for (int i = 0; i < N; i++)
        for (int m = 0; m < 2; m++)
            CHECK_RC(proxyfs_read_send(mh[m], f[m], (uint64_t)i * SZ, SZ,
                                       rbuf[m][i], SZ, &cb_count[m * N + i], cb),
                     0);
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < N; i++)
            if (proxyfs_read_recv(&cb_count[m * N + i], &status, &n) != 0 ||
                status != 0 || n != SZ)
                bad++;
    CHECK(bad == 0);
    CHECK(memcmp(wbuf, rbuf, sizeof(wbuf)) == 0);
    for (int i = 0; i < 2 * N; i++)
        if (cb_count[i] != 2)
            bad++;
    CHECK(bad == 0 && cb_count[32] == 1 && cb_count[33] == 1);
}

/* ----------------------------------------------------------- pools */

static void two_daemons(test_daemon_t *d1, test_daemon_t *d2)
{
    mount_handle_t *a, *b, *b2 = NULL, *p, *p2 = NULL, *u, *x = (void *)1;
    char ux[400];
    int t0 = count_threads();
    uint64_t ino;

    a = mount_at(d1->addr, "default");
    b = mount_at(d2->addr, "second");
    if (a == NULL || b == NULL)
        return;
    CHECK(threads_settle(t0 + 2 * POOL_THREADS) == t0 + 2 * POOL_THREADS);
    /* A second handle on an address shares its pool. */
    CHECK_RC(proxyfs_mount_server(d2->addr, "second", PROXYFS_MOUNT_READ_ONLY,
                                  "reader", 1001, 1001, &b2),
             0);
    CHECK(count_threads() == t0 + 2 * POOL_THREADS);
    /* The volumes tell the daemons apart. */
    CHECK_RC(proxyfs_mount_server(d2->addr, "default", 0, "t", 1, 1, &x), ENOENT);
    CHECK(x == NULL);
    CHECK_RC(proxyfs_mount_server(d1->addr, "second", 0, "t", 1, 1, &x), ENOENT);
    /* proxyfs_mount and proxyfs_mount_server(NULL): the process-wide
     * address (PROXYFS_SERVER: d1), a pool of its own. */
    CHECK_RC(proxyfs_mount("default", 0, "tester", 1000, 1000, &p), 0);
    CHECK_RC(proxyfs_mount_server(NULL, "default", 0, "t", 1, 1, &p2), 0);
    CHECK(threads_settle(t0 + 3 * POOL_THREADS) == t0 + 3 * POOL_THREADS);
    /* d2's Unix socket: another address, another pool, the same daemon. */
    snprintf(ux, sizeof(ux), "unix:%s", d2->sock);
    u = mount_at(ux, "second");
    CHECK(threads_settle(t0 + 4 * POOL_THREADS) == t0 + 4 * POOL_THREADS);

    put(a, "/two", "on the first daemon");
    put(b, "/two", "on the second daemon, longer");
    CHECK(holds(a, "/two", "on the first daemon"));
    CHECK(holds(p, "/two", "on the first daemon"));
    CHECK(holds(p2, "/two", "on the first daemon"));
    CHECK(holds(b, "/two", "on the second daemon, longer"));
    CHECK(holds(b2, "/two", "on the second daemon, longer"));
    CHECK(u != NULL && holds(u, "/two", "on the second daemon, longer"));
    CHECK_RC(proxyfs_create_path(b2, "/ro", 0644, &ino), EROFS);
    CHECK(conns_to(d1->port) > 0);
    CHECK(conns_to(d2->port) > 0);
    async_both(a, b);

    /* Unmounting one handle of d2's address leaves the other working. */
    CHECK_RC(proxyfs_unmount(b2), 0);
    CHECK(holds(b, "/two", "on the second daemon, longer"));
    CHECK(count_threads() == t0 + 4 * POOL_THREADS);
    /* The last one closes the pool: no connection to d2's TCP address, five
     * threads fewer; the other pools go on. */
    CHECK_RC(proxyfs_unmount(b), 0);
    CHECK(conns_to(d2->port) == 0);
    CHECK(threads_settle(t0 + 3 * POOL_THREADS) == t0 + 3 * POOL_THREADS);
    CHECK(holds(a, "/two", "on the first daemon"));
    CHECK(u != NULL && holds(u, "/two", "on the second daemon, longer"));
    put(a, "/after-b", "still here");
    CHECK(holds(p, "/after-b", "still here"));
    if (u != NULL)
        CHECK_RC(proxyfs_unmount(u), 0);
    CHECK(threads_settle(t0 + 2 * POOL_THREADS) == t0 + 2 * POOL_THREADS);
    CHECK_RC(proxyfs_unmount(a), 0);
    CHECK(threads_settle(t0 + POOL_THREADS) == t0 + POOL_THREADS);
    CHECK(holds(p, "/two", "on the first daemon"));
    CHECK_RC(proxyfs_unmount(p), 0);
    CHECK(holds(p2, "/two", "on the first daemon"));
    CHECK_RC(proxyfs_unmount(p2), 0);
    CHECK(threads_settle(t0) == t0);
    CHECK(conns_to(d1->port) == 0);
}

/* ------------------------------------------------------ kill, stop */

typedef struct {
    mount_handle_t *mh;
    volatile int *stop;
    int ops, errors;
    uint64_t max_ms;
} busy_arg_t;

/* create, write, read, unlink in a loop, timing each round. */
static void *busy(void *arg)
{
    busy_arg_t *a = arg;
    char path[64];
    uint8_t back[32];
    uint64_t f;
    size_t n;

    for (int i = 0; !__atomic_load_n(a->stop, __ATOMIC_SEQ_CST); i++) {
        uint64_t t = now_ms();

        snprintf(path, sizeof(path), "/busy-%d", i);
        if (proxyfs_create_path(a->mh, path, 0644, &f) != 0 ||
            proxyfs_write(a->mh, f, 0, (uint8_t *)"busy", 4, &n) != 0 ||
            proxyfs_read(a->mh, f, 0, sizeof(back), back, sizeof(back), &n) != 0 ||
            n != 4 || proxyfs_unlink_path(a->mh, path) != 0) {
            fprintf(stderr, "busy op %d: %s\n", i, proxyfs_last_error());
            a->errors++;
        }
        t = now_ms() - t;
        if (t > a->max_ms)
            a->max_ms = t;
        __atomic_fetch_add(&a->ops, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

typedef struct {
    mount_handle_t *mh;
    int rc;
} call_arg_t;

static void *call_b(void *arg)
{
    call_arg_t *c = arg;

    c->rc = proxyfs_mkdir_path(c->mh, "/during-outage", 0755);
    return NULL;
}

/* kill -9 of d2 with a handle open, a sync call and an async write in
 * flight on it, while a thread keeps working on d1; d2 restarts: the call
 * and the write complete, the handle was reopened. */
static void kill_one(test_daemon_t *d1, test_daemon_t *d2)
{
    mount_handle_t *a = mount_at(d1->addr, "default");
    mount_handle_t *b = mount_at(d2->addr, "second");
    volatile int stop = 0;
    busy_arg_t ba = { a, &stop, 0, 0, 0 };
    call_arg_t ca = { b, -1 };
    pthread_t bt, ct;
    uint64_t ino = 0, fh = 0, st;
    int ops, status = -1;
    size_t n = 0;
    proxyfs_stat_t *sp = NULL;

    if (a == NULL || b == NULL)
        return;
    put(b, "/kept", "survives");
    CHECK_RC(proxyfs_lookup_path(b, "/kept", &ino), 0);
    CHECK_RC(proxyfs_open(b, ino, O_RDONLY, &fh), 0);
    CHECK_RC(proxyfs_unlink_path(b, "/kept"), 0);
    pthread_create(&bt, NULL, busy, &ba);
    sleep_ms(100);

    daemon_signal(d2, SIGKILL);
    pthread_create(&ct, NULL, call_b, &ca);
    memset(cb_count, 0, sizeof(cb_count));
    CHECK_RC(proxyfs_write_send(b, ino, 100, (uint8_t *)"late", 4, &cb_count[0], cb), 0);
    ops = __atomic_load_n(&ba.ops, __ATOMIC_SEQ_CST);
    sleep_ms(700);
    /* d1's handle went on meanwhile. */
    CHECK(__atomic_load_n(&ba.ops, __ATOMIC_SEQ_CST) > ops + 3);
    CHECK(cb_count[0] == 0);
    st = now_ms();
    CHECK(daemon_start(d2) == 0);
    pthread_join(ct, NULL);
    CHECK_RC(ca.rc, 0);
    CHECK_RC(proxyfs_write_recv(&cb_count[0], &status, &n), 0);
    CHECK(status == 0 && n == 4 && cb_count[0] == 1);
    CHECK(now_ms() - st < 10000);
    /* The open handle was opened again: the unlinked file still reads. */
    {
        uint8_t buf[16];

        CHECK_RC(proxyfs_read(b, ino, 0, 8, buf, sizeof(buf), &n), 0);
        CHECK(n == 8 && memcmp(buf, "survives", 8) == 0);
    }
    CHECK_RC(proxyfs_close(b, fh), 0);
    CHECK_RC(proxyfs_get_stat(b, ino, &sp), ENOENT);
    free(sp);

    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(bt, NULL);
    CHECK(ba.errors == 0);
    CHECK(ba.max_ms < 2000);
    if (ba.max_ms >= 2000)
        fprintf(stderr, "servers: a round on d1 took %llu ms\n",
                (unsigned long long)ba.max_ms);
    CHECK_RC(proxyfs_unmount(b), 0);
    CHECK_RC(proxyfs_unmount(a), 0);
}

/* A stopped daemon: the calls of its handles time out (handle timeout),
 * the other daemon's handles are not slowed down. */
static void stall_one(test_daemon_t *d1, test_daemon_t *d2)
{
    mount_handle_t *a = mount_at(d1->addr, "default");
    mount_handle_t *b = mount_at(d2->addr, "second");
    uint64_t ino, t;

    if (a == NULL || b == NULL)
        return;
    CHECK_RC(proxyfs_set_mount_timeout(b, 300), 0);
    daemon_signal(d2, SIGSTOP);
    t = now_ms();
    CHECK_RC(proxyfs_lookup_path(b, "/", &ino), ETIMEDOUT);
    CHECK(now_ms() - t < 3000);
    t = now_ms();
    for (int i = 0; i < 20; i++)
        CHECK_RC(proxyfs_lookup_path(a, "/two", &ino), 0);
    CHECK(now_ms() - t < 2000);
    put(a, "/while-stopped", "fine");
    daemon_signal(d2, SIGCONT);
    CHECK_RC(proxyfs_set_mount_timeout(b, 0), 0);
    CHECK_RC(proxyfs_lookup_path(b, "/", &ino), 0);
    CHECK(holds(b, "/two", "on the second daemon, longer"));
    CHECK_RC(proxyfs_unmount(b), 0);
    CHECK_RC(proxyfs_unmount(a), 0);
}

/* ---------------------------------------------------------------- fork */

static void fork_two(test_daemon_t *d1, test_daemon_t *d2)
{
    mount_handle_t *a = mount_at(d1->addr, "default");
    mount_handle_t *b = mount_at(d2->addr, "second");
    pid_t pid;
    int st = 0;

    if (a == NULL || b == NULL)
        return;
    pid = fork();
    if (pid == 0) {
        /* The child: its own pools for both addresses. */
        int bad = 0;
        uint64_t f;
        size_t n;

        if (!holds(a, "/two", "on the first daemon"))
            bad |= 1;
        if (!holds(b, "/two", "on the second daemon, longer"))
            bad |= 2;
        if (proxyfs_create_path(b, "/from-child", 0644, &f) != 0 ||
            proxyfs_write(b, f, 0, (uint8_t *)"kid", 3, &n) != 0)
            bad |= 4;
        if (proxyfs_unmount(a) != 0 || proxyfs_unmount(b) != 0)
            bad |= 8;
        _exit(bad);
    }
    CHECK(pid > 0);
    for (int i = 0; i < 10; i++) {
        CHECK(holds(a, "/two", "on the first daemon"));
        CHECK(holds(b, "/two", "on the second daemon, longer"));
    }
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(holds(b, "/from-child", "kid"));
    CHECK(!holds(a, "/from-child", "kid"));
    CHECK_RC(proxyfs_unmount(b), 0);
    CHECK_RC(proxyfs_unmount(a), 0);
}

/* ------------------------------------------------------- bad address */

static void bad_address(test_daemon_t *d1)
{
    mount_handle_t *mh = (void *)1, *a;
    char addr[64], lng[600];
    int t0 = count_threads();
    uint64_t t, ino;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
    t = now_ms();
    CHECK_RC(proxyfs_mount_server(addr, "default", 0, "t", 1, 1, &mh), ENODEV);
    CHECK(mh == NULL);
    CHECK(now_ms() - t < 2000);
    CHECK(strstr(proxyfs_last_error(), addr) != NULL);
    t = now_ms();
    CHECK_RC(proxyfs_mount_server("unix:/nonexistent-dir/sock", "default", 0,
                                  "t", 1, 1, &mh),
             ENODEV);
    CHECK_RC(proxyfs_mount_server("no-port-here", "default", 0, "t", 1, 1, &mh),
             ENODEV);
    CHECK(now_ms() - t < 4000);
    CHECK_RC(proxyfs_mount_server("", "default", 0, "t", 1, 1, &mh), EINVAL);
    /* Gateway lists: an empty entry is EINVAL; a list of addresses that
     * all refuse is ENODEV, still quickly; a list whose first address
     * refuses mounts on the next. */
    {
        char list[200];

        snprintf(list, sizeof(list), "%s,,%s", addr, d1->addr);
        CHECK_RC(proxyfs_mount_server(list, "default", 0, "t", 1, 1, &mh), EINVAL);
        snprintf(list, sizeof(list), "%s, 127.0.0.1:%d", addr, free_port());
        t = now_ms();
        CHECK_RC(proxyfs_mount_server(list, "default", 0, "t", 1, 1, &mh), ENODEV);
        CHECK(now_ms() - t < 4000);
        snprintf(list, sizeof(list), "%s, %s", addr, d1->addr);
        CHECK_RC(proxyfs_mount_server(list, "default", 0, "t", 1000, 1000, &a), 0);
        if (a != NULL) {
            CHECK_RC(proxyfs_lookup_path(a, "/", &ino), 0);
            CHECK_RC(proxyfs_unmount(a), 0);
        }
    }
    memset(lng, 'h', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = '\0';
    CHECK_RC(proxyfs_mount_server(lng, "default", 0, "t", 1, 1, &mh), EINVAL);
    CHECK_RC(proxyfs_mount_server(d1->addr, NULL, 0, "t", 1, 1, &mh), EINVAL);
    CHECK_RC(proxyfs_mount_server(d1->addr, "default", 0, "t", 1, 1, NULL), EINVAL);
    /* The pools of failed mounts are gone. */
    CHECK(threads_settle(t0) == t0);
    /* A failed mount on the address of a working pool leaves it alone. */
    a = mount_at(d1->addr, "default");
    if (a == NULL)
        return;
    CHECK_RC(proxyfs_mount_server(d1->addr, "nope", 0, "t", 1, 1, &mh), ENOENT);
    CHECK_RC(proxyfs_lookup_path(a, "/two", &ino), 0);
    CHECK(count_threads() == t0 + POOL_THREADS);
    CHECK_RC(proxyfs_unmount(a), 0);
    CHECK(threads_settle(t0) == t0);
}

void servers_tests(test_daemon_t *d1)
{
    test_daemon_t d2 = { .bin = d1->bin, .volume = "second" };

    if (daemon_start(&d2) != 0) {
        fprintf(stderr, "cannot start a second proxyfsd\n");
        CHECK(0);
        daemon_cleanup(&d2);
        return;
    }
    two_daemons(d1, &d2);
    kill_one(d1, &d2);
    stall_one(d1, &d2);
    fork_two(d1, &d2);
    bad_address(d1);
    daemon_cleanup(&d2);
}
