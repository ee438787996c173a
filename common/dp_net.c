/* dp_net — see dp_net.h. */
#include "dp_net.h"

/* inet_ntop formats with sprintf, once per IPv4 byte and once per IPv6
 * group: a visible cost per record and per rollup line (a fifth of the
 * final flush's instructions on the bench report, most of it for IPv6).
 * These write the same text as glibc's inet_ntop, which the unit test
 * checks address by address; rollup keys depend on it. */
static char *put_ipv4(char *o, const unsigned char *b) {
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100) *o++ = (char)('0' + v / 100);
        if (v >= 10) *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
        if (i < 3) *o++ = '.';
    }
    return o;
}

static char *put_ipv6(char *o, const unsigned char *b) {
    static const char hex[] = "0123456789abcdef";
    unsigned w[8];
    for (int i = 0; i < 8; i++) w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
    /* the longest run of zero groups (the first of equal ones), if 2 or more */
    int best = -1, best_len = 0, cur = -1, cur_len = 0;
    for (int i = 0; i <= 8; i++) {
        if (i < 8 && w[i] == 0) {
            if (cur < 0) cur = i, cur_len = 0;
            cur_len++;
        } else if (cur >= 0) {
            if (cur_len > best_len) best = cur, best_len = cur_len;
            cur = -1;
        }
    }
    if (best_len < 2) best = -1;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + best_len) {
            if (i == best) *o++ = ':';
            continue;
        }
        if (i) *o++ = ':';
        /* ::a.b.c.d and ::ffff:a.b.c.d keep the IPv4 tail, as inet_ntop does */
        if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)))
            return put_ipv4(o, b + 12);
        int started = 0;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = w[i] >> shift & 15;
            if (d || started || shift == 0) *o++ = hex[d], started = 1;
        }
    }
    if (best >= 0 && best + best_len == 8) *o++ = ':';
    return o;
}

void dp_net_format_ip(const unsigned char *bytes, int family, char *out) {
    *(family == 4 ? put_ipv4(out, bytes) : put_ipv6(out, bytes)) = '\0';
}
