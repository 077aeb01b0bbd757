/* fuzz_keys: authz_keyset_add_jwks and authz_keyset_add_pem on the input
 * (a key file is written by whoever configures tokengate, and a JWKS is
 * often fetched from a cluster).
 *
 * Checks: failure leaves the set unchanged with a message; success adds
 * keys within max_keys, each with an EVP key, a NUL-terminated kid of the
 * stated length, RSA moduli of at least AUTHZ_KEY_MIN_RSA_BITS, a
 * description, and an alg the key itself allows; a max_keys of 1 refuses
 * exactly the documents that hold more than one key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "keys: " __VA_ARGS__);                                                                         \
        fprintf(stderr, "\n");                                                                                         \
        abort();                                                                                                       \
    } while (0)

typedef int (*add_fn)(authz_keyset *, const char *, size_t, size_t, char *, size_t);

static void check_set(const authz_keyset *set)
{
    for (size_t i = 0; i < set->count; i++) {
        const authz_key *k = &set->keys[i];
        if (k->pkey == NULL || k->kid == NULL || strlen(k->kid) != k->kid_len || k->kid_len == 0) {
            FAIL("key %zu without pkey or kid", i);
        }
        if ((k->kty == AUTHZ_KTY_RSA && k->bits < AUTHZ_KEY_MIN_RSA_BITS) ||
            (k->kty != AUTHZ_KTY_RSA && k->kty != AUTHZ_KTY_EC)) {
            FAIL("key %zu: kty %d, %u bits", i, (int)k->kty, k->bits);
        }
        if (!authz_key_allows_alg(k, k->alg) || authz_key_describe(k) == NULL ||
            authz_key_describe(k)[0] == '\0') {
            FAIL("key %zu does not allow its own alg", i);
        }
    }
}

static void fuzz_one(add_fn add, const char *text, size_t size, const char *what)
{
    authz_keyset set, one;
    char err[256];
    int rc, rc_one;

    authz_keyset_init(&set);
    authz_keyset_init(&one);
    err[0] = '\0';
    rc = add(&set, text, size, AUTHZ_KEY_DEFAULT_MAX_KEYS, err, sizeof(err));
    if (rc == 0) {
        if (set.count > AUTHZ_KEY_DEFAULT_MAX_KEYS) {
            FAIL("%s: %zu keys", what, set.count);
        }
        check_set(&set);
    } else if (rc != -1 || set.count != 0 || err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL) {
        FAIL("%s: failure rc %d leaves %zu keys or no message", what, rc, set.count);
    }
    rc_one = add(&one, text, size, 1, err, sizeof(err));
    if ((rc_one == 0) != (rc == 0 && set.count <= 1) || (rc_one == 0 && one.count != set.count)) {
        FAIL("%s: max_keys 1 gives %d with %zu keys, unbounded %d with %zu", what, rc_one, one.count, rc, set.count);
    }
    authz_keyset_free(&set);
    authz_keyset_free(&one);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(authz_keyset_add_jwks, (const char *)data, size, "jwks");
    fuzz_one(authz_keyset_add_pem, (const char *)data, size, "pem");
    return 0;
}
