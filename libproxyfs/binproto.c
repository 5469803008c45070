/* binproto.c - the binary channel codec (PROTOCOL.md section 2): fixed
 * little-endian headers, the 120-byte stat record and READDIR_PLUS entries,
 * encoded byte by byte so that host order and alignment never matter.
 * No I/O. */
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;

    /* One unaligned load (and a byte swap on big-endian hosts). */
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

void pfs_bin_encode_request(const pfs_bin_req_t *r, uint8_t out[PFS_BIN_REQ_HDR])
{
    memcpy(out, "PFSB", 4);
    put16(out + 4, 1);
    put16(out + 6, r->op);
    put64(out + 8, r->id);
    put64(out + 16, r->mount_id);
    put64(out + 24, r->inode);
    put64(out + 32, r->offset);
    put32(out + 40, r->length);
    put32(out + 44, r->flags);
}

size_t pfs_bin_encode_request_as(const pfs_bin_req_t *r, const pfs_ident_t *id,
                                 uint8_t out[PFS_BIN_REQ_MAX])
{
    pfs_bin_req_t rr = *r;
    size_t n = PFS_BIN_REQ_HDR;

    bool as = id != NULL && id->set;

    if (as)
        rr.flags |= PFS_BIN_REQ_IDENTITY;
    if (r->fh != 0)
        rr.flags |= PFS_BIN_REQ_HANDLE;
    pfs_bin_encode_request(&rr, out);
    if (as) {
        put32(out + n, id->uid);
        put32(out + n + 4, id->gid);
        put16(out + n + 8, (uint16_t)id->ngroups);
        put16(out + n + 10, 0);
        n += 12;
        for (uint32_t i = 0; i < id->ngroups; i++, n += 4)
            put32(out + n, id->groups[i]);
    }
    if (r->fh != 0) {
        put64(out + n, r->fh);
        n += 8;
    }
    return n;
}

int pfs_bin_decode_request(const uint8_t in[PFS_BIN_REQ_HDR], pfs_bin_req_t *r)
{
    if (memcmp(in, "PFSB", 4) != 0 || get16(in + 4) != 1 ||
        (get32(in + 44) & ~(PFS_BIN_REQ_STAT_EXT | PFS_BIN_REQ_IDENTITY |
                            PFS_BIN_REQ_HANDLE)) != 0)
        return EPROTO;
    r->flags = get32(in + 44);
    r->op = get16(in + 6);
    r->id = get64(in + 8);
    r->mount_id = get64(in + 16);
    r->inode = get64(in + 24);
    r->offset = get64(in + 32);
    r->length = get32(in + 40);
    return 0;
}

void pfs_bin_encode_reply(const pfs_bin_rep_t *r, uint8_t out[PFS_BIN_REP_HDR])
{
    memcpy(out, "PFSR", 4);
    put16(out + 4, 1);
    put16(out + 6, r->op);
    put64(out + 8, r->id);
    put32(out + 16, r->err);
    put32(out + 20, r->flags);
    put32(out + 24, r->length);
    put32(out + 28, 0);
}

int pfs_bin_decode_reply(const uint8_t in[PFS_BIN_REP_HDR], pfs_bin_rep_t *r)
{
    if (memcmp(in, "PFSR", 4) != 0 || get16(in + 4) != 1)
        return EPROTO;
    r->op = get16(in + 6);
    r->id = get64(in + 8);
    r->err = get32(in + 16);
    r->flags = get32(in + 20);
    r->length = get32(in + 24);
    if (r->op < PFS_BIN_OP_READ || r->op > PFS_BIN_OP_MAX)
        return EPROTO;
    return 0;
}

/* Stat record: ino, mode, nlink, uid, gid, size, dev, then sec and nsec of
 * atime, mtime, ctime, crtime. */
void pfs_bin_encode_stat(const proxyfs_stat_t *st, uint8_t out[PFS_BIN_STAT])
{
    const uint64_t v[15] = { st->ino, st->mode, st->nlink, st->uid, st->gid,
                             st->size, st->dev, st->atim.sec, st->atim.nsec,
                             st->mtim.sec, st->mtim.nsec, st->ctim.sec,
                             st->ctim.nsec, st->crtim.sec, st->crtim.nsec };

    for (int i = 0; i < 15; i++)
        put64(out + 8 * i, v[i]);
}

void pfs_bin_decode_stat(const uint8_t in[PFS_BIN_STAT], proxyfs_stat_t *st)
{
    st->ino = get64(in);
    st->mode = get64(in + 8);
    st->nlink = get64(in + 16);
    st->uid = get64(in + 24);
    st->gid = get64(in + 32);
    st->size = get64(in + 40);
    st->dev = get64(in + 48);
    st->atim.sec = get64(in + 56);
    st->atim.nsec = get64(in + 64);
    st->mtim.sec = get64(in + 72);
    st->mtim.nsec = get64(in + 80);
    st->ctim.sec = get64(in + 88);
    st->ctim.nsec = get64(in + 96);
    st->crtim.sec = get64(in + 104);
    st->crtim.nsec = get64(in + 112);
    st->blocks = 0;
    st->blksize = 0;
}

void pfs_bin_encode_stat_ext(const proxyfs_stat_t *st, uint8_t out[PFS_BIN_STAT_EXT])
{
    pfs_bin_encode_stat(st, out);
    put64(out + PFS_BIN_STAT, st->blocks);
    put64(out + PFS_BIN_STAT + 8, st->blksize);
}

void pfs_bin_decode_stat_ext(const uint8_t in[PFS_BIN_STAT_EXT], proxyfs_stat_t *st)
{
    pfs_bin_decode_stat(in, st);
    st->blocks = get64(in + PFS_BIN_STAT);
    st->blksize = get64(in + PFS_BIN_STAT + 8);
}

size_t pfs_bin_encode_dirent(const pfs_dent_t *d, uint8_t *out)
{
    size_t nl = strlen(d->name);

    put64(out, (uint64_t)d->cookie);
    put64(out + 8, d->ino);
    out[16] = d->type;
    out[17] = (uint8_t)nl;
    memcpy(out + 18, d->name, nl);
    pfs_bin_encode_stat(&d->st, out + 18 + nl);
    return PFS_BIN_DIRENT_FIXED + nl;
}

int pfs_bin_count_dirents(const uint8_t *in, size_t len, bool *eof, size_t *n)
{
    return pfs_bin_count_dirents_ext(in, len, PFS_BIN_STAT, eof, n);
}

int pfs_bin_count_dirents_ext(const uint8_t *in, size_t len, size_t statlen,
                              bool *eof, size_t *n)
{
    size_t pos = 1, cnt = 0;

    if (len < 1 || in[0] > 1)
        return EPROTO;
    while (pos < len) {
        size_t nl;

        if (len - pos < 18)
            return EPROTO;
        nl = in[pos + 17];
        if (nl == 0 || len - pos < 18 + statlen + nl)
            return EPROTO;
        if (memchr(in + pos + 18, '\0', nl) != NULL)
            return EPROTO;
        pos += 18 + statlen + nl;
        cnt++;
    }
    *eof = in[0] == 1;
    *n = cnt;
    return 0;
}

size_t pfs_bin_decode_dirent(const uint8_t *in, pfs_dent_t *d)
{
    return pfs_bin_decode_dirent_ext(in, PFS_BIN_STAT, d);
}

size_t pfs_bin_decode_dirent_ext(const uint8_t *in, size_t statlen,
                                 pfs_dent_t *d)
{
    size_t nl = in[17];

    d->cookie = (int64_t)get64(in);
    d->ino = get64(in + 8);
    d->type = in[16];
    memcpy(d->name, in + 18, nl);
    d->name[nl] = '\0';
    if (statlen == PFS_BIN_STAT_EXT)
        pfs_bin_decode_stat_ext(in + 18 + nl, &d->st);
    else
        pfs_bin_decode_stat(in + 18 + nl, &d->st);
    return 18 + statlen + nl;
}

size_t pfs_bin_xattr_block_size(const uint8_t *in, size_t avail, size_t nnames)
{
    size_t pos = 8, nl;

    if (avail < 8)
        return 0;
    nl = get32(in + 4);
    if (avail - pos < nl)
        return 0;
    if (nl > 0 && in[pos + nl - 1] != '\0')
        return 0; /* the last name is not terminated */
    for (size_t i = 0; i < nl; i++)
        if (in[pos + i] == '\0' && (i == 0 || in[pos + i - 1] == '\0'))
            return 0; /* an empty name */
    pos += nl;
    for (size_t k = 0; k < nnames; k++) {
        size_t vl;

        if (avail - pos < 8)
            return 0;
        vl = get32(in + pos + 4);
        pos += 8;
        if (avail - pos < vl)
            return 0;
        pos += vl;
    }
    return pos;
}

int pfs_bin_count_dirents_xattr(const uint8_t *in, size_t len, size_t statlen,
                                size_t nnames, bool *eof, size_t *n)
{
    size_t pos = 1, cnt = 0;

    if (len < 1 || in[0] > 1)
        return EPROTO;
    while (pos < len) {
        size_t nl, xl;

        if (len - pos < 18)
            return EPROTO;
        nl = in[pos + 17];
        if (nl == 0 || len - pos < 18 + statlen + nl)
            return EPROTO;
        if (memchr(in + pos + 18, '\0', nl) != NULL)
            return EPROTO;
        pos += 18 + statlen + nl;
        if ((xl = pfs_bin_xattr_block_size(in + pos, len - pos, nnames)) == 0)
            return EPROTO;
        pos += xl;
        cnt++;
    }
    *eof = in[0] == 1;
    *n = cnt;
    return 0;
}

proxyfs_entry_xattrs_t *pfs_bin_build_xattrs(const uint8_t *blk,
                                             const uint8_t *xkey,
                                             size_t xkeylen, size_t nnames)
{
    size_t nl = get32(blk + 4), total, pos, vpos;
    proxyfs_entry_xattrs_t *x;
    char *data;

    /* One block: the struct, the values, then the names list, each
     * requested name with its NUL, each value. */
    total = sizeof(*x) + nnames * sizeof(proxyfs_xattr_value_t) + nl + 1 +
            xkeylen;
    pos = 8 + nl;
    for (size_t k = 0; k < nnames; k++) {
        total += get32(blk + pos + 4);
        pos += 8 + get32(blk + pos + 4);
    }
    if ((x = calloc(1, total)) == NULL)
        return NULL;
    x->values = (proxyfs_xattr_value_t *)(x + 1);
    data = (char *)(x->values + nnames);
    x->list_err = (int)get32(blk);
    x->names_len = nl;
    x->count = nnames;
    memcpy(data, blk + 8, nl);
    data[nl] = '\0';
    x->names = data;
    data += nl + 1;
    vpos = 8 + nl;
    for (size_t k = 0, kp = 0; k < nnames; k++) {
        proxyfs_xattr_value_t *v = &x->values[k];
        size_t l = xkey[kp], vl = get32(blk + vpos + 4);

        memcpy(data, xkey + kp + 1, l);
        data[l] = '\0';
        v->name = data;
        data += l + 1;
        kp += 1 + l;
        v->err = (int)get32(blk + vpos);
        if (v->err == 0) {
            memcpy(data, blk + vpos + 8, vl);
            v->value = data;
            v->len = vl;
            data += vl;
        }
        vpos += 8 + vl;
    }
    return x;
}
