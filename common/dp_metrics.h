/* dp_metrics — counters, gauges and histograms, and their Prometheus text.
 *
 * A registry is the process's observable state: what its stages counted,
 * and whether its main loop is alive (a heartbeat) and ready.  The program
 * makes one and hands a pointer down (there is no global registry); a
 * stage given NULL counts nothing, and every update below takes a NULL
 * metric as "not counted".
 *
 * A metric is a family: a name, a help text, a type, and at most
 * DP_METRICS_MAX_LABELS labels, each with the values it may take, fixed
 * when it is registered.  So a family has a fixed number of series (the
 * product of its labels' value counts), all allocated at registration,
 * and an update is one relaxed atomic operation on a series picked by its
 * index: no lock, no allocation, no lookup on the hot path.  Bounded
 * labels keep the exposition bounded too: nothing like an input's name
 * can ever become a label value.
 *
 * Registering a name again gives the family already there (a stage that
 * runs many times registers at each run); a different type or labels are
 * refused (NULL).  Families live until dp_metrics_free().
 *
 * Threads: registration and rendering take the registry's lock; updates
 * take none and may come from any thread.  Figures are read relaxed: a
 * scrape sees each series as some thread last left it.
 */
#ifndef DP_METRICS_H
#define DP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"

typedef struct dp_metrics dp_metrics;
typedef struct dp_metric dp_metric;

typedef enum dp_metric_type { DP_METRIC_COUNTER, DP_METRIC_GAUGE, DP_METRIC_HISTOGRAM } dp_metric_type;

#define DP_METRICS_MAX_LABELS 4
#define DP_METRICS_MAX_BUCKETS 32

/* A label and the values it may take. */
typedef struct dp_metric_label {
    const char *name;
    const char *const *values;
    size_t n_values;
} dp_metric_label;

dp_metrics *dp_metrics_new(void);
void dp_metrics_free(dp_metrics *m);

/* Registers (or finds) a family.  `buckets`: a histogram's upper bounds,
 * increasing (+Inf is added); ignored for the other types.  NULL when m is
 * NULL, out of memory, a bad name, or a clash with the family already
 * registered under the name.  Names and values are copied. */
dp_metric *dp_metrics_register(dp_metrics *m, dp_metric_type type, const char *name, const char *help,
                               const dp_metric_label *labels, size_t n_labels, const double *buckets,
                               size_t n_buckets);
/* Shorthands for a family without labels, or with one. */
dp_metric *dp_metrics_counter(dp_metrics *m, const char *name, const char *help);
dp_metric *dp_metrics_gauge(dp_metrics *m, const char *name, const char *help);
dp_metric *dp_metrics_counter1(dp_metrics *m, const char *name, const char *help, const char *label,
                               const char *const *values, size_t n_values);
dp_metric *dp_metrics_gauge1(dp_metrics *m, const char *name, const char *help, const char *label,
                             const char *const *values, size_t n_values);

/* The index of the series with these label values (one per label, in
 * the family's order), or -1 when one is not among those declared. */
long dp_metrics_series(const dp_metric *f, const char *const *values);
/* The number of series of the family. */
size_t dp_metrics_n_series(const dp_metric *f);

/* Updates; `series` is an index below dp_metrics_n_series() (0 for a
 * family without labels).  Lock-free; f NULL: nothing. */
void dp_metrics_add(dp_metric *f, size_t series, uint64_t v);  /* a counter */
void dp_metrics_set(dp_metric *f, size_t series, double v);    /* a gauge */
void dp_metrics_observe(dp_metric *f, size_t series, double v); /* a histogram */
/* A counter's or gauge's current value (tests, the progress line). */
double dp_metrics_value(const dp_metric *f, size_t series);

/* The Prometheus text exposition format (version 0.0.4) of every family,
 * in registration order, appended to out.  0, or -1 (out of memory). */
int dp_metrics_render(dp_metrics *m, dp_buf *out);

/* ---- health ------------------------------------------------------------------ */

/* The main loop says it is alive (each poll, epoch, input taken); cheap:
 * one relaxed store of the monotonic clock.  m NULL: nothing. */
void dp_metrics_heartbeat(dp_metrics *m);
/* Seconds since the last heartbeat (or since the registry was made). */
double dp_metrics_heartbeat_age(dp_metrics *m);
/* Ready: the state is open, recovered, and the sources are open (1); not
 * yet, or stopping (0). */
void dp_metrics_set_ready(dp_metrics *m, int ready);
int dp_metrics_ready(dp_metrics *m);

#endif
