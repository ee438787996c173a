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

typedef struct dp_source dp_source;

/* One input: a file, and later a mail message or an object. */
typedef struct dp_input {
    dp_source *source; /* the source it came from, which owns it */
    char *name;        /* names it in logs, errors and the reports feed: a path */
    char *key;         /* names it in the state, with what tells its versions apart
                          (a file: size, mtime and real path); "" when unknown */
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
} dp_source_ops;

struct dp_source {
    const dp_source_ops *ops;
    uint64_t acked, ack_failures; /* counted by dp_source_ack() */
    /* Set by a source whose inputs the state must remember by key: what
     * becomes of an input (a message moved, a position kept) is done after
     * the commit, and a crash in between must find it counted. */
    int remember_inputs;
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
} dp_source_options;

/* Opens a source from its URI:
 *   PATH, file:PATH          a file, or a folder read recursively in name order
 *   maildir:PATH             a Maildir (new/ and cur/), claimed message by message
 *   mbox:PATH                an mbox file, read on from the position reached
 *   imap://USER@HOST[:PORT]/MAILBOX, imaps://...   a mailbox, by UID
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
