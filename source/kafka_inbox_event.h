/* kafka_inbox_event.h — what an inbox message says besides its bytes: the
 * objects an S3 event notification names, and the slot a forwarded copy
 * is for; internal to source/ (kafka_inbox_event.c). */
#ifndef DP_KAFKA_INBOX_EVENT_H
#define DP_KAFKA_INBOX_EVENT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"
#include "dp_error.h"

/* One object an ObjectCreated record names. */
typedef struct dp_kafka_inbox_object {
    char *bucket, *key; /* the key decoded */
    char *etag;         /* "" when the record has none */
    char *region;       /* awsRegion, or NULL */
    long long size;     /* -1 when the record has none */
} dp_kafka_inbox_object;

typedef struct dp_kafka_inbox_event {
    dp_kafka_inbox_object *objects;
    size_t n, cap;
} dp_kafka_inbox_event;

/* 1: the message is a notification, and ev holds the objects it names
 * (none for a test event or other events); 0: it is not (a report);
 * -1 (err, ev empty): a notification with a record that names no object. */
int dp_kafka_inbox_event_parse(const void *data, size_t len, dp_kafka_inbox_event *ev, dp_error *err);
void dp_kafka_inbox_event_free(dp_kafka_inbox_event *ev);
/* A notification of one object, for a copy of an inbox message forwarded
 * to another partition (the key form-encoded, as AWS writes it). */
void dp_kafka_inbox_event_format(dp_buf *b, const dp_kafka_inbox_object *o);
/* The slot a forwarded copy is for, from its header `header`; -1: none
 * (an original message). */
int32_t dp_kafka_inbox_event_slot(const rd_kafka_message_t *m, const char *header);

#endif
