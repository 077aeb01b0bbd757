#include "pol_token_cache.h"

#include <stdlib.h>
#include <string.h>

#include "authz_bearer.h"

/* An entry lives in the first block of its own arena, with the token copy
 * and everything parsed from it: freeing the arena frees the entry. */
typedef struct cache_entry {
    pol_cached_token pub; /* pub.token and pub.jwt point into arena */
    uint64_t hash;
    uint64_t generation;
    int64_t expires_at;
    struct cache_entry *lru_prev, *lru_next; /* lru_head is the most recently used */
    struct cache_entry *chain_next;
    authz_arena arena;
} cache_entry;

struct pol_token_cache {
    size_t capacity;
    size_t count;
    size_t bucket_mask;
    cache_entry **buckets;
    cache_entry *lru_head, *lru_tail;
    cache_entry *reserved; /* between reserve and commit/abort */
};

/* Eight bytes a step, then a murmur3 finaliser. Not keyed: only tokens whose
 * signature verified are ever inserted, so an attacker cannot choose keys to
 * flood a chain. */
static uint64_t token_hash(authz_slice token)
{
    const char *p = token.ptr;
    size_t n = token.len;
    uint64_t h = 0x9e3779b97f4a7c15u ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    h ^= tail;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

pol_token_cache *pol_token_cache_new(size_t capacity)
{
    if (capacity == 0 || capacity > SIZE_MAX / 4 / sizeof(cache_entry *))
        return NULL;
    pol_token_cache *cache = calloc(1, sizeof *cache);
    if (!cache)
        return NULL;
    size_t buckets = 16;
    while (buckets < capacity * 2)
        buckets <<= 1;
    cache->buckets = calloc(buckets, sizeof *cache->buckets);
    if (!cache->buckets) {
        free(cache);
        return NULL;
    }
    cache->capacity = capacity;
    cache->bucket_mask = buckets - 1;
    return cache;
}

static void entry_free(cache_entry *e)
{
    if (!e)
        return;
    /* e lives in its arena: free from a copy of the arena's state. */
    authz_arena arena = e->arena;
    authz_arena_free(&arena);
}

static void lru_unlink(pol_token_cache *cache, cache_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        cache->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        cache->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(pol_token_cache *cache, cache_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = cache->lru_head;
    if (cache->lru_head)
        cache->lru_head->lru_prev = e;
    cache->lru_head = e;
    if (!cache->lru_tail)
        cache->lru_tail = e;
}

static void entry_remove(pol_token_cache *cache, cache_entry *e)
{
    cache_entry **link = &cache->buckets[e->hash & cache->bucket_mask];
    while (*link != e)
        link = &(*link)->chain_next;
    *link = e->chain_next;
    lru_unlink(cache, e);
    cache->count--;
    entry_free(e);
}

void pol_token_cache_free(pol_token_cache *cache)
{
    if (!cache)
        return;
    cache_entry *e = cache->lru_head;
    while (e) {
        cache_entry *next = e->lru_next;
        entry_free(e);
        e = next;
    }
    entry_free(cache->reserved);
    free(cache->buckets);
    free(cache);
}

const pol_cached_token *pol_token_cache_get(pol_token_cache *cache, uint64_t generation, authz_slice token,
                                            int64_t now)
{
    uint64_t hash = token_hash(token);
    for (cache_entry *e = cache->buckets[hash & cache->bucket_mask]; e; e = e->chain_next) {
        if (e->hash != hash || !authz_slice_eq(e->pub.token, token))
            continue;
        if (e->generation != generation || now >= e->expires_at) {
            entry_remove(cache, e);
            return NULL;
        }
        if (cache->lru_head != e) {
            lru_unlink(cache, e);
            lru_push_front(cache, e);
        }
        return &e->pub;
    }
    return NULL;
}

authz_slice pol_token_cache_reserve(pol_token_cache *cache, authz_slice token, const authz_jwt_limits *limits,
                                    authz_arena **arena)
{
    authz_slice none = {NULL, 0};
    *arena = NULL;
    pol_token_cache_abort(cache);
    if (token.len > limits->max_token_bytes)
        return none;
    /* One chunk usually holds the entry, the copy, the decoded JSON and its
     * nodes (about three times the token); a denser token takes more chunks
     * up to the budget. */
    size_t chunk = sizeof(cache_entry) + 3 * token.len + 1024;
    size_t budget = sizeof(cache_entry) + token.len + 2 * authz_jwt_arena_bound(limits) + 2 * chunk;
    authz_arena fresh;
    authz_arena_init(&fresh, NULL, chunk, budget);
    cache_entry *e = authz_arena_alloc(&fresh, sizeof *e);
    char *copy = e ? authz_arena_alloc(&fresh, token.len ? token.len : 1) : NULL;
    if (!copy) {
        authz_arena_free(&fresh);
        return none;
    }
    memset(e, 0, sizeof *e);
    memcpy(copy, token.ptr, token.len);
    e->pub.token.ptr = copy;
    e->pub.token.len = token.len;
    e->hash = token_hash(e->pub.token);
    e->arena = fresh;
    cache->reserved = e;
    *arena = &e->arena;
    return e->pub.token;
}

const pol_cached_token *pol_token_cache_commit(pol_token_cache *cache, uint64_t generation,
                                               const authz_jwt *jwt, size_t cluster_index, size_t key_index)
{
    cache_entry *e = cache->reserved;
    if (!e)
        return NULL;
    cache->reserved = NULL;
    e->pub.jwt = *jwt;
    e->pub.cluster_index = cluster_index;
    e->pub.key_index = key_index;
    e->pub.has_token_digest = authz_bearer_digest(e->pub.token, e->pub.token_digest) == 0;
    e->generation = generation;
    e->expires_at = e->pub.jwt.exp.state == AUTHZ_JWT_TIME_VALID ? e->pub.jwt.exp.seconds : INT64_MAX;
    if (cache->count == cache->capacity)
        entry_remove(cache, cache->lru_tail);
    cache_entry **bucket = &cache->buckets[e->hash & cache->bucket_mask];
    e->chain_next = *bucket;
    *bucket = e;
    lru_push_front(cache, e);
    cache->count++;
    return &e->pub;
}

void pol_token_cache_abort(pol_token_cache *cache)
{
    entry_free(cache->reserved);
    cache->reserved = NULL;
}

size_t pol_token_cache_count(const pol_token_cache *cache)
{
    return cache->count;
}
