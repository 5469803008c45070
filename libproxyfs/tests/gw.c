/* gw.c - integration tests of the gateway calls of libproxyfs (async
 * flush, calls that return the stat, fallocate and sparse files, server
 * side copy) against a real proxyfsd.
 *
 *   PROXYFSD=/abs/path/proxyfsd ./tests/gw [test-name ...]
 *
 * Unlike test.c it writes its own daemon config, with the metrics
 * endpoint on a free port: tests count the requests a call makes from
 * proxyfs_requests_total. Without PROXYFSD every test is skipped. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../proxyfs.h"
#include "harness.h"

static test_daemon_t daemon_;
static int metrics_port;
static uint64_t root_ino;

static void msleep(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static mount_handle_t *do_mount(void)
{
    mount_handle_t *mh = NULL;
    int rc = proxyfs_mount("default", 0, "tester", 1000, 1000, &mh);

    CHECK_RC(rc, 0);
    if (rc == 0)
        CHECK_RC(proxyfs_lookup_path(mh, "/", &root_ino), 0);
    return mh;
}

/* The daemon's /metrics page, in a static buffer (each call overwrites
 * it); NULL if it cannot be read. */
static const char *fetch_metrics(void)
{
    struct sockaddr_in sa;
    static char buf[1 << 20];
    const char *req = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)metrics_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return NULL;
    }
    while (len < sizeof(buf) - 1 &&
           (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    return buf;
}

/* The sum of every proxyfs_requests_total series: the requests the daemon
 * has answered, on both channels. -1 if /metrics cannot be read. */
static long requests_total(void)
{
    const char *buf = fetch_metrics();
    long total = 0;

    if (buf == NULL)
        return -1;
    for (const char *p = buf; (p = strstr(p, "\nproxyfs_requests_total{")) != NULL; p++) {
        const char *sp = strchr(p + 1, '}');

        if (sp != NULL)
            total += strtol(sp + 1, NULL, 10);
    }
    return total;
}

/* The requests answered since *mark (then moves *mark). A request is
 * counted right after its reply is sent, so it waits for the count to
 * settle. */
static long requests_since(long *mark)
{
    long now = requests_total(), prev = -2, d;

    for (int i = 0; i < 50 && now != prev; i++) {
        msleep(20);
        prev = now;
        now = requests_total();
    }
    d = now - *mark;
    *mark = now;
    return d;
}

/* ------------------------------------------------------- async flush */

enum { FL_N = 16 };
static int fl_calls[FL_N];
static int fl_total;

static void fl_cb(void *id)
{
    int *slot = id;

    __atomic_fetch_add(slot, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&fl_total, 1, __ATOMIC_RELAXED);
}

/* A callback that receives its own request, as proxyfs_read_recv may. */
static int fl_inner_status = -1;
static void fl_cb_recv(void *id)
{
    int st = -1;

    if (proxyfs_flush_recv(id, &st) == 0)
        fl_inner_status = st;
}

static void test_flush_async(void)
{
    mount_handle_t *mh = do_mount();
    uint8_t data[4096], rbuf[8];
    uint64_t f;
    int status, bad = 0, wid;
    size_t n;

    if (mh == NULL)
        return;
    memset(data, 'f', sizeof(data));
    CHECK_RC(proxyfs_create(mh, root_ino, "flushme", 0644, &f), 0);
    CHECK_RC(proxyfs_write(mh, f, 0, data, sizeof(data), &n), 0);

    /* Many flushes in flight, each completes once, received in reverse. */
    memset(fl_calls, 0, sizeof(fl_calls));
    fl_total = 0;
    for (int i = 0; i < FL_N; i++)
        CHECK_RC(proxyfs_flush_send(mh, f, &fl_calls[i], fl_cb), 0);
    CHECK_RC(proxyfs_flush_send(mh, f, &fl_calls[0], fl_cb), EEXIST);
    for (int i = FL_N - 1; i >= 0; i--) {
        int rc = proxyfs_flush_recv(&fl_calls[i], &status);

        if (rc != 0 || status != 0)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(fl_total == FL_N);
    bad = 0;
    for (int i = 0; i < FL_N; i++)
        if (fl_calls[i] != 1)
            bad++;
    CHECK(bad == 0);
    /* Received: the id is forgotten. */
    CHECK_RC(proxyfs_flush_recv(&fl_calls[0], &status), ENOENT);
    /* Never sent. */
    CHECK_RC(proxyfs_flush_recv(&bad, &status), ENOENT);

    /* A missing inode is EBADF in the status, as for proxyfs_flush. */
    CHECK_RC(proxyfs_flush_send(mh, 999999, &fl_calls[0], NULL), 0);
    CHECK_RC(proxyfs_flush_recv(&fl_calls[0], &status), 0);
    CHECK(status == EBADF);
    CHECK_RC(proxyfs_flush(mh, 999999), EBADF);

    /* Ids are shared with reads and writes; recv of the other kind is
     * ENOENT and leaves the request. */
    CHECK_RC(proxyfs_write_send(mh, f, 0, data, 10, &wid, NULL), 0);
    CHECK_RC(proxyfs_flush_send(mh, f, &wid, NULL), EEXIST);
    CHECK_RC(proxyfs_flush_recv(&wid, &status), ENOENT);
    CHECK_RC(proxyfs_write_recv(&wid, &status, &n), 0);
    CHECK(status == 0 && n == 10);
    CHECK_RC(proxyfs_flush_send(mh, f, &wid, NULL), 0);
    CHECK_RC(proxyfs_read_recv(&wid, &status, &n), ENOENT);
    CHECK_RC(proxyfs_write_recv(&wid, &status, &n), ENOENT);
    CHECK_RC(proxyfs_flush_recv(&wid, &status), 0);
    CHECK(status == 0);

    /* recv inside the callback returns at once. */
    fl_inner_status = -1;
    CHECK_RC(proxyfs_flush_send(mh, f, &fl_calls[1], fl_cb_recv), 0);
    for (int i = 0; i < 500 && __atomic_load_n(&fl_inner_status, __ATOMIC_ACQUIRE) == -1; i++)
        msleep(10);
    CHECK(fl_inner_status == 0);
    CHECK_RC(proxyfs_flush_recv(&fl_calls[1], &status), ENOENT);

    /* Argument checks: nothing sent, nothing to receive. */
    CHECK_RC(proxyfs_flush_send(NULL, f, &fl_calls[2], NULL), EINVAL);
    CHECK_RC(proxyfs_flush_send(mh, f, NULL, NULL), EINVAL);
    CHECK_RC(proxyfs_flush_recv(&fl_calls[2], &status), ENOENT);
    CHECK_RC(proxyfs_flush_recv(&fl_calls[2], NULL), EINVAL);

    /* The data is there after the flush. */
    CHECK_RC(proxyfs_read(mh, f, 0, sizeof(rbuf), rbuf, sizeof(rbuf), &n), 0);
    CHECK(n == sizeof(rbuf) && memcmp(rbuf, data, sizeof(rbuf)) == 0);

    /* Each flush is one binary request. */
    {
        long mark = 0;

        requests_since(&mark);
        CHECK_RC(proxyfs_flush_send(mh, f, &fl_calls[3], NULL), 0);
        CHECK_RC(proxyfs_flush_recv(&fl_calls[3], &status), 0);
        CHECK(requests_since(&mark) == 1);
    }

    /* A flush nobody receives is dropped at unmount, after its callback. */
    fl_total = 0;
    CHECK_RC(proxyfs_flush_send(mh, f, &fl_calls[4], fl_cb), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
    CHECK(fl_total == 1);
    CHECK_RC(proxyfs_flush_recv(&fl_calls[4], &status), ENOENT);
}


/* ------------------------------------------------ calls with the stat */

/* Each call returns the stat that a separate get_stat returns, in exactly
 * one request. */
static bool same_as_get_stat(mount_handle_t *mh, const proxyfs_stat_t *st)
{
    proxyfs_stat_t *g = NULL;
    bool same;

    if (proxyfs_get_stat(mh, st->ino, &g) != 0)
        return false;
    same = memcmp(g, st, sizeof(*st)) == 0;
    free(g);
    return same;
}

static void test_stat_calls(void)
{
    mount_handle_t *mh = do_mount();
    proxyfs_stat_t st, st2;
    uint64_t dir, ino = 0, ino2 = 0;
    uint8_t data[100];
    size_t n;
    long mark = 0;

    if (mh == NULL)
        return;
    memset(data, 'x', sizeof(data));
    CHECK_RC(proxyfs_mkdir(mh, root_ino, "statcalls", 0755, &dir), 0);

    /* create_stat */
    requests_since(&mark);
    memset(&st, 0xa5, sizeof(st));
    CHECK_RC(proxyfs_create_stat(mh, dir, "f", 0640, &ino, &st), 0);
    CHECK(requests_since(&mark) == 1);
    CHECK(ino == st.ino && ino != 0);
    CHECK(st.mode == (S_IFREG | 0640) && st.nlink == 1 && st.size == 0);
    CHECK(st.uid == 1000 && st.gid == 1000);
    CHECK(same_as_get_stat(mh, &st));
    CHECK_RC(proxyfs_create_stat(mh, dir, "f", 0640, &ino2, &st2), EEXIST);
    CHECK_RC(proxyfs_create_stat(mh, dir, "g", 0600, NULL, &st2), 0);
    CHECK(st2.mode == (S_IFREG | 0600));
    CHECK_RC(proxyfs_create_stat(mh, dir, "h", 0600, &ino2, NULL), EINVAL);
    CHECK_RC(proxyfs_create_stat(mh, 999999, "h", 0600, &ino2, &st2), ENOENT);
    CHECK_RC(proxyfs_write(mh, ino, 0, data, sizeof(data), &n), 0);

    /* lookup_stat and stat_at */
    requests_since(&mark);
    memset(&st, 0, sizeof(st));
    ino2 = 0;
    CHECK_RC(proxyfs_lookup_stat(mh, dir, "f", &ino2, &st), 0);
    CHECK(requests_since(&mark) == 1);
    CHECK(ino2 == ino && st.ino == ino && st.size == sizeof(data));
    CHECK(same_as_get_stat(mh, &st));
    requests_since(&mark);
    memset(&st2, 0, sizeof(st2));
    CHECK_RC(proxyfs_stat_at(mh, dir, "f", &st2), 0);
    CHECK(requests_since(&mark) == 1);
    CHECK(memcmp(&st, &st2, sizeof(st)) == 0);
    CHECK_RC(proxyfs_lookup_stat(mh, dir, "f", NULL, &st2), 0);
    CHECK_RC(proxyfs_lookup_stat(mh, dir, "nope", &ino2, &st2), ENOENT);
    CHECK_RC(proxyfs_stat_at(mh, dir, "nope", &st2), ENOENT);
    CHECK_RC(proxyfs_stat_at(mh, ino, "x", &st2), ENOTDIR);
    CHECK_RC(proxyfs_lookup_stat(mh, dir, "f", &ino2, NULL), EINVAL);
    CHECK_RC(proxyfs_stat_at(mh, dir, NULL, &st2), EINVAL);
    CHECK_RC(proxyfs_stat_at(NULL, dir, "f", &st2), EINVAL);

    /* mkdir_stat */
    requests_since(&mark);
    CHECK_RC(proxyfs_mkdir_stat(mh, dir, "d", 0750, &ino2, &st), 0);
    CHECK(requests_since(&mark) == 1);
    CHECK(ino2 == st.ino && st.mode == (S_IFDIR | 0750) && st.nlink == 2);
    CHECK(same_as_get_stat(mh, &st));
    CHECK_RC(proxyfs_mkdir_stat(mh, dir, "d", 0750, &ino2, &st), EEXIST);
    CHECK_RC(proxyfs_mkdir_stat(mh, dir, "d2", 0750, &ino2, NULL), EINVAL);

    /* symlink_stat; stat_at does not follow it */
    requests_since(&mark);
    CHECK_RC(proxyfs_symlink_stat(mh, dir, "l", "f", &ino2, &st), 0);
    CHECK(requests_since(&mark) == 1);
    CHECK(ino2 == st.ino && st.mode == (S_IFLNK | 0777) && st.size == 1);
    CHECK(same_as_get_stat(mh, &st));
    CHECK_RC(proxyfs_stat_at(mh, dir, "l", &st2), 0);
    CHECK(st2.ino == ino2 && (st2.mode & S_IFMT) == S_IFLNK);
    CHECK_RC(proxyfs_symlink_stat(mh, dir, "l", "f", &ino2, &st), EEXIST);
    CHECK_RC(proxyfs_symlink_stat(mh, dir, "l2", NULL, &ino2, &st), EINVAL);

    /* read-only mount */
    {
        mount_handle_t *ro = NULL;

        CHECK_RC(proxyfs_mount("default", PROXYFS_MOUNT_READ_ONLY, "tester",
                               1000, 1000, &ro), 0);
        if (ro != NULL) {
            CHECK_RC(proxyfs_create_stat(ro, dir, "r", 0600, NULL, &st), EROFS);
            CHECK_RC(proxyfs_mkdir_stat(ro, dir, "r", 0700, NULL, &st), EROFS);
            CHECK_RC(proxyfs_symlink_stat(ro, dir, "r", "x", NULL, &st), EROFS);
            CHECK_RC(proxyfs_lookup_stat(ro, dir, "f", NULL, &st), 0);
            CHECK_RC(proxyfs_unmount(ro), 0);
        }
    }
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* ------------------------------------------------ fallocate, sparse */

static void test_sparse(void)
{
    enum { SZ = 1 << 20, CH = 128 << 10 };
    mount_handle_t *mh = do_mount();
    proxyfs_stat_t *st = NULL, *pst = NULL, lst;
    struct dirent *de = NULL;
    uint8_t *buf, *rbuf;
    uint64_t f, off = 0, before = 0;
    size_t n;
    int64_t prev = -1;
    bool found = false;

    if (mh == NULL)
        return;
    buf = malloc(SZ);
    rbuf = malloc(SZ);
    if (buf == NULL || rbuf == NULL) {
        CHECK(0);
        free(buf);
        free(rbuf);
        return;
    }
    for (size_t i = 0; i < SZ; i++)
        buf[i] = (uint8_t)('a' + i % 26);
    CHECK_RC(proxyfs_create(mh, root_ino, "sparse", 0644, &f), 0);
    for (size_t o = 0; o < SZ; o += CH)
        CHECK_RC(proxyfs_write(mh, f, o, buf + o, CH, &n), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    if (st != NULL) {
        CHECK(st->size == SZ && st->blocks >= SZ / 512 && st->blksize == 4096);
        before = st->blocks;
        free(st);
        st = NULL;
    }
    /* Punch [256K, 768K): st_blocks drops, the range reads as zeros. */
    CHECK_RC(proxyfs_fallocate(mh, f, PROXYFS_FALLOC_PUNCH_HOLE |
                               PROXYFS_FALLOC_KEEP_SIZE, 256 << 10, 512 << 10), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    if (st != NULL) {
        CHECK(st->size == SZ);
        CHECK(st->blocks + (512 << 10) / 512 <= before);
    }
    CHECK_RC(proxyfs_read(mh, f, 0, SZ, rbuf, SZ, &n), 0);
    memset(buf + (256 << 10), 0, 512 << 10);
    CHECK(n == SZ && memcmp(buf, rbuf, SZ) == 0);
    /* SEEK_HOLE / SEEK_DATA against the layout. */
    CHECK_RC(proxyfs_lseek(mh, f, 0, PROXYFS_SEEK_HOLE, &off), 0);
    CHECK(off == 256 << 10);
    CHECK_RC(proxyfs_lseek(mh, f, 300 << 10, PROXYFS_SEEK_DATA, &off), 0);
    CHECK(off == 768 << 10);
    CHECK_RC(proxyfs_lseek(mh, f, 0, PROXYFS_SEEK_DATA, &off), 0);
    CHECK(off == 0);
    CHECK_RC(proxyfs_lseek(mh, f, 800 << 10, PROXYFS_SEEK_HOLE, &off), 0);
    CHECK(off == SZ);
    CHECK_RC(proxyfs_lseek(mh, f, SZ, PROXYFS_SEEK_DATA, &off), ENXIO);
    CHECK_RC(proxyfs_lseek(mh, f, SZ, PROXYFS_SEEK_HOLE, &off), ENXIO);
    CHECK_RC(proxyfs_lseek(mh, f, 0, 0, &off), EINVAL);
    CHECK_RC(proxyfs_lseek(mh, f, 0, PROXYFS_SEEK_DATA, NULL), EINVAL);
    CHECK_RC(proxyfs_lseek(mh, root_ino, 0, PROXYFS_SEEK_DATA, &off), EISDIR);
    CHECK_RC(proxyfs_lseek(mh, 999999, 0, PROXYFS_SEEK_DATA, &off), ENOENT);
    /* Every way to get the stat agrees on blocks and blksize: binary
     * (get_stat, lookup_stat), JSON (get_stat_path), readdir_plus. */
    CHECK_RC(proxyfs_get_stat_path(mh, "/sparse", &pst), 0);
    CHECK_RC(proxyfs_lookup_stat(mh, root_ino, "sparse", NULL, &lst), 0);
    if (st != NULL && pst != NULL) {
        CHECK(memcmp(st, pst, sizeof(*st)) == 0);
        CHECK(memcmp(st, &lst, sizeof(*st)) == 0);
    }
    for (;;) {
        proxyfs_stat_t *es = NULL;

        if (proxyfs_readdir_plus(mh, root_ino, prev, &de, &es) != 0 || de == NULL)
            break;
        if (strcmp(de->d_name, "sparse") == 0 && st != NULL && es != NULL) {
            found = true;
            CHECK(es->blocks == st->blocks && es->blksize == 4096);
        }
        prev = de->d_off;
        free(de);
        free(es);
    }
    CHECK(found);
    free(st);
    free(pst);
    st = pst = NULL;
    /* Allocate past the end: the size grows and the space is allocated. */
    CHECK_RC(proxyfs_get_stat(mh, f, &pst), 0);
    CHECK_RC(proxyfs_fallocate(mh, f, 0, SZ, 64 << 10), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    if (st != NULL && pst != NULL)
        CHECK(st->size == SZ + (64 << 10) && st->blocks >= pst->blocks + 128);
    free(st);
    free(pst);
    st = pst = NULL;
    /* KEEP_SIZE: the size stays. ZERO_RANGE zeroes. */
    CHECK_RC(proxyfs_fallocate(mh, f, PROXYFS_FALLOC_KEEP_SIZE, 0, 4 << 20), 0);
    CHECK_RC(proxyfs_fallocate(mh, f, PROXYFS_FALLOC_ZERO_RANGE |
                               PROXYFS_FALLOC_KEEP_SIZE, 0, 10), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    if (st != NULL)
        CHECK(st->size == SZ + (64 << 10));
    free(st);
    CHECK_RC(proxyfs_read(mh, f, 0, 16, rbuf, 16, &n), 0);
    CHECK(n == 16 && rbuf[0] == 0 && rbuf[9] == 0 && rbuf[10] == buf[10]);
    /* Modes and arguments as Linux. */
    CHECK_RC(proxyfs_fallocate(mh, f, PROXYFS_FALLOC_PUNCH_HOLE, 0, 1), EOPNOTSUPP);
    CHECK_RC(proxyfs_fallocate(mh, f, 0x40, 0, 1), EOPNOTSUPP);
    CHECK_RC(proxyfs_fallocate(mh, f, 0, 0, 0), EINVAL);
    CHECK_RC(proxyfs_fallocate(mh, f, -1, 0, 1), EINVAL);
    CHECK_RC(proxyfs_fallocate(mh, root_ino, 0, 0, 1), EISDIR);
    CHECK_RC(proxyfs_fallocate(mh, 999999, 0, 0, 1), ENOENT);
    CHECK_RC(proxyfs_fallocate(NULL, f, 0, 0, 1), EINVAL);
    {
        mount_handle_t *ro = NULL;

        CHECK_RC(proxyfs_mount("default", PROXYFS_MOUNT_READ_ONLY, "tester",
                               1000, 1000, &ro), 0);
        if (ro != NULL) {
            CHECK_RC(proxyfs_fallocate(ro, f, 0, 0, 1), EROFS);
            CHECK_RC(proxyfs_lseek(ro, f, 0, PROXYFS_SEEK_HOLE, &off), 0);
            CHECK_RC(proxyfs_unmount(ro), 0);
        }
    }
    free(buf);
    free(rbuf);
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* ------------------------------------------------- server-side copy */

static void test_copy_range(void)
{
    enum { SZ = 700000 };
    mount_handle_t *mh = do_mount();
    uint8_t *buf, *rbuf;
    uint64_t src, dst, copied = 0, total = 0;
    size_t n;
    long mark = 0, nreq;

    if (mh == NULL)
        return;
    buf = malloc(SZ);
    rbuf = calloc(1, 2 * SZ);
    if (buf == NULL || rbuf == NULL) {
        CHECK(0);
        free(buf);
        free(rbuf);
        return;
    }
    for (size_t i = 0; i < SZ; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 9));
    CHECK_RC(proxyfs_create(mh, root_ino, "csrc", 0644, &src), 0);
    CHECK_RC(proxyfs_create(mh, root_ino, "cdst", 0644, &dst), 0);
    CHECK_RC(proxyfs_write(mh, src, 0, buf, SZ, &n), 0);
    /* A loop as a gateway does it: until done or 0. One request each. */
    requests_since(&mark);
    while (total < SZ) {
        int rc = proxyfs_copy_range(mh, src, total, dst, 4096 + total,
                                    SZ - total, &copied);

        CHECK_RC(rc, 0);
        if (rc != 0 || copied == 0)
            break;
        total += copied;
    }
    CHECK(total == SZ);
    nreq = requests_since(&mark);
    CHECK(nreq == 1); /* 700000 bytes in one call */
    CHECK_RC(proxyfs_read(mh, dst, 0, 2 * SZ, rbuf, 2 * SZ, &n), 0);
    CHECK(n == 4096 + SZ);
    CHECK(memcmp(rbuf + 4096, buf, SZ) == 0);
    for (size_t i = 0; i < 4096; i++)
        if (rbuf[i] != 0) {
            CHECK(rbuf[i] == 0);
            break;
        }
    /* At and past the end of the source. */
    CHECK_RC(proxyfs_copy_range(mh, src, SZ - 10, dst, 0, 100, &copied), 0);
    CHECK(copied == 10);
    CHECK_RC(proxyfs_copy_range(mh, src, SZ, dst, 0, 100, &copied), 0);
    CHECK(copied == 0);
    /* Errors. */
    CHECK_RC(proxyfs_copy_range(mh, src, 0, src, 10, 100, &copied), EINVAL);
    CHECK_RC(proxyfs_copy_range(mh, src, 0, dst, 0, 100, NULL), EINVAL);
    CHECK_RC(proxyfs_copy_range(mh, root_ino, 0, dst, 0, 100, &copied), EISDIR);
    CHECK_RC(proxyfs_copy_range(mh, 999999, 0, dst, 0, 100, &copied), ENOENT);
    CHECK_RC(proxyfs_copy_range(NULL, src, 0, dst, 0, 100, &copied), EINVAL);
    {
        mount_handle_t *ro = NULL;

        CHECK_RC(proxyfs_mount("default", PROXYFS_MOUNT_READ_ONLY, "tester",
                               1000, 1000, &ro), 0);
        if (ro != NULL) {
            CHECK_RC(proxyfs_copy_range(ro, src, 0, dst, 0, 1, &copied), EROFS);
            CHECK_RC(proxyfs_unmount(ro), 0);
        }
    }
    free(buf);
    free(rbuf);
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* ----------------------------------------------------------- getters */

static void test_info(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t sz = 0;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_max_io_size(mh, &sz), 0);
    CHECK(sz == 8u << 20); /* the daemon's default max_io_size */
    CHECK_RC(proxyfs_max_io_size(mh, NULL), EINVAL);
    CHECK_RC(proxyfs_max_io_size(NULL, &sz), EINVAL);
    CHECK_RC(proxyfs_unmount(mh), 0);
    CHECK_RC(proxyfs_max_io_size(mh, &sz), EINVAL); /* unmounted */
}


/* ------------------------------------------------ realpath, follow */

static void test_realpath(void)
{
    mount_handle_t *mh = do_mount();
    proxyfs_stat_t st, fst;
    uint64_t d, f, ino = 0;
    char *p = NULL;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_mkdir(mh, root_ino, "rp", 0755, &d), 0);
    CHECK_RC(proxyfs_create_stat(mh, d, "f", 0640, &f, &fst), 0);
    CHECK_RC(proxyfs_symlink(mh, root_ino, "rpl", "/rp/f"), 0);
    CHECK_RC(proxyfs_symlink(mh, d, "up", ".."), 0);
    CHECK_RC(proxyfs_symlink(mh, root_ino, "rpdangling", "nope"), 0);
    CHECK_RC(proxyfs_realpath(mh, "//rpl", &p, &ino), 0);
    CHECK(p != NULL && strcmp(p, "/rp/f") == 0 && ino == f);
    free(p);
    p = NULL;
    CHECK_RC(proxyfs_realpath(mh, "rp/up/rp/./f", &p, NULL), 0);
    CHECK(p != NULL && strcmp(p, "/rp/f") == 0);
    free(p);
    p = NULL;
    CHECK_RC(proxyfs_realpath(mh, "/", &p, &ino), 0);
    CHECK(p != NULL && strcmp(p, "/") == 0 && ino == root_ino);
    free(p);
    p = NULL;
    CHECK_RC(proxyfs_realpath(mh, "rpdangling", &p, NULL), ENOENT);
    CHECK(p == NULL);
    CHECK_RC(proxyfs_realpath(mh, "rp/f/x", &p, NULL), ENOTDIR);
    CHECK_RC(proxyfs_realpath(mh, NULL, &p, NULL), EINVAL);
    CHECK_RC(proxyfs_realpath(mh, "/", NULL, NULL), EINVAL);
    /* stat follows the symlink; lstat (get_stat_path) does not. */
    CHECK_RC(proxyfs_stat_path_follow(mh, "rpl", &st), 0);
    CHECK(memcmp(&st, &fst, sizeof(st)) == 0);
    CHECK_RC(proxyfs_stat_at(mh, root_ino, "rpl", &st), 0);
    CHECK((st.mode & S_IFMT) == S_IFLNK);
    CHECK_RC(proxyfs_stat_path_follow(mh, "rpdangling", &st), ENOENT);
    CHECK_RC(proxyfs_stat_path_follow(mh, "rpl", NULL), EINVAL);
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* ------------------------------------------------- times before 1970 */

static void test_old_times(void)
{
    mount_handle_t *mh = do_mount();
    proxyfs_stat_t st, *gs = NULL, *ps = NULL;
    proxyfs_setattr_t sa;
    proxyfs_timespec_t at, mt;
    uint64_t f;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_create_stat(mh, root_ino, "old", 0644, &f, &st), 0);
    /* setattr: mtime 1969-12-31T23:59:59.5, crtime 1901-12-13. */
    memset(&sa, 0, sizeof(sa));
    sa.mtim.sec = (uint64_t)(int64_t)-1;
    sa.mtim.nsec = 500000000;
    sa.crtim.sec = (uint64_t)(int64_t)-2147483648LL;
    CHECK_RC(proxyfs_setattr(mh, f, PROXYFS_SETATTR_MTIME | PROXYFS_SETATTR_CRTIME,
                             &sa, &st), 0);
    CHECK((int64_t)st.mtim.sec == -1 && st.mtim.nsec == 500000000);
    CHECK((int64_t)st.crtim.sec == -2147483648LL);
    /* The binary (get_stat) and JSON (get_stat_path) stats agree. */
    CHECK_RC(proxyfs_get_stat(mh, f, &gs), 0);
    CHECK_RC(proxyfs_get_stat_path(mh, "/old", &ps), 0);
    if (gs != NULL && ps != NULL) {
        CHECK((int64_t)gs->mtim.sec == -1 && (int64_t)ps->mtim.sec == -1);
        CHECK(memcmp(gs, ps, sizeof(*gs)) == 0);
    }
    free(gs);
    free(ps);
    /* settime: atime and mtime before 1970. */
    at.sec = (uint64_t)(int64_t)-86400;
    at.nsec = 1;
    mt.sec = (uint64_t)(int64_t)-315619200; /* 1960-01-01 */
    mt.nsec = 0;
    CHECK_RC(proxyfs_settime(mh, f, &at, &mt), 0);
    CHECK_RC(proxyfs_settime_path(mh, "/old", &at, &mt), 0);
    CHECK_RC(proxyfs_stat_at(mh, root_ino, "old", &st), 0);
    CHECK((int64_t)st.atim.sec == -86400 && st.atim.nsec == 1);
    CHECK((int64_t)st.mtim.sec == -315619200);
    /* nsec is still checked. */
    at.nsec = 1000000000;
    CHECK_RC(proxyfs_settime(mh, f, &at, NULL), EINVAL);
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* ---------------------------------------------- per-handle timeouts */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_mount_timeout(void)
{
    mount_handle_t *mh = do_mount(), *other = do_mount();
    proxyfs_stat_t *st = NULL;
    uint64_t t0, took, f;
    int rc;

    if (mh == NULL || other == NULL) {
        proxyfs_unmount(mh);
        proxyfs_unmount(other);
        return;
    }
    CHECK_RC(proxyfs_create(mh, root_ino, "tmo", 0644, &f), 0);
    CHECK_RC(proxyfs_set_mount_timeout(mh, 300), 0);
    CHECK_RC(proxyfs_set_mount_timeout(NULL, 300), EINVAL);
    daemon_signal(&daemon_, SIGSTOP);
    t0 = now_ms();
    rc = proxyfs_get_stat(mh, f, &st);
    took = now_ms() - t0;
    CHECK_RC(rc, ETIMEDOUT);
    CHECK(took >= 250 && took < 5000);
    t0 = now_ms();
    CHECK_RC(proxyfs_lseek(mh, f, 0, PROXYFS_SEEK_DATA, &t0), ETIMEDOUT);
    daemon_signal(&daemon_, SIGCONT);
    /* The other handle (process-wide timeout) works on as before. */
    CHECK_RC(proxyfs_get_stat(other, f, &st), 0);
    free(st);
    st = NULL;
    CHECK_RC(proxyfs_set_mount_timeout(mh, 0), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    free(st);
    CHECK_RC(proxyfs_unmount(mh), 0);
    CHECK_RC(proxyfs_unmount(other), 0);
}

/* ------------------------------------------------------------------ main */

/* ---------------------------------------------------- readdir batches */

/* proxyfs_readdir_plus_batch lists what the one-entry calls list, in one
 * request per batch, with the same cookies and attributes. */
static void test_readdir_batch(void)
{
    enum { N = 300, MAX = 128 };
    mount_handle_t *mh = do_mount();
    proxyfs_dirent_plus_t *ents = NULL;
    uint64_t dir = 0, f = 0;
    int64_t prev = -1;
    size_t n = 0, total = 0, files = 0;
    int eof = 0, calls = 0;
    long mark = 0;
    static int64_t cookies[N + 2];
    char name[64];

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_mkdir(mh, root_ino, "batch", 0755, &dir), 0);
    for (int i = 0; i < N; i++) {
        size_t wrote = 0;

        snprintf(name, sizeof(name), "file-%03d", i);
        CHECK_RC(proxyfs_create(mh, dir, name, 0644, &f), 0);
        CHECK_RC(proxyfs_write(mh, f, 0, (uint8_t *)name, (size_t)i % 9, &wrote), 0);
    }
    /* The one-entry calls' cookies, for comparison. */
    for (size_t k = 0; k < N + 2; k++) {
        struct dirent *de = NULL;
        proxyfs_stat_t *es = NULL;

        if (proxyfs_readdir_plus(mh, dir, prev, &de, &es) != 0 || de == NULL)
            break;
        cookies[k] = prev = de->d_off;
        free(de);
        free(es);
    }
    prev = -1;
    /* Settled: the last single readdir_plus above is counted after its
     * reply, so a mark taken at once could miss it. */
    requests_since(&mark);
    while (!eof && calls < 10) {
        calls++;
        CHECK_RC(proxyfs_readdir_plus_batch(mh, dir, prev, MAX, &ents, &n, &eof), 0);
        CHECK(n <= MAX);
        for (size_t i = 0; i < n && total < N + 2; i++, total++) {
            CHECK(ents[i].cookie == cookies[total]);
            if (strncmp(ents[i].name, "file-", 5) == 0) {
                int k = atoi(ents[i].name + 5);

                files++;
                CHECK(ents[i].type == DT_REG && ents[i].stat.size == (uint64_t)(k % 9));
                CHECK(ents[i].stat.ino == ents[i].ino && ents[i].stat.blksize == 4096);
            }
            prev = ents[i].cookie;
        }
        free(ents);
        ents = NULL;
    }
    CHECK(files == N && total == N + 2 && eof == 1);
    CHECK(calls == (N + 2 + MAX - 1) / MAX);
    CHECK(requests_since(&mark) == calls);
    /* After the end: nothing, eof. */
    CHECK_RC(proxyfs_readdir_plus_batch(mh, dir, prev, 0, &ents, &n, &eof), 0);
    CHECK(n == 0 && ents == NULL && eof == 1);
    /* Errors. */
    CHECK_RC(proxyfs_readdir_plus_batch(mh, f, -1, 0, &ents, &n, &eof), ENOTDIR);
    CHECK_RC(proxyfs_readdir_plus_batch(mh, 999999, -1, 0, &ents, &n, &eof), ENOENT);
    CHECK_RC(proxyfs_readdir_plus_batch(mh, dir, -1, 4097, &ents, &n, &eof), EINVAL);
    CHECK_RC(proxyfs_readdir_plus_batch(mh, dir, -1, 0, NULL, &n, &eof), EINVAL);
    CHECK_RC(proxyfs_readdir_plus_batch(NULL, dir, -1, 0, &ents, &n, &eof), EINVAL);
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* proxyfs_readdir_plus_xattr: each entry's xattrs as proxyfs_list_xattr
 * and proxyfs_get_xattr give them, in one request per batch; per-entry
 * errnos; the cache; bad arguments; a daemon killed with SIGKILL. */
static void xattr_matches(mount_handle_t *mh, uint64_t ino,
                          const proxyfs_entry_xattrs_t *x,
                          const char *const *names, size_t count)
{
    char list[1024], val[256];
    size_t n = 0;
    int rc = proxyfs_list_xattr(mh, ino, list, sizeof(list), &n);

    CHECK(x->list_err == rc && x->count == count);
    if (rc == 0)
        CHECK(x->names_len == n && memcmp(x->names, list, n) == 0);
    else
        CHECK(x->names_len == 0);
    for (size_t i = 0; i < count; i++) {
        rc = proxyfs_get_xattr(mh, ino, names[i], val, sizeof(val), &n);
        CHECK(strcmp(x->values[i].name, names[i]) == 0);
        CHECK(x->values[i].err == rc);
        if (rc == 0)
            CHECK(x->values[i].len == n &&
                  (n == 0 || memcmp(x->values[i].value, val, n) == 0));
        else
            CHECK(x->values[i].len == 0 && x->values[i].value == NULL);
    }
}

static size_t list_all(mount_handle_t *mh, uint64_t dir,
                       const char *const *names, size_t count, bool verify)
{
    int64_t prev = -1;
    size_t seen = 0;

    for (;;) {
        struct dirent *de = NULL;
        proxyfs_stat_t *st = NULL;
        proxyfs_entry_xattrs_t *x = NULL;
        int rc = proxyfs_readdir_plus_xattr(mh, dir, prev, names, count, &de,
                                            &st, &x);

        CHECK_RC(rc, 0);
        if (rc != 0 || de == NULL) {
            CHECK(st == NULL && x == NULL);
            break;
        }
        CHECK(st != NULL && x != NULL && st->ino == de->d_ino);
        if (verify && x != NULL)
            xattr_matches(mh, de->d_ino, x, names, count);
        prev = de->d_off;
        seen++;
        free(de);
        free(st);
        free(x);
    }
    return seen;
}

static void test_readdir_xattr(void)
{
    enum { N = 300 };
    static const char *const dos[] = { "user.DOSATTRIB" };
    static const char *const two[] = { "user.DOSATTRIB", "user.x" };
    const char *bad[17];
    mount_handle_t *mh = do_mount();
    uint64_t dir = 0, f = 0;
    struct dirent *de = NULL;
    proxyfs_stat_t *st = NULL;
    proxyfs_entry_xattrs_t *x = NULL;
    char name[64];
    long mark = 0;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_mkdir(mh, root_ino, "xdir", 0755, &dir), 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "f%03d", i);
        CHECK_RC(proxyfs_create(mh, dir, name, 0644, &f), 0);
        if (i % 3 == 0)
            CHECK_RC(proxyfs_set_xattr(mh, f, "user.DOSATTRIB", name, strlen(name), 0), 0);
        if (i % 5 == 0)
            CHECK_RC(proxyfs_set_xattr(mh, f, "user.x", "", 0, 0), 0);
        if (i == 7) /* mode 0: the owner may not read its xattrs */
            CHECK_RC(proxyfs_chmod(mh, f, 0), 0);
    }
    /* Every entry matches the one-entry calls. */
    CHECK(list_all(mh, dir, two, 2, true) == N + 2);
    /* One request for the whole listing (one batch of up to 1024). */
    (void)requests_since(&mark); /* settled: every earlier request counted */
    CHECK(list_all(mh, dir, dos, 1, false) == N + 2);
    CHECK(requests_since(&mark) == 1);
    /* The names only. */
    CHECK(list_all(mh, dir, NULL, 0, true) == N + 2);
    /* Entry 7's errno, spelled out. */
    CHECK_RC(proxyfs_lookup(mh, dir, "f007", &f), 0);
    {
        int64_t prev = -1;

        for (;;) {
            CHECK_RC(proxyfs_readdir_plus_xattr(mh, dir, prev, dos, 1, &de, &st, &x), 0);
            if (de == NULL)
                break;
            prev = de->d_off;
            if (de->d_ino == f)
                CHECK(x->list_err == EACCES && x->values[0].err == EACCES);
            else if (strcmp(de->d_name, "f003") == 0)
                CHECK(x->list_err == 0 && x->values[0].err == 0 &&
                      x->values[0].len == 4 && memcmp(x->values[0].value, "f003", 4) == 0 &&
                      x->names_len == strlen("user.DOSATTRIB") + 1);
            else if (strcmp(de->d_name, "f001") == 0)
                CHECK(x->list_err == 0 && x->values[0].err == ENODATA && x->names_len == 0);
            free(de);
            free(st);
            free(x);
        }
    }
    /* A change through the mount handle: the next call fetches afresh. */
    CHECK_RC(proxyfs_lookup(mh, dir, "f001", &f), 0);
    CHECK_RC(proxyfs_readdir_plus_xattr(mh, dir, -1, dos, 1, &de, &st, &x), 0);
    {
        int64_t prev = de->d_off;
        proxyfs_entry_xattrs_t *x2 = NULL;

        free(de);
        free(st);
        free(x);
        CHECK_RC(proxyfs_set_xattr(mh, f, "user.DOSATTRIB", "new", 3, 0), 0);
        (void)requests_since(&mark);
        CHECK_RC(proxyfs_readdir_plus_xattr(mh, dir, prev, dos, 1, &de, &st, &x2), 0);
        CHECK(requests_since(&mark) == 1);
        free(de);
        free(st);
        free(x2);
    }
    /* Bad arguments: EINVAL, nothing sent. */
    for (int i = 0; i < 17; i++)
        bad[i] = "user.a";
    CHECK_RC(proxyfs_readdir_plus_xattr(mh, dir, -1, bad, 17, &de, &st, &x), EINVAL);
    bad[0] = "";
    CHECK_RC(proxyfs_readdir_plus_xattr(mh, dir, -1, bad, 1, &de, &st, &x), EINVAL);
    bad[0] = NULL;
    CHECK_RC(proxyfs_readdir_plus_xattr(mh, dir, -1, bad, 1, &de, &st, &x), EINVAL);
    CHECK_RC(proxyfs_readdir_plus_xattr(mh, dir, -1, NULL, 1, &de, &st, &x), EINVAL);
    CHECK_RC(proxyfs_readdir_plus_xattr(mh, dir, -1, dos, 1, &de, &st, NULL), EINVAL);
    CHECK_RC(proxyfs_readdir_plus_xattr(NULL, dir, -1, dos, 1, &de, &st, &x), EINVAL);
    CHECK_RC(proxyfs_readdir_plus_xattr(mh, f, -1, dos, 1, &de, &st, &x), ENOTDIR);
    CHECK(de == NULL && st == NULL && x == NULL);
    CHECK_RC(proxyfs_readdir_plus_xattr(mh, 999999, -1, dos, 1, &de, &st, &x), ENOENT);
    /* The daemon killed and started again: the listing goes on. */
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK(list_all(mh, dir, two, 2, true) == N + 2);
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* The count of one proxyfs_requests_total series, e.g.
 * "channel=\"binary\",method=\"open\"", waiting for it to settle; -1 if
 * /metrics cannot be read. */
static long series(const char *labels)
{
    const char *buf, *p;
    char key[256];

    msleep(50);
    if ((buf = fetch_metrics()) == NULL)
        return -1;
    snprintf(key, sizeof(key), "\nproxyfs_requests_total{%s}", labels);
    if ((p = strstr(buf, key)) == NULL)
        return 0;
    return strtol(p + strlen(key), NULL, 10);
}

/* open, close, F_GETLK, setattr and the inode xattr calls go over the
 * binary channel (one binary request each, no JSON-RPC), with the errnos
 * of their JSON-RPC forms, and survive a daemon killed with SIGKILL. */
static void test_binary_calls(void)
{
    static const char *const ops[] = { "open", "close", "lock", "setattr",
                                       "get_xattr", "set_xattr", "list_xattr" };
    mount_handle_t *mh = do_mount();
    uint64_t f = 0, fh = 0, fh2 = 0;
    long before[7], json0 = 0, json1;
    char lbl[128], buf[64];
    proxyfs_setattr_t a = { .mode = 0600 };
    proxyfs_stat_t st;
    proxyfs_lock_t l;
    size_t n = 0;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_create(mh, root_ino, "bincalls", 0644, &f), 0);
    (void)requests_since(&json0); /* settled: every earlier request counted */
    for (int i = 0; i < 7; i++) {
        snprintf(lbl, sizeof(lbl), "channel=\"binary\",method=\"%s\"", ops[i]);
        before[i] = series(lbl);
    }
    CHECK_RC(proxyfs_open(mh, f, O_RDWR, &fh), 0);
    CHECK_RC(proxyfs_lock(mh, fh, F_GETLK, F_WRLCK, 0, 0, "o", &l), 0);
    CHECK(l.type == F_UNLCK);
    CHECK_RC(proxyfs_setattr(mh, f, PROXYFS_SETATTR_MODE, &a, &st), 0);
    CHECK((st.mode & 07777) == 0600 && st.ino == f);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.DOSATTRIB", "dos", 3, 0), 0);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.DOSATTRIB", buf, sizeof(buf), &n), 0);
    CHECK(n == 3 && memcmp(buf, "dos", 3) == 0);
    CHECK_RC(proxyfs_list_xattr(mh, f, buf, sizeof(buf), &n), 0);
    CHECK(n == 15 && strcmp(buf, "user.DOSATTRIB") == 0);
    CHECK_RC(proxyfs_close(mh, fh), 0);
    json1 = requests_since(&json0);
    for (int i = 0; i < 7; i++) {
        snprintf(lbl, sizeof(lbl), "channel=\"binary\",method=\"%s\"", ops[i]);
        CHECK(series(lbl) == before[i] + 1);
    }
    CHECK(json1 == 7); /* nothing else, on either channel */

    /* Errnos as JSON-RPC gives them. */
    CHECK_RC(proxyfs_close(mh, fh), EBADF);
    CHECK_RC(proxyfs_open(mh, 999999, O_RDONLY, &fh), ENOENT);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.none", buf, sizeof(buf), &n), ENODATA);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.DOSATTRIB", buf, 2, &n), ERANGE);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.DOSATTRIB", NULL, 0, &n), 0);
    CHECK(n == 3);
    CHECK_RC(proxyfs_list_xattr(mh, f, buf, 4, &n), ERANGE);
    CHECK_RC(proxyfs_list_xattr(mh, f, NULL, 0, &n), 0);
    CHECK(n == 15);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.DOSATTRIB", "x", 1, PROXYFS_XATTR_CREATE), EEXIST);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.none", "x", 1, PROXYFS_XATTR_REPLACE), ENODATA);
    CHECK_RC(proxyfs_set_xattr(mh, f, "trusted.x", "x", 1, 0), EPERM);
    CHECK_RC(proxyfs_setattr(mh, 999999, PROXYFS_SETATTR_MODE, &a, &st), ENOENT);
    a.uid = 0;
    CHECK_RC(proxyfs_setattr(mh, f, PROXYFS_SETATTR_UID, &a, NULL), EPERM);
    CHECK_RC(proxyfs_lock(mh, 424242, F_GETLK, F_WRLCK, 0, 0, "o", &l), EBADF);

    /* A conflict seen through another handle, and after a SIGKILL of the
     * daemon (the library reopens the handles and reclaims the lock). */
    CHECK_RC(proxyfs_open(mh, f, O_RDWR, &fh), 0);
    CHECK_RC(proxyfs_open(mh, f, O_RDONLY, &fh2), 0);
    CHECK_RC(proxyfs_lock(mh, fh, F_SETLK, F_WRLCK, 5, 10, "holder", NULL), 0);
    CHECK_RC(proxyfs_lock(mh, fh2, F_GETLK, F_RDLCK, 0, 0, "asker", &l), 0);
    CHECK(l.type == F_WRLCK && l.start == 5 && l.len == 10 && strcmp(l.owner, "holder") == 0);
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK_RC(proxyfs_lock(mh, fh2, F_GETLK, F_RDLCK, 0, 0, "asker", &l), 0);
    CHECK(l.type == F_WRLCK && l.start == 5 && l.len == 10 && strcmp(l.owner, "holder") == 0);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.DOSATTRIB", buf, sizeof(buf), &n), 0);
    CHECK(n == 3);
    a.mode = 0640;
    CHECK_RC(proxyfs_setattr(mh, f, PROXYFS_SETATTR_MODE, &a, &st), 0);
    CHECK((st.mode & 07777) == 0640);
    CHECK_RC(proxyfs_close(mh, fh), 0);
    CHECK_RC(proxyfs_close(mh, fh2), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* proxyfs_create_open: a new file and a handle on it in one request. */
static void test_create_open(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t fh = 0, ino = 0, fh2 = 0;
    proxyfs_stat_t st, st2;
    proxyfs_lock_t lk;
    char buf[16];
    size_t n = 0;
    long mark = 0;

    if (mh == NULL)
        return;
    (void)requests_since(&mark); /* settled: every earlier request counted */
    CHECK_RC(proxyfs_create_open(mh, root_ino, "co", 0640, O_RDWR, &fh, &st), 0);
    CHECK(requests_since(&mark) == 1);
    CHECK(fh != 0 && st.ino != 0 && (st.mode & 07777) == 0640 &&
          (st.mode & S_IFMT) == S_IFREG && st.nlink == 1 && st.uid == 1000);
    CHECK_RC(proxyfs_lookup(mh, root_ino, "co", &ino), 0);
    CHECK(ino == st.ino);
    /* The handle is a handle of the server (F_GETLK needs one; F_SETLK
     * could wait for the grace of an earlier test's SIGKILL). */
    CHECK_RC(proxyfs_lock(mh, fh, F_GETLK, F_WRLCK, 0, 1, "o", &lk), 0);
    CHECK(lk.type == F_UNLCK);
    CHECK_RC(proxyfs_write(mh, ino, 0, (uint8_t *)"abc", 3, &n), 0);
    /* Errors. */
    CHECK_RC(proxyfs_create_open(mh, root_ino, "co", 0640, O_RDWR, &fh2, &st2), EEXIST);
    CHECK_RC(proxyfs_create_open(mh, root_ino, "c2", 0640, 3, &fh2, &st2), EINVAL);
    CHECK_RC(proxyfs_create_open(mh, root_ino, "c2", 0640, O_RDWR | O_CREAT, &fh2, &st2), EINVAL);
    CHECK_RC(proxyfs_create_open(mh, root_ino, NULL, 0640, O_RDWR, &fh2, &st2), EINVAL);
    CHECK_RC(proxyfs_create_open(mh, root_ino, "c2", 0640, O_RDWR, NULL, &st2), EINVAL);
    CHECK_RC(proxyfs_create_open(mh, ino, "c2", 0640, O_RDWR, &fh2, &st2), ENOTDIR);
    CHECK_RC(proxyfs_create_open(mh, root_ino, "a/b", 0640, O_RDWR, &fh2, &st2), EINVAL);
    /* Made without the permission it asks for: as open(2) with O_CREAT,
     * the creator still gets the access it asked for, through the handle;
     * by inode number the mode decides. */
    CHECK_RC(proxyfs_create_open(mh, root_ino, "ro", 0444, O_RDWR, &fh2, &st2), 0);
    CHECK((st2.mode & 07777) == 0444);
    CHECK_RC(proxyfs_write_fh(mh, fh2, 0, (uint8_t *)"ro!", 3, &n), 0);
    CHECK(n == 3);
    CHECK_RC(proxyfs_write(mh, st2.ino, 0, (uint8_t *)"no", 2, &n), EACCES);
    CHECK_RC(proxyfs_read_fh(mh, fh2, 0, 3, (uint8_t *)buf, sizeof(buf), &n), 0);
    CHECK(n == 3 && memcmp(buf, "ro!", 3) == 0);
    CHECK_RC(proxyfs_close(mh, fh2), 0);
    CHECK_RC(proxyfs_create_open(mh, root_ino, "ro2", 0444, O_RDONLY, &fh2, &st2), 0);
    CHECK_RC(proxyfs_write_fh(mh, fh2, 0, (uint8_t *)"x", 1, &n), EBADF);
    CHECK_RC(proxyfs_close(mh, fh2), 0);
    /* The daemon killed: the handle is reopened. */
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK_RC(proxyfs_read(mh, st.ino, 0, 3, (uint8_t *)buf, sizeof(buf), &n), 0);
    CHECK(n == 3 && memcmp(buf, "abc", 3) == 0);
    CHECK_RC(proxyfs_lock(mh, fh, F_GETLK, F_WRLCK, 0, 1, "o", &lk), 0);
    CHECK_RC(proxyfs_close(mh, fh), 0);
    CHECK_RC(proxyfs_close(mh, fh), EBADF);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    { "flush_async", test_flush_async },
    { "stat_calls", test_stat_calls },
    { "sparse", test_sparse },
    { "copy_range", test_copy_range },
    { "info", test_info },
    { "realpath", test_realpath },
    { "old_times", test_old_times },
    { "mount_timeout", test_mount_timeout },
    { "readdir_batch", test_readdir_batch },
    { "readdir_xattr", test_readdir_xattr },
    { "binary_calls", test_binary_calls },
    { "create_open", test_create_open },
};

/* Writes the daemon's config (metrics on a free port) before the harness
 * would write its own. */
static int write_config(test_daemon_t *d)
{
    FILE *f;

    strcpy(d->dir, "/tmp/libproxyfs-gw.XXXXXX");
    if (mkdtemp(d->dir) == NULL)
        return -1;
    d->port = free_port();
    metrics_port = free_port();
    if (d->port < 0 || metrics_port < 0 || d->port == metrics_port)
        return -1;
    snprintf(d->conf, sizeof(d->conf), "%s/proxyfsd.toml", d->dir);
    snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
    snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", d->port);
    f = fopen(d->conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "[server]\ntcp = \"%s\"\nunix = \"%s\"\n"
            "[metrics]\nlisten = \"127.0.0.1:%d\"\n"
            "[log]\nlevel = \"warn\"\n"
            "[[volume]]\nname = \"default\"\nengine = \"local\"\n"
            "path = \"%s/data\"\nauto_format = true\n",
            d->addr, d->sock, metrics_port, d->dir);
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *bin = getenv("PROXYFSD");
    size_t ntests = sizeof(tests) / sizeof(tests[0]);
    int skipped = 0;

    if (bin == NULL || bin[0] == '\0') {
        printf("gw: PROXYFSD not set, %zu tests skipped\n", ntests);
        printf("0 passed, 0 failed, %zu skipped\n", ntests);
        return 0;
    }
    daemon_.bin = bin;
    if (write_config(&daemon_) != 0 || daemon_start(&daemon_) != 0) {
        fprintf(stderr, "cannot start %s\n", bin);
        daemon_cleanup(&daemon_);
        return 1;
    }
    setenv("PROXYFS_SERVER", daemon_.addr, 1);
    for (size_t i = 0; i < ntests; i++) {
        int before = t_fail;
        bool run = argc <= 1;

        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], tests[i].name) == 0)
                run = true;
        if (!run) {
            skipped++;
            continue;
        }
        tests[i].fn();
        printf("%-16s %s\n", tests[i].name, t_fail == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    daemon_cleanup(&daemon_);
    printf("%d passed, %d failed, %d skipped\n", t_pass, t_fail, skipped);
    return t_fail == 0 ? 0 : 1;
}
