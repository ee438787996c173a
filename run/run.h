/* run.h — the public interface of the run: the conductor of the pipeline.
 *
 * A run takes inputs from its sources, has the engine count them, and
 * makes what it counted durable, always in this order, for every sink:
 *
 *   sources ─► engine ─► sinks commit ─► state persisted ─► sources ack
 *
 * The inputs go in epochs.  An epoch is one engine run over the next
 * inputs, ended by a cap (inputs, seconds) or a stop request, then one
 * commit: a transactional sink (Kafka) commits the epoch's transaction,
 * with a ledger record of what the epoch took; a sink without epochs (a
 * file) flushes and fsyncs.  Only then does the state (LMDB, dp_dedup)
 * learn of the epoch's reports and inputs, in one LMDB transaction, and
 * only after that is each input acknowledged with its source (moved to
 * --done, for files).  A crash at any step is safe:
 *   - before the commit: nothing counted is durable; the inputs are run
 *     again (an open transaction is fenced and aborted by the next start);
 *   - after the commit, before the state write: the next start reads the
 *     ledger back (dp_conductor_recover) and writes what it finds into the
 *     state, so nothing is counted twice;
 *   - after the state write, before an acknowledgement: the next run finds
 *     the input done in the state and acknowledges it then.
 * A file sink needs no ledger: the state records, with each epoch, how
 * long each file was at the commit, and the next run cuts the file back to
 * that length (dp_conductor_resume) before it writes; what a dead run
 * wrote past it is gone, and its reports, unknown to the state, are
 * counted again, once.  A run with both a file sink and a Kafka sink is
 * exactly once in Kafka only: a flush cannot be taken back when the
 * transaction then aborts.
 *
 * Files: conductor.c (the protocol), ledger.c (the ledger's records and
 * the recovery from them), follow.c (the long-running mode).
 *
 * The conductor is also where the stages meet: the engine's workers read
 * each input from its source with ingest, and hand a rejected one back to
 * its source, through callbacks the conductor gives the engine.
 *
 * Threads: everything here runs on the caller's thread, but those
 * callbacks, which the engine's workers call; the engine starts and joins
 * its own threads inside each epoch.  Memory: inputs are the
 * caller's (dp_conductor_run) or the run's own, listed from the sources and
 * freed once acknowledged.
 */
#ifndef DP_RUN_H
#define DP_RUN_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"
#include "dp_error.h"
#include "ingest.h"
#include "sink.h"
#include "source.h"

typedef struct dp_run_config {
    /* The engine's settings for every epoch: engine.dedup is the state,
     * engine.sinks (at most one with epochs) and engine.reports the
     * outputs, which the conductor commits.  engine.admit is the
     * conductor's own. */
    dp_engine_config engine;
    dp_ingest_limits limits; /* what ingest accepts of an input */
    const char *instance;  /* names the ledger's records (--instance-id) */
    size_t epoch_inputs;   /* at most this many inputs per epoch (0: no cap) */
    double epoch_seconds;  /* an epoch takes no new input after this long (0: no cap) */
    int track_inputs;      /* the state records every acknowledged input by its key,
                              and later runs skip it (always, with a ledger) */
    /* Workers of one inbox share the ledger topic: before each epoch, and
     * before it commits, the reports the others committed are read into
     * the state, so that a copy of one is a duplicate here too. */
    int ledger_shared;
    /* Each report is counted by the worker its source routes it to
     * (dp_source_route): copies of it are decided in one place, one after
     * the other; the others forward it there in the epoch's transaction. */
    int route_reports;
    const volatile sig_atomic_t *stop; /* SIGTERM: end the epoch, then stop (may be NULL) */
    struct dp_run_progress *progress; /* live figures for a progress line (may be NULL) */
} dp_run_config;

/* A run's live figures, for a progress line (any thread reads them,
 * relaxed): what the listings found, and what the engine's workers have
 * read so far, added as each input ends (an epoch run again adds again;
 * the exact figures are the stats). */
typedef struct dp_run_progress {
    _Atomic uint64_t listed;       /* inputs listed */
    _Atomic uint64_t listed_bytes; /* bytes of those whose size the listing knew */
    _Atomic uint64_t unsized;      /* inputs listed without a size (mail, objects) */
    _Atomic uint64_t done;         /* inputs read, or skipped as counted before */
    _Atomic uint64_t done_bytes;   /* bytes of the inputs read */
    _Atomic uint64_t records;      /* records of the reports accepted so far */
    _Atomic uint64_t rejected;     /* inputs rejected so far */
} dp_run_progress;

typedef struct dp_run_stats {
    dp_engine_stats engine;  /* summed over committed epochs; seconds: the conductor's wall time */
    uint64_t epochs;         /* committed */
    uint64_t epochs_retried; /* aborted by the sink and run again */
    uint64_t epochs_abandoned; /* their inputs went to another worker (a rebalance) */
    uint64_t recovered_epochs; /* found in the ledger, not in the state */
    uint64_t inputs_done_before; /* skipped: the state knew them */
    uint64_t acked, ack_failures; /* acknowledgements with the sources */
    uint64_t held;           /* rejected inputs whose rejection could not be kept:
                                left in place, unacknowledged, for a later run */
    uint64_t cycles;         /* follow mode */
    double sink_seconds;     /* with epochs: the final flushes plus the ledger and the commits */
    int stopped;             /* a stop request ended the run */
} dp_run_stats;

/* ---- conductor.c -------------------------------------------------------------- */

/* The defaults: the engine's (dp_engine_config_default) and ingest's
 * limits (dp_ingest_limits_default); no caps on epochs, no outputs. */
void dp_conductor_config_default(dp_run_config *c);
/* The one sink of the run that works in epochs, or NULL. */
dp_sink *dp_conductor_epoch_sink(const dp_run_config *c);
/* Once per process, before anything is written: every sink that keeps a
 * position (a file, with a state) goes on from the one the state recorded,
 * cutting what a run that died before its commit wrote after it.  0, or -1
 * (err): a sink's file does not hold what the state says. */
int dp_conductor_resume(const dp_run_config *c, dp_error *err);
/* Catches the state up with the ledger: epochs that committed but were
 * never recorded (a crash between the two).  Once per process, before the
 * first dp_conductor_run(), when a sink works in epochs (a no-op
 * otherwise).  0, or -1 (err); st->stopped on a stop request. */
int dp_conductor_recover(const dp_run_config *c, dp_run_stats *st, dp_error *err);
/* Runs `inputs` (in this order) in epochs, committing, persisting and
 * acknowledging each; inputs the state already knows (track_inputs) are
 * acknowledged again and skipped.  Adds to *st.  0, or -1 (err): nothing
 * of the failing epoch was persisted or acknowledged. */
int dp_conductor_run(const dp_run_config *c, dp_input *const *inputs, size_t n, dp_run_stats *st, dp_error *err);
/* A batch run: lists each source once, in order, and runs everything. */
int dp_conductor_batch(const dp_run_config *c, dp_source *const *sources, size_t n_sources, dp_run_stats *st,
                       dp_error *err);

/* ---- follow.c: the long-running mode ------------------------------------------ */

typedef struct dp_follow_config {
    double poll_seconds;   /* between two looks at the sources */
    double flush_interval; /* a ready input waits at most this long for its cycle (0: none) */
    size_t cycle_inputs;   /* at most this many inputs per cycle (>= 1) */
} dp_follow_config;

/* Lists the sources (opened with follow) every poll, and runs what is
 * ready in cycles, each one dp_conductor_run(), until *c->stop.  A cycle
 * starts once the oldest ready input has waited flush_interval, or at once
 * when cycle_inputs are ready.  0, or -1 (err). */
int dp_follow_run(const dp_run_config *c, const dp_follow_config *f, dp_source *const *sources, size_t n_sources,
                  dp_run_stats *st, dp_error *err);

/* ---- ledger.c: what an epoch took, as the transactional sink keeps it -------- */

/* A ledger record is JSON,
 *   {"v":1,"instance":ID,"epoch":N,"reports":[HEX...],"inputs":[KEY...]}
 * the identities (hex SHA-256) the epoch counted and the keys of the
 * inputs it took.  An epoch's records are at most DP_LEDGER_PART_BYTES
 * each, share its number, and commit together.  A key that is not UTF-8
 * (a path is bytes; a JSON string is not) is written "hex:" and its bytes
 * in hex; a file key starts with a digit, so the two cannot be confused. */
#define DP_LEDGER_VERSION 1
#define DP_LEDGER_PART_BYTES (256u * 1024u) /* well under Kafka's message.max.bytes */

/* Hands one encoded record on (to the sink: dp_sink_ledger_write). */
typedef int (*dp_ledger_emit_fn)(void *ctx, const char *rec, size_t len, dp_error *err);

struct json_t;
typedef struct dp_ledger_writer {
    const char *instance;
    uint64_t epoch;
    dp_ledger_emit_fn emit;
    void *emit_ctx;
    struct json_t *reports, *inputs; /* the open record's arrays */
    size_t bytes;
    int failed;
    dp_error *err;
} dp_ledger_writer;

/* Starts the records of one epoch. */
void dp_ledger_begin(dp_ledger_writer *w, const char *instance, uint64_t epoch, dp_ledger_emit_fn emit, void *ctx,
                     dp_error *err);
void dp_ledger_add_report(dp_ledger_writer *w, const uint8_t id[32]);
void dp_ledger_add_input(dp_ledger_writer *w, const char *key);
/* Emits the last record.  0, or -1 (err) when any record failed: then the
 * epoch must not commit (a record that leaves something out could let a
 * crash count it again). */
int dp_ledger_end(dp_ledger_writer *w);

/* One record, decoded. */
typedef struct dp_ledger_record {
    char *instance;
    uint64_t epoch;
    uint8_t (*ids)[32];
    size_t n_ids;
    char **keys;
    size_t n_keys;
} dp_ledger_record;

/* 0 and *out (free it with dp_ledger_record_free), 1 when `rec` is not a
 * ledger record at all (skip it), or -1 (err) when it is one, malformed. */
int dp_ledger_decode(const char *rec, size_t len, dp_ledger_record *out, dp_error *err);
void dp_ledger_record_free(dp_ledger_record *r);

/* Reads the ledger from where the state left it and writes each epoch of
 * `instance` that the state does not know into it.  Sets *epochs to the
 * number of such epochs; says what it skipped and recovered in `log`.
 * 0, DP_SINK_STOPPED, or -1 (err). */
int dp_ledger_recover(dp_sink *sink, dp_dedup *state, const char *instance, dp_log *log, uint64_t *epochs,
                      dp_error *err);

#endif
