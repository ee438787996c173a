/* sink — opening a sink by URI, and the locking wrappers every caller uses.
 *
 * Sinks are written by several threads at once (shards flush rollups,
 * workers add report lines), so the lock lives here, once, and sink
 * implementations are single-threaded code, unless they declare themselves
 * `concurrent` (Kafka's producer is thread-safe: a lock would only
 * serialise the shards).
 */
#include <string.h>

#include "sink_internal.h"

dp_sink *dp_sink_open_with(const char *uri, const dp_sink_options *opts, dp_error *err) {
    static const dp_sink_options none = {0};
    if (!opts) opts = &none;
    if (strcmp(uri, "-") == 0) return dp_file_sink_open("-", 0, 0, err);
    if (strncmp(uri, "file:", 5) == 0 && uri[5]) return dp_file_sink_open(uri + 5, 0, opts->append, err);
    if (strncmp(uri, "kafka://", 8) == 0) return dp_kafka_sink_open(uri, opts, err);
    dp_error_set(err, DP_ERR_USAGE, "sink '%s': expected file:PATH, - (stdout) or kafka://HOST:PORT/TOPIC", uri);
    return NULL;
}

dp_sink *dp_sink_open(const char *uri, dp_error *err) { return dp_sink_open_with(uri, NULL, err); }

int dp_sink_has_epochs(const dp_sink *s) { return s->ops->epoch_commit != NULL; }

static void sink_lock(dp_sink *s) {
    if (!s->ops->concurrent) pthread_mutex_lock(&s->lock);
}

static void sink_unlock(dp_sink *s) {
    if (!s->ops->concurrent) pthread_mutex_unlock(&s->lock);
}

dp_sink *dp_sink_open_reports(const char *path, int append, dp_error *err) {
    return dp_file_sink_open(path, 1, append, err);
}

int dp_sink_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err) {
    sink_lock(s);
    int rc = s->ops->write_rollup ? s->ops->write_rollup(s, r, err) : 0;
    if (rc == 0) s->rollups_written++;
    sink_unlock(s);
    return rc;
}

int dp_sink_write_block(dp_sink *s, const char *data, size_t len, uint64_t count, dp_error *err) {
    sink_lock(s);
    int rc = s->ops->write_block(s, data, len, err);
    if (rc == 0) s->rollups_written += count;
    sink_unlock(s);
    return rc;
}

int dp_sink_write_report_text(dp_sink *s, const char *line, dp_error *err) {
    sink_lock(s);
    int rc = s->ops->write_report ? s->ops->write_report(s, line, strlen(line), err) : 0;
    if (rc == 0) s->reports_written++;
    sink_unlock(s);
    return rc;
}

int dp_sink_write_report(dp_sink *s, const dp_report_line *r, dp_error *err) {
    dp_buf b = DP_BUF_INIT;
    dp_report_line_to_json(&b, r);
    dp_buf_putc(&b, '\n');
    int rc = b.failed ? dp_error_set(err, DP_ERR_NOMEM, "out of memory") : dp_sink_write_report_text(s, b.data, err);
    dp_buf_free(&b);
    return rc;
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
