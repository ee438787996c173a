/* resolver — the DNS thread: a PTR query per IP, then the name's A or AAAA
 * query to confirm it, with c-ares.
 *
 * One channel, used by this thread only (c-ares channels are not shared
 * between threads).  The loop polls c-ares' sockets, which it learns of
 * through the socket-state callback (no limit on their number), and a
 * pipe that other threads write to when there is a new IP: so it sleeps
 * when there is nothing to do and wakes at once when there is.  Timeouts:
 * two tries per query, the second twice as long as the first (c-ares'
 * back-off), so a query ends after about query_timeout in all.  SERVFAIL
 * and REFUSED are answers, reported at once (ARES_FLAG_NOCHECKRESP): with
 * several system resolvers, the next is not tried for them.
 */
#include "resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_buf.h"

typedef struct sock_watch {
    ares_socket_t fd;
    short events;
} sock_watch;

struct dp_resolver {
    ares_channel ch;
    dp_resolver_hooks hooks;
    unsigned max_inflight, inflight;
    int wake_rd, wake_wr;
    atomic_int stop;
    pthread_t thread;
    sock_watch *socks;
    size_t n_socks, cap_socks;
    struct pollfd *pfds;
    size_t cap_pfds;
    int failed_alloc;   /* a socket could not be watched: poll with a short timeout instead */
};

typedef struct lookup {
    dp_resolver *r;
    int family;
    unsigned char addr[16];
    char ip[DP_RESOLVER_IP_MAX];
    char name[DP_RESOLVER_NAME_MAX];
} lookup;

static const char *const STATUS_NAMES[DP_RESOLVER_N_STATUS] = {
    "answered", "unconfirmed", "nxdomain", "servfail", "refused", "timeout", "unreachable", "error"};

const char *dp_resolver_status_name(dp_resolver_status s) {
    return (unsigned)s < DP_RESOLVER_N_STATUS ? STATUS_NAMES[s] : "error";
}

int dp_resolver_status_parse(const char *s) {
    for (int i = 0; i < DP_RESOLVER_N_STATUS; i++)
        if (strcmp(s, STATUS_NAMES[i]) == 0) return i;
    return -1;
}

static dp_resolver_status from_ares(int status) {
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA: return DP_RESOLVER_NXDOMAIN;
    case ARES_ESERVFAIL: return DP_RESOLVER_SERVFAIL;
    case ARES_EREFUSED: return DP_RESOLVER_REFUSED;
    case ARES_ETIMEOUT: return DP_RESOLVER_TIMEOUT;
    case ARES_ECONNREFUSED: return DP_RESOLVER_UNREACHABLE;
    default: return DP_RESOLVER_ERROR;
    }
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable) {
    dp_resolver *r = data;
    size_t i = 0;
    while (i < r->n_socks && r->socks[i].fd != fd) i++;
    if (!readable && !writable) {
        if (i < r->n_socks) r->socks[i] = r->socks[--r->n_socks];
        return;
    }
    if (i == r->n_socks) {
        sock_watch *grown = dp_buf_grow_array(r->socks, &r->cap_socks, r->n_socks + 1, sizeof *r->socks);
        if (!grown) {
            r->failed_alloc = 1;
            return;
        }
        r->socks = grown;
        r->n_socks++;
    }
    r->socks[i].fd = fd;
    r->socks[i].events = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
}

static void finish(lookup *lk, dp_resolver_status status, const char *name) {
    dp_resolver *r = lk->r;
    r->inflight--;
    r->hooks.done(r->hooks.ctx, lk->ip, status, name);
    free(lk);
}

static void drop(lookup *lk) {
    lk->r->inflight--;
    free(lk);
}

/* A PTR name fit to report: letters, digits, '-', '_' and dots, lowercase,
 * without the trailing dot. */
static int normalise_name(const char *in, char out[DP_RESOLVER_NAME_MAX]) {
    size_t n = strlen(in);
    if (n > 0 && in[n - 1] == '.') n--;
    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!(isalnum(c) || c == '-' || c == '_' || (c == '.' && i > 0 && in[i - 1] != '.'))) return 0;
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    return 1;
}

static void forward_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
    (void)timeouts;
    lookup *lk = arg;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        drop(lk);
        return;
    }
    if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
        finish(lk, DP_RESOLVER_UNCONFIRMED, NULL);
        return;
    }
    if (status != ARES_SUCCESS) {
        finish(lk, from_ares(status), NULL);
        return;
    }
    int confirmed = 0, rc;
    if (lk->family == AF_INET) {
        struct ares_addrttl a[32];
        int n = 32;
        rc = ares_parse_a_reply(abuf, alen, NULL, a, &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n && !confirmed; i++)
            confirmed = memcmp(&a[i].ipaddr, lk->addr, 4) == 0;
    } else {
        struct ares_addr6ttl a[32];
        int n = 32;
        rc = ares_parse_aaaa_reply(abuf, alen, NULL, a, &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n && !confirmed; i++)
            confirmed = memcmp(&a[i].ip6addr, lk->addr, 16) == 0;
    }
    if (rc != ARES_SUCCESS && rc != ARES_ENODATA)
        finish(lk, DP_RESOLVER_ERROR, NULL);
    else
        finish(lk, confirmed ? DP_RESOLVER_ANSWERED : DP_RESOLVER_UNCONFIRMED, confirmed ? lk->name : NULL);
}

static void ptr_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
    (void)timeouts;
    lookup *lk = arg;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        drop(lk);
        return;
    }
    if (status != ARES_SUCCESS) {
        finish(lk, from_ares(status), NULL);
        return;
    }
    struct hostent *h = NULL;
    int rc = ares_parse_ptr_reply(abuf, alen, lk->addr, lk->family == AF_INET ? 4 : 16, lk->family, &h);
    if (rc != ARES_SUCCESS || !h || !h->h_name) {
        if (h) ares_free_hostent(h);
        finish(lk, rc == ARES_ENODATA ? DP_RESOLVER_NXDOMAIN : DP_RESOLVER_ERROR, NULL);
        return;
    }
    /* Several PTR names are rare; the first is the one asked forward. */
    int ok = normalise_name(h->h_name, lk->name);
    ares_free_hostent(h);
    if (!ok) {
        finish(lk, DP_RESOLVER_ERROR, NULL);
        return;
    }
    ares_query(lk->r->ch, lk->name, ns_c_in, lk->family == AF_INET ? ns_t_a : ns_t_aaaa, forward_done, lk);
}

/* The reverse name: d.c.b.a.in-addr.arpa, or the 32 nibbles of ip6.arpa. */
static void reverse_name(const lookup *lk, char *out, size_t n) {
    if (lk->family == AF_INET) {
        snprintf(out, n, "%u.%u.%u.%u.in-addr.arpa", lk->addr[3], lk->addr[2], lk->addr[1], lk->addr[0]);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 15; i >= 0; i--) {
        out[o++] = hex[lk->addr[i] & 15];
        out[o++] = '.';
        out[o++] = hex[lk->addr[i] >> 4];
        out[o++] = '.';
    }
    snprintf(out + o, n - o, "ip6.arpa");
}

static void start_lookup(dp_resolver *r, const char *ip) {
    lookup *lk = calloc(1, sizeof *lk);
    if (!lk) {
        r->hooks.done(r->hooks.ctx, ip, DP_RESOLVER_ERROR, NULL);
        return;
    }
    lk->r = r;
    snprintf(lk->ip, sizeof lk->ip, "%s", ip);
    if (inet_pton(AF_INET, ip, lk->addr) == 1) {
        lk->family = AF_INET;
    } else if (inet_pton(AF_INET6, ip, lk->addr) == 1) {
        lk->family = AF_INET6;
    } else {
        r->hooks.done(r->hooks.ctx, ip, DP_RESOLVER_ERROR, NULL);
        free(lk);
        return;
    }
    char rev[80];
    reverse_name(lk, rev, sizeof rev);
    r->inflight++;
    ares_query(r->ch, rev, ns_c_in, ns_t_ptr, ptr_done, lk);
}

static void drain_wake(int fd) {
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static void *run(void *arg) {
    dp_resolver *r = arg;
    char ip[DP_RESOLVER_IP_MAX];
    while (!atomic_load(&r->stop)) {
        while (r->inflight < r->max_inflight && !atomic_load(&r->stop) && r->hooks.next(r->hooks.ctx, ip))
            start_lookup(r, ip);
        size_t n = 0;
        struct pollfd *p = dp_buf_grow_array(r->pfds, &r->cap_pfds, r->n_socks + 1, sizeof *r->pfds);
        if (p) {
            r->pfds = p;
            p[n++] = (struct pollfd){r->wake_rd, POLLIN, 0};
            for (size_t i = 0; i < r->n_socks; i++) p[n++] = (struct pollfd){r->socks[i].fd, r->socks[i].events, 0};
        }
        /* At least twice a second, so that tick (the cache's commits) runs. */
        struct timeval most = {0, r->failed_alloc || !p ? 20000 : 500000}, tv;
        struct timeval *t = ares_timeout(r->ch, &most, &tv);
        int ms = (int)(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
        int got = poll(p ? r->pfds : NULL, n, ms);
        if (got > 0) {
            if (r->pfds[0].revents) drain_wake(r->wake_rd);
            /* c-ares changes the watched set from within; the copy in pfds
             * is what this turn handles. */
            for (size_t i = 1; i < n; i++) {
                short ev = r->pfds[i].revents;
                if (!ev) continue;
                ares_socket_t rd = ev & (POLLIN | POLLERR | POLLHUP) ? r->pfds[i].fd : ARES_SOCKET_BAD;
                ares_socket_t wr = ev & POLLOUT ? r->pfds[i].fd : ARES_SOCKET_BAD;
                ares_process_fd(r->ch, rd, wr);
            }
        }
        ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* the timeouts */
        r->hooks.tick(r->hooks.ctx, 0);
    }
    ares_cancel(r->ch);
    r->hooks.tick(r->hooks.ctx, 1);
    return NULL;
}

static int set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

dp_resolver *dp_resolver_start(const dp_resolver_config *c, const dp_resolver_hooks *hooks, dp_error *err) {
    dp_resolver *r = calloc(1, sizeof *r);
    if (!r) {
        dp_error_set(err, DP_ERR_NOMEM, "the resolver: out of memory");
        return NULL;
    }
    r->hooks = *hooks;
    r->max_inflight = c->max_inflight ? c->max_inflight : 1;
    r->wake_rd = r->wake_wr = -1;
    atomic_init(&r->stop, 0);
    int fds[2];
    if (pipe(fds) != 0) {
        dp_error_set(err, DP_ERR_IO, "the resolver: pipe: %s", strerror(errno));
        free(r);
        return NULL;
    }
    r->wake_rd = fds[0];
    r->wake_wr = fds[1];
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    if (set_nonblock(fds[0]) != 0 || set_nonblock(fds[1]) != 0) {
        dp_error_set(err, DP_ERR_IO, "the resolver: pipe: %s", strerror(errno));
        goto fail;
    }
    struct ares_options o;
    memset(&o, 0, sizeof o);
    double total_ms = (c->query_timeout > 0 ? c->query_timeout : 2.0) * 1000.0;
    o.timeout = total_ms / 3 < 1 ? 1 : (int)(total_ms / 3);
    o.tries = 2;
    /* SERVFAIL and REFUSED reach the callback as such, not as a server
     * to skip (which c-ares 1.18 then reports as unreachable). */
    o.flags = ARES_FLAG_NOCHECKRESP;
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = r;
    int rc = ares_init_options(&r->ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS);
    if (rc != ARES_SUCCESS) {
        r->ch = NULL;
        dp_error_set(err, DP_ERR_IO, "the resolver: c-ares: %s", ares_strerror(rc));
        goto fail;
    }
    if (c->server) {
        if (!*c->server || (rc = ares_set_servers_ports_csv(r->ch, c->server)) != ARES_SUCCESS) {
            dp_error_set(err, DP_ERR_USAGE, "%s: the resolver is not HOST:PORT or [IPV6]:PORT with HOST an address",
                         c->server);
            goto fail;
        }
    }
    if ((rc = pthread_create(&r->thread, NULL, run, r)) != 0) {
        dp_error_set(err, DP_ERR_IO, "the resolver: cannot start its thread: %s", strerror(rc));
        goto fail;
    }
    return r;
fail:
    if (r->ch) ares_destroy(r->ch);
    close(r->wake_rd);
    close(r->wake_wr);
    free(r);
    return NULL;
}

void dp_resolver_wake(dp_resolver *r) {
    /* A full pipe already wakes the thread: EAGAIN is fine. */
    ssize_t w = write(r->wake_wr, "w", 1);
    (void)w;
}

void dp_resolver_stop(dp_resolver *r) {
    if (!r) return;
    atomic_store(&r->stop, 1);
    dp_resolver_wake(r);
    pthread_join(r->thread, NULL);
    ares_destroy(r->ch);
    close(r->wake_rd);
    close(r->wake_wr);
    free(r->socks);
    free(r->pfds);
    free(r);
}
