/* kafka_inbox_lag — see kafka_inbox_lag.h.
 *
 * One figure for the worker, not one per partition: an inbox's partitions
 * move between workers at each rebalance, and a scrape wants to know
 * whether this worker keeps up.  The group's total is the sum over its
 * workers. */
#include "kafka_inbox_lag.h"

dp_metric *dp_kafka_inbox_lag_metric(dp_metrics *m) {
    return dp_metrics_gauge(m, "dmarcpipe_inbox_consumer_lag",
                            "Messages in the Kafka inbox's partitions assigned to this worker that it has not "
                            "read yet (high watermark minus position, summed).");
}

void dp_kafka_inbox_lag_publish(dp_metric *g, rd_kafka_t *rk) {
    rd_kafka_topic_partition_list_t *l = NULL;
    if (!g || !rk || rd_kafka_assignment(rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l) return;
    double lag = 0;
    if (rd_kafka_position(rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < l->cnt; i++) {
            int64_t lo, hi = -1, pos = l->elems[i].offset;
            if (rd_kafka_get_watermark_offsets(rk, l->elems[i].topic, l->elems[i].partition, &lo, &hi) != 0 || hi < 0)
                continue;
            /* a partition not read from yet has no position: its committed
             * offset is the broker's to tell, and this asks it nothing */
            if (pos >= 0 && hi > pos) lag += (double)(hi - pos);
        }
    rd_kafka_topic_partition_list_destroy(l);
    dp_metrics_set(g, 0, lag);
}
