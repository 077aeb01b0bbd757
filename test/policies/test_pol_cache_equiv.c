/* The token cache as a property: for a generated mix of tokens (one or more
 * for every reason code) sent to every kind of target, source and route over
 * rounds of a moving clock, the decision with the cache on equals the
 * decision with it off. The cache may only skip the parse and the signature
 * math; a claim, time, source or rule check it skipped would turn a denial on
 * the first call into an allow (or another reason) on a later one.
 *
 * Two caches run beside the uncached reference: a large one that keeps every
 * token, and one of two entries that evicts all the time. Rounds alternate
 * between two snapshots of the same config with the clusters in opposite
 * order, so an entry used across a reload would name the wrong cluster. The
 * order of requests is shuffled by a fixed-seed generator, so a failure
 * reproduces. Clusters a and b bind tokens to the caller's SPIFFE ID (a
 * optionally, b requiring one), and each request carries one of several
 * peers: the peer is request-dependent, so a hit must never skip its check. */
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

#define ISS_A "https://a.example"
#define ISS_SHARED "https://kubernetes.default.svc.cluster.local"
#define ISS_DEX "https://dex.example"
#define MAX_AGE 600 /* cluster a's max_token_age_seconds */
#define SKEW 60

static tg_testdir dir;
static EVP_PKEY *key_a, *key_b, *key_c, *key_rogue, *key_dex;
static pol_snapshot *snap, *snap_reordered;
static authz_arena arena;
static int64_t t0;

/* Clusters: a (own issuer, P-256 JWKS kid a1, source CIDRs in v4 and v6, a
 * token age limit), b and c (sharing kube's default issuer, PEM keys whose
 * kid is the fingerprint; c enforces warnafter). Rules: POST /admin on a
 * for namespace ops from two networks; GET anything on c; everything on a
 * and b. Identity provider corp (Dex-like, P-256 kid d1) is trusted by a
 * and b, maps email and groups with "corp:" and requires hd example.com. */
static const char *config_text(bool reordered)
{
    static char text[4096];
    const char *a =
        "{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api-a\"],\"jwks_file\":\"a.jwks\","
        "\"source_cidrs\":[\"10.0.0.0/8\",\"fd00:a::/64\"],\"hosts\":[\"api.a.example\"],"
        "\"max_token_age_seconds\":600,\"peer_binding\":{\"mode\":\"spiffe\",\"trust_domain\":\"a.local\"}}";
    const char *b =
        "{\"name\":\"b\",\"issuer\":\"" ISS_SHARED "\",\"audiences\":[\"api-b\",\"shared\"],"
        "\"public_key_files\":[\"b.pem\"],\"peer_binding\":{\"mode\":\"spiffe\",\"required\":true}}";
    const char *c = "{\"name\":\"c\",\"issuer\":\"" ISS_SHARED "\",\"audiences\":[\"shared\"],"
                    "\"public_key_files\":[\"c.pem\"],\"enforce_warnafter\":true}";
    const char *rules =
        "[{\"name\":\"admin\",\"clusters\":[\"a\"],\"path_prefix\":\"/admin\",\"methods\":[\"POST\"],"
        "\"namespaces\":[\"ops\"],\"source_cidrs\":[\"10.1.0.0/16\",\"fd00:a::/80\"]},"
        "{\"name\":\"c-read\",\"clusters\":[\"c\"],\"methods\":[\"GET\"]},"
        "{\"name\":\"rest\",\"clusters\":[\"a\",\"b\"]}]";
    const char *providers =
        "[{\"name\":\"corp\",\"issuer\":\"" ISS_DEX
        "\",\"audiences\":[\"tokengate\"],\"jwks_file\":\"dex.jwks\","
        "\"claim_mappings\":{\"username\":{\"claim\":\"email\",\"prefix\":\"corp:\"},"
        "\"groups\":{\"claim\":\"groups\",\"prefix\":\"corp:\"}},"
        "\"claim_validation_rules\":[{\"claim\":\"hd\",\"required_value\":\"example.com\"}],"
        "\"clusters\":[\"a\",\"b\"]}]";
    const char *user_rule = "{\"name\":\"admins\",\"clusters\":[\"b\"],\"path_prefix\":\"/admin\","
                            "\"groups\":[\"corp:admins\"]},";
    int n = snprintf(text, sizeof text,
                     "{\"clock_skew_seconds\":%d,\"clusters\":[%s,%s,%s],\"identity_providers\":%s,"
                     "\"rules\":[%s%s}",
                     SKEW, reordered ? c : a, b, reordered ? a : c, providers, user_rule, rules + 1);
    cr_assert(n > 0 && (size_t)n < sizeof text);
    return text;
}

static pol_snapshot *load(const char *name, const char *text)
{
    char path[512], err[4096];
    cr_assert_eq(tg_testdir_write(&dir, name, text), 0);
    cr_assert_eq(tg_testdir_path(&dir, name, path, sizeof path), 0);
    pol_snapshot *s = NULL;
    cr_assert_eq(pol_config_load(path, &s, err, sizeof err), 0, "%s", err);
    return s;
}

static void setup(void)
{
    cr_assert_eq(tg_testdir_make(&dir, "tg-cache-equiv"), 0);
    t0 = (int64_t)time(NULL);
    key_a = tg_keygen("p256");
    key_b = tg_keygen("p384");
    key_c = tg_keygen("p256");
    key_rogue = tg_keygen("p256");
    key_dex = tg_keygen("p256");
    cr_assert(key_a && key_b && key_c && key_rogue && key_dex);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "dex.jwks", key_dex, "d1"), 0);
    cr_assert_eq(tg_testdir_write_jwks(&dir, "a.jwks", key_a, "a1"), 0);
    cr_assert_eq(tg_testdir_write_pem(&dir, "b.pem", key_b), 0);
    cr_assert_eq(tg_testdir_write_pem(&dir, "c.pem", key_c), 0);
    snap = load("config.json", config_text(false));
    snap_reordered = load("reordered.json", config_text(true));
    cr_assert_neq(snap->generation, snap_reordered->generation);
    authz_arena_init(&arena, NULL, 0, 256 * 1024);
}

static void teardown(void)
{
    authz_arena_free(&arena);
    pol_snapshot_release(snap);
    pol_snapshot_release(snap_reordered);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    EVP_PKEY_free(key_c);
    EVP_PKEY_free(key_rogue);
    EVP_PKEY_free(key_dex);
    cr_assert_eq(tg_testdir_remove(&dir), 0);
}

/* ---- tokens --------------------------------------------------------------- */

static json_t *claims(const char *iss, const char *aud, const char *ns, const char *sa)
{
    json_t *c = tg_k8s_claims(iss, aud, ns, sa, t0);
    cr_assert_not_null(c);
    return c;
}

/* Sets |name| to t0 + |offset|. */
static json_t *with_time(json_t *c, const char *name, int64_t offset)
{
    cr_assert_eq(json_object_set_new(c, name, json_integer((json_int_t)(t0 + offset))), 0);
    return c;
}

static json_t *with(json_t *c, const char *name, json_t *value)
{
    cr_assert_not_null(value);
    cr_assert_eq(json_object_set_new(c, name, value), 0);
    return c;
}

static json_t *without(json_t *c, const char *name)
{
    cr_assert_eq(json_object_del(c, name), 0);
    return c;
}

/* A compact JWS of |c| (consumed) signed by |key| under |alg|; kid NULL
 * leaves the kid out. */
static char *sign(EVP_PKEY *key, const char *alg, const char *kid, json_t *c)
{
    char *jws = tg_jws_claims(key, alg, kid, c);
    cr_assert_not_null(jws);
    json_decref(c);
    return jws;
}

static char *token_a(json_t *c)
{
    return sign(key_a, "ES256", "a1", c);
}

static char *token_b(json_t *c)
{
    return sign(key_b, "ES384", NULL, c);
}

static char *token_c(json_t *c)
{
    return sign(key_c, "ES256", NULL, c);
}

/* A Dex-shaped ID token of corp for |email| in |groups| (a JSON array). */
static json_t *dex_claims(const char *email, json_t *groups)
{
    json_t *c =
        json_pack("{s:s,s:s,s:s,s:s,s:b,s:o,s:s,s:s,s:I,s:I}", "iss", ISS_DEX, "aud", "tokengate", "sub",
                  "CgVhbGljZRIFbG9jYWw", "email", email, "email_verified", 1, "groups", groups, "name",
                  "Alice", "hd", "example.com", "iat", (json_int_t)t0, "exp", (json_int_t)(t0 + 3600));
    cr_assert_not_null(c);
    return c;
}

static char *token_dex(json_t *c)
{
    return sign(key_dex, "ES256", "d1", c);
}

static json_t *a_claims(void)
{
    return claims(ISS_A, "api-a", "default", "app");
}

/* A copy of |token| with its first signature byte flipped. */
static char *tampered(char *token)
{
    char *sig = strrchr(token, '.');
    cr_assert_not_null(sig);
    sig[1] = sig[1] == 'A' ? 'B' : 'A';
    return token;
}

#define MAX_TOKENS 48
static char *tokens[MAX_TOKENS]; /* NULL: no Authorization header */
static const char *token_names[MAX_TOKENS];
static size_t token_count;

static void add(const char *name, char *token)
{
    cr_assert_lt(token_count, MAX_TOKENS);
    token_names[token_count] = name;
    tokens[token_count++] = token;
}

static char *dup(const char *s)
{
    char *d = strdup(s);
    cr_assert_not_null(d);
    return d;
}

/* One or more tokens for every reason, several of them crossing a time
 * boundary during the rounds (offsets from t0: 0 .. 4000 s). */
static void make_tokens(void)
{
    token_count = 0;
    add("no Authorization header", NULL);
    add("empty Authorization", dup(""));
    add("a ok", token_a(a_claims()));
    add("a ops:deployer", token_a(claims(ISS_A, "api-a", "ops", "deployer")));
    add("a bound to 10.1.2.0/24 and fd00:a::/96",
        token_a(with(a_claims(), "boundCIDRs", json_pack("[s,s]", "10.1.2.0/24", "fd00:a::/96"))));
    add("a ops bound to fd00:a::/64", token_a(with(claims(ISS_A, "api-a", "ops", "deployer"), "boundCIDRs",
                                                   json_pack("[s]", "fd00:a::/64"))));
    add("a bound CIDR claim malformed", token_a(with(a_claims(), "boundCIDRs", json_pack("[s]", "nope"))));
    add("a aud is a string", token_a(with(a_claims(), "aud", json_string("api-a"))));
    add("a wrong aud", token_a(with(a_claims(), "aud", json_pack("[s,s]", "api-b", "other"))));
    add("a exp in 100 s", token_a(with_time(a_claims(), "exp", 100)));
    add("a expired an hour ago",
        token_a(with_time(with_time(with_time(a_claims(), "exp", -3600), "iat", -4000), "nbf", -4000)));
    add("a nbf in 200 s", token_a(with_time(a_claims(), "nbf", 200)));
    add("a iat in 300 s", token_a(with_time(a_claims(), "iat", 300)));
    add("a no exp (legacy)", token_a(without(a_claims(), "exp")));
    add("a no kubernetes.io", token_a(without(a_claims(), "kubernetes.io")));
    add("a sub disagrees",
        token_a(with(a_claims(), "sub", json_string("system:serviceaccount:kube-system:x"))));
    add("a issued 500 s ago (age limit 600)",
        token_a(with_time(with_time(a_claims(), "iat", -500), "nbf", -500)));
    add("a exp as a string", token_a(with(a_claims(), "exp", json_string("soon"))));
    add("a iss with a trailing slash", token_a(with(a_claims(), "iss", json_string(ISS_A "/"))));
    add("a no iss", token_a(without(a_claims(), "iss")));
    add("a unknown kid", sign(key_a, "ES256", "a2", a_claims()));
    add("a kid, rogue key", sign(key_rogue, "ES256", "a1", a_claims()));
    add("a signature tampered", tampered(token_a(a_claims())));
    add("a alg ES384 on a P-256 key", sign(key_a, "ES384", "a1", a_claims()));
    add("alg none",
        tg_jws_with_sig("{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"iss\":\"" ISS_A "\"}", NULL, 0));
    add("not a JWS", dup("not-a-jws"));
    add("b ok", token_b(claims(ISS_SHARED, "api-b", "shop", "checkout")));
    add("b for the shared audience", token_b(claims(ISS_SHARED, "shared", "shop", "checkout")));
    add("b wrong aud", token_b(claims(ISS_SHARED, "api-a", "shop", "checkout")));
    add("b not yet valid for 100 s",
        token_b(with_time(claims(ISS_SHARED, "api-b", "shop", "x"), "nbf", 100)));
    add("c ok", token_c(claims(ISS_SHARED, "shared", "batch", "reporter")));
    {
        json_t *c = claims(ISS_SHARED, "shared", "batch", "reporter");
        json_t *k8s = json_object_get(c, "kubernetes.io");
        cr_assert_eq(json_object_set_new(k8s, "warnafter", json_integer((json_int_t)(t0 + 150))), 0);
        add("c warnafter in 150 s", token_c(c));
    }
    add("c key, issuer a, no kid", token_c(claims(ISS_A, "shared", "batch", "reporter")));
    add("corp admin", token_dex(dex_claims("alice@example.com", json_pack("[s,s]", "admins", "dev"))));
    add("corp dev", token_dex(dex_claims("bob@example.com", json_pack("[s]", "dev"))));
    add("corp exp in 100 s", token_dex(with_time(dex_claims("carol@example.com", json_array()), "exp", 100)));
    add("corp email unverified",
        token_dex(with(dex_claims("eve@example.com", json_array()), "email_verified", json_false())));
    add("corp wrong hd",
        token_dex(with(dex_claims("mallory@example.com", json_array()), "hd", json_string("evil.example"))));
    add("corp key, issuer a", sign(key_dex, "ES256", "a1", a_claims()));
}

static void free_tokens(void)
{
    for (size_t i = 0; i < token_count; i++)
        free(tokens[i]);
    token_count = 0;
}

/* ---- requests ---------------------------------------------------------- */

typedef struct target {
    const char *cluster; /* routing hint, or NULL */
    const char *host;
} target;

static const target targets[] = {
    {"a", NULL}, {"b", NULL}, {"c", NULL}, {"zz", NULL}, {NULL, "api.a.example"}, {NULL, "nowhere.example"},
};
static const char *const sources[] = {
    "10.1.2.3", "10.9.9.9", "192.0.2.1", "fd00:a::5", "fd00:a:0:0:1::5", "2001:db8::1", "", "not-an-ip",
};
/* "/api/%zz" is no valid percent-encoding: a malformed request where paths are judged. */
static const char *const routes[][2] = {
    {"GET", "/"}, {"POST", "/admin/x"}, {"GET", "/admin"}, {"POST", "/"}, {"GET", "/api/%zz"},
};
/* The caller's mesh identity (source.principal); NULL: none. */
static const char *const peers[] = {
    NULL,
    NULL,
    "spiffe://a.local/ns/default/sa/app",
    "spiffe://a.local/ns/ops/sa/deployer",
    "spiffe://cluster.local/ns/shop/sa/checkout",
    "spiffe://cluster.local/ns/shop/sa/x",
    "spiffe://a.local/ns/default/sa/app/",
    "spiffe://cluster.local/ns/default/sa/app",
};
static const int64_t round_offsets[] = {0, 50, 130, 170, 250, 320, 700, 4000};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SAMPLES_PER_TOKEN 8

typedef struct request {
    size_t token, target, source, route, peer;
} request;

/* splitmix64: a fixed seed gives the same sequence on every run. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

static void describe(const request *r, int64_t offset, char *out, size_t size)
{
    snprintf(out, size, "token \"%s\" at t0+%llds, cluster %s host %s source \"%s\" peer %s %s %s",
             token_names[r->token], (long long)offset,
             targets[r->target].cluster ? targets[r->target].cluster : "(none)",
             targets[r->target].host ? targets[r->target].host : "(none)", sources[r->source],
             peers[r->peer] ? peers[r->peer] : "(none)", routes[r->route][0], routes[r->route][1]);
}

/* What a decision says, copied out of the arena. Clusters and rules are
 * compared by name: the two snapshots hold different structs. */
typedef struct outcome {
    bool allowed;
    authz_reason reason;
    char message[AUTHZ_MESSAGE_MAX];
    char cluster[32], issuer_cluster[32], rule[32];
    char subject[128], ns[64], sa[64], pod[64], node[64];
    pol_peer_result peer_result;
    char peer[128];
    char provider[32], username[128], groups[128];
} outcome;

static void copy_slice(char *out, size_t size, authz_slice s)
{
    snprintf(out, size, "%.*s", (int)s.len, s.ptr ? s.ptr : "");
}

/* Records whether the decision was answered from the token cache. */
static void on_step(void *ctx, const char *check, bool passed, const char *detail)
{
    if (passed && strcmp(check, "signature") == 0 && strstr(detail, "(token cache)"))
        *(bool *)ctx = true;
}

static outcome decide(const pol_snapshot *s, const request *r, int64_t now, pol_token_cache *cache, bool *hit)
{
    char authorization[8192];
    const char *token = tokens[r->token];
    if (token && token[0])
        snprintf(authorization, sizeof authorization, "Bearer %s", token);
    else if (token)
        authorization[0] = '\0';
    const target *t = &targets[r->target];
    pol_request req = {
        .authorization = token ? authz_slice_from_cstr(authorization) : (authz_slice){NULL, 0},
        .cluster = authz_slice_from_cstr(t->cluster),
        .host = authz_slice_from_cstr(t->host),
        .source = authz_slice_from_cstr(sources[r->source]),
        .method = authz_slice_from_cstr(routes[r->route][0]),
        .path = authz_slice_from_cstr(routes[r->route][1]),
        .peer_principal = authz_slice_from_cstr(peers[r->peer]),
        .now = now,
    };
    *hit = false;
    pol_trace trace = {.step = on_step, .ctx = hit};
    pol_decide_ctx ctx = {.arena = &arena, .trace = &trace, .cache = cache};
    pol_decision d;
    authz_arena_reset(&arena);
    bool allowed = pol_decide(s, &req, &ctx, &d);
    cr_assert_eq(allowed, d.allowed);
    outcome o;
    memset(&o, 0, sizeof o);
    o.allowed = d.allowed;
    o.reason = d.status.reason;
    snprintf(o.message, sizeof o.message, "%s", d.status.message);
    copy_slice(o.cluster, sizeof o.cluster, d.cluster ? d.cluster->name : (authz_slice){NULL, 0});
    copy_slice(o.issuer_cluster, sizeof o.issuer_cluster,
               d.issuer_cluster ? d.issuer_cluster->name : (authz_slice){NULL, 0});
    copy_slice(o.rule, sizeof o.rule, d.rule ? d.rule->name : (authz_slice){NULL, 0});
    copy_slice(o.subject, sizeof o.subject, d.subject);
    copy_slice(o.ns, sizeof o.ns, d.namespace_name);
    copy_slice(o.sa, sizeof o.sa, d.service_account);
    copy_slice(o.pod, sizeof o.pod, d.pod_name);
    copy_slice(o.node, sizeof o.node, d.node_name);
    o.peer_result = d.peer_result;
    copy_slice(o.peer, sizeof o.peer, d.peer);
    copy_slice(o.provider, sizeof o.provider, d.provider ? d.provider->name : (authz_slice){NULL, 0});
    copy_slice(o.username, sizeof o.username, d.username);
    copy_slice(o.groups, sizeof o.groups, d.groups);
    return o;
}

/* Fails the test on the first difference, naming the request and both sides. */
static void expect_same(const outcome *want, const outcome *got, const char *which, const char *what)
{
    bool same = want->allowed == got->allowed && want->reason == got->reason &&
                strcmp(want->message, got->message) == 0 && strcmp(want->cluster, got->cluster) == 0 &&
                strcmp(want->issuer_cluster, got->issuer_cluster) == 0 &&
                strcmp(want->rule, got->rule) == 0 && strcmp(want->subject, got->subject) == 0 &&
                strcmp(want->ns, got->ns) == 0 && strcmp(want->sa, got->sa) == 0 &&
                strcmp(want->pod, got->pod) == 0 && strcmp(want->node, got->node) == 0 &&
                want->peer_result == got->peer_result && strcmp(want->peer, got->peer) == 0 &&
                strcmp(want->provider, got->provider) == 0 && strcmp(want->username, got->username) == 0 &&
                strcmp(want->groups, got->groups) == 0;
    cr_assert(
        same,
        "%s changed a decision for %s:\n  uncached: %s %s \"%s\" cluster %s issuer %s rule %s subject %s\n"
        "  cached:   %s %s \"%s\" cluster %s issuer %s rule %s subject %s",
        which, what, want->allowed ? "ALLOW" : "DENY", authz_reason_name(want->reason), want->message,
        want->cluster, want->issuer_cluster, want->rule, want->subject, got->allowed ? "ALLOW" : "DENY",
        authz_reason_name(got->reason), got->message, got->cluster, got->issuer_cluster, got->rule,
        got->subject);
}

TestSuite(pol_cache_equiv, .init = setup, .fini = teardown, .timeout = 120);

Test(pol_cache_equiv, cache_on_decides_as_cache_off)
{
    make_tokens();
    pol_token_cache *large = pol_token_cache_new(1000);
    pol_token_cache *tiny = pol_token_cache_new(2);
    cr_assert(large && tiny);
    rng_state = 0x70c3e6a7e5eedu;

    size_t n = token_count * SAMPLES_PER_TOKEN;
    request *reqs = calloc(n, sizeof *reqs);
    cr_assert_not_null(reqs);
    bool seen[AUTHZ_REASON_COUNT] = {false};     /* reasons of all decisions */
    bool seen_hit[AUTHZ_REASON_COUNT] = {false}; /* reasons decided on a large-cache hit */
    size_t hits = 0, tiny_hits = 0, decisions = 0;

    for (size_t round = 0; round < N_ELEMS(round_offsets); round++) {
        int64_t now = t0 + round_offsets[round];
        const pol_snapshot *s = round % 2 == 0 ? snap : snap_reordered;
        for (size_t i = 0; i < n; i++) {
            reqs[i] = (request){.token = i / SAMPLES_PER_TOKEN,
                                .target = rng_below(N_ELEMS(targets)),
                                .source = rng_below(N_ELEMS(sources)),
                                .route = rng_below(N_ELEMS(routes)),
                                .peer = rng_below(N_ELEMS(peers))};
        }
        for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = rng_below(i + 1);
            request tmp = reqs[i];
            reqs[i] = reqs[j];
            reqs[j] = tmp;
        }
        for (size_t i = 0; i < n; i++) {
            char what[512];
            describe(&reqs[i], round_offsets[round], what, sizeof what);
            bool hit = false, tiny_hit = false, no_hit = false;
            outcome want = decide(s, &reqs[i], now, NULL, &no_hit);
            outcome got = decide(s, &reqs[i], now, large, &hit);
            expect_same(&want, &got, "the token cache", what);
            got = decide(s, &reqs[i], now, tiny, &tiny_hit);
            expect_same(&want, &got, "the two-entry token cache", what);
            cr_assert_not(no_hit);
            seen[want.reason] = true;
            if (hit) {
                seen_hit[want.reason] = true;
                hits++;
            }
            tiny_hits += tiny_hit ? 1u : 0u;
            decisions++;
        }
    }

    /* The property only means something if the mix reached every reason and
     * the cache really answered, for denials after the signature too. */
    for (int r = 0; r < AUTHZ_REASON_COUNT; r++) {
        if (r != AUTHZ_REASON_INTERNAL_ERROR)
            cr_expect(seen[r], "no request was decided %s: the mix lacks a case",
                      authz_reason_name((authz_reason)r));
    }
    const authz_reason after_signature[] = {
        AUTHZ_REASON_OK,
        AUTHZ_REASON_CLUSTER_MISMATCH,
        AUTHZ_REASON_AUDIENCE_MISMATCH,
        AUTHZ_REASON_NOT_YET_VALID,
        AUTHZ_REASON_MISSING_CLAIM,
        AUTHZ_REASON_STALE_TOKEN,
        AUTHZ_REASON_MALFORMED_TOKEN,
        AUTHZ_REASON_SOURCE_NOT_ALLOWED,
        AUTHZ_REASON_FORBIDDEN,
        AUTHZ_REASON_PEER_MISMATCH,
        AUTHZ_REASON_PEER_MISSING,
    };
    for (size_t i = 0; i < N_ELEMS(after_signature); i++) {
        cr_expect(seen_hit[after_signature[i]], "no %s decision came from a cache hit",
                  authz_reason_name(after_signature[i]));
    }
    cr_expect_gt(hits, decisions / 8, "only %zu of %zu decisions hit the cache", hits, decisions);
    cr_expect_gt(tiny_hits, 0);
    cr_expect_leq(pol_token_cache_count(tiny), 2);

    free(reqs);
    pol_token_cache_free(large);
    pol_token_cache_free(tiny);
    free_tokens();
}
