/* dp_metrics — see dp_metrics.h.
 *
 * A series is one 64-bit atomic (a counter: the count; a gauge: a double's
 * bits), or for a histogram a run of them: one per bucket (not cumulative:
 * an observation touches one bucket, the render adds them up), the count,
 * and the sum (a double's bits, added by compare-and-swap).  All updates
 * are relaxed: no figure orders any other memory, and a scrape needs none.
 */
#include "dp_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_clock.h"

struct dp_metric {
    dp_metric_type type;
    char *name, *help;
    size_t n_labels;
    char *label_names[DP_METRICS_MAX_LABELS];
    char **values[DP_METRICS_MAX_LABELS];
    size_t n_values[DP_METRICS_MAX_LABELS];
    size_t n_series;
    double bounds[DP_METRICS_MAX_BUCKETS]; /* a histogram's, without +Inf */
    size_t n_bounds;
    size_t stride; /* atomics per series: 1, or n_bounds + 1 buckets, count, sum */
    _Atomic uint64_t *cells;
};

struct dp_metrics {
    pthread_mutex_t lock;
    dp_metric **v;
    size_t n, cap;
    _Atomic uint64_t heartbeat; /* bits of a dp_clock_seconds() */
    _Atomic int ready;
};

static uint64_t bits_of(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double double_of(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

dp_metrics *dp_metrics_new(void) {
    dp_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->heartbeat, bits_of(dp_clock_seconds()));
    atomic_init(&m->ready, 0);
    return m;
}

static void family_free(dp_metric *f) {
    if (!f) return;
    free(f->name);
    free(f->help);
    for (size_t k = 0; k < f->n_labels; k++) {
        for (size_t j = 0; f->values[k] && j < f->n_values[k]; j++) free(f->values[k][j]);
        free(f->values[k]);
        free(f->label_names[k]);
    }
    free(f->cells);
    free(f);
}

void dp_metrics_free(dp_metrics *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) family_free(m->v[i]);
    free(m->v);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]*, and for a label no colon and no leading "__". */
static int valid_name(const char *s, int label) {
    if (!s || !*s) return 0;
    if (label && strncmp(s, "__", 2) == 0) return 0;
    for (const char *p = s; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (!label && *p == ':') ||
                 (p > s && *p >= '0' && *p <= '9');
        if (!ok) return 0;
    }
    return 1;
}

/* Whether an existing family is the one being registered again. */
static int same_shape(const dp_metric *f, dp_metric_type type, const dp_metric_label *labels, size_t n_labels) {
    if (f->type != type || f->n_labels != n_labels) return 0;
    for (size_t k = 0; k < n_labels; k++) {
        if (strcmp(f->label_names[k], labels[k].name) != 0 || f->n_values[k] != labels[k].n_values) return 0;
        for (size_t j = 0; j < labels[k].n_values; j++)
            if (strcmp(f->values[k][j], labels[k].values[j]) != 0) return 0;
    }
    return 1;
}

static dp_metric *family_new(dp_metric_type type, const char *name, const char *help, const dp_metric_label *labels,
                             size_t n_labels, const double *buckets, size_t n_buckets) {
    dp_metric *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->n_series = 1;
    int ok = f->name && f->help;
    for (size_t k = 0; ok && k < n_labels; k++) {
        f->n_labels++;
        f->label_names[k] = strdup(labels[k].name);
        f->values[k] = calloc(labels[k].n_values ? labels[k].n_values : 1, sizeof *f->values[k]);
        ok = f->label_names[k] && f->values[k];
        for (size_t j = 0; ok && j < labels[k].n_values; j++) {
            ok = (f->values[k][j] = strdup(labels[k].values[j])) != NULL;
            f->n_values[k] = j + 1;
        }
        f->n_series *= labels[k].n_values;
    }
    if (type == DP_METRIC_HISTOGRAM) {
        f->n_bounds = n_buckets;
        memcpy(f->bounds, buckets, n_buckets * sizeof *buckets);
        f->stride = n_buckets + 3;
    } else {
        f->stride = 1;
    }
    size_t cells = f->n_series * f->stride;
    if (ok) ok = (f->cells = calloc(cells ? cells : 1, sizeof *f->cells)) != NULL;
    if (!ok) {
        family_free(f);
        return NULL;
    }
    return f;
}

dp_metric *dp_metrics_register(dp_metrics *m, dp_metric_type type, const char *name, const char *help,
                               const dp_metric_label *labels, size_t n_labels, const double *buckets,
                               size_t n_buckets) {
    if (!m || !valid_name(name, 0) || n_labels > DP_METRICS_MAX_LABELS) return NULL;
    if (type == DP_METRIC_HISTOGRAM) {
        if (n_buckets > DP_METRICS_MAX_BUCKETS || (n_buckets && !buckets)) return NULL;
        for (size_t i = 0; i < n_buckets; i++)
            if (!isfinite(buckets[i]) || (i && buckets[i] <= buckets[i - 1])) return NULL;
    }
    for (size_t k = 0; k < n_labels; k++) {
        if (!valid_name(labels[k].name, 1) || (type == DP_METRIC_HISTOGRAM && strcmp(labels[k].name, "le") == 0))
            return NULL;
        for (size_t j = 0; j < labels[k].n_values; j++)
            if (!labels[k].values[j]) return NULL;
    }
    pthread_mutex_lock(&m->lock);
    dp_metric *f = NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i]->name, name) == 0) {
            f = same_shape(m->v[i], type, labels, n_labels) ? m->v[i] : NULL;
            pthread_mutex_unlock(&m->lock);
            return f;
        }
    dp_metric **v = dp_buf_grow_array(m->v, &m->cap, m->n + 1, sizeof *m->v);
    if (v) {
        m->v = v;
        f = family_new(type, name, help, labels, n_labels, buckets, n_buckets);
        if (f) m->v[m->n++] = f;
    }
    pthread_mutex_unlock(&m->lock);
    return f;
}

dp_metric *dp_metrics_counter(dp_metrics *m, const char *name, const char *help) {
    return dp_metrics_register(m, DP_METRIC_COUNTER, name, help, NULL, 0, NULL, 0);
}

dp_metric *dp_metrics_gauge(dp_metrics *m, const char *name, const char *help) {
    return dp_metrics_register(m, DP_METRIC_GAUGE, name, help, NULL, 0, NULL, 0);
}

dp_metric *dp_metrics_counter1(dp_metrics *m, const char *name, const char *help, const char *label,
                               const char *const *values, size_t n_values) {
    dp_metric_label l = {label, values, n_values};
    return dp_metrics_register(m, DP_METRIC_COUNTER, name, help, &l, 1, NULL, 0);
}

dp_metric *dp_metrics_gauge1(dp_metrics *m, const char *name, const char *help, const char *label,
                             const char *const *values, size_t n_values) {
    dp_metric_label l = {label, values, n_values};
    return dp_metrics_register(m, DP_METRIC_GAUGE, name, help, &l, 1, NULL, 0);
}

long dp_metrics_series(const dp_metric *f, const char *const *values) {
    if (!f) return -1;
    size_t idx = 0;
    for (size_t k = 0; k < f->n_labels; k++) {
        size_t j = 0;
        while (j < f->n_values[k] && strcmp(f->values[k][j], values[k]) != 0) j++;
        if (j == f->n_values[k]) return -1;
        idx = idx * f->n_values[k] + j;
    }
    return (long)idx;
}

size_t dp_metrics_n_series(const dp_metric *f) { return f ? f->n_series : 0; }

void dp_metrics_add(dp_metric *f, size_t series, uint64_t v) {
    if (!f || f->type != DP_METRIC_COUNTER || series >= f->n_series) return;
    atomic_fetch_add_explicit(&f->cells[series], v, memory_order_relaxed);
}

void dp_metrics_set(dp_metric *f, size_t series, double v) {
    if (!f || f->type != DP_METRIC_GAUGE || series >= f->n_series) return;
    atomic_store_explicit(&f->cells[series], bits_of(v), memory_order_relaxed);
}

void dp_metrics_observe(dp_metric *f, size_t series, double v) {
    if (!f || f->type != DP_METRIC_HISTOGRAM || series >= f->n_series || isnan(v)) return;
    _Atomic uint64_t *c = f->cells + series * f->stride;
    size_t b = 0;
    while (b < f->n_bounds && v > f->bounds[b]) b++;
    atomic_fetch_add_explicit(&c[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c[f->n_bounds + 1], 1, memory_order_relaxed);
    _Atomic uint64_t *sum = &c[f->n_bounds + 2];
    uint64_t old = atomic_load_explicit(sum, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(sum, &old, bits_of(double_of(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

double dp_metrics_value(const dp_metric *f, size_t series) {
    if (!f || series >= f->n_series || f->type == DP_METRIC_HISTOGRAM) return 0;
    uint64_t u = atomic_load_explicit(&f->cells[series], memory_order_relaxed);
    return f->type == DP_METRIC_COUNTER ? (double)u : double_of(u);
}

/* ---- the text format ---------------------------------------------------------- */

/* HELP text escapes backslash and newline; a label value also '"'. */
static void put_escaped(dp_buf *out, const char *s, int quote) {
    for (; *s; s++) {
        if (*s == '\\') dp_buf_puts(out, "\\\\");
        else if (*s == '\n') dp_buf_puts(out, "\\n");
        else if (quote && *s == '"') dp_buf_puts(out, "\\\"");
        else dp_buf_putc(out, *s);
    }
}

/* A float as Go's strconv would print it: the shortest text that reads
 * back the same, and +Inf, -Inf, NaN. */
static void put_double(dp_buf *out, double d) {
    if (isnan(d)) {
        dp_buf_puts(out, "NaN");
        return;
    }
    if (isinf(d)) {
        dp_buf_puts(out, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[40];
    if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d) { /* whole: no exponent */
        dp_buf_i64(out, (int64_t)d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    dp_buf_puts(out, tmp);
}

/* The series' labels, "{a="x",b="y"" without the closing brace; "" with
 * none.  Returns whether anything was written. */
static int put_labels(dp_buf *out, const dp_metric *f, size_t series) {
    if (!f->n_labels) return 0;
    size_t idx[DP_METRICS_MAX_LABELS];
    for (size_t k = f->n_labels; k-- > 0;) {
        idx[k] = series % f->n_values[k];
        series /= f->n_values[k];
    }
    dp_buf_putc(out, '{');
    for (size_t k = 0; k < f->n_labels; k++) {
        if (k) dp_buf_putc(out, ',');
        dp_buf_printf(out, "%s=\"", f->label_names[k]);
        put_escaped(out, f->values[k][idx[k]], 1);
        dp_buf_putc(out, '"');
    }
    return 1;
}

static void render_family(dp_buf *out, const dp_metric *f) {
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    dp_buf_printf(out, "# HELP %s ", f->name);
    put_escaped(out, f->help, 0);
    dp_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (size_t s = 0; s < f->n_series; s++) {
        const _Atomic uint64_t *c = f->cells + s * f->stride;
        if (f->type != DP_METRIC_HISTOGRAM) {
            dp_buf_puts(out, f->name);
            if (put_labels(out, f, s)) dp_buf_putc(out, '}');
            dp_buf_putc(out, ' ');
            uint64_t u = atomic_load_explicit(c, memory_order_relaxed);
            if (f->type == DP_METRIC_COUNTER) dp_buf_u64(out, u);
            else put_double(out, double_of(u));
            dp_buf_putc(out, '\n');
            continue;
        }
        /* the count is read first and the buckets may since have grown:
         * the +Inf bucket is the count itself, so the two always agree */
        uint64_t count = atomic_load_explicit(&c[f->n_bounds + 1], memory_order_relaxed);
        uint64_t cum = 0;
        for (size_t b = 0; b <= f->n_bounds; b++) {
            if (b < f->n_bounds) {
                cum += atomic_load_explicit(&c[b], memory_order_relaxed);
                if (cum > count) cum = count;
            } else {
                cum = count;
            }
            dp_buf_printf(out, "%s_bucket", f->name);
            dp_buf_puts(out, put_labels(out, f, s) ? ",le=\"" : "{le=\"");
            put_double(out, b < f->n_bounds ? f->bounds[b] : INFINITY);
            dp_buf_puts(out, "\"} ");
            dp_buf_u64(out, cum);
            dp_buf_putc(out, '\n');
        }
        dp_buf_printf(out, "%s_sum", f->name);
        if (put_labels(out, f, s)) dp_buf_putc(out, '}');
        dp_buf_putc(out, ' ');
        put_double(out, double_of(atomic_load_explicit(&c[f->n_bounds + 2], memory_order_relaxed)));
        dp_buf_printf(out, "\n%s_count", f->name);
        if (put_labels(out, f, s)) dp_buf_putc(out, '}');
        dp_buf_putc(out, ' ');
        dp_buf_u64(out, count);
        dp_buf_putc(out, '\n');
    }
}

int dp_metrics_render(dp_metrics *m, dp_buf *out) {
    if (!m) return 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n; i++) render_family(out, m->v[i]);
    pthread_mutex_unlock(&m->lock);
    return out->failed ? -1 : 0;
}

/* ---- health ------------------------------------------------------------------ */

void dp_metrics_heartbeat(dp_metrics *m) {
    if (m) atomic_store_explicit(&m->heartbeat, bits_of(dp_clock_seconds()), memory_order_relaxed);
}

double dp_metrics_heartbeat_age(dp_metrics *m) {
    if (!m) return 0;
    return dp_clock_seconds() - double_of(atomic_load_explicit(&m->heartbeat, memory_order_relaxed));
}

void dp_metrics_set_ready(dp_metrics *m, int ready) {
    if (m) atomic_store_explicit(&m->ready, ready != 0, memory_order_relaxed);
}

int dp_metrics_ready(dp_metrics *m) { return m ? atomic_load_explicit(&m->ready, memory_order_relaxed) : 0; }
