/* ip_table — the source IPs enrich/ holds, each in an entry that never
 * moves, found by address (a hash map) or by id (chunks of entries).
 *
 * Memory is bounded by `max` entries.  When all are taken, a new IP takes
 * the entry of one that has not been read for a while (a CLOCK sweep: an
 * entry read since the hand last passed is spared once; an expired one is
 * taken at once; one waiting for a lookup never).  Its id then stands for
 * the new IP, so a reader by id says which address it wants and is told
 * when the entry now holds another (dp_ip_table_lock_ip).
 *
 * Locking, by the caller (enrich.c): the map, the chunk list, `queued`
 * and the adding of entries under the table's lock for writing; each
 * entry's answer, its address and its MMDB fields also under the entry's
 * own flag, so that a reader holding that flag alone sees them whole.
 */
#ifndef DP_IP_TABLE_H
#define DP_IP_TABLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_map.h"
#include "geoip.h"
#include "senders.h"

#define DP_IP_TABLE_IP_MAX 48 /* canonical text of an IPv6 address, NUL included */

/* Two cache lines, aligned: what a read by id needs (the flag, the answer,
 * the address it checks) is fetched with two lines at most. */
typedef struct dp_ip_table_entry {
    _Alignas(64) atomic_uchar busy; /* the entry's flag */
    unsigned char known;     /* status and expires are meaningful */
    unsigned char status;    /* dp_resolver_status */
    unsigned char used;      /* read since the clock hand last passed */
    unsigned char queued;    /* waiting for or in a lookup (the table's lock only) */
    uint32_t id;             /* 1-based; the same for the entry's whole life */
    double expires;          /* wall clock */
    char *name;              /* confirmed PTR name (ANSWERED), owned */
    const char *base;        /* its registrable domain, inside name, or NULL */
    const dp_senders_entry *service;
    uint32_t asn;            /* MMDB, set with the address */
    char country[8];
    char *as_org;            /* owned, or NULL */
    char ip[DP_IP_TABLE_IP_MAX];
} dp_ip_table_entry;

typedef struct dp_ip_table {
    dp_map map;                        /* ip -> entry */
    dp_ip_table_entry *_Atomic *chunks; /* room for max entries, filled as needed */
    size_t n, max, hand;
} dp_ip_table;

/* 0, or -1 when out of memory.  max: at least 1. */
int dp_ip_table_init(dp_ip_table *t, size_t max);
void dp_ip_table_free(dp_ip_table *t);

dp_ip_table_entry *dp_ip_table_get(const dp_ip_table *t, const char *ip);
/* The entry of id (from an entry's `id`); any thread, no table lock. */
dp_ip_table_entry *dp_ip_table_at(dp_ip_table *t, uint32_t id);
/* Brings id's entry into the cache ahead of a read. */
void dp_ip_table_prefetch(dp_ip_table *t, uint32_t id);

/* An entry for ip, its MMDB fields from g, nothing else known: a new one,
 * or, when all max are taken, one the clock hand takes from another IP
 * (*evicted then 1).  NULL when out of memory, or when every entry waits
 * for a lookup. */
dp_ip_table_entry *dp_ip_table_add(dp_ip_table *t, const char *ip, const dp_geoip_info *g, double now, int *evicted);

void dp_ip_table_lock(dp_ip_table_entry *en);
void dp_ip_table_unlock(dp_ip_table_entry *en);
/* Takes en's flag when en holds ip (marking it read) and returns 1; else
 * returns 0 without the flag. */
int dp_ip_table_lock_ip(dp_ip_table_entry *en, const char *ip);

/* Calls fn on every entry in use. */
void dp_ip_table_each(dp_ip_table *t, void (*fn)(void *ctx, dp_ip_table_entry *en), void *ctx);

#endif
