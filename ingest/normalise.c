/* normalise — see normalise.h. */
#include "normalise.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "dp_net.h"

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

char *dp_normalise_trim(char *s, size_t *n) {
    size_t len = *n;
    while (len && is_space((unsigned char)*s)) { s++; len--; }
    while (len && is_space((unsigned char)s[len - 1])) len--;
    *n = len;
    return s;
}

void dp_normalise_lower(char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
}

int dp_normalise_ip(const char *s, size_t n, char *out, unsigned char *bytes, int *family) {
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, tmp, bytes) == 1) {
        *family = 4;
    } else {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, tmp, &a6) != 1) return -1;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            /* ::ffff:a.b.c.d is the same host as a.b.c.d; one key per sender. */
            memcpy(bytes, &a6.s6_addr[12], 4);
            *family = 4;
        } else {
            memcpy(bytes, a6.s6_addr, 16);
            *family = 6;
        }
    }
    dp_net_format_ip(bytes, *family, out);
    return out[0] ? 0 : -1;
}

int dp_normalise_u64(const char *s, size_t n, uint64_t *out) {
    if (n == 0) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) return -1;
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int dp_normalise_i64(const char *s, size_t n, int64_t *out) {
    int neg = 0;
    /* a minus sign, never a plus: counts refuse it, and dates read alike */
    if (n && *s == '-') { neg = 1; s++; n--; }
    uint64_t v;
    if (dp_normalise_u64(s, n, &v) != 0) return -1;
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}
