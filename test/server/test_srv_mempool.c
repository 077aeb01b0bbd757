#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srv_mempool.h"

static void *pmalloc(srv_mempool *p, size_t n)
{
    return p->mem.malloc(n, p->mem.mem_user_data);
}

static void pfree(srv_mempool *p, void *ptr)
{
    p->mem.free(ptr, p->mem.mem_user_data);
}

Test(srv_mempool, freed_block_is_reused_for_its_class)
{
    srv_mempool pool;
    srv_mempool_init(&pool);
    void *a = pmalloc(&pool, 152);
    cr_assert_not_null(a);
    cr_assert_eq((uintptr_t)a % _Alignof(max_align_t), 0, "aligned for any object");
    memset(a, 0xab, 152);
    pfree(&pool, a);
    cr_assert_gt(pool.held, 0);
    void *b = pmalloc(&pool, 200); /* same class (256 with the header) */
    cr_assert_eq(a, b, "the freed block comes back: no heap call");
    cr_assert_eq(pool.held, 0);
    void *c = pmalloc(&pool, 40); /* another class: a fresh block */
    cr_assert_neq(c, b);
    pfree(&pool, b);
    pfree(&pool, c);
    srv_mempool_release(&pool);
    cr_assert_eq(pool.held, 0);
}

Test(srv_mempool, calloc_zeroes_a_reused_block)
{
    srv_mempool pool;
    srv_mempool_init(&pool);
    unsigned char *a = pmalloc(&pool, 100);
    memset(a, 0xff, 100);
    pfree(&pool, a);
    unsigned char *b = pool.mem.calloc(10, 10, pool.mem.mem_user_data);
    cr_assert_eq(a, b);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(b[i], 0);
    cr_assert_null(pool.mem.calloc(SIZE_MAX / 2, 4, pool.mem.mem_user_data), "overflow is refused");
    pfree(&pool, b);
    srv_mempool_release(&pool);
}

Test(srv_mempool, realloc_keeps_the_bytes_across_classes_and_large_blocks)
{
    srv_mempool pool;
    srv_mempool_init(&pool);
    unsigned char *p = pool.mem.realloc(NULL, 20, pool.mem.mem_user_data);
    for (int i = 0; i < 20; i++)
        p[i] = (unsigned char)i;
    p = pool.mem.realloc(p, 24, pool.mem.mem_user_data); /* fits its class: stays */
    p = pool.mem.realloc(p, 3000, pool.mem.mem_user_data);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(p[i], i);
    p[2999] = 7;
    p = pool.mem.realloc(p, 100000, pool.mem.mem_user_data); /* beyond the classes: the heap */
    for (int i = 0; i < 20; i++)
        cr_assert_eq(p[i], i);
    cr_assert_eq(p[2999], 7);
    p = pool.mem.realloc(p, 200000, pool.mem.mem_user_data);
    cr_assert_eq(p[2999], 7);
    size_t held = pool.held;
    pfree(&pool, p);
    cr_assert_eq(pool.held, held, "a large block goes back to the heap, not the pool");
    pfree(&pool, NULL);
    srv_mempool_release(&pool);
}

Test(srv_mempool, free_blocks_held_are_bounded)
{
    srv_mempool pool;
    srv_mempool_init(&pool);
    size_t n = SRV_MEMPOOL_MAX_HELD / 1024 + 64;
    void **blocks = calloc(n, sizeof *blocks);
    for (size_t i = 0; i < n; i++)
        blocks[i] = pmalloc(&pool, 1000); /* 1024-byte class */
    for (size_t i = 0; i < n; i++)
        pfree(&pool, blocks[i]);
    cr_assert_leq(pool.held, SRV_MEMPOOL_MAX_HELD);
    cr_assert_geq(pool.held, SRV_MEMPOOL_MAX_HELD - 1024);
    free(blocks);
    srv_mempool_release(&pool);
    cr_assert_eq(pool.held, 0);
}
