#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkreq_builder.h"
#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "pol_config.h"
#include "srv_checkreq.h"
#include "srv_extauthz.h"
#include "srv_pbarena.h"
#include "tg_testkeys.h"

typedef Envoy__Service__Auth__V3__CheckRequest check_req;
typedef Envoy__Service__Auth__V3__CheckResponse check_resp;

static authz_arena arena;

static void setup(void)
{
    authz_arena_init(&arena, NULL, 0, 0);
}

static void teardown(void)
{
    authz_arena_free(&arena);
}

TestSuite(srv_extauthz, .init = setup, .fini = teardown);

/* Packs with protobuf-c and reads the bytes back with srv_checkreq, so every
 * test goes through the wire format. */
static const srv_checkreq *roundtrip(const check_req *req)
{
    size_t n = envoy__service__auth__v3__check_request__get_packed_size(req);
    uint8_t *buf = authz_arena_alloc(&arena, n + 1);
    srv_checkreq *out = authz_arena_alloc(&arena, sizeof(*out));
    cr_assert_not_null(buf);
    cr_assert_not_null(out);
    envoy__service__auth__v3__check_request__pack(req, buf);
    cr_assert_eq(srv_checkreq_parse(buf, n, out), 0);
    return out;
}

static void assert_slice(authz_slice s, const char *want)
{
    cr_assert(authz_slice_eq_cstr(s, want), "got '%.*s', want '%s'", (int)s.len, s.ptr ? s.ptr : "", want);
}

Test(srv_extauthz, view_from_headers_map)
{
    req_builder b;
    srv_extauthz_view v;

    rb_init(&b);
    rb_peer(&b, "10.1.2.3");
    rb_header(&b, ":authority", "api.example:8443");
    rb_header(&b, "authorization", "Bearer abc");
    rb_header(&b, "x-request-id", "req-1");
    rb_ext(&b, "other", "x");
    rb_ext(&b, "cluster", "cluster-a");
    b.http.method = "GET";
    b.http.path = "/v1/items?x=1";
    srv_extauthz_view_request(roundtrip(&b.req), 0, &v);
    assert_slice(v.req.authorization, "Bearer abc");
    assert_slice(v.req.cluster, "cluster-a");
    assert_slice(v.req.host, "api.example:8443");
    assert_slice(v.req.method, "GET");
    assert_slice(v.req.path, "/v1/items?x=1");
    assert_slice(v.req.source, "10.1.2.3");
    assert_slice(v.request_id, "req-1");
}

Test(srv_extauthz, view_host_field_wins_over_authority)
{
    req_builder b;
    srv_extauthz_view v;

    rb_init(&b);
    rb_header(&b, ":authority", "from-header");
    b.http.host = "from-field";
    srv_extauthz_view_request(roundtrip(&b.req), 0, &v);
    assert_slice(v.req.host, "from-field");
    cr_assert_eq(v.req.authorization.len, 0);
    cr_assert_eq(v.req.source.len, 0, "no peer address: unknown source");
}

Test(srv_extauthz, view_from_raw_header_map_case_insensitive)
{
    req_builder b;
    srv_extauthz_view v;

    rb_init(&b);
    rb_raw_header(&b, "x-other", NULL, "1");
    rb_raw_header(&b, "Authorization", NULL, "Bearer only");
    srv_extauthz_view_request(roundtrip(&b.req), 0, &v);
    assert_slice(v.req.authorization, "Bearer only");
    cr_assert_not(v.req.authorization_repeated);
}

/* header_map lists the request's header lines: two authorization lines are
 * two credentials (malformed_token in the decision), whatever their case. */
Test(srv_extauthz, view_repeated_authorization_line_is_flagged)
{
    req_builder b;
    srv_extauthz_view v;

    rb_init(&b);
    rb_raw_header(&b, "Authorization", NULL, "Bearer first");
    rb_raw_header(&b, "x-other", NULL, "1");
    rb_raw_header(&b, "authorization", NULL, "Bearer first");
    srv_extauthz_view_request(roundtrip(&b.req), 0, &v);
    cr_assert(v.req.authorization_repeated);
}

/* The headers map is a protobuf map: a key sent twice is one key set twice,
 * and the last entry wins (as every protobuf parser and Envoy read it). */
Test(srv_extauthz, view_headers_map_last_entry_wins)
{
    req_builder b;
    srv_extauthz_view v;
    const srv_checkreq *req;

    rb_init(&b);
    rb_peer(&b, "192.168.0.9");
    rb_header(&b, "authorization", "Bearer first");
    rb_header(&b, "x-forwarded-for", "10.0.0.1");
    rb_header(&b, ":authority", "first.example");
    rb_header(&b, "Authorization", "Bearer last");
    rb_header(&b, "x-forwarded-for", "10.0.0.2");
    rb_header(&b, ":authority", "last.example");
    req = roundtrip(&b.req);
    srv_extauthz_view_request(req, 0, &v);
    assert_slice(v.req.authorization, "Bearer last");
    cr_assert_not(v.req.authorization_repeated, "a map key is one header");
    assert_slice(v.req.host, "last.example");
    srv_extauthz_view_request(req, 1, &v);
    assert_slice(v.req.source, "10.0.0.2");
}

Test(srv_extauthz, view_context_extension_last_entry_wins)
{
    req_builder b;
    srv_extauthz_view v;

    rb_init(&b);
    rb_ext(&b, "cluster", "cluster-b");
    rb_ext(&b, "other", "x");
    rb_ext(&b, "cluster", "cluster-a");
    srv_extauthz_view_request(roundtrip(&b.req), 0, &v);
    assert_slice(v.req.cluster, "cluster-a");
}

/* An empty cluster is named, not absent: a non-NULL empty slice, which the
 * decision takes for no cluster rather than falling back to the host. */
Test(srv_extauthz, view_empty_cluster_is_present)
{
    req_builder b;
    srv_extauthz_view v;

    rb_init(&b);
    rb_ext(&b, "cluster", "");
    srv_extauthz_view_request(roundtrip(&b.req), 0, &v);
    cr_assert_not_null(v.req.cluster.ptr);
    cr_assert_eq(v.req.cluster.len, 0);
    rb_init(&b);
    rb_ext(&b, "other", "");
    srv_extauthz_view_request(roundtrip(&b.req), 0, &v);
    cr_assert_null(v.req.cluster.ptr, "no cluster entry: absent");
}

/* x-forwarded-for on two header lines: which one a proxy appended to cannot
 * be told, so the source is unknown (denied wherever CIDRs apply). */
Test(srv_extauthz, view_xff_on_two_lines_is_unknown_source)
{
    req_builder b;
    srv_extauthz_view v;
    const srv_checkreq *req;

    rb_init(&b);
    rb_peer(&b, "192.168.0.9");
    rb_raw_header(&b, "x-forwarded-for", NULL, "10.0.0.1");
    rb_raw_header(&b, "X-Forwarded-For", NULL, "10.0.0.2");
    req = roundtrip(&b.req);
    srv_extauthz_view_request(req, 1, &v);
    cr_assert_eq(v.req.source.len, 0);
    srv_extauthz_view_request(req, 0, &v);
    assert_slice(v.req.source, "192.168.0.9");
    rb_init(&b);
    rb_raw_header(&b, "x-forwarded-for", NULL, "10.0.0.1, 10.0.0.2");
    srv_extauthz_view_request(roundtrip(&b.req), 1, &v);
    assert_slice(v.req.source, "10.0.0.2");
}

Test(srv_extauthz, view_headers_map_before_header_map)
{
    req_builder b;
    srv_extauthz_view v;

    rb_init(&b);
    rb_header(&b, "authorization", "Bearer map");
    rb_raw_header(&b, "authorization", NULL, "Bearer raw");
    srv_extauthz_view_request(roundtrip(&b.req), 0, &v);
    assert_slice(v.req.authorization, "Bearer map");
}

Test(srv_extauthz, view_xff_hops)
{
    req_builder b;
    srv_extauthz_view v;
    const srv_checkreq *req;

    rb_init(&b);
    rb_peer(&b, "192.168.0.9");
    rb_header(&b, "x-forwarded-for", "203.0.113.7, 10.0.0.1 ,10.0.0.2");
    req = roundtrip(&b.req);
    srv_extauthz_view_request(req, 0, &v);
    assert_slice(v.req.source, "192.168.0.9");
    srv_extauthz_view_request(req, 1, &v);
    assert_slice(v.req.source, "10.0.0.2");
    srv_extauthz_view_request(req, 2, &v);
    assert_slice(v.req.source, "10.0.0.1");
    srv_extauthz_view_request(req, 3, &v);
    assert_slice(v.req.source, "203.0.113.7");
    srv_extauthz_view_request(req, 4, &v);
    cr_assert_eq(v.req.source.len, 0, "fewer hops than trusted: unknown, not the leftmost");
}

Test(srv_extauthz, view_xff_missing_is_unknown_source)
{
    req_builder b;
    srv_extauthz_view v;

    rb_init(&b);
    rb_peer(&b, "192.168.0.9");
    srv_extauthz_view_request(roundtrip(&b.req), 1, &v);
    cr_assert_eq(v.req.source.len, 0);
}

Test(srv_extauthz, unknown_fields_and_negative_size_are_skipped)
{
    /* CheckRequest{attributes{ 14: "future", 4 request{2 http{3 headers{authorization: "Bearer x"},
     * 9 size: -1, 99: varint 5}}, 10 ctx{cluster: c}}} written by hand. */
    static const uint8_t wire[] = {
        0x0a, 0x44,                                    /* attributes, 68 bytes */
        0x72, 0x06, 'f',  'u',  't',  'u',  'r',  'e', /* field 14, string */
        0x22, 0x2b,                                    /* request, 43 */
        0x12, 0x29,                                    /* http, 41 */
        0x1a, 0x19,                                    /* headers entry, 25 */
        0x0a, 0x0d, 'a',  'u',  't',  'h',  'o',  'r',  'i',  'z',  'a',  't', 'i',
        'o',  'n',  0x12, 0x08, 'B',  'e',  'a',  'r',  'e',  'r',  ' ',  'x', 0x48,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* size = -1 */
        0x98, 0x06, 0x05,                                           /* field 99, varint */
        0x52, 0x0d,                                                 /* context_extensions entry, 13 */
        0x0a, 0x07, 'c',  'l',  'u',  's',  't',  'e',  'r',  0x12, 0x02, 'c', '1',
    };
    srv_pbarena pb;
    srv_pbarena_init(&pb, &arena);
    check_req *req = envoy__service__auth__v3__check_request__unpack(&pb.alloc, sizeof(wire), wire);
    srv_checkreq creq;
    srv_extauthz_view v;

    cr_assert_not_null(req);
    cr_assert_eq(req->attributes->request->http->size, -1);
    cr_assert_eq(srv_checkreq_parse(wire, sizeof(wire), &creq), 0);
    srv_extauthz_view_request(&creq, 0, &v);
    assert_slice(v.req.authorization, "Bearer x");
    assert_slice(v.req.cluster, "c1");
}

Test(srv_extauthz, truncated_message_does_not_decode)
{
    static const uint8_t wire[] = {0x0a, 0x10, 0x22, 0x02};
    srv_pbarena pb;
    srv_checkreq creq;
    srv_pbarena_init(&pb, &arena);
    cr_assert_null(envoy__service__auth__v3__check_request__unpack(&pb.alloc, sizeof(wire), wire));
    cr_assert_eq(srv_checkreq_parse(wire, sizeof(wire), &creq), -1);
}

/* ---- responses ---- */

static check_resp *unpack_resp(const uint8_t *buf, size_t len)
{
    check_resp *r = envoy__service__auth__v3__check_response__unpack(NULL, len, buf);
    cr_assert_not_null(r);
    return r;
}

static const char *meta_get(const check_resp *r, const char *key)
{
    cr_assert_not_null(r->dynamic_metadata);
    for (size_t i = 0; i < r->dynamic_metadata->n_fields; i++) {
        if (strcmp(r->dynamic_metadata->fields[i]->key, key) == 0) {
            const Google__Protobuf__Value *v = r->dynamic_metadata->fields[i]->value;
            cr_assert_eq(v->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
            return v->string_value;
        }
    }
    return NULL;
}

static const Envoy__Config__Core__V3__HeaderValueOption *
find_opt(Envoy__Config__Core__V3__HeaderValueOption **opts, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i]->header->key, key) == 0) {
            return opts[i];
        }
    }
    return NULL;
}

static void assert_header(Envoy__Config__Core__V3__HeaderValueOption **opts, size_t n, const char *key,
                          const char *value)
{
    const Envoy__Config__Core__V3__HeaderValueOption *o = find_opt(opts, n, key);
    cr_assert_not_null(o, "header %s missing", key);
    cr_assert_str_eq(o->header->value, value, "header %s", key);
    cr_assert_eq(o->header->raw_value.len, 0, "raw_value must stay empty (%s)", key);
    cr_assert_eq(o->append_action, 2, "append_action OVERWRITE_IF_EXISTS_OR_ADD (%s)", key);
    cr_assert_null(o->append, "deprecated append left unset (%s)", key);
}

static pol_cluster test_cluster(bool forward_token)
{
    pol_cluster c;
    memset(&c, 0, sizeof(c));
    c.name = AUTHZ_SLICE_LIT("cluster-a");
    c.forward_token = forward_token;
    return c;
}

static pol_decision allow_decision(const pol_cluster *c)
{
    pol_decision d;
    memset(&d, 0, sizeof(d));
    d.allowed = true;
    d.status.reason = AUTHZ_REASON_OK;
    d.cluster = c;
    d.issuer_cluster = c;
    d.subject = AUTHZ_SLICE_LIT("system:serviceaccount:shop:checkout");
    d.namespace_name = AUTHZ_SLICE_LIT("shop");
    d.service_account = AUTHZ_SLICE_LIT("checkout");
    return d;
}

Test(srv_extauthz, allow_response_fields)
{
    pol_cluster c = test_cluster(false);
    pol_decision d = allow_decision(&c);
    uint8_t *buf = NULL;
    size_t len = 0;

    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
    check_resp *r = unpack_resp(buf, len);
    cr_assert_not_null(r->status);
    cr_assert_eq(r->status->code, 0);
    cr_assert_eq(r->http_response_case, ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_OK_RESPONSE);
    Envoy__Service__Auth__V3__OkHttpResponse *ok = r->ok_response;
    cr_assert_eq(ok->n_headers, 4);
    assert_header(ok->headers, ok->n_headers, "x-tokengate-cluster", "cluster-a");
    assert_header(ok->headers, ok->n_headers, "x-tokengate-subject", "system:serviceaccount:shop:checkout");
    assert_header(ok->headers, ok->n_headers, "x-tokengate-namespace", "shop");
    assert_header(ok->headers, ok->n_headers, "x-tokengate-service-account", "checkout");
    /* No binding, no shadow denial, a service account's token: a client's
     * own x-tokengate-peer, -shadow-reason and provider identity headers are
     * removed, so they never reach the upstream. */
    cr_assert_eq(ok->n_headers_to_remove, 6);
    cr_assert_str_eq(ok->headers_to_remove[0], "authorization");
    cr_assert_str_eq(ok->headers_to_remove[1], "x-tokengate-peer");
    cr_assert_str_eq(ok->headers_to_remove[2], "x-tokengate-shadow-reason");
    cr_assert_str_eq(ok->headers_to_remove[3], "x-tokengate-user");
    cr_assert_str_eq(ok->headers_to_remove[4], "x-tokengate-groups");
    cr_assert_str_eq(ok->headers_to_remove[5], "x-tokengate-provider");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    cr_assert_null(ok->dynamic_metadata, "the deprecated ok_response.dynamic_metadata would override");
#pragma GCC diagnostic pop
    cr_assert_str_eq(meta_get(r, "cluster"), "cluster-a");
    cr_assert_str_eq(meta_get(r, "subject"), "system:serviceaccount:shop:checkout");
    cr_assert_str_eq(meta_get(r, "namespace"), "shop");
    cr_assert_str_eq(meta_get(r, "service_account"), "checkout");
    cr_assert_str_eq(meta_get(r, "reason"), "ok");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
}

/* An identity provider's user: user, groups and provider set; the service
 * account headers removed; no groups, and x-tokengate-groups is removed too. */
Test(srv_extauthz, allow_provider_user_headers)
{
    pol_cluster c = test_cluster(false);
    pol_provider provider;
    memset(&provider, 0, sizeof(provider));
    provider.name = AUTHZ_SLICE_LIT("dex");
    pol_decision d = allow_decision(&c);
    d.issuer_cluster = NULL;
    d.provider = &provider;
    d.subject = d.username = AUTHZ_SLICE_LIT("corp:alice@example.com");
    d.groups = AUTHZ_SLICE_LIT("corp:admins,corp:dev");
    d.namespace_name = d.service_account = (authz_slice){NULL, 0};
    uint8_t *buf = NULL;
    size_t len = 0;

    for (int with_groups = 1; with_groups >= 0; with_groups--) {
        if (!with_groups)
            d.groups = (authz_slice){NULL, 0};
        cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
        check_resp *r = unpack_resp(buf, len);
        Envoy__Service__Auth__V3__OkHttpResponse *ok = r->ok_response;
        cr_assert_eq(ok->n_headers, with_groups ? 5u : 4u);
        assert_header(ok->headers, ok->n_headers, "x-tokengate-subject", "corp:alice@example.com");
        assert_header(ok->headers, ok->n_headers, "x-tokengate-user", "corp:alice@example.com");
        assert_header(ok->headers, ok->n_headers, "x-tokengate-provider", "dex");
        if (with_groups)
            assert_header(ok->headers, ok->n_headers, "x-tokengate-groups", "corp:admins,corp:dev");
        cr_assert_eq(ok->n_headers_to_remove, with_groups ? 5u : 6u);
        cr_assert_str_eq(ok->headers_to_remove[0], "authorization");
        cr_assert_str_eq(ok->headers_to_remove[1], "x-tokengate-namespace");
        cr_assert_str_eq(ok->headers_to_remove[2], "x-tokengate-service-account");
        cr_assert_str_eq(ok->headers_to_remove[3], "x-tokengate-peer");
        cr_assert_str_eq(ok->headers_to_remove[4], "x-tokengate-shadow-reason");
        if (!with_groups)
            cr_assert_str_eq(ok->headers_to_remove[5], "x-tokengate-groups");
        cr_assert_str_eq(meta_get(r, "provider"), "dex");
        envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
    }
}

Test(srv_extauthz, allow_with_forward_token_keeps_authorization)
{
    pol_cluster c = test_cluster(true);
    pol_decision d = allow_decision(&c);
    uint8_t *buf = NULL;
    size_t len = 0;

    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
    check_resp *r = unpack_resp(buf, len);
    cr_assert_eq(r->ok_response->n_headers_to_remove, 5);
    cr_assert_str_eq(r->ok_response->headers_to_remove[0], "x-tokengate-peer");
    cr_assert_str_eq(r->ok_response->headers_to_remove[1], "x-tokengate-shadow-reason");
    cr_assert_str_eq(r->ok_response->headers_to_remove[2], "x-tokengate-user");
    cr_assert_str_eq(r->ok_response->headers_to_remove[3], "x-tokengate-groups");
    cr_assert_str_eq(r->ok_response->headers_to_remove[4], "x-tokengate-provider");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
}

/* A bound peer goes upstream as x-tokengate-peer (and is not removed). */
Test(srv_extauthz, allow_with_bound_peer_sends_it_upstream)
{
    pol_cluster c = test_cluster(false);
    pol_decision d = allow_decision(&c);
    uint8_t *buf = NULL;
    size_t len = 0;

    d.peer_result = POL_PEER_RESULT_BOUND;
    d.peer = AUTHZ_SLICE_LIT("spiffe://cluster.local/ns/shop/sa/checkout");
    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
    check_resp *r = unpack_resp(buf, len);
    Envoy__Service__Auth__V3__OkHttpResponse *ok = r->ok_response;
    cr_assert_eq(ok->n_headers, 5);
    assert_header(ok->headers, ok->n_headers, "x-tokengate-peer",
                  "spiffe://cluster.local/ns/shop/sa/checkout");
    cr_assert_eq(ok->n_headers_to_remove, 5);
    cr_assert_str_eq(ok->headers_to_remove[0], "authorization");
    cr_assert_str_eq(ok->headers_to_remove[1], "x-tokengate-shadow-reason");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
}

/* A shadow denial tells upstream its reason (and does not remove it). */
Test(srv_extauthz, shadow_denied_allow_sends_its_reason_upstream)
{
    pol_cluster c = test_cluster(false);
    pol_decision d = allow_decision(&c);
    uint8_t *buf = NULL;
    size_t len = 0;

    d.shadow_denied = true;
    d.shadow_status.reason = AUTHZ_REASON_FORBIDDEN;
    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
    check_resp *r = unpack_resp(buf, len);
    Envoy__Service__Auth__V3__OkHttpResponse *ok = r->ok_response;
    cr_assert_eq(ok->n_headers, 5);
    assert_header(ok->headers, ok->n_headers, "x-tokengate-shadow-reason", "forbidden");
    cr_assert_eq(ok->n_headers_to_remove, 5);
    cr_assert_str_eq(ok->headers_to_remove[0], "authorization");
    cr_assert_str_eq(ok->headers_to_remove[1], "x-tokengate-peer");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
}

static pol_decision deny_decision(const pol_cluster *c, authz_reason reason, const char *message)
{
    pol_decision d;
    memset(&d, 0, sizeof(d));
    d.allowed = false;
    d.cluster = c;
    authz_status_set(&d.status, reason, "%s", message);
    return d;
}

/* The body's fields, checked to be JSON. */
static void assert_body(const char *text, const char *reason, const char *message)
{
    json_error_t err;
    json_t *body = json_loads(text, 0, &err);
    cr_assert_not_null(body, "body is JSON: %s", err.text);
    cr_assert(json_is_false(json_object_get(body, "allowed")));
    cr_assert_str_eq(json_string_value(json_object_get(body, "reason")), reason);
    cr_assert_str_eq(json_string_value(json_object_get(body, "message")), message);
    json_decref(body);
}

Test(srv_extauthz, deny_401_response_fields)
{
    pol_cluster c = test_cluster(false);
    pol_decision d = deny_decision(&c, AUTHZ_REASON_EXPIRED, "exp 100 is before now \"200\"");
    uint8_t *buf = NULL;
    size_t len = 0;

    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
    check_resp *r = unpack_resp(buf, len);
    cr_assert_eq(r->status->code, 16);
    cr_assert_str_eq(r->status->message, "expired: the token has expired");
    cr_assert_eq(r->http_response_case,
                 ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE);
    Envoy__Service__Auth__V3__DeniedHttpResponse *den = r->denied_response;
    cr_assert_not_null(den->status);
    cr_assert_eq(den->status->code, 401);
    cr_assert_eq(den->n_headers, 3);
    assert_header(den->headers, den->n_headers, "x-tokengate-reason", "expired");
    assert_header(den->headers, den->n_headers, "www-authenticate",
                  "Bearer realm=\"tokengate\", error=\"invalid_token\", error_description=\"expired\"");
    assert_header(den->headers, den->n_headers, "content-type", "application/json");
    assert_body(den->body, "expired", "the token has expired");
    cr_assert_str_eq(meta_get(r, "reason"), "expired");
    cr_assert_str_eq(meta_get(r, "cluster"), "cluster-a");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);

    /* deny_details full: the detailed message, for trusted callers. */
    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_FULL, &arena, &buf, &len), 0);
    r = unpack_resp(buf, len);
    cr_assert_str_eq(r->status->message, "expired: exp 100 is before now \"200\"");
    assert_body(r->denied_response->body, "expired", "exp 100 is before now \"200\"");
    cr_assert_eq(r->denied_response->n_headers, 3);
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
}

/* RFC 6750 3.1: no credentials, no error code in the challenge. */
Test(srv_extauthz, missing_token_challenge_has_no_error_code)
{
    pol_decision d = deny_decision(NULL, AUTHZ_REASON_MISSING_TOKEN, "no authorization header");
    uint8_t *buf = NULL;
    size_t len = 0;

    for (int full = 0; full < 2; full++) {
        cr_assert_eq(srv_extauthz_build_response(&d, full ? POL_DENY_DETAILS_FULL : POL_DENY_DETAILS_GENERIC,
                                                 &arena, &buf, &len),
                     0);
        check_resp *r = unpack_resp(buf, len);
        cr_assert_eq(r->denied_response->status->code, 401);
        assert_header(r->denied_response->headers, r->denied_response->n_headers, "www-authenticate",
                      "Bearer realm=\"tokengate\"");
        assert_header(r->denied_response->headers, r->denied_response->n_headers, "content-type",
                      "application/json");
        envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
    }
}

static bool has(const char *s, const char *needle)
{
    return s != NULL && strstr(s, needle) != NULL;
}

/* By default no denial tells the client what the detailed message knows
 * (cluster names, key ids, rule names): every reason, every place the
 * client sees. With deny_details full it does. */
Test(srv_extauthz, generic_denials_never_carry_the_detailed_message)
{
    pol_cluster c = test_cluster(false);
    uint8_t *buf = NULL;
    size_t len = 0;

    for (unsigned i = AUTHZ_REASON_OK + 1; i < AUTHZ_REASON_COUNT; i++) {
        pol_decision d =
            deny_decision(&c, (authz_reason)i, "rule secret-rule, key kid secret-kid, cluster x");
        cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
        check_resp *r = unpack_resp(buf, len);
        const char *reason = authz_reason_name((authz_reason)i);
        const Envoy__Service__Auth__V3__DeniedHttpResponse *den = r->denied_response;
        cr_assert_not(has(r->status->message, "secret"), "%s: %s", reason, r->status->message);
        cr_assert_not(has(den->body, "secret"), "%s: %s", reason, den->body);
        for (size_t h = 0; h < den->n_headers; h++)
            cr_assert_not(has(den->headers[h]->header->value, "secret"), "%s", reason);
        assert_body(den->body, reason, authz_reason_public_message((authz_reason)i));
        envoy__service__auth__v3__check_response__free_unpacked(r, NULL);

        cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_FULL, &arena, &buf, &len), 0);
        r = unpack_resp(buf, len);
        cr_assert(has(r->status->message, "secret-kid"), "%s: %s", reason, r->status->message);
        cr_assert(has(r->denied_response->body, "secret-rule"), "%s", reason);
        envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
    }
}

Test(srv_extauthz, deny_403_and_503)
{
    pol_decision d = deny_decision(NULL, AUTHZ_REASON_UNKNOWN_CLUSTER, "route names no cluster");
    uint8_t *buf = NULL;
    size_t len = 0;

    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
    check_resp *r = unpack_resp(buf, len);
    cr_assert_eq(r->status->code, 7);
    cr_assert_eq(r->denied_response->status->code, 403);
    cr_assert_eq(r->denied_response->n_headers, 2, "no www-authenticate on 403");
    cr_assert_null(find_opt(r->denied_response->headers, r->denied_response->n_headers, "www-authenticate"));
    assert_header(r->denied_response->headers, r->denied_response->n_headers, "content-type",
                  "application/json");
    cr_assert_null(meta_get(r, "cluster"), "cluster unknown: not in metadata");
    cr_assert_str_eq(meta_get(r, "reason"), "unknown_cluster");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);

    d = deny_decision(NULL, AUTHZ_REASON_INTERNAL_ERROR, "");
    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_FULL, &arena, &buf, &len), 0);
    r = unpack_resp(buf, len);
    cr_assert_eq(r->status->code, 13);
    cr_assert_str_eq(r->status->message, "internal_error", "no message: the reason alone");
    cr_assert_eq(r->denied_response->status->code, 503);
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
}

Test(srv_extauthz, deny_without_reason_is_never_an_allow)
{
    pol_decision d;
    uint8_t *buf = NULL;
    size_t len = 0;

    memset(&d, 0, sizeof(d)); /* allowed false, reason OK: inconsistent */
    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
    check_resp *r = unpack_resp(buf, len);
    cr_assert_neq(r->status->code, 0);
    cr_assert_eq(r->http_response_case,
                 ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE);
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
}

Test(srv_extauthz, arena_exhaustion_fails_and_fallback_denies)
{
    authz_arena tiny;
    pol_cluster c = test_cluster(false);
    pol_decision d = allow_decision(&c);
    uint8_t *buf = NULL;
    size_t len = 0;
    uint8_t fb[64];

    authz_arena_init(&tiny, NULL, 128, 256);
    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &tiny, &buf, &len), -1);
    authz_arena_free(&tiny);

    len = srv_extauthz_fallback_response(fb, sizeof(fb));
    cr_assert_gt(len, 0);
    check_resp *r = unpack_resp(fb, len);
    cr_assert_eq(r->status->code, 13);
    cr_assert_eq(r->denied_response->status->code, 503);
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
    cr_assert_eq(srv_extauthz_fallback_response(fb, 4), 0);
}

/* ---- end to end through a real config ---- */

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *mint(EVP_PKEY *key, const char *iss, const char *aud, long exp_delta)
{
    char payload[1024];
    char *kid = tg_fingerprint(key);
    char header[256];
    long now = (long)time(NULL);

    snprintf(header, sizeof(header), "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"%s\",\"aud\":[\"%s\"],\"exp\":%ld,\"iat\":%ld,\"nbf\":%ld,"
             "\"sub\":\"system:serviceaccount:shop:checkout\","
             "\"kubernetes.io\":{\"namespace\":\"shop\",\"serviceaccount\":{\"name\":\"checkout\",\"uid\":"
             "\"u1\"}}}",
             iss, aud, now + exp_delta, now - 10, now - 10);
    char *tok = tg_jws(key, "RS256", header, payload);
    free(kid);
    cr_assert_not_null(tok);
    return tok;
}

static uint8_t *pack_req(const check_req *req, size_t *len)
{
    *len = envoy__service__auth__v3__check_request__get_packed_size(req);
    uint8_t *buf = authz_arena_alloc(&arena, *len + 1);
    envoy__service__auth__v3__check_request__pack(req, buf);
    return buf;
}

Test(srv_extauthz, end_to_end_allow_and_cross_cluster_replay)
{
    EVP_PKEY *ka = tg_keygen("rsa2048");
    EVP_PKEY *kb = tg_keygen("rsa2048");
    char cfg[1024], err[1024], bearer_a[4096], bearer_b[4096];
    pol_snapshot *snap = NULL;
    authz_arena req_arena;
    pol_decide_ctx ctx = {.arena = &req_arena};
    srv_extauthz_result res;
    req_builder b;
    size_t len;
    uint8_t *wire;

    cr_assert_not_null(ka);
    cr_assert_not_null(kb);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tg-extauthz-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    char *jwks_a = tg_jwks(&ka, NULL, 1);
    char *jwks_b = tg_jwks(&kb, NULL, 1);
    write_file("a.jwks", jwks_a);
    write_file("b.jwks", jwks_b);
    snprintf(cfg, sizeof(cfg),
             "{\"clusters\":["
             "{\"name\":\"cluster-a\",\"issuer\":\"https://a.example\",\"audiences\":[\"api-a\"],"
             "\"jwks_file\":\"a.jwks\",\"source_cidrs\":[\"10.1.0.0/16\"]},"
             "{\"name\":\"cluster-b\",\"issuer\":\"https://b.example\",\"audiences\":[\"api-b\"],"
             "\"jwks_file\":\"b.jwks\",\"forward_token\":true}]}");
    write_file("config.json", cfg);
    char path[256];
    snprintf(path, sizeof(path), "%s/config.json", tmpdir);
    cr_assert_eq(pol_config_load(path, &snap, err, sizeof(err)), 0, "%s", err);

    char *ta = mint(ka, "https://a.example", "api-a", 3600);
    char *tb = mint(kb, "https://b.example", "api-b", 3600);
    snprintf(bearer_a, sizeof(bearer_a), "Bearer %s", ta);
    snprintf(bearer_b, sizeof(bearer_b), "Bearer %s", tb);

    authz_arena_init(&req_arena, NULL, 16384, 1u << 20);

    /* Allowed: cluster-a token, routed to cluster-a, from inside its CIDR. */
    rb_init(&b);
    rb_peer(&b, "10.1.4.4");
    rb_header(&b, "authorization", bearer_a);
    rb_ext(&b, "cluster", "cluster-a");
    b.http.method = "GET";
    b.http.path = "/";
    wire = pack_req(&b.req, &len);
    cr_assert_eq(srv_extauthz_check(snap, wire, len, (int64_t)time(NULL), &ctx, &res), 0);
    cr_assert(res.decision.allowed, "%s: %s", authz_reason_name(res.decision.status.reason),
              res.decision.status.message);
    check_resp *r = unpack_resp(res.response, res.response_len);
    cr_assert_eq(r->status->code, 0);
    cr_assert_eq(r->ok_response->n_headers_to_remove, 6);
    assert_header(r->ok_response->headers, r->ok_response->n_headers, "x-tokengate-subject",
                  "system:serviceaccount:shop:checkout");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
    authz_arena_reset(&req_arena);

    /* Replay: a genuine cluster-b token sent to cluster-a. */
    rb_init(&b);
    rb_peer(&b, "10.1.4.4");
    rb_header(&b, "authorization", bearer_b);
    rb_ext(&b, "cluster", "cluster-a");
    wire = pack_req(&b.req, &len);
    cr_assert_eq(srv_extauthz_check(snap, wire, len, (int64_t)time(NULL), &ctx, &res), 0);
    cr_assert_not(res.decision.allowed);
    r = unpack_resp(res.response, res.response_len);
    cr_assert_eq(r->status->code, 16);
    cr_assert_eq(r->denied_response->status->code, 401);
    cr_assert_str_eq(meta_get(r, "reason"), "cluster_mismatch");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);
    authz_arena_reset(&req_arena);

    /* Outside the CIDR. */
    rb_init(&b);
    rb_peer(&b, "192.0.2.1");
    rb_header(&b, "authorization", bearer_a);
    rb_ext(&b, "cluster", "cluster-a");
    wire = pack_req(&b.req, &len);
    cr_assert_eq(srv_extauthz_check(snap, wire, len, (int64_t)time(NULL), &ctx, &res), 0);
    r = unpack_resp(res.response, res.response_len);
    cr_assert_eq(r->status->code, 7);
    cr_assert_eq(r->denied_response->status->code, 403);
    cr_assert_str_eq(meta_get(r, "reason"), "source_not_allowed");
    envoy__service__auth__v3__check_response__free_unpacked(r, NULL);

    /* Garbage does not decode. */
    static const uint8_t junk[] = {0x0a, 0x7f, 0x01};
    cr_assert_eq(srv_extauthz_check(snap, junk, sizeof(junk), 0, &ctx, &res), -1);

    authz_arena_free(&req_arena);
    pol_snapshot_release(snap);
    free(ta);
    free(tb);
    free(jwks_a);
    free(jwks_b);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

/* ---- the writer against protobuf-c: the old builder as the oracle ---- */

typedef Envoy__Config__Core__V3__HeaderValueOption hv_option;

static char *dup_slice(authz_slice s)
{
    char *p = authz_arena_strndup(&arena, s.len > 0 ? s.ptr : "", s.len);
    cr_assert_not_null(p);
    return p;
}

static hv_option *oracle_header(const char *key, const char *value)
{
    hv_option *o = authz_arena_calloc(&arena, 1, sizeof(*o));
    Envoy__Config__Core__V3__HeaderValue *hv = authz_arena_calloc(&arena, 1, sizeof(*hv));
    envoy__config__core__v3__header_value__init(hv);
    hv->key = (char *)key;
    hv->value = (char *)value;
    envoy__config__core__v3__header_value_option__init(o);
    o->header = hv;
    o->append_action =
        ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
    return o;
}

static void oracle_field(Google__Protobuf__Struct *st, const char *key, const char *value)
{
    Google__Protobuf__Struct__FieldsEntry *e = authz_arena_calloc(&arena, 1, sizeof(*e));
    Google__Protobuf__Value *v = authz_arena_calloc(&arena, 1, sizeof(*v));
    google__protobuf__value__init(v);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = (char *)value;
    google__protobuf__struct__fields_entry__init(e);
    e->key = (char *)key;
    e->value = v;
    st->fields[st->n_fields++] = e;
}

/* What the protobuf-c builder packed for an allow (the fields, in order). */
static size_t oracle_allow(const pol_decision *d, uint8_t *out)
{
    check_resp resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Auth__V3__OkHttpResponse ok = ENVOY__SERVICE__AUTH__V3__OK_HTTP_RESPONSE__INIT;
    Google__Protobuf__Struct meta = GOOGLE__PROTOBUF__STRUCT__INIT;
    Google__Protobuf__Struct__FieldsEntry *fields[5];
    hv_option *headers[4];
    char *remove[] = {
        (char *)"authorization",    (char *)"x-tokengate-peer",   (char *)"x-tokengate-shadow-reason",
        (char *)"x-tokengate-user", (char *)"x-tokengate-groups", (char *)"x-tokengate-provider"};
    char *cluster = dup_slice(d->cluster->name);

    headers[0] = oracle_header("x-tokengate-cluster", cluster);
    headers[1] = oracle_header("x-tokengate-subject", dup_slice(d->subject));
    headers[2] = oracle_header("x-tokengate-namespace", dup_slice(d->namespace_name));
    headers[3] = oracle_header("x-tokengate-service-account", dup_slice(d->service_account));
    ok.headers = headers;
    ok.n_headers = 4;
    ok.headers_to_remove = d->cluster->forward_token ? remove + 1 : remove;
    ok.n_headers_to_remove = d->cluster->forward_token ? 5 : 6;
    meta.fields = fields;
    oracle_field(&meta, "cluster", cluster);
    oracle_field(&meta, "subject", dup_slice(d->subject));
    oracle_field(&meta, "namespace", dup_slice(d->namespace_name));
    oracle_field(&meta, "service_account", dup_slice(d->service_account));
    oracle_field(&meta, "reason", "ok");
    resp.status = &status;
    resp.http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_OK_RESPONSE;
    resp.ok_response = &ok;
    resp.dynamic_metadata = &meta;
    return envoy__service__auth__v3__check_response__pack(&resp, out);
}

static size_t oracle_deny(const pol_decision *d, const char *status_message, const char *www,
                          const char *body, uint8_t *out)
{
    check_resp resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Auth__V3__DeniedHttpResponse den = ENVOY__SERVICE__AUTH__V3__DENIED_HTTP_RESPONSE__INIT;
    Envoy__Type__V3__HttpStatus hs = ENVOY__TYPE__V3__HTTP_STATUS__INIT;
    Google__Protobuf__Struct meta = GOOGLE__PROTOBUF__STRUCT__INIT;
    Google__Protobuf__Struct__FieldsEntry *fields[5];
    hv_option *headers[3];
    const char *reason = authz_reason_name(d->status.reason);

    status.code = authz_reason_grpc_code(d->status.reason);
    status.message = (char *)status_message;
    hs.code = (Envoy__Type__V3__StatusCode)authz_reason_http_status(d->status.reason);
    den.status = &hs;
    headers[0] = oracle_header("x-tokengate-reason", reason);
    den.n_headers = 1;
    if (www != NULL) {
        headers[den.n_headers++] = oracle_header("www-authenticate", www);
    }
    headers[den.n_headers++] = oracle_header("content-type", "application/json");
    den.headers = headers;
    den.body = (char *)body;
    meta.fields = fields;
    if (d->cluster != NULL) {
        oracle_field(&meta, "cluster", dup_slice(d->cluster->name));
    }
    oracle_field(&meta, "reason", reason);
    resp.status = &status;
    resp.http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
    resp.denied_response = &den;
    resp.dynamic_metadata = &meta;
    return envoy__service__auth__v3__check_response__pack(&resp, out);
}

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    cr_assert_eq(got_len, want_len, "length %zu, protobuf-c %zu", got_len, want_len);
    cr_assert(memcmp(got, want, want_len) == 0, "bytes differ from protobuf-c");
}

Test(srv_extauthz, writer_matches_protobuf_c_on_allow)
{
    uint8_t want[2048];
    uint8_t *buf = NULL;
    size_t len = 0;
    /* Raw bytes need no escaping in protobuf strings; long values take
     * two-byte lengths. */
    static const char odd[] = "ns-\x01\x7f\xc3\xa9\xff\"\\";
    char long_subject[300];
    memset(long_subject, 's', sizeof(long_subject) - 1);
    long_subject[sizeof(long_subject) - 1] = '\0';

    for (int forward = 0; forward < 2; forward++) {
        pol_cluster c = test_cluster(forward != 0);
        pol_decision d = allow_decision(&c);
        cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
        assert_bytes(buf, len, want, oracle_allow(&d, want));
        d.namespace_name = authz_slice_from_cstr(odd);
        d.subject = authz_slice_from_cstr(long_subject);
        d.service_account.len = 0; /* empty: left out, still a header and a metadata field */
        cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
        assert_bytes(buf, len, want, oracle_allow(&d, want));
    }
}

Test(srv_extauthz, writer_matches_protobuf_c_on_deny)
{
    uint8_t want[2048];
    uint8_t *buf = NULL;
    size_t len = 0;
    pol_cluster c = test_cluster(false);
    /* authz_status_set turns control and non-ASCII bytes into '?'; quotes
     * and backslashes reach the JSON body escaped. */
    pol_decision d = deny_decision(&c, AUTHZ_REASON_EXPIRED, "exp \"1\" \\ now\x01");

    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_FULL, &arena, &buf, &len), 0);
    assert_bytes(
        buf, len, want,
        oracle_deny(&d, "expired: exp \"1\" \\ now?",
                    "Bearer realm=\"tokengate\", error=\"invalid_token\", error_description=\"expired\"",
                    "{\"allowed\":false,\"reason\":\"expired\",\"message\":\"exp \\\"1\\\" \\\\ now?\"}",
                    want));
    d = deny_decision(NULL, AUTHZ_REASON_SOURCE_NOT_ALLOWED, "");
    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_FULL, &arena, &buf, &len), 0);
    assert_bytes(buf, len, want,
                 oracle_deny(&d, "source_not_allowed", NULL,
                             "{\"allowed\":false,\"reason\":\"source_not_allowed\",\"message\":\"\"}", want));
    d = deny_decision(NULL, AUTHZ_REASON_MISSING_TOKEN, "no authorization header");
    cr_assert_eq(srv_extauthz_build_response(&d, POL_DENY_DETAILS_GENERIC, &arena, &buf, &len), 0);
    assert_bytes(buf, len, want,
                 oracle_deny(&d, "missing_token: the request carries no bearer token",
                             "Bearer realm=\"tokengate\"",
                             "{\"allowed\":false,\"reason\":\"missing_token\",\"message\":"
                             "\"the request carries no bearer token\"}",
                             want));
}

Test(srv_extauthz, fallback_matches_protobuf_c)
{
    uint8_t want[64], got[64];
    check_resp resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Auth__V3__DeniedHttpResponse den = ENVOY__SERVICE__AUTH__V3__DENIED_HTTP_RESPONSE__INIT;
    Envoy__Type__V3__HttpStatus hs = ENVOY__TYPE__V3__HTTP_STATUS__INIT;

    status.code = 13;
    status.message = (char *)"internal_error";
    hs.code = 503;
    den.status = &hs;
    resp.status = &status;
    resp.http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
    resp.denied_response = &den;
    size_t n = envoy__service__auth__v3__check_response__pack(&resp, want);
    assert_bytes(got, srv_extauthz_fallback_response(got, sizeof(got)), want, n);
    cr_assert_eq(srv_extauthz_fallback_response(got, n - 1), 0);
    cr_assert_eq(srv_extauthz_fallback_response(got, n), n);
}
