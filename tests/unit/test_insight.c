/* test_insight — insight/'s classes, periods, verdicts and alerts, on feed
 * lines built here, through the public calls (dp_insight_build and the
 * JSON renderer) and the classifier.  The CLI's end-to-end tests are in
 * tests/insight. */
#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_map.h"
#include "insight_internal.h"

#define DAY 86400
#define D0 20400 /* 2025-11-08, a day number */

/* ---- feed lines in memory ----------------------------------------------- */

typedef struct lines {
    char **v;
    size_t n;
} lines;

static void add(lines *l, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = malloc(2048);
    ck_assert_int_lt(vsnprintf(s, 2048, fmt, ap), 2048);
    va_end(ap);
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = s;
}

static void free_lines(lines *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int read_lines(void *ctx, dp_insight_line_fn fn, void *fn_ctx, dp_error *err) {
    (void)err;
    lines *l = ctx;
    for (size_t i = 0; i < l->n; i++) {
        char where[32];
        snprintf(where, sizeof where, "mem:%zu", i + 1);
        if (fn(fn_ctx, l->v[i], strlen(l->v[i]), where) != 0) return -1;
    }
    return 0;
}

/* A rollup of `messages` on day `day`, class chosen by the auth fields. */
static void rollup(lines *l, int64_t day, const char *domain, const char *ip, const char *dkim, const char *spf,
                   const char *override, const char *dkim_result, const char *dkim_domain, const char *spf_result,
                   uint64_t messages) {
    char ov[64];
    if (override)
        snprintf(ov, sizeof ov, "\"%s\"", override);
    else
        snprintf(ov, sizeof ov, "null");
    add(l,
        "{\"v\":1,\"window_start\":%lld,\"window_end\":%lld,\"reporter\":\"google.com\",\"policy_domain\":\"%s\","
        "\"header_from\":\"%s\",\"source_ip\":\"%s\",\"disposition\":\"none\",\"dkim\":\"%s\",\"spf\":\"%s\","
        "\"override\":%s,\"dkim_domain\":\"%s\",\"dkim_selector\":\"s\",\"dkim_result\":\"%s\","
        "\"spf_domain\":\"%s\",\"spf_result\":\"%s\",\"messages\":%llu,\"records\":1,"
        "\"first_seen\":%lld,\"last_seen\":%lld}",
        (long long)(day * DAY), (long long)((day + 1) * DAY), domain, domain, ip, dkim, spf, ov, dkim_domain,
        dkim_result, dkim_domain, spf_result, (unsigned long long)messages, (long long)(day * DAY),
        (long long)((day + 1) * DAY - 1));
}

static void aligned(lines *l, int64_t day, const char *domain, const char *ip, uint64_t m) {
    rollup(l, day, domain, ip, "pass", "pass", NULL, "pass", domain, "pass", m);
}
static void third_party(lines *l, int64_t day, const char *domain, const char *ip, uint64_t m) {
    rollup(l, day, domain, ip, "fail", "fail", NULL, "pass", "esp.example", "fail", m);
}
static void spoofed(lines *l, int64_t day, const char *domain, const char *ip, uint64_t m) {
    rollup(l, day, domain, ip, "fail", "fail", NULL, "fail", domain, "fail", m);
}

static void report(lines *l, int64_t day, const char *domain, const char *sha, const char *p, int pct,
                   const char *testing) {
    char pcts[16];
    if (pct < 0)
        snprintf(pcts, sizeof pcts, "null");
    else
        snprintf(pcts, sizeof pcts, "%d", pct);
    add(l,
        "{\"v\":1,\"sha256\":\"%s\",\"org_name\":\"google.com\",\"report_id\":\"r\",\"begin\":%lld,\"end\":%lld,"
        "\"policy_domain\":\"%s\",\"policy_adkim\":\"r\",\"policy_aspf\":\"r\",\"policy_p\":\"%s\","
        "\"policy_sp\":null,\"policy_np\":null,\"policy_pct\":%s,\"policy_testing\":%s%s%s,\"records\":1,"
        "\"messages\":1}",
        sha, (long long)(day * DAY), (long long)((day + 1) * DAY - 1), domain, p, pcts, testing ? "\"" : "",
        testing ? testing : "null", testing ? "\"" : "");
}

typedef struct warned {
    int n;
    char first[128];
} warned;

static void on_warn(void *ctx, const char *where, const char *reason) {
    warned *w = ctx;
    if (w->n++ == 0) snprintf(w->first, sizeof w->first, "%s: %s", where, reason);
}

/* Builds over the lines, renders JSON and parses it back. */
static json_t *report_json(lines *l, int64_t from, int64_t to, warned *w) {
    dp_insight_options o;
    dp_insight_options_init(&o);
    o.from_day = from;
    o.to_day = to;
    o.warn = on_warn;
    o.warn_ctx = w;
    dp_insight_inputs in = {read_lines, l};
    dp_error err = {0};
    dp_insight *ins = dp_insight_build(&in, &o, &err);
    ck_assert_msg(ins != NULL, "%s", err.msg);
    dp_buf b = DP_BUF_INIT;
    dp_render_json(ins, &b, NULL);
    ck_assert(!b.failed);
    json_error_t je;
    json_t *j = json_loads(b.data, 0, &je);
    ck_assert_msg(j != NULL, "JSON does not load: %s", je.text);
    dp_buf_free(&b);
    dp_insight_free(ins);
    return j;
}

static json_t *domain(json_t *j, const char *name) {
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(j, "domains"), i, d) if (strcmp(json_string_value(json_object_get(d, "domain")),
                                                                       name) == 0) return d;
    ck_abort_msg("no domain %s", name);
    return NULL;
}

static const char *verdict(json_t *d) {
    return json_string_value(json_object_get(json_object_get(d, "readiness"), "verdict"));
}
static const char *next_step(json_t *d) {
    json_t *v = json_object_get(json_object_get(d, "readiness"), "next_step");
    return json_is_null(v) ? "null" : json_string_value(v);
}
static long long num(json_t *o, const char *path1, const char *path2) {
    json_t *v = json_object_get(o, path1);
    if (path2) v = json_object_get(v, path2);
    ck_assert_msg(json_is_integer(v), "%s.%s is not an integer", path1, path2 ? path2 : "");
    return json_integer_value(v);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(classes_of_a_rollup) {
    ck_assert_int_eq(dp_classify_rollup("pass", "fail", NULL, "pass", "fail"), DP_CLASS_ALIGNED);
    ck_assert_int_eq(dp_classify_rollup("fail", "pass", "forwarded", NULL, NULL), DP_CLASS_ALIGNED);
    ck_assert_int_eq(dp_classify_rollup("fail", "fail", "forwarded", "pass", NULL), DP_CLASS_FORWARDED);
    ck_assert_int_eq(dp_classify_rollup("fail", "fail", "local_policy,mailing_list", NULL, NULL), DP_CLASS_FORWARDED);
    ck_assert_int_eq(dp_classify_rollup("fail", "fail", "trusted_forwarder", NULL, NULL), DP_CLASS_FORWARDED);
    /* only the three forwarding reasons, whole words */
    ck_assert_int_eq(dp_classify_rollup("fail", "fail", "local_policy", NULL, NULL), DP_CLASS_UNAUTHENTICATED);
    ck_assert_int_eq(dp_classify_rollup("fail", "fail", "forwardedx,sampled_out", NULL, NULL),
                     DP_CLASS_UNAUTHENTICATED);
    ck_assert_int_eq(dp_classify_rollup("fail", "fail", NULL, "pass", "fail"), DP_CLASS_THIRD_PARTY);
    ck_assert_int_eq(dp_classify_rollup("fail", "fail", NULL, "none", "pass"), DP_CLASS_THIRD_PARTY);
    ck_assert_int_eq(dp_classify_rollup("fail", "fail", NULL, "fail", "softfail"), DP_CLASS_UNAUTHENTICATED);
    ck_assert_int_eq(dp_classify_rollup(NULL, NULL, NULL, NULL, NULL), DP_CLASS_UNAUTHENTICATED);
    ck_assert_str_eq(dp_classify_name(DP_CLASS_THIRD_PARTY), "third_party");
}
END_TEST

START_TEST(days_round_trip) {
    int64_t d;
    ck_assert_int_eq(dp_insight_parse_day("1970-01-01", &d), 0);
    ck_assert_int_eq(d, 0);
    ck_assert_int_eq(dp_insight_parse_day("2024-02-29", &d), 0);
    char s[11];
    dp_insight_format_day(d, s);
    ck_assert_str_eq(s, "2024-02-29");
    ck_assert_int_eq(dp_insight_parse_day("2000-03-01", &d), 0);
    ck_assert_int_eq(d, 11017);
    for (int64_t k = 0; k < 80000; k += 37) {
        dp_insight_format_day(k, s);
        ck_assert_int_eq(dp_insight_parse_day(s, &d), 0);
        ck_assert_int_eq(d, k);
    }
    ck_assert_int_ne(dp_insight_parse_day("2026-02-29", &d), 0);
    ck_assert_int_ne(dp_insight_parse_day("2026-13-01", &d), 0);
    ck_assert_int_ne(dp_insight_parse_day("2026-1-01", &d), 0);
    ck_assert_int_ne(dp_insight_parse_day("2026-01-01x", &d), 0);
    ck_assert_int_ne(dp_insight_parse_day("", &d), 0);
}
END_TEST

/* Every verdict and next step, each domain planted to give one. */
START_TEST(verdicts) {
    lines l = {0};
    for (int64_t k = 0; k < 10; k++) {
        int64_t day = D0 + k;
        aligned(&l, day, "none-ready.example", "192.0.2.1", 20);
        aligned(&l, day, "quarantine-ready.example", "192.0.2.1", 20);
        aligned(&l, day, "reject-half.example", "192.0.2.1", 20);
        aligned(&l, day, "enforced.example", "192.0.2.1", 10);
        spoofed(&l, day, "enforced.example", "203.0.113.9", 30);
        aligned(&l, day, "testing.example", "192.0.2.1", 20);
        aligned(&l, day, "fix.example", "192.0.2.1", 10);
        third_party(&l, day, "fix.example", "198.51.100.7", 10);
        aligned(&l, day, "few-messages.example", "192.0.2.1", 9);
        /* exactly at the threshold: 98 aligned of 100 legitimate */
        aligned(&l, day, "edge.example", "192.0.2.1", k < 8 ? 10 : 9);
        if (k >= 8) third_party(&l, day, "edge.example", "198.51.100.7", 1);
        aligned(&l, day, "unknown-policy.example", "192.0.2.1", 20);
    }
    for (int64_t k = 0; k < 6; k++) aligned(&l, D0 + k, "six-days.example", "192.0.2.1", 100);
    report(&l, D0, "none-ready.example", "a1", "none", -1, NULL);
    report(&l, D0, "quarantine-ready.example", "a2", "quarantine", 100, NULL);
    report(&l, D0, "reject-half.example", "a3", "reject", 50, NULL);
    report(&l, D0, "enforced.example", "a4", "reject", -1, "n");
    report(&l, D0, "testing.example", "a5", "reject", -1, "y");
    report(&l, D0, "fix.example", "a6", "none", -1, NULL);
    report(&l, D0, "few-messages.example", "a7", "none", -1, NULL);
    report(&l, D0, "edge.example", "a8", "none", -1, NULL);
    report(&l, D0, "six-days.example", "a9", "none", -1, NULL);
    warned w = {0};
    json_t *j = report_json(&l, D0, D0 + 9, &w);
    ck_assert_int_eq(w.n, 0);
    struct {
        const char *domain, *verdict, *next;
    } want[] = {
        {"none-ready.example", "ready", "quarantine"},
        {"quarantine-ready.example", "ready", "reject"},
        {"reject-half.example", "ready", "reject"},
        {"enforced.example", "enforced", "null"},
        {"testing.example", "ready", "reject"},
        {"fix.example", "fix_senders", "null"},
        {"few-messages.example", "insufficient_data", "null"},
        {"six-days.example", "insufficient_data", "null"},
        {"edge.example", "ready", "quarantine"},
        {"unknown-policy.example", "ready", "null"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *d = domain(j, want[i].domain);
        ck_assert_msg(strcmp(verdict(d), want[i].verdict) == 0, "%s: verdict %s, want %s", want[i].domain,
                      verdict(d), want[i].verdict);
        ck_assert_msg(strcmp(next_step(d), want[i].next) == 0, "%s: next_step %s, want %s", want[i].domain,
                      next_step(d), want[i].next);
    }
    json_t *fix = domain(j, "fix.example");
    ck_assert_int_eq(num(json_object_get(fix, "readiness"), "would_block_legitimate", NULL), 100);
    ck_assert_int_eq(num(json_object_get(fix, "readiness"), "would_block_spoofed", NULL), 0);
    json_t *enf = domain(j, "enforced.example");
    ck_assert_int_eq(num(json_object_get(enf, "readiness"), "would_block_spoofed", NULL), 300);
    ck_assert_int_eq(num(enf, "classes", "unauthenticated"), 300);
    /* the third-party source comes first, and says who signs for it */
    json_t *src = json_array_get(json_object_get(fix, "sources"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(src, "source_ip")), "198.51.100.7");
    ck_assert_str_eq(json_string_value(json_object_get(src, "class")), "third_party");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(src, "dkim_pass_domains"), 0)), "esp.example");
    ck_assert_int_eq(num(domain(j, "six-days.example"), "days_with_reports", NULL), 6);
    ck_assert_int_eq(json_array_size(json_object_get(domain(j, "six-days.example"), "days_without_reports")), 4);
    json_decref(j);
    free_lines(&l);
}
END_TEST

/* A rollup's key split over many lines, in any order, with lines of other
 * periods around it, gives the report one line gives. */
START_TEST(partial_rollups_sum) {
    lines whole = {0}, parts = {0};
    for (int64_t k = 0; k < 8; k++) {
        aligned(&whole, D0 + k, "example.com", "192.0.2.1", 60);
        third_party(&whole, D0 + k, "example.com", "198.51.100.7", 7);
        report(&whole, D0 + k, "example.com", k % 2 ? "b1" : "b2", "none", -1, NULL);
    }
    for (int rep = 0; rep < 3; rep++)
        for (int64_t k = 7; k >= 0; k--) {
            aligned(&parts, D0 + k, "Example.COM.", "192.0.2.1", 20);
            third_party(&parts, D0 + k, "example.com", "198.51.100.7", rep == 0 ? 7 : 0);
            if (rep == 0) report(&parts, D0 + k, "example.com", k % 2 ? "b1" : "b2", "none", -1, NULL);
        }
    warned w = {0};
    json_t *a = report_json(&whole, D0, D0 + 7, &w), *b = report_json(&parts, D0, D0 + 7, &w);
    json_object_del(a, "input");
    json_object_del(b, "input");
    char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
    ck_assert_str_eq(sa, sb);
    /* eight reports in the period, one a day */
    json_t *r = json_array_get(json_object_get(domain(a, "example.com"), "reporters"), 0);
    ck_assert_int_eq(num(r, "reports", NULL), 8);
    ck_assert_int_eq(num(r, "messages", NULL), 8 * 67);
    free(sa);
    free(sb);
    json_decref(a);
    json_decref(b);
    free_lines(&whole);
    free_lines(&parts);
}
END_TEST

/* The default period is the 30 days up to the latest day in the data. */
START_TEST(default_period) {
    lines l = {0};
    aligned(&l, D0, "example.com", "192.0.2.1", 1);
    aligned(&l, D0 + 100, "example.com", "192.0.2.1", 1);
    report(&l, D0 + 200, "example.com", "c1", "none", -1, NULL); /* a report's day counts only without rollups */
    warned w = {0};
    json_t *j = report_json(&l, DP_INSIGHT_DAY_UNSET, DP_INSIGHT_DAY_UNSET, &w);
    char want_to[11], want_from[11];
    dp_insight_format_day(D0 + 100, want_to);
    dp_insight_format_day(D0 + 71, want_from);
    json_t *p = json_object_get(j, "period");
    ck_assert_str_eq(json_string_value(json_object_get(p, "to")), want_to);
    ck_assert_str_eq(json_string_value(json_object_get(p, "from")), want_from);
    ck_assert_int_eq(num(j, "totals", "messages"), 1);
    json_decref(j);
    free_lines(&l);
}
END_TEST

/* The latest policy is the one in the report with the greatest begin at or
 * before the period's end; a later report does not count. */
START_TEST(latest_policy) {
    lines l = {0};
    for (int64_t k = 0; k < 10; k++) aligned(&l, D0 + k, "example.com", "192.0.2.1", 20);
    report(&l, D0 + 2, "example.com", "d1", "none", -1, NULL);
    report(&l, D0 + 6, "example.com", "d3", "reject", -1, NULL);
    report(&l, D0 + 6, "example.com", "d2", "quarantine", -1, NULL); /* same begin, smaller sha256 */
    report(&l, D0 + 12, "example.com", "d4", "none", -1, NULL);      /* after the period */
    warned w = {0};
    json_t *j = report_json(&l, D0, D0 + 9, &w);
    json_t *d = domain(j, "example.com");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d, "policy"), "p")), "reject");
    ck_assert_str_eq(verdict(d), "enforced");
    json_t *h = json_object_get(d, "policy_history");
    ck_assert_int_eq(json_array_size(h), 2);
    /* RFC 7489 reporters write pct=100 and no testing flag, RFC 9990 ones
     * no pct and t=n: the same policy, so no change in the history */
    lines m = {0};
    for (int64_t k = 0; k < 10; k++) {
        aligned(&m, D0 + k, "mixed.example", "192.0.2.1", 20);
        char sha[24];
        snprintf(sha, sizeof sha, "e%lld", (long long)k);
        report(&m, D0 + k, "mixed.example", sha, "none", k % 2 ? 100 : -1, k % 2 ? NULL : "n");
    }
    json_t *mj = report_json(&m, D0, D0 + 9, &w);
    ck_assert_int_eq(json_array_size(json_object_get(domain(mj, "mixed.example"), "policy_history")), 1);
    json_decref(mj);
    free_lines(&m);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(h, 0), "p")), "none");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(h, 1), "p")), "reject");
    json_decref(j);
    free_lines(&l);
}
END_TEST

START_TEST(bad_lines_are_named) {
    lines l = {0};
    aligned(&l, D0, "example.com", "192.0.2.1", 5);
    add(&l, "not json");
    add(&l, "[1,2]");
    add(&l, "{\"window_start\":\"x\",\"messages\":1}");
    add(&l, "{\"hello\":1}");
    add(&l, "");
    add(&l, "{\"window_start\":-86400,\"messages\":1,\"source_ip\":\"192.0.2.1\",\"policy_domain\":\"example.com\"}");
    add(&l, "{\"sha256\":\"x\",\"begin\":9223372036854775807,\"policy_domain\":\"example.com\"}");
    warned w = {0};
    json_t *j = report_json(&l, D0, D0, &w);
    ck_assert_int_eq(w.n, 6);
    ck_assert_msg(strncmp(w.first, "mem:2: not JSON", 15) == 0, "%s", w.first);
    ck_assert_int_eq(num(j, "input", "bad_lines"), 6);
    ck_assert_int_eq(num(j, "totals", "messages"), 5);
    json_decref(j);
    free_lines(&l);
}
END_TEST

START_TEST(alerts) {
    lines l = {0};
    /* previous period: D0-10 .. D0-1; period: D0 .. D0+9 */
    for (int64_t k = 0; k < 10; k++) {
        aligned(&l, D0 - 10 + k, "example.com", "192.0.2.1", 100);
        aligned(&l, D0 - 10 + k, "stopped.example", "192.0.2.1", 5);
        aligned(&l, D0 + k, "example.com", "192.0.2.1", 80);
        spoofed(&l, D0 + k, "example.com", "203.0.113.9", 20); /* new, and the rise */
        if (k < 5) aligned(&l, D0 + k, "stopped.example", "192.0.2.1", 5);
    }
    warned w = {0};
    json_t *j = report_json(&l, D0, D0 + 9, &w);
    int seen[4] = {0};
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "alerts"), i, a) {
        const char *kind = json_string_value(json_object_get(a, "kind"));
        const char *dom = json_string_value(json_object_get(a, "domain"));
        if (strcmp(kind, "new_source") == 0 && strcmp(dom, "example.com") == 0) {
            ck_assert_str_eq(json_string_value(json_object_get(a, "source_ip")), "203.0.113.9");
            ck_assert_int_eq(num(a, "messages", NULL), 200);
            seen[0]++;
        } else if (strcmp(kind, "pass_rate_drop") == 0 && strcmp(dom, "example.com") == 0) {
            seen[1]++;
        } else if (strcmp(kind, "unauthenticated_rise") == 0 && strcmp(dom, "example.com") == 0) {
            ck_assert_int_eq(num(a, "current", NULL), 200);
            seen[2]++;
        } else if (strcmp(kind, "reports_stopped") == 0 && strcmp(dom, "stopped.example") == 0) {
            seen[3]++;
        } else {
            ck_abort_msg("unexpected alert %s for %s", kind, dom);
        }
    }
    for (int k = 0; k < 4; k++) ck_assert_msg(seen[k] == 1, "alert %d seen %d times", k, seen[k]);
    json_decref(j);
    free_lines(&l);
}
END_TEST

START_TEST(map_grows) {
    dp_map m = DP_MAP_INIT;
    char key[32];
    for (long i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%ld", i);
        ck_assert_ptr_nonnull(dp_map_put(&m, key, (void *)(i + 1)));
    }
    ck_assert_uint_eq(m.len, 20000);
    for (long i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%ld", i);
        ck_assert_ptr_eq(dp_map_get(&m, key), (void *)(i + 1));
    }
    ck_assert_ptr_null(dp_map_get(&m, "absent"));
    dp_map_put(&m, "k5", (void *)7);
    ck_assert_uint_eq(m.len, 20000);
    ck_assert_ptr_eq(dp_map_get(&m, "k5"), (void *)7);
    dp_map_free(&m);
}
END_TEST

/* Removal keeps every other key reachable: random puts and removes over a
 * small key space (long probe runs, wrapping round the end), checked
 * against a plain array after every step. */
START_TEST(map_removes) {
    dp_map m = DP_MAP_INIT;
    enum { KEYS = 300 };
    int present[KEYS] = {0};
    size_t len = 0;
    unsigned long r = 12345;
    char key[32];
    for (int step = 0; step < 40000; step++) {
        r = r * 6364136223846793005ul + 1442695040888963407ul;
        int k = (int)((r >> 33) % KEYS);
        snprintf(key, sizeof key, "ip-%d", k);
        if ((r >> 20) % 3) {
            ck_assert_ptr_nonnull(dp_map_put(&m, key, (void *)(long)(k + 1)));
            len += !present[k];
            present[k] = 1;
        } else {
            ck_assert_int_eq(dp_map_remove(&m, key), present[k]);
            len -= present[k];
            present[k] = 0;
        }
        ck_assert_uint_eq(m.len, len);
        if (step % 97 == 0)
            for (int j = 0; j < KEYS; j++) {
                snprintf(key, sizeof key, "ip-%d", j);
                ck_assert_ptr_eq(dp_map_get(&m, key), present[j] ? (void *)(long)(j + 1) : NULL);
            }
    }
    ck_assert_int_eq(dp_map_remove(&m, "absent"), 0);
    dp_map_free(&m);
    ck_assert_int_eq(dp_map_remove(&m, "ip-1"), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("insight");
    TCase *tc = tcase_create("insight");
    tcase_add_test(tc, classes_of_a_rollup);
    tcase_add_test(tc, map_removes);
    tcase_add_test(tc, days_round_trip);
    tcase_add_test(tc, verdicts);
    tcase_add_test(tc, partial_rollups_sum);
    tcase_add_test(tc, default_period);
    tcase_add_test(tc, latest_policy);
    tcase_add_test(tc, bad_lines_are_named);
    tcase_add_test(tc, alerts);
    tcase_add_test(tc, map_grows);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
