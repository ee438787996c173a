/* maildir_source — a Maildir, read by one worker or by several at once.
 *
 * `maildir:PATH` reads the messages in PATH/new/ and PATH/cur/: everything
 * in cur/ is still to be counted, because a counted message leaves it.
 * tmp/ is a writer's, and names that start with '.' are never read.  A
 * PATH without new/, cur/ and tmp/ is refused at open.
 *
 * Claiming.  Before a message is read, this worker renames it into its own
 * claim folder, the Maildir++ folder PATH/.Claimed.<worker>/cur/ (the
 * worker id sanitised to [A-Za-z0-9_-], so that a '.' cannot make it a
 * subfolder of another).  rename(2) is atomic: when two workers race for a
 * message, one rename succeeds and the other fails with ENOENT and skips
 * it, so several workers on one Maildir never take the same message.  A
 * batch run claims everything present at its first next(); a follower
 * claims at most CLAIMS_PER_NEXT new messages per next(), so that workers
 * share a flood, and lists every message it holds and has not acknowledged.
 *
 * Heartbeat, takeover, restart.  A worker touches .Claimed.<worker>/heartbeat
 * at every next() and every open().  At each next() it looks at the other
 * workers' claim folders: one whose heartbeat (or, without one, the folder
 * itself) is older than the claim timeout (--claim-timeout, default 600 s)
 * belongs to a worker that is gone, and its messages are renamed into this
 * worker's claim folder (again atomic: one taker wins), with one log line
 * per folder.  At its first next() a worker lists its own claim folder
 * first: after a restart it finds what it had claimed.  The heartbeat is
 * compared with this host's clock: workers on several hosts need their
 * clocks in step, well within the timeout.
 *
 * After the commit (ack), the message goes to the Maildir++ folder
 * PATH/.Processed/cur/, its info part given the S flag (UNIQUE:2,S with
 * the flags it had, in ASCII order, as the Maildir spec has them).  A
 * subfolder, not cur/ with S: a person reading the mailbox in a mail client
 * sets S on what they open, so S in cur/ cannot mean "counted".  A name
 * already taken in .Processed is never replaced: the newcomer's unique part
 * gets ".1", ".2", ...
 *
 * Rejecting.  reject() (on the engine's threads) writes the reasons, as
 * JSON, into .Claimed.<worker>/reasons/NAME.json; at the ack the message
 * moves to PATH/.Quarantine/cur/ and its reasons to
 * PATH/.Quarantine/reasons/NAME.json (mail clients look only in cur/, new/
 * and tmp/).  The move waits for the commit because a message can hold a
 * report that counted beside one that failed: moved at once, a crash
 * before the commit would lose the good one.  The reasons file is the
 * mark, on disk, so an ack after a restart still knows where the message
 * goes.  The run's --quarantine folder gets no second copy.
 *
 * Keys.  "maildir:REALPATH:UNIQUE", UNIQUE being the file name before its
 * ":2," info: the same whichever folder the message is in and whatever its
 * flags, so the state knows it once claimed, taken over or flagged.
 *
 * Following.  inotify on new/ and cur/ (a delivery renames or links a file
 * in), exposed by wake_fd; next() drains it.  The follower's --poll rescan
 * covers what inotify misses (NFS, a queue overflow).
 *
 * Memory: per message claimed and not yet acknowledged, its name; nothing
 * per message already counted.  next(), ack() and hold() run on the thread
 * that drives the run; open() and reject() share nothing mutable.
 *
 * The known limit.  Each worker has a state of its own.  A worker that
 * committed an epoch and died before its acknowledgements, and stays away
 * past the claim timeout, leaves messages that another worker takes over
 * and counts again; a worker that comes back first acknowledges them
 * itself.  The window is kept small: the acknowledgements of an epoch's
 * inputs follow its commit at once.  A worker silent for longer than the
 * timeout while alive (an epoch stuck that long) can likewise lose its
 * claims to another and both count them: the timeout must be far above an
 * epoch's time.
 */
#define _GNU_SOURCE /* renameat2 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_json.h"
#include "ingest.h"
#include "source_internal.h"

#define CLAIMS_PER_NEXT 256
#define DEFAULT_CLAIM_TIMEOUT 600.0
#define CLAIM_PREFIX ".Claimed."

typedef struct maildir_source {
    dp_source base;
    char *root;           /* the Maildir's real path */
    char *worker;         /* this worker's id, sanitised */
    char *claim;          /* root/.Claimed.<worker> */
    double claim_timeout; /* seconds */
    mode_t mode;          /* of the folders made here: the Maildir's own */
    int follow, listed;   /* listed: the first next() has run */
    int ino;              /* inotify, when following; else -1 */
    json_t *claimed;      /* names in claim/cur held and not acknowledged, in claim order */
} maildir_source;

/* ---- paths and names --------------------------------------------------------- */

/* Formats a path into out[PATH_MAX]: 0, or -1 with errno ENAMETOOLONG. */
__attribute__((format(printf, 2, 3))) static int pathf(char *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The message's info (":2,FLAGS"), or NULL. */
static const char *info_of(const char *name) { return strstr(name, ":2,"); }

static size_t unique_len(const char *name) {
    const char *i = info_of(name);
    return i ? (size_t)(i - name) : strlen(name);
}

/* `name` with ".k" after its unique part (k = 0: as it is), in out[NAME_MAX + 1]. */
static int with_suffix(char *out, const char *name, unsigned k) {
    size_t u = unique_len(name);
    int n = k ? snprintf(out, NAME_MAX + 1, "%.*s.%u%s", (int)u, name, k, name + u)
              : snprintf(out, NAME_MAX + 1, "%s", name);
    if (n < 0 || n > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Its name once counted: the unique part, then ":2," and its flags with S,
 * in ASCII order, each once. */
static int processed_name(char *out, const char *name) {
    const char *info = info_of(name);
    unsigned char seen[256] = {0};
    seen['S'] = 1;
    for (const char *f = info ? info + 3 : ""; *f; f++)
        if (*f != ',') seen[(unsigned char)*f] = 1;
    char flags[257];
    size_t n = 0;
    for (int c = 33; c < 127; c++)
        if (seen[c]) flags[n++] = (char)c;
    flags[n] = '\0';
    int w = snprintf(out, NAME_MAX + 1, "%.*s:2,%s", (int)unique_len(name), name, flags);
    if (w < 0 || w > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static char *key_of(const maildir_source *ms, const char *name) {
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b, "maildir:%s:%.*s", ms->root, (int)unique_len(name), name);
    if (b.failed) {
        dp_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---- folders ------------------------------------------------------------------- */

static int is_dir(const char *root, const char *sub) {
    char p[PATH_MAX];
    struct stat st;
    return pathf(p, "%s/%s", root, sub) == 0 && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A Maildir++ folder: dir with new/, cur/ and tmp/ (and `extra`, when not
 * NULL), and the maildirfolder file Courier and Dovecot mark one with.
 * 0, or -1 with errno. */
static int make_folder(const char *dir, const char *extra, mode_t mode) {
    static const char *const subs[] = {"new", "cur", "tmp"};
    char p[PATH_MAX];
    if (mkdir(dir, mode) != 0 && errno != EEXIST) return -1;
    for (size_t i = 0; i < 4; i++) {
        const char *s = i < 3 ? subs[i] : extra;
        if (!s) continue;
        if (pathf(p, "%s/%s", dir, s) != 0) return -1;
        if (mkdir(p, mode) != 0 && errno != EEXIST) return -1;
    }
    if (pathf(p, "%s/maildirfolder", dir) != 0) return -1;
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, (mode & 0666) | 0600);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

/* Touches the heartbeat (created when missing).  Engine threads call it
 * too (open): it shares nothing but the file system. */
static void heartbeat(const maildir_source *ms) {
    char p[PATH_MAX];
    if (pathf(p, "%s/heartbeat", ms->claim) != 0) return;
    if (utimensat(AT_FDCWD, p, NULL, 0) == 0 || errno != ENOENT) return;
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static void names_free(names *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Appends the names in `dir` that may be messages: not a dot-name, not a
 * folder.  A folder that is missing holds none.  0, or -1 (errno). */
static int list_dir(const char *dir, names *out) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (errno = 0, de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (de->d_type == DT_DIR) continue;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) continue;
        }
        if (out->n == out->cap) {
            size_t cap = out->cap ? 2 * out->cap : 64;
            char **v = realloc(out->v, cap * sizeof *v);
            if (!v) {
                rc = -1;
                break;
            }
            out->v = v;
            out->cap = cap;
        }
        if (!(out->v[out->n] = strdup(de->d_name))) rc = -1;
        else out->n++;
    }
    if (rc == 0 && errno != 0) rc = -1;
    int saved = errno;
    closedir(d);
    errno = saved;
    return rc;
}

/* Renames `from` to dir/name, never over a file: a name in use gets ".1",
 * ".2", ... after its unique part.  The name used goes to used[NAME_MAX+1].
 * 0, or -1 with errno (ENOENT: `from` is gone, or dir is missing). */
static int rename_into(const char *from, const char *dir, const char *name, char *used) {
    char to[PATH_MAX];
    for (unsigned k = 0; k < 10000; k++) {
        if (with_suffix(used, name, k) != 0 || pathf(to, "%s/%s", dir, used) != 0) return -1;
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
        if (errno == EINVAL || errno == ENOSYS) {
            /* a file system without RENAME_NOREPLACE: the rename is still
             * the atomic claim; only the check for a clash is not */
            struct stat st;
            if (lstat(to, &st) == 0) continue;
            if (rename(from, to) == 0) return 0;
        }
        if (errno != EEXIST) return -1;
    }
    errno = EEXIST;
    return -1;
}

/* ---- claiming -------------------------------------------------------------------- */

static int remember(maildir_source *ms, const char *name) {
    return json_object_set_new_nocheck(ms->claimed, name, json_true());
}

/* Claims dir/name: 1 claimed, 0 gone (another worker took it), -1 (errno). */
static int claim(maildir_source *ms, const char *dir, const char *name) {
    char from[PATH_MAX], cur[PATH_MAX], target[NAME_MAX + 1], used[NAME_MAX + 1];
    if (pathf(from, "%s/%s", dir, name) != 0 || pathf(cur, "%s/cur", ms->claim) != 0) return -1;
    /* into cur/, a message has an info part */
    int n = info_of(name) ? snprintf(target, sizeof target, "%s", name) : snprintf(target, sizeof target, "%s:2,", name);
    if (n < 0 || n >= (int)sizeof target) snprintf(target, sizeof target, "%s", name);
    if (rename_into(from, cur, target, used) != 0) {
        if (errno != ENOENT) return -1;
        /* our own folder removed under us: made again, once */
        if (access(from, F_OK) != 0 || make_folder(ms->claim, "reasons", ms->mode) != 0 ||
            rename_into(from, cur, target, used) != 0)
            return errno == ENOENT ? 0 : -1;
    }
    return remember(ms, used) == 0 ? 1 : -1;
}

/* This worker's own claims, from an earlier process: listed first. */
static int list_own(maildir_source *ms) {
    char cur[PATH_MAX];
    names l = {0};
    if (pathf(cur, "%s/cur", ms->claim) != 0 || list_dir(cur, &l) != 0) {
        names_free(&l);
        return -1;
    }
    if (l.n > 1) qsort(l.v, l.n, sizeof *l.v, cmp_str);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) rc = remember(ms, l.v[i]);
    if (l.n) {
        char a[DP_ERROR_TEXT_MAX];
        dp_log_info(ms->base.log, "maildir",
                    DP_LOG_FIELDS(DP_LOG_STR("source", ms->root), DP_LOG_U64("messages", l.n),
                                  DP_LOG_STR("worker", ms->worker)),
                    "dmarcpipe: maildir %s: %zu message(s) claimed by this worker (%s) before: taken first",
                    dp_error_text(ms->root, a), l.n, ms->worker);
    }
    names_free(&l);
    return rc;
}

/* Reasons left in the claim folder by a crash between the two renames of
 * a rejected message's ack (the message went first): to the quarantine.
 * Half-written ones (a crash in reject()) are removed. */
static void sweep_reasons(maildir_source *ms) {
    char dir[PATH_MAX], from[PATH_MAX], msg[PATH_MAX], to[PATH_MAX];
    names l = {0};
    if (pathf(dir, "%s/reasons", ms->claim) != 0) return;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, ".reason.", 8) == 0) unlinkat(dirfd(d), de->d_name, 0);
    if (d) closedir(d);
    if (list_dir(dir, &l) != 0) {
        names_free(&l);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        size_t n = strlen(l.v[i]);
        if (n <= 5 || strcmp(l.v[i] + n - 5, ".json") != 0) continue;
        if (pathf(msg, "%s/cur/%.*s", ms->claim, (int)(n - 5), l.v[i]) != 0 || access(msg, F_OK) == 0) continue;
        if (pathf(from, "%s/%s", dir, l.v[i]) == 0 && pathf(to, "%s/.Quarantine/reasons/%s", ms->root, l.v[i]) == 0)
            dp_fs_move(from, to, NULL);
    }
    names_free(&l);
}

static double seconds_of(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

/* Seconds since the worker of claim folder `dir` was last heard of; -1
 * when the folder is gone. */
static double silent_for(const char *dir, double now) {
    char p[PATH_MAX];
    struct stat st;
    if (pathf(p, "%s/heartbeat", dir) == 0 && stat(p, &st) == 0) return now - seconds_of(st.st_mtim);
    if (stat(dir, &st) == 0) return now - seconds_of(st.st_mtim);
    return -1;
}

/* Takes over the claims of every other worker silent past the timeout. */
static int take_over(maildir_source *ms) {
    DIR *d = opendir(ms->root);
    if (!d) return -1;
    names folders = {0};
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (strncmp(de->d_name, CLAIM_PREFIX, sizeof CLAIM_PREFIX - 1) != 0) continue;
        if (strcmp(de->d_name, base_name(ms->claim)) == 0) continue;
        if (folders.n == folders.cap) {
            size_t cap = folders.cap ? 2 * folders.cap : 8;
            char **v = realloc(folders.v, cap * sizeof *v);
            if (!v) {
                rc = -1;
                break;
            }
            folders.v = v;
            folders.cap = cap;
        }
        if (!(folders.v[folders.n] = strdup(de->d_name))) rc = -1;
        else folders.n++;
    }
    closedir(d);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = seconds_of(ts);
    for (size_t i = 0; rc == 0 && i < folders.n; i++) {
        char dir[PATH_MAX], cur[PATH_MAX], reasons[PATH_MAX];
        if (pathf(dir, "%s/%s", ms->root, folders.v[i]) != 0 || pathf(cur, "%s/cur", dir) != 0) continue;
        double silent = silent_for(dir, now);
        if (silent < 0 || silent <= ms->claim_timeout) continue;
        names l = {0};
        if (list_dir(cur, &l) != 0) {
            names_free(&l);
            continue;
        }
        if (l.n > 1) qsort(l.v, l.n, sizeof *l.v, cmp_str);
        size_t taken = 0;
        int c = 0;
        for (size_t k = 0; c >= 0 && k < l.n; k++) {
            if ((c = claim(ms, cur, l.v[k])) != 1) continue;
            taken++;
            /* its rejection, if any, is this worker's to find again */
            if (pathf(reasons, "%s/reasons/%s.json", dir, l.v[k]) == 0) unlink(reasons);
        }
        int e = errno;
        char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
        dp_error_text(ms->root, a);
        dp_error_text(folders.v[i], b);
        if (taken)
            dp_log_info(ms->base.log, "maildir",
                        DP_LOG_FIELDS(DP_LOG_STR("source", ms->root), DP_LOG_U64("messages", taken),
                                      DP_LOG_STR("claims", folders.v[i]), DP_LOG_F64("silent_s", silent)),
                        "dmarcpipe: maildir %s: took over %zu message(s) from %s, silent for %.0f s (claim timeout "
                        "%.0f s)", a, taken, b, silent, ms->claim_timeout);
        /* what cannot be taken (a folder of another owner) is said, and
         * this worker goes on with its own */
        if (c < 0) {
            if (e == ENOMEM) rc = -1;
            else
                dp_log_warn(ms->base.log, "maildir",
                            DP_LOG_FIELDS(DP_LOG_STR("source", ms->root), DP_LOG_STR("claims", folders.v[i]),
                                          DP_LOG_STR("error", strerror(e))),
                            "dmarcpipe: maildir %s: cannot take over the claims in %s: %s", a, b, strerror(e));
        }
        names_free(&l);
    }
    names_free(&folders);
    return rc;
}

typedef struct pick {
    const char *name;
    int from; /* 0: new/, 1: cur/ */
} pick;

static int cmp_pick(const void *a, const void *b) {
    return strcmp(((const pick *)a)->name, ((const pick *)b)->name);
}

/* Claims up to `cap` messages of new/ and cur/, in name order. */
static int claim_new(maildir_source *ms, size_t cap) {
    char dir[2][PATH_MAX];
    names l[2] = {{0}, {0}};
    int rc = 0;
    for (int k = 0; rc == 0 && k < 2; k++)
        if (pathf(dir[k], "%s/%s", ms->root, k ? "cur" : "new") != 0 || list_dir(dir[k], &l[k]) != 0) rc = -1;
    /* one order over both folders: names begin with the delivery time */
    pick *all = rc == 0 ? malloc((l[0].n + l[1].n + 1) * sizeof *all) : NULL;
    if (rc == 0 && !all) rc = -1;
    size_t n = 0;
    for (int k = 0; all && k < 2; k++)
        for (size_t i = 0; i < l[k].n; i++) all[n++] = (pick){l[k].v[i], k};
    if (n > 1) qsort(all, n, sizeof *all, cmp_pick);
    size_t claimed = 0;
    for (size_t i = 0; rc == 0 && i < n && claimed < cap; i++) {
        int c = claim(ms, dir[all[i].from], all[i].name);
        if (c < 0) rc = -1;
        else claimed += (size_t)c;
    }
    free(all);
    names_free(&l[0]);
    names_free(&l[1]);
    return rc;
}

/* ---- the vtable ------------------------------------------------------------------- */

static void drain(maildir_source *ms) {
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (ms->ino >= 0 && read(ms->ino, buf, sizeof buf) > 0) {
    }
}

static int maildir_next(dp_source *src, dp_input_list *out, dp_error *err) {
    maildir_source *ms = (maildir_source *)src;
    heartbeat(ms);
    drain(ms);
    if (!ms->follow && ms->listed) return 0;
    char a[DP_ERROR_TEXT_MAX];
    dp_error_text(ms->root, a);
    if (!ms->listed) {
        if (list_own(ms) != 0)
            return dp_error_set(err, DP_ERR_IO, "maildir %s: cannot list this worker's claims: %s", a,
                                strerror(errno));
        sweep_reasons(ms);
    }
    ms->listed = 1;
    if (take_over(ms) != 0 || claim_new(ms, ms->follow ? CLAIMS_PER_NEXT : SIZE_MAX) != 0)
        return dp_error_set(err, errno == ENOMEM ? DP_ERR_NOMEM : DP_ERR_IO, "maildir %s: cannot claim messages: %s",
                            a, strerror(errno));
    const char *name;
    json_t *v;
    json_object_foreach(ms->claimed, name, v) {
        char path[PATH_MAX];
        char *key = key_of(ms, name);
        dp_input *in = key && pathf(path, "%s/cur/%s", ms->claim, name) == 0 ? dp_input_new(src, path, key) : NULL;
        free(key);
        if (!in || dp_input_list_push(out, in) != 0)
            return dp_error_set(err, DP_ERR_NOMEM, "maildir %s: out of memory listing messages", a);
    }
    return 0;
}

static int maildir_open(dp_source *src, const dp_input *in, dp_error *err) {
    heartbeat((maildir_source *)src);
    /* O_NOFOLLOW: a link planted in the Maildir is not followed;
     * O_NONBLOCK: a FIFO planted there must not wait for a writer */
    int fd = open(in->name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP) dp_error_set(err, DP_ERR_INPUT, "a symbolic link: not followed");
        else if (e == ENOENT) dp_error_set(err, DP_ERR_INPUT, "gone: taken over by another worker, or removed");
        else dp_error_set(err, DP_ERR_IO, "cannot open: %s", strerror(e));
        dp_error_set_where(err, in->name);
        return -1;
    }
    struct stat st;
    int known = fstat(fd, &st) == 0;
    if (!known || !S_ISREG(st.st_mode)) {
        dp_error_set(err, DP_ERR_INPUT, "not a regular file (%s): not read", known ? dp_fs_kind(st.st_mode) : "unknown");
        dp_error_set_where(err, in->name);
        close(fd);
        return -1;
    }
    return fd;
}

/* The reasons, as ingest's quarantine writes them, with the message's key. */
static void reasons_json(dp_buf *b, const dp_input *in, const dp_error *errors, size_t n_errors) {
    int first = 1;
    dp_buf_putc(b, '{');
    dp_json_kv_bytes(b, &first, "input", in->name);
    dp_json_kv_bytes(b, &first, "key", in->key);
    dp_json_kv_i64(b, &first, "rejected_at", (int64_t)time(NULL));
    dp_quarantine_errors_json(b, &first, errors, n_errors);
    dp_buf_puts(b, "}\n");
}

static int maildir_reject(dp_source *src, const dp_input *in, const dp_error *errors, size_t n_errors, dp_error *err) {
    maildir_source *ms = (maildir_source *)src;
    char a[DP_ERROR_TEXT_MAX];
    struct stat st;
    if (lstat(in->name, &st) != 0 && errno == ENOENT) {
        dp_log_warn(ms->base.log, "maildir", DP_LOG_FIELDS(DP_LOG_STR("input", in->name)),
                    "dmarcpipe: %s: gone (taken over by another worker?), so not quarantined",
                    dp_error_text(in->name, a));
        return 0;
    }
    /* whole, synced, then in place: a reasons file is never half written,
     * and it is the mark an ack after a crash goes by */
    char tmp[PATH_MAX], final[PATH_MAX];
    if (pathf(final, "%s/reasons/%s.json", ms->claim, base_name(in->name)) != 0 ||
        pathf(tmp, "%s/reasons/.reason.XXXXXX", ms->claim) != 0)
        return dp_error_set(err, DP_ERR_IO, "maildir %s: %s: name too long", dp_error_text(ms->root, a), in->name);
    dp_buf j = DP_BUF_INIT;
    reasons_json(&j, in, errors, n_errors);
    int fd = j.failed ? -1 : mkstemp(tmp);
    int ok = fd >= 0 && dp_fs_write_all(fd, j.data, j.len) == 0 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (ok && rename(tmp, final) != 0) ok = 0;
    int e = j.failed ? ENOMEM : errno;
    if (!ok && fd >= 0) unlink(tmp);
    dp_buf_free(&j);
    if (!ok)
        return dp_error_set(err, DP_ERR_IO, "maildir %s: cannot keep the reasons of %s: %s", dp_error_text(ms->root, a),
                            base_name(in->name), strerror(e));
    return 0;
}

/* Moves a rejected message to .Quarantine/cur, then its reasons beside it:
 * 0, 1 gone, -1 (errno). */
static int quarantine(maildir_source *ms, const char *path, const char *reasons) {
    char dir[PATH_MAX], to[PATH_MAX], kept[PATH_MAX], used[NAME_MAX + 1];
    if (pathf(dir, "%s/.Quarantine/cur", ms->root) != 0) return -1;
    if (rename_into(path, dir, base_name(path), used) != 0) {
        if (errno != ENOENT || access(path, F_OK) != 0) return errno == ENOENT ? 1 : -1;
        if (pathf(to, "%s/.Quarantine", ms->root) != 0 || make_folder(to, "reasons", ms->mode) != 0 ||
            rename_into(path, dir, base_name(path), used) != 0)
            return errno == ENOENT ? 1 : -1;
    }
    if (pathf(to, "%s/.Quarantine/reasons/%s.json", ms->root, used) != 0 || dp_fs_move(reasons, to, kept) != 0)
        return -1;
    char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
    dp_log_info(ms->base.log, "maildir",
                DP_LOG_FIELDS(DP_LOG_STR("input", path), DP_LOG_STR("quarantine", used), DP_LOG_STR("reasons", kept)),
                "dmarcpipe: %s: rejected: kept in the Maildir as .Quarantine/cur/%s, its reasons in %s",
                dp_error_text(path, a), used, dp_error_text(kept, b));
    return 0;
}

/* Moves a counted message to .Processed/cur with S: 0, 1 gone, -1 (errno). */
static int processed(maildir_source *ms, const char *path) {
    char dir[PATH_MAX], target[NAME_MAX + 1], used[NAME_MAX + 1];
    if (pathf(dir, "%s/.Processed/cur", ms->root) != 0 || processed_name(target, base_name(path)) != 0) return -1;
    if (rename_into(path, dir, target, used) == 0) return 0;
    if (errno != ENOENT || access(path, F_OK) != 0) return errno == ENOENT ? 1 : -1;
    /* .Processed removed under us: made again, once */
    if (pathf(dir, "%s/.Processed", ms->root) != 0 || make_folder(dir, NULL, ms->mode) != 0 ||
        pathf(dir, "%s/.Processed/cur", ms->root) != 0 || rename_into(path, dir, target, used) != 0)
        return errno == ENOENT ? 1 : -1;
    return 0;
}

static int maildir_ack(dp_source *src, const dp_input *in) {
    maildir_source *ms = (maildir_source *)src;
    const char *name = base_name(in->name);
    char reasons[PATH_MAX];
    int rc;
    if (pathf(reasons, "%s/reasons/%s.json", ms->claim, name) != 0) rc = -1;
    else if (access(reasons, F_OK) == 0) {
        rc = quarantine(ms, in->name, reasons);
        if (rc == 1) unlink(reasons); /* taken over: its taker finds the reasons again */
    } else {
        rc = processed(ms, in->name);
    }
    if (rc < 0) {
        char a[DP_ERROR_TEXT_MAX];
        int e = errno;
        dp_log_warn(ms->base.log, "maildir", DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("error", strerror(e))),
                    "dmarcpipe: %s: counted, but cannot be moved out of the claim folder: %s",
                    dp_error_text(in->name, a), strerror(e));
    }
    json_object_del(ms->claimed, name);
    return rc;
}

static void maildir_hold(dp_source *src, const dp_input *in) {
    maildir_source *ms = (maildir_source *)src;
    json_object_del(ms->claimed, base_name(in->name));
}

static int maildir_wake_fd(dp_source *src) { return ((maildir_source *)src)->ino; }

static void maildir_destroy(dp_source *src) {
    maildir_source *ms = (maildir_source *)src;
    if (ms->ino >= 0) close(ms->ino);
    json_decref(ms->claimed);
    free(ms->root);
    free(ms->worker);
    free(ms->claim);
    free(ms);
}

static const dp_source_ops MAILDIR_OPS = {
    .name = "maildir",
    .next = maildir_next,
    .open = maildir_open,
    .reject = maildir_reject,
    .ack = maildir_ack,
    .hold = maildir_hold,
    .wake_fd = maildir_wake_fd,
    .destroy = maildir_destroy,
};

/* The worker id as a folder name: '.', '/' and anything outside
 * [A-Za-z0-9_-] become '_', so that it names one Maildir++ folder. */
static char *sanitise(const char *id) {
    if (!id || !*id) id = "default";
    char *s = strdup(id);
    for (char *p = s; p && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            *p = '_';
    return s;
}

dp_source *dp_maildir_source_open(const char *path, const dp_source_options *opts, dp_error *err) {
    char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX], p[PATH_MAX];
    dp_error_text(path, a);
    char *real = realpath(path, NULL);
    if (!real) {
        dp_error_set(err, DP_ERR_USAGE, "maildir:%s: cannot open: %s", a, strerror(errno));
        return NULL;
    }
    if (!is_dir(real, "new") || !is_dir(real, "cur") || !is_dir(real, "tmp")) {
        dp_error_set(err, DP_ERR_USAGE, "maildir:%s: not a Maildir (it has no new/, cur/ and tmp/ folders)", a);
        free(real);
        return NULL;
    }
    maildir_source *ms = calloc(1, sizeof *ms);
    if (!ms) {
        free(real);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory opening maildir:%s", a);
        return NULL;
    }
    ms->base.ops = &MAILDIR_OPS;
    ms->base.log = opts ? opts->log : NULL;
    ms->base.remember_inputs = 1;
    ms->root = real;
    ms->ino = -1;
    ms->follow = opts->follow;
    ms->claim_timeout = opts->claim_timeout > 0 ? opts->claim_timeout : DEFAULT_CLAIM_TIMEOUT;
    ms->worker = sanitise(opts->worker_id);
    ms->claimed = json_object();
    dp_buf cp = DP_BUF_INIT;
    dp_buf_printf(&cp, "%s/" CLAIM_PREFIX "%s", real, ms->worker ? ms->worker : "");
    ms->claim = cp.failed ? NULL : cp.data;
    if (!ms->worker || !ms->claimed || !ms->claim) {
        if (!ms->claim) dp_buf_free(&cp);
        maildir_destroy(&ms->base);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory opening maildir:%s", a);
        return NULL;
    }
    /* the folders made here are as private as the Maildir's own */
    struct stat st;
    ms->mode = pathf(p, "%s/cur", real) == 0 && stat(p, &st) == 0 ? ((st.st_mode & 0777) | 0700) : 0700;
    const char *bad = NULL;
    if (make_folder(ms->claim, "reasons", ms->mode) != 0) bad = ms->claim;
    else if (pathf(p, "%s/.Processed", real) != 0 || make_folder(p, NULL, ms->mode) != 0) bad = p;
    else if (pathf(p, "%s/.Quarantine", real) != 0 || make_folder(p, "reasons", ms->mode) != 0) bad = p;
    if (bad) {
        dp_error_set(err, DP_ERR_IO, "maildir:%s: cannot create the folder %s: %s", a, dp_error_text(bad, b),
                     strerror(errno));
        maildir_destroy(&ms->base);
        return NULL;
    }
    heartbeat(ms);
    if (ms->follow) {
        ms->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        for (int k = 0; ms->ino >= 0 && k < 2; k++)
            if (pathf(p, "%s/%s", real, k ? "cur" : "new") != 0 ||
                inotify_add_watch(ms->ino, p, IN_MOVED_TO | IN_CREATE) < 0) {
                close(ms->ino);
                ms->ino = -1;
            }
        if (ms->ino < 0)
            dp_log_info(ms->base.log, "maildir",
                        DP_LOG_FIELDS(DP_LOG_STR("source", ms->root), DP_LOG_STR("error", strerror(errno))),
                        "dmarcpipe: maildir %s: no inotify (%s): arrivals are found at each --poll", a,
                        strerror(errno));
    }
    return &ms->base;
}
