/* pol_cluster_load: the "clusters" of the config into the snapshot: each
 * cluster's issuer, audiences, CIDRs, hosts, claim_to_headers, mode,
 * peer_binding and keys (pol_keysrc), then unique names and hosts across
 * clusters. Private to the config loader. */
#ifndef POL_CLUSTER_LOAD_H
#define POL_CLUSTER_LOAD_H

#include <jansson.h>
#include <stdbool.h>

#include "pol_cfg.h"
#include "pol_snapshot.h"

/* Loads the required array "clusters" of |root| into snap->clusters
 * (cluster_count, key_count), reporting every problem through |ctx|. Sets
 * ctx->cluster_names_incomplete when the array is missing or invalid or a
 * cluster has no valid name (a rule naming it is then no second error).
 * Returns false only when out of memory for the array (reported): nothing
 * further can be loaded. */
bool pol_cluster_load_all(pol_cfg_ctx *ctx, const json_t *root, pol_snapshot *snap);

#endif
