/* fhio.c - I/O through a handle of proxyfs_open (PROTOCOL.md, "I/O through
 * a handle"): proxyfs_read_fh, proxyfs_write_fh, proxyfs_flush_fh and their
 * async forms. Each request carries the server's handle (binary flag
 * HANDLE); the access mode the handle was opened with decides what it may
 * do, and the file's permissions are not checked again, as for a file
 * descriptor. The caller's fh is mapped to the server's current handle at
 * every attempt (pfs_handle_server), so the calls go on after a daemon
 * restart like every call on the handle. */
#include <stdint.h>

#include "internal.h"

/* The inode of handle fh of mh, for error messages; 0 if there is none. */
static uint64_t fh_ino(mount_handle_t *mh, uint64_t fh)
{
    uint64_t mid, sfh, ino = 0;

    if (pfs_handle_server(mh, fh, &mid, &sfh, &ino) != 0) {
        pfs_clear_error();
        return 0;
    }
    return ino;
}

int proxyfs_read_fh(mount_handle_t *in_mount_handle, uint64_t in_fh,
                    uint64_t in_offset, uint64_t in_length, uint8_t *in_bufptr,
                    size_t in_bufsize, size_t *out_bufsize)
{
    mount_handle_t *mh = in_mount_handle;
    size_t want = in_length < in_bufsize ? (size_t)in_length : in_bufsize;
    size_t done = 0, maxio;
    int rc = 0;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_bufsize == NULL || (in_bufptr == NULL && want > 0))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    maxio = pfs_mount_max_io(mh);
    do {
        size_t chunk = want - done > maxio ? maxio : want - done, got = 0;

        rc = pfs_bin_io_fh(mh, PFS_BIN_OP_READ, in_fh, 0, in_offset + done,
                           in_bufptr + done, chunk, &got);
        if (rc != 0)
            break;
        done += got;
        if (got < chunk)
            break; /* end of file */
    } while (done < want);
    if (rc == 0)
        *out_bufsize = done;
    PFS_API_RETURN(rc == ENOENT ? pfs_gone(fh_ino(mh, in_fh), rc) : rc);
}

int proxyfs_write_fh(mount_handle_t *in_mount_handle, uint64_t in_fh,
                     uint64_t in_offset, uint8_t *in_bufptr, size_t in_bufsize,
                     size_t *out_size)
{
    mount_handle_t *mh = in_mount_handle;
    size_t done = 0, maxio;
    int rc = 0;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_size == NULL || (in_bufptr == NULL && in_bufsize > 0))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    maxio = pfs_mount_max_io(mh);
    do {
        size_t chunk = in_bufsize - done > maxio ? maxio : in_bufsize - done;
        size_t put = 0;

        rc = pfs_bin_io_fh(mh, PFS_BIN_OP_WRITE, in_fh, 0, in_offset + done,
                           in_bufptr + done, chunk, &put);
        if (rc != 0)
            break;
        done += put;
        if (put < chunk)
            break;
    } while (done < in_bufsize);
    pfs_mount_changed(mh);
    if (rc == 0)
        *out_size = done;
    PFS_API_RETURN(rc == ENOENT ? pfs_gone(fh_ino(mh, in_fh), rc) : rc);
}

int proxyfs_flush_fh(mount_handle_t *in_mount_handle, uint64_t in_fh)
{
    mount_handle_t *mh = in_mount_handle;
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_FLUSH, .fh = in_fh };
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    rc = pfs_bin_call(mh, &bc);
    PFS_API_RETURN(rc == ENOENT ? pfs_gone(bc.ino, rc) : rc);
}

int proxyfs_ftruncate(mount_handle_t *in_mount_handle, uint64_t in_fh,
                      uint64_t in_size)
{
    mount_handle_t *mh = in_mount_handle;
    json_t *params, *res = NULL;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (in_size > (uint64_t)INT64_MAX)
        PFS_API_RETURN(pfs_set_error(EFBIG, "size %llu", (unsigned long long)in_size));
    params = json_pack("{sI}", "size", (json_int_t)in_size);
    if (params == NULL)
        PFS_API_RETURN(pfs_set_error(ENOMEM, "out of memory"));
    rc = pfs_rpc_fh(mh, in_fh, "resize", params, &res);
    json_decref(params);
    json_decref(res);
    pfs_mount_changed(mh);
    PFS_API_RETURN(rc == ENOENT ? pfs_gone(fh_ino(mh, in_fh), rc) : rc);
}

int proxyfs_read_fh_send(mount_handle_t *in_mount_handle, uint64_t in_fh,
                         uint64_t in_offset, uint64_t in_length,
                         uint8_t *in_bufptr, size_t in_bufsize,
                         void *in_request_id,
                         void (*in_done_callback)(void *in_request_id))
{
    size_t n = in_length < in_bufsize ? (size_t)in_length : in_bufsize;

    PFS_API_ENTER();
    PFS_API_RETURN(pfs_async_send_fh(in_mount_handle, PFS_BIN_OP_READ, in_fh,
                                     in_offset, in_bufptr, n, in_request_id,
                                     in_done_callback));
}

int proxyfs_write_fh_send(mount_handle_t *in_mount_handle, uint64_t in_fh,
                          uint64_t in_offset, uint8_t *in_bufptr,
                          size_t in_bufsize, void *in_request_id,
                          void (*in_done_callback)(void *in_request_id))
{
    PFS_API_ENTER();
    PFS_API_RETURN(pfs_async_send_fh(in_mount_handle, PFS_BIN_OP_WRITE, in_fh,
                                     in_offset, in_bufptr, in_bufsize,
                                     in_request_id, in_done_callback));
}

int proxyfs_flush_fh_send(mount_handle_t *in_mount_handle, uint64_t in_fh,
                          void *in_request_id,
                          void (*in_done_callback)(void *in_request_id))
{
    PFS_API_ENTER();
    PFS_API_RETURN(pfs_async_send_fh(in_mount_handle, PFS_BIN_OP_FLUSH, in_fh,
                                     0, NULL, 0, in_request_id,
                                     in_done_callback));
}
