/* dp_metrics_http — see dp_metrics_http.h.
 *
 * The socket is bound here rather than by libmicrohttpd, so that a bind
 * that fails says why (the port is taken, the address is not this host's)
 * in one line, and port 0 can tell which port it got.
 */
#include "dp_metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct dp_metrics_http {
    dp_metrics *m;
    struct MHD_Daemon *d;
    int fd;
    int port;
    double stale_seconds;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *msg) {
    return reply(c, status, "text/plain; charset=utf-8", (char *)msg, strlen(msg), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state) {
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    dp_metrics_http *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or HEAD only\n");
    if (strcmp(url, "/metrics") == 0) {
        dp_buf out = DP_BUF_INIT;
        if (dp_metrics_render(h->m, &out) != 0) {
            dp_buf_free(&out);
            return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        }
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : strdup(""),
                     out.len, MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/healthz") == 0) {
        if (dp_metrics_heartbeat_age(h->m) <= h->stale_seconds) return text(c, MHD_HTTP_OK, "ok\n");
        return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "stale: the main loop has not moved for too long\n");
    }
    if (strcmp(url, "/readyz") == 0) {
        /* the run says so when it starts stopping, too: a signal flag is
         * the signal handler's and its thread's, not this thread's to read */
        if (!dp_metrics_ready(h->m)) return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
        return text(c, MHD_HTTP_OK, "ready\n");
    }
    return text(c, MHD_HTTP_NOT_FOUND, "not found: /metrics, /healthz, /readyz\n");
}

/* HOST:PORT or [IPV6]:PORT into host and port text. */
static int split_addr(const char *addr, char *host, size_t cap, char *port, size_t pcap) {
    const char *colon;
    size_t hl;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') return -1;
        hl = (size_t)(close - addr - 1);
        addr++;
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || memchr(addr, ':', (size_t)(colon - addr))) return -1; /* IPv6 needs brackets */
        hl = (size_t)(colon - addr);
    }
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (hl == 0 || hl >= cap || pl == 0 || pl >= pcap || strspn(p, "0123456789") != pl) return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return atol(port) > 65535 ? -1 : 0;
}

dp_metrics_http *dp_metrics_http_start(dp_metrics *m, const char *addr, double stale_seconds, dp_error *err) {
    char host[256], port[8];
    if (split_addr(addr, host, sizeof host, port, sizeof port) != 0) {
        dp_error_set(err, DP_ERR_USAGE, "--metrics-addr %.200s: not HOST:PORT or [IPV6]:PORT", addr);
        return NULL;
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0) {
        dp_error_set(err, DP_ERR_USAGE, "--metrics-addr %.200s: %s", addr, gai_strerror(g));
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, family = ai->ai_family;
    int e = 0;
    if (fd < 0) e = errno;
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
             bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0)
        e = errno;
    freeaddrinfo(ai);
    if (e) {
        if (fd >= 0) close(fd);
        dp_error_set(err, DP_ERR_IO, "--metrics-addr %.200s: cannot listen: %s", addr, strerror(e));
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int bound = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    dp_metrics_http *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    *h = (dp_metrics_http){m, NULL, fd, bound, stale_seconds};
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!h->d) {
        close(fd);
        free(h);
        dp_error_set(err, DP_ERR_IO, "--metrics-addr %.200s: cannot start the HTTP server", addr);
        return NULL;
    }
    return h;
}

int dp_metrics_http_port(const dp_metrics_http *h) { return h ? h->port : 0; }

void dp_metrics_http_stop(dp_metrics_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d); /* closes the listening socket it was given */
    free(h);
}
