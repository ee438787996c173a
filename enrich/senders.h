/* senders — the known-senders map: a domain to a service name and type.
 *
 * The built-in map is known_senders.tsv, compiled into the program (CMake
 * turns it into dp_known_senders_data_text); the user's files (--senders)
 * are read after it, and an entry of theirs replaces the built-in one for
 * the same domain (of several files, the later wins).  A line is
 * DOMAIN<TAB>SERVICE<TAB>TYPE[<TAB>SOURCE-URL]; '#' comments and blank
 * lines are skipped.  A name matches DOMAIN when it is DOMAIN or a name
 * under it, on label boundaries, case-insensitively, and the longest
 * matching DOMAIN wins.  The map is read-only once loaded: matches are safe
 * from any number of threads.
 */
#ifndef DP_SENDERS_H
#define DP_SENDERS_H

#include <stddef.h>

#include "dp_error.h"

/* known_senders.tsv's text, NUL-terminated (generated at build time). */
extern const char dp_known_senders_data_text[];

typedef struct dp_senders dp_senders;

typedef struct dp_senders_entry {
    const char *service;
    const char *type;     /* esp, hosted_mail, marketing, crm, helpdesk, forwarder, security_gateway, other */
} dp_senders_entry;

dp_senders *dp_senders_new(void);
/* Adds the entries of `text` (named `where` in errors), replacing those of
 * the same domain.  0, or -1 with err set to WHERE:LINE and the reason;
 * nothing of a failed text is added. */
int dp_senders_load_text(dp_senders *s, const char *text, size_t len, const char *where, dp_error *err);
/* The same, from a file. */
int dp_senders_load_file(dp_senders *s, const char *path, dp_error *err);
/* The entry of the longest DOMAIN matching name, or NULL.  The entry lives
 * as long as s. */
const dp_senders_entry *dp_senders_match(const dp_senders *s, const char *name);
size_t dp_senders_count(const dp_senders *s);
void dp_senders_free(dp_senders *s);

#endif
