/* imap_uidset — sets of UIDs: what the IMAP source listed, acknowledged,
 * held back.  A sorted array searched by bisection: 4 bytes a UID, and a
 * mailbox's UIDs arrive in ascending order, so an insertion is almost
 * always at the end. */
#include <stdlib.h>
#include <string.h>

#include "imap_uidset.h"

/* The index of the first UID >= u. */
static size_t lower(const dp_imap_uidset *s, uint32_t u) {
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int dp_imap_uidset_has(const dp_imap_uidset *s, uint32_t u) {
    size_t i = lower(s, u);
    return i < s->n && s->v[i] == u;
}

int dp_imap_uidset_add(dp_imap_uidset *s, uint32_t u) {
    size_t i = lower(s, u);
    if (i < s->n && s->v[i] == u) return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof *s->v);
    s->v[i] = u;
    s->n++;
    return 1;
}

int dp_imap_uidset_del(dp_imap_uidset *s, uint32_t u) {
    size_t i = lower(s, u);
    if (i >= s->n || s->v[i] != u) return 0;
    memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof *s->v);
    s->n--;
    return 1;
}

void dp_imap_uidset_keep(dp_imap_uidset *s, const dp_imap_uidset *keep) {
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (dp_imap_uidset_has(keep, s->v[i])) s->v[k++] = s->v[i];
    s->n = k;
}

void dp_imap_uidset_drop_upto(dp_imap_uidset *s, uint32_t u) {
    size_t i = u == UINT32_MAX ? s->n : lower(s, u + 1);
    memmove(s->v, s->v + i, (s->n - i) * sizeof *s->v);
    s->n -= i;
}

uint32_t dp_imap_uidset_min(const dp_imap_uidset *s) {
    return s->n ? s->v[0] : UINT32_MAX;
}
