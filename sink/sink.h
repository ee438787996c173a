/* sink.h — the public interface of dmarcpipe's third stage.
 *
 * A sink takes rollups (and the per-report inventory feed) out of the
 * process.  Every sink fills the same small vtable, Fluent Bit style, so a
 * new destination touches one file here and one line in dp_sink_open().
 *
 * Threads: shard threads write rollups and worker threads write reports, at
 * the same time; dp_sink_* calls lock the sink, so implementations need not.
 * Memory: everything passed in is borrowed for the duration of the call.
 */
#ifndef DP_SINK_H
#define DP_SINK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"
#include "dp_error.h"
#include "ingest.h"

/* The rollup schema's version, carried in every line (field "v").  Bump it
 * when a field changes meaning; adding a field does not. */
#define DP_ROLLUP_SCHEMA_VERSION 1

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
} dp_rollup;

/* The per-report line of the inventory feed (reports.ndjson). */
typedef struct dp_report_line {
    const dp_report *report;
    const char *sha256_hex; /* of the report's XML, or NULL */
} dp_report_line;

typedef struct dp_sink dp_sink;

typedef struct dp_sink_ops {
    const char *name;
    int (*write_rollup)(dp_sink *s, const dp_rollup *r, dp_error *err);
    /* Optional, for sinks that write text: format one rollup (no lock, no
     * state: any thread may call it at any time), then write many at once.
     * Shards format in parallel and only the block write is serialised. */
    void (*format_rollup)(const dp_sink *s, dp_buf *out, const dp_rollup *r);
    int (*write_block)(dp_sink *s, const char *data, size_t len, dp_error *err);
    /* one reports-feed line, already JSON (dp_report_line_to_json) */
    int (*write_report)(dp_sink *s, const char *line, size_t len, dp_error *err); /* may be NULL */
    int (*flush)(dp_sink *s, dp_error *err);  /* make what was written durable */
    void (*destroy)(dp_sink *s);
} dp_sink_ops;

struct dp_sink {
    const dp_sink_ops *ops;
    pthread_mutex_t lock;
    uint64_t rollups_written, reports_written;
};

/* Opens a sink from its URI:
 *   file:PATH   rollups as NDJSON, or CSV when PATH ends in ".csv"
 *   -           rollups as NDJSON on stdout
 * kafka:// arrives with issue 4 and is refused with that reason. */
dp_sink *dp_sink_open(const char *uri, dp_error *err);
/* The inventory feed: one JSON line per accepted report, into PATH. */
dp_sink *dp_sink_open_reports(const char *path, dp_error *err);

/* Thread-safe wrappers: lock, call, count, unlock. */
int dp_sink_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err);
/* `count` rollups formatted with ops->format_rollup, written in one go. */
int dp_sink_write_block(dp_sink *s, const char *data, size_t len, uint64_t count, dp_error *err);
int dp_sink_write_report(dp_sink *s, const dp_report_line *r, dp_error *err);
/* The same from a line rendered earlier (the engine renders a report's line
 * when the report ends and writes it once the report is decided). */
int dp_sink_write_report_text(dp_sink *s, const char *line, dp_error *err);
int dp_sink_flush(dp_sink *s, dp_error *err);
/* Flushes and frees.  0, or -1 when the final flush failed. */
int dp_sink_close(dp_sink *s, dp_error *err);

/* Formatting, shared by sinks and tests. */
void dp_rollup_to_json(dp_buf *out, const dp_rollup *r);
void dp_rollup_csv_header(dp_buf *out);
void dp_rollup_to_csv(dp_buf *out, const dp_rollup *r);
void dp_report_line_to_json(dp_buf *out, const dp_report_line *r);

#endif
