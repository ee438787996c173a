/* test_kafka_mock — the Kafka sink's error handling, against librdkafka's
 * mock cluster (rdkafka_mock.h), through the public sink API (sink.h).
 *
 * Each test gets a fresh one-broker mock cluster (a checked fixture, so
 * with CK_FORK it lives in the test's own process) and opens
 * kafka://<mock>/rollups with short timeouts.  The tests pin return codes:
 *   - a normal epoch commits (0), the ledger's position comes back from the
 *     commit, and ledger_read gives the committed ledger records back;
 *   - a block of rollups larger than the producer queue waits for room
 *     (QUEUE_FULL) and delivers every rollup once;
 *   - retriable EndTxn errors are retried inside the commit (0);
 *   - an abortable EndTxn error, Produce errors that outlast
 *     message.timeout.ms, and a broker that goes away during the epoch make
 *     epoch_commit return DP_SINK_RETRY; the next epoch_begin gets a new
 *     producer and its commit succeeds;
 *   - a property librdkafka refuses fails dp_sink_open() with one line
 *     that names the key and never the value of a sensitive one;
 *   - URIs without brokers or with a bad topic fail before any connection.
 * librdkafka 2.0.2's mock cluster shows aborted messages to read_committed
 * consumers, so exactly-once itself is not tested here (the real-broker
 * tests in tests/kafka do that); only error paths and return codes.
 */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sink.h"
#include "test_util.h"

/* Kafka protocol ApiKeys (rdkafka_proto.h is not installed) */
#define API_PRODUCE 0
#define API_END_TXN 26

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char uri[512];

static void mock_up(void) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr), RD_KAFKA_CONF_OK);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    ck_assert_msg(mock_rk != NULL, "rd_kafka_new: %s", errstr);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    ck_assert_ptr_nonnull(mock);
    snprintf(uri, sizeof uri, "kafka://%s/rollups", rd_kafka_mock_cluster_bootstraps(mock));
    /* one partition each (auto-created ones get 4): quicker to read back */
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "rollups", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "dmarc.reports", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void mock_down(void) {
    if (mock) rd_kafka_mock_cluster_destroy(mock);
    if (mock_rk) rd_kafka_destroy(mock_rk);
    mock = NULL;
    mock_rk = NULL;
}

/* Short timeouts, so that a failing epoch fails in seconds. */
static const char *const FAST[] = {
    "message.timeout.ms=3000",    "transaction.timeout.ms=6000", "socket.timeout.ms=2000",
    "retry.backoff.ms=50",        "reconnect.backoff.ms=50",     "reconnect.backoff.max.ms=500",
    "linger.ms=5",                "log_level=2",
};
#define N_FAST (sizeof FAST / sizeof *FAST)

static dp_sink *open_sink(const char *instance, dp_error *err) {
    dp_sink_options o = {.instance_id = instance, .props = FAST, .n_props = N_FAST};
    return dp_sink_open(uri, &o, err);
}

static dp_rollup rollup(char *ip, size_t n, int i) {
    snprintf(ip, n, "192.0.2.%d", i % 256);
    dp_rollup r = {
        .window_start = 1704067200,
        .window_end = 1704153600,
        .reporter = "example.net",
        .policy_domain = "example.com",
        .header_from = "example.com",
        .source_ip = ip,
        .disposition = "none",
        .dkim = "pass",
        .spf = "pass",
        .dkim_domain = "example.com",
        .dkim_selector = "s1",
        .dkim_result = "pass",
        .spf_domain = "example.com",
        .spf_result = "pass",
        .messages = (uint64_t)i + 1,
        .records = 1,
        .first_seen = 1704067200,
        .last_seen = 1704153599,
    };
    return r;
}

/* One epoch's writes: n rollups one by one, n in one block (the framing of
 * format_rollup), a report line and a ledger record.  All must return 0. */
static void write_epoch(dp_sink *s, int n, const char *ledger) {
    dp_error err;
    char ip[32];
    for (int i = 0; i < n; i++) {
        dp_rollup r = rollup(ip, sizeof ip, i);
        ck_assert_int_eq(dp_sink_write_rollup(s, &r, &err), 0);
    }
    dp_buf b = DP_BUF_INIT;
    for (int i = 0; i < n; i++) {
        dp_rollup r = rollup(ip, sizeof ip, 100 + i);
        dp_sink_format_rollup(s, &b, &r);
    }
    ck_assert(!b.failed);
    ck_assert_int_eq(dp_sink_write_block(s, b.data, b.len, (uint64_t)n, &err), 0);
    dp_buf_free(&b);
    ck_assert_int_eq(dp_sink_write_report(s, "{\"report_id\":\"r1\"}\n", &err), 0);
    ck_assert_int_eq(dp_sink_ledger_write(s, ledger, strlen(ledger), &err), 0);
}

/* Messages in TOPIC (every partition, from the beginning); the first key
 * seen goes to first_key.  -1 when the topic cannot be read. */
static long count_messages(const char *topic, char *first_key, size_t fk_size) {
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mock), errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof errstr)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    long n = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
        md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        n = 0;
        for (int p = 0; n >= 0 && p < md->topics[0].partition_cnt; p++) {
            int32_t part = md->topics[0].partitions[p].id;
            if (rd_kafka_consume_start(rkt, part, RD_KAFKA_OFFSET_BEGINNING) != 0) {
                n = -1;
                break;
            }
            for (;;) {
                rd_kafka_message_t *m = rd_kafka_consume(rkt, part, 5000);
                if (!m) {
                    n = -1; /* no EOF within 5 s */
                    break;
                }
                rd_kafka_resp_err_t e = m->err;
                if (!e) {
                    if (n == 0 && first_key && m->key)
                        snprintf(first_key, fk_size, "%.*s", (int)m->key_len, (const char *)m->key);
                    n++;
                }
                rd_kafka_message_destroy(m);
                if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF) break;
                if (e) {
                    n = -1;
                    break;
                }
            }
            rd_kafka_consume_stop(rkt, part);
        }
    }
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return n;
}

typedef struct ledger_seen {
    int n;
    char rec[4][64];
    uint64_t next[4];
} ledger_seen;

static int on_ledger(void *ctx, const char *rec, size_t len, uint64_t next) {
    ledger_seen *ls = ctx;
    if (ls->n < 4) {
        snprintf(ls->rec[ls->n], sizeof ls->rec[0], "%.*s", (int)len, rec);
        ls->next[ls->n] = next;
    }
    ls->n++;
    return 0;
}

/* ---- the normal path ------------------------------------------------------ */

START_TEST(normal_epochs_commit) {
    dp_error err;
    dp_sink *s = open_sink("t-normal", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ck_assert(dp_sink_has_epochs(s));

    uint64_t next1 = 0, next2 = 0;
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    write_epoch(s, 5, "{\"epoch\":1}");
    ck_assert_msg(dp_sink_commit(s, &next1, &err) == 0, "commit: %s", err.msg);
    ck_assert_uint_ge(next1, 1); /* after the ledger record's offset */

    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    write_epoch(s, 5, "{\"epoch\":2}");
    ck_assert_msg(dp_sink_commit(s, &next2, &err) == 0, "commit: %s", err.msg);
    ck_assert_uint_gt(next2, next1);
    ck_assert_uint_eq(s->rollups_written, 20);
    ck_assert_uint_eq(s->reports_written, 2);

    /* the ledger, read back from the start and from after epoch 1 */
    ledger_seen ls = {0};
    ck_assert_msg(dp_sink_ledger_read(s, 0, on_ledger, &ls, &err) == 0, "ledger_read: %s", err.msg);
    ck_assert_int_eq(ls.n, 2);
    ck_assert_str_eq(ls.rec[0], "{\"epoch\":1}");
    ck_assert_str_eq(ls.rec[1], "{\"epoch\":2}");
    ck_assert_uint_eq(ls.next[0], next1);
    ck_assert_uint_eq(ls.next[1], next2);
    ledger_seen ls2 = {0};
    ck_assert_int_eq(dp_sink_ledger_read(s, next1, on_ledger, &ls2, &err), 0);
    ck_assert_int_eq(ls2.n, 1);
    ck_assert_str_eq(ls2.rec[0], "{\"epoch\":2}");

    ck_assert_int_eq(dp_sink_close(s, &err), 0);

    /* 2 epochs x (5 + 5) rollups, keyed policy_domain|source_ip */
    char key[128] = "";
    ck_assert_int_eq(count_messages("rollups", key, sizeof key), 20);
    ck_assert_msg(strncmp(key, "example.com|192.0.2.", 20) == 0, "key '%s'", key);
    ck_assert_int_eq(count_messages("dmarc.reports", NULL, 0), 2);
}
END_TEST

START_TEST(ledger_of_an_unknown_topic_is_empty) {
    dp_error err;
    dp_sink *s = open_sink("t-empty-ledger", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ledger_seen ls = {0};
    ck_assert_msg(dp_sink_ledger_read(s, 0, on_ledger, &ls, &err) == 0, "ledger_read: %s", err.msg);
    ck_assert_int_eq(ls.n, 0);
    dp_sink_close(s, &err);
}
END_TEST

START_TEST(calls_outside_an_epoch_are_refused) {
    dp_error err;
    dp_sink *s = open_sink("t-usage", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    uint64_t next = 99;
    ck_assert_int_eq(dp_sink_commit(s, &next, &err), -1);
    ck_assert_uint_eq(next, 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "without an epoch"));
    ck_assert_int_eq(dp_sink_ledger_write(s, "{}", 2, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "without an epoch"));
    dp_sink_close(s, &err);
}
END_TEST

/* A block far larger than the producer queue: produce_batch takes what
 * fits, the rest waits for delivery reports to make room and is sent
 * again; every rollup arrives, none twice. */
START_TEST(block_larger_than_the_queue_is_delivered_once) {
    static const char *const props[] = {
        "message.timeout.ms=10000", "transaction.timeout.ms=20000", "linger.ms=1",
        "queue.buffering.max.messages=40", "log_level=2",
    };
    dp_sink_options o = {.instance_id = "t-queue-full", .props = props, .n_props = sizeof props / sizeof *props};
    dp_error err;
    dp_sink *s = dp_sink_open(uri, &o, &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    enum { N = 1000 };
    dp_buf b = DP_BUF_INIT;
    char ip[32];
    for (int i = 0; i < N; i++) {
        dp_rollup r = rollup(ip, sizeof ip, i);
        dp_sink_format_rollup(s, &b, &r);
    }
    ck_assert(!b.failed);
    ck_assert_int_eq(dp_sink_write_block(s, b.data, b.len, N, &err), 0);
    dp_buf_free(&b);
    ck_assert_int_eq(dp_sink_ledger_write(s, "{}", 2, &err), 0);
    uint64_t next = 0;
    ck_assert_msg(dp_sink_commit(s, &next, &err) == 0, "commit: %s", err.msg);
    ck_assert_uint_eq(s->rollups_written, N);
    ck_assert_int_eq(dp_sink_close(s, &err), 0);
    ck_assert_int_eq(count_messages("rollups", NULL, 0), N);
}
END_TEST

/* An epoch dropped by epoch_abort leaves the sink usable. */
START_TEST(abort_then_next_epoch_commits) {
    dp_error err;
    dp_sink *s = open_sink("t-abort", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    write_epoch(s, 3, "{\"epoch\":1}");
    dp_sink_epoch_abort(s);
    uint64_t next = 0;
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    write_epoch(s, 3, "{\"epoch\":1}");
    ck_assert_msg(dp_sink_commit(s, &next, &err) == 0, "commit: %s", err.msg);
    ck_assert_uint_ge(next, 1);
    dp_sink_close(s, &err);
}
END_TEST

/* A bug found here: librdkafka 2.0.2 aborts the process (assertion
 * `rk->rk_eos.txn_req_cnt > 0' in rd_kafka_txn_handle_AddPartitionsToTxn)
 * when a transactional producer is destroyed while the request adding the
 * epoch's partitions is in flight, which is what epoch_abort right after
 * the first writes did (purge + destroy).  producer_drop now aborts the
 * transaction first.  Before the fix this died within a few hundred
 * rounds, usually within 0.5 s. */
START_TEST(abort_right_after_writes_race) {
    dp_error err;
    dp_sink *s = open_sink("t-abort-race", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
        write_epoch(s, 1, "{\"epoch\":1}");
        dp_sink_epoch_abort(s);
    }
    dp_sink_close(s, &err);
}
END_TEST

/* ---- injected errors ------------------------------------------------------- */

/* Retriable EndTxn errors are retried by librdkafka within the commit. */
START_TEST(retriable_endtxn_errors_still_commit) {
    dp_error err;
    dp_sink *s = open_sink("t-endtxn-retry", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    write_epoch(s, 5, "{\"epoch\":1}");
    rd_kafka_mock_push_request_errors(mock, API_END_TXN, 3, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    uint64_t next = 0;
    ck_assert_msg(dp_sink_commit(s, &next, &err) == 0, "commit: %s", err.msg);
    ck_assert_uint_ge(next, 1);
    dp_sink_close(s, &err);
}
END_TEST

/* Commits the next epoch after one that failed: a new producer. */
static void next_epoch_commits(dp_sink *s) {
    dp_error err;
    uint64_t next = 0;
    ck_assert_msg(dp_sink_epoch_begin(s, &err) == 0, "begin after a failed epoch: %s", err.msg);
    write_epoch(s, 5, "{\"epoch\":1}");
    int rc = dp_sink_commit(s, &next, &err);
    ck_assert_msg(rc == 0, "commit after a failed epoch returned %d: %s", rc, err.msg);
    ck_assert_uint_ge(next, 1);
}

/* An abortable error on EndTxn(commit): the epoch is dropped (RETRY). */
START_TEST(abortable_endtxn_error_retries_the_epoch) {
    dp_error err;
    dp_sink *s = open_sink("t-endtxn-abort", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    write_epoch(s, 5, "{\"epoch\":1}");
    rd_kafka_mock_push_request_errors(mock, API_END_TXN, 1, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID);
    uint64_t next = 99;
    int rc = dp_sink_commit(s, &next, &err);
    ck_assert_msg(rc == DP_SINK_RETRY, "commit returned %d (%s), expected DP_SINK_RETRY", rc, err.msg);
    ck_assert_uint_eq(next, 0);
    ck_assert_msg(strstr(err.msg, "epoch aborted") && strstr(err.msg, "EndTxn"), "%s", err.msg);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    /* writes between a failed commit and the next begin are dropped quietly */
    char ip[32];
    dp_rollup r = rollup(ip, sizeof ip, 1);
    ck_assert_int_eq(dp_sink_write_rollup(s, &r, &err), 0);
    next_epoch_commits(s);
    dp_sink_close(s, &err);
}
END_TEST

/* Produce keeps failing (a retriable error, NOT_ENOUGH_REPLICAS) until the
 * messages time out: the epoch fails with RETRY, the next one commits. */
START_TEST(produce_errors_past_the_timeout_retry_the_epoch) {
    dp_error err;
    dp_sink *s = open_sink("t-produce", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    enum { N_ERR = 2000 };
    rd_kafka_resp_err_t *errs = malloc(N_ERR * sizeof *errs);
    ck_assert_ptr_nonnull(errs);
    for (int i = 0; i < N_ERR; i++) errs[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
    rd_kafka_mock_push_request_errors_array(mock, API_PRODUCE, N_ERR, errs);
    free(errs);
    write_epoch(s, 5, "{\"epoch\":1}");
    uint64_t next = 99;
    int rc = dp_sink_commit(s, &next, &err);
    ck_assert_msg(rc == DP_SINK_RETRY, "commit returned %d (%s), expected DP_SINK_RETRY", rc, err.msg);
    ck_assert_uint_eq(next, 0);
    ck_assert_msg(strstr(err.msg, "epoch aborted") && strstr(err.msg, "timed out"), "%s", err.msg);
    rd_kafka_mock_clear_request_errors(mock, API_PRODUCE);
    next_epoch_commits(s);
    dp_sink_close(s, &err);
}
END_TEST

/* A produce error that is not retriable fails the messages at once. */
START_TEST(permanent_produce_error_retries_the_epoch) {
    dp_error err;
    dp_sink *s = open_sink("t-produce-perm", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    rd_kafka_mock_push_request_errors(mock, API_PRODUCE, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    write_epoch(s, 5, "{\"epoch\":1}");
    uint64_t next = 99;
    int rc = dp_sink_commit(s, &next, &err);
    ck_assert_msg(rc == DP_SINK_RETRY, "commit returned %d (%s), expected DP_SINK_RETRY", rc, err.msg);
    ck_assert_msg(strstr(err.msg, "epoch aborted") && strstr(err.msg, "authorization"), "%s", err.msg);
    rd_kafka_mock_clear_request_errors(mock, API_PRODUCE);
    next_epoch_commits(s);
    dp_sink_close(s, &err);
}
END_TEST

/* The broker goes away with the epoch's messages unsent: they time out,
 * the epoch fails (RETRY); the broker comes back and the next one commits. */
START_TEST(broker_down_during_the_epoch_retries_it) {
    dp_error err;
    dp_sink *s = open_sink("t-down", &err);
    ck_assert_msg(s != NULL, "open: %s", err.msg);
    ck_assert_int_eq(dp_sink_epoch_begin(s, &err), 0);
    ck_assert_int_eq(rd_kafka_mock_broker_set_down(mock, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    write_epoch(s, 5, "{\"epoch\":1}");
    uint64_t next = 99;
    int rc = dp_sink_commit(s, &next, &err);
    ck_assert_msg(rc == DP_SINK_RETRY, "commit returned %d (%s), expected DP_SINK_RETRY", rc, err.msg);
    ck_assert_msg(strstr(err.msg, "epoch aborted") && strstr(err.msg, "timed out"), "%s", err.msg);
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(mock, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    next_epoch_commits(s);
    dp_sink_close(s, &err);
}
END_TEST

/* ---- configuration ----------------------------------------------------------- */

/* Opens with PROPS; must fail with one line that names WANT and never
 * contains "hunter2". */
static void open_fails(const char *const *props, size_t n, const char *want) {
    dp_error err;
    memset(&err, 0, sizeof err);
    dp_sink_options o = {.instance_id = "t-conf", .props = props, .n_props = n};
    dp_sink *s = dp_sink_open(uri, &o, &err);
    if (s) dp_sink_close(s, &err);
    ck_assert_msg(s == NULL, "open with %s succeeded", props[0]);
    ck_assert_msg(strstr(err.msg, "hunter2") == NULL, "the secret is in the error: %s", err.msg);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "not one line: %s", err.msg);
    ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' is not in the error: %s", want, err.msg);
}

START_TEST(unknown_sensitive_property_is_named_without_its_value) {
    const char *const a[] = {"sasl.passwordx=hunter2"};
    open_fails(a, 1, "sasl.passwordx");
    const char *const b[] = {"ssl.key.passwordd=hunter2"};
    open_fails(b, 1, "ssl.key.passwordd");
    const char *const c[] = {"my.token=hunter2"};
    open_fails(c, 1, "my.token");
}
END_TEST

START_TEST(bad_property_next_to_a_password_hides_the_password) {
    /* sasl.password itself is accepted; the mechanism is refused when
     * the producer is created */
    const char *const a[] = {"sasl.password=hunter2", "security.protocol=sasl_plaintext", "sasl.mechanisms=NOPE"};
    open_fails(a, 3, "SASL mechanism");
    const char *const a2[] = {"sasl.password=hunter2", "security.protocol=sasl_plaintext", "sasl.mechanisms=PLAIN"};
    open_fails(a2, 3, "sasl.username");
    /* an invalid value for a property that is not sensitive is shown */
    const char *const a3[] = {"sasl.password=hunter2", "compression.type=hunter3"};
    open_fails(a3, 2, "compression.type");
    /* a non-sensitive unknown property: librdkafka's reason is kept */
    const char *const b[] = {"sasl.password=hunter2", "no.such.property=1"};
    open_fails(b, 2, "no.such.property");
    /* -X without '=' (a value given as the whole argument) */
    const char *const c[] = {"hunter2"};
    open_fails(c, 1, "key=value");
    const char *const d[] = {"=hunter2"};
    open_fails(d, 1, "key=value");
}
END_TEST

START_TEST(sensitive_property_from_env_and_file_is_hidden) {
    setenv("DMARCPIPE_KAFKA_SASL_PASSWORDX", "hunter2", 1);
    const char *const none[] = {"linger.ms=5"};
    open_fails(none, 1, "sasl.passwordx");
    unsetenv("DMARCPIPE_KAFKA_SASL_PASSWORDX");

    char path[] = "/tmp/test_kafka_mock.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# a comment\nsasl.oauthbearer.client.secretx = hunter2\n", f);
    fclose(f);
    dp_error err;
    memset(&err, 0, sizeof err);
    dp_sink_options o = {.instance_id = "t-conf", .config_file = path};
    dp_sink *s = dp_sink_open(uri, &o, &err);
    unlink(path);
    if (s) dp_sink_close(s, &err);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err.msg, "hunter2") == NULL, "the secret is in the error: %s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "secretx"));

    /* a line without '=' is refused by its number, not its text */
    char path2[] = "/tmp/test_kafka_mock.XXXXXX";
    fd = mkstemp(path2);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs("sasl.password hunter2\n", f);
    fclose(f);
    o.config_file = path2;
    s = dp_sink_open(uri, &o, &err);
    unlink(path2);
    if (s) dp_sink_close(s, &err);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err.msg, "hunter2") == NULL, "the secret is in the error: %s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, ":1:"));
}
END_TEST

/* ---- URIs ------------------------------------------------------------------- */

START_TEST(invalid_uris_fail_before_connecting) {
    static const char *const bad[] = {
        "kafka://127.0.0.1:9",           /* no topic */
        "kafka://127.0.0.1:9/",          /* empty topic */
        "kafka:///rollups",              /* no brokers */
        "kafka://127.0.0.1:9/bad topic", /* not [A-Za-z0-9._-] */
        "kafka://127.0.0.1:9/a/b",
        "kafka://",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dp_error err;
        memset(&err, 0, sizeof err);
        dp_sink *s = dp_sink_open(bad[i], NULL, &err);
        if (s) dp_sink_close(s, &err);
        ck_assert_msg(s == NULL, "%s was accepted", bad[i]);
        ck_assert_int_eq(err.kind, DP_ERR_USAGE);
        ck_assert_msg(strstr(err.msg, "kafka://HOST:PORT") != NULL, "%s: %s", bad[i], err.msg);
    }
    /* a topic of 250 characters is one too long */
    char longuri[300];
    snprintf(longuri, sizeof longuri, "kafka://127.0.0.1:9/%0250d", 0);
    dp_error err;
    ck_assert_ptr_null(dp_sink_open(longuri, NULL, &err));
    ck_assert_int_eq(err.kind, DP_ERR_USAGE);
    /* the reports and ledger topics are checked too */
    dp_sink_options o = {.reports_topic = "no/slashes"};
    ck_assert_ptr_null(dp_sink_open(uri, &o, &err));
    ck_assert_int_eq(err.kind, DP_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "topic names"));
    dp_sink_options o2 = {.instance_id = "bad id"};
    ck_assert_ptr_null(dp_sink_open(uri, &o2, &err));
    ck_assert_int_eq(err.kind, DP_ERR_USAGE);
}
END_TEST

int main(void) {
    Suite *s = suite_create("kafka_mock");
    TCase *tc = tcase_create("epochs");
    tcase_add_checked_fixture(tc, mock_up, mock_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, normal_epochs_commit);
    tcase_add_test(tc, ledger_of_an_unknown_topic_is_empty);
    tcase_add_test(tc, calls_outside_an_epoch_are_refused);
    tcase_add_test(tc, abort_then_next_epoch_commits);
    tcase_add_test(tc, block_larger_than_the_queue_is_delivered_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("race");
    tcase_add_checked_fixture(tc, mock_up, mock_down);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, abort_right_after_writes_race);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, mock_up, mock_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, retriable_endtxn_errors_still_commit);
    tcase_add_test(tc, abortable_endtxn_error_retries_the_epoch);
    tcase_add_test(tc, produce_errors_past_the_timeout_retry_the_epoch);
    tcase_add_test(tc, permanent_produce_error_retries_the_epoch);
    tcase_add_test(tc, broker_down_during_the_epoch_retries_it);
    suite_add_tcase(s, tc);

    tc = tcase_create("config");
    tcase_add_checked_fixture(tc, mock_up, mock_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unknown_sensitive_property_is_named_without_its_value);
    tcase_add_test(tc, bad_property_next_to_a_password_hides_the_password);
    tcase_add_test(tc, sensitive_property_from_env_and_file_is_hidden);
    tcase_add_test(tc, invalid_uris_fail_before_connecting);
    suite_add_tcase(s, tc);

    return tu_run(s);
}
