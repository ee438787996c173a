/* cmd_run — `dmarcpipe run`: the pipeline, from sources to rollups.
 *
 * Parses the options, opens the sinks, the state and the sources, and
 * hands them to the run (run/): once over everything (a batch run), or
 * for good (--follow).  With no --sink, the embedded default writes
 * ./dmarcpipe-out/rollups.ndjson and the report inventory
 * ./dmarcpipe-out/reports.ndjson, and rejected inputs go to
 * ./dmarcpipe-out/quarantine/ with their reasons.
 *
 * With a transactional sink (kafka://) the run goes in epochs of
 * --epoch-inputs inputs or --flush-interval seconds, exactly once.
 * SIGTERM and SIGINT then end the open epoch cleanly and exit 0.  The
 * signal flag is this program's one piece of global state: a signal
 * handler has nowhere else to write.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_log.h"
#include "dp_clock.h"
#include "dp_fs.h"
#include "dp_kafka.h"
#include "observe.h"
#include "progress.h"
#include "run.h"
#include "run_enrich.h"
#include "run_options.h"

#define DEFAULT_OUT "dmarcpipe-out"
#define MAX_SINKS DP_RUN_OPTIONS_MAX_SINKS
#define MAX_SOURCES DP_RUN_OPTIONS_MAX_SOURCES

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* This worker's name on a shared Maildir: --instance-id, or the host's
 * name and a hash of the state's real path, which stay the same across
 * restarts and differ between two workers of one host. */
static const char *default_worker_id(const char *instance_id, const char *state_dir, char *buf, size_t cap) {
    if (instance_id) return instance_id;
    char host[64] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    uint32_t h = 2166136261u; /* FNV-1a */
    char *real = state_dir ? realpath(state_dir, NULL) : NULL;
    for (const char *p = real ? real : ""; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    free(real);
    snprintf(buf, cap, "%s-%08x", host, h);
    return buf;
}

/* The ledger topic the workers of the first Kafka inbox among the
 * sources share, "dmarcpipe.ledger.GROUP"; 0 when none names a group. */
static int inbox_ledger_topic(char **uris, int n, char *buf, size_t cap) {
    for (int i = 0; i < n; i++) {
        if (strncmp(uris[i], "kafka://", 8) != 0) continue;
        const char *q = strchr(uris[i], '?');
        for (const char *p = q; p; p = strchr(p + 1, '&')) {
            if (strncmp(p + 1, "group=", 6) != 0) continue;
            size_t len = strcspn(p + 7, "&");
            if (len == 0 || len + 18 >= cap) return 0;
            snprintf(buf, cap, "dmarcpipe.ledger.%.*s", (int)len, p + 7);
            return 1;
        }
    }
    return 0;
}

/* Whether two kafka:// URIs name the same brokers. */
static int same_cluster(const char *a, const char *b) {
    a += strlen("kafka://");
    b += strncmp(b, "kafka://", 8) == 0 ? 8 : 0;
    size_t na = strcspn(a, "/"), nb = strcspn(b, "/");
    return na == nb && strncmp(a, b, na) == 0;
}

/* The run's summary: one info event.  Plain, it is the text a human has
 * always read; json and logfmt carry each figure as a field. */
static void print_summary(dp_log *log, const dp_run_stats *rs, const dp_engine_config *cfg,
                          const char *const *sink_uris, size_t n_sink_uris, int epochs, const char *done_dir) {
    const dp_engine_stats *st = &rs->engine;
    double secs = st->seconds > 0 ? st->seconds : 1e-9;
    if (dp_log_format_of(log) != DP_LOG_PLAIN) {
        dp_log_info(log, "run",
                    DP_LOG_FIELDS(DP_LOG_U64("inputs", st->inputs), DP_LOG_U64("inputs_rejected", st->inputs_rejected),
                                  DP_LOG_U64("reports_accepted", st->reports),
                                  DP_LOG_U64("reports_rejected", st->rejected),
                                  DP_LOG_U64("duplicates", st->duplicates), DP_LOG_U64("records", st->records),
                                  DP_LOG_U64("messages", st->messages), DP_LOG_U64("rollups", st->rollups),
                                  DP_LOG_U64("xml_bytes", st->xml_bytes), DP_LOG_F64("seconds", st->seconds),
                                  DP_LOG_F64("rate", st->records / secs), DP_LOG_U64("workers", cfg->workers),
                                  DP_LOG_U64("shards", cfg->shards), DP_LOG_STR("sink", sink_uris[0]),
                                  DP_LOG_U64("sinks", n_sink_uris), DP_LOG_U64("routed", st->routed),
                                  DP_LOG_U64("epochs", rs->epochs), DP_LOG_U64("epochs_retried", rs->epochs_retried),
                                  DP_LOG_U64("epochs_abandoned", rs->epochs_abandoned),
                                  DP_LOG_U64("epochs_recovered", rs->recovered_epochs),
                                  DP_LOG_F64("sink_seconds", rs->sink_seconds), DP_LOG_U64("acked", rs->acked),
                                  DP_LOG_U64("ack_failures", rs->ack_failures), DP_LOG_STR("done_dir", done_dir),
                                  DP_LOG_U64("held", rs->held), DP_LOG_U64("stopped", rs->stopped)),
                    "dmarcpipe run: summary");
        return;
    }
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b,
                  "dmarcpipe run: %llu inputs (%llu rejected) in %.2f s, %u workers, %u shards\n"
                  "  reports:  %llu accepted, %llu rejected, %llu duplicate\n"
                  "  records:  %llu   messages: %llu\n"
                  "  rollups:  %llu per sink (%s%s)\n"
                  "  rate:     %.0f records/s, %.1f MB/s of XML",
                  (unsigned long long)st->inputs, (unsigned long long)st->inputs_rejected, st->seconds, cfg->workers,
                  cfg->shards, (unsigned long long)st->reports, (unsigned long long)st->rejected,
                  (unsigned long long)st->duplicates, (unsigned long long)st->records,
                  (unsigned long long)st->messages, (unsigned long long)st->rollups, sink_uris[0],
                  n_sink_uris > 1 ? ", ..." : "", st->records / secs, st->xml_bytes / secs / 1e6);
    if (st->routed)
        dp_buf_printf(&b, "\n  routed:   %llu report(s) forwarded to the partition that owns them",
                      (unsigned long long)st->routed);
    if (epochs) {
        dp_buf_printf(&b, "\n  epochs:   %llu committed, %llu run again, %llu abandoned to another worker, %llu "
                      "recovered from the ledger%s",
                      (unsigned long long)rs->epochs, (unsigned long long)rs->epochs_retried,
                      (unsigned long long)rs->epochs_abandoned, (unsigned long long)rs->recovered_epochs,
                      rs->stopped ? "; stopped by a signal" : "");
        /* the sink's own rate: producing the rollups through the commit */
        dp_buf_printf(&b, "\n  kafka:    %llu rollups produced and committed in %.3f s (%.0f rollups/s)",
                      (unsigned long long)st->rollups, rs->sink_seconds,
                      rs->sink_seconds > 0 ? st->rollups / rs->sink_seconds : 0.0);
    }
    if (done_dir)
        dp_buf_printf(&b, "\n  done:     %llu input(s) moved to %s%s", (unsigned long long)rs->acked, done_dir,
                      rs->ack_failures ? " (some could not be: see above)" : "");
    if (rs->held)
        dp_buf_printf(&b, "\n  held:     %llu rejected input(s) left where they were: their rejection could not be "
                      "kept", (unsigned long long)rs->held);
    /* one event, so that the lines stay together; the log cuts past 4 KiB,
     * which a summary never reaches */
    if (!b.failed) dp_log_info(log, "run", DP_LOG_NONE, "%s", b.data);
    dp_buf_free(&b);
}

/* An error that ends the run, at error level: "dmarcpipe run: MESSAGE". */
static void say_error(dp_log *log, const dp_error *err) {
    char text[DP_ERROR_TEXT_MAX];
    dp_log_error(log, "run", DP_LOG_FIELDS(DP_LOG_STR("error", err->msg), DP_LOG_STR("stage", dp_error_stage(err->kind))),
                 "dmarcpipe run: %s", dp_error_text(err->msg, text));
}

/* A report gets a reader thread once this much of its XML is parsed:
 * most reports are far smaller and never start one. */
#define READAHEAD_AFTER ((uint64_t)1 << 20)

/* The run, with its options loaded (run_options.c). */
static int run_pipeline(dp_run_options *ro, dp_log *log) {
    dp_run_config run = ro->run;
    dp_engine_config *cfg = &run.engine;
    dp_ingest_limits *limits = &run.limits;
    long cores = ro->cores;
    const char **sink_uris = ro->sink_uris;
    size_t n_sink_uris = ro->n_sink_uris;
    const char *reports_path = ro->reports_path, *state_dir = ro->state_dir, *quarantine = ro->quarantine;
    dp_sink_options sopts = ro->sopts;
    sopts.stop = &stop_requested;
    sopts.log = log;
    cfg->log = log;
    const char **props = ro->props;
    uint64_t epoch_inputs = ro->epoch_inputs;
    double broker_timeout = ro->broker_timeout; /* unset: a minute for a batch run, for ever for a follower */
    int readahead = ro->readahead; /* -1: auto */
    int follow = ro->follow;
    double poll_seconds = ro->poll_seconds;
    const char *done_dir = ro->done_dir;
    dp_source_options so = ro->so;
    /* the SOURCEs, from whichever layer set them */
    char **srcs = ro->sources;
    int n_srcs = (int)ro->n_sources;

    /* The embedded default: two files in ./dmarcpipe-out. */
    int embedded = n_sink_uris == 0;
    if (embedded || !quarantine) {
        if (dp_fs_mkdir_p(DEFAULT_OUT) != 0) {
            dp_log_error(log, "run", DP_LOG_FIELDS(DP_LOG_STR("path", DEFAULT_OUT), DP_LOG_STR("error", strerror(errno))),
                         "dmarcpipe run: cannot create %s: %s", DEFAULT_OUT, strerror(errno));
            return 3;
        }
    }
    if (embedded) {
        sink_uris[n_sink_uris++] = "file:" DEFAULT_OUT "/rollups.ndjson";
        if (!reports_path) reports_path = DEFAULT_OUT "/reports.ndjson";
    }
    const char *quarantine_dir = quarantine ? quarantine : DEFAULT_OUT "/quarantine";

    /* a batch run ends, with nothing acknowledged, when the broker stays
     * away; a follower waits for it, and says so */
    sopts.broker_timeout = broker_timeout >= 0 ? broker_timeout : follow ? 0 : 60;
    dp_ingest_global_init();
    dp_error err;
    int rc = 0;
    dp_sink *sinks[MAX_SINKS] = {0};
    dp_sink *reports = NULL;
    dp_source *sources[MAX_SOURCES] = {0};
    size_t n_sources = 0;
    char *skip_real[5] = {0};
    size_t n_skip = 0;
    dp_run_stats rs;
    memset(&rs, 0, sizeof rs);
    dp_observe obs;
    memset(&obs, 0, sizeof obs);
    sopts.props = props;
    /* SIGTERM (Kubernetes) and ^C: end the open epoch or cycle cleanly */
    int has_kafka = 0;
    for (size_t i = 0; i < n_sink_uris; i++)
        if (strncmp(sink_uris[i], "kafka://", 8) == 0) has_kafka = 1;
    int kafka_source = 0;
    for (int i = 0; i < n_srcs; i++)
        if (strncmp(srcs[i], "kafka://", 8) == 0) kafka_source = 1;
    dp_kafka_settings kafka_settings = {sopts.config_file, props, sopts.n_props, &stop_requested,
                                        sopts.broker_timeout, log};
    so.kafka = &kafka_settings;
    so.log = log;
    if (follow || has_kafka || kafka_source) {
        struct sigaction sa = {0};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    /* the endpoint before the state: /healthz answers while a long
     * recovery runs, and /readyz says 503 until it is done */
    if (dp_observe_start(&obs, ro->metrics_addr, cfg->shards, poll_seconds) != 0) {
        rc = 2;
        goto out;
    }
    cfg->metrics = sopts.metrics = so.metrics = obs.metrics;
    run.progress = &obs.live;
    /* The state first: it is one process's at a time (it is locked), and a
     * second run on it must stop before it opens, and truncates, a sink.
     * It is what exactly once, and a long-running process, stand on: on
     * by default for the embedded default, Kafka and --follow (it keeps a
     * follower's memory bounded too). */
    /* a mailbox or an mbox is acknowledged after the commit: the state is
     * what tells a restart which of its messages were counted */
    int mail = 0;
    for (int i = 0; i < n_srcs; i++)
        if (!dp_source_is_path(srcs[i])) mail = 1;
    if ((embedded || has_kafka || follow || mail) && !state_dir) {
        state_dir = DEFAULT_OUT "/state";
        if (dp_fs_mkdir_p(DEFAULT_OUT) != 0) {
            dp_log_error(log, "run", DP_LOG_FIELDS(DP_LOG_STR("path", DEFAULT_OUT), DP_LOG_STR("error", strerror(errno))),
                         "dmarcpipe run: cannot create %s: %s", DEFAULT_OUT, strerror(errno));
            rc = 3;
            goto out;
        }
    }
    if (!(cfg->dedup = dp_dedup_open(state_dir, &err))) {
        say_error(log, &err);
        rc = 3;
        goto out;
    }
    /* with a state, a file sink is never replaced: each run goes on from
     * what the state last committed (dp_conductor_resume) */
    sopts.resume = state_dir != NULL;
    /* workers of one Kafka inbox each need a transaction of their own: by
     * default each is named after its host and state */
    char worker_id[128];
    so.worker_id = default_worker_id(sopts.instance_id, state_dir, worker_id, sizeof worker_id);
    if (kafka_source && !sopts.instance_id) sopts.instance_id = so.worker_id;
    /* ... and one ledger, where each learns what the others counted */
    char shared_ledger[300];
    if (kafka_source && !sopts.ledger_topic && inbox_ledger_topic(srcs, n_srcs, shared_ledger,
                                                                  sizeof shared_ledger))
        sopts.ledger_topic = shared_ledger;
    run.ledger_shared = kafka_source;
    /* who each source IP is: its cache beside the state; a follower's
     * flushes never wait for lookups, a batch run's last one only when
     * asked (--enrich-wait) */
    if ((rc = dp_run_enrich_open(&ro->enrich, state_dir, log, obs.metrics, &cfg->enrich)) != 0) goto out;
    cfg->enrich_wait = follow ? 0 : ro->enrich.wait;
    double flush_interval = cfg->flush_interval;
    dp_sink *txn_sink = NULL;
    for (size_t i = 0; i < n_sink_uris; i++) {
        if (!(sinks[i] = dp_sink_open(sink_uris[i], &sopts, &err))) {
            say_error(log, &err);
            rc = stop_requested ? 0 : 2; /* SIGTERM while waiting for the broker: a clean stop */
            goto out;
        }
    }
    for (size_t i = 0; i < n_sink_uris; i++) {
        if (!dp_sink_has_epochs(sinks[i])) continue;
        if (txn_sink) {
            dp_log_error(log, "run", DP_LOG_NONE, "dmarcpipe run: at most one Kafka sink (one transaction per epoch)");
            rc = 2;
            goto out;
        }
        txn_sink = sinks[i];
        /* copies of a report go to the one worker that owns it, forwarded
         * through the inbox in the epoch's transaction: only where the
         * inbox and the sink are one cluster */
        for (int k = 0; k < n_srcs; k++) {
            if (strncmp(srcs[k], "kafka://", 8) != 0) continue;
            if (same_cluster(srcs[k], sink_uris[i])) run.route_reports = 1;
            else
                dp_log_warn(log, "run", DP_LOG_FIELDS(DP_LOG_STR("source", srcs[k]), DP_LOG_STR("sink", sink_uris[i])),
                            "dmarcpipe run: %s: the sink is on another Kafka cluster: copies of a report in "
                            "two partitions are deduplicated through the shared ledger only", srcs[k]);
        }
    }
    if (reports_path && !(reports = dp_sink_open_reports(reports_path, sopts.resume, log, &err))) {
        say_error(log, &err);
        rc = 2;
        goto out;
    }
    cfg->sinks = sinks;
    cfg->n_sinks = n_sink_uris;
    /* with Kafka, the reports feed is a topic in the same transactions */
    cfg->reports = reports ? reports : txn_sink;
    /* the XML's SHA-256 is a field of the reports feed, and only there */
    limits->compute_sha256 = cfg->reports != NULL;
    /* A reader thread moves work off the parser, it adds none: worth it
     * whenever there is a second core (a big report usually leaves other
     * workers idle), useless on one. */
    if (readahead < 0) readahead = cores > 1;
    limits->readahead_after = readahead ? READAHEAD_AFTER : 0;
    /* made now, so that a scan knows them for run's own and skips them */
    const char *own_dirs[] = {done_dir, follow ? quarantine_dir : NULL};
    for (size_t i = 0; i < sizeof own_dirs / sizeof *own_dirs; i++)
        if (own_dirs[i] && dp_fs_mkdir_p(own_dirs[i]) != 0) {
            dp_log_error(log, "run", DP_LOG_FIELDS(DP_LOG_STR("path", own_dirs[i]), DP_LOG_STR("error", strerror(errno))),
                         "dmarcpipe run: cannot create %s: %s", own_dirs[i], strerror(errno));
            rc = 3;
            goto out;
        }

    /* run's own folders are not inputs, even under a SOURCE */
    const char *skip_dirs[] = {embedded || !quarantine ? DEFAULT_OUT : NULL, quarantine_dir, done_dir, state_dir};
    for (size_t i = 0; i < sizeof skip_dirs / sizeof *skip_dirs; i++) {
        if (!skip_dirs[i]) continue;
        char *rp = realpath(skip_dirs[i], NULL);
        if (rp) skip_real[n_skip++] = rp;
    }
    /* a follower watches its SOURCEs for good: a mistyped one would watch
     * nothing, quietly, for ever */
    for (int i = 0; follow && i < n_srcs; i++) {
        struct stat sst;
        const char *path = strncmp(srcs[i], "file:", 5) == 0 ? srcs[i] + 5 : srcs[i];
        if (dp_source_is_path(srcs[i]) && stat(path, &sst) != 0) {
            dp_log_error(log, "run", DP_LOG_FIELDS(DP_LOG_STR("source", srcs[i]), DP_LOG_STR("error", strerror(errno))),
                         "dmarcpipe run: %s: %s", srcs[i], strerror(errno));
            rc = 2;
            goto out;
        }
    }
    so.follow = follow;
    so.quarantine_dir = quarantine_dir;
    so.done_dir = done_dir;
    so.skip = (const char *const *)skip_real;
    so.state_dir = state_dir;
    for (int i = 0; i < n_srcs; i++) {
        if (!(sources[n_sources] = dp_source_open(srcs[i], &so, &err))) {
            say_error(log, &err);
            rc = 2;
            goto out;
        }
        n_sources++;
    }

    if (sopts.instance_id) run.instance = sopts.instance_id;
    /* the state records inputs wherever it is what a later run stands on */
    run.track_inputs = txn_sink || follow;
    for (size_t i = 0; i < n_sources; i++)
        if (sources[i]->remember_inputs) run.track_inputs = 1;
    run.stop = &stop_requested;
    if (txn_sink) {
        /* an epoch is one transaction, and the flush */
        run.epoch_inputs = (size_t)epoch_inputs;
        run.epoch_seconds = flush_interval;
        cfg->flush_interval = 0;
    }
    double t0 = dp_clock_seconds();
    if (dp_conductor_resume(&run, &err) != 0) {
        say_error(log, &err);
        rc = 2;
        goto out;
    }
    if (dp_conductor_recover(&run, &rs, &err) != 0) {
        say_error(log, &err);
        rc = 3;
    } else if (!rs.stopped && follow) {
        dp_metrics_set_ready(obs.metrics, 1);
        dp_log_info(log, "run", DP_LOG_FIELDS(DP_LOG_U64("sources", n_sources), DP_LOG_F64("poll_s", poll_seconds)),
                    "dmarcpipe run: following %zu source(s), scanning every %.0f s; SIGTERM or ^C stops",
                n_sources, poll_seconds);
        dp_follow_config fc = {poll_seconds, flush_interval, (size_t)epoch_inputs};
        if (dp_follow_run(&run, &fc, sources, n_sources, &rs, &err) != 0) {
            say_error(log, &err);
            rc = 3;
        }
    } else if (!rs.stopped) {
        dp_metrics_set_ready(obs.metrics, 1);
        dp_progress *bar = dp_progress_start(&obs.live, ro->progress);
        int brc = dp_conductor_batch(&run, sources, n_sources, &rs, &err);
        dp_progress_end(bar); /* the line is cleared before anything else is said */
        if (brc != 0) {
            say_error(log, &err);
            rc = 3;
        }
    }
    dp_metrics_set_ready(obs.metrics, 0);
    /* a batch run with epochs: the whole of it, as the ledger read and the
     * commits are part of the work; otherwise the runs' own time (for a
     * follower: the time its cycles took, not the time it waited) */
    if (txn_sink && !follow) rs.engine.seconds = dp_clock_seconds() - t0;
    print_summary(log, &rs, cfg, sink_uris, n_sink_uris, txn_sink != NULL, done_dir);
    dp_run_enrich_summary(cfg->enrich, log);
    if (rc == 0 && (rs.ack_failures || rs.held) && !follow) rc = 3;
    /* a follower stopped by a signal has done its job; a batch run says
     * whether some input was rejected */
    if (rc == 0 && rs.engine.inputs_rejected && !rs.stopped && !follow) rc = 1;
out:
    for (size_t i = 0; i < n_sources; i++) dp_source_close(sources[i]);
    for (size_t i = 0; i < n_skip; i++) free(skip_real[i]);
    for (size_t i = 0; i < n_sink_uris; i++) dp_sink_close(sinks[i], &err);
    dp_sink_close(reports, &err);
    dp_run_enrich_close(cfg->enrich);
    dp_dedup_close(cfg->dedup);
    dp_observe_stop(&obs);
    return rc;
}

int dp_cmd_run(int argc, char **argv) {
    dp_run_options ro;
    int rc = dp_run_options_load(&ro, argc, argv, NULL);
    dp_log *log = NULL;
    if (rc < 0 && dp_cli_log_open("run", ro.log_level, ro.log_format, &log) != 0) rc = 2;
    if (rc < 0) rc = run_pipeline(&ro, log);
    dp_log_free(log);
    dp_run_options_free(&ro);
    return rc;
}
