/* dp_fs — see dp_fs.h. */
#define _GNU_SOURCE /* renameat2, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_fs.h"

int dp_fs_mkdir_mode(const char *dir, mode_t mode) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return (mkdir(tmp, mode) != 0 && errno != EEXIST) ? -1 : 0;
}

int dp_fs_mkdir_p(const char *dir) { return dp_fs_mkdir_mode(dir, 0755); }

const char *dp_fs_kind(mode_t m) {
    if (S_ISREG(m)) return "a regular file";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISDIR(m)) return "a folder";
    return "not a file";
}

int dp_fs_mkdir_parent(const char *path) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp) return 0;
    *slash = '\0';
    return dp_fs_mkdir_p(tmp);
}

/* rename(2) that fails with EEXIST instead of replacing `to`. */
static int rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

int dp_fs_write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int dp_fs_replace(const char *path, const void *data, size_t len) {
    char tmp[PATH_MAX + 16];
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) return -1;
    int ok = dp_fs_write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) ok = 0, e = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
    if (!ok) {
        unlink(tmp);
        errno = e;
        return -1;
    }
    /* the rename is durable once its folder is */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int dp_fs_copy_fd(int in, int out) {
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (dp_fs_write_all(out, buf, (size_t)n) != 0) return -1;
    }
}

/* A copy of `src` at a fresh temporary name beside `dst`, on disk. */
static int copy_beside(const char *src, const char *dst, char *tmp, size_t cap) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = -1;
    for (unsigned i = 0; out < 0 && i < 1000; i++) {
        if (snprintf(tmp, cap, "%s.tmp%ld.%u", dst, (long)getpid(), i) >= (int)cap) {
            errno = ENAMETOOLONG;
            break;
        }
        out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0 && errno != EEXIST) break;
    }
    int rc = out < 0 ? -1 : 0;
    if (rc == 0 && (dp_fs_copy_fd(in, out) != 0 || fsync(out) != 0)) rc = -1;
    int saved = errno;
    close(in);
    if (out >= 0 && close(out) != 0 && rc == 0) rc = -1, saved = errno;
    if (rc != 0 && out >= 0) unlink(tmp);
    errno = saved;
    return rc;
}

int dp_fs_move(const char *src, const char *dst, char *used) {
    char name[PATH_MAX], tmp[PATH_MAX];
    if (dp_fs_mkdir_parent(dst) != 0) return -1;
    int copied = 0; /* across file systems: tmp holds the bytes */
    unsigned suffix = 0;
    while (suffix < 10000) {
        int n = suffix ? snprintf(name, sizeof name, "%s.%u", dst, suffix) : snprintf(name, sizeof name, "%s", dst);
        if (n >= (int)sizeof name) {
            errno = ENAMETOOLONG;
            break;
        }
        if (rename_noreplace(copied ? tmp : src, name) == 0) {
            if (copied && unlink(src) != 0 && errno != ENOENT) return -1;
            if (used) memcpy(used, name, (size_t)n + 1);
            return 0;
        }
        if (errno == EEXIST) {
            suffix++;
        } else if (errno == EXDEV && !copied) {
            if (copy_beside(src, dst, tmp, sizeof tmp) != 0) return -1;
            copied = 1; /* and the same name again, from the copy */
        } else {
            break;
        }
    }
    int saved = errno;
    if (copied) unlink(tmp);
    errno = saved;
    return -1;
}
