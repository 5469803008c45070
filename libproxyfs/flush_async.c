/* flush_async.c - proxyfs_flush_send/_recv: an fsync that does not block
 * the caller (Samba's fsync_send, for SMB2 FLUSH and write-through). It is
 * the binary FLUSH request (opcode 8) run through the async machinery of
 * async.c: the same registry of request ids, callback rules, retries and
 * ENOENT -> EBADF mapping as proxyfs_read_send/proxyfs_write_send. */
#define _GNU_SOURCE
#include "internal.h"

int proxyfs_flush_send(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                       void *in_request_id,
                       void (*in_done_callback)(void *in_request_id))
{
    PFS_API_ENTER();
    PFS_API_RETURN(pfs_async_send(in_mount_handle, PFS_BIN_OP_FLUSH,
                                  in_inode_number, 0, NULL, 0, in_request_id,
                                  in_done_callback));
}

int proxyfs_flush_recv(void *in_request_id, int *out_rsp_status)
{
    size_t n = 0;

    PFS_API_ENTER();
    if (out_rsp_status == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "NULL output pointer"));
    PFS_API_RETURN(pfs_async_recv(PFS_BIN_OP_FLUSH, in_request_id,
                                  out_rsp_status, &n));
}
