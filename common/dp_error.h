/* dp_error — errors as values.
 *
 * Every fallible function in dmarcpipe takes a `dp_error *` and fills it on
 * failure instead of printing or aborting: the caller decides whether the
 * error ends the program, rejects one report, or is merely logged.  An error
 * carries a kind (which also names the pipeline stage that failed), the byte
 * offset where it happened when that is known, and a one-line message.  The
 * message never contains a newline, so it can be printed as one log line.
 */
#ifndef DP_ERROR_H
#define DP_ERROR_H

#include <stdint.h>
#include <stdio.h>

typedef enum dp_errkind {
    DP_OK = 0,
    DP_ERR_IO,            /* reading or writing a file failed */
    DP_ERR_UNWRAP,        /* gzip/zip/zstd container is corrupt or unsupported */
    DP_ERR_MIME,          /* message could not be parsed or held no report */
    DP_ERR_XML,           /* XML not well-formed, or hostile (DOCTYPE, entities) */
    DP_ERR_VALIDATE,      /* well-formed XML that is not a valid aggregate report */
    DP_ERR_LIMIT,         /* a safety cap was hit (size, ratio, depth, text) */
    DP_ERR_NOT_AGGREGATE, /* a failure (ARF) or SMTP TLS report, or no report at all */
    DP_ERR_NOMEM,
    DP_ERR_USAGE,
    DP_ERR_HANDLER,       /* the consumer of records asked to stop */
    DP_ERR_INPUT          /* the input cannot be one: gone, not a regular file, a link out */
} dp_errkind;

#define DP_ERROR_MSG_MAX 480

typedef struct dp_error {
    dp_errkind kind;
    int has_offset;          /* 1 when offset is meaningful */
    uint64_t offset;         /* byte offset in the stream named by `where` */
    char where[256];         /* "file.zip!member.xml" — the part that failed */
    char msg[DP_ERROR_MSG_MAX];
} dp_error;

/* Sets kind and message (printf-style); clears offset and where. Returns -1
 * so that `return dp_error_set(...)` reads naturally in callers. */
int dp_error_set(dp_error *err, dp_errkind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void dp_error_set_offset(dp_error *err, uint64_t offset);
void dp_error_set_where(dp_error *err, const char *where);
void dp_error_clear(dp_error *err);

/* Text for a log line: control characters, backslashes and bytes that are
 * not UTF-8 (a file name is bytes; a sender chooses the name) become \xNN,
 * so that one line stays one line and a terminal is never driven by it.
 * Cut, with "...", past DP_ERROR_TEXT_MAX.  Returns out. */
#define DP_ERROR_TEXT_MAX 1024
const char *dp_error_text(const char *s, char out[DP_ERROR_TEXT_MAX]);

/* Prints the error as one line: "dmarcpipe: WHERE: STAGE: MESSAGE
 * (offset N)", the form every rejection takes on stderr, its text passed
 * through dp_error_text(). */
void dp_error_print(FILE *f, const dp_error *err);

/* Whether the error is the run's, not the input's: memory, an I/O error
 * in reading, a consumer that could not take the records.  An input
 * rejected for such an error is not bad: it is left for a later run,
 * never quarantined or acknowledged. */
int dp_error_is_environmental(const dp_error *err);

/* Short stage name for an error kind: "unwrap", "mime", "xml", ... */
const char *dp_error_stage(dp_errkind kind);

#endif
