/* dp_metrics_http — the registry and the process's health over HTTP.
 *
 * For Prometheus and for an orchestrator's probes (libmicrohttpd, on a
 * thread of its own):
 *   /metrics  the registry in the text format, version 0.0.4;
 *   /healthz  200 while the main loop beats (dp_metrics_heartbeat) at
 *             least every `stale_seconds`, 503 once it has not for longer:
 *             a process stuck for that long is better restarted;
 *   /readyz   200 while the program says it is ready (dp_metrics_set_ready):
 *             503 before, and again once it is stopping.
 * GET and HEAD only.  Nothing here changes the registry.
 */
#ifndef DP_METRICS_HTTP_H
#define DP_METRICS_HTTP_H

#include "dp_error.h"
#include "dp_metrics.h"

typedef struct dp_metrics_http dp_metrics_http;

/* Listens on `addr`, HOST:PORT or [IPV6]:PORT (PORT 0: one the kernel
 * picks), and serves until dp_metrics_http_stop().  NULL and err (one
 * line naming the address and the reason) when the address is malformed
 * or cannot be bound. */
dp_metrics_http *dp_metrics_http_start(dp_metrics *m, const char *addr, double stale_seconds, dp_error *err);
/* The port it listens on (the kernel's pick for port 0). */
int dp_metrics_http_port(const dp_metrics_http *h);
/* Stops serving and frees; NULL: nothing. */
void dp_metrics_http_stop(dp_metrics_http *h);

#endif
