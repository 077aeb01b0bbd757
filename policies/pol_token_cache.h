/* pol_token_cache: per-worker cache of verified tokens.
 *
 * Only what depends on the token bytes and the snapshot alone is cached:
 * the cluster and key that verified the signature, and the claims later
 * checks read. Everything that depends on the request or the clock (target
 * cluster, expiry against now, audience, source, rules) is evaluated on
 * every call by pol_decide, so a hit can never change a decision, only skip
 * the parse and the signature math.
 *
 * An entry is one exactly-sized heap block: its key is the SHA-256 of the
 * token (no copy of the token is kept: finding another token with the same
 * digest is as hard as forging a signature), then the times, the strings
 * the checks and logs read (sub, aud, namespace, service account, pod,
 * node) and the token's bound CIDRs already parsed. Nothing else of the
 * token (header, signature, JSON, uids, jti) is kept.
 *
 * Entries are dropped at the token's exp, evicted least-recently-used when
 * full (O(1): a hash chain and a doubly linked list), and ignored when they
 * were made under another snapshot generation (reload or key change). Not
 * thread-safe: each worker owns one. */
#ifndef POL_TOKEN_CACHE_H
#define POL_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "authz_cidr.h"
#include "authz_jwt.h"
#include "authz_slice.h"

#define POL_TOKEN_KEY_LEN 32u /* SHA-256 */

typedef struct pol_token_cache pol_token_cache;

/* What a decision reads of a cached verification. Slices and arrays point
 * into the entry's own block, valid until the next call that changes the
 * cache. */
typedef struct pol_cached_token {
    uint32_t cluster_index; /* cluster whose key verified the signature */
    uint32_t key_index;     /* that key, within the cluster's keyset */
    authz_jwt_time exp, nbf, iat, warnafter;
    bool aud_present;
    bool k8s_present;
    int bound_rc; /* authz_jwt_cidr_claim's result for the issuing cluster's cidr_claim */
    authz_jwt_str sub, k8s_namespace, k8s_sa_name, k8s_pod_name, k8s_node_name;
    authz_slice *aud; /* in the entry: authz_jwt's type, so a view needs no cast */
    size_t aud_count;
    const authz_cidr *bound; /* the token's bound CIDRs (bound_rc 1) */
    size_t bound_count;
} pol_cached_token;

/* Creates a cache of at most |capacity| entries (>= 1, < 2^32). NULL on
 * allocation failure. */
pol_token_cache *pol_token_cache_new(size_t capacity);

/* Frees every entry and the cache. NULL is a no-op. */
void pol_token_cache_free(pol_token_cache *cache);

/* Writes the cache key of |token| (its SHA-256) to |key|, without touching
 * the heap. Returns 0, or -1 when OpenSSL fails (the caller then decides
 * without the cache). Thread-safe. */
int pol_token_cache_key(authz_slice token, uint8_t key[POL_TOKEN_KEY_LEN]);

/* The entry for |key| made under |generation| whose exp has not passed at
 * |now|, or NULL. An entry found stale or expired is dropped. */
const pol_cached_token *pol_token_cache_get(pol_token_cache *cache, uint64_t generation,
                                            const uint8_t key[POL_TOKEN_KEY_LEN], int64_t now);

/* Stores under |key| and |generation| what later checks read of |jwt|
 * (parsed and verified by key |key_index| of cluster |cluster_index|, with
 * a valid exp) and its bound-CIDR claim (|bound_rc|, |bound|, |bound_count|
 * as authz_jwt_cidr_claim gave them for that cluster), copied into one
 * block: |jwt| and |bound| may be released afterwards. Evicts the least
 * recently used entry when full. Returns the stored entry, valid until the
 * cache next changes; NULL when out of memory (nothing is stored). */
const pol_cached_token *pol_token_cache_put(pol_token_cache *cache, uint64_t generation,
                                            const uint8_t key[POL_TOKEN_KEY_LEN], const authz_jwt *jwt,
                                            size_t cluster_index, size_t key_index, int bound_rc,
                                            const authz_cidr *bound, size_t bound_count);

/* Fills |out| (zeroed first) with the claims the checks read: iss present
 * and equal to |issuer| (the issuing cluster's, which the token's iss
 * equalled to be verified), sub, aud, exp, nbf, iat and kubernetes.io
 * (namespace, service account, pod and node names, warnafter). |out|
 * borrows from |t| and |issuer|. */
void pol_cached_token_view(const pol_cached_token *t, authz_slice issuer, authz_jwt *out);

/* Number of live entries (for tests and metrics). */
size_t pol_token_cache_count(const pol_token_cache *cache);

#endif
