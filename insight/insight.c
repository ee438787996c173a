/* insight — the public calls: the period, the two passes, the formats.
 *
 * The first pass runs only when the period's end was not named: it finds
 * the latest day in the data cheaply (no JSON parse) so that the default
 * period is "the last 30 days the data covers", not the last 30 days of
 * the calendar, which for a feed a day late would miss a day.  The second
 * pass counts (tally.c); then each domain is decided (verdict.c) and the
 * changes are found (alerts.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "insight_internal.h"

#define DEFAULT_DAYS 30
#define MAX_DAYS 3660 /* ten years: the day arrays stay small */

void dp_insight_options_init(dp_insight_options *o) {
    memset(o, 0, sizeof *o);
    o->from_day = o->to_day = DP_INSIGHT_DAY_UNSET;
    o->ready_threshold = 0.98;
    o->min_days = 7;
    o->min_messages = 100;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so that no time zone or libc's timegm is involved. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int dp_insight_parse_day(const char *s, int64_t *day) {
    unsigned y, m, d;
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3) return -1;
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) return -1;
    int64_t v = days_from_civil(y, m, d);
    char back[11];
    dp_insight_format_day(v, back);
    if (strcmp(back, s) != 0) return -1; /* 2026-02-30 */
    *day = v;
    return 0;
}

void dp_insight_format_day(int64_t day, char out[11]) {
    int64_t z = day + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
    if (y < 0 || y > 9999) y = 0;
    /* m and d are 1..12 and 1..31 by construction; say so to the compiler */
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, m % 13u, d % 32u);
}

double dp_insight_ratio(uint64_t num, uint64_t den) { return den ? (double)num / (double)den : -1; }

static int scan_line(void *ctx, const char *line, size_t len, const char *where) {
    (void)where;
    void **a = ctx;
    dp_tally_scan(a[0], a[1], line, len);
    return 0;
}

static int count_line(void *ctx, const char *line, size_t len, const char *where) {
    dp_insight *ins = ctx;
    dp_tally_line(ins, line, len, where);
    return ins->failed ? -1 : 0;
}

static int set_period(dp_insight *ins, const dp_insight_inputs *in, dp_error *err) {
    const dp_insight_options *o = &ins->opt;
    int64_t from = o->from_day, to = o->to_day;
    if (to == DP_INSIGHT_DAY_UNSET) {
        int64_t latest[2] = {DP_INSIGHT_DAY_UNSET, DP_INSIGHT_DAY_UNSET};
        void *a[2] = {(void *)o, latest};
        if (in->read(in->ctx, scan_line, a, err) != 0) return -1;
        to = latest[0] != DP_INSIGHT_DAY_UNSET ? latest[0] : latest[1];
        if (to == DP_INSIGHT_DAY_UNSET) to = from != DP_INSIGHT_DAY_UNSET ? from + DEFAULT_DAYS - 1 : time(NULL) / 86400;
        if (from != DP_INSIGHT_DAY_UNSET && to < from) to = from;
    }
    if (from == DP_INSIGHT_DAY_UNSET) from = to - (DEFAULT_DAYS - 1);
    if (from > to) return dp_error_set(err, DP_ERR_USAGE, "the period starts after it ends");
    if (to - from + 1 > MAX_DAYS) return dp_error_set(err, DP_ERR_USAGE, "the period is longer than %d days", MAX_DAYS);
    ins->from = from;
    ins->to = to;
    ins->days = to - from + 1;
    ins->prev_to = from - 1;
    ins->prev_from = from - ins->days;
    return 0;
}

static int name_order(const void *a, const void *b) {
    return strcmp((*(dp_insight_domain *const *)a)->name, (*(dp_insight_domain *const *)b)->name);
}

static int finish(dp_insight *ins) {
    ins->sorted = malloc((ins->domains.len ? ins->domains.len : 1) * sizeof *ins->sorted);
    if (!ins->sorted) return -1;
    dp_map_values(&ins->domains, (void **)ins->sorted);
    size_t n = 0;
    for (size_t i = 0; i < ins->domains.len; i++)
        if (ins->sorted[i]->listed) ins->sorted[n++] = ins->sorted[i];
    ins->n_sorted = n;
    qsort(ins->sorted, n, sizeof *ins->sorted, name_order);
    for (size_t i = 0; i < n; i++) {
        dp_insight_domain *d = ins->sorted[i];
        dp_verdict_decide(ins, d);
        dp_services_group(ins, d);
        for (int c = 0; c < DP_CLASS_N; c++) ins->totals[c] += d->classes[c];
        ins->total_messages += d->messages;
    }
    dp_alerts_find(ins);
    return ins->failed ? -1 : 0;
}

dp_insight *dp_insight_build(const dp_insight_inputs *in, const dp_insight_options *o, dp_error *err) {
    if (!(o->ready_threshold >= 0 && o->ready_threshold <= 1)) {
        dp_error_set(err, DP_ERR_USAGE, "the ready threshold must be between 0 and 1");
        return NULL;
    }
    dp_insight *ins = calloc(1, sizeof *ins);
    if (!ins) {
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ins->opt = *o;
    if (set_period(ins, in, err) != 0 || in->read(in->ctx, count_line, ins, err) != 0 || finish(ins) != 0) {
        if (ins->failed || err->kind == DP_OK) dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        dp_insight_free(ins);
        return NULL;
    }
    return ins;
}

uint64_t dp_insight_lines(const dp_insight *ins) { return ins->lines; }
uint64_t dp_insight_bad_lines(const dp_insight *ins) { return ins->bad_lines; }
size_t dp_insight_domains(const dp_insight *ins) { return ins->n_sorted; }

#define SPILL_AT (1u << 20)

void dp_insight_spill_now(dp_insight_spill *spill, dp_buf *out) {
    if (!spill || !spill->f || out->len < SPILL_AT || out->failed) return;
    if (!spill->failed && fwrite(out->data, 1, out->len, spill->f) != out->len) spill->failed = 1;
    dp_buf_reset(out);
}

int dp_insight_write(const dp_insight *ins, dp_insight_format fmt, FILE *f, dp_error *err) {
    dp_buf out = DP_BUF_INIT;
    dp_insight_spill spill = {f, 0};
    if (fmt == DP_INSIGHT_JSON)
        dp_render_json(ins, &out, &spill);
    else if (fmt == DP_INSIGHT_HTML)
        dp_render_html(ins, &out, &spill);
    else
        dp_render_table(ins, &out, &spill);
    int rc = 0;
    if (out.failed)
        rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory writing the report");
    else if (spill.failed || (out.len && fwrite(out.data, 1, out.len, f) != out.len) || fflush(f) != 0)
        rc = dp_error_set(err, DP_ERR_IO, "cannot write the report");
    dp_buf_free(&out);
    return rc;
}

static void free_source(void *ctx, const char *key, void *value) {
    (void)ctx, (void)key;
    dp_insight_source *s = value;
    for (size_t i = 0; i < s->n_dkim_pass; i++) free(s->dkim_pass[i]);
    for (size_t i = 0; i < s->n_spf_pass; i++) free(s->spf_pass[i]);
    dp_tally_who_free(&s->who);
    free(s);
}

static void free_value(void *ctx, const char *key, void *value) {
    (void)ctx, (void)key;
    free(value);
}

static void free_domain(void *ctx, const char *key, void *value) {
    (void)ctx, (void)key;
    dp_insight_domain *d = value;
    dp_map_each(&d->sources, free_source, NULL);
    dp_map_free(&d->sources);
    dp_map_each(&d->reporters, free_value, NULL);
    dp_map_free(&d->reporters);
    free(d->daily);
    free(d->prev_day_seen);
    free(d->day_policy);
    free(d->variants);
    free(d->history);
    free(d->sorted);
    free(d->sorted_reporters);
    for (size_t i = 0; i < d->n_services; i++) {
        free(d->services[i].missing);
        free(d->services[i].text);
    }
    free(d->services);
    free(d);
}

void dp_insight_free(dp_insight *ins) {
    if (!ins) return;
    dp_map_each(&ins->domains, free_domain, NULL);
    dp_map_free(&ins->domains);
    for (size_t i = 0; i < ins->n_alerts; i++) {
        free(ins->alerts[i].text);
        free(ins->alerts[i].figures);
    }
    free(ins->alerts);
    free(ins->sorted);
    free(ins);
}
