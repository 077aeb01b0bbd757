#include "srv_grpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Makes room for |need| message bytes, growing the buffer by at most |room|:
 * the caller's slot when the whole message fits it, else the heap, doubling
 * (capped at the declared length) when that fits, else exactly what
 * arrived. */
static srv_grpc_read reader_grow(srv_grpc_reader *r, size_t need, size_t room)
{
    size_t cap = r->msg_cap > r->msg_len / 2 ? r->msg_len : r->msg_cap * 2;
    uint8_t *p;

    if (need <= r->msg_cap) {
        return SRV_GRPC_READ_MORE;
    }
    if (r->msg == NULL && r->msg_len <= r->slot_size) {
        /* Counted like heap bytes, but nothing is allocated. */
        if (r->msg_len > room) {
            return SRV_GRPC_READ_OVER_BUDGET;
        }
        r->msg = r->slot;
        r->msg_cap = r->msg_len;
        return SRV_GRPC_READ_MORE;
    }
    if (cap < need || cap - r->msg_cap > room) {
        cap = need;
    }
    if (cap - r->msg_cap > room) {
        return SRV_GRPC_READ_OVER_BUDGET;
    }
    if (r->msg != NULL && r->msg == r->slot) {
        /* A later, larger message leaves the slot. */
        p = malloc(cap);
        if (p != NULL) {
            memcpy(p, r->slot, r->msg_have);
        }
    } else {
        p = realloc(r->msg, cap);
    }
    if (p == NULL) {
        return SRV_GRPC_READ_NOMEM;
    }
    r->msg = p;
    r->msg_cap = cap;
    return SRV_GRPC_READ_MORE;
}

srv_grpc_read srv_grpc_reader_feed(srv_grpc_reader *r, const uint8_t *data, size_t len, size_t room,
                                   size_t *consumed)
{
    size_t pos = 0;
    srv_grpc_read result = SRV_GRPC_READ_MORE;

    if (r->complete) {
        goto done_message;
    }
    if (r->prefix_have < SRV_GRPC_PREFIX_LEN) {
        size_t take = min_size(SRV_GRPC_PREFIX_LEN - r->prefix_have, len);
        if (take > 0) {
            memcpy(r->prefix + r->prefix_have, data, take);
        }
        r->prefix_have += take;
        pos += take;
        if (r->prefix_have < SRV_GRPC_PREFIX_LEN) {
            goto cleanup;
        }
        if (r->prefix[0] == 1) {
            result = SRV_GRPC_READ_COMPRESSED;
            goto cleanup;
        }
        if (r->prefix[0] != 0) {
            result = SRV_GRPC_READ_BAD_FLAG;
            goto cleanup;
        }
        r->msg_len = ((size_t)r->prefix[1] << 24) | ((size_t)r->prefix[2] << 16) |
                     ((size_t)r->prefix[3] << 8) | (size_t)r->prefix[4];
        /* The bound comes first: the length is the peer's word. Nothing is
         * allocated for it; the buffer grows as the bytes arrive. */
        if (r->msg_len > r->max_len) {
            result = SRV_GRPC_READ_TOO_LARGE;
            goto cleanup;
        }
        r->msg_have = 0;
    }
    {
        size_t take = min_size(r->msg_len - r->msg_have, len - pos);
        if (take > 0) {
            result = reader_grow(r, r->msg_have + take, room);
            if (result != SRV_GRPC_READ_MORE) {
                goto cleanup;
            }
            memcpy(r->msg + r->msg_have, data + pos, take);
        }
        r->msg_have += take;
        pos += take;
    }
    if (r->msg_have < r->msg_len) {
        goto cleanup;
    }
    r->complete = true;
done_message:
    result = SRV_GRPC_READ_MESSAGE;
cleanup:
    *consumed = pos;
    return result;
}

const uint8_t *srv_grpc_reader_message(const srv_grpc_reader *r)
{
    static const uint8_t empty[1];
    return r->msg != NULL ? r->msg : empty;
}

void srv_grpc_reader_next(srv_grpc_reader *r)
{
    r->prefix_have = 0;
    r->msg_len = 0;
    r->msg_have = 0;
    r->complete = false;
}

size_t srv_grpc_reader_held(const srv_grpc_reader *r)
{
    return r->msg_cap;
}

size_t srv_grpc_reader_release(srv_grpc_reader *r)
{
    size_t held = r->msg_cap;

    if (r->msg != r->slot) {
        free(r->msg);
    }
    r->msg = NULL;
    r->msg_cap = 0;
    return held;
}

bool srv_grpc_reader_idle(const srv_grpc_reader *r)
{
    return r->prefix_have == 0 && !r->complete;
}

size_t srv_grpc_reader_truncation(const srv_grpc_reader *r, char *out, size_t out_size)
{
    int n;

    if (srv_grpc_reader_idle(r) || r->complete || out_size == 0) {
        return 0;
    }
    if (r->prefix_have < SRV_GRPC_PREFIX_LEN) {
        n = snprintf(out, out_size, "truncated message: the stream ended after %zu of the %u prefix bytes",
                     r->prefix_have, SRV_GRPC_PREFIX_LEN);
    } else {
        n = snprintf(out, out_size, "truncated message: the stream ended after %zu of %zu message bytes",
                     r->msg_have, r->msg_len);
    }
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < out_size ? (size_t)n : out_size - 1;
}

bool srv_grpc_content_type_ok(authz_slice value)
{
    const authz_slice grpc = AUTHZ_SLICE_LIT("application/grpc");

    if (!authz_slice_has_prefix(value, grpc)) {
        return false;
    }
    return value.len == grpc.len || value.ptr[grpc.len] == '+' || value.ptr[grpc.len] == ';';
}

int srv_grpc_prefix_write(uint8_t out[SRV_GRPC_PREFIX_LEN], size_t len)
{
    if (len > UINT32_MAX) {
        return -1;
    }
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    return 0;
}

int srv_grpc_timeout_parse(authz_slice value, uint64_t *out_ns)
{
    uint64_t amount = 0;
    uint64_t unit_ns;
    size_t digits;

    if (value.len < 2 || value.len > 9) {
        return -1;
    }
    digits = value.len - 1;
    for (size_t i = 0; i < digits; i++) {
        char c = value.ptr[i];
        if (c < '0' || c > '9') {
            return -1;
        }
        amount = amount * 10u + (uint64_t)(c - '0');
    }
    switch (value.ptr[digits]) {
    case 'H':
        unit_ns = 3600ull * 1000000000ull;
        break;
    case 'M':
        unit_ns = 60ull * 1000000000ull;
        break;
    case 'S':
        unit_ns = 1000000000ull;
        break;
    case 'm':
        unit_ns = 1000000ull;
        break;
    case 'u':
        unit_ns = 1000ull;
        break;
    case 'n':
        unit_ns = 1ull;
        break;
    default:
        return -1;
    }
    /* 8 digits of hours overflow 64-bit nanoseconds: saturate. */
    *out_ns = amount > UINT64_MAX / unit_ns ? UINT64_MAX : amount * unit_ns;
    return 0;
}

size_t srv_grpc_percent_encode(authz_slice in, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    if (out_size == 0) {
        return 0;
    }
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (c >= 0x20 && c <= 0x7E && c != '%') {
            if (n + 1 >= out_size) {
                break;
            }
            out[n++] = (char)c;
        } else {
            if (n + 3 >= out_size) {
                break;
            }
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0x0Fu];
        }
    }
    out[n] = '\0';
    return n;
}
