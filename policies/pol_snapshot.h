/* pol_snapshot: the immutable, reference-counted view of a loaded config.
 *
 * A snapshot is built once by pol_config_load and never changes afterwards;
 * any number of threads may read it. Readers hold a reference
 * (pol_snapshot_acquire / pol_snapshot_release); a reload builds a new
 * snapshot and swaps the pointer, and the old one is freed when its last
 * reader lets go. */
#ifndef POL_SNAPSHOT_H
#define POL_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz_cidr.h"
#include "authz_key.h"
#include "authz_slice.h"
#include "pol_path.h"
#include "pol_peer.h"

/* A key file of a cluster, for reports: which keys it gave. */
typedef struct pol_key_file {
    authz_slice name;      /* owned: the path as the config writes it */
    authz_slice json_path; /* owned: where, e.g. "clusters[0].public_key_files[1]" */
    size_t first_key;      /* keys.keys[first_key, first_key + key_count) came from it */
    size_t key_count;
} pol_key_file;

/* A claim of the verified token passed upstream as a request header. */
typedef struct pol_claim_header {
    authz_slice claim;  /* owned: dotted path into the claims, e.g. "kubernetes.io.pod.name" */
    authz_slice header; /* owned, lower-case header name */
} pol_claim_header;

/* Bounds of claim_to_headers: entries per cluster, and bytes of one value. */
#define POL_MAX_CLAIM_HEADERS 16u
#define POL_CLAIM_VALUE_MAX_BYTES 4096u

/* Where a cluster or provider fetches keys from (jwks_uri or discovery): server/
 * srv_keyfetch does the fetching; policies/ only validates the settings. */
typedef struct pol_remote_source {
    authz_slice jwks_uri;          /* owned, https://...; empty with discovery */
    bool discovery;                /* jwks_uri from <issuer>/.well-known/openid-configuration */
    authz_slice ca_file;           /* resolved, owned; empty = the system's trust store */
    authz_slice bearer_token_file; /* resolved, owned; empty = no Authorization header */
    int64_t refresh_seconds;       /* 0 = Cache-Control max-age clamped to 60..86400, else 3600 */
    int64_t fetch_timeout_seconds; /* whole fetch, default 10 */
} pol_remote_source;

/* Keys fetched for one cluster or provider: parsed once, immutable, shared by every
 * snapshot that holds them (reference-counted). */
typedef struct pol_remote_keys {
    atomic_size_t refs;
    authz_keyset keys; /* at least one key */
    authz_slice uri;   /* owned: the URL the key set came from */
} pol_remote_keys;

typedef struct pol_cluster {
    authz_slice name;       /* owned bytes */
    authz_slice issuer;     /* owned bytes */
    authz_slice *audiences; /* owned array of owned bytes */
    size_t audience_count;
    authz_keyset keys;
    pol_key_file *key_files; /* owned, in config order */
    size_t key_file_count;
    authz_cidr *source_cidrs; /* owned; count 0 = any source */
    size_t source_cidr_count;
    authz_slice *hosts; /* owned, lower-case, without port */
    size_t host_count;
    bool forward_token;              /* false: Envoy strips authorization upstream */
    authz_slice cidr_claim;          /* claim holding the token's bound CIDRs, default "boundCIDRs" */
    int64_t max_token_age;           /* seconds, 0 = off */
    bool enforce_warnafter;          /* deny extended tokens past kubernetes.io.warnafter */
    pol_claim_header *claim_headers; /* owned, at most POL_MAX_CLAIM_HEADERS */
    size_t claim_header_count;
    bool shadow;           /* "mode": "shadow": rule denials are logged, not enforced */
    pol_peer_binding peer; /* "peer_binding"; mode UNSET = off */
    bool remote;           /* jwks_uri or discovery is set: |source| says where */
    pol_remote_source source;
    /* Owned reference, NULL until the first good fetch. Its keys follow
     * |keys| in key indexes (pol_cluster_key). */
    pol_remote_keys *remote_keys;
} pol_cluster;

/* A rule's condition on one request header. */
typedef struct pol_header_condition {
    size_t header;       /* index into pol_snapshot.condition_headers */
    authz_slice *values; /* owned; count 0 = present with any value ("*") */
    size_t value_count;
} pol_header_condition;

/* Distinct header names over all rules' conditions, and per rule. */
#define POL_MAX_CONDITION_HEADERS 32u
#define POL_MAX_RULE_HEADERS 16u

typedef struct pol_rule {
    authz_slice name;
    size_t *clusters; /* indexes into pol_snapshot.clusters; count 0 = every cluster */
    size_t cluster_count;
    authz_slice path_prefix; /* empty = every path; in normalized form (pol_path) */
    bool ignore_case;        /* path_prefix compared ASCII case-insensitively */
    authz_slice *methods;    /* count 0 = every method; upper-case */
    size_t method_count;
    authz_slice *namespaces; /* count 0 = any namespace */
    size_t namespace_count;
    authz_slice *service_accounts; /* "namespace:name"; count 0 = any */
    size_t service_account_count;
    authz_cidr *source_cidrs; /* count 0 = any source */
    size_t source_cidr_count;
    authz_slice *users; /* prefixed usernames of provider tokens; count 0 = any */
    size_t user_count;
    authz_slice *groups; /* prefixed groups; count 0 = any */
    size_t group_count;
    pol_header_condition *headers; /* owned; count 0 = no header condition */
    size_t header_count;
    bool shadow;           /* "mode": "shadow": its denials are logged, not enforced */
    pol_peer_binding peer; /* "peer_binding": the keys it sets override its cluster's (tighten only) */
} pol_rule;

/* A claim_validation_rules value: what a claim must equal. */
typedef enum pol_value_kind { POL_VALUE_STRING, POL_VALUE_BOOL, POL_VALUE_NUMBER } pol_value_kind;

typedef struct pol_required_value {
    pol_value_kind kind;
    authz_slice text; /* owned, POL_VALUE_STRING */
    bool boolean;     /* POL_VALUE_BOOL */
    double number;    /* POL_VALUE_NUMBER */
} pol_required_value;

/* "required_value": the claim equals values[0]; "required_values": the
 * claim equals one of them, or is an array containing one. */
typedef struct pol_claim_rule {
    authz_slice claim;          /* owned dotted path */
    pol_required_value *values; /* owned */
    size_t value_count;
    bool one_of; /* required_values */
} pol_claim_rule;

/* Bounds of a provider token's groups: count, bytes of one, bytes joined. */
#define POL_MAX_GROUPS 256u
#define POL_MAX_GROUP_BYTES 256u
#define POL_MAX_GROUPS_BYTES 4096u

/* An OIDC identity provider (Dex, Keycloak) whose tokens some clusters
 * accept: "identity_providers", after kube-apiserver's structured
 * authentication config. Its keys are loaded like a cluster's and belong
 * to it alone; its issuer is no cluster's. */
typedef struct pol_provider {
    authz_slice name;       /* owned */
    authz_slice issuer;     /* owned; unique over clusters and providers */
    authz_slice *audiences; /* owned */
    size_t audience_count;
    authz_keyset keys; /* as pol_cluster's: same loader, same key files */
    pol_key_file *key_files;
    size_t key_file_count;
    authz_slice username_claim;  /* owned dotted path, default "sub" */
    authz_slice username_prefix; /* owned, may be empty; default "<issuer>#" */
    authz_slice groups_claim;    /* owned dotted path; empty = no groups */
    authz_slice groups_prefix;   /* owned, may be empty */
    pol_claim_rule *claim_rules; /* owned */
    size_t claim_rule_count;
    size_t *clusters; /* indexes into pol_snapshot.clusters, at least one */
    size_t cluster_count;
    bool remote; /* jwks_uri or discovery, exactly as a cluster's */
    pol_remote_source source;
    pol_remote_keys *remote_keys; /* owned reference, NULL until the first good fetch */
} pol_provider;

#define POL_CONFIG_MAX_PROVIDERS 64u

/* Range of max_buffered_bytes_per_connection / _per_worker (1 KiB - 16 GiB). */
#define POL_BUFFERED_MIN 1024
#define POL_BUFFERED_MAX 17179869184

/* The gRPC listener's TLS: the "tls" object. Only paths and names are
 * validated here; server/srv_tls reads the files and builds the TLS context
 * (at load, in `tokengate check`, and on reload). */
typedef struct pol_tls_settings {
    bool enabled;                     /* the "tls" object is present; false = h2c */
    authz_slice cert_file;            /* resolved against the config folder, owned */
    authz_slice key_file;             /* resolved, owned */
    authz_slice client_ca_file;       /* resolved, owned; empty = no client certificate asked */
    authz_slice *allowed_client_sans; /* owned; count 0 = any certificate of client_ca_file */
    size_t allowed_client_san_count;
} pol_tls_settings;
/* What a denial tells the client (config "deny_details"). */
typedef enum pol_deny_details {
    POL_DENY_DETAILS_GENERIC = 0, /* the reason code and its fixed public sentence */
    POL_DENY_DETAILS_FULL,        /* the decision's detailed message, for trusted callers */
} pol_deny_details;

/* How the HTTP authorization listener learns the original request
 * (config "http_style"; see server/srv_httpauth.h). */
typedef enum pol_http_style {
    POL_HTTP_STYLE_ENVOY = 0, /* request line and Host (Envoy's http_service) */
    POL_HTTP_STYLE_FORWARDED, /* X-Forwarded-Method/-Uri/-Host (Caddy, Traefik) */
    POL_HTTP_STYLE_ORIGINAL,  /* X-Original-Method, X-Original-URL/-URI (ingress-nginx) */
} pol_http_style;

/* Server settings: read by server/, validated here with everything else. */
typedef struct pol_server_settings {
    authz_slice listen;             /* "host:port", default "127.0.0.1:9191" */
    size_t workers;                 /* 0 = one per CPU */
    size_t max_message_bytes;       /* gRPC message bound, default 1 MiB */
    size_t max_connections;         /* default 10000 */
    size_t max_concurrent_streams;  /* per connection, default 1024 */
    size_t trusted_proxy_hops;      /* 0 = use the peer address Envoy saw */
    size_t token_cache_size;        /* entries per worker, 0 = off, default 10000 */
    size_t idle_timeout_seconds;    /* close a connection idle this long, 0 = off, default 300 */
    size_t request_timeout_seconds; /* a request must be complete this long after its headers, default 30 */
    size_t send_timeout_seconds; /* a connection whose answers wait unsent this long is reset, default 10 */
    size_t max_buffered_bytes_per_connection; /* request bytes held for undecided calls, default 16 MiB */
    size_t max_buffered_bytes_per_worker;     /* the same over a worker's connections, default 64 MiB */
    bool log_decisions;                       /* one JSON line per decision on stderr, default true */
    authz_slice admin_listen;      /* "host:port" of the admin HTTP endpoint; empty (default) = none */
    bool watch_config;             /* reload when the config file changes, default false */
    pol_tls_settings tls;          /* off by default */
    pol_deny_details deny_details; /* default generic */
    authz_slice http_listen;   /* "host:port" of the HTTP authorization listener; empty (default) = none */
    pol_http_style http_style; /* default envoy */
    size_t http_trusted_proxy_hops; /* 1-16, default 1: the N-th X-Forwarded-For entry from the right */
    bool http_trust_x_real_ip;      /* the source is X-Real-IP (set by the proxy), default false */
} pol_server_settings;

typedef struct pol_snapshot {
    atomic_size_t refs;
    uint64_t generation;     /* distinct for every load, for caches keyed on a snapshot */
    authz_slice path;        /* the config file, owned */
    int64_t clock_skew;      /* seconds, default 60 */
    size_t max_token_bytes;  /* default 16 KiB */
    size_t max_kidless_keys; /* a token without kid is tried against at most this many keys, default 8 */
    pol_path_slashes escaped_slashes; /* %2F / %5C in paths: rejected (default) or kept */
    pol_server_settings server;
    pol_cluster *clusters; /* owned */
    size_t cluster_count;
    pol_provider *providers; /* owned */
    size_t provider_count;
    pol_rule *rules; /* owned; evaluated in order */
    size_t rule_count;
    /* Lower-case names of the headers any rule's conditions read (owned):
     * the adapter looks these up, and one appearing more than once makes
     * the request malformed whichever rule would match. */
    authz_slice condition_headers[POL_MAX_CONDITION_HEADERS];
    size_t condition_header_count;
    size_t key_count;      /* over all clusters and providers */
    authz_slice *warnings; /* owned: "<file>: <json path>: <problem>" lines of the load */
    size_t warning_count;
    /* Own reference, or NULL: a snapshot made by pol_snapshot_with_remote_keys
     * borrows everything but its clusters and providers arrays (and their
     * remote_keys) from |base|, the snapshot pol_config_load built. */
    struct pol_snapshot *base;
} pol_snapshot;

/* Keys of a cluster or provider: those of its files, then its fetched ones. */
static inline size_t pol_keys_count(const authz_keyset *files, const pol_remote_keys *fetched)
{
    return files->count + (fetched ? fetched->keys.count : 0u);
}

/* Key |index| (< pol_keys_count) of |files| then |fetched|, borrowed. */
static inline const authz_key *pol_keys_at(const authz_keyset *files, const pol_remote_keys *fetched,
                                           size_t index)
{
    return index < files->count ? &files->keys[index] : &fetched->keys.keys[index - files->count];
}

/* Keys of |c|: its files' keys, then its fetched ones. */
static inline size_t pol_cluster_key_count(const pol_cluster *c)
{
    return pol_keys_count(&c->keys, c->remote_keys);
}

/* Key |index| (< pol_cluster_key_count) of |c|, borrowed from |c|. */
static inline const authz_key *pol_cluster_key(const pol_cluster *c, size_t index)
{
    return pol_keys_at(&c->keys, c->remote_keys, index);
}

/* Keys of |p|: its files' keys, then its fetched ones. */
static inline size_t pol_provider_key_count(const pol_provider *p)
{
    return pol_keys_count(&p->keys, p->remote_keys);
}

/* Key |index| (< pol_provider_key_count) of |p|, borrowed from |p|. */
static inline const authz_key *pol_provider_key(const pol_provider *p, size_t index)
{
    return pol_keys_at(&p->keys, p->remote_keys, index);
}

/* What a cluster and an identity provider share as holders of keys, for
 * code that loads, fetches and reports keys alike for both. Borrowed from
 * the snapshot. Key owners are numbered clusters first, then providers. */
typedef struct pol_key_owner {
    bool provider; /* else a cluster */
    authz_slice name;
    authz_slice issuer;
    const authz_keyset *keys;
    const pol_key_file *key_files;
    size_t key_file_count;
    bool remote;
    const pol_remote_source *source;
    const pol_remote_keys *remote_keys;
} pol_key_owner;

/* Clusters plus providers of |snap|. */
static inline size_t pol_key_owner_count(const pol_snapshot *snap)
{
    return snap->cluster_count + snap->provider_count;
}

/* Key owner |index| (< pol_key_owner_count) of |snap|. */
pol_key_owner pol_snapshot_key_owner(const pol_snapshot *snap, size_t index);

/* Parses the JWKS document |json| (|len| bytes, the caller bounds it) with
 * the limits of jwks_file into a new key set with one reference; |uri|
 * (copied) says where it came from. A document without any signing key is
 * refused. Returns NULL with |err| set. */
pol_remote_keys *pol_remote_keys_new(const char *json, size_t len, authz_slice uri, char *err,
                                     size_t err_size);

/* Takes a reference; returns |keys|. */
pol_remote_keys *pol_remote_keys_acquire(pol_remote_keys *keys);

/* Drops a reference and frees with the last one. NULL is a no-op. */
void pol_remote_keys_release(pol_remote_keys *keys);

/* A new snapshot (one reference) equal to |from| but for each key owner's
 * remote_keys, taken from |remote| (pol_key_owner_count(from) entries,
 * clusters then providers, each NULL or borrowed; the snapshot takes its
 * own references), and a new generation greater than |from|'s, so token
 * caches drop what |from| verified. Everything else is shared with
 * |from|'s base. A set holding a key (same material) of another cluster or
 * provider, from its files or fetched, is left out (one key, one owner)
 * and the first such set is described in |err| ("" when none). NULL when
 * out of memory. */
pol_snapshot *pol_snapshot_with_remote_keys(pol_snapshot *from, pol_remote_keys *const *remote, char *err,
                                            size_t err_size);

/* Takes a reference; returns |snap|. */
pol_snapshot *pol_snapshot_acquire(pol_snapshot *snap);

/* Drops a reference and frees the snapshot with the last one. NULL is a no-op. */
void pol_snapshot_release(pol_snapshot *snap);

/* The cluster named |name|, or NULL. */
const pol_cluster *pol_snapshot_find_cluster(const pol_snapshot *snap, authz_slice name);

/* The key file key |key_index| of |cluster| came from, or NULL. */
const pol_key_file *pol_cluster_key_file(const pol_cluster *cluster, size_t key_index);

/* The key file key |key_index| of |provider| came from, or NULL. */
const pol_key_file *pol_provider_key_file(const pol_provider *provider, size_t key_index);

/* The key file key |key_index| of |owner| came from, or NULL. */
const pol_key_file *pol_key_owner_key_file(const pol_key_owner *owner, size_t key_index);

/* Index of |cluster| within |snap|. */
size_t pol_snapshot_cluster_index(const pol_snapshot *snap, const pol_cluster *cluster);

/* Index of |provider| (one of |snap|'s) in snap->providers. */
size_t pol_snapshot_provider_index(const pol_snapshot *snap, const pol_provider *provider);

#endif
