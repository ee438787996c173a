/* engine — the threads of `dmarcpipe run`: workers parse, shards roll up.
 *
 *   inputs ─► worker 0..N-1 ──(ring w×s)──► shard 0..M-1 ─► sinks
 *               ingest + window split          intern + hash table
 *
 * Workers take inputs from a shared list (one atomic counter), unwrap and
 * parse them with ingest, split each record's count over time windows, and
 * pack the pieces into batches, one open batch per shard; the shard is
 * chosen by a hash of the canonical source IP.  Every (worker, shard) pair
 * has its own SPSC ring for full batches, and a second ring that carries
 * emptied batches back for reuse, so the hot path neither locks nor
 * allocates.  When a ring is full the worker waits (backpressure): nothing
 * is dropped and no queue is unbounded.
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
 * tables are read-only and all of the run's threads format them together
 * (final_flush_run).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <libpsl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate_internal.h"
#include "dp_buf.h"
#include "dp_clock.h"
#include "dp_net.h"
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

/* One entry of a worker's cache of organisational domains: a lowercased
 * name and where its registrable domain starts in it (-1: none). */
#define ORG_CACHE 64
#define ORG_NAME_MAX 64
typedef struct org_entry {
    char name[ORG_NAME_MAX];
    int16_t off;
} org_entry;

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
    org_entry orgs[ORG_CACHE]; /* see org_offset() */
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
    dp_bell bell;              /* rung by workers: see batch_push() */
    int bell_ok;               /* bell initialised */
    double last_flush;
    uint64_t rollups, flushes;
    size_t peak_keys, peak_bytes;
} shard;

struct engine {
    const dp_engine_config *cfg;
    const char *const *inputs;
    size_t n_inputs;
    size_t next_input; /* inputs below it were taken (order_lock) */
    int closed;        /* no more inputs will be taken (order_lock) */
    _Atomic unsigned workers_done;
    dp_ring *rings; /* [w * shards + s]: full batches, worker -> shard */
    dp_ring *back;  /* [w * shards + s]: empty batches, shard -> worker */
    worker *workers;
    shard *shards;
    const psl_ctx_t *psl;
    pthread_mutex_t order_lock; /* input_state, the watermark, inboxes, n_deferred */
    pthread_cond_t order_cond;
    input_state *in_st;
    size_t watermark;           /* inputs below it are decided */
    size_t n_deferred;
    uint64_t reports, duplicates, records, messages, xml_bytes; /* decided */
    pthread_mutex_t err_lock;
    int failed;
    dp_error fatal;
};

static void set_fatal(engine *e, const dp_error *err) {
    pthread_mutex_lock(&e->err_lock);
    if (!e->failed) {
        e->failed = 1;
        e->fatal = *err;
    }
    pthread_mutex_unlock(&e->err_lock);
}

void dp_engine_stats_add(dp_engine_stats *t, const dp_engine_stats *s) {
    t->inputs += s->inputs;
    t->inputs_rejected += s->inputs_rejected;
    t->reports += s->reports;
    t->rejected += s->rejected;
    t->duplicates += s->duplicates;
    t->records += s->records;
    t->messages += s->messages;
    t->xml_bytes += s->xml_bytes;
    t->rollups += s->rollups;
    t->flushes += s->flushes;
    if (s->peak_keys > t->peak_keys) t->peak_keys = s->peak_keys;
    if (s->peak_table_bytes > t->peak_table_bytes) t->peak_table_bytes = s->peak_table_bytes;
    t->seconds += s->seconds;
    t->final_flush_seconds += s->final_flush_seconds;
}

void dp_engine_config_default(dp_engine_config *c) {
    memset(c, 0, sizeof *c);
    c->workers = 1;
    c->shards = 1;
    c->window = 86400;
    c->max_keys = 4u << 20;
    c->ring_slots = 64;
    c->batch_items = 256;
    dp_ingest_limits_default(&c->limits);
}

/* ---- batches ------------------------------------------------------------ */

static batch *batch_new(const engine *e, unsigned owner) {
    batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->items = malloc(e->cfg->batch_items * sizeof *b->items);
    if (!b->items) {
        free(b);
        return NULL;
    }
    b->worker = owner;
    return b;
}

static void batch_free(batch *b) {
    if (!b) return;
    dp_buf_free(&b->arena);
    free(b->items);
    free(b->decisions);
    free(b);
}

static batch *batch_get(worker *w) {
    engine *e = w->e;
    if (!w->free_list) {
        /* collect what the shards handed back */
        for (unsigned s = 0; s < e->cfg->shards; s++) {
            void *p;
            while (dp_ring_pop(&e->back[w->id * e->cfg->shards + s], &p)) {
                batch *b = p;
                b->next = w->free_list;
                w->free_list = b;
            }
        }
    }
    batch *b = w->free_list;
    if (b) w->free_list = b->next;
    else b = batch_new(e, w->id);
    if (!b) return NULL;
    b->n = 0;
    b->n_decisions = 0;
    memset(b->cached, 0, sizeof b->cached);
    b->op = OP_DATA;
    b->token = w->token;
    dp_buf_reset(&b->arena);
    dp_buf_putc(&b->arena, '\0'); /* offset 0 means absent */
    return b;
}

/* A worker rings a shard's bell once every `ring_every` pushes, not after
 * each one, and always before it waits for anything (see
 * ring_unrung_bells()).  Waking a sleeping thread on another core costs
 * tens of microseconds on a VM, and the shard, faster than the worker,
 * sleeps again after every batch: one wake-up per batch was 1,400 on the
 * 256 MB bench report (with the readahead's, ~5% of the worker's samples
 * in `perf`; no change in wall time was measurable).  A shard left
 * asleep with work in its ring is never stuck: the worker rings before it
 * blocks, finishes an input or exits, and a shard wakes by itself every
 * IDLE_MAX_SLEEP_S anyway. */
static void batch_push(worker *w, unsigned s, batch *b) {
    engine *e = w->e;
    dp_ring *r = &e->rings[w->id * e->cfg->shards + s];
    if (!dp_ring_push(r, b)) {
        /* backpressure: wait, never drop; the shard must be awake to drain */
        dp_bell_ring(&e->shards[s].bell);
        w->unrung[s] = 0;
        while (!dp_ring_push(r, b)) sched_yield();
    }
    if (++w->unrung[s] >= w->ring_every) {
        dp_bell_ring(&e->shards[s].bell);
        w->unrung[s] = 0;
    }
}

/* Rings every bell this worker owes: before it waits, between inputs and
 * when it is done, so no batch it pushed waits on a sleeping shard. */
static void ring_unrung_bells(worker *w) {
    engine *e = w->e;
    for (unsigned s = 0; s < e->cfg->shards; s++) {
        if (!w->unrung[s]) continue;
        dp_bell_ring(&e->shards[s].bell);
        w->unrung[s] = 0;
    }
}

/* Wakes every shard: the last worker is done, so a shard's empty rings
 * now mean it can finish. */
static void ring_all_bells(engine *e) {
    for (unsigned s = 0; s < e->cfg->shards; s++) dp_bell_ring(&e->shards[s].bell);
}

/* ---- workers: records into batches --------------------------------------- */

static uint32_t arena_str(batch *b, const char *s) {
    if (!s) return 0;
    uint32_t off = (uint32_t)b->arena.len;
    dp_buf_append(&b->arena, s, strlen(s) + 1);
    return off;
}

static unsigned shard_of(const engine *e, const dp_record *rec) {
    uint64_t a, c;
    memcpy(&a, rec->ip, 8);
    memcpy(&c, rec->ip + 8, 8);
    uint64_t h = (a ^ (c * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (unsigned)(h % e->cfg->shards);
}

/* Where the registrable domain of `lower` (n bytes, lowercased) starts in
 * it, or -1 if it has none.  libpsl answers with a pointer into its input;
 * the answer is cached per worker, because a report names the same few
 * domains record after record and the lookup was about 1% of a worker's
 * instructions (callgrind, 10 MB bench report). */
static int org_offset(worker *w, const char *lower, size_t n) {
    org_entry *c = NULL;
    if (n < ORG_NAME_MAX) {
        uint32_t h = 2166136261u; /* FNV-1a */
        for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)lower[i]) * 16777619u;
        c = &w->orgs[h % ORG_CACHE];
        if (c->name[0] && memcmp(c->name, lower, n + 1) == 0) return c->off;
    }
    const char *o = psl_registrable_domain(w->e->psl, lower);
    int off = o && o >= lower && o <= lower + n ? (int)(o - lower) : -1;
    if (c && n) {
        memcpy(c->name, lower, n + 1);
        c->off = (int16_t)off;
    }
    return off;
}

/* DMARC relaxed alignment: the same organisational domain (RFC 7489 3.1).
 * libpsl's built-in Public Suffix List decides where it starts. */
static int relaxed_aligned(worker *w, const char *a, const char *b) {
    if (!a || !b) return 0;
    if (strcasecmp(a, b) == 0) return 1;
    char la[256], lb[256];
    size_t na = strlen(a), nb = strlen(b);
    if (na >= sizeof la || nb >= sizeof lb) return 0;
    for (size_t i = 0; i <= na; i++) la[i] = (char)((a[i] >= 'A' && a[i] <= 'Z') ? a[i] + 32 : a[i]);
    for (size_t i = 0; i <= nb; i++) lb[i] = (char)((b[i] >= 'A' && b[i] <= 'Z') ? b[i] + 32 : b[i]);
    int oa = org_offset(w, la, na), ob = org_offset(w, lb, nb);
    return oa >= 0 && ob >= 0 && strcmp(la + oa, lb + ob) == 0;
}

static int cmp_cstr(const void *x, const void *y) {
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The override reason types, sorted and joined by ','; NULL if none. */
static const char *override_key(worker *w, const dp_record *rec) {
    const char *types[64];
    size_t n = 0;
    for (size_t i = 0; i < rec->n_overrides && n < 64; i++)
        if (rec->overrides[i].type) types[n++] = rec->overrides[i].type;
    if (!n) return NULL;
    qsort(types, n, sizeof *types, cmp_cstr);
    dp_buf_reset(&w->tmp);
    for (size_t i = 0; i < n; i++) {
        if (i) dp_buf_putc(&w->tmp, ',');
        dp_buf_puts(&w->tmp, types[i]);
    }
    return w->tmp.failed ? NULL : w->tmp.data;
}

static int on_record(void *ctx, const dp_report *rep, const dp_record *rec) {
    worker *w = ctx;
    engine *e = w->e;
    int64_t width = e->cfg->window;
    size_t n = dp_window_split(rep->begin, rep->end, rec->count, width, w->shares, w->cap_shares);
    if (n > w->cap_shares) {
        /* ingest caps a report's range at a century (max_range_seconds):
         * fewer than 900k hourly windows */
        dp_window_share *sh = realloc(w->shares, n * sizeof *sh);
        if (!sh) return -1;
        w->shares = sh;
        w->cap_shares = n;
        dp_window_split(rep->begin, rep->end, rec->count, width, w->shares, w->cap_shares);
    }

    const dp_dkim_auth *dk = rec->n_dkim_auth ? &rec->dkim_auth[0] : NULL;
    for (size_t i = 0; i < rec->n_dkim_auth; i++)
        if (relaxed_aligned(w, rec->dkim_auth[i].domain, rec->header_from)) {
            dk = &rec->dkim_auth[i];
            break;
        }
    const dp_spf_auth *sp = rec->n_spf_auth ? &rec->spf_auth[0] : NULL;
    const char *strs[K__STRINGS] = {
        [K_REPORTER] = rep->org_name,
        [K_POLICY_DOMAIN] = rep->policy.domain,
        [K_HEADER_FROM] = rec->header_from,
        [K_DISPOSITION] = rec->disposition,
        [K_DKIM] = rec->dkim,
        [K_SPF] = rec->spf,
        [K_OVERRIDE] = override_key(w, rec),
        [K_DKIM_DOMAIN] = dk ? dk->domain : NULL,
        [K_DKIM_SELECTOR] = dk ? dk->selector : NULL,
        [K_DKIM_RESULT] = dk ? dk->result : NULL,
        [K_SPF_DOMAIN] = sp ? sp->domain : NULL,
        [K_SPF_RESULT] = sp ? sp->result : NULL,
    };

    unsigned s = shard_of(e, rec);
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        /* a window where the record's share rounds to 0 gets no rollup,
         * unless the record has no messages at all: then its first window */
        if (w->shares[i].count == 0 && (rec->count != 0 || any)) continue;
        any = 1;
        batch *b = w->open[s];
        if (b && b->n == e->cfg->batch_items) {
            batch_push(w, s, b);
            w->sent[s] = 1;
            b = w->open[s] = NULL;
        }
        if (!b && !(b = w->open[s] = batch_get(w))) return -1;
        item *it = &b->items[b->n++];
        /* first/last seen: the report's range [begin, end], clipped to
         * the window's seconds [w0, w0 + width - 1] */
        int64_t w0 = w->shares[i].window_start;
        int64_t lo = rep->begin > w0 ? rep->begin : w0;
        int64_t hi = rep->end < w0 + width - 1 ? rep->end : w0 + width - 1;
        if (hi < lo) hi = lo;
        it->window_start = w0;
        it->count = w->shares[i].count;
        it->first_off = (uint32_t)(lo - w0);
        it->last_off = (uint32_t)(hi - w0);
        for (int k = 0; k < K_HEADER_FROM; k++) {
            if (b->cached[k] != strs[k] || !strs[k]) {
                b->cached[k] = strs[k];
                b->cached_off[k] = arena_str(b, strs[k]);
            }
            it->str[k] = b->cached_off[k];
        }
        for (int k = K_HEADER_FROM; k < K__STRINGS; k++) it->str[k] = arena_str(b, strs[k]);
        memcpy(it->ip, rec->ip, 16);
        it->ip_family = (uint8_t)rec->ip_family;
        if (b->arena.failed) return -1;
        w->touched[s] = 1;
    }
    return 0;
}

/* Ends the report in flight on every shard it touched: DEFER (it ended
 * well: keep its data pending) or ABORT (drop it). */
static void end_report(worker *w, int op) {
    engine *e = w->e;
    for (unsigned s = 0; s < e->cfg->shards; s++) {
        if (!w->touched[s]) continue;
        batch *b = w->open[s];
        if (op == OP_ABORT && !w->sent[s]) {
            /* The shard never saw this report: the batch goes back to the
             * free list unsent.  It must not stay open: it carries this
             * report's token and cached name offsets, and the next
             * report's items would be filed under the dead token. */
            if (b) {
                b->next = w->free_list;
                w->free_list = b;
                w->open[s] = NULL;
            }
        } else {
            if (!b && !(b = batch_get(w))) {
                dp_error err;
                dp_error_set(&err, DP_ERR_NOMEM, "out of memory ending a report");
                set_fatal(e, &err);
                continue;
            }
            if (op == OP_ABORT) b->n = 0;
            b->op = op;
            batch_push(w, s, b);
            w->open[s] = NULL;
        }
        w->touched[s] = 0;
        w->sent[s] = 0;
    }
}

/* Sends the verdicts waiting in this worker's inbox down its own rings, to
 * every shard: a shard that holds nothing for a token ignores it. */
static void send_decisions(worker *w) {
    engine *e = w->e;
    pthread_mutex_lock(&e->order_lock);
    size_t n = w->n_inbox;
    if (n > w->cap_outbox) {
        decision *o = realloc(w->outbox, n * sizeof *o);
        if (o) {
            w->outbox = o;
            w->cap_outbox = n;
        } else {
            n = w->cap_outbox; /* send what fits now, the rest next time */
        }
    }
    if (n) {
        memcpy(w->outbox, w->inbox, n * sizeof *w->outbox);
        memmove(w->inbox, w->inbox + n, (w->n_inbox - n) * sizeof *w->inbox);
        w->n_inbox -= n;
    }
    pthread_mutex_unlock(&e->order_lock);
    if (!n) return;
    for (unsigned s = 0; s < e->cfg->shards; s++) {
        batch *b = batch_get(w);
        if (!b) {
            dp_error err;
            dp_error_set(&err, DP_ERR_NOMEM, "out of memory sending verdicts");
            set_fatal(e, &err);
            return;
        }
        if (n > b->cap_decisions) {
            decision *d = realloc(b->decisions, n * sizeof *d);
            if (!d) {
                dp_error err;
                dp_error_set(&err, DP_ERR_NOMEM, "out of memory sending verdicts");
                set_fatal(e, &err);
                batch_free(b);
                return;
            }
            b->decisions = d;
            b->cap_decisions = n;
        }
        memcpy(b->decisions, w->outbox, n * sizeof *b->decisions);
        b->n_decisions = n;
        b->op = OP_DECIDE;
        batch_push(w, s, b);
    }
}

static void free_deferred(deferred *d) {
    free(d->report_line);
    free(d->label);
    free(d);
}

/* Decides the reports of every input that has been read to its end and has
 * no undecided input before it, in input order.  Called with order_lock. */
static void advance_watermark(engine *e) {
    while (e->watermark < e->n_inputs && e->in_st[e->watermark].finished) {
        input_state *is = &e->in_st[e->watermark];
        for (deferred *d = is->head, *next; d; d = next) {
            next = d->next;
            int v = e->cfg->dedup ? dp_dedup_decide(e->cfg->dedup, d->identity) : DP_DEDUP_NEW;
            int commit = v == DP_DEDUP_NEW;
            if (v == DP_DEDUP_ERROR) {
                dp_error err;
                dp_error_set(&err, DP_ERR_IO, "cannot decide duplicates (out of memory, or the state is unreadable)");
                set_fatal(e, &err);
            }
            if (commit) {
                e->reports++;
                e->records += d->records;
                e->messages += d->messages;
                e->xml_bytes += d->xml_bytes;
                if (e->cfg->reports && d->report_line) {
                    dp_error err;
                    if (dp_sink_write_report_text(e->cfg->reports, d->report_line, &err) != 0)
                        set_fatal(e, &err);
                }
            } else if (v == DP_DEDUP_DUPLICATE) {
                e->duplicates++;
                fprintf(stderr, "dmarcpipe: %s: duplicate report, not counted\n", d->label);
            }
            worker *w = &e->workers[d->worker];
            if (w->n_inbox == w->cap_inbox) {
                size_t cap = w->cap_inbox ? 2 * w->cap_inbox : 64;
                decision *ib = realloc(w->inbox, cap * sizeof *ib);
                if (!ib) {
                    dp_error err;
                    dp_error_set(&err, DP_ERR_NOMEM, "out of memory queueing verdicts");
                    set_fatal(e, &err);
                    free_deferred(d);
                    continue;
                }
                w->inbox = ib;
                w->cap_inbox = cap;
            }
            w->inbox[w->n_inbox++] = (decision){d->token, commit};
            e->n_deferred--;
            free_deferred(d);
        }
        is->head = is->tail = NULL;
        e->watermark++;
    }
    pthread_cond_broadcast(&e->order_cond);
}

static int on_report_begin(void *ctx, const dp_report *rep) {
    worker *w = ctx;
    engine *e = w->e;
    w->token++;
    /* A report counted by an earlier run is skipped now rather than parsed
     * for nothing.  (Copies within this run are parsed and decided in input
     * order: skipping them here would make what is rejected or quarantined
     * depend on thread timing.) */
    if (e->cfg->dedup) {
        uint8_t id[32];
        dp_dedup_identity(rep, id);
        int seen = dp_dedup_seen_before(e->cfg->dedup, id);
        if (seen < 0) {
            dp_error err;
            dp_error_set(&err, DP_ERR_IO, "state: cannot read the LMDB of counted reports");
            set_fatal(e, &err);
            return -1;
        }
        if (seen) {
            w->st.duplicates++;
            fprintf(stderr, "dmarcpipe: %s: duplicate report (org_name=%s report_id=%s domain=%s begin=%lld), not counted\n",
                    rep->part, rep->org_name ? rep->org_name : "-", rep->report_id ? rep->report_id : "-",
                    rep->policy.domain ? rep->policy.domain : "-", (long long)rep->begin);
            return DP_INGEST_SKIP;
        }
    }
    return 0;
}

static int on_report_done(void *ctx, const dp_report *rep) {
    worker *w = ctx;
    engine *e = w->e;
    end_report(w, OP_DEFER);
    deferred *d = calloc(1, sizeof *d);
    dp_buf line = DP_BUF_INIT, label = DP_BUF_INIT;
    if (e->cfg->reports) {
        dp_report_line rl = {rep, rep->sha256};
        dp_report_line_to_json(&line, &rl);
        dp_buf_putc(&line, '\n');
    }
    dp_buf_printf(&label, "%s (org_name=%s report_id=%s domain=%s begin=%lld)", rep->part,
                  rep->org_name ? rep->org_name : "-", rep->report_id ? rep->report_id : "-",
                  rep->policy.domain ? rep->policy.domain : "-", (long long)rep->begin);
    if (!d || line.failed || label.failed) {
        free(d);
        dp_buf_free(&line);
        dp_buf_free(&label);
        return -1; /* the report fails; nothing was committed */
    }
    d->worker = w->id;
    d->token = w->token;
    dp_dedup_identity(rep, d->identity);
    d->records = rep->records;
    d->messages = rep->messages;
    d->xml_bytes = rep->xml_bytes;
    d->report_line = line.data;
    d->label = label.data;

    pthread_mutex_lock(&e->order_lock);
    /* Bounded waiting room: a worker ahead of the earliest unfinished
     * input waits; the one holding that input never does. */
    while (e->n_deferred >= MAX_DEFERRED && w->input > e->watermark) {
        pthread_mutex_unlock(&e->order_lock);
        send_decisions(w);
        ring_unrung_bells(w);
        pthread_mutex_lock(&e->order_lock);
        if (e->n_deferred >= MAX_DEFERRED && w->input > e->watermark && w->n_inbox == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 1000000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&e->order_cond, &e->order_lock, &ts);
        }
    }
    input_state *is = &e->in_st[w->input];
    if (is->tail) is->tail->next = d;
    else is->head = d;
    is->tail = d;
    e->n_deferred++;
    pthread_mutex_unlock(&e->order_lock);
    return 0;
}

static void on_report_failed(void *ctx, const dp_report *rep, const dp_error *err) {
    (void)rep;
    worker *w = ctx;
    end_report(w, OP_ABORT);
    w->st.rejected++;
    dp_error_print(stderr, err);
    if (w->n_errs == w->cap_errs) {
        size_t cap = w->cap_errs ? 2 * w->cap_errs : 8;
        dp_error *ne = realloc(w->errs, cap * sizeof *ne);
        if (!ne) return;
        w->errs = ne;
        w->cap_errs = cap;
    }
    w->errs[w->n_errs++] = *err;
}

static const dp_ingest_handler HANDLER = {
    .report_begin = on_report_begin,
    .record = on_record,
    .report_done = on_report_done,
    .report_failed = on_report_failed,
};

static void *worker_main(void *arg) {
    worker *w = arg;
    engine *e = w->e;
    for (;;) {
        /* Inputs are taken in order, under the lock, so the ones a run takes
         * are always a prefix of the list, however many workers there are:
         * an epoch (cfg->admit) ends at a clean cut. */
        pthread_mutex_lock(&e->order_lock);
        size_t i = e->next_input;
        int take = !e->closed && i < e->n_inputs && (!e->cfg->admit || e->cfg->admit(e->cfg->admit_ctx, i));
        if (take) {
            e->next_input++;
        } else {
            e->closed = 1;
            pthread_cond_broadcast(&e->order_cond);
        }
        pthread_mutex_unlock(&e->order_lock);
        if (!take) break;
        const char *path = e->inputs[i];
        dp_ingest_result res;
        dp_error err;
        w->input = i;
        w->n_errs = 0;
        w->st.inputs++;
        if (dp_ingest_file(&e->cfg->limits, path, &HANDLER, w, &res, &err) != 0) {
            w->st.inputs_rejected++;
            if (w->n_errs == 0) on_report_failed(w, NULL, &err);
            if (e->cfg->quarantine_dir) {
                char qpath[4096];
                dp_error qerr;
                struct stat st;
                if (dp_quarantine_file(e->cfg->quarantine_dir, path, w->errs, w->n_errs, qpath, &qerr) == 0) {
                    fprintf(stderr, "dmarcpipe: %s: quarantined as %s\n", path, qpath);
                } else if (stat(path, &st) != 0 && errno == ENOENT) {
                    /* Gone before it could be kept (removed from a spool by
                     * someone else, or never there): its rejection is
                     * logged above, nothing is left to keep, and the other
                     * inputs must not stop for it. */
                    fprintf(stderr, "dmarcpipe: %s: gone, so not quarantined\n", path);
                } else {
                    set_fatal(e, &qerr);
                }
            }
        }
        pthread_mutex_lock(&e->order_lock);
        e->in_st[i].finished = 1;
        advance_watermark(e);
        pthread_mutex_unlock(&e->order_lock);
        send_decisions(w);
        ring_unrung_bells(w);
    }
    /* Verdicts on this worker's reports may still come from inputs other
     * workers are reading: only this worker can send them. */
    for (;;) {
        ring_unrung_bells(w);
        pthread_mutex_lock(&e->order_lock);
        int all_decided = e->watermark == e->next_input; /* final: closed */
        int empty = w->n_inbox == 0;
        if (!all_decided && empty) pthread_cond_wait(&e->order_cond, &e->order_lock);
        pthread_mutex_unlock(&e->order_lock);
        send_decisions(w);
        if (all_decided && empty) break;
    }
    atomic_fetch_add_explicit(&e->workers_done, 1, memory_order_release);
    ring_all_bells(e);
    return NULL;
}

/* ---- shards: batches into tables ------------------------------------------ */

static uint32_t shard_intern(shard *sh, int k, const char *s) {
    if (!s) return 0;
    uint32_t last = sh->last_id[k];
    if (last && strcmp(dp_intern_str(&sh->strings, last), s) == 0) return last;
    uint32_t id = dp_intern_put(&sh->strings, s, strlen(s));
    if (id != UINT32_MAX) sh->last_id[k] = id;
    return id;
}

#define BLOCK_BYTES (256u * 1024u)

/* Writes what was formatted into `out` (one buffer per sink, `lines`
 * rollups each) and empties it; 0 or -1 (recorded). */
static int write_blocks(engine *e, dp_buf *out, uint64_t lines) {
    const dp_engine_config *cfg = e->cfg;
    int rc = 0;
    for (size_t k = 0; k < cfg->n_sinks; k++) {
        if (!cfg->sinks[k]->ops->format_rollup) continue;
        dp_error err;
        if (out[k].failed) {
            dp_error_set(&err, DP_ERR_NOMEM, "out of memory formatting rollups");
            set_fatal(e, &err);
            rc = -1;
        } else if (out[k].len && dp_sink_write_block(cfg->sinks[k], out[k].data, out[k].len, lines, &err) != 0) {
            set_fatal(e, &err);
            rc = -1;
        }
        dp_buf_reset(&out[k]);
        out[k].failed = 0;
    }
    return rc;
}

/* Hands entries [begin, end) of a shard's table to the sinks, formatting
 * into `out` (one buffer per sink, owned by the calling thread).  Reads the
 * table and the interner only, so several threads may flush disjoint
 * ranges of one shard at once (the final flush does). */
static int flush_entries(engine *e, const shard *sh, size_t begin, size_t end, dp_buf *out) {
    const dp_engine_config *cfg = e->cfg;
    const dp_intern *in = &sh->strings;
    int rc = 0;
    uint64_t pending_lines = 0; /* formatted, not yet written */
    for (size_t i = begin; i < end; i++) {
        const dp_rollup_entry *en = &sh->main.entries[i];
        char ip[INET6_ADDRSTRLEN];
        dp_format_ip(en->key.ip, en->key.ip_family, ip);
        dp_rollup r = {
            .window_start = en->key.window_start,
            .window_end = en->key.window_start + cfg->window,
            .reporter = dp_intern_str(in, en->key.str[K_REPORTER]),
            .policy_domain = dp_intern_str(in, en->key.str[K_POLICY_DOMAIN]),
            .header_from = dp_intern_str(in, en->key.str[K_HEADER_FROM]),
            .source_ip = ip,
            .disposition = dp_intern_str(in, en->key.str[K_DISPOSITION]),
            .dkim = dp_intern_str(in, en->key.str[K_DKIM]),
            .spf = dp_intern_str(in, en->key.str[K_SPF]),
            .override = dp_intern_str(in, en->key.str[K_OVERRIDE]),
            .dkim_domain = dp_intern_str(in, en->key.str[K_DKIM_DOMAIN]),
            .dkim_selector = dp_intern_str(in, en->key.str[K_DKIM_SELECTOR]),
            .dkim_result = dp_intern_str(in, en->key.str[K_DKIM_RESULT]),
            .spf_domain = dp_intern_str(in, en->key.str[K_SPF_DOMAIN]),
            .spf_result = dp_intern_str(in, en->key.str[K_SPF_RESULT]),
            .messages = en->messages,
            .records = en->records,
            .first_seen = en->key.window_start + en->first_off,
            .last_seen = en->key.window_start + en->last_off,
        };
        pending_lines++;
        int full = 0;
        for (size_t k = 0; k < cfg->n_sinks; k++) {
            dp_sink *snk = cfg->sinks[k];
            if (snk->ops->format_rollup) {
                /* format here, in parallel with other threads; only the
                 * block write takes the sink's lock */
                snk->ops->format_rollup(snk, &out[k], &r);
                full |= out[k].len >= BLOCK_BYTES;
            } else {
                dp_error err;
                if (dp_sink_write_rollup(snk, &r, &err) != 0) {
                    set_fatal(e, &err);
                    rc = -1;
                }
            }
        }
        if (full || i + 1 == end) {
            if (write_blocks(e, out, pending_lines) != 0) rc = -1;
            pending_lines = 0;
        }
    }
    return rc;
}

static void shard_note_peak(shard *sh) {
    if (sh->main.n > sh->peak_keys) sh->peak_keys = sh->main.n;
    size_t bytes = dp_table_bytes(&sh->main) + sh->strings.bytes;
    if (bytes > sh->peak_bytes) sh->peak_bytes = bytes;
}

/* A flush while the run goes on (--flush-interval, --max-keys): the shard
 * thread writes its own table. */
static int shard_flush(shard *sh) {
    engine *e = sh->e;
    shard_note_peak(sh);
    int rc = flush_entries(e, sh, 0, sh->main.n, sh->out);
    sh->rollups += sh->main.n;
    if (sh->main.n) sh->flushes++;
    dp_table_clear(&sh->main, e->cfg->max_keys ? e->cfg->max_keys : SIZE_MAX);
    sh->last_flush = dp_clock_seconds();
    return rc;
}

/* ---- the final flush: every thread of the run formats ------------------------
 *
 * At the end of a batch run the workers are idle and each shard would
 * format its whole table alone, after the last byte was parsed: with one
 * shard that is a serial tail of the run.  So the tables, no longer
 * written, are cut into chunks and formatted by as many threads as the run
 * had (workers + shards), each into buffers of its own.  Line order in the
 * sinks is not part of the contract (a warehouse sums by key). */

#define FINAL_CHUNK 4096

typedef struct final_flush {
    engine *e;
    _Atomic size_t next_chunk;
    size_t n_chunks;
} final_flush;

static void *final_flush_main(void *arg) {
    final_flush *ff = arg;
    engine *e = ff->e;
    size_t n_out = e->cfg->n_sinks ? e->cfg->n_sinks : 1;
    dp_buf *out = calloc(n_out, sizeof *out);
    if (!out) {
        dp_error err;
        dp_error_set(&err, DP_ERR_NOMEM, "out of memory formatting rollups");
        set_fatal(e, &err);
        return NULL;
    }
    for (;;) {
        size_t c = atomic_fetch_add_explicit(&ff->next_chunk, 1, memory_order_relaxed);
        if (c >= ff->n_chunks) break;
        /* chunk c: walk the shards' chunk counts to find its range */
        for (unsigned s = 0; s < e->cfg->shards; s++) {
            const shard *sh = &e->shards[s];
            size_t chunks = (sh->main.n + FINAL_CHUNK - 1) / FINAL_CHUNK;
            if (c < chunks) {
                size_t begin = c * FINAL_CHUNK;
                size_t end = begin + FINAL_CHUNK < sh->main.n ? begin + FINAL_CHUNK : sh->main.n;
                flush_entries(e, sh, begin, end, out);
                break;
            }
            c -= chunks;
        }
    }
    for (size_t k = 0; k < n_out; k++) dp_buf_free(&out[k]);
    free(out);
    return NULL;
}

/* After every thread of the run has been joined. */
static void final_flush_run(engine *e) {
    final_flush ff = {.e = e};
    for (unsigned s = 0; s < e->cfg->shards; s++) {
        shard *sh = &e->shards[s];
        shard_note_peak(sh);
        ff.n_chunks += (sh->main.n + FINAL_CHUNK - 1) / FINAL_CHUNK;
        sh->rollups += sh->main.n;
        if (sh->main.n) sh->flushes++;
    }
    size_t n_threads = (size_t)e->cfg->workers + e->cfg->shards;
    /* A sink with threads of its own (Kafka: librdkafka compresses and
     * sends in one thread per broker, which is the bottleneck) needs a core
     * left to it: more formatting threads than cores - 1 only starve it. */
    for (size_t k = 0; k < e->cfg->n_sinks; k++)
        if (e->cfg->sinks[k]->ops->concurrent) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            size_t cap = cores > 2 ? (size_t)cores - 1 : 1;
            if (n_threads > cap) n_threads = cap;
        }
    if (n_threads > ff.n_chunks) n_threads = ff.n_chunks;
    if (n_threads > 64) n_threads = 64;
    pthread_t th[64];
    size_t started = 0;
    /* this thread is one of them; a thread that cannot start is not needed */
    for (; started + 1 < n_threads; started++)
        if (pthread_create(&th[started], NULL, final_flush_main, &ff) != 0) break;
    final_flush_main(&ff);
    for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    for (unsigned s = 0; s < e->cfg->shards; s++)
        dp_table_clear(&e->shards[s].main, e->cfg->max_keys ? e->cfg->max_keys : SIZE_MAX);
}

/* ---- a shard's undecided reports --------------------------------------------- */

static pending *pq_at(pending_q *q, size_t i) { return &q->v[(q->head + i) % q->cap]; }

static pending *pq_push(pending_q *q, uint64_t token) {
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 8;
        pending *v = malloc(cap * sizeof *v);
        if (!v) return NULL;
        for (size_t i = 0; i < q->n; i++) v[i] = *pq_at(q, i);
        free(q->v);
        q->v = v;
        q->cap = cap;
        q->head = 0;
    }
    pending *p = pq_at(q, q->n++);
    p->token = token;
    p->open = 1;
    dp_table_init(&p->table);
    return p;
}

static void pq_drop_back(pending_q *q) {
    dp_table_free(&pq_at(q, q->n - 1)->table);
    q->n--;
}

static void pq_drop_front(pending_q *q) {
    dp_table_free(&pq_at(q, 0)->table);
    q->head = (q->head + 1) % q->cap;
    q->n--;
}

static void pq_free(pending_q *q) {
    while (q->n) pq_drop_front(q);
    free(q->v);
}

static void shard_oom(shard *sh) {
    dp_error err;
    dp_error_set(&err, DP_ERR_NOMEM, "shard %u: out of memory", sh->id);
    set_fatal(sh->e, &err);
}

static void shard_take(shard *sh, batch *b) {
    engine *e = sh->e;
    pending_q *q = &sh->pending[b->worker];
    if (b->op == OP_DECIDE) {
        /* verdicts come oldest first, like the reports in the queue; a
         * token this shard holds nothing for was never sent here */
        for (size_t i = 0; i < b->n_decisions; i++) {
            const decision *d = &b->decisions[i];
            while (q->n && pq_at(q, 0)->token < d->token) pq_drop_front(q); /* cannot happen */
            if (!q->n || pq_at(q, 0)->token != d->token) continue;
            if (d->commit) {
                dp_rollup_table *t = &pq_at(q, 0)->table;
                if (sh->main.n == 0) {
                    /* an empty main table takes the report's table whole:
                     * a huge report is not copied (nor held twice) */
                    dp_rollup_table old = sh->main;
                    sh->main = *t;
                    *t = old;
                } else {
                    for (size_t k = 0; k < t->n; k++)
                        if (dp_table_add(&sh->main, &t->entries[k]) != 0) {
                            shard_oom(sh);
                            break;
                        }
                }
            }
            pq_drop_front(q);
        }
        if (e->cfg->max_keys && sh->main.n > e->cfg->max_keys) shard_flush(sh);
    } else {
        pending *p = q->n ? pq_at(q, q->n - 1) : NULL;
        if (!p || p->token != b->token) p = pq_push(q, b->token);
        if (!p) {
            shard_oom(sh);
        } else {
            for (size_t i = 0; i < b->n; i++) {
                const item *it = &b->items[i];
                dp_rollup_key key;
                memset(&key, 0, sizeof key);
                key.window_start = it->window_start;
                for (int k = 0; k < K__STRINGS; k++)
                    key.str[k] = shard_intern(sh, k, it->str[k] ? b->arena.data + it->str[k] : NULL);
                memcpy(key.ip, it->ip, 16);
                key.ip_family = it->ip_family;
                dp_rollup_entry *en = dp_table_upsert(&p->table, &key);
                if (!en) {
                    shard_oom(sh);
                    break;
                }
                en->messages += it->count;
                en->records++;
                if (it->first_off < en->first_off) en->first_off = it->first_off;
                if (it->last_off > en->last_off) en->last_off = it->last_off;
            }
            if (b->op == OP_DEFER) p->open = 0;
            else if (b->op == OP_ABORT) pq_drop_back(q);
        }
    }
    /* hand the batch back for reuse; free it if the way back is full */
    if (!dp_ring_push(&e->back[b->worker * e->cfg->shards + sh->id], b)) batch_free(b);
}

/* A sleeping shard wakes at least this often, whatever happens: a safety
 * net, never the way work is noticed. */
#define IDLE_MAX_SLEEP_S 0.2

/* The shard's wake-up test, run with its bell armed: a batch waits in a
 * ring, or every worker is done. */
static int shard_has_work(void *arg) {
    shard *sh = arg;
    engine *e = sh->e;
    unsigned nw = e->cfg->workers;
    for (unsigned w = 0; w < nw; w++)
        if (dp_ring_ready(&e->rings[w * e->cfg->shards + sh->id])) return 1;
    return atomic_load_explicit(&e->workers_done, memory_order_acquire) == nw;
}

static void *shard_main(void *arg) {
    shard *sh = arg;
    engine *e = sh->e;
    unsigned nw = e->cfg->workers;
    sh->last_flush = dp_clock_seconds();
    unsigned idle = 0;
    for (;;) {
        /* read the flag before draining: if all workers were done before
         * this pass, an empty pass means nothing more can come */
        int done = atomic_load_explicit(&e->workers_done, memory_order_acquire) == nw;
        int got = 0;
        for (unsigned w = 0; w < nw; w++) {
            void *p;
            dp_ring *r = &e->rings[w * e->cfg->shards + sh->id];
            for (int k = 0; k < 64 && dp_ring_pop(r, &p); k++) {
                shard_take(sh, p);
                got = 1;
            }
        }
        if (e->cfg->flush_interval > 0 && dp_clock_seconds() - sh->last_flush >= e->cfg->flush_interval) shard_flush(sh);
        if (got) {
            idle = 0;
            continue;
        }
        if (done) break;
        /* Idle: one yield (cheap, and enough when a worker is mid-batch),
         * then sleep on the bell until a worker pushes, the workers are
         * done, or the next timed flush is due. */
        if (++idle < 2) {
            sched_yield();
            continue;
        }
        double now = dp_clock_seconds(), deadline = now + IDLE_MAX_SLEEP_S;
        if (e->cfg->flush_interval > 0 && sh->last_flush + e->cfg->flush_interval < deadline)
            deadline = sh->last_flush + e->cfg->flush_interval;
        if (deadline > now) dp_bell_wait(&sh->bell, shard_has_work, sh, deadline);
    }
    /* the table is flushed by final_flush_run(), by every thread at once */
    return NULL;
}

/* ---- the run ---------------------------------------------------------------- */

int dp_engine_run(const dp_engine_config *cfg, const char *const *inputs, size_t n_inputs,
                  dp_engine_stats *out, dp_error *err) {
    double t0 = dp_clock_seconds();
    memset(out, 0, sizeof *out);
    if (cfg->workers < 1 || cfg->shards < 1 || cfg->window < 1 || cfg->batch_items < 1)
        return dp_error_set(err, DP_ERR_USAGE, "workers, shards, window and batch size must be positive");
    engine e;
    memset(&e, 0, sizeof e);
    e.cfg = cfg;
    e.inputs = inputs;
    e.n_inputs = n_inputs;
    e.psl = psl_builtin();
    pthread_mutex_init(&e.err_lock, NULL);
    pthread_mutex_init(&e.order_lock, NULL);
    pthread_cond_init(&e.order_cond, NULL);
    e.in_st = calloc(n_inputs ? n_inputs : 1, sizeof *e.in_st);
    unsigned nw = cfg->workers, ns = cfg->shards;
    e.rings = calloc((size_t)nw * ns, sizeof *e.rings);
    e.back = calloc((size_t)nw * ns, sizeof *e.back);
    e.workers = calloc(nw, sizeof *e.workers);
    e.shards = calloc(ns, sizeof *e.shards);
    int rc = 0;
    if (!e.rings || !e.back || !e.workers || !e.shards || !e.in_st)
        rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < (size_t)nw * ns; i++)
        if (dp_ring_init(&e.rings[i], cfg->ring_slots) != 0 || dp_ring_init(&e.back[i], cfg->ring_slots) != 0)
            rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    for (unsigned w = 0; rc == 0 && w < nw; w++) {
        worker *wk = &e.workers[w];
        wk->e = &e;
        wk->id = w;
        wk->open = calloc(ns, sizeof *wk->open);
        wk->sent = calloc(ns, 1);
        wk->touched = calloc(ns, 1);
        wk->unrung = calloc(ns, sizeof *wk->unrung);
        /* a quarter of the ring: the shard wakes to a run of batches and
         * the worker still has room to go on */
        wk->ring_every = cfg->ring_slots / 4 > 1 ? (unsigned)(cfg->ring_slots / 4) : 1;
        if (!wk->open || !wk->sent || !wk->touched || !wk->unrung) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    for (unsigned s = 0; rc == 0 && s < ns; s++) {
        shard *sh = &e.shards[s];
        sh->e = &e;
        sh->id = s;
        dp_intern_init(&sh->strings);
        dp_table_init(&sh->main);
        sh->pending = calloc(nw, sizeof *sh->pending);
        sh->out = calloc(cfg->n_sinks ? cfg->n_sinks : 1, sizeof *sh->out);
        sh->bell_ok = dp_bell_init(&sh->bell) == 0;
        if (!sh->pending || !sh->out || !sh->bell_ok) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    unsigned started_s = 0, started_w = 0;
    for (; rc == 0 && started_s < ns; started_s++)
        if (pthread_create(&e.shards[started_s].th, NULL, shard_main, &e.shards[started_s]) != 0)
            rc = dp_error_set(err, DP_ERR_NOMEM, "cannot start shard threads");
    for (; rc == 0 && started_w < nw; started_w++)
        if (pthread_create(&e.workers[started_w].th, NULL, worker_main, &e.workers[started_w]) != 0)
            rc = dp_error_set(err, DP_ERR_NOMEM, "cannot start worker threads");
    /* Threads that did not start count as done, so the shards can finish. */
    if (rc != 0) {
        atomic_fetch_add(&e.workers_done, nw - started_w);
        if (started_s) ring_all_bells(&e); /* every bell was initialised */
    }
    for (unsigned w = 0; w < started_w; w++) pthread_join(e.workers[w].th, NULL);
    for (unsigned s = 0; s < started_s; s++) pthread_join(e.shards[s].th, NULL);
    if (rc == 0 && started_s == ns) {
        double tf = dp_clock_seconds();
        final_flush_run(&e);
        out->final_flush_seconds = dp_clock_seconds() - tf;
    }

    for (unsigned w = 0; e.workers && w < nw; w++) {
        worker *wk = &e.workers[w];
        out->inputs += wk->st.inputs;
        out->inputs_rejected += wk->st.inputs_rejected;
        out->rejected += wk->st.rejected;
        out->duplicates += wk->st.duplicates;
        while (wk->free_list) {
            batch *b = wk->free_list;
            wk->free_list = b->next;
            batch_free(b);
        }
        for (unsigned s = 0; wk->open && s < ns; s++) batch_free(wk->open[s]);
        free(wk->open);
        free(wk->sent);
        free(wk->touched);
        free(wk->unrung);
        free(wk->shares);
        free(wk->errs);
        free(wk->inbox);
        free(wk->outbox);
        dp_buf_free(&wk->tmp);
    }
    for (unsigned s = 0; e.shards && s < ns; s++) {
        shard *sh = &e.shards[s];
        out->rollups += sh->rollups;
        out->flushes += sh->flushes;
        out->peak_keys += sh->peak_keys;
        out->peak_table_bytes += sh->peak_bytes;
        dp_intern_free(&sh->strings);
        dp_table_free(&sh->main);
        for (unsigned w = 0; sh->pending && w < nw; w++) pq_free(&sh->pending[w]);
        free(sh->pending);
        for (size_t k = 0; sh->out && k < cfg->n_sinks; k++) dp_buf_free(&sh->out[k]);
        free(sh->out);
        if (sh->bell_ok) dp_bell_free(&sh->bell);
    }
    for (size_t i = 0; e.rings && e.back && i < (size_t)nw * ns; i++) {
        void *p;
        while (dp_ring_pop(&e.back[i], &p)) batch_free(p);
        while (e.rings[i].slots && dp_ring_pop(&e.rings[i], &p)) batch_free(p);
        dp_ring_free(&e.rings[i]);
        dp_ring_free(&e.back[i]);
    }
    out->reports = e.reports;
    out->duplicates += e.duplicates;
    out->records = e.records;
    out->messages = e.messages;
    out->xml_bytes = e.xml_bytes;
    for (size_t i = 0; e.in_st && i < n_inputs; i++)
        for (deferred *d = e.in_st[i].head, *next; d; d = next) {
            next = d->next; /* only after a failure to start threads */
            free_deferred(d);
        }
    free(e.in_st);
    free(e.rings);
    free(e.back);
    free(e.workers);
    free(e.shards);
    pthread_mutex_destroy(&e.order_lock);
    pthread_cond_destroy(&e.order_cond);
    if (rc == 0 && e.failed) {
        *err = e.fatal;
        rc = -1;
    }
    pthread_mutex_destroy(&e.err_lock);
    out->seconds = dp_clock_seconds() - t0;
    return rc;
}
