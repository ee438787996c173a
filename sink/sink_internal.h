/* sink_internal.h — constructors of the sink implementations, for sink.c. */
#ifndef DP_SINK_INTERNAL_H
#define DP_SINK_INTERNAL_H

#include "dp_kafka.h"
#include "sink.h"

/* A Kafka wait given up on SIGTERM answers the same as a sink's. */
_Static_assert((int)DP_KAFKA_STOPPED == (int)DP_SINK_STOPPED, "one stop code");

/* The Kafka part of a sink's options (opts may be NULL: none). */
static inline dp_kafka_settings dp_sink_kafka_settings(const dp_sink_options *o) {
    dp_kafka_settings k = {0};
    if (o) k = (dp_kafka_settings){o->config_file, o->props, o->n_props, o->stop, o->broker_timeout, o->log};
    return k;
}

/* PATH, or "-" for stdout; `reports` selects the inventory feed; `resume`
 * and `log`: see dp_sink_options. */
dp_sink *dp_file_sink_open(const char *path, int reports, int resume, dp_log *log, dp_error *err);
/* kafka://HOST:PORT[,...]/TOPIC */
dp_sink *dp_kafka_sink_open(const char *uri, const dp_sink_options *opts, dp_error *err);

#endif
