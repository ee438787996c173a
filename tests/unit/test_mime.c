/* test_mime — reports in e-mail: attachments in every transfer encoding and
 * content type receivers use, nested multiparts, the report as the whole
 * body, mbox files, and the mail that is not an aggregate report (ARF
 * failure reports, SMTP TLS reports, messages with nothing attached). */
#include <stdio.h>
#include <string.h>

#include "test_util.h"

#define HEADERS                                                                  \
    "Return-Path: <noreply@reporter.example>\r\n"                              \
    "From: DMARC Reporter <noreply@reporter.example>\r\n"                       \
    "To: dmarc-rua@example.com\r\n"                                             \
    "Subject: Report Domain: example.com Submitter: reporter.example Report-ID: r1\r\n" \
    "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"                                  \
    "Message-ID: <m1@reporter.example>\r\n"                                      \
    "MIME-Version: 1.0\r\n"

/* A multipart/mixed message: a text part, then one attachment. */
static const char *mail_with(const char *ctype, const char *cte, const char *filename, const char *body) {
    return tu_printf(HEADERS
                     "Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\n"
                     "This is a multi-part message in MIME format.\r\n"
                     "--=_b1\r\n"
                     "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                     "This is an aggregate report from reporter.example.\r\n\r\n"
                     "--=_b1\r\n"
                     "Content-Type: %s%s%s\r\n"
                     "Content-Transfer-Encoding: %s\r\n"
                     "%s%s%s"
                     "\r\n%s\r\n"
                     "--=_b1--\r\n",
                     ctype, filename ? "; name=\"" : "", filename ? filename : "", cte,
                     filename ? "Content-Disposition: attachment; filename=\"" : "",
                     filename ? filename : "", filename ? "\"\r\n" : "", body);
}

static tu_collect *ingest_mail(const char *msg) {
    return tu_ingest_mem(NULL, "mail.eml", msg, strlen(msg));
}

static void assert_simple(const tu_collect *c) {
    tu_assert_ok(c, 1, 1);
    ck_assert_str_eq(c->recs[0].source_ip, "192.0.2.1");
    ck_assert_uint_eq(c->recs[0].count, 3);
    tu_assert_str(c->reps[0].org_name, "Example Org");
    tu_assert_str(c->reps[0].input, "mail.eml");
}

static char *gzip_b64(const char *xml) {
    tu_bytes gz = tu_gzip(xml, strlen(xml));
    return tu_base64(gz.data, gz.len);
}

/* ---- attachments ---------------------------------------------------------------- */

START_TEST(base64_gzip_attachment) {
    tu_collect *c = ingest_mail(mail_with("application/gzip", "base64", "r.xml.gz", gzip_b64(TU_SIMPLE)));
    assert_simple(c);
    /* the report is named by the message and the attachment */
    tu_assert_str(c->reps[0].part, "mail.eml!r.xml.gz");
}
END_TEST

START_TEST(quoted_printable_xml_attachment) {
    tu_collect *c = ingest_mail(mail_with("text/xml", "quoted-printable", "r.xml",
                                          tu_qp(TU_SIMPLE, strlen(TU_SIMPLE))));
    assert_simple(c);
}
END_TEST

START_TEST(quoted_printable_gzip_attachment) {
    tu_bytes gz = tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE));
    tu_collect *c = ingest_mail(mail_with("application/octet-stream", "quoted-printable", "r.xml.gz",
                                          tu_qp(gz.data, gz.len)));
    assert_simple(c);
}
END_TEST

START_TEST(every_attachment_content_type) {
    tu_bytes gz = tu_gzip(TU_SIMPLE, strlen(TU_SIMPLE));
    tu_entry e[] = {{"r.xml", TU_SIMPLE, strlen(TU_SIMPLE)}};
    tu_bytes zip = tu_zip(e, 1);
    tu_bytes zst = tu_zstd(TU_SIMPLE, strlen(TU_SIMPLE));
    const struct { const char *type, *name; tu_bytes body; } cases[] = {
        {"application/gzip", "r.xml.gz", gz},
        {"application/x-gzip", "r.xml.gz", gz},
        {"application/zip", "r.zip", zip},
        {"application/x-zip-compressed", "r.zip", zip},
        {"text/xml", "r.xml", tu_str(TU_SIMPLE)},
        {"application/xml", "r.xml", tu_str(TU_SIMPLE)},
        {"application/octet-stream", "r.xml.gz", gz},
        {"application/octet-stream", "r.zip", zip},
        {"application/zstd", "r.xml.zst", zst},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *m = mail_with(cases[i].type, "base64", cases[i].name,
                                  tu_base64(cases[i].body.data, cases[i].body.len));
        tu_collect *c = ingest_mail(m);
        ck_assert_msg(c->rc == 0 && c->res.reports == 1 && c->res.records == 1,
                      "%s attachment: rc %d, %llu reports (%s)", cases[i].type, c->rc,
                      (unsigned long long)c->res.reports, c->n_fails ? c->fails[0].err.msg : "");
        /* and without a file name: the type alone marks it */
        m = mail_with(cases[i].type, "base64", NULL, tu_base64(cases[i].body.data, cases[i].body.len));
        c = ingest_mail(m);
        ck_assert_msg(c->rc == 0 && c->res.reports == 1, "%s attachment without a name: %s",
                      cases[i].type, c->n_fails ? c->fails[0].err.msg : "no report");
    }
}
END_TEST

START_TEST(gzip_type_with_zip_payload) {
    const char *b = TU_HEAD_ID("Org B", "b-1") TU_REC("192.0.2.2", "4") TU_TAIL;
    tu_entry e[] = {{"a.xml", TU_SIMPLE, strlen(TU_SIMPLE)}, {"b.xml", b, strlen(b)}};
    tu_bytes zip = tu_zip(e, 2);
    tu_collect *c = ingest_mail(mail_with("application/gzip", "base64", "report.xml.gz",
                                          tu_base64(zip.data, zip.len)));
    tu_assert_ok(c, 2, 2);
    tu_assert_str(c->reps[1].part, "mail.eml!report.xml.gz!b.xml");
}
END_TEST

START_TEST(unknown_type_attachment_sniffed) {
    /* a wrong type, but a named attachment: its bytes decide */
    tu_collect *c = ingest_mail(mail_with("application/x-unknown-thing", "base64", "r.dat", gzip_b64(TU_SIMPLE)));
    assert_simple(c);
}
END_TEST

START_TEST(broken_attachment_rejected_as_unwrap) {
    tu_bytes gz = tu_gzip(TU_TWO, strlen(TU_TWO));
    tu_collect *c = ingest_mail(mail_with("application/gzip", "base64", "r.xml.gz", tu_base64(gz.data, gz.len / 2)));
    tu_assert_rejected(c, DP_ERR_UNWRAP);
    tu_assert_str(c->fails[0].err.where, "mail.eml!r.xml.gz");
}
END_TEST

START_TEST(bomb_attachment_rejected) {
    /* the ratio is measured against the decoded attachment */
    size_t pad = 16u << 20;
    const char *tail = strstr(TU_SIMPLE, "</feedback>");
    const char *d = tu_printf("%.*s<!--%*s-->%s", (int)(tail - TU_SIMPLE), TU_SIMPLE, (int)pad, "", tail);
    tu_bytes gz = tu_gzip(d, strlen(d));
    tu_collect *c = ingest_mail(mail_with("application/gzip", "base64", "bomb.xml.gz", tu_base64(gz.data, gz.len)));
    tu_assert_rejected(c, DP_ERR_LIMIT);
    tu_assert_str(c->fails[0].err.where, "mail.eml!bomb.xml.gz");
}
END_TEST

START_TEST(part_limit) {
    dp_ingest_limits lim;
    dp_ingest_limits_default(&lim);
    lim.max_parts = 1;
    /* every leaf part counts, text ones too */
    const char *one = tu_printf(HEADERS "Content-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s",
                                gzip_b64(TU_SIMPLE));
    tu_assert_ok(tu_ingest_mem(&lim, "one.eml", one, strlen(one)), 1, 1);
    const char *two = tu_printf(HEADERS "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                                "--b\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s"
                                "--b\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n%s"
                                "--b--\r\n", gzip_b64(TU_SIMPLE), gzip_b64(TU_SIMPLE));
    tu_collect *c = tu_ingest_mem(&lim, "two.eml", two, strlen(two));
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 1);
    ck_assert_int_eq(c->err.kind, DP_ERR_LIMIT);
    lim.max_parts = 2;
    tu_assert_ok(tu_ingest_mem(&lim, "two.eml", two, strlen(two)), 2, 2);
}
END_TEST

START_TEST(nested_multipart_outlook) {
    /* multipart/mixed > multipart/related > multipart/alternative, with an
     * HTML body that mentions the report; the attachment deepest down */
    const char *m = tu_printf(
        HEADERS
        "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n"
        "--mix\r\n"
        "Content-Type: multipart/related; boundary=\"rel\"; type=\"multipart/alternative\"\r\n\r\n"
        "--rel\r\n"
        "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
        "--alt\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Report attached: r.xml.gz <feedback>\r\n"
        "--alt\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><body><p>Report attached: <b>&lt;feedback&gt;</b> r.xml.gz</p></body></html>\r\n"
        "--alt\r\n"
        "Content-Type: application/gzip; name=\"r.xml.gz\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"r.xml.gz\"\r\n\r\n"
        "%s\r\n"
        "--alt--\r\n"
        "--rel\r\n"
        "Content-Type: image/png; name=\"logo.png\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-ID: <logo>\r\n\r\n"
        "iVBORw0KGgo=\r\n"
        "--rel--\r\n"
        "--mix--\r\n",
        gzip_b64(TU_SIMPLE));
    tu_collect *c = ingest_mail(m);
    assert_simple(c);
}
END_TEST

START_TEST(report_is_whole_body_xml) {
    const char *m = tu_printf(HEADERS "Content-Type: text/xml; charset=utf-8\r\n"
                                      "Content-Transfer-Encoding: 7bit\r\n\r\n%s",
                              TU_SIMPLE);
    assert_simple(ingest_mail(m));
}
END_TEST

START_TEST(report_is_whole_body_gzip_base64) {
    const char *m = tu_printf(HEADERS "Content-Type: application/gzip\r\n"
                                      "Content-Transfer-Encoding: base64\r\n"
                                      "Content-Disposition: attachment; filename=\"r.xml.gz\"\r\n\r\n%s",
                              gzip_b64(TU_SIMPLE));
    assert_simple(ingest_mail(m));
}
END_TEST

START_TEST(blank_lines_before_headers) {
    const char *m = tu_printf("\r\n\r\n%s", mail_with("application/gzip", "base64", "r.xml.gz", gzip_b64(TU_SIMPLE)));
    assert_simple(ingest_mail(m));
}
END_TEST

/* ---- mbox -------------------------------------------------------------------------------- */

static const char *mbox_two(void) {
    const char *b = TU_HEAD_ID("Org B", "b-1") TU_REC("192.0.2.2", "4") TU_REC("192.0.2.3", "5") TU_TAIL;
    const char *m1 = mail_with("application/gzip", "base64", "a.xml.gz", gzip_b64(TU_SIMPLE));
    tu_entry e[] = {{"b.xml", b, strlen(b)}};
    tu_bytes zip = tu_zip(e, 1);
    const char *m2 = mail_with("application/zip", "base64", "b.zip", tu_base64(zip.data, zip.len));
    return tu_printf("From noreply@reporter.example Mon Jan  1 00:00:00 2024\n%s\n"
                     "From noreply@other.example Tue Jan  2 00:00:00 2024\n%s\n",
                     m1, m2);
}

START_TEST(mbox_two_messages) {
    const char *box = mbox_two();
    tu_collect *c = tu_ingest_mem(NULL, "box.mbox", box, strlen(box));
    tu_assert_ok(c, 2, 3);
    tu_assert_str(c->reps[0].org_name, "Example Org");
    tu_assert_str(c->reps[0].part, "box.mbox!message 1!a.xml.gz");
    tu_assert_str(c->reps[1].org_name, "Org B");
    tu_assert_str(c->reps[1].part, "box.mbox!message 2!b.zip!b.xml");
    ck_assert_uint_eq(c->res.messages, 12);
}
END_TEST

START_TEST(mbox_file) {
    const char *dir = tu_tmpdir();
    const char *box = mbox_two();
    const char *p = tu_write_file(dir, "inbox", box, strlen(box));
    tu_collect *c = tu_ingest_file(NULL, p);
    tu_assert_ok(c, 2, 3);
}
END_TEST

START_TEST(eml_file) {
    const char *dir = tu_tmpdir();
    const char *m = mail_with("application/octet-stream", "base64", "r.xml.gz", gzip_b64(TU_SIMPLE));
    const char *p = tu_write_file(dir, "r.eml", m, strlen(m));
    tu_collect *c = tu_ingest_file(NULL, p);
    tu_assert_ok(c, 1, 1);
    tu_assert_str(c->reps[0].part, tu_printf("%s!r.xml.gz", p));
}
END_TEST

START_TEST(mbox_with_one_bad_message) {
    const char *good = mail_with("application/gzip", "base64", "a.xml.gz", gzip_b64(TU_SIMPLE));
    const char *none = mail_with("text/plain", "7bit", NULL, "nothing here");
    const char *box = tu_printf("From a@example Mon Jan  1 00:00:00 2024\n%s\n"
                                "From b@example Mon Jan  1 00:00:00 2024\n%s\n",
                                good, none);
    tu_collect *c = tu_ingest_mem(NULL, "box", box, strlen(box));
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 1);
    ck_assert_uint_eq(c->res.rejected, 1);
    ck_assert_int_eq(c->err.kind, DP_ERR_NOT_AGGREGATE);
    ck_assert_str_eq(c->err.where, "box!message 2");
}
END_TEST

/* ---- not aggregate reports ----------------------------------------------------------------- */

START_TEST(arf_failure_report_rejected) {
    const char *m = tu_printf(
        HEADERS
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n\r\n"
        "--arf\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is an authentication failure report for an email message received from IP 192.0.2.1\r\n"
        "--arf\r\n"
        "Content-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: auth-failure\r\n"
        "User-Agent: Reporter/1.0\r\n"
        "Version: 1\r\n"
        "Auth-Failure: dmarc\r\n"
        "Source-IP: 192.0.2.1\r\n\r\n"
        "--arf\r\n"
        "Content-Type: message/rfc822\r\n\r\n"
        "From: someone@example.com\r\n"
        "Subject: original\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"orig\"\r\n\r\n"
        "--orig\r\n"
        "Content-Type: application/gzip; name=\"r.xml.gz\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "%s\r\n"
        "--orig--\r\n"
        "--arf--\r\n",
        gzip_b64(TU_SIMPLE));
    tu_collect *c = ingest_mail(m);
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
    tu_assert_contains(c->err.msg, "ARF");
    ck_assert_uint_eq(c->res.rejected, 1);
}
END_TEST

START_TEST(smtp_tls_report_rejected) {
    static const char json[] = "{\"organization-name\":\"Example\",\"date-range\":{},\"report-id\":\"t1\","
                               "\"policies\":[]}";
    tu_bytes gz = tu_gzip(json, strlen(json));
    const char *m = tu_printf(
        HEADERS
        "TLS-Report-Domain: example.com\r\n"
        "TLS-Report-Submitter: reporter.example\r\n"
        "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"tls\"\r\n\r\n"
        "--tls\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "This is an aggregate TLS report from reporter.example\r\n"
        "--tls\r\n"
        "Content-Type: application/tlsrpt+gzip; name=\"reporter.example!example.com!1!2.json.gz\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"reporter.example!example.com!1!2.json.gz\"\r\n\r\n"
        "%s\r\n"
        "--tls--\r\n",
        tu_base64(gz.data, gz.len));
    tu_collect *c = ingest_mail(m);
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
    tu_assert_contains(c->err.msg, "TLS");
    ck_assert_uint_eq(c->res.rejected, 1);
}
END_TEST

START_TEST(message_without_attachment_rejected) {
    const char *m = HEADERS "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                            "Your DMARC report is attached.\r\n";
    tu_collect *c = ingest_mail(m);
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
    tu_assert_contains(c->err.msg, "no aggregate report");
    c = ingest_mail(mail_with("text/html", "7bit", NULL, "<html><body>no report</body></html>"));
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
    ck_assert_uint_eq(c->res.rejected, 1);
}
END_TEST

START_TEST(attachment_that_is_not_a_report_rejected) {
    tu_collect *c = ingest_mail(mail_with("application/octet-stream", "base64", "invoice.pdf",
                                          tu_base64("%PDF-1.4\n%junk\n", 15)));
    tu_assert_rejected(c, DP_ERR_NOT_AGGREGATE);
    tu_assert_str(c->fails[0].err.where, "mail.eml!invoice.pdf");
}
END_TEST

int main(void) {
    Suite *s = suite_create("mime");
    TCase *tc = tu_tcase("attachments");
    tcase_add_test(tc, base64_gzip_attachment);
    tcase_add_test(tc, quoted_printable_xml_attachment);
    tcase_add_test(tc, quoted_printable_gzip_attachment);
    tcase_add_test(tc, every_attachment_content_type);
    tcase_add_test(tc, gzip_type_with_zip_payload);
    tcase_add_test(tc, unknown_type_attachment_sniffed);
    tcase_add_test(tc, broken_attachment_rejected_as_unwrap);
    tcase_add_test(tc, bomb_attachment_rejected);
    tcase_add_test(tc, part_limit);
    tcase_add_test(tc, nested_multipart_outlook);
    tcase_add_test(tc, report_is_whole_body_xml);
    tcase_add_test(tc, report_is_whole_body_gzip_base64);
    tcase_add_test(tc, blank_lines_before_headers);
    suite_add_tcase(s, tc);

    tc = tu_tcase("mbox");
    tcase_add_test(tc, mbox_two_messages);
    tcase_add_test(tc, mbox_file);
    tcase_add_test(tc, eml_file);
    tcase_add_test(tc, mbox_with_one_bad_message);
    suite_add_tcase(s, tc);

    tc = tu_tcase("not_aggregate");
    tcase_add_test(tc, arf_failure_report_rejected);
    tcase_add_test(tc, smtp_tls_report_rejected);
    tcase_add_test(tc, message_without_attachment_rejected);
    tcase_add_test(tc, attachment_that_is_not_a_report_rejected);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
