/* stat_calls.c - calls that return the attributes with the inode, in one
 * request: what an SMB CREATE needs (an open, then a stat) without a
 * second round trip. lookup, stat_at and create use the binary channel
 * (LOOKUP and CREATE reply with the stat record); mkdir and symlink use
 * JSON-RPC, whose replies carry the stat. The non-idempotent ones follow
 * the retry rule of PROTOCOL.md, "Retries", as proxyfs_create does: after a
 * lost attempt, an EEXIST whose entry is what the call makes is success,
 * and the stat returned is that entry's. The stat is written into the
 * caller's proxyfs_stat_t: nothing is allocated. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define CHECK_MH(mh)                                                        \
    do {                                                                    \
        if (!pfs_mount_valid(mh))                                           \
            PFS_API_RETURN(pfs_set_error(EINVAL, "invalid mount handle"));  \
    } while (0)

#define CHECK_ARG(cond, what)                                                \
    do {                                                                     \
        if (!(cond))                                                         \
            PFS_API_RETURN(pfs_set_error(EINVAL, "invalid argument: %s", what)); \
    } while (0)

int proxyfs_lookup_stat(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                        const char *in_basename, uint64_t *out_inode_number,
                        proxyfs_stat_t *out_stat)
{
    proxyfs_stat_t st;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL && out_stat != NULL, "NULL pointer");
    rc = pfs_bin_stat_call(in_mount_handle, PFS_BIN_OP_LOOKUP, in_inode_number,
                           in_basename, 0, &st, NULL);
    if (rc == 0) {
        *out_stat = st;
        if (out_inode_number != NULL)
            *out_inode_number = st.ino;
    }
    PFS_API_RETURN(rc);
}

int proxyfs_stat_at(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                    const char *in_basename, proxyfs_stat_t *out_stat)
{
    proxyfs_stat_t st;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL && out_stat != NULL, "NULL pointer");
    rc = pfs_bin_stat_call(in_mount_handle, PFS_BIN_OP_LOOKUP, in_inode_number,
                           in_basename, 0, &st, NULL);
    if (rc == 0)
        *out_stat = st;
    PFS_API_RETURN(rc);
}

static void stat_result(const proxyfs_stat_t *st, uint64_t *out_ino,
                        proxyfs_stat_t *out_stat)
{
    *out_stat = *st;
    if (out_ino != NULL)
        *out_ino = st->ino;
}

int proxyfs_create_stat(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                        const char *in_basename, mode_t in_mode,
                        uint64_t *out_inode_number, proxyfs_stat_t *out_stat)
{
    pfs_newent_t e = { .method = "create", .type = S_IFREG,
                       .perm = in_mode & 07777, .dir = in_inode_number,
                       .name = in_basename };
    proxyfs_stat_t st;
    bool uncertain = false;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL && out_stat != NULL, "NULL pointer");
    rc = pfs_bin_stat_call(in_mount_handle, PFS_BIN_OP_CREATE, in_inode_number,
                           in_basename, (uint64_t)(in_mode & 07777), &st,
                           &uncertain);
    pfs_mount_changed(in_mount_handle);
    if (rc == EEXIST && uncertain)
        rc = pfs_newent_rule(in_mount_handle, &e, &st);
    if (rc == 0)
        stat_result(&st, out_inode_number, out_stat);
    PFS_API_RETURN(rc);
}

/* mkdir or symlink over JSON-RPC (params consumed); the result's stat. */
static int json_newent(mount_handle_t *mh, json_t *params,
                       const pfs_newent_t *e, proxyfs_stat_t *st)
{
    json_t *res = NULL;
    bool uncertain = false;
    int rc;

    if (params == NULL)
        return pfs_set_error(EINVAL, "%s: invalid argument (a string is not "
                             "valid UTF-8, or out of memory)", e->method);
    rc = pfs_rpc(mh, e->method, params, &uncertain, &res);
    json_decref(params);
    pfs_mount_changed(mh);
    if (rc == 0) {
        if (pfs_json_to_stat(json_object_get(res, "stat"), st) != 0)
            rc = pfs_set_error(EIO, "%s: malformed reply: no stat", e->method);
    } else if (rc == EEXIST && uncertain) {
        rc = pfs_newent_rule(mh, e, st);
    }
    json_decref(res);
    return rc;
}

int proxyfs_mkdir_stat(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                       const char *in_basename, mode_t in_mode,
                       uint64_t *out_inode_number, proxyfs_stat_t *out_stat)
{
    pfs_newent_t e = { .method = "mkdir", .type = S_IFDIR,
                       .perm = in_mode & 07777, .dir = in_inode_number,
                       .name = in_basename };
    proxyfs_stat_t st;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL && out_stat != NULL, "NULL pointer");
    rc = json_newent(in_mount_handle,
                     json_pack("{sIsssI}", "inode", (json_int_t)in_inode_number,
                               "name", in_basename, "mode", (json_int_t)e.perm),
                     &e, &st);
    if (rc == 0)
        stat_result(&st, out_inode_number, out_stat);
    PFS_API_RETURN(rc);
}

int proxyfs_symlink_stat(mount_handle_t *in_mount_handle,
                         uint64_t in_inode_number, const char *in_basename,
                         const char *in_target, uint64_t *out_inode_number,
                         proxyfs_stat_t *out_stat)
{
    pfs_newent_t e = { .method = "symlink", .type = S_IFLNK,
                       .target = in_target, .dir = in_inode_number,
                       .name = in_basename };
    proxyfs_stat_t st;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL && in_target != NULL && out_stat != NULL,
              "NULL pointer");
    rc = json_newent(in_mount_handle,
                     json_pack("{sIssss}", "inode", (json_int_t)in_inode_number,
                               "name", in_basename, "target", in_target),
                     &e, &st);
    if (rc == 0)
        stat_result(&st, out_inode_number, out_stat);
    PFS_API_RETURN(rc);
}

int proxyfs_stat_path_follow(mount_handle_t *in_mount_handle,
                             const char *in_fullpath, proxyfs_stat_t *out_stat)
{
    json_t *params, *res = NULL;
    proxyfs_stat_t st;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && out_stat != NULL, "NULL pointer");
    params = json_pack("{sssb}", "path", in_fullpath, "follow", 1);
    if (params == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "get_stat_path: invalid path "
                                     "(not UTF-8) or out of memory"));
    rc = pfs_rpc(in_mount_handle, "get_stat_path", params, NULL, &res);
    json_decref(params);
    if (rc == 0) {
        if (pfs_json_to_stat(json_object_get(res, "stat"), &st) != 0)
            rc = pfs_set_error(EIO, "malformed stat reply");
        else
            *out_stat = st;
    }
    json_decref(res);
    PFS_API_RETURN(rc);
}

int proxyfs_realpath(mount_handle_t *in_mount_handle, const char *in_fullpath,
                     char **out_path, uint64_t *out_inode_number)
{
    json_t *params, *res = NULL;
    const char *p;
    uint64_t ino = 0;
    char *copy;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && out_path != NULL, "NULL pointer");
    params = json_pack("{ss}", "path", in_fullpath);
    if (params == NULL)
        PFS_API_RETURN(pfs_set_error(EINVAL, "realpath: invalid path (not "
                                     "UTF-8) or out of memory"));
    rc = pfs_rpc(in_mount_handle, "realpath", params, NULL, &res);
    json_decref(params);
    if (rc == 0) {
        p = json_string_value(json_object_get(res, "path"));
        if (p == NULL || pfs_json_get_u64(res, "inode", &ino) != 0) {
            rc = pfs_set_error(EIO, "malformed realpath reply");
        } else if ((copy = strdup(p)) == NULL) {
            rc = pfs_set_error(ENOMEM, "out of memory");
        } else {
            *out_path = copy;
            if (out_inode_number != NULL)
                *out_inode_number = ino;
        }
    }
    json_decref(res);
    PFS_API_RETURN(rc);
}
