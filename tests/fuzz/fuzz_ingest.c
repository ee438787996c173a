/* fuzz_ingest — libFuzzer target for the whole ingest stage.
 *
 * Each input goes through dp_ingest_memory() as if a receiver had sent it:
 * sniffing, gzip/zip/zstd unwrapping, MIME, the XML parser, validation and
 * normalisation.  Every record is rendered with dp_format_record() and the
 * rendering is checked to be one strict JSON object in valid UTF-8.
 *
 * Beyond "does not crash", the target checks the contract of ingest.h and
 * aborts when it is broken (libFuzzer then saves the input):
 *   - strings handed out are NULL or non-empty, trimmed, valid UTF-8, and
 *     enumerated values are lower-case;
 *   - a record's source_ip is canonical text for its family and bytes;
 *   - begin <= end; a report's records/messages match what was delivered;
 *   - every rejection reaches report_failed with a one-line message;
 *   - the result's counts equal what the callbacks saw committed, and the
 *     return value is 0 exactly when nothing was rejected.
 * Some inputs (chosen by their length) make the handler refuse a record or
 * a report, to exercise the DP_ERR_HANDLER paths.
 *
 * Limits are small (4 MiB of XML per report, 4 KiB of text per element,
 * 64 parts) so that no input takes long.
 *
 * Built two ways (see CMakeLists.txt here):
 *   fuzz_ingest   with -fsanitize=fuzzer: libFuzzer supplies main().
 *   fuzz_replay   plain, with replay_main.c's main(), which runs every file
 *                 named on the command line (directories: every file in
 *                 them) through LLVMFuzzerTestOneInput once, each in a
 *                 child process, and fails if any child crashed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_buf.h"
#include "ingest.h"
#include "sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "fuzz-input"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_ingest: contract broken at %s:%d: %s\n", __FILE__,   \
                    __LINE__, #cond);                                                  \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* ---- a strict JSON checker for the renderer's output ---------------------- */

static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;
        if (c == 0xED && s[1] >= 0xA0) return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;
        if (c == 0xF4 && s[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

static int valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len(p + i, n - i);
        if (!l) return 0;
        i += l;
    }
    return 1;
}

typedef struct jp { const unsigned char *p, *end; } jp;

static int j_value(jp *j, int depth);

static void j_ws(jp *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int j_string(jp *j) {
    if (j->p >= j->end || *j->p != '"') return 0;
    j->p++;
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c == '"') { j->p++; return 1; }
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (++j->p >= j->end) return 0;
            c = *j->p++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++, j->p++)
                    if (j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p) || !*j->p) return 0;
            } else if (!strchr("\"\\/bfnrt", c) || !c) {
                return 0;
            }
            continue;
        }
        size_t l = utf8_len(j->p, (size_t)(j->end - j->p));
        if (!l) return 0;
        j->p += l;
    }
    return 0;
}

static int j_number(jp *j) {
    const unsigned char *s = j->p;
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return 0;
    if (*j->p == '0') j->p++;
    else while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > s;
}

static int j_lit(jp *j, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0) return 0;
    j->p += n;
    return 1;
}

static int j_object(jp *j, int depth) {
    j->p++; /* '{' */
    j_ws(j);
    if (j->p < j->end && *j->p == '}') { j->p++; return 1; }
    for (;;) {
        j_ws(j);
        if (!j_string(j)) return 0;
        j_ws(j);
        if (j->p >= j->end || *j->p++ != ':') return 0;
        if (!j_value(j, depth + 1)) return 0;
        j_ws(j);
        if (j->p >= j->end) return 0;
        if (*j->p == '}') { j->p++; return 1; }
        if (*j->p++ != ',') return 0;
    }
}

static int j_array(jp *j, int depth) {
    j->p++; /* '[' */
    j_ws(j);
    if (j->p < j->end && *j->p == ']') { j->p++; return 1; }
    for (;;) {
        if (!j_value(j, depth + 1)) return 0;
        j_ws(j);
        if (j->p >= j->end) return 0;
        if (*j->p == ']') { j->p++; return 1; }
        if (*j->p++ != ',') return 0;
    }
}

static int j_value(jp *j, int depth) {
    if (depth > 16) return 0;
    j_ws(j);
    if (j->p >= j->end) return 0;
    switch (*j->p) {
    case '{': return j_object(j, depth);
    case '[': return j_array(j, depth);
    case '"': return j_string(j);
    case 'n': return j_lit(j, "null");
    case 't': return j_lit(j, "true");
    case 'f': return j_lit(j, "false");
    default: return j_number(j);
    }
}

static int json_is_one_object(const char *s, size_t n) {
    jp j = {(const unsigned char *)s, (const unsigned char *)s + n};
    j_ws(&j);
    if (j.p >= j.end || *j.p != '{') return 0;
    if (!j_value(&j, 0)) return 0;
    j_ws(&j);
    return j.p == j.end && memchr(s, '\n', n) == NULL;
}

/* ---- the contract of ingest.h ---------------------------------------------- */

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* NULL, or non-empty, trimmed, valid UTF-8; lower-case when an enum. */
static void check_str(const char *s, int is_enum) {
    if (!s) return;
    size_t n = strlen(s);
    CHECK(n > 0);
    CHECK(!is_ws(s[0]) && !is_ws(s[n - 1]));
    CHECK(valid_utf8(s));
    if (is_enum)
        for (size_t i = 0; i < n; i++) CHECK(!(s[i] >= 'A' && s[i] <= 'Z'));
}

/* `failing`: handed to report_failed, when the header itself may be what
 * failed (begin after end, say). */
static void check_report(const dp_report *r, int failing) {
    CHECK(r->input && strcmp(r->input, FUZZ_NAME) == 0);
    CHECK(r->part && strncmp(r->part, FUZZ_NAME, strlen(FUZZ_NAME)) == 0);
    check_str(r->org_name, 0);
    check_str(r->email, 0);
    check_str(r->extra_contact_info, 0);
    check_str(r->report_id, 0);
    check_str(r->generator, 0);
    check_str(r->version, 0);
    CHECK(failing || r->begin <= r->end);
    CHECK(r->n_errors == 0 || r->errors);
    for (size_t i = 0; i < r->n_errors; i++) {
        CHECK(r->errors[i] != NULL);
        check_str(r->errors[i], 0);
    }
    CHECK(r->schema == DP_SCHEMA_DRAFT || r->schema == DP_SCHEMA_RFC7489 ||
          r->schema == DP_SCHEMA_RFC9990);
    const dp_policy *p = &r->policy;
    check_str(p->domain, 0);
    check_str(p->adkim, 1);
    check_str(p->aspf, 1);
    check_str(p->p, 1);
    check_str(p->sp, 1);
    check_str(p->np, 1);
    check_str(p->fo, 0);
    check_str(p->testing, 1);
    check_str(p->discovery_method, 1);
    check_str(p->psd, 1);
    CHECK(!p->has_pct || p->pct <= 100);
}

static void check_record(const dp_record *rec) {
    CHECK(rec->ip_family == 4 || rec->ip_family == 6);
    size_t n = strnlen(rec->source_ip, DP_IP_STRLEN);
    CHECK(n > 0 && n < DP_IP_STRLEN);
    unsigned char bytes[16] = {0};
    if (rec->ip_family == 4) {
        CHECK(inet_pton(AF_INET, rec->source_ip, bytes) == 1);
        CHECK(memcmp(bytes, rec->ip, 4) == 0);
        char canon[INET_ADDRSTRLEN];
        CHECK(inet_ntop(AF_INET, bytes, canon, sizeof canon) != NULL);
        CHECK(strcmp(canon, rec->source_ip) == 0);
    } else {
        CHECK(inet_pton(AF_INET6, rec->source_ip, bytes) == 1);
        CHECK(memcmp(bytes, rec->ip, 16) == 0);
        CHECK(!IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)bytes));
        char canon[INET6_ADDRSTRLEN];
        CHECK(inet_ntop(AF_INET6, bytes, canon, sizeof canon) != NULL);
        CHECK(strcmp(canon, rec->source_ip) == 0);
    }
    check_str(rec->disposition, 1);
    check_str(rec->dkim, 1);
    check_str(rec->spf, 1);
    check_str(rec->header_from, 0);
    check_str(rec->envelope_from, 0);
    check_str(rec->envelope_to, 0);
    CHECK(rec->n_overrides == 0 || rec->overrides);
    for (size_t i = 0; i < rec->n_overrides; i++) {
        check_str(rec->overrides[i].type, 1);
        check_str(rec->overrides[i].comment, 0);
    }
    CHECK(rec->n_dkim_auth == 0 || rec->dkim_auth);
    for (size_t i = 0; i < rec->n_dkim_auth; i++) {
        check_str(rec->dkim_auth[i].domain, 0);
        check_str(rec->dkim_auth[i].selector, 0);
        check_str(rec->dkim_auth[i].result, 1);
        check_str(rec->dkim_auth[i].human_result, 0);
    }
    CHECK(rec->n_spf_auth == 0 || rec->spf_auth);
    for (size_t i = 0; i < rec->n_spf_auth; i++) {
        check_str(rec->spf_auth[i].domain, 0);
        check_str(rec->spf_auth[i].scope, 1);
        check_str(rec->spf_auth[i].result, 1);
        check_str(rec->spf_auth[i].human_result, 0);
    }
}

typedef struct fuzz_ctx {
    dp_buf json;
    uint64_t refuse_record_at; /* 0: never */
    int refuse_report;
    /* the report in progress */
    uint64_t pending_records, pending_messages;
    /* committed */
    uint64_t reports, records, messages;
    uint64_t failed;
    dp_error first_err;
} fuzz_ctx;

static int on_record(void *vctx, const dp_report *rep, const dp_record *rec) {
    fuzz_ctx *c = vctx;
    check_report(rep, 0);
    check_record(rec);
    c->pending_records++;
    c->pending_messages += rec->count;
    CHECK(rep->records == c->pending_records);
    CHECK(rep->messages == c->pending_messages);
    dp_buf_reset(&c->json);
    dp_format_record(&c->json, rep, rec);
    if (!c->json.failed) CHECK(json_is_one_object(c->json.data, c->json.len));
    if (c->refuse_record_at && c->pending_records >= c->refuse_record_at) return 1;
    return 0;
}

static int on_report_done(void *vctx, const dp_report *rep) {
    fuzz_ctx *c = vctx;
    check_report(rep, 0);
    CHECK(rep->records == c->pending_records);
    CHECK(rep->messages == c->pending_messages);
    if (c->refuse_report) return 1; /* ingest must now call report_failed */
    c->reports++;
    c->records += c->pending_records;
    c->messages += c->pending_messages;
    c->pending_records = c->pending_messages = 0;
    return 0;
}

static void on_report_failed(void *vctx, const dp_report *rep, const dp_error *err) {
    fuzz_ctx *c = vctx;
    if (rep) check_report(rep, 1);
    CHECK(err != NULL);
    CHECK(err->kind != DP_OK);
    CHECK(memchr(err->msg, '\0', sizeof err->msg) != NULL);
    CHECK(memchr(err->where, '\0', sizeof err->where) != NULL);
    CHECK(err->msg[0] != '\0');
    /* The CLI prints "dmarcpipe: WHERE: STAGE: MESSAGE" as one line. */
    CHECK(strpbrk(err->msg, "\r\n") == NULL);
    CHECK(strpbrk(err->where, "\r\n") == NULL);
    CHECK(strncmp(err->where, FUZZ_NAME, strlen(FUZZ_NAME)) == 0);
    if (c->failed == 0) c->first_err = *err;
    c->failed++;
    c->pending_records = c->pending_messages = 0;
}

static const dp_report_handler HANDLER = {
    .record = on_record, .report_done = on_report_done, .report_failed = on_report_failed};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int inited;
    if (!inited) {
        dp_ingest_global_init();
        inited = 1;
    }
    dp_ingest_limits lim;
    dp_ingest_limits_default(&lim);
    lim.max_report_bytes = 4u << 20;
    lim.max_text_bytes = 4096;
    lim.max_parts = 64;
    lim.max_auth_results = 100;

    fuzz_ctx c;
    memset(&c, 0, sizeof c);
    /* One input in 16 has the consumer stop at its second record, one in
     * 16 has it refuse every report. */
    if (size % 16 == 5) c.refuse_record_at = 2;
    if (size % 16 == 6) c.refuse_report = 1;
    /* One input in 4 is read by a reader thread once past its first 4 KiB
     * (readahead.c), with its hash computed there: every path the parser
     * takes, the hand-over of the stream must survive too. */
    if (size % 4 == 1) {
        lim.readahead_after = 4096;
        lim.compute_sha256 = 1;
    }

    dp_ingest_result res;
    dp_error err;
    memset(&err, 0, sizeof err);
    int rc = dp_ingest_memory(&lim, FUZZ_NAME, data, size, &HANDLER, &c, &res, &err);

    CHECK(rc == 0 || rc == -1);
    CHECK(res.rejected == c.failed);
    CHECK(res.reports == c.reports);
    CHECK(res.records == c.records);
    CHECK(res.messages == c.messages);
    if (rc == 0) {
        CHECK(res.rejected == 0 && res.reports > 0);
    } else {
        CHECK(res.rejected > 0);
        CHECK(err.kind == c.first_err.kind);
        CHECK(strcmp(err.msg, c.first_err.msg) == 0);
    }
    dp_buf_free(&c.json);
    return 0;
}
