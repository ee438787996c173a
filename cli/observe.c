/* observe — the registry and the endpoint of `run --metrics-addr`.
 *
 * The families are registered here, before anything runs, by the same
 * calls the stages make as they run (registering again finds the family
 * already there): a dashboard sees every series at 0 from the first
 * scrape, not only once the first epoch commits.
 */
#include "observe.h"

#include <stdio.h>
#include <string.h>

#include "aggregate.h"
#include "dp_config.h"
#include "run_metrics.h"

/* /healthz turns 503 after this long without a heartbeat: far longer
 * than any input takes, or than a follower waits between two polls. */
#define STALE_MIN_SECONDS 300

int dp_observe_start(dp_observe *o, const char *addr, unsigned shards, double poll_seconds) {
    memset(o, 0, sizeof *o);
    if (!addr) return 0;
    if (!(o->metrics = dp_metrics_new())) {
        fprintf(stderr, "dmarcpipe run: out of memory\n");
        return -1;
    }
    dp_run_metrics rm;
    dp_run_metrics_init(&rm, o->metrics);
    dp_engine_metrics(o->metrics, shards, NULL, NULL);
    static const char *const version[] = {DP_VERSION};
    dp_metric *info = dp_metrics_gauge1(o->metrics, "dmarcpipe_build_info",
                                        "Always 1; the version of dmarcpipe that runs.", "version", version, 1);
    dp_metrics_set(info, 0, 1);
    double stale = poll_seconds * 3 > STALE_MIN_SECONDS ? poll_seconds * 3 : STALE_MIN_SECONDS;
    dp_error err;
    if (!(o->http = dp_metrics_http_start(o->metrics, addr, stale, &err))) {
        char text[DP_ERROR_TEXT_MAX];
        fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
        dp_metrics_free(o->metrics);
        o->metrics = NULL;
        return -1;
    }
    return 0;
}

void dp_observe_stop(dp_observe *o) {
    dp_metrics_http_stop(o->http);
    dp_metrics_free(o->metrics);
    memset(o, 0, sizeof *o);
}
