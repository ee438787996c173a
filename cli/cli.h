/* cli.h — the subcommands of the `dmarcpipe` program.
 *
 * Each subcommand is a function with main()'s signature, listed in the
 * table in dmarcpipe.c, git style: `dmarcpipe run ...`, `dmarcpipe parse
 * ...`.  A subcommand parses its options, opens what the libraries need,
 * calls them, and prints a summary: the pipeline itself lives in the
 * libraries (source/, ingest/, aggregate/, sink/, run/).  Each command's
 * options are one table (options.h); the rows and checks shared by
 * subcommands are in cli.c.
 */
#ifndef DP_CLI_H
#define DP_CLI_H

#include <stdint.h>

#include "ingest.h"
#include "options.h"

int dp_cmd_parse(int argc, char **argv);
int dp_cmd_run(int argc, char **argv);
int dp_cmd_report(int argc, char **argv);
int dp_cmd_config(int argc, char **argv);

/* Their option tables (run's is in run_options.h). */
extern const dp_options_command dp_cmd_parse_options;
extern const dp_options_command dp_cmd_report_options;
extern const dp_options_command dp_cmd_config_options;

/* Every command's option table, for the man page and for telling a
 * mistyped DMARCPIPE_* variable from a real one. */
const dp_options_command *const *dp_cli_commands(size_t *n);

/* Parses "64K", "10M", "1G" or plain bytes.  0 on success. */
int dp_cli_parse_size(const char *s, uint64_t *out);

/* Takes a limit option (--max-report-bytes and friends) shared by every
 * subcommand that ingests.  Returns 1 if `name` was one, 0 if not, -1 if
 * its value was invalid (the reason in why). */
int dp_cli_limit_option(dp_ingest_limits *lim, const char *name, const char *val, char *why, size_t cap);

/* Takes --log-level or --log-format (every command): 1 if `name` was
 * one (its value checked, stored in *level or *format), 0 if not, -1 if
 * its value was invalid. */
int dp_cli_log_option(const char *name, const char *val, const char **level, const char **format, char *why,
                      size_t cap);

/* The rows every command that ingests shares: the safety limits. */
#define DP_CLI_LIMIT_ROWS                                                                                        \
    {NULL, 0, NULL, "\nSafety limits (a report over a limit is rejected and quarantined):\n", 0, NULL},            \
    {"max-report-bytes", 0, "SIZE", "decompressed XML per report (default 1G)", 0, "1G"},                         \
    {"max-ratio", 0, "N", "decompression ratio, output:input (default 250)", 0, "250"},                          \
    {"max-depth", 0, "N", "XML element nesting (default 64)", 0, "64"},                                          \
    {"max-text", 0, "SIZE", "text in one XML element (default 64K)", 0, "64K"},                                  \
    {"max-range-days", 0, "N", "days one report may cover (default 31)", 0, "31"},                               \
    {NULL, 0, NULL, "SIZE takes a K, M or G suffix (powers of 1024).\n", 0, NULL}

/* The rows every command shares: how it logs. */
#define DP_CLI_LOG_ROWS                                                                                          \
    {"log-level", 0, "LEVEL", "debug, info, warn or error (default info)", 0, "info"},                          \
    {"log-format", 0, "FORMAT", "auto, json, logfmt or plain; auto: plain on a terminal,\njson otherwise (default auto)", 0, "auto"}

#endif
