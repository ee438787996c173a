/* s3_stream.h — an object's bytes as a descriptor, filled by a thread of
 * the S3 client from its GET (internal to source/: dp_s3_client_open_object
 * and dp_s3_client_spool_object). */
#ifndef DP_S3_STREAM_H
#define DP_S3_STREAM_H

#include "dp_error.h"
#include "s3_client.h"

/* The object's bytes, from their start: a stream (a socket) when they
 * begin as gzip, zip, zstd or XML and !whole, else an unlinked temporary
 * file holding them all.  The descriptor, or -1 and err. */
int dp_s3_stream_open(dp_s3_client *c, const char *bucket, const char *key, int whole, dp_error *err);
/* A new unlinked temporary file in TMPDIR (or /tmp), read-write; -1 and errno. */
int dp_s3_stream_tmpfile(void);

#endif
