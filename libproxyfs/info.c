/* info.c - a mount handle's parameters: proxyfs_max_io_size and the
 * per-handle call timeout (proxyfs_set_mount_timeout). */
#define _GNU_SOURCE
#include "internal.h"

int proxyfs_max_io_size(mount_handle_t *in_mount_handle, uint64_t *out_size)
{
    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (out_size == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    *out_size = pfs_mount_max_io(in_mount_handle);
    PFS_API_RETURN(0);
}

uint64_t pfs_mount_timeout_ms(mount_handle_t *mh)
{
    uint32_t t = mh != NULL ? __atomic_load_n(&mh->timeout_ms, __ATOMIC_RELAXED) : 0;

    return t != 0 ? t : pfs_config_timeout_ms();
}

int proxyfs_set_mount_timeout(mount_handle_t *in_mount_handle,
                              uint32_t in_timeout_ms)
{
    PFS_API_ENTER();
    if (!pfs_mount_valid(in_mount_handle))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    __atomic_store_n(&in_mount_handle->timeout_ms, in_timeout_ms,
                     __ATOMIC_RELAXED);
    PFS_API_RETURN(0);
}
