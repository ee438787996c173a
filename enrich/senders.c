/* senders — the known-senders map: loading known_senders.tsv and the
 * user's files, and matching a PTR name on its longest known suffix.
 *
 * Domains are kept lowercase in a hash map; a match tries the name itself,
 * then each parent after a dot, so the first hit is the longest DOMAIN and
 * "notgoogle.com" never matches "google.com".  A text is parsed whole into
 * a scratch list before any of it is added, so a bad line leaves the map
 * as it was.
 */
#include "senders.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_buf.h"
#include "dp_map.h"

/* The types known_senders.tsv's header documents. */
static const char *const TYPES[] = {"esp",      "hosted_mail",      "marketing", "crm",
                                    "helpdesk", "forwarder",        "security_gateway", "other"};

struct dp_senders {
    dp_map map;              /* lowercase domain -> dp_senders_entry * */
    dp_senders_entry **all;  /* every entry made, replaced ones included, for free */
    size_t n_all, cap_all;
};

typedef struct parsed {
    char *domain;
    dp_senders_entry *entry;
} parsed;

dp_senders *dp_senders_new(void) {
    return calloc(1, sizeof(dp_senders));
}

static int known_type(const char *t, size_t n) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strlen(TYPES[i]) == n && memcmp(TYPES[i], t, n) == 0) return 1;
    return 0;
}

/* A DNS name of letters, digits, '-' and '_' in dot-separated labels of 1
 * to 63, at most 253 in all: what a PTR name can be compared with. */
static int valid_domain(const char *d, size_t n) {
    if (n == 0 || n > 253) return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0) return 0;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63) return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

static char *dup_lower(const char *s, size_t n) {
    char *o = malloc(n + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) o[i] = (char)tolower((unsigned char)s[i]);
    o[n] = '\0';
    return o;
}

static void free_parsed(parsed *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(p[i].domain);
        free(p[i].entry);
    }
}

/* One entry: the strings live in the same block as the struct. */
static dp_senders_entry *make_entry(const char *svc, size_t ns, const char *typ, size_t nt) {
    dp_senders_entry *e = malloc(sizeof *e + ns + nt + 2);
    if (!e) return NULL;
    char *p = (char *)(e + 1);
    memcpy(p, svc, ns);
    p[ns] = '\0';
    memcpy(p + ns + 1, typ, nt);
    p[ns + 1 + nt] = '\0';
    e->service = p;
    e->type = p + ns + 1;
    return e;
}

/* Splits one line (without its newline) into up to 4 TAB-separated fields. */
static size_t split_fields(const char *line, size_t len, const char *f[4], size_t fl[4]) {
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len && n < 4; i++) {
        if (i == len || line[i] == '\t') {
            f[n] = line + start;
            fl[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    return n;
}

static int parse_line(const char *line, size_t len, const char *where, size_t lineno, parsed *out, dp_error *err) {
    const char *f[4];
    size_t fl[4];
    size_t n = split_fields(line, len, f, fl);
    if (n < 3)
        return dp_error_set(err, DP_ERR_USAGE, "%s:%zu: want DOMAIN<TAB>SERVICE<TAB>TYPE[<TAB>SOURCE-URL], found %zu field%s",
                            where, lineno, n, n == 1 ? "" : "s");
    size_t dl = fl[0];
    if (dl > 0 && f[0][dl - 1] == '.') dl--;  /* a trailing dot is the same name */
    if (!valid_domain(f[0], dl))
        return dp_error_set(err, DP_ERR_USAGE, "%s:%zu: DOMAIN '%.*s' is not a DNS name", where, lineno,
                            (int)(fl[0] > 80 ? 80 : fl[0]), f[0]);
    if (fl[1] == 0 || fl[1] > 200)
        return dp_error_set(err, DP_ERR_USAGE, "%s:%zu: SERVICE is empty or longer than 200 bytes", where, lineno);
    if (!known_type(f[2], fl[2]))
        return dp_error_set(err, DP_ERR_USAGE,
                            "%s:%zu: TYPE '%.*s' is not one of esp, hosted_mail, marketing, crm, helpdesk, forwarder, "
                            "security_gateway, other",
                            where, lineno, (int)(fl[2] > 40 ? 40 : fl[2]), f[2]);
    out->domain = dup_lower(f[0], dl);
    out->entry = make_entry(f[1], fl[1], f[2], fl[2]);
    if (!out->domain || !out->entry) return dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", where);
    return 0;
}

int dp_senders_load_text(dp_senders *s, const char *text, size_t len, const char *where, dp_error *err) {
    parsed *list = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll > 0 && p[ll - 1] == '\r') ll--;
        lineno++;
        size_t skip = 0;
        while (skip < ll && (p[skip] == ' ')) skip++;
        if (skip < ll && p[skip] != '#') {
            parsed *grown = dp_buf_grow_array(list, &cap, n + 1, sizeof *list);
            if (!grown) {
                free_parsed(list, n);
                free(list);
                return dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", where);
            }
            list = grown;
            memset(&list[n], 0, sizeof list[n]);
            if (parse_line(p, ll, where, lineno, &list[n], err) != 0) {
                free_parsed(list, n + 1);
                free(list);
                return -1;
            }
            n++;
        }
        p = nl ? nl + 1 : end;
    }
    /* Room for every entry first, so that adding cannot fail half-way. */
    dp_senders_entry **all = dp_buf_grow_array(s->all, &s->cap_all, s->n_all + n, sizeof *s->all);
    if (!all) {
        free_parsed(list, n);
        free(list);
        return dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", where);
    }
    s->all = all;
    for (size_t i = 0; i < n; i++) {
        if (!dp_map_put(&s->map, list[i].domain, list[i].entry)) {
            free_parsed(list + i, n - i);  /* those before i are in the map */
            free(list);
            return dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", where);
        }
        s->all[s->n_all++] = list[i].entry;
        free(list[i].domain);
    }
    free(list);
    return 0;
}

int dp_senders_load_file(dp_senders *s, const char *path, dp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return dp_error_set(err, DP_ERR_IO, "%s: cannot open the senders file: %s", path, strerror(errno));
    dp_buf b = DP_BUF_INIT;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) dp_buf_append(&b, chunk, got);
    int bad = ferror(f);
    fclose(f);
    if (bad || b.failed) {
        dp_buf_free(&b);
        return dp_error_set(err, bad ? DP_ERR_IO : DP_ERR_NOMEM, "%s: cannot read the senders file", path);
    }
    int rc = dp_senders_load_text(s, b.data ? b.data : "", b.len, path, err);
    dp_buf_free(&b);
    return rc;
}

const dp_senders_entry *dp_senders_match(const dp_senders *s, const char *name) {
    if (!s || !name) return NULL;
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.') n--;
    if (n == 0 || n > 253) return NULL;
    char low[256];
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)name[i]);
    low[n] = '\0';
    for (const char *p = low; p;) {
        const dp_senders_entry *e = dp_map_get(&s->map, p);
        if (e) return e;
        p = strchr(p, '.');
        if (p) p++;
    }
    return NULL;
}

size_t dp_senders_count(const dp_senders *s) {
    return s ? s->map.len : 0;
}

void dp_senders_free(dp_senders *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_all; i++) free(s->all[i]);
    free(s->all);
    dp_map_free(&s->map);
    free(s);
}
