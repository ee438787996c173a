/* test_util — see test_util.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "dp_buf.h"

/* ---- ownership ------------------------------------------------------------- */

static void **kept;
static size_t n_kept, cap_kept;
static char *tmpdirs[16];
static size_t n_tmpdirs;

void *tu_keep(void *p) {
    ck_assert_msg(p != NULL, "out of memory in a test helper");
    if (n_kept == cap_kept) {
        cap_kept = cap_kept ? cap_kept * 2 : 64;
        kept = realloc(kept, cap_kept * sizeof *kept);
        ck_assert_ptr_nonnull(kept);
    }
    kept[n_kept++] = p;
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void tu_free_all(void) {
    for (size_t i = 0; i < n_kept; i++) free(kept[i]);
    free(kept);
    kept = NULL;
    n_kept = cap_kept = 0;
    for (size_t i = 0; i < n_tmpdirs; i++) {
        nftw(tmpdirs[i], rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(tmpdirs[i]);
    }
    n_tmpdirs = 0;
}

static char *keep_strdup(const char *s) {
    if (!s) return NULL;
    return tu_keep(strdup(s));
}

static void *keep_grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap * 2 : 8;
    while (c < need) c *= 2;
    void *q = calloc(c, elem);
    ck_assert_ptr_nonnull(q);
    if (p) memcpy(q, p, *cap * elem);
    *cap = c;
    /* the old block stays registered; it is freed with the rest */
    return tu_keep(q);
}

/* ---- the collecting handler -------------------------------------------------- */

static void event(tu_collect *c, char e) {
    if (c->n_events + 1 < sizeof c->events) {
        c->events[c->n_events++] = e;
        c->events[c->n_events] = '\0';
    }
}

static int on_record(void *ctx, const dp_report *rep, const dp_record *rec) {
    tu_collect *c = ctx;
    event(c, 'r');
    c->recs = keep_grow(c->recs, &c->cap_recs, c->n_recs + 1, sizeof *c->recs);
    tu_record *r = &c->recs[c->n_recs++];
    memset(r, 0, sizeof *r);
    r->org_name = keep_strdup(rep->org_name);
    r->report_id = keep_strdup(rep->report_id);
    r->part = keep_strdup(rep->part);
    r->rep_records = rep->records;
    r->rep_messages = rep->messages;
    memcpy(r->source_ip, rec->source_ip, sizeof r->source_ip);
    r->ip_family = rec->ip_family;
    memcpy(r->ip, rec->ip, sizeof r->ip);
    r->count = rec->count;
    r->disposition = keep_strdup(rec->disposition);
    r->dkim = keep_strdup(rec->dkim);
    r->spf = keep_strdup(rec->spf);
    r->header_from = keep_strdup(rec->header_from);
    r->envelope_from = keep_strdup(rec->envelope_from);
    r->envelope_to = keep_strdup(rec->envelope_to);
    ck_assert_uint_le(rec->n_overrides, TU_MAX_CHILDREN);
    ck_assert_uint_le(rec->n_dkim_auth, TU_MAX_CHILDREN);
    ck_assert_uint_le(rec->n_spf_auth, TU_MAX_CHILDREN);
    r->n_overrides = rec->n_overrides;
    for (size_t i = 0; i < rec->n_overrides; i++) {
        r->ov[i].type = keep_strdup(rec->overrides[i].type);
        r->ov[i].comment = keep_strdup(rec->overrides[i].comment);
    }
    r->n_dkim = rec->n_dkim_auth;
    for (size_t i = 0; i < rec->n_dkim_auth; i++) {
        r->dk[i].domain = keep_strdup(rec->dkim_auth[i].domain);
        r->dk[i].selector_or_scope = keep_strdup(rec->dkim_auth[i].selector);
        r->dk[i].result = keep_strdup(rec->dkim_auth[i].result);
        r->dk[i].human_result = keep_strdup(rec->dkim_auth[i].human_result);
    }
    r->n_spf = rec->n_spf_auth;
    for (size_t i = 0; i < rec->n_spf_auth; i++) {
        r->sp[i].domain = keep_strdup(rec->spf_auth[i].domain);
        r->sp[i].selector_or_scope = keep_strdup(rec->spf_auth[i].scope);
        r->sp[i].result = keep_strdup(rec->spf_auth[i].result);
        r->sp[i].human_result = keep_strdup(rec->spf_auth[i].human_result);
    }
    if (c->stop_at_record && c->n_recs == (size_t)c->stop_at_record) return 1;
    return 0;
}

static int on_done(void *ctx, const dp_report *rep) {
    tu_collect *c = ctx;
    event(c, 'D');
    c->reps = keep_grow(c->reps, &c->cap_reps, c->n_reps + 1, sizeof *c->reps);
    tu_report *r = &c->reps[c->n_reps++];
    memset(r, 0, sizeof *r);
    r->input = keep_strdup(rep->input);
    r->part = keep_strdup(rep->part);
    r->org_name = keep_strdup(rep->org_name);
    r->email = keep_strdup(rep->email);
    r->extra_contact_info = keep_strdup(rep->extra_contact_info);
    r->report_id = keep_strdup(rep->report_id);
    r->generator = keep_strdup(rep->generator);
    r->version = keep_strdup(rep->version);
    r->begin = rep->begin;
    r->end = rep->end;
    ck_assert_uint_le(rep->n_errors, TU_MAX_CHILDREN);
    r->n_errors = rep->n_errors;
    for (size_t i = 0; i < rep->n_errors; i++) r->errors[i] = keep_strdup(rep->errors[i]);
    r->schema = rep->schema;
    r->domain = keep_strdup(rep->policy.domain);
    r->adkim = keep_strdup(rep->policy.adkim);
    r->aspf = keep_strdup(rep->policy.aspf);
    r->p = keep_strdup(rep->policy.p);
    r->sp = keep_strdup(rep->policy.sp);
    r->np = keep_strdup(rep->policy.np);
    r->fo = keep_strdup(rep->policy.fo);
    r->testing = keep_strdup(rep->policy.testing);
    r->discovery_method = keep_strdup(rep->policy.discovery_method);
    r->psd = keep_strdup(rep->policy.psd);
    r->has_pct = rep->policy.has_pct;
    r->pct = rep->policy.pct;
    r->records = rep->records;
    r->messages = rep->messages;
    r->xml_bytes = rep->xml_bytes;
    c->pending_from = c->n_recs;
    return c->refuse_reports ? 1 : 0;
}

static void on_failed(void *ctx, const dp_report *rep, const dp_error *err) {
    tu_collect *c = ctx;
    event(c, 'F');
    c->fails = keep_grow(c->fails, &c->cap_fails, c->n_fails + 1, sizeof *c->fails);
    tu_failure *f = &c->fails[c->n_fails++];
    f->err = *err;
    f->had_report = rep != NULL;
    f->rep_records = rep ? rep->records : 0;
    for (size_t i = c->pending_from; i < c->n_recs; i++) c->recs[i].discarded = 1;
    c->pending_from = c->n_recs;
}

const dp_report_handler tu_handler = {.record = on_record, .report_done = on_done, .report_failed = on_failed};

tu_collect *tu_collect_new(void) {
    tu_collect *c = tu_keep(calloc(1, sizeof *c));
    return c;
}

tu_collect *tu_ingest_mem(const dp_ingest_limits *lim, const char *name, const void *data, size_t len) {
    tu_collect *c = tu_collect_new();
    dp_ingest_global_init();
    c->rc = dp_ingest_memory(lim, name, data, len, &tu_handler, c, &c->res, &c->err);
    return c;
}

tu_collect *tu_ingest_str(const char *s) { return tu_ingest_mem(NULL, "test.xml", s, strlen(s)); }

tu_collect *tu_ingest_file(const dp_ingest_limits *lim, const char *path) {
    tu_collect *c = tu_collect_new();
    dp_ingest_global_init();
    c->rc = dp_ingest_file(lim, path, &tu_handler, c, &c->res, &c->err);
    return c;
}

size_t tu_committed_records(const tu_collect *c) {
    size_t n = 0;
    for (size_t i = 0; i < c->n_recs; i++)
        if (!c->recs[i].discarded && i < c->pending_from) n++;
    return n;
}

/* ---- building inputs ------------------------------------------------------------ */

tu_bytes tu_str(const char *s) {
    tu_bytes b = {tu_keep(strdup(s)), strlen(s)};
    return b;
}

tu_bytes tu_gzip(const void *data, size_t len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    unsigned char *out = tu_keep(malloc(cap));
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    tu_bytes b = {out, cap - z.avail_out};
    deflateEnd(&z);
    return b;
}

tu_bytes tu_zstd(const void *data, size_t len) {
    size_t cap = ZSTD_compressBound(len);
    unsigned char *out = tu_keep(malloc(cap));
    size_t n = ZSTD_compress(out, cap, data, len, 3);
    ck_assert_msg(!ZSTD_isError(n), "zstd: %s", ZSTD_getErrorName(n));
    tu_bytes b = {out, n};
    return b;
}

static la_ssize_t zip_write_cb(struct archive *a, void *ctx, const void *buf, size_t n) {
    (void)a;
    dp_buf_append(ctx, buf, n);
    return (la_ssize_t)n;
}

tu_bytes tu_zip(const tu_entry *entries, size_t n) {
    dp_buf out = DP_BUF_INIT;
    struct archive *a = archive_write_new();
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(archive_write_set_format_zip(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_zip_set_compression_deflate(a), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    ck_assert_int_eq(archive_write_open(a, &out, NULL, zip_write_cb, NULL), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, entries[i].name);
        archive_entry_set_size(e, (la_int64_t)entries[i].len);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, 1700000000, 0);
        ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
        ck_assert_int_eq(archive_write_data(a, entries[i].data, entries[i].len), (la_ssize_t)entries[i].len);
        archive_entry_free(e);
    }
    ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    ck_assert(!out.failed);
    tu_bytes b = {tu_keep(out.data), out.len};
    return b;
}

tu_bytes tu_cat(tu_bytes a, tu_bytes b) {
    unsigned char *p = tu_keep(malloc(a.len + b.len + 1));
    memcpy(p, a.data, a.len);
    memcpy(p + a.len, b.data, b.len);
    p[a.len + b.len] = 0;
    tu_bytes r = {p, a.len + b.len};
    return r;
}

tu_bytes tu_head(tu_bytes a, size_t n) {
    ck_assert_uint_le(n, a.len);
    a.len = n;
    return a;
}

char *tu_base64(const void *data, size_t len) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    dp_buf b = DP_BUF_INIT;
    size_t col = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < len) v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < len) v |= s[i + 2];
        char q[4] = {tbl[v >> 18 & 63], tbl[v >> 12 & 63], i + 1 < len ? tbl[v >> 6 & 63] : '=',
                     i + 2 < len ? tbl[v & 63] : '='};
        dp_buf_append(&b, q, 4);
        col += 4;
        if (col >= 76) { dp_buf_puts(&b, "\r\n"); col = 0; }
    }
    if (col) dp_buf_puts(&b, "\r\n");
    dp_buf_putc(&b, '\0');
    ck_assert(!b.failed);
    return tu_keep(b.data);
}

char *tu_qp(const void *data, size_t len) {
    const unsigned char *s = data;
    dp_buf b = DP_BUF_INIT;
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (col >= 70) { dp_buf_puts(&b, "=\r\n"); col = 0; } /* soft line break */
        if (plain) { dp_buf_putc(&b, (char)c); col++; }
        else { dp_buf_printf(&b, "=%02X", c); col += 3; }
    }
    dp_buf_puts(&b, "\r\n");
    ck_assert(!b.failed);
    return tu_keep(b.data);
}

char *tu_printf(const char *fmt, ...) {
    char *out;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    out = tu_keep(malloc((size_t)n + 1));
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

tu_bytes tu_utf16(const char *s, int big_endian) {
    size_t n = strlen(s);
    unsigned char *p = tu_keep(malloc(2 * n + 2));
    p[0] = big_endian ? 0xfe : 0xff;
    p[1] = big_endian ? 0xff : 0xfe;
    for (size_t i = 0; i < n; i++) {
        p[2 + 2 * i + (big_endian ? 1 : 0)] = (unsigned char)s[i];
        p[2 + 2 * i + (big_endian ? 0 : 1)] = 0;
    }
    tu_bytes b = {p, 2 * n + 2};
    return b;
}

/* ---- files ------------------------------------------------------------------- */

const char *tu_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *t = malloc(4096);
    ck_assert_ptr_nonnull(t);
    snprintf(t, 4096, "%s/dp_unit_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg(mkdtemp(t) != NULL, "mkdtemp failed");
    ck_assert_uint_lt(n_tmpdirs, sizeof tmpdirs / sizeof tmpdirs[0]);
    tmpdirs[n_tmpdirs++] = t;
    return t;
}

const char *tu_write_file(const char *dir, const char *name, const void *data, size_t len) {
    char *path = tu_printf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

tu_bytes tu_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    dp_buf b = DP_BUF_INIT;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) dp_buf_append(&b, buf, n);
    fclose(f);
    dp_buf_reserve(&b, 1);
    ck_assert(!b.failed);
    b.data[b.len] = '\0';
    tu_bytes r = {(unsigned char *)tu_keep(b.data), b.len};
    return r;
}

/* ---- Check glue ------------------------------------------------------------------ */

static void setup(void) {}

TCase *tu_tcase(const char *name) {
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, tu_free_all);
    tcase_set_timeout(tc, 120);
    return tc;
}

int tu_run(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/* ---- assertions ---------------------------------------------------------------------- */

void tu_assert_str_at(const char *got, const char *want, const char *expr, const char *file, int line) {
    if (!want) {
        ck_assert_msg(got == NULL, "%s:%d: %s is \"%s\", expected NULL", file, line, expr, got);
        return;
    }
    ck_assert_msg(got != NULL, "%s:%d: %s is NULL, expected \"%s\"", file, line, expr, want);
    ck_assert_msg(strcmp(got, want) == 0, "%s:%d: %s is \"%s\", expected \"%s\"", file, line, expr, got, want);
}

static const char *first_msg(const tu_collect *c) {
    return c->n_fails ? c->fails[0].err.msg : "(no failure)";
}

void tu_assert_ok_at(const tu_collect *c, uint64_t reports, uint64_t records, const char *file, int line) {
    ck_assert_msg(c->rc == 0 && c->res.rejected == 0 && c->n_fails == 0,
                  "%s:%d: input rejected (rc %d, rejected %llu): %s: %s: %s", file, line, c->rc,
                  (unsigned long long)c->res.rejected, c->n_fails ? c->fails[0].err.where : "",
                  c->n_fails ? dp_error_stage(c->fails[0].err.kind) : "", first_msg(c));
    ck_assert_msg(c->res.reports == reports, "%s:%d: %llu reports, expected %llu", file, line,
                  (unsigned long long)c->res.reports, (unsigned long long)reports);
    ck_assert_msg(c->res.records == records, "%s:%d: %llu records, expected %llu", file, line,
                  (unsigned long long)c->res.records, (unsigned long long)records);
    ck_assert_msg(c->n_reps == reports, "%s:%d: report_done called %zu times, expected %llu", file,
                  line, c->n_reps, (unsigned long long)reports);
    ck_assert_msg(tu_committed_records(c) == records, "%s:%d: %zu records delivered, expected %llu",
                  file, line, tu_committed_records(c), (unsigned long long)records);
}

void tu_assert_rejected_at(const tu_collect *c, dp_errkind kind, const char *file, int line) {
    ck_assert_msg(c->rc == -1, "%s:%d: input accepted, expected a rejection (%s)", file, line,
                  dp_error_stage(kind));
    ck_assert_msg(c->n_fails >= 1 && c->res.rejected >= 1, "%s:%d: rc -1 but report_failed never called",
                  file, line);
    ck_assert_msg(c->fails[0].err.kind == kind, "%s:%d: first error is %s (\"%s\"), expected %s", file,
                  line, dp_error_stage(c->fails[0].err.kind), c->fails[0].err.msg, dp_error_stage(kind));
    ck_assert_msg(c->err.kind == kind, "%s:%d: returned error is %s (\"%s\"), expected %s", file, line,
                  dp_error_stage(c->err.kind), c->err.msg, dp_error_stage(kind));
    ck_assert_msg(c->res.reports == 0 && c->res.records == 0 && c->res.messages == 0,
                  "%s:%d: rejected input still counted %llu reports, %llu records", file, line,
                  (unsigned long long)c->res.reports, (unsigned long long)c->res.records);
    ck_assert_msg(c->n_reps == 0, "%s:%d: report_done called for a rejected input", file, line);
    ck_assert_msg(tu_committed_records(c) == 0, "%s:%d: records committed for a rejected input", file, line);
}

void tu_assert_contains_at(const char *hay, const char *needle, const char *file, int line) {
    ck_assert_msg(hay && strstr(hay, needle), "%s:%d: \"%s\" does not contain \"%s\"", file, line,
                  hay ? hay : "(null)", needle);
}
