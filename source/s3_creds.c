/* s3_creds — where an S3 client's key pair comes from: the environment,
 * as every AWS tool reads it, or the shared credentials file.
 *
 * The file is parsed here, strictly and by hand: Debian 12's INI library
 * (libinih r55) is built with lines of at most 200 bytes, and a session
 * token is longer.  The form taken is the one the AWS CLI writes:
 * `[profile]` headers, `name = value` lines, `#` and `;` comments.  A line
 * that is none of these is an error naming the file and the line number,
 * never its text, which may hold a secret.  Secrets are wiped from memory
 * when dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_buf.h"
#include "s3_creds.h"

#define FILE_MAX ((size_t)1 << 20) /* a credentials file larger than this is not one */

static void wipe(char *p) {
    if (!p) return;
    volatile char *v = p;
    while (*v)
        *v++ = 0;
    free(p);
}

void dp_s3_creds_wipe(dp_s3_creds *c) {
    wipe(c->access_key);
    wipe(c->secret_key);
    wipe(c->session_token);
    free(c->from);
    memset(c, 0, sizeof *c);
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* The whole file, NUL-terminated: malloc'd, or NULL and err. */
static char *slurp(const char *path, dp_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dp_error_set(err, DP_ERR_USAGE, "no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, "
                                        "and %s cannot be read (%s)", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size < FILE_MAX &&
        (buf = malloc((size_t)st.st_size + 1))) {
        ssize_t r;
        while (n < (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size - n)) != 0) {
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) break;
            n += (size_t)r;
        }
        buf[n] = '\0';
    }
    close(fd);
    if (!buf || n != (size_t)st.st_size || strlen(buf) != n) {
        if (buf) wipe(buf);
        dp_error_set(err, DP_ERR_USAGE, "%s: not a readable credentials file", path);
        return NULL;
    }
    return buf;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* The profile's three values from the file's text (modified in place). */
static int parse(char *text, const char *path, const char *profile, dp_s3_creds *c, dp_error *err) {
    int in_profile = 0, found = 0, line_no = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        char *l = trim(line);
        if (!*l || *l == '#' || *l == ';') continue;
        if (*l == '[') {
            char *close = strchr(l, ']');
            if (!close || *trim(close + 1))
                return dp_error_set(err, DP_ERR_USAGE, "%s:%d: not a [profile] line", path, line_no);
            *close = '\0';
            in_profile = strcmp(trim(l + 1), profile) == 0;
            found |= in_profile;
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) return dp_error_set(err, DP_ERR_USAGE, "%s:%d: not a 'name = value' line", path, line_no);
        *eq = '\0';
        if (!in_profile) continue;
        const char *name = trim(l);
        char *value = trim(eq + 1), **dst = NULL;
        if (strcmp(name, "aws_access_key_id") == 0) dst = &c->access_key;
        else if (strcmp(name, "aws_secret_access_key") == 0) dst = &c->secret_key;
        else if (strcmp(name, "aws_session_token") == 0) dst = &c->session_token;
        if (!dst || !*value) continue;
        wipe(*dst);
        if (!(*dst = strdup(value))) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    }
    if (!found) return dp_error_set(err, DP_ERR_USAGE, "%s: no profile [%s]", path, profile);
    if (!c->access_key || !c->secret_key)
        return dp_error_set(err, DP_ERR_USAGE, "%s: profile [%s] lacks aws_access_key_id or aws_secret_access_key",
                            path, profile);
    return 0;
}

int dp_s3_creds_load(dp_s3_creds *c, dp_error *err) {
    memset(c, 0, sizeof *c);
    const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
    if (id || secret) {
        if (!id || !secret)
            return dp_error_set(err, DP_ERR_USAGE, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither");
        const char *token = env("AWS_SESSION_TOKEN");
        c->access_key = strdup(id);
        c->secret_key = strdup(secret);
        c->session_token = token ? strdup(token) : NULL;
        c->from = strdup("the environment");
        if (!c->access_key || !c->secret_key || (token && !c->session_token) || !c->from) {
            dp_s3_creds_wipe(c);
            return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
        }
        return 0;
    }
    dp_buf path = DP_BUF_INIT;
    const char *file = env("AWS_SHARED_CREDENTIALS_FILE"), *home = env("HOME");
    if (file) dp_buf_puts(&path, file);
    else if (home) dp_buf_printf(&path, "%s/.aws/credentials", home);
    else
        return dp_error_set(err, DP_ERR_USAGE,
                            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                            "AWS_SHARED_CREDENTIALS_FILE");
    if (path.failed) return dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    const char *profile = env("AWS_PROFILE");
    char *text = slurp(path.data, err);
    size_t text_len = text ? strlen(text) : 0; /* before parse() cuts it into lines */
    int rc = text ? parse(text, path.data, profile ? profile : "default", c, err) : -1;
    if (text) {
        memset(text, 0, text_len);
        free(text);
    }
    if (rc == 0 && !(c->from = strdup(path.data))) rc = dp_error_set(err, DP_ERR_NOMEM, "out of memory");
    dp_buf_free(&path);
    if (rc != 0) dp_s3_creds_wipe(c);
    return rc;
}
