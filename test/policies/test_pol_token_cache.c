#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_b64.h"
#include "pol_token_cache.h"

static const authz_jwt_limits limits16k = {16384, 16, 0};

/* Inserts |token| as if it had been parsed and verified by |cluster| at
 * |exp|; the jwt carries only exp, which is all the cache reads. */
static void put(pol_token_cache *cache, const char *token, uint64_t generation, size_t cluster, int64_t exp)
{
    authz_arena *arena = NULL;
    authz_slice copy = pol_token_cache_reserve(cache, authz_slice_from_cstr(token), &limits16k, &arena);
    cr_assert_not_null(copy.ptr);
    cr_assert_not_null(arena);
    cr_assert(authz_slice_eq_cstr(copy, token));
    cr_assert_neq((const void *)copy.ptr, (const void *)token, "the cache keeps its own copy");
    authz_jwt jwt = {0};
    jwt.exp.state = AUTHZ_JWT_TIME_VALID;
    jwt.exp.seconds = exp;
    cr_assert_not_null(pol_token_cache_commit(cache, generation, &jwt, cluster, 0));
}

static const pol_cached_token *get(pol_token_cache *cache, const char *token, uint64_t generation,
                                   int64_t now)
{
    return pol_token_cache_get(cache, generation, authz_slice_from_cstr(token), now);
}

Test(pol_token_cache, hit_returns_the_verifying_cluster)
{
    pol_token_cache *cache = pol_token_cache_new(4);
    put(cache, "aaa.bbb.ccc", 1, 2, 1000);
    const pol_cached_token *hit = get(cache, "aaa.bbb.ccc", 1, 999);
    cr_assert_not_null(hit);
    cr_assert_eq(hit->cluster_index, 2);
    cr_assert_eq(hit->jwt.exp.seconds, 1000);
    pol_token_cache_free(cache);
}

Test(pol_token_cache, lookup_compares_all_bytes)
{
    pol_token_cache *cache = pol_token_cache_new(4);
    put(cache, "aaa.bbb.ccc", 1, 0, 1000);
    cr_assert_null(get(cache, "aaa.bbb.ccd", 1, 0));
    cr_assert_null(get(cache, "aaa.bbb.cc", 1, 0));
    cr_assert_null(get(cache, "aaa.bbb.ccc.", 1, 0));
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

Test(pol_token_cache, abort_and_oversized_reserve_store_nothing)
{
    pol_token_cache *cache = pol_token_cache_new(2);
    authz_jwt_limits small = {16, 16, 0};
    authz_arena *arena = NULL;
    authz_slice copy = pol_token_cache_reserve(cache, authz_slice_from_cstr("t1"), &small, &arena);
    cr_assert_not_null(copy.ptr);
    cr_assert_not_null(arena);
    cr_assert_not_null(authz_arena_alloc(arena, 100), "the reserved arena is usable");
    pol_token_cache_abort(cache);
    cr_assert_eq(pol_token_cache_count(cache), 0);
    pol_token_cache_abort(cache);
    copy = pol_token_cache_reserve(cache, authz_slice_from_cstr("0123456789abcdefX"), &small, &arena);
    cr_assert_null(copy.ptr);
    cr_assert_null(arena);
    authz_jwt jwt = {0};
    cr_assert_null(pol_token_cache_commit(cache, 1, &jwt, 0, 0), "nothing reserved");
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
        cr_assert_eq(hit->cluster_index, (size_t)i);
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

/* The real protocol: parse the reserved copy into the reserved arena, commit,
 * and the entry's slices stay valid after the caller's buffers are gone. */
Test(pol_token_cache, entry_owns_its_parse)
{
    pol_token_cache *cache = pol_token_cache_new(2);
    char *token = token_for("{\"alg\":\"ES256\",\"kid\":\"k\"}",
                            "{\"iss\":\"https:\\/\\/i\",\"aud\":[\"a\",\"b\"],\"exp\":5000,"
                            "\"kubernetes.io\":{\"namespace\":\"ns\"}}");
    authz_arena *arena = NULL;
    authz_slice copy = pol_token_cache_reserve(cache, authz_slice_from_cstr(token), &limits16k, &arena);
    cr_assert_not_null(copy.ptr);
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(authz_jwt_parse(copy, &limits16k, arena, &jwt, &st), 0, "%s", st.message);
    cr_assert_not_null(pol_token_cache_commit(cache, 1, &jwt, 0, 0));
    size_t len = strlen(token);
    memset(token, 'x', len); /* the caller's bytes are gone */
    free(token);

    token = token_for("{\"alg\":\"ES256\",\"kid\":\"k\"}",
                      "{\"iss\":\"https:\\/\\/i\",\"aud\":[\"a\",\"b\"],\"exp\":5000,"
                      "\"kubernetes.io\":{\"namespace\":\"ns\"}}");
    const pol_cached_token *hit = pol_token_cache_get(cache, 1, authz_slice_from_cstr(token), 10);
    cr_assert_not_null(hit);
    cr_assert(authz_slice_eq_cstr(hit->jwt.iss.value, "https://i"));
    cr_assert(authz_slice_eq_cstr(hit->jwt.k8s_namespace.value, "ns"));
    cr_assert_eq(hit->jwt.aud_count, 2);
    cr_assert(authz_slice_eq_cstr(hit->jwt.aud[1], "b"));
    cr_assert(authz_slice_eq_cstr(hit->jwt.header_text, "{\"alg\":\"ES256\",\"kid\":\"k\"}"));
    cr_assert_eq(hit->jwt.signing_input.ptr, hit->token.ptr, "signing input is the entry's copy");
    free(token);

    /* Evicting frees the entry's arena (ASan/LSan would see a leak or a use after free). */
    put(cache, "t2", 1, 0, 5000);
    put(cache, "t3", 1, 0, 5000);
    cr_assert_eq(pol_token_cache_count(cache), 2);
    pol_token_cache_free(cache);
}

/* The reserved arena's budget admits the densest token the limits allow and
 * nothing much beyond it. */
Test(pol_token_cache, entry_arena_is_bounded)
{
    pol_token_cache *cache = pol_token_cache_new(1);
    authz_jwt_limits limits = {4096, 16, 0};
    char token[4096];
    memset(token, 'A', sizeof token);
    authz_arena *arena = NULL;
    authz_slice copy = pol_token_cache_reserve(cache, (authz_slice){token, sizeof token}, &limits, &arena);
    cr_assert_not_null(copy.ptr);
    size_t budget = arena->limit;
    cr_assert_geq(budget, 2 * authz_jwt_arena_bound(&limits));
    cr_assert_leq(budget, 2 * authz_jwt_arena_bound(&limits) + 8 * sizeof token + 8192);
    cr_assert_null(authz_arena_alloc(arena, budget), "the budget is enforced");
    pol_token_cache_abort(cache);
    pol_token_cache_free(cache);
}

Test(pol_token_cache, free_with_a_pending_reservation)
{
    pol_token_cache *cache = pol_token_cache_new(1);
    authz_arena *arena = NULL;
    cr_assert_not_null(pol_token_cache_reserve(cache, AUTHZ_SLICE_LIT("abc"), &limits16k, &arena).ptr);
    cr_assert_not_null(authz_arena_alloc(arena, 64 * 1024), "large parses take more chunks");
    pol_token_cache_free(cache);
}
