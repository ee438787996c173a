/* test_conductor — the run's protocol (run/conductor.c), step by step.
 *
 *   sources ─► engine ─► sinks commit ─► state persisted ─► sources ack
 *
 * The engine and the state (LMDB) are the real ones; the sink and the
 * source are test doubles, so that a crash can be put at each step:
 *   - a transactional sink whose commit fails before it takes effect, or
 *     after (the broker committed, the process died before it heard), or
 *     aborts the epoch once (run it again);
 *   - a source that checks, at every acknowledgement, that the input's
 *     epoch is committed in the sink and recorded in the state, and that
 *     can "crash" before acknowledging.
 * A crash is the conductor returning -1; the restart is the state closed
 * and opened again, dp_conductor_recover(), and dp_conductor_run() over
 * the same inputs.  After every scenario the sink must hold each report's
 * messages exactly once.  The real Kafka sink and file source have their
 * own end-to-end tests (tests/kafka, tests/aggregate).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "test_util.h"

#define N_INPUTS 6
#define MAX_LEDGER 64

/* ---- a transactional sink ------------------------------------------------------ */

enum { COMMIT_OK, COMMIT_FAILS_BEFORE, COMMIT_FAILS_AFTER, COMMIT_RETRY };

typedef struct fake_sink {
    dp_sink base;
    int epochs;           /* has epochs (a transactional sink) */
    uint64_t pending_messages, committed_messages;
    uint64_t pending_rollups, committed_rollups;
    char *pending_ledger[MAX_LEDGER], *ledger[MAX_LEDGER];
    size_t n_pending_ledger, n_ledger;
    int fault;            /* COMMIT_*: what the next commit does, once */
    int fault_at_commit;  /* ... at this commit (1-based) */
    int commits, flushes;
} fake_sink;

static void drop_pending(fake_sink *f) {
    f->pending_messages = f->pending_rollups = 0;
    for (size_t i = 0; i < f->n_pending_ledger; i++) free(f->pending_ledger[i]);
    f->n_pending_ledger = 0;
}

static int fs_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err) {
    (void)err;
    fake_sink *f = (fake_sink *)s;
    f->pending_messages += r->messages;
    f->pending_rollups++;
    return 0;
}

static int fs_flush(dp_sink *s, dp_error *err) {
    (void)err;
    fake_sink *f = (fake_sink *)s;
    f->flushes++;
    if (!f->epochs) { /* written through: the flush is the commit */
        f->committed_messages += f->pending_messages;
        f->committed_rollups += f->pending_rollups;
        f->pending_messages = f->pending_rollups = 0;
    }
    return 0;
}

static void fs_destroy(dp_sink *s) { (void)s; }

static int fs_begin(dp_sink *s, dp_error *err) {
    (void)err;
    drop_pending((fake_sink *)s);
    return 0;
}

static int fs_ledger_write(dp_sink *s, const char *rec, size_t len, dp_error *err) {
    (void)err;
    fake_sink *f = (fake_sink *)s;
    ck_assert_uint_lt(f->n_pending_ledger, MAX_LEDGER);
    char *copy = malloc(len + 1);
    memcpy(copy, rec, len);
    copy[len] = '\0';
    f->pending_ledger[f->n_pending_ledger++] = copy;
    return 0;
}

static void commit_pending(fake_sink *f) {
    f->committed_messages += f->pending_messages;
    f->committed_rollups += f->pending_rollups;
    for (size_t i = 0; i < f->n_pending_ledger; i++) {
        ck_assert_uint_lt(f->n_ledger, MAX_LEDGER);
        f->ledger[f->n_ledger++] = f->pending_ledger[i];
    }
    f->n_pending_ledger = 0;
    f->pending_messages = f->pending_rollups = 0;
}

static int fs_commit(dp_sink *s, uint64_t *next, dp_error *err) {
    fake_sink *f = (fake_sink *)s;
    f->commits++;
    int fault = f->commits == f->fault_at_commit ? f->fault : COMMIT_OK;
    switch (fault) {
    case COMMIT_FAILS_BEFORE:
        drop_pending(f);
        return dp_error_set(err, DP_ERR_IO, "fake sink: the process died before the commit");
    case COMMIT_RETRY:
        drop_pending(f);
        dp_error_set(err, DP_ERR_IO, "fake sink: the broker was away");
        return DP_SINK_RETRY;
    case COMMIT_FAILS_AFTER:
        commit_pending(f);
        return dp_error_set(err, DP_ERR_IO, "fake sink: the process died after the commit");
    default:
        commit_pending(f);
        *next = f->n_ledger; /* offsets: the ledger's record numbers */
        return 0;
    }
}

static void fs_abort(dp_sink *s) { drop_pending((fake_sink *)s); }

static int fs_ledger_read(dp_sink *s, uint64_t from, dp_ledger_fn fn, void *ctx, dp_error *err) {
    (void)err;
    fake_sink *f = (fake_sink *)s;
    for (size_t i = from; i < f->n_ledger; i++)
        if (fn(ctx, f->ledger[i], strlen(f->ledger[i]), i + 1) != 0) return -1;
    return 0;
}

static const dp_sink_ops TXN_OPS = {
    .name = "fake-txn", .write_rollup = fs_write_rollup, .flush = fs_flush, .destroy = fs_destroy,
    .epoch_begin = fs_begin, .ledger_write = fs_ledger_write, .epoch_commit = fs_commit,
    .epoch_abort = fs_abort, .ledger_read = fs_ledger_read,
};
static const dp_sink_ops FILE_LIKE_OPS = {
    .name = "fake-file", .write_rollup = fs_write_rollup, .flush = fs_flush, .destroy = fs_destroy,
};

static void fake_sink_init(fake_sink *f, int epochs) {
    memset(f, 0, sizeof *f);
    f->base.ops = epochs ? &TXN_OPS : &FILE_LIKE_OPS;
    f->epochs = epochs;
    pthread_mutex_init(&f->base.lock, NULL);
}

static void fake_sink_free(fake_sink *f) {
    drop_pending(f);
    for (size_t i = 0; i < f->n_ledger; i++) free(f->ledger[i]);
    pthread_mutex_destroy(&f->base.lock);
}

/* ---- a source that checks every acknowledgement ------------------------------------ */

typedef struct fake_source {
    dp_source base;
    fake_sink *sink;
    dp_dedup **state;           /* the run's state, as it is now */
    const char *paths[N_INPUTS];
    int acks[N_INPUTS];         /* acknowledgements per input */
    int order[4 * N_INPUTS];    /* inputs in the order they were acknowledged */
    int n_order;
    int crash_before_ack;       /* acknowledge nothing (the process died first) */
    int state_has_inputs;       /* the state records inputs (track_inputs) */
    volatile sig_atomic_t *stop_after_ack; /* set it at the first acknowledgement */
    int rejects;
    int listed;                 /* a batch source lists its inputs once */
} fake_source;

static int index_of(const fake_source *fs, const dp_input *in) {
    for (int i = 0; i < N_INPUTS; i++)
        if (strcmp(fs->paths[i], in->name) == 0) return i;
    ck_abort_msg("unknown input %s", in->name);
    return -1;
}

static int src_next(dp_source *s, dp_input_list *out, dp_error *err) {
    (void)err;
    fake_source *fs = (fake_source *)s;
    if (fs->listed++) return 0;
    for (int i = 0; i < N_INPUTS; i++) {
        char *key = tu_printf("key-%d", i);
        ck_assert_int_eq(dp_input_list_push(out, dp_input_new(s, fs->paths[i], key)), 0);
    }
    return 0;
}

static int src_open(dp_source *s, const dp_input *in, dp_error *err) {
    (void)s;
    int fd = open(in->name, O_RDONLY);
    if (fd < 0) dp_error_set(err, DP_ERR_IO, "cannot open %s", in->name);
    return fd;
}

static int src_reject(dp_source *s, const dp_input *in, const dp_error *errors, size_t n, dp_error *err) {
    (void)in, (void)errors, (void)n, (void)err;
    ((fake_source *)s)->rejects++;
    return 0;
}

static int src_ack(dp_source *s, const dp_input *in) {
    fake_source *fs = (fake_source *)s;
    if (fs->crash_before_ack) return -1;
    /* the order of the protocol: committed in the sink, then recorded in
     * the state, and only then acknowledged */
    ck_assert_uint_eq(fs->sink->pending_messages, 0);
    ck_assert_int_eq(dp_dedup_input_done(*fs->state, in->key), fs->state_has_inputs);
    int i = index_of(fs, in);
    fs->acks[i]++;
    fs->order[fs->n_order++] = i;
    if (fs->stop_after_ack) *fs->stop_after_ack = 1;
    return 0;
}

static void src_destroy(dp_source *s) { (void)s; }

static const dp_source_ops FAKE_SOURCE_OPS = {
    .name = "fake", .next = src_next, .open = src_open, .reject = src_reject, .ack = src_ack, .destroy = src_destroy,
};

/* ---- fixtures ------------------------------------------------------------------------ */

typedef struct world {
    const char *dir, *state_dir;
    fake_sink sink;
    fake_source source;
    dp_dedup *state;
    dp_sink *sinks[1];
    dp_run_config cfg;
    uint64_t total_messages; /* the truth: every report once */
} world;

/* Input i: one report of two records, 10*i+1 and 10*i+2 messages. */
static void world_init(world *w, int epochs, size_t epoch_inputs) {
    memset(w, 0, sizeof *w);
    dp_ingest_global_init();
    w->dir = tu_tmpdir();
    w->state_dir = tu_printf("%s/state", w->dir);
    fake_sink_init(&w->sink, epochs);
    w->source.base.ops = &FAKE_SOURCE_OPS;
    w->source.sink = &w->sink;
    w->source.state = &w->state;
    for (int i = 0; i < N_INPUTS; i++) {
        char *xml = tu_printf(TU_HEAD_ID("Conductor Org", "%d") TU_REC("192.0.2.%d", "%d") TU_REC("198.51.100.%d", "%d")
                                  TU_TAIL,
                              i, i + 1, 10 * i + 1, i + 1, 10 * i + 2);
        w->source.paths[i] = tu_write_file(w->dir, tu_printf("in-%d.xml", i), xml, strlen(xml));
        w->total_messages += 20 * (uint64_t)i + 3;
    }
    dp_error err;
    w->state = dp_dedup_open(w->state_dir, &err);
    ck_assert_msg(w->state != NULL, "%s", err.msg);
    w->sinks[0] = &w->sink.base;
    dp_conductor_config_default(&w->cfg);
    w->cfg.engine.workers = 2;
    w->cfg.engine.shards = 2;
    w->cfg.engine.dedup = w->state;
    w->cfg.engine.sinks = w->sinks;
    w->cfg.engine.n_sinks = 1;
    w->cfg.engine.reports = NULL;
    w->cfg.instance = "test";
    w->cfg.epoch_inputs = epoch_inputs;
    w->cfg.track_inputs = 1;
    w->source.state_has_inputs = 1;
}

/* A process: recover, then run every input of the source. */
static int world_run(world *w, dp_run_stats *st, dp_error *err) {
    memset(st, 0, sizeof *st);
    if (dp_conductor_recover(&w->cfg, st, err) != 0) return -1;
    w->source.listed = 0; /* a new process opens its source anew */
    dp_source *src = &w->source.base;
    return dp_conductor_batch(&w->cfg, &src, 1, st, err);
}

/* The process died: what was not persisted is lost; a new one opens the state. */
static void world_restart(world *w) {
    dp_dedup_close(w->state);
    dp_error err;
    w->state = dp_dedup_open(w->state_dir, &err);
    ck_assert_msg(w->state != NULL, "%s", err.msg);
    w->cfg.engine.dedup = w->state;
    w->sink.fault = COMMIT_OK;
    drop_pending(&w->sink);
}

static void world_free(world *w) {
    dp_dedup_close(w->state);
    fake_sink_free(&w->sink);
}

static void assert_every_input_acked(const world *w) {
    for (int i = 0; i < N_INPUTS; i++) ck_assert_msg(w->source.acks[i] >= 1, "input %d never acknowledged", i);
}

/* ---- the tests ---------------------------------------------------------------------- */

START_TEST(epochs_commit_then_persist_then_ack_in_order) {
    world w;
    world_init(&w, 1, 2);
    dp_run_stats st;
    dp_error err;
    ck_assert_msg(world_run(&w, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.epochs, 3);
    ck_assert_uint_eq(st.engine.inputs, N_INPUTS);
    ck_assert_uint_eq(st.engine.messages, w.total_messages);
    ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
    ck_assert_uint_eq(w.sink.n_ledger, 3); /* one record per epoch */
    ck_assert_int_eq(w.source.n_order, N_INPUTS);
    for (int i = 0; i < N_INPUTS; i++) ck_assert_int_eq(w.source.order[i], i);
    uint64_t epoch, next;
    ck_assert_int_eq(dp_dedup_meta(w.state, &epoch, &next), 0);
    ck_assert_uint_eq(epoch, 3);
    ck_assert_uint_eq(next, 3);
    /* a second run over the same inputs runs nothing and sends nothing */
    world_restart(&w);
    ck_assert_int_eq(world_run(&w, &st, &err), 0);
    ck_assert_uint_eq(st.inputs_done_before, N_INPUTS);
    ck_assert_uint_eq(st.epochs, 0);
    ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
    world_free(&w);
}
END_TEST

START_TEST(a_crash_before_the_commit_runs_the_epoch_again) {
    world w;
    world_init(&w, 1, 2);
    w.sink.fault = COMMIT_FAILS_BEFORE;
    w.sink.fault_at_commit = 2;
    dp_run_stats st;
    dp_error err;
    ck_assert_int_eq(world_run(&w, &st, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "before the commit"));
    ck_assert_uint_eq(st.epochs, 1);
    /* the first epoch's inputs were acknowledged, the second's were not */
    ck_assert_int_eq(w.source.n_order, 2);
    ck_assert_int_eq(w.source.acks[2], 0);
    world_restart(&w);
    ck_assert_msg(world_run(&w, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.recovered_epochs, 0);
    ck_assert_uint_eq(st.inputs_done_before, 2);
    ck_assert_uint_eq(st.epochs, 2);
    ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
    assert_every_input_acked(&w);
    world_free(&w);
}
END_TEST

START_TEST(a_crash_after_the_commit_is_caught_up_from_the_ledger) {
    world w;
    world_init(&w, 1, 2);
    w.sink.fault = COMMIT_FAILS_AFTER;
    w.sink.fault_at_commit = 2;
    dp_run_stats st;
    dp_error err;
    ck_assert_int_eq(world_run(&w, &st, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "after the commit"));
    /* committed in the sink, unknown to the state */
    ck_assert_int_eq(dp_dedup_input_done(w.state, "key-2"), 0);
    ck_assert_int_eq(w.source.acks[2], 0);
    uint64_t committed_before = w.sink.committed_messages;
    world_restart(&w);
    ck_assert_msg(world_run(&w, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.recovered_epochs, 1);
    ck_assert_uint_eq(st.inputs_done_before, 4);
    ck_assert_uint_eq(st.epochs, 1);
    /* the recovered epoch was not sent again: exactly once */
    ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
    ck_assert_uint_gt(w.sink.committed_messages, committed_before);
    assert_every_input_acked(&w);
    uint64_t epoch, next;
    ck_assert_int_eq(dp_dedup_meta(w.state, &epoch, &next), 0);
    ck_assert_uint_eq(epoch, 3);
    world_free(&w);
}
END_TEST

START_TEST(a_crash_before_the_ack_acks_on_the_next_start) {
    world w;
    world_init(&w, 1, 2);
    w.source.crash_before_ack = 1;
    dp_run_stats st;
    dp_error err;
    ck_assert_int_eq(world_run(&w, &st, &err), 0);
    ck_assert_uint_eq(st.ack_failures, N_INPUTS);
    ck_assert_int_eq(w.source.n_order, 0);
    world_restart(&w);
    w.source.crash_before_ack = 0;
    ck_assert_msg(world_run(&w, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.epochs, 0); /* nothing runs again */
    ck_assert_uint_eq(st.inputs_done_before, N_INPUTS);
    ck_assert_uint_eq(st.acked, N_INPUTS);
    ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
    assert_every_input_acked(&w);
    world_free(&w);
}
END_TEST

START_TEST(an_aborted_epoch_is_run_again_over_the_same_inputs) {
    world w;
    world_init(&w, 1, 3);
    w.sink.fault = COMMIT_RETRY;
    w.sink.fault_at_commit = 1;
    dp_run_stats st;
    dp_error err;
    ck_assert_msg(world_run(&w, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.epochs_retried, 1);
    ck_assert_uint_eq(st.epochs, 2);
    ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
    ck_assert_int_eq(w.source.n_order, N_INPUTS);
    world_free(&w);
}
END_TEST

START_TEST(a_stop_request_ends_the_run_after_the_epoch) {
    world w;
    world_init(&w, 1, 2);
    static volatile sig_atomic_t stop;
    stop = 0;
    w.cfg.stop = &stop;
    w.source.stop_after_ack = &stop;
    dp_run_stats st;
    dp_error err;
    ck_assert_int_eq(world_run(&w, &st, &err), 0);
    ck_assert_int_eq(st.stopped, 1);
    ck_assert_uint_eq(st.epochs, 1);
    ck_assert_int_eq(w.source.n_order, 2);
    /* the next start takes the rest */
    world_restart(&w);
    stop = 0;
    w.source.stop_after_ack = NULL;
    ck_assert_int_eq(world_run(&w, &st, &err), 0);
    ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
    assert_every_input_acked(&w);
    world_free(&w);
}
END_TEST

/* A sink without epochs: one epoch over everything, its flush is the
 * commit; the state records inputs only when asked to. */
START_TEST(a_sink_without_epochs_commits_by_flushing) {
    for (int track = 0; track < 2; track++) {
        world w;
        world_init(&w, 0, 0);
        w.cfg.track_inputs = track;
        w.source.state_has_inputs = track;
        dp_run_stats st;
        dp_error err;
        ck_assert_msg(world_run(&w, &st, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(st.epochs, 1);
        ck_assert_int_eq(w.sink.flushes, 1);
        ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
        ck_assert_uint_eq(w.sink.n_ledger, 0);
        ck_assert_int_eq(w.source.n_order, N_INPUTS);
        for (int i = 0; i < N_INPUTS; i++) ck_assert_int_eq(w.source.order[i], i);
        /* a second run: the state skips what it recorded; without
         * recorded inputs every input is parsed again and every report is
         * a duplicate, counted once all the same */
        world_restart(&w);
        ck_assert_int_eq(world_run(&w, &st, &err), 0);
        ck_assert_uint_eq(st.inputs_done_before, track ? N_INPUTS : 0);
        ck_assert_uint_eq(st.engine.duplicates, track ? 0 : N_INPUTS);
        ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
        world_free(&w);
    }
}
END_TEST

/* Every sink of the run commits each epoch: a file-like one flushes, the
 * one with epochs commits last; a sink named twice commits once. */
START_TEST(every_sink_commits_each_epoch) {
    world w;
    world_init(&w, 1, 2);
    fake_sink file_like;
    fake_sink_init(&file_like, 0);
    dp_sink *sinks[3] = {&file_like.base, &w.sink.base, &file_like.base};
    w.cfg.engine.sinks = sinks;
    w.cfg.engine.n_sinks = 3;
    w.cfg.engine.reports = &w.sink.base; /* the reports feed in the same transactions */
    dp_run_stats st;
    dp_error err;
    ck_assert_msg(world_run(&w, &st, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(st.epochs, 3);
    ck_assert_int_eq(w.sink.commits, 3);
    ck_assert_int_eq(file_like.flushes, 3);
    ck_assert_uint_eq(w.sink.committed_messages, w.total_messages);
    /* named twice, written twice, committed once per epoch */
    ck_assert_uint_eq(file_like.committed_messages, 2 * w.total_messages);
    ck_assert_int_eq(w.source.n_order, N_INPUTS);
    world_free(&w);
    fake_sink_free(&file_like);
}
END_TEST

int main(void) {
    Suite *s = suite_create("conductor");
    TCase *t = tu_tcase("protocol");
    tcase_add_test(t, epochs_commit_then_persist_then_ack_in_order);
    tcase_add_test(t, a_crash_before_the_commit_runs_the_epoch_again);
    tcase_add_test(t, a_crash_after_the_commit_is_caught_up_from_the_ledger);
    tcase_add_test(t, a_crash_before_the_ack_acks_on_the_next_start);
    tcase_add_test(t, an_aborted_epoch_is_run_again_over_the_same_inputs);
    tcase_add_test(t, a_stop_request_ends_the_run_after_the_epoch);
    tcase_add_test(t, a_sink_without_epochs_commits_by_flushing);
    tcase_add_test(t, every_sink_commits_each_epoch);
    suite_add_tcase(s, t);
    return tu_run(s);
}
