/* cancel.c - integration tests of proxyfs_async_cancel: cancelling read,
 * write and flush requests a stopped (kill -STOP) or dead daemon does not
 * answer (the callback comes at once, ECANCELED, the read buffer stays
 * untouched even when the late reply arrives); cancelling after completion
 * (EALREADY, the real result) and unknown ids (ENOENT); cancelling from a
 * callback; and threads racing cancels against replies, many times: every
 * callback exactly once, a read buffer never written after a cancel that
 * returned 0 (freed at once: ASan and valgrind see any late write).
 *
 * PROXYFS_TEST_CANCEL_ITERS sets the iterations per thread of the race
 * (default 400; the valgrind target runs fewer). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../proxyfs.h"
#include "harness.h"

void cancel_tests(test_daemon_t *d);

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

static void cb(void *id)
{
    __atomic_fetch_add((int *)id, 1, __ATOMIC_SEQ_CST);
}

/* Waits (up to ms) for the callback counter to reach 1; returns it. */
static int wait_cb(int *c, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;

    while (__atomic_load_n(c, __ATOMIC_SEQ_CST) == 0 && now_ms() < end)
        sleep_ms(1);
    return __atomic_load_n(c, __ATOMIC_SEQ_CST);
}

static int all_are(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

#define FSZ (256 * 1024)

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + 1 + (i >> 12));
}

/* A file of FSZ bytes of pattern(); returns its inode (0 on failure). */
static uint64_t make_file(mount_handle_t *mh, const char *path)
{
    uint8_t *data = malloc(FSZ);
    uint64_t ino = 0;
    size_t n = 0;

    if (data == NULL)
        return 0;
    for (size_t i = 0; i < FSZ; i++)
        data[i] = pattern(i);
    CHECK_RC(proxyfs_create_path(mh, (char *)path, 0644, &ino), 0);
    CHECK_RC(proxyfs_write(mh, ino, 0, data, FSZ, &n), 0);
    CHECK(n == FSZ);
    free(data);
    return ino;
}

static int file_ok(mount_handle_t *mh, uint64_t ino)
{
    uint8_t *buf = malloc(FSZ);
    size_t n = 0;
    int ok;

    if (buf == NULL)
        return 0;
    ok = proxyfs_read(mh, ino, 0, FSZ, buf, FSZ, &n) == 0 && n == FSZ;
    for (size_t i = 0; ok && i < FSZ; i++)
        ok = buf[i] == pattern(i);
    free(buf);
    return ok;
}

/* ---------------------------------------------- a daemon that is stopped */

static void cancel_stopped(test_daemon_t *d, mount_handle_t *mh, uint64_t f,
                           uint64_t g)
{
    static uint8_t rbuf[FSZ], wbuf[4096];
    int rcb = 0, wcb = 0, fcb = 0, status = -1;
    size_t n = 99;
    uint64_t t;

    memset(rbuf, 0x5a, sizeof(rbuf));
    memset(wbuf, 'w', sizeof(wbuf));
    daemon_signal(d, SIGSTOP);
    CHECK_RC(proxyfs_read_send(mh, f, 0, FSZ, rbuf, sizeof(rbuf), &rcb, cb), 0);
    CHECK_RC(proxyfs_write_send(mh, g, 0, wbuf, sizeof(wbuf), &wcb, cb), 0);
    CHECK_RC(proxyfs_flush_send(mh, g, &fcb, cb), 0);
    sleep_ms(50); /* sent, waiting for the stopped daemon */
    CHECK(rcb == 0 && wcb == 0 && fcb == 0);
    t = now_ms();
    CHECK_RC(proxyfs_async_cancel(&rcb), 0);
    {
        /* Again: 0 until the worker completed it, then EALREADY. */
        int again = proxyfs_async_cancel(&rcb);

        CHECK(again == 0 || again == EALREADY);
    }
    CHECK_RC(proxyfs_async_cancel(&wcb), 0);
    CHECK_RC(proxyfs_async_cancel(&fcb), 0);
    /* The callbacks come without the daemon. */
    CHECK(wait_cb(&rcb, 3000) == 1);
    CHECK(wait_cb(&wcb, 3000) == 1);
    CHECK(wait_cb(&fcb, 3000) == 1);
    CHECK(now_ms() - t < 1000);
    CHECK_RC(proxyfs_async_cancel(&rcb), EALREADY);
    CHECK_RC(proxyfs_read_recv(&rcb, &status, &n), 0);
    CHECK(status == ECANCELED && n == 0);
    CHECK_RC(proxyfs_write_recv(&wcb, &status, &n), 0);
    CHECK(status == ECANCELED && n == 0);
    CHECK_RC(proxyfs_flush_recv(&fcb, &status), 0);
    CHECK(status == ECANCELED);
    CHECK_RC(proxyfs_async_cancel(&rcb), ENOENT);
    CHECK(all_are(rbuf, sizeof(rbuf), 0x5a));

    /* A request without a callback. */
    {
        int acb = 0;

        CHECK_RC(proxyfs_read_send(mh, f, 0, 4096, rbuf, 4096, &acb, NULL), 0);
        CHECK_RC(proxyfs_async_cancel(&acb), 0);
        CHECK_RC(proxyfs_read_recv(&acb, &status, &n), 0);
        CHECK(status == ECANCELED && n == 0);
    }

    /* The daemon answers the requests now: the replies are dropped, the
     * buffer stays as it was, the connections stay good. */
    daemon_signal(d, SIGCONT);
    sleep_ms(300);
    CHECK(all_are(rbuf, sizeof(rbuf), 0x5a));
    CHECK(rcb == 1 && wcb == 1 && fcb == 1);
    CHECK(file_ok(mh, f));
    n = 0;
    CHECK_RC(proxyfs_read(mh, g, 0, sizeof(wbuf), rbuf, sizeof(wbuf), &n), 0);
    /* The write may have been done (it was sent before the cancel). */
    CHECK(n == 0 || (n == sizeof(wbuf) && all_are(rbuf, n, 'w')));
}

/* A request of a callback: cancel another one. */
static int cb_b_counter, cb_b_cancel_rc = -1;

static void cb_cancel_b(void *id)
{
    cb_b_cancel_rc = proxyfs_async_cancel(&cb_b_counter);
    cb(id);
}

static void cancel_from_callback(test_daemon_t *d, mount_handle_t *mh,
                                 uint64_t f)
{
    static uint8_t buf[2][4096];
    int acb = 0, status = -1;
    size_t n;

    cb_b_counter = 0;
    cb_b_cancel_rc = -1;
    daemon_signal(d, SIGSTOP);
    CHECK_RC(proxyfs_read_send(mh, f, 0, 4096, buf[0], 4096, &acb, cb_cancel_b), 0);
    CHECK_RC(proxyfs_read_send(mh, f, 0, 4096, buf[1], 4096, &cb_b_counter, cb), 0);
    CHECK_RC(proxyfs_async_cancel(&acb), 0);
    CHECK(wait_cb(&acb, 3000) == 1);
    CHECK(cb_b_cancel_rc == 0);
    CHECK(wait_cb(&cb_b_counter, 3000) == 1);
    CHECK_RC(proxyfs_read_recv(&acb, &status, &n), 0);
    CHECK(status == ECANCELED);
    CHECK_RC(proxyfs_read_recv(&cb_b_counter, &status, &n), 0);
    CHECK(status == ECANCELED);
    daemon_signal(d, SIGCONT);
}

/* A dead daemon: the request waits in the retry queue (back-off); a
 * cancel completes it at once. */
static void cancel_dead(test_daemon_t *d, mount_handle_t *mh, uint64_t f)
{
    static uint8_t buf[4096];
    int c = 0, status = -1;
    size_t n;
    uint64_t t;

    memset(buf, 0x5a, sizeof(buf));
    daemon_signal(d, SIGKILL);
    CHECK_RC(proxyfs_read_send(mh, f, 0, sizeof(buf), buf, sizeof(buf), &c, cb), 0);
    sleep_ms(300);
    CHECK(c == 0);
    t = now_ms();
    CHECK_RC(proxyfs_async_cancel(&c), 0);
    CHECK(wait_cb(&c, 3000) == 1);
    CHECK(now_ms() - t < 1000);
    CHECK_RC(proxyfs_read_recv(&c, &status, &n), 0);
    CHECK(status == ECANCELED && n == 0);
    CHECK(all_are(buf, sizeof(buf), 0x5a));
    CHECK(daemon_start(d) == 0);
    CHECK(file_ok(mh, f));
}

/* After completion: EALREADY and the real result; unknown ids. */
static void cancel_completed(mount_handle_t *mh, uint64_t f)
{
    static uint8_t buf[8192];
    int c = 0, other = 0, status = -1;
    size_t n = 0;

    CHECK_RC(proxyfs_read_send(mh, f, 100, sizeof(buf), buf, sizeof(buf), &c, cb), 0);
    CHECK(wait_cb(&c, 5000) == 1);
    CHECK_RC(proxyfs_async_cancel(&c), EALREADY);
    CHECK_RC(proxyfs_read_recv(&c, &status, &n), 0);
    CHECK(status == 0 && n == sizeof(buf) && buf[0] == pattern(100));
    CHECK_RC(proxyfs_async_cancel(&c), ENOENT);
    CHECK_RC(proxyfs_async_cancel(&other), ENOENT);
    CHECK_RC(proxyfs_async_cancel(NULL), EINVAL);
    /* An error completion is not changed either. */
    c = 0;
    CHECK_RC(proxyfs_flush_send(mh, 987654321, &c, cb), 0);
    CHECK(wait_cb(&c, 5000) == 1);
    CHECK_RC(proxyfs_async_cancel(&c), EALREADY);
    CHECK_RC(proxyfs_flush_recv(&c, &status), 0);
    CHECK(status == EBADF);
    /* errno is left alone. */
    errno = 4242;
    CHECK_RC(proxyfs_async_cancel(&c), ENOENT);
    CHECK(errno == 4242);
}

/* ------------------------------------------------------------ the race */

typedef struct {
    mount_handle_t *mh;
    uint64_t f, g;
    int idx, iters;
    int cancelled, already, errors;
} race_arg_t;

static void spin_us(unsigned us)
{
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 <
           (long)us);
}

static void *race(void *arg)
{
    race_arg_t *r = arg;
    unsigned seed = 12345u + (unsigned)r->idx * 7919u;
    int *cbs = calloc((size_t)r->iters, sizeof(int));
    uint8_t wbuf[8192];

    if (cbs == NULL) {
        r->errors++;
        return NULL;
    }
    memset(wbuf, 'a' + r->idx, sizeof(wbuf));
    for (int i = 0; i < r->iters; i++) {
        unsigned kind = (unsigned)rand_r(&seed) % 8;
        unsigned delay = (unsigned)rand_r(&seed) % 400;
        int status = -1, rc, crc;
        size_t n = 0;

        if (kind < 6) {
            /* read: 4 KiB .. 256 KiB from a random offset */
            size_t len = 4096 + (size_t)rand_r(&seed) % (FSZ - 4096);
            size_t off = (size_t)rand_r(&seed) % (FSZ - len + 1);
            uint8_t *buf = malloc(len);
            int free_early = kind & 1;

            if (buf == NULL) {
                r->errors++;
                break;
            }
            memset(buf, 0xee, len);
            if (proxyfs_read_send(r->mh, r->f, off, len, buf, len, &cbs[i], cb) != 0) {
                r->errors++;
                free(buf);
                continue;
            }
            spin_us(delay);
            crc = proxyfs_async_cancel(&cbs[i]);
            if (crc == 0) {
                r->cancelled++;
                if (free_early) {
                    free(buf); /* ours again: a late write is a use after free */
                    buf = NULL;
                } else {
                    memset(buf, 0xee, len);
                }
            } else if (crc == EALREADY) {
                r->already++;
            } else {
                r->errors++;
            }
            rc = proxyfs_read_recv(&cbs[i], &status, &n);
            if (rc != 0 || cbs[i] != 1) {
                r->errors++;
            } else if (crc == 0) {
                if (status != ECANCELED || n != 0 ||
                    (buf != NULL && !all_are(buf, len, 0xee))) {
                    fprintf(stderr, "race: cancelled read: status %d n %zu\n",
                            status, n);
                    r->errors++;
                }
            } else if (status != 0 || n != len) {
                r->errors++;
            } else {
                for (size_t k = 0; k < len; k++) {
                    if (buf[k] != pattern(off + k)) {
                        r->errors++;
                        break;
                    }
                }
            }
            free(buf);
        } else if (kind == 6) {
            /* write to the scratch file */
            size_t off = (size_t)r->idx * sizeof(wbuf);

            if (proxyfs_write_send(r->mh, r->g, off, wbuf, sizeof(wbuf), &cbs[i], cb) != 0) {
                r->errors++;
                continue;
            }
            spin_us(delay);
            crc = proxyfs_async_cancel(&cbs[i]);
            rc = proxyfs_write_recv(&cbs[i], &status, &n);
            if (rc != 0 || cbs[i] != 1 || (crc != 0 && crc != EALREADY) ||
                (crc == 0 && status != ECANCELED) ||
                (crc == EALREADY && (status != 0 || n != sizeof(wbuf))))
                r->errors++;
            crc == 0 ? r->cancelled++ : r->already++;
        } else {
            if (proxyfs_flush_send(r->mh, r->g, &cbs[i], cb) != 0) {
                r->errors++;
                continue;
            }
            spin_us(delay);
            crc = proxyfs_async_cancel(&cbs[i]);
            rc = proxyfs_flush_recv(&cbs[i], &status);
            if (rc != 0 || cbs[i] != 1 || (crc != 0 && crc != EALREADY) ||
                status != (crc == 0 ? ECANCELED : 0))
                r->errors++;
            crc == 0 ? r->cancelled++ : r->already++;
        }
    }
    /* No callback ran twice, late. */
    sleep_ms(100);
    for (int i = 0; i < r->iters; i++)
        if (cbs[i] > 1)
            r->errors++;
    free(cbs);
    return NULL;
}

static void cancel_race(mount_handle_t *mh, uint64_t f, uint64_t g)
{
    enum { T = 4 };
    pthread_t th[T];
    race_arg_t args[T];
    const char *env = getenv("PROXYFS_TEST_CANCEL_ITERS");
    int iters = env != NULL ? atoi(env) : 400;
    int cancelled = 0, already = 0, errors = 0;

    if (iters <= 0)
        iters = 400;
    for (int i = 0; i < T; i++) {
        args[i] = (race_arg_t){ .mh = mh, .f = f, .g = g, .idx = i,
                                .iters = iters };
        pthread_create(&th[i], NULL, race, &args[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        cancelled += args[i].cancelled;
        already += args[i].already;
        errors += args[i].errors;
    }
    printf("cancel race: %d requests, %d cancelled, %d completed first, "
           "%d errors\n", T * iters, cancelled, already, errors);
    CHECK(errors == 0);
    /* The delays cover both outcomes. */
    CHECK(cancelled > 0);
    CHECK(already > 0);
    /* The connections are still good. */
    CHECK(file_ok(mh, f));
}

void cancel_tests(test_daemon_t *d)
{
    mount_handle_t *mh = NULL;
    uint64_t f, g = 0;

    CHECK_RC(proxyfs_mount("default", 0, "tester", 1000, 1000, &mh), 0);
    if (mh == NULL)
        return;
    f = make_file(mh, "/cancel-data");
    CHECK_RC(proxyfs_create_path(mh, "/cancel-scratch", 0644, &g), 0);
    if (f == 0 || g == 0)
        return;
    cancel_completed(mh, f);
    cancel_stopped(d, mh, f, g);
    cancel_from_callback(d, mh, f);
    cancel_dead(d, mh, f);
    cancel_race(mh, f, g);
    CHECK_RC(proxyfs_unmount(mh), 0);
}
