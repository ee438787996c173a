/* dp_kafka.h — what every Kafka client of dmarcpipe shares: the Kafka
 * sink, the feed reader and the Kafka inbox source.
 *
 * They talk to the same cluster with the same configuration, so it is
 * built in one place: our defaults, then a properties file, then
 * DMARCPIPE_KAFKA_* environment variables, then -X options, checked by
 * librdkafka; values of sensitive properties are never printed, not even
 * inside librdkafka's own log lines.  And a topic is read to its end,
 * read_committed, waiting no longer for the broker than --broker-timeout:
 * the sink's ledger, `dmarcpipe report`'s feed.
 *
 * dp_kafka_offsets is how a consumer's position travels into a producer's
 * transaction (the inbox's offsets, committed with the rollups).
 */
#ifndef DP_KAFKA_H
#define DP_KAFKA_H

#include <librdkafka/rdkafka.h>

#include <signal.h>

#include "dp_error.h"
#include "dp_log.h"

/* What a Kafka client takes from the command line (all optional). */
typedef struct dp_kafka_settings {
    const char *config_file;        /* librdkafka properties, key=value lines */
    const char *const *props;       /* -X key=value, applied last, in order */
    size_t n_props;
    const volatile sig_atomic_t *stop; /* set by SIGTERM: give up waiting */
    double broker_timeout; /* seconds a wait for the broker may last (0: for ever) */
    dp_log *log; /* our retries and librdkafka's own lines, at their level (NULL: plain) */
} dp_kafka_settings;

/* A wait was given up because a stop (SIGTERM) was asked for. */
enum { DP_KAFKA_STOPPED = 2 };

/* A consumer group's position, for a producer's transaction
 * (rd_kafka_send_offsets_to_transaction): the offsets to commit and the
 * group's metadata.  Both are the consumer's, valid until its next poll. */
struct dp_kafka_offsets {
    rd_kafka_topic_partition_list_t *offsets;
    rd_kafka_consumer_group_metadata_t *group;
};
typedef struct dp_kafka_offsets dp_kafka_offsets;

typedef struct dp_kafka_prop {
    char *key, *value;
} dp_kafka_prop;

typedef struct dp_kafka_client {
    char *uri;                   /* as given: messages name it */
    char *brokers, *topic;       /* kafka://BROKERS/TOPIC */
    dp_kafka_prop *props; /* the user's, in the order they apply */
    size_t n_props;
    const volatile sig_atomic_t *stop;
    double give_up_s; /* --broker-timeout: how long a wait for the broker may last (0: for ever) */
    void *owner;      /* whoever made the client: a producer's delivery reports reach it */
    dp_log *log;      /* from the settings */
} dp_kafka_client;

/* Parses kafka://HOST:PORT[,HOST:PORT...]/TOPIC (a bad one: "LABEL 'URI':
 * expected ...") and loads the user's configuration from opts (config
 * file, environment, -X).  0, or -1 with err set; free the client either
 * way. */
int dp_kafka_init(dp_kafka_client *c, const char *label, const char *uri, const dp_kafka_settings *opts,
                         dp_error *err);
void dp_kafka_free(dp_kafka_client *c);

/* Whether a topic name is one Kafka accepts: [A-Za-z0-9._-]{1,249}. */
int dp_kafka_valid_topic(const char *t);

/* A configuration: bootstrap.servers, then `defaults` (n pairs), then the
 * user's properties.  A consumer's isolation level (read_committed) and
 * its never creating a topic are not the user's to change.  The opaque is
 * the client (log lines are redacted through it).  NULL with err set when
 * librdkafka refuses a property. */
rd_kafka_conf_t *dp_kafka_conf(const dp_kafka_client *c, const char *const (*defaults)[2], size_t n,
                                      int consumer, dp_error *err);

/* SIGTERM was asked for; the broker has been waited for too long since
 * `since` (dp_clock_seconds()); a nap. */
int dp_kafka_stopping(const dp_kafka_client *c);
int dp_kafka_given_up(const dp_kafka_client *c, double since);
void dp_kafka_sleep_ms(long ms);

/* The number of partitions of `topic`, asked of the cluster with the
 * client `rk`, waiting for the broker within --broker-timeout.  -1 and err:
 * no such topic, no broker, a stop. */
int dp_kafka_partitions(const dp_kafka_client *c, rd_kafka_t *rk, const char *topic, dp_error *err);

/* What to read, for dp_kafka_read_to_end(). */
typedef struct dp_kafka_read {
    const char *topic;
    const char *what;      /* "ledger": messages say "the ledger", "ledger T" */
    const char *gone_hint; /* added to the message when offsets are gone, or "" */
    int32_t partition;     /* one partition, or -1: every partition of the topic */
    int64_t from;          /* the one partition's first offset; 0: its beginning */
    int missing_ok;        /* a topic that does not exist is empty (else an error) */
    /* Stop at the end offsets found at the start (a feed that goes on
     * growing is read as it was), instead of where the reader first
     * catches up with it. */
    int to_start_end;
    /* Where the caller keeps a consumer between reads of one topic, which
     * saves a connection per read (NULL: a consumer of its own each time);
     * the caller destroys it (rd_kafka_destroy). */
    rd_kafka_t **keep;
} dp_kafka_read;

/* Called with each message, in offset order within a partition; non-zero
 * stops the reading. */
typedef int (*dp_kafka_msg_fn)(void *ctx, const rd_kafka_message_t *m);

/* dp_kafka_read_to_end(): fn asked to stop (err not set). */
enum { DP_KAFKA_FN_STOP = 3 };

/* Reads r->topic to its end with a consumer of its own (read_committed:
 * aborted transactions are never seen, an open one is the end).  0,
 * DP_KAFKA_STOPPED (SIGTERM), DP_KAFKA_FN_STOP, or -1 with err set:
 * no broker for --broker-timeout seconds, a topic that does not exist,
 * offsets gone. */
int dp_kafka_read_to_end(const dp_kafka_client *c, const dp_kafka_read *r,
                                dp_kafka_msg_fn fn, void *ctx, dp_error *err);

#endif
