/* s3_state.h — the S3 source's small file in the run's state (internal to
 * source/). */
#ifndef DP_S3_STATE_H
#define DP_S3_STATE_H

#include "dp_error.h"
#include "dp_log.h"

/* STATE_DIR/sources/s3-HASH.json, HASH of `identity` (the source as
 * s3:HOST/BUCKET/PREFIX), its folder created (0700): malloc'd, or NULL and
 * err. */
/* The watermark the file holds (malloc'd), or NULL when there is none or it
 * is another source's; a file that cannot be read is said in `log`, naming
 * `display`, and counts as none. */
char *dp_s3_state_load(const char *path, const char *identity, const char *display, dp_log *log);
/* Writes the file whole: a temporary file beside it, fsync, rename, and the
 * folder's fsync.  0, or -1 (said in `log`). */
int dp_s3_state_save(const char *path, const char *identity, const char *display, dp_log *log,
                     const char *watermark);

#endif
