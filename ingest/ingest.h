/* ingest.h — the public interface of dmarcpipe's first stage.
 *
 * Ingest turns bytes as they arrive from mail receivers (raw XML, gzip, zip,
 * zstd, RFC 5322 messages, mbox files, nested in each other) into a stream of
 * parsed aggregate-report records, in constant memory.
 *
 * The caller supplies a dp_ingest_handler (a small vtable).  For each report
 * found in an input, ingest calls record() once per <record> as soon as the
 * element closes, then exactly one of report_done() (commit) or
 * report_failed() (discard everything record() delivered since the report
 * began).  A report therefore counts whole or not at all, even though its
 * records stream out before its end is seen.
 *
 * Memory and threads: every pointer handed to a callback is owned by ingest
 * and valid only until the callback returns; copy what you keep.  A call to
 * dp_ingest_file() runs entirely on the calling thread and touches no global
 * mutable state, so several threads may ingest different inputs at once
 * (call dp_ingest_global_init() once first).
 */
#ifndef DP_INGEST_H
#define DP_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "dp_error.h"

/* ---- Safety limits (and two options) --------------------------------- */

typedef struct dp_ingest_limits {
    uint64_t max_report_bytes; /* decompressed XML bytes per report (1 GiB) */
    uint32_t max_ratio;        /* decompressed bytes / input bytes (250) */
    uint32_t max_xml_depth;    /* element nesting depth (64) */
    uint32_t max_text_bytes;   /* text in one element (64 KiB) */
    uint32_t max_layers;       /* containers nested in each other (6) */
    uint32_t max_parts;        /* zip members or MIME parts per input (10000) */
    uint32_t max_auth_results; /* dkim+spf results in one record (1000) */
    uint32_t max_record_bytes; /* text kept for one record, and for the report
                                  header (metadata + policy) (1 MiB) */
    int64_t max_range_seconds; /* end - begin of a report (a century) */
    int compute_sha256;        /* also hash each report's XML (off) */
    uint64_t readahead_after;  /* a report still going after this many bytes
                                  of XML has its unwrapping (and hashing) done
                                  on a reader thread of its own, ahead of the
                                  parser: for when a core is free; 0 = never
                                  (the default) */
} dp_ingest_limits;

void dp_ingest_limits_default(dp_ingest_limits *lim);

/* ---- What ingest produces -------------------------------------------- */

typedef enum dp_schema {
    DP_SCHEMA_DRAFT,   /* pre-RFC draft: namespace http://dmarc.org/dmarc-xml/0.1 or version 0.1 */
    DP_SCHEMA_RFC7489, /* RFC 7489 appendix C, with or without <version>1.0 */
    DP_SCHEMA_RFC9990  /* urn:ietf:params:xml:ns:dmarc-2.0 */
} dp_schema;

const char *dp_schema_name(dp_schema s); /* "draft", "rfc7489", "rfc9990" */

/* Strings below are NULL when the element was absent or empty.  Enumerated
 * values are lower-cased; every string is whitespace-trimmed UTF-8. */

typedef struct dp_policy {
    const char *domain, *adkim, *aspf, *p, *sp, *np, *fo, *testing, *discovery_method, *psd;
    int has_pct;
    uint32_t pct;
} dp_policy;

typedef struct dp_report {
    const char *input;   /* the input as named by the caller */
    const char *part;    /* where in it: "input!member.xml!..." */
    const char *org_name, *email, *extra_contact_info, *report_id;
    const char *generator, *version;
    int64_t begin, end; /* Unix seconds, begin <= end */
    const char *const *errors;
    size_t n_errors;
    dp_schema schema;
    dp_policy policy;
    uint64_t records;    /* so far; final in report_done() */
    uint64_t messages;   /* sum of counts so far */
    uint64_t xml_bytes;  /* decompressed XML bytes read so far */
    const char *sha256;  /* hex SHA-256 of the XML, in report_done() when
                            compute_sha256 is set; else NULL */
} dp_report;

typedef struct dp_override { const char *type, *comment; } dp_override;
typedef struct dp_dkim_auth { const char *domain, *selector, *result, *human_result; } dp_dkim_auth;
typedef struct dp_spf_auth { const char *domain, *scope, *result, *human_result; } dp_spf_auth;

#define DP_IP_STRLEN 46

typedef struct dp_record {
    char source_ip[DP_IP_STRLEN]; /* canonical text form */
    int ip_family;                /* 4 or 6 */
    unsigned char ip[16];         /* network order; IPv4 in the first 4 bytes */
    uint64_t count;
    const char *disposition, *dkim, *spf; /* policy_evaluated */
    const dp_override *overrides;
    size_t n_overrides;
    const char *header_from, *envelope_from, *envelope_to;
    const dp_dkim_auth *dkim_auth;
    size_t n_dkim_auth;
    const dp_spf_auth *spf_auth;
    size_t n_spf_auth;
} dp_record;

/* ---- The consumer's vtable ------------------------------------------- */

/* report_begin() may return this to skip a report quietly (a duplicate). */
#define DP_INGEST_SKIP 1

typedef struct dp_ingest_handler {
    /* The report's header (metadata and policy) is complete: called once
     * per report, before its first record, or at its end when it has none.
     * Returns 0 to go on, DP_INGEST_SKIP to skip the report (no record(),
     * no report_done(), no report_failed(); counted in `skipped`), or
     * anything else to fail it with DP_ERR_HANDLER.  May be NULL. */
    int (*report_begin)(void *ctx, const dp_report *rep);
    /* Returns 0 to go on, non-zero to stop the whole input (the current
     * report is then failed with a DP_ERR_HANDLER error). */
    int (*record)(void *ctx, const dp_report *rep, const dp_record *rec);
    /* The report is complete and valid: commit its records. */
    int (*report_done)(void *ctx, const dp_report *rep);
    /* A report, or a part of the input that held no report, was rejected:
     * discard any records delivered since the last commit.  `rep` is NULL
     * when the failure happened before a report began. */
    void (*report_failed)(void *ctx, const dp_report *rep, const dp_error *err);
} dp_ingest_handler;

typedef struct dp_ingest_result {
    uint64_t reports;   /* accepted reports */
    uint64_t records;   /* records in accepted reports */
    uint64_t messages;  /* sum of counts in accepted reports */
    uint64_t rejected;  /* rejected reports and parts */
    uint64_t skipped;   /* reports report_begin() chose to skip */
} dp_ingest_result;

/* Once per process, before any other call (initialises GMime). */
void dp_ingest_global_init(void);

/* Ingests one file.  Returns 0 when the input held at least one report and
 * nothing in it was rejected, -1 otherwise (each rejection has already been
 * passed to report_failed; `err` gets the first one). */
int dp_ingest_file(const dp_ingest_limits *lim, const char *path, const dp_ingest_handler *h,
                   void *ctx, dp_ingest_result *res, dp_error *err);

/* The same over bytes in memory (tests, fuzzing, and sources that fetch
 * whole objects).  `name` names the input in errors. */
int dp_ingest_memory(const dp_ingest_limits *lim, const char *name, const void *data, size_t len,
                     const dp_ingest_handler *h, void *ctx, dp_ingest_result *res, dp_error *err);

/* ---- Quarantine -------------------------------------------------------- */

/* Copies the input file into `dir` (created if missing) under a name that
 * never overwrites an earlier copy, and writes NAME.reason beside it: JSON
 * with the input, and for each error its part, stage, byte offset and
 * message.  The same rejection again (the same bytes from the same input
 * path, with the same errors) reuses its copy and rewrites its reason.
 * `quarantined_as` (optional, PATH_MAX) receives the copy's path. */
int dp_quarantine_file(const char *dir, const char *input_path, const dp_error *errors,
                       size_t n_errors, char *quarantined_as, dp_error *err);

/* ---- Rendering -------------------------------------------------------- */

struct dp_buf;
/* Appends one record as a JSON object (no newline), with the report's
 * fields flattened in.  This is `dmarcpipe parse`'s output format. */
void dp_record_to_json(struct dp_buf *out, const dp_report *rep, const dp_record *rec);
/* The report's own fields as JSON object members (input, part, schema,
 * metadata, errors, policy_*), for record lines and the reports feed. */
void dp_report_fields_to_json(struct dp_buf *out, int *first, const dp_report *rep);

#endif
