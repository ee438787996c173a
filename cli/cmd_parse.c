/* cmd_parse — `dmarcpipe parse`: the user's debugging tool.
 *
 * Prints every record of every report as one JSON object per line, or with
 * --summary one line per input.  Records stream out of ingest as soon as
 * they close, but a report counts whole or not at all, so a report's lines
 * are held back until ingest commits it: in memory up to SPILL_AT, then in
 * an anonymous temporary file, so memory stays flat even for a 1 GiB
 * report.  A rejected report's held lines are dropped; the error goes to
 * stderr and, with --quarantine, the input is copied there with its reason
 * (the file source's rejection).  Inputs come from the file source, as
 * `dmarcpipe run` reads them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_log.h"
#include "dp_buf.h"
#include "dp_json.h"
#include "sink.h"
#include "source.h"

#define SPILL_AT (8u << 20)

typedef struct parse_state {
    int summary;
    const char *quarantine;
    dp_ingest_limits lim;
    dp_buf line;
    dp_buf pending;   /* lines of the report in progress */
    FILE *spill;      /* overflow of `pending`, created on first need */
    int spilled;
    dp_error *errs;   /* this input's rejections, for the quarantine */
    size_t n_errs, cap_errs;
    int io_failed;    /* writing the output failed: every later report fails too */
    int keep_failed;  /* a rejection could not be kept, or a SOURCE not listed */
    int usage_failed; /* a SOURCE that cannot be read at all */
    int any_rejected;
    const char *log_level, *log_format; /* NULL: the defaults */
    dp_log *log;
} parse_state;

static int spill_pending(parse_state *st) {
    if (!st->spill && !(st->spill = tmpfile())) return -1;
    if (fwrite(st->pending.data, 1, st->pending.len, st->spill) != st->pending.len) return -1;
    st->spilled = 1;
    dp_buf_reset(&st->pending);
    return 0;
}

static int on_record(void *ctx, const dp_report *rep, const dp_record *rec) {
    parse_state *st = ctx;
    if (st->summary) return 0;
    dp_buf_reset(&st->line);
    dp_format_record(&st->line, rep, rec);
    dp_buf_putc(&st->line, '\n');
    dp_buf_append(&st->pending, st->line.data, st->line.len);
    if (st->line.failed || st->pending.failed) return -1;
    if (st->pending.len >= SPILL_AT && spill_pending(st) != 0) {
        st->io_failed = 1;
        return -1;
    }
    return 0;
}

static void discard_pending(parse_state *st) {
    dp_buf_reset(&st->pending);
    if (st->spilled) {
        rewind(st->spill);
        if (ftruncate(fileno(st->spill), 0) != 0) st->io_failed = 1;
        st->spilled = 0;
    }
}

static int on_report_done(void *ctx, const dp_report *rep) {
    (void)rep;
    parse_state *st = ctx;
    if (st->spilled) {
        char buf[65536];
        size_t n;
        fflush(st->spill);
        rewind(st->spill);
        while ((n = fread(buf, 1, sizeof buf, st->spill)) > 0)
            if (fwrite(buf, 1, n, stdout) != n) st->io_failed = 1;
    }
    if (st->pending.len && fwrite(st->pending.data, 1, st->pending.len, stdout) != st->pending.len)
        st->io_failed = 1;
    discard_pending(st);
    return st->io_failed ? -1 : 0;
}

/* Prints a rejection and keeps it for the input's quarantine record. */
static void remember_error(parse_state *st, const dp_error *err) {
    dp_log_dp_error(st->log, DP_LOG_WARN, "ingest", err);
    if (st->n_errs == st->cap_errs) {
        size_t cap = st->cap_errs ? st->cap_errs * 2 : 8;
        dp_error *e = realloc(st->errs, cap * sizeof *e);
        if (!e) return; /* the error was printed; the quarantine keeps the others */
        st->errs = e;
        st->cap_errs = cap;
    }
    st->errs[st->n_errs++] = *err;
}

static void on_report_failed(void *ctx, const dp_report *rep, const dp_error *err) {
    (void)rep;
    parse_state *st = ctx;
    discard_pending(st);
    remember_error(st, err);
}

static const dp_report_handler HANDLER = {
    .record = on_record, .report_done = on_report_done, .report_failed = on_report_failed};

/* Reads one input, prints its records (or its summary line), and hands
 * it back to its source when it was rejected. */
static void parse_one(parse_state *st, const dp_input *in) {
    dp_ingest_result res;
    dp_error err;
    st->n_errs = 0;
    int rc;
    int fd = dp_source_open_input(in, &err);
    if (fd < 0) {
        memset(&res, 0, sizeof res);
        res.rejected = 1;
        on_report_failed(st, NULL, &err);
        rc = -1;
    } else {
        rc = dp_ingest_fd(&st->lim, in->name, fd, &HANDLER, st, &res, &err);
        close(fd);
    }
    if (rc != 0) {
        st->any_rejected = 1;
        /* every rejection passes report_failed; this is a safety net */
        if (st->n_errs == 0) remember_error(st, &err);
        dp_error qerr;
        char text[DP_ERROR_TEXT_MAX];
        int environmental = 0;
        for (size_t k = 0; k < st->n_errs; k++) environmental |= dp_error_is_environmental(&st->errs[k]);
        /* the exit status says so; the inputs after it are still read.  An
         * input that could not be read through (memory, I/O) is not bad:
         * it is not quarantined */
        if (environmental) {
            st->keep_failed = 1;
        } else if (dp_source_reject(in, st->errs, st->n_errs, &qerr) != 0) {
            dp_log_error(st->log, "parse", DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("error", qerr.msg)),
                         "dmarcpipe: %s", dp_error_text(qerr.msg, text));
            st->keep_failed = 1;
        }
    }
    if (st->summary) {
        dp_buf_reset(&st->line);
        int first = 1;
        dp_buf_putc(&st->line, '{');
        dp_json_kv_bytes(&st->line, &first, "input", in->name);
        dp_json_kv_u64(&st->line, &first, "reports", res.reports);
        dp_json_kv_u64(&st->line, &first, "records", res.records);
        dp_json_kv_u64(&st->line, &first, "messages", res.messages);
        dp_json_kv_u64(&st->line, &first, "rejected", res.rejected);
        dp_buf_puts(&st->line, "}\n");
        fwrite(st->line.data, 1, st->line.len, stdout);
        /* one line per input: keep it next to that input's errors on stderr */
        fflush(stdout);
    }
}

/* Every input of one SOURCE (a file, or a folder in name order). */
static void parse_source(parse_state *st, const char *uri) {
    dp_source_options so = {.quarantine_dir = st->quarantine, .log = st->log};
    dp_error err;
    char text[DP_ERROR_TEXT_MAX];
    dp_source *src = dp_source_open(uri, &so, &err);
    if (!src) {
        dp_log_error(st->log, "parse", DP_LOG_FIELDS(DP_LOG_STR("source", uri), DP_LOG_STR("error", err.msg)),
                     "dmarcpipe parse: %s", dp_error_text(err.msg, text));
        st->usage_failed = 1;
        return;
    }
    dp_input_list inputs = {0};
    if (dp_source_next(src, &inputs, &err) != 0) {
        dp_log_error(st->log, "parse", DP_LOG_FIELDS(DP_LOG_STR("source", uri), DP_LOG_STR("error", err.msg)),
                     "dmarcpipe parse: %s", dp_error_text(err.msg, text));
        st->keep_failed = 1;
    }
    for (size_t i = 0; i < inputs.n; i++) parse_one(st, inputs.v[i]);
    dp_input_list_free(&inputs);
    dp_source_close(src);
}

static const dp_options_row ROWS[] = {
    {NULL, 0, NULL, "Options:\n", 0, NULL},
    {"summary", 0, NULL, "one JSON line per input instead: reports, records,\n"
     "messages (the sum of counts) and rejected parts", 0, "false"},
    {"quarantine", 0, "DIR", "copy each rejected input into DIR, beside a\n"
     "NAME.reason JSON file (error, stage, byte offset)", DP_OPTIONS_PATH, NULL},
    DP_CLI_LOG_ROWS,
    {"help", 'h', NULL, "this help", DP_OPTIONS_HELP, NULL},
    DP_CLI_LIMIT_ROWS,
};

static int apply(void *ctx, const dp_options_row *row, const char *v, char *why, size_t cap) {
    parse_state *st = ctx;
    int r = dp_cli_limit_option(&st->lim, row->name, v, why, cap);
    if (r == 0) r = dp_cli_log_option(row->name, v, &st->log_level, &st->log_format, why, cap);
    if (r != 0) return r < 0 ? -1 : 0;
    if (strcmp(row->name, "summary") == 0) st->summary = strcmp(v, "true") == 0;
    else if (strcmp(row->name, "quarantine") == 0) st->quarantine = v;
    return 0;
}

const dp_options_command dp_cmd_parse_options = {
    .name = "parse",
    .summary = "parse reports and print their records as NDJSON (debugging, parity)",
    .synopsis = "[OPTIONS] FILE|DIR...",
    .intro = "Reads DMARC aggregate reports in any form they arrive in (XML, gzip, zip,\n"
             "zstd, nested in each other, an e-mail message or an mbox) and prints each\n"
             "record as one JSON object per line, with its report's fields flattened in.\n"
             "Directories are read recursively, in name order.  Rejected inputs are\n"
             "named on stderr with the reason; the exit status is then 1.\n\n",
    .rows = ROWS,
    .n_rows = sizeof ROWS / sizeof *ROWS,
    .width = 21,
    .apply = apply,
};

int dp_cmd_parse(int argc, char **argv) {
    parse_state st;
    memset(&st, 0, sizeof st);
    dp_ingest_limits_default(&st.lim);
    dp_options opts;
    if (dp_options_init(&opts, &dp_cmd_parse_options) != 0) return 2;
    int code = 2;
    if (dp_options_collect(&opts, argc, argv, &code) == 0 && (code = dp_options_apply(&opts, &st)) == 0) {
        code = -1; /* go on */
        if (opts.n_args == 0) {
            fprintf(stderr, "dmarcpipe parse: no input given\n");
            dp_options_help(&dp_cmd_parse_options, stderr);
            code = 2;
        }
    }
    if (code < 0 && dp_cli_log_open("parse", st.log_level, st.log_format, &st.log) != 0) code = 2;
    if (code >= 0) {
        dp_options_free(&opts);
        return code;
    }
    dp_ingest_global_init();
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    for (size_t i = 0; i < opts.n_args; i++) parse_source(&st, opts.args[i]);
    if (fflush(stdout) != 0) st.io_failed = 1;
    if (st.io_failed)
        dp_log_error(st.log, "parse", DP_LOG_FIELDS(DP_LOG_STR("error", strerror(errno))),
                     "dmarcpipe: writing the output failed: %s", strerror(errno));
    dp_log_free(st.log);
    dp_buf_free(&st.line);
    dp_buf_free(&st.pending);
    if (st.spill) fclose(st.spill);
    free(st.errs);
    dp_options_free(&opts);
    return st.io_failed || st.keep_failed ? 3 : st.usage_failed ? 2 : st.any_rejected ? 1 : 0;
}
