/* authz_jwt: parsing a compact JWS into header fields and claims.
 *
 * Parsing checks form only; nothing here is trusted until authz_jws has
 * verified the signature. The JSON of header and payload is parsed by
 * authz_json (strict RFC 8259, duplicate keys rejected, depth, values and
 * members bounded); every claim tokengate uses is extracted once, typed,
 * into the struct. Everything a parse allocates comes from the caller's
 * arena, so a parse costs no heap traffic and is released with the arena. */
#ifndef AUTHZ_JWT_H
#define AUTHZ_JWT_H

#include <stdbool.h>
#include <stdint.h>

#include "authz_alg.h"
#include "authz_arena.h"
#include "authz_cidr.h"
#include "authz_json.h"
#include "authz_reason.h"
#include "authz_slice.h"

#define AUTHZ_JWT_DEFAULT_MAX_TOKEN 16384u
#define AUTHZ_JWT_DEFAULT_MAX_DEPTH 16u
#define AUTHZ_JWT_DEFAULT_MAX_NODES 1024u /* values plus keys, per header and per payload */
#define AUTHZ_JWT_MAX_MEMBERS 256u        /* per JSON object */
#define AUTHZ_JWT_MAX_AUDIENCES 64u
#define AUTHZ_JWT_MAX_CIDRS 64u

typedef struct authz_jwt_limits {
    size_t max_token_bytes; /* longer tokens are malformed before any decoding */
    size_t max_json_depth;  /* deeper header/payload JSON is malformed */
    size_t max_json_nodes;  /* more values in the header or the payload is malformed; 0 means the default */
} authz_jwt_limits;

/* State of a NumericDate claim (RFC 7519 §2). */
typedef enum authz_jwt_time_state {
    AUTHZ_JWT_TIME_ABSENT = 0,
    AUTHZ_JWT_TIME_VALID,   /* integer or real; a real is floored */
    AUTHZ_JWT_TIME_INVALID, /* present but not a number (string, bool, null, object...) or a real outside
                               int64 */
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

/* A parsed token. Every slice points into |token| (signing input) or into
 * the arena passed to authz_jwt_parse, so all stay valid while both do. */
typedef struct authz_jwt {
    /* JOSE header */
    authz_alg alg;
    authz_slice alg_name; /* as written, for messages */
    authz_jwt_str kid;
    authz_jwt_str typ;

    /* signature */
    authz_slice signing_input; /* "header.payload", borrowed from the token passed to parse */
    unsigned char *signature;  /* decoded, in the arena */
    size_t signature_len;

    /* registered claims */
    authz_jwt_str iss;
    authz_jwt_str sub;
    authz_slice *aud; /* array in the arena; a string aud gives one entry */
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

    /* The decoded JSON (in the arena) and its DOM roots, both objects. The
     * text is kept so tools can show the claims as sent. */
    authz_slice header_text, payload_text;
    const authz_json *header, *payload;
} authz_jwt;

/* Default limits (16 KiB token, depth 16, 1024 values per JSON text). */
authz_jwt_limits authz_jwt_default_limits(void);

/* Parses |token| (the bare compact JWS, no "Bearer ") with every allocation
 * taken from |arena|. |token| must outlive |out| (signing_input borrows
 * it); everything else |out| points to lives in |arena| until it is reset
 * or freed: there is nothing to free per token. On success returns 0. On
 * failure returns -1, |out| is zeroed (what was allocated stays in the
 * arena until its reset) and |status| is:
 *   malformed_token  too long, not exactly three non-empty segments, a
 *                    character outside base64url (padding included), JSON
 *                    serialization, JSON authz_json refuses (syntax,
 *                    invalid UTF-8, \u0000, duplicate keys at any level,
 *                    too deep, more than max_json_nodes values, more than
 *                    AUTHZ_JWT_MAX_MEMBERS members in an object, an
 *                    integer outside int64, a number overflowing a double),
 *                    header or payload not an object, a signature over
 *                    1024 bytes, header or claim of the wrong type
 *                    (alg/kid/typ/iss/sub not strings, aud not a string or
 *                    an array of at most AUTHZ_JWT_MAX_AUDIENCES strings,
 *                    kubernetes.io not an object or with members of the
 *                    wrong type, warnafter not a NumericDate), crit present
 *                    in any form;
 *   unsupported_alg  alg missing, "none" in any case, HS*, or any algorithm
 *                    authz_alg_from_name does not know;
 *   internal_error   the arena ran out (allocator failure or budget).
 * aud "", [] and [""] parse (the audience check rejects them); exp/nbf/iat
 * of the wrong type parse as AUTHZ_JWT_TIME_INVALID (the time check rejects
 * them). A token carrying jwk/jku/x5u/x5c is parsed but those members are
 * ignored. |limits| NULL means authz_jwt_default_limits(). Work and memory
 * are bounded by |limits| before any allocation (see
 * authz_jwt_arena_bound). */
int authz_jwt_parse(authz_slice token, const authz_jwt_limits *limits, authz_arena *arena, authz_jwt *out,
                    authz_status *status);

/* The most bytes one authz_jwt_parse under |limits| (NULL: defaults)
 * requests from its arena, counting per-request alignment and chunk-header
 * overhead generously. A bump arena whose budget is at least twice this plus
 * its chunk size cannot run out while parsing (each abandoned chunk wastes
 * less than the request that did not fit). */
size_t authz_jwt_arena_bound(const authz_jwt_limits *limits);

/* Reads the bound-CIDR claim named |claim| (e.g. "boundCIDRs"): an array of
 * CIDR strings, at most AUTHZ_JWT_MAX_CIDRS. Returns 0 with *count = 0 when
 * the claim is absent, 1 with the prefixes in |out| (capacity |max|) when
 * present and well formed (an empty array is malformed), -1 when malformed. */
int authz_jwt_cidr_claim(const authz_jwt *jwt, const char *claim, authz_cidr *out, size_t max, size_t *count);

#endif
