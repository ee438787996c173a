/* engine — a run of the aggregate stage: its threads, start to end.
 *
 * dp_engine_run() starts the shard threads, then the worker threads, joins
 * them, has every thread of the run format the tables together (the final
 * flush), and gathers the figures.  How the threads work together, and
 * which file holds which part, is told in engine_internal.h.
 *
 * Memory: the run allocates its rings, workers, shards and per-input
 * states here and frees them all before it returns; the inputs, sinks and
 * state (dedup) are the caller's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_clock.h"
#include "engine_internal.h"
#include "enrich.h"

void dp_engine_fail(engine *e, const dp_error *err) {
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
    t->routed += s->routed;
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

void dp_engine_metrics(dp_metrics *m, unsigned shards, dp_metric **keys, dp_metric **ring) {
    /* a ring is mostly empty when the shards keep up, and full when they
     * are the bottleneck (the workers then wait) */
    static const double buckets[] = {0.125, 0.25, 0.5, 0.75, 0.875, 1};
    dp_metric *k = NULL, *r = NULL;
    char (*names)[12] = m ? calloc(shards, sizeof *names) : NULL;
    const char **values = m ? calloc(shards, sizeof *values) : NULL;
    if (names && values) {
        for (unsigned s = 0; s < shards; s++) {
            snprintf(names[s], sizeof names[s], "%u", s);
            values[s] = names[s];
        }
        k = dp_metrics_gauge1(m, "dmarcpipe_shard_keys", "Rollup keys a shard holds (until its next flush).",
                              "shard", values, shards);
        r = dp_metrics_register(m, DP_METRIC_HISTOGRAM, "dmarcpipe_ring_occupancy",
                                "How full a worker-to-shard ring was (a fraction of its slots) each time its "
                                "shard found batches in it.",
                                NULL, 0, buckets, sizeof buckets / sizeof *buckets);
    }
    free(names);
    free(values);
    if (keys) *keys = k;
    if (ring) *ring = r;
}

void dp_engine_config_default(dp_engine_config *c) {
    memset(c, 0, sizeof *c);
    c->workers = 1;
    c->shards = 1;
    c->window = 86400;
    c->max_keys = 4u << 20;
    c->ring_slots = 64;
    c->batch_items = 256;
}

int dp_engine_run(const dp_engine_config *cfg, const dp_engine_inputs *inputs, dp_engine_stats *out,
                  dp_error *err) {
    size_t n_inputs = inputs->n;
    double t0 = dp_clock_seconds();
    memset(out, 0, sizeof *out);
    if (cfg->workers < 1 || cfg->shards < 1 || cfg->window < 1 || cfg->batch_items < 1)
        return dp_error_set(err, DP_ERR_USAGE, "workers, shards, window and batch size must be positive");
    engine e;
    memset(&e, 0, sizeof e);
    e.cfg = cfg;
    e.inputs = inputs;
    e.n_inputs = n_inputs;
    dp_engine_metrics(cfg->metrics, cfg->shards, &e.m_keys, &e.m_ring);
    const psl_ctx_t *psl = psl_builtin();
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
        wk->align.psl = psl;
        if (!wk->open || !wk->sent || !wk->touched || !wk->unrung) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    for (unsigned s = 0; rc == 0 && s < ns; s++) {
        shard *sh = &e.shards[s];
        sh->e = &e;
        sh->id = s;
        dp_intern_init(&sh->strings);
        dp_ipseen_init(&sh->ips);
        dp_table_init(&sh->main);
        sh->pending = calloc(nw, sizeof *sh->pending);
        sh->out = calloc(cfg->n_sinks ? cfg->n_sinks : 1, sizeof *sh->out);
        sh->bell_ok = dp_bell_init(&sh->bell) == 0;
        if (!sh->pending || !sh->out || !sh->bell_ok) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    unsigned started_s = 0, started_w = 0;
    for (; rc == 0 && started_s < ns; started_s++)
        if (pthread_create(&e.shards[started_s].th, NULL, dp_shard_main, &e.shards[started_s]) != 0)
            rc = dp_error_set(err, DP_ERR_NOMEM, "cannot start shard threads");
    for (; rc == 0 && started_w < nw; started_w++)
        if (pthread_create(&e.workers[started_w].th, NULL, dp_worker_main, &e.workers[started_w]) != 0)
            rc = dp_error_set(err, DP_ERR_NOMEM, "cannot start worker threads");
    /* Threads that did not start count as done, so the shards can finish. */
    if (rc != 0) {
        atomic_fetch_add(&e.workers_done, nw - started_w);
        if (started_s) dp_batch_ring_all(&e); /* every bell was initialised */
    }
    for (unsigned w = 0; w < started_w; w++) pthread_join(e.workers[w].th, NULL);
    for (unsigned s = 0; s < started_s; s++) pthread_join(e.shards[s].th, NULL);
    /* a run that failed (memory, a sink) is not flushed: it is not
     * committed either, and what its tables hold may be incomplete */
    if (rc == 0 && started_s == ns && !e.failed) {
        /* the one wait for lookups there is, and only when asked for */
        if (cfg->enrich && cfg->enrich_wait > 0) dp_enrich_settle(cfg->enrich, cfg->enrich_wait);
        double tf = dp_clock_seconds();
        dp_flush_final(&e);
        out->final_flush_seconds = dp_clock_seconds() - tf;
    }

    for (unsigned w = 0; e.workers && w < nw; w++) {
        worker *wk = &e.workers[w];
        out->inputs += wk->st.inputs;
        out->inputs_rejected += wk->st.inputs_rejected;
        out->rejected += wk->st.rejected;
        out->duplicates += wk->st.duplicates;
        out->routed += wk->st.routed;
        while (wk->free_list) {
            batch *b = wk->free_list;
            wk->free_list = b->next;
            dp_batch_free(b);
        }
        for (unsigned s = 0; wk->open && s < ns; s++) dp_batch_free(wk->open[s]);
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
        dp_metrics_set(e.m_keys, s, 0); /* the final flush emptied it */
        out->rollups += sh->rollups;
        out->flushes += sh->flushes;
        out->peak_keys += sh->peak_keys;
        out->peak_table_bytes += sh->peak_bytes;
        dp_intern_free(&sh->strings);
        dp_ipseen_free(&sh->ips);
        dp_buf_free(&sh->info);
        dp_table_free(&sh->main);
        dp_shard_free_pending(sh, nw);
        for (size_t k = 0; sh->out && k < cfg->n_sinks; k++) dp_buf_free(&sh->out[k]);
        free(sh->out);
        if (sh->bell_ok) dp_bell_free(&sh->bell);
    }
    for (size_t i = 0; e.rings && e.back && i < (size_t)nw * ns; i++) {
        void *p;
        while (dp_ring_pop(&e.back[i], &p)) dp_batch_free(p);
        while (e.rings[i].slots && dp_ring_pop(&e.rings[i], &p)) dp_batch_free(p);
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
            dp_decide_free_deferred(d);
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
