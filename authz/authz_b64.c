#include "authz_b64.h"

#include <limits.h>
#include <stdint.h>

/* A base64url digit's value (0..63), or -1 for a byte outside the alphabet. */
#define B64URL_VALUE(c)                                                                                      \
    ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                                  \
     : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                             \
     : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                             \
     : (c) == '-'               ? 62                                                                         \
     : (c) == '_'               ? 63                                                                         \
                                : -1)

/* Set in a table entry for a byte outside the alphabet: above the 24 bits
 * four digits fill, so one test of the OR of four entries finds any. */
#define B64URL_INVALID 0x80000000u

/* Tables of each digit's value already shifted to its place in a group of
 * four (18, 12, 6, 0 bits): a group decodes as four loads ORed together. */
#define B64URL_ENTRY(c, shift) (B64URL_VALUE(c) < 0 ? B64URL_INVALID : (uint32_t)B64URL_VALUE(c) << (shift))
#define B64URL_ROW(r, shift)                                                                                 \
    B64URL_ENTRY((r) + 0, shift), B64URL_ENTRY((r) + 1, shift), B64URL_ENTRY((r) + 2, shift),                \
        B64URL_ENTRY((r) + 3, shift), B64URL_ENTRY((r) + 4, shift), B64URL_ENTRY((r) + 5, shift),            \
        B64URL_ENTRY((r) + 6, shift), B64URL_ENTRY((r) + 7, shift), B64URL_ENTRY((r) + 8, shift),            \
        B64URL_ENTRY((r) + 9, shift), B64URL_ENTRY((r) + 10, shift), B64URL_ENTRY((r) + 11, shift),          \
        B64URL_ENTRY((r) + 12, shift), B64URL_ENTRY((r) + 13, shift), B64URL_ENTRY((r) + 14, shift),         \
        B64URL_ENTRY((r) + 15, shift)
#define B64URL_TABLE(shift)                                                                                  \
    {                                                                                                        \
        B64URL_ROW(0, shift), B64URL_ROW(16, shift), B64URL_ROW(32, shift), B64URL_ROW(48, shift),           \
            B64URL_ROW(64, shift), B64URL_ROW(80, shift), B64URL_ROW(96, shift), B64URL_ROW(112, shift),     \
            B64URL_ROW(128, shift), B64URL_ROW(144, shift), B64URL_ROW(160, shift), B64URL_ROW(176, shift),  \
            B64URL_ROW(192, shift), B64URL_ROW(208, shift), B64URL_ROW(224, shift), B64URL_ROW(240, shift)   \
    }

static const uint32_t b64url_shifted[4][256] = {B64URL_TABLE(18), B64URL_TABLE(12), B64URL_TABLE(6),
                                                B64URL_TABLE(0)};

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t authz_b64url_decoded_max(size_t len)
{
    return len / 4 * 3 + 2;
}

long authz_b64url_decode(authz_slice in, unsigned char *out, size_t out_size)
{
    if (in.len % 4 == 1 || out_size < authz_b64url_decoded_max(in.len) || in.len > (size_t)(LONG_MAX / 2))
        return -1;
    const unsigned char *src = (const unsigned char *)in.ptr;
    size_t o = 0;
    size_t i = 0;
    for (; i + 4 <= in.len; i += 4) {
        uint32_t v = b64url_shifted[0][src[i]] | b64url_shifted[1][src[i + 1]] |
                     b64url_shifted[2][src[i + 2]] | b64url_shifted[3][src[i + 3]];
        if (v & B64URL_INVALID)
            return -1;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
        o += 3;
    }
    size_t rest = in.len - i;
    if (rest) {
        uint32_t v = b64url_shifted[0][src[i]] | b64url_shifted[1][src[i + 1]] |
                     (rest == 3 ? b64url_shifted[2][src[i + 2]] : 0);
        if (v & B64URL_INVALID)
            return -1;
        /* Canonical form only: the bits below the last whole byte must be zero. */
        if ((rest == 2 && (v & 0xffff)) || (rest == 3 && (v & 0xff)))
            return -1;
        out[o++] = (unsigned char)(v >> 16);
        if (rest == 3)
            out[o++] = (unsigned char)(v >> 8);
    }
    return (long)o;
}

size_t authz_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_size)
{
    size_t need = (len + 2) / 3 * 4 + 1;
    if (out_size < need) {
        if (out_size)
            out[0] = '\0';
        return 0;
    }
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}
