/* dp_clock — seconds on the monotonic clock, for durations and deadlines.
 *
 * Immune to the wall clock being set; the origin is arbitrary, so only
 * differences mean anything. */
#ifndef DP_CLOCK_H
#define DP_CLOCK_H

double dp_clock_seconds(void);

#endif
