/* s3_state — where the S3 source keeps what a follower's listing starts
 * from: {"source", "watermark"} in STATE/sources/s3-HASH.json, the greatest
 * key under the prefix whose object was committed.  JSON, so that a person
 * can read it.
 *
 * The file only ever lags behind the truth: the run's state knows every
 * counted object by its key, so a file lost, or written before a crash could
 * update it, costs a longer listing and no count.  So it is written whole
 * and atomically, and a file that cannot be read is said and set aside.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_fs.h"
#include "s3_state.h"

static uint64_t fnv1a(const char *p) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h;
}

char *dp_s3_state_path(const char *state_dir, const char *identity, dp_error *err) {
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b, "%s/sources", state_dir);
    if (!b.failed && dp_fs_mkdir_mode(b.data, 0700) != 0) {
        int e = errno;
        dp_error_set(err, DP_ERR_IO, "cannot create %s: %s", b.data, strerror(e));
        dp_buf_free(&b);
        return NULL;
    }
    dp_buf_printf(&b, "/s3-%016llx.json", (unsigned long long)fnv1a(identity));
    if (b.failed) {
        dp_buf_free(&b);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return b.data;
}

char *dp_s3_state_load(const char *path, const char *identity, const char *display) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        if (access(path, F_OK) == 0) {
            char a[DP_ERROR_TEXT_MAX];
            fprintf(stderr, "dmarcpipe run: %s: cannot read %s (%s): the bucket is listed from its start\n", display,
                    dp_error_text(path, a), je.text);
        }
        return NULL;
    }
    const char *src = json_string_value(json_object_get(j, "source"));
    const char *w = json_string_value(json_object_get(j, "watermark"));
    char *out = src && w && *w && strcmp(src, identity) == 0 ? strdup(w) : NULL;
    json_decref(j);
    return out;
}

/* The folder of `path`, fsync'ed: the rename in it is durable. */
static void sync_parent(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int dp_s3_state_save(const char *path, const char *identity, const char *display, const char *watermark) {
    json_t *j = json_pack("{s:s, s:s}", "source", identity, "watermark", watermark ? watermark : "");
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char tmp[PATH_MAX + 16];
    int rc = -1, e = ENOMEM;
    if (text && snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) < (int)sizeof tmp) {
        int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
        e = errno;
        if (fd >= 0) {
            int ok = dp_fs_write_all(fd, text, strlen(text)) == 0 && dp_fs_write_all(fd, "\n", 1) == 0 &&
                     fsync(fd) == 0;
            e = errno;
            if (close(fd) != 0 && ok) ok = 0, e = errno;
            if (ok && rename(tmp, path) == 0)
                rc = 0;
            else if (ok)
                e = errno;
            if (rc != 0) unlink(tmp);
        }
    }
    free(text);
    if (rc == 0) {
        sync_parent(path);
    } else {
        char a[DP_ERROR_TEXT_MAX];
        fprintf(stderr, "dmarcpipe run: %s: cannot write %s: %s\n", display, dp_error_text(path, a), strerror(e));
    }
    return rc;
}
