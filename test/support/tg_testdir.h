/* tg_testdir: a temporary folder for the files a test writes (configs, JWKS,
 * PEM keys), removed with everything in it when the test is done.
 *
 * Functions return 0 on success and -1 on failure (errno set), so a test
 * asserts on them with its own framework. */
#ifndef TG_TESTDIR_H
#define TG_TESTDIR_H

#include <openssl/evp.h>
#include <stddef.h>

typedef struct tg_testdir {
    char path[128]; /* absolute, no trailing slash */
} tg_testdir;

/* Creates a fresh folder /tmp/<prefix>-XXXXXX. |prefix| is at most 64 bytes. */
int tg_testdir_make(tg_testdir *dir, const char *prefix);

/* "<dir>/<name>" into |out| (|size| bytes); -1 when it does not fit. */
int tg_testdir_path(const tg_testdir *dir, const char *name, char *out, size_t size);

/* Writes |text| (a C string) to <dir>/<name>, replacing any earlier file. */
int tg_testdir_write(const tg_testdir *dir, const char *name, const char *text);

/* Writes the public half of |key| as a one-key JWKS with |kid| (NULL: no
 * kid) and "use":"sig", or as a SubjectPublicKeyInfo PEM. */
int tg_testdir_write_jwks(const tg_testdir *dir, const char *name, const EVP_PKEY *key, const char *kid);
int tg_testdir_write_pem(const tg_testdir *dir, const char *name, const EVP_PKEY *key);

/* Removes the folder and everything below it. */
int tg_testdir_remove(tg_testdir *dir);

#endif
