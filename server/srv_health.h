/* srv_health: grpc.health.v1.Health/Check (grpc doc/health-checking.md).
 *
 * The server registers "" (the whole server) and
 * "envoy.service.auth.v3.Authorization". No I/O. */
#ifndef SRV_HEALTH_H
#define SRV_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz_arena.h"

/* Answers a HealthCheckRequest in |msg| (|len| bytes): SERVING when
 * |serving|, else NOT_SERVING. Returns the grpc-status: 0 with *out /
 * *out_len the packed HealthCheckResponse (arena-owned), 5 NOT_FOUND for
 * an unknown service, 3 INVALID_ARGUMENT when |msg| does not decode, 8
 * RESOURCE_EXHAUSTED when the arena runs out. */
int srv_health_check(const uint8_t *msg, size_t len, bool serving, authz_arena *arena, uint8_t **out,
                     size_t *out_len);

#endif
