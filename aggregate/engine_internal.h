/* engine_internal.h — the engine's threads and what they share.
 *
 *   inputs ─► worker 0..N-1 ──(ring w×s)──► shard 0..M-1 ─► sinks
 *               ingest + window split          intern + hash table
 *
 * One file per concern:
 *   engine.c   a run: start the threads, join them, gather the figures
 *   worker.c   a worker: inputs through ingest, records split over windows
 *              into batches, one open batch per shard
 *   align.c    which DKIM result a rollup carries (relaxed alignment)
 *   batch.c    batches: handed to a shard by a ring push, handed back by
 *              a second ring for reuse; a shard's doorbell
 *   decide.c   the decision order: which input is next, and which copy of
 *              a report counts, in input order
 *   shard.c    a shard: batches into pending tables, verdicts into its
 *              main table
 *   flush.c    rollups out to the sinks: timed and --max-keys flushes by a
 *              shard, and the final flush by every thread of the run
 *   ipseen.c   the source IPs a shard has asked enrichment about
 *
 * Workers take inputs in order from a shared list, unwrap and parse them
 * with ingest, split each record's count over time windows, and pack the
 * pieces into batches, one open batch per shard; the shard is chosen by a
 * hash of the canonical source IP.  Every (worker, shard) pair has its own
 * SPSC ring for full batches, and a second ring that carries emptied
 * batches back for reuse, so the hot path neither locks nor allocates.
 * When a ring is full the worker waits (backpressure): nothing is dropped
 * and no queue is unbounded.
 *
 * A report counts whole or not at all, and the copy of a report that counts
 * must not depend on thread timing.  So a shard keeps what a worker sends
 * for one report in a pending table of its own, and nothing is merged until
 * the report is decided:
 *   - a report that fails is ABORTed at once (its tables are dropped);
 *   - a report that ends well is DEFERred: its data waits in the shards,
 *     and its identity waits in the input's list;
 *   - when every input up to input k has been read to its end, the reports
 *     of input k are decided in order (dedup: the first copy in input order
 *     counts), and each verdict travels back to the worker that parsed the
 *     report, which sends it down its own rings, after the data (rings are
 *     FIFO).  COMMIT merges the pending table into the shard's table.
 * Decisions happen in input order, so the output is the same for any number
 * of workers and shards.  A bounded number of reports may wait undecided
 * (MAX_DEFERRED): past it, workers on later inputs wait for earlier ones,
 * so memory stays bounded; the worker holding the earliest unfinished input
 * never waits, so this cannot deadlock.
 *
 * Each shard thread alone owns its interner and tables while the run goes
 * on.  It flushes its rollups to the sinks every --flush-interval and
 * whenever its table passes --max-keys; a flush emits partial rollups that
 * a warehouse adds up.  At the end, once every thread has been joined, the
 * tables are read-only and all of the run's threads format them together.
 */
#ifndef DP_ENGINE_INTERNAL_H
#define DP_ENGINE_INTERNAL_H

#include <libpsl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate_internal.h"
#include "dp_buf.h"
#include "sink.h"

enum { OP_DATA = 0, OP_DEFER, OP_ABORT, OP_DECIDE };

#define MAX_DEFERRED 4096

/* A verdict on a deferred report, sent to the shards by its worker. */
typedef struct decision {
    uint64_t token;
    int commit;
} decision;

/* One record's share of one window, its strings as offsets into the batch
 * arena (0 = absent). */
typedef struct item {
    int64_t window_start;
    uint64_t count;
    uint32_t first_off, last_off;
    uint32_t str[K__STRINGS];
    uint8_t ip[16];
    uint8_t ip_family;
} item;

typedef struct batch {
    struct batch *next; /* on the worker's free list */
    unsigned worker;
    int op;
    uint64_t token;      /* the report the items belong to */
    size_t n;
    item *items;
    dp_buf arena;
    decision *decisions; /* OP_DECIDE */
    size_t n_decisions, cap_decisions;
    /* The report-level strings (reporter, policy domain) are the same for
     * every item of a report: copy them into the arena once per batch. */
    const char *cached[K_HEADER_FROM];
    uint32_t cached_off[K_HEADER_FROM];
} batch;

/* A report that ended well and waits for its verdict. */
typedef struct deferred {
    struct deferred *next;
    unsigned worker;
    uint64_t token;
    uint8_t identity[32];
    uint64_t records, messages, xml_bytes;
    char *report_line; /* its reports-feed line, JSON */
    char *label;       /* for the duplicate log line */
} deferred;

/* Per input: read to its end yet, and its deferred reports in order. */
typedef struct input_state {
    int finished;
    deferred *head, *tail;
} input_state;

typedef struct engine engine;

/* align.c: a worker's cache of organisational domains, a lowercased name
 * and where its registrable domain starts in it (-1: none). */
#define ORG_CACHE 64
#define ORG_NAME_MAX 64
typedef struct org_entry {
    char name[ORG_NAME_MAX];
    int16_t off;
} org_entry;

typedef struct dp_align_cache {
    const psl_ctx_t *psl;
    org_entry orgs[ORG_CACHE];
} dp_align_cache;

typedef struct worker {
    engine *e;
    unsigned id;
    pthread_t th;
    batch **open;      /* per shard: the batch being filled, or NULL */
    uint8_t *sent;     /* per shard: a batch of the current report was pushed */
    uint8_t *touched;  /* per shard: the current report has items there */
    unsigned *unrung;  /* per shard: batches pushed since its bell was last rung */
    unsigned ring_every; /* ring a shard's bell after this many pushes */
    batch *free_list;
    size_t input;      /* index of the input being read */
    uint64_t token;    /* the report in flight: this worker's sequence number */
    int counted_before; /* the report in flight was counted by an earlier run */
    int routed;         /* ... or is another run's to count */
    decision *inbox;   /* verdicts to send (guarded by the engine's order_lock) */
    size_t n_inbox, cap_inbox;
    decision *outbox;  /* verdicts being sent (the worker's own) */
    size_t cap_outbox;
    dp_window_share *shares;
    size_t cap_shares;
    dp_buf tmp;
    dp_error *errs;
    size_t n_errs, cap_errs;
    dp_engine_stats st;
    dp_align_cache align;
} worker;

/* One worker's undecided reports in one shard, oldest first.  Tokens only
 * grow, and verdicts come oldest first, so a FIFO is all it takes. */
typedef struct pending {
    uint64_t token;
    int open; /* still receiving data */
    dp_rollup_table table;
} pending;

typedef struct pending_q {
    pending *v;
    size_t head, n, cap; /* a ring buffer of n entries from head */
} pending_q;

typedef struct shard {
    engine *e;
    unsigned id;
    pthread_t th;
    dp_intern strings;
    uint32_t last_id[K__STRINGS]; /* a one-entry cache per field */
    dp_rollup_table main;
    struct pending_q *pending; /* per worker: reports not yet decided */
    dp_buf *out;               /* per sink: formatted rollups not yet written */
    dp_ipseen ips;             /* source IPs asked about (cfg->enrich) */
    dp_buf info;               /* its flushes' arena for dp_enrich_get() */
    dp_bell bell;              /* rung by workers: see dp_batch_push() */
    int bell_ok;               /* bell initialised */
    double last_flush;
    uint64_t rollups, flushes;
    size_t peak_keys, peak_bytes;
} shard;

struct engine {
    const dp_engine_config *cfg;
    const dp_engine_inputs *inputs;
    size_t n_inputs;
    size_t next_input; /* inputs below it were taken (order_lock) */
    int closed;        /* no more inputs will be taken (order_lock) */
    _Atomic unsigned workers_done;
    dp_ring *rings; /* [w * shards + s]: full batches, worker -> shard */
    dp_ring *back;  /* [w * shards + s]: empty batches, shard -> worker */
    worker *workers;
    shard *shards;
    pthread_mutex_t order_lock; /* input_state, the watermark, inboxes, n_deferred */
    pthread_cond_t order_cond;
    input_state *in_st;
    size_t watermark;           /* inputs below it are decided */
    size_t n_deferred;
    uint64_t reports, duplicates, records, messages, xml_bytes; /* decided */
    pthread_mutex_t err_lock;
    int failed;
    dp_error fatal;
    dp_metric *m_keys, *m_ring; /* dmarcpipe_shard_keys, dmarcpipe_ring_occupancy (NULL: none) */
};

/* engine.c: records the run's first fatal error; the run then fails. */
void dp_engine_fail(engine *e, const dp_error *err);

/* worker.c */
void *dp_worker_main(void *worker_arg);

/* align.c: the DKIM result a rollup carries: the first one whose domain
 * is aligned with header_from in relaxed mode, else the first; NULL when
 * the record has none. */
const dp_dkim_auth *dp_align_pick_dkim(dp_align_cache *c, const dp_record *rec);

/* batch.c */
batch *dp_batch_get(worker *w);               /* an empty batch for the report in flight; NULL: memory */
void dp_batch_push(worker *w, unsigned s, batch *b); /* to shard s; waits while its ring is full */
void dp_batch_free(batch *b);
void dp_batch_ring_owed(worker *w);          /* rings every bell this worker owes */
void dp_batch_ring_all(engine *e);           /* wakes every shard */

/* decide.c */
/* The next input to read, in list order; 0 when the run takes no more. */
int dp_decide_take_input(engine *e, size_t *index);
/* Queues the worker's report that ended well for its verdict (it waits
 * first while MAX_DEFERRED reports wait, unless it holds the earliest
 * unfinished input). */
void dp_decide_defer(worker *w, deferred *d);
/* Input `index` has been read to its end: decide what can be decided. */
void dp_decide_input_done(engine *e, size_t index);
/* Sends the verdicts waiting in this worker's inbox down its rings. */
void dp_decide_send(worker *w);
/* After the worker's last input: sends verdicts until every input taken is
 * decided. */
void dp_decide_drain(worker *w);
void dp_decide_free_deferred(deferred *d);

/* shard.c */
void *dp_shard_main(void *shard_arg);
void dp_shard_free_pending(shard *sh, unsigned n_workers);

/* shard.c: a record made a new key; asks enrichment about its source IP
 * if this shard has not yet (cfg->enrich), and gives the IP's
 * dp_enrich_id for the key's entry (0: none). */
uint32_t dp_shard_note_ip(shard *sh, const uint8_t ip[16], uint8_t family);

/* flush.c */
/* A flush while the run goes on (--flush-interval, --max-keys): the shard
 * thread writes its own table.  0 or -1 (recorded with dp_engine_fail). */
int dp_flush_shard(shard *sh);
/* After every thread of the run has been joined: every table, formatted by
 * as many threads as the run had. */
void dp_flush_final(engine *e);

#endif
