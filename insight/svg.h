/* svg.h — the HTML report's charts, drawn as inline SVG, and the escaping
 * every string from the data goes through on its way into the page.
 *
 * Internal to insight/: render_html.c is the only caller.  The charts are
 * plain SVG elements written into a dp_buf, with no script and no
 * reference outside the page, so the report opens offline and in mail
 * clients' viewers.  Each chart carries a <title> and a <desc> (what a
 * screen reader says), a legend in words next to its colours, and a
 * tooltip (<title>) per day.
 */
#ifndef DP_SVG_H
#define DP_SVG_H

#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"

/* One series of a chart: its name in the legend and its colour. */
typedef struct dp_svg_series {
    const char *name;
    const char *color;  /* a CSS colour, from the program, never from data */
    int dashed;         /* drawn dashed too, so it is told apart without colour */
} dp_svg_series;

/* s written as HTML/XML text, safe in element text and in quoted
 * attribute values alike: & < > " ' become references, control bytes and
 * bytes that are not UTF-8 become U+FFFD.  NULL writes nothing. */
void dp_svg_escape(dp_buf *out, const char *s);

/* A number with thousands separators: 1234567 -> "1,234,567". */
void dp_svg_count(dp_buf *out, uint64_t v);

/* Daily stacked bars: n_days bars from day from_day, bar i made of
 * values[i * n_series + s] for each series s.  `id` makes the chart's
 * element ids unique in the page (program text: letters, digits, '-'). */
void dp_svg_stacked_bars(dp_buf *out, const char *id, const char *title, const uint64_t *values,
                         size_t n_days, int64_t from_day, const dp_svg_series *series, size_t n_series);

/* Daily rates as lines: values[s * n_days + i] in [0, 1], or < 0 where
 * the day has none (the line breaks there).  When ref >= 0, a dashed
 * reference line at ref, labelled ref_label. */
void dp_svg_rate_lines(dp_buf *out, const char *id, const char *title, const double *values, size_t n_days,
                       int64_t from_day, const dp_svg_series *series, size_t n_series, double ref,
                       const char *ref_label);

#endif
