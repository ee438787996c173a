/* s3_uri — the s3:// SOURCE: a bucket, a prefix under it, and the settings
 * of the store (endpoint, region, addressing) and of the run (after=,
 * retries=, relist=).
 *
 * The URI holds no secret: credentials come from the environment or the
 * shared credentials file (s3_creds.c), so a URI is safe to log and to see
 * in `ps`.  An endpoint with a user or password in it is refused for that
 * reason.  Values may be percent-encoded (a prefix with a space); the
 * endpoint is taken as written, so `?endpoint=http://127.0.0.1:9000` works.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_buf.h"
#include "s3_uri.h"

#define DEFAULT_REGION "us-east-1"
enum { DEFAULT_TRIES = 8, MAX_TRIES = 100 };

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* n bytes of s, %XX decoded: malloc'd, or NULL (a bad escape, a NUL, no memory). */
static char *decode(const char *s, size_t n) {
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* A bucket name as the stores take them (AWS's rules, upper case and '_'
 * allowed for older stores): letters, digits, '.', '-', '_'; 3 to 63. */
static int bucket_ok(const char *b) {
    size_t n = strlen(b);
    if (n < 3 || n > 63) return 0;
    for (const char *p = b; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* "http[s]://HOST[:PORT][/]", no user, no path, no query. */
static int endpoint_ok(const char *e) {
    const char *h = strncmp(e, "https://", 8) == 0 ? e + 8 : strncmp(e, "http://", 7) == 0 ? e + 7 : NULL;
    if (!h || !*h || *h == '/') return 0;
    size_t n = strcspn(h, "/?#@");
    if (h[n] == '@' || h[n] == '?' || h[n] == '#') return 0;
    if (h[n] == '/' && h[n + 1]) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= ' ') return 0;
    return 1;
}

int dp_s3_uri_needs_path_style(const char *endpoint) {
    const char *h = strstr(endpoint, "://");
    h = h ? h + 3 : endpoint;
    if (*h == '[') return 1; /* IPv6 */
    size_t n = strcspn(h, ":/");
    if (n == 9 && strncmp(h, "localhost", 9) == 0) return 1;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.')) return 0;
    return 1;
}

static int bad(dp_error *err, const char *uri, const char *why) {
    return dp_error_set(err, DP_ERR_USAGE, "source '%s': %s", uri, why);
}

static int set_str(char **dst, char *val) {
    free(*dst);
    *dst = val;
    return val ? 0 : -1;
}

/* One NAME=VALUE of the query (value decoded).  0, or -1 and err. */
static int setting(dp_s3_uri *u, const char *uri, const char *name, size_t nlen, char *val, dp_error *err) {
#define IS(s) (nlen == strlen(s) && strncmp(name, s, nlen) == 0)
    char *end;
    if (IS("endpoint")) {
        size_t n = strlen(val);
        if (n && val[n - 1] == '/') val[n - 1] = '\0';
        if (!endpoint_ok(val)) {
            free(val);
            return bad(err, uri, "endpoint= must be http://HOST[:PORT] or https://HOST[:PORT], without a user or path");
        }
        return set_str(&u->endpoint, val);
    }
    if (IS("region")) {
        if (!*val || strcspn(val, "/:?&= ") != strlen(val)) {
            free(val);
            return bad(err, uri, "region= must be a region name such as us-east-1");
        }
        return set_str(&u->region, val);
    }
    if (IS("path_style")) {
        int ok = strcmp(val, "0") == 0 || strcmp(val, "1") == 0;
        u->path_style = ok && val[0] == '1';
        free(val);
        return ok ? 0 : bad(err, uri, "path_style= must be 0 or 1");
    }
    if (IS("retries")) {
        long n = strtol(val, &end, 10);
        int ok = *val && !*end && n >= 1 && n <= MAX_TRIES;
        free(val);
        if (!ok) return bad(err, uri, "retries= must be a number of tries from 1 to 100");
        u->retries = (int)n;
        return 0;
    }
    if (IS("relist")) {
        double s = strtod(val, &end);
        int ok = *val && !*end && s > 0 && s < 1e9;
        free(val);
        if (!ok) return bad(err, uri, "relist= must be a number of seconds");
        u->relist = s;
        return 0;
    }
    if (IS("after")) {
        if (strcmp(val, "keep") == 0) {
            u->after = DP_S3_KEEP;
        } else if (strcmp(val, "delete") == 0) {
            u->after = DP_S3_DELETE;
        } else if (strncmp(val, "move:", 5) == 0 && val[5]) {
            u->after = DP_S3_MOVE;
            char *to = strdup(val + 5);
            free(val);
            return set_str(&u->move_to, to) == 0 ? 0 : dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        } else {
            free(val);
            return bad(err, uri, "after= must be keep, delete or move:PREFIX");
        }
        free(val);
        return 0;
    }
    if (IS("quarantine")) {
        if (!*val) {
            free(val);
            return bad(err, uri, "quarantine= needs a PREFIX");
        }
        return set_str(&u->quarantine, val);
    }
    if (IS("cafile")) return set_str(&u->cafile, val);
    free(val);
    return bad(err, uri,
               "unknown setting; s3:// takes endpoint=, region=, path_style=, after=, quarantine=, retries=, "
               "relist=, cafile=");
#undef IS
}

int dp_s3_uri_parse(const char *uri, dp_s3_uri *u, dp_error *err) {
    memset(u, 0, sizeof *u);
    u->retries = DEFAULT_TRIES;
    if (strncmp(uri, "s3://", 5) != 0) return bad(err, uri, "not an s3:// URI");
    const char *p = uri + 5, *q = strchr(p, '?');
    size_t blen = strcspn(p, "/?");
    int rc = 0;
    if (!(u->bucket = decode(p, blen)) || !bucket_ok(u->bucket))
        rc = bad(err, uri, "the bucket name must be 3 to 63 letters, digits, '.', '-' or '_'");
    if (rc == 0) {
        const char *pre = p[blen] == '/' ? p + blen + 1 : p + blen;
        size_t plen = q ? (size_t)(q - pre) : strlen(pre);
        if (q && q < pre) plen = 0;
        if (!(u->prefix = decode(pre, plen))) rc = bad(err, uri, "the prefix has a bad %-escape");
    }
    for (const char *s = q ? q + 1 : NULL; rc == 0 && s && *s;) {
        size_t n = strcspn(s, "&");
        const char *eq = memchr(s, '=', n);
        if (!eq) {
            rc = bad(err, uri, "a setting without '=VALUE'");
            break;
        }
        char *val = decode(eq + 1, n - (size_t)(eq + 1 - s));
        if (!val) rc = bad(err, uri, "a setting has a bad %-escape");
        else rc = setting(u, uri, s, (size_t)(eq - s), val, err);
        s += n;
        if (*s == '&') s++;
    }
    if (rc == 0 && !u->region && !(u->region = strdup(DEFAULT_REGION)))
        rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    if (rc == 0 && !u->endpoint) {
        dp_buf b = DP_BUF_INIT;
        dp_buf_printf(&b, "https://s3.%s.amazonaws.com", u->region);
        if (b.failed) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        else u->endpoint = b.data;
    }
    if (rc == 0 && dp_s3_uri_needs_path_style(u->endpoint)) u->path_style = 1;
    if (rc == 0 && u->after == DP_S3_MOVE && strncmp(u->move_to, u->prefix, strlen(u->prefix)) == 0 &&
        strlen(u->move_to) >= strlen(u->prefix))
        rc = bad(err, uri, "after=move:PREFIX must not lie under the source's own prefix (it would be read again)");
    if (rc == 0 && u->quarantine && *u->prefix && strncmp(u->quarantine, u->prefix, strlen(u->prefix)) == 0)
        rc = bad(err, uri, "quarantine=PREFIX must not lie under the source's own prefix");
    if (rc == 0 && !*u->prefix && (u->after == DP_S3_MOVE || u->quarantine))
        rc = bad(err, uri, "move: and quarantine= need the source to have a prefix of its own, which they lie beside");
    if (rc == 0) {
        const char *host = strstr(u->endpoint, "://") + 3;
        dp_buf d = DP_BUF_INIT, id = DP_BUF_INIT;
        dp_buf_printf(&d, "s3://%s/%s", u->bucket, u->prefix);
        dp_buf_printf(&id, "s3:%s/%s/%s", host, u->bucket, u->prefix);
        if (d.failed || id.failed) {
            dp_buf_free(&d);
            dp_buf_free(&id);
            rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        } else {
            u->display = d.data;
            u->identity = id.data;
        }
    }
    if (rc != 0) dp_s3_uri_free(u);
    return rc;
}

void dp_s3_uri_free(dp_s3_uri *u) {
    free(u->bucket);
    free(u->prefix);
    free(u->endpoint);
    free(u->region);
    free(u->move_to);
    free(u->quarantine);
    free(u->cafile);
    free(u->display);
    free(u->identity);
    memset(u, 0, sizeof *u);
}
