/* classify — the four classes of a rollup.
 *
 * The classes answer "whose mail is this?" from what a reporter saw:
 * DMARC passed (aligned), the receiver overrode a failure because the mail
 * was forwarded (forwarded), DKIM or SPF passed for some other domain, so
 * a real service sent it without the domain's own signature or return
 * path (third_party), or nothing passed (unauthenticated: likely spoofing).
 *
 * A rollup carries one DKIM result: the first signature aligned with the
 * header_from, else the first (aggregate/align.c).  A message whose own
 * signature broke but which also carried an ESP's passing signature is
 * therefore unauthenticated here, unless SPF passed for someone.
 */
#include <string.h>

#include "insight_internal.h"

const char *dp_classify_name(dp_class c) {
    static const char *const names[DP_CLASS_N] = {"aligned", "forwarded", "third_party", "unauthenticated"};
    return (unsigned)c < DP_CLASS_N ? names[c] : "unknown";
}

static int is(const char *v, const char *want) { return v && strcmp(v, want) == 0; }

/* Whether the comma-joined list holds one of the reasons a receiver gives
 * for mail that failed only because it travelled through someone. */
static int forwarding_override(const char *list) {
    static const char *const reasons[] = {"forwarded", "mailing_list", "trusted_forwarder"};
    if (!list) return 0;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
            if (strlen(reasons[i]) == n && memcmp(p, reasons[i], n) == 0) return 1;
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

dp_class dp_classify_rollup(const char *dkim, const char *spf, const char *override, const char *dkim_result,
                            const char *spf_result) {
    if (is(dkim, "pass") || is(spf, "pass")) return DP_CLASS_ALIGNED;
    if (forwarding_override(override)) return DP_CLASS_FORWARDED;
    if (is(dkim_result, "pass") || is(spf_result, "pass")) return DP_CLASS_THIRD_PARTY;
    return DP_CLASS_UNAUTHENTICATED;
}
