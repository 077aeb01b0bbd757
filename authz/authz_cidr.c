#include "authz_cidr.h"

#include <stdio.h>
#include <string.h>

#include "authz_ascii.h"

/* Longest IPv6 text form: 8 groups of 4 hex digits or 6 groups and a dotted quad. */
#define IP_TEXT_MAX 45

/* Strict dotted quad: exactly four decimal octets 0..255, no leading zeros. */
static int parse_ipv4(const char *s, size_t len, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return -1;
            i++;
        }
        size_t start = i;
        unsigned value = 0;
        while (i < len && authz_is_digit((unsigned char)s[i]) && i - start < 3) {
            value = value * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        size_t digits = i - start;
        if (digits == 0 || (digits > 1 && s[start] == '0') || value > 255 ||
            (i < len && authz_is_digit((unsigned char)s[i])))
            return -1;
        out[part] = (uint8_t)value;
    }
    return i == len ? 0 : -1;
}

/* RFC 4291 §2.2 text forms: x:x:x:x:x:x:x:x, "::" once, optional dotted-quad
 * tail in the last 32 bits. */
static int parse_ipv6(const char *s, size_t len, uint8_t out[16])
{
    uint16_t groups[8] = {0};
    size_t ngroups = 0;
    size_t gap = SIZE_MAX; /* index in |groups| where "::" stands */
    size_t i = 0;

    if (len < 2)
        return -1;
    if (s[0] == ':') {
        if (s[1] != ':')
            return -1;
        gap = 0;
        i = 2;
    }
    while (i < len) {
        size_t start = i;
        unsigned value = 0;
        while (i < len && authz_hex_value((unsigned char)s[i]) >= 0 && i - start < 4) {
            value = value << 4 | (unsigned)authz_hex_value((unsigned char)s[i]);
            i++;
        }
        if (i < len && s[i] == '.') {
            /* Dotted-quad tail: must end the text and fit in the last two groups. */
            uint8_t v4[4];
            if (ngroups > 6 || parse_ipv4(s + start, len - start, v4) != 0)
                return -1;
            groups[ngroups++] = (uint16_t)(v4[0] << 8 | v4[1]);
            groups[ngroups++] = (uint16_t)(v4[2] << 8 | v4[3]);
            break;
        }
        if (i == start || ngroups == 8 || (i < len && s[i] != ':'))
            return -1;
        groups[ngroups++] = (uint16_t)value;
        if (i == len)
            break;
        i++; /* ':' */
        if (i < len && s[i] == ':') {
            if (gap != SIZE_MAX)
                return -1;
            gap = ngroups;
            i++;
        } else if (i == len) {
            return -1; /* a single trailing ':' */
        }
    }

    if (gap == SIZE_MAX ? ngroups != 8 : ngroups > 7)
        return -1;
    memset(out, 0, 16);
    size_t tail = gap == SIZE_MAX ? 0 : ngroups - gap;
    size_t head = ngroups - tail;
    for (size_t g = 0; g < head; g++) {
        out[2 * g] = (uint8_t)(groups[g] >> 8);
        out[2 * g + 1] = (uint8_t)groups[g];
    }
    for (size_t g = 0; g < tail; g++) {
        size_t dst = 8 - tail + g;
        out[2 * dst] = (uint8_t)(groups[head + g] >> 8);
        out[2 * dst + 1] = (uint8_t)groups[head + g];
    }
    return 0;
}

static bool is_v4_mapped(const uint8_t b[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(b, prefix, sizeof prefix) == 0;
}

/* Parses without normalising ::ffff:a.b.c.d, so prefix lengths can be shifted. */
static int parse_ip_raw(authz_slice text, authz_ip *out)
{
    if (!text.ptr || text.len == 0 || text.len > IP_TEXT_MAX)
        return -1;
    memset(out, 0, sizeof *out);
    if (memchr(text.ptr, ':', text.len)) {
        out->family = 6;
        return parse_ipv6(text.ptr, text.len, out->bytes);
    }
    out->family = 4;
    return parse_ipv4(text.ptr, text.len, out->bytes);
}

static void unmap_v4(authz_ip *ip)
{
    uint8_t v4[4];
    memcpy(v4, ip->bytes + 12, sizeof v4);
    memset(ip->bytes, 0, sizeof ip->bytes);
    memcpy(ip->bytes, v4, sizeof v4);
    ip->family = 4;
}

int authz_ip_parse(authz_slice text, authz_ip *out)
{
    if (parse_ip_raw(text, out) != 0)
        return -1;
    if (out->family == 6 && is_v4_mapped(out->bytes))
        unmap_v4(out);
    return 0;
}

/* True when the bits of |b| from |prefix_len| on are all zero. */
static bool host_bits_zero(const uint8_t *b, size_t nbytes, unsigned prefix_len)
{
    for (size_t i = 0; i < nbytes; i++) {
        unsigned bit = (unsigned)i * 8;
        uint8_t mask;
        if (bit + 8 <= prefix_len)
            mask = 0;
        else if (bit >= prefix_len)
            mask = 0xff;
        else
            mask = (uint8_t)(0xffu >> (prefix_len - bit));
        if (b[i] & mask)
            return false;
    }
    return true;
}

int authz_cidr_parse(authz_slice text, authz_cidr *out)
{
    if (!text.ptr || text.len == 0)
        return -1;
    const char *slash = memchr(text.ptr, '/', text.len);
    authz_slice addr = {text.ptr, slash ? (size_t)(slash - text.ptr) : text.len};
    authz_ip ip;
    if (parse_ip_raw(addr, &ip) != 0)
        return -1;
    unsigned max_len = ip.family == 4 ? 32 : 128;
    unsigned prefix_len = max_len;
    if (slash) {
        const char *digits = slash + 1;
        size_t n = text.len - addr.len - 1;
        if (n == 0 || n > 3 || (n > 1 && digits[0] == '0'))
            return -1;
        prefix_len = 0;
        for (size_t i = 0; i < n; i++) {
            if (!authz_is_digit((unsigned char)digits[i]))
                return -1;
            prefix_len = prefix_len * 10 + (unsigned)(digits[i] - '0');
        }
        if (prefix_len > max_len)
            return -1;
    }
    if (!host_bits_zero(ip.bytes, ip.family == 4 ? 4 : 16, prefix_len))
        return -1;
    /* A mapped prefix with host bits clear has prefix_len >= 96 (the ffff bits are set). */
    if (ip.family == 6 && is_v4_mapped(ip.bytes)) {
        unmap_v4(&ip);
        prefix_len -= 96;
    }
    out->net = ip;
    out->prefix_len = (uint8_t)prefix_len;
    return 0;
}

bool authz_cidr_contains(const authz_cidr *cidr, const authz_ip *ip)
{
    if (cidr->net.family != ip->family)
        return false;
    unsigned max_len = ip->family == 4 ? 32 : 128;
    unsigned len = cidr->prefix_len > max_len ? max_len : cidr->prefix_len;
    size_t whole = len / 8;
    if (memcmp(cidr->net.bytes, ip->bytes, whole) != 0)
        return false;
    unsigned rest = len % 8;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (cidr->net.bytes[whole] & mask) == (ip->bytes[whole] & mask);
}

bool authz_cidr_list_contains(const authz_cidr *list, size_t count, const authz_ip *ip)
{
    for (size_t i = 0; i < count; i++) {
        if (authz_cidr_contains(&list[i], ip))
            return true;
    }
    return false;
}

/* RFC 5952 §4: lowercase, no leading zeros, the longest run (first on a tie)
 * of two or more zero groups becomes "::", mapped IPv4 keeps its dotted quad. */
static void format_ipv6(const uint8_t b[16], char *out, size_t size)
{
    unsigned groups[8];
    for (size_t g = 0; g < 8; g++)
        groups[g] = (unsigned)b[2 * g] << 8 | b[2 * g + 1];

    size_t best = 8, best_len = 0;
    for (size_t g = 0; g < 8;) {
        if (groups[g] != 0) {
            g++;
            continue;
        }
        size_t run = g;
        while (run < 8 && groups[run] == 0)
            run++;
        if (run - g > best_len) {
            best = g;
            best_len = run - g;
        }
        g = run;
    }
    if (best_len < 2)
        best = 8;

    size_t pos = 0;
    size_t last = is_v4_mapped(b) ? 6 : 8;
    for (size_t g = 0; g < last && pos < size; g++) {
        int n;
        if (g == best) {
            n = snprintf(out + pos, size - pos, "::");
            g += best_len - 1;
        } else {
            n = snprintf(out + pos, size - pos, "%s%x", pos > 0 && out[pos - 1] != ':' ? ":" : "", groups[g]);
        }
        if (n < 0)
            return;
        pos += (size_t)n;
    }
    if (last == 6 && pos < size)
        snprintf(out + pos, size - pos, ":%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
}

const char *authz_ip_format(const authz_ip *ip, char *buf, size_t size)
{
    char text[IP_TEXT_MAX + 1] = "";
    if (ip->family == 4)
        snprintf(text, sizeof text, "%u.%u.%u.%u", ip->bytes[0], ip->bytes[1], ip->bytes[2], ip->bytes[3]);
    else if (ip->family == 6)
        format_ipv6(ip->bytes, text, sizeof text);
    else
        snprintf(text, sizeof text, "invalid");
    if (size > 0)
        snprintf(buf, size, "%s", text);
    return buf;
}
