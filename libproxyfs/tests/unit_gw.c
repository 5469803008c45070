/* unit_gw.c - codec tests of the gateway additions, no daemon: the
 * STAT_EXT request flag and extended stat records (the literal example
 * of PROTOCOL.md), READDIR_PLUS entries with them, JSON stats with blocks,
 * blksize and times before 1970, and argument checks of the new calls.
 * Links the library objects directly to reach internals. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

static int t_pass, t_fail;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            t_pass++;                                                        \
        } else {                                                             \
            t_fail++;                                                        \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
    } while (0)

static void test_stat_ext(void)
{
    /* PROTOCOL.md: GET_STAT of inode 2, id 9, mount 4711829037, STAT_EXT. */
    static const uint8_t want[PFS_BIN_REQ_HDR] = {
        0x50, 0x46, 0x53, 0x42, 0x01, 0x00, 0x04, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0,
        0x2d, 0xce, 0xd8, 0x18, 0x01, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0 };
    pfs_bin_req_t req = { .op = PFS_BIN_OP_GET_STAT, .id = 9,
                          .mount_id = 4711829037ull, .inode = 2,
                          .flags = PFS_BIN_REQ_STAT_EXT }, back;
    uint8_t hdr[PFS_BIN_REQ_HDR], rec[PFS_BIN_STAT_EXT];
    proxyfs_stat_t st, st2;

    pfs_bin_encode_request(&req, hdr);
    CHECK(memcmp(hdr, want, sizeof(want)) == 0);
    CHECK(pfs_bin_decode_request(hdr, &back) == 0 && back.flags == 1);
    hdr[44] = 8; /* an unknown flag breaks the stream */
    CHECK(pfs_bin_decode_request(hdr, &back) == EPROTO);

    /* A handle (I/O through an open handle): flag HANDLE and the 8-byte
     * handle after the header (no identity). */
    {
        pfs_bin_req_t r = { .op = PFS_BIN_OP_READ, .id = 8, .mount_id = 1,
                            .inode = 2, .length = 6, .fh = 0x0102030405060708ull };
        uint8_t out[PFS_BIN_REQ_MAX];
        static const uint8_t fhb[] = { 8, 7, 6, 5, 4, 3, 2, 1 };

        CHECK(pfs_bin_encode_request_as(&r, NULL, out) == PFS_BIN_REQ_HDR + 8);
        CHECK(out[44] == PFS_BIN_REQ_HANDLE);
        CHECK(memcmp(out + PFS_BIN_REQ_HDR, fhb, 8) == 0);
        CHECK(pfs_bin_decode_request(out, &back) == 0 && back.flags == PFS_BIN_REQ_HANDLE);
    }

    /* A per-call identity: flag IDENTITY and the block after the header
     * (PROTOCOL.md's example: uid 1001, gid 1001, groups 100 and 1001). */
    {
        static const uint8_t idblk[] = {
            0xe9, 0x03, 0, 0, 0xe9, 0x03, 0, 0, 0x02, 0x00, 0x00, 0x00,
            0x64, 0, 0, 0, 0xe9, 0x03, 0, 0 };
        pfs_ident_t id = { .set = true, .uid = 1001, .gid = 1001,
                           .ngroups = 2, .groups = { 100, 1001 } };
        uint8_t full[PFS_BIN_REQ_MAX];
        size_t n = pfs_bin_encode_request_as(&req, &id, full);

        CHECK(n == PFS_BIN_REQ_HDR + sizeof(idblk));
        CHECK(full[44] == 3 && memcmp(full, want, 44) == 0);
        CHECK(memcmp(full + PFS_BIN_REQ_HDR, idblk, sizeof(idblk)) == 0);
        CHECK(pfs_bin_decode_request(full, &back) == 0 && back.flags == 3);
        id.set = false;
        CHECK(pfs_bin_encode_request_as(&req, &id, full) == PFS_BIN_REQ_HDR);
        CHECK(memcmp(full, want, sizeof(want)) == 0);
    }

    memset(&st, 0, sizeof(st));
    st.ino = 2;
    st.mode = 0100644;
    st.size = 11;
    st.mtim.sec = (uint64_t)(int64_t)-1;
    st.blocks = 1;
    st.blksize = 4096;
    pfs_bin_encode_stat_ext(&st, rec);
    CHECK(memcmp(rec + PFS_BIN_STAT,
                 "\x01\0\0\0\0\0\0\0\x00\x10\0\0\0\0\0\0", 16) == 0);
    memset(&st2, 0xff, sizeof(st2));
    pfs_bin_decode_stat_ext(rec, &st2);
    CHECK(memcmp(&st, &st2, sizeof(st)) == 0);
    CHECK((int64_t)st2.mtim.sec == -1);
    /* The 120-byte record leaves blocks and blksize 0. */
    memset(&st2, 0xff, sizeof(st2));
    pfs_bin_decode_stat(rec, &st2);
    CHECK(st2.blocks == 0 && st2.blksize == 0 && st2.size == 11);
}

static void test_dirents_ext(void)
{
    uint8_t buf[1 + 2 * (18 + PFS_BIN_STAT_EXT + 8)];
    pfs_dent_t d, back;
    size_t len = 1, n = 0;
    bool eof = false;

    buf[0] = 1;
    memset(&d, 0, sizeof(d));
    strcpy(d.name, "ab");
    d.ino = 7;
    d.type = 8;
    d.cookie = 3;
    d.st.ino = 7;
    d.st.blocks = 16;
    d.st.blksize = 4096;
    /* Hand-built: cookie, inode, type, namelen, name, extended record. */
    for (int i = 0; i < 2; i++) {
        memcpy(buf + len, "\x03\0\0\0\0\0\0\0\x07\0\0\0\0\0\0\0\x08\x02" "ab", 20);
        pfs_bin_encode_stat_ext(&d.st, buf + len + 20);
        len += 20 + PFS_BIN_STAT_EXT;
    }
    CHECK(pfs_bin_count_dirents_ext(buf, len, PFS_BIN_STAT_EXT, &eof, &n) == 0);
    CHECK(eof && n == 2);
    CHECK(pfs_bin_decode_dirent_ext(buf + 1, PFS_BIN_STAT_EXT, &back) ==
          20 + PFS_BIN_STAT_EXT);
    CHECK(strcmp(back.name, "ab") == 0 && back.ino == 7 && back.st.blocks == 16 &&
          back.st.blksize == 4096);
    /* Read as 120-byte records, the same bytes do not parse. */
    CHECK(pfs_bin_count_dirents(buf, len, &eof, &n) == EPROTO);
    CHECK(pfs_bin_count_dirents_ext(buf, len - 1, PFS_BIN_STAT_EXT, &eof, &n) == EPROTO);
}

static void test_json_stat_ext(void)
{
    json_t *o = json_loads("{\"ino\":5,\"mode\":33188,\"size\":11,"
                           "\"atime\":{\"sec\":-86400,\"nsec\":1},"
                           "\"mtime\":{\"sec\":1,\"nsec\":0},"
                           "\"ctime\":{\"sec\":1,\"nsec\":0},"
                           "\"crtime\":{\"sec\":-2147483648,\"nsec\":0},"
                           "\"blocks\":8,\"blksize\":4096}", 0, NULL);
    proxyfs_stat_t st;
    proxyfs_timespec_t ts = { .sec = (uint64_t)(int64_t)-5, .nsec = 7 };
    json_t *j;

    CHECK(o != NULL && pfs_json_to_stat(o, &st) == 0);
    CHECK(st.blocks == 8 && st.blksize == 4096);
    CHECK((int64_t)st.atim.sec == -86400 && st.atim.nsec == 1);
    CHECK((int64_t)st.crtim.sec == -2147483648LL);
    json_decref(o);
    /* Without them (an older daemon): 0. */
    o = json_loads("{\"ino\":5,\"mode\":33188}", 0, NULL);
    CHECK(o != NULL && pfs_json_to_stat(o, &st) == 0 && st.blocks == 0 &&
          st.blksize == 0);
    json_decref(o);
    j = pfs_json_timespec(&ts);
    CHECK(j != NULL && json_integer_value(json_object_get(j, "sec")) == -5);
    json_decref(j);
}

static void test_args(void)
{
    proxyfs_stat_t st;
    uint64_t u;
    char *p;
    int s;

    /* No handle, NULL outputs: EINVAL without a daemon. */
    CHECK(proxyfs_lookup_stat(NULL, 1, "x", &u, &st) == EINVAL);
    CHECK(proxyfs_stat_at(NULL, 1, "x", &st) == EINVAL);
    CHECK(proxyfs_create_stat(NULL, 1, "x", 0644, &u, &st) == EINVAL);
    CHECK(proxyfs_mkdir_stat(NULL, 1, "x", 0755, &u, &st) == EINVAL);
    CHECK(proxyfs_symlink_stat(NULL, 1, "x", "y", &u, &st) == EINVAL);
    CHECK(proxyfs_fallocate(NULL, 1, 0, 0, 1) == EINVAL);
    CHECK(proxyfs_lseek(NULL, 1, 0, PROXYFS_SEEK_DATA, &u) == EINVAL);
    CHECK(proxyfs_copy_range(NULL, 1, 0, 2, 0, 1, &u) == EINVAL);
    CHECK(proxyfs_realpath(NULL, "/", &p, NULL) == EINVAL);
    CHECK(proxyfs_stat_path_follow(NULL, "/", &st) == EINVAL);
    CHECK(proxyfs_max_io_size(NULL, &u) == EINVAL);
    CHECK(proxyfs_set_mount_timeout(NULL, 1) == EINVAL);
    CHECK(proxyfs_flush_send(NULL, 1, &s, NULL) == EINVAL);
    CHECK(proxyfs_flush_recv(&s, &s) == ENOENT);
    CHECK(proxyfs_flush_recv(&s, NULL) == EINVAL);
    /* proxyfs_stat_t keeps the reference layout, blocks appended. */
    CHECK(offsetof(proxyfs_stat_t, crtim) == 104 &&
          offsetof(proxyfs_stat_t, blocks) == 120 &&
          offsetof(proxyfs_stat_t, blksize) == 128 && sizeof(proxyfs_stat_t) == 136);
}

int main(void)
{
    test_stat_ext();
    test_dirents_ext();
    test_json_stat_ext();
    test_args();
    printf("unit_gw: %d passed, %d failed\n", t_pass, t_fail);
    return t_fail == 0 ? 0 : 1;
}
