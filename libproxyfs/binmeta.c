/* binmeta.c - open, close, getlk, setattr and the xattr calls on the
 * binary channel (PROTOCOL.md section 2, opcodes 12-18): the calls an SMB
 * gateway makes for every file, without the cost of JSON on either side.
 * Same semantics and errnos as their JSON-RPC forms; the callers (handles.c,
 * locks.c, api.c) keep their retry rules. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int pfs_bin_open(mount_handle_t *mh, uint64_t ino, int acc, uint64_t *out_sfh,
                 uint64_t *out_mid)
{
    uint8_t rbuf[8 + PFS_BIN_STAT_EXT];
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_OPEN, .ino = ino,
                          .off = (uint64_t)acc, .flags = PFS_BIN_REQ_STAT_EXT,
                          .rbuf = rbuf, .rcap = sizeof(rbuf) };
    int rc = pfs_bin_call(mh, &bc);

    if (rc != 0)
        return rc;
    if (bc.rlen != sizeof(rbuf) || (*out_sfh = get64(rbuf)) == 0)
        return pfs_set_error(EIO, "open: malformed reply");
    *out_mid = bc.mount_id;
    return 0;
}

int pfs_bin_close(mount_handle_t *mh, uint64_t sfh, bool *uncertain,
                  uint64_t *out_mid)
{
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_CLOSE, .off = sfh };
    int rc = pfs_bin_call(mh, &bc);

    *uncertain = bc.uncertain;
    *out_mid = bc.mount_id;
    return rc;
}

int pfs_bin_getlk(mount_handle_t *mh, uint64_t sfh, short type, int64_t start,
                  int64_t len, const char *owner, proxyfs_lock_t *out,
                  uint64_t *out_mid)
{
    uint8_t req[28 + PFS_LK_OWNER_MAX], rbuf[18 + PFS_LK_OWNER_MAX];
    size_t ol = strlen(owner);
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_LOCK, .payload = req,
                          .paylen = 28 + ol, .rbuf = rbuf,
                          .rcap = sizeof(rbuf) };
    int rc;

    if (ol > PFS_LK_OWNER_MAX)
        return pfs_set_error(EINVAL, "lock: owner longer than %d bytes",
                             PFS_LK_OWNER_MAX);
    put64(req, sfh);
    put64(req + 8, (uint64_t)start);
    put64(req + 16, (uint64_t)len);
    req[24] = 0; /* getlk */
    req[25] = type == F_RDLCK ? 0 : 1;
    req[26] = 0;
    req[27] = (uint8_t)ol;
    memcpy(req + 28, owner, ol);
    rc = pfs_bin_call(mh, &bc);
    *out_mid = bc.mount_id;
    if (rc != 0)
        return rc;
    if (bc.rlen < 18 || bc.rlen != 18 + (size_t)rbuf[17] || rbuf[0] > 2 ||
        rbuf[17] > PFS_LK_OWNER_MAX)
        return pfs_set_error(EIO, "lock: malformed getlk reply");
    memset(out, 0, sizeof(*out));
    out->type = F_UNLCK;
    if (rbuf[0] != 2) {
        out->type = rbuf[0] == 0 ? F_RDLCK : F_WRLCK;
        out->start = (int64_t)get64(rbuf + 1);
        out->len = (int64_t)get64(rbuf + 9);
        memcpy(out->owner, rbuf + 18, rbuf[17]);
        out->owner[rbuf[17]] = '\0';
    }
    return 0;
}

int pfs_bin_setattr(mount_handle_t *mh, uint64_t ino, uint64_t mask,
                    const proxyfs_setattr_t *a, proxyfs_stat_t *out_stat)
{
    static const proxyfs_setattr_t zero;
    uint8_t req[PFS_BIN_SETATTR_LEN], rbuf[PFS_BIN_STAT_EXT];
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_SETATTR, .ino = ino,
                          .flags = PFS_BIN_REQ_STAT_EXT, .payload = req,
                          .paylen = sizeof(req), .rbuf = rbuf,
                          .rcap = sizeof(rbuf) };
    int rc;

    if (a == NULL)
        a = &zero;
    put32(req, (uint32_t)mask);
    put32(req + 4, 0);
    put64(req + 8, a->size);
    put64(req + 16, a->mode & 07777);
    put64(req + 24, a->uid);
    put64(req + 32, a->gid);
    put64(req + 40, a->atim.sec);
    put64(req + 48, a->atim.nsec);
    put64(req + 56, a->mtim.sec);
    put64(req + 64, a->mtim.nsec);
    put64(req + 72, a->crtim.sec);
    put64(req + 80, a->crtim.nsec);
    rc = pfs_bin_call(mh, &bc);
    pfs_mount_changed(mh);
    if (rc != 0)
        return rc;
    if (bc.rlen != PFS_BIN_STAT_EXT)
        return pfs_set_error(EIO, "malformed setattr reply");
    if (out_stat != NULL)
        pfs_bin_decode_stat_ext(rbuf, out_stat);
    return 0;
}

int pfs_bin_get_xattr(mount_handle_t *mh, uint64_t ino, const char *name,
                      void *value, size_t size, size_t *out_size)
{
    uint8_t small[256];
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_GET_XATTR, .ino = ino,
                          .name = name, .namelen = strlen(name),
                          .rbuf = small, .rcap = sizeof(small),
                          .ralloc = true };
    int rc = pfs_bin_call(mh, &bc);

    if (rc != 0)
        return rc;
    *out_size = bc.rlen;
    if (size > 0 && size < bc.rlen)
        rc = pfs_set_error(ERANGE, "xattr value is %zu bytes, buffer %zu",
                           bc.rlen, size);
    else if (size > 0 && bc.rlen > 0)
        memcpy(value, bc.reply, bc.rlen);
    if (bc.reply != small)
        free(bc.reply);
    return rc;
}

int pfs_bin_set_xattr(mount_handle_t *mh, uint64_t ino, const char *name,
                      const void *value, size_t size, int flags,
                      bool *uncertain)
{
    size_t nl = strlen(name);
    uint8_t small[1024], *req = small;
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_SET_XATTR, .ino = ino,
                          .off = (uint64_t)flags };
    int rc;

    *uncertain = false;
    if (1 + nl + size > sizeof(small) && (req = malloc(1 + nl + size)) == NULL)
        return pfs_set_error(ENOMEM, "out of memory");
    req[0] = (uint8_t)nl;
    memcpy(req + 1, name, nl);
    if (size > 0)
        memcpy(req + 1 + nl, value, size);
    bc.payload = req;
    bc.paylen = 1 + nl + size;
    rc = pfs_bin_call(mh, &bc);
    pfs_mount_changed(mh);
    *uncertain = bc.uncertain;
    if (req != small)
        free(req);
    return rc;
}

int pfs_bin_list_xattr(mount_handle_t *mh, uint64_t ino, char *list,
                       size_t size, size_t *out_size)
{
    uint8_t small[512];
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_LIST_XATTR, .ino = ino,
                          .rbuf = small, .rcap = sizeof(small),
                          .ralloc = true };
    int rc = pfs_bin_call(mh, &bc);

    if (rc != 0)
        return rc;
    if (bc.rlen > 0 && bc.reply[bc.rlen - 1] != '\0')
        rc = pfs_set_error(EIO, "malformed list_xattr reply");
    else if ((*out_size = bc.rlen, size > 0 && size < bc.rlen))
        rc = pfs_set_error(ERANGE, "xattr list is %zu bytes, buffer %zu",
                           bc.rlen, size);
    else if (size > 0 && bc.rlen > 0)
        memcpy(list, bc.reply, bc.rlen);
    if (bc.reply != small)
        free(bc.reply);
    return rc;
}
