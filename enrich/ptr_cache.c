/* ptr_cache — PTR lookups kept across runs in an LMDB file.
 *
 * The cache is a convenience, never the truth: a value that does not parse
 * is a miss, and the caller (enrich.c) turns any error into memory-only
 * operation.  So the environment runs with MDB_NOSYNC: a crash of the
 * machine may lose the last batches (they are asked again), and a crash of
 * the process loses nothing committed.  The resolver thread is the only
 * reader and writer after open; one write transaction stays open between
 * commits and serves the reads too.
 */
#include "ptr_cache.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_fs.h"

/* The map is reserved address space, not disk: a million IPs take about
 * 150 MB of it. */
#define MAP_SIZE ((size_t)1 << 30)

struct dp_ptr_cache {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;      /* the open batch, or NULL */
    unsigned puts;     /* writes in it */
    char dir[512];
};

static int lmdb_error(dp_error *err, const dp_ptr_cache *c, const char *what, int rc) {
    return dp_error_set(err, DP_ERR_IO, "%s: the enrichment cache: %s: %s", c->dir, what, mdb_strerror(rc));
}

dp_ptr_cache *dp_ptr_cache_open(const char *dir, dp_error *err) {
    dp_ptr_cache *c = calloc(1, sizeof *c);
    if (!c) {
        dp_error_set(err, DP_ERR_NOMEM, "%s: the enrichment cache: out of memory", dir);
        return NULL;
    }
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    if (dp_fs_mkdir_mode(dir, 0700) != 0) {
        dp_error_set(err, DP_ERR_IO, "%s: the enrichment cache: cannot make the folder: %s", dir, strerror(errno));
        goto fail;
    }
    int rc = mdb_env_create(&c->env);
    if (rc == 0) rc = mdb_env_set_mapsize(c->env, MAP_SIZE);
    if (rc == 0) rc = mdb_env_open(c->env, dir, MDB_NOSYNC, 0600);
    if (rc != 0) {
        lmdb_error(err, c, "open", rc);
        goto fail;
    }
    MDB_txn *t;
    rc = mdb_txn_begin(c->env, NULL, 0, &t);
    if (rc == 0) rc = mdb_dbi_open(t, NULL, 0, &c->dbi);
    if (rc == 0) {
        rc = mdb_txn_commit(t);
    } else if (t) {
        mdb_txn_abort(t);
    }
    if (rc != 0) {
        lmdb_error(err, c, "open", rc);
        goto fail;
    }
    return c;
fail:
    if (c->env) mdb_env_close(c->env);
    free(c);
    return NULL;
}

static int parse_value(const char *v, size_t n, dp_ptr_cache_entry *out) {
    char text[DP_RESOLVER_NAME_MAX + 64];
    if (n >= sizeof text) return 0;
    memcpy(text, v, n);
    text[n] = '\0';
    char *end;
    out->expires = strtod(text, &end);
    if (end == text || *end != ' ') return 0;
    char *status = end + 1, *sp = strchr(status, ' ');
    if (!sp) return 0;
    *sp = '\0';
    int s = dp_resolver_status_parse(status);
    if (s < 0) return 0;
    out->status = (dp_resolver_status)s;
    const char *name = sp + 1;
    if (out->status == DP_RESOLVER_ANSWERED) {
        if (!*name || strcmp(name, "-") == 0 || strlen(name) >= sizeof out->name) return 0;
        snprintf(out->name, sizeof out->name, "%s", name);
    } else {
        out->name[0] = '\0';
    }
    return 1;
}

int dp_ptr_cache_get(dp_ptr_cache *c, const char *ip, dp_ptr_cache_entry *out, dp_error *err) {
    MDB_txn *t = c->txn;
    int rc = 0;
    if (!t && (rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &t)) != 0) return lmdb_error(err, c, "read", rc);
    MDB_val k = {strlen(ip), (void *)(uintptr_t)ip}, v;
    rc = mdb_get(t, c->dbi, &k, &v);
    int found = rc == 0 && parse_value(v.mv_data, v.mv_size, out);
    if (t != c->txn) mdb_txn_abort(t);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(err, c, "read", rc);
    return found;
}

int dp_ptr_cache_put(dp_ptr_cache *c, const char *ip, const dp_ptr_cache_entry *in, dp_error *err) {
    int rc;
    if (!c->txn && (rc = mdb_txn_begin(c->env, NULL, 0, &c->txn)) != 0) {
        c->txn = NULL;
        return lmdb_error(err, c, "write", rc);
    }
    char text[DP_RESOLVER_NAME_MAX + 64];
    int n = snprintf(text, sizeof text, "%.3f %s %s", in->expires, dp_resolver_status_name(in->status),
                     in->status == DP_RESOLVER_ANSWERED && in->name[0] ? in->name : "-");
    if (n < 0 || (size_t)n >= sizeof text) return 0; /* cannot be: names are shorter; then not kept */
    MDB_val k = {strlen(ip), (void *)(uintptr_t)ip}, v = {(size_t)n, text};
    if ((rc = mdb_put(c->txn, c->dbi, &k, &v, 0)) != 0) {
        mdb_txn_abort(c->txn);
        c->txn = NULL;
        c->puts = 0;
        return lmdb_error(err, c, "write", rc);
    }
    c->puts++;
    return 0;
}

int dp_ptr_cache_commit(dp_ptr_cache *c, unsigned min_puts, dp_error *err) {
    if (!c->txn || c->puts < min_puts || c->puts == 0) return 0;
    int rc = mdb_txn_commit(c->txn);
    c->txn = NULL;
    c->puts = 0;
    return rc == 0 ? 0 : lmdb_error(err, c, "commit", rc);
}

void dp_ptr_cache_close(dp_ptr_cache *c) {
    if (!c) return;
    if (c->txn) mdb_txn_abort(c->txn);
    mdb_env_close(c->env);
    free(c);
}
