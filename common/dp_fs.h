/* dp_fs — small file-system helpers shared by the stages. */
#ifndef DP_FS_H
#define DP_FS_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: creates `dir` and its missing parents.  0, or -1 with errno. */
int dp_fs_mkdir_p(const char *dir);
/* The same, with `dir` itself created with `mode` (parents 0755); a `dir`
 * that exists is left as it is. */
int dp_fs_mkdir_mode(const char *dir, mode_t mode);
/* Creates the directory that will hold `path` (its dirname), if any. */
int dp_fs_mkdir_parent(const char *path);

/* What a file of this mode is, for a message: "a FIFO", "a device",
 * "a socket", "a folder", "a regular file", or "not a file". */
const char *dp_fs_kind(mode_t mode);

/* write(2) until all n bytes are written (EINTR retried).  0, or -1 with errno. */
int dp_fs_write_all(int fd, const void *p, size_t n);
/* Replaces the file at `path` with `data` whole and durably: written to a
 * temporary file beside it (mode 0600), fsync'ed, renamed over it, and
 * the folder fsync'ed; a reader finds the old file or the new one, never
 * half of one.  0, or -1 with errno. */
int dp_fs_replace(const char *path, const void *data, size_t len);
/* Copies everything from `in`'s offset to its end into `out`.  0, or -1
 * with errno. */
int dp_fs_copy_fd(int in, int out);

/* Moves the file `src` to `dst`, creating dst's directory, and never
 * replacing a file: when `dst` exists, the name gets ".1", ".2", ...
 * appended.  Across file systems (rename's EXDEV) the bytes are copied to a
 * temporary name beside the target, fsync'ed, renamed into place, and only
 * then is `src` removed.  Writes the name used into `used` (PATH_MAX bytes)
 * when not NULL.  0, or -1 with errno. */
int dp_fs_move(const char *src, const char *dst, char *used);

#endif
