/* test_unwrap — finding the report in whatever container it came in:
 * raw XML in its many encodings, gzip (multi-member, trailing junk, nested),
 * zip (several members, macOS noise), zstd, and the failures: truncated
 * containers, empty input, the literal body "unused".  The format is always
 * sniffed from the bytes, never from the name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_buf.h"
#include "test_util.h"

/* Asserts the one record of TU_SIMPLE came out intact. */
static void assert_simple(const tu_collect *c) {
    tu_assert_ok(c, 1, 1);
    ck_assert_str_eq(c->recs[0].source_ip, "192.0.2.1");
    ck_assert_uint_eq(c->recs[0].count, 3);
    tu_assert_str(c->reps[0].org_name, "Example Org");
    tu_assert_str(c->reps[0].report_id, "r1");
    ck_assert_uint_eq(c->res.messages, 3);
}

static char *crlf(const char *s) {
    dp_buf b = DP_BUF_INIT;
    for (; *s; s++) {
        if (*s == '\n') dp_buf_putc(&b, '\r');
        dp_buf_putc(&b, *s);
    }
    ck_assert(!b.failed);
    return tu_keep(b.data);
}

/* ---- raw XML ----------------------------------------------------------------- */

START_TEST(raw_xml_with_declaration) {
    assert_simple(tu_ingest_str(TU_SIMPLE));
}
END_TEST

START_TEST(raw_xml_without_declaration) {
    const char *doc = strstr(TU_SIMPLE, "<feedback>");
    ck_assert_ptr_nonnull(doc);
    assert_simple(tu_ingest_str(doc));
}
END_TEST

START_TEST(raw_xml_utf8_bom) {
    tu_collect *c = tu_ingest_str("\xEF\xBB\xBF" TU_SIMPLE);
    assert_simple(c);
}
END_TEST

START_TEST(raw_xml_utf8_bom_without_declaration) {
    tu_collect *c = tu_ingest_str(tu_printf("\xEF\xBB\xBF%s", strstr(TU_SIMPLE, "<feedback>")));
    assert_simple(c);
}
END_TEST

START_TEST(raw_xml_crlf_line_ends) {
    const char *doc = crlf(TU_HEAD_ID("Example\nOrg", "r1") TU_REC("192.0.2.1", "3") TU_TAIL);
    ck_assert_ptr_nonnull(strstr(doc, "\r\n"));
    tu_collect *c = tu_ingest_str(doc);
    tu_assert_ok(c, 1, 1);
    /* XML end-of-line handling turns CRLF into LF, even inside text */
    tu_assert_str(c->reps[0].org_name, "Example\nOrg");
    ck_assert_str_eq(c->recs[0].source_ip, "192.0.2.1");
}
END_TEST

static const char *utf16_doc(void) {
    return tu_printf("<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n%s", strstr(TU_SIMPLE, "<feedback>"));
}

START_TEST(raw_xml_utf16le_bom) {
    tu_bytes b = tu_utf16(utf16_doc(), 0);
    ck_assert_uint_eq(b.data[0], 0xff);
    assert_simple(tu_ingest_mem(NULL, "le.xml", b.data, b.len));
}
END_TEST

START_TEST(raw_xml_utf16be_bom) {
    tu_bytes b = tu_utf16(utf16_doc(), 1);
    ck_assert_uint_eq(b.data[0], 0xfe);
    assert_simple(tu_ingest_mem(NULL, "be.xml", b.data, b.len));
}
END_TEST

START_TEST(raw_xml_utf16le_without_bom) {
    /* sniffed by "<\0"; expat detects UTF-16 from the first bytes */
    tu_bytes b = tu_utf16(utf16_doc(), 0);
    assert_simple(tu_ingest_mem(NULL, "le.xml", b.data + 2, b.len - 2));
}
END_TEST

START_TEST(raw_xml_utf16_bom_contradicting_utf8_declaration) {
    /* salvage rule: the byte-order mark wins over a wrong declaration */
    tu_bytes b = tu_utf16(TU_SIMPLE, 0);
    ck_assert_ptr_nonnull(strstr(TU_SIMPLE, "encoding=\"UTF-8\""));
    assert_simple(tu_ingest_mem(NULL, "le.xml", b.data, b.len));
}
END_TEST

START_TEST(raw_xml_iso_8859_1_becomes_utf8) {
    const char *doc = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<feedback>"
                      "<report_metadata><org_name>M\xFCller GmbH</org_name><report_id>r1</report_id>"
                      "<date_range><begin>1700000000</begin><end>1700000001</end></date_range></report_metadata>"
                      "<policy_published><domain>example.com</domain><p>none</p></policy_published>"
                      TU_REC("192.0.2.1", "1") TU_TAIL;
    tu_collect *c = tu_ingest_str(doc);
    tu_assert_ok(c, 1, 1);
    tu_assert_str(c->reps[0].org_name, "M\xC3\xBCller GmbH");
}
END_TEST

START_TEST(raw_xml_windows_1252_becomes_utf8) {
    /* 0x80 is the euro sign and 0x93/0x94 curly quotes in windows-1252 only */
    const char *doc = "<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n<feedback>"
                      "<report_metadata><org_name>\x93Gr\xFC\xDF\x94 \x80</org_name><report_id>r1</report_id>"
                      "<date_range><begin>1700000000</begin><end>1700000001</end></date_range></report_metadata>"
                      "<policy_published><domain>example.com</domain><p>none</p></policy_published>"
                      TU_REC("192.0.2.1", "1") TU_TAIL;
    tu_collect *c = tu_ingest_str(doc);
    tu_assert_ok(c, 1, 1);
    tu_assert_str(c->reps[0].org_name, "\xE2\x80\x9CGr\xC3\xBC\xC3\x9F\xE2\x80\x9D \xE2\x82\xAC");
}
END_TEST

START_TEST(raw_xml_utf8_declared_as_utf8_alias) {
    /* salvage rule: "utf8" is UTF-8 under a name expat rejects */
    tu_collect *c = tu_ingest_str(tu_printf("<?xml version=\"1.0\" encoding=\"utf8\"?>\n%s",
                                            strstr(TU_SIMPLE, "<feedback>")));
    assert_simple(c);
}
END_TEST

/* ---- gzip ------------------------------------------------------------------------ */

START_TEST(gzip_single_member) {
    tu_bytes gz = tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE));
    ck_assert_uint_eq(gz.data[0], 0x1f);
    assert_simple(tu_ingest_mem(NULL, "r.xml.gz", gz.data, gz.len));
}
END_TEST

START_TEST(gzip_multi_member) {
    /* one document split across two concatenated gzip members */
    const char *doc = TU_TWO;
    size_t half = strlen(doc) / 2;
    tu_bytes gz = tu_cat(tu_gzip(doc, half), tu_gzip(doc + half, strlen(doc) - half));
    tu_collect *c = tu_ingest_mem(NULL, "r.xml.gz", gz.data, gz.len);
    tu_assert_ok(c, 1, 2);
    ck_assert_str_eq(c->recs[1].source_ip, "192.0.2.2");
    ck_assert_uint_eq(c->res.messages, 7);
}
END_TEST

START_TEST(gzip_trailing_crlf) {
    /* a mail gateway (Mimecast) appends CRLF after the gzip stream */
    tu_bytes gz = tu_cat(tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE)), tu_str("\r\n"));
    assert_simple(tu_ingest_mem(NULL, "r.xml.gz", gz.data, gz.len));
}
END_TEST

START_TEST(gzip_in_gzip) {
    tu_bytes inner = tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE));
    tu_bytes outer = tu_gzip(inner.data, inner.len);
    assert_simple(tu_ingest_mem(NULL, "r.xml.gz.gz", outer.data, outer.len));
}
END_TEST

START_TEST(gzip_truncated_rejected) {
    tu_bytes gz = tu_gzip(TU_TWO, strlen(TU_TWO));
    tu_collect *c = tu_ingest_mem(NULL, "r.xml.gz", gz.data, gz.len / 2);
    tu_assert_rejected(c, DP_ERR_UNWRAP);
    ck_assert_str_eq(c->fails[0].err.where, "r.xml.gz");
}
END_TEST

/* Regression: when libarchive's gzip filter refuses a header, its raw
 * format passes the bytes through unchanged; they used to sniff as gzip
 * again until max_layers, so a corrupt header was reported as DP_ERR_LIMIT
 * "containers nested too deeply" instead of a corrupt gzip. */
START_TEST(gzip_truncated_header_rejected) {
    tu_bytes gz = tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE));
    tu_collect *c = tu_ingest_mem(NULL, "r.xml.gz", gz.data, 6);
    tu_assert_rejected(c, DP_ERR_UNWRAP);
    static const char junk[] = "\x1f\x8bHELLO, THIS IS NOT GZIP AT ALL";
    c = tu_ingest_mem(NULL, "junk.gz", junk, sizeof junk - 1);
    tu_assert_rejected(c, DP_ERR_UNWRAP);
}
END_TEST

START_TEST(gzip_missing_trailer_rejected) {
    /* the whole deflate stream but not the CRC32/ISIZE trailer: the data
     * cannot be verified, and the stream is truncated all the same */
    tu_bytes gz = tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE));
    tu_collect *c = tu_ingest_mem(NULL, "r.xml.gz", gz.data, gz.len - 8);
    tu_assert_rejected(c, DP_ERR_UNWRAP);
}
END_TEST

START_TEST(gzip_corrupt_deflate_rejected) {
    tu_bytes gz = tu_gzip(TU_TWO, strlen(TU_TWO));
    /* garbage over the deflate data, header and trailer intact */
    memset(gz.data + 12, 0xff, gz.len - 12 - 8 - 4);
    tu_collect *c = tu_ingest_mem(NULL, "r.xml.gz", gz.data, gz.len);
    tu_assert_rejected(c, DP_ERR_UNWRAP);
}
END_TEST

START_TEST(containers_nested_too_deep_zip) {
    dp_ingest_limits lim;
    dp_ingest_limits_default(&lim);
    lim.max_layers = 3;
    tu_bytes b = tu_str(TU_SIMPLE);
    for (int i = 0; i < 3; i++) {
        tu_entry e[] = {{"m", b.data, b.len}};
        b = tu_zip(e, 1);
    }
    assert_simple(tu_ingest_mem(&lim, "3.zip", b.data, b.len)); /* 3 layers: allowed */
    tu_entry e[] = {{"m", b.data, b.len}};
    b = tu_zip(e, 1);
    tu_collect *c = tu_ingest_mem(&lim, "4.zip", b.data, b.len);
    tu_assert_rejected(c, DP_ERR_LIMIT);
    tu_assert_contains(c->err.msg, "nested");
}
END_TEST

/* Regression: libarchive stacks its gzip and zstd filters by itself (gzip
 * in gzip is decoded inside one ar_layer), so max_layers used to miss those
 * layers: 4 gzip layers passed max_layers 3, 10 passed the default of 6. */
START_TEST(containers_nested_too_deep_rejected) {
    dp_ingest_limits lim;
    dp_ingest_limits_default(&lim);
    lim.max_layers = 3;
    tu_bytes b = tu_str(TU_SIMPLE);
    for (int i = 0; i < 3; i++) b = tu_gzip(b.data, b.len);
    assert_simple(tu_ingest_mem(&lim, "3.gz", b.data, b.len)); /* 3 layers: allowed */
    b = tu_gzip(b.data, b.len);
    tu_assert_rejected(tu_ingest_mem(&lim, "4.gz", b.data, b.len), DP_ERR_LIMIT);
}
END_TEST

/* ---- zip ----------------------------------------------------------------------- */

START_TEST(zip_two_reports_both_counted) {
    const char *a = TU_HEAD_ID("Org A", "a-1") TU_REC("192.0.2.1", "3") TU_TAIL;
    const char *b = TU_HEAD_ID("Org B", "b-1") TU_REC("192.0.2.2", "4") TU_REC("192.0.2.3", "5") TU_TAIL;
    tu_entry e[] = {{"a.xml", a, strlen(a)}, {"b.xml", b, strlen(b)}};
    tu_bytes z = tu_zip(e, 2);
    ck_assert_int_eq(memcmp(z.data, "PK\3\4", 4), 0);
    tu_collect *c = tu_ingest_mem(NULL, "in.zip", z.data, z.len);
    tu_assert_ok(c, 2, 3);
    ck_assert_uint_eq(c->res.messages, 12);
    tu_assert_str(c->reps[0].report_id, "a-1");
    tu_assert_str(c->reps[0].part, "in.zip!a.xml");
    tu_assert_str(c->reps[1].report_id, "b-1");
    tu_assert_str(c->reps[1].part, "in.zip!b.xml");
    ck_assert_uint_eq(c->reps[1].records, 2);
    ck_assert_str_eq(c->events, "rDrrD");
}
END_TEST

START_TEST(zip_macos_resource_forks_skipped) {
    static const char fork[] = "\0\5\26\7\0\2\0\0Mac OS X        \0\2\0\0\0\11";
    tu_entry e[] = {
        {"__MACOSX/", "", 0},
        {"__MACOSX/._report.xml", fork, sizeof fork},
        {"report.xml", TU_SIMPLE, strlen(TU_SIMPLE)},
        {"._report.xml", fork, sizeof fork},
        {"sub/.DS_Store", fork, sizeof fork},
    };
    tu_bytes z = tu_zip(e, 5);
    tu_collect *c = tu_ingest_mem(NULL, "in.zip", z.data, z.len);
    assert_simple(c);
    ck_assert_uint_eq(c->res.rejected, 0);
}
END_TEST

START_TEST(zip_with_gzip_member) {
    tu_bytes gz = tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE));
    tu_entry e[] = {{"report.xml.gz", gz.data, gz.len}};
    tu_bytes z = tu_zip(e, 1);
    tu_collect *c = tu_ingest_mem(NULL, "in.zip", z.data, z.len);
    assert_simple(c);
    tu_assert_str(c->reps[0].part, "in.zip!report.xml.gz");
}
END_TEST

START_TEST(zip_in_gzip) {
    tu_entry e[] = {{"report.xml", TU_SIMPLE, strlen(TU_SIMPLE)}};
    tu_bytes z = tu_zip(e, 1);
    tu_bytes gz = tu_gzip(z.data, z.len);
    assert_simple(tu_ingest_mem(NULL, "in.zip.gz", gz.data, gz.len));
}
END_TEST

START_TEST(zip_truncated_rejected) {
    tu_entry e[] = {{"a.xml", TU_TWO, strlen(TU_TWO)}};
    tu_bytes z = tu_zip(e, 1);
    tu_collect *c = tu_ingest_mem(NULL, "in.zip", z.data, z.len / 2);
    tu_assert_rejected(c, DP_ERR_UNWRAP);
}
END_TEST

START_TEST(zip_truncated_after_first_member) {
    /* the first report is whole; the archive breaks inside the second */
    const char *b = TU_HEAD_ID("Org B", "b-1") TU_REC("192.0.2.2", "4") TU_TAIL;
    tu_entry e[] = {{"a.xml", TU_SIMPLE, strlen(TU_SIMPLE)}, {"b.xml", b, strlen(b)}};
    tu_bytes whole = tu_zip(e, 2);
    /* cut 40 bytes into the second member's local header */
    const unsigned char *p = whole.data + 30;
    const unsigned char *second = NULL;
    for (; p + 4 <= whole.data + whole.len; p++)
        if (memcmp(p, "PK\3\4", 4) == 0) { second = p; break; }
    ck_assert_ptr_nonnull(second);
    size_t at = (size_t)(second - whole.data) + 40;
    tu_collect *c = tu_ingest_mem(NULL, "in.zip", whole.data, at);
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_ge(c->res.rejected, 1);
    ck_assert_int_eq(c->err.kind, DP_ERR_UNWRAP);
    /* the complete first member still counts as a whole report */
    ck_assert_uint_eq(c->res.reports, 1);
    ck_assert_uint_eq(c->res.records, 1);
}
END_TEST

START_TEST(zip_member_that_is_not_a_report) {
    tu_entry e[] = {{"report.xml", TU_SIMPLE, strlen(TU_SIMPLE)},
                    {"README.txt", "hello there\n", 12}};
    tu_bytes z = tu_zip(e, 2);
    tu_collect *c = tu_ingest_mem(NULL, "in.zip", z.data, z.len);
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 1);
    ck_assert_uint_eq(c->res.records, 1);
    ck_assert_uint_eq(c->res.rejected, 1);
    ck_assert_int_eq(c->err.kind, DP_ERR_NOT_AGGREGATE);
    ck_assert_str_eq(c->err.where, "in.zip!README.txt");
}
END_TEST

START_TEST(zip_member_limit) {
    dp_ingest_limits lim;
    dp_ingest_limits_default(&lim);
    lim.max_parts = 2;
    tu_entry e[] = {{"a.xml", TU_SIMPLE, strlen(TU_SIMPLE)}, {"b.xml", TU_SIMPLE, strlen(TU_SIMPLE)},
                    {"c.xml", TU_SIMPLE, strlen(TU_SIMPLE)}};
    tu_bytes z = tu_zip(e, 2);
    tu_assert_ok(tu_ingest_mem(&lim, "two.zip", z.data, z.len), 2, 2);
    z = tu_zip(e, 3);
    tu_collect *c = tu_ingest_mem(&lim, "three.zip", z.data, z.len);
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 2); /* the members before the cap still count */
    ck_assert_uint_eq(c->res.rejected, 1);
    ck_assert_int_eq(c->err.kind, DP_ERR_LIMIT);
}
END_TEST

START_TEST(zip_member_that_is_mail_rejected) {
    static const char mail[] = "From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n";
    tu_entry e[] = {{"msg.eml", mail, sizeof mail - 1}};
    tu_bytes z = tu_zip(e, 1);
    tu_collect *c = tu_ingest_mem(NULL, "in.zip", z.data, z.len);
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
    ck_assert_str_eq(c->err.where, "in.zip!msg.eml");
}
END_TEST

START_TEST(zip_empty_rejected) {
    tu_bytes z = tu_zip(NULL, 0);
    tu_collect *c = tu_ingest_mem(NULL, "in.zip", z.data, z.len);
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 0);
    ck_assert_uint_ge(c->res.rejected, 1);
}
END_TEST

/* ---- zstd ------------------------------------------------------------------------ */

START_TEST(zstd_report) {
    tu_bytes z = tu_zstd(TU_SIMPLE, strlen(TU_SIMPLE));
    ck_assert_uint_eq(z.data[0], 0x28);
    assert_simple(tu_ingest_mem(NULL, "r.xml.zst", z.data, z.len));
}
END_TEST

START_TEST(zstd_truncated_rejected) {
    tu_bytes z = tu_zstd(TU_TWO, strlen(TU_TWO));
    tu_collect *c = tu_ingest_mem(NULL, "r.xml.zst", z.data, z.len / 2);
    tu_assert_rejected(c, DP_ERR_UNWRAP);
}
END_TEST

/* ---- not reports ------------------------------------------------------------------- */

START_TEST(empty_input_rejected) {
    tu_collect *c = tu_ingest_mem(NULL, "empty.xml", "", 0);
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
}
END_TEST

/* Regression: a valid gzip (or zstd) of nothing used to be rejected as a
 * corrupt container (libarchive's raw format refuses empty data); like
 * plain empty input, it holds no report: DP_ERR_NOT_AGGREGATE. */
START_TEST(empty_gzip_rejected) {
    tu_bytes gz = tu_gzip("", 0);
    tu_collect *c = tu_ingest_mem(NULL, "empty.xml.gz", gz.data, gz.len);
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
    tu_bytes zs = tu_zstd("", 0);
    c = tu_ingest_mem(NULL, "empty.xml.zst", zs.data, zs.len);
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
}
END_TEST

START_TEST(unused_body_rejected) {
    tu_collect *c = tu_ingest_str("unused");
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
    tu_assert_contains(c->err.msg, "unused");
    c = tu_ingest_str("unused\r\n");
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
}
END_TEST

START_TEST(binary_garbage_rejected) {
    static const unsigned char junk[] = {0x00, 0x01, 0x02, 0xff, 0xfe, 0x80};
    tu_collect *c = tu_ingest_mem(NULL, "junk.bin", junk + 2, sizeof junk - 2);
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 0);
}
END_TEST

/* ---- the name never decides -------------------------------------------------------- */

START_TEST(content_sniffed_not_named) {
    tu_bytes gz = tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE));
    assert_simple(tu_ingest_mem(NULL, "report.xml", gz.data, gz.len));
    tu_entry e[] = {{"r.xml", TU_SIMPLE, strlen(TU_SIMPLE)}};
    tu_bytes z = tu_zip(e, 1);
    assert_simple(tu_ingest_mem(NULL, "report.xml.gz", z.data, z.len));
    tu_bytes zs = tu_zstd(TU_SIMPLE, strlen(TU_SIMPLE));
    assert_simple(tu_ingest_mem(NULL, "report.zip", zs.data, zs.len));
    assert_simple(tu_ingest_mem(NULL, "report.gz", TU_SIMPLE, strlen(TU_SIMPLE)));
    /* a zip member named .gz that holds plain XML */
    tu_entry e2[] = {{"lies.xml.gz", TU_SIMPLE, strlen(TU_SIMPLE)}};
    z = tu_zip(e2, 1);
    assert_simple(tu_ingest_mem(NULL, "noext", z.data, z.len));
}
END_TEST

/* ---- files --------------------------------------------------------------------------- */

START_TEST(file_gzip_and_zip) {
    const char *dir = tu_tmpdir();
    tu_bytes gz = tu_cat(tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE)), tu_str("\r\n"));
    const char *p = tu_write_file(dir, "r.bin", gz.data, gz.len);
    tu_collect *c = tu_ingest_file(NULL, p);
    assert_simple(c);
    tu_assert_str(c->reps[0].input, p);
    tu_assert_str(c->reps[0].part, p);

    tu_entry e[] = {{"a.xml", TU_SIMPLE, strlen(TU_SIMPLE)}, {"b.xml", TU_TWO, strlen(TU_TWO)}};
    tu_bytes z = tu_zip(e, 2);
    p = tu_write_file(dir, "r.zip", z.data, z.len);
    c = tu_ingest_file(NULL, p);
    tu_assert_ok(c, 2, 3);
}
END_TEST

START_TEST(file_missing_is_an_input_error) {
    /* the input's own state, not the run's: rejected, not left for later */
    const char *dir = tu_tmpdir();
    tu_collect *c = tu_ingest_file(NULL, tu_printf("%s/nope.xml", dir));
    tu_assert_rejected(c, DP_ERR_INPUT);
    ck_assert_int_eq(dp_error_is_environmental(&c->err), 0);
    c = tu_ingest_file(NULL, dir); /* a directory is not a regular file */
    tu_assert_rejected(c, DP_ERR_INPUT);
}
END_TEST

START_TEST(file_truncated_gzip_rejected) {
    const char *dir = tu_tmpdir();
    tu_bytes gz = tu_gzip(TU_TWO, strlen(TU_TWO));
    const char *p = tu_write_file(dir, "t.xml.gz", gz.data, gz.len / 2);
    tu_assert_rejected(tu_ingest_file(NULL, p), DP_ERR_UNWRAP);
}
END_TEST

int main(void) {
    Suite *s = suite_create("unwrap");
    TCase *tc = tu_tcase("raw");
    tcase_add_test(tc, raw_xml_with_declaration);
    tcase_add_test(tc, raw_xml_without_declaration);
    tcase_add_test(tc, raw_xml_utf8_bom);
    tcase_add_test(tc, raw_xml_utf8_bom_without_declaration);
    tcase_add_test(tc, raw_xml_crlf_line_ends);
    tcase_add_test(tc, raw_xml_utf16le_bom);
    tcase_add_test(tc, raw_xml_utf16be_bom);
    tcase_add_test(tc, raw_xml_utf16le_without_bom);
    tcase_add_test(tc, raw_xml_utf16_bom_contradicting_utf8_declaration);
    tcase_add_test(tc, raw_xml_iso_8859_1_becomes_utf8);
    tcase_add_test(tc, raw_xml_windows_1252_becomes_utf8);
    tcase_add_test(tc, raw_xml_utf8_declared_as_utf8_alias);
    suite_add_tcase(s, tc);

    tc = tu_tcase("gzip");
    tcase_add_test(tc, gzip_single_member);
    tcase_add_test(tc, gzip_multi_member);
    tcase_add_test(tc, gzip_trailing_crlf);
    tcase_add_test(tc, gzip_in_gzip);
    tcase_add_test(tc, gzip_truncated_rejected);
    tcase_add_test(tc, gzip_missing_trailer_rejected);
    tcase_add_test(tc, gzip_corrupt_deflate_rejected);
    tcase_add_test(tc, containers_nested_too_deep_zip);
    suite_add_tcase(s, tc);

    tc = tu_tcase("zip");
    tcase_add_test(tc, zip_two_reports_both_counted);
    tcase_add_test(tc, zip_macos_resource_forks_skipped);
    tcase_add_test(tc, zip_with_gzip_member);
    tcase_add_test(tc, zip_in_gzip);
    tcase_add_test(tc, zip_truncated_rejected);
    tcase_add_test(tc, zip_truncated_after_first_member);
    tcase_add_test(tc, zip_member_that_is_not_a_report);
    tcase_add_test(tc, zip_member_limit);
    tcase_add_test(tc, zip_member_that_is_mail_rejected);
    tcase_add_test(tc, zip_empty_rejected);
    suite_add_tcase(s, tc);

    tc = tu_tcase("zstd");
    tcase_add_test(tc, zstd_report);
    tcase_add_test(tc, zstd_truncated_rejected);
    suite_add_tcase(s, tc);

    tc = tu_tcase("not_reports");
    tcase_add_test(tc, empty_input_rejected);
    tcase_add_test(tc, unused_body_rejected);
    tcase_add_test(tc, binary_garbage_rejected);
    tcase_add_test(tc, content_sniffed_not_named);
    suite_add_tcase(s, tc);

    tc = tu_tcase("files");
    tcase_add_test(tc, file_gzip_and_zip);
    tcase_add_test(tc, file_missing_is_an_input_error);
    tcase_add_test(tc, file_truncated_gzip_rejected);
    suite_add_tcase(s, tc);

    /* Regressions: each failed before its fix in ingest/. */
    tc = tu_tcase("regressions");
    tcase_add_test(tc, gzip_truncated_header_rejected);
    tcase_add_test(tc, containers_nested_too_deep_rejected);
    tcase_add_test(tc, empty_gzip_rejected);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
