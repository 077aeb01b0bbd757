#define _XOPEN_SOURCE 700 /* nftw */
#include "tg_testdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_testkeys.h"

int tg_testdir_make(tg_testdir *dir, const char *prefix)
{
    int n = snprintf(dir->path, sizeof dir->path, "/tmp/%s-XXXXXX", prefix);
    if (n < 0 || (size_t)n >= sizeof dir->path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(dir->path) ? 0 : -1;
}

int tg_testdir_path(const tg_testdir *dir, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", dir->path, name);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int tg_testdir_write(const tg_testdir *dir, const char *name, const char *text)
{
    char path[512];
    if (tg_testdir_path(dir, name, path, sizeof path) != 0)
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t len = strlen(text);
    int rc = fwrite(text, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* Writes |text| and frees it; -1 when it is NULL (the minting failed). */
static int write_owned(const tg_testdir *dir, const char *name, char *text)
{
    int rc = text ? tg_testdir_write(dir, name, text) : -1;
    free(text);
    return rc;
}

int tg_testdir_write_jwks(const tg_testdir *dir, const char *name, const EVP_PKEY *key, const char *kid)
{
    tg_jwk_opts opts = {.kid = kid, .use = "sig"};
    EVP_PKEY *keys[] = {(EVP_PKEY *)key};
    return write_owned(dir, name, tg_jwks(keys, &opts, 1));
}

int tg_testdir_write_pem(const tg_testdir *dir, const char *name, const EVP_PKEY *key)
{
    return write_owned(dir, name, tg_public_pem(key));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int tg_testdir_remove(tg_testdir *dir)
{
    if (dir->path[0] == '\0')
        return 0;
    int rc = nftw(dir->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    dir->path[0] = '\0';
    return rc;
}
