/* align — which DKIM result a rollup carries.
 *
 * A record may list several DKIM signatures.  The rollup carries the first
 * one whose domain is aligned with the header_from domain in DMARC's
 * relaxed mode, the same organisational domain (RFC 7489 3.1), and falls
 * back to the first one.  libpsl's built-in Public Suffix List, private
 * section included, decides where an organisational domain starts.
 *
 * Each worker owns one dp_align_cache, so this runs lock-free on the
 * worker's thread.
 */
#include <string.h>
#include <strings.h>

#include "engine_internal.h"

/* Where the registrable domain of `lower` (n bytes, lowercased) starts in
 * it, or -1 if it has none.  libpsl answers with a pointer into its input;
 * the answer is cached per worker, because a report names the same few
 * domains record after record and the lookup was about 1% of a worker's
 * instructions (callgrind, 10 MB bench report). */
static int org_offset(dp_align_cache *cache, const char *lower, size_t n) {
    org_entry *c = NULL;
    if (n < ORG_NAME_MAX) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)lower[i]) * 16777619u;
        c = &cache->orgs[h % ORG_CACHE];
        if (c->name[0] && memcmp(c->name, lower, n + 1) == 0) return c->off;
    }
    const char *o = psl_registrable_domain(cache->psl, lower);
    int off = o && o >= lower && o <= lower + n ? (int)(o - lower) : -1;
    if (c && n) {
        memcpy(c->name, lower, n + 1);
        c->off = (int16_t)off;
    }
    return off;
}

/* The same organisational domain, for two names that differ. */
static int same_org(dp_align_cache *c, const char *a, const char *b) {
    char la[256], lb[256];
    size_t na = strlen(a), nb = strlen(b);
    if (na >= sizeof la || nb >= sizeof lb) return 0;
    for (size_t i = 0; i <= na; i++) la[i] = (char)((a[i] >= 'A' && a[i] <= 'Z') ? a[i] + 32 : a[i]);
    for (size_t i = 0; i <= nb; i++) lb[i] = (char)((b[i] >= 'A' && b[i] <= 'Z') ? b[i] + 32 : b[i]);
    int oa = org_offset(c, la, na), ob = org_offset(c, lb, nb);
    return oa >= 0 && ob >= 0 && strcmp(la + oa, lb + ob) == 0;
}

/* DMARC relaxed alignment: the same name, or the same organisational
 * domain.  Most records sign with the header_from domain itself, so the
 * first test settles them. */
const dp_dkim_auth *dp_align_pick_dkim(dp_align_cache *c, const dp_record *rec) {
    const char *from = rec->header_from;
    for (size_t i = 0; from && i < rec->n_dkim_auth; i++) {
        const char *d = rec->dkim_auth[i].domain;
        if (d && (strcasecmp(d, from) == 0 || same_org(c, d, from))) return &rec->dkim_auth[i];
    }
    return rec->n_dkim_auth ? &rec->dkim_auth[0] : NULL;
}
