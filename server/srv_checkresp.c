#include "srv_checkresp.h"

#include <string.h>

/* Tags: (field << 3) | wire type; every field number here is below 16. */
#define TAG_LEN(field) ((uint8_t)(((field) << 3) | 2u))
#define TAG_VARINT(field) ((uint8_t)((field) << 3))

/* google.rpc.Code values are small, but int32 is sign-extended on the wire. */
static uint64_t int32_wire(int32_t v)
{
    return (uint64_t)(int64_t)v;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A length-delimited field: tag, length, payload. */
static size_t len_field(size_t payload)
{
    return 1 + varint_size(payload) + payload;
}

/* A proto3 string: left out when empty. */
static size_t str_field(authz_slice s)
{
    return s.len > 0 ? len_field(s.len) : 0;
}

static size_t int32_field(int32_t v)
{
    return v != 0 ? 1 + varint_size(int32_wire(v)) : 0;
}

static size_t header_value_size(const srv_checkresp_pair *h)
{
    return str_field(h->key) + str_field(h->value);
}

/* HeaderValueOption{header, append_action = 2}. */
static size_t header_option_size(const srv_checkresp_pair *h)
{
    return len_field(header_value_size(h)) + 2;
}

/* Value{string_value}: a oneof member, written even when empty. */
static size_t value_size(const srv_checkresp_pair *f)
{
    return len_field(f->value.len);
}

static size_t entry_size(const srv_checkresp_pair *f)
{
    return str_field(f->key) + len_field(value_size(f));
}

static size_t status_size(const srv_checkresp *r)
{
    return int32_field(r->code) + str_field(r->message);
}

static size_t headers_size(const srv_checkresp *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        n += len_field(header_option_size(&r->headers[i]));
    }
    return n;
}

static const authz_slice authorization = {"authorization", sizeof("authorization") - 1};

static size_t ok_size(const srv_checkresp *r)
{
    size_t n = headers_size(r) + (r->remove_authorization ? len_field(authorization.len) : 0);
    for (size_t i = 0; i < r->n_remove; i++) {
        n += len_field(r->remove[i].len);
    }
    return n;
}

static size_t denied_size(const srv_checkresp *r)
{
    return len_field(int32_field(r->http_status)) + headers_size(r) + str_field(r->body);
}

static size_t meta_size(const srv_checkresp *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_meta; i++) {
        n += len_field(entry_size(&r->meta[i]));
    }
    return n;
}

size_t srv_checkresp_size(const srv_checkresp *r)
{
    size_t n = len_field(status_size(r));
    n += len_field(r->allow ? ok_size(r) : denied_size(r));
    if (r->n_meta > 0) {
        n += len_field(meta_size(r));
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80u) {
        *p++ = (uint8_t)(v | 0x80u);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_len(uint8_t *p, uint8_t tag, size_t len)
{
    *p++ = tag;
    return put_varint(p, len);
}

static uint8_t *put_bytes(uint8_t *p, uint8_t tag, authz_slice s)
{
    p = put_len(p, tag, s.len);
    if (s.len > 0) {
        memcpy(p, s.ptr, s.len);
    }
    return p + s.len;
}

static uint8_t *put_str(uint8_t *p, uint8_t tag, authz_slice s)
{
    return s.len > 0 ? put_bytes(p, tag, s) : p;
}

static uint8_t *put_int32(uint8_t *p, uint8_t tag, int32_t v)
{
    if (v == 0) {
        return p;
    }
    *p++ = tag;
    return put_varint(p, int32_wire(v));
}

/* |field| repeated HeaderValueOption. */
static uint8_t *put_headers(uint8_t *p, uint8_t tag, const srv_checkresp *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        const srv_checkresp_pair *h = &r->headers[i];
        p = put_len(p, tag, header_option_size(h));
        p = put_len(p, TAG_LEN(1), header_value_size(h));
        p = put_str(p, TAG_LEN(1), h->key);
        p = put_str(p, TAG_LEN(2), h->value);
        *p++ = TAG_VARINT(3); /* append_action: the zero default would append on new Envoy */
        *p++ = 2;             /* OVERWRITE_IF_EXISTS_OR_ADD */
    }
    return p;
}

size_t srv_checkresp_encode(const srv_checkresp *r, uint8_t *out)
{
    uint8_t *p = out;

    p = put_len(p, TAG_LEN(1), status_size(r));
    p = put_int32(p, TAG_VARINT(1), r->code);
    p = put_str(p, TAG_LEN(2), r->message);
    if (r->allow) {
        p = put_len(p, TAG_LEN(3), ok_size(r));
        p = put_headers(p, TAG_LEN(2), r);
        if (r->remove_authorization) {
            p = put_bytes(p, TAG_LEN(5), authorization);
        }
        for (size_t i = 0; i < r->n_remove; i++) {
            p = put_bytes(p, TAG_LEN(5), r->remove[i]);
        }
    } else {
        p = put_len(p, TAG_LEN(2), denied_size(r));
        p = put_len(p, TAG_LEN(1), int32_field(r->http_status));
        p = put_int32(p, TAG_VARINT(1), r->http_status);
        p = put_headers(p, TAG_LEN(2), r);
        p = put_str(p, TAG_LEN(3), r->body);
    }
    if (r->n_meta > 0) {
        p = put_len(p, TAG_LEN(4), meta_size(r));
        for (size_t i = 0; i < r->n_meta; i++) {
            const srv_checkresp_pair *f = &r->meta[i];
            p = put_len(p, TAG_LEN(1), entry_size(f));
            p = put_str(p, TAG_LEN(1), f->key);
            p = put_len(p, TAG_LEN(2), value_size(f));
            p = put_bytes(p, TAG_LEN(3), f->value);
        }
    }
    return (size_t)(p - out);
}
