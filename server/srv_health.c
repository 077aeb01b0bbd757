#include "srv_health.h"

#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "srv_grpc.h"
#include "srv_pbarena.h"

int srv_health_check(const uint8_t *msg, size_t len, bool serving, authz_arena *arena, uint8_t **out,
                     size_t *out_len)
{
    srv_pbarena pb;
    Grpc__Health__V1__HealthCheckRequest *req;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    uint8_t *buf;
    size_t size;

    srv_pbarena_init(&pb, arena);
    req = grpc__health__v1__health_check_request__unpack(&pb.alloc, len, msg);
    if (req == NULL) {
        return pb.failed ? SRV_GRPC_RESOURCE_EXHAUSTED : SRV_GRPC_INVALID_ARGUMENT;
    }
    if (req->service[0] != '\0' && strcmp(req->service, "envoy.service.auth.v3.Authorization") != 0) {
        return SRV_GRPC_NOT_FOUND;
    }
    resp.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                          : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    size = grpc__health__v1__health_check_response__get_packed_size(&resp);
    buf = authz_arena_alloc(arena, size > 0 ? size : 1);
    if (buf == NULL) {
        return SRV_GRPC_RESOURCE_EXHAUSTED;
    }
    *out_len = grpc__health__v1__health_check_response__pack(&resp, buf);
    *out = buf;
    return SRV_GRPC_OK;
}
