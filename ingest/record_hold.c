/* record_hold — records held back until their report's header is known.
 *
 * A report's header (<report_metadata> and <policy_published>) usually
 * comes before its records, and then each record leaves the parser as soon
 * as it closes.  The order of the sections carries no meaning, though, and
 * some reports put the header last.  Their records cannot leave before the
 * header: report_begin() must see it first (it may skip the report as a
 * duplicate), and every record is handed out with its report.  So they
 * wait here, in order, until the header is complete.
 *
 * Memory stays bounded whatever the size of the report: the records are
 * kept serialised (the strings and a few integers, no pointers), up to
 * `mem_max` bytes in memory; past that, the buffer is written to an unlinked
 * temporary file (O_TMPFILE in $TMPDIR or /tmp, else mkstemp then unlink),
 * so nothing is left behind however the process ends, and a 500 MB report
 * with its policy at the end costs disk, not 500 MB of RAM.  Reading back
 * reuses the same buffer, one record (at most max_record_bytes of text) at
 * a time.
 *
 * A record's form: u32 length of what follows; ip_family (u8), ip (16
 * bytes), count (u64), in host order (the file never leaves the process);
 * then source_ip, disposition, dkim, spf, header_from, envelope_from and
 * envelope_to as strings; u32 counts of overrides, dkim and spf results;
 * then their strings.  A string is a u32 (0: absent, else its length plus
 * one) and its bytes with their NUL, so reading one back is a pointer into
 * the buffer.
 */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest_internal.h"

void dp_record_hold_init(dp_record_hold *h, size_t mem_max) {
    memset(h, 0, sizeof *h);
    h->mem_max = mem_max ? mem_max : 1;
    h->fd = -1;
}

void dp_record_hold_free(dp_record_hold *h) {
    if (h->fd >= 0) close(h->fd);
    dp_buf_free(&h->buf);
    free(h->ov);
    free(h->dk);
    free(h->sp);
    dp_record_hold_init(h, h->mem_max);
}

/* ---- writing ----------------------------------------------------------- */

static size_t str_size(const char *s) { return 4 + (s ? strlen(s) + 1 : 0); }

static char *put_u32(char *o, uint32_t v) {
    memcpy(o, &v, 4);
    return o + 4;
}

static char *put_str(char *o, const char *s) {
    if (!s) return put_u32(o, 0);
    size_t n = strlen(s) + 1;
    o = put_u32(o, (uint32_t)n);
    memcpy(o, s, n);
    return o + n;
}

static int open_spill(dp_error *err) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    int fd = -1;
#ifdef O_TMPFILE
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
    if (fd < 0) {
        /* file systems without O_TMPFILE: a private name, unlinked at once */
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/.dmarcpipe-held-XXXXXX", dir);
        if (n > 0 && (size_t)n < sizeof path) {
            fd = mkostemp(path, O_CLOEXEC);
            if (fd >= 0) unlink(path);
        } else {
            errno = ENAMETOOLONG;
        }
    }
    if (fd < 0)
        dp_error_set(err, DP_ERR_IO, "holding records until the report's header: cannot create a temporary file in %.200s: %s",
                     dir, strerror(errno));
    return fd;
}

static int write_all(int fd, const char *p, size_t n, dp_error *err) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            dp_error_set(err, DP_ERR_IO, "holding records until the report's header: writing the temporary file: %s",
                         w < 0 ? strerror(errno) : "nothing written");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Moves what the buffer holds to the temporary file (created on first
 * need) and empties the buffer. */
static int spill(dp_record_hold *h, dp_error *err) {
    if (h->buf.len == 0) return 0;
    if (h->fd < 0 && (h->fd = open_spill(err)) < 0) return -1;
    if (write_all(h->fd, h->buf.data, h->buf.len, err) != 0) return -1;
    h->spilled += h->buf.len;
    dp_buf_reset(&h->buf);
    return 0;
}

int dp_record_hold_put(dp_record_hold *h, const dp_record *rec, dp_error *err) {
    size_t n = 1 + 16 + 8 + 12;
    n += str_size(rec->source_ip) + str_size(rec->disposition) + str_size(rec->dkim) + str_size(rec->spf) +
         str_size(rec->header_from) + str_size(rec->envelope_from) + str_size(rec->envelope_to);
    for (size_t i = 0; i < rec->n_overrides; i++)
        n += str_size(rec->overrides[i].type) + str_size(rec->overrides[i].comment);
    for (size_t i = 0; i < rec->n_dkim_auth; i++) {
        const dp_dkim_auth *d = &rec->dkim_auth[i];
        n += str_size(d->domain) + str_size(d->selector) + str_size(d->result) + str_size(d->human_result);
    }
    for (size_t i = 0; i < rec->n_spf_auth; i++) {
        const dp_spf_auth *s = &rec->spf_auth[i];
        n += str_size(s->domain) + str_size(s->scope) + str_size(s->result) + str_size(s->human_result);
    }
    if (n > UINT32_MAX - 4) return dp_error_set(err, DP_ERR_LIMIT, "a held record is too large");
    /* +1: dp_buf's NUL, so that the buffer never grows past mem_max */
    if (h->buf.len && h->buf.len + 4 + n + 1 > h->mem_max && spill(h, err) != 0) return -1;
    if (dp_buf_reserve(&h->buf, 4 + n) != 0)
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory holding a record");
    char *o = h->buf.data + h->buf.len;
    o = put_u32(o, (uint32_t)n);
    *o++ = (char)rec->ip_family;
    memcpy(o, rec->ip, 16);
    o += 16;
    memcpy(o, &rec->count, 8);
    o += 8;
    o = put_str(o, rec->source_ip);
    o = put_str(o, rec->disposition);
    o = put_str(o, rec->dkim);
    o = put_str(o, rec->spf);
    o = put_str(o, rec->header_from);
    o = put_str(o, rec->envelope_from);
    o = put_str(o, rec->envelope_to);
    o = put_u32(o, (uint32_t)rec->n_overrides);
    o = put_u32(o, (uint32_t)rec->n_dkim_auth);
    o = put_u32(o, (uint32_t)rec->n_spf_auth);
    for (size_t i = 0; i < rec->n_overrides; i++) {
        o = put_str(o, rec->overrides[i].type);
        o = put_str(o, rec->overrides[i].comment);
    }
    for (size_t i = 0; i < rec->n_dkim_auth; i++) {
        const dp_dkim_auth *d = &rec->dkim_auth[i];
        o = put_str(o, d->domain);
        o = put_str(o, d->selector);
        o = put_str(o, d->result);
        o = put_str(o, d->human_result);
    }
    for (size_t i = 0; i < rec->n_spf_auth; i++) {
        const dp_spf_auth *s = &rec->spf_auth[i];
        o = put_str(o, s->domain);
        o = put_str(o, s->scope);
        o = put_str(o, s->result);
        o = put_str(o, s->human_result);
    }
    h->buf.len += 4 + n;
    h->n++;
    return 0;
}

/* ---- reading back ---------------------------------------------------------- */

int dp_record_hold_rewind(dp_record_hold *h, dp_error *err) {
    h->left = h->n;
    h->rpos = 0;
    h->file_pos = 0;
    if (h->fd < 0) return 0;
    /* the tail still in memory goes after the rest, then all is read back
     * from the file through the buffer */
    if (spill(h, err) != 0) return -1;
    return 0;
}

/* Makes `need` bytes from rpos available in the buffer, reading from the
 * temporary file as needed. */
static int fill(dp_record_hold *h, size_t need, dp_error *err) {
    size_t have = h->buf.len - h->rpos;
    if (have >= need) return 0;
    if (h->fd < 0) return dp_error_set(err, DP_ERR_IO, "held records end early");
    if (h->rpos) {
        memmove(h->buf.data, h->buf.data + h->rpos, have);
        h->buf.len = have;
        h->rpos = 0;
    }
    size_t want = need + 1 > h->mem_max ? need : h->mem_max - 1;
    if (dp_buf_reserve(&h->buf, want - h->buf.len) != 0)
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory reading held records");
    while (h->buf.len < need) {
        size_t room = h->buf.cap - h->buf.len - 1; /* dp_buf keeps a byte for its NUL */
        ssize_t r = pread(h->fd, h->buf.data + h->buf.len, room, (off_t)h->file_pos);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return dp_error_set(err, DP_ERR_IO, "holding records until the report's header: reading the temporary file: %s",
                                r < 0 ? strerror(errno) : "it ends early");
        h->buf.len += (size_t)r;
        h->file_pos += (uint64_t)r;
    }
    return 0;
}

static uint32_t get_u32(const char **p) {
    uint32_t v;
    memcpy(&v, *p, 4);
    *p += 4;
    return v;
}

/* The strings are NUL-terminated in the buffer: a pointer is enough. */
static const char *get_str(const char **p) {
    uint32_t n = get_u32(p);
    if (n == 0) return NULL;
    const char *s = *p;
    *p += n;
    return s;
}

int dp_record_hold_next(dp_record_hold *h, dp_record *rec, dp_error *err) {
    if (h->left == 0) return 0;
    if (fill(h, 4, err) != 0) return -1;
    uint32_t n;
    memcpy(&n, h->buf.data + h->rpos, 4);
    if (fill(h, 4 + (size_t)n, err) != 0) return -1;
    const char *p = h->buf.data + h->rpos + 4;
    h->rpos += 4 + (size_t)n;
    h->left--;

    memset(rec, 0, sizeof *rec);
    rec->ip_family = (unsigned char)*p++;
    memcpy(rec->ip, p, 16);
    p += 16;
    memcpy(&rec->count, p, 8);
    p += 8;
    const char *ip = get_str(&p);
    if (ip) memcpy(rec->source_ip, ip, strnlen(ip, sizeof rec->source_ip - 1));
    rec->disposition = get_str(&p);
    rec->dkim = get_str(&p);
    rec->spf = get_str(&p);
    rec->header_from = get_str(&p);
    rec->envelope_from = get_str(&p);
    rec->envelope_to = get_str(&p);
    size_t n_ov = get_u32(&p), n_dk = get_u32(&p), n_sp = get_u32(&p);
    dp_override *ov = dp_buf_grow_array(h->ov, &h->cap_ov, n_ov, sizeof *ov);
    if (ov) h->ov = ov;
    dp_dkim_auth *dk = dp_buf_grow_array(h->dk, &h->cap_dk, n_dk, sizeof *dk);
    if (dk) h->dk = dk;
    dp_spf_auth *sp = dp_buf_grow_array(h->sp, &h->cap_sp, n_sp, sizeof *sp);
    if (sp) h->sp = sp;
    if ((n_ov && !ov) || (n_dk && !dk) || (n_sp && !sp))
        return dp_error_set(err, DP_ERR_NOMEM, "out of memory reading held records");
    for (size_t i = 0; i < n_ov; i++) {
        ov[i].type = get_str(&p);
        ov[i].comment = get_str(&p);
    }
    for (size_t i = 0; i < n_dk; i++) {
        dk[i].domain = get_str(&p);
        dk[i].selector = get_str(&p);
        dk[i].result = get_str(&p);
        dk[i].human_result = get_str(&p);
    }
    for (size_t i = 0; i < n_sp; i++) {
        sp[i].domain = get_str(&p);
        sp[i].scope = get_str(&p);
        sp[i].result = get_str(&p);
        sp[i].human_result = get_str(&p);
    }
    rec->overrides = ov;
    rec->n_overrides = n_ov;
    rec->dkim_auth = dk;
    rec->n_dkim_auth = n_dk;
    rec->spf_auth = sp;
    rec->n_spf_auth = n_sp;
    return 1;
}
