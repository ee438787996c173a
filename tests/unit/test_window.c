/* test_window — spreading a record's count over UTC windows, exactly. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregate.h"
#include "test_util.h"

#define DAY 86400
#define HOUR 3600
/* 2018-10-02 00:00:00 UTC, a day boundary */
#define D0 1538438400

static uint64_t total(const dp_window_share *s, size_t n) {
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t += s[i].count;
    return t;
}

START_TEST(one_day_inclusive_end_stays_in_its_day) {
    dp_window_share s[4];
    /* Google style: end is the last second of the day */
    ck_assert_uint_eq(dp_window_split(D0, D0 + DAY - 1, 7, DAY, s, 4), 1);
    ck_assert_int_eq(s[0].window_start, D0);
    ck_assert_uint_eq(s[0].count, 7);
    /* others: end is the first second of the next day */
    ck_assert_uint_eq(dp_window_split(D0, D0 + DAY, 7, DAY, s, 4), 1);
    ck_assert_uint_eq(s[0].count, 7);
}
END_TEST

START_TEST(range_split_in_proportion) {
    dp_window_share s[4];
    /* 22:00 to 22:00 next day (ikea.com's range): 2 h then 22 h */
    ck_assert_uint_eq(dp_window_split(D0 - 2 * HOUR, D0 + DAY - 2 * HOUR, 1200, DAY, s, 4), 2);
    ck_assert_int_eq(s[0].window_start, D0 - DAY);
    ck_assert_uint_eq(s[0].count, 100);
    ck_assert_int_eq(s[1].window_start, D0);
    ck_assert_uint_eq(s[1].count, 1100);
}
END_TEST

START_TEST(remainders_are_exact_and_deterministic) {
    dp_window_share a[8], b[8];
    /* 3 equal days, 10 messages: 3.33 each; the shares sum to 10 and
     * differ by at most one */
    size_t n = dp_window_split(D0, D0 + 3 * DAY, 10, DAY, a, 8);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(total(a, n), 10);
    for (size_t i = 0; i < n; i++) ck_assert(a[i].count == 3 || a[i].count == 4);
    ck_assert_uint_eq(dp_window_split(D0, D0 + 3 * DAY, 10, DAY, b, 8), 3);
    for (size_t i = 0; i < n; i++) ck_assert_uint_eq(a[i].count, b[i].count);
    /* one message over two days: it lands in exactly one of them */
    n = dp_window_split(D0, D0 + 2 * DAY, 1, DAY, a, 8);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(a[0].count + a[1].count, 1);
}
END_TEST

START_TEST(huge_count_does_not_overflow) {
    dp_window_share s[8];
    size_t n = dp_window_split(D0, D0 + 7 * DAY, UINT64_MAX, DAY, s, 8);
    ck_assert_uint_eq(n, 7);
    ck_assert_uint_eq(total(s, n), UINT64_MAX);
}
END_TEST

START_TEST(degenerate_and_negative_ranges) {
    dp_window_share s[4];
    /* end <= begin: the one second at begin */
    ck_assert_uint_eq(dp_window_split(D0 + 5, D0 + 5, 9, DAY, s, 4), 1);
    ck_assert_int_eq(s[0].window_start, D0);
    ck_assert_uint_eq(s[0].count, 9);
    /* before 1970: windows still start on multiples of the width */
    ck_assert_uint_eq(dp_window_split(-DAY - 10, -DAY + 10, 4, DAY, s, 4), 2);
    ck_assert_int_eq(s[0].window_start, -2 * DAY);
    ck_assert_int_eq(s[1].window_start, -DAY);
    ck_assert_uint_eq(s[0].count, 2);
    ck_assert_uint_eq(s[1].count, 2);
}
END_TEST

START_TEST(too_little_room_reports_the_need) {
    dp_window_share s[2];
    ck_assert_uint_eq(dp_window_split(D0, D0 + 30 * DAY, 5, HOUR, s, 2), 30 * 24);
}
END_TEST

/* Any int64 range is safe: no overflow (UBSan watches), and the shares
 * sum to the count whenever the windows fit in the room given. */
START_TEST(extreme_ranges_sum_to_the_count) {
    const int64_t ends[] = {INT64_MIN, INT64_MIN + 1, -DAY, -1, 0, 1, D0, INT64_MAX - DAY, INT64_MAX - HOUR - 1,
                            INT64_MAX - 1, INT64_MAX, 9223372036854700000};
    const uint64_t counts[] = {0, 1, 5, 1000, UINT64_MAX};
    const int64_t widths[] = {HOUR, DAY};
    dp_window_share s[64];
    size_t n_ends = sizeof ends / sizeof *ends;
    for (size_t a = 0; a < n_ends; a++)
        for (size_t b = 0; b < n_ends; b++)
            for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
                for (size_t w = 0; w < 2; w++) {
                    size_t n = dp_window_split(ends[a], ends[b], counts[c], widths[w], s, 64);
                    if (n == 0 || n > 64) continue; /* none representable, or more than the room */
                    ck_assert_msg(total(s, n) == counts[c], "[%lld, %lld) count %llu width %lld: sum %llu",
                                  (long long)ends[a], (long long)ends[b], (unsigned long long)counts[c],
                                  (long long)widths[w], (unsigned long long)total(s, n));
                    for (size_t i = 0; i < n; i++) {
                        ck_assert_int_eq(s[i].window_start % widths[w], 0);
                        if (i) ck_assert_int_eq(s[i].window_start - s[i - 1].window_start, widths[w]);
                    }
                }
    /* the two inflations that wrapping once made possible */
    ck_assert_uint_eq(dp_window_split(INT64_MAX, INT64_MAX, 5, DAY, s, 64), 1);
    ck_assert_uint_eq(s[0].count, 5);
    size_t n = dp_window_split(9223372036854700000, INT64_MAX, 1000, HOUR, s, 64);
    ck_assert_uint_le(n, 64);
    ck_assert_uint_eq(total(s, n), 1000);
}
END_TEST

/* Against exact rational arithmetic: each share is within one message of
 * count*overlap/length, and the shares sum to count, for random ranges. */
START_TEST(random_ranges_match_exact_proportions) {
    uint64_t state = 42;
    dp_window_share *s = malloc(1000 * sizeof *s);
    for (int iter = 0; iter < 20000; iter++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int64_t begin = D0 + (int64_t)(state >> 40) % (10 * DAY);
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int64_t end = begin + (int64_t)((state >> 33) % (9 * DAY));
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t count = state >> (state & 63);
        int64_t width = (iter & 1) ? DAY : HOUR;
        size_t n = dp_window_split(begin, end, count, width, s, 1000);
        ck_assert_uint_le(n, 1000);
        ck_assert_uint_eq(total(s, n), count);
        int64_t stop = end > begin ? end : begin + 1;
        for (size_t i = 0; i < n; i++) {
            int64_t lo = s[i].window_start > begin ? s[i].window_start : begin;
            int64_t hi = s[i].window_start + width < stop ? s[i].window_start + width : stop;
            unsigned __int128 exact_num = (unsigned __int128)count * (uint64_t)(hi - lo);
            uint64_t len = (uint64_t)(stop - begin);
            uint64_t fl = (uint64_t)(exact_num / len);
            ck_assert(s[i].count == fl || s[i].count == fl + 1);
        }
    }
    free(s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("split");
    tcase_set_timeout(tc, 120); /* shared CI machines are slow at times */
    tcase_add_test(tc, one_day_inclusive_end_stays_in_its_day);
    tcase_add_test(tc, range_split_in_proportion);
    tcase_add_test(tc, remainders_are_exact_and_deterministic);
    tcase_add_test(tc, huge_count_does_not_overflow);
    tcase_add_test(tc, degenerate_and_negative_ranges);
    tcase_add_test(tc, too_little_room_reports_the_need);
    tcase_add_test(tc, extreme_ranges_sum_to_the_count);
    tcase_add_test(tc, random_ranges_match_exact_proportions);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
