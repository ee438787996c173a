/* ipseen — the source IPs a shard has met, so that it asks enrichment
 * about each one once, not once per record.
 *
 * Open-addressing sets owned by one shard thread (no lock), each address
 * with the id enrich/ gave it; the id goes on the IP's rollups, so that a
 * flush reads their answer with no lookup.  IPv4 addresses, nearly all of
 * them, have a table of their own with 8-byte slots: the set is read at
 * random, once for each new key, and a third of the memory is a third of
 * the cache lines to wait for.  IPv6 addresses have 24-byte slots.
 *
 * The shard looks an IP up only when a record makes a new key in a
 * report's pending table, which is already rarer than a record; the
 * question to enrich/ (which takes a lock) goes out only on a miss here.
 * Bounded by the caller: the shard empties it when it grows past
 * --max-keys, after which an IP may be asked about again, which costs
 * enrich/ a look in its table and nothing more.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregate_internal.h"

#define V4_EMPTY UINT32_MAX /* an IPv4 slot's id when the slot is free */

static uint64_t ip_hash(const uint8_t ip[16], uint8_t family) {
    uint64_t a, b;
    memcpy(&a, ip, 8);
    memcpy(&b, ip + 8, 8);
    uint64_t h = family == 4 ? dp_hash_mix(0x9e3779b97f4a7c15ull, a & 0xffffffffu)
                             : dp_hash_mix(dp_hash_mix(0x9e3779b97f4a7c15ull ^ family, a), b);
    return h ^ (h >> 29);
}

void dp_ipseen_init(dp_ipseen *s) { memset(s, 0, sizeof *s); }

void dp_ipseen_free(dp_ipseen *s) {
    free(s->v4);
    free(s->v6);
    memset(s, 0, sizeof *s);
}

void dp_ipseen_clear(dp_ipseen *s) {
    if (s->v4) memset(s->v4, 0xff, s->cap4 * sizeof *s->v4);
    if (s->v6) memset(s->v6, 0, s->cap6 * sizeof *s->v6);
    s->n4 = s->n6 = 0;
}

void dp_ipseen_prefetch(const dp_ipseen *s, const uint8_t ip[16], uint8_t family) {
    size_t h = (size_t)ip_hash(ip, family);
    if (family == 4 && s->cap4) __builtin_prefetch(&s->v4[h & (s->cap4 - 1)]);
    else if (family == 6 && s->cap6) __builtin_prefetch(&s->v6[h & (s->cap6 - 1)]);
}

static dp_ipseen_v4 *find4(dp_ipseen_v4 *slots, size_t cap, uint32_t addr, size_t h) {
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
        if (slots[i].enrich_id == V4_EMPTY || slots[i].addr == addr) return &slots[i];
}

static dp_ipseen_v6 *find6(dp_ipseen_v6 *slots, size_t cap, const uint8_t ip[16], size_t h) {
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!slots[i].used || memcmp(slots[i].ip, ip, 16) == 0) return &slots[i];
}

static int grow4(dp_ipseen *s) {
    size_t cap = s->cap4 ? 2 * s->cap4 : 256;
    dp_ipseen_v4 *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0xff, cap * sizeof *slots);
    for (size_t i = 0; i < s->cap4; i++) {
        if (s->v4[i].enrich_id == V4_EMPTY) continue;
        uint8_t ip[16] = {0};
        memcpy(ip, &s->v4[i].addr, 4);
        *find4(slots, cap, s->v4[i].addr, (size_t)ip_hash(ip, 4)) = s->v4[i];
    }
    free(s->v4);
    s->v4 = slots;
    s->cap4 = cap;
    return 0;
}

static int grow6(dp_ipseen *s) {
    size_t cap = s->cap6 ? 2 * s->cap6 : 64;
    dp_ipseen_v6 *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < s->cap6; i++)
        if (s->v6[i].used) *find6(slots, cap, s->v6[i].ip, (size_t)ip_hash(s->v6[i].ip, 6)) = s->v6[i];
    free(s->v6);
    s->v6 = slots;
    s->cap6 = cap;
    return 0;
}

uint32_t *dp_ipseen_put(dp_ipseen *s, const uint8_t ip[16], uint8_t family, int *is_new) {
    *is_new = 0;
    size_t h = (size_t)ip_hash(ip, family);
    if (family == 4) {
        if (4 * (s->n4 + 1) > 3 * s->cap4 && grow4(s) != 0) return NULL;
        uint32_t addr;
        memcpy(&addr, ip, 4);
        dp_ipseen_v4 *sl = find4(s->v4, s->cap4, addr, h);
        if (sl->enrich_id != V4_EMPTY) return &sl->enrich_id;
        sl->addr = addr;
        sl->enrich_id = 0;
        s->n4++;
        *is_new = 1;
        return &sl->enrich_id;
    }
    if (family != 6) return NULL; /* no address: nothing to ask about */
    if (4 * (s->n6 + 1) > 3 * s->cap6 && grow6(s) != 0) return NULL;
    dp_ipseen_v6 *sl = find6(s->v6, s->cap6, ip, h);
    if (sl->used) return &sl->enrich_id;
    memcpy(sl->ip, ip, 16);
    sl->used = 1;
    sl->enrich_id = 0;
    s->n6++;
    *is_new = 1;
    return &sl->enrich_id;
}
