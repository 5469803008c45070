/* jsonrpc.c - the JSON-RPC 2.0 codec: Content-Length framing of requests and
 * decoding of replies. It does no I/O, so the unit tests feed it buffers. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *pfs_json_encode_request(uint64_t id, const char *method,
                              const json_t *params, size_t *out_len)
{
    json_t *req;
    char *body, *frame;
    size_t blen, hlen;
    char hdr[64];

    req = json_object();
    if (req == NULL)
        return NULL;
    if (json_object_set_new(req, "jsonrpc", json_string("2.0")) != 0 ||
        json_object_set_new(req, "id", json_integer((json_int_t)id)) != 0 ||
        json_object_set_new(req, "method", json_string(method)) != 0 ||
        json_object_set(req, "params", (json_t *)params) != 0) {
        json_decref(req);
        return NULL;
    }
    body = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(req);
    if (body == NULL)
        return NULL;
    blen = strlen(body);
    hlen = (size_t)snprintf(hdr, sizeof(hdr), "Content-Length: %zu\r\n\r\n", blen);
    frame = malloc(hlen + blen + 1);
    if (frame != NULL) {
        memcpy(frame, hdr, hlen);
        memcpy(frame + hlen, body, blen + 1);
        *out_len = hlen + blen;
    }
    free(body);
    return frame;
}

int pfs_json_parse_header(const char *hdr, size_t len, size_t *out)
{
    const char *p = hdr, *end = hdr + len;
    bool found = false;
    size_t n = 0;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t l;

        if (eol == NULL || eol == p || eol[-1] != '\r')
            return EPROTO;
        l = (size_t)(eol - p) - 1; /* without \r */
        if (l == 0)
            break; /* blank line: end of headers */
        if (l > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
            const char *q = p + 15;
            const char *qe = p + l;

            while (q < qe && (*q == ' ' || *q == '\t'))
                q++;
            if (q == qe)
                return EPROTO;
            n = 0;
            for (; q < qe; q++) {
                if (*q < '0' || *q > '9') {
                    if (*q == ' ' || *q == '\t')
                        break;
                    return EPROTO;
                }
                if (n > (SIZE_MAX - 9) / 10)
                    return EPROTO;
                n = n * 10 + (size_t)(*q - '0');
            }
            found = true;
        }
        p = eol + 1;
    }
    if (!found)
        return EPROTO;
    *out = n;
    return 0;
}

int pfs_json_decode_reply(const char *body, size_t len, json_t **out_reply,
                          uint64_t *out_id, bool *out_has_id)
{
    json_error_t jerr;
    json_t *reply, *id;

    reply = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (reply == NULL)
        return EPROTO;
    if (!json_is_object(reply)) {
        json_decref(reply);
        return EPROTO;
    }
    id = json_object_get(reply, "id");
    if (json_is_integer(id) && json_integer_value(id) >= 0) {
        *out_id = (uint64_t)json_integer_value(id);
        *out_has_id = true;
    } else if (id == NULL || json_is_null(id)) {
        *out_id = 0;
        *out_has_id = false;
    } else {
        json_decref(reply);
        return EPROTO;
    }
    *out_reply = reply;
    return 0;
}

int pfs_json_reply_status(json_t *reply, json_t **out_result,
                          bool *out_bad_mount)
{
    json_t *err, *data, *e, *msg, *reason;
    int code;

    *out_bad_mount = false;
    *out_result = NULL;
    err = json_object_get(reply, "error");
    if (err == NULL || json_is_null(err)) {
        json_t *res = json_object_get(reply, "result");

        if (res == NULL)
            return pfs_set_error(EIO, "reply without result or error");
        *out_result = res;
        return 0;
    }
    if (!json_is_object(err))
        return pfs_set_error(EIO, "malformed error reply");
    data = json_object_get(err, "data");
    e = json_object_get(data, "errno");
    msg = json_object_get(err, "message");
    if (json_is_integer(e) && json_integer_value(e) > 0 &&
        json_integer_value(e) < 4096) {
        code = (int)json_integer_value(e);
    } else {
        json_t *c = json_object_get(err, "code");
        json_int_t cv = json_is_integer(c) ? json_integer_value(c) : 0;

        if (cv > 0 && cv < 4096)
            code = (int)cv;
        else if (cv == -32601)
            code = ENOSYS;
        else if (cv <= -32600 && cv >= -32700)
            code = EINVAL;
        else
            code = EIO;
    }
    reason = json_object_get(data, "reason");
    if (json_is_string(reason) &&
        strcmp(json_string_value(reason), "bad_mount") == 0)
        *out_bad_mount = true;
    pfs_set_error(code, "%s", json_is_string(msg) ? json_string_value(msg)
                                                   : "server error");
    return code;
}

int pfs_json_get_u64(const json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return EPROTO;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int pfs_json_get_i64(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v))
        return EPROTO;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int get_ts(const json_t *obj, const char *key, proxyfs_timespec_t *ts)
{
    json_t *v = json_object_get(obj, key);
    int64_t sec;

    if (v == NULL || json_is_null(v)) {
        ts->sec = ts->nsec = 0;
        return 0;
    }
    /* Seconds are signed on the wire (before 1970: negative); the unsigned
     * field holds them in two's complement, as the binary record does. */
    if (!json_is_object(v) || pfs_json_get_i64(v, "sec", &sec) != 0 ||
        pfs_json_get_u64(v, "nsec", &ts->nsec) != 0)
        return EPROTO;
    ts->sec = (uint64_t)sec;
    return 0;
}

int pfs_json_to_stat(const json_t *obj, proxyfs_stat_t *st)
{
    memset(st, 0, sizeof(*st));
    if (!json_is_object(obj))
        return EPROTO;
    if (pfs_json_get_u64(obj, "ino", &st->ino) != 0 ||
        pfs_json_get_u64(obj, "mode", &st->mode) != 0)
        return EPROTO;
    /* The rest are optional so that a smaller server reply still decodes. */
    pfs_json_get_u64(obj, "nlink", &st->nlink);
    pfs_json_get_u64(obj, "uid", &st->uid);
    pfs_json_get_u64(obj, "gid", &st->gid);
    pfs_json_get_u64(obj, "size", &st->size);
    pfs_json_get_u64(obj, "dev", &st->dev);
    pfs_json_get_u64(obj, "blocks", &st->blocks);
    pfs_json_get_u64(obj, "blksize", &st->blksize);
    if (get_ts(obj, "atime", &st->atim) != 0 ||
        get_ts(obj, "mtime", &st->mtim) != 0 ||
        get_ts(obj, "ctime", &st->ctim) != 0 ||
        get_ts(obj, "crtime", &st->crtim) != 0)
        return EPROTO;
    return 0;
}

json_t *pfs_json_timespec(const proxyfs_timespec_t *ts)
{
    /* sec is two's complement: a value above INT64_MAX is before 1970. */
    return json_pack("{sIsI}", "sec", (json_int_t)(int64_t)ts->sec, "nsec",
                     (json_int_t)ts->nsec);
}

/* ------------------------------------------------------------- base64 */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *pfs_b64_encode(const uint8_t *in, size_t len)
{
    size_t olen = 4 * ((len + 2) / 3);
    char *out = malloc(olen + 1), *o = out;
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = b64chars[(v >> 6) & 63];
        *o++ = b64chars[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;

        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int pfs_b64_decode(const char *in, uint8_t **out, size_t *out_len)
{
    size_t len = strlen(in), n = 0;
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;

    if (buf == NULL)
        return ENOMEM;
    for (size_t i = 0; i < len; i++) {
        int v;

        if (in[i] == '=')
            break;
        if ((v = b64val(in[i])) < 0) {
            free(buf);
            return EPROTO;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = n;
    return 0;
}

const char *pfs_json_reply_reason(const json_t *reply)
{
    json_t *err = json_object_get(reply, "error");
    json_t *reason = json_object_get(json_object_get(err, "data"), "reason");

    return json_is_string(reason) ? json_string_value(reason) : NULL;
}
