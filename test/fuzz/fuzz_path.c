/* fuzz_path: pol_path_normalize on arbitrary request targets, in both
 * escaped_slashes modes, into a buffer exactly as long as the input (ASan
 * catches any write past it).
 *
 * Checks for an accepted path: the result is no longer than the input, in
 * normal form (starts with '/', no empty, "." or ".." segment, no '?', '#',
 * '\', control or non-ASCII byte, every escape upper-case hex and never of
 * an unreserved character, %2F/%5C only when kept), and normalizing it again
 * returns it unchanged. Whatever "reject" accepts, "keep" accepts the same
 * way. A refusal names an offset within the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, authz_slice in)
{
    fprintf(stderr, "path: %s for input of %zu bytes: \"%.*s\"\n", what, in.len, (int)in.len, in.ptr);
    abort();
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void check_normal_form(const char *s, size_t len, pol_path_slashes slashes, authz_slice in)
{
    if (len == 0 || s[0] != '/')
        fail("result does not start with '/'", in);
    size_t segment = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i == len || s[i] == '/') {
            size_t n = i - segment;
            if ((n == 0 && i < len) || (n == 1 && s[segment] == '.') ||
                (n == 2 && s[segment] == '.' && s[segment + 1] == '.'))
                fail("empty or dot segment in the result", in);
            segment = i + 1;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c >= 0x7f || c == '?' || c == '#' || c == '\\')
            fail("byte not allowed in a normalized path", in);
        if (c != '%')
            continue;
        if (i + 2 >= len)
            fail("truncated escape in the result", in);
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0)
            fail("escape not in upper-case hex", in);
        unsigned v = (unsigned)(hi * 16 + lo);
        if ((v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9') || v == '-' ||
            v == '.' || v == '_' || v == '~')
            fail("unreserved character left encoded", in);
        if ((v == '/' || v == '\\') && slashes != POL_PATH_SLASHES_KEEP)
            fail("encoded slash accepted while rejecting them", in);
        i += 2;
    }
}

/* Normalizes |in| with |slashes|; returns the error, the result in a fresh
 * allocation *out (NULL on error) of *out_len bytes. */
static pol_path_error run(authz_slice in, pol_path_slashes slashes, char **out, size_t *out_len)
{
    /* Exactly the input's length: the contract's bound, no slack. */
    char *buf = malloc(in.len ? in.len : 1);
    if (!buf)
        abort();
    size_t at = (size_t)-1;
    pol_path_error e = pol_path_normalize(in, slashes, buf, in.len, out_len, &at);
    if (e == POL_PATH_NO_ROOM)
        fail("no room in a buffer as long as the input", in);
    if (e != POL_PATH_OK) {
        if (at > in.len || *out_len != 0)
            fail("refusal with an offset past the input or a length", in);
        free(buf);
        *out = NULL;
        return e;
    }
    if (*out_len > in.len)
        fail("result longer than the input", in);
    check_normal_form(buf, *out_len, slashes, in);
    char *again = malloc(*out_len);
    if (!again)
        abort();
    size_t again_len = 0;
    if (pol_path_normalize((authz_slice){buf, *out_len}, slashes, again, *out_len, &again_len, NULL) !=
            POL_PATH_OK ||
        again_len != *out_len || memcmp(again, buf, again_len) != 0)
        fail("normalizing the result again changes it", in);
    free(again);
    *out = buf;
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    authz_slice in = {(const char *)data, size};
    char *strict = NULL, *kept = NULL;
    size_t strict_len = 0, kept_len = 0;
    pol_path_error strict_e = run(in, POL_PATH_SLASHES_REJECT, &strict, &strict_len);
    pol_path_error kept_e = run(in, POL_PATH_SLASHES_KEEP, &kept, &kept_len);
    if (strict_e == POL_PATH_OK &&
        (kept_e != POL_PATH_OK || kept_len != strict_len || memcmp(strict, kept, strict_len) != 0))
        fail("keep disagrees with reject on a path without encoded slashes", in);
    if (strict_e != POL_PATH_ENCODED_SLASH && strict_e != kept_e)
        fail("the modes refuse differently for a reason other than encoded slashes", in);
    free(strict);
    free(kept);
    return 0;
}
