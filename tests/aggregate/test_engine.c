/* test_engine — the aggregate stage through its C interface (Check).
 *
 * What the CLI tests cannot reach:
 *   - dp_engine_run with an in-memory sink: the rollups it is handed, field
 *     by field, for a crafted two-day report (exact window shares);
 *   - a sink that fails: dp_engine_run must return -1 with the sink's error,
 *     not succeed quietly;
 *   - dp_dedup: the identity covers each of its four parts, absent and
 *     empty differ, decide() counts once, and --state persists across opens;
 *   - the CSV and JSON forms of one rollup: the same columns in the same
 *     order, RFC 4180 quoting, an absent value as an empty field / null.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregate.h"
#include "dp_buf.h"
#include "ingest.h"
#include "sink.h"

#define DAY 86400
#define BEGIN 1538431200 /* 2018-10-01T22:00:00Z */
#define OCT2 1538438400
#define OCT3 1538524800

/* ---- an in-memory sink ---------------------------------------------------- */

#define MAX_ROWS 64

typedef struct mem_row {
    int64_t window_start, window_end, first_seen, last_seen;
    uint64_t messages, records;
    char reporter[64], policy_domain[64], source_ip[64], dkim_selector[64];
    int selector_null;
} mem_row;

typedef struct mem_sink {
    dp_sink base;
    int fail;
    size_t n;
    mem_row rows[MAX_ROWS];
} mem_sink;

static int mem_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err) {
    mem_sink *m = (mem_sink *)s;
    if (m->fail) return dp_error_set(err, DP_ERR_IO, "mem sink: disk full (test)");
    if (m->n == MAX_ROWS) return dp_error_set(err, DP_ERR_IO, "mem sink: too many rows");
    mem_row *row = &m->rows[m->n++];
    memset(row, 0, sizeof *row);
    row->window_start = r->window_start;
    row->window_end = r->window_end;
    row->first_seen = r->first_seen;
    row->last_seen = r->last_seen;
    row->messages = r->messages;
    row->records = r->records;
    snprintf(row->reporter, sizeof row->reporter, "%s", r->reporter ? r->reporter : "(null)");
    snprintf(row->policy_domain, sizeof row->policy_domain, "%s", r->policy_domain ? r->policy_domain : "(null)");
    snprintf(row->source_ip, sizeof row->source_ip, "%s", r->source_ip ? r->source_ip : "(null)");
    row->selector_null = r->dkim_selector == NULL;
    snprintf(row->dkim_selector, sizeof row->dkim_selector, "%s", r->dkim_selector ? r->dkim_selector : "");
    return 0;
}

static int mem_flush(dp_sink *s, dp_error *err) {
    (void)s;
    (void)err;
    return 0;
}

static void mem_destroy(dp_sink *s) { (void)s; /* lives in the test's frame */ }

static const dp_sink_ops MEM_OPS = {
    .name = "mem",
    .write_rollup = mem_write_rollup,
    .write_report = NULL,
    .flush = mem_flush,
    .destroy = mem_destroy,
};

static void mem_init(mem_sink *m, int fail) {
    memset(m, 0, sizeof *m);
    m->base.ops = &MEM_OPS;
    pthread_mutex_init(&m->base.lock, NULL);
    m->fail = fail;
}

/* ---- fixtures ------------------------------------------------------------------ */

static char tmpdir[256];

static const char *write_report(const char *name, const char *report_id, uint64_t c1, uint64_t c2) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "<?xml version=\"1.0\"?>\n<feedback>\n"
            "<report_metadata><org_name>engine.example</org_name><email>d@engine.example</email>"
            "<report_id>%s</report_id><date_range><begin>%d</begin><end>%d</end></date_range>"
            "</report_metadata>\n"
            "<policy_published><domain>example.com</domain><p>none</p></policy_published>\n",
            report_id, BEGIN, BEGIN + 2 * DAY);
    const char *ips[2] = {"192.0.2.10", "192.0.2.20"};
    uint64_t counts[2] = {c1, c2};
    for (int i = 0; i < 2; i++)
        fprintf(f,
                "<record><row><source_ip>%s</source_ip><count>%llu</count><policy_evaluated>"
                "<disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>"
                "</row><identifiers><header_from>example.com</header_from></identifiers>"
                "<auth_results><spf><domain>example.com</domain><result>pass</result></spf>"
                "</auth_results></record>\n",
                ips[i], (unsigned long long)counts[i]);
    fputs("</feedback>\n", f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/dp-test-engine-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    dp_ingest_global_init();
}

static void teardown(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "test_engine: could not remove %s\n", tmpdir);
}

static const mem_row *find_row(const mem_sink *m, const char *ip, int64_t window_start) {
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->rows[i].source_ip, ip) == 0 && m->rows[i].window_start == window_start) return &m->rows[i];
    return NULL;
}

/* ---- the engine -------------------------------------------------------------------- */

/* The engine's input: the file at `path`, read with ingest. */
typedef struct one_input {
    const char *path;
    dp_ingest_limits limits;
    int rejected;
    dp_engine_inputs ei;
} one_input;

static int read_one(void *ctx, size_t i, const dp_report_handler *h, void *hctx, dp_error *err) {
    one_input *in = ctx;
    ck_assert_uint_eq(i, 0);
    dp_ingest_result res;
    return dp_ingest_file(&in->limits, in->path, h, hctx, &res, err);
}

static int reject_one(void *ctx, size_t i, const dp_error *errors, size_t n, dp_error *err) {
    (void)i, (void)errors, (void)n, (void)err;
    ((one_input *)ctx)->rejected++;
    return 0;
}

static void one_input_open(one_input *in, const char *path) {
    memset(in, 0, sizeof *in);
    in->path = strdup(path);
    dp_ingest_limits_default(&in->limits);
    in->ei = (dp_engine_inputs){1, read_one, reject_one, NULL, in};
}

static void one_input_close(one_input *in) { free((char *)in->path); }

START_TEST(engine_hands_the_sink_exact_rollups) {
    one_input in;
    one_input_open(&in, write_report("two-days.xml", "engine-1", 10, 7));
    mem_sink m;
    mem_init(&m, 0);
    dp_sink *sinks[1] = {&m.base};
    dp_engine_config cfg;
    dp_engine_config_default(&cfg);
    cfg.workers = (unsigned)(_i % 2 + 1);
    cfg.shards = (unsigned)(_i / 2 + 1);
    cfg.window = DAY;
    cfg.sinks = sinks;
    cfg.n_sinks = 1;
    dp_error err;
    cfg.dedup = dp_dedup_open(NULL, &err);
    ck_assert_ptr_nonnull(cfg.dedup);
    dp_engine_stats st;
    ck_assert_int_eq(dp_engine_run(&cfg, &in.ei, &st, &err), 0);
    ck_assert_uint_eq(st.reports, 1);
    ck_assert_uint_eq(st.messages, 17);
    ck_assert_uint_eq(st.rollups, m.n);
    /* 10 over [Oct 1 22:00, Oct 3 22:00): 0, 5, 5; 7: 0, 3, 4 (a 0 share gets no rollup) */
    ck_assert_uint_eq(m.n, 4);
    struct { const char *ip; int64_t w; uint64_t msgs; } want[4] = {
        {"192.0.2.10", OCT2, 5}, {"192.0.2.10", OCT3, 5}, {"192.0.2.20", OCT2, 3}, {"192.0.2.20", OCT3, 4}};
    for (int i = 0; i < 4; i++) {
        const mem_row *r = find_row(&m, want[i].ip, want[i].w);
        ck_assert_msg(r != NULL, "no rollup for %s at %lld", want[i].ip, (long long)want[i].w);
        ck_assert_uint_eq(r->messages, want[i].msgs);
        ck_assert_uint_eq(r->records, 1);
        ck_assert_int_eq(r->window_end, want[i].w + DAY);
        ck_assert_int_eq(r->first_seen, want[i].w);
        /* [begin, end] clipped to the window */
        ck_assert_int_eq(r->last_seen, want[i].w == OCT2 ? OCT2 + DAY - 1 : BEGIN + 2 * DAY);
        ck_assert_str_eq(r->reporter, "engine.example");
        ck_assert_str_eq(r->policy_domain, "example.com");
        ck_assert_int_eq(r->selector_null, 1); /* no DKIM result: absent, not "" */
    }
    dp_dedup_close(cfg.dedup);
    pthread_mutex_destroy(&m.base.lock);
    one_input_close(&in);
}
END_TEST

START_TEST(engine_reports_a_failing_sink) {
    one_input in;
    one_input_open(&in, write_report("one.xml", "engine-fail", 3, 4));
    mem_sink m;
    mem_init(&m, 1);
    dp_sink *sinks[1] = {&m.base};
    dp_engine_config cfg;
    dp_engine_config_default(&cfg);
    cfg.workers = 2;
    cfg.shards = 2;
    cfg.sinks = sinks;
    cfg.n_sinks = 1;
    dp_error err;
    memset(&err, 0, sizeof err);
    cfg.dedup = dp_dedup_open(NULL, &err);
    dp_engine_stats st;
    ck_assert_int_eq(dp_engine_run(&cfg, &in.ei, &st, &err), -1);
    ck_assert_msg(strstr(err.msg, "disk full") != NULL, "error was: %s", err.msg);
    dp_dedup_close(cfg.dedup);
    pthread_mutex_destroy(&m.base.lock);
    one_input_close(&in);
}
END_TEST

/* A rejected input goes back through dp_engine_inputs.reject, with its
 * reasons; a rejection that cannot be kept fails the run. */
static int reject_fails(void *ctx, size_t i, const dp_error *errors, size_t n, dp_error *err) {
    (void)ctx, (void)i, (void)errors, (void)n;
    return dp_error_set(err, DP_ERR_IO, "quarantine: disk full (test)");
}

START_TEST(engine_hands_a_rejected_input_back) {
    char path[512];
    snprintf(path, sizeof path, "%s/broken.xml", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("<?xml version=\"1.0\"?><feedback><report_metadata>", f);
    ck_assert_int_eq(fclose(f), 0);
    mem_sink m;
    mem_init(&m, 0);
    dp_sink *sinks[1] = {&m.base};
    dp_engine_config cfg;
    dp_engine_config_default(&cfg);
    cfg.workers = 2;
    cfg.sinks = sinks;
    cfg.n_sinks = 1;
    one_input in;
    one_input_open(&in, path);
    dp_error err;
    dp_engine_stats st;
    ck_assert_int_eq(dp_engine_run(&cfg, &in.ei, &st, &err), 0);
    ck_assert_uint_eq(st.inputs, 1);
    ck_assert_uint_eq(st.inputs_rejected, 1);
    ck_assert_int_eq(in.rejected, 1);
    ck_assert_uint_eq(m.n, 0);
    in.ei.reject = reject_fails;
    ck_assert_int_eq(dp_engine_run(&cfg, &in.ei, &st, &err), -1);
    ck_assert_msg(strstr(err.msg, "disk full") != NULL, "error was: %s", err.msg);
    one_input_close(&in);
    pthread_mutex_destroy(&m.base.lock);
}
END_TEST

/* ---- dedup ------------------------------------------------------------------------- */

static void ident(const char *org, const char *id, const char *dom, int64_t begin, uint8_t out[32]) {
    dp_report r;
    memset(&r, 0, sizeof r);
    r.org_name = org;
    r.report_id = id;
    r.policy.domain = dom;
    r.begin = begin;
    r.end = begin + DAY;
    dp_dedup_identity(&r, out);
}

START_TEST(dedup_identity_covers_each_part) {
    uint8_t a[32], b[32];
    ident("org", "id", "dom", 100, a);
    ident("org", "id", "dom", 100, b);
    ck_assert_mem_eq(a, b, 32);
    ident("org2", "id", "dom", 100, b);
    ck_assert(memcmp(a, b, 32) != 0);
    ident("org", "id2", "dom", 100, b);
    ck_assert(memcmp(a, b, 32) != 0);
    ident("org", "id", "dom2", 100, b);
    ck_assert(memcmp(a, b, 32) != 0);
    ident("org", "id", "dom", 101, b);
    ck_assert(memcmp(a, b, 32) != 0);
    /* the end is not part of the identity */
    dp_report r;
    memset(&r, 0, sizeof r);
    r.org_name = "org", r.report_id = "id", r.policy.domain = "dom", r.begin = 100, r.end = 7;
    dp_dedup_identity(&r, b);
    ck_assert_mem_eq(a, b, 32);
    /* parts do not run into each other, and absent is not empty */
    ident("or", "gid", "dom", 100, b);
    ck_assert(memcmp(a, b, 32) != 0);
    ident(NULL, "id", "dom", 100, a);
    ident("", "id", "dom", 100, b);
    ck_assert(memcmp(a, b, 32) != 0);
}
END_TEST

START_TEST(dedup_decides_once_and_persists) {
    uint8_t x[32], y[32];
    ident("org", "x", "dom", 100, x);
    ident("org", "y", "dom", 100, y);
    char state[512];
    snprintf(state, sizeof state, "%s/state", tmpdir);
    dp_error err;
    dp_dedup *d = dp_dedup_open(state, &err);
    ck_assert_msg(d != NULL, "%s", err.msg);
    ck_assert_int_eq(dp_dedup_seen_before(d, x), 0);
    ck_assert_int_eq(dp_dedup_decide(d, x), DP_DEDUP_NEW);
    ck_assert_int_eq(dp_dedup_decide(d, x), DP_DEDUP_DUPLICATE);
    ck_assert_int_eq(dp_dedup_persist(d, NULL, &err), 0);
    dp_dedup_close(d);

    d = dp_dedup_open(state, &err);
    ck_assert_msg(d != NULL, "%s", err.msg);
    ck_assert_int_ne(dp_dedup_seen_before(d, x), 0);
    ck_assert_int_eq(dp_dedup_seen_before(d, y), 0);
    ck_assert_int_eq(dp_dedup_decide(d, x), DP_DEDUP_DUPLICATE);
    ck_assert_int_eq(dp_dedup_decide(d, y), DP_DEDUP_NEW);
    dp_dedup_close(d); /* not persisted: y is forgotten */

    d = dp_dedup_open(state, &err);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(dp_dedup_seen_before(d, y), 0);
    dp_dedup_close(d);

    /* without a state directory, nothing outlives the handle */
    d = dp_dedup_open(NULL, &err);
    ck_assert_int_eq(dp_dedup_decide(d, x), DP_DEDUP_NEW);
    ck_assert_int_eq(dp_dedup_persist(d, NULL, &err), 0);
    dp_dedup_close(d);
}
END_TEST

static void count_id(void *ctx, const uint8_t id[32]) {
    (void)id;
    (*(int *)ctx)++;
}

/* Epochs: what an aborted epoch decided is forgotten, what a committed one
 * decided is durable with its inputs and its number; an epoch found only in
 * the ledger is applied the same way. */
START_TEST(dedup_epochs_rollback_and_ledger) {
    uint8_t x[32], y[32], z[32];
    ident("org", "x", "dom", 100, x);
    ident("org", "y", "dom", 100, y);
    ident("org", "z", "dom", 100, z);
    char state[512];
    snprintf(state, sizeof state, "%s/state-epochs", tmpdir);
    dp_error err;
    dp_dedup *d = dp_dedup_open(state, &err);
    ck_assert_msg(d != NULL, "%s", err.msg);
    uint64_t epoch, next;
    ck_assert_int_eq(dp_dedup_meta(d, &epoch, &next), 0);
    ck_assert_uint_eq(epoch, 0);

    /* epoch 1 decides x, then is aborted: x is new again */
    ck_assert_int_eq(dp_dedup_decide(d, x), DP_DEDUP_NEW);
    ck_assert_uint_eq(dp_dedup_pending(d, NULL, NULL), 1);
    dp_dedup_rollback(d);
    ck_assert_uint_eq(dp_dedup_pending(d, NULL, NULL), 0);
    ck_assert_int_eq(dp_dedup_decide(d, x), DP_DEDUP_NEW);
    int n = 0;
    ck_assert_uint_eq(dp_dedup_pending(d, count_id, &n), 1);
    ck_assert_int_eq(n, 1);
    const char *keys[] = {"10:20:/in/a.xml", "11:21:/in/b.xml"};
    dp_dedup_epoch ep = {keys, 2, 1, 7, NULL, NULL, 0};
    ck_assert_int_eq(dp_dedup_persist(d, &ep, &err), 0);
    /* committed: a rollback no longer forgets x */
    dp_dedup_rollback(d);
    ck_assert_int_eq(dp_dedup_decide(d, x), DP_DEDUP_DUPLICATE);
    dp_dedup_close(d);

    d = dp_dedup_open(state, &err);
    ck_assert_msg(d != NULL, "%s", err.msg);
    ck_assert_int_eq(dp_dedup_meta(d, &epoch, &next), 0);
    ck_assert_uint_eq(epoch, 1);
    ck_assert_uint_eq(next, 7);
    ck_assert_int_eq(dp_dedup_input_done(d, "10:20:/in/a.xml"), 1);
    ck_assert_int_eq(dp_dedup_input_done(d, "10:21:/in/a.xml"), 0);
    ck_assert_int_eq(dp_dedup_seen_before(d, x), 1);
    /* epoch 2 committed in Kafka, but the process died before the state
     * heard of it: the ledger brings it in */
    uint8_t ids[2][32];
    memcpy(ids[0], y, 32);
    memcpy(ids[1], z, 32);
    const char *keys2[] = {"12:22:/in/c.xml"};
    dp_dedup_epoch ep2 = {keys2, 1, 2, 9, NULL, NULL, 0};
    ck_assert_int_eq(dp_dedup_apply_ledger(d, (const uint8_t(*)[32])ids, 2, &ep2, &err), 0);
    ck_assert_int_eq(dp_dedup_decide(d, y), DP_DEDUP_DUPLICATE);
    dp_dedup_close(d);

    d = dp_dedup_open(state, &err);
    ck_assert_int_eq(dp_dedup_seen_before(d, z), 1);
    ck_assert_int_eq(dp_dedup_input_done(d, "12:22:/in/c.xml"), 1);
    ck_assert_int_eq(dp_dedup_meta(d, &epoch, &next), 0);
    ck_assert_uint_eq(epoch, 2);
    ck_assert_uint_eq(next, 9);
    dp_dedup_close(d);
}
END_TEST

START_TEST(dedup_many_identities) {
    dp_error err;
    dp_dedup *d = dp_dedup_open(NULL, &err);
    uint8_t id[32];
    char buf[32];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 20000; i++) {
            snprintf(buf, sizeof buf, "r%d", i);
            ident("org", buf, "dom", 100, id);
            ck_assert_int_eq(dp_dedup_decide(d, id), pass ? DP_DEDUP_DUPLICATE : DP_DEDUP_NEW);
        }
    dp_dedup_close(d);
}
END_TEST

/* ---- formatting ---------------------------------------------------------------------- */

static dp_rollup sample(void) {
    dp_rollup r = {
        .window_start = OCT2, .window_end = OCT2 + DAY,
        .reporter = "Mail, \"Q\" Co", .policy_domain = "example.com", .header_from = "a\nb",
        .source_ip = "2001:db8::1", .disposition = "none", .dkim = "pass", .spf = "fail",
        .override = "forwarded,mailing_list", .dkim_domain = "example.com", .dkim_selector = NULL,
        .dkim_result = "pass", .spf_domain = "example.com", .spf_result = "fail",
        .messages = 12, .records = 3, .first_seen = OCT2 + 5, .last_seen = OCT2 + DAY - 1,
    };
    return r;
}

START_TEST(csv_columns_follow_the_json_keys) {
    dp_rollup r = sample();
    dp_buf h = DP_BUF_INIT, j = DP_BUF_INIT;
    dp_format_rollup_csv_header(&h);
    dp_format_rollup_json(&j, &r);
    ck_assert(!h.failed && !j.failed);
    dp_buf_putc(&h, '\0');
    dp_buf_putc(&j, '\0');
    /* every header column appears in the JSON as "name": and in that order */
    const char *pos = j.data;
    char *cols = strdup(h.data);
    cols[strcspn(cols, "\n")] = '\0';
    int n = 0;
    for (char *save = NULL, *c = strtok_r(cols, ",", &save); c; c = strtok_r(NULL, ",", &save), n++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":", c);
        const char *at = strstr(pos, key);
        ck_assert_msg(at != NULL, "column %s not next in %s", c, pos);
        pos = at + strlen(key);
    }
    ck_assert_int_eq(n, 27); /* v, the window, 13 key strings, 7 source fields, 4 measures */
    free(cols);
    dp_buf_free(&h);
    dp_buf_free(&j);
}
END_TEST

START_TEST(csv_quotes_and_absent_values) {
    dp_rollup r = sample();
    dp_buf c = DP_BUF_INIT, j = DP_BUF_INIT;
    dp_format_rollup_csv(&c, &r);
    dp_format_rollup_json(&j, &r);
    dp_buf_putc(&c, '\0');
    dp_buf_putc(&j, '\0');
    ck_assert_str_eq(c.data,
                     "2,1538438400,1538524800,\"Mail, \"\"Q\"\" Co\",example.com,\"a\nb\",2001:db8::1,"
                     "none,pass,fail,\"forwarded,mailing_list\",example.com,,pass,example.com,fail,"
                     ",,,,,,,12,3,1538438405,1538524799\n");
    ck_assert_str_eq(j.data,
                     "{\"v\":2,\"window_start\":1538438400,\"window_end\":1538524800,"
                     "\"reporter\":\"Mail, \\\"Q\\\" Co\",\"policy_domain\":\"example.com\","
                     "\"header_from\":\"a\\nb\",\"source_ip\":\"2001:db8::1\",\"disposition\":\"none\","
                     "\"dkim\":\"pass\",\"spf\":\"fail\",\"override\":\"forwarded,mailing_list\","
                     "\"dkim_domain\":\"example.com\",\"dkim_selector\":null,\"dkim_result\":\"pass\","
                     "\"spf_domain\":\"example.com\",\"spf_result\":\"fail\",\"source_ptr\":null,"
                     "\"source_base_domain\":null,\"source_asn\":null,\"source_as_org\":null,"
                     "\"source_country\":null,\"source_service\":null,\"source_service_type\":null,\"messages\":12,"
                     "\"records\":3,\"first_seen\":1538438405,\"last_seen\":1538524799}");
    dp_buf_free(&c);
    dp_buf_free(&j);
}
END_TEST

int main(void) {
    Suite *s = suite_create("aggregate_engine");
    TCase *e = tcase_create("engine");
    tcase_set_timeout(e, 120);
    tcase_add_checked_fixture(e, setup, teardown);
    /* workers 1..2 x shards 1..3 */
    tcase_add_loop_test(e, engine_hands_the_sink_exact_rollups, 0, 6);
    tcase_add_test(e, engine_reports_a_failing_sink);
    tcase_add_test(e, engine_hands_a_rejected_input_back);
    suite_add_tcase(s, e);
    TCase *d = tcase_create("dedup");
    tcase_set_timeout(d, 120);
    tcase_add_checked_fixture(d, setup, teardown);
    tcase_add_test(d, dedup_identity_covers_each_part);
    tcase_add_test(d, dedup_decides_once_and_persists);
    tcase_add_test(d, dedup_many_identities);
    tcase_add_test(d, dedup_epochs_rollback_and_ledger);
    suite_add_tcase(s, d);
    TCase *f = tcase_create("format");
    tcase_add_test(f, csv_columns_follow_the_json_keys);
    tcase_add_test(f, csv_quotes_and_absent_values);
    suite_add_tcase(s, f);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int run = srunner_ntests_run(sr), failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("test_engine: %d passed, %d failed\n", run - failed, failed);
    return failed ? 1 : 0;
}
