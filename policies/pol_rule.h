/* pol_rule: matching a request against the configured rules. */
#ifndef POL_RULE_H
#define POL_RULE_H

#include <stdbool.h>
#include <stddef.h>

#include "authz_slice.h"
#include "pol_snapshot.h"

/* One request header named by the rules' conditions, as the request
 * carries it: how many times it appears and its (last) value. */
typedef struct pol_header_value {
    size_t count; /* 0: absent */
    authz_slice value;
} pol_header_value;

/* The request as rules select it. |headers| holds one entry per
 * pol_snapshot.condition_headers name (same index), or is NULL when the
 * request carries none of them. */
typedef struct pol_rule_request {
    size_t cluster_index;
    authz_slice method;
    authz_slice path; /* normalized by pol_path_normalize */
    const pol_header_value *headers;
} pol_rule_request;

/* True when |rule| applies to |req|: the cluster is listed (or the rule
 * lists none), the path begins with path_prefix byte for byte (ASCII
 * case-insensitively with the rule's ignore_case), the method is listed (or
 * the rule lists none), and every header condition holds: the header is
 * present and its value equals one of the listed values byte for byte (any
 * value when the condition is "*"). */
bool pol_rule_selects(const pol_rule *rule, const pol_rule_request *req);

/* The first rule of |snap| selecting |req|, or NULL. */
const pol_rule *pol_rule_find(const pol_snapshot *snap, const pol_rule_request *req);

/* True when the service-account identity passes |rule|'s namespaces and
 * service_accounts lists ("namespace:name"); an absent list allows
 * everyone. A rule naming only users or groups admits no service account. */
bool pol_rule_allows_identity(const pol_rule *rule, authz_slice namespace_name, authz_slice service_account);

/* True when an identity-provider user (prefixed |username|, prefixed
 * |groups| joined with ',') passes |rule|'s users list and holds one of its
 * groups; an absent list allows everyone. A rule naming only namespaces or
 * service accounts admits no user. */
bool pol_rule_allows_user(const pol_rule *rule, authz_slice username, authz_slice groups);

/* True when |earlier| selects every request that |later| selects, so
 * |later| can never decide (for `tokengate check`'s warning): earlier's
 * clusters include later's (or earlier lists none), earlier's path_prefix
 * is a prefix of later's (without case when earlier has ignore_case; never
 * when only later has it), earlier's methods include later's (or earlier
 * lists none), and each of earlier's header conditions is implied by one of
 * later's on the same header ("*" by any; values by a subset). Conservative: false unless certain, so a
 * selection condition added to pol_rule_selects must be covered here too. */
bool pol_rule_covers(const pol_rule *earlier, const pol_rule *later);

#endif
