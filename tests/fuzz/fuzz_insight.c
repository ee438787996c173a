/* fuzz_insight — libFuzzer target for `dmarcpipe report`'s library.
 *
 * The input is feed text, one line per '\n', whose first byte picks the
 * options (the period named or found in the data, a domain filter, other
 * thresholds).  It is built into a report (insight/) and written in every
 * format, and the contract is checked, aborting when it is broken:
 *   - the JSON is one object that jansson loads, whose totals are the sum
 *     of its domains' figures, and whose classes add up to the messages;
 *   - the HTML holds no script element, whatever the text in the feed;
 *   - the table holds no control byte but newlines (names from the feed
 *     cannot drive a terminal);
 *   - a build that fails says why, as a usage error or out of memory.
 *
 * Built as fuzz_insight (libFuzzer) and fuzz_insight_replay (replay_main.c),
 * as fuzz_ingest is; see CMakeLists.txt here.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dp_buf.h"
#include "insight_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_insight: contract broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

typedef struct text {
    const char *p;
    size_t n;
} text;

static int read_text(void *ctx, dp_insight_line_fn fn, void *fn_ctx, dp_error *err) {
    (void)err;
    const text *t = ctx;
    size_t start = 0, line = 0;
    char where[32];
    for (size_t i = 0; i <= t->n; i++) {
        if (i < t->n && t->p[i] != '\n') continue;
        snprintf(where, sizeof where, "fuzz:%zu", ++line);
        if (fn(fn_ctx, t->p + start, i - start, where) != 0) return -1;
        start = i + 1;
    }
    return 0;
}

static void ignore_warning(void *ctx, const char *where, const char *reason) {
    (void)ctx;
    CHECK(where && reason && !strchr(reason, '\n'));
}

static uint64_t u(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    CHECK(json_is_integer(v) && json_integer_value(v) >= 0);
    return (uint64_t)json_integer_value(v);
}

static void check_json(const dp_buf *b) {
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, 0, &je);
    CHECK(j && json_is_object(j));
    uint64_t total = 0, classes[DP_CLASS_N] = {0};
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(j, "domains"), i, d) {
        uint64_t m = u(d, "messages"), sum = 0;
        json_t *c = json_object_get(d, "classes");
        for (int k = 0; k < DP_CLASS_N; k++) {
            uint64_t v = u(c, dp_classify_name((dp_class)k));
            classes[k] += v;
            sum += v;
        }
        CHECK(sum == m);
        total += m;
        json_t *r = json_object_get(d, "readiness");
        CHECK(u(r, "would_block_spoofed") == u(c, "unauthenticated"));
        CHECK(json_is_string(json_object_get(r, "verdict")));
    }
    json_t *t = json_object_get(j, "totals");
    CHECK(u(t, "messages") == total);
    for (int k = 0; k < DP_CLASS_N; k++) CHECK(u(json_object_get(t, "classes"), dp_classify_name((dp_class)k)) == classes[k]);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t flags = data[0];
    text t = {(const char *)data + 1, size - 1};
    dp_insight_options o;
    dp_insight_options_init(&o);
    if (flags & 1) { /* a period around the seeds' days (2024-2025) */
        o.from_day = 20000 + (flags >> 4) * 7;
        o.to_day = o.from_day + 29;
    }
    static const char *const only[] = {"example.com"};
    if (flags & 2) {
        o.domains = only;
        o.n_domains = 1;
    }
    if (flags & 4) {
        o.ready_threshold = 0.5;
        o.min_days = 1;
        o.min_messages = 1;
    }
    o.warn = ignore_warning;
    dp_insight_inputs in = {read_text, &t};
    dp_error err = {0};
    dp_insight *ins = dp_insight_build(&in, &o, &err);
    if (!ins) {
        CHECK(err.kind == DP_ERR_USAGE || err.kind == DP_ERR_NOMEM);
        CHECK(err.msg[0] && !strchr(err.msg, '\n'));
        return 0;
    }
    dp_buf b = DP_BUF_INIT;
    dp_render_json(ins, &b, NULL);
    CHECK(!b.failed);
    check_json(&b);
    dp_buf_reset(&b);
    dp_render_html(ins, &b, NULL);
    CHECK(!b.failed && b.len > 0);
    for (size_t i = 0; i + 7 <= b.len; i++) CHECK(strncasecmp(b.data + i, "<script", 7) != 0);
    dp_buf_reset(&b);
    dp_render_table(ins, &b, NULL);
    for (size_t i = 0; i < b.len; i++) CHECK((unsigned char)b.data[i] >= 0x20 || b.data[i] == '\n');
    dp_buf_free(&b);
    dp_insight_free(ins);
    return 0;
}
