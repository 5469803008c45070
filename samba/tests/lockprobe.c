/*
 * lockprobe - take or test a POSIX byte-range lock on a proxyfs file
 * directly through libproxyfs (test helper of samba/test.sh: it shows that
 * the module's SMB locks are held by proxyfsd, not only by smbd).
 *
 *   lockprobe SERVER VOLUME PATH MODE START LEN
 *
 * MODE:
 *   test  F_GETLK of a write lock: prints "unlocked", or
 *         "locked START LEN OWNER" (the holder's owner string)
 *   try   F_SETLK of a write lock: prints "granted" (then unlocks) or
 *         "conflict" (EAGAIN)
 *   hold  F_SETLK of a write lock, prints "locked", holds it until standard
 *         input closes, prints "unlocked"
 * Runs as root (uid 0) on the volume. Exit 0 when the call itself worked.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyfs.h"

int main(int argc, char **argv)
{
	mount_handle_t *mh = NULL;
	uint64_t ino = 0, fh = 0;
	proxyfs_lock_t c;
	const char *owner = "lockprobe";
	int64_t start, len;
	int rc;

	if (argc != 7) {
		fprintf(stderr, "usage: lockprobe SERVER VOLUME PATH "
			"test|try|hold START LEN\n");
		return 2;
	}
	start = strtoll(argv[5], NULL, 0);
	len = strtoll(argv[6], NULL, 0);
	rc = proxyfs_mount_server(argv[1], argv[2], 0, "lockprobe", 0, 0, &mh);
	if (rc == 0) {
		rc = proxyfs_lookup_path(mh, argv[3], &ino);
	}
	if (rc == 0) {
		rc = proxyfs_open(mh, ino, O_RDWR, &fh);
	}
	if (rc != 0) {
		fprintf(stderr, "lockprobe: %s: %s (%s)\n", argv[3],
			strerror(rc), proxyfs_last_error());
		return 1;
	}
	if (strcmp(argv[4], "test") == 0) {
		rc = proxyfs_lock(mh, fh, F_GETLK, F_WRLCK, start, len, owner,
				  &c);
		if (rc == 0 && c.type == F_UNLCK) {
			printf("unlocked\n");
		} else if (rc == 0) {
			printf("locked %" PRId64 " %" PRId64 " %s\n", c.start,
			       c.len, c.owner);
		}
	} else if (strcmp(argv[4], "try") == 0) {
		rc = proxyfs_lock(mh, fh, F_SETLK, F_WRLCK, start, len, owner,
				  NULL);
		if (rc == 0) {
			printf("granted\n");
			rc = proxyfs_lock(mh, fh, F_SETLK, F_UNLCK, start, len,
					  owner, NULL);
		} else if (rc == EAGAIN) {
			printf("conflict\n");
			rc = 0;
		}
	} else if (strcmp(argv[4], "hold") == 0) {
		rc = proxyfs_lock(mh, fh, F_SETLK, F_WRLCK, start, len, owner,
				  NULL);
		if (rc == 0) {
			char buf[64];
			printf("locked\n");
			fflush(stdout);
			while (fgets(buf, sizeof(buf), stdin) != NULL) {
			}
			rc = proxyfs_lock(mh, fh, F_SETLK, F_UNLCK, start, len,
					  owner, NULL);
			printf("unlocked\n");
		}
	} else {
		fprintf(stderr, "lockprobe: bad mode %s\n", argv[4]);
		return 2;
	}
	fflush(stdout);
	if (rc != 0) {
		fprintf(stderr, "lockprobe: %s: %s (%s)\n", argv[4],
			strerror(rc), proxyfs_last_error());
	}
	(void)proxyfs_close(mh, fh);
	(void)proxyfs_unmount(mh);
	return rc == 0 ? 0 : 1;
}
