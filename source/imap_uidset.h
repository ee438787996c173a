/* imap_uidset.h — a set of IMAP UIDs, for the IMAP source's bookkeeping
 * (internal to source/). */
#ifndef DP_IMAP_UIDSET_H
#define DP_IMAP_UIDSET_H

#include <stddef.h>
#include <stdint.h>

/* Sorted, without repeats; {0} is the empty set.  The owner frees v. */
typedef struct dp_imap_uidset {
    uint32_t *v;
    size_t n, cap;
} dp_imap_uidset;

int dp_imap_uidset_has(const dp_imap_uidset *s, uint32_t u);
/* 1 added, 0 there already, -1 out of memory. */
int dp_imap_uidset_add(dp_imap_uidset *s, uint32_t u);
/* 1 removed, 0 was not there. */
int dp_imap_uidset_del(dp_imap_uidset *s, uint32_t u);
/* Keeps only the UIDs also in `keep`. */
void dp_imap_uidset_keep(dp_imap_uidset *s, const dp_imap_uidset *keep);
/* Drops the UIDs up to `u`, `u` included. */
void dp_imap_uidset_drop_upto(dp_imap_uidset *s, uint32_t u);
/* The smallest UID, or UINT32_MAX when empty. */
uint32_t dp_imap_uidset_min(const dp_imap_uidset *s);

#endif
