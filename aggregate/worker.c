/* worker — a worker thread: inputs through ingest, records into batches.
 *
 * A worker takes the next input in list order (decide.c) and reads it
 * through the caller's dp_engine_inputs (the run: from its source, with
 * ingest).  Each record's count is split
 * over the UTC windows its report covers (window.c), and each share goes
 * into the open batch of the shard that owns the record's source IP.  When
 * a report ends, the worker tells every shard it touched: DEFER (it ended
 * well: keep its data pending until its verdict) or ABORT (drop it); the
 * verdict itself comes later, in input order (decide.c).  A rejected input
 * goes back through dp_engine_inputs.reject (to its source, which keeps
 * it with its reasons).
 *
 * Everything here runs on the worker's own thread, on memory it owns: its
 * open batches, free list, window shares and scratch buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

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

static int cmp_cstr(const void *x, const void *y) {
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The override reason types, sorted and joined by ','; NULL if none. */
static const char *override_key(worker *w, const dp_record *rec, int *oom) {
    const char *types[64];
    size_t n = 0;
    for (size_t i = 0; i < rec->n_overrides && n < 64; i++)
        if (rec->overrides[i].type) types[n++] = rec->overrides[i].type;
    if (!n) return NULL;
    qsort(types, n, sizeof *types, cmp_cstr);
    dp_buf_reset(&w->tmp);
    w->tmp.failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) dp_buf_putc(&w->tmp, ',');
        dp_buf_puts(&w->tmp, types[i]);
    }
    *oom = w->tmp.failed; /* never a key without its override */
    return w->tmp.failed ? NULL : w->tmp.data;
}

static int on_record(void *ctx, const dp_report *rep, const dp_record *rec) {
    worker *w = ctx;
    if (w->counted_before) return 0; /* parsed, to be validated, not counted */
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
    /* Windows the rollup cannot carry (a start, or an end start + width,
     * outside int64) fail the report rather than lose or wrap its counts;
     * ingest refuses such dates first. */
    if (n == 0 || w->shares[n - 1].window_start > INT64_MAX - width) return -1;

    const dp_dkim_auth *dk = rec->n_dkim_auth ? dp_align_pick_dkim(&w->align, rec) : NULL;
    const dp_spf_auth *sp = rec->n_spf_auth ? &rec->spf_auth[0] : NULL;
    int oom = 0;
    const char *strs[K__STRINGS] = {
        [K_REPORTER] = rep->org_name,
        [K_POLICY_DOMAIN] = rep->policy.domain,
        [K_HEADER_FROM] = rec->header_from,
        [K_DISPOSITION] = rec->disposition,
        [K_DKIM] = rec->dkim,
        [K_SPF] = rec->spf,
        [K_OVERRIDE] = override_key(w, rec, &oom),
        [K_DKIM_DOMAIN] = dk ? dk->domain : NULL,
        [K_DKIM_SELECTOR] = dk ? dk->selector : NULL,
        [K_DKIM_RESULT] = dk ? dk->result : NULL,
        [K_SPF_DOMAIN] = sp ? sp->domain : NULL,
        [K_SPF_RESULT] = sp ? sp->result : NULL,
    };

    if (oom) return -1;
    unsigned s = shard_of(e, rec);
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        /* a window where the record's share rounds to 0 gets no rollup,
         * unless the record has no messages at all: then its first window */
        if (w->shares[i].count == 0 && (rec->count != 0 || any)) continue;
        any = 1;
        batch *b = w->open[s];
        if (b && b->n == e->cfg->batch_items) {
            dp_batch_push(w, s, b);
            w->sent[s] = 1;
            b = w->open[s] = NULL;
        }
        if (!b && !(b = w->open[s] = dp_batch_get(w))) return -1;
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
            if (!b && !(b = dp_batch_get(w))) {
                dp_error err;
                dp_error_set(&err, DP_ERR_NOMEM, "out of memory ending a report");
                dp_engine_fail(e, &err);
                continue;
            }
            if (op == OP_ABORT) b->n = 0;
            b->op = op;
            dp_batch_push(w, s, b);
            w->open[s] = NULL;
        }
        w->touched[s] = 0;
        w->sent[s] = 0;
    }
}

static int on_report_begin(void *ctx, const dp_report *rep) {
    worker *w = ctx;
    engine *e = w->e;
    w->token++;
    /* A report an earlier run counted is known now, from its header: its
     * records go nowhere.  It is still parsed to its end, so that a copy
     * that is not valid is rejected as such, not passed as a duplicate.
     * (Copies within this run are decided in input order instead: deciding
     * them here would make what is rejected or quarantined depend on
     * thread timing.) */
    w->counted_before = w->routed = 0;
    if (!e->inputs->route && !e->cfg->dedup) return 0;
    uint8_t id[32];
    dp_dedup_identity(rep, id);
    if (e->inputs->route && e->inputs->route(e->inputs->ctx, w->input, id) != 0) {
        w->routed = w->counted_before = 1;
        return 0;
    }
    if (e->cfg->dedup) {
        int seen = dp_dedup_seen_before(e->cfg->dedup, id);
        if (seen < 0) {
            dp_error err;
            dp_error_set(&err, DP_ERR_IO, "state: cannot read the LMDB of counted reports");
            dp_engine_fail(e, &err);
            return -1;
        }
        w->counted_before = seen;
    }
    return 0;
}

static int on_report_done(void *ctx, const dp_report *rep) {
    worker *w = ctx;
    engine *e = w->e;
    if (w->routed) {
        w->routed = w->counted_before = 0;
        w->st.routed++;
        return 0;
    }
    if (w->counted_before) {
        w->counted_before = 0;
        w->st.duplicates++;
        char part[DP_ERROR_TEXT_MAX], org[DP_ERROR_TEXT_MAX], id[DP_ERROR_TEXT_MAX], dom[DP_ERROR_TEXT_MAX];
        dp_log_info(e->cfg->log, "engine",
                    DP_LOG_FIELDS(DP_LOG_STR("input", rep->part), DP_LOG_STR("org_name", rep->org_name),
                                  DP_LOG_STR("report_id", rep->report_id), DP_LOG_STR("domain", rep->policy.domain),
                                  DP_LOG_I64("begin", rep->begin)),
                    "dmarcpipe: %s: duplicate report (org_name=%s report_id=%s domain=%s begin=%lld), not counted",
                    dp_error_text(rep->part, part), dp_error_text(rep->org_name ? rep->org_name : "-", org),
                    dp_error_text(rep->report_id ? rep->report_id : "-", id),
                    dp_error_text(rep->policy.domain ? rep->policy.domain : "-", dom), (long long)rep->begin);
        return 0;
    }
    end_report(w, OP_DEFER);
    deferred *d = calloc(1, sizeof *d);
    dp_buf line = DP_BUF_INIT, label = DP_BUF_INIT;
    if (e->cfg->reports) {
        dp_report_line rl = {rep, rep->sha256};
        dp_format_report_line(&line, &rl);
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

    dp_decide_defer(w, d);
    return 0;
}

static void on_report_failed(void *ctx, const dp_report *rep, const dp_error *err) {
    (void)rep;
    worker *w = ctx;
    w->counted_before = w->routed = 0;
    end_report(w, OP_ABORT);
    w->st.rejected++;
    dp_log_dp_error(w->e->cfg->log, DP_LOG_WARN, "ingest", err);
    if (w->n_errs == w->cap_errs) {
        size_t cap = w->cap_errs ? 2 * w->cap_errs : 8;
        dp_error *ne = realloc(w->errs, cap * sizeof *ne);
        if (!ne) return;
        w->errs = ne;
        w->cap_errs = cap;
    }
    w->errs[w->n_errs++] = *err;
}

static const dp_report_handler HANDLER = {
    .report_begin = on_report_begin,
    .record = on_record,
    .report_done = on_report_done,
    .report_failed = on_report_failed,
};

void *dp_worker_main(void *arg) {
    worker *w = arg;
    engine *e = w->e;
    size_t i;
    const dp_engine_inputs *in = e->inputs;
    while (dp_decide_take_input(e, &i)) {
        dp_error err;
        w->input = i;
        w->n_errs = 0;
        w->st.inputs++;
        if (in->read(in->ctx, i, &HANDLER, w, &err) != 0) {
            w->st.inputs_rejected++;
            /* every rejection passes report_failed; this is a safety net */
            if (w->n_errs == 0) on_report_failed(w, NULL, &err);
            if (in->reject(in->ctx, i, w->errs, w->n_errs, &err) != 0) dp_engine_fail(e, &err);
        }
        dp_decide_input_done(e, i);
        dp_decide_send(w);
        dp_batch_ring_owed(w);
    }
    /* Verdicts on this worker's reports may still come from inputs other
     * workers are reading: only this worker can send them. */
    dp_decide_drain(w);
    atomic_fetch_add_explicit(&e->workers_done, 1, memory_order_release);
    dp_batch_ring_all(e);
    return NULL;
}
