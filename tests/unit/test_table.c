/* test_table — the rollup hash table a shard owns (aggregate/table.c).
 *
 * The table is checked against what it must mean: one entry per distinct
 * key, found again whatever came in between (growth of the index and of
 * the entry array, other keys on the same probe path), measures added to
 * the right entry, and a cleared table that forgets everything.  Keys
 * differ in one field at a time, so a lookup that compared less than the
 * whole key, or trusted the index's hash bits alone, would merge two.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate_internal.h"
#include "test_util.h"

/* Key number i: distinct keys for distinct i, differing in a field that
 * depends on i (an id, the IP, the window), so neighbours share most bytes. */
static dp_rollup_key key_of(uint32_t i) {
    dp_rollup_key k;
    memset(&k, 0, sizeof k);
    k.window_start = 1700000000 + (int64_t)(i % 3) * 86400;
    for (int f = 0; f < K__STRINGS; f++) k.str[f] = 1 + (uint32_t)f;
    k.str[i % K__STRINGS] += (i / 3) << 4;
    k.ip[15] = (uint8_t)(i / 3);
    k.ip[14] = (uint8_t)((i / 3) >> 8);
    k.ip_family = 4;
    return k;
}

START_TEST(each_key_once_across_growth) {
    enum { N = 200000 };
    dp_rollup_table t;
    dp_table_init(&t);
    for (uint32_t round = 1; round <= 2; round++) {
        for (uint32_t i = 0; i < N; i++) {
            dp_rollup_key k = key_of(i);
            dp_rollup_entry *e = dp_table_upsert(&t, &k);
            ck_assert_ptr_nonnull(e);
            ck_assert(memcmp(&e->key, &k, sizeof k) == 0);
            ck_assert_uint_eq(e->records, round - 1);
            e->records++;
            e->messages += i;
        }
        ck_assert_uint_eq(t.n, N);
    }
    /* every entry holds its own key's measures: nothing merged */
    for (size_t j = 0; j < t.n; j++) ck_assert_uint_eq(t.entries[j].records, 2);
    uint64_t sum = 0;
    for (size_t j = 0; j < t.n; j++) sum += t.entries[j].messages;
    ck_assert_uint_eq(sum, 2ull * ((uint64_t)N * (N - 1) / 2));
    dp_table_free(&t);
}
END_TEST

START_TEST(one_byte_apart_is_another_key) {
    dp_rollup_table t;
    dp_table_init(&t);
    dp_rollup_key a = key_of(7), b = a, c = a, d = a;
    b.ip[0] ^= 1;
    c.str[K_SPF_RESULT] ^= 1;
    d.window_start++;
    const dp_rollup_key *keys[] = {&a, &b, &c, &d};
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 4; i++) dp_table_upsert(&t, keys[i])->messages += (uint64_t)i + 1;
    ck_assert_uint_eq(t.n, 4);
    for (int i = 0; i < 4; i++) ck_assert_uint_eq(dp_table_upsert(&t, keys[i])->messages, 3u * ((uint64_t)i + 1));
    dp_table_free(&t);
}
END_TEST

/* Keys from..to-1 into t, each with these measures. */
static void put_range(dp_rollup_table *t, uint32_t from, uint32_t to, uint64_t messages, uint32_t first_off,
                      uint32_t last_off) {
    for (uint32_t i = from; i < to; i++) {
        dp_rollup_key k = key_of(i);
        dp_rollup_entry *e = dp_table_upsert(t, &k);
        ck_assert_ptr_nonnull(e);
        e->messages = messages;
        e->records = 1;
        e->first_off = first_off;
        e->last_off = last_off;
    }
}

START_TEST(add_merges_into_the_right_entry) {
    dp_rollup_table main, report;
    dp_table_init(&main);
    dp_table_init(&report);
    put_range(&main, 0, 5000, 10, 100, 200);
    put_range(&report, 2500, 7500, 1, 50, 300); /* half known to main, half new */
    for (size_t j = 0; j < report.n; j++) ck_assert_int_eq(dp_table_add(&main, &report.entries[j]), 0);
    ck_assert_uint_eq(main.n, 7500);
    for (uint32_t i = 0; i < 7500; i++) {
        dp_rollup_key k = key_of(i);
        const dp_rollup_entry *e = dp_table_upsert(&main, &k);
        uint64_t want = i < 2500 ? 10 : i < 5000 ? 11 : 1;
        ck_assert_uint_eq(e->messages, want);
        ck_assert_uint_eq(e->first_off, i < 2500 ? 100 : 50);
        ck_assert_uint_eq(e->last_off, i < 2500 ? 200 : 300);
    }
    ck_assert_uint_eq(main.n, 7500);
    dp_table_free(&main);
    dp_table_free(&report);
}
END_TEST

START_TEST(clear_forgets_every_key) {
    dp_rollup_table t;
    dp_table_init(&t);
    for (int pass = 0; pass < 3; pass++) {
        for (uint32_t i = 0; i < 3000; i++) {
            dp_rollup_key k = key_of(i + (uint32_t)pass);
            dp_rollup_entry *e = dp_table_upsert(&t, &k);
            ck_assert_uint_eq(e->records, 0); /* new after the clear */
            e->records = 1;
        }
        ck_assert_uint_eq(t.n, 3000);
        dp_table_clear(&t, pass == 1 ? 0 : SIZE_MAX); /* keep memory, then free it */
        ck_assert_uint_eq(t.n, 0);
    }
    dp_table_free(&t);
}
END_TEST

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Two keys with the same tag and the same home slot in a new table's
 * 256-slot index (40 bits of hash alike, found among 2^22 keys: about 8
 * such pairs are expected) must still be two entries: the tag only says
 * where to look, the key decides. */
START_TEST(same_hash_bits_are_still_two_keys) {
    enum { BITS = 22, N = 1 << BITS };
    uint64_t *v = malloc((size_t)N * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (uint32_t i = 0; i < N; i++) {
        dp_rollup_key k = key_of(i);
        uint64_t h = dp_table_hash(&k);
        uint64_t forty = ((h >> 32) << 8) | (h & 255);
        v[i] = forty << BITS | i;
    }
    qsort(v, N, sizeof *v, cmp_u64);
    int64_t a = -1, b = -1;
    for (uint32_t i = 1; i < N && a < 0; i++)
        if (v[i] >> BITS == v[i - 1] >> BITS) {
            a = (int64_t)(v[i - 1] & (N - 1));
            b = (int64_t)(v[i] & (N - 1));
        }
    free(v);
    ck_assert_msg(a >= 0, "no two keys share 40 bits of hash: the test needs another key pattern");
    dp_rollup_key ka = key_of((uint32_t)a), kb = key_of((uint32_t)b);
    ck_assert_uint_eq(dp_table_hash(&ka) >> 32, dp_table_hash(&kb) >> 32);
    dp_rollup_table t;
    dp_table_init(&t);
    dp_table_upsert(&t, &ka)->messages = 1;
    dp_table_upsert(&t, &kb)->messages = 2;
    ck_assert_uint_eq(t.n, 2);
    ck_assert_uint_eq(dp_table_upsert(&t, &ka)->messages, 1);
    ck_assert_uint_eq(dp_table_upsert(&t, &kb)->messages, 2);
    dp_table_free(&t);
}
END_TEST

/* The shard's set of IPs asked about: each address once, IPv4 and IPv6
 * apart (1.2.3.4 and the IPv6 address with the same first bytes are two),
 * across growth and a clear, each keeping the id it was given. */
START_TEST(ipseen_each_ip_once) {
    dp_ipseen s;
    dp_ipseen_init(&s);
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < 20000; i++) {
            for (uint8_t fam = 4; fam <= 6; fam += 2) {
                uint8_t ip[16] = {0};
                memcpy(ip, &i, 4);
                int fresh;
                uint32_t *id = dp_ipseen_put(&s, ip, fam, &fresh);
                ck_assert_ptr_nonnull(id);
                ck_assert_int_eq(fresh, 1);
                *id = i * 2 + fam;
                id = dp_ipseen_put(&s, ip, fam, &fresh);
                ck_assert_int_eq(fresh, 0);
                ck_assert_uint_eq(*id, i * 2 + fam);
            }
        }
        ck_assert_uint_eq(s.n4 + s.n6, 40000);
        for (uint32_t i = 0; i < 20000; i += 7) {
            uint8_t ip[16] = {0};
            memcpy(ip, &i, 4);
            int fresh;
            ck_assert_uint_eq(*dp_ipseen_put(&s, ip, 4, &fresh), i * 2 + 4);
            ck_assert_uint_eq(*dp_ipseen_put(&s, ip, 6, &fresh), i * 2 + 6);
            ck_assert_int_eq(fresh, 0);
        }
        dp_ipseen_clear(&s);
        ck_assert_uint_eq(s.n4 + s.n6, 0);
    }
    int fresh;
    uint8_t none[16] = {0};
    ck_assert_ptr_null(dp_ipseen_put(&s, none, 0, &fresh));
    dp_ipseen_free(&s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("table");
    TCase *tc = tu_tcase("table");
    tcase_add_test(tc, each_key_once_across_growth);
    tcase_add_test(tc, one_byte_apart_is_another_key);
    tcase_add_test(tc, add_merges_into_the_right_entry);
    tcase_add_test(tc, clear_forgets_every_key);
    tcase_add_test(tc, same_hash_bits_are_still_two_keys);
    tcase_add_test(tc, ipseen_each_ip_once);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
