/* srv_pbarena: a ProtobufCAllocator that takes memory from an authz_arena.
 *
 * protobuf-c unpacks a message into many small allocations; backing them by
 * the request's arena means no heap traffic per request and one release for
 * all of it (authz_arena_reset). free is a no-op. */
#ifndef SRV_PBARENA_H
#define SRV_PBARENA_H

#include <protobuf-c/protobuf-c.h>

#include "authz_arena.h"

/* An allocator that allocates from |arena| (borrowed; must outlive every
 * message unpacked with it). */
ProtobufCAllocator srv_pbarena_allocator(authz_arena *arena);

#endif
