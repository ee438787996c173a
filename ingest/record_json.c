/* record_json — one record as one JSON object: `dmarcpipe parse` output.
 *
 * The report's fields are flattened into every record so each line stands
 * alone (grep, jq, a warehouse COPY).  Absent values are JSON null, never
 * an empty string, so "not reported" and "reported empty" stay distinct.
 */
#include <string.h>

#include "dp_json.h"
#include "ingest.h"

void dp_report_fields_to_json(dp_buf *b, int *first, const dp_report *rep) {
    dp_json_kv_str(b, first, "input", rep->input);
    dp_json_kv_str(b, first, "part", rep->part);
    dp_json_kv_str(b, first, "schema", dp_schema_name(rep->schema));
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

void dp_record_to_json(dp_buf *b, const dp_report *rep, const dp_record *rec) {
    int first = 1;
    dp_buf_putc(b, '{');
    dp_report_fields_to_json(b, &first, rep);
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
