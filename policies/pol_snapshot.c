#include "pol_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    free((void *)c->peer.trust_domain.ptr);
    free((void *)c->source.jwks_uri.ptr);
    free((void *)c->source.ca_file.ptr);
    free((void *)c->source.bearer_token_file.ptr);
    pol_remote_keys_release(c->remote_keys);
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
    free((void *)p->source.jwks_uri.ptr);
    free((void *)p->source.ca_file.ptr);
    free((void *)p->source.bearer_token_file.ptr);
    pol_remote_keys_release(p->remote_keys);
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
    free((void *)r->peer.trust_domain.ptr);
}

void pol_snapshot_release(pol_snapshot *snap)
{
    if (!snap)
        return;
    /* acq_rel: the freeing thread must see every reader's last use. */
    if (atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (snap->base) {
        /* Only the clusters and providers arrays and their remote key
         * references are ours. */
        for (size_t i = 0; i < snap->cluster_count; i++)
            pol_remote_keys_release(snap->clusters[i].remote_keys);
        free(snap->clusters);
        for (size_t i = 0; i < snap->provider_count; i++)
            pol_remote_keys_release(snap->providers[i].remote_keys);
        free(snap->providers);
        pol_snapshot_release(snap->base);
        free(snap);
        return;
    }
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

const pol_key_file *pol_key_owner_key_file(const pol_key_owner *owner, size_t key_index)
{
    return key_file_of(owner->key_files, owner->key_file_count, key_index);
}

size_t pol_snapshot_cluster_index(const pol_snapshot *snap, const pol_cluster *cluster)
{
    return (size_t)(cluster - snap->clusters);
}

size_t pol_snapshot_provider_index(const pol_snapshot *snap, const pol_provider *provider)
{
    return (size_t)(provider - snap->providers);
}

pol_remote_keys *pol_remote_keys_new(const char *json, size_t len, authz_slice uri, char *err,
                                     size_t err_size)
{
    pol_remote_keys *rk = calloc(1, sizeof *rk);
    char *uri_copy = malloc(uri.len + 1u);
    if (!rk || !uri_copy) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    atomic_init(&rk->refs, 1);
    authz_keyset_init(&rk->keys);
    memcpy(uri_copy, uri.ptr, uri.len);
    uri_copy[uri.len] = '\0';
    rk->uri = (authz_slice){uri_copy, uri.len};
    uri_copy = NULL;
    if (authz_keyset_add_jwks(&rk->keys, json, len, AUTHZ_KEY_DEFAULT_MAX_KEYS, err, err_size) != 0)
        goto fail;
    if (rk->keys.count == 0) {
        snprintf(err, err_size, "JWKS holds no signing key");
        goto fail;
    }
    return rk;
fail:
    free(uri_copy);
    pol_remote_keys_release(rk);
    return NULL;
}

pol_remote_keys *pol_remote_keys_acquire(pol_remote_keys *keys)
{
    atomic_fetch_add_explicit(&keys->refs, 1, memory_order_relaxed);
    return keys;
}

void pol_remote_keys_release(pol_remote_keys *keys)
{
    if (!keys || atomic_fetch_sub_explicit(&keys->refs, 1, memory_order_acq_rel) != 1)
        return;
    authz_keyset_free(&keys->keys);
    free((void *)keys->uri.ptr);
    free(keys);
}

pol_key_owner pol_snapshot_key_owner(const pol_snapshot *snap, size_t index)
{
    if (index < snap->cluster_count) {
        const pol_cluster *c = &snap->clusters[index];
        return (pol_key_owner){false,     c->name,      c->issuer,
                               &c->keys,  c->key_files, c->key_file_count,
                               c->remote, &c->source,   c->remote_keys};
    }
    const pol_provider *p = &snap->providers[index - snap->cluster_count];
    return (pol_key_owner){true,      p->name,    p->issuer,     &p->keys, p->key_files, p->key_file_count,
                           p->remote, &p->source, p->remote_keys};
}

static const char *owner_kind(const pol_key_owner *o)
{
    return o->provider ? "identity provider" : "cluster";
}

/* The first key of |rk| that a key owner of |snap| other than |self| holds
 * (from its files or already attached), with that owner in *other. */
static const authz_key *shared_key(const pol_snapshot *snap, size_t self, const pol_remote_keys *rk,
                                   pol_key_owner *other)
{
    for (size_t k = 0; k < rk->keys.count; k++) {
        for (size_t i = 0; i < pol_key_owner_count(snap); i++) {
            pol_key_owner o = pol_snapshot_key_owner(snap, i);
            for (size_t j = 0; i != self && j < pol_keys_count(o.keys, o.remote_keys); j++) {
                if (authz_key_same_material(&rk->keys.keys[k], pol_keys_at(o.keys, o.remote_keys, j))) {
                    *other = o;
                    return &rk->keys.keys[k];
                }
            }
        }
    }
    return NULL;
}

/* Where key owner |index| of |snap| keeps its fetched keys. */
static pol_remote_keys **remote_slot(pol_snapshot *snap, size_t index)
{
    return index < snap->cluster_count ? &snap->clusters[index].remote_keys
                                       : &snap->providers[index - snap->cluster_count].remote_keys;
}

pol_snapshot *pol_snapshot_with_remote_keys(pol_snapshot *from, pol_remote_keys *const *remote, char *err,
                                            size_t err_size)
{
    pol_snapshot *snap = malloc(sizeof *snap);
    pol_cluster *clusters = malloc(from->cluster_count * sizeof *clusters + 1u);
    pol_provider *providers = malloc(from->provider_count * sizeof *providers + 1u);
    struct timespec ts;
    uint64_t now = 0;

    if (!snap || !clusters || !providers) {
        free(snap);
        free(clusters);
        free(providers);
        return NULL;
    }
    memcpy(snap, from, sizeof *snap);
    atomic_init(&snap->refs, 1);
    if (from->cluster_count > 0)
        memcpy(clusters, from->clusters, from->cluster_count * sizeof *clusters);
    if (from->provider_count > 0)
        memcpy(providers, from->providers, from->provider_count * sizeof *providers);
    snap->clusters = clusters;
    snap->providers = providers;
    snap->key_count = 0;
    if (err_size > 0)
        err[0] = '\0';
    for (size_t i = 0; i < pol_key_owner_count(snap); i++)
        *remote_slot(snap, i) = NULL;
    /* One key, one owner, as for key files: a fetched set holding another
     * cluster's or provider's key stays out (the key would say the wrong
     * issuer signed a token), and the owner keeps no fetched keys until it
     * is fixed. */
    for (size_t i = 0; i < pol_key_owner_count(snap); i++) {
        pol_key_owner self = pol_snapshot_key_owner(snap, i), other;
        const authz_key *key = remote[i] ? shared_key(snap, i, remote[i], &other) : NULL;
        if (key && err_size > 0 && err[0] == '\0') {
            snprintf(err, err_size, "%s %.*s: fetched key kid %.*s (%s) from %.*s is also a key of %s %.*s",
                     owner_kind(&self), (int)self.name.len, self.name.ptr,
                     (int)(key->kid_len > 100 ? 100 : key->kid_len), key->kid, authz_key_describe(key),
                     (int)remote[i]->uri.len, remote[i]->uri.ptr, owner_kind(&other), (int)other.name.len,
                     other.name.ptr);
        }
        if (remote[i] && !key)
            *remote_slot(snap, i) = pol_remote_keys_acquire(remote[i]);
    }
    for (size_t i = 0; i < snap->cluster_count; i++)
        snap->key_count += pol_cluster_key_count(&clusters[i]);
    for (size_t i = 0; i < snap->provider_count; i++)
        snap->key_count += pol_provider_key_count(&providers[i]);
    snap->base = pol_snapshot_acquire(from->base ? from->base : from);
    /* The same clock as pol_config_load's generations, and never backwards. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    snap->generation = now > from->generation ? now : from->generation + 1u;
    return snap;
}
