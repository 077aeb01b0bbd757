/* tg_failalloc: allocation-failure injection for the project allocator.
 *
 * An authz_alloc that succeeds |budget| times and then fails every call, so
 * a test can sweep budgets 0, 1, 2, ... and prove that each allocation
 * failure on a path denies cleanly (the sanitizers prove nothing leaks). */
#ifndef TG_FAILALLOC_H
#define TG_FAILALLOC_H

#include <stddef.h>

#include "authz_alloc.h"

typedef struct tg_failalloc {
    authz_alloc alloc; /* pass &fa.alloc wherever an authz_alloc is taken */
    size_t budget;     /* successful calls allowed */
    size_t calls;      /* calls so far */
} tg_failalloc;

/* Prepares |fa| to allow |budget| allocations. */
void tg_failalloc_init(tg_failalloc *fa, size_t budget);

#endif
