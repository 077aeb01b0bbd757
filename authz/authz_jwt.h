/* authz_jwt: parsing a compact JWS into header fields and claims.
 *
 * Parsing checks form only; nothing here is trusted until authz_jws has
 * verified the signature. The JSON of header and payload is parsed with
 * duplicate keys rejected and nesting depth bounded; every claim tokengate
 * uses is extracted once, typed, into the struct. */
#ifndef AUTHZ_JWT_H
#define AUTHZ_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "authz_alg.h"
#include "authz_cidr.h"
#include "authz_reason.h"
#include "authz_slice.h"

#define AUTHZ_JWT_DEFAULT_MAX_TOKEN 16384u
#define AUTHZ_JWT_DEFAULT_MAX_DEPTH 16u
#define AUTHZ_JWT_MAX_AUDIENCES 64u
#define AUTHZ_JWT_MAX_CIDRS 64u

typedef struct authz_jwt_limits {
    size_t max_token_bytes; /* longer tokens are malformed before any decoding */
    size_t max_json_depth;  /* deeper header/payload JSON is malformed */
} authz_jwt_limits;

/* State of a NumericDate claim (RFC 7519 §2). */
typedef enum authz_jwt_time_state {
    AUTHZ_JWT_TIME_ABSENT = 0,
    AUTHZ_JWT_TIME_VALID,   /* integer or real; a real is floored */
    AUTHZ_JWT_TIME_INVALID, /* present but not a number (string, bool, null, object...) or a real outside int64 */
} authz_jwt_time_state;

typedef struct authz_jwt_time {
    authz_jwt_time_state state;
    int64_t seconds;
} authz_jwt_time;

/* Optional string claim: |present| false means absent; a present claim of
 * the wrong type makes the whole token malformed at parse time. */
typedef struct authz_jwt_str {
    bool present;
    authz_slice value;
} authz_jwt_str;

/* A parsed token. Every slice points into |token| (signing input) or into the
 * owned JSON trees, so all stay valid until authz_jwt_free. */
typedef struct authz_jwt {
    /* JOSE header */
    authz_alg alg;
    authz_slice alg_name; /* as written, for messages */
    authz_jwt_str kid;
    authz_jwt_str typ;

    /* signature */
    authz_slice signing_input;   /* "header.payload", borrowed from the token passed to parse */
    unsigned char *signature;    /* owned, decoded */
    size_t signature_len;

    /* registered claims */
    authz_jwt_str iss;
    authz_jwt_str sub;
    authz_slice *aud;            /* owned array; a string aud gives one entry */
    size_t aud_count;
    bool aud_present;
    authz_jwt_time exp, nbf, iat;

    /* "kubernetes.io" private claim (absent members stay !present) */
    bool k8s_present;
    authz_jwt_str k8s_namespace;
    authz_jwt_str k8s_sa_name, k8s_sa_uid;
    authz_jwt_str k8s_pod_name, k8s_pod_uid;
    authz_jwt_str k8s_node_name, k8s_node_uid;
    authz_jwt_time k8s_warnafter;

    json_t *header_json;  /* owned */
    json_t *payload_json; /* owned */
} authz_jwt;

/* Default limits (16 KiB token, depth 16). */
authz_jwt_limits authz_jwt_default_limits(void);

/* Parses |token| (the bare compact JWS, no "Bearer "). |token| must outlive
 * |out| (signing_input borrows it). On success returns 0 and |out| owns its
 * resources (free with authz_jwt_free). On failure returns -1, |out| holds
 * nothing to free, and |status| is:
 *   malformed_token  too long, not exactly three non-empty segments, a
 *                    character outside base64url (padding included), JSON
 *                    serialization, bad JSON, duplicate keys at any level,
 *                    too deep, a signature over 1024 bytes, header or claim
 *                    of the wrong type (alg/kid/typ/iss/sub not strings, aud
 *                    not a string or an array of at most
 *                    AUTHZ_JWT_MAX_AUDIENCES strings, kubernetes.io not an
 *                    object or with members of the wrong type, warnafter not
 *                    a NumericDate), crit present in any form;
 *   unsupported_alg  alg missing, "none" in any case, HS*, or any algorithm
 *                    authz_alg_from_name does not know;
 *   internal_error   out of memory (jansson reports some of its allocation
 *                    failures as syntax errors: malformed_token).
 * aud "", [] and [""] parse (the audience check rejects them); exp/nbf/iat
 * of the wrong type parse as AUTHZ_JWT_TIME_INVALID (the time check rejects
 * them). A token carrying jwk/jku/x5u/x5c is parsed but those members are
 * ignored. |limits| NULL means authz_jwt_default_limits(). Work is bounded by
 * |limits| before any allocation. */
int authz_jwt_parse(authz_slice token, const authz_jwt_limits *limits, authz_jwt *out, authz_status *status);

/* Releases what authz_jwt_parse allocated; safe on a zeroed struct. */
void authz_jwt_free(authz_jwt *jwt);

/* Reads the bound-CIDR claim named |claim| (e.g. "boundCIDRs"): an array of
 * CIDR strings, at most AUTHZ_JWT_MAX_CIDRS. Returns 0 with *count = 0 when
 * the claim is absent, 1 with the prefixes in |out| (capacity |max|) when
 * present and well formed (an empty array is malformed), -1 when malformed. */
int authz_jwt_cidr_claim(const authz_jwt *jwt, const char *claim, authz_cidr *out, size_t max, size_t *count);

#endif
