#include "pol_snapshot.h"

#include <stdlib.h>

pol_snapshot *pol_snapshot_acquire(pol_snapshot *snap)
{
    atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    return snap;
}

static void free_slice_array(authz_slice *items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free((void *)items[i].ptr);
    free(items);
}

static void free_keys(authz_keyset *keys, pol_key_file *files, size_t file_count)
{
    authz_keyset_free(keys);
    for (size_t i = 0; i < file_count; i++) {
        free((void *)files[i].name.ptr);
        free((void *)files[i].json_path.ptr);
    }
    free(files);
}

static void free_cluster(pol_cluster *c)
{
    free((void *)c->name.ptr);
    free((void *)c->issuer.ptr);
    free_slice_array(c->audiences, c->audience_count);
    free_keys(&c->keys, c->key_files, c->key_file_count);
    free(c->source_cidrs);
    free_slice_array(c->hosts, c->host_count);
    free((void *)c->cidr_claim.ptr);
    for (size_t i = 0; i < c->claim_header_count; i++) {
        free((void *)c->claim_headers[i].claim.ptr);
        free((void *)c->claim_headers[i].header.ptr);
    }
    free(c->claim_headers);
}

static void free_provider(pol_provider *p)
{
    free((void *)p->name.ptr);
    free((void *)p->issuer.ptr);
    free_slice_array(p->audiences, p->audience_count);
    free_keys(&p->keys, p->key_files, p->key_file_count);
    free((void *)p->username_claim.ptr);
    free((void *)p->username_prefix.ptr);
    free((void *)p->groups_claim.ptr);
    free((void *)p->groups_prefix.ptr);
    for (size_t i = 0; i < p->claim_rule_count; i++) {
        free((void *)p->claim_rules[i].claim.ptr);
        for (size_t k = 0; k < p->claim_rules[i].value_count; k++)
            free((void *)p->claim_rules[i].values[k].text.ptr);
        free(p->claim_rules[i].values);
    }
    free(p->claim_rules);
    free(p->clusters);
}

static void free_rule(pol_rule *r)
{
    free((void *)r->name.ptr);
    free(r->clusters);
    free((void *)r->path_prefix.ptr);
    free_slice_array(r->methods, r->method_count);
    free_slice_array(r->namespaces, r->namespace_count);
    free_slice_array(r->service_accounts, r->service_account_count);
    free(r->source_cidrs);
    free_slice_array(r->users, r->user_count);
    free_slice_array(r->groups, r->group_count);
    for (size_t i = 0; i < r->header_count; i++)
        free_slice_array(r->headers[i].values, r->headers[i].value_count);
    free(r->headers);
}

void pol_snapshot_release(pol_snapshot *snap)
{
    if (!snap)
        return;
    /* acq_rel: the freeing thread must see every reader's last use. */
    if (atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < snap->cluster_count; i++)
        free_cluster(&snap->clusters[i]);
    free(snap->clusters);
    for (size_t i = 0; i < snap->provider_count; i++)
        free_provider(&snap->providers[i]);
    free(snap->providers);
    for (size_t i = 0; i < snap->rule_count; i++)
        free_rule(&snap->rules[i]);
    free(snap->rules);
    for (size_t i = 0; i < snap->condition_header_count; i++)
        free((void *)snap->condition_headers[i].ptr);
    free((void *)snap->path.ptr);
    free((void *)snap->server.listen.ptr);
    free((void *)snap->server.admin_listen.ptr);
    free((void *)snap->server.tls.cert_file.ptr);
    free((void *)snap->server.tls.key_file.ptr);
    free((void *)snap->server.tls.client_ca_file.ptr);
    free_slice_array(snap->server.tls.allowed_client_sans, snap->server.tls.allowed_client_san_count);
    free_slice_array(snap->warnings, snap->warning_count);
    free(snap);
}

const pol_cluster *pol_snapshot_find_cluster(const pol_snapshot *snap, authz_slice name)
{
    for (size_t i = 0; i < snap->cluster_count; i++) {
        if (authz_slice_eq(snap->clusters[i].name, name))
            return &snap->clusters[i];
    }
    return NULL;
}

static const pol_key_file *key_file_of(const pol_key_file *files, size_t count, size_t key_index)
{
    for (size_t i = 0; i < count; i++) {
        const pol_key_file *f = &files[i];
        if (key_index >= f->first_key && key_index - f->first_key < f->key_count)
            return f;
    }
    return NULL;
}

const pol_key_file *pol_cluster_key_file(const pol_cluster *cluster, size_t key_index)
{
    return key_file_of(cluster->key_files, cluster->key_file_count, key_index);
}

const pol_key_file *pol_provider_key_file(const pol_provider *provider, size_t key_index)
{
    return key_file_of(provider->key_files, provider->key_file_count, key_index);
}

size_t pol_snapshot_cluster_index(const pol_snapshot *snap, const pol_cluster *cluster)
{
    return (size_t)(cluster - snap->clusters);
}
