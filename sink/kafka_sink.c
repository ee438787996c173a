/* kafka_sink — rollups into Kafka, exactly once, for the warehouse.
 *
 * One transactional producer (librdkafka) carries three topics: the
 * rollups (the URI's topic; key "policy_domain|source_ip", value the
 * rollup's JSON, schema version included), the reports feed (one JSON
 * message per accepted report) and the ledger (one record per epoch, naming
 * what the epoch took; written by `dmarcpipe run`, opaque here).  Each
 * epoch is one transaction: a read_committed consumer sees all of an epoch
 * or none of it, and the ledger record commits with the data it describes.
 *
 * Errors, by librdkafka's classes:
 *   - a write that fails while the epoch is open marks the epoch failed and
 *     is otherwise ignored (later writes of the epoch are skipped: it will
 *     be run again), so the engine never stops for a broker that is away;
 *   - commit: retriable errors call commit again (the broker may be down:
 *     we wait, checking for SIGTERM); anything else ends the epoch;
 *   - an epoch that ends without commit is dropped by destroying the
 *     producer (queue purged) and making a new one: init_transactions with
 *     the same transactional.id fences the old producer and aborts its open
 *     transaction, and gives the new one a bumped epoch.  That one path
 *     covers abortable errors, fatal errors (the "sequence desynchronization"
 *     of librdkafka 2.0.2 after disconnects), and 2.0.2's commit that fails
 *     after an abort until the producer epoch is bumped; it is also what a
 *     restart after kill -9 does.
 *
 * Memory stays bounded: the producer queue is capped
 * (queue.buffering.max.kbytes), and a write that finds it full polls and
 * waits, which backs up the shards, the rings and the workers.
 *
 * Configuration: our defaults (zstd, linger and batch sizes tuned for
 * throughput, transaction timeouts), then the user's, as common/dp_kafka.c
 * loads them (a properties file, DMARCPIPE_KAFKA_* variables, -X), which
 * also holds the consumer that reads the ledger back.  Values are never
 * printed.
 *
 * Threads: the producer is thread-safe, so this sink is `concurrent`:
 * shards produce at once without the sink lock.  Epoch calls come from the
 * one thread that drives the run, between engine runs.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_clock.h"
#include "sink_internal.h"

#define COMMIT_TIMEOUT_MS 10000 /* per attempt: SIGTERM is checked between */

typedef struct kafka_sink {
    dp_sink base;
    dp_kafka_client kc; /* the URI, its brokers and topic, the configuration, stop and --broker-timeout */
    char *reports_topic, *ledger_topic, *txn_id, *instance;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt_rollups, *rkt_reports, *rkt_ledger;
    rd_kafka_t *ledger_reader; /* the consumer that reads the ledger back, kept */
    int in_txn;
    _Atomic int epoch_failed;
    pthread_mutex_t err_lock;
    char epoch_err[512]; /* the first failure of the epoch */
    int64_t ledger_offset; /* from the ledger record's delivery report */
    char ledger_marker;    /* its address tags the ledger record */
    dp_metric *delivery_errors; /* dmarcpipe_kafka_delivery_errors_total (NULL: not counted) */
} kafka_sink;

static const dp_sink_ops KAFKA_OPS;

static int stopping(const kafka_sink *ks) { return dp_kafka_stopping(&ks->kc); }

/* A batch run waits for an absent broker only so long (--broker-timeout,
 * a minute by default), then ends with an error and nothing acknowledged;
 * a follower waits for ever, saying so in its log. */
static int given_up(const kafka_sink *ks, double waiting_since) {
    return dp_kafka_given_up(&ks->kc, waiting_since);
}

static void note_epoch_error(kafka_sink *ks, const char *fmt, const char *what) {
    pthread_mutex_lock(&ks->err_lock);
    if (!ks->epoch_err[0]) snprintf(ks->epoch_err, sizeof ks->epoch_err, fmt, what);
    pthread_mutex_unlock(&ks->err_lock);
    atomic_store(&ks->epoch_failed, 1);
}

/* ---- the producer's configuration ------------------------------------------- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    kafka_sink *ks = ((dp_kafka_client *)opaque)->owner;
    if (m->err) {
        /* our own purge (an epoch being dropped) is not news */
        if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
            dp_metrics_add(ks->delivery_errors, 0, 1);
            note_epoch_error(ks, "delivery failed: %s", rd_kafka_err2str(m->err));
        }
        return;
    }
    if (m->_private == &ks->ledger_marker && m->offset > ks->ledger_offset) ks->ledger_offset = m->offset;
}

static rd_kafka_conf_t *make_conf(kafka_sink *ks, dp_error *err) {
    /* a message waits for the broker no longer than the run would: a
     * batch run's full queue then frees itself by --broker-timeout */
    char message_timeout[32] = "110000";
    if (ks->kc.give_up_s > 0 && ks->kc.give_up_s < 110)
        snprintf(message_timeout, sizeof message_timeout, "%.0f",
                 ks->kc.give_up_s < 1 ? 1000 : ks->kc.give_up_s * 1000);
    /* throughput: large zstd batches; a flush epoch is not latency
     * sensitive.  Memory: the queue is capped (backpressure). */
    const char *const defaults[][2] = {
        {"transactional.id", ks->txn_id},
        {"compression.type", "zstd"},
        {"linger.ms", "50"},
        {"batch.size", "1000000"},
        /* librdkafka's own default, set here on purpose: 100000 made
         * the sink ~17% slower (1.372 s against 1.144 s for 500k
         * rollups, median of 5 alternating runs); batch.size bounds a
         * batch first anyway (~2200 rollups per MB) */
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "1000000"},
        /* 32 MiB is about 30 full batches, ahead of a broker thread
         * that compresses one at a time.  With 256 MiB the final flush
         * ran ahead of it and grew the heap: peak RSS 176-184 MB
         * against 131 MB for 500k rollups, and in 2 of 7 runs a fifth
         * of the formatting thread's samples were the kernel zeroing
         * fresh pages (clear_page_erms), under 3% at 32 MiB. */
        {"queue.buffering.max.kbytes", "32768"},
        {"transaction.timeout.ms", "120000"},
        {"message.timeout.ms", message_timeout},
    };
    rd_kafka_conf_t *conf = dp_kafka_conf(&ks->kc, defaults, sizeof defaults / sizeof *defaults, 0, err);
    if (conf) rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    return conf;
}

/* ---- the producer's lifecycle ----------------------------------------------- */

static void producer_drop(kafka_sink *ks) {
    if (!ks->rk) return;
    if (ks->in_txn) {
        /* Abort first: librdkafka 2.0.2 asserts (and kills the process)
         * when a producer is destroyed while the request that adds the
         * epoch's partitions to the transaction is still in flight.  When
         * the broker is away this gives up after 5 s. */
        rd_kafka_error_t *e = rd_kafka_abort_transaction(ks->rk, 5000);
        if (e) rd_kafka_error_destroy(e);
    }
    /* nothing of an uncommitted epoch may linger: purge, then destroy; the
     * next init_transactions aborts what the broker still holds open */
    rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(ks->rk, 0);
    if (ks->rkt_rollups) rd_kafka_topic_destroy(ks->rkt_rollups);
    if (ks->rkt_reports) rd_kafka_topic_destroy(ks->rkt_reports);
    if (ks->rkt_ledger) rd_kafka_topic_destroy(ks->rkt_ledger);
    ks->rkt_rollups = ks->rkt_reports = ks->rkt_ledger = NULL;
    rd_kafka_destroy(ks->rk);
    ks->rk = NULL;
    ks->in_txn = 0;
}

/* Creates the producer and registers its transactional.id, waiting (with
 * backoff) while the broker cannot be reached.  0, DP_SINK_STOPPED or -1. */
static int producer_start(kafka_sink *ks, dp_error *err) {
    long backoff = 500;
    int odd = 0, quiet = 0;
    double since = dp_clock_seconds();
    for (;;) {
        if (!ks->rk) {
            rd_kafka_conf_t *conf = make_conf(ks, err);
            if (!conf) return -1;
            char errstr[512];
            ks->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
            if (!ks->rk) {
                rd_kafka_conf_destroy(conf);
                return dp_error_set(err, DP_ERR_USAGE, "kafka %s: cannot create a producer: %s", ks->kc.uri, errstr);
            }
            ks->rkt_rollups = rd_kafka_topic_new(ks->rk, ks->kc.topic, NULL);
            ks->rkt_reports = rd_kafka_topic_new(ks->rk, ks->reports_topic, NULL);
            ks->rkt_ledger = rd_kafka_topic_new(ks->rk, ks->ledger_topic, NULL);
            if (!ks->rkt_rollups || !ks->rkt_reports || !ks->rkt_ledger) {
                producer_drop(ks);
                return dp_error_set(err, DP_ERR_NOMEM, "kafka %s: cannot create topic handles", ks->kc.uri);
            }
        }
        /* short attempts, so SIGTERM is seen within a second or two */
        rd_kafka_error_t *e = rd_kafka_init_transactions(ks->rk, 2000);
        if (!e) return 0;
        int retriable = rd_kafka_error_is_retriable(e), fatal = rd_kafka_error_is_fatal(e);
        if (given_up(ks, since)) {
            dp_error_set(err, DP_ERR_IO, "kafka %s: no broker answered for %.0f s (%s): giving up (--broker-timeout)",
                         ks->kc.uri, ks->kc.give_up_s, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return -1;
        }
        if (retriable && rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT && quiet++ < 15 && !stopping(ks)) {
            rd_kafka_error_destroy(e); /* still connecting: try again at once, quietly */
            continue;
        }
        dp_log_warn(ks->kc.log, "kafka",
                    DP_LOG_FIELDS(DP_LOG_STR("sink", ks->kc.uri), DP_LOG_STR("error", rd_kafka_error_string(e))),
                    "dmarcpipe: kafka %s: cannot start transactions (%s)%s", ks->kc.uri, rd_kafka_error_string(e),
                    retriable || fatal ? "; retrying" : "");
        rd_kafka_error_destroy(e);
        if (!retriable && !fatal && odd++ > 0)
            return dp_error_set(err, DP_ERR_IO, "kafka %s: cannot start transactions", ks->kc.uri);
        if (!retriable) producer_drop(ks); /* fatal, or a first odd failure: a fresh producer */
        for (long waited = 0; waited < backoff && !given_up(ks, since); waited += 100) {
            if (stopping(ks)) return DP_SINK_STOPPED;
            dp_kafka_sleep_ms(100);
        }
        if (backoff < 30000) backoff *= 2;
    }
}

/* ---- writes ----------------------------------------------------------------- */

/* What a refused produce means, for both ways of producing. */
enum produce_verdict {
    PRODUCE_AGAIN,        /* the queue is full: poll, then produce it again */
    PRODUCE_EPOCH_FAILED, /* recorded: the epoch will be run again */
    PRODUCE_FATAL,        /* *err set: running the epoch again cannot fix it */
};

static enum produce_verdict produce_refused(kafka_sink *ks, rd_kafka_topic_t *rkt, rd_kafka_resp_err_t e,
                                            dp_error *err) {
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) return PRODUCE_AGAIN;
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || e == RD_KAFKA_RESP_ERR__INVALID_ARG) {
        dp_error_set(err, DP_ERR_IO, "kafka %s: topic %s: %s", ks->kc.uri, rd_kafka_topic_name(rkt),
                     rd_kafka_err2str(e));
        return PRODUCE_FATAL;
    }
    note_epoch_error(ks, "produce failed: %s", rd_kafka_err2str(e));
    return PRODUCE_EPOCH_FAILED;
}

/* Backpressure: delivery reports free the queue (or fail the epoch, after
 * message.timeout.ms, when the broker is away).  1 if the epoch failed. */
static int wait_for_room(kafka_sink *ks) {
    rd_kafka_poll(ks->rk, 50);
    return atomic_load_explicit(&ks->epoch_failed, memory_order_relaxed);
}

/* Produces one message; waits while the queue is full.  0, or -1 for an
 * error that running the epoch again cannot fix. */
static int produce(kafka_sink *ks, rd_kafka_topic_t *rkt, int32_t partition, const void *key, size_t key_len,
                   const void *value, size_t len, void *opaque, dp_error *err) {
    if (atomic_load_explicit(&ks->epoch_failed, memory_order_relaxed) || !ks->rk) return 0; /* will be run again */
    for (;;) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(ks->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
                              RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
        switch (produce_refused(ks, rkt, e, err)) {
        case PRODUCE_AGAIN:
            if (wait_for_room(ks)) return 0;
            continue;
        case PRODUCE_EPOCH_FAILED: return 0;
        case PRODUCE_FATAL: return -1;
        }
    }
}

/* Each rollup is framed for write_block: u32 key length, key, u32 value
 * length, value (the JSON), lengths in host order (the frame never leaves
 * the process). */
static void put_u32_at(dp_buf *b, size_t at, size_t v) {
    uint32_t u = (uint32_t)v;
    if (!b->failed) memcpy(b->data + at, &u, sizeof u);
}

static void kafka_format_rollup(const dp_sink *s, dp_buf *out, const dp_rollup *r) {
    (void)s;
    uint32_t zero = 0;
    size_t at = out->len;
    dp_buf_append(out, &zero, sizeof zero);
    if (r->policy_domain) dp_buf_puts(out, r->policy_domain);
    dp_buf_putc(out, '|');
    if (r->source_ip) dp_buf_puts(out, r->source_ip);
    put_u32_at(out, at, out->len - at - sizeof zero);
    at = out->len;
    dp_buf_append(out, &zero, sizeof zero);
    dp_format_rollup_json(out, r);
    put_u32_at(out, at, out->len - at - sizeof zero);
}

/* Messages handed to librdkafka per rd_kafka_produce_batch() call. */
#define PRODUCE_BATCH 256

/* A block's rollups go to librdkafka in batches rather than one
 * rd_kafka_producev() each: produce_batch reads the clocks and takes the
 * topic lock once per call instead of once per message, which was about
 * 8% of the formatting thread's time in `perf` (librdkafka stamps each
 * message with gettimeofday() and a monotonic clock).  Messages still go
 * through the configured partitioner (RD_KAFKA_PARTITION_UA), so a key
 * lands on the same partition as with producev or kcat; payloads are
 * copied (RD_KAFKA_MSG_F_COPY), keys always are. */
static int kafka_write_block(dp_sink *s, const char *data, size_t len, dp_error *err) {
    kafka_sink *ks = (kafka_sink *)s;
    rd_kafka_message_t msgs[PRODUCE_BATCH];
    size_t at = 0;
    while (at + 2 * sizeof(uint32_t) <= len) {
        int n = 0;
        while (n < PRODUCE_BATCH && at + 2 * sizeof(uint32_t) <= len) {
            uint32_t kl, vl;
            memcpy(&kl, data + at, sizeof kl);
            const char *key = data + at + sizeof kl;
            memcpy(&vl, key + kl, sizeof vl);
            const char *value = key + kl + sizeof vl;
            memset(&msgs[n], 0, sizeof msgs[n]);
            msgs[n].key = (void *)key;
            msgs[n].key_len = kl;
            msgs[n].payload = (void *)value;
            msgs[n].len = vl;
            n++;
            at = (size_t)(value + vl - data);
        }
        /* what the queue refused is sent again once delivery reports have
         * made room; the rest of the batch is done with */
        if (atomic_load_explicit(&ks->epoch_failed, memory_order_relaxed) || !ks->rk) return 0;
        while (rd_kafka_produce_batch(ks->rkt_rollups, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, msgs, n) != n) {
            int again = 0;
            for (int i = 0; i < n; i++) {
                if (msgs[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
                switch (produce_refused(ks, ks->rkt_rollups, msgs[i].err, err)) {
                case PRODUCE_AGAIN:
                    msgs[again] = msgs[i];
                    msgs[again++].err = RD_KAFKA_RESP_ERR_NO_ERROR;
                    break;
                case PRODUCE_EPOCH_FAILED: return 0;
                case PRODUCE_FATAL: return -1;
                }
            }
            n = again;
            if (wait_for_room(ks)) return 0;
        }
        rd_kafka_poll(ks->rk, 0); /* serve delivery reports */
    }
    return 0;
}

static int kafka_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err) {
    dp_buf b = DP_BUF_INIT;
    kafka_format_rollup(s, &b, r);
    int rc = b.failed ? dp_error_set(err, DP_ERR_NOMEM, "out of memory") : kafka_write_block(s, b.data, b.len, err);
    dp_buf_free(&b);
    return rc;
}

static int kafka_write_report(dp_sink *s, const char *line, size_t len, dp_error *err) {
    kafka_sink *ks = (kafka_sink *)s;
    while (len && line[len - 1] == '\n') len--;
    return produce(ks, ks->rkt_reports, RD_KAFKA_PARTITION_UA, NULL, 0, line, len, NULL, err);
}

static int kafka_flush(dp_sink *s, dp_error *err) {
    (void)s;
    (void)err;
    return 0; /* what counts is committed by epoch_commit */
}

/* ---- epochs ----------------------------------------------------------------- */

static int kafka_epoch_begin(dp_sink *s, dp_error *err) {
    kafka_sink *ks = (kafka_sink *)s;
    atomic_store(&ks->epoch_failed, 0);
    ks->epoch_err[0] = '\0';
    ks->ledger_offset = -1;
    for (;;) {
        if (!ks->rk) {
            int rc = producer_start(ks, err);
            if (rc != 0) return rc;
        }
        rd_kafka_error_t *e = rd_kafka_begin_transaction(ks->rk);
        if (!e) {
            ks->in_txn = 1;
            return 0;
        }
        dp_log_warn(ks->kc.log, "kafka",
                    DP_LOG_FIELDS(DP_LOG_STR("sink", ks->kc.uri), DP_LOG_STR("error", rd_kafka_error_string(e))),
                    "dmarcpipe: kafka %s: cannot begin a transaction (%s); new producer", ks->kc.uri,
                    rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        producer_drop(ks);
        if (stopping(ks)) return DP_SINK_STOPPED;
        dp_kafka_sleep_ms(500);
    }
}

static void kafka_epoch_abort(dp_sink *s) { producer_drop((kafka_sink *)s); }

/* Ledger records go to partition 0, so one reader sees every epoch in
 * order; the delivery report of each tells where the ledger continues. */
static int kafka_ledger_write(dp_sink *s, const char *rec, size_t len, dp_error *err) {
    kafka_sink *ks = (kafka_sink *)s;
    if (!ks->rk || !ks->in_txn) return dp_error_set(err, DP_ERR_USAGE, "kafka %s: ledger without an epoch", ks->kc.uri);
    return produce(ks, ks->rkt_ledger, 0, ks->instance, strlen(ks->instance), rec, len, &ks->ledger_marker, err);
}

/* The inbox's offsets join the transaction, so the rollups and the
 * position they were counted up to commit together.  The group
 * coordinator refuses them once the group has moved on (a rebalance the
 * consumer has not seen yet, a fenced member): the epoch then aborts, and
 * the source learns at its next poll what it still owns. */
static int kafka_epoch_offsets(dp_sink *s, const dp_kafka_offsets *o, dp_error *err) {
    kafka_sink *ks = (kafka_sink *)s;
    if (!ks->rk || !ks->in_txn) return dp_error_set(err, DP_ERR_USAGE, "kafka %s: offsets without an epoch", ks->kc.uri);
    double since = dp_clock_seconds();
    for (;;) {
        rd_kafka_error_t *e = rd_kafka_send_offsets_to_transaction(ks->rk, o->offsets, o->group, COMMIT_TIMEOUT_MS);
        if (!e) return 0;
        if (rd_kafka_error_is_retriable(e) && !stopping(ks) && !given_up(ks, since)) {
            rd_kafka_error_destroy(e);
            dp_kafka_sleep_ms(100);
            continue;
        }
        note_epoch_error(ks, "the inbox's offsets were refused: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return 0; /* the commit says DP_SINK_RETRY */
    }
}

/* A copy of an inbox message for the worker that owns its report (see
 * source/kafka_inbox.c), part of the epoch: it is in the inbox exactly
 * when the epoch that took the original commits. */
static int kafka_forward(dp_sink *s, const char *topic, int32_t partition, const char *header,
                         const char *header_value, const void *value, size_t len, dp_error *err) {
    kafka_sink *ks = (kafka_sink *)s;
    if (!ks->rk || !ks->in_txn) return dp_error_set(err, DP_ERR_USAGE, "kafka %s: forward without an epoch", ks->kc.uri);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            ks->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_HEADER(header, header_value, (ssize_t)strlen(header_value)),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !stopping(ks)) {
            rd_kafka_poll(ks->rk, 100);
            continue;
        }
        note_epoch_error(ks, "forwarding to the inbox failed: %s", rd_kafka_err2str(e));
        return 0; /* the commit says DP_SINK_RETRY */
    }
}

static int kafka_epoch_commit(dp_sink *s, uint64_t *ledger_next, dp_error *err) {
    kafka_sink *ks = (kafka_sink *)s;
    *ledger_next = 0;
    if (!ks->rk || !ks->in_txn) return dp_error_set(err, DP_ERR_USAGE, "kafka %s: commit without an epoch", ks->kc.uri);
    int waited = 0;
    double since = dp_clock_seconds();
    while (!atomic_load(&ks->epoch_failed)) {
        rd_kafka_error_t *e = rd_kafka_commit_transaction(ks->rk, COMMIT_TIMEOUT_MS);
        if (!e) {
            ks->in_txn = 0;
            rd_kafka_poll(ks->rk, 0); /* the ledger record's delivery report */
            if (ks->ledger_offset >= 0) *ledger_next = (uint64_t)ks->ledger_offset + 1;
            return 0;
        }
        if (rd_kafka_error_is_retriable(e) && given_up(ks, since)) {
            dp_error_set(err, DP_ERR_IO, "kafka %s: the commit waited %.0f s for the broker (%s): giving up "
                         "(--broker-timeout); the epoch is aborted and nothing of it acknowledged",
                         ks->kc.uri, ks->kc.give_up_s, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            producer_drop(ks);
            return -1;
        }
        if (rd_kafka_error_is_retriable(e) && !stopping(ks)) {
            if (!waited++)
                dp_log_warn(ks->kc.log, "kafka",
                            DP_LOG_FIELDS(DP_LOG_STR("sink", ks->kc.uri), DP_LOG_STR("error", rd_kafka_error_string(e))),
                            "dmarcpipe: kafka %s: commit waits (%s); retrying", ks->kc.uri, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            dp_kafka_sleep_ms(100); /* some retriable answers come at once */
            continue;
        }
        note_epoch_error(ks, "commit failed: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        break;
    }
    dp_error_set(err, DP_ERR_IO, "kafka %s: epoch aborted: %s", ks->kc.uri,
                 stopping(ks) ? "stopping" : ks->epoch_err[0] ? ks->epoch_err : "unknown error");
    producer_drop(ks);
    return stopping(ks) ? DP_SINK_STOPPED : DP_SINK_RETRY;
}

typedef struct ledger_reader {
    dp_ledger_fn fn;
    void *ctx;
} ledger_reader;

static int ledger_record(void *ctx, const rd_kafka_message_t *m) {
    ledger_reader *l = ctx;
    return l->fn(l->ctx, m->payload, m->len, (uint64_t)m->offset + 1);
}

/* The committed ledger records from `from`, with a consumer of our own
 * (read_committed).  A ledger topic that does not exist yet is empty. */
static int kafka_ledger_read(dp_sink *s, uint64_t from, dp_ledger_fn fn, void *ctx, dp_error *err) {
    kafka_sink *ks = (kafka_sink *)s;
    ledger_reader l = {fn, ctx};
    const dp_kafka_read r = {
        .topic = ks->ledger_topic,
        .what = "ledger",
        .gone_hint = "; the state cannot be checked against it",
        .partition = 0,
        .from = (int64_t)from,
        .missing_ok = 1,
        .keep = &ks->ledger_reader, /* workers sharing a ledger read it before every epoch */
    };
    int rc = dp_kafka_read_to_end(&ks->kc, &r, ledger_record, &l, err);
    if (rc == DP_KAFKA_FN_STOP)
        return dp_error_set(err, DP_ERR_IO, "kafka %s: ledger %s: a record could not be applied", ks->kc.uri,
                            ks->ledger_topic);
    return rc;
}

static void kafka_destroy(dp_sink *s) {
    kafka_sink *ks = (kafka_sink *)s;
    producer_drop(ks); /* an epoch left open is aborted there */
    if (ks->ledger_reader) rd_kafka_destroy(ks->ledger_reader);
    dp_kafka_free(&ks->kc);
    free(ks->reports_topic);
    free(ks->ledger_topic);
    free(ks->txn_id);
    free(ks->instance);
    pthread_mutex_destroy(&ks->err_lock);
    free(ks);
}

static const dp_sink_ops KAFKA_OPS = {
    .name = "kafka",
    .concurrent = 1,
    .write_rollup = kafka_write_rollup,
    .format_rollup = kafka_format_rollup,
    .write_block = kafka_write_block,
    .write_report = kafka_write_report,
    .flush = kafka_flush,
    .destroy = kafka_destroy,
    .epoch_begin = kafka_epoch_begin,
    .ledger_write = kafka_ledger_write,
    .epoch_commit = kafka_epoch_commit,
    .epoch_offsets = kafka_epoch_offsets,
    .forward = kafka_forward,
    .epoch_abort = kafka_epoch_abort,
    .ledger_read = kafka_ledger_read,
};

dp_sink *dp_kafka_sink_open(const char *uri, const dp_sink_options *o, dp_error *err) {
    kafka_sink *ks = calloc(1, sizeof *ks);
    if (!ks) {
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ks->base.ops = &KAFKA_OPS;
    pthread_mutex_init(&ks->base.lock, NULL);
    pthread_mutex_init(&ks->err_lock, NULL);
    dp_kafka_settings ksettings = dp_sink_kafka_settings(o);
    int rc = dp_kafka_init(&ks->kc, "sink", uri, o ? &ksettings : NULL, err);
    ks->kc.owner = ks; /* init clears the client */
    ks->delivery_errors = dp_metrics_counter(o ? o->metrics : NULL, "dmarcpipe_kafka_delivery_errors_total",
                                             "Messages the Kafka sink's producer could not deliver (each fails "
                                             "its epoch, which runs again).");
    const char *instance = o->instance_id ? o->instance_id : "default";
    ks->reports_topic = strdup(o->reports_topic ? o->reports_topic : "dmarc.reports");
    ks->instance = strdup(instance);
    size_t n = strlen(instance) + 32;
    ks->txn_id = malloc(n);
    ks->ledger_topic = o->ledger_topic ? strdup(o->ledger_topic) : malloc(n);
    if (rc == 0 && (!ks->reports_topic || !ks->instance || !ks->txn_id || !ks->ledger_topic)) {
        rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    } else if (rc == 0) {
        snprintf(ks->txn_id, n, "dmarcpipe-%s", instance);
        if (!o->ledger_topic) snprintf(ks->ledger_topic, n, "dmarcpipe.ledger.%s", instance);
        if (!dp_kafka_valid_topic(ks->reports_topic) || !dp_kafka_valid_topic(ks->ledger_topic))
            rc = dp_error_set(err, DP_ERR_USAGE, "kafka %s: topic names are [A-Za-z0-9._-]{1,249} (reports %s, ledger %s)",
                              uri, ks->reports_topic, ks->ledger_topic);
    }
    if (rc == 0) {
        /* check the whole configuration now, before any input is read */
        rd_kafka_conf_t *conf = make_conf(ks, err);
        if (!conf) rc = -1;
        else rd_kafka_conf_destroy(conf);
    }
    if (rc == 0) {
        rc = producer_start(ks, err);
        if (rc == DP_SINK_STOPPED) rc = dp_error_set(err, DP_ERR_IO, "kafka %s: stopped while waiting for the broker", uri);
    }
    if (rc != 0) {
        kafka_destroy(&ks->base);
        return NULL;
    }
    return &ks->base;
}
