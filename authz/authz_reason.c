#include "authz_reason.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const reason_names[AUTHZ_REASON_COUNT] = {
    [AUTHZ_REASON_OK] = "ok",
    [AUTHZ_REASON_MISSING_TOKEN] = "missing_token",
    [AUTHZ_REASON_MALFORMED_TOKEN] = "malformed_token",
    [AUTHZ_REASON_UNSUPPORTED_ALG] = "unsupported_alg",
    [AUTHZ_REASON_UNKNOWN_KEY] = "unknown_key",
    [AUTHZ_REASON_BAD_SIGNATURE] = "bad_signature",
    [AUTHZ_REASON_UNKNOWN_ISSUER] = "unknown_issuer",
    [AUTHZ_REASON_CLUSTER_MISMATCH] = "cluster_mismatch",
    [AUTHZ_REASON_AUDIENCE_MISMATCH] = "audience_mismatch",
    [AUTHZ_REASON_EXPIRED] = "expired",
    [AUTHZ_REASON_NOT_YET_VALID] = "not_yet_valid",
    [AUTHZ_REASON_MISSING_CLAIM] = "missing_claim",
    [AUTHZ_REASON_STALE_TOKEN] = "stale_token",
    [AUTHZ_REASON_UNKNOWN_CLUSTER] = "unknown_cluster",
    [AUTHZ_REASON_SOURCE_NOT_ALLOWED] = "source_not_allowed",
    [AUTHZ_REASON_FORBIDDEN] = "forbidden",
    [AUTHZ_REASON_INTERNAL_ERROR] = "internal_error",
    [AUTHZ_REASON_MALFORMED_REQUEST] = "malformed_request",
    [AUTHZ_REASON_PEER_MISMATCH] = "peer_mismatch",
    [AUTHZ_REASON_PEER_MISSING] = "peer_missing",
    [AUTHZ_REASON_PROVIDER_NOT_ALLOWED] = "provider_not_allowed",
    [AUTHZ_REASON_CLAIM_MISMATCH] = "claim_mismatch",
};

/* One line per reason; test_authz_reason fails when a reason has none. */
static const char *const public_messages[AUTHZ_REASON_COUNT] = {
    [AUTHZ_REASON_OK] = "allowed",
    [AUTHZ_REASON_MISSING_TOKEN] = "the request carries no bearer token",
    [AUTHZ_REASON_MALFORMED_TOKEN] = "the credential is not one well-formed bearer token",
    [AUTHZ_REASON_UNSUPPORTED_ALG] = "the token's signing algorithm is not accepted",
    [AUTHZ_REASON_UNKNOWN_KEY] = "the token names no trusted signing key",
    [AUTHZ_REASON_BAD_SIGNATURE] = "the token's signature does not verify",
    [AUTHZ_REASON_UNKNOWN_ISSUER] = "the token's issuer is not trusted",
    [AUTHZ_REASON_CLUSTER_MISMATCH] = "the token was not issued by the cluster this request is for",
    [AUTHZ_REASON_AUDIENCE_MISMATCH] = "the token is not meant for this audience",
    [AUTHZ_REASON_EXPIRED] = "the token has expired",
    [AUTHZ_REASON_NOT_YET_VALID] = "the token is not valid yet",
    [AUTHZ_REASON_MISSING_CLAIM] = "the token lacks a required claim",
    [AUTHZ_REASON_STALE_TOKEN] = "the token is too old: use a fresh one",
    [AUTHZ_REASON_UNKNOWN_CLUSTER] = "the request is not routed to a known cluster",
    [AUTHZ_REASON_SOURCE_NOT_ALLOWED] = "requests from this address are not allowed",
    [AUTHZ_REASON_FORBIDDEN] = "the caller may not make this request",
    [AUTHZ_REASON_MALFORMED_REQUEST] = "the request cannot be judged safely",
    [AUTHZ_REASON_PEER_MISMATCH] = "the token belongs to another workload than the caller",
    [AUTHZ_REASON_PEER_MISSING] = "the caller presented no mesh identity",
    [AUTHZ_REASON_PROVIDER_NOT_ALLOWED] = "the token's identity provider is not trusted for this cluster",
    [AUTHZ_REASON_CLAIM_MISMATCH] = "the token's claims do not meet the identity provider's rules",
    [AUTHZ_REASON_INTERNAL_ERROR] = "the request could not be authorized; try again later",
};

const char *authz_reason_name(authz_reason reason)
{
    if ((unsigned)reason >= AUTHZ_REASON_COUNT)
        return reason_names[AUTHZ_REASON_INTERNAL_ERROR];
    return reason_names[reason];
}

authz_reason authz_reason_from_name(const char *name)
{
    for (unsigned i = 0; i < AUTHZ_REASON_COUNT; i++) {
        if (strcmp(reason_names[i], name) == 0)
            return (authz_reason)i;
    }
    return AUTHZ_REASON_COUNT;
}

int authz_reason_grpc_code(authz_reason reason)
{
    if (reason == AUTHZ_REASON_OK)
        return 0;
    if ((reason >= AUTHZ_REASON_MISSING_TOKEN && reason <= AUTHZ_REASON_STALE_TOKEN) ||
        reason == AUTHZ_REASON_CLAIM_MISMATCH)
        return 16;
    if ((reason >= AUTHZ_REASON_UNKNOWN_CLUSTER && reason <= AUTHZ_REASON_FORBIDDEN) ||
        reason == AUTHZ_REASON_PEER_MISMATCH || reason == AUTHZ_REASON_PEER_MISSING ||
        reason == AUTHZ_REASON_PROVIDER_NOT_ALLOWED)
        return 7;
    if (reason == AUTHZ_REASON_MALFORMED_REQUEST)
        return 3;
    return 13;
}

int authz_reason_http_status(authz_reason reason)
{
    switch (authz_reason_grpc_code(reason)) {
    case 0:
        return 200;
    case 16:
        return 401;
    case 7:
        return 403;
    case 3:
        return 400;
    default:
        return 503;
    }
}

const char *authz_reason_public_message(authz_reason reason)
{
    if ((unsigned)reason >= AUTHZ_REASON_COUNT || !public_messages[reason])
        return public_messages[AUTHZ_REASON_INTERNAL_ERROR];
    return public_messages[reason];
}

int authz_status_set(authz_status *status, authz_reason reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(status->message, sizeof status->message, fmt, ap);
    va_end(ap);
    if (n < 0)
        status->message[0] = '\0';
    for (char *c = status->message; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    }
    status->reason = reason;
    return reason == AUTHZ_REASON_OK ? 0 : -1;
}

int authz_status_ok(authz_status *status)
{
    status->reason = AUTHZ_REASON_OK;
    memcpy(status->message, "ok", sizeof "ok");
    return 0;
}
