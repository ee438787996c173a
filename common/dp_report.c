/* dp_report — names of the report's enumerations (see dp_report.h). */
#include "dp_report.h"

const char *dp_report_schema_name(dp_schema s) {
    switch (s) {
    case DP_SCHEMA_DRAFT: return "draft";
    case DP_SCHEMA_RFC7489: return "rfc7489";
    case DP_SCHEMA_RFC9990: return "rfc9990";
    }
    return "unknown";
}
