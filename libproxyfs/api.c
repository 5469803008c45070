/* api.c - the synchronous API of proxyfs.h: each function checks its
 * arguments, builds the JSON-RPC params, runs the call through pfs_rpc
 * (retries, remount) and converts the result. Data goes over the binary
 * channel (pfs_bin_io), and so do the hot metadata calls of the inode form
 * (lookup, get_stat, create, unlink, flush: pfs_bin_call). Non-idempotent
 * calls apply the retry rule of PROTOCOL.md, "Retries" (below). */
#define _GNU_SOURCE
#include <stdlib.h>
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

/* Runs method with params (consumed) and returns the result in *out (may be
 * NULL). mutates marks calls that change the namespace or attributes.
 * *uncertain (if not NULL): an attempt was lost in flight (pfs_rpc). */
static int call(mount_handle_t *mh, const char *method, json_t *params,
                bool *uncertain, bool mutates, json_t **out)
{
    int rc;

    if (out != NULL)
        *out = NULL;
    if (uncertain != NULL)
        *uncertain = false;
    if (params == NULL)
        return pfs_set_error(EINVAL, "%s: invalid argument (a string is not "
                             "valid UTF-8, or out of memory)", method);
    rc = pfs_rpc(mh, method, params, uncertain, out);
    json_decref(params);
    if (mutates)
        pfs_mount_changed(mh);
    return rc;
}

static int result_inode(json_t *res, uint64_t *out)
{
    uint64_t ino;

    if (pfs_json_get_u64(res, "inode", &ino) != 0)
        return pfs_set_error(EIO, "malformed reply: no inode");
    if (out != NULL)
        *out = ino;
    return 0;
}

/* ------------------------------------------------ binary metadata */

/* A binary call whose reply is a stat record (LOOKUP, GET_STAT, CREATE).
 * *uncertain (if not NULL): an attempt was lost in flight (pfs_rpc). */
static int bin_stat_call(mount_handle_t *mh, uint16_t op, uint64_t ino,
                         const char *name, uint64_t off, proxyfs_stat_t *st,
                         bool *uncertain)
{
    uint8_t rec[PFS_BIN_STAT_EXT];
    pfs_bin_call_t bc = { .op = op, .ino = ino, .off = off, .name = name,
                          .namelen = name != NULL ? strlen(name) : 0,
                          .flags = PFS_BIN_REQ_STAT_EXT,
                          .rbuf = rec, .rcap = sizeof(rec) };
    int rc = pfs_bin_call(mh, &bc);

    if (uncertain != NULL)
        *uncertain = bc.uncertain;
    if (rc != 0)
        return rc;
    if (bc.rlen != PFS_BIN_STAT_EXT)
        return pfs_set_error(EIO, "malformed stat reply (%zu bytes)", bc.rlen);
    pfs_bin_decode_stat_ext(rec, st);
    return 0;
}

int pfs_bin_stat_call(mount_handle_t *mh, uint16_t op, uint64_t ino,
                      const char *name, uint64_t off, proxyfs_stat_t *st,
                      bool *uncertain)
{
    return bin_stat_call(mh, op, ino, name, off, st, uncertain);
}

/* ----------------------------------------------------------- lookups */

int proxyfs_lookup(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                   char *in_basename, uint64_t *out_inode_number)
{
    proxyfs_stat_t st;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL && out_inode_number != NULL, "NULL pointer");
    rc = bin_stat_call(in_mount_handle, PFS_BIN_OP_LOOKUP, in_inode_number,
                       in_basename, 0, &st, NULL);
    if (rc == 0)
        *out_inode_number = st.ino;
    PFS_API_RETURN(rc);
}

static int lookup_path(mount_handle_t *mh, const char *path, uint64_t *out)
{
    json_t *res;
    int rc = call(mh, "lookup_path", json_pack("{ss}", "path", path), NULL,
                  false, &res);

    if (rc == 0)
        rc = result_inode(res, out);
    json_decref(res);
    return rc;
}

int proxyfs_lookup_path(mount_handle_t *in_mount_handle, char *in_fullpath,
                        uint64_t *out_inode_number)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && out_inode_number != NULL, "NULL pointer");
    PFS_API_RETURN(lookup_path(in_mount_handle, in_fullpath, out_inode_number));
}

/* get_stat_path into *st. */
static int stat_path(mount_handle_t *mh, const char *path, proxyfs_stat_t *st)
{
    json_t *res;
    int rc = call(mh, "get_stat_path", json_pack("{ss}", "path", path), NULL,
                  false, &res);

    if (rc == 0 && pfs_json_to_stat(json_object_get(res, "stat"), st) != 0)
        rc = pfs_set_error(EIO, "malformed stat reply");
    json_decref(res);
    return rc;
}

static int read_symlink_common(mount_handle_t *mh, const char *method,
                               json_t *params, const char **out)
{
    json_t *res;
    const char *t;
    int rc = call(mh, method, params, NULL, false, &res);

    if (rc == 0) {
        t = json_string_value(json_object_get(res, "target"));
        if (t == NULL) {
            rc = pfs_set_error(EIO, "malformed reply: no target");
        } else if ((*out = strdup(t)) == NULL) {
            rc = pfs_set_error(ENOMEM, "out of memory");
        }
    }
    json_decref(res);
    return rc;
}

/* ------------------------------------------------------ the retry rule */

/* PROTOCOL.md, "Retries". A non-idempotent call whose attempt was lost in
 * flight (uncertain: the server may have run it) and whose later attempt
 * failed with the errno its own earlier success would cause -- EEXIST for
 * create, mkdir, symlink, link and set_xattr with XATTR_CREATE, ENOENT for
 * rename -- checks the server's state:
 *   - it is what the call makes: success (rule_ok);
 *   - something else is there, or nothing: that errno (rule_differs);
 *   - the check itself fails: EIO, the outcome is unknown
 *     (rule_check_failed).
 * unlink and rmdir (ENOENT) and remove_xattr (ENODATA) need no check: the
 * reply itself says that the entry is gone (removed_by_rule). */

static int rule_ok(void)
{
    pfs_clear_error();
    return 0;
}

static int rule_differs(const char *method, int orig, const char *what)
{
    return pfs_set_error(orig, "%s: retried after a lost reply: %s", method,
                         what);
}

/* The check failed with check_rc: ENOENT, ENOTDIR and ENODATA are answers
 * (nothing is there: orig); any other error leaves the outcome unknown. */
static int rule_check_failed(const char *method, int orig, int check_rc)
{
    if (check_rc == ENOENT || check_rc == ENOTDIR || check_rc == ENODATA)
        return rule_differs(method, orig, "it is not there any more");
    return pfs_set_error(EIO, "%s: retried after a lost reply and got %s; "
                         "its outcome is unknown: checking failed: %s",
                         method, pfs_errno_name(orig), proxyfs_last_error());
}

/* A remove (unlink, rmdir, remove_xattr; gone = ENOENT or ENODATA). */
static int removed_by_rule(int rc, bool uncertain, int gone)
{
    return rc == gone && uncertain ? rule_ok() : rc;
}

/* The rule for a create, mkdir or symlink that got EEXIST after an
 * uncertain attempt: the entry must have the call's type, the uid the
 * server acts as for the mount, and the call's permission bits but for
 * the setgid bit (create, mkdir) or target (symlink). Its group is not
 * compared: a setgid directory gives new entries its own group, and new
 * directories its setgid bit. On success *out (if not NULL) is its
 * inode. */
static int newent_rule(mount_handle_t *mh, const pfs_newent_t *e,
                       uint64_t *out)
{
    proxyfs_stat_t st;
    int rc = pfs_newent_rule(mh, e, &st);

    if (rc == 0 && out != NULL)
        *out = st.ino;
    return rc;
}

int pfs_newent_rule(mount_handle_t *mh, const pfs_newent_t *e,
                    proxyfs_stat_t *out_st)
{
    proxyfs_stat_t st;
    const char *t = NULL;
    uint64_t act_uid;
    bool same;
    int rc;

    if (e->name != NULL)
        rc = bin_stat_call(mh, PFS_BIN_OP_LOOKUP, e->dir, e->name, 0, &st,
                           NULL);
    else
        rc = stat_path(mh, e->path, &st);
    if (rc != 0)
        return rule_check_failed(e->method, EEXIST, rc);
    if ((st.mode & S_IFMT) != e->type)
        return rule_differs(e->method, EEXIST, "an entry of another type is there");
    pthread_mutex_lock(&mh->lock);
    act_uid = mh->act_uid;
    pthread_mutex_unlock(&mh->lock);
    /* The call ran as the thread's identity, if it has one (a squashed
     * root's anonymous uid is not known here: such a retry reports
     * EEXIST, the safe answer). */
    if (pfs_thread_ident.set)
        act_uid = pfs_thread_ident.uid;
    if (st.uid != act_uid)
        return rule_differs(e->method, EEXIST, "the entry has another owner");
    if (e->type != S_IFLNK && (st.mode & 05777) != (e->perm & 05777))
        return rule_differs(e->method, EEXIST,
                            "the entry has other permission bits");
    if (e->target != NULL) {
        rc = read_symlink_common(mh, "read_symlink",
                                 json_pack("{sI}", "inode", (json_int_t)st.ino),
                                 &t);
        if (rc != 0)
            return rule_check_failed(e->method, EEXIST, rc);
        same = strcmp(t, e->target) == 0;
        free((void *)t);
        if (!same)
            return rule_differs(e->method, EEXIST,
                                "the symlink has another target");
    }
    *out_st = st;
    return rule_ok();
}

/* The rule for a rename that got ENOENT after an uncertain attempt: the
 * destination must exist (path, or name in dir). */
static int renamed_rule(mount_handle_t *mh, const char *method, uint64_t dir,
                        const char *name, const char *path)
{
    proxyfs_stat_t st;
    uint64_t ino;
    int rc = name != NULL ? bin_stat_call(mh, PFS_BIN_OP_LOOKUP, dir, name, 0,
                                          &st, NULL)
                          : lookup_path(mh, path, &ino);

    return rc != 0 ? rule_check_failed(method, ENOENT, rc) : rule_ok();
}

/* ------------------------------------------------- create and friends */

/* A create, mkdir or symlink over JSON-RPC: *out (if not NULL) gets the
 * new inode. */
static int create_common(mount_handle_t *mh, json_t *params,
                         const pfs_newent_t *e, uint64_t *out)
{
    json_t *res;
    bool uncertain;
    int rc = call(mh, e->method, params, &uncertain, true, &res);

    if (rc == 0)
        rc = result_inode(res, out);
    else if (rc == EEXIST && uncertain)
        rc = newent_rule(mh, e, out);
    json_decref(res);
    return rc;
}

int proxyfs_create(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                   char *in_basename, mode_t in_mode, uint64_t *out_inode_number)
{
    pfs_newent_t e = { .method = "create", .type = S_IFREG,
                       .perm = in_mode & 07777, .dir = in_inode_number,
                       .name = in_basename };
    proxyfs_stat_t st;
    bool uncertain = false;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL && out_inode_number != NULL, "NULL pointer");
    rc = bin_stat_call(in_mount_handle, PFS_BIN_OP_CREATE, in_inode_number,
                       in_basename, (uint64_t)(in_mode & 07777), &st,
                       &uncertain);
    pfs_mount_changed(in_mount_handle);
    if (rc == 0)
        *out_inode_number = st.ino;
    else if (rc == EEXIST && uncertain)
        rc = newent_rule(in_mount_handle, &e, out_inode_number);
    PFS_API_RETURN(rc);
}

int proxyfs_create_path(mount_handle_t *in_mount_handle, char *in_fullpath,
                        mode_t in_mode, uint64_t *out_inode_number)
{
    pfs_newent_t e = { .method = "create_path", .type = S_IFREG,
                       .perm = in_mode & 07777, .path = in_fullpath };

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && out_inode_number != NULL, "NULL pointer");
    PFS_API_RETURN(create_common(
        in_mount_handle,
        json_pack("{sssI}", "path", in_fullpath, "mode", (json_int_t)e.perm),
        &e, out_inode_number));
}

int proxyfs_mkdir(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                  char *in_basename, mode_t in_mode, uint64_t *out_inode_number)
{
    pfs_newent_t e = { .method = "mkdir", .type = S_IFDIR,
                       .perm = in_mode & 07777, .dir = in_inode_number,
                       .name = in_basename };

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL, "NULL name");
    PFS_API_RETURN(create_common(
        in_mount_handle,
        json_pack("{sIsssI}", "inode", (json_int_t)in_inode_number, "name",
                  in_basename, "mode", (json_int_t)e.perm),
        &e, out_inode_number));
}

int proxyfs_mkdir_path(mount_handle_t *in_mount_handle, char *in_fullpath,
                       mode_t in_mode)
{
    pfs_newent_t e = { .method = "mkdir_path", .type = S_IFDIR,
                       .perm = in_mode & 07777, .path = in_fullpath };

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL, "NULL path");
    PFS_API_RETURN(create_common(
        in_mount_handle,
        json_pack("{sssI}", "path", in_fullpath, "mode", (json_int_t)e.perm),
        &e, NULL));
}

int proxyfs_symlink(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                    char *in_basename, char *in_target)
{
    pfs_newent_t e = { .method = "symlink", .type = S_IFLNK,
                       .target = in_target, .dir = in_inode_number,
                       .name = in_basename };

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL && in_target != NULL, "NULL pointer");
    PFS_API_RETURN(create_common(
        in_mount_handle,
        json_pack("{sIssss}", "inode", (json_int_t)in_inode_number, "name",
                  in_basename, "target", in_target),
        &e, NULL));
}

int proxyfs_symlink_path(mount_handle_t *in_mount_handle, char *in_fullpath,
                         char *in_target_fullpath)
{
    pfs_newent_t e = { .method = "symlink_path", .type = S_IFLNK,
                       .target = in_target_fullpath, .path = in_fullpath };

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && in_target_fullpath != NULL, "NULL pointer");
    PFS_API_RETURN(create_common(
        in_mount_handle,
        json_pack("{ssss}", "path", in_fullpath, "target", in_target_fullpath),
        &e, NULL));
}

int proxyfs_read_symlink(mount_handle_t *in_mount_handle,
                         uint64_t in_inode_number, const char **out_target)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(out_target != NULL, "NULL pointer");
    PFS_API_RETURN(read_symlink_common(
        in_mount_handle, "read_symlink",
        json_pack("{sI}", "inode", (json_int_t)in_inode_number), out_target));
}

int proxyfs_read_symlink_path(mount_handle_t *in_mount_handle,
                              char *in_fullpath, const char **out_target)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && out_target != NULL, "NULL pointer");
    PFS_API_RETURN(read_symlink_common(in_mount_handle, "read_symlink_path",
                                       json_pack("{ss}", "path", in_fullpath),
                                       out_target));
}

int proxyfs_link(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                 char *in_basename, uint64_t in_target_inode_number)
{
    proxyfs_stat_t st;
    bool uncertain;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL, "NULL name");
    rc = call(in_mount_handle, "link",
              json_pack("{sIsssI}", "inode", (json_int_t)in_inode_number,
                        "name", in_basename, "target_inode",
                        (json_int_t)in_target_inode_number),
              &uncertain, true, NULL);
    if (rc == EEXIST && uncertain) {
        /* The rule: the name must be a link of the target inode. */
        int c = bin_stat_call(in_mount_handle, PFS_BIN_OP_LOOKUP,
                              in_inode_number, in_basename, 0, &st, NULL);

        if (c != 0)
            rc = rule_check_failed("link", EEXIST, c);
        else if (st.ino != in_target_inode_number)
            rc = rule_differs("link", EEXIST, "the name is another inode");
        else
            rc = rule_ok();
    }
    PFS_API_RETURN(rc);
}

int proxyfs_link_path(mount_handle_t *in_mount_handle, char *in_src_fullpath,
                      char *in_tgt_fullpath)
{
    uint64_t src, dst;
    bool uncertain;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_src_fullpath != NULL && in_tgt_fullpath != NULL, "NULL path");
    rc = call(in_mount_handle, "link_path",
              json_pack("{ssss}", "src_path", in_src_fullpath, "dst_path",
                        in_tgt_fullpath),
              &uncertain, true, NULL);
    if (rc == EEXIST && uncertain) {
        /* The rule: both paths must name the same inode. */
        int c = lookup_path(in_mount_handle, in_src_fullpath, &src);

        if (c == 0)
            c = lookup_path(in_mount_handle, in_tgt_fullpath, &dst);
        if (c != 0)
            rc = rule_check_failed("link_path", EEXIST, c);
        else if (src != dst)
            rc = rule_differs("link_path", EEXIST, "the name is another inode");
        else
            rc = rule_ok();
    }
    PFS_API_RETURN(rc);
}

/* unlink, rmdir and remove_xattr (inode and path forms) over JSON-RPC. */
static int removal(mount_handle_t *mh, const char *method, json_t *params,
                   int gone)
{
    bool uncertain;
    int rc = call(mh, method, params, &uncertain, true, NULL);

    return removed_by_rule(rc, uncertain, gone);
}

int proxyfs_unlink(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                   char *in_basename)
{
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_UNLINK, .ino = in_inode_number,
                          .name = in_basename };
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL, "NULL name");
    bc.namelen = strlen(in_basename);
    rc = pfs_bin_call(in_mount_handle, &bc);
    pfs_mount_changed(in_mount_handle);
    PFS_API_RETURN(removed_by_rule(rc, bc.uncertain, ENOENT));
}

int proxyfs_unlink_path(mount_handle_t *in_mount_handle, char *in_fullpath)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL, "NULL path");
    PFS_API_RETURN(removal(in_mount_handle, "unlink_path",
                           json_pack("{ss}", "path", in_fullpath), ENOENT));
}

int proxyfs_rmdir(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                  char *in_basename)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_basename != NULL, "NULL name");
    PFS_API_RETURN(removal(in_mount_handle, "rmdir",
                           json_pack("{sIss}", "inode",
                                     (json_int_t)in_inode_number, "name",
                                     in_basename),
                           ENOENT));
}

int proxyfs_rmdir_path(mount_handle_t *in_mount_handle, char *in_fullpath)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL, "NULL path");
    PFS_API_RETURN(removal(in_mount_handle, "rmdir_path",
                           json_pack("{ss}", "path", in_fullpath), ENOENT));
}

int proxyfs_rename(mount_handle_t *in_mount_handle,
                   uint64_t in_src_dir_inode_number, char *in_src_basename,
                   uint64_t in_dst_dir_inode_number, char *in_dst_basename)
{
    bool uncertain;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_src_basename != NULL && in_dst_basename != NULL, "NULL name");
    rc = call(in_mount_handle, "rename",
              json_pack("{sIsssIss}", "src_inode",
                        (json_int_t)in_src_dir_inode_number, "src_name",
                        in_src_basename, "dst_inode",
                        (json_int_t)in_dst_dir_inode_number, "dst_name",
                        in_dst_basename),
              &uncertain, true, NULL);
    if (rc == ENOENT && uncertain)
        rc = renamed_rule(in_mount_handle, "rename", in_dst_dir_inode_number,
                          in_dst_basename, NULL);
    PFS_API_RETURN(rc);
}

int proxyfs_rename_path(mount_handle_t *in_mount_handle, char *in_src_fullpath,
                        char *in_dst_fullpath)
{
    bool uncertain;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_src_fullpath != NULL && in_dst_fullpath != NULL, "NULL path");
    rc = call(in_mount_handle, "rename_path",
              json_pack("{ssss}", "src_path", in_src_fullpath, "dst_path",
                        in_dst_fullpath),
              &uncertain, true, NULL);
    if (rc == ENOENT && uncertain)
        rc = renamed_rule(in_mount_handle, "rename_path", 0, NULL,
                          in_dst_fullpath);
    PFS_API_RETURN(rc);
}

/* --------------------------------------------------------- attributes */

/* A stat copied to a malloc()ed *out. */
static int stat_out(int rc, const proxyfs_stat_t *st, proxyfs_stat_t **out)
{
    proxyfs_stat_t *p;

    if (rc != 0)
        return rc;
    if ((p = malloc(sizeof(*p))) == NULL)
        return pfs_set_error(ENOMEM, "out of memory");
    *p = *st;
    *out = p;
    return 0;
}

int proxyfs_get_stat(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                     proxyfs_stat_t **out_stat)
{
    proxyfs_stat_t st;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(out_stat != NULL, "NULL pointer");
    PFS_API_RETURN(stat_out(bin_stat_call(in_mount_handle, PFS_BIN_OP_GET_STAT,
                                          in_inode_number, NULL, 0, &st, NULL),
                            &st, out_stat));
}

int proxyfs_get_stat_path(mount_handle_t *in_mount_handle, char *in_fullpath,
                          proxyfs_stat_t **out_stat)
{
    proxyfs_stat_t st;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && out_stat != NULL, "NULL pointer");
    PFS_API_RETURN(stat_out(stat_path(in_mount_handle, in_fullpath, &st), &st,
                            out_stat));
}

int proxyfs_type(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                 uint16_t *out_file_type)
{
    json_t *res;
    uint64_t t;
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(out_file_type != NULL, "NULL pointer");
    rc = call(in_mount_handle, "type",
              json_pack("{sI}", "inode", (json_int_t)in_inode_number),
              NULL, false, &res);
    if (rc == 0) {
        if (pfs_json_get_u64(res, "type", &t) != 0)
            rc = pfs_set_error(EIO, "malformed type reply");
        else
            *out_file_type = (uint16_t)t;
    }
    json_decref(res);
    PFS_API_RETURN(rc);
}

int proxyfs_chmod(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                  mode_t in_mode)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    PFS_API_RETURN(call(in_mount_handle, "chmod",
                        json_pack("{sIsI}", "inode", (json_int_t)in_inode_number,
                                  "mode", (json_int_t)(in_mode & 07777)),
                        NULL, true, NULL));
}

int proxyfs_chmod_path(mount_handle_t *in_mount_handle, char *in_fullpath,
                       mode_t in_mode)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL, "NULL path");
    PFS_API_RETURN(call(in_mount_handle, "chmod_path",
                        json_pack("{sssI}", "path", in_fullpath, "mode",
                                  (json_int_t)(in_mode & 07777)),
                        NULL, true, NULL));
}

static json_int_t id_or_minus1(uint32_t id)
{
    return id == (uint32_t)-1 ? -1 : (json_int_t)id;
}

int proxyfs_chown(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                  uid_t in_owner, gid_t in_group)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    PFS_API_RETURN(call(in_mount_handle, "chown",
                        json_pack("{sIsIsI}", "inode", (json_int_t)in_inode_number,
                                  "uid", id_or_minus1(in_owner), "gid",
                                  id_or_minus1(in_group)),
                        NULL, true, NULL));
}

int proxyfs_chown_path(mount_handle_t *in_mount_handle, char *in_fullpath,
                       uid_t in_owner, gid_t in_group)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL, "NULL path");
    PFS_API_RETURN(call(in_mount_handle, "chown_path",
                        json_pack("{sssIsI}", "path", in_fullpath, "uid",
                                  id_or_minus1(in_owner), "gid",
                                  id_or_minus1(in_group)),
                        NULL, true, NULL));
}

int proxyfs_resize(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                   uint64_t in_new_size)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_new_size <= INT64_MAX, "size too large");
    PFS_API_RETURN(call(in_mount_handle, "resize",
                        json_pack("{sIsI}", "inode", (json_int_t)in_inode_number,
                                  "size", (json_int_t)in_new_size),
                        NULL, true, NULL));
}

static json_t *ts_or_null(const proxyfs_timespec_t *ts)
{
    return ts != NULL ? pfs_json_timespec(ts) : json_null();
}

static bool ts_ok(const proxyfs_timespec_t *ts)
{
    /* Any sec: it is two's complement (before 1970 when negative). */
    return ts == NULL || ts->nsec <= 999999999u;
}

int proxyfs_settime(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                    proxyfs_timespec_t *in_atim, proxyfs_timespec_t *in_mtim)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(ts_ok(in_atim) && ts_ok(in_mtim), "timespec out of range");
    PFS_API_RETURN(call(in_mount_handle, "settime",
                        json_pack("{sIsoso}", "inode", (json_int_t)in_inode_number,
                                  "atime", ts_or_null(in_atim), "mtime",
                                  ts_or_null(in_mtim)),
                        NULL, true, NULL));
}

int proxyfs_settime_path(mount_handle_t *in_mount_handle, char *in_fullpath,
                         proxyfs_timespec_t *in_atim, proxyfs_timespec_t *in_mtim)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL, "NULL path");
    CHECK_ARG(ts_ok(in_atim) && ts_ok(in_mtim), "timespec out of range");
    PFS_API_RETURN(call(in_mount_handle, "settime_path",
                        json_pack("{sssoso}", "path", in_fullpath, "atime",
                                  ts_or_null(in_atim), "mtime",
                                  ts_or_null(in_mtim)),
                        NULL, true, NULL));
}

#define SETATTR_ALL 0x1ff

/* Adds the fields selected by mask to params (consumed on failure). */
static json_t *setattr_params(json_t *params, uint64_t mask,
                              const proxyfs_setattr_t *a)
{
    int bad = 0;

    if (params == NULL)
        return NULL;
    bad |= json_object_set_new(params, "mask", json_integer((json_int_t)mask));
    if (mask & PROXYFS_SETATTR_SIZE)
        bad |= json_object_set_new(params, "size", json_integer((json_int_t)a->size));
    if (mask & PROXYFS_SETATTR_MODE)
        bad |= json_object_set_new(params, "mode",
                                   json_integer((json_int_t)(a->mode & 07777)));
    if (mask & PROXYFS_SETATTR_UID)
        bad |= json_object_set_new(params, "uid", json_integer((json_int_t)a->uid));
    if (mask & PROXYFS_SETATTR_GID)
        bad |= json_object_set_new(params, "gid", json_integer((json_int_t)a->gid));
    if (mask & PROXYFS_SETATTR_ATIME)
        bad |= json_object_set_new(params, "atime", pfs_json_timespec(&a->atim));
    if (mask & PROXYFS_SETATTR_MTIME)
        bad |= json_object_set_new(params, "mtime", pfs_json_timespec(&a->mtim));
    if (mask & PROXYFS_SETATTR_CRTIME)
        bad |= json_object_set_new(params, "crtime", pfs_json_timespec(&a->crtim));
    if (bad) {
        json_decref(params);
        return NULL;
    }
    return params;
}

static int setattr_common(mount_handle_t *mh, const char *method, json_t *params,
                          proxyfs_stat_t *out_stat)
{
    json_t *res;
    int rc = call(mh, method, params, NULL, true, &res);

    if (rc == 0 && out_stat != NULL &&
        pfs_json_to_stat(json_object_get(res, "stat"), out_stat) != 0)
        rc = pfs_set_error(EIO, "malformed setattr reply");
    json_decref(res);
    return rc;
}

static bool setattr_ok(uint64_t mask, const proxyfs_setattr_t *a)
{
    if (mask & ~(uint64_t)SETATTR_ALL)
        return false;
    if (mask != 0 && a == NULL)
        return false;
    if (a == NULL)
        return true;
    if (a->size > INT64_MAX || a->uid > UINT32_MAX || a->gid > UINT32_MAX)
        return false;
    return ts_ok(&a->atim) && ts_ok(&a->mtim) && ts_ok(&a->crtim);
}

int proxyfs_setattr(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                    uint64_t in_mask, const proxyfs_setattr_t *in_attr,
                    proxyfs_stat_t *out_stat)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(setattr_ok(in_mask, in_attr), "setattr mask or attributes");
    PFS_API_RETURN(pfs_bin_setattr(in_mount_handle, in_inode_number, in_mask,
                                   in_attr, out_stat));
}

int proxyfs_setattr_path(mount_handle_t *in_mount_handle, const char *in_fullpath,
                         uint64_t in_mask, const proxyfs_setattr_t *in_attr,
                         proxyfs_stat_t *out_stat)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL, "NULL path");
    CHECK_ARG(setattr_ok(in_mask, in_attr), "setattr mask or attributes");
    PFS_API_RETURN(setattr_common(
        in_mount_handle, "setattr_path",
        setattr_params(json_pack("{ss}", "path", in_fullpath), in_mask, in_attr),
        out_stat));
}

int proxyfs_statvfs(mount_handle_t *in_mount_handle, struct statvfs **out_statvfs)
{
    json_t *res;
    struct statvfs *sv;
    uint64_t v[11];
    static const char *const keys[11] = { "bsize", "frsize", "blocks", "bfree",
                                          "bavail", "files", "ffree", "favail",
                                          "fsid", "flag", "namemax" };
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(out_statvfs != NULL, "NULL pointer");
    rc = call(in_mount_handle, "statvfs", json_object(), NULL, false, &res);
    for (int i = 0; rc == 0 && i < 11; i++)
        if (pfs_json_get_u64(res, keys[i], &v[i]) != 0)
            rc = pfs_set_error(EIO, "malformed statvfs reply: %s", keys[i]);
    if (rc == 0) {
        sv = calloc(1, sizeof(*sv));
        if (sv == NULL) {
            rc = pfs_set_error(ENOMEM, "out of memory");
        } else {
            sv->f_bsize = v[0];
            sv->f_frsize = v[1];
            sv->f_blocks = v[2];
            sv->f_bfree = v[3];
            sv->f_bavail = v[4];
            sv->f_files = v[5];
            sv->f_ffree = v[6];
            sv->f_favail = v[7];
            sv->f_fsid = v[8];
            sv->f_flag = v[9];
            sv->f_namemax = v[10];
            *out_statvfs = sv;
        }
    }
    json_decref(res);
    PFS_API_RETURN(rc);
}

/* --------------------------------------------------------------- data */

int proxyfs_flush(mount_handle_t *in_mount_handle, uint64_t in_inode_number)
{
    pfs_bin_call_t bc = { .op = PFS_BIN_OP_FLUSH, .ino = in_inode_number };
    int rc;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    rc = pfs_bin_call(in_mount_handle, &bc);
    PFS_API_RETURN(pfs_gone(in_inode_number, rc));
}

int proxyfs_read(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                 uint64_t in_offset, uint64_t in_length, uint8_t *in_bufptr,
                 size_t in_bufsize, size_t *out_bufsize)
{
    size_t want = in_length < in_bufsize ? (size_t)in_length : in_bufsize;
    size_t done = 0, maxio;
    int rc = 0;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(out_bufsize != NULL && (in_bufptr != NULL || want == 0),
              "NULL pointer");
    maxio = pfs_mount_max_io(in_mount_handle);
    while (done < want) {
        size_t chunk = want - done > maxio ? maxio : want - done, got = 0;

        /* One request on a direct socket: the daemon sends the data with
         * sendfile(2) as the socket drains, so (unlike writes, below)
         * splitting it into pieces in flight at once gains nothing; it
         * measured 1.5-2x slower. */
        rc = pfs_bin_io(in_mount_handle, PFS_BIN_OP_READ, in_inode_number,
                        in_offset + done, in_bufptr + done, chunk, &got);
        if (rc != 0)
            break;
        done += got;
        if (got < chunk)
            break; /* end of file */
    }
    if (rc == 0 && want == 0) {
        /* A zero-length read still checks the inode. */
        rc = pfs_bin_io(in_mount_handle, PFS_BIN_OP_READ, in_inode_number,
                        in_offset, in_bufptr, 0, &done);
        done = 0;
    }
    if (rc == 0)
        *out_bufsize = done;
    PFS_API_RETURN(pfs_gone(in_inode_number, rc));
}

int proxyfs_write(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                  uint64_t in_offset, uint8_t *in_bufptr, size_t in_bufsize,
                  size_t *out_size)
{
    size_t done = 0, maxio;
    int rc = 0;

    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(out_size != NULL && (in_bufptr != NULL || in_bufsize == 0),
              "NULL pointer");
    maxio = pfs_mount_max_io(in_mount_handle);
    do {
        size_t chunk = in_bufsize - done > maxio ? maxio : in_bufsize - done;
        size_t put = 0;

        rc = pfs_bin_write_striped(in_mount_handle, in_inode_number,
                                   in_offset + done, in_bufptr + done, chunk,
                                   &put);
        if (rc != 0)
            break;
        done += put;
        if (put < chunk)
            break;
    } while (done < in_bufsize);
    pfs_mount_changed(in_mount_handle);
    if (rc == 0)
        *out_size = done;
    PFS_API_RETURN(pfs_gone(in_inode_number, rc));
}

/* ------------------------------------------------------------- xattrs */

static int get_xattr_common(mount_handle_t *mh, const char *method,
                            json_t *params, void *value, size_t size,
                            size_t *out_size)
{
    json_t *res, *v;
    uint8_t *data = NULL;
    size_t n = 0;
    int rc = call(mh, method, params, NULL, false, &res);

    if (rc == 0) {
        v = json_object_get(res, "value");
        if (json_is_string(v))
            rc = pfs_b64_decode(json_string_value(v), &data, &n);
        else if (v != NULL && !json_is_null(v))
            rc = EPROTO;
        if (rc != 0)
            rc = pfs_set_error(rc == ENOMEM ? ENOMEM : EIO,
                               "malformed xattr value");
    }
    if (rc == 0) {
        *out_size = n;
        if (size > 0 && size < n)
            rc = pfs_set_error(ERANGE, "xattr value is %zu bytes, buffer %zu",
                               n, size);
        else if (size > 0 && n > 0)
            memcpy(value, data, n);
    }
    free(data);
    json_decref(res);
    return rc;
}

int proxyfs_get_xattr(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                      const char *in_name, void *out_value, size_t in_size,
                      size_t *out_size)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_name != NULL && out_size != NULL &&
                  (out_value != NULL || in_size == 0),
              "NULL pointer");
    PFS_API_RETURN(pfs_bin_get_xattr(in_mount_handle, in_inode_number, in_name,
                                     out_value, in_size, out_size));
}

int proxyfs_get_xattr_path(mount_handle_t *in_mount_handle,
                           const char *in_fullpath, const char *in_name,
                           void *out_value, size_t in_size, size_t *out_size)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && in_name != NULL && out_size != NULL &&
                  (out_value != NULL || in_size == 0),
              "NULL pointer");
    PFS_API_RETURN(get_xattr_common(
        in_mount_handle, "get_xattr_path",
        json_pack("{ssss}", "path", in_fullpath, "name", in_name), out_value,
        in_size, out_size));
}

static int list_xattr_common(mount_handle_t *mh, const char *method,
                             json_t *params, char *list, size_t size,
                             size_t *out_size)
{
    json_t *res, *names, *nm;
    size_t total = 0, i, off = 0;
    int rc = call(mh, method, params, NULL, false, &res);

    if (rc == 0) {
        names = json_object_get(res, "names");
        if (names != NULL && !json_is_null(names) && !json_is_array(names)) {
            rc = pfs_set_error(EIO, "malformed list_xattr reply");
        } else {
            json_array_foreach(names, i, nm)
                total += json_string_length(nm) + 1;
            *out_size = total;
            if (size > 0 && size < total) {
                rc = pfs_set_error(ERANGE, "xattr list is %zu bytes, buffer %zu",
                                   total, size);
            } else if (size > 0) {
                json_array_foreach(names, i, nm) {
                    size_t l = json_string_length(nm);

                    memcpy(list + off, json_string_value(nm), l);
                    list[off + l] = '\0';
                    off += l + 1;
                }
            }
        }
    }
    json_decref(res);
    return rc;
}

int proxyfs_list_xattr(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                       char *out_list, size_t in_size, size_t *out_size)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(out_size != NULL && (out_list != NULL || in_size == 0),
              "NULL pointer");
    PFS_API_RETURN(pfs_bin_list_xattr(in_mount_handle, in_inode_number,
                                      out_list, in_size, out_size));
}

int proxyfs_list_xattr_path(mount_handle_t *in_mount_handle,
                            const char *in_fullpath, char *out_list,
                            size_t in_size, size_t *out_size)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && out_size != NULL &&
                  (out_list != NULL || in_size == 0),
              "NULL pointer");
    PFS_API_RETURN(list_xattr_common(in_mount_handle, "list_xattr_path",
                                     json_pack("{ss}", "path", in_fullpath),
                                     out_list, in_size, out_size));
}

/* The rule for a set_xattr with XATTR_CREATE that got EEXIST after an
 * uncertain attempt: the attribute must hold the call's value. gp is the
 * get_xattr(_path) params (consumed). */
static int xattr_created_rule(mount_handle_t *mh, const char *method,
                              const char *get_method, json_t *gp,
                              const void *value, size_t size)
{
    uint8_t *buf = malloc(size + 1);
    size_t n = 0;
    int rc;

    if (buf == NULL) {
        json_decref(gp);
        return rule_check_failed(method, EEXIST,
                                 pfs_set_error(ENOMEM, "out of memory"));
    }
    /* A buffer one byte larger than the value: a longer one is ERANGE. */
    rc = get_xattr_common(mh, get_method, gp, buf, size + 1, &n);
    if (rc == ERANGE || (rc == 0 && (n != size ||
                                     (size > 0 && memcmp(buf, value, size) != 0))))
        rc = rule_differs(method, EEXIST, "the attribute has another value");
    else if (rc != 0)
        rc = rule_check_failed(method, EEXIST, rc);
    else
        rc = rule_ok();
    free(buf);
    return rc;
}

static int set_xattr_common(mount_handle_t *mh, const char *method,
                            const char *get_method, json_t *params,
                            const char *name, const void *value, size_t size,
                            int flags)
{
    json_t *gp = NULL;
    bool uncertain;
    char *b64;
    int rc;

    if (params == NULL)
        return call(mh, method, NULL, NULL, false, NULL);
    b64 = pfs_b64_encode(value, size);
    if (b64 == NULL) {
        json_decref(params);
        return pfs_set_error(ENOMEM, "out of memory");
    }
    if (json_object_set_new(params, "name", json_string(name)) != 0 ||
        ((flags & PROXYFS_XATTR_CREATE) && (gp = json_copy(params)) == NULL) ||
        json_object_set_new(params, "value", json_string(b64)) != 0 ||
        json_object_set_new(params, "flags", json_integer(flags)) != 0) {
        json_decref(params);
        params = NULL;
    }
    free(b64);
    rc = call(mh, method, params, &uncertain, true, NULL);
    /* XATTR_REPLACE and no flags are idempotent: the same value again. */
    if (rc == EEXIST && uncertain && gp != NULL) {
        rc = xattr_created_rule(mh, method, get_method, gp, value, size);
        gp = NULL;
    }
    json_decref(gp);
    return rc;
}

int proxyfs_set_xattr(mount_handle_t *in_mount_handle, uint64_t in_inode_number,
                      const char *in_name, const void *in_value, size_t in_size,
                      int in_flags)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_name != NULL && (in_value != NULL || in_size == 0),
              "NULL pointer");
    CHECK_ARG((in_flags & ~(PROXYFS_XATTR_CREATE | PROXYFS_XATTR_REPLACE)) == 0,
              "xattr flags");
    if (strlen(in_name) <= 255 && in_size <= 65536) {
        /* Binary SET_XATTR (longer names and values: JSON-RPC, for the
         * server's own errno). */
        bool uncertain = false;
        int rc = pfs_bin_set_xattr(in_mount_handle, in_inode_number, in_name,
                                   in_value, in_size, in_flags, &uncertain);

        if (rc == EEXIST && uncertain && (in_flags & PROXYFS_XATTR_CREATE))
            rc = xattr_created_rule(in_mount_handle, "set_xattr", "get_xattr",
                                    json_pack("{sIss}", "inode",
                                              (json_int_t)in_inode_number,
                                              "name", in_name),
                                    in_value, in_size);
        PFS_API_RETURN(rc);
    }
    PFS_API_RETURN(set_xattr_common(
        in_mount_handle, "set_xattr", "get_xattr",
        json_pack("{sI}", "inode", (json_int_t)in_inode_number), in_name,
        in_value, in_size, in_flags));
}

int proxyfs_set_xattr_path(mount_handle_t *in_mount_handle,
                           const char *in_fullpath, const char *in_name,
                           const void *in_value, size_t in_size, int in_flags)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && in_name != NULL &&
                  (in_value != NULL || in_size == 0),
              "NULL pointer");
    CHECK_ARG((in_flags & ~(PROXYFS_XATTR_CREATE | PROXYFS_XATTR_REPLACE)) == 0,
              "xattr flags");
    PFS_API_RETURN(set_xattr_common(in_mount_handle, "set_xattr_path",
                                    "get_xattr_path",
                                    json_pack("{ss}", "path", in_fullpath),
                                    in_name, in_value, in_size, in_flags));
}

int proxyfs_remove_xattr(mount_handle_t *in_mount_handle,
                         uint64_t in_inode_number, const char *in_name)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_name != NULL, "NULL name");
    PFS_API_RETURN(removal(in_mount_handle, "remove_xattr",
                           json_pack("{sIss}", "inode",
                                     (json_int_t)in_inode_number, "name",
                                     in_name),
                           ENODATA));
}

int proxyfs_remove_xattr_path(mount_handle_t *in_mount_handle,
                              const char *in_fullpath, const char *in_name)
{
    PFS_API_ENTER();
    CHECK_MH(in_mount_handle);
    CHECK_ARG(in_fullpath != NULL && in_name != NULL, "NULL pointer");
    PFS_API_RETURN(removal(in_mount_handle, "remove_xattr_path",
                           json_pack("{ssss}", "path", in_fullpath, "name",
                                     in_name),
                           ENODATA));
}
