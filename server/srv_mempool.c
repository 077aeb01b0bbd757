#include "srv_mempool.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Marks a block that came from malloc directly (too large for a class). */
#define LARGE_CLASS UINT32_MAX

/* The header before every block's bytes; its size keeps the bytes aligned
 * for any object. */
struct srv_mempool_block {
    union {
        struct {
            srv_mempool_block *next; /* on a free list */
            uint32_t cls;            /* class index, or LARGE_CLASS */
        } h;
        max_align_t align;
    } u;
};

static size_t class_size(uint32_t cls)
{
    return (size_t)SRV_MEMPOOL_MIN_CLASS << cls;
}

/* The smallest class holding |size| bytes plus the header, or LARGE_CLASS. */
static uint32_t class_of(size_t size)
{
    if (size > SRV_MEMPOOL_MAX_CLASS - sizeof(srv_mempool_block)) {
        return LARGE_CLASS;
    }
    uint32_t cls = 0;
    while (class_size(cls) < size + sizeof(srv_mempool_block)) {
        cls++;
    }
    return cls;
}

static srv_mempool_block *header_of(void *ptr)
{
    return (srv_mempool_block *)ptr - 1;
}

static void *pool_malloc(size_t size, void *user_data)
{
    srv_mempool *pool = user_data;
    uint32_t cls = class_of(size);
    srv_mempool_block *b;

    if (cls == LARGE_CLASS) {
        if (size > SIZE_MAX - sizeof(*b)) {
            return NULL;
        }
        b = malloc(sizeof(*b) + size);
    } else if (pool->free_lists[cls] != NULL) {
        b = pool->free_lists[cls];
        pool->free_lists[cls] = b->u.h.next;
        pool->held -= class_size(cls);
    } else {
        b = malloc(class_size(cls));
    }
    if (b == NULL) {
        return NULL;
    }
    b->u.h.cls = cls;
    return b + 1;
}

static void pool_free(void *ptr, void *user_data)
{
    srv_mempool *pool = user_data;
    srv_mempool_block *b;

    if (ptr == NULL) {
        return;
    }
    b = header_of(ptr);
    if (b->u.h.cls == LARGE_CLASS || pool->held + class_size(b->u.h.cls) > SRV_MEMPOOL_MAX_HELD) {
        free(b);
        return;
    }
    b->u.h.next = pool->free_lists[b->u.h.cls];
    pool->free_lists[b->u.h.cls] = b;
    pool->held += class_size(b->u.h.cls);
}

static void *pool_calloc(size_t nmemb, size_t size, void *user_data)
{
    void *p;

    if (size != 0 && nmemb > SIZE_MAX / size) {
        return NULL;
    }
    p = pool_malloc(nmemb * size, user_data);
    if (p != NULL) {
        memset(p, 0, nmemb * size);
    }
    return p;
}

static void *pool_realloc(void *ptr, size_t size, void *user_data)
{
    srv_mempool_block *b;
    size_t room;
    void *p;

    if (ptr == NULL) {
        return pool_malloc(size, user_data);
    }
    b = header_of(ptr);
    if (b->u.h.cls == LARGE_CLASS) {
        /* Stays large: a class block is never handed to realloc. */
        if (size > SIZE_MAX - sizeof(*b)) {
            return NULL;
        }
        b = realloc(b, sizeof(*b) + size);
        return b != NULL ? b + 1 : NULL;
    }
    room = class_size(b->u.h.cls) - sizeof(*b);
    if (size <= room) {
        return ptr;
    }
    p = pool_malloc(size, user_data);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, ptr, room);
    pool_free(ptr, user_data);
    return p;
}

void srv_mempool_init(srv_mempool *pool)
{
    memset(pool, 0, sizeof(*pool));
    pool->mem.mem_user_data = pool;
    pool->mem.malloc = pool_malloc;
    pool->mem.free = pool_free;
    pool->mem.calloc = pool_calloc;
    pool->mem.realloc = pool_realloc;
}

void srv_mempool_release(srv_mempool *pool)
{
    for (size_t i = 0; i < SRV_MEMPOOL_CLASSES; i++) {
        while (pool->free_lists[i] != NULL) {
            srv_mempool_block *b = pool->free_lists[i];
            pool->free_lists[i] = b->u.h.next;
            free(b);
        }
    }
    pool->held = 0;
}
