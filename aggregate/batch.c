/* batch — the unit that travels from a worker to a shard.
 *
 * A batch holds up to --batch-items window shares of one report, with
 * their strings in an arena of its own, or a list of verdicts.  A worker
 * fills it and hands it to a shard with a ring push; the shard hands it
 * back, emptied, through a second ring, and the worker reuses it: the hot
 * path allocates nothing once a run is warm.  Each worker owns its batches
 * and its free list; a shard frees a batch only when the way back is full.
 *
 * Pushing a batch may wake the shard, through its doorbell (bell.c): see
 * dp_batch_push() for when.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

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

void dp_batch_free(batch *b) {
    if (!b) return;
    dp_buf_free(&b->arena);
    free(b->items);
    free(b->decisions);
    free(b);
}

batch *dp_batch_get(worker *w) {
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
 * dp_batch_ring_owed()).  Waking a sleeping thread on another core costs
 * tens of microseconds on a VM, and the shard, faster than the worker,
 * sleeps again after every batch: one wake-up per batch was 1,400 on the
 * 256 MB bench report (with the readahead's, ~5% of the worker's samples
 * in `perf`; no change in wall time was measurable).  A shard left
 * asleep with work in its ring is never stuck: the worker rings before it
 * blocks, finishes an input or exits, and a shard wakes by itself every
 * IDLE_MAX_SLEEP_S anyway (shard.c). */
void dp_batch_push(worker *w, unsigned s, batch *b) {
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
void dp_batch_ring_owed(worker *w) {
    engine *e = w->e;
    for (unsigned s = 0; s < e->cfg->shards; s++) {
        if (!w->unrung[s]) continue;
        dp_bell_ring(&e->shards[s].bell);
        w->unrung[s] = 0;
    }
}

/* Wakes every shard: the last worker is done, so a shard's empty rings
 * now mean it can finish. */
void dp_batch_ring_all(engine *e) {
    for (unsigned s = 0; s < e->cfg->shards; s++) dp_bell_ring(&e->shards[s].bell);
}
