/* test_ring — the SPSC ring between a worker and a shard.
 *
 * Single-threaded tests pin the edge cases (full, empty, wrap-around,
 * capacity rounding).  The threaded tests run real producer and consumer
 * threads over tiny rings, where every push and pop races the other side;
 * they check that every item arrives once, in order, and that nothing is
 * dropped under backpressure.  They are the tests the TSan build runs.
 *
 * The bell (aggregate/bell.c) is tested the way a shard uses it: a consumer
 * that sleeps on it whenever its ring is empty, with a deadline a minute
 * away, must never reach that deadline: a lost wake-up would.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregate.h"
#include "aggregate_internal.h"
#include "test_util.h"

START_TEST(capacity_rounds_up_to_power_of_two) {
    dp_ring r;
    ck_assert_int_eq(dp_ring_init(&r, 5), 0);
    ck_assert_uint_eq(dp_ring_capacity(&r), 8);
    dp_ring_free(&r);
    ck_assert_int_eq(dp_ring_init(&r, 0), 0);
    ck_assert_uint_eq(dp_ring_capacity(&r), 2);
    dp_ring_free(&r);
}
END_TEST

START_TEST(full_and_empty) {
    dp_ring r;
    ck_assert_int_eq(dp_ring_init(&r, 4), 0);
    void *out;
    ck_assert_int_eq(dp_ring_pop(&r, &out), 0);
    for (uintptr_t i = 1; i <= 4; i++) ck_assert_int_eq(dp_ring_push(&r, (void *)i), 1);
    ck_assert_int_eq(dp_ring_push(&r, (void *)5), 0); /* full: refused, not dropped */
    for (uintptr_t i = 1; i <= 4; i++) {
        ck_assert_int_eq(dp_ring_pop(&r, &out), 1);
        ck_assert_uint_eq((uintptr_t)out, i);
    }
    ck_assert_int_eq(dp_ring_pop(&r, &out), 0);
    dp_ring_free(&r);
}
END_TEST

START_TEST(wraps_around_many_times) {
    dp_ring r;
    ck_assert_int_eq(dp_ring_init(&r, 2), 0);
    void *out;
    for (uintptr_t i = 1; i < 10000; i++) {
        ck_assert_int_eq(dp_ring_push(&r, (void *)i), 1);
        if (i % 2 == 0) {
            ck_assert_int_eq(dp_ring_pop(&r, &out), 1);
            ck_assert_uint_eq((uintptr_t)out, i - 1);
            ck_assert_int_eq(dp_ring_pop(&r, &out), 1);
            ck_assert_uint_eq((uintptr_t)out, i);
        }
    }
    dp_ring_free(&r);
}
END_TEST

/* ---- threads ------------------------------------------------------------ */

typedef struct lane {
    dp_ring ring;
    uintptr_t items;      /* how many the producer sends: 1..items */
    uintptr_t received;   /* consumer: how many arrived */
    uintptr_t out_of_order;
    uint64_t full_waits;  /* producer: times the ring was full */
} lane;

static void *producer(void *arg) {
    lane *l = arg;
    for (uintptr_t i = 1; i <= l->items; i++) {
        while (!dp_ring_push(&l->ring, (void *)i)) {
            l->full_waits++;
            sched_yield(); /* backpressure: wait, never drop */
        }
    }
    return NULL;
}

static void *consumer(void *arg) {
    lane *l = arg;
    uintptr_t expect = 1;
    while (l->received < l->items) {
        void *out;
        if (!dp_ring_pop(&l->ring, &out)) {
            sched_yield();
            continue;
        }
        if ((uintptr_t)out != expect) l->out_of_order++;
        expect = (uintptr_t)out + 1;
        l->received++;
    }
    return NULL;
}

static void run_lanes(size_t n_lanes, size_t capacity, uintptr_t items) {
    lane *lanes = calloc(n_lanes, sizeof *lanes);
    pthread_t *th = calloc(2 * n_lanes, sizeof *th);
    ck_assert_ptr_nonnull(lanes);
    for (size_t i = 0; i < n_lanes; i++) {
        ck_assert_int_eq(dp_ring_init(&lanes[i].ring, capacity), 0);
        lanes[i].items = items;
    }
    for (size_t i = 0; i < n_lanes; i++) {
        ck_assert_int_eq(pthread_create(&th[2 * i], NULL, consumer, &lanes[i]), 0);
        ck_assert_int_eq(pthread_create(&th[2 * i + 1], NULL, producer, &lanes[i]), 0);
    }
    for (size_t i = 0; i < 2 * n_lanes; i++) pthread_join(th[i], NULL);
    for (size_t i = 0; i < n_lanes; i++) {
        ck_assert_uint_eq(lanes[i].received, items);
        ck_assert_uint_eq(lanes[i].out_of_order, 0);
        void *out;
        ck_assert_int_eq(dp_ring_pop(&lanes[i].ring, &out), 0);
        dp_ring_free(&lanes[i].ring);
    }
    free(lanes);
    free(th);
}

START_TEST(one_pair_tiny_ring) { run_lanes(1, 2, 200000); }
END_TEST

START_TEST(many_pairs_tiny_rings) {
    /* 4 workers x 2 shards' worth of lanes, each its own ring: more
     * threads than cores, so pushes and pops interleave in every order */
    run_lanes(8, 4, 50000);
}
END_TEST

/* ---- the bell ---------------------------------------------------------- */

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct belled {
    dp_ring ring;
    dp_bell bell;
    uintptr_t items, received, out_of_order;
    unsigned long sleeps, timeouts;
} belled;

static int belled_has_work(void *arg) { return dp_ring_ready(&((belled *)arg)->ring); }

static void *belled_producer(void *arg) {
    belled *b = arg;
    for (uintptr_t i = 1; i <= b->items; i++) {
        while (!dp_ring_push(&b->ring, (void *)i)) sched_yield();
        dp_bell_ring(&b->bell);
        /* pause now and then, so the consumer drains the ring and sleeps */
        if (i % 7 == 0) sched_yield();
        if (i % 501 == 0) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void *belled_consumer(void *arg) {
    belled *b = arg;
    uintptr_t expect = 1;
    while (b->received < b->items) {
        void *out;
        if (!dp_ring_pop(&b->ring, &out)) {
            b->sleeps++;
            b->timeouts += (unsigned long)dp_bell_wait(&b->bell, belled_has_work, b, mono_now() + 60.0);
            continue;
        }
        if ((uintptr_t)out != expect) b->out_of_order++;
        expect = (uintptr_t)out + 1;
        b->received++;
    }
    return NULL;
}

START_TEST(bell_never_loses_a_wake_up) {
    belled b;
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(dp_ring_init(&b.ring, 4), 0);
    ck_assert_int_eq(dp_bell_init(&b.bell), 0);
    b.items = 30000;
    pthread_t c, p;
    ck_assert_int_eq(pthread_create(&c, NULL, belled_consumer, &b), 0);
    ck_assert_int_eq(pthread_create(&p, NULL, belled_producer, &b), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    ck_assert_uint_eq(b.received, b.items);
    ck_assert_uint_eq(b.out_of_order, 0);
    ck_assert_uint_eq(b.timeouts, 0);   /* every sleep ended by a ring */
    ck_assert_uint_gt(b.sleeps, 100);   /* and the consumer did sleep */
    dp_bell_free(&b.bell);
    dp_ring_free(&b.ring);
}
END_TEST

START_TEST(bell_deadline_and_ready_work) {
    belled b;
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(dp_ring_init(&b.ring, 4), 0);
    ck_assert_int_eq(dp_bell_init(&b.bell), 0);
    /* nothing pushed, nobody rings: the deadline ends the wait */
    double t0 = mono_now();
    ck_assert_int_eq(dp_bell_wait(&b.bell, belled_has_work, &b, t0 + 0.05), 1);
    ck_assert(mono_now() - t0 >= 0.045);
    /* a deadline already past returns at once */
    ck_assert_int_eq(dp_bell_wait(&b.bell, belled_has_work, &b, t0 - 1.0), 1);
    /* work already there: no sleep at all, even with a far deadline */
    ck_assert_int_eq(dp_ring_push(&b.ring, (void *)1), 1);
    t0 = mono_now();
    ck_assert_int_eq(dp_bell_wait(&b.bell, belled_has_work, &b, t0 + 60.0), 0);
    ck_assert(mono_now() - t0 < 30.0);
    dp_bell_free(&b.bell);
    dp_ring_free(&b.ring);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("single");
    tcase_add_test(tc, capacity_rounds_up_to_power_of_two);
    tcase_add_test(tc, full_and_empty);
    tcase_add_test(tc, wraps_around_many_times);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, one_pair_tiny_ring);
    tcase_add_test(tc, many_pairs_tiny_rings);
    tcase_add_test(tc, bell_never_loses_a_wake_up);
    tcase_add_test(tc, bell_deadline_and_ready_work);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
