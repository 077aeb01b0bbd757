#include "pol_target.h"

#include <stdbool.h>

int pol_target_host(authz_slice authority, authz_slice *host)
{
    const char *p = authority.ptr;
    size_t len = authority.len;
    size_t host_len;
    if (len == 0)
        return -1;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (!close)
            return -1;
        host_len = (size_t)(close - p) + 1;
        if (host_len < len && p[host_len] != ':')
            return -1;
    } else {
        const char *colon = memchr(p, ':', len);
        host_len = colon ? (size_t)(colon - p) : len;
    }
    if (host_len == 0)
        return -1;
    if (host_len < len) {
        /* ":" then one or more digits and nothing else. */
        if (host_len + 1 == len)
            return -1;
        for (size_t i = host_len + 1; i < len; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
        }
    }
    host->ptr = p;
    host->len = host_len;
    return 0;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* |configured| is stored lower-case. */
static bool host_eq(authz_slice configured, authz_slice host)
{
    if (configured.len != host.len)
        return false;
    for (size_t i = 0; i < host.len; i++) {
        if (lower(host.ptr[i]) != configured.ptr[i])
            return false;
    }
    return true;
}

static bool is_wildcard(authz_slice configured)
{
    return configured.len > 2 && configured.ptr[0] == '*' && configured.ptr[1] == '.';
}

/* "*.example.com" (lower-case) holds |host| when host ends with
 * ".example.com" after at least one more byte, as Envoy's virtual host
 * domains match: "a.example.com" and "a.b.example.com", not "example.com". */
static bool wildcard_holds(authz_slice configured, authz_slice host)
{
    authz_slice suffix = {configured.ptr + 1, configured.len - 1}; /* ".example.com" */
    if (host.len <= suffix.len)
        return false;
    authz_slice tail = {host.ptr + host.len - suffix.len, suffix.len};
    return host_eq(suffix, tail);
}

/* The cluster for |host|: an exact entry wins, else the wildcard with the
 * longest suffix (the loader refuses one host or one wildcard in two
 * clusters, so either is unique). NULL when none holds it. */
static const pol_cluster *cluster_for_host(const pol_snapshot *snap, authz_slice host)
{
    const pol_cluster *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < snap->cluster_count; i++) {
        const pol_cluster *c = &snap->clusters[i];
        for (size_t h = 0; h < c->host_count; h++) {
            authz_slice entry = c->hosts[h];
            if (!is_wildcard(entry)) {
                if (host_eq(entry, host))
                    return c;
            } else if (entry.len > best_len && wildcard_holds(entry, host)) {
                best = c;
                best_len = entry.len;
            }
        }
    }
    return best;
}

const pol_cluster *pol_target_find(const pol_snapshot *snap, authz_slice hint, authz_slice authority,
                                   authz_status *status)
{
    if (hint.ptr && hint.len == 0) {
        authz_status_set(status, AUTHZ_REASON_UNKNOWN_CLUSTER, "the route names an empty cluster");
        return NULL;
    }
    if (hint.ptr) {
        const pol_cluster *c = pol_snapshot_find_cluster(snap, hint);
        if (!c)
            authz_status_set(status, AUTHZ_REASON_UNKNOWN_CLUSTER, "no cluster named %.*s",
                             (int)(hint.len > 128 ? 128 : hint.len), hint.ptr);
        return c;
    }
    if (!authority.ptr || authority.len == 0) {
        authz_status_set(status, AUTHZ_REASON_UNKNOWN_CLUSTER, "request names no cluster and no host");
        return NULL;
    }
    authz_slice host;
    if (pol_target_host(authority, &host) == 0) {
        const pol_cluster *c = cluster_for_host(snap, host);
        if (c)
            return c;
    }
    authz_status_set(status, AUTHZ_REASON_UNKNOWN_CLUSTER, "host %.*s matches no cluster",
                     (int)(authority.len > 128 ? 128 : authority.len), authority.ptr);
    return NULL;
}
