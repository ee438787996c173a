/* dp_log — see dp_log.h.
 *
 * A line is built in a fixed buffer on the caller's stack, never on the
 * heap: logging must work when memory is what ran out, and must not itself
 * be a point where a fault-injection build makes the run's allocations
 * fail.  Every string is cut to fit, so a line is always whole and valid
 * in its format, however long the input names in it are.
 */
#define _GNU_SOURCE
#include "dp_log.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dp_json.h"

struct dp_log {
    FILE *f;
    dp_log_level level;
    dp_log_format format; /* never auto */
    int tty;              /* lines start with "\r\033[K" */
    pthread_mutex_t lock; /* one line at a time, even past PIPE_BUF */
};

#define LINE_MAX_BYTES 16384
#define MSG_MAX_BYTES 4096

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

dp_log *dp_log_new(FILE *f, dp_log_level level, dp_log_format format) {
    dp_log *log = calloc(1, sizeof *log);
    if (!log) return NULL;
    log->f = f;
    log->level = level;
    int fd = f ? fileno(f) : -1;
    log->tty = fd >= 0 && isatty(fd);
    log->format = format != DP_LOG_AUTO ? format : log->tty ? DP_LOG_PLAIN : DP_LOG_JSON;
    pthread_mutex_init(&log->lock, NULL);
    return log;
}

void dp_log_free(dp_log *log) {
    if (!log) return;
    pthread_mutex_destroy(&log->lock);
    free(log);
}

int dp_log_parse_level(const char *s, dp_log_level *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, LEVEL_NAMES[i]) == 0) return *out = (dp_log_level)i, 0;
    if (strcmp(s, "warning") == 0) return *out = DP_LOG_WARN, 0;
    return -1;
}

int dp_log_parse_format(const char *s, dp_log_format *out) {
    static const char *const names[] = {"auto", "json", "logfmt", "plain"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return *out = (dp_log_format)i, 0;
    return -1;
}

int dp_log_enabled(const dp_log *log, dp_log_level level) {
    return level >= (log ? log->level : DP_LOG_INFO);
}

dp_log_format dp_log_format_of(const dp_log *log) { return log ? log->format : DP_LOG_PLAIN; }

/* ---- building a line -------------------------------------------------------- */

typedef struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
} line;

/* Room kept back for what closes a line ("}\n") whatever was cut. */
#define CLOSING 8

static size_t room(const line *l) { return LINE_MAX_BYTES - CLOSING - l->len; }

static void put(line *l, const char *s, size_t n) {
    if (n > room(l)) n = room(l);
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s) { put(l, s, strlen(s)); }

/* A JSON string of s: escaped by dp_json; bytes that are not UTF-8 are
 * first made \xNN text (dp_error_text), so nothing is lost to U+FFFD. */
static void json_str(line *l, const char *s) {
    char text[DP_ERROR_TEXT_MAX];
    size_t n = strlen(s);
    if (!dp_json_is_utf8(s, n)) {
        s = dp_error_text(s, text);
        n = strlen(s);
    }
    size_t r = room(l);
    if (r < 2) return;
    if (DP_JSON_STRN_MAX(n) > r) n = (r - 2) / 6; /* cut to fit; a cut character becomes U+FFFD */
    l->len = (size_t)(dp_json_put_strn(l->buf + l->len, s, n) - l->buf);
}

/* A logfmt value: printable text (dp_error_text: no control characters,
 * no backslashes, \xNN for what is not UTF-8), quoted when it has a space,
 * '=' or '"', or is empty. */
static void logfmt_str(line *l, const char *s) {
    char text[DP_ERROR_TEXT_MAX];
    dp_error_text(s, text);
    int quote = !text[0] || strpbrk(text, " =\"") != NULL;
    if (!quote) return puts_(l, text);
    puts_(l, "\"");
    for (const char *p = text; *p && room(l) > 2; p++) {
        if (*p == '"') puts_(l, "\\\"");
        else put(l, p, 1);
    }
    puts_(l, "\"");
}

/* The text around a line's parts, logfmt's and JSON's: before the
 * timestamp, the level, the component and the message, then around each
 * field's key. */
static const char *const SYNTAX[2][6] = {
    {"ts=", " level=", " component=", " msg=", " ", "="},
    {"{\"ts\":\"", "\",\"level\":\"", "\",\"component\":", ",\"msg\":", ",\"", "\":"},
};

static void key(line *l, int json, const char *k) {
    puts_(l, SYNTAX[json][4]);
    puts_(l, k);
    puts_(l, SYNTAX[json][5]);
}

static void value(line *l, int json, const dp_log_field *f) {
    char num[64];
    switch (f->type) {
    case DP_LOG_T_STR: (json ? json_str : logfmt_str)(l, f->v.s); return;
    case DP_LOG_T_U64: snprintf(num, sizeof num, "%llu", (unsigned long long)f->v.u); break;
    case DP_LOG_T_I64: snprintf(num, sizeof num, "%lld", (long long)f->v.i); break;
    case DP_LOG_T_F64:
        if (isfinite(f->v.f)) snprintf(num, sizeof num, "%.6g", f->v.f);
        else snprintf(num, sizeof num, "%s", json ? "null" : "NaN");
        break;
    default: return;
    }
    puts_(l, num);
}

/* The message without its plain prefix, "dmarcpipe: " or "dmarcpipe
 * WORD: ": json and logfmt have the component for that. */
static const char *unprefixed(const char *m) {
    if (strncmp(m, "dmarcpipe: ", 11) == 0) return m + 11;
    if (strncmp(m, "dmarcpipe ", 10) != 0) return m;
    const char *p = m + 10;
    while (*p >= 'a' && *p <= 'z') p++;
    return p > m + 10 && p[0] == ':' && p[1] == ' ' ? p + 2 : m;
}

static void timestamp(char out[64]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

static void structured(line *l, int json, dp_log_level level, const char *component, const dp_log_field *fields,
                       const char *msg) {
    char ts[64];
    timestamp(ts);
    const char *const *syn = SYNTAX[json];
    void (*str)(line *, const char *) = json ? json_str : logfmt_str;
    puts_(l, syn[0]);
    puts_(l, ts);
    puts_(l, syn[1]);
    puts_(l, LEVEL_NAMES[level]);
    puts_(l, syn[2]);
    str(l, component ? component : "dmarcpipe");
    puts_(l, syn[3]);
    str(l, msg);
    for (const dp_log_field *f = fields; f && f->key; f++) {
        if (f->type == DP_LOG_T_STR && !f->v.s) continue;
        key(l, json, f->key);
        value(l, json, f);
    }
    /* the room kept back closes the line whatever was cut */
    if (json) l->buf[l->len++] = '}';
}

/* One write(2) of the whole line (writev: a log line is not one of the
 * run's data writes, which a fault-injection build intercepts). */
static void emit(dp_log *log, const char *s, size_t n) {
    FILE *f = log ? log->f : stderr;
    int fd = f ? fileno(f) : -1;
    if (log) pthread_mutex_lock(&log->lock);
    if (fd < 0) {
        if (f) {
            fwrite(s, 1, n, f);
            fflush(f);
        }
    } else {
        while (n > 0) {
            struct iovec iov = {(void *)s, n};
            ssize_t w = writev(fd, &iov, 1);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break; /* nowhere left to say it */
            s += w;
            n -= (size_t)w;
        }
    }
    if (log) pthread_mutex_unlock(&log->lock);
}

static void vevent(dp_log *log, dp_log_level level, const char *component, const dp_log_field *fields,
                   const char *fmt, va_list ap) {
    if (!dp_log_enabled(log, level)) return;
    char msg[MSG_MAX_BYTES];
    vsnprintf(msg, sizeof msg, fmt, ap);
    line l;
    l.len = 0;
    int tty = log ? log->tty : isatty(STDERR_FILENO);
    if (tty) puts_(&l, "\r\033[K");
    dp_log_format format = dp_log_format_of(log);
    if (format == DP_LOG_PLAIN) puts_(&l, msg);
    else structured(&l, format == DP_LOG_JSON, level, component, fields, unprefixed(msg));
    l.buf[l.len++] = '\n';
    emit(log, l.buf, l.len);
}

void dp_log_event(dp_log *log, dp_log_level level, const char *component, const dp_log_field *fields,
                  const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vevent(log, level, component, fields, fmt, ap);
    va_end(ap);
}

void dp_log_dp_error(dp_log *log, dp_log_level level, const char *component, const dp_error *err) {
    if (!dp_log_enabled(log, level)) return;
    char where[DP_ERROR_TEXT_MAX], msg[DP_ERROR_TEXT_MAX];
    dp_error_text(err->where, where);
    dp_error_text(err->msg, msg);
    const char *stage = dp_error_stage(err->kind);
    const dp_log_field fields[] = {DP_LOG_STR("input", err->where), DP_LOG_STR("stage", stage),
                                   DP_LOG_STR("error", err->msg),
                                   err->has_offset ? DP_LOG_U64("offset", err->offset) : DP_LOG_END, DP_LOG_END};
    if (err->has_offset)
        dp_log_event(log, level, component, fields, "dmarcpipe: %s: %s: %s (offset %llu)", where, stage, msg,
                     (unsigned long long)err->offset);
    else
        dp_log_event(log, level, component, fields, "dmarcpipe: %s: %s: %s", where, stage, msg);
}
