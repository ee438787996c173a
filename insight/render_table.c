/* render_table — the report for a terminal: one line per domain, the
 * alerts, then per domain that is not ready the sources to fix first.
 *
 * Text from the feeds (domain names, reporters, IPs) comes from strangers,
 * so it passes through dp_error_text: a name cannot drive the terminal.
 */
#include <stdio.h>
#include <string.h>

#include "insight_internal.h"

#define TOP_SOURCES 10

static const char *safe(const char *s, char buf[DP_ERROR_TEXT_MAX]) { return dp_error_text(s ? s : "", buf); }

static void rate(dp_buf *b, double r) {
    if (r < 0)
        dp_buf_printf(b, " %7s", "-");
    else
        dp_buf_printf(b, " %6.1f%%", r * 100);
}

static void policy_text(const dp_insight_policy *p, char out[40]) {
    if (!p->known || !p->p[0]) {
        snprintf(out, 40, "?");
        return;
    }
    if (p->has_pct && p->pct != 100)
        snprintf(out, 40, "%s pct=%u%s", p->p, (unsigned)p->pct, strcmp(p->testing, "y") == 0 ? " t=y" : "");
    else
        snprintf(out, 40, "%s%s", p->p, strcmp(p->testing, "y") == 0 ? " t=y" : "");
}

void dp_render_table(const dp_insight *ins, dp_buf *b, dp_insight_spill *spill) {
    char from[11], to[11], buf[DP_ERROR_TEXT_MAX];
    dp_insight_format_day(ins->from, from);
    dp_insight_format_day(ins->to, to);
    dp_buf_printf(b, "DMARC report %s .. %s (%lld day%s): %zu domain%s, %llu messages", from, to,
                  (long long)ins->days, ins->days == 1 ? "" : "s", ins->n_sorted, ins->n_sorted == 1 ? "" : "s",
                  (unsigned long long)ins->total_messages);
    if (ins->bad_lines) dp_buf_printf(b, ", %llu bad input lines", (unsigned long long)ins->bad_lines);
    dp_buf_puts(b, "\n\n");
    dp_buf_printf(b, "%-32s %-16s %10s %8s  %-17s %-10s %10s %10s\n", "DOMAIN", "POLICY", "MESSAGES", "PASS",
                  "VERDICT", "NEXT", "BLOCK-OWN", "BLOCK-SPOOF");
    for (size_t i = 0; i < ins->n_sorted; i++) {
        const dp_insight_domain *d = ins->sorted[i];
        char pol[40];
        policy_text(&d->policy, pol);
        dp_buf_printf(b, "%-32s %-16s %10llu", safe(d->name, buf), pol, (unsigned long long)d->messages);
        rate(b, dp_insight_ratio(d->classes[DP_CLASS_ALIGNED], d->messages));
        dp_buf_printf(b, "  %-17s %-10s %10llu %10llu\n", d->verdict, d->next_step ? d->next_step : "-",
                      (unsigned long long)d->would_block_legitimate, (unsigned long long)d->would_block_spoofed);
    }
    if (ins->n_alerts) {
        dp_buf_puts(b, "\nAlerts:\n");
        for (size_t i = 0; i < ins->n_alerts; i++)
            dp_buf_printf(b, "  %-20s %s\n", ins->alerts[i].kind, safe(ins->alerts[i].text, buf));
    }
    for (size_t i = 0; i < ins->n_sorted; i++) {
        const dp_insight_domain *d = ins->sorted[i];
        dp_insight_spill_now(spill, b);
        if (!d->n_sorted) continue;
        dp_buf_printf(b, "\n%s: %s (aligned %llu, forwarded %llu, third_party %llu, unauthenticated %llu)\n",
                      safe(d->name, buf), d->reason, (unsigned long long)d->classes[DP_CLASS_ALIGNED],
                      (unsigned long long)d->classes[DP_CLASS_FORWARDED],
                      (unsigned long long)d->classes[DP_CLASS_THIRD_PARTY],
                      (unsigned long long)d->classes[DP_CLASS_UNAUTHENTICATED]);
        for (size_t k = 0; k < d->n_services; k++) {
            if (k == 0) dp_buf_puts(b, "  Services:\n");
            dp_buf_printf(b, "    %s\n", safe(d->services[k].text, buf));
        }
        dp_buf_printf(b, "  %-39s %-24s %-16s %10s %12s  %s\n", "SOURCE", "SERVICE", "CLASS", "MESSAGES",
                      "THIRD_PARTY", "PASSES FOR");
        size_t n = d->n_sorted < TOP_SOURCES ? d->n_sorted : TOP_SOURCES;
        for (size_t k = 0; k < n; k++) {
            const dp_insight_source *s = d->sorted[k];
            const char *label = dp_services_label(s);
            dp_buf_printf(b, "  %-39s", safe(s->ip, buf));
            dp_buf_printf(b, " %-24s", label ? safe(label, buf) : "-");
            dp_buf_printf(b, " %-16s %10llu %12llu", dp_classify_name(s->cls), (unsigned long long)s->messages,
                          (unsigned long long)s->classes[DP_CLASS_THIRD_PARTY]);
            if (s->n_dkim_pass || s->n_spf_pass) dp_buf_putc(b, ' ');
            for (size_t j = 0; j < s->n_dkim_pass; j++) dp_buf_printf(b, " dkim:%s", safe(s->dkim_pass[j], buf));
            for (size_t j = 0; j < s->n_spf_pass; j++) dp_buf_printf(b, " spf:%s", safe(s->spf_pass[j], buf));
            dp_buf_putc(b, '\n');
        }
        if (d->n_sorted > n) dp_buf_printf(b, "  ... %zu more sources (--format json lists them all)\n", d->n_sorted - n);
    }
}
