/* fuzz_replay_main: a libFuzzer-compatible driver without libFuzzer.
 *
 * Usage: fuzz_replay_<name> PATH...
 * Every PATH is a corpus directory (each regular file in it is one input) or
 * a single input file. Each input is passed to LLVMFuzzerTestOneInput whole
 * and truncated at a few offsets, always from an exactly sized heap buffer so
 * the sanitizers see any read past the end. Exits 1 when a path cannot be
 * read or holds no input, so a lost corpus fails the test instead of passing
 * vacuously. A crash in the target aborts the run (that is the point). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Larger inputs are not corpus seeds; refuse them rather than slurp. */
#define REPLAY_MAX_INPUT (1u << 20)

static void run_one(const uint8_t *data, size_t size)
{
    /* A copy of exactly |size| bytes (malloc(0) may be NULL; give 1 byte then). */
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    if (size > 0) {
        memcpy(copy, data, size);
    }
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

static int replay_file(const char *path, size_t *count)
{
    int rc = -1;
    FILE *f = NULL;
    uint8_t *buf = NULL;
    struct stat st;
    size_t len;

    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (uintmax_t)st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "%s: not a regular file of at most %u bytes\n", path, REPLAY_MAX_INPUT);
        goto cleanup;
    }
    len = (size_t)st.st_size;
    buf = malloc(len > 0 ? len : 1);
    f = fopen(path, "rb");
    if (buf == NULL || f == NULL || fread(buf, 1, len, f) != len) {
        fprintf(stderr, "%s: cannot read\n", path);
        goto cleanup;
    }
    run_one(buf, len);
    /* Truncations reach the "input ends here" paths the corpus seldom has. */
    {
        const size_t cuts[] = {0, 1, len / 3, len / 2, len > 0 ? len - 1 : 0};
        for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
            if (cuts[i] < len) {
                run_one(buf, cuts[i]);
            }
        }
    }
    (*count)++;
    rc = 0;
cleanup:
    if (f != NULL) {
        fclose(f);
    }
    free(buf);
    return rc;
}

static int replay_dir(const char *dir, size_t *count)
{
    int rc = -1;
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL) {
        fprintf(stderr, "%s: cannot open\n", dir);
        goto cleanup;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        int n;
        if (e->d_name[0] == '.') {
            continue;
        }
        n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path) || replay_file(path, count) != 0) {
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (d != NULL) {
        closedir(d);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        size_t count = 0;
        int rc;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: does not exist\n", argv[i]);
            return 1;
        }
        rc = S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) : replay_file(argv[i], &count);
        if (rc != 0) {
            return 1;
        }
        if (count == 0) {
            fprintf(stderr, "%s: no inputs\n", argv[i]);
            return 1;
        }
        printf("%s: %zu inputs replayed\n", argv[i], count);
    }
    return 0;
}
