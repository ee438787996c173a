/* readahead — a big report's unwrapping on a thread of its own.
 *
 * Parsing one report is expat's work plus the layers under it: inflating
 * (gzip, zip, zstd) and, when the reports feed wants it, SHA-256 of the
 * XML.  On the 256 MB bench report those two are about a tenth of the
 * parser thread's time.  When a core is free (`dmarcpipe run` with fewer
 * workers than cores), a report that is still going after its first
 * `readahead_after` bytes hands its stream to a reader thread: the thread
 * reads (and hashes) chunks ahead into a few buffers, and the parser thread
 * only parses.  Small reports never start a thread.
 *
 * Ownership: between dp_readahead_start() and dp_readahead_stop() the
 * source stream, and every layer under it, belongs to the reader thread;
 * so does the SHA-256 context.  The parser thread touches neither until
 * dp_readahead_stop() has joined the thread.  The buffers are the
 * handshake: a slot is filled by the reader outside the lock and published
 * by advancing `tail` under it; it is read by the parser outside the lock
 * and handed back by advancing `head` under it.
 *
 * Wake-ups are rationed.  Waking a thread on the other core costs tens of
 * microseconds on a VM (an inter-processor interrupt through the
 * hypervisor), and the reader, faster than the parser, would otherwise
 * sleep after every chunk and be woken for the next: 4096 wake-ups on the
 * 256 MB bench report, with the bell's about 5% of the parser thread's
 * samples in `perf` (no change in wall time was measurable).
 * Now a reader that finds every slot full sleeps until half of them are
 * free again, and each side signals only a side that is asleep.
 *
 * Memory: RA_SLOTS chunks of RA_CHUNK bytes, fixed.  An error (or the end)
 * of the source is a slot like any other, delivered after the data before
 * it, so a truncated gzip fails at the same byte with the same message.
 * When the parser stops early (a bad record, a skipped duplicate), the
 * reader has read at most RA_SLOTS chunks further into the part's stream,
 * which is then discarded anyway.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_internal.h"

#define RA_SLOTS 16
#define RA_CHUNK (64u * 1024u)
/* a sleeping reader is woken when this many slots are free */
#define RA_REFILL_AT (RA_SLOTS / 2)

typedef struct ra_slot {
    unsigned char *data;
    ssize_t n; /* bytes, 0 at the end, -1 on error */
    dp_error err;
} ra_slot;

struct dp_readahead {
    dp_stream *src;
    struct sha256_ctx *sha;
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t can_fill, can_take;
    ra_slot slot[RA_SLOTS];
    size_t head, tail; /* slots taken / published; tail - head <= RA_SLOTS */
    size_t off;        /* the parser's position in slot[head] */
    int stop;          /* the parser is done with the stream */
    int filler_asleep; /* the reader waits for RA_REFILL_AT free slots */
    int taker_asleep;  /* the parser waits for a published slot */
};

static void *ra_main(void *arg) {
    dp_readahead *ra = arg;
    for (;;) {
        pthread_mutex_lock(&ra->lock);
        if (ra->tail - ra->head == RA_SLOTS && !ra->stop) {
            ra->filler_asleep = 1;
            while (ra->tail - ra->head > RA_SLOTS - RA_REFILL_AT && !ra->stop)
                pthread_cond_wait(&ra->can_fill, &ra->lock);
            ra->filler_asleep = 0;
        }
        int stop = ra->stop;
        ra_slot *s = &ra->slot[ra->tail % RA_SLOTS];
        pthread_mutex_unlock(&ra->lock);
        if (stop) return NULL;

        s->n = ra->src->read(ra->src, s->data, RA_CHUNK, &s->err);
        if (s->n > 0 && ra->sha) sha256_update(ra->sha, (size_t)s->n, s->data);

        pthread_mutex_lock(&ra->lock);
        ra->tail++;
        int wake = ra->taker_asleep;
        pthread_mutex_unlock(&ra->lock);
        /* signalled after unlocking, so the woken parser does not at once
         * block on the mutex still held here */
        if (wake) pthread_cond_signal(&ra->can_take);
        if (s->n <= 0) return NULL; /* the end, or an error: nothing follows */
    }
}

dp_readahead *dp_readahead_start(dp_stream *src, struct sha256_ctx *sha) {
    dp_readahead *ra = calloc(1, sizeof *ra);
    if (!ra) return NULL;
    ra->src = src;
    ra->sha = sha;
    int ok = 1;
    for (int i = 0; i < RA_SLOTS; i++) ok &= (ra->slot[i].data = malloc(RA_CHUNK)) != NULL;
    int locks = 0;
    if (ok && pthread_mutex_init(&ra->lock, NULL) == 0) {
        locks = 1;
        if (pthread_cond_init(&ra->can_fill, NULL) == 0) {
            locks = 2;
            if (pthread_cond_init(&ra->can_take, NULL) == 0) locks = 3;
        }
    }
    if (locks == 3 && pthread_create(&ra->th, NULL, ra_main, ra) == 0) return ra;
    /* no thread: the caller goes on reading the stream itself */
    if (locks >= 3) pthread_cond_destroy(&ra->can_take);
    if (locks >= 2) pthread_cond_destroy(&ra->can_fill);
    if (locks >= 1) pthread_mutex_destroy(&ra->lock);
    for (int i = 0; i < RA_SLOTS; i++) free(ra->slot[i].data);
    free(ra);
    return NULL;
}

ssize_t dp_readahead_read(dp_readahead *ra, void *buf, size_t cap, dp_error *err) {
    pthread_mutex_lock(&ra->lock);
    if (ra->tail == ra->head) {
        ra->taker_asleep = 1;
        while (ra->tail == ra->head) pthread_cond_wait(&ra->can_take, &ra->lock);
        ra->taker_asleep = 0;
    }
    ra_slot *s = &ra->slot[ra->head % RA_SLOTS];
    pthread_mutex_unlock(&ra->lock);
    if (s->n < 0) {
        *err = s->err;
        return -1; /* and again on every later call */
    }
    if (s->n == 0) return 0;
    size_t n = (size_t)s->n - ra->off;
    if (n > cap) n = cap;
    memcpy(buf, s->data + ra->off, n);
    ra->off += n;
    if (ra->off == (size_t)s->n) {
        ra->off = 0;
        pthread_mutex_lock(&ra->lock);
        ra->head++;
        int wake = ra->filler_asleep && ra->tail - ra->head <= RA_SLOTS - RA_REFILL_AT;
        pthread_mutex_unlock(&ra->lock);
        if (wake) pthread_cond_signal(&ra->can_fill);
    }
    return (ssize_t)n;
}

void dp_readahead_stop(dp_readahead *ra) {
    if (!ra) return;
    pthread_mutex_lock(&ra->lock);
    ra->stop = 1;
    pthread_cond_signal(&ra->can_fill);
    pthread_mutex_unlock(&ra->lock);
    /* a read in progress is finished, not interrupted: the stream stays
     * consistent for whoever closes it */
    pthread_join(ra->th, NULL);
    pthread_cond_destroy(&ra->can_take);
    pthread_cond_destroy(&ra->can_fill);
    pthread_mutex_destroy(&ra->lock);
    for (int i = 0; i < RA_SLOTS; i++) free(ra->slot[i].data);
    free(ra);
}
