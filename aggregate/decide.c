/* decide — the decision order: which input is next, and which copy of a
 * report counts.
 *
 * Inputs are taken in list order, under the engine's order_lock, so the
 * inputs a run takes are always a prefix of the list, however many workers
 * there are: an epoch (cfg->admit) ends at a clean cut.
 *
 * A report that ended well waits, with its identity, in its input's list.
 * Once every input before input k has been read to its end, the reports of
 * input k are decided in order, each as soon as it ends (so one input of
 * many reports, a zip or an mbox, holds one report's data at a time): dedup says whether the report is new (the
 * first copy in input order counts) or a duplicate.  The verdict goes to
 * the inbox of the worker that parsed the report, and that worker sends it
 * to the shards down its own rings, after the report's data: only the
 * ring's own producer may push.  So the output does not depend on thread
 * timing.
 *
 * The state here (per-input lists, the watermark, the inboxes) sits behind
 * one mutex, taken once per report and once per input, never per record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"

static void decide_waiting(engine *e, input_state *is);

int dp_decide_take_input(engine *e, size_t *index) {
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
    *index = i;
    return take;
}

void dp_decide_defer(worker *w, deferred *d) {
    engine *e = w->e;
    pthread_mutex_lock(&e->order_lock);
    /* Bounded waiting room: a worker ahead of the earliest unfinished
     * input waits; the one holding that input never does. */
    while (e->n_deferred >= MAX_DEFERRED && w->input > e->watermark) {
        pthread_mutex_unlock(&e->order_lock);
        dp_decide_send(w);
        dp_batch_ring_owed(w);
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
    /* Every input before this one is decided: its reports need not wait
     * for its end, which for a zip or an mbox of thousands of reports
     * would hold all their data in the shards at once. */
    int head = w->input == e->watermark;
    if (head) decide_waiting(e, is);
    pthread_mutex_unlock(&e->order_lock);
    if (head) dp_decide_send(w);
}

/* Sends the verdicts waiting in this worker's inbox down its own rings, to
 * every shard: a shard that holds nothing for a token ignores it. */
void dp_decide_send(worker *w) {
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
        batch *b = dp_batch_get(w);
        if (!b) {
            dp_error err;
            dp_error_set(&err, DP_ERR_NOMEM, "out of memory sending verdicts");
            dp_engine_fail(e, &err);
            return;
        }
        if (n > b->cap_decisions) {
            decision *d = realloc(b->decisions, n * sizeof *d);
            if (!d) {
                dp_error err;
                dp_error_set(&err, DP_ERR_NOMEM, "out of memory sending verdicts");
                dp_engine_fail(e, &err);
                dp_batch_free(b);
                return;
            }
            b->decisions = d;
            b->cap_decisions = n;
        }
        memcpy(b->decisions, w->outbox, n * sizeof *b->decisions);
        b->n_decisions = n;
        b->op = OP_DECIDE;
        dp_batch_push(w, s, b);
    }
}

void dp_decide_free_deferred(deferred *d) {
    free(d->report_line);
    free(d->label);
    free(d);
}

/* Decides, in order, the reports waiting in `is`: called with order_lock,
 * only for the input at the watermark, every input before it decided. */
static void decide_waiting(engine *e, input_state *is) {
    for (deferred *d = is->head, *next; d; d = next) {
        next = d->next;
        int v = e->cfg->dedup ? dp_dedup_decide(e->cfg->dedup, d->identity) : DP_DEDUP_NEW;
        int commit = v == DP_DEDUP_NEW;
        if (v == DP_DEDUP_ERROR) {
            dp_error err;
            dp_error_set(&err, DP_ERR_IO, "cannot decide duplicates (out of memory, or the state is unreadable)");
            dp_engine_fail(e, &err);
        }
        if (commit) {
            e->reports++;
            e->records += d->records;
            e->messages += d->messages;
            e->xml_bytes += d->xml_bytes;
            if (e->cfg->reports && d->report_line) {
                dp_error err;
                if (dp_sink_write_report(e->cfg->reports, d->report_line, &err) != 0) dp_engine_fail(e, &err);
            }
        } else if (v == DP_DEDUP_DUPLICATE) {
            e->duplicates++;
            char label[DP_ERROR_TEXT_MAX];
            dp_log_info(e->cfg->log, "engine", DP_LOG_FIELDS(DP_LOG_STR("report", d->label)),
                        "dmarcpipe: %s: duplicate report, not counted", dp_error_text(d->label, label));
        }
        worker *w = &e->workers[d->worker];
        if (w->n_inbox == w->cap_inbox) {
            size_t cap = w->cap_inbox ? 2 * w->cap_inbox : 64;
            decision *ib = realloc(w->inbox, cap * sizeof *ib);
            if (!ib) {
                dp_error err;
                dp_error_set(&err, DP_ERR_NOMEM, "out of memory queueing verdicts");
                dp_engine_fail(e, &err);
                e->n_deferred--;
                dp_decide_free_deferred(d);
                continue;
            }
            w->inbox = ib;
            w->cap_inbox = cap;
        }
        w->inbox[w->n_inbox++] = (decision){d->token, commit};
        e->n_deferred--;
        dp_decide_free_deferred(d);
    }
    is->head = is->tail = NULL;
}

/* Decides the reports of every input that has been read to its end and has
 * no undecided input before it, in input order.  Called with order_lock. */
static void advance_watermark(engine *e) {
    while (e->watermark < e->n_inputs && e->in_st[e->watermark].finished) {
        decide_waiting(e, &e->in_st[e->watermark]);
        e->watermark++;
    }
    pthread_cond_broadcast(&e->order_cond);
}

void dp_decide_input_done(engine *e, size_t index) {
    pthread_mutex_lock(&e->order_lock);
    e->in_st[index].finished = 1;
    advance_watermark(e);
    pthread_mutex_unlock(&e->order_lock);
}

void dp_decide_drain(worker *w) {
    engine *e = w->e;
    for (;;) {
        dp_batch_ring_owed(w);
        pthread_mutex_lock(&e->order_lock);
        int all_decided = e->watermark == e->next_input; /* final: closed */
        int empty = w->n_inbox == 0;
        if (!all_decided && empty) pthread_cond_wait(&e->order_cond, &e->order_lock);
        pthread_mutex_unlock(&e->order_lock);
        dp_decide_send(w);
        if (all_decided && empty) break;
    }
}
