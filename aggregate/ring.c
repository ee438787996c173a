/* ring — the bounded lock-free SPSC ring; see aggregate.h.
 *
 * Memory ordering, the whole argument:
 *   push: write slots[tail]; then store tail+1 with RELEASE.
 *   pop:  load tail with ACQUIRE; if it moved past head, read slots[head];
 *         then store head+1 with RELEASE.
 *   push, when the ring looks full: load head with ACQUIRE before reusing
 *         a slot.
 * The consumer's acquire of `tail` pairs with the producer's release, so
 * the slot (and the batch it points to) is fully written before the
 * consumer sees it.  The producer's acquire of `head` pairs with the
 * consumer's release, so the consumer has finished reading a slot before
 * the producer overwrites it.  Each index is written by one thread only,
 * so its owner may read it relaxed.  Indices grow without wrapping in
 * practice (size_t, 2^64 pushes) and are masked on use.
 */
#include <stdlib.h>

#include "aggregate.h"

int dp_ring_init(dp_ring *r, size_t capacity) {
    size_t cap = 2;
    while (cap < capacity) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    r->slots = calloc(cap, sizeof *r->slots);
    if (!r->slots) return -1;
    r->mask = cap - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->tail_seen = 0;
    r->head_seen = 0;
    return 0;
}

void dp_ring_free(dp_ring *r) {
    free(r->slots);
    r->slots = NULL;
}

size_t dp_ring_capacity(const dp_ring *r) { return r->mask + 1; }

int dp_ring_push(dp_ring *r, void *item) {
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - r->head_seen > r->mask) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail - r->head_seen > r->mask) return 0; /* full */
    }
    r->slots[tail & r->mask] = item;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return 1;
}

int dp_ring_pop(dp_ring *r, void **item) {
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == r->tail_seen) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head == r->tail_seen) return 0; /* empty */
    }
    *item = r->slots[head & r->mask];
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return 1;
}

int dp_ring_ready(dp_ring *r) {
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head != r->tail_seen) return 1;
    r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
    return head != r->tail_seen;
}
