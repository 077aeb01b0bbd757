/* srv_mempool: a per-worker pool of small heap blocks behind nghttp2_mem.
 *
 * nghttp2 allocates a handful of small objects for every stream (the stream,
 * its outbound HEADERS, DATA and trailer items, copies of header lists,
 * received header buffers) and frees them when the stream ends. Routed
 * through this pool, a freed block goes onto a free list of its size class
 * and the next stream takes it back, so a steady load does no heap calls.
 *
 * Each block carries a 16-byte header naming its class (nghttp2_mem's free
 * gets no size). Requests above SRV_MEMPOOL_MAX_CLASS bytes (session
 * buffers, HPACK tables: once per connection) go to malloc directly. Free
 * blocks held are bounded by SRV_MEMPOOL_MAX_HELD bytes; beyond that a
 * freed block goes back to the heap, so a burst of streams does not pin
 * its peak. Not thread-safe: one pool per worker, used on its thread (and
 * at destruction after the thread ended). */
#ifndef SRV_MEMPOOL_H
#define SRV_MEMPOOL_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>

#define SRV_MEMPOOL_MIN_CLASS 32u
#define SRV_MEMPOOL_MAX_CLASS 4096u
#define SRV_MEMPOOL_CLASSES 8u /* 32, 64, ..., 4096 bytes, header included */
#define SRV_MEMPOOL_MAX_HELD (2u * 1024u * 1024u)

typedef struct srv_mempool_block srv_mempool_block;

typedef struct srv_mempool {
    nghttp2_mem mem; /* pass &pool.mem to nghttp2; mem_user_data is the pool */
    srv_mempool_block *free_lists[SRV_MEMPOOL_CLASSES];
    size_t held; /* bytes of the blocks on the free lists */
} srv_mempool;

/* Prepares |pool| (empty; no memory is taken until the first allocation). */
void srv_mempool_init(srv_mempool *pool);

/* Returns every free block to the heap. Blocks still in use must have been
 * freed first (every nghttp2 session using the pool deleted). */
void srv_mempool_release(srv_mempool *pool);

#endif
