/* json_floor.c -- dp-json-floor, the floor under `dmarcpipe report`.
 *
 * `dmarcpipe report` reads NDJSON feeds and parses every line with jansson
 * before it counts anything.  The least any such reader can do is read the
 * file, find the lines and parse each one with the same library: that is
 * this program, and its rate is what the report's is compared with
 * (bench/report_vs_json.sh).  It reads as the report does (1 MiB blocks
 * with read(2), lines split in place), calls json_loadb on each line and
 * json_decref, and sums the "messages" member of each line, so the parse
 * has a use the compiler cannot remove and the total can be checked
 * against the generator's.
 *
 * usage: dp-json-floor FILE...
 * Prints one line on stdout:
 *   floor json lines=N messages=M bytes=B seconds=S lines_per_s=R
 * where lines counts the non-empty lines of all FILEs, messages sums
 * "messages" over them (the report's and the rollups' alike; only the
 * rollups carry it where the reports feed is not read) and seconds is the
 * wall time of the whole read.  Exit 1 when a file cannot be read or a
 * line is not a JSON object.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)
#define MAX_LINE (1u << 20)

typedef struct {
    uint64_t lines, messages, bytes, bad;
} counts;

static void one_line(counts *c, const char *line, size_t len) {
    if (len == 0) return;
    json_error_t err;
    json_t *o = json_loadb(line, len, 0, &err);
    c->lines++;
    if (!json_is_object(o)) {
        c->bad++;
    } else {
        /* Only the rollups carry "messages" as a count of their own; a
         * reports-feed line has its report's total, which the rollups
         * already count. */
        json_t *m = json_object_get(o, "messages");
        if (json_is_integer(m) && json_object_get(o, "window_start")) c->messages += (uint64_t)json_integer_value(m);
    }
    json_decref(o);
}

static int read_file(const char *path, char *buf, counts *c) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "dp-json-floor: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t have = 0;
    for (;;) {
        ssize_t got = read(fd, buf + have, BLOCK + MAX_LINE - have);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            fprintf(stderr, "dp-json-floor: %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        c->bytes += (uint64_t)got;
        size_t end = have + (size_t)got, start = 0;
        for (;;) {
            char *nl = memchr(buf + start, '\n', end - start);
            if (!nl) break;
            one_line(c, buf + start, (size_t)(nl - (buf + start)));
            start = (size_t)(nl - buf) + 1;
        }
        if (got == 0) {
            if (start < end) one_line(c, buf + start, end - start);
            break;
        }
        have = end - start;
        if (have >= MAX_LINE) {
            fprintf(stderr, "dp-json-floor: %s: a line longer than 1 MiB\n", path);
            close(fd);
            return -1;
        }
        if (start) memmove(buf, buf + start, have);
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs("usage: dp-json-floor FILE...\n"
              "Parses every line of the NDJSON FILEs with jansson (json_loadb) and prints\n"
              "floor json lines=N messages=M bytes=B seconds=S lines_per_s=R\n",
              argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    char *buf = malloc(BLOCK + MAX_LINE);
    if (!buf) {
        fprintf(stderr, "dp-json-floor: out of memory\n");
        return 1;
    }
    counts c = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 1; i < argc; i++) {
        if (read_file(argv[i], buf, &c) != 0) {
            free(buf);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(buf);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (c.bad) {
        fprintf(stderr, "dp-json-floor: %" PRIu64 " lines were not JSON objects\n", c.bad);
        return 1;
    }
    printf("floor json lines=%" PRIu64 " messages=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f lines_per_s=%.0f\n",
           c.lines, c.messages, c.bytes, s, s > 0 ? (double)c.lines / s : 0.0);
    return 0;
}
