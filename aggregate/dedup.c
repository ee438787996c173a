/* dedup — counting a report once, within a run and across runs.
 *
 * The same report reaches a mailbox twice, or arrives both as .xml and in
 * an .eml; one receiver reuses report_ids across days.  A report's identity
 * is therefore org_name + report_id + policy_domain + begin, hashed with
 * SHA-256 into a 32-byte key.
 *
 * Which copy counts must not depend on thread timing, so the engine asks
 * dp_dedup_decide() in input order (see decide.c): the first copy in input
 * order counts, later ones are duplicates.  dp_dedup_seen_before() lets a
 * worker skip early a report that an earlier run counted.  Across runs,
 * identities are kept in LMDB under --state DIR.  They are written only by
 * dp_dedup_persist(), which the run (run/conductor.c) calls after the sinks
 * have committed the rollups that count those reports.  A crash before
 * that re-counts the reports on the next run rather than losing them;
 * exactly once across crashes is the Kafka sink's, with its ledger.
 *
 * Runs that go in epochs (the Kafka sink: one transaction each) need more
 * of the state, and this file keeps all of it in the same LMDB, so that one
 * LMDB transaction moves everything an epoch changes at once:
 *   - identities decided in the open epoch are "pending": dp_dedup_persist()
 *     makes them durable after the epoch commits, dp_dedup_rollback()
 *     forgets them when it is aborted and will be run again;
 *   - the inputs an epoch took are acknowledged (db "inputs"), so a restart
 *     does not read them again;
 *   - the last committed epoch and where the ledger is read from (db
 *     "meta"), so a restart after a crash between a commit and the state
 *     write can catch up from the ledger (dp_dedup_apply_ledger()).
 *
 * Lookups and decisions go through one mutex: it is taken once per report,
 * not per record, so it is far from the hot path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregate.h"

#define ID_BYTES SHA256_DIGEST_SIZE

/* PENDING: decided in the open epoch; DONE: persisted, or counted by an
 * epoch of this process that committed */
enum { SLOT_EMPTY = 0, SLOT_PENDING, SLOT_DONE };

typedef struct slot {
    uint8_t id[ID_BYTES];
    uint8_t state;
} slot;

struct dp_dedup {
    pthread_mutex_t lock;
    int lock_fd; /* the state folder's lock file, held while open; -1: none */
    slot *slots;
    size_t cap, used;
    MDB_env *env;
    MDB_dbi dbi, inputs_dbi, meta_dbi, sinks_dbi;
    uint64_t committed, persisted;
    size_t conflicts; /* see dp_dedup_take_conflicts */
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

/* One process per state.  LMDB lets several processes share an
 * environment, but two runs on one state would each count what the other
 * has not recorded yet, and both would be counted.  flock() is released by
 * the kernel when the process ends, however it ends, so a run killed with
 * SIGKILL leaves no stale lock.  The holder's pid is written in the file,
 * for the message the next one gets. */
static int lock_state(dp_dedup *d, const char *state_dir, dp_error *err) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/lock", state_dir) >= (int)sizeof path)
        return dp_error_set(err, DP_ERR_IO, "state: %s: path too long", state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return dp_error_set(err, DP_ERR_IO, "state: cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(fd, pid, sizeof pid - 1, 0) : -1;
        close(fd);
        if (n > 0) {
            pid[n] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
        }
        if (e == EWOULDBLOCK)
            return dp_error_set(err, DP_ERR_IO,
                                "state %s is in use by pid %s (another dmarcpipe run): one process per state; "
                                "wait for it, or give this run a --state of its own",
                                state_dir, n > 0 ? pid : "?");
        return dp_error_set(err, DP_ERR_IO, "state: cannot lock %s: %s", path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int e = errno;
        close(fd);
        return dp_error_set(err, DP_ERR_IO, "state: cannot write %s: %s", path, strerror(e));
    }
    d->lock_fd = fd;
    return 0;
}

dp_dedup *dp_dedup_open(const char *state_dir, dp_error *err) {
    dp_dedup *d = calloc(1, sizeof *d);
    if (!d) {
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    d->lock_fd = -1;
    if (!state_dir) return d;
    /* private: it names the inputs and the reports counted */
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        dp_error_set(err, DP_ERR_IO, "state: cannot create %s: %s", state_dir, strerror(errno));
        dp_dedup_close(d);
        return NULL;
    }
    if (lock_state(d, state_dir, err) != 0) {
        dp_dedup_close(d);
        return NULL;
    }
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&d->env);
    if (rc == 0) rc = mdb_env_set_mapsize(d->env, (size_t)64 << 30); /* sparse; grows on use */
    if (rc == 0) rc = mdb_env_set_maxdbs(d->env, 5);
    if (rc == 0) rc = mdb_env_open(d->env, state_dir, MDB_NOTLS, 0600);
    if (rc == 0) rc = mdb_txn_begin(d->env, NULL, 0, &txn);
    /* identities stay in the unnamed db, where earlier versions kept them;
     * the named dbs' entries there have short keys, never 32 bytes */
    if (rc == 0) rc = mdb_dbi_open(txn, NULL, 0, &d->dbi);
    if (rc == 0) rc = mdb_dbi_open(txn, "inputs", MDB_CREATE, &d->inputs_dbi);
    if (rc == 0) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &d->meta_dbi);
    if (rc == 0) rc = mdb_dbi_open(txn, "sinks", MDB_CREATE, &d->sinks_dbi);
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
        int before = s->state != SLOT_EMPTY ? 1 : seen_before(d, id);
        if (before < 0) {
            rc = DP_DEDUP_ERROR;
        } else if (before) {
            rc = DP_DEDUP_DUPLICATE;
        } else {
            memcpy(s->id, id, ID_BYTES);
            s->state = SLOT_PENDING;
            d->used++;
            d->committed++;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int put_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t v) {
    MDB_val k = {strlen(key), (void *)key}, val = {sizeof v, &v};
    return mdb_put(txn, dbi, &k, &val, 0);
}

/* An identity, with the time it was counted; one already there stays. */
static int put_id(dp_dedup *d, MDB_txn *txn, const uint8_t *id, uint64_t now) {
    MDB_val k = {ID_BYTES, (void *)id}, v = {sizeof now, &now};
    int rc = mdb_put(txn, d->dbi, &k, &v, MDB_NOOVERWRITE);
    return rc == MDB_KEYEXIST ? 0 : rc;
}

/* An input key as an LMDB key: LMDB's default limit is 511 bytes, and the
 * key ends in the path, so a longer one is cut there. */
static MDB_val input_key(const char *key) {
    size_t n = strlen(key);
    return (MDB_val){n > 511 ? 511 : n, (void *)key};
}

/* What an epoch changes besides its identities: its inputs, its number and
 * the ledger position, in the caller's LMDB transaction. */
static int put_epoch(dp_dedup *d, MDB_txn *txn, const dp_dedup_epoch *ep, uint64_t now) {
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ep->n_inputs; i++) {
        MDB_val k = input_key(ep->input_keys[i]), v = {sizeof now, &now};
        if (k.mv_size) rc = mdb_put(txn, d->inputs_dbi, &k, &v, 0);
    }
    if (rc == 0 && ep->epoch) rc = put_u64(txn, d->meta_dbi, "epoch", ep->epoch);
    if (rc == 0 && ep->ledger_next) rc = put_u64(txn, d->meta_dbi, "ledger_next", ep->ledger_next);
    for (size_t i = 0; rc == 0 && i < ep->n_sinks; i++) rc = put_u64(txn, d->sinks_dbi, ep->sink_names[i], ep->sink_positions[i]);
    return rc;
}

int dp_dedup_persist(dp_dedup *d, const dp_dedup_epoch *ep, dp_error *err) {
    pthread_mutex_lock(&d->lock);
    int rc = 0;
    if (d->env) {
        MDB_txn *txn = NULL;
        rc = mdb_txn_begin(d->env, NULL, 0, &txn);
        uint64_t now = (uint64_t)time(NULL);
        for (size_t i = 0; rc == 0 && i < d->cap; i++)
            if (d->slots[i].state == SLOT_PENDING) rc = put_id(d, txn, d->slots[i].id, now);
        if (rc == 0 && ep) rc = put_epoch(d, txn, ep, now);
        if (rc == 0) rc = mdb_txn_commit(txn); /* durable: LMDB syncs on commit */
        else if (txn) mdb_txn_abort(txn);
    }
    if (rc == 0)
        for (size_t i = 0; i < d->cap; i++)
            if (d->slots[i].state == SLOT_PENDING) {
                d->slots[i].state = SLOT_DONE;
                d->persisted++;
            }
    pthread_mutex_unlock(&d->lock);
    if (rc != 0) return dp_error_set(err, DP_ERR_IO, "state: cannot record seen reports: %s", mdb_strerror(rc));
    return 0;
}

void dp_dedup_rollback(dp_dedup *d) {
    pthread_mutex_lock(&d->lock);
    /* open addressing cannot just blank a slot (it would cut probe chains):
     * rebuild the table from what is DONE */
    slot *old = d->slots;
    size_t cap = d->cap;
    d->slots = NULL;
    d->cap = d->used = 0;
    for (size_t i = 0; i < cap; i++) {
        if (old[i].state != SLOT_DONE) continue;
        if ((d->used + 1) * 10 > d->cap * 7 && grow(d) != 0) break; /* memory: forget (LMDB still knows) */
        slot *s = find(d, old[i].id);
        *s = old[i];
        d->used++;
    }
    for (size_t i = 0; i < cap; i++)
        if (old[i].state == SLOT_PENDING) d->committed--;
    free(old);
    pthread_mutex_unlock(&d->lock);
}

size_t dp_dedup_pending(dp_dedup *d, void (*fn)(void *ctx, const uint8_t id[32]), void *ctx) {
    pthread_mutex_lock(&d->lock);
    size_t n = 0;
    for (size_t i = 0; i < d->cap; i++)
        if (d->slots[i].state == SLOT_PENDING) {
            if (fn) fn(ctx, d->slots[i].id);
            n++;
        }
    pthread_mutex_unlock(&d->lock);
    return n;
}

void dp_dedup_forget_persisted(dp_dedup *d) {
    pthread_mutex_lock(&d->lock);
    int pending = 0;
    for (size_t i = 0; d->env && !pending && i < d->cap; i++) pending = d->slots[i].state == SLOT_PENDING;
    if (d->env && !pending) {
        free(d->slots);
        d->slots = NULL;
        d->cap = d->used = 0;
    }
    pthread_mutex_unlock(&d->lock);
}

int dp_dedup_input_done(dp_dedup *d, const char *key) {
    if (!d->env || !*key) return 0;
    pthread_mutex_lock(&d->lock);
    MDB_txn *txn;
    int rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        MDB_val k = input_key(key), v;
        rc = mdb_get(txn, d->inputs_dbi, &k, &v);
        mdb_txn_abort(txn);
    }
    pthread_mutex_unlock(&d->lock);
    return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : -1;
}

int dp_dedup_sink_position(dp_dedup *d, const char *name, uint64_t *pos) {
    *pos = 0;
    if (!d->env) return 0;
    size_t n = strlen(name);
    if (n == 0 || n > 511) return 0; /* LMDB's key limit: such a sink keeps no position */
    pthread_mutex_lock(&d->lock);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn), found = 0;
    if (rc == 0) {
        MDB_val k = {n, (void *)name}, v;
        int g = mdb_get(txn, d->sinks_dbi, &k, &v);
        if (g == 0 && v.mv_size == sizeof(uint64_t)) {
            memcpy(pos, v.mv_data, sizeof *pos);
            found = 1;
        } else if (g != MDB_NOTFOUND) {
            rc = g ? g : MDB_CORRUPTED;
        }
        mdb_txn_abort(txn);
    }
    pthread_mutex_unlock(&d->lock);
    return rc != 0 ? -1 : found;
}

int dp_dedup_meta(dp_dedup *d, uint64_t *epoch, uint64_t *ledger_next) {
    *epoch = *ledger_next = 0;
    if (!d->env) return 0;
    pthread_mutex_lock(&d->lock);
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn);
    int begun = rc == 0;
    const char *names[2] = {"epoch", "ledger_next"};
    uint64_t *outs[2] = {epoch, ledger_next};
    for (int i = 0; rc == 0 && i < 2; i++) {
        MDB_val k = {strlen(names[i]), (void *)names[i]}, v;
        int g = mdb_get(txn, d->meta_dbi, &k, &v);
        if (g == 0 && v.mv_size == sizeof(uint64_t)) memcpy(outs[i], v.mv_data, sizeof(uint64_t));
        else if (g != MDB_NOTFOUND) rc = g ? g : MDB_CORRUPTED;
    }
    if (begun) mdb_txn_abort(txn);
    pthread_mutex_unlock(&d->lock);
    return rc == 0 ? 0 : -1;
}

int dp_dedup_apply_ledger(dp_dedup *d, const uint8_t (*ids)[32], size_t n_ids, const dp_dedup_epoch *ep,
                          dp_error *err) {
    pthread_mutex_lock(&d->lock);
    int rc = 0;
    uint64_t now = (uint64_t)time(NULL);
    for (size_t i = 0; rc == 0 && i < n_ids; i++) {
        if ((d->used + 1) * 10 > d->cap * 7 && grow(d) != 0) {
            rc = ENOMEM;
            break;
        }
        slot *s = find(d, ids[i]);
        if (s->state == SLOT_PENDING) {
            /* another worker committed a report the open epoch counted:
             * the epoch must not commit (dp_dedup_take_conflicts) */
            d->conflicts++;
            continue;
        }
        if (s->state == SLOT_EMPTY) {
            memcpy(s->id, ids[i], ID_BYTES);
            d->used++;
        }
        s->state = SLOT_DONE;
    }
    if (rc == 0 && d->env) {
        MDB_txn *txn = NULL;
        rc = mdb_txn_begin(d->env, NULL, 0, &txn);
        for (size_t i = 0; rc == 0 && i < n_ids; i++) rc = put_id(d, txn, ids[i], now);
        if (rc == 0) rc = put_epoch(d, txn, ep, now);
        if (rc == 0) rc = mdb_txn_commit(txn);
        else if (txn) mdb_txn_abort(txn);
    }
    pthread_mutex_unlock(&d->lock);
    if (rc != 0)
        return dp_error_set(err, DP_ERR_IO, "state: cannot record the ledger's epoch: %s",
                            rc == ENOMEM ? "out of memory" : mdb_strerror(rc));
    return 0;
}

size_t dp_dedup_take_conflicts(dp_dedup *d) {
    pthread_mutex_lock(&d->lock);
    size_t n = d->conflicts;
    d->conflicts = 0;
    pthread_mutex_unlock(&d->lock);
    return n;
}

void dp_dedup_close(dp_dedup *d) {
    if (!d) return;
    if (d->env) mdb_env_close(d->env);
    if (d->lock_fd >= 0) close(d->lock_fd); /* releases the lock */
    pthread_mutex_destroy(&d->lock);
    free(d->slots);
    free(d);
}
