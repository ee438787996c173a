/* run_enrich.h — opening and closing `dmarcpipe run`'s enricher (enrich/)
 * from its options (run_options.h). */
#ifndef DP_RUN_ENRICH_H
#define DP_RUN_ENRICH_H

#include "dp_log.h"
#include "dp_metrics.h"
#include "enrich.h"
#include "run_options.h"

/* Opens the enricher the options ask for (*out NULL when none is): 0, or
 * the exit code after one line saying why (2: a file named that cannot be
 * read, a bad resolver; 3: memory).  The cache defaults to STATE/enrich
 * when state_dir is given. */
int dp_run_enrich_open(const dp_run_enrich_options *o, const char *state_dir, dp_log *log, dp_metrics *metrics,
                       dp_enrich **out);
/* One line (an info event) on what the enricher named: after the summary. */
void dp_run_enrich_summary(dp_enrich *e, dp_log *log);
void dp_run_enrich_close(dp_enrich *e);

#endif
