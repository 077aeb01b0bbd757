#include "authz_arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

struct authz_arena_chunk {
    authz_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

#define ARENA_ALIGN (alignof(max_align_t))
#define ARENA_DEFAULT_CHUNK 4096u

void authz_arena_init(authz_arena *arena, const authz_alloc *alloc, size_t chunk_size, size_t limit)
{
    arena->chunks = NULL;
    arena->alloc = alloc ? alloc : authz_alloc_default();
    arena->chunk_size = chunk_size ? chunk_size : ARENA_DEFAULT_CHUNK;
    arena->limit = limit;
    arena->held = 0;
}

static authz_arena_chunk *arena_new_chunk(authz_arena *arena, size_t min_size)
{
    size_t size = min_size > arena->chunk_size ? min_size : arena->chunk_size;
    if (size > SIZE_MAX - sizeof(authz_arena_chunk))
        return NULL;
    size_t total = sizeof(authz_arena_chunk) + size;
    if (arena->limit && (total > arena->limit || arena->held > arena->limit - total))
        return NULL;
    authz_arena_chunk *chunk = arena->alloc->malloc(total, arena->alloc->ctx);
    if (!chunk)
        return NULL;
    chunk->size = size;
    chunk->used = 0;
    arena->held += total;
    return chunk;
}

void *authz_arena_alloc(authz_arena *arena, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    authz_arena_chunk *chunk = arena->chunks;
    if (!chunk || chunk->size - chunk->used < rounded) {
        authz_arena_chunk *fresh = arena_new_chunk(arena, rounded);
        if (!fresh)
            return NULL;
        if (chunk && rounded > arena->chunk_size && chunk->size - chunk->used >= ARENA_ALIGN) {
            /* An oversized block goes behind the current chunk, which still has room. */
            fresh->next = chunk->next;
            chunk->next = fresh;
            fresh->used = rounded;
            return fresh->data;
        }
        fresh->next = chunk;
        arena->chunks = fresh;
        chunk = fresh;
    }
    void *out = chunk->data + chunk->used;
    chunk->used += rounded;
    return out;
}

void *authz_arena_calloc(authz_arena *arena, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *out = authz_arena_alloc(arena, count * size);
    if (out)
        memset(out, 0, count * size);
    return out;
}

char *authz_arena_strndup(authz_arena *arena, const char *src, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *out = authz_arena_alloc(arena, len + 1);
    if (!out)
        return NULL;
    if (len)
        memcpy(out, src, len);
    out[len] = '\0';
    return out;
}

void authz_arena_reset(authz_arena *arena)
{
    authz_arena_chunk *keep = NULL;
    authz_arena_chunk *chunk = arena->chunks;
    while (chunk) {
        authz_arena_chunk *next = chunk->next;
        if (!keep && chunk->size == arena->chunk_size) {
            keep = chunk;
        } else {
            arena->held -= sizeof(authz_arena_chunk) + chunk->size;
            arena->alloc->free(chunk, arena->alloc->ctx);
        }
        chunk = next;
    }
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    arena->chunks = keep;
}

void authz_arena_free(authz_arena *arena)
{
    authz_arena_chunk *chunk = arena->chunks;
    while (chunk) {
        authz_arena_chunk *next = chunk->next;
        arena->alloc->free(chunk, arena->alloc->ctx);
        chunk = next;
    }
    arena->chunks = NULL;
    arena->held = 0;
}
