/* dp_clock — see dp_clock.h. */
#include "dp_clock.h"

#include <time.h>

double dp_clock_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
