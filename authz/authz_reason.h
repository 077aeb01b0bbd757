/* authz_reason: the stable reason codes of a decision.
 *
 * The names are part of the public contract (README, logs, headers,
 * explain --json): never rename one. */
#ifndef AUTHZ_REASON_H
#define AUTHZ_REASON_H

typedef enum authz_reason {
    AUTHZ_REASON_OK = 0,
    /* 16 UNAUTHENTICATED, HTTP 401 */
    AUTHZ_REASON_MISSING_TOKEN,
    AUTHZ_REASON_MALFORMED_TOKEN,
    AUTHZ_REASON_UNSUPPORTED_ALG,
    AUTHZ_REASON_UNKNOWN_KEY,
    AUTHZ_REASON_BAD_SIGNATURE,
    AUTHZ_REASON_UNKNOWN_ISSUER,
    AUTHZ_REASON_CLUSTER_MISMATCH,
    AUTHZ_REASON_AUDIENCE_MISMATCH,
    AUTHZ_REASON_EXPIRED,
    AUTHZ_REASON_NOT_YET_VALID,
    AUTHZ_REASON_MISSING_CLAIM,
    AUTHZ_REASON_STALE_TOKEN,
    /* 7 PERMISSION_DENIED, HTTP 403 */
    AUTHZ_REASON_UNKNOWN_CLUSTER,
    AUTHZ_REASON_SOURCE_NOT_ALLOWED,
    AUTHZ_REASON_FORBIDDEN,
    /* 13 INTERNAL, HTTP 503: we could not decide (out of memory, ...), so we deny. */
    AUTHZ_REASON_INTERNAL_ERROR,
    /* 3 INVALID_ARGUMENT, HTTP 400: the request itself cannot be judged safely
     * (a path that does not normalize). Appended: the values above are stable. */
    AUTHZ_REASON_MALFORMED_REQUEST,
    /* 7 PERMISSION_DENIED, HTTP 403: the caller's mesh identity (peer_binding)
     * names another workload than the token, or is absent where required. */
    AUTHZ_REASON_PEER_MISMATCH,
    AUTHZ_REASON_PEER_MISSING,
    /* 7, HTTP 403: a genuine identity-provider token at a cluster its
     * provider is not trusted for. */
    AUTHZ_REASON_PROVIDER_NOT_ALLOWED,
    /* 16, HTTP 401: an identity-provider token failing a claim validation
     * rule (or email_verified false with an email username). */
    AUTHZ_REASON_CLAIM_MISMATCH,
    AUTHZ_REASON_COUNT
} authz_reason;

/* The reason's code, e.g. "cluster_mismatch"; "ok" for AUTHZ_REASON_OK.
 * Out-of-range values give "internal_error". Static storage. */
const char *authz_reason_name(authz_reason reason);

/* Parses a code back (for tests and tools). Returns AUTHZ_REASON_COUNT when
 * |name| is not a code. */
authz_reason authz_reason_from_name(const char *name);

/* google.rpc.Code for CheckResponse.status: 0, 16 UNAUTHENTICATED,
 * 7 PERMISSION_DENIED, 3 INVALID_ARGUMENT or 13 INTERNAL. */
int authz_reason_grpc_code(authz_reason reason);

/* HTTP status Envoy should send the client: 200, 401, 403, 400 or 503. */
int authz_reason_http_status(authz_reason reason);

/* A fixed sentence for the reason, safe to show any client: it names no
 * cluster, key, issuer, rule, address or claim value (the detailed message
 * of authz_status does). Out-of-range values give internal_error's.
 * Static storage. */
const char *authz_reason_public_message(authz_reason reason);

/* Longest decision message, terminator included. */
#define AUTHZ_MESSAGE_MAX 256

/* A reason with its human message: which check failed and with what values.
 * Messages never contain a token or a signature. */
typedef struct authz_status {
    authz_reason reason;
    char message[AUTHZ_MESSAGE_MAX];
} authz_status;

/* Sets |status| to |reason| with a printf-style message, truncated to fit.
 * Bytes outside printable ASCII (they may come from a token) become '?'.
 * Returns -1 when |reason| is a denial and 0 for AUTHZ_REASON_OK, so callers
 * can write `return authz_status_set(...)`. */
int authz_status_set(authz_status *status, authz_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets |status| to AUTHZ_REASON_OK with the message "ok" and returns 0;
 * the cheap form of authz_status_set for checks that pass. */
int authz_status_ok(authz_status *status);

#endif
