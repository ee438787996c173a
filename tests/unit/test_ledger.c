/* test_ledger — the ledger's records (run/ledger.c), written and read back.
 *
 * What an epoch took must come back from the ledger exactly: every
 * identity and every input key, whatever bytes a key holds, across as many
 * records as the epoch needs.  A record that is not a ledger record is
 * told apart from one that is malformed, since recovery skips the first
 * and stops at the second.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "test_util.h"

#define MAX_RECORDS 64

typedef struct captured {
    char *rec[MAX_RECORDS];
    size_t len[MAX_RECORDS];
    size_t n;
    int fail_at; /* emit fails at this record (1-based), 0: never */
} captured;

static int capture(void *ctx, const char *rec, size_t len, dp_error *err) {
    captured *c = ctx;
    if (c->fail_at && (int)c->n + 1 == c->fail_at) return dp_error_set(err, DP_ERR_IO, "sink refused the record");
    ck_assert_uint_lt(c->n, MAX_RECORDS);
    c->rec[c->n] = malloc(len);
    memcpy(c->rec[c->n], rec, len);
    c->len[c->n++] = len;
    return 0;
}

static void captured_free(captured *c) {
    for (size_t i = 0; i < c->n; i++) free(c->rec[i]);
}

static void id_of(size_t i, uint8_t id[32]) {
    for (int k = 0; k < 32; k++) id[k] = (uint8_t)(i * 31 + (size_t)k * 7 + (i >> 8));
}

START_TEST(an_epoch_comes_back_whole) {
    /* enough identities and keys for several 256 KiB records */
    enum { N_IDS = 6000, N_KEYS = 3000 };
    char **keys = calloc(N_KEYS, sizeof *keys);
    for (size_t i = 0; i < N_KEYS; i++) {
        keys[i] = tu_printf("%zu:1700000000.%09zu:/spool/in/report-%05zu.xml.gz", 1000 + i, i, i);
        if (i % 7 == 0) keys[i][strlen(keys[i]) - 4] = (char)0xff; /* not UTF-8: a path is bytes */
        if (i % 11 == 0) keys[i][strlen(keys[i]) - 5] = '"';
    }
    captured c = {0};
    dp_error err;
    dp_ledger_writer w;
    dp_ledger_begin(&w, "blue", 42, capture, &c, &err);
    for (size_t i = 0; i < N_IDS; i++) {
        uint8_t id[32];
        id_of(i, id);
        dp_ledger_add_report(&w, id);
    }
    for (size_t i = 0; i < N_KEYS; i++) dp_ledger_add_input(&w, keys[i]);
    ck_assert_int_eq(dp_ledger_end(&w), 0);
    ck_assert_uint_gt(c.n, 1); /* split into parts */

    size_t ids_seen = 0, keys_seen = 0;
    for (size_t r = 0; r < c.n; r++) {
        ck_assert_uint_le(c.len[r], DP_LEDGER_PART_BYTES + 64 * 1024);
        dp_ledger_record rec;
        ck_assert_int_eq(dp_ledger_decode(c.rec[r], c.len[r], &rec, &err), 0);
        ck_assert_str_eq(rec.instance, "blue");
        ck_assert_uint_eq(rec.epoch, 42);
        for (size_t i = 0; i < rec.n_ids; i++) {
            uint8_t want[32];
            id_of(ids_seen + i, want);
            ck_assert_mem_eq(rec.ids[i], want, 32);
        }
        for (size_t i = 0; i < rec.n_keys; i++) ck_assert_str_eq(rec.keys[i], keys[keys_seen + i]);
        ids_seen += rec.n_ids;
        keys_seen += rec.n_keys;
        dp_ledger_record_free(&rec);
    }
    ck_assert_uint_eq(ids_seen, N_IDS);
    ck_assert_uint_eq(keys_seen, N_KEYS);
    captured_free(&c);
    free(keys);
}
END_TEST

START_TEST(a_key_that_is_not_utf8_is_written_in_hex) {
    captured c = {0};
    dp_error err;
    dp_ledger_writer w;
    const char key[] = "12:1700000000.000000001:/in/caf\xe9.xml";
    dp_ledger_begin(&w, "default", 1, capture, &c, &err);
    dp_ledger_add_input(&w, key);
    dp_ledger_add_input(&w, "13:1700000000.000000002:/in/plain.xml");
    ck_assert_int_eq(dp_ledger_end(&w), 0);
    ck_assert_uint_eq(c.n, 1);
    json_error_t jerr;
    json_t *j = json_loadb(c.rec[0], c.len[0], 0, &jerr);
    ck_assert_ptr_nonnull(j);
    const char *first = json_string_value(json_array_get(json_object_get(j, "inputs"), 0));
    ck_assert_msg(first && strncmp(first, "hex:", 4) == 0, "written as %s", first ? first : "(null)");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "inputs"), 1)),
                     "13:1700000000.000000002:/in/plain.xml");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "v")), DP_LEDGER_VERSION);
    json_decref(j);
    dp_ledger_record rec;
    ck_assert_int_eq(dp_ledger_decode(c.rec[0], c.len[0], &rec, &err), 0);
    ck_assert_uint_eq(rec.n_keys, 2);
    ck_assert_str_eq(rec.keys[0], key);
    ck_assert_uint_eq(rec.n_ids, 0);
    dp_ledger_record_free(&rec);
    captured_free(&c);
}
END_TEST

START_TEST(foreign_and_malformed_records_differ) {
    dp_ledger_record rec;
    dp_error err;
    const char *foreign[] = {"not json at all", "{\"v\":1}", "[1,2,3]",
                             "{\"instance\":\"x\",\"epoch\":\"one\",\"reports\":[],\"inputs\":[]}"};
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++)
        ck_assert_int_eq(dp_ledger_decode(foreign[i], strlen(foreign[i]), &rec, &err), 1);
    const char *bad[] = {
        "{\"instance\":\"x\",\"epoch\":1,\"reports\":[\"abc\"],\"inputs\":[]}",           /* short id */
        "{\"instance\":\"x\",\"epoch\":1,\"reports\":[],\"inputs\":[\"hex:4\"]}",         /* odd hex */
        "{\"instance\":\"x\",\"epoch\":1,\"reports\":[],\"inputs\":[\"hex:00\"]}",        /* a NUL byte */
        "{\"instance\":\"x\",\"epoch\":1,\"reports\":[],\"inputs\":[7]}",                 /* not a string */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(dp_ledger_decode(bad[i], strlen(bad[i]), &rec, &err), -1);
        ck_assert_ptr_nonnull(strstr(err.msg, "malformed"));
    }
}
END_TEST

START_TEST(a_refused_record_fails_the_epoch) {
    captured c = {.fail_at = 2};
    dp_error err;
    dp_ledger_writer w;
    dp_ledger_begin(&w, "default", 3, capture, &c, &err);
    char key[600];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    for (int i = 0; i < 1200; i++) dp_ledger_add_input(&w, key); /* ~720 KiB: three records */
    ck_assert_int_eq(dp_ledger_end(&w), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "refused"));
    ck_assert_uint_eq(c.n, 1); /* nothing emitted after the refusal */
    captured_free(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ledger");
    TCase *t = tu_tcase("codec");
    tcase_add_test(t, an_epoch_comes_back_whole);
    tcase_add_test(t, a_key_that_is_not_utf8_is_written_in_hex);
    tcase_add_test(t, foreign_and_malformed_records_differ);
    tcase_add_test(t, a_refused_record_fails_the_epoch);
    suite_add_tcase(s, t);
    return tu_run(s);
}
