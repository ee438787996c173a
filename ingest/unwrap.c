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

void dp_ingest_limits_default(dp_ingest_limits *lim) {
    lim->max_report_bytes = 1ull << 30;
    lim->max_ratio = 250;
    lim->max_xml_depth = 64;
    lim->max_text_bytes = 64 * 1024;
    lim->max_layers = 6;
    lim->max_parts = 10000;
    lim->max_auth_results = 1000;
    lim->max_record_bytes = 1u << 20;
    lim->max_range_seconds = (int64_t)36525 * 86400;
    lim->compute_sha256 = 0;
    lim->readahead_after = 0;
}

const char *dp_schema_name(dp_schema s) {
    switch (s) {
    case DP_SCHEMA_DRAFT: return "draft";
    case DP_SCHEMA_RFC7489: return "rfc7489";
    case DP_SCHEMA_RFC9990: return "rfc9990";
    }
    return "unknown";
}

const char *dp_kind_name(dp_kind k) {
    static const char *names[] = {"empty", "gzip", "zstd", "zip", "xml", "mbox", "mime", "unknown"};
    return names[k];
}

/* ---- streams ----------------------------------------------------------- */

static ssize_t peek_read(dp_stream *s, void *buf, size_t cap, dp_error *err) {
    dp_peek_stream *p = (dp_peek_stream *)s;
    if (p->head_pos < p->head_len) {
        size_t n = p->head_len - p->head_pos;
        if (n > cap) n = cap;
        memcpy(buf, p->head + p->head_pos, n);
        p->head_pos += n;
        return (ssize_t)n;
    }
    if (p->inner_eof) return 0;
    return p->inner->read(p->inner, buf, cap, err);
}

int dp_peek_init(dp_peek_stream *p, dp_stream *inner, size_t want, dp_error *err) {
    p->base.read = peek_read;
    p->inner = inner;
    p->head_len = p->head_pos = 0;
    p->inner_eof = 0;
    if (want > DP_PEEK_MAX) want = DP_PEEK_MAX;
    while (p->head_len < want) {
        ssize_t n = inner->read(inner, p->head + p->head_len, want - p->head_len, err);
        if (n < 0) return -1;
        if (n == 0) { p->inner_eof = 1; break; }
        p->head_len += (size_t)n;
    }
    return 0;
}

static ssize_t mem_read(dp_stream *s, void *buf, size_t cap, dp_error *err) {
    (void)err;
    dp_mem_stream *m = (dp_mem_stream *)s;
    size_t n = m->len - m->pos;
    if (n > cap) n = cap;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    if (m->counter) *m->counter += n;
    return (ssize_t)n;
}

void dp_mem_stream_init(dp_mem_stream *m, const void *data, size_t len, uint64_t *counter) {
    m->base.read = mem_read;
    m->data = data;
    m->len = len;
    m->pos = 0;
    m->counter = counter;
}

typedef struct fd_stream {
    dp_stream base;
    int fd;
    uint64_t *counter;
} fd_stream;

static ssize_t fd_read(dp_stream *s, void *buf, size_t cap, dp_error *err) {
    fd_stream *f = (fd_stream *)s;
    for (;;) {
        ssize_t n = read(f->fd, buf, cap);
        if (n >= 0) {
            *f->counter += (uint64_t)n;
            return n;
        }
        if (errno == EINTR) continue;
        dp_error_set(err, DP_ERR_IO, "read failed: %s", strerror(errno));
        return -1;
    }
}

/* ---- sniffing ---------------------------------------------------------- */

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

dp_kind dp_sniff(const unsigned char *p, size_t n) {
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
     * real mail drops) are skipped; dp_leading_space() says how many. */
    size_t ws = dp_leading_space(p, n);
    p += ws;
    n -= ws;
    if (n >= 5 && memcmp(p, "From ", 5) == 0) return DP_KIND_MBOX;
    /* An RFC 5322 header field: a name of printable characters, then ':'. */
    size_t k = 0;
    while (k < n && p[k] > 32 && p[k] < 127 && p[k] != ':') k++;
    if (k > 0 && k < n && p[k] == ':') return DP_KIND_MIME;
    return DP_KIND_UNKNOWN;
}

size_t dp_leading_space(const unsigned char *p, size_t n) {
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
        else dp_error_set(&err, DP_ERR_UNWRAP, "cannot open %s stream: %s", dp_kind_name(kind),
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
    if (dp_peek_init(&p, s, DP_PEEK_MAX, &err) != 0) {
        dp_unwrap_fail(u, NULL, &err, part);
        return -1;
    }
    dp_kind kind = dp_sniff(p.head, p.head_len);
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
        return dp_xml_parse_report(u, &p, part);
    case DP_KIND_MBOX:
    case DP_KIND_MIME:
        if (allow_mime) {
            /* Only whole inputs are parsed as mail: GMime needs to seek. */
            u->mail_kind = kind;
            u->mail_skip = dp_leading_space(p.head, p.head_len);
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

/* ---- entry points -------------------------------------------------------- */

static int finish(dp_unwrap *u, int rc, dp_error *err) {
    if (rc == 0 && u->res->reports == 0 && u->res->rejected == 0 && u->res->skipped == 0)
        rc = fail(u, u->input, DP_ERR_NOT_AGGREGATE, "no aggregate report found");
    if (u->res->rejected) rc = -1;
    if (rc != 0 && err) {
        if (u->have_err) *err = u->first_err;
        else dp_error_set(err, DP_ERR_NOT_AGGREGATE, "no aggregate report found");
    }
    return rc == 0 ? 0 : -1;
}

static void unwrap_init(dp_unwrap *u, const dp_ingest_limits *lim, const char *name,
                        const dp_ingest_handler *h, void *ctx, dp_ingest_result *res,
                        dp_ingest_limits *deflt) {
    memset(u, 0, sizeof *u);
    if (!lim) { dp_ingest_limits_default(deflt); lim = deflt; }
    u->lim = lim;
    u->h = h;
    u->ctx = ctx;
    u->res = res;
    u->input = name;
    memset(res, 0, sizeof *res);
}

int dp_ingest_file(const dp_ingest_limits *lim, const char *path, const dp_ingest_handler *h,
                   void *ctx, dp_ingest_result *res, dp_error *err) {
    dp_unwrap u;
    dp_ingest_limits deflt;
    unwrap_init(&u, lim, path, h, ctx, res, &deflt);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno));
        return finish(&u, fail(&u, path, DP_ERR_IO, msg), err);
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        return finish(&u, fail(&u, path, DP_ERR_IO, "not a regular file"), err);
    }
    fd_stream fs = {{fd_read}, fd, &u.root_in};
    int rc = dp_unwrap_stream(&u, &fs.base, path, 0, 1);
    if (rc == DP_UNWRAP_IS_MAIL) {
        u.root_in = 0;
        if (lseek(fd, (off_t)u.mail_skip, SEEK_SET) != (off_t)u.mail_skip)
            rc = fail(&u, path, DP_ERR_IO, "cannot rewind the input to parse it as mail");
        else
            rc = dp_mime_unwrap_fd(&u, fd, path, u.mail_kind == DP_KIND_MBOX);
    }
    close(fd);
    return finish(&u, rc, err);
}

int dp_ingest_memory(const dp_ingest_limits *lim, const char *name, const void *data, size_t len,
                     const dp_ingest_handler *h, void *ctx, dp_ingest_result *res, dp_error *err) {
    dp_unwrap u;
    dp_ingest_limits deflt;
    unwrap_init(&u, lim, name, h, ctx, res, &deflt);
    dp_mem_stream ms;
    dp_mem_stream_init(&ms, data, len, &u.root_in);
    int rc = dp_unwrap_stream(&u, &ms.base, name, 0, 1);
    if (rc == DP_UNWRAP_IS_MAIL) {
        u.root_in = 0;
        rc = dp_mime_unwrap_mem(&u, (const char *)data + u.mail_skip, len - u.mail_skip, name,
                                u.mail_kind == DP_KIND_MBOX);
    }
    return finish(&u, rc, err);
}
