/* svg — the HTML report's charts as inline SVG, and HTML escaping.
 *
 * The page must open offline, anywhere, and show strangers' data safely,
 * so the charts are drawn here as static SVG elements (no script, no
 * external reference, no library) and every string that reaches the page
 * goes through dp_svg_escape.  Reports are written by whoever sends them:
 * a reporter's org_name or a policy domain can hold markup, so text is
 * escaped for element text and quoted attributes alike, and bytes that
 * are not UTF-8 or are control characters are replaced, so nothing can
 * change how the parser reads the rest of the page.
 *
 * Charts are drawn in a fixed viewBox and scale with the page.  Figures
 * are integers or fixed-point text; no libm, no locale.
 */
#include "svg.h"

#include <string.h>

#include "insight.h"

#define W 600.0   /* the viewBox: width ... */
#define H 240.0   /* ... and height */
#define LEFT 54.0 /* the plot's box within it */
#define RIGHT (W - 14.0)
#define TOP 34.0
#define BOTTOM (H - 28.0)
#define MAX_X_LABELS 6
#define MAX_POINTS 62 /* days up to which a line chart marks each day with a dot */

/* ---- escaping ---- */

/* The length of the valid UTF-8 sequence at p, or 0.  Reads past p[0]
 * only while the bytes are continuation bytes, so never past the NUL. */
static size_t utf8_len(const unsigned char *p) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] > 0x9F) return 0; /* a surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] > 0x8F) return 0; /* past U+10FFFF */
        return 4;
    }
    return 0;
}

void dp_svg_escape(dp_buf *out, const char *s) {
    if (!s) return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        /* Copy plain printable ASCII in one piece. */
        while (*p >= 0x20 && *p < 0x7F && *p != '&' && *p != '<' && *p != '>' && *p != '"' && *p != '\'') p++;
        if (p > run) dp_buf_append(out, run, (size_t)(p - run));
        if (!*p) break;
        switch (*p) {
        case '&': dp_buf_puts(out, "&amp;"); p++; continue;
        case '<': dp_buf_puts(out, "&lt;"); p++; continue;
        case '>': dp_buf_puts(out, "&gt;"); p++; continue;
        case '"': dp_buf_puts(out, "&quot;"); p++; continue;
        case '\'': dp_buf_puts(out, "&#39;"); p++; continue;
        case '\t': case '\n': dp_buf_putc(out, ' '); p++; continue;
        default: break;
        }
        size_t n = *p < 0x80 ? 0 : utf8_len(p);
        /* C1 controls (U+0080..U+009F) are as invisible as C0 ones. */
        if (n == 2 && p[0] == 0xC2 && p[1] < 0xA0) n = 0;
        if (n == 0) {
            dp_buf_puts(out, "\xEF\xBF\xBD"); /* U+FFFD */
            p++;
        } else {
            dp_buf_append(out, p, n);
            p += n;
        }
    }
}

void dp_svg_count(dp_buf *out, uint64_t v) {
    char digits[DP_BUF_INT_MAX + 1];
    size_t n = (size_t)(dp_buf_raw_u64(digits, v) - digits);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) dp_buf_putc(out, ',');
        dp_buf_putc(out, digits[i]);
    }
}

/* ---- axes ---- */

/* A short axis figure: 1500 -> "1.5k", 2000000 -> "2M". */
static void axis_count(dp_buf *out, uint64_t v) {
    static const struct { uint64_t unit; const char *suffix; } units[] = {
        {1000000000000ULL, "T"}, {1000000000ULL, "G"}, {1000000ULL, "M"}, {1000ULL, "k"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        uint64_t u = units[i].unit;
        if (v < u) continue;
        dp_buf_u64(out, v / u);
        uint64_t tenth = v % u / (u / 10);
        if (tenth) dp_buf_printf(out, ".%u", (unsigned)tenth);
        dp_buf_puts(out, units[i].suffix);
        return;
    }
    dp_buf_u64(out, v);
}

/* The step of a count axis: 1, 2 or 5 times a power of ten, the least
 * that covers max in at most 4 steps. */
static uint64_t nice_step(uint64_t max) {
    uint64_t p = 1;
    for (;;) {
        static const uint64_t mult[] = {1, 2, 5};
        for (size_t i = 0; i < 3; i++)
            if (mult[i] * p >= (max + 3) / 4) return mult[i] * p;
        if (p > UINT64_MAX / 100) return UINT64_MAX / 4;
        p *= 10;
    }
}

static double day_x(size_t i, size_t n) { return LEFT + (RIGHT - LEFT) * ((double)i + 0.5) / (double)n; }

/* Dates under the plot: at most MAX_X_LABELS, evenly spaced. */
static void x_labels(dp_buf *out, size_t n, int64_t from_day) {
    if (n == 0) return;
    size_t step = (n + MAX_X_LABELS - 1) / MAX_X_LABELS;
    dp_buf_puts(out, "<g font-size=\"11\" fill=\"#555\" text-anchor=\"middle\">");
    for (size_t i = 0; i < n; i += step) {
        char day[11];
        dp_insight_format_day(from_day + (int64_t)i, day);
        dp_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>", day_x(i, n), BOTTOM + 16, day);
    }
    dp_buf_puts(out, "</g>");
}

/* The opening tag, the title and the description a screen reader reads.
 * No xmlns: the HTML parser puts <svg> in the SVG namespace by itself, and
 * the page then holds no URL at all. */
static void open_chart(dp_buf *out, const char *id, const char *title, const char *desc_text) {
    dp_buf_printf(out,
                  "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-labelledby=\"%s-t\" "
                  "aria-describedby=\"%s-d\">",
                  W, H, id, id);
    dp_buf_printf(out, "<title id=\"%s-t\">", id);
    dp_svg_escape(out, title);
    dp_buf_printf(out, "</title><desc id=\"%s-d\">", id);
    dp_svg_escape(out, desc_text);
    dp_buf_puts(out, "</desc>");
}

/* The legend along the top: a swatch (or a line sample) and the name. */
static void legend(dp_buf *out, const dp_svg_series *series, size_t n_series, int lines) {
    double x = LEFT;
    dp_buf_puts(out, "<g font-size=\"12\" fill=\"#333\">");
    for (size_t s = 0; s < n_series; s++) {
        if (lines)
            dp_buf_printf(out,
                          "<line x1=\"%.1f\" y1=\"14\" x2=\"%.1f\" y2=\"14\" stroke=\"%s\" stroke-width=\"2.5\"%s/>",
                          x, x + 18, series[s].color, series[s].dashed ? " stroke-dasharray=\"5 3\"" : "");
        else
            dp_buf_printf(out, "<rect x=\"%.1f\" y=\"8\" width=\"12\" height=\"12\" fill=\"%s\"/>", x,
                          series[s].color);
        double w = lines ? 22 : 16;
        dp_buf_printf(out, "<text x=\"%.1f\" y=\"18\">", x + w);
        dp_svg_escape(out, series[s].name);
        dp_buf_puts(out, "</text>");
        x += w + 6.6 * (double)strlen(series[s].name) + 16;
    }
    dp_buf_puts(out, "</g>");
}

static void no_data(dp_buf *out, const char *what) {
    dp_buf_printf(out,
                  "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" fill=\"#777\" text-anchor=\"middle\">%s</text>",
                  (LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2, what);
}

/* ---- stacked bars ---- */

void dp_svg_stacked_bars(dp_buf *out, const char *id, const char *title, const uint64_t *values,
                         size_t n_days, int64_t from_day, const dp_svg_series *series, size_t n_series) {
    uint64_t max = 0, sum = 0;
    size_t max_day = 0;
    for (size_t i = 0; i < n_days; i++) {
        uint64_t t = 0;
        for (size_t s = 0; s < n_series; s++) t += values[i * n_series + s];
        sum += t;
        if (t > max) max = t, max_day = i;
    }

    dp_buf desc = DP_BUF_INIT;
    char first[11], last[11], peak[11];
    dp_insight_format_day(from_day, first);
    dp_insight_format_day(from_day + (int64_t)(n_days ? n_days - 1 : 0), last);
    dp_insight_format_day(from_day + (int64_t)max_day, peak);
    dp_buf_printf(&desc, "Messages per day from %s to %s, stacked by class (", first, last);
    for (size_t s = 0; s < n_series; s++) dp_buf_printf(&desc, "%s%s", s ? ", " : "", series[s].name);
    dp_buf_puts(&desc, "). ");
    if (max) {
        dp_buf_puts(&desc, "Total ");
        dp_svg_count(&desc, sum);
        dp_buf_printf(&desc, "; the busiest day %s with ", peak);
        dp_svg_count(&desc, max);
        dp_buf_puts(&desc, ".");
    } else {
        dp_buf_puts(&desc, "No messages.");
    }
    open_chart(out, id, title, desc.failed ? "" : desc.data);
    dp_buf_free(&desc);
    legend(out, series, n_series, 0);

    uint64_t step = nice_step(max ? max : 1);
    uint64_t steps = max ? (max + step - 1) / step : 1;
    double ymax = (double)(step * steps), plot_h = BOTTOM - TOP;

    /* Grid lines with their figures, then the bars over them. */
    dp_buf_puts(out, "<g font-size=\"11\" fill=\"#555\" text-anchor=\"end\">");
    for (uint64_t t = 0; t <= steps; t++) {
        double y = BOTTOM - plot_h * (double)t / (double)steps;
        dp_buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>", LEFT, y, RIGHT,
                      y, t ? "#e4e4e4" : "#999");
        dp_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\">", LEFT - 6, y + 4);
        axis_count(out, step * t);
        dp_buf_puts(out, "</text>");
    }
    dp_buf_puts(out, "</g>");

    double bw = n_days ? (RIGHT - LEFT) / (double)n_days : 0;
    double gap = bw >= 4 ? bw * 0.18 : 0;
    /* Over a long period a day is narrower than a pixel: keep each bar
     * visible, letting neighbours overlap.  Over a short one, keep bars
     * bars, not blocks. */
    double bar_w = bw - gap < 1.5 ? 1.5 : bw - gap > 36 ? 36 : bw - gap;
    for (size_t i = 0; i < n_days; i++) {
        uint64_t t = 0;
        for (size_t s = 0; s < n_series; s++) t += values[i * n_series + s];
        if (!t) continue;
        char day[11];
        dp_insight_format_day(from_day + (int64_t)i, day);
        dp_buf_printf(out, "<g><title>%s: ", day);
        dp_svg_count(out, t);
        dp_buf_puts(out, " messages");
        for (size_t s = 0; s < n_series; s++) {
            dp_buf_printf(out, "%s%s ", s ? ", " : " (", series[s].name);
            dp_svg_count(out, values[i * n_series + s]);
        }
        dp_buf_puts(out, ")</title>");
        double y = BOTTOM, x = LEFT + bw * (double)i + (bw - bar_w) / 2;
        for (size_t s = 0; s < n_series; s++) {
            uint64_t v = values[i * n_series + s];
            if (!v) continue;
            double h = plot_h * (double)v / ymax;
            y -= h;
            dp_buf_printf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>", x, y,
                          bar_w, h, series[s].color);
        }
        dp_buf_puts(out, "</g>");
    }
    if (!max) no_data(out, "no messages in the period");
    x_labels(out, n_days, from_day);
    dp_buf_puts(out, "</svg>");
}

/* ---- rate lines ---- */

/* A rate in tenths of a percent as text: 975 -> "97.5%". */
static void tenths_pct(dp_buf *out, unsigned tp) {
    dp_buf_printf(out, "%u", tp / 10);
    if (tp % 10) dp_buf_printf(out, ".%u", tp % 10);
    dp_buf_putc(out, '%');
}

void dp_svg_rate_lines(dp_buf *out, const char *id, const char *title, const double *values, size_t n_days,
                       int64_t from_day, const dp_svg_series *series, size_t n_series, double ref,
                       const char *ref_label) {
    /* The axis starts at the tenth below the lowest rate shown, so a
     * domain moving between 96% and 99% is not a flat line at the top. */
    double min = ref >= 0 ? ref : 1;
    size_t present = 0;
    for (size_t k = 0; k < n_series * n_days; k++)
        if (values[k] >= 0) {
            present++;
            if (values[k] < min) min = values[k];
        }
    unsigned lo = min <= 0 ? 0 : (unsigned)(min * 10); /* tenths of 1 */
    if (lo > 9) lo = 9;
    double lo_rate = lo / 10.0, plot_h = BOTTOM - TOP;

    dp_buf desc = DP_BUF_INIT;
    char first[11], last[11];
    dp_insight_format_day(from_day, first);
    dp_insight_format_day(from_day + (int64_t)(n_days ? n_days - 1 : 0), last);
    dp_buf_printf(&desc, "Daily rates from %s to %s, axis from %u%% to 100%%:", first, last, lo * 10);
    for (size_t s = 0; s < n_series; s++) {
        double smin = 2, smax = -1;
        for (size_t i = 0; i < n_days; i++) {
            double v = values[s * n_days + i];
            if (v < 0) continue;
            if (v < smin) smin = v;
            if (v > smax) smax = v;
        }
        dp_buf_printf(&desc, " %s", series[s].name);
        if (smax < 0)
            dp_buf_puts(&desc, " n/a;");
        else
            dp_buf_printf(&desc, " between %.1f%% and %.1f%%;", smin * 100, smax * 100);
    }
    if (ref >= 0) dp_buf_printf(&desc, " reference line at %.1f%%.", ref * 100);
    open_chart(out, id, title, desc.failed ? "" : desc.data);
    dp_buf_free(&desc);
    legend(out, series, n_series, 1);

    dp_buf_puts(out, "<g font-size=\"11\" fill=\"#555\" text-anchor=\"end\">");
    for (unsigned t = 0; t <= 4; t++) {
        double y = BOTTOM - plot_h * t / 4.0;
        dp_buf_printf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>", LEFT, y, RIGHT,
                      y, t ? "#e4e4e4" : "#999");
        dp_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\">", LEFT - 6, y + 4);
        tenths_pct(out, lo * 100 + (1000 - lo * 100) * t / 4);
        dp_buf_puts(out, "</text>");
    }
    dp_buf_puts(out, "</g>");

#define RATE_Y(v) (BOTTOM - plot_h * ((v) - lo_rate) / (1.0 - lo_rate))
    if (ref >= 0 && ref <= 1) {
        double y = RATE_Y(ref);
        dp_buf_printf(out,
                      "<line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\" stroke=\"#666\" "
                      "stroke-dasharray=\"2 3\"/><text x=\"%.1f\" y=\"%.2f\" font-size=\"11\" fill=\"#444\" "
                      "text-anchor=\"end\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">",
                      LEFT, y, RIGHT, y, RIGHT - 2, y + (ref > 0.5 ? 13 : -4));
        dp_svg_escape(out, ref_label);
        dp_buf_puts(out, "</text>");
    }

    for (size_t s = 0; s < n_series; s++) {
        const double *v = values + s * n_days;
        const char *dash = series[s].dashed ? " stroke-dasharray=\"6 3\"" : "";
        /* One path, broken where a day has no rate. */
        dp_buf_printf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" stroke-linejoin=\"round\"%s d=\"",
                      series[s].color, dash);
        int pen = 0;
        for (size_t i = 0; i < n_days; i++) {
            if (v[i] < 0) {
                pen = 0;
                continue;
            }
            dp_buf_printf(out, "%c%.2f %.2f", pen ? 'L' : 'M', day_x(i, n_days), RATE_Y(v[i]));
            pen = 1;
        }
        dp_buf_puts(out, "\"/>");
        /* Dots: on every day of a short period (with the day's figure as
         * a tooltip), else only where a day stands alone between gaps. */
        for (size_t i = 0; i < n_days; i++) {
            if (v[i] < 0) continue;
            int alone = (i == 0 || v[i - 1] < 0) && (i + 1 == n_days || v[i + 1] < 0);
            if (n_days > MAX_POINTS && !alone) continue;
            char day[11];
            dp_insight_format_day(from_day + (int64_t)i, day);
            dp_buf_printf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.6\" fill=\"%s\"><title>%s: ", day_x(i, n_days),
                          RATE_Y(v[i]), series[s].color, day);
            dp_svg_escape(out, series[s].name);
            dp_buf_printf(out, " %.1f%%</title></circle>", v[i] * 100);
        }
    }
#undef RATE_Y
    if (!present) no_data(out, "no messages in the period");
    x_labels(out, n_days, from_day);
    dp_buf_puts(out, "</svg>");
}
