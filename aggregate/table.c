/* table — the rollup hash table a shard owns.
 *
 * Keys are fixed 80-byte structs of interned ids, so hashing is a few
 * multiplies and comparison is memcmp.  Entries sit in a dense array and
 * the open-addressing index (linear probing, load <= 0.7) holds 32-bit
 * entry numbers with 32 bits of each key's hash: 104 bytes per entry
 * plus 11-23 bytes of index, which is what bounds memory at millions of
 * distinct keys.
 *
 * Why the hash bits: a shard's main table outgrows the caches, and at load
 * 0.7 a new key's probe passes several occupied slots.  Comparing keys
 * there read each of those entries, a cache miss apiece; comparing hash
 * bits reads the index, where the probe's slots share a cache line.  An
 * entry is read only when its bits match, which for another key happens
 * once in 2^32.
 *
 * One thread (the shard) owns a table; nothing here locks.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregate_internal.h"

uint64_t dp_table_hash(const dp_rollup_key *k) {
    uint64_t w[sizeof *k / 8];
    memcpy(w, k, sizeof w);
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) h = dp_hash_mix(h, w[i]);
    return h;
}

void dp_table_init(dp_rollup_table *t) { memset(t, 0, sizeof *t); }

void dp_table_free(dp_rollup_table *t) {
    free(t->entries);
    free(t->index);
    memset(t, 0, sizeof *t);
}

void dp_table_clear(dp_rollup_table *t, size_t keep) {
    if (t->cap_entries > keep) {
        dp_table_free(t);
        return;
    }
    if (t->index) memset(t->index, 0xff, t->cap_index * sizeof *t->index);
    t->n = 0;
}

static int grow_index(dp_rollup_table *t) {
    size_t cap = t->cap_index ? t->cap_index * 2 : 256;
    /* Empty slots are all-ones, written here, rather than the zeros of a
     * calloc: a large calloc is fresh memory whose pages a probe reads
     * before anything writes them, so each page faults twice, and the
     * second fault (copy-on-write of the kernel's zero page) sends a
     * TLB-flush IPI to every core running the process; `perf` put those at
     * 12% of a shard's samples on 2000 reports.  (A memset to zero after
     * malloc would not do: the compiler turns the pair into calloc.) */
    dp_table_slot *idx = malloc(cap * sizeof *idx);
    if (!idx) return -1;
    memset(idx, 0xff, cap * sizeof *idx);
    for (size_t e = 0; e < t->n; e++) {
        uint64_t h = dp_table_hash(&t->entries[e].key);
        size_t i = h & (cap - 1);
        while (idx[i].entry != DP_TABLE_EMPTY) i = (i + 1) & (cap - 1);
        idx[i].entry = (uint32_t)e;
        idx[i].tag = (uint32_t)(h >> 32);
    }
    free(t->index);
    t->index = idx;
    t->cap_index = cap;
    return 0;
}

dp_rollup_entry *dp_table_upsert(dp_rollup_table *t, const dp_rollup_key *key) {
    if ((t->n + 1) * 10 > t->cap_index * 7 && grow_index(t) != 0) return NULL;
    uint64_t h = dp_table_hash(key);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = t->cap_index - 1, i = h & mask;
    for (; t->index[i].entry != DP_TABLE_EMPTY; i = (i + 1) & mask) {
        if (t->index[i].tag != tag) continue;
        dp_rollup_entry *e = &t->entries[t->index[i].entry];
        if (memcmp(&e->key, key, sizeof *key) == 0) return e;
    }
    if (t->n == t->cap_entries) {
        if (t->n >= DP_TABLE_EMPTY) return NULL;
        size_t cap = t->cap_entries ? t->cap_entries + t->cap_entries / 2 : 64;
        dp_rollup_entry *ne = realloc(t->entries, cap * sizeof *ne);
        if (!ne) return NULL;
        t->entries = ne;
        t->cap_entries = cap;
    }
    dp_rollup_entry *e = &t->entries[t->n];
    memset(e, 0, sizeof *e);
    e->key = *key;
    e->first_off = UINT32_MAX;
    t->index[i].entry = (uint32_t)t->n++;
    t->index[i].tag = tag;
    return e;
}

int dp_table_add(dp_rollup_table *t, const dp_rollup_entry *src) {
    dp_rollup_entry *e = dp_table_upsert(t, &src->key);
    if (!e) return -1;
    e->messages += src->messages;
    e->records += src->records;
    if (src->first_off < e->first_off) e->first_off = src->first_off;
    if (src->last_off > e->last_off) e->last_off = src->last_off;
    if (!e->enrich_id) e->enrich_id = src->enrich_id;
    return 0;
}

size_t dp_table_bytes(const dp_rollup_table *t) {
    return t->cap_entries * sizeof *t->entries + t->cap_index * sizeof *t->index;
}
