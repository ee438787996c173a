/* sink — opening a sink by URI, and the locking wrappers every caller uses.
 *
 * Sinks are written by several threads at once (shards flush rollups,
 * workers add report lines), so the lock lives here, once, and sink
 * implementations are single-threaded code.
 */
#include <string.h>

#include "sink_internal.h"

dp_sink *dp_sink_open(const char *uri, dp_error *err) {
    if (strcmp(uri, "-") == 0) return dp_file_sink_open("-", 0, err);
    if (strncmp(uri, "file:", 5) == 0 && uri[5]) return dp_file_sink_open(uri + 5, 0, err);
    if (strncmp(uri, "kafka://", 8) == 0) {
        dp_error_set(err, DP_ERR_USAGE, "sink %s: the Kafka sink is not built yet (issue 4)", uri);
        return NULL;
    }
    dp_error_set(err, DP_ERR_USAGE, "sink '%s': expected file:PATH or - (stdout)", uri);
    return NULL;
}

dp_sink *dp_sink_open_reports(const char *path, dp_error *err) { return dp_file_sink_open(path, 1, err); }

int dp_sink_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err) {
    pthread_mutex_lock(&s->lock);
    int rc = s->ops->write_rollup ? s->ops->write_rollup(s, r, err) : 0;
    if (rc == 0) s->rollups_written++;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int dp_sink_write_block(dp_sink *s, const char *data, size_t len, uint64_t count, dp_error *err) {
    pthread_mutex_lock(&s->lock);
    int rc = s->ops->write_block(s, data, len, err);
    if (rc == 0) s->rollups_written += count;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int dp_sink_write_report_text(dp_sink *s, const char *line, dp_error *err) {
    pthread_mutex_lock(&s->lock);
    int rc = s->ops->write_report ? s->ops->write_report(s, line, strlen(line), err) : 0;
    if (rc == 0) s->reports_written++;
    pthread_mutex_unlock(&s->lock);
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
