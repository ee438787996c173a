/* enrich/ without a DNS server: the known-senders map, the LMDB cache, the
 * options refused at open, and the in-memory cap.
 */
#include <check.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enrich.h"
#include "ptr_cache.h"
#include "senders.h"

static char *scratch_dir(void) {
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/dp-enrich-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static void rm_rf(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static dp_senders *load(const char *text, dp_error *err) {
    dp_senders *s = dp_senders_new();
    if (dp_senders_load_text(s, text, strlen(text), "test.tsv", err) != 0) {
        dp_senders_free(s);
        return NULL;
    }
    return s;
}

START_TEST(test_senders_match) {
    dp_error err;
    dp_senders *s = load("# comment\n\ngoogle.com\tGoogle\thosted_mail\thttps://x.example/\n"
                         "outlook.com\tOutlook.com\thosted_mail\n"
                         "Outbound.Protection.Outlook.com.\tMicrosoft 365\thosted_mail\r\n",
                         &err);
    ck_assert_msg(s != NULL, "%s", err.msg);
    ck_assert_uint_eq(dp_senders_count(s), 3);
    const dp_senders_entry *e = dp_senders_match(s, "mail-qt0-f179.google.com");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->service, "Google");
    ck_assert_str_eq(e->type, "hosted_mail");
    ck_assert_str_eq(dp_senders_match(s, "google.com")->service, "Google");
    ck_assert_str_eq(dp_senders_match(s, "MAIL.GOOGLE.COM.")->service, "Google");
    ck_assert_ptr_null(dp_senders_match(s, "notgoogle.com"));
    ck_assert_ptr_null(dp_senders_match(s, "google.com.evil.example"));
    ck_assert_ptr_null(dp_senders_match(s, "com"));
    ck_assert_ptr_null(dp_senders_match(s, ""));
    ck_assert_str_eq(dp_senders_match(s, "mail-db5eur.outbound.protection.outlook.com")->service, "Microsoft 365");
    ck_assert_str_eq(dp_senders_match(s, "x.hotmail.outlook.com")->service, "Outlook.com");

    /* a later text wins for the same domain */
    const char *more = "google.com\tOurs\tother\n";
    ck_assert_int_eq(dp_senders_load_text(s, more, strlen(more), "user.tsv", &err), 0);
    ck_assert_str_eq(dp_senders_match(s, "mail.google.com")->service, "Ours");
    ck_assert_uint_eq(dp_senders_count(s), 3);
    dp_senders_free(s);
}
END_TEST

START_TEST(test_senders_errors) {
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"a.example\tA\tesp\nb.example\tB\n", "test.tsv:2: want DOMAIN<TAB>SERVICE<TAB>TYPE"},
        {"a.example\tA\tspam\n", "test.tsv:1: TYPE 'spam' is not one of"},
        {"# x\nbad domain.example\tA\tesp\n", "test.tsv:2: DOMAIN 'bad domain.example' is not a DNS name"},
        {"a..example\tA\tesp\n", "is not a DNS name"},
        {"a.example\t\tesp\n", "test.tsv:1: SERVICE is empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dp_error err;
        dp_senders *s = dp_senders_new();
        const char *good = "keep.example\tKeep\tother\n";
        ck_assert_int_eq(dp_senders_load_text(s, good, strlen(good), "good.tsv", &err), 0);
        ck_assert_int_eq(dp_senders_load_text(s, bad[i].text, strlen(bad[i].text), "test.tsv", &err), -1);
        ck_assert_msg(strstr(err.msg, bad[i].want), "%zu: %s", i, err.msg);
        ck_assert_ptr_null(strchr(err.msg, '\n'));
        /* nothing of the failed text went in */
        ck_assert_uint_eq(dp_senders_count(s), 1);
        ck_assert_ptr_null(dp_senders_match(s, "a.example"));
        dp_senders_free(s);
    }
    dp_error err;
    dp_senders *s = dp_senders_new();
    ck_assert_int_eq(dp_senders_load_file(s, "/nonexistent/senders.tsv", &err), -1);
    ck_assert_msg(strstr(err.msg, "/nonexistent/senders.tsv"), "%s", err.msg);
    dp_senders_free(s);
}
END_TEST

/* The embedded known_senders.tsv loads, and the longest entry wins. */
START_TEST(test_builtin_map) {
    dp_error err;
    dp_senders *s = load(dp_known_senders_data_text, &err);
    ck_assert_msg(s != NULL, "the built-in map: %s", err.msg);
    ck_assert_uint_ge(dp_senders_count(s), 20);
    ck_assert_str_eq(dp_senders_match(s, "o1.ptr1234.sendgrid.net")->service, "SendGrid");
    ck_assert_str_eq(dp_senders_match(s, "mail-eopbgr.outbound.protection.outlook.com")->service, "Microsoft 365");
    ck_assert_str_eq(dp_senders_match(s, "mail.outlook.com")->service, "Outlook.com");
    dp_senders_free(s);
}
END_TEST

START_TEST(test_cache_round_trip) {
    char *dir = scratch_dir();
    char path[128];
    snprintf(path, sizeof path, "%s/c", dir);
    dp_error err;
    dp_ptr_cache *c = dp_ptr_cache_open(path, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    dp_ptr_cache_entry in = {1e9 + 0.5, DP_RESOLVER_ANSWERED, "mail.example.com"}, out;
    ck_assert_int_eq(dp_ptr_cache_put(c, "192.0.2.1", &in, &err), 0);
    dp_ptr_cache_entry neg = {2e9, DP_RESOLVER_SERVFAIL, ""};
    ck_assert_int_eq(dp_ptr_cache_put(c, "2001:db8::1", &neg, &err), 0);
    ck_assert_int_eq(dp_ptr_cache_get(c, "192.0.2.1", &out, &err), 1); /* read within the batch */
    ck_assert_int_eq(dp_ptr_cache_commit(c, 0, &err), 0);
    dp_ptr_cache_close(c);

    c = dp_ptr_cache_open(path, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(dp_ptr_cache_get(c, "192.0.2.1", &out, &err), 1);
    ck_assert_str_eq(out.name, "mail.example.com");
    ck_assert_int_eq(out.status, DP_RESOLVER_ANSWERED);
    ck_assert(out.expires > 1e9 && out.expires < 1e9 + 1);
    ck_assert_int_eq(dp_ptr_cache_get(c, "2001:db8::1", &out, &err), 1);
    ck_assert_int_eq(out.status, DP_RESOLVER_SERVFAIL);
    ck_assert_str_eq(out.name, "");
    ck_assert_int_eq(dp_ptr_cache_get(c, "192.0.2.99", &out, &err), 0);
    /* a batch not committed is lost, not half-written */
    ck_assert_int_eq(dp_ptr_cache_put(c, "192.0.2.2", &in, &err), 0);
    dp_ptr_cache_close(c);
    c = dp_ptr_cache_open(path, &err);
    ck_assert_int_eq(dp_ptr_cache_get(c, "192.0.2.2", &out, &err), 0);
    dp_ptr_cache_close(c);

    /* a value that does not parse is a miss */
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &t), 0);
    ck_assert_int_eq(mdb_dbi_open(t, NULL, 0, &dbi), 0);
    const char *bad[] = {"garbage", "12 answered -", "12 nonsense x", "x answered a.example"};
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "10.0.0.%d", i);
        MDB_val k = {strlen(key), key}, v = {strlen(bad[i]), (void *)(uintptr_t)bad[i]};
        ck_assert_int_eq(mdb_put(t, dbi, &k, &v, 0), 0);
    }
    ck_assert_int_eq(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    c = dp_ptr_cache_open(path, &err);
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "10.0.0.%d", i);
        ck_assert_msg(dp_ptr_cache_get(c, key, &out, &err) == 0, "'%s' read as an entry", bad[i]);
    }
    dp_ptr_cache_close(c);
    rm_rf(dir);
}
END_TEST

/* A cache that is no LMDB file: a warning, and the object works without. */
START_TEST(test_corrupt_cache) {
    char *dir = scratch_dir();
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 5000; i++) fputs("not an lmdb file ", f);
    fclose(f);
    FILE *logf = tmpfile();
    dp_log *log = dp_log_new(logf, DP_LOG_INFO, DP_LOG_PLAIN);
    dp_enrich_config c;
    dp_enrich_config_default(&c);
    c.resolver = "127.0.0.1:9";
    c.cache_dir = dir;
    c.log = log;
    c.query_timeout = 0.2;
    dp_error err;
    dp_enrich *e = dp_enrich_open(&c, &err);
    ck_assert_msg(e != NULL, "%s", err.msg);
    dp_enrich_request(e, "192.0.2.1");
    ck_assert_int_eq(dp_enrich_settle(e, 10), 0);
    dp_enrich_close(e);
    fflush(logf);
    rewind(logf);
    char line[1024];
    int said = 0;
    while (fgets(line, sizeof line, logf)) said += strstr(line, "memory only") != NULL;
    ck_assert_int_eq(said, 1);
    dp_log_free(log);
    fclose(logf);
    rm_rf(dir);
}
END_TEST

START_TEST(test_open_refuses) {
    static const struct {
        const char *resolver, *asn, *senders, *want;
    } bad[] = {
        {"dns.example:53", NULL, NULL, "dns.example:53: the resolver is not HOST:PORT"},
        {"", NULL, NULL, "the resolver is not"},
        {NULL, "/nonexistent/asn.mmdb", NULL, "/nonexistent/asn.mmdb: the ASN database"},
        {NULL, NULL, "/nonexistent/s.tsv", "/nonexistent/s.tsv: cannot open"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dp_enrich_config c;
        dp_enrich_config_default(&c);
        c.resolver = bad[i].resolver;
        c.geoip_asn = bad[i].asn;
        const char *files[1] = {bad[i].senders};
        if (bad[i].senders) {
            c.senders_files = files;
            c.n_senders_files = 1;
        }
        dp_error err;
        ck_assert_ptr_null(dp_enrich_open(&c, &err));
        ck_assert_msg(strstr(err.msg, bad[i].want), "%zu: %s", i, err.msg);
    }
    /* a file that is no MMDB */
    char *dir = scratch_dir();
    char path[128];
    snprintf(path, sizeof path, "%s/x.mmdb", dir);
    FILE *f = fopen(path, "w");
    fputs("nothing", f);
    fclose(f);
    dp_enrich_config c;
    dp_enrich_config_default(&c);
    c.ptr = 0;
    c.geoip_country = path;
    dp_error err;
    ck_assert_ptr_null(dp_enrich_open(&c, &err));
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "country"), "%s", err.msg);
    rm_rf(dir);
    /* IPv6 resolver form is accepted */
    dp_enrich_config_default(&c);
    c.resolver = "[::1]:5353";
    dp_enrich *e = dp_enrich_open(&c, &err);
    ck_assert_msg(e != NULL, "%s", err.msg);
    dp_enrich_close(e);
}
END_TEST

/* A get's strings are copied into the arena, all of them at once. */
START_TEST(test_arena_strings) {
    dp_enrich_config c;
    dp_enrich_config_default(&c);
    c.ptr = 0;
    dp_error err;
    dp_enrich *e = dp_enrich_open(&c, &err);
    ck_assert_ptr_nonnull(e);
    dp_buf arena = DP_BUF_INIT;
    dp_source_info s;
    dp_enrich_get(e, "192.0.2.1", &s, &arena);
    ck_assert_ptr_null(s.ptr);
    ck_assert_ptr_null(s.as_org);
    ck_assert_uint_eq(s.asn, 0);
    ck_assert_int_eq(dp_enrich_settle(e, 0), 0);
    dp_buf_free(&arena);
    dp_enrich_close(e);
    dp_enrich_close(NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("enrich_unit");
    TCase *tc = tcase_create("unit");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_senders_match);
    tcase_add_test(tc, test_senders_errors);
    tcase_add_test(tc, test_builtin_map);
    tcase_add_test(tc, test_cache_round_trip);
    tcase_add_test(tc, test_corrupt_cache);
    tcase_add_test(tc, test_open_refuses);
    tcase_add_test(tc, test_arena_strings);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
