/* Project Wycheproof's signature vectors (C2SP/wycheproof) run through
 * tokengate's signature core, as a token's signature goes through it: each
 * test group's public key is loaded with tokengate's own loaders (its JWK as a
 * one-key JWKS through authz_keyset_add_jwks when the file gives one, its PEM
 * through authz_keyset_add_pem always), and each message/signature pair is
 * checked with authz_jws_verify under the file's JWS algorithm.
 *
 * A valid vector must verify, an invalid one must be refused, an acceptable
 * one must get the outcome recorded for its flag in wp_acceptable_flags (and
 * in the README's Tests section). Where both key paths exist they must agree.
 * A key a loader refuses counts its vectors as refused, so a valid vector
 * under a refused key is a mismatch, never a silent skip.
 *
 * The vector files are data, kept outside the repository: they are read from
 * TG_WYCHEPROOF_DIR (test/vectors/wycheproof/README.md says where they come
 * from and how to refresh them). When that folder does not exist each test
 * says so and is skipped, which ctest reports as skipped. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authz_alg.h"
#include "authz_jws.h"
#include "authz_key.h"

#ifndef TG_WYCHEPROOF_DIR
#error "TG_WYCHEPROOF_DIR must name the folder of the Wycheproof vector files"
#endif

typedef enum wp_result {
    WP_VALID,
    WP_INVALID,
    WP_ACCEPTABLE,
    WP_RESULT_COUNT,
} wp_result;

static const char *const wp_result_names[WP_RESULT_COUNT] = {"valid", "invalid", "acceptable"};

/* One vector file and the JWS algorithm its vectors are verified under. */
typedef struct wp_file {
    const char *name;
    const char *alg;
    const char *schema; /* checked, so that a refreshed file in another format is noticed */
    const char *sha;    /* every group's "sha" */
} wp_file;

/* What tokengate does with a vector Wycheproof calls acceptable, by flag. */
typedef struct wp_acceptable {
    const char *flag;
    bool verifies;
} wp_acceptable;

static const wp_acceptable wp_acceptable_flags[] = {
    /* A PKCS#1 v1.5 DigestInfo without the NULL parameters of the hash
     * AlgorithmIdentifier: OpenSSL compares the whole encoding with the one
     * it builds (NULL included), so tokengate refuses it. Signers write the
     * NULL; accepting its absence only widens what a verifier must parse. */
    {"MissingNull", false},
};

/* Which key loader a keyset came from. */
typedef enum wp_path {
    WP_PATH_JWK,
    WP_PATH_PEM,
    WP_PATH_COUNT,
} wp_path;

static const char *const wp_path_names[WP_PATH_COUNT] = {"JWK", "PEM"};

typedef struct wp_counts {
    size_t groups;
    size_t keys_refused[WP_PATH_COUNT];
    size_t vectors[WP_RESULT_COUNT];
    size_t verified[WP_RESULT_COUNT];
    size_t mismatches;
} wp_counts;

/* The group's keys, one per loader that had something to load. */
typedef struct wp_keys {
    authz_keyset set[WP_PATH_COUNT];
    bool present[WP_PATH_COUNT]; /* the file gives the key in this form */
    bool loaded[WP_PATH_COUNT];  /* and tokengate's loader accepted it */
} wp_keys;

/* The string member |name| of |obj|; the test fails when it is missing. */
static const char *wp_str(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    cr_assert_not_null(s, "vector file: \"%s\" missing or not a string", name);
    return s;
}

/* Decodes the hex string member |name| of |obj| into a malloc'd buffer (never
 * NULL, even for ""); its length goes to |*len|. */
static unsigned char *wp_hex(const json_t *obj, const char *name, size_t *len)
{
    const char *hex = wp_str(obj, name);
    size_t cap = strlen(hex) / 2 + 1;
    unsigned char *buf = malloc(cap);
    cr_assert_not_null(buf);
    *len = 0;
    if (hex[0] != '\0')
        cr_assert_eq(OPENSSL_hexstr2buf_ex(buf, cap, len, hex, '\0'), 1, "\"%s\" is not hex", name);
    return buf;
}

/* Loads one key of group |index| through tokengate's JWKS or PEM loader.
 * Returns whether the loader accepted it; a refusal is reported with its
 * reason. */
static bool wp_load(authz_keyset *set, wp_path path, const char *text, const wp_file *file, size_t index)
{
    char err[256];
    int rc = path == WP_PATH_JWK
                 ? authz_keyset_add_jwks(set, text, strlen(text), AUTHZ_KEY_DEFAULT_MAX_KEYS, err, sizeof err)
                 : authz_keyset_add_pem(set, text, strlen(text), AUTHZ_KEY_DEFAULT_MAX_KEYS, err, sizeof err);
    cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty by the key loader");
    if (rc != 0) {
        fprintf(stderr, "wycheproof %s group %zu: %s key refused: %s\n", file->name, index,
                wp_path_names[path], err);
        return false;
    }
    cr_assert_eq(set->count, 1, "%s group %zu: one key expected", file->name, index);
    return true;
}

/* Loads the public key of |group| (number |index|) in every form the file
 * gives: "publicKeyJwk" (or "keyJwk", the PKCS#1 files' name), and
 * "publicKeyPem". */
static void wp_keys_load(wp_keys *keys, const json_t *group, const wp_file *file, size_t index)
{
    memset(keys, 0, sizeof *keys);
    for (int p = 0; p < WP_PATH_COUNT; p++)
        authz_keyset_init(&keys->set[p]);

    const json_t *jwk = json_object_get(group, "publicKeyJwk");
    if (!jwk)
        jwk = json_object_get(group, "keyJwk");
    if (jwk) {
        json_t *jwks = json_pack("{s:[O]}", "keys", jwk);
        char *text = jwks ? json_dumps(jwks, JSON_COMPACT) : NULL;
        cr_assert_not_null(text);
        keys->present[WP_PATH_JWK] = true;
        keys->loaded[WP_PATH_JWK] = wp_load(&keys->set[WP_PATH_JWK], WP_PATH_JWK, text, file, index);
        free(text);
        json_decref(jwks);
    }
    keys->present[WP_PATH_PEM] = true;
    keys->loaded[WP_PATH_PEM] =
        wp_load(&keys->set[WP_PATH_PEM], WP_PATH_PEM, wp_str(group, "publicKeyPem"), file, index);
}

static void wp_keys_free(wp_keys *keys)
{
    for (int p = 0; p < WP_PATH_COUNT; p++)
        authz_keyset_free(&keys->set[p]);
}

static wp_result wp_result_of(const json_t *test)
{
    const char *result = wp_str(test, "result");
    for (int r = 0; r < WP_RESULT_COUNT; r++) {
        if (strcmp(result, wp_result_names[r]) == 0)
            return (wp_result)r;
    }
    cr_assert_fail("vector file: unknown result \"%s\"", result);
    return WP_INVALID; /* not reached: the assertion ends the test */
}

/* The vector's flags, comma-separated, into |out|. */
static void wp_flags_text(const json_t *test, char *out, size_t size)
{
    size_t i;
    const json_t *flag;
    size_t used = 0;
    out[0] = '\0';
    json_array_foreach(json_object_get(test, "flags"), i, flag)
    {
        int n = snprintf(out + used, size - used, "%s%s", i ? "," : "", json_string_value(flag));
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

/* The outcome tokengate owes an acceptable vector: that of its first flag
 * with a recorded behaviour. False with |*known| false when none has one. */
static bool wp_acceptable_outcome(const json_t *test, bool *known)
{
    size_t i;
    const json_t *flag;
    json_array_foreach(json_object_get(test, "flags"), i, flag)
    {
        for (size_t a = 0; a < sizeof wp_acceptable_flags / sizeof wp_acceptable_flags[0]; a++) {
            if (strcmp(json_string_value(flag), wp_acceptable_flags[a].flag) == 0) {
                *known = true;
                return wp_acceptable_flags[a].verifies;
            }
        }
    }
    *known = false;
    return false;
}

/* Signature bytes placed flush against an inaccessible page, so that a read
 * past their end crashes the test even inside OpenSSL, which the sanitizers
 * do not instrument. */
typedef struct wp_guarded {
    unsigned char *map;
    size_t map_len;
    const unsigned char *bytes;
} wp_guarded;

static void wp_guarded_init(wp_guarded *g, const unsigned char *data, size_t len)
{
    long page_size = sysconf(_SC_PAGESIZE);
    cr_assert_gt(page_size, 0);
    size_t page = (size_t)page_size;
    size_t data_pages = len / page + 1;
    g->map_len = (data_pages + 1) * page;
    void *map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    g->map = map;
    cr_assert_eq(mprotect(g->map + data_pages * page, page, PROT_NONE), 0);
    unsigned char *start = g->map + data_pages * page - len;
    if (len)
        memcpy(start, data, len);
    g->bytes = start;
}

static void wp_guarded_free(wp_guarded *g)
{
    munmap(g->map, g->map_len);
}

/* Verifies one vector with every loaded key of the group; counts it and
 * reports a mismatch. */
static void wp_run_vector(const wp_file *file, authz_alg alg, const wp_keys *keys, const json_t *test,
                          wp_counts *counts)
{
    size_t msg_len = 0, sig_len = 0;
    unsigned char *msg = wp_hex(test, "msg", &msg_len);
    unsigned char *sig = wp_hex(test, "sig", &sig_len);
    authz_slice input = {(const char *)msg, msg_len};
    wp_guarded guarded;
    wp_guarded_init(&guarded, sig, sig_len);
    bool verified[WP_PATH_COUNT] = {false, false};
    for (int p = 0; p < WP_PATH_COUNT; p++) {
        if (keys->loaded[p])
            verified[p] = authz_jws_verify(&keys->set[p].keys[0], alg, input, guarded.bytes, sig_len) == 0;
        cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty by authz_jws_verify");
    }
    wp_guarded_free(&guarded);
    free(msg);
    free(sig);

    wp_result result = wp_result_of(test);
    json_int_t tc_id = json_integer_value(json_object_get(test, "tcId"));
    bool outcome = verified[WP_PATH_PEM];
    counts->vectors[result]++;
    if (outcome)
        counts->verified[result]++;

    char flags[256];
    wp_flags_text(test, flags, sizeof flags);
    const char *problem = NULL;
    bool known = true;
    bool expected = result == WP_VALID;
    if (result == WP_ACCEPTABLE) {
        expected = wp_acceptable_outcome(test, &known);
        if (!known)
            problem = "acceptable with no recorded tokengate behaviour for its flags";
    }
    if (!problem && keys->present[WP_PATH_JWK] && verified[WP_PATH_JWK] != verified[WP_PATH_PEM])
        problem = "the JWK and PEM keys disagree";
    if (!problem && outcome != expected)
        problem = expected ? "tokengate refused it" : "tokengate verified it";
    if (problem) {
        counts->mismatches++;
        fprintf(stderr, "wycheproof %s tcId %lld (%s, flags [%s], \"%s\"): %s\n", file->name,
                (long long)tc_id, wp_result_names[result], flags, wp_str(test, "comment"), problem);
    } else if (result == WP_ACCEPTABLE) {
        fprintf(stderr, "wycheproof %s tcId %lld (acceptable, flags [%s]): %s, as recorded\n", file->name,
                (long long)tc_id, flags, outcome ? "verified" : "refused");
    }
}

static void wp_run_group(const wp_file *file, authz_alg alg, size_t index, const json_t *group,
                         wp_counts *counts)
{
    cr_assert_str_eq(wp_str(group, "sha"), file->sha, "%s group %zu: unexpected hash", file->name, index);
    wp_keys keys;
    wp_keys_load(&keys, group, file, index);
    counts->groups++;
    for (int p = 0; p < WP_PATH_COUNT; p++) {
        if (keys.present[p] && !keys.loaded[p])
            counts->keys_refused[p]++;
    }
    size_t i;
    const json_t *test;
    json_array_foreach(json_object_get(group, "tests"), i, test)
        wp_run_vector(file, alg, &keys, test, counts);
    wp_keys_free(&keys);
}

/* Runs every vector of |file| and fails on any mismatch, after printing the
 * file's counts. Skips when the vector folder does not exist. */
static void wp_run(const wp_file *file)
{
    struct stat st;
    if (stat(TG_WYCHEPROOF_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "wycheproof vectors not found in %s (see test/vectors/wycheproof/README.md)\n",
                TG_WYCHEPROOF_DIR);
        cr_skip_test("no vector folder");
    }
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", TG_WYCHEPROOF_DIR, file->name);
    cr_assert(n > 0 && (size_t)n < sizeof path);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(root, "%s: %s (line %d)", path, jerr.text, jerr.line);
    cr_assert_str_eq(wp_str(root, "schema"), file->schema, "%s: unexpected schema", file->name);
    authz_alg alg = authz_alg_from_name(authz_slice_from_cstr(file->alg));
    cr_assert_neq(alg, AUTHZ_ALG_UNSUPPORTED);

    wp_counts counts;
    memset(&counts, 0, sizeof counts);
    size_t i;
    const json_t *group;
    json_array_foreach(json_object_get(root, "testGroups"), i, group)
        wp_run_group(file, alg, i, group, &counts);

    size_t total = counts.vectors[WP_VALID] + counts.vectors[WP_INVALID] + counts.vectors[WP_ACCEPTABLE];
    fprintf(stderr,
            "wycheproof %s (%s): %zu groups (keys refused: JWK %zu, PEM %zu), %zu vectors: "
            "valid %zu (%zu verified), invalid %zu (%zu verified), acceptable %zu (%zu verified); "
            "%zu mismatches\n",
            file->name, file->alg, counts.groups, counts.keys_refused[WP_PATH_JWK],
            counts.keys_refused[WP_PATH_PEM], total, counts.vectors[WP_VALID], counts.verified[WP_VALID],
            counts.vectors[WP_INVALID], counts.verified[WP_INVALID], counts.vectors[WP_ACCEPTABLE],
            counts.verified[WP_ACCEPTABLE], counts.mismatches);
    json_int_t declared = json_integer_value(json_object_get(root, "numberOfTests"));
    json_decref(root);
    cr_assert_gt(total, 0, "%s: no vectors", file->name);
    cr_assert_eq((json_int_t)total, declared, "%s: %zu vectors read, the file declares %lld", file->name,
                 total, (long long)declared);
    cr_assert_eq(counts.mismatches, 0, "%s: %zu vectors disagree with Wycheproof (listed above)", file->name,
                 counts.mismatches);
}

#define ECDSA_SCHEMA "ecdsa_p1363_verify_schema_v1.json"
#define PKCS1_SCHEMA "rsassa_pkcs1_verify_schema_v1.json"
#define PSS_SCHEMA "rsassa_pss_verify_schema_v1.json"

/* One test per vector file, so that ctest's output names the file that failed. */
#define WP_TEST(test_name, file, alg, schema, sha)                                                           \
    Test(wycheproof, test_name)                                                                              \
    {                                                                                                        \
        wp_run(&(wp_file){file, alg, schema, sha});                                                          \
    }

WP_TEST(es256_p256_p1363, "ecdsa_secp256r1_sha256_p1363_test.json", "ES256", ECDSA_SCHEMA, "SHA-256")
WP_TEST(es384_p384_p1363, "ecdsa_secp384r1_sha384_p1363_test.json", "ES384", ECDSA_SCHEMA, "SHA-384")
WP_TEST(es512_p521_p1363, "ecdsa_secp521r1_sha512_p1363_test.json", "ES512", ECDSA_SCHEMA, "SHA-512")
WP_TEST(rs256_rsa2048, "rsa_signature_2048_sha256_test.json", "RS256", PKCS1_SCHEMA, "SHA-256")
WP_TEST(rs256_rsa3072, "rsa_signature_3072_sha256_test.json", "RS256", PKCS1_SCHEMA, "SHA-256")
WP_TEST(rs256_rsa4096, "rsa_signature_4096_sha256_test.json", "RS256", PKCS1_SCHEMA, "SHA-256")
WP_TEST(ps256_rsa2048, "rsa_pss_2048_sha256_mgf1_32_test.json", "PS256", PSS_SCHEMA, "SHA-256")
WP_TEST(ps256_rsa3072, "rsa_pss_3072_sha256_mgf1_32_test.json", "PS256", PSS_SCHEMA, "SHA-256")
WP_TEST(ps256_rsa4096, "rsa_pss_4096_sha256_mgf1_32_test.json", "PS256", PSS_SCHEMA, "SHA-256")
