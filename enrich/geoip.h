/* geoip — a source IP's AS number, AS organisation and country from the
 * MaxMind DB files the user supplies (libmaxminddb).
 *
 * The ASN database is read for autonomous_system_number and
 * autonomous_system_organization (GeoLite2-ASN's and DB-IP's layout), the
 * country database for country.iso_code.  IPv4 addresses are found in IPv6
 * databases too (libmaxminddb maps them).  The files are mapped read-only:
 * lookups are safe from any number of threads at once.
 */
#ifndef DP_GEOIP_H
#define DP_GEOIP_H

#include <stdint.h>

#include "dp_error.h"

typedef struct dp_geoip dp_geoip;

typedef struct dp_geoip_info {
    uint32_t asn;          /* 0: unknown */
    char as_org[256];      /* "": unknown */
    char country[8];       /* "": unknown */
} dp_geoip_info;

/* Either path may be NULL.  NULL with err set when a file named cannot be
 * opened as an MMDB (the file and libmaxminddb's reason). */
dp_geoip *dp_geoip_open(const char *asn_path, const char *country_path, dp_error *err);
/* What the databases say of ip (canonical text); all unknown when g is
 * NULL, ip is no address or the databases do not hold it. */
void dp_geoip_lookup(const dp_geoip *g, const char *ip, dp_geoip_info *out);
void dp_geoip_close(dp_geoip *g);

#endif
