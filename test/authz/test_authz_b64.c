#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "authz_b64.h"
#include "tg_testkeys.h"

static long decode_cstr(const char *text, unsigned char *out, size_t out_size)
{
    return authz_b64url_decode(authz_slice_from_cstr(text), out, out_size);
}

Test(b64, round_trip_lengths_0_to_20)
{
    unsigned char in[20], out[32];
    char text[64];
    for (size_t len = 0; len <= 20; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)(0xf7 * (i + 1) + len);
        size_t n = authz_b64url_encode(in, len, text, sizeof text);
        cr_assert_eq(n, strlen(text));
        cr_assert_eq(n, (len * 4 + 2) / 3, "unpadded length for %zu bytes", len);
        /* The test kit's independent encoder must agree. */
        char *other = tg_b64url(in, len);
        cr_assert_str_eq(text, other);
        free(other);
        long d = authz_b64url_decode((authz_slice){text, n}, out, sizeof out);
        cr_assert_eq(d, (long)len);
        cr_assert(len == 0 || memcmp(in, out, len) == 0);
    }
}

Test(b64, alphabet_uses_dash_and_underscore)
{
    const unsigned char in[] = {0xfb, 0xff, 0xbf};
    char text[8];
    authz_b64url_encode(in, sizeof in, text, sizeof text);
    cr_assert_str_eq(text, "-_-_");
    unsigned char out[8];
    cr_assert_eq(decode_cstr("-_-_", out, sizeof out), 3);
    cr_assert_eq(memcmp(out, in, 3), 0);
}

Test(b64, padding_refused)
{
    unsigned char out[16];
    cr_assert_eq(decode_cstr("QQ", out, sizeof out), 1);
    cr_assert_eq(decode_cstr("QQ==", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("QUI=", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("====", out, sizeof out), -1);
}

Test(b64, standard_alphabet_refused)
{
    unsigned char out[16];
    cr_assert_eq(decode_cstr("-_-_", out, sizeof out), 3);
    cr_assert_eq(decode_cstr("+_-_", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("-/-_", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("+/+/", out, sizeof out), -1);
}

Test(b64, whitespace_refused)
{
    unsigned char out[16];
    cr_assert_eq(decode_cstr("QUJD", out, sizeof out), 3);
    cr_assert_eq(decode_cstr("QU JD", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("QUJD\n", out, sizeof out), -1);
    cr_assert_eq(decode_cstr(" QUJD", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("QU\tD", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("QUJ\r", out, sizeof out), -1);
}

Test(b64, embedded_nul_refused)
{
    unsigned char out[16];
    cr_assert_eq(authz_b64url_decode((authz_slice){"QU\0D", 4}, out, sizeof out), -1);
}

Test(b64, length_one_mod_four_refused)
{
    unsigned char out[16];
    cr_assert_eq(decode_cstr("Q", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("QUJDR", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("QUJDRUZHS", out, sizeof out), -1);
}

Test(b64, non_canonical_trailing_bits_refused)
{
    unsigned char out[16];
    /* "QQ" is 0x41; "QR" carries the same byte with a stray low bit set. */
    cr_assert_eq(decode_cstr("QQ", out, sizeof out), 1);
    cr_assert_eq(out[0], 0x41);
    cr_assert_eq(decode_cstr("QR", out, sizeof out), -1);
    cr_assert_eq(decode_cstr("QT", out, sizeof out), -1);
    /* Three characters: two bytes, the last two bits must be zero. */
    cr_assert_eq(decode_cstr("QUI", out, sizeof out), 2);
    cr_assert_eq(decode_cstr("QUJ", out, sizeof out), -1);
}

Test(b64, empty_input_decodes_to_nothing)
{
    unsigned char out[4];
    cr_assert_eq(decode_cstr("", out, sizeof out), 0);
}

Test(b64, decode_buffer_too_small)
{
    unsigned char out[16];
    size_t need = authz_b64url_decoded_max(8);
    cr_assert_geq(need, 6);
    cr_assert_eq(decode_cstr("QUJDREVG", out, need), 6);
    cr_assert_eq(decode_cstr("QUJDREVG", out, need - 1), -1);
    cr_assert_eq(decode_cstr("QUJDREVG", out, 0), -1);
}

Test(b64, encode_buffer_too_small)
{
    const unsigned char in[] = {1, 2, 3, 4};
    char text[16];
    memset(text, 'x', sizeof text);
    /* The contract asks for 4 * ceil(4 / 3) + 1 = 9 bytes for 4 input bytes. */
    cr_assert_eq(authz_b64url_encode(in, sizeof in, text, 9), 6);
    cr_assert_str_eq(text, "AQIDBA");
    memset(text, 'x', sizeof text);
    cr_assert_eq(authz_b64url_encode(in, sizeof in, text, 8), 0);
    cr_assert_eq(text[0], '\0', "a refused encode leaves an empty string");
}

/* Every byte value at every place of a group of four and of the two- and
 * three-digit tails: accepted exactly when it is a base64url digit (whose
 * bits below the last whole byte are zero, in a tail), and then decoded to
 * its value at that place. The alphabet here is written out independently
 * of the decoder's tables. */
Test(b64, every_byte_at_every_place)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t len = 2; len <= 4; len++) {
        for (size_t place = 0; place < len; place++) {
            for (int b = 0; b < 256; b++) {
                char text[4] = {'A', 'A', 'A', 'A'};
                unsigned char out[8] = {0};
                text[place] = (char)b;
                const char *at = b != 0 ? memchr(alphabet, b, 64) : NULL;
                unsigned value = at ? (unsigned)(at - alphabet) : 0;
                /* Bits of this digit that fall below the last whole byte of a tail. */
                unsigned dropped =
                    len == 4 ? 0u : (place == len - 1 ? (len == 2 ? value & 0xfu : value & 0x3u) : 0u);
                bool valid = at != NULL && dropped == 0;
                long n = authz_b64url_decode((authz_slice){text, len}, out, sizeof out);
                if (!valid) {
                    cr_assert_eq(n, -1, "byte 0x%02x at %zu of %zu accepted", (unsigned)b, place, len);
                    continue;
                }
                cr_assert_eq(n, (long)(len * 3 / 4), "byte 0x%02x at %zu of %zu", (unsigned)b, place, len);
                uint32_t got = (uint32_t)out[0] << 16 | (uint32_t)out[1] << 8 | out[2];
                cr_assert_eq(got, (uint32_t)value << (18 - 6 * place),
                             "byte 0x%02x at %zu of %zu decoded 0x%06x", (unsigned)b, place, len,
                             (unsigned)got);
            }
        }
    }
}
