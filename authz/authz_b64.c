#include "authz_b64.h"

#include <limits.h>
#include <stdint.h>

/* 0..63 for the base64url alphabet, 0xff for everything else. */
static const uint8_t b64url_value[256] = {
    /* clang-format off */
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,  ['H'] = 7,
    ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15,
    ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
    ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31,
    ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39,
    ['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
    ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
    ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['-'] = 62, ['_'] = 63,
    /* clang-format on */
};

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The table above leaves unlisted bytes 0, the value of 'A'; this tells them apart. */
static int b64url_digit(unsigned char c)
{
    if (c == 'A')
        return 0;
    uint8_t v = b64url_value[c];
    return v ? (int)v : -1;
}

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
        int a = b64url_digit(src[i]), b = b64url_digit(src[i + 1]);
        int c = b64url_digit(src[i + 2]), d = b64url_digit(src[i + 3]);
        if ((a | b | c | d) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    size_t rest = in.len - i;
    if (rest) {
        int a = b64url_digit(src[i]), b = b64url_digit(src[i + 1]);
        int c = rest == 3 ? b64url_digit(src[i + 2]) : 0;
        if ((a | b | c) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
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
