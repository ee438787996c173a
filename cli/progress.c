/* progress — the progress line of a batch run on a terminal.
 *
 * A thread of its own reads the run's live figures (dp_run_progress: the
 * listing's totals, and what the engine's workers have read, added as
 * each input ends) four times a second and redraws one line on stderr:
 *
 *   1234/5000 inputs (2 rejected)  12.3/45.6 MB  81,234 records/s  ETA 0:42
 *
 * Totals the listing did not know (a mailbox's messages have no size
 * until fetched) are left out rather than guessed; the ETA then goes by
 * inputs.  The line is cut to the terminal's width, so it never wraps,
 * and cleared before the summary.  It goes only to a terminal (unless
 * forced): a log file or a pipe gets nothing of it.
 */
#include "progress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "dp_clock.h"

struct dp_progress {
    const dp_run_progress *p;
    pthread_t th;
    _Atomic int stop;
    double started;
    int drawn;
};

#define TICK_NS 250000000L

static uint64_t get(const _Atomic uint64_t *v) { return atomic_load_explicit(v, memory_order_relaxed); }

static void fmt_duration(char *out, size_t cap, double s) {
    if (s < 0 || s > 359999) {
        snprintf(out, cap, "--:--");
        return;
    }
    unsigned t = (unsigned)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, cap, "%u:%02u", t / 60, t % 60);
}

/* One line, from the figures now. */
static void compose(const dp_progress *pg, char *line, size_t cap) {
    const dp_run_progress *p = pg->p;
    uint64_t listed = get(&p->listed), done = get(&p->done), rej = get(&p->rejected);
    uint64_t total_bytes = get(&p->listed_bytes), unsized = get(&p->unsized), bytes = get(&p->done_bytes);
    uint64_t records = get(&p->records);
    if (done > listed) done = listed; /* an epoch run again reads its inputs again */
    double elapsed = dp_clock_seconds() - pg->started;
    size_t at = 0;
    at += (size_t)snprintf(line + at, cap - at, "%llu/%llu inputs", (unsigned long long)done,
                           (unsigned long long)listed);
    if (rej && at < cap) at += (size_t)snprintf(line + at, cap - at, " (%llu rejected)", (unsigned long long)rej);
    if (at < cap) {
        if (unsized == 0 && listed) {
            uint64_t shown = bytes < total_bytes ? bytes : total_bytes;
            at += (size_t)snprintf(line + at, cap - at, "  %.1f/%.1f MB", shown / 1e6, total_bytes / 1e6);
        } else {
            at += (size_t)snprintf(line + at, cap - at, "  %.1f MB", bytes / 1e6);
        }
    }
    if (at < cap)
        at += (size_t)snprintf(line + at, cap - at, "  %.0f records/s", elapsed > 0 ? records / elapsed : 0.0);
    /* the ETA goes by bytes where every size is known (a big report takes
     * longer than a small one), by inputs otherwise */
    double frac = unsized == 0 && total_bytes ? (double)bytes / (double)total_bytes
                  : listed                    ? (double)done / (double)listed
                                              : 0;
    char eta[32];
    fmt_duration(eta, sizeof eta, frac > 0.001 && frac < 1 ? elapsed * (1 - frac) / frac : frac >= 1 ? 0 : -1);
    if (at < cap) snprintf(line + at, cap - at, "  ETA %s", eta);
}

static size_t columns(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) return ws.ws_col;
    return 80;
}

static void draw(dp_progress *pg) {
    char line[256];
    compose(pg, line, sizeof line);
    size_t w = columns() - 1; /* the last column would wrap on some terminals */
    if (strlen(line) > w) line[w] = '\0';
    /* \r, the line, and erase what a longer line left */
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    pg->drawn = 1;
}

static void *progress_main(void *arg) {
    dp_progress *pg = arg;
    while (!atomic_load_explicit(&pg->stop, memory_order_acquire)) {
        draw(pg);
        struct timespec ts = {0, TICK_NS};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

dp_progress *dp_progress_start(const dp_run_progress *p, const char *mode) {
    if (!p || (mode && strcmp(mode, "off") == 0)) return NULL;
    int forced = mode && strcmp(mode, "on") == 0;
    if (!forced) {
        const char *term = getenv("TERM");
        if (!isatty(STDERR_FILENO) || (term && strcmp(term, "dumb") == 0)) return NULL;
    }
    dp_progress *pg = calloc(1, sizeof *pg);
    if (!pg) return NULL;
    pg->p = p;
    pg->started = dp_clock_seconds();
    atomic_init(&pg->stop, 0);
    if (pthread_create(&pg->th, NULL, progress_main, pg) != 0) {
        free(pg);
        return NULL;
    }
    return pg;
}

void dp_progress_end(dp_progress *pg) {
    if (!pg) return;
    atomic_store_explicit(&pg->stop, 1, memory_order_release);
    pthread_join(pg->th, NULL);
    if (pg->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    free(pg);
}
