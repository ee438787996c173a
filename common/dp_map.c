/* dp_map — see dp_map.h. */
#include "dp_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s) {
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64-bit */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

static dp_map_slot *find(const dp_map *m, const char *key, size_t h) {
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        dp_map_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0)) return s;
    }
}

void *dp_map_get(const dp_map *m, const char *key) {
    if (!m->cap) return NULL;
    dp_map_slot *s = find(m, key, hash_str(key));
    return s->key ? s->value : NULL;
}

static int grow(dp_map *m) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    dp_map_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    dp_map old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key) *find(m, old.slots[i].key, old.slots[i].hash) = old.slots[i];
    free(old.slots);
    return 0;
}

const char *dp_map_put(dp_map *m, const char *key, void *value) {
    if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0) return NULL;
    size_t h = hash_str(key);
    dp_map_slot *s = find(m, key, h);
    if (!s->key) {
        char *copy = strdup(key);
        if (!copy) return NULL;
        s->key = copy;
        s->hash = h;
        m->len++;
    }
    s->value = value;
    return s->key;
}

/* Backward-shift deletion: the slots after the removed one that probed past
 * it move back, so every key stays reachable from its home slot without
 * tombstones. */
int dp_map_remove(dp_map *m, const char *key) {
    if (!m->cap) return 0;
    size_t mask = m->cap - 1;
    dp_map_slot *s = find(m, key, hash_str(key));
    if (!s->key) return 0;
    free(s->key);
    size_t hole = (size_t)(s - m->slots);
    for (size_t i = (hole + 1) & mask; m->slots[i].key; i = (i + 1) & mask) {
        size_t home = m->slots[i].hash & mask;
        /* the key at i may fill the hole when its home is not in (hole, i] */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
    }
    memset(&m->slots[hole], 0, sizeof m->slots[hole]);
    m->len--;
    return 1;
}

void dp_map_each(const dp_map *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx) {
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) fn(ctx, m->slots[i].key, m->slots[i].value);
}

void dp_map_values(const dp_map *m, void **out) {
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) out[n++] = m->slots[i].value;
}

void dp_map_free(dp_map *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}
