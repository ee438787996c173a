/* quarantine — keeping what was rejected, with the reason.
 *
 * A rejected report is evidence: the team has to show a regulator that
 * nothing was silently dropped, and a parser bug must be fixable by
 * replaying the input.  So the input is copied byte for byte into the
 * quarantine folder, and a sidecar NAME.reason (JSON) says which part
 * failed, at which stage, at which byte offset, and why.  An existing copy
 * is never overwritten: names get a numeric suffix instead.
 *
 * One rejection is kept once.  An epoch that is run again (the broker was
 * away at commit), a restart after a crash, or a second run over the same
 * folder rejects the same input again; a copy that holds the same bytes,
 * from the same input path, rejected with the same errors, is that
 * rejection, and only its reason is rewritten (with the new time).
 * Anything that differs gets a copy of its own.
 *
 * The quarantine holds strangers' mail, and whatever else landed in a
 * spool, so it is private: the folder is created 0700, a copy is 0600 and
 * never more readable than its original.  Only a regular file is copied:
 * a FIFO, a device or a socket (or what a symbolic link the source would
 * not follow points to) gets its reason alone, never its bytes, so /dev/zero
 * cannot fill the disk and a link cannot leak a private file.
 */
#define _GNU_SOURCE /* renameat2 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_fs.h"
#include "dp_json.h"
#include "ingest.h"

/* The reason's member between the input and the errors: written with the
 * time, and skipped over when an old reason is compared with a new one. */
static const char QUARANTINED_AT[] = ",\"quarantined_at\":";

/* Reads up to n bytes (fewer only at the end of the file); -1 on error. */
static ssize_t read_full(int fd, char *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Whether two open files hold the same bytes (both read from the start). */
static int same_bytes(int a, int b) {
    char x[16384], y[16384];
    if (lseek(a, 0, SEEK_SET) != 0 || lseek(b, 0, SEEK_SET) != 0) return 0;
    for (;;) {
        ssize_t n = read_full(a, x, sizeof x), m = read_full(b, y, sizeof y);
        if (n < 0 || n != m || memcmp(x, y, (size_t)n) != 0) return 0;
        if (n == 0) return 1;
    }
}

/* Whether `reason_path` says what `head` + any time + `tail` says: the
 * same input and the same errors, whenever it was written. */
static int same_reason(const char *reason_path, const dp_buf *head, const dp_buf *tail) {
    int fd = open(reason_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const size_t at_len = sizeof QUARANTINED_AT - 1;
    size_t cap = head->len + tail->len + at_len + 33;
    char *buf = malloc(cap + 1);
    ssize_t n = buf ? read_full(fd, buf, cap + 1) : -1;
    close(fd);
    int same = 0;
    if (n > 0 && (size_t)n <= cap && (size_t)n > head->len + at_len &&
        memcmp(buf, head->data, head->len) == 0 && memcmp(buf + head->len, QUARANTINED_AT, at_len) == 0) {
        size_t i = head->len + at_len;
        if (i < (size_t)n && buf[i] == '-') i++;
        while (i < (size_t)n && buf[i] >= '0' && buf[i] <= '9') i++;
        same = (size_t)n - i == tail->len && memcmp(buf + i, tail->data, tail->len) == 0;
    }
    free(buf);
    return same;
}

/* The reason JSON around its time: head is {"input":..., tail is the
 * errors and the closing brace, newline included. */
static void reason_parts(const char *input_path, const char *not_copied, const dp_error *errors, size_t n_errors,
                         dp_buf *head, dp_buf *tail) {
    int first = 1;
    dp_buf_putc(head, '{');
    dp_json_kv_bytes(head, &first, "input", input_path);
    if (not_copied) dp_json_kv_str(head, &first, "not_copied", not_copied);
    first = 0; /* tail continues the object */
    dp_quarantine_errors_json(tail, &first, errors, n_errors);
    dp_buf_puts(tail, "}\n");
}

void dp_quarantine_errors_json(dp_buf *b, int *first, const dp_error *errors, size_t n_errors) {
    /* The first error, flat, as most readers want; all of them below. */
    const dp_error *e0 = n_errors ? &errors[0] : NULL;
    dp_json_kv_str(b, first, "error", e0 ? e0->msg : "unknown");
    dp_json_kv_str(b, first, "stage", e0 ? dp_error_stage(e0->kind) : "unknown");
    dp_json_key(b, first, "offset");
    if (e0 && e0->has_offset) dp_buf_u64(b, e0->offset);
    else dp_buf_puts(b, "null");
    dp_json_kv_bytes(b, first, "part", e0 ? e0->where : NULL);
    dp_json_key(b, first, "errors");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < n_errors; i++) {
        int f = 1;
        dp_buf_puts(b, i ? ",{" : "{");
        dp_json_kv_bytes(b, &f, "part", errors[i].where);
        dp_json_kv_str(b, &f, "stage", dp_error_stage(errors[i].kind));
        dp_json_key(b, &f, "offset");
        if (errors[i].has_offset) dp_buf_u64(b, errors[i].offset);
        else dp_buf_puts(b, "null");
        dp_json_kv_str(b, &f, "error", errors[i].msg);
        dp_buf_putc(b, '}');
    }
    dp_buf_putc(b, ']');
}

/* Finds the name this rejection is kept under: dir/base, or dir/base.1,
 * base.2 ...  A name whose copy and reason already say this rejection
 * (same_bytes, same_reason) is this rejection: *reused.  Without `in`
 * (nothing is copied) a name is this rejection when it has no copy and
 * its reason is the same.  Otherwise the first name with no copy (and,
 * for a reason alone, no reason either) is free.  A reason with no copy
 * beside it is what a crash between the two writes left: the name is
 * free for the copy, and the reason is written again.  0, or -1 (errno). */
static int pick_name(const char *dir, const char *base, int in, const dp_buf *head, const dp_buf *tail, char *path,
                     size_t cap, int *reused) {
    *reused = 0;
    for (int i = 0; i < 100000; i++) {
        if (i == 0) snprintf(path, cap, "%s/%s", dir, base);
        else snprintf(path, cap, "%s/%s.%d", dir, base, i);
        char rpath[PATH_MAX + 8];
        snprintf(rpath, sizeof rpath, "%s.reason", path);
        struct stat st;
        int copy_exists = lstat(path, &st) == 0;
        if (in < 0) {
            if (copy_exists) continue;
            if (lstat(rpath, &st) != 0) return 0;
            if (same_reason(rpath, head, tail)) {
                *reused = 1;
                return 0;
            }
            continue;
        }
        if (!copy_exists) return 0;
        int old = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
        if (old < 0) continue;
        int same = fstat(old, &st) == 0 && S_ISREG(st.st_mode) && same_reason(rpath, head, tail) && same_bytes(in, old);
        close(old);
        if (same) {
            *reused = 1;
            return 0;
        }
    }
    errno = EEXIST;
    return -1;
}

/* A new file beside `final` under a dot-name (.BASE.XXXXXX: never read
 * as an input, and renamed into place only once whole), 0600.  -1 and
 * errno on failure. */
static int temp_beside(const char *dir, const char *final, char *tmp, size_t cap) {
    const char *name = strrchr(final, '/');
    name = name ? name + 1 : final;
    if (snprintf(tmp, cap, "%s/.%s.XXXXXX", dir, name) >= (int)cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkstemp(tmp); /* mode 0600 */
}

/* Keeps one rejection: its reason, then a copy of `in` (when not -1),
 * each written whole under a dot-name first and renamed into place, so a
 * crash at any point leaves either nothing under the name, or a reason
 * alone (which the next attempt takes over), or both: never half a copy.
 * What a crash leaves under a dot-name is never read again. */
static int keep(const char *dir, const char *input_path, int in, const struct stat *in_st, const char *not_copied,
                const dp_error *errors, size_t n_errors, char *quarantined_as, dp_error *err) {
    const char *base = strrchr(input_path, '/');
    base = base ? base + 1 : input_path;
    if (!*base) base = "input";
    dp_buf head = DP_BUF_INIT, tail = DP_BUF_INIT, j = DP_BUF_INIT;
    reason_parts(input_path, not_copied, errors, n_errors, &head, &tail);
    dp_buf_append(&j, head.data, head.len);
    dp_buf_puts(&j, QUARANTINED_AT);
    dp_buf_i64(&j, (int64_t)time(NULL));
    dp_buf_append(&j, tail.data, tail.len);
    int rc = 0, reused = 0;
    char path[PATH_MAX] = "", rpath[PATH_MAX + 8], tmp[PATH_MAX + 16];
    /* Two rejections of inputs with the same base name (two workers, or
     * two processes on one quarantine) would pick the same free name, and
     * the reason of one would land beside the copy of the other: picking
     * and writing hold the folder's lock (flock: per open, so it parts
     * threads of one process as well as processes). */
    int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0 || flock(lock, LOCK_EX) != 0)
        rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot lock %s: %s", dir, strerror(errno));
    else if (head.failed || tail.failed || j.failed)
        rc = dp_error_set(err, DP_ERR_NOMEM, "quarantine: out of memory");
    else if (pick_name(dir, base, in, &head, &tail, path, sizeof path, &reused) != 0)
        rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot keep %s in %s: %s", input_path, dir, strerror(errno));
    snprintf(rpath, sizeof rpath, "%s.reason", path);
    /* the reason: whole, then in place (a reason written again replaces) */
    if (rc == 0) {
        int fd = temp_beside(dir, rpath, tmp, sizeof tmp);
        int ok = fd >= 0 && dp_fs_write_all(fd, j.data, j.len) == 0;
        if (fd >= 0 && close(fd) != 0) ok = 0;
        if (!ok || rename(tmp, rpath) != 0) {
            rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot write %s: %s", rpath, strerror(errno));
            if (fd >= 0) unlink(tmp);
        }
    }
    /* the copy: whole, never more readable than the original, then in
     * place without replacing anything */
    if (rc == 0 && in >= 0 && !reused) {
        int fd = temp_beside(dir, path, tmp, sizeof tmp);
        if (fd < 0)
            rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot create a copy of %s in %s: %s", input_path, dir,
                              strerror(errno));
        else if (lseek(in, 0, SEEK_SET) != 0)
            rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot reread %s: %s", input_path, strerror(errno));
        else if (dp_fs_copy_fd(in, fd) != 0)
            rc = dp_error_set(err, DP_ERR_IO, "quarantine: copying %s failed: %s", input_path, strerror(errno));
        else if (fchmod(fd, in_st->st_mode & 0600) != 0)
            rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot set the mode of %s: %s", path, strerror(errno));
        if (fd >= 0 && close(fd) != 0 && rc == 0)
            rc = dp_error_set(err, DP_ERR_IO, "quarantine: writing %s failed: %s", path, strerror(errno));
        if (rc == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0)
            rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot keep %s as %s: %s", input_path, path, strerror(errno));
        if (fd >= 0 && rc != 0) unlink(tmp);
    }
    if (lock >= 0) close(lock); /* and with it the lock */
    dp_buf_free(&head);
    dp_buf_free(&tail);
    dp_buf_free(&j);
    if (rc == 0 && quarantined_as) {
        const char *kept = in >= 0 ? path : rpath;
        size_t n = strlen(kept) < PATH_MAX - 1 ? strlen(kept) : PATH_MAX - 1;
        memcpy(quarantined_as, kept, n);
        quarantined_as[n] = '\0';
    }
    return rc;
}

static int make_dir(const char *dir, dp_error *err) {
    if (dp_fs_mkdir_mode(dir, 0700) != 0)
        return dp_error_set(err, DP_ERR_IO, "quarantine: cannot create %s: %s", dir, strerror(errno));
    return 0;
}

int dp_quarantine_file(const char *dir, const char *input_path, const dp_error *errors,
                       size_t n_errors, char *quarantined_as, dp_error *err) {
    if (make_dir(dir, err) != 0) return -1;
    struct stat st;
    /* a socket cannot be opened, a FIFO or a device would not end: their
     * reason alone is kept, and they are never opened */
    char why[64];
    if (stat(input_path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(why, sizeof why, "not a regular file (%s): not copied", dp_fs_kind(st.st_mode));
        return keep(dir, input_path, -1, NULL, why, errors, n_errors, quarantined_as, err);
    }
    /* O_NONBLOCK: a FIFO swapped in must not wait for a writer */
    int in = open(input_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (in < 0) return dp_error_set(err, DP_ERR_IO, "quarantine: cannot reopen %s: %s", input_path, strerror(errno));
    if (fstat(in, &st) != 0) {
        int e = errno;
        close(in);
        return dp_error_set(err, DP_ERR_IO, "quarantine: cannot stat %s: %s", input_path, strerror(e));
    }
    int rc;
    if (!S_ISREG(st.st_mode)) {
        close(in);
        snprintf(why, sizeof why, "not a regular file (%s): not copied", dp_fs_kind(st.st_mode));
        rc = keep(dir, input_path, -1, NULL, why, errors, n_errors, quarantined_as, err);
    } else {
        rc = keep(dir, input_path, in, &st, NULL, errors, n_errors, quarantined_as, err);
        close(in);
    }
    return rc;
}

int dp_quarantine_reason(const char *dir, const char *input_path, const char *why_not_copied,
                         const dp_error *errors, size_t n_errors, char *quarantined_as, dp_error *err) {
    if (make_dir(dir, err) != 0) return -1;
    return keep(dir, input_path, -1, NULL, why_not_copied, errors, n_errors, quarantined_as, err);
}

int dp_quarantine_fd(const char *dir, const char *input_name, int fd, const dp_error *errors, size_t n_errors,
                     char *quarantined_as, dp_error *err) {
    if (make_dir(dir, err) != 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return dp_error_set(err, DP_ERR_IO, "quarantine: %s is not held in a regular file", input_name);
    return keep(dir, input_name, fd, &st, NULL, errors, n_errors, quarantined_as, err);
}
