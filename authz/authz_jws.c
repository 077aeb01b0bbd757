/* SHA256_* and friends hash on the stack (3.0's EVP_Digest allocates a
 * context per call), RSA_verify and ECDSA_do_verify verify on the key's
 * legacy form: all deprecated in OpenSSL 3.0, all what its providers call
 * underneath (see authz_key.priv). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "authz_jws.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

/* SHA-512 is the longest digest any accepted alg uses. */
#define JWS_MAX_DIGEST 64u

/* Reads raw R||S (2 * coord_len bytes) into *r and *s, which the caller
 * frees, and tells whether 0 < r, s < n. */
static bool ecdsa_scalars_in_range(const authz_key *key, const unsigned char *sig, BIGNUM **r, BIGNUM **s)
{
    size_t half = key->priv.coord_len;
    *r = BN_bin2bn(sig, (int)half, NULL);
    *s = BN_bin2bn(sig + half, (int)half, NULL);
    /* The "psychic signature" class (CVE-2022-21449): r or s zero, or not reduced mod n. */
    return *r && *s && !BN_is_zero(*r) && !BN_is_zero(*s) && BN_cmp(*r, key->priv.ec_order) < 0 &&
           BN_cmp(*s, key->priv.ec_order) < 0;
}

bool authz_jws_ecdsa_in_range(const authz_key *key, const unsigned char *sig, size_t sig_len)
{
    if (!key || key->kty != AUTHZ_KTY_EC || !sig || sig_len != key->priv.sig_len)
        return false;
    BIGNUM *r = NULL, *s = NULL;
    bool in_range = ecdsa_scalars_in_range(key, sig, &r, &s);
    BN_free(r);
    BN_free(s);
    return in_range;
}

/* Verifies the raw R||S |sig| of the EC |key| over |digest| after checking
 * 0 < r, s < n. Returns 0 when valid, else -1. */
static int jws_ecdsa_verify(const authz_key *key, const unsigned char *sig, const unsigned char *digest,
                            size_t digest_len)
{
    int ret = -1;
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    BIGNUM *r = NULL, *s = NULL;
    if (!ecdsa || !ecdsa_scalars_in_range(key, sig, &r, &s))
        goto cleanup;
    if (!ECDSA_SIG_set0(ecdsa, r, s))
        goto cleanup;
    r = s = NULL; /* owned by ecdsa now */
    /* The legacy EC_KEY is only read: ECDSA_do_verify is thread-safe on it. */
    if (ECDSA_do_verify(digest, (int)digest_len, ecdsa, (EC_KEY *)key->priv.ec) == 1)
        ret = 0;
cleanup:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    return ret;
}

/* The |md_nid| digest of |data| into |out|; returns its length, or 0. */
static size_t jws_digest(int md_nid, authz_slice data, unsigned char out[JWS_MAX_DIGEST])
{
    const void *bytes = data.len ? data.ptr : "";
    if (md_nid == NID_sha256) {
        SHA256_CTX c;
        return SHA256_Init(&c) == 1 && SHA256_Update(&c, bytes, data.len) == 1 && SHA256_Final(out, &c) == 1
                   ? SHA256_DIGEST_LENGTH
                   : 0;
    }
    if (md_nid == NID_sha384) {
        SHA512_CTX c;
        return SHA384_Init(&c) == 1 && SHA384_Update(&c, bytes, data.len) == 1 && SHA384_Final(out, &c) == 1
                   ? SHA384_DIGEST_LENGTH
                   : 0;
    }
    if (md_nid == NID_sha512) {
        SHA512_CTX c;
        return SHA512_Init(&c) == 1 && SHA512_Update(&c, bytes, data.len) == 1 && SHA512_Final(out, &c) == 1
                   ? SHA512_DIGEST_LENGTH
                   : 0;
    }
    return 0;
}

int authz_jws_verify(const authz_key *key, authz_alg alg, authz_slice signing_input, const unsigned char *sig,
                     size_t sig_len)
{
    int ret = -1;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char digest[JWS_MAX_DIGEST];
    size_t digest_len = 0;

    if (!key || !authz_key_allows_alg(key, alg) || !sig || sig_len != key->priv.sig_len ||
        (!signing_input.ptr && signing_input.len))
        goto cleanup;
    digest_len = jws_digest(key->priv.md_nid, signing_input, digest);
    if (digest_len == 0)
        goto cleanup;
    if (key->kty == AUTHZ_KTY_EC) {
        ret = jws_ecdsa_verify(key, sig, digest, digest_len);
    } else if (alg == AUTHZ_ALG_PS256) {
        /* A duplicate of the key's prepared context: the template stays
         * untouched, so threads may share it. */
        ctx = EVP_PKEY_CTX_dup(key->priv.pss_verify_ctx);
        if (ctx && EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1)
            ret = 0;
    } else if (RSA_verify(key->priv.md_nid, digest, (unsigned)digest_len, sig, (unsigned)sig_len,
                          (RSA *)key->priv.rsa) == 1) {
        /* The legacy RSA is only read (its Montgomery cache is filled under
         * its own lock): RSA_verify is thread-safe on it. */
        ret = 0;
    }
cleanup:
    EVP_PKEY_CTX_free(ctx);
    if (ret != 0)
        ERR_clear_error();
    return ret;
}
