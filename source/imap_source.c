/* imap_source — the messages of one IMAP mailbox, each an input, by UID.
 *
 * `imap://USER@HOST[:PORT]/MAILBOX[?processed=FOLDER&quarantine=FOLDER]`,
 * or `imaps://` for TLS from the first byte.  The URI (imap_uri.c) holds no
 * secret: the password comes from --imap-password-file or
 * DMARCPIPE_IMAP_PASSWORD, or a bearer token (XOAUTH2) from
 * --imap-token-file; a password written in the URI is refused, as it would
 * show in `ps`.  libcurl does the protocol (imap_session.c).
 *
 * Which messages.  Each listing asks STATUS for the mailbox's UIDVALIDITY
 * and UIDNEXT, then:
 *   - with processed=FOLDER (move mode), UID SEARCH UNDELETED: every
 *     message still there, since a counted one is moved out; one still
 *     there after its acknowledgement is one whose MOVE failed, and is
 *     listed again: the state knows it by key, and the run acknowledges it
 *     again rather than counting it;
 *   - without (seen mode), UID SEARCH UID W+1:*, W the watermark: the
 *     highest UID up to which every message was acknowledged.  The server
 *     answers `N:*` with its highest UID even when that is below N, so the
 *     answer is filtered.  A second run over a mailbox whose messages were
 *     all counted fetches nothing.
 * STATE/sources/imap-HASH.json (HASH of user@host:port/mailbox) keeps
 * {uidvalidity, watermark, rejected}, written whole (temporary file, fsync,
 * rename) when the watermark moves (at most once a second, and at close) or
 * a rejection is recorded.  It only ever lags: a crash costs a longer
 * listing, never a count, since the state knows every counted message by
 * key (remember_inputs).  A UIDVALIDITY other than the stored one means the
 * mailbox was rebuilt: its UIDs now name other messages, so the watermark
 * starts again from 0 and the messages are read again; reports already
 * counted are duplicates to the report dedup.
 *
 * Keys and names: "imap:USER@HOST:PORT/MAILBOX;UIDVALIDITY=V;UID=N", both.
 *
 * Reading.  open() (the engine's workers, several at once) fetches the
 * message by the URL form, UIDVALIDITY included, so a UID is never read in
 * a rebuilt mailbox, into an unlinked temporary file (O_TMPFILE in TMPDIR or
 * /tmp): memory stays flat whatever the size, and GMime can seek.  A message
 * over 1 GiB is refused (the run's --max-report-bytes is not the source's to
 * see; a report's own limits apply when it is read).  libcurl's fetch is
 * `UID FETCH N BODY[]`, which sets \Seen: in seen mode the watermark, not
 * the flag, says what was counted.
 *
 * After the commit (ack, on the run's thread), with the UIDVALIDITY checked
 * first (a rebuilt mailbox: nothing to do):
 *   - accepted, move mode: UID MOVE to the processed folder (without MOVE:
 *     UID COPY, \Deleted, UID EXPUNGE with UIDPLUS; without UIDPLUS the
 *     message is left \Deleted, and that is said once);
 *   - accepted, seen mode: flagged \Seen;
 *   - rejected: moved to the quarantine folder when there is one; else
 *     flagged \Flagged (and \Seen), and in move mode moved to the processed
 *     folder all the same, so the mailbox empties.  A copy with the reasons
 *     also goes to the run's local quarantine, as for files.  Which UIDs
 *     were rejected is kept in the state file, so an acknowledgement a crash
 *     put off to the next run still sends a rejected message to quarantine.
 * Target folders are created (CREATE) the first time they are needed.
 *
 * Following.  libcurl has no IDLE: each next() is one poll (STATUS, then
 * SEARCH when something may be new).  A failure while following (the
 * server away, a connection lost, the login refused) is logged once per
 * outage and the poll returns nothing; the next attempt waits 5 s, then
 * twice as long each time, up to 5 minutes, so a wrong password does not
 * become a storm of logins.  In a batch run the same failure ends the run.
 * A message held back (the server went away while it was fetched) is
 * listed again a minute later, one whose move or flag failed after its
 * commit five minutes later: the state knows it by key, so it is only
 * acknowledged again, never counted again.
 *
 * Memory: per message listed and not yet acknowledged, or acknowledged
 * above the watermark (seen mode) or still in the mailbox (move mode), 4
 * bytes in a sorted array.
 */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_buf.h"
#include "dp_clock.h"
#include "dp_fs.h"
#include "imap_session.h"
#include "imap_state.h"
#include "imap_uidset.h"
#include "imap_uri.h"
#include "ingest.h"
#include "source_internal.h"

#define MESSAGE_CAP ((uint64_t)1 << 30) /* bytes: a message larger is not fetched */
enum {
    MAX_CONNECTIONS = 4, /* per run and mailbox: servers cap them per user (Dovecot: 10) */
    BACKOFF_FIRST = 5,   /* seconds before the first retry of a follower's failed poll */
    BACKOFF_MAX = 300,
    HOLD_RETRY = 60, /* seconds before a held message is listed again by a follower */
};
#define VALIDITY_FRESH 1.0 /* seconds an acknowledgement trusts the last UIDVALIDITY seen */
#define SAVE_EVERY 1.0     /* seconds between two writes of a moving watermark */

/* ---- the source ------------------------------------------------------------------------------ */

typedef struct imap_source {
    dp_source base;
    dp_imap_uri uri;
    dp_imap_session *session;
    char *quarantine_dir, *state_path, *tmp_dir;
    int follow, listed;
    /* the run's thread only */
    uint32_t server_validity; /* UIDVALIDITY as the last STATUS gave it, at server_at */
    double server_at;
    dp_imap_uidset pending; /* listed, not acknowledged */
    dp_imap_uidset done;    /* acknowledged: above the watermark, or (move mode) maybe still there */
    dp_imap_uidset failed;  /* acknowledgement failed (logged): listed again after failed_until */
    dp_imap_uidset held;    /* left for later: listed again after held_until */
    double held_until, failed_until;
    int caps_known, has_move, has_uidplus, said_no_uidplus;
    int processed_made, quarantine_made;
    int outage;
    dp_imap_status outage_kind;
    double retry_at, backoff;
    /* shared with the workers, under lock */
    pthread_mutex_t lock;
    int dirty; /* st changed since the state file was written */
    double saved_at;
    dp_imap_state st; /* the UIDVALIDITY the listing goes by, the watermark (seen mode), rejections */
} imap_source;

/* ---- the state file ------------------------------------------------------------------------- */

/* Writes the state file (imap_state.c), with the lock held.  A failed
 * write is said there, and costs nothing but a longer listing next time. */
static int save_locked(imap_source *s) {
    if (!s->state_path) return 0;
    int rc = dp_imap_state_save(s->state_path, s->uri.key_prefix, s->uri.display, s->base.log, &s->st);
    if (rc == 0) {
        s->dirty = 0;
        s->saved_at = dp_clock_seconds();
    }
    return rc;
}

/* Writes the state file if something in it changed since it was written. */
static void save_if_dirty(imap_source *s) {
    pthread_mutex_lock(&s->lock);
    if (s->dirty) save_locked(s);
    pthread_mutex_unlock(&s->lock);
}

/* ---- keys ------------------------------------------------------------------------------------ */

/* The UIDVALIDITY and UID a key ends with ("...;UIDVALIDITY=V;UID=N").  0, or -1. */
static int parse_key(const char *key, uint32_t *validity, uint32_t *uid) {
    const char *u = strrchr(key, ';');
    if (!u || strncmp(u, ";UID=", 5) != 0) return -1;
    const char *v = u;
    while (v > key && *--v != ';') {
    }
    if (strncmp(v, ";UIDVALIDITY=", 13) != 0) return -1;
    char *end;
    errno = 0;
    unsigned long a = strtoul(v + 13, &end, 10), b;
    if (errno || end != u || a == 0 || a > UINT32_MAX) return -1;
    b = strtoul(u + 5, &end, 10);
    if (errno || *end || b == 0 || b > UINT32_MAX) return -1;
    *validity = (uint32_t)a;
    *uid = (uint32_t)b;
    return 0;
}

/* ---- talking to the server -------------------------------------------------------------------- */

/* The number after `word` in `line` (0 when absent). */
static uint32_t number_after(const char *line, const char *word) {
    const char *p = strstr(line, word);
    if (!p) return 0;
    unsigned long v = strtoul(p + strlen(word), NULL, 10);
    return v <= UINT32_MAX ? (uint32_t)v : 0;
}

/* STATUS: the mailbox's UIDVALIDITY and UIDNEXT (0 when the server did not say). */
static dp_imap_status status_of(imap_source *s, uint32_t *validity, uint32_t *uidnext, char *why) {
    dp_buf cmd = DP_BUF_INIT, lines = DP_BUF_INIT;
    dp_buf_puts(&cmd, "STATUS ");
    dp_imap_session_quote(&cmd, s->uri.mailbox);
    dp_buf_puts(&cmd, " (UIDVALIDITY UIDNEXT)");
    dp_imap_status st = DP_IMAP_LOCAL;
    snprintf(why, DP_ERROR_MSG_MAX, "out of memory");
    if (!cmd.failed) st = dp_imap_session_command(s->session, NULL, 0, cmd.data, &lines, why);
    *validity = *uidnext = 0;
    const char *line = st == DP_IMAP_OK && lines.len ? strstr(lines.data, "* STATUS ") : NULL;
    const char *paren = line ? strrchr(line, '(') : NULL;
    if (paren) {
        *validity = number_after(paren, "UIDVALIDITY ");
        *uidnext = number_after(paren, "UIDNEXT ");
    }
    if (st == DP_IMAP_OK && !*validity) {
        snprintf(why, DP_ERROR_MSG_MAX, "the server's STATUS answer gives no UIDVALIDITY");
        st = DP_IMAP_REFUSED;
    } else if (st == DP_IMAP_REFUSED) {
        snprintf(why, DP_ERROR_MSG_MAX, "the server refused STATUS: is there a mailbox %s?", s->uri.mailbox);
    }
    dp_buf_free(&cmd);
    dp_buf_free(&lines);
    return st;
}

/* The UIDVALIDITY now, from a STATUS at most VALIDITY_FRESH seconds old. */
static dp_imap_status validity_now(imap_source *s, uint32_t *validity, char *why) {
    double now = dp_clock_seconds();
    if (!s->server_validity || now - s->server_at >= VALIDITY_FRESH) {
        uint32_t next;
        dp_imap_status st = status_of(s, &s->server_validity, &next, why);
        if (st != DP_IMAP_OK) return st;
        s->server_at = now;
    }
    *validity = s->server_validity;
    return DP_IMAP_OK;
}

/* Runs a command, built from fmt, in the mailbox of UIDVALIDITY v; its
 * untagged answer in `lines` (emptied first). */
static dp_imap_status in_mailbox(imap_source *s, uint32_t v, dp_buf *lines, char *why, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static dp_imap_status in_mailbox(imap_source *s, uint32_t v, dp_buf *lines, char *why, const char *fmt, ...) {
    char cmd[DP_IMAP_URI_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    dp_buf_reset(lines);
    if (n < 0 || (size_t)n >= sizeof cmd) {
        snprintf(why, DP_ERROR_MSG_MAX, "a command longer than %zu bytes", sizeof cmd);
        return DP_IMAP_LOCAL;
    }
    return dp_imap_session_command(s->session, s->uri.mailbox, v, cmd, lines, why);
}

static int holds(const dp_buf *lines, const char *mark) {
    return lines->len && strstr(lines->data, mark) != NULL;
}

/* What the server can do: MOVE, UIDPLUS. */
static int learn_caps(imap_source *s, char *why) {
    if (s->caps_known) return 0;
    dp_buf lines = DP_BUF_INIT;
    dp_imap_status st = dp_imap_session_command(s->session, NULL, 0, "CAPABILITY", &lines, why);
    if (st == DP_IMAP_OK) {
        const char *c = lines.len ? strstr(lines.data, "* CAPABILITY ") : NULL;
        for (const char *p = c ? c + 13 : NULL; p && *p && *p != '\r' && *p != '\n';) {
            size_t n = strcspn(p, " \r\n");
            if (n == 4 && strncasecmp(p, "MOVE", 4) == 0) s->has_move = 1;
            if (n == 7 && strncasecmp(p, "UIDPLUS", 7) == 0) s->has_uidplus = 1;
            p += n;
            while (*p == ' ')
                p++;
        }
        s->caps_known = 1;
    }
    dp_buf_free(&lines);
    return st == DP_IMAP_OK ? 0 : -1;
}

/* CREATE, once per process: an answer of NO is most often "it exists",
 * and a folder that truly cannot be made fails the move that follows. */
static void make_folder(imap_source *s, const char *folder, int *made) {
    if (*made) return;
    dp_buf cmd = DP_BUF_INIT, lines = DP_BUF_INIT;
    char why[DP_ERROR_MSG_MAX];
    dp_buf_puts(&cmd, "CREATE ");
    dp_imap_session_quote(&cmd, folder);
    if (!cmd.failed && dp_imap_session_command(s->session, NULL, 0, cmd.data, &lines, why) != DP_IMAP_NET)
        *made = 1;
    dp_buf_free(&cmd);
    dp_buf_free(&lines);
}

/* Outcome of an action on one message: 0 done, 1 not there (or the
 * mailbox rebuilt), -1 failed (`why`). */
static int outcome(dp_imap_status st, int there) {
    if (st == DP_IMAP_GONE) return 1;
    if (st != DP_IMAP_OK) return -1;
    return there ? 0 : 1;
}

/* Flags message `uid`: its FETCH answer says it is there. */
static int flag(imap_source *s, uint32_t v, uint32_t uid, const char *flags, char *why) {
    dp_buf lines = DP_BUF_INIT;
    dp_imap_status st = in_mailbox(s, v, &lines, why, "UID STORE %u +FLAGS (%s)", uid, flags);
    int rc = outcome(st, holds(&lines, "FETCH"));
    dp_buf_free(&lines);
    return rc;
}

/* Moves message `uid` to `folder`. */
static int move_to(imap_source *s, uint32_t v, uint32_t uid, const char *folder, int *made, char *why) {
    if (learn_caps(s, why) != 0) return -1;
    make_folder(s, folder, made);
    dp_buf q = DP_BUF_INIT, lines = DP_BUF_INIT;
    dp_imap_session_quote(&q, folder);
    if (q.failed) {
        snprintf(why, DP_ERROR_MSG_MAX, "out of memory");
        dp_buf_free(&q);
        return -1;
    }
    int rc;
    if (s->has_move) {
        /* RFC 6851: a moved message is expunged here, and said so */
        rc = outcome(in_mailbox(s, v, &lines, why, "UID MOVE %u %s", uid, q.data), holds(&lines, " EXPUNGE"));
    } else {
        rc = outcome(in_mailbox(s, v, &lines, why, "UID COPY %u %s", uid, q.data), 1);
        if (rc == 0) rc = flag(s, v, uid, "\\Deleted", why);
        if (rc == 0 && s->has_uidplus) {
            rc = outcome(in_mailbox(s, v, &lines, why, "UID EXPUNGE %u", uid), 1);
        } else if (rc == 0 && !s->said_no_uidplus) {
            s->said_no_uidplus = 1;
            dp_log_warn(s->base.log, "imap", DP_LOG_FIELDS(DP_LOG_STR("source", s->uri.display), DP_LOG_STR("folder", folder)),
                        "dmarcpipe run: %s: the server has neither MOVE nor UIDPLUS: messages copied to %s are left "
                        "flagged \\Deleted, for a mail client or the server to expunge",
                        s->uri.display, folder);
        }
    }
    dp_buf_free(&q);
    dp_buf_free(&lines);
    return rc;
}

/* ---- listing ------------------------------------------------------------------------------------ */

/* The UIDs of the "* SEARCH" lines, into `found`; -1 out of memory. */
static int parse_search(const dp_buf *lines, dp_imap_uidset *found) {
    for (const char *l = lines->len ? lines->data : NULL; l && *l;
         l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, "* SEARCH", 8) != 0) continue;
        const char *p = l + 8;
        while (*p == ' ') {
            char *end;
            unsigned long u = strtoul(p + 1, &end, 10);
            if (end == p + 1) break;
            if (u > 0 && u <= UINT32_MAX && dp_imap_uidset_add(found, (uint32_t)u) < 0) return -1;
            p = end;
        }
    }
    return 0;
}

/* A new UIDVALIDITY: the mailbox was rebuilt, and its UIDs name other
 * messages.  Everything kept about the old ones goes. */
static void new_validity(imap_source *s, uint32_t v) {
    pthread_mutex_lock(&s->lock);
    if (s->st.validity)
        dp_log_warn(s->base.log, "imap",
                    DP_LOG_FIELDS(DP_LOG_STR("source", s->uri.display), DP_LOG_U64("uidvalidity_was", s->st.validity),
                                  DP_LOG_U64("uidvalidity", v)),
                    "dmarcpipe run: %s: UIDVALIDITY changed from %u to %u: the mailbox was rebuilt; its messages "
                    "are read again, and reports already counted are skipped as duplicates",
                    s->uri.display, s->st.validity, v);
    s->st.validity = v;
    s->st.watermark = 0;
    s->st.rejected.n = 0;
    save_locked(s);
    pthread_mutex_unlock(&s->lock);
    s->pending.n = s->done.n = s->failed.n = s->held.n = 0;
}

static int push(imap_source *s, dp_input_list *out, uint32_t v, uint32_t uid) {
    char key[DP_IMAP_URI_MAX + 64];
    snprintf(key, sizeof key, "%s;UIDVALIDITY=%u;UID=%u", s->uri.key_prefix, v, uid);
    dp_input *in = dp_input_new(&s->base, key, key);
    if (!in || dp_imap_uidset_add(&s->pending, uid) < 0) {
        dp_input_free(in);
        return -1;
    }
    return dp_input_list_push(out, in);
}

/* One listing: 0; 1 the mailbox changed under it (list again); -1 and
 * `why`, *kind. */
static int list(imap_source *s, dp_input_list *out, dp_imap_status *kind, char *why) {
    uint32_t v, next;
    dp_imap_status st = status_of(s, &v, &next, why);
    if (st != DP_IMAP_OK) {
        *kind = st;
        return -1;
    }
    s->server_validity = v;
    s->server_at = dp_clock_seconds();
    if (v != s->st.validity) new_validity(s, v);
    dp_buf lines = DP_BUF_INIT;
    dp_imap_uidset found = {0};
    int rc = 0;
    if (s->uri.processed)
        st = in_mailbox(s, v, &lines, why, "UID SEARCH UNDELETED");
    else if (!next || next - 1 > s->st.watermark)
        st = in_mailbox(s, v, &lines, why, "UID SEARCH UID %u:*", s->st.watermark + 1);
    if (st == DP_IMAP_GONE)
        rc = 1;
    else if (st != DP_IMAP_OK)
        rc = -1, *kind = st;
    else if (parse_search(&lines, &found) != 0)
        rc = -1, *kind = DP_IMAP_LOCAL, snprintf(why, DP_ERROR_MSG_MAX, "out of memory");
    dp_buf_free(&lines);
    if (rc == 0) {
        if (s->uri.processed) {
            /* what left the mailbox need not be remembered */
            dp_imap_uidset_keep(&s->done, &found);
            dp_imap_uidset_keep(&s->failed, &found);
        }
        if (s->held.n && dp_clock_seconds() >= s->held_until) s->held.n = 0;
        if (s->failed.n && dp_clock_seconds() >= s->failed_until) s->failed.n = 0;
        s->pending.n = 0;
        for (size_t i = 0; rc == 0 && i < found.n; i++) {
            uint32_t u = found.v[i];
            if (!s->uri.processed && u <= s->st.watermark)
                continue; /* N:* gives the highest UID, even below N */
            if (dp_imap_uidset_has(&s->done, u) || dp_imap_uidset_has(&s->failed, u) ||
                dp_imap_uidset_has(&s->held, u))
                continue;
            if (push(s, out, v, u) != 0)
                rc = -1, *kind = DP_IMAP_LOCAL, snprintf(why, DP_ERROR_MSG_MAX, "out of memory");
        }
    }
    free(found.v);
    return rc;
}

/* Says a follower's failed poll, once per outage (and again when its kind
 * changes), and sets when to try again. */
static void outage(imap_source *s, dp_imap_status kind, const char *msg) {
    if (!s->outage || kind != s->outage_kind)
        dp_log_warn(s->base.log, "imap",
                    DP_LOG_FIELDS(DP_LOG_STR("source", s->uri.display), DP_LOG_STR("error", msg),
                                  DP_LOG_F64("retry_in_s", s->backoff)),
                    "dmarcpipe run: %s; trying again in %.0f s, then less and less often (up to every %d s)", msg,
                    s->backoff, BACKOFF_MAX);
    s->outage = 1;
    s->outage_kind = kind;
    s->retry_at = dp_clock_seconds() + s->backoff;
    s->backoff = s->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : s->backoff * 2;
}

/* The one line that says why a listing failed (cut to DP_ERROR_MSG_MAX). */
static void listing_error(imap_source *s, dp_imap_status kind, const char *why, char *msg) {
    const char *what = why, *pre = "";
    if (kind == DP_IMAP_LOGIN) {
        pre = "login refused: ";
        what = s->uri.xoauth2 ? "the token was not accepted (expired, revoked, or not for this user)"
                              : "wrong user name or password";
    } else if (kind == DP_IMAP_NET) {
        pre = "cannot reach the server: ";
    }
    if (snprintf(msg, DP_ERROR_MSG_MAX, "%s: %s%s", s->uri.display, pre, what) >= DP_ERROR_MSG_MAX)
        msg[DP_ERROR_MSG_MAX - 1] = '\0';
}

static int imap_next(dp_source *src, dp_input_list *out, dp_error *err) {
    imap_source *s = (imap_source *)src;
    if (!s->follow && s->listed) return 0;
    save_if_dirty(s);
    if (s->follow && s->outage && dp_clock_seconds() < s->retry_at) return 0;
    char why[DP_ERROR_MSG_MAX], msg[DP_ERROR_MSG_MAX];
    dp_imap_status kind = DP_IMAP_OK;
    size_t before = out->n;
    int rc = list(s, out, &kind, why);
    if (rc == 1) rc = list(s, out, &kind, why); /* rebuilt between STATUS and SEARCH: once more */
    if (rc == 1)
        rc = -1, kind = DP_IMAP_NET,
        snprintf(why, DP_ERROR_MSG_MAX, "the mailbox keeps changing its UIDVALIDITY");
    if (rc == 0) {
        s->listed = 1;
        if (s->outage)
            dp_log_info(s->base.log, "imap", DP_LOG_FIELDS(DP_LOG_STR("source", s->uri.display)),
                        "dmarcpipe run: %s: the server answers again", s->uri.display);
        s->outage = 0;
        s->backoff = BACKOFF_FIRST;
        return 0;
    }
    /* what this listing pushed before it failed goes */
    while (out->n > before)
        dp_input_free(out->v[--out->n]);
    if (kind == DP_IMAP_LOCAL) return dp_error_set(err, DP_ERR_NOMEM, "%s: %s", s->uri.display, why);
    listing_error(s, kind, why, msg);
    if (!s->follow) return dp_error_set(err, DP_ERR_IO, "%s", msg);
    outage(s, kind, msg);
    return 0;
}

/* ---- reading and rejecting ---------------------------------------------------------------------- */

/* A new unlinked temporary file, read-write; -1 and errno. */
static int temp_file(const char *dir) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.dmarcpipe-imap-XXXXXX", dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
    return fd;
}

/* The message in a temporary file, at its start: the descriptor, or -1
 * and err (DP_ERR_INPUT: not in the mailbox, or the mailbox rebuilt;
 * DP_ERR_LIMIT: too large; DP_ERR_IO: the server or the local disk, for
 * a later run). */
static int fetch(imap_source *s, const dp_input *in, dp_error *err) {
    uint32_t v, uid;
    if (parse_key(in->key, &v, &uid) != 0) {
        dp_error_set(err, DP_ERR_INPUT, "not a message of this mailbox");
        dp_error_set_where(err, in->name);
        return -1;
    }
    int fd = temp_file(s->tmp_dir);
    if (fd < 0) {
        dp_error_set(err, DP_ERR_IO, "cannot create a temporary file in %s: %s", s->tmp_dir, strerror(errno));
        dp_error_set_where(err, in->name);
        return -1;
    }
    char why[DP_ERROR_MSG_MAX];
    uint64_t size = 0;
    dp_imap_status st =
        dp_imap_session_fetch(s->session, s->uri.mailbox, v, uid, fd, MESSAGE_CAP, &size, why);
    if (st == DP_IMAP_OK && lseek(fd, 0, SEEK_SET) != 0) {
        st = DP_IMAP_LOCAL;
        snprintf(why, sizeof why, "cannot rewind the local copy: %s", strerror(errno));
    }
    if (st == DP_IMAP_OK) return fd;
    close(fd);
    if (st == DP_IMAP_GONE)
        dp_error_set(err, DP_ERR_INPUT,
                     "no longer in the mailbox (moved or expunged, or the mailbox was rebuilt)");
    else if (st == DP_IMAP_TOO_BIG)
        dp_error_set(err, DP_ERR_LIMIT, "the message is larger than %llu bytes: not fetched",
                     (unsigned long long)MESSAGE_CAP);
    else if (st == DP_IMAP_LOGIN)
        dp_error_set(err, DP_ERR_IO, "cannot fetch: login refused");
    else
        dp_error_set(err, DP_ERR_IO, "cannot fetch: %s", why);
    dp_error_set_where(err, in->name);
    return -1;
}

static int imap_open(dp_source *src, const dp_input *in, dp_error *err) {
    imap_source *s = (imap_source *)src;
    int fd = fetch(s, in, err);
    uint32_t v, uid;
    if (fd >= 0 && parse_key(in->key, &v, &uid) == 0) {
        /* read again (a run that died before its commit): a new verdict comes */
        pthread_mutex_lock(&s->lock);
        if (v == s->st.validity && dp_imap_uidset_del(&s->st.rejected, uid)) save_locked(s);
        pthread_mutex_unlock(&s->lock);
    }
    return fd;
}

static int imap_reject(dp_source *src, const dp_input *in, const dp_error *errors, size_t n_errors,
                       dp_error *err) {
    imap_source *s = (imap_source *)src;
    uint32_t v, uid;
    if (parse_key(in->key, &v, &uid) != 0) return 0;
    if (s->quarantine_dir) {
        char qpath[PATH_MAX];
        dp_error ferr;
        int fd = fetch(s, in, &ferr), kept;
        if (fd >= 0) {
            kept = dp_quarantine_fd(s->quarantine_dir, in->name, fd, errors, n_errors, qpath, err);
            close(fd);
        } else if (ferr.kind == DP_ERR_INPUT) {
            kept = dp_quarantine_reason(s->quarantine_dir, in->name, "no longer in the mailbox: not copied",
                                        errors, n_errors, qpath, err);
        } else if (ferr.kind == DP_ERR_LIMIT) {
            kept = dp_quarantine_reason(s->quarantine_dir, in->name, "larger than 1 GiB: not copied", errors,
                                        n_errors, qpath, err);
        } else {
            *err = ferr;
            return -1;
        }
        if (kept != 0) return -1;
        char a[DP_ERROR_TEXT_MAX], b[DP_ERROR_TEXT_MAX];
        dp_log_info(s->base.log, "imap",
                    DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("quarantine", qpath),
                                  DP_LOG_STR("error", n_errors ? errors[0].msg : NULL)),
                    "dmarcpipe: %s: quarantined as %s", dp_error_text(in->name, a), dp_error_text(qpath, b));
    }
    /* kept, so that an acknowledgement a crash puts off to the next run
     * still sends it to quarantine; a write that fails is said, and the
     * rejection stands */
    pthread_mutex_lock(&s->lock);
    int added = v == s->st.validity ? dp_imap_uidset_add(&s->st.rejected, uid) : 0;
    if (added > 0) save_locked(s);
    pthread_mutex_unlock(&s->lock);
    if (added < 0) return dp_error_set(err, DP_ERR_NOMEM, "%s: out of memory", s->uri.display);
    return 0;
}

/* ---- acknowledging -------------------------------------------------------------------------------- */

/* The watermark (seen mode) up to the highest acknowledged UID below
 * every UID still open: listed and not acknowledged, failed or held. */
static void advance(imap_source *s) {
    uint32_t low = dp_imap_uidset_min(&s->pending);
    if (dp_imap_uidset_min(&s->failed) < low) low = dp_imap_uidset_min(&s->failed);
    if (dp_imap_uidset_min(&s->held) < low) low = dp_imap_uidset_min(&s->held);
    uint32_t w = s->st.watermark;
    for (size_t i = 0; i < s->done.n && s->done.v[i] < low; i++)
        w = s->done.v[i];
    if (w == s->st.watermark) return;
    pthread_mutex_lock(&s->lock);
    s->st.watermark = w;
    s->dirty = 1;
    if (dp_clock_seconds() - s->saved_at >= SAVE_EVERY) save_locked(s);
    pthread_mutex_unlock(&s->lock);
    dp_imap_uidset_drop_upto(&s->done, w);
}

static int imap_ack(dp_source *src, const dp_input *in) {
    imap_source *s = (imap_source *)src;
    uint32_t v, uid, now_v;
    if (parse_key(in->key, &v, &uid) != 0) return 1;
    char why[DP_ERROR_MSG_MAX];
    const char *folder = s->uri.processed; /* where it goes; NULL: it is flagged */
    int rc, rejected = 0;
    if (validity_now(s, &now_v, why) != DP_IMAP_OK) {
        rc = -1;
    } else if (now_v != v) {
        return 1; /* rebuilt: its UIDs name other messages now */
    } else {
        pthread_mutex_lock(&s->lock);
        rejected = dp_imap_uidset_has(&s->st.rejected, uid);
        pthread_mutex_unlock(&s->lock);
        int *made = &s->processed_made;
        if (rejected && s->uri.quarantine) {
            folder = s->uri.quarantine;
            made = &s->quarantine_made;
            rc = move_to(s, v, uid, folder, made, why);
        } else if (rejected) {
            rc = flag(s, v, uid, "\\Seen \\Flagged", why);
            if (rc == 0 && folder) rc = move_to(s, v, uid, folder, made, why);
        } else {
            rc = folder ? move_to(s, v, uid, folder, made, why) : flag(s, v, uid, "\\Seen", why);
        }
    }
    if (rc < 0) {
        char a[DP_ERROR_TEXT_MAX];
        dp_log_warn(s->base.log, "imap",
                    DP_LOG_FIELDS(DP_LOG_STR("input", in->name), DP_LOG_STR("folder", folder), DP_LOG_STR("error", why)),
                    "dmarcpipe run: %s: counted, but cannot be %s%s: %s", dp_error_text(in->name, a),
                    folder ? "moved to " : "flagged", folder ? folder : "", why);
    }
    if (v != s->st.validity) return rc;
    if (rc >= 0 && rejected) {
        pthread_mutex_lock(&s->lock);
        if (dp_imap_uidset_del(&s->st.rejected, uid)) s->dirty = 1;
        pthread_mutex_unlock(&s->lock);
    }
    dp_imap_uidset_del(&s->pending, uid);
    if (rc < 0) {
        s->failed_until = dp_clock_seconds() + BACKOFF_MAX;
        dp_imap_uidset_add(&s->failed, uid); /* out of memory: listed again at the next poll */
        return rc;
    }
    if (dp_imap_uidset_add(&s->done, uid) >= 0 && !s->uri.processed) advance(s);
    return rc;
}

static void imap_hold(dp_source *src, const dp_input *in) {
    imap_source *s = (imap_source *)src;
    uint32_t v, uid;
    if (parse_key(in->key, &v, &uid) != 0 || v != s->st.validity) return;
    dp_imap_uidset_del(&s->pending, uid);
    if (dp_imap_uidset_add(&s->held, uid) >= 0) s->held_until = dp_clock_seconds() + HOLD_RETRY;
}

/* ---- the source ---------------------------------------------------------------------------------- */

static void imap_destroy(dp_source *src) {
    imap_source *s = (imap_source *)src;
    if (s->session) save_if_dirty(s);
    dp_imap_session_free(s->session);
    dp_imap_uri_free(&s->uri);
    free(s->quarantine_dir);
    free(s->state_path);
    free(s->tmp_dir);
    free(s->pending.v);
    free(s->done.v);
    free(s->failed.v);
    free(s->held.v);
    free(s->st.rejected.v);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const dp_source_ops IMAP_OPS = {
    .name = "imap",
    .next = imap_next,
    .open = imap_open,
    .reject = imap_reject,
    .ack = imap_ack,
    .hold = imap_hold,
    .destroy = imap_destroy,
};

dp_source *dp_imap_source_open(const char *uri, const dp_source_options *opts, dp_error *err) {
    imap_source *s = calloc(1, sizeof *s);
    if (!s) {
        dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->base.ops = &IMAP_OPS;
    s->base.log = opts ? opts->log : NULL;
    s->base.remember_inputs = 1; /* moved or flagged after the commit: a crash between must find it counted */
    s->follow = opts->follow;
    s->backoff = BACKOFF_FIRST;
    char *secret = NULL;
    int rc = dp_imap_uri_parse(uri, &s->uri, err);
    if (rc == 0) rc = dp_imap_uri_secret(&s->uri, opts->password_file, opts->token_file, &secret, err);
    const char *tmp = getenv("TMPDIR");
    if (rc == 0 && (!(s->tmp_dir = strdup(tmp && *tmp ? tmp : "/tmp")) ||
                    (opts->quarantine_dir && !(s->quarantine_dir = strdup(opts->quarantine_dir)))))
        rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    if (rc == 0 && opts->state_dir &&
        !(s->state_path = dp_source_state_path(opts->state_dir, "imap", s->uri.key_prefix, err)))
        rc = -1;
    if (rc == 0) {
        dp_imap_account a = {s->uri.host,
                             s->uri.port,
                             s->uri.implicit_tls,
                             !s->uri.loopback && !s->uri.implicit_tls,
                             s->uri.user,
                             s->uri.xoauth2 ? NULL : secret,
                             s->uri.xoauth2 ? opts->token_file : NULL,
                             s->uri.cafile,
                             MAX_CONNECTIONS};
        if (!(s->session = dp_imap_session_new(&a, err))) rc = -1;
    }
    dp_imap_uri_wipe(secret);
    if (rc == 0 && s->state_path)
        dp_imap_state_load(s->state_path, s->uri.key_prefix, s->uri.display, s->base.log, &s->st);
    if (rc != 0) {
        imap_destroy(&s->base);
        return NULL;
    }
    return &s->base;
}
