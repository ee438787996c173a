/* s3_client.h — an S3 client for the sources that read object stores: the
 * s3:// source, and any source that fetches objects named elsewhere (S3
 * event notifications).  Any S3-compatible store: AWS, MinIO, Ceph, R2,
 * GCS's interoperability API.
 *
 * Every request is signed (SigV4, libcurl's CURLOPT_AWS_SIGV4), retried
 * on what is transient (a connection refused or broken, a timeout, HTTP
 * 500, 502, 503, 504, 429, SlowDown) with exponential backoff and full
 * jitter, and a GET broken off mid-way goes on from the byte it reached
 * (Range, If-Match).  Credentials come from the environment or the shared
 * credentials file (s3_creds.h) and appear in no log, error or argv.
 * All functions are thread-safe.
 */
#ifndef DP_S3_CLIENT_H
#define DP_S3_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "dp_error.h"
#include "dp_log.h"
#include "s3_list.h"

typedef struct dp_s3_client dp_s3_client;

typedef struct dp_s3_config {
    const char *endpoint; /* "http[s]://HOST[:PORT]" */
    const char *region;   /* signs with it; NULL: us-east-1 */
    int path_style;       /* 1: ENDPOINT/BUCKET/KEY; 0: BUCKET.HOST/KEY */
    int retries;          /* tries of one request in all; 0: 8 */
    const char *cafile;   /* the CAs an https endpoint is checked with; NULL: the system's */
    /* Reach the endpoint's host at another address, as libcurl's
     * CURLOPT_CONNECT_TO ("HOST:PORT:OTHER:PORT"): a tunnel, or a test's
     * listener; the requests are signed for the endpoint all the same. */
    const char *connect_to;
    /* A fixed X-Amz-Date ("20130524T000000Z"), for signatures a test can
     * compare with fixed ones; NULL: now. */
    const char *amz_date;
    double backoff_first, backoff_max; /* seconds; 0: 0.2 and 20 */
    dp_log *log; /* where a transfer that broke off is said (NULL: plain on stderr) */
} dp_s3_config;

/* A client; credentials from the environment or the shared file.  NULL
 * and err (no credentials, a bad endpoint, libcurl cannot start). */
dp_s3_client *dp_s3_client_new(const dp_s3_config *cfg, dp_error *err);
/* The log the client was made with. */
dp_log *dp_s3_client_log(const dp_s3_client *c);
/* Waits for the client's transfers under way (open_object's), then frees it. */
void dp_s3_client_free(dp_s3_client *c);

/* What a request came to. */
enum {
    DP_S3_OK = 0,
    DP_S3_GONE = 1,   /* 404: no such key */
    DP_S3_FAILED = -1 /* err says why: the bucket, the key and the S3 error Code or the network */
};

/* One ListObjectsV2 page of objects under `prefix`, after `start_after`
 * (NULL: from the start) or on from `token` (a NextContinuationToken;
 * NULL: the first page), at most max_keys (1..1000).  *out is the
 * caller's to clear (dp_s3_list_clear).  DP_S3_OK, or DP_S3_FAILED. */
int dp_s3_client_list(dp_s3_client *c, const char *bucket, const char *prefix, const char *start_after,
                      const char *token, int max_keys, dp_s3_list *out, dp_error *err);

/* The object's bytes as a readable descriptor, read from its start:
 * streamed (a socket a thread of the client fills from the GET, in
 * constant memory) when they begin as gzip, zip, zstd or XML; otherwise
 * (raw mail, which needs seeking) an unlinked temporary file holding the
 * whole object.  A stream the GET could not finish, retries spent, ends
 * in a read error (ECONNRESET), never in a clean end of file, and the
 * reason is said on stderr.  Closing the descriptor early ends the
 * transfer.  The descriptor, or -1 and err (DP_ERR_INPUT: no such object;
 * DP_ERR_IO: the store or the network). */
int dp_s3_client_open_object(dp_s3_client *c, const char *bucket, const char *key, dp_error *err);
/* The whole object in an unlinked temporary file, at its start (a copy to
 * keep in a quarantine).  The descriptor, or -1 and err as above. */
int dp_s3_client_spool_object(dp_s3_client *c, const char *bucket, const char *key, dp_error *err);
/* DELETE.  DP_S3_OK (also when it was already gone), or DP_S3_FAILED. */
int dp_s3_client_delete(dp_s3_client *c, const char *bucket, const char *key, dp_error *err);
/* Server-side copy within the bucket (x-amz-copy-source).  DP_S3_OK,
 * DP_S3_GONE (no source), or DP_S3_FAILED. */
int dp_s3_client_copy(dp_s3_client *c, const char *bucket, const char *from_key, const char *to_key, dp_error *err);

/* ---- for the client's own files (s3_stream.c) ------------------------------ */

/* Receives a GET's body, in order; 0, or -1 to end the transfer (not tried
 * again: the reader went away, a local write failed). */
typedef int (*dp_s3_sink_fn)(void *ctx, const char *data, size_t n);
/* GET of the object into `sink`, resumed from the byte reached when the
 * connection breaks (Range, If-Match the first answer's ETag).  DP_S3_OK,
 * DP_S3_GONE, or DP_S3_FAILED (*sink_stopped set when the sink ended it). */
int dp_s3_client_get(dp_s3_client *c, const char *bucket, const char *key, dp_s3_sink_fn sink, void *ctx,
                     int *sink_stopped, dp_error *err);
/* A thread of the client's starts (enter) and ends (leave): free waits
 * for every one that entered to leave. */
void dp_s3_client_enter(dp_s3_client *c);
void dp_s3_client_leave(dp_s3_client *c);

/* `s` encoded as SigV4 wants it: every byte but A-Z a-z 0-9 - . _ ~ as %XX
 * (upper-case hex), and '/' kept when keep_slash.  Appended to b. */
struct dp_buf;
void dp_s3_client_encode(struct dp_buf *b, const char *s, int keep_slash);

#endif
