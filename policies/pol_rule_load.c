#include "pol_rule_load.h"

#include <stdlib.h>
#include <string.h>

#include "pol_cfgcheck.h"
#include "pol_config.h"
#include "pol_path.h"
#include "pol_peer.h"

void pol_rule_load_peer_binding(pol_cfg_ctx *ctx, const json_t *parent_obj, const char *parent,
                                pol_peer_binding *b)
{
    static const char *const keys[] = {"mode", "trust_domain", "required", NULL};
    static const char *const modes[] = {"off", "spiffe", NULL}; /* POL_PEER_MODE_OFF + index */
    char path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(path, parent, "peer_binding");
    const json_t *obj = json_object_get(parent_obj, "peer_binding");
    if (!obj || !pol_cfg_is_object(ctx, obj, path))
        return;
    pol_cfg_check_keys(ctx, obj, path, keys);
    int mode = -1;
    pol_cfg_get_choice(ctx, obj, path, "mode", modes, &mode);
    if (mode >= 0)
        b->mode = (pol_peer_mode)(POL_PEER_MODE_OFF + mode);
    pol_cfg_get_string(ctx, obj, path, "trust_domain", false, pol_cfgcheck_trust_domain, &b->trust_domain);
    b->required_set = json_object_get(obj, "required") != NULL;
    pol_cfg_get_bool(ctx, obj, path, "required", &b->required);
}

/* A rule's peer_binding may only tighten that of each cluster it applies
 * to: a rule that loosened it would let a stolen token through on its
 * routes. */
static void check_peer_tightens(pol_cfg_ctx *ctx, const json_t *obj, const char *path,
                                const pol_snapshot *snap, const pol_rule *r)
{
    size_t n = r->cluster_count > 0 ? r->cluster_count : snap->cluster_count;
    for (size_t i = 0; i < n; i++) {
        size_t index = r->cluster_count > 0 ? r->clusters[i] : i;
        const pol_cluster *c = &snap->clusters[index];
        const char *key = pol_peer_loosens(&c->peer, &r->peer);
        if (!key)
            continue;
        char binding_path[POL_CFG_PATH_TEXT_MAX], key_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_key(binding_path, path, "peer_binding");
        pol_cfg_path_key(key_path, binding_path, key);
        pol_cfg_fail(ctx, key_path, json_object_get(json_object_get(obj, "peer_binding"), key),
                     "loosens the peer_binding of cluster %.*s (clusters[%zu]); a rule may only tighten it",
                     (int)c->name.len, c->name.ptr ? c->name.ptr : "", index);
        return;
    }
}

/* ---- rules -------------------------------------------------------------- */

/* Rules match normalized paths (pol_path), so a prefix that is not in
 * that form could never match what it names: refuse it and show the form
 * to write instead. */
static void check_prefix_normalized(pol_cfg_ctx *ctx, const json_t *rule, const char *path,
                                    pol_path_slashes slashes, authz_slice prefix)
{
    if (prefix.len == 0)
        return;
    char key_path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(key_path, path, "path_prefix");
    const json_t *v = json_object_get(rule, "path_prefix");
    char *normal = malloc(prefix.len);
    if (!normal) {
        pol_cfg_fail(ctx, key_path, NULL, "out of memory");
        return;
    }
    size_t len = 0, at = 0;
    pol_path_error e = pol_path_normalize(prefix, slashes, normal, prefix.len, &len, &at);
    if (e != POL_PATH_OK)
        pol_cfg_fail(ctx, key_path, v, "%s at byte %zu%s", pol_path_error_text(e), at,
                     e == POL_PATH_ENCODED_SLASH ? " (see escaped_slashes)" : "");
    else if (len != prefix.len || memcmp(normal, prefix.ptr, len) != 0)
        pol_cfg_fail(ctx, key_path, v, "is not a normalized path; requests are matched as \"%.*s\"",
                     (int)(len > POL_CFG_VALUE_TEXT_MAX ? POL_CFG_VALUE_TEXT_MAX : len), normal);
    free(normal);
}

/* The index of lower-case header |name| in snap->condition_headers, added
 * when new; -1 (reported at |path|) when there are too many or out of
 * memory. */
static long condition_header_index(pol_cfg_ctx *ctx, pol_snapshot *snap, authz_slice name, const char *path)
{
    for (size_t i = 0; i < snap->condition_header_count; i++) {
        if (authz_slice_eq(snap->condition_headers[i], name))
            return (long)i;
    }
    if (snap->condition_header_count == POL_MAX_CONDITION_HEADERS) {
        pol_cfg_fail(ctx, path, NULL, "more than %u distinct header names in rule conditions",
                     POL_MAX_CONDITION_HEADERS);
        return -1;
    }
    if (!pol_cfg_dup_slice(name.ptr, name.len, true,
                           &snap->condition_headers[snap->condition_header_count])) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return -1;
    }
    return (long)snap->condition_header_count++;
}

/* "headers": {"x-api-version": ["v2", "v3"], "x-tenant": ["*"]}: each
 * named header present with one of the values ("*" alone: any value). */
static void get_header_conditions(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, pol_snapshot *snap,
                                  pol_rule *r)
{
    const json_t *v = json_object_get(obj, "headers");
    if (!v)
        return;
    char path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(path, parent, "headers");
    if (!pol_cfg_is_object(ctx, v, path))
        return;
    size_t n = json_object_size(v);
    if (n == 0) {
        pol_cfg_fail(ctx, path, v, "must not be empty (leave the key out instead)");
        return;
    }
    if (n > POL_MAX_RULE_HEADERS) {
        pol_cfg_fail(ctx, path, NULL, "has %zu headers, at most %u allowed", n, POL_MAX_RULE_HEADERS);
        return;
    }
    r->headers = calloc(n, sizeof *r->headers);
    if (!r->headers) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    const char *name;
    json_t *values;
    json_object_foreach((json_t *)v, name, values)
    {
        char name_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_key(name_path, path, name);
        authz_slice name_slice = authz_slice_from_cstr(name);
        json_t *shown_name = json_string(name);
        const char *problem =
            name_slice.len == 0 ? "is not an HTTP header name" : pol_cfgcheck_header_name(name_slice);
        if (problem) {
            pol_cfg_fail(ctx, name_path, shown_name, "header name %s", problem);
            json_decref(shown_name);
            continue;
        }
        json_decref(shown_name);
        pol_header_condition cond = {0, NULL, 0};
        pol_cfg_get_string_list(ctx, v, path, name, true, false, pol_cfgcheck_header_value, &cond.values,
                                &cond.value_count);
        if (!cond.values)
            continue;
        bool star = false;
        for (size_t i = 0; i < cond.value_count; i++)
            star = star || authz_slice_eq_cstr(cond.values[i], "*");
        if (star && cond.value_count > 1) {
            pol_cfg_fail(ctx, name_path, values, "\"*\" (any value) must be the only value");
        }
        if (star) {
            for (size_t i = 0; i < cond.value_count; i++)
                free((void *)cond.values[i].ptr);
            cond.value_count = 0;
        }
        char lowered[POL_CFG_NAME_MAX_BYTES];
        for (size_t i = 0; i < name_slice.len; i++)
            lowered[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
        authz_slice low = {lowered, name_slice.len};
        long index = -1;
        bool repeated = false;
        for (size_t k = 0; k < r->header_count; k++)
            repeated = repeated || authz_slice_eq(snap->condition_headers[r->headers[k].header], low);
        if (repeated)
            pol_cfg_fail(ctx, name_path, NULL,
                         "names the same header as another key of %s (names ignore case)", path);
        else
            index = condition_header_index(ctx, snap, low, name_path);
        if (index < 0) {
            for (size_t i = 0; i < cond.value_count; i++)
                free((void *)cond.values[i].ptr);
            free(cond.values);
            continue;
        }
        cond.header = (size_t)index;
        r->headers[r->header_count++] = cond;
    }
}

static void parse_rule(pol_cfg_ctx *ctx, const json_t *obj, const char *path, pol_snapshot *snap, pol_rule *r)
{
    static const char *const keys[] = {"name",    "clusters",   "path_prefix",      "ignore_case",
                                       "methods", "namespaces", "service_accounts", "source_cidrs",
                                       "headers", "mode",       "peer_binding",     "users",
                                       "groups",  NULL};
    if (!pol_cfg_is_object(ctx, obj, path))
        return;
    pol_cfg_check_keys(ctx, obj, path, keys);
    pol_cfg_get_string(ctx, obj, path, "name", true, NULL, &r->name);
    pol_cfg_get_string(ctx, obj, path, "path_prefix", false, pol_cfgcheck_path_prefix, &r->path_prefix);
    check_prefix_normalized(ctx, obj, path, snap->escaped_slashes, r->path_prefix);
    pol_cfg_get_bool(ctx, obj, path, "ignore_case", &r->ignore_case);
    pol_cfg_get_string_list(ctx, obj, path, "methods", false, false, pol_cfgcheck_method, &r->methods,
                            &r->method_count);
    pol_cfg_get_string_list(ctx, obj, path, "namespaces", false, false, NULL, &r->namespaces,
                            &r->namespace_count);
    pol_cfg_get_string_list(ctx, obj, path, "service_accounts", false, false, pol_cfgcheck_service_account,
                            &r->service_accounts, &r->service_account_count);
    pol_cfg_get_cidr_list(ctx, obj, path, "source_cidrs", &r->source_cidrs, &r->source_cidr_count);
    pol_cfg_get_string_list(ctx, obj, path, "users", false, false, pol_cfgcheck_principal, &r->users,
                            &r->user_count);
    pol_cfg_get_string_list(ctx, obj, path, "groups", false, false, pol_cfgcheck_principal, &r->groups,
                            &r->group_count);
    get_header_conditions(ctx, obj, path, snap, r);
    pol_cfg_get_mode(ctx, obj, path, &r->shadow);
    pol_rule_load_peer_binding(ctx, obj, path, &r->peer);

    char list_path[POL_CFG_PATH_TEXT_MAX];
    const json_t *arr =
        pol_cfg_get_array(ctx, obj, path, "clusters", false, false, POL_CONFIG_MAX_CLUSTERS, list_path);
    if (!arr)
        return;
    r->clusters = calloc(json_array_size(arr), sizeof *r->clusters);
    if (!r->clusters) {
        pol_cfg_fail(ctx, list_path, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char item_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_index(item_path, list_path, i);
        const json_t *v = json_array_get(arr, i);
        authz_slice name;
        if (!pol_cfg_string_value(ctx, v, item_path, NULL, &name))
            continue;
        const pol_cluster *c = pol_snapshot_find_cluster(snap, name);
        if (!c) {
            if (!ctx->cluster_names_incomplete)
                pol_cfg_fail(ctx, item_path, v, "names no configured cluster");
            continue;
        }
        r->clusters[r->cluster_count++] = pol_snapshot_cluster_index(snap, c);
    }
}

void pol_rule_load_all(pol_cfg_ctx *ctx, const json_t *root, pol_snapshot *snap)
{
    char path[POL_CFG_PATH_TEXT_MAX];
    const json_t *rules = pol_cfg_get_array(ctx, root, "", "rules", false, true, POL_CONFIG_MAX_RULES, path);
    if (rules && json_array_size(rules) > 0) {
        snap->rules = calloc(json_array_size(rules), sizeof *snap->rules);
        if (!snap->rules) {
            pol_cfg_fail(ctx, path, NULL, "out of memory");
            return;
        }
        snap->rule_count = json_array_size(rules);
        for (size_t i = 0; i < snap->rule_count; i++) {
            char item_path[POL_CFG_PATH_TEXT_MAX];
            pol_cfg_path_index(item_path, path, i);
            parse_rule(ctx, json_array_get(rules, i), item_path, snap, &snap->rules[i]);
            check_peer_tightens(ctx, json_array_get(rules, i), item_path, snap, &snap->rules[i]);
            for (size_t j = 0; j < i; j++) {
                if (snap->rules[i].name.len > 0 && authz_slice_eq(snap->rules[i].name, snap->rules[j].name)) {
                    char name_path[POL_CFG_PATH_TEXT_MAX];
                    pol_cfg_path_key(name_path, item_path, "name");
                    pol_cfg_fail(ctx, name_path, json_object_get(json_array_get(rules, i), "name"),
                                 "duplicates the name of rules[%zu]", j);
                }
            }
        }
    }
}
