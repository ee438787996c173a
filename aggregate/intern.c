/* intern — a string interner: each distinct string stored once, named by
 * a 32-bit id.
 *
 * A rollup key holds a dozen strings (reporter, domains, results); as ids
 * they make the key a fixed 80 bytes that hashes and compares as memory,
 * and each distinct domain costs its bytes once per shard, not once per
 * key.  Strings live in 64 KiB arena chunks that never move, so a pointer
 * from dp_intern_str() stays valid until dp_intern_free().  One shard owns
 * one interner: no locks.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregate_internal.h"

#define CHUNK (64u * 1024u)
#define INTERN_EMPTY UINT32_MAX /* a free slot; ids start at 1, 0 is "no string" */

/* Eight bytes per multiply: domains run to 20 or 30 bytes, and a byte-wise
 * hash (FNV-1a, before) was a chain of one multiply per byte.  The last
 * word is padded with zeros; the length, mixed in first, tells apart what
 * the padding would make alike. */
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = dp_hash_mix(h, w);
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, s + i, n - i);
        h = dp_hash_mix(h, w);
    }
    return h ^ (h >> 29);
}

void dp_intern_init(dp_intern *in) { memset(in, 0, sizeof *in); }

void dp_intern_free(dp_intern *in) {
    for (size_t i = 0; i < in->n_chunks; i++) free(in->chunks[i]);
    free(in->chunks);
    free(in->strs);
    free(in->lens);
    free(in->slots);
    memset(in, 0, sizeof *in);
}

static char *arena_copy(dp_intern *in, const char *s, size_t n) {
    if (n + 1 > CHUNK) {
        /* a string larger than a chunk gets a chunk of its own */
        char *big = malloc(n + 1);
        char **c = realloc(in->chunks, (in->n_chunks + 1) * sizeof *c);
        if (!big || !c) { free(big); if (c) in->chunks = c; return NULL; }
        in->chunks = c;
        /* keep the current (last) chunk last: insert the big one before it */
        if (in->n_chunks) {
            c[in->n_chunks] = c[in->n_chunks - 1];
            c[in->n_chunks - 1] = big;
        } else {
            c[0] = big;
            in->chunk_used = CHUNK; /* no open chunk yet */
        }
        in->n_chunks++;
        memcpy(big, s, n);
        big[n] = '\0';
        return big;
    }
    if (in->n_chunks == 0 || in->chunk_used + n + 1 > CHUNK) {
        char *chunk = malloc(CHUNK);
        char **c = realloc(in->chunks, (in->n_chunks + 1) * sizeof *c);
        if (!chunk || !c) { free(chunk); if (c) in->chunks = c; return NULL; }
        in->chunks = c;
        c[in->n_chunks++] = chunk;
        in->chunk_used = 0;
    }
    char *p = in->chunks[in->n_chunks - 1] + in->chunk_used;
    memcpy(p, s, n);
    p[n] = '\0';
    in->chunk_used += n + 1;
    return p;
}

static int grow_slots(dp_intern *in) {
    size_t cap = in->cap_slots ? in->cap_slots * 2 : 1024;
    /* all-ones written by memset, not calloc: see grow_index() in table.c */
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0xff, cap * sizeof *slots);
    for (uint32_t id = 1; id <= in->n; id++) {
        size_t i = hash_bytes(in->strs[id], in->lens[id]) & (cap - 1);
        while (slots[i] != INTERN_EMPTY) i = (i + 1) & (cap - 1);
        slots[i] = id;
    }
    free(in->slots);
    in->slots = slots;
    in->cap_slots = cap;
    return 0;
}

uint32_t dp_intern_put(dp_intern *in, const char *s, size_t n) {
    if (!s) return 0;
    if ((in->n + 1) * 10 >= in->cap_slots * 7 && grow_slots(in) != 0) return UINT32_MAX;
    uint64_t h = hash_bytes(s, n);
    size_t mask = in->cap_slots - 1, i = h & mask;
    for (; in->slots[i] != INTERN_EMPTY; i = (i + 1) & mask) {
        uint32_t id = in->slots[i];
        if (in->lens[id] == n && memcmp(in->strs[id], s, n) == 0) return id;
    }
    if (in->n + 2 > in->cap_ids) {
        size_t cap = in->cap_ids ? in->cap_ids * 2 : 1024;
        const char **strs = realloc(in->strs, cap * sizeof *strs);
        if (strs) in->strs = strs;
        uint32_t *lens = realloc(in->lens, cap * sizeof *lens);
        if (lens) in->lens = lens;
        if (!strs || !lens) return UINT32_MAX;
        in->cap_ids = cap;
    }
    char *copy = arena_copy(in, s, n);
    if (!copy) return UINT32_MAX;
    uint32_t id = (uint32_t)++in->n;
    in->strs[id] = copy;
    in->lens[id] = (uint32_t)n;
    in->slots[i] = id;
    in->bytes += n + 1;
    return id;
}

const char *dp_intern_str(const dp_intern *in, uint32_t id) { return id ? in->strs[id] : NULL; }
