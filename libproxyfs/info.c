/* info.c - getters of a mount handle's parameters. */
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
