/* stream — the pull streams the unwrapping layers read from.
 *
 * A dp_stream hands out bytes on request; each layer of a container
 * (gzip, zip member, MIME part) is one, reading from the layer below.
 * These three are the plain ones: bytes held back for sniffing, bytes in
 * memory, and bytes from a file descriptor.  The memory and file streams
 * count what they hand out, which is what decompression ratios are
 * measured against.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ingest_internal.h"

static ssize_t peek_read(dp_stream *s, void *buf, size_t cap, dp_error *err) {
    dp_peek_stream *p = (dp_peek_stream *)s;
    if (p->head_pos < p->head_len) {
        size_t n = p->head_len - p->head_pos;
        if (n > cap) n = cap;
        memcpy(buf, p->head + p->head_pos, n);
        p->head_pos += n;
        return (ssize_t)n;
    }
    if (p->inner_eof) return 0;
    return p->inner->read(p->inner, buf, cap, err);
}

int dp_stream_peek_init(dp_peek_stream *p, dp_stream *inner, size_t want, dp_error *err) {
    p->base.read = peek_read;
    p->inner = inner;
    p->head_len = p->head_pos = 0;
    p->inner_eof = 0;
    if (want > DP_PEEK_MAX) want = DP_PEEK_MAX;
    while (p->head_len < want) {
        ssize_t n = inner->read(inner, p->head + p->head_len, want - p->head_len, err);
        if (n < 0) return -1;
        if (n == 0) { p->inner_eof = 1; break; }
        p->head_len += (size_t)n;
    }
    return 0;
}

static ssize_t mem_read(dp_stream *s, void *buf, size_t cap, dp_error *err) {
    (void)err;
    dp_mem_stream *m = (dp_mem_stream *)s;
    size_t n = m->len - m->pos;
    if (n > cap) n = cap;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    if (m->counter) *m->counter += n;
    return (ssize_t)n;
}

void dp_stream_mem_init(dp_mem_stream *m, const void *data, size_t len, uint64_t *counter) {
    m->base.read = mem_read;
    m->data = data;
    m->len = len;
    m->pos = 0;
    m->counter = counter;
}

static ssize_t fd_read(dp_stream *s, void *buf, size_t cap, dp_error *err) {
    dp_fd_stream *f = (dp_fd_stream *)s;
    for (;;) {
        ssize_t n = read(f->fd, buf, cap);
        if (n >= 0) {
            *f->counter += (uint64_t)n;
            return n;
        }
        if (errno == EINTR) continue;
        dp_error_set(err, DP_ERR_IO, "read failed: %s", strerror(errno));
        return -1;
    }
}

void dp_stream_fd_init(dp_fd_stream *f, int fd, uint64_t *counter) {
    f->base.read = fd_read;
    f->fd = fd;
    f->counter = counter;
}
