/* kafka_inbox_event — what an inbox message names: S3 event notifications.
 *
 * A bucket that receives reports (an SES-style receiver, a gateway that
 * drops attachments) tells of each new object with an event notification:
 * JSON with a "Records" array, as AWS S3 publishes it and MinIO, Ceph and
 * others copy it.  Each ObjectCreated record names one object to read.
 * Keys arrive form-encoded ("+" for a space, %XX for the rest), so they are
 * decoded here.  The bucket's test message (s3:TestEvent) and records of
 * other events (ObjectRemoved) name nothing.  A message that is not such
 * JSON is not a notification: the inbox reads it as a report.
 */
#include "kafka_inbox_event.h"

#include "dp_json.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Form decoding; NULL for a bad escape or an embedded NUL. */
static char *form_decode(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            int h = -1;
            if (i + 2 < n) {
                int a = hexval((unsigned char)s[i + 1]), b = a >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
                h = a >= 0 && b >= 0 ? a * 16 + b : -1;
            }
            if (h <= 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)h;
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static const char *str_at(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void dp_kafka_inbox_event_free(dp_kafka_inbox_event *ev) {
    for (size_t i = 0; i < ev->n; i++) {
        free(ev->objects[i].bucket);
        free(ev->objects[i].key);
        free(ev->objects[i].etag);
        free(ev->objects[i].region);
    }
    free(ev->objects);
    memset(ev, 0, sizeof *ev);
}

static int add_record(dp_kafka_inbox_event *ev, json_t *rec, dp_error *err) {
    const char *name = str_at(rec, "eventName");
    if (!name) return dp_error_set(err, DP_ERR_INPUT, "S3 notification: a record without eventName");
    /* AWS says "ObjectCreated:Put", MinIO "s3:ObjectCreated:Put" */
    if (strncmp(name, "s3:", 3) == 0) name += 3;
    if (strncmp(name, "ObjectCreated:", 14) != 0) return 0;
    json_t *s3 = json_object_get(rec, "s3");
    json_t *bucket = json_object_get(s3, "bucket"), *object = json_object_get(s3, "object");
    const char *b = str_at(bucket, "name"), *k = str_at(object, "key");
    if (!b || !*b || !k || !*k)
        return dp_error_set(err, DP_ERR_INPUT, "S3 notification: an ObjectCreated record without s3.bucket.name "
                                               "and s3.object.key");
    char *key = form_decode(k);
    if (!key) return dp_error_set(err, DP_ERR_INPUT, "S3 notification: object key '%.200s' is not form-encoded", k);
    dp_kafka_inbox_object *v = dp_buf_grow_array(ev->objects, &ev->cap, ev->n + 1, sizeof *v);
    if (!v) {
        free(key);
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    ev->objects = v;
    dp_kafka_inbox_object *o = &ev->objects[ev->n];
    memset(o, 0, sizeof *o);
    o->key = key;
    o->bucket = strdup(b);
    const char *etag = str_at(object, "eTag"), *region = str_at(rec, "awsRegion");
    o->etag = strdup(etag ? etag : "");
    o->region = region && *region ? strdup(region) : NULL;
    json_t *size = json_object_get(object, "size");
    o->size = json_is_integer(size) && json_integer_value(size) >= 0 ? (long long)json_integer_value(size) : -1;
    ev->n++;
    if (!o->bucket || !o->etag || (region && *region && !o->region))
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    return 0;
}

int dp_kafka_inbox_event_parse(const void *data, size_t len, dp_kafka_inbox_event *ev, dp_error *err) {
    memset(ev, 0, sizeof *ev);
    const unsigned char *p = data;
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
    if (i == len || p[i] != '{') return 0;
    json_t *root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root) return 0; /* not JSON: a report, which ingest judges */
    int rc = 0;
    json_t *records = json_object_get(root, "Records");
    const char *test = str_at(root, "Event");
    if (json_is_array(records)) {
        rc = 1;
        size_t k;
        json_t *rec;
        json_array_foreach(records, k, rec) {
            if (add_record(ev, rec, err) != 0) {
                rc = -1;
                break;
            }
        }
    } else if (test && strcmp(test, "s3:TestEvent") == 0) {
        rc = 1;
    }
    json_decref(root);
    if (rc < 0) dp_kafka_inbox_event_free(ev);
    return rc;
}

/* A key as a notification writes it: form-encoded. */
static void form_encode(dp_buf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
            dp_buf_putc(b, (char)*p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            dp_buf_append(b, esc, 3);
        }
    }
}

void dp_kafka_inbox_event_format(dp_buf *b, const dp_kafka_inbox_object *o) {
    dp_buf_puts(b, "{\"Records\":[{\"eventName\":\"ObjectCreated:Forwarded\",\"s3\":{\"bucket\":{\"name\":");
    dp_json_str(b, o->bucket);
    dp_buf_puts(b, "},\"object\":{\"key\":\"");
    form_encode(b, o->key);
    dp_buf_puts(b, "\",\"eTag\":");
    dp_json_str(b, o->etag);
    dp_buf_puts(b, "}}}]}");
}

int32_t dp_kafka_inbox_event_slot(const rd_kafka_message_t *m, const char *header) {
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, header, &v, &n) || n == 0 || n > 9) return -1;
    int32_t slot = 0;
    for (size_t i = 0; i < n; i++) {
        char c = ((const char *)v)[i];
        if (c < '0' || c > '9') return -1;
        slot = slot * 10 + (c - '0');
    }
    return slot;
}
