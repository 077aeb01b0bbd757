#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "authz_b64.h"
#include "authz_key.h"
#include "tg_testkeys.h"

static char err[256];

static int add_jwks_max(authz_keyset *set, const char *json, size_t max_keys)
{
    err[0] = '\0';
    return authz_keyset_add_jwks(set, json, strlen(json), max_keys, err, sizeof err);
}

static int add_jwks(authz_keyset *set, const char *json)
{
    return add_jwks_max(set, json, AUTHZ_KEY_DEFAULT_MAX_KEYS);
}

static int add_pem(authz_keyset *set, const char *pem)
{
    err[0] = '\0';
    return authz_keyset_add_pem(set, pem, strlen(pem), AUTHZ_KEY_DEFAULT_MAX_KEYS, err, sizeof err);
}

static EVP_PKEY *keygen(const char *type)
{
    EVP_PKEY *key = tg_keygen(type);
    cr_assert_not_null(key, "keygen %s", type);
    return key;
}

/* {"keys":[jwk]} as text; takes |jwk| over. */
static char *jwks_of(json_t *jwk)
{
    cr_assert_not_null(jwk);
    json_t *root = json_pack("{s:[o]}", "keys", jwk);
    cr_assert_not_null(root);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    cr_assert_not_null(text);
    return text;
}

/* Loading a one-key JWKS of |jwk| (taken over) must fail with |needle| in the message. */
static void expect_jwk_error(json_t *jwk, const char *needle)
{
    char *text = jwks_of(jwk);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, text), -1, "accepted %s", text);
    cr_assert_not_null(strstr(err, "keys[0]"), "message names the key: %s", err);
    cr_assert_not_null(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
    cr_assert_eq(set.count, 0);
    authz_keyset_free(&set);
    free(text);
}

static void set_b64(json_t *jwk, const char *name, const unsigned char *bytes, size_t len)
{
    char *text = tg_b64url(bytes, len);
    cr_assert_eq(json_object_set_new(jwk, name, json_string(text)), 0);
    free(text);
}

/* Decodes member |name| of |jwk| into |out|; returns its length. */
static size_t get_b64(const json_t *jwk, const char *name, unsigned char *out, size_t out_size)
{
    const json_t *v = json_object_get(jwk, name);
    long n = authz_b64url_decode((authz_slice){json_string_value(v), json_string_length(v)}, out, out_size);
    cr_assert_gt(n, 0);
    return (size_t)n;
}

static void check_fingerprint_kid(const authz_key *key, const EVP_PKEY *pkey)
{
    char *fp = tg_fingerprint(pkey);
    cr_assert_str_eq(key->kid, fp);
    cr_assert_eq(key->kid_len, strlen(fp));
    cr_assert_not(key->kid_from_jwk);
    free(fp);
}

Test(key_jwks, rsa_key_without_kid_gets_fingerprint)
{
    EVP_PKEY *pkey = keygen("rsa2048");
    char *text = jwks_of(tg_jwk_json(pkey, NULL));
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, text), 0, "%s", err);
    cr_assert_eq(set.count, 1);
    const authz_key *key = &set.keys[0];
    cr_assert_eq(key->kty, AUTHZ_KTY_RSA);
    cr_assert_eq(key->bits, 2048);
    cr_assert_eq(key->alg, AUTHZ_ALG_RS256);
    cr_assert_not(key->alg_pinned);
    cr_assert_str_eq(authz_key_describe(key), "RSA-2048");
    check_fingerprint_kid(key, pkey);
    cr_assert(authz_key_allows_alg(key, AUTHZ_ALG_RS256));
    cr_assert(authz_key_allows_alg(key, AUTHZ_ALG_PS256));
    cr_assert_not(authz_key_allows_alg(key, AUTHZ_ALG_ES256));
    cr_assert_not(authz_key_allows_alg(key, AUTHZ_ALG_UNSUPPORTED));
    authz_keyset_free(&set);
    cr_assert_eq(set.count, 0);
    free(text);
    EVP_PKEY_free(pkey);
}

Test(key_jwks, ec_keys_of_every_curve_with_kid_and_alg)
{
    static const struct {
        const char *type, *alg, *describe;
        authz_alg id;
        unsigned bits;
    } cases[] = {
        {"p256", "ES256", "EC P-256", AUTHZ_ALG_ES256, 256},
        {"p384", "ES384", "EC P-384", AUTHZ_ALG_ES384, 384},
        {"p521", "ES512", "EC P-521", AUTHZ_ALG_ES512, 521},
    };
    EVP_PKEY *pkeys[3];
    tg_jwk_opts opts[3];
    for (size_t i = 0; i < 3; i++) {
        pkeys[i] = keygen(cases[i].type);
        opts[i] = (tg_jwk_opts){.kid = cases[i].type, .alg = cases[i].alg, .use = "sig"};
    }
    char *text = tg_jwks(pkeys, opts, 3);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, text), 0, "%s", err);
    cr_assert_eq(set.count, 3);
    for (size_t i = 0; i < 3; i++) {
        const authz_key *key = &set.keys[i];
        cr_assert_eq(key->kty, AUTHZ_KTY_EC);
        cr_assert_eq(key->bits, cases[i].bits);
        cr_assert_eq(key->alg, cases[i].id);
        cr_assert(key->alg_pinned);
        cr_assert(key->kid_from_jwk);
        cr_assert_str_eq(key->kid, cases[i].type);
        cr_assert_str_eq(authz_key_describe(key), cases[i].describe);
        for (authz_alg a = AUTHZ_ALG_UNSUPPORTED; a <= AUTHZ_ALG_ES512; a++)
            cr_assert_eq(authz_key_allows_alg(key, a), a == cases[i].id, "%s with %s", cases[i].type,
                         authz_alg_name(a));
    }
    authz_keyset_free(&set);
    free(text);
    for (size_t i = 0; i < 3; i++)
        EVP_PKEY_free(pkeys[i]);
}

Test(key_jwks, ec_key_without_kid_gets_fingerprint)
{
    EVP_PKEY *pkey = keygen("p384");
    char *text = jwks_of(tg_jwk_json(pkey, NULL));
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, text), 0, "%s", err);
    check_fingerprint_kid(&set.keys[0], pkey);
    cr_assert_eq(set.keys[0].alg, AUTHZ_ALG_ES384);
    cr_assert_not(set.keys[0].alg_pinned);
    authz_keyset_free(&set);
    free(text);
    EVP_PKEY_free(pkey);
}

Test(key_jwks, rsa_alg_pinned_to_ps256)
{
    EVP_PKEY *pkey = keygen("rsa2048");
    tg_jwk_opts opts = {.alg = "PS256"};
    char *text = jwks_of(tg_jwk_json(pkey, &opts));
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, text), 0, "%s", err);
    cr_assert(set.keys[0].alg_pinned);
    cr_assert(authz_key_allows_alg(&set.keys[0], AUTHZ_ALG_PS256));
    cr_assert_not(authz_key_allows_alg(&set.keys[0], AUTHZ_ALG_RS256));
    authz_keyset_free(&set);
    free(text);
    EVP_PKEY_free(pkey);
}

Test(key_jwks, keys_accumulate_across_calls)
{
    EVP_PKEY *a = keygen("p256"), *b = keygen("p256");
    char *ta = jwks_of(tg_jwk_json(a, NULL)), *tb = jwks_of(tg_jwk_json(b, NULL));
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, ta), 0, "%s", err);
    cr_assert_eq(add_jwks(&set, tb), 0, "%s", err);
    cr_assert_eq(set.count, 2);
    check_fingerprint_kid(&set.keys[0], a);
    check_fingerprint_kid(&set.keys[1], b);
    authz_keyset_free(&set);
    free(ta);
    free(tb);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

Test(key_jwks, use_enc_and_unknown_kty_skipped)
{
    EVP_PKEY *enc = keygen("p256"), *sig = keygen("p256");
    tg_jwk_opts opts[2] = {{.kid = "enc", .use = "enc"}, {.kid = "sig", .use = "sig"}};
    EVP_PKEY *both[2] = {enc, sig};
    char *base = tg_jwks(both, opts, 2);
    json_t *root = json_loads(base, 0, NULL);
    json_t *okp = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x",
                            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    json_array_insert_new(json_object_get(root, "keys"), 0, okp);
    char *text = json_dumps(root, JSON_COMPACT);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, text), 0, "%s", err);
    cr_assert_eq(set.count, 1);
    cr_assert_str_eq(set.keys[0].kid, "sig");
    authz_keyset_free(&set);
    free(text);
    free(base);
    json_decref(root);
    EVP_PKEY_free(enc);
    EVP_PKEY_free(sig);
}

Test(key_jwks, empty_key_list_adds_nothing)
{
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, "{\"keys\":[]}"), 0, "%s", err);
    cr_assert_eq(set.count, 0);
    authz_keyset_free(&set);
}

Test(key_errors, private_members_refused)
{
    static const char *const members[] = {"d", "p", "q", "dp", "dq", "qi", "k"};
    EVP_PKEY *rsa = keygen("rsa2048"), *ec = keygen("p256");
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        json_t *jwk = tg_jwk_json(i % 2 ? ec : rsa, NULL);
        json_object_set_new(jwk, members[i], json_string("AQAB"));
        char needle[16];
        snprintf(needle, sizeof needle, "\"%s\"", members[i]);
        expect_jwk_error(jwk, needle);
    }
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

Test(key_errors, symmetric_oct_key_refused)
{
    expect_jwk_error(json_pack("{s:s, s:s}", "kty", "oct", "kid", "hmac"), "oct");
}

Test(key_errors, rsa_1024_refused)
{
    EVP_PKEY *pkey = keygen("rsa1024");
    expect_jwk_error(tg_jwk_json(pkey, NULL), "1024");
    EVP_PKEY_free(pkey);
}

Test(key_errors, rsa_bad_exponent_and_empty_modulus)
{
    EVP_PKEY *pkey = keygen("rsa2048");
    json_t *jwk = tg_jwk_json(pkey, NULL);
    json_object_set_new(jwk, "e", json_string("AQ")); /* e = 1 */
    expect_jwk_error(jwk, "exponent");
    jwk = tg_jwk_json(pkey, NULL);
    json_object_set_new(jwk, "e", json_string("AQAA")); /* e = 65536, even */
    expect_jwk_error(jwk, "exponent");
    jwk = tg_jwk_json(pkey, NULL);
    json_object_set_new(jwk, "n", json_string(""));
    expect_jwk_error(jwk, "\"n\"");
    jwk = tg_jwk_json(pkey, NULL);
    json_object_del(jwk, "e");
    expect_jwk_error(jwk, "\"e\"");
    EVP_PKEY_free(pkey);
}

Test(key_errors, malformed_base64url_in_n)
{
    EVP_PKEY *pkey = keygen("rsa2048");
    const char *suffixes[] = {"=", "+", "/", " "};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        json_t *jwk = tg_jwk_json(pkey, NULL);
        const char *n = json_string_value(json_object_get(jwk, "n"));
        size_t len = strlen(n);
        char *bad = malloc(len + 1);
        memcpy(bad, n, len + 1);
        bad[len / 2] = suffixes[i][0];
        json_object_set_new(jwk, "n", json_string(bad));
        free(bad);
        expect_jwk_error(jwk, "base64url");
    }
    EVP_PKEY_free(pkey);
}

Test(key_errors, bad_curve_refused)
{
    EVP_PKEY *pkey = keygen("p256");
    const char *curves[] = {"P-192", "secp256k1", "p-256", "Ed25519"};
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++) {
        json_t *jwk = tg_jwk_json(pkey, NULL);
        json_object_set_new(jwk, "crv", json_string(curves[i]));
        expect_jwk_error(jwk, "crv");
    }
    json_t *jwk = tg_jwk_json(pkey, NULL);
    json_object_del(jwk, "crv");
    expect_jwk_error(jwk, "crv");
    EVP_PKEY_free(pkey);
}

Test(key_errors, ec_coordinate_wrong_length)
{
    EVP_PKEY *pkey = keygen("p256");
    unsigned char coord[80];
    const char *names[] = {"x", "y"};
    for (size_t i = 0; i < 2; i++) {
        json_t *jwk = tg_jwk_json(pkey, NULL);
        size_t len = get_b64(jwk, names[i], coord + 1, sizeof coord - 1);
        cr_assert_eq(len, 32);
        /* 31 bytes: the leading byte dropped. */
        set_b64(jwk, names[i], coord + 2, len - 1);
        expect_jwk_error(jwk, "expected 32");
        /* 33 bytes: a leading zero added. */
        jwk = tg_jwk_json(pkey, NULL);
        coord[0] = 0;
        set_b64(jwk, names[i], coord, len + 1);
        expect_jwk_error(jwk, "expected 32");
    }
    /* A P-256 sized point declared as P-384. */
    json_t *jwk = tg_jwk_json(pkey, NULL);
    json_object_set_new(jwk, "crv", json_string("P-384"));
    expect_jwk_error(jwk, "expected 48");
    EVP_PKEY_free(pkey);
}

Test(key_errors, point_not_on_curve)
{
    const char *types[] = {"p256", "p384", "p521"};
    for (size_t t = 0; t < 3; t++) {
        EVP_PKEY *pkey = keygen(types[t]);
        json_t *jwk = tg_jwk_json(pkey, NULL);
        unsigned char y[80];
        size_t len = get_b64(jwk, "y", y, sizeof y);
        y[len - 1] ^= 1;
        set_b64(jwk, "y", y, len);
        expect_jwk_error(jwk, "point");
        EVP_PKEY_free(pkey);
    }
}

Test(key_errors, duplicate_json_keys)
{
    EVP_PKEY *pkey = keygen("p256");
    json_t *jwk = tg_jwk_json(pkey, NULL);
    char *one = json_dumps(jwk, JSON_COMPACT);
    authz_keyset set;
    authz_keyset_init(&set);
    /* Duplicate "keys": a second list could smuggle a key past a reviewer. */
    char doc[1024];
    snprintf(doc, sizeof doc, "{\"keys\":[%s],\"keys\":[]}", one);
    cr_assert_eq(add_jwks(&set, doc), -1);
    cr_assert_not_null(strstr(err, "duplicate"), "%s", err);
    /* Duplicate member inside a key: "x" written twice. */
    snprintf(doc, sizeof doc, "{\"keys\":[{\"x\":\"AA\",%s]}", one + 1);
    cr_assert_eq(add_jwks(&set, doc), -1);
    cr_assert_not_null(strstr(err, "duplicate"), "%s", err);
    cr_assert_eq(set.count, 0);
    authz_keyset_free(&set);
    free(one);
    json_decref(jwk);
    EVP_PKEY_free(pkey);
}

Test(key_errors, over_max_keys)
{
    EVP_PKEY *keys[3] = {keygen("p256"), keygen("p256"), keygen("p256")};
    char *three = tg_jwks(keys, NULL, 3);
    char *two = tg_jwks(keys, NULL, 2);
    char *one = tg_jwks(keys + 2, NULL, 1);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks_max(&set, three, 2), -1);
    cr_assert_not_null(strstr(err, "keys[2]"), "%s", err);
    cr_assert_eq(set.count, 0);
    /* The limit covers the whole set, not one call. */
    cr_assert_eq(add_jwks_max(&set, two, 2), 0, "%s", err);
    cr_assert_eq(add_jwks_max(&set, one, 2), -1);
    cr_assert_eq(set.count, 2);
    cr_assert_eq(add_jwks_max(&set, one, 3), 0, "%s", err);
    cr_assert_eq(set.count, 3);
    authz_keyset_free(&set);
    free(three);
    free(two);
    free(one);
    for (size_t i = 0; i < 3; i++)
        EVP_PKEY_free(keys[i]);
}

Test(key_errors, alg_disagrees_with_key)
{
    EVP_PKEY *rsa = keygen("rsa2048"), *p256 = keygen("p256"), *p384 = keygen("p384");
    const struct {
        EVP_PKEY *key;
        const char *alg, *needle;
    } cases[] = {
        {rsa, "ES256", "alg ES256"},  {p256, "ES384", "alg ES384"}, {p256, "RS256", "alg RS256"},
        {p384, "ES256", "alg ES256"}, {rsa, "HS256", "HS256"},      {rsa, "none", "none"},
        {p256, "ES256K", "ES256K"},   {rsa, "RS384", "RS384"},      {rsa, "rs256", "rs256"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tg_jwk_opts opts = {.alg = cases[i].alg};
        expect_jwk_error(tg_jwk_json(cases[i].key, &opts), cases[i].needle);
    }
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
}

Test(key_errors, wrong_member_types)
{
    EVP_PKEY *pkey = keygen("p256");
    const char *members[] = {"kid", "alg", "use", "kty", "x"};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        json_t *jwk = tg_jwk_json(pkey, NULL);
        json_object_set_new(jwk, members[i], json_integer(1));
        expect_jwk_error(jwk, members[i]);
    }
    json_t *jwk = tg_jwk_json(pkey, NULL);
    json_object_set_new(jwk, "kid", json_string(""));
    expect_jwk_error(jwk, "kid");
    EVP_PKEY_free(pkey);
}

Test(key_errors, not_a_jwks_document)
{
    authz_keyset set;
    authz_keyset_init(&set);
    const char *docs[] = {
        "", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[1]}", "{\"kty\":\"EC\"}", "{\"keys\":[", "null"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cr_assert_eq(add_jwks(&set, docs[i]), -1, "accepted %s", docs[i]);
        cr_assert_neq(err[0], '\0');
    }
    cr_assert_eq(set.count, 0);
    authz_keyset_free(&set);
}

Test(key_errors, failure_leaves_set_unchanged)
{
    EVP_PKEY *good = keygen("p256"), *other = keygen("p256");
    char *first = jwks_of(tg_jwk_json(good, NULL));
    json_t *bad = tg_jwk_json(other, NULL);
    json_object_set_new(bad, "d", json_string("AQAB"));
    json_t *root = json_pack("{s:[o,o]}", "keys", tg_jwk_json(other, NULL), bad);
    char *second = json_dumps(root, JSON_COMPACT);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_jwks(&set, first), 0, "%s", err);
    cr_assert_eq(add_jwks(&set, second), -1);
    cr_assert_not_null(strstr(err, "keys[1]"), "%s", err);
    cr_assert_eq(set.count, 1);
    check_fingerprint_kid(&set.keys[0], good);
    authz_keyset_free(&set);
    json_decref(root);
    free(first);
    free(second);
    EVP_PKEY_free(good);
    EVP_PKEY_free(other);
}

Test(key_pem, public_key_block)
{
    EVP_PKEY *pkey = keygen("p521");
    char *pem = tg_public_pem(pkey);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_pem(&set, pem), 0, "%s", err);
    cr_assert_eq(set.count, 1);
    cr_assert_eq(set.keys[0].alg, AUTHZ_ALG_ES512);
    cr_assert_not(set.keys[0].alg_pinned);
    check_fingerprint_kid(&set.keys[0], pkey);
    authz_keyset_free(&set);
    free(pem);
    EVP_PKEY_free(pkey);
}

Test(key_pem, rsa_public_key_block)
{
    EVP_PKEY *pkey = keygen("rsa2048");
    char *pem = tg_rsa_public_pem_pkcs1(pkey);
    cr_assert_not_null(strstr(pem, "BEGIN RSA PUBLIC KEY"), "%s", pem);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_pem(&set, pem), 0, "%s", err);
    cr_assert_eq(set.count, 1);
    cr_assert_eq(set.keys[0].kty, AUTHZ_KTY_RSA);
    cr_assert_eq(set.keys[0].bits, 2048);
    check_fingerprint_kid(&set.keys[0], pkey);
    authz_keyset_free(&set);
    free(pem);
    EVP_PKEY_free(pkey);
}

Test(key_pem, certificate_block)
{
    EVP_PKEY *pkey = keygen("p256");
    char *pem = tg_cert_pem(pkey);
    cr_assert_not_null(strstr(pem, "BEGIN CERTIFICATE"));
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_pem(&set, pem), 0, "%s", err);
    cr_assert_eq(set.count, 1);
    check_fingerprint_kid(&set.keys[0], pkey);
    authz_keyset_free(&set);
    free(pem);
    EVP_PKEY_free(pkey);
}

Test(key_pem, multiple_blocks_with_text_between)
{
    EVP_PKEY *a = keygen("rsa2048"), *b = keygen("p384"), *c = keygen("p256");
    char *pa = tg_rsa_public_pem_pkcs1(a), *pb = tg_public_pem(b), *pc = tg_cert_pem(c);
    size_t len = strlen(pa) + strlen(pb) + strlen(pc) + 64;
    char *all = malloc(len);
    snprintf(all, len, "comment line\n%s\n%s# another\n%s", pa, pb, pc);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_pem(&set, all), 0, "%s", err);
    cr_assert_eq(set.count, 3);
    check_fingerprint_kid(&set.keys[0], a);
    check_fingerprint_kid(&set.keys[1], b);
    check_fingerprint_kid(&set.keys[2], c);
    cr_assert_str_eq(authz_key_describe(&set.keys[1]), "EC P-384");
    authz_keyset_free(&set);
    free(all);
    free(pa);
    free(pb);
    free(pc);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(c);
}

Test(key_pem, private_key_refused)
{
    EVP_PKEY *pkey = keygen("p256");
    char *pub = tg_public_pem(pkey), *priv = tg_private_pem(pkey);
    size_t len = strlen(pub) + strlen(priv) + 1;
    char *both = malloc(len);
    snprintf(both, len, "%s%s", pub, priv);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_pem(&set, priv), -1);
    cr_assert_not_null(strstr(err, "PRIVATE KEY"), "%s", err);
    /* Even after a good public block: the signing key was mounted by mistake. */
    cr_assert_eq(add_pem(&set, both), -1);
    cr_assert_not_null(strstr(err, "PEM block 1"), "%s", err);
    cr_assert_eq(set.count, 0);
    authz_keyset_free(&set);
    free(pub);
    free(priv);
    free(both);
    EVP_PKEY_free(pkey);
}

Test(key_pem, legacy_private_key_headers_refused)
{
    const char *names[] = {"RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"};
    for (size_t i = 0; i < 3; i++) {
        char pem[256];
        snprintf(pem, sizeof pem, "-----BEGIN %s-----\nAAAA\n-----END %s-----\n", names[i], names[i]);
        authz_keyset set;
        authz_keyset_init(&set);
        cr_assert_eq(add_pem(&set, pem), -1);
        cr_assert_not_null(strstr(err, names[i]), "%s", err);
        authz_keyset_free(&set);
    }
}

Test(key_pem, small_rsa_and_garbage_refused)
{
    EVP_PKEY *small = keygen("rsa1024");
    char *pem = tg_public_pem(small);
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_pem(&set, pem), -1);
    cr_assert_not_null(strstr(err, "1024"), "%s", err);
    cr_assert_eq(add_pem(&set, "no pem here\n"), -1);
    cr_assert_eq(add_pem(&set, "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"), -1);
    cr_assert_eq(add_pem(&set, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), -1);
    cr_assert_eq(set.count, 0);
    authz_keyset_free(&set);
    free(pem);
    EVP_PKEY_free(small);
}

Test(key_pem, over_max_keys)
{
    EVP_PKEY *a = keygen("p256"), *b = keygen("p256");
    char *pa = tg_public_pem(a), *pb = tg_public_pem(b);
    size_t len = strlen(pa) + strlen(pb) + 1;
    char *both = malloc(len);
    snprintf(both, len, "%s%s", pa, pb);
    authz_keyset set;
    authz_keyset_init(&set);
    err[0] = '\0';
    cr_assert_eq(authz_keyset_add_pem(&set, both, strlen(both), 1, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "more than 1"), "%s", err);
    cr_assert_eq(set.count, 0);
    cr_assert_eq(authz_keyset_add_pem(&set, both, strlen(both), 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(set.count, 2);
    authz_keyset_free(&set);
    free(pa);
    free(pb);
    free(both);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

/* One key, one cluster (issue 7 section 2): the loader compares key
 * material, so every format of one key must compare equal, with any kid,
 * and different keys must not. */
static void load_all_forms(EVP_PKEY *pkey, bool rsa, authz_keyset *set)
{
    tg_jwk_opts opts = {.kid = "some-kid"};
    char *jwks = tg_jwks(&pkey, &opts, 1);
    char *spki = tg_public_pem(pkey);
    char *cert = tg_cert_pem(pkey);
    char *pkcs1 = rsa ? tg_rsa_public_pem_pkcs1(pkey) : NULL;
    cr_assert(jwks && spki && cert && (!rsa || pkcs1));
    cr_assert_eq(add_jwks(set, jwks), 0, "%s", err);
    cr_assert_eq(add_pem(set, spki), 0, "%s", err);
    cr_assert_eq(add_pem(set, cert), 0, "%s", err);
    if (rsa)
        cr_assert_eq(add_pem(set, pkcs1), 0, "%s", err);
    free(jwks);
    free(spki);
    free(cert);
    free(pkcs1);
}

static void check_same_material_across_formats(const char *type, const char *other_type, bool rsa)
{
    EVP_PKEY *pkey = keygen(type);
    EVP_PKEY *other = keygen(other_type);
    authz_keyset set;
    authz_keyset_init(&set);
    load_all_forms(pkey, rsa, &set);
    size_t forms = set.count;
    cr_assert_eq(forms, rsa ? 4u : 3u);
    char *other_pem = tg_public_pem(other);
    cr_assert_eq(add_pem(&set, other_pem), 0, "%s", err);
    free(other_pem);
    cr_assert_str_neq(set.keys[0].kid, set.keys[1].kid, "the JWK's kid differs from the fingerprint");
    for (size_t i = 0; i < forms; i++) {
        for (size_t j = 0; j < forms; j++) {
            cr_expect(authz_key_same_material(&set.keys[i], &set.keys[j]), "%s form %zu vs %zu", type, i, j);
            cr_expect_eq(memcmp(set.keys[i].material, set.keys[j].material, AUTHZ_KEY_MATERIAL_LEN), 0);
        }
        cr_expect_not(authz_key_same_material(&set.keys[i], &set.keys[forms]), "%s vs another key", type);
        cr_expect_neq(memcmp(set.keys[i].material, set.keys[forms].material, AUTHZ_KEY_MATERIAL_LEN), 0);
    }
    authz_keyset_free(&set);
    EVP_PKEY_free(pkey);
    EVP_PKEY_free(other);
}

Test(key_material, rsa_same_key_in_every_format)
{
    check_same_material_across_formats("rsa2048", "rsa2048", true);
}

Test(key_material, ec_same_key_in_every_format)
{
    check_same_material_across_formats("p256", "p256", false);
    check_same_material_across_formats("p384", "p256", false);
}

Test(key_material, ec_point_encoding_does_not_matter)
{
    /* The same P-256 key as an SPKI with a compressed point: its DER (and
     * kube-apiserver's fingerprint kid) differs, the key does not. */
    EVP_PKEY *pkey = keygen("p256");
    EVP_PKEY *compressed = EVP_PKEY_dup(pkey);
    cr_assert_not_null(compressed);
    cr_assert_eq(
        EVP_PKEY_set_utf8_string_param(compressed, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
        1);
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert(bio && PEM_write_bio_PUBKEY(bio, compressed) == 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    cr_assert_gt(len, 0);
    char *pem_compressed = strndup(data, (size_t)len);
    char *pem_plain = tg_public_pem(pkey);
    cr_assert(pem_compressed && pem_plain);
    cr_assert_str_neq(pem_compressed, pem_plain, "the encodings differ");
    authz_keyset set;
    authz_keyset_init(&set);
    cr_assert_eq(add_pem(&set, pem_plain), 0, "%s", err);
    cr_assert_eq(add_pem(&set, pem_compressed), 0, "%s", err);
    cr_assert_eq(set.count, 2);
    cr_expect_str_neq(set.keys[0].kid, set.keys[1].kid, "fingerprints of the DER differ: no way to compare");
    cr_expect(authz_key_same_material(&set.keys[0], &set.keys[1]));
    cr_expect_eq(memcmp(set.keys[0].material, set.keys[1].material, AUTHZ_KEY_MATERIAL_LEN), 0);
    authz_keyset_free(&set);
    free(pem_compressed);
    free(pem_plain);
    BIO_free(bio);
    EVP_PKEY_free(compressed);
    EVP_PKEY_free(pkey);
}
