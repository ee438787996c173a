/* progress.h — the progress line of a batch run on a terminal. */
#ifndef DP_PROGRESS_H
#define DP_PROGRESS_H

#include "run.h"

typedef struct dp_progress dp_progress;

/* Starts redrawing one line on stderr from the run's live figures, a few
 * times a second, when `mode` says so: "on", or "auto" (the default, and
 * NULL) when stderr is a terminal; "off" never.  NULL when no line is
 * shown (or it cannot be: no thread). */
dp_progress *dp_progress_start(const dp_run_progress *p, const char *mode);
/* Stops, and clears the line, before the summary is printed; NULL: nothing. */
void dp_progress_end(dp_progress *pg);

#endif
