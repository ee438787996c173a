/* test_quarantine — a rejected input is kept byte for byte with a JSON
 * NAME.reason beside it, an earlier copy is never overwritten, the same
 * rejection again (same bytes, input path and errors) is kept once, and
 * rejections of same-named inputs on several threads at once each keep
 * their own reason beside their own copy. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static dp_error make_error(dp_errkind kind, const char *where, int has_offset, uint64_t offset, const char *msg) {
    dp_error e;
    dp_error_set(&e, kind, "%s", msg);
    dp_error_set_where(&e, where);
    if (has_offset) dp_error_set_offset(&e, offset);
    return e;
}

static const unsigned char INPUT[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0xff, 0x00, 'x', '\n', '\r', 0x80, 0xfe};

START_TEST(copies_byte_for_byte_with_reason) {
    const char *dir = tu_tmpdir();
    const char *in = tu_write_file(dir, "bad!report!1!2.xml.gz", INPUT, sizeof INPUT);
    const char *qdir = tu_printf("%s/q/nested", dir); /* created, parents too */
    dp_error errs[2] = {
        make_error(DP_ERR_UNWRAP, "bad.xml.gz!inner", 1, 1234, "corrupt gzip \"stream\"\\ \xff"),
        make_error(DP_ERR_XML, "bad.xml.gz!other", 0, 0, "line one\nline two"),
    };
    char as[4096] = "";
    dp_error err;
    ck_assert_int_eq(dp_quarantine_file(qdir, in, errs, 2, as, &err), 0);
    ck_assert_str_eq(as, tu_printf("%s/bad!report!1!2.xml.gz", qdir));

    tu_bytes copy = tu_read_file(as);
    ck_assert_uint_eq(copy.len, sizeof INPUT);
    ck_assert_int_eq(memcmp(copy.data, INPUT, sizeof INPUT), 0);

    tu_bytes reason = tu_read_file(tu_printf("%s.reason", as));
    const char *r = (const char *)reason.data;
    ck_assert_int_eq(r[0], '{');
    tu_assert_contains(r, tu_printf("\"input\":\"%s\"", in));
    tu_assert_contains(r, "\"quarantined_at\":");
    /* the first error, flat */
    tu_assert_contains(r, "\"error\":\"corrupt gzip \\\"stream\\\"\\\\ \xEF\xBF\xBD\"");
    tu_assert_contains(r, "\"stage\":\"unwrap\"");
    tu_assert_contains(r, "\"offset\":1234");
    tu_assert_contains(r, "\"part\":\"bad.xml.gz!inner\"");
    /* and all of them */
    tu_assert_contains(r, "\"errors\":[{\"part\":\"bad.xml.gz!inner\",\"stage\":\"unwrap\",\"offset\":1234,");
    tu_assert_contains(r, "{\"part\":\"bad.xml.gz!other\",\"stage\":\"xml\",\"offset\":null,"
                          "\"error\":\"line one line two\"}]");
    /* one line of JSON */
    ck_assert_ptr_eq(strchr(r, '\n'), r + reason.len - 1);
}
END_TEST

START_TEST(never_overwrites) {
    const char *dir = tu_tmpdir();
    const char *in = tu_write_file(dir, "r.xml", "first", 5);
    const char *q = tu_printf("%s/q", dir);
    dp_error e1 = make_error(DP_ERR_VALIDATE, "r.xml", 0, 0, "first reason");
    char as1[4096], as2[4096], as3[4096];
    dp_error err;
    ck_assert_int_eq(dp_quarantine_file(q, in, &e1, 1, as1, &err), 0);
    in = tu_write_file(dir, "r.xml", "second", 6);
    dp_error e2 = make_error(DP_ERR_LIMIT, "r.xml", 1, 7, "second reason");
    ck_assert_int_eq(dp_quarantine_file(q, in, &e2, 1, as2, &err), 0);
    /* the same bytes rejected for another reason: a copy of their own */
    dp_error e3 = make_error(DP_ERR_LIMIT, "r.xml", 1, 8, "second reason");
    ck_assert_int_eq(dp_quarantine_file(q, in, &e3, 1, as3, &err), 0);

    ck_assert_str_eq(as1, tu_printf("%s/r.xml", q));
    ck_assert_str_eq(as2, tu_printf("%s/r.xml.1", q));
    ck_assert_str_eq(as3, tu_printf("%s/r.xml.2", q));
    ck_assert_str_eq((const char *)tu_read_file(as1).data, "first");
    ck_assert_str_eq((const char *)tu_read_file(as2).data, "second");
    tu_assert_contains((const char *)tu_read_file(tu_printf("%s.reason", as1)).data, "first reason");
    tu_assert_contains((const char *)tu_read_file(tu_printf("%s.reason", as2)).data, "second reason");
    tu_assert_contains((const char *)tu_read_file(tu_printf("%s.reason", as2)).data, "\"stage\":\"limit\"");
}
END_TEST

/* An epoch run again, a restart after a crash, a second run over the same
 * folder: the same rejection is kept once and its reason rewritten; a
 * change in the bytes, the input path or the errors is a new copy. */
START_TEST(same_rejection_is_kept_once) {
    const char *dir = tu_tmpdir();
    const char *q = tu_printf("%s/q", dir);
    const char *in = tu_write_file(dir, "r.xml.gz", INPUT, sizeof INPUT);
    dp_error two[2] = {
        make_error(DP_ERR_UNWRAP, "r.xml.gz!a", 1, 5, "truncated"),
        make_error(DP_ERR_XML, "r.xml.gz!b", 0, 0, "not well-formed"),
    };
    char as1[4096], as2[4096], as3[4096], as4[4096], as5[4096];
    dp_error err;
    ck_assert_int_eq(dp_quarantine_file(q, in, two, 2, as1, &err), 0);
    /* an old time in the reason: rewriting it must not matter */
    const char *rpath = tu_printf("%s.reason", as1);
    const char *old = (const char *)tu_read_file(rpath).data;
    const char *t = strstr(old, "\"quarantined_at\":");
    ck_assert_ptr_nonnull(t);
    t = strchr(t, ':') + 1;
    size_t digits = strspn(t, "0123456789");
    const char *aged = tu_printf("%.*s12%s", (int)(t - old), old, t + digits);
    tu_write_file(dir, "q/r.xml.gz.reason", aged, strlen(aged));

    ck_assert_int_eq(dp_quarantine_file(q, in, two, 2, as2, &err), 0);
    ck_assert_str_eq(as2, as1);
    tu_assert_contains((const char *)tu_read_file(rpath).data, "\"errors\":[{\"part\":\"r.xml.gz!a\"");
    ck_assert_ptr_null(strstr((const char *)tu_read_file(rpath).data, "\"quarantined_at\":12,"));
    ck_assert_int_ne(access(tu_printf("%s/r.xml.gz.1", q), F_OK), 0);

    /* fewer errors: another rejection */
    ck_assert_int_eq(dp_quarantine_file(q, in, two, 1, as3, &err), 0);
    ck_assert_str_eq(as3, tu_printf("%s/r.xml.gz.1", q));
    /* the same bytes and errors from another path */
    const char *other = tu_printf("%s/sub", dir);
    ck_assert_int_eq(mkdir(other, 0755), 0);
    const char *in2 = tu_write_file(other, "r.xml.gz", INPUT, sizeof INPUT);
    ck_assert_int_eq(dp_quarantine_file(q, in2, two, 2, as4, &err), 0);
    ck_assert_str_eq(as4, tu_printf("%s/r.xml.gz.2", q));
    /* other bytes (one flipped, same length) under the first path */
    unsigned char flipped[sizeof INPUT];
    memcpy(flipped, INPUT, sizeof INPUT);
    flipped[sizeof INPUT - 1] ^= 1;
    tu_write_file(dir, "r.xml.gz", flipped, sizeof flipped);
    ck_assert_int_eq(dp_quarantine_file(q, in, two, 2, as5, &err), 0);
    ck_assert_str_eq(as5, tu_printf("%s/r.xml.gz.3", q));
    tu_bytes c = tu_read_file(as5);
    ck_assert_int_eq(memcmp(c.data, flipped, sizeof flipped), 0);
    /* and the first copy still holds the first bytes */
    c = tu_read_file(as1);
    ck_assert_int_eq(memcmp(c.data, INPUT, sizeof INPUT), 0);
}
END_TEST

START_TEST(works_without_output_path_and_with_no_errors) {
    const char *dir = tu_tmpdir();
    const char *in = tu_write_file(dir, "x", "", 0);
    dp_error err;
    ck_assert_int_eq(dp_quarantine_file(tu_printf("%s/q", dir), in, NULL, 0, NULL, &err), 0);
    struct stat st;
    ck_assert_int_eq(stat(tu_printf("%s/q/x", dir), &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    const char *r = (const char *)tu_read_file(tu_printf("%s/q/x.reason", dir)).data;
    tu_assert_contains(r, "\"error\":\"unknown\"");
    tu_assert_contains(r, "\"errors\":[]");
}
END_TEST

START_TEST(missing_input_is_io_error) {
    const char *dir = tu_tmpdir();
    dp_error e = make_error(DP_ERR_IO, "gone", 0, 0, "gone");
    dp_error err;
    char as[4096];
    ck_assert_int_eq(dp_quarantine_file(tu_printf("%s/q", dir), tu_printf("%s/gone.xml", dir), &e, 1, as, &err), -1);
    ck_assert_int_eq(err.kind, DP_ERR_IO);
    /* no half-made copy is left behind */
    ck_assert_int_ne(access(tu_printf("%s/q/gone.xml", dir), F_OK), 0);
}
END_TEST

START_TEST(quarantine_of_a_real_rejection) {
    /* the flow `dmarcpipe parse --quarantine` uses: the rejection's error
     * (where, stage, offset) goes into the reason */
    const char *dir = tu_tmpdir();
    tu_bytes gz = tu_gzip(TU_TWO, strlen(TU_TWO));
    const char *in = tu_write_file(dir, "cut.xml.gz", gz.data, gz.len / 2);
    tu_collect *c = tu_ingest_file(NULL, in);
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->n_fails, 1);
    char as[4096];
    dp_error err;
    ck_assert_int_eq(dp_quarantine_file(tu_printf("%s/q", dir), in, &c->fails[0].err, 1, as, &err), 0);
    tu_bytes copy = tu_read_file(as);
    ck_assert_uint_eq(copy.len, gz.len / 2);
    ck_assert_int_eq(memcmp(copy.data, gz.data, copy.len), 0);
    const char *r = (const char *)tu_read_file(tu_printf("%s.reason", as)).data;
    tu_assert_contains(r, "\"stage\":\"unwrap\"");
    tu_assert_contains(r, tu_printf("\"part\":\"%s\"", in));
}
END_TEST

/* Workers reject inputs of the same base name (copy-1/x.xml, copy-2/x.xml)
 * at the same moment: each must get a name of its own, its reason beside
 * its copy, and none may fail. */
#define RACE_THREADS 6
#define RACE_FILES 25
typedef struct race_arg {
    const char *q;
    char paths[RACE_FILES][512];
    int failures;
} race_arg;

static void *race_quarantine(void *p) {
    race_arg *a = p;
    for (int i = 0; i < RACE_FILES; i++) {
        FILE *f = fopen(a->paths[i], "rb");
        char content[64] = "";
        if (!f || !fgets(content, sizeof content, f)) a->failures++;
        if (f) fclose(f);
        dp_error e = make_error(DP_ERR_VALIDATE, a->paths[i], 0, 0, content);
        dp_error err;
        if (dp_quarantine_file(a->q, a->paths[i], &e, 1, NULL, &err) != 0) a->failures++;
    }
    return NULL;
}

START_TEST(same_names_on_many_threads) {
    const char *dir = tu_tmpdir();
    const char *q = tu_printf("%s/q", dir);
    static race_arg args[RACE_THREADS];
    for (int t = 0; t < RACE_THREADS; t++) {
        args[t].q = q;
        args[t].failures = 0;
        for (int i = 0; i < RACE_FILES; i++) {
            const char *sub = tu_printf("%s/copy-%d-%d", dir, t, i);
            ck_assert_int_eq(mkdir(sub, 0700), 0);
            const char *content = tu_printf("content-%d-%d", t, i);
            const char *path = tu_write_file(sub, "same.xml", content, strlen(content));
            snprintf(args[t].paths[i], sizeof args[t].paths[i], "%s", path);
        }
    }
    pthread_t th[RACE_THREADS];
    for (int t = 0; t < RACE_THREADS; t++) ck_assert_int_eq(pthread_create(&th[t], NULL, race_quarantine, &args[t]), 0);
    for (int t = 0; t < RACE_THREADS; t++) {
        pthread_join(th[t], NULL);
        ck_assert_int_eq(args[t].failures, 0);
    }
    /* every copy has its own reason: the reason names the copy's content */
    DIR *d = opendir(q);
    ck_assert_ptr_nonnull(d);
    int copies = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || strstr(de->d_name, ".reason")) continue;
        const char *copy = tu_printf("%s/%s", q, de->d_name);
        const char *content = (const char *)tu_read_file(copy).data;
        tu_assert_contains((const char *)tu_read_file(tu_printf("%s.reason", copy)).data,
                           tu_printf("\"error\":\"%s\"", content));
        copies++;
    }
    closedir(d);
    ck_assert_int_eq(copies, RACE_THREADS * RACE_FILES);
}
END_TEST

int main(void) {
    Suite *s = suite_create("quarantine");
    TCase *tc = tu_tcase("quarantine");
    tcase_add_test(tc, copies_byte_for_byte_with_reason);
    tcase_add_test(tc, never_overwrites);
    tcase_add_test(tc, same_rejection_is_kept_once);
    tcase_add_test(tc, works_without_output_path_and_with_no_errors);
    tcase_add_test(tc, missing_input_is_io_error);
    tcase_add_test(tc, quarantine_of_a_real_rejection);
    tcase_add_test(tc, same_names_on_many_threads);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
