/* tally — one feed line into the report's model.
 *
 * A line is a rollup (it has "window_start") or a reports-feed line (it has
 * "sha256"); anything else is a bad line, named to the caller's warn
 * callback and skipped.  Rollups are summed into the period or the
 * previous one by their window's day; every figure is a sum, a min or a
 * max, so the order of lines and the split of a rollup's key over several
 * lines do not change the result.
 *
 * Names are compared as the DNS does: policy domains are lowercased and
 * lose a trailing dot, so "Example.COM." and "example.com" are one domain.
 * A rollup whose report named no policy domain counts under its
 * header_from; a reports-feed line without one is skipped (it carries no
 * policy to learn).
 */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "insight_internal.h"

#define DAY_SECONDS 86400

/* Times a feed may carry: 1970 to the end of 9999, the days a date can
 * name.  ingest keeps reports within 1990..2100; a line outside is not
 * one dmarcpipe wrote. */
#define TIME_MAX 253402300799LL

static int64_t day_of(int64_t t) { return t / DAY_SECONDS; }

static const char *str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int get_int(json_t *o, const char *key, int64_t *out) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) return -1;
    *out = json_integer_value(v);
    return 0;
}

/* The domain as the DNS compares it, into out; 0, or -1 when it is empty
 * or too long to be a domain. */
static int domain_key(const char *s, char out[256]) {
    size_t n = s ? strlen(s) : 0;
    if (n && s[n - 1] == '.') n--;
    if (n == 0 || n > 253) return -1;
    for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return 0;
}

static int wanted(const dp_insight_options *o, const char *domain) {
    if (o->n_domains == 0) return 1;
    for (size_t i = 0; i < o->n_domains; i++)
        if (strcmp(o->domains[i], domain) == 0) return 1;
    return 0;
}

static dp_insight_domain *domain_get(dp_insight *ins, const char *name) {
    dp_insight_domain *d = dp_map_get(&ins->domains, name);
    if (d) return d;
    d = calloc(1, sizeof *d);
    size_t span = (size_t)(ins->to - ins->prev_from + 1);
    if (d) {
        d->daily = calloc((size_t)ins->days * DP_CLASS_N, sizeof *d->daily);
        d->prev_day_seen = calloc((size_t)ins->days, 1);
        d->day_policy = calloc(span, sizeof *d->day_policy);
        d->last_day = DP_INSIGHT_DAY_UNSET;
    }
    const char *key = d && d->daily && d->prev_day_seen && d->day_policy ? dp_map_put(&ins->domains, name, d) : NULL;
    if (!key) {
        if (d) {
            free(d->daily);
            free(d->prev_day_seen);
            free(d->day_policy);
            free(d);
        }
        ins->failed = 1;
        return NULL;
    }
    d->name = (char *)key; /* the map's copy, freed with the map */
    return d;
}

static dp_insight_source *source_get(dp_insight *ins, dp_insight_domain *d, const char *ip) {
    dp_insight_source *s = dp_map_get(&d->sources, ip);
    if (s) return s;
    s = calloc(1, sizeof *s);
    const char *key = s ? dp_map_put(&d->sources, ip, s) : NULL;
    if (!key) {
        free(s);
        ins->failed = 1;
        return NULL;
    }
    s->ip = (char *)key;
    s->who.at = INT64_MIN;
    s->first_seen = INT64_MAX;
    s->last_seen = INT64_MIN;
    return s;
}

static dp_insight_reporter *reporter_get(dp_insight *ins, dp_insight_domain *d, const char *name) {
    dp_insight_reporter *r = dp_map_get(&d->reporters, name);
    if (r) return r;
    r = calloc(1, sizeof *r);
    const char *key = r ? dp_map_put(&d->reporters, name, r) : NULL;
    if (!key) {
        free(r);
        ins->failed = 1;
        return NULL;
    }
    r->name = (char *)key;
    return r;
}

/* Keeps the DP_INSIGHT_PASS_DOMAINS first names in byte order: which
 * names are kept must not depend on the order lines come in. */
static void add_pass_domain(dp_insight *ins, char **list, size_t *n, const char *name) {
    if (!name || !*name) return;
    size_t at = 0;
    while (at < *n && strcmp(list[at], name) < 0) at++;
    if ((at < *n && strcmp(list[at], name) == 0) || at == DP_INSIGHT_PASS_DOMAINS) return;
    char *copy = strdup(name);
    if (!copy) {
        ins->failed = 1;
        return;
    }
    if (*n == DP_INSIGHT_PASS_DOMAINS) free(list[--*n]); /* the last in order makes room */
    memmove(list + at + 1, list + at, (*n - at) * sizeof *list);
    list[at] = copy;
    (*n)++;
}

void dp_tally_who_free(dp_insight_who *w) {
    free(w->ptr);
    free(w->base_domain);
    free(w->as_org);
    free(w->country);
    free(w->service);
    free(w->service_type);
    memset(w, 0, sizeof *w);
    w->at = INT64_MIN;
}

/* NULL sorts after any string: a known value wins a tie over none. */
static int cmp_known(const char *a, const char *b) {
    if (!a || !b) return a ? -1 : b ? 1 : 0;
    return strcmp(a, b);
}

/* A rollup's source_* fields (absent in a v1 line, null while a lookup is
 * out) into its source's who: the latest rollup that knew anything wins,
 * ties go to the smaller values, so the order of lines does not matter. */
static void tally_who(dp_insight *ins, dp_insight_source *s, json_t *o, int64_t start) {
    dp_insight_who w = {.ptr = (char *)str(o, "source_ptr"),
                        .base_domain = (char *)str(o, "source_base_domain"),
                        .as_org = (char *)str(o, "source_as_org"),
                        .country = (char *)str(o, "source_country"),
                        .service = (char *)str(o, "source_service"),
                        .service_type = (char *)str(o, "source_service_type"),
                        .at = start};
    int64_t asn;
    if (get_int(o, "source_asn", &asn) == 0 && asn > 0 && asn <= UINT32_MAX) w.asn = (uint32_t)asn;
    if (!w.ptr && !w.base_domain && !w.as_org && !w.country && !w.service && !w.service_type && !w.asn) return;
    if (start < s->who.at) return;
    if (start == s->who.at) {
        const char *a[] = {w.service, w.ptr, w.base_domain, w.as_org, w.country, w.service_type};
        const char *b[] = {s->who.service, s->who.ptr, s->who.base_domain, s->who.as_org, s->who.country,
                           s->who.service_type};
        int c = 0;
        for (size_t i = 0; i < sizeof a / sizeof *a && c == 0; i++) c = cmp_known(a[i], b[i]);
        if (c == 0 && w.asn != s->who.asn) c = w.asn && (!s->who.asn || w.asn < s->who.asn) ? -1 : 1;
        if (c >= 0) return;
    }
    char **fields[] = {&w.ptr, &w.base_domain, &w.as_org, &w.country, &w.service, &w.service_type};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (*fields[i] && !(*fields[i] = strdup(*fields[i]))) ins->failed = 1;
    dp_tally_who_free(&s->who);
    s->who = w;
}

static int disposition_index(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "none") == 0) return DP_DISP_NONE;
    if (strcmp(s, "quarantine") == 0) return DP_DISP_QUARANTINE;
    if (strcmp(s, "reject") == 0) return DP_DISP_REJECT;
    return -1;
}

static const char *tally_rollup(dp_insight *ins, json_t *o) {
    int64_t start, messages;
    if (get_int(o, "window_start", &start) != 0) return "window_start is not an integer";
    if (start < 0 || start > TIME_MAX) return "window_start is not a time between 1970 and 9999";
    if (get_int(o, "messages", &messages) != 0 || messages < 0) return "messages is not a count";
    const char *ip = str(o, "source_ip");
    if (!ip || !*ip) return "no source_ip";
    /* A report without policy_published's domain still says whose mail
     * it saw: its records' header_from. */
    const char *dom = str(o, "policy_domain");
    if (!dom || !*dom) dom = str(o, "header_from");
    char name[256];
    if (domain_key(dom, name) != 0) return "no policy_domain or header_from";
    if (!wanted(&ins->opt, name)) return NULL;
    int64_t day = day_of(start);
    int current = day >= ins->from && day <= ins->to;
    if (!current && !(day >= ins->prev_from && day <= ins->prev_to)) return NULL;
    dp_insight_domain *d = domain_get(ins, name);
    dp_insight_source *s = d ? source_get(ins, d, ip) : NULL;
    if (!s) return NULL;
    d->listed = 1;
    tally_who(ins, s, o, start);
    uint64_t m = (uint64_t)messages;
    dp_class cls = dp_classify_rollup(str(o, "dkim"), str(o, "spf"), str(o, "override"), str(o, "dkim_result"),
                                      str(o, "spf_result"));
    if (!current) {
        d->prev_classes[cls] += m;
        d->prev_messages += m;
        if (m) d->prev_day_seen[day - ins->prev_from] = 1;
        s->previous_messages += m;
        return NULL;
    }
    d->classes[cls] += m;
    d->messages += m;
    if (str(o, "dkim") && strcmp(str(o, "dkim"), "pass") == 0) {
        d->dkim_aligned += m;
        s->dkim_aligned += m;
    }
    if (str(o, "spf") && strcmp(str(o, "spf"), "pass") == 0) {
        d->spf_aligned += m;
        s->spf_aligned += m;
    }
    int disp = disposition_index(str(o, "disposition"));
    if (disp >= 0) d->dispositions[disp] += m;
    d->daily[(size_t)(day - ins->from) * DP_CLASS_N + cls] += m;
    if (m && day > d->last_day) d->last_day = day;
    s->classes[cls] += m;
    s->messages += m;
    int64_t first, last;
    if (get_int(o, "first_seen", &first) != 0) first = start;
    if (get_int(o, "last_seen", &last) != 0) last = start;
    if (first < s->first_seen) s->first_seen = first;
    if (last > s->last_seen) s->last_seen = last;
    if (cls != DP_CLASS_ALIGNED) {
        const char *r = str(o, "dkim_result");
        if (r && strcmp(r, "pass") == 0) add_pass_domain(ins, s->dkim_pass, &s->n_dkim_pass, str(o, "dkim_domain"));
        r = str(o, "spf_result");
        if (r && strcmp(r, "pass") == 0) add_pass_domain(ins, s->spf_pass, &s->n_spf_pass, str(o, "spf_domain"));
    }
    const char *reporter = str(o, "reporter");
    dp_insight_reporter *r = reporter && m ? reporter_get(ins, d, reporter) : NULL;
    if (r) r->messages += m;
    return NULL;
}

static void copy_field(char *dst, size_t cap, const char *src) {
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) n = cap - 1; /* enumerated values are short; a longer one is a stranger's */
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Whether a report (begin, sha_key) is a later word on the policy than
 * the day's slot so far. */
static int later(int64_t begin, uint64_t sha_key, const dp_insight_day_policy *slot) {
    if (!slot->variant) return 1;
    if (begin != slot->begin) return begin > slot->begin;
    return sha_key > slot->sha_key;
}

/* The first 64 bits of a hex digest; a value that is not hex still gets
 * a key (a stranger's line), only a poorer tie-break. */
static uint64_t sha_key(const char *sha) {
    uint64_t k = 0;
    for (int i = 0; i < 16 && sha[i]; i++) {
        int c = tolower((unsigned char)sha[i]);
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c & 15;
        k = k << 4 | (uint64_t)v;
    }
    return k;
}

#define MAX_VARIANTS 1024 /* distinct policies kept per domain; more is a stranger's noise */

/* 1 + the index of p among the domain's policies, added if new; 0 when
 * memory runs out or the domain has too many. */
static uint32_t variant_of(dp_insight *ins, dp_insight_domain *d, const dp_insight_policy *p) {
    for (size_t i = 0; i < d->n_variants; i++) {
        const dp_insight_policy *v = &d->variants[i];
        if (strcmp(v->p, p->p) == 0 && strcmp(v->sp, p->sp) == 0 && strcmp(v->np, p->np) == 0 &&
            strcmp(v->adkim, p->adkim) == 0 && strcmp(v->aspf, p->aspf) == 0 &&
            strcmp(v->testing, p->testing) == 0 && v->has_pct == p->has_pct && v->pct == p->pct)
            return (uint32_t)i + 1;
    }
    if (d->n_variants == MAX_VARIANTS) return 0;
    if (d->n_variants == d->cap_variants) {
        size_t cap = d->cap_variants ? d->cap_variants * 2 : 4;
        dp_insight_policy *v = realloc(d->variants, cap * sizeof *v);
        if (!v) {
            ins->failed = 1;
            return 0;
        }
        d->variants = v;
        d->cap_variants = cap;
    }
    d->variants[d->n_variants++] = *p;
    return (uint32_t)d->n_variants;
}

static const char *tally_report(dp_insight *ins, json_t *o) {
    int64_t begin;
    if (get_int(o, "begin", &begin) != 0) return "begin is not an integer";
    if (begin < 0 || begin > TIME_MAX) return "begin is not a time between 1970 and 9999";
    const char *sha = str(o, "sha256");
    if (!sha) return "no sha256";
    char name[256];
    if (domain_key(str(o, "policy_domain"), name) != 0) return NULL; /* no policy to learn from */
    if (!wanted(&ins->opt, name)) return NULL;
    int64_t day = day_of(begin);
    if (day > ins->to) return NULL;
    dp_insight_domain *d = domain_get(ins, name);
    if (!d) return NULL;
    if (day >= ins->prev_from) d->listed = 1;
    dp_insight_policy p = {.known = 1};
    copy_field(p.p, sizeof p.p, str(o, "policy_p"));
    copy_field(p.sp, sizeof p.sp, str(o, "policy_sp"));
    copy_field(p.np, sizeof p.np, str(o, "policy_np"));
    copy_field(p.adkim, sizeof p.adkim, str(o, "policy_adkim"));
    copy_field(p.aspf, sizeof p.aspf, str(o, "policy_aspf"));
    copy_field(p.testing, sizeof p.testing, str(o, "policy_testing"));
    int64_t pct;
    if (get_int(o, "policy_pct", &pct) == 0 && pct >= 0 && pct <= 100) {
        p.has_pct = 1;
        p.pct = (uint32_t)pct;
    }
    dp_insight_day_policy *slot = day >= ins->prev_from ? &d->day_policy[day - ins->prev_from] : &d->before;
    uint64_t key = sha_key(sha);
    if (later(begin, key, slot)) {
        uint32_t v = variant_of(ins, d, &p);
        if (v) *slot = (dp_insight_day_policy){begin, key, v};
    }
    if (day < ins->from) return NULL;
    /* Every line is a report: `dmarcpipe run` writes an accepted report
     * once, and INPUTs that overlap would count their rollups twice too
     * (they are sums), so a set of the period's digests, which grows with
     * the reports rather than the domains, would buy nothing. */
    const char *org = str(o, "org_name");
    dp_insight_reporter *r = org ? reporter_get(ins, d, org) : NULL;
    if (r) r->reports++;
    return NULL;
}

void dp_tally_line(dp_insight *ins, const char *line, size_t len, const char *where) {
    ins->lines++;
    if (!line) { /* dropped by the reader */
        ins->bad_lines++;
        if (ins->opt.warn) ins->opt.warn(ins->opt.warn_ctx, where, "a line too long to be a feed line");
        return;
    }
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
    if (len == 0) return; /* a blank line carries nothing */
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);
    const char *why = NULL;
    char text[200];
    if (!o) {
        snprintf(text, sizeof text, "not JSON: %s", jerr.text);
        why = text;
    } else if (!json_is_object(o)) {
        why = "not a JSON object";
    } else if (json_object_get(o, "window_start")) {
        ins->rollup_lines++;
        why = tally_rollup(ins, o);
    } else if (json_object_get(o, "sha256")) {
        ins->report_lines++;
        why = tally_report(ins, o);
    } else {
        why = "neither a rollup nor a reports-feed line";
    }
    json_decref(o);
    if (why) {
        ins->bad_lines++;
        if (ins->opt.warn) ins->opt.warn(ins->opt.warn_ctx, where, why);
    }
}

/* The integer after `"key":` in a flat JSON line, without parsing the
 * line: a key's quotes cannot appear unescaped inside a string value. */
static int scan_int(const char *line, size_t len, const char *key, int64_t *out) {
    size_t k = strlen(key);
    for (const char *p = line; (p = memchr(p, '"', (size_t)(line + len - p))) != NULL; p++) {
        if ((size_t)(line + len - p) < k + 3 || memcmp(p + 1, key, k) != 0 || p[k + 1] != '"') continue;
        const char *q = p + k + 2;
        while (q < line + len && (*q == ' ' || *q == ':')) q++;
        char num[24];
        size_t n = 0;
        while (q < line + len && n < sizeof num - 1 && (isdigit((unsigned char)*q) || *q == '-')) num[n++] = *q++;
        if (n == 0) return -1;
        num[n] = '\0';
        *out = strtoll(num, NULL, 10);
        return 0;
    }
    return -1;
}

void dp_tally_scan(const dp_insight_options *o, int64_t latest[2], const char *line, size_t len) {
    int64_t t;
    if (!line) return;
    int which;
    if (scan_int(line, len, "window_start", &t) == 0)
        which = 0;
    else if (scan_int(line, len, "begin", &t) == 0)
        which = 1;
    else
        return;
    if (t < 0 || t > TIME_MAX) return; /* a bad line: the count pass names it */
    if (o->n_domains) {
        json_t *obj = json_loadb(line, len, 0, NULL);
        char name[256];
        int ok = obj && domain_key(str(obj, "policy_domain"), name) == 0 && wanted(o, name);
        json_decref(obj);
        if (!ok) return;
    }
    int64_t day = day_of(t);
    if (latest[which] == DP_INSIGHT_DAY_UNSET || day > latest[which]) latest[which] = day;
}
