/* test_ring — the SPSC ring between a worker and a shard.
 *
 * Single-threaded tests pin the edge cases (full, empty, wrap-around,
 * capacity rounding).  The threaded tests run real producer and consumer
 * threads over tiny rings, where every push and pop races the other side;
 * they check that every item arrives once, in order, and that nothing is
 * dropped under backpressure.  They are the tests the TSan build runs.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregate.h"

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
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
