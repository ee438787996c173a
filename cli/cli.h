/* cli.h — the subcommands of the `dmarcpipe` program.
 *
 * Each subcommand is a function with main()'s signature, listed in the
 * table in dmarcpipe.c, git style: `dmarcpipe run ...`, `dmarcpipe parse
 * ...`.  A subcommand parses its options, opens what the libraries need,
 * calls them, and prints a summary: the pipeline itself lives in the
 * libraries (source/, ingest/, aggregate/, sink/, run/).  Option helpers
 * shared by subcommands are in cli.c.
 */
#ifndef DP_CLI_H
#define DP_CLI_H

#include <stdint.h>

#include "ingest.h"

int dp_cmd_parse(int argc, char **argv);
int dp_cmd_run(int argc, char **argv);
int dp_cmd_report(int argc, char **argv);

/* Parses "64K", "10M", "1G" or plain bytes.  0 on success. */
int dp_cli_parse_size(const char *s, uint64_t *out);

/* Handles a limit option (--max-report-bytes and friends) shared by every
 * subcommand that ingests.  Returns 1 if `opt` was one, 0 if not, -1 if its
 * value was invalid (a message was printed). */
int dp_cli_limit_option(dp_ingest_limits *lim, const char *opt, const char *val);
extern const char DP_CLI_LIMITS_HELP[];

#endif
