#include "tg_testkeys.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#define TG_MAX_COORD 66u
#define TG_MAX_SIG 1024u

typedef struct tg_curve {
    const char *group; /* OpenSSL short name */
    const char *crv;   /* JWK name */
    const char *alg;
    size_t coord_len;
} tg_curve;

static const tg_curve tg_curves[] = {
    {"prime256v1", "P-256", "ES256", 32},
    {"secp384r1", "P-384", "ES384", 48},
    {"secp521r1", "P-521", "ES512", 66},
};

static const tg_curve *tg_curve_of(const EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len))
        return NULL;
    for (size_t i = 0; i < sizeof tg_curves / sizeof tg_curves[0]; i++) {
        if (strcmp(group, tg_curves[i].group) == 0 || strcmp(group, tg_curves[i].crv) == 0)
            return &tg_curves[i];
    }
    return NULL;
}

/* The hash of a JWS algorithm name; NULL when unknown. */
static const char *tg_alg_md(const char *alg)
{
    if (!alg || strlen(alg) != 5)
        return NULL;
    if (alg[0] != 'R' && alg[0] != 'P' && alg[0] != 'E' && alg[0] != 'H')
        return NULL;
    if (strcmp(alg + 1, "S256") == 0)
        return "SHA256";
    if (strcmp(alg + 1, "S384") == 0)
        return "SHA384";
    if (strcmp(alg + 1, "S512") == 0)
        return "SHA512";
    return NULL;
}

static char *tg_strndup(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

static char *tg_bio_string(BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len < 0 || !data)
        return NULL;
    return tg_strndup(data, (size_t)len);
}

EVP_PKEY *tg_keygen(const char *type)
{
    if (!type)
        return NULL;
    if (strcmp(type, "rsa1024") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    if (strcmp(type, "rsa2048") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (strcmp(type, "rsa3072") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    if (strcmp(type, "rsa4096") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    if (strcmp(type, "p256") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (strcmp(type, "p384") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (strcmp(type, "p521") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    return NULL;
}

const char *tg_key_default_alg(const EVP_PKEY *key)
{
    if (!key)
        return NULL;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        return "RS256";
    const tg_curve *curve = tg_curve_of(key);
    return curve ? curve->alg : NULL;
}

char *tg_private_pem(const EVP_PKEY *key)
{
    char *out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio && key && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1)
        out = tg_bio_string(bio);
    BIO_free(bio);
    return out;
}

char *tg_public_pem(const EVP_PKEY *key)
{
    char *out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio && key && PEM_write_bio_PUBKEY(bio, key) == 1)
        out = tg_bio_string(bio);
    BIO_free(bio);
    return out;
}

char *tg_rsa_public_pem_pkcs1(const EVP_PKEY *key)
{
    char *out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    OSSL_ENCODER_CTX *ectx = NULL;
    if (!bio || !key || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        goto cleanup;
    ectx = OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
    if (!ectx || OSSL_ENCODER_to_bio(ectx, bio) != 1)
        goto cleanup;
    out = tg_bio_string(bio);
cleanup:
    OSSL_ENCODER_CTX_free(ectx);
    BIO_free(bio);
    return out;
}

/* Adds a subjectAltName of |count| URIs to |cert|; 1 on success. */
static int add_uri_sans(X509 *cert, const char *const *uris, size_t count)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int ok = names != NULL;
    for (size_t i = 0; ok && i < count; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
        ok = gn && uri && ASN1_STRING_set(uri, uris[i], -1) == 1;
        if (ok) {
            GENERAL_NAME_set0_value(gn, GEN_URI, uri);
            uri = NULL;
            ok = sk_GENERAL_NAME_push(names, gn) > 0;
            gn = ok ? NULL : gn;
        }
        ASN1_IA5STRING_free(uri);
        GENERAL_NAME_free(gn);
    }
    ok = ok && X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(names);
    return ok;
}

char *tg_cert_pem_with_uris(EVP_PKEY *key, const char *const *uris, size_t count)
{
    char *out = NULL;
    X509 *cert = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    if (!cert || !bio || !key)
        goto cleanup;
    X509_NAME *name = X509_get_subject_name(cert);
    if (X509_set_version(cert, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24) ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"tokengate test", -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, key) != 1 ||
        (count > 0 && add_uri_sans(cert, uris, count) != 1) || X509_sign(cert, key, EVP_sha256()) <= 0 ||
        PEM_write_bio_X509(bio, cert) != 1)
        goto cleanup;
    out = tg_bio_string(bio);
cleanup:
    BIO_free(bio);
    X509_free(cert);
    return out;
}

char *tg_cert_pem(EVP_PKEY *key)
{
    return tg_cert_pem_with_uris(key, NULL, 0);
}

unsigned char *tg_spki_der(const EVP_PKEY *key, size_t *len)
{
    unsigned char *der = NULL;
    int n = key ? i2d_PUBKEY(key, &der) : -1;
    unsigned char *out = NULL;
    if (n > 0 && (out = malloc((size_t)n)) != NULL) {
        memcpy(out, der, (size_t)n);
        if (len)
            *len = (size_t)n;
    }
    OPENSSL_free(der);
    return out;
}

EVP_PKEY *tg_load_private_pem(const char *pem, size_t len)
{
    if (!pem || len > INT_MAX)
        return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    return key;
}

char *tg_b64url(const void *data, size_t len)
{
    if (len > INT_MAX / 2 || (!data && len))
        return NULL;
    size_t cap = (len + 2) / 3 * 4 + 1;
    unsigned char *out = malloc(cap);
    if (!out)
        return NULL;
    int n = len ? EVP_EncodeBlock(out, data, (int)len) : 0;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        unsigned char c = out[i];
        if (c == '=')
            break;
        out[o++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out[o] = '\0';
    return (char *)out;
}

char *tg_fingerprint(const EVP_PKEY *key)
{
    size_t der_len = 0;
    unsigned char *der = tg_spki_der(key, &der_len);
    unsigned char digest[32];
    char *out = NULL;
    if (der && EVP_Q_digest(NULL, "SHA256", NULL, der, der_len, digest, NULL) == 1)
        out = tg_b64url(digest, sizeof digest);
    free(der);
    return out;
}

/* Sets |name| of |obj| to the base64url of |len| bytes. */
static int tg_set_b64(json_t *obj, const char *name, const unsigned char *data, size_t len)
{
    char *text = tg_b64url(data, len);
    int ret = text && json_object_set_new(obj, name, json_string(text)) == 0 ? 0 : -1;
    free(text);
    return ret;
}

static int tg_set_bn(json_t *obj, const char *name, const BIGNUM *bn, size_t pad)
{
    unsigned char buf[2048];
    int n = BN_num_bytes(bn);
    size_t len = pad ? pad : (size_t)n;
    if (n < 0 || len > sizeof buf || (size_t)n > len || BN_bn2binpad(bn, buf, (int)len) < 0)
        return -1;
    return tg_set_b64(obj, name, buf, len);
}

json_t *tg_jwk_json(const EVP_PKEY *key, const tg_jwk_opts *opts)
{
    json_t *jwk = json_object();
    BIGNUM *a = NULL, *b = NULL;
    char *fingerprint = NULL;
    int ok = 0;
    if (!jwk || !key)
        goto cleanup;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &a) ||
            !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &b) ||
            json_object_set_new(jwk, "kty", json_string("RSA")) != 0 || tg_set_bn(jwk, "n", a, 0) != 0 ||
            tg_set_bn(jwk, "e", b, 0) != 0)
            goto cleanup;
    } else {
        const tg_curve *curve = tg_curve_of(key);
        if (!curve || !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &a) ||
            !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &b) ||
            json_object_set_new(jwk, "kty", json_string("EC")) != 0 ||
            json_object_set_new(jwk, "crv", json_string(curve->crv)) != 0 ||
            tg_set_bn(jwk, "x", a, curve->coord_len) != 0 || tg_set_bn(jwk, "y", b, curve->coord_len) != 0)
            goto cleanup;
    }
    if (opts) {
        const char *kid = opts->kid;
        if (!kid && opts->kid_fingerprint) {
            fingerprint = tg_fingerprint(key);
            if (!fingerprint)
                goto cleanup;
            kid = fingerprint;
        }
        if ((kid && json_object_set_new(jwk, "kid", json_string(kid)) != 0) ||
            (opts->alg && json_object_set_new(jwk, "alg", json_string(opts->alg)) != 0) ||
            (opts->use && json_object_set_new(jwk, "use", json_string(opts->use)) != 0))
            goto cleanup;
    }
    ok = 1;
cleanup:
    BN_free(a);
    BN_free(b);
    free(fingerprint);
    ERR_clear_error();
    if (!ok) {
        json_decref(jwk);
        return NULL;
    }
    return jwk;
}

char *tg_jwks(EVP_PKEY *const *keys, const tg_jwk_opts *opts, size_t count)
{
    char *out = NULL;
    json_t *arr = json_array();
    json_t *root = json_object();
    if (!arr || !root || json_object_set(root, "keys", arr) != 0)
        goto cleanup;
    for (size_t i = 0; i < count; i++) {
        json_t *jwk = tg_jwk_json(keys[i], opts ? &opts[i] : NULL);
        if (!jwk || json_array_append_new(arr, jwk) != 0)
            goto cleanup;
    }
    out = json_dumps(root, JSON_COMPACT);
cleanup:
    json_decref(arr);
    json_decref(root);
    return out;
}

/* Signs and returns OpenSSL's signature: DER for EC. */
static unsigned char *tg_sign_native(EVP_PKEY *key, const char *alg, const void *data, size_t len,
                                     size_t *sig_len)
{
    unsigned char *sig = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_MD *md = NULL;
    unsigned char digest[EVP_MAX_MD_SIZE];
    size_t digest_len = 0, n = 0;
    const char *md_name = tg_alg_md(alg);
    bool rsa = key && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
    if (!md_name || !key || (rsa && alg[0] == 'E') || (!rsa && alg[0] != 'E'))
        goto cleanup;
    md = EVP_MD_fetch(NULL, md_name, NULL);
    if (!md || EVP_Q_digest(NULL, md_name, NULL, data, len, digest, &digest_len) != 1)
        goto cleanup;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (!ctx || EVP_PKEY_sign_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
        goto cleanup;
    if (rsa && alg[0] == 'P' &&
        (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)digest_len) != 1))
        goto cleanup;
    if (rsa && alg[0] == 'R' && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
        goto cleanup;
    if (EVP_PKEY_sign(ctx, NULL, &n, digest, digest_len) != 1 || n == 0 || n > TG_MAX_SIG)
        goto cleanup;
    sig = malloc(n);
    if (!sig || EVP_PKEY_sign(ctx, sig, &n, digest, digest_len) != 1) {
        free(sig);
        sig = NULL;
        goto cleanup;
    }
    *sig_len = n;
cleanup:
    EVP_PKEY_CTX_free(ctx);
    EVP_MD_free(md);
    ERR_clear_error();
    return sig;
}

unsigned char *tg_sign_der(EVP_PKEY *key, const char *alg, const void *data, size_t len, size_t *sig_len)
{
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        return NULL;
    return tg_sign_native(key, alg, data, len, sig_len);
}

unsigned char *tg_sign_raw(EVP_PKEY *key, const char *alg, const void *data, size_t len, size_t *sig_len)
{
    size_t der_len = 0;
    unsigned char *der = tg_sign_native(key, alg, data, len, &der_len);
    if (!der || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
        if (der)
            *sig_len = der_len;
        return der;
    }
    unsigned char *raw = NULL;
    const tg_curve *curve = tg_curve_of(key);
    const unsigned char *p = der;
    ECDSA_SIG *ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!curve || !ecdsa)
        goto cleanup;
    size_t half = curve->coord_len;
    raw = malloc(2 * half);
    if (!raw || BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), raw, (int)half) < 0 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), raw + half, (int)half) < 0) {
        free(raw);
        raw = NULL;
        goto cleanup;
    }
    *sig_len = 2 * half;
cleanup:
    ECDSA_SIG_free(ecdsa);
    free(der);
    return raw;
}

char *tg_signing_input(const char *header_json, const char *payload_json)
{
    if (!header_json || !payload_json)
        return NULL;
    char *h = tg_b64url(header_json, strlen(header_json));
    char *p = tg_b64url(payload_json, strlen(payload_json));
    char *out = NULL;
    if (h && p) {
        size_t hl = strlen(h), pl = strlen(p);
        out = malloc(hl + 1 + pl + 1);
        if (out) {
            memcpy(out, h, hl);
            out[hl] = '.';
            memcpy(out + hl + 1, p, pl + 1);
        }
    }
    free(h);
    free(p);
    return out;
}

/* "input.b64url(sig)"; takes nothing over. */
static char *tg_join(const char *input, const unsigned char *sig, size_t sig_len)
{
    char *s = tg_b64url(sig, sig_len);
    char *out = NULL;
    if (s && input) {
        size_t il = strlen(input), sl = strlen(s);
        out = malloc(il + 1 + sl + 1);
        if (out) {
            memcpy(out, input, il);
            out[il] = '.';
            memcpy(out + il + 1, s, sl + 1);
        }
    }
    free(s);
    return out;
}

typedef unsigned char *(*tg_signer)(EVP_PKEY *, const char *, const void *, size_t, size_t *);

static char *tg_jws_with(tg_signer sign, EVP_PKEY *key, const char *alg, const char *header_json,
                         const char *payload_json)
{
    char *input = tg_signing_input(header_json, payload_json);
    size_t sig_len = 0;
    unsigned char *sig = input ? sign(key, alg, input, strlen(input), &sig_len) : NULL;
    char *out = sig ? tg_join(input, sig, sig_len) : NULL;
    free(sig);
    free(input);
    return out;
}

char *tg_jws(EVP_PKEY *key, const char *alg, const char *header_json, const char *payload_json)
{
    return tg_jws_with(tg_sign_raw, key, alg, header_json, payload_json);
}

char *tg_jws_der(EVP_PKEY *key, const char *alg, const char *header_json, const char *payload_json)
{
    return tg_jws_with(tg_sign_der, key, alg, header_json, payload_json);
}

char *tg_jws_hmac(const char *alg, const void *secret, size_t secret_len, const char *header_json,
                  const char *payload_json)
{
    static const unsigned char no_key = 0;
    const char *md = tg_alg_md(alg);
    char *input = NULL, *out = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    if (!md || alg[0] != 'H' || (!secret && secret_len))
        goto cleanup;
    input = tg_signing_input(header_json, payload_json);
    /* HMAC takes an empty key, but OpenSSL wants a non-NULL pointer for it. */
    if (!input || !EVP_Q_mac(NULL, "HMAC", NULL, md, NULL, secret_len ? secret : &no_key, secret_len,
                             (const unsigned char *)input, strlen(input), mac, sizeof mac, &mac_len))
        goto cleanup;
    out = tg_join(input, mac, mac_len);
cleanup:
    free(input);
    ERR_clear_error();
    return out;
}

char *tg_jws_with_sig(const char *header_json, const char *payload_json, const void *sig, size_t sig_len)
{
    char *input = tg_signing_input(header_json, payload_json);
    char *out = input ? tg_join(input, sig, sig_len) : NULL;
    free(input);
    return out;
}
