/* tg_malloc_count: an LD_PRELOAD library that counts heap calls of a
 * running process, for the benchmark and the zero-allocation test.
 *
 * Counts every malloc, calloc, realloc, posix_memalign, aligned_alloc,
 * memalign and free (free(NULL) excluded) over all threads. On SIGUSR2 it
 * writes "allocs N frees M\n" to the file named by TG_MALLOC_COUNT_FILE
 * (replacing it), so a driver reads the counts before and after a load and
 * divides the difference by the requests sent.
 *
 * For a plain build the calls are interposed and passed on to the next
 * definition (glibc's). For a process under AddressSanitizer or
 * ThreadSanitizer, which own malloc, build with -DTG_COUNT_HOOKS_ONLY: the
 * sanitizer's allocation hooks count instead (run with
 * ASAN_OPTIONS=verify_asan_link_order=0 so ASan accepts the preload). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_ulong allocs;
static atomic_ulong frees;
/* Under a sanitizer its hooks count and the interposers only pass calls on. */
static bool use_hooks;

/* The sanitizers' hook API; absent (NULL) in a plain build. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *)) __attribute__((weak));

static void hook_malloc(const volatile void *p, size_t size)
{
    (void)p;
    (void)size;
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
}

static void hook_free(const volatile void *p)
{
    if (p)
        atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
}

static void on_report(int sig)
{
    (void)sig;
    const char *path = getenv("TG_MALLOC_COUNT_FILE");
    if (!path)
        return;
    char line[96];
    int n = snprintf(line, sizeof line, "allocs %lu frees %lu\n",
                     atomic_load_explicit(&allocs, memory_order_relaxed),
                     atomic_load_explicit(&frees, memory_order_relaxed));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || n <= 0)
        return;
    ssize_t ignored = write(fd, line, (size_t)n);
    (void)ignored;
    close(fd);
}

__attribute__((constructor)) static void count_init(void)
{
    if (__sanitizer_install_malloc_and_free_hooks)
        use_hooks = __sanitizer_install_malloc_and_free_hooks(hook_malloc, hook_free) != 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_report;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}

#ifndef TG_COUNT_HOOKS_ONLY
/* ---- interposition (plain builds) ---- */

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*aligned_alloc_fn)(size_t, size_t);

/* dlsym may itself call calloc: it gets this static block meanwhile. */
static unsigned char bootstrap[4096] __attribute__((aligned(64)));
static size_t bootstrap_used;
static _Thread_local bool resolving;

#define NEXT(type, name)                                                                                     \
    static type next_##name;                                                                                 \
    if (!next_##name) {                                                                                      \
        resolving = true;                                                                                    \
        next_##name = (type)dlsym(RTLD_NEXT, #name);                                                         \
        resolving = false;                                                                                   \
    }

static void count_alloc(void)
{
    if (!use_hooks)
        atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
}

static void count_free(void)
{
    if (!use_hooks)
        atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
}

static void *bootstrap_alloc(size_t size)
{
    size = (size + 63) & ~(size_t)63;
    if (size > sizeof bootstrap - bootstrap_used)
        return NULL;
    void *p = bootstrap + bootstrap_used;
    bootstrap_used += size;
    return p;
}

static bool from_bootstrap(const void *p)
{
    return (const unsigned char *)p >= bootstrap && (const unsigned char *)p < bootstrap + sizeof bootstrap;
}

void *malloc(size_t size)
{
    if (resolving)
        return bootstrap_alloc(size);
    NEXT(malloc_fn, malloc);
    count_alloc();
    return next_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    if (resolving)
        return bootstrap_alloc(n * size); /* zeroed: static storage */
    NEXT(calloc_fn, calloc);
    count_alloc();
    return next_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    NEXT(realloc_fn, realloc);
    count_alloc();
    if (p)
        count_free();
    return next_realloc(p, size);
}

void free(void *p)
{
    if (!p || from_bootstrap(p))
        return;
    NEXT(free_fn, free);
    count_free();
    next_free(p);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    NEXT(posix_memalign_fn, posix_memalign);
    count_alloc();
    return next_posix_memalign(out, align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    NEXT(aligned_alloc_fn, aligned_alloc);
    count_alloc();
    return next_aligned_alloc(align, size);
}

void *memalign(size_t align, size_t size)
{
    NEXT(aligned_alloc_fn, memalign);
    count_alloc();
    return next_memalign(align, size);
}
#endif
