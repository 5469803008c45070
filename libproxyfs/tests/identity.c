/* identity.c - per-call identity: proxyfs_mount_groups and the per-thread
 * identity (proxyfs_set_thread_identity), against a real proxyfsd. The
 * suite runs as root, which the daemon lets act as anyone (a gateway, as
 * smbd); every call of a thread with an identity is checked as it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../proxyfs.h"
#include "harness.h"

#define ALICE 1000
#define BOB 1001

static const gid_t bob_groups[] = { 100 };

static void *root_reader(void *arg)
{
    /* A new thread has no identity: the handle's (root). */
    mount_handle_t *mh = ((void **)arg)[0];
    uint64_t ino = *(uint64_t *)((void **)arg)[1];
    uint8_t buf[8];
    size_t n = 0;

    CHECK_RC(proxyfs_read(mh, ino, 0, sizeof(buf), buf, sizeof(buf), &n), 0);
    CHECK(n == 6);
    return NULL;
}

static volatile int async_done_count;

static void done_cb(void *id)
{
    (void)id;
    __atomic_fetch_add(&async_done_count, 1, __ATOMIC_RELAXED);
}

void identity_tests(test_daemon_t *d)
{
    const gid_t many[33] = { 0 };
    const gid_t root_groups[] = { 100, 200 };
    mount_handle_t *mh = NULL, *bad = (mount_handle_t *)1;
    uint64_t dir = 0, f = 0, priv = 0, ino;
    proxyfs_stat_t *st = NULL;
    uint8_t buf[8];
    size_t n = 0;
    int status = -1, saved;
    struct dirent *de = NULL;

    (void)d;
    /* Mount with supplementary groups; errors. */
    CHECK_RC(proxyfs_mount_groups(NULL, "default", 0, "gw", 0, 0, 33, many, &bad), EINVAL);
    CHECK(bad == NULL);
    CHECK_RC(proxyfs_mount_groups(NULL, "default", 0, "gw", 0, 0, 1, NULL, &bad), EINVAL);
    CHECK_RC(proxyfs_mount_groups(NULL, "default", 0, "gw", 0, 0, 2, root_groups, &mh), 0);
    if (mh == NULL)
        return;
    saved = errno = 1234;
    CHECK_RC(proxyfs_set_thread_identity(1, 1, 33, many), EINVAL);
    CHECK_RC(proxyfs_set_thread_identity(1, 1, 1, NULL), EINVAL);
    CHECK(errno == saved);

    CHECK_RC(proxyfs_mkdir_path(mh, "/ident", 0777), 0);
    CHECK_RC(proxyfs_lookup_path(mh, "/ident", &dir), 0);
    CHECK_RC(proxyfs_chmod(mh, dir, 0777), 0);

    /* alice creates a 0600 file: hers. */
    CHECK_RC(proxyfs_set_thread_identity(ALICE, ALICE, 0, NULL), 0);
    CHECK_RC(proxyfs_create(mh, dir, "alice", 0600, &f), 0);      /* binary */
    CHECK_RC(proxyfs_write(mh, f, 0, (uint8_t *)"secret", 6, &n), 0);
    CHECK_RC(proxyfs_get_stat(mh, f, &st), 0);
    if (st != NULL) {
        CHECK(st->uid == ALICE && st->gid == ALICE);
        free(st);
        st = NULL;
    }
    CHECK_RC(proxyfs_mkdir(mh, dir, "private", 0700, &priv), 0);   /* JSON */
    for (int i = 0; i < 3; i++) {
        char name[16];

        snprintf(name, sizeof(name), "p%d", i);
        CHECK_RC(proxyfs_create(mh, priv, name, 0644, &ino), 0);
    }
    /* alice lists her private directory: the batch is cached. */
    CHECK_RC(proxyfs_readdir(mh, priv, -1, &de), 0);
    CHECK(de != NULL);
    int64_t cookie = de != NULL ? de->d_off : 0;
    free(de);
    de = NULL;

    /* bob: EACCES on her file on both channels, EPERM to chmod it. */
    CHECK_RC(proxyfs_set_thread_identity(BOB, BOB, 1, bob_groups), 0);
    CHECK_RC(proxyfs_read(mh, f, 0, sizeof(buf), buf, sizeof(buf), &n), EACCES);
    CHECK_RC(proxyfs_get_xattr(mh, f, "user.x", buf, sizeof(buf), &n), EACCES);
    CHECK_RC(proxyfs_chmod(mh, f, 0666), EPERM);
    CHECK_RC(proxyfs_lookup(mh, priv, "p0", &ino), EACCES);
    /* Nor does alice's cached listing serve him. */
    CHECK_RC(proxyfs_readdir(mh, priv, cookie, &de), EACCES);
    free(de);
    de = NULL;
    CHECK_RC(proxyfs_create(mh, dir, "bob", 0644, &ino), 0);
    CHECK_RC(proxyfs_get_stat(mh, ino, &st), 0);
    if (st != NULL) {
        CHECK(st->uid == BOB && st->gid == BOB);
        free(st);
        st = NULL;
    }

    /* Another thread, no identity: root's, while this one is bob. */
    {
        pthread_t th;
        void *args[2] = { mh, &f };

        CHECK(pthread_create(&th, NULL, root_reader, args) == 0);
        pthread_join(th, NULL);
    }

    /* An async read keeps the identity of its send: bob's, even though
     * the thread is alice when it completes. */
    async_done_count = 0;
    CHECK_RC(proxyfs_read_send(mh, f, 0, 6, buf, sizeof(buf), &status, done_cb), 0);
    CHECK_RC(proxyfs_set_thread_identity(ALICE, ALICE, 0, NULL), 0);
    CHECK_RC(proxyfs_read_recv(&status, &status, &n), 0);
    CHECK(status == EACCES);
    CHECK_RC(proxyfs_read_send(mh, f, 0, 6, buf, sizeof(buf), &status, done_cb), 0);
    CHECK_RC(proxyfs_read_recv(&status, &status, &n), 0);
    CHECK(status == 0 && n == 6 && memcmp(buf, "secret", 6) == 0);
    CHECK(async_done_count == 2);

    /* Cleared: the handle's own identity (root) again. */
    CHECK_RC(proxyfs_clear_thread_identity(), 0);
    CHECK_RC(proxyfs_read(mh, f, 0, sizeof(buf), buf, sizeof(buf), &n), 0);
    CHECK_RC(proxyfs_unmount(mh), 0);
}
