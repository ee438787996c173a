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
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "dp_clock.h"
#include "dp_fs.h"
#include "dp_kafka.h"
#include "run.h"

#define DEFAULT_OUT "dmarcpipe-out"
#define MAX_SINKS 16
#define MAX_SOURCES 256
#define MAX_PROPS 256

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void help(FILE *f) {
    fprintf(f,
            "usage: dmarcpipe run [OPTIONS] SOURCE...\n\n"
            "Reads every DMARC aggregate report under the SOURCEs, counts each report once,\n"
            "rolls its records up per UTC time window and writes the rollups to the sinks.\n\n"
            "SOURCEs:\n"
            "  PATH, file:PATH       a file, or a directory read recursively\n"
            "  maildir:PATH          a Maildir: each message is claimed, and moved to the\n"
            "                        Maildir's .Processed folder once counted (.Quarantine\n"
            "                        when it holds no report)\n"
            "  mbox:PATH             an mbox file, read on from where the last run stopped\n"
            "  imap://USER@HOST[:PORT]/MAILBOX, imaps://...\n"
            "                        a mailbox, message by UID (see the README for the\n"
            "                        ?processed=FOLDER and other settings); the password comes\n"
            "                        from DMARCPIPE_IMAP_PASSWORD or --imap-password-file\n"
            "  s3://BUCKET/PREFIX?endpoint=URL&region=R[&path_style=1]\n"
            "                        the objects under PREFIX of an S3-compatible bucket; after\n"
            "                        the commit &after=keep (default), delete or move:PREFIX;\n"
            "                        &quarantine=PREFIX, &retries=N, &relist=SEC, &cafile=PEM;\n"
            "                        credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY\n"
            "                        (AWS_SESSION_TOKEN) or ~/.aws/credentials (AWS_PROFILE)\n"
            "  kafka://HOST:PORT[,HOST:PORT...]/TOPIC?group=G\n"
            "                        a Kafka inbox shared by the workers of consumer group G:\n"
            "                        reports, or S3 event notifications (&s3_endpoint=URL\n"
            "                        &s3_region=R&s3_path_style=1); with a Kafka sink the\n"
            "                        offsets commit in each epoch's transaction\n\n"
            "With no --sink, writes ./" DEFAULT_OUT "/rollups.ndjson and the report inventory\n"
            "./" DEFAULT_OUT "/reports.ndjson (one line per accepted report: metadata, policy,\n"
            "totals, input, sha256 of the XML).\n\n"
            "Options:\n"
            "  --sink URI            file:PATH (NDJSON; CSV when PATH ends in .csv), - (stdout),\n"
            "                        or kafka://HOST:PORT[,HOST:PORT...]/TOPIC; repeatable\n"
            "  --reports PATH        write the report inventory to PATH\n"
            "  --workers N           parser threads (default: number of cores)\n"
            "  --shards M            aggregator threads (default: number of cores)\n"
            "  --window 1h|1d        rollup window, UTC (default 1d)\n"
            "  --state DIR           remember counted reports across runs (LMDB)\n"
            "  --quarantine DIR      where rejected inputs go (default ./" DEFAULT_OUT "/quarantine)\n"
            "  --flush-interval SEC  also flush every SEC seconds, 0 for never (default 60)\n"
            "  --max-keys N          flush a shard when it holds more keys (default 4M)\n"
            "  --ring-slots N        batches in each worker-to-shard ring (default 64)\n"
            "  --batch-items N       window shares in one batch (default 256)\n"
            "  --readahead auto|on|off  read and inflate a big report (past its first MiB)\n"
            "                        on a thread of its own, ahead of its parser; auto: on\n"
            "                        when there is more than one core (default auto)\n\n"
            "Kafka (exactly once: each epoch is one transaction, inputs are acknowledged\n"
            "in the state only after it commits):\n"
            "  --instance-id ID      names the transactional.id dmarcpipe-ID and the ledger;\n"
            "                        stable across restarts (default \"default\")\n"
            "  --reports-topic NAME  one message per accepted report (default dmarc.reports)\n"
            "  --ledger-topic NAME   the epochs' ledger (default dmarcpipe.ledger.ID)\n"
            "  -X KEY=VALUE          a librdkafka property, as kcat takes it; repeatable\n"
            "  --kafka-config FILE   librdkafka properties, KEY=VALUE lines (applied before\n"
            "                        DMARCPIPE_KAFKA_* variables, e.g. DMARCPIPE_KAFKA_SASL_PASSWORD,\n"
            "                        and -X); values are never printed\n"
            "  --broker-timeout SEC  how long to wait for an absent broker before ending with\n"
            "                        an error, nothing acknowledged (default 60; 0: for ever,\n"
            "                        the default with --follow)\n"
            "  --epoch-inputs N      at most N inputs per epoch, and per --follow cycle\n"
            "                        (default 1000); an epoch also ends after --flush-interval\n"
            "                        seconds\n"
            "  --state DIR           default ./" DEFAULT_OUT "/state with a Kafka sink\n\n"
            "Long-running mode, and what becomes of counted inputs:\n"
            "  --follow              keep running: scan the SOURCEs every --poll seconds and\n"
            "                        count files as they arrive (a file is taken once it looks\n"
            "                        the same on two scans; names starting with '.' are never\n"
            "                        read), in cycles that start when the oldest waiting file\n"
            "                        has waited --flush-interval seconds, or when --epoch-inputs\n"
            "                        files wait; SIGTERM or ^C ends the cycle under way cleanly\n"
            "                        and exits 0.  --state defaults to ./" DEFAULT_OUT "/state\n"
            "  --poll SEC            seconds between scans (default 2)\n"
            "  --done DIR            move each input, once what it holds is durably counted\n"
            "                        (flushed, or its epoch committed), to DIR, at its path\n"
            "                        below its SOURCE; an existing file is never replaced\n"
            "  --claim-timeout SEC   take over a Maildir claim when its worker has been silent\n"
            "                        this long (default 600)\n"
            "  --imap-password-file FILE  the IMAP password, read from FILE\n"
            "  --imap-token-file FILE     an OAuth2 bearer token for XOAUTH2, read from FILE at\n"
            "                        every login (an outside tool keeps it fresh)\n"
            "  -h, --help            this help\n\n%s",
            DP_CLI_LIMITS_HELP);
}

static int parse_window(const char *s, int64_t *out) {
    if (strcmp(s, "1h") == 0) *out = 3600;
    else if (strcmp(s, "1d") == 0) *out = 86400;
    else return -1;
    return 0;
}

static int parse_count(const char *opt, const char *s, uint64_t max, uint64_t *out) {
    if (dp_cli_parse_size(s, out) != 0 || *out == 0 || *out > max) {
        fprintf(stderr, "dmarcpipe run: %s needs a number from 1 to %llu, got '%s'\n", opt,
                (unsigned long long)max, s);
        return -1;
    }
    return 0;
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

/* The run's summary, on stderr. */
static void print_summary(const dp_run_stats *rs, const dp_engine_config *cfg, const char *const *sink_uris,
                          size_t n_sink_uris, int epochs, const char *done_dir) {
    const dp_engine_stats *st = &rs->engine;
    double secs = st->seconds > 0 ? st->seconds : 1e-9;
    fprintf(stderr,
            "dmarcpipe run: %llu inputs (%llu rejected) in %.2f s, %u workers, %u shards\n"
            "  reports:  %llu accepted, %llu rejected, %llu duplicate\n"
            "  records:  %llu   messages: %llu\n"
            "  rollups:  %llu per sink (%s%s)\n"
            "  rate:     %.0f records/s, %.1f MB/s of XML\n",
            (unsigned long long)st->inputs, (unsigned long long)st->inputs_rejected, st->seconds, cfg->workers,
            cfg->shards, (unsigned long long)st->reports, (unsigned long long)st->rejected,
            (unsigned long long)st->duplicates, (unsigned long long)st->records, (unsigned long long)st->messages,
            (unsigned long long)st->rollups, sink_uris[0], n_sink_uris > 1 ? ", ..." : "", st->records / secs,
            st->xml_bytes / secs / 1e6);
    if (st->routed)
        fprintf(stderr, "  routed:   %llu report(s) forwarded to the partition that owns them\n",
                (unsigned long long)st->routed);
    if (epochs) {
        fprintf(stderr, "  epochs:   %llu committed, %llu run again, %llu abandoned to another worker, %llu recovered "
                "from the ledger%s\n",
                (unsigned long long)rs->epochs, (unsigned long long)rs->epochs_retried,
                (unsigned long long)rs->epochs_abandoned, (unsigned long long)rs->recovered_epochs,
                rs->stopped ? "; stopped by a signal" : "");
        /* the sink's own rate: producing the rollups through the commit */
        fprintf(stderr, "  kafka:    %llu rollups produced and committed in %.3f s (%.0f rollups/s)\n",
                (unsigned long long)st->rollups, rs->sink_seconds,
                rs->sink_seconds > 0 ? st->rollups / rs->sink_seconds : 0.0);
    }
    if (done_dir)
        fprintf(stderr, "  done:     %llu input(s) moved to %s%s\n", (unsigned long long)rs->acked, done_dir,
                rs->ack_failures ? " (some could not be: see above)" : "");
    if (rs->held)
        fprintf(stderr, "  held:     %llu rejected input(s) left where they were: their rejection could not be kept\n",
                (unsigned long long)rs->held);
}

/* A report gets a reader thread once this much of its XML is parsed:
 * most reports are far smaller and never start one. */
#define READAHEAD_AFTER ((uint64_t)1 << 20)

int dp_cmd_run(int argc, char **argv) {
    dp_run_config run;
    dp_conductor_config_default(&run);
    dp_engine_config *cfg = &run.engine;
    dp_ingest_limits *limits = &run.limits;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cfg->shards = cores > 0 ? (unsigned)cores : 1;
    cfg->flush_interval = 60;
    const char *sink_uris[MAX_SINKS];
    size_t n_sink_uris = 0;
    const char *reports_path = NULL, *state_dir = NULL, *quarantine = NULL;
    dp_sink_options sopts = {.stop = &stop_requested};
    const char *props[MAX_PROPS];
    uint64_t epoch_inputs = 1000;
    double broker_timeout = -1; /* unset: a minute for a batch run, for ever for a follower */
    int readahead = -1; /* auto */
    int follow = 0;
    double poll_seconds = 2;
    const char *done_dir = NULL;
    dp_source_options so = {0};
    static const struct option opts[] = {
        {"sink", required_argument, NULL, 'S'},
        {"reports", required_argument, NULL, 'R'},
        {"workers", required_argument, NULL, 'w'},
        {"shards", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'W'},
        {"state", required_argument, NULL, 't'},
        {"quarantine", required_argument, NULL, 'q'},
        {"flush-interval", required_argument, NULL, 'f'},
        {"max-keys", required_argument, NULL, 'k'},
        {"ring-slots", required_argument, NULL, 'r'},
        {"batch-items", required_argument, NULL, 'b'},
        {"readahead", required_argument, NULL, 'A'},
        {"max-report-bytes", required_argument, NULL, 'L'},
        {"max-ratio", required_argument, NULL, 'L'},
        {"max-depth", required_argument, NULL, 'L'},
        {"max-text", required_argument, NULL, 'L'},
        {"max-range-days", required_argument, NULL, 'L'},
        {"instance-id", required_argument, NULL, 'I'},
        {"reports-topic", required_argument, NULL, 'T'},
        {"ledger-topic", required_argument, NULL, 'G'},
        {"kafka-config", required_argument, NULL, 'C'},
        {"epoch-inputs", required_argument, NULL, 'E'},
        {"broker-timeout", required_argument, NULL, 'B'},
        {"follow", no_argument, NULL, 'F'},
        {"poll", required_argument, NULL, 'P'},
        {"done", required_argument, NULL, 'D'},
        {"claim-timeout", required_argument, NULL, 'c'},
        {"imap-password-file", required_argument, NULL, 'p'},
        {"imap-token-file", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, idx;
    uint64_t v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hX:", opts, &idx)) != -1) {
        switch (c) {
        case 'I': sopts.instance_id = optarg; break;
        case 'T': sopts.reports_topic = optarg; break;
        case 'G': sopts.ledger_topic = optarg; break;
        case 'C': sopts.config_file = optarg; break;
        case 'X':
            if (sopts.n_props == MAX_PROPS) {
                fprintf(stderr, "dmarcpipe run: at most %d -X options\n", MAX_PROPS);
                return 2;
            }
            props[sopts.n_props++] = optarg;
            break;
        case 'B':
            if (strcmp(optarg, "0") == 0) v = 0;
            else if (parse_count("--broker-timeout", optarg, 86400, &v) != 0) return 2;
            broker_timeout = (double)v;
            break;
        case 'E':
            if (parse_count("--epoch-inputs", optarg, UINT32_MAX, &epoch_inputs) != 0) return 2;
            break;
        case 'S':
            if (n_sink_uris == MAX_SINKS) {
                fprintf(stderr, "dmarcpipe run: at most %d sinks\n", MAX_SINKS);
                return 2;
            }
            sink_uris[n_sink_uris++] = optarg;
            break;
        case 'R': reports_path = optarg; break;
        case 'F': follow = 1; break;
        case 'P':
            if (parse_count("--poll", optarg, 3600, &v) != 0) return 2;
            poll_seconds = (double)v;
            break;
        case 'D': done_dir = optarg; break;
        case 'c':
            if (parse_count("--claim-timeout", optarg, 30 * 86400, &v) != 0) return 2;
            so.claim_timeout = (double)v;
            break;
        case 'p': so.password_file = optarg; break;
        case 'o': so.token_file = optarg; break;
        case 'w':
            if (parse_count("--workers", optarg, 1024, &v) != 0) return 2;
            cfg->workers = (unsigned)v;
            break;
        case 's':
            if (parse_count("--shards", optarg, 1024, &v) != 0) return 2;
            cfg->shards = (unsigned)v;
            break;
        case 'W':
            if (parse_window(optarg, &cfg->window) != 0) {
                fprintf(stderr, "dmarcpipe run: --window is 1h or 1d, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 't': state_dir = optarg; break;
        case 'q': quarantine = optarg; break;
        case 'f':
            if (strcmp(optarg, "0") == 0) v = 0;
            else if (parse_count("--flush-interval", optarg, 86400, &v) != 0) return 2;
            cfg->flush_interval = (double)v;
            break;
        case 'k':
            if (parse_count("--max-keys", optarg, UINT32_MAX / 2, &v) != 0) return 2;
            cfg->max_keys = (size_t)v;
            break;
        case 'r':
            if (parse_count("--ring-slots", optarg, 1u << 20, &v) != 0) return 2;
            cfg->ring_slots = (size_t)v;
            break;
        case 'b':
            if (parse_count("--batch-items", optarg, 1u << 20, &v) != 0) return 2;
            cfg->batch_items = (size_t)v;
            break;
        case 'A':
            if (strcmp(optarg, "auto") == 0) readahead = -1;
            else if (strcmp(optarg, "on") == 0) readahead = 1;
            else if (strcmp(optarg, "off") == 0) readahead = 0;
            else {
                fprintf(stderr, "dmarcpipe run: --readahead needs auto, on or off, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'L': {
            char name[64];
            snprintf(name, sizeof name, "--%s", opts[idx].name);
            if (dp_cli_limit_option(limits, name, optarg) < 0) return 2;
            break;
        }
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "dmarcpipe run: no source given\n");
        help(stderr);
        return 2;
    }

    /* The embedded default: two files in ./dmarcpipe-out. */
    int embedded = n_sink_uris == 0;
    if (embedded || !quarantine) {
        if (dp_fs_mkdir_p(DEFAULT_OUT) != 0) {
            fprintf(stderr, "dmarcpipe run: cannot create %s: %s\n", DEFAULT_OUT, strerror(errno));
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
    char text[DP_ERROR_TEXT_MAX]; /* err.msg, fit for a log line */
    int rc = 0;
    dp_sink *sinks[MAX_SINKS] = {0};
    dp_sink *reports = NULL;
    dp_source *sources[MAX_SOURCES] = {0};
    size_t n_sources = 0;
    char *skip_real[5] = {0};
    size_t n_skip = 0;
    dp_run_stats rs;
    memset(&rs, 0, sizeof rs);
    sopts.props = props;
    /* SIGTERM (Kubernetes) and ^C: end the open epoch or cycle cleanly */
    int has_kafka = 0;
    for (size_t i = 0; i < n_sink_uris; i++)
        if (strncmp(sink_uris[i], "kafka://", 8) == 0) has_kafka = 1;
    int kafka_source = 0;
    for (int i = optind; i < argc; i++)
        if (strncmp(argv[i], "kafka://", 8) == 0) kafka_source = 1;
    dp_kafka_settings kafka_settings = {sopts.config_file, props, sopts.n_props, &stop_requested,
                                        sopts.broker_timeout};
    so.kafka = &kafka_settings;
    if (follow || has_kafka || kafka_source) {
        struct sigaction sa = {0};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    if ((size_t)(argc - optind) > MAX_SOURCES) {
        fprintf(stderr, "dmarcpipe run: at most %d sources\n", MAX_SOURCES);
        return 2;
    }
    /* The state first: it is one process's at a time (it is locked), and a
     * second run on it must stop before it opens, and truncates, a sink.
     * It is what exactly once, and a long-running process, stand on: on
     * by default for the embedded default, Kafka and --follow (it keeps a
     * follower's memory bounded too). */
    /* a mailbox or an mbox is acknowledged after the commit: the state is
     * what tells a restart which of its messages were counted */
    int mail = 0;
    for (int i = optind; i < argc; i++)
        if (!dp_source_is_path(argv[i])) mail = 1;
    if ((embedded || has_kafka || follow || mail) && !state_dir) {
        state_dir = DEFAULT_OUT "/state";
        if (dp_fs_mkdir_p(DEFAULT_OUT) != 0) {
            fprintf(stderr, "dmarcpipe run: cannot create %s: %s\n", DEFAULT_OUT, strerror(errno));
            rc = 3;
            goto out;
        }
    }
    if (!(cfg->dedup = dp_dedup_open(state_dir, &err))) {
        fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
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
    if (kafka_source && !sopts.ledger_topic && inbox_ledger_topic(argv + optind, argc - optind, shared_ledger,
                                                                  sizeof shared_ledger))
        sopts.ledger_topic = shared_ledger;
    run.ledger_shared = kafka_source;
    double flush_interval = cfg->flush_interval;
    dp_sink *txn_sink = NULL;
    for (size_t i = 0; i < n_sink_uris; i++) {
        if (!(sinks[i] = dp_sink_open(sink_uris[i], &sopts, &err))) {
            fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
            rc = stop_requested ? 0 : 2; /* SIGTERM while waiting for the broker: a clean stop */
            goto out;
        }
    }
    for (size_t i = 0; i < n_sink_uris; i++) {
        if (!dp_sink_has_epochs(sinks[i])) continue;
        if (txn_sink) {
            fprintf(stderr, "dmarcpipe run: at most one Kafka sink (one transaction per epoch)\n");
            rc = 2;
            goto out;
        }
        txn_sink = sinks[i];
        /* copies of a report go to the one worker that owns it, forwarded
         * through the inbox in the epoch's transaction: only where the
         * inbox and the sink are one cluster */
        for (int k = optind; k < argc; k++) {
            if (strncmp(argv[k], "kafka://", 8) != 0) continue;
            if (same_cluster(argv[k], sink_uris[i])) run.route_reports = 1;
            else
                fprintf(stderr, "dmarcpipe run: %s: the sink is on another Kafka cluster: copies of a report in "
                        "two partitions are deduplicated through the shared ledger only\n", argv[k]);
        }
    }
    if (reports_path && !(reports = dp_sink_open_reports(reports_path, sopts.resume, &err))) {
        fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
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
            fprintf(stderr, "dmarcpipe run: cannot create %s: %s\n", own_dirs[i], strerror(errno));
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
    for (int i = optind; follow && i < argc; i++) {
        struct stat sst;
        const char *path = strncmp(argv[i], "file:", 5) == 0 ? argv[i] + 5 : argv[i];
        if (dp_source_is_path(argv[i]) && stat(path, &sst) != 0) {
            fprintf(stderr, "dmarcpipe run: %s: %s\n", argv[i], strerror(errno));
            rc = 2;
            goto out;
        }
    }
    so.follow = follow;
    so.quarantine_dir = quarantine_dir;
    so.done_dir = done_dir;
    so.skip = (const char *const *)skip_real;
    so.state_dir = state_dir;
    for (int i = optind; i < argc; i++) {
        if (!(sources[n_sources] = dp_source_open(argv[i], &so, &err))) {
            fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
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
        fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
        rc = 2;
        goto out;
    }
    if (dp_conductor_recover(&run, &rs, &err) != 0) {
        fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
        rc = 3;
    } else if (!rs.stopped && follow) {
        fprintf(stderr, "dmarcpipe run: following %zu source(s), scanning every %.0f s; SIGTERM or ^C stops\n",
                n_sources, poll_seconds);
        dp_follow_config fc = {poll_seconds, flush_interval, (size_t)epoch_inputs};
        if (dp_follow_run(&run, &fc, sources, n_sources, &rs, &err) != 0) {
            fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
            rc = 3;
        }
    } else if (!rs.stopped) {
        if (dp_conductor_batch(&run, sources, n_sources, &rs, &err) != 0) {
            fprintf(stderr, "dmarcpipe run: %s\n", dp_error_text(err.msg, text));
            rc = 3;
        }
    }
    /* a batch run with epochs: the whole of it, as the ledger read and the
     * commits are part of the work; otherwise the runs' own time (for a
     * follower: the time its cycles took, not the time it waited) */
    if (txn_sink && !follow) rs.engine.seconds = dp_clock_seconds() - t0;
    print_summary(&rs, cfg, sink_uris, n_sink_uris, txn_sink != NULL, done_dir);
    if (rc == 0 && (rs.ack_failures || rs.held) && !follow) rc = 3;
    /* a follower stopped by a signal has done its job; a batch run says
     * whether some input was rejected */
    if (rc == 0 && rs.engine.inputs_rejected && !rs.stopped && !follow) rc = 1;
out:
    for (size_t i = 0; i < n_sources; i++) dp_source_close(sources[i]);
    for (size_t i = 0; i < n_skip; i++) free(skip_real[i]);
    for (size_t i = 0; i < n_sink_uris; i++) dp_sink_close(sinks[i], &err);
    dp_sink_close(reports, &err);
    dp_dedup_close(cfg->dedup);
    return rc;
}
