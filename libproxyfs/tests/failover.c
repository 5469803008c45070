/* failover.c - a client given a list of gateways moves to the next one
 * when the gateway it uses dies (issue 18). A private etcd and Swift
 * (scripts/scaleout-servers.sh) hold one etcdswift volume that two
 * proxyfsd gateways, A and B, serve; the client mounts "A,B". While
 * threads write files (sync calls) and a thread writes and reads one file
 * with async calls, A is killed with -9: every call completes, every
 * acknowledged file is there (read through B by a second client), a
 * handle on an unlinked file still reads, and the POSIX and flock locks
 * taken through A are held through B (the second client's conflicting
 * F_SETLK gets EAGAIN, also after A's etcd lease expired, and F_GETLK
 * names the first client's owner); no lock is counted lost.
 *
 * Without PROXYFSD, or without the etcd and Swift servers, the test is
 * skipped (exit 0), unless PROXYFS_REQUIRE_SCALEOUT=1 (then it fails). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "../../proxyfs.h"
#include "harness.h"



/* The etcd lease TTL of a gateway (vfsbackend/etcdswift LeaseTTL). */
#define LEASE_TTL_MS 10000

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

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* ------------------------------------------------------------ servers */

static char sdir[256];
static char volume_toml[2048];

/* Reads KEY=VALUE from sdir/env into out. */
static int env_value(const char *key, char *out, size_t n)
{
    char path[320], line[1024];
    FILE *f;
    size_t kl = strlen(key);
    int rc = -1;

    snprintf(path, sizeof(path), "%s/env", sdir);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, n, "%s", line + kl + 1);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* Starts etcd and Swift under a new directory; 0, 3 (not installed) or
 * -1. */
static int servers_start(void)
{
    char cmd[600], eps[512], url[256], user[64], key[64], quoted[600];
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    int st;

    snprintf(sdir, sizeof(sdir), "%s/libproxyfs-failover.XXXXXX", base);
    if (mkdtemp(sdir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "sh ../scripts/scaleout-servers.sh start %s/s >%s/start.out 2>&1",
             sdir, sdir);
    st = system(cmd);
    strcat(sdir, "/s");
    if (st != 0)
        return WIFEXITED(st) && WEXITSTATUS(st) == 3 ? 3 : -1;
    if (env_value("ETCD_ENDPOINTS", eps, sizeof(eps)) != 0 ||
        env_value("SWIFT_AUTH_URL", url, sizeof(url)) != 0 ||
        env_value("SWIFT_USER", user, sizeof(user)) != 0 ||
        env_value("SWIFT_KEY", key, sizeof(key)) != 0)
        return -1;
    /* "a,b" -> "\"a\", \"b\"" */
    {
        char *q = quoted, *tok, *save = NULL;

        *q = '\0';
        for (tok = strtok_r(eps, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
            q += sprintf(q, "%s\"%s\"", q == quoted ? "" : ", ", tok);
    }
    snprintf(volume_toml, sizeof(volume_toml),
             "etcd_endpoints = [%s]\netcd_prefix = \"failover/\"\n"
             "swift_auth_url = \"%s\"\nswift_user = \"%s\"\nswift_key = \"%s\"\n"
             "swift_container = \"failover\"\nchunk_bytes = 65536\n",
             quoted, url, user, key);
    return 0;
}

static void servers_stop(void)
{
    char cmd[800];

    if (sdir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "sh ../scripts/scaleout-servers.sh stop %s >/dev/null 2>&1", sdir);
    if (system(cmd) != 0)
        fprintf(stderr, "stopping the servers in %s failed\n", sdir);
    sdir[strlen(sdir) - 2] = '\0'; /* the directory above s */
    if (getenv("PROXYFS_TEST_KEEP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sdir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", sdir);
    }
}

/* ------------------------------------------------------------ workload */

#define NSYNC 2
#define MAXFILES 4096

typedef struct {
    mount_handle_t *mh;
    int id;
    volatile int *stop;
    volatile int *killed;
    int nfiles, after, errors;
    uint64_t longest_ms; /* the longest create+write */
    uint64_t first_after; /* when the first file begun after the kill was done */
    int sizes[MAXFILES];
} sync_worker_t;

static void *sync_main(void *arg)
{
    sync_worker_t *w = arg;
    uint8_t *buf = malloc(5000);

    for (int n = 0; n < MAXFILES && !*w->stop && buf != NULL; n++) {
        char path[64];
        uint64_t ino;
        size_t done = 0;
        int size = 500 + (n * 37) % 4000, rc, was_killed = *w->killed;
        uint64_t t0 = now_ms();

        snprintf(path, sizeof(path), "/f%d-%d", w->id, n);
        fill(buf, (size_t)size, (unsigned)(w->id * 100000 + n));
        rc = proxyfs_create_path(w->mh, path, 0644, &ino);
        if (rc == 0)
            rc = proxyfs_write(w->mh, ino, 0, buf, (size_t)size, &done);
        if (rc != 0 || done != (size_t)size) {
            fprintf(stderr, "sync worker %d: %s: %s (%s)\n", w->id, path, strerror(rc),
                    proxyfs_last_error());
            w->errors++;
            continue;
        }
        w->sizes[n] = size;
        w->nfiles = n + 1;
        if (now_ms() - t0 > w->longest_ms)
            w->longest_ms = now_ms() - t0;
        if (was_killed && w->first_after == 0)
            w->first_after = now_ms();
        if (*w->killed)
            w->after++;
    }
    free(buf);
    return NULL;
}

typedef struct {
    mount_handle_t *mh;
    uint64_t ino;
    volatile int *stop;
    volatile int *killed;
    int rounds, after, errors;
} async_worker_t;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} waiter_t;

static waiter_t aw = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

static void async_done(void *id)
{
    (void)id;
    pthread_mutex_lock(&aw.mu);
    aw.done++;
    pthread_cond_broadcast(&aw.cv);
    pthread_mutex_unlock(&aw.mu);
}

static void async_wait(int n)
{
    pthread_mutex_lock(&aw.mu);
    while (aw.done < n)
        pthread_cond_wait(&aw.cv, &aw.mu);
    aw.done -= n;
    pthread_mutex_unlock(&aw.mu);
}

/* Writes 4 blocks of the file with write_send, then reads them back with
 * read_send, each round with other contents. */
static void *async_main(void *arg)
{
    async_worker_t *w = arg;
    enum { B = 16384, N = 4 };
    static uint8_t out[N][B], in[N][B];
    static char ids[2 * N];

    for (int r = 0; !*w->stop; r++) {
        int st, sent = 0;
        size_t got;

        for (int i = 0; i < N; i++) {
            fill(out[i], B, (unsigned)(r * N + i));
            if (proxyfs_write_send(w->mh, w->ino, (uint64_t)i * B, out[i], B, &ids[i],
                                   async_done) == 0)
                sent++;
            else
                w->errors++;
        }
        async_wait(sent);
        for (int i = 0; i < N; i++) {
            if (proxyfs_write_recv(&ids[i], &st, &got) != 0 || st != 0 || got != B) {
                fprintf(stderr, "async write %d of round %d: %s\n", i, r, strerror(st));
                w->errors++;
            }
        }
        sent = 0;
        for (int i = 0; i < N; i++) {
            if (proxyfs_read_send(w->mh, w->ino, (uint64_t)i * B, B, in[i], B, &ids[N + i],
                                  async_done) == 0)
                sent++;
            else
                w->errors++;
        }
        async_wait(sent);
        for (int i = 0; i < N; i++) {
            if (proxyfs_read_recv(&ids[N + i], &st, &got) != 0 || st != 0 || got != B ||
                memcmp(in[i], out[i], B) != 0) {
                fprintf(stderr, "async read %d of round %d: %s, %zu bytes\n", i, r,
                        strerror(st), got);
                w->errors++;
            }
        }
        w->rounds++;
        if (*w->killed)
            w->after++;
    }
    return NULL;
}

/* ---------------------------------------------------------------- test */

static void failover_test(test_daemon_t *a, test_daemon_t *b)
{
    char list[200];
    mount_handle_t *mh = NULL, *mb = NULL;
    enum { KEPT = 70000 };
    static uint8_t kept[KEPT], got[KEPT + 1];
    uint64_t ino, kfh, lino, lfh, ffh, aino, bfh, bffh, lost = 1;
    size_t n;
    proxyfs_lock_t conf;
    volatile int stop = 0, killed = 0;
    sync_worker_t sw[NSYNC];
    async_worker_t asw;
    pthread_t th[NSYNC + 1];
    uint64_t t0;

    snprintf(list, sizeof(list), "%s,%s", a->addr, b->addr);
    CHECK_RC(proxyfs_mount_server(list, "default", 0, "failover", 1000, 1000, &mh), 0);
    CHECK_RC(proxyfs_mount_server(b->addr, "default", 0, "other", 1000, 1000, &mb), 0);
    if (mh == NULL || mb == NULL)
        return;

    /* A handle on an unlinked file. */
    fill(kept, KEPT, 7);
    CHECK_RC(proxyfs_create_path(mh, "/kept", 0644, &ino), 0);
    CHECK_RC(proxyfs_write(mh, ino, 0, kept, KEPT, &n), 0);
    CHECK_RC(proxyfs_open(mh, ino, O_RDONLY, &kfh), 0);
    CHECK_RC(proxyfs_unlink_path(mh, "/kept"), 0);

    /* Locks through A: a POSIX write lock and a flock. */
    CHECK_RC(proxyfs_create_path(mh, "/locked", 0644, &lino), 0);
    CHECK_RC(proxyfs_open(mh, lino, O_RDWR, &lfh), 0);
    CHECK_RC(proxyfs_open(mh, lino, O_RDWR, &ffh), 0);
    CHECK_RC(proxyfs_lock(mh, lfh, F_SETLK, F_WRLCK, 0, 100, "c1", NULL), 0);
    CHECK_RC(proxyfs_flock(mh, ffh, LOCK_EX | LOCK_NB), 0);
    CHECK_RC(proxyfs_open(mb, lino, O_RDWR, &bfh), 0);
    CHECK_RC(proxyfs_open(mb, lino, O_RDWR, &bffh), 0);
    CHECK_RC(proxyfs_lock(mb, bfh, F_SETLK, F_RDLCK, 10, 1, "c2", NULL), EAGAIN);

    CHECK_RC(proxyfs_create_path(mh, "/async", 0644, &aino), 0);
    memset(&asw, 0, sizeof(asw));
    asw.mh = mh;
    asw.ino = aino;
    asw.stop = &stop;
    asw.killed = &killed;
    for (int i = 0; i < NSYNC; i++) {
        memset(&sw[i], 0, sizeof(sw[i]));
        sw[i].mh = mh;
        sw[i].id = i;
        sw[i].stop = &stop;
        sw[i].killed = &killed;
        pthread_create(&th[i], NULL, sync_main, &sw[i]);
    }
    pthread_create(&th[NSYNC], NULL, async_main, &asw);
    sleep_ms(1500);
    killed = 1;
    daemon_signal(a, SIGKILL);
    t0 = now_ms();
    sleep_ms(3000);
    stop = 1;
    for (int i = 0; i <= NSYNC; i++)
        pthread_join(th[i], NULL);

    {
        int files = 0, after = 0, errors = asw.errors;
        uint64_t longest = 0, first = 0;

        for (int i = 0; i < NSYNC; i++) {
            files += sw[i].nfiles;
            after += sw[i].after;
            errors += sw[i].errors;
            if (sw[i].longest_ms > longest)
                longest = sw[i].longest_ms;
            if (sw[i].first_after != 0 && (first == 0 || sw[i].first_after < first))
                first = sw[i].first_after;
        }
        fprintf(stderr, "failover: %d files (%d after the kill), %d async rounds (%d after), "
                "%d errors; longest create+write %llu ms, first file begun after the "
                "kill done %lld ms after it\n", files, after, asw.rounds, asw.after, errors,
                (unsigned long long)longest, first ? (long long)(first - t0) : -1LL);
        CHECK(errors == 0);
        CHECK(after > 0);
        CHECK(asw.after > 0);
    }

    /* The unlinked file's handle was reopened on B. */
    memset(got, 0, sizeof(got));
    CHECK_RC(proxyfs_read_fh(mh, kfh, 0, KEPT + 1, got, sizeof(got), &n), 0);
    CHECK(n == KEPT && memcmp(got, kept, KEPT) == 0);

    /* The locks moved to B, and none was lost. */
    CHECK_RC(proxyfs_lost_locks(mh, &lost), 0);
    CHECK(lost == 0);
    CHECK_RC(proxyfs_lock(mb, bfh, F_SETLK, F_RDLCK, 10, 1, "c2", NULL), EAGAIN);
    CHECK_RC(proxyfs_flock(mb, bffh, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    /* The client's own lock left on A does not block it. */
    CHECK_RC(proxyfs_lock(mh, lfh, F_SETLK, F_WRLCK, 50, 100, "c1", NULL), 0);

    /* Every acknowledged file, read through B by the other client. */
    {
        uint8_t want[5000], buf[5001];
        int bad = 0;

        for (int i = 0; i < NSYNC; i++) {
            for (int f = 0; f < sw[i].nfiles; f++) {
                char path[64];
                uint64_t fi;

                if (sw[i].sizes[f] == 0)
                    continue;
                snprintf(path, sizeof(path), "/f%d-%d", i, f);
                fill(want, (size_t)sw[i].sizes[f], (unsigned)(i * 100000 + f));
                if (proxyfs_lookup_path(mb, path, &fi) != 0 ||
                    proxyfs_read(mb, fi, 0, sizeof(buf), buf, sizeof(buf), &n) != 0 ||
                    n != (size_t)sw[i].sizes[f] || memcmp(buf, want, n) != 0) {
                    fprintf(stderr, "%s: missing or wrong through B\n", path);
                    bad++;
                }
            }
        }
        CHECK(bad == 0);
    }

    /* After A's lease expired (its own copies of the locks are gone), the
     * locks are still held: B holds them for the client. */
    while (now_ms() - t0 < LEASE_TTL_MS + 2000)
        sleep_ms(200);
    CHECK_RC(proxyfs_lock(mb, bfh, F_SETLK, F_RDLCK, 10, 1, "c2", NULL), EAGAIN);
    memset(&conf, 0, sizeof(conf));
    CHECK_RC(proxyfs_lock(mb, bfh, F_GETLK, F_WRLCK, 0, 0, "c2", &conf), 0);
    CHECK(conf.type == F_WRLCK && strcmp(conf.owner, "c1") == 0);
    CHECK_RC(proxyfs_flock(mb, bffh, LOCK_SH | LOCK_NB), EWOULDBLOCK);

    /* Released: the other client gets them. */
    CHECK_RC(proxyfs_close(mh, lfh), 0);
    CHECK_RC(proxyfs_close(mh, ffh), 0);
    CHECK_RC(proxyfs_lock(mb, bfh, F_SETLK, F_WRLCK, 0, 0, "c2", NULL), 0);
    CHECK_RC(proxyfs_flock(mb, bffh, LOCK_EX | LOCK_NB), 0);

    CHECK_RC(proxyfs_close(mh, kfh), 0);
    CHECK_RC(proxyfs_close(mb, bfh), 0);
    CHECK_RC(proxyfs_close(mb, bffh), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
    CHECK_RC(proxyfs_unmount(mb), 0);
}

int main(void)
{
    const char *bin = getenv("PROXYFSD");
    const char *req = getenv("PROXYFS_REQUIRE_SCALEOUT");
    bool required = req != NULL && strcmp(req, "1") == 0;
    test_daemon_t a, b;
    int rc;

    if (bin == NULL || bin[0] == '\0') {
        printf("failover: PROXYFSD not set, skipped\n");
        return 0;
    }
    rc = servers_start();
    if (rc != 0) {
        if (rc == 3 && !required) {
            printf("failover: etcd or Swift not installed, skipped\n");
            servers_stop();
            return 0;
        }
        fprintf(stderr, "failover: could not start etcd and Swift (see %s/../start.out)\n", sdir);
        servers_stop();
        return 1;
    }
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.bin = b.bin = bin;
    a.engine = b.engine = "etcdswift";
    a.volume_extra = b.volume_extra = volume_toml;
    a.server_extra = b.server_extra = "reclaim_grace = \"1s\"\n";
    if (daemon_start(&a) != 0 || daemon_start(&b) != 0) {
        fprintf(stderr, "failover: could not start the gateways (logs in %s, %s)\n", a.dir, b.dir);
        t_fail++;
    } else {
        failover_test(&a, &b);
    }
    daemon_cleanup(&a);
    daemon_cleanup(&b);
    servers_stop();
    printf("failover: %d passed, %d failed\n", t_pass, t_fail);
    return t_fail == 0 ? 0 : 1;
}
