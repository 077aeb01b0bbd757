/* srv_pbarena: a ProtobufCAllocator that takes memory from an authz_arena.
 *
 * protobuf-c unpacks a message into many small allocations; backing them by
 * the request's arena means no heap traffic per request and one release for
 * all of it (authz_arena_reset). free is a no-op. The wrapper remembers
 * whether an allocation was refused, so a caller can tell "out of budget"
 * from "does not decode" when unpack returns NULL. */
#ifndef SRV_PBARENA_H
#define SRV_PBARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "authz_arena.h"

typedef struct srv_pbarena {
    ProtobufCAllocator alloc; /* pass &pb.alloc to protobuf-c */
    authz_arena *arena;       /* borrowed; must outlive every unpacked message */
    bool failed;              /* an allocation was refused */
} srv_pbarena;

/* Prepares |pb| to allocate from |arena|. */
void srv_pbarena_init(srv_pbarena *pb, authz_arena *arena);

#endif
