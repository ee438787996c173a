/* aggregate.h — the public interface of dmarcpipe's second stage.
 *
 * The stage turns parsed records into rollups a warehouse can sum: N parser
 * workers hand records to M shard threads through bounded lock-free SPSC
 * rings, and each shard rolls its records up per UTC time window in a hash
 * table it alone owns.
 *
 * What is here:
 *   - dp_ring: the single-producer single-consumer ring between one worker
 *     and one shard;
 *   - dp_window_split: how one record's count is spread over the windows
 *     its report's date range overlaps, exactly;
 *   - dp_dedup: each report counted once, and the LMDB state a run keeps;
 *   - dp_engine: a run of the stage over a list of inputs, from their
 *     sources to the sinks.
 */
#ifndef DP_AGGREGATE_H
#define DP_AGGREGATE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_error.h"
#include "dp_log.h"
#include "dp_metrics.h"
#include "dp_report.h"

/* ---- dp_ring: bounded lock-free SPSC ring of pointers ------------------
 *
 * Exactly one thread pushes and exactly one thread pops.  Neither ever
 * blocks or takes a lock: push fails when the ring is full (the worker then
 * waits: backpressure, nothing is dropped), pop fails when it is empty.
 * The ring carries pointers; what they point to (a batch of records) moves
 * with them: the producer gives up the object on a successful push, the
 * consumer owns it after a successful pop.
 *
 * The indices live on separate cache lines so the two threads do not
 * false-share; each side keeps a private copy of the other's index and
 * reloads it only when the ring looks full (or empty), so the common case
 * touches no shared line but its own. */
#define DP_CACHELINE 64

typedef struct dp_ring {
    alignas(DP_CACHELINE) _Atomic size_t head; /* next slot to pop; the consumer writes it */
    size_t tail_seen;                          /* the consumer's last look at tail */
    alignas(DP_CACHELINE) _Atomic size_t tail; /* next slot to push; the producer writes it */
    size_t head_seen;                          /* the producer's last look at head */
    alignas(DP_CACHELINE) size_t mask;         /* capacity - 1 */
    void **slots;
} dp_ring;

/* Capacity is rounded up to a power of two (at least 2).  0 or -1. */
int dp_ring_init(dp_ring *r, size_t capacity);
void dp_ring_free(dp_ring *r);
size_t dp_ring_capacity(const dp_ring *r);
/* Producer side: 1 if pushed, 0 if the ring is full. */
int dp_ring_push(dp_ring *r, void *item);
/* Consumer side: 1 and *item if popped, 0 if the ring is empty. */
int dp_ring_pop(dp_ring *r, void **item);
/* Consumer side: 1 if a pop would succeed now, without popping. */
int dp_ring_ready(dp_ring *r);

/* ---- dp_window_split: a count spread over UTC windows ------------------
 *
 * A report covers [begin, end]; receivers write `end` both as the last
 * second of the range (…799) and as the first second after it (…800), so
 * the range is taken as the seconds [begin, end) when end > begin, and as
 * the one second `begin` otherwise.  Windows are [k*width, (k+1)*width)
 * in Unix time, i.e. UTC.  Each window gets its share of count in
 * proportion to its overlap, rounded by cumulative rounding: window i gets
 * floor(count*C_i/L) - floor(count*C_(i-1)/L), C_i being the overlap of
 * windows 0..i and L the range's length.  The shares always sum to `count`
 * exactly, each is within one message of its exact proportion, and the
 * same input always gives the same shares. */
typedef struct dp_window_share {
    int64_t window_start; /* Unix seconds, a multiple of width */
    uint64_t count;
} dp_window_share;

/* Writes up to `max` shares, one per overlapped window in time order, and
 * returns how many windows there are (possibly more than max: call again
 * with more room).  Windows whose share is 0 are still listed, so records
 * are counted in every window they touch.  width > 0.  Safe for any int64
 * range; 0 only when a window would start below INT64_MIN. */
size_t dp_window_split(int64_t begin, int64_t end, uint64_t count, int64_t width,
                       dp_window_share *out, size_t max);

/* ---- dp_dedup: each report counted once ---------------------------------
 *
 * Identity: org_name + report_id + policy_domain + begin.  Thread-safe.
 * With a state directory, identities persist in LMDB across runs. */
typedef struct dp_dedup dp_dedup;

enum { DP_DEDUP_NEW = 0, DP_DEDUP_DUPLICATE = 1, DP_DEDUP_ERROR = -1 };

/* state_dir NULL: within this run only. */
dp_dedup *dp_dedup_open(const char *state_dir, dp_error *err);
/* Whether an earlier run counted the identity (LMDB; fixed during a run):
 * 1 or 0, or -1 when the state cannot be read. */
int dp_dedup_seen_before(dp_dedup *d, const uint8_t id[32]);
/* Counts the identity if it is new: DP_DEDUP_NEW, else DP_DEDUP_DUPLICATE,
 * or DP_DEDUP_ERROR (memory, or the state cannot be read).  The caller
 * decides in input order, so the first copy counts. */
int dp_dedup_decide(dp_dedup *d, const uint8_t id[32]);
/* What one epoch changes in the state besides its identities. */
typedef struct dp_dedup_epoch {
    const char *const *input_keys; /* inputs acknowledged (dp_input.key) */
    size_t n_inputs;
    uint64_t epoch;       /* the epoch's number, 0: leave as it is */
    uint64_t ledger_next; /* where to read the ledger from next, 0: leave */
    /* How far each sink that keeps a position (a file) is committed: what
     * a restart truncates it back to. */
    const char *const *sink_names;
    const uint64_t *sink_positions;
    size_t n_sinks;
} dp_dedup_epoch;

/* Makes the identities decided since the last persist durable, with `ep`
 * (NULL: identities only), in one durable LMDB transaction. */
int dp_dedup_persist(dp_dedup *d, const dp_dedup_epoch *ep, dp_error *err);
/* Forgets the identities decided since the last persist: their epoch was
 * aborted and will be run again. */
void dp_dedup_rollback(dp_dedup *d);
/* Calls fn (if not NULL) on each identity decided since the last persist;
 * returns how many there are. */
size_t dp_dedup_pending(dp_dedup *d, void (*fn)(void *ctx, const uint8_t id[32]), void *ctx);
/* Drops the persisted identities from memory when LMDB holds them all (a
 * state directory, nothing pending), so that a long-running process does
 * not grow with every report it has seen; LMDB still answers for them.
 * Without a state directory, memory is the only record: nothing is dropped. */
void dp_dedup_forget_persisted(dp_dedup *d);
/* Whether an epoch that committed took this input: 1, 0, -1 (unreadable). */
int dp_dedup_input_done(dp_dedup *d, const char *key);
/* A sink's committed position (bytes of a file): 1 and *pos when the state
 * has one, 0 when not, -1 when the state cannot be read. */
int dp_dedup_sink_position(dp_dedup *d, const char *name, uint64_t *pos);
/* The last committed epoch and the ledger's next offset (0 when unknown). */
int dp_dedup_meta(dp_dedup *d, uint64_t *epoch, uint64_t *ledger_next);
/* Records an epoch found in the ledger (committed, but the state never
 * heard of it): its identities count as seen, its inputs as done.  Also
 * another worker's epoch in a ledger the workers share (no inputs, epoch
 * 0): its reports count as seen here too. */
int dp_dedup_apply_ledger(dp_dedup *d, const uint8_t (*ids)[32], size_t n_ids, const dp_dedup_epoch *ep,
                          dp_error *err);
/* How many identities dp_dedup_apply_ledger() found decided by the open
 * epoch (another worker committed them first), since the last call. */
size_t dp_dedup_take_conflicts(dp_dedup *d);
void dp_dedup_close(dp_dedup *d);
void dp_dedup_identity(const dp_report *rep, uint8_t out[32]);

/* ---- dp_engine: a run of the stage over a list of inputs ----------------
 *
 * Workers read the inputs (through dp_engine_inputs: the run reads each
 * from its source with ingest); shards roll the records up; rollups go to
 * every sink and accepted reports to the reports feed.  See
 * engine_internal.h for the threads and who owns what. */
struct dp_sink;
struct dp_enrich;

/* How the engine's workers read their inputs; the caller's, called by
 * several workers at once. */
typedef struct dp_engine_inputs {
    size_t n;
    /* Reads input i to its end, handing its reports and records to h with
     * hctx.  0 when it was accepted whole; -1 when something in it was
     * rejected (each rejection is passed to h->report_failed, and err gets
     * the first). */
    int (*read)(void *ctx, size_t i, const dp_report_handler *h, void *hctx, dp_error *err);
    /* Input i was rejected; errors[0..n) say why.  0, or -1 (err) when the
     * rejection could not be kept and the run must stop. */
    int (*reject)(void *ctx, size_t i, const dp_error *errors, size_t n_errors, dp_error *err);
    /* Optional: whether a report of input i, by its identity, is this
     * run's to count (0), or another's (1: its records go nowhere here,
     * and the caller sees that it reaches its owner).  Several workers at
     * once, from the report's header. */
    int (*route)(void *ctx, size_t i, const uint8_t id[32]);
    void *ctx;
} dp_engine_inputs;

typedef struct dp_engine_config {
    unsigned workers, shards;     /* threads of each kind */
    int64_t window;               /* seconds: 3600 or 86400 */
    size_t max_keys;              /* flush a shard past this many keys (0: never) */
    double flush_interval;        /* seconds between flushes (0: only at the end) */
    size_t ring_slots;            /* batches per ring */
    size_t batch_items;           /* window shares per batch */
    dp_dedup *dedup;              /* NULL: no dedup */
    struct dp_sink *const *sinks; /* rollups go to each */
    size_t n_sinks;
    struct dp_sink *reports;      /* the inventory feed, or NULL */
    /* Optional: asked before each input is taken, with the number taken so
     * far; 0 ends the run there (an epoch: see run/).  Inputs are taken
     * in list order, so a run always takes a prefix of the list, and
     * dp_engine_stats.inputs says how long.  Called with an engine lock
     * held: keep it quick. */
    int (*admit)(void *ctx, size_t taken);
    void *admit_ctx;
    dp_log *log; /* rejections and duplicates are said here (NULL: plain on stderr) */
    dp_metrics *metrics; /* keys per shard, ring occupancy (NULL: not counted) */
    /* Who is each source IP (enrich/; NULL: nobody asks).  A shard asks
     * for an IP once, when it first meets it; a flush writes what is known
     * then, never waiting for an answer: a rollup flushed before its
     * lookup ended carries nulls, a later one the answer. */
    struct dp_enrich *enrich;
    /* Seconds the final flush waits, at most, for lookups still out (0:
     * none; a batch run's --enrich-wait). */
    double enrich_wait;
} dp_engine_config;

typedef struct dp_engine_stats {
    uint64_t inputs, inputs_rejected;       /* inputs taken: a prefix of the list */
    uint64_t reports, rejected, duplicates; /* accepted / rejected / skipped reports */
    uint64_t routed;                        /* reports another run counts (dp_engine_inputs.route) */
    uint64_t records, messages, xml_bytes;  /* of accepted reports */
    uint64_t rollups, flushes;              /* lines written per sink, shard flushes */
    uint64_t peak_keys, peak_table_bytes;   /* summed over shards */
    double seconds;
    double final_flush_seconds; /* of which: the final flush (formatting and sink writes) */
} dp_engine_stats;

void dp_engine_config_default(dp_engine_config *c);
/* Registers the engine's families in m (each run does too; call it first
 * so that they are there before the first run): keys held per shard, and
 * how full the worker-to-shard rings are.  *keys and *ring may be NULL. */
void dp_engine_metrics(dp_metrics *m, unsigned shards, dp_metric **keys, dp_metric **ring);
/* Adds the counts of `s` to `total` (peaks: the larger; times: summed). */
void dp_engine_stats_add(dp_engine_stats *total, const dp_engine_stats *s);
/* Runs the stage over the inputs, in list order.  0, or -1 when something
 * other than an input failed (a sink, the state, memory, a rejection that
 * could not be kept); rejected inputs are not errors. */
int dp_engine_run(const dp_engine_config *cfg, const dp_engine_inputs *inputs, dp_engine_stats *out,
                  dp_error *err);

#endif
