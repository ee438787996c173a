/* ipseen — the source IPs a shard has met, so that it asks enrichment
 * about each one once, not once per record.
 *
 * An open-addressing set of 16-byte addresses and their family, owned by
 * one shard thread (no lock).  The shard looks an IP up only when a record
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

int dp_ipseen_add(dp_ipseen *s, const uint8_t ip[16], uint8_t family) {
    if (!family) return 0; /* no address: nothing to ask about */
    if (4 * (s->n + 1) > 3 * s->cap && grow(s) != 0) return -1;
    dp_ipseen_slot *sl = find(s->slots, s->cap, ip, family);
    if (sl->family) return 0;
    memcpy(sl->ip, ip, 16);
    sl->family = family;
    s->n++;
    return 1;
}
