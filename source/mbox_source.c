/* mbox_source — the messages of one mbox file, each an input.
 *
 * `mbox:PATH` is one mbox file (mboxo or mboxrd): messages one after the
 * other, each starting with a "From " line at the start of the file or
 * after a newline.  Mail systems append reports to such a file (a local
 * delivery agent, fetchmail, an archive exported from a mail client), and
 * the file only grows, so the source reads on from where it stopped.
 *
 * Scanning.  The file is read from the position reached with pread into
 * one 64 KiB buffer, never whole: a message boundary is found by looking
 * at the first bytes of each line.  A message runs from its "From " line
 * to the next one (the last to the end of the file).  Bytes before the
 * first "From " line are an input of their own, unless they are only
 * blank lines.  ">From " lines are left as they are: ingest's GMime reads
 * each message as it stands, "From " line included.
 *
 * Inputs.  open() copies the message's bytes into an unlinked temporary
 * file (O_TMPFILE under TMPDIR or /tmp) and hands that over: ingest needs a
 * descriptor that starts at the message and that GMime can seek in.  The
 * engine's workers call open() and reject() several at once: they share
 * one read-only descriptor of the mbox through pread, and nothing mutable.
 * Key: "mbox:REALPATH:DEV:INO:START"; name: "PATH!message@START".
 *
 * Position.  STATE/sources/mbox-HASH.json (HASH of the real path) holds
 * {dev, ino, offset, before}: offset is the end of the longest run of
 * messages from the start that are all acknowledged, so a restart reads on
 * from there, and a file that grew is read from where it stopped.  It is
 * written whole (a temporary file, fsync, rename) on the run's thread: by
 * ack(), at most once a second and whenever every message listed is
 * acknowledged, and by the next next() and by close when it moved since.  A crash before it is written costs nothing
 * but a rescan: the state remembers every counted message by its key
 * (remember_inputs), so messages read again are skipped, not counted.  The
 * file is read from 0 again, with one warning, when it was replaced (another
 * inode), is shorter than the offset, or no longer holds at the offset what
 * it held (no "From " line there, or other bytes before it: `before` is a
 * hash of the 1 KiB before the offset, which catches a mail client that
 * rewrote the file in place).  The report dedup makes reading again safe.
 * Without a state the file is read from 0 at every run.
 *
 * Following.  Each next() lists the messages that are complete: one is once
 * another "From " line follows it, and the last one once the file's size
 * and mtime stayed the same since the previous next() (a writer still
 * appending it waits).  Messages listed before and not acknowledged are
 * listed again; one held (its rejection could not be kept) is not listed
 * again by this process, and the position stays before it until a later
 * process takes it.  When the name comes to hold another file (rotated,
 * replaced), the old file is first read to its end (its last message is
 * whole: its writer has moved on), then the new one from 0, with a warning;
 * while the name holds nothing, the old file is read on.  A file cut short
 * while followed is read again from 0, with a warning.
 *
 * Rejecting.  The message's bytes are copied out again and kept in the
 * quarantine with their reasons (ingest's dp_quarantine_fd).
 *
 * Limits.  A writer that stops in the middle of the last message for a
 * whole poll has it taken as it is (and rejected, when it holds no whole
 * report).  mboxcl's Content-Length is not read: a body line starting with
 * "From " that was not escaped splits a message, as in most mail readers.
 * Memory: per message listed and not yet behind the position, its offsets
 * (16 bytes and two flags); nothing per message behind it.
 */
#define _GNU_SOURCE /* O_TMPFILE, copy_file_range */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_clock.h"
#include "dp_fs.h"
#include "dp_json.h"
#include "ingest.h"
#include "source_internal.h"

#define SCAN_BUF (64u * 1024)
#define BEFORE_BYTES 1024 /* what `before` hashes */

/* One message listed and not yet behind the position. */
typedef struct span {
    uint64_t start, end;
    unsigned char acked, held;
} span;

/* An input of this source: a dp_input and its message's offsets. */
typedef struct mbox_input {
    dp_input base;
    uint64_t start, end;
} mbox_input;

typedef struct mbox_source {
    dp_source base;
    char *path;           /* as given */
    char *real;           /* its real path (the key's and the position's) */
    char *quarantine_dir; /* NULL: rejections only logged */
    char *tmp_dir;        /* where open() makes its temporary files */
    char *state_dir;      /* the run's state, or NULL */
    char *pos_path;       /* STATE/sources/mbox-HASH.json, or NULL */
    int follow, listed;
    int fd;               /* the mbox, read-only: pread, shared by the workers */
    dev_t dev;
    ino_t ino;
    /* the scan: the message not yet complete starts at `tail`; bytes up
     * to scanned are looked at; `m` chars of "From " matched at line
     * start `ls` (-1: not at a line start) */
    uint64_t tail, scanned, ls;
    int m, tail_from;     /* tail_from: the tail starts at a "From " line */
    off_t last_size;      /* following: the file on the previous next() */
    struct timespec last_mtime;
    int have_last, said_missing;
    /* messages listed, in file order: v[head..n) */
    span *v;
    size_t head, n, cap;
    uint64_t position;    /* end of the acknowledged prefix */
    int dirty;            /* position not yet written */
    double saved_at;
    unsigned char *buf;   /* the scan's buffer (run's thread only) */
} mbox_source;

static const char FROM[] = "From ";

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_OFFSET 0xcbf29ce484222325ull

/* pread until n bytes or the end of the file: bytes read, -1 on error. */
static ssize_t pread_full(int fd, void *p, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* The hash of the (up to) BEFORE_BYTES bytes before `off`; 0 when they
 * cannot be read. */
static uint64_t hash_before(int fd, uint64_t off) {
    unsigned char b[BEFORE_BYTES];
    uint64_t from = off > BEFORE_BYTES ? off - BEFORE_BYTES : 0;
    ssize_t r = pread_full(fd, b, (size_t)(off - from), from);
    return r == (ssize_t)(off - from) ? fnv1a(FNV_OFFSET, b, (size_t)r) : 0;
}

/* One warning about the mbox: `what`, then `why` after a colon. */
static void say(const mbox_source *ms, const char *what, const char *why) {
    char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
    dp_log_warn(ms->base.log, "mbox",
                DP_LOG_FIELDS(DP_LOG_STR("source", ms->path), DP_LOG_STR("event", what), DP_LOG_STR("detail", why)),
                "dmarcpipe run: mbox %s: %s%s%s", dp_error_text(ms->path, a), what, why ? ": " : "",
                why ? dp_error_text(why, b) : "");
}

static const char AGAIN[] = "reading it again from the start (reports counted before are duplicates)";

/* ---- the position ----------------------------------------------------------------- */

static int save_position(mbox_source *ms) {
    if (!ms->pos_path || ms->fd < 0) return 0;
    dp_buf j = DP_BUF_INIT;
    int first = 1;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hash_before(ms->fd, ms->position));
    dp_buf_putc(&j, '{');
    dp_json_kv_bytes(&j, &first, "path", ms->real);
    dp_json_kv_u64(&j, &first, "dev", (uint64_t)ms->dev);
    dp_json_kv_u64(&j, &first, "ino", (uint64_t)ms->ino);
    dp_json_kv_u64(&j, &first, "offset", ms->position);
    dp_json_kv_str(&j, &first, "before", hex);
    dp_buf_puts(&j, "}\n");
    int rc = j.failed ? -1 : dp_fs_replace(ms->pos_path, j.data, j.len);
    if (rc != 0) say(ms, "cannot keep the position", j.failed ? "out of memory" : strerror(errno));
    dp_buf_free(&j);
    if (rc == 0) {
        ms->dirty = 0;
        ms->saved_at = dp_clock_seconds();
    }
    return rc;
}

/* Where the last run stopped in the file now open, or 0 (with a warning
 * when the position no longer fits the file). */
static uint64_t load_position(mbox_source *ms, const struct stat *st) {
    if (!ms->pos_path) return 0;
    json_t *j = json_load_file(ms->pos_path, 0, NULL);
    if (!j) return 0; /* never written: a first run */
    uint64_t dev = (uint64_t)json_integer_value(json_object_get(j, "dev"));
    uint64_t ino = (uint64_t)json_integer_value(json_object_get(j, "ino"));
    uint64_t off = (uint64_t)json_integer_value(json_object_get(j, "offset"));
    const char *before = json_string_value(json_object_get(j, "before"));
    char hex[17] = "";
    const char *why = NULL;
    if (dev != (uint64_t)st->st_dev || ino != (uint64_t)st->st_ino) {
        why = "the file was replaced (another inode)";
    } else if (off > (uint64_t)st->st_size) {
        why = "the file is shorter than the position reached";
    } else if (off > 0) {
        char head[5];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hash_before(ms->fd, off));
        if (!before || strcmp(before, hex) != 0)
            why = "the file no longer holds what was read before the position reached";
        else if (off < (uint64_t)st->st_size &&
                 (pread_full(ms->fd, head, 5, off) != 5 || memcmp(head, FROM, 5) != 0))
            why = "no message starts at the position reached";
    }
    json_decref(j);
    if (why) {
        say(ms, why, AGAIN);
        return 0;
    }
    return off;
}

/* ---- the messages listed ------------------------------------------------------------ */

static int push_span(mbox_source *ms, uint64_t start, uint64_t end, int acked) {
    if (ms->head > 0 && ms->head * 2 >= ms->n) {
        memmove(ms->v, ms->v + ms->head, (ms->n - ms->head) * sizeof *ms->v);
        ms->n -= ms->head;
        ms->head = 0;
    }
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? 2 * ms->cap : 64;
        span *v = realloc(ms->v, cap * sizeof *v);
        if (!v) return -1;
        ms->v = v;
        ms->cap = cap;
    }
    ms->v[ms->n++] = (span){start, end, (unsigned char)acked, 0};
    return 0;
}

/* Moves the position over the acknowledged messages at the front. */
static void advance(mbox_source *ms) {
    while (ms->head < ms->n && ms->v[ms->head].acked) {
        ms->position = ms->v[ms->head].end;
        ms->head++;
        ms->dirty = 1;
    }
    if (ms->head == ms->n) ms->head = ms->n = 0;
}

static span *find_span(mbox_source *ms, uint64_t start) {
    size_t lo = ms->head, hi = ms->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ms->v[mid].start < start) lo = mid + 1;
        else hi = mid;
    }
    return lo < ms->n && ms->v[lo].start == start ? &ms->v[lo] : NULL;
}

/* Starts over at `from`: nothing listed, the scan there. */
static void restart_at(mbox_source *ms, uint64_t from) {
    ms->head = ms->n = 0;
    ms->position = ms->tail = ms->scanned = ms->ls = from;
    ms->m = 0; /* where a scan starts is a line start */
    ms->tail_from = 0;
    ms->have_last = 0;
    ms->dirty = 1;
}

/* ---- scanning ------------------------------------------------------------------------ */

/* Whether [start, end) is only blank lines (what some writers leave
 * before the first message): not an input. */
static int only_blank(mbox_source *ms, uint64_t start, uint64_t end) {
    if (end - start > 4096) return 0;
    unsigned char b[4096];
    if (pread_full(ms->fd, b, (size_t)(end - start), start) != (ssize_t)(end - start)) return 0;
    for (uint64_t i = 0; i < end - start; i++)
        if (b[i] != '\n' && b[i] != '\r' && b[i] != ' ' && b[i] != '\t') return 0;
    return 1;
}

/* The message [tail, end) is complete; the next starts at end, with a
 * "From " line when `from`. */
static int complete(mbox_source *ms, uint64_t end, int from) {
    int rc = 0;
    if (end > ms->tail) rc = push_span(ms, ms->tail, end, !ms->tail_from && only_blank(ms, ms->tail, end));
    ms->tail = end;
    ms->tail_from = from;
    return rc;
}

/* Looks at the bytes [scanned, size) for "From " at line starts; each
 * one completes the message before it.  0, -1 (err). */
static int scan(mbox_source *ms, uint64_t size, dp_error *err) {
    while (ms->scanned < size) {
        size_t want = size - ms->scanned < SCAN_BUF ? (size_t)(size - ms->scanned) : SCAN_BUF;
        ssize_t got = pread_full(ms->fd, ms->buf, want, ms->scanned);
        if (got <= 0) {
            if (got == 0) return 0; /* cut short under us: the next stat says */
            return dp_error_set(err, DP_ERR_IO, "mbox %s: cannot read: %s", ms->path, strerror(errno));
        }
        const unsigned char *b = ms->buf;
        size_t n = (size_t)got, i = 0;
        while (i < n) {
            if (ms->m >= 0) {
                while (i < n && ms->m < 5 && b[i] == (unsigned char)FROM[ms->m]) i++, ms->m++;
                if (ms->m == 5) {
                    if (complete(ms, ms->ls, 1) != 0) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
                    ms->m = -1;
                } else if (i < n) {
                    ms->m = -1;
                }
                continue;
            }
            const unsigned char *nl = memchr(b + i, '\n', n - i);
            if (!nl) break;
            i = (size_t)(nl - b) + 1;
            ms->m = 0;
            ms->ls = ms->scanned + i;
        }
        ms->scanned += n;
    }
    return 0;
}

/* ---- the file ------------------------------------------------------------------------- */

/* Opens the mbox (again), or says why not.  1: open; 0: not there yet (a
 * follower waits for it); -1 (err). */
static int open_file(mbox_source *ms, struct stat *st, dp_error *err) {
    int fd = open(ms->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && ms->follow) {
        if (!ms->said_missing) say(ms, "not there (yet): waiting for it", NULL);
        ms->said_missing = 1;
        return 0;
    }
    if (fd < 0) return dp_error_set(err, DP_ERR_IO, "mbox %s: cannot open: %s", ms->path, strerror(errno));
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int e = errno;
        close(fd);
        if (S_ISREG(st->st_mode)) return dp_error_set(err, DP_ERR_IO, "mbox %s: cannot stat: %s", ms->path, strerror(e));
        return dp_error_set(err, DP_ERR_INPUT, "mbox %s: not a regular file (%s)", ms->path, dp_fs_kind(st->st_mode));
    }
    char *real = realpath(ms->path, NULL);
    if (!real) {
        close(fd);
        return dp_error_set(err, DP_ERR_IO, "mbox %s: cannot resolve its path: %s", ms->path, strerror(errno));
    }
    free(ms->real);
    ms->real = real;
    if (ms->fd >= 0) close(ms->fd);
    ms->fd = fd;
    ms->dev = st->st_dev;
    ms->ino = st->st_ino;
    ms->said_missing = 0;
    return 1;
}

/* The path of the position file: STATE/sources/mbox-HASH.json, the
 * folder made.  0, or -1 (err). */
static int position_path(mbox_source *ms, const char *state_dir, dp_error *err) {
    dp_error e;
    ms->pos_path = dp_source_state_path(state_dir, "mbox", ms->real, &e);
    if (!ms->pos_path) return dp_error_set(err, e.kind, "mbox %s: %s", ms->path, e.msg);
    return 0;
}

/* Opens the file the first time, and resumes from the position kept.
 * 1, 0 (not there yet), -1 (err). */
static int first_open(mbox_source *ms, dp_error *err) {
    struct stat st;
    int rc = open_file(ms, &st, err);
    if (rc <= 0) return rc;
    if (ms->state_dir && !ms->pos_path && position_path(ms, ms->state_dir, err) != 0) return -1;
    restart_at(ms, load_position(ms, &st));
    ms->dirty = 0;
    return 1;
}

/* Whether everything of the open file (of stat `st`) was listed and
 * acknowledged, or held. */
static int old_done(const mbox_source *ms, const struct stat *st) {
    if (ms->scanned < (uint64_t)st->st_size || ms->tail < (uint64_t)st->st_size) return 0;
    for (size_t i = ms->head; i < ms->n; i++)
        if (!ms->v[i].acked && !ms->v[i].held) return 0;
    return 1;
}

/* ---- listing ---------------------------------------------------------------------------- */

static int list_span(mbox_source *ms, const span *sp, dp_input_list *out) {
    mbox_input *mi = calloc(1, sizeof *mi);
    if (!mi) return -1;
    dp_buf name = DP_BUF_INIT, key = DP_BUF_INIT;
    dp_buf_printf(&name, "%s!message@%llu", ms->path, (unsigned long long)sp->start);
    dp_buf_printf(&key, "mbox:%s:%llu:%llu:%llu", ms->real, (unsigned long long)ms->dev,
                  (unsigned long long)ms->ino, (unsigned long long)sp->start);
    if (name.failed || key.failed) {
        dp_buf_free(&name);
        dp_buf_free(&key);
        free(mi);
        return -1;
    }
    mi->base.source = &ms->base;
    mi->base.name = name.data;
    mi->base.key = key.data;
    mi->start = sp->start;
    mi->end = sp->end;
    return dp_input_list_push(out, &mi->base);
}

static int mbox_next(dp_source *src, dp_input_list *out, dp_error *err) {
    mbox_source *ms = (mbox_source *)src;
    if (!ms->follow && ms->listed) return 0;
    ms->listed = 1;
    if (ms->dirty) save_position(ms);
    struct stat st;
    if (ms->fd < 0) {
        int rc = first_open(ms, err);
        if (rc <= 0) return rc;
    }
    /* a batch run reads the file it opened, whatever the path names now;
     * so does a follower while the path names nothing (rotated away) */
    struct stat now;
    int drain = !ms->follow;
    if (fstat(ms->fd, &st) != 0) return dp_error_set(err, DP_ERR_IO, "mbox %s: cannot stat: %s", ms->path, strerror(errno));
    if (ms->follow && stat(ms->path, &now) == 0 && S_ISREG(now.st_mode)) {
        if (now.st_dev != ms->dev || now.st_ino != ms->ino) {
            /* another file under the name (rotated, replaced): the old one
             * is read to its end, its writer gone, then the new one from 0 */
            if (!old_done(ms, &st)) {
                drain = 1;
            } else {
                say(ms, "the file was replaced (another inode)", AGAIN);
                int rc = open_file(ms, &st, err);
                if (rc <= 0) return rc;
                restart_at(ms, 0);
            }
        } else if ((uint64_t)st.st_size < ms->scanned) {
            say(ms, "the file was cut short", AGAIN);
            restart_at(ms, 0);
        }
    }
    uint64_t size = (uint64_t)st.st_size;
    if (scan(ms, size, err) != 0) return -1;
    /* the last message: whole at the end of a batch; while following, once
     * the file stayed the same for a whole poll */
    int still = ms->have_last && st.st_size == ms->last_size && st.st_mtim.tv_sec == ms->last_mtime.tv_sec &&
                st.st_mtim.tv_nsec == ms->last_mtime.tv_nsec;
    if (ms->scanned == size && (drain || still)) {
        if (complete(ms, size, 0) != 0) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        ms->m = 0; /* what is appended next starts a message */
        ms->ls = size;
    }
    ms->last_size = st.st_size;
    ms->last_mtime = st.st_mtim;
    ms->have_last = 1;
    advance(ms); /* blank bytes skipped */
    for (size_t i = ms->head; i < ms->n; i++)
        if (!ms->v[i].acked && !ms->v[i].held && list_span(ms, &ms->v[i], out) != 0)
            return dp_error_set(err, DP_ERR_NOMEM, "out of memory listing %s", ms->path);
    return 0;
}

/* ---- reading and rejecting ---------------------------------------------------------------- */

/* A new unlinked temporary file, read-write; -1 and errno. */
static int temp_file(const char *dir) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.dmarcpipe-mbox-XXXXXX", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
    return fd;
}

/* The message's bytes in a temporary file, at its start: the descriptor,
 * or -1 and err (DP_ERR_INPUT: the bytes are no longer in the mbox). */
static int copy_out(mbox_source *ms, const mbox_input *mi, dp_error *err) {
    int out = temp_file(ms->tmp_dir);
    if (out < 0) {
        dp_error_set(err, DP_ERR_IO, "cannot create a temporary file in %s: %s", ms->tmp_dir, strerror(errno));
        dp_error_set_where(err, mi->base.name);
        return -1;
    }
    loff_t off = (loff_t)mi->start;
    uint64_t left = mi->end - mi->start;
    int e = 0, gone = 0, plain = 0;
    char *buf = NULL;
    while (left > 0 && !e && !gone) {
        size_t chunk = left < SCAN_BUF ? (size_t)left : SCAN_BUF;
        ssize_t n = -1;
        if (!plain) {
            n = copy_file_range(ms->fd, &off, out, NULL, chunk, 0);
            if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) plain = 1;
            else if (n < 0 && errno != EINTR) e = errno;
            else if (n == 0) gone = 1;
            if (n > 0) left -= (uint64_t)n;
            continue;
        }
        if (!buf && !(buf = malloc(SCAN_BUF))) {
            e = ENOMEM;
            break;
        }
        n = pread_full(ms->fd, buf, chunk, (uint64_t)off);
        if (n < 0) e = errno;
        else if (n == 0) gone = 1;
        else if (dp_fs_write_all(out, buf, (size_t)n) != 0) e = errno;
        else {
            off += n;
            left -= (uint64_t)n;
        }
    }
    free(buf);
    if (!e && !gone && lseek(out, 0, SEEK_SET) != 0) e = errno;
    if (e || gone) {
        close(out);
        if (gone) dp_error_set(err, DP_ERR_INPUT, "the mbox is shorter than when the message was listed: it is gone");
        else dp_error_set(err, DP_ERR_IO, "cannot copy the message out of the mbox: %s", strerror(e));
        dp_error_set_where(err, mi->base.name);
        return -1;
    }
    return out;
}

static int mbox_open(dp_source *src, const dp_input *in, dp_error *err) {
    return copy_out((mbox_source *)src, (const mbox_input *)in, err);
}

static int mbox_reject(dp_source *src, const dp_input *in, const dp_error *errors, size_t n_errors, dp_error *err) {
    mbox_source *ms = (mbox_source *)src;
    if (!ms->quarantine_dir) return 0;
    char qpath[PATH_MAX];
    dp_error cerr;
    int fd = copy_out(ms, (const mbox_input *)in, &cerr);
    int kept;
    if (fd >= 0) {
        kept = dp_quarantine_fd(ms->quarantine_dir, in->name, fd, errors, n_errors, qpath, err);
        close(fd);
    } else if (cerr.kind == DP_ERR_INPUT) {
        kept = dp_quarantine_reason(ms->quarantine_dir, in->name, "no longer in the mbox: not copied", errors,
                                    n_errors, qpath, err);
    } else {
        *err = cerr;
        return -1;
    }
    if (kept == 0) {
        char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
        dp_log_info(ms->base.log, "mbox",
                    DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("quarantine", qpath),
                                  DP_LOG_STR("error", n_errors ? errors[0].msg : NULL)),
                    "dmarcpipe: %s: quarantined as %s", dp_error_text(in->name, a), dp_error_text(qpath, b));
    }
    return kept;
}

/* ---- acknowledging -------------------------------------------------------------------------- */

static int mbox_ack(dp_source *src, const dp_input *in) {
    mbox_source *ms = (mbox_source *)src;
    span *sp = find_span(ms, ((const mbox_input *)in)->start);
    if (!sp) return 1; /* the file started over since: nothing of it to acknowledge */
    sp->acked = 1;
    advance(ms);
    /* written when all that was listed is done, and at most once a second
     * in between: a crash costs a rescan, never a count (see the top) */
    if (ms->dirty && (ms->n == 0 || dp_clock_seconds() - ms->saved_at >= 1.0)) save_position(ms);
    return 0;
}

static void mbox_hold(dp_source *src, const dp_input *in) {
    mbox_source *ms = (mbox_source *)src;
    span *sp = find_span(ms, ((const mbox_input *)in)->start);
    if (sp) sp->held = 1;
}

static void mbox_release(dp_source *src, dp_input *in) {
    (void)src;
    free(in->name);
    free(in->key);
    free(in);
}

/* ---- the source ------------------------------------------------------------------------------- */

static void mbox_destroy(dp_source *src) {
    mbox_source *ms = (mbox_source *)src;
    if (ms->dirty) save_position(ms);
    if (ms->fd >= 0) close(ms->fd);
    free(ms->path);
    free(ms->real);
    free(ms->quarantine_dir);
    free(ms->tmp_dir);
    free(ms->state_dir);
    free(ms->pos_path);
    free(ms->v);
    free(ms->buf);
    free(ms);
}

static const dp_source_ops MBOX_OPS = {
    .name = "mbox",
    .next = mbox_next,
    .open = mbox_open,
    .reject = mbox_reject,
    .ack = mbox_ack,
    .hold = mbox_hold,
    .release = mbox_release,
    .destroy = mbox_destroy,
};

static int dup_opt(char **dst, const char *src) {
    if (!src) return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

dp_source *dp_mbox_source_open(const char *path, const dp_source_options *opts, dp_error *err) {
    mbox_source *ms = calloc(1, sizeof *ms);
    if (!ms) {
        dp_error_set(err, DP_ERR_NOMEM, "out of memory opening %s", path);
        return NULL;
    }
    ms->base.ops = &MBOX_OPS;
    ms->base.log = opts ? opts->log : NULL;
    ms->base.remember_inputs = 1;
    ms->fd = -1;
    ms->follow = opts->follow;
    const char *tmp = getenv("TMPDIR");
    if ((dup_opt(&ms->path, path) | dup_opt(&ms->quarantine_dir, opts->quarantine_dir) |
         dup_opt(&ms->state_dir, opts->state_dir) | dup_opt(&ms->tmp_dir, tmp && *tmp ? tmp : "/tmp")) ||
        !(ms->buf = malloc(SCAN_BUF))) {
        mbox_destroy(&ms->base);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory opening %s", path);
        return NULL;
    }
    /* a batch run over a file that is not there fails now, before a sink
     * is touched; a follower waits for it */
    if (first_open(ms, err) < 0) {
        mbox_destroy(&ms->base);
        return NULL;
    }
    return &ms->base;
}
