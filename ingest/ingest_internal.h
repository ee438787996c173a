/* ingest_internal.h — what the files of ingest/ share among themselves.
 *
 * The unwrapping layers are a chain of pull streams: the XML parser reads
 * from a gzip layer that reads from a zip member that reads from the file.
 * Each layer only ever holds one buffer, so memory does not depend on the
 * size of what flows through.  Not part of the public interface.
 */
#ifndef DP_INGEST_INTERNAL_H
#define DP_INGEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nettle/sha2.h>

#include "dp_buf.h"
#include "dp_error.h"
#include "ingest.h"

/* A pull stream.  read() returns the number of bytes read, 0 at the end,
 * or -1 with `err` filled.  Implementations embed dp_stream first. */
typedef struct dp_stream dp_stream;
struct dp_stream {
    ssize_t (*read)(dp_stream *s, void *buf, size_t cap, dp_error *err);
};

/* A stream with its first bytes held back for sniffing: read() serves the
 * held bytes, then the rest of the inner stream. */
#define DP_PEEK_MAX 4096
typedef struct dp_peek_stream {
    dp_stream base;
    dp_stream *inner;
    unsigned char head[DP_PEEK_MAX];
    size_t head_len, head_pos;
    int inner_eof;
} dp_peek_stream;

/* Fills up to `want` head bytes (fewer at end of input). 0 or -1.
 * The streams are in stream.c. */
int dp_stream_peek_init(dp_peek_stream *p, dp_stream *inner, size_t want, dp_error *err);

/* Reads from a memory buffer; counts what it hands out in *counter. */
typedef struct dp_mem_stream {
    dp_stream base;
    const unsigned char *data;
    size_t len, pos;
    uint64_t *counter;
} dp_mem_stream;
void dp_stream_mem_init(dp_mem_stream *m, const void *data, size_t len, uint64_t *counter);

/* Reads from a file descriptor; counts what it hands out in *counter. */
typedef struct dp_fd_stream {
    dp_stream base;
    int fd;
    uint64_t *counter;
} dp_fd_stream;
void dp_stream_fd_init(dp_fd_stream *f, int fd, uint64_t *counter);

/* Everything one input shares while it is being unwrapped. */
typedef struct dp_unwrap {
    const dp_ingest_limits *lim;
    const dp_report_handler *h;
    void *ctx;
    dp_ingest_result *res;
    const char *input;
    dp_error first_err;
    int have_err;
    uint64_t root_in;   /* bytes read from the outermost stream so far */
    uint32_t parts;     /* containers' members and MIME parts seen */
    uint64_t reports_seen; /* reports begun, accepted or not */
    int mail_kind;      /* dp_kind of a whole input that is mail */
    size_t mail_skip;   /* blank bytes before the mail's first header */
} dp_unwrap;

/* dp_unwrap_stream's answer when a whole input is mail (see mime.c). */
#define DP_UNWRAP_IS_MAIL 2

/* Records a rejection: tells the handler, counts it, keeps the first. */
void dp_unwrap_fail(dp_unwrap *u, const dp_report *rep, dp_error *err, const char *part);

/* Sniffs `s` and unwraps whatever it holds, recursively.  `part` names it.
 * Returns 0 if nothing in it failed, -1 if something did (already recorded
 * with dp_unwrap_fail), or DP_UNWRAP_IS_MAIL when `allow_mime` is set (whole
 * inputs only) and the content is a message or mbox. */
int dp_unwrap_stream(dp_unwrap *u, dp_stream *s, const char *part, int layer, int allow_mime);

/* What sniffing a stream's first bytes says it is. */
typedef enum dp_kind {
    DP_KIND_EMPTY,
    DP_KIND_GZIP,
    DP_KIND_ZSTD,
    DP_KIND_ZIP,
    DP_KIND_XML,
    DP_KIND_MBOX,
    DP_KIND_MIME,
    DP_KIND_UNKNOWN
} dp_kind;
dp_kind dp_unwrap_sniff(const unsigned char *p, size_t n);
size_t dp_unwrap_leading_space(const unsigned char *p, size_t n);
const char *dp_unwrap_kind_name(dp_kind k);

/* A reader thread that reads `src` ahead of the parser (readahead.c).
 * start: NULL when no thread could be had (read `src` directly then);
 * from then on `src` and `sha` (when not NULL, fed every byte read) belong
 * to the thread until stop, which joins it.  read: like dp_stream's. */
typedef struct dp_readahead dp_readahead;
dp_readahead *dp_readahead_start(dp_stream *src, struct sha256_ctx *sha);
ssize_t dp_readahead_read(dp_readahead *ra, void *buf, size_t cap, dp_error *err);
void dp_readahead_stop(dp_readahead *ra);

/* Records held back, in order, while their report's header is incomplete
 * (record_hold.c): up to `mem_max` bytes in memory, the rest in an
 * unlinked temporary file.  put copies the record.  rewind, then next
 * until it returns 0, hands them back: 1 with `rec` filled, its pointers
 * valid until the next call; -1 with `err` filled.  free releases
 * everything and leaves the hold empty and reusable. */
#define DP_RECORD_HOLD_MEM (1u << 20)
typedef struct dp_record_hold {
    size_t mem_max;
    dp_buf buf;        /* the records, or the part not yet in the file */
    int fd;            /* the temporary file, -1 until needed */
    uint64_t spilled;  /* bytes written to it */
    uint64_t n;        /* records held */
    /* reading back */
    uint64_t left, file_pos;
    size_t rpos;
    dp_override *ov; size_t cap_ov;
    dp_dkim_auth *dk; size_t cap_dk;
    dp_spf_auth *sp; size_t cap_sp;
} dp_record_hold;
void dp_record_hold_init(dp_record_hold *h, size_t mem_max);
int dp_record_hold_put(dp_record_hold *h, const dp_record *rec, dp_error *err);
int dp_record_hold_rewind(dp_record_hold *h, dp_error *err);
int dp_record_hold_next(dp_record_hold *h, dp_record *rec, dp_error *err);
void dp_record_hold_free(dp_record_hold *h);

/* Parses one XML document from `s` as an aggregate report, calling the
 * handler.  Returns 0 if the report was accepted, -1 if it was rejected
 * (already recorded). */
int dp_report_xml_parse(dp_unwrap *u, dp_peek_stream *s, const char *part);

/* Mail: parses a whole input as one RFC 5322 message or an mbox of them,
 * and unwraps every attachment that holds a report. */
int dp_mime_unwrap_fd(dp_unwrap *u, int fd, const char *part, int mbox);
int dp_mime_unwrap_mem(dp_unwrap *u, const void *data, size_t len, const char *part, int mbox);

#endif
