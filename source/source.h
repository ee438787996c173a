/* source.h — the public interface of the pipeline's sources.
 *
 * A source is where inputs come from: files and folders, and behind the
 * same vtable a Maildir, a mailbox, an object store or a Kafka inbox.
 * Every source fills one small struct of callbacks, Fluent Bit style, so a
 * new source is one file here and one line in dp_source_open().
 *
 * The steps, in the order a run takes them (run/ drives them):
 *   next    the inputs that are ready now, in the order they are to run;
 *   open    one input's bytes, as a stream ingest reads (a file descriptor);
 *   reject  what becomes of an input ingest rejected (a copy kept with its
 *           reasons, for the file source);
 *   ack     what becomes of an input once what it held is durably counted:
 *           its rollups committed and the state written (moved to --done,
 *           for the file source);
 * and each input carries its key: the name the state knows it by.
 *
 * Memory: a source owns every dp_input it lists until dp_input_free()
 * hands it back; the strings in it live as long as the input.
 * Threads: next, ack and close are called by the one thread that drives
 * the run.  open and reject are called by the engine's workers, several at
 * once, so a source makes them thread-safe.
 */
#ifndef DP_SOURCE_H
#define DP_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "dp_error.h"
#include "dp_log.h"
#include "dp_metrics.h"

typedef struct dp_source dp_source;
typedef struct dp_kafka_offsets dp_kafka_offsets; /* common/dp_kafka.h */

/* Hands one message to the epoch's transaction: `value` into TOPIC's
 * `partition`, with one header.  0, or -1 (err). */
typedef int (*dp_forward_fn)(void *ctx, const char *topic, int32_t partition, const char *header,
                             const char *header_value, const void *value, size_t len, dp_error *err);

/* One input: a file, and later a mail message or an object. */
typedef struct dp_input {
    dp_source *source; /* the source it came from, which owns it */
    char *name;        /* names it in logs, errors and the reports feed: a path */
    char *key;         /* names it in the state, with what tells its versions apart
                          (a file: size, mtime and real path); "" when unknown */
    uint64_t size;     /* bytes, when the listing knows them (has_size: a file) */
    int has_size;
} dp_input;

/* A growable array of inputs, in run order. */
typedef struct dp_input_list {
    dp_input **v;
    size_t n, cap;
} dp_input_list;

typedef struct dp_source_ops {
    const char *name;
    /* Appends the inputs that are ready now to `out`, in the order they
     * are to be run.  A batch source lists what it has on its first call
     * and nothing after.  A following source (dp_source_options.follow)
     * lists, at every call, the inputs that have arrived and are ready;
     * one it listed before and that was not acknowledged since is listed
     * again while it is still there.  0, or -1 (err). */
    int (*next)(dp_source *s, dp_input_list *out, dp_error *err);
    /* A readable file descriptor with the input's bytes from its start,
     * which the caller closes; or -1 and err (naming the input). */
    int (*open)(dp_source *s, const dp_input *in, dp_error *err);
    /* Ingest rejected the input; errors[0..n) say why.  0, or -1 (err)
     * when the run cannot go on (the rejection could not be kept). */
    int (*reject)(dp_source *s, const dp_input *in, const dp_error *errors, size_t n_errors, dp_error *err);
    /* What the input held is durably counted.  0: acknowledged; 1: there
     * was nothing left to acknowledge (the input is gone); -1: it could not
     * be (logged), and it is not listed again by this process. */
    int (*ack)(dp_source *s, const dp_input *in);
    /* Optional: the input could not be dealt with (its rejection could not
     * be kept): it stays where it is, for a later run; a following source
     * need not list it again in this process. */
    void (*hold)(dp_source *s, const dp_input *in);
    /* Optional: frees an input of this source (NULL: dp_input_free frees
     * the struct, its name and its key). */
    void (*release)(dp_source *s, dp_input *in);
    /* Optional: a descriptor that becomes readable when new inputs may
     * have arrived (inotify), so that a follower need not wait for its next
     * poll; next() drains it.  -1: none. */
    int (*wake_fd)(dp_source *s);
    void (*destroy)(dp_source *s);
    /* Optional: a source whose read position is committed with the epoch,
     * in the sink's transaction (a Kafka consumer group's offsets).  Called
     * before the commit with the epoch's inputs of this source, in order;
     * `retry`: the epoch was aborted before and runs again.  0 and *out
     * (the source's, valid until its next call; NULL: nothing to commit),
     * DP_SOURCE_LOST: the inputs are no longer this source's to commit (a
     * rebalance gave them to another worker) and the epoch is abandoned,
     * or -1 (err). */
    int (*epoch_position)(dp_source *s, dp_input *const *inputs, size_t n, int retry, dp_kafka_offsets **out,
                          dp_error *err);
    /* Optional: a source whose reports each have one owner among the
     * workers that share it (a Kafka inbox: the partition the report's
     * identity hashes to), so that copies of a report are decided one after
     * the other by one worker.  route: DP_ROUTE_HERE (count it),
     * DP_ROUTE_FORWARD (its owner is *slot: forward() sends it there) or
     * DP_ROUTE_IGNORE (a copy forwarded for another report); any thread.
     * forward: a copy of the input for slot's owner, through emit, inside
     * the epoch's transaction; 0 or -1 (err). */
    int (*route)(dp_source *s, const dp_input *in, const uint8_t id[32], int32_t *slot);
    int (*forward)(dp_source *s, const dp_input *in, int32_t slot, dp_forward_fn emit, void *ctx, dp_error *err);
} dp_source_ops;

enum { DP_ROUTE_HERE = 0, DP_ROUTE_FORWARD = 1, DP_ROUTE_IGNORE = 2 };

/* epoch_position(): the inputs went to another worker. */
enum { DP_SOURCE_LOST = 1 };

struct dp_source {
    const dp_source_ops *ops;
    uint64_t acked, ack_failures; /* counted by dp_source_ack() */
    /* Set by a source whose inputs the state must remember by key: what
     * becomes of an input (a message moved, a position kept) is done after
     * the commit, and a crash in between must find it counted. */
    int remember_inputs;
    dp_log *log; /* dp_source_options.log, set first thing by each source's open */
};

/* What a source may need besides its URI (all optional). */
typedef struct dp_source_options {
    int follow;                 /* list arrivals at every dp_source_next(), for good */
    const char *quarantine_dir; /* where rejected inputs are kept with their reasons
                                   (NULL: rejections are only logged) */
    const char *done_dir;       /* where acknowledged inputs go (NULL: they stay) */
    const char *const *skip;    /* real paths of folders never read (run's own
                                   output under a SOURCE); NULL-terminated */
    const char *state_dir;      /* where a source keeps small files of its own (an
                                   mbox's position, a mailbox's UIDVALIDITY), beside
                                   the run's state; NULL: nowhere */
    const char *worker_id;      /* this worker's name, stable across its restarts: it
                                   names its claims on a shared Maildir */
    double claim_timeout;       /* seconds a worker may stay silent before others take
                                   over its claims (Maildir); 0: the default */
    const char *password_file;  /* IMAP: a file holding the password (else the
                                   environment's DMARCPIPE_IMAP_PASSWORD) */
    const char *token_file;     /* IMAP: a file holding an OAuth2 bearer token (XOAUTH2),
                                   read again at every login, as an outside tool
                                   refreshes it */
    const struct dp_kafka_settings *kafka; /* a Kafka inbox: the configuration (-X,
                                   --kafka-config, --broker-timeout, the stop flag) */
    dp_log *log;                /* where the source says what it skipped, retried or
                                   could not do (NULL: plain on stderr) */
    dp_metrics *metrics;        /* a Kafka inbox: its consumer lag (NULL: not counted) */
} dp_source_options;

/* Opens a source from its URI:
 *   PATH, file:PATH          a file, or a folder read recursively in name order
 *   maildir:PATH             a Maildir (new/ and cur/), claimed message by message
 *   mbox:PATH                an mbox file, read on from the position reached
 *   imap://USER@HOST[:PORT]/MAILBOX, imaps://...   a mailbox, by UID
 *   s3://BUCKET/PREFIX?endpoint=URL&region=R...     the objects under a prefix of
 *                            an S3 bucket (any S3-compatible store)
 * NULL and err when it cannot be opened (an unknown SCHEME://...). */
dp_source *dp_source_open(const char *uri, const dp_source_options *opts, dp_error *err);
/* The wrappers every caller uses, never the vtable itself. */
int dp_source_next(dp_source *s, dp_input_list *out, dp_error *err);
int dp_source_open_input(const dp_input *in, dp_error *err);
int dp_source_reject(const dp_input *in, const dp_error *errors, size_t n_errors, dp_error *err);
/* Acknowledges the input with its source, and counts it there. */
int dp_source_ack(const dp_input *in);
/* Leaves the input with its source, unacknowledged (see ops.hold). */
void dp_source_hold(const dp_input *in);
/* Whether any input of `s` is committed with the epoch (ops.epoch_position). */
int dp_source_has_position(const dp_source *s);
/* ops.epoch_position; 0 and *out NULL for a source without it. */
int dp_source_epoch_position(dp_source *s, dp_input *const *inputs, size_t n, int retry, dp_kafka_offsets **out,
                             dp_error *err);
/* ops.route (DP_ROUTE_HERE for a source without it) and ops.forward. */
int dp_source_route(const dp_input *in, const uint8_t id[32], int32_t *slot);
int dp_source_forward(const dp_input *in, int32_t slot, dp_forward_fn emit, void *ctx, dp_error *err);
/* Whether the source routes its reports (ops.route). */
int dp_source_routes(const dp_source *s);
/* The source's wake descriptor (ops.wake_fd), or -1. */
int dp_source_wake_fd(dp_source *s);
/* Whether `uri` names a path (PATH or file:PATH) rather than another source. */
int dp_source_is_path(const char *uri);
void dp_source_close(dp_source *s);

/* ---- inputs (input.c) ------------------------------------------------------ */

/* A new input of `s` with copies of name and key; NULL when out of memory.
 * For sources, in their next(). */
dp_input *dp_input_new(dp_source *s, const char *name, const char *key);
/* Hands an input back to its source. */
void dp_input_free(dp_input *in);
/* Appends; 0, or -1 when out of memory (the input is then freed). */
int dp_input_list_push(dp_input_list *l, dp_input *in);
/* Frees every input of the list, and the list's array. */
void dp_input_list_free(dp_input_list *l);

#endif
