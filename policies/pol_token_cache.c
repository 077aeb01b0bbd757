/* The key is hashed with OpenSSL's SHA256_* functions, deprecated in 3.0
 * in favour of EVP: OpenSSL 3.0's EVP_DigestInit allocates a new digest
 * context on every call (even reusing an EVP_MD_CTX), which would be the one
 * heap call of a cached Check. SHA256_* hash on the stack with the same
 * (SHA-NI) code. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "pol_token_cache.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* One entry, one heap block: this header, then the aud slices, the bound
 * CIDRs and the string bytes pub points to, exactly sized. */
typedef struct cache_entry {
    uint8_t key[POL_TOKEN_KEY_LEN]; /* SHA-256 of the token */
    uint64_t generation;
    int64_t expires_at;
    struct cache_entry *lru_prev, *lru_next; /* lru_head is the most recently used */
    struct cache_entry *chain_next;
    pol_cached_token pub;
} cache_entry;

struct pol_token_cache {
    size_t capacity;
    size_t count;
    size_t bucket_mask;
    cache_entry **buckets;
    cache_entry *lru_head, *lru_tail;
};

/* The digest's first eight bytes pick the bucket: they are uniform, and
 * only the full 32 bytes decide a hit. */
static size_t bucket_of(const pol_token_cache *cache, const uint8_t key[POL_TOKEN_KEY_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)h & cache->bucket_mask;
}

pol_token_cache *pol_token_cache_new(size_t capacity)
{
    if (capacity == 0 || capacity > UINT32_MAX || capacity > SIZE_MAX / 4 / sizeof(cache_entry *))
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

static void entry_free(cache_entry *e)
{
    free(e);
}

static void entry_remove(pol_token_cache *cache, cache_entry *e)
{
    cache_entry **link = &cache->buckets[bucket_of(cache, e->key)];
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
    free(cache->buckets);
    free(cache);
}

int pol_token_cache_key(authz_slice token, uint8_t key[POL_TOKEN_KEY_LEN])
{
    _Static_assert(SHA256_DIGEST_LENGTH == POL_TOKEN_KEY_LEN, "the key is a SHA-256");
    SHA256_CTX sha;
    if (SHA256_Init(&sha) != 1 || SHA256_Update(&sha, token.len ? token.ptr : "", token.len) != 1 ||
        SHA256_Final(key, &sha) != 1)
        return -1;
    return 0;
}

const pol_cached_token *pol_token_cache_get(pol_token_cache *cache, uint64_t generation,
                                            const uint8_t key[POL_TOKEN_KEY_LEN], int64_t now)
{
    for (cache_entry *e = cache->buckets[bucket_of(cache, key)]; e; e = e->chain_next) {
        if (CRYPTO_memcmp(e->key, key, POL_TOKEN_KEY_LEN) != 0)
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

/* Bytes of the strings an entry keeps of |jwt|. */
static size_t strings_len(const authz_jwt *jwt)
{
    size_t n = jwt->sub.value.len + jwt->k8s_namespace.value.len + jwt->k8s_sa_name.value.len +
               jwt->k8s_pod_name.value.len + jwt->k8s_node_name.value.len;
    for (size_t i = 0; i < jwt->aud_count; i++)
        n += jwt->aud[i].len;
    return n;
}

/* Copies |s| to *cursor and returns the copy (an empty slice stays empty). */
static authz_slice keep(authz_slice s, char **cursor)
{
    authz_slice copy = {*cursor, s.len};
    if (s.len) {
        memcpy(*cursor, s.ptr, s.len);
        *cursor += s.len;
    }
    return copy;
}

static authz_jwt_str keep_str(authz_jwt_str s, char **cursor)
{
    authz_jwt_str copy = {s.present, {NULL, 0}};
    if (s.present)
        copy.value = keep(s.value, cursor);
    return copy;
}

const pol_cached_token *pol_token_cache_put(pol_token_cache *cache, uint64_t generation,
                                            const uint8_t key[POL_TOKEN_KEY_LEN], const authz_jwt *jwt,
                                            size_t cluster_index, size_t key_index, int bound_rc,
                                            const authz_cidr *bound, size_t bound_count)
{
    _Static_assert(sizeof(cache_entry) % alignof(authz_slice) == 0, "aud slices follow the header");
    if (jwt->exp.state != AUTHZ_JWT_TIME_VALID || cluster_index > UINT32_MAX || key_index > UINT32_MAX ||
        jwt->aud_count > AUTHZ_JWT_MAX_AUDIENCES || bound_count > AUTHZ_JWT_MAX_CIDRS)
        return NULL;
    if (bound_rc != 1)
        bound_count = 0;
    /* Every string is a piece of the token (at most max_token_bytes), and the
     * counts are bounded above: the sum cannot overflow. */
    size_t size = sizeof(cache_entry) + jwt->aud_count * sizeof(authz_slice) +
                  bound_count * sizeof(authz_cidr) + strings_len(jwt);
    cache_entry *e = malloc(size);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    authz_slice *aud = (authz_slice *)(e + 1);
    authz_cidr *cidrs = (authz_cidr *)(aud + jwt->aud_count);
    char *cursor = (char *)(cidrs + bound_count);

    memcpy(e->key, key, POL_TOKEN_KEY_LEN);
    e->generation = generation;
    e->expires_at = jwt->exp.seconds;
    pol_cached_token *t = &e->pub;
    t->cluster_index = (uint32_t)cluster_index;
    t->key_index = (uint32_t)key_index;
    t->exp = jwt->exp;
    t->nbf = jwt->nbf;
    t->iat = jwt->iat;
    t->warnafter = jwt->k8s_warnafter;
    t->aud_present = jwt->aud_present;
    t->k8s_present = jwt->k8s_present;
    t->sub = keep_str(jwt->sub, &cursor);
    t->k8s_namespace = keep_str(jwt->k8s_namespace, &cursor);
    t->k8s_sa_name = keep_str(jwt->k8s_sa_name, &cursor);
    t->k8s_pod_name = keep_str(jwt->k8s_pod_name, &cursor);
    t->k8s_node_name = keep_str(jwt->k8s_node_name, &cursor);
    for (size_t i = 0; i < jwt->aud_count; i++)
        aud[i] = keep(jwt->aud[i], &cursor);
    t->aud = jwt->aud_count ? aud : NULL;
    t->aud_count = jwt->aud_count;
    t->bound_rc = bound_rc;
    if (bound_count)
        memcpy(cidrs, bound, bound_count * sizeof *cidrs);
    t->bound = bound_count ? cidrs : NULL;
    t->bound_count = bound_count;

    if (cache->count == cache->capacity)
        entry_remove(cache, cache->lru_tail);
    cache_entry **bucket = &cache->buckets[bucket_of(cache, e->key)];
    e->chain_next = *bucket;
    *bucket = e;
    lru_push_front(cache, e);
    cache->count++;
    return t;
}

void pol_cached_token_view(const pol_cached_token *t, authz_slice issuer, authz_jwt *out)
{
    memset(out, 0, sizeof *out);
    out->iss.present = true;
    out->iss.value = issuer;
    out->sub = t->sub;
    out->aud = t->aud;
    out->aud_count = t->aud_count;
    out->aud_present = t->aud_present;
    out->exp = t->exp;
    out->nbf = t->nbf;
    out->iat = t->iat;
    out->k8s_present = t->k8s_present;
    out->k8s_namespace = t->k8s_namespace;
    out->k8s_sa_name = t->k8s_sa_name;
    out->k8s_pod_name = t->k8s_pod_name;
    out->k8s_node_name = t->k8s_node_name;
    out->k8s_warnafter = t->warnafter;
}

size_t pol_token_cache_count(const pol_token_cache *cache)
{
    return cache->count;
}
