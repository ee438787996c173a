/* sink — opening a sink by URI, and the wrappers every caller uses.
 *
 * Sinks are written by several threads at once (shards flush rollups,
 * workers add report lines), so the lock lives here, once, and sink
 * implementations are single-threaded code, unless they declare themselves
 * `concurrent` (Kafka's producer is thread-safe: a lock would only
 * serialise the shards).
 *
 * Committing is written here once for both kinds of sink: an epoch's
 * commit for a sink with epochs, a flush for one without.
 */
#include <string.h>

#include "sink_internal.h"

dp_sink *dp_sink_open(const char *uri, const dp_sink_options *opts, dp_error *err) {
    static const dp_sink_options none = {0};
    if (!opts) opts = &none;
    if (strcmp(uri, "-") == 0) return dp_file_sink_open("-", 0, 0, opts->log, err);
    if (strncmp(uri, "file:", 5) == 0 && uri[5]) return dp_file_sink_open(uri + 5, 0, opts->resume, opts->log, err);
    if (strncmp(uri, "kafka://", 8) == 0) return dp_kafka_sink_open(uri, opts, err);
    dp_error_set(err, DP_ERR_USAGE, "sink '%s': expected file:PATH, - (stdout) or kafka://HOST:PORT/TOPIC", uri);
    return NULL;
}

dp_sink *dp_sink_open_reports(const char *path, int resume, dp_log *log, dp_error *err) {
    return dp_file_sink_open(path, 1, resume, log, err);
}

static void sink_lock(dp_sink *s) {
    if (!s->ops->concurrent) pthread_mutex_lock(&s->lock);
}

static void sink_unlock(dp_sink *s) {
    if (!s->ops->concurrent) pthread_mutex_unlock(&s->lock);
}

/* ---- writing ------------------------------------------------------------- */

int dp_sink_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err) {
    sink_lock(s);
    int rc = s->ops->write_rollup ? s->ops->write_rollup(s, r, err) : 0;
    if (rc == 0) s->rollups_written++;
    sink_unlock(s);
    return rc;
}

int dp_sink_is_concurrent(const dp_sink *s) { return s->ops->concurrent; }

int dp_sink_write_block(dp_sink *s, const char *data, size_t len, uint64_t count, dp_error *err) {
    sink_lock(s);
    int rc = s->ops->write_block(s, data, len, err);
    if (rc == 0) s->rollups_written += count;
    sink_unlock(s);
    return rc;
}

int dp_sink_write_report(dp_sink *s, const char *line, dp_error *err) {
    sink_lock(s);
    int rc = s->ops->write_report ? s->ops->write_report(s, line, strlen(line), err) : 0;
    if (rc == 0) s->reports_written++;
    sink_unlock(s);
    return rc;
}

/* ---- committing ---------------------------------------------------------- */

int dp_sink_has_epochs(const dp_sink *s) { return s->ops->epoch_commit != NULL; }

int dp_sink_epoch_begin(dp_sink *s, dp_error *err) {
    return s->ops->epoch_begin ? s->ops->epoch_begin(s, err) : 0;
}

int dp_sink_takes_offsets(const dp_sink *s) { return s->ops->epoch_offsets != NULL; }

int dp_sink_epoch_offsets(dp_sink *s, const dp_kafka_offsets *o, dp_error *err) {
    if (!s->ops->epoch_offsets)
        return dp_error_set(err, DP_ERR_USAGE, "sink %s cannot commit a consumer's offsets", s->ops->name);
    return s->ops->epoch_offsets(s, o, err);
}

int dp_sink_forwards(const dp_sink *s) { return s->ops->forward != NULL; }

int dp_sink_forward(dp_sink *s, const char *topic, int32_t partition, const char *header, const char *header_value,
                    const void *value, size_t len, dp_error *err) {
    if (!s->ops->forward) return dp_error_set(err, DP_ERR_USAGE, "sink %s cannot forward", s->ops->name);
    return s->ops->forward(s, topic, partition, header, header_value, value, len, err);
}

int dp_sink_ledger_write(dp_sink *s, const char *rec, size_t len, dp_error *err) {
    if (!s->ops->ledger_write) return dp_error_set(err, DP_ERR_USAGE, "sink %s keeps no ledger", s->ops->name);
    return s->ops->ledger_write(s, rec, len, err);
}

int dp_sink_commit(dp_sink *s, uint64_t *ledger_next, dp_error *err) {
    *ledger_next = 0;
    if (s->ops->epoch_commit) return s->ops->epoch_commit(s, ledger_next, err);
    return dp_sink_flush(s, err);
}

void dp_sink_epoch_abort(dp_sink *s) {
    if (s->ops->epoch_abort) s->ops->epoch_abort(s);
}

int dp_sink_ledger_read(dp_sink *s, uint64_t from, dp_ledger_fn fn, void *ctx, dp_error *err) {
    if (!s->ops->ledger_read) return dp_error_set(err, DP_ERR_USAGE, "sink %s keeps no ledger", s->ops->name);
    return s->ops->ledger_read(s, from, fn, ctx, err);
}

const char *dp_sink_position_name(const dp_sink *s) {
    return s->ops->position_name ? s->ops->position_name(s) : NULL;
}

int dp_sink_resume(dp_sink *s, int known, uint64_t committed, dp_error *err) {
    if (!s->ops->resume) return 0;
    pthread_mutex_lock(&s->lock);
    int rc = s->ops->resume(s, known, committed, err);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

uint64_t dp_sink_position(dp_sink *s) {
    if (!s->ops->position) return 0;
    pthread_mutex_lock(&s->lock);
    uint64_t p = s->ops->position(s);
    pthread_mutex_unlock(&s->lock);
    return p;
}

int dp_sink_flush(dp_sink *s, dp_error *err) {
    pthread_mutex_lock(&s->lock);
    int rc = s->ops->flush(s, err);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int dp_sink_close(dp_sink *s, dp_error *err) {
    if (!s) return 0;
    int rc = dp_sink_flush(s, err);
    pthread_mutex_destroy(&s->lock);
    s->ops->destroy(s);
    return rc;
}
