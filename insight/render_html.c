/* render_html — the report as one self-contained HTML page, for people.
 *
 * The page answers the same questions as the table and the JSON (which
 * domains can take the next step towards p=reject, who sends as them,
 * what reject would block) for someone who reads it in a browser or gets
 * it as an attachment.  So it is one file that opens offline: CSS inline,
 * charts as inline SVG (svg.c), no script at all, no font, image or link
 * outside the page, and a Content-Security-Policy that would forbid them
 * if one slipped in.
 *
 * Everything the data says (domains, reporters, pass domains, alert
 * texts) is written through dp_svg_escape: reports come from strangers.
 * Element ids are made from domain names reduced to [a-z0-9.-].  Colours
 * always come with the words they stand for (badges, legends, headers).
 * Dates are dp_insight_format_day's, rates dp_insight_ratio's (n/a when
 * there is nothing to divide by).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_config.h"
#include "insight_internal.h"
#include "svg.h"

#define MAX_SOURCES 50 /* rows of a domain's sources table; the rest are counted */

static const dp_svg_series class_series[DP_CLASS_N] = {
    {"aligned", "#2f855a", 0},
    {"forwarded", "#3b7dd8", 0},
    {"third_party", "#e08a1e", 0},
    {"unauthenticated", "#c53030", 0},
};

static const char css[] =
    ":root{--fg:#1f2328;--muted:#5f6670;--line:#d9dee4;--panel:#f5f7f9}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\","
    "\"DejaVu Sans\",Arial,sans-serif;color:var(--fg);background:#fff}"
    "header.top{background:#1f2937;color:#f3f4f6;padding:18px 24px 16px}"
    "header.top h1{margin:0 0 4px;font-size:22px;font-weight:650}"
    "header.top p{margin:2px 0;color:#d1d5db}"
    "header.top b{color:#fff}"
    "main{max-width:1240px;margin:0 auto;padding:4px 24px 40px}"
    "h2{font-size:19px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}"
    "h3{font-size:15px;margin:18px 0 6px}"
    "a{color:#1d5fb4}"
    "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}"
    "th,td{padding:4px 6px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}"
    "th{background:var(--panel);font-weight:600;font-size:12.5px;color:#374151;vertical-align:bottom}"
    "th.span{text-align:center;border-bottom:1px solid #c4cad1}"
    ".n{text-align:right;white-space:nowrap}"
    ".muted{color:var(--muted)}"
    ".small{font-size:12.5px}"
    "td.mono,td.name{white-space:nowrap}"
    ".mono{font-family:ui-monospace,\"DejaVu Sans Mono\",Menlo,Consolas,monospace;font-size:12.5px}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;"
    "color:#fff;white-space:nowrap;vertical-align:1px}"
    ".v-ready{background:#2f855a}.v-enforced{background:#24508f}"
    ".v-fix_senders{background:#c05621}.v-insufficient_data{background:#6b7280}"
    ".c-aligned{background:#2f855a}.c-forwarded{background:#3b7dd8}"
    ".c-third_party{background:#e08a1e}.c-unauthenticated{background:#c53030}"
    ".new{background:#7c3aed}.alert{background:#b45309}"
    ".figs{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}"
    ".fig{flex:1 1 110px;background:var(--panel);border:1px solid var(--line);border-radius:6px;"
    "padding:6px 10px}"
    ".fig b{display:block;font-size:18px;font-variant-numeric:tabular-nums}"
    ".fig>span:not(.badge){display:block;font-size:12px;line-height:1.25;color:var(--muted)}"
    ".mix{display:flex;height:10px;width:100px;border-radius:3px;overflow:hidden;background:#e5e7eb;"
    "margin-top:5px}"
    ".mix.wide{width:100%;height:14px;margin:6px 0 2px}"
    ".mix span{display:block;height:100%}"
    ".legend span{display:inline-block;margin-right:14px}"
    ".legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}"
    ".charts{display:flex;flex-wrap:wrap;gap:14px;margin:10px 0}"
    ".charts figure{flex:1 1 470px;margin:0;border:1px solid var(--line);border-radius:6px;padding:6px 8px}"
    ".charts figcaption{font-weight:600;font-size:13px}"
    "svg.chart{width:100%;height:auto;display:block;font-family:inherit}"
    ".grid{display:flex;flex-wrap:wrap;gap:4px 28px}.grid>div{flex:1 1 calc(50% - 28px);min-width:320px}"
    ".wrap{overflow-x:auto}"
    ".domain{margin-top:40px;border-top:3px solid #1f2937}"
    ".domain>h2{border:0;margin-top:14px}"
    ".reason{margin:6px 0;padding:8px 12px;background:var(--panel);border-left:5px solid #6b7280}"
    ".r-ready{border-color:#2f855a}.r-enforced{border-color:#24508f}.r-fix_senders{border-color:#c05621}"
    "ul.alerts{padding-left:0;list-style:none}"
    "ul.alerts li{margin:4px 0}"
    "footer{max-width:1240px;margin:0 auto;padding:12px 24px 32px;color:var(--muted);font-size:12.5px}"
    "@media print{header.top{background:#fff;color:#000}header.top p{color:#000}}";

/* ---- small pieces ---- */

static void text(dp_buf *out, const char *s) { dp_svg_escape(out, s); }

static void rate(dp_buf *out, double r) {
    if (r < 0)
        dp_buf_puts(out, "n/a");
    else if (r < 1 && r >= 0.9995) /* never round a miss up to 100% */
        dp_buf_puts(out, "&gt;99.9%");
    else
        dp_buf_printf(out, "%.1f%%", r * 100);
}

/* The UTC day of a Unix time, rounding down before 1970 too. */
static int64_t sec_day(int64_t t) { return t >= 0 ? t / 86400 : -((-(t + 1)) / 86400) - 1; }

static void day_text(dp_buf *out, int64_t day) {
    char s[11];
    dp_insight_format_day(day, s);
    dp_buf_puts(out, s);
}

/* An element id for a domain: its name reduced to [a-z0-9.-], with its
 * position added when that changed it, so ids stay unique and safe. */
static void domain_id(dp_buf *out, const dp_insight_domain *d, size_t index) {
    int changed = 0;
    dp_buf_puts(out, "d-");
    for (const char *p = d->name; *p; p++) {
        char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-') {
            dp_buf_putc(out, c);
        } else {
            dp_buf_putc(out, '_');
            changed = 1;
        }
    }
    if (changed) dp_buf_printf(out, "-%zu", index);
}

static void badge(dp_buf *out, const char *cls_prefix, const char *name) {
    dp_buf_printf(out, "<span class=\"badge %s%s\">%s</span>", cls_prefix, name, name);
}

static void verdict_badge(dp_buf *out, const dp_insight_domain *d) {
    badge(out, "v-", d->verdict ? d->verdict : "insufficient_data");
}

/* The share of each class as a bar of colours, with the words in the
 * tooltip and for screen readers. */
static void mix_bar(dp_buf *out, const uint64_t classes[DP_CLASS_N], uint64_t total, int wide) {
    dp_buf desc = DP_BUF_INIT;
    for (int c = 0; c < DP_CLASS_N; c++) {
        dp_buf_printf(&desc, "%s%s ", c ? ", " : "", dp_classify_name((dp_class)c));
        rate(&desc, dp_insight_ratio(classes[c], total));
    }
    dp_buf_printf(out, "<div class=\"mix%s\" role=\"img\" aria-label=\"%s\" title=\"%s\">", wide ? " wide" : "",
                  desc.failed ? "" : desc.data, desc.failed ? "" : desc.data);
    dp_buf_free(&desc);
    for (int c = 0; c < DP_CLASS_N; c++) {
        if (!classes[c] || !total) continue;
        dp_buf_printf(out, "<span class=\"c-%s\" style=\"width:%.3f%%\"></span>", dp_classify_name((dp_class)c),
                      100.0 * (double)classes[c] / (double)total);
    }
    dp_buf_puts(out, "</div>");
}

static void legend(dp_buf *out) {
    dp_buf_puts(out, "<div class=\"legend small\">");
    for (int c = 0; c < DP_CLASS_N; c++)
        dp_buf_printf(out, "<span><i class=\"c-%s\"></i>%s</span>", class_series[c].name, class_series[c].name);
    dp_buf_puts(out, "</div>");
}

static void fig_count(dp_buf *out, uint64_t v, const char *label) {
    dp_buf_puts(out, "<div class=\"fig\"><b>");
    dp_svg_count(out, v);
    dp_buf_printf(out, "</b><span>%s</span></div>", label);
}

static void fig_rate(dp_buf *out, double r, const char *label) {
    dp_buf_puts(out, "<div class=\"fig\"><b>");
    rate(out, r);
    dp_buf_printf(out, "</b><span>%s</span></div>", label);
}

/* A policy value, or a dash when the report had none. */
static void pval(dp_buf *out, const char *v) {
    if (v && *v)
        text(out, v);
    else
        dp_buf_puts(out, "<span class=\"muted\">&#8212;</span>");
}

static void pct_val(dp_buf *out, const dp_insight_policy *p) {
    if (p->has_pct)
        dp_buf_printf(out, "%u", (unsigned)p->pct);
    else
        dp_buf_puts(out, "<span class=\"muted\">100</span>");
}

static void policy_short(dp_buf *out, const dp_insight_policy *p) {
    if (!p->known) {
        dp_buf_puts(out, "<span class=\"muted\">unknown</span>");
        return;
    }
    dp_buf_puts(out, "p=");
    pval(out, p->p);
    dp_buf_puts(out, " sp=");
    pval(out, p->sp);
    dp_buf_puts(out, " pct=");
    pct_val(out, p);
    if (!strcmp(p->testing, "y")) dp_buf_puts(out, " t=y");
}

/* ---- the header, the summary, the alerts ---- */

static void page_head(dp_buf *out, const dp_insight *ins) {
    dp_buf_puts(out,
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                "style-src 'unsafe-inline'\">\n<title>DMARC report ");
    day_text(out, ins->from);
    dp_buf_puts(out, " to ");
    day_text(out, ins->to);
    dp_buf_printf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);

    dp_buf_puts(out, "<header class=\"top\"><h1>DMARC enforcement report</h1><p>Period <b>");
    day_text(out, ins->from);
    dp_buf_puts(out, "</b> to <b>");
    day_text(out, ins->to);
    dp_buf_printf(out, "</b> (%lld day%s, UTC), compared with ", (long long)ins->days, ins->days == 1 ? "" : "s");
    day_text(out, ins->prev_from);
    dp_buf_puts(out, " to ");
    day_text(out, ins->prev_to);
    dp_buf_puts(out, ".</p><p class=\"small\">Thresholds: <b>ready</b> when aligned &#247; legitimate &#8805; ");
    rate(out, ins->opt.ready_threshold);
    dp_buf_printf(out,
                  "; a verdict needs at least <b>%llu</b> days with reports and <b>%llu</b> messages. "
                  "Read ",
                  (unsigned long long)ins->opt.min_days, (unsigned long long)ins->opt.min_messages);
    dp_svg_count(out, ins->lines);
    dp_buf_puts(out, " lines: ");
    dp_svg_count(out, ins->rollup_lines);
    dp_buf_puts(out, " rollups, ");
    dp_svg_count(out, ins->report_lines);
    dp_buf_puts(out, " reports, ");
    dp_svg_count(out, ins->bad_lines);
    dp_buf_puts(out, " not feed lines.</p></header>\n<main>\n");
}

static void overview(dp_buf *out, const dp_insight *ins) {
    static const char *const verdicts[] = {"ready", "fix_senders", "enforced", "insufficient_data"};
    uint64_t block_legit = 0, spoofed = 0;
    for (size_t i = 0; i < ins->n_sorted; i++) {
        block_legit += ins->sorted[i]->would_block_legitimate;
        spoofed += ins->sorted[i]->would_block_spoofed;
    }
    dp_buf_puts(out, "<section id=\"overview\" aria-label=\"Overview\"><div class=\"figs\">");
    fig_count(out, ins->n_sorted, "domains");
    fig_count(out, ins->total_messages, "messages");
    fig_rate(out, dp_insight_ratio(ins->totals[DP_CLASS_ALIGNED], ins->total_messages), "DMARC pass");
    fig_count(out, block_legit, "reject would block: legitimate");
    fig_count(out, spoofed, "reject would block: spoofed");
    for (size_t v = 0; v < sizeof verdicts / sizeof verdicts[0]; v++) {
        uint64_t n = 0;
        for (size_t i = 0; i < ins->n_sorted; i++)
            if (ins->sorted[i]->verdict && !strcmp(ins->sorted[i]->verdict, verdicts[v])) n++;
        dp_buf_puts(out, "<div class=\"fig\"><b>");
        dp_buf_u64(out, n);
        dp_buf_puts(out, "</b>");
        badge(out, "v-", verdicts[v]);
        dp_buf_puts(out, "</div>");
    }
    dp_buf_puts(out, "</div>");
    mix_bar(out, ins->totals, ins->total_messages, 1);
    legend(out);
    dp_buf_puts(out, "</section>\n");
}

static void summary(dp_buf *out, const dp_insight *ins) {
    dp_buf_puts(out,
                "<section id=\"summary\"><h2>Domains</h2>\n<div class=\"wrap\"><table>"
                "<thead><tr><th rowspan=\"2\">Domain</th><th rowspan=\"2\">Verdict</th>"
                "<th rowspan=\"2\">Next step</th><th rowspan=\"2\">Published policy</th>"
                "<th rowspan=\"2\" class=\"n\">Messages</th><th rowspan=\"2\" class=\"n\">DMARC pass</th>"
                "<th rowspan=\"2\">Classes</th><th colspan=\"2\" class=\"span\">Reject would block</th></tr>"
                "<tr><th class=\"n\">legitimate</th><th class=\"n\">spoofed</th></tr></thead>"
                "<tbody>\n");
    for (size_t i = 0; i < ins->n_sorted; i++) {
        const dp_insight_domain *d = ins->sorted[i];
        dp_buf_puts(out, "<tr><td class=\"name\"><a href=\"#");
        domain_id(out, d, i);
        dp_buf_puts(out, "\">");
        text(out, d->name);
        dp_buf_puts(out, "</a></td><td>");
        verdict_badge(out, d);
        dp_buf_puts(out, "</td><td>");
        if (d->next_step)
            dp_buf_printf(out, "<b>p=%s</b>", d->next_step);
        else
            dp_buf_puts(out, "<span class=\"muted\">&#8212;</span>");
        dp_buf_puts(out, "</td><td class=\"name small\">");
        policy_short(out, &d->policy);
        dp_buf_puts(out, "</td><td class=\"n\">");
        dp_svg_count(out, d->messages);
        dp_buf_puts(out, "</td><td class=\"n\">");
        rate(out, dp_insight_ratio(d->classes[DP_CLASS_ALIGNED], d->messages));
        dp_buf_puts(out, "</td><td>");
        mix_bar(out, d->classes, d->messages, 0);
        dp_buf_puts(out, "</td><td class=\"n\">");
        dp_svg_count(out, d->would_block_legitimate);
        dp_buf_puts(out, "</td><td class=\"n\">");
        dp_svg_count(out, d->would_block_spoofed);
        dp_buf_puts(out, "</td></tr>\n");
    }
    if (!ins->n_sorted)
        dp_buf_puts(out, "<tr><td colspan=\"9\" class=\"muted\">No domain has rollups or reports in the period "
                         "or the previous one.</td></tr>\n");
    dp_buf_puts(out, "</tbody></table></div></section>\n");
}

static void alerts(dp_buf *out, const dp_insight *ins) {
    dp_buf_printf(out, "<section id=\"alerts\"><h2>Alerts (%zu)</h2>\n", ins->n_alerts);
    if (!ins->n_alerts) {
        dp_buf_puts(out, "<p class=\"muted\">No changes against the previous period worth an alert.</p>");
    } else {
        dp_buf_puts(out, "<ul class=\"alerts\">\n");
        for (size_t i = 0; i < ins->n_alerts; i++) {
            dp_buf_puts(out, "<li><span class=\"badge alert\">");
            text(out, ins->alerts[i].kind);
            dp_buf_puts(out, "</span> ");
            text(out, ins->alerts[i].text);
            dp_buf_puts(out, "</li>\n");
        }
        dp_buf_puts(out, "</ul>");
    }
    dp_buf_puts(out, "</section>\n");
}

/* ---- one domain ---- */

static void charts(dp_buf *out, const dp_insight *ins, const dp_insight_domain *d, size_t index) {
    size_t n = ins->days > 0 ? (size_t)ins->days : 0;
    char id[48];
    dp_buf_puts(out, "<div class=\"charts\"><figure><figcaption>Messages per day, by class</figcaption>");
    snprintf(id, sizeof id, "c%zu-volume", index);
    if (d->daily)
        dp_svg_stacked_bars(out, id, "Messages per day, by class", d->daily, n, ins->from, class_series, DP_CLASS_N);
    dp_buf_puts(out, "</figure><figure><figcaption>Pass rates per day</figcaption>");
    double *rates = n ? malloc(2 * n * sizeof *rates) : NULL;
    if (n && (!rates || !d->daily)) {
        if (!rates) out->failed = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            const uint64_t *c = d->daily + i * DP_CLASS_N;
            uint64_t all = c[0] + c[1] + c[2] + c[3], legit = c[0] + c[1] + c[2];
            rates[i] = dp_insight_ratio(c[DP_CLASS_ALIGNED], all);
            rates[n + i] = dp_insight_ratio(c[DP_CLASS_ALIGNED], legit);
        }
        static const dp_svg_series rate_series[2] = {{"DMARC pass", "#2f855a", 0},
                                                     {"aligned \xC3\xB7 legitimate", "#24508f", 1}};
        char ref_label[48];
        snprintf(ref_label, sizeof ref_label, "ready threshold %.1f%%", ins->opt.ready_threshold * 100);
        snprintf(id, sizeof id, "c%zu-rates", index);
        dp_svg_rate_lines(out, id, "Pass rates per day", rates, n, ins->from, rate_series, 2,
                          ins->opt.ready_threshold, ref_label);
    }
    free(rates);
    dp_buf_puts(out, "</figure></div>\n");
}

static void classes_table(dp_buf *out, const dp_insight_domain *d) {
    dp_buf_puts(out,
                "<div><h3>Classes</h3><table><thead><tr><th>Class</th><th class=\"n\">Messages</th>"
                "<th class=\"n\">Share</th><th class=\"n\">Previous period</th></tr></thead><tbody>");
    for (int c = 0; c < DP_CLASS_N; c++) {
        dp_buf_puts(out, "<tr><td>");
        badge(out, "c-", dp_classify_name((dp_class)c));
        dp_buf_puts(out, "</td><td class=\"n\">");
        dp_svg_count(out, d->classes[c]);
        dp_buf_puts(out, "</td><td class=\"n\">");
        rate(out, dp_insight_ratio(d->classes[c], d->messages));
        dp_buf_puts(out, "</td><td class=\"n\">");
        dp_svg_count(out, d->prev_classes[c]);
        dp_buf_puts(out, "</td></tr>");
    }
    dp_buf_puts(out, "<tr><th>all</th><th class=\"n\">");
    dp_svg_count(out, d->messages);
    dp_buf_puts(out, "</th><th></th><th class=\"n\">");
    dp_svg_count(out, d->prev_messages);
    dp_buf_puts(out, "</th></tr></tbody></table></div>\n");
}

static void dispositions_table(dp_buf *out, const dp_insight_domain *d) {
    static const char *const names[DP_DISP_N] = {"none", "quarantine", "reject"};
    dp_buf_puts(out,
                "<div><h3>Dispositions</h3><p class=\"small muted\">What receivers did with the mail under "
                "the policy they applied.</p><table><thead><tr><th>Disposition</th><th class=\"n\">Messages"
                "</th><th class=\"n\">Share</th></tr></thead><tbody>");
    for (int i = 0; i < DP_DISP_N; i++) {
        dp_buf_printf(out, "<tr><td>%s</td><td class=\"n\">", names[i]);
        dp_svg_count(out, d->dispositions[i]);
        dp_buf_puts(out, "</td><td class=\"n\">");
        rate(out, dp_insight_ratio(d->dispositions[i], d->messages));
        dp_buf_puts(out, "</td></tr>");
    }
    dp_buf_puts(out, "</tbody></table></div>\n");
}

static void policy_row(dp_buf *out, int64_t day, const dp_insight_policy *p, const char *note) {
    dp_buf_puts(out, "<tr><td class=\"mono\">");
    day_text(out, day);
    dp_buf_puts(out, "</td>");
    if (!p->known) {
        dp_buf_printf(out, "<td colspan=\"7\" class=\"muted\">no report carried a policy</td><td>%s</td></tr>",
                      note);
        return;
    }
    const char *const vals[] = {p->p, p->sp, p->np};
    for (size_t i = 0; i < 3; i++) {
        dp_buf_puts(out, "<td>");
        pval(out, vals[i]);
        dp_buf_puts(out, "</td>");
    }
    dp_buf_puts(out, "<td class=\"n\">");
    pct_val(out, p);
    dp_buf_puts(out, "</td>");
    const char *const more[] = {p->adkim, p->aspf, p->testing};
    for (size_t i = 0; i < 3; i++) {
        dp_buf_puts(out, "<td>");
        pval(out, more[i]);
        dp_buf_puts(out, "</td>");
    }
    dp_buf_printf(out, "<td class=\"small muted\">%s</td></tr>", note);
}

/* The published policy, then the days it changed over both periods, as
 * the JSON's policy_history: the policy in force at the previous period's
 * start, then each day on which a report showed another. */
static void policy_section(dp_buf *out, const dp_insight *ins, const dp_insight_domain *d) {
    dp_buf_puts(out, "<div><h3>Published policy</h3><p>");
    if (d->policy.known) {
        dp_buf_puts(out, "<span class=\"mono\">");
        policy_short(out, &d->policy);
        dp_buf_puts(out, "</span> <span class=\"muted small\">as of ");
        day_text(out, sec_day(d->policy.begin));
        dp_buf_puts(out, "</span>");
    } else {
        dp_buf_puts(out, "<span class=\"muted\">No report in the data carried the policy.</span>");
    }
    dp_buf_puts(out,
                "</p><table class=\"small\"><thead><tr><th>From</th><th>p</th><th>sp</th><th>np</th>"
                "<th class=\"n\">pct</th><th>adkim</th><th>aspf</th><th>t</th><th></th></tr></thead><tbody>");
    for (size_t i = 0; i < d->n_history; i++)
        policy_row(out, d->history[i].day, d->history[i].policy, d->history[i].day < ins->from ? "previous period" : "");
    if (!d->n_history) policy_row(out, ins->prev_from, &d->policy, "");
    dp_buf_puts(out, "</tbody></table></div>\n");
}

static void reporters_table(dp_buf *out, const dp_insight_domain *d) {
    dp_buf_puts(out, "<div><h3>Reporters</h3>");
    if (!d->n_sorted_reporters) {
        dp_buf_puts(out, "<p class=\"muted\">No report in the period.</p></div>\n");
        return;
    }
    dp_buf_puts(out,
                "<table><thead><tr><th>Reporter</th><th class=\"n\">Reports</th><th class=\"n\">Messages</th>"
                "</tr></thead><tbody>");
    for (size_t i = 0; i < d->n_sorted_reporters; i++) {
        const dp_insight_reporter *r = d->sorted_reporters[i];
        dp_buf_puts(out, "<tr><td>");
        text(out, r->name);
        dp_buf_puts(out, "</td><td class=\"n\">");
        dp_svg_count(out, r->reports);
        dp_buf_puts(out, "</td><td class=\"n\">");
        dp_svg_count(out, r->messages);
        dp_buf_puts(out, "</td></tr>");
    }
    dp_buf_puts(out, "</tbody></table></div>\n");
}

/* Days of the period without rollups, as ranges. */
static void missing_days(dp_buf *out, const dp_insight *ins, const dp_insight_domain *d) {
    dp_buf_printf(out, "<h3>Days without reports</h3><p>%llu of %lld days had reports",
                  (unsigned long long)d->days_with_reports, (long long)ins->days);
    int first = 1;
    for (int64_t i = 0; d->daily && i < ins->days;) {
        const uint64_t *c = d->daily + i * DP_CLASS_N;
        if (c[0] + c[1] + c[2] + c[3]) {
            i++;
            continue;
        }
        int64_t j = i;
        while (j + 1 < ins->days) {
            const uint64_t *n = d->daily + (j + 1) * DP_CLASS_N;
            if (n[0] + n[1] + n[2] + n[3]) break;
            j++;
        }
        dp_buf_puts(out, first ? ". Without: <span class=\"mono\">" : ", ");
        first = 0;
        day_text(out, ins->from + i);
        if (j > i) {
            dp_buf_puts(out, " to ");
            day_text(out, ins->from + j);
        }
        i = j + 1;
    }
    dp_buf_puts(out, first ? ".</p>\n" : "</span></p>\n");
}

static void pass_domains(dp_buf *out, char *const *names, size_t n) {
    if (!n) dp_buf_puts(out, "<span class=\"muted\">&#8212;</span>");
    for (size_t i = 0; i < n; i++) {
        if (i) dp_buf_puts(out, "<br>");
        text(out, names[i]);
    }
}

static void sources_table(dp_buf *out, const dp_insight_domain *d) {
    dp_buf_printf(out, "<h3>Sources (%zu)</h3>", d->n_sorted);
    if (!d->n_sorted) {
        dp_buf_puts(out, "<p class=\"muted\">No source sent mail in the period.</p>\n");
        return;
    }
    dp_buf_puts(out,
                "<div class=\"wrap\"><table class=\"small\"><thead><tr><th>Source IP</th><th>Service</th>"
                "<th>Class</th>"
                "<th class=\"n\">Messages</th><th class=\"n\">aligned</th><th class=\"n\">forwarded</th>"
                "<th class=\"n\">third_party</th><th class=\"n\">unauth.</th><th class=\"n\">Previous</th>"
                "<th>DKIM passes for</th><th>SPF passes for</th><th>Fix</th></tr></thead><tbody>\n");
    size_t shown = d->n_sorted < MAX_SOURCES ? d->n_sorted : MAX_SOURCES;
    for (size_t i = 0; i < shown; i++) {
        const dp_insight_source *s = d->sorted[i];
        dp_buf_puts(out, "<tr><td class=\"mono\" title=\"first seen ");
        day_text(out, sec_day(s->first_seen));
        dp_buf_puts(out, ", last seen ");
        day_text(out, sec_day(s->last_seen));
        dp_buf_puts(out, "\">");
        text(out, s->ip);
        dp_buf_puts(out, "</td><td");
        if (s->who.ptr) {
            /* the PTR, AS and country on hover: the column stays narrow */
            dp_buf_puts(out, " title=\"");
            text(out, s->who.ptr);
            if (s->who.as_org) {
                dp_buf_printf(out, ", AS%u ", (unsigned)s->who.asn);
                text(out, s->who.as_org);
            }
            if (s->who.country) {
                dp_buf_puts(out, ", ");
                text(out, s->who.country);
            }
            dp_buf_puts(out, "\"");
        }
        dp_buf_putc(out, '>');
        const char *label = dp_services_label(s);
        if (label) {
            text(out, label);
            if (s->who.service && s->who.service_type) {
                dp_buf_puts(out, " <span class=\"muted\">");
                text(out, s->who.service_type);
                dp_buf_puts(out, "</span>");
            }
        } else {
            dp_buf_puts(out, "<span class=\"muted\">&#8212;</span>");
        }
        dp_buf_puts(out, "</td><td>");
        badge(out, "c-", dp_classify_name(s->cls));
        dp_buf_puts(out, "</td><td class=\"n\">");
        dp_svg_count(out, s->messages);
        for (int c = 0; c < DP_CLASS_N; c++) {
            dp_buf_puts(out, "</td><td class=\"n\">");
            if (s->classes[c])
                dp_svg_count(out, s->classes[c]);
            else
                dp_buf_puts(out, "<span class=\"muted\">0</span>");
        }
        dp_buf_puts(out, "</td><td class=\"n\">");
        if (s->previous_messages)
            dp_svg_count(out, s->previous_messages);
        else
            dp_buf_puts(out, "<span class=\"badge new\">new</span>");
        dp_buf_puts(out, "</td><td>");
        pass_domains(out, s->dkim_pass, s->n_dkim_pass);
        dp_buf_puts(out, "</td><td>");
        pass_domains(out, s->spf_pass, s->n_spf_pass);
        dp_buf_puts(out, "</td><td>");
        const char *fix = dp_verdict_fix_hint(s);
        if (fix)
            text(out, fix);
        else
            dp_buf_puts(out, "<span class=\"muted\">&#8212;</span>");
        dp_buf_puts(out, "</td></tr>\n");
    }
    dp_buf_puts(out, "</tbody></table></div>\n");
    if (d->n_sorted > shown)
        dp_buf_printf(out,
                      "<p class=\"muted\">%zu more sources not shown; the JSON report "
                      "(<span class=\"mono\">--format json</span>) lists them all.</p>\n",
                      d->n_sorted - shown);
}

/* The domain's sources grouped by service, each with what it lacks. */
static void services_list(dp_buf *out, const dp_insight_domain *d) {
    if (!d->n_services) return;
    dp_buf_printf(out, "<h3>Services (%zu)</h3><ul class=\"services\">\n", d->n_services);
    for (size_t i = 0; i < d->n_services; i++) {
        dp_buf_puts(out, "<li>");
        text(out, d->services[i].text);
        dp_buf_puts(out, "</li>\n");
    }
    dp_buf_puts(out, "</ul>\n");
}

static void domain_section(dp_buf *out, const dp_insight *ins, const dp_insight_domain *d, size_t index) {
    const char *verdict = d->verdict ? d->verdict : "insufficient_data";
    dp_buf_puts(out, "<section class=\"domain\" id=\"");
    domain_id(out, d, index);
    dp_buf_puts(out, "\"><h2>");
    text(out, d->name);
    dp_buf_puts(out, " ");
    verdict_badge(out, d);
    dp_buf_printf(out, "</h2>\n<p class=\"reason r-%s\">", verdict);
    text(out, d->reason);
    size_t rlen = d->reason ? strlen(d->reason) : 0;
    if (rlen && d->reason[rlen - 1] != '.') dp_buf_putc(out, '.');
    if (d->next_step) dp_buf_printf(out, " Next step: <b>p=%s</b>.", d->next_step);
    dp_buf_puts(out, "</p>\n<div class=\"figs\">");
    fig_count(out, d->messages, "messages");
    fig_rate(out, dp_insight_ratio(d->classes[DP_CLASS_ALIGNED], d->messages), "DMARC pass");
    fig_rate(out, dp_insight_ratio(d->dkim_aligned, d->messages), "DKIM aligned");
    fig_rate(out, dp_insight_ratio(d->spf_aligned, d->messages), "SPF aligned");
    fig_rate(out, dp_insight_ratio(d->classes[DP_CLASS_ALIGNED], d->legitimate), "aligned &#247; legitimate");
    fig_count(out, d->would_block_legitimate, "reject would block: legitimate");
    fig_count(out, d->would_block_spoofed, "reject would block: spoofed");
    fig_rate(out, dp_insight_ratio(d->prev_classes[DP_CLASS_ALIGNED], d->prev_messages),
             "DMARC pass, previous period");
    dp_buf_puts(out, "</div>\n");
    charts(out, ins, d, index);
    dp_buf_puts(out, "<div class=\"grid\">");
    classes_table(out, d);
    dispositions_table(out, d);
    policy_section(out, ins, d);
    reporters_table(out, d);
    dp_buf_puts(out, "</div>\n");
    missing_days(out, ins, d);
    services_list(out, d);
    sources_table(out, d);
    dp_buf_puts(out, "<p class=\"small\"><a href=\"#summary\">Back to the domains</a></p></section>\n");
}

void dp_render_html(const dp_insight *ins, dp_buf *out, dp_insight_spill *spill) {
    page_head(out, ins);
    overview(out, ins);
    summary(out, ins);
    alerts(out, ins);
    for (size_t i = 0; i < ins->n_sorted; i++) {
        domain_section(out, ins, ins->sorted[i], i);
        dp_insight_spill_now(spill, out);
    }
    dp_buf_puts(out,
                "</main>\n<footer><p><b>aligned</b>: DMARC pass. <b>forwarded</b>: DMARC failed, the receiver "
                "saw forwarding. <b>third_party</b>: DMARC failed but DKIM or SPF passed for another domain: "
                "a real service that needs the domain's DKIM or return-path. <b>unauthenticated</b>: nothing "
                "passed, likely spoofing. <b>legitimate</b> = aligned + forwarded + third_party; reject would "
                "block forwarded and third_party mail (legitimate) and unauthenticated mail (spoofed).</p>"
                "<p>Made by dmarcpipe " DP_VERSION " <span class=\"mono\">report --format html</span>.</p>"
                "</footer>\n</body>\n</html>\n");
}
