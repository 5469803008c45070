/* alloc.c - proxyfs_fallocate, proxyfs_lseek (SEEK_DATA/SEEK_HOLE) and
 * proxyfs_copy_range: the JSON-RPC methods fallocate, lseek and copy_range
 * (PROTOCOL.md). All are idempotent: a retry after a lost attempt is
 * simply sent again. */
#define _GNU_SOURCE
#include <stdint.h>

#include "internal.h"

int proxyfs_fallocate(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                      int in_mode, uint64_t in_offset, uint64_t in_length)
{
    json_t *params;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (in_mode < 0 || in_offset > INT64_MAX || in_length > INT64_MAX)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: mode, offset "
                                     "or length out of range"));
    params = json_pack("{sIsIsIsI}", "inode", (json_int_t)in_inode_number,
                       "mode", (json_int_t)in_mode, "offset",
                       (json_int_t)in_offset, "length", (json_int_t)in_length);
    if (params == NULL)
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    rc = pfs_rpc(in_mount_handle, "fallocate", params, NULL, NULL);
    json_decref(params);
    pfs_mount_changed(in_mount_handle);
    PFS_API_RETURN(rc);
}

int proxyfs_lseek(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                  uint64_t in_offset, int in_whence, uint64_t *out_offset)
{
    json_t *params, *res = NULL;
    const char *whence;
    uint64_t off;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_offset == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    if (in_whence == PROXYFS_SEEK_DATA)
        whence = "data";
    else if (in_whence == PROXYFS_SEEK_HOLE)
        whence = "hole";
    else
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: whence %d",
                                     in_whence));
    if (in_offset > INT64_MAX)
        PFS_API_RETURN(pfs_set_error(ENXIO, "offset past any file's end"));
    params = json_pack("{sIsIss}", "inode", (json_int_t)in_inode_number,
                       "offset", (json_int_t)in_offset, "whence", whence);
    if (params == NULL)
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    rc = pfs_rpc(in_mount_handle, "lseek", params, NULL, &res);
    json_decref(params);
    if (rc == 0) {
        if (pfs_json_get_u64(res, "offset", &off) != 0)
            rc = pfs_set_error(EIO, "malformed lseek reply");
        else
            *out_offset = off;
    }
    json_decref(res);
    PFS_API_RETURN(rc);
}

int proxyfs_copy_range(mount_handle_t *in_mount_handle, uint64_t in_src_inode_number,
                       uint64_t in_src_offset, uint64_t in_dst_inode_number,
                       uint64_t in_dst_offset, uint64_t in_length,
                       uint64_t *out_copied)
{
    json_t *params, *res = NULL;
    uint64_t n;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_copied == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    if (in_src_offset > INT64_MAX || in_dst_offset > INT64_MAX ||
        in_length > INT64_MAX)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: offset or "
                                     "length out of range"));
    params = json_pack("{sIsIsIsIsI}", "src_inode",
                       (json_int_t)in_src_inode_number, "src_offset",
                       (json_int_t)in_src_offset, "dst_inode",
                       (json_int_t)in_dst_inode_number, "dst_offset",
                       (json_int_t)in_dst_offset, "length",
                       (json_int_t)in_length);
    if (params == NULL)
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    rc = pfs_rpc(in_mount_handle, "copy_range", params, NULL, &res);
    json_decref(params);
    pfs_mount_changed(in_mount_handle);
    if (rc == 0) {
        if (pfs_json_get_u64(res, "size", &n) != 0)
            rc = pfs_set_error(EIO, "malformed copy_range reply");
        else
            *out_copied = n;
    }
    json_decref(res);
    PFS_API_RETURN(rc);
}
