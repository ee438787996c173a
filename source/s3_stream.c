/* s3_stream — an object's bytes as a file descriptor ingest reads, filled
 * from its GET by a thread of the S3 client: streamed, no temporary file,
 * constant memory, for what ingest reads front to back.
 *
 * The thread looks at the object's first bytes before open() returns:
 *   - gzip (1f 8b), zip (PK\3\4), zstd (28 b5 2f fd) or XML ('<' after an
 *     optional BOM and white space): ingest reads it once, in order, so
 *     it is streamed through one end of a socketpair while the thread
 *     writes the rest into the other;
 *   - anything else (a bucket of raw mail, as SES delivers it): GMime
 *     seeks in a message, so the whole object goes into an unlinked
 *     temporary file (O_TMPFILE), and open() returns that, rewound.
 *
 * Why a socketpair rather than a pipe: a pipe can only end, and a reader
 * cannot tell an object that ended from one whose GET broke off for good,
 * which ingest would then take for a truncated report and reject.  An
 * AF_UNIX stream socket can end in an error: the thread keeps one byte
 * unread in its own end's receive queue (written from the reader's end
 * before it is handed out), and Linux gives the reader ECONNRESET, after
 * the bytes already sent, when a socket is closed with unread data.  A
 * transfer that succeeds reads that byte back first, and the reader sees
 * a clean end of file.  So a broken transfer is a read error, which the
 * run treats as its own trouble (the input is left for a later run), and
 * the thread says why in the client's log.
 *
 * The reader may close its end early (ingest rejected the input, or a
 * limit was hit): the thread's next send fails with EPIPE (MSG_NOSIGNAL:
 * no SIGPIPE, and no signal disposition of the process changed), the
 * transfer ends, and the thread exits.  Threads are detached; the
 * client's free() waits for every one to have left (dp_s3_client_enter,
 * leave), so none outlives the client.
 */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_fs.h"
#include "s3_stream.h"

enum { PEEK = 512 }; /* bytes looked at before deciding: past any BOM and white space of an XML head */

typedef enum { PEEKING, STREAMING, SPOOLING } mode;

typedef struct transfer {
    dp_s3_client *c;
    char *bucket, *key;
    int whole;
    pthread_mutex_t lock;
    pthread_cond_t decided_cond;
    int refs;    /* open() and the thread */
    int decided; /* open() may return fd_out, or err when fd_out < 0 */
    int fd_out;
    dp_error err;
    /* the thread's own */
    mode m;
    unsigned char peek[PEEK];
    size_t npeek;
    int sock;  /* STREAMING: the thread's end */
    int spool; /* SPOOLING: the temporary file */
    int local_errno;
    uint64_t sent;
} transfer;

int dp_s3_stream_tmpfile(void) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.dmarcpipe-s3-XXXXXX", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
    return fd;
}

static void put(transfer *t) {
    pthread_mutex_lock(&t->lock);
    int last = --t->refs == 0;
    pthread_mutex_unlock(&t->lock);
    if (!last) return;
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->decided_cond);
    free(t->bucket);
    free(t->key);
    free(t);
}

/* open() may return now: fd, or -1 and t->err. */
static void publish(transfer *t, int fd) {
    pthread_mutex_lock(&t->lock);
    t->fd_out = fd;
    t->decided = 1;
    pthread_cond_signal(&t->decided_cond);
    pthread_mutex_unlock(&t->lock);
}

static int streamable(const unsigned char *p, size_t n) {
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) return 1;
    if (n >= 4 && memcmp(p, "PK\3\4", 4) == 0) return 1;
    if (n >= 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0) return 1;
    size_t i = n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    return i < n && p[i] == '<';
}

static int send_all(int fd, const void *p, size_t n) {
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Out of PEEKING, with the bytes peeked: 0, or -1 (t->local_errno). */
static int decide(transfer *t) {
    if (!t->whole && streamable(t->peek, t->npeek)) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            t->local_errno = errno;
            return -1;
        }
        /* the byte left unread in the thread's end: see the top of this file */
        if (send_all(sv[0], "x", 1) != 0 || send_all(sv[1], t->peek, t->npeek) != 0) {
            t->local_errno = errno;
            close(sv[0]);
            close(sv[1]);
            return -1;
        }
        t->m = STREAMING;
        t->sock = sv[1];
        t->sent = t->npeek;
        publish(t, sv[0]);
        return 0;
    }
    if ((t->spool = dp_s3_stream_tmpfile()) < 0 || dp_fs_write_all(t->spool, t->peek, t->npeek) != 0) {
        t->local_errno = errno;
        return -1;
    }
    t->m = SPOOLING;
    return 0;
}

static int sink(void *ctx, const char *data, size_t n) {
    transfer *t = ctx;
    if (t->m == PEEKING) {
        size_t k = n < PEEK - t->npeek ? n : PEEK - t->npeek;
        memcpy(t->peek + t->npeek, data, k);
        t->npeek += k;
        data += k;
        n -= k;
        if (t->npeek < PEEK) return 0;
        if (decide(t) != 0) return -1;
    }
    if (n == 0) return 0;
    if (t->m == STREAMING) {
        if (send_all(t->sock, data, n) != 0) return -1; /* the reader went away */
        t->sent += n;
        return 0;
    }
    if (dp_fs_write_all(t->spool, data, n) != 0) {
        t->local_errno = errno;
        return -1;
    }
    return 0;
}

static void *run(void *arg) {
    transfer *t = arg;
    dp_s3_client *c = t->c;
    int stopped = 0;
    dp_error err;
    dp_error_clear(&err);
    int rc = dp_s3_client_get(c, t->bucket, t->key, sink, t, &stopped, &err);
    if (rc == DP_S3_OK && t->m == PEEKING && decide(t) != 0) rc = DP_S3_FAILED, stopped = 1;
    if (t->m == STREAMING) {
        if (rc == DP_S3_OK) {
            char b;
            /* the byte kept unread goes: the reader gets a clean end of file */
            while (recv(t->sock, &b, 1, MSG_DONTWAIT) < 0 && errno == EINTR) {
            }
        } else if (!stopped) {
            char a[DP_ERROR_TEXT_MAX];
            char b[DP_ERROR_TEXT_MAX];
            dp_log_warn(dp_s3_client_log(c), "s3",
                        DP_LOG_FIELDS(DP_LOG_STR("bucket", t->bucket), DP_LOG_STR("key", t->key),
                                      DP_LOG_U64("bytes", t->sent), DP_LOG_STR("error", err.msg)),
                        "dmarcpipe run: s3://%s/%s: the GET broke off after %llu bytes: %s", t->bucket,
                        dp_error_text(t->key, b), (unsigned long long)t->sent, dp_error_text(err.msg, a));
        }
        close(t->sock);
    } else if (rc == DP_S3_OK) {
        if (lseek(t->spool, 0, SEEK_SET) != 0) {
            dp_error_set(&t->err, DP_ERR_IO, "s3://%s/%s: cannot rewind the local copy: %s", t->bucket, t->key,
                         strerror(errno));
            close(t->spool);
            publish(t, -1);
        } else {
            publish(t, t->spool);
        }
    } else {
        if (t->spool >= 0) close(t->spool);
        if (stopped && t->local_errno)
            dp_error_set(&t->err, DP_ERR_IO, "s3://%s/%s: cannot keep a local copy: %s", t->bucket, t->key,
                         strerror(t->local_errno));
        else
            t->err = err;
        publish(t, -1);
    }
    put(t);
    dp_s3_client_leave(c);
    return NULL;
}

int dp_s3_stream_open(dp_s3_client *c, const char *bucket, const char *key, int whole, dp_error *err) {
    transfer *t = calloc(1, sizeof *t);
    if (t) {
        t->bucket = strdup(bucket);
        t->key = strdup(key);
    }
    if (!t || !t->bucket || !t->key) {
        if (t) free(t->bucket), free(t->key), free(t);
        return dp_error_set(err, DP_ERR_NOMEM, "s3://%s/%s: out of memory", bucket, key);
    }
    t->c = c;
    t->whole = whole;
    t->refs = 2;
    t->sock = t->spool = t->fd_out = -1;
    t->m = PEEKING;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->decided_cond, NULL);
    dp_s3_client_enter(c);
    pthread_t th;
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        e = pthread_create(&th, &attr, run, t);
        pthread_attr_destroy(&attr);
    }
    if (e != 0) {
        dp_s3_client_leave(c);
        t->refs = 1;
        put(t);
        return dp_error_set(err, DP_ERR_IO, "s3://%s/%s: cannot start a thread: %s", bucket, key, strerror(e));
    }
    pthread_mutex_lock(&t->lock);
    while (!t->decided)
        pthread_cond_wait(&t->decided_cond, &t->lock);
    int fd = t->fd_out;
    if (fd < 0) *err = t->err;
    pthread_mutex_unlock(&t->lock);
    put(t);
    return fd;
}
