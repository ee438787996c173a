/* follow — the long-running mode: `dmarcpipe run --follow`.
 *
 * Every --poll seconds the sources are asked what is ready now (a file
 * source walks its folder; a file is ready once it has looked the same on
 * two walks), or sooner when a source's wake descriptor fires (a Maildir's
 * inotify).  What is ready is run in cycles; a cycle is one
 * dp_conductor_run(), like a batch run, and so ends in a commit.  A cycle
 * starts once the oldest ready input has waited --flush-interval seconds,
 * or at once when --epoch-inputs inputs are ready: rollups leave at most
 * once per interval, and a flood is taken in bounded bites.  A stop
 * request (SIGTERM, ^C) ends the loop after the cycle under way, which
 * takes no new input after it and ends its epoch cleanly.
 *
 * Memory: the inputs ready now, and since when each has been ready, by
 * name (a jansson object: a string-keyed hash table already at hand).
 * After each cycle the state's identities are dropped from memory
 * (dp_dedup_forget_persisted): LMDB still answers for them, and a process
 * that runs for months must not grow with every report it has seen.
 */
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

#include "dp_clock.h"
#include "run.h"

/* Sleeps `seconds`, waking early on a stop request, or when a source's
 * wake descriptor says something arrived (a Maildir's inotify). */
static void nap(double seconds, const volatile sig_atomic_t *stop, dp_source *const *sources, size_t n_sources) {
    struct pollfd fds[16];
    nfds_t n = 0;
    for (size_t i = 0; i < n_sources && n < sizeof fds / sizeof *fds; i++) {
        int fd = dp_source_wake_fd(sources[i]);
        if (fd >= 0) fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    for (double t = 0; t < seconds && !*stop; t += 0.1) {
        if (n > 0) {
            if (poll(fds, n, 100) > 0) return;
        } else {
            struct timespec ts = {0, 100000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* The cycle's event: what it took and counted. */
static void log_cycle(const dp_run_config *c, uint64_t cycle_no, size_t offered, const dp_run_stats *before,
                      const dp_run_stats *after) {
    const dp_engine_stats *b = &before->engine, *a = &after->engine;
    int epochs = dp_conductor_epoch_sink(c) != NULL;
    char tail[64] = "";
    if (epochs) snprintf(tail, sizeof tail, "; %llu epoch(s) committed", (unsigned long long)(after->epochs - before->epochs));
    dp_log_info(c->engine.log, "follow",
                DP_LOG_FIELDS(DP_LOG_U64("cycle", cycle_no), DP_LOG_U64("inputs", a->inputs - b->inputs),
                              DP_LOG_U64("inputs_offered", offered),
                              DP_LOG_U64("inputs_rejected", a->inputs_rejected - b->inputs_rejected),
                              DP_LOG_U64("reports_accepted", a->reports - b->reports),
                              DP_LOG_U64("duplicates", a->duplicates - b->duplicates),
                              DP_LOG_U64("messages", a->messages - b->messages),
                              DP_LOG_U64("rollups", a->rollups - b->rollups),
                              epochs ? DP_LOG_U64("epochs", after->epochs - before->epochs) : DP_LOG_END),
                "dmarcpipe run: cycle %llu: %llu of %zu input(s) (%llu rejected); %llu report(s) accepted, "
                "%llu duplicate; %llu messages; %llu rollups%s",
                (unsigned long long)cycle_no, (unsigned long long)(a->inputs - b->inputs), offered,
                (unsigned long long)(a->inputs_rejected - b->inputs_rejected),
                (unsigned long long)(a->reports - b->reports), (unsigned long long)(a->duplicates - b->duplicates),
                (unsigned long long)(a->messages - b->messages), (unsigned long long)(a->rollups - b->rollups), tail);
}

int dp_follow_run(const dp_run_config *c, const dp_follow_config *f, dp_source *const *sources, size_t n_sources,
                  dp_run_stats *st, dp_error *err) {
    static const volatile sig_atomic_t never = 0;
    const volatile sig_atomic_t *stop = c->stop ? c->stop : &never;
    json_t *ready_since = json_object();
    int rc = ready_since ? 0 : dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    while (rc == 0 && !*stop) {
        dp_metrics_heartbeat(c->engine.metrics); /* each poll: the follower is alive */
        double now = dp_clock_seconds();
        dp_input_list ready = {0};
        for (size_t i = 0; rc == 0 && i < n_sources; i++) rc = dp_source_next(sources[i], &ready, err);
        if (rc != 0) {
            dp_input_list_free(&ready);
            break;
        }
        /* how long the inputs ready now have been ready */
        json_t *since = json_object();
        double oldest = now;
        for (size_t i = 0; since && i < ready.n; i++) {
            json_t *t = json_object_get(ready_since, ready.v[i]->name);
            double at = t ? json_real_value(t) : now;
            if (at < oldest) oldest = at;
            json_object_set_new_nocheck(since, ready.v[i]->name, json_real(at));
        }
        if (!since) {
            dp_input_list_free(&ready);
            rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
            break;
        }
        json_decref(ready_since);
        ready_since = since;

        size_t take = ready.n < f->cycle_inputs ? ready.n : f->cycle_inputs;
        int due = take > 0 && (f->flush_interval <= 0 || now - oldest >= f->flush_interval || ready.n >= f->cycle_inputs);
        if (due) {
            dp_run_stats before = *st;
            st->cycles++;
            if (dp_conductor_run(c, ready.v, take, st, err) != 0) rc = -1;
            log_cycle(c, st->cycles, take, &before, st);
            /* the state holds what this cycle counted: memory need not */
            dp_dedup_forget_persisted(c->engine.dedup);
            for (size_t i = 0; i < take; i++) json_object_del(ready_since, ready.v[i]->name);
        }
        dp_input_list_free(&ready);
        /* a flood goes on at once; otherwise wait for the next poll */
        if (rc == 0 && !(due && take == f->cycle_inputs)) nap(f->poll_seconds, stop, sources, n_sources);
        if (*stop) dp_metrics_set_ready(c->engine.metrics, 0); /* /readyz: stopping */
    }
    json_decref(ready_since);
    return rc;
}
