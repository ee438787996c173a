/* options — the generic half of the option tables: getopt_long from the
 * rows, the layers (file, environment, command line) gathered into
 * slots, the values handed to the command in table order, and --help.
 * See options.h.
 *
 * The namespace DMARCPIPE_KAFKA_* belongs to librdkafka's properties
 * (common/dp_kafka.c reads it: DMARCPIPE_KAFKA_SASL_PASSWORD is
 * sasl.password), so no option has a variable there: --kafka-config is
 * set on the command line or in the file only.  DMARCPIPE_IMAP_PASSWORD
 * is the IMAP password, read by the IMAP source.  Any other DMARCPIPE_*
 * variable that is no option's is named in a warning: a typo must not
 * pass silently.
 */
#include "options.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config_file.h"

extern char **environ;

#define ENV_PREFIX "DMARCPIPE_"
#define KAFKA_ENV_PREFIX "DMARCPIPE_KAFKA_"

/* Variables that mean something and are no option's: the IMAP password,
 * and the systemd unit's extra arguments (deploy/systemd). */
static const char *const SPECIAL_ENV[] = {"DMARCPIPE_IMAP_PASSWORD", "DMARCPIPE_ARGS"};

int dp_options_init(dp_options *o, const dp_options_command *cmd) {
    memset(o, 0, sizeof *o);
    o->cmd = o->help = cmd;
    o->slots = calloc(cmd->n_rows ? cmd->n_rows : 1, sizeof *o->slots);
    return o->slots ? 0 : -1;
}

static void slot_clear(dp_options_slot *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    free(s->where);
    memset(s, 0, sizeof *s);
}

void dp_options_free(dp_options *o) {
    if (o->slots)
        for (size_t i = 0; i < o->cmd->n_rows; i++) slot_clear(&o->slots[i]);
    free(o->slots);
    free(o->args);
    memset(o, 0, sizeof *o);
}

int dp_options_set(dp_options *o, size_t row, int layer, const char *where, const char *value) {
    dp_options_slot *s = &o->slots[row];
    const dp_options_row *r = &o->cmd->rows[row];
    if (layer < s->layer) return 0; /* a higher layer has it */
    if (layer > s->layer || !(r->flags & (DP_OPTIONS_REPEAT | DP_OPTIONS_PROPS | DP_OPTIONS_POSITIONAL))) {
        slot_clear(s);
        s->layer = layer;
    }
    free(s->where);
    char **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v) return -1;
    s->v = v;
    if (!(s->where = strdup(where)) || !(s->v[s->n] = strdup(value))) return -1;
    s->n++;
    return 0;
}

int dp_options_secret_name(const char *key) {
    static const char *const words[] = {"password", "secret", "token", "key", "jaas", "credential"};
    char low[256];
    size_t n = 0;
    for (; key[n] && n < sizeof low - 1; n++) low[n] = (char)tolower((unsigned char)key[n]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strstr(low, words[i])) return 1;
    return 0;
}

const char *dp_options_uri_password(const char *v, size_t *len) {
    const char *auth = strstr(v, "://");
    if (!auth) return NULL;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) return NULL;
    *len = (size_t)(at - colon - 1);
    return colon + 1;
}

/* The command line is public (ps, /proc/PID/cmdline): once a value is
 * copied, a secret in it is overwritten where argv keeps it, the value of
 * a secret KEY=VALUE property and the PASSWORD of a USER:PASSWORD@ URI. */
static void hide_secret_arg(const dp_options_row *r, char *arg) {
    char *eq = strchr(arg, '=');
    if ((r->flags & DP_OPTIONS_PROPS) && eq) {
        *eq = '\0';
        int secret = dp_options_secret_name(arg);
        *eq = '=';
        if (secret) memset(eq + 1, '*', strlen(eq + 1));
        return;
    }
    size_t len;
    const char *pw;
    if (r->flags & DP_OPTIONS_SECRET) memset(arg, '*', strlen(arg));
    else if ((pw = dp_options_uri_password(arg, &len))) memset(arg + (pw - arg), '*', len);
}

long dp_options_find(const dp_options_command *cmd, const char *key) {
    for (size_t i = 0; i < cmd->n_rows; i++)
        if (cmd->rows[i].name && strcmp(cmd->rows[i].name, key) == 0) return (long)i;
    return -1;
}

int dp_options_env_name(const dp_options_row *row, char *buf, size_t cap) {
    if (!row->name || (row->flags & (DP_OPTIONS_NOENV | DP_OPTIONS_HELP))) return 0;
    size_t n = strlen(ENV_PREFIX);
    if (n + strlen(row->name) + 1 > cap) return 0;
    memcpy(buf, ENV_PREFIX, n);
    for (const char *p = row->name; *p; p++) buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    buf[n] = '\0';
    /* librdkafka's namespace: see the header comment */
    return strncmp(buf, KAFKA_ENV_PREFIX, strlen(KAFKA_ENV_PREFIX)) != 0;
}

const char *dp_options_bool(const char *w) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(w, yes[i]) == 0) return "true";
        if (strcasecmp(w, no[i]) == 0) return "false";
    }
    return NULL;
}

/* ---- the command line ------------------------------------------------------ */

static long row_of_val(const dp_options_command *cmd, int val) {
    if (val >= 256) return val - 256;
    for (size_t i = 0; i < cmd->n_rows; i++)
        if (cmd->rows[i].name && cmd->rows[i].short_name == val) return (long)i;
    return -1;
}

/* 0 on success, 1 after --help, -1 on a usage error (printed by getopt) */
static int collect_argv(dp_options *o, int argc, char **argv) {
    const dp_options_command *cmd = o->cmd;
    struct option *lo = calloc(cmd->n_rows + 1, sizeof *lo);
    char *shorts = calloc(cmd->n_rows * 2 + 2, 1);
    int rc = 0;
    if (!lo || !shorts) {
        fprintf(stderr, "dmarcpipe %s: out of memory\n", o->help->name);
        rc = -1;
        goto out;
    }
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < cmd->n_rows; i++) {
        const dp_options_row *r = &cmd->rows[i];
        if (!r->name || (r->flags & DP_OPTIONS_POSITIONAL)) continue;
        if (r->short_name) {
            shorts[ns++] = r->short_name;
            if (r->arg) shorts[ns++] = ':';
        }
        if (r->flags & DP_OPTIONS_NOLONG) continue;
        lo[nl].name = r->name;
        lo[nl].has_arg = r->arg ? required_argument : no_argument;
        lo[nl].val = r->short_name ? r->short_name : (int)(256 + i);
        nl++;
    }
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        long i = row_of_val(cmd, c);
        if (i < 0) {
            dp_options_help(o->help, stderr);
            rc = -1;
            goto out;
        }
        const dp_options_row *r = &cmd->rows[i];
        if (r->flags & DP_OPTIONS_HELP) {
            dp_options_help(o->help, stdout);
            rc = 1;
            goto out;
        }
        char where[128];
        if (r->flags & DP_OPTIONS_NOLONG) snprintf(where, sizeof where, "-%c", r->short_name);
        else snprintf(where, sizeof where, "--%s", r->name);
        if (dp_options_set(o, (size_t)i, DP_OPTIONS_FLAG, where, r->arg ? optarg : "true") != 0) {
            fprintf(stderr, "dmarcpipe %s: out of memory\n", o->help->name);
            rc = -1;
            goto out;
        }
        if (r->arg) hide_secret_arg(r, optarg);
    }
    long pos = -1;
    for (size_t i = 0; i < cmd->n_rows; i++)
        if (cmd->rows[i].name && (cmd->rows[i].flags & DP_OPTIONS_POSITIONAL)) pos = (long)i;
    for (int k = optind; k < argc; k++) {
        if (pos >= 0) {
            if (dp_options_set(o, (size_t)pos, DP_OPTIONS_FLAG, "arguments", argv[k]) != 0) rc = -1;
            else hide_secret_arg(&cmd->rows[pos], argv[k]);
            continue;
        }
        char **a = realloc(o->args, (o->n_args + 1) * sizeof *a);
        if (!a) {
            rc = -1;
            break;
        }
        o->args = a;
        o->args[o->n_args++] = argv[k];
    }
    if (rc < 0) fprintf(stderr, "dmarcpipe %s: out of memory\n", o->help->name);
out:
    free(lo);
    free(shorts);
    return rc;
}

/* ---- the environment ------------------------------------------------------- */

/* Whether any command's table has this variable. */
static int known_env(const char *name, size_t len) {
    for (size_t k = 0; k < sizeof SPECIAL_ENV / sizeof *SPECIAL_ENV; k++)
        if (strlen(SPECIAL_ENV[k]) == len && strncmp(SPECIAL_ENV[k], name, len) == 0) return 1;
    if (strncmp(name, KAFKA_ENV_PREFIX, strlen(KAFKA_ENV_PREFIX)) == 0) return 1;
    size_t n;
    const dp_options_command *const *all = dp_cli_commands(&n);
    for (size_t c = 0; c < n; c++)
        for (size_t i = 0; i < all[c]->n_rows; i++) {
            char env[128];
            if (dp_options_env_name(&all[c]->rows[i], env, sizeof env) && strlen(env) == len &&
                strncmp(env, name, len) == 0)
                return 1;
        }
    return 0;
}

static int collect_env(dp_options *o) {
    const dp_options_command *cmd = o->cmd;
    for (size_t i = 0; i < cmd->n_rows; i++) {
        const dp_options_row *r = &cmd->rows[i];
        char env[128];
        if (!dp_options_env_name(r, env, sizeof env)) continue;
        const char *v = getenv(env);
        if (!v || !*v) continue; /* empty: unset, as a compose file leaves an absent value */
        if (!r->arg && !(r->flags & DP_OPTIONS_POSITIONAL)) {
            const char *b = dp_options_bool(v);
            if (!b) {
                fprintf(stderr, "dmarcpipe %s: %s: --%s is a switch: true or false, got '%s'\n", o->help->name, env,
                        r->name, (r->flags & DP_OPTIONS_SECRET) ? "********" : v);
                return -1;
            }
            v = b;
        }
        if (!(r->flags & (DP_OPTIONS_REPEAT | DP_OPTIONS_POSITIONAL))) {
            if (dp_options_set(o, i, DP_OPTIONS_ENV, env, v) != 0) goto nomem;
            continue;
        }
        /* a list: words separated by spaces or newlines */
        size_t words = 0;
        for (const char *p = v; *p;) {
            p += strspn(p, " \t\r\n");
            size_t len = strcspn(p, " \t\r\n");
            if (!len) break;
            char *w = strndup(p, len);
            if (!w) goto nomem;
            int rc = dp_options_set(o, i, DP_OPTIONS_ENV, env, w);
            free(w);
            if (rc != 0) goto nomem;
            words++;
            p += len;
        }
        (void)words;
    }
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0) continue;
        size_t len = strcspn(*e, "=");
        if (!known_env(*e, len))
            fprintf(stderr, "dmarcpipe %s: warning: %.*s is no option's variable (see dmarcpipe(1)): ignored\n",
                    o->help->name, (int)len, *e);
    }
    return 0;
nomem:
    fprintf(stderr, "dmarcpipe %s: out of memory\n", o->help->name);
    return -1;
}

int dp_options_collect(dp_options *o, int argc, char **argv, int *exit_code) {
    int rc = collect_argv(o, argc, argv);
    if (rc != 0) {
        *exit_code = rc > 0 ? 0 : 2;
        return -1;
    }
    if (collect_env(o) != 0) {
        *exit_code = 2;
        return -1;
    }
    long cf = o->cmd->config_file ? dp_options_find(o->cmd, "config") : -1;
    if (cf >= 0 && o->slots[cf].n) {
        char msg[1024];
        if (dp_config_file_load(o, o->slots[cf].v[o->slots[cf].n - 1], msg, sizeof msg) != 0) {
            fprintf(stderr, "dmarcpipe %s: %s\n", o->help->name, msg);
            *exit_code = 2;
            return -1;
        }
    }
    return 0;
}

int dp_options_apply(dp_options *o, void *ctx) {
    const dp_options_command *cmd = o->cmd;
    for (size_t i = 0; i < cmd->n_rows; i++) {
        const dp_options_row *r = &cmd->rows[i];
        dp_options_slot *s = &o->slots[i];
        if (!r->name || !s->layer) continue;
        for (size_t k = 0; k < s->n; k++) {
            char why[512];
            why[0] = '\0';
            if (cmd->apply(ctx, r, s->v[k], why, sizeof why) == 0) continue;
            if (s->layer == DP_OPTIONS_FLAG)
                fprintf(stderr, "dmarcpipe %s: %s\n", o->help->name, why);
            else if (s->layer == DP_OPTIONS_ENV)
                fprintf(stderr, "dmarcpipe %s: %s: %s\n", o->help->name, s->where, why);
            else
                fprintf(stderr, "dmarcpipe %s: %s: key '%s': %s\n", o->help->name, s->where, r->name, why);
            return 2;
        }
    }
    return 0;
}

/* ---- --help ---------------------------------------------------------------- */

void dp_options_label(const dp_options_row *r, char *buf, size_t cap) {
    const char *arg = r->arg ? r->arg : "";
    const char *sep = r->arg ? " " : "";
    if (r->flags & DP_OPTIONS_POSITIONAL)
        snprintf(buf, cap, "%s", arg);
    else if (r->short_name && (r->flags & DP_OPTIONS_NOLONG))
        snprintf(buf, cap, "-%c%s%s", r->short_name, sep, arg);
    else if (r->short_name)
        snprintf(buf, cap, "-%c, --%s%s%s", r->short_name, r->name, sep, arg);
    else
        snprintf(buf, cap, "--%s%s%s", r->name, sep, arg);
}

void dp_options_help(const dp_options_command *cmd, FILE *f) {
    fprintf(f, "usage: dmarcpipe %s %s\n\n%s", cmd->name, cmd->synopsis, cmd->intro ? cmd->intro : "");
    for (size_t i = 0; i < cmd->n_rows; i++) {
        const dp_options_row *r = &cmd->rows[i];
        if (!r->name) {
            fputs(r->help, f);
            continue;
        }
        if (r->flags & DP_OPTIONS_POSITIONAL) continue; /* the intro describes them */
        char label[128];
        dp_options_label(r, label, sizeof label);
        int n = fprintf(f, "  %s", label);
        /* past the column, two spaces and the text on the same line */
        fprintf(f, "%*s", n < cmd->width ? cmd->width - n : 2, "");
        for (const char *p = r->help; *p;) {
            size_t len = strcspn(p, "\n");
            fprintf(f, "%.*s\n", (int)len, p);
            p += len;
            if (*p == '\n' && *++p) fprintf(f, "%*s", cmd->width, "");
        }
    }
    if (cmd->outro) fputs(cmd->outro, f);
}
