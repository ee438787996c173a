/* shard — a shard thread: batches into tables.
 *
 * A shard owns the rollups of the source IPs that hash to it.  It drains
 * the rings of every worker: a report's data goes into a pending table of
 * its own (one FIFO of them per worker), and a verdict either merges that
 * table into the shard's main table (COMMIT) or drops it.  Keys are
 * interned strings (intern.c) in an open-addressing table (table.c).  The
 * shard flushes its main table every --flush-interval and whenever it
 * passes --max-keys (flush.c).
 *
 * While the run goes on, this thread alone touches its interner, its main
 * table and its pending tables, so none of them takes a lock.
 *
 * With enrichment, the shard asks enrich/ about a source IP the first time
 * it meets it (dp_shard_note_ip): a question that never waits on the
 * network, asked once per IP, not once per record.  The id of the IP's
 * entry there goes on its rollups, and the answer is read by it at the
 * flush (flush.c).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "dp_clock.h"
#include "dp_net.h"
#include "engine_internal.h"
#include "enrich.h"

static uint32_t shard_intern(shard *sh, int k, const char *s) {
    if (!s) return 0;
    uint32_t last = sh->last_id[k];
    if (last && strcmp(dp_intern_str(&sh->strings, last), s) == 0) return last;
    uint32_t id = dp_intern_put(&sh->strings, s, strlen(s));
    if (id != UINT32_MAX) sh->last_id[k] = id;
    return id;
}

uint32_t dp_shard_note_ip(shard *sh, const uint8_t ip[16], uint8_t family) {
    const dp_engine_config *cfg = sh->e->cfg;
    if (!cfg->enrich || !family) return 0;
    /* bounded like the table: an IP met again after this only costs
     * enrich/ a look in its table */
    if (cfg->max_keys && sh->ips.n4 + sh->ips.n6 >= cfg->max_keys) dp_ipseen_clear(&sh->ips);
    int fresh;
    uint32_t *seen = dp_ipseen_put(&sh->ips, ip, family, &fresh);
    if (seen && !fresh) return *seen;
    char text[DP_IP_STRLEN];
    dp_net_format_ip(ip, family, text);
    dp_enrich_id id = dp_enrich_request(cfg->enrich, text); /* out of memory here: asked anyway */
    if (seen) *seen = id;
    return id;
}

/* Records ahead whose IP set slot is fetched early. */
#define IPSEEN_AHEAD 12

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
    dp_engine_fail(sh->e, &err);
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
        if (e->cfg->max_keys && sh->main.n > e->cfg->max_keys) dp_flush_shard(sh);
        dp_metrics_set(e->m_keys, sh->id, (double)sh->main.n);
    } else {
        pending *p = q->n ? pq_at(q, q->n - 1) : NULL;
        if (!p || p->token != b->token) p = pq_push(q, b->token);
        if (!p) {
            shard_oom(sh);
        } else {
            int enrich = e->cfg->enrich != NULL;
            for (size_t i = 0; i < b->n; i++) {
                const item *it = &b->items[i];
                /* the IP set is as large as the IPs met and read at random:
                 * its slot is fetched while this record is counted */
                if (enrich && i + IPSEEN_AHEAD < b->n)
                    dp_ipseen_prefetch(&sh->ips, b->items[i + IPSEEN_AHEAD].ip, b->items[i + IPSEEN_AHEAD].ip_family);
                dp_rollup_key key;
                memset(&key, 0, sizeof key);
                key.window_start = it->window_start;
                int oom = 0;
                for (int k = 0; k < K__STRINGS; k++) {
                    key.str[k] = shard_intern(sh, k, it->str[k] ? b->arena.data + it->str[k] : NULL);
                    oom |= key.str[k] == UINT32_MAX;
                }
                if (oom) { /* the run fails: a key with no string must not be counted */
                    shard_oom(sh);
                    break;
                }
                memcpy(key.ip, it->ip, 16);
                key.ip_family = it->ip_family;
                dp_rollup_entry *en = dp_table_upsert(&p->table, &key);
                if (!en) {
                    shard_oom(sh);
                    break;
                }
                if (en->records == 0) en->enrich_id = dp_shard_note_ip(sh, key.ip, key.ip_family); /* a new key */
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
    if (!dp_ring_push(&e->back[b->worker * e->cfg->shards + sh->id], b)) dp_batch_free(b);
}

/* How full the ring was when its consumer popped (the batch just taken
 * included), as a fraction of its slots: relaxed, a figure for a
 * histogram only. */
static double ring_fill(dp_ring *r) {
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    double f = (double)(tail - head + 1) / (double)(r->mask + 1);
    return f < 1 ? f : 1; /* the worker may have refilled the slot since */
}

/* A sleeping shard wakes at least this often, whatever happens: a safety
 * net, never the way work is noticed. */
#define IDLE_MAX_SLEEP_S 0.2

/* The shard's wake-up test, run with its bell armed: a batch waits in a
 * ring, or every worker is done. */

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

void *dp_shard_main(void *arg) {
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
                if (k == 0 && e->m_ring) dp_metrics_observe(e->m_ring, 0, ring_fill(r));
                shard_take(sh, p);
                got = 1;
            }
        }
        if (e->cfg->flush_interval > 0 && dp_clock_seconds() - sh->last_flush >= e->cfg->flush_interval) {
            dp_flush_shard(sh);
            dp_metrics_set(e->m_keys, sh->id, (double)sh->main.n);
        }
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
    /* the table is flushed by dp_flush_final(), by every thread at once */
    return NULL;
}

void dp_shard_free_pending(shard *sh, unsigned n_workers) {
    for (unsigned w = 0; sh->pending && w < n_workers; w++) pq_free(&sh->pending[w]);
    free(sh->pending);
    sh->pending = NULL;
}
