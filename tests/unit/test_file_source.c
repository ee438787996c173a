/* test_file_source — files and folders as a source (source/file_source.c).
 *
 *   - a batch listing: name order, recursive, dot-names and the run's own
 *     folders left out, a missing path listed (reading it says why), and
 *     keys that tell a file's versions apart;
 *   - following: a file is listed once it looks the same on two walks,
 *     an acknowledged file left in place is not listed again while it
 *     stays, and is forgotten once it is gone;
 *   - acknowledging into a done folder at the path below the SOURCE,
 *     never over an earlier file;
 *   - rejecting into the quarantine, and an input gone before it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "source.h"
#include "test_util.h"

static void mkdir_in(const char *dir, const char *name) {
    ck_assert_int_eq(mkdir(tu_printf("%s/%s", dir, name), 0755), 0);
}

static void put(const char *dir, const char *name, const char *text) {
    tu_write_file(dir, name, text, strlen(text));
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Lists once; the caller frees the list. */
static dp_input_list list(dp_source *s) {
    dp_input_list l = {0};
    dp_error err;
    ck_assert_msg(dp_source_next(s, &l, &err) == 0, "%s", err.msg);
    return l;
}

START_TEST(a_folder_is_listed_in_name_order_once) {
    const char *d = tu_tmpdir();
    mkdir_in(d, "b");
    mkdir_in(d, "out");
    put(d, "c.xml", "c");
    put(d, "a.xml", "a");
    put(d, ".hidden.xml", "h");
    put(d, "b/z.xml", "z");
    put(d, "b/.tmp", "t");
    put(d, "out/rollups.ndjson", "{}");
    char *skip[2] = {realpath(tu_printf("%s/out", d), NULL), NULL};
    dp_source_options o = {.skip = (const char *const *)skip};
    dp_error err;
    dp_source *s = dp_source_open(d, &o, &err);
    ck_assert_ptr_nonnull(s);
    dp_input_list l = list(s);
    ck_assert_uint_eq(l.n, 3);
    ck_assert_str_eq(l.v[0]->name, tu_printf("%s/a.xml", d));
    ck_assert_str_eq(l.v[1]->name, tu_printf("%s/b/z.xml", d));
    ck_assert_str_eq(l.v[2]->name, tu_printf("%s/c.xml", d));
    /* the key: size, mtime, real path */
    struct stat st;
    ck_assert_int_eq(stat(l.v[0]->name, &st), 0);
    char *real = realpath(l.v[0]->name, NULL);
    ck_assert_str_eq(l.v[0]->key, tu_printf("1:%lld.%09ld:%s", (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec, real));
    free(real);
    ck_assert_ptr_eq(l.v[0]->source, s);
    dp_input_list_free(&l);
    /* a batch source lists once */
    l = list(s);
    ck_assert_uint_eq(l.n, 0);
    dp_input_list_free(&l);
    dp_source_close(s);
    free(skip[0]);
}
END_TEST

START_TEST(a_missing_path_is_listed_and_fails_when_opened) {
    const char *d = tu_tmpdir();
    const char *gone = tu_printf("%s/no-such-file.xml", d);
    dp_error err;
    dp_source *s = dp_source_open(gone, NULL, &err);
    ck_assert_ptr_nonnull(s);
    dp_input_list l = list(s);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.v[0]->key, "");
    ck_assert_int_eq(dp_source_open_input(l.v[0], &err), -1);
    ck_assert_int_eq(err.kind, DP_ERR_INPUT); /* the input's state: rejected, not held */
    ck_assert_str_eq(err.where, gone);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open"));
    dp_input_list_free(&l);
    dp_source_close(s);
}
END_TEST

/* Sets the file's mtime `sec` seconds into the past, as a finished write. */
static void age(const char *path, int sec) {
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= sec;
    tv[1] = tv[0];
    ck_assert_int_eq(utimes(path, tv), 0);
}

START_TEST(a_follower_lists_a_file_once_it_holds_still) {
    const char *d = tu_tmpdir();
    const char *f = tu_printf("%s/r.xml", d);
    put(d, "r.xml", "first half");
    age(f, 100);
    dp_source_options o = {.follow = 1};
    dp_error err;
    dp_source *s = dp_source_open(d, &o, &err);
    dp_input_list l = list(s);
    ck_assert_uint_eq(l.n, 0); /* seen once */
    dp_input_list_free(&l);
    put(d, "r.xml", "first half, then the rest"); /* still being written */
    l = list(s);
    ck_assert_uint_eq(l.n, 0);
    dp_input_list_free(&l);
    l = list(s);
    ck_assert_uint_eq(l.n, 1); /* the same on two walks */
    ck_assert_str_eq(l.v[0]->name, f);
    /* not acknowledged: listed again */
    dp_input_list_free(&l);
    l = list(s);
    ck_assert_uint_eq(l.n, 1);
    /* acknowledged in place: not listed while it stays */
    ck_assert_int_eq(dp_source_ack(l.v[0]), 0);
    ck_assert_uint_eq(s->acked, 1);
    dp_input_list_free(&l);
    l = list(s);
    ck_assert_uint_eq(l.n, 0);
    dp_input_list_free(&l);
    /* gone, then back with other bytes: a new input */
    ck_assert_int_eq(unlink(f), 0);
    l = list(s);
    ck_assert_uint_eq(l.n, 0);
    dp_input_list_free(&l);
    put(d, "r.xml", "a new report");
    l = list(s);
    dp_input_list_free(&l);
    l = list(s);
    ck_assert_uint_eq(l.n, 1);
    dp_input_list_free(&l);
    dp_source_close(s);
}
END_TEST

START_TEST(an_ack_moves_below_the_done_folder_and_never_replaces) {
    const char *d = tu_tmpdir(), *done = tu_printf("%s/done", tu_tmpdir());
    mkdir_in(d, "sub");
    put(d, "sub/r.xml", "one");
    dp_source_options o = {.done_dir = done};
    dp_error err;
    dp_source *s = dp_source_open(d, &o, &err);
    dp_input_list l = list(s);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_int_eq(dp_source_ack(l.v[0]), 0);
    ck_assert(exists(tu_printf("%s/sub/r.xml", done)));
    ck_assert(!exists(tu_printf("%s/sub/r.xml", d)));
    /* gone already: nothing to acknowledge */
    ck_assert_int_eq(dp_source_ack(l.v[0]), 1);
    dp_input_list_free(&l);
    dp_source_close(s);
    /* the same name again: a suffix, never a replacement */
    put(d, "sub/r.xml", "two");
    s = dp_source_open(d, &o, &err);
    l = list(s);
    ck_assert_int_eq(dp_source_ack(l.v[0]), 0);
    ck_assert(exists(tu_printf("%s/sub/r.xml.1", done)));
    tu_bytes text = tu_read_file(tu_printf("%s/sub/r.xml", done));
    ck_assert_uint_eq(text.len, 3);
    ck_assert_mem_eq(text.data, "one", 3);
    ck_assert_uint_eq(s->acked, 1);
    dp_input_list_free(&l);
    dp_source_close(s);
    /* a SOURCE that is the file itself goes in under its base name */
    put(d, "single.xml", "three");
    s = dp_source_open(tu_printf("%s/single.xml", d), &o, &err);
    l = list(s);
    ck_assert_int_eq(dp_source_ack(l.v[0]), 0);
    ck_assert(exists(tu_printf("%s/single.xml", done)));
    dp_input_list_free(&l);
    dp_source_close(s);
}
END_TEST

START_TEST(a_rejection_is_quarantined_with_its_reason) {
    const char *d = tu_tmpdir(), *q = tu_printf("%s/q", tu_tmpdir());
    put(d, "bad.xml", "<feedback>");
    dp_source_options o = {.quarantine_dir = q};
    dp_error err, why;
    dp_error_set(&why, DP_ERR_XML, "unclosed token");
    dp_source *s = dp_source_open(d, &o, &err);
    dp_input_list l = list(s);
    ck_assert_int_eq(dp_source_reject(l.v[0], &why, 1, &err), 0);
    ck_assert(exists(tu_printf("%s/bad.xml", q)));
    tu_bytes reason = tu_read_file(tu_printf("%s/bad.xml.reason", q));
    ck_assert_ptr_nonnull(strstr(tu_printf("%.*s", (int)reason.len, (const char *)reason.data), "unclosed token"));
    /* gone before it could be kept: logged, and not an error */
    ck_assert_int_eq(unlink(l.v[0]->name), 0);
    ck_assert_int_eq(dp_source_reject(l.v[0], &why, 1, &err), 0);
    dp_input_list_free(&l);
    dp_source_close(s);
    /* without a quarantine, a rejection is only logged */
    put(d, "bad2.xml", "x");
    s = dp_source_open(d, NULL, &err);
    l = list(s);
    ck_assert_int_eq(dp_source_reject(l.v[0], &why, 1, &err), 0);
    dp_input_list_free(&l);
    dp_source_close(s);
}
END_TEST

START_TEST(a_source_is_picked_by_its_uri) {
    const char *d = tu_tmpdir();
    put(d, "a.xml", "a");
    dp_error err;
    dp_source *s = dp_source_open(tu_printf("file:%s", d), NULL, &err);
    ck_assert_ptr_nonnull(s);
    dp_input_list l = list(s);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.v[0]->name, tu_printf("%s/a.xml", d));
    dp_input_list_free(&l);
    dp_source_close(s);
    /* a scheme no source reads is refused, not taken for a path */
    ck_assert_ptr_null(dp_source_open("gopher://host/in/", NULL, &err));
    ck_assert_int_eq(err.kind, DP_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "gopher://host/in/"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("file_source");
    TCase *t = tu_tcase("file_source");
    tcase_add_test(t, a_folder_is_listed_in_name_order_once);
    tcase_add_test(t, a_missing_path_is_listed_and_fails_when_opened);
    tcase_add_test(t, a_follower_lists_a_file_once_it_holds_still);
    tcase_add_test(t, an_ack_moves_below_the_done_folder_and_never_replaces);
    tcase_add_test(t, a_rejection_is_quarantined_with_its_reason);
    tcase_add_test(t, a_source_is_picked_by_its_uri);
    suite_add_tcase(s, t);
    return tu_run(s);
}
