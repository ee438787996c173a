/* s3_uri.h — what an s3:// SOURCE names (internal to source/: the S3
 * source's settings, and the endpoint the S3 client talks to). */
#ifndef DP_S3_URI_H
#define DP_S3_URI_H

#include "dp_error.h"

/* What becomes of an object once what it held is counted. */
typedef enum dp_s3_after {
    DP_S3_KEEP,   /* left in the bucket: the state and the watermark skip it */
    DP_S3_DELETE, /* deleted */
    DP_S3_MOVE    /* copied under another prefix, then deleted */
} dp_s3_after;

typedef struct dp_s3_uri {
    char *bucket;
    char *prefix;       /* decoded; "" for the whole bucket */
    char *endpoint;     /* "http[s]://HOST[:PORT]", no path */
    char *region;       /* us-east-1 unless region= */
    int path_style;     /* 1: ENDPOINT/BUCKET/KEY; 0: BUCKET.HOST/KEY */
    int retries;        /* tries of one request in all (retries=, default 8) */
    double relist;      /* seconds between a follower's full listings; 0: every 60th poll */
    dp_s3_after after;  /* after= */
    char *move_to;      /* after=move:PREFIX: the prefix objects go under */
    char *quarantine;   /* quarantine=PREFIX: where rejected objects go, or NULL */
    char *cafile;       /* cafile=PEM, or NULL */
    char *display;      /* "s3://BUCKET/PREFIX", for logs */
    char *identity;     /* "s3:HOST/BUCKET/PREFIX": names the state file */
} dp_s3_uri;

/* Parses `uri` (s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=1&
 * after=keep|delete|move:PREFIX&quarantine=PREFIX&retries=N&relist=SEC&
 * cafile=PEM]).  0, or -1 and err naming the URI and what is wrong. */
int dp_s3_uri_parse(const char *uri, dp_s3_uri *out, dp_error *err);
void dp_s3_uri_free(dp_s3_uri *u);

/* Whether `endpoint` names a host that cannot take the bucket in front of
 * its name (an IP address, localhost): such an endpoint is path-style. */
int dp_s3_uri_needs_path_style(const char *endpoint);

#endif
