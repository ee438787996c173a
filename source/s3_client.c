/* s3_client — signed S3 requests over libcurl, with retries: listing,
 * GET (resumed where a broken connection left it), DELETE and server-side
 * copy.  The streaming of a GET into a descriptor is s3_stream.c's.
 *
 * Signing is libcurl's CURLOPT_AWS_SIGV4 with the full provider string
 * "aws:amz:REGION:s3" (without region and service libcurl guesses them
 * from the host name).  Debian 12's libcurl 7.88 signs the request as it
 * is given, so what SigV4 wants canonical is made canonical here:
 *   - x-amz-content-sha256 is sent (UNSIGNED-PAYLOAD): libcurl 7.88 sends
 *     none, and S3Proxy, for one, fails without it;
 *   - the query parameters are sorted by name, and an empty one is sent
 *     as `name=` (libcurl signs the query in the order written);
 *   - keys, prefixes and tokens go URI-encoded by SigV4's rules: every
 *     byte but A-Z a-z 0-9 - . _ ~ as %XX, '/' kept in the path only;
 *   - the path is sent as it is (CURLOPT_PATH_AS_IS): a key may hold
 *     "../", which libcurl would otherwise fold away and sign folded.
 * libcurl 7.88 signs every header it is given, which SigV4 allows, even
 * one given empty only to remove a header of libcurl's own ("Accept:"),
 * which is then signed but not sent, and the server refuses the
 * signature: so no header is removed that way.
 *
 * Retries.  A request that meets what is transient (a connection refused,
 * reset or timed out; HTTP 500, 502, 503, 504 or 429; the S3 codes
 * SlowDown, InternalError, RequestTimeout) is tried again, up to the
 * configured number of tries in all, after a pause drawn at random from
 * [0, min(max, first * 2^n)] ("full jitter": clients that failed together
 * do not come back together).  The randomness is the client's own,
 * seeded from getrandom.  Anything else (403 SignatureDoesNotMatch, 404)
 * is final at once.  An attempt of a GET that delivered bytes before it
 * broke costs no try: the next one goes on from there (Range: bytes=N-,
 * If-Match: the first answer's ETag; a store that ignores Range and
 * answers 200 has its first N bytes skipped; 412 says the object changed
 * meanwhile, which is final).
 *
 * Connections.  libcurl easy handles, each keeping its connection, are
 * kept in a pool and lent one request at a time: the engine's workers GET
 * on several at once.  Credentials are options of the handle, never in a
 * URL; CURLOPT_VERBOSE is never set.
 */
#define _GNU_SOURCE /* getrandom */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "dp_buf.h"
#include "s3_client.h"
#include "s3_creds.h"
#include "s3_stream.h"

enum {
    CONNECT_TIMEOUT = 30,  /* seconds to open a connection, TLS included */
    LOW_SPEED_TIME = 60,   /* a transfer under one byte a second this long is broken */
    DEFAULT_TRIES = 8,
    POOL_KEEP = 32,        /* idle handles kept (each with its connection) */
};
#define ERROR_BODY_MAX ((size_t)64 << 10) /* bytes of an error answer read */

struct dp_s3_client {
    char *scheme_host; /* "http://HOST:PORT" */
    char *scheme, *host;
    char *provider; /* "aws:amz:REGION:s3" */
    char *cafile, *connect_to, *amz_date;
    int path_style, tries;
    double backoff_first, backoff_max;
    dp_s3_creds creds;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    CURL *pool[POOL_KEEP];
    size_t n_pool;
    uint64_t rng; /* xorshift64*, under lock */
    int active;   /* threads entered and not yet left */
    dp_log *log;
};

/* ---- encoding ---------------------------------------------------------------------------- */

void dp_s3_client_encode(dp_buf *b, const char *s, int keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '.' || ch == '_' || ch == '~' || (keep_slash && ch == '/')) {
            dp_buf_putc(b, (char)ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            dp_buf_append(b, e, 3);
        }
    }
}

/* ---- requests --------------------------------------------------------------------------- */

enum { MAX_QUERY = 6 };

typedef enum { RQ_LIST, RQ_GET, RQ_DELETE, RQ_COPY } rq_kind;

/* One request, and what its answers brought. */
typedef struct request {
    rq_kind kind;
    const char *bucket, *key; /* key NULL: the bucket itself */
    const char *qname[MAX_QUERY], *qvalue[MAX_QUERY]; /* sorted by name by the caller */
    size_t nq;
    const char *copy_from; /* RQ_COPY: the source key, in the same bucket */
    /* RQ_GET */
    dp_s3_sink_fn sink;
    void *sink_ctx;
    int sink_stopped;
    uint64_t delivered; /* bytes of the object handed to the sink */
    uint64_t skip;      /* bytes of this answer already delivered by an earlier one */
    char etag[256];     /* the first answer's ETag, quotes and all; "" before */
    /* RQ_LIST */
    dp_s3_list *list;
    dp_s3_list_parser *parser;
    int parse_failed;
    /* the answer under way */
    long status;
    dp_buf body; /* an error's body, or a copy's (which may be an error in a 200) */
    char answer_etag[256];
    int body_started; /* the answer under way has delivered a byte */
} request;

static size_t on_header(char *p, size_t size, size_t n, void *ctx) {
    request *rq = ctx;
    size_t len = size * n;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new answer (after a 100 Continue, too) */
        const char *sp = memchr(p, ' ', len);
        rq->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        rq->answer_etag[0] = '\0';
        rq->body_started = 0;
        dp_buf_reset(&rq->body);
    } else if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
        const char *v = p + 5, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t vn = (size_t)(end - v) < sizeof rq->answer_etag - 1 ? (size_t)(end - v) : sizeof rq->answer_etag - 1;
        memcpy(rq->answer_etag, v, vn);
        rq->answer_etag[vn] = '\0';
    }
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
    request *rq = ctx;
    size_t len = size * n;
    if (rq->status < 200 || rq->status >= 300 || rq->kind == RQ_COPY || rq->kind == RQ_DELETE) {
        if (rq->body.len < ERROR_BODY_MAX) dp_buf_append(&rq->body, p, len);
        return len;
    }
    if (rq->kind == RQ_LIST) {
        if (dp_s3_list_parser_feed(rq->parser, p, len, 0) != 0) {
            rq->parse_failed = 1;
            return 0;
        }
        return len;
    }
    /* RQ_GET */
    if (!rq->body_started) {
        rq->body_started = 1;
        if (!rq->etag[0] && rq->answer_etag[0]) snprintf(rq->etag, sizeof rq->etag, "%s", rq->answer_etag);
        /* a store that ignored the Range sends the object from its start */
        rq->skip = rq->status == 200 ? rq->delivered : 0;
    }
    size_t off = 0;
    if (rq->skip) {
        off = rq->skip < len ? (size_t)rq->skip : len;
        rq->skip -= off;
    }
    if (off < len) {
        if (rq->sink(rq->sink_ctx, p + off, len - off) != 0) {
            rq->sink_stopped = 1;
            return 0;
        }
        rq->delivered += len - off;
    }
    return len;
}

/* The URL of a request: the bucket in the path or in the host name, the
 * key encoded with its '/' kept, then the query, encoded and in order. */
static int url_of(const dp_s3_client *c, const request *rq, dp_buf *u) {
    if (c->path_style) {
        dp_buf_printf(u, "%s/", c->scheme_host);
        dp_s3_client_encode(u, rq->bucket, 0);
    } else {
        dp_buf_printf(u, "%s%s.%s", c->scheme, rq->bucket, c->host);
    }
    dp_buf_putc(u, '/');
    if (rq->key) dp_s3_client_encode(u, rq->key, 1);
    for (size_t i = 0; i < rq->nq; i++) {
        dp_buf_putc(u, i ? '&' : '?');
        dp_buf_puts(u, rq->qname[i]);
        dp_buf_putc(u, '=');
        dp_s3_client_encode(u, rq->qvalue[i], 0);
    }
    return u->failed ? -1 : 0;
}

static struct curl_slist *add_header(struct curl_slist *l, int *failed, const char *fmt, const char *v) {
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b, fmt, v);
    struct curl_slist *n = b.failed ? NULL : curl_slist_append(l, b.data);
    dp_buf_free(&b);
    if (!n) *failed = 1;
    return n ? n : l;
}

static size_t no_upload(char *p, size_t size, size_t n, void *ctx) {
    (void)p, (void)size, (void)n, (void)ctx;
    return 0;
}

static CURL *acquire(dp_s3_client *c) {
    CURL *h = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->n_pool) h = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->lock);
    return h ? h : curl_easy_init();
}

static void release(dp_s3_client *c, CURL *h, int drop) {
    pthread_mutex_lock(&c->lock);
    if (!drop && c->n_pool < POOL_KEEP) c->pool[c->n_pool++] = h, h = NULL;
    pthread_mutex_unlock(&c->lock);
    if (h) curl_easy_cleanup(h);
}

/* One attempt on handle h.  The libcurl result; rq->status the HTTP status. */
static CURLcode attempt(dp_s3_client *c, CURL *h, request *rq, char *errbuf, int *local_failure) {
    dp_buf url = DP_BUF_INIT;
    int failed = url_of(c, rq, &url) != 0;
    struct curl_slist *hd = NULL, *to = NULL;
    hd = add_header(hd, &failed, "x-amz-content-sha256: %s", "UNSIGNED-PAYLOAD");
    if (c->creds.session_token) hd = add_header(hd, &failed, "x-amz-security-token: %s", c->creds.session_token);
    if (c->amz_date) hd = add_header(hd, &failed, "X-Amz-Date: %s", c->amz_date);
    if (rq->kind == RQ_GET && rq->delivered) {
        char range[64];
        snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)rq->delivered);
        hd = add_header(hd, &failed, "Range: %s", range);
        if (rq->etag[0]) hd = add_header(hd, &failed, "If-Match: %s", rq->etag);
    }
    if (rq->kind == RQ_COPY) {
        dp_buf src = DP_BUF_INIT;
        dp_buf_putc(&src, '/');
        dp_s3_client_encode(&src, rq->bucket, 0);
        dp_buf_putc(&src, '/');
        dp_s3_client_encode(&src, rq->copy_from, 1);
        if (src.failed) failed = 1;
        else hd = add_header(hd, &failed, "x-amz-copy-source: %s", src.data);
        dp_buf_free(&src);
    }
    if (c->connect_to && !(to = curl_slist_append(NULL, c->connect_to))) failed = 1;
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (!failed) {
        curl_easy_reset(h);
        rc = CURLE_OK;
#define SET(opt, val)                                                                                        \
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
        SET(CURLOPT_URL, url.data);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_AWS_SIGV4, c->provider);
        SET(CURLOPT_USERNAME, c->creds.access_key);
        SET(CURLOPT_PASSWORD, c->creds.secret_key);
        SET(CURLOPT_HTTPHEADER, hd);
        SET(CURLOPT_PATH_AS_IS, 1L);
        SET(CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM for timeouts */
        SET(CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT);
        SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SET(CURLOPT_LOW_SPEED_TIME, (long)LOW_SPEED_TIME);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SET(CURLOPT_ERRORBUFFER, errbuf);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_HEADERDATA, rq);
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_WRITEDATA, rq);
        if (c->cafile) SET(CURLOPT_CAINFO, c->cafile);
        if (to) SET(CURLOPT_CONNECT_TO, to);
        if (rq->kind == RQ_DELETE) SET(CURLOPT_CUSTOMREQUEST, "DELETE");
        if (rq->kind == RQ_COPY) {
            SET(CURLOPT_UPLOAD, 1L);
            SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
            SET(CURLOPT_READFUNCTION, no_upload);
        }
#undef SET
        if (rc != CURLE_OK) *local_failure = 1;
    } else {
        *local_failure = 1;
    }
    if (rc == CURLE_OK) {
        rq->status = 0;
        rc = curl_easy_perform(h);
        /* nothing of this call's stack stays with the handle; its connection does */
        curl_easy_reset(h);
    }
    curl_slist_free_all(hd);
    curl_slist_free_all(to);
    dp_buf_free(&url);
    return rc;
}

/* Whether the libcurl result is the network's, worth another try. */
static int transient_net(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return 1;
    default: return 0;
    }
}

static int transient_code(const char *code) {
    return strcmp(code, "SlowDown") == 0 || strcmp(code, "InternalError") == 0 ||
           strcmp(code, "RequestTimeout") == 0 || strcmp(code, "ServiceUnavailable") == 0;
}

/* A pause of full jitter before try n+1 (n >= 1). */
static void pause_before(dp_s3_client *c, int n) {
    double cap = c->backoff_first;
    for (int i = 1; i < n && cap < c->backoff_max; i++)
        cap *= 2;
    if (cap > c->backoff_max) cap = c->backoff_max;
    pthread_mutex_lock(&c->lock);
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    uint64_t r = c->rng * 0x2545F4914F6CDD1Dull;
    pthread_mutex_unlock(&c->lock);
    double s = cap * (double)(r >> 11) / (double)(1ull << 53);
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* What the answer's error body says: "HTTP 403 SignatureDoesNotMatch". */
static void describe(const request *rq, char *code, size_t code_cap, char *what, size_t cap) {
    dp_s3_list e;
    dp_s3_list_parser *p = rq->body.len ? dp_s3_list_parser_new(&e) : NULL;
    code[0] = '\0';
    if (p && dp_s3_list_parser_feed(p, rq->body.data, rq->body.len, 1) == 0 && e.is_error) {
        snprintf(code, code_cap, "%s", e.code);
    }
    if (p) {
        dp_s3_list_parser_free(p);
        dp_s3_list_clear(&e);
    }
    if (code[0]) snprintf(what, cap, "HTTP %ld %s", rq->status, code);
    else snprintf(what, cap, "HTTP %ld", rq->status);
}

/* The object named in messages: "s3://BUCKET/KEY" or "s3://BUCKET". */
static void target(const request *rq, char *out, size_t cap) {
    const char *k = rq->kind == RQ_COPY ? rq->copy_from : rq->key;
    snprintf(out, cap, "s3://%s%s%s", rq->bucket, k ? "/" : "", k ? k : "");
}

/* Runs a request with its retries.  DP_S3_OK, DP_S3_GONE or DP_S3_FAILED (err). */
static int perform(dp_s3_client *c, request *rq, dp_error *err) {
    char what[DP_ERROR_MSG_MAX] = "", code[64] = "", name[300];
    target(rq, name, sizeof name);
    int result = DP_S3_FAILED, tries = 0;
    for (;;) {
        CURL *h = acquire(c);
        if (!h) return dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory (libcurl)", name);
        if (rq->kind == RQ_LIST) {
            dp_s3_list_parser_free(rq->parser);
            if (rq->list) dp_s3_list_clear(rq->list);
            rq->parse_failed = 0;
            if (!(rq->parser = dp_s3_list_parser_new(rq->list))) {
                release(c, h, 0);
                return dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", name);
            }
        }
        char errbuf[CURL_ERROR_SIZE] = "";
        int local = 0;
        uint64_t before = rq->delivered;
        rq->answer_etag[0] = '\0';
        CURLcode rc = attempt(c, h, rq, errbuf, &local);
        tries++;
        int retry = 0;
        code[0] = '\0';
        if (local) {
            release(c, h, 1);
            return dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory, or libcurl lacks an option it needs", name);
        }
        if (rc == CURLE_WRITE_ERROR && rq->sink_stopped) {
            release(c, h, 1);
            return dp_error_set(err, DP_ERR_IO, "%s: the reader stopped the transfer", name);
        }
        if (rc == CURLE_WRITE_ERROR && rq->parse_failed) {
            snprintf(what, sizeof what, "the answer is not the XML of a ListObjectsV2 page");
        } else if (rc != CURLE_OK) {
            snprintf(what, sizeof what, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
            retry = transient_net(rc);
        } else if (rq->status >= 200 && rq->status < 300) {
            describe(rq, code, sizeof code, what, sizeof what); /* a copy may fail in a 200 */
            if (!code[0]) {
                result = DP_S3_OK;
                if (rq->kind == RQ_LIST && dp_s3_list_parser_feed(rq->parser, "", 0, 1) != 0) {
                    snprintf(what, sizeof what, "the answer is not the XML of a ListObjectsV2 page");
                    result = DP_S3_FAILED;
                }
            } else {
                retry = transient_code(code);
            }
        } else if (rq->kind == RQ_GET && rq->status == 416 && rq->delivered) {
            result = DP_S3_OK; /* broke off after the last byte: nothing more to read */
        } else {
            describe(rq, code, sizeof code, what, sizeof what);
            long s = rq->status;
            if (s == 404 && strcmp(code, "NoSuchBucket") != 0) result = DP_S3_GONE;
            else retry = s == 500 || s == 502 || s == 503 || s == 504 || s == 429 || transient_code(code);
            if (s == 412 && rq->delivered)
                snprintf(what, sizeof what, "HTTP 412: the object changed while it was read");
        }
        release(c, h, rc != CURLE_OK);
        if (result != DP_S3_FAILED) return result;
        /* an attempt of a GET that moved on costs no try */
        if (retry && rq->kind == RQ_GET && rq->delivered > before) tries--;
        if (!retry || tries >= c->tries) break;
        pause_before(c, tries);
    }
    if (code[0] && (strcmp(code, "SignatureDoesNotMatch") == 0 || strcmp(code, "InvalidAccessKeyId") == 0))
        return dp_error_set(err, DP_ERR_IO, "bucket %s: %s: the credentials from %s were refused (%s)", rq->bucket,
                            what, c->creds.from, name);
    if (tries > 1) return dp_error_set(err, DP_ERR_IO, "%s: %s, after %d tries", name, what, tries);
    return dp_error_set(err, DP_ERR_IO, "%s: %s", name, what);
}

/* ---- the interface ------------------------------------------------------------------------- */

int dp_s3_client_list(dp_s3_client *c, const char *bucket, const char *prefix, const char *start_after,
                      const char *token, int max_keys, dp_s3_list *out, dp_error *err) {
    char mk[16];
    snprintf(mk, sizeof mk, "%d", max_keys < 1 ? 1 : max_keys > 1000 ? 1000 : max_keys);
    request rq = {.kind = RQ_LIST, .bucket = bucket, .list = out};
    /* sorted by name, as SigV4 signs them */
    if (token) rq.qname[rq.nq] = "continuation-token", rq.qvalue[rq.nq++] = token;
    rq.qname[rq.nq] = "list-type", rq.qvalue[rq.nq++] = "2";
    rq.qname[rq.nq] = "max-keys", rq.qvalue[rq.nq++] = mk;
    if (prefix && *prefix) rq.qname[rq.nq] = "prefix", rq.qvalue[rq.nq++] = prefix;
    if (start_after && *start_after && !token) rq.qname[rq.nq] = "start-after", rq.qvalue[rq.nq++] = start_after;
    memset(out, 0, sizeof *out);
    int rc = perform(c, &rq, err);
    dp_s3_list_parser_free(rq.parser);
    dp_buf_free(&rq.body);
    if (rc == DP_S3_GONE) rc = dp_error_set(err, DP_ERR_IO, "s3://%s: HTTP 404", bucket);
    if (rc != DP_S3_OK) dp_s3_list_clear(out);
    return rc;
}

int dp_s3_client_get(dp_s3_client *c, const char *bucket, const char *key, dp_s3_sink_fn sink, void *ctx,
                     int *sink_stopped, dp_error *err) {
    request rq = {.kind = RQ_GET, .bucket = bucket, .key = key, .sink = sink, .sink_ctx = ctx};
    int rc = perform(c, &rq, err);
    if (sink_stopped) *sink_stopped = rq.sink_stopped;
    dp_buf_free(&rq.body);
    if (rc == DP_S3_GONE) dp_error_set(err, DP_ERR_INPUT, "s3://%s/%s: no such object (HTTP 404)", bucket, key);
    return rc;
}

int dp_s3_client_delete(dp_s3_client *c, const char *bucket, const char *key, dp_error *err) {
    request rq = {.kind = RQ_DELETE, .bucket = bucket, .key = key};
    int rc = perform(c, &rq, err);
    dp_buf_free(&rq.body);
    return rc == DP_S3_GONE ? DP_S3_OK : rc;
}

int dp_s3_client_copy(dp_s3_client *c, const char *bucket, const char *from_key, const char *to_key, dp_error *err) {
    request rq = {.kind = RQ_COPY, .bucket = bucket, .key = to_key, .copy_from = from_key};
    int rc = perform(c, &rq, err);
    dp_buf_free(&rq.body);
    if (rc == DP_S3_GONE) dp_error_set(err, DP_ERR_INPUT, "s3://%s/%s: no such object (HTTP 404)", bucket, from_key);
    return rc;
}

int dp_s3_client_open_object(dp_s3_client *c, const char *bucket, const char *key, dp_error *err) {
    return dp_s3_stream_open(c, bucket, key, 0, err);
}

int dp_s3_client_spool_object(dp_s3_client *c, const char *bucket, const char *key, dp_error *err) {
    return dp_s3_stream_open(c, bucket, key, 1, err);
}

void dp_s3_client_enter(dp_s3_client *c) {
    pthread_mutex_lock(&c->lock);
    c->active++;
    pthread_mutex_unlock(&c->lock);
}

void dp_s3_client_leave(dp_s3_client *c) {
    pthread_mutex_lock(&c->lock);
    if (--c->active == 0) pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->lock);
}

static char *dup_or_null(const char *s, int *failed) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *failed = 1;
    return d;
}

dp_log *dp_s3_client_log(const dp_s3_client *c) { return c->log; }

dp_s3_client *dp_s3_client_new(const dp_s3_config *cfg, dp_error *err) {
    const char *e = cfg->endpoint;
    const char *h = e && strncmp(e, "https://", 8) == 0 ? e + 8 : e && strncmp(e, "http://", 7) == 0 ? e + 7 : NULL;
    if (!h || !*h) {
        dp_error_set(err, DP_ERR_USAGE, "S3 endpoint '%s': not http://HOST[:PORT] or https://HOST[:PORT]",
                     e ? e : "");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        dp_error_set(err, DP_ERR_IO, "libcurl cannot start");
        return NULL;
    }
    dp_s3_client *c = calloc(1, sizeof *c);
    if (!c) {
        curl_global_cleanup();
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->log = cfg->log;
    int failed = 0;
    size_t hn = strcspn(h, "/");
    c->scheme = strndup(e, (size_t)(h - e));
    c->host = strndup(h, hn);
    c->scheme_host = strndup(e, (size_t)(h - e) + hn);
    dp_buf p = DP_BUF_INIT;
    dp_buf_printf(&p, "aws:amz:%s:s3", cfg->region && *cfg->region ? cfg->region : "us-east-1");
    c->provider = p.failed ? NULL : p.data;
    if (!c->scheme || !c->host || !c->scheme_host || !c->provider) failed = 1;
    c->cafile = dup_or_null(cfg->cafile, &failed);
    c->connect_to = dup_or_null(cfg->connect_to, &failed);
    c->amz_date = dup_or_null(cfg->amz_date, &failed);
    c->path_style = cfg->path_style;
    c->tries = cfg->retries > 0 ? cfg->retries : DEFAULT_TRIES;
    c->backoff_first = cfg->backoff_first > 0 ? cfg->backoff_first : 0.2;
    c->backoff_max = cfg->backoff_max > 0 ? cfg->backoff_max : 20.0;
    if (getrandom(&c->rng, sizeof c->rng, 0) != (ssize_t)sizeof c->rng) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c->rng = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)c;
    }
    if (!c->rng) c->rng = 0x9E3779B97F4A7C15ull;
    if (failed) {
        dp_s3_client_free(c);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (dp_s3_creds_load(&c->creds, err) != 0) {
        dp_s3_client_free(c);
        return NULL;
    }
    return c;
}

void dp_s3_client_free(dp_s3_client *c) {
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    while (c->active > 0)
        pthread_cond_wait(&c->idle, &c->lock);
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < c->n_pool; i++)
        curl_easy_cleanup(c->pool[i]);
    dp_s3_creds_wipe(&c->creds);
    free(c->scheme_host);
    free(c->scheme);
    free(c->host);
    free(c->provider);
    free(c->cafile);
    free(c->connect_to);
    free(c->amz_date);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->idle);
    free(c);
    curl_global_cleanup();
}
