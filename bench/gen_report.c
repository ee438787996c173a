/* gen_report.c -- dp-gen-report, a synthetic DMARC aggregate report generator.
 *
 * The parser benchmarks and the large-input tests need reports of arbitrary
 * size (a few records up to several GiB) whose exact totals are known up
 * front, without shipping multi-gigabyte fixtures. This tool writes such
 * reports from a seeded PRNG (splitmix64): the same options and seed always
 * give byte-identical output, on any platform, so a failure seen in CI can be
 * replayed locally.
 *
 * The records are meant to look like what Google, Microsoft, Yahoo and
 * friends actually send: pretty-printed XML, one policy domain per report,
 * mostly aligned mail plus ESP traffic, forwarding and spoofing, heavy-tailed
 * message counts, about 10% IPv6 sources, and policy_evaluated results that
 * are consistent with auth_results under the published adkim/aspf modes.
 * Two dialects are supported: RFC 7489 Appendix C (no namespace, <version>)
 * and RFC 9990 (urn:ietf:params:xml:ns:dmarc-2.0, <np>, <testing>,
 * <discovery_method>, <generator>, no <pct>).
 *
 * When done it prints "records=N messages=M bytes=B" on stderr, the totals
 * over all reports written (messages is the sum of <count>), so callers can
 * check a parser's figures without parsing the XML a second time.
 *
 * Speed matters because benchmarks generate 1 GiB inputs on the fly: output
 * goes through a large buffer written with write(2), literals are appended
 * with fixed-size memcpy, and numbers are formatted by hand. No printf in the
 * per-record path.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_OUTBUF_SIZE (4u << 20)
/* Far above any record we emit (under 2 KiB); reserving this much before a
 * record guarantees it never straddles a flush, so it can be taken back. */
#define BENCH_RECORD_MAX (16u << 10)

/* ------------------------------------------------------------------------ */
/* PRNG                                                                     */
/* ------------------------------------------------------------------------ */

/* splitmix64: tiny state, good enough statistics, and trivially seekable,
 * which lets every report get an independent stream derived from
 * (seed, report index) so report K does not depend on reports 0..K-1. */
typedef struct {
    uint64_t s;
} bench_rng;

static uint64_t bench_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t bench_rng_next(bench_rng *r) {
    r->s += 0x9e3779b97f4a7c15ULL;
    return bench_mix64(r->s);
}

/* Multiply-shift instead of modulo: no division, and the bias for the small
 * n used here is far below anything a benchmark could notice. */
static uint32_t bench_rng_below(bench_rng *r, uint32_t n) {
    return (uint32_t)(((bench_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* True with probability pct/100. */
static int bench_rng_pct(bench_rng *r, uint32_t pct) {
    return bench_rng_below(r, 100) < pct;
}

/* ------------------------------------------------------------------------ */
/* Output buffer                                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    int fd;
    const char *name;  /* for error messages */
    char *buf;
    size_t len;
    uint64_t flushed;  /* bytes already handed to write(2) for this file */
    int err;           /* first errno seen; later writes are dropped */
} bench_out;

static void bench_out_flush(bench_out *o) {
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
    o->flushed += o->len;
    o->len = 0;
}

/* Every piece appended is far smaller than the buffer, so one check and one
 * flush are enough; inlined, the memcpy of a literal becomes a few moves. */
static inline void bench_out_put(bench_out *o, const char *s, size_t n) {
    if (BENCH_OUTBUF_SIZE - o->len < n) bench_out_flush(o);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

#define BENCH_LIT(o, lit) bench_out_put((o), (lit), sizeof(lit) - 1)

static void bench_out_u64(bench_out *o, uint64_t v) {
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    bench_out_put(o, tmp + i, sizeof(tmp) - i);
}

static uint64_t bench_out_total(const bench_out *o) {
    return o->flushed + o->len;
}

/* <TAG>value</TAG> on its own line; IND is a literal of spaces. */
#define BENCH_ELEM(o, IND, TAG, s, n)                                      \
    do {                                                                   \
        BENCH_LIT((o), IND "<" TAG ">");                                   \
        bench_out_put((o), (s), (n));                                      \
        BENCH_LIT((o), "</" TAG ">\n");                                    \
    } while (0)
#define BENCH_ELEMC(o, IND, TAG, cs) BENCH_ELEM(o, IND, TAG, (cs), strlen(cs))

/* ------------------------------------------------------------------------ */
/* String pools                                                             */
/* ------------------------------------------------------------------------ */

/* Distinct IPs and domains are rendered once at startup into one arena, so
 * the record loop only copies bytes. */
typedef struct {
    char *data;
    size_t used, cap;
    size_t *off;  /* n + 1 entries: string i is data[off[i] .. off[i+1]) */
    size_t n, ncap;
} bench_pool;

static void *bench_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "dp-gen-report: out of memory\n");
        exit(1);
    }
    return q;
}

static void bench_pool_add(bench_pool *p, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) n = (int)sizeof(tmp) - 1;
    if (p->used + (size_t)n > p->cap) {
        p->cap = (p->cap + (size_t)n) * 2;
        p->data = bench_xrealloc(p->data, p->cap);
    }
    if (p->n + 2 > p->ncap) {
        p->ncap = (p->ncap + 2) * 2;
        p->off = bench_xrealloc(p->off, p->ncap * sizeof(*p->off));
    }
    if (p->n == 0) p->off[0] = 0;
    memcpy(p->data + p->used, tmp, (size_t)n);
    p->used += (size_t)n;
    p->off[++p->n] = p->used;
}

static const char *bench_pool_get(const bench_pool *p, size_t i, size_t *len) {
    *len = p->off[i + 1] - p->off[i];
    return p->data + p->off[i];
}

static void bench_pool_free(bench_pool *p) {
    free(p->data);
    free(p->off);
}

/* ------------------------------------------------------------------------ */
/* Static vocabulary                                                        */
/* ------------------------------------------------------------------------ */

enum { BENCH_ID_DECIMAL, BENCH_ID_HEX32, BENCH_ID_DOTTED };

typedef struct {
    const char *org_name;  /* already XML-escaped */
    const char *email;
    const char *extra;     /* NULL when the reporter sends none */
    int id_style;
    int outlook_ids;       /* envelope_to, envelope_from, header_from order */
} bench_reporter;

static const bench_reporter bench_reporters[] = {
    {"google.com", "noreply-dmarc-support@google.com",
     "https://support.google.com/a/answer/2466580", BENCH_ID_DECIMAL, 0},
    {"Enterprise Outlook", "dmarcreport@microsoft.com", NULL, BENCH_ID_HEX32, 1},
    {"Yahoo", "dmarchelp@yahooinc.com", NULL, BENCH_ID_DOTTED, 0},
    {"Mail.Ru", "dmarc_support@corp.mail.ru", "http://help.mail.ru/mail-help",
     BENCH_ID_DECIMAL, 0},
    {"AMAZON-SES", "postmaster@amazonses.com", NULL, BENCH_ID_HEX32, 0},
    {"comcast.net", "dmarc_reports@comcast.net", NULL, BENCH_ID_DOTTED, 0},
    /* An entity in character data, as real reports sometimes have. */
    {"AT&amp;T", "dmarc-reports@att.net", NULL, BENCH_ID_DECIMAL, 0},
    {"Fastmail Pty Ltd", "dmarc-reports@fastmail.com", NULL, BENCH_ID_DECIMAL, 0},
    {"WEB.DE", "noreply-dmarc@web.de", NULL, BENCH_ID_HEX32, 0},
    {"GMX", "noreply-dmarc@gmx.net", NULL, BENCH_ID_HEX32, 0},
    {"Yandex", "dmarc_support@yandex.ru", "https://yandex.ru", BENCH_ID_DECIMAL, 0},
    {"Zoho Corporation", "noreply-dmarc@zoho.com", NULL, BENCH_ID_DOTTED, 0},
};
#define BENCH_NREPORTERS (sizeof(bench_reporters) / sizeof(bench_reporters[0]))

static const char *const bench_words[] = {
    "acme", "globex", "initech", "umbrella", "hooli", "vandelay", "wayneent",
    "starkind", "wonka", "tyrell", "cyberdyne", "soylent", "oscorp", "massive",
    "gringotts", "monarch", "duff", "krusty", "pawnee", "dunder", "sterling",
    "prestige", "aperture", "blackmesa", "nakatomi", "virtucon", "zorg",
    "bluth", "pied", "nimbus", "octan", "contoso", "fabrikam", "northwind",
    "tailspin", "wingtip", "adventure", "litware", "proseware", "lucerne",
};
#define BENCH_NWORDS (sizeof(bench_words) / sizeof(bench_words[0]))

static const char *const bench_tlds[] = {
    "com", "net", "org", "io", "de", "co.uk", "fr", "nl", "com.au", "ca",
};
#define BENCH_NTLDS (sizeof(bench_tlds) / sizeof(bench_tlds[0]))

/* header_from is usually the organizational domain, sometimes a subdomain. */
static const char *const bench_subs[] = {
    "mail", "news", "info", "billing", "marketing", "notify", "support", "eu",
};
#define BENCH_NSUBS (sizeof(bench_subs) / sizeof(bench_subs[0]))

static const char *const bench_selectors[] = {
    "google", "selector1", "selector2", "s1", "s2", "k1", "default", "dkim",
    "mail", "20230601", "20221208", "fm1", "fm2", "protonmail", "mx", "sig1",
};
#define BENCH_NSELECTORS (sizeof(bench_selectors) / sizeof(bench_selectors[0]))

typedef struct {
    const char *dkim_domain;
    const char *selector;  /* NULL: an SES-style random 32-char selector */
    const char *envelope;
} bench_esp;

static const bench_esp bench_esps[] = {
    {"sendgrid.info", "smtpapi", "sendgrid.net"},
    {"amazonses.com", NULL, "eu-west-1.amazonses.com"},
    {"amazonses.com", NULL, "us-east-1.amazonses.com"},
    {"mcsv.net", "k2", "mail185.atl121.mcsv.net"},
    {"mktomail.com", "m1", "mktomail.com"},
    {"sparkpostmail.com", "scph0123", "sparkpostmail.com"},
    {"mailgun.org", "mx", "mailgun.org"},
    {"exacttarget.com", "200608", "bounce.s7.exacttarget.com"},
    {"hubspotemail.net", "hs1", "bf01x.hubspotemail.net"},
    {"zendesk.com", "zendesk1", "zendesk.com"},
};
#define BENCH_NESPS (sizeof(bench_esps) / sizeof(bench_esps[0]))

static const char *const bench_forwarders[] = {
    "googlegroups.com", "lists.debian.org", "forwardemail.net", "pobox.com",
    "alumni.example.edu", "groups.io",
};
#define BENCH_NFORWARDERS (sizeof(bench_forwarders) / sizeof(bench_forwarders[0]))

static const char *const bench_spam_tlds[] = {
    "xyz", "top", "ru", "cn", "info", "biz", "online", "site",
};
#define BENCH_NSPAMTLDS (sizeof(bench_spam_tlds) / sizeof(bench_spam_tlds[0]))

/* First octets of mostly-public /8s: no RFC 1918, loopback, CGNAT,
 * documentation or multicast space, so the output passes for real traffic. */
static const uint8_t bench_v4_first[] = {
    209, 40,  52,  54,  66,  74,  98,  104, 131, 142, 157, 167, 185, 212,
    213, 217, 23,  34,  35,  64,  69,  72,  77,  80,  81,  82,  87,  91,
    93,  94,  95,  108, 136, 146, 149, 151, 155, 162, 173, 176, 178, 188,
    195, 199, 207, 208,
};
#define BENCH_NV4FIRST (sizeof(bench_v4_first) / sizeof(bench_v4_first[0]))

static const char *const bench_v6_prefixes[] = {
    "2a00:1450:4864", "2a01:111:f403", "2a01:4f8:c17", "2001:41d0:302",
    "2607:f8b0:4864", "2603:10a6:20b", "2a02:6b8:c02",
};
#define BENCH_NV6PREFIXES (sizeof(bench_v6_prefixes) / sizeof(bench_v6_prefixes[0]))

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

enum { BENCH_SCHEMA_7489, BENCH_SCHEMA_9990 };

typedef struct {
    uint64_t records;       /* per report (a minimum with --target-bytes) */
    uint64_t reports;
    uint64_t ips;
    uint64_t domains;
    uint64_t reporters;
    uint64_t target_bytes;  /* per report; 0 = off */
    uint64_t max_bytes;     /* per report; 0 = off */
    uint64_t seed;
    int schema;
    int distinct_ips;       /* every record gets a source IP of its own */
    const char *out;        /* NULL = stdout */
} bench_cfg;

typedef struct {
    bench_pool ips;
    bench_pool domains;
    bench_pool reporter_names;  /* for reporters beyond the built-in table */
} bench_pools;

typedef struct {
    uint64_t records, messages, bytes;
} bench_totals;

/* Source address number i, rendered into buf (NUL-terminated; returns the
 * length). Distinctness is by construction, not by rejection: each index
 * maps through a bijection into its own address, exact for i below
 * BENCH_MAX_DISTINCT_IPS (about 770 million IPv4 indices), far past any
 * useful --ips. */
#define BENCH_MAX_DISTINCT_IPS ((uint64_t)BENCH_NV4FIRST << 24)
static size_t bench_ip_format(char *buf, size_t cap, uint64_t i, uint64_t seed,
                              uint32_t rot) {
    int n;
    if (bench_mix64(seed + i * 0x632be59bd9b4e019ULL) % 10 == 0) {
        /* ~10% IPv6; the nonzero fourth group keeps RFC 5952 form. */
        uint64_t q = i / 0xfffe;
        n = snprintf(buf, cap, "%s:%x::%x", bench_v6_prefixes[i % BENCH_NV6PREFIXES],
                     (unsigned)(0x1000 + (q & 0xefff)), (unsigned)(i % 0xfffe + 1));
    } else {
        /* Odd multiplier + offset is a bijection mod 2^24, so indices
         * sharing a first octet still get different low 24 bits. */
        uint32_t j = (uint32_t)(i / BENCH_NV4FIRST);
        uint32_t low = (j * 0x9e3779u + rot) & 0xffffffu;
        n = snprintf(buf, cap, "%u.%u.%u.%u", (unsigned)bench_v4_first[i % BENCH_NV4FIRST],
                     (unsigned)(low >> 16), (unsigned)((low >> 8) & 0xff),
                     (unsigned)(low & 0xff));
    }
    if (n < 0 || (size_t)n >= cap) n = 0;
    return (size_t)n;
}

static uint32_t bench_ip_rot(uint64_t seed) {
    return (uint32_t)bench_mix64(seed ^ 0x1b873593u) & 0xffffffu;
}

/* Render N distinct source IPs into the pool. */
static void bench_make_ips(bench_pool *p, uint64_t n, uint64_t seed) {
    uint32_t rot = bench_ip_rot(seed);
    char tmp[64];
    for (uint64_t i = 0; i < n; i++) {
        bench_ip_format(tmp, sizeof(tmp), i, seed, rot);
        bench_pool_add(p, "%s", tmp);
    }
}

static void bench_make_domains(bench_pool *p, uint64_t n, uint64_t seed) {
    uint64_t shift = bench_mix64(seed ^ 0x85ebca6bu) % BENCH_NWORDS;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t w = (i + shift) % BENCH_NWORDS, gen = i / BENCH_NWORDS;
        const char *tld = bench_tlds[bench_mix64(seed ^ (i * 31 + 7)) % BENCH_NTLDS];
        if (gen == 0)
            bench_pool_add(p, "%s.%s", bench_words[w], tld);
        else
            bench_pool_add(p, "%s%" PRIu64 ".%s", bench_words[w], gen, tld);
    }
}

/* ------------------------------------------------------------------------ */
/* Records                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *s;
    size_t n;
    int ours;  /* belongs to the policy domain's organization */
} bench_ident;

typedef struct {
    bench_ident domain;
    const char *selector;
    size_t selector_len;
    const char *result;
    const char *human;  /* NULL: no human_result */
} bench_dkim;

/* Per-record scratch; the strings that are not pool or table entries are
 * built in these buffers. */
typedef struct {
    char hf[192], spam1[32], spam2[32], sesel[40], ipbuf[64];
    size_t ip_len;
    const char *ip;
    uint64_t count;
    const char *disposition, *pol_dkim, *pol_spf, *reason;
    const char *envelope_to;  /* only emitted in Outlook style */
    bench_ident header_from, envelope_from;
    bench_dkim dkim[2];
    int ndkim;
    bench_ident spf_domain;
    const char *spf_result;
} bench_record;

/* Per-report policy, a pure function of (seed, domain) so every report for a
 * domain shows the same published record. */
typedef struct {
    const char *domain;
    size_t domain_len;
    const char *p, *sp, *np;
    char adkim, aspf;
    uint32_t pct;
    const char *fo;
    uint32_t sel_a, sel_b;  /* the domain's own DKIM selectors */
} bench_policy;

static void bench_policy_for(bench_policy *pol, const bench_pools *pools,
                             uint64_t dom, uint64_t seed) {
    static const char *const ps[] = {"none", "quarantine", "reject"};
    uint64_t h = bench_mix64(seed ^ (dom * 0xd6e8feb86659fd93ULL) ^ 0x5bd1e995u);
    pol->domain = bench_pool_get(&pools->domains, dom, &pol->domain_len);
    uint32_t pi = (uint32_t)(h % 10);
    pol->p = pi < 3 ? ps[0] : pi < 6 ? ps[1] : ps[2];
    pol->sp = (h >> 8) % 4 == 0 ? "none" : pol->p;
    pol->np = (h >> 12) % 3 == 0 ? "reject" : pol->p;
    pol->adkim = (h >> 16) % 5 == 0 ? 's' : 'r';
    pol->aspf = (h >> 20) % 5 == 0 ? 's' : 'r';
    uint32_t pc = (uint32_t)((h >> 24) % 20);
    pol->pct = pc == 0 ? 10 : pc == 1 ? 50 : 100;
    pol->fo = (h >> 32) % 3 == 0 ? "1" : "0";
    pol->sel_a = (uint32_t)((h >> 36) % BENCH_NSELECTORS);
    pol->sel_b = (pol->sel_a + 1 + (uint32_t)((h >> 44) % (BENCH_NSELECTORS - 1))) %
                 BENCH_NSELECTORS;
}

static size_t bench_rand_label(bench_rng *r, char *buf, size_t cap) {
    size_t n = 5 + bench_rng_below(r, 6);
    for (size_t i = 0; i < n; i++) buf[i] = (char)('a' + bench_rng_below(r, 26));
    const char *tld = bench_spam_tlds[bench_rng_below(r, BENCH_NSPAMTLDS)];
    size_t tl = strlen(tld);
    if (n + 1 + tl >= cap) tl = cap - n - 2;
    buf[n] = '.';
    memcpy(buf + n + 1, tld, tl);
    buf[n + 1 + tl] = '\0';
    return n + 1 + tl;
}

static bench_ident bench_ident_c(const char *s, int ours) {
    bench_ident id = {s, strlen(s), ours};
    return id;
}

/* DMARC identifier alignment (RFC 7489 3.1), simplified by construction:
 * everything we generate under the policy domain shares its organizational
 * domain, and nothing else does. */
static int bench_aligned(const bench_ident *id, const bench_ident *hf, char mode) {
    if (!id->ours || !hf->ours) return 0;
    if (mode == 'r') return 1;
    return id->n == hf->n && memcmp(id->s, hf->s, id->n) == 0;
}

/* Heavy-tailed: most rows are a message or two, a few are bulk senders. */
static uint64_t bench_count(bench_rng *r) {
    uint32_t c = bench_rng_below(r, 100);
    if (c < 70) return 1;
    if (c < 90) return 2 + bench_rng_below(r, 9);
    if (c < 98) return 11 + bench_rng_below(r, 990);
    return 1001 + bench_rng_below(r, 99000);
}

/* ip_seq is UINT64_MAX normally; with --distinct-ips it is the record's
 * number over the whole run, and the record gets that address of its own
 * instead of one from the pool (the draws are made all the same, so the
 * rest of the output does not change). */
static void bench_make_record(bench_record *rec, bench_rng *r,
                              const bench_policy *pol, const bench_pools *pools,
                              uint64_t ip_seq, uint64_t seed) {
    /* Skew toward low pool indices: a few IPs send most of the mail. */
    uint32_t nip = (uint32_t)pools->ips.n;
    uint32_t ipi = bench_rng_below(r, nip);
    if (bench_rng_pct(r, 50)) ipi = bench_rng_below(r, ipi + 1);
    if (ip_seq == UINT64_MAX) {
        rec->ip = bench_pool_get(&pools->ips, ipi, &rec->ip_len);
    } else {
        rec->ip_len = bench_ip_format(rec->ipbuf, sizeof(rec->ipbuf), ip_seq, seed,
                                      bench_ip_rot(seed));
        rec->ip = rec->ipbuf;
    }
    rec->count = bench_count(r);
    rec->reason = NULL;
    {
        /* The receiving side's RCPT TO domain, as Outlook reports it. */
        static const char *const rcpt[] = {"outlook.com", "hotmail.com", "live.com",
                                           "msn.com"};
        rec->envelope_to = rcpt[bench_rng_below(r, 4)];
    }

    /* header_from: the policy domain itself or one of its subdomains. */
    if (bench_rng_pct(r, 75)) {
        rec->header_from = (bench_ident){pol->domain, pol->domain_len, 1};
    } else {
        const char *sub = bench_subs[bench_rng_below(r, BENCH_NSUBS)];
        int n = snprintf(rec->hf, sizeof(rec->hf), "%s.%.*s", sub,
                         (int)pol->domain_len, pol->domain);
        rec->header_from = (bench_ident){rec->hf, (size_t)n, 1};
    }
    const bench_ident *hf = &rec->header_from;
    const char *own_sel = bench_selectors[bench_rng_pct(r, 70) ? pol->sel_a : pol->sel_b];

    uint32_t scenario = bench_rng_below(r, 100);
    rec->ndkim = 1;
    rec->dkim[0].human = rec->dkim[1].human = NULL;
    if (scenario < 55) {
        /* Direct, properly configured mail. */
        rec->dkim[0] = (bench_dkim){*hf, own_sel, strlen(own_sel),
                                    bench_rng_pct(r, 97) ? "pass" : "fail", NULL};
        if (bench_rng_pct(r, 15)) {
            /* Plus a provider signature, as Google Workspace and M365 add. */
            const bench_esp *e = &bench_esps[bench_rng_below(r, BENCH_NESPS)];
            rec->dkim[1] = (bench_dkim){bench_ident_c(e->dkim_domain, 0),
                                        e->selector ? e->selector : "s1",
                                        strlen(e->selector ? e->selector : "s1"),
                                        "pass", NULL};
            rec->ndkim = 2;
        }
        rec->envelope_from = *hf;
        uint32_t s = bench_rng_below(r, 100);
        rec->spf_result = s < 95 ? "pass" : s < 98 ? "softfail" : "temperror";
    } else if (scenario < 80) {
        /* ESP: aligned DKIM from the customer, SPF on the ESP's bounce
         * domain, so policy SPF fails alignment while DMARC passes. */
        const bench_esp *e = &bench_esps[bench_rng_below(r, BENCH_NESPS)];
        rec->dkim[0] = (bench_dkim){*hf, own_sel, strlen(own_sel),
                                    bench_rng_pct(r, 95) ? "pass" : "fail", NULL};
        const char *sel = e->selector;
        if (!sel) {
            for (int i = 0; i < 32; i++)
                rec->sesel[i] = "abcdefghijklmnopqrstuvwxyz234567"[bench_rng_below(r, 32)];
            rec->sesel[32] = '\0';
            sel = rec->sesel;
        }
        rec->dkim[1] = (bench_dkim){bench_ident_c(e->dkim_domain, 0), sel,
                                    strlen(sel), "pass", NULL};
        rec->ndkim = 2;
        rec->envelope_from = bench_ident_c(e->envelope, 0);
        rec->spf_result = bench_rng_pct(r, 98) ? "pass" : "softfail";
    } else if (scenario < 88) {
        /* Forwarded: the body was touched, SPF sees the forwarder. */
        rec->dkim[0] = (bench_dkim){*hf, own_sel, strlen(own_sel),
                                    bench_rng_pct(r, 60) ? "pass" : "fail", NULL};
        if (rec->dkim[0].result[0] == 'f' && bench_rng_pct(r, 50))
            rec->dkim[0].human = "body hash did not verify";
        const char *fw = bench_forwarders[bench_rng_below(r, BENCH_NFORWARDERS)];
        rec->envelope_from = bench_ident_c(fw, 0);
        rec->spf_result = bench_rng_pct(r, 70) ? "pass" : "softfail";
    } else {
        /* Spoofing: no valid aligned signature, SPF for some throwaway
         * domain or a hard fail for ours. */
        size_t n1 = bench_rand_label(r, rec->spam1, sizeof(rec->spam1));
        if (bench_rng_pct(r, 30)) {
            rec->dkim[0] = (bench_dkim){*hf, own_sel, strlen(own_sel),
                                        bench_rng_pct(r, 50) ? "fail" : "permerror",
                                        NULL};
        } else {
            static const char *const dr[] = {"pass", "none", "fail", "neutral"};
            rec->dkim[0] = (bench_dkim){(bench_ident){rec->spam1, n1, 0}, "default",
                                        7, dr[bench_rng_below(r, 4)], NULL};
        }
        if (bench_rng_pct(r, 50)) {
            size_t n2 = bench_rand_label(r, rec->spam2, sizeof(rec->spam2));
            rec->envelope_from = (bench_ident){rec->spam2, n2, 0};
            rec->spf_result = bench_rng_pct(r, 60) ? "pass" : "neutral";
        } else {
            rec->envelope_from = *hf;
            rec->spf_result = bench_rng_pct(r, 70) ? "fail" : "softfail";
        }
    }
    rec->spf_domain = rec->envelope_from;

    /* policy_evaluated must follow from auth_results, or a parser that
     * cross-checks would be benchmarked on nonsense. */
    int dk = 0;
    for (int i = 0; i < rec->ndkim; i++)
        if (strcmp(rec->dkim[i].result, "pass") == 0 &&
            bench_aligned(&rec->dkim[i].domain, hf, pol->adkim))
            dk = 1;
    int sp = strcmp(rec->spf_result, "pass") == 0 &&
             bench_aligned(&rec->spf_domain, hf, pol->aspf);
    rec->pol_dkim = dk ? "pass" : "fail";
    rec->pol_spf = sp ? "pass" : "fail";
    if (dk || sp) {
        rec->disposition = "none";
    } else {
        const char *p = hf->s == pol->domain ? pol->p : pol->sp;
        rec->disposition = p;
        if (strcmp(p, "none") != 0 && pol->pct < 100 &&
            bench_rng_below(r, 100) >= pol->pct) {
            /* Sampled out: one step weaker (RFC 7489 6.6.4). */
            rec->disposition = p[0] == 'r' ? "quarantine" : "none";
            rec->reason = "sampled_out";
        } else if (strcmp(p, "none") != 0 && bench_rng_pct(r, 5)) {
            static const char *const why[] = {"forwarded", "local_policy",
                                              "mailing_list", "trusted_forwarder"};
            rec->disposition = "none";
            rec->reason = why[bench_rng_below(r, 4)];
        }
    }
}

static void bench_emit_record(bench_out *o, const bench_record *rec,
                              const bench_reporter *rep, int schema) {
    BENCH_LIT(o, "  <record>\n    <row>\n");
    BENCH_ELEM(o, "      ", "source_ip", rec->ip, rec->ip_len);
    BENCH_LIT(o, "      <count>");
    bench_out_u64(o, rec->count);
    BENCH_LIT(o, "</count>\n      <policy_evaluated>\n");
    BENCH_ELEMC(o, "        ", "disposition", rec->disposition);
    BENCH_ELEMC(o, "        ", "dkim", rec->pol_dkim);
    BENCH_ELEMC(o, "        ", "spf", rec->pol_spf);
    if (rec->reason) {
        BENCH_LIT(o, "        <reason>\n");
        BENCH_ELEMC(o, "          ", "type", rec->reason);
        BENCH_LIT(o, "        </reason>\n");
    }
    BENCH_LIT(o, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
    if (rep->outlook_ids && schema == BENCH_SCHEMA_7489) {
        /* Outlook's order; RFC 7489 declares identifiers as xs:all. */
        BENCH_ELEMC(o, "      ", "envelope_to", rec->envelope_to);
        BENCH_ELEM(o, "      ", "envelope_from", rec->envelope_from.s,
                   rec->envelope_from.n);
        BENCH_ELEM(o, "      ", "header_from", rec->header_from.s, rec->header_from.n);
    } else {
        BENCH_ELEM(o, "      ", "header_from", rec->header_from.s, rec->header_from.n);
        BENCH_ELEM(o, "      ", "envelope_from", rec->envelope_from.s,
                   rec->envelope_from.n);
    }
    BENCH_LIT(o, "    </identifiers>\n    <auth_results>\n");
    for (int i = 0; i < rec->ndkim; i++) {
        const bench_dkim *d = &rec->dkim[i];
        BENCH_LIT(o, "      <dkim>\n");
        BENCH_ELEM(o, "        ", "domain", d->domain.s, d->domain.n);
        BENCH_ELEM(o, "        ", "selector", d->selector, d->selector_len);
        BENCH_ELEMC(o, "        ", "result", d->result);
        if (d->human) BENCH_ELEMC(o, "        ", "human_result", d->human);
        BENCH_LIT(o, "      </dkim>\n");
    }
    BENCH_LIT(o, "      <spf>\n");
    BENCH_ELEM(o, "        ", "domain", rec->spf_domain.s, rec->spf_domain.n);
    BENCH_LIT(o, "        <scope>mfrom</scope>\n");
    BENCH_ELEMC(o, "        ", "result", rec->spf_result);
    BENCH_LIT(o, "      </spf>\n    </auth_results>\n  </record>\n");
}

/* ------------------------------------------------------------------------ */
/* Reports                                                                  */
/* ------------------------------------------------------------------------ */

static const char bench_footer[] = "</feedback>\n";

static void bench_emit_report_id(bench_out *o, bench_rng *r, int style,
                                 uint64_t begin) {
    char tmp[40];
    uint64_t a = bench_rng_next(r), b = bench_rng_next(r);
    switch (style) {
    case BENCH_ID_HEX32:
        for (int i = 0; i < 16; i++) {
            tmp[i] = "0123456789abcdef"[(a >> (i * 4)) & 15];
            tmp[16 + i] = "0123456789abcdef"[(b >> (i * 4)) & 15];
        }
        bench_out_put(o, tmp, 32);
        break;
    case BENCH_ID_DOTTED:
        bench_out_u64(o, begin);
        BENCH_LIT(o, ".");
        bench_out_u64(o, a % 1000000);
        break;
    default:
        bench_out_u64(o, a % 10000000000000000000ULL);
        break;
    }
}

/* Returns -1 when --max-bytes leaves no room for a record; write errors are
 * left in o->err. */
static int bench_report(bench_out *o, const bench_cfg *cfg,
                        const bench_pools *pools, uint64_t idx,
                        bench_totals *tot) {
    bench_rng r = {bench_mix64(cfg->seed) ^ bench_mix64(idx + 0x2545f4914f6cdd1dULL)};
    uint64_t dom = idx % cfg->domains;
    bench_policy pol;
    bench_policy_for(&pol, pools, dom, cfg->seed);

    uint64_t repi = bench_rng_next(&r) % cfg->reporters;
    bench_reporter rep;
    size_t org_len;
    if (repi < BENCH_NREPORTERS) {
        rep = bench_reporters[repi];
        org_len = strlen(rep.org_name);
    } else {
        /* Synthesized reporters reuse a real one's style. Pool strings are
         * not NUL-terminated, hence the explicit length. */
        rep = bench_reporters[repi % BENCH_NREPORTERS];
        rep.org_name = bench_pool_get(&pools->reporter_names, repi - BENCH_NREPORTERS,
                                      &org_len);
        rep.email = "dmarc-reports@reporter.example";
        rep.extra = NULL;
    }

    /* One report per domain per UTC day, starting 2024-01-01. */
    uint64_t begin = 1704067200ULL + 86400ULL * (idx / cfg->domains);
    int v2 = cfg->schema == BENCH_SCHEMA_9990;

    BENCH_LIT(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if (v2)
        BENCH_LIT(o, "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n");
    else
        BENCH_LIT(o, "<feedback>\n  <version>1.0</version>\n");
    BENCH_LIT(o, "  <report_metadata>\n");
    BENCH_ELEM(o, "    ", "org_name", rep.org_name, org_len);
    BENCH_ELEMC(o, "    ", "email", rep.email);
    if (rep.extra) BENCH_ELEMC(o, "    ", "extra_contact_info", rep.extra);
    BENCH_LIT(o, "    <report_id>");
    bench_emit_report_id(o, &r, rep.id_style, begin);
    BENCH_LIT(o, "</report_id>\n    <date_range>\n      <begin>");
    bench_out_u64(o, begin);
    BENCH_LIT(o, "</begin>\n      <end>");
    bench_out_u64(o, begin + 86399);
    BENCH_LIT(o, "</end>\n    </date_range>\n");
    if (v2) BENCH_LIT(o, "    <generator>dp-gen-report 1.0</generator>\n");
    BENCH_LIT(o, "  </report_metadata>\n  <policy_published>\n");
    BENCH_ELEM(o, "    ", "domain", pol.domain, pol.domain_len);
    if (v2) {
        BENCH_LIT(o, "    <discovery_method>treewalk</discovery_method>\n");
        BENCH_ELEMC(o, "    ", "p", pol.p);
        BENCH_ELEMC(o, "    ", "sp", pol.sp);
        BENCH_ELEMC(o, "    ", "np", pol.np);
        BENCH_ELEMC(o, "    ", "fo", pol.fo);
        BENCH_ELEM(o, "    ", "adkim", &pol.adkim, 1);
        BENCH_ELEM(o, "    ", "aspf", &pol.aspf, 1);
        BENCH_LIT(o, "    <testing>n</testing>\n");
    } else {
        BENCH_ELEM(o, "    ", "adkim", &pol.adkim, 1);
        BENCH_ELEM(o, "    ", "aspf", &pol.aspf, 1);
        BENCH_ELEMC(o, "    ", "p", pol.p);
        BENCH_ELEMC(o, "    ", "sp", pol.sp);
        BENCH_LIT(o, "    <pct>");
        bench_out_u64(o, pol.pct);
        BENCH_LIT(o, "</pct>\n");
        BENCH_ELEMC(o, "    ", "fo", pol.fo);
    }
    BENCH_LIT(o, "  </policy_published>\n");

    uint64_t n = 0, messages = 0;
    bench_record rec;
    const uint64_t footer = sizeof(bench_footer) - 1;
    for (;;) {
        int want_more = n < cfg->records ||
                        (cfg->target_bytes &&
                         bench_out_total(o) + footer < cfg->target_bytes);
        if (!want_more || o->err) break;
        if (BENCH_OUTBUF_SIZE - o->len < BENCH_RECORD_MAX) bench_out_flush(o);
        size_t mark = o->len;
        uint64_t flushed = o->flushed;
        uint64_t ip_seq = UINT64_MAX;
        if (cfg->distinct_ips) {
            /* records of earlier reports, then this one's: never reused */
            ip_seq = tot->records + n;
            if (ip_seq >= BENCH_MAX_DISTINCT_IPS) {
                fprintf(stderr, "dp-gen-report: --distinct-ips supports at most %" PRIu64
                        " records\n", (uint64_t)BENCH_MAX_DISTINCT_IPS);
                return -1;
            }
        }
        bench_make_record(&rec, &r, &pol, pools, ip_seq, cfg->seed);
        bench_emit_record(o, &rec, &rep, cfg->schema);
        if (o->flushed != flushed) {
            fprintf(stderr, "dp-gen-report: record larger than BENCH_RECORD_MAX\n");
            exit(1);
        }
        if (cfg->max_bytes && bench_out_total(o) + footer > cfg->max_bytes) {
            /* --max-bytes wins over --records and --target-bytes: take the
             * record back and close the report just under the cap. */
            o->len = mark;
            break;
        }
        messages += rec.count;
        n++;
    }
    if (n == 0) {
        /* The schema needs a record; a cap below one record is a usage
         * error, not something to paper over. */
        fprintf(stderr, "dp-gen-report: --max-bytes %" PRIu64 " leaves no room for a record\n",
                cfg->max_bytes);
        return -1;
    }
    tot->messages += messages;
    BENCH_LIT(o, bench_footer);
    bench_out_flush(o);
    tot->records += n;
    tot->bytes += o->flushed;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                             */
/* ------------------------------------------------------------------------ */

static void bench_usage(FILE *f) {
    fputs(
        "usage: dp-gen-report [options]\n"
        "  --records N        records per report (default 100; a minimum when\n"
        "                     --target-bytes is given, default 1 then)\n"
        "  --reports N        number of reports (default 1); N > 1 needs -o DIR\n"
        "  --ips N            distinct source IPs, ~10%% IPv6 (default 1000)\n"
        "  --domains N        policy domains, one per report (default 10)\n"
        "  --reporters N      reporting organizations (default 12)\n"
        "  --schema S         rfc7489 (default) or rfc9990\n"
        "  --target-bytes N   grow each report to at least N bytes (K/M/G suffixes,\n"
        "                     binary: 256M = 268435456)\n"
        "  --max-bytes N      never let a report exceed N bytes (wins over\n"
        "                     --records and --target-bytes; same suffixes)\n"
        "  --seed S           PRNG seed (default 1)\n"
        "  --distinct-ips     give every record a source IP of its own, never\n"
        "                     repeated across reports (so every record is its\n"
        "                     own rollup key); the rest of the output is as\n"
        "                     without it\n"
        "  -o PATH            output file, or directory with --reports > 1\n"
        "                     (DIR/report-NNNNNN.xml); default stdout\n"
        "Prints \"records=N messages=M bytes=B\" (totals) on stderr.\n",
        f);
}

/* Accepts plain decimal or a binary K/M/G/T suffix (KiB etc.), since the
 * benchmarks speak in powers of two. */
static int bench_parse_u64(const char *s, uint64_t *out, int allow_suffix) {
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    if (*end && allow_suffix) {
        int shift = 0;
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' && end[1] == 'B') end += 2;
        else if (*end == 'B') end++;
        if (v > (ULLONG_MAX >> shift)) return -1;
        v <<= shift;
    }
    if (*end) return -1;
    *out = v;
    return 0;
}

static int bench_open_out(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fprintf(stderr, "dp-gen-report: %s: %s\n", path, strerror(errno));
    return fd;
}

int main(int argc, char **argv) {
    bench_cfg cfg = {.records = 100, .reports = 1, .ips = 1000, .domains = 10,
                     .reporters = BENCH_NREPORTERS, .target_bytes = 0, .seed = 1,
                     .schema = BENCH_SCHEMA_7489, .out = NULL};
    int records_given = 0;
    enum { O_RECORDS = 256, O_REPORTS, O_IPS, O_DOMAINS, O_REPORTERS, O_SCHEMA,
           O_TARGET, O_MAX, O_SEED, O_DISTINCT_IPS };
    static const struct option opts[] = {
        {"records", required_argument, NULL, O_RECORDS},
        {"reports", required_argument, NULL, O_REPORTS},
        {"ips", required_argument, NULL, O_IPS},
        {"domains", required_argument, NULL, O_DOMAINS},
        {"reporters", required_argument, NULL, O_REPORTERS},
        {"schema", required_argument, NULL, O_SCHEMA},
        {"target-bytes", required_argument, NULL, O_TARGET},
        {"max-bytes", required_argument, NULL, O_MAX},
        {"seed", required_argument, NULL, O_SEED},
        {"distinct-ips", no_argument, NULL, O_DISTINCT_IPS},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        uint64_t *dst = NULL;
        int suffix = 0;
        switch (c) {
        case O_RECORDS: dst = &cfg.records; records_given = 1; break;
        case O_REPORTS: dst = &cfg.reports; break;
        case O_IPS: dst = &cfg.ips; break;
        case O_DOMAINS: dst = &cfg.domains; break;
        case O_REPORTERS: dst = &cfg.reporters; break;
        case O_TARGET: dst = &cfg.target_bytes; suffix = 1; break;
        case O_MAX: dst = &cfg.max_bytes; suffix = 1; break;
        case O_SEED: dst = &cfg.seed; break;
        case O_DISTINCT_IPS: cfg.distinct_ips = 1; break;
        case O_SCHEMA:
            if (strcmp(optarg, "rfc7489") == 0) cfg.schema = BENCH_SCHEMA_7489;
            else if (strcmp(optarg, "rfc9990") == 0) cfg.schema = BENCH_SCHEMA_9990;
            else {
                fprintf(stderr, "dp-gen-report: unknown schema '%s'\n", optarg);
                return 2;
            }
            break;
        case 'o': cfg.out = optarg; break;
        case 'h': bench_usage(stdout); return 0;
        default: bench_usage(stderr); return 2;
        }
        if (dst && bench_parse_u64(optarg, dst, suffix) != 0) {
            fprintf(stderr, "dp-gen-report: bad number '%s'\n", optarg);
            return 2;
        }
    }
    if (optind != argc) {
        bench_usage(stderr);
        return 2;
    }
    if (cfg.target_bytes && !records_given) cfg.records = 1;
    /* The schema requires at least one record, and the pools are indexed
     * with 32-bit draws. */
    if (cfg.records == 0 || cfg.reports == 0 || cfg.ips == 0 || cfg.domains == 0 ||
        cfg.reporters == 0 || cfg.ips > UINT32_MAX || cfg.domains > UINT32_MAX) {
        fprintf(stderr, "dp-gen-report: counts must be between 1 and 2^32-1\n");
        return 2;
    }
    if (cfg.reports > 1 && !cfg.out) {
        fprintf(stderr, "dp-gen-report: --reports > 1 needs -o DIR\n");
        return 2;
    }

    bench_pools pools;
    memset(&pools, 0, sizeof(pools));
    bench_make_ips(&pools.ips, cfg.ips, cfg.seed);
    bench_make_domains(&pools.domains, cfg.domains, cfg.seed);
    for (uint64_t i = BENCH_NREPORTERS; i < cfg.reporters; i++)
        bench_pool_add(&pools.reporter_names, "Reporter %" PRIu64 " Mail",
                       i - BENCH_NREPORTERS + 1);

    bench_out o = {.fd = STDOUT_FILENO, .name = "stdout"};
    o.buf = bench_xrealloc(NULL, BENCH_OUTBUF_SIZE);
    bench_totals tot = {0, 0, 0};
    int rc = 0;

    if (cfg.reports > 1 && mkdir(cfg.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "dp-gen-report: %s: %s\n", cfg.out, strerror(errno));
        rc = 1;
    }
    for (uint64_t i = 0; i < cfg.reports && rc == 0; i++) {
        char path[PATH_MAX];
        o.flushed = 0;
        o.len = 0;
        if (cfg.reports > 1) {
            snprintf(path, sizeof(path), "%s/report-%06" PRIu64 ".xml", cfg.out, i);
            o.name = path;
            if ((o.fd = bench_open_out(path)) < 0) { rc = 1; break; }
        } else if (cfg.out) {
            o.name = cfg.out;
            if ((o.fd = bench_open_out(cfg.out)) < 0) { rc = 1; break; }
        }
        if (bench_report(&o, &cfg, &pools, i, &tot) != 0) {
            rc = 1;
        } else if (o.err) {
            fprintf(stderr, "dp-gen-report: %s: %s\n", o.name, strerror(o.err));
            rc = 1;
        }
        if (o.fd != STDOUT_FILENO && close(o.fd) != 0 && rc == 0) {
            fprintf(stderr, "dp-gen-report: %s: %s\n", o.name, strerror(errno));
            rc = 1;
        }
    }

    if (rc == 0)
        fprintf(stderr, "records=%" PRIu64 " messages=%" PRIu64 " bytes=%" PRIu64 "\n",
                tot.records, tot.messages, tot.bytes);
    free(o.buf);
    bench_pool_free(&pools.ips);
    bench_pool_free(&pools.domains);
    bench_pool_free(&pools.reporter_names);
    return rc;
}
