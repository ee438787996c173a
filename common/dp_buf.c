/* dp_buf — see dp_buf.h. */
#include "dp_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dp_buf_reserve(dp_buf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX - b->len - 1) { b->failed = 1; return -1; }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) { b->failed = 1; return -1; }
    b->data = p;
    b->cap = cap;
    return 0;
}

void dp_buf_append(dp_buf *b, const void *p, size_t n) {
    if (dp_buf_reserve(b, n) != 0) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void dp_buf_puts(dp_buf *b, const char *s) { dp_buf_append(b, s, strlen(s)); }

void dp_buf_putc(dp_buf *b, char c) {
    if (dp_buf_reserve(b, 1) != 0) return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void dp_buf_printf(dp_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || dp_buf_reserve(b, (size_t)n) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Two digits per division: a rollup line carries six integers, four of
 * them ten-digit timestamps. */
static const char DIGIT_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Digits in v (1 for 0): from the bit length, then one comparison. */
static unsigned decimal_digits(uint64_t v) {
    static const uint64_t POW10[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
                                       10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
                                       100000000000ull, 1000000000000ull, 10000000000000ull,
                                       100000000000000ull, 1000000000000000ull, 10000000000000000ull,
                                       100000000000000000ull, 1000000000000000000ull,
                                       10000000000000000000ull};
    unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);
    unsigned t = (bits * 1233) >> 12; /* 1233/4096 ~ log10(2): digits - 1, or one more */
    return t + 1 - ((v | 1) < POW10[t]);  /* v | 1: 0 has one digit; a power of ten is even */
}

/* Counts the digits first and writes them in place, from the end: no
 * scratch buffer and no memcpy call of a length known only at run time. */
char *dp_buf_raw_u64(char *o, uint64_t v) {
    unsigned n = decimal_digits(v);
    char *end = o + n, *p = end;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = DIGIT_PAIRS[d + 1];
        *--p = DIGIT_PAIRS[d];
    }
    if (v >= 10) {
        *--p = DIGIT_PAIRS[v * 2 + 1];
        *--p = DIGIT_PAIRS[v * 2];
    } else {
        *--p = (char)('0' + v);
    }
    return end;
}

char *dp_buf_raw_i64(char *o, int64_t v) {
    if (v >= 0) return dp_buf_raw_u64(o, (uint64_t)v);
    *o++ = '-';
    return dp_buf_raw_u64(o, (uint64_t)0 - (uint64_t)v);
}

char *dp_buf_raw_hex(char *o, const void *bytes, size_t n) {
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) {
        *o++ = digits[p[i] >> 4];
        *o++ = digits[p[i] & 15];
    }
    return o;
}

void dp_buf_u64(dp_buf *b, uint64_t v) {
    if (dp_buf_reserve(b, DP_BUF_INT_MAX) != 0) return;
    b->len = (size_t)(dp_buf_raw_u64(b->data + b->len, v) - b->data);
    b->data[b->len] = '\0';
}

void dp_buf_i64(dp_buf *b, int64_t v) {
    if (dp_buf_reserve(b, DP_BUF_INT_MAX) != 0) return;
    b->len = (size_t)(dp_buf_raw_i64(b->data + b->len, v) - b->data);
    b->data[b->len] = '\0';
}

void dp_buf_reset(dp_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void dp_buf_free(dp_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

void *dp_buf_grow_array(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap * 2 : 4;
    while (c < need) {
        if (c > SIZE_MAX / 2) return NULL;
        c *= 2;
    }
    if (elem && c > SIZE_MAX / elem) return NULL;
    void *q = realloc(p, c * elem);
    if (q) *cap = c;
    return q;
}
