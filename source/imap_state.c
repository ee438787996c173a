/* imap_state — where the IMAP source keeps what a mailbox's next listing
 * starts from: {"source", "uidvalidity", "watermark", "rejected"} in
 * STATE/sources/imap-HASH.json, JSON so that a person can read it.
 *
 * The file only ever lags behind the truth: the run's state knows every
 * counted message by its key, so a file lost, or written before a crash
 * could update it, costs a longer listing and no count.  So it is written
 * whole and atomically (a reader finds the old file or the new one, never
 * half of one), and a file that cannot be read is said and set aside.
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
#include "imap_state.h"

static uint64_t fnv1a(const char *p) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h;
}

char *dp_imap_state_path(const char *state_dir, const char *identity, dp_error *err) {
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b, "%s/sources", state_dir);
    if (!b.failed && dp_fs_mkdir_mode(b.data, 0700) != 0) {
        int e = errno;
        dp_error_set(err, DP_ERR_IO, "cannot create %s: %s", b.data, strerror(e));
        dp_buf_free(&b);
        return NULL;
    }
    dp_buf_printf(&b, "/imap-%016llx.json", (unsigned long long)fnv1a(identity));
    if (b.failed) {
        dp_buf_free(&b);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return b.data;
}

void dp_imap_state_load(const char *path, const char *identity, const char *display, dp_imap_state *st) {
    st->validity = st->watermark = 0;
    st->rejected.n = 0;
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        if (access(path, F_OK) == 0) {
            char a[DP_ERROR_TEXT_MAX];
            fprintf(stderr, "dmarcpipe run: %s: cannot read %s (%s): the mailbox is listed from its start\n",
                    display, dp_error_text(path, a), je.text);
        }
        return;
    }
    const char *src = json_string_value(json_object_get(j, "source"));
    json_int_t v = json_integer_value(json_object_get(j, "uidvalidity"));
    json_int_t w = json_integer_value(json_object_get(j, "watermark"));
    if (src && strcmp(src, identity) == 0 && v > 0 && v <= UINT32_MAX && w >= 0 && w <= UINT32_MAX) {
        st->validity = (uint32_t)v;
        st->watermark = (uint32_t)w;
        size_t i;
        json_t *u;
        json_array_foreach(json_object_get(j, "rejected"), i, u) {
            json_int_t x = json_integer_value(u);
            if (x > 0 && x <= UINT32_MAX) dp_imap_uidset_add(&st->rejected, (uint32_t)x);
        }
    }
    json_decref(j);
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

int dp_imap_state_save(const char *path, const char *identity, const char *display, const dp_imap_state *st) {
    json_t *rej = json_array();
    for (size_t i = 0; rej && i < st->rejected.n; i++)
        json_array_append_new(rej, json_integer(st->rejected.v[i]));
    json_t *j =
        rej ? json_pack("{s:s, s:I, s:I, s:o}", "source", identity, "uidvalidity", (json_int_t)st->validity,
                        "watermark", (json_int_t)st->watermark, "rejected", rej)
            : NULL;
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
        fprintf(stderr, "dmarcpipe run: %s: cannot write %s: %s\n", display, dp_error_text(path, a),
                strerror(e));
    }
    return rc;
}
