/* enrich/ against a real DNS server: dnsmasq on loopback with the records
 * of tests/enrich/dns.py, its SERVFAIL and silent stubs, and MMDB files
 * built by mmdb-writer.  test_enrich_dns.py starts them and passes where
 * they are in DP_TEST_* variables; queries are counted in dnsmasq's own
 * log, so "no second query" is the server's word, not ours.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_clock.h"
#include "enrich.h"

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run me from test_enrich_dns.py\n", name);
        exit(2);
    }
    return v;
}

/* Occurrences of `needle` in the file (dnsmasq's log, a stub's log).  A
 * short wait first: the server logs as it answers. */
static int count_in(const char *path, const char *needle) {
    usleep(150 * 1000);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (!needle || strstr(line, needle)) n++;
    fclose(f);
    return n;
}

/* Lines of a log written to logf that hold both a and b. */
static int log_lines(FILE *logf, const char *a, const char *b) {
    fflush(logf);
    rewind(logf);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, logf)) n += strstr(line, a) && strstr(line, b);
    return n;
}

/* Queries dnsmasq logged for this reverse or forward name. */
static int queries(const char *name) {
    char needle[300];
    snprintf(needle, sizeof needle, "] %s from", name);
    return count_in(env("DP_TEST_DNS_LOG"), needle);
}

static void config(dp_enrich_config *c) {
    dp_enrich_config_default(c);
    c->resolver = env("DP_TEST_DNS");
    c->query_timeout = 2;
}

static dp_enrich *open_ok(const dp_enrich_config *c) {
    dp_error err;
    dp_enrich *e = dp_enrich_open(c, &err);
    ck_assert_msg(e != NULL, "open: %s", err.msg);
    return e;
}

static dp_source_info info_of(dp_enrich *e, const char *ip, dp_buf *arena) {
    dp_source_info s;
    dp_buf_reset(arena);
    dp_enrich_get(e, ip, &s, arena);
    return s;
}

#define ck_assert_str_or_null(got, want)                                                                     \
    do {                                                                                                     \
        const char *g_ = (got), *w_ = (want);                                                                \
        if (!w_) ck_assert_msg(g_ == NULL, "%s: want NULL, got '%s'", #got, g_);                             \
        else ck_assert_msg(g_ && strcmp(g_, w_) == 0, "%s: want '%s', got '%s'", #got, w_, g_ ? g_ : "NULL"); \
    } while (0)

static void expect(dp_enrich *e, const char *ip, const char *ptr, const char *base, const char *svc, const char *type) {
    dp_buf arena = DP_BUF_INIT;
    dp_source_info s = info_of(e, ip, &arena);
    ck_assert_str_or_null(s.ptr, ptr);
    ck_assert_str_or_null(s.base_domain, base);
    ck_assert_str_or_null(s.service, svc);
    ck_assert_str_or_null(s.service_type, type);
    dp_buf_free(&arena);
}

static const char *const SET[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6",
                                  "192.0.2.7", "192.0.2.8", "198.51.100.7", "203.0.113.8", "2001:db8::25"};

static void check_set(dp_enrich *e) {
    expect(e, "192.0.2.1", "mail.example.com", "example.com", NULL, NULL);
    expect(e, "192.0.2.2", "o1.ptr1234.sendgrid.net", "sendgrid.net", "SendGrid", "esp");
    expect(e, "192.0.2.3", "x.bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com", NULL, NULL);
    expect(e, "192.0.2.4", "mail-eopbgr.outbound.protection.outlook.com", "outlook.com", "Microsoft 365",
           "hosted_mail");
    expect(e, "192.0.2.5", NULL, NULL, NULL, NULL);   /* PTR not confirmed: not reported */
    expect(e, "192.0.2.6", NULL, NULL, NULL, NULL);   /* its name has no A */
    expect(e, "192.0.2.7", NULL, NULL, NULL, NULL);   /* NXDOMAIN */
    expect(e, "192.0.2.8", "relay.example.org", "example.org", NULL, NULL);
    expect(e, "198.51.100.7", NULL, NULL, NULL, NULL); /* SERVFAIL */
    expect(e, "203.0.113.8", NULL, NULL, NULL, NULL);  /* REFUSED */
    expect(e, "2001:db8::25", "mx.example.net", "example.net", NULL, NULL);
}

START_TEST(test_the_set) {
    dp_enrich_config c;
    config(&c);
    dp_metrics *m = dp_metrics_new();
    c.metrics = m;
    dp_enrich *e = open_ok(&c);
    for (size_t i = 0; i < sizeof SET / sizeof SET[0]; i++) dp_enrich_request(e, SET[i]);
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    check_set(e);
    dp_buf text = DP_BUF_INIT;
    dp_metrics_render(m, &text);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_lookups_total{result=\"answered\"} 6"), "%s", text.data);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_lookups_total{result=\"unconfirmed\"} 2"), "%s", text.data);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_lookups_total{result=\"nxdomain\"} 1"), "%s", text.data);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_lookups_total{result=\"servfail\"} 1"), "%s", text.data);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_lookups_total{result=\"refused\"} 1"), "%s", text.data);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_queue_length 0"), "%s", text.data);
    dp_buf_free(&text);
    dp_enrich_close(e);
    dp_metrics_free(m);
}
END_TEST

START_TEST(test_mmdb_fields) {
    dp_enrich_config c;
    config(&c);
    c.geoip_asn = env("DP_TEST_MMDB_ASN");
    c.geoip_country = env("DP_TEST_MMDB_COUNTRY");
    dp_enrich *e = open_ok(&c);
    dp_buf arena = DP_BUF_INIT;
    /* at once, before any answer */
    dp_source_info s = info_of(e, "192.0.2.1", &arena);
    ck_assert_uint_eq(s.asn, 64500);
    ck_assert_str_or_null(s.as_org, "Example Net AS");
    ck_assert_str_or_null(s.country, "NL");
    s = info_of(e, "2001:db8::25", &arena);
    ck_assert_uint_eq(s.asn, 64501);
    ck_assert_str_or_null(s.as_org, "Example Six");
    ck_assert_str_or_null(s.country, "DE");
    s = info_of(e, "198.51.100.7", &arena);
    ck_assert_uint_eq(s.asn, 0);
    ck_assert_ptr_null(s.as_org);
    ck_assert_str_or_null(s.country, "SE");
    s = info_of(e, "203.0.113.8", &arena);
    ck_assert_uint_eq(s.asn, 0);
    ck_assert_ptr_null(s.country);
    dp_enrich_request(e, "192.0.2.2");
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    s = info_of(e, "192.0.2.2", &arena);
    ck_assert_uint_eq(s.asn, 64500);
    ck_assert_str_or_null(s.service, "SendGrid");
    dp_buf_free(&arena);
    dp_enrich_close(e);

    /* ptr = 0: the databases and nothing else, not one query */
    int before = queries("13.2.0.192.in-addr.arpa");
    c.ptr = 0;
    e = open_ok(&c);
    dp_enrich_request(e, "192.0.2.13");
    s = info_of(e, "192.0.2.13", &arena);
    ck_assert_uint_eq(s.asn, 64500);
    ck_assert_ptr_null(s.ptr);
    ck_assert_int_eq(dp_enrich_settle(e, 1), 0);
    dp_enrich_close(e);
    ck_assert_int_eq(queries("13.2.0.192.in-addr.arpa"), before);
    dp_buf_free(&arena);
}
END_TEST

static char *write_file(const char *name, const char *text) {
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", env("DP_TEST_WORK"), name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return p;
}

START_TEST(test_user_senders_win) {
    const char *files[2];
    files[0] = write_file("senders1.tsv", "# ours\nsendgrid.net\tOur SendGrid\tesp\nexample.org\tExample relay\tother\n");
    files[1] = write_file("senders2.tsv", "relay.example.org\tThe relay\tforwarder\thttps://example.org/relay\n"
                                          "example.org\tLater wins\tother\n");
    dp_enrich_config c;
    config(&c);
    c.senders_files = files;
    c.n_senders_files = 2;
    dp_enrich *e = open_ok(&c);
    dp_enrich_request(e, "192.0.2.2");
    dp_enrich_request(e, "192.0.2.8");
    dp_enrich_request(e, "192.0.2.1");
    dp_enrich_request(e, "192.0.2.4");
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    expect(e, "192.0.2.2", "o1.ptr1234.sendgrid.net", "sendgrid.net", "Our SendGrid", "esp");
    expect(e, "192.0.2.8", "relay.example.org", "example.org", "The relay", "forwarder"); /* longest */
    expect(e, "192.0.2.1", "mail.example.com", "example.com", NULL, NULL);
    expect(e, "192.0.2.4", "mail-eopbgr.outbound.protection.outlook.com", "outlook.com", "Microsoft 365", "hosted_mail");
    dp_enrich_close(e);
}
END_TEST

/* NXDOMAIN, SERVFAIL and unconfirmed answers are kept: asking again within
 * negative_ttl sends nothing. */
START_TEST(test_negative_cached) {
    dp_enrich_config c;
    config(&c);
    dp_enrich *e = open_ok(&c);
    const char *ips[] = {"192.0.2.7", "198.51.100.7", "192.0.2.5"};
    const char *rev[] = {"7.2.0.192.in-addr.arpa", "7.100.51.198.in-addr.arpa", "5.2.0.192.in-addr.arpa"};
    int before[3], after[3];
    for (int i = 0; i < 3; i++) before[i] = queries(rev[i]);
    for (int i = 0; i < 3; i++) dp_enrich_request(e, ips[i]);
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    for (int i = 0; i < 3; i++) {
        after[i] = queries(rev[i]);
        ck_assert_msg(after[i] > before[i], "%s was never asked", ips[i]);
    }
    dp_buf arena = DP_BUF_INIT;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 3; i++) {
            dp_enrich_request(e, ips[i]);
            dp_source_info s = info_of(e, ips[i], &arena);
            ck_assert_ptr_null(s.ptr);
        }
    ck_assert_int_eq(dp_enrich_settle(e, 5), 0);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(queries(rev[i]), after[i]);
    dp_buf_free(&arena);
    dp_enrich_close(e);
}
END_TEST

/* After a timeout the resolver is left alone for a while: the silent
 * server gets no second round of datagrams. */
START_TEST(test_timeout_cached) {
    dp_enrich_config c;
    config(&c);
    c.resolver = env("DP_TEST_DNS_SILENT");
    c.query_timeout = 0.3;
    dp_enrich *e = open_ok(&c);
    int before = count_in(env("DP_TEST_DNS_SILENT_LOG"), NULL);
    double t0 = dp_clock_seconds();
    dp_enrich_request(e, "192.0.2.10");
    ck_assert_int_eq(dp_enrich_settle(e, 10), 0);
    double took = dp_clock_seconds() - t0;
    ck_assert_msg(took > 0.2 && took < 3, "the lookup took %.2f s", took);
    int asked = count_in(env("DP_TEST_DNS_SILENT_LOG"), NULL);
    ck_assert_int_gt(asked, before);
    dp_enrich_request(e, "192.0.2.10");
    dp_buf arena = DP_BUF_INIT;
    ck_assert_ptr_null(info_of(e, "192.0.2.10", &arena).ptr);
    ck_assert_int_eq(dp_enrich_settle(e, 5), 0);
    ck_assert_int_eq(count_in(env("DP_TEST_DNS_SILENT_LOG"), NULL), asked);
    dp_buf_free(&arena);
    dp_enrich_close(e);
}
END_TEST

/* An outage is not remembered: a run whose resolver could not be reached
 * leaves nothing in the cache, and the next run, with the resolver back,
 * names the IP.  While it is away, the IPs asked for cost no query. */
START_TEST(test_outage_not_cached) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cache-outage", env("DP_TEST_WORK"));
    dp_enrich_config c;
    config(&c);
    c.cache_dir = dir;
    c.resolver = env("DP_TEST_DNS_SILENT");
    c.query_timeout = 0.3;
    dp_enrich *e = open_ok(&c);
    int before = count_in(env("DP_TEST_DNS_SILENT_LOG"), NULL);
    dp_enrich_request(e, "192.0.2.11");
    ck_assert_int_eq(dp_enrich_settle(e, 10), 0);
    int asked = count_in(env("DP_TEST_DNS_SILENT_LOG"), NULL);
    ck_assert_int_gt(asked, before);
    for (int i = 0; i < 200; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "10.9.%d.%d", i >> 8, i & 255);
        dp_enrich_request(e, ip);
    }
    ck_assert_int_eq(dp_enrich_settle(e, 2), 0);
    ck_assert_int_eq(count_in(env("DP_TEST_DNS_SILENT_LOG"), NULL), asked);
    dp_enrich_close(e);

    config(&c);
    c.cache_dir = dir;
    e = open_ok(&c);
    dp_enrich_request(e, "192.0.2.11");
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    expect(e, "192.0.2.11", "h11.example.com", "example.com", NULL, NULL);
    dp_enrich_close(e);
}
END_TEST

START_TEST(test_restart_uses_cache) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cache-restart", env("DP_TEST_WORK"));
    dp_enrich_config c;
    config(&c);
    c.cache_dir = dir;
    const char *ips[] = {"192.0.2.11", "192.0.2.7", "192.0.2.5", "2001:db8::25"};
    const char *rev[] = {"11.2.0.192.in-addr.arpa", "7.2.0.192.in-addr.arpa", "5.2.0.192.in-addr.arpa",
                         "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"};
    dp_enrich *e = open_ok(&c);
    for (int i = 0; i < 4; i++) dp_enrich_request(e, ips[i]);
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    dp_enrich_close(e);
    int n[4], fwd = queries("h11.example.com");
    for (int i = 0; i < 4; i++) n[i] = queries(rev[i]);
    ck_assert_int_gt(fwd, 0);

    dp_metrics *m = dp_metrics_new();
    c.metrics = m;
    e = open_ok(&c);
    for (int i = 0; i < 4; i++) dp_enrich_request(e, ips[i]);
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    expect(e, "192.0.2.11", "h11.example.com", "example.com", NULL, NULL);
    expect(e, "2001:db8::25", "mx.example.net", "example.net", NULL, NULL);
    expect(e, "192.0.2.7", NULL, NULL, NULL, NULL);
    expect(e, "192.0.2.5", NULL, NULL, NULL, NULL);
    dp_enrich_close(e);
    for (int i = 0; i < 4; i++) ck_assert_msg(queries(rev[i]) == n[i], "%s asked again after a restart", ips[i]);
    ck_assert_int_eq(queries("h11.example.com"), fwd);
    dp_buf text = DP_BUF_INIT;
    dp_metrics_render(m, &text);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_lookups_total{result=\"cache_hit\"} 4"), "%s", text.data);
    dp_buf_free(&text);
    dp_metrics_free(m);

    /* without the cache the same requests do ask: the count above can fail */
    c.cache_dir = NULL;
    c.metrics = NULL;
    e = open_ok(&c);
    dp_enrich_request(e, "192.0.2.11");
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    dp_enrich_close(e);
    ck_assert_int_gt(queries(rev[0]), n[0]);
}
END_TEST

/* An expired entry is asked again; meanwhile get gives the stale answer. */
START_TEST(test_expired_asked_again) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cache-expiry", env("DP_TEST_WORK"));
    dp_enrich_config c;
    config(&c);
    c.ttl = 0.5;
    c.cache_dir = dir;
    dp_enrich *e = open_ok(&c);
    int n0 = queries("12.2.0.192.in-addr.arpa");
    dp_enrich_request(e, "192.0.2.12");
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    int n1 = queries("12.2.0.192.in-addr.arpa");
    ck_assert_int_eq(n1, n0 + 1);
    dp_enrich_request(e, "192.0.2.12");
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    ck_assert_int_eq(queries("12.2.0.192.in-addr.arpa"), n1); /* not yet expired */
    usleep(700 * 1000);
    dp_enrich_request(e, "192.0.2.12");
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    int n2 = queries("12.2.0.192.in-addr.arpa");
    ck_assert_int_eq(n2, n1 + 1);
    expect(e, "192.0.2.12", "h12.example.com", "example.com", NULL, NULL);
    dp_enrich_close(e);

    /* The expired entry in the cache, a resolver that never answers: get
     * gives the stale name while the new lookup is in flight, and keeps
     * it when that lookup times out. */
    usleep(700 * 1000);
    c.resolver = env("DP_TEST_DNS_SILENT");
    c.query_timeout = 1.5;
    e = open_ok(&c);
    dp_buf arena = DP_BUF_INIT;
    dp_enrich_request(e, "192.0.2.12");
    double end = dp_clock_seconds() + 1.0;
    const char *ptr = NULL;
    while (!ptr && dp_clock_seconds() < end) {
        ptr = info_of(e, "192.0.2.12", &arena).ptr;
        if (!ptr) usleep(10 * 1000);
    }
    ck_assert_str_or_null(ptr, "h12.example.com");
    ck_assert_int_eq(dp_enrich_settle(e, 0.05), -1); /* still asking */
    ck_assert_int_eq(dp_enrich_settle(e, 10), 0);
    expect(e, "192.0.2.12", "h12.example.com", "example.com", NULL, NULL);
    dp_buf_free(&arena);
    dp_enrich_close(e);
}
END_TEST

/* A resolver nobody listens on: request and get never wait, every field
 * from DNS is null, and one warning names the resolver. */
START_TEST(test_dead_resolver) {
    for (int which = 0; which < 2; which++) {
        dp_enrich_config c;
        config(&c);
        c.resolver = env(which == 0 ? "DP_TEST_DNS_DEAD" : "DP_TEST_DNS_SILENT");
        c.query_timeout = 0.3;
        FILE *logf = tmpfile();
        dp_log *log = dp_log_new(logf, DP_LOG_INFO, DP_LOG_PLAIN);
        c.log = log;
        dp_enrich *e = open_ok(&c);
        dp_buf arena = DP_BUF_INIT;
        double worst = 0, t0 = dp_clock_seconds();
        for (int i = 0; i < 2000; i++) {
            char ip[32];
            snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
            double a = dp_clock_seconds();
            dp_enrich_request(e, ip);
            dp_source_info s = info_of(e, ip, &arena);
            double d = dp_clock_seconds() - a;
            if (d > worst) worst = d;
            ck_assert_ptr_null(s.ptr);
        }
        double total = dp_clock_seconds() - t0;
        ck_assert_msg(worst < 0.05 && total < 2, "worst call %.3f s, all %.3f s", worst, total);
        ck_assert_int_eq(dp_enrich_settle(e, 30), 0);
        dp_enrich_close(e);
        dp_buf_free(&arena);
        ck_assert_int_eq(log_lines(logf, "resolver", c.resolver), 1);
        dp_log_free(log);
        fclose(logf);
    }
}
END_TEST

START_TEST(test_close_prompt) {
    dp_enrich_config c;
    config(&c);
    c.resolver = env("DP_TEST_DNS_SILENT");
    c.query_timeout = 30;
    FILE *logf = tmpfile();
    dp_log *log = dp_log_new(logf, DP_LOG_INFO, DP_LOG_PLAIN);
    c.log = log;
    dp_enrich *e = open_ok(&c);
    for (int i = 0; i < 300; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "10.9.%d.%d", i >> 8, i & 255);
        dp_enrich_request(e, ip);
    }
    usleep(200 * 1000);
    ck_assert_int_eq(dp_enrich_settle(e, 0.1), -1);
    double t0 = dp_clock_seconds();
    dp_enrich_close(e);
    double took = dp_clock_seconds() - t0;
    ck_assert_msg(took < 1.0, "close took %.2f s", took);
    /* no lookup ever ended: one warning at close says why the names are null */
    ck_assert_int_eq(log_lines(logf, c.resolver, "answered none of 300"), 1);
    dp_log_free(log);
    fclose(logf);
}
END_TEST

/* What a flush does: the id from a request, read later with no lookup.  The
 * MMDB fields are there at once, the name once answered, and an expired
 * entry read by id is asked again exactly once. */
START_TEST(test_read_by_id) {
    dp_enrich_config c;
    config(&c);
    c.ttl = 0.5;
    c.geoip_asn = env("DP_TEST_MMDB_ASN");
    c.geoip_country = env("DP_TEST_MMDB_COUNTRY");
    dp_enrich *e = open_ok(&c);
    dp_buf arena = DP_BUF_INIT;
    dp_source_info s;
    int n0 = queries("14.2.0.192.in-addr.arpa");
    dp_enrich_id id = dp_enrich_request(e, "192.0.2.14");
    ck_assert_uint_ne(id, 0);
    ck_assert_uint_eq(dp_enrich_request(e, "192.0.2.14"), id);
    ck_assert_uint_ne(dp_enrich_request(e, "192.0.2.2"), id);
    dp_enrich_read(e, id, "192.0.2.14", &s, &arena);
    ck_assert_uint_eq(s.asn, 64500);
    ck_assert_str_or_null(s.country, "NL");
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    dp_buf_reset(&arena);
    dp_enrich_read(e, id, "192.0.2.14", &s, &arena);
    ck_assert_str_or_null(s.ptr, "h14.example.com");
    ck_assert_str_or_null(s.base_domain, "example.com");
    ck_assert_str_or_null(s.as_org, "Example Net AS");
    int n1 = queries("14.2.0.192.in-addr.arpa");
    ck_assert_int_eq(n1, n0 + 1);
    usleep(700 * 1000);
    for (int i = 0; i < 5; i++) {
        dp_buf_reset(&arena);
        dp_enrich_read(e, id, "192.0.2.14", &s, &arena);
        ck_assert_str_or_null(s.ptr, "h14.example.com"); /* the stale answer meanwhile */
    }
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    ck_assert_int_eq(queries("14.2.0.192.in-addr.arpa"), n1 + 1);
    dp_buf_reset(&arena);
    dp_enrich_read(e, 0, "", &s, &arena);
    ck_assert_ptr_null(s.ptr);
    ck_assert_uint_eq(s.asn, 0);
    dp_buf_free(&arena);
    dp_enrich_close(e);

    /* no DNS, the databases only: entries still hold their fields */
    c.ptr = 0;
    e = open_ok(&c);
    id = dp_enrich_request(e, "2001:db8::25");
    ck_assert_uint_ne(id, 0);
    dp_enrich_read(e, id, "2001:db8::25", &s, &arena);
    ck_assert_uint_eq(s.asn, 64501);
    ck_assert_str_or_null(s.country, "DE");
    ck_assert_ptr_null(s.ptr);
    dp_buf_free(&arena);
    dp_enrich_close(e);
}
END_TEST

/* Past max_ips, a new IP takes the entry of one not read for a while: the
 * one forgotten is asked again when met again, and a reader holding its
 * old id is never given the new IP's answer. */
START_TEST(test_cap_evicts) {
    dp_enrich_config c;
    config(&c);
    c.max_ips = 3;
    dp_metrics *m = dp_metrics_new();
    c.metrics = m;
    dp_enrich *e = open_ok(&c);
    const char *ips[] = {"192.0.2.15", "192.0.2.16", "192.0.2.17", "192.0.2.18"};
    dp_enrich_id ids[4];
    int before = queries("15.2.0.192.in-addr.arpa");
    for (int i = 0; i < 4; i++) {
        ids[i] = dp_enrich_request(e, ips[i]);
        ck_assert_uint_ne(ids[i], 0);
        ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    }
    dp_enrich_stats st;
    dp_enrich_stats_get(e, &st);
    ck_assert_uint_eq(st.ips, 3);
    ck_assert_uint_eq(st.evicted, 1);
    ck_assert_uint_eq(st.dropped, 0);
    /* the clock hand took the first: its id now holds the fourth IP */
    ck_assert_uint_eq(ids[3], ids[0]);
    dp_buf arena = DP_BUF_INIT;
    dp_source_info s;
    dp_enrich_read(e, ids[3], ips[3], &s, &arena);
    ck_assert_str_or_null(s.ptr, "h18.example.com");
    dp_buf_reset(&arena);
    /* the old id with the old IP: never the fourth's name; asked again (a
     * loopback answer may even be in by the time the read copies it) */
    dp_enrich_read(e, ids[0], ips[0], &s, &arena);
    ck_assert_msg(!s.ptr || strcmp(s.ptr, "h15.example.com") == 0, "old id gave %s", s.ptr);
    ck_assert_int_eq(dp_enrich_settle(e, 20), 0);
    ck_assert_int_eq(queries("15.2.0.192.in-addr.arpa"), before + 2);
    dp_buf_reset(&arena);
    dp_enrich_read(e, ids[0], ips[0], &s, &arena);
    ck_assert_str_or_null(s.ptr, "h15.example.com");
    dp_buf_free(&arena);
    dp_enrich_stats_get(e, &st);
    ck_assert_uint_eq(st.ips, 3);
    ck_assert_uint_eq(st.evicted, 2);
    dp_enrich_close(e);
    dp_buf text = DP_BUF_INIT;
    dp_metrics_render(m, &text);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_evicted_total 2\n"), "%s", text.data);
    dp_buf_free(&text);
    dp_metrics_free(m);
}
END_TEST

/* An entry waiting for a lookup is never taken: with every one of them
 * waiting, new IPs are dropped, counted and warned about once, and nothing
 * waits for them. */
START_TEST(test_cap_drops_when_all_wait) {
    dp_enrich_config c;
    config(&c);
    c.resolver = env("DP_TEST_DNS_SILENT");
    c.query_timeout = 10;
    c.max_ips = 3;
    dp_metrics *m = dp_metrics_new();
    c.metrics = m;
    FILE *logf = tmpfile();
    dp_log *log = dp_log_new(logf, DP_LOG_INFO, DP_LOG_PLAIN);
    c.log = log;
    dp_enrich *e = open_ok(&c);
    double t0 = dp_clock_seconds();
    for (int i = 0; i < 10; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "192.0.2.%d", 30 + i);
        ck_assert_uint_eq(dp_enrich_request(e, ip) != 0, i < 3);
        dp_enrich_request(e, ip);
    }
    dp_buf arena = DP_BUF_INIT;
    dp_source_info s;
    dp_enrich_get(e, "192.0.2.200", &s, &arena);
    ck_assert_ptr_null(s.ptr);
    ck_assert_double_lt(dp_clock_seconds() - t0, 1.0);
    dp_enrich_stats st;
    dp_enrich_stats_get(e, &st);
    ck_assert_uint_eq(st.ips, 3);
    ck_assert_uint_eq(st.pending, 3);
    ck_assert_uint_eq(st.dropped, 15);
    ck_assert_uint_eq(st.evicted, 0);
    dp_enrich_close(e);
    dp_buf text = DP_BUF_INIT;
    dp_metrics_render(m, &text);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_dropped_total 15\n"), "%s", text.data);
    ck_assert_int_eq(log_lines(logf, "wait for a lookup", "new ones are not looked up"), 1);
    dp_buf_free(&text);
    dp_buf_free(&arena);
    dp_metrics_free(m);
    dp_log_free(log);
    fclose(logf);
}
END_TEST

/* Several threads ask and read while the answers arrive (TSan's test). */
typedef struct racer {
    dp_enrich *e;
    int seed, answered;
    _Atomic dp_enrich_id *ids; /* shared: the id of 192.0.2.(100 + k) */
} racer;

static void *race(void *arg) {
    racer *r = arg;
    dp_buf arena = DP_BUF_INIT;
    for (int round = 0; round < 40; round++)
        for (int i = 100; i < 200; i++) {
            char ip[32];
            int k = (i + r->seed * 7) % 100;
            snprintf(ip, sizeof ip, "192.0.2.%d", 100 + k);
            dp_enrich_id id = dp_enrich_request(r->e, ip);
            /* one IP, one id, whichever thread asked first */
            dp_enrich_id was = 0;
            if (!atomic_compare_exchange_strong(&r->ids[k], &was, id) && was != id) r->answered = -1000000;
            dp_source_info s;
            dp_buf_reset(&arena);
            /* half the threads read by id, as a flush does; half by address */
            if (r->seed % 2) dp_enrich_read(r->e, id, ip, &s, &arena);
            else dp_enrich_get(r->e, ip, &s, &arena);
            if (s.ptr) {
                char want[64];
                snprintf(want, sizeof want, "h%s.example.com", ip + 8);
                if (strcmp(s.ptr, want) != 0 || !s.base_domain || strcmp(s.base_domain, "example.com") != 0)
                    r->answered = -1000000;
                r->answered++;
            }
        }
    dp_buf_free(&arena);
    return NULL;
}

START_TEST(test_threads) {
    dp_enrich_config c;
    config(&c);
    c.max_inflight = 4;
    dp_metrics *m = dp_metrics_new();
    c.metrics = m;
    dp_enrich *e = open_ok(&c);
    pthread_t t[6];
    racer r[6];
    _Atomic dp_enrich_id ids[100];
    for (int i = 0; i < 100; i++) atomic_init(&ids[i], 0);
    for (int i = 0; i < 6; i++) {
        r[i] = (racer){e, i, 0, ids};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 6; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(dp_enrich_settle(e, 30), 0);
    for (int i = 0; i < 6; i++) ck_assert_int_ge(r[i].answered, 0);
    dp_buf arena = DP_BUF_INIT;
    for (int i = 100; i < 200; i++) {
        char ip[32], want[64];
        snprintf(ip, sizeof ip, "192.0.2.%d", i);
        snprintf(want, sizeof want, "h%d.example.com", i);
        ck_assert_str_or_null(info_of(e, ip, &arena).ptr, want);
    }
    dp_buf_free(&arena);
    dp_enrich_close(e);
    dp_buf text = DP_BUF_INIT;
    dp_metrics_render(m, &text);
    ck_assert_msg(strstr(text.data, "dmarcpipe_enrich_lookups_total{result=\"answered\"} 100\n"), "%s", text.data);
    dp_buf_free(&text);
    dp_metrics_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("enrich_dns");
    TCase *tc = tcase_create("dns");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_the_set);
    tcase_add_test(tc, test_mmdb_fields);
    tcase_add_test(tc, test_user_senders_win);
    tcase_add_test(tc, test_negative_cached);
    tcase_add_test(tc, test_timeout_cached);
    tcase_add_test(tc, test_outage_not_cached);
    tcase_add_test(tc, test_restart_uses_cache);
    tcase_add_test(tc, test_expired_asked_again);
    tcase_add_test(tc, test_dead_resolver);
    tcase_add_test(tc, test_close_prompt);
    tcase_add_test(tc, test_read_by_id);
    tcase_add_test(tc, test_cap_evicts);
    tcase_add_test(tc, test_cap_drops_when_all_wait);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
