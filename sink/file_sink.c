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
 */
#define _GNU_SOURCE /* sync_file_range */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_fs.h"
#include "sink_internal.h"

typedef struct file_sink {
    dp_sink base;
    FILE *f;
    int is_stdout;
    int csv;
    int reports; /* the inventory feed, not rollups */
    char *path;
    dp_buf line;
    off_t written;   /* bytes handed to stdio */
    off_t kicked;    /* bytes whose writeback was started */
    int no_kick;     /* sync_file_range failed once: do not try again */
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
    free(fs);
}

static const dp_sink_ops FILE_ROLLUPS = {
    .name = "file",
    .write_rollup = file_write_rollup,
    .format_rollup = file_format_rollup,
    .write_block = file_write_block,
    .flush = file_flush,
    .destroy = file_destroy,
};
static const dp_sink_ops FILE_REPORTS = {
    .name = "reports",
    .write_report = file_write_report,
    .flush = file_flush,
    .destroy = file_destroy,
};

dp_sink *dp_file_sink_open(const char *path, int reports, int append, dp_error *err) {
    file_sink *fs = calloc(1, sizeof *fs);
    if (!fs) { dp_error_set(err, DP_ERR_NOMEM, "out of memory"); return NULL; }
    fs->is_stdout = strcmp(path, "-") == 0;
    fs->path = strdup(fs->is_stdout ? "stdout" : path);
    size_t n = strlen(path);
    fs->csv = !reports && n > 4 && strcmp(path + n - 4, ".csv") == 0;
    fs->reports = reports;
    fs->f = fs->is_stdout ? stdout : (dp_fs_mkdir_parent(path) == 0 ? fopen(path, append ? "a" : "w") : NULL);
    if (!fs->f || !fs->path) {
        dp_error_set(err, DP_ERR_IO, "cannot open sink file %s: %s", path, strerror(errno));
        if (fs->f && !fs->is_stdout) fclose(fs->f);
        free(fs->path);
        free(fs);
        return NULL;
    }
    fs->base.ops = reports ? &FILE_REPORTS : &FILE_ROLLUPS;
    pthread_mutex_init(&fs->base.lock, NULL);
    /* a file added to already has its header */
    if (fs->csv && !(append && fseek(fs->f, 0, SEEK_END) == 0 && ftell(fs->f) > 0)) {
        dp_format_rollup_csv_header(&fs->line);
        if (put_line(fs, err) != 0) {
            file_destroy(&fs->base);
            return NULL;
        }
    }
    return &fs->base;
}

