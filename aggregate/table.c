/* table — the rollup hash table a shard owns.
 *
 * Keys are fixed 80-byte structs of interned ids, so hashing is a few
 * multiplies and comparison is memcmp.  Entries sit in a dense array and
 * the open-addressing index (linear probing, load <= 0.7) holds 32-bit
 * entry numbers: about 96 bytes per entry plus 4-6 bytes of index, which
 * is what bounds memory at millions of distinct keys.  One thread (the
 * shard) owns a table; nothing here locks.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregate_internal.h"

static uint64_t hash_key(const dp_rollup_key *k) {
    uint64_t w[sizeof *k / 8];
    memcpy(w, k, sizeof w);
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        h ^= w[i];
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
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
    if (t->index) memset(t->index, 0, t->cap_index * sizeof *t->index);
    t->n = 0;
}

static int grow_index(dp_rollup_table *t) {
    size_t cap = t->cap_index ? t->cap_index * 2 : 256;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx) return -1;
    for (size_t e = 0; e < t->n; e++) {
        size_t i = hash_key(&t->entries[e].key) & (cap - 1);
        while (idx[i]) i = (i + 1) & (cap - 1);
        idx[i] = (uint32_t)(e + 1);
    }
    free(t->index);
    t->index = idx;
    t->cap_index = cap;
    return 0;
}

dp_rollup_entry *dp_table_upsert(dp_rollup_table *t, const dp_rollup_key *key) {
    if ((t->n + 1) * 10 > t->cap_index * 7 && grow_index(t) != 0) return NULL;
    size_t mask = t->cap_index - 1, i = hash_key(key) & mask;
    for (; t->index[i]; i = (i + 1) & mask) {
        dp_rollup_entry *e = &t->entries[t->index[i] - 1];
        if (memcmp(&e->key, key, sizeof *key) == 0) return e;
    }
    if (t->n == t->cap_entries) {
        if (t->n >= UINT32_MAX - 1) return NULL;
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
    t->index[i] = (uint32_t)++t->n;
    return e;
}

int dp_table_add(dp_rollup_table *t, const dp_rollup_entry *src) {
    dp_rollup_entry *e = dp_table_upsert(t, &src->key);
    if (!e) return -1;
    e->messages += src->messages;
    e->records += src->records;
    if (src->first_off < e->first_off) e->first_off = src->first_off;
    if (src->last_off > e->last_off) e->last_off = src->last_off;
    return 0;
}

size_t dp_table_bytes(const dp_rollup_table *t) {
    return t->cap_entries * sizeof *t->entries + t->cap_index * sizeof *t->index;
}
