/* options.h — one table of options per command, and everything made of it.
 *
 * A command's options are rows of one table (dp_options_command): the
 * long name, the short letter, the argument's name, the help text and
 * flags.  From the table come the getopt_long arrays, `--help`, the
 * configuration file's keys (cli/config_file.c), the DMARCPIPE_*
 * environment variables and the man page (cli/manpage.c), so none of
 * them can drift from the others.
 *
 * Values are gathered in layers before any is used: the built-in
 * defaults (the command's own), then the configuration file, then the
 * environment, then the command line.  Each row keeps the values of the
 * highest layer that set it: for a repeatable option that layer's whole
 * list replaces the lower ones'.  Then the command's apply function
 * takes every value, in table order, and checks it: a bad value is named
 * with where it came from (flag, variable, or file and line).
 */
#ifndef DP_OPTIONS_H
#define DP_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

enum {
    DP_OPTIONS_REPEAT = 1u << 0,     /* repeatable; a layer's list replaces a lower layer's */
    DP_OPTIONS_SECRET = 1u << 1,     /* its value is masked wherever it is shown */
    DP_OPTIONS_PATH = 1u << 2,       /* its argument is a path */
    DP_OPTIONS_NOENV = 1u << 3,      /* no DMARCPIPE_* variable */
    DP_OPTIONS_NOFILE = 1u << 4,     /* no configuration-file key */
    DP_OPTIONS_PROPS = 1u << 5,      /* KEY=VALUE pairs (librdkafka); in the file, a mapping */
    DP_OPTIONS_POSITIONAL = 1u << 6, /* the command's positional arguments */
    DP_OPTIONS_HELP = 1u << 7,       /* -h, --help */
    DP_OPTIONS_NOLONG = 1u << 8,     /* only the short letter on the command line; the name is the key */
};

/* The layers, lowest first. */
enum { DP_OPTIONS_DEFAULT, DP_OPTIONS_FILE, DP_OPTIONS_ENV, DP_OPTIONS_FLAG };

/* One option, or (name NULL) a heading or a paragraph of the help,
 * printed as it is. */
typedef struct dp_options_row {
    const char *name;     /* long name = config key; DMARCPIPE_NAME (upper case, '-' -> '_') */
    char short_name;      /* 0: none */
    const char *arg;      /* the argument's name; NULL: a switch (true/false) */
    const char *help;     /* lines separated by '\n'; the first beside the option */
    unsigned flags;
    const char *def;      /* the default, as the option takes it; NULL: none or computed */
} dp_options_row;

/* Checks one value and takes it.  `value` is the argument ("true" or
 * "false" for a switch).  On a bad value returns -1 with `why`, a
 * reason that starts with the option (e.g. "--workers needs ..."). */
typedef int (*dp_options_apply_fn)(void *ctx, const dp_options_row *row, const char *value, char *why,
                                   size_t cap);

typedef struct dp_options_command {
    const char *name;        /* "run" */
    const char *summary;     /* one line, for `dmarcpipe --help` and the man page */
    const char *synopsis;    /* after "dmarcpipe NAME ": "[OPTIONS] SOURCE..." */
    const char *intro;       /* what --help says between the usage line and the rows */
    const dp_options_row *rows;
    size_t n_rows;
    int width;               /* the help's column for the text beside an option */
    const char *outro;       /* after the rows */
    dp_options_apply_fn apply;
    int config_file;         /* reads --config FILE / DMARCPIPE_CONFIG */
} dp_options_command;

typedef struct dp_options_slot {
    int layer;        /* the highest layer that set it; DP_OPTIONS_DEFAULT: unset */
    char *where;      /* "--workers", "DMARCPIPE_WORKERS", "FILE:LINE" */
    char **v;
    size_t n;
} dp_options_slot;

typedef struct dp_options {
    const dp_options_command *cmd;
    const dp_options_command *help; /* whose --help to print (cmd's by default) */
    dp_options_slot *slots;         /* one per row */
    char **args;                    /* positional arguments, when no row takes them */
    size_t n_args;
} dp_options;

int dp_options_init(dp_options *o, const dp_options_command *cmd);
void dp_options_free(dp_options *o);

/* The command line, the environment and (config_file) the configuration
 * file, into the slots.  0: go on; otherwise *exit_code is what the
 * command returns (0 after --help, 2 after an error, printed). */
int dp_options_collect(dp_options *o, int argc, char **argv, int *exit_code);

/* Every value set, in table order, through the command's apply.  0, or
 * 2 after printing the first bad value with where it came from. */
int dp_options_apply(dp_options *o, void *ctx);

/* Sets a row's value for one layer (see the header comment).  -1: out
 * of memory. */
int dp_options_set(dp_options *o, size_t row, int layer, const char *where, const char *value);

/* The row whose config key is `key`, or -1. */
/* Whether a property's name says it holds a secret (password, secret,
 * token, key, jaas, credential): its value is masked wherever shown. */
int dp_options_secret_name(const char *key);
/* The PASSWORD of a SCHEME://USER:PASSWORD@HOST... value, and its length
 * in *len, or NULL when v holds none. */
const char *dp_options_uri_password(const char *v, size_t *len);
long dp_options_find(const dp_options_command *cmd, const char *key);

/* DMARCPIPE_NAME into buf; 0 when the row has no variable. */
int dp_options_env_name(const dp_options_row *row, char *buf, size_t cap);

/* "true"/"false" for the words a switch takes (true, yes, on, 1 and
 * their opposites); NULL for any other word. */
const char *dp_options_bool(const char *word);

/* The help text of a command. */
void dp_options_help(const dp_options_command *cmd, FILE *f);

/* The option as --help shows it: "-X KEY=VALUE", "--sink URI", "-o, --output FILE". */
void dp_options_label(const dp_options_row *row, char *buf, size_t cap);

#endif
