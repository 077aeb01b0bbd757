/* authz_alloc: the project allocator table.
 *
 * Everything on the request path allocates through one of these (usually via
 * an authz_arena), so tests can fail the Nth allocation and prove that every
 * error path denies cleanly and leaks nothing. */
#ifndef AUTHZ_ALLOC_H
#define AUTHZ_ALLOC_H

#include <stddef.h>

typedef struct authz_alloc {
    /* Returns |size| bytes or NULL. */
    void *(*malloc)(size_t size, void *ctx);
    /* Releases what malloc returned; NULL is a no-op. */
    void (*free)(void *ptr, void *ctx);
    void *ctx;
} authz_alloc;

/* The libc-backed allocator (static storage, stateless). */
const authz_alloc *authz_alloc_default(void);

#endif
