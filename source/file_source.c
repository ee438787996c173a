/* file_source — inputs from files and folders.
 *
 * A SOURCE that is a file is one input; a folder is walked recursively, in
 * name order, so that runs are reproducible.  Names that start with a dot
 * are never read: they are bookkeeping (.gitattributes, editors' swap
 * files), or a writer's temporary name before it renames a file into place.
 * Folders that are the run's own (its output, quarantine, state and done
 * folders, when they lie under a SOURCE) are not entered.
 *
 * A spool is hostile ground too.  Only a regular file is read: a FIFO, a
 * device or a socket is listed and refused, without waiting on it.  A
 * symbolic link is followed only when it stays inside the SOURCE; one
 * that leaves it (spool/x -> /etc/shadow) is refused without being opened,
 * and its rejection keeps no copy.  Every folder and file is visited once
 * per walk, by device and inode, so a link loop (two `ln -s .`) ends at
 * once and a file reached twice is read once.
 *
 * Following (dp_source_options.follow).  Every call to next() walks the
 * folder again; polling, not inotify, because it works alike on local
 * disks, NFS and the volumes a container is given.  A file is listed once
 * it has looked the same (size and mtime) on two walks in a row, so one
 * still being written waits.
 *
 * Keys.  "SIZE:MTIME:REALPATH": the state remembers an input under it, so
 * a file changed in place is a new input, and one seen through another
 * path is the same.
 *
 * Acknowledging.  With a done folder, an input is moved there, at its path
 * below the SOURCE, never over an earlier file of the same name: a spool
 * then holds only what is still to be counted.  Without one it stays where
 * it is; a follower remembers its key for the rest of the process (the
 * state knows it across processes), so it is not listed again.
 *
 * Rejecting.  A copy goes to the quarantine folder, with its reasons
 * (ingest's dp_quarantine_file).
 *
 * Memory: per file under the folder, while following, its path and
 * signature from the last walk, and the keys of acknowledged files still in
 * place; with a done folder the spool empties, and these with it.  The maps
 * are jansson objects: string-keyed hash tables that are already a
 * dependency.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_fs.h"
#include "ingest.h"
#include "source_internal.h"

typedef struct file_source {
    dp_source base;
    char *root;           /* the SOURCE as given */
    char *root_real;      /* its real path, once it exists */
    int follow, listed;   /* listed: a batch source has listed its inputs */
    char *quarantine_dir; /* NULL: rejections only logged */
    char *done_dir;       /* NULL: acknowledged inputs stay */
    char **skip;          /* real paths of folders not to enter; NULL-terminated */
    json_t *prev;         /* following: path -> signature on the last walk */
    json_t *acked;        /* following: keys of acknowledged inputs still in place */
    json_t *unreadable;   /* following: folders said to be unreadable */
} file_source;

/* ---- what a path is ---------------------------------------------------------- */

enum { E_MISSING, E_DIR, E_FILE, E_OUTSIDE };

/* Whether `path` resolves to the SOURCE or below it.  Workers call it
 * too (open, reject): root_real is set by next(), on the run's thread,
 * before any input is handed out. */
static int inside_root(const file_source *fs, const char *path) {
    if (!fs->root_real) return 0;
    char real[PATH_MAX];
    if (!realpath(path, real)) return 0;
    size_t n = strlen(fs->root_real);
    if (strncmp(real, fs->root_real, n) != 0) return 0;
    return real[n] == '\0' || real[n] == '/' || (n == 1 && fs->root_real[0] == '/');
}

/* What `path` is, and its stat in *st: E_MISSING (cannot be stat'ed, or a
 * dangling link), E_DIR, E_FILE (anything else that is read: a regular
 * file, or what open() then refuses), or E_OUTSIDE (a symbolic link that
 * leaves the SOURCE; *st is the link's own).  The SOURCE itself (top) is
 * followed wherever it points: it was named on the command line. */
static int classify(const file_source *fs, const char *path, int top, struct stat *st) {
    if (lstat(path, st) != 0) return E_MISSING;
    if (S_ISLNK(st->st_mode)) {
        if (!top && !inside_root(fs, path)) return E_OUTSIDE;
        if (stat(path, st) != 0) return E_MISSING;
    }
    return S_ISDIR(st->st_mode) ? E_DIR : E_FILE;
}

/* ---- keys ----------------------------------------------------------------- */

/* "SIZE:MTIME:REALPATH" of the file at `path`, from its stat `st`:
 * malloc'd, or NULL when out of memory.  A link that is not followed is
 * named by its own path, never by its target's. */
static char *key_of(const char *path, const struct stat *st, int follow) {
    char real[PATH_MAX];
    const char *p = follow && realpath(path, real) ? real : path;
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b, "%lld:%lld.%09ld:%s", (long long)st->st_size, (long long)st->st_mtim.tv_sec,
                  (long)st->st_mtim.tv_nsec, p);
    if (b.failed) {
        dp_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* The key of the input at `path` now; NULL when it cannot be stat'ed. */
static char *key_now(file_source *fs, const char *path) {
    struct stat st;
    int kind = classify(fs, path, strcmp(path, fs->root) == 0, &st);
    return kind == E_MISSING ? NULL : key_of(path, &st, kind != E_OUTSIDE);
}

/* ---- walking -------------------------------------------------------------- */

/* The (device, inode) pairs one walk has met: open addressing, grown at
 * half full.  Memory: 16 bytes per file and folder under the SOURCE. */
typedef struct visited {
    struct { dev_t dev; ino_t ino; int used; } *slots;
    size_t cap, n;
} visited;

/* 1 if (dev, ino) was met before, 0 if not (it is now), -1 out of memory. */
static int visit(visited *v, dev_t dev, ino_t ino) {
    if (2 * (v->n + 1) > v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        visited g = {calloc(cap, sizeof *g.slots), cap, 0};
        if (!g.slots) return -1;
        for (size_t i = 0; i < v->cap; i++)
            if (v->slots[i].used) visit(&g, v->slots[i].dev, v->slots[i].ino);
        free(v->slots);
        *v = g;
    }
    size_t i = (size_t)(((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ino * 0xbf58476d1ce4e5b9ull)) & (v->cap - 1);
    for (; v->slots[i].used; i = (i + 1) & (v->cap - 1))
        if (v->slots[i].dev == dev && v->slots[i].ino == ino) return 1;
    v->slots[i].dev = dev;
    v->slots[i].ino = ino;
    v->slots[i].used = 1;
    v->n++;
    return 0;
}

/* Told of each input a walk finds: its path, and its kind and stat
 * (E_MISSING: st is NULL). */
typedef int (*walk_fn)(file_source *fs, const char *file, int kind, const struct stat *st, void *ctx);

/* 1 the first time `path` is found unreadable while following (or every
 * time, in a batch walk); 0 when it was said already. */
static int unreadable_once(file_source *fs, const char *path) {
    if (!fs->unreadable) return 1;
    if (json_object_get(fs->unreadable, path)) return 0;
    json_object_set_new_nocheck(fs->unreadable, path, json_true());
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_skipped(const file_source *fs, const char *dir) {
    char real[PATH_MAX];
    if (!fs->skip || !*fs->skip || !realpath(dir, real)) return 0;
    for (char **s = fs->skip; *s; s++)
        if (strcmp(real, *s) == 0) return 1;
    return 0;
}

/* Calls fn for each entry under `path` that is not a folder (itself, if it
 * is not one), in sorted order, each once.  A path that cannot be stat'ed
 * is passed on as it is: reading it fails, and says why.  A SOURCE named
 * on the command line (top) is always entered. */
static int walk(file_source *fs, const char *path, int top, visited *seen, walk_fn fn, void *ctx) {
    struct stat st;
    int kind = classify(fs, path, top, &st);
    if (kind == E_MISSING) return fn(fs, path, kind, NULL, ctx);
    if (kind != E_OUTSIDE) {
        int again = visit(seen, st.st_dev, st.st_ino);
        if (again < 0) return -1;
        if (again) return 0; /* a loop, or a file reached a second way */
    }
    if (kind != E_DIR) return fn(fs, path, kind, &st, ctx);
    if (!top && is_skipped(fs, path)) return 0;
    DIR *d = opendir(path);
    if (!d && top && !fs->follow) return -2; /* a batch run over a SOURCE it cannot read fails */
    if (!d) {
        /* A folder that cannot be read is the run's problem, not an input
         * to reject (and move to --done with all it holds): it is said,
         * once while it stays so, and its files wait for a later walk. */
        if (unreadable_once(fs, path)) {
            char a[DP_ERROR_TEXT_MAX];
            int e = errno;
            dp_log_warn(fs->base.log, "file", DP_LOG_FIELDS(DP_LOG_STR("path", path), DP_LOG_STR("error", strerror(e))),
                        "dmarcpipe: %s: cannot read this folder (%s): its files are not read for now",
                        dp_error_text(path, a), strerror(e));
        }
        return 0;
    }
    if (fs->unreadable) json_object_del(fs->unreadable, path);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) { rc = -1; break; }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) { rc = -1; break; }
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 1) qsort(names, n, sizeof *names, cmp_str); /* an empty folder: names is NULL */
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            char child[PATH_MAX];
            size_t pl = strlen(path);
            while (pl > 1 && path[pl - 1] == '/') pl--;
            if (snprintf(child, sizeof child, "%.*s/%s", (int)pl, path, names[i]) < (int)sizeof child) {
                int c = walk(fs, child, 0, seen, fn, ctx);
                if (c < 0) rc = c;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int walk_root(file_source *fs, walk_fn fn, void *ctx) {
    visited seen = {0};
    int rc = walk(fs, fs->root, 1, &seen, fn, ctx);
    free(seen.slots);
    return rc;
}

/* ---- listing: a batch walk ------------------------------------------------- */

static int list_file(file_source *fs, const char *path, int kind, const struct stat *st, void *ctx) {
    dp_input_list *out = ctx;
    /* no key: cannot be stat'ed; it fails, and is logged, when read */
    char *key = st ? key_of(path, st, kind != E_OUTSIDE) : NULL;
    if (st && !key) return -1;
    dp_input *in = dp_input_new(&fs->base, path, key);
    free(key);
    if (!in) return -1;
    if (st) {
        in->size = (uint64_t)st->st_size;
        in->has_size = 1;
    }
    return dp_input_list_push(out, in);
}

/* ---- listing: following ----------------------------------------------------- */

typedef struct scan {
    dp_input_list *out;
    json_t *sig;        /* path -> "size:mtime" on this walk */
    json_t *acked_seen; /* keys of acknowledged inputs this walk met */
} scan;

static int scan_file(file_source *fs, const char *path, int kind, const struct stat *st, void *ctx) {
    scan *s = ctx;
    if (!st) return 0; /* gone */
    char sig[64];
    snprintf(sig, sizeof sig, "%lld:%lld.%09ld", (long long)st->st_size, (long long)st->st_mtim.tv_sec,
             (long)st->st_mtim.tv_nsec);
    char *key = NULL;
    if (json_object_size(fs->acked)) {
        key = key_of(path, st, kind != E_OUTSIDE);
        if (!key) return -1;
        if (json_object_get(fs->acked, key)) {
            int rc = json_object_set_new_nocheck(s->acked_seen, key, json_true());
            free(key);
            return rc;
        }
    }
    if (json_object_set_new_nocheck(s->sig, path, json_string_nocheck(sig)) != 0) {
        free(key);
        return -1;
    }
    const char *before = json_string_value(json_object_get(fs->prev, path));
    if (!before || strcmp(before, sig) != 0) { /* new, or still changing */
        free(key);
        return 0;
    }
    if (!key && !(key = key_of(path, st, kind != E_OUTSIDE))) return -1;
    dp_input *in = dp_input_new(&fs->base, path, key);
    free(key);
    if (!in) return -1;
    in->size = (uint64_t)st->st_size;
    in->has_size = 1;
    return dp_input_list_push(s->out, in);
}

static int file_next(dp_source *src, dp_input_list *out, dp_error *err) {
    file_source *fs = (file_source *)src;
    if (!fs->root_real) fs->root_real = realpath(fs->root, NULL); /* NULL: not there (yet) */
    if (!fs->follow) {
        if (fs->listed) return 0;
        fs->listed = 1;
        int rc = walk_root(fs, list_file, out);
        if (rc == -2) return dp_error_set(err, DP_ERR_IO, "cannot read the folder %s: %s", fs->root, strerror(errno));
        if (rc != 0) return dp_error_set(err, DP_ERR_NOMEM, "out of memory listing %s", fs->root);
        return 0;
    }
    scan s = {out, json_object(), json_object()};
    int rc = s.sig && s.acked_seen ? walk_root(fs, scan_file, &s) : -1;
    if (rc == 0) {
        /* what the next walk compares with; acknowledged keys of files that
         * are gone are forgotten */
        json_decref(fs->prev);
        fs->prev = s.sig;
        s.sig = NULL;
        json_object_clear(fs->acked);
        json_object_update(fs->acked, s.acked_seen);
    }
    json_decref(s.sig);
    json_decref(s.acked_seen);
    if (rc != 0) return dp_error_set(err, DP_ERR_NOMEM, "out of memory scanning %s", fs->root);
    return 0;
}

/* ---- reading and rejecting ------------------------------------------------- */

/* Whether `in` is a symbolic link below the SOURCE that leaves it. */
static int leaves_root(const file_source *fs, const dp_input *in) {
    struct stat st;
    return strcmp(in->name, fs->root) != 0 && lstat(in->name, &st) == 0 && S_ISLNK(st.st_mode) &&
           !inside_root(fs, in->name);
}

static int file_open(dp_source *src, const dp_input *in, dp_error *err) {
    file_source *fs = (file_source *)src;
    if (leaves_root(fs, in)) {
        dp_error_set(err, DP_ERR_INPUT, "a symbolic link to outside the SOURCE: not followed");
        dp_error_set_where(err, in->name);
        return -1;
    }
    /* Only a regular file is read: a socket cannot even be opened, and a
     * device or a FIFO would never end.  The stat decides before open();
     * fstat() decides again on what was opened, in case it was swapped. */
    struct stat before;
    if (stat(in->name, &before) == 0 && !S_ISREG(before.st_mode)) {
        dp_error_set(err, DP_ERR_INPUT, "not a regular file (%s): not read", dp_fs_kind(before.st_mode));
        dp_error_set_where(err, in->name);
        return -1;
    }
    /* O_NONBLOCK: a FIFO swapped in must not hang the run waiting for a writer */
    int fd = open(in->name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        /* gone is the input's state; refused (permissions, a full table
         * of files) is the run's, and the input waits for a later one */
        int e = errno;
        dp_error_set(err, e == ENOENT || e == ELOOP ? DP_ERR_INPUT : DP_ERR_IO, "cannot open: %s", strerror(e));
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

static int file_reject(dp_source *src, const dp_input *in, const dp_error *errors, size_t n_errors, dp_error *err) {
    file_source *fs = (file_source *)src;
    if (!fs->quarantine_dir) return 0;
    char qpath[PATH_MAX];
    struct stat st;
    int kept = leaves_root(fs, in)
                   ? dp_quarantine_reason(fs->quarantine_dir, in->name,
                                          "a symbolic link to outside the SOURCE: not followed, not copied", errors,
                                          n_errors, qpath, err)
                   : dp_quarantine_file(fs->quarantine_dir, in->name, errors, n_errors, qpath, err);
    if (kept == 0) {
        char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
        dp_log_info(fs->base.log, "file",
                    DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("quarantine", qpath),
                                  DP_LOG_STR("error", n_errors ? errors[0].msg : NULL)),
                    "dmarcpipe: %s: quarantined as %s", dp_error_text(in->name, a), dp_error_text(qpath, b));
        return 0;
    }
    if (stat(in->name, &st) != 0 && errno == ENOENT) {
        /* Gone before it could be kept (removed from a spool by someone
         * else, or never there): its rejection is logged, nothing is left
         * to keep, and the other inputs must not stop for it. */
        char a[DP_ERROR_TEXT_MAX];
        dp_log_warn(fs->base.log, "file", DP_LOG_FIELDS(DP_LOG_STR("input", in->name)),
                    "dmarcpipe: %s: gone, so not quarantined", dp_error_text(in->name, a));
        return 0;
    }
    return -1;
}

/* ---- acknowledging ------------------------------------------------------------ */

/* The path of `input` below the SOURCE: what follows the root when the
 * root is a folder above it, or the base name of a SOURCE that is the file
 * itself. */
static const char *relative_path(const file_source *fs, const char *input) {
    const char *r = fs->root;
    size_t n = strlen(r);
    while (n > 1 && r[n - 1] == '/') n--;
    if (strcmp(input, r) != 0 && strncmp(input, r, n) == 0 && input[n] == '/') return input + n + 1;
    const char *slash = strrchr(input, '/');
    return slash && slash[1] ? slash + 1 : input;
}

/* A follower does not list `in` again in this process. */
static void remember(file_source *fs, const dp_input *in) {
    if (!fs->acked) return;
    char *key = key_now(fs, in->name);
    if (key) json_object_set_new_nocheck(fs->acked, key, json_true());
    free(key);
}

static int file_ack(dp_source *src, const dp_input *in) {
    file_source *fs = (file_source *)src;
    if (!fs->done_dir) {
        remember(fs, in);
        return 0;
    }
    dp_buf dst = DP_BUF_INIT;
    dp_buf_printf(&dst, "%s/%s", fs->done_dir, relative_path(fs, in->name));
    int rc = 0;
    if (dst.failed || dp_fs_move(in->name, dst.data, NULL) != 0) {
        if (!dst.failed && errno == ENOENT) {
            rc = 1; /* gone already: nothing to move */
        } else {
            char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
            const char *why = dst.failed ? "out of memory" : strerror(errno);
            dp_log_warn(fs->base.log, "file",
                        DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("done_dir", fs->done_dir),
                                      DP_LOG_STR("error", why)),
                        "dmarcpipe run: %s: counted, but cannot be moved to %s: %s", dp_error_text(in->name, a),
                        dp_error_text(fs->done_dir, b), why);
            remember(fs, in);
            rc = -1;
        }
    }
    dp_buf_free(&dst);
    return rc;
}

static void file_hold(dp_source *src, const dp_input *in) { remember((file_source *)src, in); }

/* ---- the source ---------------------------------------------------------------- */

static void file_destroy(dp_source *src) {
    file_source *fs = (file_source *)src;
    free(fs->root);
    free(fs->root_real);
    free(fs->quarantine_dir);
    free(fs->done_dir);
    for (char **s = fs->skip; s && *s; s++) free(*s);
    free(fs->skip);
    json_decref(fs->prev);
    json_decref(fs->acked);
    json_decref(fs->unreadable);
    free(fs);
}

static const dp_source_ops FILE_OPS = {
    .name = "file",
    .next = file_next,
    .open = file_open,
    .reject = file_reject,
    .ack = file_ack,
    .hold = file_hold,
    .destroy = file_destroy,
};

static int dup_opt(char **dst, const char *src) {
    if (!src) return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

dp_source *dp_file_source_open(const char *path, const dp_source_options *opts, dp_error *err) {
    file_source *fs = calloc(1, sizeof *fs);
    int rc = fs ? 0 : -1;
    if (rc == 0) {
        fs->base.ops = &FILE_OPS;
        fs->base.log = opts ? opts->log : NULL;
        fs->follow = opts->follow;
        size_t n_skip = 0;
        while (opts->skip && opts->skip[n_skip]) n_skip++;
        fs->skip = calloc(n_skip + 1, sizeof *fs->skip);
        rc = fs->skip ? 0 : -1;
        for (size_t i = 0; rc == 0 && i < n_skip; i++) rc = dup_opt(&fs->skip[i], opts->skip[i]);
        if (rc == 0) rc = dup_opt(&fs->root, path) | dup_opt(&fs->quarantine_dir, opts->quarantine_dir) |
                          dup_opt(&fs->done_dir, opts->done_dir);
        if (rc == 0 && fs->follow) {
            fs->prev = json_object();
            fs->acked = json_object();
            fs->unreadable = json_object();
            if (!fs->prev || !fs->acked || !fs->unreadable) rc = -1;
        }
    }
    if (rc != 0) {
        if (fs) file_destroy(&fs->base);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory opening %s", path);
        return NULL;
    }
    return &fs->base;
}
