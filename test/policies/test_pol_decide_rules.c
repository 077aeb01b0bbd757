/* pol_decide with rules that overlap, and with IPv6 sources through the
 * whole decision.
 *
 * Overlap: in each field a rule can select on (clusters, path prefix,
 * methods) an earlier rule and a later one both match; the earlier decides,
 * whether it allows or denies, and the later one is never consulted.
 * IPv6: cluster source CIDRs, a rule's source CIDRs and a token's bound CIDRs,
 * with prefixes on and off byte boundaries, written in several forms. */
#include <criterion/criterion.h>
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
#define ISS_B "https://b.example"
#define ISS_C "https://c.example"

static tg_testdir dir;
static EVP_PKEY *key_a, *key_b, *key_c;
static pol_snapshot *snap;
static authz_arena arena;
static int64_t now;

/* a: IPv4 and a /48 IPv6 network; b: IPv6 only, a /52 (off a byte
 * boundary); c: any source.
 * Rules, in order, pairwise overlapping:
 *   methods:  a-admin-post (POST /admin, ops) before a-admin (/admin, ops or dev)
 *   prefix:   a-api-v1 (/api/v1, shop:web only) before a-api (/api, anyone)
 *   clusters: b-payments (b, payments) before ab (a and b, anyone)
 *   sources:  c-net (c /net from fd00:c:1::/64 or 192.168.7.0/24) before c (c, anyone) */
static const char config[] =
    "{\"clusters\":["
    "{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api\"],\"jwks_file\":\"a.jwks\","
    "\"source_cidrs\":[\"10.0.0.0/8\",\"fd00:a::/48\"]},"
    "{\"name\":\"b\",\"issuer\":\"" ISS_B "\",\"audiences\":[\"api\"],\"jwks_file\":\"b.jwks\","
    "\"source_cidrs\":[\"fd00:b:0:1000::/52\"]},"
    "{\"name\":\"c\",\"issuer\":\"" ISS_C "\",\"audiences\":[\"api\"],\"jwks_file\":\"c.jwks\"}],"
    "\"rules\":["
    "{\"name\":\"a-admin-post\",\"clusters\":[\"a\"],\"path_prefix\":\"/admin\",\"methods\":[\"POST\"],"
    "\"namespaces\":[\"ops\"]},"
    "{\"name\":\"a-admin\",\"clusters\":[\"a\"],\"path_prefix\":\"/admin\",\"namespaces\":[\"ops\",\"dev\"]},"
    "{\"name\":\"a-api-v1\",\"clusters\":[\"a\"],\"path_prefix\":\"/api/"
    "v1\",\"service_accounts\":[\"shop:web\"]},"
    "{\"name\":\"a-api\",\"clusters\":[\"a\"],\"path_prefix\":\"/api\"},"
    "{\"name\":\"b-payments\",\"clusters\":[\"b\"],\"namespaces\":[\"payments\"]},"
    "{\"name\":\"ab\",\"clusters\":[\"a\",\"b\"]},"
    "{\"name\":\"c-net\",\"clusters\":[\"c\"],\"path_prefix\":\"/net\","
    "\"source_cidrs\":[\"fd00:c:1::/64\",\"192.168.7.0/24\"]},"
    "{\"name\":\"c\",\"clusters\":[\"c\"]}]}";

static void setup(void)
{
    cr_assert_eq(tg_testdir_make(&dir, "tg-rules"), 0);
    now = (int64_t)time(NULL);
    key_a = tg_keygen("p256");
    key_b = tg_keygen("p256");
    key_c = tg_keygen("p256");
    cr_assert(key_a && key_b && key_c);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "a.jwks", key_a, "a1"), 0);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "b.jwks", key_b, "b1"), 0);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "c.jwks", key_c, "c1"), 0);
    cr_assert_eq(tg_testdir_write(&dir, "config.json", config), 0);
    char path[512], err[4096];
    cr_assert_eq(tg_testdir_path(&dir, "config.json", path, sizeof path), 0);
    cr_assert_eq(pol_config_load(path, &snap, err, sizeof err), 0, "%s", err);
    authz_arena_init(&arena, NULL, 0, 64 * 1024);
}

static void teardown(void)
{
    authz_arena_free(&arena);
    pol_snapshot_release(snap);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    EVP_PKEY_free(key_c);
    cr_assert_eq(tg_testdir_remove(&dir), 0);
}

TestSuite(pol_rules, .init = setup, .fini = teardown);
TestSuite(pol_ipv6, .init = setup, .fini = teardown);

/* A request to |cluster| from |source| for |method| |path|, carrying a
 * token of that cluster for ns:sa; |bound| (or NULL) is its boundCIDRs
 * claim, a JSON array. */
typedef struct call {
    const char *cluster, *method, *path, *source;
    const char *ns, *sa;
    const char *bound;
} call;

static pol_decision decide(call c)
{
    EVP_PKEY *key = c.cluster[0] == 'a' ? key_a : c.cluster[0] == 'b' ? key_b : key_c;
    const char *iss = c.cluster[0] == 'a' ? ISS_A : c.cluster[0] == 'b' ? ISS_B : ISS_C;
    const char *kid = c.cluster[0] == 'a' ? "a1" : c.cluster[0] == 'b' ? "b1" : "c1";
    json_t *claims = tg_k8s_claims(iss, "api", c.ns ? c.ns : "default", c.sa ? c.sa : "app", now);
    cr_assert_not_null(claims);
    if (c.bound) {
        json_error_t error;
        json_t *bound = json_loads(c.bound, 0, &error);
        cr_assert_not_null(bound, "%s", error.text);
        cr_assert_eq(json_object_set_new(claims, "boundCIDRs", bound), 0);
    }
    char *token = tg_jws_claims(key, "ES256", kid, claims);
    cr_assert_not_null(token);
    json_decref(claims);
    char authorization[4096];
    snprintf(authorization, sizeof authorization, "Bearer %s", token);
    pol_request req = {
        .authorization = authz_slice_from_cstr(authorization),
        .cluster = authz_slice_from_cstr(c.cluster),
        .source = authz_slice_from_cstr(c.source),
        .method = authz_slice_from_cstr(c.method ? c.method : "GET"),
        .path = authz_slice_from_cstr(c.path ? c.path : "/"),
        .now = now,
    };
    pol_decide_ctx ctx = {.arena = &arena};
    pol_decision d;
    authz_arena_reset(&arena);
    pol_decide(snap, &req, &ctx, &d);
    free(token);
    return d;
}

/* The decision is |reason| and was taken by rule |rule| (NULL: by none). */
static void expect(call c, authz_reason reason, const char *rule)
{
    pol_decision d = decide(c);
    char what[256];
    snprintf(what, sizeof what, "cluster %s %s %s from %s as %s:%s", c.cluster, c.method ? c.method : "GET",
             c.path ? c.path : "/", c.source ? c.source : "(none)", c.ns ? c.ns : "default",
             c.sa ? c.sa : "app");
    cr_expect_eq(d.status.reason, reason, "%s: %s (%s), wanted %s", what, authz_reason_name(d.status.reason),
                 d.status.message, authz_reason_name(reason));
    cr_expect_eq(d.allowed, reason == AUTHZ_REASON_OK, "%s", what);
    if (rule) {
        cr_expect(d.rule && authz_slice_eq_cstr(d.rule->name, rule), "%s: decided by rule %.*s, wanted %s",
                  what, d.rule ? (int)d.rule->name.len : 6, d.rule ? d.rule->name.ptr : "(none)", rule);
    } else {
        cr_expect_null(d.rule, "%s: a rule decided", what);
    }
}

/* ---- overlapping rules: the first match decides --------------------------- */

Test(pol_rules, methods_overlap_first_decides)
{
    /* POST /admin: a-admin-post decides; dev is refused though a-admin lists it. */
    expect((call){"a", "POST", "/admin/users", "10.1.1.1", "ops", "x", NULL}, AUTHZ_REASON_OK,
           "a-admin-post");
    expect((call){"a", "POST", "/admin/users", "10.1.1.1", "dev", "x", NULL}, AUTHZ_REASON_FORBIDDEN,
           "a-admin-post");
    /* Another method skips it: a-admin decides and admits dev. */
    expect((call){"a", "GET", "/admin/users", "10.1.1.1", "dev", "x", NULL}, AUTHZ_REASON_OK, "a-admin");
    expect((call){"a", "DELETE", "/admin", "10.1.1.1", "shop", "web", NULL}, AUTHZ_REASON_FORBIDDEN,
           "a-admin");
}

Test(pol_rules, path_prefixes_overlap_first_decides)
{
    /* /api/v1 matches a-api-v1 and a-api: only shop:web gets in, though a-api admits anyone. */
    expect((call){"a", "GET", "/api/v1/pods", "10.1.1.1", "shop", "web", NULL}, AUTHZ_REASON_OK, "a-api-v1");
    expect((call){"a", "GET", "/api/v1/pods", "10.1.1.1", "shop", "cart", NULL}, AUTHZ_REASON_FORBIDDEN,
           "a-api-v1");
    expect((call){"a", "GET", "/api/v1", "10.1.1.1", "default", "app", NULL}, AUTHZ_REASON_FORBIDDEN,
           "a-api-v1");
    /* Outside the longer prefix the later rule decides; the query is not path. */
    expect((call){"a", "GET", "/api/v2", "10.1.1.1", "shop", "cart", NULL}, AUTHZ_REASON_OK, "a-api");
    expect((call){"a", "GET", "/api?x=/api/v1", "10.1.1.1", "shop", "cart", NULL}, AUTHZ_REASON_OK, "a-api");
    /* A prefix is bytes, not segments: /api/v10 is under /api/v1. */
    expect((call){"a", "GET", "/api/v10", "10.1.1.1", "shop", "cart", NULL}, AUTHZ_REASON_FORBIDDEN,
           "a-api-v1");
    /* Neither: the later catch-all of a and b. */
    expect((call){"a", "GET", "/other", "10.1.1.1", "shop", "cart", NULL}, AUTHZ_REASON_OK, "ab");
}

Test(pol_rules, clusters_overlap_first_decides)
{
    /* b matches b-payments and ab: only namespace payments, though ab admits anyone. */
    expect((call){"b", "GET", "/x", "fd00:b:0:1000::1", "payments", "api", NULL}, AUTHZ_REASON_OK,
           "b-payments");
    expect((call){"b", "GET", "/x", "fd00:b:0:1000::1", "shop", "web", NULL}, AUTHZ_REASON_FORBIDDEN,
           "b-payments");
    /* a does not match b-payments: ab decides. */
    expect((call){"a", "GET", "/x", "10.1.1.1", "shop", "web", NULL}, AUTHZ_REASON_OK, "ab");
}

Test(pol_rules, rule_sources_overlap_first_decides)
{
    /* c /net: c-net's CIDRs decide, though rule c admits any source. */
    expect((call){"c", "GET", "/net/x", "fd00:c:1::9", "default", "app", NULL}, AUTHZ_REASON_OK, "c-net");
    expect((call){"c", "GET", "/net/x", "192.168.7.9", "default", "app", NULL}, AUTHZ_REASON_OK, "c-net");
    expect((call){"c", "GET", "/net/x", "fd00:c:2::9", "default", "app", NULL},
           AUTHZ_REASON_SOURCE_NOT_ALLOWED, "c-net");
    expect((call){"c", "GET", "/net/x", "192.168.8.9", "default", "app", NULL},
           AUTHZ_REASON_SOURCE_NOT_ALLOWED, "c-net");
    expect((call){"c", "GET", "/net/x", NULL, "default", "app", NULL}, AUTHZ_REASON_SOURCE_NOT_ALLOWED,
           "c-net");
    expect((call){"c", "GET", "/elsewhere", "fd00:c:2::9", "default", "app", NULL}, AUTHZ_REASON_OK, "c");
}

/* ---- IPv6 through the whole decision --------------------------------------- */

Test(pol_ipv6, cluster_cidrs)
{
    /* fd00:a::/48 in every spelling; just outside it; another family's network. */
    const char *inside[] = {"fd00:a::5", "FD00:A::5", "fd00:000a:0000:0000:0000:0000:0000:0005",
                            "fd00:a:0:ffff::1", "fd00:a:0:1:2:3:4:5"};
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++)
        expect((call){"a", "GET", "/x", inside[i], "shop", "web", NULL}, AUTHZ_REASON_OK, "ab");
    const char *outside[] = {"fd00:a:1::5", "fd00:b::5", "fd00:b:0:1000::1", "::1",
                             "2001:db8::1", "::",        "192.0.2.1"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
        expect((call){"a", "GET", "/x", outside[i], "shop", "web", NULL}, AUTHZ_REASON_SOURCE_NOT_ALLOWED,
               NULL);
    /* b is IPv6 only, on a /52: fd00:b:0:1000:: up to fd00:b:0:1fff:ffff:... */
    expect((call){"b", "GET", "/", "fd00:b:0:1fff:ffff:ffff:ffff:ffff", "payments", "api", NULL},
           AUTHZ_REASON_OK, "b-payments");
    expect((call){"b", "GET", "/", "fd00:b:0:2000::", "payments", "api", NULL},
           AUTHZ_REASON_SOURCE_NOT_ALLOWED, NULL);
    expect((call){"b", "GET", "/", "fd00:b:0:fff::1", "payments", "api", NULL},
           AUTHZ_REASON_SOURCE_NOT_ALLOWED, NULL);
    expect((call){"b", "GET", "/", "10.1.1.1", "payments", "api", NULL}, AUTHZ_REASON_SOURCE_NOT_ALLOWED,
           NULL);
    expect((call){"b", "GET", "/", "fd00:b:0:1000::1%eth0", "payments", "api", NULL},
           AUTHZ_REASON_SOURCE_NOT_ALLOWED, NULL);
}

Test(pol_ipv6, token_bound_cidrs)
{
    /* Inside the cluster's /48; the token narrows it to a /60 (off a byte boundary). */
    const char *bound = "[\"fd00:a:0:10::/60\", \"10.1.2.0/24\"]";
    expect((call){"a", "GET", "/x", "fd00:a:0:10::1", "shop", "web", bound}, AUTHZ_REASON_OK, "ab");
    expect((call){"a", "GET", "/x", "fd00:a:0:1f:ffff::1", "shop", "web", bound}, AUTHZ_REASON_OK, "ab");
    expect((call){"a", "GET", "/x", "10.1.2.3", "shop", "web", bound}, AUTHZ_REASON_OK, "ab");
    const char *outside[] = {"fd00:a:0:20::1", "fd00:a:0:f::1", "fd00:a::1", "10.1.3.3"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        pol_decision d = decide((call){"a", "GET", "/x", outside[i], "shop", "web", bound});
        cr_expect_eq(d.status.reason, AUTHZ_REASON_SOURCE_NOT_ALLOWED, "%s: %s", outside[i],
                     d.status.message);
        cr_expect(strstr(d.status.message, "outside the token's boundCIDRs"), "%s: %s", outside[i],
                  d.status.message);
    }
    /* On a cluster without source CIDRs the token's own still hold. */
    expect((call){"c", "GET", "/x", "fd00:a:0:10::1", "default", "app", bound}, AUTHZ_REASON_OK, "c");
    expect((call){"c", "GET", "/x", "fd00:a:0:20::1", "default", "app", bound},
           AUTHZ_REASON_SOURCE_NOT_ALLOWED, NULL);
    expect((call){"c", "GET", "/x", NULL, "default", "app", bound}, AUTHZ_REASON_SOURCE_NOT_ALLOWED, NULL);
}

Test(pol_ipv6, rule_cidrs)
{
    /* c-net's fd00:c:1::/64 on its own. */
    expect((call){"c", "GET", "/net", "fd00:c:1:0:ffff:ffff:ffff:ffff", "default", "app", NULL},
           AUTHZ_REASON_OK, "c-net");
    expect((call){"c", "GET", "/net", "fd00:c:1:1::", "default", "app", NULL},
           AUTHZ_REASON_SOURCE_NOT_ALLOWED, "c-net");
    expect((call){"c", "GET", "/net", "fd00:c:0:ffff::1", "default", "app", NULL},
           AUTHZ_REASON_SOURCE_NOT_ALLOWED, "c-net");
}
