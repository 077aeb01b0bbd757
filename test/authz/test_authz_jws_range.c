/* tokengate's own ECDSA range check (authz_jws_ecdsa_in_range), run
 * directly: OpenSSL refuses out-of-range scalars as well, so through
 * authz_jws_verify alone a broken check would go unnoticed. For P-256, P-384
 * and P-521: r or s zero, equal to n, n + k for several k that fit the fixed
 * length, all ones; and the valid boundaries 1 and n - 1. */
#include <criterion/criterion.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <stdlib.h>
#include <string.h>

#include "authz_jws.h"
#include "authz_key.h"
#include "tg_testkeys.h"

#define INPUT "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL3JhbmdlLmV4YW1wbGUifQ"
#define MAX_SIG 132 /* P-521: 2 x 66 */

typedef struct curve {
    const char *type, *alg, *group;
} curve;

static const curve curves[] = {
    {"p256", "ES256", "prime256v1"},
    {"p384", "ES384", "secp384r1"},
    {"p521", "ES512", "secp521r1"},
};

/* One curve's key as tokengate loads it (from PEM), its order n and a
 * genuine signature over INPUT. */
typedef struct subject {
    EVP_PKEY *pkey;
    authz_keyset set;
    const authz_key *key;
    EC_GROUP *group;
    const BIGNUM *n;
    unsigned char good[MAX_SIG];
    size_t len, half;
} subject;

static void subject_init(subject *t, const curve *c)
{
    t->pkey = tg_keygen(c->type);
    cr_assert_not_null(t->pkey);
    char *pem = tg_public_pem(t->pkey);
    cr_assert_not_null(pem);
    char err[256];
    authz_keyset_init(&t->set);
    cr_assert_eq(authz_keyset_add_pem(&t->set, pem, strlen(pem), 1, err, sizeof err), 0, "%s", err);
    free(pem);
    t->key = &t->set.keys[0];
    t->group = EC_GROUP_new_by_curve_name(OBJ_sn2nid(c->group));
    cr_assert_not_null(t->group);
    t->n = EC_GROUP_get0_order(t->group);
    unsigned char *sig = tg_sign_raw(t->pkey, c->alg, INPUT, strlen(INPUT), &t->len);
    cr_assert_not_null(sig);
    cr_assert_leq(t->len, sizeof t->good);
    memcpy(t->good, sig, t->len);
    free(sig);
    t->half = t->len / 2;
    cr_assert_eq(t->len, t->key->priv.sig_len);
}

static void subject_free(subject *t)
{
    EC_GROUP_free(t->group);
    authz_keyset_free(&t->set);
    EVP_PKEY_free(t->pkey);
}

/* The scalar values a test writes into r or s. */
typedef enum value {
    ZERO,
    ONE,
    N_MINUS_1,
    N,
    N_PLUS_1,
    N_PLUS_2_16,
    N_PLUS_HALF_ROOM,
    ALL_ONES,
    GENUINE
} value;

static const char *const value_names[] = {
    "0", "1", "n - 1", "n", "n + 1", "n + 2^16", "n + (room / 2)", "2^(8 len) - 1", "genuine"};

/* Writes |v| big-endian into |out| (half bytes); |genuine| is the genuine
 * scalar's bytes. n + k is written only when it fits the fixed length, which
 * it does for each k here on all three curves (their orders sit well below
 * 2^(8 len)): cr_assert says so if a curve ever disagrees. */
static void put(const subject *t, value v, const unsigned char *genuine, unsigned char *out)
{
    BIGNUM *x = BN_new();
    BIGNUM *room = BN_new();
    cr_assert(x && room);
    cr_assert(BN_set_bit(room, (int)(8 * t->half)) && BN_sub(room, room, t->n)); /* 2^(8 len) - n */
    switch (v) {
    case ZERO:
        BN_zero(x);
        break;
    case ONE:
        cr_assert(BN_one(x));
        break;
    case N_MINUS_1:
        cr_assert(BN_sub(x, t->n, BN_value_one()));
        break;
    case N:
        cr_assert(BN_copy(x, t->n));
        break;
    case N_PLUS_1:
        cr_assert(BN_add(x, t->n, BN_value_one()));
        break;
    case N_PLUS_2_16:
        cr_assert(BN_set_word(x, 1u << 16) && BN_add(x, x, t->n));
        break;
    case N_PLUS_HALF_ROOM:
        cr_assert(BN_rshift1(x, room) && BN_add(x, x, t->n));
        break;
    case ALL_ONES:
        cr_assert(BN_add(x, t->n, room) && BN_sub(x, x, BN_value_one()));
        break;
    case GENUINE:
        cr_assert(BN_bin2bn(genuine, (int)t->half, x));
        break;
    }
    cr_assert_eq(BN_bn2binpad(x, out, (int)t->half), (int)t->half, "%s does not fit %zu bytes",
                 value_names[v], t->half);
    BN_free(x);
    BN_free(room);
}

static bool in_range(const subject *t, value r, value s)
{
    unsigned char sig[MAX_SIG];
    put(t, r, t->good, sig);
    put(t, s, t->good + t->half, sig + t->half);
    return authz_jws_ecdsa_in_range(t->key, sig, t->len);
}

static bool valid(value v)
{
    return v == ONE || v == N_MINUS_1 || v == GENUINE;
}

Test(jws_ecdsa_range, every_curve_every_scalar_pair)
{
    for (size_t c = 0; c < sizeof curves / sizeof curves[0]; c++) {
        subject t;
        subject_init(&t, &curves[c]);
        for (value r = ZERO; r <= GENUINE; r++) {
            for (value s = ZERO; s <= GENUINE; s++) {
                bool want = valid(r) && valid(s);
                cr_expect_eq(in_range(&t, r, s), want, "%s: r = %s, s = %s: want %s", curves[c].type,
                             value_names[r], value_names[s], want ? "in range" : "out of range");
            }
        }
        subject_free(&t);
    }
}

/* What the range check refuses, verification refuses too; the genuine
 * signature still verifies, and its twin with s' = n - s (equally valid
 * ECDSA) is in range. */
Test(jws_ecdsa_range, verify_agrees)
{
    for (size_t c = 0; c < sizeof curves / sizeof curves[0]; c++) {
        subject t;
        subject_init(&t, &curves[c]);
        authz_alg alg = authz_alg_from_name(authz_slice_from_cstr(curves[c].alg));
        authz_slice input = authz_slice_from_cstr(INPUT);
        cr_expect(authz_jws_ecdsa_in_range(t.key, t.good, t.len));
        cr_expect_eq(authz_jws_verify(t.key, alg, input, t.good, t.len), 0, "%s genuine", curves[c].type);
        const value bad[] = {ZERO, N, N_PLUS_1, N_PLUS_2_16, N_PLUS_HALF_ROOM, ALL_ONES};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            unsigned char sig[MAX_SIG];
            memcpy(sig, t.good, t.len);
            put(&t, bad[i], t.good, sig);
            cr_expect_eq(authz_jws_verify(t.key, alg, input, sig, t.len), -1, "%s r = %s", curves[c].type,
                         value_names[bad[i]]);
            memcpy(sig, t.good, t.len);
            put(&t, bad[i], t.good + t.half, sig + t.half);
            cr_expect_eq(authz_jws_verify(t.key, alg, input, sig, t.len), -1, "%s s = %s", curves[c].type,
                         value_names[bad[i]]);
        }
        cr_expect_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
        BIGNUM *s = BN_bin2bn(t.good + t.half, (int)t.half, NULL);
        cr_assert(s && BN_sub(s, t.n, s));
        unsigned char twin[MAX_SIG];
        memcpy(twin, t.good, t.half);
        cr_assert_eq(BN_bn2binpad(s, twin + t.half, (int)t.half), (int)t.half);
        cr_expect(authz_jws_ecdsa_in_range(t.key, twin, t.len), "%s n - s", curves[c].type);
        BN_free(s);
        subject_free(&t);
    }
}

Test(jws_ecdsa_range, wrong_length_or_key_or_null)
{
    subject t;
    subject_init(&t, &curves[0]);
    cr_expect_not(authz_jws_ecdsa_in_range(t.key, t.good, t.len - 1));
    cr_expect_not(authz_jws_ecdsa_in_range(t.key, t.good, t.len + 1));
    cr_expect_not(authz_jws_ecdsa_in_range(t.key, NULL, t.len));
    cr_expect_not(authz_jws_ecdsa_in_range(NULL, t.good, t.len));
    subject_free(&t);

    EVP_PKEY *rsa = tg_keygen("rsa2048");
    cr_assert_not_null(rsa);
    char *pem = tg_public_pem(rsa);
    cr_assert_not_null(pem);
    authz_keyset set;
    char err[256];
    authz_keyset_init(&set);
    cr_assert_eq(authz_keyset_add_pem(&set, pem, strlen(pem), 1, err, sizeof err), 0, "%s", err);
    unsigned char sig[256] = {1};
    cr_expect_not(authz_jws_ecdsa_in_range(&set.keys[0], sig, set.keys[0].priv.sig_len), "an RSA key");
    authz_keyset_free(&set);
    free(pem);
    EVP_PKEY_free(rsa);
}
