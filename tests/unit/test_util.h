/* test_util — what the ingest unit tests share.
 *
 * A collecting dp_report_handler that deep-copies everything ingest hands
 * out (records, committed reports, failures, and the order of the calls),
 * and builders that make gzip, zstd, zip, base64 and quoted-printable
 * inputs in memory, so every test crafts its own input in a few lines.
 *
 * Memory: everything a tu_* function returns is owned by the test helper
 * and released by tu_free_all(), which the fixtures run after each test
 * (tests run under AddressSanitizer's leak checker).
 */
#ifndef DP_TEST_UTIL_H
#define DP_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

/* ---- a small valid report, as string literals ------------------------- */

#define TU_BEGIN "1700000000"
#define TU_END "1700086399"

#define TU_HEAD_ID(org, id)                                                                  \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                          \
    "<feedback>\n"                                                                           \
    " <version>1.0</version>\n"                                                              \
    " <report_metadata>\n"                                                                   \
    "  <org_name>" org "</org_name>\n"                                                      \
    "  <email>dmarc@example.org</email>\n"                                                   \
    "  <report_id>" id "</report_id>\n"                                                      \
    "  <date_range><begin>" TU_BEGIN "</begin><end>" TU_END "</end></date_range>\n"          \
    " </report_metadata>\n"                                                                  \
    " <policy_published>\n"                                                                  \
    "  <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf>\n"                         \
    "  <p>none</p><sp>none</sp><pct>100</pct>\n"                                             \
    " </policy_published>\n"
#define TU_HEAD TU_HEAD_ID("Example Org", "r1")

#define TU_REC(ip, count)                                                                    \
    " <record>\n"                                                                            \
    "  <row><source_ip>" ip "</source_ip><count>" count "</count>\n"                        \
    "   <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>"   \
    "</policy_evaluated></row>\n"                                                            \
    "  <identifiers><header_from>example.com</header_from></identifiers>\n"                  \
    "  <auth_results><dkim><domain>example.com</domain><result>pass</result></dkim>"         \
    "<spf><domain>example.com</domain><result>pass</result></spf></auth_results>\n"          \
    " </record>\n"

#define TU_TAIL "</feedback>\n"

/* One report, one record (192.0.2.1, count 3). */
#define TU_SIMPLE TU_HEAD TU_REC("192.0.2.1", "3") TU_TAIL
/* One report, two records (counts 3 and 4). */
#define TU_TWO TU_HEAD TU_REC("192.0.2.1", "3") TU_REC("192.0.2.2", "4") TU_TAIL

/* ---- the collecting handler ---------------------------------------------- */

typedef struct tu_override { char *type, *comment; } tu_override;
typedef struct tu_auth { char *domain, *selector_or_scope, *result, *human_result; } tu_auth;

#define TU_MAX_CHILDREN 16

typedef struct tu_record {
    /* the report as it was when the record was handed out */
    char *org_name, *report_id, *part;
    uint64_t rep_records, rep_messages;
    /* the record */
    char source_ip[DP_IP_STRLEN];
    int ip_family;
    unsigned char ip[16];
    uint64_t count;
    char *disposition, *dkim, *spf, *header_from, *envelope_from, *envelope_to;
    size_t n_overrides, n_dkim, n_spf;
    tu_override ov[TU_MAX_CHILDREN];
    tu_auth dk[TU_MAX_CHILDREN], sp[TU_MAX_CHILDREN];
    int discarded; /* report_failed() came for its report */
} tu_record;

typedef struct tu_report {
    char *input, *part, *org_name, *email, *extra_contact_info, *report_id, *generator, *version;
    int64_t begin, end;
    size_t n_errors;
    char *errors[TU_MAX_CHILDREN];
    dp_schema schema;
    char *domain, *adkim, *aspf, *p, *sp, *np, *fo, *testing, *discovery_method, *psd;
    int has_pct;
    uint32_t pct;
    uint64_t records, messages, xml_bytes;
} tu_report;

typedef struct tu_failure {
    dp_error err;
    int had_report;       /* report_failed got a non-NULL report */
    uint64_t rep_records; /* its record count then */
} tu_failure;

typedef struct tu_collect {
    tu_record *recs;
    size_t n_recs, cap_recs, pending_from;
    tu_report *reps; /* committed reports (report_done) */
    size_t n_reps, cap_reps;
    tu_failure *fails;
    size_t n_fails, cap_fails;
    char events[1024]; /* 'r' record, 'D' report_done, 'F' report_failed */
    size_t n_events;
    /* results of the last tu_ingest_* call */
    int rc;
    dp_ingest_result res;
    dp_error err;
    /* behaviour knobs */
    int stop_at_record;  /* record() returns 1 for this record number (1-based); 0: never */
    int refuse_reports;  /* report_done() returns 1 */
} tu_collect;

extern const dp_report_handler tu_handler;

/* A fresh collector (owned by the helper; freed by tu_free_all). */
tu_collect *tu_collect_new(void);

/* Runs dp_ingest_memory / dp_ingest_file into a fresh collector.  lim may be
 * NULL for the defaults. */
tu_collect *tu_ingest_mem(const dp_ingest_limits *lim, const char *name, const void *data, size_t len);
tu_collect *tu_ingest_str(const char *s); /* "test.xml", default limits */
tu_collect *tu_ingest_file(const dp_ingest_limits *lim, const char *path);

/* Committed records only (those of reports that report_done() accepted). */
size_t tu_committed_records(const tu_collect *c);

/* ---- building inputs ------------------------------------------------------ */

typedef struct tu_bytes { unsigned char *data; size_t len; } tu_bytes;
typedef struct tu_entry { const char *name; const void *data; size_t len; } tu_entry;

tu_bytes tu_str(const char *s);                /* the bytes of s, no NUL */
tu_bytes tu_gzip(const void *data, size_t len); /* one gzip member */
tu_bytes tu_zstd(const void *data, size_t len);
tu_bytes tu_zip(const tu_entry *entries, size_t n); /* deflated members */
tu_bytes tu_cat(tu_bytes a, tu_bytes b);
tu_bytes tu_head(tu_bytes a, size_t n); /* the first n bytes */
char *tu_base64(const void *data, size_t len); /* 76-column lines, CRLF */
char *tu_qp(const void *data, size_t len);     /* quoted-printable, every byte but [A-Za-z0-9 ] encoded */
char *tu_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Converts a (7-bit) string to UTF-16 with a BOM; big_endian selects BE. */
tu_bytes tu_utf16(const char *ascii, int big_endian);

/* A fresh temporary directory, removed by tu_free_all. */
const char *tu_tmpdir(void);
/* Writes bytes to dir/name; returns the path. */
const char *tu_write_file(const char *dir, const char *name, const void *data, size_t len);
/* Reads a whole file (NUL-terminated for convenience); ck_assert on failure. */
tu_bytes tu_read_file(const char *path);

/* Registers p to be freed by tu_free_all; returns p. */
void *tu_keep(void *p);
void tu_free_all(void);

/* A test case with the cleanup fixture and a generous timeout. */
TCase *tu_tcase(const char *name);
/* Runs a suite and returns main()'s exit status. */
int tu_run(Suite *s);

/* ---- assertions ------------------------------------------------------------ */

/* Asserts a string (possibly NULL) equals an expected one (possibly NULL). */
#define tu_assert_str(got, want) tu_assert_str_at((got), (want), #got, __FILE__, __LINE__)
void tu_assert_str_at(const char *got, const char *want, const char *expr, const char *file, int line);

/* Asserts the input was accepted: rc 0, exactly `reports` reports and
 * `records` records, nothing rejected. */
#define tu_assert_ok(c, reports, records) tu_assert_ok_at((c), (reports), (records), __FILE__, __LINE__)
void tu_assert_ok_at(const tu_collect *c, uint64_t reports, uint64_t records, const char *file, int line);

/* Asserts the input was rejected with the first error of kind `kind`, and
 * nothing counted (no report, no record). */
#define tu_assert_rejected(c, kind) tu_assert_rejected_at((c), (kind), __FILE__, __LINE__)
void tu_assert_rejected_at(const tu_collect *c, dp_errkind kind, const char *file, int line);

/* Asserts that haystack contains needle (case-sensitive). */
#define tu_assert_contains(hay, needle) tu_assert_contains_at((hay), (needle), __FILE__, __LINE__)
void tu_assert_contains_at(const char *hay, const char *needle, const char *file, int line);

#endif
