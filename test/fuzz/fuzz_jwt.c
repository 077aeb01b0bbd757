/* fuzz_jwt: authz_jwt_parse on the input as a compact JWS (default limits),
 * and authz_bearer_extract on "Bearer " + input and on the input alone.
 *
 * Checks: a failure leaves a denial reason and a zeroed output; an arena of
 * twice authz_jwt_arena_bound never runs out, a starved one gives the same
 * answer or internal_error; a parsed token's signing input is
 * the token up to its second dot, its signature is at most 1024 bytes, its
 * audience list is bounded, and the bound-CIDR claim reader stays in its
 * bounds. An extracted bearer credential lies inside the header, is not
 * empty and holds no whitespace or comma. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_bearer.h"
#include "authz_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "jwt: " __VA_ARGS__);                                                                          \
        fprintf(stderr, "\n");                                                                                         \
        abort();                                                                                                       \
    } while (0)

static void check_denial(const authz_status *st)
{
    if (st->reason == AUTHZ_REASON_OK || st->reason >= AUTHZ_REASON_COUNT ||
        memchr(st->message, '\0', sizeof(st->message)) == NULL) {
        FAIL("failure with reason %d", (int)st->reason);
    }
}

/* A second parse in an arena too small for most tokens: it either gives
 * the same answer or runs out, and running out is internal_error. */
static void fuzz_parse_starved(authz_slice token, const authz_jwt *full, int full_rc, const authz_status *full_st)
{
    authz_arena arena;
    authz_jwt jwt;
    authz_status st;
    int rc;

    authz_arena_init(&arena, NULL, 256, 1536);
    memset(&st, 0, sizeof(st));
    rc = authz_jwt_parse(token, NULL, &arena, &jwt, &st);
    if (rc != 0) {
        check_denial(&st);
    }
    if (rc != 0 && st.reason != AUTHZ_REASON_INTERNAL_ERROR && (full_rc == 0 || st.reason != full_st->reason)) {
        FAIL("starved arena: reason %d, with room %d", (int)st.reason, full_rc == 0 ? 0 : (int)full_st->reason);
    }
    if (rc == 0 && (full_rc != 0 || jwt.alg != full->alg || jwt.signature_len != full->signature_len ||
                    jwt.aud_count != full->aud_count || memcmp(jwt.signature, full->signature, jwt.signature_len))) {
        FAIL("starved arena parses differently");
    }
    authz_arena_free(&arena);
}

static void fuzz_parse(authz_slice token)
{
    static const authz_jwt zero;
    authz_jwt jwt;
    authz_status st;
    authz_cidr cidrs[AUTHZ_JWT_MAX_CIDRS];
    size_t count = (size_t)-1;
    const char *dot1;
    const char *dot2;
    authz_arena arena;
    int rc;

    memset(&jwt, 0x5A, sizeof(jwt));
    memset(&st, 0, sizeof(st));
    /* authz_jwt_arena_bound's promise: this budget never runs out. */
    authz_arena_init(&arena, NULL, 4096, 2 * authz_jwt_arena_bound(NULL) + 4096);
    rc = authz_jwt_parse(token, NULL, &arena, &jwt, &st);
    fuzz_parse_starved(token, &jwt, rc, &st);
    if (rc != 0) {
        check_denial(&st);
        if (st.reason == AUTHZ_REASON_INTERNAL_ERROR) {
            FAIL("ran out of an arena of twice authz_jwt_arena_bound");
        }
        if (memcmp(&jwt, &zero, sizeof(jwt)) != 0) {
            FAIL("failure leaves the output not zeroed");
        }
        authz_arena_free(&arena);
        return;
    }
    dot1 = memchr(token.ptr, '.', token.len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', token.len - (size_t)(dot1 + 1 - token.ptr)) : NULL;
    if (dot2 == NULL || jwt.signing_input.ptr != token.ptr ||
        jwt.signing_input.len != (size_t)(dot2 - token.ptr)) {
        FAIL("signing input is not the token up to its second dot");
    }
    if (token.len > AUTHZ_JWT_DEFAULT_MAX_TOKEN || jwt.signature_len == 0 || jwt.signature_len > 1024 ||
        jwt.signature == NULL) {
        FAIL("accepted a %zu-byte token with a %zu-byte signature", token.len, jwt.signature_len);
    }
    if (jwt.aud_count > AUTHZ_JWT_MAX_AUDIENCES || (jwt.aud_count > 0 && !jwt.aud_present)) {
        FAIL("%zu audiences", jwt.aud_count);
    }
    for (size_t i = 0; i < jwt.aud_count; i++) {
        if (jwt.aud[i].len > 0 && jwt.aud[i].ptr == NULL) {
            FAIL("audience %zu has no bytes", i);
        }
    }
    rc = authz_jwt_cidr_claim(&jwt, "boundCIDRs", cidrs, AUTHZ_JWT_MAX_CIDRS, &count);
    if ((rc == 0 && count != 0) || (rc == 1 && (count == 0 || count > AUTHZ_JWT_MAX_CIDRS)) || rc < -1 || rc > 1) {
        FAIL("cidr claim rc %d count %zu", rc, count);
    }
    /* A smaller capacity than the claim holds must be refused, not overrun. */
    rc = authz_jwt_cidr_claim(&jwt, "boundCIDRs", cidrs, 1, &count);
    if (rc == 1 && count > 1) {
        FAIL("cidr claim wrote %zu into 1", count);
    }
    authz_arena_free(&arena);
}

static void fuzz_bearer(authz_slice header)
{
    authz_slice token = {NULL, 0};
    authz_status st;

    memset(&st, 0, sizeof(st));
    if (authz_bearer_extract(header, &token, &st) != 0) {
        check_denial(&st);
        if (st.reason != AUTHZ_REASON_MISSING_TOKEN && st.reason != AUTHZ_REASON_MALFORMED_TOKEN) {
            FAIL("bearer reason %d", (int)st.reason);
        }
        return;
    }
    if (token.len == 0 || token.ptr < header.ptr || token.ptr + token.len > header.ptr + header.len) {
        FAIL("bearer token outside the header");
    }
    for (size_t i = 0; i < token.len; i++) {
        char c = token.ptr[i];
        if (c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n') {
            FAIL("bearer token holds byte %d", c);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char scheme[] = "Bearer ";
    char *header = malloc(sizeof(scheme) - 1 + size + 1);

    if (header == NULL) {
        abort();
    }
    fuzz_parse((authz_slice){(const char *)data, size});
    memcpy(header, scheme, sizeof(scheme) - 1);
    if (size > 0) {
        memcpy(header + sizeof(scheme) - 1, data, size);
    }
    fuzz_bearer((authz_slice){header, sizeof(scheme) - 1 + size});
    fuzz_bearer((authz_slice){(const char *)data, size});
    free(header);
    return 0;
}
