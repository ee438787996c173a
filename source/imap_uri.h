/* imap_uri.h — what an imap:// SOURCE names, and where its secret comes from
 * (internal to source/: imap_source.c's settings). */
#ifndef DP_IMAP_URI_H
#define DP_IMAP_URI_H

#include "dp_error.h"

#define DP_IMAP_URI_MAX 2048 /* bytes of a URI, and of a mailbox's name in logs and keys */

typedef struct dp_imap_uri {
    int implicit_tls; /* imaps:// */
    int loopback;     /* the host is this machine: a login in clear may stay in it */
    int xoauth2;      /* a bearer token from a file, not a password */
    int port;
    char *user, *host; /* decoded; an IPv6 host keeps its brackets */
    char *mailbox;     /* decoded; INBOX whatever its case */
    char *processed;   /* ?processed=FOLDER, or NULL */
    char *quarantine;  /* ?quarantine=FOLDER, or NULL */
    char *cafile;      /* ?cafile=PEM: the CAs a server's certificate is checked with, or NULL */
    char *display;     /* "imap://USER@HOST:PORT/MAILBOX", for logs: no secret */
    char *key_prefix;  /* "imap:USER@HOST:PORT/MAILBOX", what keys start with */
} dp_imap_uri;

/* Parses `uri`: 0, or -1 and err (a password in it, an unknown parameter,
 * a name IMAP cannot carry).  Error messages show the URI with any
 * password masked. */
int dp_imap_uri_parse(const char *uri, dp_imap_uri *out, dp_error *err);

/* The account's secret: with `token_file`, XOAUTH2 (u->xoauth2 set; the
 * file must hold a token now, and is read again at every login: *password
 * stays NULL); else the first line of `password_file`, else the
 * environment's DMARCPIPE_IMAP_PASSWORD, into *password (malloc'd; wipe it
 * with dp_imap_uri_wipe).  0, or -1 and err saying what to give. */
int dp_imap_uri_secret(dp_imap_uri *u, const char *password_file, const char *token_file, char **password,
                       dp_error *err);
/* Overwrites a secret, then frees it. */
void dp_imap_uri_wipe(char *secret);
void dp_imap_uri_free(dp_imap_uri *u);

#endif
