/* report_xml — the streaming expat parser for DMARC aggregate reports.
 *
 * One SAX parser reads all three schemas in the wild: the pre-RFC draft,
 * RFC 7489 appendix C and RFC 9990 (namespace urn:ietf:params:xml:ns:dmarc-2.0).
 * Elements are matched by local name and by their parent, so a namespace or
 * its absence changes nothing; unknown elements (extensions, vendor tags)
 * are skipped.
 *
 * Memory is constant: bytes are read straight into expat's own buffer
 * (XML_GetBuffer/XML_ParseBuffer, no extra copy), text is only collected
 * for the leaf elements we keep, into one fixed buffer, and each record is
 * handed to the consumer as soon as </record> closes, after which its
 * strings are dropped.
 *
 * Section order: the header (<report_metadata>, <policy_published>) may
 * come after the records.  Records that close before it is complete are
 * validated as usual, then held, serialised, in bounded memory
 * (record_hold.c) and handed out in order once it is; when the header
 * comes first, as it nearly always does, nothing is held.  A section
 * repeated is one section if the copies are the same, and the report is
 * refused if they differ: which one would hold is anyone's guess.
 *
 * Hostile input: any DOCTYPE stops the parser (reports never need one, and
 * without a DTD there is nothing to expand); expat's billion-laughs guard is
 * on as well.  Depth, text length, bytes and records-per-report are capped.
 */
#include <errno.h>
#include <expat.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

#include "dp_config.h"
#include "ingest_internal.h"
#include "normalise.h"

#define NS_RFC9990 "urn:ietf:params:xml:ns:dmarc-2.0"
#define NS_DRAFT "http://dmarc.org/dmarc-xml/0.1"
#define READ_CHUNK (64u * 1024u)
#define MAX_REPORT_ERRORS 1000
#define MAX_OVERRIDES 100

/* Element local names we act on.  Order is irrelevant. */
typedef enum tok {
    T_OTHER = 0, T_FEEDBACK, T_SCHEMA, T_VERSION, T_REPORT_METADATA, T_ORG_NAME, T_EMAIL,
    T_EXTRA_CONTACT_INFO, T_REPORT_ID, T_DATE_RANGE, T_BEGIN, T_END, T_ERROR, T_GENERATOR,
    T_POLICY_PUBLISHED, T_DOMAIN, T_ADKIM, T_ASPF, T_P, T_SP, T_NP, T_PCT, T_FO, T_TESTING,
    T_DISCOVERY_METHOD, T_PSD, T_RECORD, T_ROW, T_SOURCE_IP, T_COUNT, T_POLICY_EVALUATED,
    T_DISPOSITION, T_DKIM, T_SPF, T_REASON, T_POLICY_OVERRIDE, T_TYPE, T_COMMENT,
    T_IDENTIFIERS, T_HEADER_FROM, T_ENVELOPE_FROM, T_ENVELOPE_TO, T_AUTH_RESULTS,
    T_SELECTOR, T_RESULT, T_HUMAN_RESULT, T_SCOPE
} tok;

/* Element names are matched on their local part, by length first, then
 * bytes: called once per element, this is the parser's hottest code of its
 * own, and a switch beats both a scan and a hash at ~50 short names. */
#define IS(lit) (memcmp(s, lit, sizeof lit - 1) == 0)
static tok lookup(const char *s, size_t n) {
    switch (n) {
    case 1: return s[0] == 'p' ? T_P : T_OTHER;
    case 2:
        if (IS("sp")) return T_SP;
        if (IS("np")) return T_NP;
        if (IS("fo")) return T_FO;
        return T_OTHER;
    case 3:
        if (IS("end")) return T_END;
        if (IS("pct")) return T_PCT;
        if (IS("row")) return T_ROW;
        if (IS("spf")) return T_SPF;
        if (IS("psd")) return T_PSD;
        return T_OTHER;
    case 4:
        if (IS("dkim")) return T_DKIM;
        if (IS("aspf")) return T_ASPF;
        if (IS("type")) return T_TYPE;
        return T_OTHER;
    case 5:
        if (IS("count")) return T_COUNT;
        if (IS("begin")) return T_BEGIN;
        if (IS("email")) return T_EMAIL;
        if (IS("error")) return T_ERROR;
        if (IS("adkim")) return T_ADKIM;
        if (IS("scope")) return T_SCOPE;
        return T_OTHER;
    case 6:
        if (IS("domain")) return T_DOMAIN;
        if (IS("record")) return T_RECORD;
        if (IS("result")) return T_RESULT;
        if (IS("reason")) return T_REASON;
        if (IS("schema")) return T_SCHEMA;
        return T_OTHER;
    case 7:
        if (IS("version")) return T_VERSION;
        if (IS("testing")) return T_TESTING;
        if (IS("comment")) return T_COMMENT;
        return T_OTHER;
    case 8:
        if (IS("feedback")) return T_FEEDBACK;
        if (IS("org_name")) return T_ORG_NAME;
        if (IS("selector")) return T_SELECTOR;
        return T_OTHER;
    case 9:
        if (IS("source_ip")) return T_SOURCE_IP;
        if (IS("report_id")) return T_REPORT_ID;
        if (IS("generator")) return T_GENERATOR;
        return T_OTHER;
    case 10:
        return IS("date_range") ? T_DATE_RANGE : T_OTHER;
    case 11:
        if (IS("disposition")) return T_DISPOSITION;
        if (IS("identifiers")) return T_IDENTIFIERS;
        if (IS("header_from")) return T_HEADER_FROM;
        if (IS("envelope_to")) return T_ENVELOPE_TO;
        return T_OTHER;
    case 12:
        if (IS("auth_results")) return T_AUTH_RESULTS;
        if (IS("human_result")) return T_HUMAN_RESULT;
        return T_OTHER;
    case 13:
        return IS("envelope_from") ? T_ENVELOPE_FROM : T_OTHER;
    case 15:
        if (IS("report_metadata")) return T_REPORT_METADATA;
        if (IS("policy_override")) return T_POLICY_OVERRIDE;
        return T_OTHER;
    case 16:
        if (IS("policy_published")) return T_POLICY_PUBLISHED;
        if (IS("policy_evaluated")) return T_POLICY_EVALUATED;
        if (IS("discovery_method")) return T_DISCOVERY_METHOD;
        return T_OTHER;
    case 18:
        return IS("extra_contact_info") ? T_EXTRA_CONTACT_INFO : T_OTHER;
    default:
        return T_OTHER;
    }
}
#undef IS

/* Which field a leaf feeds, decided at its start tag from its parents. */
typedef enum field {
    F_NONE = 0,
    /* report level */
    F_VERSION, F_ORG_NAME, F_EMAIL, F_EXTRA, F_REPORT_ID, F_BEGIN, F_END, F_ERROR, F_GENERATOR,
    F_P_DOMAIN, F_P_ADKIM, F_P_ASPF, F_P_P, F_P_SP, F_P_NP, F_P_PCT, F_P_FO, F_P_TESTING,
    F_P_DISCOVERY, F_P_PSD,
    /* record level */
    F_SOURCE_IP, F_COUNT, F_DISPOSITION, F_PE_DKIM, F_PE_SPF, F_OV_TYPE, F_OV_COMMENT,
    F_HEADER_FROM, F_ENVELOPE_FROM, F_ENVELOPE_TO,
    F_DKIM_DOMAIN, F_DKIM_SELECTOR, F_DKIM_RESULT, F_DKIM_HUMAN,
    F_SPF_DOMAIN, F_SPF_SCOPE, F_SPF_RESULT, F_SPF_HUMAN,
    F__COUNT
} field;

/* Fields whose values are enumerations, compared case-insensitively. */
static int field_is_enum(field f) {
    switch (f) {
    case F_P_ADKIM: case F_P_ASPF: case F_P_P: case F_P_SP: case F_P_NP: case F_P_TESTING:
    case F_P_DISCOVERY: case F_P_PSD: case F_DISPOSITION: case F_PE_DKIM: case F_PE_SPF:
    case F_OV_TYPE: case F_DKIM_RESULT: case F_SPF_SCOPE: case F_SPF_RESULT:
        return 1;
    default:
        return 0;
    }
}

/* Strings are kept as offsets into a pool (0 means absent) so the pool can
 * grow without invalidating them; pointers are made only when handing out. */
typedef uint32_t sref;

typedef struct dkim_ref { sref domain, selector, result, human; } dkim_ref;
typedef struct spf_ref { sref domain, scope, result, human; } spf_ref;
typedef struct ov_ref { sref type, comment; } ov_ref;

typedef struct rec_state {
    sref ip_text;       /* raw text, validated at </record> */
    sref count_text;
    sref disposition, dkim, spf, header_from, envelope_from, envelope_to;
    ov_ref *ov; size_t n_ov, cap_ov;
    dkim_ref *dk; size_t n_dk, cap_dk;
    spf_ref *sp; size_t n_sp, cap_sp;
} rec_state;

typedef struct xml_ctx {
    dp_unwrap *u;
    const char *part;
    XML_Parser parser;
    dp_error err;
    int failed;
    int skipped; /* report_begin() said DP_REPORT_SKIP */
    int begun;   /* report_begin() was called */

    /* element stack */
    unsigned char *stack;
    uint32_t depth;
    uint64_t text_in_elem; /* bytes of text directly in the open element */
    /* Whether on_text is installed.  It is not while a known container
     * (<record>, <row>, ...) is the innermost open element: the text
     * there is the indentation between elements, two calls per line of a
     * pretty-printed report, none of it kept.  Text everywhere else (the
     * leaves we keep, unknown elements) is seen and held to the limit. */
    int text_handler_on;

    /* Input bytes fed to expat, and that count when expat last reported
     * an event.  A growing gap means expat is buffering one token (a
     * comment, a PI, a start tag with a huge attribute or name): expat
     * holds a token whole, so the gap is memory, and it is capped. */
    uint64_t fed, fed_at_event;

    /* the leaf being captured */
    field capture;
    char *text;
    size_t text_len;

    /* document structure */
    int feedback_open, feedback_done, in_metadata_done, policy_done, records_started;
    int wrapper_seen;
    dp_schema ns_schema; int ns_known;

    /* report level */
    dp_buf rpool;
    sref r[F_P_PSD + 1];
    sref *errors; size_t n_errors, cap_errors;
    int64_t begin, end;

    /* record level */
    dp_buf pool;
    rec_state rec;
    int in_record;

    /* Set while records close before the header is complete: they wait
     * in `hold` until it is. */
    int holding;
    dp_record_hold hold;

    /* A <report_metadata> or <policy_published> seen before, open again:
     * its token (T_OTHER when none), its fields, and the pool's length and
     * the number of errors when it opened, to forget it if it is the same. */
    tok dup;
    sref r2[F_P_PSD + 1];
    size_t dup_mark, dup_errors;

    /* views handed to the handler */
    dp_report view;
    const char **error_ptrs; size_t cap_error_ptrs;
    dp_override *ov_view; size_t cap_ov_view;
    dp_dkim_auth *dk_view; size_t cap_dk_view;
    dp_spf_auth *sp_view; size_t cap_sp_view;
} xml_ctx;

static void stop(xml_ctx *x) {
    x->failed = 1;
    XML_StopParser(x->parser, XML_FALSE);
}

#define FAIL(x, kind, ...)                                                    \
    do {                                                                      \
        if (!(x)->failed) {                                                   \
            dp_error_set(&(x)->err, kind, __VA_ARGS__);                       \
            dp_error_set_offset(&(x)->err, (uint64_t)XML_GetCurrentByteIndex((x)->parser)); \
            stop(x);                                                          \
        }                                                                     \
    } while (0)

/* Fails with an error made elsewhere, at the current byte. */
static void fail_with(xml_ctx *x, const dp_error *err) {
    if (x->failed) return;
    x->err = *err;
    dp_error_set_offset(&x->err, (uint64_t)XML_GetCurrentByteIndex(x->parser));
    stop(x);
}

/* Called for every leaf kept (a dozen per record): one reserve for the
 * string and its NUL, not an append and a putc that check room twice. */
static sref pool_add(dp_buf *pool, const char *s, size_t n) {
    if (pool->len == 0) dp_buf_putc(pool, '\0'); /* offset 0 is "absent" */
    if (n == 0) return 0;
    if (pool->len + n + 1 > UINT32_MAX) { pool->failed = 1; return 0; }
    if (dp_buf_reserve(pool, n + 1) != 0) return 0;
    sref off = (sref)pool->len;
    memcpy(pool->data + off, s, n);
    pool->data[off + n] = '\0';
    pool->len += n + 1;
    pool->data[pool->len] = '\0';
    return off;
}

static const char *pool_str(const dp_buf *pool, sref r) { return r ? pool->data + r : NULL; }

/* The parser runs without expat's namespace processing, which would build
 * "uri + local" strings for every element: elements are matched by local
 * name, and only the root's namespace is read, from its xmlns attribute. */
static const char *local_name(const char *name, size_t *len, size_t *prefix_len) {
    /* libc's vectorised strlen and memchr: a byte loop here was 1.5% of
     * parsing (callgrind), once per element */
    size_t n = strlen(name);
    const char *colon = memchr(name, ':', n), *next;
    while (colon && (next = memchr(colon + 1, ':', n - (size_t)(colon + 1 - name)))) colon = next;
    *prefix_len = colon ? (size_t)(colon - name) : 0;
    const char *local = colon ? colon + 1 : name;
    *len = (size_t)(name + n - local);
    return local;
}

/* Which schema the namespace bound to `prefix` (prefix_len bytes, 0 for the
 * default namespace) on this element names, if it is one we know. */
static int root_namespace(const char *name, size_t prefix_len, const XML_Char **atts, dp_schema *out) {
    for (int i = 0; atts[i]; i += 2) {
        const char *a = atts[i];
        if (strncmp(a, "xmlns", 5) != 0) continue;
        if (prefix_len == 0 ? a[5] != '\0'
                            : (a[5] != ':' || strlen(a + 6) != prefix_len ||
                               memcmp(a + 6, name, prefix_len) != 0))
            continue;
        if (strcmp(atts[i + 1], NS_RFC9990) == 0) { *out = DP_SCHEMA_RFC9990; return 1; }
        if (strcmp(atts[i + 1], NS_DRAFT) == 0) { *out = DP_SCHEMA_DRAFT; return 1; }
    }
    return 0;
}

/* Whether a known element stands where the schemas put it.  Checked at
 * every level, so a known element is only ever inside known ones. */
static int in_place(tok t, tok parent, tok grand) {
    int in_auth = (parent == T_DKIM || parent == T_SPF) && grand == T_AUTH_RESULTS;
    switch (t) {
    case T_OTHER: return 1;
    case T_VERSION: case T_REPORT_METADATA: case T_POLICY_PUBLISHED: case T_RECORD:
        return parent == T_FEEDBACK;
    case T_ORG_NAME: case T_EMAIL: case T_EXTRA_CONTACT_INFO: case T_REPORT_ID:
    case T_DATE_RANGE: case T_ERROR: case T_GENERATOR:
        return parent == T_REPORT_METADATA;
    case T_BEGIN: case T_END:
        return parent == T_DATE_RANGE;
    case T_ADKIM: case T_ASPF: case T_P: case T_SP: case T_NP: case T_PCT: case T_FO:
    case T_TESTING: case T_DISCOVERY_METHOD: case T_PSD:
        return parent == T_POLICY_PUBLISHED;
    case T_DOMAIN:
        return parent == T_POLICY_PUBLISHED || in_auth;
    case T_ROW: case T_IDENTIFIERS: case T_AUTH_RESULTS:
        return parent == T_RECORD;
    case T_SOURCE_IP: case T_COUNT: case T_POLICY_EVALUATED:
        return parent == T_ROW;
    case T_DISPOSITION: case T_REASON: case T_POLICY_OVERRIDE:
        return parent == T_POLICY_EVALUATED;
    case T_DKIM: case T_SPF:
        return parent == T_POLICY_EVALUATED || parent == T_AUTH_RESULTS;
    case T_TYPE: case T_COMMENT:
        return parent == T_REASON || parent == T_POLICY_OVERRIDE;
    case T_HEADER_FROM: case T_ENVELOPE_FROM: case T_ENVELOPE_TO:
        return parent == T_IDENTIFIERS;
    case T_SELECTOR: case T_RESULT: case T_HUMAN_RESULT: case T_SCOPE:
        return in_auth;
    case T_FEEDBACK: case T_SCHEMA:
        return 0; /* only ever the root, handled by the caller */
    }
    return 0;
}

/* Decides which field the element that just opened feeds. */
static field classify(tok t, tok parent, tok grand) {
    switch (parent) {
    case T_FEEDBACK:
        return t == T_VERSION ? F_VERSION : F_NONE;
    case T_REPORT_METADATA:
        switch (t) {
        case T_ORG_NAME: return F_ORG_NAME;
        case T_EMAIL: return F_EMAIL;
        case T_EXTRA_CONTACT_INFO: return F_EXTRA;
        case T_REPORT_ID: return F_REPORT_ID;
        case T_ERROR: return F_ERROR;
        case T_GENERATOR: return F_GENERATOR;
        default: return F_NONE;
        }
    case T_DATE_RANGE:
        if (grand != T_REPORT_METADATA) return F_NONE;
        return t == T_BEGIN ? F_BEGIN : t == T_END ? F_END : F_NONE;
    case T_POLICY_PUBLISHED:
        switch (t) {
        case T_DOMAIN: return F_P_DOMAIN;
        case T_ADKIM: return F_P_ADKIM;
        case T_ASPF: return F_P_ASPF;
        case T_P: return F_P_P;
        case T_SP: return F_P_SP;
        case T_NP: return F_P_NP;
        case T_PCT: return F_P_PCT;
        case T_FO: return F_P_FO;
        case T_TESTING: return F_P_TESTING;
        case T_DISCOVERY_METHOD: return F_P_DISCOVERY;
        case T_PSD: return F_P_PSD;
        default: return F_NONE;
        }
    case T_ROW:
        return t == T_SOURCE_IP ? F_SOURCE_IP : t == T_COUNT ? F_COUNT : F_NONE;
    case T_POLICY_EVALUATED:
        switch (t) {
        case T_DISPOSITION: return F_DISPOSITION;
        case T_DKIM: return F_PE_DKIM;
        case T_SPF: return F_PE_SPF;
        default: return F_NONE;
        }
    case T_REASON:
    case T_POLICY_OVERRIDE:
        if (grand != T_POLICY_EVALUATED) return F_NONE;
        return t == T_TYPE ? F_OV_TYPE : t == T_COMMENT ? F_OV_COMMENT : F_NONE;
    case T_IDENTIFIERS:
        switch (t) {
        case T_HEADER_FROM: return F_HEADER_FROM;
        case T_ENVELOPE_FROM: return F_ENVELOPE_FROM;
        case T_ENVELOPE_TO: return F_ENVELOPE_TO;
        default: return F_NONE;
        }
    case T_DKIM:
        if (grand != T_AUTH_RESULTS) return F_NONE;
        switch (t) {
        case T_DOMAIN: return F_DKIM_DOMAIN;
        case T_SELECTOR: return F_DKIM_SELECTOR;
        case T_RESULT: return F_DKIM_RESULT;
        case T_HUMAN_RESULT: return F_DKIM_HUMAN;
        default: return F_NONE;
        }
    case T_SPF:
        if (grand != T_AUTH_RESULTS) return F_NONE;
        switch (t) {
        case T_DOMAIN: return F_SPF_DOMAIN;
        case T_SCOPE: return F_SPF_SCOPE;
        case T_RESULT: return F_SPF_RESULT;
        case T_HUMAN_RESULT: return F_SPF_HUMAN;
        default: return F_NONE;
        }
    default:
        return F_NONE;
    }
}

static void reset_record(xml_ctx *x) {
    rec_state *r = &x->rec;
    r->ip_text = r->count_text = 0;
    r->disposition = r->dkim = r->spf = r->header_from = r->envelope_from = r->envelope_to = 0;
    r->n_ov = r->n_dk = r->n_sp = 0;
    dp_buf_reset(&x->pool);
}

/* Builds the dp_report view from the pools; cheap, done per hand-out. */
static int build_report_view(xml_ctx *x) {
    dp_report *v = &x->view;
    const dp_buf *p = &x->rpool;
    v->input = x->u->input;
    v->part = x->part;
    v->org_name = pool_str(p, x->r[F_ORG_NAME]);
    v->email = pool_str(p, x->r[F_EMAIL]);
    v->extra_contact_info = pool_str(p, x->r[F_EXTRA]);
    v->report_id = pool_str(p, x->r[F_REPORT_ID]);
    v->generator = pool_str(p, x->r[F_GENERATOR]);
    v->version = pool_str(p, x->r[F_VERSION]);
    v->begin = x->begin;
    v->end = x->end;
    v->policy.domain = pool_str(p, x->r[F_P_DOMAIN]);
    v->policy.adkim = pool_str(p, x->r[F_P_ADKIM]);
    v->policy.aspf = pool_str(p, x->r[F_P_ASPF]);
    v->policy.p = pool_str(p, x->r[F_P_P]);
    v->policy.sp = pool_str(p, x->r[F_P_SP]);
    v->policy.np = pool_str(p, x->r[F_P_NP]);
    v->policy.fo = pool_str(p, x->r[F_P_FO]);
    v->policy.testing = pool_str(p, x->r[F_P_TESTING]);
    v->policy.discovery_method = pool_str(p, x->r[F_P_DISCOVERY]);
    v->policy.psd = pool_str(p, x->r[F_P_PSD]);
    v->policy.has_pct = 0;
    uint64_t pct;
    const char *pcts = pool_str(p, x->r[F_P_PCT]);
    if (pcts && dp_normalise_u64(pcts, strlen(pcts), &pct) == 0 && pct <= 100) {
        v->policy.has_pct = 1;
        v->policy.pct = (uint32_t)pct;
    }
    /* Namespace wins; otherwise the <version> element says which schema. */
    v->schema = DP_SCHEMA_RFC7489;
    if (x->ns_known) v->schema = x->ns_schema;
    else if (v->version && strcmp(v->version, "2.0") == 0) v->schema = DP_SCHEMA_RFC9990;
    else if (v->version && strcmp(v->version, "0.1") == 0) v->schema = DP_SCHEMA_DRAFT;
    const char **eps = dp_buf_grow_array(x->error_ptrs, &x->cap_error_ptrs, x->n_errors, sizeof *eps);
    if (x->n_errors && !eps) return -1;
    x->error_ptrs = eps;
    for (size_t i = 0; i < x->n_errors; i++) eps[i] = pool_str(p, x->errors[i]);
    v->errors = (const char *const *)eps;
    v->n_errors = x->n_errors;
    v->xml_bytes = (uint64_t)XML_GetCurrentByteIndex(x->parser);
    return 0;
}

/* The report-level facts a record depends on must be known and sane
 * before a record leaves: checked at the first record, or, when the
 * metadata comes after the records, as soon as it closes. */
static void check_report_header(xml_ctx *x) {
    if (!x->in_metadata_done) {
        FAIL(x, DP_ERR_VALIDATE, "no <report_metadata> in the report");
        return;
    }
    if (!x->r[F_BEGIN] || !x->r[F_END]) {
        FAIL(x, DP_ERR_VALIDATE, "report_metadata has no complete <date_range> (begin and end)");
        return;
    }
    const char *b = pool_str(&x->rpool, x->r[F_BEGIN]);
    const char *e = pool_str(&x->rpool, x->r[F_END]);
    if (dp_normalise_i64(b, strlen(b), &x->begin) != 0) {
        FAIL(x, DP_ERR_VALIDATE, "date_range <begin> is not an integer: '%.40s'", b);
        return;
    }
    if (dp_normalise_i64(e, strlen(e), &x->end) != 0) {
        FAIL(x, DP_ERR_VALIDATE, "date_range <end> is not an integer: '%.40s'", e);
        return;
    }
    if (x->begin > x->end) {
        FAIL(x, DP_ERR_VALIDATE, "date_range begin %lld is after end %lld", (long long)x->begin,
             (long long)x->end);
        return;
    }
    /* A date before 1990 or after 2100 is a broken clock or a forgery, and
     * the window arithmetic downstream may assume neither. */
    if (x->begin < DP_INGEST_DATE_MIN) {
        FAIL(x, DP_ERR_VALIDATE, "date_range begin %lld is before 1990-01-01", (long long)x->begin);
        return;
    }
    if (x->end > DP_INGEST_DATE_MAX) {
        FAIL(x, DP_ERR_VALIDATE, "date_range end %lld is after 2100-01-01", (long long)x->end);
        return;
    }
    /* Reports cover a day, sometimes a week.  A longer range would be
     * spread over as many windows per record (744 hourly ones for 31
     * days), so the cap is what bounds a report's rollups, and the memory
     * and output they take, by its size. */
    if (x->end - x->begin > x->u->lim->max_range_seconds) {
        FAIL(x, DP_ERR_VALIDATE, "date_range spans %lld days, more than %lld (--max-range-days)",
             (long long)((x->end - x->begin) / 86400), (long long)(x->u->lim->max_range_seconds / 86400));
        return;
    }
}

/* Tells the consumer the report's header is complete; it may skip it. */
static void begin_report(xml_ctx *x) {
    if (x->failed || x->begun) return;
    x->begun = 1;
    if (!x->u->h->report_begin) return;
    if (build_report_view(x) != 0) {
        FAIL(x, DP_ERR_NOMEM, "out of memory");
        return;
    }
    int rc = x->u->h->report_begin(x->u->ctx, &x->view);
    if (rc == DP_REPORT_SKIP) {
        x->skipped = 1;
        XML_StopParser(x->parser, XML_FALSE);
    } else if (rc != 0) {
        FAIL(x, DP_ERR_HANDLER, "report consumer refused the report");
    }
}

/* The header is complete, or the report ended without a policy: the
 * consumer hears of the report, then gets the held records in their
 * order, counted again from the first as if they had just closed. */
static void release_held(xml_ctx *x) {
    if (x->failed) return;
    x->holding = 0;
    x->view.records = 0;
    x->view.messages = 0;
    begin_report(x);
    dp_error err;
    int rc = 0;
    if (!x->failed && !x->skipped) {
        if (build_report_view(x) != 0) {
            FAIL(x, DP_ERR_NOMEM, "out of memory");
        } else if ((rc = dp_record_hold_rewind(&x->hold, &err)) == 0) {
            dp_record rec;
            while ((rc = dp_record_hold_next(&x->hold, &rec, &err)) == 1) {
                x->view.records++;
                x->view.messages += rec.count;
                if (x->u->h->record && x->u->h->record(x->u->ctx, &x->view, &rec) != 0) {
                    FAIL(x, DP_ERR_HANDLER, "record consumer stopped the input");
                    break;
                }
            }
        }
        if (rc < 0) fail_with(x, &err);
    }
    dp_record_hold_free(&x->hold);
}

/* The first <record> opens.  When the header is complete, the records
 * stream out; when it is not yet, they wait for it. */
static void start_records(xml_ctx *x) {
    if (x->in_metadata_done) check_report_header(x);
    if (x->in_metadata_done && x->policy_done) begin_report(x);
    else x->holding = 1;
}

/* A header section ended while records wait: once both are in, they go. */
static void header_section_done(xml_ctx *x, tok t) {
    if (t == T_REPORT_METADATA) check_report_header(x);
    if (x->in_metadata_done && x->policy_done) release_held(x);
}

/* A second <report_metadata> or <policy_published> opens: its fields go
 * to r2, to be compared with the first's when it closes. */
static void open_duplicate(xml_ctx *x, tok t) {
    x->dup = t;
    memset(x->r2, 0, sizeof x->r2);
    x->dup_mark = x->rpool.len;
    x->dup_errors = x->n_errors;
}

static const char *const FIELD_NAME[F_P_PSD + 1] = {
    [F_ORG_NAME] = "org_name", [F_EMAIL] = "email", [F_EXTRA] = "extra_contact_info",
    [F_REPORT_ID] = "report_id", [F_BEGIN] = "begin", [F_END] = "end", [F_GENERATOR] = "generator",
    [F_P_DOMAIN] = "domain", [F_P_ADKIM] = "adkim", [F_P_ASPF] = "aspf", [F_P_P] = "p",
    [F_P_SP] = "sp", [F_P_NP] = "np", [F_P_PCT] = "pct", [F_P_FO] = "fo", [F_P_TESTING] = "testing",
    [F_P_DISCOVERY] = "discovery_method", [F_P_PSD] = "psd",
};

static int same_str(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

/* The second copy closed: the same values (after trimming and lower-casing,
 * as kept) make it one section, forgotten; any difference fails the report. */
static void close_duplicate(xml_ctx *x) {
    tok t = x->dup;
    x->dup = T_OTHER;
    int policy = t == T_POLICY_PUBLISHED;
    const char *block = policy ? "policy_published" : "report_metadata";
    const dp_buf *p = &x->rpool;
    for (int f = policy ? F_P_DOMAIN : F_ORG_NAME; f <= (policy ? F_P_PSD : F_GENERATOR); f++) {
        if (f == F_ERROR) continue; /* a list: compared below */
        const char *a = pool_str(p, x->r[f]), *b = pool_str(p, x->r2[f]);
        if (!same_str(a, b)) {
            FAIL(x, DP_ERR_VALIDATE, "two different <%s> blocks: <%s> is %s%.60s%s in one, %s%.60s%s in the other",
                 block, FIELD_NAME[f], a ? "'" : "", a ? a : "absent", a ? "'" : "", b ? "'" : "",
                 b ? b : "absent", b ? "'" : "");
            return;
        }
    }
    /* the metadata's errors: the second copy's came after the first's */
    size_t k = x->dup_errors;
    int same = policy || x->n_errors - k == k;
    for (size_t i = 0; !policy && same && i < k; i++)
        same = same_str(pool_str(p, x->errors[i]), pool_str(p, x->errors[k + i]));
    if (!same) {
        FAIL(x, DP_ERR_VALIDATE, "two different <report_metadata> blocks: their <error> elements differ");
        return;
    }
    x->rpool.len = x->dup_mark;
    x->n_errors = k;
}

static void emit_record(xml_ctx *x) {
    rec_state *r = &x->rec;
    const dp_buf *p = &x->pool;
    dp_record out;
    memset(&out, 0, sizeof out);
    uint64_t n = x->view.records + 1;

    const char *ip = pool_str(p, r->ip_text);
    if (!ip) { FAIL(x, DP_ERR_VALIDATE, "record %llu: empty or missing <source_ip>", (unsigned long long)n); return; }
    if (dp_normalise_ip(ip, strlen(ip), out.source_ip, out.ip, &out.ip_family) != 0) {
        FAIL(x, DP_ERR_VALIDATE, "record %llu: <source_ip> is not an IPv4 or IPv6 address: '%.60s'",
             (unsigned long long)n, ip);
        return;
    }
    const char *cnt = pool_str(p, r->count_text);
    if (!cnt) { FAIL(x, DP_ERR_VALIDATE, "record %llu: empty or missing <count>", (unsigned long long)n); return; }
    if (dp_normalise_u64(cnt, strlen(cnt), &out.count) != 0) {
        FAIL(x, DP_ERR_VALIDATE, "record %llu: <count> is not an unsigned 64-bit integer: '%.40s'",
             (unsigned long long)n, cnt);
        return;
    }
    if (x->view.messages > UINT64_MAX - out.count) {
        FAIL(x, DP_ERR_VALIDATE, "record %llu: sum of <count> overflows 64 bits", (unsigned long long)n);
        return;
    }
    out.disposition = pool_str(p, r->disposition);
    out.dkim = pool_str(p, r->dkim);
    out.spf = pool_str(p, r->spf);
    out.header_from = pool_str(p, r->header_from);
    out.envelope_from = pool_str(p, r->envelope_from);
    out.envelope_to = pool_str(p, r->envelope_to);

    dp_override *ov = dp_buf_grow_array(x->ov_view, &x->cap_ov_view, r->n_ov, sizeof *ov);
    dp_dkim_auth *dk = dp_buf_grow_array(x->dk_view, &x->cap_dk_view, r->n_dk, sizeof *dk);
    if (ov) x->ov_view = ov;
    if (dk) x->dk_view = dk;
    dp_spf_auth *sp = dp_buf_grow_array(x->sp_view, &x->cap_sp_view, r->n_sp, sizeof *sp);
    if (sp) x->sp_view = sp;
    if ((r->n_ov && !ov) || (r->n_dk && !dk) || (r->n_sp && !sp)) {
        FAIL(x, DP_ERR_NOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < r->n_ov; i++) {
        ov[i].type = pool_str(p, r->ov[i].type);
        ov[i].comment = pool_str(p, r->ov[i].comment);
    }
    for (size_t i = 0; i < r->n_dk; i++) {
        dk[i].domain = pool_str(p, r->dk[i].domain);
        dk[i].selector = pool_str(p, r->dk[i].selector);
        dk[i].result = pool_str(p, r->dk[i].result);
        dk[i].human_result = pool_str(p, r->dk[i].human);
    }
    for (size_t i = 0; i < r->n_sp; i++) {
        sp[i].domain = pool_str(p, r->sp[i].domain);
        sp[i].scope = pool_str(p, r->sp[i].scope);
        sp[i].result = pool_str(p, r->sp[i].result);
        sp[i].human_result = pool_str(p, r->sp[i].human);
    }
    out.overrides = ov;
    out.n_overrides = r->n_ov;
    out.dkim_auth = dk;
    out.n_dkim_auth = r->n_dk;
    out.spf_auth = sp;
    out.n_spf_auth = r->n_sp;

    if (x->holding) {
        /* records and messages count what has been read, for the record
         * numbers in errors and the overflow check; release_held() counts
         * them again as they are handed out */
        x->view.records = n;
        x->view.messages += out.count;
        dp_error err;
        if (dp_record_hold_put(&x->hold, &out, &err) != 0) fail_with(x, &err);
        return;
    }
    if (build_report_view(x) != 0) { FAIL(x, DP_ERR_NOMEM, "out of memory"); return; }
    x->view.records = n;
    x->view.messages += out.count;
    if (x->u->h->record && x->u->h->record(x->u->ctx, &x->view, &out) != 0)
        FAIL(x, DP_ERR_HANDLER, "record consumer stopped the input");
}

/* Appends a child (dkim/spf result, override) to the record being built. */
static int open_child(xml_ctx *x, tok t, tok parent) {
    rec_state *r = &x->rec;
    if (parent == T_AUTH_RESULTS && (t == T_DKIM || t == T_SPF)) {
        if (r->n_dk + r->n_sp >= x->u->lim->max_auth_results) {
            FAIL(x, DP_ERR_LIMIT, "record has more than %u auth_results entries",
                 x->u->lim->max_auth_results);
            return -1;
        }
        if (t == T_DKIM) {
            dkim_ref *d = dp_buf_grow_array(r->dk, &r->cap_dk, r->n_dk + 1, sizeof *d);
            if (!d) return -1;
            r->dk = d;
            memset(&d[r->n_dk++], 0, sizeof *d);
        } else {
            spf_ref *s = dp_buf_grow_array(r->sp, &r->cap_sp, r->n_sp + 1, sizeof *s);
            if (!s) return -1;
            r->sp = s;
            memset(&s[r->n_sp++], 0, sizeof *s);
        }
    } else if (parent == T_POLICY_EVALUATED && (t == T_REASON || t == T_POLICY_OVERRIDE)) {
        if (r->n_ov >= MAX_OVERRIDES) {
            FAIL(x, DP_ERR_LIMIT, "record has more than %d override reasons", MAX_OVERRIDES);
            return -1;
        }
        ov_ref *o = dp_buf_grow_array(r->ov, &r->cap_ov, r->n_ov + 1, sizeof *o);
        if (!o) return -1;
        r->ov = o;
        memset(&o[r->n_ov++], 0, sizeof *o);
    }
    return 0;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len);

/* Installs on_text for the element now innermost: t, with `capture` the
 * field it feeds.  Text is wanted in the leaves we keep and in unknown
 * elements (T_OTHER: also every element outside <feedback>), whose text
 * is held to max_text_bytes; a known container's own text is dropped
 * unseen, and a huge run of it is caught by the markup-token guard in
 * dp_report_xml_parse(). */
static void want_text(xml_ctx *x, tok t, field capture) {
    int on = capture != F_NONE || t == T_OTHER;
    if (on != x->text_handler_on) {
        XML_SetCharacterDataHandler(x->parser, on ? on_text : NULL);
        x->text_handler_on = on;
    }
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
    /* Attributes (RFC 9990's lang, and others) carry nothing we keep,
     * except the root's namespace declaration. */
    xml_ctx *x = ud;
    if (x->failed || x->skipped) return;
    x->fed_at_event = x->fed;
    if (x->depth >= x->u->lim->max_xml_depth) {
        FAIL(x, DP_ERR_LIMIT, "XML nesting deeper than %u elements", x->u->lim->max_xml_depth);
        return;
    }
    size_t len, prefix_len;
    const char *local = local_name(name, &len, &prefix_len);
    tok t = lookup(local, len);
    tok parent = x->depth ? (tok)x->stack[x->depth - 1] : T_OTHER;
    tok grand = x->depth > 1 ? (tok)x->stack[x->depth - 2] : T_OTHER;

    if (x->depth == 0) {
        /* Salvage rule: one receiver wraps the report in an <xs:schema>
         * element that it never closes; look for <feedback> inside it. */
        if (t == T_SCHEMA) {
            x->wrapper_seen = 1;
        } else if (t != T_FEEDBACK) {
            FAIL(x, DP_ERR_VALIDATE, "not a DMARC aggregate report: root element is <%.60s>", local);
            return;
        }
    }
    if (t == T_FEEDBACK) {
        if (!(x->depth == 0 || (x->depth == 1 && x->wrapper_seen))) {
            if (x->feedback_open || x->feedback_done) {
                FAIL(x, DP_ERR_VALIDATE, "more than one <feedback> in one document");
                return;
            }
            t = T_OTHER; /* a <feedback> deep inside something else is not ours */
        } else if (x->feedback_done) {
            FAIL(x, DP_ERR_VALIDATE, "more than one <feedback> in one document");
            return;
        } else {
            x->feedback_open = 1;
            x->ns_known = root_namespace(name, prefix_len, atts, &x->ns_schema);
        }
    } else if (x->depth >= 1 && !x->feedback_open) {
        /* inside a wrapper but not (yet) inside feedback: not ours */
        t = T_OTHER;
    } else if (x->feedback_open && !in_place(t, parent, grand)) {
        /* A known name in an unknown place (an <extension> that nests a
         * <row>, say) is foreign content: it and all below it are skipped. */
        t = T_OTHER;
    }

    if (x->feedback_open && parent == T_FEEDBACK) {
        if (t == T_RECORD) {
            if (!x->records_started) {
                x->records_started = 1;
                start_records(x);
                if (x->failed || x->skipped) return;
            }
            x->in_record = 1;
            reset_record(x);
        } else if ((t == T_REPORT_METADATA && x->in_metadata_done) || (t == T_POLICY_PUBLISHED && x->policy_done)) {
            open_duplicate(x, t);
        }
    }
    if (x->in_record && open_child(x, t, parent) != 0) {
        if (!x->failed) FAIL(x, DP_ERR_NOMEM, "out of memory");
        return;
    }

    x->stack[x->depth++] = (unsigned char)t;
    x->text_in_elem = 0;
    x->capture = x->feedback_open ? classify(t, parent, grand) : F_NONE;
    x->text_len = 0;
    want_text(x, t, x->capture);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
    xml_ctx *x = ud;
    if (x->failed || x->skipped) return;
    x->fed_at_event = x->fed;
    x->text_in_elem += (uint64_t)len;
    if (x->text_in_elem > x->u->lim->max_text_bytes) {
        FAIL(x, DP_ERR_LIMIT, "text of one element exceeds %u bytes", x->u->lim->max_text_bytes);
        return;
    }
    if (x->capture) {
        memcpy(x->text + x->text_len, s, (size_t)len);
        x->text_len += (size_t)len;
    }
}

/* Stores the captured text of a leaf into its field. */
static void store_leaf(xml_ctx *x, field f) {
    size_t n = x->text_len;
    char *s = dp_normalise_trim(x->text, &n);
    if (field_is_enum(f)) dp_normalise_lower(s, n);
    if (f == F_REPORT_ID && n >= 2 && s[0] == '<' && s[n - 1] == '>') {
        /* Some receivers send the Message-ID form <id@host>. */
        s++;
        n -= 2;
        s = dp_normalise_trim(s, &n);
    }
    if (f < F_SOURCE_IP) {
        /* report level: the first occurrence wins, except <error>, which repeats */
        if (f == F_ERROR) {
            if (n == 0) return;
            if (x->n_errors >= MAX_REPORT_ERRORS) {
                FAIL(x, DP_ERR_LIMIT, "report has more than %d <error> elements", MAX_REPORT_ERRORS);
                return;
            }
            sref *e = dp_buf_grow_array(x->errors, &x->cap_errors, x->n_errors + 1, sizeof *e);
            if (!e) { FAIL(x, DP_ERR_NOMEM, "out of memory"); return; }
            x->errors = e;
            e[x->n_errors++] = pool_add(&x->rpool, s, n);
        } else {
            /* a section seen before is read aside, to be compared */
            sref *slot = x->dup ? &x->r2[f] : &x->r[f];
            if (!*slot) *slot = pool_add(&x->rpool, s, n);
        }
        if (x->rpool.failed) FAIL(x, DP_ERR_NOMEM, "out of memory");
        else if (x->rpool.len > x->u->lim->max_record_bytes)
            FAIL(x, DP_ERR_LIMIT, "report metadata and policy exceed %u bytes of text",
                 x->u->lim->max_record_bytes);
        return;
    }
    if (!x->in_record) return;
    rec_state *r = &x->rec;
    sref *slot = NULL;
    switch (f) {
    case F_SOURCE_IP: slot = &r->ip_text; break;
    case F_COUNT: slot = &r->count_text; break;
    case F_DISPOSITION: slot = &r->disposition; break;
    case F_PE_DKIM: slot = &r->dkim; break;
    case F_PE_SPF: slot = &r->spf; break;
    case F_HEADER_FROM: slot = &r->header_from; break;
    case F_ENVELOPE_FROM: slot = &r->envelope_from; break;
    case F_ENVELOPE_TO: slot = &r->envelope_to; break;
    case F_OV_TYPE: if (r->n_ov) slot = &r->ov[r->n_ov - 1].type; break;
    case F_OV_COMMENT: if (r->n_ov) slot = &r->ov[r->n_ov - 1].comment; break;
    case F_DKIM_DOMAIN: if (r->n_dk) slot = &r->dk[r->n_dk - 1].domain; break;
    case F_DKIM_SELECTOR: if (r->n_dk) slot = &r->dk[r->n_dk - 1].selector; break;
    case F_DKIM_RESULT: if (r->n_dk) slot = &r->dk[r->n_dk - 1].result; break;
    case F_DKIM_HUMAN: if (r->n_dk) slot = &r->dk[r->n_dk - 1].human; break;
    case F_SPF_DOMAIN: if (r->n_sp) slot = &r->sp[r->n_sp - 1].domain; break;
    case F_SPF_SCOPE: if (r->n_sp) slot = &r->sp[r->n_sp - 1].scope; break;
    case F_SPF_RESULT: if (r->n_sp) slot = &r->sp[r->n_sp - 1].result; break;
    case F_SPF_HUMAN: if (r->n_sp) slot = &r->sp[r->n_sp - 1].human; break;
    default: break;
    }
    if (slot && !*slot) *slot = pool_add(&x->pool, s, n);
    if (x->pool.failed) FAIL(x, DP_ERR_NOMEM, "out of memory");
    else if (x->pool.len > x->u->lim->max_record_bytes)
        FAIL(x, DP_ERR_LIMIT, "record %llu exceeds %u bytes of text",
             (unsigned long long)x->view.records + 1, x->u->lim->max_record_bytes);
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
    (void)name;
    xml_ctx *x = ud;
    if (x->failed || x->skipped || x->depth == 0) return;
    x->fed_at_event = x->fed;
    tok t = (tok)x->stack[--x->depth];
    tok parent = x->depth ? (tok)x->stack[x->depth - 1] : T_OTHER;
    if (x->capture) {
        store_leaf(x, x->capture);
        x->capture = F_NONE;
        if (x->failed) return;
    }
    /* text after a child closes belongs to the parent again (mixed content);
     * a parent never captures (a child's start ended its capture) */
    x->text_in_elem = 0;
    want_text(x, parent, F_NONE);
    if (!x->feedback_open) return;
    if (t == T_FEEDBACK && (x->depth == 0 || (x->depth == 1 && x->wrapper_seen))) {
        x->feedback_open = 0;
        x->feedback_done = 1;
        if (!x->records_started) {
            check_report_header(x);
            begin_report(x);
        } else if (x->holding) {
            /* no <policy_published> came: the records go as they would
             * have with the metadata first */
            if (!x->in_metadata_done) check_report_header(x);
            release_held(x);
        }
        return;
    }
    if (parent == T_FEEDBACK) {
        if (x->dup != T_OTHER && t == x->dup) {
            close_duplicate(x);
        } else if (t == T_REPORT_METADATA || t == T_POLICY_PUBLISHED) {
            if (t == T_REPORT_METADATA) x->in_metadata_done = 1;
            else x->policy_done = 1;
            if (x->holding) header_section_done(x, t);
        } else if (t == T_RECORD && x->in_record) {
            emit_record(x);
            x->in_record = 0;
        }
    }
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset) {
    (void)name; (void)sysid; (void)pubid; (void)has_internal_subset;
    FAIL((xml_ctx *)ud, DP_ERR_XML,
         "DOCTYPE declaration refused: aggregate reports never need a DTD, and DTDs carry entity attacks");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation) {
    (void)name; (void)is_param; (void)value; (void)value_len; (void)base; (void)sysid;
    (void)pubid; (void)notation;
    FAIL((xml_ctx *)ud, DP_ERR_XML, "entity declaration refused");
}

/* Declarations name encodings expat does not know (windows-1252, latin1,
 * "utf8").  For any single-byte charset iconv knows, build expat's 256-entry
 * map; multi-byte charsets other than UTF-8/16 are refused. */
static int XMLCALL on_unknown_encoding(void *ud, const XML_Char *name, XML_Encoding *info) {
    (void)ud;
    iconv_t cd = iconv_open("UTF-32LE", name);
    if (cd == (iconv_t)-1) return XML_STATUS_ERROR;
    int ok = 1;
    for (int i = 0; i < 256; i++) {
        char in = (char)i;
        unsigned char outb[8];
        char *ip = &in, *op = (char *)outb;
        size_t il = 1, ol = sizeof outb;
        iconv(cd, NULL, NULL, NULL, NULL);
        if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 || ol != sizeof outb - 4) {
            if (i < 0x80) { ok = 0; break; } /* not ASCII-compatible: refuse */
            info->map[i] = -1;
            continue;
        }
        info->map[i] = (int)(outb[0] | outb[1] << 8 | outb[2] << 16 | (unsigned)outb[3] << 24);
    }
    iconv_close(cd);
    if (!ok) return XML_STATUS_ERROR;
    info->data = NULL;
    info->convert = NULL;
    info->release = NULL;
    return XML_STATUS_OK;
}

/* The encoding to impose on the parser, overriding the declaration, or NULL.
 * Salvage rules: a byte-order mark wins over a declaration that contradicts
 * it (UTF-16 files declared "utf-8" exist), and "utf8", "UTF_8" and friends
 * are UTF-8 under a name expat rejects. */
static const char *forced_encoding(const unsigned char *head, size_t n) {
    if (n >= 2 && ((head[0] == 0xff && head[1] == 0xfe) || (head[0] == 0xfe && head[1] == 0xff)))
        return "UTF-16";
    if (n >= 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0) return "UTF-8";
    if (n < 6 || memcmp(head, "<?xml", 5) != 0) return NULL;
    const unsigned char *end = memchr(head, '>', n);
    if (!end) return NULL;
    const char *enc = NULL;
    for (const unsigned char *p = head; p + 8 < end; p++)
        if (memcmp(p, "encoding", 8) == 0) { enc = (const char *)p + 8; break; }
    if (!enc) return NULL;
    while (*enc == ' ' || *enc == '=' || *enc == '\t') enc++;
    if (*enc != '"' && *enc != '\'') return NULL;
    char q = *enc++;
    char norm[16];
    size_t k = 0;
    for (; (const unsigned char *)enc < end && *enc != q && k < sizeof norm - 1; enc++)
        if (*enc != '-' && *enc != '_' && *enc != ' ') norm[k++] = (char)(*enc | 0x20);
    norm[k] = '\0';
    return strcmp(norm, "utf8") == 0 ? "UTF-8" : NULL;
}

static void free_ctx(xml_ctx *x) {
    dp_record_hold_free(&x->hold);
    free(x->stack);
    free(x->text);
    dp_buf_free(&x->rpool);
    dp_buf_free(&x->pool);
    free(x->errors);
    free(x->rec.ov);
    free(x->rec.dk);
    free(x->rec.sp);
    free(x->error_ptrs);
    free(x->ov_view);
    free(x->dk_view);
    free(x->sp_view);
    if (x->parser) XML_ParserFree(x->parser);
}

int dp_report_xml_parse(dp_unwrap *u, dp_peek_stream *ps, const char *part) {
    xml_ctx x;
    memset(&x, 0, sizeof x);
    x.u = u;
    x.part = part;
    dp_record_hold_init(&x.hold, DP_RECORD_HOLD_MEM);
    const dp_ingest_limits *lim = u->lim;

    /* Salvage rule: whitespace before the XML declaration (seen from real
     * receivers) is not allowed by XML; drop it and parse the rest. */
    size_t skip = ps->head_pos;
    size_t at = skip;
    if (ps->head_len - at >= 3 && memcmp(ps->head + at, "\xEF\xBB\xBF", 3) == 0) at += 3;
    size_t ws = at;
    while (ws < ps->head_len && (ps->head[ws] == ' ' || ps->head[ws] == '\t' ||
                                 ps->head[ws] == '\r' || ps->head[ws] == '\n'))
        ws++;
    if (ws > at && ps->head_len - ws >= 5 && memcmp(ps->head + ws, "<?xml", 5) == 0)
        ps->head_pos = ws;

    const char *enc = forced_encoding(ps->head + ps->head_pos, ps->head_len - ps->head_pos);
    x.parser = XML_ParserCreate(enc);
    x.stack = malloc(lim->max_xml_depth ? lim->max_xml_depth : 1);
    x.text = malloc((size_t)lim->max_text_bytes + 1);
    dp_error err;
    if (!x.parser || !x.stack || !x.text) {
        free_ctx(&x);
        dp_error_set(&err, DP_ERR_NOMEM, "out of memory creating the XML parser");
        dp_unwrap_fail(u, NULL, &err, part);
        return -1;
    }
    XML_SetUserData(x.parser, &x);
    XML_SetElementHandler(x.parser, on_start, on_end);
    XML_SetCharacterDataHandler(x.parser, on_text);
    x.text_handler_on = 1;
    XML_SetStartDoctypeDeclHandler(x.parser, on_doctype);
    XML_SetEntityDeclHandler(x.parser, on_entity_decl);
    XML_SetUnknownEncodingHandler(x.parser, on_unknown_encoding, NULL);
    XML_SetParamEntityParsing(x.parser, XML_PARAM_ENTITY_PARSING_NEVER);
#ifdef DP_HAVE_XML_BILLION_LAUGHS
    XML_SetBillionLaughsAttackProtectionMaximumAmplification(x.parser, 100.0f);
    XML_SetBillionLaughsAttackProtectionActivationThreshold(x.parser, 1024 * 1024);
#endif
#ifdef DP_HAVE_XML_REPARSE_DEFERRAL
    /* Keeps huge tokens from being rescanned on every chunk (CVE-2023-52425). */
    XML_SetReparseDeferralEnabled(x.parser, XML_TRUE);
#endif

    u->reports_seen++;
    uint64_t total = 0;
    int done = 0;
    struct sha256_ctx sha;
    sha256_init(&sha);
    dp_readahead *ra = NULL; /* while set, it reads and hashes ps, not us */
    int ra_tried = 0;
    while (!done && !x.failed && !x.skipped) {
        void *buf = XML_GetBuffer(x.parser, READ_CHUNK);
        if (!buf) { FAIL(&x, DP_ERR_NOMEM, "out of memory in the XML parser"); break; }
        if (!ra_tried && lim->readahead_after && total >= lim->readahead_after) {
            ra_tried = 1;
            ra = dp_readahead_start(&ps->base, lim->compute_sha256 ? &sha : NULL);
        }
        ssize_t n = ra ? dp_readahead_read(ra, buf, READ_CHUNK, &err)
                       : ps->base.read(&ps->base, buf, READ_CHUNK, &err);
        if (n < 0) {
            x.err = err;
            x.failed = 1;
            break;
        }
        total += (uint64_t)n;
        x.fed = total;
        /* The slack covers expat holding back a chunk or two while it waits
         * for the rest of an ordinary token.  Text in a known container
         * raises no event either (want_text), so a huge run of it between
         * two elements ends here too. */
        if (x.fed - x.fed_at_event > (uint64_t)lim->max_text_bytes + 8u * READ_CHUNK) {
            dp_error_set(&x.err, DP_ERR_LIMIT,
                         "one markup token (a comment, processing instruction, tag or attribute) "
                         "or run of text between elements exceeds %llu bytes",
                         (unsigned long long)lim->max_text_bytes + 8u * READ_CHUNK);
            dp_error_set_offset(&x.err, x.fed_at_event);
            x.failed = 1;
            break;
        }
        if (total > lim->max_report_bytes) {
            dp_error_set(&x.err, DP_ERR_LIMIT, "report exceeds %llu decompressed bytes",
                         (unsigned long long)lim->max_report_bytes);
            dp_error_set_offset(&x.err, lim->max_report_bytes);
            x.failed = 1;
            break;
        }
        done = n == 0;
        if (lim->compute_sha256 && !ra) sha256_update(&sha, (size_t)n, buf);
        if (XML_ParseBuffer(x.parser, (int)n, done) == XML_STATUS_ERROR && !x.failed && !x.skipped) {
            enum XML_Error code = XML_GetErrorCode(x.parser);
            /* Salvage rule (see above): the wrapper is never closed, but the
             * <feedback> inside it was complete. */
            if (done && x.feedback_done && x.wrapper_seen &&
                (code == XML_ERROR_NO_ELEMENTS || code == XML_ERROR_UNCLOSED_TOKEN))
                break;
            dp_error_set(&x.err, DP_ERR_XML, "XML error at line %lu column %lu: %s",
                         (unsigned long)XML_GetCurrentLineNumber(x.parser),
                         (unsigned long)XML_GetCurrentColumnNumber(x.parser),
                         XML_ErrorString(code));
            dp_error_set_offset(&x.err, (uint64_t)XML_GetCurrentByteIndex(x.parser));
            x.failed = 1;
        }
    }
    /* the stream and the hash are ours again */
    dp_readahead_stop(ra);
    if (x.skipped) {
        u->res->skipped++;
        free_ctx(&x);
        return 0;
    }
    if (!x.failed && !x.feedback_done) {
        dp_error_set(&x.err, DP_ERR_VALIDATE, "no complete <feedback> element in the document");
        x.failed = 1;
    }
    int rc;
    if (x.failed) {
        /* records still held were never handed out: the report never began */
        if (build_report_view(&x) == 0 && x.records_started && !x.holding) {
            dp_unwrap_fail(u, &x.view, &x.err, part);
        } else {
            dp_unwrap_fail(u, NULL, &x.err, part);
        }
        rc = -1;
    } else {
        build_report_view(&x);
        x.view.xml_bytes = total;
        char hex[SHA256_DIGEST_SIZE * 2 + 1];
        if (lim->compute_sha256) {
            uint8_t digest[SHA256_DIGEST_SIZE];
            sha256_digest(&sha, sizeof digest, digest);
            *dp_buf_raw_hex(hex, digest, sizeof digest) = '\0';
            x.view.sha256 = hex;
        }
        if (u->h->report_done && u->h->report_done(u->ctx, &x.view) != 0) {
            dp_error_set(&err, DP_ERR_HANDLER, "report consumer refused the report");
            dp_unwrap_fail(u, &x.view, &err, part);
            rc = -1;
        } else {
            u->res->reports++;
            u->res->records += x.view.records;
            u->res->messages += x.view.messages;
            rc = 0;
        }
    }
    free_ctx(&x);
    return rc;
}
