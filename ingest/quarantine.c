/* quarantine — keeping what was rejected, with the reason.
 *
 * A rejected report is evidence: the team has to show a regulator that
 * nothing was silently dropped, and a parser bug must be fixable by
 * replaying the input.  So the input is copied byte for byte into the
 * quarantine folder, and a sidecar NAME.reason (JSON) says which part
 * failed, at which stage, at which byte offset, and why.  An existing copy
 * is never overwritten: names get a numeric suffix instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_fs.h"
#include "dp_json.h"
#include "ingest.h"

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates dir/base, or dir/base.1, base.2 ... with O_EXCL: no overwrite,
 * even with several dmarcpipe processes sharing one quarantine. */
static int create_unique(const char *dir, const char *base, char *path, size_t cap) {
    for (int i = 0; i < 100000; i++) {
        if (i == 0) snprintf(path, cap, "%s/%s", dir, base);
        else snprintf(path, cap, "%s/%s.%d", dir, base, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) return fd;
        if (errno != EEXIST) return -1;
    }
    errno = EEXIST;
    return -1;
}

int dp_quarantine_file(const char *dir, const char *input_path, const dp_error *errors,
                       size_t n_errors, char *quarantined_as, dp_error *err) {
    if (dp_mkdir_p(dir) != 0)
        return dp_error_set(err, DP_ERR_IO, "quarantine: cannot create %s: %s", dir, strerror(errno));
    const char *base = strrchr(input_path, '/');
    base = base ? base + 1 : input_path;
    if (!*base) base = "input";
    char path[PATH_MAX];
    int out = create_unique(dir, base, path, sizeof path);
    if (out < 0)
        return dp_error_set(err, DP_ERR_IO, "quarantine: cannot create a copy of %s in %s: %s",
                            input_path, dir, strerror(errno));
    int in = open(input_path, O_RDONLY | O_CLOEXEC);
    int rc = 0;
    if (in < 0) {
        rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot reopen %s: %s", input_path, strerror(errno));
    } else {
        char buf[65536];
        for (;;) {
            ssize_t n = read(in, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 || (n > 0 && write_all(out, buf, (size_t)n) != 0)) {
                rc = dp_error_set(err, DP_ERR_IO, "quarantine: copying %s failed: %s", input_path,
                                  strerror(errno));
                break;
            }
            if (n == 0) break;
        }
        close(in);
    }
    if (close(out) != 0 && rc == 0)
        rc = dp_error_set(err, DP_ERR_IO, "quarantine: writing %s failed: %s", path, strerror(errno));
    if (rc != 0) {
        unlink(path);
        return rc;
    }

    dp_buf j = DP_BUF_INIT;
    int first = 1;
    dp_buf_putc(&j, '{');
    dp_json_kv_str(&j, &first, "input", input_path);
    dp_json_kv_i64(&j, &first, "quarantined_at", (int64_t)time(NULL));
    /* The first error, flat, as most readers want; all of them below. */
    const dp_error *e0 = n_errors ? &errors[0] : NULL;
    dp_json_kv_str(&j, &first, "error", e0 ? e0->msg : "unknown");
    dp_json_kv_str(&j, &first, "stage", e0 ? dp_error_stage(e0->kind) : "unknown");
    dp_json_key(&j, &first, "offset");
    if (e0 && e0->has_offset) dp_buf_u64(&j, e0->offset);
    else dp_buf_puts(&j, "null");
    dp_json_kv_str(&j, &first, "part", e0 ? e0->where : NULL);
    dp_json_key(&j, &first, "errors");
    dp_buf_putc(&j, '[');
    for (size_t i = 0; i < n_errors; i++) {
        int f = 1;
        dp_buf_puts(&j, i ? ",{" : "{");
        dp_json_kv_str(&j, &f, "part", errors[i].where);
        dp_json_kv_str(&j, &f, "stage", dp_error_stage(errors[i].kind));
        dp_json_key(&j, &f, "offset");
        if (errors[i].has_offset) dp_buf_u64(&j, errors[i].offset);
        else dp_buf_puts(&j, "null");
        dp_json_kv_str(&j, &f, "error", errors[i].msg);
        dp_buf_putc(&j, '}');
    }
    dp_buf_puts(&j, "]}\n");

    char rpath[PATH_MAX + 8];
    snprintf(rpath, sizeof rpath, "%s.reason", path);
    int rfd = open(rpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rfd < 0 || j.failed || write_all(rfd, j.data, j.len) != 0) {
        rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot write %s: %s", rpath, strerror(errno));
    }
    if (rfd >= 0 && close(rfd) != 0 && rc == 0)
        rc = dp_error_set(err, DP_ERR_IO, "quarantine: cannot write %s: %s", rpath, strerror(errno));
    dp_buf_free(&j);
    if (rc == 0 && quarantined_as) snprintf(quarantined_as, PATH_MAX, "%s", path);
    return rc;
}
