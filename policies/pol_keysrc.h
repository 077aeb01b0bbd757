/* pol_keysrc: where a key owner's (a cluster's or an identity provider's)
 * signing keys come from: key files ("jwks_file", "public_key_files") read
 * at load, and a remote source ("jwks_uri" or "discovery", with "ca_file",
 * "bearer_token_file", "refresh_seconds", "fetch_timeout_seconds") that
 * server/ fetches. Private to the config loader. */
#ifndef POL_KEYSRC_H
#define POL_KEYSRC_H

#include <jansson.h>
#include <stdbool.h>

#include "authz_key.h"
#include "authz_slice.h"
#include "pol_cfg.h"
#include "pol_snapshot.h"

/* Where loaded keys go: a cluster's or an identity provider's key set and
 * the record of the files they came from. All borrowed. */
typedef struct pol_key_sink {
    authz_keyset *keys;
    pol_key_file **files;
    size_t *file_count;
} pol_key_sink;

/* The keys of the owner |obj| at |path| whose issuer is |issuer| (NULL ptr
 * when it has none): key files into |sink|, each recorded with its name and
 * path; the remote source into *source, *remote saying whether there is
 * one. Reports a key file that cannot be read or parsed (with a hint when it
 * has the other format), an owner with neither files nor a remote source,
 * and files that yielded no key. An owner with remote keys may start
 * without any: its tokens are denied (unknown_key) and /readyz stays 503
 * until they load. */
void pol_keysrc_load(pol_cfg_ctx *ctx, const json_t *obj, const char *path, authz_slice issuer,
                     pol_key_sink sink, pol_remote_source *source, bool *remote);

#endif
