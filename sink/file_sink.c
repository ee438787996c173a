/* file_sink — rollups to a local file (NDJSON or CSV) or stdout, and the
 * reports inventory feed.  The embedded default sink.
 *
 * Lines are built in a buffer and written with stdio; flush() is fflush +
 * fsync for files, so a flush epoch that returned is on disk.
 *
 * A final flush writes hundreds of MB in one go, and an fsync at the end
 * would then wait for all of it.  So every WRITEBACK_BYTES the file's new
 * pages are handed to the kernel's writeback at once (sync_file_range,
 * SYNC_FILE_RANGE_WRITE: it starts I/O and does not wait), and the disk
 * works while the rest is formatted; the fsync finds little left to do.
 * Where the call is not supported (not a regular file, another kernel)
 * it is simply not used: fsync still decides what is durable.
 *
 * Exactly once, with a state (`resume`).  The run records, in its state
 * and in the same LMDB transaction as the reports an epoch counted, how
 * long the file was when the epoch committed (position()).  A new run
 * opens the file without truncating it and resume()s from there: bytes
 * past the committed length were written by a run that died before its
 * commit, so they are cut, and their reports, which the state does not
 * know, are counted again.  A file is never replaced: one that holds data
 * its state did not count, or less than it did, is refused.  Without a
 * state a run writes its files anew, as its output is its own.
 */
#define _GNU_SOURCE /* sync_file_range */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink_internal.h"

typedef struct file_sink {
    dp_sink base;
    FILE *f;
    int is_stdout;
    int csv;
    int reports; /* the inventory feed, not rollups */
    char *path;
    char *name;      /* "file:REALPATH", the state's name for it (resume only) */
    dp_buf line;
    off_t written;   /* the file offset stdio has been handed bytes up to */
    off_t kicked;    /* the offset up to which writeback was started */
    int no_kick;     /* sync_file_range failed once: do not try again */
    dp_log *log;
} file_sink;

#define WRITEBACK_BYTES ((off_t)8 << 20)

/* Counts n bytes written and, past WRITEBACK_BYTES since the last time,
 * starts their writeback without waiting. */
static void wrote(file_sink *fs, size_t n) {
    fs->written += (off_t)n;
    if (fs->is_stdout || fs->no_kick || fs->written - fs->kicked < WRITEBACK_BYTES) return;
    if (fflush(fs->f) != 0) return; /* the error comes back at the next write or flush */
    if (sync_file_range(fileno(fs->f), fs->kicked, fs->written - fs->kicked, SYNC_FILE_RANGE_WRITE) != 0)
        fs->no_kick = 1;
    fs->kicked = fs->written;
}

static int io_error(file_sink *fs, dp_error *err, const char *what) {
    return dp_error_set(err, DP_ERR_IO, "sink %s: %s failed: %s", fs->path, what, strerror(errno));
}

static int put_line(file_sink *fs, dp_error *err) {
    if (fs->line.failed) return dp_error_set(err, DP_ERR_NOMEM, "sink %s: out of memory", fs->path);
    if (fwrite(fs->line.data, 1, fs->line.len, fs->f) != fs->line.len) return io_error(fs, err, "write");
    wrote(fs, fs->line.len);
    return 0;
}

static int file_write_rollup(dp_sink *s, const dp_rollup *r, dp_error *err) {
    file_sink *fs = (file_sink *)s;
    dp_buf_reset(&fs->line);
    if (fs->csv) {
        dp_format_rollup_csv(&fs->line, r);
    } else {
        dp_format_rollup_json(&fs->line, r);
        dp_buf_putc(&fs->line, '\n');
    }
    return put_line(fs, err);
}

static void file_format_rollup(const dp_sink *s, dp_buf *out, const dp_rollup *r) {
    if (((const file_sink *)s)->csv) {
        dp_format_rollup_csv(out, r);
    } else {
        dp_format_rollup_json(out, r);
        dp_buf_putc(out, '\n');
    }
}

static int file_write_block(dp_sink *s, const char *data, size_t len, dp_error *err) {
    file_sink *fs = (file_sink *)s;
    if (fwrite(data, 1, len, fs->f) != len) return io_error(fs, err, "write");
    wrote(fs, len);
    return 0;
}

static int file_write_report(dp_sink *s, const char *line, size_t len, dp_error *err) {
    file_sink *fs = (file_sink *)s;
    if (fwrite(line, 1, len, fs->f) != len) return io_error(fs, err, "write");
    wrote(fs, len);
    return 0;
}

static int file_flush(dp_sink *s, dp_error *err) {
    file_sink *fs = (file_sink *)s;
    if (fflush(fs->f) != 0) return io_error(fs, err, "flush");
    if (!fs->is_stdout && fsync(fileno(fs->f)) != 0 && errno != EINVAL) return io_error(fs, err, "fsync");
    return 0;
}

static void file_destroy(dp_sink *s) {
    file_sink *fs = (file_sink *)s;
    if (fs->f && !fs->is_stdout) fclose(fs->f);
    dp_buf_free(&fs->line);
    free(fs->path);
    free(fs->name);
    free(fs);
}

static const char *file_position_name(const dp_sink *s) { return ((const file_sink *)s)->name; }

static uint64_t file_position(const dp_sink *s) { return (uint64_t)((const file_sink *)s)->written; }

static int file_resume(dp_sink *s, int known, uint64_t committed, dp_error *err) {
    file_sink *fs = (file_sink *)s;
    if (!fs->name) return 0; /* written anew */
    struct stat st;
    if (fstat(fileno(fs->f), &st) != 0) return io_error(fs, err, "stat");
    uint64_t size = (uint64_t)st.st_size;
    if (!known && size > 0)
        return dp_error_set(err, DP_ERR_USAGE,
                            "sink %s already holds %llu bytes that this state did not count: it is never replaced; "
                            "move it away, or run with the --state that wrote it",
                            fs->path, (unsigned long long)size);
    if (known && size < committed)
        return dp_error_set(err, DP_ERR_USAGE,
                            "sink %s holds %llu bytes, fewer than the %llu its state counted: it was cut or replaced "
                            "since; move it away, or start a new --state",
                            fs->path, (unsigned long long)size, (unsigned long long)committed);
    if (size > committed) {
        if (ftruncate(fileno(fs->f), (off_t)committed) != 0) return io_error(fs, err, "truncate");
        dp_log_warn(fs->log, "sink",
                    DP_LOG_FIELDS(DP_LOG_STR("sink", fs->path), DP_LOG_U64("bytes_cut", size - committed),
                                  DP_LOG_U64("committed", committed)),
                    "dmarcpipe run: sink %s: %llu bytes written after its last commit (a run that stopped before it) "
                    "are cut; their reports are counted again",
                    fs->path, (unsigned long long)(size - committed));
    }
    if (fseeko(fs->f, (off_t)committed, SEEK_SET) != 0) return io_error(fs, err, "seek");
    fs->written = fs->kicked = (off_t)committed;
    if (fs->csv && committed == 0) { /* a new file gets its header */
        dp_buf_reset(&fs->line);
        dp_format_rollup_csv_header(&fs->line);
        if (put_line(fs, err) != 0) return -1;
    }
    return 0;
}

static const dp_sink_ops FILE_ROLLUPS = {
    .name = "file",
    .write_rollup = file_write_rollup,
    .format_rollup = file_format_rollup,
    .write_block = file_write_block,
    .flush = file_flush,
    .destroy = file_destroy,
    .position_name = file_position_name,
    .resume = file_resume,
    .position = file_position,
};
static const dp_sink_ops FILE_REPORTS = {
    .name = "reports",
    .write_report = file_write_report,
    .flush = file_flush,
    .destroy = file_destroy,
    .position_name = file_position_name,
    .resume = file_resume,
    .position = file_position,
};

/* The file, opened for writing: from its start, emptied (written anew), or
 * kept as it is for resume().  Its folder must exist: a mistyped path is an
 * error, not a new tree of folders. */
static FILE *open_file(const char *path, int resume) {
    if (!resume) return fopen(path, "w");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "r+");
    if (!f) close(fd);
    return f;
}

dp_sink *dp_file_sink_open(const char *path, int reports, int resume, dp_log *log, dp_error *err) {
    file_sink *fs = calloc(1, sizeof *fs);
    if (!fs) { dp_error_set(err, DP_ERR_NOMEM, "out of memory"); return NULL; }
    fs->log = log;
    fs->is_stdout = strcmp(path, "-") == 0;
    fs->path = strdup(fs->is_stdout ? "stdout" : path);
    size_t n = strlen(path);
    fs->csv = !reports && n > 4 && strcmp(path + n - 4, ".csv") == 0;
    fs->reports = reports;
    fs->f = fs->is_stdout ? stdout : open_file(path, resume);
    if (!fs->f || !fs->path) {
        dp_error_set(err, DP_ERR_IO, "cannot open sink file %s: %s", path, strerror(errno));
        if (fs->f && !fs->is_stdout) fclose(fs->f);
        free(fs->path);
        free(fs);
        return NULL;
    }
    if (resume && !fs->is_stdout) {
        char *real = realpath(path, NULL);
        dp_buf name = DP_BUF_INIT;
        dp_buf_printf(&name, "file:%s", real ? real : path);
        free(real);
        if (name.failed) {
            dp_buf_free(&name);
            fclose(fs->f);
            free(fs->path);
            free(fs);
            dp_error_set(err, DP_ERR_NOMEM, "out of memory");
            return NULL;
        }
        fs->name = name.data;
    }
    fs->base.ops = reports ? &FILE_REPORTS : &FILE_ROLLUPS;
    pthread_mutex_init(&fs->base.lock, NULL);
    /* a file written anew has its header now; one resumed, in resume() */
    if (fs->csv && !fs->name) {
        dp_format_rollup_csv_header(&fs->line);
        if (put_line(fs, err) != 0) {
            file_destroy(&fs->base);
            return NULL;
        }
    }
    return &fs->base;
}
