/* format — rollups, report lines and records as JSON and CSV text.
 *
 * One place decides the field names and their order, so that the NDJSON,
 * CSV and Kafka outputs, and `dmarcpipe parse`, cannot drift apart.  The
 * rollup schema is documented in the root README; `v` is
 * DP_ROLLUP_SCHEMA_VERSION.
 *
 * A record line flattens its report's fields into every record, so each
 * line stands alone (grep, jq, a warehouse COPY).  Absent values are JSON
 * null, never an empty string, so "not reported" and "reported empty" stay
 * distinct.
 */
#include <string.h>

#include "dp_json.h"
#include "sink.h"

/* Field order of a rollup line; CSV columns follow it too: v, the
 * window, the key's strings, what enrichment knew of the source IP
 * (SOURCE_STRINGS and source_asn: not part of the key), the measures. */
#define ROLLUP_STRINGS(X)                                                                  \
    X(reporter) X(policy_domain) X(header_from) X(source_ip) X(disposition) X(dkim) X(spf) \
    X(override) X(dkim_domain) X(dkim_selector) X(dkim_result) X(spf_domain) X(spf_result)

/* dp_source_info's strings, in line order; source_asn goes between
 * source_base_domain and source_as_org (AFTER_ASN). */
#define SOURCE_STRINGS(X) X(ptr) X(base_domain) X(as_org) X(country) X(service) X(service_type)
#define AFTER_ASN 2

/* The member names of a rollup line's string fields, each with its
 * leading comma, in ROLLUP_STRINGS order. */
#define KEY(f) {",\"" #f "\":", sizeof(",\"" #f "\":") - 1},
static const struct { const char *text; size_t len; } STRING_KEYS[] = {ROLLUP_STRINGS(KEY)};
#undef KEY
enum { N_STRINGS = sizeof STRING_KEYS / sizeof STRING_KEYS[0] };
#define SKEY(f) {",\"source_" #f "\":", sizeof(",\"source_" #f "\":") - 1},
static const struct { const char *text; size_t len; } SOURCE_KEYS[] = {SOURCE_STRINGS(SKEY)};
#undef SKEY
enum { N_SOURCE = sizeof SOURCE_KEYS / sizeof SOURCE_KEYS[0] };

/* A final flush writes one line per rollup, often millions: the line's
 * room is reserved once and written through a pointer (dp_json_put_*),
 * instead of a bounds check and a strlen per member. */
void dp_format_rollup_json(dp_buf *b, const dp_rollup *r) {
#define VAL(f) r->f,
    const char *vals[N_STRINGS] = {ROLLUP_STRINGS(VAL)};
#undef VAL
#define SVAL(f) r->source_info.f,
    const char *svals[N_SOURCE] = {SOURCE_STRINGS(SVAL)};
#undef SVAL
    size_t lens[N_STRINGS], slens[N_SOURCE];
    size_t need = 96 + 8 * DP_BUF_INT_MAX; /* braces, numeric members' names */
    for (size_t i = 0; i < N_STRINGS; i++) {
        lens[i] = vals[i] ? strlen(vals[i]) : 0;
        need += STRING_KEYS[i].len + (vals[i] ? DP_JSON_STRN_MAX(lens[i]) : 4);
    }
    for (size_t i = 0; i < N_SOURCE; i++) {
        slens[i] = svals[i] ? strlen(svals[i]) : 0;
        need += SOURCE_KEYS[i].len + (svals[i] ? DP_JSON_STRN_MAX(slens[i]) : 4);
    }
    if (dp_buf_reserve(b, need) != 0) return;
    char *o = b->data + b->len;
#define LIT(s) (memcpy(o, s, sizeof s - 1), o += sizeof s - 1)
    LIT("{\"v\":");
    o = dp_buf_raw_u64(o, DP_ROLLUP_SCHEMA_VERSION);
    LIT(",\"window_start\":");
    o = dp_buf_raw_i64(o, r->window_start);
    LIT(",\"window_end\":");
    o = dp_buf_raw_i64(o, r->window_end);
    for (size_t i = 0; i < N_STRINGS; i++) {
        memcpy(o, STRING_KEYS[i].text, STRING_KEYS[i].len);
        o += STRING_KEYS[i].len;
        if (vals[i]) o = dp_json_put_strn(o, vals[i], lens[i]);
        else LIT("null");
    }
    for (size_t i = 0; i < N_SOURCE; i++) {
        if (i == AFTER_ASN) {
            LIT(",\"source_asn\":");
            if (r->source_info.asn) o = dp_buf_raw_u64(o, r->source_info.asn);
            else LIT("null");
        }
        memcpy(o, SOURCE_KEYS[i].text, SOURCE_KEYS[i].len);
        o += SOURCE_KEYS[i].len;
        if (svals[i]) o = dp_json_put_strn(o, svals[i], slens[i]);
        else LIT("null");
    }
    LIT(",\"messages\":");
    o = dp_buf_raw_u64(o, r->messages);
    LIT(",\"records\":");
    o = dp_buf_raw_u64(o, r->records);
    LIT(",\"first_seen\":");
    o = dp_buf_raw_i64(o, r->first_seen);
    LIT(",\"last_seen\":");
    o = dp_buf_raw_i64(o, r->last_seen);
    LIT("}");
#undef LIT
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void dp_format_rollup_csv_header(dp_buf *b) {
    dp_buf_puts(b, "v,window_start,window_end");
#define X(f) dp_buf_puts(b, "," #f);
    ROLLUP_STRINGS(X)
#undef X
    dp_buf_puts(b, ",source_ptr,source_base_domain,source_asn,source_as_org,source_country,source_service,"
                   "source_service_type");
    dp_buf_puts(b, ",messages,records,first_seen,last_seen\n");
}

/* RFC 4180: quote a field when it holds a comma, quote, CR or LF; double
 * the quotes inside.  An absent value is an empty field. */
static void csv_field(dp_buf *b, const char *s) {
    dp_buf_putc(b, ',');
    if (!s) return;
    if (!strpbrk(s, ",\"\r\n")) {
        dp_buf_puts(b, s);
        return;
    }
    dp_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"') dp_buf_putc(b, '"');
        dp_buf_putc(b, *s);
    }
    dp_buf_putc(b, '"');
}

void dp_format_rollup_csv(dp_buf *b, const dp_rollup *r) {
    dp_buf_u64(b, DP_ROLLUP_SCHEMA_VERSION);
    dp_buf_putc(b, ',');
    dp_buf_i64(b, r->window_start);
    dp_buf_putc(b, ',');
    dp_buf_i64(b, r->window_end);
#define X(f) csv_field(b, r->f);
    ROLLUP_STRINGS(X)
#undef X
    const dp_source_info *si = &r->source_info;
    csv_field(b, si->ptr);
    csv_field(b, si->base_domain);
    dp_buf_putc(b, ',');
    if (si->asn) dp_buf_u64(b, si->asn);
    csv_field(b, si->as_org);
    csv_field(b, si->country);
    csv_field(b, si->service);
    csv_field(b, si->service_type);
    dp_buf_putc(b, ',');
    dp_buf_u64(b, r->messages);
    dp_buf_putc(b, ',');
    dp_buf_u64(b, r->records);
    dp_buf_putc(b, ',');
    dp_buf_i64(b, r->first_seen);
    dp_buf_putc(b, ',');
    dp_buf_i64(b, r->last_seen);
    dp_buf_putc(b, '\n');
}

void dp_format_report_line(dp_buf *b, const dp_report_line *line) {
    const dp_report *r = line->report;
    int first = 1;
    dp_buf_putc(b, '{');
    dp_json_kv_u64(b, &first, "v", DP_REPORT_LINE_VERSION);
    dp_json_kv_str(b, &first, "sha256", line->sha256_hex);
    dp_format_report_fields(b, &first, r);
    dp_json_kv_u64(b, &first, "records", r->records);
    dp_json_kv_u64(b, &first, "messages", r->messages);
    dp_json_kv_u64(b, &first, "xml_bytes", r->xml_bytes);
    dp_buf_putc(b, '}');
}

void dp_format_report_fields(dp_buf *b, int *first, const dp_report *rep) {
    /* names of files, which are bytes: never altered */
    dp_json_kv_bytes(b, first, "input", rep->input);
    dp_json_kv_bytes(b, first, "part", rep->part);
    dp_json_kv_str(b, first, "schema", dp_report_schema_name(rep->schema));
    dp_json_kv_str(b, first, "version", rep->version);
    dp_json_kv_str(b, first, "org_name", rep->org_name);
    dp_json_kv_str(b, first, "email", rep->email);
    dp_json_kv_str(b, first, "extra_contact_info", rep->extra_contact_info);
    dp_json_kv_str(b, first, "report_id", rep->report_id);
    dp_json_kv_i64(b, first, "begin", rep->begin);
    dp_json_kv_i64(b, first, "end", rep->end);
    dp_json_kv_str(b, first, "generator", rep->generator);
    dp_json_key(b, first, "errors");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < rep->n_errors; i++) {
        if (i) dp_buf_putc(b, ',');
        dp_json_str(b, rep->errors[i]);
    }
    dp_buf_putc(b, ']');
    const dp_policy *p = &rep->policy;
    dp_json_kv_str(b, first, "policy_domain", p->domain);
    dp_json_kv_str(b, first, "policy_adkim", p->adkim);
    dp_json_kv_str(b, first, "policy_aspf", p->aspf);
    dp_json_kv_str(b, first, "policy_p", p->p);
    dp_json_kv_str(b, first, "policy_sp", p->sp);
    dp_json_kv_str(b, first, "policy_np", p->np);
    dp_json_key(b, first, "policy_pct");
    if (p->has_pct) dp_buf_u64(b, p->pct);
    else dp_buf_puts(b, "null");
    dp_json_kv_str(b, first, "policy_fo", p->fo);
    dp_json_kv_str(b, first, "policy_testing", p->testing);
    dp_json_kv_str(b, first, "policy_discovery_method", p->discovery_method);
    dp_json_kv_str(b, first, "policy_psd", p->psd);
}

void dp_format_record(dp_buf *b, const dp_report *rep, const dp_record *rec) {
    int first = 1;
    dp_buf_putc(b, '{');
    dp_format_report_fields(b, &first, rep);
    dp_json_kv_str(b, &first, "source_ip", rec->source_ip);
    dp_json_kv_u64(b, &first, "count", rec->count);
    dp_json_kv_str(b, &first, "disposition", rec->disposition);
    dp_json_kv_str(b, &first, "dkim", rec->dkim);
    dp_json_kv_str(b, &first, "spf", rec->spf);
    dp_json_key(b, &first, "overrides");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < rec->n_overrides; i++) {
        int f = 1;
        dp_buf_puts(b, i ? ",{" : "{");
        dp_json_kv_str(b, &f, "type", rec->overrides[i].type);
        dp_json_kv_str(b, &f, "comment", rec->overrides[i].comment);
        dp_buf_putc(b, '}');
    }
    dp_buf_putc(b, ']');
    dp_json_kv_str(b, &first, "header_from", rec->header_from);
    dp_json_kv_str(b, &first, "envelope_from", rec->envelope_from);
    dp_json_kv_str(b, &first, "envelope_to", rec->envelope_to);
    dp_json_key(b, &first, "dkim_results");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < rec->n_dkim_auth; i++) {
        int f = 1;
        const dp_dkim_auth *d = &rec->dkim_auth[i];
        dp_buf_puts(b, i ? ",{" : "{");
        dp_json_kv_str(b, &f, "domain", d->domain);
        dp_json_kv_str(b, &f, "selector", d->selector);
        dp_json_kv_str(b, &f, "result", d->result);
        dp_json_kv_str(b, &f, "human_result", d->human_result);
        dp_buf_putc(b, '}');
    }
    dp_buf_putc(b, ']');
    dp_json_key(b, &first, "spf_results");
    dp_buf_putc(b, '[');
    for (size_t i = 0; i < rec->n_spf_auth; i++) {
        int f = 1;
        const dp_spf_auth *s = &rec->spf_auth[i];
        dp_buf_puts(b, i ? ",{" : "{");
        dp_json_kv_str(b, &f, "domain", s->domain);
        dp_json_kv_str(b, &f, "scope", s->scope);
        dp_json_kv_str(b, &f, "result", s->result);
        dp_json_kv_str(b, &f, "human_result", s->human_result);
        dp_buf_putc(b, '}');
    }
    dp_buf_putc(b, ']');
    dp_buf_putc(b, '}');
}
