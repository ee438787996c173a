/* dp_error — see dp_error.h. */
#include "dp_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dp_error_set(dp_error *err, dp_errkind kind, const char *fmt, ...) {
    if (!err) return -1;
    err->kind = kind;
    err->has_offset = 0;
    err->offset = 0;
    err->where[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* One error, one line: messages may quote input, so flatten it. */
    for (char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    return -1;
}

void dp_error_set_offset(dp_error *err, uint64_t offset) {
    if (!err) return;
    err->has_offset = 1;
    err->offset = offset;
}

void dp_error_set_where(dp_error *err, const char *where) {
    if (!err) return;
    snprintf(err->where, sizeof err->where, "%s", where ? where : "");
    /* Part names come from the input (zip member names, MIME filenames):
     * a newline in one must not split the error line. */
    for (char *p = err->where; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
}

void dp_error_clear(dp_error *err) {
    if (!err) return;
    memset(err, 0, sizeof *err);
}

const char *dp_error_text(const char *s, char out[DP_ERROR_TEXT_MAX]) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "(null)");
    while (*p) {
        size_t k = 1;
        int plain = *p >= 0x20 && *p < 0x7f && *p != '\\';
        if (*p >= 0x80) { /* a whole UTF-8 sequence stays as it is */
            k = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc2 ? 2 : 0;
            plain = k > 0;
            for (size_t i = 1; plain && i < k; i++) plain = (p[i] & 0xc0) == 0x80;
            if (!plain) k = 1;
        }
        size_t need = plain ? k : 4;
        if (o + need + 4 > DP_ERROR_TEXT_MAX) { /* no room: say it was cut */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (plain) {
            memcpy(out + o, p, k);
            o += k;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
        p += k;
    }
    out[o] = '\0';
    return out;
}

void dp_error_print(FILE *f, const dp_error *err) {
    char where[DP_ERROR_TEXT_MAX], msg[DP_ERROR_TEXT_MAX];
    dp_error_text(err->where, where);
    dp_error_text(err->msg, msg);
    if (err->has_offset)
        fprintf(f, "dmarcpipe: %s: %s: %s (offset %llu)\n", where, dp_error_stage(err->kind), msg,
                (unsigned long long)err->offset);
    else
        fprintf(f, "dmarcpipe: %s: %s: %s\n", where, dp_error_stage(err->kind), msg);
}

int dp_error_is_environmental(const dp_error *err) {
    return err->kind == DP_ERR_NOMEM || err->kind == DP_ERR_IO || err->kind == DP_ERR_HANDLER;
}

const char *dp_error_stage(dp_errkind kind) {
    switch (kind) {
    case DP_OK: return "ok";
    case DP_ERR_IO: return "io";
    case DP_ERR_UNWRAP: return "unwrap";
    case DP_ERR_MIME: return "mime";
    case DP_ERR_XML: return "xml";
    case DP_ERR_VALIDATE: return "validate";
    case DP_ERR_LIMIT: return "limit";
    case DP_ERR_NOT_AGGREGATE: return "classify";
    case DP_ERR_NOMEM: return "memory";
    case DP_ERR_USAGE: return "usage";
    case DP_ERR_HANDLER: return "handler";
    case DP_ERR_INPUT: return "input";
    }
    return "unknown";
}
