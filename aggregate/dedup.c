/* dedup — counting a report once, within a run and across runs.
 *
 * The same report reaches a mailbox twice, or arrives both as .xml and in
 * an .eml; one receiver reuses report_ids across days.  A report's identity
 * is therefore org_name + report_id + policy_domain + begin, hashed with
 * SHA-256 into a 32-byte key.
 *
 * Which copy counts must not depend on thread timing, so the engine asks
 * dp_dedup_decide() in input order (see engine.c): the first copy in input
 * order counts, later ones are duplicates.  dp_dedup_seen_before() lets a
 * worker skip early a report that an earlier run counted.  Across runs,
 * identities are kept in LMDB under --state DIR.  They are written only by
 * dp_dedup_persist(), which `dmarcpipe run` calls after the sinks have
 * flushed the rollups that count those reports.  A crash before that re-counts the reports on the
 * next run rather than losing them; exactly-once across crashes is the
 * Kafka sink's job (issue 4).
 *
 * Lookups and decisions go through one mutex: it is taken once per report,
 * not per record, so it is far from the hot path.
 */
#include <errno.h>
#include <lmdb.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "aggregate.h"

#define ID_BYTES SHA256_DIGEST_SIZE

enum { SLOT_EMPTY = 0, SLOT_COMMITTED };

typedef struct slot {
    uint8_t id[ID_BYTES];
    uint8_t state;
} slot;

struct dp_dedup {
    pthread_mutex_t lock;
    slot *slots;
    size_t cap, used;
    MDB_env *env;
    MDB_dbi dbi;
    uint64_t committed, persisted;
};

void dp_dedup_identity(const dp_report *rep, uint8_t out[32]) {
    struct sha256_ctx c;
    sha256_init(&c);
    const char *parts[3] = {rep->org_name, rep->report_id, rep->policy.domain};
    for (int i = 0; i < 3; i++) {
        /* absent and empty differ: a 0x00 marks absent, 0x01 + bytes present */
        uint8_t tag = parts[i] ? 1 : 0;
        sha256_update(&c, 1, &tag);
        if (parts[i]) sha256_update(&c, strlen(parts[i]) + 1, (const uint8_t *)parts[i]);
    }
    char begin[24];
    int n = snprintf(begin, sizeof begin, "%lld", (long long)rep->begin);
    sha256_update(&c, (size_t)n, (const uint8_t *)begin);
    sha256_digest(&c, ID_BYTES, out);
}

dp_dedup *dp_dedup_open(const char *state_dir, dp_error *err) {
    dp_dedup *d = calloc(1, sizeof *d);
    if (!d) {
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    if (!state_dir) return d;
    if (mkdir(state_dir, 0755) != 0 && errno != EEXIST) {
        dp_error_set(err, DP_ERR_IO, "state: cannot create %s: %s", state_dir, strerror(errno));
        dp_dedup_close(d);
        return NULL;
    }
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&d->env);
    if (rc == 0) rc = mdb_env_set_mapsize(d->env, (size_t)64 << 30); /* sparse; grows on use */
    if (rc == 0) rc = mdb_env_open(d->env, state_dir, MDB_NOTLS, 0644);
    if (rc == 0) rc = mdb_txn_begin(d->env, NULL, 0, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, NULL, 0, &d->dbi);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc != 0) {
        if (txn) mdb_txn_abort(txn);
        dp_error_set(err, DP_ERR_IO, "state: cannot open LMDB in %s: %s", state_dir, mdb_strerror(rc));
        dp_dedup_close(d);
        return NULL;
    }
    return d;
}

static int grow(dp_dedup *d) {
    size_t cap = d->cap ? d->cap * 2 : 4096;
    slot *s = calloc(cap, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < d->cap; i++) {
        if (d->slots[i].state == SLOT_EMPTY) continue;
        uint64_t h;
        memcpy(&h, d->slots[i].id, sizeof h);
        size_t j = h & (cap - 1);
        while (s[j].state != SLOT_EMPTY) j = (j + 1) & (cap - 1);
        s[j] = d->slots[i];
    }
    free(d->slots);
    d->slots = s;
    d->cap = cap;
    return 0;
}

/* The slot for id (existing, or the empty one where it would go). */
static slot *find(dp_dedup *d, const uint8_t *id) {
    uint64_t h;
    memcpy(&h, id, sizeof h);
    size_t mask = d->cap - 1, i = h & mask;
    while (d->slots[i].state != SLOT_EMPTY && memcmp(d->slots[i].id, id, ID_BYTES) != 0)
        i = (i + 1) & mask;
    return &d->slots[i];
}

/* 1 if an earlier run counted id, 0 if not, -1 if LMDB could not say:
 * "not seen" on a failed read would count a report twice. */
static int seen_before(dp_dedup *d, const uint8_t *id) {
    if (!d->env) return 0;
    MDB_txn *txn;
    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) != 0) return -1;
    MDB_val k = {ID_BYTES, (void *)id}, v;
    int rc = mdb_get(txn, d->dbi, &k, &v);
    mdb_txn_abort(txn);
    return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
}

int dp_dedup_seen_before(dp_dedup *d, const uint8_t id[32]) {
    /* LMDB changes only in dp_dedup_persist(), after the run: the answer
     * does not depend on what other threads are doing now */
    pthread_mutex_lock(&d->lock);
    int seen = seen_before(d, id);
    pthread_mutex_unlock(&d->lock);
    return seen; /* -1: cannot tell */
}

int dp_dedup_decide(dp_dedup *d, const uint8_t id[32]) {
    pthread_mutex_lock(&d->lock);
    int rc = DP_DEDUP_NEW;
    if ((d->used + 1) * 10 > d->cap * 7 && grow(d) != 0) {
        rc = DP_DEDUP_ERROR;
    } else {
        slot *s = find(d, id);
        int before = s->state == SLOT_COMMITTED ? 1 : seen_before(d, id);
        if (before < 0) {
            rc = DP_DEDUP_ERROR;
        } else if (before) {
            rc = DP_DEDUP_DUPLICATE;
        } else {
            memcpy(s->id, id, ID_BYTES);
            s->state = SLOT_COMMITTED;
            d->used++;
            d->committed++;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int dp_dedup_persist(dp_dedup *d, dp_error *err) {
    if (!d->env) return 0;
    pthread_mutex_lock(&d->lock);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(d->env, NULL, 0, &txn);
    uint64_t now = (uint64_t)time(NULL);
    for (size_t i = 0; rc == 0 && i < d->cap; i++) {
        if (d->slots[i].state != SLOT_COMMITTED) continue;
        MDB_val k = {ID_BYTES, d->slots[i].id}, v = {sizeof now, &now};
        rc = mdb_put(txn, d->dbi, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) rc = 0;
        d->persisted++;
    }
    if (rc == 0) rc = mdb_txn_commit(txn); /* durable: LMDB syncs on commit */
    else if (txn) mdb_txn_abort(txn);
    pthread_mutex_unlock(&d->lock);
    if (rc != 0) return dp_error_set(err, DP_ERR_IO, "state: cannot record seen reports: %s", mdb_strerror(rc));
    return 0;
}

void dp_dedup_close(dp_dedup *d) {
    if (!d) return;
    if (d->env) mdb_env_close(d->env);
    pthread_mutex_destroy(&d->lock);
    free(d->slots);
    free(d);
}
