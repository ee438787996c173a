/* cli — option helpers shared by the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char DP_CLI_LIMITS_HELP[] =
    "Safety limits (a report over a limit is rejected and quarantined):\n"
    "  --max-report-bytes SIZE  decompressed XML per report (default 1G)\n"
    "  --max-ratio N            decompression ratio, output:input (default 250)\n"
    "  --max-depth N            XML element nesting (default 64)\n"
    "  --max-text SIZE          text in one XML element (default 64K)\n"
    "  --max-range-days N       days one report may cover (default 31)\n"
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
    else if (strcmp(opt, "--max-range-days") == 0) which = 4;
    else return 0;
    if (!val || dp_cli_parse_size(val, &v) != 0 || v == 0 || (which && v > UINT32_MAX / 2) ||
        (which == 4 && v > 36525)) {
        fprintf(stderr, "dmarcpipe: %s needs a positive number, got '%s'\n", opt, val ? val : "");
        return -1;
    }
    switch (which) {
    case 0: lim->max_report_bytes = v; break;
    case 1: lim->max_ratio = (uint32_t)v; break;
    case 2: lim->max_xml_depth = (uint32_t)v; break;
    case 4: lim->max_range_seconds = (int64_t)v * 86400; break;
    default: lim->max_text_bytes = (uint32_t)v; break;
    }
    return 1;
}
