/* pol_decide with path rules: the bypass catalogue against a rule
 * path_prefix "/admin" (each attempt is matched as its normalized path says
 * or refused as malformed_request), rule ignore_case, escaped_slashes,
 * CONNECT and OPTIONS *, and what explain's trace and the decision report.
 * Keys and tokens are made per test. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_arena.h"
#include "pol_config.h"
#include "pol_decide.h"
#include "tg_testkeys.h"

#define ISS "https://a.example"

static char dir[64];
static EVP_PKEY *key;
static pol_snapshot *strict_snap; /* "/admin" for ops only, then everyone */
static pol_snapshot *keep_snap;   /* the same with escaped_slashes keep */
static pol_snapshot *case_snap;   /* "/admin" with ignore_case */
static char *token;               /* default:app, not ops */
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

/* Writes |json| as |name| and loads it; the config must be valid. */
static pol_snapshot *load_text(const char *name, const char *json)
{
    write_text(name, json);
    char path[512], err[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    pol_snapshot *s = NULL;
    cr_assert_eq(pol_config_load(path, &s, err, sizeof err), 0, "%s", err);
    return s;
}

static pol_snapshot *load(const char *name, const char *top, const char *admin_extra)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{%s\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS "\",\"audiences\":[\"api\"],"
             "\"jwks_file\":\"a.jwks\"}],"
             "\"rules\":[{\"name\":\"admin\",\"path_prefix\":\"/admin\",\"namespaces\":[\"ops\"]%s},"
             "{\"name\":\"everyone\"}]}",
             top, admin_extra);
    return load_text(name, json);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg-polpath-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    now = (int64_t)time(NULL);
    key = tg_keygen("p256");
    cr_assert_not_null(key);
    tg_jwk_opts opts = {.kid = "a1", .alg = "ES256", .use = "sig"};
    char *jwks = tg_jwks(&key, &opts, 1);
    cr_assert_not_null(jwks);
    write_text("a.jwks", jwks);
    free(jwks);
    strict_snap = load("strict.json", "", "");
    keep_snap = load("keep.json", "\"escaped_slashes\":\"keep\",", "");
    case_snap = load("case.json", "", ",\"ignore_case\":true");
    char payload[512];
    snprintf(
        payload, sizeof payload,
        "{\"iss\":\"" ISS "\",\"sub\":\"system:serviceaccount:default:app\",\"aud\":\"api\",\"exp\":%lld,"
        "\"iat\":%lld,\"kubernetes.io\":{\"namespace\":\"default\",\"serviceaccount\":{\"name\":\"app\"}}}",
        (long long)(now + 3600), (long long)now);
    token = tg_jws(key, "ES256", "{\"alg\":\"ES256\",\"kid\":\"a1\"}", payload);
    cr_assert_not_null(token);
    authz_arena_init(&arena, NULL, 0, 64 * 1024);
}

static void teardown(void)
{
    authz_arena_free(&arena);
    pol_snapshot_release(strict_snap);
    pol_snapshot_release(keep_snap);
    pol_snapshot_release(case_snap);
    EVP_PKEY_free(key);
    free(token);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(pol_decide_path, .init = setup, .fini = teardown);

static char auth_buf[4096];

/* A request for cluster a from 10.0.0.1; |authorization| may be NULL. */
static pol_decision decide_request(const pol_snapshot *s, const char *method, authz_slice path,
                                   const char *authorization, const pol_trace *trace)
{
    pol_request req = {
        .authorization = authz_slice_from_cstr(authorization),
        .cluster = AUTHZ_SLICE_LIT("a"),
        .source = AUTHZ_SLICE_LIT("10.0.0.1"),
        .method = authz_slice_from_cstr(method),
        .path = path,
        .now = now,
    };
    pol_decide_ctx ctx = {.arena = &arena, .trace = trace};
    pol_decision d;
    authz_arena_reset(&arena);
    pol_decide(s, &req, &ctx, &d);
    return d;
}

/* The same with the token of default:app. */
static pol_decision decide_path(const pol_snapshot *s, const char *method, authz_slice path,
                                const pol_trace *trace)
{
    snprintf(auth_buf, sizeof auth_buf, "Bearer %s", token);
    return decide_request(s, method, path, auth_buf, trace);
}

/* ---- the bypass catalogue ---------------------------------------------- */

typedef enum expect { ADMIN, OTHER, MALFORMED } expect;

typedef struct attempt {
    const char *path;
    size_t len; /* 0: strlen(path) */
    expect want;
    const char *seen; /* the normalized path the rules must see (ADMIN, OTHER) */
} attempt;

static const attempt attempts[] = {
    {"/admin/x", 0, ADMIN, "/admin/x"},
    /* merged slashes */
    {"//admin/x", 0, ADMIN, "/admin/x"},
    {"///admin//x", 0, ADMIN, "/admin/x"},
    /* dot segments, plain */
    {"/./admin/x", 0, ADMIN, "/admin/x"},
    {"/api/../admin/x", 0, ADMIN, "/admin/x"},
    {"/api/v1/../../admin/x", 0, ADMIN, "/admin/x"},
    {"/../admin/x", 0, ADMIN, "/admin/x"},
    {"/../../../admin", 0, ADMIN, "/admin"},
    {"/a/b/../../admin", 0, ADMIN, "/admin"},
    {"/admin/../public", 0, OTHER, "/public"},
    /* dot segments, encoded and mixed case */
    {"/%2e/admin/x", 0, ADMIN, "/admin/x"},
    {"/%2E%2E/admin/x", 0, ADMIN, "/admin/x"},
    {"/api/%2e%2e/admin/x", 0, ADMIN, "/admin/x"},
    {"/api/.%2E/admin/x", 0, ADMIN, "/admin/x"},
    {"/api/%2e./admin", 0, ADMIN, "/admin"},
    /* unreserved characters percent-encoded, either hex case */
    {"/%61dmin/x", 0, ADMIN, "/admin/x"},
    {"/adm%69n", 0, ADMIN, "/admin"},
    {"/admi%6E", 0, ADMIN, "/admin"},
    {"/%61%64%6d%69%6e/x", 0, ADMIN, "/admin/x"},
    {"/%61%64%6D%69%6E/x", 0, ADMIN, "/admin/x"},
    {"/%41dmin/x", 0, OTHER, "/Admin/x"},   /* a different path to a case-sensitive upstream */
    {"/%2561dmin", 0, OTHER, "/%2561dmin"}, /* double encoding stays literal */
    /* encoded slashes and backslashes */
    {"/admin%2Fx", 0, MALFORMED, NULL},
    {"/api%2F..%2Fadmin", 0, MALFORMED, NULL},
    {"/api%2f..%2fadmin", 0, MALFORMED, NULL},
    {"/api/..%5Cadmin", 0, MALFORMED, NULL},
    {"/api/..%5cadmin", 0, MALFORMED, NULL},
    /* raw backslashes, control bytes, NUL */
    {"/api\\..\\admin", 0, MALFORMED, NULL},
    {"/\\admin", 0, MALFORMED, NULL},
    {"/admin%00.png", 0, MALFORMED, NULL},
    {"/api\0/../admin", 14, MALFORMED, NULL},
    {"/adm\x7fin", 0, MALFORMED, NULL},
    {"/admin%0d%0a", 0, MALFORMED, NULL},
    /* overlong UTF-8 for '.' and '/' */
    {"/%c0%ae%c0%ae/admin", 0, MALFORMED, NULL},
    {"/api/%c0%ae%c0%ae/admin", 0, MALFORMED, NULL},
    {"/api/%e0%80%ae%e0%80%ae/admin", 0, MALFORMED, NULL},
    {"/api%c0%afadmin", 0, MALFORMED, NULL},
    {"/%C3%A9/../admin", 0, ADMIN, "/admin"}, /* well-formed UTF-8 is fine */
    /* ';' path parameters */
    {"/..;/admin/x", 0, MALFORMED, NULL},
    {"/api/..;/admin/x", 0, MALFORMED, NULL},
    {"/api/.;x/../admin", 0, MALFORMED, NULL},
    {"/;x/admin", 0, MALFORMED, NULL},
    {"/api/..;x;y/admin", 0, MALFORMED, NULL},
    {"/admin;jsessionid=1/x", 0, ADMIN, "/admin;jsessionid=1/x"},
    {"/api;x/../admin", 0, ADMIN, "/admin"},
    /* '?' and '#' */
    {"/public?/admin", 0, OTHER, "/public"},
    {"/public#/admin", 0, OTHER, "/public"},
    {"/admin?x=/public", 0, ADMIN, "/admin"},
    {"/admin#/../public", 0, ADMIN, "/admin"},
    {"/public/..?/admin", 0, OTHER, "/"},
    {"/%3Fx/../admin", 0, ADMIN, "/admin"},
    {"/pub%3F/admin", 0, OTHER, "/pub%3F/admin"},
    {"/admin?\x01", 0, MALFORMED, NULL},
    /* not a path */
    {"admin/x", 0, MALFORMED, NULL},
    {"", 0, MALFORMED, NULL},
    {"*", 0, MALFORMED, NULL}, /* only OPTIONS may ask about "*" */
    {"/ admin", 0, MALFORMED, NULL},
    {"/admin%", 0, MALFORMED, NULL},
    {"/admin%zz", 0, MALFORMED, NULL},
    {"/\xc3\xa9/../admin", 0, MALFORMED, NULL},
};

Test(pol_decide_path, bypass_catalogue)
{
    size_t n = sizeof attempts / sizeof attempts[0];
    cr_assert_geq(n, 30);
    for (size_t i = 0; i < n; i++) {
        const attempt *a = &attempts[i];
        authz_slice path = {a->path, a->len ? a->len : strlen(a->path)};
        pol_decision d = decide_path(strict_snap, "GET", path, NULL);
        switch (a->want) {
        case ADMIN:
            cr_expect(!d.allowed && d.status.reason == AUTHZ_REASON_FORBIDDEN && d.rule &&
                          authz_slice_eq_cstr(d.rule->name, "admin"),
                      "[%zu] %s: not held by rule admin: %s %s", i, a->path,
                      authz_reason_name(d.status.reason), d.status.message);
            break;
        case OTHER:
            cr_expect(d.allowed && d.rule && authz_slice_eq_cstr(d.rule->name, "everyone"),
                      "[%zu] %s: wanted rule everyone: %s %s", i, a->path, authz_reason_name(d.status.reason),
                      d.status.message);
            break;
        case MALFORMED:
            cr_expect(!d.allowed && d.status.reason == AUTHZ_REASON_MALFORMED_REQUEST && !d.rule,
                      "[%zu] %s: wanted malformed_request: %s %s", i, a->path,
                      authz_reason_name(d.status.reason), d.status.message);
            break;
        }
        if (a->seen)
            cr_expect(authz_slice_eq_cstr(d.path, a->seen), "[%zu] %s: rules saw %.*s, want %s", i, a->path,
                      (int)d.path.len, d.path.ptr, a->seen);
    }
}

Test(pol_decide_path, malformed_is_decided_before_the_token)
{
    /* No token at all: the path alone decides, and no key is tried. */
    pol_decision d = decide_request(strict_snap, "GET", AUTHZ_SLICE_LIT("/api/..;/admin"), NULL, NULL);
    cr_assert(!d.allowed);
    cr_assert_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST, "%s", d.status.message);
    cr_assert(strstr(d.status.message, "/api/..;/admin") && strstr(d.status.message, "at byte 5"), "%s",
              d.status.message);
    cr_assert_null(d.issuer_cluster);
}

Test(pol_decide_path, escaped_slashes_keep_matches_literally)
{
    pol_decision d = decide_path(keep_snap, "GET", AUTHZ_SLICE_LIT("/admin%2fx"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_FORBIDDEN, "%s", d.status.message);
    cr_expect(authz_slice_eq_cstr(d.path, "/admin%2Fx"));
    /* Kept encoded, so it is one segment: the ".." inside it resolves nothing. */
    d = decide_path(keep_snap, "GET", AUTHZ_SLICE_LIT("/api%2F..%2Fadmin"), NULL);
    cr_expect(d.allowed, "%s", d.status.message);
    cr_expect(authz_slice_eq_cstr(d.path, "/api%2F..%2Fadmin"));
    d = decide_path(keep_snap, "GET", AUTHZ_SLICE_LIT("/x/%5C/../../admin"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_FORBIDDEN, "%s", d.status.message);
    /* Everything else is still refused. */
    d = decide_path(keep_snap, "GET", AUTHZ_SLICE_LIT("/api\\admin"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST, "%s", d.status.message);
    d = decide_path(strict_snap, "GET", AUTHZ_SLICE_LIT("/admin%2fx"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST, "%s", d.status.message);
}

Test(pol_decide_path, ignore_case)
{
    static const char *const held[] = {"/ADMIN", "/Admin/x", "/aDmIn", "/%41DMIN", "//%41dmin/../ADMIN/x"};
    for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) {
        pol_decision d = decide_path(case_snap, "GET", authz_slice_from_cstr(held[i]), NULL);
        cr_expect(d.status.reason == AUTHZ_REASON_FORBIDDEN && d.rule &&
                      authz_slice_eq_cstr(d.rule->name, "admin"),
                  "%s: %s", held[i], d.status.message);
        /* Without ignore_case the same path is another resource. */
        d = decide_path(strict_snap, "GET", authz_slice_from_cstr(held[i]), NULL);
        cr_expect(d.allowed, "%s: %s", held[i], d.status.message);
    }
    pol_decision d = decide_path(case_snap, "GET", AUTHZ_SLICE_LIT("/adminx"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_FORBIDDEN, "byte prefix, as without ignore_case");
    d = decide_path(case_snap, "GET", AUTHZ_SLICE_LIT("/admi"), NULL);
    cr_expect(d.allowed, "%s", d.status.message);

    /* Both sides are folded: an upper-case prefix holds lower-case paths. */
    pol_snapshot *upper =
        load_text("upper.json", "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS
                                "\",\"audiences\":[\"api\"],\"jwks_file\":\"a.jwks\"}],\"rules\":["
                                "{\"name\":\"admin\",\"path_prefix\":\"/ADMIN\",\"ignore_case\":true,"
                                "\"namespaces\":[\"ops\"]},{\"name\":\"everyone\"}]}");
    d = decide_path(upper, "GET", AUTHZ_SLICE_LIT("/admin/x"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_FORBIDDEN, "%s", d.status.message);
    pol_snapshot_release(upper);
}

Test(pol_decide_path, connect_and_options_star)
{
    pol_decision d = decide_path(strict_snap, "CONNECT", AUTHZ_SLICE_LIT(""), NULL);
    cr_expect(d.allowed && d.rule && authz_slice_eq_cstr(d.rule->name, "everyone"), "%s", d.status.message);
    d = decide_path(strict_snap, "OPTIONS", AUTHZ_SLICE_LIT("*"), NULL);
    cr_expect(d.allowed && d.rule && authz_slice_eq_cstr(d.rule->name, "everyone"), "%s", d.status.message);
    d = decide_path(strict_snap, "GET", AUTHZ_SLICE_LIT("*"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST, "%s", d.status.message);
    d = decide_path(strict_snap, "OPTIONS", AUTHZ_SLICE_LIT("*/admin"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST, "%s", d.status.message);
    d = decide_path(strict_snap, "GET", AUTHZ_SLICE_LIT(""), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_MALFORMED_REQUEST, "%s", d.status.message);
}

Test(pol_decide_path, without_rules_the_path_is_not_judged)
{
    pol_snapshot *s = load_text("norules.json", "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS
                                                "\",\"audiences\":[\"api\"],\"jwks_file\":\"a.jwks\"}]}");
    pol_decision d = decide_path(s, "GET", AUTHZ_SLICE_LIT("/api%2F..%2Fadmin"), NULL);
    cr_expect(d.allowed, "%s", d.status.message);
    cr_expect_eq(d.path.len, 0);
    pol_snapshot_release(s);
}

Test(pol_decide_path, arena_exhaustion_is_internal_error)
{
    authz_arena_free(&arena);
    authz_arena_init(&arena, NULL, 16, 16);
    pol_decision d = decide_request(strict_snap, "GET",
                                    AUTHZ_SLICE_LIT("/a-path-longer-than-the-arena/admin"), NULL, NULL);
    cr_assert(!d.allowed);
    cr_assert_eq(d.status.reason, AUTHZ_REASON_INTERNAL_ERROR, "%s", d.status.message);
}

/* ---- explain's trace ----------------------------------------------------- */

typedef struct seen_steps {
    char text[2048];
} seen_steps;

static void on_step(void *ctx, const char *check, bool passed, const char *detail)
{
    seen_steps *s = ctx;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof s->text - used, "%s %s %s\n", passed ? "PASS" : "FAIL", check, detail);
}

Test(pol_decide_path, trace_names_the_normalized_path)
{
    seen_steps steps = {""};
    pol_trace trace = {.step = on_step, .ctx = &steps};
    decide_path(strict_snap, "GET", AUTHZ_SLICE_LIT("//api/%2e%2e/%61dmin/x?y=1"), &trace);
    cr_assert(strstr(steps.text, "PASS path rules match the normalized path /admin/x\n"), "%s", steps.text);
    cr_assert(strstr(steps.text, "FAIL rule rule admin does not allow default:app"), "%s", steps.text);

    steps.text[0] = '\0';
    decide_path(strict_snap, "GET", AUTHZ_SLICE_LIT("/api/..%2Fadmin"), &trace);
    cr_assert(strstr(steps.text, "FAIL path path /api/..%2Fadmin: encoded slash or backslash at byte 7\n"),
              "%s", steps.text);
    cr_assert_null(strstr(steps.text, "bearer"), "nothing after the path is checked: %s", steps.text);
}

/* ---- configuration -------------------------------------------------------- */

static void expect_config_error(const char *top, const char *rule, const char *needle)
{
    char json[2048], path[512], err[4096];
    snprintf(json, sizeof json,
             "{%s\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS "\",\"audiences\":[\"api\"],"
             "\"jwks_file\":\"a.jwks\"}],\"rules\":[{\"name\":\"r\"%s}]}",
             top, rule);
    write_text("bad.json", json);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    pol_snapshot *s = NULL;
    err[0] = '\0';
    cr_expect_neq(pol_config_load(path, &s, err, sizeof err), 0, "accepted: %s", json);
    cr_expect(strstr(err, needle), "wanted \"%s\" in: %s", needle, err);
    cr_expect(strstr(err, "bad.json: "), "the file is named: %s", err);
    pol_snapshot_release(s);
}

Test(pol_decide_path, config_defaults_and_values)
{
    cr_expect_eq(strict_snap->escaped_slashes, POL_PATH_SLASHES_REJECT);
    cr_expect_eq(keep_snap->escaped_slashes, POL_PATH_SLASHES_KEEP);
    cr_expect(!strict_snap->rules[0].ignore_case);
    cr_expect(case_snap->rules[0].ignore_case);
}

Test(pol_decide_path, config_errors)
{
    expect_config_error("\"escaped_slashes\":\"decode\",", "",
                        "escaped_slashes: must be \"reject\" or \"keep\" (\"decode\")");
    expect_config_error("\"escaped_slashes\":true,", "", "escaped_slashes: must be a string (true)");
    expect_config_error("\"escaped_slashes\":\"\",", "", "escaped_slashes: must not be empty");
    expect_config_error("", ",\"ignore_case\":\"yes\"",
                        "rules[0].ignore_case: must be true or false (\"yes\")");
    /* A prefix rules could never match as written. */
    expect_config_error("", ",\"path_prefix\":\"/api/../admin\"",
                        "rules[0].path_prefix: is not a normalized path; requests are matched as \"/admin\"");
    expect_config_error("", ",\"path_prefix\":\"//admin\"", "matched as \"/admin\"");
    expect_config_error("", ",\"path_prefix\":\"/%61dmin\"", "matched as \"/admin\"");
    expect_config_error("", ",\"path_prefix\":\"/a%3bb\"", "matched as \"/a%3Bb\"");
    expect_config_error("", ",\"path_prefix\":\"/admin?x\"", "matched as \"/admin\"");
    expect_config_error("", ",\"path_prefix\":\"/a\\\\b\"",
                        "rules[0].path_prefix: backslash in the path at byte 2");
    expect_config_error("", ",\"path_prefix\":\"/a%2Fb\"",
                        "rules[0].path_prefix: encoded slash or backslash at byte 2 (see escaped_slashes)");
}

Test(pol_decide_path, config_prefix_with_kept_escaped_slash)
{
    pol_snapshot *s = load_text(
        "keep2.json", "{\"escaped_slashes\":\"keep\",\"clusters\":[{\"name\":\"a\",\"issuer\":\"" ISS
                      "\",\"audiences\":[\"api\"],\"jwks_file\":\"a.jwks\"}],"
                      "\"rules\":[{\"name\":\"r\",\"path_prefix\":\"/repos/a%2Fb\"}]}");
    pol_decision d = decide_path(s, "GET", AUTHZ_SLICE_LIT("/repos/a%2fb/issues"), NULL);
    cr_expect(d.allowed && d.rule, "%s", d.status.message);
    d = decide_path(s, "GET", AUTHZ_SLICE_LIT("/repos/a/b/issues"), NULL);
    cr_expect_eq(d.status.reason, AUTHZ_REASON_FORBIDDEN, "%s", d.status.message);
    pol_snapshot_release(s);
}
