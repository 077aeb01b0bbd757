#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_b64.h"
#include "pol_token_cache.h"

static const authz_jwt_limits limits16k = {16384, 16, 0};

static void key_of(const char *token, uint8_t key[POL_TOKEN_KEY_LEN])
{
    cr_assert_eq(pol_token_cache_key(authz_slice_from_cstr(token), key), 0);
}

/* Inserts |token| as if it had been parsed and verified by |cluster| at
 * |exp|; the jwt carries only exp. */
static void put(pol_token_cache *cache, const char *token, uint64_t generation, size_t cluster, int64_t exp)
{
    uint8_t key[POL_TOKEN_KEY_LEN];
    key_of(token, key);
    authz_jwt jwt = {0};
    jwt.exp.state = AUTHZ_JWT_TIME_VALID;
    jwt.exp.seconds = exp;
    cr_assert_not_null(pol_token_cache_put(cache, generation, key, &jwt, cluster, 0, 0, NULL, 0));
}

static const pol_cached_token *get(pol_token_cache *cache, const char *token, uint64_t generation,
                                   int64_t now)
{
    uint8_t key[POL_TOKEN_KEY_LEN];
    key_of(token, key);
    return pol_token_cache_get(cache, generation, key, now);
}

Test(pol_token_cache, key_is_the_sha256_of_the_token)
{
    /* FIPS 180-2 test vector: SHA-256("abc"). */
    static const uint8_t want[POL_TOKEN_KEY_LEN] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t key[POL_TOKEN_KEY_LEN];
    key_of("abc", key);
    cr_assert_arr_eq(key, want, sizeof want);
}

Test(pol_token_cache, hit_returns_the_verifying_cluster)
{
    pol_token_cache *cache = pol_token_cache_new(4);
    put(cache, "aaa.bbb.ccc", 1, 2, 1000);
    const pol_cached_token *hit = get(cache, "aaa.bbb.ccc", 1, 999);
    cr_assert_not_null(hit);
    cr_assert_eq(hit->cluster_index, 2);
    cr_assert_eq(hit->exp.seconds, 1000);
    pol_token_cache_free(cache);
}

Test(pol_token_cache, lookup_compares_all_bytes)
{
    pol_token_cache *cache = pol_token_cache_new(4);
    put(cache, "aaa.bbb.ccc", 1, 0, 1000);
    cr_assert_null(get(cache, "aaa.bbb.ccd", 1, 0));
    cr_assert_null(get(cache, "aaa.bbb.cc", 1, 0));
    cr_assert_null(get(cache, "aaa.bbb.ccc.", 1, 0));
    cr_assert_not_null(get(cache, "aaa.bbb.ccc", 1, 0));
    pol_token_cache_free(cache);
}

Test(pol_token_cache, entry_dropped_at_exp)
{
    pol_token_cache *cache = pol_token_cache_new(4);
    put(cache, "t1", 1, 0, 1000);
    cr_assert_null(get(cache, "t1", 1, 1000));
    cr_assert_eq(pol_token_cache_count(cache), 0);
    pol_token_cache_free(cache);
}

Test(pol_token_cache, other_generation_is_a_miss_and_drops_the_entry)
{
    pol_token_cache *cache = pol_token_cache_new(4);
    put(cache, "t1", 1, 0, 1000);
    cr_assert_null(get(cache, "t1", 2, 0));
    cr_assert_eq(pol_token_cache_count(cache), 0);
    cr_assert_null(get(cache, "t1", 1, 0));
    pol_token_cache_free(cache);
}

Test(pol_token_cache, evicts_least_recently_used_when_full)
{
    pol_token_cache *cache = pol_token_cache_new(3);
    put(cache, "t1", 1, 0, 1000);
    put(cache, "t2", 1, 0, 1000);
    put(cache, "t3", 1, 0, 1000);
    cr_assert_not_null(get(cache, "t1", 1, 0)); /* t2 is now the oldest */
    put(cache, "t4", 1, 0, 1000);
    cr_assert_eq(pol_token_cache_count(cache), 3);
    cr_assert_null(get(cache, "t2", 1, 0));
    cr_assert_not_null(get(cache, "t1", 1, 0));
    cr_assert_not_null(get(cache, "t3", 1, 0));
    cr_assert_not_null(get(cache, "t4", 1, 0));
    pol_token_cache_free(cache);
}

Test(pol_token_cache, token_without_a_valid_exp_is_not_stored)
{
    pol_token_cache *cache = pol_token_cache_new(2);
    uint8_t key[POL_TOKEN_KEY_LEN];
    key_of("t1", key);
    authz_jwt jwt = {0};
    cr_assert_null(pol_token_cache_put(cache, 1, key, &jwt, 0, 0, 0, NULL, 0), "exp absent");
    jwt.exp.state = AUTHZ_JWT_TIME_INVALID;
    cr_assert_null(pol_token_cache_put(cache, 1, key, &jwt, 0, 0, 0, NULL, 0), "exp invalid");
    cr_assert_eq(pol_token_cache_count(cache), 0);
    pol_token_cache_free(cache);
}

Test(pol_token_cache, many_tokens_stay_bounded_and_findable)
{
    pol_token_cache *cache = pol_token_cache_new(100);
    char token[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(token, sizeof token, "token-%d", i);
        put(cache, token, 7, (size_t)i, 5000);
    }
    cr_assert_eq(pol_token_cache_count(cache), 100);
    for (int i = 900; i < 1000; i++) {
        snprintf(token, sizeof token, "token-%d", i);
        const pol_cached_token *hit = get(cache, token, 7, 0);
        cr_assert_not_null(hit, "%s", token);
        cr_assert_eq(hit->cluster_index, (uint32_t)i);
    }
    for (int i = 0; i < 900; i++) {
        snprintf(token, sizeof token, "token-%d", i);
        cr_assert_null(get(cache, token, 7, 0), "%s was evicted", token);
    }
    pol_token_cache_free(cache);
}

Test(pol_token_cache, zero_capacity_is_refused)
{
    cr_assert_null(pol_token_cache_new(0));
}

/* header.payload.AAAA for test JSON texts (no real signature: the cache
 * never verifies). Caller frees. */
static char *token_for(const char *header, const char *payload)
{
    size_t cap = (strlen(header) + strlen(payload)) * 2 + 16;
    char *out = malloc(cap);
    size_t pos = authz_b64url_encode((const unsigned char *)header, strlen(header), out, cap);
    out[pos++] = '.';
    pos += authz_b64url_encode((const unsigned char *)payload, strlen(payload), out + pos, cap - pos);
    snprintf(out + pos, cap - pos, ".AAAA");
    return out;
}

static bool str_is(authz_jwt_str s, const char *want)
{
    return s.present && authz_slice_eq_cstr(s.value, want);
}

/* Everything the checks read is copied into the entry: the parse, its
 * arena and the token bytes may all be gone, and the view still carries
 * every claim, the times and the bound CIDRs. */
Test(pol_token_cache, entry_keeps_what_the_checks_read)
{
    pol_token_cache *cache = pol_token_cache_new(2);
    char *token = token_for("{\"alg\":\"ES256\",\"kid\":\"k\"}",
                            "{\"iss\":\"https:\\/\\/i\",\"sub\":\"system:serviceaccount:ns:sa\","
                            "\"aud\":[\"a\",\"bb\"],\"exp\":5000,\"nbf\":100,\"iat\":90,"
                            "\"boundCIDRs\":[\"10.1.0.0/16\",\"fd00::/8\"],"
                            "\"kubernetes.io\":{\"namespace\":\"ns\",\"serviceaccount\":{\"name\":\"sa\"},"
                            "\"pod\":{\"name\":\"p-1\",\"uid\":\"u\"},\"node\":{\"name\":\"n-2\"},"
                            "\"warnafter\":4000}}");
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 0);
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(authz_jwt_parse(authz_slice_from_cstr(token), &limits16k, &arena, &jwt, &st), 0, "%s",
                 st.message);
    authz_cidr bound[AUTHZ_JWT_MAX_CIDRS];
    size_t bound_count = 0;
    cr_assert_eq(authz_jwt_cidr_claim(&jwt, "boundCIDRs", bound, AUTHZ_JWT_MAX_CIDRS, &bound_count), 1);
    uint8_t key[POL_TOKEN_KEY_LEN];
    key_of(token, key);
    cr_assert_not_null(pol_token_cache_put(cache, 1, key, &jwt, 1, 3, 1, bound, bound_count));
    memset(token, 'x', strlen(token)); /* the token's bytes are gone */
    free(token);
    authz_arena_free(&arena); /* and so is the parse */
    memset(bound, 0, sizeof bound);

    const pol_cached_token *hit = pol_token_cache_get(cache, 1, key, 10);
    cr_assert_not_null(hit);
    cr_assert_eq(hit->cluster_index, 1);
    cr_assert_eq(hit->key_index, 3);
    cr_assert_eq(hit->bound_rc, 1);
    cr_assert_eq(hit->bound_count, 2);
    authz_ip ip;
    cr_assert_eq(authz_ip_parse(AUTHZ_SLICE_LIT("10.1.2.3"), &ip), 0);
    cr_assert(authz_cidr_list_contains(hit->bound, hit->bound_count, &ip));
    cr_assert_eq(authz_ip_parse(AUTHZ_SLICE_LIT("fd00::1"), &ip), 0);
    cr_assert(authz_cidr_list_contains(hit->bound, hit->bound_count, &ip));
    cr_assert_eq(authz_ip_parse(AUTHZ_SLICE_LIT("10.2.0.1"), &ip), 0);
    cr_assert_not(authz_cidr_list_contains(hit->bound, hit->bound_count, &ip));

    authz_jwt view;
    pol_cached_token_view(hit, AUTHZ_SLICE_LIT("https://i"), &view);
    cr_assert(str_is(view.iss, "https://i"));
    cr_assert(str_is(view.sub, "system:serviceaccount:ns:sa"));
    cr_assert(view.aud_present);
    cr_assert_eq(view.aud_count, 2);
    cr_assert(authz_slice_eq_cstr(view.aud[0], "a"));
    cr_assert(authz_slice_eq_cstr(view.aud[1], "bb"));
    cr_assert_eq(view.exp.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(view.exp.seconds, 5000);
    cr_assert_eq(view.nbf.seconds, 100);
    cr_assert_eq(view.iat.seconds, 90);
    cr_assert_eq(view.k8s_warnafter.seconds, 4000);
    cr_assert(view.k8s_present);
    cr_assert(str_is(view.k8s_namespace, "ns"));
    cr_assert(str_is(view.k8s_sa_name, "sa"));
    cr_assert(str_is(view.k8s_pod_name, "p-1"));
    cr_assert(str_is(view.k8s_node_name, "n-2"));
    cr_assert_not(view.k8s_sa_uid.present, "uids are not kept");
    cr_assert_null(view.payload, "no JSON is kept");

    /* Evicting frees the entry (ASan/LSan would see a leak or a use after free). */
    put(cache, "t2", 1, 0, 5000);
    put(cache, "t3", 1, 0, 5000);
    cr_assert_eq(pol_token_cache_count(cache), 2);
    pol_token_cache_free(cache);
}

/* Absent claims stay absent in the view, and a malformed bound-CIDR claim
 * keeps its verdict. */
Test(pol_token_cache, absent_claims_stay_absent)
{
    pol_token_cache *cache = pol_token_cache_new(1);
    uint8_t key[POL_TOKEN_KEY_LEN];
    key_of("t", key);
    authz_jwt jwt = {0};
    jwt.exp.state = AUTHZ_JWT_TIME_VALID;
    jwt.exp.seconds = 50;
    const pol_cached_token *t = pol_token_cache_put(cache, 1, key, &jwt, 0, 0, -1, NULL, 0);
    cr_assert_not_null(t);
    cr_assert_eq(t->bound_rc, -1);
    authz_jwt view;
    pol_cached_token_view(t, AUTHZ_SLICE_LIT("iss"), &view);
    cr_assert_not(view.sub.present);
    cr_assert_not(view.aud_present);
    cr_assert_eq(view.aud_count, 0);
    cr_assert_not(view.k8s_present);
    cr_assert_not(view.k8s_namespace.present);
    cr_assert_not(view.k8s_pod_name.present);
    cr_assert_eq(view.nbf.state, AUTHZ_JWT_TIME_ABSENT);
    cr_assert_eq(view.k8s_warnafter.state, AUTHZ_JWT_TIME_ABSENT);
    pol_token_cache_free(cache);
}
