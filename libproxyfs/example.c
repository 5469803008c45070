/* example.c - mount, create a file, write, read back, list the root with
 * readdir_plus, unmount. Run with proxyfsd listening where PROXYFS_SERVER
 * (default 127.0.0.1:9450) says. It mounts as uid 1000, which needs write
 * permission on the volume's root (README.md's example session gives the
 * root of a new volume, which is root's, to uid 1000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyfs.h"

int main(int argc, char **argv)
{
    const char *volume = argc > 1 ? argv[1] : "default";
    char path[] = "/example.txt";
    char msg[] = "hello, proxyfs\n";
    uint8_t buf[64];
    mount_handle_t *mh;
    uint64_t root, ino;
    size_t n;
    int64_t loc = -1;
    int rc;

    rc = proxyfs_mount((char *)volume, 0, "example", 1000, 1000, &mh);
    if (rc != 0) {
        fprintf(stderr, "mount: %s (%s)\n", strerror(rc), proxyfs_last_error());
        return 1;
    }
    proxyfs_unlink_path(mh, path); /* from an earlier run */
    if ((rc = proxyfs_create_path(mh, path, 0644, &ino)) != 0 ||
        (rc = proxyfs_write(mh, ino, 0, (uint8_t *)msg, strlen(msg), &n)) != 0 ||
        (rc = proxyfs_read(mh, ino, 0, sizeof(buf), buf, sizeof(buf), &n)) != 0) {
        fprintf(stderr, "create/write/read: %s (%s)\n", strerror(rc),
                proxyfs_last_error());
        proxyfs_unmount(mh);
        return 1;
    }
    printf("read back %zu bytes: %.*s", n, (int)n, (char *)buf);

    proxyfs_lookup_path(mh, "/", &root);
    for (;;) {
        struct dirent *de;
        proxyfs_stat_t *st;

        rc = proxyfs_readdir_plus(mh, root, loc, &de, &st);
        if (rc != 0) {
            fprintf(stderr, "readdir_plus: %s\n", strerror(rc));
            break;
        }
        if (de == NULL)
            break; /* end of directory */
        printf("%10llu %06llo %8llu %s\n", (unsigned long long)de->d_ino,
               (unsigned long long)st->mode, (unsigned long long)st->size,
               de->d_name);
        loc = de->d_off;
        free(de);
        free(st);
    }
    rc = proxyfs_unmount(mh);
    return rc == 0 ? 0 : 1;
}
