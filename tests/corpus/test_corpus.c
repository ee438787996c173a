/* test_corpus — the real-world corpus through the ingest library (Check).
 *
 * For every row of tests/data/corpus/MANIFEST.tsv:
 *   expect=accept  ingest must accept the file and count exactly the
 *                  manifest's reports, records and sum of counts;
 *   expect=reject  ingest must reject it with a reason, unless it is one of
 *                  the SALVAGED files below, where a documented rule (see the
 *                  README) recovers the report and the counts must be exact;
 *                  failure (ARF) and SMTP TLS reports must be rejected as
 *                  not aggregate reports (DP_ERR_NOT_AGGREGATE), naming which.
 * Each row is its own Check test (a loop test), so a failure names the file.
 *
 * Usage: test_corpus CORPUS_DIR
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

typedef struct row {
    char *path, *kind, *report_type, *expect;
    uint64_t reports, records, messages;
} row;

/* Salvaged by documented rules; the counts were checked against
 * tests/corpus/independent.py with the same rules (corpus_parity). */
static const struct { const char *path; uint64_t reports, records, messages; const char *rule; } SALVAGED[] = {
    {"domainaware__parsedmarc/samples/aggregate/ikea.com!example.de!1538690400!1538776800.xml", 1, 1, 1,
     "unclosed <xs:schema> wrapper"},
    {"patrickkerrigan__dmarc-parser/src/test/resources/dmarc-1-space.xml", 1, 3, 10,
     "whitespace before the XML declaration"},
};

/* The loop tests need the rows; a test binary's own table is the one place
 * a file-scope variable is the plain solution. */
static row *ROWS;
static size_t N_ROWS;
static const char *CORPUS;

typedef struct counts {
    uint64_t records, messages, done, failed;
    dp_error first;
} counts;

static int on_record(void *ctx, const dp_report *rep, const dp_record *rec) {
    (void)rep;
    counts *c = ctx;
    c->records++;
    c->messages += rec->count;
    return 0;
}

static int on_done(void *ctx, const dp_report *rep) {
    (void)rep;
    ((counts *)ctx)->done++;
    return 0;
}

static void on_failed(void *ctx, const dp_report *rep, const dp_error *err) {
    (void)rep;
    counts *c = ctx;
    if (c->failed++ == 0) c->first = *err;
}

static char *field(char **cursor) {
    char *start = *cursor, *tab = strchr(start, '\t');
    if (tab) {
        *tab = '\0';
        *cursor = tab + 1;
    } else {
        start[strcspn(start, "\r\n")] = '\0';
        *cursor = start + strlen(start);
    }
    return start;
}

static int load_manifest(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[16384];
    int header = 1;
    /* columns: path repo commit original_path bytes sha256 kind license
     * report_type reporter_org_name notes placeholder_flags expect reports
     * records_total messages_total reject_reason */
    while (fgets(line, sizeof line, f)) {
        if (header) { header = 0; continue; }
        char *cur = line, *col[17];
        for (int i = 0; i < 17; i++) col[i] = field(&cur);
        ROWS = realloc(ROWS, (N_ROWS + 1) * sizeof *ROWS);
        row *r = &ROWS[N_ROWS++];
        r->path = strdup(col[0]);
        r->kind = strdup(col[6]);
        r->report_type = strdup(col[8]);
        r->expect = strdup(col[12]);
        r->reports = strtoull(col[13], NULL, 10);
        r->records = strtoull(col[14], NULL, 10);
        r->messages = strtoull(col[15], NULL, 10);
    }
    fclose(f);
    return N_ROWS ? 0 : -1;
}

START_TEST(corpus_row) {
    const row *r = &ROWS[_i];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", CORPUS, r->path);
    counts c;
    memset(&c, 0, sizeof c);
    dp_report_handler h = {.record = on_record, .report_done = on_done, .report_failed = on_failed};
    dp_ingest_result res;
    dp_error err;
    int rc = dp_ingest_file(NULL, path, &h, &c, &res, &err);

    for (size_t i = 0; i < sizeof SALVAGED / sizeof SALVAGED[0]; i++) {
        if (strcmp(SALVAGED[i].path, r->path) != 0) continue;
        ck_assert_msg(rc == 0, "%s: salvage rule '%s' did not apply: %s", r->path, SALVAGED[i].rule, err.msg);
        ck_assert_uint_eq(res.reports, SALVAGED[i].reports);
        ck_assert_uint_eq(res.records, SALVAGED[i].records);
        ck_assert_uint_eq(res.messages, SALVAGED[i].messages);
        return;
    }
    if (strcmp(r->expect, "accept") == 0) {
        ck_assert_msg(rc == 0, "%s: rejected: %s: %s", r->path, err.where, err.msg);
        ck_assert_uint_eq(res.rejected, 0);
        ck_assert_uint_eq(res.reports, r->reports);
        ck_assert_uint_eq(res.records, r->records);
        ck_assert_uint_eq(res.messages, r->messages);
        /* what the handler saw is what the result says: nothing half counted */
        ck_assert_uint_eq(c.records, r->records);
        ck_assert_uint_eq(c.messages, r->messages);
        ck_assert_uint_eq(c.done, r->reports);
    } else {
        ck_assert_msg(rc != 0, "%s: expected a rejection, got %llu reports", r->path,
                      (unsigned long long)res.reports);
        ck_assert_uint_ge(c.failed, 1);
        ck_assert_msg(err.msg[0] != '\0', "%s: rejected without a reason", r->path);
        /* Failure and TLS reports are classified, not called broken. A
         * plain-text failure report without ARF parts can only be told to
         * hold no aggregate report. */
        if (strncmp(r->report_type, "failure", 7) == 0 || strcmp(r->report_type, "smtp_tls") == 0)
            ck_assert_int_eq(err.kind, DP_ERR_NOT_AGGREGATE);
        if (strcmp(r->report_type, "failure") == 0)
            ck_assert_msg(strstr(err.msg, "ARF"), "%s: %s", r->path, err.msg);
        if (strcmp(r->report_type, "smtp_tls") == 0)
            ck_assert_msg(strstr(err.msg, "SMTP TLS report"), "%s: %s", r->path, err.msg);
    }
}
END_TEST

int main(int argc, char **argv) {
    if (argc != 2 || load_manifest(argv[1]) != 0) {
        fprintf(stderr, "usage: test_corpus CORPUS_DIR (with MANIFEST.tsv)\n");
        return 2;
    }
    CORPUS = argv[1];
    dp_ingest_global_init();
    Suite *s = suite_create("corpus");
    TCase *tc = tcase_create("manifest");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, corpus_row, 0, (int)N_ROWS);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (size_t i = 0; i < N_ROWS; i++) {
        free(ROWS[i].path); free(ROWS[i].kind); free(ROWS[i].report_type); free(ROWS[i].expect);
    }
    free(ROWS);
    return failed ? 1 : 0;
}
