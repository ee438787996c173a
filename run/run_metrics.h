/* run_metrics.h — what the conductor tells the metrics registry, and the
 * live figures a progress line reads.
 *
 * The figures the run's summary also prints (reports, records, messages,
 * inputs) are added once per committed epoch, from that epoch's stats,
 * so that /metrics and the summary always agree; an epoch that aborts and
 * runs again counts once.  The live figures (dp_run_progress, run.h) are
 * added as each input ends, by the worker that read it.
 */
#ifndef DP_RUN_METRICS_H
#define DP_RUN_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "aggregate.h"
#include "dp_error.h"
#include "dp_metrics.h"

/* Rejections by where they happened and why. */
enum { DP_RUN_METRICS_AT_SOURCE = 0, DP_RUN_METRICS_AT_INGEST = 1 };
#define DP_RUN_METRICS_KINDS ((int)DP_ERR_INPUT) /* dp_errkind but DP_OK */

/* One epoch's figures that the engine's stats do not hold, added by the
 * workers as they go and handed to the registry at the commit. */
typedef struct dp_run_metrics_tally {
    _Atomic uint64_t bytes;
    _Atomic uint64_t rejections[2][DP_RUN_METRICS_KINDS];
} dp_run_metrics_tally;

typedef struct dp_run_metrics {
    dp_metrics *m;
    dp_metric *reports, *records, *messages, *input_bytes, *inputs, *rejections, *epochs, *commit_seconds;
} dp_run_metrics;

/* Registers the run's families (again: the same ones) in m; m NULL: the
 * run counts nothing. */
void dp_run_metrics_init(dp_run_metrics *rm, dp_metrics *m);
void dp_run_metrics_tally_reset(dp_run_metrics_tally *t);
/* An input rejected for these errors, `at` its source or in ingest. */
void dp_run_metrics_reject(dp_run_metrics_tally *t, int at, const dp_error *errors, size_t n_errors);
/* An epoch committed: its stats, its tally, and how long the commit and
 * the state's write took. */
void dp_run_metrics_commit(const dp_run_metrics *rm, const dp_engine_stats *st, const dp_run_metrics_tally *t,
                           double commit_seconds);

#endif
