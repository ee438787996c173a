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
/* The same, but directories below `path` whose real path is in `skip`
 * (NULL-terminated, may be NULL) are not entered: `dmarcpipe run`'s own
 * output, quarantine and done folders when they lie under a SOURCE.  A
 * SOURCE named on the command line is always read. */
int dp_cli_walk_skip(const char *path, const char *const *skip, int (*fn)(const char *file, void *ctx), void *ctx);

/* A stable key for an input file: size, mtime and real path.  The state
 * records the inputs a committed epoch took under it.  Malloc'd, or NULL
 * when the file cannot be stat'ed. */
char *dp_input_key(const char *path);

/* ---- run_epochs.c: `dmarcpipe run` with a transactional sink -------------- */
#include <signal.h>

#include "aggregate.h"
#include "sink.h"

/* Inputs split by the state: those an earlier run counted (done), and the
 * rest (todo) with their input keys ("" for a file that cannot be stat'ed:
 * it fails, and is logged, when read).  The strings in todo and done are
 * the caller's; the keys and the arrays are freed by dp_input_split_free. */
typedef struct dp_input_split {
    char **todo, **keys;
    size_t n_todo;
    char **done;
    size_t n_done;
} dp_input_split;
int dp_input_split_make(dp_dedup *d, char **inputs, size_t n, dp_input_split *out, dp_error *err);
void dp_input_split_free(dp_input_split *s);

/* Told of inputs once they are acknowledged: counted, durably, by the
 * sinks and the state.  `inputs` are the caller's strings. */
typedef void (*dp_ack_fn)(void *ctx, char *const *inputs, size_t n);

typedef struct dp_epoch_options {
    dp_sink *sink;        /* the transactional sink (has epoch_commit) */
    const char *instance; /* --instance-id, written into the ledger */
    size_t epoch_inputs;  /* at most this many inputs per epoch (0: no cap) */
    double epoch_seconds; /* stop taking inputs after this long (0: no cap) */
    const volatile sig_atomic_t *stop; /* SIGTERM: end the epoch, then stop */
    /* Optional: the inputs of each epoch once it has committed and the
     * state has recorded it, and those the state already knew as done. */
    dp_ack_fn acked;
    void *ack_ctx;
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
 * each committed in o->sink with its ledger: dp_epochs_recover(), then
 * dp_epochs_run().  0, or -1 (err). */
int dp_run_epochs(const dp_engine_config *base, const dp_epoch_options *o, char **inputs, size_t n_inputs,
                  dp_epoch_stats *out, dp_error *err);
/* Catches the state up with the ledger: epochs that committed but were
 * never recorded (a crash between the two).  Once per process, before the
 * first dp_epochs_run().  Sets out->recovered_epochs (and out->stopped on a
 * signal). */
int dp_epochs_recover(const dp_engine_config *base, const dp_epoch_options *o, dp_epoch_stats *out, dp_error *err);
/* The epochs over the inputs the state does not know as done. */
int dp_epochs_run(const dp_engine_config *base, const dp_epoch_options *o, char **inputs, size_t n_inputs,
                  dp_epoch_stats *out, dp_error *err);

/* ---- run_follow.c: acknowledged inputs, and --follow ---------------------- */
#include <jansson.h>

/* What becomes of an input once it is acknowledged (a dp_ack_fn's ctx). */
typedef struct dp_acker {
    const char *const *roots; /* the SOURCEs as given: --done keeps paths below them */
    size_t n_roots;
    const char *done_dir; /* --done: moved there; NULL: left in place */
    json_t *keys;         /* input keys to skip from now on (NULL: none kept) */
    uint64_t moved, move_failures;
} dp_acker;

/* A dp_ack_fn: moves the inputs to done_dir, or remembers their keys. */
void dp_acker_ack(void *acker, char *const *inputs, size_t n);

typedef struct dp_follow_options {
    const char *const *sources; /* walked on every scan */
    size_t n_sources;
    const char *const *skip; /* folders not to walk (dp_cli_walk_skip) */
    double poll_seconds;     /* between scans */
    double flush_interval;   /* a ready file waits at most this long for its cycle (0: none) */
    size_t cycle_inputs;     /* at most this many inputs per cycle (>= 1) */
    const volatile sig_atomic_t *stop;
    /* Runs one cycle over inputs (sorted, ready), acknowledging what it
     * counts through the acker.  0, or -1 (err): the follower stops. */
    int (*cycle)(void *ctx, uint64_t cycle_no, char **inputs, size_t n, dp_error *err);
    void *cycle_ctx;
} dp_follow_options;

/* Scans and runs cycles until *o->stop.  0, or -1 (err). */
int dp_follow_run(const dp_follow_options *o, dp_acker *acker, dp_error *err);

#endif
