/* imap_session — libcurl's IMAP for the IMAP source: the pool of logged-in
 * connections, commands, fetches by UID, and what a failure means.
 *
 * libcurl does the protocol: the greeting, STARTTLS, LOGIN or AUTHENTICATE
 * XOAUTH2, SELECT, literals.  Nothing here speaks IMAP but the commands the
 * source hands over as text.
 *
 * Connections.  An easy handle keeps its connection open between
 * transfers, logged in and with its mailbox selected, so the pool is a
 * handful of handles lent one caller at a time (a mutex and a condition):
 * the engine's workers fetch on several at once, the run's thread lists and
 * moves on whichever is free.  A transfer on a connection the server closed
 * while it sat idle fails once; it is tried again on a new one, as is one
 * whose connection broke under it (up to three tries: GreenMail, for one,
 * drops a connection when another one's flag change races its FETCH).
 *
 * Time.  A dead server must not hang a run: a connection is given 30 s to
 * open, every answer of the protocol 60 s, a command 10 minutes in all,
 * and a fetch may run as long as bytes keep coming (at least one a second
 * over two minutes).
 *
 * Secrets.  Credentials go to libcurl as options, never in a URL, so no
 * URL and no error text holds them; CURLOPT_VERBOSE is never set, as it
 * would print the LOGIN line.  The token file is read before each transfer:
 * libcurl logs in again when the token changed (a connection is only
 * reused with the same credentials), so a refreshed token takes effect at
 * the next transfer, and an idle connection keeps working with the old one.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_fs.h"
#include "imap_session.h"

enum {
    CONNECT_TIMEOUT = 30,  /* seconds to open a connection, TLS and login included */
    RESPONSE_TIMEOUT = 60, /* seconds for each protocol answer */
    COMMAND_TIMEOUT = 600, /* seconds for a whole command */
    LOW_SPEED_TIME = 120,  /* a fetch that moves under one byte a second this long ends */
    TOKEN_MAX = 16384,     /* an OAuth2 access token is a few KiB at most */
    ATTEMPTS = 3,          /* tries of one transfer whose connection breaks */
};
/* A command's untagged answer larger than this is not one we asked for. */
#define LINES_MAX ((size_t)64 << 20)

typedef struct slot {
    CURL *h;
    int busy, used; /* used: has finished a transfer, so it may hold a connection */
} slot;

struct dp_imap_session {
    char *base; /* "imap://HOST:PORT/" or "imaps://..." */
    char *user, *password, *token_file, *cafile;
    int require_starttls;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    slot *slots;
    size_t n_slots;
};

/* ---- the pool ---------------------------------------------------------------- */

static slot *acquire(dp_imap_session *s) {
    pthread_mutex_lock(&s->lock);
    slot *got = NULL;
    for (;;) {
        for (size_t i = 0; i < s->n_slots && !got; i++)
            if (!s->slots[i].busy) {
                if (!s->slots[i].h) s->slots[i].h = curl_easy_init();
                if (s->slots[i].h) got = &s->slots[i];
            }
        if (got) break;
        int any_busy = 0;
        for (size_t i = 0; i < s->n_slots; i++)
            any_busy |= s->slots[i].busy;
        if (!any_busy) break; /* out of memory, and no one to wait for */
        pthread_cond_wait(&s->freed, &s->lock);
    }
    if (got) got->busy = 1;
    pthread_mutex_unlock(&s->lock);
    return got;
}

static void release(dp_imap_session *s, slot *sl) {
    pthread_mutex_lock(&s->lock);
    sl->busy = 0;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

/* ---- secrets ------------------------------------------------------------------ */

static void wipe_free(char *p) {
    if (!p) return;
    volatile char *v = p;
    while (*v)
        *v++ = 0;
    free(p);
}

/* The token in the token file: its first line, without trailing white
 * space.  malloc'd, or NULL and `why` (never the token). */
static char *read_token(const char *path, char *why) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, DP_ERROR_MSG_MAX, "cannot read the token file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(TOKEN_MAX + 1);
    size_t n = 0;
    ssize_t r = 0;
    while (buf && n < TOKEN_MAX && (r = read(fd, buf + n, TOKEN_MAX - n)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        n += (size_t)r;
    }
    int e = errno;
    close(fd);
    if (!buf || r < 0) {
        snprintf(why, DP_ERROR_MSG_MAX, "cannot read the token file %s: %s", path,
                 buf ? strerror(e) : "out of memory");
        wipe_free(buf);
        return NULL;
    }
    buf[n] = '\0';
    char *nl = memchr(buf, '\n', n);
    if (nl) *nl = '\0';
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (n == 0) {
        snprintf(why, DP_ERROR_MSG_MAX, "the token file %s holds no token", path);
        wipe_free(buf);
        return NULL;
    }
    return buf;
}

/* ---- one transfer ---------------------------------------------------------------- */

typedef struct sink_ctx {
    dp_buf *lines; /* a command's answer */
    int fd;        /* a fetch's file */
    uint64_t size, cap;
    int too_big, write_errno;
} sink_ctx;

static size_t to_lines(char *p, size_t size, size_t n, void *ctx) {
    sink_ctx *c = ctx;
    size_t len = size * n;
    if (c->lines->len + len > LINES_MAX) {
        c->too_big = 1;
        return 0;
    }
    dp_buf_append(c->lines, p, len);
    return c->lines->failed ? 0 : len;
}

static size_t to_fd(char *p, size_t size, size_t n, void *ctx) {
    sink_ctx *c = ctx;
    size_t len = size * n;
    if (c->size + len > c->cap) {
        c->too_big = 1;
        return 0;
    }
    if (dp_fs_write_all(c->fd, p, len) != 0) {
        c->write_errno = errno;
        return 0;
    }
    c->size += len;
    return len;
}

static dp_imap_status classify(CURLcode rc, const sink_ctx *c, const char *errbuf, char *why) {
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OK: return DP_IMAP_OK;
    case CURLE_LOGIN_DENIED:
        snprintf(why, DP_ERROR_MSG_MAX, "login refused (%s)", detail);
        return DP_IMAP_LOGIN;
    case CURLE_REMOTE_FILE_NOT_FOUND: snprintf(why, DP_ERROR_MSG_MAX, "%s", detail); return DP_IMAP_GONE;
    case CURLE_QUOTE_ERROR:
        snprintf(why, DP_ERROR_MSG_MAX, "the server refused the command");
        return DP_IMAP_REFUSED;
    case CURLE_WRITE_ERROR:
        if (c->too_big) {
            snprintf(why, DP_ERROR_MSG_MAX, "larger than %llu bytes", (unsigned long long)c->cap);
            return DP_IMAP_TOO_BIG;
        }
        if (c->write_errno) {
            snprintf(why, DP_ERROR_MSG_MAX, "cannot write the local copy: %s", strerror(c->write_errno));
            return DP_IMAP_LOCAL;
        }
        snprintf(why, DP_ERROR_MSG_MAX, "out of memory");
        return DP_IMAP_LOCAL;
    case CURLE_OUT_OF_MEMORY: snprintf(why, DP_ERROR_MSG_MAX, "out of memory"); return DP_IMAP_LOCAL;
    case CURLE_USE_SSL_FAILED:
        snprintf(why, DP_ERROR_MSG_MAX,
                 "the server offers no STARTTLS, and no password leaves this machine in clear: use imaps://");
        return DP_IMAP_NET;
    default: snprintf(why, DP_ERROR_MSG_MAX, "%s", detail); return DP_IMAP_NET;
    }
}

/* Sets every option of one transfer on a handle reset to its defaults (the
 * reset keeps its connection).  0, or -1 and `why`. */
static int setup(dp_imap_session *s, CURL *h, const char *url, const char *token, char *errbuf, int fresh) {
    curl_easy_reset(h);
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                                        \
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "imap,imaps");
    SET(CURLOPT_USERNAME, s->user);
    if (token) {
        SET(CURLOPT_XOAUTH2_BEARER, token);
        SET(CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
    } else {
        SET(CURLOPT_PASSWORD, s->password);
    }
    /* off loopback a clear-text login is refused; on loopback STARTTLS is
     * used when offered */
    SET(CURLOPT_USE_SSL, (long)(s->require_starttls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    if (s->cafile) SET(CURLOPT_CAINFO, s->cafile);
    SET(CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM for timeouts */
    SET(CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT);
#if LIBCURL_VERSION_NUM >= 0x080600 /* the option in seconds is deprecated there */
    SET(CURLOPT_SERVER_RESPONSE_TIMEOUT_MS, (long)RESPONSE_TIMEOUT * 1000L);
#else
    SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)RESPONSE_TIMEOUT);
#endif
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME, (long)LOW_SPEED_TIME);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    if (fresh) SET(CURLOPT_FRESH_CONNECT, 1L);
#undef SET
    return rc == CURLE_OK ? 0 : -1;
}

/* "BASE" + the escaped mailbox + ";UIDVALIDITY=V" (when V) + "/;UID=N" (when N). */
static char *url_of(dp_imap_session *s, CURL *h, const char *mailbox, uint32_t uidvalidity, uint32_t uid) {
    dp_buf b = DP_BUF_INIT;
    dp_buf_puts(&b, s->base);
    if (mailbox) {
        char *esc = curl_easy_escape(h, mailbox, 0);
        if (!esc) {
            dp_buf_free(&b);
            return NULL;
        }
        dp_buf_puts(&b, esc);
        curl_free(esc);
        if (uidvalidity) dp_buf_printf(&b, ";UIDVALIDITY=%u", uidvalidity);
        if (uid) dp_buf_printf(&b, "/;UID=%u", uid);
    }
    if (b.failed) {
        dp_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* Whether the connection broke under the transfer (the server closed it,
 * a reset), rather than could not be made or timed out. */
static int dropped(CURLcode rc) {
    return rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
           rc == CURLE_PARTIAL_FILE;
}

/* One transfer, tried again on a new connection when the one it ran on
 * broke (up to ATTEMPTS in all), or failed after sitting idle (once): a
 * server may drop one connection without being away.  `command` NULL: a
 * fetch. */
static dp_imap_status transfer(dp_imap_session *s, const char *mailbox, uint32_t uidvalidity, uint32_t uid,
                               const char *command, sink_ctx *c, char *why) {
    char *token = NULL;
    if (s->token_file && !(token = read_token(s->token_file, why))) return DP_IMAP_SECRET;
    slot *sl = acquire(s);
    if (!sl) {
        wipe_free(token);
        snprintf(why, DP_ERROR_MSG_MAX, "out of memory (libcurl)");
        return DP_IMAP_LOCAL;
    }
    dp_imap_status st = DP_IMAP_LOCAL;
    char *url = url_of(s, sl->h, mailbox, uidvalidity, uid);
    off_t start = command ? 0 : lseek(c->fd, 0, SEEK_CUR);
    snprintf(why, DP_ERROR_MSG_MAX, "out of memory");
    for (int attempt = 0; url && attempt < ATTEMPTS; attempt++) {
        char errbuf[CURL_ERROR_SIZE] = "";
        if (setup(s, sl->h, url, token, errbuf, attempt > 0) != 0) {
            snprintf(why, DP_ERROR_MSG_MAX, "libcurl lacks an option it needs (IMAP, TLS)");
            break;
        }
        if (command) {
            curl_easy_setopt(sl->h, CURLOPT_CUSTOMREQUEST, command);
            curl_easy_setopt(sl->h, CURLOPT_TIMEOUT, (long)COMMAND_TIMEOUT);
            curl_easy_setopt(sl->h, CURLOPT_WRITEFUNCTION, to_lines);
        } else {
            curl_easy_setopt(sl->h, CURLOPT_WRITEFUNCTION, to_fd);
        }
        curl_easy_setopt(sl->h, CURLOPT_WRITEDATA, c);
        size_t lines_at = c->lines ? c->lines->len : 0;
        CURLcode rc = curl_easy_perform(sl->h);
        st = classify(rc, c, errbuf, why);
        /* nothing of this call's stack stays with the handle (the error
         * buffer, the sink); its connection does */
        curl_easy_reset(sl->h);
        int retry =
            attempt + 1 < ATTEMPTS && (dropped(rc) || (st == DP_IMAP_NET && sl->used && attempt == 0));
        sl->used = 1;
        if (!retry) break;
        /* what the broken attempt delivered goes */
        if (c->lines) c->lines->len = lines_at;
        if (!command && (lseek(c->fd, start, SEEK_SET) < 0 || ftruncate(c->fd, start) != 0)) {
            snprintf(why, DP_ERROR_MSG_MAX, "cannot rewind the local copy: %s", strerror(errno));
            st = DP_IMAP_LOCAL;
            break;
        }
        c->size = 0;
    }
    free(url);
    release(s, sl);
    wipe_free(token);
    return st;
}

/* ---- the interface ---------------------------------------------------------------- */

dp_imap_status dp_imap_session_command(dp_imap_session *s, const char *mailbox, uint32_t uidvalidity,
                                       const char *command, dp_buf *lines, char *why) {
    sink_ctx c = {lines, -1, 0, LINES_MAX, 0, 0};
    dp_imap_status st = transfer(s, mailbox, uidvalidity, 0, command, &c, why);
    if (st == DP_IMAP_TOO_BIG)
        snprintf(why, DP_ERROR_MSG_MAX, "the server's answer passed %zu MiB", LINES_MAX >> 20);
    return st;
}

dp_imap_status dp_imap_session_fetch(dp_imap_session *s, const char *mailbox, uint32_t uidvalidity,
                                     uint32_t uid, int fd, uint64_t cap, uint64_t *size, char *why) {
    sink_ctx c = {NULL, fd, 0, cap, 0, 0};
    dp_imap_status st = transfer(s, mailbox, uidvalidity, uid, NULL, &c, why);
    *size = c.size;
    return st;
}

void dp_imap_session_quote(dp_buf *b, const char *mailbox) {
    dp_buf_putc(b, '"');
    for (const char *p = mailbox; *p; p++) {
        if (*p == '"' || *p == '\\') dp_buf_putc(b, '\\');
        dp_buf_putc(b, *p);
    }
    dp_buf_putc(b, '"');
}

dp_imap_session *dp_imap_session_new(const dp_imap_account *a, dp_error *err) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        dp_error_set(err, DP_ERR_IO, "libcurl cannot start");
        return NULL;
    }
    dp_imap_session *s = calloc(1, sizeof *s);
    if (!s) {
        curl_global_cleanup();
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->require_starttls = a->require_starttls;
    s->n_slots = a->max_connections ? a->max_connections : 1;
    s->slots = calloc(s->n_slots, sizeof *s->slots);
    dp_buf b = DP_BUF_INIT;
    dp_buf_printf(&b, "%s://%s:%d/", a->implicit_tls ? "imaps" : "imap", a->host, a->port);
    s->base = b.failed ? NULL : b.data;
    if (!b.failed) b.data = NULL;
    dp_buf_free(&b);
    s->user = strdup(a->user);
    if (a->password) s->password = strdup(a->password);
    if (a->token_file) s->token_file = strdup(a->token_file);
    if (a->cafile) s->cafile = strdup(a->cafile);
    if (!s->slots || !s->base || !s->user || (a->password && !s->password) ||
        (a->token_file && !s->token_file) || (a->cafile && !s->cafile)) {
        dp_imap_session_free(s);
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return s;
}

void dp_imap_session_free(dp_imap_session *s) {
    if (!s) return;
    for (size_t i = 0; s->slots && i < s->n_slots; i++)
        if (s->slots[i].h) curl_easy_cleanup(s->slots[i].h);
    free(s->slots);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    free(s->base);
    free(s->user);
    wipe_free(s->password);
    free(s->token_file);
    free(s->cafile);
    free(s);
    curl_global_cleanup();
}
