/* cli.h — the subcommands of the `dmarcpipe` binary.
 *
 * Each subcommand is a function with main()'s signature, listed in the
 * table in dmarcpipe.c, git style: `dmarcpipe parse ...`, later
 * `dmarcpipe run ...`.  Helpers shared by subcommands live in cli_util.c.
 */
#ifndef DP_CLI_H
#define DP_CLI_H

#include <stdint.h>

#include "ingest.h"

int dp_cmd_parse(int argc, char **argv);
int dp_cmd_run(int argc, char **argv);

/* Parses "64K", "10M", "1G" or plain bytes.  0 on success. */
int dp_cli_parse_size(const char *s, uint64_t *out);

/* Handles a limit option (--max-report-bytes and friends) shared by every
 * subcommand that ingests.  Returns 1 if `opt` was one, 0 if not, -1 if its
 * value was invalid (a message was printed). */
int dp_cli_limit_option(dp_ingest_limits *lim, const char *opt, const char *val);
extern const char DP_CLI_LIMITS_HELP[];

/* Calls fn(path, ctx) for each regular file under `path` (itself, if it
 * is a file), in sorted order so runs are reproducible. */
int dp_cli_walk(const char *path, int (*fn)(const char *file, void *ctx), void *ctx);

/* A stable key for an input file: size, mtime and real path.  The state
 * records the inputs a committed epoch took under it.  Malloc'd, or NULL
 * when the file cannot be stat'ed. */
char *dp_input_key(const char *path);

/* ---- run_epochs.c: `dmarcpipe run` with a transactional sink -------------- */
#include <signal.h>

#include "aggregate.h"
#include "sink.h"

typedef struct dp_epoch_options {
    dp_sink *sink;        /* the transactional sink (has epoch_commit) */
    const char *instance; /* --instance-id, written into the ledger */
    size_t epoch_inputs;  /* at most this many inputs per epoch (0: no cap) */
    double epoch_seconds; /* stop taking inputs after this long (0: no cap) */
    const volatile sig_atomic_t *stop; /* SIGTERM: end the epoch, then stop */
} dp_epoch_options;

typedef struct dp_epoch_stats {
    dp_engine_stats engine; /* summed over committed epochs */
    uint64_t epochs, epochs_retried, recovered_epochs, inputs_done_before;
    /* the sink's own time in committed epochs: the final flush (rollups
     * formatted and produced) plus the ledger and the commit */
    double sink_seconds;
    int stopped;
} dp_epoch_stats;

/* Runs `base` (its dedup must have the state) over the inputs in epochs,
 * each committed in o->sink with its ledger.  0, or -1 (err). */
int dp_run_epochs(const dp_engine_config *base, const dp_epoch_options *o, char **inputs, size_t n_inputs,
                  dp_epoch_stats *out, dp_error *err);

#endif
