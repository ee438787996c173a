/* cli_log.h — the logger every command makes from --log-level and
 * --log-format, and hands down to the libraries (common/dp_log.h).
 */
#ifndef DP_CLI_LOG_H
#define DP_CLI_LOG_H

#include "dp_log.h"

/* A logger on stderr from the options' words (NULL: the defaults, info
 * and auto).  0 and *out, or -1 after saying on stderr, as `dmarcpipe
 * CMD`, what was wrong (a word it does not know, out of memory). */
int dp_cli_log_open(const char *cmd, const char *level, const char *format, dp_log **out);

#endif
