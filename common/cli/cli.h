/* cli.h — the subcommands of the `dmarcpipe` binary.
 *
 * Each subcommand is a function with main()'s signature, listed in the
 * table in dmarcpipe.c, git style: `dmarcpipe parse ...`, later
 * `dmarcpipe run ...`.  Helpers shared by subcommands live in cli_util.c.
 */
#ifndef DP_CLI_H
#define DP_CLI_H

#include <stdint.h>

#include "ingest.h"

int dp_cmd_parse(int argc, char **argv);
int dp_cmd_run(int argc, char **argv);

/* Parses "64K", "10M", "1G" or plain bytes.  0 on success. */
int dp_cli_parse_size(const char *s, uint64_t *out);

/* Handles a limit option (--max-report-bytes and friends) shared by every
 * subcommand that ingests.  Returns 1 if `opt` was one, 0 if not, -1 if its
 * value was invalid (a message was printed). */
int dp_cli_limit_option(dp_ingest_limits *lim, const char *opt, const char *val);
extern const char DP_CLI_LIMITS_HELP[];

/* Calls fn(path, ctx) for each regular file under `path` (itself, if it
 * is a file), in sorted order so runs are reproducible. */
int dp_cli_walk(const char *path, int (*fn)(const char *file, void *ctx), void *ctx);

#endif
