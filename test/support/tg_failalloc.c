#include "tg_failalloc.h"

#include <stdlib.h>

static void *failalloc_malloc(size_t size, void *ctx)
{
    tg_failalloc *fa = ctx;
    if (fa->calls++ >= fa->budget)
        return NULL;
    return malloc(size);
}

static void failalloc_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

void tg_failalloc_init(tg_failalloc *fa, size_t budget)
{
    fa->alloc.malloc = failalloc_malloc;
    fa->alloc.free = failalloc_free;
    fa->alloc.ctx = fa;
    fa->budget = budget;
    fa->calls = 0;
}
