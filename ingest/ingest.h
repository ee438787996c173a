/* ingest.h — the public interface of dmarcpipe's first stage.
 *
 * Ingest turns bytes as they arrive from mail receivers (raw XML, gzip, zip,
 * zstd, RFC 5322 messages, mbox files, nested in each other) into a stream of
 * parsed aggregate-report records, in constant memory.
 *
 * The caller supplies a dp_report_handler (a small vtable).  For each report
 * found in an input, ingest calls record() once per <record> as soon as the
 * element closes, then exactly one of report_done() (commit) or
 * report_failed() (discard everything record() delivered since the report
 * began).  A report therefore counts whole or not at all, even though its
 * records stream out before its end is seen.
 *
 * Memory and threads: every pointer handed to a callback is owned by ingest
 * and valid only until the callback returns; copy what you keep.  A call
 * to dp_ingest_fd() or dp_ingest_file() runs entirely on the calling
 * thread and touches no global mutable state, so several threads may
 * ingest different inputs at once (call dp_ingest_global_init() once
 * first).
 */
#ifndef DP_INGEST_H
#define DP_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"
#include "dp_error.h"
#include "dp_report.h"

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
    int64_t max_range_seconds; /* end - begin of a report (31 days) */
    int compute_sha256;        /* also hash each report's XML (off) */
    uint64_t readahead_after;  /* a report still going after this many bytes
                                  of XML has its unwrapping (and hashing) done
                                  on a reader thread of its own, ahead of the
                                  parser: for when a core is free; 0 = never
                                  (the default) */
} dp_ingest_limits;

void dp_ingest_limits_default(dp_ingest_limits *lim);

/* A report's dates must lie in [1990-01-01, 2100-01-01], UTC. */
#define DP_INGEST_DATE_MIN INT64_C(631152000)
#define DP_INGEST_DATE_MAX INT64_C(4102444800)

/* ---- What ingest gives ----------------------------------------------- */

/* Reports and records go to the caller's dp_report_handler (dp_report.h),
 * a small vtable: record() once per <record> as soon as the element
 * closes, then report_done() or report_failed() for the report. */

typedef struct dp_ingest_result {
    uint64_t reports;   /* accepted reports */
    uint64_t records;   /* records in accepted reports */
    uint64_t messages;  /* sum of counts in accepted reports */
    uint64_t rejected;  /* rejected reports and parts */
    uint64_t skipped;   /* reports report_begin() chose to skip */
} dp_ingest_result;

/* Once per process, before any other call (initialises GMime). */
void dp_ingest_global_init(void);

/* Ingests one input read from `fd` (the caller's: it is read, perhaps
 * rewound once when the input is mail, and never closed).  Only a regular
 * file is an input: anything else is rejected.  `name` names the input in
 * errors and in dp_report.input.  Returns 0 when the input held at least
 * one report and nothing in it was rejected, -1 otherwise (each rejection
 * has already been passed to report_failed; `err` gets the first one). */
int dp_ingest_fd(const dp_ingest_limits *lim, const char *name, int fd, const dp_report_handler *h,
                 void *ctx, dp_ingest_result *res, dp_error *err);

/* The same for the file at `path` (opened and closed here). */
int dp_ingest_file(const dp_ingest_limits *lim, const char *path, const dp_report_handler *h,
                   void *ctx, dp_ingest_result *res, dp_error *err);

/* The same over bytes in memory (tests, fuzzing, and sources that fetch
 * whole objects).  `name` names the input in errors. */
int dp_ingest_memory(const dp_ingest_limits *lim, const char *name, const void *data, size_t len,
                     const dp_report_handler *h, void *ctx, dp_ingest_result *res, dp_error *err);

/* ---- Quarantine -------------------------------------------------------- */

/* Copies the input file into `dir` (created if missing) under a name that
 * never overwrites an earlier copy, and writes NAME.reason beside it: JSON
 * with the input, and for each error its part, stage, byte offset and
 * message.  The same rejection again (the same bytes from the same input
 * path, with the same errors) reuses its copy and rewrites its reason.
 * `quarantined_as` (optional, PATH_MAX) receives the copy's path. */
int dp_quarantine_file(const char *dir, const char *input_path, const dp_error *errors,
                       size_t n_errors, char *quarantined_as, dp_error *err);
/* The quarantine is private: `dir` is created 0700, a copy is 0600 and
 * never more readable than its original.  Only a regular file is copied;
 * for anything else (a FIFO, a device, a socket) only the reason is kept,
 * with "not_copied" saying why, and `quarantined_as` names the reason file.
 * dp_quarantine_reason() keeps the reason alone, never opening the input
 * (a symbolic link the source would not follow). */
int dp_quarantine_reason(const char *dir, const char *input_path, const char *why_not_copied,
                         const dp_error *errors, size_t n_errors, char *quarantined_as, dp_error *err);
/* The same for bytes a source holds in an open regular file `fd` (read
 * from its start, left open): a mail message cut out of an mbox or fetched
 * from a server, named `input_name` in the reason and the copy's name. */
int dp_quarantine_fd(const char *dir, const char *input_name, int fd, const dp_error *errors, size_t n_errors,
                     char *quarantined_as, dp_error *err);
/* The reasons' fields, as every quarantine writes them, into a JSON object
 * under way (`first` as dp_json's): the first error flat (error, stage,
 * offset, part), then all of them as "errors". */
void dp_quarantine_errors_json(dp_buf *b, int *first, const dp_error *errors, size_t n_errors);

#endif
