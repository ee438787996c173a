/* cmd_config — `dmarcpipe config`: the effective configuration of
 * `dmarcpipe run`, as YAML that --config takes back.
 *
 * It loads run's options exactly as run does (run_options.c: the file,
 * the DMARCPIPE_* variables, the flags, every value checked), then prints
 * each key with where its value came from.  Nothing is opened or started.
 * Secrets never appear: a row marked secret, a librdkafka property whose
 * name says password, secret, token, key, jaas or credential, the
 * password part of any URI (USER:PASSWORD@), and the credentials the
 * sources read from the environment themselves, which are named as
 * comments with their values masked.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_options.h"

#define MASK "********"

extern char **environ;

static const dp_options_row ROWS[] = {
    {NULL, 0, NULL, "Options:\n", 0, NULL},
    {"config", 0, "FILE", "the configuration file, as for run", DP_OPTIONS_PATH | DP_OPTIONS_NOFILE, NULL},
    {"help", 'h', NULL, "this help", DP_OPTIONS_HELP, NULL},
    {NULL, 0, NULL, "and every option of `dmarcpipe run` (see dmarcpipe run --help).\n", 0, NULL},
};

static int apply_nothing(void *ctx, const dp_options_row *row, const char *v, char *why, size_t cap) {
    (void)ctx, (void)row, (void)v, (void)why, (void)cap;
    return 0;
}

const dp_options_command dp_cmd_config_options = {
    .name = "config",
    .summary = "print the effective configuration of run (file, environment, flags), secrets masked",
    .synopsis = "[--config FILE] [RUN OPTIONS] [SOURCE...]",
    .intro = "Prints the configuration `dmarcpipe run` would run with, given the same\n"
             "configuration file, DMARCPIPE_* variables and options, as YAML that --config\n"
             "takes back.  Each key says where its value came from: default, file FILE:LINE,\n"
             "env VARIABLE, or flag.  Secrets are shown as " MASK ".  Exit status: 0, or 2\n"
             "when the configuration is bad (one line names the key and the reason).\n\n",
    .rows = ROWS,
    .n_rows = sizeof ROWS / sizeof *ROWS,
    .width = 21,
    .apply = apply_nothing,
};

/* v with the PASSWORD of a SCHEME://USER:PASSWORD@HOST masked, into buf. */
static const char *mask_uri(const char *v, char *buf, size_t cap) {
    size_t len;
    const char *pw = dp_options_uri_password(v, &len);
    if (!pw) return v;
    snprintf(buf, cap, "%.*s" MASK "%s", (int)(pw - v), v, pw + len);
    return buf;
}

/* A YAML scalar: plain when it reads back as the same text, else quoted. */
static void put_scalar(FILE *f, const char *v) {
    int plain = *v && !strchr("-?:,[]{}#&*!|>'\"%@` ", *v) && v[strlen(v) - 1] != ' ';
    for (const char *p = v; plain && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || (*p == ':' && (p[1] == ' ' || !p[1])) ||
            (*p == '#' && p[-1] == ' '))
            plain = 0;
    if (plain) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const char *p = v; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\x%02x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void origin(FILE *f, const dp_options_slot *s) {
    static const char *const layer[] = {"default", "file", "env", "flag"};
    if (s->layer == DP_OPTIONS_FLAG && strcmp(s->where, "arguments") == 0) fputs("  # command line", f);
    else fprintf(f, "  # %s %s", layer[s->layer], s->where);
    fputc('\n', f);
}

static void print_value(FILE *f, const dp_options_row *r, const char *v) {
    char buf[4096];
    put_scalar(f, (r->flags & DP_OPTIONS_SECRET) ? MASK : mask_uri(v, buf, sizeof buf));
}

static void print_row(FILE *f, const dp_options_row *r, const dp_options_slot *s) {
    if (!s->layer || !s->n) { /* (no values left: the environment set each of the file's properties) */
        if (r->def) {
            fprintf(f, "%s: ", r->name);
            print_value(f, r, r->def);
            fputs("  # default\n", f);
        } else {
            fprintf(f, "# %s:  # not set\n", r->name);
        }
        return;
    }
    if (r->flags & DP_OPTIONS_PROPS) {
        fprintf(f, "%s:", r->name);
        origin(f, s);
        for (size_t k = 0; k < s->n; k++) {
            const char *eq = strchr(s->v[k], '=');
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(eq - s->v[k]), s->v[k]);
            fputs("  ", f);
            put_scalar(f, key);
            fputs(": ", f);
            put_scalar(f, dp_options_secret_name(key) ? MASK : eq + 1);
            fputc('\n', f);
        }
        return;
    }
    if (r->flags & (DP_OPTIONS_REPEAT | DP_OPTIONS_POSITIONAL)) {
        fprintf(f, "%s:", r->name);
        origin(f, s);
        for (size_t k = 0; k < s->n; k++) {
            fputs("  - ", f);
            print_value(f, r, s->v[k]);
            fputc('\n', f);
        }
        return;
    }
    fprintf(f, "%s: ", r->name);
    print_value(f, r, s->v[s->n - 1]);
    origin(f, s);
}

/* The credentials and properties the sources and sinks read from the
 * environment themselves: named, never shown. */
static void print_env_secrets(FILE *f) {
    static const char *const masked[] = {"DMARCPIPE_IMAP_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                         "AWS_SESSION_TOKEN"};
    static const char *const shown[] = {"AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION"};
    int header = 0;
    for (char **e = environ; e && *e; e++) {
        size_t len = strcspn(*e, "=");
        int kafka = strncmp(*e, "DMARCPIPE_KAFKA_", 16) == 0, mask = -1;
        for (size_t i = 0; i < sizeof masked / sizeof *masked; i++)
            if (strlen(masked[i]) == len && strncmp(*e, masked[i], len) == 0) mask = 1;
        for (size_t i = 0; i < sizeof shown / sizeof *shown; i++)
            if (strlen(shown[i]) == len && strncmp(*e, shown[i], len) == 0) mask = 0;
        if (kafka) {
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)len, *e + 16);
            mask = dp_options_secret_name(key);
        }
        if (mask < 0 || !(*e)[len]) continue;
        if (!header++)
            fputs("# Read from the environment by the sources and sinks themselves (no keys of this file;\n"
                  "# DMARCPIPE_KAFKA_NAME is the librdkafka property name, '_' -> '.', lower case):\n",
                  f);
        fprintf(f, "#   %.*s=%s\n", (int)len, *e, mask ? MASK : *e + len + 1);
    }
}

int dp_cmd_config(int argc, char **argv) {
    dp_run_options ro;
    int rc = dp_run_options_load(&ro, argc, argv, &dp_cmd_config_options);
    if (rc >= 0) {
        dp_run_options_free(&ro);
        return rc;
    }
    const dp_options_command *cmd = &dp_run_options_command;
    const dp_options *o = &ro.opts;
    FILE *f = stdout;
    fputs("# The effective configuration of `dmarcpipe run`, from `dmarcpipe config`.\n"
          "# Precedence: built-in defaults < configuration file < DMARCPIPE_* variables\n"
          "# < command-line flags; a repeatable option takes the highest layer's list.\n"
          "# Secrets are shown as " MASK ": put them back, or better keep them in files.\n",
          f);
    long cf = dp_options_find(cmd, "config");
    if (cf >= 0 && o->slots[cf].layer)
        fprintf(f, "# Configuration file: %s (%s)\n", o->slots[cf].v[o->slots[cf].n - 1], o->slots[cf].where);
    for (size_t i = 0; i < cmd->n_rows; i++) {
        const dp_options_row *r = &cmd->rows[i];
        if (!r->name || (r->flags & (DP_OPTIONS_HELP | DP_OPTIONS_NOFILE))) continue;
        print_row(f, r, &o->slots[i]);
    }
    print_env_secrets(f);
    dp_run_options_free(&ro);
    return fflush(f) == 0 ? 0 : 3;
}
