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

static void free_cluster(pol_cluster *c)
{
    free((void *)c->name.ptr);
    free((void *)c->issuer.ptr);
    free_slice_array(c->audiences, c->audience_count);
    authz_keyset_free(&c->keys);
    for (size_t i = 0; i < c->key_file_count; i++) {
        free((void *)c->key_files[i].name.ptr);
        free((void *)c->key_files[i].json_path.ptr);
    }
    free(c->key_files);
    free(c->source_cidrs);
    free_slice_array(c->hosts, c->host_count);
    free((void *)c->cidr_claim.ptr);
    for (size_t i = 0; i < c->claim_header_count; i++) {
        free((void *)c->claim_headers[i].claim.ptr);
        free((void *)c->claim_headers[i].header.ptr);
    }
    free(c->claim_headers);
    free((void *)c->peer.trust_domain.ptr);
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
    for (size_t i = 0; i < r->header_count; i++)
        free_slice_array(r->headers[i].values, r->headers[i].value_count);
    free(r->headers);
    free((void *)r->peer.trust_domain.ptr);
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
    for (size_t i = 0; i < snap->rule_count; i++)
        free_rule(&snap->rules[i]);
    free(snap->rules);
    for (size_t i = 0; i < snap->condition_header_count; i++)
        free((void *)snap->condition_headers[i].ptr);
    free((void *)snap->path.ptr);
    free((void *)snap->server.listen.ptr);
    free((void *)snap->server.admin_listen.ptr);
    free((void *)snap->server.http_listen.ptr);
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

const pol_key_file *pol_cluster_key_file(const pol_cluster *cluster, size_t key_index)
{
    for (size_t i = 0; i < cluster->key_file_count; i++) {
        const pol_key_file *f = &cluster->key_files[i];
        if (key_index >= f->first_key && key_index - f->first_key < f->key_count)
            return f;
    }
    return NULL;
}

size_t pol_snapshot_cluster_index(const pol_snapshot *snap, const pol_cluster *cluster)
{
    return (size_t)(cluster - snap->clusters);
}
