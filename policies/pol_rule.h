/* pol_rule: matching a request against the configured rules. */
#ifndef POL_RULE_H
#define POL_RULE_H

#include <stdbool.h>
#include <stddef.h>

#include "authz_slice.h"
#include "pol_snapshot.h"

/* True when |rule| applies to a request for cluster |cluster_index| with
 * |method| and |path| (normalized by pol_path_normalize): the cluster is
 * listed (or the rule lists none), the path begins with path_prefix byte
 * for byte (ASCII case-insensitively with the rule's ignore_case), and the
 * method is listed (or the rule lists none). */
bool pol_rule_selects(const pol_rule *rule, size_t cluster_index, authz_slice method, authz_slice path);

/* The first rule of |snap| selecting the request (|path| normalized), or
 * NULL. */
const pol_rule *pol_rule_find(const pol_snapshot *snap, size_t cluster_index, authz_slice method,
                              authz_slice path);

/* True when the identity passes |rule|'s namespaces and service_accounts
 * lists ("namespace:name"); an absent list allows everyone. */
bool pol_rule_allows_identity(const pol_rule *rule, authz_slice namespace_name, authz_slice service_account);

/* True when |earlier| selects every request that |later| selects, so
 * |later| can never decide (for `tokengate check`'s warning): earlier's
 * clusters include later's (or earlier lists none), earlier's path_prefix
 * is a prefix of later's (without case when earlier has ignore_case; never
 * when only later has it), earlier's methods include later's (or earlier
 * lists none). Conservative: false unless certain, so a selection
 * condition added to pol_rule_selects must be covered here too. */
bool pol_rule_covers(const pol_rule *earlier, const pol_rule *later);

#endif
