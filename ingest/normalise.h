/* normalise — turning report text into the values users expect.
 *
 * Receivers write the same thing many ways: " Pass", "PASS", "::ffff:1.2.3.4",
 * "<id@host>".  These helpers give each field one canonical form, and say
 * precisely why a value cannot be accepted.  Internal to ingest.
 */
#ifndef DP_NORMALISE_H
#define DP_NORMALISE_H

#include <stddef.h>
#include <stdint.h>

/* Trims ASCII whitespace in place; returns the new start, *n its length. */
char *dp_normalise_trim(char *s, size_t *n);
void dp_normalise_lower(char *s, size_t n);

/* Parses an IPv4 or IPv6 address.  IPv4-mapped IPv6 becomes IPv4.  Writes
 * the canonical text (RFC 5952 for IPv6) to out[46], the address bytes to
 * bytes[16] and the family (4 or 6).  Returns 0, or -1 if invalid. */
int dp_normalise_ip(const char *s, size_t n, char *out, unsigned char *bytes, int *family);

/* Unsigned decimal into uint64; -1 on empty, non-digit or overflow. */
int dp_normalise_u64(const char *s, size_t n, uint64_t *out);
/* Signed decimal into int64 (for Unix times): digits, after a '-' for a
 * negative number; -1 when invalid (a '+' included, as for counts). */
int dp_normalise_i64(const char *s, size_t n, int64_t *out);

#endif
