#include "authz_claims.h"

#include <stdio.h>

#include "authz_time.h"

/* Longest claim or configured value quoted in a message. */
#define CLAIMS_SHOWN 80
/* Longest single expected audience quoted in a message. */
#define CLAIMS_AUD_SHOWN 48

static int shown(authz_slice s, size_t max)
{
    return (int)(s.len < max ? s.len : max);
}

/* The slice's bytes for "%.*s"; an empty slice may carry a NULL pointer. */
static const char *text(authz_slice s)
{
    return s.ptr ? s.ptr : "";
}

/* |a| - |b| as an exact unsigned value; callers ensure a >= b. */
static uint64_t udiff(int64_t a, int64_t b)
{
    return (uint64_t)a - (uint64_t)b;
}

/* Policy leeway; a negative value is treated as none. */
static uint64_t leeway(int64_t v)
{
    return v > 0 ? (uint64_t)v : 0;
}

int authz_claims_check_issuer(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status)
{
    if (!jwt->iss.present)
        return authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM, "token has no iss");
    if (!authz_slice_eq(jwt->iss.value, policy->issuer))
        return authz_status_set(status, AUTHZ_REASON_UNKNOWN_ISSUER, "token issuer \"%.*s\" is not \"%.*s\"",
                                shown(jwt->iss.value, CLAIMS_SHOWN), text(jwt->iss.value),
                                shown(policy->issuer, CLAIMS_SHOWN), text(policy->issuer));
    return authz_status_ok(status);
}

int authz_claims_check_audience(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status)
{
    if (!jwt->aud_present)
        return authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM, "token has no aud");
    for (size_t i = 0; i < jwt->aud_count; i++) {
        /* An empty audience never matches, even a misconfigured empty expectation. */
        if (jwt->aud[i].len == 0)
            continue;
        for (size_t j = 0; j < policy->audience_count; j++) {
            if (authz_slice_eq(jwt->aud[i], policy->audiences[j]))
                return authz_status_ok(status);
        }
    }

    char expected[AUTHZ_MESSAGE_MAX] = "";
    size_t pos = 0;
    for (size_t j = 0; j < policy->audience_count && pos < sizeof expected; j++) {
        int n = snprintf(expected + pos, sizeof expected - pos, "%s\"%.*s\"", j ? ", " : "",
                         shown(policy->audiences[j], CLAIMS_AUD_SHOWN), text(policy->audiences[j]));
        if (n < 0)
            break;
        pos += (size_t)n;
    }
    if (jwt->aud_count == 0)
        return authz_status_set(status, AUTHZ_REASON_AUDIENCE_MISMATCH,
                                "token aud is empty; expected one of %s", expected);
    return authz_status_set(
        status, AUTHZ_REASON_AUDIENCE_MISMATCH, "token audience \"%.*s\" (%zu in total) is not one of %s",
        shown(jwt->aud[0], CLAIMS_AUD_SHOWN), text(jwt->aud[0]), jwt->aud_count, expected);
}

int authz_claims_check_time(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status)
{
    char t1[AUTHZ_TIME_TEXT_SIZE], t2[AUTHZ_TIME_TEXT_SIZE];
    int64_t now = policy->now;
    uint64_t skew = leeway(policy->clock_skew);

    if (jwt->exp.state == AUTHZ_JWT_TIME_ABSENT)
        return authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM,
                                "token has no exp (legacy secret-based tokens are not accepted)");
    if (jwt->exp.state == AUTHZ_JWT_TIME_INVALID)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "exp is not a NumericDate");
    if (jwt->nbf.state == AUTHZ_JWT_TIME_INVALID)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "nbf is not a NumericDate");
    if (jwt->iat.state == AUTHZ_JWT_TIME_INVALID)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "iat is not a NumericDate");

    int64_t exp = jwt->exp.seconds;
    /* now >= exp + skew, without computing the sum. */
    if (now >= exp && udiff(now, exp) >= skew)
        return authz_status_set(status, AUTHZ_REASON_EXPIRED, "token expired at %s, now %s",
                                authz_time_text(exp, t1, sizeof t1), authz_time_text(now, t2, sizeof t2));

    if (jwt->nbf.state == AUTHZ_JWT_TIME_VALID && jwt->nbf.seconds > now &&
        udiff(jwt->nbf.seconds, now) > skew)
        return authz_status_set(status, AUTHZ_REASON_NOT_YET_VALID, "token not valid before %s, now %s",
                                authz_time_text(jwt->nbf.seconds, t1, sizeof t1),
                                authz_time_text(now, t2, sizeof t2));
    if (jwt->iat.state == AUTHZ_JWT_TIME_VALID && jwt->iat.seconds > now &&
        udiff(jwt->iat.seconds, now) > skew)
        return authz_status_set(
            status, AUTHZ_REASON_NOT_YET_VALID, "token issued in the future at %s, now %s",
            authz_time_text(jwt->iat.seconds, t1, sizeof t1), authz_time_text(now, t2, sizeof t2));

    if (policy->max_token_age > 0) {
        if (jwt->iat.state != AUTHZ_JWT_TIME_VALID)
            return authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM,
                                    "token has no iat but a maximum token age is configured");
        /* Both terms are below 2^63, so the sum fits in uint64_t. */
        uint64_t limit = (uint64_t)policy->max_token_age + skew;
        int64_t iat = jwt->iat.seconds;
        if (now > iat && udiff(now, iat) > limit)
            return authz_status_set(status, AUTHZ_REASON_STALE_TOKEN,
                                    "token issued at %s is older than the maximum age of %lld s",
                                    authz_time_text(iat, t1, sizeof t1), (long long)policy->max_token_age);
    }

    if (policy->enforce_warnafter && jwt->k8s_warnafter.state == AUTHZ_JWT_TIME_VALID &&
        now > jwt->k8s_warnafter.seconds)
        return authz_status_set(
            status, AUTHZ_REASON_STALE_TOKEN, "token passed kubernetes.io.warnafter %s, now %s",
            authz_time_text(jwt->k8s_warnafter.seconds, t1, sizeof t1), authz_time_text(now, t2, sizeof t2));
    return authz_status_ok(status);
}

int authz_claims_check_identity(const authz_jwt *jwt, authz_status *status)
{
    static const char prefix[] = "system:serviceaccount:";
    const size_t prefix_len = sizeof prefix - 1;

    if (!jwt->k8s_present)
        return authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM, "token has no kubernetes.io claim");
    authz_slice ns = jwt->k8s_namespace.value;
    authz_slice sa = jwt->k8s_sa_name.value;
    if (!jwt->k8s_namespace.present || ns.len == 0)
        return authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM, "token has no kubernetes.io.namespace");
    if (!jwt->k8s_sa_name.present || sa.len == 0)
        return authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM,
                                "token has no kubernetes.io.serviceaccount.name");
    if (jwt->sub.present) {
        authz_slice sub = jwt->sub.value;
        bool same =
            sub.len == prefix_len + ns.len + 1 + sa.len && memcmp(text(sub), prefix, prefix_len) == 0 &&
            memcmp(text(sub) + prefix_len, text(ns), ns.len) == 0 && text(sub)[prefix_len + ns.len] == ':' &&
            memcmp(text(sub) + prefix_len + ns.len + 1, text(sa), sa.len) == 0;
        if (!same)
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                    "sub \"%.*s\" does not match kubernetes.io (%.*s/%.*s)",
                                    shown(sub, CLAIMS_SHOWN), text(sub), shown(ns, CLAIMS_AUD_SHOWN),
                                    text(ns), shown(sa, CLAIMS_AUD_SHOWN), text(sa));
    }
    return authz_status_ok(status);
}

int authz_claims_check_observed(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status,
                                const authz_claim_observer *observer)
{
    for (authz_claim_step step = AUTHZ_CLAIM_ISSUER; step <= AUTHZ_CLAIM_IDENTITY; step++) {
        int rc;
        switch (step) {
        case AUTHZ_CLAIM_ISSUER:
            rc = authz_claims_check_issuer(jwt, policy, status);
            break;
        case AUTHZ_CLAIM_TIME:
            rc = authz_claims_check_time(jwt, policy, status);
            break;
        case AUTHZ_CLAIM_AUDIENCE:
            rc = authz_claims_check_audience(jwt, policy, status);
            break;
        default:
            rc = authz_claims_check_identity(jwt, status);
            break;
        }
        if (observer && observer->step)
            observer->step(observer->ctx, step, rc, status);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int authz_claims_check(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status)
{
    return authz_claims_check_observed(jwt, policy, status, NULL);
}
