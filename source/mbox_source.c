/* mbox_source — being written; refuses to open until it is. */
#include "source_internal.h"

dp_source *dp_mbox_source_open(const char *path, const dp_source_options *opts, dp_error *err) {
    (void)opts;
    dp_error_set(err, DP_ERR_USAGE, "source '%s': not available in this build", path);
    return NULL;
}
