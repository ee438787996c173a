/* test_fs — moving an acknowledged input (common/dp_fs.c: dp_fs_move).
 *
 * `dmarcpipe run --done DIR` moves each counted input there.  A move must
 * never lose a file: not the input (its bytes arrive whole before it is
 * removed, also across file systems, where rename(2) cannot go), and not an
 * earlier file of the same name in DIR (the new one gets a suffix).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_fs.h"
#include "test_util.h"

static char *make_dir(const char *base) {
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/dp-test-fs-XXXXXX", base);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The file's bytes (static buffer), or NULL when it does not exist. */
static const char *get(const char *path) {
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void rm_rf(const char *dir) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int files_in(const char *dir) {
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "find '%s' -type f | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

START_TEST(moves_into_new_folders) {
    char *d = make_dir("/tmp");
    char src[PATH_MAX], dst[PATH_MAX], used[PATH_MAX];
    snprintf(src, sizeof src, "%s/in.xml", d);
    snprintf(dst, sizeof dst, "%s/done/a/b/in.xml", d);
    put(src, "report one");
    ck_assert_int_eq(dp_fs_move(src, dst, used), 0);
    ck_assert_str_eq(used, dst);
    ck_assert_str_eq(get(dst), "report one");
    ck_assert_ptr_null(get(src));
    rm_rf(d);
    free(d);
}
END_TEST

START_TEST(never_replaces_a_file) {
    char *d = make_dir("/tmp");
    char src[PATH_MAX], dst[PATH_MAX], used[PATH_MAX], want[PATH_MAX + 4];
    snprintf(dst, sizeof dst, "%s/done/in.xml", d);
    snprintf(src, sizeof src, "%s/in.xml", d);
    for (int i = 0; i < 3; i++) {
        char text[32];
        snprintf(text, sizeof text, "copy %d", i);
        put(src, text);
        ck_assert_int_eq(dp_fs_move(src, dst, used), 0);
        if (i) snprintf(want, sizeof want, "%s.%d", dst, i);
        else snprintf(want, sizeof want, "%s", dst);
        ck_assert_str_eq(used, want);
    }
    ck_assert_str_eq(get(dst), "copy 0");
    snprintf(want, sizeof want, "%s.1", dst);
    ck_assert_str_eq(get(want), "copy 1");
    snprintf(want, sizeof want, "%s.2", dst);
    ck_assert_str_eq(get(want), "copy 2");
    ck_assert_int_eq(files_in(d), 3);
    rm_rf(d);
    free(d);
}
END_TEST

/* /dev/shm is tmpfs: where /tmp is another file system, rename(2) fails
 * with EXDEV there, and the bytes must be copied, then the input removed. */
START_TEST(across_file_systems) {
    struct stat a, b;
    if (stat("/dev/shm", &a) != 0 || stat("/tmp", &b) != 0 || a.st_dev == b.st_dev) {
        fprintf(stderr, "test_fs: /dev/shm and /tmp are one file system here: EXDEV not exercised\n");
        return;
    }
    char *from = make_dir("/dev/shm"), *to = make_dir("/tmp");
    ck_assert_ptr_nonnull(from);
    ck_assert_ptr_nonnull(to);
    char src[PATH_MAX], dst[PATH_MAX], used[PATH_MAX], big[3 * 1024];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(src, sizeof src, "%s/in.xml", from);
    snprintf(dst, sizeof dst, "%s/done", to);
    ck_assert_int_eq(mkdir(dst, 0755), 0);
    snprintf(dst, sizeof dst, "%s/done/in.xml", to);
    put(dst, "earlier");
    put(src, big);
    ck_assert_int_eq(dp_fs_move(src, dst, used), 0);
    char want[PATH_MAX + 4];
    snprintf(want, sizeof want, "%s.1", dst);
    ck_assert_str_eq(used, want);
    ck_assert_str_eq(get(want), big);
    ck_assert_str_eq(get(dst), "earlier");
    ck_assert_ptr_null(get(src));
    ck_assert_int_eq(files_in(to), 2); /* no temporary copy left behind */
    rm_rf(from);
    rm_rf(to);
    free(from);
    free(to);
}
END_TEST

START_TEST(a_missing_input_is_an_error) {
    char *d = make_dir("/tmp");
    char src[PATH_MAX], dst[PATH_MAX];
    snprintf(src, sizeof src, "%s/gone.xml", d);
    snprintf(dst, sizeof dst, "%s/done/gone.xml", d);
    errno = 0;
    ck_assert_int_eq(dp_fs_move(src, dst, NULL), -1);
    ck_assert_int_eq(errno, ENOENT);
    rm_rf(d);
    free(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("fs");
    TCase *tc = tu_tcase("fs");
    tcase_add_test(tc, moves_into_new_folders);
    tcase_add_test(tc, never_replaces_a_file);
    tcase_add_test(tc, across_file_systems);
    tcase_add_test(tc, a_missing_input_is_an_error);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
