/* A deliberate leak, to prove that leaks fail the run (see CMakeLists.txt):
 * "leaks" passes every assertion and loses its memory; "frees" does the same
 * work and frees it. */
#include <criterion/criterion.h>
#include <stdlib.h>

#define BLOCKS 8

/* The only references: cleared, so LeakSanitizer finds the blocks unreachable. */
static void *volatile blocks[BLOCKS];

static void allocate(void)
{
    for (size_t i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(64 + i);
        cr_assert_not_null(blocks[i]);
    }
}

Test(leak_canary, leaks)
{
    allocate();
    for (size_t i = 0; i < BLOCKS; i++)
        blocks[i] = NULL;
}

Test(leak_canary, frees)
{
    allocate();
    for (size_t i = 0; i < BLOCKS; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
}
