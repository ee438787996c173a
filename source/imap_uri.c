/* imap_uri — the settings of an IMAP source: its URI and its secret.
 *
 *   imap://USER@HOST[:PORT]/MAILBOX[?processed=FOLDER&quarantine=FOLDER&cafile=PEM]
 *   imaps://...                       TLS from the first byte (port 993)
 *
 * USER, MAILBOX and the folders are percent-decoded (a user that is a mail
 * address writes its @ as %40; a space is %20).  Every other parameter is
 * an error: a typo must not quietly leave counted mail in the inbox.
 *
 * No secret in the URI.  A command line is visible to every user of the
 * machine (`ps`, /proc/PID/cmdline), so `USER:PASSWORD@` is refused, with
 * what to do instead, and the URI is shown with the password masked.
 *
 * TLS.  imaps:// is TLS from the start.  imap:// to another machine must
 * turn to TLS with STARTTLS before it logs in (libcurl's CURLUSESSL_ALL),
 * or it does not log in: a password never crosses a network in clear.  On
 * loopback (localhost, 127.0.0.0/8, ::1) STARTTLS is used when offered and
 * a clear login is allowed, since it never leaves the machine (a local
 * Dovecot, a test server, an stunnel or ssh tunnel's end).  There is no
 * switch to turn TLS off elsewhere.  The server's certificate is checked
 * against the system's CAs, or only those of cafile=PEM (an internal CA, a
 * server's own self-signed certificate).
 *
 * Names.  Mailbox and folder names are sent as IMAP quoted strings, so
 * they are kept to printable 7-bit ASCII: a name with other characters is
 * written as the server knows it, in IMAP's modified UTF-7 (RFC 3501
 * 5.1.3; "Entwürfe" is "Entw&APw-rfe").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dp_buf.h"
#include "imap_uri.h"

#define PASSWORD_MAX 4096

/* The URI as it may be shown: a password after USER: masked. */
static void shown(const char *uri, char *out, size_t cap) {
    const char *auth = strstr(uri, "://");
    auth = auth ? auth + 3 : uri;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@') at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon)
        snprintf(out, cap, "%.*s:***%s", (int)(colon - uri), uri, at);
    else
        snprintf(out, cap, "%s", uri);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* p[0..n) percent-decoded: malloc'd, or NULL (a bad escape, a NUL byte,
 * out of memory). */
static char *decode(const char *p, size_t n) {
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; out && i < n; i++) {
        if (p[i] != '%') {
            *o++ = p[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    if (out) *o = '\0';
    return out;
}

/* Printable 7-bit ASCII, not empty. */
static int printable(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return 0;
    return 1;
}

static int is_loopback(const char *host) {
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0) return 1;
    if (strncmp(host, "127.", 4) != 0) return 0;
    return strspn(host, "0123456789.") == strlen(host);
}

/* Sets one parameter; 0, or -1 and err. */
static int set_param(dp_imap_uri *u, const char *p, size_t n, const char *show, dp_error *err) {
    const char *eq = memchr(p, '=', n);
    size_t klen = eq ? (size_t)(eq - p) : n;
    char **slot = NULL;
    if (klen == 9 && strncmp(p, "processed", 9) == 0)
        slot = &u->processed;
    else if (klen == 10 && strncmp(p, "quarantine", 10) == 0)
        slot = &u->quarantine;
    else if (klen == 6 && strncmp(p, "cafile", 6) == 0)
        slot = &u->cafile;
    if (!slot)
        return dp_error_set(err, DP_ERR_USAGE,
                            "source '%s': unknown parameter '%.*s' (known: processed, quarantine, cafile)",
                            show, (int)(klen < 64 ? klen : 64), p);
    if (!eq || eq + 1 == p + n)
        return dp_error_set(err, DP_ERR_USAGE, "source '%s': %.*s= needs a value", show, (int)klen, p);
    char *v = decode(eq + 1, (size_t)(p + n - eq - 1));
    if (!v) return dp_error_set(err, DP_ERR_USAGE, "source '%s': %.*s: a bad %%-escape", show, (int)klen, p);
    if (slot != &u->cafile && !printable(v)) {
        free(v);
        return dp_error_set(
            err, DP_ERR_USAGE,
            "source '%s': %.*s: a folder name of printable 7-bit ASCII (others in IMAP's modified "
            "UTF-7, e.g. Entw&APw-rfe)",
            show, (int)klen, p);
    }
    if (slot == &u->cafile && access(v, R_OK) != 0) {
        int e = errno;
        free(v);
        return dp_error_set(err, DP_ERR_USAGE, "source '%s': cafile: %s", show, strerror(e));
    }
    free(*slot);
    *slot = v;
    return 0;
}

int dp_imap_uri_parse(const char *uri, dp_imap_uri *u, dp_error *err) {
    memset(u, 0, sizeof *u);
    char show[DP_IMAP_URI_MAX];
    shown(uri, show, sizeof show);
    if (strlen(uri) >= DP_IMAP_URI_MAX)
        return dp_error_set(err, DP_ERR_USAGE, "source '%.64s...': too long", show);
    const char *p;
    if (strncmp(uri, "imaps://", 8) == 0)
        u->implicit_tls = 1, p = uri + 8;
    else if (strncmp(uri, "imap://", 7) == 0)
        p = uri + 7;
    else
        return dp_error_set(err, DP_ERR_USAGE, "source '%s': not an imap:// or imaps:// URI", show);
    size_t alen = strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < p + alen; q++)
        if (*q == '@') at = q;
    if (!at || at == p)
        return dp_error_set(err, DP_ERR_USAGE, "source '%s': no user: imap%s://USER@HOST[:PORT]/MAILBOX",
                            show, u->implicit_tls ? "s" : "");
    if (memchr(p, ':', (size_t)(at - p)))
        return dp_error_set(
            err, DP_ERR_USAGE,
            "source '%s': a password in the URI would be visible to every user of this machine (ps): "
            "give it in DMARCPIPE_IMAP_PASSWORD or in a file named by --imap-password-file",
            show);
    int rc = 0;
    if (!(u->user = decode(p, (size_t)(at - p))) || !printable(u->user))
        rc =
            dp_error_set(err, DP_ERR_USAGE, "source '%s': a user name of printable ASCII (%%40 for @)", show);
    /* HOST[:PORT], HOST an IPv6 address in brackets, or letters, digits, '.' and '-' */
    const char *h = at + 1, *hend = p + alen, *colon = NULL;
    if (rc == 0 && *h == '[') {
        const char *close = memchr(h, ']', (size_t)(hend - h));
        if (!close || strspn(h + 1, "0123456789abcdefABCDEF:.") != (size_t)(close - h - 1))
            rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': a bad IPv6 address", show);
        else if (close + 1 < hend && close[1] == ':')
            colon = close + 1;
        else if (close + 1 != hend)
            rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': a bad host", show);
        if (rc == 0) u->host = strndup(h, (size_t)(close + 1 - h));
    } else if (rc == 0) {
        colon = memchr(h, ':', (size_t)(hend - h));
        const char *e = colon ? colon : hend;
        if (e == h ||
            strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != (size_t)(e - h))
            rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': a bad host name", show);
        else if ((u->host = strndup(h, (size_t)(e - h))))
            for (char *c = u->host; *c; c++)
                *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    }
    u->port = u->implicit_tls ? 993 : 143;
    if (rc == 0 && colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != hend || colon + 1 == hend || port < 1 || port > 65535)
            rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': a bad port", show);
        u->port = (int)port;
    }
    if (rc == 0 && !u->host) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    if (rc == 0) u->loopback = is_loopback(u->host);
    /* /MAILBOX */
    const char *m = p + alen;
    if (rc == 0 && p[alen] == '#')
        rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': a fragment (#) means nothing here", show);
    size_t mlen = rc == 0 && *m == '/' ? strcspn(m + 1, "?#") : 0, mbox_len = mlen;
    while (mbox_len > 0 && m[mbox_len] == '/') /* "INBOX/" is INBOX, as libcurl reads it */
        mbox_len--;
    if (rc == 0 && mbox_len == 0)
        rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': no mailbox: imap%s://USER@HOST[:PORT]/INBOX", show,
                          u->implicit_tls ? "s" : "");
    if (rc == 0 &&
        (!(u->mailbox = decode(m + 1, mbox_len)) || !printable(u->mailbox) || strchr(u->mailbox, ';')))
        rc = dp_error_set(
            err, DP_ERR_USAGE,
            "source '%s': a mailbox name of printable 7-bit ASCII, without ';' (others in IMAP's "
            "modified UTF-7, e.g. Entw&APw-rfe)",
            show);
    if (rc == 0 && strcasecmp(u->mailbox, "INBOX") == 0) memcpy(u->mailbox, "INBOX", 5);
    /* ?k=v&k=v */
    const char *q = rc == 0 ? m + 1 + mlen : NULL;
    if (q && *q == '#')
        rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': a fragment (#) means nothing here", show);
    if (rc == 0 && *q == '?') {
        for (q++; rc == 0 && *q;) {
            size_t n = strcspn(q, "&#");
            if (q[n] == '#')
                rc = dp_error_set(err, DP_ERR_USAGE, "source '%s': a fragment (#) means nothing here", show);
            else if (n)
                rc = set_param(u, q, n, show, err);
            q += n + (q[n] == '&');
        }
    }
    if (rc == 0 && ((u->processed && strcmp(u->processed, u->mailbox) == 0) ||
                    (u->quarantine && strcmp(u->quarantine, u->mailbox) == 0)))
        rc = dp_error_set(err, DP_ERR_USAGE,
                          "source '%s': the processed and quarantine folders must not be the mailbox", show);
    if (rc == 0) {
        dp_buf d = DP_BUF_INIT, k = DP_BUF_INIT;
        dp_buf_printf(&d, "imap%s://%s@%s:%d/%s", u->implicit_tls ? "s" : "", u->user, u->host, u->port,
                      u->mailbox);
        dp_buf_printf(&k, "imap:%s@%s:%d/%s", u->user, u->host, u->port, u->mailbox);
        u->display = d.failed ? NULL : d.data;
        u->key_prefix = k.failed ? NULL : k.data;
        if (d.failed) dp_buf_free(&d);
        if (k.failed) dp_buf_free(&k);
        if (!u->display || !u->key_prefix) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    if (rc != 0) dp_imap_uri_free(u);
    return rc;
}

/* The first line of `path`, without its line end: malloc'd, or NULL and
 * err (which never holds the content). */
static char *first_line(const dp_imap_uri *u, const char *path, const char *what, dp_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dp_error_set(err, DP_ERR_USAGE, "%s: cannot read the %s file %s: %s", u->display, what, path,
                     strerror(errno));
        return NULL;
    }
    char *buf = malloc(PASSWORD_MAX + 1);
    ssize_t n = buf ? read(fd, buf, PASSWORD_MAX) : -1;
    int e = errno;
    close(fd);
    if (n < 0) {
        dp_error_set(err, DP_ERR_USAGE, "%s: cannot read the %s file %s: %s", u->display, what, path,
                     buf ? strerror(e) : "out of memory");
        dp_imap_uri_wipe(buf);
        return NULL;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!buf[0]) {
        dp_error_set(err, DP_ERR_USAGE, "%s: the %s file %s is empty", u->display, what, path);
        dp_imap_uri_wipe(buf);
        return NULL;
    }
    return buf;
}

int dp_imap_uri_secret(dp_imap_uri *u, const char *password_file, const char *token_file, char **password,
                       dp_error *err) {
    *password = NULL;
    if (token_file && password_file)
        return dp_error_set(err, DP_ERR_USAGE, "%s: give --imap-password-file or --imap-token-file, not both",
                            u->display);
    if (token_file) {
        char *t = first_line(u, token_file, "token", err);
        if (!t) return -1;
        dp_imap_uri_wipe(t);
        u->xoauth2 = 1;
        return 0;
    }
    if (password_file) return (*password = first_line(u, password_file, "password", err)) ? 0 : -1;
    const char *env = getenv("DMARCPIPE_IMAP_PASSWORD");
    if (env && *env) {
        if (!(*password = strdup(env))) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return 0;
    }
    return dp_error_set(err, DP_ERR_USAGE,
                        "%s: no password: set DMARCPIPE_IMAP_PASSWORD, or give --imap-password-file FILE (or "
                        "--imap-token-file FILE for an OAuth2 token)",
                        u->display);
}

void dp_imap_uri_wipe(char *secret) {
    if (!secret) return;
    volatile char *v = secret;
    while (*v)
        *v++ = 0;
    free(secret);
}

void dp_imap_uri_free(dp_imap_uri *u) {
    free(u->user);
    free(u->host);
    free(u->mailbox);
    free(u->processed);
    free(u->quarantine);
    free(u->cafile);
    free(u->display);
    free(u->key_prefix);
    memset(u, 0, sizeof *u);
}
