/* dp_net — see dp_net.h. */
#include "dp_net.h"

#include <arpa/inet.h>

void dp_format_ip(const unsigned char *bytes, int family, char *out) {
    if (family != 4) {
        if (!inet_ntop(AF_INET6, bytes, out, 46)) out[0] = '\0';
        return;
    }
    /* inet_ntop formats IPv4 with sprintf, a visible cost per record and
     * per rollup line. */
    char *o = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = bytes[i];
        if (v >= 100) *o++ = (char)('0' + v / 100);
        if (v >= 10) *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
        *o++ = i < 3 ? '.' : '\0';
    }
}
