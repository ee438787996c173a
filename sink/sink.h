/* sink.h — the public interface of dmarcpipe's third stage.
 *
 * A sink takes rollups (and the per-report inventory feed) out of the
 * process.  Every sink fills the same small vtable, Fluent Bit style, so a
 * new destination touches one file here and one line in dp_sink_open().
 * Callers go through the dp_sink_* wrappers, never the vtable itself.
 *
 * Threads: shard threads write rollups and worker threads write reports, at
 * the same time; dp_sink_* calls lock the sink, so implementations need not
 * (unless they say `concurrent`: the Kafka producer is thread-safe itself).
 * Memory: everything passed in is borrowed for the duration of the call.
 *
 * Epochs.  A sink that can commit atomically (Kafka: one transaction)
 * fills epoch_begin/epoch_commit/epoch_abort and keeps a ledger of what
 * each epoch took; the run (run/) then works in epochs, and an input is
 * acknowledged only once its epoch committed.  A sink without them is
 * written through, and its flush() is its commit: dp_sink_commit() says
 * which, so the run's protocol is written once for every sink.
 */
#ifndef DP_SINK_H
#define DP_SINK_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"
#include "dp_error.h"
#include "dp_log.h"
#include "dp_metrics.h"
#include "dp_report.h"

/* The per-report line of the inventory feed (reports.ndjson). */
typedef struct dp_report_line {
    const dp_report *report;
    const char *sha256_hex; /* of the report's XML, or NULL */
} dp_report_line;

typedef struct dp_sink dp_sink;
typedef struct dp_kafka_offsets dp_kafka_offsets; /* common/dp_kafka.h */

/* epoch_commit(): the epoch was aborted (e.g. the broker was away too
 * long); run it again.  DP_SINK_STOPPED: aborted because a stop (SIGTERM)
 * was asked for while waiting. */
enum { DP_SINK_RETRY = 1, DP_SINK_STOPPED = 2 };

/* Called with each committed ledger record, in order; `next` is the
 * offset after it.  Non-zero stops the reading. */
typedef int (*dp_ledger_fn)(void *ctx, const char *rec, size_t len, uint64_t next);

typedef struct dp_sink_ops {
    const char *name;
    int concurrent; /* thread-safe itself: the wrappers take no lock */
    int (*write_rollup)(dp_sink *s, const dp_rollup *r, dp_error *err);
    /* Optional, for sinks that write text: format one rollup (no lock, no
     * state: any thread may call it at any time), then write many at once.
     * Shards format in parallel and only the block write is serialised. */
    void (*format_rollup)(const dp_sink *s, dp_buf *out, const dp_rollup *r);
    int (*write_block)(dp_sink *s, const char *data, size_t len, dp_error *err);
    /* one reports-feed line, already JSON (dp_format_report_line) */
    int (*write_report)(dp_sink *s, const char *line, size_t len, dp_error *err); /* may be NULL */
    int (*flush)(dp_sink *s, dp_error *err);  /* make what was written durable */
    void (*destroy)(dp_sink *s);
    /* Optional: epochs (see the top).  begin: before the epoch's first
     * write.  commit: commits everything written since begin; 0 and
     * *ledger_next (the ledger's offset after the epoch's last record, 0 if
     * unknown), DP_SINK_RETRY, DP_SINK_STOPPED, or -1: cannot go on.
     * abort: drop the epoch.
     * ledger_write: one ledger record (what the epoch took), part of the
     * epoch.  ledger_read: the committed ledger records from offset `from`. */
    int (*epoch_begin)(dp_sink *s, dp_error *err);
    int (*ledger_write)(dp_sink *s, const char *rec, size_t len, dp_error *err);
    int (*epoch_commit)(dp_sink *s, uint64_t *ledger_next, dp_error *err);
    void (*epoch_abort)(dp_sink *s);
    int (*ledger_read)(dp_sink *s, uint64_t from, dp_ledger_fn fn, void *ctx, dp_error *err);
    /* Optional: a sink that writes a file it can cut back (opened with
     * `resume`).  position_name: what the state records its position
     * under (NULL: none).  resume: once, before any write, with the
     * position the state recorded (known) or none: the sink cuts what was
     * written after it (a crash between a write and its commit), or
     * refuses when its file does not hold what the state says.  position:
     * how far it has written (after a commit: how far is durable). */
    const char *(*position_name)(const dp_sink *s);
    int (*resume)(dp_sink *s, int known, uint64_t committed, dp_error *err);
    uint64_t (*position)(const dp_sink *s);
    /* Optional: a consumer group's position, committed with the open
     * epoch's transaction (rd_kafka_send_offsets_to_transaction).  0, or
     * -1 (err).  A refusal the transaction cannot survive (the group moved
     * on) makes the epoch's commit answer DP_SINK_RETRY. */
    int (*epoch_offsets)(dp_sink *s, const dp_kafka_offsets *o, dp_error *err);
    /* Optional: one message into TOPIC's partition (on the sink's cluster),
     * with one header, part of the open epoch: a source's input forwarded
     * to the worker that owns it.  0, or -1 (err); a refusal makes the
     * commit answer DP_SINK_RETRY. */
    int (*forward)(dp_sink *s, const char *topic, int32_t partition, const char *header, const char *header_value,
                   const void *value, size_t len, dp_error *err);
} dp_sink_ops;

struct dp_sink {
    const dp_sink_ops *ops;
    pthread_mutex_t lock;
    _Atomic uint64_t rollups_written, reports_written;
};

/* What a sink may need besides its URI (all optional). */
typedef struct dp_sink_options {
    const char *instance_id;        /* names the Kafka transactional.id; default "default" */
    const char *reports_topic;      /* Kafka: the reports feed (default "dmarc.reports") */
    const char *ledger_topic;       /* Kafka: default "dmarcpipe.ledger.<instance_id>" */
    const char *config_file;        /* Kafka: librdkafka properties, key=value lines */
    const char *const *props;       /* Kafka: -X key=value, applied last, in order */
    size_t n_props;
    const volatile sig_atomic_t *stop; /* set by SIGTERM: give up waiting */
    double broker_timeout; /* Kafka: seconds a wait for the broker may last (0: for ever) */
    /* file: the run keeps the file's committed length in its state; the
     * file is not truncated at open, and dp_sink_resume() says where the
     * run goes on from.  Without it a file is written anew. */
    int resume;
    dp_log *log; /* where the sink says what it retried (NULL: plain on stderr) */
    dp_metrics *metrics; /* Kafka: delivery errors (NULL: not counted) */
} dp_sink_options;

/* Opens a sink from its URI (opts may be NULL):
 *   file:PATH   rollups as NDJSON, or CSV when PATH ends in ".csv"
 *   -           rollups as NDJSON on stdout
 *   kafka://HOST:PORT[,HOST:PORT...]/TOPIC
 *               rollups as JSON messages in Kafka, in transactions; the
 *               sink also carries the reports feed (opts->reports_topic) */
dp_sink *dp_sink_open(const char *uri, const dp_sink_options *opts, dp_error *err);
/* The inventory feed: one JSON line per accepted report, into PATH
 * (`resume`, `log`: as dp_sink_options'). */
dp_sink *dp_sink_open_reports(const char *path, int resume, dp_log *log, dp_error *err);

/* ---- reading a feed back: `dmarcpipe report` ---------------------------- */

/* One line of a feed (no newline, not NUL-terminated) and where it came
 * from ("kafka://h:9092/dmarc.rollups [2] @41").  Non-zero stops the read. */
typedef int (*dp_feed_line_fn)(void *ctx, const char *line, size_t len, const char *where);

/* Reads a feed a Kafka sink wrote, kafka://HOST:PORT[,HOST:PORT...]/TOPIC:
 * every partition of TOPIC from its beginning to the end offsets found at
 * the start, read_committed, calling fn for each message's value.  Uses
 * opts' config_file, props, stop and broker_timeout (opts may be NULL).
 * 0, or -1 with err set (a broker that cannot be reached in time, a topic
 * that does not exist, fn's stop). */
int dp_feed_read(const char *uri, const dp_sink_options *opts, dp_feed_line_fn fn, void *ctx, dp_error *err);

/* ---- writing: any thread, at any time during a run ---------------------- */

/* Thread-safe wrappers: lock, call, count, unlock. */
int dp_sink_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err);
/* Whether the sink formats rollups as text (has ops->format_rollup): the
 * engine then formats on its own threads and hands over blocks.  Inline:
 * asked once per rollup and sink. */
static inline int dp_sink_formats_text(const dp_sink *s) { return s->ops->format_rollup != NULL; }
/* Whether the sink is thread-safe itself, with threads of its own. */
int dp_sink_is_concurrent(const dp_sink *s);
/* Formats one rollup into `out` (sinks that format text): no lock and no
 * state, so any thread may call it at any time; inline, as the final flush
 * calls it once per rollup. */
static inline void dp_sink_format_rollup(const dp_sink *s, dp_buf *out, const dp_rollup *r) {
    s->ops->format_rollup(s, out, r);
}
/* `count` rollups formatted with dp_sink_format_rollup, written in one go. */
int dp_sink_write_block(dp_sink *s, const char *data, size_t len, uint64_t count, dp_error *err);
/* One reports-feed line rendered earlier (dp_format_report_line and a
 * newline: the engine renders a report's line when the report ends and
 * writes it once the report is decided). */
int dp_sink_write_report(dp_sink *s, const char *line, dp_error *err);

/* ---- committing: the one thread that drives the run, between engine runs */

/* Whether the sink works in epochs (has epoch_commit) and keeps a ledger. */
int dp_sink_has_epochs(const dp_sink *s);
/* Opens an epoch; 0 at once for a sink without epochs.  0, DP_SINK_STOPPED
 * or -1 (err). */
int dp_sink_epoch_begin(dp_sink *s, dp_error *err);
/* Whether the sink can commit a consumer group's position with its epoch. */
int dp_sink_takes_offsets(const dp_sink *s);
/* A consumer group's position, part of the open epoch (see ops). */
int dp_sink_epoch_offsets(dp_sink *s, const dp_kafka_offsets *o, dp_error *err);
/* Whether the sink can forward messages in its epoch (ops.forward), and
 * the forwarding. */
int dp_sink_forwards(const dp_sink *s);
int dp_sink_forward(dp_sink *s, const char *topic, int32_t partition, const char *header, const char *header_value,
                    const void *value, size_t len, dp_error *err);
/* One ledger record, part of the open epoch (epochs only). */
int dp_sink_ledger_write(dp_sink *s, const char *rec, size_t len, dp_error *err);
/* Makes everything written since the epoch began durable: the epoch's
 * commit, or, for a sink without epochs, its flush (written, fsync'ed).
 * 0 and *ledger_next (0 when the sink has no ledger), DP_SINK_RETRY,
 * DP_SINK_STOPPED, or -1 (err). */
int dp_sink_commit(dp_sink *s, uint64_t *ledger_next, dp_error *err);
/* Drops the open epoch; nothing for a sink without epochs. */
void dp_sink_epoch_abort(dp_sink *s);
/* The committed ledger records from offset `from`, in order (epochs only).
 * 0, DP_SINK_STOPPED, or -1 (err). */
int dp_sink_ledger_read(dp_sink *s, uint64_t from, dp_ledger_fn fn, void *ctx, dp_error *err);
/* The name the state keeps the sink's committed position under, or NULL
 * when the sink keeps none (stdout, Kafka, a file written anew). */
const char *dp_sink_position_name(const dp_sink *s);
/* Once, before any write: goes on from the committed position the state
 * knows (known), or from an empty file.  0, or -1 (err): the file does not
 * hold what the state says, and the run must not write to it. */
int dp_sink_resume(dp_sink *s, int known, uint64_t committed, dp_error *err);
/* How far the sink has written; after dp_sink_commit(), how far is durable. */
uint64_t dp_sink_position(dp_sink *s);
/* Makes what was written durable (written, fsync'ed where it is a file). */
int dp_sink_flush(dp_sink *s, dp_error *err);
/* Flushes and frees.  0, or -1 when the final flush failed. */
int dp_sink_close(dp_sink *s, dp_error *err);

/* Formatting (format.c), shared by sinks, `dmarcpipe parse` and tests. */
void dp_format_rollup_json(dp_buf *out, const dp_rollup *r);
void dp_format_rollup_csv_header(dp_buf *out);
void dp_format_rollup_csv(dp_buf *out, const dp_rollup *r);
void dp_format_report_line(dp_buf *out, const dp_report_line *r);
/* One record as a JSON object (no newline), with the report's fields
 * flattened in: `dmarcpipe parse`'s output. */
void dp_format_record(dp_buf *out, const dp_report *rep, const dp_record *rec);
/* The report's own fields as JSON object members (input, part, schema,
 * metadata, errors, policy_*), for record lines and the reports feed. */
void dp_format_report_fields(dp_buf *out, int *first, const dp_report *rep);

#endif
