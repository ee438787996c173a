/* run_epochs — `dmarcpipe run` with a transactional sink: exactly once.
 *
 * The inputs are run in epochs.  An epoch is one engine run over the next
 * inputs of the list (it ends after --epoch-inputs inputs, --flush-interval
 * seconds, or a SIGTERM), and one transaction in the sink holding the
 * epoch's rollups, its report messages and its ledger records: the report
 * identities it counted and the inputs it took.  Only after the commit does
 * the state (LMDB, --state) learn of them, in one LMDB transaction.
 *
 * Why this is exactly once, wherever a crash falls:
 *   - before the commit: the transaction is never committed (the next
 *     producer with our transactional.id fences and aborts it); the state
 *     does not know the epoch, so its inputs are run again;
 *   - after the commit, before the state write: on restart, once the new
 *     producer is registered (so nothing of ours is still open), the ledger
 *     is read from where the state left it, read_committed, and each epoch
 *     found there is written into the state: its reports count as seen and
 *     its inputs as done, so nothing is sent twice.
 * An aborted epoch (the broker was away too long, or a fatal producer
 * error) forgets what it decided (dp_dedup_rollback) and is run again over
 * the same inputs: they are still on disk, so nothing needs to be kept in
 * memory to retry, and memory stays bounded.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "dp_buf.h"
#include "dp_clock.h"

#define LEDGER_VERSION 1
#define LEDGER_PART_BYTES (256u * 1024u) /* well under message.max.bytes */

char *dp_input_key(const char *path) {
    struct stat st;
    char real[PATH_MAX];
    if (stat(path, &st) != 0) return NULL;
    const char *p = realpath(path, real) ? real : path;
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b, "%lld:%lld.%09ld:%s", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                  (long)st.st_mtim.tv_nsec, p);
    if (b.failed) {
        dp_buf_free(&b);
        return NULL;
    }
    return b.data;
}

void dp_input_split_free(dp_input_split *s) {
    for (size_t i = 0; s->keys && i < s->n_todo; i++) free(s->keys[i]);
    free(s->keys);
    free(s->todo);
    free(s->done);
    memset(s, 0, sizeof *s);
}

int dp_input_split_make(dp_dedup *d, char **inputs, size_t n, dp_input_split *out, dp_error *err) {
    memset(out, 0, sizeof *out);
    out->todo = calloc(n ? n : 1, sizeof *out->todo);
    out->keys = calloc(n ? n : 1, sizeof *out->keys);
    out->done = calloc(n ? n : 1, sizeof *out->done);
    if (!out->todo || !out->keys || !out->done) {
        dp_input_split_free(out);
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char *key = dp_input_key(inputs[i]);
        int done = key ? dp_dedup_input_done(d, key) : 0;
        if (done < 0) {
            free(key);
            dp_input_split_free(out);
            return dp_error_set(err, DP_ERR_IO, "state: cannot read the acknowledged inputs");
        }
        if (done) {
            out->done[out->n_done++] = inputs[i];
            free(key);
            continue;
        }
        if (!key && !(key = strdup(""))) { /* vanished: it will fail, and be logged, when read */
            dp_input_split_free(out);
            return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        }
        out->todo[out->n_todo] = inputs[i];
        out->keys[out->n_todo++] = key;
    }
    return 0;
}

/* ---- recovery from the ledger ---------------------------------------------- */

typedef struct recovery {
    dp_dedup *dedup;
    uint64_t known_epoch; /* the state's last epoch before the catch-up */
    uint64_t state_epoch; /* ... and after the records applied so far */
    const char *instance;
    uint64_t epochs, reports, inputs;
    dp_error *err;
} recovery;

static int hex_id(const char *s, uint8_t out[32]) {
    if (!s || strlen(s) != 64) return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* ---- input keys in the ledger ------------------------------------------------- */

/* An input key ends with the input's path, and a path is bytes: it need not
 * be UTF-8, which a JSON string must be (jansson refuses it).  Such a key is
 * written as "hex:" and its bytes in hex.  A key as dp_input_key() makes it
 * starts with a digit (the size), so the two forms cannot be confused, and
 * a ledger written before this form existed reads the same. */
#define KEY_HEX_PREFIX "hex:"

static json_t *key_to_json(const char *key) {
    json_t *j = json_string(key);
    if (j) return j;
    size_t n = strlen(key), pre = sizeof KEY_HEX_PREFIX - 1;
    char *text = malloc(pre + 2 * n + 1);
    if (!text) return NULL;
    memcpy(text, KEY_HEX_PREFIX, pre);
    *dp_buf_raw_hex(text + pre, key, n) = '\0';
    j = json_string(text);
    free(text);
    return j;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The key a ledger string names: a copy to free, or NULL if malformed. */
static char *key_from_json(const json_t *j) {
    const char *s = json_string_value(j);
    if (!s) return NULL;
    size_t pre = sizeof KEY_HEX_PREFIX - 1;
    if (strncmp(s, KEY_HEX_PREFIX, pre) != 0) return strdup(s);
    s += pre;
    size_t n = strlen(s);
    if (n % 2) return NULL;
    char *key = malloc(n / 2 + 1);
    if (!key) return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(key);
            return NULL;
        }
        key[i] = (char)(hi << 4 | lo);
    }
    key[n / 2] = '\0';
    return key;
}

static int apply_record(void *ctx, const char *rec, size_t len, uint64_t next) {
    recovery *r = ctx;
    json_error_t jerr;
    json_t *j = json_loadb(rec, len, 0, &jerr);
    json_t *reports = j ? json_object_get(j, "reports") : NULL;
    json_t *inputs = j ? json_object_get(j, "inputs") : NULL;
    json_t *epoch = j ? json_object_get(j, "epoch") : NULL;
    const char *instance = j ? json_string_value(json_object_get(j, "instance")) : NULL;
    if (!json_is_array(reports) || !json_is_array(inputs) || !json_is_integer(epoch) || !instance) {
        fprintf(stderr, "dmarcpipe run: ledger record before offset %llu is not one of ours: skipped\n",
                (unsigned long long)next);
        json_decref(j);
        return 0;
    }
    uint64_t ep = (uint64_t)json_integer_value(epoch);
    /* parts of one epoch share its number: only older epochs are known */
    if (strcmp(instance, r->instance) != 0 || ep < r->state_epoch) {
        json_decref(j);
        return 0;
    }
    size_t n_ids = json_array_size(reports), n_in = json_array_size(inputs);
    uint8_t(*ids)[32] = calloc(n_ids ? n_ids : 1, sizeof *ids);
    char **keys = calloc(n_in ? n_in : 1, sizeof *keys);
    int rc = ids && keys ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n_ids; i++)
        if (hex_id(json_string_value(json_array_get(reports, i)), ids[i]) != 0) rc = -1;
    for (size_t i = 0; rc == 0 && i < n_in; i++)
        if (!(keys[i] = key_from_json(json_array_get(inputs, i)))) rc = -1;
    if (rc == 0) {
        dp_dedup_epoch de = {(const char *const *)keys, n_in, ep, next};
        rc = dp_dedup_apply_ledger(r->dedup, (const uint8_t(*)[32])ids, n_ids, &de, r->err);
        if (rc == 0) {
            /* an epoch may come in several parts; count it once, and only
             * if the state did not know it */
            if (ep > r->known_epoch) {
                if (ep != r->state_epoch) r->epochs++;
                r->reports += n_ids;
                r->inputs += n_in;
            }
            r->state_epoch = ep;
        }
    } else {
        dp_error_set(r->err, DP_ERR_IO, "ledger record before offset %llu is malformed", (unsigned long long)next);
    }
    free(ids);
    for (size_t i = 0; keys && i < n_in; i++) free(keys[i]);
    free(keys);
    json_decref(j);
    return rc != 0;
}

/* ---- the ledger records of an epoch ------------------------------------------ */

typedef struct ledger_writer {
    dp_sink *sink;
    const char *instance;
    uint64_t epoch;
    json_t *reports, *inputs;
    size_t bytes;
    int failed;
    dp_error *err;
} ledger_writer;

static void ledger_begin_part(ledger_writer *lw) {
    lw->reports = json_array();
    lw->inputs = json_array();
    lw->bytes = 0;
}

static void ledger_flush_part(ledger_writer *lw) {
    json_t *rec = json_pack("{s:i, s:s, s:I, s:o, s:o}", "v", LEDGER_VERSION, "instance", lw->instance, "epoch",
                            (json_int_t)lw->epoch, "reports", lw->reports, "inputs", lw->inputs);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    if (!text) {
        if (!lw->failed) dp_error_set(lw->err, DP_ERR_NOMEM, "out of memory writing the ledger");
        lw->failed = 1;
    } else if (!lw->failed && lw->sink->ops->ledger_write(lw->sink, text, strlen(text), lw->err) != 0) {
        lw->failed = 1;
    }
    free(text);
    json_decref(rec);
    lw->reports = lw->inputs = NULL;
}

static void ledger_add(ledger_writer *lw, json_t *arr_of_part, json_t *s) {
    size_t n = json_string_length(s);
    if (json_array_append_new(arr_of_part, s) != 0) {
        /* a record that leaves something out could let a crash count it again */
        if (!lw->failed) dp_error_set(lw->err, DP_ERR_NOMEM, "out of memory writing the ledger");
        lw->failed = 1;
    }
    lw->bytes += n + 4;
    if (lw->bytes >= LEDGER_PART_BYTES) { /* parts of an epoch commit together */
        ledger_flush_part(lw);
        ledger_begin_part(lw);
    }
}

static void add_id(void *ctx, const uint8_t id[32]) {
    ledger_writer *lw = ctx;
    char hex[65];
    *dp_buf_raw_hex(hex, id, 32) = '\0';
    ledger_add(lw, lw->reports, json_string(hex));
}

/* ---- epochs ----------------------------------------------------------------- */

typedef struct admit_ctx {
    size_t max_inputs;   /* this epoch's cap (exact on a retry) */
    double started, max_seconds;
    int retry;           /* a retry takes exactly max_inputs */
    const volatile sig_atomic_t *stop;
} admit_ctx;

static int admit(void *ctx, size_t taken) {
    const admit_ctx *a = ctx;
    if (taken >= a->max_inputs) return 0;
    if (a->retry) return 1; /* the same inputs as the attempt that failed */
    if (taken > 0 && ((a->stop && *a->stop) || (a->max_seconds > 0 && dp_clock_seconds() - a->started >= a->max_seconds)))
        return 0;
    return 1;
}

int dp_epochs_recover(const dp_engine_config *base, const dp_epoch_options *o, dp_epoch_stats *out, dp_error *err) {
    memset(out, 0, sizeof *out);
    dp_dedup *dedup = base->dedup;
    /* epochs that committed after the state was last written (the
     * producer is registered by now, so nothing of ours is still open in
     * the broker) */
    uint64_t state_epoch, ledger_next;
    if (dp_dedup_meta(dedup, &state_epoch, &ledger_next) != 0)
        return dp_error_set(err, DP_ERR_IO, "state: cannot read the epoch and ledger position");
    recovery rec = {dedup, state_epoch, state_epoch, o->instance, 0, 0, 0, err};
    int rc = o->sink->ops->ledger_read(o->sink, ledger_next, apply_record, &rec, err);
    if (rc == DP_SINK_STOPPED) {
        out->stopped = 1;
        return 0;
    }
    if (rc != 0) return -1;
    if (rec.epochs)
        fprintf(stderr, "dmarcpipe run: recovered %llu committed epoch(s) from the ledger (%llu reports, %llu inputs)\n",
                (unsigned long long)rec.epochs, (unsigned long long)rec.reports, (unsigned long long)rec.inputs);
    out->recovered_epochs = rec.epochs;
    return 0;
}

int dp_run_epochs(const dp_engine_config *base, const dp_epoch_options *o, char **inputs, size_t n_inputs,
                  dp_epoch_stats *out, dp_error *err) {
    dp_epoch_stats rec;
    if (dp_epochs_recover(base, o, &rec, err) != 0) return -1;
    if (rec.stopped) {
        *out = rec;
        return 0;
    }
    int rc = dp_epochs_run(base, o, inputs, n_inputs, out, err);
    out->recovered_epochs = rec.recovered_epochs;
    return rc;
}

/* Tells o->acked of n inputs. */
static void ack(const dp_epoch_options *o, char **inputs, size_t n) {
    if (o->acked && n) o->acked(o->ack_ctx, inputs, n);
}

int dp_epochs_run(const dp_engine_config *base, const dp_epoch_options *o, char **inputs, size_t n_inputs,
                  dp_epoch_stats *out, dp_error *err) {
    double t0 = dp_clock_seconds();
    memset(out, 0, sizeof *out);
    dp_sink *snk = o->sink;
    dp_dedup *dedup = base->dedup;
    uint64_t state_epoch, ledger_next;
    if (dp_dedup_meta(dedup, &state_epoch, &ledger_next) != 0)
        return dp_error_set(err, DP_ERR_IO, "state: cannot read the epoch and ledger position");
    int rc = 0;

    /* the inputs no committed epoch took; those it did are acknowledged
     * again (a crash may have come before they were) */
    dp_input_split in;
    if (dp_input_split_make(dedup, inputs, n_inputs, &in, err) != 0) return -1;
    char **todo = in.todo, **keys = in.keys;
    size_t n_todo = in.n_todo;
    out->inputs_done_before = in.n_done;
    if (in.n_done)
        fprintf(stderr, "dmarcpipe run: %zu input(s) already committed by an earlier run: skipped\n", in.n_done);
    ack(o, in.done, in.n_done);

    /* epochs */
    size_t at = 0;
    while (rc == 0 && at < n_todo && !(o->stop && *o->stop)) {
        uint64_t epoch = state_epoch + 1;
        admit_ctx ac = {o->epoch_inputs ? o->epoch_inputs : SIZE_MAX, 0, o->epoch_seconds, 0, o->stop};
        long backoff_ms = 1000;
        for (;;) {
            int b = snk->ops->epoch_begin(snk, err);
            if (b == DP_SINK_STOPPED) goto stopped;
            if (b != 0) {
                rc = -1;
                break;
            }
            dp_engine_config cfg = *base;
            cfg.admit = admit;
            cfg.admit_ctx = &ac;
            ac.started = dp_clock_seconds();
            dp_engine_stats st;
            if (dp_engine_run(&cfg, (const char *const *)todo + at, n_todo - at, &st, err) != 0) {
                snk->ops->epoch_abort(snk);
                dp_dedup_rollback(dedup);
                rc = -1;
                break;
            }
            size_t taken = (size_t)st.inputs;
            ledger_writer lw = {snk, o->instance, epoch, NULL, NULL, 0, 0, err};
            ledger_begin_part(&lw);
            dp_dedup_pending(dedup, add_id, &lw);
            for (size_t i = 0; i < taken; i++) ledger_add(&lw, lw.inputs, key_to_json(keys[at + i]));
            ledger_flush_part(&lw);
            uint64_t next = 0;
            double tc = dp_clock_seconds();
            int c = lw.failed ? -1 : snk->ops->epoch_commit(snk, &next, err);
            if (c == 0) {
                out->sink_seconds += st.final_flush_seconds + (dp_clock_seconds() - tc);
                dp_dedup_epoch de = {(const char *const *)keys + at, taken, epoch, next};
                if (dp_dedup_persist(dedup, &de, err) != 0) {
                    /* committed, but not recorded: the next start reads it
                     * back from the ledger; stop rather than guess */
                    rc = -1;
                    break;
                }
                dp_engine_stats_add(&out->engine, &st);
                out->epochs++;
                state_epoch = epoch;
                ack(o, todo + at, taken);
                at += taken;
                break;
            }
            if (lw.failed) snk->ops->epoch_abort(snk);
            dp_dedup_rollback(dedup);
            if (c == DP_SINK_STOPPED) goto stopped;
            if (c != DP_SINK_RETRY) {
                rc = -1;
                break;
            }
            out->epochs_retried++;
            fprintf(stderr, "dmarcpipe run: epoch %llu (%zu inputs) aborted: %s; running it again in %.1f s\n",
                    (unsigned long long)epoch, taken, err->msg, backoff_ms / 1000.0);
            ac.retry = 1;
            ac.max_inputs = taken;
            for (long w = 0; w < backoff_ms; w += 100) {
                if (o->stop && *o->stop) goto stopped;
                struct timespec ts = {0, 100000000L};
                nanosleep(&ts, NULL);
            }
            if (backoff_ms < 30000) backoff_ms *= 2;
        }
    }
    goto done;
stopped:
    out->stopped = 1;
    fprintf(stderr, "dmarcpipe run: stopping: the open epoch was aborted; its inputs are run again next time\n");
done:
    if (o->stop && *o->stop && !out->stopped && at < n_todo) {
        out->stopped = 1;
        fprintf(stderr, "dmarcpipe run: stopping after epoch %llu: %zu input(s) left for the next run\n",
                (unsigned long long)state_epoch, n_todo - at);
    }
    dp_input_split_free(&in);
    out->engine.seconds = dp_clock_seconds() - t0;
    return rc;
}
