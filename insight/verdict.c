/* verdict — is a domain ready for its next step towards p=reject?
 *
 * The verdict is the first that holds of: not enough data to say
 * (insufficient_data), already there (enforced), its legitimate mail is
 * aligned enough to step up (ready), or some senders need fixing first
 * (fix_senders).  Its inputs are the period's class counts and the policy
 * the domain published at the period's end, so it is a pure function of
 * the model and the thresholds; insight/README.md defines each figure.
 *
 * Sorting lives here too, because the order of sources is part of the
 * answer: the senders to fix come first, by their third_party messages.
 */
#include <stdlib.h>
#include <string.h>

#include "insight_internal.h"

int dp_verdict_enforced(const dp_insight_policy *p) {
    return p->known && strcmp(p->p, "reject") == 0 && (!p->has_pct || p->pct == 100) && strcmp(p->testing, "y") != 0;
}

static int source_order(const void *a, const void *b) {
    const dp_insight_source *x = *(dp_insight_source *const *)a, *y = *(dp_insight_source *const *)b;
    uint64_t tx = x->classes[DP_CLASS_THIRD_PARTY], ty = y->classes[DP_CLASS_THIRD_PARTY];
    if (tx != ty) return tx > ty ? -1 : 1;
    if (x->messages != y->messages) return x->messages > y->messages ? -1 : 1;
    return strcmp(x->ip, y->ip);
}

static int reporter_order(const void *a, const void *b) {
    const dp_insight_reporter *x = *(dp_insight_reporter *const *)a, *y = *(dp_insight_reporter *const *)b;
    if (x->messages != y->messages) return x->messages > y->messages ? -1 : 1;
    if (x->reports != y->reports) return x->reports > y->reports ? -1 : 1;
    return strcmp(x->name, y->name);
}

static dp_class majority(const uint64_t c[DP_CLASS_N]) {
    dp_class best = DP_CLASS_ALIGNED;
    for (int i = 1; i < DP_CLASS_N; i++)
        if (c[i] > c[best]) best = (dp_class)i;
    return best;
}

int dp_verdict_same_policy(const dp_insight_policy *a, const dp_insight_policy *b) {
    if (a->known != b->known) return 0;
    uint32_t pa = a->has_pct ? a->pct : 100, pb = b->has_pct ? b->pct : 100;
    const char *ta = a->testing[0] ? a->testing : "n", *tb = b->testing[0] ? b->testing : "n";
    return strcmp(a->p, b->p) == 0 && strcmp(a->sp, b->sp) == 0 && strcmp(a->np, b->np) == 0 && pa == pb &&
           strcmp(a->adkim, b->adkim) == 0 && strcmp(a->aspf, b->aspf) == 0 && strcmp(ta, tb) == 0;
}

/* The policy in force at the end of the period (the latest report's at or
 * before it), and its history over both periods: the policy in force when
 * the previous period starts, then each day a report showed another. */
static int resolve_policy(dp_insight *ins, dp_insight_domain *d) {
    size_t span = (size_t)(ins->to - ins->prev_from + 1);
    const dp_insight_day_policy *latest = d->before.variant ? &d->before : NULL;
    const dp_insight_policy *cur = latest ? &d->variants[latest->variant - 1] : NULL;
    d->history = malloc((span + 1) * sizeof *d->history);
    if (!d->history) {
        ins->failed = 1;
        return -1;
    }
    d->n_history = 0;
    for (size_t i = 0; i < span; i++) {
        const dp_insight_day_policy *slot = &d->day_policy[i];
        const dp_insight_policy *p = slot->variant ? &d->variants[slot->variant - 1] : NULL;
        if (p) latest = slot; /* days ascend, so the last known wins */
        if (i == 0) {
            if (p) cur = p;
            if (cur) d->history[d->n_history++] = (dp_insight_change){ins->prev_from, cur};
            continue;
        }
        if (!p) continue;
        if (!cur || !dp_verdict_same_policy(p, cur))
            d->history[d->n_history++] = (dp_insight_change){ins->prev_from + (int64_t)i, p};
        cur = p;
    }
    memset(&d->policy, 0, sizeof d->policy);
    if (latest) {
        d->policy = d->variants[latest->variant - 1];
        d->policy.begin = latest->begin;
    }
    return 0;
}

static int sort_lists(dp_insight *ins, dp_insight_domain *d) {
    d->sorted = malloc((d->sources.len ? d->sources.len : 1) * sizeof *d->sorted);
    d->sorted_reporters = malloc((d->reporters.len ? d->reporters.len : 1) * sizeof *d->sorted_reporters);
    if (!d->sorted || !d->sorted_reporters) {
        ins->failed = 1;
        return -1;
    }
    dp_map_values(&d->sources, (void **)d->sorted);
    size_t n = 0;
    for (size_t i = 0; i < d->sources.len; i++) {
        dp_insight_source *s = d->sorted[i];
        s->cls = majority(s->classes);
        if (s->messages) d->sorted[n++] = s; /* rollups of no messages (records of count 0) list no source */
    }
    d->n_sorted = n;
    qsort(d->sorted, n, sizeof *d->sorted, source_order);
    dp_map_values(&d->reporters, (void **)d->sorted_reporters);
    d->n_sorted_reporters = d->reporters.len;
    qsort(d->sorted_reporters, d->n_sorted_reporters, sizeof *d->sorted_reporters, reporter_order);
    return 0;
}

static const char *step_after(const dp_insight_policy *p) {
    if (!p->known || !p->p[0]) return NULL;
    if (strcmp(p->p, "none") == 0) return "quarantine";
    if (strcmp(p->p, "quarantine") == 0) return "reject";
    if (strcmp(p->p, "reject") == 0) return "reject"; /* from pct < 100 or testing, to the whole of it */
    return NULL;
}

void dp_verdict_decide(dp_insight *ins, dp_insight_domain *d) {
    if (resolve_policy(ins, d) != 0 || sort_lists(ins, d) != 0) return;
    d->days_with_reports = d->prev_days_with_reports = 0;
    for (int64_t i = 0; i < ins->days; i++) {
        uint64_t sum = 0;
        for (int c = 0; c < DP_CLASS_N; c++) sum += d->daily[i * DP_CLASS_N + c];
        if (sum) d->days_with_reports++;
        if (d->prev_day_seen[i]) d->prev_days_with_reports++;
    }
    const uint64_t *c = d->classes;
    d->legitimate = c[DP_CLASS_ALIGNED] + c[DP_CLASS_FORWARDED] + c[DP_CLASS_THIRD_PARTY];
    d->would_block_legitimate = c[DP_CLASS_FORWARDED] + c[DP_CLASS_THIRD_PARTY];
    d->would_block_spoofed = c[DP_CLASS_UNAUTHENTICATED];
    d->next_step = NULL;
    if (d->days_with_reports < ins->opt.min_days || d->messages < ins->opt.min_messages) {
        d->verdict = "insufficient_data";
        d->reason = d->days_with_reports < ins->opt.min_days ? "too few days with reports to decide"
                                                             : "too few messages to decide";
    } else if (dp_verdict_enforced(&d->policy)) {
        d->verdict = "enforced";
        d->reason = "p=reject is published at pct=100";
    } else if (d->legitimate == 0 ||
               (double)c[DP_CLASS_ALIGNED] / (double)d->legitimate >= ins->opt.ready_threshold) {
        d->verdict = "ready";
        d->next_step = step_after(&d->policy);
        d->reason = d->next_step ? "legitimate mail is aligned: take the next step"
                                 : "legitimate mail is aligned, but no report said which policy is published";
    } else {
        d->verdict = "fix_senders";
        d->reason = "legitimate senders are not aligned: fix the sources listed first";
    }
}

/* What to do about a source that is not aligned, in one line; every
 * format shows the same words. */
const char *dp_verdict_fix_hint(const dp_insight_source *s) {
    switch (s->cls) {
    case DP_CLASS_THIRD_PARTY:
        return s->n_dkim_pass ? "signs with another domain's DKIM key: set up DKIM for this domain at the sender"
                              : "passes SPF for another domain: set a custom return-path (MAIL FROM) in this domain, "
                                "or DKIM for this domain";
    case DP_CLASS_FORWARDED:
        return "forwarded or a mailing list: reject leaves it to the receiver's override; no fix on the sender";
    case DP_CLASS_UNAUTHENTICATED:
        return "nothing passed: if this is your sender, set up DKIM or SPF for it; else it is spoofing";
    default:
        return NULL;
    }
}
