/* test.c - the integration suite of libproxyfs against a real proxyfsd.
 *
 *   PROXYFSD=/abs/path/proxyfsd ./tests/test [test-name ...]
 *
 * It starts the daemon in a temporary directory with its own config on a
 * free port, points the library at it (PROXYFS_SERVER) and runs every test
 * (or the named ones). Without PROXYFSD every test is skipped. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../proxyfs.h"
#include "harness.h"

static test_daemon_t daemon_;
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

/* Makes a fresh directory for one test under the root; returns its inode. */
static uint64_t fresh_dir(mount_handle_t *mh, const char *name)
{
    uint64_t ino = 0;

    CHECK_RC(proxyfs_mkdir(mh, root_ino, (char *)name, 0755, &ino), 0);
    return ino;
}

/* ------------------------------------------------------------ mount */

static void test_mount_cycle(void)
{
    mount_handle_t *mh = NULL, *mh2 = NULL;
    uint64_t ino;

    for (int i = 0; i < 3; i++) {
        mh = do_mount();
        CHECK(mh != NULL);
        CHECK_RC(proxyfs_unmount(mh), 0);
    }
    /* Two handles at once, read-only second. */
    CHECK_RC(proxyfs_mount("default", 0, "a", 1, 1, &mh), 0);
    CHECK_RC(proxyfs_mount("default", PROXYFS_MOUNT_READ_ONLY, "b", 2, 2, &mh2), 0);
    CHECK_RC(proxyfs_lookup_path(mh2, "/", &ino), 0);
    CHECK_RC(proxyfs_unmount(mh2), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
    /* Errors. */
    CHECK_RC(proxyfs_mount("no-such-volume", 0, "a", 1, 1, &mh), ENOENT);
    CHECK_RC(proxyfs_mount(NULL, 0, "a", 1, 1, &mh), EINVAL);
    CHECK_RC(proxyfs_unmount(NULL), EINVAL);
}

static void test_mount_enodev(void)
{
    mount_handle_t *mh = NULL;

    char unused[64];

    snprintf(unused, sizeof(unused), "127.0.0.1:%d", free_port());
    CHECK_RC(proxyfs_set_server(unused), 0);
    CHECK_RC(proxyfs_mount("default", 0, "a", 1, 1, &mh), ENODEV);
    CHECK_RC(proxyfs_set_server(daemon_.addr), 0);
    /* The Unix socket works as well. */
    {
        char addr[400];

        snprintf(addr, sizeof(addr), "unix:%s", daemon_.sock);
        CHECK_RC(proxyfs_set_server(addr), 0);
        mh = do_mount();
        if (mh != NULL)
            CHECK_RC(proxyfs_unmount(mh), 0);
        CHECK_RC(proxyfs_set_server(daemon_.addr), 0);
    }
}

/* ---------------------------------------------------------- namespace */

static void test_namespace(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t d, f, f2, sub, ino, x;
    const char *target = NULL;
    char longname[300];

    if (mh == NULL)
        return;
    d = fresh_dir(mh, "ns");
    /* create / lookup */
    CHECK_RC(proxyfs_create(mh, d, "a", 0644, &f), 0);
    CHECK_RC(proxyfs_lookup(mh, d, "a", &ino), 0);
    CHECK(ino == f);
    CHECK_RC(proxyfs_lookup_path(mh, "/ns/a", &ino), 0);
    CHECK(ino == f);
    CHECK_RC(proxyfs_lookup_path(mh, "ns//./a", &ino), 0);
    CHECK(ino == f);
    CHECK_RC(proxyfs_create(mh, d, "a", 0644, &x), EEXIST);
    CHECK_RC(proxyfs_create_path(mh, "/ns/b", 0600, &f2), 0);
    CHECK_RC(proxyfs_create_path(mh, "/ns/b", 0600, &x), EEXIST);
    CHECK_RC(proxyfs_create_path(mh, "/nope/b", 0600, &x), ENOENT);
    CHECK_RC(proxyfs_create(mh, 999999, "b", 0600, &x), ENOENT);
    CHECK_RC(proxyfs_create(mh, f, "b", 0600, &x), ENOTDIR);
    CHECK_RC(proxyfs_create_path(mh, "/ns/a/b", 0600, &x), ENOTDIR);
    memset(longname, 'n', 256);
    longname[256] = '\0';
    CHECK_RC(proxyfs_create(mh, d, longname, 0600, &x), ENAMETOOLONG);
    CHECK_RC(proxyfs_create(mh, d, "", 0600, &x), EINVAL);
    CHECK_RC(proxyfs_create(mh, d, NULL, 0600, &x), EINVAL);
    CHECK_RC(proxyfs_create(mh, d, "bad\xff", 0600, &x), EINVAL);
    CHECK_RC(proxyfs_lookup(mh, d, "missing", &ino), ENOENT);
    CHECK_RC(proxyfs_lookup_path(mh, "/ns/missing", &ino), ENOENT);
    CHECK_RC(proxyfs_lookup(mh, d, longname, &ino), ENAMETOOLONG);

    /* mkdir */
    CHECK_RC(proxyfs_mkdir(mh, d, "sub", 0700, &sub), 0);
    CHECK_RC(proxyfs_mkdir(mh, d, "sub", 0700, &x), EEXIST);
    CHECK_RC(proxyfs_mkdir(mh, d, "a", 0700, &x), EEXIST);
    CHECK_RC(proxyfs_mkdir(mh, f, "x", 0700, &x), ENOTDIR);
    CHECK_RC(proxyfs_mkdir(mh, 999999, "x", 0700, &x), ENOENT);
    CHECK_RC(proxyfs_mkdir_path(mh, "/ns/sub/deeper", 0755), 0);
    CHECK_RC(proxyfs_mkdir_path(mh, "/ns/sub/deeper", 0755), EEXIST);
    CHECK_RC(proxyfs_mkdir_path(mh, "/ns/none/deeper", 0755), ENOENT);

    /* symlink */
    CHECK_RC(proxyfs_symlink(mh, d, "ln", "a"), 0);
    CHECK_RC(proxyfs_symlink(mh, d, "ln", "a"), EEXIST);
    CHECK_RC(proxyfs_symlink(mh, 999999, "ln", "a"), ENOENT);
    CHECK_RC(proxyfs_symlink_path(mh, "/ns/ln2", "/ns/sub"), 0);
    CHECK_RC(proxyfs_symlink_path(mh, "/ns/ln2", "/ns/sub"), EEXIST);
    CHECK_RC(proxyfs_lookup(mh, d, "ln", &ino), 0);
    CHECK_RC(proxyfs_read_symlink(mh, ino, &target), 0);
    CHECK(target != NULL && strcmp(target, "a") == 0);
    free((void *)target);
    CHECK_RC(proxyfs_read_symlink_path(mh, "/ns/ln2", &target), 0);
    CHECK(target != NULL && strcmp(target, "/ns/sub") == 0);
    free((void *)target);
    CHECK_RC(proxyfs_read_symlink(mh, f, &target), EINVAL);
    CHECK_RC(proxyfs_read_symlink_path(mh, "/ns/nope", &target), ENOENT);
    CHECK_RC(proxyfs_read_symlink(mh, 999999, &target), ENOENT);
    /* An intermediate symlink is followed. */
    CHECK_RC(proxyfs_lookup_path(mh, "/ns/ln2/deeper", &ino), 0);

    /* link */
    CHECK_RC(proxyfs_link(mh, d, "a2", f), 0);
    CHECK_RC(proxyfs_link(mh, d, "a2", f), EEXIST);
    CHECK_RC(proxyfs_link(mh, d, "s2", sub), EPERM);
    CHECK_RC(proxyfs_link(mh, f, "x", f), ENOTDIR);
    CHECK_RC(proxyfs_link(mh, d, "x", 999999), ENOENT);
    CHECK_RC(proxyfs_link_path(mh, "/ns/a", "/ns/a3"), 0);
    CHECK_RC(proxyfs_link_path(mh, "/ns/sub", "/ns/s3"), EPERM);
    CHECK_RC(proxyfs_link_path(mh, "/ns/zz", "/ns/a4"), ENOENT);
    {
        proxyfs_stat_t *st = NULL;

        CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
        CHECK(st != NULL && st->nlink == 3);
        free(st);
    }

    /* unlink */
    CHECK_RC(proxyfs_unlink(mh, d, "a2"), 0);
    CHECK_RC(proxyfs_unlink(mh, d, "a2"), ENOENT);
    CHECK_RC(proxyfs_unlink(mh, d, "sub"), EISDIR);
    CHECK_RC(proxyfs_unlink_path(mh, "/ns/a3"), 0);
    CHECK_RC(proxyfs_unlink_path(mh, "/ns/a3"), ENOENT);
    CHECK_RC(proxyfs_unlink_path(mh, "/ns/sub"), EISDIR);

    /* rmdir */
    CHECK_RC(proxyfs_rmdir(mh, d, "sub"), ENOTEMPTY);
    CHECK_RC(proxyfs_rmdir(mh, d, "a"), ENOTDIR);
    CHECK_RC(proxyfs_rmdir(mh, d, "zz"), ENOENT);
    CHECK_RC(proxyfs_rmdir_path(mh, "/ns/sub/deeper"), 0);
    CHECK_RC(proxyfs_rmdir_path(mh, "/ns/sub/deeper"), ENOENT);
    CHECK_RC(proxyfs_rmdir_path(mh, "/ns/a"), ENOTDIR);

    /* rename */
    CHECK_RC(proxyfs_rename(mh, d, "a", d, "c"), 0);
    CHECK_RC(proxyfs_lookup(mh, d, "c", &ino), 0);
    CHECK(ino == f);
    CHECK_RC(proxyfs_rename(mh, d, "a", d, "c"), ENOENT);
    CHECK_RC(proxyfs_rename(mh, d, "c", d, "c"), 0);
    CHECK_RC(proxyfs_rename(mh, d, "c", d, "b"), 0); /* replaces b */
    CHECK_RC(proxyfs_lookup(mh, d, "b", &ino), 0);
    CHECK(ino == f);
    CHECK_RC(proxyfs_rename(mh, d, "sub", d, "b"), ENOTDIR);
    CHECK_RC(proxyfs_rename(mh, d, "b", d, "sub"), EISDIR);
    CHECK_RC(proxyfs_mkdir_path(mh, "/ns/sub/inner", 0755), 0);
    CHECK_RC(proxyfs_mkdir_path(mh, "/ns/full", 0755), 0);
    CHECK_RC(proxyfs_create_path(mh, "/ns/full/x", 0644, &x), 0);
    CHECK_RC(proxyfs_rename_path(mh, "/ns/sub", "/ns/full"), ENOTEMPTY);
    CHECK_RC(proxyfs_rename_path(mh, "/ns/sub", "/ns/sub/inner/x"), EINVAL);
    CHECK_RC(proxyfs_rename_path(mh, "/ns/b", "/ns/sub/b"), 0);
    CHECK_RC(proxyfs_rename_path(mh, "/ns/b", "/ns/sub/b"), ENOENT);
    CHECK_RC(proxyfs_rename(mh, 999999, "b", d, "q"), ENOENT);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* --------------------------------------------------------- attributes */

static void test_attrs(void)
{
    mount_handle_t *mh = do_mount(), *admin = NULL;
    proxyfs_stat_t *st = NULL, out;
    proxyfs_timespec_t at = { 1000000000, 5 }, mt = { 1100000000, 7 };
    proxyfs_setattr_t sa;
    struct statvfs *sv = NULL;
    uint64_t d, f, x;
    uint16_t type;

    if (mh == NULL)
        return;
    /* The administrator: root changes owners. */
    CHECK_RC(proxyfs_mount("default", 0, "admin", 0, 0, &admin), 0);
    d = fresh_dir(mh, "attrs");
    CHECK_RC(proxyfs_create(mh, d, "f", 0640, &f), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    if (st != NULL) {
        CHECK(st->ino == f);
        CHECK(st->mode == (S_IFREG | 0640));
        CHECK(st->uid == 1000 && st->gid == 1000);
        CHECK(st->nlink == 1 && st->size == 0);
        CHECK(st->crtim.sec > 0 && st->mtim.sec > 0);
        free(st);
    }
    CHECK_RC(proxyfs_get_stat_path(mh, "/attrs", &st), 0);
    if (st != NULL) {
        CHECK(st->mode == (S_IFDIR | 0755));
        CHECK(st->nlink == 2);
        free(st);
    }
    CHECK_RC(proxyfs_get_stat(mh, 999999, &st), ENOENT);
    CHECK_RC(proxyfs_get_stat_path(mh, "/attrs/none", &st), ENOENT);
    CHECK_RC(proxyfs_get_stat(mh, f, NULL), EINVAL);

    CHECK_RC(proxyfs_type(mh, f, &type), 0);
    CHECK(type == DT_REG);
    CHECK_RC(proxyfs_type(mh, d, &type), 0);
    CHECK(type == DT_DIR);
    CHECK_RC(proxyfs_symlink(mh, d, "l", "f"), 0);
    CHECK_RC(proxyfs_lookup(mh, d, "l", &x), 0);
    CHECK_RC(proxyfs_type(mh, x, &type), 0);
    CHECK(type == DT_LNK);
    CHECK_RC(proxyfs_type(mh, 999999, &type), ENOENT);

    CHECK_RC(proxyfs_chmod(mh, f, 0600 | S_IFDIR), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    CHECK(st != NULL && st->mode == (S_IFREG | 0600));
    free(st);
    CHECK_RC(proxyfs_chmod_path(mh, "/attrs/f", 04755), 0);
    CHECK_RC(proxyfs_get_stat_path(mh, "/attrs/f", &st), 0);
    CHECK(st != NULL && st->mode == (S_IFREG | 04755));
    free(st);
    CHECK_RC(proxyfs_chmod(mh, 999999, 0600), ENOENT);
    CHECK_RC(proxyfs_chmod_path(mh, "/attrs/none", 0600), ENOENT);

    /* Only root gives a file away, or to a group its owner is not in. */
    CHECK_RC(proxyfs_chown(mh, f, 42, (gid_t)-1), EPERM);
    CHECK_RC(proxyfs_chown_path(mh, "/attrs/f", (uid_t)-1, 43), EPERM);
    CHECK_RC(proxyfs_chown(admin, f, 42, (gid_t)-1), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    CHECK(st != NULL && st->uid == 42 && st->gid == 1000);
    /* A change of owner clears setuid, even by root (as Linux). */
    CHECK(st != NULL && st->mode == (S_IFREG | 0755));
    free(st);
    CHECK_RC(proxyfs_chown_path(admin, "/attrs/f", (uid_t)-1, 43), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    CHECK(st != NULL && st->uid == 42 && st->gid == 43);
    free(st);
    CHECK_RC(proxyfs_chown(mh, 999999, 1, 1), ENOENT);
    CHECK_RC(proxyfs_chown_path(mh, "/attrs/none", 1, 1), ENOENT);
    CHECK_RC(proxyfs_chown(admin, f, 1000, 1000), 0); /* back to its owner */

    CHECK_RC(proxyfs_resize(mh, f, 12345), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    CHECK(st != NULL && st->size == 12345);
    free(st);
    CHECK_RC(proxyfs_resize(mh, d, 1), EISDIR);
    CHECK_RC(proxyfs_resize(mh, 999999, 1), ENOENT);

    CHECK_RC(proxyfs_settime(mh, f, &at, &mt), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    CHECK(st != NULL && st->atim.sec == at.sec && st->atim.nsec == at.nsec &&
          st->mtim.sec == mt.sec && st->mtim.nsec == mt.nsec);
    free(st);
    mt.sec = 1200000000;
    CHECK_RC(proxyfs_settime_path(mh, "/attrs/f", NULL, &mt), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    CHECK(st != NULL && st->atim.sec == at.sec && st->mtim.sec == mt.sec);
    free(st);
    at.nsec = 1000000000;
    CHECK_RC(proxyfs_settime(mh, f, &at, NULL), EINVAL);
    CHECK_RC(proxyfs_settime(mh, 999999, NULL, &mt), ENOENT);
    CHECK_RC(proxyfs_settime_path(mh, "/attrs/none", NULL, &mt), ENOENT);

    memset(&sa, 0, sizeof(sa));
    sa.size = 7;
    sa.mode = 0611;
    sa.uid = 7;
    sa.gid = 8;
    sa.atim.sec = 1300000000;
    sa.mtim.sec = 1300000001;
    sa.crtim.sec = 900000000;
    sa.crtim.nsec = 9;
    CHECK_RC(proxyfs_setattr(admin, f, PROXYFS_SETATTR_SIZE | PROXYFS_SETATTR_MODE |
                                           PROXYFS_SETATTR_UID | PROXYFS_SETATTR_GID |
                                           PROXYFS_SETATTR_ATIME | PROXYFS_SETATTR_MTIME |
                                           PROXYFS_SETATTR_CRTIME,
                             &sa, &out),
             0);
    CHECK(out.size == 7 && out.mode == (S_IFREG | 0611) && out.uid == 7 &&
          out.gid == 8 && out.atim.sec == 1300000000 &&
          out.mtim.sec == 1300000001 && out.crtim.sec == 900000000 &&
          out.crtim.nsec == 9);
    sa.crtim.sec = 800000000;
    /* f is uid 7's now: its times are its owner's (or root's) to set. */
    CHECK_RC(proxyfs_setattr_path(mh, "/attrs/f", PROXYFS_SETATTR_CRTIME, &sa, NULL), EPERM);
    CHECK_RC(proxyfs_setattr_path(admin, "/attrs/f", PROXYFS_SETATTR_CRTIME, &sa, NULL), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    CHECK(st != NULL && st->crtim.sec == 800000000 && st->size == 7);
    free(st);
    /* Both times to now: write permission is enough. */
    CHECK_RC(proxyfs_setattr(mh, f, PROXYFS_SETATTR_ATIME_NOW | PROXYFS_SETATTR_MTIME_NOW,
                             &sa, NULL),
             EACCES);
    CHECK_RC(proxyfs_chmod(admin, f, 0666), 0);
    CHECK_RC(proxyfs_setattr(mh, f, PROXYFS_SETATTR_ATIME_NOW | PROXYFS_SETATTR_MTIME_NOW,
                             &sa, &out),
             0);
    CHECK(out.mtim.sec > 1300000001 && out.atim.sec == out.mtim.sec &&
          out.atim.nsec == out.mtim.nsec);
    CHECK_RC(proxyfs_setattr(mh, f, 0x200, &sa, NULL), EINVAL);
    CHECK_RC(proxyfs_setattr(mh, f, PROXYFS_SETATTR_SIZE, NULL, NULL), EINVAL);
    CHECK_RC(proxyfs_setattr(mh, d, PROXYFS_SETATTR_SIZE, &sa, NULL), EISDIR);
    CHECK_RC(proxyfs_setattr(mh, 999999, PROXYFS_SETATTR_MODE, &sa, NULL), ENOENT);
    CHECK_RC(proxyfs_setattr_path(mh, "/attrs/none", PROXYFS_SETATTR_MODE, &sa, NULL),
             ENOENT);

    CHECK_RC(proxyfs_statvfs(mh, &sv), 0);
    if (sv != NULL) {
        CHECK(sv->f_bsize > 0 && sv->f_blocks > 0 && sv->f_bfree <= sv->f_blocks);
        CHECK(sv->f_namemax == 255);
        CHECK(sv->f_files > 0);
        free(sv);
    }
    CHECK_RC(proxyfs_statvfs(mh, NULL), EINVAL);
    CHECK_RC(proxyfs_unmount(mh), 0);
    CHECK_RC(proxyfs_unmount(admin), 0);
}

/* --------------------------------------------------------------- data */

static void test_data(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t d, f;
    uint8_t buf[64], *big, *back;
    size_t n = 0;
    const size_t bigsz = 3u << 20;

    if (mh == NULL)
        return;
    d = fresh_dir(mh, "data");
    CHECK_RC(proxyfs_create(mh, d, "f", 0644, &f), 0);
    CHECK_RC(proxyfs_write(mh, f, 0, (uint8_t *)"hello world", 11, &n), 0);
    CHECK(n == 11);
    CHECK_RC(proxyfs_read(mh, f, 0, 64, buf, sizeof(buf), &n), 0);
    CHECK(n == 11 && memcmp(buf, "hello world", 11) == 0);
    CHECK_RC(proxyfs_read(mh, f, 6, 3, buf, sizeof(buf), &n), 0);
    CHECK(n == 3 && memcmp(buf, "wor", 3) == 0);
    CHECK_RC(proxyfs_read(mh, f, 100, 10, buf, sizeof(buf), &n), 0);
    CHECK(n == 0);
    /* A hole reads as zeros. */
    CHECK_RC(proxyfs_write(mh, f, 20, (uint8_t *)"X", 1, &n), 0);
    CHECK_RC(proxyfs_read(mh, f, 0, 64, buf, sizeof(buf), &n), 0);
    CHECK(n == 21 && buf[11] == 0 && buf[19] == 0 && buf[20] == 'X');
    /* in_length larger than the buffer: limited by the buffer. */
    CHECK_RC(proxyfs_read(mh, f, 0, 1000, buf, 4, &n), 0);
    CHECK(n == 4);
    CHECK_RC(proxyfs_flush(mh, f), 0);
    /* Errors: EBADF for a missing inode, EISDIR for a directory. */
    CHECK_RC(proxyfs_read(mh, 999999, 0, 4, buf, 4, &n), EBADF);
    CHECK_RC(proxyfs_write(mh, 999999, 0, buf, 4, &n), EBADF);
    CHECK_RC(proxyfs_flush(mh, 999999), EBADF);
    CHECK_RC(proxyfs_read(mh, d, 0, 4, buf, 4, &n), EISDIR);
    CHECK_RC(proxyfs_write(mh, d, 0, buf, 4, &n), EISDIR);
    CHECK_RC(proxyfs_read(mh, f, 0, 4, NULL, 4, &n), EINVAL);
    CHECK_RC(proxyfs_write(mh, f, 0, buf, 4, NULL), EINVAL);

    /* Several MiB in one call. */
    big = malloc(bigsz);
    back = malloc(bigsz);
    if (big != NULL && back != NULL) {
        for (size_t i = 0; i < bigsz; i++)
            big[i] = (uint8_t)(i * 7 + (i >> 13));
        CHECK_RC(proxyfs_write(mh, f, 0, big, bigsz, &n), 0);
        CHECK(n == bigsz);
        CHECK_RC(proxyfs_read(mh, f, 0, bigsz, back, bigsz, &n), 0);
        CHECK(n == bigsz && memcmp(big, back, bigsz) == 0);
    }
    free(big);
    free(back);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* Small create/write/read/unlink cycle (also run under valgrind). */
static void test_io_cycle(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t f;
    uint8_t buf[16];
    size_t n;
    struct dirent *de = NULL;
    proxyfs_stat_t *st = NULL;

    if (mh == NULL)
        return;
    proxyfs_unlink_path(mh, "/io-cycle");
    CHECK_RC(proxyfs_create_path(mh, "/io-cycle", 0644, &f), 0);
    CHECK_RC(proxyfs_write(mh, f, 0, (uint8_t *)"cycle", 5, &n), 0);
    CHECK_RC(proxyfs_read(mh, f, 0, 16, buf, sizeof(buf), &n), 0);
    CHECK(n == 5 && memcmp(buf, "cycle", 5) == 0);
    CHECK_RC(proxyfs_readdir_plus(mh, root_ino, -1, &de, &st), 0);
    CHECK(de != NULL && strcmp(de->d_name, ".") == 0);
    free(de);
    free(st);
    CHECK_RC(proxyfs_unlink_path(mh, "/io-cycle"), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* ------------------------------------------------------------- readdir */

static void test_readdir(void)
{
    mount_handle_t *mh = do_mount();
    enum { N = 600 };
    static char seen[N];
    uint64_t d, f, x;
    int64_t loc = -1;
    int count = 0, dots = 0, bad = 0;
    char name[32];

    if (mh == NULL)
        return;
    d = fresh_dir(mh, "rd");
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "f%04d", i);
        if (proxyfs_create(mh, d, name, 0644, &x) != 0)
            bad++;
    }
    CHECK(bad == 0);
    /* readdir: . and .. first, each file exactly once, then the end. */
    memset(seen, 0, sizeof(seen));
    for (;;) {
        struct dirent *de = NULL;
        int rc = proxyfs_readdir(mh, d, loc, &de);

        if (rc != 0) {
            CHECK_RC(rc, 0);
            break;
        }
        if (de == NULL)
            break;
        if (count == 0)
            CHECK(strcmp(de->d_name, ".") == 0 && de->d_ino == d);
        if (count == 1)
            CHECK(strcmp(de->d_name, "..") == 0 && de->d_ino == root_ino);
        if (count < 2) {
            dots++;
            CHECK(de->d_type == DT_DIR);
        } else {
            int i = atoi(de->d_name + 1);

            if (i >= 0 && i < N)
                seen[i]++;
            CHECK(de->d_type == DT_REG);
        }
        loc = de->d_off;
        count++;
        free(de);
        if (count > N + 10)
            break;
    }
    CHECK(dots == 2);
    CHECK(count == N + 2);
    bad = 0;
    for (int i = 0; i < N; i++)
        if (seen[i] != 1)
            bad++;
    CHECK(bad == 0);
    /* After the end, asking again from the last cookie still says end. */
    {
        struct dirent *de = (struct dirent *)1;

        CHECK_RC(proxyfs_readdir(mh, d, loc, &de), 0);
        CHECK(de == NULL);
    }

    /* readdir_plus, removing entries while listing. */
    memset(seen, 0, sizeof(seen));
    loc = -1;
    count = 0;
    bad = 0;
    for (;;) {
        struct dirent *de = NULL;
        proxyfs_stat_t *st = NULL;
        int rc = proxyfs_readdir_plus(mh, d, loc, &de, &st);

        if (rc != 0) {
            CHECK_RC(rc, 0);
            break;
        }
        if (de == NULL) {
            CHECK(st == NULL);
            break;
        }
        if (st == NULL || st->ino != de->d_ino)
            bad++;
        if (count >= 2) {
            int i = atoi(de->d_name + 1);

            if (i >= 0 && i < N)
                seen[i]++;
            if (st == NULL || st->mode != (S_IFREG | 0644))
                bad++;
            /* Remove an entry far ahead, and the one just seen. */
            if (i % 2 == 0 && i + 101 < N) {
                snprintf(name, sizeof(name), "f%04d", i + 101);
                proxyfs_unlink(mh, d, name);
            }
        }
        loc = de->d_off;
        count++;
        free(de);
        free(st);
        if (count > N + 10)
            break;
    }
    CHECK(bad == 0);
    /* Every entry that existed throughout was seen exactly once. */
    bad = 0;
    for (int i = 0; i < N; i++) {
        bool removed = (i >= 101) && ((i - 101) % 2 == 0);

        if (!removed && seen[i] != 1)
            bad++;
        if (seen[i] > 1)
            bad++;
    }
    CHECK(bad == 0);

    /* Errors. */
    {
        struct dirent *de = NULL;
        proxyfs_stat_t *st = NULL;

        CHECK_RC(proxyfs_create(mh, d, "plain", 0644, &f), 0);
        CHECK_RC(proxyfs_readdir(mh, f, -1, &de), ENOTDIR);
        CHECK_RC(proxyfs_readdir_plus(mh, f, -1, &de, &st), ENOTDIR);
        CHECK_RC(proxyfs_readdir(mh, 999999, -1, &de), ENOENT);
        CHECK_RC(proxyfs_readdir_plus(mh, 999999, -1, &de, &st), ENOENT);
        CHECK_RC(proxyfs_readdir(mh, d, -1, NULL), EINVAL);
        CHECK_RC(proxyfs_readdir_plus(mh, d, -1, &de, NULL), EINVAL);
    }
    /* An empty directory: ., .., end. */
    {
        uint64_t e = 0;
        struct dirent *de = NULL;
        int64_t l = -1;
        int c = 0;

        CHECK_RC(proxyfs_mkdir(mh, d, "empty", 0755, &e), 0);
        while (proxyfs_readdir(mh, e, l, &de) == 0 && de != NULL && c < 5) {
            l = de->d_off;
            c++;
            free(de);
        }
        CHECK(c == 2);
    }
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* -------------------------------------------------------------- xattrs */

static void test_xattr(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t d, f;
    char buf[128];
    size_t n = 0;
    uint8_t bin[300];

    if (mh == NULL)
        return;
    d = fresh_dir(mh, "xattr");
    CHECK_RC(proxyfs_create(mh, d, "f", 0644, &f), 0);
    CHECK_RC(proxyfs_list_xattr(mh, f, NULL, 0, &n), 0);
    CHECK(n == 0);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.a", "alpha", 5, 0), 0);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.a", "x", 1, PROXYFS_XATTR_CREATE), EEXIST);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.b", "x", 1, PROXYFS_XATTR_REPLACE), ENODATA);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.b", "beta!", 5, PROXYFS_XATTR_CREATE), 0);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.b", "BETA", 4, PROXYFS_XATTR_REPLACE), 0);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.e", NULL, 0, 0), 0);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.a", "x", 1, 7), EINVAL);
    CHECK_RC(proxyfs_set_xattr(mh, 999999, "user.a", "x", 1, 0), ENOENT);
    for (int i = 0; i < 300; i++)
        bin[i] = (uint8_t)i;
    CHECK_RC(proxyfs_set_xattr_path(mh, "/xattr/f", "user.bin", bin, sizeof(bin), 0), 0);
    CHECK_RC(proxyfs_set_xattr_path(mh, "/xattr/none", "user.bin", bin, 1, 0), ENOENT);

    /* get: size query, ERANGE, value */
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.a", NULL, 0, &n), 0);
    CHECK(n == 5);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.a", buf, 3, &n), ERANGE);
    CHECK(n == 5);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.a", buf, sizeof(buf), &n), 0);
    CHECK(n == 5 && memcmp(buf, "alpha", 5) == 0);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.b", buf, sizeof(buf), &n), 0);
    CHECK(n == 4 && memcmp(buf, "BETA", 4) == 0);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.e", buf, sizeof(buf), &n), 0);
    CHECK(n == 0);
    {
        uint8_t got[300];

        CHECK_RC(proxyfs_get_xattr_path(mh, "/xattr/f", "user.bin", got, sizeof(got), &n), 0);
        CHECK(n == 300 && memcmp(got, bin, 300) == 0);
    }
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.none", buf, sizeof(buf), &n), ENODATA);
    CHECK_RC(proxyfs_get_xattr_path(mh, "/xattr/f", "user.none", buf, sizeof(buf), &n), ENODATA);
    CHECK_RC(proxyfs_get_xattr(mh, 999999, "user.a", buf, sizeof(buf), &n), ENOENT);
    CHECK_RC(proxyfs_get_xattr_path(mh, "/xattr/none", "user.a", buf, sizeof(buf), &n), ENOENT);

    /* list */
    CHECK_RC(proxyfs_list_xattr(mh, f, NULL, 0, &n), 0);
    CHECK(n == strlen("user.a") + strlen("user.b") + strlen("user.e") +
                   strlen("user.bin") + 4);
    CHECK_RC(proxyfs_list_xattr(mh, f, buf, 5, &n), ERANGE);
    CHECK_RC(proxyfs_list_xattr_path(mh, "/xattr/f", buf, sizeof(buf), &n), 0);
    {
        int found = 0;

        for (size_t off = 0; off < n; off += strlen(buf + off) + 1)
            if (strcmp(buf + off, "user.a") == 0 || strcmp(buf + off, "user.b") == 0 ||
                strcmp(buf + off, "user.e") == 0 || strcmp(buf + off, "user.bin") == 0)
                found++;
        CHECK(found == 4);
        CHECK(n > 0 && buf[n - 1] == '\0');
    }
    CHECK_RC(proxyfs_list_xattr(mh, 999999, buf, sizeof(buf), &n), ENOENT);
    CHECK_RC(proxyfs_list_xattr_path(mh, "/xattr/none", buf, sizeof(buf), &n), ENOENT);

    /* remove */
    CHECK_RC(proxyfs_remove_xattr(mh, f, "user.a"), 0);
    CHECK_RC(proxyfs_remove_xattr(mh, f, "user.a"), ENODATA);
    CHECK_RC(proxyfs_remove_xattr_path(mh, "/xattr/f", "user.b"), 0);
    CHECK_RC(proxyfs_remove_xattr_path(mh, "/xattr/f", "user.b"), ENODATA);
    CHECK_RC(proxyfs_remove_xattr(mh, 999999, "user.b"), ENOENT);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.a", buf, sizeof(buf), &n), ENODATA);
    /* On a directory too. */
    CHECK_RC(proxyfs_set_xattr(mh, d, "user.dir", "d", 1, 0), 0);
    CHECK_RC(proxyfs_get_xattr(mh, d, "user.dir", buf, sizeof(buf), &n), 0);
    CHECK(n == 1 && buf[0] == 'd');
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* ----------------------------------------------------- errno, read-only */

static void test_errno_untouched(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t ino;
    proxyfs_stat_t *st;

    if (mh == NULL)
        return;
    errno = 777;
    CHECK_RC(proxyfs_lookup_path(mh, "/definitely-missing", &ino), ENOENT);
    CHECK(errno == 777);
    CHECK_RC(proxyfs_get_stat_path(mh, "/", &st), 0);
    free(st);
    CHECK(errno == 777);
    CHECK(strlen(proxyfs_last_error()) == 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
    CHECK(errno == 777);
}

static void test_read_only(void)
{
    mount_handle_t *mh = NULL;
    uint64_t ino;
    size_t n;

    CHECK_RC(proxyfs_mount("default", PROXYFS_MOUNT_READ_ONLY, "ro", 1, 1, &mh), 0);
    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_create_path(mh, "/ro-file", 0644, &ino), EROFS);
    CHECK_RC(proxyfs_mkdir_path(mh, "/ro-dir", 0755), EROFS);
    CHECK_RC(proxyfs_lookup_path(mh, "/", &ino), 0);
    CHECK_RC(proxyfs_write(mh, ino, 0, (uint8_t *)"x", 1, &n), EROFS);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* ------------------------------------------------------------- threads */

typedef struct {
    mount_handle_t *mh;
    int idx;
    int errors;
} thr_arg_t;

static void *thread_main(void *p)
{
    thr_arg_t *a = p;
    char name[64], data[256], back[256];
    uint64_t dir, f;
    size_t n;

    snprintf(name, sizeof(name), "/threads/t%d", a->idx);
    if (proxyfs_mkdir_path(a->mh, name, 0755) != 0 ||
        proxyfs_lookup_path(a->mh, name, &dir) != 0) {
        a->errors++;
        return NULL;
    }
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "file%d", i);
        snprintf(data, sizeof(data), "thread %d file %d payload", a->idx, i);
        if (proxyfs_create(a->mh, dir, name, 0644, &f) != 0 ||
            proxyfs_write(a->mh, f, 0, (uint8_t *)data, strlen(data), &n) != 0 ||
            n != strlen(data) ||
            proxyfs_read(a->mh, f, 0, sizeof(back), (uint8_t *)back, sizeof(back), &n) != 0 ||
            n != strlen(data) || memcmp(back, data, n) != 0)
            a->errors++;
    }
    {
        int64_t loc = -1;
        int c = 0;
        struct dirent *de;
        proxyfs_stat_t *st;

        while (proxyfs_readdir_plus(a->mh, dir, loc, &de, &st) == 0 && de != NULL) {
            loc = de->d_off;
            c++;
            free(de);
            free(st);
        }
        if (c != 42)
            a->errors++;
    }
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "file%d", i);
        if (proxyfs_unlink(a->mh, dir, name) != 0)
            a->errors++;
    }
    return NULL;
}

/* Runs thread_main in nthreads threads (at most 16) under /threads of
 * mh's volume and checks that none saw an error. */
static void run_threads(mount_handle_t *mh, int nthreads)
{
    pthread_t th[16];
    thr_arg_t args[16];
    int errors = 0;

    CHECK_RC(proxyfs_mkdir_path(mh, "/threads", 0755), 0);
    for (int i = 0; i < nthreads; i++) {
        args[i] = (thr_arg_t){ mh, i, 0 };
        pthread_create(&th[i], NULL, thread_main, &args[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        errors += args[i].errors;
    }
    CHECK(errors == 0);
}

/* 16 threads: twice the library's direct sockets, so that calls also take
 * the pipelined connections when every direct socket is checked out. */
static void test_threads(void)
{
    mount_handle_t *mh = do_mount();

    if (mh == NULL)
        return;
    run_threads(mh, 16);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* A daemon at its max_connections refuses the library's extra sockets
 * (direct sockets, the second pipelined connection) with an EAGAIN reply;
 * every call still succeeds, after back-offs, on the connections it has. */
static void test_max_connections(void)
{
    test_daemon_t d2 = { .bin = daemon_.bin, .server_extra = "max_connections = 4\n" };
    mount_handle_t *mh;

    if (daemon_start(&d2) != 0) {
        CHECK(0);
        daemon_cleanup(&d2);
        return;
    }
    CHECK_RC(proxyfs_set_server(d2.addr), 0);
    mh = do_mount();
    if (mh != NULL) {
        run_threads(mh, 12);
        CHECK_RC(proxyfs_unmount(mh), 0);
    }
    CHECK_RC(proxyfs_set_server(daemon_.addr), 0);
    daemon_cleanup(&d2);
}

/* A daemon with a short idle_timeout closes the library's idle
 * connections; every kind of call still succeeds afterwards, the pool
 * dialing again without an error reaching the caller. */
static void test_idle_timeout(void)
{
    test_daemon_t d2 = { .bin = daemon_.bin, .server_extra = "idle_timeout = \"500ms\"\n" };
    mount_handle_t *mh;

    if (daemon_start(&d2) != 0) {
        CHECK(0);
        daemon_cleanup(&d2);
        return;
    }
    CHECK_RC(proxyfs_set_server(d2.addr), 0);
    mh = do_mount();
    if (mh != NULL) {
        uint64_t f = 0, g = 0, ino = 0;
        uint8_t buf[16];
        size_t n = 0;

        CHECK_RC(proxyfs_create(mh, root_ino, "f", 0644, &f), 0);
        CHECK_RC(proxyfs_write(mh, f, 0, (uint8_t *)"before", 6, &n), 0);
        for (int round = 0; round < 3; round++) {
            char name[16];
            struct dirent *de = NULL;
            proxyfs_stat_t *st = NULL;

            msleep(1500); /* the daemon closes every connection */
            snprintf(name, sizeof name, "g%d", round);
            CHECK_RC(proxyfs_create(mh, root_ino, name, 0644, &g), 0);
            CHECK_RC(proxyfs_lookup(mh, root_ino, name, &ino), 0);
            CHECK(ino == g);
            CHECK_RC(proxyfs_write(mh, g, 0, (uint8_t *)"after", 5, &n), 0);
            CHECK_RC(proxyfs_read(mh, f, 0, sizeof buf, buf, sizeof buf, &n), 0);
            CHECK(n == 6 && memcmp(buf, "before", 6) == 0);
            CHECK_RC(proxyfs_get_stat(mh, g, &st), 0);
            CHECK(st != NULL && st->size == 5);
            free(st);
            st = NULL;
            CHECK_RC(proxyfs_readdir_plus(mh, root_ino, -1, &de, &st), 0);
            free(de);
            free(st);
            CHECK_RC(proxyfs_flush(mh, g), 0);
            CHECK_RC(proxyfs_unlink(mh, root_ino, name), 0);
            msleep(1500);
            CHECK_RC(proxyfs_mkdir(mh, root_ino, name, 0755, &ino), 0);
        }
        CHECK_RC(proxyfs_unmount(mh), 0);
    }
    CHECK_RC(proxyfs_set_server(daemon_.addr), 0);
    daemon_cleanup(&d2);
}

/* --------------------------------------------------------------- async */

enum { ASYNC_N = 64, ASYNC_SZ = 64 * 1024 };
static int async_calls[ASYNC_N];
static int async_total;

static void async_cb(void *id)
{
    int *slot = id;

    __atomic_fetch_add(slot, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&async_total, 1, __ATOMIC_RELAXED);
}

static void test_async(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t f;
    uint8_t *wbuf, *rbuf;
    int status, bad = 0;
    size_t n;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_create_path(mh, "/async", 0644, &f), 0);
    wbuf = malloc((size_t)ASYNC_N * ASYNC_SZ);
    rbuf = calloc(ASYNC_N, ASYNC_SZ);
    if (wbuf == NULL || rbuf == NULL) {
        CHECK(0);
        free(wbuf);
        free(rbuf);
        return;
    }
    for (size_t i = 0; i < (size_t)ASYNC_N * ASYNC_SZ; i++)
        wbuf[i] = (uint8_t)(i ^ (i >> 16));
    memset(async_calls, 0, sizeof(async_calls));
    async_total = 0;
    /* 64 writes in flight. */
    for (int i = 0; i < ASYNC_N; i++)
        CHECK_RC(proxyfs_write_send(mh, f, (uint64_t)i * ASYNC_SZ,
                                    wbuf + (size_t)i * ASYNC_SZ, ASYNC_SZ,
                                    &async_calls[i], async_cb),
                 0);
    /* The same id again while in flight. */
    CHECK_RC(proxyfs_write_send(mh, f, 0, wbuf, 1, &async_calls[0], async_cb), EEXIST);
    for (int i = 0; i < ASYNC_N; i++) {
        int rc = proxyfs_write_recv(&async_calls[i], &status, &n);

        if (rc != 0 || status != 0 || n != ASYNC_SZ)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(async_total == ASYNC_N);
    bad = 0;
    for (int i = 0; i < ASYNC_N; i++)
        if (async_calls[i] != 1)
            bad++;
    CHECK(bad == 0);
    CHECK_RC(proxyfs_write_recv(&async_calls[0], &status, &n), ENOENT);

    /* 64 reads in flight, received in reverse order. */
    async_total = 0;
    for (int i = 0; i < ASYNC_N; i++)
        CHECK_RC(proxyfs_read_send(mh, f, (uint64_t)i * ASYNC_SZ, ASYNC_SZ,
                                   rbuf + (size_t)i * ASYNC_SZ, ASYNC_SZ,
                                   &async_calls[i], async_cb),
                 0);
    bad = 0;
    for (int i = ASYNC_N - 1; i >= 0; i--) {
        int rc = proxyfs_read_recv(&async_calls[i], &status, &n);

        if (rc != 0 || status != 0 || n != ASYNC_SZ)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(memcmp(wbuf, rbuf, (size_t)ASYNC_N * ASYNC_SZ) == 0);
    CHECK(async_total == ASYNC_N);

    /* Errors come through the status. */
    CHECK_RC(proxyfs_read_send(mh, 999999, 0, 10, rbuf, 10, &async_calls[0], async_cb), 0);
    CHECK_RC(proxyfs_read_recv(&async_calls[0], &status, &n), 0);
    CHECK(status == EBADF);
    CHECK_RC(proxyfs_write_send(mh, 999999, 0, wbuf, 10, &async_calls[1], NULL), 0);
    CHECK_RC(proxyfs_read_recv(&async_calls[1], &status, &n), ENOENT); /* not a read */
    CHECK_RC(proxyfs_write_recv(&async_calls[1], &status, &n), 0);
    CHECK(status == EBADF);
    CHECK_RC(proxyfs_read_send(mh, root_ino, 0, 10, rbuf, 10, &async_calls[2], async_cb), 0);
    CHECK_RC(proxyfs_read_recv(&async_calls[2], &status, &n), 0);
    CHECK(status == EISDIR);
    CHECK_RC(proxyfs_read_send(mh, f, 0, 10, NULL, 10, &async_calls[3], async_cb), EINVAL);
    CHECK_RC(proxyfs_read_recv(&async_calls[3], &status, &n), ENOENT);
    CHECK_RC(proxyfs_read_send(mh, f, 0, 10, rbuf, 10, NULL, async_cb), EINVAL);
    /* A request nobody receives is dropped at unmount, after its callback. */
    async_total = 0;
    CHECK_RC(proxyfs_read_send(mh, f, 0, 10, rbuf, 10, &async_calls[4], async_cb), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
    CHECK(async_total == 1);
    CHECK_RC(proxyfs_read_recv(&async_calls[4], &status, &n), ENOENT);
    free(wbuf);
    free(rbuf);
}

/* ------------------------------------------------- binary metadata */

/* lookup, get_stat, create, unlink, readdir_plus and flush of the inode
 * form go over the binary channel: the same answers as the JSON-RPC forms,
 * names of any size, read-only mounts, batches, and a daemon restart
 * (bad_mount -> mount again -> retry). */
static void test_binary_meta(void)
{
    enum { N = 1500 };
    mount_handle_t *mh = do_mount(), *ro = NULL;
    static char big[5001], seen[N];
    uint64_t d, f, x, ino;
    proxyfs_stat_t *a = NULL, *b = NULL, *st = NULL;
    struct dirent *de = NULL;
    int64_t loc = -1;
    int count = 0, bad = 0;
    char name[32];

    if (mh == NULL)
        return;
    d = fresh_dir(mh, "bm");
    CHECK_RC(proxyfs_create(mh, d, "f", 0640, &f), 0);
    /* The binary stat is the JSON-RPC one, field by field. */
    CHECK_RC(proxyfs_get_stat(mh, f, &a), 0);
    CHECK_RC(proxyfs_get_stat_path(mh, "/bm/f", &b), 0);
    CHECK(a != NULL && b != NULL && memcmp(a, b, sizeof(*a)) == 0);
    CHECK(a != NULL && a->ino == f && a->mode == (S_IFREG | 0640) &&
          a->nlink == 1 && a->uid == 1000 && a->gid == 1000 && a->size == 0 &&
          a->crtim.sec > 1600000000);
    free(a);
    free(b);
    CHECK_RC(proxyfs_lookup(mh, d, ".", &ino), 0);
    CHECK(ino == d);
    CHECK_RC(proxyfs_lookup(mh, d, "..", &ino), 0);
    CHECK(ino == root_ino);
    CHECK_RC(proxyfs_lookup(mh, f, "x", &ino), ENOTDIR);
    CHECK_RC(proxyfs_lookup(mh, 999999, "x", &ino), ENOENT);
    CHECK_RC(proxyfs_get_stat(mh, 999999, &st), ENOENT);
    CHECK_RC(proxyfs_unlink(mh, d, "."), EINVAL);
    CHECK_RC(proxyfs_create(mh, d, "..", 0644, &x), EINVAL);
    CHECK_RC(proxyfs_create(mh, d, "a/b", 0644, &x), EINVAL);
    CHECK_RC(proxyfs_flush(mh, f), 0);
    CHECK_RC(proxyfs_flush(mh, 999999), EBADF);
    CHECK_RC(proxyfs_readdir_plus(mh, f, -1, &de, &st), ENOTDIR);
    CHECK_RC(proxyfs_readdir_plus(mh, 999999, -1, &de, &st), ENOENT);
    CHECK(de == NULL && st == NULL);
    /* Names the server takes on the binary channel (up to 4096 bytes, the
     * connection stays usable) and larger ones it would close it for. */
    memset(big, 'n', sizeof(big) - 1);
    big[4096] = '\0';
    CHECK_RC(proxyfs_lookup(mh, d, big, &ino), ENAMETOOLONG);
    CHECK_RC(proxyfs_create(mh, d, big, 0644, &x), ENAMETOOLONG);
    CHECK_RC(proxyfs_unlink(mh, d, big), ENAMETOOLONG);
    big[4096] = 'n';
    CHECK_RC(proxyfs_lookup(mh, d, big, &ino), ENAMETOOLONG);
    CHECK_RC(proxyfs_create(mh, d, big, 0644, &x), ENAMETOOLONG);
    CHECK_RC(proxyfs_unlink(mh, d, big), ENAMETOOLONG);
    CHECK_RC(proxyfs_lookup(mh, d, "f", &ino), 0);
    CHECK(ino == f);
    /* A name of 255 bytes, the largest. */
    big[255] = '\0';
    CHECK_RC(proxyfs_create(mh, d, big, 0600, &x), 0);
    CHECK_RC(proxyfs_lookup(mh, d, big, &ino), 0);
    CHECK(ino == x);
    CHECK_RC(proxyfs_readdir_plus(mh, d, 2, &de, &st), 0); /* after ".." */
    CHECK(de != NULL && strcmp(de->d_name, "f") == 0 && st != NULL && st->ino == f);
    if (de != NULL) {
        free(st);
        loc = de->d_off;
        free(de);
        CHECK_RC(proxyfs_readdir_plus(mh, d, loc, &de, &st), 0);
        CHECK(de != NULL && strlen(de->d_name) == 255 && de->d_ino == x &&
              st != NULL && st->ino == x && st->mode == (S_IFREG | 0600));
        free(de);
        free(st);
    }
    CHECK_RC(proxyfs_unlink(mh, d, big), 0);
    CHECK_RC(proxyfs_lookup(mh, d, big, &ino), ENOENT);

    /* More entries than one batch (1024): each once, with its stat. */
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "e%04d", i);
        if (proxyfs_create(mh, d, name, 0644, &x) != 0)
            bad++;
    }
    CHECK(bad == 0);
    memset(seen, 0, sizeof(seen));
    loc = -1;
    for (;;) {
        int rc = proxyfs_readdir_plus(mh, d, loc, &de, &st), i;

        if (rc != 0) {
            CHECK_RC(rc, 0);
            break;
        }
        if (de == NULL)
            break;
        if (sscanf(de->d_name, "e%04d", &i) == 1 && i >= 0 && i < N) {
            seen[i]++;
            if (st->ino != de->d_ino || de->d_type != DT_REG ||
                st->mode != (S_IFREG | 0644))
                bad++;
        }
        count++;
        loc = de->d_off;
        free(de);
        free(st);
    }
    CHECK(count == N + 3 && bad == 0); /* ., .., f */
    for (int i = 0; i < N; i++)
        if (seen[i] != 1)
            bad++;
    CHECK(bad == 0);

    /* Read-only: create and unlink are EROFS, the rest works. */
    CHECK_RC(proxyfs_mount("default", PROXYFS_MOUNT_READ_ONLY, "ro", 1, 1, &ro), 0);
    if (ro != NULL) {
        CHECK_RC(proxyfs_create(ro, d, "ro", 0644, &x), EROFS);
        CHECK_RC(proxyfs_unlink(ro, d, "f"), EROFS);
        CHECK_RC(proxyfs_lookup(ro, d, "f", &ino), 0);
        CHECK_RC(proxyfs_get_stat(ro, f, &st), 0);
        free(st);
        CHECK_RC(proxyfs_readdir_plus(ro, d, -1, &de, &st), 0);
        free(de);
        free(st);
        CHECK_RC(proxyfs_flush(ro, f), 0);
        CHECK_RC(proxyfs_unmount(ro), 0);
    }

    /* The daemon restarts: every call mounts again and succeeds. */
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK_RC(proxyfs_lookup(mh, d, "f", &ino), 0);
    CHECK(ino == f);
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    CHECK(st != NULL && st->ino == f);
    free(st);
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK_RC(proxyfs_create(mh, d, "after", 0644, &x), 0);
    CHECK_RC(proxyfs_lookup(mh, d, "after", &ino), 0);
    CHECK(ino == x);
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK_RC(proxyfs_flush(mh, x), 0);
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK_RC(proxyfs_readdir_plus(mh, d, -1, &de, &st), 0);
    CHECK(de != NULL && st != NULL && st->ino == d);
    free(de);
    free(st);
    daemon_signal(&daemon_, SIGKILL);
    CHECK(daemon_start(&daemon_) == 0);
    CHECK_RC(proxyfs_unlink(mh, d, "after"), 0);
    CHECK_RC(proxyfs_lookup(mh, d, "after", &ino), ENOENT);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* ------------------------------------------------------------- timeout */

static void test_timeout(void)
{
    mount_handle_t *mh = do_mount();
    proxyfs_stat_t *st = NULL;
    struct dirent *de = NULL;
    uint64_t ino;
    size_t n;
    uint8_t buf[8];
    int status;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_set_timeout(300), 0);
    daemon_signal(&daemon_, SIGSTOP);
    CHECK_RC(proxyfs_lookup_path(mh, "/", &ino), ETIMEDOUT);
    CHECK_RC(proxyfs_read(mh, root_ino, 0, 8, buf, 8, &n), ETIMEDOUT);
    /* Binary metadata calls time out too; their late replies are dropped. */
    CHECK_RC(proxyfs_lookup(mh, root_ino, ".", &ino), ETIMEDOUT);
    CHECK_RC(proxyfs_get_stat(mh, root_ino, &st), ETIMEDOUT);
    CHECK_RC(proxyfs_readdir_plus(mh, root_ino, -1, &de, &st), ETIMEDOUT);
    CHECK(de == NULL && st == NULL);
    CHECK_RC(proxyfs_read_send(mh, root_ino, 0, 8, buf, 8, &status, NULL), 0);
    CHECK_RC(proxyfs_read_recv(&status, &status, &n), 0);
    CHECK(status == ETIMEDOUT);
    daemon_signal(&daemon_, SIGCONT);
    CHECK_RC(proxyfs_set_timeout(0), 0);
    CHECK_RC(proxyfs_lookup_path(mh, "/", &ino), 0);
    CHECK_RC(proxyfs_lookup(mh, root_ino, ".", &ino), 0);
    CHECK(ino == root_ino);
    CHECK_RC(proxyfs_get_stat(mh, root_ino, &st), 0);
    CHECK(st != NULL && st->ino == root_ino);
    free(st);
    CHECK_RC(proxyfs_readdir_plus(mh, root_ino, -1, &de, &st), 0);
    CHECK(de != NULL && st != NULL && strcmp(de->d_name, ".") == 0);
    free(de);
    free(st);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* ---------------------------------------------------------------- kill */

typedef struct {
    mount_handle_t *mh;
    int idx;
    volatile int *stop;
    int errors, ops;
} kill_arg_t;

static void *kill_worker(void *p)
{
    kill_arg_t *a = p;
    char path[64], data[64], back[64];
    uint64_t f;
    size_t n;
    int rc;

    for (int i = 0; !*a->stop; i++) {
        snprintf(path, sizeof(path), "/kill/w%d-%d", a->idx, i);
        snprintf(data, sizeof(data), "worker %d op %d", a->idx, i);
        if ((rc = proxyfs_create_path(a->mh, path, 0644, &f)) != 0 ||
            (rc = proxyfs_write(a->mh, f, 0, (uint8_t *)data, strlen(data), &n)) != 0 ||
            (rc = proxyfs_read(a->mh, f, 0, sizeof(back), (uint8_t *)back,
                               sizeof(back), &n)) != 0 ||
            n != strlen(data) || memcmp(back, data, n) != 0 ||
            (rc = proxyfs_unlink_path(a->mh, path)) != 0) {
            fprintf(stderr, "kill worker %d op %d: rc %d (%s) [%s]\n", a->idx, i,
                    rc, strerror(rc), proxyfs_last_error());
            a->errors++;
        }
        a->ops++;
    }
    return NULL;
}

static void test_kill(void)
{
    enum { W = 4 };
    mount_handle_t *mh = do_mount();
    pthread_t th[W];
    kill_arg_t args[W];
    volatile int stop = 0;
    int errors = 0, ops = 0;
    uint64_t ino;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_mkdir_path(mh, "/kill", 0755), 0);
    for (int i = 0; i < W; i++) {
        args[i] = (kill_arg_t){ mh, i, &stop, 0, 0 };
        pthread_create(&th[i], NULL, kill_worker, &args[i]);
    }
    /* A crash, a clean stop (SIGTERM drains and syncs), a crash. */
    for (int round = 0; round < 3; round++) {
        msleep(300);
        daemon_signal(&daemon_, round == 1 ? SIGTERM : SIGKILL);
        msleep(200);
        CHECK(daemon_start(&daemon_) == 0);
    }
    msleep(300);
    stop = 1;
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        errors += args[i].errors;
        ops += args[i].ops;
    }
    CHECK(errors == 0);
    CHECK(ops > W);
    CHECK_RC(proxyfs_lookup_path(mh, "/kill", &ino), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* Async requests in flight while the daemon dies complete after restart. */
static void test_kill_async(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t f;
    static uint8_t bufs[16][4096];
    int status, bad = 0;
    size_t n;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_create_path(mh, "/kill-async", 0644, &f), 0);
    daemon_signal(&daemon_, SIGKILL);
    memset(async_calls, 0, sizeof(async_calls));
    async_total = 0;
    for (int i = 0; i < 16; i++) {
        memset(bufs[i], 'a' + i, sizeof(bufs[i]));
        CHECK_RC(proxyfs_write_send(mh, f, (uint64_t)i * 4096, bufs[i], 4096,
                                    &async_calls[i], async_cb),
                 0);
    }
    msleep(200);
    CHECK(daemon_start(&daemon_) == 0);
    for (int i = 0; i < 16; i++) {
        int rc = proxyfs_write_recv(&async_calls[i], &status, &n);

        if (rc != 0 || status != 0 || n != 4096)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(async_total == 16);
    {
        uint8_t back[4096];

        CHECK_RC(proxyfs_read(mh, f, 15 * 4096, 4096, back, sizeof(back), &n), 0);
        CHECK(n == 4096 && back[0] == 'a' + 15);
    }
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* ---------------------------------------------------------------- fork */

static void test_fork(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t f, ino;
    pid_t pid;
    int st = 0;

    if (mh == NULL)
        return;
    CHECK_RC(proxyfs_create_path(mh, "/forked-parent", 0644, &f), 0);
    pid = fork();
    if (pid == 0) {
        /* The child: its own connections, the inherited handle. */
        uint64_t c;
        size_t n;
        uint8_t buf[8];
        int bad = 0;

        if (proxyfs_lookup_path(mh, "/forked-parent", &c) != 0 || c != f)
            bad |= 1;
        if (proxyfs_create_path(mh, "/forked-child", 0644, &c) != 0)
            bad |= 2;
        if (proxyfs_write(mh, c, 0, (uint8_t *)"kid", 3, &n) != 0 ||
            proxyfs_read(mh, c, 0, 8, buf, 8, &n) != 0 || n != 3)
            bad |= 4;
        if (proxyfs_unmount(mh) != 0)
            bad |= 8;
        _exit(bad);
    }
    CHECK(pid > 0);
    /* The parent keeps working meanwhile. */
    for (int i = 0; i < 20; i++)
        CHECK_RC(proxyfs_lookup_path(mh, "/forked-parent", &ino), 0);
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_RC(proxyfs_lookup_path(mh, "/forked-child", &ino), 0);
    /* The child's unmount is its own: this handle still works. */
    {
        proxyfs_stat_t *st = NULL;

        CHECK_RC(proxyfs_get_stat_path(mh, "/forked-child", &st), 0);
        CHECK(st != NULL && st->size == 3);
        free(st);
    }
    CHECK_RC(proxyfs_unmount(mh), 0);
}


/* ---------------------------------------------------- lost replies */

/* A TCP proxy between the library and proxyfsd that can drop the next
 * replies: the daemon has done the work, the client never hears of it and
 * must retry. This checks the retry rules for non-idempotent calls. A hook
 * runs when a reply is dropped, before the connection is closed (so before
 * the library can retry): another client acting in between. kill breaks
 * every connection that carries a request containing that string, so that
 * such requests are lost in flight again and again. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static struct {
    int lfd, port;
    volatile int stop;
    int drop; /* replies still to drop (atomic) */
    void (*hook)(void); /* run (once) at the next drop */
    const char *kill;   /* requests to lose, or NULL */
    int pairs[32][2];
    int npairs;
    pthread_t th;
} px;

static int px_connect_daemon(void)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)daemon_.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void px_close(int i)
{
    close(px.pairs[i][0]);
    close(px.pairs[i][1]);
    px.pairs[i][0] = px.pairs[i][1] = -1;
}

static void *px_main(void *arg)
{
    char buf[65536];

    (void)arg;
    while (!px.stop) {
        struct pollfd pf[65];
        int n = 0, map[65][2];

        pf[n].fd = px.lfd;
        pf[n].events = POLLIN;
        map[n][0] = -1;
        n++;
        for (int i = 0; i < px.npairs; i++) {
            if (px.pairs[i][0] < 0)
                continue;
            for (int side = 0; side < 2; side++) {
                pf[n].fd = px.pairs[i][side];
                pf[n].events = POLLIN;
                map[n][0] = i;
                map[n][1] = side;
                n++;
            }
        }
        if (poll(pf, (nfds_t)n, 100) <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            int c = accept(px.lfd, NULL, NULL), s = c >= 0 ? px_connect_daemon() : -1;

            int slot = -1;

            /* A slot of a closed pair is used again. */
            for (int i = 0; i < px.npairs && slot < 0; i++)
                if (px.pairs[i][0] < 0)
                    slot = i;
            if (slot < 0 && px.npairs < 32)
                slot = px.npairs;
            if (c >= 0 && s >= 0 && slot >= 0) {
                px.pairs[slot][0] = c;
                px.pairs[slot][1] = s;
                if (slot == px.npairs)
                    px.npairs++;
            } else {
                if (c >= 0)
                    close(c);
                if (s >= 0)
                    close(s);
            }
        }
        for (int k = 1; k < n; k++) {
            int i = map[k][0], side = map[k][1];
            const char *kill;
            ssize_t r;

            if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)) || px.pairs[i][0] < 0)
                continue;
            r = read(px.pairs[i][side], buf, sizeof(buf));
            if (r <= 0) {
                px_close(i);
                continue;
            }
            if (side == 1 && __atomic_load_n(&px.drop, __ATOMIC_SEQ_CST) > 0) {
                void (*hook)(void) = __atomic_exchange_n(&px.hook, NULL,
                                                         __ATOMIC_SEQ_CST);

                __atomic_fetch_sub(&px.drop, 1, __ATOMIC_SEQ_CST);
                if (hook != NULL)
                    hook();
                px_close(i); /* the reply is lost with the connection */
                continue;
            }
            if (side == 0 && (kill = __atomic_load_n(&px.kill, __ATOMIC_SEQ_CST)) != NULL &&
                memmem(buf, (size_t)r, kill, strlen(kill)) != NULL) {
                px_close(i); /* the request is lost with the connection */
                continue;
            }
            if (write(px.pairs[i][1 - side], buf, (size_t)r) != r)
                px_close(i);
        }
    }
    for (int i = 0; i < px.npairs; i++)
        if (px.pairs[i][0] >= 0)
            px_close(i);
    return NULL;
}

static int px_start(char *addr, size_t len)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    memset(&px, 0, sizeof(px));
    px.lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(px.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(px.lfd, 16) != 0 ||
        getsockname(px.lfd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    px.port = ntohs(sa.sin_port);
    snprintf(addr, len, "127.0.0.1:%d", px.port);
    return pthread_create(&px.th, NULL, px_main, NULL);
}

static void px_stop(void)
{
    px.stop = 1;
    pthread_join(px.th, NULL);
    close(px.lfd);
}

static void drop_next_reply(void)
{
    __atomic_store_n(&px.drop, 1, __ATOMIC_SEQ_CST);
}

static void test_lost_reply(void)
{
    mount_handle_t *mh;
    char addr[64];
    uint64_t d, f, x, ino;
    size_t n;
    uint8_t buf[16];
    char val[8];
    const char *t = NULL;

    if (px_start(addr, sizeof(addr)) != 0) {
        CHECK(0);
        return;
    }
    CHECK_RC(proxyfs_set_server(addr), 0);
    mh = do_mount();
    if (mh == NULL) {
        px_stop();
        proxyfs_set_server(daemon_.addr);
        return;
    }
    d = fresh_dir(mh, "lost");
    /* Each call's first reply is lost: the daemon did the work, the retry
     * sees EEXIST/ENOENT/ENODATA of its own first attempt, the caller sees
     * success. */
    drop_next_reply();
    CHECK_RC(proxyfs_create(mh, d, "f", 0644, &f), 0);
    CHECK_RC(proxyfs_lookup(mh, d, "f", &ino), 0);
    CHECK(ino == f);
    drop_next_reply();
    CHECK_RC(proxyfs_create_path(mh, "/lost/g", 0644, &x), 0);
    CHECK_RC(proxyfs_lookup_path(mh, "/lost/g", &ino), 0);
    CHECK(ino == x);
    drop_next_reply();
    CHECK_RC(proxyfs_mkdir(mh, d, "sub", 0755, &x), 0);
    CHECK_RC(proxyfs_lookup(mh, d, "sub", &ino), 0);
    CHECK(ino == x);
    drop_next_reply();
    CHECK_RC(proxyfs_mkdir_path(mh, "/lost/sub2", 0755), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_symlink(mh, d, "ln", "f"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_symlink_path(mh, "/lost/ln2", "g"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_read_symlink_path(mh, "/lost/ln2", &t), 0);
    CHECK(t != NULL && strcmp(t, "g") == 0);
    free((void *)t);
    drop_next_reply();
    CHECK_RC(proxyfs_link(mh, d, "f2", f), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_link_path(mh, "/lost/f", "/lost/f3"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_write(mh, f, 0, (uint8_t *)"data", 4, &n), 0);
    CHECK(n == 4);
    drop_next_reply();
    CHECK_RC(proxyfs_read(mh, f, 0, 16, buf, sizeof(buf), &n), 0);
    CHECK(n == 4 && memcmp(buf, "data", 4) == 0);
    drop_next_reply();
    CHECK_RC(proxyfs_rename(mh, d, "f2", d, "f4"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_rename_path(mh, "/lost/f3", "/lost/f5"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_unlink(mh, d, "f4"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_unlink_path(mh, "/lost/f5"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_rmdir(mh, d, "sub"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_rmdir_path(mh, "/lost/sub2"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.x", "v", 1, PROXYFS_XATTR_CREATE), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.x", val, sizeof(val), &n), 0);
    CHECK(n == 1 && val[0] == 'v');
    drop_next_reply();
    CHECK_RC(proxyfs_remove_xattr(mh, f, "user.x"), 0);
    {
        proxyfs_stat_t *st = NULL;
        struct dirent *de = NULL;

        drop_next_reply();
        CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
        CHECK(st != NULL && st->nlink == 1 && st->size == 4);
        free(st);
        drop_next_reply();
        CHECK_RC(proxyfs_flush(mh, f), 0);
        drop_next_reply();
        CHECK_RC(proxyfs_readdir_plus(mh, d, -1, &de, &st), 0);
        CHECK(de != NULL && strcmp(de->d_name, ".") == 0 && st != NULL &&
              st->ino == d);
        free(de);
        free(st);
    }
    /* Genuine errors are still reported when nothing was lost. */
    CHECK_RC(proxyfs_create(mh, d, "f", 0644, &x), EEXIST);
    CHECK_RC(proxyfs_unlink(mh, d, "nope"), ENOENT);
    /* A request lost again and again fails with EIO. */
    __atomic_store_n(&px.drop, 1000, __ATOMIC_SEQ_CST);
    CHECK_RC(proxyfs_lookup(mh, d, "f", &ino), EIO);
    CHECK_RC(proxyfs_write(mh, f, 0, (uint8_t *)"data", 4, &n), EIO);
    __atomic_store_n(&px.drop, 0, __ATOMIC_SEQ_CST);
    CHECK_RC(proxyfs_lookup(mh, d, "f", &ino), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
    px_stop();
    CHECK_RC(proxyfs_set_server(daemon_.addr), 0);
}

/* Other clients of the daemon: their own JSON-RPC connection straight to
 * proxyfsd, not through the proxy, with two mounts, one as the tests' user
 * (uid and gid 1000, say another process of the same user) and one as
 * another user (2000). The proxy's hooks use them while the library waits
 * for a reply that is lost. */
static struct {
    int fd;
    uint64_t mount_id; /* the mount oc_call uses */
    uint64_t same, other;
    unsigned id;
} oc = { -1, 0, 0, 0, 0 };

/* Sends method with the params members pfmt (without braces; the current
 * mount_id is added, if any) and returns the reply's errno, 0 for a result.
 * A mount's id goes to *mid. */
static int oc_call(uint64_t *mid, const char *method, const char *pfmt, ...)
    __attribute__((format(printf, 3, 4)));
static int oc_call(uint64_t *mid, const char *method, const char *pfmt, ...)
{
    char params[512], body[1024], msg[1200], rbuf[4096];
    size_t have = 0, need = 0;
    const char *p;
    va_list ap;
    int n;

    va_start(ap, pfmt);
    vsnprintf(params, sizeof(params), pfmt, ap);
    va_end(ap);
    n = snprintf(body, sizeof(body),
                 "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"%s\","
                 "\"params\":{",
                 ++oc.id, method);
    if (oc.mount_id != 0)
        n += snprintf(body + n, sizeof(body) - (size_t)n, "\"mount_id\":%llu%s",
                      (unsigned long long)oc.mount_id, params[0] ? "," : "");
    n += snprintf(body + n, sizeof(body) - (size_t)n, "%s}}", params);
    n = snprintf(msg, sizeof(msg), "Content-Length: %d\r\n\r\n%s", n, body);
    if (write(oc.fd, msg, (size_t)n) != n)
        return EIO;
    for (;;) {
        ssize_t r;
        char *e;

        if (need == 0 && (e = memmem(rbuf, have, "\r\n\r\n", 4)) != NULL) {
            p = memmem(rbuf, have, "Content-Length:", 15);
            if (p == NULL)
                return EIO;
            need = (size_t)(e - rbuf) + 4 + strtoul(p + 15, NULL, 10);
            if (need >= sizeof(rbuf))
                return EIO;
        }
        if (need != 0 && have >= need)
            break;
        r = read(oc.fd, rbuf + have, sizeof(rbuf) - 1 - have);
        if (r <= 0)
            return EIO;
        have += (size_t)r;
    }
    rbuf[need] = '\0';
    if ((p = strstr(rbuf, "\"errno\":")) != NULL)
        return atoi(p + 8);
    if (mid != NULL && (p = strstr(rbuf, "\"mount_id\":")) != NULL)
        *mid = strtoull(p + 11, NULL, 10);
    return 0;
}

static int oc_open(void)
{
    oc.fd = px_connect_daemon();
    oc.mount_id = oc.same = oc.other = 0;
    if (oc.fd < 0)
        return -1;
    oc_call(&oc.same, "mount", "\"volume\":\"default\",\"uid\":1000,\"gid\":1000");
    oc_call(&oc.other, "mount", "\"volume\":\"default\",\"uid\":2000,\"gid\":2000");
    return oc.same != 0 && oc.other != 0 ? 0 : -1;
}

static void oc_close(void)
{
    if (oc.fd >= 0) {
        if ((oc.mount_id = oc.same) != 0)
            oc_call(NULL, "unmount", "%s", "");
        if ((oc.mount_id = oc.other) != 0)
            oc_call(NULL, "unmount", "%s", "");
        close(oc.fd);
    }
    oc.fd = -1;
}

/* The other clients' steps, each run by the proxy after the daemon ran the
 * library's call and before the library can retry it. */
static int oc_rc; /* their errors, all expected 0 */

static void oc_file_to_dir(void) /* "a": a directory instead */
{
    oc.mount_id = oc.same;
    oc_rc |= oc_call(NULL, "unlink_path", "\"path\":\"/other/a\"");
    oc_rc |= oc_call(NULL, "mkdir_path", "\"path\":\"/other/a\",\"mode\":420");
}

static void oc_owner(void) /* "b": another user's file, same mode */
{
    oc.mount_id = oc.other;
    oc_rc |= oc_call(NULL, "unlink_path", "\"path\":\"/other/b\"");
    oc_rc |= oc_call(NULL, "create_path", "\"path\":\"/other/b\",\"mode\":420");
}

static void oc_perm(void) /* "b2": a file of another mode */
{
    oc.mount_id = oc.same;
    oc_rc |= oc_call(NULL, "unlink_path", "\"path\":\"/other/b2\"");
    oc_rc |= oc_call(NULL, "create_path", "\"path\":\"/other/b2\",\"mode\":384");
}

static void oc_dir_to_file(void) /* "c": a file instead */
{
    oc.mount_id = oc.same;
    oc_rc |= oc_call(NULL, "rmdir_path", "\"path\":\"/other/c\"");
    oc_rc |= oc_call(NULL, "create_path", "\"path\":\"/other/c\",\"mode\":493");
}

static void oc_dir_owner(void) /* "d": another user's directory */
{
    oc.mount_id = oc.other;
    oc_rc |= oc_call(NULL, "rmdir_path", "\"path\":\"/other/d\"");
    oc_rc |= oc_call(NULL, "mkdir_path", "\"path\":\"/other/d\",\"mode\":493");
}

static void oc_retarget(void) /* "s": a symlink to elsewhere */
{
    oc.mount_id = oc.same;
    oc_rc |= oc_call(NULL, "unlink_path", "\"path\":\"/other/s\"");
    oc_rc |= oc_call(NULL, "symlink_path",
                     "\"path\":\"/other/s\",\"target\":\"elsewhere\"");
}

static void oc_relink(void) /* "l": another file */
{
    oc.mount_id = oc.same;
    oc_rc |= oc_call(NULL, "unlink_path", "\"path\":\"/other/l\"");
    oc_rc |= oc_call(NULL, "create_path", "\"path\":\"/other/l\",\"mode\":420");
}

static void oc_xattr(void) /* user.x of "f": another value */
{
    oc.mount_id = oc.same;
    oc_rc |= oc_call(NULL, "set_xattr_path",
                     "\"path\":\"/other/f\",\"name\":\"user.x\",\"value\":\"b3RoZXI=\"");
}

static void oc_unlink_dst(void) /* "r2" is removed */
{
    oc.mount_id = oc.same;
    oc_rc |= oc_call(NULL, "unlink_path", "\"path\":\"/other/r2\"");
}

static void oc_mkdir_u(void) /* "u": a directory */
{
    oc.mount_id = oc.same;
    oc_rc |= oc_call(NULL, "mkdir_path", "\"path\":\"/other/u\",\"mode\":493");
}

static void oc_lose_checks(void) /* the checks are lost in flight */
{
    __atomic_store_n(&px.kill, "\"get_stat_path\"", __ATOMIC_SEQ_CST);
}

/* Drops the next reply after the daemon executed the call, with hook run
 * before the library can retry. */
static void drop_next_reply_with(void (*hook)(void))
{
    __atomic_store_n(&px.hook, hook, __ATOMIC_SEQ_CST);
    __atomic_store_n(&px.drop, 1, __ATOMIC_SEQ_CST);
}

/* PROTOCOL.md, "Retries": a non-idempotent call executed by the daemon
 * whose reply was lost is retried; the retry's EEXIST/ENOENT is success
 * only when the server's state is what the call made, its errno when
 * another client made something else in between, and EIO when the check
 * cannot be made. */
static void test_uncertain_check(void)
{
    mount_handle_t *mh;
    char addr[64], val[16];
    uint64_t d, x = 0, ino = 0, f;
    proxyfs_stat_t *st = NULL;
    const char *t = NULL;
    size_t n;

    if (px_start(addr, sizeof(addr)) != 0) {
        CHECK(0);
        return;
    }
    CHECK_RC(proxyfs_set_server(addr), 0);
    mh = do_mount();
    if (mh == NULL || oc_open() != 0) {
        CHECK(0);
        if (mh != NULL)
            proxyfs_unmount(mh);
        oc_close();
        px_stop();
        proxyfs_set_server(daemon_.addr);
        return;
    }
    d = fresh_dir(mh, "other");
    /* The other user (2000) works in it too. */
    CHECK_RC(proxyfs_chmod(mh, d, 0777), 0);
    oc_rc = 0;

    /* The state is what the call made: success, with the inode made. */
    drop_next_reply();
    CHECK_RC(proxyfs_create(mh, d, "ok", 0640, &x), 0);
    CHECK_RC(proxyfs_lookup(mh, d, "ok", &ino), 0);
    CHECK(x == ino && x != 0);
    drop_next_reply();
    CHECK_RC(proxyfs_symlink_path(mh, "/other/okl", "ok"), 0);
    drop_next_reply();
    CHECK_RC(proxyfs_rename_path(mh, "/other/okl", "/other/okl2"), 0);

    /* create: another client replaced the file by a directory. */
    drop_next_reply_with(oc_file_to_dir);
    x = 0;
    CHECK_RC(proxyfs_create(mh, d, "a", 0644, &x), EEXIST);
    CHECK(x == 0);
    CHECK_RC(proxyfs_get_stat_path(mh, "/other/a", &st), 0);
    CHECK(st != NULL && (st->mode & S_IFMT) == S_IFDIR);
    free(st);
    st = NULL;
    /* create_path: another user's file of the same mode. */
    drop_next_reply_with(oc_owner);
    CHECK_RC(proxyfs_create_path(mh, "/other/b", 0644, &x), EEXIST);
    /* create_path: a file of other permission bits. */
    drop_next_reply_with(oc_perm);
    CHECK_RC(proxyfs_create_path(mh, "/other/b2", 0644, &x), EEXIST);
    /* mkdir: a file. */
    drop_next_reply_with(oc_dir_to_file);
    CHECK_RC(proxyfs_mkdir(mh, d, "c", 0755, &x), EEXIST);
    /* mkdir_path: another user's directory of the same mode. */
    drop_next_reply_with(oc_dir_owner);
    CHECK_RC(proxyfs_mkdir_path(mh, "/other/d", 0755), EEXIST);
    /* symlink: the same name points elsewhere. */
    drop_next_reply_with(oc_retarget);
    CHECK_RC(proxyfs_symlink(mh, d, "s", "ok"), EEXIST);
    CHECK_RC(proxyfs_read_symlink_path(mh, "/other/s", &t), 0);
    CHECK(t != NULL && strcmp(t, "elsewhere") == 0);
    free((void *)t);
    /* link: the name is another file. */
    CHECK_RC(proxyfs_create(mh, d, "f", 0644, &f), 0);
    drop_next_reply_with(oc_relink);
    CHECK_RC(proxyfs_link(mh, d, "l", f), EEXIST);
    CHECK_RC(proxyfs_lookup(mh, d, "l", &ino), 0);
    CHECK(ino != f);
    /* set_xattr XATTR_CREATE: the attribute has another value. */
    drop_next_reply_with(oc_xattr);
    CHECK_RC(proxyfs_set_xattr(mh, f, "user.x", "mine", 4, PROXYFS_XATTR_CREATE),
             EEXIST);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.x", val, sizeof(val), &n), 0);
    CHECK(n == 5 && memcmp(val, "other", 5) == 0);
    /* rename: the destination was removed. */
    CHECK_RC(proxyfs_create(mh, d, "r1", 0644, &x), 0);
    drop_next_reply_with(oc_unlink_dst);
    CHECK_RC(proxyfs_rename(mh, d, "r1", d, "r2"), ENOENT);
    /* unlink: a directory of another client is not removed. */
    CHECK_RC(proxyfs_create(mh, d, "u", 0644, &x), 0);
    drop_next_reply_with(oc_mkdir_u);
    CHECK_RC(proxyfs_unlink(mh, d, "u"), EISDIR);
    CHECK_RC(proxyfs_get_stat_path(mh, "/other/u", &st), 0);
    CHECK(st != NULL && (st->mode & S_IFMT) == S_IFDIR);
    free(st);
    st = NULL;
    /* The check cannot be made (its requests are lost): EIO. */
    drop_next_reply_with(oc_lose_checks);
    CHECK_RC(proxyfs_create_path(mh, "/other/e", 0644, &x), EIO);
    __atomic_store_n(&px.kill, NULL, __ATOMIC_SEQ_CST);
    CHECK_RC(proxyfs_lookup_path(mh, "/other/e", &ino), 0);
    CHECK(oc_rc == 0);

    CHECK_RC(proxyfs_unmount(mh), 0);
    oc_close();
    px_stop();
    CHECK_RC(proxyfs_set_server(daemon_.addr), 0);
}

/* -------------------------------------------------- case-insensitive */

/* proxyfs_lookup_ci: the real name, inode and stat; the exact name first,
 * else the first in byte order; ENOENT; optional outputs; errno kept. */
static void test_lookup_ci(void)
{
    mount_handle_t *mh = do_mount();
    uint64_t dir, f, g, ino = 0;
    proxyfs_stat_t st;
    char *name = NULL;
    char long_name[5000];

    if (mh == NULL)
        return;
    dir = fresh_dir(mh, "ci");
    CHECK_RC(proxyfs_create(mh, dir, "Élan.TXT", 0640, &f), 0);
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "élan.txt", &name, &ino, &st), 0);
    CHECK(name != NULL && strcmp(name, "Élan.TXT") == 0);
    CHECK(ino == f && st.ino == f && st.mode == (S_IFREG | 0640) && st.nlink == 1);
    free(name);
    name = NULL;
    CHECK_RC(proxyfs_lookup_ci(mh, root_ino, "CI", &name, &ino, NULL), 0);
    CHECK(name != NULL && strcmp(name, "ci") == 0 && ino == dir);
    free(name);
    name = NULL;
    /* Only the status: every output may be NULL. */
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "ÉLAN.txt", NULL, NULL, NULL), 0);
    /* A second name folding alike: exact first, else byte order. */
    CHECK_RC(proxyfs_create(mh, dir, "élan.txt", 0600, &g), 0);
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "élan.txt", &name, &ino, NULL), 0);
    CHECK(name != NULL && strcmp(name, "élan.txt") == 0 && ino == g);
    free(name);
    name = NULL;
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "ÉLAN.TXT", &name, &ino, NULL), 0);
    CHECK(name != NULL && strcmp(name, "Élan.TXT") == 0 && ino == f);
    free(name);
    name = NULL;
    /* Rename changing only the case, unlink one of the two. */
    CHECK_RC(proxyfs_rename(mh, dir, "Élan.TXT", dir, "ÉLAN.TXT"), 0);
    CHECK_RC(proxyfs_unlink(mh, dir, "élan.txt"), 0);
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "élan.txt", &name, &ino, NULL), 0);
    CHECK(name != NULL && strcmp(name, "ÉLAN.TXT") == 0 && ino == f);
    free(name);
    name = NULL;
    /* Misses and errors leave the outputs alone and errno untouched. */
    errno = 777;
    ino = 42;
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "elan.txt", &name, &ino, &st), ENOENT);
    CHECK(name == NULL && ino == 42 && errno == 777);
    CHECK_RC(proxyfs_lookup_ci(mh, f, "x", &name, &ino, &st), ENOTDIR);
    CHECK_RC(proxyfs_lookup_ci(mh, 987654321, "x", &name, &ino, &st), ENOENT);
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "a/b", &name, &ino, &st), EINVAL);
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "", &name, &ino, &st), EINVAL);
    CHECK_RC(proxyfs_lookup_ci(mh, dir, NULL, &name, &ino, &st), EINVAL);
    CHECK_RC(proxyfs_lookup_ci(NULL, dir, "x", &name, &ino, &st), EINVAL);
    memset(long_name, 'x', 300);
    long_name[300] = '\0';
    CHECK_RC(proxyfs_lookup_ci(mh, dir, long_name, &name, &ino, &st), ENAMETOOLONG);
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    CHECK_RC(proxyfs_lookup_ci(mh, dir, long_name, &name, &ino, &st), ENAMETOOLONG);
    CHECK(name == NULL && ino == 42 && errno == 777);
    /* The connection is still good after the errors. */
    CHECK_RC(proxyfs_lookup_ci(mh, dir, "élan.TXT", NULL, &ino, NULL), 0);
    CHECK(ino == f);
    CHECK_RC(proxyfs_unmount(mh), 0);
}

/* ------------------------------------------------------------------ main */

/* tests/handles.c */
void handles_tests(test_daemon_t *d);
static void test_handles(void) { handles_tests(&daemon_); }
/* tests/servers.c */
void servers_tests(test_daemon_t *d);
static void test_servers(void) { servers_tests(&daemon_); }
/* tests/cancel.c */
void cancel_tests(test_daemon_t *d);
static void test_cancel(void) { cancel_tests(&daemon_); }
/* tests/locks.c */
void locks_tests(test_daemon_t *d);
static void test_locks(void) { locks_tests(&daemon_); }

void identity_tests(test_daemon_t *d);
static void test_identity(void) { identity_tests(&daemon_); }
/* tests/token.c: its own daemon, which only tokens get into */
void token_tests(const char *bin);
static void test_token(void) { token_tests(daemon_.bin); }
/* tests/tls.c: its own daemon with a TLS listener and client certificates */
void tls_tests(const char *bin);
static void test_tls(void) { tls_tests(daemon_.bin); }

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    { "mount_cycle", test_mount_cycle },
    { "mount_enodev", test_mount_enodev },
    { "io_cycle", test_io_cycle },
    { "namespace", test_namespace },
    { "attrs", test_attrs },
    { "data", test_data },
    { "readdir", test_readdir },
    { "xattr", test_xattr },
    { "errno_untouched", test_errno_untouched },
    { "read_only", test_read_only },
    { "threads", test_threads },
    { "max_connections", test_max_connections },
    { "idle_timeout", test_idle_timeout },
    { "async", test_async },
    { "binary_meta", test_binary_meta },
    { "timeout", test_timeout },
    { "kill", test_kill },
    { "kill_async", test_kill_async },
    { "fork", test_fork },
    { "lost_reply", test_lost_reply },
    { "uncertain_check", test_uncertain_check },
    { "handles", test_handles },
    { "lookup_ci", test_lookup_ci },
    { "servers", test_servers },
    { "cancel", test_cancel },
    { "locks", test_locks },
    { "identity", test_identity },
    { "token", test_token },
    { "tls", test_tls },
};

int main(int argc, char **argv)
{
    const char *bin = getenv("PROXYFSD");
    size_t ntests = sizeof(tests) / sizeof(tests[0]);
    int skipped = 0;

    if (bin == NULL || bin[0] == '\0') {
        printf("integration: PROXYFSD not set, %zu tests skipped\n", ntests);
        printf("0 passed, 0 failed, %zu skipped\n", ntests);
        return 0;
    }
    daemon_.bin = bin;
    if (daemon_start(&daemon_) != 0) {
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
        if (daemon_.pid == 0 && daemon_start(&daemon_) != 0) {
            fprintf(stderr, "cannot restart proxyfsd\n");
            t_fail++;
            break;
        }
        tests[i].fn();
        printf("%-16s %s\n", tests[i].name, t_fail == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    daemon_cleanup(&daemon_);
    printf("%d passed, %d failed, %d skipped\n", t_pass, t_fail, skipped);
    return t_fail == 0 ? 0 : 1;
}
