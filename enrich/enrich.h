/* enrich — what is known of a source IP: its PTR name, that name's base
 * domain and service, its AS and country.
 *
 * A DMARC report names senders by IP address; an operator knows them by
 * name ("SendGrid", "our Microsoft 365").  This library names them, off the
 * path that counts records: `dp_enrich_request` only notes an IP and wakes
 * the resolver thread, `dp_enrich_get` reads what is known now, and neither
 * ever waits on the network.  A rollup flushed before its IP's lookup ends
 * carries nulls; a later one of the same IP carries the answer.
 *
 *   ptr          the PTR name, only when forward-confirmed: its A (IPv4) or
 *                AAAA (IPv6) records include the IP.  An unconfirmed name
 *                is not reported at all (whoever holds an IP range sets its
 *                PTR names, a spoofer included).
 *   base_domain  the registrable domain of ptr by the Public Suffix List,
 *                private section included (x.bucket.s3.amazonaws.com gives
 *                bucket.s3.amazonaws.com), libpsl's built-in list
 *   service      the known-senders map (known_senders.tsv, embedded at build
 *                time, then the user's files) matched on ptr: the longest
 *                DOMAIN equal to ptr or a parent of it
 *   asn, as_org, country   MaxMind DB files the user supplies (ASN and
 *                country databases; nothing is downloaded), read at once
 *
 * Lookups: c-ares on a thread of its own, at most max_inflight at once,
 * each query given up after about query_timeout seconds.  Answers are kept
 * for ttl seconds, NXDOMAIN, SERVFAIL, timeouts and unconfirmed names for
 * negative_ttl, in memory and (cache_dir) in an LMDB file, so that a restart
 * asks again only for what expired.  An expired entry is asked again; until
 * the new answer comes, `get` gives the stale one.  See README.md.
 *
 * Threads: request, get and settle may be called from any thread at once.
 */
#ifndef DP_ENRICH_H
#define DP_ENRICH_H

#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"
#include "dp_error.h"
#include "dp_log.h"
#include "dp_metrics.h"
#include "dp_report.h"

typedef struct dp_enrich dp_enrich;

typedef struct dp_enrich_config {
    const char *resolver;         /* "HOST:PORT" or "[V6]:PORT", HOST an address; NULL: the system's (/etc/resolv.conf) */
    const char *cache_dir;        /* LMDB folder of the PTR cache; NULL: in memory only */
    double ttl;                   /* seconds an answer is kept (default 86400) */
    double negative_ttl;          /* NXDOMAIN, SERVFAIL, timeout, unconfirmed (default 3600) */
    double query_timeout;         /* per query (default 2) */
    unsigned max_inflight;        /* lookups in flight at once (default 64) */
    int ptr;                      /* 0: no DNS at all (MMDB and nothing else) */
    const char *geoip_asn, *geoip_country;   /* MMDB files; NULL: none */
    const char *const *senders_files;        /* the user's, applied after the built-in map; later entries win */
    size_t n_senders_files;
    dp_log *log;                  /* common/dp_log.h */
    dp_metrics *metrics;          /* common/dp_metrics.h; NULL: none */
    size_t max_ips;               /* IPs held in memory (default 1048576); past it, a new one takes the place of one
                                   * not read for a while (counted), or, when all wait for a lookup, is dropped */
} dp_enrich_config;

void dp_enrich_config_default(dp_enrich_config *c);

/* Loads the senders map and the MMDB files, opens the cache and starts the
 * resolver thread.  NULL with err set when a file named in c cannot be
 * read (a senders file's bad line: FILE:LINE and the reason), --resolver
 * is no address, or memory runs out.  A cache that cannot be opened is a
 * warning: lookups are then kept in memory only. */
dp_enrich *dp_enrich_open(const dp_enrich_config *c, dp_error *err);

/* An IP's entry, for dp_enrich_read: valid until close; 0 is none. */
typedef uint32_t dp_enrich_id;

/* Asks for `ip` (canonical text, as rollups carry it) to be looked up, if it
 * is not known or pending, and gives its entry's id: a caller that keeps it
 * (a shard, beside its rollups) reads the answer later with no lookup.  0
 * when the IP is not held (past max_ips, out of memory, or nothing to know:
 * no DNS and no MMDB).  Never blocks on the network; cheap when already
 * known (a shard calls it the first time it sees an IP).  Thread-safe. */
dp_enrich_id dp_enrich_request(dp_enrich *e, const char *ip);

/* What is known of `ip` now (MMDB fields at once; PTR, base domain and
 * service once resolved).  Strings are copied into `arena` (the caller's,
 * reset by the caller), so they outlive cache updates; room for all of one
 * call's strings is reserved first, so they stay valid until the arena is
 * next appended to past its capacity or reset (a dp_buf moves when it
 * grows: take one call's strings before the next call).  Thread-safe, never
 * blocks on the network.  Also requests `ip` when it is unknown. */
void dp_enrich_get(dp_enrich *e, const char *ip, dp_source_info *out, dp_buf *arena);

/* dp_enrich_get for `ip` by the id dp_enrich_request gave for it, with no
 * table lookup and no shared lock (a flush reads one per rollup): the
 * entry's own flag, which only a writing resolver thread ever also wants.
 * Asks again for an expired entry.  When the id is 0, or its entry has
 * since gone to another IP (past max_ips), it is dp_enrich_get. */
void dp_enrich_read(dp_enrich *e, dp_enrich_id id, const char *ip, dp_source_info *out, dp_buf *arena);

/* A hint: id will be read soon, so its entry is brought into the cache (a
 * flush reads entries at random, one per rollup). */
void dp_enrich_prefetch(dp_enrich *e, dp_enrich_id id);

/* Waits up to `seconds` for the lookups asked for so far (tests; an optional
 * wait before a batch run's final flush).  0 when none is left, -1 when
 * time ran out first. */
int dp_enrich_settle(dp_enrich *e, double seconds);

/* What the enricher knows now, for a run's summary: the IPs held, those
 * named (a confirmed PTR), those with no name (NXDOMAIN, an unconfirmed
 * name, a failed lookup), those still waiting; and, past max_ips, those
 * forgotten to make room and those dropped. */
typedef struct dp_enrich_stats {
    uint64_t ips, named, unnamed, pending, dropped, evicted;
} dp_enrich_stats;
void dp_enrich_stats_get(dp_enrich *e, dp_enrich_stats *out);

/* Stops the thread, cancelling the lookups in flight (promptly, whatever the
 * resolver does); writes nothing more.  NULL: nothing. */
void dp_enrich_close(dp_enrich *e);

#endif
