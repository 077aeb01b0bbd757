/* peer_binding: the token's namespace and service account must be the ones
 * the caller's SPIFFE ID names. Config validation (a rule may tighten, never
 * loosen), and the decision step with principals, certificates (generated
 * here) and the cache. */
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

#define ISS "https://a.example"

static tg_testdir dir;
static EVP_PKEY *key;
static authz_arena arena;
static char err[8192];
static int64_t now;

static void setup(void)
{
    cr_assert_eq(tg_testdir_make(&dir, "tg-peer"), 0);
    key = tg_keygen("p256");
    cr_assert_not_null(key);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "a.jwks", key, "a1"), 0);
    authz_arena_init(&arena, NULL, 0, 1024 * 1024);
    now = (int64_t)time(NULL);
}

static void teardown(void)
{
    authz_arena_free(&arena);
    EVP_PKEY_free(key);
    cr_assert_eq(tg_testdir_remove(&dir), 0);
}

TestSuite(pol_peer, .init = setup, .fini = teardown);

/* A config of clusters a and b (both with key a1: the test wants one
 * cluster's tokens only, so b gets its own key) with |a_binding| /
 * |rules| spliced in ("" for none). Returns the snapshot or NULL with err. */
static pol_snapshot *load(const char *a_binding, const char *rules)
{
    char text[4096], path[512];
    snprintf(text, sizeof text,
             "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS "\",\"audiences\":[\"api\"],"
             "\"jwks_file\":\"a.jwks\"%s%s}]%s%s}",
             a_binding[0] ? ",\"peer_binding\":" : "", a_binding, rules[0] ? ",\"rules\":" : "", rules);
    cr_assert_eq(tg_testdir_write(&dir, "config.json", text), 0);
    cr_assert_eq(tg_testdir_path(&dir, "config.json", path, sizeof path), 0);
    pol_snapshot *s = NULL;
    err[0] = '\0';
    (void)pol_config_load(path, &s, err, sizeof err);
    return s;
}

static pol_snapshot *load_ok(const char *a_binding, const char *rules)
{
    pol_snapshot *s = load(a_binding, rules);
    cr_assert_not_null(s, "%s", err);
    return s;
}

static void expect_error(const char *a_binding, const char *rules, const char *needle)
{
    pol_snapshot *s = load(a_binding, rules);
    cr_assert_null(s, "loaded, expected %s", needle);
    cr_assert(strstr(err, needle), "error %s\nlacks %s", err, needle);
    cr_assert(strstr(err, "config.json: "), "names the file: %s", err);
}

Test(pol_peer, config_values_and_defaults)
{
    pol_snapshot *s = load_ok("{\"mode\":\"spiffe\",\"trust_domain\":\"cluster-a.local\",\"required\":true}",
                              "[{\"name\":\"r\",\"peer_binding\":{\"required\":true}}]");
    pol_peer_binding b = pol_peer_effective(&s->clusters[0].peer, NULL);
    cr_assert_eq(b.mode, POL_PEER_MODE_SPIFFE);
    cr_assert(authz_slice_eq_cstr(b.trust_domain, "cluster-a.local"));
    cr_assert(b.required);
    pol_snapshot_release(s);

    s = load_ok("", "");
    b = pol_peer_effective(&s->clusters[0].peer, NULL);
    cr_assert_eq(b.mode, POL_PEER_MODE_OFF, "off by default");
    cr_assert(authz_slice_eq_cstr(b.trust_domain, "cluster.local"));
    cr_assert_not(b.required);
    pol_snapshot_release(s);

    /* A rule inherits what it leaves out, from each cluster. */
    s = load_ok("{\"mode\":\"spiffe\",\"trust_domain\":\"td.a\"}",
                "[{\"name\":\"r\",\"peer_binding\":{\"required\":true}}]");
    b = pol_peer_effective(&s->clusters[0].peer, &s->rules[0].peer);
    cr_assert_eq(b.mode, POL_PEER_MODE_SPIFFE);
    cr_assert(authz_slice_eq_cstr(b.trust_domain, "td.a"));
    cr_assert(b.required);
    pol_snapshot_release(s);
}

Test(pol_peer, config_errors)
{
    expect_error("{\"mode\":\"SPIFFE\"}", "",
                 "clusters[0].peer_binding.mode: must be \"off\" or \"spiffe\" (\"SPIFFE\")");
    expect_error("{\"mode\":\"spiffe\",\"trust_domain\":\"Cluster.local\"}", "",
                 "clusters[0].peer_binding.trust_domain: must be a SPIFFE trust domain");
    expect_error("{\"mode\":\"spiffe\",\"trust_domain\":\"a/b\"}", "", "(\"a/b\")");
    expect_error("{\"mode\":\"spiffe\",\"required\":\"yes\"}", "",
                 "clusters[0].peer_binding.required: must be true or false (\"yes\")");
    expect_error("{\"mode\":\"spiffe\",\"trustdomain\":\"x\"}", "",
                 "clusters[0].peer_binding.trustdomain: unknown key (\"x\"); did you mean `trust_domain`?");
    expect_error("true", "", "clusters[0].peer_binding: must be an object (true)");
    expect_error("", "[{\"name\":\"r\",\"peer_binding\":{\"mode\":\"on\"}}]",
                 "rules[0].peer_binding.mode: must be \"off\" or \"spiffe\" (\"on\")");
}

/* A rule may tighten its clusters' binding, never loosen it. */
Test(pol_peer, rules_only_tighten)
{
    expect_error(
        "{\"mode\":\"spiffe\"}", "[{\"name\":\"r\",\"peer_binding\":{\"mode\":\"off\"}}]",
        "rules[0].peer_binding.mode: loosens the peer_binding of cluster a (clusters[0]); a rule may "
        "only tighten it (\"off\")");
    expect_error(
        "{\"mode\":\"spiffe\",\"required\":true}",
        "[{\"name\":\"r\",\"clusters\":[\"a\"],\"peer_binding\":{\"required\":false}}]",
        "rules[0].peer_binding.required: loosens the peer_binding of cluster a (clusters[0]); a rule "
        "may only tighten it (false)");
    expect_error("{\"mode\":\"spiffe\"}",
                 "[{\"name\":\"r\",\"peer_binding\":{\"trust_domain\":\"other.td\"}}]",
                 "rules[0].peer_binding.trust_domain: loosens the peer_binding of cluster a");
    /* Tightening, or restating, is fine. */
    pol_snapshot_release(load_ok("", "[{\"name\":\"r\",\"peer_binding\":{\"mode\":\"spiffe\"}}]"));
    pol_snapshot_release(
        load_ok("{\"mode\":\"spiffe\"}", "[{\"name\":\"r\",\"peer_binding\":{\"required\":true}}]"));
    pol_snapshot_release(load_ok("{\"mode\":\"spiffe\",\"required\":true}",
                                 "[{\"name\":\"r\",\"peer_binding\":{\"mode\":\"spiffe\",\"trust_domain\":"
                                 "\"cluster.local\",\"required\":true}}]"));
    pol_snapshot_release(load_ok("{\"mode\":\"off\",\"required\":true}",
                                 "[{\"name\":\"r\",\"peer_binding\":{\"mode\":\"off\"}}]"));
}

/* ---- decisions ------------------------------------------------------------ */

static char *token_for(const char *ns, const char *sa)
{
    json_t *c = tg_k8s_claims(ISS, "api", ns, sa, now);
    cr_assert_not_null(c);
    char *jws = tg_jws_claims(key, "ES256", "a1", c);
    json_decref(c);
    cr_assert_not_null(jws);
    return jws;
}

typedef struct peer_req {
    const char *principal;
    const char *certificate;
    const char *path;
} peer_req;

static char auth[8192];

static pol_decision decide_with(const pol_snapshot *s, const char *token, peer_req p, pol_token_cache *cache)
{
    snprintf(auth, sizeof auth, "Bearer %s", token);
    pol_request req = {
        .authorization = authz_slice_from_cstr(auth),
        .cluster = AUTHZ_SLICE_LIT("a"),
        .method = AUTHZ_SLICE_LIT("GET"),
        .path = authz_slice_from_cstr(p.path ? p.path : "/"),
        .peer_principal = authz_slice_from_cstr(p.principal),
        .peer_certificate = authz_slice_from_cstr(p.certificate),
        .now = now,
    };
    pol_decide_ctx ctx = {.arena = &arena, .cache = cache};
    pol_decision d;
    authz_arena_reset(&arena);
    pol_decide(s, &req, &ctx, &d);
    return d;
}

#define expect(d, want_reason, want_result)                                                                  \
    do {                                                                                                     \
        pol_decision d_ = (d);                                                                               \
        cr_assert_eq(d_.status.reason, (want_reason), "%s: %s", authz_reason_name(d_.status.reason),         \
                     d_.status.message);                                                                     \
        cr_assert_eq(d_.peer_result, (want_result), "peer result %d: %s", (int)d_.peer_result,               \
                     d_.status.message);                                                                     \
    } while (0)

Test(pol_peer, the_token_must_belong_to_the_caller)
{
    pol_snapshot *s = load_ok("{\"mode\":\"spiffe\",\"trust_domain\":\"td.a\",\"required\":true}", "");
    char *tok = token_for("shop", "checkout");
    pol_decision d = decide_with(s, tok, (peer_req){"spiffe://td.a/ns/shop/sa/checkout", NULL, NULL}, NULL);
    expect(d, AUTHZ_REASON_OK, POL_PEER_RESULT_BOUND);
    cr_assert(authz_slice_eq_cstr(d.peer, "spiffe://td.a/ns/shop/sa/checkout"));

    static const char *const others[] = {
        "spiffe://td.a/ns/shop/sa/other",         /* another service account */
        "spiffe://td.a/ns/other/sa/checkout",     /* another namespace */
        "spiffe://td.b/ns/shop/sa/checkout",      /* another trust domain */
        "spiffe://td.a/ns/shop/sa/checkout/",     /* trailing slash */
        "spiffe://td.a/ns/shop/sa/checkout/x",    /* extra segment */
        "spiffe://td.a/ns/shop%2Fsa/sa/checkout", /* encoded slash */
        "SPIFFE://td.a/ns/shop/sa/checkout",      /* upper-case scheme */
        "spiffe://td.a/ns/shop/sa/Checkout",      /* case matters */
        "spiffe://td.a/ns/x/../shop/sa/checkout", /* dot segments */
        "td.a/ns/shop/sa/checkout",
        "checkout.shop.svc.cluster.local", /* Envoy's DNS SAN fallback */
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        d = decide_with(s, tok, (peer_req){others[i], NULL, NULL}, NULL);
        expect(d, AUTHZ_REASON_PEER_MISMATCH, POL_PEER_RESULT_MISMATCH);
        cr_assert_not(d.allowed, "%s", others[i]);
    }
    /* 10 KB of ID. */
    static char huge[10 * 1024 + 1];
    memset(huge, 'a', sizeof huge - 1);
    memcpy(huge, "spiffe://td.a/ns/shop/sa/", strlen("spiffe://td.a/ns/shop/sa/"));
    d = decide_with(s, tok, (peer_req){huge, NULL, NULL}, NULL);
    expect(d, AUTHZ_REASON_PEER_MISMATCH, POL_PEER_RESULT_MISMATCH);
    cr_assert(strstr(d.status.message, "longer than 2048"), "%s", d.status.message);

    d = decide_with(s, tok, (peer_req){NULL, NULL, NULL}, NULL);
    expect(d, AUTHZ_REASON_PEER_MISSING, POL_PEER_RESULT_MISSING);
    cr_assert_eq(authz_reason_http_status(d.status.reason), 403);
    free(tok);
    pol_snapshot_release(s);
}

Test(pol_peer, not_required_lets_a_missing_peer_pass_unbound)
{
    pol_snapshot *s = load_ok("{\"mode\":\"spiffe\"}", "");
    char *tok = token_for("shop", "checkout");
    pol_decision d = decide_with(s, tok, (peer_req){NULL, NULL, NULL}, NULL);
    expect(d, AUTHZ_REASON_OK, POL_PEER_RESULT_UNBOUND);
    cr_assert_null(d.peer.ptr);
    d = decide_with(s, tok, (peer_req){"", "", NULL}, NULL);
    expect(d, AUTHZ_REASON_OK, POL_PEER_RESULT_UNBOUND);
    /* Present but wrong is never "missing". */
    d = decide_with(s, tok, (peer_req){"spiffe://cluster.local/ns/shop/sa/x", NULL, NULL}, NULL);
    expect(d, AUTHZ_REASON_PEER_MISMATCH, POL_PEER_RESULT_MISMATCH);
    free(tok);
    pol_snapshot_release(s);
}

Test(pol_peer, off_checks_nothing)
{
    pol_snapshot *s = load_ok("", "");
    char *tok = token_for("shop", "checkout");
    pol_decision d = decide_with(s, tok, (peer_req){"spiffe://x/ns/y/sa/z", NULL, NULL}, NULL);
    expect(d, AUTHZ_REASON_OK, POL_PEER_RESULT_NONE);
    free(tok);
    pol_snapshot_release(s);
}

Test(pol_peer, certificate_only_peer)
{
    pol_snapshot *s = load_ok("{\"mode\":\"spiffe\",\"required\":true}", "");
    char *tok = token_for("shop", "checkout");
    const char *mine[] = {"spiffe://cluster.local/ns/shop/sa/checkout"};
    const char *theirs[] = {"spiffe://cluster.local/ns/shop/sa/other"};
    char *cert = tg_cert_pem_with_uris(key, mine, 1);
    char *other = tg_cert_pem_with_uris(key, theirs, 1);
    char *bare = tg_cert_pem(key);
    cr_assert(cert && other && bare);
    pol_decision d = decide_with(s, tok, (peer_req){NULL, cert, NULL}, NULL);
    expect(d, AUTHZ_REASON_OK, POL_PEER_RESULT_BOUND);
    cr_assert(authz_slice_eq_cstr(d.peer, mine[0]));
    d = decide_with(s, tok, (peer_req){NULL, other, NULL}, NULL);
    expect(d, AUTHZ_REASON_PEER_MISMATCH, POL_PEER_RESULT_MISMATCH);
    d = decide_with(s, tok, (peer_req){NULL, bare, NULL}, NULL);
    expect(d, AUTHZ_REASON_PEER_MISMATCH, POL_PEER_RESULT_MISMATCH);
    cr_assert(strstr(d.status.message, "peer certificate has no subjectAltName"), "%s", d.status.message);
    d = decide_with(s, tok, (peer_req){NULL, "garbage", NULL}, NULL);
    expect(d, AUTHZ_REASON_PEER_MISMATCH, POL_PEER_RESULT_MISMATCH);
    /* The principal wins when both are there. */
    d = decide_with(s, tok, (peer_req){theirs[0], cert, NULL}, NULL);
    expect(d, AUTHZ_REASON_PEER_MISMATCH, POL_PEER_RESULT_MISMATCH);
    free(cert);
    free(other);
    free(bare);
    free(tok);
    pol_snapshot_release(s);
}

/* A rule tightens for the requests it selects, and the step runs before
 * the source CIDRs and the rule's own checks. */
Test(pol_peer, rule_tightens_its_routes)
{
    pol_snapshot *s =
        load_ok("", "[{\"name\":\"admin\",\"path_prefix\":\"/admin\",\"namespaces\":[\"ops\"],"
                    "\"peer_binding\":{\"mode\":\"spiffe\",\"required\":true}},{\"name\":\"rest\"}]");
    char *tok = token_for("shop", "checkout");
    pol_decision d = decide_with(s, tok, (peer_req){NULL, NULL, "/admin/x"}, NULL);
    expect(d, AUTHZ_REASON_PEER_MISSING, POL_PEER_RESULT_MISSING);
    d = decide_with(s, tok, (peer_req){"spiffe://cluster.local/ns/shop/sa/checkout", NULL, "/admin/x"}, NULL);
    expect(d, AUTHZ_REASON_FORBIDDEN, POL_PEER_RESULT_BOUND);
    d = decide_with(s, tok, (peer_req){NULL, NULL, "/api"}, NULL);
    expect(d, AUTHZ_REASON_OK, POL_PEER_RESULT_NONE);
    free(tok);
    pol_snapshot_release(s);
}

/* The peer is request-dependent: a cached token is checked against each
 * request's peer. */
Test(pol_peer, the_cache_never_skips_the_peer)
{
    pol_snapshot *s = load_ok("{\"mode\":\"spiffe\",\"required\":true}", "");
    pol_token_cache *cache = pol_token_cache_new(16);
    cr_assert_not_null(cache);
    char *tok = token_for("shop", "checkout");
    const char *mine = "spiffe://cluster.local/ns/shop/sa/checkout";
    const char *thief = "spiffe://cluster.local/ns/evil/sa/thief";
    for (int round = 0; round < 3; round++) {
        expect(decide_with(s, tok, (peer_req){mine, NULL, NULL}, cache), AUTHZ_REASON_OK,
               POL_PEER_RESULT_BOUND);
        expect(decide_with(s, tok, (peer_req){thief, NULL, NULL}, cache), AUTHZ_REASON_PEER_MISMATCH,
               POL_PEER_RESULT_MISMATCH);
        expect(decide_with(s, tok, (peer_req){NULL, NULL, NULL}, cache), AUTHZ_REASON_PEER_MISSING,
               POL_PEER_RESULT_MISSING);
    }
    cr_assert_eq(pol_token_cache_count(cache), 1);
    free(tok);
    pol_token_cache_free(cache);
    pol_snapshot_release(s);
}
