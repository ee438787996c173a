/* ptr_cache — the PTR lookups' results on disk (LMDB), so that a restart
 * asks DNS again only for what expired.
 *
 * Key: the IP's text.  Value: a line of text, "EXPIRES STATUS NAME" (wall
 * clock seconds, dp_resolver_status_name, the name or "-").  Writes are
 * kept in one open transaction and committed in batches (commit), since a
 * lost batch only costs lookups again.  Every call but open and close comes
 * from one thread, the resolver's (an LMDB write transaction belongs to the
 * thread that began it).
 */
#ifndef DP_PTR_CACHE_H
#define DP_PTR_CACHE_H

#include "dp_error.h"
#include "resolver.h"

typedef struct dp_ptr_cache dp_ptr_cache;

typedef struct dp_ptr_cache_entry {
    double expires;                    /* wall clock */
    dp_resolver_status status;
    char name[DP_RESOLVER_NAME_MAX];   /* "" unless ANSWERED */
} dp_ptr_cache_entry;

/* Opens (creating) the cache in dir.  NULL with err set when it cannot. */
dp_ptr_cache *dp_ptr_cache_open(const char *dir, dp_error *err);
/* 1 and *out when ip is there (expired or not), 0 when not, -1 with err
 * set when the cache cannot be read. */
int dp_ptr_cache_get(dp_ptr_cache *c, const char *ip, dp_ptr_cache_entry *out, dp_error *err);
/* Writes (in the open batch).  0, or -1 with err set. */
int dp_ptr_cache_put(dp_ptr_cache *c, const char *ip, const dp_ptr_cache_entry *in, dp_error *err);
/* Commits the batch when it holds `min_puts` writes or more (0: any).
 * 0, or -1 with err set (the batch is then lost). */
int dp_ptr_cache_commit(dp_ptr_cache *c, unsigned min_puts, dp_error *err);
/* Aborts a batch still open (commit first to keep it) and closes.  NULL:
 * nothing. */
void dp_ptr_cache_close(dp_ptr_cache *c);

#endif
