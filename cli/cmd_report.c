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
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
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
} warn_state;

static void warn_line(void *ctx, const char *where, const char *reason) {
    warn_state *w = ctx;
    char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
    if (++w->count <= WARN_LINES)
        fprintf(stderr, "dmarcpipe report: %s: skipped: %s\n", dp_error_text(where, a), dp_error_text(reason, b));
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
            fprintf(stderr, "dmarcpipe report: %s: no rollups.ndjson or reports.ndjson in this folder\n", arg);
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

static const char USAGE[] =
    "usage: dmarcpipe report [OPTIONS] INPUT...\n\n"
    "Reads the feeds `dmarcpipe run` writes and says, per policy domain, who sends\n"
    "as it, which senders are legitimate but not aligned, whether it is ready for\n"
    "its next step towards p=reject, and what reject would block.\n\n"
    "INPUT is a folder `dmarcpipe run` wrote (its rollups.ndjson and reports.ndjson),\n"
    "a feed file of either kind, or kafka://HOST:PORT[,HOST:PORT...]/TOPIC (give the\n"
    "rollups topic and the reports topic; read_committed), or - for standard input\n"
    "(read once, so with --to). Rollups split over many\n"
    "lines, flushes or runs are summed, as the warehouse does.\n\n"
    "Options:\n"
    "  --from YYYY-MM-DD      first day of the period (default: the 30 days ending at --to)\n"
    "  --to YYYY-MM-DD        last day (default: the latest day in the data)\n"
    "  --domain D             only this policy domain; repeatable\n"
    "  --format table|json|html  (default: from -o's extension, else table on a\n"
    "                         terminal and json otherwise)\n"
    "  -o FILE                write the report to FILE (atomically)\n"
    "  --ready-threshold R    aligned / legitimate needed for \"ready\" (default 0.98)\n"
    "  --min-days N           days with reports needed for a verdict (default 7)\n"
    "  --min-messages N       messages needed for a verdict (default 100)\n"
    "  --kafka-config FILE    librdkafka properties (as for run; values never printed)\n"
    "  -X KEY=VALUE           a librdkafka property; repeatable\n"
    "  --broker-timeout SEC   how long to wait for a broker (default 60)\n\n"
    "Verdicts: insufficient_data, enforced, ready (with next_step quarantine or\n"
    "reject), fix_senders. The README defines the classes and each figure.\n"
    "Exit status: 0; 1 when some input lines were not feed lines (skipped, named\n"
    "on stderr; the report is still written); 2 usage; 3 an input or the output\n"
    "could not be read or written.\n";

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        fprintf(stderr, "dmarcpipe report: %s takes a whole number up to %llu, got '%s'\n", opt,
                (unsigned long long)max, s);
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

int dp_cmd_report(int argc, char **argv) {
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"domain", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'F'},
        {"ready-threshold", required_argument, NULL, 'r'},
        {"min-days", required_argument, NULL, 'D'},
        {"min-messages", required_argument, NULL, 'M'},
        {"kafka-config", required_argument, NULL, 'C'},
        {"broker-timeout", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    dp_insight_options o;
    dp_insight_options_init(&o);
    char *domains[MAX_DOMAINS];
    size_t n_domains = 0;
    const char *props[MAX_PROPS];
    const char *out_path = NULL;
    int have_format = 0;
    dp_insight_format fmt = DP_INSIGHT_TABLE;
    report_inputs ri = {.kafka = {.stop = &stop_requested, .broker_timeout = 60, .props = props}};
    int c, idx, rc = 2;
    uint64_t v;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:X:", opts, &idx)) != -1) {
        switch (c) {
        case 'f':
        case 't':
            if (dp_insight_parse_day(optarg, c == 'f' ? &o.from_day : &o.to_day) != 0) {
                fprintf(stderr, "dmarcpipe report: --%s takes a date YYYY-MM-DD, got '%s'\n",
                        c == 'f' ? "from" : "to", optarg);
                goto done;
            }
            break;
        case 'd': {
            size_t n = strlen(optarg);
            if (n && optarg[n - 1] == '.') n--;
            if (n == 0 || n > 253 || n_domains == MAX_DOMAINS) {
                fprintf(stderr, "dmarcpipe report: --domain takes a domain name (at most %d of them)\n", MAX_DOMAINS);
                goto done;
            }
            char *d = strndup(optarg, n);
            if (!d) goto done;
            for (char *p = d; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
            domains[n_domains++] = d;
            break;
        }
        case 'F':
            if (format_from_name(optarg, &fmt) != 0) {
                fprintf(stderr, "dmarcpipe report: --format is table, json or html, got '%s'\n", optarg);
                goto done;
            }
            have_format = 1;
            break;
        case 'o': out_path = optarg; break;
        case 'r':
            errno = 0;
            o.ready_threshold = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(o.ready_threshold >= 0 && o.ready_threshold <= 1)) {
                fprintf(stderr, "dmarcpipe report: --ready-threshold is a ratio from 0 to 1, got '%s'\n", optarg);
                goto done;
            }
            break;
        case 'D':
            if (parse_u64("--min-days", optarg, 3660, &o.min_days) != 0) goto done;
            break;
        case 'M':
            if (parse_u64("--min-messages", optarg, UINT64_MAX, &o.min_messages) != 0) goto done;
            break;
        case 'C': ri.kafka.config_file = optarg; break;
        case 'X':
            if (ri.kafka.n_props == MAX_PROPS) {
                fprintf(stderr, "dmarcpipe report: at most %d -X options\n", MAX_PROPS);
                goto done;
            }
            props[ri.kafka.n_props++] = optarg;
            break;
        case 'B':
            if (parse_u64("--broker-timeout", optarg, 86400, &v) != 0) goto done;
            ri.kafka.broker_timeout = (double)v;
            break;
        case 'h':
            fputs(USAGE, stdout);
            rc = 0;
            goto done;
        default:
            fputs(USAGE, stderr);
            goto done;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "dmarcpipe report: no INPUT (see --help)\n");
        goto done;
    }
    if (!have_format) {
        if (out_path)
            fmt = ends_with(out_path, ".html") || ends_with(out_path, ".htm") ? DP_INSIGHT_HTML
                  : ends_with(out_path, ".txt")                              ? DP_INSIGHT_TABLE
                                                                             : DP_INSIGHT_JSON;
        else
            fmt = isatty(STDOUT_FILENO) ? DP_INSIGHT_TABLE : DP_INSIGHT_JSON;
    }
    for (int i = optind; i < argc; i++) {
        int r = add_input(&ri, argv[i]);
        if (r != 0) {
            if (r == -1) fprintf(stderr, "dmarcpipe report: out of memory\n");
            rc = 3;
            goto done;
        }
    }
    if (ri.stream && o.to_day == DP_INSIGHT_DAY_UNSET) {
        /* finding the period takes a pass of its own, and a pipe has one */
        fprintf(stderr, "dmarcpipe report: %s is not a regular file and can be read only once: name the period with --to\n",
                ri.stream);
        goto done;
    }
    o.domains = (const char *const *)domains;
    o.n_domains = n_domains;
    warn_state ws = {0};
    o.warn = warn_line;
    o.warn_ctx = &ws;
    if (!(ri.block = malloc(BLOCK + MAX_LINE))) {
        fprintf(stderr, "dmarcpipe report: out of memory\n");
        rc = 3;
        goto done;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    dp_error err = {0};
    dp_insight_inputs in = {read_inputs, &ri};
    dp_insight *ins = dp_insight_build(&in, &o, &err);
    if (!ins) {
        char t[DP_ERROR_TEXT_MAX];
        fprintf(stderr, "dmarcpipe report: %s\n", dp_error_text(err.msg, t));
        rc = err.kind == DP_ERR_USAGE ? 2 : 3;
        goto done;
    }
    if (ws.count > WARN_LINES)
        fprintf(stderr, "dmarcpipe report: %llu lines skipped in all (the first %d named above)\n",
                (unsigned long long)ws.count, WARN_LINES);
    int wrc = out_path ? write_to(ins, fmt, out_path, &err) : dp_insight_write(ins, fmt, stdout, &err);
    if (wrc != 0) {
        char t[DP_ERROR_TEXT_MAX];
        fprintf(stderr, "dmarcpipe report: %s\n", dp_error_text(err.msg, t));
        rc = 3;
    } else {
        rc = ws.count ? 1 : 0;
        if (out_path)
            fprintf(stderr, "dmarcpipe report: %zu domain%s, %llu lines read; wrote %s\n", dp_insight_domains(ins),
                    dp_insight_domains(ins) == 1 ? "" : "s", (unsigned long long)dp_insight_lines(ins), out_path);
    }
    dp_insight_free(ins);
done:
    for (size_t i = 0; i < n_domains; i++) free(domains[i]);
    for (size_t i = 0; i < ri.n; i++) free(ri.paths[i]);
    free(ri.paths);
    free(ri.block);
    return rc;
}
