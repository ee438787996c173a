/* gen_rollups.c -- dp-gen-rollups, synthetic feeds for `dmarcpipe report`.
 *
 * `dmarcpipe report` reads what `dmarcpipe run` writes: rollup lines and,
 * beside them, the reports feed.  Measuring it over a year of a large
 * operator's traffic needs millions of such lines with known totals, and
 * producing them through `dmarcpipe run` would take longer than the
 * measure.  This tool writes them directly, in exactly the format of
 * sink/format.c (the same members, in the same order, no spaces), from a
 * seeded PRNG: the same options give byte-identical output everywhere.
 *
 * What the lines look like, and why:
 *   - the days run from --days before a fixed last day (2026-12-06) to
 *     that day, in order, as a feed appended to by one run a day looks;
 *   - each line picks a policy domain, one of its --sources-per-domain
 *     senders and a reporter, skewed so that a few of each carry most of
 *     the traffic; so the distinct (domain, source) pairs stay within
 *     domains x sources however many lines there are, and the report's
 *     memory, which grows with those pairs and not with lines, can be
 *     shown not to grow with the file;
 *   - each sender has a fixed kind: the domain's own servers (aligned),
 *     an ESP signing with the domain's key (aligned), an ESP signing with
 *     its own (DKIM and SPF pass for the ESP's domain: third_party), a
 *     forwarder or mailing list (mostly overridden: forwarded), or a
 *     spoofer (nothing passes: unauthenticated), with a little noise;
 *   - a domain's published policy is fixed, or moves one step towards
 *     reject on a day of its own, and the disposition follows it;
 *   - message counts have a heavy tail.
 *
 * With --reports FILE it also writes the reports feed: one line per policy
 * domain and day that has rollups, from one reporter (taking turns), whose
 * records and messages are that day's rollups of the domain.  Its sha256 is
 * a pure function of the seed, domain and day.
 *
 * When done it prints on stderr one line of totals, so that a benchmark
 * can check the report's figures without reading the file again:
 *   lines=N rollup_lines=N report_lines=R messages=M records=X bytes=B
 *   domains=D days=T first_day=YYYY-MM-DD last_day=YYYY-MM-DD pairs=P
 * (lines counts both files; bytes too; pairs is the distinct (domain,
 * source) pairs the rollups use).
 *
 * No printf per line: numbers and strings are copied into a large buffer
 * written with write(2), so a 10M-line (4 GB) feed costs seconds.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "insight.h" /* the calendar dmarcpipe report uses: dp_insight_parse_day, _format_day */

#define OUTBUF_SIZE (4u << 20)
#define LINE_MAX_BYTES 2048 /* far above any line written here */
#define DAY 86400
#define SHARED_IPS 64       /* addresses per ESP or forwarder, shared by every domain */

/* ---- PRNG: splitmix64, as dp-gen-report ---------------------------------- */

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

static uint32_t below(rng *r, uint32_t n) { return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32); }

/* A uniform in [0, 1). */
static double unit(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* An index below n, half the time uniform and half the time squared, so
 * that low indices carry most of the traffic yet every index is drawn. */
static uint32_t skewed(rng *r, uint32_t n) {
    double u = unit(r);
    if (rng_next(r) & 1) u *= u;
    uint32_t i = (uint32_t)(u * n);
    return i < n ? i : n - 1;
}

/* A value fixed by its inputs: what a domain publishes, what a sender is. */
static uint64_t hash3(uint64_t seed, uint64_t a, uint64_t b) {
    return mix64(seed ^ mix64(a * 0x632be59bd9b4e019ULL ^ mix64(b + 0x1b873593u)));
}

/* ---- tables --------------------------------------------------------------- */

typedef struct {
    const char *org_name; /* as a rollup's reporter, JSON-safe */
    const char *email;
    const char *extra; /* NULL when the reporter sends none */
    int rfc9990;
    unsigned weight; /* share of the traffic, per mille */
} reporter;

static const reporter REPORTERS[] = {
    {"google.com", "noreply-dmarc-support@google.com", "https://support.google.com/a/answer/2466580", 0, 380},
    {"Enterprise Outlook", "dmarcreport@microsoft.com", NULL, 0, 200},
    {"Yahoo", "dmarchelp@yahooinc.com", NULL, 0, 110},
    {"Mail.Ru", "dmarc_support@corp.mail.ru", "http://help.mail.ru/mail-help", 0, 40},
    {"AMAZON-SES", "postmaster@amazonses.com", NULL, 0, 30},
    {"comcast.net", "dmarc_reports@comcast.net", NULL, 0, 40},
    {"AT&T", "dmarc-reports@att.net", NULL, 0, 30},
    {"Fastmail Pty Ltd", "dmarc-reports@fastmail.com", NULL, 0, 30},
    {"WEB.DE", "noreply-dmarc@sicher.web.de", "https://postmaster.web.de/en/case?c=r2002", 1, 40},
    {"GMX", "noreply-dmarc@sicher.gmx.net", "https://postmaster.gmx.net/en/case?c=r2002", 1, 40},
    {"Yandex", "dmarc_support@yandex.ru", "https://yandex.ru", 0, 30},
    {"Zoho Corporation", "noreply-dmarc@zoho.com", NULL, 0, 30},
};
#define N_REPORTERS (sizeof REPORTERS / sizeof REPORTERS[0])

static const char *const WORDS[] = {
    "acme",      "globex",  "initech",  "umbrella", "hooli",     "vandelay", "wayneent", "starkind",
    "wonka",     "tyrell",  "cyberdyne", "soylent", "oscorp",    "massive",  "gringotts", "monarch",
    "duff",      "krusty",  "pawnee",   "dunder",   "sterling",  "prestige", "aperture", "blackmesa",
    "nakatomi",  "virtucon", "zorg",    "bluth",    "pied",      "nimbus",   "octan",    "contoso",
    "fabrikam",  "northwind", "tailspin", "wingtip", "adventure", "litware", "proseware", "lucerne",
};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

static const char *const TLDS[] = {"com", "net", "org", "io", "de", "co.uk", "fr", "nl", "com.au", "ca"};
#define N_TLDS (sizeof TLDS / sizeof TLDS[0])

static const char *const SUBS[] = {"mail", "news", "info", "billing", "marketing", "notify", "support", "eu"};
#define N_SUBS (sizeof SUBS / sizeof SUBS[0])

static const char *const SELECTORS[] = {"google", "selector1", "selector2", "s1", "s2", "k1", "default", "dkim",
                                        "mail", "20230601", "20221208", "fm1", "fm2", "mx", "sig1"};
#define N_SELECTORS (sizeof SELECTORS / sizeof SELECTORS[0])

typedef struct {
    const char *dkim_domain, *selector, *envelope;
} esp;

static const esp ESPS[] = {
    {"sendgrid.info", "smtpapi", "sendgrid.net"},
    {"amazonses.com", "ug7nbtf4gccmlpwj322ax3p6ow6yfsug", "eu-west-1.amazonses.com"},
    {"amazonses.com", "224i4yxa5dv7c2xz3womw6peuasteono", "us-east-1.amazonses.com"},
    {"mcsv.net", "k2", "mail185.atl121.mcsv.net"},
    {"mktomail.com", "m1", "mktomail.com"},
    {"sparkpostmail.com", "scph0123", "sparkpostmail.com"},
    {"mailgun.org", "mx", "mailgun.org"},
    {"exacttarget.com", "200608", "bounce.s7.exacttarget.com"},
    {"hubspotemail.net", "hs1", "bf01x.hubspotemail.net"},
    {"zendesk.com", "zendesk1", "zendesk.com"},
};
#define N_ESPS (sizeof ESPS / sizeof ESPS[0])

static const char *const FORWARDERS[] = {"googlegroups.com", "lists.debian.org", "forwardemail.net",
                                         "pobox.com",        "alumni.example.edu", "groups.io"};
#define N_FORWARDERS (sizeof FORWARDERS / sizeof FORWARDERS[0])

static const char *const SPAM_TLDS[] = {"xyz", "top", "ru", "cn", "info", "biz", "online", "site"};
#define N_SPAM_TLDS (sizeof SPAM_TLDS / sizeof SPAM_TLDS[0])

/* First octets of mostly public /8s, as dp-gen-report's. */
static const uint8_t V4_FIRST[] = {209, 40, 52,  54,  66,  74,  98,  104, 131, 142, 157, 167, 185, 212, 213, 217,
                                   23,  34, 35,  64,  69,  72,  77,  80,  81,  82,  87,  91,  93,  94,  95,  108,
                                   136, 146, 149, 151, 155, 162, 173, 176, 178, 188, 195, 199, 207, 208};
#define N_V4_FIRST (sizeof V4_FIRST / sizeof V4_FIRST[0])

static const char *const V6_PREFIXES[] = {"2a00:1450:4864", "2a01:111:f403", "2a01:4f8:c17", "2001:41d0:302",
                                          "2607:f8b0:4864", "2603:10a6:20b", "2a02:6b8:c02"};
#define N_V6_PREFIXES (sizeof V6_PREFIXES / sizeof V6_PREFIXES[0])

/* ---- output --------------------------------------------------------------- */

typedef struct {
    int fd;
    const char *name;
    char *buf;
    size_t len;
    uint64_t bytes;
    int err;
} out;

static void out_flush(out *o) {
    size_t off = 0;
    while (off < o->len && !o->err) {
        ssize_t n = write(o->fd, o->buf + off, o->len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            o->err = errno;
            break;
        }
        off += (size_t)n;
    }
    o->bytes += o->len;
    o->len = 0;
}

/* Room for one whole line, so the pieces need no check of their own. */
static void out_line_room(out *o) {
    if (OUTBUF_SIZE - o->len < LINE_MAX_BYTES) out_flush(o);
}

static inline void put(out *o, const char *s, size_t n) {
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}
#define LIT(o, s) put((o), (s), sizeof(s) - 1)
static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

static void put_u64(out *o, uint64_t v) {
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof tmp - i);
}

static void put_i64(out *o, int64_t v) {
    if (v < 0) {
        LIT(o, "-");
        put_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(o, (uint64_t)v);
    }
}

/* `,"name":"value"` or `,"name":null`; every value here is JSON-safe. */
static void member(out *o, const char *name, const char *value) {
    LIT(o, ",\"");
    puts_(o, name);
    LIT(o, "\":");
    if (!value) {
        LIT(o, "null");
        return;
    }
    LIT(o, "\"");
    puts_(o, value);
    LIT(o, "\"");
}

/* ---- the model ------------------------------------------------------------ */

typedef struct {
    uint64_t lines, domains, days, sources, seed;
    const char *rollups_path, *reports_path;
} config;

enum kind { OWN, ESP_ALIGNED, ESP_THIRD, FORWARDER, SPOOFER };

/* A domain's name into buf: a word, a generation number past the first
 * round of words, and a TLD. */
static void domain_name(const config *c, uint64_t d, char *buf, size_t cap) {
    uint64_t w = (d + mix64(c->seed ^ 0x85ebca6bu) % N_WORDS) % N_WORDS, gen = d / N_WORDS;
    const char *tld = TLDS[mix64(c->seed ^ (d * 31 + 7)) % N_TLDS];
    if (gen == 0) snprintf(buf, cap, "%s.%s", WORDS[w], tld);
    else snprintf(buf, cap, "%s%" PRIu64 ".%s", WORDS[w], gen, tld);
}

/* The policy a domain publishes on day index t: a fixed p, or one step
 * towards reject from a day of its own (a quarter of the domains). */
typedef struct {
    const char *p, *sp;
    unsigned pct;
    const char *adkim, *aspf;
} policy;

static policy policy_of(const config *c, uint64_t d, uint64_t t) {
    static const char *const steps[] = {"none", "quarantine", "reject"};
    uint64_t h = hash3(c->seed, d, 0x9011c7);
    unsigned base = h % 100 < 55 ? 0 : h % 100 < 80 ? 1 : 2;
    if (base < 2 && (h >> 8) % 4 == 0 && t >= (h >> 16) % (c->days ? c->days : 1)) base++;
    policy p = {steps[base], (h >> 24) % 3 == 0 ? "none" : steps[base], 100, "r", "r"};
    if (base > 0 && (h >> 28) % 10 == 0) p.pct = 50;
    if ((h >> 32) % 8 == 0) p.adkim = "s";
    return p;
}

static enum kind kind_of(const config *c, uint64_t d, uint64_t s) {
    uint64_t k = hash3(c->seed, d, s) % 100;
    return k < 50 ? OWN : k < 65 ? ESP_ALIGNED : k < 77 ? ESP_THIRD : k < 85 ? FORWARDER : SPOOFER;
}

/* Address number i (distinct i, distinct address), about 10% IPv6. */
static void ip_format(char *buf, size_t cap, uint64_t i, uint64_t seed) {
    if (mix64(seed + i * 0x632be59bd9b4e019ULL) % 10 == 0) {
        uint64_t q = i / 0xfffe;
        snprintf(buf, cap, "%s:%x::%x", V6_PREFIXES[i % N_V6_PREFIXES], (unsigned)(0x1000 + (q & 0xefff)),
                 (unsigned)(i % 0xfffe + 1));
        return;
    }
    uint32_t rot = (uint32_t)mix64(seed ^ 0x1b873593u) & 0xffffffu;
    uint32_t low = ((uint32_t)(i / N_V4_FIRST) * 0x9e3779u + rot) & 0xffffffu;
    snprintf(buf, cap, "%u.%u.%u.%u", (unsigned)V4_FIRST[i % N_V4_FIRST], (unsigned)(low >> 16),
             (unsigned)((low >> 8) & 0xff), (unsigned)(low & 0xff));
}

/* The reporter of a line: by the weights in REPORTERS. */
static const reporter *pick_reporter(rng *r) {
    uint32_t x = below(r, 1000), acc = 0;
    for (size_t i = 0; i < N_REPORTERS; i++) {
        acc += REPORTERS[i].weight;
        if (x < acc) return &REPORTERS[i];
    }
    return &REPORTERS[0];
}

/* A heavy tail: most rollups are a message or two, a few are thousands. */
static uint64_t pick_messages(rng *r) {
    uint32_t x = below(r, 1000);
    if (x < 600) return 1 + below(r, 3);
    if (x < 900) return 1 + below(r, 50);
    if (x < 990) return 1 + below(r, 1000);
    return 1 + below(r, 20000);
}

typedef struct {
    uint64_t rollup_lines, report_lines, messages, records, pairs;
} totals;

typedef struct {
    uint64_t records, messages;
} day_sum;

/* One rollup line of domain d on day index t. */
static void rollup_line(const config *c, out *o, rng *r, int64_t first_day, uint64_t t, const char *const *names,
                        uint8_t *seen, day_sum *sums, totals *tot) {
    uint64_t d = skewed(r, (uint32_t)c->domains);
    uint64_t s = skewed(r, (uint32_t)c->sources);
    uint64_t pair = d * c->sources + s;
    if (!(seen[pair / 8] & (1u << (pair % 8)))) {
        seen[pair / 8] |= (uint8_t)(1u << (pair % 8));
        tot->pairs++;
    }
    const char *dom = names[d];
    const reporter *rep = pick_reporter(r);
    policy pol = policy_of(c, d, t);
    enum kind k = kind_of(c, d, s);
    uint64_t h = hash3(c->seed ^ 0x5eed, d, s); /* the sender's fixed traits */
    const esp *e = &ESPS[h % N_ESPS];
    const char *fwd = FORWARDERS[(h >> 8) % N_FORWARDERS];

    char ip[64], hf[300], spam[64];
    uint64_t ip_index = pair; /* own servers and spoofers: an address per pair */
    if (k == ESP_ALIGNED || k == ESP_THIRD) ip_index = c->domains * c->sources + (uint64_t)(e - ESPS) * SHARED_IPS;
    if (k == FORWARDER)
        ip_index = c->domains * c->sources + (N_ESPS + (h >> 8) % N_FORWARDERS) * SHARED_IPS;
    if (ip_index >= c->domains * c->sources) ip_index += (h >> 16) % SHARED_IPS;
    ip_format(ip, sizeof ip, ip_index, c->seed);
    const char *header_from = dom;
    if ((h >> 24) % 100 < 15) {
        snprintf(hf, sizeof hf, "%s.%s", SUBS[(h >> 32) % N_SUBS], dom);
        header_from = hf;
    }

    const char *dkim = "fail", *spf = "fail", *override = NULL;
    const char *dkim_domain = NULL, *dkim_selector = NULL, *dkim_result = NULL;
    const char *spf_domain = NULL, *spf_result = NULL;
    const char *own_selector = SELECTORS[(h >> 40) % N_SELECTORS];
    switch (k) {
    case OWN: /* aligned, with the odd broken signature or SPF miss */
        dkim_domain = header_from, dkim_selector = own_selector, dkim_result = "pass", dkim = "pass";
        spf_domain = header_from, spf_result = "pass", spf = "pass";
        if (below(r, 100) < 5) dkim_result = "fail", dkim = "fail";
        else if (below(r, 100) < 3) spf_result = "softfail", spf = "fail";
        break;
    case ESP_ALIGNED: /* the ESP signs with the domain's key, bounces to its own */
        dkim_domain = dom, dkim_selector = "s1", dkim_result = "pass", dkim = "pass";
        spf_domain = e->envelope, spf_result = "pass";
        break;
    case ESP_THIRD: /* a real service, not yet set up: its own DKIM and SPF pass */
        dkim_domain = e->dkim_domain, dkim_selector = e->selector, dkim_result = "pass";
        spf_domain = e->envelope, spf_result = "pass";
        if (below(r, 100) < 10) dkim_result = "temperror";
        break;
    case FORWARDER: /* the list broke the signature; the receiver mostly overrides */
        dkim_domain = dom, dkim_selector = own_selector, dkim_result = "fail";
        spf_domain = fwd, spf_result = below(r, 100) < 70 ? "pass" : "softfail";
        {
            uint32_t x = below(r, 100);
            override = x < 45 ? "forwarded" : x < 65 ? "mailing_list" : x < 75 ? "trusted_forwarder" : NULL;
        }
        break;
    case SPOOFER: /* nothing passes; a few signed with garbage, some let through */
        snprintf(spam, sizeof spam, "%s%u.%s", WORDS[(h >> 40) % N_WORDS], (unsigned)((h >> 48) % 1000),
                 SPAM_TLDS[(h >> 12) % N_SPAM_TLDS]);
        if (below(r, 100) < 30) dkim_domain = dom, dkim_selector = "default", dkim_result = "fail";
        spf_domain = spam;
        {
            uint32_t x = below(r, 3);
            spf_result = x == 0 ? "fail" : x == 1 ? "softfail" : "none";
        }
        {
            uint32_t x = below(r, 100);
            override = x < 5 ? "local_policy" : x < 8 ? "sampled_out" : NULL;
        }
        break;
    }
    const char *disposition = "none";
    int pass = strcmp(dkim, "pass") == 0 || strcmp(spf, "pass") == 0;
    if (!pass && !override && strcmp(pol.p, "none") != 0 && (pol.pct == 100 || below(r, 100) < pol.pct))
        disposition = pol.p;

    uint64_t m = pick_messages(r);
    uint64_t rec = 1 + below(r, (uint32_t)(m < 8 ? m : 8));
    int64_t ws = (first_day + (int64_t)t) * DAY;

    out_line_room(o);
    LIT(o, "{\"v\":1,\"window_start\":");
    put_i64(o, ws);
    LIT(o, ",\"window_end\":");
    put_i64(o, ws + DAY);
    member(o, "reporter", rep->org_name);
    member(o, "policy_domain", dom);
    member(o, "header_from", header_from);
    member(o, "source_ip", ip);
    member(o, "disposition", disposition);
    member(o, "dkim", dkim);
    member(o, "spf", spf);
    member(o, "override", override);
    member(o, "dkim_domain", dkim_domain);
    member(o, "dkim_selector", dkim_selector);
    member(o, "dkim_result", dkim_result);
    member(o, "spf_domain", spf_domain);
    member(o, "spf_result", spf_result);
    LIT(o, ",\"messages\":");
    put_u64(o, m);
    LIT(o, ",\"records\":");
    put_u64(o, rec);
    LIT(o, ",\"first_seen\":");
    put_i64(o, ws);
    LIT(o, ",\"last_seen\":");
    put_i64(o, ws + DAY - 1);
    LIT(o, "}\n");

    sums[d].records += rec;
    sums[d].messages += m;
    tot->rollup_lines++;
    tot->messages += m;
    tot->records += rec;
}

/* The reports-feed line of domain d for day index t, as the sink writes
 * it (sink/format.c, dp_format_report_line). */
static void report_line(const config *c, out *o, int64_t first_day, uint64_t t, uint64_t d, const char *dom,
                        const day_sum *sum) {
    const reporter *rep = &REPORTERS[(d + t) % N_REPORTERS];
    policy pol = policy_of(c, d, t);
    int64_t begin = (first_day + (int64_t)t) * DAY;
    char sha[65], id[40], input[400];
    for (int i = 0; i < 4; i++) snprintf(sha + 16 * i, 17, "%016" PRIx64, hash3(c->seed ^ 0x54a256, d * 4 + (uint64_t)i, t));
    snprintf(id, sizeof id, "%" PRIu64, hash3(c->seed ^ 0x1d, d, t) % UINT64_C(100000000000000000));
    snprintf(input, sizeof input, "/var/spool/dmarc/in/%s!%s!%" PRId64 "!%" PRId64 ".xml.gz", rep->org_name, dom,
             begin, begin + DAY - 1);
    for (char *p = input; *p; p++)
        if (*p == ' ') *p = '_';

    out_line_room(o);
    LIT(o, "{\"v\":1");
    member(o, "sha256", sha);
    member(o, "input", input);
    member(o, "part", input);
    member(o, "schema", rep->rfc9990 ? "rfc9990" : "rfc7489");
    member(o, "version", rep->rfc9990 ? NULL : "1.0");
    member(o, "org_name", rep->org_name);
    member(o, "email", rep->email);
    member(o, "extra_contact_info", rep->extra);
    member(o, "report_id", id);
    LIT(o, ",\"begin\":");
    put_i64(o, begin);
    LIT(o, ",\"end\":");
    put_i64(o, begin + DAY - 1);
    member(o, "generator", NULL);
    LIT(o, ",\"errors\":[]");
    member(o, "policy_domain", dom);
    member(o, "policy_adkim", pol.adkim);
    member(o, "policy_aspf", pol.aspf);
    member(o, "policy_p", pol.p);
    member(o, "policy_sp", pol.sp);
    member(o, "policy_np", rep->rfc9990 ? pol.sp : NULL);
    LIT(o, ",\"policy_pct\":");
    if (rep->rfc9990) LIT(o, "null");
    else put_u64(o, pol.pct);
    member(o, "policy_fo", NULL);
    member(o, "policy_testing", rep->rfc9990 ? "n" : NULL);
    member(o, "policy_discovery_method", rep->rfc9990 ? "psl" : NULL);
    member(o, "policy_psd", NULL);
    LIT(o, ",\"records\":");
    put_u64(o, sum->records);
    LIT(o, ",\"messages\":");
    put_u64(o, sum->messages);
    LIT(o, ",\"xml_bytes\":");
    put_u64(o, 900 + 700 * sum->records);
    LIT(o, "}\n");
}

static int open_out(out *o, const char *path) {
    memset(o, 0, sizeof *o);
    o->name = path ? path : "stdout";
    o->fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : STDOUT_FILENO;
    if (o->fd < 0) {
        fprintf(stderr, "dp-gen-rollups: %s: %s\n", path, strerror(errno));
        return -1;
    }
    o->buf = malloc(OUTBUF_SIZE);
    if (!o->buf) {
        fprintf(stderr, "dp-gen-rollups: out of memory\n");
        return -1;
    }
    return 0;
}

static int close_out(out *o) {
    out_flush(o);
    int rc = 0;
    if (o->err) {
        fprintf(stderr, "dp-gen-rollups: writing %s: %s\n", o->name, strerror(o->err));
        rc = -1;
    }
    if (o->fd != STDOUT_FILENO && close(o->fd) != 0) {
        fprintf(stderr, "dp-gen-rollups: closing %s: %s\n", o->name, strerror(errno));
        rc = -1;
    }
    free(o->buf);
    return rc;
}

static void usage(FILE *f) {
    fputs("usage: dp-gen-rollups --lines N [--domains D] [--days T] [--sources-per-domain S]\n"
          "                      [--seed X] [--reports FILE] [-o FILE]\n"
          "Writes N rollup lines (NDJSON, as `dmarcpipe run` writes them) over the T days\n"
          "(default 365) ending 2026-12-06, for D policy domains (default 1000) of S senders\n"
          "each (default 50); --reports FILE also writes the reports feed, one line per\n"
          "domain and day with rollups.  Totals go to stderr.\n",
          f);
}

static int num_opt(const char *name, const char *v, uint64_t min, uint64_t max, uint64_t *out_) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-' || *v == '+' || x < min || x > max) {
        fprintf(stderr, "dp-gen-rollups: %s needs a number from %" PRIu64 " to %" PRIu64 ", got '%s'\n", name, min,
                max, v);
        return -1;
    }
    *out_ = x;
    return 0;
}

int main(int argc, char **argv) {
    config c = {0, 1000, 365, 50, 1, NULL, NULL};
    int have_lines = 0;
    enum { O_LINES = 256, O_DOMAINS, O_DAYS, O_SOURCES, O_SEED, O_REPORTS };
    static const struct option opts[] = {
        {"lines", required_argument, 0, O_LINES},     {"domains", required_argument, 0, O_DOMAINS},
        {"days", required_argument, 0, O_DAYS},       {"sources-per-domain", required_argument, 0, O_SOURCES},
        {"seed", required_argument, 0, O_SEED},       {"reports", required_argument, 0, O_REPORTS},
        {"output", required_argument, 0, 'o'},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        int rc = 0;
        switch (ch) {
        case O_LINES: rc = num_opt("--lines", optarg, 1, UINT64_C(1) << 40, &c.lines), have_lines = 1; break;
        case O_DOMAINS: rc = num_opt("--domains", optarg, 1, 1000000, &c.domains); break;
        case O_DAYS: rc = num_opt("--days", optarg, 1, 3660, &c.days); break;
        case O_SOURCES: rc = num_opt("--sources-per-domain", optarg, 1, 100000, &c.sources); break;
        case O_SEED: rc = num_opt("--seed", optarg, 0, UINT64_MAX, &c.seed); break;
        case O_REPORTS: c.reports_path = optarg; break;
        case 'o': c.rollups_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc) return 2;
    }
    if (!have_lines || optind != argc) {
        usage(stderr);
        return 2;
    }
    /* skewed() draws 32-bit indices */
    if (c.domains * c.sources > UINT32_MAX) {
        fprintf(stderr, "dp-gen-rollups: --domains x --sources-per-domain must stay below 2^32\n");
        return 2;
    }

    int64_t last_day;
    dp_insight_parse_day("2026-12-06", &last_day);
    const int64_t first_day = last_day - (int64_t)c.days + 1;
    char **names = calloc(c.domains, sizeof *names);
    uint8_t *seen = calloc((c.domains * c.sources + 7) / 8, 1);
    day_sum *sums = calloc(c.domains, sizeof *sums);
    if (!names || !seen || !sums) {
        fprintf(stderr, "dp-gen-rollups: out of memory\n");
        return 1;
    }
    for (uint64_t d = 0; d < c.domains; d++) {
        char buf[128];
        domain_name(&c, d, buf, sizeof buf);
        if (!(names[d] = strdup(buf))) {
            fprintf(stderr, "dp-gen-rollups: out of memory\n");
            return 1;
        }
    }

    out ro, rp;
    if (open_out(&ro, c.rollups_path) != 0) return 1;
    if (c.reports_path && open_out(&rp, c.reports_path) != 0) return 1;
    totals tot = {0};
    /* Line i falls on day i * days / lines: the days in order, evenly
     * filled.  Each line draws from a stream of its own, so line i does
     * not depend on the lines before it. */
    uint64_t t = 0;
    for (uint64_t i = 0; i <= c.lines; i++) {
        uint64_t day = i < c.lines ? (uint64_t)(((unsigned __int128)i * c.days) / c.lines) : c.days;
        while (t < day) { /* the day is over: its reports */
            for (uint64_t d = 0; d < c.domains; d++) {
                if (sums[d].records == 0) continue;
                if (c.reports_path) {
                    report_line(&c, &rp, first_day, t, d, names[d], &sums[d]);
                    tot.report_lines++;
                }
                sums[d].records = sums[d].messages = 0;
            }
            t++;
        }
        if (i == c.lines) break;
        rng r = {mix64(c.seed ^ 0xda7a) ^ (i * 0xd1342543de82ef95ULL)};
        rollup_line(&c, &ro, &r, first_day, t, (const char *const *)names, seen, sums, &tot);
    }
    int rc = close_out(&ro);
    uint64_t bytes = ro.bytes;
    if (c.reports_path) {
        rc |= close_out(&rp);
        bytes += rp.bytes;
    }
    char a[11], b[11];
    dp_insight_format_day(first_day, a);
    dp_insight_format_day(last_day, b);
    fprintf(stderr,
            "lines=%" PRIu64 " rollup_lines=%" PRIu64 " report_lines=%" PRIu64 " messages=%" PRIu64
            " records=%" PRIu64 " bytes=%" PRIu64 " domains=%" PRIu64 " days=%" PRIu64
            " first_day=%s last_day=%s pairs=%" PRIu64 "\n",
            tot.rollup_lines + tot.report_lines, tot.rollup_lines, tot.report_lines, tot.messages, tot.records, bytes,
            c.domains, c.days, a, b, tot.pairs);
    for (uint64_t d = 0; d < c.domains; d++) free(names[d]);
    free(names);
    free(seen);
    free(sums);
    return rc ? 1 : 0;
}
