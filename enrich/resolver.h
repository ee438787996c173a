/* resolver — the thread that asks DNS for source IPs' PTR names and
 * confirms each name forward (c-ares).
 *
 * It knows DNS only: which IP to ask next and what to do with an answer
 * are the caller's hooks, called on the resolver thread.  It keeps at most
 * max_inflight lookups going at once, sleeps in poll() on c-ares' sockets
 * and a wake pipe, and on stop cancels what is in flight, so that stopping
 * is prompt whatever the server does.
 */
#ifndef DP_RESOLVER_H
#define DP_RESOLVER_H

#include "dp_error.h"

/* How a lookup ended.  Only ANSWERED carries a name. */
typedef enum dp_resolver_status {
    DP_RESOLVER_ANSWERED = 0, /* a PTR name whose A/AAAA include the IP */
    DP_RESOLVER_UNCONFIRMED,  /* a PTR name that does not resolve back to the IP */
    DP_RESOLVER_NXDOMAIN,     /* no PTR (NXDOMAIN, or no PTR record) */
    DP_RESOLVER_SERVFAIL,
    DP_RESOLVER_REFUSED,
    DP_RESOLVER_TIMEOUT,
    DP_RESOLVER_UNREACHABLE,  /* the server refused the connection (nothing listens) */
    DP_RESOLVER_ERROR,        /* anything else: a bad answer, a bad name, memory */
    DP_RESOLVER_N_STATUS
} dp_resolver_status;

/* "answered", "unconfirmed", "nxdomain", ... (metric label values and the
 * cache's text); parse gives -1 for another word. */
const char *dp_resolver_status_name(dp_resolver_status s);
int dp_resolver_status_parse(const char *s);

#define DP_RESOLVER_NAME_MAX 256 /* a DNS name's text, with its NUL */
#define DP_RESOLVER_IP_MAX 64

typedef struct dp_resolver_hooks {
    void *ctx;
    /* The next IP to look up, written into ip; 0 when there is none now.
     * Called whenever a lookup slot is free. */
    int (*next)(void *ctx, char ip[DP_RESOLVER_IP_MAX]);
    /* A lookup ended; name is the confirmed PTR name (lowercase, no
     * trailing dot) when status is ANSWERED, else NULL. */
    void (*done)(void *ctx, const char *ip, dp_resolver_status status, const char *name);
    /* Once per turn of the loop (last 0), and once more before the thread
     * ends (last 1). */
    void (*tick)(void *ctx, int last);
} dp_resolver_hooks;

typedef struct dp_resolver_config {
    const char *server;    /* "HOST:PORT" or "[V6]:PORT"; NULL: /etc/resolv.conf */
    double query_timeout;  /* seconds per query, both tries together */
    unsigned max_inflight;
} dp_resolver_config;

typedef struct dp_resolver dp_resolver;

/* Makes the channel and starts the thread.  NULL with err set when the
 * server is no address, c-ares cannot start or the thread cannot. */
dp_resolver *dp_resolver_start(const dp_resolver_config *c, const dp_resolver_hooks *hooks, dp_error *err);
/* There is something new for `next`: wakes the thread (any thread may
 * call it; a write on a pipe). */
void dp_resolver_wake(dp_resolver *r);
/* Cancels the lookups in flight (done is not called for them), ends the
 * thread and frees r.  NULL: nothing. */
void dp_resolver_stop(dp_resolver *r);

#endif
