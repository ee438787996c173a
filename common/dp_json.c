/* dp_json — see dp_json.h. */
#include "dp_json.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is invalid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF, as
 * RFC 3629 requires, so the output is valid for every strict JSON parser. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

int dp_json_is_utf8(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len(s + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

void dp_json_kv_bytes(dp_buf *b, int *first, const char *key, const char *s) {
    if (!s || dp_json_is_utf8(s, strlen(s))) {
        dp_json_kv_str(b, first, key, s);
        return;
    }
    dp_json_key(b, first, key);
    size_t n = strlen(s);
    if (dp_buf_reserve(b, 2 * n + 8) != 0) return;
    char *o = b->data + b->len;
    memcpy(o, "\"hex:", 5);
    o = dp_buf_raw_hex(o + 5, s, n);
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

/* 1 for the bytes a JSON string may hold as they are. */
static const unsigned char SAFE[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),                                     /* 0x00-0x1f: control */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,     /* 0x20-0x2f: '"' */
    R16(1), R16(1),                                     /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,     /* 0x50-0x5f: '\\' */
    R16(1), R16(1),                                     /* 0x60-0x7f */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* UTF-8: checked */
#undef R16
};

/* 1 if none of the 8 bytes in x needs a look: no control character, no
 * '"' or '\\', nothing above 0x7f.  Bit tricks on the whole word (each
 * test is nonzero in some byte's high bit exactly when a byte matches);
 * byte order does not matter, every byte is treated alike. */
static int word_is_plain(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t below_space = (x - 0x20 * ones) & ~x;
    uint64_t q = x ^ ('"' * ones), quote = (q - ones) & ~q;
    uint64_t b = x ^ ('\\' * ones), backslash = (b - ones) & ~b;
    return ((x | below_space | quote | backslash) & highs) == 0;
}

char *dp_json_put_strn(char *o, const char *str, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        /* Most text is plain ASCII with nothing to escape: such runs are
         * copied a word at a time (the output has room: a byte in is at
         * least a byte out), then byte by byte up to what needs care.
         * Writing millions of rollup lines is mostly this loop. */
        size_t run_start = i;
        uint64_t x;
        while (n - i >= 8) {
            memcpy(&x, s + i, 8);
            if (!word_is_plain(x)) break;
            memcpy(o, &x, 8);
            o += 8;
            i += 8;
        }
        /* A tail shorter than a word, after a plain run of a word or more:
         * the string's last 8 bytes, which overlap what was just copied
         * as it is, are checked and written as one word. */
        if (i < n && n - i < 8 && n - run_start >= 8) {
            memcpy(&x, s + n - 8, 8);
            if (word_is_plain(x)) {
                memcpy(o - (i - (n - 8)), &x, 8);
                o += n - i;
                break;
            }
        }
        while (i < n && SAFE[s[i]]) *o++ = (char)s[i++];
        if (i == n) break;
        unsigned char c = s[i];
        if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default:
                *o++ = 'u'; *o++ = '0'; *o++ = '0';
                *o++ = hex[c >> 4]; *o++ = hex[c & 15];
            }
            i++;
            continue;
        }
        size_t len = utf8_seq_len(s + i, n - i);
        if (len == 0) {
            /* U+FFFD REPLACEMENT CHARACTER, 3 bytes: fits the 6-byte budget. */
            *o++ = (char)0xEF; *o++ = (char)0xBF; *o++ = (char)0xBD;
            i++;
        } else {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        }
    }
    *o++ = '"';
    return o;
}

void dp_json_strn(dp_buf *b, const char *str, size_t n) {
    /* Worst case is 6 output bytes per input byte (\u00XX). */
    if (n > (SIZE_MAX - 2) / 6 || dp_buf_reserve(b, DP_JSON_STRN_MAX(n)) != 0) return;
    char *o = dp_json_put_strn(b->data + b->len, str, n);
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void dp_json_str(dp_buf *b, const char *s) {
    if (!s) dp_buf_append(b, "null", 4);
    else dp_json_strn(b, s, strlen(s));
}

void dp_json_key(dp_buf *b, int *first, const char *key) {
    /* Keys are the program's own ASCII literals, never input: they need no
     * escaping, and skipping it is a third of the cost of a rollup line. */
    size_t n = strlen(key);
    if (dp_buf_reserve(b, n + 4) != 0) return;
    char *o = b->data + b->len;
    if (!*first) *o++ = ',';
    *first = 0;
    *o++ = '"';
    memcpy(o, key, n);
    o += n;
    *o++ = '"';
    *o++ = ':';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void dp_json_kv_str(dp_buf *b, int *first, const char *key, const char *s) {
    dp_json_key(b, first, key);
    dp_json_str(b, s);
}

void dp_json_kv_u64(dp_buf *b, int *first, const char *key, uint64_t v) {
    dp_json_key(b, first, key);
    dp_buf_u64(b, v);
}

void dp_json_kv_i64(dp_buf *b, int *first, const char *key, int64_t v) {
    dp_json_key(b, first, key);
    dp_buf_i64(b, v);
}
