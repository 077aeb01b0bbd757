/* pol_target: which cluster a request is for.
 *
 * Only trusted routing data decides: the cluster name Envoy's route puts in
 * context_extensions, else the request's host. Never a token claim or any
 * other header. */
#ifndef POL_TARGET_H
#define POL_TARGET_H

#include "authz_reason.h"
#include "authz_slice.h"
#include "pol_snapshot.h"

/* The host of an authority "name[:port]" or "[v6][:port]", port removed
 * (IPv6 keeps its brackets). Returns 0 with *host borrowed from
 * |authority|, or -1 when the port is not decimal digits, a bracket is
 * unclosed, or the host is empty. */
int pol_target_host(authz_slice authority, authz_slice *host);

/* The target cluster of a request: the cluster named |hint| when the route
 * named one (|hint|.ptr non-NULL; an empty name is no cluster, never a
 * fallback to the host: the route said something and it names nothing),
 * else the cluster listing |authority|'s host (compared case-insensitively,
 * port stripped): an exact entry first, else the wildcard "*.suffix" with
 * the longest suffix that the host ends with after at least one more
 * label's bytes. Returns NULL with |status| set to unknown_cluster when
 * there is none. */
const pol_cluster *pol_target_find(const pol_snapshot *snap, authz_slice hint, authz_slice authority,
                                   authz_status *status);

#endif
