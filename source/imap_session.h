/* imap_session.h — libcurl's IMAP, as the IMAP source uses it (internal to source/).
 *
 * A session is one account on one server: a small pool of libcurl easy
 * handles, each keeping its logged-in connection between transfers, so a
 * run logs in a few times, not once per message.  Two kinds of transfer:
 *   - a command whose answer is untagged lines (STATUS, UID SEARCH, UID
 *     MOVE, UID STORE, CREATE, CAPABILITY): libcurl's custom request hands
 *     over exactly those lines, and nothing of a literal;
 *   - a message fetched by UID into a file descriptor, by the IMAP URL
 *     form (RFC 5092), which carries the literal's bytes.
 * Both name the mailbox with its UIDVALIDITY when they touch one: libcurl
 * then fails the transfer when the mailbox was rebuilt since (a new
 * UIDVALIDITY), so a UID is never taken in a mailbox it does not belong to.
 *
 * Threads: every call may come from any thread; the pool lends each
 * handle to one caller at a time.  Secrets: the password is kept in the
 * session (wiped when it is freed); a bearer token is read from its file
 * before every transfer, so that a token an outside tool refreshed is the
 * one the next login sends.  Neither ever reaches a message: libcurl's
 * error texts name the server, never the credentials, and verbose output
 * is never turned on.
 */
#ifndef DP_IMAP_SESSION_H
#define DP_IMAP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"
#include "dp_error.h"

typedef struct dp_imap_session dp_imap_session;

/* Where and who.  Strings are copied. */
typedef struct dp_imap_account {
    const char *host; /* a name, an IPv4 address, or an IPv6 one in brackets */
    int port;
    int implicit_tls;     /* imaps:// */
    int require_starttls; /* imap:// off loopback: STARTTLS or nothing */
    const char *user;
    const char *password;   /* NULL with a token file */
    const char *token_file; /* XOAUTH2: read at every transfer */
    const char *cafile;     /* CAs to check the server's certificate with (NULL: the system's) */
    size_t max_connections; /* the pool's size (servers cap connections per user) */
} dp_imap_account;

/* How a transfer ended. */
typedef enum dp_imap_status {
    DP_IMAP_OK = 0,
    DP_IMAP_GONE,    /* no such message, or the mailbox's UIDVALIDITY changed */
    DP_IMAP_REFUSED, /* the server answered NO or BAD to the command */
    DP_IMAP_LOGIN,   /* the server refused the login */
    DP_IMAP_TOO_BIG, /* the message passed the caller's size cap */
    DP_IMAP_LOCAL,   /* the local copy could not be written */
    DP_IMAP_SECRET,  /* the token file could not be read */
    DP_IMAP_NET      /* no connection, a timeout, a broken connection, TLS */
} dp_imap_status;

/* A session; NULL and err when out of memory or libcurl cannot start. */
dp_imap_session *dp_imap_session_new(const dp_imap_account *a, dp_error *err);
void dp_imap_session_free(dp_imap_session *s);

/* Runs `command` and appends the untagged lines it answers with ("* ...",
 * each ending in a newline) to `lines`.  mailbox NULL: on the server, no
 * mailbox selected; else in `mailbox`, selected first, and failing
 * (DP_IMAP_GONE) when its UIDVALIDITY is not `uidvalidity` (0: any).  On
 * failure `why` (DP_ERROR_MSG_MAX bytes) says why in one line. */
dp_imap_status dp_imap_session_command(dp_imap_session *s, const char *mailbox, uint32_t uidvalidity,
                                       const char *command, dp_buf *lines, char *why);

/* Fetches message `uid` of `mailbox` (whose UIDVALIDITY must be
 * `uidvalidity`) into `fd` at its offset, at most `cap` bytes
 * (DP_IMAP_TOO_BIG past it); *size gets the bytes written. */
dp_imap_status dp_imap_session_fetch(dp_imap_session *s, const char *mailbox, uint32_t uidvalidity,
                                     uint32_t uid, int fd, uint64_t cap, uint64_t *size, char *why);

/* The mailbox name as an IMAP quoted string, for a command. */
void dp_imap_session_quote(dp_buf *b, const char *mailbox);

#endif
