/* test_metrics — the registry (common/dp_metrics.c) and its endpoint
 * (common/dp_metrics_http.c).
 *
 * The text format, byte for byte where it is fixed (HELP and label
 * escaping, the histogram's cumulative buckets, +Inf, _sum and _count);
 * the bounds on labels (an undeclared value has no series); registering
 * again; two threads counting at once with no update lost (run under
 * ThreadSanitizer too); and the endpoint on real sockets: /metrics with
 * its content type, /healthz with the heartbeat, /readyz with readiness
 * (and its end, when stopping), IPv6, and a port already taken refused in one line.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_metrics.h"
#include "dp_metrics_http.h"

static char *render(dp_metrics *m) {
    dp_buf b = DP_BUF_INIT;
    ck_assert_int_eq(dp_metrics_render(m, &b), 0);
    dp_buf_putc(&b, '\0');
    return b.data;
}

START_TEST(counter_and_gauge_text) {
    dp_metrics *m = dp_metrics_new();
    dp_metric *c = dp_metrics_counter(m, "x_total", "Things.");
    dp_metric *g = dp_metrics_gauge(m, "x_level", "Level.");
    dp_metrics_add(c, 0, 3);
    dp_metrics_add(c, 0, 4);
    dp_metrics_set(g, 0, 0.25);
    char *t = render(m);
    ck_assert_str_eq(t, "# HELP x_total Things.\n# TYPE x_total counter\nx_total 7\n"
                        "# HELP x_level Level.\n# TYPE x_level gauge\nx_level 0.25\n");
    free(t);
    dp_metrics_free(m);
}
END_TEST

START_TEST(escaping) {
    dp_metrics *m = dp_metrics_new();
    static const char *const values[] = {"a\"b", "back\\slash", "new\nline"};
    dp_metric *c = dp_metrics_counter1(m, "e_total", "Help with \\ and\nnewline \"quoted\".", "v", values, 3);
    dp_metrics_add(c, 2, 1);
    char *t = render(m);
    ck_assert_str_eq(t, "# HELP e_total Help with \\\\ and\\nnewline \"quoted\".\n"
                        "# TYPE e_total counter\n"
                        "e_total{v=\"a\\\"b\"} 0\n"
                        "e_total{v=\"back\\\\slash\"} 0\n"
                        "e_total{v=\"new\\nline\"} 1\n");
    free(t);
    dp_metrics_free(m);
}
END_TEST

START_TEST(histogram_buckets) {
    dp_metrics *m = dp_metrics_new();
    static const double b[] = {0.005, 0.25, 1};
    dp_metric *h = dp_metrics_register(m, DP_METRIC_HISTOGRAM, "h_seconds", "Time.", NULL, 0, b, 3);
    ck_assert_ptr_nonnull(h);
    dp_metrics_observe(h, 0, 0.00390625); /* first bucket */
    dp_metrics_observe(h, 0, 0.25);       /* le is inclusive */
    dp_metrics_observe(h, 0, 0.5);
    dp_metrics_observe(h, 0, 7);          /* +Inf only */
    char *t = render(m);
    ck_assert_str_eq(t, "# HELP h_seconds Time.\n# TYPE h_seconds histogram\n"
                        "h_seconds_bucket{le=\"0.005\"} 1\n"
                        "h_seconds_bucket{le=\"0.25\"} 2\n"
                        "h_seconds_bucket{le=\"1\"} 3\n"
                        "h_seconds_bucket{le=\"+Inf\"} 4\n"
                        "h_seconds_sum 7.75390625\n"
                        "h_seconds_count 4\n");
    free(t);
    dp_metrics_free(m);
}
END_TEST

START_TEST(histogram_with_labels) {
    dp_metrics *m = dp_metrics_new();
    static const double b[] = {1};
    static const char *const sides[] = {"l", "r"};
    dp_metric_label l = {"side", sides, 2};
    dp_metric *h = dp_metrics_register(m, DP_METRIC_HISTOGRAM, "hl", "H.", &l, 1, b, 1);
    dp_metrics_observe(h, 1, 2);
    char *t = render(m);
    ck_assert_ptr_nonnull(strstr(t, "hl_bucket{side=\"l\",le=\"1\"} 0\nhl_bucket{side=\"l\",le=\"+Inf\"} 0\n"
                                    "hl_sum{side=\"l\"} 0\nhl_count{side=\"l\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "hl_bucket{side=\"r\",le=\"1\"} 0\nhl_bucket{side=\"r\",le=\"+Inf\"} 1\n"
                                    "hl_sum{side=\"r\"} 2\nhl_count{side=\"r\"} 1\n"));
    /* "le" is the histogram's own label */
    static const char *const v[] = {"x"};
    dp_metric_label le = {"le", v, 1};
    ck_assert_ptr_null(dp_metrics_register(m, DP_METRIC_HISTOGRAM, "bad", "B.", &le, 1, b, 1));
    free(t);
    dp_metrics_free(m);
}
END_TEST

START_TEST(bounded_labels) {
    dp_metrics *m = dp_metrics_new();
    static const char *const stages[] = {"source", "ingest"};
    static const char *const reasons[] = {"xml", "limit", "input"};
    dp_metric_label l[] = {{"stage", stages, 2}, {"reason", reasons, 3}};
    dp_metric *c = dp_metrics_register(m, DP_METRIC_COUNTER, "r_total", "R.", l, 2, NULL, 0);
    ck_assert_uint_eq(dp_metrics_n_series(c), 6);
    const char *ok[] = {"ingest", "limit"}, *bad[] = {"ingest", "/etc/passwd"};
    long s = dp_metrics_series(c, ok);
    ck_assert_int_eq(s, 1 * 3 + 1);
    ck_assert_int_eq(dp_metrics_series(c, bad), -1);
    dp_metrics_add(c, (size_t)s, 2);
    dp_metrics_add(c, 99, 1); /* out of range: nothing */
    char *t = render(m);
    ck_assert_ptr_nonnull(strstr(t, "r_total{stage=\"ingest\",reason=\"limit\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "r_total{stage=\"source\",reason=\"xml\"} 0\n"));
    ck_assert_ptr_null(strstr(t, "passwd"));
    free(t);
    /* the same family again is the same one; a different shape is refused */
    ck_assert_ptr_eq(dp_metrics_register(m, DP_METRIC_COUNTER, "r_total", "R.", l, 2, NULL, 0), c);
    ck_assert_ptr_null(dp_metrics_gauge(m, "r_total", "R."));
    ck_assert_ptr_null(dp_metrics_counter1(m, "r_total", "R.", "stage", stages, 2));
    ck_assert_ptr_null(dp_metrics_counter(m, "bad name", "x"));
    ck_assert_ptr_null(dp_metrics_counter(m, "9starts_with_digit", "x"));
    /* NULL everywhere is "not counted" */
    ck_assert_ptr_null(dp_metrics_counter(NULL, "x_total", "x"));
    dp_metrics_add(NULL, 0, 1);
    dp_metrics_set(NULL, 0, 1);
    dp_metrics_observe(NULL, 0, 1);
    dp_metrics_heartbeat(NULL);
    dp_metrics_free(m);
}
END_TEST

#define PER_THREAD 200000

typedef struct racer {
    dp_metric *c, *h;
} racer;

static void *race(void *arg) {
    racer *r = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        dp_metrics_add(r->c, (size_t)(i & 1), 1);
        if (i % 16 == 0) dp_metrics_observe(r->h, 0, 0.5);
    }
    return NULL;
}

START_TEST(two_threads_lose_nothing) {
    dp_metrics *m = dp_metrics_new();
    static const char *const v[] = {"even", "odd"};
    static const double b[] = {1};
    racer r = {dp_metrics_counter1(m, "race_total", "R.", "p", v, 2),
               dp_metrics_register(m, DP_METRIC_HISTOGRAM, "race_h", "H.", NULL, 0, b, 1)};
    pthread_t a, c;
    ck_assert_int_eq(pthread_create(&a, NULL, race, &r), 0);
    ck_assert_int_eq(pthread_create(&c, NULL, race, &r), 0);
    /* scrapes while they count */
    for (int i = 0; i < 20; i++) free(render(m));
    pthread_join(a, NULL);
    pthread_join(c, NULL);
    ck_assert_uint_eq((uint64_t)dp_metrics_value(r.c, 0), PER_THREAD);
    ck_assert_uint_eq((uint64_t)dp_metrics_value(r.c, 1), PER_THREAD);
    char *t = render(m);
    char want[128];
    snprintf(want, sizeof want, "race_h_count %d\n", 2 * (PER_THREAD / 16));
    ck_assert_ptr_nonnull(strstr(t, want));
    snprintf(want, sizeof want, "race_h_sum %d\n", PER_THREAD / 16);
    ck_assert_ptr_nonnull(strstr(t, want));
    free(t);
    dp_metrics_free(m);
}
END_TEST

/* ---- the endpoint ------------------------------------------------------------- */

/* GET path from 127.0.0.1 (or ::1) at port: the whole response. */
static char *http_get(int family, int port, const char *path) {
    int fd = socket(family, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *a;
    }
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&ss, sl), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    dp_buf b = DP_BUF_INIT;
    char chunk[4096];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof chunk)) > 0) dp_buf_append(&b, chunk, (size_t)got);
    close(fd);
    dp_buf_putc(&b, '\0');
    return b.data;
}

static int status_of(const char *resp) {
    int code = 0;
    sscanf(resp, "HTTP/1.%*d %d", &code);
    return code;
}

/* The status of a GET of path on 127.0.0.1:port. */
static int status_at(int port, const char *path) {
    char *r = http_get(AF_INET, port, path);
    int code = status_of(r);
    free(r);
    return code;
}

START_TEST(endpoint) {
    dp_metrics *m = dp_metrics_new();
    dp_metric *c = dp_metrics_counter(m, "dmarcpipe_things_total", "Things.");
    dp_metrics_add(c, 0, 42);
    dp_error err;
    dp_metrics_http *h = dp_metrics_http_start(m, "127.0.0.1:0", 1.0, &err);
    ck_assert_msg(h != NULL, "%s", err.msg);
    int port = dp_metrics_http_port(h);
    ck_assert_int_gt(port, 0);

    char *r = http_get(AF_INET, port, "/metrics");
    ck_assert_int_eq(status_of(r), 200);
    ck_assert_ptr_nonnull(strstr(r, "Content-Type: text/plain; version=0.0.4"));
    ck_assert_ptr_nonnull(strstr(r, "\r\n\r\n# HELP dmarcpipe_things_total Things.\n"));
    ck_assert_ptr_nonnull(strstr(r, "dmarcpipe_things_total 42\n"));
    free(r);

    /* ready only once said, and not while stopping */
    ck_assert_int_eq(status_at(port, "/readyz"), 503);
    dp_metrics_set_ready(m, 1);
    ck_assert_int_eq(status_at(port, "/readyz"), 200);
    dp_metrics_set_ready(m, 0); /* stopping */
    ck_assert_int_eq(status_at(port, "/readyz"), 503);

    /* healthy while the heartbeat is fresh; stale after 1 s without */
    dp_metrics_heartbeat(m);
    ck_assert_int_eq(status_at(port, "/healthz"), 200);
    usleep(1300 * 1000);
    ck_assert_int_eq(status_at(port, "/healthz"), 503);
    dp_metrics_heartbeat(m);
    ck_assert_int_eq(status_at(port, "/healthz"), 200);

    ck_assert_int_eq(status_at(port, "/nothing"), 404);

    /* the same port again: one line, naming the address and the reason */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    ck_assert_ptr_null(dp_metrics_http_start(m, addr, 1.0, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, addr));
    ck_assert_ptr_nonnull(strstr(err.msg, "Address already in use"));
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    ck_assert_ptr_null(dp_metrics_http_start(m, "localhost", 1.0, &err));
    ck_assert_ptr_null(dp_metrics_http_start(m, "::1:9090", 1.0, &err));
    dp_metrics_http_stop(h);

    /* IPv6, where the host has it */
    h = dp_metrics_http_start(m, "[::1]:0", 1.0, &err);
    if (h) {
        r = http_get(AF_INET6, dp_metrics_http_port(h), "/metrics");
        ck_assert_int_eq(status_of(r), 200);
        ck_assert_ptr_nonnull(strstr(r, "dmarcpipe_things_total 42\n"));
        free(r);
        dp_metrics_http_stop(h);
    } else {
        fprintf(stderr, "test_metrics: no IPv6 loopback here (%s): skipped\n", err.msg);
    }
    dp_metrics_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, counter_and_gauge_text);
    tcase_add_test(tc, escaping);
    tcase_add_test(tc, histogram_buckets);
    tcase_add_test(tc, histogram_with_labels);
    tcase_add_test(tc, bounded_labels);
    tcase_add_test(tc, two_threads_lose_nothing);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("http");
    tcase_add_test(th, endpoint);
    tcase_set_timeout(th, 60);
    suite_add_tcase(s, th);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
