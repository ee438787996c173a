/* dmarcpipe — the command-line front end.
 *
 * One binary, git-style subcommands.  Each subcommand wires the stages
 * (ingest -> aggregate -> sink) for one use; the stages themselves know
 * nothing about the command line.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dp_config.h"
#include "manpage.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} COMMANDS[] = {
    {"run", dp_cmd_run, "roll reports up per time window into sinks (the pipeline)"},
    {"report", dp_cmd_report, "per domain: who sends as it, and is it ready for p=reject (table, JSON, HTML)"},
    {"parse", dp_cmd_parse, "parse reports and print their records as NDJSON (debugging, parity)"},
    {"config", dp_cmd_config, "print the effective configuration of run (file, environment, flags), secrets masked"},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: dmarcpipe [--version] [--help] COMMAND [ARGS]\n\n"
            "dmarcpipe reads DMARC aggregate reports (XML, gzip, zip, zstd, e-mail, mbox)\n"
            "and turns them into rollups a warehouse can sum.\n\nCommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-8s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\nRun 'dmarcpipe COMMAND --help' for a command's options, and see dmarcpipe(1).\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("dmarcpipe %s\n", DP_VERSION);
        return 0;
    }
    /* the man page, for the build (cli/CMakeLists.txt makes dmarcpipe.1) */
    if (argc == 3 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "--man") == 0) {
        dp_manpage_write(stdout);
        return fflush(stdout) == 0 ? 0 : 3;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "dmarcpipe: '%s' is not a command. See 'dmarcpipe --help'.\n", argv[1]);
    return 2;
}
