/* cli — what the subcommands share: the list of their option tables,
 * sizes, and the checks of the rows every command has (limits, logs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_options.h"

const dp_options_command *const *dp_cli_commands(size_t *n) {
    static const dp_options_command *const all[] = {&dp_run_options_command, &dp_cmd_report_options,
                                                    &dp_cmd_parse_options, &dp_cmd_config_options};
    *n = sizeof all / sizeof *all;
    return all;
}

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

int dp_cli_limit_option(dp_ingest_limits *lim, const char *name, const char *val, char *why, size_t cap) {
    uint64_t v;
    int which;
    if (strcmp(name, "max-report-bytes") == 0) which = 0;
    else if (strcmp(name, "max-ratio") == 0) which = 1;
    else if (strcmp(name, "max-depth") == 0) which = 2;
    else if (strcmp(name, "max-text") == 0) which = 3;
    else if (strcmp(name, "max-range-days") == 0) which = 4;
    else return 0;
    if (!val || dp_cli_parse_size(val, &v) != 0 || v == 0 || (which && v > UINT32_MAX / 2) ||
        (which == 4 && v > 36525)) {
        snprintf(why, cap, "--%s needs a positive number, got '%s'", name, val ? val : "");
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

static int one_of(const char *val, const char *const *words) {
    for (; *words; words++)
        if (strcmp(val, *words) == 0) return 1;
    return 0;
}

int dp_cli_log_option(const char *name, const char *val, const char **level, const char **format, char *why,
                      size_t cap) {
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"auto", "json", "logfmt", "plain", NULL};
    if (strcmp(name, "log-level") == 0) {
        if (!one_of(val, levels)) {
            snprintf(why, cap, "--log-level is debug, info, warn or error, got '%s'", val);
            return -1;
        }
        *level = val;
        return 1;
    }
    if (strcmp(name, "log-format") == 0) {
        if (!one_of(val, formats)) {
            snprintf(why, cap, "--log-format is auto, json, logfmt or plain, got '%s'", val);
            return -1;
        }
        *format = val;
        return 1;
    }
    return 0;
}
