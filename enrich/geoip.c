/* geoip — AS number, AS organisation and country of an IP from the user's
 * MaxMind DB files (libmaxminddb).
 *
 * The files are opened with MMDB_MODE_MMAP: the OS shares and pages them,
 * and a lookup reads the map without locks, so every flushing thread can
 * ask at once.  Nothing is downloaded: without a file a field stays null.
 */
#include "geoip.h"

#include <maxminddb.h>
#include <stdlib.h>
#include <string.h>

struct dp_geoip {
    MMDB_s asn, country;
    int has_asn, has_country;
};

static int open_one(MMDB_s *db, const char *path, const char *what, dp_error *err) {
    int rc = MMDB_open(path, MMDB_MODE_MMAP, db);
    if (rc == MMDB_SUCCESS) return 0;
    const char *why = rc == MMDB_IO_ERROR ? "cannot be read" : MMDB_strerror(rc);
    return dp_error_set(err, DP_ERR_USAGE, "%s: the %s database %s", path, what, why);
}

dp_geoip *dp_geoip_open(const char *asn_path, const char *country_path, dp_error *err) {
    dp_geoip *g = calloc(1, sizeof *g);
    if (!g) {
        dp_error_set(err, DP_ERR_NOMEM, "the MMDB files: out of memory");
        return NULL;
    }
    if (asn_path) {
        if (open_one(&g->asn, asn_path, "ASN", err) != 0) goto fail;
        g->has_asn = 1;
    }
    if (country_path) {
        if (open_one(&g->country, country_path, "country", err) != 0) goto fail;
        g->has_country = 1;
    }
    return g;
fail:
    dp_geoip_close(g);
    return NULL;
}

/* A UTF-8 string at `path` of the entry into out[n], or "" when absent. */
static void get_string(MMDB_entry_s *entry, char *out, size_t n, const char *const *path) {
    MMDB_entry_data_s d;
    out[0] = '\0';
    if (MMDB_aget_value(entry, &d, path) != MMDB_SUCCESS || !d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING)
        return;
    size_t len = d.data_size < n - 1 ? d.data_size : n - 1;
    memcpy(out, d.utf8_string, len);
    out[len] = '\0';
}

static uint32_t get_uint(MMDB_entry_s *entry, const char *const *path) {
    MMDB_entry_data_s d;
    if (MMDB_aget_value(entry, &d, path) != MMDB_SUCCESS || !d.has_data) return 0;
    switch (d.type) {
    case MMDB_DATA_TYPE_UINT16: return d.uint16;
    case MMDB_DATA_TYPE_UINT32: return d.uint32;
    case MMDB_DATA_TYPE_INT32: return d.int32 > 0 ? (uint32_t)d.int32 : 0;
    case MMDB_DATA_TYPE_UINT64: return d.uint64 <= UINT32_MAX ? (uint32_t)d.uint64 : 0;
    default: return 0;
    }
}

static int find(const MMDB_s *db, const char *ip, MMDB_lookup_result_s *res) {
    int gai = 0, rc = 0;
    *res = MMDB_lookup_string(db, ip, &gai, &rc);
    return gai == 0 && rc == MMDB_SUCCESS && res->found_entry;
}

void dp_geoip_lookup(const dp_geoip *g, const char *ip, dp_geoip_info *out) {
    memset(out, 0, sizeof *out);
    if (!g || !ip || !*ip) return;
    MMDB_lookup_result_s res;
    if (g->has_asn && find(&g->asn, ip, &res)) {
        static const char *const num[] = {"autonomous_system_number", NULL};
        static const char *const org[] = {"autonomous_system_organization", NULL};
        out->asn = get_uint(&res.entry, num);
        get_string(&res.entry, out->as_org, sizeof out->as_org, org);
    }
    if (g->has_country && find(&g->country, ip, &res)) {
        static const char *const iso[] = {"country", "iso_code", NULL};
        get_string(&res.entry, out->country, sizeof out->country, iso);
    }
}

void dp_geoip_close(dp_geoip *g) {
    if (!g) return;
    if (g->has_asn) MMDB_close(&g->asn);
    if (g->has_country) MMDB_close(&g->country);
    free(g);
}
