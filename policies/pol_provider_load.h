/* pol_provider_load: the "identity_providers" of the config (OIDC issuers
 * whose tokens stand for users) into the snapshot: issuer, audiences, claim
 * mappings, claim validation rules, the clusters each applies to, and keys
 * (pol_keysrc). Private to the config loader; pol_provider holds what a
 * provider's token is checked against at decision time. */
#ifndef POL_PROVIDER_LOAD_H
#define POL_PROVIDER_LOAD_H

#include <jansson.h>

#include "pol_cfg.h"
#include "pol_snapshot.h"

/* Loads the optional array "identity_providers" of |root| into
 * snap->providers (provider_count, key_count), after the clusters, which
 * they name. Reports every problem through |ctx|, including a provider
 * issuer shared with a cluster or another provider and duplicate provider
 * names. */
void pol_provider_load_all(pol_cfg_ctx *ctx, const json_t *root, pol_snapshot *snap);

#endif
