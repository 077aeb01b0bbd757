/* pol_config: loading and validating the JSON config into a snapshot.
 *
 * Validation is strict: unknown keys, wrong types, out-of-range numbers, bad
 * CIDRs, unreadable or invalid key files, a rule naming an unknown cluster,
 * duplicate cluster names. Every error names the file, the JSON path (e.g.
 * clusters[1].source_cidrs[0]) and the offending value; syntax errors give
 * line and column. Relative paths are resolved against the config file's
 * folder.
 *
 * pol_config reads the server settings (listeners, limits, timeouts, TLS)
 * and wires the section loaders: pol_cluster_load, pol_provider_load and
 * pol_rule_load, with the key sources in pol_keysrc, all on the context,
 * reports and typed readers of pol_cfg and the validators of pol_cfgcheck. */
#ifndef POL_CONFIG_H
#define POL_CONFIG_H

#include <stddef.h>

#include "pol_snapshot.h"

#define POL_CONFIG_MAX_FILE_BYTES (4u * 1024u * 1024u)
#define POL_CONFIG_MAX_CLUSTERS 256u
#define POL_CONFIG_MAX_RULES 1024u

/* Loads |path|. On success returns 0 and *out holds a snapshot with one
 * reference (release it with pol_snapshot_release). On failure returns -1,
 * *out is NULL and |err| (|err_size| bytes) holds one or more lines
 * "<file>: <json path>: <problem> (<value>)" (up to 20 errors are
 * collected), or "<file>:<line>:<column>: <message>" for a JSON syntax
 * error. The snapshot's generation is the CLOCK_MONOTONIC time of the load
 * in nanoseconds: distinct per load without any process-wide counter, as
 * long as loads are not run concurrently. */
int pol_config_load(const char *path, pol_snapshot **out, char *err, size_t err_size);

#endif
