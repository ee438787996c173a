/* run_options.h — the options of `dmarcpipe run`: its table, and the
 * settings they make.
 *
 * `dmarcpipe run` and `dmarcpipe config` both load them: the command
 * line, DMARCPIPE_* variables and the configuration file, checked by the
 * same code, so `config` shows exactly what `run` would do.
 */
#ifndef DP_RUN_OPTIONS_H
#define DP_RUN_OPTIONS_H

#include "options.h"
#include "run.h"

#define DP_RUN_OPTIONS_MAX_SINKS 16
#define DP_RUN_OPTIONS_MAX_SOURCES 256
#define DP_RUN_OPTIONS_MAX_PROPS 256
#define DP_RUN_OPTIONS_MAX_SENDERS 16

/* Enrichment, as the options set it (cli/enrich_open.c opens it). */
typedef struct dp_run_enrich_options {
    int on;                     /* --enrich, or implied by a source of answers */
    const char *resolver;       /* HOST:PORT; NULL: the system's */
    const char *geoip_asn, *geoip_country;
    const char *senders[DP_RUN_OPTIONS_MAX_SENDERS];
    size_t n_senders;
    const char *cache_dir;      /* NULL: STATE/enrich when the run has a state, else memory */
    double ttl;                 /* seconds */
    size_t max_ips;             /* 0: the enricher's default */
    double wait;                /* a batch run's final flush waits this long at most */
} dp_run_enrich_options;

typedef struct dp_run_options {
    dp_run_config run;
    long cores;
    const char *sink_uris[DP_RUN_OPTIONS_MAX_SINKS + 1]; /* + the embedded default's */
    size_t n_sink_uris;
    const char *reports_path, *state_dir, *quarantine, *done_dir;
    dp_sink_options sopts;
    const char *props[DP_RUN_OPTIONS_MAX_PROPS];
    uint64_t epoch_inputs;
    double broker_timeout; /* < 0: unset: a minute for a batch run, for ever for a follower */
    int readahead;         /* -1: auto */
    int follow;
    double poll_seconds;
    dp_source_options so;
    const char *log_level, *log_format; /* NULL: the defaults */
    const char *metrics_addr;           /* HOST:PORT, NULL: no metrics endpoint */
    const char *progress;               /* auto, on or off */
    dp_run_enrich_options enrich;
    char **sources;                     /* the SOURCEs, from whichever layer set them */
    size_t n_sources;
    dp_options opts;                    /* owns the strings above */
} dp_run_options;

extern const dp_options_command dp_run_options_command;

/* Loads the options (help: whose --help to print; NULL: run's).
 * Returns -1 to go on, or the exit code for the command (0 after --help,
 * 2 after a bad option, printed).  Free with dp_run_options_free, either
 * way. */
int dp_run_options_load(dp_run_options *ro, int argc, char **argv, const dp_options_command *help);
void dp_run_options_free(dp_run_options *ro);

#endif
