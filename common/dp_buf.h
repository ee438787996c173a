/* dp_buf — a growable byte buffer with explicit ownership.
 *
 * The owner of a dp_buf owns `data`; dp_buf_free releases it.  Appends never
 * fail loudly: an allocation failure sets the sticky `failed` flag and later
 * appends become no-ops, so a writer can build a whole line and check once,
 * the way stdio's ferror works.  `data` is always NUL-terminated when len>0
 * or after any append, so it can be handed to C string functions.
 */
#ifndef DP_BUF_H
#define DP_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct dp_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed;     /* an allocation failed; contents are incomplete */
} dp_buf;

#define DP_BUF_INIT {NULL, 0, 0, 0}

/* Makes room for `extra` more bytes (plus a terminator). 0 on success. */
int dp_buf_reserve(dp_buf *b, size_t extra);
void dp_buf_append(dp_buf *b, const void *p, size_t n);
void dp_buf_puts(dp_buf *b, const char *s);
void dp_buf_putc(dp_buf *b, char c);
void dp_buf_printf(dp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dp_buf_u64(dp_buf *b, uint64_t v);
void dp_buf_i64(dp_buf *b, int64_t v);
/* The same decimal text written at `o`, for callers that reserved room
 * for a whole line first: returns the end of what was written, adding no
 * NUL; at most DP_BUF_INT_MAX bytes. */
#define DP_BUF_INT_MAX 20
char *dp_buf_raw_u64(char *o, uint64_t v);
char *dp_buf_raw_i64(char *o, int64_t v);
/* n bytes as 2n lowercase hex digits at `o` (digests); no NUL. */
char *dp_buf_raw_hex(char *o, const void *bytes, size_t n);
/* Makes the array `p` of `*cap` elements of `elem` bytes hold at least
 * `need`, doubling: the array (moved, perhaps), `*cap` updated; NULL when
 * out of memory or the size would overflow, `p` and `*cap` then unchanged. */
void *dp_buf_grow_array(void *p, size_t *cap, size_t need, size_t elem);
/* Empties the buffer but keeps its memory for reuse. */
void dp_buf_reset(dp_buf *b);
void dp_buf_free(dp_buf *b);

#endif
