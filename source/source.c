/* source — opening a source by URI, and the wrappers every caller uses.
 *
 * The wrappers are the only callers of a source's vtable, so what the run
 * counts about sources (acknowledged inputs, and those that could not be)
 * is counted here, once, for every source.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_fs.h"
#include "ingest.h"
#include "source_internal.h"

/* Whether `uri` starts with a scheme and "://" (s3://, imap://, ...). */
static int has_scheme(const char *uri) {
    const char *p = uri;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) return 0;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '+' ||
           *p == '-' || *p == '.')
        p++;
    return strncmp(p, "://", 3) == 0;
}

dp_source *dp_source_open(const char *uri, const dp_source_options *opts, dp_error *err) {
    static const dp_source_options none = {0};
    if (!opts) opts = &none;
    if (strncmp(uri, "file:", 5) == 0 && uri[5]) return dp_file_source_open(uri + 5, opts, err);
    if (strncmp(uri, "maildir:", 8) == 0 && uri[8]) return dp_maildir_source_open(uri + 8, opts, err);
    if (strncmp(uri, "mbox:", 5) == 0 && uri[5]) return dp_mbox_source_open(uri + 5, opts, err);
    if (strncmp(uri, "imap://", 7) == 0 || strncmp(uri, "imaps://", 8) == 0) return dp_imap_source_open(uri, opts, err);
    if (strncmp(uri, "s3://", 5) == 0) return dp_s3_source_open(uri, opts, err);
    if (strncmp(uri, "kafka://", 8) == 0) return dp_kafka_inbox_open(uri, opts, err);
    if (has_scheme(uri)) {
        dp_error_set(err, DP_ERR_USAGE,
                     "source '%s': not a source dmarcpipe reads; expected PATH, file:PATH, maildir:PATH, mbox:PATH, "
                     "imap://, imaps://, s3:// or kafka://",
                     uri);
        return NULL;
    }
    return dp_file_source_open(uri, opts, err);
}

int dp_source_next(dp_source *s, dp_input_list *out, dp_error *err) { return s->ops->next(s, out, err); }

int dp_source_open_input(const dp_input *in, dp_error *err) {
    return in->source->ops->open(in->source, in, err);
}

int dp_source_reject(const dp_input *in, const dp_error *errors, size_t n_errors, dp_error *err) {
    return in->source->ops->reject(in->source, in, errors, n_errors, err);
}

int dp_source_ack(const dp_input *in) {
    dp_source *s = in->source;
    int rc = s->ops->ack(s, in);
    if (rc == 0) s->acked++;
    else if (rc < 0) s->ack_failures++;
    return rc;
}

void dp_source_hold(const dp_input *in) {
    if (in->source->ops->hold) in->source->ops->hold(in->source, in);
}

int dp_source_wake_fd(dp_source *s) { return s->ops->wake_fd ? s->ops->wake_fd(s) : -1; }

char *dp_source_state_path(const char *state_dir, const char *kind, const char *identity, dp_error *err) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const char *p = identity; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b, "%s/sources", state_dir);
    if (!b.failed && dp_fs_mkdir_mode(b.data, 0700) != 0) {
        int e = errno;
        dp_error_set(err, DP_ERR_IO, "cannot create %s: %s", b.data, strerror(e));
        dp_buf_free(&b);
        return NULL;
    }
    dp_buf_printf(&b, "/%s-%016llx.json", kind, (unsigned long long)h);
    if (b.failed) {
        dp_buf_free(&b);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return b.data;
}

int dp_source_state_write(const char *path, json_t *j, const char *display, dp_log *log) {
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    size_t n = text ? strlen(text) : 0;
    if (text) text[n] = '\0';
    int rc = -1, e = ENOMEM;
    if (text) {
        char *line = realloc(text, n + 2);
        if (line) {
            text = line;
            text[n++] = '\n';
            rc = dp_fs_replace(path, text, n);
            e = errno;
        }
    }
    free(text);
    if (rc != 0) {
        char a[DP_ERROR_TEXT_MAX];
        dp_log_warn(log, "source",
                    DP_LOG_FIELDS(DP_LOG_STR("source", display), DP_LOG_STR("path", path),
                                  DP_LOG_STR("error", strerror(e))),
                    "dmarcpipe run: %s: cannot write %s: %s", display, dp_error_text(path, a), strerror(e));
    }
    return rc;
}

int dp_source_quarantine(const char *dir, const dp_input *in, int fd, const dp_error *fetch_err, const char *gone,
                         const dp_error *errors, size_t n_errors, dp_error *err) {
    char qpath[4096];
    int kept;
    if (fd >= 0) {
        kept = dp_quarantine_fd(dir, in->name, fd, errors, n_errors, qpath, err);
        close(fd);
    } else if (fetch_err->kind == DP_ERR_INPUT) {
        kept = dp_quarantine_reason(dir, in->name, gone, errors, n_errors, qpath, err);
    } else {
        *err = *fetch_err;
        return -1;
    }
    if (kept != 0) return -1;
    char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
    dp_log_info(in->source->log, "source",
                DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("quarantine", qpath),
                              DP_LOG_STR("error", n_errors ? errors[0].msg : NULL)),
                "dmarcpipe: %s: quarantined as %s", dp_error_text(in->name, a), dp_error_text(qpath, b));
    return 0;
}

int dp_source_route(const dp_input *in, const uint8_t id[32], int32_t *slot) {
    const dp_source_ops *ops = in->source->ops;
    return ops->route ? ops->route(in->source, in, id, slot) : DP_ROUTE_HERE;
}

int dp_source_forward(const dp_input *in, int32_t slot, dp_forward_fn emit, void *ctx, dp_error *err) {
    const dp_source_ops *ops = in->source->ops;
    if (!ops->forward) return dp_error_set(err, DP_ERR_USAGE, "%s: its source cannot forward", in->name);
    return ops->forward(in->source, in, slot, emit, ctx, err);
}

int dp_source_routes(const dp_source *s) { return s->ops->route != NULL; }

int dp_source_has_position(const dp_source *s) { return s->ops->epoch_position != NULL; }

int dp_source_epoch_position(dp_source *s, dp_input *const *inputs, size_t n, int retry, dp_kafka_offsets **out,
                             dp_error *err) {
    *out = NULL;
    return s->ops->epoch_position ? s->ops->epoch_position(s, inputs, n, retry, out, err) : 0;
}

int dp_source_is_path(const char *uri) {
    if (strncmp(uri, "file:", 5) == 0) return 1;
    if (strncmp(uri, "maildir:", 8) == 0 || strncmp(uri, "mbox:", 5) == 0) return 0;
    return !has_scheme(uri);
}

void dp_source_close(dp_source *s) {
    if (s) s->ops->destroy(s);
}
