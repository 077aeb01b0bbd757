#include "authz_alloc.h"

#include <stdlib.h>

static void *libc_malloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}

static void libc_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

static const authz_alloc libc_alloc = {libc_malloc, libc_free, NULL};

const authz_alloc *authz_alloc_default(void)
{
    return &libc_alloc;
}
