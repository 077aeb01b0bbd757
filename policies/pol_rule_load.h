/* pol_rule_load: the "rules" of the config into the snapshot (path prefix,
 * methods, principals, CIDRs, header conditions, clusters, mode) and the
 * "peer_binding" object that clusters and rules carry. Private to the
 * config loader. */
#ifndef POL_RULE_LOAD_H
#define POL_RULE_LOAD_H

#include <jansson.h>

#include "pol_cfg.h"
#include "pol_snapshot.h"

/* "peer_binding": {"mode": "off"|"spiffe", "trust_domain", "required"} of
 * the cluster or rule |parent_obj| at |parent| into *b; keys left out stay
 * unset (pol_peer_effective). Reports every problem through |ctx|. */
void pol_rule_load_peer_binding(pol_cfg_ctx *ctx, const json_t *parent_obj, const char *parent,
                                pol_peer_binding *b);

/* Loads the optional array "rules" of |root| into snap->rules
 * (rule_count, condition_headers), after the clusters, which they name;
 * snap->escaped_slashes must be set (path prefixes are checked in
 * normalized form). Reports every problem through |ctx|, including a rule
 * whose peer_binding loosens a cluster's and duplicate rule names. */
void pol_rule_load_all(pol_cfg_ctx *ctx, const json_t *root, pol_snapshot *snap);

#endif
