/* pol_decide: every reason code, target selection, cross-cluster replay
 * (incl. clusters sharing one issuer), key confusion, algorithms, rules and
 * the trace. Keys, configs and tokens are made per test in a temp folder. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_arena.h"
#include "pol_config.h"
#include "pol_decide.h"
#include "pol_token_cache.h"
#include "tg_testkeys.h"

#define ISS_A "https://a.example"
#define ISS_B "https://b.example"
#define ISS_SHARED "https://kubernetes.default.svc.cluster.local"
#define ISS_NET "https://net.example"
#define ISS_RSA "https://rsa.example"
#define ISS_384 "https://ec384.example"

static char dir[64];
static EVP_PKEY *ka, *kb, *kk1, *kk2, *kn, *krsa, *k384;
static pol_snapshot *snap;       /* no rules */
static pol_snapshot *rules_snap; /* clusters a and b with rules */
static authz_arena arena;
static int64_t now;

static void write_text(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void write_jwks(const char *name, EVP_PKEY *key, const char *kid, const char *alg)
{
    tg_jwk_opts opts = {.kid = kid, .alg = alg, .use = "sig"};
    char *jwks = tg_jwks(&key, &opts, 1);
    cr_assert_not_null(jwks);
    write_text(name, jwks);
    free(jwks);
}

static void write_pem(const char *name, EVP_PKEY *key)
{
    char *pem = tg_public_pem(key);
    cr_assert_not_null(pem);
    write_text(name, pem);
    free(pem);
}

static pol_snapshot *load(const char *name, const char *json)
{
    write_text(name, json);
    char path[512], err[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    pol_snapshot *s = NULL;
    cr_assert_eq(pol_config_load(path, &s, err, sizeof err), 0, "%s", err);
    return s;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg-poldec-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    now = (int64_t)time(NULL);
    ka = tg_keygen("p256");
    kb = tg_keygen("p256");
    kk1 = tg_keygen("p256");
    kk2 = tg_keygen("p256");
    kn = tg_keygen("p256");
    krsa = tg_keygen("rsa2048");
    k384 = tg_keygen("p384");
    cr_assert(ka && kb && kk1 && kk2 && kn && krsa && k384);
    write_jwks("a.jwks", ka, "a1", "ES256");
    write_jwks("b.jwks", kb, "b1", NULL);
    write_pem("k1.pem", kk1);
    write_pem("k2.pem", kk2);
    write_jwks("net.jwks", kn, "n1", NULL);
    write_jwks("rsa.jwks", krsa, "r1", NULL);
    write_jwks("384.jwks", k384, "e1", NULL);
    snap = load("main.json",
                "{\"clusters\":["
                "{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api-a\"],\"jwks_file\":\"a.jwks\","
                "\"hosts\":[\"api.a.example\",\"[fd00::1]\"]},"
                "{\"name\":\"b\",\"issuer\":\"" ISS_B "\",\"audiences\":[\"api-b\"],\"jwks_file\":\"b.jwks\","
                "\"max_token_age_seconds\":600,\"hosts\":[\"api.b.example\"]},"
                "{\"name\":\"k1\",\"issuer\":\"" ISS_SHARED "\",\"audiences\":[\"shared-api\"],"
                "\"public_key_files\":[\"k1.pem\"]},"
                "{\"name\":\"k2\",\"issuer\":\"" ISS_SHARED "\",\"audiences\":[\"shared-api\"],"
                "\"public_key_files\":[\"k2.pem\"]},"
                "{\"name\":\"net\",\"issuer\":\"" ISS_NET
                "\",\"audiences\":[\"api-net\"],\"jwks_file\":\"net.jwks\","
                "\"source_cidrs\":[\"10.0.0.0/8\"],\"enforce_warnafter\":true},"
                "{\"name\":\"rsa\",\"issuer\":\"" ISS_RSA
                "\",\"audiences\":[\"api-rsa\"],\"jwks_file\":\"rsa.jwks\"},"
                "{\"name\":\"ec384\",\"issuer\":\"" ISS_384
                "\",\"audiences\":[\"api-384\"],\"jwks_file\":\"384.jwks\"}"
                "]}");
    rules_snap =
        load("rules.json",
             "{\"clusters\":["
             "{\"name\":\"a\",\"issuer\":\"" ISS_A "\",\"audiences\":[\"api-a\"],\"jwks_file\":\"a.jwks\"},"
             "{\"name\":\"b\",\"issuer\":\"" ISS_B "\",\"audiences\":[\"api-b\"],\"jwks_file\":\"b.jwks\"}],"
             "\"rules\":["
             "{\"name\":\"admin\",\"clusters\":[\"a\"],\"path_prefix\":\"/admin\",\"methods\":[\"POST\"],"
             "\"namespaces\":[\"ops\"],\"service_accounts\":[\"ops:deployer\"],"
             "\"source_cidrs\":[\"192.168.1.0/24\"]},"
             "{\"name\":\"read\",\"clusters\":[\"a\"],\"path_prefix\":\"/api\",\"methods\":[\"GET\"]},"
             "{\"name\":\"b-all\",\"clusters\":[\"b\"]}]}");
    authz_arena_init(&arena, NULL, 0, 64 * 1024);
}

static void teardown(void)
{
    authz_arena_free(&arena);
    pol_snapshot_release(snap);
    pol_snapshot_release(rules_snap);
    EVP_PKEY *keys[] = {ka, kb, kk1, kk2, kn, krsa, k384};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        EVP_PKEY_free(keys[i]);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(pol_decide, .init = setup, .fini = teardown);

/* ---- tokens ----------------------------------------------------------- */

typedef struct tok {
    const char *iss; /* NULL: no iss */
    const char *aud; /* JSON value */
    const char *ns, *sa;
    long exp_in, nbf_in, iat_in;
    bool no_exp;
    bool no_k8s;
    const char *extra;     /* further top-level members, e.g. "\"boundCIDRs\":[...]" */
    const char *k8s_extra; /* further kubernetes.io members */
} tok;

static tok tok_for(const char *iss, const char *aud)
{
    tok t = {.iss = iss, .aud = aud, .ns = "default", .sa = "app", .exp_in = 3600};
    return t;
}

static char *payload_json(const tok *t)
{
    char *out = malloc(4096);
    cr_assert_not_null(out);
    char iss[256] = "", exp[64] = "", k8s[1024] = "", extra[512] = "";
    if (t->iss)
        snprintf(iss, sizeof iss, "\"iss\":\"%s\",", t->iss);
    if (!t->no_exp)
        snprintf(exp, sizeof exp, "\"exp\":%lld,", (long long)(now + t->exp_in));
    if (!t->no_k8s)
        snprintf(
            k8s, sizeof k8s,
            ",\"kubernetes.io\":{\"namespace\":\"%s\",\"serviceaccount\":{\"name\":\"%s\",\"uid\":\"u-1\"},"
            "\"pod\":{\"name\":\"app-1\",\"uid\":\"p-1\"},\"node\":{\"name\":\"node-1\",\"uid\":\"n-1\"}%s%"
            "s}",
            t->ns, t->sa, t->k8s_extra ? "," : "", t->k8s_extra ? t->k8s_extra : "");
    if (t->extra)
        snprintf(extra, sizeof extra, ",%s", t->extra);
    snprintf(out, 4096,
             "{%s\"sub\":\"system:serviceaccount:%s:%s\",\"aud\":%s,%s\"nbf\":%lld,\"iat\":%lld%s%s}", iss,
             t->ns, t->sa, t->aud, exp, (long long)(now + t->nbf_in), (long long)(now + t->iat_in), k8s,
             extra);
    return out;
}

static char *header_json(const char *alg, const char *kid)
{
    char *out = malloc(256);
    cr_assert_not_null(out);
    if (kid)
        snprintf(out, 256, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
    else
        snprintf(out, 256, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    return out;
}

static char *mint(EVP_PKEY *key, const char *alg, const char *kid, const tok *t)
{
    char *h = header_json(alg, kid), *p = payload_json(t);
    char *jws = tg_jws(key, alg, h, p);
    cr_assert_not_null(jws);
    free(h);
    free(p);
    return jws;
}

/* ---- requests --------------------------------------------------------- */

typedef struct req_opts {
    const char *cluster, *host, *source, *method, *path;
    const char *authorization; /* used as is when set */
    const char *token;         /* else "Bearer <token>" when set */
    bool authorization_repeated;
} req_opts;

static char auth_buf[20000];

static pol_decision decide_in(pol_snapshot *s, req_opts o, const pol_trace *trace)
{
    const char *authorization = o.authorization;
    if (!authorization && o.token) {
        snprintf(auth_buf, sizeof auth_buf, "Bearer %s", o.token);
        authorization = auth_buf;
    }
    pol_request req = {
        .authorization = authz_slice_from_cstr(authorization),
        .authorization_repeated = o.authorization_repeated,
        .cluster = authz_slice_from_cstr(o.cluster),
        .host = authz_slice_from_cstr(o.host),
        .source = authz_slice_from_cstr(o.source),
        .method = authz_slice_from_cstr(o.method ? o.method : "GET"),
        .path = authz_slice_from_cstr(o.path ? o.path : "/"),
        .now = now,
    };
    pol_decide_ctx ctx = {.arena = &arena, .trace = trace};
    pol_decision d;
    bool allowed = pol_decide(s, &req, &ctx, &d);
    cr_assert_eq(allowed, d.allowed);
    return d;
}

static pol_decision decide(req_opts o)
{
    return decide_in(snap, o, NULL);
}

/* A decision through |cache| at |at|. */
static pol_decision decide_cached(pol_snapshot *s, pol_token_cache *cache, req_opts o, int64_t at)
{
    snprintf(auth_buf, sizeof auth_buf, "Bearer %s", o.token);
    pol_request req = {
        .authorization = authz_slice_from_cstr(auth_buf),
        .cluster = authz_slice_from_cstr(o.cluster),
        .source = authz_slice_from_cstr(o.source),
        .method = authz_slice_from_cstr("GET"),
        .path = authz_slice_from_cstr("/"),
        .now = at,
    };
    pol_decide_ctx ctx = {.arena = &arena, .cache = cache};
    pol_decision d;
    pol_decide(s, &req, &ctx, &d);
    return d;
}

#define expect_reason(d, r)                                                                                  \
    cr_expect_eq((d).status.reason, (r), "reason %s (%s), wanted %s", authz_reason_name((d).status.reason),  \
                 (d).status.message, authz_reason_name(r))

#define expect_denied(d, r)                                                                                  \
    do {                                                                                                     \
        cr_expect_not((d).allowed, "allowed: %s", (d).status.message);                                       \
        expect_reason(d, r);                                                                                 \
        cr_expect_null((d).subject.ptr, "a denial carries no identity");                                     \
    } while (0)

#define expect_message(d, text)                                                                              \
    cr_expect(strstr((d).status.message, (text)), "message \"%s\" lacks \"%s\"", (d).status.message, (text))

/* ---- allow ------------------------------------------------------------ */

Test(pol_decide, allow_with_identity)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    cr_assert(d.allowed, "%s: %s", authz_reason_name(d.status.reason), d.status.message);
    expect_reason(d, AUTHZ_REASON_OK);
    cr_assert_not_null(d.cluster);
    cr_expect(authz_slice_eq_cstr(d.cluster->name, "a"));
    cr_expect_eq(d.issuer_cluster, d.cluster);
    cr_expect_null(d.rule);
    cr_expect(authz_slice_eq_cstr(d.subject, "system:serviceaccount:default:app"));
    cr_expect(authz_slice_eq_cstr(d.namespace_name, "default"));
    cr_expect(authz_slice_eq_cstr(d.service_account, "app"));
    cr_expect(authz_slice_eq_cstr(d.pod_name, "app-1"));
    cr_expect(authz_slice_eq_cstr(d.node_name, "node-1"));
    cr_expect_eq(d.subject.ptr[d.subject.len], '\0', "identity copies are NUL-terminated");
    cr_expect_str_eq(d.status.message, "allowed system:serviceaccount:default:app");
}

Test(pol_decide, string_audience_allowed)
{
    tok t = tok_for(ISS_A, "\"api-a\"");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    cr_expect(d.allowed, "%s", d.status.message);
}

Test(pol_decide, algorithms_es256_es384_rs256_ps256)
{
    tok t = tok_for(ISS_384, "[\"api-384\"]");
    char *jws = mint(k384, "ES384", "e1", &t);
    pol_decision d = decide((req_opts){.cluster = "ec384", .token = jws});
    free(jws);
    cr_expect(d.allowed, "ES384: %s", d.status.message);

    t = tok_for(ISS_RSA, "[\"api-rsa\"]");
    jws = mint(krsa, "RS256", "r1", &t);
    d = decide((req_opts){.cluster = "rsa", .token = jws});
    free(jws);
    cr_expect(d.allowed, "RS256: %s", d.status.message);

    jws = mint(krsa, "PS256", "r1", &t);
    d = decide((req_opts){.cluster = "rsa", .token = jws});
    free(jws);
    cr_expect(d.allowed, "PS256: %s", d.status.message);

    t = tok_for(ISS_B, "[\"api-b\"]");
    jws = mint(kb, "ES256", NULL, &t);
    d = decide((req_opts){.cluster = "b", .token = jws});
    free(jws);
    cr_expect(d.allowed, "ES256 without kid: %s", d.status.message);
}

/* ---- target ------------------------------------------------------------ */

Test(pol_decide, target_by_host)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.host = "API.A.Example:8443", .token = jws});
    cr_expect(d.allowed, "%s", d.status.message);
    d = decide((req_opts){.host = "api.a.example", .token = jws});
    cr_expect(d.allowed, "%s", d.status.message);
    d = decide((req_opts){.host = "[FD00::1]:443", .token = jws});
    cr_expect(d.allowed, "IPv6 host: %s", d.status.message);
    /* The routing hint wins over the host. */
    d = decide((req_opts){.cluster = "b", .host = "api.a.example", .token = jws});
    expect_denied(d, AUTHZ_REASON_CLUSTER_MISMATCH);
    free(jws);
}

/* The route named a cluster, and it is empty: no cluster, never the host. */
Test(pol_decide, empty_cluster_hint_is_unknown_cluster)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "", .host = "api.a.example", .token = jws});
    expect_denied(d, AUTHZ_REASON_UNKNOWN_CLUSTER);
    expect_message(d, "empty cluster");
    cr_expect_null(d.cluster);
    d = decide((req_opts){.host = "api.a.example", .token = jws});
    cr_expect(d.allowed, "no hint at all: the host decides (%s)", d.status.message);
    free(jws);
}

Test(pol_decide, unknown_cluster)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "nope", .token = jws});
    expect_denied(d, AUTHZ_REASON_UNKNOWN_CLUSTER);
    expect_message(d, "no cluster named nope");
    cr_expect_null(d.cluster);
    d = decide((req_opts){.host = "other.example:443", .token = jws});
    expect_denied(d, AUTHZ_REASON_UNKNOWN_CLUSTER);
    expect_message(d, "host other.example:443 matches no cluster");
    d = decide((req_opts){.host = "api.a.example:x", .token = jws});
    expect_denied(d, AUTHZ_REASON_UNKNOWN_CLUSTER);
    d = decide((req_opts){.token = jws});
    expect_denied(d, AUTHZ_REASON_UNKNOWN_CLUSTER);
    free(jws);
}

/* ---- token form --------------------------------------------------------- */

Test(pol_decide, missing_token)
{
    pol_decision d = decide((req_opts){.cluster = "a"});
    expect_denied(d, AUTHZ_REASON_MISSING_TOKEN);
    d = decide((req_opts){.cluster = "a", .authorization = ""});
    expect_denied(d, AUTHZ_REASON_MISSING_TOKEN);
}

Test(pol_decide, malformed_token)
{
    pol_decision d = decide((req_opts){.cluster = "a", .authorization = "Basic dXNlcjpwYXNz"});
    expect_denied(d, AUTHZ_REASON_MALFORMED_TOKEN);
    d = decide((req_opts){.cluster = "a", .token = "not.a-jwt"});
    expect_denied(d, AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(pol_decide, token_longer_than_limit_is_malformed)
{
    char pad[18000];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    char extra[18100];
    snprintf(extra, sizeof extra, "\"pad\":\"%s\"", pad);
    char *h = header_json("ES256", "a1");
    char *p = malloc(20000);
    cr_assert_not_null(p);
    snprintf(p, 20000, "{\"iss\":\"" ISS_A "\",\"aud\":\"api-a\",\"exp\":%lld,%s}", (long long)(now + 60),
             extra);
    char *jws = tg_jws(ka, "ES256", h, p);
    cr_assert_not_null(jws);
    cr_assert_gt(strlen(jws), 16384);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    expect_denied(d, AUTHZ_REASON_MALFORMED_TOKEN);
    free(h);
    free(p);
    free(jws);
}

/* ---- keys and signatures ------------------------------------------------ */

Test(pol_decide, unsupported_alg_key_kind)
{
    tok t = tok_for(ISS_RSA, "[\"api-rsa\"]");
    char *jws = mint(ka, "ES256", "r1", &t);
    pol_decision d = decide((req_opts){.cluster = "rsa", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_UNSUPPORTED_ALG);
    expect_message(d, "alg ES256 does not match key kind RSA-2048");
}

Test(pol_decide, unsupported_alg_pinned_jwk_alg)
{
    /* a.jwks pins ES256; the same key under ES384 is refused before verifying. */
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES384", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_UNSUPPORTED_ALG);
}

static void expect_hmac_denied(const void *secret, size_t len, const char *what)
{
    tok t = tok_for(ISS_RSA, "[\"api-rsa\"]");
    char *h = header_json("HS256", "r1"), *p = payload_json(&t);
    char *jws = tg_jws_hmac("HS256", secret, len, h, p);
    cr_assert_not_null(jws);
    pol_decision d = decide((req_opts){.cluster = "rsa", .token = jws});
    cr_expect_not(d.allowed, "HS256 keyed with the %s was allowed", what);
    expect_reason(d, AUTHZ_REASON_UNSUPPORTED_ALG);
    free(h);
    free(p);
    free(jws);
}

Test(pol_decide, hs256_keyed_with_public_key_denied)
{
    char *pem = tg_public_pem(krsa);
    size_t der_len = 0;
    unsigned char *der = tg_spki_der(krsa, &der_len);
    json_t *jwk = tg_jwk_json(krsa, NULL);
    char *jwk_text = json_dumps(jwk, JSON_COMPACT);
    cr_assert(pem && der && jwk_text);
    expect_hmac_denied(pem, strlen(pem), "PEM");
    expect_hmac_denied(der, der_len, "DER");
    expect_hmac_denied(jwk_text, strlen(jwk_text), "JWK text");
    expect_hmac_denied("", 0, "empty key");
    free(pem);
    free(der);
    free(jwk_text);
    json_decref(jwk);
}

Test(pol_decide, unknown_key)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "zz", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_UNKNOWN_KEY);
    expect_message(d, "zz");
}

Test(pol_decide, kid_of_other_cluster_with_claimed_issuer_is_unknown_key)
{
    /* Signed by cluster b's key but claiming a's issuer: a's keys lack kid b1. */
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(kb, "ES256", "b1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_UNKNOWN_KEY);
}

/* Two Authorization header lines are two credentials, whatever each holds. */
Test(pol_decide, repeated_authorization_is_malformed)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws, .authorization_repeated = true});
    expect_denied(d, AUTHZ_REASON_MALFORMED_TOKEN);
    expect_message(d, "more than one authorization header");
    d = decide((req_opts){.cluster = "a", .authorization = "", .authorization_repeated = true});
    expect_denied(d, AUTHZ_REASON_MALFORMED_TOKEN);
    d = decide((req_opts){.cluster = "a", .token = jws});
    cr_expect(d.allowed, "%s", d.status.message);
    free(jws);
}

/* A denial after the signature verified keeps who was refused (for the
 * log), never as the allowed identity; before it, nothing. */
Test(pol_decide, verified_subject_survives_later_denials)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    cr_assert(d.allowed, "%s", d.status.message);
    cr_expect(authz_slice_eq_cstr(d.verified_subject, "system:serviceaccount:default:app"));
    cr_expect(authz_slice_eq(d.subject, d.verified_subject));
    d = decide((req_opts){.cluster = "b", .token = jws});
    expect_denied(d, AUTHZ_REASON_CLUSTER_MISMATCH);
    cr_expect(authz_slice_eq_cstr(d.verified_subject, "system:serviceaccount:default:app"));
    free(jws);

    t.exp_in = -3600;
    jws = mint(ka, "ES256", "a1", &t);
    d = decide((req_opts){.cluster = "a", .token = jws});
    expect_denied(d, AUTHZ_REASON_EXPIRED);
    cr_expect(authz_slice_eq_cstr(d.verified_subject, "system:serviceaccount:default:app"));
    free(jws);

    t = tok_for(ISS_A, "[\"api-a\"]");
    jws = mint(kb, "ES256", "a1", &t); /* cluster-a's kid, another key */
    d = decide((req_opts){.cluster = "a", .token = jws});
    expect_denied(d, AUTHZ_REASON_BAD_SIGNATURE);
    cr_expect_null(d.verified_subject.ptr, "an unverified token names nobody");
    free(jws);

    t.no_k8s = true;
    jws = mint(ka, "ES256", "a1", &t);
    d = decide((req_opts){.cluster = "a", .token = jws});
    expect_denied(d, AUTHZ_REASON_MISSING_CLAIM);
    cr_expect_null(d.verified_subject.ptr, "no kubernetes.io claims: no subject");
    free(jws);
}

Test(pol_decide, bad_signature_foreign_key)
{
    EVP_PKEY *stranger = tg_keygen("p256");
    cr_assert_not_null(stranger);
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(stranger, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    expect_denied(d, AUTHZ_REASON_BAD_SIGNATURE);
    free(jws);
    jws = mint(stranger, "ES256", NULL, &t);
    d = decide((req_opts){.cluster = "a", .token = jws});
    expect_denied(d, AUTHZ_REASON_BAD_SIGNATURE);
    free(jws);
    EVP_PKEY_free(stranger);
}

Test(pol_decide, payload_swapped)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *good = mint(ka, "ES256", "a1", &t);
    t.ns = "kube-system";
    t.sa = "admin";
    char *other = mint(ka, "ES256", "a1", &t);
    /* header.payload of |other| with the signature of |good|. */
    char *sig = strrchr(good, '.');
    char *other_sig = strrchr(other, '.');
    cr_assert(sig && other_sig);
    char forged[4096];
    snprintf(forged, sizeof forged, "%.*s%s", (int)(other_sig - other), other, sig);
    pol_decision d = decide((req_opts){.cluster = "a", .token = forged});
    expect_denied(d, AUTHZ_REASON_BAD_SIGNATURE);
    free(good);
    free(other);
}

/* ---- issuer and cluster ---------------------------------------------- */

Test(pol_decide, unknown_issuer)
{
    tok t = tok_for("https://evil.example", "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_UNKNOWN_ISSUER);
    expect_message(d, "issuer https://evil.example is not configured for any cluster");
}

Test(pol_decide, issuer_must_match_exactly)
{
    tok t = tok_for(ISS_A "/", "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_UNKNOWN_ISSUER);
}

Test(pol_decide, cluster_mismatch_replay)
{
    tok t = tok_for(ISS_B, "[\"api-b\"]");
    char *jws = mint(kb, "ES256", "b1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_CLUSTER_MISMATCH);
    expect_message(d, "token was issued by cluster b (key kid b1), request is for cluster a");
    cr_assert_not_null(d.issuer_cluster);
    cr_expect(authz_slice_eq_cstr(d.issuer_cluster->name, "b"));
}

Test(pol_decide, cluster_mismatch_shared_issuer_without_kid)
{
    tok t = tok_for(ISS_SHARED, "[\"shared-api\"]");
    char *jws = mint(kk2, "ES256", NULL, &t);
    pol_decision d = decide((req_opts){.cluster = "k1", .token = jws});
    expect_denied(d, AUTHZ_REASON_CLUSTER_MISMATCH);
    expect_message(d, "issued by cluster k2");
    expect_message(d, "request is for cluster k1");
    d = decide((req_opts){.cluster = "k2", .token = jws});
    cr_expect(d.allowed, "genuine k2 token for k2: %s", d.status.message);
    free(jws);
}

Test(pol_decide, cluster_mismatch_shared_issuer_with_fingerprint_kid)
{
    char *kid = tg_fingerprint(kk1);
    tok t = tok_for(ISS_SHARED, "[\"shared-api\"]");
    char *jws = mint(kk1, "ES256", kid, &t);
    pol_decision d = decide((req_opts){.cluster = "k2", .token = jws});
    expect_denied(d, AUTHZ_REASON_CLUSTER_MISMATCH);
    d = decide((req_opts){.cluster = "k1", .token = jws});
    cr_expect(d.allowed, "%s", d.status.message);
    free(jws);
    free(kid);
}

/* ---- claims ------------------------------------------------------------ */

Test(pol_decide, audience_mismatch)
{
    tok t = tok_for(ISS_A, "[\"api-b\",\"other\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_AUDIENCE_MISMATCH);
}

Test(pol_decide, expired)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    t.exp_in = -3600;
    t.nbf_in = t.iat_in = -7200;
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_EXPIRED);
}

Test(pol_decide, expired_within_skew_allowed)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    t.exp_in = -30;
    t.nbf_in = t.iat_in = -600;
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    cr_expect(d.allowed, "%s", d.status.message);
}

Test(pol_decide, not_yet_valid)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    t.nbf_in = 3600;
    t.exp_in = 7200;
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_NOT_YET_VALID);
}

Test(pol_decide, missing_claims)
{
    tok t = tok_for(NULL, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_MISSING_CLAIM);
    expect_message(d, "iss");

    t = tok_for(ISS_A, "[\"api-a\"]");
    t.no_exp = true;
    jws = mint(ka, "ES256", "a1", &t);
    d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_MISSING_CLAIM);

    t = tok_for(ISS_A, "[\"api-a\"]");
    t.no_k8s = true;
    jws = mint(ka, "ES256", "a1", &t);
    d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_MISSING_CLAIM);
}

Test(pol_decide, stale_token_by_age)
{
    tok t = tok_for(ISS_B, "[\"api-b\"]");
    t.iat_in = t.nbf_in = -1000;
    char *jws = mint(kb, "ES256", "b1", &t);
    pol_decision d = decide((req_opts){.cluster = "b", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_STALE_TOKEN);
}

Test(pol_decide, stale_token_by_warnafter)
{
    tok t = tok_for(ISS_NET, "[\"api-net\"]");
    char warn[64];
    snprintf(warn, sizeof warn, "\"warnafter\":%lld", (long long)(now - 10));
    t.k8s_extra = warn;
    char *jws = mint(kn, "ES256", "n1", &t);
    pol_decision d = decide((req_opts){.cluster = "net", .source = "10.1.1.1", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_STALE_TOKEN);
}

/* ---- source ------------------------------------------------------------ */

Test(pol_decide, source_cluster_cidr)
{
    tok t = tok_for(ISS_NET, "[\"api-net\"]");
    char *jws = mint(kn, "ES256", "n1", &t);
    pol_decision d = decide((req_opts){.cluster = "net", .source = "10.1.2.3", .token = jws});
    cr_expect(d.allowed, "%s", d.status.message);
    d = decide((req_opts){.cluster = "net", .source = "::ffff:10.1.2.3", .token = jws});
    cr_expect(d.allowed, "IPv4-mapped: %s", d.status.message);
    d = decide((req_opts){.cluster = "net", .source = "192.168.0.1", .token = jws});
    expect_denied(d, AUTHZ_REASON_SOURCE_NOT_ALLOWED);
    expect_message(d, "192.168.0.1");
    d = decide((req_opts){.cluster = "net", .token = jws});
    expect_denied(d, AUTHZ_REASON_SOURCE_NOT_ALLOWED);
    expect_message(d, "no source address");
    d = decide((req_opts){.cluster = "net", .source = "10.1.2.3:5555", .token = jws});
    expect_denied(d, AUTHZ_REASON_SOURCE_NOT_ALLOWED);
    expect_message(d, "source 10.1.2.3:5555 is not an IP address");
    free(jws);
}

Test(pol_decide, source_token_cidr_claim)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    t.extra = "\"boundCIDRs\":[\"10.1.0.0/16\",\"fd00:1::/64\"]";
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .source = "10.1.0.5", .token = jws});
    cr_expect(d.allowed, "%s", d.status.message);
    d = decide((req_opts){.cluster = "a", .source = "fd00:1::9", .token = jws});
    cr_expect(d.allowed, "%s", d.status.message);
    d = decide((req_opts){.cluster = "a", .source = "10.2.0.1", .token = jws});
    expect_denied(d, AUTHZ_REASON_SOURCE_NOT_ALLOWED);
    d = decide((req_opts){.cluster = "a", .token = jws});
    expect_denied(d, AUTHZ_REASON_SOURCE_NOT_ALLOWED);
    free(jws);

    t.extra = "\"boundCIDRs\":\"10.1.0.0/16\"";
    jws = mint(ka, "ES256", "a1", &t);
    d = decide((req_opts){.cluster = "a", .source = "10.1.0.5", .token = jws});
    expect_denied(d, AUTHZ_REASON_MALFORMED_TOKEN);
    free(jws);
}

/* ---- rules ------------------------------------------------------------- */

static pol_decision decide_rules(const char *cluster, const char *method, const char *path,
                                 const char *source, const char *ns, const char *sa)
{
    bool for_b = strcmp(cluster, "b") == 0;
    tok t = tok_for(for_b ? ISS_B : ISS_A, for_b ? "[\"api-b\"]" : "[\"api-a\"]");
    t.ns = ns;
    t.sa = sa;
    char *jws = mint(for_b ? kb : ka, "ES256", for_b ? "b1" : "a1", &t);
    pol_decision d = decide_in(
        rules_snap,
        (req_opts){.cluster = cluster, .method = method, .path = path, .source = source, .token = jws}, NULL);
    free(jws);
    return d;
}

Test(pol_decide, rule_allows)
{
    pol_decision d = decide_rules("a", "POST", "/admin/x?y=1", "192.168.1.7", "ops", "deployer");
    cr_assert(d.allowed, "%s", d.status.message);
    cr_assert_not_null(d.rule);
    cr_expect(authz_slice_eq_cstr(d.rule->name, "admin"));
    d = decide_rules("a", "GET", "/api/v1", NULL, "default", "app");
    cr_expect(d.allowed, "%s", d.status.message);
    d = decide_rules("b", "DELETE", "/anything", NULL, "x", "y");
    cr_expect(d.allowed, "%s", d.status.message);
}

Test(pol_decide, rule_forbidden_subject)
{
    pol_decision d = decide_rules("a", "POST", "/admin", "192.168.1.7", "ops", "intruder");
    expect_denied(d, AUTHZ_REASON_FORBIDDEN);
    expect_message(d, "rule admin");
    d = decide_rules("a", "POST", "/admin", "192.168.1.7", "default", "deployer");
    expect_denied(d, AUTHZ_REASON_FORBIDDEN);
}

Test(pol_decide, rule_source_not_allowed)
{
    pol_decision d = decide_rules("a", "POST", "/admin", "192.168.2.7", "ops", "deployer");
    expect_denied(d, AUTHZ_REASON_SOURCE_NOT_ALLOWED);
    expect_message(d, "rule admin");
    d = decide_rules("a", "POST", "/admin", NULL, "ops", "deployer");
    expect_denied(d, AUTHZ_REASON_SOURCE_NOT_ALLOWED);
}

Test(pol_decide, no_rule_matches)
{
    pol_decision d = decide_rules("a", "GET", "/other", NULL, "default", "app");
    expect_denied(d, AUTHZ_REASON_FORBIDDEN);
    expect_message(d, "no rule matches GET /other for cluster a");
    d = decide_rules("a", "POST", "/api/v1", NULL, "default", "app");
    expect_denied(d, AUTHZ_REASON_FORBIDDEN);
    /* The query string is not part of the path prefix match. */
    d = decide_rules("a", "GET", "/x?/api", NULL, "default", "app");
    expect_denied(d, AUTHZ_REASON_FORBIDDEN);
}

/* ---- failure handling and trace ---------------------------------------- */

Test(pol_decide, arena_exhaustion_is_internal_error)
{
    authz_arena_free(&arena);
    authz_arena_init(&arena, NULL, 16, 16);
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_INTERNAL_ERROR);
}

typedef struct recorder {
    int tokens;
    char names[32][32];
    bool passed[32];
    int steps;
} recorder;

static void rec_token(void *ctx, const authz_jwt *jwt)
{
    recorder *r = ctx;
    cr_expect_not_null(jwt->payload);
    cr_expect_not_null(jwt->payload_text.ptr);
    r->tokens++;
}

static void rec_step(void *ctx, const char *check, bool passed, const char *detail)
{
    recorder *r = ctx;
    cr_expect_not_null(detail);
    if (r->steps < 32) {
        snprintf(r->names[r->steps], sizeof r->names[0], "%s", check);
        r->passed[r->steps] = passed;
    }
    r->steps++;
}

Test(pol_decide, trace_reports_each_check)
{
    recorder r = {0};
    pol_trace trace = {rec_token, rec_step, &r};
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide_in(snap, (req_opts){.cluster = "a", .token = jws}, &trace);
    cr_assert(d.allowed, "%s", d.status.message);
    cr_expect_eq(r.tokens, 1);
    const char *want[] = {"cluster", "bearer", "parse",    "issuer_known", "signature", "cluster_match",
                          "issuer",  "expiry", "audience", "identity",     "source"};
    cr_assert_eq(r.steps, (int)(sizeof want / sizeof want[0]));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cr_expect_str_eq(r.names[i], want[i]);
        cr_expect(r.passed[i]);
    }

    memset(&r, 0, sizeof r);
    d = decide_in(snap, (req_opts){.cluster = "b", .token = jws}, &trace);
    expect_denied(d, AUTHZ_REASON_CLUSTER_MISMATCH);
    cr_assert_gt(r.steps, 0);
    cr_expect_str_eq(r.names[r.steps - 1], "cluster_match");
    cr_expect_not(r.passed[r.steps - 1]);
    free(jws);
}

Test(pol_decide, null_ctx_members_are_safe)
{
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    snprintf(auth_buf, sizeof auth_buf, "Bearer %s", jws);
    pol_request req = {
        .authorization = authz_slice_from_cstr(auth_buf), .cluster = AUTHZ_SLICE_LIT("a"), .now = now};
    pol_trace empty = {NULL, NULL, NULL};
    pol_decide_ctx ctx = {.trace = &empty};
    pol_decision d;
    cr_expect_not(pol_decide(snap, &req, &ctx, &d), "no arena: cannot copy the identity");
    expect_reason(d, AUTHZ_REASON_INTERNAL_ERROR);
    free(jws);
}

/* ---- verified-token cache: it may skip parsing and the signature, never a
 * check that depends on the request or the clock ------------------------- */

Test(pol_decide, cache_hit_still_checks_the_target_cluster)
{
    pol_token_cache *cache = pol_token_cache_new(16);
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide_cached(snap, cache, (req_opts){.cluster = "a", .token = jws}, now);
    cr_expect(d.allowed, "%s", d.status.message);
    cr_expect_eq(pol_token_cache_count(cache), 1, "a verified token is cached");
    uint8_t digest[AUTHZ_BEARER_DIGEST_LEN];
    cr_assert_eq(authz_bearer_digest(authz_slice_from_cstr(jws), digest), 0);
    cr_expect(authz_slice_eq_cstr(d.token, jws), "the decision names the credential it judged");
    cr_expect(d.has_token_digest && memcmp(d.token_digest, digest, sizeof digest) == 0,
              "the cache hands the log its fingerprint");
    d = decide_cached(snap, cache, (req_opts){.cluster = "a", .token = jws}, now);
    cr_expect(d.allowed, "cached: %s", d.status.message);
    cr_expect(d.has_token_digest && memcmp(d.token_digest, digest, sizeof digest) == 0, "and on a hit");
    cr_expect(authz_slice_eq_cstr(d.subject, "system:serviceaccount:default:app"));
    d = decide_cached(snap, cache, (req_opts){.cluster = "b", .token = jws}, now);
    expect_denied(d, AUTHZ_REASON_CLUSTER_MISMATCH);
    expect_message(d, "issued by cluster a (key kid a1), request is for cluster b");
    cr_expect_eq(pol_token_cache_count(cache), 1, "the replay was answered from the cache");
    d = decide_cached(snap, cache, (req_opts){.cluster = "net", .token = jws}, now);
    expect_denied(d, AUTHZ_REASON_CLUSTER_MISMATCH);
    free(jws);
    pol_token_cache_free(cache);
}

Test(pol_decide, cache_hit_still_checks_expiry_and_source)
{
    pol_token_cache *cache = pol_token_cache_new(16);
    tok t = tok_for(ISS_NET, "[\"api-net\"]");
    t.exp_in = 30;
    char *jws = mint(kn, "ES256", "n1", &t);
    pol_decision d =
        decide_cached(snap, cache, (req_opts){.cluster = "net", .token = jws, .source = "10.1.2.3"}, now);
    cr_expect(d.allowed, "%s", d.status.message);
    d = decide_cached(snap, cache, (req_opts){.cluster = "net", .token = jws, .source = "192.0.2.1"}, now);
    expect_denied(d, AUTHZ_REASON_SOURCE_NOT_ALLOWED);
    cr_expect_eq(pol_token_cache_count(cache), 1);
    /* 30 s lifetime + 60 s skew: two minutes later the token is expired, cached or not. */
    d = decide_cached(snap, cache, (req_opts){.cluster = "net", .token = jws, .source = "10.1.2.3"},
                      now + 120);
    expect_denied(d, AUTHZ_REASON_EXPIRED);
    cr_expect_eq(pol_token_cache_count(cache), 0, "the entry is dropped at exp");
    free(jws);
    pol_token_cache_free(cache);
}

Test(pol_decide, cache_keeps_no_failures)
{
    pol_token_cache *cache = pol_token_cache_new(16);
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *forged = mint(kb, "ES256", "a1", &t);
    for (int i = 0; i < 2; i++) {
        pol_decision d = decide_cached(snap, cache, (req_opts){.cluster = "a", .token = forged}, now);
        expect_denied(d, AUTHZ_REASON_BAD_SIGNATURE);
    }
    cr_expect_eq(pol_token_cache_count(cache), 0);
    free(forged);
    pol_token_cache_free(cache);
}

Test(pol_decide, cache_entries_do_not_cross_snapshots)
{
    pol_token_cache *cache = pol_token_cache_new(16);
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(ka, "ES256", "a1", &t);
    pol_decision d = decide_cached(snap, cache, (req_opts){.cluster = "a", .token = jws}, now);
    cr_expect(d.allowed, "%s", d.status.message);
    /* rules_snap is another load (another generation): its rules apply and
     * the entry made under snap is replaced, not reused. */
    d = decide_cached(rules_snap, cache, (req_opts){.cluster = "a", .token = jws}, now);
    expect_denied(d, AUTHZ_REASON_FORBIDDEN);
    cr_expect_eq(pol_token_cache_count(cache), 1);
    d = decide_cached(snap, cache, (req_opts){.cluster = "a", .token = jws}, now);
    cr_expect(d.allowed, "%s", d.status.message);
    free(jws);
    pol_token_cache_free(cache);
}

/* ---- kid-less CPU bound and unknown_key messages (issue 7 sections 4, 6) */

#define ISS_KIDLESS "https://kidless.example"

/* A snapshot of one cluster with three P-256 keys and one RSA key (PEM, so
 * their kids are fingerprints), and max_kidless_keys |bound| (-1: default). */
static pol_snapshot *kidless_snapshot(EVP_PKEY *keys[4], int bound)
{
    static const char *const names[] = {"kl0.pem", "kl1.pem", "kl2.pem", "kl3.pem"};
    for (size_t i = 0; i < 4; i++)
        write_pem(names[i], keys[i]);
    char bound_text[64] = "";
    if (bound >= 0)
        snprintf(bound_text, sizeof bound_text, "\"max_kidless_keys\":%d,", bound);
    char json[1024];
    snprintf(json, sizeof json,
             "{%s\"clusters\":[{\"name\":\"kl\",\"issuer\":\"" ISS_KIDLESS "\",\"audiences\":[\"api-kl\"],"
             "\"public_key_files\":[\"kl0.pem\",\"kl1.pem\",\"kl2.pem\",\"kl3.pem\"]}]}",
             bound_text);
    return load("kidless.json", json);
}

static void kidless_keys(EVP_PKEY *keys[4])
{
    keys[0] = tg_keygen("p256");
    keys[1] = tg_keygen("p256");
    keys[2] = tg_keygen("p256");
    keys[3] = tg_keygen("rsa2048");
    cr_assert(keys[0] && keys[1] && keys[2] && keys[3]);
}

Test(pol_decide, kidless_token_beyond_max_kidless_keys_is_unknown_key)
{
    EVP_PKEY *keys[4];
    kidless_keys(keys);
    tok t = tok_for(ISS_KIDLESS, "[\"api-kl\"]");
    char *es = mint(keys[2], "ES256", NULL, &t);
    char *rs = mint(keys[3], "RS256", NULL, &t);

    /* Three ES256 candidates, two allowed: refused before any is tried. */
    pol_snapshot *tight = kidless_snapshot(keys, 2);
    pol_decision d = decide_in(tight, (req_opts){.cluster = "kl", .token = es}, NULL);
    expect_denied(d, AUTHZ_REASON_UNKNOWN_KEY);
    expect_message(d, "too many candidate keys for a kid-less token: 3 ES256 keys of issuer " ISS_KIDLESS
                      ", max_kidless_keys is 2; configure kids");
    /* Only keys that allow the token's alg count: one RS256 candidate. */
    d = decide_in(tight, (req_opts){.cluster = "kl", .token = rs}, NULL);
    cr_expect(d.allowed, "%s", d.status.message);
    /* A kid picks its key whatever the bound. */
    char *kid = tg_fingerprint(keys[2]);
    char *with_kid = mint(keys[2], "ES256", kid, &t);
    d = decide_in(tight, (req_opts){.cluster = "kl", .token = with_kid}, NULL);
    cr_expect(d.allowed, "%s", d.status.message);
    pol_snapshot_release(tight);

    /* At the bound, every candidate is still tried. */
    pol_snapshot *exact = kidless_snapshot(keys, 3);
    d = decide_in(exact, (req_opts){.cluster = "kl", .token = es}, NULL);
    cr_expect(d.allowed, "%s", d.status.message);
    pol_snapshot_release(exact);

    /* 0 refuses every kid-less token. */
    pol_snapshot *none = kidless_snapshot(keys, 0);
    d = decide_in(none, (req_opts){.cluster = "kl", .token = rs}, NULL);
    expect_denied(d, AUTHZ_REASON_UNKNOWN_KEY);
    expect_message(d, "max_kidless_keys is 0");
    d = decide_in(none, (req_opts){.cluster = "kl", .token = with_kid}, NULL);
    cr_expect(d.allowed, "%s", d.status.message);
    pol_snapshot_release(none);

    /* The default (8) admits these three. */
    pol_snapshot *dflt = kidless_snapshot(keys, -1);
    d = decide_in(dflt, (req_opts){.cluster = "kl", .token = es}, NULL);
    cr_expect(d.allowed, "%s", d.status.message);
    pol_snapshot_release(dflt);

    free(es);
    free(rs);
    free(kid);
    free(with_kid);
    for (size_t i = 0; i < 4; i++)
        EVP_PKEY_free(keys[i]);
}

Test(pol_decide, kid_of_a_cluster_with_another_issuer_names_both_issuers)
{
    /* Signed by cluster b's key, claiming a's issuer: the kid exists, the
     * iss is what does not fit. */
    tok t = tok_for(ISS_A, "[\"api-a\"]");
    char *jws = mint(kb, "ES256", "b1", &t);
    pol_decision d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_UNKNOWN_KEY);
    expect_message(d, "token iss " ISS_A " differs from issuer " ISS_B " of cluster b, which holds kid b1");
    /* A kid no cluster holds reads as missing. */
    jws = mint(ka, "ES256", "nowhere", &t);
    d = decide((req_opts){.cluster = "a", .token = jws});
    free(jws);
    expect_denied(d, AUTHZ_REASON_UNKNOWN_KEY);
    expect_message(d, "no key with kid nowhere for issuer " ISS_A);
}
