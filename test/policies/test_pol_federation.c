/* Identity providers (OIDC tokens of Dex or Keycloak beside service-account
 * tokens): the config's identity_providers and its errors, and pol_decide
 * for provider tokens: provider_not_allowed, claim_mismatch, the claim
 * mappings (prefixes, dotted group paths), rules' users and groups and the
 * separation of provider and cluster keys. Keys are generated per run. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_arena.h"
#include "pol_config.h"
#include "pol_decide.h"
#include "tg_testdir.h"
#include "tg_testkeys.h"
#include "tg_testtoken.h"

#define ISS_A "https://a.example"
#define ISS_DEX "https://dex.example.com"
#define ISS_KC "https://keycloak.example.com/realms/corp"

static tg_testdir dir;
static EVP_PKEY *key_a, *key_dex, *key_kc;
static pol_snapshot *snap;
static authz_arena arena;
static int64_t now;
static char err[8192];

/* Clusters a, b (SA only: its one rule names namespaces), c (trusts no
 * provider). Dex (RS256, email, groups, email_verified) for a and b;
 * Keycloak (ES256, preferred_username, realm roles, a typ rule) for a. */
static const char config[] =
    "{\"clusters\":["
    "{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api\"],\"jwks_file\":\"a.jwks\"},"
    "{\"name\":\"b\",\"issuer\":\"https://b.example\",\"audiences\":[\"api\"],\"jwks_file\":\"b.jwks\"},"
    "{\"name\":\"c\",\"issuer\":\"https://c.example\",\"audiences\":[\"api\"],\"jwks_file\":\"c.jwks\"}],"
    "\"identity_providers\":["
    "{\"name\":\"dex\",\"issuer\":\"" ISS_DEX "\",\"audiences\":[\"tokengate\"],\"jwks_file\":\"dex.jwks\","
    "\"claim_mappings\":{\"username\":{\"claim\":\"email\",\"prefix\":\"corp:\"},"
    "\"groups\":{\"claim\":\"groups\",\"prefix\":\"corp:\"}},"
    "\"claim_validation_rules\":[{\"claim\":\"email_verified\",\"required_value\":true}],"
    "\"clusters\":[\"a\",\"b\"]},"
    "{\"name\":\"kc\",\"issuer\":\"" ISS_KC "\",\"audiences\":[\"account\",\"tokengate\"],"
    "\"public_key_files\":[\"kc.pem\"],"
    "\"claim_mappings\":{\"username\":{\"claim\":\"preferred_username\",\"prefix\":\"\"},"
    "\"groups\":{\"claim\":\"realm_access.roles\",\"prefix\":\"kc:\"}},"
    "\"claim_validation_rules\":[{\"claim\":\"typ\",\"required_values\":[\"Bearer\",\"ID\"]},"
    "{\"claim\":\"resource_access.tokengate.roles\",\"required_values\":[\"use\"]},"
    "{\"claim\":\"acr\",\"required_value\":1}],"
    "\"clusters\":[\"a\"]}],"
    "\"rules\":["
    "{\"name\":\"admins\",\"clusters\":[\"a\"],\"path_prefix\":\"/admin\",\"groups\":[\"corp:admins\","
    "\"kc:admin\"]},"
    "{\"name\":\"bob-only\",\"clusters\":[\"a\"],\"path_prefix\":\"/"
    "bob\",\"users\":[\"corp:bob@example.com\"]},"
    "{\"name\":\"ops-or-admins\",\"clusters\":[\"a\"],\"path_prefix\":\"/ops\",\"namespaces\":[\"ops\"],"
    "\"groups\":[\"corp:admins\"]},"
    "{\"name\":\"a\",\"clusters\":[\"a\"]},"
    "{\"name\":\"b-sa\",\"clusters\":[\"b\"],\"namespaces\":[\"ops\"]},"
    "{\"name\":\"c\",\"clusters\":[\"c\"]}]}";

static pol_snapshot *load_text(const char *text)
{
    char path[512];
    cr_assert_eq(tg_testdir_write(&dir, "config.json", text), 0);
    cr_assert_eq(tg_testdir_path(&dir, "config.json", path, sizeof path), 0);
    pol_snapshot *s = NULL;
    pol_config_load(path, &s, err, sizeof err);
    return s;
}

static void setup(void)
{
    cr_assert_eq(tg_testdir_make(&dir, "tg-federation"), 0);
    now = (int64_t)time(NULL);
    key_a = tg_keygen("p256");
    key_dex = tg_keygen("rsa2048");
    key_kc = tg_keygen("p256");
    EVP_PKEY *key_b = tg_keygen("p256"), *key_c = tg_keygen("p256");
    cr_assert(key_a && key_dex && key_kc && key_b && key_c);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "a.jwks", key_a, "a1"), 0);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "b.jwks", key_b, "b1"), 0);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "c.jwks", key_c, "c1"), 0);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "dex.jwks", key_dex, "dex-1"), 0);
    cr_assert_eq(tg_testdir_write_pem(&dir, "kc.pem", key_kc), 0);
    EVP_PKEY_free(key_b);
    EVP_PKEY_free(key_c);
    snap = load_text(config);
    cr_assert_not_null(snap, "%s", err);
    authz_arena_init(&arena, NULL, 0, 256 * 1024);
}

static void teardown(void)
{
    authz_arena_free(&arena);
    pol_snapshot_release(snap);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_dex);
    EVP_PKEY_free(key_kc);
    cr_assert_eq(tg_testdir_remove(&dir), 0);
}

TestSuite(pol_federation, .init = setup, .fini = teardown, .timeout = 60);

/* ---- tokens ---------------------------------------------------------------- */

/* A Dex ID token: iss, aud = client id, sub, email, email_verified, groups,
 * name, at_hash. */
static json_t *dex_claims(const char *email)
{
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:b,s:[s,s],s:s,s:s,s:I,s:I}", "iss", ISS_DEX, "aud", "tokengate",
                          "sub", "CgVhbGljZRIGZ2l0aHVi", "email", email, "email_verified", 1, "groups",
                          "admins", "dev", "name", "Alice", "at_hash", "bW9ja2F0aGFzaA", "iat",
                          (json_int_t)now, "exp", (json_int_t)(now + 600));
    cr_assert_not_null(c);
    return c;
}

/* A Keycloak access token: azp, typ Bearer, preferred_username,
 * realm_access.roles, resource_access.<client>.roles, acr. */
static json_t *kc_claims(const char *user)
{
    json_t *c =
        json_pack("{s:s,s:[s,s],s:s,s:s,s:s,s:s,s:{s:[s,s]},s:{s:{s:[s]},s:{s:[s]}},s:i,s:I,s:I}", "iss",
                  ISS_KC, "aud", "account", "tokengate", "sub", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "azp",
                  "tokengate", "typ", "Bearer", "preferred_username", user, "realm_access", "roles", "admin",
                  "offline_access", "resource_access", "tokengate", "roles", "use", "account", "roles",
                  "manage-account", "acr", 1, "iat", (json_int_t)now, "exp", (json_int_t)(now + 300));
    cr_assert_not_null(c);
    return c;
}

static char *sign(EVP_PKEY *key, const char *alg, const char *kid, json_t *c)
{
    char *jws = tg_jws_claims(key, alg, kid, c);
    cr_assert_not_null(jws);
    json_decref(c);
    return jws;
}

static char *dex(json_t *c)
{
    return sign(key_dex, "RS256", "dex-1", c);
}

static char *kc(json_t *c)
{
    return sign(key_kc, "ES256", NULL, c);
}

static json_t *set(json_t *c, const char *name, json_t *value)
{
    cr_assert_not_null(value);
    cr_assert_eq(json_object_set_new(c, name, value), 0);
    return c;
}

/* ---- decisions -------------------------------------------------------------- */

typedef struct trace_log {
    char text[4096];
} trace_log;

static void on_step(void *ctx, const char *check, bool passed, const char *detail)
{
    trace_log *log = ctx;
    size_t used = strlen(log->text);
    snprintf(log->text + used, sizeof log->text - used, "%s %s %s\n", passed ? "PASS" : "FAIL", check,
             detail);
}

static trace_log last_trace;

/* Decides |token| (consumed) for |cluster| on |path|. */
static pol_decision decide_on(const pol_snapshot *s, char *token, const char *cluster, const char *path)
{
    char authorization[8192];
    snprintf(authorization, sizeof authorization, "Bearer %s", token);
    pol_request req = {.authorization = authz_slice_from_cstr(authorization),
                       .cluster = authz_slice_from_cstr(cluster),
                       .source = AUTHZ_SLICE_LIT("10.0.0.1"),
                       .method = AUTHZ_SLICE_LIT("GET"),
                       .path = authz_slice_from_cstr(path),
                       .now = now};
    memset(&last_trace, 0, sizeof last_trace);
    pol_trace trace = {.step = on_step, .ctx = &last_trace};
    pol_decide_ctx ctx = {.arena = &arena, .trace = &trace};
    pol_decision d;
    authz_arena_reset(&arena);
    pol_decide(s, &req, &ctx, &d);
    free(token);
    return d;
}

static pol_decision decide(char *token, const char *cluster, const char *path)
{
    return decide_on(snap, token, cluster, path);
}

static void expect(const pol_decision *d, authz_reason reason, const char *needle)
{
    cr_assert_eq(d->status.reason, reason, "reason %s (%s), want %s", authz_reason_name(d->status.reason),
                 d->status.message, authz_reason_name(reason));
    cr_assert_eq(d->allowed, reason == AUTHZ_REASON_OK);
    if (needle)
        cr_assert(strstr(d->status.message, needle), "message \"%s\" lacks \"%s\"", d->status.message,
                  needle);
}

static bool is(authz_slice s, const char *text)
{
    return authz_slice_eq_cstr(s, text);
}

Test(pol_federation, dex_rs256_token_allowed_with_prefixed_user_and_groups)
{
    pol_decision d = decide(dex(dex_claims("alice@example.com")), "a", "/x");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_assert_not_null(d.provider);
    cr_assert(is(d.provider->name, "dex"));
    cr_assert_null(d.issuer_cluster);
    cr_assert(is(d.subject, "corp:alice@example.com"), "%.*s", (int)d.subject.len, d.subject.ptr);
    cr_assert(is(d.username, "corp:alice@example.com"));
    cr_assert(is(d.groups, "corp:admins,corp:dev"), "%.*s", (int)d.groups.len, d.groups.ptr);
    cr_assert_eq(d.namespace_name.len, 0);
    cr_assert(strstr(last_trace.text, "PASS provider identity provider dex is trusted by cluster a"));
    cr_assert(
        strstr(last_trace.text, "PASS identity user corp:alice@example.com, groups corp:admins,corp:dev"));
    cr_assert(strstr(last_trace.text, "PASS rule rule a allows user corp:alice@example.com"), "%s",
              last_trace.text);
}

Test(pol_federation, keycloak_es256_access_token_with_nested_roles)
{
    pol_decision d = decide(kc(kc_claims("carol")), "a", "/admin/x");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_assert(is(d.subject, "carol"));
    cr_assert(is(d.groups, "kc:admin,kc:offline_access"), "%.*s", (int)d.groups.len, d.groups.ptr);
    cr_assert(is(d.rule->name, "admins"));
    /* An ID token (typ ID) passes the one-of rule too; typ Refresh does not. */
    d = decide(kc(set(kc_claims("carol"), "typ", json_string("ID"))), "a", "/x");
    expect(&d, AUTHZ_REASON_OK, NULL);
    d = decide(kc(set(kc_claims("carol"), "typ", json_string("Refresh"))), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim typ");
}

Test(pol_federation, provider_not_allowed_at_an_untrusting_cluster)
{
    pol_decision d = decide(dex(dex_claims("alice@example.com")), "c", "/x");
    expect(&d, AUTHZ_REASON_PROVIDER_NOT_ALLOWED, "identity provider dex is not trusted by cluster c");
    cr_assert_eq(authz_reason_http_status(d.status.reason), 403);
    d = decide(kc(kc_claims("carol")), "b", "/x");
    expect(&d, AUTHZ_REASON_PROVIDER_NOT_ALLOWED, "provider kc");
}

Test(pol_federation, email_verified_false_is_claim_mismatch)
{
    pol_decision d =
        decide(dex(set(dex_claims("eve@example.com"), "email_verified", json_false())), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim email_verified");
    cr_assert_eq(authz_reason_http_status(d.status.reason), 401);
    /* A string "true" is not true. */
    d = decide(dex(set(dex_claims("eve@example.com"), "email_verified", json_string("true"))), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim email_verified");
}

Test(pol_federation, email_username_needs_email_verified_true_when_present_without_a_rule)
{
    /* The provider has no rule on email_verified: the email mapping alone
     * requires it true when present, and accepts it absent. */
    const char *text =
        "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api\"],"
        "\"jwks_file\":\"a.jwks\"}],\"identity_providers\":[{\"name\":\"dex\",\"issuer\":\"" ISS_DEX
        "\",\"audiences\":[\"tokengate\"],\"jwks_file\":\"dex.jwks\",\"claim_mappings\":"
        "{\"username\":{\"claim\":\"email\",\"prefix\":\"\"}},\"clusters\":[\"a\"]}]}";
    pol_snapshot *s = load_text(text);
    cr_assert_not_null(s, "%s", err);
    pol_decision d =
        decide_on(s, dex(set(dex_claims("eve@example.com"), "email_verified", json_false())), "a", "/");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "email_verified is not true");
    json_t *c = dex_claims("eve@example.com");
    json_object_del(c, "email_verified");
    d = decide_on(s, dex(c), "a", "/");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_assert(is(d.subject, "eve@example.com"));
    cr_assert_eq(d.groups.len, 0, "no groups mapping: no groups");
    pol_snapshot_release(s);
}

Test(pol_federation, claim_validation_rules_values)
{
    /* required_value 1 (a number) against 1, 1.0, "1", true, absent. */
    pol_decision d = decide(kc(set(kc_claims("carol"), "acr", json_real(1.0))), "a", "/x");
    expect(&d, AUTHZ_REASON_OK, NULL);
    d = decide(kc(set(kc_claims("carol"), "acr", json_string("1"))), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim acr does not hold the required_value");
    d = decide(kc(set(kc_claims("carol"), "acr", json_true())), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim acr");
    json_t *c = kc_claims("carol");
    json_object_del(c, "acr");
    d = decide(kc(c), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim acr is absent");
    /* required_values: the client roles array must contain "use". */
    c = kc_claims("carol");
    json_object_set_new(json_object_get(c, "resource_access"), "tokengate",
                        json_pack("{s:[s]}", "roles", "view"));
    d = decide(kc(c), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim resource_access.tokengate.roles");
}

Test(pol_federation, provider_token_never_carries_kubernetes_io)
{
    json_t *c = dex_claims("alice@example.com");
    json_object_set_new(c, "kubernetes.io",
                        json_pack("{s:s,s:{s:s}}", "namespace", "ops", "serviceaccount", "name", "deployer"));
    pol_decision d = decide(dex(c), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim kubernetes.io");
    /* A service-account token signed with the provider's key and issuer is
     * the same token: never accepted through the provider. */
    json_t *sa = tg_k8s_claims(ISS_DEX, "tokengate", "ops", "deployer", now);
    d = decide(dex(sa), "b", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "claim kubernetes.io");
}

Test(pol_federation, keys_do_not_cross_between_providers_and_clusters)
{
    /* A provider-shaped token under a cluster's issuer and key: a cluster
     * token without kubernetes.io. */
    json_t *c = set(dex_claims("alice@example.com"), "iss", json_string(ISS_A));
    set(c, "aud", json_string("api"));
    pol_decision d = decide(sign(key_a, "ES256", "a1", c), "a", "/x");
    expect(&d, AUTHZ_REASON_MISSING_CLAIM, "kubernetes.io");
    cr_assert_null(d.provider);
    /* The provider's issuer with a cluster's key (and its kid): not verified. */
    d = decide(sign(key_a, "ES256", "a1", dex_claims("alice@example.com")), "a", "/x");
    expect(&d, AUTHZ_REASON_UNKNOWN_KEY, "for identity provider dex");
    /* A cluster's issuer with the provider's key: not verified either. */
    json_t *sa = tg_k8s_claims(ISS_A, "api", "ops", "deployer", now);
    d = decide(sign(key_dex, "RS256", "a1", sa), "a", "/x");
    expect(&d, AUTHZ_REASON_UNSUPPORTED_ALG, NULL);
    sa = tg_k8s_claims(ISS_A, "api", "ops", "deployer", now);
    d = decide(sign(key_dex, "RS256", "dex-1", sa), "a", "/x");
    expect(&d, AUTHZ_REASON_UNKNOWN_KEY, NULL);
}

Test(pol_federation, provider_claims_checked_like_a_clusters)
{
    pol_decision d = decide(dex(set(dex_claims("a@example.com"), "aud", json_string("other"))), "a", "/x");
    expect(&d, AUTHZ_REASON_AUDIENCE_MISMATCH, NULL);
    d = decide(dex(set(dex_claims("a@example.com"), "exp", json_integer((json_int_t)(now - 3600)))), "a",
               "/x");
    expect(&d, AUTHZ_REASON_EXPIRED, NULL);
    d = decide(dex(set(dex_claims("a@example.com"), "nbf", json_integer((json_int_t)(now + 3600)))), "a",
               "/x");
    expect(&d, AUTHZ_REASON_NOT_YET_VALID, NULL);
    d = decide(
        sign(key_dex, "RS256", "dex-1", set(dex_claims("a@example.com"), "iss", json_string(ISS_DEX "/"))),
        "a", "/x");
    expect(&d, AUTHZ_REASON_UNKNOWN_ISSUER, NULL);
}

Test(pol_federation, groups_claim_string_array_absent_null_and_bad)
{
    pol_decision d =
        decide(dex(set(dex_claims("a@example.com"), "groups", json_string("admins"))), "a", "/admin");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_assert(is(d.groups, "corp:admins"));
    json_t *c = dex_claims("a@example.com");
    json_object_del(c, "groups");
    d = decide(dex(c), "a", "/x");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_assert_eq(d.groups.len, 0);
    d = decide(dex(set(dex_claims("a@example.com"), "groups", json_null())), "a", "/x");
    expect(&d, AUTHZ_REASON_OK, NULL);
    d = decide(dex(set(dex_claims("a@example.com"), "groups", json_pack("[s]", "a,b"))), "a", "/x");
    expect(&d, AUTHZ_REASON_MALFORMED_TOKEN, "holds a comma");
    d = decide(dex(set(dex_claims("a@example.com"), "groups", json_pack("[s,i]", "a", 7))), "a", "/x");
    expect(&d, AUTHZ_REASON_MALFORMED_TOKEN, "not a string");
    d = decide(dex(set(dex_claims("a@example.com"), "groups", json_pack("{s:s}", "a", "b"))), "a", "/x");
    expect(&d, AUTHZ_REASON_MALFORMED_TOKEN, "neither a string nor an array");
    json_t *many = json_array();
    for (int i = 0; i < 257; i++)
        json_array_append_new(many, json_string("g"));
    d = decide(dex(set(dex_claims("a@example.com"), "groups", many)), "a", "/x");
    expect(&d, AUTHZ_REASON_MALFORMED_TOKEN, "257 groups");
    char long_group[300];
    memset(long_group, 'g', sizeof long_group - 1);
    long_group[sizeof long_group - 1] = '\0';
    d = decide(dex(set(dex_claims("a@example.com"), "groups", json_pack("[s]", long_group))), "a", "/x");
    expect(&d, AUTHZ_REASON_MALFORMED_TOKEN, "longer than 256 bytes");
    json_t *wide = json_array();
    for (int i = 0; i < 40; i++)
        json_array_append_new(wide, json_string(long_group + 200));
    d = decide(dex(set(dex_claims("a@example.com"), "groups", wide)), "a", "/x");
    expect(&d, AUTHZ_REASON_MALFORMED_TOKEN, "longer than 4096 bytes joined");
}

Test(pol_federation, username_claim_absent_or_not_a_string)
{
    json_t *c = dex_claims("a@example.com");
    json_object_del(c, "email");
    pol_decision d = decide(dex(c), "a", "/x");
    expect(&d, AUTHZ_REASON_MISSING_CLAIM, "username claim email");
    d = decide(dex(set(dex_claims("a@example.com"), "email", json_integer(5))), "a", "/x");
    expect(&d, AUTHZ_REASON_MALFORMED_TOKEN, "not a string");
    d = decide(kc(kc_claims("system:admin")), "a", "/x");
    expect(&d, AUTHZ_REASON_CLAIM_MISMATCH, "starts with system:");
}

Test(pol_federation, default_username_is_sub_prefixed_with_the_issuer)
{
    const char *text =
        "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api\"],"
        "\"jwks_file\":\"a.jwks\"}],\"identity_providers\":[{\"name\":\"dex\",\"issuer\":\"" ISS_DEX
        "\",\"audiences\":[\"tokengate\"],\"jwks_file\":\"dex.jwks\",\"clusters\":[\"a\"]}]}";
    pol_snapshot *s = load_text(text);
    cr_assert_not_null(s, "%s", err);
    pol_decision d = decide_on(s, dex(dex_claims("alice@example.com")), "a", "/");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_assert(is(d.subject, ISS_DEX "#CgVhbGljZRIGZ2l0aHVi"), "%.*s", (int)d.subject.len, d.subject.ptr);
    pol_snapshot_release(s);
}

/* Peer binding names workloads: a provider's token (a person's) is never
 * bound, even where the cluster requires a peer and none is presented. */
Test(pol_federation, provider_tokens_are_never_peer_bound)
{
    const char *text = "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api\"],"
                       "\"jwks_file\":\"a.jwks\",\"peer_binding\":{\"mode\":\"spiffe\",\"required\":true}}],"
                       "\"identity_providers\":[{\"name\":\"dex\",\"issuer\":\"" ISS_DEX
                       "\",\"audiences\":[\"tokengate\"],\"jwks_file\":\"dex.jwks\",\"clusters\":[\"a\"]}]}";
    pol_snapshot *s = load_text(text);
    cr_assert_not_null(s, "%s", err);
    pol_decision d = decide_on(s, dex(dex_claims("alice@example.com")), "a", "/");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_assert_eq(d.peer_result, POL_PEER_RESULT_NONE);
    pol_snapshot_release(s);
}

Test(pol_federation, rules_users_and_groups_by_kind)
{
    /* groups rule: admins in, dev out; a service account out (user-only rule). */
    pol_decision d = decide(dex(dex_claims("alice@example.com")), "a", "/admin/x");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_assert(is(d.rule->name, "admins"));
    d = decide(dex(set(dex_claims("bob@example.com"), "groups", json_pack("[s]", "dev"))), "a", "/admin/x");
    expect(&d, AUTHZ_REASON_FORBIDDEN, "rule admins does not allow user corp:bob@example.com");
    d = decide(sign(key_a, "ES256", "a1", tg_k8s_claims(ISS_A, "api", "ops", "deployer", now)), "a",
               "/admin/x");
    expect(&d, AUTHZ_REASON_FORBIDDEN, "rule admins");
    /* users rule: bob in, alice out. */
    d = decide(dex(set(dex_claims("bob@example.com"), "groups", json_array())), "a", "/bob");
    expect(&d, AUTHZ_REASON_OK, NULL);
    d = decide(dex(dex_claims("alice@example.com")), "a", "/bob");
    expect(&d, AUTHZ_REASON_FORBIDDEN, "rule bob-only");
    /* Both kinds: a service account of ops, or a user of admins. */
    d = decide(sign(key_a, "ES256", "a1", tg_k8s_claims(ISS_A, "api", "ops", "deployer", now)), "a", "/ops");
    expect(&d, AUTHZ_REASON_OK, NULL);
    d = decide(sign(key_a, "ES256", "a1", tg_k8s_claims(ISS_A, "api", "dev", "x", now)), "a", "/ops");
    expect(&d, AUTHZ_REASON_FORBIDDEN, NULL);
    d = decide(dex(dex_claims("alice@example.com")), "a", "/ops");
    expect(&d, AUTHZ_REASON_OK, NULL);
    d = decide(dex(set(dex_claims("bob@example.com"), "groups", json_pack("[s]", "dev"))), "a", "/ops");
    expect(&d, AUTHZ_REASON_FORBIDDEN, NULL);
    /* Neither kind: any valid token. */
    d = decide(sign(key_a, "ES256", "a1", tg_k8s_claims(ISS_A, "api", "dev", "x", now)), "a", "/y");
    expect(&d, AUTHZ_REASON_OK, NULL);
}

Test(pol_federation, dex_token_at_a_target_accepting_only_service_accounts)
{
    /* b trusts dex, but its only rule names namespaces: service accounts only. */
    pol_decision d = decide(dex(dex_claims("alice@example.com")), "b", "/x");
    expect(&d, AUTHZ_REASON_FORBIDDEN, "rule b-sa does not allow user corp:alice@example.com");
}

/* ---- config ----------------------------------------------------------------- */

#define CLUSTERS                                                                                             \
    "\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS_A                                                      \
    "\",\"audiences\":[\"api\"],\"jwks_file\":\"a.jwks\"}]"

/* A config with one provider whose members are |members| (after name). */
static void expect_provider_error(const char *members, const char *needle)
{
    char text[4096];
    snprintf(text, sizeof text, "{" CLUSTERS ",\"identity_providers\":[{\"name\":\"p\",%s}]}", members);
    pol_snapshot *s = load_text(text);
    cr_assert_null(s, "config loaded: %s", text);
    cr_assert(strstr(err, needle), "error:\n%s\nlacks: %s", err, needle);
    cr_assert(strstr(err, "config.json: "), "error names no file: %s", err);
}

#define P_OK                                                                                                 \
    "\"issuer\":\"" ISS_DEX "\",\"audiences\":[\"t\"],\"jwks_file\":\"dex.jwks\",\"clusters\":[\"a\"]"

Test(pol_federation, config_values)
{
    cr_assert_eq(snap->provider_count, 2);
    const pol_provider *p = &snap->providers[0];
    cr_assert(is(p->name, "dex") && is(p->issuer, ISS_DEX));
    cr_assert(is(p->username_claim, "email") && is(p->username_prefix, "corp:"));
    cr_assert(is(p->groups_claim, "groups") && is(p->groups_prefix, "corp:"));
    cr_assert_eq(p->keys.count, 1);
    cr_assert_eq(p->cluster_count, 2);
    cr_assert_eq(p->claim_rule_count, 1);
    cr_assert_eq(p->claim_rules[0].values[0].kind, POL_VALUE_BOOL);
    const pol_provider *k = &snap->providers[1];
    cr_assert(is(k->username_prefix, ""));
    cr_assert_eq(k->claim_rule_count, 3);
    cr_assert(k->claim_rules[0].one_of);
    cr_assert_eq(k->claim_rules[0].value_count, 2);
    cr_assert_eq(k->claim_rules[2].values[0].kind, POL_VALUE_NUMBER);
    cr_assert_eq(snap->key_count, 5, "three clusters' and two providers' keys");
    cr_assert_eq(snap->rules[0].group_count, 2);
    cr_assert_eq(snap->rules[1].user_count, 1);
}

Test(pol_federation, config_errors)
{
    expect_provider_error("\"issuer\":\"" ISS_A "\",\"audiences\":[\"t\"],\"jwks_file\":\"dex.jwks\","
                          "\"clusters\":[\"a\"]",
                          "identity_providers[0].issuer: is also the issuer of cluster a (clusters[0])");
    expect_provider_error(P_OK ",\"x\":1", "identity_providers[0].x: unknown key");
    expect_provider_error("\"issuer\":\"" ISS_DEX "\",\"audiences\":[\"t\"],\"jwks_file\":\"dex.jwks\","
                          "\"clusters\":[\"zz\"]",
                          "identity_providers[0].clusters[0]: names no configured cluster (\"zz\")");
    expect_provider_error("\"issuer\":\"" ISS_DEX "\",\"audiences\":[\"t\"],\"jwks_file\":\"dex.jwks\","
                          "\"clusters\":[]",
                          "identity_providers[0].clusters: must not be empty");
    expect_provider_error("\"issuer\":\"" ISS_DEX "\",\"audiences\":[\"t\"],\"jwks_file\":\"dex.jwks\"",
                          "identity_providers[0].clusters: is required");
    expect_provider_error("\"issuer\":\"" ISS_DEX "\",\"audiences\":[\"t\"],\"clusters\":[\"a\"]",
                          "identity_providers[0]: needs jwks_file, public_key_files, jwks_uri or discovery");
    expect_provider_error(P_OK ",\"claim_mappings\":{\"username\":{\"claim\":\"email\"}}",
                          "identity_providers[0].claim_mappings.username.prefix: is required");
    expect_provider_error(P_OK ",\"claim_mappings\":{\"groups\":{\"claim\":\"g\",\"prefix\":\"system:\"}}",
                          "claim_mappings.groups.prefix: must not start with \"system:\"");
    expect_provider_error(P_OK ",\"claim_mappings\":{\"groups\":{\"claim\":\"g\",\"prefix\":\"a,b:\"}}",
                          "claim_mappings.groups.prefix: may only contain printable ASCII without ','");
    expect_provider_error(P_OK ",\"claim_mappings\":{\"groups\":{\"claim\":\"g\",\"prefix\":7}}",
                          "claim_mappings.groups.prefix: must be a string");
    expect_provider_error(P_OK ",\"claim_mappings\":{\"groups\":{\"claim\":\"a..b\",\"prefix\":\"\"}}",
                          "claim_mappings.groups.claim: has an empty segment");
    expect_provider_error(
        P_OK ",\"claim_validation_rules\":[{\"claim\":\"x\"}]",
        "claim_validation_rules[0]: needs exactly one of required_value and required_values");
    expect_provider_error(P_OK ",\"claim_validation_rules\":[{\"claim\":\"x\",\"required_value\":1,"
                               "\"required_values\":[1]}]",
                          "needs exactly one of");
    expect_provider_error(
        P_OK ",\"claim_validation_rules\":[{\"claim\":\"x\",\"required_value\":{}}]",
        "claim_validation_rules[0].required_value: must be a string, a boolean or a number");
    expect_provider_error(P_OK
                          ",\"claim_validation_rules\":[{\"claim\":\"x\",\"required_values\":[\"a\",null]}]",
                          "claim_validation_rules[0].required_values[1]: must be a string");
    expect_provider_error(P_OK ",\"discovery\":true,\"jwks_uri\":\"https://dex.example.com/keys\"",
                          "identity_providers[0].jwks_uri: give jwks_uri or discovery, not both");
    expect_provider_error(P_OK ",\"refresh_seconds\":60",
                          "identity_providers[0].refresh_seconds: needs jwks_uri or discovery");
    expect_provider_error("\"issuer\":\"http://dex.example.com\",\"audiences\":[\"t\"],\"discovery\":true,"
                          "\"clusters\":[\"a\"]",
                          "identity_providers[0].issuer: discovery needs an https:// issuer");
}

/* |keys| as a fetched JWKS from URI_DEX. */
#define URI_DEX "https://dex.example.com/keys"
static pol_remote_keys *fetched(EVP_PKEY *key, const char *kid)
{
    tg_jwk_opts opts = {.kid = kid};
    char *jwks = tg_jwks(&key, &opts, 1);
    pol_remote_keys *rk =
        pol_remote_keys_new(jwks, strlen(jwks), authz_slice_from_cstr(URI_DEX), err, sizeof err);
    cr_assert(rk, "%s", err);
    free(jwks);
    return rk;
}

Test(pol_federation, provider_keys_by_discovery_are_fetched_keys)
{
    /* Clusters a, b, c as configured; dex by discovery alone. */
    char text[4096];
    snprintf(text, sizeof text,
             "{\"clusters\":["
             "{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api\"],\"jwks_file\":\"a.jwks\"}],"
             "\"identity_providers\":[{\"name\":\"dex\",\"issuer\":\"" ISS_DEX "\","
             "\"audiences\":[\"tokengate\"],\"discovery\":true,\"refresh_seconds\":600,"
             "\"claim_mappings\":{\"username\":{\"claim\":\"email\",\"prefix\":\"corp:\"}},"
             "\"clusters\":[\"a\"]}],\"rules\":[{\"name\":\"a\",\"clusters\":[\"a\"]}]}");
    pol_snapshot *base = load_text(text);
    cr_assert_not_null(base, "%s", err);
    const pol_provider *p = &base->providers[0];
    cr_assert(p->remote && p->source.discovery && p->source.refresh_seconds == 600);
    cr_assert_eq(pol_provider_key_count(p), 0);
    /* No keys yet: unknown_key, and the fetcher is asked for the issuer. */
    pol_decision d = decide_on(base, dex(dex_claims("alice@example.com")), "a", "/x");
    expect(&d, AUTHZ_REASON_UNKNOWN_KEY, "for identity provider dex");
    cr_assert(is(d.kid_miss_issuer, ISS_DEX), "a provider kid miss names its issuer");

    pol_remote_keys *rk = fetched(key_dex, "dex-1");
    pol_remote_keys *remote[2] = {NULL, rk}; /* cluster a, then provider dex */
    pol_snapshot *s = pol_snapshot_with_remote_keys(base, remote, err, sizeof err);
    pol_remote_keys_release(rk);
    cr_assert_not_null(s);
    cr_expect_eq(err[0], '\0', "%s", err);
    cr_assert_eq(pol_provider_key_count(&s->providers[0]), 1);
    cr_expect_eq(s->key_count, 2, "a's file key and dex's fetched key");
    cr_expect_gt(s->generation, base->generation);
    d = decide_on(s, dex(dex_claims("alice@example.com")), "a", "/x");
    expect(&d, AUTHZ_REASON_OK, NULL);
    cr_expect(is(d.username, "corp:alice@example.com"));
    pol_snapshot_release(s);

    /* One key, one owner: a fetched set holding cluster a's key stays out. */
    rk = fetched(key_a, "not-a1");
    remote[1] = rk;
    s = pol_snapshot_with_remote_keys(base, remote, err, sizeof err);
    pol_remote_keys_release(rk);
    cr_assert_not_null(s);
    cr_expect(strstr(err, "identity provider dex: fetched key kid not-a1") && strstr(err, "cluster a"), "%s",
              err);
    cr_expect_eq(pol_provider_key_count(&s->providers[0]), 0);
    pol_snapshot_release(s);
    pol_snapshot_release(base);
}

Test(pol_federation, duplicate_providers_and_rule_values)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{" CLUSTERS ",\"identity_providers\":[{\"name\":\"p\"," P_OK
             "},{\"name\":\"p\",\"issuer\":\"" ISS_DEX
             "\",\"audiences\":[\"t\"],\"public_key_files\":[\"kc.pem\"],\"clusters\":[\"a\"]}]}");
    cr_assert_null(load_text(text));
    cr_assert(strstr(err, "identity_providers[1].issuer: duplicates the issuer of identity_providers[0]"),
              "%s", err);
    cr_assert(strstr(err, "identity_providers[1].name: duplicates the name of identity_providers[0]"), "%s",
              err);
    snprintf(text, sizeof text, "{" CLUSTERS ",\"rules\":[{\"name\":\"r\",\"groups\":[\"a,b\"]}]}");
    cr_assert_null(load_text(text));
    cr_assert(strstr(err, "rules[0].groups[0]: may only contain printable ASCII without ','"), "%s", err);
}

Test(pol_federation, key_shared_by_a_provider_and_a_cluster_is_refused)
{
    /* The cluster's key given to the provider too, as a PEM with another kid. */
    cr_assert_eq(tg_testdir_write_pem(&dir, "a.pem", key_a), 0);
    char text[4096];
    snprintf(text, sizeof text,
             "{" CLUSTERS ",\"identity_providers\":[{\"name\":\"p\",\"issuer\":\"" ISS_DEX
             "\",\"audiences\":[\"t\"],\"public_key_files\":[\"a.pem\"],\"clusters\":[\"a\"]}]}");
    cr_assert_null(load_text(text));
    cr_assert(strstr(err, "identity_providers[0].public_key_files[0]: key kid"), "%s", err);
    cr_assert(strstr(err, "is also a key of cluster a, from clusters[0].jwks_file"), "%s", err);
    cr_assert(strstr(err, "a key may belong to one cluster or identity provider only"), "%s", err);
    /* Two providers sharing one key. */
    snprintf(text, sizeof text,
             "{" CLUSTERS ",\"identity_providers\":[{\"name\":\"p\"," P_OK
             "},{\"name\":\"q\",\"issuer\":\"https://q\","
             "\"audiences\":[\"t\"],\"jwks_file\":\"dex.jwks\",\"clusters\":[\"a\"]}]}");
    cr_assert_null(load_text(text));
    cr_assert(strstr(err, "identity_providers[1].jwks_file: key kid dex-1"), "%s", err);
    cr_assert(strstr(err, "is also a key of identity provider p"), "%s", err);
}
