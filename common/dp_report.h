/* dp_report.h — the data that flows down the pipeline.
 *
 * Ingest turns an input into reports and their records; aggregate rolls
 * records up into rollups; sinks format all three.  Their types live here,
 * at the ground floor, so that each stage includes only what it takes and
 * gives, and no stage includes another's header to learn a type.
 *
 * These are plain descriptions: every pointer in them is borrowed.  Who
 * owns the memory, and for how long, is said by the function that hands
 * one out (see ingest.h for reports and records, sink.h for rollups).
 */
#ifndef DP_REPORT_H
#define DP_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "dp_error.h"

/* ---- a report and its records ------------------------------------------- */

typedef enum dp_schema {
    DP_SCHEMA_DRAFT,   /* pre-RFC draft: namespace http://dmarc.org/dmarc-xml/0.1 or version 0.1 */
    DP_SCHEMA_RFC7489, /* RFC 7489 appendix C, with or without <version>1.0 */
    DP_SCHEMA_RFC9990  /* urn:ietf:params:xml:ns:dmarc-2.0 */
} dp_schema;

const char *dp_report_schema_name(dp_schema s); /* "draft", "rfc7489", "rfc9990" */

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

/* ---- a stream of reports and records ---------------------------------------
 *
 * Who produces reports (ingest) hands them, and their records, to whoever
 * consumes them through this vtable: record() once per record as soon as
 * it is parsed (or, when the report's header comes after its records,
 * right after report_begin()), then exactly one of report_done() (the report is complete
 * and valid: commit its records) or report_failed() (discard everything
 * record() delivered since the report began).  A report therefore counts
 * whole or not at all, even though its records stream out before its end
 * is seen.  Every pointer handed to a callback is the producer's and valid
 * only until the callback returns. */

/* report_begin() may return this to skip a report quietly (a duplicate). */
#define DP_REPORT_SKIP 1

typedef struct dp_report_handler {
    /* The report's header (metadata and policy) is complete: called once
     * per report, before its first record, or at its end when it has none.
     * Returns 0 to go on, DP_REPORT_SKIP to skip the report (no record(),
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
} dp_report_handler;

/* ---- a rollup ------------------------------------------------------------ */

/* The rollup schema's version, carried in every line (field "v").  Bump it
 * when a field changes meaning or the set of columns changes (a CSV reader
 * counts them): 2 added the source_* fields of dp_source_info. */
#define DP_ROLLUP_SCHEMA_VERSION 2
/* The reports feed's version, its own: its lines did not change when the
 * rollups' did. */
#define DP_REPORT_LINE_VERSION 1

/* What is known of a rollup's source IP; NULL / 0 where unknown.  Not part
 * of the rollup's key: the same key flushed before and after its lookup
 * finished carries nulls, then the answer. */
typedef struct dp_source_info {
    const char *ptr;          /* the PTR name, forward-confirmed (its A/AAAA include the IP) */
    const char *base_domain;  /* of ptr: registrable domain by the PSL, private section included */
    uint32_t asn;             /* 0: unknown */
    const char *as_org;
    const char *country;      /* ISO 3166-1 alpha-2 */
    const char *service;      /* from the known-senders map, matched on ptr */
    const char *service_type;
} dp_source_info;

/* One rollup with its strings resolved.  NULL strings are absent values. */
typedef struct dp_rollup {
    int64_t window_start, window_end; /* [start, end) in Unix seconds, UTC */
    const char *reporter;             /* org_name */
    const char *policy_domain, *header_from;
    const char *source_ip;
    const char *disposition, *dkim, *spf; /* policy_evaluated */
    const char *override;                 /* reason types, sorted, joined by ',' */
    const char *dkim_domain, *dkim_selector, *dkim_result;
    const char *spf_domain, *spf_result;
    uint64_t messages; /* sum of (window shares of) counts */
    uint64_t records;  /* report records that contributed */
    int64_t first_seen, last_seen; /* span of the contributing report ranges, within the window */
    dp_source_info source_info;    /* what enrichment knew of source_ip at the flush; all unknown without it */
} dp_rollup;

#endif
