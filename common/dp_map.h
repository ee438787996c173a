/* dp_map — a string-keyed hash map of owned keys to borrowed values.
 *
 * Open addressing with linear probing and FNV-1a hashes, grown at 3/4
 * full.  The map copies each key and frees the copies; values are the
 * caller's (dp_map_free does not touch them, dp_map_each visits them so
 * that the caller can).  Used where a count is kept per name: per policy
 * domain, per source IP, per reporter.
 */
#ifndef DP_MAP_H
#define DP_MAP_H

#include <stddef.h>

typedef struct dp_map_slot {
    char *key;       /* NULL: empty */
    void *value;
    size_t hash;
} dp_map_slot;

typedef struct dp_map {
    dp_map_slot *slots;
    size_t cap, len;
} dp_map;

#define DP_MAP_INIT {NULL, 0, 0}

/* The value for key, or NULL. */
void *dp_map_get(const dp_map *m, const char *key);
/* Sets key's value (copying the key).  The key as the map holds it (valid
 * until dp_map_free), or NULL when memory runs out. */
const char *dp_map_put(dp_map *m, const char *key, void *value);
/* Removes key and frees its copy; the value is the caller's.  1 when it
 * was there, 0 when not. */
int dp_map_remove(dp_map *m, const char *key);
/* Calls fn for each entry, in no order. */
void dp_map_each(const dp_map *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx);
/* Every value, in no order, into out (room for m->len). */
void dp_map_values(const dp_map *m, void **out);
void dp_map_free(dp_map *m);

#endif
