/* floor.c -- dp-floor, the physical floor for parsing one compressed report.
 *
 * A DMARC report parser cannot be faster than decompressing its input and
 * tokenizing the XML. This tool measures exactly those two costs on one
 * core, so the parser's throughput can be quoted as a fraction of what is
 * physically possible on the same machine in the same run, rather than as
 * an absolute figure that means nothing on a noisy shared host:
 *
 *   inflate         decompress into a 64 KiB buffer and throw it away
 *   expat_inflate   decompress straight into XML_GetBuffer() and run a bare
 *                   expat parser (no handlers at all) with XML_ParseBuffer()
 *
 * With --raw, two more floors over the decompressed bytes, held in memory
 * (decompressed once, untimed):
 *
 *   expat_raw       the bare expat parser alone, 64 KiB per XML_Parse()
 *   memcpy          copying them, 64 KiB at a time, into one 64 KiB buffer:
 *                   the memory bandwidth every consumer pays at least
 *
 * Input is gzip (multi-member allowed, as pigz and appending writers
 * produce), zstd (any number of frames), or plain XML, picked by magic
 * bytes. The compressed file is read into memory before timing, so disk and
 * page-cache effects are not part of the figure; the parser under test reads
 * from the page cache, which costs a small fraction of decompression.
 *
 * Each measure runs --runs times (interleaved, so a burst of noise hits both
 * alike) and the median is reported, with MB = 10^6 bytes of decompressed
 * XML per second. The result is one machine-readable line on stdout:
 *
 *   floor inflate_mbps=X expat_inflate_mbps=Y bytes=B compressed_bytes=C
 *         inflate_s=S expat_inflate_s=T codec=gzip runs=N
 *
 * Pin it yourself (taskset -c 0) for single-core figures; the tool does not
 * touch affinity so that it measures what it is given.
 */

#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* The parser under test reads in chunks of this order; expat's per-call
 * overhead is negligible well below it, and it fits in L2. */
#define BENCH_CHUNK (64u * 1024u)

enum { BENCH_RAW, BENCH_GZIP, BENCH_ZSTD };

static const char *const bench_codec_names[] = {"none", "gzip", "zstd"};

typedef struct {
    int codec;
    const unsigned char *in;  /* whole compressed file */
    size_t in_len;
    size_t raw_pos;           /* BENCH_RAW */
    z_stream zs;              /* BENCH_GZIP */
    int zs_live, members, trailing_garbage;
    ZSTD_DCtx *zd;            /* BENCH_ZSTD */
    ZSTD_inBuffer zin;
    size_t zret;              /* last ZSTD_decompressStream() result */
    const char *err;          /* NULL while healthy */
} bench_dec;

/* ------------------------------------------------------------------------ */
/* Decoders                                                                 */
/* ------------------------------------------------------------------------ */

static int bench_detect(const unsigned char *p, size_t n) {
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) return BENCH_GZIP;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return BENCH_ZSTD;
    return BENCH_RAW;
}

static int bench_dec_init(bench_dec *d, int codec, const unsigned char *in,
                          size_t len) {
    memset(d, 0, sizeof(*d));
    d->codec = codec;
    d->in = in;
    d->in_len = len;
    if (codec == BENCH_GZIP) {
        /* 15 + 16: gzip wrapper only; a zlib stream is not a .gz file. */
        if (inflateInit2(&d->zs, 15 + 16) != Z_OK) return -1;
        d->zs_live = 1;
        d->zs.next_in = (Bytef *)(uintptr_t)in;  /* zlib's API is not const */
        d->zs.avail_in = 0;
        d->members = 1;
    } else if (codec == BENCH_ZSTD) {
        d->zd = ZSTD_createDCtx();
        if (!d->zd) return -1;
        d->zin.src = in;
        d->zin.size = len;
        d->zin.pos = 0;
        d->zret = 1;  /* nothing decoded yet: a frame is still expected */
    }
    return 0;
}

static void bench_dec_free(bench_dec *d) {
    if (d->zs_live) inflateEnd(&d->zs);
    if (d->zd) ZSTD_freeDCtx(d->zd);
    d->zs_live = 0;
    d->zd = NULL;
}

/* zlib counts avail_in in uInt; feed it at most this much at a time so a
 * file over 4 GiB still works. */
static void bench_gz_refill(bench_dec *d) {
    if (d->zs.avail_in) return;
    size_t used = (size_t)(d->zs.next_in - d->in);
    size_t left = d->in_len - used;
    d->zs.avail_in = (uInt)(left > (1u << 30) ? (1u << 30) : left);
}

static size_t bench_gz_left(const bench_dec *d) {
    return d->in_len - (size_t)(d->zs.next_in - d->in);
}

/* Fill out[0..cap) as far as the stream allows. Returns the byte count and
 * sets *eof once the input is exhausted; 0 with d->err set on failure. */
static size_t bench_dec_read(bench_dec *d, unsigned char *out, size_t cap, int *eof) {
    *eof = 0;
    if (d->codec == BENCH_RAW) {
        size_t n = d->in_len - d->raw_pos;
        if (n > cap) n = cap;
        memcpy(out, d->in + d->raw_pos, n);
        d->raw_pos += n;
        *eof = d->raw_pos == d->in_len;
        return n;
    }
    if (d->codec == BENCH_GZIP) {
        d->zs.next_out = out;
        d->zs.avail_out = (uInt)cap;
        while (d->zs.avail_out) {
            bench_gz_refill(d);
            int ret = inflate(&d->zs, Z_NO_FLUSH);
            if (ret == Z_STREAM_END) {
                size_t left = bench_gz_left(d);
                const unsigned char *p = d->zs.next_in;
                if (left >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
                    /* Another member follows: same stream, new header. */
                    inflateReset(&d->zs);
                    d->members++;
                    continue;
                }
                /* Like gzip(1), ignore whatever follows the last member,
                 * but let the caller warn about it. */
                d->trailing_garbage = left > 0;
                *eof = 1;
                break;
            }
            if (ret == Z_BUF_ERROR && bench_gz_left(d) == 0) {
                /* No progress possible and no input left: the file ends
                 * before inflate() saw the end of the stream. */
                d->err = "truncated gzip stream";
                return 0;
            }
            if (ret != Z_OK && ret != Z_BUF_ERROR) {
                d->err = d->zs.msg ? d->zs.msg : "inflate failed";
                return 0;
            }
        }
        return cap - d->zs.avail_out;
    }
    /* zstd: ZSTD_decompressStream() moves on to the next frame by itself. */
    ZSTD_outBuffer zo = {out, cap, 0};
    while (zo.pos < zo.size) {
        if (d->zin.pos == d->zin.size && d->zret == 0) {
            *eof = 1;
            break;
        }
        size_t before_in = d->zin.pos, before_out = zo.pos;
        d->zret = ZSTD_decompressStream(d->zd, &zo, &d->zin);
        if (ZSTD_isError(d->zret)) {
            d->err = ZSTD_getErrorName(d->zret);
            return 0;
        }
        if (d->zret != 0 && d->zin.pos == d->zin.size && zo.pos < zo.size &&
            before_in == d->zin.pos && before_out == zo.pos) {
            d->err = "truncated zstd stream";
            return 0;
        }
    }
    if (d->zin.pos == d->zin.size && d->zret == 0) *eof = 1;
    return zo.pos;
}

/* ------------------------------------------------------------------------ */
/* Measures                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *in;
    size_t in_len;
    int codec;
    int reparse_deferral;  /* -1 = expat's default */
} bench_input;

typedef struct {
    double seconds;
    uint64_t bytes;
    int members;
    int trailing_garbage;
} bench_result;

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_run_inflate(const bench_input *bi, unsigned char *buf,
                             bench_result *res) {
    bench_dec d;
    double t0 = bench_now();
    if (bench_dec_init(&d, bi->codec, bi->in, bi->in_len) != 0) {
        fprintf(stderr, "dp-floor: decoder init failed\n");
        return -1;
    }
    uint64_t total = 0;
    int eof = 0;
    while (!eof) {
        size_t n = bench_dec_read(&d, buf, BENCH_CHUNK, &eof);
        if (d.err) {
            fprintf(stderr, "dp-floor: %s\n", d.err);
            bench_dec_free(&d);
            return -1;
        }
        total += n;
    }
    res->members = d.members;
    res->trailing_garbage = d.trailing_garbage;
    bench_dec_free(&d);
    res->seconds = bench_now() - t0;
    res->bytes = total;
    return 0;
}

static int bench_run_expat(const bench_input *bi, bench_result *res) {
    bench_dec d;
    double t0 = bench_now();
    XML_Parser p = XML_ParserCreate(NULL);
    if (!p || bench_dec_init(&d, bi->codec, bi->in, bi->in_len) != 0) {
        fprintf(stderr, "dp-floor: parser or decoder init failed\n");
        if (p) XML_ParserFree(p);
        return -1;
    }
#ifdef BENCH_HAVE_XML_REPARSE_DEFERRAL
    if (bi->reparse_deferral >= 0)
        XML_SetReparseDeferralEnabled(p, bi->reparse_deferral ? XML_TRUE : XML_FALSE);
#endif
    uint64_t total = 0;
    int eof = 0, rc = 0;
    while (!eof) {
        /* Decompress directly into expat's buffer: no extra copy, which is
         * the best a streaming parser can do. */
        void *buf = XML_GetBuffer(p, BENCH_CHUNK);
        if (!buf) {
            fprintf(stderr, "dp-floor: XML_GetBuffer failed\n");
            rc = -1;
            break;
        }
        size_t n = bench_dec_read(&d, buf, BENCH_CHUNK, &eof);
        if (d.err) {
            fprintf(stderr, "dp-floor: %s\n", d.err);
            rc = -1;
            break;
        }
        total += n;
        if (XML_ParseBuffer(p, (int)n, eof) != XML_STATUS_OK) {
            fprintf(stderr, "dp-floor: XML error at line %lu: %s\n",
                    (unsigned long)XML_GetCurrentLineNumber(p),
                    XML_ErrorString(XML_GetErrorCode(p)));
            rc = -1;
            break;
        }
    }
    bench_dec_free(&d);
    XML_ParserFree(p);
    res->seconds = bench_now() - t0;
    res->bytes = total;
    return rc;
}

/* The whole decompressed input, for the --raw floors. */
static unsigned char *bench_inflate_all(const bench_input *bi, size_t *len) {
    bench_dec d;
    if (bench_dec_init(&d, bi->codec, bi->in, bi->in_len) != 0) return NULL;
    size_t cap = 1u << 20, n = 0;
    unsigned char *out = malloc(cap);
    int eof = 0;
    while (out && !eof) {
        if (cap - n < BENCH_CHUNK) {
            unsigned char *g = realloc(out, cap * 2);
            if (!g) {
                free(out);
                out = NULL;
                break;
            }
            out = g;
            cap *= 2;
        }
        n += bench_dec_read(&d, out + n, BENCH_CHUNK, &eof);
        if (d.err) {
            fprintf(stderr, "dp-floor: %s\n", d.err);
            free(out);
            out = NULL;
        }
    }
    bench_dec_free(&d);
    *len = n;
    return out;
}

static int bench_run_expat_raw(const unsigned char *xml, size_t len, bench_result *res) {
    double t0 = bench_now();
    XML_Parser p = XML_ParserCreate(NULL);
    if (!p) return -1;
    int rc = 0;
    for (size_t at = 0; at < len || at == 0; at += BENCH_CHUNK) {
        size_t n = len - at < BENCH_CHUNK ? len - at : BENCH_CHUNK;
        if (XML_Parse(p, (const char *)xml + at, (int)n, at + n >= len) != XML_STATUS_OK) {
            fprintf(stderr, "dp-floor: XML error at line %lu: %s\n", (unsigned long)XML_GetCurrentLineNumber(p),
                    XML_ErrorString(XML_GetErrorCode(p)));
            rc = -1;
            break;
        }
        if (len == 0) break;
    }
    XML_ParserFree(p);
    res->seconds = bench_now() - t0;
    res->bytes = len;
    return rc;
}

static void bench_run_memcpy(const unsigned char *src, size_t len, unsigned char *dst, bench_result *res) {
    double t0 = bench_now();
    volatile unsigned char sink = 0;
    for (size_t at = 0; at < len; at += BENCH_CHUNK) {
        size_t n = len - at < BENCH_CHUNK ? len - at : BENCH_CHUNK;
        memcpy(dst, src + at, n);
        sink ^= dst[n - 1]; /* keep the copy */
    }
    (void)sink;
    res->seconds = bench_now() - t0;
    res->bytes = len;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n samples (mean of the middle two for even n); sorts in place. */
static double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------------ */
/* Main                                                                     */
/* ------------------------------------------------------------------------ */

/* Read the whole input before timing. st_size is only a hint, so pipes and
 * /dev/stdin work too (handy for a quick `dp-gen-report | dp-floor -`). */
static unsigned char *bench_slurp(const char *path, size_t *len) {
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "dp-floor: %s: %s\n", path, strerror(errno));
        if (fd > STDIN_FILENO) close(fd);
        return NULL;
    }
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : (1u << 20), got = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "dp-floor: out of memory\n");
            break;
        }
        if (got == cap) {
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            fprintf(stderr, "dp-floor: %s: %s\n", path, strerror(errno));
            free(buf);
            buf = NULL;
            break;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (fd > STDIN_FILENO) close(fd);
    *len = got;
    return buf;
}

static void bench_usage(FILE *f) {
    fputs("usage: dp-floor [--runs N] [--only inflate|expat] [--raw] [-v]"
#ifdef BENCH_HAVE_XML_REPARSE_DEFERRAL
          " [--reparse-deferral on|off]"
#endif
          " FILE|-\n"
          "  FILE is gzip, zstd or plain XML (detected by magic bytes); - is stdin.\n"
          "  Prints one line: floor inflate_mbps=.. expat_inflate_mbps=.. bytes=..\n"
          "  (MB = 10^6 bytes of decompressed XML, median of --runs, default 5).\n"
          "  --raw adds expat_raw_mbps (bare expat over the decompressed bytes in\n"
          "  memory) and memcpy_mbps (copying them in 64 KiB chunks).\n",
          f);
}

int main(int argc, char **argv) {
    int runs = 5, verbose = 0, do_inflate = 1, do_expat = 1, do_raw = 0;
    bench_input bi = {.reparse_deferral = -1};
    static const struct option opts[] = {
        {"runs", required_argument, NULL, 'r'},
        {"only", required_argument, NULL, 'O'},
        {"raw", no_argument, NULL, 'W'},
        {"reparse-deferral", required_argument, NULL, 'R'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "r:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000) {
                fprintf(stderr, "dp-floor: --runs must be 1..1000\n");
                return 2;
            }
            runs = (int)v;
            break;
        }
        case 'O':
            if (strcmp(optarg, "inflate") == 0) do_expat = 0;
            else if (strcmp(optarg, "expat") == 0) do_inflate = 0;
            else { bench_usage(stderr); return 2; }
            break;
        case 'R':
#ifdef BENCH_HAVE_XML_REPARSE_DEFERRAL
            if (strcmp(optarg, "on") == 0) bi.reparse_deferral = 1;
            else if (strcmp(optarg, "off") == 0) bi.reparse_deferral = 0;
            else { bench_usage(stderr); return 2; }
            break;
#else
            fprintf(stderr, "dp-floor: this expat has no XML_SetReparseDeferralEnabled\n");
            return 2;
#endif
        case 'W': do_raw = 1; break;
        case 'v': verbose = 1; break;
        case 'h': bench_usage(stdout); return 0;
        default: bench_usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        bench_usage(stderr);
        return 2;
    }

    unsigned char *in = bench_slurp(argv[optind], &bi.in_len);
    if (!in) return 1;
    bi.in = in;
    bi.codec = bench_detect(in, bi.in_len);

    double *t_inf = calloc((size_t)runs, sizeof(double));
    double *t_xml = calloc((size_t)runs, sizeof(double));
    double *t_raw = calloc((size_t)runs, sizeof(double));
    double *t_cpy = calloc((size_t)runs, sizeof(double));
    unsigned char *buf = malloc(BENCH_CHUNK);
    size_t raw_len = 0;
    unsigned char *raw = do_raw ? bench_inflate_all(&bi, &raw_len) : NULL;
    if (do_raw && !raw) {
        fprintf(stderr, "dp-floor: cannot hold the decompressed input in memory\n");
        return 1;
    }
    if (!t_inf || !t_xml || !t_raw || !t_cpy || !buf) {
        fprintf(stderr, "dp-floor: out of memory\n");
        return 1;
    }
    uint64_t bytes = 0;
    int rc = 0, members = 0, garbage = 0;
    for (int i = 0; i < runs && rc == 0; i++) {
        bench_result a = {0}, b = {0};
        if (do_inflate) {
            if (bench_run_inflate(&bi, buf, &a) != 0) { rc = 1; break; }
            t_inf[i] = a.seconds;
            bytes = a.bytes;
            members = a.members;
            garbage = a.trailing_garbage;
        }
        if (do_expat) {
            if (bench_run_expat(&bi, &b) != 0) { rc = 1; break; }
            t_xml[i] = b.seconds;
            if (do_inflate && b.bytes != a.bytes) {
                fprintf(stderr, "dp-floor: runs disagree on size\n");
                rc = 1;
                break;
            }
            bytes = b.bytes;
        }
        if (do_raw) {
            bench_result r = {0}, m = {0};
            if (bench_run_expat_raw(raw, raw_len, &r) != 0) { rc = 1; break; }
            bench_run_memcpy(raw, raw_len, buf, &m);
            t_raw[i] = r.seconds;
            t_cpy[i] = m.seconds;
            bytes = raw_len;
        }
        if (verbose)
            fprintf(stderr, "run %d: inflate_s=%.4f expat_inflate_s=%.4f bytes=%llu\n",
                    i + 1, t_inf[i], t_xml[i], (unsigned long long)bytes);
    }
    if (rc == 0) {
        if (garbage)
            fprintf(stderr, "dp-floor: warning: ignored trailing bytes after gzip data\n");
        double si = do_inflate ? bench_median(t_inf, runs) : 0;
        double sx = do_expat ? bench_median(t_xml, runs) : 0;
        printf("floor");
        if (do_inflate) printf(" inflate_mbps=%.1f", (double)bytes / si / 1e6);
        if (do_expat) printf(" expat_inflate_mbps=%.1f", (double)bytes / sx / 1e6);
        double sr = do_raw ? bench_median(t_raw, runs) : 0, sc = do_raw ? bench_median(t_cpy, runs) : 0;
        if (do_raw) printf(" expat_raw_mbps=%.1f memcpy_mbps=%.1f", (double)bytes / sr / 1e6, (double)bytes / sc / 1e6);
        printf(" bytes=%llu compressed_bytes=%llu", (unsigned long long)bytes,
               (unsigned long long)bi.in_len);
        if (do_inflate) printf(" inflate_s=%.4f", si);
        if (do_expat) printf(" expat_inflate_s=%.4f", sx);
        if (do_raw) printf(" expat_raw_s=%.4f memcpy_s=%.6f", sr, sc);
        printf(" codec=%s runs=%d", bench_codec_names[bi.codec], runs);
        if (bi.codec == BENCH_GZIP && do_inflate) printf(" members=%d", members);
        printf("\n");
    }
    free(t_inf);
    free(t_xml);
    free(t_raw);
    free(t_cpy);
    free(raw);
    free(buf);
    free(in);
    return rc;
}
