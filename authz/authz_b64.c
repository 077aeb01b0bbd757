#include "authz_b64.h"

#include <limits.h>
#include <stdint.h>

/* 1 + the digit's value (0..63) for the base64url alphabet, 0 for every other
 * byte, so the decoder tells an invalid byte by a -1 after subtracting one. */
static const uint8_t b64url_value1[256] = {
    /* clang-format off */
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
    /* clang-format on */
};

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The digit's value, or -1 for a byte outside the alphabet: one load, no branch. */
static int b64url_digit(unsigned char c)
{
    return (int)b64url_value1[c] - 1;
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
