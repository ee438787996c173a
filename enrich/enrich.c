/* enrich — the public object: the table of source IPs and what is known
 * of them, the queue to the resolver thread, and the answers.
 *
 * An IP's entry is made by the first request (or get), in a table of
 * entries that never move (ip_table.c), so the queue holds pointers and a
 * caller may keep its id.  State, under the table's lock: `queued` while
 * it waits for or is in a lookup, `known` once a lookup (or the cache) has
 * said something, with its status, name and expiry.  Requests and gets
 * only touch the table and the queue: the cache is read and written by the
 * resolver thread (its `next` hook asks the cache before DNS), so no
 * caller ever waits on a disk or the network, and the lock is held for a
 * hash lookup at most.
 *
 * Reading by id (a flush: once per rollup) takes no shared lock at all:
 * the answer's fields are changed only under the table's lock for writing
 * *and* the entry's own flag, so a reader holding either sees them whole.
 * The flag of one entry is wanted by its IP's flushing thread and, rarely,
 * the resolver thread, so it is as good as never contended.  The MMDB
 * fields are found once, when the entry is made.
 *
 * Expiry is by the wall clock, since it outlives the process in the cache.
 * Answers are kept for ttl (the record's own TTL is not read: the PTR names
 * of mail servers change rarely, and one setting is easier to reason
 * about); NXDOMAIN, SERVFAIL, REFUSED, timeouts, unreachable servers and
 * unconfirmed names for negative_ttl.  An expired entry is queued again by
 * the next request or get, and keeps its answer until the new one comes.
 *
 * Memory is bounded: at most max_ips entries (the queue never holds more).
 * Past that a new IP takes the entry of one not read for a while (counted,
 * and said once): a long-running worker keeps naming the IPs it meets.  A
 * reader by id says which IP it wants, and one whose entry went to another
 * IP is answered by address instead.  Only when every entry waits for a
 * lookup is a new IP dropped (counted, warned about once).
 */
#include "enrich.h"

#include <errno.h>
#include <sched.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_clock.h"
#include "geoip.h"
#include "ip_table.h"
#include "ptr_cache.h"
#include "resolver.h"
#include "senders.h"

/* A resolver that timed out or could not be reached is left alone this
 * long, doubling while it stays away: the IPs asked for meanwhile are
 * answered "unreachable" at once, and asked again after it, instead of
 * each costing a query that fails (a dead resolver then costs a run next
 * to nothing).  Such failures are not written to the cache: an outage
 * must not hide the IPs it met for negative_ttl once the resolver is back. */
#define BACKOFF_FIRST 5.0
#define BACKOFF_MAX 300.0

/* At most this many entries, whatever max_ips says. */
#define MAX_IPS_CAP ((size_t)1 << 30)

/* The cache's batch is committed at this many writes, or this often. */
#define COMMIT_PUTS 256
#define COMMIT_SECONDS 1.0

typedef dp_ip_table_entry entry;

enum { RESULT_CACHE_HIT = DP_RESOLVER_N_STATUS, N_RESULTS };
static const char *const RESULT_LABELS[N_RESULTS] = {"answered", "unconfirmed", "nxdomain", "servfail",   "refused",
                                                    "timeout",  "unreachable", "error",    "cache_hit"};

struct dp_enrich {
    double ttl, negative_ttl;
    size_t max_ips;
    dp_log *log;
    char resolver_text[128];
    const psl_ctx_t *psl;
    dp_senders *senders;
    dp_geoip *geo;
    /* The table, the queue and the entries: readers (a flush asking what
     * is known, a shard asking for an IP already asked for) share it, so
     * that a million rollups do not queue up behind one lock. */
    pthread_rwlock_t lock;
    dp_ip_table table;
    entry **queue;            /* a ring */
    size_t q_head, q_len, q_cap;
    size_t outstanding;       /* entries queued (waiting or in flight) */
    uint64_t dropped;         /* IPs not held: every entry waited for a lookup */
    uint64_t evicted;         /* entries taken over by another IP */
    atomic_int warned_full, warned_evict;

    /* the resolver thread's own */
    dp_resolver *resolver;
    dp_ptr_cache *cache;
    double last_commit;
    int warned_resolver;
    int heard;                /* the resolver has answered something (any rcode) */
    _Atomic double down_until; /* the resolver timed out or could not be reached: */
    double backoff;           /* no query before this, doubling up to BACKOFF_MAX */

    dp_metric *m_lookups, *m_dropped, *m_evicted, *m_queue;
};

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* For a reader's check of expiry, a few milliseconds off is nothing. */
static double wall_now_coarse(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void dp_enrich_config_default(dp_enrich_config *c) {
    memset(c, 0, sizeof *c);
    c->ttl = 86400;
    c->negative_ttl = 3600;
    c->query_timeout = 2;
    c->max_inflight = 64;
    c->ptr = 1;
    c->max_ips = (size_t)1 << 20;
}

/* ---- the table (callers hold mu) ---------------------------------------- */

static void set_queue_gauge(dp_enrich *e) {
    dp_metrics_set(e->m_queue, 0, (double)e->outstanding);
}

static int enqueue(dp_enrich *e, entry *en) {
    if (e->q_len == e->q_cap) {
        size_t old = e->q_cap;
        entry **grown = dp_buf_grow_array(e->queue, &e->q_cap, e->q_len + 1, sizeof *e->queue);
        if (!grown) return -1;
        e->queue = grown;
        /* The ring was full: what wrapped round to the front moves after
         * the old end, into the new room (at least as large). */
        memcpy(e->queue + old, e->queue, e->q_head * sizeof *e->queue);
    }
    e->queue[(e->q_head + e->q_len) % e->q_cap] = en;
    e->q_len++;
    en->queued = 1;
    e->outstanding++;
    set_queue_gauge(e);
    return 0;
}

/* Callers hold the lock for writing. */
static void apply(dp_enrich *e, entry *en, dp_resolver_status status, const char *name, double expires) {
    char *copy = NULL;
    if (status == DP_RESOLVER_ANSWERED && name && !(copy = strdup(name))) status = DP_RESOLVER_ERROR;
    const char *base = copy ? psl_registrable_domain(e->psl, copy) : NULL;
    const dp_senders_entry *service = copy ? dp_senders_match(e->senders, copy) : NULL;
    dp_ip_table_lock(en);
    char *old = en->name;
    en->name = copy;
    en->base = base;
    en->service = service;
    en->status = (unsigned char)status;
    en->expires = expires;
    en->known = 1;
    dp_ip_table_unlock(en);
    free(old);
}

/* The resolver is away until `down`: en is answered "unreachable" until
 * then, keeping a name it had, and asked again after.  Callers hold the
 * lock for writing. */
static void mark_away(dp_enrich *e, entry *en, double down) {
    if (!(en->known && en->name)) {
        apply(e, en, DP_RESOLVER_UNREACHABLE, NULL, down);
    } else {
        dp_ip_table_lock(en);
        en->expires = down;
        dp_ip_table_unlock(en);
    }
    dp_metrics_add(e->m_lookups, DP_RESOLVER_UNREACHABLE, 1);
}

/* Whether en needs nothing from ask(): asked for already, or known and
 * fresh.  Callers hold the lock, for reading at least. */
static int settled_entry(const entry *en, double now) {
    return en && (en->queued || !en->known || en->expires > now);
}

/* Queues en for a lookup, unless the resolver is away.  *wake: the
 * resolver must be woken (the queue was empty).  Callers hold the lock for
 * writing. */
static void look_up(dp_enrich *e, entry *en, int *wake) {
    if (!e->resolver) return;
    /* the resolver is away: no query until its back-off ends */
    double down = atomic_load(&e->down_until);
    if (down > wall_now()) {
        mark_away(e, en, down);
        return;
    }
    size_t before = e->q_len;
    if (enqueue(e, en) == 0 && before == 0) *wake = 1;
}

/* look_up for an entry made before, when expired and not queued yet. */
static void ask(dp_enrich *e, entry *en, int *wake) {
    if (!settled_entry(en, wall_now())) look_up(e, en, wake);
}

/* The entry of ip, made (its MMDB fields from g) and queued when new,
 * queued again when expired; NULL when not held.  Callers hold the lock
 * for writing. */
static entry *touch(dp_enrich *e, const char *ip, const dp_geoip_info *g, int *wake) {
    entry *en = dp_ip_table_get(&e->table, ip);
    if (en) {
        ask(e, en, wake);
        return en;
    }
    int evicted;
    if (!(en = dp_ip_table_add(&e->table, ip, g, wall_now(), &evicted))) {
        if (e->table.n < e->max_ips) return NULL; /* out of memory */
        dp_metrics_add(e->m_dropped, 0, 1);
        e->dropped++;
        if (!atomic_exchange(&e->warned_full, 1))
            dp_log_warn(e->log, "enrich", DP_LOG_FIELDS(DP_LOG_U64("max_ips", e->max_ips)),
                        "dmarcpipe: enrich: all %zu source IPs held in memory wait for a lookup; new ones are "
                        "not looked up until some are answered",
                        e->max_ips);
        return NULL;
    }
    if (evicted) {
        dp_metrics_add(e->m_evicted, 0, 1);
        e->evicted++;
        if (!atomic_exchange(&e->warned_evict, 1))
            dp_log_info(e->log, "enrich", DP_LOG_FIELDS(DP_LOG_U64("max_ips", e->max_ips)),
                        "dmarcpipe: enrich: %zu source IPs held in memory; from now on a new one takes the place "
                        "of one not met for a while",
                        e->max_ips);
    }
    look_up(e, en, wake);
    return en;
}

static void finish_entry(dp_enrich *e, entry *en) {
    en->queued = 0;
    e->outstanding--;
    set_queue_gauge(e);
}

/* ---- the resolver thread's hooks ---------------------------------------- */

/* The cache's error (it names the folder), then what follows from it. */
static void warn_cache(dp_log *log, const dp_error *err) {
    char text[DP_ERROR_TEXT_MAX];
    dp_log_warn(log, "enrich", DP_LOG_FIELDS(DP_LOG_STR("error", err->msg)), "dmarcpipe: enrich: %s",
                dp_error_text(err->msg, text));
    dp_log_warn(log, "enrich", DP_LOG_NONE, "dmarcpipe: enrich: the cache is off; lookups are kept in memory only");
}

static void cache_failed(dp_enrich *e, const dp_error *err) {
    warn_cache(e->log, err);
    dp_ptr_cache_close(e->cache);
    e->cache = NULL;
}

/* The resolver is away: a queued en is settled without a query. */
static void hold_back(dp_enrich *e, entry *en) {
    pthread_rwlock_wrlock(&e->lock);
    mark_away(e, en, e->down_until);
    if (en->queued) finish_entry(e, en);
    pthread_rwlock_unlock(&e->lock);
}

static int hook_next(void *ctx, char ip[DP_RESOLVER_IP_MAX]) {
    dp_enrich *e = ctx;
    for (;;) {
        pthread_rwlock_wrlock(&e->lock);
        if (e->q_len == 0) {
            pthread_rwlock_unlock(&e->lock);
            return 0;
        }
        entry *en = e->queue[e->q_head];
        e->q_head = (e->q_head + 1) % e->q_cap;
        e->q_len--;
        snprintf(ip, DP_RESOLVER_IP_MAX, "%s", en->ip);
        int known = en->known;
        pthread_rwlock_unlock(&e->lock);
        /* A first request: what an earlier run found may still hold.  The
         * entry cannot go away meanwhile: entries live until close. */
        if (!known && e->cache) {
            dp_ptr_cache_entry ce;
            dp_error err;
            int rc = dp_ptr_cache_get(e->cache, ip, &ce, &err);
            if (rc < 0) cache_failed(e, &err);
            if (rc == 1) {
                double now = wall_now();
                pthread_rwlock_wrlock(&e->lock);
                apply(e, en, ce.status, ce.name, ce.expires);
                if (ce.expires > now) finish_entry(e, en);
                pthread_rwlock_unlock(&e->lock);
                if (ce.expires > now) {
                    dp_metrics_add(e->m_lookups, RESULT_CACHE_HIT, 1);
                    continue;
                }
            }
        }
        if (wall_now() < e->down_until) {
            hold_back(e, en);
            continue;
        }
        return 1;
    }
}

static void warn_resolver(dp_enrich *e, dp_resolver_status status) {
    if (e->warned_resolver) return;
    e->warned_resolver = 1;
    const char *what = status == DP_RESOLVER_TIMEOUT ? "did not answer in time" : "cannot be reached";
    dp_log_warn(e->log, "enrich",
                DP_LOG_FIELDS(DP_LOG_STR("resolver", e->resolver_text), DP_LOG_STR("result", dp_resolver_status_name(status))),
                "dmarcpipe: enrich: the resolver %s %s; source names stay null until it answers", e->resolver_text,
                what);
}

/* A failure of the resolver's own (not an answer about the IP). */
static int transient(dp_resolver_status s) {
    return s == DP_RESOLVER_SERVFAIL || s == DP_RESOLVER_REFUSED || s == DP_RESOLVER_TIMEOUT ||
           s == DP_RESOLVER_UNREACHABLE || s == DP_RESOLVER_ERROR;
}

static void hook_done(void *ctx, const char *ip, dp_resolver_status status, const char *name) {
    dp_enrich *e = ctx;
    double now = wall_now();
    double expires = now + (status == DP_RESOLVER_ANSWERED ? e->ttl : e->negative_ttl);
    dp_metrics_add(e->m_lookups, status, 1);
    int away = status == DP_RESOLVER_TIMEOUT || status == DP_RESOLVER_UNREACHABLE;
    if (away) {
        warn_resolver(e, status);
        if (now >= e->down_until) {
            e->backoff = e->backoff > 0 ? e->backoff * 2 : BACKOFF_FIRST;
            if (e->backoff > BACKOFF_MAX) e->backoff = BACKOFF_MAX;
            if (e->backoff > e->negative_ttl) e->backoff = e->negative_ttl;
            e->down_until = now + e->backoff;
        }
        expires = e->down_until > now ? e->down_until : now + e->backoff;
    } else if (status != DP_RESOLVER_ERROR) {
        e->heard = 1;
        e->backoff = 0;
        e->down_until = 0;
    }
    dp_ptr_cache_entry ce = {expires, status, ""};
    if (name) snprintf(ce.name, sizeof ce.name, "%s", name);
    pthread_rwlock_wrlock(&e->lock);
    entry *en = dp_ip_table_get(&e->table, ip);
    if (en) {
        /* A refresh that the resolver failed keeps the answer it had: the
         * name is asked again after negative_ttl. */
        if (transient(status) && en->known && en->name) {
            ce.status = DP_RESOLVER_ANSWERED;
            snprintf(ce.name, sizeof ce.name, "%s", en->name);
        }
        apply(e, en, ce.status, ce.status == DP_RESOLVER_ANSWERED ? ce.name : NULL, expires);
        if (en->queued) finish_entry(e, en);
    }
    pthread_rwlock_unlock(&e->lock);
    if (e->cache && !away) {
        dp_error err;
        if (dp_ptr_cache_put(e->cache, ip, &ce, &err) != 0) cache_failed(e, &err);
    }
}

static void hook_tick(void *ctx, int last) {
    dp_enrich *e = ctx;
    if (!e->cache) return;
    double now = dp_clock_seconds();
    unsigned min = last || now - e->last_commit >= COMMIT_SECONDS ? 0 : COMMIT_PUTS;
    dp_error err;
    if (dp_ptr_cache_commit(e->cache, min, &err) != 0) cache_failed(e, &err);
    if (min == 0) e->last_commit = now;
}

/* ---- the public calls ------------------------------------------------------ */

static void register_metrics(dp_enrich *e, dp_metrics *m) {
    e->m_lookups = dp_metrics_counter1(m, "dmarcpipe_enrich_lookups_total",
                                       "Source IP lookups by result (cache_hit: answered by the cache, no query).",
                                       "result", RESULT_LABELS, N_RESULTS);
    e->m_dropped = dp_metrics_counter(m, "dmarcpipe_enrich_dropped_total",
                                      "Source IPs not looked up: every IP held in memory waited for a lookup.");
    e->m_evicted = dp_metrics_counter(m, "dmarcpipe_enrich_evicted_total",
                                      "Source IPs forgotten to make room for new ones, the most being held in memory.");
    e->m_queue = dp_metrics_gauge(m, "dmarcpipe_enrich_queue_length",
                                  "Source IPs waiting for a lookup or in one.");
}

dp_enrich *dp_enrich_open(const dp_enrich_config *c, dp_error *err) {
    dp_enrich *e = calloc(1, sizeof *e);
    if (!e) {
        dp_error_set(err, DP_ERR_NOMEM, "enrichment: out of memory");
        return NULL;
    }
    pthread_rwlock_init(&e->lock, NULL);
    atomic_init(&e->warned_full, 0);
    atomic_init(&e->warned_evict, 0);
    e->ttl = c->ttl > 0 ? c->ttl : 86400;
    e->negative_ttl = c->negative_ttl > 0 ? c->negative_ttl : 3600;
    e->max_ips = c->max_ips ? c->max_ips : (size_t)1 << 20;
    if (e->max_ips > MAX_IPS_CAP) e->max_ips = MAX_IPS_CAP;
    e->log = c->log;
    e->psl = psl_builtin();
    snprintf(e->resolver_text, sizeof e->resolver_text, "%s",
             c->resolver ? c->resolver : "of the system (/etc/resolv.conf)");
    register_metrics(e, c->metrics);

    if (dp_ip_table_init(&e->table, e->max_ips) != 0 || !(e->senders = dp_senders_new())) {
        dp_error_set(err, DP_ERR_NOMEM, "enrichment: out of memory");
        goto fail;
    }
    if (dp_senders_load_text(e->senders, dp_known_senders_data_text, strlen(dp_known_senders_data_text),
                             "known_senders.tsv (built in)", err) != 0)
        goto fail;
    for (size_t i = 0; i < c->n_senders_files; i++)
        if (dp_senders_load_file(e->senders, c->senders_files[i], err) != 0) goto fail;
    if (c->geoip_asn || c->geoip_country) {
        if (!(e->geo = dp_geoip_open(c->geoip_asn, c->geoip_country, err))) goto fail;
    }
    if (!c->ptr) return e;

    if (c->cache_dir) {
        dp_error cerr;
        if (!(e->cache = dp_ptr_cache_open(c->cache_dir, &cerr))) {
            warn_cache(e->log, &cerr);
        }
    }
    e->last_commit = dp_clock_seconds();
    dp_resolver_config rc = {c->resolver, c->query_timeout, c->max_inflight};
    dp_resolver_hooks hooks = {e, hook_next, hook_done, hook_tick};
    if (!(e->resolver = dp_resolver_start(&rc, &hooks, err))) goto fail;
    return e;
fail:
    dp_enrich_close(e);
    return NULL;
}

dp_enrich_id dp_enrich_request(dp_enrich *e, const char *ip) {
    if (!e || (!e->resolver && !e->geo) || !ip || !*ip) return 0;
    pthread_rwlock_rdlock(&e->lock);
    entry *en = dp_ip_table_get(&e->table, ip);
    dp_enrich_id id = en ? en->id : 0;
    int settled = en && settled_entry(en, wall_now());
    pthread_rwlock_unlock(&e->lock);
    if (settled) return id;
    /* the MMDB files are read before the lock is taken: they need none */
    dp_geoip_info g;
    dp_geoip_lookup(en ? NULL : e->geo, ip, &g);
    int wake = 0;
    pthread_rwlock_wrlock(&e->lock);
    /* looked up again: another thread may have made it, or given its
     * entry to another IP, meanwhile */
    if (en && !(en = dp_ip_table_get(&e->table, ip))) dp_geoip_lookup(e->geo, ip, &g);
    en = touch(e, ip, &g, &wake);
    id = en ? en->id : 0;
    pthread_rwlock_unlock(&e->lock);
    if (wake) dp_resolver_wake(e->resolver);
    return id;
}

/* Appends s with its NUL to the arena (room reserved), giving the copy. */
static const char *put(dp_buf *arena, const char *s) {
    if (!s || !*s) return NULL;
    size_t at = arena->len;
    dp_buf_append(arena, s, strlen(s) + 1);
    return arena->failed ? NULL : arena->data + at;
}

/* Fills out from what is copied of an entry (or the MMDB files at once). */
static void fill(dp_source_info *out, dp_buf *arena, uint32_t asn, const char *as_org, const char *country,
                 const char *name, int has_base, size_t base_at, const dp_senders_entry *svc) {
    size_t need = strlen(name) + 1 + strlen(as_org) + 1 + strlen(country) + 1;
    if (svc) need += strlen(svc->service) + 1 + strlen(svc->type) + 1;
    if (dp_buf_reserve(arena, need) != 0) return;
    out->asn = asn;
    out->as_org = put(arena, as_org);
    out->country = put(arena, country);
    out->ptr = put(arena, name);
    if (out->ptr && has_base) out->base_domain = out->ptr + base_at;
    if (svc) {
        out->service = put(arena, svc->service);
        out->service_type = put(arena, svc->type);
    }
}

/* What en (holding ip, its flag taken by the caller) says, into out; the
 * flag is let go here.  An expired answer is asked for again. */
static void read_locked(dp_enrich *e, entry *en, const char *ip, dp_source_info *out, dp_buf *arena) {
    char name[DP_RESOLVER_NAME_MAX] = "", as_org[256] = "", country[sizeof en->country];
    size_t base_at = 0;
    int has_base = 0, known = en->known;
    const dp_senders_entry *svc = NULL;
    double expires = en->expires;
    uint32_t asn = en->asn;
    if (known && en->name) {
        snprintf(name, sizeof name, "%s", en->name);
        if (en->base) {
            has_base = 1;
            base_at = (size_t)(en->base - en->name);
        }
        svc = en->service;
    }
    if (en->as_org) snprintf(as_org, sizeof as_org, "%s", en->as_org);
    memcpy(country, en->country, sizeof country);
    dp_ip_table_unlock(en);
    if (e->resolver && known && expires <= wall_now_coarse()) {
        /* expired: asked again; the old answer serves until the new one */
        int wake = 0;
        pthread_rwlock_wrlock(&e->lock);
        if ((en = dp_ip_table_get(&e->table, ip))) ask(e, en, &wake);
        pthread_rwlock_unlock(&e->lock);
        if (wake) dp_resolver_wake(e->resolver);
    }
    fill(out, arena, asn, as_org, country, name, has_base, base_at, svc);
}

void dp_enrich_read(dp_enrich *e, dp_enrich_id id, const char *ip, dp_source_info *out, dp_buf *arena) {
    memset(out, 0, sizeof *out);
    if (!e || !ip || !*ip) return;
    entry *en = id ? dp_ip_table_at(&e->table, id) : NULL;
    if (en && dp_ip_table_lock_ip(en, ip)) read_locked(e, en, ip, out, arena);
    else dp_enrich_get(e, ip, out, arena); /* no id, or its entry went to another IP since */
}

void dp_enrich_prefetch(dp_enrich *e, dp_enrich_id id) {
    if (e && id) dp_ip_table_prefetch(&e->table, id);
}

void dp_enrich_get(dp_enrich *e, const char *ip, dp_source_info *out, dp_buf *arena) {
    memset(out, 0, sizeof *out);
    if (!e || !ip || !*ip) return;
    dp_enrich_id id = dp_enrich_request(e, ip);
    entry *en = id ? dp_ip_table_at(&e->table, id) : NULL;
    if (en && dp_ip_table_lock_ip(en, ip)) {
        read_locked(e, en, ip, out, arena);
        return;
    }
    /* not held (past max_ips, or memory): the MMDB files can still answer */
    dp_geoip_info g;
    dp_geoip_lookup(e->geo, ip, &g);
    fill(out, arena, g.asn, g.as_org, g.country, "", 0, 0, NULL);
}

/* Polled rather than signalled: readers share the lock, and a wait of a
 * few milliseconds more is nothing to a caller that waits for the DNS. */
int dp_enrich_settle(dp_enrich *e, double seconds) {
    if (!e || !e->resolver) return 0;
    double end = dp_clock_seconds() + (seconds > 0 ? seconds : 0);
    for (;;) {
        pthread_rwlock_rdlock(&e->lock);
        int left = e->outstanding > 0;
        pthread_rwlock_unlock(&e->lock);
        if (!left) return 0;
        if (dp_clock_seconds() >= end) return -1;
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

static void count_entry(void *ctx, entry *en) {
    dp_enrich_stats *st = ctx;
    st->ips++;
    if (en->known && en->name) st->named++;
    else if (en->known) st->unnamed++;
    if (en->queued) st->pending++;
}

void dp_enrich_stats_get(dp_enrich *e, dp_enrich_stats *out) {
    memset(out, 0, sizeof *out);
    if (!e) return;
    pthread_rwlock_wrlock(&e->lock);
    dp_ip_table_each(&e->table, count_entry, out);
    out->dropped = e->dropped;
    out->evicted = e->evicted;
    pthread_rwlock_unlock(&e->lock);
}

void dp_enrich_close(dp_enrich *e) {
    if (!e) return;
    dp_resolver_stop(e->resolver);
    /* A run shorter than one query's timeout never hears the resolver time
     * out: say so here, once, rather than leave the nulls unexplained. */
    if (e->resolver && e->outstanding > 0 && !e->heard && !e->warned_resolver)
        dp_log_warn(e->log, "enrich",
                    DP_LOG_FIELDS(DP_LOG_STR("resolver", e->resolver_text), DP_LOG_U64("unanswered", e->outstanding)),
                    "dmarcpipe: enrich: the resolver %s answered none of %zu lookups before the end; their source "
                    "names stay null",
                    e->resolver_text, e->outstanding);
    dp_ptr_cache_close(e->cache);
    dp_geoip_close(e->geo);
    dp_senders_free(e->senders);
    dp_ip_table_free(&e->table);
    free(e->queue);
    pthread_rwlock_destroy(&e->lock);
    free(e);
}
