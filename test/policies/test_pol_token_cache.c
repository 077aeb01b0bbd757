#include <criterion/criterion.h>
#include <stdio.h>

#include "pol_token_cache.h"

/* Inserts |token| as if it had been parsed and verified by |cluster| at
 * |exp|; the jwt carries only exp, which is all the cache reads. */
static void put(pol_token_cache *cache, const char *token, uint64_t generation, size_t cluster, int64_t exp)
{
    authz_slice copy = pol_token_cache_reserve(cache, authz_slice_from_cstr(token), 16384);
    cr_assert_not_null(copy.ptr);
    cr_assert(authz_slice_eq_cstr(copy, token));
    cr_assert_neq((const void *)copy.ptr, (const void *)token, "the cache keeps its own copy");
    authz_jwt jwt = {0};
    jwt.exp.state = AUTHZ_JWT_TIME_VALID;
    jwt.exp.seconds = exp;
    cr_assert_not_null(pol_token_cache_commit(cache, generation, &jwt, cluster, 0));
}

static const pol_cached_token *get(pol_token_cache *cache, const char *token, uint64_t generation, int64_t now)
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
    authz_slice copy = pol_token_cache_reserve(cache, authz_slice_from_cstr("t1"), 16);
    cr_assert_not_null(copy.ptr);
    pol_token_cache_abort(cache);
    cr_assert_eq(pol_token_cache_count(cache), 0);
    copy = pol_token_cache_reserve(cache, authz_slice_from_cstr("0123456789abcdefX"), 16);
    cr_assert_null(copy.ptr);
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
