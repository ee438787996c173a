/* ipseen — the source IPs a shard has met, so that it asks enrichment
 * about each one once, not once per record.
 *
 * An open-addressing set of 16-byte addresses and their family, each with
 * the id enrich/ gave it, owned by one shard thread (no lock).  The id goes
 * on the IP's rollups, so that a flush reads their answer with no lookup.  The shard looks an IP up only when a record
 * makes a new key in a report's pending table, which is already rarer than
 * a record; the question to enrich/ (which takes a lock) goes out only on
 * a miss here.  Bounded by the caller: the shard empties it when it grows
 * past --max-keys, after which an IP may be asked about again, which costs
 * enrich/ a lookup in its cache and nothing more.
 */
#include <stdlib.h>
#include <string.h>

#include "aggregate_internal.h"

static uint64_t ip_hash(const uint8_t ip[16], uint8_t family) {
    uint64_t a, b;
    memcpy(&a, ip, 8);
    memcpy(&b, ip + 8, 8);
    uint64_t h = dp_hash_mix(dp_hash_mix(0x9e3779b97f4a7c15ull ^ family, a), b);
    return h ^ (h >> 29);
}

void dp_ipseen_init(dp_ipseen *s) { memset(s, 0, sizeof *s); }

void dp_ipseen_free(dp_ipseen *s) {
    free(s->slots);
    memset(s, 0, sizeof *s);
}

void dp_ipseen_clear(dp_ipseen *s) {
    if (s->slots) memset(s->slots, 0, s->cap * sizeof *s->slots);
    s->n = 0;
}

void dp_ipseen_prefetch(const dp_ipseen *s, const uint8_t ip[16], uint8_t family) {
    if (s->cap) __builtin_prefetch(&s->slots[(size_t)ip_hash(ip, family) & (s->cap - 1)]);
}

static dp_ipseen_slot *find(dp_ipseen_slot *slots, size_t cap, const uint8_t ip[16], uint8_t family) {
    size_t i = (size_t)ip_hash(ip, family) & (cap - 1);
    for (;; i = (i + 1) & (cap - 1)) {
        dp_ipseen_slot *sl = &slots[i];
        if (!sl->family || (sl->family == family && memcmp(sl->ip, ip, 16) == 0)) return sl;
    }
}

static int grow(dp_ipseen *s) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    dp_ipseen_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].family) *find(slots, cap, s->slots[i].ip, s->slots[i].family) = s->slots[i];
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

dp_ipseen_slot *dp_ipseen_put(dp_ipseen *s, const uint8_t ip[16], uint8_t family, int *is_new) {
    *is_new = 0;
    if (!family) return NULL; /* no address: nothing to ask about */
    if (4 * (s->n + 1) > 3 * s->cap && grow(s) != 0) return NULL;
    dp_ipseen_slot *sl = find(s->slots, s->cap, ip, family);
    if (sl->family) return sl;
    memcpy(sl->ip, ip, 16);
    sl->family = family;
    sl->enrich_id = 0;
    s->n++;
    *is_new = 1;
    return sl;
}
