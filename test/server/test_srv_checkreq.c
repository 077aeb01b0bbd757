/* srv_checkreq against protobuf-c: the same bytes must be accepted or
 * rejected alike and yield the same values (see srv_checkreq.h for the
 * documented differences, each pinned by a test below). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "checkreq_builder.h"
#include "srv_checkreq.h"

typedef Envoy__Service__Auth__V3__CheckRequest check_req;
typedef Envoy__Service__Auth__V3__AttributeContext__HttpRequest http_req;
typedef Envoy__Config__Core__V3__HeaderValue header_value;


/* A growable byte buffer (test only). */
typedef struct bytes {
    uint8_t data[8192];
    size_t len;
} bytes;

static void b_pack(bytes *out, const check_req *req)
{
    size_t n = envoy__service__auth__v3__check_request__get_packed_size(req);
    cr_assert_leq(n, sizeof(out->data));
    out->len = envoy__service__auth__v3__check_request__pack(req, out->data);
}

static void b_append(bytes *out, const uint8_t *p, size_t n)
{
    cr_assert_leq(out->len + n, sizeof(out->data));
    memcpy(out->data + out->len, p, n);
    out->len += n;
}

/* Appends field |field| as a length-delimited wrapper around |inner|. */
static void wrap(bytes *out, uint8_t field, const bytes *inner)
{
    uint8_t hdr[6];
    size_t n = 0;
    size_t v = inner->len;
    hdr[n++] = (uint8_t)((field << 3) | 2);
    while (v >= 0x80) {
        hdr[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    hdr[n++] = (uint8_t)v;
    b_append(out, hdr, n);
    b_append(out, inner->data, inner->len);
}

/* |inner| nested as attributes(1) { request(4) { http(2) { inner } } }. */
static void http_path(bytes *out, const bytes *inner)
{
    bytes h, r, a;
    h.len = r.len = a.len = 0;
    wrap(&h, 2, inner);
    wrap(&r, 4, &h);
    wrap(&a, 1, &r);
    b_append(out, a.data, a.len);
}

/* ---- the oracle: what the adapter took from protobuf-c's unpacked tree ---- */

static bool key_ci(const char *key, const char *name)
{
    size_t n = strlen(name);
    if (strlen(key) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != name[i]) {
            return false;
        }
    }
    return true;
}

/* protobuf-c hands maps over as entry lists in wire order; a map's later
 * entry replaces an earlier one, so the oracle takes the last match. */
static srv_checkreq_hit oracle_map(const http_req *http, const char *name)
{
    srv_checkreq_hit h = {false, {NULL, 0}, 0};
    for (size_t i = 0; http != NULL && i < http->n_headers; i++) {
        if (key_ci(http->headers[i]->key, name)) {
            h.found = true;
            h.value = authz_slice_from_cstr(http->headers[i]->value);
            h.count++;
        }
    }
    return h;
}

static srv_checkreq_hit oracle_raw(const http_req *http, const char *name)
{
    srv_checkreq_hit h = {false, {NULL, 0}, 0};
    if (http == NULL || http->header_map == NULL) {
        return h;
    }
    for (size_t i = 0; i < http->header_map->n_headers; i++) {
        const header_value *hv = http->header_map->headers[i];
        if (key_ci(hv->key, name)) {
            h.found = true;
            h.count++;
            if (hv->raw_value.len > 0) {
                h.value.ptr = (const char *)hv->raw_value.data;
                h.value.len = hv->raw_value.len;
            } else {
                h.value = authz_slice_from_cstr(hv->value);
            }
        }
    }
    return h;
}

static const char *const names[SRV_CHECKREQ_H_COUNT] = {"authorization", "x-request-id", "x-forwarded-for",
                                                        ":authority",    ":method",      ":path"};

static void assert_same(authz_slice got, authz_slice want, const char *what)
{
    cr_assert(authz_slice_eq(got, want), "%s: got '%.*s' (%zu), want '%.*s' (%zu)", what, (int)got.len,
              got.ptr ? got.ptr : "", got.len, (int)want.len, want.ptr ? want.ptr : "", want.len);
}

/* Reads |in| with both decoders and compares everything the adapter uses. */
static void differential(const bytes *in)
{
    check_req *m = envoy__service__auth__v3__check_request__unpack(NULL, in->len, in->data);
    srv_checkreq r;
    int rc = srv_checkreq_parse(in->data, in->len, &r);

    cr_assert_not_null(m, "protobuf-c rejects the test input");
    cr_assert_eq(rc, 0, "srv_checkreq rejects what protobuf-c accepts");
    const Envoy__Service__Auth__V3__AttributeContext *a = m->attributes;
    const http_req *http = a && a->request ? a->request->http : NULL;
    authz_slice none = {NULL, 0};
    authz_slice peer = none;
    if (a && a->source && a->source->address &&
        a->source->address->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS) {
        peer = authz_slice_from_cstr(a->source->address->socket_address->address);
    }
    assert_same(r.peer_address, peer, "peer");
    assert_same(r.method, http ? authz_slice_from_cstr(http->method) : none, "method");
    assert_same(r.path, http ? authz_slice_from_cstr(http->path) : none, "path");
    assert_same(r.host, http ? authz_slice_from_cstr(http->host) : none, "host");
    bool found = false;
    authz_slice cluster = none;
    for (size_t i = 0; a && i < a->n_context_extensions; i++) {
        if (strcmp(a->context_extensions[i]->key, "cluster") == 0) {
            found = true;
            cluster = authz_slice_from_cstr(a->context_extensions[i]->value);
        }
    }
    cr_assert_eq(r.cluster_found, found);
    assert_same(r.cluster, cluster, "cluster");
    for (int h = 0; h < SRV_CHECKREQ_H_COUNT; h++) {
        srv_checkreq_hit mh = oracle_map(http, names[h]);
        srv_checkreq_hit rh = oracle_raw(http, names[h]);
        cr_assert_eq(r.map_hdr[h].found, mh.found, "%s (map) found", names[h]);
        cr_assert_eq(r.map_hdr[h].count, mh.count, "%s (map) count", names[h]);
        assert_same(r.map_hdr[h].value, mh.value, names[h]);
        cr_assert_eq(r.raw_hdr[h].found, rh.found, "%s (header_map) found", names[h]);
        cr_assert_eq(r.raw_hdr[h].count, rh.count, "%s (header_map) count", names[h]);
        assert_same(r.raw_hdr[h].value, rh.value, names[h]);
    }
    envoy__service__auth__v3__check_request__free_unpacked(m, NULL);
}

/* Both decoders reject |p| (copied to an exact-size heap block, so ASan sees
 * any read past the end). */
static void both_reject(const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    srv_checkreq r;
    cr_assert_not_null(copy);
    if (n > 0) {
        memcpy(copy, p, n);
    }
    check_req *m = envoy__service__auth__v3__check_request__unpack(NULL, n, copy);
    cr_assert_null(m, "protobuf-c accepts the test input");
    cr_assert_eq(srv_checkreq_parse(copy, n, &r), -1);
    free(copy);
}

/* Same verdict from both decoders on an exact-size heap copy of |p|. */
static bool same_verdict(const uint8_t *p, size_t n, bool *pbc_ok)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    srv_checkreq r;
    cr_assert_not_null(copy);
    if (n > 0) {
        memcpy(copy, p, n);
    }
    check_req *m = envoy__service__auth__v3__check_request__unpack(NULL, n, copy);
    int rc = srv_checkreq_parse(copy, n, &r);
    *pbc_ok = m != NULL;
    envoy__service__auth__v3__check_request__free_unpacked(m, NULL);
    free(copy);
    return (m != NULL) == (rc == 0);
}

static void full_request(req_builder *b)
{
    rb_init(b);
    rb_peer(b, "10.1.2.3");
    b->http.method = (char *)"GET";
    b->http.path = (char *)"/v1/items?x=1";
    b->http.host = (char *)"api.example";
    b->http.id = (char *)"1234";
    b->http.protocol = (char *)"HTTP/2";
    b->http.size = -1;
    rb_header(b, ":authority", "api.example");
    rb_header(b, ":method", "GET");
    rb_header(b, ":path", "/v1/items?x=1");
    rb_header(b, "Authorization", "Bearer first");
    rb_header(b, "authorization", "Bearer second");
    rb_header(b, "x-request-id", "req-1");
    rb_header(b, "X-Forwarded-For", "203.0.113.7, 10.0.0.1");
    rb_header(b, "user-agent", "curl");
    rb_ext(b, "clusterx", "no");
    rb_ext(b, "cluster", "cluster-a");
    rb_ext(b, "cluster", "cluster-b");
}

TestSuite(srv_checkreq);

Test(srv_checkreq, headers_map_form)
{
    req_builder b;
    bytes in;
    srv_checkreq r;

    full_request(&b);
    b_pack(&in, &b.req);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    /* Maps: a repeated key's last entry wins, as protobuf defines it. */
    assert_same(srv_checkreq_header_value(&r, SRV_CHECKREQ_H_AUTHORIZATION), AUTHZ_SLICE_LIT("Bearer second"),
                "last match wins");
    cr_assert_eq(r.map_hdr[SRV_CHECKREQ_H_AUTHORIZATION].count, 2);
    assert_same(r.cluster, AUTHZ_SLICE_LIT("cluster-b"), "cluster: the last entry");
    assert_same(r.peer_address, AUTHZ_SLICE_LIT("10.1.2.3"), "source, not destination");
}

/* source.principal and source.certificate of the source peer, never the
 * destination's; the last occurrence of each wins. */
Test(srv_checkreq, source_principal_and_certificate)
{
    req_builder b;
    bytes in;
    srv_checkreq r;

    rb_init(&b);
    rb_peer(&b, "10.1.2.3");
    b.dest.principal = (char *)"spiffe://cluster.local/ns/gw/sa/envoy";
    b.source.principal = (char *)"spiffe://cluster.local/ns/shop/sa/checkout";
    b.source.certificate = (char *)"-----BEGIN%20CERTIFICATE-----%0A";
    b_pack(&in, &b.req);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    assert_same(r.peer_principal, AUTHZ_SLICE_LIT("spiffe://cluster.local/ns/shop/sa/checkout"), "principal");
    assert_same(r.peer_certificate, AUTHZ_SLICE_LIT("-----BEGIN%20CERTIFICATE-----%0A"), "certificate");

    b.source.principal = (char *)"";
    b.source.certificate = (char *)"";
    b_pack(&in, &b.req);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    cr_assert_eq(r.peer_principal.len + r.peer_certificate.len, 0, "absent: empty, not the destination's");
}

Test(srv_checkreq, header_map_form_raw_value_and_value)
{
    req_builder b;
    bytes in;
    srv_checkreq r;

    rb_init(&b);
    rb_raw_header(&b, "x-other", "1", NULL);
    rb_raw_header(&b, "AUTHORIZATION", NULL, "Bearer raw");
    rb_raw_header(&b, "x-request-id", "from-value", NULL);
    rb_raw_header(&b, ":path", "value-loses", "raw-wins");
    rb_raw_header(&b, ":method", "", NULL); /* found, empty */
    b_pack(&in, &b.req);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    assert_same(srv_checkreq_header_value(&r, SRV_CHECKREQ_H_AUTHORIZATION), AUTHZ_SLICE_LIT("Bearer raw"), "a");
    assert_same(srv_checkreq_header_value(&r, SRV_CHECKREQ_H_REQUEST_ID), AUTHZ_SLICE_LIT("from-value"), "id");
    assert_same(srv_checkreq_header_value(&r, SRV_CHECKREQ_H_PATH), AUTHZ_SLICE_LIT("raw-wins"), "path");
    cr_assert(r.raw_hdr[SRV_CHECKREQ_H_METHOD].found);
}

/* header_map is a list of header lines: every line counts, the last value
 * is kept. */
Test(srv_checkreq, header_map_counts_repeated_lines)
{
    req_builder b;
    bytes in;
    srv_checkreq r;

    rb_init(&b);
    rb_raw_header(&b, "authorization", NULL, "Bearer one");
    rb_raw_header(&b, "x-other", "1", NULL);
    rb_raw_header(&b, "Authorization", "Bearer two", NULL);
    b_pack(&in, &b.req);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    cr_assert_eq(r.raw_hdr[SRV_CHECKREQ_H_AUTHORIZATION].count, 2);
    assert_same(srv_checkreq_header_value(&r, SRV_CHECKREQ_H_AUTHORIZATION), AUTHZ_SLICE_LIT("Bearer two"),
                "a");
    cr_assert_eq(r.raw_hdr[SRV_CHECKREQ_H_REQUEST_ID].count, 0);
}

Test(srv_checkreq, map_before_header_map)
{
    req_builder b;
    bytes in;
    srv_checkreq r;

    rb_init(&b);
    rb_raw_header(&b, "authorization", NULL, "Bearer raw");
    rb_header(&b, "authorization", "Bearer map");
    b_pack(&in, &b.req);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    assert_same(srv_checkreq_header_value(&r, SRV_CHECKREQ_H_AUTHORIZATION), AUTHZ_SLICE_LIT("Bearer map"), "a");
}

Test(srv_checkreq, empty_and_minimal)
{
    bytes in = {.len = 0};
    req_builder b;
    srv_checkreq r;

    cr_assert_eq(srv_checkreq_parse(NULL, 0, &r), 0);
    cr_assert_eq(r.peer_address.len + r.method.len + r.cluster.len, 0);
    differential(&in);
    rb_init(&b);
    b_pack(&in, &b.req);
    differential(&in);
}

/* Unknown fields of every wire type, at the top, inside attributes (a second
 * attributes occurrence, which merges) and inside http. */
Test(srv_checkreq, unknown_fields_every_wire_type)
{
    static const uint8_t unknown[] = {
        0xF8, 0x01, 0x96, 0x01,                                     /* 31 varint */
        0xF8, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, /* 31 varint, 10 bytes */
        0xF9, 0x01, 1,    2,    3,    4,    5,    6,    7,    8,    /* 31 fixed64 */
        0xFA, 0x01, 0x03, 'a',  'b',  'c',                          /* 31 length-delimited */
        0xFD, 0x01, 1,    2,    3,    4,                            /* 31 fixed32 */
        0x80, 0x80, 0x80, 0x80, 0x08, 0x00,                         /* 2^28 - large field number, varint */
    };
    req_builder b;
    bytes in, u = {.len = 0}, a = {.len = 0};

    full_request(&b);
    b_pack(&in, &b.req);
    b_append(&u, unknown, sizeof(unknown));
    b_append(&in, unknown, sizeof(unknown));
    differential(&in);
    wrap(&a, 1, &u);
    b_append(&in, a.data, a.len);
    differential(&in);
    http_path(&in, &u);
    differential(&in);
}

Test(srv_checkreq, negative_size_ten_byte_varint)
{
    static const uint8_t size_field[] = {0x48, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    req_builder b;
    bytes in, f = {.len = 0};

    full_request(&b);
    b_pack(&in, &b.req);
    b_append(&f, size_field, sizeof(size_field));
    http_path(&in, &f);
    differential(&in);
    check_req *m = envoy__service__auth__v3__check_request__unpack(NULL, in.len, in.data);
    cr_assert_eq(m->attributes->request->http->size, -1);
    envoy__service__auth__v3__check_request__free_unpacked(m, NULL);
}

/* A singular field repeated inside one message: the last one wins. */
Test(srv_checkreq, repeated_singular_fields_in_one_message)
{
    static const uint8_t http[] = {
        0x12, 0x03, 'G', 'E', 'T', 0x12, 0x04, 'P', 'O', 'S', 'T', /* method twice */
        0x22, 0x01, '/', 0x22, 0x00,                               /* path, then empty */
        0x2A, 0x01, 'a', 0x2A, 0x01, 'b',                          /* host twice */
    };
    bytes in = {.len = 0}, f = {.len = 0};
    srv_checkreq r;

    b_append(&f, http, sizeof(http));
    http_path(&in, &f);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    assert_same(r.method, AUTHZ_SLICE_LIT("POST"), "method");
    cr_assert_eq(r.path.len, 0);
    assert_same(r.host, AUTHZ_SLICE_LIT("b"), "host");
}

/* Embedded messages repeated: repeated fields concatenate (a map entry in a
 * later occurrence comes later in wire order, so it wins), a later
 * occurrence's strings override. */
Test(srv_checkreq, repeated_messages_merge)
{
    static const uint8_t http2[] = {
        0x12, 0x03, 'P', 'U', 'T', 0x22, 0x02, '/', 'x', 0x2A, 0x01, 'h',
        0x1A, 0x13, 0x0A, 0x0D, 'a', 'u', 't', 'h', 'o', 'r', 'i', 'z', 'a', 't', 'i', 'o', 'n', 0x12, 0x02, 'n', 'o',
    };
    req_builder b;
    bytes in, f = {.len = 0};
    srv_checkreq r;

    full_request(&b);
    b_pack(&in, &b.req);
    b_append(&f, http2, sizeof(http2));
    http_path(&in, &f);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    assert_same(r.method, AUTHZ_SLICE_LIT("PUT"), "method");
    assert_same(srv_checkreq_header_value(&r, SRV_CHECKREQ_H_AUTHORIZATION), AUTHZ_SLICE_LIT("no"), "a");
    assert_same(r.cluster, AUTHZ_SLICE_LIT("cluster-b"), "cluster");
}

/* A later http occurrence without the strings keeps the earlier ones (merge);
 * a known field with the wrong wire type is rejected by both. */
Test(srv_checkreq, merged_message_keeps_unset_strings)
{
    static const uint8_t size_only[] = {0x48, 0x05};
    static const uint8_t size_as_len[] = {0x4A, 0x01, 'x'};
    req_builder b;
    bytes in, f = {.len = 0};
    srv_checkreq r;

    full_request(&b);
    b_pack(&in, &b.req);
    b_append(&f, size_only, sizeof(size_only));
    http_path(&in, &f);
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    assert_same(r.method, AUTHZ_SLICE_LIT("GET"), "method kept");
    assert_same(r.path, AUTHZ_SLICE_LIT("/v1/items?x=1"), "path kept");

    f.len = 0;
    b_append(&f, size_as_len, sizeof(size_as_len));
    http_path(&in, &f);
    both_reject(in.data, in.len);
}

/* The source address oneof: a pipe after the socket address clears it; a
 * later socket address wins; the destination never counts. */
Test(srv_checkreq, address_oneof)
{
    /* attributes{source{address{pipe{path "p"}}}} */
    static const uint8_t pipe_src[] = {0x0A, 0x09, 0x0A, 0x07, 0x0A, 0x05, 0x12, 0x03, 0x0A, 0x01, 'p'};
    /* attributes{source{address{socket_address{address "9.9.9.9"}}}} */
    static const uint8_t sock_src[] = {0x0A, 0x0F, 0x0A, 0x0D, 0x0A, 0x0B, 0x0A, 0x09,
                                       0x12, 0x07, '9',  '.',  '9',  '.',  '9',  '.', '9'};
    req_builder b;
    bytes in;
    srv_checkreq r;

    full_request(&b);
    b_pack(&in, &b.req);
    b_append(&in, pipe_src, sizeof(pipe_src));
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    cr_assert_eq(r.peer_address.len, 0);
    b_append(&in, sock_src, sizeof(sock_src));
    differential(&in);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    assert_same(r.peer_address, AUTHZ_SLICE_LIT("9.9.9.9"), "peer");
}

/* Documented difference: protobuf-c does not merge a repeated oneof message;
 * the specification does, so an address set earlier survives a later
 * socket_address that only carries a port. */
Test(srv_checkreq, socket_address_merges)
{
    /* attributes{source{address{socket_address{port_value 7}}}} */
    static const uint8_t port_only[] = {0x0A, 0x08, 0x0A, 0x06, 0x0A, 0x04, 0x0A, 0x02, 0x18, 0x07};
    req_builder b;
    bytes in;
    srv_checkreq r;

    full_request(&b);
    b_pack(&in, &b.req);
    b_append(&in, port_only, sizeof(port_only));
    check_req *m = envoy__service__auth__v3__check_request__unpack(NULL, in.len, in.data);
    cr_assert_not_null(m);
    cr_assert_str_eq(m->attributes->source->address->socket_address->address, "");
    envoy__service__auth__v3__check_request__free_unpacked(m, NULL);
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), 0);
    assert_same(r.peer_address, AUTHZ_SLICE_LIT("10.1.2.3"), "peer");
}

Test(srv_checkreq, every_truncation_is_rejected_like_protobuf_c)
{
    req_builder b;
    bytes in;
    size_t accepted = 0;

    full_request(&b);
    rb_raw_header(&b, "authorization", NULL, "Bearer raw");
    b_pack(&in, &b.req);
    for (size_t n = 0; n < in.len; n++) {
        bool pbc_ok;
        cr_assert(same_verdict(in.data, n, &pbc_ok), "verdicts differ at length %zu", n);
        accepted += pbc_ok;
    }
    /* Only cuts between top-level fields decode: here, the empty prefix. */
    cr_assert_eq(accepted, 1);
}

Test(srv_checkreq, malformed_inputs)
{
    static const uint8_t past_end[] = {0x0A, 0x05, 0x22, 0x01};
    static const uint8_t inner_past_parent[] = {0x0A, 0x02, 0x22, 0x05, 0, 0, 0, 0, 0};
    static const uint8_t long_varint[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    static const uint8_t open_varint[] = {0x08, 0x80, 0x80};
    static const uint8_t long_len[] = {0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t huge_len[] = {0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F};
    static const uint8_t wt6[] = {0x0E, 0x00};
    static const uint8_t wt7[] = {0x0F, 0x00};
    static const uint8_t field0[] = {0x02, 0x00};
    static const uint8_t group[] = {0x0B, 0x0C};
    static const uint8_t end_group[] = {0x0C};
    static const uint8_t short64[] = {0x09, 1, 2, 3};
    static const uint8_t short32[] = {0x0D, 1, 2};
    static const uint8_t long_tag[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00};
    static const uint8_t attrs_varint[] = {0x08, 0x01};       /* attributes as a varint */
    static const uint8_t deep_group[] = {0x0A, 0x04, 0x22, 0x02, 0x13, 0x14}; /* group in request */
    static const uint8_t bad_in_dest[] = {0x0A, 0x04, 0x12, 0x02, 0x0A, 0x00 + 0x05}; /* destination.address cut */
    static const uint8_t port_as_len[] = {0x0A, 0x08, 0x0A, 0x06, 0x0A, 0x04, 0x0A, 0x02, 0x1A, 0x00};
    static const uint8_t struct_bad[] = {0x0A, 0x0A, 0x5A, 0x08, 0x0A, 0x06, 0x12, 0x04, 0x0A, 0x02, 0x10, 0x01};
#define R(a) both_reject(a, sizeof(a))
    R(past_end);
    R(inner_past_parent);
    R(long_varint);
    R(open_varint);
    R(long_len);
    R(huge_len);
    R(wt6);
    R(wt7);
    R(field0);
    R(group);
    R(end_group);
    R(short64);
    R(short32);
    R(long_tag);
    R(attrs_varint);
    R(deep_group);
    R(bad_in_dest);
    R(port_as_len);
    R(struct_bad);
#undef R
}

/* A bool takes any wire type in protobuf-c; ipv4_compat(6) as fixed32 is fine. */
Test(srv_checkreq, bool_field_any_wire_type)
{
    static const uint8_t odd_bool[] = {0x0A, 0x0B, 0x0A, 0x09, 0x0A, 0x07, 0x0A, 0x05, 0x35, 1, 0, 0, 0};
    bytes in = {.len = 0};
    b_append(&in, odd_bool, sizeof(odd_bool));
    differential(&in);
}

/* Documented differences: tags protobuf-c truncates are invalid here. */
Test(srv_checkreq, invalid_tags_protobuf_c_accepts)
{
    static const uint8_t field0_long[] = {0x80, 0x00, 0x00}; /* field 0, non-minimal varint */
    static const uint8_t tag_over_32[] = {0xF8, 0xFF, 0xFF, 0xFF, 0x7F, 0x00};
    srv_checkreq r;
    check_req *m = envoy__service__auth__v3__check_request__unpack(NULL, sizeof(field0_long), field0_long);
    cr_assert_not_null(m);
    envoy__service__auth__v3__check_request__free_unpacked(m, NULL);
    cr_assert_eq(srv_checkreq_parse(field0_long, sizeof(field0_long), &r), -1);
    cr_assert_eq(srv_checkreq_parse(tag_over_32, sizeof(tag_over_32), &r), -1);
}

/* attributes{metadata_context(11){filter_metadata{"k": Struct}}} with |levels|
 * nested list values inside the Struct. */
static void nested_metadata(bytes *out, size_t levels)
{
    bytes v = {.len = 0}, t = {.len = 0};
    for (size_t i = 0; i < levels; i++) {
        /* Value{list_value(6){values(1) v}} */
        bytes list = {.len = 0}, value = {.len = 0};
        wrap(&list, 1, &v);
        wrap(&value, 6, &list);
        v = value;
    }
    bytes entry = {.len = 0}, st = {.len = 0}, fe = {.len = 0}, md = {.len = 0};
    static const uint8_t key[] = {0x0A, 0x01, 'k'};
    b_append(&fe, key, sizeof(key));
    wrap(&fe, 2, &v);   /* fields entry {key, value} */
    wrap(&st, 1, &fe);  /* Struct */
    b_append(&entry, key, sizeof(key));
    wrap(&entry, 2, &st); /* filter_metadata entry */
    wrap(&md, 1, &entry);
    wrap(&t, 11, &md);
    out->len = 0;
    wrap(out, 1, &t);
}

Test(srv_checkreq, nesting_depth_is_bounded)
{
    bytes in;
    srv_checkreq r;

    nested_metadata(&in, 40);
    differential(&in);
    nested_metadata(&in, 60); /* 2 levels per list: past SRV_CHECKREQ_MAX_DEPTH */
    cr_assert_eq(srv_checkreq_parse(in.data, in.len, &r), -1);
}

/* Byte mutations of a valid request: whatever protobuf-c rejects is rejected,
 * and nothing reads out of bounds (ASan). */
Test(srv_checkreq, mutations_never_accept_what_protobuf_c_rejects)
{
    req_builder b;
    bytes in;
    uint32_t seed = 12345;
    size_t only_ours = 0;

    full_request(&b);
    rb_raw_header(&b, "authorization", NULL, "Bearer raw");
    b_pack(&in, &b.req);
    for (int i = 0; i < 20000; i++) {
        uint8_t buf[sizeof(in.data)];
        memcpy(buf, in.data, in.len);
        for (int k = 0; k < 1 + i % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % in.len;
            seed = seed * 1103515245u + 12345u;
            buf[at] = (uint8_t)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        size_t n = in.len - (seed >> 8) % 4;
        bool pbc_ok;
        if (!same_verdict(buf, n, &pbc_ok)) {
            cr_assert(pbc_ok, "accepted what protobuf-c rejects (iteration %d)", i);
            only_ours++;
        }
    }
    /* Only the documented tag differences may make us stricter. */
    cr_assert_lt(only_ours, 20u, "%zu inputs rejected only here", only_ours);
}
