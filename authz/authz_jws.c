#include "authz_jws.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

/* SHA-512 is the longest digest any accepted alg uses. */
#define JWS_MAX_DIGEST 64u
/* DER ECDSA-Sig-Value for P-521: SEQUENCE of two INTEGERs of up to 67 bytes
 * (66 plus a sign byte), each with a 2-byte header, under a 3-byte header. */
#define JWS_MAX_DER_SIG 160u

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

/* Turns raw R||S into DER for OpenSSL after checking 0 < r, s < n. Returns
 * the DER length, or 0 when the signature is out of range or conversion fails. */
static size_t jws_ecdsa_der(const authz_key *key, const unsigned char *sig, unsigned char *der,
                            size_t der_size)
{
    size_t der_len = 0;
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    BIGNUM *r = NULL, *s = NULL;
    if (!ecdsa || !ecdsa_scalars_in_range(key, sig, &r, &s))
        goto cleanup;
    if (!ECDSA_SIG_set0(ecdsa, r, s))
        goto cleanup;
    r = s = NULL; /* owned by ecdsa now */
    int need = i2d_ECDSA_SIG(ecdsa, NULL);
    if (need <= 0 || (size_t)need > der_size)
        goto cleanup;
    unsigned char *p = der;
    if (i2d_ECDSA_SIG(ecdsa, &p) != need)
        goto cleanup;
    der_len = (size_t)need;
cleanup:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    return der_len;
}

int authz_jws_verify(const authz_key *key, authz_alg alg, authz_slice signing_input, const unsigned char *sig,
                     size_t sig_len)
{
    int ret = -1;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char digest[JWS_MAX_DIGEST];
    unsigned int digest_len = 0;
    unsigned char der[JWS_MAX_DER_SIG];
    const unsigned char *to_verify = sig;
    size_t to_verify_len = sig_len;

    if (!key || !authz_key_allows_alg(key, alg) || !sig || sig_len != key->priv.sig_len ||
        (!signing_input.ptr && signing_input.len))
        goto cleanup;
    if (!EVP_Digest(signing_input.len ? signing_input.ptr : "", signing_input.len, digest, &digest_len,
                    key->priv.md, NULL))
        goto cleanup;
    if (key->kty == AUTHZ_KTY_EC) {
        to_verify_len = jws_ecdsa_der(key, sig, der, sizeof der);
        if (to_verify_len == 0)
            goto cleanup;
        to_verify = der;
    }
    /* A duplicate of the key's prepared context: the template stays untouched, so threads may share it. */
    ctx = EVP_PKEY_CTX_dup(key->priv.verify_ctx[alg == AUTHZ_ALG_PS256 ? 1 : 0]);
    if (ctx && EVP_PKEY_verify(ctx, to_verify, to_verify_len, digest, digest_len) == 1)
        ret = 0;
cleanup:
    EVP_PKEY_CTX_free(ctx);
    if (ret != 0)
        ERR_clear_error();
    return ret;
}
