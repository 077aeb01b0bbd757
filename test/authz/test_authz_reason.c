#include <criterion/criterion.h>
#include <string.h>

#include "authz_reason.h"

static const char *const names[AUTHZ_REASON_COUNT] = {
    "ok",
    "missing_token",
    "malformed_token",
    "unsupported_alg",
    "unknown_key",
    "bad_signature",
    "unknown_issuer",
    "cluster_mismatch",
    "audience_mismatch",
    "expired",
    "not_yet_valid",
    "missing_claim",
    "stale_token",
    "unknown_cluster",
    "source_not_allowed",
    "forbidden",
    "internal_error",
    "malformed_request",
    "peer_mismatch",
    "peer_missing",
    "provider_not_allowed",
    "claim_mismatch",
};

Test(reason, names_round_trip)
{
    /* Appended reasons keep the numbers logs and tools already know. */
    cr_assert_eq(AUTHZ_REASON_INTERNAL_ERROR, 16);
    cr_assert_eq(AUTHZ_REASON_MALFORMED_REQUEST, 17);
    cr_assert_eq(AUTHZ_REASON_PEER_MISSING, 19);
    for (unsigned i = 0; i < AUTHZ_REASON_COUNT; i++) {
        cr_assert_str_eq(authz_reason_name((authz_reason)i), names[i]);
        cr_assert_eq(authz_reason_from_name(names[i]), (authz_reason)i);
    }
    cr_assert_eq(authz_reason_from_name("nope"), AUTHZ_REASON_COUNT);
    cr_assert_eq(authz_reason_from_name(""), AUTHZ_REASON_COUNT);
    cr_assert_eq(authz_reason_from_name("Expired"), AUTHZ_REASON_COUNT);
    cr_assert_str_eq(authz_reason_name(AUTHZ_REASON_COUNT), "internal_error");
    cr_assert_str_eq(authz_reason_name((authz_reason)999), "internal_error");
}

Test(reason, grpc_and_http_mapping)
{
    cr_assert_eq(authz_reason_grpc_code(AUTHZ_REASON_OK), 0);
    cr_assert_eq(authz_reason_http_status(AUTHZ_REASON_OK), 200);
    for (unsigned r = AUTHZ_REASON_MISSING_TOKEN; r <= AUTHZ_REASON_STALE_TOKEN; r++) {
        cr_assert_eq(authz_reason_grpc_code((authz_reason)r), 16, "%s", names[r]);
        cr_assert_eq(authz_reason_http_status((authz_reason)r), 401, "%s", names[r]);
    }
    authz_reason denied[] = {AUTHZ_REASON_UNKNOWN_CLUSTER, AUTHZ_REASON_SOURCE_NOT_ALLOWED,
                             AUTHZ_REASON_FORBIDDEN, AUTHZ_REASON_PEER_MISMATCH, AUTHZ_REASON_PEER_MISSING};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        cr_assert_eq(authz_reason_grpc_code(denied[i]), 7);
        cr_assert_eq(authz_reason_http_status(denied[i]), 403);
    }
    cr_assert_eq(authz_reason_grpc_code(AUTHZ_REASON_PROVIDER_NOT_ALLOWED), 7);
    cr_assert_eq(authz_reason_http_status(AUTHZ_REASON_PROVIDER_NOT_ALLOWED), 403);
    cr_assert_eq(authz_reason_grpc_code(AUTHZ_REASON_CLAIM_MISMATCH), 16);
    cr_assert_eq(authz_reason_http_status(AUTHZ_REASON_CLAIM_MISMATCH), 401);
    cr_assert_eq(authz_reason_grpc_code(AUTHZ_REASON_MALFORMED_REQUEST), 3, "INVALID_ARGUMENT");
    cr_assert_eq(authz_reason_http_status(AUTHZ_REASON_MALFORMED_REQUEST), 400);
    cr_assert_eq(authz_reason_grpc_code(AUTHZ_REASON_INTERNAL_ERROR), 13);
    cr_assert_eq(authz_reason_http_status(AUTHZ_REASON_INTERNAL_ERROR), 503);
    cr_assert_eq(authz_reason_grpc_code((authz_reason)999), 13, "unknown values fail closed");
    cr_assert_eq(authz_reason_http_status((authz_reason)999), 503);
}

Test(reason, status_set)
{
    authz_status st;
    cr_assert_eq(authz_status_set(&st, AUTHZ_REASON_EXPIRED, "exp %d", 42), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_EXPIRED);
    cr_assert_str_eq(st.message, "exp 42");
    cr_assert_eq(authz_status_set(&st, AUTHZ_REASON_OK, "ok"), 0);
    cr_assert_eq(st.reason, AUTHZ_REASON_OK);
}

Test(reason, status_set_sanitizes_and_truncates)
{
    authz_status st;
    authz_status_set(&st, AUTHZ_REASON_MALFORMED_TOKEN, "a%sb", "\n\x1b\x7f\xc3\xa9");
    cr_assert_str_eq(st.message, "a?????b");

    char long_text[1000];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    authz_status_set(&st, AUTHZ_REASON_FORBIDDEN, "%s", long_text);
    cr_assert_eq(strlen(st.message), AUTHZ_MESSAGE_MAX - 1);
}

/* Every reason has its own sentence (a reason added without one would get
 * internal_error's, which this catches), printable ASCII without quotes or
 * backslashes, so it needs no escaping in a header, JSON or a gRPC status. */
Test(reason, every_reason_has_its_own_public_message)
{
    for (unsigned i = 0; i < AUTHZ_REASON_COUNT; i++) {
        const char *m = authz_reason_public_message((authz_reason)i);
        cr_assert_not_null(m);
        cr_assert_gt(strlen(m), 5, "%s", names[i]);
        for (const char *c = m; *c; c++)
            cr_assert(*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\', "%s: byte %d", names[i], *c);
        for (unsigned j = 0; j < i; j++)
            cr_assert_str_neq(m, authz_reason_public_message((authz_reason)j), "%s and %s share a sentence",
                              names[i], names[j]);
    }
    cr_assert_str_eq(authz_reason_public_message(AUTHZ_REASON_COUNT),
                     authz_reason_public_message(AUTHZ_REASON_INTERNAL_ERROR));
}
