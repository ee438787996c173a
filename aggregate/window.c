/* window — spreading a record's count over UTC windows; see aggregate.h.
 *
 * Reports that span more than a day are common (multi-day ranges, ranges
 * that start at 22:00), and users expect a daily chart to show the mail on
 * the days it was sent, as far as the report lets anyone know: in
 * proportion to the overlap.  Totals must stay exact, because they are what
 * a team shows its regulator, so the shares are computed in integers, by
 * cumulative rounding, with 128-bit products (count * overlap can exceed
 * 64 bits).
 */
#include "aggregate.h"

/* floor(a / b) for b > 0, correct for negative a (times before 1970). */
static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

size_t dp_window_split(int64_t begin, int64_t end, uint64_t count, int64_t width,
                       dp_window_share *out, size_t max) {
    if (begin == INT64_MAX) begin--; /* keep begin + 1 representable */
    int64_t stop = end > begin ? end : begin + 1; /* [begin, stop) */
    uint64_t length = (uint64_t)stop - (uint64_t)begin;
    int64_t first = floor_div(begin, width) * width;
    int64_t last = floor_div(stop - 1, width) * width;
    /* 128-bit, so absurd ranges give a large count instead of overflowing */
    __int128 windows = ((__int128)last - first) / width + 1;
    if (windows > (__int128)max) return windows > (__int128)SIZE_MAX ? SIZE_MAX : (size_t)windows;
    size_t n = (size_t)windows;

    /* Cumulative rounding: window i gets floor(count * C_i / length) -
     * floor(count * C_(i-1) / length), where C_i is the overlap of windows
     * 0..i.  The sum telescopes to exactly `count`, each share is within
     * one message of its exact proportion, and the rounding is the same
     * every time: the remainders fall where the running total crosses a
     * whole message, never at random. */
    uint64_t cum = 0, given = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t w0 = first + (int64_t)i * width, w1 = w0 + width;
        int64_t lo = w0 > begin ? w0 : begin, hi = w1 < stop ? w1 : stop;
        cum += (uint64_t)hi - (uint64_t)lo;
        uint64_t upto = (uint64_t)(((unsigned __int128)count * cum) / length);
        out[i].window_start = w0;
        out[i].count = upto - given;
        given = upto;
    }
    return n;
}
