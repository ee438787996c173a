/* conductor — the epoch protocol, written once for every sink.
 *
 *   sources ─► engine ─► sinks commit ─► state persisted ─► sources ack
 *
 * Why each step waits for the one before it is told in run.h.  Here:
 *   - an epoch is one dp_engine_run() over a prefix of the inputs still to
 *     do; its admit() hook ends it after --epoch-inputs inputs or
 *     --flush-interval seconds (with a transactional sink), or on a stop
 *     request, at a clean cut: inputs are taken in list order;
 *   - the commit goes to every sink of the run: those without epochs
 *     flush first, the one with epochs (Kafka) commits last, with the
 *     epoch's ledger records in its transaction;
 *   - an epoch the sink aborted (the broker away too long, a fatal
 *     producer error) forgets what it decided (dp_dedup_rollback) and is
 *     run again over the same inputs, after a backoff: they are still in
 *     their source, so nothing needs to be kept in memory to retry.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_clock.h"
#include "run.h"
#include "run_metrics.h"

/* ---- the sinks of a run -------------------------------------------------------- */

void dp_conductor_config_default(dp_run_config *c) {
    memset(c, 0, sizeof *c);
    dp_engine_config_default(&c->engine);
    dp_ingest_limits_default(&c->limits);
    c->instance = "default";
}

dp_sink *dp_conductor_epoch_sink(const dp_run_config *c) {
    for (size_t k = 0; k < c->engine.n_sinks; k++)
        if (dp_sink_has_epochs(c->engine.sinks[k])) return c->engine.sinks[k];
    if (c->engine.reports && dp_sink_has_epochs(c->engine.reports)) return c->engine.reports;
    return NULL;
}

/* Sink k of the run (the reports feed is the last, k == n_sinks), or NULL
 * when it is absent or one already met. */
static dp_sink *nth_distinct_sink(const dp_engine_config *e, size_t k) {
    dp_sink *s = k < e->n_sinks ? e->sinks[k] : e->reports;
    for (size_t j = 0; s && j < k && j < e->n_sinks; j++)
        if (e->sinks[j] == s) return NULL;
    return s;
}

/* Commits the epoch in every sink of the run: those without epochs flush
 * first, the one with epochs commits last and gives *ledger_next.  (A run
 * with both is exactly once in the one with epochs only: a flush cannot be
 * taken back if the transaction then aborts.)  0, DP_SINK_RETRY,
 * DP_SINK_STOPPED or -1 (err). */
static int commit_all(const dp_run_config *c, uint64_t *ledger_next, dp_error *err) {
    *ledger_next = 0;
    for (size_t k = 0; k <= c->engine.n_sinks; k++) {
        dp_sink *s = nth_distinct_sink(&c->engine, k);
        if (!s || dp_sink_has_epochs(s)) continue;
        uint64_t none;
        int rc = dp_sink_commit(s, &none, err);
        if (rc != 0) return rc;
    }
    dp_sink *es = dp_conductor_epoch_sink(c);
    return es ? dp_sink_commit(es, ledger_next, err) : 0;
}

/* ---- which inputs are still to do ------------------------------------------------ */

/* Inputs split by the state: those an earlier run counted (done) and the
 * rest (todo), each in list order.  The inputs are the caller's. */
typedef struct split {
    dp_input **todo, **done;
    size_t n_todo, n_done;
} split;

static void split_free(split *s) {
    free(s->todo);
    free(s->done);
    memset(s, 0, sizeof *s);
}

static int split_make(const dp_run_config *c, dp_input *const *inputs, size_t n, split *out, dp_error *err) {
    memset(out, 0, sizeof *out);
    out->todo = calloc(n ? n : 1, sizeof *out->todo);
    out->done = calloc(n ? n : 1, sizeof *out->done);
    if (!out->todo || !out->done) {
        split_free(out);
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        int done = c->track_inputs && inputs[i]->key[0] ? dp_dedup_input_done(c->engine.dedup, inputs[i]->key) : 0;
        if (done < 0) {
            split_free(out);
            return dp_error_set(err, DP_ERR_IO, "state: cannot read the acknowledged inputs");
        }
        if (done) out->done[out->n_done++] = inputs[i];
        else out->todo[out->n_todo++] = inputs[i];
    }
    return 0;
}

/* Acknowledges the inputs, but those held (NULL: none), which stay. */
static void ack(dp_input *const *inputs, size_t n, const uint8_t *held, dp_run_stats *st) {
    for (size_t i = 0; i < n; i++) {
        if (held && held[i]) {
            dp_source_hold(inputs[i]);
            st->held++;
            continue;
        }
        int rc = dp_source_ack(inputs[i]);
        if (rc == 0) st->acked++;
        else if (rc < 0) st->ack_failures++;
    }
}

/* ---- reading an input: its source, then ingest ----------------------------------- */

/* The engine's view of an epoch's inputs (dp_engine_inputs.ctx). */
typedef struct reader {
    dp_input *const *inputs;
    const dp_ingest_limits *limits;
    uint8_t *held; /* per input: its rejection could not be kept */
    /* reports routed to the worker that owns them: (input, slot) pairs to
     * forward before the commit, once each */
    pthread_mutex_t *lock;
    struct forward { size_t input; int32_t slot; } *fwd;
    size_t n_fwd, cap_fwd;
    int fwd_failed;
    dp_log *log;
    dp_run_progress *progress;   /* NULL: no progress line */
    dp_run_metrics_tally *tally; /* the epoch's figures for the registry */
    uint8_t *open_failed;        /* per input: its source could not open it */
} reader;

/* Called by the engine's workers, several at once. */
static int route_report(void *ctx, size_t i, const uint8_t id[32]) {
    reader *r = ctx;
    int32_t slot = -1;
    int v = dp_source_route(r->inputs[i], id, &slot);
    if (v != DP_ROUTE_FORWARD) return v != DP_ROUTE_HERE;
    pthread_mutex_lock(r->lock);
    size_t k = 0;
    while (k < r->n_fwd && !(r->fwd[k].input == i && r->fwd[k].slot == slot)) k++;
    if (k == r->n_fwd) {
        struct forward *f = dp_buf_grow_array(r->fwd, &r->cap_fwd, r->n_fwd + 1, sizeof *f);
        if (f) {
            r->fwd = f;
            r->fwd[r->n_fwd++] = (struct forward){i, slot};
        } else {
            r->fwd_failed = 1;
        }
    }
    pthread_mutex_unlock(r->lock);
    return 1;
}

static int forward_to_sink(void *ctx, const char *topic, int32_t partition, const char *header,
                           const char *header_value, const void *value, size_t len, dp_error *err) {
    return dp_sink_forward(ctx, topic, partition, header, header_value, value, len, err);
}

/* The epoch's routed reports go to their owners, inside its transaction. */
static int forward_routed(reader *r, dp_sink *es, size_t taken, dp_error *err) {
    if (r->fwd_failed) return dp_error_set(err, DP_ERR_NOMEM, "out of memory noting reports to forward");
    for (size_t k = 0; k < r->n_fwd; k++) {
        if (r->fwd[k].input >= taken) continue;
        const dp_input *in = r->inputs[r->fwd[k].input];
        if (dp_source_forward(in, r->fwd[k].slot, forward_to_sink, es, err) != 0) return -1;
        char a[DP_ERROR_TEXT_MAX];
        dp_log_info(r->log, "run", DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_I64("partition", r->fwd[k].slot)),
                    "dmarcpipe: %s: holds a report partition %d owns: forwarded there", dp_error_text(in->name, a),
                    (int)r->fwd[k].slot);
    }
    return 0;
}

/* Called by the engine's workers, several at once. */
static int read_input(void *ctx, size_t i, const dp_report_handler *h, void *hctx, dp_error *err) {
    const reader *r = ctx;
    const dp_input *in = r->inputs[i];
    int fd = dp_source_open_input(in, err);
    dp_run_progress *p = r->progress;
    if (fd < 0) {
        r->open_failed[i] = 1;
        if (h->report_failed) h->report_failed(hctx, NULL, err);
        if (p) atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
        if (p) atomic_fetch_add_explicit(&p->done, 1, memory_order_relaxed);
        return -1;
    }
    dp_ingest_result res;
    memset(&res, 0, sizeof res);
    int rc = dp_ingest_fd(r->limits, in->name, fd, h, hctx, &res, err);
    struct stat sb;
    uint64_t bytes = fstat(fd, &sb) == 0 && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
    close(fd);
    atomic_fetch_add_explicit(&r->tally->bytes, bytes, memory_order_relaxed);
    if (p) {
        atomic_fetch_add_explicit(&p->done_bytes, bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->records, res.records, memory_order_relaxed);
        if (rc != 0) atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_relaxed);
    }
    return rc;
}

/* A rejection that cannot be kept (the quarantine's disk is full, the
 * input cannot be read again) does not stop the run: the input stays
 * where it is, unacknowledged and unrecorded, and a later run takes it
 * again; what it held that was counted is then a duplicate.  Each worker
 * writes only its own input's flag. */
static int reject_input(void *ctx, size_t i, const dp_error *errors, size_t n_errors, dp_error *err) {
    const reader *r = ctx;
    /* out of memory, a read that failed: the input is not bad, and is
     * neither quarantined nor acknowledged, but read again later */
    for (size_t k = 0; k < n_errors; k++)
        if (dp_error_is_environmental(&errors[k])) {
            char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
            dp_log_warn(r->log, "run",
                        DP_LOG_FIELDS(DP_LOG_STR("input", r->inputs[i]->name), DP_LOG_STR("error", errors[k].msg)),
                        "dmarcpipe run: %s: not read through (%s): left where it is, for a later run",
                        dp_error_text(r->inputs[i]->name, a), dp_error_text(errors[k].msg, b));
            r->held[i] = 1;
            return 0;
        }
    dp_run_metrics_reject(r->tally, r->open_failed[i] ? DP_RUN_METRICS_AT_SOURCE : DP_RUN_METRICS_AT_INGEST, errors,
                          n_errors);
    if (dp_source_reject(r->inputs[i], errors, n_errors, err) == 0) return 0;
    char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
    dp_log_warn(r->log, "run", DP_LOG_FIELDS(DP_LOG_STR("input", r->inputs[i]->name), DP_LOG_STR("error", err->msg)),
                "dmarcpipe run: %s: its rejection cannot be kept (%s): left where it is, for a later run",
                dp_error_text(r->inputs[i]->name, a), dp_error_text(err->msg, b));
    r->held[i] = 1;
    return 0;
}

/* ---- an epoch's bounds --------------------------------------------------------------- */

typedef struct admit_ctx {
    size_t max_inputs; /* this epoch's cap (exact on a retry) */
    double started, max_seconds;
    int retry;         /* a retry takes exactly max_inputs */
    const volatile sig_atomic_t *stop;
    dp_metrics *metrics; /* each input taken is a heartbeat */
} admit_ctx;

static int admit(void *ctx, size_t taken) {
    const admit_ctx *a = ctx;
    dp_metrics_heartbeat(a->metrics);
    if (a->stop && *a->stop) dp_metrics_set_ready(a->metrics, 0); /* /readyz: stopping */
    if (taken >= a->max_inputs) return 0;
    if (a->retry) return 1; /* the same inputs as the attempt that failed */
    if (taken > 0 && ((a->stop && *a->stop) || (a->max_seconds > 0 && dp_clock_seconds() - a->started >= a->max_seconds)))
        return 0;
    return 1;
}

static int emit_to_sink(void *ctx, const char *rec, size_t len, dp_error *err) {
    return dp_sink_ledger_write(ctx, rec, len, err);
}

static void add_id(void *ctx, const uint8_t id[32]) { dp_ledger_add_report(ctx, id); }

/* Sleeps `ms`, waking early on a stop request: 1 if stopped. */
/* Reads what the shared ledger gained since the state last read it. */
static int catch_up(const dp_run_config *c, dp_sink *es, dp_error *err) {
    uint64_t epochs = 0;
    return dp_ledger_recover(es, c->engine.dedup, c->instance, c->engine.log, &epochs, err);
}

/* Sources that commit their read position with the epoch (a Kafka inbox)
 * hand it to the transactional sink, each with its own inputs of the
 * epoch.  0, DP_SOURCE_LOST, or -1 (err). */
static int hand_over_positions(dp_sink *es, dp_input *const *inputs, size_t n, int retry, dp_error *err) {
    dp_source *done[16];
    size_t n_done = 0;
    dp_input **mine = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        dp_source *s = inputs[i]->source;
        if (!dp_source_has_position(s)) continue;
        size_t d = 0;
        while (d < n_done && done[d] != s) d++;
        if (d < n_done) continue;
        if (n_done == sizeof done / sizeof *done)
            return dp_error_set(err, DP_ERR_USAGE, "more than %zu sources commit their position", n_done);
        done[n_done++] = s;
        if (!mine && !(mine = malloc(n * sizeof *mine))) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (size_t j = i; j < n; j++)
            if (inputs[j]->source == s) mine[k++] = inputs[j];
        dp_kafka_offsets *o = NULL;
        rc = dp_source_epoch_position(s, mine, k, retry, &o, err);
        if (rc == 0 && o) rc = dp_sink_epoch_offsets(es, o, err);
    }
    free(mine);
    return rc;
}

static int backoff(long ms, const volatile sig_atomic_t *stop) {
    for (long w = 0; w < ms; w += 100) {
        if (stop && *stop) return 1;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* ---- the protocol ----------------------------------------------------------------------- */

int dp_conductor_resume(const dp_run_config *c, dp_error *err) {
    for (size_t k = 0; k <= c->engine.n_sinks; k++) {
        dp_sink *s = nth_distinct_sink(&c->engine, k);
        const char *name = s ? dp_sink_position_name(s) : NULL;
        if (!name) continue;
        uint64_t pos = 0;
        int known = c->engine.dedup ? dp_dedup_sink_position(c->engine.dedup, name, &pos) : 0;
        if (known < 0) return dp_error_set(err, DP_ERR_IO, "state: cannot read the position of %s", name);
        if (dp_sink_resume(s, known, pos, err) != 0) return -1;
        /* A file new to the state is the state's from now on, at 0: a run
         * that dies before its first commit leaves bytes the next one cuts,
         * where it would otherwise find a file it did not count. */
        if (!known && c->engine.dedup) {
            uint64_t zero = 0;
            dp_dedup_epoch de = {NULL, 0, 0, 0, &name, &zero, 1};
            if (dp_dedup_persist(c->engine.dedup, &de, err) != 0) return -1;
        }
    }
    return 0;
}

/* The positions of the sinks that keep one, after a commit, for the state:
 * arrays of up to n_sinks + 1, the caller's to free. */
typedef struct positions {
    const char **names;
    uint64_t *at;
    size_t n;
} positions;

static int positions_now(const dp_run_config *c, positions *p, dp_error *err) {
    size_t cap = c->engine.n_sinks + 1;
    p->n = 0;
    p->names = malloc(cap * sizeof *p->names);
    p->at = malloc(cap * sizeof *p->at);
    if (!p->names || !p->at) return dp_error_set(err, DP_ERR_NOMEM, "out of memory recording the sinks' positions");
    for (size_t k = 0; k < cap; k++) {
        dp_sink *s = nth_distinct_sink(&c->engine, k);
        const char *name = s ? dp_sink_position_name(s) : NULL;
        if (!name) continue;
        p->names[p->n] = name;
        p->at[p->n++] = dp_sink_position(s);
    }
    return 0;
}

int dp_conductor_recover(const dp_run_config *c, dp_run_stats *st, dp_error *err) {
    dp_sink *es = dp_conductor_epoch_sink(c);
    if (!es) return 0;
    uint64_t epochs = 0;
    int rc = dp_ledger_recover(es, c->engine.dedup, c->instance, c->engine.log, &epochs, err);
    if (rc == DP_SINK_STOPPED) {
        st->stopped = 1;
        return 0;
    }
    st->recovered_epochs += epochs;
    return rc;
}

int dp_conductor_run(const dp_run_config *c, dp_input *const *inputs, size_t n, dp_run_stats *st, dp_error *err) {
    double t0 = dp_clock_seconds();
    dp_dedup *state = c->engine.dedup;
    dp_sink *es = dp_conductor_epoch_sink(c);
    uint64_t state_epoch = 0, ledger_next = 0;
    if (es && dp_dedup_meta(state, &state_epoch, &ledger_next) != 0)
        return dp_error_set(err, DP_ERR_IO, "state: cannot read the epoch and ledger position");

    /* inputs an earlier run counted are acknowledged again (a crash may
     * have come before they were), not run */
    split in;
    if (split_make(c, inputs, n, &in, err) != 0) return -1;
    if (in.n_done) {
        dp_log_info(c->engine.log, "run", DP_LOG_FIELDS(DP_LOG_U64("inputs_skipped", in.n_done)),
                    "dmarcpipe run: %zu input(s) already %s by an earlier run: skipped", in.n_done,
                    es ? "committed" : "counted");
        st->inputs_done_before += in.n_done;
        if (c->progress) atomic_fetch_add_explicit(&c->progress->done, in.n_done, memory_order_relaxed);
        ack(in.done, in.n_done, NULL, st);
    }
    dp_run_metrics rm;
    dp_run_metrics_init(&rm, c->engine.metrics);
    dp_run_metrics_tally tally;

    dp_engine_stats sum;
    memset(&sum, 0, sizeof sum);
    int rc = 0, stopped_open = 0, abandoned = 0;
    size_t at = 0;
    uint8_t *held = NULL; /* the epoch's inputs whose rejection could not be kept */
    pthread_mutex_t fwd_lock = PTHREAD_MUTEX_INITIALIZER;
    reader rd = {0};
    while (rc == 0 && at < in.n_todo && !(c->stop && *c->stop)) {
        uint64_t epoch = state_epoch + 1;
        admit_ctx ac = {c->epoch_inputs ? c->epoch_inputs : SIZE_MAX, 0, c->epoch_seconds, 0, c->stop,
                        c->engine.metrics};
        long backoff_ms = 1000;
        for (;;) {
            dp_metrics_heartbeat(c->engine.metrics);
            /* workers sharing a ledger: what the others counted is seen */
            int cu = c->ledger_shared && es ? catch_up(c, es, err) : 0;
            if (cu == DP_SINK_STOPPED) {
                stopped_open = 1;
                break;
            }
            if (cu != 0) {
                rc = -1;
                break;
            }
            int b = es ? dp_sink_epoch_begin(es, err) : 0;
            if (b == DP_SINK_STOPPED) {
                stopped_open = 1;
                break;
            }
            if (b != 0) {
                rc = -1;
                break;
            }
            dp_engine_config cfg = c->engine;
            cfg.admit = admit;
            cfg.admit_ctx = &ac;
            ac.started = dp_clock_seconds();
            free(held);
            held = calloc(in.n_todo - at, 2); /* and after them, open_failed */
            if (!held) {
                rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
                if (es) dp_sink_epoch_abort(es);
                break;
            }
            free(rd.fwd);
            rd = (reader){in.todo + at, &c->limits, held, &fwd_lock, NULL, 0, 0, 0, c->engine.log,
                          c->progress, &tally, held + (in.n_todo - at)};
            dp_run_metrics_tally_reset(&tally);
            dp_engine_inputs ei = {in.n_todo - at, read_input, reject_input, c->route_reports ? route_report : NULL,
                                   &rd};
            dp_engine_stats es_st;
            if (dp_engine_run(&cfg, &ei, &es_st, err) != 0) {
                if (es) dp_sink_epoch_abort(es);
                dp_dedup_rollback(state);
                rc = -1;
                break;
            }
            size_t taken = (size_t)es_st.inputs;
            /* a report another worker committed while this epoch counted
             * it (a copy in another partition): run the epoch again, where
             * it is a duplicate */
            if (c->ledger_shared && es && taken) {
                int r = catch_up(c, es, err);
                size_t clash = r == 0 ? dp_dedup_take_conflicts(state) : 0;
                if (r != 0 || clash) {
                    dp_sink_epoch_abort(es);
                    dp_dedup_rollback(state);
                    if (r == DP_SINK_STOPPED) {
                        stopped_open = 1;
                        break;
                    }
                    if (r != 0) {
                        rc = -1;
                        break;
                    }
                    dp_log_info(c->engine.log, "run",
                                DP_LOG_FIELDS(DP_LOG_U64("epoch", epoch), DP_LOG_U64("reports_clashed", clash)),
                                "dmarcpipe run: epoch %llu: %zu report(s) committed meanwhile by another worker; "
                                "running it again", (unsigned long long)epoch, clash);
                    st->epochs_retried++;
                    ac.retry = 1;
                    ac.max_inputs = taken;
                    continue;
                }
            }
            int ledger_failed = 0;
            if (es && rd.n_fwd && forward_routed(&rd, es, taken, err) != 0) {
                /* the copies could not be handed over: nothing of the epoch commits */
                dp_sink_epoch_abort(es);
                dp_dedup_rollback(state);
                rc = -1;
                break;
            }
            if (es) {
                dp_ledger_writer lw;
                dp_ledger_begin(&lw, c->instance, epoch, emit_to_sink, es, err);
                dp_dedup_pending(state, add_id, &lw);
                for (size_t i = 0; i < taken; i++) dp_ledger_add_input(&lw, in.todo[at + i]->key);
                ledger_failed = dp_ledger_end(&lw) != 0;
            }
            uint64_t next = 0;
            double tc = dp_clock_seconds();
            int cr = ledger_failed ? -1 : es ? hand_over_positions(es, in.todo + at, taken, ac.retry, err) : 0;
            if (cr == DP_SOURCE_LOST) {
                /* a rebalance gave the inputs to another worker, which
                 * counts them from the position last committed */
                dp_sink_epoch_abort(es);
                dp_dedup_rollback(state);
                dp_log_info(c->engine.log, "run",
                            DP_LOG_FIELDS(DP_LOG_U64("epoch", epoch), DP_LOG_U64("inputs", taken),
                                          DP_LOG_STR("error", err->msg)),
                            "dmarcpipe run: epoch %llu (%zu inputs) abandoned: %s", (unsigned long long)epoch, taken,
                            err->msg);
                st->epochs_abandoned++;
                abandoned = 1;
                break;
            }
            if (cr == 0 && !ledger_failed) cr = commit_all(c, &next, err);
            if (cr == 0) {
                st->sink_seconds += es_st.final_flush_seconds + (dp_clock_seconds() - tc);
                /* the state records the inputs counted, not those held */
                const char **keys = NULL;
                size_t n_keys = 0;
                positions pos = {0};
                int p = c->track_inputs && taken && !(keys = malloc(taken * sizeof *keys))
                            ? dp_error_set(err, DP_ERR_NOMEM, "out of memory recording the inputs")
                            : positions_now(c, &pos, err);
                for (size_t i = 0; p == 0 && keys && i < taken; i++)
                    if (!held[i]) keys[n_keys++] = in.todo[at + i]->key;
                if (p == 0) {
                    /* a shared ledger is read on from where the last
                     * catch-up stopped, before this epoch's record: the
                     * others' records since are read next time, and this
                     * one is found again, known */
                    uint64_t read_on = es && !c->ledger_shared ? next : 0;
                    dp_dedup_epoch de = {keys,     n_keys,   es ? epoch : 0, read_on,
                                         pos.names, pos.at, pos.n};
                    p = dp_dedup_persist(state, &de, err);
                }
                free(keys);
                free(pos.names);
                free(pos.at);
                if (p != 0) {
                    /* committed, but not recorded: with a ledger the next
                     * start reads it back, and a file sink is cut back to
                     * what the state knows; stop rather than guess */
                    rc = -1;
                    break;
                }
                dp_engine_stats_add(&sum, &es_st);
                dp_run_metrics_commit(&rm, &es_st, &tally, dp_clock_seconds() - tc);
                st->epochs++;
                state_epoch = epoch;
                ack(in.todo + at, taken, held, st);
                at += taken;
                break;
            }
            if (es && (ledger_failed || cr == -1)) dp_sink_epoch_abort(es);
            dp_dedup_rollback(state);
            if (cr == DP_SINK_STOPPED) {
                stopped_open = 1;
                break;
            }
            if (cr != DP_SINK_RETRY) {
                rc = -1;
                break;
            }
            st->epochs_retried++;
            dp_log_warn(c->engine.log, "run",
                        DP_LOG_FIELDS(DP_LOG_U64("epoch", epoch), DP_LOG_U64("inputs", taken),
                                      DP_LOG_STR("error", err->msg), DP_LOG_F64("retry_in_s", backoff_ms / 1000.0)),
                        "dmarcpipe run: epoch %llu (%zu inputs) aborted: %s; running it again in %.1f s",
                        (unsigned long long)epoch, taken, err->msg, backoff_ms / 1000.0);
            ac.retry = 1;
            ac.max_inputs = taken;
            if (backoff(backoff_ms, c->stop)) {
                stopped_open = 1;
                break;
            }
            if (backoff_ms < 30000) backoff_ms *= 2;
        }
        if (stopped_open || abandoned) break;
    }
    if (stopped_open) {
        st->stopped = 1;
        dp_log_info(c->engine.log, "run", DP_LOG_NONE,
                    "dmarcpipe run: stopping: the open epoch was aborted; its inputs are run again next time");
    } else if (c->stop && *c->stop && at < in.n_todo) {
        st->stopped = 1;
        if (es)
            dp_log_info(c->engine.log, "run",
                        DP_LOG_FIELDS(DP_LOG_U64("epoch", state_epoch), DP_LOG_U64("inputs_left", in.n_todo - at)),
                        "dmarcpipe run: stopping after epoch %llu: %zu input(s) left for the next run",
                        (unsigned long long)state_epoch, in.n_todo - at);
        else
            dp_log_info(c->engine.log, "run", DP_LOG_FIELDS(DP_LOG_U64("inputs_left", in.n_todo - at)),
                        "dmarcpipe run: stopping: %zu input(s) left for the next run", in.n_todo - at);
    }
    free(held);
    free(rd.fwd);
    split_free(&in);
    sum.seconds = dp_clock_seconds() - t0;
    dp_engine_stats_add(&st->engine, &sum);
    return rc;
}

/* The listing's totals, for a progress line. */
static void note_listed(dp_run_progress *p, const dp_input_list *l) {
    uint64_t bytes = 0, unsized = 0;
    for (size_t i = 0; p && i < l->n; i++) {
        if (l->v[i]->has_size) bytes += l->v[i]->size;
        else unsized++;
    }
    if (!p) return;
    atomic_fetch_add_explicit(&p->listed, l->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->listed_bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->unsized, unsized, memory_order_relaxed);
}

int dp_conductor_batch(const dp_run_config *c, dp_source *const *sources, size_t n_sources, dp_run_stats *st,
                       dp_error *err) {
    /* A source lists what it has, a bounded batch at a time where it has
     * much (an object store, an inbox), until a round lists nothing: a
     * folder lists everything in its first round. */
    int rc = 0;
    uint64_t last_round = 0;
    for (;;) {
        dp_input_list all = {0};
        for (size_t i = 0; rc == 0 && i < n_sources; i++) rc = dp_source_next(sources[i], &all, err);
        size_t listed = all.n;
        /* a round that lists exactly what the last one did makes no
         * progress (a source that lists again what it cannot get rid of) */
        uint64_t round = 14695981039346656037ull;
        for (size_t i = 0; i < all.n; i++)
            for (const char *p = all.v[i]->key; *p; p++) round = (round ^ (uint8_t)*p) * 1099511628211ull;
        int again = listed && round == last_round;
        last_round = round;
        if (rc == 0 && listed && !again) {
            note_listed(c->progress, &all);
            rc = dp_conductor_run(c, all.v, all.n, st, err);
        }
        dp_input_list_free(&all);
        if (rc != 0 || listed == 0 || again || st->stopped || (c->stop && *c->stop)) break;
    }
    return rc;
}
