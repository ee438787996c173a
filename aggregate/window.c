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
static __int128 floor_div(__int128 a, __int128 b) {
    __int128 q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Times far from either end of int64 (a report's, which ingest keeps in
 * 1990..2100): the windows and overlaps fit in 64 bits, and the split
 * takes the short way, without 128-bit divisions, which cost about 0.2% of
 * a run's instructions (callgrind, 100 bench reports). */
#define SAFE_TIME (INT64_C(1) << 61)

static int64_t floor_div64(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static size_t split64(int64_t begin, int64_t end, uint64_t count, int64_t width, dp_window_share *out, size_t max) {
    int64_t stop = end > begin ? end : begin + 1; /* [begin, stop) */
    uint64_t length = (uint64_t)(stop - begin);
    int64_t first = floor_div64(begin, width) * width;
    int64_t last = floor_div64(stop - 1, width) * width;
    uint64_t windows = (uint64_t)(last - first) / (uint64_t)width + 1;
    if (windows > max) return windows > SIZE_MAX ? SIZE_MAX : (size_t)windows;
    size_t n = (size_t)windows;
    uint64_t cum = 0, given = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t w0 = first + (int64_t)i * width, w1 = w0 + width;
        int64_t lo = w0 > begin ? w0 : begin, hi = w1 < stop ? w1 : stop;
        cum += (uint64_t)(hi - lo);
        uint64_t upto = (uint64_t)(((unsigned __int128)count * cum) / length);
        out[i].window_start = w0;
        out[i].count = upto - given;
        given = upto;
    }
    return n;
}

/* Otherwise every sum and product below is taken in 128 bits, so that any
 * int64 range is safe, not only the sane ones ingest lets through: the
 * windows are counted, and their shares sum to `count`, whatever the
 * input.  Both ways share the rounding, described below. */
size_t dp_window_split(int64_t begin, int64_t end, uint64_t count, int64_t width,
                       dp_window_share *out, size_t max) {
    if (begin > -SAFE_TIME && begin < SAFE_TIME && end > -SAFE_TIME && end < SAFE_TIME && width < SAFE_TIME)
        return split64(begin, end, count, width, out, max);
    __int128 b = begin, stop = end > begin ? (__int128)end : b + 1; /* [begin, stop) */
    __int128 length = stop - b;
    __int128 first = floor_div(b, width) * width;
    __int128 last = floor_div(stop - 1, width) * width;
    __int128 windows = (last - first) / width + 1;
    if (windows > (__int128)max) return windows > (__int128)SIZE_MAX ? SIZE_MAX : (size_t)windows;
    size_t n = (size_t)windows;
    /* A window's start must fit an int64: near INT64_MIN the first window
     * would begin below it.  No report has such a range (ingest refuses
     * dates outside 1990..2100); the caller is told there are no windows,
     * and must not count the record silently. */
    if (first < INT64_MIN) return 0;

    /* Cumulative rounding: window i gets floor(count * C_i / length) -
     * floor(count * C_(i-1) / length), where C_i is the overlap of windows
     * 0..i.  The sum telescopes to exactly `count`, each share is within
     * one message of its exact proportion, and the rounding is the same
     * every time: the remainders fall where the running total crosses a
     * whole message, never at random. */
    unsigned __int128 cum = 0;
    uint64_t given = 0;
    for (size_t i = 0; i < n; i++) {
        __int128 w0 = first + (__int128)i * width, w1 = w0 + width;
        __int128 lo = w0 > b ? w0 : b, hi = w1 < stop ? w1 : stop;
        cum += (unsigned __int128)(hi - lo);
        uint64_t upto = (uint64_t)(((unsigned __int128)count * cum) / (unsigned __int128)length);
        out[i].window_start = (int64_t)w0;
        out[i].count = upto - given;
        given = upto;
    }
    return n;
}
