/* cli_util — option and file-walking helpers shared by subcommands. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

const char DP_CLI_LIMITS_HELP[] =
    "Safety limits (a report over a limit is rejected and quarantined):\n"
    "  --max-report-bytes SIZE  decompressed XML per report (default 1G)\n"
    "  --max-ratio N            decompression ratio, output:input (default 250)\n"
    "  --max-depth N            XML element nesting (default 64)\n"
    "  --max-text SIZE          text in one XML element (default 64K)\n"
    "SIZE takes a K, M or G suffix (powers of 1024).\n";

int dp_cli_parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10, end++;
    else if (*end == 'M' || *end == 'm') shift = 20, end++;
    else if (*end == 'G' || *end == 'g') shift = 30, end++;
    if (*end == 'i' && shift) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
    if (shift && v > (UINT64_MAX >> shift)) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int dp_cli_limit_option(dp_ingest_limits *lim, const char *opt, const char *val) {
    uint64_t v;
    int which;
    if (strcmp(opt, "--max-report-bytes") == 0) which = 0;
    else if (strcmp(opt, "--max-ratio") == 0) which = 1;
    else if (strcmp(opt, "--max-depth") == 0) which = 2;
    else if (strcmp(opt, "--max-text") == 0) which = 3;
    else return 0;
    if (!val || dp_cli_parse_size(val, &v) != 0 || v == 0 || (which && v > UINT32_MAX / 2)) {
        fprintf(stderr, "dmarcpipe: %s needs a positive number, got '%s'\n", opt, val ? val : "");
        return -1;
    }
    switch (which) {
    case 0: lim->max_report_bytes = v; break;
    case 1: lim->max_ratio = (uint32_t)v; break;
    case 2: lim->max_xml_depth = (uint32_t)v; break;
    default: lim->max_text_bytes = (uint32_t)v; break;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_skipped(const char *dir, const char *const *skip) {
    char real[PATH_MAX];
    if (!skip || !*skip || !realpath(dir, real)) return 0;
    for (; *skip; skip++)
        if (strcmp(real, *skip) == 0) return 1;
    return 0;
}

static int walk(const char *path, int top, const char *const *skip, int (*fn)(const char *file, void *ctx),
                void *ctx) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return fn(path, ctx);
    if (!top && is_skipped(path, skip)) return 0;
    DIR *d = opendir(path);
    if (!d) return fn(path, ctx); /* let ingest report the error for this path */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        /* Hidden entries are bookkeeping (.gitattributes, Maildir's .tmp
         * files, editors' swap files), never reports. */
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
                if (walk(child, 0, skip, fn, ctx) != 0) rc = rc ? rc : 1;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int dp_cli_walk(const char *path, int (*fn)(const char *file, void *ctx), void *ctx) {
    return walk(path, 1, NULL, fn, ctx);
}

int dp_cli_walk_skip(const char *path, const char *const *skip, int (*fn)(const char *file, void *ctx), void *ctx) {
    return walk(path, 1, skip, fn, ctx);
}
