/* bell — how a shard with nothing to do sleeps, and how a worker wakes it.
 *
 * A shard whose rings are all empty used to poll: yield, then sleep 50 us
 * doubling to 1 ms.  With one batch every few milliseconds that is a dozen
 * wake-ups per batch, each a trip through the kernel (and, on a VM, the
 * hypervisor), stealing time from the worker on the next core.  Now it
 * sleeps on its bell until a worker has pushed something, or a deadline.
 *
 * The lost-wake-up argument (a Dekker pair of sequentially consistent
 * fences):
 *   consumer (dp_bell_wait):  sleeping = 1; FENCE; look at the rings;
 *                             sleep only if they were empty.
 *   producer (dp_bell_ring):  push (tail stored, release); FENCE;
 *                             look at `sleeping`; signal if it is set.
 * With a seq_cst fence on each side, at least one side sees the other's
 * store: either the consumer sees the item and does not sleep, or the
 * producer sees `sleeping` and signals.  The consumer holds the mutex from
 * before it sets `sleeping` until pthread_cond_timedwait() releases it, and
 * the producer signals under that mutex, so the signal cannot fall between
 * the consumer's look and its wait.  Ringing a bell nobody sleeps on costs
 * one fence and one load, which is the common case under load.
 */
#include <errno.h>
#include <time.h>

#include "aggregate_internal.h"

int dp_bell_init(dp_bell *b) {
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) return -1;
    /* deadlines are CLOCK_MONOTONIC, immune to the wall clock being set */
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(&b->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) return -1;
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        pthread_cond_destroy(&b->cond);
        return -1;
    }
    atomic_init(&b->sleeping, 0);
    return 0;
}

void dp_bell_free(dp_bell *b) {
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
}

void dp_bell_ring(dp_bell *b) {
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&b->sleeping, memory_order_relaxed)) return;
    pthread_mutex_lock(&b->lock);
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

int dp_bell_wait(dp_bell *b, int (*has_work)(void *ctx), void *ctx, double deadline) {
    int timed_out = 0;
    pthread_mutex_lock(&b->lock);
    atomic_store_explicit(&b->sleeping, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    if (!has_work(ctx)) {
        struct timespec ts;
        ts.tv_sec = (time_t)deadline; /* positive: truncation is floor */
        ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
        /* one wait: a spurious wake-up only sends the caller round its
         * loop, which looks at the rings again */
        timed_out = pthread_cond_timedwait(&b->cond, &b->lock, &ts) == ETIMEDOUT;
    }
    atomic_store_explicit(&b->sleeping, 0, memory_order_relaxed);
    pthread_mutex_unlock(&b->lock);
    return timed_out;
}
