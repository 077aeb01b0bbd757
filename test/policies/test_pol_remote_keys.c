/* Remote keys in the snapshot: a cluster with only a jwks_uri loads with no
 * key and denies unknown_key, naming its issuer as a kid miss; a fetched key
 * set attached with pol_snapshot_with_remote_keys verifies tokens under a new
 * generation, so the token cache never answers from the previous key set;
 * derived snapshots outlive the one they came from; fetched documents go
 * through the jwks_file parser and an empty one is refused. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_arena.h"
#include "pol_config.h"
#include "pol_decide.h"
#include "pol_token_cache.h"
#include "tg_testdir.h"
#include "tg_testkeys.h"
#include "tg_testtoken.h"

#define ISS_R "https://r.example"
#define ISS_F "https://f.example"
#define URI_R "https://r.example/openid/v1/jwks"

static tg_testdir dir;
static EVP_PKEY *key_r1, *key_r2, *key_f;
static pol_snapshot *base;
static authz_arena arena;
static int64_t now;

static void setup(void)
{
    char path[512], err[4096];
    now = (int64_t)time(NULL);
    cr_assert_eq(tg_testdir_make(&dir, "tg-remote-keys"), 0);
    key_r1 = tg_keygen("p256");
    key_r2 = tg_keygen("p256");
    key_f = tg_keygen("p256");
    cr_assert(key_r1 && key_r2 && key_f);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "f.jwks", key_f, "f1"), 0);
    cr_assert_eq(tg_testdir_write(&dir, "c.json",
                                  "{\"clusters\":["
                                  "{\"name\":\"r\",\"issuer\":\"" ISS_R "\",\"audiences\":[\"api\"],"
                                  "\"jwks_uri\":\"" URI_R "\"},"
                                  "{\"name\":\"f\",\"issuer\":\"" ISS_F "\",\"audiences\":[\"api\"],"
                                  "\"jwks_file\":\"f.jwks\"}]}"),
                 0);
    cr_assert_eq(tg_testdir_path(&dir, "c.json", path, sizeof path), 0);
    cr_assert_eq(pol_config_load(path, &base, err, sizeof err), 0, "%s", err);
    authz_arena_init(&arena, NULL, 0, 64 * 1024);
}

static void teardown(void)
{
    pol_snapshot_release(base);
    authz_arena_free(&arena);
    EVP_PKEY_free(key_r1);
    EVP_PKEY_free(key_r2);
    EVP_PKEY_free(key_f);
    tg_testdir_remove(&dir);
}

TestSuite(pol_remote_keys, .init = setup, .fini = teardown);

static char *token(EVP_PKEY *key, const char *iss, const char *kid)
{
    json_t *claims = tg_k8s_claims(iss, "api", "shop", "web", now);
    char *t = tg_jws_claims(key, "ES256", kid, claims);
    json_decref(claims);
    cr_assert(t);
    return t;
}

static pol_remote_keys *fetched(EVP_PKEY *key, const char *kid)
{
    tg_jwk_opts opts = {.kid = kid};
    char *jwks = tg_jwks(&key, &opts, 1);
    char err[256];
    pol_remote_keys *rk =
        pol_remote_keys_new(jwks, strlen(jwks), authz_slice_from_cstr(URI_R), err, sizeof err);
    cr_assert(rk, "%s", err);
    free(jwks);
    return rk;
}

/* |snap| with |rk| as cluster r's fetched keys (one reference). */
static pol_snapshot *with_keys(pol_snapshot *snap, pol_remote_keys *rk)
{
    pol_remote_keys *remote[2] = {rk, NULL};
    char err[512];
    pol_snapshot *out = pol_snapshot_with_remote_keys(snap, remote, err, sizeof err);
    cr_assert(out);
    cr_expect_eq(err[0], '\0', "%s", err);
    return out;
}

static pol_decision decide(pol_snapshot *snap, pol_token_cache *cache, const char *cluster, const char *tok)
{
    static char auth[4096];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    pol_request req = {
        .authorization = authz_slice_from_cstr(auth),
        .cluster = authz_slice_from_cstr(cluster),
        .method = authz_slice_from_cstr("GET"),
        .path = authz_slice_from_cstr("/"),
        .now = now,
    };
    pol_decide_ctx ctx = {.arena = &arena, .cache = cache};
    pol_decision d;
    authz_arena_reset(&arena);
    pol_decide(snap, &req, &ctx, &d);
    return d;
}

static bool slice_is(authz_slice s, const char *text)
{
    return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

Test(pol_remote_keys, remote_only_cluster_loads_without_keys_and_names_the_kid_miss)
{
    const pol_cluster *r = pol_snapshot_find_cluster(base, authz_slice_from_cstr("r"));
    cr_assert(r && r->remote && !r->source.discovery);
    cr_expect(slice_is(r->source.jwks_uri, URI_R));
    cr_expect_eq(r->source.fetch_timeout_seconds, 10);
    cr_expect_eq(r->source.refresh_seconds, 0, "0: Cache-Control decides");
    cr_expect_eq(pol_cluster_key_count(r), 0);

    char *t = token(key_r1, ISS_R, "r1");
    pol_decision d = decide(base, NULL, "r", t);
    cr_expect_not(d.allowed);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_UNKNOWN_KEY, "%s", d.status.message);
    cr_expect(slice_is(d.kid_miss_issuer, ISS_R), "the issuer whose remote keys to fetch again");
    free(t);

    /* A kid-less token is no kid miss: nothing to look for. */
    t = token(key_r1, ISS_R, NULL);
    d = decide(base, NULL, "r", t);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_UNKNOWN_KEY);
    cr_expect_eq(d.kid_miss_issuer.len, 0);
    free(t);

    /* A token that verifies is none either. */
    t = token(key_f, ISS_F, "f1");
    d = decide(base, NULL, "f", t);
    cr_expect(d.allowed, "%s", d.status.message);
    cr_expect_eq(d.kid_miss_issuer.len, 0);
    free(t);
}

Test(pol_remote_keys, fetched_keys_verify_under_a_new_generation)
{
    pol_remote_keys *rk1 = fetched(key_r1, "r1");
    pol_snapshot *s1 = with_keys(base, rk1);
    pol_remote_keys_release(rk1); /* the snapshot holds its own reference */
    const pol_cluster *r = pol_snapshot_find_cluster(s1, authz_slice_from_cstr("r"));
    cr_expect_eq(pol_cluster_key_count(r), 1);
    cr_expect_eq(s1->key_count, 2);
    cr_expect_gt(s1->generation, base->generation);

    char *t1 = token(key_r1, ISS_R, "r1");
    pol_decision d = decide(s1, NULL, "r", t1);
    cr_expect(d.allowed, "%s", d.status.message);
    cr_expect_eq(d.issuer_cluster, r);

    /* The file cluster's keys are still there, and still its own. */
    char *tf = token(key_f, ISS_F, "f1");
    cr_expect(decide(s1, NULL, "f", tf).allowed);
    free(tf);

    /* Rotation: the next set has r2 only. A cached r1 verification must not
     * survive it: the cache is keyed by generation. */
    pol_token_cache *cache = pol_token_cache_new(16);
    cr_assert(cache);
    cr_expect(decide(s1, cache, "r", t1).allowed);
    cr_expect(decide(s1, cache, "r", t1).allowed, "a cache hit of a fetched key");
    pol_remote_keys *rk2 = fetched(key_r2, "r2");
    pol_snapshot *s2 = with_keys(s1, rk2);
    pol_remote_keys_release(rk2);
    cr_expect_gt(s2->generation, s1->generation);
    d = decide(s2, cache, "r", t1);
    cr_expect_not(d.allowed, "r1 is gone from the key set");
    cr_expect_eq(d.status.reason, AUTHZ_REASON_UNKNOWN_KEY);
    char *t2 = token(key_r2, ISS_R, "r2");
    cr_expect(decide(s2, cache, "r", t2).allowed);

    /* Derived snapshots share the loaded one: each outlives the others. */
    pol_snapshot_release(s1);
    cr_expect(decide(s2, NULL, "r", t2).allowed);
    pol_snapshot_release(s2);
    pol_token_cache_free(cache);
    free(t1);
    free(t2);
}

Test(pol_remote_keys, fetched_documents_are_checked_like_jwks_files)
{
    char err[256];
    const char *bad[] = {"{\"keys\":[]}", "{\"keys\":[{\"kty\":\"RSA\"", "[]",
                         "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        pol_remote_keys *rk =
            pol_remote_keys_new(bad[i], strlen(bad[i]), authz_slice_from_cstr(URI_R), err, sizeof err);
        cr_expect_null(rk, "accepted %s", bad[i]);
        cr_expect_neq(err[0], '\0', "no reason for %s", bad[i]);
        pol_remote_keys_release(rk);
    }
    pol_remote_keys *rk = fetched(key_r1, "r1");
    cr_expect(slice_is(rk->uri, URI_R));
    cr_expect_eq(rk->keys.count, 1);
    pol_remote_keys_release(rk);
}

Test(pol_remote_keys, a_fetched_key_of_another_cluster_stays_out)
{
    /* r's endpoint publishes f's key (under another kid): one key, one cluster. */
    pol_remote_keys *rk = fetched(key_f, "not-f1");
    pol_remote_keys *remote[2] = {rk, NULL};
    char err[512];
    pol_snapshot *s = pol_snapshot_with_remote_keys(base, remote, err, sizeof err);
    pol_remote_keys_release(rk);
    cr_assert(s);
    cr_expect(strstr(err, "cluster r: fetched key kid not-f1") && strstr(err, "is also a key of cluster f"),
              "%s", err);
    const pol_cluster *r = pol_snapshot_find_cluster(s, authz_slice_from_cstr("r"));
    cr_expect_eq(pol_cluster_key_count(r), 0);
    char *t = token(key_f, ISS_R, "not-f1");
    pol_decision d = decide(s, NULL, "r", t);
    cr_expect_not(d.allowed);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_UNKNOWN_KEY);
    free(t);
    pol_snapshot_release(s);
}
