/* test_xml — the streaming report parser: the three schemas, every field
 * kept, values normalised, the validation rules, the salvage rules, hostile
 * XML and the safety limits, the whole-or-nothing report contract, and
 * the sections in any order (records held until the header is known). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_buf.h"
#include "ingest_internal.h"
#include "test_util.h"

#define META                                                                                  \
    "<org_name>Example Org</org_name><email>dmarc@example.org</email><report_id>r1</report_id>" \
    "<date_range><begin>1700000000</begin><end>1700086399</end></date_range>"
#define POLICY "<domain>example.com</domain><p>none</p>"

/* A record with the given <row> content. */
#define REC_ROW(row)                                                                          \
    "<record><row>" row "<policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"  \
    "<spf>pass</spf></policy_evaluated></row>"                                                \
    "<identifiers><header_from>example.com</header_from></identifiers>"                       \
    "<auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results>" \
    "</record>\n"
#define REC_IP(ip) REC_ROW("<source_ip>" ip "</source_ip><count>1</count>")
#define REC_COUNT(n) REC_ROW("<source_ip>192.0.2.1</source_ip><count>" n "</count>")

/* <feedback ATTRS> + optional <version> + metadata + policy + records. */
static const char *doc(const char *attrs, const char *version, const char *meta, const char *policy,
                       const char *records) {
    return tu_printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback%s%s>\n%s%s%s"
                     "<report_metadata>%s</report_metadata>\n"
                     "<policy_published>%s</policy_published>\n%s</feedback>\n",
                     attrs ? " " : "", attrs ? attrs : "", version ? "<version>" : "",
                     version ? version : "", version ? "</version>\n" : "", meta, policy, records);
}

static const char *simple(const char *records) { return doc(NULL, "1.0", META, POLICY, records); }

static dp_ingest_limits limits(void) {
    dp_ingest_limits lim;
    dp_ingest_limits_default(&lim);
    return lim;
}

/* ---- schemas ------------------------------------------------------------------- */

START_TEST(schema_draft_by_namespace) {
    tu_collect *c = tu_ingest_str(doc("xmlns=\"http://dmarc.org/dmarc-xml/0.1\"", NULL, META, POLICY,
                                      REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    ck_assert_int_eq(c->reps[0].schema, DP_SCHEMA_DRAFT);
    ck_assert_str_eq(dp_report_schema_name(c->reps[0].schema), "draft");
    tu_assert_str(c->reps[0].org_name, "Example Org"); /* namespaced elements matched by local name */
}
END_TEST

START_TEST(schema_draft_by_version) {
    tu_collect *c = tu_ingest_str(doc(NULL, "0.1", META, POLICY, REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    ck_assert_int_eq(c->reps[0].schema, DP_SCHEMA_DRAFT);
}
END_TEST

START_TEST(schema_rfc7489) {
    tu_collect *c = tu_ingest_str(simple(REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    ck_assert_int_eq(c->reps[0].schema, DP_SCHEMA_RFC7489);
    ck_assert_str_eq(dp_report_schema_name(c->reps[0].schema), "rfc7489");
    tu_assert_str(c->reps[0].version, "1.0");
    /* and without <version> */
    c = tu_ingest_str(doc(NULL, NULL, META, POLICY, REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    ck_assert_int_eq(c->reps[0].schema, DP_SCHEMA_RFC7489);
    tu_assert_str(c->reps[0].version, NULL);
}
END_TEST

static const char RFC9990_DOC[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\" xmlns:x=\"urn:example:ext\">\n"
    " <version>1.0</version>\n"
    " <report_metadata>\n"
    "  <org_name lang=\"en\">GMX</org_name>\n"
    "  <email>dmarc@gmx.example</email>\n"
    "  <extra_contact_info lang=\"de\">https://postmaster.gmx.example</extra_contact_info>\n"
    "  <report_id>&lt;20240101.abc@gmx.example&gt;</report_id>\n"
    "  <date_range><begin>1704067200</begin><end>1704153599</end></date_range>\n"
    "  <error lang=\"en\">DNS timeout for selector s1</error>\n"
    "  <error>second error</error>\n"
    "  <generator>Example Reporter 2.1</generator>\n"
    " </report_metadata>\n"
    " <policy_published>\n"
    "  <domain>example.net</domain><adkim>s</adkim><aspf>r</aspf><p>quarantine</p>\n"
    "  <sp>reject</sp><np>reject</np><fo>1</fo><testing>y</testing>\n"
    "  <discovery_method>treewalk</discovery_method>\n"
    " </policy_published>\n"
    " <extension>\n"
    "  <x:vendor x:id=\"7\"><x:note lang=\"en\">anything <x:b>goes</x:b> &amp; here</x:note>"
    "<x:list><x:item/><x:item>2</x:item></x:list></x:vendor>\n"
    " </extension>\n"
    " <record>\n"
    "  <row><source_ip>2001:db8::25</source_ip><count>12</count>\n"
    "   <policy_evaluated><disposition>pass</disposition><dkim>pass</dkim><spf>fail</spf>\n"
    "    <reason><type>local_policy</type><comment lang=\"en\">known forwarder</comment></reason>\n"
    "   </policy_evaluated></row>\n"
    "  <identifiers><envelope_to>example.org</envelope_to><envelope_from>bounce.example.net</envelope_from>"
    "<header_from>example.net</header_from></identifiers>\n"
    "  <auth_results>\n"
    "   <dkim><domain>example.net</domain><selector>s1</selector><result>pass</result>"
    "<human_result lang=\"en\">good signature</human_result></dkim>\n"
    "   <spf><domain>bounce.example.net</domain><scope>mfrom</scope><result>fail</result></spf>\n"
    "  </auth_results>\n"
    " </record>\n"
    "</feedback>\n";

START_TEST(schema_rfc9990_fields) {
    tu_collect *c = tu_ingest_str(RFC9990_DOC);
    tu_assert_ok(c, 1, 1);
    const tu_report *r = &c->reps[0];
    ck_assert_int_eq(r->schema, DP_SCHEMA_RFC9990);
    ck_assert_str_eq(dp_report_schema_name(r->schema), "rfc9990");
    tu_assert_str(r->org_name, "GMX");
    tu_assert_str(r->extra_contact_info, "https://postmaster.gmx.example");
    tu_assert_str(r->report_id, "20240101.abc@gmx.example");
    ck_assert_int_eq(r->begin, 1704067200);
    ck_assert_int_eq(r->end, 1704153599);
    ck_assert_uint_eq(r->n_errors, 2);
    tu_assert_str(r->errors[0], "DNS timeout for selector s1");
    tu_assert_str(r->errors[1], "second error");
    tu_assert_str(r->generator, "Example Reporter 2.1");
    tu_assert_str(r->np, "reject");
    tu_assert_str(r->testing, "y");
    tu_assert_str(r->discovery_method, "treewalk");
    ck_assert_int_eq(r->has_pct, 0); /* RFC 9990 has no pct */
    const tu_record *rec = &c->recs[0];
    ck_assert_str_eq(rec->source_ip, "2001:db8::25");
    ck_assert_int_eq(rec->ip_family, 6);
    ck_assert_uint_eq(rec->count, 12);
    tu_assert_str(rec->disposition, "pass");
    tu_assert_str(rec->spf, "fail");
    ck_assert_uint_eq(rec->n_overrides, 1);
    tu_assert_str(rec->ov[0].type, "local_policy");
    tu_assert_str(rec->ov[0].comment, "known forwarder");
    tu_assert_str(rec->envelope_to, "example.org");
    ck_assert_uint_eq(rec->n_dkim, 1);
    tu_assert_str(rec->dk[0].human_result, "good signature");
    ck_assert_uint_eq(rec->n_spf, 1);
    tu_assert_str(rec->sp[0].selector_or_scope, "mfrom");
}
END_TEST

START_TEST(schema_rfc9990_elements_without_namespace) {
    /* one large receiver sent <np> and friends with no namespace */
    tu_collect *c = tu_ingest_str(doc(NULL, "1.0", META,
                                      POLICY "<np>Quarantine</np><discovery_method>psl</discovery_method>",
                                      REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    ck_assert_int_eq(c->reps[0].schema, DP_SCHEMA_RFC7489);
    tu_assert_str(c->reps[0].np, "quarantine");
    tu_assert_str(c->reps[0].discovery_method, "psl");
    c = tu_ingest_str(doc(NULL, "2.0", META, POLICY, REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    ck_assert_int_eq(c->reps[0].schema, DP_SCHEMA_RFC9990);
}
END_TEST

/* ---- every field --------------------------------------------------------------------- */

START_TEST(every_report_field_kept) {
    const char *meta = "<org_name> Example Org </org_name><email>dmarc@example.org</email>"
                       "<extra_contact_info>http://example.org/dmarc</extra_contact_info>"
                       "<report_id>r-77</report_id>"
                       "<date_range><begin>1700000000</begin><end>1700086399</end></date_range>"
                       "<error>first</error><error>  </error><error>second</error><error>third</error>"
                       "<generator>gen 1.0</generator>";
    const char *policy = "<domain>Example.com</domain><adkim>R</adkim><aspf>S</aspf><p>Reject</p>"
                         "<sp>quarantine</sp><np>none</np><pct>50</pct><fo>0:1:d:s</fo>"
                         "<testing>N</testing><discovery_method>TreeWalk</discovery_method><psd>u</psd>";
    tu_collect *c = tu_ingest_str(doc(NULL, "1.0", meta, policy, REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    const tu_report *r = &c->reps[0];
    tu_assert_str(r->input, "test.xml");
    tu_assert_str(r->part, "test.xml");
    tu_assert_str(r->org_name, "Example Org");
    tu_assert_str(r->email, "dmarc@example.org");
    tu_assert_str(r->extra_contact_info, "http://example.org/dmarc");
    tu_assert_str(r->report_id, "r-77");
    tu_assert_str(r->version, "1.0");
    tu_assert_str(r->generator, "gen 1.0");
    ck_assert_uint_eq(r->n_errors, 3); /* the blank one is dropped */
    tu_assert_str(r->errors[0], "first");
    tu_assert_str(r->errors[1], "second");
    tu_assert_str(r->errors[2], "third");
    tu_assert_str(r->domain, "Example.com");
    tu_assert_str(r->adkim, "r");
    tu_assert_str(r->aspf, "s");
    tu_assert_str(r->p, "reject");
    tu_assert_str(r->sp, "quarantine");
    tu_assert_str(r->np, "none");
    ck_assert_int_eq(r->has_pct, 1);
    ck_assert_uint_eq(r->pct, 50);
    tu_assert_str(r->fo, "0:1:d:s");
    tu_assert_str(r->testing, "n");
    tu_assert_str(r->discovery_method, "treewalk");
    tu_assert_str(r->psd, "u");
    ck_assert_uint_eq(r->records, 1);
    ck_assert_uint_eq(r->messages, 1);
}
END_TEST

START_TEST(optional_fields_absent_are_null) {
    const char *meta = "<org_name>o</org_name><report_id>r</report_id>"
                       "<date_range><begin>1700000000</begin><end>1700000001</end></date_range>";
    const char *rec = "<record><row><source_ip>192.0.2.1</source_ip><count>1</count>"
                      "<policy_evaluated><disposition>none</disposition></policy_evaluated></row>"
                      "<identifiers><header_from>example.com</header_from></identifiers>"
                      "<auth_results><dkim><domain>example.com</domain><result>pass</result></dkim>"
                      "<spf><domain>example.com</domain><result>pass</result></spf></auth_results></record>";
    tu_collect *c = tu_ingest_str(doc(NULL, NULL, meta, "<domain>example.com</domain><p>none</p>", rec));
    tu_assert_ok(c, 1, 1);
    const tu_report *r = &c->reps[0];
    tu_assert_str(r->email, NULL);
    tu_assert_str(r->extra_contact_info, NULL);
    tu_assert_str(r->generator, NULL);
    ck_assert_uint_eq(r->n_errors, 0);
    tu_assert_str(r->adkim, NULL);
    tu_assert_str(r->sp, NULL);
    tu_assert_str(r->np, NULL);
    tu_assert_str(r->fo, NULL);
    tu_assert_str(r->testing, NULL);
    ck_assert_int_eq(r->has_pct, 0);
    const tu_record *x = &c->recs[0];
    tu_assert_str(x->dkim, NULL);
    tu_assert_str(x->spf, NULL);
    tu_assert_str(x->envelope_from, NULL);
    tu_assert_str(x->envelope_to, NULL);
    ck_assert_uint_eq(x->n_overrides, 0);
    tu_assert_str(x->dk[0].selector_or_scope, NULL);
    tu_assert_str(x->dk[0].human_result, NULL);
    tu_assert_str(x->sp[0].selector_or_scope, NULL);
}
END_TEST

START_TEST(every_record_field_kept) {
    const char *rec =
        "<record>"
        "<row><source_ip>192.0.2.9</source_ip><count>5</count>"
        "<policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>pass</spf>"
        "<reason><type>Forwarded</type><comment>list.example</comment></reason>"
        "<reason><type/></reason>"
        "<policy_override><type>mailing_list</type><comment>via list</comment></policy_override>"
        "</policy_evaluated></row>"
        "<identifiers><envelope_to>rcpt.example</envelope_to><envelope_from>bounce.example.com</envelope_from>"
        "<header_from>example.com</header_from></identifiers>"
        "<auth_results>"
        "<dkim><domain>example.com</domain><selector>s1</selector><result>Fail</result>"
        "<human_result>body hash mismatch</human_result></dkim>"
        "<dkim><domain>esp.example</domain><selector>s2</selector><result>pass</result></dkim>"
        "<spf><domain>bounce.example.com</domain><scope>MFROM</scope><result>pass</result>"
        "<human_result>ok</human_result></spf>"
        "<spf><domain>helo.example.com</domain><scope>helo</scope><result>HardFail</result></spf>"
        "</auth_results></record>";
    tu_collect *c = tu_ingest_str(simple(rec));
    tu_assert_ok(c, 1, 1);
    const tu_record *r = &c->recs[0];
    ck_assert_str_eq(r->source_ip, "192.0.2.9");
    ck_assert_int_eq(r->ip_family, 4);
    static const unsigned char ip[4] = {192, 0, 2, 9};
    ck_assert_int_eq(memcmp(r->ip, ip, 4), 0);
    ck_assert_uint_eq(r->count, 5);
    tu_assert_str(r->disposition, "quarantine");
    tu_assert_str(r->dkim, "fail");
    tu_assert_str(r->spf, "pass");
    ck_assert_uint_eq(r->n_overrides, 3);
    tu_assert_str(r->ov[0].type, "forwarded");
    tu_assert_str(r->ov[0].comment, "list.example");
    tu_assert_str(r->ov[1].type, NULL); /* an empty <type/> is absent, the reason still counts */
    tu_assert_str(r->ov[1].comment, NULL);
    tu_assert_str(r->ov[2].type, "mailing_list");
    tu_assert_str(r->ov[2].comment, "via list");
    tu_assert_str(r->header_from, "example.com");
    tu_assert_str(r->envelope_from, "bounce.example.com");
    tu_assert_str(r->envelope_to, "rcpt.example");
    ck_assert_uint_eq(r->n_dkim, 2);
    tu_assert_str(r->dk[0].domain, "example.com");
    tu_assert_str(r->dk[0].selector_or_scope, "s1");
    tu_assert_str(r->dk[0].result, "fail");
    tu_assert_str(r->dk[0].human_result, "body hash mismatch");
    tu_assert_str(r->dk[1].domain, "esp.example");
    tu_assert_str(r->dk[1].selector_or_scope, "s2");
    tu_assert_str(r->dk[1].result, "pass");
    tu_assert_str(r->dk[1].human_result, NULL);
    ck_assert_uint_eq(r->n_spf, 2);
    tu_assert_str(r->sp[0].domain, "bounce.example.com");
    tu_assert_str(r->sp[0].selector_or_scope, "mfrom");
    tu_assert_str(r->sp[0].result, "pass");
    tu_assert_str(r->sp[0].human_result, "ok");
    tu_assert_str(r->sp[1].selector_or_scope, "helo");
    tu_assert_str(r->sp[1].result, "hardfail"); /* non-standard values kept */
}
END_TEST

/* ---- normalising values ----------------------------------------------------------------- */

START_TEST(enums_lowercased_and_trimmed) {
    const char *rec = "<record><row><source_ip> 192.0.2.1\n</source_ip><count> 7 </count>"
                      "<policy_evaluated><disposition> None </disposition><dkim> PASS </dkim>"
                      "<spf>\tFail\n</spf></policy_evaluated></row>"
                      "<identifiers><header_from>  example.com  </header_from></identifiers>"
                      "<auth_results><spf><domain>example.com</domain><result> Unknown </result></spf>"
                      "</auth_results></record>";
    tu_collect *c = tu_ingest_str(doc(NULL, "1.0", META, "<domain>example.com</domain><p> REJECT </p>", rec));
    tu_assert_ok(c, 1, 1);
    const tu_record *r = &c->recs[0];
    ck_assert_str_eq(r->source_ip, "192.0.2.1");
    ck_assert_uint_eq(r->count, 7);
    tu_assert_str(r->disposition, "none");
    tu_assert_str(r->dkim, "pass");
    tu_assert_str(r->spf, "fail");
    tu_assert_str(r->header_from, "example.com");
    tu_assert_str(r->sp[0].result, "unknown");
    tu_assert_str(c->reps[0].p, "reject");
    tu_assert_str(c->reps[0].org_name, "Example Org"); /* free text keeps its case */
}
END_TEST

START_TEST(ip_forms) {
    tu_collect *c = tu_ingest_str(simple(REC_IP("192.0.2.1") REC_IP("2001:DB8:0:0::1")
                                             REC_IP("::ffff:198.51.100.7") REC_IP("2001:db8:0:1:0:0:0:1")));
    tu_assert_ok(c, 1, 4);
    ck_assert_str_eq(c->recs[0].source_ip, "192.0.2.1");
    ck_assert_int_eq(c->recs[0].ip_family, 4);
    ck_assert_str_eq(c->recs[1].source_ip, "2001:db8::1");
    ck_assert_int_eq(c->recs[1].ip_family, 6);
    static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    ck_assert_int_eq(memcmp(c->recs[1].ip, v6, 16), 0);
    ck_assert_str_eq(c->recs[2].source_ip, "198.51.100.7");
    ck_assert_int_eq(c->recs[2].ip_family, 4);
    static const unsigned char v4[16] = {198, 51, 100, 7};
    ck_assert_int_eq(memcmp(c->recs[2].ip, v4, 16), 0);
    ck_assert_str_eq(c->recs[3].source_ip, "2001:db8:0:1::1");
}
END_TEST

START_TEST(invalid_ip_rejected) {
    tu_collect *c = tu_ingest_str(simple(REC_IP("192.0.2.300")));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "192.0.2.300");
    tu_assert_rejected(tu_ingest_str(simple(REC_IP("mail.example.com"))), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(simple(REC_IP("2001:db8:::1"))), DP_ERR_VALIDATE);
}
END_TEST

START_TEST(empty_source_ip_rejected) {
    tu_assert_rejected(tu_ingest_str(simple(REC_ROW("<source_ip/><count>1</count>"))), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(simple(REC_ROW("<source_ip>  </source_ip><count>1</count>"))),
                       DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(simple(REC_ROW("<count>1</count>"))), DP_ERR_VALIDATE);
}
END_TEST

START_TEST(count_is_u64) {
    tu_collect *c = tu_ingest_str(simple(REC_COUNT("18446744073709551615")));
    tu_assert_ok(c, 1, 1);
    ck_assert_uint_eq(c->recs[0].count, UINT64_MAX);
    ck_assert_uint_eq(c->res.messages, UINT64_MAX);
    ck_assert_uint_eq(c->reps[0].messages, UINT64_MAX);
    c = tu_ingest_str(simple(REC_COUNT("0")));
    tu_assert_ok(c, 1, 1);
    ck_assert_uint_eq(c->recs[0].count, 0);
}
END_TEST

START_TEST(count_overflow_rejected) {
    tu_collect *c = tu_ingest_str(simple(REC_COUNT("18446744073709551616")));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "count");
}
END_TEST

START_TEST(count_sum_overflow_rejected) {
    tu_collect *c = tu_ingest_str(simple(REC_COUNT("18446744073709551615") REC_COUNT("1")));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "overflow");
    ck_assert_uint_eq(c->n_recs, 1); /* the first record was delivered, then discarded */
    ck_assert_int_eq(c->recs[0].discarded, 1);
}
END_TEST

START_TEST(count_not_integer_rejected) {
    tu_assert_rejected(tu_ingest_str(simple(REC_COUNT("3.0"))), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(simple(REC_COUNT("-1"))), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(simple(REC_COUNT("ten"))), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(simple(REC_COUNT("1e3"))), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(simple(REC_COUNT(""))), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(simple(REC_ROW("<source_ip>192.0.2.1</source_ip>"))), DP_ERR_VALIDATE);
}
END_TEST

/* ---- dates and ids ------------------------------------------------------------------------- */

static const char *with_dates(const char *date_range) {
    return doc(NULL, "1.0",
               tu_printf("<org_name>o</org_name><report_id>r</report_id>%s", date_range), POLICY,
               REC_IP("192.0.2.1"));
}

START_TEST(dates_are_unix_seconds) {
    tu_collect *c = tu_ingest_str(with_dates("<date_range><begin> 1700000000 </begin><end>1700604799</end></date_range>"));
    tu_assert_ok(c, 1, 1);
    ck_assert_int_eq(c->reps[0].begin, 1700000000);
    ck_assert_int_eq(c->reps[0].end, 1700604799); /* a 7-day range is fine */
    c = tu_ingest_str(with_dates("<date_range><begin>1700000005</begin><end>1700000005</end></date_range>"));
    tu_assert_ok(c, 1, 1);
    /* a '+' is refused, as it is in a count */
    c = tu_ingest_str(with_dates("<date_range><begin>+1700000000</begin><end>1700000001</end></date_range>"));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "not an integer");
}
END_TEST

START_TEST(dates_outside_1990_to_2100_rejected) {
    /* the bounds themselves are fine */
    tu_assert_ok(tu_ingest_str(with_dates("<date_range><begin>631152000</begin><end>631238400</end></date_range>")), 1, 1);
    tu_assert_ok(tu_ingest_str(with_dates("<date_range><begin>4102358400</begin><end>4102444800</end></date_range>")),
                 1, 1);
    const char *bad[] = {
        "<date_range><begin>631151999</begin><end>631238400</end></date_range>",
        "<date_range><begin>4102358400</begin><end>4102444801</end></date_range>",
        "<date_range><begin>0</begin><end>0</end></date_range>",
        "<date_range><begin>-86400</begin><end>0</end></date_range>",
        /* begin = end = 2^63 - 1: once spread over windows, an overflow */
        "<date_range><begin>9223372036854775807</begin><end>9223372036854775807</end></date_range>",
        "<date_range><begin>9223372036854700000</begin><end>9223372036854775807</end></date_range>",
        "<date_range><begin>-9223372036854775808</begin><end>1700000000</end></date_range>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_collect *c = tu_ingest_str(with_dates(bad[i]));
        tu_assert_rejected(c, DP_ERR_VALIDATE);
        ck_assert_msg(strstr(c->err.msg, "1990") || strstr(c->err.msg, "2100"), "%s: %s", bad[i], c->err.msg);
    }
}
END_TEST

START_TEST(begin_after_end_rejected) {
    tu_collect *c = tu_ingest_str(with_dates("<date_range><begin>1700086400</begin><end>1700000000</end></date_range>"));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "begin");
}
END_TEST

START_TEST(range_over_31_days_rejected) {
    /* a week, and 31 days to the second, pass */
    tu_assert_ok(tu_ingest_str(with_dates("<date_range><begin>1700000000</begin><end>1700604800</end></date_range>")), 1, 1);
    tu_assert_ok(tu_ingest_str(with_dates("<date_range><begin>1700000000</begin><end>1702678400</end></date_range>")), 1, 1);
    /* a second more, three years (seen in a parser's test data), a century */
    const char *bad[] = {
        "<date_range><begin>1700000000</begin><end>1702678401</end></date_range>",
        "<date_range><begin>1508846302</begin><end>1603540702</end></date_range>",
        "<date_range><begin>631152000</begin><end>3786912000</end></date_range>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_collect *c = tu_ingest_str(with_dates(bad[i]));
        tu_assert_rejected(c, DP_ERR_VALIDATE);
        tu_assert_contains(c->err.msg, "spans");
    }
    /* the cap is a limit: a caller may raise it */
    dp_ingest_limits lim;
    dp_ingest_limits_default(&lim);
    lim.max_range_seconds = (int64_t)1100 * 86400;
    const char *text = with_dates(bad[1]);
    tu_collect *c = tu_ingest_mem(&lim, "test.xml", text, strlen(text));
    tu_assert_ok(c, 1, 1);
}
END_TEST

START_TEST(missing_date_range_rejected) {
    tu_assert_rejected(tu_ingest_str(with_dates("")), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(with_dates("<date_range><begin>1</begin></date_range>")), DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(with_dates("<date_range><begin>1</begin><end>soon</end></date_range>")),
                       DP_ERR_VALIDATE);
    tu_assert_rejected(tu_ingest_str(with_dates("<date_range><begin>2024-01-01</begin><end>2</end></date_range>")),
                       DP_ERR_VALIDATE);
    /* and in a report with no records, where the check runs at </feedback> */
    tu_assert_rejected(tu_ingest_str(doc(NULL, "1.0", "<org_name>o</org_name><report_id>r</report_id>", POLICY, "")),
                       DP_ERR_VALIDATE);
}
END_TEST

START_TEST(report_id_angle_brackets_stripped) {
    const char *meta = "<org_name>o</org_name><report_id> &lt;abc@host&gt; </report_id>"
                       "<date_range><begin>1700000000</begin><end>1700000001</end></date_range>";
    tu_collect *c = tu_ingest_str(doc(NULL, "1.0", meta, POLICY, REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    tu_assert_str(c->reps[0].report_id, "abc@host");
    tu_assert_str(c->recs[0].report_id, "abc@host");
    /* CDATA form, and an id that only starts with '<' is left alone */
    meta = "<org_name>o</org_name><report_id><![CDATA[<abc@host>]]></report_id>"
           "<date_range><begin>1700000000</begin><end>1700000001</end></date_range>";
    c = tu_ingest_str(doc(NULL, "1.0", meta, POLICY, REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    tu_assert_str(c->reps[0].report_id, "abc@host");
    meta = "<org_name>o</org_name><report_id>&lt;abc</report_id>"
           "<date_range><begin>1700000000</begin><end>1700000001</end></date_range>";
    c = tu_ingest_str(doc(NULL, "1.0", meta, POLICY, REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    tu_assert_str(c->reps[0].report_id, "<abc");
}
END_TEST

START_TEST(pct_not_integer_has_no_pct) {
    static const char *const bad[] = {"50.5", "abc", "150", "-1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_collect *c = tu_ingest_str(doc(NULL, "1.0", META,
                                          tu_printf("<domain>example.com</domain><p>none</p><pct>%s</pct>", bad[i]),
                                          REC_IP("192.0.2.1")));
        tu_assert_ok(c, 1, 1);
        ck_assert_msg(c->reps[0].has_pct == 0, "pct '%s' gave has_pct 1", bad[i]);
    }
    tu_collect *c = tu_ingest_str(doc(NULL, "1.0", META, "<domain>example.com</domain><pct> 0 </pct>",
                                      REC_IP("192.0.2.1")));
    tu_assert_ok(c, 1, 1);
    ck_assert_int_eq(c->reps[0].has_pct, 1);
    ck_assert_uint_eq(c->reps[0].pct, 0);
}
END_TEST

/* ---- the report contract ------------------------------------------------------------------- */

START_TEST(records_emitted_in_order) {
    tu_collect *c = tu_ingest_str(simple(REC_ROW("<source_ip>192.0.2.1</source_ip><count>1</count>")
                                         REC_ROW("<source_ip>192.0.2.2</source_ip><count>10</count>")
                                         REC_ROW("<source_ip>192.0.2.3</source_ip><count>100</count>")));
    tu_assert_ok(c, 1, 3);
    ck_assert_str_eq(c->events, "rrrD");
    for (size_t i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof want, "192.0.2.%zu", i + 1);
        ck_assert_str_eq(c->recs[i].source_ip, want);
        ck_assert_uint_eq(c->recs[i].rep_records, i + 1); /* rep->records: so far */
    }
    ck_assert_uint_eq(c->recs[0].rep_messages, 1);
    ck_assert_uint_eq(c->recs[1].rep_messages, 11);
    ck_assert_uint_eq(c->recs[2].rep_messages, 111);
    ck_assert_uint_eq(c->res.messages, 111);
    ck_assert_uint_eq(c->reps[0].records, 3);
    ck_assert_uint_eq(c->reps[0].messages, 111);
    ck_assert_uint_eq(c->reps[0].xml_bytes, strlen(simple(REC_ROW("<source_ip>192.0.2.1</source_ip><count>1</count>")
                                         REC_ROW("<source_ip>192.0.2.2</source_ip><count>10</count>")
                                         REC_ROW("<source_ip>192.0.2.3</source_ip><count>100</count>"))));
}
END_TEST

START_TEST(report_failing_after_records_counts_nothing) {
    tu_collect *c = tu_ingest_str(simple(REC_IP("192.0.2.1") REC_IP("192.0.2.2") REC_IP("not-an-ip")
                                             REC_IP("192.0.2.4")));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    ck_assert_str_eq(c->events, "rrF");
    ck_assert_int_eq(c->fails[0].had_report, 1);
    ck_assert_uint_eq(c->fails[0].rep_records, 2);
    ck_assert_uint_eq(c->res.rejected, 1);
    ck_assert_int_eq(c->recs[0].discarded, 1);
    ck_assert_int_eq(c->recs[1].discarded, 1);
    tu_assert_contains(c->err.msg, "record 3");
    ck_assert_int_eq(c->err.has_offset, 1);
    ck_assert_str_eq(c->err.where, "test.xml");
}
END_TEST

START_TEST(truncated_document_after_records_counts_nothing) {
    const char *full = simple(REC_IP("192.0.2.1") REC_IP("192.0.2.2"));
    const char *cut = strstr(full, "</feedback>");
    ck_assert_ptr_nonnull(cut);
    tu_collect *c = tu_ingest_mem(NULL, "cut.xml", full, (size_t)(cut - full));
    tu_assert_rejected(c, DP_ERR_XML);
    ck_assert_str_eq(c->events, "rrF");
    ck_assert_uint_eq(c->fails[0].rep_records, 2);
}
END_TEST

START_TEST(failure_before_records_has_no_report) {
    tu_collect *c = tu_ingest_str("<feedback><report_metadata><org_name>");
    tu_assert_rejected(c, DP_ERR_XML);
    ck_assert_str_eq(c->events, "F");
    ck_assert_int_eq(c->fails[0].had_report, 0);
}
END_TEST

START_TEST(handler_stop_fails_report) {
    const char *d = simple(REC_IP("192.0.2.1") REC_IP("192.0.2.2") REC_IP("192.0.2.3"));
    tu_collect *c = tu_collect_new();
    c->stop_at_record = 2;
    dp_ingest_global_init();
    c->rc = dp_ingest_memory(NULL, "stop.xml", d, strlen(d), &tu_handler, c, &c->res, &c->err);
    tu_assert_rejected(c, DP_ERR_HANDLER);
    ck_assert_str_eq(c->events, "rrF");

    c = tu_collect_new();
    c->refuse_reports = 1;
    c->rc = dp_ingest_memory(NULL, "refuse.xml", d, strlen(d), &tu_handler, c, &c->res, &c->err);
    ck_assert_int_eq(c->rc, -1);
    ck_assert_str_eq(c->events, "rrrDF");
    ck_assert_int_eq(c->err.kind, DP_ERR_HANDLER);
    ck_assert_uint_eq(c->res.reports, 0);
    ck_assert_uint_eq(c->res.records, 0);
}
END_TEST


/* ---- section order ------------------------------------------------------------------------- */

#define O_META "<report_metadata>" META "<error>dns timeout</error></report_metadata>\n"
#define O_POLICY                                                                                  \
    "<policy_published><domain>example.com</domain><adkim>r</adkim><p>none</p><pct>100</pct>"     \
    "</policy_published>\n"
#define O_RECS                                                                                    \
    REC_ROW("<source_ip>192.0.2.1</source_ip><count>1</count>")                                   \
    "<record><row><source_ip>2001:db8::5</source_ip><count>20</count><policy_evaluated>"          \
    "<disposition>quarantine</disposition><dkim>fail</dkim><spf>pass</spf>"                       \
    "<reason><type>forwarded</type><comment>list</comment></reason></policy_evaluated></row>"     \
    "<identifiers><envelope_from>bounce.example.com</envelope_from>"                              \
    "<header_from>example.com</header_from></identifiers>"                                        \
    "<auth_results><dkim><domain>esp.example</domain><selector>s1</selector><result>fail</result>" \
    "<human_result>bad</human_result></dkim><spf><domain>bounce.example.com</domain>"             \
    "<scope>mfrom</scope><result>pass</result></spf></auth_results></record>\n"                   \
    REC_ROW("<source_ip>192.0.2.3</source_ip><count>300</count>")

/* A report whose <feedback> holds these sections (NULL: none) in this order. */
static const char *ordered(const char *a, const char *b, const char *c, const char *d) {
    return tu_printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<version>1.0</version>\n"
                     "%s%s%s%s</feedback>\n",
                     a ? a : "", b ? b : "", c ? c : "", d ? d : "");
}

#define SAME_STR(a, b) tu_assert_str((a), (b))

/* Everything the handler saw, report and records, is the same. */
static void assert_same_outcome(const tu_collect *a, const tu_collect *b) {
    ck_assert_int_eq(a->rc, b->rc);
    ck_assert_uint_eq(a->res.reports, b->res.reports);
    ck_assert_uint_eq(a->res.records, b->res.records);
    ck_assert_uint_eq(a->res.messages, b->res.messages);
    ck_assert_uint_eq(a->res.rejected, b->res.rejected);
    ck_assert_uint_eq(a->res.skipped, b->res.skipped);
    ck_assert_str_eq(a->events, b->events);
    ck_assert_uint_eq(a->n_reps, b->n_reps);
    for (size_t i = 0; i < a->n_reps; i++) {
        const tu_report *x = &a->reps[i], *y = &b->reps[i];
        SAME_STR(x->part, y->part);
        SAME_STR(x->org_name, y->org_name);
        SAME_STR(x->email, y->email);
        SAME_STR(x->extra_contact_info, y->extra_contact_info);
        SAME_STR(x->report_id, y->report_id);
        SAME_STR(x->generator, y->generator);
        SAME_STR(x->version, y->version);
        ck_assert_int_eq(x->begin, y->begin);
        ck_assert_int_eq(x->end, y->end);
        ck_assert_uint_eq(x->n_errors, y->n_errors);
        for (size_t k = 0; k < x->n_errors; k++) SAME_STR(x->errors[k], y->errors[k]);
        ck_assert_int_eq(x->schema, y->schema);
        SAME_STR(x->domain, y->domain);
        SAME_STR(x->adkim, y->adkim);
        SAME_STR(x->aspf, y->aspf);
        SAME_STR(x->p, y->p);
        SAME_STR(x->sp, y->sp);
        SAME_STR(x->np, y->np);
        SAME_STR(x->fo, y->fo);
        SAME_STR(x->testing, y->testing);
        SAME_STR(x->discovery_method, y->discovery_method);
        SAME_STR(x->psd, y->psd);
        ck_assert_int_eq(x->has_pct, y->has_pct);
        ck_assert_uint_eq(x->pct, y->pct);
        ck_assert_uint_eq(x->records, y->records);
        ck_assert_uint_eq(x->messages, y->messages);
    }
    ck_assert_uint_eq(a->n_recs, b->n_recs);
    for (size_t i = 0; i < a->n_recs; i++) {
        const tu_record *x = &a->recs[i], *y = &b->recs[i];
        SAME_STR(x->org_name, y->org_name);
        SAME_STR(x->report_id, y->report_id);
        SAME_STR(x->part, y->part);
        ck_assert_uint_eq(x->rep_records, y->rep_records);
        ck_assert_uint_eq(x->rep_messages, y->rep_messages);
        ck_assert_str_eq(x->source_ip, y->source_ip);
        ck_assert_int_eq(x->ip_family, y->ip_family);
        ck_assert_int_eq(memcmp(x->ip, y->ip, sizeof x->ip), 0);
        ck_assert_uint_eq(x->count, y->count);
        SAME_STR(x->disposition, y->disposition);
        SAME_STR(x->dkim, y->dkim);
        SAME_STR(x->spf, y->spf);
        SAME_STR(x->header_from, y->header_from);
        SAME_STR(x->envelope_from, y->envelope_from);
        SAME_STR(x->envelope_to, y->envelope_to);
        ck_assert_uint_eq(x->n_overrides, y->n_overrides);
        for (size_t k = 0; k < x->n_overrides; k++) {
            SAME_STR(x->ov[k].type, y->ov[k].type);
            SAME_STR(x->ov[k].comment, y->ov[k].comment);
        }
        ck_assert_uint_eq(x->n_dkim, y->n_dkim);
        ck_assert_uint_eq(x->n_spf, y->n_spf);
        for (size_t k = 0; k < x->n_dkim + x->n_spf; k++) {
            const tu_auth *p = k < x->n_dkim ? &x->dk[k] : &x->sp[k - x->n_dkim];
            const tu_auth *q = k < y->n_dkim ? &y->dk[k] : &y->sp[k - y->n_dkim];
            SAME_STR(p->domain, q->domain);
            SAME_STR(p->selector_or_scope, q->selector_or_scope);
            SAME_STR(p->result, q->result);
            SAME_STR(p->human_result, q->human_result);
        }
        ck_assert_int_eq(x->discarded, y->discarded);
    }
}

/* tu_handler plus report_begin(), which notes 'B' in the events, keeps
 * what it saw, and answers `answer`. */
typedef struct begin_collect {
    tu_collect c; /* first: tu_handler's callbacks get the same pointer */
    int answer;
    char org_name[64], domain[64];
    uint64_t records_then;
} begin_collect;

static int on_begin(void *ctx, const dp_report *rep) {
    begin_collect *b = ctx;
    tu_collect *c = &b->c;
    if (c->n_events + 1 < sizeof c->events) {
        c->events[c->n_events++] = 'B';
        c->events[c->n_events] = '\0';
    }
    snprintf(b->org_name, sizeof b->org_name, "%s", rep->org_name ? rep->org_name : "-");
    snprintf(b->domain, sizeof b->domain, "%s", rep->policy.domain ? rep->policy.domain : "-");
    b->records_then = rep->records;
    return b->answer;
}

static begin_collect *ingest_begin(const char *d, int answer) {
    begin_collect *b = tu_keep(calloc(1, sizeof *b));
    b->answer = answer;
    dp_report_handler h = tu_handler;
    h.report_begin = on_begin;
    dp_ingest_global_init();
    b->c.rc = dp_ingest_memory(NULL, "test.xml", d, strlen(d), &h, &b->c, &b->c.res, &b->c.err);
    return b;
}

START_TEST(policy_after_records_same_as_usual_order) {
    tu_collect *usual = tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, NULL));
    tu_assert_ok(usual, 1, 3);
    ck_assert_str_eq(usual->events, "rrrD");
    tu_collect *late = tu_ingest_str(ordered(O_META, O_RECS, O_POLICY, NULL));
    tu_assert_ok(late, 1, 3);
    assert_same_outcome(late, usual);
    tu_assert_str(late->reps[0].p, "none");
    ck_assert_uint_eq(late->res.messages, 321);
    /* report_begin() comes first, with the whole header, once */
    begin_collect *b = ingest_begin(ordered(O_META, O_RECS, O_POLICY, NULL), 0);
    ck_assert_str_eq(b->c.events, "BrrrD");
    ck_assert_str_eq(b->org_name, "Example Org");
    ck_assert_str_eq(b->domain, "example.com");
    ck_assert_uint_eq(b->records_then, 0);
    assert_same_outcome(&ingest_begin(ordered(O_META, O_POLICY, O_RECS, NULL), 0)->c, &b->c);
}
END_TEST

START_TEST(metadata_after_records_same_as_usual_order) {
    tu_collect *usual = tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, NULL));
    tu_collect *late = tu_ingest_str(ordered(O_POLICY, O_RECS, O_META, NULL));
    tu_assert_ok(late, 1, 3);
    assert_same_outcome(late, usual);
    tu_assert_str(late->reps[0].org_name, "Example Org");
    ck_assert_uint_eq(late->reps[0].n_errors, 1);
    /* and with no <policy_published> at all, as a report with its metadata
     * first and no policy is taken: the records go at </feedback> */
    tu_collect *nopol = tu_ingest_str(ordered(O_META, O_RECS, NULL, NULL));
    tu_assert_ok(nopol, 1, 3);
    tu_collect *nopol_late = tu_ingest_str(ordered(O_RECS, O_META, NULL, NULL));
    assert_same_outcome(nopol_late, nopol);
    tu_assert_str(nopol_late->reps[0].domain, NULL);
}
END_TEST

START_TEST(both_after_records_same_as_usual_order) {
    tu_collect *usual = tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, NULL));
    assert_same_outcome(tu_ingest_str(ordered(O_RECS, O_META, O_POLICY, NULL)), usual);
    assert_same_outcome(tu_ingest_str(ordered(O_RECS, O_POLICY, O_META, NULL)), usual);
    /* records on both sides of the header */
    const char *split = ordered(REC_ROW("<source_ip>192.0.2.1</source_ip><count>1</count>"), O_POLICY, O_META,
                                strstr(O_RECS, "<record><row><source_ip>2001"));
    assert_same_outcome(tu_ingest_str(split), usual);
    begin_collect *b = ingest_begin(split, 0);
    ck_assert_str_eq(b->c.events, "BrrrD");
}
END_TEST

START_TEST(no_metadata_anywhere_rejected) {
    tu_collect *c = tu_ingest_str(ordered(O_RECS, O_POLICY, NULL, NULL));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "no <report_metadata>");
    ck_assert_str_eq(c->events, "F"); /* the held records never left */
    ck_assert_int_eq(c->fails[0].had_report, 0);
}
END_TEST

START_TEST(header_checked_when_it_comes_late) {
    const char *bad = "<report_metadata><org_name>o</org_name><report_id>r</report_id>"
                      "<date_range><begin>1700086400</begin><end>1700000000</end></date_range></report_metadata>";
    tu_collect *c = tu_ingest_str(ordered(O_RECS, bad, O_POLICY, NULL));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "begin");
    ck_assert_str_eq(c->events, "F");
}
END_TEST

START_TEST(held_record_validated_as_it_closes) {
    /* the same record number, and nothing handed out */
    tu_collect *c = tu_ingest_str(ordered(REC_IP("192.0.2.1") REC_IP("not-an-ip") REC_IP("192.0.2.3"), O_META,
                                          O_POLICY, NULL));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "record 2");
    tu_assert_contains(c->err.msg, "not-an-ip");
    ck_assert_int_eq(c->err.has_offset, 1);
    ck_assert_str_eq(c->events, "F");
    ck_assert_uint_eq(c->n_recs, 0);
    /* the sum of counts too */
    c = tu_ingest_str(ordered(REC_COUNT("18446744073709551615") REC_COUNT("1"), O_META, O_POLICY, NULL));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "record 2");
    tu_assert_contains(c->err.msg, "overflow");
}
END_TEST

START_TEST(truncated_while_records_held_delivers_nothing) {
    const char *full = ordered(O_RECS, O_META, O_POLICY, NULL);
    const char *cut = strstr(full, "<policy_published>");
    tu_collect *c = tu_ingest_mem(NULL, "cut.xml", full, (size_t)(cut - full));
    tu_assert_rejected(c, DP_ERR_XML);
    ck_assert_str_eq(c->events, "F");
    ck_assert_uint_eq(c->n_recs, 0);
    ck_assert_int_eq(c->fails[0].had_report, 0);
    begin_collect *b = ingest_begin(tu_printf("%.*s", (int)(cut - full), full), 0);
    ck_assert_str_eq(b->c.events, "F"); /* not even report_begin() */
    /* cut after the header completed: records were handed out, then discarded */
    cut = strstr(full, "</feedback>");
    c = tu_ingest_mem(NULL, "cut.xml", full, (size_t)(cut - full));
    tu_assert_rejected(c, DP_ERR_XML);
    ck_assert_str_eq(c->events, "rrrF");
    ck_assert_int_eq(c->recs[2].discarded, 1);
}
END_TEST

START_TEST(skip_after_holding_delivers_nothing) {
    begin_collect *usual = ingest_begin(ordered(O_META, O_POLICY, O_RECS, NULL), DP_REPORT_SKIP);
    ck_assert_str_eq(usual->c.events, "B");
    ck_assert_uint_eq(usual->c.res.skipped, 1);
    const char *orders[][3] = {{O_META, O_RECS, O_POLICY}, {O_RECS, O_POLICY, O_META}, {O_RECS, O_META, NULL}};
    for (size_t i = 0; i < sizeof orders / sizeof *orders; i++) {
        begin_collect *b = ingest_begin(ordered(orders[i][0], orders[i][1], orders[i][2], NULL), DP_REPORT_SKIP);
        assert_same_outcome(&b->c, &usual->c);
        ck_assert_uint_eq(b->c.n_recs, 0);
        ck_assert_uint_eq(b->c.res.skipped, 1);
        ck_assert_uint_eq(b->c.res.reports, 0);
        ck_assert_uint_eq(b->c.res.rejected, 0);
    }
    /* a consumer that refuses the report fails it, with nothing handed out */
    begin_collect *b = ingest_begin(ordered(O_META, O_RECS, O_POLICY, NULL), 7);
    ck_assert_str_eq(b->c.events, "BF");
    ck_assert_int_eq(b->c.err.kind, DP_ERR_HANDLER);
    ck_assert_uint_eq(b->c.n_recs, 0);
}
END_TEST

START_TEST(handler_stop_while_releasing_fails_report) {
    const char *d = ordered(O_RECS, O_META, O_POLICY, NULL);
    tu_collect *c = tu_collect_new();
    c->stop_at_record = 2;
    dp_ingest_global_init();
    c->rc = dp_ingest_memory(NULL, "stop.xml", d, strlen(d), &tu_handler, c, &c->res, &c->err);
    tu_assert_rejected(c, DP_ERR_HANDLER);
    ck_assert_str_eq(c->events, "rrF");
    ck_assert_uint_eq(c->fails[0].rep_records, 2);
}
END_TEST

START_TEST(two_different_policies_rejected) {
    const char *other = "<policy_published><domain>example.com</domain><adkim>r</adkim><p>reject</p><pct>100</pct>"
                        "</policy_published>\n";
    const char *docs[] = {
        ordered(O_META, O_POLICY, O_RECS, other),
        ordered(O_META, O_RECS, O_POLICY, other),
        ordered(O_META, O_POLICY, other, O_RECS),
        ordered(O_RECS, other, O_META, O_POLICY),
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        tu_collect *c = tu_ingest_str(docs[i]);
        tu_assert_rejected(c, DP_ERR_VALIDATE);
        tu_assert_contains(c->err.msg, "two different <policy_published> blocks");
        tu_assert_contains(c->err.msg, "<p>");
        ck_assert_ptr_null(strpbrk(c->err.msg, "\r\n"));
        ck_assert_uint_eq(tu_committed_records(c), 0);
    }
    /* a field present in one only is a difference too */
    const char *less = "<policy_published><domain>example.com</domain><adkim>r</adkim><p>none</p>"
                       "</policy_published>\n";
    tu_collect *c = tu_ingest_str(ordered(O_META, O_RECS, O_POLICY, less));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "<pct>");
    tu_assert_contains(c->err.msg, "absent");
}
END_TEST

START_TEST(two_different_metadata_rejected) {
    const char *other_id = "<report_metadata><org_name>Example Org</org_name><email>dmarc@example.org</email>"
                           "<report_id>r2</report_id><date_range><begin>1700000000</begin><end>1700086399</end>"
                           "</date_range><error>dns timeout</error></report_metadata>\n";
    tu_collect *c = tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, other_id));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "two different <report_metadata> blocks");
    tu_assert_contains(c->err.msg, "report_id");
    c = tu_ingest_str(ordered(O_RECS, O_META, other_id, O_POLICY));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    ck_assert_str_eq(c->events, "F");
    /* only the errors differ */
    const char *other_errors = "<report_metadata>" META "<error>another</error></report_metadata>\n";
    c = tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, other_errors));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "<error>");
}
END_TEST

START_TEST(identical_sections_accepted_as_one) {
    tu_collect *usual = tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, NULL));
    assert_same_outcome(tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, O_POLICY)), usual);
    assert_same_outcome(tu_ingest_str(ordered(O_META, O_POLICY, O_POLICY, O_RECS)), usual);
    assert_same_outcome(tu_ingest_str(ordered(O_RECS, O_POLICY, O_META, O_POLICY)), usual);
    /* the metadata twice: its errors are not doubled */
    tu_collect *c = tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, O_META));
    assert_same_outcome(c, usual);
    ck_assert_uint_eq(c->reps[0].n_errors, 1);
    c = tu_ingest_str(ordered(O_RECS, O_META, O_META, O_POLICY));
    assert_same_outcome(c, usual);
    /* the same values, written differently (space, case of an enumeration) */
    const char *spaced = "<policy_published> <domain> example.com </domain><adkim>R</adkim><p> None </p>"
                         "<pct>100</pct><x-vendor>ignored</x-vendor></policy_published>\n";
    assert_same_outcome(tu_ingest_str(ordered(O_META, O_POLICY, O_RECS, spaced)), usual);
    /* a thousand copies cost no memory and hit no limit */
    dp_buf many = DP_BUF_INIT;
    for (int i = 0; i < 1000; i++) dp_buf_puts(&many, O_POLICY O_META);
    ck_assert(!many.failed);
    const char *d = ordered(O_RECS, many.data, NULL, NULL);
    dp_buf_free(&many);
    dp_ingest_limits lim = limits();
    lim.max_record_bytes = 4096;
    c = tu_ingest_mem(&lim, "test.xml", d, strlen(d));
    tu_assert_ok(c, 1, 3);
    ck_assert_uint_eq(c->reps[0].n_errors, 1);
}
END_TEST

/* A consumer that only counts, and checks that the i-th record is the one
 * big_report() wrote i-th, handed out after report_begin(). */
typedef struct count_ctx {
    uint64_t begins, records, messages, dones, fails;
    int wrong;
    char sha256[65];
    dp_error err;
} count_ctx;

static int count_begin(void *ctx, const dp_report *rep) {
    count_ctx *c = ctx;
    c->begins++;
    if (rep->records != 0 || !rep->policy.domain || !rep->org_name) c->wrong = 1;
    return 0;
}

static int count_record(void *ctx, const dp_report *rep, const dp_record *rec) {
    count_ctx *c = ctx;
    uint64_t i = c->records++;
    char want[DP_IP_STRLEN];
    snprintf(want, sizeof want, "10.%u.%u.%u", (unsigned)(i >> 16) & 255, (unsigned)(i >> 8) & 255, (unsigned)i & 255);
    if (c->begins != 1 || strcmp(rec->source_ip, want) != 0 || rec->count != i + 1 || rep->records != i + 1 ||
        rec->n_dkim_auth != 1 || rec->n_spf_auth != 1 || !rec->spf_auth[0].domain ||
        strcmp(rec->spf_auth[0].domain, "mail.example.com") != 0 || !rep->policy.domain)
        c->wrong = 1;
    c->messages += rec->count;
    return 0;
}

static int count_done(void *ctx, const dp_report *rep) {
    count_ctx *c = ctx;
    c->dones++;
    if (rep->records != c->records || rep->messages != c->messages) c->wrong = 1;
    snprintf(c->sha256, sizeof c->sha256, "%s", rep->sha256 ? rep->sha256 : "");
    return 0;
}

static void count_failed(void *ctx, const dp_report *rep, const dp_error *err) {
    (void)rep;
    count_ctx *c = ctx;
    if (c->fails++ == 0) c->err = *err;
}

static const dp_report_handler COUNT = {count_begin, count_record, count_done, count_failed};

/* n records, the i-th from 10.x.y.z (i in the low 24 bits) with count
 * i + 1; the metadata first, and the policy first or last. */
static const char *big_report(size_t n, int policy_last) {
    dp_buf b = DP_BUF_INIT;
    dp_buf_puts(&b, "<?xml version=\"1.0\"?>\n<feedback>\n" O_META);
    if (!policy_last) dp_buf_puts(&b, O_POLICY);
    for (size_t i = 0; i < n; i++)
        dp_buf_printf(&b,
                      " <record><row><source_ip>10.%zu.%zu.%zu</source_ip><count>%zu</count><policy_evaluated>"
                      "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>"
                      "<identifiers><header_from>example.com</header_from></identifiers><auth_results><dkim>"
                      "<domain>example.com</domain><selector>s1</selector><result>pass</result></dkim><spf>"
                      "<domain>mail.example.com</domain><result>fail</result></spf></auth_results></record>\n",
                      (i >> 16) & 255, (i >> 8) & 255, i & 255, i + 1);
    if (policy_last) dp_buf_puts(&b, O_POLICY);
    dp_buf_puts(&b, "</feedback>\n");
    ck_assert(!b.failed);
    return tu_keep(b.data);
}

static count_ctx *count_ingest(const dp_ingest_limits *lim, const char *d) {
    count_ctx *c = tu_keep(calloc(1, sizeof *c));
    dp_ingest_result res;
    dp_error err;
    dp_ingest_global_init();
    int rc = dp_ingest_memory(lim, "big.xml", d, strlen(d), &COUNT, c, &res, &err);
    if (rc != 0 && c->fails == 0) c->err = err;
    ck_assert_uint_eq(res.records, rc == 0 ? c->records : 0);
    return c;
}

#define BIG_RECORDS 20000 /* about 8 MB of XML, 3.5 MB held: past the 1 MiB kept in memory */

START_TEST(many_records_before_policy_spill_and_arrive_in_order) {
    const char *usual = big_report(BIG_RECORDS, 0), *late = big_report(BIG_RECORDS, 1);
    ck_assert_uint_eq(strlen(usual), strlen(late));
    dp_ingest_limits lim = limits();
    lim.compute_sha256 = 1;
    count_ctx *a = count_ingest(&lim, usual);
    count_ctx *b = count_ingest(&lim, late);
    for (int k = 0; k < 2; k++) {
        count_ctx *c = k ? b : a;
        ck_assert_msg(c->fails == 0, "%s", c->err.msg);
        ck_assert_int_eq(c->wrong, 0);
        ck_assert_uint_eq(c->begins, 1);
        ck_assert_uint_eq(c->dones, 1);
        ck_assert_uint_eq(c->records, BIG_RECORDS);
        ck_assert_uint_eq(c->messages, (uint64_t)BIG_RECORDS * (BIG_RECORDS + 1) / 2);
    }
    /* with the reader thread (it owns the stream and the hash meanwhile):
     * the same records and the same hash */
    lim.readahead_after = 64 * 1024;
    count_ctx *r = count_ingest(&lim, late);
    ck_assert_msg(r->fails == 0, "%s", r->err.msg);
    ck_assert_int_eq(r->wrong, 0);
    ck_assert_uint_eq(r->records, BIG_RECORDS);
    ck_assert_str_eq(r->sha256, b->sha256);
    ck_assert_uint_eq(strlen(b->sha256), 64);
}
END_TEST

START_TEST(spill_file_that_cannot_be_made_fails_the_report) {
    /* the spill is what a temporary directory that does not exist breaks:
     * the big report fails (the run's fault, not the report's), the small
     * one, held in memory, does not */
    const char *old = getenv("TMPDIR");
    char *saved = old ? tu_keep(strdup(old)) : NULL;
    setenv("TMPDIR", tu_printf("%s/missing", tu_tmpdir()), 1);
    count_ctx *c = count_ingest(NULL, big_report(BIG_RECORDS, 1));
    ck_assert_uint_eq(c->fails, 1);
    ck_assert_int_eq(c->err.kind, DP_ERR_IO);
    ck_assert(dp_error_is_environmental(&c->err));
    tu_assert_contains(c->err.msg, "temporary file");
    ck_assert_uint_eq(c->begins, 0);
    ck_assert_uint_eq(c->records, 0);
    count_ctx *small = count_ingest(NULL, big_report(100, 1));
    ck_assert_uint_eq(small->fails, 0);
    ck_assert_uint_eq(small->records, 100);
    /* and the usual order never needs it */
    count_ctx *usual = count_ingest(NULL, big_report(BIG_RECORDS, 0));
    ck_assert_uint_eq(usual->fails, 0);
    ck_assert_uint_eq(usual->records, BIG_RECORDS);
    if (saved) setenv("TMPDIR", saved, 1);
    else unsetenv("TMPDIR");
}
END_TEST

START_TEST(hold_bounded_in_memory_unnamed_on_disk) {
    const char *dir = tu_tmpdir();
    const char *old = getenv("TMPDIR");
    char *saved = old ? tu_keep(strdup(old)) : NULL;
    setenv("TMPDIR", dir, 1);
    enum { MEM = 64 * 1024, N = 3000, BIG_AT = 1234 };
    char *huge = tu_keep(malloc(200 * 1024 + 1));
    memset(huge, 'h', 200 * 1024);
    huge[200 * 1024] = '\0';
    dp_record_hold h;
    dp_record_hold_init(&h, MEM);
    dp_error err;
    for (int i = 0; i < N; i++) {
        char ip[32], hf[32];
        snprintf(ip, sizeof ip, "10.0.%d.%d", i >> 8, i & 255);
        snprintf(hf, sizeof hf, "d%d.example", i);
        dp_override ov[2] = {{"forwarded", i % 2 ? "c" : NULL}, {NULL, "x"}};
        dp_dkim_auth dk[1] = {{hf, "s1", "pass", NULL}};
        dp_spf_auth sp[2] = {{hf, "mfrom", "fail", "h"}, {NULL, NULL, NULL, NULL}};
        dp_record r;
        memset(&r, 0, sizeof r);
        snprintf(r.source_ip, sizeof r.source_ip, "%s", ip);
        r.ip_family = 4;
        r.ip[0] = 10;
        r.ip[3] = (unsigned char)i;
        r.count = (uint64_t)i * 1000003u;
        r.disposition = "none";
        r.header_from = hf;
        r.envelope_to = i == BIG_AT ? huge : NULL;
        r.overrides = ov;
        r.n_overrides = (size_t)(i % 3);
        r.dkim_auth = dk;
        r.n_dkim_auth = 1;
        r.spf_auth = sp;
        r.n_spf_auth = 2;
        ck_assert_msg(dp_record_hold_put(&h, &r, &err) == 0, "%s", err.msg);
        ck_assert_uint_le(h.buf.cap, i < BIG_AT ? MEM : 256 * 1024);
    }
    ck_assert_int_ge(h.fd, 0);
    ck_assert_uint_gt(h.spilled, 4 * MEM);
    /* the file has no name: nothing to clean up, whatever happens */
    int entries = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));) entries += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(entries, 0);
    ck_assert_int_eq(dp_record_hold_rewind(&h, &err), 0);
    dp_record r;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(dp_record_hold_next(&h, &r, &err), 1);
        char ip[32], hf[32];
        snprintf(ip, sizeof ip, "10.0.%d.%d", i >> 8, i & 255);
        snprintf(hf, sizeof hf, "d%d.example", i);
        ck_assert_str_eq(r.source_ip, ip);
        ck_assert_int_eq(r.ip_family, 4);
        ck_assert_uint_eq(r.ip[3], (unsigned char)i);
        ck_assert_uint_eq(r.count, (uint64_t)i * 1000003u);
        tu_assert_str(r.disposition, "none");
        tu_assert_str(r.dkim, NULL);
        tu_assert_str(r.header_from, hf);
        tu_assert_str(r.envelope_to, i == BIG_AT ? huge : NULL);
        ck_assert_uint_eq(r.n_overrides, (size_t)(i % 3));
        for (size_t k = 0; k < r.n_overrides; k++) {
            tu_assert_str(r.overrides[k].type, k ? NULL : "forwarded");
            tu_assert_str(r.overrides[k].comment, k ? "x" : i % 2 ? "c" : NULL);
        }
        ck_assert_uint_eq(r.n_dkim_auth, 1);
        tu_assert_str(r.dkim_auth[0].domain, hf);
        tu_assert_str(r.dkim_auth[0].selector, "s1");
        tu_assert_str(r.dkim_auth[0].human_result, NULL);
        ck_assert_uint_eq(r.n_spf_auth, 2);
        tu_assert_str(r.spf_auth[0].scope, "mfrom");
        tu_assert_str(r.spf_auth[0].human_result, "h");
        tu_assert_str(r.spf_auth[1].domain, NULL);
        if (i > BIG_AT + 1) ck_assert_uint_le(h.buf.cap, 256 * 1024);
    }
    ck_assert_int_eq(dp_record_hold_next(&h, &r, &err), 0);
    dp_record_hold_free(&h);
    ck_assert_int_eq(h.fd, -1);
    if (saved) setenv("TMPDIR", saved, 1);
    else unsetenv("TMPDIR");
}
END_TEST

/* ---- salvage rules -------------------------------------------------------------------------- */

START_TEST(whitespace_before_declaration_accepted) {
    tu_collect *c = tu_ingest_str(tu_printf("\r\n  \n\t%s", TU_SIMPLE));
    tu_assert_ok(c, 1, 1);
    c = tu_ingest_str(tu_printf("\xEF\xBB\xBF\n %s", TU_SIMPLE));
    tu_assert_ok(c, 1, 1);
}
END_TEST

START_TEST(unclosed_schema_wrapper_accepted) {
    const char *body = strstr(TU_TWO, "<feedback>");
    tu_collect *c = tu_ingest_str(tu_printf(
        "<?xml version=\"1.0\"?>\n<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n%s", body));
    tu_assert_ok(c, 1, 2);
    ck_assert_uint_eq(c->res.messages, 7);
    ck_assert_str_eq(c->recs[1].source_ip, "192.0.2.2");
    tu_assert_str(c->reps[0].org_name, "Example Org");
    /* closed, it is fine too */
    c = tu_ingest_str(tu_printf("<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">%s</xs:schema>", body));
    tu_assert_ok(c, 1, 2);
}
END_TEST

START_TEST(unclosed_schema_wrapper_with_truncated_feedback_rejected) {
    const char *body = strstr(TU_TWO, "<feedback>");
    const char *d = tu_printf("<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n%.*s",
                              (int)(strstr(body, "</feedback>") - body), body);
    tu_collect *c = tu_ingest_str(d);
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 0);
    ck_assert_uint_eq(c->res.records, 0);
}
END_TEST

/* ---- hostile XML -------------------------------------------------------------------------------- */

START_TEST(doctype_rejected) {
    tu_collect *c = tu_ingest_str(tu_printf("<?xml version=\"1.0\"?>\n<!DOCTYPE feedback>\n%s",
                                            strstr(TU_SIMPLE, "<feedback>")));
    tu_assert_rejected(c, DP_ERR_XML);
    tu_assert_contains(c->err.msg, "DOCTYPE");
}
END_TEST

START_TEST(internal_entity_rejected) {
    const char *d = "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n"
                    " <!ENTITY lol \"lol\">\n"
                    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
                    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
                    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
                    "]>\n<feedback><report_metadata><org_name>&lol3;</org_name><report_id>r</report_id>"
                    "<date_range><begin>1700000000</begin><end>1700000001</end></date_range></report_metadata>"
                    "<policy_published><domain>example.com</domain></policy_published>"
                    TU_REC("192.0.2.1", "1") "</feedback>";
    tu_collect *c = tu_ingest_str(d);
    tu_assert_rejected(c, DP_ERR_XML);
    ck_assert_uint_eq(c->n_recs, 0);
}
END_TEST

START_TEST(external_entity_rejected) {
    const char *dir = tu_tmpdir();
    const char *secret = tu_write_file(dir, "secret.txt", "TOPSECRET", 9);
    const char *d = tu_printf("<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n"
                              " <!ENTITY xxe SYSTEM \"file://%s\">\n]>\n"
                              "<feedback><report_metadata><org_name>&xxe;</org_name><report_id>r</report_id>"
                              "<date_range><begin>1700000000</begin><end>1700000001</end></date_range></report_metadata>"
                              "<policy_published><domain>example.com</domain></policy_published>"
                              TU_REC("192.0.2.1", "1") "</feedback>", secret);
    tu_collect *c = tu_ingest_str(d);
    tu_assert_rejected(c, DP_ERR_XML);
    ck_assert_uint_eq(c->n_recs, 0);
    ck_assert_ptr_null(strstr(c->err.msg, "TOPSECRET"));
    /* a parameter entity pulling an external DTD is refused as well */
    d = tu_printf("<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [<!ENTITY %% ext SYSTEM \"file://%s\"> %%ext;]>\n%s",
                  secret, strstr(TU_SIMPLE, "<feedback>"));
    tu_assert_rejected(tu_ingest_str(d), DP_ERR_XML);
}
END_TEST

START_TEST(invalid_utf8_rejected_as_xml_error) {
    const char *d = doc(NULL, "1.0",
                        "<org_name>bad \xC3\x28 byte</org_name><report_id>r</report_id>"
                        "<date_range><begin>1700000000</begin><end>1700000001</end></date_range>",
                        POLICY, REC_IP("192.0.2.1"));
    tu_collect *c = tu_ingest_str(d);
    tu_assert_rejected(c, DP_ERR_XML);
    ck_assert_int_eq(c->err.has_offset, 1);
    ck_assert_uint_eq(c->err.offset, (uint64_t)(strstr(d, "\xC3\x28") - d));
}
END_TEST

/* ---- limits ------------------------------------------------------------------------------------- */

START_TEST(depth_limit) {
    /* TU_SIMPLE nests 5 deep: feedback > record > auth_results > dkim > domain */
    dp_ingest_limits lim = limits();
    lim.max_xml_depth = 5;
    tu_assert_ok(tu_ingest_mem(&lim, "d5.xml", TU_SIMPLE, strlen(TU_SIMPLE)), 1, 1);
    lim.max_xml_depth = 4;
    tu_collect *c = tu_ingest_mem(&lim, "d4.xml", TU_SIMPLE, strlen(TU_SIMPLE));
    tu_assert_rejected(c, DP_ERR_LIMIT);
    tu_assert_contains(c->err.msg, "nesting");
}
END_TEST

START_TEST(depth_limit_default_in_unknown_elements) {
    char *deep = tu_keep(malloc(200 * 7 + 1));
    char *p = deep;
    for (int i = 0; i < 100; i++) p += sprintf(p, "<x>");
    for (int i = 0; i < 100; i++) p += sprintf(p, "</x>");
    tu_collect *c = tu_ingest_str(doc(NULL, "1.0", META, POLICY, tu_printf("%s%s", deep, REC_IP("192.0.2.1"))));
    tu_assert_rejected(c, DP_ERR_LIMIT);
}
END_TEST

START_TEST(text_limit) {
    dp_ingest_limits lim = limits();
    lim.max_text_bytes = 64;
    char org[66];
    memset(org, 'a', 64);
    org[64] = '\0';
    const char *d = doc(NULL, "1.0", tu_printf("<org_name>%s</org_name><report_id>r</report_id>"
                                                 "<date_range><begin>1700000000</begin><end>1700000001</end></date_range>", org),
                        POLICY, REC_IP("192.0.2.1"));
    tu_collect *c = tu_ingest_mem(&lim, "t64.xml", d, strlen(d));
    tu_assert_ok(c, 1, 1);
    ck_assert_uint_eq(strlen(c->reps[0].org_name), 64);
    org[64] = 'a';
    org[65] = '\0';
    d = doc(NULL, "1.0", tu_printf("<org_name>%s</org_name><report_id>r</report_id>"
                                   "<date_range><begin>1700000000</begin><end>1700000001</end></date_range>", org),
            POLICY, REC_IP("192.0.2.1"));
    c = tu_ingest_mem(&lim, "t65.xml", d, strlen(d));
    tu_assert_rejected(c, DP_ERR_LIMIT);
    /* text split by an entity reference still adds up */
    d = doc(NULL, "1.0", "<org_name>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&amp;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</org_name>"
                         "<report_id>r</report_id><date_range><begin>1700000000</begin><end>1700000001</end></date_range>",
            POLICY, REC_IP("192.0.2.1"));
    tu_assert_rejected(tu_ingest_mem(&lim, "tamp.xml", d, strlen(d)), DP_ERR_LIMIT);
    /* and text in elements nobody reads counts too */
    d = doc(NULL, "1.0", META "<vendor>" "0123456789012345678901234567890123456789012345678901234567890123456789"
                         "</vendor>", POLICY, REC_IP("192.0.2.1"));
    tu_assert_rejected(tu_ingest_mem(&lim, "tvendor.xml", d, strlen(d)), DP_ERR_LIMIT);
    /* Text straight inside a known container is not looked at (the parser
     * takes no text events there): it neither counts nor hides the leaves
     * around it, which are still read whole and held to the limit. */
    d = doc(NULL, "1.0", META, POLICY,
            "<record>" "0123456789012345678901234567890123456789012345678901234567890123456789"
            "<row><source_ip>192.0.2.7</source_ip>stray<count>3</count></row>"
            "<identifiers>x<header_from>example.com</header_from>y</identifiers></record>");
    c = tu_ingest_mem(&lim, "tcontainer.xml", d, strlen(d));
    tu_assert_ok(c, 1, 1);
    ck_assert_str_eq(c->recs[0].source_ip, "192.0.2.7");
    ck_assert_str_eq(c->recs[0].header_from, "example.com");
    ck_assert_uint_eq(c->recs[0].count, 3);
    d = doc(NULL, "1.0", META, POLICY,
            "<record><row><source_ip>192.0.2.7</source_ip><count>3</count></row>"
            "<identifiers><header_from>" "0123456789012345678901234567890123456789012345678901234567890123456789"
            "</header_from></identifiers></record>");
    tu_assert_rejected(tu_ingest_mem(&lim, "tleaf.xml", d, strlen(d)), DP_ERR_LIMIT);
}
END_TEST

START_TEST(auth_results_limit) {
    dp_ingest_limits lim = limits();
    lim.max_auth_results = 3;
    const char *three = simple("<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row>"
                               "<auth_results><dkim><domain>a</domain></dkim><dkim><domain>b</domain></dkim>"
                               "<spf><domain>c</domain></spf></auth_results></record>");
    tu_collect *c = tu_ingest_mem(&lim, "three.xml", three, strlen(three));
    tu_assert_ok(c, 1, 1);
    ck_assert_uint_eq(c->recs[0].n_dkim, 2);
    ck_assert_uint_eq(c->recs[0].n_spf, 1);
    const char *four = simple("<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row>"
                              "<auth_results><dkim><domain>a</domain></dkim><dkim><domain>b</domain></dkim>"
                              "<spf><domain>c</domain></spf><spf><domain>d</domain></spf></auth_results></record>");
    tu_assert_rejected(tu_ingest_mem(&lim, "four.xml", four, strlen(four)), DP_ERR_LIMIT);
}
END_TEST

START_TEST(report_bytes_limit) {
    dp_ingest_limits lim = limits();
    size_t n = strlen(TU_SIMPLE);
    lim.max_report_bytes = n;
    tu_assert_ok(tu_ingest_mem(&lim, "exact.xml", TU_SIMPLE, n), 1, 1);
    lim.max_report_bytes = n - 1;
    tu_assert_rejected(tu_ingest_mem(&lim, "over.xml", TU_SIMPLE, n), DP_ERR_LIMIT);
    /* decompressed bytes are what count */
    tu_bytes gz = tu_gzip(TU_SIMPLE, n);
    ck_assert_uint_lt(gz.len, n - 1);
    tu_assert_rejected(tu_ingest_mem(&lim, "over.xml.gz", gz.data, gz.len), DP_ERR_LIMIT);
}
END_TEST

START_TEST(ratio_bomb_rejected) {
    /* 16 MiB of one record repeated: a valid report that gzip squeezes
     * over 200:1, so only the ratio cap (100 here) can object to it */
    static const char rec[] = TU_REC("192.0.2.1", "3");
    size_t reps = (16u << 20) / (sizeof rec - 1);
    size_t n = strlen(TU_HEAD) + reps * (sizeof rec - 1) + strlen(TU_TAIL);
    char *d = tu_keep(malloc(n + 1));
    char *o = d;
    memcpy(o, TU_HEAD, strlen(TU_HEAD));
    o += strlen(TU_HEAD);
    for (size_t i = 0; i < reps; i++, o += sizeof rec - 1) memcpy(o, rec, sizeof rec - 1);
    strcpy(o, TU_TAIL);
    tu_bytes gz = tu_gzip(d, n);
    ck_assert_uint_gt(n / gz.len, 200);
    dp_ingest_limits lim = limits();
    lim.max_ratio = 100;
    tu_collect *c = tu_ingest_mem(&lim, "bomb.xml.gz", gz.data, gz.len);
    tu_assert_rejected(c, DP_ERR_LIMIT);
    tu_assert_contains(c->err.msg, "ratio");
    /* the same bytes pass when the cap allows their ratio: it was the ratio */
    lim.max_ratio = 100000;
    tu_assert_ok(tu_ingest_mem(&lim, "bomb.xml.gz", gz.data, gz.len), 1, reps);
}
END_TEST

START_TEST(ratio_bomb_nested_rejected) {
    /* gzip in gzip: each layer alone has a modest ratio, the product not */
    size_t pad = 16u << 20;
    const char *head = strstr(TU_SIMPLE, "</feedback>");
    size_t hl = (size_t)(head - TU_SIMPLE);
    char *d = tu_keep(malloc(hl + pad + 64));
    memcpy(d, TU_SIMPLE, hl);
    memcpy(d + hl, "<!--", 4);
    memset(d + hl + 4, '0', pad);
    strcpy(d + hl + 4 + pad, "-->" TU_TAIL);
    tu_bytes gz = tu_gzip(d, strlen(d));
    gz = tu_gzip(gz.data, gz.len);
    tu_entry e[] = {{"bomb.xml.gz.gz", gz.data, gz.len}};
    tu_bytes z = tu_zip(e, 1);
    tu_assert_rejected(tu_ingest_mem(NULL, "bomb.zip", z.data, z.len), DP_ERR_LIMIT);
}
END_TEST

/* ---- structure ------------------------------------------------------------------------------------ */

START_TEST(unknown_elements_ignored) {
    const char *meta = META "<vendor:x xmlns:vendor=\"urn:v\"><vendor:org_name>Evil</vendor:org_name></vendor:x>"
                            "<unknown_field>42</unknown_field>";
    const char *rec = "<record><vendor_stats><hits>9</hits></vendor_stats>"
                      "<row><source_ip>192.0.2.1</source_ip><count>2</count><extra>x</extra></row>"
                      "<identifiers><header_from>example.com</header_from><mystery/></identifiers></record>";
    tu_collect *c = tu_ingest_str(doc(NULL, "1.0", meta, POLICY "<future_tag>1</future_tag>",
                                      tu_printf("<something_new>ok</something_new>%s", rec)));
    tu_assert_ok(c, 1, 1);
    tu_assert_str(c->reps[0].org_name, "Example Org");
    ck_assert_uint_eq(c->recs[0].count, 2);
    tu_assert_str(c->recs[0].header_from, "example.com");
}
END_TEST

START_TEST(unknown_element_content_not_taken_as_report_fields) {
    /* Regression: elements used to be matched by their parent only, so a
     * known structure inside an unknown (extension) element fed the
     * report: here extra_contact_info and np. */
    const char *ext = "<extension><x:vendor xmlns:x=\"urn:example\">"
                      "<report_metadata><extra_contact_info>injected</extra_contact_info></report_metadata>"
                      "<policy_published><np>reject</np></policy_published>"
                      "</x:vendor></extension>";
    tu_collect *c = tu_ingest_str(doc(NULL, "1.0", META, POLICY, tu_printf("%s%s", ext, REC_IP("192.0.2.1"))));
    tu_assert_ok(c, 1, 1);
    tu_assert_str(c->reps[0].extra_contact_info, NULL);
    tu_assert_str(c->reps[0].np, NULL);
}
END_TEST

START_TEST(unknown_element_content_not_taken_as_record_fields) {
    /* Regression: same, inside a <record> */
    const char *rec = "<record><extension><row><source_ip>203.0.113.66</source_ip><count>999</count></row>"
                      "</extension>"
                      "<row><source_ip>192.0.2.1</source_ip><count>2</count></row>"
                      "<identifiers><header_from>example.com</header_from></identifiers></record>";
    tu_collect *c = tu_ingest_str(simple(rec));
    tu_assert_ok(c, 1, 1);
    ck_assert_str_eq(c->recs[0].source_ip, "192.0.2.1");
    ck_assert_uint_eq(c->recs[0].count, 2);
}
END_TEST

START_TEST(second_feedback_rejected) {
    /* nested */
    const char *body = strstr(TU_SIMPLE, "<feedback>");
    tu_collect *c = tu_ingest_str(tu_printf("<feedback>%s</feedback>", body));
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 0);
    c = tu_ingest_str(simple(tu_printf("%s%s", REC_IP("192.0.2.1"), body)));
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "more than one");
    /* one after the other */
    c = tu_ingest_str(tu_printf("%s%s", TU_SIMPLE, body));
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 0);
    ck_assert_uint_eq(c->res.records, 0);
    ck_assert(c->err.kind == DP_ERR_XML || c->err.kind == DP_ERR_VALIDATE);
    /* inside the unclosed wrapper */
    c = tu_ingest_str(tu_printf("<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">%s%s", body, body));
    ck_assert_int_eq(c->rc, -1);
    ck_assert_uint_eq(c->res.reports, 0);
    ck_assert_uint_eq(c->res.records, 0);
}
END_TEST

START_TEST(root_not_feedback_rejected) {
    tu_collect *c = tu_ingest_str("<?xml version=\"1.0\"?>\n<html><body>unused</body></html>");
    tu_assert_rejected(c, DP_ERR_VALIDATE);
    tu_assert_contains(c->err.msg, "html");
    tu_assert_rejected(tu_ingest_str("<report>" TU_REC("192.0.2.1", "1") "</report>"), DP_ERR_VALIDATE);
    /* a wrapper that holds no feedback */
    tu_assert_rejected(tu_ingest_str("<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"><x/></xs:schema>"),
                       DP_ERR_VALIDATE);
}
END_TEST

int main(void) {
    Suite *s = suite_create("xml");
    TCase *tc = tu_tcase("schemas");
    tcase_add_test(tc, schema_draft_by_namespace);
    tcase_add_test(tc, schema_draft_by_version);
    tcase_add_test(tc, schema_rfc7489);
    tcase_add_test(tc, schema_rfc9990_fields);
    tcase_add_test(tc, schema_rfc9990_elements_without_namespace);
    suite_add_tcase(s, tc);

    tc = tu_tcase("fields");
    tcase_add_test(tc, every_report_field_kept);
    tcase_add_test(tc, optional_fields_absent_are_null);
    tcase_add_test(tc, every_record_field_kept);
    tcase_add_test(tc, enums_lowercased_and_trimmed);
    tcase_add_test(tc, ip_forms);
    tcase_add_test(tc, invalid_ip_rejected);
    tcase_add_test(tc, empty_source_ip_rejected);
    tcase_add_test(tc, count_is_u64);
    tcase_add_test(tc, count_overflow_rejected);
    tcase_add_test(tc, count_sum_overflow_rejected);
    tcase_add_test(tc, count_not_integer_rejected);
    tcase_add_test(tc, dates_are_unix_seconds);
    tcase_add_test(tc, begin_after_end_rejected);
    tcase_add_test(tc, range_over_31_days_rejected);
    tcase_add_test(tc, dates_outside_1990_to_2100_rejected);
    tcase_add_test(tc, missing_date_range_rejected);
    tcase_add_test(tc, report_id_angle_brackets_stripped);
    tcase_add_test(tc, pct_not_integer_has_no_pct);
    suite_add_tcase(s, tc);

    tc = tu_tcase("contract");
    tcase_add_test(tc, records_emitted_in_order);
    tcase_add_test(tc, report_failing_after_records_counts_nothing);
    tcase_add_test(tc, truncated_document_after_records_counts_nothing);
    tcase_add_test(tc, failure_before_records_has_no_report);
    tcase_add_test(tc, handler_stop_fails_report);
    suite_add_tcase(s, tc);

    tc = tu_tcase("order");
    tcase_add_test(tc, policy_after_records_same_as_usual_order);
    tcase_add_test(tc, metadata_after_records_same_as_usual_order);
    tcase_add_test(tc, both_after_records_same_as_usual_order);
    tcase_add_test(tc, no_metadata_anywhere_rejected);
    tcase_add_test(tc, header_checked_when_it_comes_late);
    tcase_add_test(tc, held_record_validated_as_it_closes);
    tcase_add_test(tc, truncated_while_records_held_delivers_nothing);
    tcase_add_test(tc, skip_after_holding_delivers_nothing);
    tcase_add_test(tc, handler_stop_while_releasing_fails_report);
    tcase_add_test(tc, two_different_policies_rejected);
    tcase_add_test(tc, two_different_metadata_rejected);
    tcase_add_test(tc, identical_sections_accepted_as_one);
    tcase_add_test(tc, many_records_before_policy_spill_and_arrive_in_order);
    tcase_add_test(tc, spill_file_that_cannot_be_made_fails_the_report);
    tcase_add_test(tc, hold_bounded_in_memory_unnamed_on_disk);
    suite_add_tcase(s, tc);

    tc = tu_tcase("salvage");
    tcase_add_test(tc, whitespace_before_declaration_accepted);
    tcase_add_test(tc, unclosed_schema_wrapper_accepted);
    tcase_add_test(tc, unclosed_schema_wrapper_with_truncated_feedback_rejected);
    suite_add_tcase(s, tc);

    tc = tu_tcase("hostile");
    tcase_add_test(tc, doctype_rejected);
    tcase_add_test(tc, internal_entity_rejected);
    tcase_add_test(tc, external_entity_rejected);
    tcase_add_test(tc, invalid_utf8_rejected_as_xml_error);
    suite_add_tcase(s, tc);

    tc = tu_tcase("limits");
    tcase_add_test(tc, depth_limit);
    tcase_add_test(tc, depth_limit_default_in_unknown_elements);
    tcase_add_test(tc, text_limit);
    tcase_add_test(tc, auth_results_limit);
    tcase_add_test(tc, report_bytes_limit);
    tcase_add_test(tc, ratio_bomb_rejected);
    tcase_add_test(tc, ratio_bomb_nested_rejected);
    suite_add_tcase(s, tc);

    tc = tu_tcase("structure");
    tcase_add_test(tc, unknown_elements_ignored);
    tcase_add_test(tc, second_feedback_rejected);
    tcase_add_test(tc, root_not_feedback_rejected);
    suite_add_tcase(s, tc);

    /* Regressions: each failed before its fix in ingest/. */
    tc = tu_tcase("regressions");
    tcase_add_test(tc, unknown_element_content_not_taken_as_report_fields);
    tcase_add_test(tc, unknown_element_content_not_taken_as_record_fields);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
