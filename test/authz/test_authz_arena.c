#include <criterion/criterion.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authz_arena.h"

/* Counts live blocks and can refuse allocations once |fail_after| is reached. */
typedef struct counting {
    size_t mallocs;
    size_t frees;
    size_t fail_after; /* 0 = never fail */
} counting;

static void *counting_malloc(size_t size, void *ctx)
{
    counting *c = ctx;
    if (c->fail_after && c->mallocs >= c->fail_after)
        return NULL;
    c->mallocs++;
    return malloc(size);
}

static void counting_free(void *ptr, void *ctx)
{
    counting *c = ctx;
    if (ptr)
        c->frees++;
    free(ptr);
}

static authz_alloc counting_alloc(counting *c)
{
    authz_alloc a = {counting_malloc, counting_free, c};
    return a;
}

Test(arena, alignment)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 0);
    size_t sizes[] = {1, 3, 7, 8, 15, 16, 17, 33, 100};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = authz_arena_alloc(&arena, sizes[i]);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % alignof(max_align_t), 0, "size %zu misaligned", sizes[i]);
        memset(p, 0xab, sizes[i]);
    }
    authz_arena_free(&arena);
}

Test(arena, zero_size_gives_distinct_pointers)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 0);
    void *a = authz_arena_alloc(&arena, 0);
    void *b = authz_arena_alloc(&arena, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b);
    authz_arena_free(&arena);
}

Test(arena, lazy_first_chunk)
{
    counting c = {0};
    authz_alloc a = counting_alloc(&c);
    authz_arena arena;
    authz_arena_init(&arena, &a, 256, 0);
    cr_assert_eq(c.mallocs, 0);
    cr_assert_not_null(authz_arena_alloc(&arena, 8));
    cr_assert_eq(c.mallocs, 1);
    cr_assert_not_null(authz_arena_alloc(&arena, 8));
    cr_assert_eq(c.mallocs, 1, "small allocations share the chunk");
    authz_arena_free(&arena);
    cr_assert_eq(c.frees, c.mallocs);
}

Test(arena, budget_limit)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 1024, 4096);
    size_t got = 0;
    while (authz_arena_alloc(&arena, 512))
        got++;
    cr_assert_gt(got, 0);
    cr_assert_lt(got, 8, "the budget caps what is handed out");
    cr_assert_leq(arena.held, 4096);
    cr_assert_null(authz_arena_alloc(&arena, 100000));
    cr_assert_null(authz_arena_alloc(&arena, 8192), "a single block above the budget is refused");
    authz_arena_free(&arena);
    cr_assert_eq(arena.held, 0);
}

Test(arena, reset_keeps_one_chunk)
{
    counting c = {0};
    authz_alloc a = counting_alloc(&c);
    authz_arena arena;
    authz_arena_init(&arena, &a, 256, 0);
    for (int i = 0; i < 20; i++)
        cr_assert_not_null(authz_arena_alloc(&arena, 100));
    size_t before = c.mallocs;
    cr_assert_gt(before, 2);
    authz_arena_reset(&arena);
    cr_assert_eq(c.mallocs - c.frees, 1, "one chunk stays");
    cr_assert_not_null(arena.chunks);

    /* Reuse after reset does not touch the heap. */
    cr_assert_not_null(authz_arena_alloc(&arena, 100));
    cr_assert_not_null(authz_arena_alloc(&arena, 100));
    cr_assert_eq(c.mallocs, before);
    authz_arena_free(&arena);
    cr_assert_eq(c.frees, c.mallocs);
}

Test(arena, large_allocations)
{
    counting c = {0};
    authz_alloc a = counting_alloc(&c);
    authz_arena arena;
    authz_arena_init(&arena, &a, 256, 0);
    char *small = authz_arena_alloc(&arena, 16);
    cr_assert_not_null(small);
    memset(small, 's', 16);
    char *big = authz_arena_alloc(&arena, 10000);
    cr_assert_not_null(big);
    memset(big, 'b', 10000);
    /* The current chunk still serves small requests after the oversized one. */
    char *small2 = authz_arena_alloc(&arena, 16);
    cr_assert_not_null(small2);
    cr_assert_eq(c.mallocs, 2);
    memset(small2, 't', 16);
    cr_assert_eq(small[15], 's');
    cr_assert_eq(big[9999], 'b');

    authz_arena_reset(&arena);
    cr_assert_eq(c.mallocs - c.frees, 1, "the oversized chunk is released on reset");
    authz_arena_free(&arena);
    cr_assert_eq(c.frees, c.mallocs);
}

Test(arena, huge_sizes_fail)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 0);
    cr_assert_null(authz_arena_alloc(&arena, SIZE_MAX));
    cr_assert_null(authz_arena_alloc(&arena, SIZE_MAX - 8));
    authz_arena_free(&arena);
}

Test(arena, calloc)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 0);
    unsigned char *dirty = authz_arena_alloc(&arena, 64);
    memset(dirty, 0xff, 64);
    authz_arena_reset(&arena);
    unsigned char *z = authz_arena_calloc(&arena, 8, 8);
    cr_assert_not_null(z);
    for (size_t i = 0; i < 64; i++)
        cr_assert_eq(z[i], 0);
    cr_assert_null(authz_arena_calloc(&arena, SIZE_MAX / 2, 3), "count * size overflows");
    cr_assert_null(authz_arena_calloc(&arena, (SIZE_MAX >> 4) + 1, 16));
    cr_assert_not_null(authz_arena_calloc(&arena, 0, 16));
    authz_arena_free(&arena);
}

Test(arena, strndup)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 0);
    char *s = authz_arena_strndup(&arena, "hello world", 5);
    cr_assert_str_eq(s, "hello");
    char *e = authz_arena_strndup(&arena, NULL, 0);
    cr_assert_str_eq(e, "");
    char *nul = authz_arena_strndup(&arena, "a\0b", 3);
    cr_assert_eq(nul[2], 'b');
    cr_assert_eq(nul[3], '\0');
    cr_assert_null(authz_arena_strndup(&arena, "x", SIZE_MAX));
    authz_arena_free(&arena);
}

Test(arena, allocator_failure)
{
    counting c = {.fail_after = 1};
    authz_alloc a = counting_alloc(&c);
    authz_arena arena;
    authz_arena_init(&arena, &a, 128, 0);
    cr_assert_not_null(authz_arena_alloc(&arena, 100));
    cr_assert_null(authz_arena_alloc(&arena, 100), "the second chunk cannot be had");
    char src[200];
    memset(src, 'q', sizeof src);
    cr_assert_null(authz_arena_strndup(&arena, src, sizeof src));
    authz_arena_free(&arena);
    cr_assert_eq(c.frees, 1);
}

Test(arena, free_then_reinit)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 64, 0);
    cr_assert_not_null(authz_arena_alloc(&arena, 10));
    authz_arena_free(&arena);
    authz_arena_free(&arena);
    cr_assert_null(arena.chunks);
    authz_arena_init(&arena, NULL, 64, 0);
    cr_assert_not_null(authz_arena_alloc(&arena, 10));
    authz_arena_reset(&arena);
    authz_arena_free(&arena);
}
