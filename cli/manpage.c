/* manpage — dmarcpipe(1), written from the option tables.
 *
 * `dmarcpipe help --man` prints the page; the build runs it to make
 * dmarcpipe.1, so the page's options are the tables' rows and cannot
 * drift from --help.  The prose around them (configuration, environment,
 * exit status) is here, next to the code that writes it.
 */
#include "manpage.h"

#include <string.h>

#include "cli.h"
#include "dp_config.h"

/* Text for roff: backslashes and dashes escaped, and a line that would
 * start with a control character guarded.  nl: what a newline becomes. */
static void put_text(FILE *f, const char *s, const char *nl) {
    int bol = 1;
    for (; *s; s++) {
        if (bol && (*s == '.' || *s == '\'')) fputs("\\&", f);
        bol = 0;
        if (*s == '\\') fputs("\\e", f);
        else if (*s == '-') fputs("\\-", f);
        else if (*s == '\n') {
            fputs(nl, f);
            bol = strcmp(nl, "\n") == 0;
        } else fputc(*s, f);
    }
}

/* A paragraph of help text: its lines joined, surrounding blank lines dropped. */
static void put_para(FILE *f, const char *s) {
    while (*s == '\n') s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == '\n') n--;
    char buf[2048];
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    fputs(".PP\n", f);
    put_text(f, buf, " ");
    fputc('\n', f);
}

static void put_row(FILE *f, const dp_options_row *r) {
    char label[128];
    dp_options_label(r, label, sizeof label);
    fputs(".TP\n.B ", f);
    put_text(f, label, " ");
    fputc('\n', f);
    put_text(f, r->help, " ");
    char env[128];
    if (dp_options_env_name(r, env, sizeof env) || !(r->flags & (DP_OPTIONS_NOFILE | DP_OPTIONS_HELP))) {
        fputs(" (", f);
        if (!(r->flags & (DP_OPTIONS_NOFILE | DP_OPTIONS_HELP))) fprintf(f, "key \\fB%s\\fR", r->name);
        if (dp_options_env_name(r, env, sizeof env))
            fprintf(f, "%s\\fB%s\\fR", (r->flags & DP_OPTIONS_NOFILE) ? "" : ", ", env);
        fputs(")", f);
    }
    fputc('\n', f);
}

static void put_command(FILE *f, const dp_options_command *c) {
    fprintf(f, ".SS \"dmarcpipe %s ", c->name);
    put_text(f, c->synopsis, " ");
    fputs("\"\n", f);
    put_text(f, c->summary, " ");
    fputs(".\n.PP\n.nf\n", f);
    put_text(f, c->intro ? c->intro : "", "\n");
    fputs(".fi\n", f);
    for (size_t i = 0; i < c->n_rows; i++) {
        const dp_options_row *r = &c->rows[i];
        if (!r->name) put_para(f, r->help);
        else if (!(r->flags & DP_OPTIONS_POSITIONAL)) put_row(f, r);
    }
    if (c->outro) put_para(f, c->outro);
}

static const char CONFIGURATION[] =
    ".SH CONFIGURATION\n"
    "Every option of \\fBrun\\fR can be set in three more places.  From the lowest\n"
    "precedence to the highest: the built\\-in defaults, the configuration file,\n"
    "the \\fBDMARCPIPE_*\\fR environment variables, the command line.  For a\n"
    "repeatable option (\\fB\\-\\-sink\\fR, \\fB\\-X\\fR, the SOURCEs) the highest layer\n"
    "that sets it replaces the lower ones: lists are not merged.\n"
    ".PP\n"
    "The configuration file is named by \\fB\\-\\-config\\fR \\fIFILE\\fR or\n"
    "\\fBDMARCPIPE_CONFIG\\fR.  It is YAML: one mapping whose keys are the long option\n"
    "names; a switch takes \\fBtrue\\fR or \\fBfalse\\fR; a repeatable option a value or\n"
    "a list; the SOURCEs are the list \\fBsources\\fR; librdkafka properties (\\fB\\-X\\fR)\n"
    "are the mapping \\fBkafka\\fR.  Values are taken as text and checked as the\n"
    "option checks them; paths are taken from the working directory, as on the\n"
    "command line.  An unknown key, a value of the wrong shape or a bad value\n"
    "is an error naming the file, the line and the key (exit status 2).\n"
    ".PP\n"
    ".nf\n"
    ".RS\n"
    "workers: 4\n"
    "window: 1h\n"
    "follow: true\n"
    "state: /var/lib/dmarcpipe/state\n"
    "done: /var/spool/dmarc/done\n"
    "sink:\n"
    "  \\- file:/var/lib/dmarcpipe/rollups.ndjson\n"
    "  \\- kafka://k1:9092,k2:9092/dmarc.rollups\n"
    "kafka:\n"
    "  security.protocol: SASL_SSL\n"
    "  sasl.mechanism: SCRAM\\-SHA\\-512\n"
    "sources: [maildir:/var/mail/dmarc]\n"
    ".RE\n"
    ".fi\n"
    ".PP\n"
    "Each option \\fB\\-\\-NAME\\fR has the variable \\fBDMARCPIPE_\\fR\\fINAME\\fR, upper case,\n"
    "with \\- written _ (\\fBDMARCPIPE_FLUSH_INTERVAL\\fR).  A repeatable option's\n"
    "variable holds its values separated by spaces or newlines\n"
    "(\\fBDMARCPIPE_SINK\\fR, \\fBDMARCPIPE_SOURCES\\fR); a switch's takes true, false, yes,\n"
    "no, on, off, 1 or 0; an empty variable counts as unset.  The names\n"
    "\\fBDMARCPIPE_KAFKA_*\\fR are librdkafka properties, so \\fB\\-\\-kafka\\-config\\fR and\n"
    "\\fB\\-X\\fR have no variable.  A \\fBDMARCPIPE_*\\fR variable that is no option's is\n"
    "named in a warning and ignored.  The variables of \\fBrun\\fR's options also\n"
    "set the options of the same name of the other commands.\n"
    ".PP\n"
    "\\fBdmarcpipe config\\fR prints the effective configuration, each key with where\n"
    "its value came from, secrets masked, as a file \\fB\\-\\-config\\fR takes back.\n";

static const char AFTER[] =
    ".SH ENVIRONMENT\n"
    ".TP\n.B DMARCPIPE_CONFIG\nthe configuration file, as \\fB\\-\\-config\\fR.\n"
    ".TP\n.BI DMARCPIPE_ NAME\nthe option \\fB\\-\\-\\fR\\fIname\\fR (see CONFIGURATION and each option above).\n"
    ".TP\n.BI DMARCPIPE_KAFKA_ NAME\na librdkafka property, \\fBDMARCPIPE_KAFKA_SASL_PASSWORD\\fR being\n"
    "\\fBsasl.password\\fR; applied after \\fB\\-\\-kafka\\-config\\fR and before \\fB\\-X\\fR.\n"
    "Values are never printed.\n"
    ".TP\n.B DMARCPIPE_IMAP_PASSWORD\nthe password of an \\fBimap://\\fR SOURCE (or \\fB\\-\\-imap\\-password\\-file\\fR).\n"
    ".TP\n.B AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE\n"
    "the credentials of an \\fBs3://\\fR SOURCE, else \\fI~/.aws/credentials\\fR.\n"
    ".TP\n.B TMPDIR\nwhere records of a report wait, past 1 MiB, in an unlinked file.\n"
    ".SH EXIT STATUS\n"
    ".TP\n.B 0\nsuccess: every input accepted, or a follower (or a Kafka run) stopped by SIGTERM or SIGINT;\n"
    "\\fBconfig\\fR printed the configuration; \\fB\\-\\-help\\fR, \\fB\\-\\-version\\fR.\n"
    ".TP\n.B 1\n\\fBrun\\fR (a batch run) and \\fBparse\\fR: some input was rejected (it is in the\n"
    "quarantine with its reason); \\fBreport\\fR: some input lines were not feed lines\n"
    "(skipped and named; the report is still written).\n"
    ".TP\n.B 2\nusage or configuration: an unknown command or option, a bad value (flag,\n"
    "variable or configuration file), no SOURCE or INPUT; \\fBrun\\fR: a sink, the\n"
    "reports feed or a SOURCE that cannot be opened, a second Kafka sink, a\n"
    "follower's SOURCE that does not exist, a state whose sinks cannot be resumed,\n"
    "a \\fB\\-\\-metrics\\-addr\\fR that cannot be listened on;\n"
    "\\fBparse\\fR: a SOURCE that cannot be opened; \\fBreport\\fR: a pipe without \\fB\\-\\-to\\fR, a\n"
    "bad Kafka configuration.\n"
    ".TP\n.B 3\nthe work failed: \\fBrun\\fR: the state cannot be opened (or is in use), its\n"
    "folders cannot be created, the recovery from the ledger, an epoch or a cycle\n"
    "failed, or (a batch run) an input counted could not be acknowledged (moved to\n"
    "\\fB\\-\\-done\\fR) or a rejected input's rejection could not be kept; \\fBparse\\fR:\n"
    "writing the output failed, a rejection could not be kept, a SOURCE could not\n"
    "be listed; \\fBreport\\fR: an INPUT or the output could not be read or written, a\n"
    "folder without feeds.\n"
    ".SH FILES\n"
    ".TP\n.I ./dmarcpipe\\-out/rollups.ndjson, ./dmarcpipe\\-out/reports.ndjson\n"
    "the embedded default sink of \\fBrun\\fR (no \\fB\\-\\-sink\\fR): rollups, and the report inventory.\n"
    ".TP\n.I ./dmarcpipe\\-out/quarantine/\nrejected inputs, each beside \\fINAME\\fR.reason (default \\fB\\-\\-quarantine\\fR).\n"
    ".TP\n.I ./dmarcpipe\\-out/state/\nthe state (LMDB): counted reports and inputs, locked by one process\n"
    "(default \\fB\\-\\-state\\fR with the embedded default, Kafka, \\fB\\-\\-follow\\fR or a mail SOURCE).\n"
    ".SH EXAMPLES\n"
    ".nf\n"
    "dmarcpipe run reports/\n"
    "dmarcpipe run \\-\\-sink file:out/rollups.csv \\-\\-window 1h maildir:/var/mail/dmarc\n"
    "dmarcpipe run \\-\\-follow \\-\\-done /var/spool/dmarc/done /var/spool/dmarc/in\n"
    "DMARCPIPE_WORKERS=4 dmarcpipe run \\-\\-config /etc/dmarcpipe/run.yaml\n"
    "dmarcpipe config \\-\\-config /etc/dmarcpipe/run.yaml \\-\\-workers 8\n"
    "dmarcpipe report \\-\\-domain example.com \\-o report.html dmarcpipe\\-out\n"
    "dmarcpipe parse \\-\\-summary reports/\n"
    ".fi\n"
    ".SH SEE ALSO\n"
    ".BR kcat (1),\n"
    ".BR systemd.exec (5);\n"
    "librdkafka's CONFIGURATION.md for the \\fB\\-X\\fR properties; the README.md of the\n"
    "source tree for the pipeline, the sinks' formats and the warehouse schemas.\n";

void dp_manpage_write(FILE *f) {
    size_t n;
    const dp_options_command *const *cmds = dp_cli_commands(&n);
    fprintf(f, ".TH DMARCPIPE 1 \"\" \"dmarcpipe %s\" \"User Commands\"\n", DP_VERSION);
    fputs(".SH NAME\ndmarcpipe \\- DMARC aggregate reports in, rollups a warehouse can sum out\n"
          ".SH SYNOPSIS\n",
          f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, ".B dmarcpipe %s\n", cmds[i]->name);
        put_text(f, cmds[i]->synopsis, " ");
        fputs("\n.br\n", f);
    }
    fputs(".B dmarcpipe\n[\\-\\-version] [\\-\\-help]\n"
          ".SH DESCRIPTION\n"
          "dmarcpipe reads DMARC aggregate reports in every form receivers send them\n"
          "(XML, gzip, zip, zstd, nested in each other, e\\-mail and mbox; files, Maildir,\n"
          "IMAP, S3, a Kafka inbox), counts each report once, and rolls its records up\n"
          "per UTC window, source IP, domain and outcome into NDJSON or CSV files or\n"
          "Kafka, exactly once.  \\fBdmarcpipe report\\fR says per domain who sends as it\n"
          "and whether it is ready for p=reject.\n"
          ".SH COMMANDS\n",
          f);
    for (size_t i = 0; i < n; i++) put_command(f, cmds[i]);
    fputs(CONFIGURATION, f);
    fputs(AFTER, f);
}
