#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "authz_b64.h"
#include "authz_claims.h"

#define NOW INT64_C(1700000000)
#define ISSUER "https://kube.example"

static const authz_slice expected_auds[] = {AUTHZ_SLICE_LIT("api"), AUTHZ_SLICE_LIT("billing")};

static authz_jwt_str str(const char *s)
{
    authz_jwt_str out = {true, authz_slice_from_cstr(s)};
    return out;
}

static authz_jwt_time at(int64_t s)
{
    authz_jwt_time t = {AUTHZ_JWT_TIME_VALID, s};
    return t;
}

/* A token that passes every check under policy(); |aud| is static storage. */
static authz_jwt good_jwt(void)
{
    static authz_slice aud[2] = {AUTHZ_SLICE_LIT("other"), AUTHZ_SLICE_LIT("api")};
    authz_jwt jwt;
    memset(&jwt, 0, sizeof jwt);
    jwt.iss = str(ISSUER);
    jwt.sub = str("system:serviceaccount:shop:cart");
    jwt.aud = aud;
    jwt.aud_count = 2;
    jwt.aud_present = true;
    jwt.exp = at(NOW + 3600);
    jwt.nbf = at(NOW - 10);
    jwt.iat = at(NOW - 10);
    jwt.k8s_present = true;
    jwt.k8s_namespace = str("shop");
    jwt.k8s_sa_name = str("cart");
    return jwt;
}

static authz_claim_policy policy(void)
{
    authz_claim_policy p = {
        .issuer = AUTHZ_SLICE_LIT(ISSUER),
        .audiences = expected_auds,
        .audience_count = 2,
        .now = NOW,
        .clock_skew = 60,
        .max_token_age = 0,
        .enforce_warnafter = false,
    };
    return p;
}

typedef int (*check_fn)(const authz_jwt *, const authz_claim_policy *, authz_status *);

static authz_reason run(check_fn fn, const authz_jwt *jwt, const authz_claim_policy *p, authz_status *st)
{
    int rc = fn(jwt, p, st);
    cr_assert_eq(rc == 0, st->reason == AUTHZ_REASON_OK, "rc %d reason %s", rc,
                 authz_reason_name(st->reason));
    return st->reason;
}

static void expect_time(const authz_jwt *jwt, const authz_claim_policy *p, authz_reason want)
{
    authz_status st;
    authz_reason got = run(authz_claims_check_time, jwt, p, &st);
    cr_assert_eq(got, want, "got %s (%s), want %s", authz_reason_name(got), st.message,
                 authz_reason_name(want));
}

Test(claims, good_token_passes_all)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    authz_status st;
    cr_assert_eq(authz_claims_check(&jwt, &p, &st), 0, "%s", st.message);
    cr_assert_eq(st.reason, AUTHZ_REASON_OK);
}

Test(claims, issuer)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    authz_status st;
    cr_assert_eq(run(authz_claims_check_issuer, &jwt, &p, &st), AUTHZ_REASON_OK);

    jwt.iss.present = false;
    cr_assert_eq(run(authz_claims_check_issuer, &jwt, &p, &st), AUTHZ_REASON_MISSING_CLAIM);

    const char *variants[] = {
        "https://kube.example/", "https://kube.exampl", "https://kube.example.evil", "HTTPS://kube.example",
        "https://KUBE.example",  "http://kube.example", " https://kube.example",     "",
        "https://kube.example\n"};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        jwt.iss = str(variants[i]);
        cr_assert_eq(run(authz_claims_check_issuer, &jwt, &p, &st), AUTHZ_REASON_UNKNOWN_ISSUER, "[%s]",
                     variants[i]);
    }
    jwt.iss = str("https://evil.example");
    run(authz_claims_check_issuer, &jwt, &p, &st);
    cr_assert(strstr(st.message, "https://evil.example") && strstr(st.message, ISSUER), "%s", st.message);
}

Test(claims, issuer_message_bounded_and_sanitized)
{
    char long_iss[600];
    memset(long_iss, 'x', sizeof long_iss - 1);
    long_iss[sizeof long_iss - 1] = '\0';
    long_iss[3] = '\x1b';
    authz_jwt jwt = good_jwt();
    jwt.iss = str(long_iss);
    authz_claim_policy p = policy();
    authz_status st;
    cr_assert_eq(run(authz_claims_check_issuer, &jwt, &p, &st), AUTHZ_REASON_UNKNOWN_ISSUER);
    cr_assert(strstr(st.message, ISSUER), "configured issuer must survive a long token issuer: %s",
              st.message);
    cr_assert_null(strchr(st.message, '\x1b'));
}

Test(claims, audience)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    authz_status st;
    cr_assert_eq(run(authz_claims_check_audience, &jwt, &p, &st), AUTHZ_REASON_OK);

    authz_slice single = AUTHZ_SLICE_LIT("billing");
    jwt.aud = &single;
    jwt.aud_count = 1;
    cr_assert_eq(run(authz_claims_check_audience, &jwt, &p, &st), AUTHZ_REASON_OK);

    authz_slice wrong[2] = {AUTHZ_SLICE_LIT("apis"), AUTHZ_SLICE_LIT("API")};
    jwt.aud = wrong;
    jwt.aud_count = 2;
    cr_assert_eq(run(authz_claims_check_audience, &jwt, &p, &st), AUTHZ_REASON_AUDIENCE_MISMATCH);
    cr_assert(strstr(st.message, "\"apis\""), "%s", st.message);
    cr_assert(strstr(st.message, "\"api\"") && strstr(st.message, "\"billing\""), "%s", st.message);

    jwt.aud_present = false;
    jwt.aud = NULL;
    jwt.aud_count = 0;
    cr_assert_eq(run(authz_claims_check_audience, &jwt, &p, &st), AUTHZ_REASON_MISSING_CLAIM);
}

Test(claims, audience_empty_forms)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    authz_status st;

    jwt.aud = NULL; /* aud: [] */
    jwt.aud_count = 0;
    cr_assert_eq(run(authz_claims_check_audience, &jwt, &p, &st), AUTHZ_REASON_AUDIENCE_MISMATCH);

    authz_slice empty = {"", 0}; /* aud: "" or [""] */
    jwt.aud = &empty;
    jwt.aud_count = 1;
    cr_assert_eq(run(authz_claims_check_audience, &jwt, &p, &st), AUTHZ_REASON_AUDIENCE_MISMATCH);

    /* An empty audience never matches, even against an empty expectation. */
    authz_slice empty_expected = {NULL, 0};
    p.audiences = &empty_expected;
    p.audience_count = 1;
    cr_assert_eq(run(authz_claims_check_audience, &jwt, &p, &st), AUTHZ_REASON_AUDIENCE_MISMATCH);

    p.audience_count = 0;
    jwt = good_jwt();
    cr_assert_eq(run(authz_claims_check_audience, &jwt, &p, &st), AUTHZ_REASON_AUDIENCE_MISMATCH);
}

Test(claims, exp_required)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    authz_status st;
    jwt.exp.state = AUTHZ_JWT_TIME_ABSENT;
    cr_assert_eq(run(authz_claims_check_time, &jwt, &p, &st), AUTHZ_REASON_MISSING_CLAIM);
    cr_assert(strstr(st.message, "no exp"), "%s", st.message);
    jwt.exp.state = AUTHZ_JWT_TIME_INVALID;
    expect_time(&jwt, &p, AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(claims, nbf_iat_invalid)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    jwt.nbf.state = AUTHZ_JWT_TIME_INVALID;
    expect_time(&jwt, &p, AUTHZ_REASON_MALFORMED_TOKEN);
    jwt = good_jwt();
    jwt.iat.state = AUTHZ_JWT_TIME_INVALID;
    expect_time(&jwt, &p, AUTHZ_REASON_MALFORMED_TOKEN);
    jwt = good_jwt();
    jwt.nbf.state = AUTHZ_JWT_TIME_ABSENT;
    jwt.iat.state = AUTHZ_JWT_TIME_ABSENT;
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
}

Test(claims, expiry_skew_boundary)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    jwt.exp = at(NOW - 59); /* now < exp + 60 */
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
    jwt.exp = at(NOW - 60); /* now == exp + 60 */
    expect_time(&jwt, &p, AUTHZ_REASON_EXPIRED);
    p.clock_skew = 0;
    jwt.exp = at(NOW + 1);
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
    jwt.exp = at(NOW);
    expect_time(&jwt, &p, AUTHZ_REASON_EXPIRED);
    p.clock_skew = -100; /* treated as no leeway */
    expect_time(&jwt, &p, AUTHZ_REASON_EXPIRED);
    jwt.exp = at(-5);
    expect_time(&jwt, &p, AUTHZ_REASON_EXPIRED);
}

Test(claims, expired_message_names_times)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    p.now = 1700000000;                /* 2023-11-14T22:13:20Z */
    jwt.exp = at(INT64_C(1699999000)); /* 2023-11-14T21:56:40Z */
    authz_status st;
    cr_assert_eq(run(authz_claims_check_time, &jwt, &p, &st), AUTHZ_REASON_EXPIRED);
    cr_assert(strstr(st.message, "2023-11-14T21:56:40Z"), "%s", st.message);
    cr_assert(strstr(st.message, "2023-11-14T22:13:20Z"), "%s", st.message);

    jwt.exp = at(-1); /* 1969-12-31T23:59:59Z */
    run(authz_claims_check_time, &jwt, &p, &st);
    cr_assert(strstr(st.message, "1969-12-31T23:59:59Z"), "%s", st.message);

    jwt.exp = at(951782400); /* leap day 2000-02-29 */
    run(authz_claims_check_time, &jwt, &p, &st);
    cr_assert(strstr(st.message, "2000-02-29T00:00:00Z"), "%s", st.message);
}

Test(claims, not_yet_valid_skew_boundary)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    jwt.nbf = at(NOW + 60);
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
    jwt.nbf = at(NOW + 61);
    expect_time(&jwt, &p, AUTHZ_REASON_NOT_YET_VALID);
    jwt = good_jwt();
    jwt.iat = at(NOW + 60);
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
    jwt.iat = at(NOW + 61);
    expect_time(&jwt, &p, AUTHZ_REASON_NOT_YET_VALID);
}

Test(claims, int64_extremes)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();

    p.clock_skew = INT64_MAX;
    jwt.exp = at(INT64_MIN);
    p.now = INT64_MAX;
    expect_time(&jwt, &p, AUTHZ_REASON_EXPIRED); /* now - exp = 2^64 - 1 >= skew */

    p.now = INT64_MAX - 1;
    jwt.exp = at(INT64_MAX);
    jwt.nbf = at(INT64_MIN);
    jwt.iat = at(INT64_MIN);
    expect_time(&jwt, &p, AUTHZ_REASON_OK);

    p.clock_skew = 0;
    p.now = INT64_MIN;
    jwt.exp = at(INT64_MIN);
    expect_time(&jwt, &p, AUTHZ_REASON_EXPIRED);
    jwt.exp = at(INT64_MAX);
    jwt.nbf = at(INT64_MAX);
    expect_time(&jwt, &p, AUTHZ_REASON_NOT_YET_VALID);
    jwt.nbf = at(INT64_MIN);
    jwt.iat = at(INT64_MAX);
    expect_time(&jwt, &p, AUTHZ_REASON_NOT_YET_VALID);

    /* exp + skew would overflow: never expired. */
    p.now = INT64_MAX;
    p.clock_skew = 10;
    jwt.iat = at(0);
    jwt.exp = at(INT64_MAX - 5);
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
    p.max_token_age = INT64_MAX;
    jwt.iat = at(INT64_MIN);
    expect_time(&jwt, &p, AUTHZ_REASON_STALE_TOKEN); /* age 2^64 - 1 > 2^63 + 9 */
    authz_status st;
    run(authz_claims_check_time, &jwt, &p, &st);
    cr_assert(strlen(st.message) > 0);
}

Test(claims, max_token_age)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    p.max_token_age = 3600;
    jwt.iat = at(NOW - 3600 - 60);
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
    jwt.iat = at(NOW - 3600 - 61);
    expect_time(&jwt, &p, AUTHZ_REASON_STALE_TOKEN);
    jwt.iat.state = AUTHZ_JWT_TIME_ABSENT;
    expect_time(&jwt, &p, AUTHZ_REASON_MISSING_CLAIM);
    p.max_token_age = 0;
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
    p.max_token_age = -1;
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
}

Test(claims, warnafter)
{
    authz_jwt jwt = good_jwt();
    authz_claim_policy p = policy();
    jwt.k8s_warnafter = at(NOW - 1);
    expect_time(&jwt, &p, AUTHZ_REASON_OK); /* not enforced */
    p.enforce_warnafter = true;
    expect_time(&jwt, &p, AUTHZ_REASON_STALE_TOKEN);
    jwt.k8s_warnafter = at(NOW);
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
    jwt.k8s_warnafter.state = AUTHZ_JWT_TIME_ABSENT;
    jwt.k8s_warnafter.seconds = 0;
    expect_time(&jwt, &p, AUTHZ_REASON_OK);
}

Test(claims, identity)
{
    authz_jwt jwt = good_jwt();
    authz_status st;
    cr_assert_eq(authz_claims_check_identity(&jwt, &st), 0, "%s", st.message);

    jwt.sub.present = false;
    cr_assert_eq(authz_claims_check_identity(&jwt, &st), 0);

    const char *bad_subs[] = {"system:serviceaccount:shop:carts", "system:serviceaccount:shop:car",
                              "system:serviceaccount:shop",       "system:serviceaccount:sho:cart",
                              "system:serviceaccount:shopcart",   "system:serviceaccounts:shop:cart",
                              "System:serviceaccount:shop:cart",  "",
                              "system:serviceaccount:other:cart"};
    for (size_t i = 0; i < sizeof bad_subs / sizeof bad_subs[0]; i++) {
        jwt.sub = str(bad_subs[i]);
        cr_assert_eq(authz_claims_check_identity(&jwt, &st), -1);
        cr_assert_eq(st.reason, AUTHZ_REASON_MALFORMED_TOKEN, "[%s]", bad_subs[i]);
    }
}

Test(claims, identity_missing)
{
    authz_status st;
    authz_jwt jwt = good_jwt();
    jwt.k8s_present = false;
    jwt.k8s_namespace.present = false;
    jwt.k8s_sa_name.present = false;
    cr_assert_eq(authz_claims_check_identity(&jwt, &st), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_MISSING_CLAIM);

    jwt = good_jwt();
    jwt.k8s_namespace.present = false;
    authz_claims_check_identity(&jwt, &st);
    cr_assert_eq(st.reason, AUTHZ_REASON_MISSING_CLAIM);
    jwt.k8s_namespace = str("");
    authz_claims_check_identity(&jwt, &st);
    cr_assert_eq(st.reason, AUTHZ_REASON_MISSING_CLAIM);

    jwt = good_jwt();
    jwt.k8s_sa_name.present = false;
    authz_claims_check_identity(&jwt, &st);
    cr_assert_eq(st.reason, AUTHZ_REASON_MISSING_CLAIM);
    jwt.k8s_sa_name = str("");
    authz_claims_check_identity(&jwt, &st);
    cr_assert_eq(st.reason, AUTHZ_REASON_MISSING_CLAIM);
}

Test(claims, check_order)
{
    authz_claim_policy p = policy();
    authz_status st;
    authz_jwt jwt = good_jwt();
    /* Everything wrong: the issuer is reported first. */
    jwt.iss = str("https://other");
    jwt.exp = at(0);
    jwt.aud_count = 0;
    jwt.k8s_present = false;
    cr_assert_eq(authz_claims_check(&jwt, &p, &st), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_UNKNOWN_ISSUER);
    jwt.iss = str(ISSUER);
    authz_claims_check(&jwt, &p, &st);
    cr_assert_eq(st.reason, AUTHZ_REASON_EXPIRED);
    jwt.exp = at(NOW + 10);
    authz_claims_check(&jwt, &p, &st);
    cr_assert_eq(st.reason, AUTHZ_REASON_AUDIENCE_MISMATCH);
    jwt.aud_count = 2;
    authz_claims_check(&jwt, &p, &st);
    cr_assert_eq(st.reason, AUTHZ_REASON_MISSING_CLAIM);
    jwt.k8s_present = true;
    cr_assert_eq(authz_claims_check(&jwt, &p, &st), 0);
}

/* Records what authz_claims_check_observed reports. */
typedef struct observed_steps {
    authz_claim_step steps[8];
    int rcs[8];
    size_t count;
} observed_steps;

static void record_step(void *ctx, authz_claim_step step, int rc, const authz_status *status)
{
    observed_steps *o = ctx;
    cr_assert_lt(o->count, 8u);
    if (rc != 0)
        cr_assert_neq(status->reason, AUTHZ_REASON_OK);
    o->steps[o->count] = step;
    o->rcs[o->count++] = rc;
}

/* The observer sees every check in the order authz_claims_check runs them,
 * and nothing after the first failure: explain's trace follows this order. */
Test(claims, observer_follows_the_check_order)
{
    authz_claim_policy p = policy();
    authz_status st;
    authz_jwt jwt = good_jwt();
    observed_steps o = {0};
    authz_claim_observer observer = {record_step, &o};
    cr_assert_eq(authz_claims_check_observed(&jwt, &p, &st, &observer), 0, "%s", st.message);
    cr_assert_eq(o.count, 4u);
    const authz_claim_step order[] = {AUTHZ_CLAIM_ISSUER, AUTHZ_CLAIM_TIME, AUTHZ_CLAIM_AUDIENCE,
                                      AUTHZ_CLAIM_IDENTITY};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(o.steps[i], order[i], "step %zu", i);
        cr_assert_eq(o.rcs[i], 0);
    }

    jwt.aud_count = 0;
    o.count = 0;
    cr_assert_eq(authz_claims_check_observed(&jwt, &p, &st, &observer), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_AUDIENCE_MISMATCH);
    cr_assert_eq(o.count, 3u, "no check runs after the first failure");
    cr_assert_eq(o.steps[2], AUTHZ_CLAIM_AUDIENCE);
    cr_assert_eq(o.rcs[2], -1);
    cr_assert_eq(authz_claims_check_observed(&jwt, &p, &st, NULL), -1, "no observer is fine");
}

/* End to end through the parser: a legacy secret-based token is refused. */
Test(claims, legacy_token_parsed_and_refused)
{
    const char *header = "{\"alg\":\"RS256\"}";
    const char *payload = "{\"iss\":\"kubernetes/serviceaccount\","
                          "\"kubernetes.io/serviceaccount/namespace\":\"shop\","
                          "\"sub\":\"system:serviceaccount:shop:cart\"}";
    char token[512];
    size_t pos = authz_b64url_encode((const unsigned char *)header, strlen(header), token, sizeof token);
    token[pos++] = '.';
    pos +=
        authz_b64url_encode((const unsigned char *)payload, strlen(payload), token + pos, sizeof token - pos);
    snprintf(token + pos, sizeof token - pos, ".AAAA");

    authz_jwt jwt;
    authz_status st;
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 0);
    cr_assert_eq(authz_jwt_parse(authz_slice_from_cstr(token), NULL, &arena, &jwt, &st), 0, "%s", st.message);
    authz_claim_policy p = policy();
    p.issuer = AUTHZ_SLICE_LIT("kubernetes/serviceaccount");
    cr_assert_eq(authz_claims_check(&jwt, &p, &st), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_MISSING_CLAIM);
    cr_assert(strstr(st.message, "legacy"), "%s", st.message);
    authz_arena_free(&arena);
}
