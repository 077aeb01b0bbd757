#include "srv_pbarena.h"

static void *pbarena_alloc(void *data, size_t size)
{
    return authz_arena_alloc(data, size);
}

static void pbarena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

ProtobufCAllocator srv_pbarena_allocator(authz_arena *arena)
{
    ProtobufCAllocator a = {pbarena_alloc, pbarena_free, arena};
    return a;
}
