/* authz_key: public keys a cluster trusts, loaded from JWKS or PEM.
 *
 * Keys are parsed once at load time into ready EVP_PKEY objects; an
 * authz_keyset is immutable after loading and may be read by any number of
 * threads. */
#ifndef AUTHZ_KEY_H
#define AUTHZ_KEY_H

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "authz_alg.h"

#define AUTHZ_KEY_MIN_RSA_BITS 2048u
#define AUTHZ_KEY_DEFAULT_MAX_KEYS 64u
#define AUTHZ_KEY_MATERIAL_LEN 32u

typedef enum authz_kty {
    AUTHZ_KTY_RSA = 1,
    AUTHZ_KTY_EC,
} authz_kty;

typedef struct authz_key {
    EVP_PKEY *pkey; /* owned */
    char *kid;      /* owned, NUL-terminated. JWK "kid"; for PEM keys, and JWKs
                       without one, kube-apiserver's fingerprint:
                       base64url(SHA-256(DER SubjectPublicKeyInfo)) */
    size_t kid_len;
    bool kid_from_jwk; /* kid was written in the JWK (false: computed) */
    authz_kty kty;
    authz_alg alg;   /* the only alg allowed: JWK "alg" if given, else
                        RS256 for RSA (PS256 allowed too, see authz_key_allows_alg),
                        ES256/384/512 by curve for EC */
    bool alg_pinned; /* alg came from the JWK: only that one is accepted */
    unsigned bits;   /* RSA modulus bits, or EC field bits (256, 384, 521) */
    /* SHA-256 over the public numbers alone (RSA n and e; EC curve, x and y),
     * so one key read from JWKS, SPKI, PKCS#1 or a certificate, with any
     * kid or point encoding, has one value: sorts keys for
     * authz_key_same_material. */
    unsigned char material[AUTHZ_KEY_MATERIAL_LEN];

    /* Private to authz_key.c and authz_jws.c: computed once at load so that
     * authz_jws_verify does no lookups or parameter queries per token. */
    struct {
        int md_nid;       /* NID_sha256, NID_sha384 or NID_sha512: RSA and P-256, P-384, P-521 */
        EVP_MD *md;       /* owned, explicitly fetched SHA-256 for the PS256 context; NULL for EC */
        size_t sig_len;   /* exact JWS signature length: modulus bytes, or 2 * coord_len */
        size_t coord_len; /* EC field element bytes (32, 48, 66); 0 for RSA */
        BIGNUM *ec_order; /* owned, EC group order n for the 0 < r, s < n check; NULL for RSA */
        /* Borrowed from |pkey| (its legacy form, made once here): RS256 and
         * ECDSA verify on these directly, the same RSA_verify and
         * ECDSA_do_verify calls OpenSSL's providers make, without a context
         * duplicated and freed per token. */
        const RSA *rsa;   /* RSA keys, else NULL */
        const EC_KEY *ec; /* EC keys, else NULL */
        /* owned, verify-initialised PS256 context (digest, PSS padding and
         * salt set), RSA only: never used directly, authz_jws_verify works on
         * a duplicate, which skips OpenSSL's per-call algorithm fetches and
         * keeps the key shareable. */
        EVP_PKEY_CTX *pss_verify_ctx;
        char describe[24]; /* authz_key_describe's text */
    } priv;
} authz_key;

typedef struct authz_keyset {
    authz_key *keys; /* owned */
    size_t count;
    size_t capacity;
} authz_keyset;

void authz_keyset_init(authz_keyset *set);

/* Adds every signing key of the JWKS document |json| (|len| bytes):
 * {"keys":[...]} with RSA (n, e) and EC (crv P-256/P-384/P-521, x, y) keys;
 * "kid", "alg" (must agree with kty/crv), "use" (keys with use other than
 * "sig" are skipped) optional. Private members (d, p, q...) or symmetric
 * keys (kty "oct") are an error; other key types are skipped. RSA moduli
 * below AUTHZ_KEY_MIN_RSA_BITS are an error. The total key count may not
 * exceed |max_keys|. Returns 0, or -1 with a message naming the key index
 * and the problem in |err| (|err_size| bytes). On failure |set| is unchanged. */
int authz_keyset_add_jwks(authz_keyset *set, const char *json, size_t len, size_t max_keys, char *err,
                          size_t err_size);

/* Adds every "PUBLIC KEY" or "RSA PUBLIC KEY" block (and certificates'
 * public keys) of the PEM text |pem|, as kube-apiserver's
 * --service-account-key-file holds. At least one key is required. Same
 * limits, errors and return values as authz_keyset_add_jwks. */
int authz_keyset_add_pem(authz_keyset *set, const char *pem, size_t len, size_t max_keys, char *err,
                         size_t err_size);

/* Releases every key. The set may be initialised again. */
void authz_keyset_free(authz_keyset *set);

/* True when |key| may verify a signature made with |alg|: RSA keys allow
 * RS256 and PS256 (only the pinned one if alg_pinned), EC keys only the
 * algorithm of their curve. */
bool authz_key_allows_alg(const authz_key *key, authz_alg alg);

/* True when |a| and |b| hold the same public key, whatever the format
 * they were read from or their kids (EVP_PKEY_eq on equal material digests). */
bool authz_key_same_material(const authz_key *a, const authz_key *b);

/* Describes |key| for reports: "RSA-2048", "EC P-256". The text lives as
 * long as |key|. */
const char *authz_key_describe(const authz_key *key);

#endif
