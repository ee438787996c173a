/* render_json — the report as one JSON object: the machine interface.
 *
 * The field names are fixed (insight/README.md lists them); fields may be
 * added, never renamed.  Rates are written with 6 significant digits and
 * as null when their denominator is 0, so a consumer can tell "no mail"
 * from "none passed".
 */
#include <string.h>
#include <time.h>

#include "dp_json.h"
#include "insight_internal.h"

static void kv_rate(dp_buf *b, int *first, const char *key, double r) {
    dp_json_key(b, first, key);
    if (r < 0)
        dp_buf_puts(b, "null");
    else
        dp_buf_printf(b, "%.6g", r);
}

static void day_value(dp_buf *b, int64_t day) {
    char s[11];
    dp_insight_format_day(day, s);
    dp_json_str(b, s);
}

static void kv_day(dp_buf *b, int *first, const char *key, int64_t day) {
    dp_json_key(b, first, key);
    day_value(b, day);
}

static void kv_time(dp_buf *b, int *first, const char *key, int64_t t) {
    char s[32];
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        dp_json_key(b, first, key);
        dp_buf_puts(b, "null");
        return;
    }
    dp_json_kv_str(b, first, key, s);
}

/* A short policy value, or null when the report had none. */
static void kv_opt(dp_buf *b, int *first, const char *key, const char *v) {
    dp_json_kv_str(b, first, key, v && *v ? v : NULL);
}

static void classes(dp_buf *b, int *first, const char *key, const uint64_t c[DP_CLASS_N]) {
    dp_json_key(b, first, key);
    dp_buf_putc(b, '{');
    int f = 1;
    for (int i = 0; i < DP_CLASS_N; i++) dp_json_kv_u64(b, &f, dp_classify_name((dp_class)i), c[i]);
    dp_buf_putc(b, '}');
}

static void policy_members(dp_buf *b, int *f, const dp_insight_policy *p) {
    kv_opt(b, f, "p", p->known ? p->p : NULL);
    kv_opt(b, f, "sp", p->known ? p->sp : NULL);
    kv_opt(b, f, "np", p->known ? p->np : NULL);
    dp_json_key(b, f, "pct");
    if (p->known && p->has_pct)
        dp_buf_u64(b, p->pct);
    else
        dp_buf_puts(b, "null");
    kv_opt(b, f, "adkim", p->known ? p->adkim : NULL);
    kv_opt(b, f, "aspf", p->known ? p->aspf : NULL);
    kv_opt(b, f, "testing", p->known ? p->testing : NULL);
}

static void history_entry(dp_buf *b, int *first_entry, int64_t day, const dp_insight_policy *p) {
    if (!*first_entry) dp_buf_putc(b, ',');
    *first_entry = 0;
    dp_buf_putc(b, '{');
    int f = 1;
    kv_day(b, &f, "date", day);
    policy_members(b, &f, p);
    dp_buf_putc(b, '}');
}

static void policy_history(const dp_insight_domain *d, dp_buf *b) {
    dp_buf_putc(b, '[');
    int first_entry = 1;
    for (size_t i = 0; i < d->n_history; i++) history_entry(b, &first_entry, d->history[i].day, d->history[i].policy);
    dp_buf_putc(b, ']');
}

static void string_list(dp_buf *b, int *first, const char *key, char *const *v, size_t n) {
    dp_json_key(b, first, key);
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) dp_buf_putc(b, ',');
        dp_json_str(b, v[i]);
    }
    dp_buf_putc(b, ']');
}

static void source(const dp_insight_source *s, dp_buf *b) {
    dp_buf_putc(b, '{');
    int f = 1;
    dp_json_kv_str(b, &f, "source_ip", s->ip);
    dp_json_kv_str(b, &f, "class", dp_classify_name(s->cls));
    dp_json_kv_u64(b, &f, "messages", s->messages);
    classes(b, &f, "classes", s->classes);
    dp_json_kv_u64(b, &f, "previous_messages", s->previous_messages);
    dp_json_key(b, &f, "new");
    dp_buf_puts(b, s->previous_messages ? "false" : "true");
    kv_time(b, &f, "first_seen", s->first_seen);
    kv_time(b, &f, "last_seen", s->last_seen);
    string_list(b, &f, "dkim_pass_domains", s->dkim_pass, s->n_dkim_pass);
    string_list(b, &f, "spf_pass_domains", s->spf_pass, s->n_spf_pass);
    dp_json_kv_str(b, &f, "fix", dp_verdict_fix_hint(s));
    /* what enrichment said of the IP, null where nothing */
    dp_json_kv_str(b, &f, "ptr", s->who.ptr);
    dp_json_kv_str(b, &f, "base_domain", s->who.base_domain);
    dp_json_key(b, &f, "asn");
    if (s->who.asn) dp_buf_u64(b, s->who.asn);
    else dp_buf_puts(b, "null");
    dp_json_kv_str(b, &f, "as_org", s->who.as_org);
    dp_json_kv_str(b, &f, "country", s->who.country);
    dp_json_kv_str(b, &f, "service", s->who.service);
    dp_json_kv_str(b, &f, "service_type", s->who.service_type);
    dp_buf_putc(b, '}');
}

static void service(const dp_insight_service *g, dp_buf *b) {
    dp_buf_putc(b, '{');
    int f = 1;
    dp_json_kv_str(b, &f, "service", g->name);
    dp_json_kv_str(b, &f, "type", g->type);
    dp_json_kv_u64(b, &f, "messages", g->messages);
    dp_json_kv_u64(b, &f, "ips", g->n_ips);
    classes(b, &f, "classes", g->classes);
    kv_rate(b, &f, "dkim_aligned_rate", dp_insight_ratio(g->dkim_aligned, g->messages));
    kv_rate(b, &f, "spf_aligned_rate", dp_insight_ratio(g->spf_aligned, g->messages));
    dp_json_kv_str(b, &f, "missing", g->missing);
    dp_json_kv_str(b, &f, "text", g->text);
    dp_buf_putc(b, '}');
}

static void domain(const dp_insight *ins, const dp_insight_domain *d, dp_buf *b) {
    dp_buf_putc(b, '{');
    int f = 1;
    dp_json_kv_str(b, &f, "domain", d->name);
    dp_json_key(b, &f, "policy");
    dp_buf_putc(b, '{');
    int pf = 1;
    policy_members(b, &pf, &d->policy);
    dp_json_key(b, &pf, "as_of");
    if (d->policy.known)
        day_value(b, d->policy.begin / 86400); /* feed times are from 1970 on */
    else
        dp_buf_puts(b, "null");
    dp_buf_putc(b, '}');
    dp_json_key(b, &f, "policy_history");
    policy_history(d, b);
    dp_json_kv_u64(b, &f, "messages", d->messages);
    kv_rate(b, &f, "dmarc_pass_rate", dp_insight_ratio(d->classes[DP_CLASS_ALIGNED], d->messages));
    kv_rate(b, &f, "dkim_aligned_rate", dp_insight_ratio(d->dkim_aligned, d->messages));
    kv_rate(b, &f, "spf_aligned_rate", dp_insight_ratio(d->spf_aligned, d->messages));
    classes(b, &f, "classes", d->classes);
    dp_json_key(b, &f, "dispositions");
    int df = 1;
    dp_buf_putc(b, '{');
    dp_json_kv_u64(b, &df, "none", d->dispositions[DP_DISP_NONE]);
    dp_json_kv_u64(b, &df, "quarantine", d->dispositions[DP_DISP_QUARANTINE]);
    dp_json_kv_u64(b, &df, "reject", d->dispositions[DP_DISP_REJECT]);
    dp_buf_putc(b, '}');

    dp_json_key(b, &f, "readiness");
    dp_buf_putc(b, '{');
    int rf = 1;
    dp_json_kv_str(b, &rf, "verdict", d->verdict);
    dp_json_kv_str(b, &rf, "next_step", d->next_step);
    dp_json_kv_u64(b, &rf, "would_block_legitimate", d->would_block_legitimate);
    dp_json_kv_u64(b, &rf, "would_block_spoofed", d->would_block_spoofed);
    dp_json_kv_u64(b, &rf, "legitimate", d->legitimate);
    kv_rate(b, &rf, "aligned_share", dp_insight_ratio(d->classes[DP_CLASS_ALIGNED], d->legitimate));
    dp_json_kv_str(b, &rf, "reason", d->reason);
    dp_buf_putc(b, '}');

    dp_json_kv_u64(b, &f, "days_with_reports", d->days_with_reports);
    dp_json_key(b, &f, "days_without_reports");
    dp_buf_putc(b, '[');
    int lf = 1;
    for (int64_t i = 0; i < ins->days; i++) {
        uint64_t sum = 0;
        for (int c = 0; c < DP_CLASS_N; c++) sum += d->daily[i * DP_CLASS_N + c];
        if (sum) continue;
        if (!lf) dp_buf_putc(b, ',');
        lf = 0;
        day_value(b, ins->from + i);
    }
    dp_buf_putc(b, ']');

    dp_json_key(b, &f, "reporters");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < d->n_sorted_reporters; i++) {
        const dp_insight_reporter *r = d->sorted_reporters[i];
        if (i) dp_buf_putc(b, ',');
        dp_buf_putc(b, '{');
        int of = 1;
        dp_json_kv_str(b, &of, "name", r->name);
        dp_json_kv_u64(b, &of, "reports", r->reports);
        dp_json_kv_u64(b, &of, "messages", r->messages);
        dp_buf_putc(b, '}');
    }
    dp_buf_putc(b, ']');

    dp_json_key(b, &f, "daily");
    dp_buf_putc(b, '[');
    for (int64_t i = 0; i < ins->days; i++) {
        const uint64_t *c = &d->daily[i * DP_CLASS_N];
        if (i) dp_buf_putc(b, ',');
        dp_buf_putc(b, '{');
        int yf = 1;
        kv_day(b, &yf, "date", ins->from + i);
        dp_json_kv_u64(b, &yf, "messages", c[0] + c[1] + c[2] + c[3]);
        for (int k = 0; k < DP_CLASS_N; k++) dp_json_kv_u64(b, &yf, dp_classify_name((dp_class)k), c[k]);
        kv_rate(b, &yf, "dmarc_pass_rate", dp_insight_ratio(c[DP_CLASS_ALIGNED], c[0] + c[1] + c[2] + c[3]));
        dp_buf_putc(b, '}');
    }
    dp_buf_putc(b, ']');

    dp_json_key(b, &f, "previous");
    dp_buf_putc(b, '{');
    int vf = 1;
    dp_json_kv_u64(b, &vf, "messages", d->prev_messages);
    kv_rate(b, &vf, "dmarc_pass_rate", dp_insight_ratio(d->prev_classes[DP_CLASS_ALIGNED], d->prev_messages));
    classes(b, &vf, "classes", d->prev_classes);
    dp_json_kv_u64(b, &vf, "days_with_reports", d->prev_days_with_reports);
    dp_buf_putc(b, '}');

    dp_json_key(b, &f, "sources");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < d->n_sorted; i++) {
        if (i) dp_buf_putc(b, ',');
        source(d->sorted[i], b);
    }
    dp_buf_putc(b, ']');
    dp_json_key(b, &f, "services");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < d->n_services; i++) {
        if (i) dp_buf_putc(b, ',');
        service(&d->services[i], b);
    }
    dp_buf_puts(b, "]}");
}

void dp_render_json(const dp_insight *ins, dp_buf *b, dp_insight_spill *spill) {
    int f = 1;
    dp_buf_putc(b, '{');
    dp_json_kv_u64(b, &f, "v", 1);
    dp_json_key(b, &f, "period");
    int pf = 1;
    dp_buf_putc(b, '{');
    kv_day(b, &pf, "from", ins->from);
    kv_day(b, &pf, "to", ins->to);
    dp_json_kv_i64(b, &pf, "days", ins->days);
    dp_buf_putc(b, '}');
    dp_json_key(b, &f, "previous_period");
    pf = 1;
    dp_buf_putc(b, '{');
    kv_day(b, &pf, "from", ins->prev_from);
    kv_day(b, &pf, "to", ins->prev_to);
    dp_buf_putc(b, '}');
    dp_json_key(b, &f, "thresholds");
    dp_buf_printf(b, "{\"ready_threshold\":%.6g,\"min_days\":%llu,\"min_messages\":%llu}", ins->opt.ready_threshold,
                  (unsigned long long)ins->opt.min_days, (unsigned long long)ins->opt.min_messages);
    dp_json_key(b, &f, "input");
    pf = 1;
    dp_buf_putc(b, '{');
    dp_json_kv_u64(b, &pf, "lines", ins->lines);
    dp_json_kv_u64(b, &pf, "rollup_lines", ins->rollup_lines);
    dp_json_kv_u64(b, &pf, "report_lines", ins->report_lines);
    dp_json_kv_u64(b, &pf, "bad_lines", ins->bad_lines);
    dp_buf_putc(b, '}');
    dp_json_key(b, &f, "totals");
    pf = 1;
    dp_buf_putc(b, '{');
    dp_json_kv_u64(b, &pf, "domains", ins->n_sorted);
    dp_json_kv_u64(b, &pf, "messages", ins->total_messages);
    classes(b, &pf, "classes", ins->totals);
    dp_buf_putc(b, '}');
    dp_json_key(b, &f, "domains");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < ins->n_sorted; i++) {
        if (i) dp_buf_putc(b, ',');
        domain(ins, ins->sorted[i], b);
        dp_insight_spill_now(spill, b);
    }
    dp_buf_putc(b, ']');
    dp_json_key(b, &f, "alerts");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < ins->n_alerts; i++) {
        const dp_insight_alert *a = &ins->alerts[i];
        if (i) dp_buf_putc(b, ',');
        dp_buf_putc(b, '{');
        int af = 1;
        dp_json_kv_str(b, &af, "kind", a->kind);
        dp_json_kv_str(b, &af, "domain", a->domain);
        if (a->figures[0]) {
            dp_buf_putc(b, ',');
            dp_buf_puts(b, a->figures);
        }
        dp_json_kv_str(b, &af, "text", a->text);
        dp_buf_putc(b, '}');
    }
    dp_buf_puts(b, "]}\n");
}
