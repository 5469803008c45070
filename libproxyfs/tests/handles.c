/* handles.c - integration tests of proxyfs_open / proxyfs_close: an open
 * file unlinked by another mount stays usable through its inode number
 * until its last close; handles survive a daemon crash (the library opens
 * them again when it mounts again). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../proxyfs.h"
#include "harness.h"

void handles_tests(test_daemon_t *d);

static mount_handle_t *mount_one(void)
{
    mount_handle_t *mh = NULL;

    CHECK_RC(proxyfs_mount("default", 0, "tester", 1000, 1000, &mh), 0);
    return mh;
}

static void read_is(mount_handle_t *mh, uint64_t ino, const char *want)
{
    uint8_t buf[64];
    size_t n = 0;

    CHECK_RC(proxyfs_read(mh, ino, 0, sizeof buf, buf, sizeof buf, &n), 0);
    CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
}

static void write_str(mount_handle_t *mh, uint64_t ino, const char *s)
{
    size_t n = 0;

    CHECK_RC(proxyfs_write(mh, ino, 0, (uint8_t *)s, strlen(s), &n), 0);
    CHECK(n == strlen(s));
}

static uint64_t nlink_of(mount_handle_t *mh, uint64_t ino, int *rc)
{
    proxyfs_stat_t *st = NULL;
    uint64_t n = (uint64_t)-1;

    *rc = proxyfs_get_stat(mh, ino, &st);
    if (*rc == 0)
        n = st->nlink;
    free(st);
    return n;
}

/* Two mounts: A opens, B unlinks, A reads, writes and stats through the
 * inode number, A closes, the file is gone. */
static void open_unlink_close(void)
{
    mount_handle_t *a = mount_one(), *b = mount_one(), *c;
    uint64_t ino = 0, fh = 0, fh2 = 0, other = 0;
    int rc;
    uint8_t buf[8];
    size_t n;

    if (a == NULL || b == NULL)
        return;
    CHECK_RC(proxyfs_create_path(a, "/hfile", 0644, &ino), 0);
    write_str(a, ino, "hello world");

    CHECK_RC(proxyfs_open(a, ino, O_RDWR | O_CREAT, &fh), EINVAL);
    CHECK_RC(proxyfs_open(a, ino, O_ACCMODE, &fh), EINVAL);
    CHECK_RC(proxyfs_open(a, ino, O_RDONLY, NULL), EINVAL);
    CHECK_RC(proxyfs_open(NULL, ino, O_RDONLY, &fh), EINVAL);
    CHECK_RC(proxyfs_open(a, 999999, O_RDONLY, &fh), ENOENT);
    CHECK_RC(proxyfs_open(a, 1, O_WRONLY, &fh), EISDIR);

    CHECK_RC(proxyfs_open(a, ino, O_RDWR, &fh), 0);
    CHECK(fh != 0 && fh < (1ULL << 53));
    CHECK_RC(proxyfs_open(a, ino, O_RDONLY, &fh2), 0);
    CHECK(fh2 != 0 && fh2 != fh);
    CHECK_RC(proxyfs_unlink_path(b, "/hfile"), 0);
    CHECK_RC(proxyfs_lookup_path(b, "/hfile", &other), ENOENT);

    read_is(a, ino, "hello world");
    write_str(a, ino, "HELLO");
    read_is(b, ino, "HELLO world");
    CHECK(nlink_of(a, ino, &rc) == 0);
    CHECK_RC(rc, 0);
    CHECK_RC(proxyfs_flush(a, ino), 0);
    CHECK_RC(proxyfs_set_xattr(a, ino, "user.k", "v", 1, 0), 0);
    /* A plain open of the unlinked file is ENOENT. */
    CHECK_RC(proxyfs_open(b, ino, O_RDONLY, &other), ENOENT);

    /* A handle is valid with its own mount handle only. */
    CHECK_RC(proxyfs_close(b, fh), EBADF);
    CHECK_RC(proxyfs_close(a, 12345), EBADF);
    CHECK_RC(proxyfs_close(a, fh), 0);
    read_is(b, ino, "HELLO world");
    CHECK_RC(proxyfs_close(a, fh2), 0);
    (void)nlink_of(a, ino, &rc);
    CHECK_RC(rc, ENOENT);
    CHECK_RC(proxyfs_read(a, ino, 0, sizeof buf, buf, sizeof buf, &n), EBADF);
    CHECK_RC(proxyfs_close(a, fh), EBADF);

    /* Unmounting closes the mount's handles: the orphan goes. */
    c = mount_one();
    if (c != NULL) {
        CHECK_RC(proxyfs_create_path(a, "/hfile2", 0644, &ino), 0);
        CHECK_RC(proxyfs_open(c, ino, O_RDONLY, &fh), 0);
        CHECK_RC(proxyfs_unlink_path(a, "/hfile2"), 0);
        CHECK(nlink_of(a, ino, &rc) == 0);
        CHECK_RC(proxyfs_unmount(c), 0);
        (void)nlink_of(a, ino, &rc);
        CHECK_RC(rc, ENOENT);
    }
    CHECK_RC(proxyfs_unmount(a), 0);
    CHECK_RC(proxyfs_unmount(b), 0);
}

/* Open, unlink, kill -9, restart: the library opens the handle again when
 * it mounts again (within reclaim_grace), reads go on, the same fh closes,
 * and then the file is gone. */
static void reopen_after_crash(test_daemon_t *d)
{
    mount_handle_t *a = mount_one();
    uint64_t ino = 0, fh = 0;
    int rc;

    if (a == NULL)
        return;
    CHECK_RC(proxyfs_create_path(a, "/hcrash", 0644, &ino), 0);
    write_str(a, ino, "survives");
    CHECK_RC(proxyfs_open(a, ino, O_RDONLY, &fh), 0);
    CHECK_RC(proxyfs_unlink_path(a, "/hcrash"), 0);
    daemon_signal(d, SIGKILL);
    CHECK(daemon_start(d) == 0);
    read_is(a, ino, "survives");
    CHECK(nlink_of(a, ino, &rc) == 0);
    CHECK_RC(rc, 0);
    CHECK_RC(proxyfs_close(a, fh), 0);
    (void)nlink_of(a, ino, &rc);
    CHECK_RC(rc, ENOENT);
    CHECK_RC(proxyfs_unmount(a), 0);
}

/* I/O through handles (proxyfs_read_fh, ...): the access mode of the
 * handle decides, not the file's mode now (a chmod 000 while open); sync
 * and async; and across kill -9 of the daemon. */
static void fh_io(test_daemon_t *d)
{
    mount_handle_t *a = mount_one();
    uint64_t ino = 0, rw = 0, ro = 0, wo = 0;
    uint8_t buf[64];
    size_t n = 0;
    int st = -1;
    int id_r, id_w, id_bad;

    if (a == NULL)
        return;
    CHECK_RC(proxyfs_create_path(a, "/fhio", 0644, &ino), 0);
    CHECK_RC(proxyfs_open(a, ino, O_RDWR, &rw), 0);
    CHECK_RC(proxyfs_open(a, ino, O_RDONLY, &ro), 0);
    CHECK_RC(proxyfs_open(a, ino, O_WRONLY, &wo), 0);
    CHECK_RC(proxyfs_chmod(a, ino, 0), 0);

    /* The handles' access decides; the inode calls are checked. */
    CHECK_RC(proxyfs_write_fh(a, rw, 0, (uint8_t *)"through", 7, &n), 0);
    CHECK(n == 7);
    CHECK_RC(proxyfs_read_fh(a, ro, 0, sizeof buf, buf, sizeof buf, &n), 0);
    CHECK(n == 7 && memcmp(buf, "through", 7) == 0);
    CHECK_RC(proxyfs_flush_fh(a, rw), 0);
    CHECK_RC(proxyfs_flush_fh(a, ro), 0);
    CHECK_RC(proxyfs_ftruncate(a, rw, 9), 0);
    CHECK_RC(proxyfs_ftruncate(a, wo, 7), 0);
    CHECK_RC(proxyfs_ftruncate(a, ro, 0), EBADF);
    CHECK_RC(proxyfs_ftruncate(a, 424242, 0), EBADF);
    CHECK_RC(proxyfs_resize(a, ino, 0), EACCES);
    CHECK_RC(proxyfs_write_fh(a, ro, 0, (uint8_t *)"x", 1, &n), EBADF);
    CHECK_RC(proxyfs_read_fh(a, wo, 0, sizeof buf, buf, sizeof buf, &n), EBADF);
    CHECK_RC(proxyfs_read(a, ino, 0, sizeof buf, buf, sizeof buf, &n), EACCES);
    CHECK_RC(proxyfs_write(a, ino, 0, (uint8_t *)"x", 1, &n), EACCES);
    CHECK_RC(proxyfs_read_fh(a, 424242, 0, sizeof buf, buf, sizeof buf, &n), EBADF);
    CHECK_RC(proxyfs_flush_fh(a, 424242), EBADF);

    /* Async. */
    CHECK_RC(proxyfs_write_fh_send(a, wo, 7, (uint8_t *)"!", 1, &id_w, NULL), 0);
    CHECK_RC(proxyfs_write_recv(&id_w, &st, &n), 0);
    CHECK(st == 0 && n == 1);
    memset(buf, 0, sizeof buf);
    CHECK_RC(proxyfs_read_fh_send(a, rw, 0, sizeof buf, buf, sizeof buf, &id_r, NULL), 0);
    CHECK_RC(proxyfs_read_recv(&id_r, &st, &n), 0);
    CHECK(st == 0 && n == 8 && memcmp(buf, "through!", 8) == 0);
    CHECK_RC(proxyfs_read_fh_send(a, wo, 0, sizeof buf, buf, sizeof buf, &id_bad, NULL), 0);
    CHECK_RC(proxyfs_read_recv(&id_bad, &st, &n), 0);
    CHECK(st == EBADF);
    CHECK_RC(proxyfs_flush_fh_send(a, rw, &id_w, NULL), 0);
    CHECK_RC(proxyfs_flush_recv(&id_w, &st), 0);
    CHECK(st == 0);
    CHECK_RC(proxyfs_write_fh_send(a, 424242, 0, (uint8_t *)"x", 1, &id_w, NULL), EBADF);

    CHECK_RC(proxyfs_close(a, ro), 0);
    CHECK_RC(proxyfs_close(a, wo), 0);
    CHECK_RC(proxyfs_close(a, rw), 0);
    CHECK_RC(proxyfs_write_fh(a, rw, 0, (uint8_t *)"x", 1, &n), EBADF);

    /* kill -9: the handle is opened again, its writes were kept. */
    CHECK_RC(proxyfs_chmod(a, ino, 0644), 0);
    CHECK_RC(proxyfs_open(a, ino, O_RDWR, &rw), 0);
    CHECK_RC(proxyfs_write_fh(a, rw, 0, (uint8_t *)"durable", 7, &n), 0);
    daemon_signal(d, SIGKILL);
    CHECK(daemon_start(d) == 0);
    CHECK_RC(proxyfs_read_fh(a, rw, 0, sizeof buf, buf, sizeof buf, &n), 0);
    CHECK(n == 8 && memcmp(buf, "durable!", 8) == 0);
    CHECK_RC(proxyfs_write_fh(a, rw, 8, (uint8_t *)"?", 1, &n), 0);
    CHECK_RC(proxyfs_close(a, rw), 0);
    read_is(a, ino, "durable!?");
    CHECK_RC(proxyfs_unmount(a), 0);
}

void handles_tests(test_daemon_t *d)
{
    open_unlink_close();
    reopen_after_crash(d);
    fh_io(d);
}
