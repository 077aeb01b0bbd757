#include "pol_cluster_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_key.h"
#include "pol_cfgcheck.h"
#include "pol_config.h"
#include "pol_keysrc.h"
#include "pol_rule_load.h"

/* "claim_to_headers": [{"claim": "a.b", "header": "x-b"}, ...], at most
 * POL_MAX_CLAIM_HEADERS, header names unique within the cluster. */
static void get_claim_headers(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, pol_cluster *c)
{
    static const char *const keys[] = {"claim", "header", NULL};
    char path[POL_CFG_PATH_TEXT_MAX];
    const json_t *arr =
        pol_cfg_get_array(ctx, obj, parent, "claim_to_headers", false, false, POL_MAX_CLAIM_HEADERS, path);
    if (!arr)
        return;
    c->claim_headers = calloc(json_array_size(arr), sizeof *c->claim_headers);
    if (!c->claim_headers) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char item_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_index(item_path, path, i);
        const json_t *item = json_array_get(arr, i);
        if (!pol_cfg_is_object(ctx, item, item_path))
            continue;
        pol_cfg_check_keys(ctx, item, item_path, keys);
        pol_claim_header entry = {{NULL, 0}, {NULL, 0}};
        pol_cfg_get_string(ctx, item, item_path, "claim", true, pol_cfgcheck_claim_path, &entry.claim);
        authz_slice header = {NULL, 0};
        pol_cfg_get_string(ctx, item, item_path, "header", true, pol_cfgcheck_claim_header_name, &header);
        if (header.ptr && !pol_cfg_dup_slice(header.ptr, header.len, true, &entry.header))
            pol_cfg_fail(ctx, item_path, NULL, "out of memory");
        free((void *)header.ptr);
        for (size_t k = 0; entry.header.ptr && k < c->claim_header_count; k++) {
            if (authz_slice_eq(entry.header, c->claim_headers[k].header)) {
                char key_path[POL_CFG_PATH_TEXT_MAX];
                pol_cfg_path_key(key_path, item_path, "header");
                pol_cfg_fail(ctx, key_path, json_object_get(item, "header"),
                             "duplicates the header of %s[%zu]", path, k);
            }
        }
        if (!entry.claim.ptr || !entry.header.ptr) {
            free((void *)entry.claim.ptr);
            free((void *)entry.header.ptr);
            continue;
        }
        c->claim_headers[c->claim_header_count++] = entry;
    }
}

static void parse_cluster(pol_cfg_ctx *ctx, const json_t *obj, const char *path, pol_cluster *c)
{
    static const char *const keys[] = {"name",
                                       "issuer",
                                       "audiences",
                                       "jwks_file",
                                       "public_key_files",
                                       "source_cidrs",
                                       "hosts",
                                       "forward_token",
                                       "cidr_claim",
                                       "max_token_age_seconds",
                                       "enforce_warnafter",
                                       "claim_to_headers",
                                       "mode",
                                       "peer_binding",
                                       "jwks_uri",
                                       "discovery",
                                       "ca_file",
                                       "bearer_token_file",
                                       "refresh_seconds",
                                       "fetch_timeout_seconds",
                                       NULL};
    authz_keyset_init(&c->keys);
    if (!pol_cfg_dup_slice("boundCIDRs", strlen("boundCIDRs"), false, &c->cidr_claim)) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    if (!pol_cfg_is_object(ctx, obj, path))
        return;
    pol_cfg_check_keys(ctx, obj, path, keys);
    pol_cfg_get_string(ctx, obj, path, "name", true, pol_cfgcheck_name, &c->name);
    pol_cfg_get_string(ctx, obj, path, "issuer", true, NULL, &c->issuer);
    pol_cfg_get_string_list(ctx, obj, path, "audiences", true, false, NULL, &c->audiences,
                            &c->audience_count);
    pol_cfg_get_cidr_list(ctx, obj, path, "source_cidrs", &c->source_cidrs, &c->source_cidr_count);
    pol_cfg_get_string_list(ctx, obj, path, "hosts", false, true, pol_cfgcheck_host, &c->hosts,
                            &c->host_count);
    pol_cfg_get_bool(ctx, obj, path, "forward_token", &c->forward_token);
    pol_cfg_get_string(ctx, obj, path, "cidr_claim", false, NULL, &c->cidr_claim);
    pol_cfg_get_int(ctx, obj, path, "max_token_age_seconds", 0, 31536000, &c->max_token_age);
    pol_cfg_get_bool(ctx, obj, path, "enforce_warnafter", &c->enforce_warnafter);
    get_claim_headers(ctx, obj, path, c);
    pol_cfg_get_mode(ctx, obj, path, &c->shadow);
    pol_rule_load_peer_binding(ctx, obj, path, &c->peer);

    pol_key_sink sink = {&c->keys, &c->key_files, &c->key_file_count};
    pol_keysrc_load(ctx, obj, path, c->issuer, sink, &c->source, &c->remote);
}

static void check_cluster_uniqueness(pol_cfg_ctx *ctx, const pol_snapshot *snap)
{
    for (size_t i = 0; i < snap->cluster_count; i++) {
        const pol_cluster *a = &snap->clusters[i];
        char path[POL_CFG_PATH_TEXT_MAX];
        for (size_t j = 0; j < i; j++) {
            const pol_cluster *b = &snap->clusters[j];
            if (a->name.len > 0 && authz_slice_eq(a->name, b->name)) {
                snprintf(path, sizeof path, "clusters[%zu].name", i);
                json_t *shown = json_stringn(a->name.ptr, a->name.len);
                pol_cfg_fail(ctx, path, shown, "duplicates the name of clusters[%zu]", j);
                json_decref(shown);
            }
            for (size_t h = 0; h < a->host_count; h++) {
                for (size_t k = 0; k < b->host_count; k++) {
                    if (!authz_slice_eq(a->hosts[h], b->hosts[k]))
                        continue;
                    snprintf(path, sizeof path, "clusters[%zu].hosts[%zu]", i, h);
                    json_t *shown = json_stringn(a->hosts[h].ptr, a->hosts[h].len);
                    pol_cfg_fail(ctx, path, shown,
                                 "host of cluster %.*s already belongs to cluster %.*s (clusters[%zu])",
                                 (int)a->name.len, a->name.ptr, (int)b->name.len, b->name.ptr, j);
                    json_decref(shown);
                }
            }
        }
        for (size_t h = 0; h < a->host_count; h++) {
            for (size_t k = 0; k < h; k++) {
                if (authz_slice_eq(a->hosts[h], a->hosts[k])) {
                    snprintf(path, sizeof path, "clusters[%zu].hosts[%zu]", i, h);
                    json_t *shown = json_stringn(a->hosts[h].ptr, a->hosts[h].len);
                    pol_cfg_fail(ctx, path, shown, "duplicate host");
                    json_decref(shown);
                }
            }
        }
    }
}

bool pol_cluster_load_all(pol_cfg_ctx *ctx, const json_t *root, pol_snapshot *snap)
{
    char path[POL_CFG_PATH_TEXT_MAX];
    const json_t *clusters =
        pol_cfg_get_array(ctx, root, "", "clusters", true, false, POL_CONFIG_MAX_CLUSTERS, path);
    ctx->cluster_names_incomplete = clusters == NULL;
    if (clusters) {
        snap->clusters = calloc(json_array_size(clusters), sizeof *snap->clusters);
        if (!snap->clusters) {
            pol_cfg_fail(ctx, path, NULL, "out of memory");
            return false;
        }
        snap->cluster_count = json_array_size(clusters);
        for (size_t i = 0; i < snap->cluster_count; i++) {
            char item_path[POL_CFG_PATH_TEXT_MAX];
            pol_cfg_path_index(item_path, path, i);
            parse_cluster(ctx, json_array_get(clusters, i), item_path, &snap->clusters[i]);
            snap->key_count += snap->clusters[i].keys.count;
            if (snap->clusters[i].name.len == 0)
                ctx->cluster_names_incomplete = true;
        }
        check_cluster_uniqueness(ctx, snap);
    }
    return true;
}
