/* unit.c - tests that need no daemon: the JSON-RPC and binary codecs
 * (against the literal examples of PROTOCOL.md), base64, and the API's
 * argument checks. Links the library objects directly to reach internals. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
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

static int unhex(const char *hex, uint8_t *out)
{
    int n = 0;

    while (*hex) {
        unsigned v;

        if (*hex == ' ' || *hex == '\n') {
            hex++;
            continue;
        }
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

/* PROTOCOL.md, "The binary data channel", Example. */
static void test_bin_frames(void)
{
    uint8_t want[64], got[PFS_BIN_REQ_HDR], rep[PFS_BIN_REP_HDR];
    pfs_bin_req_t req = { .op = PFS_BIN_OP_WRITE, .id = 7,
                          .mount_id = 4711829037ull, .inode = 2,
                          .offset = 0, .length = 5 };
    pfs_bin_req_t back;
    pfs_bin_rep_t r;
    int n;

    n = unhex("50 46 53 42  01 00  02 00  07 00 00 00 00 00 00 00"
              "2d ce d8 18 01 00 00 00  02 00 00 00 00 00 00 00"
              "00 00 00 00 00 00 00 00  05 00 00 00  00 00 00 00"
              "68 65 6c 6c 6f", want);
    CHECK(n == 53);
    pfs_bin_encode_request(&req, got);
    CHECK(memcmp(got, want, PFS_BIN_REQ_HDR) == 0);
    CHECK(memcmp(want + 48, "hello", 5) == 0);
    CHECK(pfs_bin_decode_request(got, &back) == 0);
    CHECK(back.mount_id == 4711829037ull && back.id == 7 && back.length == 5);

    n = unhex("50 46 53 52  01 00  02 00  07 00 00 00 00 00 00 00"
              "00 00 00 00  00 00 00 00  05 00 00 00  00 00 00 00", rep);
    CHECK(n == 32);
    CHECK(pfs_bin_decode_reply(rep, &r) == 0);
    CHECK(r.op == PFS_BIN_OP_WRITE && r.id == 7 && r.err == 0 && r.flags == 0 &&
          r.length == 5);
    {
        uint8_t enc[PFS_BIN_REP_HDR];

        pfs_bin_encode_reply(&r, enc);
        CHECK(memcmp(enc, rep, sizeof(enc)) == 0);
    }

    /* READ of 16 bytes, id 8: opcode 01 00, id 08, length 10 00 00 00. */
    req.op = PFS_BIN_OP_READ;
    req.id = 8;
    req.length = 16;
    pfs_bin_encode_request(&req, got);
    want[6] = 0x01;
    want[8] = 0x08;
    want[40] = 0x10;
    CHECK(memcmp(got, want, PFS_BIN_REQ_HDR) == 0);

    /* Broken frames. */
    rep[3] = 'X';
    CHECK(pfs_bin_decode_reply(rep, &r) == EPROTO);
    rep[3] = 'R';
    rep[4] = 2;
    CHECK(pfs_bin_decode_reply(rep, &r) == EPROTO);
    rep[4] = 1;
    rep[6] = PFS_BIN_OP_MAX + 1;
    CHECK(pfs_bin_decode_reply(rep, &r) == EPROTO);
    /* Error reply with bad mount flag. */
    n = unhex("50 46 53 52  01 00  01 00  09 00 00 00 00 00 00 00"
              "16 00 00 00  01 00 00 00  00 00 00 00  00 00 00 00", rep);
    CHECK(pfs_bin_decode_reply(rep, &r) == 0);
    CHECK(r.err == EINVAL && (r.flags & PFS_BIN_FLAG_BAD_MOUNT) && r.id == 9);
}

/* Metadata on the binary channel: request headers with a name payload,
 * the stat record (PROTOCOL.md: fifteen little-endian u64, 120 bytes) and
 * READDIR_PLUS entries, against bytes written out by hand. */
static const char stat_hex[] =
    "05 00 00 00 00 00 00 00"  /* ino 5 */
    "a4 81 00 00 00 00 00 00"  /* mode 0100644 = 0x81a4 */
    "01 00 00 00 00 00 00 00"  /* nlink 1 */
    "e8 03 00 00 00 00 00 00"  /* uid 1000 */
    "e9 03 00 00 00 00 00 00"  /* gid 1001 */
    "0b 00 00 00 00 00 00 00"  /* size 11 */
    "01 00 00 00 00 00 00 00"  /* dev 1 */
    "c0 73 21 69 00 00 00 00"  /* atime sec 1763800000 = 0x692173c0 */
    "0c 00 00 00 00 00 00 00"  /* atime nsec 12 */
    "c1 73 21 69 00 00 00 00"  /* mtime sec 1763800001 */
    "0d 00 00 00 00 00 00 00"  /* mtime nsec 13 */
    "c2 73 21 69 00 00 00 00"  /* ctime sec 1763800002 */
    "ff c9 9a 3b 00 00 00 00"  /* ctime nsec 999999999 = 0x3b9ac9ff */
    "ff ff ff ff ff ff ff ff"  /* crtime sec -1 (two's complement) */
    "0f 00 00 00 00 00 00 00"; /* crtime nsec 15 */

static void test_bin_meta(void)
{
    uint8_t want[PFS_BIN_REQ_HDR + 8], got[PFS_BIN_REQ_HDR], rec[PFS_BIN_STAT];
    uint8_t enc[PFS_BIN_STAT], rep[PFS_BIN_REP_HDR];
    pfs_bin_req_t req = { .op = PFS_BIN_OP_LOOKUP, .id = 0x0102,
                          .mount_id = 4711829037ull, .inode = 1, .offset = 0,
                          .length = 5 };
    pfs_bin_rep_t r;
    proxyfs_stat_t st;
    int n;

    /* LOOKUP of "hello" in directory 1, id 0x102. */
    n = unhex("50 46 53 42  01 00  03 00  02 01 00 00 00 00 00 00"
              "2d ce d8 18 01 00 00 00  01 00 00 00 00 00 00 00"
              "00 00 00 00 00 00 00 00  05 00 00 00  00 00 00 00",
              want);
    CHECK(n == PFS_BIN_REQ_HDR);
    pfs_bin_encode_request(&req, got);
    CHECK(memcmp(got, want, PFS_BIN_REQ_HDR) == 0);
    /* CREATE with mode 0644 in offset; READDIR_PLUS after cookie -1 with
     * 1024 entries wanted. */
    req.op = PFS_BIN_OP_CREATE;
    req.offset = 0644;
    pfs_bin_encode_request(&req, got);
    CHECK(got[6] == 5 && got[7] == 0 && got[32] == 0xa4 && got[33] == 0x01 &&
          got[34] == 0);
    req.op = PFS_BIN_OP_READDIR_PLUS;
    req.offset = (uint64_t)(int64_t)-1;
    req.length = 1024;
    pfs_bin_encode_request(&req, got);
    n = unhex("ff ff ff ff ff ff ff ff  00 04 00 00  00 00 00 00", want);
    CHECK(got[6] == 7 && memcmp(got + 32, want, 16) == 0);

    /* A GET_STAT reply header with a 120-byte payload, and one of every
     * metadata opcode decodes; 0 and PFS_BIN_OP_MAX + 1 do not. */
    n = unhex("50 46 53 52  01 00  04 00  09 00 00 00 00 00 00 00"
              "00 00 00 00  00 00 00 00  78 00 00 00  00 00 00 00", rep);
    CHECK(pfs_bin_decode_reply(rep, &r) == 0);
    CHECK(r.op == PFS_BIN_OP_GET_STAT && r.id == 9 && r.err == 0 &&
          r.length == PFS_BIN_STAT);
    for (int op = 3; op <= PFS_BIN_OP_MAX; op++) {
        rep[6] = (uint8_t)op;
        CHECK(pfs_bin_decode_reply(rep, &r) == 0 && r.op == op);
    }
    rep[6] = 0;
    CHECK(pfs_bin_decode_reply(rep, &r) == EPROTO);
    rep[6] = PFS_BIN_OP_MAX + 1;
    CHECK(pfs_bin_decode_reply(rep, &r) == EPROTO);

    /* The stat record. */
    n = unhex(stat_hex, rec);
    CHECK(n == PFS_BIN_STAT);
    memset(&st, 0x55, sizeof(st));
    pfs_bin_decode_stat(rec, &st);
    CHECK(st.ino == 5 && st.mode == 0100644 && st.nlink == 1 && st.uid == 1000 &&
          st.gid == 1001 && st.size == 11 && st.dev == 1);
    CHECK(st.atim.sec == 1763800000 && st.atim.nsec == 12);
    CHECK(st.mtim.sec == 1763800001 && st.mtim.nsec == 13);
    CHECK(st.ctim.sec == 1763800002 && st.ctim.nsec == 999999999);
    CHECK(st.crtim.sec == UINT64_MAX && st.crtim.nsec == 15);
    pfs_bin_encode_stat(&st, enc);
    CHECK(memcmp(enc, rec, PFS_BIN_STAT) == 0);
}

static void test_bin_readdir(void)
{
    uint8_t buf[1 + 2 * (PFS_BIN_DIRENT_FIXED + 8)], rec[PFS_BIN_STAT], hdr[18];
    pfs_dent_t d, back;
    size_t n = 99, len;
    bool eof = false;

    /* eof 1, then ".." with cookie 2, inode 1, DT_DIR, and the stat above,
     * then "a.txt" with cookie -2 (two's complement). */
    buf[0] = 1;
    unhex("02 00 00 00 00 00 00 00  01 00 00 00 00 00 00 00  04 02", hdr);
    memcpy(buf + 1, hdr, 18);
    memcpy(buf + 19, "..", 2);
    unhex(stat_hex, rec);
    memcpy(buf + 21, rec, PFS_BIN_STAT);
    len = 21 + PFS_BIN_STAT;
    memset(&d, 0, sizeof(d));
    d.cookie = -2;
    d.ino = 0x1122334455667788ull;
    d.type = 8;
    strcpy(d.name, "a.txt");
    pfs_bin_decode_stat(rec, &d.st);
    d.st.ino = d.ino;
    CHECK(pfs_bin_encode_dirent(&d, buf + len) == PFS_BIN_DIRENT_FIXED + 5);
    CHECK(memcmp(buf + len, "\xfe\xff\xff\xff\xff\xff\xff\xff"
                            "\x88\x77\x66\x55\x44\x33\x22\x11\x08\x05" "a.txt",
                 23) == 0);
    len += PFS_BIN_DIRENT_FIXED + 5;

    CHECK(pfs_bin_count_dirents(buf, len, &eof, &n) == 0);
    CHECK(eof && n == 2);
    CHECK(pfs_bin_decode_dirent(buf + 1, &back) == PFS_BIN_DIRENT_FIXED + 2);
    CHECK(back.cookie == 2 && back.ino == 1 && back.type == 4 &&
          strcmp(back.name, "..") == 0 && back.st.ino == 5 &&
          back.st.ctim.nsec == 999999999);
    CHECK(pfs_bin_decode_dirent(buf + 1 + PFS_BIN_DIRENT_FIXED + 2, &back) ==
          PFS_BIN_DIRENT_FIXED + 5);
    CHECK(back.cookie == -2 && back.ino == d.ino && back.type == 8 &&
          strcmp(back.name, "a.txt") == 0 && back.st.ino == d.ino &&
          back.st.crtim.sec == UINT64_MAX);

    /* Only the eof byte: an empty batch, not at the end. */
    buf[0] = 0;
    CHECK(pfs_bin_count_dirents(buf, 1, &eof, &n) == 0 && !eof && n == 0);
    /* Broken payloads. */
    CHECK(pfs_bin_count_dirents(buf, 0, &eof, &n) == EPROTO);
    CHECK(pfs_bin_count_dirents(buf, len - 1, &eof, &n) == EPROTO);
    CHECK(pfs_bin_count_dirents(buf, 1 + 17, &eof, &n) == EPROTO);
    buf[0] = 2;
    CHECK(pfs_bin_count_dirents(buf, len, &eof, &n) == EPROTO);
    buf[0] = 1;
    buf[18] = 0; /* empty name */
    CHECK(pfs_bin_count_dirents(buf, len, &eof, &n) == EPROTO);
    buf[18] = 2;
    buf[20] = '\0'; /* NUL in a name */
    CHECK(pfs_bin_count_dirents(buf, len, &eof, &n) == EPROTO);
}


/* READDIR_PLUS_XATTR xattr blocks (PROTOCOL.md section 2), byte by byte:
 * errno 0, names "user.A\0user.DOSATTRIB\0", values of user.DOSATTRIB
 * ("dos") and user.x (ENODATA). */
static void test_bin_xattr_block(void)
{
    static const uint8_t blk[] =
        "\x00\x00\x00\x00" "\x16\x00\x00\x00" "user.A\0user.DOSATTRIB\0"
        "\x00\x00\x00\x00" "\x03\x00\x00\x00" "dos"
        "\x3d\x00\x00\x00" "\x00\x00\x00\x00";
    static const uint8_t key[] = "\x0euser.DOSATTRIB" "\x06user.x";
    const size_t len = sizeof(blk) - 1, klen = sizeof(key) - 1;
    uint8_t bad[sizeof(blk)], buf[1 + 18 + 1 + PFS_BIN_STAT_EXT + sizeof(blk)];
    proxyfs_entry_xattrs_t *x;
    size_t n = 0;
    bool eof = false;

    CHECK(pfs_bin_xattr_block_size(blk, len, 2) == len);
    x = pfs_bin_build_xattrs(blk, key, klen, 2);
    CHECK(x != NULL);
    if (x != NULL) {
        CHECK(x->list_err == 0 && x->names_len == 22 && x->count == 2);
        CHECK(memcmp(x->names, "user.A\0user.DOSATTRIB\0", 22) == 0);
        CHECK(strcmp(x->values[0].name, "user.DOSATTRIB") == 0 &&
              x->values[0].err == 0 && x->values[0].len == 3 &&
              memcmp(x->values[0].value, "dos", 3) == 0);
        CHECK(strcmp(x->values[1].name, "user.x") == 0 &&
              x->values[1].err == ENODATA && x->values[1].len == 0 &&
              x->values[1].value == NULL);
        free(x);
    }
    /* Truncated anywhere, or asked for a third value: not a block. */
    for (size_t i = 0; i < len; i++)
        CHECK(pfs_bin_xattr_block_size(blk, i, 2) == 0);
    CHECK(pfs_bin_xattr_block_size(blk, len, 3) == 0);
    /* An unterminated last name, an empty name. */
    memcpy(bad, blk, len);
    bad[8 + 21] = 'x';
    CHECK(pfs_bin_xattr_block_size(bad, len, 2) == 0);
    memcpy(bad, blk, len);
    bad[8 + 6] = '\0';
    bad[8 + 7] = '\0';
    CHECK(pfs_bin_xattr_block_size(bad, len, 2) == 0);
    memcpy(bad, blk, len);
    bad[8] = '\0';
    CHECK(pfs_bin_xattr_block_size(bad, len, 2) == 0);
    /* A huge names length does not overflow. */
    memcpy(bad, blk, len);
    memcpy(bad + 4, "\xff\xff\xff\xff", 4);
    CHECK(pfs_bin_xattr_block_size(bad, len, 2) == 0);
    /* One entry ("a") with the block, in a payload. */
    memset(buf, 0, sizeof(buf));
    buf[0] = 1;
    buf[1 + 17] = 1;
    buf[1 + 18] = 'a';
    memcpy(buf + 1 + 18 + 1 + PFS_BIN_STAT_EXT, blk, len);
    CHECK(pfs_bin_count_dirents_xattr(buf, 1 + 18 + 1 + PFS_BIN_STAT_EXT + len,
                                      PFS_BIN_STAT_EXT, 2, &eof, &n) == 0 &&
          eof && n == 1);
    CHECK(pfs_bin_count_dirents_xattr(buf, 1 + 18 + 1 + PFS_BIN_STAT_EXT + len - 1,
                                      PFS_BIN_STAT_EXT, 2, &eof, &n) == EPROTO);
    CHECK(pfs_bin_count_dirents_xattr(buf, 1 + 18 + 1 + PFS_BIN_STAT_EXT,
                                      PFS_BIN_STAT_EXT, 2, &eof, &n) == EPROTO);
}

/* PROTOCOL.md, JSON-RPC Framing and Example session. */
static void test_json_request(void)
{
    json_t *params = json_pack("{sssssIsI}", "volume", "default", "user",
                               "alice", "uid", (json_int_t)1000, "gid",
                               (json_int_t)1000);
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"mount\","
                       "\"params\":{\"volume\":\"default\",\"user\":\"alice\","
                       "\"uid\":1000,\"gid\":1000}}";
    char want[256];
    size_t len = 0;
    char *frame;

    snprintf(want, sizeof(want), "Content-Length: 108\r\n\r\n%s", body);
    CHECK(strlen(body) == 108);
    frame = pfs_json_encode_request(1, "mount", params, &len);
    CHECK(frame != NULL);
    if (frame != NULL) {
        CHECK(len == strlen(want));
        CHECK(strcmp(frame, want) == 0);
    }
    free(frame);
    json_decref(params);
}

static void test_json_header(void)
{
    size_t n = 0;
    const char *h1 = "Content-Length: 93\r\n\r\n";
    const char *h2 = "content-length:7\r\nContent-Type: x\r\n\r\n";
    const char *h3 = "Content-Type: x\r\n\r\n";
    const char *h4 = "Content-Length: 9x\r\n\r\n";
    const char *h5 = "Content-Length: 93\n\n";

    CHECK(pfs_json_parse_header(h1, strlen(h1), &n) == 0 && n == 93);
    CHECK(pfs_json_parse_header(h2, strlen(h2), &n) == 0 && n == 7);
    CHECK(pfs_json_parse_header(h3, strlen(h3), &n) == EPROTO);
    CHECK(pfs_json_parse_header(h4, strlen(h4), &n) == EPROTO);
    CHECK(pfs_json_parse_header(h5, strlen(h5), &n) == EPROTO);
}

static void test_json_reply(void)
{
    const char *ok = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"mount_id\":"
                     "4711829037,\"root_inode\":1,\"max_io_size\":8388608,"
                     "\"max_inflight\":256}}";
    const char *err = "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":2,"
                      "\"message\":\"lookup 1/\\\"nope\\\": no such file or "
                      "directory\",\"data\":{\"errno\":2,\"name\":\"ENOENT\"}}}";
    const char *bad = "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":22,"
                      "\"message\":\"bad mount\",\"data\":{\"errno\":22,"
                      "\"name\":\"EINVAL\",\"reason\":\"bad_mount\"}}}";
    const char *proto = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
                        "-32700,\"message\":\"parse error\"}}";
    const char *nosys = "{\"jsonrpc\":\"2.0\",\"id\":6,\"error\":{\"code\":"
                        "-32601,\"message\":\"no method\"}}";
    json_t *reply, *res;
    uint64_t id, v;
    bool has_id, bm;

    CHECK(pfs_json_decode_reply(ok, strlen(ok), &reply, &id, &has_id) == 0);
    CHECK(has_id && id == 1);
    CHECK(pfs_json_reply_status(reply, &res, &bm) == 0 && !bm);
    CHECK(pfs_json_get_u64(res, "mount_id", &v) == 0 && v == 4711829037ull);
    json_decref(reply);

    CHECK(pfs_json_decode_reply(err, strlen(err), &reply, &id, &has_id) == 0);
    CHECK(id == 4);
    CHECK(pfs_json_reply_status(reply, &res, &bm) == ENOENT && !bm);
    CHECK(strstr(proxyfs_last_error(), "ENOENT") != NULL);
    CHECK(strstr(proxyfs_last_error(), "nope") != NULL);
    json_decref(reply);

    CHECK(pfs_json_decode_reply(bad, strlen(bad), &reply, &id, &has_id) == 0);
    CHECK(pfs_json_reply_status(reply, &res, &bm) == EINVAL && bm);
    json_decref(reply);

    CHECK(pfs_json_decode_reply(proto, strlen(proto), &reply, &id, &has_id) == 0);
    CHECK(!has_id);
    CHECK(pfs_json_reply_status(reply, &res, &bm) == EINVAL);
    json_decref(reply);

    CHECK(pfs_json_decode_reply(nosys, strlen(nosys), &reply, &id, &has_id) == 0);
    CHECK(pfs_json_reply_status(reply, &res, &bm) == ENOSYS);
    json_decref(reply);

    CHECK(pfs_json_decode_reply("{nope", 5, &reply, &id, &has_id) == EPROTO);
    CHECK(pfs_json_decode_reply("[1]", 3, &reply, &id, &has_id) == EPROTO);
}

static void test_json_stat(void)
{
    const char *s = "{\"ino\":5,\"mode\":33188,\"nlink\":1,\"uid\":1000,"
                    "\"gid\":1000,\"size\":11,\"dev\":1,"
                    "\"atime\":{\"sec\":1763800000,\"nsec\":12},"
                    "\"mtime\":{\"sec\":1763800001,\"nsec\":13},"
                    "\"ctime\":{\"sec\":1763800002,\"nsec\":14},"
                    "\"crtime\":{\"sec\":1763800003,\"nsec\":15}}";
    json_t *o = json_loads(s, 0, NULL);
    proxyfs_stat_t st;

    CHECK(pfs_json_to_stat(o, &st) == 0);
    CHECK(st.ino == 5 && st.mode == 0100644 && st.nlink == 1 && st.uid == 1000 &&
          st.gid == 1000 && st.size == 11 && st.dev == 1);
    CHECK(st.atim.sec == 1763800000 && st.atim.nsec == 12);
    CHECK(st.mtim.sec == 1763800001 && st.ctim.nsec == 14 && st.crtim.nsec == 15);
    json_decref(o);
    o = json_loads("{\"mode\":1}", 0, NULL);
    CHECK(pfs_json_to_stat(o, &st) == EPROTO);
    json_decref(o);
}

static void test_base64(void)
{
    static const struct { const char *in, *out; } v[] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "hello world", "aGVsbG8gd29ybGQ=" },
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *e = pfs_b64_encode((const uint8_t *)v[i].in, strlen(v[i].in));
        uint8_t *d = NULL;
        size_t n = 0;

        CHECK(e != NULL && strcmp(e, v[i].out) == 0);
        CHECK(pfs_b64_decode(v[i].out, &d, &n) == 0);
        CHECK(n == strlen(v[i].in) && memcmp(d, v[i].in, n) == 0);
        free(e);
        free(d);
    }
    {
        uint8_t all[256], *d = NULL;
        size_t n = 0;
        char *e;

        for (int i = 0; i < 256; i++)
            all[i] = (uint8_t)i;
        e = pfs_b64_encode(all, sizeof(all));
        CHECK(pfs_b64_decode(e, &d, &n) == 0 && n == 256 &&
              memcmp(d, all, 256) == 0);
        free(e);
        free(d);
        CHECK(pfs_b64_decode("a*b", &d, &n) == EPROTO);
    }
}

static void cb_never(void *id)
{
    (void)id;
}

/* The API without a daemon: argument checks, errno untouched. */
/* unused_port returns a loopback TCP port that nothing listens on: one
 * the kernel just handed out and that was closed again. */
static int unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return 1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_api_args(void)
{
    mount_handle_t *mh = NULL;
    mount_handle_t *bogus = (mount_handle_t *)&t_pass;
    uint64_t ino;
    proxyfs_stat_t *st;
    struct dirent *de;
    size_t n;
    int status;
    uint8_t buf[4];

    errno = 4242;
    CHECK(proxyfs_lookup(NULL, 1, "x", &ino) == EINVAL);
    CHECK(proxyfs_lookup_path(bogus, "/", &ino) == EINVAL);
    CHECK(proxyfs_get_stat(NULL, 1, &st) == EINVAL);
    CHECK(proxyfs_readdir(NULL, 1, -1, &de) == EINVAL);
    CHECK(proxyfs_read(NULL, 1, 0, 4, buf, 4, &n) == EINVAL);
    CHECK(proxyfs_write(NULL, 1, 0, buf, 4, &n) == EINVAL);
    CHECK(proxyfs_flush(NULL, 1) == EINVAL);
    CHECK(proxyfs_read_send(NULL, 1, 0, 4, buf, 4, buf, cb_never) == EINVAL);
    CHECK(proxyfs_write_send(NULL, 1, 0, buf, 4, buf, cb_never) == EINVAL);
    CHECK(proxyfs_read_recv(buf, &status, &n) == ENOENT);
    CHECK(proxyfs_write_recv(buf, &status, &n) == ENOENT);
    CHECK(proxyfs_read_recv(buf, NULL, &n) == EINVAL);
    CHECK(proxyfs_unmount(NULL) == EINVAL);
    CHECK(proxyfs_unmount(bogus) == EINVAL);
    CHECK(proxyfs_statvfs(NULL, NULL) == EINVAL);
    CHECK(proxyfs_set_server(NULL) == EINVAL);
    CHECK(proxyfs_set_server("") == EINVAL);
    CHECK(proxyfs_mount(NULL, 0, "u", 0, 0, &mh) == EINVAL);
    CHECK(proxyfs_mount("default", 0, "u", 0, 0, NULL) == EINVAL);
    CHECK(proxyfs_mount("default", 0x80, "u", 0, 0, &mh) == EINVAL);
    CHECK(strlen(proxyfs_last_error()) > 0);
    /* Nothing listens on a port just released: ENODEV, and no threads or
     * memory left. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", unused_port());
    CHECK(proxyfs_set_server(addr) == 0);
    CHECK(proxyfs_mount("default", 0, "u", 0, 0, &mh) == ENODEV);
    CHECK(mh == NULL);
    CHECK(proxyfs_set_server("unix:/nonexistent/proxyfs.sock") == 0);
    CHECK(proxyfs_mount("default", 0, "u", 0, 0, &mh) == ENODEV);
    CHECK(proxyfs_set_server("no-port") == 0);
    CHECK(proxyfs_mount("default", 0, "u", 0, 0, &mh) == ENODEV);
    CHECK(errno == 4242);
}

/* Address lists: entries split on commas, trimmed of spaces. */
static void test_addr_list(void)
{
    char buf[PFS_MAX_ADDR];

    CHECK(pfs_addr_count("127.0.0.1:9450") == 1);
    pfs_addr_entry("127.0.0.1:9450", 0, buf);
    CHECK(strcmp(buf, "127.0.0.1:9450") == 0);
    CHECK(pfs_addr_count("a:1, b:2,unix:/s") == 3);
    pfs_addr_entry("a:1, b:2,unix:/s", 0, buf);
    CHECK(strcmp(buf, "a:1") == 0);
    pfs_addr_entry("a:1, b:2,unix:/s", 1, buf);
    CHECK(strcmp(buf, "b:2") == 0);
    pfs_addr_entry("a:1, b:2,unix:/s", 2, buf);
    CHECK(strcmp(buf, "unix:/s") == 0);
    pfs_addr_entry("[::1]:9450 ,", 0, buf);
    CHECK(strcmp(buf, "[::1]:9450") == 0);
    pfs_addr_entry("[::1]:9450 ,", 1, buf);
    CHECK(buf[0] == '\0');
}

int main(void)
{
    test_bin_frames();
    test_bin_meta();
    test_bin_readdir();
    test_bin_xattr_block();
    test_json_request();
    test_json_header();
    test_json_reply();
    test_json_stat();
    test_base64();
    test_api_args();
    test_addr_list();
    printf("unit: %d passed, %d failed\n", t_pass, t_fail);
    return t_fail == 0 ? 0 : 1;
}
