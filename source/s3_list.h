/* s3_list.h — S3's XML answers, parsed as they arrive (internal to
 * source/): a ListObjectsV2 page, and the <Error> of a refused request. */
#ifndef DP_S3_LIST_H
#define DP_S3_LIST_H

#include <stddef.h>
#include <stdint.h>

/* One object of a listing. */
typedef struct dp_s3_object {
    char *key;  /* as stored: UTF-8, decoded */
    char *etag; /* without its quotes; "" when the store gave none */
    uint64_t size;
} dp_s3_object;

/* What one XML answer held. */
typedef struct dp_s3_list {
    dp_s3_object *v; /* <Contents>, in the order listed */
    size_t n, cap;
    int truncated;    /* <IsTruncated>true: there is a next page */
    char *next_token; /* <NextContinuationToken>, or NULL */
    char code[64];    /* <Error><Code>, or "" */
    char message[256];/* <Error><Message>, or "" */
    int is_error;     /* the root element was <Error> */
} dp_s3_list;

typedef struct dp_s3_list_parser dp_s3_list_parser;

/* A parser filling *out (zeroed first); NULL when out of memory. */
dp_s3_list_parser *dp_s3_list_parser_new(dp_s3_list *out);
/* Feeds n bytes (final: the last call).  0, or -1: not the XML expected
 * (not well-formed, a DOCTYPE, a name or text over its limit, no memory). */
int dp_s3_list_parser_feed(dp_s3_list_parser *p, const char *data, size_t n, int final);
void dp_s3_list_parser_free(dp_s3_list_parser *p);
/* Frees what a listing holds, and zeroes it. */
void dp_s3_list_clear(dp_s3_list *l);

#endif
