/* s3_source — the objects under a prefix of an S3 bucket, each an input.
 *
 * `s3://BUCKET/PREFIX?endpoint=URL&region=R[&path_style=1][&after=...]`
 * (s3_uri.c) on any S3-compatible store; the protocol is s3_client.c's.
 *
 * Listing.  ListObjectsV2 in pages of at most 1,000 keys, and next() hands
 * out at most one page of inputs per call: a bucket of millions of keys is
 * never held in memory.  A batch run lists the whole prefix once, page
 * after page (the run calls next() until a call adds nothing), from the
 * start: what a batch run finds is everything there is.  Keys ending in
 * '/' (folder markers) and empty objects are not inputs, said once a run.
 *
 * Following.  A follower lists from StartAfter = W, the watermark: the
 * greatest key whose object was committed, kept in
 * STATE/sources/s3-HASH.json and moved on by every acknowledgement, so a
 * poll lists what is new, not the bucket from its start.  A key that
 * sorts before W and arrives after W passed it (a writer that names
 * objects out of order), or an object left behind (its read failed, and
 * later keys were committed), is found by a full relisting, which a
 * follower does every 60th poll, or every relist=SECONDS: a second
 * cursor R walks from the start up to W, moved on by acknowledgements as
 * W is, a page per poll; what the state already counted is only
 * acknowledged again by the run, never counted twice.  A follower's
 * failed listing (the store away, the credentials refused) is said once
 * and tried again after 5 s, then twice as long each time, up to 5
 * minutes; a batch run ends with the error.
 *
 * Keys and names.  An input is named "s3://BUCKET/KEY"; its key in the
 * state is "SIZE:ETAG:s3://BUCKET/KEY", so an object rewritten under the
 * same name is a new input, and the one counted before is not counted
 * again (remember_inputs: the acknowledgement comes after the commit).
 *
 * Reading.  open() returns the object streamed from its GET in constant
 * memory, or, when it is raw mail, in an unlinked temporary file
 * (s3_stream.c).  Several workers open at once: the client is
 * thread-safe.
 *
 * After the commit (ack), per after=: keep (the default: nothing but the
 * watermark moves), delete, or move:PREFIX (a server-side copy to PREFIX
 * plus the key's path below the source's prefix, then a DELETE).  A
 * rejected object is copied into the local quarantine with its reasons
 * (GET again into a temporary file), and left in the bucket, or moved
 * under quarantine=PREFIX when given.  Which objects were rejected is
 * kept in memory until their acknowledgement: after a crash between the
 * commit and the acknowledgement, a rejected one goes the after= way, its
 * copy and reasons being in the local quarantine already.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_clock.h"
#include "ingest.h"
#include "s3_client.h"
#include "s3_state.h"
#include "s3_uri.h"
#include "source_internal.h"

enum {
    PAGE = 1000,         /* keys per ListObjectsV2 page, and inputs per next() */
    RELIST_POLLS = 60,   /* a follower lists from the start every this many polls */
    BACKOFF_FIRST = 5,   /* seconds before the first retry of a follower's failed listing */
    BACKOFF_MAX = 300,
    HOLD_RETRY = 60,     /* seconds before a held object is listed again by a follower */
    HELD_MAX = 10000,    /* held objects remembered; past it, they wait for a relisting */
};
#define SAVE_EVERY 1.0 /* seconds between two writes of a moving watermark */

/* An input, and the object's key in the bucket. */
typedef struct s3_input {
    dp_input base;
    char *object;
} s3_input;

typedef struct held {
    char *key;
    double until;
} held;

typedef struct s3_source {
    dp_source base;
    dp_s3_uri uri;
    dp_s3_client *client;
    char *quarantine_dir, *state_path;
    int follow;
    /* the run's thread only */
    int listed_all;      /* batch: the last page was listed */
    char *token;         /* batch: the next page's continuation token */
    char *watermark;     /* W: every key up to it that is to be counted was */
    char *relist;        /* R while a full relisting is under way ("" at its start), else NULL */
    unsigned long polls;
    double relist_at;
    uint64_t skipped;
    int said_skipped;
    int outage;
    double retry_at, backoff;
    held *held;
    size_t n_held, cap_held;
    int dirty;
    double saved_at;
    /* shared with the workers, under lock */
    pthread_mutex_t lock;
    char **rejected; /* keys (state keys) rejected and not yet acknowledged */
    size_t n_rejected, cap_rejected;
} s3_source;

/* ---- the watermark ----------------------------------------------------------------------- */

static void save(s3_source *s, int now) {
    if (!s->state_path || !s->dirty) return;
    if (!now && dp_clock_seconds() - s->saved_at < SAVE_EVERY) return;
    if (dp_s3_state_save(s->state_path, s->uri.identity, s->uri.display, s->base.log, s->watermark) == 0) s->dirty = 0;
    s->saved_at = dp_clock_seconds();
}

/* *mark = key when key sorts after it (S3 lists in UTF-8 byte order, as strcmp). */
static void raise_mark(char **mark, const char *key, int *moved) {
    if (*mark && strcmp(key, *mark) <= 0) return;
    char *k = strdup(key);
    if (!k) return; /* out of memory: the mark stays behind, which costs a longer listing */
    free(*mark);
    *mark = k;
    *moved = 1;
}

/* ---- held objects ---------------------------------------------------------------------- */

static int is_held(s3_source *s, const char *key) {
    double now = dp_clock_seconds();
    for (size_t i = 0; i < s->n_held; i++) {
        if (now >= s->held[i].until) {
            free(s->held[i].key);
            s->held[i--] = s->held[--s->n_held];
            continue;
        }
        if (strcmp(s->held[i].key, key) == 0) return 1;
    }
    return 0;
}

/* ---- listing ------------------------------------------------------------------------------ */

static void release_input(dp_source *src, dp_input *in) {
    (void)src;
    free(((s3_input *)in)->object);
    free(in->name);
    free(in->key);
    free(in);
}

static int push(s3_source *s, dp_input_list *out, const dp_s3_object *o) {
    s3_input *in = calloc(1, sizeof *in);
    dp_buf name = DP_BUF_INIT, key = DP_BUF_INIT;
    dp_buf_printf(&name, "s3://%s/%s", s->uri.bucket, o->key);
    dp_buf_printf(&key, "%llu:%s:%s", (unsigned long long)o->size, o->etag, name.data ? name.data : "");
    if (!in || name.failed || key.failed || !(in->object = strdup(o->key))) {
        free(in);
        dp_buf_free(&name);
        dp_buf_free(&key);
        return -1;
    }
    in->base.source = &s->base;
    in->base.name = name.data;
    in->base.key = key.data;
    return dp_input_list_push(out, &in->base);
}

/* Whether a listed object is an input: not a folder marker, not empty. */
static int wanted(s3_source *s, const dp_s3_object *o) {
    size_t n = strlen(o->key);
    if (n == 0 || o->key[n - 1] == '/' || o->size == 0) {
        s->skipped++;
        return 0;
    }
    return 1;
}

/* Inputs from the listing after `after` (NULL: from the start), up to
 * `upto` (NULL: the end), at most `room` of them, into out.  *end set when
 * the listing ran out (or passed upto).  0, or -1 and err. */
static int list_from(s3_source *s, const char *after, const char *upto, size_t room, dp_input_list *out, int *end,
                     dp_error *err) {
    char *start = after ? strdup(after) : NULL;
    size_t pushed = 0;
    int rc = 0;
    *end = 0;
    while (rc == 0 && !*end && pushed < room) {
        dp_s3_list page;
        if (dp_s3_client_list(s->client, s->uri.bucket, s->uri.prefix, start, NULL, PAGE, &page, err) != 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; rc == 0 && i < page.n && pushed < room; i++) {
            const dp_s3_object *o = &page.v[i];
            if (upto && strcmp(o->key, upto) > 0) {
                *end = 1;
                break;
            }
            free(start);
            start = strdup(o->key);
            if (!wanted(s, o) || (s->n_held && is_held(s, o->key))) continue;
            if (push(s, out, o) != 0) rc = dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", s->uri.display);
            else pushed++;
        }
        if (!page.truncated || page.n == 0) *end = 1;
        dp_s3_list_clear(&page);
        if (!start && !*end) *end = 1;
    }
    free(start);
    return rc;
}

/* A batch run: the next page of the whole prefix, by continuation token. */
static int batch_page(s3_source *s, dp_input_list *out, dp_error *err) {
    size_t before = out->n;
    while (!s->listed_all && out->n == before) {
        dp_s3_list page;
        if (dp_s3_client_list(s->client, s->uri.bucket, s->uri.prefix, NULL, s->token, PAGE, &page, err) != 0)
            return -1;
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < page.n; i++)
            if (wanted(s, &page.v[i]) && push(s, out, &page.v[i]) != 0)
                rc = dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", s->uri.display);
        free(s->token);
        s->token = page.truncated && page.next_token ? page.next_token : NULL;
        if (s->token) page.next_token = NULL;
        if (!s->token) s->listed_all = 1;
        dp_s3_list_clear(&page);
        if (rc != 0) return rc;
    }
    return 0;
}

/* A follower's poll: a page of a full relisting while one is under way,
 * then what lies after the watermark, PAGE inputs at most. */
static int follow_poll(s3_source *s, dp_input_list *out, dp_error *err) {
    s->polls++;
    double now = dp_clock_seconds();
    int due = s->uri.relist > 0 ? now >= s->relist_at : s->polls % RELIST_POLLS == 0;
    if (!s->relist && due && s->watermark) {
        s->relist = strdup("");
        s->relist_at = now + s->uri.relist;
    }
    size_t before = out->n;
    int end = 0;
    if (s->relist) {
        if (list_from(s, *s->relist ? s->relist : NULL, s->watermark, PAGE, out, &end, err) != 0) return -1;
        if (end) {
            free(s->relist);
            s->relist = NULL;
        }
    }
    size_t room = PAGE - (out->n - before);
    if (room && list_from(s, s->watermark, NULL, room, out, &end, err) != 0) return -1;
    return 0;
}

static int s3_next(dp_source *src, dp_input_list *out, dp_error *err) {
    s3_source *s = (s3_source *)src;
    save(s, 0);
    if (!s->follow && s->listed_all) return 0;
    if (s->follow && s->outage && dp_clock_seconds() < s->retry_at) return 0;
    size_t before = out->n;
    int rc = s->follow ? follow_poll(s, out, err) : batch_page(s, out, err);
    if (s->skipped && !s->said_skipped) {
        s->said_skipped = 1;
        dp_log_info(s->base.log, "s3", DP_LOG_FIELDS(DP_LOG_STR("source", s->uri.display), DP_LOG_U64("skipped", s->skipped)),
                    "dmarcpipe run: %s: %llu folder marker(s) or empty object(s) skipped (said once)",
                    s->uri.display, (unsigned long long)s->skipped);
    }
    if (rc == 0) {
        if (s->outage)
            dp_log_info(s->base.log, "s3", DP_LOG_FIELDS(DP_LOG_STR("source", s->uri.display)),
                        "dmarcpipe run: %s: the store answers again", s->uri.display);
        s->outage = 0;
        s->backoff = BACKOFF_FIRST;
        return 0;
    }
    while (out->n > before)
        dp_input_free(out->v[--out->n]);
    if (!s->follow || err->kind == DP_ERR_NOMEM) return -1;
    if (!s->outage)
        dp_log_warn(s->base.log, "s3",
                    DP_LOG_FIELDS(DP_LOG_STR("source", s->uri.display), DP_LOG_STR("error", err->msg),
                                  DP_LOG_F64("retry_in_s", s->backoff)),
                    "dmarcpipe run: %s: cannot list: %s; trying again in %.0f s, then less and less often "
                    "(up to every %d s)",
                    s->uri.display, err->msg, s->backoff, BACKOFF_MAX);
    s->outage = 1;
    s->retry_at = dp_clock_seconds() + s->backoff;
    s->backoff = s->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : s->backoff * 2;
    return 0;
}

/* ---- reading and rejecting --------------------------------------------------------------- */

static int s3_open(dp_source *src, const dp_input *in, dp_error *err) {
    s3_source *s = (s3_source *)src;
    int fd = dp_s3_client_open_object(s->client, s->uri.bucket, ((const s3_input *)in)->object, err);
    if (fd < 0) dp_error_set_where(err, in->name);
    return fd;
}

static int s3_reject(dp_source *src, const dp_input *in, const dp_error *errors, size_t n_errors, dp_error *err) {
    s3_source *s = (s3_source *)src;
    if (s->quarantine_dir) {
        dp_error ferr;
        int fd = dp_s3_client_spool_object(s->client, s->uri.bucket, ((const s3_input *)in)->object, &ferr);
        if (dp_source_quarantine(s->quarantine_dir, in, fd, &ferr, "no longer in the bucket: not copied", errors,
                                 n_errors, err) != 0)
            return -1;
    }
    if (!s->uri.quarantine) return 0;
    pthread_mutex_lock(&s->lock);
    char *k = strdup(in->key);
    void *v = k ? dp_buf_grow_array(s->rejected, &s->cap_rejected, s->n_rejected + 1, sizeof *s->rejected) : NULL;
    if (v) {
        s->rejected = v;
        s->rejected[s->n_rejected++] = k;
    } else {
        free(k);
    }
    pthread_mutex_unlock(&s->lock);
    return v ? 0 : dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", s->uri.display);
}

/* ---- acknowledging ------------------------------------------------------------------------- */

/* Whether the input was rejected (and forgets it). */
static int take_rejected(s3_source *s, const dp_input *in) {
    int found = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_rejected && !found; i++)
        if (strcmp(s->rejected[i], in->key) == 0) {
            free(s->rejected[i]);
            s->rejected[i] = s->rejected[--s->n_rejected];
            found = 1;
        }
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* Copies the object under `to` (its path below the source's prefix kept), then deletes it. */
static int move_object(s3_source *s, const char *object, const char *to, dp_error *err) {
    dp_buf dst = DP_BUF_INIT;
    dp_buf_printf(&dst, "%s%s", to, object + strlen(s->uri.prefix));
    if (dst.failed) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    int rc = dp_s3_client_copy(s->client, s->uri.bucket, object, dst.data, err);
    dp_buf_free(&dst);
    if (rc != DP_S3_OK) return rc;
    return dp_s3_client_delete(s->client, s->uri.bucket, object, err);
}

static int s3_ack(dp_source *src, const dp_input *in) {
    s3_source *s = (s3_source *)src;
    const char *object = ((const s3_input *)in)->object;
    dp_error err;
    dp_error_clear(&err);
    int rejected = s->uri.quarantine && take_rejected(s, in), rc = DP_S3_OK;
    if (rejected) rc = move_object(s, object, s->uri.quarantine, &err);
    else if (s->uri.after == DP_S3_DELETE) rc = dp_s3_client_delete(s->client, s->uri.bucket, object, &err);
    else if (s->uri.after == DP_S3_MOVE) rc = move_object(s, object, s->uri.move_to, &err);
    if (rc == DP_S3_FAILED) {
        char a[DP_ERROR_TEXT_MAX];
        dp_log_warn(s->base.log, "s3", DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("error", err.msg)),
                    "dmarcpipe run: %s: counted, but cannot be %s: %s", in->name,
                    rejected ? "moved to quarantine" : s->uri.after == DP_S3_DELETE ? "deleted" : "moved",
                    dp_error_text(err.msg, a));
    }
    /* a failed move or delete is tried again when a relisting finds it (the state knows it is counted) */
    int moved = 0;
    if (s->relist && s->watermark && strcmp(object, s->watermark) <= 0) raise_mark(&s->relist, object, &moved);
    else raise_mark(&s->watermark, object, &s->dirty);
    save(s, 0);
    return rc == DP_S3_FAILED ? -1 : rc == DP_S3_GONE ? 1 : 0;
}

static void s3_hold(dp_source *src, const dp_input *in) {
    s3_source *s = (s3_source *)src;
    if (!s->follow || s->n_held >= HELD_MAX) return;
    char *k = strdup(((const s3_input *)in)->object);
    void *v = k ? dp_buf_grow_array(s->held, &s->cap_held, s->n_held + 1, sizeof *s->held) : NULL;
    if (!v) {
        free(k);
        return;
    }
    s->held = v;
    s->held[s->n_held++] = (held){k, dp_clock_seconds() + HOLD_RETRY};
}

/* ---- the source ------------------------------------------------------------------------------ */

static void s3_destroy(dp_source *src) {
    s3_source *s = (s3_source *)src;
    save(s, 1);
    dp_s3_client_free(s->client);
    dp_s3_uri_free(&s->uri);
    free(s->quarantine_dir);
    free(s->state_path);
    free(s->token);
    free(s->watermark);
    free(s->relist);
    for (size_t i = 0; i < s->n_held; i++)
        free(s->held[i].key);
    free(s->held);
    for (size_t i = 0; i < s->n_rejected; i++)
        free(s->rejected[i]);
    free(s->rejected);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const dp_source_ops S3_OPS = {
    .name = "s3",
    .next = s3_next,
    .open = s3_open,
    .reject = s3_reject,
    .ack = s3_ack,
    .hold = s3_hold,
    .release = release_input,
    .destroy = s3_destroy,
};

dp_source *dp_s3_source_open(const char *uri, const dp_source_options *opts, dp_error *err) {
    s3_source *s = calloc(1, sizeof *s);
    if (!s) {
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->base.ops = &S3_OPS;
    s->base.log = opts ? opts->log : NULL;
    s->base.remember_inputs = 1; /* deleted or moved after the commit: a crash between must find it counted */
    s->follow = opts->follow;
    s->backoff = BACKOFF_FIRST;
    int rc = dp_s3_uri_parse(uri, &s->uri, err);
    if (rc == 0 && opts->quarantine_dir && !(s->quarantine_dir = strdup(opts->quarantine_dir)))
        rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    if (rc == 0 && opts->state_dir && !(s->state_path = dp_source_state_path(opts->state_dir, "s3", s->uri.identity, err)))
        rc = -1;
    if (rc == 0) {
        dp_s3_config cfg = {s->uri.endpoint, s->uri.region, s->uri.path_style, s->uri.retries, s->uri.cafile,
                            NULL, NULL, 0, 0, s->base.log};
        if (!(s->client = dp_s3_client_new(&cfg, err))) {
            char msg[DP_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            dp_error_set(err, err->kind, "%s: %s", s->uri.display, msg);
            rc = -1;
        }
    }
    if (rc == 0 && s->state_path) s->watermark = dp_s3_state_load(s->state_path, s->uri.identity, s->uri.display, s->base.log);
    if (rc == 0) s->relist_at = dp_clock_seconds() + s->uri.relist;
    if (rc != 0) {
        s3_destroy(&s->base);
        return NULL;
    }
    return &s->base;
}
