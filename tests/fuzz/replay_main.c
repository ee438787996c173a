/* replay_main — main() for the replay builds of the fuzz targets.
 *
 * Runs every file named on the command line (directories: every file in
 * them, in name order) through the target's LLVMFuzzerTestOneInput once,
 * each in a child process of its own, and fails if any child crashed or
 * exited non-zero.  So the seeds, the kept corpus and every crash ever
 * found are replayed in every build, with or without clang.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            else buf = nb;
        }
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) { fprintf(stderr, "%s: cannot read\n", path); free(buf); return -1; }
    /* Each input in a child of its own, so one that aborts does not hide
     * the others; exit() (not _exit) lets LeakSanitizer check the child. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        exit(0);
    }
    free(buf);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        perror("fork/waitpid");
        return -1;
    }
    if (WIFSIGNALED(status)) {
        printf("FAIL %s (%zu bytes): killed by signal %d\n", path, len, WTERMSIG(status));
        return -1;
    }
    if (WEXITSTATUS(status) != 0) {
        printf("FAIL %s (%zu bytes): exit status %d\n", path, len, WEXITSTATUS(status));
        return -1;
    }
    printf("ok %s (%zu bytes)\n", path, len);
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file under `path`, in name order; dot-files are skipped. */
static int run_path(const char *path, int *count) {
    struct stat st;
    if (stat(path, &st) != 0) { perror(path); return -1; }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (!d) { perror(path); return -1; }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (nn == cap) {
            char **x = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof *x);
            if (!x) break;
            names = x;
        }
        names[nn++] = strdup(de->d_name);
    }
    closedir(d);
    if (nn) qsort(names, nn, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < nn; i++) {
        char child[4096];
        if (names[i] && snprintf(child, sizeof child, "%s/%s", path, names[i]) < (int)sizeof child)
            if (run_path(child, count) != 0) rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n"
                        "Runs each file through the fuzz target once (directories: every file in them).\n",
                argv[0]);
        return 2;
    }
    int rc = 0, count = 0;
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i], &count) != 0) rc = 1;
    printf("%d inputs replayed%s\n", count, rc ? ", some failed (see FAIL above)" : "");
    return rc;
}
