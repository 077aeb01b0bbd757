/* EVP_PKEY_get0_RSA and EVP_PKEY_get0_EC_KEY, deprecated in OpenSSL 3.0,
 * give authz_jws_verify the keys it verifies on directly (see
 * authz_key.priv). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "authz_key.h"

#include <jansson.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_b64.h"

/* OpenSSL's own ceiling (OPENSSL_RSA_MAX_MODULUS_BITS); bounds the decode buffer. */
#define KEY_MAX_RSA_BITS 16384u
#define KEY_MAX_RSA_BYTES (KEY_MAX_RSA_BITS / 8u)
/* OpenSSL refuses exponents above 64 bits for large moduli; no real key comes close. */
#define KEY_MAX_E_BYTES 8u
#define KEY_MAX_COORD 66u
/* RFC 7518 §3.5: PS256's salt is as long as its SHA-256 hash. */
#define KEY_PSS_SALT_LEN 32
#define KEY_MAX_KID 1024u
/* Message buffer for one key's problem, before the "keys[i]: " prefix. */
#define KEY_MSG_MAX 200u
/* base64url of a SHA-256 digest is 43 characters; the encoder wants room for 44 and the terminator. */
#define KEY_FINGERPRINT_LEN 43u
#define KEY_FINGERPRINT_SIZE 45u

typedef struct key_curve {
    const char *crv;   /* JWK name */
    const char *group; /* OpenSSL group name */
    unsigned bits;
    size_t coord_len;
    authz_alg alg;
    const char *md;
} key_curve;

static const key_curve key_curves[] = {
    {"P-256", "prime256v1", 256, 32, AUTHZ_ALG_ES256, "SHA256"},
    {"P-384", "secp384r1", 384, 48, AUTHZ_ALG_ES384, "SHA384"},
    {"P-521", "secp521r1", 521, 66, AUTHZ_ALG_ES512, "SHA512"},
};

/* JWK members that only a private or symmetric key carries (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
static const char *const key_private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
key_msg(char *msg, size_t size, const char *fmt, ...)
{
    if (!msg || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
}

static const key_curve *key_curve_by_crv(const char *crv)
{
    for (size_t i = 0; i < sizeof key_curves / sizeof key_curves[0]; i++) {
        if (strcmp(crv, key_curves[i].crv) == 0)
            return &key_curves[i];
    }
    return NULL;
}

/* OpenSSL reports the group by its short name; a NIST name is accepted too. */
static const key_curve *key_curve_by_group(const char *group)
{
    for (size_t i = 0; i < sizeof key_curves / sizeof key_curves[0]; i++) {
        if (strcmp(group, key_curves[i].group) == 0 || strcmp(group, key_curves[i].crv) == 0)
            return &key_curves[i];
    }
    return NULL;
}

static void key_clear(authz_key *key)
{
    EVP_PKEY_free(key->pkey);
    free(key->kid);
    EVP_MD_free(key->priv.md);
    BN_free(key->priv.ec_order);
    EVP_PKEY_CTX_free(key->priv.pss_verify_ctx);
    memset(key, 0, sizeof *key);
}

/* kube-apiserver's key id: base64url(SHA-256(DER SubjectPublicKeyInfo)). */
static int key_fingerprint(EVP_PKEY *pkey, char out[KEY_FINGERPRINT_SIZE])
{
    int ret = -1;
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(pkey, &der);
    unsigned char digest[32];
    unsigned int digest_len = 0;
    if (der_len <= 0)
        goto cleanup;
    if (!EVP_Digest(der, (size_t)der_len, digest, &digest_len, EVP_sha256(), NULL) ||
        digest_len != sizeof digest)
        goto cleanup;
    if (authz_b64url_encode(digest, sizeof digest, out, KEY_FINGERPRINT_SIZE) != KEY_FINGERPRINT_LEN)
        goto cleanup;
    ret = 0;
cleanup:
    OPENSSL_free(der);
    return ret;
}

/* Appends |n| to |md| as a 2-byte length and its big-endian bytes, so the
 * digest of a sequence of numbers is unambiguous. */
static bool key_digest_bn(EVP_MD_CTX *md, const BIGNUM *n)
{
    unsigned char bytes[KEY_MAX_RSA_BYTES];
    int len = BN_num_bytes(n);
    if (len < 0 || (size_t)len > sizeof bytes || BN_bn2bin(n, bytes) != len)
        return false;
    unsigned char prefix[2] = {(unsigned char)(len >> 8), (unsigned char)len};
    return EVP_DigestUpdate(md, prefix, sizeof prefix) == 1 && EVP_DigestUpdate(md, bytes, (size_t)len) == 1;
}

/* key->material from the public numbers: |a|, |b| are RSA n and e, or EC x
 * and y; |label| separates key kinds (and EC curves). */
static int key_material(authz_key *key, const char *label, const BIGNUM *a, const BIGNUM *b)
{
    int ret = -1;
    unsigned int len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, label, strlen(label) + 1) != 1 || !key_digest_bn(md, a) ||
        !key_digest_bn(md, b) || EVP_DigestFinal_ex(md, key->material, &len) != 1 ||
        len != AUTHZ_KEY_MATERIAL_LEN)
        goto cleanup;
    ret = 0;
cleanup:
    EVP_MD_CTX_free(md);
    return ret;
}

static int key_finish_rsa(authz_key *key, char *msg, size_t msg_size)
{
    int ret = -1;
    BIGNUM *n = NULL, *e = NULL, *d = NULL;
    if (!EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_RSA_N, &n) ||
        !EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_RSA_E, &e)) {
        key_msg(msg, msg_size, "RSA key without modulus or exponent");
        goto cleanup;
    }
    if (EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_RSA_D, &d)) {
        key_msg(msg, msg_size, "private RSA key refused: only public keys belong here");
        goto cleanup;
    }
    int bits = BN_num_bits(n);
    if (bits < (int)AUTHZ_KEY_MIN_RSA_BITS || bits > (int)KEY_MAX_RSA_BITS) {
        key_msg(msg, msg_size, "RSA modulus of %d bits (allowed %u to %u)", bits, AUTHZ_KEY_MIN_RSA_BITS,
                KEY_MAX_RSA_BITS);
        goto cleanup;
    }
    if (!BN_is_odd(n)) {
        key_msg(msg, msg_size, "RSA modulus is even");
        goto cleanup;
    }
    if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bytes(e) > (int)KEY_MAX_E_BYTES) {
        key_msg(msg, msg_size, "RSA public exponent must be odd, above 1 and at most %u bytes",
                KEY_MAX_E_BYTES);
        goto cleanup;
    }
    key->kty = AUTHZ_KTY_RSA;
    key->bits = (unsigned)bits;
    key->priv.sig_len = (size_t)BN_num_bytes(n);
    key->priv.coord_len = 0;
    key->priv.md_nid = NID_sha256;
    key->priv.md = EVP_MD_fetch(NULL, "SHA256", NULL);
    key->priv.rsa = EVP_PKEY_get0_RSA(key->pkey);
    if (!key->priv.md || !key->priv.rsa) {
        key_msg(msg, msg_size, "cannot prepare RSA verification");
        goto cleanup;
    }
    snprintf(key->priv.describe, sizeof key->priv.describe, "RSA-%u", key->bits);
    if (key_material(key, "RSA", n, e) != 0) {
        key_msg(msg, msg_size, "cannot digest the RSA key");
        goto cleanup;
    }
    ret = 0;
cleanup:
    BN_free(n);
    BN_free(e);
    BN_clear_free(d);
    return ret;
}

static int key_finish_ec(authz_key *key, char *msg, size_t msg_size)
{
    int ret = -1;
    EVP_PKEY_CTX *ctx = NULL;
    EC_GROUP *group = NULL;
    BIGNUM *priv = NULL, *x = NULL, *y = NULL;
    char group_name[64];
    size_t group_len = 0;
    if (!EVP_PKEY_get_utf8_string_param(key->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group_name, sizeof group_name,
                                        &group_len)) {
        key_msg(msg, msg_size, "EC key without a named curve (explicit parameters are refused)");
        goto cleanup;
    }
    const key_curve *curve = key_curve_by_group(group_name);
    if (!curve) {
        key_msg(msg, msg_size, "EC curve %s is not P-256, P-384 or P-521", group_name);
        goto cleanup;
    }
    if (EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &priv)) {
        key_msg(msg, msg_size, "private EC key refused: only public keys belong here");
        goto cleanup;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
        key_msg(msg, msg_size, "EC public key is not a valid point of %s", curve->crv);
        goto cleanup;
    }
    group = EC_GROUP_new_by_curve_name(OBJ_sn2nid(curve->group));
    const BIGNUM *order = group ? EC_GROUP_get0_order(group) : NULL;
    key->priv.ec_order = order ? BN_dup(order) : NULL;
    key->priv.md_nid = OBJ_sn2nid(curve->md);
    key->priv.ec = EVP_PKEY_get0_EC_KEY(key->pkey);
    if (!key->priv.ec_order || !key->priv.ec || key->priv.md_nid == NID_undef) {
        key_msg(msg, msg_size, "cannot prepare %s verification", curve->crv);
        goto cleanup;
    }
    key->kty = AUTHZ_KTY_EC;
    key->bits = curve->bits;
    key->alg = curve->alg;
    key->priv.coord_len = curve->coord_len;
    key->priv.sig_len = 2 * curve->coord_len;
    snprintf(key->priv.describe, sizeof key->priv.describe, "EC %s", curve->crv);
    if (!EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
        !EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
        key_material(key, curve->crv, x, y) != 0) {
        key_msg(msg, msg_size, "cannot digest the %s key", curve->crv);
        goto cleanup;
    }
    ret = 0;
cleanup:
    EVP_PKEY_CTX_free(ctx);
    EC_GROUP_free(group);
    BN_clear_free(priv);
    BN_free(x);
    BN_free(y);
    return ret;
}

/* A PS256 verify context for the RSA |key|: its digest, PSS padding, MGF1
 * with the same digest and KEY_PSS_SALT_LEN salt bytes. */
static EVP_PKEY_CTX *key_pss_verify_template(const authz_key *key)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (!ctx || EVP_PKEY_verify_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx, key->priv.md) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, key->priv.md) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, KEY_PSS_SALT_LEN) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Fills |key| from its |key->pkey| (already set, owned by |key|): checks type
 * and size, precomputes what verification needs, and sets the kid: |kid|
 * (|kid_len| bytes) when given, else the fingerprint. |jwk_alg| pins the
 * algorithm (AUTHZ_ALG_UNSUPPORTED: not pinned) and must agree with the key.
 * Returns 0, or -1 with |msg| set; the caller clears |key| either way on error. */
static int key_finish(authz_key *key, const char *kid, size_t kid_len, authz_alg jwk_alg, char *msg,
                      size_t msg_size)
{
    int base = EVP_PKEY_get_base_id(key->pkey);
    if (base == EVP_PKEY_RSA) {
        if (key_finish_rsa(key, msg, msg_size) != 0)
            return -1;
        if (jwk_alg != AUTHZ_ALG_UNSUPPORTED && jwk_alg != AUTHZ_ALG_RS256 && jwk_alg != AUTHZ_ALG_PS256) {
            key_msg(msg, msg_size, "alg %s does not fit an RSA key (RS256 or PS256)",
                    authz_alg_name(jwk_alg));
            return -1;
        }
        key->alg = jwk_alg != AUTHZ_ALG_UNSUPPORTED ? jwk_alg : AUTHZ_ALG_RS256;
    } else if (base == EVP_PKEY_EC) {
        if (key_finish_ec(key, msg, msg_size) != 0)
            return -1;
        if (jwk_alg != AUTHZ_ALG_UNSUPPORTED && jwk_alg != key->alg) {
            key_msg(msg, msg_size, "alg %s does not fit %s (%s)", authz_alg_name(jwk_alg), key->priv.describe,
                    authz_alg_name(key->alg));
            return -1;
        }
    } else {
        key_msg(msg, msg_size, "unsupported key type %s (RSA or EC only)", OBJ_nid2sn(base));
        return -1;
    }
    key->alg_pinned = jwk_alg != AUTHZ_ALG_UNSUPPORTED;
    if (key->kty == AUTHZ_KTY_RSA && !(key->priv.pss_verify_ctx = key_pss_verify_template(key))) {
        key_msg(msg, msg_size, "cannot prepare verification for %s", key->priv.describe);
        return -1;
    }

    char fingerprint[KEY_FINGERPRINT_SIZE];
    if (!kid) {
        if (key_fingerprint(key->pkey, fingerprint) != 0) {
            key_msg(msg, msg_size, "cannot compute the key fingerprint");
            return -1;
        }
        kid = fingerprint;
        kid_len = KEY_FINGERPRINT_LEN;
    } else {
        key->kid_from_jwk = true;
    }
    key->kid = malloc(kid_len + 1);
    if (!key->kid) {
        key_msg(msg, msg_size, "out of memory");
        return -1;
    }
    memcpy(key->kid, kid, kid_len);
    key->kid[kid_len] = '\0';
    key->kid_len = kid_len;
    return 0;
}

/* Decodes the base64url string member |name| of |jwk| into |out|: at least 1
 * and at most |max_len| bytes (exactly |max_len| when |exact|). */
static int jwk_b64_member(const json_t *jwk, const char *name, unsigned char *out, size_t out_size,
                          size_t max_len, bool exact, size_t *out_len, char *msg, size_t msg_size)
{
    const json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v)) {
        key_msg(msg, msg_size, "\"%s\" missing or not a string", name);
        return -1;
    }
    authz_slice text = {json_string_value(v), json_string_length(v)};
    /* Bound the text before decoding: 4 characters per 3 bytes, plus a partial group. */
    if (text.len > max_len / 3 * 4 + 4 || authz_b64url_decoded_max(text.len) > out_size) {
        key_msg(msg, msg_size, "\"%s\" is too long", name);
        return -1;
    }
    long n = authz_b64url_decode(text, out, out_size);
    if (n < 0) {
        key_msg(msg, msg_size, "\"%s\" is not valid base64url", name);
        return -1;
    }
    if (n == 0 || (size_t)n > max_len || (exact && (size_t)n != max_len)) {
        if (exact)
            key_msg(msg, msg_size, "\"%s\" has %ld bytes, expected %zu", name, n, max_len);
        else
            key_msg(msg, msg_size, "\"%s\" has %ld bytes (1 to %zu allowed)", name, n, max_len);
        return -1;
    }
    *out_len = (size_t)n;
    return 0;
}

/* Builds a public EVP_PKEY of |type| ("RSA", "EC") from |params|. */
static EVP_PKEY *key_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *jwk_rsa(const json_t *jwk, char *msg, size_t msg_size)
{
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    unsigned char n_buf[KEY_MAX_RSA_BYTES + 2];
    unsigned char e_buf[KEY_MAX_E_BYTES + 2];
    size_t n_len = 0, e_len = 0;
    if (jwk_b64_member(jwk, "n", n_buf, sizeof n_buf, KEY_MAX_RSA_BYTES, false, &n_len, msg, msg_size) != 0 ||
        jwk_b64_member(jwk, "e", e_buf, sizeof e_buf, KEY_MAX_E_BYTES, false, &e_len, msg, msg_size) != 0)
        goto cleanup;
    n = BN_bin2bn(n_buf, (int)n_len, NULL);
    e = BN_bin2bn(e_buf, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!n || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
        key_msg(msg, msg_size, "out of memory");
        goto cleanup;
    }
    pkey = key_from_params("RSA", bld);
    if (!pkey)
        key_msg(msg, msg_size, "OpenSSL refused the RSA key");
cleanup:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

static EVP_PKEY *jwk_ec(const json_t *jwk, char *msg, size_t msg_size)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    unsigned char point[1 + 2 * KEY_MAX_COORD];
    unsigned char coord[KEY_MAX_COORD + 2];
    size_t len = 0;
    const json_t *crv = json_object_get(jwk, "crv");
    if (!json_is_string(crv)) {
        key_msg(msg, msg_size, "\"crv\" missing or not a string");
        goto cleanup;
    }
    const key_curve *curve = key_curve_by_crv(json_string_value(crv));
    if (!curve) {
        key_msg(msg, msg_size, "crv \"%.32s\" is not P-256, P-384 or P-521", json_string_value(crv));
        goto cleanup;
    }
    /* Uncompressed SEC1 point: 0x04 || x || y, each exactly the field length (RFC 7518 §6.2.1.2). */
    point[0] = 0x04;
    if (jwk_b64_member(jwk, "x", coord, sizeof coord, curve->coord_len, true, &len, msg, msg_size) != 0)
        goto cleanup;
    memcpy(point + 1, coord, len);
    if (jwk_b64_member(jwk, "y", coord, sizeof coord, curve->coord_len, true, &len, msg, msg_size) != 0)
        goto cleanup;
    memcpy(point + 1 + curve->coord_len, coord, len);
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve->group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * curve->coord_len)) {
        key_msg(msg, msg_size, "out of memory");
        goto cleanup;
    }
    pkey = key_from_params("EC", bld);
    if (!pkey)
        key_msg(msg, msg_size, "EC point is not on %s", curve->crv);
cleanup:
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* Parses one JWK into |key|. Sets |*skip| for keys that are not ours to use
 * (use other than "sig", key types other than RSA, EC and oct). */
static int jwk_parse(const json_t *jwk, authz_key *key, bool *skip, char *msg, size_t msg_size)
{
    *skip = false;
    if (!json_is_object(jwk)) {
        key_msg(msg, msg_size, "not a JSON object");
        return -1;
    }
    const json_t *kty = json_object_get(jwk, "kty");
    if (!json_is_string(kty)) {
        key_msg(msg, msg_size, "\"kty\" missing or not a string");
        return -1;
    }
    for (size_t i = 0; i < sizeof key_private_members / sizeof key_private_members[0]; i++) {
        if (json_object_get(jwk, key_private_members[i])) {
            key_msg(msg, msg_size, "private key member \"%s\" present: only public keys belong here",
                    key_private_members[i]);
            return -1;
        }
    }
    const char *kty_name = json_string_value(kty);
    if (strcmp(kty_name, "oct") == 0) {
        key_msg(msg, msg_size, "symmetric key (kty \"oct\") refused");
        return -1;
    }
    bool is_rsa = strcmp(kty_name, "RSA") == 0;
    if (!is_rsa && strcmp(kty_name, "EC") != 0) {
        *skip = true;
        return 0;
    }
    const json_t *use = json_object_get(jwk, "use");
    if (use && !json_is_string(use)) {
        key_msg(msg, msg_size, "\"use\" is not a string");
        return -1;
    }
    if (use && strcmp(json_string_value(use), "sig") != 0) {
        *skip = true;
        return 0;
    }
    authz_alg alg = AUTHZ_ALG_UNSUPPORTED;
    const json_t *alg_json = json_object_get(jwk, "alg");
    if (alg_json) {
        if (!json_is_string(alg_json)) {
            key_msg(msg, msg_size, "\"alg\" is not a string");
            return -1;
        }
        authz_slice name = {json_string_value(alg_json), json_string_length(alg_json)};
        alg = authz_alg_from_name(name);
        if (alg == AUTHZ_ALG_UNSUPPORTED) {
            key_msg(msg, msg_size, "alg \"%.32s\" is not supported", json_string_value(alg_json));
            return -1;
        }
    }
    const char *kid = NULL;
    size_t kid_len = 0;
    const json_t *kid_json = json_object_get(jwk, "kid");
    if (kid_json) {
        if (!json_is_string(kid_json)) {
            key_msg(msg, msg_size, "\"kid\" is not a string");
            return -1;
        }
        kid = json_string_value(kid_json);
        kid_len = json_string_length(kid_json);
        if (kid_len == 0 || kid_len > KEY_MAX_KID || memchr(kid, '\0', kid_len)) {
            key_msg(msg, msg_size, "\"kid\" must be 1 to %u bytes without NUL", KEY_MAX_KID);
            return -1;
        }
    }
    key->pkey = is_rsa ? jwk_rsa(jwk, msg, msg_size) : jwk_ec(jwk, msg, msg_size);
    if (!key->pkey)
        return -1;
    return key_finish(key, kid, kid_len, alg, msg, msg_size);
}

void authz_keyset_init(authz_keyset *set)
{
    memset(set, 0, sizeof *set);
}

/* Moves |count| keys from |keys| to the end of |set|; on failure leaves them with the caller. */
static int keyset_append(authz_keyset *set, authz_key *keys, size_t count)
{
    if (count == 0)
        return 0;
    if (set->count + count > set->capacity) {
        size_t cap = set->count + count;
        authz_key *grown = realloc(set->keys, cap * sizeof *grown);
        if (!grown)
            return -1;
        set->keys = grown;
        set->capacity = cap;
    }
    memcpy(set->keys + set->count, keys, count * sizeof *keys);
    set->count += count;
    return 0;
}

int authz_keyset_add_jwks(authz_keyset *set, const char *json, size_t len, size_t max_keys, char *err,
                          size_t err_size)
{
    int ret = -1;
    json_t *root = NULL;
    authz_key *found = NULL;
    size_t added = 0;
    char msg[KEY_MSG_MAX];
    if (!set || (!json && len)) {
        key_msg(err, err_size, "JWKS: no document");
        goto cleanup;
    }
    json_error_t jerr;
    root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        key_msg(err, err_size, "JWKS: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        goto cleanup;
    }
    const json_t *keys = json_is_object(root) ? json_object_get(root, "keys") : NULL;
    if (!json_is_array(keys)) {
        key_msg(err, err_size, "JWKS: expected an object {\"keys\": [...]}");
        goto cleanup;
    }
    size_t room = max_keys > set->count ? max_keys - set->count : 0;
    size_t total = json_array_size(keys);
    size_t slots = total < room ? total : room;
    found = calloc(slots ? slots : 1, sizeof *found);
    if (!found) {
        key_msg(err, err_size, "JWKS: out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < total; i++) {
        authz_key key;
        memset(&key, 0, sizeof key);
        bool skip = false;
        if (jwk_parse(json_array_get(keys, i), &key, &skip, msg, sizeof msg) != 0) {
            key_clear(&key);
            key_msg(err, err_size, "keys[%zu]: %s", i, msg);
            goto cleanup;
        }
        if (skip)
            continue;
        if (added == slots) {
            key_clear(&key);
            key_msg(err, err_size, "keys[%zu]: more than %zu keys", i, max_keys);
            goto cleanup;
        }
        found[added++] = key;
    }
    if (keyset_append(set, found, added) != 0) {
        key_msg(err, err_size, "JWKS: out of memory");
        goto cleanup;
    }
    added = 0;
    ret = 0;
cleanup:
    for (size_t i = 0; i < added; i++)
        key_clear(&found[i]);
    free(found);
    json_decref(root);
    ERR_clear_error();
    return ret;
}

/* Decodes a PKCS#1 RSAPublicKey without the deprecated RSA API. */
static EVP_PKEY *pem_pkcs1_rsa(const unsigned char *der, size_t len)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "type-specific", "RSA", EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    const unsigned char *p = der;
    size_t left = len;
    if (!dctx || OSSL_DECODER_from_data(dctx, &p, &left) != 1 || left != 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

static EVP_PKEY *pem_spki(const unsigned char *der, long len)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, len);
    if (pkey && p != der + len) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    return pkey;
}

static EVP_PKEY *pem_certificate(const unsigned char *der, long len)
{
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, len);
    EVP_PKEY *pkey = NULL;
    if (cert && p == der + len)
        pkey = X509_get_pubkey(cert);
    X509_free(cert);
    return pkey;
}

/* True when the PEM reader stopped because no further block starts. */
static bool pem_at_end(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

int authz_keyset_add_pem(authz_keyset *set, const char *pem, size_t len, size_t max_keys, char *err,
                         size_t err_size)
{
    int ret = -1;
    BIO *bio = NULL;
    authz_key *found = NULL;
    size_t added = 0, cap = 0;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    char msg[KEY_MSG_MAX];
    if (!set || !pem || len > INT_MAX) {
        key_msg(err, err_size, "PEM: no document or too large");
        goto cleanup;
    }
    size_t room = max_keys > set->count ? max_keys - set->count : 0;
    ERR_clear_error();
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        key_msg(err, err_size, "PEM: out of memory");
        goto cleanup;
    }
    for (size_t block = 0;; block++) {
        long data_len = 0;
        if (!PEM_read_bio(bio, &name, &header, &data, &data_len)) {
            if (pem_at_end())
                break;
            key_msg(err, err_size, "PEM block %zu: malformed", block);
            goto cleanup;
        }
        if (strstr(name, "PRIVATE KEY")) {
            key_msg(err, err_size, "PEM block %zu: %s refused: this file must hold public keys only", block,
                    name);
            goto cleanup;
        }
        EVP_PKEY *pkey = NULL;
        bool known = true;
        if (strcmp(name, "PUBLIC KEY") == 0)
            pkey = pem_spki(data, data_len);
        else if (strcmp(name, "RSA PUBLIC KEY") == 0)
            pkey = pem_pkcs1_rsa(data, (size_t)data_len);
        else if (strcmp(name, "CERTIFICATE") == 0)
            pkey = pem_certificate(data, data_len);
        else
            known = false;
        if (known) {
            authz_key key;
            memset(&key, 0, sizeof key);
            key.pkey = pkey;
            if (!pkey) {
                key_msg(err, err_size, "PEM block %zu: cannot decode %s", block, name);
                goto cleanup;
            }
            if (key_finish(&key, NULL, 0, AUTHZ_ALG_UNSUPPORTED, msg, sizeof msg) != 0) {
                key_clear(&key);
                key_msg(err, err_size, "PEM block %zu: %s", block, msg);
                goto cleanup;
            }
            if (added == room) {
                key_clear(&key);
                key_msg(err, err_size, "PEM block %zu: more than %zu keys", block, max_keys);
                goto cleanup;
            }
            if (added == cap) {
                size_t grown_cap = cap ? 2 * cap : 4;
                authz_key *grown = realloc(found, grown_cap * sizeof *grown);
                if (!grown) {
                    key_clear(&key);
                    key_msg(err, err_size, "PEM: out of memory");
                    goto cleanup;
                }
                found = grown;
                cap = grown_cap;
            }
            found[added++] = key;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    if (added == 0) {
        key_msg(err, err_size, "PEM: no PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block");
        goto cleanup;
    }
    if (keyset_append(set, found, added) != 0) {
        key_msg(err, err_size, "PEM: out of memory");
        goto cleanup;
    }
    added = 0;
    ret = 0;
cleanup:
    for (size_t i = 0; i < added; i++)
        key_clear(&found[i]);
    free(found);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    ERR_clear_error();
    return ret;
}

void authz_keyset_free(authz_keyset *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        key_clear(&set->keys[i]);
    free(set->keys);
    memset(set, 0, sizeof *set);
}

bool authz_key_allows_alg(const authz_key *key, authz_alg alg)
{
    if (!key || !key->pkey || alg == AUTHZ_ALG_UNSUPPORTED)
        return false;
    if (key->kty == AUTHZ_KTY_RSA) {
        if (alg != AUTHZ_ALG_RS256 && alg != AUTHZ_ALG_PS256)
            return false;
        return !key->alg_pinned || alg == key->alg;
    }
    return key->kty == AUTHZ_KTY_EC && alg == key->alg;
}

bool authz_key_same_material(const authz_key *a, const authz_key *b)
{
    if (!a || !b || !a->pkey || !b->pkey)
        return false;
    return memcmp(a->material, b->material, sizeof a->material) == 0 && EVP_PKEY_eq(a->pkey, b->pkey) == 1;
}

const char *authz_key_describe(const authz_key *key)
{
    if (!key || !key->pkey || key->priv.describe[0] == '\0')
        return "no key";
    return key->priv.describe;
}
