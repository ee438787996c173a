/* mime — finding reports in e-mail, with GMime.
 *
 * Receivers mail reports to the rua= address; a mail drop or an mbox holds
 * the messages as they came.  The report is an attachment (base64 or
 * quoted-printable, typed application/gzip, application/zip, text/xml,
 * application/octet-stream or something wrong), sometimes deep in nested
 * multiparts (Outlook: multipart/related inside multipart/alternative), and
 * sometimes the whole body of the message.
 *
 * GMime parses the message with a persistent stream: part contents stay on
 * disk and are decoded as they are read, so a 50 MB attachment costs no
 * memory.  Each candidate part's decoded bytes go through the same sniffing
 * and unwrapping as a file.
 *
 * Failure reports (ARF, RFC 6591) and SMTP TLS reports (RFC 8460) are also
 * mailed to report addresses; they are recognised and rejected as not
 * aggregate reports, rather than as broken ones.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ingest_internal.h"


/* Adapts a decoded GMime stream to dp_stream; counts bytes as the "input"
 * of the part, which is what bomb ratios are measured against. */
typedef struct gm_stream {
    dp_stream base;
    GMimeStream *gs;
    uint64_t *counter;
} gm_stream;

static ssize_t gm_read(dp_stream *s, void *buf, size_t cap, dp_error *err) {
    gm_stream *g = (gm_stream *)s;
    ssize_t n = g_mime_stream_read(g->gs, buf, cap);
    if (n < 0) {
        if (g_mime_stream_eos(g->gs)) return 0;
        dp_error_set(err, DP_ERR_MIME, "cannot read a message part");
        return -1;
    }
    *g->counter += (uint64_t)n;
    return n;
}

typedef struct walk {
    dp_unwrap *u;
    const char *msgname;  /* "file" or "file!message 3" */
    int arf, tlsrpt;
    int part_no;
    int rc;
    dp_buf types;         /* the parts seen, for the "no report" error */
} walk;

static int type_is(GMimeContentType *ct, const char *type, const char *sub) {
    return ct && g_mime_content_type_is_type(ct, type, sub);
}

/* Types a report attachment is sent as.  A part of one of these types that
 * holds no report is an error; other parts are looked into but skipped
 * quietly when they hold none. */
static int is_attachment_type(GMimeContentType *ct) {
    static const char *const app[] = {"gzip", "x-gzip", "zip", "x-zip", "x-zip-compressed",
                                      "zstd", "octet-stream", "xml", "x-xml", NULL};
    if (type_is(ct, "text", "xml")) return 1;
    for (int i = 0; app[i]; i++)
        if (type_is(ct, "application", app[i])) return 1;
    return 0;
}

static void note_type(walk *w, GMimeContentType *ct) {
    if (w->types.len > 200) return;
    if (w->types.len) dp_buf_puts(&w->types, ", ");
    dp_buf_printf(&w->types, "%s/%s", ct ? g_mime_content_type_get_media_type(ct) : "?",
                  ct ? g_mime_content_type_get_media_subtype(ct) : "?");
}

static void walk_leaf(walk *w, GMimePart *part) {
    dp_unwrap *u = w->u;
    GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
    w->part_no++;
    if (++u->parts > u->lim->max_parts) {
        if (w->rc != -3) {
            dp_error err;
            dp_error_set(&err, DP_ERR_LIMIT, "too many message parts (more than %u)", u->lim->max_parts);
            dp_unwrap_fail(u, NULL, &err, w->msgname);
        }
        w->rc = -3;
        return;
    }
    if (type_is(ct, "message", "feedback-report")) { w->arf = 1; return; }
    if (ct && g_ascii_strcasecmp(g_mime_content_type_get_media_type(ct), "application") == 0 &&
        g_ascii_strncasecmp(g_mime_content_type_get_media_subtype(ct), "tlsrpt", 6) == 0) {
        w->tlsrpt = 1;
        return;
    }
    note_type(w, ct);
    if (type_is(ct, "text", "html") || type_is(ct, "image", "*")) return;
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    if (!dw) return;

    dp_buf name = DP_BUF_INIT;
    const char *fname = g_mime_part_get_filename(part);
    if (fname) dp_buf_printf(&name, "%s!%s", w->msgname, fname);
    else dp_buf_printf(&name, "%s!part %d", w->msgname, w->part_no);

    GMimeStream *raw = g_mime_data_wrapper_get_stream(dw);
    g_mime_stream_reset(raw);
    GMimeStream *filtered = g_mime_stream_filter_new(raw);
    GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(dw);
    if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
        g_object_unref(f);
    }
    uint64_t saved_root = u->root_in;
    u->root_in = 0;
    gm_stream gs = {{gm_read}, filtered, &u->root_in};

    dp_peek_stream peek;
    dp_error err;
    if (dp_stream_peek_init(&peek, &gs.base, 512, &err) != 0) {
        dp_unwrap_fail(u, NULL, &err, name.data);
        w->rc = -1;
    } else {
        dp_kind kind = dp_unwrap_sniff(peek.head, peek.head_len);
        int strong = is_attachment_type(ct) ||
                     (g_mime_object_get_disposition(GMIME_OBJECT(part)) != NULL && fname != NULL);
        int looks_like_report = kind == DP_KIND_GZIP || kind == DP_KIND_ZIP || kind == DP_KIND_ZSTD ||
                                (kind == DP_KIND_XML && memmem(peek.head, peek.head_len, "feedback", 8));
        if (strong || looks_like_report) {
            if (dp_unwrap_stream(u, &peek.base, name.data, 1, 0) != 0) w->rc = -1;
        }
    }
    u->root_in = saved_root;
    g_object_unref(filtered);
    dp_buf_free(&name);
}

static void walk_object(walk *w, GMimeObject *obj, int depth) {
    if (!obj || w->rc == -3) return;
    if ((uint32_t)depth > w->u->lim->max_layers * 4) {
        dp_error err;
        dp_error_set(&err, DP_ERR_LIMIT, "MIME parts nested too deeply");
        dp_unwrap_fail(w->u, NULL, &err, w->msgname);
        w->rc = -3;
        return;
    }
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (type_is(ct, "multipart", "report")) {
        const char *rt = g_mime_content_type_get_parameter(ct, "report-type");
        if (rt && g_ascii_strcasecmp(rt, "feedback-report") == 0) w->arf = 1;
        if (rt && g_ascii_strcasecmp(rt, "tlsrpt") == 0) w->tlsrpt = 1;
        /* The parts of a failure or TLS report quote other mail: the
         * original message may carry attachments that are not ours. */
        if (w->arf || w->tlsrpt) return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++) walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m) walk_object(w, g_mime_message_get_mime_part(m), depth + 1);
    } else if (GMIME_IS_PART(obj)) {
        walk_leaf(w, GMIME_PART(obj));
    }
}

/* Unwraps one message; the message as a whole fails when it held no report. */
static int unwrap_message(dp_unwrap *u, GMimeMessage *msg, const char *msgname) {
    walk w;
    memset(&w, 0, sizeof w);
    w.u = u;
    w.msgname = msgname;
    uint64_t before = u->reports_seen;
    uint64_t rejected_before = u->res->rejected;
    walk_object(&w, g_mime_message_get_mime_part(msg), 0);
    int rc = w.rc == 0 ? 0 : -1;
    if (u->reports_seen == before && u->res->rejected == rejected_before) {
        dp_error err;
        if (w.arf)
            dp_error_set(&err, DP_ERR_NOT_AGGREGATE, "failure report (ARF, RFC 6591), not an aggregate report");
        else if (w.tlsrpt)
            dp_error_set(&err, DP_ERR_NOT_AGGREGATE, "SMTP TLS report (RFC 8460), not an aggregate report");
        else
            dp_error_set(&err, DP_ERR_NOT_AGGREGATE, "message holds no aggregate report (parts: %s)",
                         w.types.len ? w.types.data : "none");
        dp_unwrap_fail(u, NULL, &err, msgname);
        rc = -1;
    }
    dp_buf_free(&w.types);
    return rc;
}

/* GMime builds a message's whole tree, headers included, in memory before
 * any of our limits can act, so hostile mail (a 100 MB header, a million
 * tiny parts) is refused by a cheap line scan first.  Every header block
 * (the message's, and each part's after a "--boundary" line) must fit in
 * MAX_HEADER_BYTES, and boundary-like lines are bounded by the part limit.
 * Returns 0, or -1 with `err` set. */
#define MAX_HEADER_BYTES (1u << 20)
typedef struct prescan {
    int in_header;          /* inside a header block */
    int line_blank;         /* the line so far is only CR/LF */
    int line_dashes;        /* leading '-' seen on this line, up to 2 */
    int line_from;          /* the line starts with 'F' (an mbox "From ") */
    uint64_t line_len, header_bytes, boundaries, offset;
} prescan;

static void prescan_init(prescan *ps) {
    memset(ps, 0, sizeof *ps);
    ps->in_header = 1; /* a message starts with its header */
    ps->line_blank = 1;
}

static int prescan_feed(prescan *ps, const unsigned char *p, size_t n, const dp_ingest_limits *lim,
                        int mbox, dp_error *err) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (ps->line_len == 0) {
            ps->line_from = c == 'F';
            ps->line_dashes = 0;
        }
        if (ps->line_len < 2 && c == '-' && ps->line_dashes == (int)ps->line_len) ps->line_dashes++;
        ps->line_len++;
        if (c != '\r' && c != '\n') ps->line_blank = 0;
        if (ps->in_header && ++ps->header_bytes > MAX_HEADER_BYTES) {
            dp_error_set(err, DP_ERR_LIMIT, "a MIME header block exceeds %u bytes", MAX_HEADER_BYTES);
            dp_error_set_offset(err, ps->offset + i);
            return -1;
        }
        if (c != '\n') continue;
        if (ps->in_header && ps->line_blank) {
            ps->in_header = 0;
        } else if (ps->line_dashes == 2) {
            /* "--boundary": a part, with its own header, may follow */
            ps->in_header = 1;
            ps->header_bytes = 0;
            if (++ps->boundaries > 2ull * lim->max_parts + 16) {
                dp_error_set(err, DP_ERR_LIMIT, "message has too many MIME parts (more than %u)",
                             lim->max_parts);
                dp_error_set_offset(err, ps->offset + i);
                return -1;
            }
        } else if (mbox && ps->line_from) {
            ps->in_header = 1;
            ps->header_bytes = 0;
        }
        ps->line_len = 0;
        ps->line_blank = 1;
    }
    ps->offset += n;
    return 0;
}

static int unwrap_gstream(dp_unwrap *u, GMimeStream *stream, const char *part, int mbox) {
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, mbox ? GMIME_FORMAT_MBOX : GMIME_FORMAT_MESSAGE);
    g_mime_parser_set_persist_stream(parser, TRUE);
    int rc = 0, n = 0;
    dp_buf name = DP_BUF_INIT;
    do {
        GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
        if (!msg) {
            if (n == 0 || !g_mime_parser_eos(parser)) {
                dp_error err;
                dp_error_set(&err, DP_ERR_MIME, mbox ? "cannot parse the mbox" : "cannot parse the message");
                dp_error_set_offset(&err, (uint64_t)g_mime_parser_tell(parser));
                dp_unwrap_fail(u, NULL, &err, part);
                rc = -1;
            }
            break;
        }
        n++;
        dp_buf_reset(&name);
        if (mbox) dp_buf_printf(&name, "%s!message %d", part, n);
        else dp_buf_puts(&name, part);
        if (unwrap_message(u, msg, name.failed ? part : name.data) != 0) rc = -1;
        g_object_unref(msg);
        if (mbox && (uint32_t)n >= u->lim->max_parts && !g_mime_parser_eos(parser)) {
            dp_error err;
            dp_error_set(&err, DP_ERR_LIMIT, "too many messages in the mbox (more than %u)", u->lim->max_parts);
            dp_unwrap_fail(u, NULL, &err, part);
            rc = -1;
            break;
        }
    } while (mbox && !g_mime_parser_eos(parser));
    dp_buf_free(&name);
    g_object_unref(parser);
    return rc;
}

int dp_mime_unwrap_fd(dp_unwrap *u, int fd, const char *part, int mbox) {
    dp_ingest_global_init();
    {
        prescan ps;
        prescan_init(&ps);
        unsigned char buf[65536];
        off_t start = lseek(fd, 0, SEEK_CUR);
        dp_error err;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            if (prescan_feed(&ps, buf, (size_t)n, u->lim, mbox, &err) != 0) {
                dp_unwrap_fail(u, NULL, &err, part);
                return -1;
            }
        }
        if (n < 0 || lseek(fd, start, SEEK_SET) != start) {
            dp_error_set(&err, DP_ERR_IO, "cannot read the message twice");
            dp_unwrap_fail(u, NULL, &err, part);
            return -1;
        }
    }
    int dupfd = dup(fd);
    if (dupfd < 0) {
        dp_error err;
        dp_error_set(&err, DP_ERR_IO, "cannot duplicate the file descriptor");
        dp_unwrap_fail(u, NULL, &err, part);
        return -1;
    }
    /* We close dupfd ourselves, not GMime: the descriptor's life is then
     * visible in our code (and to ThreadSanitizer). */
    GMimeStream *s = g_mime_stream_fs_new(dupfd);
    g_mime_stream_fs_set_owner(GMIME_STREAM_FS(s), FALSE);
    int rc = unwrap_gstream(u, s, part, mbox);
    g_object_unref(s);
    close(dupfd);
    return rc;
}

int dp_mime_unwrap_mem(dp_unwrap *u, const void *data, size_t len, const char *part, int mbox) {
    dp_ingest_global_init();
    prescan ps;
    prescan_init(&ps);
    dp_error err;
    if (prescan_feed(&ps, data, len, u->lim, mbox, &err) != 0) {
        dp_unwrap_fail(u, NULL, &err, part);
        return -1;
    }
    GMimeStream *s = g_mime_stream_mem_new_with_buffer(data, len);
    int rc = unwrap_gstream(u, s, part, mbox);
    g_object_unref(s);
    return rc;
}
