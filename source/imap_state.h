/* imap_state.h — the IMAP source's small file in the run's state (internal
 * to source/). */
#ifndef DP_IMAP_STATE_H
#define DP_IMAP_STATE_H

#include <stdint.h>

#include "dp_error.h"
#include "dp_log.h"
#include "imap_uidset.h"

/* What a mailbox's file holds. */
typedef struct dp_imap_state {
    uint32_t validity;       /* the mailbox's UIDVALIDITY these UIDs belong to; 0: none yet */
    uint32_t watermark;      /* every UID up to it was acknowledged */
    dp_imap_uidset rejected; /* rejected, and not yet acknowledged */
} dp_imap_state;

/* STATE_DIR/sources/imap-HASH.json, HASH of `identity` (the mailbox as
 * user@host:port/mailbox), its folder created (0700): malloc'd, or NULL and
 * err. */
/* Reads the file into *st (zeros when there is none, or it is another
 * mailbox's); a file that cannot be read is said in `log`, naming
 * `display`, and counts as none. */
void dp_imap_state_load(const char *path, const char *identity, const char *display, dp_log *log, dp_imap_state *st);
/* Writes the file whole: a temporary file beside it, fsync, rename, and
 * the folder's fsync.  0, or -1 (said in `log`). */
int dp_imap_state_save(const char *path, const char *identity, const char *display, dp_log *log,
                       const dp_imap_state *st);

#endif
