#include "pol_path.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "authz_ascii.h"

const char *pol_path_error_text(pol_path_error error)
{
    switch (error) {
    case POL_PATH_OK:
        return "ok";
    case POL_PATH_NOT_ABSOLUTE:
        return "path does not start with '/'";
    case POL_PATH_CONTROL:
        return "control byte in the path";
    case POL_PATH_BACKSLASH:
        return "backslash in the path";
    case POL_PATH_INVALID_BYTE:
        return "byte not allowed in a path";
    case POL_PATH_BAD_ESCAPE:
        return "invalid percent-encoding";
    case POL_PATH_ENCODED_SLASH:
        return "encoded slash or backslash";
    case POL_PATH_BAD_UTF8:
        return "percent-encoded bytes are not UTF-8";
    case POL_PATH_DOT_PARAMETER:
        return "empty or dot segment with ';' parameters";
    case POL_PATH_NO_ROOM:
        return "no room to normalize the path";
    }
    return "invalid path";
}

/* Bitmaps over ASCII, one bit per byte (bit c % 32 of word c / 32), so the
 * per-byte test on the request path is a shift and a mask. */
typedef struct ascii_set {
    uint32_t words[4];
} ascii_set;

static bool ascii_set_has(const ascii_set *set, unsigned char c)
{
    return c < 128 && (set->words[c >> 5] >> (c & 31)) & 1u;
}

/* RFC 3986 2.3: A-Z a-z 0-9 - . _ ~ */
static const ascii_set unreserved = {{0x00000000, 0x03ff6000, 0x87fffffe, 0x47fffffe}};

/* A pchar that stands for itself (RFC 3986 3.3): unreserved, sub-delims
 * (! $ & ' ( ) * + , ; =), ':' and '@'. '%' and '/' are handled apart. */
static const ascii_set plain_pchar = {{0x00000000, 0x2fff7fd2, 0x87ffffff, 0x47fffffe}};

/* Well-formed UTF-8 (RFC 3629 4) over the bytes of consecutive escapes:
 * |need| continuation bytes are still due, the next in [lo, hi]. The
 * narrowed ranges after E0, ED, F0 and F4 refuse overlong forms
 * ("%C0%AE" for '.'), surrogates and code points past U+10FFFF. */
typedef struct utf8_state {
    unsigned need;
    unsigned char lo, hi;
} utf8_state;

static bool utf8_step(utf8_state *u, unsigned char b)
{
    if (u->need > 0) {
        if (b < u->lo || b > u->hi)
            return false;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xbf;
        return true;
    }
    u->lo = 0x80;
    u->hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
        u->need = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
        u->need = 2;
        if (b == 0xe0)
            u->lo = 0xa0;
        else if (b == 0xed)
            u->hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        u->need = 3;
        if (b == 0xf0)
            u->lo = 0x90;
        else if (b == 0xf4)
            u->hi = 0x8f;
    } else {
        return false;
    }
    return true;
}

/* Writes "%XX" with upper-case hex (RFC 3986 6.2.2.1) at out[w]; returns
 * the new write position. */
static size_t put_escape(char *out, size_t w, unsigned char v)
{
    static const char hex[] = "0123456789ABCDEF";
    out[w] = '%';
    out[w + 1] = hex[v >> 4];
    out[w + 2] = hex[v & 0xf];
    return w + 3;
}

/* Copies the segment starting at raw[*i] (up to the next '/' or |end|) to
 * out[*n], decoding what RFC 3986 6.2.2.2 allows. Advances both; on an
 * error *i is the offending byte. *semi is the output offset of the
 * segment's first raw ';', or SIZE_MAX. Works on local copies: a store
 * through |out| (char) could alias the pointers' targets and would force a
 * reload per byte. */
static pol_path_error copy_segment(authz_slice raw, size_t end, pol_path_slashes slashes, size_t *i,
                                   char *out, size_t *n, size_t *semi)
{
    const unsigned char *p = (const unsigned char *)raw.ptr;
    utf8_state u = {0, 0x80, 0xbf};
    pol_path_error err = POL_PATH_OK;
    size_t r = *i, w = *n, first_semi = SIZE_MAX;
    while (r < end && p[r] != '/') {
        unsigned char c = p[r];
        if (c != '%') {
            if (u.need > 0 || !ascii_set_has(&plain_pchar, c)) {
                if (u.need > 0)
                    err = POL_PATH_BAD_UTF8;
                else if (c == '\\')
                    err = POL_PATH_BACKSLASH;
                else
                    err = c < 0x20 || c == 0x7f ? POL_PATH_CONTROL : POL_PATH_INVALID_BYTE;
                goto done;
            }
            if (c == ';' && first_semi == SIZE_MAX)
                first_semi = w;
            out[w++] = (char)c;
            r++;
            continue;
        }
        int hi = r + 2 < end ? authz_hex_value(p[r + 1]) : -1;
        int lo = r + 2 < end ? authz_hex_value(p[r + 2]) : -1;
        if (hi < 0 || lo < 0) {
            err = POL_PATH_BAD_ESCAPE;
            goto done;
        }
        unsigned char v = (unsigned char)(hi * 16 + lo);
        if (v >= 0x80) {
            if (!utf8_step(&u, v))
                err = POL_PATH_BAD_UTF8;
            else
                w = put_escape(out, w, v);
        } else if (u.need > 0) {
            err = POL_PATH_BAD_UTF8;
        } else if (ascii_set_has(&unreserved, v)) {
            out[w++] = (char)v;
        } else if (v < 0x20 || v == 0x7f) {
            err = POL_PATH_CONTROL;
        } else if ((v == '/' || v == '\\') && slashes != POL_PATH_SLASHES_KEEP) {
            err = POL_PATH_ENCODED_SLASH;
        } else {
            w = put_escape(out, w, v);
        }
        if (err != POL_PATH_OK)
            goto done;
        r += 3;
    }
    if (u.need > 0)
        err = POL_PATH_BAD_UTF8;
done:
    *i = r;
    *n = w;
    *semi = first_semi;
    return err;
}

static bool is_dot_name(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

/* Where the path ends: at the first '?' or '#', else at the end. */
static size_t path_end(authz_slice raw)
{
    const char *query = raw.len > 0 ? memchr(raw.ptr, '?', raw.len) : NULL;
    size_t end = query ? (size_t)(query - raw.ptr) : raw.len;
    const char *fragment = end > 0 ? memchr(raw.ptr, '#', end) : NULL;
    return fragment ? (size_t)(fragment - raw.ptr) : end;
}

pol_path_error pol_path_normalize(authz_slice raw, pol_path_slashes slashes, char *out, size_t out_size,
                                  size_t *out_len, size_t *error_offset)
{
    pol_path_error err = POL_PATH_OK;
    size_t i = 0;
    size_t end = path_end(raw);
    size_t n = 0;
    if (end == 0 || raw.ptr[0] != '/') {
        err = POL_PATH_NOT_ABSOLUTE;
        goto done;
    }
    if (out_size < end) {
        err = POL_PATH_NO_ROOM;
        goto done;
    }
    /* |out| holds the segments kept so far and always ends with '/' between
     * segments; it never runs ahead of |i|, so it fits in |end| bytes. */
    out[n++] = '/';
    for (i = 1; i <= end; i++) {
        size_t segment_in = i;
        size_t segment = n;
        size_t semi;
        err = copy_segment(raw, end, slashes, &i, out, &n, &semi);
        if (err != POL_PATH_OK)
            goto done;
        const char *name = out + segment;
        size_t len = n - segment;
        if (semi != SIZE_MAX && (semi == segment || is_dot_name(name, semi - segment))) {
            i = segment_in;
            err = POL_PATH_DOT_PARAMETER;
            goto done;
        }
        if (is_dot_name(name, len)) {
            n = segment;
            if (len == 2 && n > 1) {
                /* Drop the previous segment: back over its '/' to the one before. */
                n--;
                while (out[n - 1] != '/')
                    n--;
            }
        } else if (len > 0 && i < end) {
            out[n++] = '/';
        }
    }
    /* The query and fragment are not judged, but a control byte there is
     * as unsafe to pass on as one in the path. */
    for (i = end; i < raw.len; i++) {
        unsigned char c = (unsigned char)raw.ptr[i];
        if (c < 0x20 || c == 0x7f) {
            err = POL_PATH_CONTROL;
            goto done;
        }
    }
done:
    if (error_offset)
        *error_offset = i;
    *out_len = err == POL_PATH_OK ? n : 0;
    return err;
}
