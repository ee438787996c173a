/* dp_json — writing JSON text into a dp_buf.
 *
 * dmarcpipe writes one JSON object per line (NDJSON) at high rates, so it
 * appends text directly rather than building a tree.  String escaping is
 * total: any byte sequence becomes valid JSON.  Control characters are
 * escaped, and bytes that are not valid UTF-8 become U+FFFD, because report
 * text comes from strangers and one bad byte must not poison a warehouse load.
 */
#ifndef DP_JSON_H
#define DP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "dp_buf.h"

/* The raw writer, for hot paths that reserve room once for a whole line
 * (dp_buf_reserve) and then write through a pointer: it writes at `o` and
 * returns the end of what it wrote, adding no NUL.  A string of n bytes
 * needs at most DP_JSON_STRN_MAX(n) bytes.  (Integers: dp_buf_raw_u64.) */
#define DP_JSON_STRN_MAX(n) (6 * (size_t)(n) + 2)
char *dp_json_put_strn(char *o, const char *s, size_t n);

/* A quoted, escaped JSON string of s[0..n). */
void dp_json_strn(dp_buf *b, const char *s, size_t n);
/* A quoted string, or `null` when s is NULL. */
void dp_json_str(dp_buf *b, const char *s);

/* Object member helpers: write `"key":` preceded by a comma unless it is
 * the first member.  `first` is the caller's per-object flag.  Keys are
 * written as they are: pass literals, never text from input. */
void dp_json_key(dp_buf *b, int *first, const char *key);
void dp_json_kv_str(dp_buf *b, int *first, const char *key, const char *s);
void dp_json_kv_u64(dp_buf *b, int *first, const char *key, uint64_t v);
void dp_json_kv_i64(dp_buf *b, int *first, const char *key, int64_t v);

/* Whether s[0..n) is valid UTF-8 (RFC 3629). */
int dp_json_is_utf8(const char *s, size_t n);
/* A member whose value is bytes that may not be text, a path: as a string
 * when it is valid UTF-8, else "hex:" and its bytes in hex, so that it is
 * never changed (U+FFFD would lose the name a file can be found by). */
void dp_json_kv_bytes(dp_buf *b, int *first, const char *key, const char *s);

#endif
