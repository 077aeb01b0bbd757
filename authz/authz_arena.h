/* authz_arena: a bump allocator with a byte budget.
 *
 * One arena serves one request (or one decision): everything it hands out is
 * released at once by authz_arena_reset or authz_arena_free. The budget bounds
 * what a single hostile request can make us allocate. Not thread-safe; each
 * worker owns its arenas. */
#ifndef AUTHZ_ARENA_H
#define AUTHZ_ARENA_H

#include <stddef.h>

#include "authz_alloc.h"

typedef struct authz_arena_chunk authz_arena_chunk;

typedef struct authz_arena {
    authz_arena_chunk *chunks; /* owned; newest first, the first chunk is kept on reset */
    const authz_alloc *alloc;  /* borrowed */
    size_t chunk_size;         /* size of an ordinary chunk */
    size_t limit;              /* maximum bytes held in chunks */
    size_t held;               /* bytes currently held in chunks */
} authz_arena;

/* Initialises |arena|. No memory is taken until the first allocation.
 * |alloc| NULL means authz_alloc_default(). |chunk_size| 0 means 4 KiB;
 * |limit| 0 means no budget. */
void authz_arena_init(authz_arena *arena, const authz_alloc *alloc, size_t chunk_size, size_t limit);

/* Returns |size| bytes aligned for any object, or NULL when the budget would
 * be exceeded or the allocator fails. Valid until the next reset/free. */
void *authz_arena_alloc(authz_arena *arena, size_t size);

/* authz_arena_alloc, zero-filled, for |count| * |size| bytes with overflow
 * checked. */
void *authz_arena_calloc(authz_arena *arena, size_t count, size_t size);

/* Copies |len| bytes of |src| and a terminating NUL. NULL on failure. */
char *authz_arena_strndup(authz_arena *arena, const char *src, size_t len);

/* Releases every allocation; keeps one ordinary chunk for reuse so a steady
 * request load does not touch the heap. */
void authz_arena_reset(authz_arena *arena);

/* Releases every chunk. The arena may be initialised again. */
void authz_arena_free(authz_arena *arena);

#endif
