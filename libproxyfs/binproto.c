/* binproto.c - the binary data channel codec (PROTOCOL.md section 2): fixed
 * little-endian headers, encoded byte by byte so that host order and
 * alignment never matter. No I/O. */
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
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
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
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
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
    put32(out + 44, 0);
}

int pfs_bin_decode_request(const uint8_t in[PFS_BIN_REQ_HDR], pfs_bin_req_t *r)
{
    if (memcmp(in, "PFSB", 4) != 0 || get16(in + 4) != 1 || get32(in + 44) != 0)
        return EPROTO;
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
    if (r->op != PFS_BIN_OP_READ && r->op != PFS_BIN_OP_WRITE)
        return EPROTO;
    return 0;
}
