/* ci.c - case-insensitive lookup (proxyfs_lookup_ci): the binary
 * LOOKUP_CI, whose reply is a stat record followed by the entry's real
 * name. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The longest name an entry has. */
#define CI_MAX_NAME 255

int proxyfs_lookup_ci(mount_handle_t *mh, uint64_t dir_ino, const char *name,
                      char **out_name, uint64_t *out_ino,
                      proxyfs_stat_t *out_stat)
{
    uint8_t rep[PFS_BIN_STAT_EXT + CI_MAX_NAME];
    pfs_bin_call_t bc;
    proxyfs_stat_t st;
    size_t nlen;
    char *real = NULL;
    int rc;

    PFS_API_ENTER();
    if (!pfs_mount_valid(mh))
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));
    if (name == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: NULL pointer"));
    memset(&bc, 0, sizeof(bc));
    bc.op = PFS_BIN_OP_LOOKUP_CI;
    bc.flags = PFS_BIN_REQ_STAT_EXT;
    bc.ino = dir_ino;
    bc.name = name;
    bc.namelen = strlen(name);
    bc.rbuf = rep;
    bc.rcap = sizeof(rep);
    rc = pfs_bin_call(mh, &bc);
    if (rc != 0)
        PFS_API_RETURN(rc);
    if (bc.rlen <= PFS_BIN_STAT_EXT || bc.rlen > sizeof(rep))
        PFS_API_RETURN(pfs_set_error(EIO, "lookup_ci: malformed reply (%zu bytes)",
                                     bc.rlen));
    nlen = bc.rlen - PFS_BIN_STAT_EXT;
    if (memchr(rep + PFS_BIN_STAT_EXT, 0, nlen) != NULL)
        PFS_API_RETURN(pfs_set_error(EIO, "lookup_ci: malformed reply (NUL in name)"));
    pfs_bin_decode_stat_ext(rep, &st);
    if (out_name != NULL) {
        if ((real = malloc(nlen + 1)) == NULL)
            PFS_API_RETURN(pfs_set_error(ENOMEM, "lookup_ci: out of memory"));
        memcpy(real, rep + PFS_BIN_STAT_EXT, nlen);
        real[nlen] = '\0';
        *out_name = real;
    }
    if (out_ino != NULL)
        *out_ino = st.ino;
    if (out_stat != NULL)
        *out_stat = st;
    PFS_API_RETURN(0);
}
