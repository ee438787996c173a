/* kafka_inbox — a Kafka topic as a source: the inbox that spreads reports
 * over workers, kafka://HOST:PORT[,...]/TOPIC?group=G.
 *
 * Why Kafka's consumer groups: spreading work over machines, with workers
 * that come and go, is what they are for.  Every worker of group G is
 * given some partitions of TOPIC; one that joins or dies makes the group
 * rebalance, and its partitions go on elsewhere from the offsets last
 * committed.  So the offsets must say exactly what was counted: each
 * epoch commits its rollups and the inbox's offsets in one Kafka
 * transaction (epoch_position hands them to the sink, which calls
 * rd_kafka_send_offsets_to_transaction).  A worker that dies before a
 * commit leaves nothing of its epoch, and its successor reads the same
 * messages again; one that commits has moved the offsets with the counts.
 * With a sink that has no transaction (a file) the offsets are committed
 * after the state, as each input is acknowledged: a crash in between makes
 * the same worker read the message again and skip it (the state knows its
 * key), but another worker would count it again.
 *
 * A message is either a report as received (mail, gzip, zip, XML: one
 * input, its bytes handed to ingest from memory) or an S3 event
 * notification (kafka_inbox_event.c), whose ObjectCreated records are one
 * input each, fetched from the store when ingest opens them
 * (s3_client.h).  A notification of nothing (a test event) still moves the
 * offsets on.
 *
 * Rebalances happen only inside the consumer's poll, and the consumer is
 * polled only between epochs (next) and before an aborted epoch runs again
 * (epoch_position): so when partitions are taken away, nothing of them is
 * in an epoch that could still commit.  An epoch whose commit the group
 * refused (the worker was thrown out, or the group moved on while it
 * counted) is abandoned, and the worker goes on with what it still owns.
 *
 * Batch (no --follow): each partition is read up to the end offset found
 * when it was assigned, then the run ends.  Following: the consumer is
 * polled at every next().  Either way a next() hands out at most LIST_MAX
 * inputs, so that the run comes back to poll soon.  Memory: at most
 * QUEUE_MAX_MESSAGES messages or QUEUE_MAX_BYTES bytes are held between
 * polls, and no more is fetched until they are counted.
 *
 * Threads: next, ack, hold, epoch_position and destroy run on the run's
 * thread, and the rebalance callback inside them; open and reject run on
 * the engine's workers, reading entries that the run's thread does not
 * change while the engine runs.
 */
#define _GNU_SOURCE /* memfd_create, O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_clock.h"
#include "dp_fs.h"
#include "dp_kafka.h"
#include "ingest.h"
#include "kafka_inbox_event.h"
#include "kafka_inbox_lag.h"
#include "s3_client.h"
#include "source_internal.h"

#define QUEUE_MAX_MESSAGES 1024
#define QUEUE_MAX_BYTES (64u << 20)
/* Inputs one next() hands out: the consumer is polled only between calls,
 * and a rebalance (a worker joining) waits for every member to poll, so a
 * round is kept short. */
#define LIST_MAX 256

enum { IN_PENDING = 0, IN_ACKED = 1, IN_HELD = 2, IN_EPOCH = 3 };

/* One message taken from the inbox, until all its inputs are counted. */
typedef struct entry {
    struct entry *next; /* the partition's next message */
    int32_t partition;
    int64_t offset;
    rd_kafka_message_t *msg; /* a report: its bytes; NULL for a notification */
    dp_kafka_inbox_event ev; /* a notification: the objects it names */
    size_t n_inputs;
    unsigned char *state; /* per input: IN_* */
    int32_t slot;         /* a copy forwarded for the reports of this slot only; -1: an original */
    int refs;             /* the queue's, and one per dp_input */
    int queued;           /* still the source's (not given up on a revoke) */
} entry;

typedef struct part {
    int32_t partition;
    int assigned;
    entry *head, *tail;
    int64_t next_offset; /* after the last message queued; -1: none yet */
    int64_t committed;   /* the position known committed; -1: unknown */
    int64_t txn_pos;     /* the position the last epoch_position handed out */
    int64_t pos;         /* the next offset the consumer reads, where known; -1: not yet */
    int64_t end;         /* batch: the high watermark last seen; -1: not asked */
} part;

typedef struct inbox_input {
    dp_input base;
    entry *e;
    size_t idx;
} inbox_input;

typedef struct inbox_source {
    dp_source base;
    dp_kafka_client kc; /* its owner: this source (the rebalance callback finds it there) */
    char *group, *label;
    char *quarantine_dir;
    int follow;
    rd_kafka_t *rk;
    part *parts;
    size_t n_parts;
    int assigned_once;
    size_t queued_msgs, queued_bytes;
    dp_s3_client *s3; /* NULL until a notification names an object */
    dp_s3_config s3cfg;
    char *s3_endpoint, *s3_region;
    int s3_failed;
    dp_error s3_err;
    rd_kafka_topic_partition_list_t *offsets; /* the last epoch_position's */
    rd_kafka_consumer_group_metadata_t *cgmd;
    dp_kafka_offsets out;
    int32_t n_slots; /* the topic's partitions when opened: a report's owner is one of them */
    int64_t *start_begin, *start_end; /* batch: each partition's offsets when the run began */
    double checked_at;                /* batch: when batch_done() last asked the broker */
    dp_metric *lag;                   /* NULL: not counted */
} inbox_source;

/* ---- entries and partitions --------------------------------------------------- */

static void entry_unref(inbox_source *s, entry *e) {
    if (--e->refs > 0) return;
    if (e->msg) {
        s->queued_bytes -= e->msg->len;
        rd_kafka_message_destroy(e->msg);
    }
    dp_kafka_inbox_event_free(&e->ev);
    free(e->state);
    free(e);
}

static part *part_of(inbox_source *s, int32_t p, int create) {
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i].partition == p) return &s->parts[i];
    if (!create) return NULL;
    part *v = realloc(s->parts, (s->n_parts + 1) * sizeof *v);
    if (!v) return NULL;
    s->parts = v;
    part *np = &v[s->n_parts++];
    memset(np, 0, sizeof *np);
    np->partition = p;
    np->next_offset = np->committed = np->txn_pos = np->pos = np->end = -1;
    return np;
}

/* Gives up the partition's queued messages: they are someone else's now,
 * or will be read again from the committed offset. */
static void part_drop(inbox_source *s, part *p) {
    while (p->head) {
        entry *e = p->head;
        p->head = e->next;
        e->queued = 0;
        s->queued_msgs--;
        entry_unref(s, e);
    }
    p->tail = NULL;
    p->next_offset = p->committed = p->txn_pos = p->pos = p->end = -1;
}

static int entry_done(const entry *e, int epoch_counts) {
    for (size_t i = 0; i < e->n_inputs; i++)
        if (!(e->state[i] == IN_ACKED || (epoch_counts && e->state[i] == IN_EPOCH))) return 0;
    return 1;
}

/* Where the partition may be committed to: past every message all of
 * whose inputs are counted (with the epoch's, when epoch_counts). */
static int64_t part_position(const part *p, int epoch_counts) {
    for (const entry *e = p->head; e; e = e->next)
        if (!entry_done(e, epoch_counts)) return e->offset;
    /* past the last message: where the consumer reads next, which the end
     * of a partition sets past the transactions' markers, so that a
     * partition read to its end is committed at its end */
    return p->pos > p->next_offset ? p->pos : p->next_offset;
}

/* ---- the consumer --------------------------------------------------------------- */

static void log_parts(inbox_source *s, const char *what, const rd_kafka_topic_partition_list_t *l) {
    char buf[512];
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < l->cnt && at < sizeof buf - 16; i++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%" PRId32, i ? "," : "", l->elems[i].partition);
    dp_log_info(s->base.log, "inbox",
                DP_LOG_FIELDS(DP_LOG_STR("source", s->label), DP_LOG_STR("event", what),
                              DP_LOG_STR("partitions", l->cnt ? buf : "")),
                "dmarcpipe: %s: %s partition(s) %s", s->label, what, l->cnt ? buf : "(none)");
}

/* Batch: where the newly assigned partitions start (the group's committed
 * offsets, else their first offset) and end now: a partition whose
 * committed offset is its end yields no message and no end-of-partition
 * event, so the reader must know. */
static void batch_positions(inbox_source *s, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *l) {
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, c, 10000);
    for (int i = 0; i < c->cnt; i++) {
        part *p = part_of(s, c->elems[i].partition, 0);
        int64_t lo = -1, hi = -1;
        if (!p || rd_kafka_query_watermark_offsets(rk, s->kc.topic, p->partition, &lo, &hi, 10000)) continue;
        p->end = hi;
        p->pos = !e && !c->elems[i].err && c->elems[i].offset >= 0 ? c->elems[i].offset : lo;
    }
    rd_kafka_topic_partition_list_destroy(c);
}

static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why, rd_kafka_topic_partition_list_t *l, void *opaque) {
    inbox_source *s = ((dp_kafka_client *)opaque)->owner;
    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_parts(s, "assigned", l);
        for (int i = 0; i < l->cnt; i++) {
            part *p = part_of(s, l->elems[i].partition, 1);
            if (!p) continue; /* out of memory: the partition is read, but never ends a batch */
            part_drop(s, p);
            p->assigned = 1;
        }
        if (!s->follow) batch_positions(s, rk, l);
        rd_kafka_assign(rk, l);
        s->assigned_once = 1;
    } else {
        log_parts(s, "gave up", l);
        for (int i = 0; i < l->cnt; i++) {
            part *p = part_of(s, l->elems[i].partition, 0);
            if (p) {
                part_drop(s, p);
                p->assigned = 0;
            }
        }
        rd_kafka_assign(rk, NULL);
    }
}

#define SLOT_HEADER "dmarcpipe-slot"

/* Takes one message into the partition's queue (the message is then the
 * entry's).  0, or -1 (err): out of memory. */
static int take(inbox_source *s, rd_kafka_message_t *m, dp_error *err) {
    part *p = part_of(s, m->partition, 1);
    if (!p || !p->assigned) {
        rd_kafka_message_destroy(m);
        return p ? 0 : dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    entry *e = calloc(1, sizeof *e);
    if (!e) {
        rd_kafka_message_destroy(m);
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    e->partition = m->partition;
    e->offset = m->offset;
    e->slot = dp_kafka_inbox_event_slot(m, SLOT_HEADER);
    e->refs = 1;
    e->queued = 1;
    dp_error perr;
    int kind = m->payload ? dp_kafka_inbox_event_parse(m->payload, m->len, &e->ev, &perr) : 1;
    if (kind < 0) {
        /* a notification that names no object: kept as a report would be,
         * so the rejection shows it */
        char a[DP_ERROR_TEXT_MAX];
        dp_log_warn(s->base.log, "inbox",
                    DP_LOG_FIELDS(DP_LOG_STR("source", s->label), DP_LOG_I64("partition", m->partition),
                                  DP_LOG_I64("offset", m->offset), DP_LOG_STR("error", perr.msg)),
                    "dmarcpipe: %s: partition %" PRId32 " offset %" PRId64 ": %s; read as a report", s->label,
                    m->partition, m->offset, dp_error_text(perr.msg, a));
        kind = 0;
    }
    if (kind == 0) {
        e->msg = m;
        e->n_inputs = 1;
        s->queued_bytes += m->len;
    } else {
        e->n_inputs = e->ev.n;
        rd_kafka_message_destroy(m);
    }
    e->state = calloc(e->n_inputs ? e->n_inputs : 1, 1);
    if (!e->state) {
        e->queued = 0;
        entry_unref(s, e);
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    if (p->tail) p->tail->next = e;
    else p->head = e;
    p->tail = e;
    p->next_offset = p->pos = e->offset + 1;
    s->queued_msgs++;
    return 0;
}

/* Batch: the run is over when every message up to the end offsets found
 * at the start has been counted by some worker of the group (its
 * committed offsets say so), and this worker has read its partitions to
 * their ends now: a copy another worker forwarded here (see inbox_route)
 * is in them by then, committed with the original's offsets. */
static int has_pending(const inbox_source *s) {
    for (size_t i = 0; i < s->n_parts; i++)
        for (const entry *e = s->parts[i].head; e; e = e->next)
            for (size_t k = 0; k < e->n_inputs; k++)
                if (e->state[k] == IN_PENDING) return 1;
    return 0;
}

static int batch_done(inbox_source *s) {
    if (!s->assigned_once || has_pending(s)) return 0;
    for (size_t i = 0; i < s->n_parts; i++) {
        const part *p = &s->parts[i];
        if (p->assigned && (p->pos < 0 || p->pos < p->end)) return 0;
    }
    double now = dp_clock_seconds();
    if (now - s->checked_at < 0.5) return 0;
    s->checked_at = now;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(s->n_slots > 0 ? s->n_slots : 1);
    for (int32_t k = 0; k < s->n_slots; k++) rd_kafka_topic_partition_list_add(l, s->kc.topic, k);
    int done = rd_kafka_committed(s->rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; done && i < l->cnt; i++) {
        int32_t k = l->elems[i].partition;
        int64_t want = k < s->n_slots ? s->start_end[k] : 0;
        /* a partition with nothing in it up to the start needs no commit */
        if (want > 0 && (l->elems[i].err || l->elems[i].offset < want) && want > s->start_begin[k]) done = 0;
    }
    rd_kafka_topic_partition_list_destroy(l);
    for (size_t i = 0; done && i < s->n_parts; i++) {
        part *p = &s->parts[i];
        int64_t lo, hi;
        if (!p->assigned) continue;
        /* as the last fetch saw it: asking the broker here stalls */
        if (rd_kafka_get_watermark_offsets(s->rk, s->kc.topic, p->partition, &lo, &hi) || hi < 0) done = 0;
        else if (hi > p->end) p->end = hi, done = 0; /* more came: forwarded copies */
    }
    return done;
}

static int queue_full(const inbox_source *s) {
    return s->queued_msgs >= QUEUE_MAX_MESSAGES || s->queued_bytes >= QUEUE_MAX_BYTES;
}

/* One poll of the consumer (the rebalance callback runs inside).  1: a
 * message or an event came; 0: nothing within timeout_ms; -1 (err). */
static int poll_once(inbox_source *s, int timeout_ms, dp_error *err) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, timeout_ms);
    if (!m) return 0;
    if (!m->err) return take(s, m, err) == 0 ? 1 : -1;
    rd_kafka_resp_err_t e = m->err;
    if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        part *p = part_of(s, m->partition, 0);
        if (p && p->assigned && m->offset > p->pos) p->pos = m->offset;
        rd_kafka_message_destroy(m);
        return 1;
    }
    char what[256];
    snprintf(what, sizeof what, "%s", rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
    if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        if (!s->follow) return dp_error_set(err, DP_ERR_IO, "%s: %s", s->label, what);
    }
    dp_log_warn(s->base.log, "inbox", DP_LOG_FIELDS(DP_LOG_STR("source", s->label), DP_LOG_STR("error", what)),
                "dmarcpipe: %s: %s", s->label, what);
    return 1;
}

/* ---- the source ------------------------------------------------------------------- */

static int add_inputs(inbox_source *s, entry *e, dp_input_list *out, size_t *listed, dp_error *err) {
    for (size_t i = 0; i < e->n_inputs; i++) {
        if (e->state[i] != IN_PENDING) continue;
        inbox_input *in = calloc(1, sizeof *in);
        char name[1200], key[1200];
        if (e->msg) {
            snprintf(name, sizeof name, "%s/%" PRId32 "@%" PRId64, s->kc.uri, e->partition, e->offset);
            snprintf(key, sizeof key, "kafka:%s/%" PRId32 "@%" PRId64, s->kc.topic, e->partition, e->offset);
        } else {
            const dp_kafka_inbox_object *o = &e->ev.objects[i];
            snprintf(name, sizeof name, "s3://%s/%s", o->bucket, o->key);
            snprintf(key, sizeof key, "s3://%s/%s %s %lld", o->bucket, o->key, o->etag, o->size);
        }
        if (in) {
            in->base.source = &s->base;
            in->base.name = strdup(name);
            in->base.key = strdup(key);
            in->e = e;
            in->idx = i;
        }
        if (!in || !in->base.name || !in->base.key) {
            if (in) {
                free(in->base.name);
                free(in->base.key);
            }
            free(in);
            return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        }
        e->refs++;
        if (dp_input_list_push(out, &in->base) != 0) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        (*listed)++;
    }
    return 0;
}

/* Commits, outside any transaction, how far the partitions' counted
 * messages reach: after acknowledgements no transaction carried (a sink
 * without one, inputs an earlier run had counted) and notifications of
 * nothing. */
static int commit_plain(inbox_source *s) {
    rd_kafka_topic_partition_list_t *l = NULL;
    for (size_t i = 0; i < s->n_parts; i++) {
        part *p = &s->parts[i];
        while (p->head && entry_done(p->head, 0)) {
            entry *e = p->head;
            p->head = e->next;
            if (!p->head) p->tail = NULL;
            e->queued = 0;
            s->queued_msgs--;
            entry_unref(s, e);
        }
        int64_t pos = part_position(p, 0);
        if (!p->assigned || pos < 0 || pos <= p->committed) continue;
        if (pos <= p->txn_pos) {
            p->committed = pos; /* the epoch's transaction carried it */
            continue;
        }
        if (!l) l = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_add(l, s->kc.topic, p->partition)->offset = pos;
    }
    if (!l) return 0;
    rd_kafka_resp_err_t e = rd_kafka_commit(s->rk, l, 0);
    if (e) {
        dp_log_warn(s->base.log, "inbox",
                    DP_LOG_FIELDS(DP_LOG_STR("source", s->label), DP_LOG_STR("error", rd_kafka_err2str(e))),
                    "dmarcpipe: %s: cannot commit the offsets (%s); the messages will be read again, and "
                    "skipped where the state knows them", s->label, rd_kafka_err2str(e));
    } else {
        for (int i = 0; i < l->cnt; i++) {
            part *p = part_of(s, l->elems[i].partition, 0);
            if (p) p->committed = l->elems[i].offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return e ? -1 : 0;
}

static int inbox_next(dp_source *src, dp_input_list *out, dp_error *err) {
    inbox_source *s = (inbox_source *)src;
    commit_plain(s);
    double since = dp_clock_seconds();
    /* A batch run waits for its partitions and for their messages; a
     * follower takes what has come.  Either takes no more than a round's
     * worth ahead, and polls at least once: a rebalance is served here. */
    for (int first = 1;; first = 0) {
        if (dp_kafka_stopping(&s->kc)) break;
        int enough = queue_full(s) || s->queued_msgs >= LIST_MAX || (!s->follow && batch_done(s));
        if (enough && !first) break;
        int r = poll_once(s, enough ? 0 : s->follow ? 100 : 500, err);
        if (r < 0) return -1;
        if (r == 1) {
            since = dp_clock_seconds();
            continue;
        }
        if (s->follow) break;
        if (has_pending(s)) break; /* count what came; the rest next time */
        if (!s->assigned_once && dp_kafka_given_up(&s->kc, since))
            return dp_error_set(err, DP_ERR_IO, "%s: no partitions from group %s within %.0f s (--broker-timeout): "
                                "is the broker up?", s->label, s->group, s->kc.give_up_s);
    }
    size_t listed = 0;
    for (size_t i = 0; i < s->n_parts; i++)
        for (entry *e = s->parts[i].head; e; e = e->next) {
            if (listed >= LIST_MAX) break;
            if (add_inputs(s, e, out, &listed, err) != 0) return -1;
        }
    if (listed == 0 && s->queued_msgs > 0) commit_plain(s); /* notifications of nothing */
    dp_kafka_inbox_lag_publish(s->lag, s->rk);
    return 0;
}

static int memfd_with(const void *data, size_t len, const char *name, dp_error *err) {
    int fd = memfd_create("dmarcpipe-inbox", MFD_CLOEXEC);
    if (fd >= 0 && dp_fs_write_all(fd, data, len) == 0 && lseek(fd, 0, SEEK_SET) == 0) return fd;
    dp_error_set(err, DP_ERR_IO, "%s: cannot hold it in an in-memory file: %s", name, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

static int inbox_open(dp_source *src, const dp_input *in, dp_error *err) {
    inbox_source *s = (inbox_source *)src;
    const inbox_input *ii = (const inbox_input *)in;
    if (ii->e->msg) return memfd_with(ii->e->msg->payload, ii->e->msg->len, in->name, err);
    const dp_kafka_inbox_object *o = &ii->e->ev.objects[ii->idx];
    if (!s->s3) {
        if (s->s3_failed) *err = s->s3_err;
        else dp_error_set(err, DP_ERR_IO, "%s: no S3 client", in->name);
        return -1;
    }
    return dp_s3_client_open_object(s->s3, o->bucket, o->key, err);
}

static int inbox_reject(dp_source *src, const dp_input *in, const dp_error *errors, size_t n_errors, dp_error *err) {
    inbox_source *s = (inbox_source *)src;
    const inbox_input *ii = (const inbox_input *)in;
    if (!s->quarantine_dir) return 0;
    dp_error ferr;
    int fd = ii->e->msg ? memfd_with(ii->e->msg->payload, ii->e->msg->len, in->name, &ferr)
             : s->s3 ? dp_s3_client_spool_object(s->s3, ii->e->ev.objects[ii->idx].bucket,
                                                 ii->e->ev.objects[ii->idx].key, &ferr)
                     : (dp_error_set(&ferr, DP_ERR_IO, "%s: no S3 client", in->name), -1);
    return dp_source_quarantine(s->quarantine_dir, in, fd, &ferr, "no longer in the store: not copied", errors,
                                n_errors, err);
}

static int inbox_ack(dp_source *src, const dp_input *in) {
    inbox_source *s = (inbox_source *)src;
    const inbox_input *ii = (const inbox_input *)in;
    if (!ii->e->queued) return 1; /* given up on a revoke: someone else's now */
    ii->e->state[ii->idx] = IN_ACKED;
    return commit_plain(s) == 0 ? 0 : -1;
}

static void inbox_hold(dp_source *src, const dp_input *in) {
    (void)src;
    const inbox_input *ii = (const inbox_input *)in;
    ii->e->state[ii->idx] = IN_HELD;
}

static void inbox_release(dp_source *src, dp_input *in) {
    inbox_input *ii = (inbox_input *)in;
    entry_unref((inbox_source *)src, ii->e);
    free(in->name);
    free(in->key);
    free(in);
}

/* A report's owner: the partition its identity hashes to.  The worker
 * that holds that partition reads its messages one after the other, so
 * copies of one report, wherever they were produced, are decided there in
 * order and the first one counts.  An original message holding a report
 * another partition owns is forwarded there (in the epoch's transaction),
 * marked with the slot it is for; that copy's other reports are ignored. */
static int inbox_route(dp_source *src, const dp_input *in, const uint8_t id[32], int32_t *slot) {
    const inbox_source *s = (const inbox_source *)src;
    const entry *e = ((const inbox_input *)in)->e;
    if (s->n_slots <= 0) return DP_ROUTE_HERE;
    uint32_t h = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
    int32_t owner = (int32_t)(h % (uint32_t)s->n_slots);
    if (e->slot >= 0) return owner == e->slot ? DP_ROUTE_HERE : DP_ROUTE_IGNORE;
    if (owner == e->partition) return DP_ROUTE_HERE;
    *slot = owner;
    return DP_ROUTE_FORWARD;
}

static int inbox_forward(dp_source *src, const dp_input *in, int32_t slot, dp_forward_fn emit, void *ctx,
                         dp_error *err) {
    inbox_source *s = (inbox_source *)src;
    const inbox_input *ii = (const inbox_input *)in;
    char sv[16];
    snprintf(sv, sizeof sv, "%" PRId32, slot);
    if (ii->e->msg)
        return emit(ctx, s->kc.topic, slot, SLOT_HEADER, sv, ii->e->msg->payload, ii->e->msg->len, err);
    /* a notification: of this one object */
    dp_buf b = DP_BUF_INIT;
    dp_kafka_inbox_event_format(&b, &ii->e->ev.objects[ii->idx]);
    int rc = b.failed ? dp_error_set(err, DP_ERR_NOMEM, "out of memory")
                      : emit(ctx, s->kc.topic, slot, SLOT_HEADER, sv, b.data, b.len, err);
    dp_buf_free(&b);
    return rc;
}

static int inbox_epoch_position(dp_source *src, dp_input *const *inputs, size_t n, int retry, dp_kafka_offsets **out,
                                dp_error *err) {
    inbox_source *s = (inbox_source *)src;
    *out = NULL;
    if (retry) {
        /* the group may have moved on while the epoch failed: learn it now */
        if (poll_once(s, 0, err) < 0) return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!((const inbox_input *)inputs[i])->e->queued) {
            dp_error_set(err, DP_ERR_IO, "%s: its partitions went to another worker of group %s", s->label,
                         s->group);
            return DP_SOURCE_LOST;
        }
    for (size_t i = 0; i < n; i++) {
        const inbox_input *ii = (const inbox_input *)inputs[i];
        if (ii->e->state[ii->idx] == IN_PENDING) ii->e->state[ii->idx] = IN_EPOCH;
    }
    if (s->offsets) rd_kafka_topic_partition_list_destroy(s->offsets);
    s->offsets = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < s->n_parts; i++) {
        part *p = &s->parts[i];
        int64_t pos = p->assigned ? part_position(p, 1) : -1;
        if (pos < 0 || pos <= p->committed) continue;
        rd_kafka_topic_partition_list_add(s->offsets, s->kc.topic, p->partition)->offset = pos;
        p->txn_pos = pos;
    }
    for (size_t i = 0; i < n; i++) {
        const inbox_input *ii = (const inbox_input *)inputs[i];
        if (ii->e->state[ii->idx] == IN_EPOCH) ii->e->state[ii->idx] = IN_PENDING;
    }
    if (s->offsets->cnt == 0) return 0;
    if (s->cgmd) rd_kafka_consumer_group_metadata_destroy(s->cgmd);
    s->cgmd = rd_kafka_consumer_group_metadata(s->rk);
    if (!s->cgmd) return dp_error_set(err, DP_ERR_IO, "%s: no consumer group metadata", s->label);
    s->out = (dp_kafka_offsets){s->offsets, s->cgmd};
    *out = &s->out;
    return 0;
}

static void inbox_destroy(dp_source *src) {
    inbox_source *s = (inbox_source *)src;
    if (s->rk) {
        commit_plain(s);
        rd_kafka_consumer_close(s->rk); /* leaves the group: its partitions go on elsewhere at once */
        rd_kafka_destroy(s->rk);
    }
    for (size_t i = 0; i < s->n_parts; i++) part_drop(s, &s->parts[i]);
    free(s->parts);
    free(s->start_begin);
    free(s->start_end);
    if (s->offsets) rd_kafka_topic_partition_list_destroy(s->offsets);
    if (s->cgmd) rd_kafka_consumer_group_metadata_destroy(s->cgmd);
    if (s->s3) dp_s3_client_free(s->s3);
    dp_kafka_free(&s->kc);
    free(s->group);
    free(s->label);
    free(s->quarantine_dir);
    free(s->s3_endpoint);
    free(s->s3_region);
    free(s);
}

static const dp_source_ops inbox_ops = {
    .name = "kafka inbox",
    .next = inbox_next,
    .open = inbox_open,
    .reject = inbox_reject,
    .ack = inbox_ack,
    .hold = inbox_hold,
    .release = inbox_release,
    .destroy = inbox_destroy,
    .epoch_position = inbox_epoch_position,
    .route = inbox_route,
    .forward = inbox_forward,
};

/* ---- opening ------------------------------------------------------------------------ */

/* ?group=G&s3_endpoint=URL&s3_region=R&s3_path_style=1 */
static int parse_query(inbox_source *s, const char *uri, const char *q, dp_error *err) {
    char *dup = strdup(q), *save = NULL;
    if (!dup) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    int rc = 0;
    for (char *kv = strtok_r(dup, "&", &save); rc == 0 && kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': '%s' is not NAME=VALUE", uri, kv);
            break;
        }
        *eq = '\0';
        const char *v = eq + 1;
        char **slot = strcmp(kv, "group") == 0         ? &s->group
                      : strcmp(kv, "s3_endpoint") == 0 ? &s->s3_endpoint
                      : strcmp(kv, "s3_region") == 0   ? &s->s3_region
                                                       : NULL;
        if (slot) {
            free(*slot);
            if (!(*slot = strdup(v))) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        } else if (strcmp(kv, "s3_path_style") == 0 && (strcmp(v, "0") == 0 || strcmp(v, "1") == 0)) {
            s->s3cfg.path_style = v[0] == '1';
        } else {
            rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': unknown setting '%s' (group, s3_endpoint, s3_region, "
                              "s3_path_style)", uri, kv);
        }
    }
    free(dup);
    if (rc == 0 && (!s->group || !*s->group))
        rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': a Kafka inbox needs ?group=NAME, the consumer group its "
                          "workers share", uri);
    return rc;
}

/* The topic's partitions: the slots reports are routed over.  Adding
 * partitions later moves reports to other owners: copies of one report
 * that straddle the change may then be counted twice. */
static int count_slots(inbox_source *s, dp_error *err) {
    s->n_slots = dp_kafka_partitions(&s->kc, s->rk, s->kc.topic, err);
    if (s->n_slots < 0) return -1;
    if (s->follow) return 0;
    s->start_begin = calloc((size_t)s->n_slots, sizeof *s->start_begin);
    s->start_end = calloc((size_t)s->n_slots, sizeof *s->start_end);
    if (!s->start_begin || !s->start_end) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    for (int32_t k = 0; k < s->n_slots; k++) {
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(s->rk, s->kc.topic, k, &s->start_begin[k], &s->start_end[k], 10000);
        if (e)
            return dp_error_set(err, DP_ERR_IO, "%s: partition %" PRId32 ": cannot learn its end offset: %s", s->label,
                                k, rd_kafka_err2str(e));
    }
    return 0;
}

dp_source *dp_kafka_inbox_open(const char *uri, const dp_source_options *opts, dp_error *err) {
    inbox_source *s = calloc(1, sizeof *s);
    if (!s) return dp_error_set(err, DP_ERR_NOMEM, "out of memory"), NULL;
    s->base.ops = &inbox_ops;
    s->base.log = opts ? opts->log : NULL;
    s->base.remember_inputs = 1;
    s->follow = opts && opts->follow;
    s->lag = dp_kafka_inbox_lag_metric(opts ? opts->metrics : NULL);
    const char *q = strchr(uri, '?');
    char *base = strndup(uri, q ? (size_t)(q - uri) : strlen(uri));
    int rc = base ? 0 : dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    if (rc == 0) rc = dp_kafka_init(&s->kc, "source", base, opts ? opts->kafka : NULL, err);
    free(base);
    s->kc.owner = s;
    if (rc == 0) rc = parse_query(s, uri, q ? q + 1 : "", err);
    if (rc == 0 && opts && opts->quarantine_dir && !(s->quarantine_dir = strdup(opts->quarantine_dir)))
        rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    if (rc == 0) {
        size_t n = strlen(s->kc.uri) + strlen(s->group) + 16;
        if ((s->label = malloc(n))) snprintf(s->label, n, "inbox %s (group %s)", s->kc.uri, s->group);
        else rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    if (rc == 0) {
        if (!s->s3_region) {
            const char *r = getenv("AWS_REGION");
            s->s3_region = strdup(r && *r ? r : "us-east-1");
        }
        if (!s->s3_endpoint && s->s3_region) {
            size_t n = strlen(s->s3_region) + 40;
            if ((s->s3_endpoint = malloc(n))) snprintf(s->s3_endpoint, n, "https://s3.%s.amazonaws.com", s->s3_region);
        }
        if (!s->s3_region || !s->s3_endpoint) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        s->s3cfg.endpoint = s->s3_endpoint;
        s->s3cfg.region = s->s3_region;
        s->s3cfg.log = s->base.log;
    }
    rd_kafka_conf_t *conf = NULL;
    if (rc == 0) {
        const char *const defaults[][2] = {
            {"group.id", s->group},
            {"client.id", "dmarcpipe-inbox"},
            {"enable.auto.commit", "false"},
            {"enable.auto.offset.store", "false"},
            {"auto.offset.reset", "earliest"},
            {"enable.partition.eof", "true"},
            {"isolation.level", "read_committed"}, /* only what producers committed */
            {"allow.auto.create.topics", "false"},
            /* fetched ahead per partition, on top of the queue held here */
            {"queued.max.messages.kbytes", "16384"},
        };
        conf = dp_kafka_conf(&s->kc, defaults, sizeof defaults / sizeof *defaults, 1, err);
        if (!conf) rc = -1;
    }
    if (rc == 0) {
        rd_kafka_conf_set_rebalance_cb(conf, rebalance);
        char msg[512];
        s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof msg);
        if (!s->rk) {
            rd_kafka_conf_destroy(conf);
            rc = dp_error_set(err, DP_ERR_IO, "%s: cannot make a consumer: %s", s->label, msg);
        }
    }
    if (rc == 0) {
        rd_kafka_poll_set_consumer(s->rk);
        rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(t, s->kc.topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(s->rk, t);
        rd_kafka_topic_partition_list_destroy(t);
        if (e) rc = dp_error_set(err, DP_ERR_IO, "%s: cannot subscribe: %s", s->label, rd_kafka_err2str(e));
    }
    if (rc == 0) rc = count_slots(s, err);
    /* the S3 client needs credentials only once a notification names an
     * object; made now, on this thread, a missing one is said once */
    if (rc == 0 && !(s->s3 = dp_s3_client_new(&s->s3cfg, &s->s3_err))) s->s3_failed = 1;
    if (rc != 0) {
        inbox_destroy(&s->base);
        return NULL;
    }
    return &s->base;
}
