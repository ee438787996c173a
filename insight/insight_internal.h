/* insight_internal.h — the report's model, shared by the files of insight/.
 *
 * tally.c fills it from feed lines, verdict.c and alerts.c decide on it,
 * and the renderers (render_json.c, render_table.c, render_html.c) only
 * read it.  Every string here is owned by the model and freed with it.
 */
#ifndef DP_INSIGHT_INTERNAL_H
#define DP_INSIGHT_INTERNAL_H

#include <stdint.h>

#include "dp_buf.h"
#include "dp_map.h"
#include "insight.h"

/* The four classes of a rollup, in the order ties are broken: a source
 * whose messages split evenly takes the first. */
typedef enum dp_class {
    DP_CLASS_ALIGNED,         /* DMARC pass: policy_evaluated dkim or spf pass */
    DP_CLASS_FORWARDED,       /* DMARC fail, override forwarded / mailing_list / trusted_forwarder */
    DP_CLASS_THIRD_PARTY,     /* DMARC fail, DKIM or SPF passed for another domain */
    DP_CLASS_UNAUTHENTICATED, /* DMARC fail, nothing passed */
    DP_CLASS_N
} dp_class;

/* "aligned", "forwarded", "third_party", "unauthenticated" */
const char *dp_classify_name(dp_class c);
/* The class of one rollup, from its fields as the feed writes them (NULL
 * when absent).  `override` is the comma-joined list of override types. */
dp_class dp_classify_rollup(const char *dkim, const char *spf, const char *override, const char *dkim_result,
                            const char *spf_result);

enum { DP_DISP_NONE, DP_DISP_QUARANTINE, DP_DISP_REJECT, DP_DISP_N };

/* A published policy, as one report saw it.  Strings are short enumerated
 * values copied in ("none", "r", "y"); "" when the report had none. */
typedef struct dp_insight_policy {
    int known;               /* 0: no report carried one */
    char p[12], sp[12], np[12], adkim[4], aspf[4], testing[4];
    int has_pct;
    uint32_t pct;
    int64_t begin;           /* the report's begin: the policy's "as of" (in d->policy) */
} dp_insight_policy;

/* The latest report of one day, as far as the policy goes: a day holds 24
 * bytes, not a policy, because most days repeat one of a domain's few
 * policies (d->variants).  A year of days for thousands of domains then
 * costs megabytes, not hundreds of them. */
typedef struct dp_insight_day_policy {
    int64_t begin;           /* the report's begin */
    uint64_t sha_key;        /* its sha256's first 64 bits: ties on begin */
    uint32_t variant;        /* 1 + its index in d->variants; 0: no report that day */
} dp_insight_day_policy;

/* One change of the published policy (policy_history). */
typedef struct dp_insight_change {
    int64_t day;
    const dp_insight_policy *policy; /* in d->variants */
} dp_insight_change;

#define DP_INSIGHT_PASS_DOMAINS 4 /* pass domains kept per source, per method */

/* What the rollups said of a source IP (their source_* fields; v1 lines
 * and lookups not yet answered say nothing).  Kept from the latest
 * rollup that said anything, so a later answer wins over an earlier one
 * and the order of lines does not matter (ties: the smaller values). */
typedef struct dp_insight_who {
    char *ptr, *base_domain, *as_org, *country, *service, *service_type; /* NULL: unknown */
    uint32_t asn;   /* 0: unknown */
    int64_t at;     /* the window_start it came from; INT64_MIN: nothing known */
} dp_insight_who;

typedef struct dp_insight_source {
    char *ip;
    dp_insight_who who;
    uint64_t dkim_aligned, spf_aligned; /* messages with policy_evaluated dkim / spf pass, in the period */
    uint64_t classes[DP_CLASS_N];   /* messages per class in the period */
    uint64_t messages;
    uint64_t previous_messages;     /* in the previous period */
    dp_class cls;                   /* the class with most messages */
    int64_t first_seen, last_seen;  /* Unix seconds, over the period */
    /* Domains that passed DKIM / SPF for this source's messages while
     * DMARC failed: who signs or bounces for it (the fix).  The first
     * DP_INSIGHT_PASS_DOMAINS in byte order, sorted. */
    char *dkim_pass[DP_INSIGHT_PASS_DOMAINS], *spf_pass[DP_INSIGHT_PASS_DOMAINS];
    size_t n_dkim_pass, n_spf_pass;
} dp_insight_source;

/* A service's sources in one domain (services.c): the domain's sources
 * whose PTR the known-senders map named, grouped, with what is missing
 * for them to align. */
typedef struct dp_insight_service {
    const char *name, *type;  /* a source's who.service / who.service_type */
    uint64_t messages, dkim_aligned, spf_aligned;
    uint64_t classes[DP_CLASS_N];
    size_t n_ips;
    char *missing;  /* "DKIM not set up for your domain", ...; "nothing: aligned" */
    char *text;     /* "SendGrid (esp): 11,200 messages from 12 IPs, DKIM not set up for your domain" */
} dp_insight_service;

typedef struct dp_insight_reporter {
    char *name;
    uint64_t reports, messages;
} dp_insight_reporter;

typedef struct dp_insight_alert {
    const char *kind;       /* "new_source", "pass_rate_drop", "unauthenticated_rise", "reports_stopped" */
    const char *domain;     /* the domain's name, owned by the model */
    char *text;             /* one line for people */
    char *figures;          /* a JSON object's members, for the json renderer */
} dp_insight_alert;

typedef struct dp_insight_domain {
    char *name;
    uint64_t classes[DP_CLASS_N], prev_classes[DP_CLASS_N];
    uint64_t messages, prev_messages;
    uint64_t dkim_aligned, spf_aligned;       /* policy_evaluated dkim=pass / spf=pass */
    uint64_t dispositions[DP_DISP_N];
    int listed;                 /* has rollups or reports in the period or the previous one */
    int64_t last_day;           /* the latest day with rollups, up to the period's end */
    uint64_t *daily;            /* [day * DP_CLASS_N + class], over the period */
    uint8_t *prev_day_seen;     /* days of the previous period with rollups */
    uint64_t days_with_reports, prev_days_with_reports;
    dp_map reporters;           /* org name -> dp_insight_reporter */
    dp_insight_day_policy *day_policy; /* per day of [prev_from, to]: the latest report's */
    dp_insight_day_policy before;      /* the latest report's before prev_from */
    dp_insight_policy *variants;       /* the distinct policies reports showed */
    size_t n_variants, cap_variants;
    dp_insight_policy policy;          /* the latest at the period's end, begin set */
    dp_insight_change *history;        /* verdict.c: the policy at prev_from, then each change */
    size_t n_history;
    dp_map sources;             /* ip -> dp_insight_source */
    dp_insight_source **sorted; /* sources with messages in the period, in report order */
    size_t n_sorted;
    dp_insight_reporter **sorted_reporters;
    size_t n_sorted_reporters;
    dp_insight_service *services; /* services.c: by messages not aligned, messages, name */
    size_t n_services;
    /* The verdict (verdict.c). */
    const char *verdict;        /* "insufficient_data", "enforced", "ready", "fix_senders" */
    const char *next_step;      /* "quarantine", "reject" or NULL */
    const char *reason;         /* one line for people */
    uint64_t legitimate, would_block_legitimate, would_block_spoofed;
} dp_insight_domain;

struct dp_insight {
    dp_insight_options opt;
    int64_t from, to, days;     /* the period, inclusive days */
    int64_t prev_from, prev_to;
    uint64_t lines, bad_lines, rollup_lines, report_lines;
    dp_map domains;             /* name -> dp_insight_domain */
    int failed;                 /* memory ran out: the report is incomplete */
    dp_insight_domain **sorted; /* by name */
    size_t n_sorted;
    dp_insight_alert *alerts;
    size_t n_alerts, cap_alerts;
    uint64_t totals[DP_CLASS_N];
    uint64_t total_messages;
};

/* tally.c: count one feed line into the model (the period is set). */
void dp_tally_line(dp_insight *ins, const char *line, size_t len, const char *where);
/* tally.c: the first pass, when the period's end was not named: the
 * latest day of a rollup's window_start (latest[0]) and of a report's
 * begin (latest[1]), DP_INSIGHT_DAY_UNSET while none was seen.  Only
 * lines of the domains asked for count. */
void dp_tally_scan(const dp_insight_options *o, int64_t latest[2], const char *line, size_t len);

/* tally.c: frees what a source's who holds. */
void dp_tally_who_free(dp_insight_who *w);

/* verdict.c: sorts sources and reporters, and decides every domain. */
void dp_verdict_decide(dp_insight *ins, dp_insight_domain *d);
/* What to do about a source, in one line; NULL for an aligned one. */
const char *dp_verdict_fix_hint(const dp_insight_source *s);
/* Whether two reports say the same policy: an absent pct is 100 and an
 * absent testing flag is "n", so that RFC 7489 and RFC 9990 reporters of
 * one policy agree. */
int dp_verdict_same_policy(const dp_insight_policy *a, const dp_insight_policy *b);
/* The policy whose reports cover the period's end: p=reject at pct 100,
 * not in testing. */
int dp_verdict_enforced(const dp_insight_policy *p);

/* services.c: groups a decided domain's sources by service. */
void dp_services_group(dp_insight *ins, dp_insight_domain *d);
/* What a source is known as, for a column beside it: its service, else
 * its PTR's base domain, else NULL. */
const char *dp_services_label(const dp_insight_source *s);

/* alerts.c: the changes against the previous period. */
void dp_alerts_find(dp_insight *ins);

/* Where a renderer's buffer goes when it grows: the renderers call
 * dp_insight_spill_now between domains, so a report of thousands of
 * domains is written as it is rendered, never held whole.  With f NULL
 * (tests) everything stays in the buffer. */
typedef struct dp_insight_spill {
    FILE *f;
    int failed;   /* a write failed: later spills do nothing */
} dp_insight_spill;
void dp_insight_spill_now(dp_insight_spill *spill, dp_buf *out);

/* The renderers, each into a buffer (spill may be NULL). */
void dp_render_json(const dp_insight *ins, dp_buf *out, dp_insight_spill *spill);
void dp_render_table(const dp_insight *ins, dp_buf *out, dp_insight_spill *spill);
void dp_render_html(const dp_insight *ins, dp_buf *out, dp_insight_spill *spill);

/* Ratios for output: num/den, or -1 when den is 0 (written as null). */
double dp_insight_ratio(uint64_t num, uint64_t den);

#endif
