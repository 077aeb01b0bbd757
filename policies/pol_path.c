#include "pol_path.h"

#include <stdbool.h>
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

/* RFC 3986 2.3. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || authz_is_digit(c) || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/* A pchar that stands for itself (RFC 3986 3.3): unreserved, sub-delims,
 * ':' and '@'. '%' and '/' are handled by the caller. */
static bool is_plain_pchar(unsigned char c)
{
    switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
        return true;
    default:
        return is_unreserved(c);
    }
}

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

static void put_escape(char *out, size_t *n, unsigned char v)
{
    static const char hex[] = "0123456789ABCDEF";
    out[(*n)++] = '%';
    out[(*n)++] = hex[v >> 4];
    out[(*n)++] = hex[v & 0xf];
}

/* Copies the segment starting at raw[*i] (up to the next '/' or |end|) to
 * out[*n], decoding what RFC 3986 6.2.2.2 allows. Advances both. */
static pol_path_error copy_segment(authz_slice raw, size_t end, pol_path_slashes slashes, size_t *i,
                                   char *out, size_t *n)
{
    const unsigned char *p = (const unsigned char *)raw.ptr;
    utf8_state u = {0, 0x80, 0xbf};
    while (*i < end && p[*i] != '/') {
        unsigned char c = p[*i];
        if (c != '%') {
            if (u.need > 0)
                return POL_PATH_BAD_UTF8;
            if (c == '\\')
                return POL_PATH_BACKSLASH;
            if (!is_plain_pchar(c))
                return POL_PATH_INVALID_BYTE;
            out[(*n)++] = (char)c;
            (*i)++;
            continue;
        }
        int hi = *i + 2 < end ? authz_hex_value(p[*i + 1]) : -1;
        int lo = *i + 2 < end ? authz_hex_value(p[*i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return POL_PATH_BAD_ESCAPE;
        unsigned char v = (unsigned char)(hi * 16 + lo);
        if (v >= 0x80) {
            if (!utf8_step(&u, v))
                return POL_PATH_BAD_UTF8;
            put_escape(out, n, v);
        } else if (u.need > 0) {
            return POL_PATH_BAD_UTF8;
        } else if (is_unreserved(v)) {
            out[(*n)++] = (char)v;
        } else if (v < 0x20 || v == 0x7f) {
            return POL_PATH_CONTROL;
        } else if ((v == '/' || v == '\\') && slashes != POL_PATH_SLASHES_KEEP) {
            return POL_PATH_ENCODED_SLASH;
        } else {
            put_escape(out, n, v);
        }
        *i += 3;
    }
    return u.need > 0 ? POL_PATH_BAD_UTF8 : POL_PATH_OK;
}

static bool is_dot_name(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

pol_path_error pol_path_normalize(authz_slice raw, pol_path_slashes slashes, char *out, size_t out_size,
                                  size_t *out_len, size_t *error_offset)
{
    pol_path_error err = POL_PATH_OK;
    size_t i = 0;
    size_t end = raw.len; /* where the query or fragment begins */
    size_t n = 0;
    for (; i < raw.len; i++) {
        unsigned char c = (unsigned char)raw.ptr[i];
        if (c < 0x20 || c == 0x7f) {
            err = POL_PATH_CONTROL;
            goto done;
        }
        if (end == raw.len && (c == '?' || c == '#'))
            end = i;
    }
    i = 0;
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
        err = copy_segment(raw, end, slashes, &i, out, &n);
        if (err != POL_PATH_OK)
            goto done;
        const char *name = out + segment;
        size_t len = n - segment;
        const char *semi = len > 0 ? memchr(name, ';', len) : NULL;
        if (semi && (semi == name || is_dot_name(name, (size_t)(semi - name)))) {
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
done:
    if (error_offset)
        *error_offset = i;
    *out_len = err == POL_PATH_OK ? n : 0;
    return err;
}
