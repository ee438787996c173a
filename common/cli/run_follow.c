/* run_follow — what becomes of an input once it counts, and
 * `dmarcpipe run --follow`, the long-running mode.
 *
 * Acknowledging (dp_acker).  An input is acknowledged once what it holds is
 * durable: its epoch committed (Kafka) or the sinks flushed (files), and
 * the state recorded its reports.  With --done DIR it is then moved there,
 * at its path relative to its SOURCE, never over an earlier file of the
 * same name; a spool folder so holds only what is still to be counted.
 * Without --done it stays where it is: the state knows it (Kafka), and a
 * follower remembers it for the rest of the process.
 *
 * Following (dp_follow_run).  The SOURCEs are walked again every --poll
 * seconds, as a batch run walks them once.  Polling, not inotify: it works
 * alike on local disks, NFS and the volumes a container is given, and
 * rollups leave at most once per --flush-interval anyway, so a second of
 * polling delay costs nothing.
 *   - A file is taken once it has looked the same (size and mtime) on two
 *     scans in a row: one still being written waits.  Names that start
 *     with a dot (a writer's temporary name, by convention) are never read.
 *   - Files are run in cycles.  A cycle is one batch run, like `dmarcpipe
 *     run` without --follow, over the files that are ready, and ends in a
 *     flush.  It starts once the oldest ready file has waited
 *     --flush-interval seconds, or at once when --epoch-inputs files are
 *     ready: rollups leave at most once per interval, and a flood is taken
 *     in bounded bites.
 *   - SIGTERM or SIGINT ends the loop after the cycle under way; that
 *     cycle takes no new input after the signal and ends its epoch cleanly.
 *
 * Memory: per file under the SOURCEs, its path, size and mtime from the
 * last scan, and (without --done) the keys of those acknowledged; with
 * --done the spool empties, and these with it.  The maps are jansson
 * objects: string-keyed hash tables that are already a dependency.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "dp_buf.h"
#include "dp_clock.h"
#include "dp_fs.h"

/* ---- acknowledging ------------------------------------------------------------ */

/* The path of `input` below the SOURCE it was found under: what follows
 * the longest root that is a directory prefix of it, or the base name of
 * a SOURCE that is the file itself. */
static const char *relative_path(const dp_acker *a, const char *input) {
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < a->n_roots; i++) {
        const char *r = a->roots[i];
        size_t n = strlen(r);
        while (n > 1 && r[n - 1] == '/') n--;
        if (strcmp(input, r) == 0) {
            const char *slash = strrchr(r, '/');
            return slash && slash[1] ? slash + 1 : r;
        }
        if (n > best_len && strncmp(input, r, n) == 0 && input[n] == '/') {
            best = input + n + 1;
            best_len = n;
        }
    }
    if (best) return best;
    const char *slash = strrchr(input, '/');
    return slash ? slash + 1 : input;
}

static void remember(dp_acker *a, const char *input) {
    if (!a->keys) return;
    char *key = dp_input_key(input);
    if (key) json_object_set_new_nocheck(a->keys, key, json_true());
    free(key);
}

void dp_acker_ack(void *ctx, char *const *inputs, size_t n) {
    dp_acker *a = ctx;
    for (size_t i = 0; i < n; i++) {
        if (!a->done_dir) {
            remember(a, inputs[i]);
            continue;
        }
        dp_buf dst = DP_BUF_INIT;
        dp_buf_printf(&dst, "%s/%s", a->done_dir, relative_path(a, inputs[i]));
        if (dst.failed || dp_move_file(inputs[i], dst.data, NULL) != 0) {
            if (!dst.failed && errno == ENOENT) { /* gone already: nothing to move */
                dp_buf_free(&dst);
                continue;
            }
            fprintf(stderr, "dmarcpipe run: %s: counted, but cannot be moved to %s: %s\n", inputs[i], a->done_dir,
                    dst.failed ? "out of memory" : strerror(errno));
            a->move_failures++;
            remember(a, inputs[i]); /* not again in this process */
        } else {
            a->moved++;
        }
        dp_buf_free(&dst);
    }
}

/* ---- following ---------------------------------------------------------------- */

typedef struct scan {
    json_t *sig;         /* path -> "size:mtime" seen by this scan */
    char **ready;        /* paths that look as on the scan before, in walk order */
    size_t n_ready, cap_ready;
    const json_t *prev;  /* the previous scan's sig */
    const json_t *acked; /* keys of acknowledged inputs still in place */
    json_t *acked_seen;  /* ... those this scan met (the rest are gone) */
    int failed;
} scan;

static int scan_file(const char *path, void *ctx) {
    scan *s = ctx;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0; /* gone, or not a file */
    char sig[64];
    snprintf(sig, sizeof sig, "%lld:%lld.%09ld", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             (long)st.st_mtim.tv_nsec);
    if (json_object_size(s->acked)) {
        char *key = dp_input_key(path);
        int acked = key && json_object_get(s->acked, key);
        if (acked) json_object_set_new_nocheck(s->acked_seen, key, json_true());
        free(key);
        if (acked) return 0;
    }
    if (json_object_set_new_nocheck(s->sig, path, json_string_nocheck(sig)) != 0) {
        s->failed = 1;
        return -1;
    }
    const char *before = json_string_value(json_object_get(s->prev, path));
    if (!before || strcmp(before, sig) != 0) return 0; /* new, or still changing */
    if (s->n_ready == s->cap_ready) {
        size_t cap = s->cap_ready ? 2 * s->cap_ready : 256;
        char **r = realloc(s->ready, cap * sizeof *r);
        if (!r) {
            s->failed = 1;
            return -1;
        }
        s->ready = r;
        s->cap_ready = cap;
    }
    if (!(s->ready[s->n_ready] = strdup(path))) {
        s->failed = 1;
        return -1;
    }
    s->n_ready++;
    return 0;
}

static void free_ready(scan *s) {
    for (size_t i = 0; i < s->n_ready; i++) free(s->ready[i]);
    free(s->ready);
    s->ready = NULL;
    s->n_ready = s->cap_ready = 0;
}

/* Sleeps `seconds`, waking early on a stop request. */
static void nap(double seconds, const volatile sig_atomic_t *stop) {
    for (double t = 0; t < seconds && !*stop; t += 0.1) {
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
}

int dp_follow_run(const dp_follow_options *o, dp_acker *acker, dp_error *err) {
    json_t *prev = json_object(), *ready_since = json_object();
    int own_keys = !acker->keys;
    if (own_keys) acker->keys = json_object();
    int rc = 0;
    if (!prev || !ready_since || !acker->keys) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    uint64_t cycle_no = 0;
    while (rc == 0 && !*o->stop) {
        double now = dp_clock_seconds();
        scan s = {.sig = json_object(), .prev = prev, .acked = acker->keys, .acked_seen = json_object()};
        if (!s.sig || !s.acked_seen) s.failed = 1;
        for (size_t i = 0; !s.failed && i < o->n_sources; i++)
            dp_cli_walk_skip(o->sources[i], o->skip, scan_file, &s);
        if (s.failed) {
            free_ready(&s);
            json_decref(s.sig);
            json_decref(s.acked_seen);
            rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory scanning the sources");
            break;
        }
        /* what the next scan compares with; acknowledged keys of files
         * that are gone are forgotten */
        json_decref(prev);
        prev = s.sig;
        json_object_clear(acker->keys);
        json_object_update(acker->keys, s.acked_seen);
        json_decref(s.acked_seen);

        /* how long the files ready now have been ready */
        json_t *since = json_object();
        double oldest = now;
        for (size_t i = 0; since && i < s.n_ready; i++) {
            json_t *t = json_object_get(ready_since, s.ready[i]);
            double at = t ? json_real_value(t) : now;
            if (at < oldest) oldest = at;
            json_object_set_new_nocheck(since, s.ready[i], json_real(at));
        }
        if (!since) {
            free_ready(&s);
            rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
            break;
        }
        json_decref(ready_since);
        ready_since = since;

        size_t take = s.n_ready < o->cycle_inputs ? s.n_ready : o->cycle_inputs;
        int due = take > 0 && (o->flush_interval <= 0 || now - oldest >= o->flush_interval || s.n_ready >= o->cycle_inputs);
        if (due) {
            cycle_no++;
            if (o->cycle(o->cycle_ctx, cycle_no, s.ready, take, err) != 0) rc = -1;
            for (size_t i = 0; i < take; i++) json_object_del(ready_since, s.ready[i]);
        }
        free_ready(&s);
        /* a flood goes on at once; otherwise wait for the next scan */
        if (rc == 0 && !(due && take == o->cycle_inputs)) nap(o->poll_seconds, o->stop);
    }
    json_decref(prev);
    json_decref(ready_since);
    if (own_keys) {
        json_decref(acker->keys);
        acker->keys = NULL;
    }
    return rc;
}
