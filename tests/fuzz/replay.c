/*
 * Replays fuzz inputs through a harness without libFuzzer: a normal
 * program (any compiler, any build) that calls LLVMFuzzerTestOneInput()
 * on every file it is given, or on every file of directories given.
 * Without arguments, `replay_NAME` replays the committed corpus of its
 * harness, $top_srcdir/tests/fuzz/corpus/NAME, and the regression inputs
 * in tests/fuzz/regress/NAME (crashes found and fixed). A crash or a
 * failed check aborts; the last "input:" line names the input.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

static int n_inputs;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, size = 0;
    uint8_t *data = malloc(cap);
    size_t got;
    while (data && (got = fread(data + size, 1, cap - size, fp)) > 0) {
        size += got;
        if (size == cap) {
            uint8_t *bigger = realloc(data, cap *= 2);
            if (!bigger) {
                free(data);
                data = NULL;
            }
            data = bigger;
        }
    }
    fclose(fp);
    if (!data) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return -1;
    }
    printf("input: %s (%zu bytes)\n", path, size);
    fflush(stdout);
    /* an exact-size copy, so that ASan sees reads past the end */
    uint8_t *exact = malloc(size ? size : 1);
    if (!exact) {
        free(data);
        return -1;
    }
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    n_inputs++;
    return 0;
}

/* Files of a directory in name order (the same order every run). */
static int replay_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "replay: cannot open directory %s\n", path);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            char **bigger = realloc(names, cap * sizeof *names);
            if (!bigger)
                break;
            names = bigger;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len)))
            break;
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            rc = replay_file(names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s does not exist\n", path);
        return -1;
    }
    return S_ISDIR(st.st_mode) ? replay_dir(path) : replay_file(path);
}

int main(int argc, char **argv)
{
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc && rc == 0; i++)
            rc = replay_path(argv[i]);
    } else {
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        /* libtool wrappers run "lt-replay_NAME" */
        if (strncmp(base, "lt-", 3) == 0)
            base += 3;
        if (strncmp(base, "replay_", 7) != 0) {
            fprintf(stderr, "usage: replay_NAME [FILE|DIR...]\n");
            return 2;
        }
        const char *name = base + 7;
        const char *top = getenv("top_srcdir");
        if (!top || !*top)
            top = IKV_SRCDIR;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", top, name);
        rc = replay_path(dir);
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", top, name);
        struct stat st;
        if (rc == 0 && stat(dir, &st) == 0)
            rc = replay_path(dir);
    }
    if (rc == 0 && n_inputs == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        rc = -1;
    }
    printf("%s: %d inputs replayed\n", rc ? "FAIL" : "PASS", n_inputs);
    printf("SUMMARY passed=%d failed=%d\n", rc ? 0 : 1, rc ? 1 : 0);
    return rc ? 1 : 0;
}
