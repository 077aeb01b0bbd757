/* Configuration that fits real gateways (issue 17): wildcard hosts, rule
 * header conditions with their ambiguity rule, claim_to_headers; each
 * through the loader and through pol_decide. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_arena.h"
#include "pol_config.h"
#include "pol_decide.h"
#include "pol_lint.h"
#include "pol_target.h"
#include "tg_testdir.h"
#include "tg_testkeys.h"
#include "tg_testtoken.h"

#define ISS_A "https://a.example"
#define ISS_B "https://b.example"

static tg_testdir dir;
static EVP_PKEY *key_a, *key_b;
static authz_arena arena;
static int64_t now;
static char err[8192];

static void setup(void)
{
    cr_assert_eq(tg_testdir_make(&dir, "tg-gateway"), 0);
    now = (int64_t)time(NULL);
    key_a = tg_keygen("p256");
    key_b = tg_keygen("p256");
    cr_assert(key_a && key_b);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "a.jwks", key_a, "a1"), 0);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "b.jwks", key_b, "b1"), 0);
    authz_arena_init(&arena, NULL, 0, 64 * 1024);
}

static void teardown(void)
{
    authz_arena_free(&arena);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    cr_assert_eq(tg_testdir_remove(&dir), 0);
}

TestSuite(gw_hosts, .init = setup, .fini = teardown);
TestSuite(gw_headers, .init = setup, .fini = teardown);
TestSuite(gw_claims, .init = setup, .fini = teardown);

/* Loads |json|; NULL with |err| set when it does not load. */
static pol_snapshot *load(const char *json)
{
    char path[512];
    cr_assert_eq(tg_testdir_write(&dir, "config.json", json), 0);
    cr_assert_eq(tg_testdir_path(&dir, "config.json", path, sizeof path), 0);
    pol_snapshot *snap = NULL;
    err[0] = '\0';
    pol_config_load(path, &snap, err, sizeof err);
    return snap;
}

static void expect_error(const char *json, const char *needle)
{
    pol_snapshot *snap = load(json);
    cr_assert_null(snap, "config unexpectedly loaded: %s", json);
    cr_expect(strstr(err, needle), "error %s\nlacks %s", err, needle);
}

#define CLUSTER(name, iss, jwks, extra)                                                                      \
    "{\"name\":\"" name "\",\"issuer\":\"" iss "\",\"audiences\":[\"api\"],\"jwks_file\":\"" jwks "\"" extra \
    "}"

/* ---- wildcard hosts ------------------------------------------------------- */

#define EAST_HOSTS ",\"hosts\":[\"*.east.example\",\"api.west.example\",\"*.api.west.example\"]"
#define WEST_HOSTS ",\"hosts\":[\"*.west.example\",\"*.api.east.example\",\"exact.east.example\"]"
static const char hosts_config[] = "{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", EAST_HOSTS) "," CLUSTER(
    "west", ISS_B, "b.jwks", WEST_HOSTS) "]}";

/* The cluster |authority| routes to, or "" for none. */
static const char *routed(const pol_snapshot *snap, const char *authority)
{
    authz_status status;
    const pol_cluster *c =
        pol_target_find(snap, (authz_slice){NULL, 0}, authz_slice_from_cstr(authority), &status);
    if (!c) {
        cr_expect_eq(status.reason, AUTHZ_REASON_UNKNOWN_CLUSTER);
        return "";
    }
    return c->name.ptr;
}

Test(gw_hosts, wildcard_matches_one_or_more_labels)
{
    pol_snapshot *snap = load(hosts_config);
    cr_assert_not_null(snap, "%s", err);
    cr_expect_str_eq(routed(snap, "a.east.example"), "east");
    cr_expect_str_eq(routed(snap, "a.b.east.example"), "east");
    cr_expect_str_eq(routed(snap, "A.EAST.Example:8443"), "east", "case-insensitive, port stripped");
    cr_expect_str_eq(routed(snap, "east.example"), "", "the apex is not under the wildcard");
    cr_expect_str_eq(routed(snap, "xeast.example"), "", "a suffix must start at a label");
    cr_expect_str_eq(routed(snap, "a.east.example."), "", "a trailing dot matches nothing");
    cr_expect_str_eq(routed(snap, ".east.example"), "", "an empty first label matches nothing");
    cr_expect_str_eq(routed(snap, "a.east.example.evil"), "");
    pol_snapshot_release(snap);
}

Test(gw_hosts, exact_beats_wildcard_and_longest_suffix_wins)
{
    pol_snapshot *snap = load(hosts_config);
    cr_assert_not_null(snap, "%s", err);
    cr_expect_str_eq(routed(snap, "api.west.example"), "east", "the exact entry beats *.west.example");
    cr_expect_str_eq(routed(snap, "x.west.example"), "west");
    cr_expect_str_eq(routed(snap, "v1.api.west.example"), "east",
                     "*.api.west.example, listed first, beats the shorter *.west.example");
    cr_expect_str_eq(routed(snap, "v1.api.east.example"), "west", "*.api.east.example beats *.east.example");
    cr_expect_str_eq(routed(snap, "api.east.example"), "east", "*.api.east.example needs one more label");
    cr_expect_str_eq(routed(snap, "Exact.East.Example"), "west",
                     "an exact entry wins over a wildcard listed before it");
    pol_snapshot_release(snap);
}

Test(gw_hosts, conflicts_and_bad_wildcards_are_errors)
{
    expect_error("{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", ",\"hosts\":[\"*.example\"]") "," CLUSTER(
                     "west", ISS_B, "b.jwks", ",\"hosts\":[\"*.EXAMPLE\"]") "]}",
                 "clusters[1].hosts[0]: host of cluster west already belongs to cluster east (clusters[0]) "
                 "(\"*.example\")");
    expect_error("{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", ",\"hosts\":[\"a.example\"]") "," CLUSTER(
                     "west", ISS_B, "b.jwks", ",\"hosts\":[\"A.example\"]") "]}",
                 "host of cluster west already belongs to cluster east");
    expect_error("{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", ",\"hosts\":[\"a.*.example\"]") "]}",
                 "clusters[0].hosts[0]: is not a valid host name (a wildcard is one leading \"*.\" label)");
    expect_error("{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", ",\"hosts\":[\"*.*.example\"]") "]}",
                 "is not a valid wildcard host");
    expect_error("{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", ",\"hosts\":[\"*example.com\"]") "]}",
                 "is not a valid host name");
    expect_error("{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", ",\"hosts\":[\"*\"]") "]}",
                 "is not a valid host name");
    expect_error("{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", ",\"hosts\":[\"*.example.\"]") "]}",
                 "is not a valid wildcard host");
    expect_error("{\"clusters\":[" CLUSTER("east", ISS_A, "a.jwks", ",\"hosts\":[\"*.example:80\"]") "]}",
                 "must not carry a port");
}

/* ---- decisions ------------------------------------------------------------ */

/* A request to cluster a (ns:sa token, |claims_json| merged into the
 * claims when not NULL) with the given condition header values. */
typedef struct call {
    const char *path;
    const char *ns;
    const pol_header_value *headers;
    const char *claims_json;
} call;

static pol_decision decide(const pol_snapshot *snap, call c)
{
    json_t *claims = tg_k8s_claims(ISS_A, "api", c.ns ? c.ns : "shop", "web", now);
    cr_assert_not_null(claims);
    if (c.claims_json) {
        json_error_t error;
        json_t *extra = json_loads(c.claims_json, 0, &error);
        cr_assert_not_null(extra, "%s", error.text);
        cr_assert_eq(json_object_update(claims, extra), 0);
        json_decref(extra);
    }
    char *token = tg_jws_claims(key_a, "ES256", "a1", claims);
    cr_assert_not_null(token);
    json_decref(claims);
    char authorization[8192];
    snprintf(authorization, sizeof authorization, "Bearer %s", token);
    pol_request req = {
        .authorization = authz_slice_from_cstr(authorization),
        .cluster = AUTHZ_SLICE_LIT("a"),
        .source = AUTHZ_SLICE_LIT("10.1.2.3"),
        .method = AUTHZ_SLICE_LIT("GET"),
        .path = authz_slice_from_cstr(c.path ? c.path : "/"),
        .condition_headers = c.headers,
        .now = now,
    };
    pol_decide_ctx ctx = {.arena = &arena};
    pol_decision d;
    authz_arena_reset(&arena);
    pol_decide(snap, &req, &ctx, &d);
    free(token);
    return d;
}

/* ---- header conditions ---------------------------------------------------- */

/* Rules: v2-tenant (x-api-version v2 or v3 and any x-tenant: namespace ops
 * only), then open (everyone). */
static const char headers_config[] = "{\"clusters\":[" CLUSTER(
    "a", ISS_A, "a.jwks",
    "") "],\"rules\":["
        "{\"name\":\"v2-tenant\",\"headers\":{\"X-Api-Version\":[\"v2\",\"v3\"],\"x-tenant\":[\"*\"]},"
        "\"namespaces\":[\"ops\"]},"
        "{\"name\":\"open\"}]}";

static const pol_snapshot *headers_snap(void)
{
    static pol_snapshot *snap;
    snap = load(headers_config);
    cr_assert_not_null(snap, "%s", err);
    cr_assert_eq(snap->condition_header_count, 2);
    cr_assert(authz_slice_eq_cstr(snap->condition_headers[0], "x-api-version"), "names are lower-cased");
    cr_assert(authz_slice_eq_cstr(snap->condition_headers[1], "x-tenant"));
    return snap;
}

#define HV(n, v)                                                                                             \
    {                                                                                                        \
        n, AUTHZ_SLICE_LIT(v)                                                                                \
    }

Test(gw_headers, conditions_select_the_rule)
{
    const pol_snapshot *snap = headers_snap();
    pol_header_value both[] = {HV(1, "v3"), HV(1, "acme")};
    pol_decision d = decide(snap, (call){.headers = both});
    cr_expect_eq(d.status.reason, AUTHZ_REASON_FORBIDDEN, "%s", d.status.message);
    cr_expect(d.rule && authz_slice_eq_cstr(d.rule->name, "v2-tenant"));
    d = decide(snap, (call){.headers = both, .ns = "ops"});
    cr_expect(d.allowed, "%s", d.status.message);

    pol_header_value other_version[] = {HV(1, "v1"), HV(1, "acme")};
    d = decide(snap, (call){.headers = other_version});
    cr_expect(d.allowed && authz_slice_eq_cstr(d.rule->name, "open"), "values are compared exactly");
    pol_header_value case_differs[] = {HV(1, "V2"), HV(1, "acme")};
    d = decide(snap, (call){.headers = case_differs});
    cr_expect(d.allowed && authz_slice_eq_cstr(d.rule->name, "open"), "values are case-sensitive");
    pol_header_value no_tenant[] = {HV(1, "v2"), HV(0, "")};
    d = decide(snap, (call){.headers = no_tenant});
    cr_expect(d.allowed && authz_slice_eq_cstr(d.rule->name, "open"), "\"*\" needs the header present");
    pol_header_value empty_tenant[] = {HV(1, "v2"), HV(1, "")};
    d = decide(snap, (call){.headers = empty_tenant});
    cr_expect_eq(d.status.reason, AUTHZ_REASON_FORBIDDEN, "\"*\": present with any value, empty too");
    d = decide(snap, (call){.headers = NULL});
    cr_expect(d.allowed && authz_slice_eq_cstr(d.rule->name, "open"), "no headers: conditions fail");
    pol_snapshot_release((pol_snapshot *)snap);
}

Test(gw_headers, repeated_condition_header_is_malformed_request)
{
    const pol_snapshot *snap = headers_snap();
    pol_header_value twice[] = {HV(2, "v1"), HV(1, "acme")};
    pol_decision d = decide(snap, (call){.headers = twice});
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST, "%s", d.status.message);
    cr_expect(strstr(d.status.message, "x-api-version"), "%s", d.status.message);
    pol_header_value joined[] = {HV(1, "v1"), HV(1, "acme,other")};
    d = decide(snap, (call){.headers = joined});
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST, "a comma-joined value is two values");
    /* Even when the repeated header is one no rule would get to. */
    pol_header_value tenant_twice[] = {HV(0, ""), HV(3, "x")};
    d = decide(snap, (call){.headers = tenant_twice});
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST);
    pol_snapshot_release((pol_snapshot *)snap);
}

Test(gw_headers, config_errors)
{
#define RULES(r) "{\"clusters\":[" CLUSTER("a", ISS_A, "a.jwks", "") "],\"rules\":[" r "]}"
    expect_error(RULES("{\"name\":\"r\",\"headers\":{}}"), "rules[0].headers: must not be empty");
    expect_error(RULES("{\"name\":\"r\",\"headers\":[]}"), "rules[0].headers: must be an object");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\"x-a\":[]}}"),
                 "rules[0].headers.x-a: must not be empty");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\"x-a\":\"v\"}}"),
                 "rules[0].headers.x-a: must be an array");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\"x a\":[\"v\"]}}"),
                 "rules[0].headers.x a: header name is not an HTTP header name");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\":path\":[\"v\"]}}"), "is a pseudo-header");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\"x-a\":[\"v1,v2\"]}}"),
                 "rules[0].headers.x-a[0]: contains a comma");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\"x-a\":[\"v\\u0001\"]}}"),
                 "contains a control character");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\"x-a\":[\"*\",\"v\"]}}"),
                 "rules[0].headers.x-a: \"*\" (any value) must be the only value");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\"x-a\":[\"v\"],\"X-A\":[\"w\"]}}"),
                 "names the same header as another key");
    expect_error(RULES("{\"name\":\"r\",\"headers\":{\"x-a\":[1]}}"),
                 "rules[0].headers.x-a[0]: must be a string");
#undef RULES
}

Test(gw_headers, lint_covers_with_headers)
{
    pol_snapshot *snap = load("{\"clusters\":[" CLUSTER(
        "a", ISS_A, "a.jwks", "") "],\"rules\":["
                                  "{\"name\":\"any-tenant\",\"headers\":{\"x-tenant\":[\"*\"]}},"
                                  "{\"name\":\"acme\",\"headers\":{\"x-tenant\":[\"acme\"],\"x-v\":[\"1\"]}},"
                                  "{\"name\":\"v1\",\"headers\":{\"x-v\":[\"1\",\"2\"]}},"
                                  "{\"name\":\"v1-only\",\"headers\":{\"x-v\":[\"1\"]}},"
                                  "{\"name\":\"v3\",\"headers\":{\"x-v\":[\"3\"]}}]}");
    cr_assert_not_null(snap, "%s", err);
    const pol_rule *r = snap->rules;
    cr_expect(pol_rule_covers(&r[0], &r[1]), "* covers a value of the same header");
    cr_expect(!pol_rule_covers(&r[1], &r[0]), "a value does not cover *");
    cr_expect(pol_rule_covers(&r[2], &r[3]), "a superset of values covers a subset");
    cr_expect(!pol_rule_covers(&r[3], &r[2]));
    cr_expect(!pol_rule_covers(&r[2], &r[4]), "disjoint values");
    cr_expect(!pol_rule_covers(&r[0], &r[2]), "a condition the later rule lacks");
    pol_snapshot_release(snap);
}

/* ---- claim_to_headers ----------------------------------------------------- */

static const char claims_config[] =
    "{\"clusters\":[" CLUSTER("a", ISS_A, "a.jwks",
                              ",\"claim_to_headers\":["
                              "{\"claim\":\"kubernetes.io.pod.name\",\"header\":\"X-Pod-Name\"},"
                              "{\"claim\":\"realm_access.roles\",\"header\":\"x-roles\"},"
                              "{\"claim\":\"level\",\"header\":\"x-level\"},"
                              "{\"claim\":\"ratio\",\"header\":\"x-ratio\"},"
                              "{\"claim\":\"admin\",\"header\":\"x-admin\"},"
                              "{\"claim\":\"missing.deep\",\"header\":\"x-missing\"}]") "]}";

static const pol_claim_value *claim(const pol_decision *d, const char *header)
{
    for (size_t i = 0; i < d->claim_header_count; i++) {
        if (authz_slice_eq_cstr(d->claim_headers[i].header, header))
            return &d->claim_headers[i];
    }
    return NULL;
}

static void expect_value(const pol_decision *d, const char *header, const char *value)
{
    const pol_claim_value *cv = claim(d, header);
    cr_assert_not_null(cv, "no entry for %s", header);
    if (!value) {
        cr_expect(!cv->present, "%s should be removed", header);
        return;
    }
    cr_expect(cv->present, "%s absent", header);
    cr_expect(authz_slice_eq_cstr(cv->value, value), "%s: %.*s, wanted %s", header, (int)cv->value.len,
              cv->value.ptr, value);
}

Test(gw_claims, values_by_type)
{
    pol_snapshot *snap = load(claims_config);
    cr_assert_not_null(snap, "%s", err);
    pol_decision d =
        decide(snap, (call){.claims_json = "{\"kubernetes.io\":{\"namespace\":\"shop\","
                                           "\"serviceaccount\":{\"name\":\"web\",\"uid\":\"u\"},"
                                           "\"pod\":{\"name\":\"web-7f9\",\"uid\":\"p\"}},"
                                           "\"realm_access\":{\"roles\":[\"admin\",\"ops\",7,true]},"
                                           "\"level\":42,\"ratio\":0.1,\"admin\":false}"});
    cr_assert(d.allowed, "%s", d.status.message);
    cr_expect_eq(d.claim_header_count, 6);
    expect_value(&d, "x-pod-name", "web-7f9");
    expect_value(&d, "x-roles", "admin,ops,7,true");
    expect_value(&d, "x-level", "42");
    expect_value(&d, "x-ratio", "0.1");
    expect_value(&d, "x-admin", "false");
    expect_value(&d, "x-missing", NULL);
    pol_snapshot_release(snap);
}

Test(gw_claims, absent_null_and_empty_are_removed)
{
    pol_snapshot *snap = load(claims_config);
    cr_assert_not_null(snap, "%s", err);
    pol_decision d = decide(
        snap, (call){.claims_json =
                         "{\"kubernetes.io\":{\"namespace\":\"shop\",\"serviceaccount\":{\"name\":\"web\"}},"
                         "\"realm_access\":{\"roles\":[]},\"level\":null,"
                         "\"missing\":\"flat\"}"});
    cr_assert(d.allowed, "%s", d.status.message);
    expect_value(&d, "x-pod-name", NULL);
    expect_value(&d, "x-roles", NULL);
    expect_value(&d, "x-level", NULL);
    expect_value(&d, "x-missing", NULL);
    pol_snapshot_release(snap);
}

Test(gw_claims, unrepresentable_claims_deny)
{
    pol_snapshot *snap = load(claims_config);
    cr_assert_not_null(snap, "%s", err);
    static const char *const bad[] = {
        "{\"level\":\"a\\nx-injected: 1\"}",
        "{\"level\":\"tab\\there\"}",
        "{\"level\":{\"nested\":1}}",
        "{\"realm_access\":{\"roles\":[[\"nested\"]]}}",
        "{\"realm_access\":{\"roles\":[\"a\",null]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pol_decision d = decide(snap, (call){.claims_json = bad[i]});
        cr_expect(!d.allowed, "%s allowed", bad[i]);
        cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_TOKEN, "%s: %s", bad[i], d.status.message);
        cr_expect_eq(d.claim_header_count, 0);
    }
    pol_snapshot_release(snap);
}

Test(gw_claims, length_bound)
{
    pol_snapshot *snap = load(claims_config);
    cr_assert_not_null(snap, "%s", err);
    char json[POL_CLAIM_VALUE_MAX_BYTES + 64];
    memset(json, 'x', sizeof json);
    memcpy(json, "{\"level\":\"", 10);
    memcpy(json + 10 + POL_CLAIM_VALUE_MAX_BYTES, "\"}", 3);
    pol_decision d = decide(snap, (call){.claims_json = json});
    cr_expect(d.allowed, "exactly the bound: %s", d.status.message);
    memcpy(json + 10 + POL_CLAIM_VALUE_MAX_BYTES, "x\"}", 4);
    d = decide(snap, (call){.claims_json = json});
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_TOKEN, "one byte over: %s", d.status.message);
    pol_snapshot_release(snap);
}

Test(gw_claims, config_errors)
{
#define CTH(list) "{\"clusters\":[" CLUSTER("a", ISS_A, "a.jwks", ",\"claim_to_headers\":[" list "]") "]}"
    expect_error(CTH(""), "clusters[0].claim_to_headers: must not be empty");
    expect_error(CTH("{\"claim\":\"sub\"}"), "clusters[0].claim_to_headers[0].header: is required");
    expect_error(CTH("{\"header\":\"x-sub\"}"), "clusters[0].claim_to_headers[0].claim: is required");
    expect_error(CTH("{\"claim\":\"sub\",\"header\":\"x-sub\",\"required\":true}"),
                 "clusters[0].claim_to_headers[0].required: unknown key");
    expect_error(CTH("{\"claim\":\"a..b\",\"header\":\"x-sub\"}"), "has an empty segment");
    expect_error(CTH("{\"claim\":\".a\",\"header\":\"x-sub\"}"), "must not start or end with '.'");
    expect_error(CTH("{\"claim\":\"sub\",\"header\":\"Authorization\"}"),
                 "is a header tokengate sets or removes itself");
    expect_error(CTH("{\"claim\":\"sub\",\"header\":\"x-tokengate-subject\"}"),
                 "is a header tokengate sets or removes itself");
    expect_error(CTH("{\"claim\":\"sub\",\"header\":\"x sub\"}"), "is not an HTTP header name");
    expect_error(CTH("{\"claim\":\"sub\",\"header\":\"x-sub\"},{\"claim\":\"iss\",\"header\":\"X-Sub\"}"),
                 "clusters[0].claim_to_headers[1].header: duplicates the header of "
                 "clusters[0].claim_to_headers[0]");
#undef CTH
}
