/* dp_kafka — the Kafka configuration and the read-to-end consumer that
 * every Kafka client of dmarcpipe shares; see dp_kafka.h.
 *
 * Configuration: our defaults (the caller's), then a properties file, then
 * DMARCPIPE_KAFKA_* environment variables (DMARCPIPE_KAFKA_SASL_PASSWORD ->
 * sasl.password), then -X options.  Values are never printed: a property
 * that librdkafka refuses is named without its value, and librdkafka's log
 * lines are passed through redact() first.
 *
 * Reading: the legacy (simple) consumer, no group: the partitions are
 * started from their first offset into one queue and read until each
 * reports its end (enable.partition.eof, which read_committed places at
 * the last stable offset) or, with to_start_end, until the end offset
 * queried when the read began.  Nothing is committed anywhere.  Every wait
 * for the broker is bounded by --broker-timeout and checks for SIGTERM.
 */
#include "dp_kafka.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_clock.h"

extern char **environ;

#define ENV_PREFIX "DMARCPIPE_KAFKA_"

void dp_kafka_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int dp_kafka_stopping(const dp_kafka_client *c) { return c->stop && *c->stop; }

/* A batch run waits for an absent broker only so long (--broker-timeout,
 * a minute by default), then ends with an error; a follower waits for
 * ever, saying so in its log. */
int dp_kafka_given_up(const dp_kafka_client *c, double since) {
    return c->give_up_s > 0 && dp_clock_seconds() - since >= c->give_up_s;
}

int dp_kafka_valid_topic(const char *t) {
    if (!*t || strlen(t) > 249) return 0;
    for (; *t; t++)
        if (!isalnum((unsigned char)*t) && *t != '.' && *t != '_' && *t != '-') return 0;
    return 1;
}

/* ---- configuration ---------------------------------------------------------- */

static int sensitive(const char *key) {
    static const char *const words[] = {"password", "secret", "key", "token", "jaas", "credential", "sasl.oauthbearer.config"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strstr(key, words[i])) return 1;
    return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, const char *from, dp_error *err) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) == RD_KAFKA_CONF_OK) return 0;
    /* librdkafka's message quotes the value: print it only when harmless */
    return dp_error_set(err, DP_ERR_USAGE, "kafka: %s: property '%s' refused%s%s", from, key,
                        sensitive(key) ? "" : ": ", sensitive(key) ? "" : errstr);
}

static int add_prop(dp_kafka_client *c, const char *key, size_t key_len, const char *value) {
    dp_kafka_prop *p = realloc(c->props, (c->n_props + 1) * sizeof *p);
    if (!p) return -1;
    c->props = p;
    p[c->n_props].key = strndup(key, key_len);
    p[c->n_props].value = strdup(value);
    if (!p[c->n_props].key || !p[c->n_props].value) {
        free(p[c->n_props].key);
        free(p[c->n_props].value);
        return -1;
    }
    c->n_props++;
    return 0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* key=value lines; '#' and '!' start comments (Java properties style) */
static int load_file(dp_kafka_client *c, const char *path, dp_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return dp_error_set(err, DP_ERR_IO, "kafka: cannot read config %s: %s", path, strerror(errno));
    char line[8192];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = dp_error_set(err, DP_ERR_USAGE, "kafka: %s:%d: expected key=value", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        if (add_prop(c, key, strlen(key), trim(eq + 1)) != 0) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    fclose(f);
    return rc;
}

/* DMARCPIPE_KAFKA_SASL_PASSWORD=x -> sasl.password=x */
static int load_env(dp_kafka_client *c, dp_error *err) {
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0) continue;
        const char *name = *e + strlen(ENV_PREFIX);
        const char *eq = strchr(name, '=');
        if (!eq || eq == name) continue;
        char key[256];
        size_t n = (size_t)(eq - name);
        if (n >= sizeof key) continue;
        for (size_t i = 0; i < n; i++) key[i] = name[i] == '_' ? '.' : (char)tolower((unsigned char)name[i]);
        key[n] = '\0';
        if (add_prop(c, key, n, eq + 1) != 0) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    return 0;
}

int dp_kafka_init(dp_kafka_client *c, const char *label, const char *uri, const dp_kafka_settings *o,
                         dp_error *err) {
    memset(c, 0, sizeof *c);
    const char *rest = strncmp(uri, "kafka://", strlen("kafka://")) == 0 ? uri + strlen("kafka://") : NULL;
    const char *slash = rest ? strchr(rest, '/') : NULL;
    if (!slash || slash == rest || !dp_kafka_valid_topic(slash + 1))
        return dp_error_set(err, DP_ERR_USAGE, "%s '%s': expected kafka://HOST:PORT[,HOST:PORT...]/TOPIC", label, uri);
    c->uri = strdup(uri);
    c->brokers = strndup(rest, (size_t)(slash - rest));
    c->topic = strdup(slash + 1);
    if (!c->uri || !c->brokers || !c->topic) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    if (!o) return load_env(c, err);
    c->stop = o->stop;
    c->give_up_s = o->broker_timeout;
    c->log = o->log;
    int rc = o->config_file ? load_file(c, o->config_file, err) : 0;
    if (rc == 0) rc = load_env(c, err);
    for (size_t i = 0; rc == 0 && i < o->n_props; i++) {
        const char *eq = strchr(o->props[i], '=');
        if (!eq || eq == o->props[i])
            rc = dp_error_set(err, DP_ERR_USAGE, "kafka: -X expects key=value, got '%.*s...'",
                              (int)(eq ? eq - o->props[i] : 0), o->props[i]);
        else if (add_prop(c, o->props[i], (size_t)(eq - o->props[i]), eq + 1) != 0)
            rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    return rc;
}

void dp_kafka_free(dp_kafka_client *c) {
    for (size_t i = 0; i < c->n_props; i++) {
        free(c->props[i].key);
        free(c->props[i].value);
    }
    free(c->props);
    free(c->uri);
    free(c->brokers);
    free(c->topic);
    memset(c, 0, sizeof *c);
}

/* librdkafka's own messages may quote a property's value ("Unrecognized
 * sasl.oauthbearer.config beginning at: ..."): every sensitive value, and
 * each word of it, is blanked before a line is printed. */
static void redact(const dp_kafka_client *c, char *line) {
    for (size_t i = 0; c && i < c->n_props; i++) {
        if (!sensitive(c->props[i].key) || !c->props[i].value[0]) continue;
        const char *v = c->props[i].value;
        for (const char *w = v; *w;) {
            while (*w && isspace((unsigned char)*w)) w++;
            size_t n = 0;
            while (w[n] && !isspace((unsigned char)w[n])) n++;
            char word[256];
            if (n >= 3 && n < sizeof word) { /* short words would blank ordinary text */
                memcpy(word, w, n);
                word[n] = '\0';
                for (char *hit = line; (hit = strstr(hit, word)) != NULL; hit += n) memset(hit, '*', n);
            }
            w += n;
        }
    }
}

/* librdkafka's syslog levels, ours: 0-3 error, 4 warning, the rest debug:
 * its notices (a rebalance, a coordinator found) are routine, and at info
 * a follower would log them every few minutes for ever. */
static dp_log_level log_level(int level) {
    return level <= 3 ? DP_LOG_ERROR : level == 4 ? DP_LOG_WARN : DP_LOG_DEBUG;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    /* a consumer is told producer properties too: the configuration is shared */
    if (strcmp(fac, "CONFWARN") == 0) return;
    const dp_kafka_client *c = rd_kafka_opaque(rk);
    dp_log *log = c ? c->log : NULL;
    if (!dp_log_enabled(log, log_level(level))) return;
    char line[1024];
    snprintf(line, sizeof line, "%s", buf);
    redact(c, line);
    dp_log_event(log, log_level(level), "kafka",
                 DP_LOG_FIELDS(DP_LOG_STR("facility", fac), DP_LOG_I64("syslog_level", level),
                               DP_LOG_STR("client", rd_kafka_name(rk))),
                 "dmarcpipe: kafka: %s: %s", fac, line);
}

rd_kafka_conf_t *dp_kafka_conf(const dp_kafka_client *c, const char *const (*defaults)[2], size_t n,
                                      int consumer, dp_error *err) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = conf_set(conf, "bootstrap.servers", c->brokers, c->uri, err);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = conf_set(conf, defaults[i][0], defaults[i][1], "default", err);
    for (size_t i = 0; rc == 0 && i < c->n_props; i++) {
        /* a consumer reads what the producer committed, and reading never
         * makes a topic: neither is the user's to change */
        if (consumer && (strcmp(c->props[i].key, "isolation.level") == 0 ||
                         strcmp(c->props[i].key, "allow.auto.create.topics") == 0))
            continue;
        rc = conf_set(conf, c->props[i].key, c->props[i].value, "configuration", err);
    }
    rd_kafka_conf_set_opaque(conf, (void *)c); /* for log_cb's redaction, and delivery reports */
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* ---- reading a topic to its end --------------------------------------------- */

static const char *const CONSUMER_DEFAULTS[][2] = {
    {"isolation.level", "read_committed"},
    {"enable.partition.eof", "true"},
    {"enable.auto.commit", "false"},
    {"allow.auto.create.topics", "false"},
    /* what is fetched ahead, per partition with this (legacy) consumer:
     * 8 MiB keeps it well ahead of the reader, where librdkafka's 64 MiB
     * would cost a topic of many partitions a gigabyte */
    {"queued.max.messages.kbytes", "8192"},
    /* a topic is read to its end once: do not wait out the default 500 ms
     * fetch wait to learn that the end is reached */
    {"fetch.wait.max.ms", "10"},
};

/* How long one request may wait: `cap` ms, and not much longer than what
 * is left of --broker-timeout (a little past it, so that a request that
 * times out finds the wait over; at least long enough to be answered). */
static int attempt_ms(const dp_kafka_client *c, double since, int cap) {
    if (c->give_up_s <= 0) return cap;
    double left_ms = (c->give_up_s - (dp_clock_seconds() - since)) * 1000 + 100;
    return left_ms >= cap ? cap : left_ms < 200 ? 200 : (int)left_ms;
}

/* Sleeps `ms` in short naps, ending early on SIGTERM or when the wait is
 * over.  1 on SIGTERM. */
static int nap(const dp_kafka_client *c, long ms, double since) {
    for (long slept = 0; slept < ms && !dp_kafka_given_up(c, since); slept += 100) {
        if (dp_kafka_stopping(c)) return 1;
        dp_kafka_sleep_ms(100);
    }
    return dp_kafka_stopping(c);
}

static int no_broker(const dp_kafka_client *c, const char *why, dp_error *err) {
    return dp_error_set(err, DP_ERR_IO, "kafka %s: no broker answered for %.0f s (%s): giving up (--broker-timeout)",
                        c->uri, c->give_up_s, why);
}

/* The topic's partitions, *n (0: no such topic, when that is allowed),
 * waiting for the broker.  0, DP_KAFKA_STOPPED or -1. */
static int partitions_of(const dp_kafka_client *c, rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                         const dp_kafka_read *r, int32_t *n, dp_error *err) {
    double since = dp_clock_seconds();
    for (long backoff = 500;;) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, attempt_ms(c, since, 10000));
        int answered = e == RD_KAFKA_RESP_ERR_NO_ERROR;
        if (answered) {
            rd_kafka_resp_err_t te = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            *n = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
            rd_kafka_metadata_destroy(md);
            if (te == RD_KAFKA_RESP_ERR_NO_ERROR && *n > 0) return 0;
            *n = 0;
            if (r->missing_ok) return 0;
            if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                return dp_error_set(err, DP_ERR_IO, "kafka %s: topic %s does not exist", c->uri, r->topic);
            e = te != RD_KAFKA_RESP_ERR_NO_ERROR ? te : RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION; /* being made: wait */
        }
        if (dp_kafka_given_up(c, since)) {
            if (!answered) return no_broker(c, rd_kafka_err2str(e), err);
            return dp_error_set(err, DP_ERR_IO, "kafka %s: topic %s was not available for %.0f s (%s): giving up "
                                "(--broker-timeout)", c->uri, r->topic, c->give_up_s, rd_kafka_err2str(e));
        }
        dp_log_warn(c->log, "kafka",
                    DP_LOG_FIELDS(DP_LOG_STR("uri", c->uri), DP_LOG_STR("topic", r->topic),
                                  DP_LOG_STR("error", rd_kafka_err2str(e))),
                    "dmarcpipe: kafka %s: cannot read the %s's metadata (%s); retrying", c->uri, r->what,
                    rd_kafka_err2str(e));
        if (nap(c, backoff, since)) return DP_KAFKA_STOPPED;
        if (backoff < 30000) backoff *= 2;
    }
}

/* The end offset of partition p as it is now (read_committed: the last
 * stable offset), and its first; waits for the broker.  0, DP_KAFKA_STOPPED
 * or -1. */
static int end_of(const dp_kafka_client *c, rd_kafka_t *rk, const dp_kafka_read *r, int32_t p,
                  int64_t *lo, int64_t *hi, dp_error *err) {
    double since = dp_clock_seconds();
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, r->topic, p, lo, hi, attempt_ms(c, since, 10000));
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
        if (dp_kafka_given_up(c, since)) return no_broker(c, rd_kafka_err2str(e), err);
        dp_log_warn(c->log, "kafka",
                    DP_LOG_FIELDS(DP_LOG_STR("uri", c->uri), DP_LOG_STR("topic", r->topic), DP_LOG_I64("partition", p),
                                  DP_LOG_STR("error", rd_kafka_err2str(e))),
                    "dmarcpipe: kafka %s: cannot read the end of %s %s [%d] (%s); retrying", c->uri, r->what,
                    r->topic, (int)p, rd_kafka_err2str(e));
        if (nap(c, 500, since)) return DP_KAFKA_STOPPED;
    }
}

typedef struct part_state {
    int64_t end; /* stop before this offset (INT64_MAX: at the partition's end) */
    int started, done;
} part_state;

/* Takes messages from the queue until every partition is done. */
static int consume(const dp_kafka_client *c, const dp_kafka_read *r, rd_kafka_queue_t *q, part_state *ps,
                   int32_t first, int32_t count, int32_t pending, dp_kafka_msg_fn fn, void *ctx, dp_error *err) {
    double quiet_since = dp_clock_seconds(); /* the last sign of the broker */
    while (pending > 0) {
        if (dp_kafka_stopping(c)) return DP_KAFKA_STOPPED;
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 500);
        if (!m) {
            if (dp_kafka_given_up(c, quiet_since)) return no_broker(c, "no data while reading", err);
            continue;
        }
        int32_t i = m->partition - first;
        part_state *p = i >= 0 && i < count && ps[i].started && !ps[i].done ? &ps[i] : NULL;
        int rc = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            quiet_since = dp_clock_seconds();
            if (p) p->done = 1, pending--;
        } else if (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE || m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
            if (r->partition >= 0)
                rc = dp_error_set(err, DP_ERR_IO, "kafka %s: %s %s: offset %llu is gone (retention?)%s", c->uri, r->what,
                                  r->topic, (unsigned long long)r->from, r->gone_hint);
            else
                rc = dp_error_set(err, DP_ERR_IO, "kafka %s: %s %s [%d]: offsets went while being read (retention?)%s",
                                  c->uri, r->what, r->topic, (int)m->partition, r->gone_hint);
        } else if (m->err) {
            dp_log_warn(c->log, "kafka",
                        DP_LOG_FIELDS(DP_LOG_STR("uri", c->uri), DP_LOG_STR("topic", r->topic),
                                      DP_LOG_I64("partition", m->partition),
                                      DP_LOG_STR("error", rd_kafka_message_errstr(m))),
                        "dmarcpipe: kafka %s: reading the %s: %s; retrying", c->uri, r->what,
                        rd_kafka_message_errstr(m));
        } else {
            quiet_since = dp_clock_seconds();
            if (p && m->offset >= p->end) {
                p->done = 1, pending--; /* written after the read began */
            } else if (p) {
                if (fn(ctx, m)) rc = DP_KAFKA_FN_STOP;
                if (m->offset + 1 >= p->end) p->done = 1, pending--;
            }
        }
        rd_kafka_message_destroy(m);
        if (rc) return rc;
    }
    return 0;
}

int dp_kafka_read_to_end(const dp_kafka_client *c, const dp_kafka_read *r,
                                dp_kafka_msg_fn fn, void *ctx, dp_error *err) {
    rd_kafka_t *rk = r->keep ? *r->keep : NULL;
    if (!rk) {
        rd_kafka_conf_t *conf = dp_kafka_conf(c, CONSUMER_DEFAULTS,
                                              sizeof CONSUMER_DEFAULTS / sizeof *CONSUMER_DEFAULTS, 1, err);
        if (!conf) return -1;
        char errstr[512];
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
        if (!rk) {
            rd_kafka_conf_destroy(conf);
            return dp_error_set(err, DP_ERR_USAGE, "kafka %s: cannot create a consumer: %s", c->uri, errstr);
        }
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, r->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int32_t n = 0;
    int rc = rkt && q ? partitions_of(c, rk, rkt, r, &n, err) : dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    int32_t first = r->partition >= 0 ? r->partition : 0;
    int32_t count = rc != 0 || n == 0 ? 0 : r->partition >= 0 ? 1 : n;
    part_state *ps = count ? calloc((size_t)count, sizeof *ps) : NULL;
    if (count && !ps) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    int32_t pending = 0;
    for (int32_t i = 0; rc == 0 && i < count; i++) {
        int64_t lo = 0, hi = INT64_MAX;
        if (r->to_start_end && (rc = end_of(c, rk, r, first + i, &lo, &hi, err)) != 0) break;
        ps[i].end = hi;
        if (hi <= lo) continue; /* empty (or emptied by retention) */
        int64_t start = r->partition >= 0 && r->from > 0 ? r->from : RD_KAFKA_OFFSET_BEGINNING;
        if (rd_kafka_consume_start_queue(rkt, first + i, start, q) != 0) {
            rc = dp_error_set(err, DP_ERR_IO, "kafka %s: cannot read the %s %s: %s", c->uri, r->what, r->topic,
                              rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        ps[i].started = 1;
        pending++;
    }
    if (rc == 0) rc = consume(c, r, q, ps, first, count, pending, fn, ctx, err);
    for (int32_t i = 0; i < count; i++)
        if (ps[i].started) rd_kafka_consume_stop(rkt, first + i);
    free(ps);
    if (q) rd_kafka_queue_destroy(q);
    if (rkt) rd_kafka_topic_destroy(rkt);
    /* a consumer kept for the next read, unless this one failed */
    if (r->keep && rc == 0) *r->keep = rk;
    else {
        if (r->keep) *r->keep = NULL;
        rd_kafka_destroy(rk);
    }
    return rc;
}

int dp_kafka_partitions(const dp_kafka_client *c, rd_kafka_t *rk, const char *topic, dp_error *err) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    double since = dp_clock_seconds();
    for (;;) {
        rd_kafka_resp_err_t e = t ? rd_kafka_metadata(rk, 0, t, &md, 5000) : RD_KAFKA_RESP_ERR__FAIL;
        if (!e && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) break;
        rd_kafka_resp_err_t why = e ? e : md && md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__FAIL;
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
        if (why == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || dp_kafka_stopping(c) || dp_kafka_given_up(c, since)) {
            if (t) rd_kafka_topic_destroy(t);
            dp_error_set(err, DP_ERR_IO, "kafka %s: cannot learn the partitions of topic %s: %s", c->uri, topic,
                         rd_kafka_err2str(why));
            return -1;
        }
        dp_kafka_sleep_ms(500);
    }
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return n;
}
