/* dp_fault — fault injection, the SQLite way: a build option, not a mode.
 *
 * Built only with -DDP_FAULT=ON (CMakeLists.txt), which also has the
 * linker route the calls our own code makes to these functions here
 * (-Wl,--wrap=NAME): write, fwrite, fflush, fsync, ftruncate, rename,
 * renameat2, malloc, calloc, realloc and mdb_txn_commit.  Calls made
 * inside libc, GMime or librdkafka are theirs, and not counted.
 *
 * Each call is counted by kind:
 *   write    write, fwrite, fflush, ftruncate (what reaches a file)
 *   fsync    fsync
 *   rename   rename, renameat2
 *   malloc   malloc, calloc, realloc
 *   commit   mdb_txn_commit (the state)
 * and the environment decides what happens:
 *   DP_FAULT=KIND:N:fail    the N-th call of KIND fails as the system would
 *                           (ENOSPC for a write, EIO for fsync, a rename
 *                           and a commit, NULL and ENOMEM for an
 *                           allocation)
 *   DP_FAULT=KIND:N:crash   the process is killed (SIGKILL) at the N-th
 *                           call, before it takes effect: a crash there
 *   DP_FAULT_COUNTS=FILE    at exit, "KIND COUNT" lines for every kind,
 *                           so a test knows how many points there are
 * tests/fault/ loops N over every point of a small run, then restarts it
 * without faults and checks that the totals are exact.
 *
 * The counters are this file's global state: a test build's, process-wide
 * by nature, as the calls they count are.
 */
#define _GNU_SOURCE /* renameat2 */
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { K_WRITE, K_FSYNC, K_RENAME, K_MALLOC, K_COMMIT, K__N };
static const char *const KIND_NAMES[K__N] = {"write", "fsync", "rename", "malloc", "commit"};

static _Atomic uint64_t calls[K__N];
static int target_kind = -1;
static uint64_t target_n;
static int target_crash;
static _Atomic int configured;
static const char *counts_path;

static void write_counts(void) {
    FILE *f = fopen(counts_path, "w");
    if (!f) return;
    for (int k = 0; k < K__N; k++) fprintf(f, "%s %llu\n", KIND_NAMES[k], (unsigned long long)calls[k]);
    fclose(f);
}

/* Reads the environment once.  A race between two first calls only reads
 * it twice, alike. */
static void configure(void) {
    if (atomic_load(&configured)) return;
    const char *spec = getenv("DP_FAULT");
    if (spec) {
        char kind[16] = "", action[16] = "";
        unsigned long long n = 0;
        if (sscanf(spec, "%15[a-z]:%llu:%15[a-z]", kind, &n, action) == 3)
            for (int k = 0; k < K__N; k++)
                if (strcmp(kind, KIND_NAMES[k]) == 0) {
                    target_kind = k;
                    target_n = n;
                    target_crash = strcmp(action, "crash") == 0;
                }
    }
    counts_path = getenv("DP_FAULT_COUNTS");
    if (counts_path && !atomic_exchange(&configured, 1)) atexit(write_counts);
    atomic_store(&configured, 1);
}

/* 1 when this call is to fail (errno set); it does not return when it is
 * to crash. */
static int hit(int kind, int err) {
    configure();
    uint64_t n = atomic_fetch_add(&calls[kind], 1) + 1;
    if (kind != target_kind || n != target_n) return 0;
    if (target_crash) {
        if (counts_path) write_counts();
        kill(getpid(), SIGKILL);
    }
    errno = err;
    return 1;
}

ssize_t __real_write(int fd, const void *p, size_t n);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __real_fflush(FILE *f);
int __real_ftruncate(int fd, off_t len);
int __real_fsync(int fd);
int __real_rename(const char *a, const char *b);
int __real_renameat2(int da, const char *a, int db, const char *b, unsigned flags);
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
int __real_mdb_txn_commit(MDB_txn *txn);

ssize_t __wrap_write(int fd, const void *p, size_t n);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __wrap_fflush(FILE *f);
int __wrap_ftruncate(int fd, off_t len);
int __wrap_fsync(int fd);
int __wrap_rename(const char *a, const char *b);
int __wrap_renameat2(int da, const char *a, int db, const char *b, unsigned flags);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
int __wrap_mdb_txn_commit(MDB_txn *txn);

ssize_t __wrap_write(int fd, const void *p, size_t n) {
    return hit(K_WRITE, ENOSPC) ? -1 : __real_write(fd, p, n);
}

size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f) {
    return hit(K_WRITE, ENOSPC) ? 0 : __real_fwrite(p, size, n, f);
}

int __wrap_fflush(FILE *f) { return hit(K_WRITE, ENOSPC) ? EOF : __real_fflush(f); }

int __wrap_ftruncate(int fd, off_t len) { return hit(K_WRITE, EIO) ? -1 : __real_ftruncate(fd, len); }

int __wrap_fsync(int fd) { return hit(K_FSYNC, EIO) ? -1 : __real_fsync(fd); }

int __wrap_rename(const char *a, const char *b) { return hit(K_RENAME, EIO) ? -1 : __real_rename(a, b); }

int __wrap_renameat2(int da, const char *a, int db, const char *b, unsigned flags) {
    return hit(K_RENAME, EIO) ? -1 : __real_renameat2(da, a, db, b, flags);
}

void *__wrap_malloc(size_t n) { return hit(K_MALLOC, ENOMEM) ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t n, size_t size) { return hit(K_MALLOC, ENOMEM) ? NULL : __real_calloc(n, size); }

void *__wrap_realloc(void *p, size_t n) { return hit(K_MALLOC, ENOMEM) ? NULL : __real_realloc(p, n); }

int __wrap_mdb_txn_commit(MDB_txn *txn) {
    if (hit(K_COMMIT, EIO)) {
        mdb_txn_abort(txn); /* as a failed commit leaves it: gone */
        return EIO;
    }
    return __real_mdb_txn_commit(txn);
}
