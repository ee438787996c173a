/* run_enrich — `dmarcpipe run`'s enrichment: the options into a
 * dp_enrich_config, the enricher opened before the run and closed after.
 *
 * Enrichment is off unless asked for (--enrich, or a source of answers:
 * --resolver, --geoip-*, --senders), so a run without network stays what
 * it was.  The PTR cache lives beside the state (STATE/enrich) when the run
 * has one, so a restart asks the DNS only for what expired; without a
 * state it is in memory.  A file the user named that cannot be read (an
 * MMDB database, a senders file) is a usage error, named in one line.
 */
#include "run_enrich.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dp_fs.h"

/* A named file readable now, or one line naming it: the enricher would
 * say so too, but this way the line names the option as the user typed
 * it. */
static int readable(const char *opt, const char *path, dp_log *log) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    const char *why = strerror(errno);
    dp_log_error(log, "run", DP_LOG_FIELDS(DP_LOG_STR("option", opt), DP_LOG_STR("path", path), DP_LOG_STR("error", why)),
                 "dmarcpipe run: %s %s: cannot read it: %s", opt, path, why);
    return -1;
}

int dp_run_enrich_open(const dp_run_enrich_options *o, const char *state_dir, dp_log *log, dp_metrics *metrics,
                       dp_enrich **out) {
    *out = NULL;
    if (!o->on) return 0;
    if ((o->geoip_asn && readable("--geoip-asn", o->geoip_asn, log) != 0) ||
        (o->geoip_country && readable("--geoip-country", o->geoip_country, log) != 0))
        return 2;
    for (size_t i = 0; i < o->n_senders; i++)
        if (readable("--senders", o->senders[i], log) != 0) return 2;
    dp_enrich_config c;
    dp_enrich_config_default(&c);
    c.resolver = o->resolver;
    c.ttl = o->ttl;
    if (o->max_ips) c.max_ips = o->max_ips;
    c.geoip_asn = o->geoip_asn;
    c.geoip_country = o->geoip_country;
    c.senders_files = o->senders;
    c.n_senders_files = o->n_senders;
    c.log = log;
    c.metrics = metrics;
    char cache[4096];
    c.cache_dir = o->cache_dir;
    if (!c.cache_dir && state_dir) {
        if (snprintf(cache, sizeof cache, "%s/enrich", state_dir) >= (int)sizeof cache) return 2;
        c.cache_dir = cache;
    }
    /* a cache folder that cannot be made is the enricher's warning: it
     * then keeps its answers in memory */
    if (c.cache_dir) (void)dp_fs_mkdir_p(c.cache_dir);
    dp_error err;
    if (!(*out = dp_enrich_open(&c, &err))) {
        char text[DP_ERROR_TEXT_MAX];
        dp_log_error(log, "run", DP_LOG_FIELDS(DP_LOG_STR("error", err.msg)), "dmarcpipe run: enrichment: %s",
                     dp_error_text(err.msg, text));
        return err.kind == DP_ERR_NOMEM ? 3 : 2;
    }
    return 0;
}

/* The run's word on its source names, after the summary: how many IPs were
 * named, and how many rollups may carry nulls only because a lookup was
 * still out (a later run's rollups of those IPs will carry the answer). */
void dp_run_enrich_summary(dp_enrich *e, dp_log *log) {
    if (!e) return;
    dp_enrich_stats st;
    dp_enrich_stats_get(e, &st);
    char more[128] = "";
    if (st.evicted || st.dropped)
        snprintf(more, sizeof more, "; past the most held in memory, %llu forgotten to make room, %llu dropped",
                 (unsigned long long)st.evicted, (unsigned long long)st.dropped);
    dp_log_info(log, "enrich",
                DP_LOG_FIELDS(DP_LOG_U64("ips", st.ips), DP_LOG_U64("named", st.named),
                              DP_LOG_U64("unnamed", st.unnamed), DP_LOG_U64("pending", st.pending),
                              DP_LOG_U64("dropped", st.dropped), DP_LOG_U64("evicted", st.evicted)),
                "%s%llu source IPs: %llu named, %llu without a name, %llu still being looked up%s%s",
                dp_log_format_of(log) == DP_LOG_PLAIN ? "  enrich:   " : "",
                (unsigned long long)st.ips, (unsigned long long)st.named, (unsigned long long)st.unnamed,
                (unsigned long long)st.pending,
                st.pending ? " (null in this run's rollups; see --enrich-wait)" : "", more);
}

void dp_run_enrich_close(dp_enrich *e) { dp_enrich_close(e); }
