/* unwrap — finding the reports inside whatever a receiver sent.
 *
 * Reports arrive as raw XML, gzip (sometimes multi-member, sometimes with a
 * mail gateway's CRLF after the stream), zip (several reports, macOS
 * resource forks), zstd, nested in each other, or inside e-mail.  The form
 * is always sniffed from the content, never from a file name, because names
 * lie (".zip" payloads labelled application/gzip are common).
 *
 * Decompression is libarchive's, with only the gzip and zstd filters and
 * the zip and raw formats enabled: archive_read_support_filter_all() would
 * also enable filters that run external programs on untrusted input.
 * libarchive has no size limits of its own, so every layer counts what it
 * produces and stops at the caps in dp_ingest_limits.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest_internal.h"

#define AR_INBUF (64u * 1024u)
#define RATIO_GRACE (256u << 10) /* ratios of small outputs say nothing */

const char *dp_unwrap_kind_name(dp_kind k) {
    static const char *names[] = {"empty", "gzip", "zstd", "zip", "xml", "mbox", "mime", "unknown"};
    return names[k];
}

/* ---- sniffing ---------------------------------------------------------- */

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

dp_kind dp_unwrap_sniff(const unsigned char *p, size_t n) {
    if (n == 0) return DP_KIND_EMPTY;
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) return DP_KIND_GZIP;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) return DP_KIND_ZSTD;
    if (n >= 4 && p[0] == 'P' && p[1] == 'K' &&
        ((p[2] == 3 && p[3] == 4) || (p[2] == 5 && p[3] == 6) || (p[2] == 7 && p[3] == 8)))
        return DP_KIND_ZIP;
    if (n >= 2 && ((p[0] == 0xff && p[1] == 0xfe) || (p[0] == 0xfe && p[1] == 0xff)))
        return DP_KIND_XML; /* UTF-16 with a byte-order mark */
    if (n >= 2 && ((p[0] == '<' && p[1] == 0) || (p[0] == 0 && p[1] == '<')))
        return DP_KIND_XML; /* UTF-16 without one; expat detects it */
    size_t i = 0;
    if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) i = 3;
    while (i < n && is_ws(p[i])) i++;
    if (i < n && p[i] == '<') return DP_KIND_XML;
    /* Salvage rule: blank lines before a message's first header (seen in
     * real mail drops) are skipped; dp_unwrap_leading_space() says how many. */
    size_t ws = dp_unwrap_leading_space(p, n);
    p += ws;
    n -= ws;
    if (n >= 5 && memcmp(p, "From ", 5) == 0) return DP_KIND_MBOX;
    /* An RFC 5322 header field: a name of printable characters, then ':'. */
    size_t k = 0;
    while (k < n && p[k] > 32 && p[k] < 127 && p[k] != ':') k++;
    if (k > 0 && k < n && p[k] == ':') return DP_KIND_MIME;
    return DP_KIND_UNKNOWN;
}

size_t dp_unwrap_leading_space(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n && is_ws(p[i])) i++;
    return i;
}

/* A short, printable preview of content that is not a report. */
static void preview(const unsigned char *p, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && i < 24 && o + 5 < cap; i++) {
        if (p[i] >= 32 && p[i] < 127 && p[i] != '\'' && p[i] != '\\') out[o++] = (char)p[i];
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
    }
    out[o] = '\0';
}

/* ---- failures ---------------------------------------------------------- */

void dp_unwrap_fail(dp_unwrap *u, const dp_report *rep, dp_error *err, const char *part) {
    if (!err->where[0]) dp_error_set_where(err, part);
    if (u->h->report_failed) u->h->report_failed(u->ctx, rep, err);
    u->res->rejected++;
    if (!u->have_err) {
        u->first_err = *err;
        u->have_err = 1;
    }
}

static int fail(dp_unwrap *u, const char *part, dp_errkind kind, const char *msg) {
    dp_error err;
    dp_error_set(&err, kind, "%s", msg);
    dp_unwrap_fail(u, NULL, &err, part);
    return -1;
}

/* ---- libarchive layers --------------------------------------------------- */

typedef struct ar_layer {
    dp_stream base; /* reads the current entry's data */
    dp_unwrap *u;
    struct archive *a;
    dp_stream *inner;
    unsigned char *inbuf;
    dp_error inner_err;
    int inner_failed;
    int data_failed;
    uint64_t out_bytes;
} ar_layer;

static la_ssize_t ar_read_cb(struct archive *a, void *client, const void **buf) {
    ar_layer *l = client;
    ssize_t n = l->inner->read(l->inner, l->inbuf, AR_INBUF, &l->inner_err);
    if (n < 0) {
        l->inner_failed = 1;
        archive_set_error(a, EIO, "%s", l->inner_err.msg);
        return -1;
    }
    *buf = l->inbuf;
    return n;
}

static ssize_t ar_data_read(dp_stream *s, void *buf, size_t cap, dp_error *err) {
    ar_layer *l = (ar_layer *)s;
    la_ssize_t n = archive_read_data(l->a, buf, cap);
    if (n < 0) {
        l->data_failed = 1;
        if (l->inner_failed) *err = l->inner_err;
        else dp_error_set(err, DP_ERR_UNWRAP, "corrupt or truncated archive: %s",
                          archive_error_string(l->a) ? archive_error_string(l->a) : "unknown error");
        dp_error_set_offset(err, (uint64_t)archive_filter_bytes(l->a, -1));
        return -1;
    }
    l->out_bytes += (uint64_t)n;
    if (l->out_bytes > RATIO_GRACE) {
        /* Two measures: this layer's output against the compressed bytes
         * it has consumed (libarchive counts consumption exactly, not our
         * read-ahead), and against the outermost input, so that a bomb
         * nested in a bomb is caught by the product of its ratios. */
        uint64_t consumed = (uint64_t)archive_filter_bytes(l->a, -1);
        uint64_t root = l->u->root_in;
        uint64_t in = consumed < root ? consumed : root;
        if (in == 0) in = 1;
        if (l->out_bytes / in > l->u->lim->max_ratio) {
            l->data_failed = 1;
            dp_error_set(err, DP_ERR_LIMIT,
                         "decompression ratio exceeds %u:1 (%llu bytes out of %llu): refusing a likely bomb",
                         l->u->lim->max_ratio, (unsigned long long)l->out_bytes,
                         (unsigned long long)in);
            dp_error_set_offset(err, l->out_bytes);
            return -1;
        }
    }
    return n;
}

static int ar_open(ar_layer *l, dp_unwrap *u, dp_stream *inner, dp_kind kind, const char *part) {
    memset(l, 0, sizeof *l);
    l->base.read = ar_data_read;
    l->u = u;
    l->inner = inner;
    l->a = archive_read_new();
    l->inbuf = malloc(AR_INBUF);
    if (!l->a || !l->inbuf) return fail(u, part, DP_ERR_NOMEM, "out of memory opening an archive");
    int r = ARCHIVE_OK;
    if (kind == DP_KIND_GZIP || kind == DP_KIND_ZSTD) {
        r = kind == DP_KIND_GZIP ? archive_read_support_filter_gzip(l->a)
                                 : archive_read_support_filter_zstd(l->a);
        if (r == ARCHIVE_OK) r = archive_read_support_format_raw(l->a);
        /* so that a valid stream of zero bytes reads as empty, not corrupt */
        if (r == ARCHIVE_OK) r = archive_read_support_format_empty(l->a);
    } else {
        r = archive_read_support_format_zip_streamable(l->a);
    }
    /* ARCHIVE_WARN here means "will run an external program": never. */
    if (r != ARCHIVE_OK)
        return fail(u, part, DP_ERR_UNWRAP, "libarchive lacks built-in support for this format");
    if (archive_read_open(l->a, l, NULL, ar_read_cb, NULL) != ARCHIVE_OK) {
        dp_error err;
        if (l->inner_failed) err = l->inner_err;
        else dp_error_set(&err, DP_ERR_UNWRAP, "cannot open %s stream: %s", dp_unwrap_kind_name(kind),
                          archive_error_string(l->a) ? archive_error_string(l->a) : "unknown error");
        dp_unwrap_fail(u, NULL, &err, part);
        return -1;
    }
    return 0;
}

static void ar_close(ar_layer *l) {
    if (l->a) archive_read_free(l->a);
    free(l->inbuf);
}

static int header_error(dp_unwrap *u, ar_layer *l, const char *part, const char *what) {
    dp_error err;
    if (l->inner_failed) err = l->inner_err;
    else dp_error_set(&err, DP_ERR_UNWRAP, "%s: %s", what,
                      archive_error_string(l->a) ? archive_error_string(l->a) : "unknown error");
    dp_error_set_offset(&err, (uint64_t)archive_filter_bytes(l->a, -1));
    dp_unwrap_fail(u, NULL, &err, part);
    return -1;
}

/* gzip and zstd hold one stream: decompress it and look inside. */
static int unwrap_single(dp_unwrap *u, dp_stream *s, dp_kind kind, const char *part, int layer) {
    ar_layer l;
    int rc = ar_open(&l, u, s, kind, part);
    const char *what = kind == DP_KIND_GZIP ? "corrupt gzip stream" : "corrupt zstd stream";
    if (rc == 0) {
        /* libarchive stacks a filter per layer by itself (gzip in gzip is
         * one archive with two filters); the lowest is the "none" filter.
         * If the magic bytes were not followed by a valid header, no
         * filter was stacked and the bytes would come back unchanged. */
        int filters = archive_filter_count(l.a) - 1;
        struct archive_entry *e;
        int r = archive_read_next_header(l.a, &e);
        if (filters < 1) {
            dp_error err;
            dp_error_set(&err, DP_ERR_UNWRAP, "%s: invalid header after the magic bytes", what);
            dp_error_set_offset(&err, 0);
            dp_unwrap_fail(u, NULL, &err, part);
            rc = -1;
        } else if ((uint32_t)(layer + filters) > u->lim->max_layers) {
            rc = fail(u, part, DP_ERR_LIMIT, "containers nested too deeply");
        } else if (r == ARCHIVE_EOF) {
            rc = fail(u, part, DP_ERR_NOT_AGGREGATE, "compressed stream holds no data: no report");
        } else if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = header_error(u, &l, part, what);
        } else {
            rc = dp_unwrap_stream(u, &l.base, part, layer + filters, 0);
        }
    }
    ar_close(&l);
    return rc;
}

/* macOS adds "__MACOSX/._name" resource forks to zips; they hold no report. */
static int is_zip_noise(const char *name) {
    if (strncmp(name, "__MACOSX/", 9) == 0) return 1;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return strncmp(base, "._", 2) == 0 || strcmp(base, ".DS_Store") == 0;
}

/* Reads what is left of the current zip member, through the ratio check.
 * libarchive's own skip would inflate it uncounted: a bomb hidden in a
 * skipped or rejected member would cost unbounded CPU.  Returns 0, or -1
 * with the failure recorded. */
static int zip_drain(dp_unwrap *u, ar_layer *l, const char *part) {
    unsigned char buf[16384];
    dp_error err;
    ssize_t n;
    while ((n = ar_data_read(&l->base, buf, sizeof buf, &err)) > 0) {}
    if (n == 0) return 0;
    dp_unwrap_fail(u, NULL, &err, part);
    return -1;
}

static int unwrap_zip(dp_unwrap *u, dp_stream *s, const char *part, int layer) {
    ar_layer l;
    if (ar_open(&l, u, s, DP_KIND_ZIP, part) != 0) {
        ar_close(&l);
        return -1;
    }
    int rc = 0, members = 0;
    dp_buf name = DP_BUF_INIT;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(l.a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            header_error(u, &l, part, "corrupt zip archive");
            rc = -1;
            break;
        }
        if (++u->parts > u->lim->max_parts) {
            fail(u, part, DP_ERR_LIMIT, "too many archive members or message parts");
            rc = -1;
            break;
        }
        const char *mname = archive_entry_pathname(e);
        if (!mname) mname = "(unnamed)";
        dp_buf_reset(&name);
        dp_buf_printf(&name, "%s!%s", part, mname);
        if (name.failed) { fail(u, part, DP_ERR_NOMEM, "out of memory"); rc = -1; break; }
        l.data_failed = 0;
        if (archive_entry_filetype(e) != AE_IFDIR && !is_zip_noise(mname)) {
            members++;
            if (dp_unwrap_stream(u, &l.base, name.data, layer + 1, 0) != 0) rc = -1;
        }
        /* A member whose data failed was reported; the archive is broken
         * past it.  Otherwise consume the rest, counted. */
        if (l.data_failed || zip_drain(u, &l, name.data) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && members == 0) rc = fail(u, part, DP_ERR_NOT_AGGREGATE, "zip archive holds no report");
    dp_buf_free(&name);
    ar_close(&l);
    return rc;
}

int dp_unwrap_stream(dp_unwrap *u, dp_stream *s, const char *part, int layer, int allow_mime) {
    if ((uint32_t)layer > u->lim->max_layers)
        return fail(u, part, DP_ERR_LIMIT, "containers nested too deeply");
    dp_peek_stream p;
    dp_error err;
    if (dp_stream_peek_init(&p, s, DP_PEEK_MAX, &err) != 0) {
        dp_unwrap_fail(u, NULL, &err, part);
        return -1;
    }
    dp_kind kind = dp_unwrap_sniff(p.head, p.head_len);
    char pre[128];
    switch (kind) {
    case DP_KIND_EMPTY:
        return fail(u, part, DP_ERR_NOT_AGGREGATE, "empty input: no report");
    case DP_KIND_GZIP:
    case DP_KIND_ZSTD:
        return unwrap_single(u, &p.base, kind, part, layer);
    case DP_KIND_ZIP:
        return unwrap_zip(u, &p.base, part, layer);
    case DP_KIND_XML:
        return dp_report_xml_parse(u, &p, part);
    case DP_KIND_MBOX:
    case DP_KIND_MIME:
        if (allow_mime) {
            /* Only whole inputs are parsed as mail: GMime needs to seek. */
            u->mail_kind = kind;
            u->mail_skip = dp_unwrap_leading_space(p.head, p.head_len);
            return DP_UNWRAP_IS_MAIL;
        }
        return fail(u, part, DP_ERR_NOT_AGGREGATE,
                    "an e-mail message inside a compressed container is not a report");
    case DP_KIND_UNKNOWN:
        break;
    }
    preview(p.head, p.head_len, pre, sizeof pre);
    dp_error_set(&err, DP_ERR_NOT_AGGREGATE, "content is not a report (not XML, gzip, zip, zstd or mail): starts with '%s'", pre);
    dp_unwrap_fail(u, NULL, &err, part);
    return -1;
}
