#include "srv_pbarena.h"

static void *pbarena_alloc(void *data, size_t size)
{
    srv_pbarena *pb = data;
    void *p = authz_arena_alloc(pb->arena, size);
    if (p == NULL) {
        pb->failed = true;
    }
    return p;
}

static void pbarena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void srv_pbarena_init(srv_pbarena *pb, authz_arena *arena)
{
    pb->alloc.alloc = pbarena_alloc;
    pb->alloc.free = pbarena_free;
    pb->alloc.allocator_data = pb;
    pb->arena = arena;
    pb->failed = false;
}
