/* observe.h — what `dmarcpipe run` shows of itself while it goes: the
 * metrics registry and its HTTP endpoint (--metrics-addr), and the live
 * figures the progress line reads. */
#ifndef DP_OBSERVE_H
#define DP_OBSERVE_H

#include "dp_metrics.h"
#include "dp_metrics_http.h"
#include "run.h"

typedef struct dp_observe {
    dp_metrics *metrics;   /* NULL without --metrics-addr: nothing is counted */
    dp_metrics_http *http;
    dp_run_progress live;  /* the progress line's figures */
} dp_observe;

/* With `addr` (NULL: none), makes the registry, registers every family
 * the run will fill (so that a scrape sees them all from the start) and
 * serves it.  0, or -1 after one line on stderr (a usage error: exit 2). */
int dp_observe_start(dp_observe *o, const char *addr, unsigned shards, double poll_seconds);
void dp_observe_stop(dp_observe *o);

#endif
