/* s3_state — where the S3 source keeps what a follower's listing starts
 * from: {"source", "watermark"} in STATE/sources/s3-HASH.json, the greatest
 * key under the prefix whose object was committed.  JSON, so that a person
 * can read it.
 *
 * The file only ever lags behind the truth: the run's state knows every
 * counted object by its key, so a file lost, or written before a crash could
 * update it, costs a longer listing and no count.  So it is written whole
 * and atomically, and a file that cannot be read is said and set aside.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_buf.h"
#include "source_internal.h"
#include "s3_state.h"

char *dp_s3_state_load(const char *path, const char *identity, const char *display, dp_log *log) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        if (access(path, F_OK) == 0) {
            char a[DP_ERROR_TEXT_MAX];
            dp_log_warn(log, "s3",
                        DP_LOG_FIELDS(DP_LOG_STR("source", display), DP_LOG_STR("path", path),
                                      DP_LOG_STR("error", je.text)),
                        "dmarcpipe run: %s: cannot read %s (%s): the bucket is listed from its start", display,
                        dp_error_text(path, a), je.text);
        }
        return NULL;
    }
    const char *src = json_string_value(json_object_get(j, "source"));
    const char *w = json_string_value(json_object_get(j, "watermark"));
    char *out = src && w && *w && strcmp(src, identity) == 0 ? strdup(w) : NULL;
    json_decref(j);
    return out;
}

int dp_s3_state_save(const char *path, const char *identity, const char *display, dp_log *log,
                     const char *watermark) {
    json_t *j = json_pack("{s:s, s:s}", "source", identity, "watermark", watermark ? watermark : "");
    return dp_source_state_write(path, j, display, log);
}
