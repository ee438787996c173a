/* test_s3_sign — the S3 client's requests, signed, against fixed SigV4
 * signatures (source/s3_client.c), and its small parsers.
 *
 * libcurl 7.88 takes a request's own X-Amz-Date header as the time it signs
 * (lib/http_aws_sigv4.c, make_headers(): find_date_hdr() before the clock),
 * so with a fixed date and AWS's documentation key pair (AKIDEXAMPLE,
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY) a request's signature is fixed.
 * Each request goes to a listener of the test on loopback (the endpoint's
 * host is reached there by CURLOPT_CONNECT_TO, so the signed Host stays the
 * endpoint's), which keeps the request's head and answers it.
 *
 * The expected signatures were computed once, independently of libcurl and
 * of this code, by Python's hmac and hashlib following AWS's SigV4
 * specification (canonical request: method, path, query sorted and
 * encoded, headers host, x-amz-content-sha256, x-amz-date [and
 * x-amz-security-token] lower-cased and sorted, the signed header list,
 * UNSIGNED-PAYLOAD; string to sign "AWS4-HMAC-SHA256\n" date "\n"
 * "20130524/us-east-1/s3/aws4_request\n" sha256(canonical request); key
 * HMAC chain "AWS4"+secret, date, region, "s3", "aws4_request"):
 *
 *   k = b"AWS4" + secret
 *   for m in ("20130524", "us-east-1", "s3", "aws4_request"):
 *       k = hmac.new(k, m.encode(), hashlib.sha256).digest()
 *   hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()
 *
 * The requests carry each of libcurl 7.88's traps: a key with a space and
 * '!', a prefix with '/', a continuation token to be encoded and sorted
 * first, and (path-style) a session token.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp_buf.h"
#include "s3_client.h"
#include "s3_list.h"
#include "s3_uri.h"
#include "test_util.h"

#define DATE "20130524T000000Z"
#define SCOPE "Credential=AKIDEXAMPLE/20130524/us-east-1/s3/aws4_request"

/* A listener answering `n` requests, one per connection, keeping each head. */
typedef struct listener {
    int fd, port, n;
    char heads[4][4096];
    pthread_t th;
} listener;

static const char LIST_XML[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>examplebucket</Name>"
    "<IsTruncated>true</IsTruncated><NextContinuationToken>in dir/a! b</NextContinuationToken>"
    "<Contents><Key>in dir/a! b.xml</Key><ETag>&quot;0e1e5aa1&quot;</ETag><Size>1506</Size></Contents>"
    "<Contents><Key>in dir/</Key><ETag>\"d41d8cd9\"</ETag><Size>0</Size></Contents>"
    "</ListBucketResult>";

static void *serve(void *arg) {
    listener *l = arg;
    for (int i = 0; i < l->n; i++) {
        int c = accept(l->fd, NULL, NULL);
        if (c < 0) break;
        size_t got = 0;
        char *h = l->heads[i];
        while (got < sizeof l->heads[i] - 1 && !strstr(h, "\r\n\r\n")) {
            ssize_t r = recv(c, h + got, sizeof l->heads[i] - 1 - got, 0);
            if (r <= 0) break;
            got += (size_t)r;
            h[got] = '\0';
        }
        const char *body = strstr(h, "list-type=2") ? LIST_XML : "<feedback>the object</feedback>";
        char resp[8192];
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         strlen(body), body);
        if (send(c, resp, (size_t)n, MSG_NOSIGNAL) != n) break;
        close(c);
    }
    return NULL;
}

static void listen_on(listener *l, int n) {
    memset(l, 0, sizeof *l);
    l->n = n;
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(l->fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(l->fd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(l->fd, (struct sockaddr *)&a, &len);
    l->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&l->th, NULL, serve, l), 0);
}

static void listen_end(listener *l) {
    pthread_join(l->th, NULL);
    close(l->fd);
}

static void example_keys(const char *token) {
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    if (token) setenv("AWS_SESSION_TOKEN", token, 1);
    else unsetenv("AWS_SESSION_TOKEN");
}

static dp_s3_client *client(const char *endpoint, int path_style, const char *host_port, int port) {
    dp_s3_config cfg = {endpoint, "us-east-1", path_style, 1, NULL,
                        tu_printf("%s:127.0.0.1:%d", host_port, port), DATE, 0, 0, NULL};
    dp_error err;
    dp_s3_client *c = dp_s3_client_new(&cfg, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    return c;
}

/* The Authorization header of a captured head. */
static const char *authorization(const char *head) {
    const char *a = strstr(head, "Authorization: ");
    ck_assert_ptr_nonnull(a);
    const char *end = strstr(a, "\r\n");
    return tu_printf("%.*s", (int)(end - a - 15), a + 15);
}

START_TEST(a_listing_is_signed_with_its_query_sorted_and_encoded) {
    example_keys(NULL);
    listener l;
    listen_on(&l, 1);
    dp_s3_client *c = client("http://s3.amazonaws.com", 0, "examplebucket.s3.amazonaws.com:80", l.port);
    dp_s3_list page;
    dp_error err;
    ck_assert_int_eq(dp_s3_client_list(c, "examplebucket", "in dir/a!", NULL, "tok/en! x", 1000, &page, &err), 0);
    listen_end(&l);
    ck_assert_ptr_nonnull(strstr(l.heads[0], "GET /?continuation-token=tok%2Fen%21%20x&list-type=2&max-keys=1000"
                                             "&prefix=in%20dir%2Fa%21 HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(l.heads[0], "Host: examplebucket.s3.amazonaws.com\r\n"));
    ck_assert_str_eq(authorization(l.heads[0]),
                     "AWS4-HMAC-SHA256 " SCOPE ", SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                     "Signature=0ca1aa41336a1e13106b75102a3531ce79b7e0028b2d2ca177e47e23d870a77c");
    /* and the page, as the parser read it: &quot; and quotes taken off the ETag */
    ck_assert_uint_eq(page.n, 2);
    ck_assert_str_eq(page.v[0].key, "in dir/a! b.xml");
    ck_assert_str_eq(page.v[0].etag, "0e1e5aa1");
    ck_assert_uint_eq(page.v[0].size, 1506);
    ck_assert_str_eq(page.v[1].etag, "d41d8cd9");
    ck_assert_int_eq(page.truncated, 1);
    ck_assert_str_eq(page.next_token, "in dir/a! b");
    dp_s3_list_clear(&page);
    dp_s3_client_free(c);
}
END_TEST

START_TEST(a_get_is_signed_with_its_key_encoded_in_the_path) {
    example_keys(NULL);
    listener l;
    listen_on(&l, 1);
    dp_s3_client *c = client("http://s3.amazonaws.com", 0, "examplebucket.s3.amazonaws.com:80", l.port);
    dp_error err;
    int fd = dp_s3_client_spool_object(c, "examplebucket", "in/a b!.xml", &err);
    ck_assert_msg(fd >= 0, "%s", err.msg);
    char buf[64] = "";
    ck_assert_int_eq(read(fd, buf, sizeof buf - 1), 31);
    ck_assert_str_eq(buf, "<feedback>the object</feedback>");
    close(fd);
    listen_end(&l);
    ck_assert_ptr_nonnull(strstr(l.heads[0], "GET /in/a%20b%21.xml HTTP/1.1\r\n"));
    ck_assert_str_eq(authorization(l.heads[0]),
                     "AWS4-HMAC-SHA256 " SCOPE ", SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                     "Signature=11fa0a10f37d4f0e0563132cb06d677e70663dce5e7627bc9a7e9bfb83ddc187");
    dp_s3_client_free(c);
}
END_TEST

START_TEST(a_path_style_get_signs_the_session_token) {
    example_keys("FQoGZXIvYXdzEXAMPLETOKEN");
    listener l;
    listen_on(&l, 1);
    dp_s3_client *c = client("http://minio.example:9000", 1, "minio.example:9000", l.port);
    dp_error err;
    /* streamed: the body starts as XML */
    int fd = dp_s3_client_open_object(c, "examplebucket", "in/a b!.xml", &err);
    ck_assert_msg(fd >= 0, "%s", err.msg);
    char buf[64] = "";
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    ck_assert_int_eq(r, 0); /* a clean end, not a reset */
    ck_assert_str_eq(buf, "<feedback>the object</feedback>");
    close(fd);
    listen_end(&l);
    ck_assert_ptr_nonnull(strstr(l.heads[0], "GET /examplebucket/in/a%20b%21.xml HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(l.heads[0], "x-amz-security-token: FQoGZXIvYXdzEXAMPLETOKEN\r\n"));
    ck_assert_str_eq(authorization(l.heads[0]),
                     "AWS4-HMAC-SHA256 " SCOPE ", SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                     "x-amz-security-token, "
                     "Signature=0459237d76e88c69288c4c5e7c224f8577f5a13b75fda6133575a720d11de15a");
    dp_s3_client_free(c);
}
END_TEST

START_TEST(keys_are_encoded_by_sigv4s_rules) {
    dp_buf b = DP_BUF_INIT;
    dp_s3_client_encode(&b, "in/a b!~_-.(x)*+=\xc3\xa9", 1);
    ck_assert_str_eq(b.data, "in/a%20b%21~_-.%28x%29%2A%2B%3D%C3%A9");
    dp_buf_reset(&b);
    dp_s3_client_encode(&b, "in/", 0);
    ck_assert_str_eq(b.data, "in%2F");
    dp_buf_free(&b);
}
END_TEST

START_TEST(an_error_answer_gives_its_code_and_a_doctype_is_refused) {
    dp_s3_list l;
    dp_s3_list_parser *p = dp_s3_list_parser_new(&l);
    const char *e = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>";
    ck_assert_int_eq(dp_s3_list_parser_feed(p, e, strlen(e), 1), 0);
    ck_assert_int_eq(l.is_error, 1);
    ck_assert_str_eq(l.code, "SignatureDoesNotMatch");
    dp_s3_list_parser_free(p);
    dp_s3_list_clear(&l);
    p = dp_s3_list_parser_new(&l);
    const char *d = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><ListBucketResult/>";
    ck_assert_int_eq(dp_s3_list_parser_feed(p, d, strlen(d), 1), -1);
    dp_s3_list_parser_free(p);
    dp_s3_list_clear(&l);
}
END_TEST

START_TEST(a_uri_is_parsed_and_its_mistakes_named) {
    dp_s3_uri u;
    dp_error err;
    ck_assert_int_eq(dp_s3_uri_parse("s3://dmarc-reports/in%20box/?endpoint=http://127.0.0.1:9000/&after=move:done/"
                                     "&retries=3&relist=30",
                                     &u, &err),
                     0);
    ck_assert_str_eq(u.bucket, "dmarc-reports");
    ck_assert_str_eq(u.prefix, "in box/");
    ck_assert_str_eq(u.endpoint, "http://127.0.0.1:9000");
    ck_assert_str_eq(u.region, "us-east-1");
    ck_assert_int_eq(u.path_style, 1); /* an IP address cannot take the bucket in its name */
    ck_assert_int_eq(u.after, DP_S3_MOVE);
    ck_assert_str_eq(u.move_to, "done/");
    ck_assert_int_eq(u.retries, 3);
    dp_s3_uri_free(&u);
    ck_assert_int_eq(dp_s3_uri_parse("s3://dmarc-reports/in/", &u, &err), 0);
    ck_assert_str_eq(u.endpoint, "https://s3.us-east-1.amazonaws.com");
    ck_assert_int_eq(u.path_style, 0);
    dp_s3_uri_free(&u);
    const char *bad[] = {"s3://x/in/", "s3://bucket/in/?endpoint=http://user:pw@host", "s3://bucket/in/?after=move:in/x/",
                         "s3://bucket/in/?colour=red", "s3://bucket/in/?retries=0", "s3://bucket/in%2/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(dp_s3_uri_parse(bad[i], &u, &err), -1);
        ck_assert_int_eq(err.kind, DP_ERR_USAGE);
        ck_assert_msg(strstr(err.msg, "source 's3://") != NULL, "%s", err.msg);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("s3_sign");
    TCase *t = tu_tcase("s3_sign");
    tcase_add_test(t, a_listing_is_signed_with_its_query_sorted_and_encoded);
    tcase_add_test(t, a_get_is_signed_with_its_key_encoded_in_the_path);
    tcase_add_test(t, a_path_style_get_signs_the_session_token);
    tcase_add_test(t, keys_are_encoded_by_sigv4s_rules);
    tcase_add_test(t, an_error_answer_gives_its_code_and_a_doctype_is_refused);
    tcase_add_test(t, a_uri_is_parsed_and_its_mistakes_named);
    suite_add_tcase(s, t);
    return tu_run(s);
}
