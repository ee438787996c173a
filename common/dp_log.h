/* dp_log — log events as values with fields, one whole line each.
 *
 * An operator reads dmarcpipe's stderr on a terminal; a collector (journald,
 * Kubernetes, Loki) parses it.  So an event has a level, a component, a
 * message and typed fields, and the logger writes it in one of three forms:
 *   json    {"ts":"2026-12-06T14:03:12.123Z","level":"warn","component":"imap",
 *            "msg":"...","input":"...","uid":42}
 *   logfmt  ts=... level=warn component=imap msg="..." input=... uid=42
 *   plain   the message alone, as dmarcpipe has always printed it
 *           ("dmarcpipe run: ..."), for a human
 * A message is written with its plain prefix ("dmarcpipe: ", "dmarcpipe
 * run: "): plain prints it whole, json and logfmt leave the prefix out (the
 * component says where it came from).  The fields repeat what the message
 * names (input, uid, error, ...) so that nobody parses the message.
 *
 * A logger is a value the CLI makes from --log-level and --log-format and
 * passes down (the `log` fields of the options of sources, sinks, the
 * engine and Kafka): there is no global logger.  A NULL logger writes
 * plain to stderr at info, so library code and tests that pass none work.
 *
 * Threads: any thread may log at any time.  Each event is built in the
 * caller's stack and written with one system call, so lines from workers
 * never interleave.  On a terminal each line starts with "\r\033[K", which
 * clears a progress bar drawn on the same line first.
 *
 * Cost: the dp_log_<level> macros test the level before they evaluate
 * their fields and message, so a filtered event costs one comparison.
 */
#ifndef DP_LOG_H
#define DP_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "dp_error.h"

typedef enum dp_log_level { DP_LOG_DEBUG = 0, DP_LOG_INFO, DP_LOG_WARN, DP_LOG_ERROR } dp_log_level;

/* auto: plain when the stream is a terminal, json otherwise. */
typedef enum dp_log_format { DP_LOG_AUTO = 0, DP_LOG_JSON, DP_LOG_LOGFMT, DP_LOG_PLAIN } dp_log_format;

enum { DP_LOG_T_END = 0, DP_LOG_T_STR, DP_LOG_T_U64, DP_LOG_T_I64, DP_LOG_T_F64 };

/* One field: a key (a literal, never input text) and a typed value.  A
 * string is bytes: text that is not UTF-8 is written with \xNN escapes.
 * A NULL string is left out. */
typedef struct dp_log_field {
    const char *key;
    int type;
    union {
        const char *s;
        uint64_t u;
        int64_t i;
        double f;
    } v;
} dp_log_field;

#define DP_LOG_STR(k, x) ((dp_log_field){(k), DP_LOG_T_STR, {.s = (x)}})
#define DP_LOG_U64(k, x) ((dp_log_field){(k), DP_LOG_T_U64, {.u = (uint64_t)(x)}})
#define DP_LOG_I64(k, x) ((dp_log_field){(k), DP_LOG_T_I64, {.i = (int64_t)(x)}})
#define DP_LOG_F64(k, x) ((dp_log_field){(k), DP_LOG_T_F64, {.f = (double)(x)}})
#define DP_LOG_END ((dp_log_field){NULL, DP_LOG_T_END, {.u = 0}})
/* The fields of one event, as an array ended by DP_LOG_END:
 *   dp_log_warn(log, "imap", DP_LOG_FIELDS(DP_LOG_STR("input", name), DP_LOG_U64("uid", uid)),
 *               "dmarcpipe run: %s: message skipped", shown);
 * DP_LOG_NONE: an event without fields. */
#define DP_LOG_FIELDS(...) ((const dp_log_field[]){__VA_ARGS__, DP_LOG_END})
#define DP_LOG_NONE ((const dp_log_field *)0)

typedef struct dp_log dp_log;

/* A logger writing to `f` (stderr, or a test's pipe); the format `auto`
 * is settled here, by whether f is a terminal.  NULL when out of memory. */
dp_log *dp_log_new(FILE *f, dp_log_level level, dp_log_format format);
void dp_log_free(dp_log *log);

/* "debug", "info", "warn" (or "warning"), "error"; "auto", "json",
 * "logfmt", "plain".  0, or -1 for any other word. */
int dp_log_parse_level(const char *s, dp_log_level *out);
int dp_log_parse_format(const char *s, dp_log_format *out);

/* Whether an event of `level` would be written. */
int dp_log_enabled(const dp_log *log, dp_log_level level);
/* The format lines are written in (never auto). */
dp_log_format dp_log_format_of(const dp_log *log);

/* Writes one event.  `fields` may be NULL; `fmt` is printf's, the message
 * with its plain prefix.  Callers use the macros below. */
void dp_log_event(dp_log *log, dp_log_level level, const char *component, const dp_log_field *fields,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* An error as an event: plain "dmarcpipe: WHERE: STAGE: MESSAGE (offset
 * N)", dp_error_print's line; fields input (WHERE), stage, error, offset. */
void dp_log_dp_error(dp_log *log, dp_log_level level, const char *component, const dp_error *err);

#define DP_LOG_AT_(lvl, log, comp, fields, ...)                                                              \
    do {                                                                                                     \
        if (dp_log_enabled((log), (lvl))) dp_log_event((log), (lvl), (comp), (fields), __VA_ARGS__);         \
    } while (0)
#define dp_log_debug(log, comp, fields, ...) DP_LOG_AT_(DP_LOG_DEBUG, log, comp, fields, __VA_ARGS__)
#define dp_log_info(log, comp, fields, ...) DP_LOG_AT_(DP_LOG_INFO, log, comp, fields, __VA_ARGS__)
#define dp_log_warn(log, comp, fields, ...) DP_LOG_AT_(DP_LOG_WARN, log, comp, fields, __VA_ARGS__)
#define dp_log_error(log, comp, fields, ...) DP_LOG_AT_(DP_LOG_ERROR, log, comp, fields, __VA_ARGS__)

#endif
