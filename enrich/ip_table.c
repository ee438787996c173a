/* ip_table — see ip_table.h.
 *
 * Entries come in chunks of CHUNK, allocated as the table fills and never
 * moved or freed before the table, so an id (1 + the entry's index) finds
 * its entry with two loads and no lock: the chunk pointer is published
 * with release order before any id in that chunk is handed out.
 */
#include "ip_table.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 12
#define CHUNK ((size_t)1 << CHUNK_BITS)

int dp_ip_table_init(dp_ip_table *t, size_t max) {
    memset(t, 0, sizeof *t);
    t->max = max ? max : 1;
    t->chunks = calloc((t->max + CHUNK - 1) / CHUNK, sizeof *t->chunks);
    return t->chunks ? 0 : -1;
}

void dp_ip_table_free(dp_ip_table *t) {
    for (size_t i = 0; i < t->n; i++) {
        dp_ip_table_entry *en = dp_ip_table_at(t, (uint32_t)(i + 1));
        free(en->name);
        free(en->as_org);
    }
    for (size_t c = 0; t->chunks && c * CHUNK < t->max; c++) free(atomic_load(&t->chunks[c]));
    free(t->chunks);
    dp_map_free(&t->map);
    memset(t, 0, sizeof *t);
}

dp_ip_table_entry *dp_ip_table_get(const dp_ip_table *t, const char *ip) { return dp_map_get(&t->map, ip); }

dp_ip_table_entry *dp_ip_table_at(dp_ip_table *t, uint32_t id) {
    size_t i = (size_t)id - 1;
    dp_ip_table_entry *chunk = atomic_load_explicit(&t->chunks[i >> CHUNK_BITS], memory_order_acquire);
    return &chunk[i & (CHUNK - 1)];
}

void dp_ip_table_prefetch(dp_ip_table *t, uint32_t id) {
    const char *en = (const char *)dp_ip_table_at(t, id);
    __builtin_prefetch(en, 1);
    __builtin_prefetch(en + 64, 1);
}

void dp_ip_table_lock(dp_ip_table_entry *en) {
    while (atomic_exchange_explicit(&en->busy, 1, memory_order_acquire)) sched_yield();
}

void dp_ip_table_unlock(dp_ip_table_entry *en) { atomic_store_explicit(&en->busy, 0, memory_order_release); }

int dp_ip_table_lock_ip(dp_ip_table_entry *en, const char *ip) {
    dp_ip_table_lock(en);
    if (strcmp(en->ip, ip) != 0) {
        dp_ip_table_unlock(en);
        return 0;
    }
    en->used = 1;
    return 1;
}

/* The next free entry, its chunk allocated if need be; NULL when out of
 * memory.  Not counted in t->n until filled. */
static dp_ip_table_entry *fresh(dp_ip_table *t) {
    size_t i = t->n;
    dp_ip_table_entry *chunk = atomic_load_explicit(&t->chunks[i >> CHUNK_BITS], memory_order_relaxed);
    if (!chunk) {
        if (!(chunk = aligned_alloc(64, CHUNK * sizeof *chunk))) return NULL;
        memset(chunk, 0, CHUNK * sizeof *chunk);
        atomic_store_explicit(&t->chunks[i >> CHUNK_BITS], chunk, memory_order_release);
    }
    dp_ip_table_entry *en = &chunk[i & (CHUNK - 1)];
    en->id = (uint32_t)(i + 1);
    return en;
}

/* The entry the clock hand takes: the first not waiting for a lookup and
 * either expired or not read since the hand last passed (those read are
 * spared once).  Two turns at most; NULL when every entry waits. */
static dp_ip_table_entry *sweep(dp_ip_table *t, double now) {
    for (size_t step = 0; step < 2 * t->n; step++) {
        dp_ip_table_entry *en = dp_ip_table_at(t, (uint32_t)(t->hand + 1));
        t->hand = (t->hand + 1) % t->n;
        if (en->queued) continue;
        dp_ip_table_lock(en);
        int spare = en->used && !(en->known && en->expires <= now);
        en->used = 0;
        dp_ip_table_unlock(en);
        if (!spare) return en;
    }
    return NULL;
}

dp_ip_table_entry *dp_ip_table_add(dp_ip_table *t, const char *ip, const dp_geoip_info *g, double now, int *evicted) {
    *evicted = 0;
    if (strlen(ip) >= DP_IP_TABLE_IP_MAX) return NULL;
    int is_new = t->n < t->max;
    dp_ip_table_entry *en = is_new ? fresh(t) : sweep(t, now);
    if (!en) return NULL;
    char *as_org = NULL;
    if (g->as_org[0] && !(as_org = strdup(g->as_org))) return NULL;
    /* the new key first: when memory runs out there, the old IP keeps its entry */
    if (!dp_map_put(&t->map, ip, en)) {
        free(as_org);
        return NULL;
    }
    if (!is_new) {
        dp_map_remove(&t->map, en->ip);
        *evicted = 1;
    }
    dp_ip_table_lock(en);
    char *old_name = en->name, *old_org = en->as_org;
    en->known = 0;
    en->status = 0;
    en->used = 1; /* a turn of the hand's grace, to be read at least once */
    en->expires = 0;
    en->name = NULL;
    en->base = NULL;
    en->service = NULL;
    en->asn = g->asn;
    memcpy(en->country, g->country, sizeof en->country);
    en->as_org = as_org;
    snprintf(en->ip, sizeof en->ip, "%s", ip);
    dp_ip_table_unlock(en);
    free(old_name);
    free(old_org);
    if (is_new) t->n++;
    return en;
}

void dp_ip_table_each(dp_ip_table *t, void (*fn)(void *ctx, dp_ip_table_entry *en), void *ctx) {
    for (size_t i = 0; i < t->n; i++) fn(ctx, dp_ip_table_at(t, (uint32_t)(i + 1)));
}
