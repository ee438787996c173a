/* aggregate_internal.h — what the files of aggregate/ share. */
#ifndef DP_AGGREGATE_INTERNAL_H
#define DP_AGGREGATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"

/* One step of the 64-bit hashes of intern.c and table.c: a word folded in,
 * multiplied (bits move up), shifted back down (bits move down). */
static inline uint64_t dp_hash_mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 31);
}

/* ---- bell.c: a sleeping consumer's doorbell (the argument is in bell.c) -- */

typedef struct dp_bell {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic int sleeping;
} dp_bell;

int dp_bell_init(dp_bell *b); /* 0 or -1 */
void dp_bell_free(dp_bell *b);
/* Producer side, after a push: wakes the consumer if it sleeps. */
void dp_bell_ring(dp_bell *b);
/* Consumer side: unless has_work(ctx), sleeps until rung or until
 * `deadline` (CLOCK_MONOTONIC seconds).  has_work runs with the bell armed,
 * so work pushed before it looks is seen, and work pushed after it looks
 * rings.  1 if the deadline passed, else 0 (rung, or work was there, or a
 * spurious wake-up). */
int dp_bell_wait(dp_bell *b, int (*has_work)(void *ctx), void *ctx, double deadline);

/* ---- intern.c ------------------------------------------------------------ */

typedef struct dp_intern {
    char **chunks;
    size_t n_chunks, chunk_used;
    const char **strs; /* id -> string; id 0 is NULL */
    uint32_t *lens;
    size_t n, cap_ids;
    uint32_t *slots;   /* open addressing: ids, UINT32_MAX = empty */
    size_t cap_slots;
    size_t bytes;      /* string bytes stored */
} dp_intern;

void dp_intern_init(dp_intern *in);
void dp_intern_free(dp_intern *in);
/* The id of s[0..n), adding it if new; 0 for NULL; UINT32_MAX when out of
 * memory. */
uint32_t dp_intern_put(dp_intern *in, const char *s, size_t n);
const char *dp_intern_str(const dp_intern *in, uint32_t id);

/* ---- ipseen.c: the source IPs a shard has asked enrichment about ------- */

typedef struct dp_ipseen_v4 {
    uint32_t addr;      /* the address's 4 bytes, as they lie */
    uint32_t enrich_id; /* what enrich/ gave for it (dp_enrich_id; 0: none); UINT32_MAX: a free slot */
} dp_ipseen_v4;

typedef struct dp_ipseen_v6 {
    uint8_t ip[16];
    uint32_t enrich_id;
    uint32_t used;      /* 0: a free slot */
} dp_ipseen_v6;

typedef struct dp_ipseen {
    dp_ipseen_v4 *v4;
    dp_ipseen_v6 *v6;
    size_t n4, cap4, n6, cap6; /* caps: powers of two, or 0 */
} dp_ipseen;

void dp_ipseen_init(dp_ipseen *s);
void dp_ipseen_free(dp_ipseen *s);
void dp_ipseen_clear(dp_ipseen *s); /* forgets every IP, keeps the memory */
/* Where the IP's enrich id is kept, the IP added with id 0 when new
 * (*is_new then 1); valid until the next put.  NULL when family is neither
 * 4 nor 6, or out of memory. */
uint32_t *dp_ipseen_put(dp_ipseen *s, const uint8_t ip[16], uint8_t family, int *is_new);
/* A hint: the IP will be put soon, so its slot is brought into the cache. */
void dp_ipseen_prefetch(const dp_ipseen *s, const uint8_t ip[16], uint8_t family);

/* ---- table.c: the rollup hash table ---------------------------------------- */

/* The string fields of a rollup key, in dp_rollup's order. */
enum { K_REPORTER, K_POLICY_DOMAIN, K_HEADER_FROM, K_DISPOSITION, K_DKIM, K_SPF, K_OVERRIDE,
       K_DKIM_DOMAIN, K_DKIM_SELECTOR, K_DKIM_RESULT, K_SPF_DOMAIN, K_SPF_RESULT, K__STRINGS };

/* 80 bytes, no padding holes, compared with memcmp. */
typedef struct dp_rollup_key {
    int64_t window_start;
    uint32_t str[K__STRINGS]; /* interned ids */
    uint8_t ip[16];
    uint8_t ip_family;
    uint8_t pad[7];
} dp_rollup_key;

typedef struct dp_rollup_entry {
    dp_rollup_key key;
    uint64_t messages;
    uint32_t records;
    uint32_t first_off, last_off; /* seconds after window_start */
    uint32_t enrich_id;           /* the source IP's dp_enrich_id (0: none); in what was padding */
} dp_rollup_entry;

/* Open addressing over a dense entry array: an index slot holds an entry
 * number, so growing the index never moves an entry, and a flush walks
 * the dense array.  Beside it, the slot keeps the top 32 bits of the key's
 * hash, so a probe that passes other keys' slots reads the index only, not
 * their entries. */
#define DP_TABLE_EMPTY UINT32_MAX /* an empty slot is all ones */
typedef struct dp_table_slot {
    uint32_t entry; /* entry number; DP_TABLE_EMPTY: none */
    uint32_t tag;   /* hash >> 32 */
} dp_table_slot;

typedef struct dp_rollup_table {
    dp_rollup_entry *entries;
    size_t n, cap_entries;
    dp_table_slot *index;
    size_t cap_index; /* a power of two */
} dp_rollup_table;

/* The key's hash: its low bits place it in the index, its top 32 bits are
 * the slot's tag. */
uint64_t dp_table_hash(const dp_rollup_key *k);
void dp_table_init(dp_rollup_table *t);
void dp_table_free(dp_rollup_table *t);
/* Empties the table; keeps memory unless it grew past `keep` entries. */
void dp_table_clear(dp_rollup_table *t, size_t keep);
/* The entry for key, created with zero measures if new; NULL when out of
 * memory. */
dp_rollup_entry *dp_table_upsert(dp_rollup_table *t, const dp_rollup_key *key);
/* Adds e's measures into the entry for e->key. 0 or -1 (memory). */
int dp_table_add(dp_rollup_table *t, const dp_rollup_entry *e);
size_t dp_table_bytes(const dp_rollup_table *t);

#endif
