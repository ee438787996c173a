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

#endif
