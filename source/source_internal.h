/* source_internal.h — constructors of the source implementations, for source.c. */
#ifndef DP_SOURCE_INTERNAL_H
#define DP_SOURCE_INTERNAL_H

#include "source.h"

/* A source's own small file: STATE/sources/KIND-HASH.json, HASH of
 * `identity` (what the source reads: a real path, user@host/mailbox, a
 * bucket and prefix), the folder made (0700).  The path to free, or NULL
 * and err.  Written with dp_fs_replace(). */
char *dp_source_state_path(const char *state_dir, const char *kind, const char *identity, dp_error *err);
/* Writes `j` (taken: freed here) as one JSON line into `path`, whole and
 * durably (dp_fs_replace).  0, or -1, said in `log` naming `display`. */
struct json_t;
int dp_source_state_write(const char *path, struct json_t *j, const char *display, dp_log *log);

/* Keeps a rejected input in the quarantine `dir` with its reasons: its
 * bytes from `fd` (a regular file, closed here), or, when they could not
 * be fetched (fd -1, fetch_err), the reasons alone with `gone` when the
 * input is no longer there; said in the source's log.  0, or -1 (err; fetch_err when
 * the fetch failed otherwise). */
int dp_source_quarantine(const char *dir, const dp_input *in, int fd, const dp_error *fetch_err, const char *gone,
                         const dp_error *errors, size_t n_errors, dp_error *err);

/* A file, or a folder walked recursively in name order (names starting
 * with '.' are never read).  Its inputs' keys are "SIZE:MTIME:REALPATH". */
dp_source *dp_file_source_open(const char *path, const dp_source_options *opts, dp_error *err);

/* A Maildir (maildir_source.c). */
dp_source *dp_maildir_source_open(const char *path, const dp_source_options *opts, dp_error *err);
/* An mbox file (mbox_source.c). */
dp_source *dp_mbox_source_open(const char *path, const dp_source_options *opts, dp_error *err);
/* An IMAP mailbox, imap:// or imaps:// (imap_source.c). */
dp_source *dp_imap_source_open(const char *uri, const dp_source_options *opts, dp_error *err);
/* The objects under a prefix of an S3 bucket, s3:// (s3_source.c). */
dp_source *dp_s3_source_open(const char *uri, const dp_source_options *opts, dp_error *err);
/* A Kafka inbox, kafka://HOST:PORT[,...]/TOPIC?group=G (kafka_inbox.c). */
dp_source *dp_kafka_inbox_open(const char *uri, const dp_source_options *opts, dp_error *err);

#endif
