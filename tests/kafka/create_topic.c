/* create_topic — makes a topic of N partitions on a test broker, for the
 * inbox tests (the broker's auto-created topics have one partition, and
 * Debian's kcat cannot create topics).
 *
 * usage: create_topic BOOTSTRAP TOPIC PARTITIONS; exit 0 when created. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: create_topic BOOTSTRAP TOPIC PARTITIONS\n");
        return 2;
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "create_topic: %s\n", errstr);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "create_topic: %s\n", errstr);
        return 1;
    }
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(argv[2], atoi(argv[3]), 1, errstr, sizeof errstr);
    if (!nt) {
        fprintf(stderr, "create_topic: %s\n", errstr);
        return 1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    int rc = 1;
    if (res) {
        size_t n;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
        rd_kafka_resp_err_t e = n == 1 ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR__FAIL;
        if (e) fprintf(stderr, "create_topic %s: %s\n", argv[2], rd_kafka_err2str(e));
        rc = e ? 1 : 0;
    } else {
        fprintf(stderr, "create_topic %s: no answer from %s\n", argv[2], argv[1]);
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return rc;
}
