/* test_json — JSON text from report strings (common/dp_json.h): escaping is
 * total, valid UTF-8 passes through, invalid bytes become U+FFFD; and the
 * `dmarcpipe parse` record line (dp_format_record); and a rollup line (the
 * file sink's line, the Kafka sink's message value) loads in a real JSON
 * parser (jansson, strict UTF-8) whatever bytes its strings hold. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dp_buf.h"
#include "dp_json.h"
#include "sink.h"
#include "test_util.h"

#define FFFD "\xEF\xBF\xBD"

/* dp_json_strn of n bytes, as a string kept for the test. */
static const char *js(const char *s, size_t n) {
    dp_buf b = DP_BUF_INIT;
    dp_json_strn(&b, s, n);
    ck_assert(!b.failed);
    return tu_keep(b.data);
}
#define JS(lit) js((lit), sizeof(lit) - 1)

START_TEST(plain_ascii) {
    ck_assert_str_eq(JS("example.com"), "\"example.com\"");
    ck_assert_str_eq(JS(""), "\"\"");
    ck_assert_str_eq(JS("/ ~\x7f"), "\"/ ~\x7f\"");
}
END_TEST

START_TEST(quotes_and_backslash) {
    ck_assert_str_eq(JS("say \"hi\""), "\"say \\\"hi\\\"\"");
    ck_assert_str_eq(JS("C:\\dir\\"), "\"C:\\\\dir\\\\\"");
    ck_assert_str_eq(JS("\\\""), "\"\\\\\\\"\"");
}
END_TEST

START_TEST(control_characters) {
    ck_assert_str_eq(JS("a\nb\rc\td"), "\"a\\nb\\rc\\td\"");
    ck_assert_str_eq(JS("\b\f"), "\"\\b\\f\"");
    ck_assert_str_eq(JS("\x01\x1f"), "\"\\u0001\\u001f\"");
    ck_assert_str_eq(JS("x\0y"), "\"x\\u0000y\""); /* an embedded NUL with an explicit length */
    /* every control character comes out escaped, never raw */
    for (int c = 0; c < 0x20; c++) {
        char in[1] = {(char)c};
        const char *out = js(in, 1);
        ck_assert_msg(out[1] == '\\', "0x%02x not escaped", c);
        for (const char *p = out; *p; p++) ck_assert_int_ge((unsigned char)*p, 0x20);
    }
}
END_TEST

START_TEST(valid_utf8_kept) {
    ck_assert_str_eq(JS("M\xC3\xBCller"), "\"M\xC3\xBCller\"");                 /* 2 bytes */
    ck_assert_str_eq(JS("\xE2\x82\xAC 5"), "\"\xE2\x82\xAC 5\"");               /* 3 bytes */
    ck_assert_str_eq(JS("\xF0\x9F\x98\x80"), "\"\xF0\x9F\x98\x80\"");           /* 4 bytes */
    ck_assert_str_eq(JS("\xEF\xBF\xBF\xF4\x8F\xBF\xBF"), "\"\xEF\xBF\xBF\xF4\x8F\xBF\xBF\""); /* maxima */
    ck_assert_str_eq(JS("\xED\x9F\xBF"), "\"\xED\x9F\xBF\"");                   /* U+D7FF */
}
END_TEST

START_TEST(invalid_utf8_replaced) {
    ck_assert_str_eq(JS("a\xFF" "b"), "\"a" FFFD "b\"");                /* lone 0xff */
    ck_assert_str_eq(JS("\xC0\x80"), "\"" FFFD FFFD "\"");              /* overlong NUL */
    ck_assert_str_eq(JS("\xE0\x80\xAF"), "\"" FFFD FFFD FFFD "\"");     /* overlong '/' */
    ck_assert_str_eq(JS("\xED\xA0\x80"), "\"" FFFD FFFD FFFD "\"");     /* surrogate U+D800 */
    ck_assert_str_eq(JS("\xF4\x90\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    ck_assert_str_eq(JS("\xE2\x82"), "\"" FFFD FFFD "\"");              /* truncated at the end */
    ck_assert_str_eq(JS("\xE2\x82x"), "\"" FFFD FFFD "x\"");            /* truncated mid-string */
    ck_assert_str_eq(JS("\x80"), "\"" FFFD "\"");                      /* stray continuation */
    ck_assert_str_eq(JS("\xC3\xBC\xFF\xC3\xBC"), "\"\xC3\xBC" FFFD "\xC3\xBC\""); /* good around bad */
}
END_TEST

START_TEST(worst_case_expansion) {
    /* 6 output bytes per input byte: all control characters */
    char in[1000];
    memset(in, 0x01, sizeof in);
    const char *out = js(in, sizeof in);
    ck_assert_uint_eq(strlen(out), sizeof in * 6 + 2);
    /* appending after existing content keeps it */
    dp_buf b = DP_BUF_INIT;
    dp_buf_puts(&b, "[");
    dp_json_strn(&b, "\xff", 1);
    dp_buf_puts(&b, "]");
    ck_assert_str_eq(b.data, "[\"" FFFD "\"]");
    dp_buf_free(&b);
}
END_TEST

START_TEST(members_and_null) {
    dp_buf b = DP_BUF_INIT;
    int first = 1;
    dp_buf_putc(&b, '{');
    dp_json_kv_str(&b, &first, "a", "x\"y");
    dp_json_kv_str(&b, &first, "b", NULL);
    dp_json_kv_u64(&b, &first, "c", UINT64_MAX);
    dp_json_kv_i64(&b, &first, "d", INT64_MIN);
    dp_json_kv_i64(&b, &first, "e", 0);
    dp_buf_putc(&b, '}');
    ck_assert_str_eq(b.data, "{\"a\":\"x\\\"y\",\"b\":null,\"c\":18446744073709551615,"
                             "\"d\":-9223372036854775808,\"e\":0}");
    dp_buf_free(&b);
}
END_TEST

/* The integer writers against printf, at every digit-count boundary and
 * at random. */
START_TEST(integers_match_printf) {
    char want[32], got[32];
    uint64_t vals[200];
    size_t n = 0;
    vals[n++] = 0;
    vals[n++] = UINT64_MAX;
    for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
        vals[n++] = p - 1;
        vals[n++] = p;
        vals[n++] = p + 1;
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    while (n < sizeof vals / sizeof vals[0]) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        vals[n++] = x >> (x % 64);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(want, sizeof want, "%llu", (unsigned long long)vals[i]);
        *dp_buf_raw_u64(got, vals[i]) = '\0';
        ck_assert_str_eq(got, want);
        int64_t sv = (int64_t)vals[i];
        snprintf(want, sizeof want, "%lld", (long long)sv);
        *dp_buf_raw_i64(got, sv) = '\0';
        ck_assert_str_eq(got, want);
    }
    *dp_buf_raw_i64(got, INT64_MIN) = '\0';
    ck_assert_str_eq(got, "-9223372036854775808");
}
END_TEST

/* Digests are written as lowercase hex: every byte value, against printf. */
START_TEST(hex_matches_printf) {
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++) bytes[i] = (unsigned char)(255 - i);
    char want[513], got[513];
    for (int i = 0; i < 256; i++) snprintf(want + 2 * i, 3, "%02x", bytes[i]);
    char *end = dp_buf_raw_hex(got, bytes, sizeof bytes);
    ck_assert_ptr_eq(end, got + 512);
    *end = '\0';
    ck_assert_str_eq(got, want);
    ck_assert_ptr_eq(dp_buf_raw_hex(got, bytes, 0), got);
}
END_TEST

/* A rollup line's room is reserved once: the worst case (every string
 * control characters, six bytes out per byte in; extreme integers) must
 * fit, with nothing written past it (ASan) and the exact text. */
START_TEST(rollup_json_worst_case) {
    char ctl[301];
    memset(ctl, 0x01, 300);
    ctl[300] = '\0';
    dp_rollup r = {.window_start = INT64_MIN, .window_end = INT64_MAX, .reporter = ctl,
                   .policy_domain = ctl, .header_from = ctl, .source_ip = ctl, .disposition = ctl,
                   .dkim = ctl, .spf = ctl, .override = ctl, .dkim_domain = ctl,
                   .dkim_selector = ctl, .dkim_result = ctl, .spf_domain = ctl, .spf_result = ctl,
                   .messages = UINT64_MAX, .records = UINT32_MAX, .first_seen = INT64_MIN,
                   .last_seen = -1,
                   .source_info = {.ptr = ctl, .base_domain = ctl, .asn = UINT32_MAX, .as_org = ctl,
                                   .country = ctl, .service = ctl, .service_type = ctl}};
    dp_buf b = DP_BUF_INIT;
    dp_buf_puts(&b, "prefix ");
    dp_format_rollup_json(&b, &r);
    ck_assert(!b.failed);
    ck_assert_uint_eq(strlen(b.data), b.len);
    ck_assert(strstr(b.data, ",\"source_asn\":4294967295,\"source_as_org\":\"\\u0001") != NULL);
    ck_assert(strncmp(b.data, "prefix {\"v\":2,\"window_start\":-9223372036854775808,"
                              "\"window_end\":9223372036854775807,\"reporter\":\"\\u0001", 100) == 0);
    const char *tail = ",\"messages\":18446744073709551615,\"records\":4294967295,"
                       "\"first_seen\":-9223372036854775808,\"last_seen\":-1}";
    ck_assert_str_eq(b.data + b.len - strlen(tail), tail);
    /* 13 key strings and 6 source strings of 300 bytes, each 1800 escaped + 2 quotes */
    size_t escaped = 0;
    for (const char *p = b.data; (p = strstr(p, "\\u0001")) != NULL; p += 6) escaped++;
    ck_assert_uint_eq(escaped, 19 * 300);
    dp_buf_free(&b);
}
END_TEST

/* dp_format_record through a real parse: one line per record, report
 * fields flattened in, absent values null. */
static dp_buf line;
static int json_record(void *ctx, const dp_report *rep, const dp_record *rec) {
    (void)ctx;
    dp_buf_reset(&line);
    dp_format_record(&line, rep, rec);
    return 0;
}

START_TEST(record_json_fields) {
    const char *d = TU_HEAD_ID("Org \"Q\" \\ \xC3\xA9", "&lt;id@host&gt;")
        "<record><row><source_ip>2001:DB8::1</source_ip><count>42</count>"
        "<policy_evaluated><disposition>Reject</disposition><dkim>fail</dkim><spf>fail</spf>"
        "<reason><type>local_policy</type><comment>line1&#10;line2&#9;tab</comment></reason></policy_evaluated></row>"
        "<identifiers><header_from>example.com</header_from></identifiers>"
        "<auth_results><dkim><domain>example.com</domain><selector>s1</selector><result>fail</result></dkim>"
        "<spf><domain>example.com</domain><scope>mfrom</scope><result>fail</result></spf></auth_results></record>"
        TU_TAIL;
    dp_report_handler h = {.record = json_record};
    dp_ingest_result res;
    dp_error err;
    dp_ingest_global_init();
    ck_assert_int_eq(dp_ingest_memory(NULL, "in.xml", d, strlen(d), &h, NULL, &res, &err), 0);
    ck_assert_uint_eq(res.records, 1);
    const char *j = tu_keep(strdup(line.data));
    dp_buf_free(&line);
    ck_assert_int_eq(j[0], '{');
    ck_assert_int_eq(j[strlen(j) - 1], '}');
    ck_assert_ptr_null(strchr(j, '\n'));
    tu_assert_contains(j, "\"input\":\"in.xml\"");
    tu_assert_contains(j, "\"schema\":\"rfc7489\"");
    tu_assert_contains(j, "\"org_name\":\"Org \\\"Q\\\" \\\\ \xC3\xA9\"");
    tu_assert_contains(j, "\"report_id\":\"id@host\"");
    tu_assert_contains(j, "\"begin\":" TU_BEGIN ",\"end\":" TU_END);
    tu_assert_contains(j, "\"errors\":[]");
    tu_assert_contains(j, "\"policy_pct\":100");
    tu_assert_contains(j, "\"policy_np\":null");
    tu_assert_contains(j, "\"source_ip\":\"2001:db8::1\"");
    tu_assert_contains(j, "\"count\":42");
    tu_assert_contains(j, "\"disposition\":\"reject\"");
    tu_assert_contains(j, "\"overrides\":[{\"type\":\"local_policy\",\"comment\":\"line1\\nline2\\ttab\"}]");
    tu_assert_contains(j, "\"envelope_from\":null");
    tu_assert_contains(j, "\"dkim_results\":[{\"domain\":\"example.com\",\"selector\":\"s1\",\"result\":\"fail\","
                          "\"human_result\":null}]");
    tu_assert_contains(j, "\"spf_results\":[{\"domain\":\"example.com\",\"scope\":\"mfrom\",\"result\":\"fail\","
                          "\"human_result\":null}]");
}
END_TEST

/* Random strings: control characters, quotes, backslashes, valid UTF-8 of
 * every length, and invalid bytes.  Every rollup must load in jansson,
 * which refuses control characters and invalid UTF-8; valid strings must
 * come back byte for byte. */
static size_t random_text(unsigned *seed, char *out, size_t cap, int *valid) {
    static const char *const pieces[] = {"\"", "\\", "\x01", "\x1f", "\n", "\t", "\x7f", "a", "|", "/",
                                         "\xC3\xBC", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xEF\xBB\xBF",
                                         "\xFF", "\xC0\x80", "\xED\xA0\x80", "\xE2\x82", "\x80", "\xF4\x90\x80\x80"};
    size_t n = 0, k = (size_t)(rand_r(seed) % 12);
    *valid = 1;
    for (size_t i = 0; i < k; i++) {
        size_t p = (size_t)rand_r(seed) % (sizeof pieces / sizeof *pieces);
        size_t len = strlen(pieces[p]);
        if (n + len >= cap) break;
        memcpy(out + n, pieces[p], len);
        n += len;
        if (p >= 14) *valid = 0;
    }
    out[n] = '\0';
    return n;
}

START_TEST(rollup_json_loads_in_a_real_parser) {
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        char text[4][64];
        int valid[4];
        for (int i = 0; i < 4; i++) random_text(&seed, text[i], sizeof text[i], &valid[i]);
        dp_rollup r = {.window_start = 1700000000, .window_end = 1700086400, .reporter = text[0],
                       .policy_domain = text[1], .header_from = text[2], .source_ip = "192.0.2.1",
                       .disposition = "none", .dkim = "pass", .spf = "fail", .override = NULL,
                       .dkim_domain = text[3], .dkim_selector = text[0], .dkim_result = "pass",
                       .spf_domain = text[1], .spf_result = "fail", .messages = (uint64_t)1 << 62, /* jansson: signed 64-bit */
                       .records = 1, .first_seen = 1700000000, .last_seen = 1700086399};
        dp_buf b = DP_BUF_INIT;
        dp_format_rollup_json(&b, &r);
        ck_assert(!b.failed);
        json_error_t err;
        json_t *j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &err);
        ck_assert_msg(j != NULL, "iteration %d: %s: %s", iter, err.text, b.data);
        const char *fields[4] = {"reporter", "policy_domain", "header_from", "dkim_domain"};
        for (int i = 0; i < 4; i++) {
            const char *got = json_string_value(json_object_get(j, fields[i]));
            ck_assert_ptr_nonnull(got);
            if (valid[i]) ck_assert_str_eq(got, text[i]);
        }
        ck_assert(json_is_null(json_object_get(j, "override")));
        /* nothing known of the source: every source_* member null */
        const char *src[] = {"source_ptr", "source_base_domain", "source_asn", "source_as_org",
                             "source_country", "source_service", "source_service_type"};
        for (size_t i = 0; i < sizeof src / sizeof *src; i++) ck_assert(json_is_null(json_object_get(j, src[i])));
        ck_assert_int_eq(json_integer_value(json_object_get(j, "v")), DP_ROLLUP_SCHEMA_VERSION);
        json_decref(j);
        dp_buf_free(&b);
    }
}
END_TEST

/* The writer copies plain text a word (8 bytes) at a time: every byte
 * value, at every position of strings of 0..24 bytes, in plain ASCII, must
 * come out as a strict parser reads it back: the string itself, or for a
 * byte above 0x7f (alone, so never valid UTF-8) the string with U+FFFD in
 * its place.  The input is copied to a buffer of exactly its length, so
 * ASan catches a word read past its end. */
START_TEST(every_byte_at_every_position) {
    for (size_t len = 1; len <= 24; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (int v = 1; v < 256; v++) { /* 0: C strings end there; escaped like 0x01 */
                char *in = malloc(len);
                ck_assert_ptr_nonnull(in);
                for (size_t k = 0; k < len; k++) in[k] = (char)('a' + k % 26);
                in[pos] = (char)v;
                dp_buf b = DP_BUF_INIT;
                dp_json_strn(&b, in, len);
                ck_assert(!b.failed);
                ck_assert_uint_le(b.len, DP_JSON_STRN_MAX(len));
                json_error_t err;
                json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, &err);
                ck_assert_msg(j != NULL, "len %zu pos %zu byte 0x%02x: %s: %s", len, pos, v, err.text, b.data);
                char want[32];
                size_t wn = 0;
                for (size_t k = 0; k < len; k++) {
                    if (k == pos && v >= 0x80) {
                        memcpy(want + wn, FFFD, 3);
                        wn += 3;
                    } else {
                        want[wn++] = in[k];
                    }
                }
                ck_assert_uint_eq(json_string_length(j), wn);
                ck_assert_msg(memcmp(json_string_value(j), want, wn) == 0, "len %zu pos %zu byte 0x%02x: %s", len,
                              pos, v, b.data);
                json_decref(j);
                dp_buf_free(&b);
                free(in);
            }
        }
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("json");
    TCase *tc = tu_tcase("json");
    tcase_add_test(tc, plain_ascii);
    tcase_add_test(tc, quotes_and_backslash);
    tcase_add_test(tc, control_characters);
    tcase_add_test(tc, valid_utf8_kept);
    tcase_add_test(tc, invalid_utf8_replaced);
    tcase_add_test(tc, worst_case_expansion);
    tcase_add_test(tc, members_and_null);
    tcase_add_test(tc, every_byte_at_every_position);
    tcase_add_test(tc, integers_match_printf);
    tcase_add_test(tc, hex_matches_printf);
    tcase_add_test(tc, rollup_json_worst_case);
    tcase_add_test(tc, record_json_fields);
    tcase_add_test(tc, rollup_json_loads_in_a_real_parser);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
