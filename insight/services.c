/* services — a domain's sources grouped by the service that sends from
 * them, and what each service lacks to align.
 *
 * Enrichment (`dmarcpipe run --enrich`) names the service behind a source
 * IP from its forward-confirmed PTR and the known-senders map; the rollups
 * carry it as source_service and source_service_type.  A person fixes a
 * service, not an IP: "SendGrid (esp): 11,200 messages from 12 IPs, DKIM
 * not set up for your domain" is one setting in SendGrid's console, where
 * twelve rows of IPs hide it.
 *
 * What is missing comes from the alignment the receivers reported for the
 * service's messages (policy_evaluated dkim and spf), with the ready
 * threshold as the bar: DKIM aligned on (nearly) none of them is "not set
 * up"; on some, "on only N%".  SPF is said only where DKIM does not carry
 * the mail already, since one aligned method is what DMARC asks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "insight_internal.h"

const char *dp_services_label(const dp_insight_source *s) {
    return s->who.service ? s->who.service : s->who.base_domain;
}

/* 11200 -> "11,200" */
static void thousands(char out[32], uint64_t v) {
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* A share below this is "none": a few messages signed by a forwarder or a
 * stray test do not make DKIM "set up". */
#define NONE_SHARE 0.02

static char *missing_text(const dp_insight_service *g, double bar) {
    double dkim = g->messages ? (double)g->dkim_aligned / (double)g->messages : 1;
    double spf = g->messages ? (double)g->spf_aligned / (double)g->messages : 1;
    char dk[80] = "", sp[80] = "";
    if (dkim < NONE_SHARE)
        snprintf(dk, sizeof dk, "DKIM not set up for your domain");
    else if (dkim < bar)
        snprintf(dk, sizeof dk, "DKIM for your domain on only %.0f%% of its messages", dkim * 100);
    if (dk[0] && spf < NONE_SHARE)
        snprintf(sp, sizeof sp, "SPF not aligned (no return-path in your domain)");
    else if (dk[0] && spf < bar)
        snprintf(sp, sizeof sp, "SPF aligned on only %.0f%% of its messages", spf * 100);
    char buf[170];
    if (!dk[0])
        snprintf(buf, sizeof buf, "nothing: aligned");
    else
        snprintf(buf, sizeof buf, "%s%s%s", dk, sp[0] ? ", " : "", sp);
    return strdup(buf);
}

static uint64_t unaligned(const dp_insight_service *g) { return g->messages - g->classes[DP_CLASS_ALIGNED]; }

static int service_order(const void *a, const void *b) {
    const dp_insight_service *x = a, *y = b;
    if (unaligned(x) != unaligned(y)) return unaligned(x) > unaligned(y) ? -1 : 1;
    if (x->messages != y->messages) return x->messages > y->messages ? -1 : 1;
    return strcmp(x->name, y->name);
}

void dp_services_group(dp_insight *ins, dp_insight_domain *d) {
    size_t cap = 0;
    for (size_t i = 0; i < d->n_sorted; i++) cap += d->sorted[i]->who.service != NULL;
    if (!cap) return;
    d->services = calloc(cap, sizeof *d->services);
    if (!d->services) {
        ins->failed = 1;
        return;
    }
    for (size_t i = 0; i < d->n_sorted; i++) {
        const dp_insight_source *s = d->sorted[i];
        if (!s->who.service) continue;
        dp_insight_service *g = NULL;
        for (size_t k = 0; k < d->n_services && !g; k++)
            if (strcmp(d->services[k].name, s->who.service) == 0) g = &d->services[k];
        if (!g) {
            g = &d->services[d->n_services++];
            g->name = s->who.service;
            g->type = s->who.service_type;
        } else if (!g->type || (s->who.service_type && strcmp(s->who.service_type, g->type) < 0)) {
            g->type = s->who.service_type; /* one type whatever the order of sources */
        }
        g->messages += s->messages;
        g->dkim_aligned += s->dkim_aligned;
        g->spf_aligned += s->spf_aligned;
        for (int c = 0; c < DP_CLASS_N; c++) g->classes[c] += s->classes[c];
        g->n_ips++;
    }
    qsort(d->services, d->n_services, sizeof *d->services, service_order);
    for (size_t k = 0; k < d->n_services; k++) {
        dp_insight_service *g = &d->services[k];
        g->missing = missing_text(g, ins->opt.ready_threshold);
        char count[32];
        thousands(count, g->messages);
        size_t n = strlen(g->name) + (g->type ? strlen(g->type) : 0) + (g->missing ? strlen(g->missing) : 0) + 96;
        g->text = malloc(n);
        if (!g->missing || !g->text) {
            ins->failed = 1;
            continue;
        }
        snprintf(g->text, n, "%s%s%s%s: %s message%s from %zu IP%s, %s", g->name, g->type ? " (" : "",
                 g->type ? g->type : "", g->type ? ")" : "", count, g->messages == 1 ? "" : "s", g->n_ips,
                 g->n_ips == 1 ? "" : "s", strcmp(g->missing, "nothing: aligned") == 0 ? "aligned" : g->missing);
    }
}
