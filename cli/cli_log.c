/* cli_log — see cli_log.h.
 *
 * The words come from the command's option table (DP_CLI_LOG_ROWS), which
 * already took them from the flags, DMARCPIPE_LOG_LEVEL/_FORMAT or the
 * configuration file, and checked them.
 */
#include "cli_log.h"

#include <stdio.h>

int dp_cli_log_open(const char *cmd, const char *level, const char *format, dp_log **out) {
    *out = NULL;
    dp_log_level lv = DP_LOG_INFO;
    dp_log_format fm = DP_LOG_AUTO;
    if (level && *level && dp_log_parse_level(level, &lv) != 0) {
        fprintf(stderr, "dmarcpipe %s: --log-level is debug, info, warn or error, got '%s'\n", cmd, level);
        return -1;
    }
    if (format && *format && dp_log_parse_format(format, &fm) != 0) {
        fprintf(stderr, "dmarcpipe %s: --log-format is auto, json, logfmt or plain, got '%s'\n", cmd, format);
        return -1;
    }
    if (!(*out = dp_log_new(stderr, lv, fm))) {
        fprintf(stderr, "dmarcpipe %s: out of memory\n", cmd);
        return -1;
    }
    return 0;
}
