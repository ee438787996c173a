/* insight.h — from rollups to the enforcement decision.
 *
 * `dmarcpipe report` answers the questions a domain owner asks on the way
 * from p=none to p=reject: which domains there are and what they publish,
 * who sends as them, which of those senders are legitimate but not
 * aligned, which domains can take the next step, and what reject would
 * block today.  It reads the two feeds `dmarcpipe run` writes (rollups and
 * reports, as NDJSON lines, from files or Kafka) and never the reports
 * themselves.
 *
 * Rollups are sums: a rollup's key may come in several lines (flushes,
 * shards, runs), and every figure here is a sum or a min/max over lines,
 * so partial rollups give the same answer as merged ones, as in the
 * warehouse.  Memory is bounded by what is reported on, not by the feed:
 * per policy domain, a day array over the period and one entry per source
 * IP; no rollup line is kept.
 *
 * The caller hands the feeds over as a `dp_insight_inputs` callback,
 * which is called twice: once to find the period the data covers (when
 * the caller named none), once to count.  Errors are values: a line that
 * is not a feed line is counted and passed to `warn`, and the report is
 * still produced.
 */
#ifndef DP_INSIGHT_H
#define DP_INSIGHT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dp_error.h"

/* One feed line (no newline, not NUL-terminated) and where it came from,
 * for messages: "rollups.ndjson:12", "kafka://h:9092/dmarc.rollups [0] @41".
 * A reader that had to drop a line (longer than it takes) passes line
 * NULL: the line is counted and named as a bad one. */
typedef int (*dp_insight_line_fn)(void *fn_ctx, const char *line, size_t len, const char *where);

typedef struct dp_insight_inputs {
    /* Calls fn for every line of every input, in any order.  0, or -1 with
     * err set when an input cannot be read (the report is then not made). */
    int (*read)(void *ctx, dp_insight_line_fn fn, void *fn_ctx, dp_error *err);
    void *ctx;
} dp_insight_inputs;

#define DP_INSIGHT_DAY_UNSET INT64_MIN

typedef struct dp_insight_options {
    int64_t from_day, to_day;    /* days since 1970-01-01 (UTC), inclusive, or DP_INSIGHT_DAY_UNSET */
    const char *const *domains;  /* only these policy domains (lowercase), or n_domains 0 for all */
    size_t n_domains;
    double ready_threshold;      /* aligned / legitimate needed for "ready" (0.98) */
    uint64_t min_days;           /* days with rollups needed for a verdict (7) */
    uint64_t min_messages;       /* messages needed for a verdict (100) */
    /* Called for each line that is not a feed line (may be NULL). */
    void (*warn)(void *warn_ctx, const char *where, const char *reason);
    void *warn_ctx;
} dp_insight_options;

/* The defaults above; the period unset. */
void dp_insight_options_init(dp_insight_options *o);

typedef struct dp_insight dp_insight;

/* Reads the inputs and computes the report.  NULL with err set when an
 * input cannot be read, memory runs out, or the options are invalid. */
dp_insight *dp_insight_build(const dp_insight_inputs *in, const dp_insight_options *o, dp_error *err);

/* Lines read, and lines skipped as not feed lines. */
uint64_t dp_insight_lines(const dp_insight *ins);
uint64_t dp_insight_bad_lines(const dp_insight *ins);
/* Policy domains in the report. */
size_t dp_insight_domains(const dp_insight *ins);

typedef enum dp_insight_format { DP_INSIGHT_TABLE, DP_INSIGHT_JSON, DP_INSIGHT_HTML } dp_insight_format;

/* Writes the report.  0, or -1 with err set when the write fails. */
int dp_insight_write(const dp_insight *ins, dp_insight_format fmt, FILE *f, dp_error *err);

void dp_insight_free(dp_insight *ins);

/* "2026-12-06" -> days since 1970-01-01; 0 on success.  And back: out
 * holds at least 11 bytes. */
int dp_insight_parse_day(const char *s, int64_t *day);
void dp_insight_format_day(int64_t day, char out[11]);

#endif
