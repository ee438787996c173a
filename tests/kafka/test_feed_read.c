/* test_feed_read — dp_feed_read (sink/feed_read.c) against the real broker
 * of the kafka fixture, through the public sink API.
 *
 * A topic of three partitions is filled by a transactional producer of the
 * test's own: a committed transaction, an aborted one, another committed
 * one, then a fourth left open while the feed is read.  The tests pin:
 *   - every committed message comes once, with where = "URI [P] @OFFSET"
 *     naming its partition and offset, offsets rising per partition;
 *     nothing of the aborted or the open transaction is seen, and the read
 *     ends although a transaction is open (read_committed's end is the
 *     last stable offset);
 *   - messages committed while the read is under way are not read: the
 *     ends are those found at the start;
 *   - a callback that returns non-zero stops the read at once: -1, err set;
 *   - an empty topic is read as empty; a topic that does not exist is an
 *     error naming it, and is not created by the read;
 *   - a broker that is not there: -1 with "no broker answered" within
 *     broker_timeout (2 s) and a little;
 *   - configuration goes through the sink's code: a refused property is
 *     named, never with a sensitive value; a -X without '=' is refused.
 * The aborted transaction needs a real broker: librdkafka 2.0.2's mock
 * cluster shows aborted messages to read_committed consumers.
 *
 * usage: test_feed_read BOOTSTRAP_FILE   (CK_FORK=no: the tests share the
 * topic and the open transaction)
 */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"

#define PARTS 3
#define FIRST 5   /* committed, per partition */
#define ABORTED 3 /* aborted, per partition */
#define SECOND 4  /* committed, per partition */
#define OPEN 2    /* in the transaction left open */

static char bootstrap[256], topic[96], empty_topic[128], uri[512];
static rd_kafka_t *open_txn; /* the producer whose transaction stays open */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *txn_id) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
    if (txn_id)
        ck_assert_int_eq(rd_kafka_conf_set(conf, "transactional.id", txn_id, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    ck_assert_msg(rk != NULL, "rd_kafka_new: %s", errstr);
    if (txn_id) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
        ck_assert_msg(!e, "init_transactions: %s", e ? rd_kafka_error_string(e) : "");
    }
    return rk;
}

static void create_topic(const char *name, int partitions) {
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, NULL);
    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, errstr, sizeof errstr);
    ck_assert_msg(nt != NULL, "NewTopic: %s", errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    ck_assert_ptr_nonnull(ev);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    ck_assert_ptr_nonnull(res);
    size_t n;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_msg(rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_NO_ERROR, "create %s: %s", name,
                  rd_kafka_err2str(rd_kafka_topic_result_error(tr[0])));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
}

static void produce(rd_kafka_t *rk, const char *tag, int per_partition) {
    for (int p = 0; p < PARTS; p++)
        for (int i = 0; i < per_partition; i++) {
            char v[64];
            int n = snprintf(v, sizeof v, "%s %d %d", tag, p, i);
            ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(v, (size_t)n),
                                               RD_KAFKA_V_END),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
        }
}

static void transaction(rd_kafka_t *rk, const char *tag, int per_partition, int commit) {
    rd_kafka_error_t *e = rd_kafka_begin_transaction(rk);
    ck_assert_msg(!e, "begin: %s", e ? rd_kafka_error_string(e) : "");
    produce(rk, tag, per_partition);
    /* an abort drops what is still queued: the aborted messages must be in
     * the log first, for read_committed to have something to hide */
    if (!commit) ck_assert_int_eq(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    e = commit ? rd_kafka_commit_transaction(rk, 30000) : rd_kafka_abort_transaction(rk, 30000);
    ck_assert_msg(!e, "end: %s", e ? rd_kafka_error_string(e) : "");
}

/* Run once, before the tests: the topics and the transactions. */
static void fill(void) {
    snprintf(topic, sizeof topic, "feedread-%ld-%ld", (long)getpid(), (long)time(NULL));
    snprintf(empty_topic, sizeof empty_topic, "%s-empty", topic);
    snprintf(uri, sizeof uri, "kafka://%s/%s", bootstrap, topic);
    create_topic(topic, PARTS);
    create_topic(empty_topic, 1);
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, topic);
    transaction(rk, "first", FIRST, 1);
    transaction(rk, "aborted", ABORTED, 0);
    transaction(rk, "second", SECOND, 1);
    rd_kafka_destroy(rk);
    char id[160];
    snprintf(id, sizeof id, "%s-open", topic);
    open_txn = client(RD_KAFKA_PRODUCER, id);
    rd_kafka_error_t *e = rd_kafka_begin_transaction(open_txn);
    ck_assert_msg(!e, "begin: %s", e ? rd_kafka_error_string(e) : "");
    produce(open_txn, "open", OPEN);
    ck_assert_int_eq(rd_kafka_flush(open_txn, 30000), RD_KAFKA_RESP_ERR_NO_ERROR); /* in the log, uncommitted */
}

static void unfill(void) {
    if (open_txn) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(open_txn, 30000);
        if (e) rd_kafka_error_destroy(e);
        rd_kafka_destroy(open_txn);
        open_txn = NULL;
    }
}

typedef struct seen {
    int count[PARTS][2]; /* first, second */
    int64_t last_offset[PARTS];
    int lines, bad, stop_after;
    char problem[512];
    rd_kafka_t *late; /* commits a transaction at the first line */
} seen;

static int take(void *ctx, const char *line, size_t len, const char *where) {
    seen *s = ctx;
    s->lines++;
    char v[64], tag[16];
    int p, i;
    snprintf(v, sizeof v, "%.*s", (int)(len < sizeof v - 1 ? len : sizeof v - 1), line);
    char want_prefix[600];
    snprintf(want_prefix, sizeof want_prefix, "%s [", uri);
    long long off = -1;
    int wp = -1;
    if (sscanf(v, "%15s %d %d", tag, &p, &i) != 3 || p < 0 || p >= PARTS ||
        strncmp(where, want_prefix, strlen(want_prefix)) != 0 ||
        sscanf(where + strlen(want_prefix), "%d] @%lld", &wp, &off) != 2 || wp != p || off <= s->last_offset[p]) {
        if (!s->bad++) snprintf(s->problem, sizeof s->problem, "line '%s' at '%s'", v, where);
    } else {
        s->last_offset[p] = off;
        if (strcmp(tag, "first") == 0) s->count[p][0]++;
        else if (strcmp(tag, "second") == 0) s->count[p][1]++;
        else if (!s->bad++) snprintf(s->problem, sizeof s->problem, "line '%s' at '%s' read", v, where);
    }
    if (s->late && s->lines == 1) transaction(s->late, "late", 2, 1);
    return s->stop_after && s->lines >= s->stop_after;
}

static void init_seen(seen *s) {
    memset(s, 0, sizeof *s);
    for (int p = 0; p < PARTS; p++) s->last_offset[p] = -1;
}

static void check_all_committed(const seen *s) {
    ck_assert_msg(s->bad == 0, "%d unexpected lines, the first: %s", s->bad, s->problem);
    for (int p = 0; p < PARTS; p++) {
        ck_assert_int_eq(s->count[p][0], FIRST);
        ck_assert_int_eq(s->count[p][1], SECOND);
    }
    ck_assert_int_eq(s->lines, PARTS * (FIRST + SECOND));
}

START_TEST(committed_lines_once_while_a_transaction_is_open) {
    seen s;
    init_seen(&s);
    dp_error err = {0};
    dp_sink_options o = {.broker_timeout = 30};
    double t0 = now();
    int rc = dp_feed_read(uri, &o, take, &s, &err);
    ck_assert_msg(rc == 0, "dp_feed_read: %s", err.msg);
    check_all_committed(&s);
    ck_assert_msg(now() - t0 < 15, "took %.1f s", now() - t0);
    /* a second read sees the same (`dmarcpipe report` reads twice) */
    init_seen(&s);
    ck_assert_int_eq(dp_feed_read(uri, NULL, take, &s, &err), 0);
    check_all_committed(&s);
}
END_TEST

START_TEST(callback_stops_the_read) {
    seen s;
    init_seen(&s);
    s.stop_after = 1;
    dp_error err = {0};
    ck_assert_int_eq(dp_feed_read(uri, NULL, take, &s, &err), -1);
    ck_assert_int_eq(s.lines, 1);
    ck_assert_int_eq(err.kind, DP_ERR_HANDLER);
    ck_assert_msg(strstr(err.msg, "stopped at") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(empty_topic_is_empty) {
    seen s;
    init_seen(&s);
    char u[512];
    snprintf(u, sizeof u, "kafka://%s/%s", bootstrap, empty_topic);
    dp_error err = {0};
    ck_assert_msg(dp_feed_read(u, NULL, take, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s.lines, 0);
}
END_TEST

START_TEST(missing_topic_is_an_error_and_stays_missing) {
    seen s;
    init_seen(&s);
    char u[512], want[1100];
    snprintf(u, sizeof u, "kafka://%s/%s-none", bootstrap, topic);
    snprintf(want, sizeof want, "kafka %s: topic %s-none does not exist", u, topic);
    for (int i = 0; i < 2; i++) { /* the first read must not have made it */
        dp_error err = {0};
        ck_assert_int_eq(dp_feed_read(u, NULL, take, &s, &err), -1);
        ck_assert_str_eq(err.msg, want);
    }
    ck_assert_int_eq(s.lines, 0);
}
END_TEST

START_TEST(absent_broker_gives_up_after_the_timeout) {
    seen s;
    init_seen(&s);
    dp_sink_options o = {.broker_timeout = 2};
    dp_error err = {0};
    double t0 = now();
    /* port 1 on loopback: nothing listens there */
    ck_assert_int_eq(dp_feed_read("kafka://127.0.0.1:1/dmarc.rollups", &o, take, &s, &err), -1);
    double took = now() - t0;
    ck_assert_msg(took >= 1.5 && took < 6, "took %.1f s", took);
    ck_assert_msg(strstr(err.msg, "no broker answered for 2 s") && strstr(err.msg, "--broker-timeout"), "%s", err.msg);
}
END_TEST

START_TEST(configuration_is_the_sinks) {
    seen s;
    init_seen(&s);
    const char *secret[] = {"my.secret.thing=TOPSECRET42"};
    dp_sink_options o = {.props = secret, .n_props = 1};
    dp_error err = {0};
    ck_assert_int_eq(dp_feed_read(uri, &o, take, &s, &err), -1);
    ck_assert_msg(strstr(err.msg, "'my.secret.thing' refused") && !strstr(err.msg, "TOPSECRET42"), "%s", err.msg);
    const char *bare[] = {"linger.ms"};
    o.props = bare;
    ck_assert_int_eq(dp_feed_read(uri, &o, take, &s, &err), -1);
    ck_assert_msg(strstr(err.msg, "-X expects key=value") != NULL, "%s", err.msg);
    /* a consumer's isolation level is not the user's: read_uncommitted
     * still reads only what was committed */
    const char *uncommitted[] = {"isolation.level=read_uncommitted"};
    o.props = uncommitted;
    ck_assert_msg(dp_feed_read(uri, &o, take, &s, &err) == 0, "%s", err.msg);
    check_all_committed(&s);
    ck_assert_int_eq(dp_feed_read("kafka:///x", NULL, take, &s, &err), -1);
    ck_assert_int_eq(err.kind, DP_ERR_USAGE);
}
END_TEST

/* Last: it ends the open transaction and commits more. */
START_TEST(later_commits_are_not_read) {
    unfill();
    char id[160];
    snprintf(id, sizeof id, "%s-late", topic);
    seen s;
    init_seen(&s);
    s.late = client(RD_KAFKA_PRODUCER, id);
    dp_error err = {0};
    /* the reader fetches little at a time, so that it has not reached the
     * end yet when the late transaction commits */
    const char *slow[] = {"queued.min.messages=1", "max.partition.fetch.bytes=1", "message.max.bytes=1000", "fetch.max.bytes=1000"};
    dp_sink_options o = {.props = slow, .n_props = sizeof slow / sizeof *slow};
    int rc = dp_feed_read(uri, &o, take, &s, &err);
    rd_kafka_destroy(s.late);
    ck_assert_msg(rc == 0, "%s", err.msg);
    check_all_committed(&s);
    /* and a read that begins after them sees them */
    init_seen(&s);
    ck_assert_int_eq(dp_feed_read(uri, NULL, take, &s, &err), 0);
    ck_assert_int_eq(s.lines, PARTS * (FIRST + SECOND + 2));
}
END_TEST

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_feed_read BOOTSTRAP_FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f || !fgets(bootstrap, sizeof bootstrap, f)) {
        fprintf(stderr, "test_feed_read: cannot read %s\n", argv[1]);
        return 2;
    }
    fclose(f);
    bootstrap[strcspn(bootstrap, "\r\n")] = '\0';
    Suite *suite = suite_create("feed_read");
    TCase *tc = tcase_create("kafka");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, fill, unfill);
    tcase_add_test(tc, committed_lines_once_while_a_transaction_is_open);
    tcase_add_test(tc, callback_stops_the_read);
    tcase_add_test(tc, empty_topic_is_empty);
    tcase_add_test(tc, missing_topic_is_an_error_and_stays_missing);
    tcase_add_test(tc, absent_broker_gives_up_after_the_timeout);
    tcase_add_test(tc, configuration_is_the_sinks);
    tcase_add_test(tc, later_commits_are_not_read);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
