/* ingest — the stage's entry points: an input in, its reports out.
 *
 * Each entry point sets up one dp_unwrap for the input, hands its bytes to
 * dp_unwrap_stream() (unwrap.c), which sniffs them and unwraps whatever
 * they hold, and then says what became of the input as a whole.  An input
 * that turns out to be mail is parsed a second time by GMime (mime.c),
 * which needs to seek: a file is rewound, memory is read again.
 */
#include <errno.h>
#include <fcntl.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest_internal.h"

void dp_ingest_limits_default(dp_ingest_limits *lim) {
    lim->max_report_bytes = 1ull << 30;
    lim->max_ratio = 250;
    lim->max_xml_depth = 64;
    lim->max_text_bytes = 64 * 1024;
    lim->max_layers = 6;
    lim->max_parts = 10000;
    lim->max_auth_results = 1000;
    lim->max_record_bytes = 1u << 20;
    lim->max_range_seconds = (int64_t)31 * 86400;
    lim->compute_sha256 = 0;
    lim->readahead_after = 0;
}

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_init_once(void) { g_mime_init(); }
void dp_ingest_global_init(void) { pthread_once(&gmime_once, gmime_init_once); }

static int fail(dp_unwrap *u, const char *part, dp_errkind kind, const char *msg) {
    dp_error err;
    dp_error_set(&err, kind, "%s", msg);
    dp_unwrap_fail(u, NULL, &err, part);
    return -1;
}

static int finish(dp_unwrap *u, int rc, dp_error *err) {
    if (rc == 0 && u->res->reports == 0 && u->res->rejected == 0 && u->res->skipped == 0)
        rc = fail(u, u->input, DP_ERR_NOT_AGGREGATE, "no aggregate report found");
    if (u->res->rejected) rc = -1;
    if (rc != 0 && err) {
        if (u->have_err) *err = u->first_err;
        else dp_error_set(err, DP_ERR_NOT_AGGREGATE, "no aggregate report found");
    }
    return rc == 0 ? 0 : -1;
}

static void unwrap_init(dp_unwrap *u, const dp_ingest_limits *lim, const char *name,
                        const dp_report_handler *h, void *ctx, dp_ingest_result *res,
                        dp_ingest_limits *deflt) {
    memset(u, 0, sizeof *u);
    if (!lim) { dp_ingest_limits_default(deflt); lim = deflt; }
    u->lim = lim;
    u->h = h;
    u->ctx = ctx;
    u->res = res;
    u->input = name;
    memset(res, 0, sizeof *res);
}

/* A regular file, or (from a source that streams, dp_ingest_fd only) a
 * pipe or a socket: everything but mail is read front to back once.  Mail
 * is read again by GMime, which seeks, so a stream that turns out to hold
 * mail is refused; a source hands mail over in a regular file. */
static int unwrap_fd(dp_unwrap *u, const char *name, int fd, int streams_ok) {
    struct stat st;
    int seekable = 1;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (!streams_ok || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
            return fail(u, name, DP_ERR_INPUT, "not a regular file");
        seekable = 0;
    }
    dp_fd_stream fs;
    dp_stream_fd_init(&fs, fd, &u->root_in);
    int rc = dp_unwrap_stream(u, &fs.base, name, 0, 1);
    if (rc == DP_UNWRAP_IS_MAIL) {
        u->root_in = 0;
        if (!seekable)
            rc = fail(u, name, DP_ERR_INPUT,
                      "mail read from a stream (a pipe or socket) cannot be parsed: GMime needs to seek; the source "
                      "must hand mail over in a regular file");
        else if (lseek(fd, (off_t)u->mail_skip, SEEK_SET) != (off_t)u->mail_skip)
            rc = fail(u, name, DP_ERR_IO, "cannot rewind the input to parse it as mail");
        else
            rc = dp_mime_unwrap_fd(u, fd, name, u->mail_kind == DP_KIND_MBOX);
    }
    return rc;
}

int dp_ingest_fd(const dp_ingest_limits *lim, const char *name, int fd, const dp_report_handler *h,
                 void *ctx, dp_ingest_result *res, dp_error *err) {
    dp_unwrap u;
    dp_ingest_limits deflt;
    unwrap_init(&u, lim, name, h, ctx, res, &deflt);
    return finish(&u, unwrap_fd(&u, name, fd, 1), err);
}

int dp_ingest_file(const dp_ingest_limits *lim, const char *path, const dp_report_handler *h,
                   void *ctx, dp_ingest_result *res, dp_error *err) {
    dp_unwrap u;
    dp_ingest_limits deflt;
    unwrap_init(&u, lim, path, h, ctx, res, &deflt);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is then
     * refused as not a regular file) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        char msg[300];
        snprintf(msg, sizeof msg, "cannot open: %s", strerror(e));
        /* gone is the input's state; refused is the run's */
        return finish(&u, fail(&u, path, e == ENOENT ? DP_ERR_INPUT : DP_ERR_IO, msg), err);
    }
    int rc = unwrap_fd(&u, path, fd, 0);
    close(fd);
    return finish(&u, rc, err);
}

int dp_ingest_memory(const dp_ingest_limits *lim, const char *name, const void *data, size_t len,
                     const dp_report_handler *h, void *ctx, dp_ingest_result *res, dp_error *err) {
    dp_unwrap u;
    dp_ingest_limits deflt;
    unwrap_init(&u, lim, name, h, ctx, res, &deflt);
    dp_mem_stream ms;
    dp_stream_mem_init(&ms, data, len, &u.root_in);
    int rc = dp_unwrap_stream(&u, &ms.base, name, 0, 1);
    if (rc == DP_UNWRAP_IS_MAIL) {
        u.root_in = 0;
        rc = dp_mime_unwrap_mem(&u, (const char *)data + u.mail_skip, len - u.mail_skip, name,
                                u.mail_kind == DP_KIND_MBOX);
    }
    return finish(&u, rc, err);
}
