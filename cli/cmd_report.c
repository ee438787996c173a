/* cmd_report — `dmarcpipe report`: the enforcement decision, per domain.
 *
 * The command opens the feeds and hands their lines to insight/, which
 * does the counting and the deciding.  An INPUT is an output folder of
 * `dmarcpipe run` (its rollups.ndjson and reports.ndjson), a feed file of
 * either kind, or a Kafka topic a Kafka sink wrote.  insight/ reads the
 * inputs twice when it must find the period itself, so a pipe (read once)
 * is taken only when --to names the period.
 *
 * Lines are read in blocks, and a line longer than MAX_LINE is skipped as
 * bad, so no input can make memory grow with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_log.h"
#include "insight.h"
#include "sink.h"

#define MAX_LINE (1u << 20) /* a longer line is no feed line: it is dropped and named */
#define BLOCK (1u << 20)
#define MAX_DOMAINS 256
#define MAX_PROPS 64
#define WARN_LINES 10 /* bad lines named one by one; the rest are counted */

static volatile sig_atomic_t stop_requested;
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

typedef struct report_inputs {
    char **paths;            /* files, and kafka:// URIs */
    size_t n;
    dp_sink_options kafka;
    char *block;             /* BLOCK + MAX_LINE bytes, reused */
    const char *stream;      /* an INPUT that is no regular file (a pipe): it reads once */
} report_inputs;

typedef struct warn_state {
    uint64_t count;
    dp_log *log;
} warn_state;

static void warn_line(void *ctx, const char *where, const char *reason) {
    warn_state *w = ctx;
    char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
    if (++w->count <= WARN_LINES)
        dp_log_warn(w->log, "report", DP_LOG_FIELDS(DP_LOG_STR("input", where), DP_LOG_STR("error", reason)),
                    "dmarcpipe report: %s: skipped: %s", dp_error_text(where, a), dp_error_text(reason, b));
}

/* Every line of one file, with "PATH:LINE" as where. */
static int read_file(report_inputs *ri, const char *path, dp_insight_line_fn fn, void *fn_ctx, dp_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dp_error_set(err, DP_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = ri->block;
    size_t have = 0;        /* bytes in buf not yet handed out */
    int skipping = 0;       /* inside a line longer than MAX_LINE */
    uint64_t lineno = 0;
    char where[300];
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, buf + have, BLOCK + MAX_LINE - have);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rc = dp_error_set(err, DP_ERR_IO, "%s: %s", path, strerror(errno));
            break;
        }
        size_t end = have + (size_t)got, start = 0;
        for (size_t i = have; i < end; i++) {
            const char *nl = memchr(buf + i, '\n', end - i);
            if (!nl) break;
            i = (size_t)(nl - buf);
            lineno++;
            if (!skipping) {
                snprintf(where, sizeof where, "%s:%llu", path, (unsigned long long)lineno);
                if (fn(fn_ctx, buf + start, i - start, where) != 0) {
                    rc = -1;
                    goto out;
                }
            }
            skipping = 0;
            start = i + 1;
        }
        if (got == 0) { /* the end: a last line without its newline */
            if (start < end && !skipping) {
                snprintf(where, sizeof where, "%s:%llu", path, (unsigned long long)++lineno);
                rc = fn(fn_ctx, buf + start, end - start, where) != 0 ? -1 : 0;
            }
            break;
        }
        have = end - start;
        if (have >= MAX_LINE) { /* a line too long for a feed: drop it (insight names it), find the next */
            if (!skipping) {
                snprintf(where, sizeof where, "%s:%llu", path, (unsigned long long)lineno + 1);
                if (fn(fn_ctx, NULL, 0, where) != 0) {
                    rc = -1;
                    break;
                }
            }
            skipping = 1;
            have = 0;
        } else if (start) {
            memmove(buf, buf + start, have);
        }
    }
out:
    close(fd);
    if (rc != 0 && err->kind == DP_OK) dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    return rc;
}

static int read_inputs(void *ctx, dp_insight_line_fn fn, void *fn_ctx, dp_error *err) {
    report_inputs *ri = ctx;
    for (size_t i = 0; i < ri->n; i++) {
        int rc = strncmp(ri->paths[i], "kafka://", 8) == 0
                     ? dp_feed_read(ri->paths[i], &ri->kafka, (dp_feed_line_fn)fn, fn_ctx, err)
                     : read_file(ri, ri->paths[i], fn, fn_ctx, err);
        if (rc != 0) return -1;
    }
    return 0;
}

/* An INPUT as the files to read: a run's folder gives its two feeds. */
static int add_input(report_inputs *ri, const char *arg) {
    char **grown = realloc(ri->paths, (ri->n + 2) * sizeof *grown);
    if (!grown) return -1;
    ri->paths = grown;
    if (strcmp(arg, "-") == 0) arg = "/dev/stdin";
    struct stat st;
    int local = strncmp(arg, "kafka://", 8) != 0 && stat(arg, &st) == 0; /* a path that is there */
    if (local && S_ISDIR(st.st_mode)) {
        static const char *const feeds[] = {"rollups.ndjson", "reports.ndjson"};
        size_t found = 0;
        for (size_t k = 0; k < 2; k++) {
            size_t n = strlen(arg) + strlen(feeds[k]) + 2;
            char *p = malloc(n);
            if (!p) return -1;
            snprintf(p, n, "%s/%s", arg, feeds[k]);
            if (access(p, R_OK) == 0) {
                ri->paths[ri->n++] = p;
                found++;
            } else {
                free(p);
            }
        }
        if (!found) {
            dp_log_error(ri->kafka.log, "report", DP_LOG_FIELDS(DP_LOG_STR("input", arg)),
                         "dmarcpipe report: %s: no rollups.ndjson or reports.ndjson in this folder", arg);
            return -2;
        }
        return 0;
    }
    if (!(ri->paths[ri->n] = strdup(arg))) return -1;
    ri->n++;
    if (local && !S_ISREG(st.st_mode) && !ri->stream)
        ri->stream = ri->paths[ri->n - 1];
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out, char *why, size_t cap) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        snprintf(why, cap, "%s takes a whole number up to %llu, got '%s'", opt, (unsigned long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int format_from_name(const char *s, dp_insight_format *f) {
    if (strcmp(s, "table") == 0) *f = DP_INSIGHT_TABLE;
    else if (strcmp(s, "json") == 0) *f = DP_INSIGHT_JSON;
    else if (strcmp(s, "html") == 0) *f = DP_INSIGHT_HTML;
    else return -1;
    return 0;
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Writes the report to path through a temporary file and a rename, so a
 * reader never sees half a report. */
static int write_to(const dp_insight *ins, dp_insight_format fmt, const char *path, dp_error *err) {
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (!f) {
        dp_error_set(err, DP_ERR_IO, "%s: %s", path, strerror(errno));
    } else {
        rc = dp_insight_write(ins, fmt, f, err);
        if (fclose(f) != 0 && rc == 0) rc = dp_error_set(err, DP_ERR_IO, "%s: %s", path, strerror(errno));
        if (rc == 0 && rename(tmp, path) != 0) rc = dp_error_set(err, DP_ERR_IO, "%s: %s", path, strerror(errno));
        if (rc != 0) unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* What the options set. */
typedef struct report_ctx {
    dp_insight_options o;
    char *domains[MAX_DOMAINS];
    size_t n_domains;
    const char *props[MAX_PROPS];
    const char *out_path;
    int have_format;
    dp_insight_format fmt;
    report_inputs ri;
    const char *log_level, *log_format; /* NULL: the defaults */
} report_ctx;

static const dp_options_row ROWS[] = {
    {NULL, 0, NULL, "Options:\n", 0, NULL},
    {"from", 0, "YYYY-MM-DD", "first day of the period (default: the 30 days ending at --to)", 0, NULL},
    {"to", 0, "YYYY-MM-DD", "last day (default: the latest day in the data)", 0, NULL},
    {"domain", 0, "D", "only this policy domain; repeatable", DP_OPTIONS_REPEAT, NULL},
    {"format", 0, "table|json|html", "(default: from -o's extension, else table on a\n"
     "terminal and json otherwise)", 0, NULL},
    {"output", 'o', "FILE", "write the report to FILE (atomically)", DP_OPTIONS_NOLONG | DP_OPTIONS_PATH, NULL},
    {"ready-threshold", 0, "R", "aligned / legitimate needed for \"ready\" (default 0.98)", 0, "0.98"},
    {"min-days", 0, "N", "days with reports needed for a verdict (default 7)", 0, "7"},
    {"min-messages", 0, "N", "messages needed for a verdict (default 100)", 0, "100"},
    {"kafka-config", 0, "FILE", "librdkafka properties (as for run; values never printed)", DP_OPTIONS_PATH, NULL},
    {"kafka", 'X', "KEY=VALUE", "a librdkafka property; repeatable",
     DP_OPTIONS_PROPS | DP_OPTIONS_NOLONG | DP_OPTIONS_NOENV, NULL},
    {"broker-timeout", 0, "SEC", "how long to wait for a broker (default 60)", 0, "60"},
    DP_CLI_LOG_ROWS,
    {"help", 'h', NULL, "this help", DP_OPTIONS_HELP, NULL},
    {NULL, 0, NULL, "\nVerdicts: insufficient_data, enforced, ready (with next_step quarantine or\n"
     "reject), fix_senders. The README defines the classes and each figure.\n"
     "Exit status: 0; 1 when some input lines were not feed lines (skipped, named\n"
     "on stderr; the report is still written); 2 usage; 3 an input or the output\n"
     "could not be read or written.\n", 0, NULL},
};

static int apply(void *ctx, const dp_options_row *row, const char *v, char *why, size_t cap) {
    report_ctx *c = ctx;
    const char *n = row->name;
    uint64_t u;
    char *end;
    int r = dp_cli_log_option(n, v, &c->log_level, &c->log_format, why, cap);
    if (r != 0) return r < 0 ? -1 : 0;
    if (strcmp(n, "from") == 0 || strcmp(n, "to") == 0) {
        if (dp_insight_parse_day(v, n[0] == 'f' ? &c->o.from_day : &c->o.to_day) != 0) {
            snprintf(why, cap, "--%s takes a date YYYY-MM-DD, got '%s'", n, v);
            return -1;
        }
    } else if (strcmp(n, "domain") == 0) {
        size_t len = strlen(v);
        if (len && v[len - 1] == '.') len--;
        if (len == 0 || len > 253 || c->n_domains == MAX_DOMAINS) {
            snprintf(why, cap, "--domain takes a domain name (at most %d of them)", MAX_DOMAINS);
            return -1;
        }
        char *d = strndup(v, len);
        if (!d) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
        for (char *p = d; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        c->domains[c->n_domains++] = d;
    } else if (strcmp(n, "format") == 0) {
        if (format_from_name(v, &c->fmt) != 0) {
            snprintf(why, cap, "--format is table, json or html, got '%s'", v);
            return -1;
        }
        c->have_format = 1;
    } else if (strcmp(n, "output") == 0) {
        c->out_path = v;
    } else if (strcmp(n, "ready-threshold") == 0) {
        errno = 0;
        c->o.ready_threshold = strtod(v, &end);
        if (errno || end == v || *end || !(c->o.ready_threshold >= 0 && c->o.ready_threshold <= 1)) {
            snprintf(why, cap, "--ready-threshold is a ratio from 0 to 1, got '%s'", v);
            return -1;
        }
    } else if (strcmp(n, "min-days") == 0) {
        return parse_u64("--min-days", v, 3660, &c->o.min_days, why, cap);
    } else if (strcmp(n, "min-messages") == 0) {
        return parse_u64("--min-messages", v, UINT64_MAX, &c->o.min_messages, why, cap);
    } else if (strcmp(n, "kafka-config") == 0) {
        c->ri.kafka.config_file = v;
    } else if (strcmp(n, "kafka") == 0) {
        if (c->ri.kafka.n_props == MAX_PROPS) {
            snprintf(why, cap, "at most %d -X options", MAX_PROPS);
            return -1;
        }
        c->props[c->ri.kafka.n_props++] = v;
    } else if (strcmp(n, "broker-timeout") == 0) {
        if (parse_u64("--broker-timeout", v, 86400, &u, why, cap) != 0) return -1;
        c->ri.kafka.broker_timeout = (double)u;
    }
    return 0;
}

const dp_options_command dp_cmd_report_options = {
    .name = "report",
    .summary = "per domain: who sends as it, and is it ready for p=reject (table, JSON, HTML)",
    .synopsis = "[OPTIONS] INPUT...",
    .intro =
    "Reads the feeds `dmarcpipe run` writes and says, per policy domain, who sends\n"
    "as it, which senders are legitimate but not aligned, whether it is ready for\n"
    "its next step towards p=reject, and what reject would block.\n\n"
    "INPUT is a folder `dmarcpipe run` wrote (its rollups.ndjson and reports.ndjson),\n"
    "a feed file of either kind, or kafka://HOST:PORT[,HOST:PORT...]/TOPIC (give the\n"
    "rollups topic and the reports topic; read_committed), or - for standard input\n"
    "(read once, so with --to). Rollups split over many\n"
    "lines, flushes or runs are summed, as the warehouse does.\n\n",
    .rows = ROWS,
    .n_rows = sizeof ROWS / sizeof *ROWS,
    .width = 25,
    .apply = apply,
};

int dp_cmd_report(int argc, char **argv) {
    report_ctx c;
    memset(&c, 0, sizeof c);
    dp_insight_options_init(&c.o);
    c.fmt = DP_INSIGHT_TABLE;
    c.ri.kafka.stop = &stop_requested;
    c.ri.kafka.broker_timeout = 60;
    c.ri.kafka.props = c.props;
    dp_insight_options *o = &c.o;
    report_inputs *rip = &c.ri;
    int rc = 2;
    dp_options opts;
    if (dp_options_init(&opts, &dp_cmd_report_options) != 0) return 2;
    if (dp_options_collect(&opts, argc, argv, &rc) != 0 || (rc = dp_options_apply(&opts, &c)) != 0) goto done;
    rc = 2;
    dp_log *log = NULL;
    if (dp_cli_log_open("report", c.log_level, c.log_format, &log) != 0) goto done;
    rip->kafka.log = log;
    if (opts.n_args == 0) {
        fprintf(stderr, "dmarcpipe report: no INPUT (see --help)\n");
        goto done;
    }
    const char *out_path = c.out_path;
    dp_insight_format fmt = c.fmt;
    int have_format = c.have_format;
    if (!have_format) {
        if (out_path)
            fmt = ends_with(out_path, ".html") || ends_with(out_path, ".htm") ? DP_INSIGHT_HTML
                  : ends_with(out_path, ".txt")                              ? DP_INSIGHT_TABLE
                                                                             : DP_INSIGHT_JSON;
        else
            fmt = isatty(STDOUT_FILENO) ? DP_INSIGHT_TABLE : DP_INSIGHT_JSON;
    }
    for (size_t i = 0; i < opts.n_args; i++) {
        int r = add_input(rip, opts.args[i]);
        if (r != 0) {
            if (r == -1) dp_log_error(log, "report", DP_LOG_NONE, "dmarcpipe report: out of memory");
            rc = 3;
            goto done;
        }
    }
    if (rip->stream && o->to_day == DP_INSIGHT_DAY_UNSET) {
        /* finding the period takes a pass of its own, and a pipe has one */
        dp_log_error(log, "report", DP_LOG_FIELDS(DP_LOG_STR("input", rip->stream)),
                     "dmarcpipe report: %s is not a regular file and can be read only once: name the period with --to",
                     rip->stream);
        goto done;
    }
    o->domains = (const char *const *)c.domains;
    o->n_domains = c.n_domains;
    warn_state ws = {0, log};
    o->warn = warn_line;
    o->warn_ctx = &ws;
    if (!(rip->block = malloc(BLOCK + MAX_LINE))) {
        dp_log_error(log, "report", DP_LOG_NONE, "dmarcpipe report: out of memory");
        rc = 3;
        goto done;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    dp_error err = {0};
    dp_insight_inputs in = {read_inputs, rip};
    dp_insight *ins = dp_insight_build(&in, o, &err);
    if (!ins) {
        char t[DP_ERROR_TEXT_MAX];
        dp_log_error(log, "report", DP_LOG_FIELDS(DP_LOG_STR("error", err.msg)), "dmarcpipe report: %s",
                     dp_error_text(err.msg, t));
        rc = err.kind == DP_ERR_USAGE ? 2 : 3;
        goto done;
    }
    if (ws.count > WARN_LINES)
        dp_log_warn(log, "report", DP_LOG_FIELDS(DP_LOG_U64("lines_skipped", ws.count)),
                    "dmarcpipe report: %llu lines skipped in all (the first %d named above)",
                    (unsigned long long)ws.count, WARN_LINES);
    int wrc = out_path ? write_to(ins, fmt, out_path, &err) : dp_insight_write(ins, fmt, stdout, &err);
    if (wrc != 0) {
        char t[DP_ERROR_TEXT_MAX];
        dp_log_error(log, "report", DP_LOG_FIELDS(DP_LOG_STR("error", err.msg)), "dmarcpipe report: %s",
                     dp_error_text(err.msg, t));
        rc = 3;
    } else {
        rc = ws.count ? 1 : 0;
        if (out_path)
            dp_log_info(log, "report",
                        DP_LOG_FIELDS(DP_LOG_U64("domains", dp_insight_domains(ins)),
                                      DP_LOG_U64("lines", dp_insight_lines(ins)), DP_LOG_STR("output", out_path)),
                        "dmarcpipe report: %zu domain%s, %llu lines read; wrote %s", dp_insight_domains(ins),
                        dp_insight_domains(ins) == 1 ? "" : "s", (unsigned long long)dp_insight_lines(ins), out_path);
    }
    dp_insight_free(ins);
done:
    for (size_t i = 0; i < c.n_domains; i++) free(c.domains[i]);
    for (size_t i = 0; i < rip->n; i++) free(rip->paths[i]);
    free(rip->paths);
    free(rip->block);
    dp_log_free(rip->kafka.log);
    dp_options_free(&opts);
    return rc;
}
