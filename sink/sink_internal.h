/* sink_internal.h — constructors of the sink implementations, for sink.c. */
#ifndef DP_SINK_INTERNAL_H
#define DP_SINK_INTERNAL_H

#include "sink.h"

/* PATH, or "-" for stdout; `reports` selects the inventory feed; `resume`:
 * see dp_sink_options. */
dp_sink *dp_file_sink_open(const char *path, int reports, int resume, dp_error *err);
/* kafka://HOST:PORT[,...]/TOPIC */
dp_sink *dp_kafka_sink_open(const char *uri, const dp_sink_options *opts, dp_error *err);

#endif
