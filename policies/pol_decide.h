/* pol_decide: the decision for one request.
 *
 * Order: target cluster (trusted routing data only) -> path (normalized for
 * the rules, when there are rules) -> bearer token -> parse
 * -> issuer candidates -> key and signature (the key that verifies decides
 * which cluster issued the token) -> cluster match -> claims (issuer, time,
 * audience, identity) -> peer binding (the caller's mesh identity) -> source
 * CIDRs (cluster, token-bound) -> rules.
 * A token of an identity provider's issuer is verified by the provider's
 * keys alone, then: the provider trusted by the target cluster -> issuer,
 * time, audience -> claim validation rules -> username and groups ->
 * source CIDRs -> rules (users, groups). Provider tokens name people, not
 * workloads: peer binding does not apply to them.
 * The first failing step decides the reason. Every error path denies. */
#ifndef POL_DECIDE_H
#define POL_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "authz_arena.h"
#include "authz_bearer.h"
#include "authz_jwt.h"
#include "authz_reason.h"
#include "authz_slice.h"
#include "pol_rule.h"
#include "pol_snapshot.h"

/* What the decision reads of a request. All slices are borrowed for the
 * duration of pol_decide; absent values have ptr NULL or len 0. */
typedef struct pol_request {
    authz_slice authorization;   /* the Authorization header value */
    bool authorization_repeated; /* more than one Authorization header line: two credentials, malformed */
    /* Trusted routing hint: context_extensions["cluster"]. ptr NULL: the
     * route named no cluster (the host decides); ptr set and len 0: it named
     * an empty one, which is no cluster (unknown_cluster). */
    authz_slice cluster;
    authz_slice host;   /* :authority / Host, port allowed */
    authz_slice source; /* IP literal of the client */
    authz_slice method;
    authz_slice path;
    /* The headers the rules' conditions name: one entry per
     * pol_snapshot.condition_headers name, same index, or NULL when the
     * caller has none (every condition then fails). A count above 1, or a
     * value holding a comma (lines joined by a proxy, RFC 9110 5.3), is
     * malformed_request: which value a condition should see is ambiguous. */
    const pol_header_value *condition_headers;
    /* The caller's mesh identity as the proxy saw it (Envoy's
     * source.principal and its URL-encoded PEM source.certificate). */
    authz_slice peer_principal;
    authz_slice peer_certificate;
    int64_t now; /* seconds since the epoch */
} pol_request;

/* A claim_to_headers entry of an allowed request. */
typedef struct pol_claim_value {
    authz_slice header; /* lower-case name, borrowed from the snapshot */
    authz_slice value;  /* in the arena; meaningful when present */
    bool present;       /* false: the token has no such claim (or null, or []); the header is removed */
} pol_claim_value;

/* The verdict. Identity slices point into the arena passed to pol_decide
 * (or the snapshot) and stay valid until that arena is reset. */
typedef struct pol_decision {
    bool allowed;
    authz_status status;               /* reason and message */
    const pol_cluster *cluster;        /* target cluster, NULL when unknown */
    const pol_cluster *issuer_cluster; /* cluster whose key verified the token, or NULL */
    const pol_provider *provider;      /* identity provider whose key verified the token, or NULL */
    const pol_rule *rule;              /* rule that decided, or NULL */
    uint64_t generation;               /* the snapshot that decided */
    bool shadow_denied;         /* allowed only because a shadow-mode rule or cluster did not enforce */
    authz_status shadow_status; /* with shadow_denied: the denial that was not enforced */
    authz_slice path;           /* the normalized path the rules saw (arena); empty without rules */
    /* system:serviceaccount:<ns>:<sa>, or a provider token's prefixed
     * username; allowed requests only. */
    authz_slice subject;
    /* The same for any token whose signature verified, allowed or denied by a
     * later check (empty before that, or without the kubernetes.io claims):
     * who was refused, for the decision log. Never sent to the client. */
    authz_slice verified_subject;
    /* A provider token's prefixed username and prefixed groups joined with
     * ',' (arena), once its claims passed, allowed or denied by a later
     * check; empty for service-account tokens. */
    authz_slice username;
    authz_slice groups;
    authz_slice namespace_name;
    authz_slice service_account;
    authz_slice pod_name;
    authz_slice node_name;
    /* Allowed requests only: the target cluster's claim_to_headers in
     * config order. A claim present but not representable (an object, a
     * nested array, a control character, longer than
     * POL_CLAIM_VALUE_MAX_BYTES) denies with malformed_token instead. */
    pol_claim_value claim_headers[POL_MAX_CLAIM_HEADERS];
    size_t claim_header_count;
    /* The peer_binding check: its result (NONE when off or not reached)
     * and the identity presented (borrowed from the request or the arena;
     * empty when none). Allowed and BOUND: sent upstream as x-tokengate-peer. */
    pol_peer_result peer_result;
    authz_slice peer;
    /* unknown_key for a token whose kid no key of its issuer's clusters
     * holds: its (unverified) iss, in the arena; empty otherwise. server/
     * asks for the remote keys of those clusters to be fetched again. */
    authz_slice kid_miss_issuer;
    authz_slice token;     /* the bearer credential, borrowed from the request; empty when none */
    bool has_token_digest; /* token_digest holds authz_bearer_digest(token) */
    uint8_t token_digest[AUTHZ_BEARER_DIGEST_LEN]; /* from the token cache's key: logs need not hash again */
} pol_decision;

/* Optional observer for `tokengate explain`: called once per check with
 * its outcome, and once with the parsed token. NULL members are skipped. */
typedef struct pol_trace {
    void (*token)(void *ctx, const authz_jwt *jwt);
    void (*step)(void *ctx, const char *check, bool passed, const char *detail);
    void *ctx;
} pol_trace;

typedef struct pol_token_cache pol_token_cache;

typedef enum pol_cache_outcome { POL_CACHE_UNUSED, POL_CACHE_HIT, POL_CACHE_MISS } pol_cache_outcome;

/* Per-call context: the request's arena (the identity of an allowed
 * request is copied into it), the worker's verified-token cache (NULL: no
 * cache) and the optional trace. */
typedef struct pol_decide_ctx {
    authz_arena *arena;
    const pol_trace *trace;
    pol_token_cache *cache;
    pol_cache_outcome cache_outcome; /* out: whether the token was looked up, and found */
} pol_decide_ctx;

/* Decides |req| against |snap| and fills |out|. Never fails: errors
 * (including running out of arena) are denials with a reason, so the return
 * value is just |out|->allowed. */
bool pol_decide(const pol_snapshot *snap, const pol_request *req, pol_decide_ctx *ctx, pol_decision *out);

#endif
