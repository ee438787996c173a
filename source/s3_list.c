/* s3_list — S3's XML answers, parsed by expat as the bytes arrive: a page
 * of ListObjectsV2 (the objects' keys, ETags and sizes, whether there is a
 * next page and its continuation token), and the <Error><Code> of a
 * refused request, which says what went wrong (SignatureDoesNotMatch,
 * NoSuchBucket, SlowDown) where the HTTP status does not.
 *
 * Only the elements these need are kept, each one's text capped: a page
 * is at most 1,000 objects of at most 1 KiB keys, so what it takes in
 * memory is bounded by the page, whatever the store sends.  The store is
 * not trusted more than a report: a DOCTYPE (and with it every entity) is
 * refused.
 */
#include <expat.h>
#include <stdlib.h>
#include <string.h>

#include "dp_buf.h"
#include "s3_list.h"

#define TEXT_MAX 4096 /* bytes of one element's text: a key is at most 1,024 */
#define MAX_OBJECTS 100000

struct dp_s3_list_parser {
    XML_Parser xp;
    dp_s3_list *out;
    int depth, failed;
    int in_contents;  /* inside <Contents> at depth 2 */
    dp_buf text;      /* the text of the element open now */
    dp_s3_object cur; /* the <Contents> under way */
};

static void fail(dp_s3_list_parser *p) {
    if (!p->failed) XML_StopParser(p->xp, XML_FALSE);
    p->failed = 1;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts) {
    (void)atts;
    dp_s3_list_parser *p = ud;
    p->depth++;
    dp_buf_reset(&p->text);
    if (p->depth == 1 && strcmp(name, "Error") == 0) p->out->is_error = 1;
    if (p->depth == 2 && strcmp(name, "Contents") == 0) {
        p->in_contents = 1;
        memset(&p->cur, 0, sizeof p->cur);
    }
}

static char *text_dup(dp_s3_list_parser *p) {
    char *s = malloc(p->text.len + 1);
    if (!s) {
        fail(p);
        return NULL;
    }
    if (p->text.len) memcpy(s, p->text.data, p->text.len);
    s[p->text.len] = '\0';
    return s;
}

static void copy_into(dp_s3_list_parser *p, char *dst, size_t cap) {
    size_t n = p->text.len < cap - 1 ? p->text.len : cap - 1;
    if (n) memcpy(dst, p->text.data, n);
    dst[n] = '\0';
}

/* The end of a <Contents>: the object joins the page. */
static void end_contents(dp_s3_list_parser *p) {
    dp_s3_list *l = p->out;
    p->in_contents = 0;
    if (!p->cur.key || !p->cur.etag) {
        if (!p->cur.etag && p->cur.key) p->cur.etag = strdup("");
        if (!p->cur.key || !p->cur.etag) {
            free(p->cur.key);
            free(p->cur.etag);
            memset(&p->cur, 0, sizeof p->cur);
            fail(p); /* an object without a key is not an answer we know */
            return;
        }
    }
    void *v = l->n < MAX_OBJECTS ? dp_buf_grow_array(l->v, &l->cap, l->n + 1, sizeof *l->v) : NULL;
    if (!v) {
        free(p->cur.key);
        free(p->cur.etag);
        memset(&p->cur, 0, sizeof p->cur);
        fail(p);
        return;
    }
    l->v = v;
    l->v[l->n++] = p->cur;
    memset(&p->cur, 0, sizeof p->cur);
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
    dp_s3_list_parser *p = ud;
    dp_s3_list *l = p->out;
    if (p->in_contents && p->depth == 3) {
        if (strcmp(name, "Key") == 0) {
            free(p->cur.key);
            p->cur.key = text_dup(p);
        } else if (strcmp(name, "ETag") == 0) {
            /* quotes and all as stores send it: "hex" or &quot;hex&quot; */
            const char *t = p->text.len ? p->text.data : "";
            size_t n = p->text.len;
            if (n >= 2 && t[0] == '"' && t[n - 1] == '"') t++, n -= 2;
            free(p->cur.etag);
            p->cur.etag = malloc(n + 1);
            if (!p->cur.etag) fail(p);
            else memcpy(p->cur.etag, t, n), p->cur.etag[n] = '\0';
        } else if (strcmp(name, "Size") == 0) {
            uint64_t v = 0;
            for (size_t i = 0; i < p->text.len; i++) {
                char c = p->text.data[i];
                if (c < '0' || c > '9' || v > UINT64_MAX / 10) {
                    fail(p);
                    break;
                }
                v = v * 10 + (uint64_t)(c - '0');
            }
            p->cur.size = v;
        }
    } else if (p->in_contents && p->depth == 2) {
        end_contents(p);
    } else if (p->depth == 2 && !l->is_error) {
        if (strcmp(name, "IsTruncated") == 0)
            l->truncated = p->text.len == 4 && memcmp(p->text.data, "true", 4) == 0;
        else if (strcmp(name, "NextContinuationToken") == 0 && p->text.len) {
            free(l->next_token);
            l->next_token = text_dup(p);
        }
    } else if (p->depth == 2 && l->is_error) {
        if (strcmp(name, "Code") == 0) copy_into(p, l->code, sizeof l->code);
        else if (strcmp(name, "Message") == 0) copy_into(p, l->message, sizeof l->message);
    }
    dp_buf_reset(&p->text);
    p->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
    dp_s3_list_parser *p = ud;
    if (p->depth < 2 || len <= 0) return;
    if (p->text.len + (size_t)len > TEXT_MAX) {
        fail(p);
        return;
    }
    dp_buf_append(&p->text, s, (size_t)len);
    if (p->text.failed) fail(p);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal) {
    (void)name, (void)sysid, (void)pubid, (void)has_internal;
    fail(ud);
}

dp_s3_list_parser *dp_s3_list_parser_new(dp_s3_list *out) {
    memset(out, 0, sizeof *out);
    dp_s3_list_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->out = out;
    p->text = (dp_buf)DP_BUF_INIT;
    if (!(p->xp = XML_ParserCreate(NULL))) {
        free(p);
        return NULL;
    }
    XML_SetUserData(p->xp, p);
    XML_SetElementHandler(p->xp, on_start, on_end);
    XML_SetCharacterDataHandler(p->xp, on_text);
    XML_SetStartDoctypeDeclHandler(p->xp, on_doctype);
    return p;
}

int dp_s3_list_parser_feed(dp_s3_list_parser *p, const char *data, size_t n, int final) {
    if (p->failed) return -1;
    while (n > 0 || final) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int last = final && (size_t)chunk == n;
        if (XML_Parse(p->xp, data, chunk, last) != XML_STATUS_OK || p->failed) {
            p->failed = 1;
            return -1;
        }
        data += chunk;
        n -= (size_t)chunk;
        if (last) break;
    }
    return 0;
}

void dp_s3_list_parser_free(dp_s3_list_parser *p) {
    if (!p) return;
    free(p->cur.key);
    free(p->cur.etag);
    dp_buf_free(&p->text);
    XML_ParserFree(p->xp);
    free(p);
}

void dp_s3_list_clear(dp_s3_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].etag);
    }
    free(l->v);
    free(l->next_token);
    memset(l, 0, sizeof *l);
}
