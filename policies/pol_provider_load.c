#include "pol_provider_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_key.h"
#include "pol_cfgcheck.h"
#include "pol_config.h"
#include "pol_keysrc.h"

#define MAX_REQUIRED_VALUES 64u
#define MAX_CLAIM_RULES 64u

/* "claim_mappings.username" or ".groups": {"claim", "prefix"}; the prefix
 * is required with a claim and may be "" (as in kube-apiserver's
 * structured authentication config). */
static void parse_claim_mapping(pol_cfg_ctx *ctx, const json_t *mappings, const char *parent, const char *key,
                                authz_slice *claim, authz_slice *prefix)
{
    static const char *const keys[] = {"claim", "prefix", NULL};
    char path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(path, parent, key);
    const json_t *obj = json_object_get(mappings, key);
    if (!obj || !pol_cfg_is_object(ctx, obj, path))
        return;
    pol_cfg_check_keys(ctx, obj, path, keys);
    free((void *)claim->ptr);
    *claim = (authz_slice){NULL, 0};
    pol_cfg_get_string(ctx, obj, path, "claim", true, pol_cfgcheck_claim_path, claim);
    char prefix_path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(prefix_path, path, "prefix");
    const json_t *v = json_object_get(obj, "prefix");
    if (!v) {
        pol_cfg_missing(ctx, obj, prefix_path, "prefix");
        return;
    }
    if (!json_is_string(v)) {
        pol_cfg_fail(ctx, prefix_path, v, "must be a string (\"\" for none)");
        return;
    }
    authz_slice s = {json_string_value(v), json_string_length(v)};
    const char *problem = pol_cfgcheck_prefix(s);
    if (problem) {
        pol_cfg_fail(ctx, prefix_path, v, "%s", problem);
        return;
    }
    free((void *)prefix->ptr);
    if (!pol_cfg_dup_slice(s.ptr, s.len, false, prefix))
        pol_cfg_fail(ctx, prefix_path, NULL, "out of memory");
}

/* One required value: a string, a boolean or a number. */
static bool required_value(pol_cfg_ctx *ctx, const json_t *v, const char *path, pol_required_value *out)
{
    memset(out, 0, sizeof *out);
    if (json_is_boolean(v)) {
        out->kind = POL_VALUE_BOOL;
        out->boolean = json_is_true(v);
    } else if (json_is_number(v)) {
        out->kind = POL_VALUE_NUMBER;
        out->number = json_number_value(v);
    } else if (json_is_string(v)) {
        out->kind = POL_VALUE_STRING;
        if (!pol_cfg_dup_slice(json_string_value(v), json_string_length(v), false, &out->text)) {
            pol_cfg_fail(ctx, path, NULL, "out of memory");
            return false;
        }
    } else {
        pol_cfg_fail(ctx, path, v, "must be a string, a boolean or a number");
        return false;
    }
    return true;
}

/* "claim_validation_rules": [{"claim", "required_value" | "required_values"}]. */
static void parse_claim_rules(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, pol_provider *p)
{
    static const char *const keys[] = {"claim", "required_value", "required_values", NULL};
    char path[POL_CFG_PATH_TEXT_MAX];
    const json_t *arr =
        pol_cfg_get_array(ctx, obj, parent, "claim_validation_rules", false, false, MAX_CLAIM_RULES, path);
    if (!arr)
        return;
    p->claim_rules = calloc(json_array_size(arr), sizeof *p->claim_rules);
    if (!p->claim_rules) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char item_path[POL_CFG_PATH_TEXT_MAX], values_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_index(item_path, path, i);
        const json_t *item = json_array_get(arr, i);
        if (!pol_cfg_is_object(ctx, item, item_path))
            continue;
        pol_cfg_check_keys(ctx, item, item_path, keys);
        pol_claim_rule *r = &p->claim_rules[p->claim_rule_count++];
        pol_cfg_get_string(ctx, item, item_path, "claim", true, pol_cfgcheck_claim_path, &r->claim);
        const json_t *one = json_object_get(item, "required_value");
        const json_t *many = json_object_get(item, "required_values");
        if (!one == !many) {
            pol_cfg_fail(ctx, item_path, NULL, "needs exactly one of required_value and required_values");
            continue;
        }
        if (many)
            many = pol_cfg_get_array(ctx, item, item_path, "required_values", false, false,
                                     MAX_REQUIRED_VALUES, values_path);
        else
            pol_cfg_path_key(values_path, item_path, "required_value");
        size_t n = many ? json_array_size(many) : (one ? 1u : 0u);
        r->one_of = many != NULL;
        r->values = n > 0 ? calloc(n, sizeof *r->values) : NULL;
        if (n > 0 && !r->values) {
            pol_cfg_fail(ctx, values_path, NULL, "out of memory");
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            char value_path[POL_CFG_PATH_TEXT_MAX];
            if (many)
                pol_cfg_path_index(value_path, values_path, k);
            else
                snprintf(value_path, sizeof value_path, "%s", values_path);
            if (required_value(ctx, many ? json_array_get(many, k) : one, value_path,
                               &r->values[r->value_count]))
                r->value_count++;
        }
    }
}

static void parse_provider(pol_cfg_ctx *ctx, const json_t *obj, const char *path, const pol_snapshot *snap,
                           pol_provider *p)
{
    static const char *const keys[] = {"name",
                                       "issuer",
                                       "audiences",
                                       "jwks_file",
                                       "public_key_files",
                                       "jwks_uri",
                                       "discovery",
                                       "ca_file",
                                       "bearer_token_file",
                                       "refresh_seconds",
                                       "fetch_timeout_seconds",
                                       "claim_mappings",
                                       "claim_validation_rules",
                                       "clusters",
                                       NULL};
    authz_keyset_init(&p->keys);
    if (!pol_cfg_is_object(ctx, obj, path))
        return;
    pol_cfg_check_keys(ctx, obj, path, keys);
    pol_cfg_get_string(ctx, obj, path, "name", true, pol_cfgcheck_name, &p->name);
    pol_cfg_get_string(ctx, obj, path, "issuer", true, NULL, &p->issuer);
    pol_cfg_get_string_list(ctx, obj, path, "audiences", true, false, NULL, &p->audiences,
                            &p->audience_count);

    /* Without a username mapping: sub, prefixed with "<issuer>#" as
     * kube-apiserver's --oidc-username-claim default does, so a provider's
     * subject never reads as another's or as a service account. */
    if (!pol_cfg_dup_slice("sub", 3, false, &p->username_claim) || !p->issuer.ptr ||
        !pol_cfg_dup_slice(p->issuer.ptr, p->issuer.len + 1, false, &p->username_prefix)) {
        if (p->issuer.ptr)
            pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    ((char *)p->username_prefix.ptr)[p->issuer.len] = '#';
    char mappings_path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(mappings_path, path, "claim_mappings");
    const json_t *mappings = json_object_get(obj, "claim_mappings");
    if (mappings && pol_cfg_is_object(ctx, mappings, mappings_path)) {
        static const char *const mapping_keys[] = {"username", "groups", NULL};
        pol_cfg_check_keys(ctx, mappings, mappings_path, mapping_keys);
        parse_claim_mapping(ctx, mappings, mappings_path, "username", &p->username_claim,
                            &p->username_prefix);
        parse_claim_mapping(ctx, mappings, mappings_path, "groups", &p->groups_claim, &p->groups_prefix);
    }
    parse_claim_rules(ctx, obj, path, p);

    char list_path[POL_CFG_PATH_TEXT_MAX];
    const json_t *arr =
        pol_cfg_get_array(ctx, obj, path, "clusters", true, false, POL_CONFIG_MAX_CLUSTERS, list_path);
    p->clusters = arr ? calloc(json_array_size(arr), sizeof *p->clusters) : NULL;
    for (size_t i = 0; p->clusters && i < json_array_size(arr); i++) {
        char item_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_index(item_path, list_path, i);
        authz_slice name;
        if (!pol_cfg_string_value(ctx, json_array_get(arr, i), item_path, NULL, &name))
            continue;
        const pol_cluster *c = pol_snapshot_find_cluster(snap, name);
        if (c)
            p->clusters[p->cluster_count++] = pol_snapshot_cluster_index(snap, c);
        else if (!ctx->cluster_names_incomplete)
            pol_cfg_fail(ctx, item_path, json_array_get(arr, i), "names no configured cluster");
    }
    if (arr && !p->clusters)
        pol_cfg_fail(ctx, list_path, NULL, "out of memory");

    pol_key_sink sink = {&p->keys, &p->key_files, &p->key_file_count};
    pol_keysrc_load(ctx, obj, path, p->issuer, sink, &p->source, &p->remote);
}

/* The issuer alone tells a provider's token from a cluster's before any
 * key is tried: two providers, or a provider and a cluster, may not share
 * one; nor may two providers share a name. */
static void check_provider_uniqueness(pol_cfg_ctx *ctx, const pol_snapshot *snap)
{
    char path[POL_CFG_PATH_TEXT_MAX];
    for (size_t i = 0; i < snap->provider_count; i++) {
        const pol_provider *p = &snap->providers[i];
        json_t *issuer = p->issuer.ptr ? json_stringn(p->issuer.ptr, p->issuer.len) : NULL;
        snprintf(path, sizeof path, "identity_providers[%zu].issuer", i);
        for (size_t j = 0; issuer && j < snap->cluster_count; j++) {
            const pol_cluster *c = &snap->clusters[j];
            if (authz_slice_eq(p->issuer, c->issuer))
                pol_cfg_fail(
                    ctx, path, issuer,
                    "is also the issuer of cluster %.*s (clusters[%zu]): a provider's issuer may be no "
                    "cluster's",
                    (int)c->name.len, c->name.ptr ? c->name.ptr : "", j);
        }
        for (size_t j = 0; issuer && j < i; j++) {
            if (authz_slice_eq(p->issuer, snap->providers[j].issuer))
                pol_cfg_fail(ctx, path, issuer, "duplicates the issuer of identity_providers[%zu]", j);
        }
        json_decref(issuer);
        for (size_t j = 0; p->name.len > 0 && j < i; j++) {
            if (!authz_slice_eq(p->name, snap->providers[j].name))
                continue;
            snprintf(path, sizeof path, "identity_providers[%zu].name", i);
            json_t *shown = json_stringn(p->name.ptr, p->name.len);
            pol_cfg_fail(ctx, path, shown, "duplicates the name of identity_providers[%zu]", j);
            json_decref(shown);
        }
    }
}

void pol_provider_load_all(pol_cfg_ctx *ctx, const json_t *root, pol_snapshot *snap)
{
    char path[POL_CFG_PATH_TEXT_MAX];
    const json_t *arr =
        pol_cfg_get_array(ctx, root, "", "identity_providers", false, true, POL_CONFIG_MAX_PROVIDERS, path);
    if (!arr || json_array_size(arr) == 0)
        return;
    snap->providers = calloc(json_array_size(arr), sizeof *snap->providers);
    if (!snap->providers) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    snap->provider_count = json_array_size(arr);
    for (size_t i = 0; i < snap->provider_count; i++) {
        char item_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_index(item_path, path, i);
        parse_provider(ctx, json_array_get(arr, i), item_path, snap, &snap->providers[i]);
        snap->key_count += snap->providers[i].keys.count;
    }
    check_provider_uniqueness(ctx, snap);
}
