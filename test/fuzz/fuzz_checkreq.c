/* fuzz_checkreq: the zero-copy CheckRequest reader (server/srv_checkreq.h)
 * differentially against protobuf-c's unpack.
 *
 * 1. What srv_checkreq_parse accepts, protobuf-c accepts (but for one
 *    protobuf-c quirk, see below), and every slice lies inside the input.
 * 2. When protobuf-c accepts, its tree is packed again (canonical bytes: one
 *    occurrence per field, strings cut at their first NUL as protobuf-c's
 *    char * sees them). The reader must accept those bytes (unless the tree
 *    nests as deep as SRV_CHECKREQ_MAX_DEPTH or kept an unknown field 0,
 *    both documented) and extract exactly what
 *    protobuf-c holds: peer address, method, path, host, the "cluster"
 *    context extension and the six headers from both header forms (the
 *    last matching entry of each, and how many entries matched).
 * 3. When both accept the original bytes and they hold no NUL byte (so no
 *    string is cut short for protobuf-c), the same comparison holds on them,
 *    except the documented socket_address difference: protobuf-c keeps only
 *    the last occurrence of that oneof member, the reader merges them.
 * The reader refusing what protobuf-c accepts is allowed on the original
 * bytes (over-long or field-0 tags are documented); (2) catches the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/auth/v3/external_auth.pb-c.h"
#include "srv_checkreq.h"

/* A protobuf wire cursor, for the one protobuf-c quirk the oracle exempts. */
typedef struct wire {
    const uint8_t *p;
    const uint8_t *end;
} wire;

static bool wire_varint(wire *w, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && w->p < w->end; shift += 7) {
        uint8_t b = *w->p++;
        *v |= (uint64_t)(b & 0x7Fu) << shift;
        if ((b & 0x80u) == 0) {
            return true;
        }
    }
    return false;
}

/* The next field of |w|: its number and, for a length-delimited one, its
 * bytes in |value| (value->p is NULL for the others, which are skipped).
 * False at the end or on bytes that are not wire format. */
static bool wire_next(wire *w, uint64_t *field, wire *value)
{
    uint64_t tag, n;
    value->p = value->end = NULL;
    if (w->p >= w->end || !wire_varint(w, &tag)) {
        return false;
    }
    *field = tag >> 3;
    switch (tag & 7u) {
    case 0:
        return wire_varint(w, &n);
    case 1:
        n = 8;
        break;
    case 5:
        n = 4;
        break;
    case 2:
        if (!wire_varint(w, &n)) {
            return false;
        }
        break;
    default:
        return false;
    }
    if (n > (uint64_t)(w->end - w->p)) {
        return false;
    }
    if ((tag & 7u) == 2) {
        value->p = w->p;
        value->end = w->p + n;
    }
    w->p += n;
    return true;
}

/* How many Address messages, over every occurrence of
 * attributes.{source|destination} (|peer_field| 1 or 2) in the request,
 * carry no socket_address (field 1). protobuf-c 1.4.1 refuses to merge two
 * occurrences of one Address that both lack it (attributes{source{address{}
 * address{}}}, or the same spread over repeated attributes or peers), which
 * protobuf allows and the reader accepts. */
static size_t addresses_without_socket(const uint8_t *data, size_t size, uint64_t peer_field)
{
    wire req = {data, data + size}, attrs, peer, addr, member;
    uint64_t req_f, attrs_f, peer_f, addr_f;
    size_t count = 0;

    while (wire_next(&req, &req_f, &attrs)) {
        if (req_f != 1 || attrs.p == NULL) {
            continue;
        }
        while (wire_next(&attrs, &attrs_f, &peer)) {
            if (attrs_f != peer_field || peer.p == NULL) {
                continue;
            }
            while (wire_next(&peer, &peer_f, &addr)) {
                if (peer_f != 1 || addr.p == NULL) {
                    continue;
                }
                bool socket = false;
                while (wire_next(&addr, &addr_f, &member)) {
                    socket = socket || addr_f == 1;
                }
                count += socket ? 0 : 1;
            }
        }
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                            \
    do {                                                                                                     \
        fprintf(stderr, "checkreq: " __VA_ARGS__);                                                           \
        fprintf(stderr, "\n");                                                                               \
        abort();                                                                                             \
    } while (0)

typedef Envoy__Service__Auth__V3__CheckRequest check_req;
typedef Envoy__Service__Auth__V3__AttributeContext__HttpRequest http_req;

static const char *const header_names[SRV_CHECKREQ_H_COUNT] = {
    "authorization", "x-request-id", "x-forwarded-for", ":authority", ":method", ":path"};

static authz_slice cstr(const char *s)
{
    return authz_slice_from_cstr(s);
}

static bool equal_ci(const char *key, const char *lower_name)
{
    size_t n = strlen(lower_name);
    if (strlen(key) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c + ('a' - 'A'));
        }
        if (c != lower_name[i]) {
            return false;
        }
    }
    return true;
}

/* What srv_checkreq should have extracted, read off protobuf-c's tree. */
static void oracle(const check_req *m, srv_checkreq *want)
{
    const Envoy__Service__Auth__V3__AttributeContext *a = m->attributes;
    const http_req *http = NULL;

    memset(want, 0, sizeof(*want));
    if (a == NULL) {
        return;
    }
    if (a->source != NULL && a->source->address != NULL &&
        a->source->address->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS &&
        a->source->address->socket_address != NULL) {
        want->peer_address = cstr(a->source->address->socket_address->address);
    }
    if (a->source != NULL) {
        want->peer_principal = cstr(a->source->principal);
        want->peer_certificate = cstr(a->source->certificate);
    }
    for (size_t i = 0; i < a->n_context_extensions; i++) {
        if (strcmp(a->context_extensions[i]->key, "cluster") == 0) {
            want->cluster = cstr(a->context_extensions[i]->value);
            want->cluster_found = true;
        }
    }
    if (a->request != NULL) {
        http = a->request->http;
    }
    if (http == NULL) {
        return;
    }
    want->method = cstr(http->method);
    want->path = cstr(http->path);
    want->host = cstr(http->host);
    for (size_t h = 0; h < SRV_CHECKREQ_H_COUNT; h++) {
        for (size_t i = 0; i < http->n_headers; i++) {
            if (equal_ci(http->headers[i]->key, header_names[h])) {
                want->map_hdr[h].found = true;
                want->map_hdr[h].value = cstr(http->headers[i]->value);
                want->map_hdr[h].count++;
            }
        }
        for (size_t i = 0; http->header_map != NULL && i < http->header_map->n_headers; i++) {
            const Envoy__Config__Core__V3__HeaderValue *hv = http->header_map->headers[i];
            if (equal_ci(hv->key, header_names[h])) {
                want->raw_hdr[h].found = true;
                want->raw_hdr[h].count++;
                if (hv->raw_value.len > 0) {
                    want->raw_hdr[h].value =
                        (authz_slice){(const char *)hv->raw_value.data, hv->raw_value.len};
                } else {
                    want->raw_hdr[h].value = cstr(hv->value);
                }
            }
        }
    }
}

static void compare_slice(authz_slice got, authz_slice want, const char *what, const char *where)
{
    if (!authz_slice_eq(got, want)) {
        FAIL("%s, %s: reader '%.*s' (%zu), protobuf-c '%.*s' (%zu)", where, what, (int)got.len,
             got.ptr ? got.ptr : "", got.len, (int)want.len, want.ptr ? want.ptr : "", want.len);
    }
}

static void compare(const srv_checkreq *got, const srv_checkreq *want, bool strict_peer, const char *where)
{
    /* The one documented merge difference: protobuf-c's last socket_address may lack the address. */
    if (strict_peer || want->peer_address.len > 0) {
        compare_slice(got->peer_address, want->peer_address, "peer address", where);
    }
    compare_slice(got->peer_principal, want->peer_principal, "principal", where);
    compare_slice(got->peer_certificate, want->peer_certificate, "certificate", where);
    compare_slice(got->method, want->method, "method", where);
    compare_slice(got->path, want->path, "path", where);
    compare_slice(got->host, want->host, "host", where);
    if (got->cluster_found != want->cluster_found) {
        FAIL("%s: cluster found %d, protobuf-c %d", where, got->cluster_found, want->cluster_found);
    }
    compare_slice(got->cluster, want->cluster, "cluster", where);
    for (size_t h = 0; h < SRV_CHECKREQ_H_COUNT; h++) {
        if (got->map_hdr[h].found != want->map_hdr[h].found ||
            got->raw_hdr[h].found != want->raw_hdr[h].found ||
            got->map_hdr[h].count != want->map_hdr[h].count ||
            got->raw_hdr[h].count != want->raw_hdr[h].count) {
            FAIL("%s: header %s found map %d/%d raw %d/%d, count map %zu/%zu raw %zu/%zu", where,
                 header_names[h], got->map_hdr[h].found, want->map_hdr[h].found, got->raw_hdr[h].found,
                 want->raw_hdr[h].found, got->map_hdr[h].count, want->map_hdr[h].count, got->raw_hdr[h].count,
                 want->raw_hdr[h].count);
        }
        compare_slice(got->map_hdr[h].value, want->map_hdr[h].value, header_names[h], where);
        compare_slice(got->raw_hdr[h].value, want->raw_hdr[h].value, header_names[h], where);
    }
}

static void check_inside(authz_slice s, const uint8_t *buf, size_t len, const char *what)
{
    if (s.len > 0 && (s.ptr == NULL || (const uint8_t *)s.ptr < buf || s.len > len ||
                      (const uint8_t *)s.ptr - buf > (ptrdiff_t)(len - s.len))) {
        FAIL("%s slice outside the input", what);
    }
}

static void check_all_inside(const srv_checkreq *r, const uint8_t *buf, size_t len)
{
    check_inside(r->peer_address, buf, len, "peer");
    check_inside(r->peer_principal, buf, len, "principal");
    check_inside(r->peer_certificate, buf, len, "certificate");
    check_inside(r->method, buf, len, "method");
    check_inside(r->path, buf, len, "path");
    check_inside(r->host, buf, len, "host");
    check_inside(r->cluster, buf, len, "cluster");
    for (size_t h = 0; h < SRV_CHECKREQ_H_COUNT; h++) {
        check_inside(r->map_hdr[h].value, buf, len, header_names[h]);
        check_inside(r->raw_hdr[h].value, buf, len, header_names[h]);
    }
}

/* Walks protobuf-c's tree by reflection (so every message type counts):
 * returns the deepest nesting of embedded messages under |m| (|m| itself is
 * 0) and sets *field0 when some message kept an unknown field numbered 0
 * or above the largest field number: protobuf-c accepts those from tags it
 * truncates and packs them again as tags the reader refuses (documented). */
static size_t tree_walk(const ProtobufCMessage *m, bool *field0)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    size_t deepest = 0;

    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        /* Above 2^29 - 1 the tag's shift overflows 32 bits when packed. */
        if (m->unknown_fields[i].tag == 0 || m->unknown_fields[i].tag > 0x1FFFFFFFu) {
            *field0 = true;
        }
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            ProtobufCMessage *const *arr;
            memcpy(&n, base + f->quantifier_offset, sizeof(n));
            memcpy(&arr, base + f->offset, sizeof(arr));
            for (size_t k = 0; k < n; k++) {
                size_t sub = 1 + tree_walk(arr[k], field0);
                deepest = sub > deepest ? sub : deepest;
            }
        } else {
            const ProtobufCMessage *sub;
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t which;
                memcpy(&which, base + f->quantifier_offset, sizeof(which));
                if (which != f->id) {
                    continue;
                }
            }
            memcpy(&sub, base + f->offset, sizeof(sub));
            if (sub != NULL) {
                size_t k = 1 + tree_walk(sub, field0);
                deepest = k > deepest ? k : deepest;
            }
        }
    }
    return deepest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    srv_checkreq got, want;
    check_req *m;
    uint8_t *packed = NULL;
    size_t packed_len;
    int rc;

    rc = srv_checkreq_parse(size > 0 ? data : NULL, size, &got);
    m = envoy__service__auth__v3__check_request__unpack(NULL, size, data);
    if (rc == 0) {
        check_all_inside(&got, data, size);
        if (m == NULL && addresses_without_socket(data, size, 1) < 2 &&
            addresses_without_socket(data, size, 2) < 2) {
            FAIL("the reader accepts what protobuf-c refuses");
        }
    }
    if (m == NULL) {
        return 0;
    }
    oracle(m, &want);

    packed_len = envoy__service__auth__v3__check_request__get_packed_size(m);
    packed = malloc(packed_len > 0 ? packed_len : 1);
    if (packed == NULL || envoy__service__auth__v3__check_request__pack(m, packed) != packed_len) {
        FAIL("pack");
    }
    {
        srv_checkreq canon;
        bool field0 = false;
        size_t depth = tree_walk(&m->base, &field0);
        if (srv_checkreq_parse(packed_len > 0 ? packed : NULL, packed_len, &canon) != 0) {
            if (depth + 1 < SRV_CHECKREQ_MAX_DEPTH && !field0) {
                FAIL("the reader refuses protobuf-c's own encoding (%zu bytes, depth %zu)", packed_len,
                     depth);
            }
        } else {
            check_all_inside(&canon, packed, packed_len);
            compare(&canon, &want, true, "canonical");
        }
    }
    if (rc == 0 && memchr(data, '\0', size) == NULL) {
        compare(&got, &want, false, "original");
    }
    free(packed);
    envoy__service__auth__v3__check_request__free_unpacked(m, NULL);
    return 0;
}
