/* kafka_inbox_lag.h — how far a Kafka inbox's consumer is behind, for the
 * metrics: dmarcpipe_inbox_consumer_lag. */
#ifndef DP_KAFKA_INBOX_LAG_H
#define DP_KAFKA_INBOX_LAG_H

#include <librdkafka/rdkafka.h>

#include "dp_metrics.h"

/* Registers the gauge in m (NULL: NULL). */
dp_metric *dp_kafka_inbox_lag_metric(dp_metrics *m);
/* Sets it: the high watermark minus the consumer's position, summed over
 * the partitions assigned to rk, from what the last fetches saw (no call
 * to the broker).  g NULL: nothing. */
void dp_kafka_inbox_lag_publish(dp_metric *g, rd_kafka_t *rk);

#endif
