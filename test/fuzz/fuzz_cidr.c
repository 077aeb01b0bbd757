/* fuzz_cidr: authz_ip_parse and authz_cidr_parse on arbitrary text.
 *
 * Checks for an accepted address: its canonical text parses back to the same
 * address, and formatting is idempotent. For an accepted prefix: the length
 * fits the family, host bits are zero, the prefix contains its own network
 * address, and "<net>/<len>" parses back to the same prefix. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t addr_bytes(const authz_ip *ip)
{
    return ip->family == 4 ? 4 : 16;
}

static int ip_equal(const authz_ip *a, const authz_ip *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, addr_bytes(a)) == 0;
}

static void check_family(const authz_ip *ip)
{
    if (ip->family != 4 && ip->family != 6) {
        fprintf(stderr, "cidr: family %u\n", ip->family);
        abort();
    }
}

static void check_ip_round_trip(const authz_ip *ip)
{
    char text[64];
    char again[64];
    authz_ip back;
    size_t len;

    authz_ip_format(ip, text, sizeof(text));
    len = strlen(text);
    if (len >= 46 || authz_ip_parse((authz_slice){text, len}, &back) != 0 || !ip_equal(ip, &back)) {
        fprintf(stderr, "cidr: \"%s\" does not parse back to the same address\n", text);
        abort();
    }
    authz_ip_format(&back, again, sizeof(again));
    if (strcmp(text, again) != 0) {
        fprintf(stderr, "cidr: format not idempotent: \"%s\" then \"%s\"\n", text, again);
        abort();
    }
}

static void check_cidr(const authz_cidr *c)
{
    size_t bits = addr_bytes(&c->net) * 8;
    char text[64];
    char full[80];
    authz_cidr back;
    int n;

    check_family(&c->net);
    if (c->prefix_len > bits) {
        fprintf(stderr, "cidr: prefix_len %u for family %u\n", c->prefix_len, c->net.family);
        abort();
    }
    for (size_t i = c->prefix_len; i < bits; i++) {
        if (c->net.bytes[i / 8] & (0x80u >> (i % 8))) {
            fprintf(stderr, "cidr: host bit %zu set\n", i);
            abort();
        }
    }
    if (!authz_cidr_contains(c, &c->net)) {
        fprintf(stderr, "cidr: prefix does not contain its network address\n");
        abort();
    }
    authz_ip_format(&c->net, text, sizeof(text));
    n = snprintf(full, sizeof(full), "%s/%u", text, c->prefix_len);
    if (n < 0 || (size_t)n >= sizeof(full) || authz_cidr_parse((authz_slice){full, (size_t)n}, &back) != 0 ||
        !ip_equal(&c->net, &back.net) || back.prefix_len != c->prefix_len) {
        fprintf(stderr, "cidr: \"%s\" does not parse back to the same prefix\n", full);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    authz_slice in = {(const char *)data, size};
    authz_ip ip;
    authz_cidr cidr;
    int ip_ok;
    int cidr_ok;

    memset(&ip, 0xA5, sizeof(ip));
    memset(&cidr, 0xA5, sizeof(cidr));
    ip_ok = authz_ip_parse(in, &ip) == 0;
    if (ip_ok) {
        check_family(&ip);
        check_ip_round_trip(&ip);
    }
    cidr_ok = authz_cidr_parse(in, &cidr) == 0;
    if (cidr_ok) {
        check_cidr(&cidr);
    }
    /* A bare address is a host prefix: the two parsers agree on it. */
    if (ip_ok && (!cidr_ok || !ip_equal(&ip, &cidr.net) || cidr.prefix_len != addr_bytes(&ip) * 8)) {
        fprintf(stderr, "cidr: address accepted but not as a host prefix\n");
        abort();
    }
    return 0;
}
