/* feed_read — reading back a feed the Kafka sink wrote, for `dmarcpipe
 * report`: kafka://HOST:PORT[,HOST:PORT...]/TOPIC, every partition from
 * its beginning to the end it had when the read began, read_committed, so
 * the report sees exactly what a warehouse consumer would: every committed
 * epoch whole, nothing of an aborted or still open one.
 *
 * The configuration is the sink's (common/dp_kafka.c: a properties file,
 * DMARCPIPE_KAFKA_* variables, -X, secrets never printed), so one set of
 * options reaches the cluster for writing and for reading.  The feed's
 * lines are the messages' values; each is named for messages by where it
 * lies ("kafka://h:9092/dmarc.rollups [2] @41").  Nothing is committed:
 * the reader joins no group and leaves no trace on the cluster.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink_internal.h"

typedef struct feed_reader {
    const char *uri;
    dp_feed_line_fn fn;
    void *ctx;
    char *where; /* "URI [P] @OFFSET" of the message being handed over */
    size_t where_size;
} feed_reader;

static int feed_message(void *ctx, const rd_kafka_message_t *m) {
    feed_reader *f = ctx;
    snprintf(f->where, f->where_size, "%s [%d] @%lld", f->uri, (int)m->partition, (long long)m->offset);
    return f->fn(f->ctx, m->payload ? m->payload : "", m->len, f->where);
}

int dp_feed_read(const char *uri, const dp_sink_options *opts, dp_feed_line_fn fn, void *ctx, dp_error *err) {
    dp_kafka_client c;
    dp_kafka_settings ks = dp_sink_kafka_settings(opts);
    int rc = dp_kafka_init(&c, "kafka URI", uri, opts ? &ks : NULL, err);
    feed_reader f = {uri, fn, ctx, NULL, strlen(uri) + 48};
    if (rc == 0 && !(f.where = malloc(f.where_size))) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    if (rc == 0) {
        const dp_kafka_read r = {
            .topic = c.topic,
            .what = "feed",
            .gone_hint = "",
            .partition = -1,
            .missing_ok = 0,
            .to_start_end = 1,
        };
        rc = dp_kafka_read_to_end(&c, &r, feed_message, &f, err);
        if (rc == DP_SINK_STOPPED) rc = dp_error_set(err, DP_ERR_IO, "kafka %s: stopped while reading", uri);
        else if (rc == DP_KAFKA_FN_STOP)
            rc = dp_error_set(err, DP_ERR_HANDLER, "kafka: reading stopped at %s", f.where);
    }
    free(f.where);
    dp_kafka_free(&c);
    return rc;
}
