/* run_options — the table of `dmarcpipe run`'s options and the checks
 * that turn each value into the run's settings; see run_options.h.
 *
 * Every option is a row: --help, the getopt arrays, the configuration
 * file's keys, the DMARCPIPE_* variables and the man page are made from
 * it (options.c, config_file.c, manpage.c).
 */
#include "run_options.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define OUT "dmarcpipe-out"

static const dp_options_row ROWS[] = {
    {NULL, 0, NULL, "Options:\n", 0, NULL},
    {"sink", 0, "URI", "file:PATH (NDJSON; CSV when PATH ends in .csv), - (stdout),\n"
     "or kafka://HOST:PORT[,HOST:PORT...]/TOPIC; repeatable", DP_OPTIONS_REPEAT, NULL},
    {"reports", 0, "PATH", "write the report inventory to PATH", DP_OPTIONS_PATH, NULL},
    {"workers", 0, "N", "parser threads (default: number of cores)", 0, NULL},
    {"shards", 0, "M", "aggregator threads (default: number of cores)", 0, NULL},
    {"window", 0, "1h|1d", "rollup window, UTC (default 1d)", 0, "1d"},
    {"state", 0, "DIR", "remember counted reports across runs (LMDB)", DP_OPTIONS_PATH, NULL},
    {"quarantine", 0, "DIR", "where rejected inputs go (default ./" OUT "/quarantine)", DP_OPTIONS_PATH, NULL},
    {"flush-interval", 0, "SEC", "also flush every SEC seconds, 0 for never (default 60)", 0, "60"},
    {"max-keys", 0, "N", "flush a shard when it holds more keys (default 4M)", 0, "4M"},
    {"ring-slots", 0, "N", "batches in each worker-to-shard ring (default 64)", 0, "64"},
    {"batch-items", 0, "N", "window shares in one batch (default 256)", 0, "256"},
    {"readahead", 0, "auto|on|off", "read and inflate a big report (past its first MiB)\n"
     "on a thread of its own, ahead of its parser; auto: on\n"
     "when there is more than one core (default auto)", 0, "auto"},
    {NULL, 0, NULL, "\nKafka (exactly once: each epoch is one transaction, inputs are acknowledged\n"
     "in the state only after it commits):\n", 0, NULL},
    {"instance-id", 0, "ID", "names the transactional.id dmarcpipe-ID and the ledger;\n"
     "stable across restarts (default \"default\")", 0, NULL},
    {"reports-topic", 0, "NAME", "one message per accepted report (default dmarc.reports)", 0, NULL},
    {"ledger-topic", 0, "NAME", "the epochs' ledger (default dmarcpipe.ledger.ID)", 0, NULL},
    {"kafka", 'X', "KEY=VALUE", "a librdkafka property, as kcat takes it; repeatable\n"
     "(in the configuration file: kafka: {KEY: VALUE, ...})",
     DP_OPTIONS_PROPS | DP_OPTIONS_NOLONG | DP_OPTIONS_NOENV, NULL},
    {"kafka-config", 0, "FILE", "librdkafka properties, KEY=VALUE lines (applied before\n"
     "DMARCPIPE_KAFKA_* variables, e.g. DMARCPIPE_KAFKA_SASL_PASSWORD,\n"
     "and -X); values are never printed", DP_OPTIONS_PATH, NULL},
    {"broker-timeout", 0, "SEC", "how long to wait for an absent broker before ending with\n"
     "an error, nothing acknowledged (default 60; 0: for ever,\nthe default with --follow)", 0, NULL},
    {"epoch-inputs", 0, "N", "at most N inputs per epoch, and per --follow cycle\n"
     "(default 1000); an epoch also ends after --flush-interval\nseconds", 0, "1000"},
    {NULL, 0, NULL, "  --state DIR           default ./" OUT "/state with a Kafka sink\n", 0, NULL},
    {NULL, 0, NULL, "\nLong-running mode, and what becomes of counted inputs:\n", 0, NULL},
    {"follow", 0, NULL, "keep running: scan the SOURCEs every --poll seconds and\n"
     "count files as they arrive (a file is taken once it looks\n"
     "the same on two scans; names starting with '.' are never\n"
     "read), in cycles that start when the oldest waiting file\n"
     "has waited --flush-interval seconds, or when --epoch-inputs\n"
     "files wait; SIGTERM or ^C ends the cycle under way cleanly\n"
     "and exits 0.  --state defaults to ./" OUT "/state", 0, "false"},
    {"poll", 0, "SEC", "seconds between scans (default 2)", 0, "2"},
    {"done", 0, "DIR", "move each input, once what it holds is durably counted\n"
     "(flushed, or its epoch committed), to DIR, at its path\n"
     "below its SOURCE; an existing file is never replaced", DP_OPTIONS_PATH, NULL},
    {"claim-timeout", 0, "SEC", "take over a Maildir claim when its worker has been silent\n"
     "this long (default 600)", 0, "600"},
    {"imap-password-file", 0, "FILE", "the IMAP password, read from FILE", DP_OPTIONS_PATH, NULL},
    {"imap-token-file", 0, "FILE", "an OAuth2 bearer token for XOAUTH2, read from FILE at\n"
     "every login (an outside tool keeps it fresh)", DP_OPTIONS_PATH, NULL},
    {NULL, 0, NULL, "\nEnrichment: who is each source IP (off unless asked for; lookups never delay\n"
     "counting nor a flush: a rollup flushed before its answer carries nulls):\n", 0, NULL},
    {"enrich", 0, NULL, "name each source IP: its PTR (DNS), the PTR's base domain\n"
     "and service (the known-senders map), with --geoip-* its\n"
     "ASN, AS organisation and country", 0, "false"},
    {"resolver", 0, "HOST:PORT", "the DNS server for PTR lookups (default: the system's,\n"
     "/etc/resolv.conf); implies --enrich", 0, NULL},
    {"geoip-asn", 0, "FILE", "an ASN database (MaxMind MMDB: GeoLite2-ASN or alike);\n"
     "implies --enrich", DP_OPTIONS_PATH, NULL},
    {"geoip-country", 0, "FILE", "a country database (MMDB: GeoLite2-Country or alike);\n"
     "implies --enrich", DP_OPTIONS_PATH, NULL},
    {"senders", 0, "FILE", "known senders, DOMAIN<TAB>SERVICE<TAB>TYPE lines, over the\n"
     "built-in map; repeatable, later files win; implies --enrich", DP_OPTIONS_PATH | DP_OPTIONS_REPEAT, NULL},
    {"enrich-cache", 0, "DIR", "the PTR cache (LMDB; default STATE/enrich when the run\n"
     "has a state, else in memory only)", DP_OPTIONS_PATH, NULL},
    {"enrich-ttl", 0, "SEC", "how long an answer is kept (default 86400)", 0, "86400"},
    {"enrich-max-ips", 0, "N", "source IPs held in memory, about 200 bytes each; past N a\n"
     "new one takes the place of one not met for a while (default 1048576)", 0, "1048576"},
    {"enrich-wait", 0, "SEC", "a batch run's final flush waits up to SEC for lookups\n"
     "still out (default 0: never waits)", 0, "0"},
    {NULL, 0, NULL, "\nConfiguration and operation:\n", 0, NULL},
    {"config", 0, "FILE", "read options from FILE (YAML; keys are the long option\n"
     "names, SOURCEs under sources:); DMARCPIPE_* variables and\n"
     "flags override it, see `dmarcpipe config` and dmarcpipe(1)", DP_OPTIONS_PATH | DP_OPTIONS_NOFILE, NULL},
    DP_CLI_LOG_ROWS,
    {"metrics-addr", 0, "HOST:PORT", "serve /metrics, /healthz and /readyz over HTTP there\n"
     "(default: none)", 0, NULL},
    {"progress", 0, "auto|on|off", "a progress bar on stderr for a batch run; auto: on when\n"
     "stderr is a terminal (default auto)", 0, "auto"},
    {"help", 'h', NULL, "this help", DP_OPTIONS_HELP, NULL},
    {"sources", 0, "SOURCE...", "what to read (see SOURCEs above)", DP_OPTIONS_POSITIONAL, NULL},
    DP_CLI_LIMIT_ROWS,
};

static int parse_count(const char *opt, const char *s, uint64_t max, uint64_t *out, char *why, size_t cap) {
    if (dp_cli_parse_size(s, out) != 0 || *out == 0 || *out > max) {
        snprintf(why, cap, "%s needs a number from 1 to %llu, got '%s'", opt, (unsigned long long)max, s);
        return -1;
    }
    return 0;
}

/* A count of seconds where 0 means never (or for ever). */
static int parse_seconds0(const char *opt, const char *s, uint64_t max, double *out, char *why, size_t cap) {
    uint64_t v = 0;
    if (strcmp(s, "0") != 0 && parse_count(opt, s, max, &v, why, cap) != 0) return -1;
    *out = (double)v;
    return 0;
}

static int word(const char *s, const char *const *words) {
    for (int i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0) return i;
    return -1;
}

/* HOST:PORT, the port from 1 to 65535; HOST may be [IPv6] or empty. */
static int valid_addr(const char *s) {
    const char *colon = strrchr(s, ':');
    if (!colon || !colon[1] || strlen(colon + 1) > 5) return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return !*end && port >= 1 && port <= 65535;
}

static int apply(void *ctx, const dp_options_row *row, const char *v, char *why, size_t cap) {
    dp_run_options *ro = ctx;
    dp_engine_config *cfg = &ro->run.engine;
    const char *n = row->name;
    uint64_t u;
    int r = dp_cli_limit_option(&ro->run.limits, n, v, why, cap);
    if (r == 0) r = dp_cli_log_option(n, v, &ro->log_level, &ro->log_format, why, cap);
    if (r != 0) return r < 0 ? -1 : 0;
    if (strcmp(n, "sink") == 0) {
        if (ro->n_sink_uris == DP_RUN_OPTIONS_MAX_SINKS) {
            snprintf(why, cap, "at most %d sinks", DP_RUN_OPTIONS_MAX_SINKS);
            return -1;
        }
        ro->sink_uris[ro->n_sink_uris++] = v;
    } else if (strcmp(n, "kafka") == 0) {
        if (ro->sopts.n_props == DP_RUN_OPTIONS_MAX_PROPS) {
            snprintf(why, cap, "at most %d -X options", DP_RUN_OPTIONS_MAX_PROPS);
            return -1;
        }
        if (!strchr(v, '=')) {
            snprintf(why, cap, "-X takes KEY=VALUE");
            return -1;
        }
        ro->props[ro->sopts.n_props++] = v;
    } else if (strcmp(n, "sources") == 0) {
        if (ro->n_sources == DP_RUN_OPTIONS_MAX_SOURCES) {
            snprintf(why, cap, "at most %d sources", DP_RUN_OPTIONS_MAX_SOURCES);
            return -1;
        }
        char **s = realloc(ro->sources, (ro->n_sources + 1) * sizeof *s);
        if (!s) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
        ro->sources = s;
        ro->sources[ro->n_sources++] = (char *)v;
    } else if (strcmp(n, "reports") == 0) {
        ro->reports_path = v;
    } else if (strcmp(n, "workers") == 0 || strcmp(n, "shards") == 0) {
        if (parse_count(n[0] == 'w' ? "--workers" : "--shards", v, 1024, &u, why, cap) != 0) return -1;
        *(n[0] == 'w' ? &cfg->workers : &cfg->shards) = (unsigned)u;
    } else if (strcmp(n, "window") == 0) {
        static const char *const w[] = {"1h", "1d", NULL};
        int i = word(v, w);
        if (i < 0) {
            snprintf(why, cap, "--window is 1h or 1d, got '%s'", v);
            return -1;
        }
        cfg->window = i == 0 ? 3600 : 86400;
    } else if (strcmp(n, "state") == 0) {
        ro->state_dir = v;
    } else if (strcmp(n, "quarantine") == 0) {
        ro->quarantine = v;
    } else if (strcmp(n, "flush-interval") == 0) {
        return parse_seconds0("--flush-interval", v, 86400, &cfg->flush_interval, why, cap);
    } else if (strcmp(n, "max-keys") == 0) {
        if (parse_count("--max-keys", v, UINT32_MAX / 2, &u, why, cap) != 0) return -1;
        cfg->max_keys = (size_t)u;
    } else if (strcmp(n, "ring-slots") == 0 || strcmp(n, "batch-items") == 0) {
        int ring = n[0] == 'r';
        if (parse_count(ring ? "--ring-slots" : "--batch-items", v, 1u << 20, &u, why, cap) != 0) return -1;
        *(ring ? &cfg->ring_slots : &cfg->batch_items) = (size_t)u;
    } else if (strcmp(n, "readahead") == 0 || strcmp(n, "progress") == 0) {
        static const char *const w[] = {"auto", "on", "off", NULL};
        int i = word(v, w);
        if (i < 0) {
            snprintf(why, cap, "--%s needs auto, on or off, got '%s'", n, v);
            return -1;
        }
        if (n[0] == 'r') ro->readahead = i == 0 ? -1 : i == 1;
        else ro->progress = v;
    } else if (strcmp(n, "instance-id") == 0) {
        ro->sopts.instance_id = v;
    } else if (strcmp(n, "reports-topic") == 0) {
        ro->sopts.reports_topic = v;
    } else if (strcmp(n, "ledger-topic") == 0) {
        ro->sopts.ledger_topic = v;
    } else if (strcmp(n, "kafka-config") == 0) {
        ro->sopts.config_file = v;
    } else if (strcmp(n, "broker-timeout") == 0) {
        return parse_seconds0("--broker-timeout", v, 86400, &ro->broker_timeout, why, cap);
    } else if (strcmp(n, "epoch-inputs") == 0) {
        return parse_count("--epoch-inputs", v, UINT32_MAX, &ro->epoch_inputs, why, cap);
    } else if (strcmp(n, "follow") == 0) {
        ro->follow = strcmp(v, "true") == 0;
    } else if (strcmp(n, "poll") == 0) {
        if (parse_count("--poll", v, 3600, &u, why, cap) != 0) return -1;
        ro->poll_seconds = (double)u;
    } else if (strcmp(n, "done") == 0) {
        ro->done_dir = v;
    } else if (strcmp(n, "claim-timeout") == 0) {
        if (parse_count("--claim-timeout", v, 30 * 86400, &u, why, cap) != 0) return -1;
        ro->so.claim_timeout = (double)u;
    } else if (strcmp(n, "imap-password-file") == 0) {
        ro->so.password_file = v;
    } else if (strcmp(n, "imap-token-file") == 0) {
        ro->so.token_file = v;
    } else if (strcmp(n, "enrich") == 0) {
        ro->enrich.on |= strcmp(v, "true") == 0;
    } else if (strcmp(n, "resolver") == 0) {
        if (!valid_addr(v) || v[0] == ':') {
            snprintf(why, cap, "--resolver is HOST:PORT or [IPv6]:PORT (a port from 1 to 65535), got '%s'", v);
            return -1;
        }
        ro->enrich.resolver = v;
        ro->enrich.on = 1;
    } else if (strcmp(n, "geoip-asn") == 0 || strcmp(n, "geoip-country") == 0) {
        *(n[6] == 'a' ? &ro->enrich.geoip_asn : &ro->enrich.geoip_country) = v;
        ro->enrich.on = 1;
    } else if (strcmp(n, "senders") == 0) {
        if (ro->enrich.n_senders == DP_RUN_OPTIONS_MAX_SENDERS) {
            snprintf(why, cap, "at most %d --senders files", DP_RUN_OPTIONS_MAX_SENDERS);
            return -1;
        }
        ro->enrich.senders[ro->enrich.n_senders++] = v;
        ro->enrich.on = 1;
    } else if (strcmp(n, "enrich-cache") == 0) {
        ro->enrich.cache_dir = v;
    } else if (strcmp(n, "enrich-ttl") == 0) {
        if (parse_count("--enrich-ttl", v, 365 * 86400, &u, why, cap) != 0) return -1;
        ro->enrich.ttl = (double)u;
    } else if (strcmp(n, "enrich-max-ips") == 0) {
        if (parse_count("--enrich-max-ips", v, (uint64_t)1 << 30, &u, why, cap) != 0) return -1;
        if (u == 0) {
            snprintf(why, cap, "--enrich-max-ips must be at least 1, got '%s'", v);
            return -1;
        }
        ro->enrich.max_ips = (size_t)u;
    } else if (strcmp(n, "enrich-wait") == 0) {
        return parse_seconds0("--enrich-wait", v, 3600, &ro->enrich.wait, why, cap);
    } else if (strcmp(n, "metrics-addr") == 0) {
        if (!valid_addr(v)) {
            snprintf(why, cap, "--metrics-addr is HOST:PORT (a port from 1 to 65535), got '%s'", v);
            return -1;
        }
        ro->metrics_addr = v;
    }
    /* config: read by options.c before anything is applied */
    return 0;
}

const dp_options_command dp_run_options_command = {
    .name = "run",
    .summary = "roll reports up per time window into sinks (the pipeline)",
    .synopsis = "[OPTIONS] SOURCE...",
    .intro =
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
        "With no --sink, writes ./" OUT "/rollups.ndjson and the report inventory\n"
        "./" OUT "/reports.ndjson (one line per accepted report: metadata, policy,\n"
        "totals, input, sha256 of the XML).\n\n",
    .rows = ROWS,
    .n_rows = sizeof ROWS / sizeof *ROWS,
    .width = 24,
    .outro = NULL,
    .apply = apply,
    .config_file = 1,
};

/* The file's librdkafka properties sit below the environment's
 * DMARCPIPE_KAFKA_* ones, but become -X, which common/dp_kafka.c applies
 * after the environment: a property the environment sets is dropped from
 * the file's, so the variable wins, as for every other option. */
static void drop_props_env_sets(dp_options *o) {
    long row = dp_options_find(o->cmd, "kafka");
    if (row < 0 || o->slots[row].layer != DP_OPTIONS_FILE) return;
    dp_options_slot *s = &o->slots[row];
    size_t kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        char env[300] = "DMARCPIPE_KAFKA_";
        size_t n = strlen(env);
        for (const char *p = s->v[i]; *p && *p != '=' && n < sizeof env - 1; p++)
            env[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        env[n] = '\0';
        if (getenv(env)) free(s->v[i]);
        else s->v[kept++] = s->v[i];
    }
    s->n = kept;
}

int dp_run_options_load(dp_run_options *ro, int argc, char **argv, const dp_options_command *help) {
    memset(ro, 0, sizeof *ro);
    dp_conductor_config_default(&ro->run);
    ro->cores = sysconf(_SC_NPROCESSORS_ONLN);
    ro->run.engine.workers = ro->run.engine.shards = ro->cores > 0 ? (unsigned)ro->cores : 1;
    ro->run.engine.flush_interval = 60;
    ro->epoch_inputs = 1000;
    ro->broker_timeout = -1;
    ro->readahead = -1;
    ro->poll_seconds = 2;
    ro->progress = "auto";
    ro->enrich.ttl = 86400;
    ro->sopts.props = ro->props;
    if (dp_options_init(&ro->opts, &dp_run_options_command) != 0) {
        fprintf(stderr, "dmarcpipe run: out of memory\n");
        return 2;
    }
    if (help) ro->opts.help = help;
    int code = 2;
    if (dp_options_collect(&ro->opts, argc, argv, &code) != 0) return code;
    drop_props_env_sets(&ro->opts);
    if ((code = dp_options_apply(&ro->opts, ro)) != 0) return code;
    if (ro->n_sources == 0 && !help) {
        fprintf(stderr, "dmarcpipe run: no source given\n");
        dp_options_help(ro->opts.help, stderr);
        return 2;
    }
    return -1;
}

void dp_run_options_free(dp_run_options *ro) {
    free(ro->sources);
    dp_options_free(&ro->opts);
}
