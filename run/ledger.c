/* ledger — what each committed epoch took, kept in the transactional sink.
 *
 * An epoch's ledger records go into the sink inside the epoch's own
 * transaction, so they commit exactly when its rollups do.  The state is
 * written after the commit; a crash in between leaves epochs the ledger
 * knows and the state does not.  dp_ledger_recover() reads the ledger from
 * where the state left it (the sink reads it back read_committed, after
 * its producer has fenced anything of ours still open) and writes those
 * epochs into the state: their reports count as seen and their inputs as
 * done, so a restart neither loses nor repeats them.
 *
 * The record format is described in run.h.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_buf.h"
#include "run.h"

#define KEY_HEX_PREFIX "hex:"

/* ---- input keys --------------------------------------------------------------- */

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
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
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

static int id_from_hex(const char *s, uint8_t out[32]) {
    if (!s || strlen(s) != 64) return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ---- writing -------------------------------------------------------------------- */

static void begin_part(dp_ledger_writer *w) {
    w->reports = json_array();
    w->inputs = json_array();
    w->bytes = 0;
    if ((!w->reports || !w->inputs) && !w->failed) {
        dp_error_set(w->err, DP_ERR_NOMEM, "out of memory writing the ledger");
        w->failed = 1;
    }
}

static void flush_part(dp_ledger_writer *w) {
    json_t *rec = w->reports && w->inputs
                      ? json_pack("{s:i, s:s, s:I, s:O, s:O}", "v", DP_LEDGER_VERSION, "instance", w->instance,
                                  "epoch", (json_int_t)w->epoch, "reports", w->reports, "inputs", w->inputs)
                      : NULL;
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    if (!text) {
        if (!w->failed) dp_error_set(w->err, DP_ERR_NOMEM, "out of memory writing the ledger");
        w->failed = 1;
    } else if (!w->failed && w->emit(w->emit_ctx, text, strlen(text), w->err) != 0) {
        w->failed = 1;
    }
    free(text);
    json_decref(rec);
    json_decref(w->reports);
    json_decref(w->inputs);
    w->reports = w->inputs = NULL;
}

static void add(dp_ledger_writer *w, json_t *array, json_t *s) {
    size_t n = json_string_length(s);
    if (!s || json_array_append_new(array, s) != 0) {
        if (!w->failed) dp_error_set(w->err, DP_ERR_NOMEM, "out of memory writing the ledger");
        w->failed = 1;
    }
    w->bytes += n + 4;
    if (w->bytes >= DP_LEDGER_PART_BYTES) { /* parts of an epoch commit together */
        flush_part(w);
        begin_part(w);
    }
}

void dp_ledger_begin(dp_ledger_writer *w, const char *instance, uint64_t epoch, dp_ledger_emit_fn emit, void *ctx,
                     dp_error *err) {
    memset(w, 0, sizeof *w);
    w->instance = instance;
    w->epoch = epoch;
    w->emit = emit;
    w->emit_ctx = ctx;
    w->err = err;
    begin_part(w);
}

void dp_ledger_add_report(dp_ledger_writer *w, const uint8_t id[32]) {
    char hex[65];
    *dp_buf_raw_hex(hex, id, 32) = '\0';
    add(w, w->reports, json_string(hex));
}

void dp_ledger_add_input(dp_ledger_writer *w, const char *key) { add(w, w->inputs, key_to_json(key)); }

int dp_ledger_end(dp_ledger_writer *w) {
    flush_part(w);
    return w->failed ? -1 : 0;
}

/* ---- reading -------------------------------------------------------------------- */

void dp_ledger_record_free(dp_ledger_record *r) {
    free(r->instance);
    free(r->ids);
    for (size_t i = 0; r->keys && i < r->n_keys; i++) free(r->keys[i]);
    free(r->keys);
    memset(r, 0, sizeof *r);
}

int dp_ledger_decode(const char *rec, size_t len, dp_ledger_record *out, dp_error *err) {
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *j = json_loadb(rec, len, 0, &jerr);
    json_t *reports = j ? json_object_get(j, "reports") : NULL;
    json_t *inputs = j ? json_object_get(j, "inputs") : NULL;
    json_t *epoch = j ? json_object_get(j, "epoch") : NULL;
    const char *instance = j ? json_string_value(json_object_get(j, "instance")) : NULL;
    if (!json_is_array(reports) || !json_is_array(inputs) || !json_is_integer(epoch) || !instance) {
        json_decref(j);
        return 1;
    }
    out->epoch = (uint64_t)json_integer_value(epoch);
    out->n_ids = json_array_size(reports);
    out->n_keys = json_array_size(inputs);
    out->instance = strdup(instance);
    out->ids = calloc(out->n_ids ? out->n_ids : 1, sizeof *out->ids);
    out->keys = calloc(out->n_keys ? out->n_keys : 1, sizeof *out->keys);
    int rc = out->instance && out->ids && out->keys ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < out->n_ids; i++)
        if (id_from_hex(json_string_value(json_array_get(reports, i)), out->ids[i]) != 0) rc = -1;
    for (size_t i = 0; rc == 0 && i < out->n_keys; i++)
        if (!(out->keys[i] = key_from_json(json_array_get(inputs, i)))) rc = -1;
    json_decref(j);
    if (rc != 0) {
        dp_ledger_record_free(out);
        return dp_error_set(err, DP_ERR_IO, "ledger record is malformed");
    }
    return 0;
}

/* ---- recovery --------------------------------------------------------------------- */

typedef struct recovery {
    dp_dedup *state;
    uint64_t known_epoch; /* the state's last epoch before the catch-up */
    uint64_t state_epoch; /* ... and after the records applied so far */
    const char *instance;
    uint64_t epochs, reports, inputs;
    uint64_t others; /* reports other workers counted (a shared ledger) */
    dp_error *err;
    dp_log *log;
} recovery;

static int apply_record(void *ctx, const char *text, size_t len, uint64_t next) {
    recovery *r = ctx;
    dp_ledger_record rec;
    int d = dp_ledger_decode(text, len, &rec, r->err);
    if (d == 1) {
        dp_log_warn(r->log, "ledger", DP_LOG_FIELDS(DP_LOG_U64("offset", next)),
                    "dmarcpipe run: ledger record before offset %llu is not one of ours: skipped",
                    (unsigned long long)next);
        return 0;
    }
    if (d != 0) {
        dp_error_set(r->err, DP_ERR_IO, "ledger record before offset %llu is malformed", (unsigned long long)next);
        return 1;
    }
    /* parts of one epoch share its number: only older epochs are known */
    int rc = 0;
    if (strcmp(rec.instance, r->instance) == 0 && rec.epoch >= r->state_epoch) {
        dp_dedup_epoch de = {(const char *const *)rec.keys, rec.n_keys, rec.epoch, next, NULL, NULL, 0};
        rc = dp_dedup_apply_ledger(r->state, (const uint8_t(*)[32])rec.ids, rec.n_ids, &de, r->err);
        if (rc == 0) {
            /* an epoch may come in several parts; count it once, and only
             * if the state did not know it */
            if (rec.epoch > r->known_epoch) {
                if (rec.epoch != r->state_epoch) r->epochs++;
                r->reports += rec.n_ids;
                r->inputs += rec.n_keys;
            }
            r->state_epoch = rec.epoch;
        }
    } else if (strcmp(rec.instance, r->instance) != 0 && rec.n_ids) {
        /* a ledger shared by workers of one inbox: what the others counted
         * is seen here too, so a copy of it in another partition is a
         * duplicate */
        dp_dedup_epoch de = {NULL, 0, 0, next, NULL, NULL, 0};
        rc = dp_dedup_apply_ledger(r->state, (const uint8_t(*)[32])rec.ids, rec.n_ids, &de, r->err);
        if (rc == 0) r->others += rec.n_ids;
    }
    dp_ledger_record_free(&rec);
    return rc != 0;
}

int dp_ledger_recover(dp_sink *sink, dp_dedup *state, const char *instance, dp_log *log, uint64_t *epochs,
                      dp_error *err) {
    *epochs = 0;
    uint64_t state_epoch, ledger_next;
    if (dp_dedup_meta(state, &state_epoch, &ledger_next) != 0)
        return dp_error_set(err, DP_ERR_IO, "state: cannot read the epoch and ledger position");
    recovery rec = {state, state_epoch, state_epoch, instance, 0, 0, 0, 0, err, log};
    int rc = dp_sink_ledger_read(sink, ledger_next, apply_record, &rec, err);
    if (rc != 0) return rc == DP_SINK_STOPPED ? DP_SINK_STOPPED : -1;
    if (rec.epochs)
        dp_log_info(log, "ledger",
                    DP_LOG_FIELDS(DP_LOG_U64("epochs", rec.epochs), DP_LOG_U64("reports", rec.reports),
                                  DP_LOG_U64("inputs", rec.inputs)),
                    "dmarcpipe run: recovered %llu committed epoch(s) from the ledger (%llu reports, %llu inputs)",
                    (unsigned long long)rec.epochs, (unsigned long long)rec.reports, (unsigned long long)rec.inputs);
    *epochs = rec.epochs;
    return 0;
}
