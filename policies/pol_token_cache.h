/* pol_token_cache: per-worker cache of verified tokens.
 *
 * Only what depends on the token bytes and the snapshot alone is cached: the
 * parsed token and the cluster whose key verified its signature. Everything
 * that depends on the request or the clock (target cluster, expiry against
 * now, audience, source, rules) is evaluated on every call by pol_decide, so a
 * hit can never change a decision, only skip the parse and the signature math.
 *
 * Entries are found by the exact token bytes (hash, then a full compare),
 * dropped at the token's exp, evicted least-recently-used when full, and
 * ignored when they were made under another snapshot generation (reload or key
 * change). Not thread-safe: each worker owns one. */
#ifndef POL_TOKEN_CACHE_H
#define POL_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "authz_arena.h"
#include "authz_bearer.h"
#include "authz_jwt.h"
#include "authz_slice.h"

typedef struct pol_token_cache pol_token_cache;

/* A cached verification. The token bytes and everything |jwt| points to
 * live in the entry's own arena, owned by the cache and valid until the
 * next call that changes the cache. */
typedef struct pol_cached_token {
    authz_slice token;
    authz_jwt jwt;
    size_t cluster_index; /* cluster whose key verified the signature */
    size_t key_index;     /* that key, within the cluster's keyset */
    bool has_token_digest;
    uint8_t token_digest[AUTHZ_BEARER_DIGEST_LEN]; /* authz_bearer_digest of the token, for logs */
} pol_cached_token;

/* Creates a cache of at most |capacity| entries (>= 1). NULL on allocation
 * failure. */
pol_token_cache *pol_token_cache_new(size_t capacity);

/* Frees every entry and the cache. NULL is a no-op. */
void pol_token_cache_free(pol_token_cache *cache);

/* The entry for exactly |token| made under |generation| whose exp has not
 * passed at |now|, or NULL. Entries found stale or expired are dropped. */
const pol_cached_token *pol_token_cache_get(pol_token_cache *cache, uint64_t generation, authz_slice token,
                                            int64_t now);

/* Reserves an entry holding a private copy of |token| in a fresh arena of
 * the entry's own, to be parsed from that copy into that arena (so every
 * slice of the parsed token points into memory the entry owns). The arena
 * is handed out through *arena; its budget is the token plus twice
 * authz_jwt_arena_bound(|limits|) and a chunk, so a parse under |limits|
 * never runs out for lack of budget, and one entry's memory stays bounded.
 * Returns the copy, or {NULL, 0} with *arena NULL on allocation failure or
 * if |token| is longer than |limits|->max_token_bytes. A previous
 * reservation not yet committed is aborted. Call pol_token_cache_commit or
 * pol_token_cache_abort next; until then the copy and the arena stay valid. */
authz_slice pol_token_cache_reserve(pol_token_cache *cache, authz_slice token, const authz_jwt_limits *limits,
                                    authz_arena **arena);

/* Stores the reserved entry with |jwt| (parsed from the reserved copy into
 * the reserved arena; the struct is copied) verified by key |key_index| of
 * cluster |cluster_index| under |generation|, evicting the least recently
 * used entry (and freeing its arena) when full. Returns the stored entry,
 * valid until the cache next changes; NULL when nothing was reserved. */
const pol_cached_token *pol_token_cache_commit(pol_token_cache *cache, uint64_t generation,
                                               const authz_jwt *jwt, size_t cluster_index, size_t key_index);

/* Drops the reserved entry and frees its arena (verification failed, was
 * not attempted, or the token is not worth keeping). No-op without one. */
void pol_token_cache_abort(pol_token_cache *cache);

/* Number of live entries (for tests and metrics). */
size_t pol_token_cache_count(const pol_token_cache *cache);

#endif
