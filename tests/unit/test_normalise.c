/* test_normalise — the helpers that give each report value one canonical
 * form (ingest/normalise.h): trimming, lower-casing, IP addresses, and the
 * integer parsers behind <count> and <date_range>. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "dp_net.h"
#include "normalise.h"
#include "test_util.h"

START_TEST(trim_strips_ascii_whitespace_both_ends) {
    char s[] = " \t\r\n PASS \n\t";
    size_t n = strlen(s);
    char *t = dp_normalise_trim(s, &n);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(memcmp(t, "PASS", 4), 0);

    char blank[] = " \n ";
    n = strlen(blank);
    dp_normalise_trim(blank, &n);
    ck_assert_uint_eq(n, 0);

    char inner[] = "a b";
    n = strlen(inner);
    t = dp_normalise_trim(inner, &n);
    ck_assert_uint_eq(n, 3); /* inner space kept */
}
END_TEST

START_TEST(lower_changes_only_ascii_letters) {
    char s[] = "PaSs-\xC3\x89X";
    dp_normalise_lower(s, strlen(s));
    ck_assert_str_eq(s, "pass-\xC3\x89x"); /* É (UTF-8) untouched */
}
END_TEST

static void ip_ok(const char *in, const char *want, int family) {
    char out[DP_IP_STRLEN];
    unsigned char bytes[16];
    int fam = 0;
    ck_assert_msg(dp_normalise_ip(in, strlen(in), out, bytes, &fam) == 0, "'%s' rejected", in);
    ck_assert_str_eq(out, want);
    ck_assert_int_eq(fam, family);
    unsigned char expect[16] = {0};
    ck_assert_int_eq(inet_pton(family == 4 ? AF_INET : AF_INET6, want, expect), 1);
    ck_assert_int_eq(memcmp(bytes, expect, 16), 0);
}

static void ip_bad(const char *in) {
    char out[DP_IP_STRLEN];
    unsigned char bytes[16];
    int fam = 0;
    ck_assert_msg(dp_normalise_ip(in, strlen(in), out, bytes, &fam) == -1, "'%s' accepted", in);
}

START_TEST(ip_canonical_forms) {
    ip_ok("192.0.2.1", "192.0.2.1", 4);
    ip_ok("2001:DB8:0:0::1", "2001:db8::1", 6);
    ip_ok("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 6);
    ip_ok("::1", "::1", 6);
    ip_ok("::ffff:192.0.2.7", "192.0.2.7", 4);      /* v4-mapped becomes IPv4 */
    ip_ok("::FFFF:C000:0207", "192.0.2.7", 4);
}
END_TEST

/* dp_net_format_ip writes its own text (no sprintf); rollup keys depend on it,
 * so it must be inet_ntop's, byte for byte: every pattern of zero and
 * non-zero groups (all 256), with group values from tiny to 0xffff, the
 * IPv4-tailed forms (::a.b.c.d, ::ffff:a.b.c.d) and random addresses. */
static void format_matches_inet_ntop(const unsigned char *b, int family) {
    char want[64], got[DP_IP_STRLEN];
    ck_assert_ptr_nonnull(inet_ntop(family == 4 ? AF_INET : AF_INET6, b, want, sizeof want));
    dp_net_format_ip(b, family, got);
    ck_assert_msg(strcmp(got, want) == 0, "dp_net_format_ip gave '%s', inet_ntop '%s'", got, want);
}

START_TEST(ip_text_matches_inet_ntop) {
    static const unsigned vals[] = {1, 0xa, 0x10, 0xab, 0x100, 0xfff, 0x1000, 0xffff};
    unsigned char b[16];
    for (unsigned mask = 0; mask < 256; mask++)
        for (size_t v = 0; v < sizeof vals / sizeof *vals; v++) {
            for (int g = 0; g < 8; g++) {
                unsigned w = mask >> g & 1 ? vals[(v + (size_t)g) % (sizeof vals / sizeof *vals)] : 0;
                b[2 * g] = (unsigned char)(w >> 8);
                b[2 * g + 1] = (unsigned char)w;
            }
            format_matches_inet_ntop(b, 6);
        }
    /* ::a.b.c.d, ::ffff:a.b.c.d and their near misses */
    for (int k = 0; k < 4; k++) {
        memset(b, 0, 16);
        if (k == 1 || k == 3) b[10] = b[11] = 0xff;
        if (k == 2) b[10] = 0xff; /* ::ff00:... is not IPv4-tailed */
        if (k == 3) b[9] = 1;
        b[12] = 192, b[13] = 0, b[14] = 2, b[15] = (unsigned char)(7 + k);
        format_matches_inet_ntop(b, 6);
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int n = 0; n < 20000; n++) {
        for (int i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[i] = (unsigned char)(x % 5 == 0 ? 0 : x >> 24); /* zeros are common */
        }
        format_matches_inet_ntop(b, 6);
        format_matches_inet_ntop(b, 4);
    }
    static const unsigned char v4[][4] = {{0, 0, 0, 0}, {255, 255, 255, 255}, {10, 0, 0, 1}, {1, 20, 100, 9}};
    for (size_t i = 0; i < sizeof v4 / sizeof *v4; i++) format_matches_inet_ntop(v4[i], 4);
}
END_TEST

START_TEST(ip_invalid_rejected) {
    ip_bad("");
    ip_bad("256.1.1.1");
    ip_bad("192.0.2");
    ip_bad("192.0.2.1.5");
    ip_bad("example.com");
    ip_bad("2001:db8::1::2");
    ip_bad("2001:db8::g");
    ip_bad(" 192.0.2.1"); /* callers trim first; the parser itself is strict */
    ip_bad("0123456789012345678901234567890123456789012345678901234567890123456789"); /* too long */
}
END_TEST

START_TEST(u64_limits) {
    uint64_t v = 1;
    ck_assert_int_eq(dp_normalise_u64("0", 1, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(dp_normalise_u64("18446744073709551615", 20, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(dp_normalise_u64("18446744073709551616", 20, &v), -1);
    ck_assert_int_eq(dp_normalise_u64("99999999999999999999", 20, &v), -1);
    ck_assert_int_eq(dp_normalise_u64("", 0, &v), -1);
    ck_assert_int_eq(dp_normalise_u64("-1", 2, &v), -1);
    ck_assert_int_eq(dp_normalise_u64("+1", 2, &v), -1);
    ck_assert_int_eq(dp_normalise_u64("1.5", 3, &v), -1);
    ck_assert_int_eq(dp_normalise_u64("12a", 3, &v), -1);
    ck_assert_int_eq(dp_normalise_u64("1 ", 2, &v), -1);
}
END_TEST

START_TEST(i64_limits) {
    int64_t v = 0;
    ck_assert_int_eq(dp_normalise_i64("1700000000", 10, &v), 0);
    ck_assert_int_eq(v, 1700000000);
    ck_assert_int_eq(dp_normalise_i64("-5", 2, &v), 0);
    ck_assert_int_eq(v, -5);
    ck_assert_int_eq(dp_normalise_i64("9223372036854775807", 19, &v), 0);
    ck_assert_int_eq(v, INT64_MAX);
    ck_assert_int_eq(dp_normalise_i64("-9223372036854775808", 20, &v), 0);
    ck_assert_int_eq(v, INT64_MIN);
    ck_assert_int_eq(dp_normalise_i64("9223372036854775808", 19, &v), -1);
    ck_assert_int_eq(dp_normalise_i64("-9223372036854775809", 20, &v), -1);
    ck_assert_int_eq(dp_normalise_i64("-", 1, &v), -1);
    ck_assert_int_eq(dp_normalise_i64("+1700000000", 11, &v), -1); /* as counts refuse it */
    ck_assert_int_eq(dp_normalise_i64("2024-01-01", 10, &v), -1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("normalise");
    TCase *tc = tu_tcase("normalise");
    tcase_add_test(tc, trim_strips_ascii_whitespace_both_ends);
    tcase_add_test(tc, lower_changes_only_ascii_letters);
    tcase_add_test(tc, ip_canonical_forms);
    tcase_add_test(tc, ip_invalid_rejected);
    tcase_add_test(tc, ip_text_matches_inet_ntop);
    tcase_add_test(tc, u64_limits);
    tcase_add_test(tc, i64_limits);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
