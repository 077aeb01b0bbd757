/* fuzz_grpc: gRPC Length-Prefixed-Message reassembly (server/srv_grpc.h).
 *
 * Input layout: byte 0-1 the message bound (big-endian, so small bounds make
 * TOO_LARGE reachable), byte 2 the byte budget in 64-byte units (0 = none,
 * so OVER_BUDGET is reachable), byte 3 a count n (mod 16) of chunk sizes and
 * (bit 0x10) whether the reader gets a 64-byte slot for small messages, then
 * n chunk sizes (bytes), then the DATA payload. The payload is fed in chunks
 * of those sizes in turn, as nghttp2 would hand DATA frames over.
 *
 * A reference parser walks the flat payload; the reader must agree with it
 * on every message (length, bytes, where it ends), on the first error, and
 * on being idle when the input runs out. It must never consume more than it
 * was given nor produce a message above the bound.
 *
 * The payload also goes through srv_grpc_timeout_parse and
 * srv_grpc_percent_encode (header values are peer bytes too). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_grpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                            \
    do {                                                                                                     \
        fprintf(stderr, "grpc: " __VA_ARGS__);                                                               \
        fprintf(stderr, "\n");                                                                               \
        abort();                                                                                             \
    } while (0)

/* What the reference parser expects at |off| in |p| (|len| bytes). */
typedef struct expect {
    srv_grpc_read result; /* MESSAGE, MORE (input ends first) or an error */
    size_t msg_len;
    size_t end; /* offset after the message */
} expect;

static expect reference_next(const uint8_t *p, size_t len, size_t off, size_t max_len)
{
    expect e = {SRV_GRPC_READ_MORE, 0, len};
    size_t n;

    if (len - off < SRV_GRPC_PREFIX_LEN) {
        return e;
    }
    if (p[off] == 1) {
        e.result = SRV_GRPC_READ_COMPRESSED;
        return e;
    }
    if (p[off] != 0) {
        e.result = SRV_GRPC_READ_BAD_FLAG;
        return e;
    }
    n = ((size_t)p[off + 1] << 24) | ((size_t)p[off + 2] << 16) | ((size_t)p[off + 3] << 8) | p[off + 4];
    if (n > max_len) {
        e.result = SRV_GRPC_READ_TOO_LARGE;
        return e;
    }
    e.msg_len = n;
    if (len - off - SRV_GRPC_PREFIX_LEN < n) {
        return e; /* MORE: the body is cut short */
    }
    e.result = SRV_GRPC_READ_MESSAGE;
    e.end = off + SRV_GRPC_PREFIX_LEN + n;
    return e;
}

static void fuzz_reader(const uint8_t *data, size_t size)
{
    const uint8_t *sizes;
    const uint8_t *payload;
    size_t nsizes, plen, pos = 0, chunk_index = 0, msg_start = 0;
    srv_grpc_reader r;
    uint8_t slot[64];
    size_t budget;
    expect want;
    int done = 0;

    if (size < 4) {
        return;
    }
    memset(&r, 0, sizeof(r));
    r.max_len = ((size_t)data[0] << 8) | data[1];
    if (data[3] & 0x10u) {
        r.slot = slot;
        r.slot_size = sizeof(slot);
    }
    /* The bytes the reader may hold (0: no bound). */
    budget = data[2] == 0 ? SIZE_MAX : (size_t)data[2] * 64u;
    nsizes = data[3] % 16u;
    if (size - 4 < nsizes) {
        nsizes = size - 4;
    }
    sizes = data + 4;
    payload = sizes + nsizes;
    plen = size - 4 - nsizes;

    want = reference_next(payload, plen, 0, r.max_len);
    while (!done) {
        size_t chunk = nsizes > 0 ? sizes[chunk_index++ % nsizes] : plen - pos;
        size_t consumed = (size_t)-1;
        srv_grpc_read got;

        if (chunk > plen - pos) {
            chunk = plen - pos;
        }
        if (chunk == 0) {
            /* An empty DATA frame is legal: it must change nothing. Then make progress. */
            srv_grpc_reader before = r;
            got = srv_grpc_reader_feed(&r, payload + pos, 0, budget - srv_grpc_reader_held(&r), &consumed);
            if (got != SRV_GRPC_READ_MORE || consumed != 0 || memcmp(&before, &r, sizeof(r)) != 0) {
                FAIL("empty chunk gave %d, consumed %zu", (int)got, consumed);
            }
            chunk = plen - pos > 0 ? 1 : 0;
        }
        do {
            got =
                srv_grpc_reader_feed(&r, payload + pos, chunk, budget - srv_grpc_reader_held(&r), &consumed);
            if (srv_grpc_reader_held(&r) > budget) {
                FAIL("holds %zu bytes, budget %zu", srv_grpc_reader_held(&r), budget);
            }
            if (consumed > chunk) {
                FAIL("consumed %zu of a %zu-byte chunk", consumed, chunk);
            }
            pos += consumed;
            chunk -= consumed;
            if (got == SRV_GRPC_READ_MORE && chunk != 0) {
                FAIL("MORE with %zu bytes of the chunk left", chunk);
            }
            if (got == SRV_GRPC_READ_MESSAGE) {
                if (want.result != SRV_GRPC_READ_MESSAGE) {
                    FAIL("message at %zu where the reference expects %d", msg_start, (int)want.result);
                }
                if (!r.complete || r.msg_len != want.msg_len || r.msg_len > r.max_len ||
                    r.msg_have != r.msg_len || pos != want.end ||
                    (r.msg_len > 0 && memcmp(srv_grpc_reader_message(&r),
                                             payload + msg_start + SRV_GRPC_PREFIX_LEN, r.msg_len) != 0)) {
                    FAIL("message at %zu: len %zu (want %zu), ends at %zu (want %zu)", msg_start, r.msg_len,
                         want.msg_len, pos, want.end);
                }
                srv_grpc_reader_next(&r);
                if (!srv_grpc_reader_idle(&r)) {
                    FAIL("not idle after next");
                }
                msg_start = pos;
                want = reference_next(payload, plen, pos, r.max_len);
            } else if (got == SRV_GRPC_READ_OVER_BUDGET) {
                /* Growth falls back to exactly what arrived: only a body larger
                 * than the whole budget is refused. */
                if (want.msg_len <= budget) {
                    FAIL("over budget for %zu bytes with budget %zu", want.msg_len, budget);
                }
                done = 1;
            } else if (got != SRV_GRPC_READ_MORE) {
                if (got != want.result) {
                    FAIL("error %d at %zu, reference %d", (int)got, msg_start, (int)want.result);
                }
                done = 1;
            }
        } while (!done && chunk > 0);
        if (!done && pos == plen) {
            /* Input ran out: idle exactly when the reference sits on a boundary. */
            if (want.result != SRV_GRPC_READ_MORE && want.result != SRV_GRPC_READ_MESSAGE) {
                FAIL("input consumed but the reference expects error %d", (int)want.result);
            }
            if (srv_grpc_reader_idle(&r) != (msg_start == plen)) {
                FAIL("idle %d at the end, %zu of %zu bytes in messages", (int)srv_grpc_reader_idle(&r),
                     msg_start, plen);
            }
            done = 1;
        }
    }
    srv_grpc_reader_release(&r);
}

static void fuzz_headers(const uint8_t *data, size_t size)
{
    authz_slice in = {(const char *)data, size};
    uint64_t ns = 0;
    char out[64];
    size_t n, used = 0;

    if (srv_grpc_timeout_parse(in, &ns) == 0 && (size < 2 || size > 9)) {
        FAIL("timeout of %zu bytes accepted", size);
    }
    /* Encoding: bounded, NUL-terminated, and it decodes back to a prefix of the input. */
    n = srv_grpc_percent_encode(in, out, sizeof(out));
    if (n >= sizeof(out) || out[n] != '\0') {
        FAIL("percent-encode overran: %zu", n);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        unsigned v;
        if (c == '%') {
            if (i + 2 >= n) {
                FAIL("escape cut at %zu", i);
            }
            v = 0;
            for (int k = 1; k <= 2; k++) {
                char h = out[i + (size_t)k];
                v = v * 16u + (unsigned)(h >= 'A' ? h - 'A' + 10 : h - '0');
            }
            c = (unsigned char)v;
            i += 2;
        } else if (c < 0x20 || c > 0x7E) {
            FAIL("unescaped byte %u", c);
        }
        if (used >= size || (unsigned char)data[used] != c) {
            FAIL("encoding does not decode to the input at %zu", used);
        }
        used++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader(data, size);
    fuzz_headers(data, size);
    return 0;
}
