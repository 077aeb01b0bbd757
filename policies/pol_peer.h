/* pol_peer: binding a token to the caller's mesh identity.
 *
 * With "peer_binding" mode spiffe, the SPIFFE ID the proxy saw in the
 * caller's mTLS certificate (source.principal, else the URI SAN of
 * source.certificate) must name the token's own namespace and service
 * account in the configured trust domain: a token copied out of one pod is
 * refused when another workload presents it. A rule's peer_binding
 * overrides the keys it sets for the requests it selects and may only
 * tighten its clusters' binding (checked at load). */
#ifndef POL_PEER_H
#define POL_PEER_H

#include <stdbool.h>

#include "authz_arena.h"
#include "authz_reason.h"
#include "authz_slice.h"

typedef enum pol_peer_mode {
    POL_PEER_MODE_UNSET = 0, /* a cluster: off; a rule: the cluster's */
    POL_PEER_MODE_OFF,
    POL_PEER_MODE_SPIFFE,
} pol_peer_mode;

/* The trust domain when the config names none (Istio's default). */
#define POL_PEER_DEFAULT_TRUST_DOMAIN "cluster.local"

/* A cluster's or rule's "peer_binding" as configured. */
typedef struct pol_peer_binding {
    pol_peer_mode mode;
    authz_slice trust_domain; /* owned; ptr NULL: a cluster's default, or a rule's cluster's */
    bool required;            /* deny a request that carries no peer identity */
    bool required_set;        /* false: a cluster's default false, or a rule's cluster's */
} pol_peer_binding;

/* How a decision's peer check ended. */
typedef enum pol_peer_result {
    POL_PEER_RESULT_NONE = 0, /* binding off, or the decision ended before it */
    POL_PEER_RESULT_BOUND,    /* the peer names the token's workload */
    POL_PEER_RESULT_UNBOUND,  /* no peer identity, and not required: passed */
    POL_PEER_RESULT_MISMATCH, /* peer_mismatch */
    POL_PEER_RESULT_MISSING,  /* peer_missing */
    POL_PEER_RESULT_COUNT
} pol_peer_result;

/* "bound", "unbound", "mismatch", "missing"; NULL for NONE. Static. */
const char *pol_peer_result_name(pol_peer_result result);

/* The binding that applies: |cluster|'s, with the keys |rule| sets (rule
 * NULL: none) in place of its own, defaults filled in (mode OFF or SPIFFE,
 * trust_domain set). Slices borrow from the arguments. */
pol_peer_binding pol_peer_effective(const pol_peer_binding *cluster, const pol_peer_binding *rule);

/* Which key of |rule| loosens |cluster|'s binding ("mode", "trust_domain"
 * or "required"), or NULL when the effective binding is at least as
 * strict: with the cluster binding, the rule must too, in the same trust
 * domain, and require a peer when the cluster does. */
const char *pol_peer_loosens(const pol_peer_binding *cluster, const pol_peer_binding *rule);

/* The peer check for a token of |ns| / |sa| under effective binding |b|
 * (mode SPIFFE; from pol_peer_effective). The identity is |principal| when
 * non-empty, else the URI SAN of |certificate| (read into |arena|) when
 * non-empty. Sets *peer to the identity presented (borrowing |principal|
 * or |arena|; empty when none) and returns BOUND or UNBOUND with |status|
 * untouched, or MISMATCH (peer_mismatch: malformed, another trust domain
 * or another workload) or MISSING (peer_missing) with |status| set. */
pol_peer_result pol_peer_check(const pol_peer_binding *b, authz_slice principal, authz_slice certificate,
                               authz_slice ns, authz_slice sa, authz_arena *arena, authz_slice *peer,
                               authz_status *status);

#endif
