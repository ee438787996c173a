/* alerts — what changed against the previous period of the same length.
 *
 * The four changes users ask to be told about, each with the figures that
 * triggered it.  The thresholds are chosen so that an alert means work
 * for someone, not noise:
 *   new_source            a source with no messages in the previous period
 *                         and at least NEW_SOURCE_MIN in this one, in a
 *                         domain that had mail before (in a new domain
 *                         every source is new);
 *   pass_rate_drop        the DMARC pass rate fell by PASS_RATE_DROP or
 *                         more, both periods holding --min-messages;
 *   unauthenticated_rise  unauthenticated messages more than doubled and
 *                         grew by UNAUTH_RISE_MIN or more;
 *   reports_stopped       a domain with rollups earlier, and none in the
 *                         period's last STOPPED_DAYS days.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_json.h"
#include "insight_internal.h"

#define NEW_SOURCE_MIN 10
#define PASS_RATE_DROP 0.05
#define UNAUTH_RISE_MIN 100
#define STOPPED_DAYS 3

static void add(dp_insight *ins, const dp_insight_domain *d, const char *kind, dp_buf *text, dp_buf *figures) {
    if (text->failed || figures->failed) {
        ins->failed = 1;
        return;
    }
    if (ins->n_alerts == ins->cap_alerts) {
        size_t cap = ins->cap_alerts ? ins->cap_alerts * 2 : 16;
        dp_insight_alert *a = realloc(ins->alerts, cap * sizeof *a);
        if (!a) {
            ins->failed = 1;
            return;
        }
        ins->alerts = a;
        ins->cap_alerts = cap;
    }
    char *t = strdup(text->data ? text->data : ""), *f = strdup(figures->data ? figures->data : "");
    if (!t || !f) {
        free(t);
        free(f);
        ins->failed = 1;
        return;
    }
    ins->alerts[ins->n_alerts++] = (dp_insight_alert){kind, d->name, t, f};
}

static void domain_alerts(dp_insight *ins, dp_insight_domain *d, dp_buf *text, dp_buf *fig) {
    char day[11];
    if (d->prev_messages > 0) {
        for (size_t i = 0; i < d->n_sorted; i++) {
            dp_insight_source *s = d->sorted[i];
            if (s->previous_messages || s->messages < NEW_SOURCE_MIN) continue;
            dp_buf_reset(text);
            dp_buf_reset(fig);
            dp_buf_printf(text, "%s: new source %s sent %llu messages (%s)", d->name, s->ip,
                          (unsigned long long)s->messages, dp_classify_name(s->cls));
            int first = 1;
            dp_json_kv_str(fig, &first, "source_ip", s->ip);
            dp_json_kv_u64(fig, &first, "messages", s->messages);
            dp_json_kv_str(fig, &first, "class", dp_classify_name(s->cls));
            add(ins, d, "new_source", text, fig);
        }
    }
    double cur = dp_insight_ratio(d->classes[DP_CLASS_ALIGNED], d->messages);
    double prev = dp_insight_ratio(d->prev_classes[DP_CLASS_ALIGNED], d->prev_messages);
    if (d->messages >= ins->opt.min_messages && d->prev_messages >= ins->opt.min_messages &&
        prev - cur >= PASS_RATE_DROP - 1e-12) {
        dp_buf_reset(text);
        dp_buf_reset(fig);
        dp_buf_printf(text, "%s: DMARC pass rate fell from %.1f%% to %.1f%%", d->name, prev * 100, cur * 100);
        dp_buf_printf(fig, "\"previous_rate\":%.6g,\"rate\":%.6g", prev, cur);
        add(ins, d, "pass_rate_drop", text, fig);
    }
    uint64_t u = d->classes[DP_CLASS_UNAUTHENTICATED], pu = d->prev_classes[DP_CLASS_UNAUTHENTICATED];
    if (u > 2 * pu && u - pu >= UNAUTH_RISE_MIN) {
        dp_buf_reset(text);
        dp_buf_reset(fig);
        dp_buf_printf(text, "%s: unauthenticated messages rose from %llu to %llu", d->name, (unsigned long long)pu,
                      (unsigned long long)u);
        dp_buf_printf(fig, "\"previous\":%llu,\"current\":%llu", (unsigned long long)pu, (unsigned long long)u);
        add(ins, d, "unauthenticated_rise", text, fig);
    }
    if (ins->days > STOPPED_DAYS && (d->messages || d->prev_messages) &&
        (d->last_day == DP_INSIGHT_DAY_UNSET || d->last_day <= ins->to - STOPPED_DAYS)) {
        dp_buf_reset(text);
        dp_buf_reset(fig);
        if (d->last_day == DP_INSIGHT_DAY_UNSET) {
            dp_buf_printf(text, "%s: no reports in this period, after %llu messages in the previous one", d->name,
                          (unsigned long long)d->prev_messages);
            dp_buf_puts(fig, "\"last_day\":null");
        } else {
            dp_insight_format_day(d->last_day, day);
            dp_buf_printf(text, "%s: no reports since %s", d->name, day);
            dp_buf_printf(fig, "\"last_day\":\"%s\"", day);
        }
        add(ins, d, "reports_stopped", text, fig);
    }
}

void dp_alerts_find(dp_insight *ins) {
    dp_buf text = DP_BUF_INIT, fig = DP_BUF_INIT;
    for (size_t i = 0; i < ins->n_sorted; i++) domain_alerts(ins, ins->sorted[i], &text, &fig);
    dp_buf_free(&text);
    dp_buf_free(&fig);
}
