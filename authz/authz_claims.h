/* authz_claims: checks on the claims of a verified token.
 *
 * Each check is a separate call so `tokengate explain` can report each
 * one; authz_claims_check runs them all in the documented order. */
#ifndef AUTHZ_CLAIMS_H
#define AUTHZ_CLAIMS_H

#include <stdbool.h>
#include <stdint.h>

#include "authz_jwt.h"
#include "authz_reason.h"
#include "authz_slice.h"

typedef struct authz_claim_policy {
    authz_slice issuer;           /* exact, byte for byte */
    const authz_slice *audiences; /* the token must carry one of them */
    size_t audience_count;
    int64_t now;            /* seconds since the epoch */
    int64_t clock_skew;     /* seconds of leeway for exp, nbf and iat; negative = 0 */
    int64_t max_token_age;  /* <= 0 = off; else now - iat beyond it (+ skew) is stale */
    bool enforce_warnafter; /* kubernetes.io.warnafter passed => stale */
} authz_claim_policy;

/* iss equals |policy->issuer|: else missing_claim (absent) or unknown_issuer. */
int authz_claims_check_issuer(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status);

/* aud (string or array) contains one of the policy's audiences: else
 * missing_claim (absent) or audience_mismatch (incl. [] and ""). */
int authz_claims_check_audience(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status);

/* exp required and numeric (missing_claim / malformed_token), now < exp +
 * skew (expired); nbf and iat, when present, numeric (malformed_token) and
 * <= now + skew (not_yet_valid); with max_token_age set, iat required
 * (missing_claim) and now - iat <= max_token_age + skew (stale_token); with
 * enforce_warnafter, now <= kubernetes.io.warnafter (stale_token). Exact for
 * all int64 values. The message names the times involved (RFC 3339 UTC). */
int authz_claims_check_time(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status);

/* kubernetes.io carries namespace and serviceaccount.name (missing_claim);
 * sub, when present, equals system:serviceaccount:<ns>:<sa>
 * (malformed_token). */
int authz_claims_check_identity(const authz_jwt *jwt, authz_status *status);

/* The checks of authz_claims_check, in the order it runs them. */
typedef enum authz_claim_step {
    AUTHZ_CLAIM_ISSUER = 0,
    AUTHZ_CLAIM_TIME,
    AUTHZ_CLAIM_AUDIENCE,
    AUTHZ_CLAIM_IDENTITY,
} authz_claim_step;

/* Told the outcome of each check authz_claims_check_observed runs: |rc| 0
 * passed, -1 failed with |status| set (then no later check runs). */
typedef struct authz_claim_observer {
    void (*step)(void *ctx, authz_claim_step step, int rc, const authz_status *status);
    void *ctx;
} authz_claim_observer;

/* All of the above in order issuer, time, audience, identity. Returns 0 or
 * -1 with |status| set by the first failing check. */
int authz_claims_check(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status);

/* authz_claims_check, reporting each check to |observer| (NULL: none) as it
 * runs, so a caller that explains a decision follows the one order defined
 * here instead of repeating it. */
int authz_claims_check_observed(const authz_jwt *jwt, const authz_claim_policy *policy, authz_status *status,
                                const authz_claim_observer *observer);

#endif
