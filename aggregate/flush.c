/* flush — rollups out of the shards' tables, into the sinks.
 *
 * Two kinds of flush:
 *   - a shard's own, while the run goes on, every --flush-interval and
 *     whenever its table passes --max-keys: the shard thread formats its
 *     table and empties it (partial rollups, which a warehouse adds up);
 *   - the final flush, once every thread of the run has been joined: see
 *     below.
 * A sink that formats text (files, Kafka) gets rollups formatted here, on
 * the flushing thread, into buffers of that thread's own, and takes them
 * in blocks: only the block write takes the sink's lock.
 *
 * With enrichment, each rollup carries what enrich/ knows of its source IP
 * at that moment (dp_enrich_read by the id the shard noted, or
 * dp_enrich_get by address: its cache, never the network), copied
 * into an arena of the flushing thread's own, emptied when the IP changes.
 * A lookup still out gives nulls now and the answer in a later flush.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_clock.h"
#include "dp_net.h"
#include "engine_internal.h"
#include "enrich.h"

#define BLOCK_BYTES (256u * 1024u)

/* Rollups ahead whose enrichment entry is fetched early: entries are read
 * at random, and a rollup's formatting hides the wait. */
#define ENRICH_AHEAD 8

/* Writes what was formatted into `out` (one buffer per sink, `lines`
 * rollups each) and empties it; 0 or -1 (recorded). */
static int write_blocks(engine *e, dp_buf *out, uint64_t lines) {
    const dp_engine_config *cfg = e->cfg;
    int rc = 0;
    for (size_t k = 0; k < cfg->n_sinks; k++) {
        if (!dp_sink_formats_text(cfg->sinks[k])) continue;
        dp_error err;
        if (out[k].failed) {
            dp_error_set(&err, DP_ERR_NOMEM, "out of memory formatting rollups");
            dp_engine_fail(e, &err);
            rc = -1;
        } else if (out[k].len && dp_sink_write_block(cfg->sinks[k], out[k].data, out[k].len, lines, &err) != 0) {
            dp_engine_fail(e, &err);
            rc = -1;
        }
        dp_buf_reset(&out[k]);
        out[k].failed = 0;
    }
    return rc;
}

/* Hands entries [begin, end) of a shard's table to the sinks, formatting
 * into `out` (one buffer per sink, owned by the calling thread).  Reads the
 * table and the interner only, so several threads may flush disjoint
 * ranges of one shard at once (the final flush does). */
static int flush_entries(engine *e, const shard *sh, size_t begin, size_t end, dp_buf *out, dp_buf *arena) {
    const dp_engine_config *cfg = e->cfg;
    const dp_intern *in = &sh->strings;
    int rc = 0;
    uint64_t pending_lines = 0; /* formatted, not yet written */
    dp_source_info info;
    memset(&info, 0, sizeof info);
    uint8_t info_ip[16];
    uint8_t info_family = 0; /* whose `info` is (0: nobody's) */
    for (size_t i = begin; i < end; i++) {
        const dp_rollup_entry *en = &sh->main.entries[i];
        if (cfg->enrich && i + ENRICH_AHEAD < end) dp_enrich_prefetch(cfg->enrich, sh->main.entries[i + ENRICH_AHEAD].enrich_id);
        char ip[INET6_ADDRSTRLEN];
        dp_net_format_ip(en->key.ip, en->key.ip_family, ip);
        if (cfg->enrich && (info_family != en->key.ip_family || memcmp(info_ip, en->key.ip, 16) != 0)) {
            /* a key's rollups of one IP often follow each other: one look each run of them */
            dp_buf_reset(arena);
            dp_enrich_read(cfg->enrich, en->enrich_id, ip, &info, arena);
            memcpy(info_ip, en->key.ip, 16);
            info_family = en->key.ip_family;
        }
        dp_rollup r = {
            .window_start = en->key.window_start,
            .window_end = en->key.window_start + cfg->window,
            .reporter = dp_intern_str(in, en->key.str[K_REPORTER]),
            .policy_domain = dp_intern_str(in, en->key.str[K_POLICY_DOMAIN]),
            .header_from = dp_intern_str(in, en->key.str[K_HEADER_FROM]),
            .source_ip = ip,
            .disposition = dp_intern_str(in, en->key.str[K_DISPOSITION]),
            .dkim = dp_intern_str(in, en->key.str[K_DKIM]),
            .spf = dp_intern_str(in, en->key.str[K_SPF]),
            .override = dp_intern_str(in, en->key.str[K_OVERRIDE]),
            .dkim_domain = dp_intern_str(in, en->key.str[K_DKIM_DOMAIN]),
            .dkim_selector = dp_intern_str(in, en->key.str[K_DKIM_SELECTOR]),
            .dkim_result = dp_intern_str(in, en->key.str[K_DKIM_RESULT]),
            .spf_domain = dp_intern_str(in, en->key.str[K_SPF_DOMAIN]),
            .spf_result = dp_intern_str(in, en->key.str[K_SPF_RESULT]),
            .messages = en->messages,
            .records = en->records,
            .first_seen = en->key.window_start + en->first_off,
            .last_seen = en->key.window_start + en->last_off,
            .source_info = info,
        };
        pending_lines++;
        int full = 0;
        for (size_t k = 0; k < cfg->n_sinks; k++) {
            dp_sink *snk = cfg->sinks[k];
            if (dp_sink_formats_text(snk)) {
                /* format here, in parallel with other threads; only the
                 * block write takes the sink's lock */
                dp_sink_format_rollup(snk, &out[k], &r);
                full |= out[k].len >= BLOCK_BYTES;
            } else {
                dp_error err;
                if (dp_sink_write_rollup(snk, &r, &err) != 0) {
                    dp_engine_fail(e, &err);
                    rc = -1;
                }
            }
        }
        if (full || i + 1 == end) {
            if (write_blocks(e, out, pending_lines) != 0) rc = -1;
            pending_lines = 0;
        }
    }
    return rc;
}

static void shard_note_peak(shard *sh) {
    if (sh->main.n > sh->peak_keys) sh->peak_keys = sh->main.n;
    size_t bytes = dp_table_bytes(&sh->main) + sh->strings.bytes;
    if (bytes > sh->peak_bytes) sh->peak_bytes = bytes;
}

/* A flush while the run goes on (--flush-interval, --max-keys): the shard
 * thread writes its own table. */
int dp_flush_shard(shard *sh) {
    engine *e = sh->e;
    shard_note_peak(sh);
    int rc = flush_entries(e, sh, 0, sh->main.n, sh->out, &sh->info);
    sh->rollups += sh->main.n;
    if (sh->main.n) sh->flushes++;
    dp_table_clear(&sh->main, e->cfg->max_keys ? e->cfg->max_keys : SIZE_MAX);
    sh->last_flush = dp_clock_seconds();
    return rc;
}

/* The final flush.
 *
 * At the end of a batch run the workers are idle and each shard would
 * format its whole table alone, after the last byte was parsed: with one
 * shard that is a serial tail of the run.  So the tables, no longer
 * written, are cut into chunks and formatted by as many threads as the run
 * had (workers + shards), each into buffers of its own.  Line order in the
 * sinks is not part of the contract (a warehouse sums by key). */

#define FINAL_CHUNK 4096

#define FINAL_CHUNK 4096

typedef struct final_flush {
    engine *e;
    _Atomic size_t next_chunk;
    size_t n_chunks;
} final_flush;

static void *final_flush_main(void *arg) {
    final_flush *ff = arg;
    engine *e = ff->e;
    size_t n_out = e->cfg->n_sinks ? e->cfg->n_sinks : 1;
    dp_buf *out = calloc(n_out, sizeof *out);
    dp_buf arena = DP_BUF_INIT;
    if (!out) {
        dp_error err;
        dp_error_set(&err, DP_ERR_NOMEM, "out of memory formatting rollups");
        dp_engine_fail(e, &err);
        return NULL;
    }
    for (;;) {
        size_t c = atomic_fetch_add_explicit(&ff->next_chunk, 1, memory_order_relaxed);
        if (c >= ff->n_chunks) break;
        /* chunk c: walk the shards' chunk counts to find its range */
        for (unsigned s = 0; s < e->cfg->shards; s++) {
            const shard *sh = &e->shards[s];
            size_t chunks = (sh->main.n + FINAL_CHUNK - 1) / FINAL_CHUNK;
            if (c < chunks) {
                size_t begin = c * FINAL_CHUNK;
                size_t end = begin + FINAL_CHUNK < sh->main.n ? begin + FINAL_CHUNK : sh->main.n;
                flush_entries(e, sh, begin, end, out, &arena);
                break;
            }
            c -= chunks;
        }
    }
    for (size_t k = 0; k < n_out; k++) dp_buf_free(&out[k]);
    free(out);
    dp_buf_free(&arena);
    return NULL;
}

/* After every thread of the run has been joined. */
void dp_flush_final(engine *e) {
    final_flush ff = {.e = e};
    for (unsigned s = 0; s < e->cfg->shards; s++) {
        shard *sh = &e->shards[s];
        shard_note_peak(sh);
        ff.n_chunks += (sh->main.n + FINAL_CHUNK - 1) / FINAL_CHUNK;
        sh->rollups += sh->main.n;
        if (sh->main.n) sh->flushes++;
    }
    size_t n_threads = (size_t)e->cfg->workers + e->cfg->shards;
    /* A sink with threads of its own (Kafka: librdkafka compresses and
     * sends in one thread per broker, which is the bottleneck) needs a core
     * left to it: more formatting threads than cores - 1 only starve it. */
    for (size_t k = 0; k < e->cfg->n_sinks; k++)
        if (dp_sink_is_concurrent(e->cfg->sinks[k])) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            size_t cap = cores > 2 ? (size_t)cores - 1 : 1;
            if (n_threads > cap) n_threads = cap;
        }
    if (n_threads > ff.n_chunks) n_threads = ff.n_chunks;
    if (n_threads > 64) n_threads = 64;
    pthread_t th[64];
    size_t started = 0;
    /* this thread is one of them; a thread that cannot start is not needed */
    for (; started + 1 < n_threads; started++)
        if (pthread_create(&th[started], NULL, final_flush_main, &ff) != 0) break;
    final_flush_main(&ff);
    for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    for (unsigned s = 0; s < e->cfg->shards; s++)
        dp_table_clear(&e->shards[s].main, e->cfg->max_keys ? e->cfg->max_keys : SIZE_MAX);
}
