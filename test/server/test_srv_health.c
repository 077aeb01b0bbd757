#include <criterion/criterion.h>

#include "grpc/health/v1/health.pb-c.h"
#include "srv_grpc.h"
#include "srv_health.h"

static authz_arena arena;

static void setup(void)
{
    authz_arena_init(&arena, NULL, 0, 0);
}

static void teardown(void)
{
    authz_arena_free(&arena);
}

TestSuite(srv_health, .init = setup, .fini = teardown);

static int ask(const char *service, bool serving, int *status_out)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    uint8_t wire[256];
    uint8_t *out = NULL;
    size_t out_len = 0;

    req.service = (char *)service;
    size_t n = grpc__health__v1__health_check_request__pack(&req, wire);
    int rc = srv_health_check(wire, n, serving, &arena, &out, &out_len);
    if (rc == SRV_GRPC_OK) {
        Grpc__Health__V1__HealthCheckResponse *resp =
            grpc__health__v1__health_check_response__unpack(NULL, out_len, out);
        cr_assert_not_null(resp);
        *status_out = resp->status;
        grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    }
    return rc;
}

Test(srv_health, whole_server_and_authorization_service)
{
    int status = -1;
    cr_assert_eq(ask("", true, &status), SRV_GRPC_OK);
    cr_assert_eq(status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    cr_assert_eq(ask("envoy.service.auth.v3.Authorization", true, &status), SRV_GRPC_OK);
    cr_assert_eq(status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
}

Test(srv_health, draining_is_not_serving)
{
    int status = -1;
    cr_assert_eq(ask("", false, &status), SRV_GRPC_OK);
    cr_assert_eq(status, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
}

Test(srv_health, unknown_service_not_found)
{
    int status = -1;
    cr_assert_eq(ask("envoy.service.auth.v2.Authorization", true, &status), SRV_GRPC_NOT_FOUND);
    cr_assert_eq(ask("Authorization", true, &status), SRV_GRPC_NOT_FOUND);
}

Test(srv_health, garbage_is_invalid_argument)
{
    static const uint8_t junk[] = {0x0a, 0x50, 'x'};
    uint8_t *out = NULL;
    size_t out_len = 0;
    cr_assert_eq(srv_health_check(junk, sizeof(junk), true, &arena, &out, &out_len),
                 SRV_GRPC_INVALID_ARGUMENT);
}
