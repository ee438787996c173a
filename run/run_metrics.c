/* run_metrics — see run_metrics.h. */
#include "run_metrics.h"

#include <string.h>

static const char *const REPORT_RESULTS[] = {"accepted", "rejected", "duplicate"};
static const char *const INPUT_RESULTS[] = {"accepted", "rejected"};
static const char *const STAGES[] = {"source", "ingest"};
/* a commit takes milliseconds with files, up to seconds with a broker */
static const double COMMIT_BUCKETS[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

void dp_run_metrics_init(dp_run_metrics *rm, dp_metrics *m) {
    memset(rm, 0, sizeof *rm);
    if (!m) return;
    rm->m = m;
    rm->reports = dp_metrics_counter1(m, "dmarcpipe_reports_total",
                                      "Reports in committed epochs: accepted (counted), rejected, or duplicate "
                                      "(counted before, not again).",
                                      "result", REPORT_RESULTS, 3);
    rm->records = dp_metrics_counter(m, "dmarcpipe_records_total", "Records of the accepted reports.");
    rm->messages = dp_metrics_counter(m, "dmarcpipe_messages_total",
                                      "Messages (the sum of the records' counts) of the accepted reports.");
    rm->input_bytes = dp_metrics_counter(m, "dmarcpipe_input_bytes_total", "Bytes of the inputs read, as stored.");
    rm->inputs = dp_metrics_counter1(m, "dmarcpipe_inputs_total",
                                     "Inputs (files, messages, objects) in committed epochs, by whether all of "
                                     "each was accepted.",
                                     "result", INPUT_RESULTS, 2);
    const char *reasons[DP_RUN_METRICS_KINDS];
    for (int k = 0; k < DP_RUN_METRICS_KINDS; k++) reasons[k] = dp_error_stage((dp_errkind)(k + 1));
    dp_metric_label labels[] = {{"stage", STAGES, 2}, {"reason", reasons, DP_RUN_METRICS_KINDS}};
    rm->rejections = dp_metrics_register(m, DP_METRIC_COUNTER, "dmarcpipe_rejections_total",
                                         "Rejections in committed epochs: stage is where (the input's source, or "
                                         "ingest), reason the kind of error.",
                                         labels, 2, NULL, 0);
    rm->epochs = dp_metrics_counter(m, "dmarcpipe_epochs_total", "Epochs committed.");
    rm->commit_seconds = dp_metrics_register(m, DP_METRIC_HISTOGRAM, "dmarcpipe_epoch_commit_seconds",
                                             "Seconds an epoch's commit took: the sinks' commit and the state's "
                                             "write.",
                                             NULL, 0, COMMIT_BUCKETS, sizeof COMMIT_BUCKETS / sizeof *COMMIT_BUCKETS);
}

void dp_run_metrics_tally_reset(dp_run_metrics_tally *t) {
    atomic_store_explicit(&t->bytes, 0, memory_order_relaxed);
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < DP_RUN_METRICS_KINDS; k++)
            atomic_store_explicit(&t->rejections[a][k], 0, memory_order_relaxed);
}

void dp_run_metrics_reject(dp_run_metrics_tally *t, int at, const dp_error *errors, size_t n_errors) {
    for (size_t i = 0; i < n_errors; i++) {
        int k = (int)errors[i].kind;
        if (k >= 1 && k <= DP_RUN_METRICS_KINDS)
            atomic_fetch_add_explicit(&t->rejections[at != 0][k - 1], 1, memory_order_relaxed);
    }
}

void dp_run_metrics_commit(const dp_run_metrics *rm, const dp_engine_stats *st, const dp_run_metrics_tally *t,
                           double commit_seconds) {
    if (!rm->m) return;
    dp_metrics_add(rm->reports, 0, st->reports);
    dp_metrics_add(rm->reports, 1, st->rejected);
    dp_metrics_add(rm->reports, 2, st->duplicates);
    dp_metrics_add(rm->records, 0, st->records);
    dp_metrics_add(rm->messages, 0, st->messages);
    dp_metrics_add(rm->inputs, 0, st->inputs - st->inputs_rejected);
    dp_metrics_add(rm->inputs, 1, st->inputs_rejected);
    dp_metrics_add(rm->input_bytes, 0, atomic_load_explicit(&t->bytes, memory_order_relaxed));
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < DP_RUN_METRICS_KINDS; k++) {
            uint64_t v = atomic_load_explicit(&t->rejections[a][k], memory_order_relaxed);
            if (v) dp_metrics_add(rm->rejections, (size_t)(a * DP_RUN_METRICS_KINDS + k), v);
        }
    dp_metrics_add(rm->epochs, 0, 1);
    dp_metrics_observe(rm->commit_seconds, 0, commit_seconds);
}
