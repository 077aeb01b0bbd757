#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "authz_b64.h"
#include "authz_jws.h"
#include "authz_key.h"
#include "tg_testkeys.h"

#define HEADER "{\"alg\":\"ES256\",\"kid\":\"k\"}"
#define PAYLOAD "{\"iss\":\"https://cluster-a\",\"sub\":\"system:serviceaccount:ns:sa\",\"exp\":4102444800}"

typedef struct fixture {
    EVP_PKEY *pkey;
    authz_keyset set;
    const authz_key *key;
} fixture;

/* Generates a key of |type| and loads its public half from a JWKS, with
 * "alg" pinned when |jwk_alg| is not NULL. */
static void fixture_init(fixture *f, const char *type, const char *jwk_alg)
{
    f->pkey = tg_keygen(type);
    cr_assert_not_null(f->pkey);
    tg_jwk_opts opts = {.alg = jwk_alg};
    char *jwks = tg_jwks(&f->pkey, &opts, 1);
    char err[256];
    authz_keyset_init(&f->set);
    cr_assert_eq(authz_keyset_add_jwks(&f->set, jwks, strlen(jwks), 4, err, sizeof err), 0, "%s", err);
    cr_assert_eq(f->set.count, 1);
    f->key = &f->set.keys[0];
    free(jwks);
}

static void fixture_free(fixture *f)
{
    authz_keyset_free(&f->set);
    EVP_PKEY_free(f->pkey);
}

static authz_alg alg_of(const char *name)
{
    return authz_alg_from_name(authz_slice_from_cstr(name));
}

/* Signs the fixed signing input with |signer| under |alg|. */
static unsigned char *sign(EVP_PKEY *signer, const char *alg, const char *input, size_t *len)
{
    unsigned char *sig = tg_sign_raw(signer, alg, input, strlen(input), len);
    cr_assert_not_null(sig, "signing with %s", alg);
    return sig;
}

static int verify(const authz_key *key, authz_alg alg, const char *input, const unsigned char *sig,
                  size_t len)
{
    int rc = authz_jws_verify(key, alg, authz_slice_from_cstr(input), sig, len);
    cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
    return rc;
}

static char *input_of(const char *header, const char *payload)
{
    char *input = tg_signing_input(header, payload);
    cr_assert_not_null(input);
    return input;
}

static void check_valid(const char *type, const char *alg)
{
    fixture f;
    fixture_init(&f, type, NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *sig = sign(f.pkey, alg, input, &len);
    cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), 0, "%s on %s", alg, type);
    /* The same signature with one bit changed is refused. */
    sig[len / 2] ^= 0x10;
    cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), -1);
    free(sig);
    free(input);
    fixture_free(&f);
}

Test(jws_valid, rs256)
{
    check_valid("rsa2048", "RS256");
}

Test(jws_valid, rs256_rsa3072)
{
    check_valid("rsa3072", "RS256");
}

Test(jws_valid, ps256)
{
    check_valid("rsa2048", "PS256");
}

Test(jws_valid, es256)
{
    check_valid("p256", "ES256");
}

Test(jws_valid, es384)
{
    check_valid("p384", "ES384");
}

Test(jws_valid, es512)
{
    check_valid("p521", "ES512");
}

Test(jws_valid, pinned_alg_still_verifies)
{
    fixture f;
    fixture_init(&f, "rsa2048", "PS256");
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *sig = sign(f.pkey, "PS256", input, &len);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_PS256, input, sig, len), 0);
    free(sig);
    free(input);
    fixture_free(&f);
}

Test(jws_alg_confusion, es256_token_on_rsa_key)
{
    fixture rsa, ec;
    fixture_init(&rsa, "rsa2048", NULL);
    fixture_init(&ec, "p256", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *sig = sign(ec.pkey, "ES256", input, &len);
    cr_assert_eq(verify(rsa.key, AUTHZ_ALG_ES256, input, sig, len), -1);
    free(sig);
    free(input);
    fixture_free(&rsa);
    fixture_free(&ec);
}

Test(jws_alg_confusion, es384_token_on_p256_key)
{
    fixture f;
    fixture_init(&f, "p256", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    /* Signed by the right key, but over SHA-384: the alg does not fit the curve. */
    unsigned char *sig = sign(f.pkey, "ES384", input, &len);
    cr_assert_eq(len, 64);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES384, input, sig, len), -1);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES256, input, sig, len), -1);
    free(sig);
    free(input);
    fixture_free(&f);
}

Test(jws_alg_confusion, rs256_token_on_pinned_ps256_key)
{
    fixture f;
    fixture_init(&f, "rsa2048", "PS256");
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *sig = sign(f.pkey, "RS256", input, &len);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_RS256, input, sig, len), -1);
    /* Nor does PKCS#1 v1.5 padding pass as PSS. */
    cr_assert_eq(verify(f.key, AUTHZ_ALG_PS256, input, sig, len), -1);
    free(sig);
    free(input);
    fixture_free(&f);
}

Test(jws_alg_confusion, ps256_signature_is_not_rs256)
{
    fixture f;
    fixture_init(&f, "rsa2048", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *sig = sign(f.pkey, "PS256", input, &len);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_RS256, input, sig, len), -1);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_PS256, input, sig, len), 0);
    free(sig);
    free(input);
    fixture_free(&f);
}

Test(jws_alg_confusion, unsupported_alg)
{
    fixture f;
    fixture_init(&f, "p256", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *sig = sign(f.pkey, "ES256", input, &len);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_UNSUPPORTED, input, sig, len), -1);
    cr_assert_eq(verify(f.key, (authz_alg)99, input, sig, len), -1);
    free(sig);
    free(input);
    fixture_free(&f);
}

/* CVE-2022-21449: r = s = 0 "verifies" any message in a broken ECDSA. */
Test(jws_ecdsa, psychic_signature)
{
    const char *types[] = {"p256", "p384", "p521"};
    const char *algs[] = {"ES256", "ES384", "ES512"};
    for (size_t t = 0; t < 3; t++) {
        fixture f;
        fixture_init(&f, types[t], NULL);
        char *input = input_of(HEADER, PAYLOAD);
        size_t len = 0;
        unsigned char *good = sign(f.pkey, algs[t], input, &len);
        unsigned char zero[132] = {0};
        cr_assert_eq(verify(f.key, alg_of(algs[t]), input, zero, len), -1, "r = s = 0 on %s", types[t]);
        /* One half zero, the other genuine. */
        unsigned char half[132];
        memcpy(half, good, len);
        memset(half, 0, len / 2);
        cr_assert_eq(verify(f.key, alg_of(algs[t]), input, half, len), -1, "r = 0 on %s", types[t]);
        memcpy(half, good, len);
        memset(half + len / 2, 0, len / 2);
        cr_assert_eq(verify(f.key, alg_of(algs[t]), input, half, len), -1, "s = 0 on %s", types[t]);
        free(good);
        free(input);
        fixture_free(&f);
    }
}

Test(jws_ecdsa, der_signature)
{
    fixture f;
    fixture_init(&f, "p256", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *der = tg_sign_der(f.pkey, "ES256", input, strlen(input), &len);
    cr_assert_not_null(der);
    cr_assert_eq(der[0], 0x30, "an ASN.1 SEQUENCE");
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES256, input, der, len), -1);
    /* Cut or padded to exactly 64 bytes it is still not R||S. */
    unsigned char fixed[64] = {0};
    memcpy(fixed, der, len < 64 ? len : 64);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES256, input, fixed, sizeof fixed), -1);
    free(der);
    free(input);
    fixture_free(&f);
}

/* Writes |bn| big-endian into |out| (|len| bytes); false when it does not fit. */
static bool put_bn(const BIGNUM *bn, unsigned char *out, size_t len)
{
    return BN_bn2binpad(bn, out, (int)len) == (int)len;
}

static void check_scalars_not_below_order(const char *type, const char *alg, const char *group)
{
    fixture f;
    fixture_init(&f, type, NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *good = sign(f.pkey, alg, input, &len);
    size_t half = len / 2;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(OBJ_sn2nid(group));
    const BIGNUM *n = EC_GROUP_get0_order(g);
    BIGNUM *r = BN_bin2bn(good, (int)half, NULL), *s = BN_bin2bn(good + half, (int)half, NULL);
    BIGNUM *tmp = BN_new();
    unsigned char sig[132];

    /* r = n, s = n: both zero mod n. */
    cr_assert(put_bn(n, sig, half) && put_bn(n, sig + half, half));
    cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), -1, "r = s = n on %s", type);
    /* r = n with the genuine s, and the genuine r with s = n. */
    memcpy(sig, good, len);
    cr_assert(put_bn(n, sig, half));
    cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), -1, "r = n on %s", type);
    memcpy(sig, good, len);
    cr_assert(put_bn(n, sig + half, half));
    cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), -1, "s = n on %s", type);
    /* All ones: above n. */
    memset(sig, 0xff, len);
    cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), -1, "r, s > n on %s", type);
    /* The genuine values plus n: equal mod n, so only the range check stops them. */
    cr_assert(BN_add(tmp, r, n));
    if (put_bn(tmp, sig, half)) {
        memcpy(sig + half, good + half, half);
        cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), -1, "r + n on %s", type);
    }
    cr_assert(BN_add(tmp, s, n));
    if (put_bn(tmp, sig + half, half)) {
        memcpy(sig, good, half);
        cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), -1, "s + n on %s", type);
    }
    /* Sanity: the genuine signature passes. */
    cr_assert_eq(verify(f.key, alg_of(alg), input, good, len), 0);
    BN_free(r);
    BN_free(s);
    BN_free(tmp);
    EC_GROUP_free(g);
    free(good);
    free(input);
    fixture_free(&f);
}

Test(jws_ecdsa, scalars_not_below_order_p256)
{
    check_scalars_not_below_order("p256", "ES256", "prime256v1");
}

Test(jws_ecdsa, scalars_not_below_order_p384)
{
    check_scalars_not_below_order("p384", "ES384", "secp384r1");
}

/* P-521 scalars have 7 spare bits in 66 bytes, so r + n always fits. */
Test(jws_ecdsa, scalars_not_below_order_p521)
{
    check_scalars_not_below_order("p521", "ES512", "secp521r1");
}

Test(jws_length, ecdsa_wrong_lengths)
{
    fixture f;
    fixture_init(&f, "p256", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *good = sign(f.pkey, "ES256", input, &len);
    unsigned char buf[80] = {0};
    memcpy(buf + 1, good, len);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES256, input, good, 63), -1);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES256, input, buf, 65), -1, "leading zero byte");
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES256, input, good, 0), -1);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES256, input, NULL, 0), -1);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_ES256, input, good, len), 0);
    free(good);
    free(input);
    fixture_free(&f);
}

Test(jws_length, rsa_not_modulus_length)
{
    fixture f;
    fixture_init(&f, "rsa2048", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *good = sign(f.pkey, "RS256", input, &len);
    cr_assert_eq(len, 256);
    unsigned char buf[300] = {0};
    memcpy(buf + 1, good, len);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_RS256, input, good, len - 1), -1, "modulus length - 1");
    cr_assert_eq(verify(f.key, AUTHZ_ALG_RS256, input, buf, len + 1), -1, "leading zero byte");
    cr_assert_eq(verify(f.key, AUTHZ_ALG_RS256, input, good, 0), -1);
    cr_assert_eq(verify(f.key, AUTHZ_ALG_RS256, input, good, len), 0);
    free(good);
    free(input);
    fixture_free(&f);
}

/* A signature whose leading zero byte was dropped: RFC 7518 §3.3 wants
 * exactly the modulus length (OpenSSL's PSS path alone would take it). */
static void check_leading_zero_stripped(const char *alg)
{
    fixture f;
    fixture_init(&f, "rsa2048", NULL);
    char payload[64];
    for (unsigned attempt = 0; attempt < 4096; attempt++) {
        snprintf(payload, sizeof payload, "{\"n\":%u}", attempt);
        char *input = input_of(HEADER, payload);
        size_t len = 0;
        unsigned char *sig = sign(f.pkey, alg, input, &len);
        bool leading_zero = sig[0] == 0;
        if (leading_zero) {
            cr_assert_eq(verify(f.key, alg_of(alg), input, sig, len), 0);
            cr_assert_eq(verify(f.key, alg_of(alg), input, sig + 1, len - 1), -1);
        }
        free(sig);
        free(input);
        if (leading_zero) {
            fixture_free(&f);
            return;
        }
    }
    cr_assert_fail("no %s signature with a leading zero byte in 4096 attempts", alg);
}

Test(jws_length, rsa_leading_zero_stripped_rs256)
{
    check_leading_zero_stripped("RS256");
}

Test(jws_length, rsa_leading_zero_stripped_ps256)
{
    check_leading_zero_stripped("PS256");
}

Test(jws_forgery, payload_swapped_under_valid_signature)
{
    const char *types[] = {"rsa2048", "p256"};
    const char *algs[] = {"RS256", "ES256"};
    for (size_t t = 0; t < 2; t++) {
        fixture f;
        fixture_init(&f, types[t], NULL);
        char *input = input_of(HEADER, PAYLOAD);
        char *other =
            input_of(HEADER, "{\"iss\":\"https://cluster-b\",\"sub\":\"system:serviceaccount:ns:sa\"}");
        char *other_header = input_of("{\"alg\":\"ES256\",\"kid\":\"j\"}", PAYLOAD);
        size_t len = 0;
        unsigned char *sig = sign(f.pkey, algs[t], input, &len);
        cr_assert_eq(verify(f.key, alg_of(algs[t]), input, sig, len), 0);
        cr_assert_eq(verify(f.key, alg_of(algs[t]), other, sig, len), -1);
        cr_assert_eq(verify(f.key, alg_of(algs[t]), other_header, sig, len), -1);
        cr_assert_eq(verify(f.key, alg_of(algs[t]), "", sig, len), -1);
        free(sig);
        free(input);
        free(other);
        free(other_header);
        fixture_free(&f);
    }
}

Test(jws_forgery, signature_from_another_key)
{
    const char *types[] = {"rsa2048", "p256", "p384", "p521"};
    const char *algs[] = {"RS256", "ES256", "ES384", "ES512"};
    for (size_t t = 0; t < 4; t++) {
        fixture f;
        fixture_init(&f, types[t], NULL);
        EVP_PKEY *stranger = tg_keygen(types[t]);
        char *input = input_of(HEADER, PAYLOAD);
        size_t len = 0;
        unsigned char *sig = sign(stranger, algs[t], input, &len);
        cr_assert_eq(len, f.key->priv.sig_len);
        cr_assert_eq(verify(f.key, alg_of(algs[t]), input, sig, len), -1, "%s", types[t]);
        free(sig);
        free(input);
        EVP_PKEY_free(stranger);
        fixture_free(&f);
    }
}

/* Key confusion: an HMAC made with public key material as the secret. */
Test(jws_forgery, hmac_bytes)
{
    fixture rsa, ec;
    fixture_init(&rsa, "rsa2048", NULL);
    fixture_init(&ec, "p256", NULL);
    char *pem = tg_public_pem(ec.pkey);
    char *input = input_of("{\"alg\":\"HS256\"}", PAYLOAD);
    const char *macs[] = {"HS256", "HS384", "HS512"};
    for (size_t i = 0; i < 3; i++) {
        char *token = tg_jws_hmac(macs[i], pem, strlen(pem), "{\"alg\":\"HS256\"}", PAYLOAD);
        cr_assert_not_null(token);
        const char *dot = strrchr(token, '.');
        unsigned char mac[80];
        long n = authz_b64url_decode(authz_slice_from_cstr(dot + 1), mac, sizeof mac);
        cr_assert_gt(n, 0);
        /* HS512's 64 bytes have the ES256 length: only the math stops them. */
        cr_assert_eq(verify(ec.key, AUTHZ_ALG_ES256, input, mac, (size_t)n), -1, "%s", macs[i]);
        cr_assert_eq(verify(rsa.key, AUTHZ_ALG_RS256, input, mac, (size_t)n), -1, "%s", macs[i]);
        cr_assert_eq(verify(ec.key, AUTHZ_ALG_UNSUPPORTED, input, mac, (size_t)n), -1);
        free(token);
    }
    free(input);
    free(pem);
    fixture_free(&rsa);
    fixture_free(&ec);
}

Test(jws_misuse, null_arguments)
{
    fixture f;
    fixture_init(&f, "p256", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t len = 0;
    unsigned char *sig = sign(f.pkey, "ES256", input, &len);
    cr_assert_eq(verify(NULL, AUTHZ_ALG_ES256, input, sig, len), -1);
    cr_assert_eq(authz_jws_verify(f.key, AUTHZ_ALG_ES256, (authz_slice){NULL, 5}, sig, len), -1);
    authz_key empty;
    memset(&empty, 0, sizeof empty);
    cr_assert_eq(verify(&empty, AUTHZ_ALG_ES256, input, sig, len), -1);
    free(sig);
    free(input);
    fixture_free(&f);
}

typedef struct thread_job {
    const authz_key *key;
    authz_alg alg;
    const char *input;
    const unsigned char *good, *bad;
    size_t len;
    int failures;
} thread_job;

static void *thread_verify(void *arg)
{
    thread_job *job = arg;
    for (int i = 0; i < 50; i++) {
        if (authz_jws_verify(job->key, job->alg, authz_slice_from_cstr(job->input), job->good, job->len) != 0)
            job->failures++;
        if (authz_jws_verify(job->key, job->alg, authz_slice_from_cstr(job->input), job->bad, job->len) != -1)
            job->failures++;
    }
    return NULL;
}

Test(jws_threads, shared_key_concurrent_verify)
{
    fixture rsa, ec;
    fixture_init(&rsa, "rsa2048", NULL);
    fixture_init(&ec, "p256", NULL);
    char *input = input_of(HEADER, PAYLOAD);
    size_t rlen = 0, elen = 0;
    unsigned char *rsig = sign(rsa.pkey, "PS256", input, &rlen);
    unsigned char *esig = sign(ec.pkey, "ES256", input, &elen);
    unsigned char *rbad = malloc(rlen), *ebad = malloc(elen);
    memcpy(rbad, rsig, rlen);
    memcpy(ebad, esig, elen);
    rbad[7] ^= 1;
    ebad[7] ^= 1;
    thread_job jobs[4] = {
        {rsa.key, AUTHZ_ALG_PS256, input, rsig, rbad, rlen, 0},
        {rsa.key, AUTHZ_ALG_PS256, input, rsig, rbad, rlen, 0},
        {ec.key, AUTHZ_ALG_ES256, input, esig, ebad, elen, 0},
        {ec.key, AUTHZ_ALG_ES256, input, esig, ebad, elen, 0},
    };
    pthread_t threads[4];
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, thread_verify, &jobs[i]), 0);
    for (size_t i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(jobs[i].failures, 0, "thread %zu", i);
    }
    free(rsig);
    free(esig);
    free(rbad);
    free(ebad);
    free(input);
    fixture_free(&rsa);
    fixture_free(&ec);
}
