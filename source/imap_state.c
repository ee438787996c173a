/* imap_state — where the IMAP source keeps what a mailbox's next listing
 * starts from: {"source", "uidvalidity", "watermark", "rejected"} in
 * STATE/sources/imap-HASH.json, JSON so that a person can read it.
 *
 * The file only ever lags behind the truth: the run's state knows every
 * counted message by its key, so a file lost, or written before a crash
 * could update it, costs a longer listing and no count.  So it is written
 * whole and atomically (a reader finds the old file or the new one, never
 * half of one), and a file that cannot be read is said and set aside.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_buf.h"
#include "source_internal.h"
#include "imap_state.h"

void dp_imap_state_load(const char *path, const char *identity, const char *display, dp_log *log, dp_imap_state *st) {
    st->validity = st->watermark = 0;
    st->rejected.n = 0;
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        if (access(path, F_OK) == 0) {
            char a[DP_ERROR_TEXT_MAX];
            dp_log_warn(log, "imap",
                        DP_LOG_FIELDS(DP_LOG_STR("source", display), DP_LOG_STR("path", path),
                                      DP_LOG_STR("error", je.text)),
                        "dmarcpipe run: %s: cannot read %s (%s): the mailbox is listed from its start", display,
                        dp_error_text(path, a), je.text);
        }
        return;
    }
    const char *src = json_string_value(json_object_get(j, "source"));
    json_int_t v = json_integer_value(json_object_get(j, "uidvalidity"));
    json_int_t w = json_integer_value(json_object_get(j, "watermark"));
    if (src && strcmp(src, identity) == 0 && v > 0 && v <= UINT32_MAX && w >= 0 && w <= UINT32_MAX) {
        st->validity = (uint32_t)v;
        st->watermark = (uint32_t)w;
        size_t i;
        json_t *u;
        json_array_foreach(json_object_get(j, "rejected"), i, u) {
            json_int_t x = json_integer_value(u);
            if (x > 0 && x <= UINT32_MAX) dp_imap_uidset_add(&st->rejected, (uint32_t)x);
        }
    }
    json_decref(j);
}

int dp_imap_state_save(const char *path, const char *identity, const char *display, dp_log *log,
                       const dp_imap_state *st) {
    json_t *rej = json_array();
    for (size_t i = 0; rej && i < st->rejected.n; i++)
        json_array_append_new(rej, json_integer(st->rejected.v[i]));
    json_t *j =
        rej ? json_pack("{s:s, s:I, s:I, s:o}", "source", identity, "uidvalidity", (json_int_t)st->validity,
                        "watermark", (json_int_t)st->watermark, "rejected", rej)
            : NULL;
    return dp_source_state_write(path, j, display, log);
}
