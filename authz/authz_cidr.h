/* authz_cidr: IP addresses and CIDR prefixes, IPv4 and IPv6.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are normalised to IPv4 so a
 * dual-stack peer matches IPv4 prefixes. Parsing is strict: no leading zeros
 * in IPv4 octets, no zone ids, host bits of a prefix must be zero. */
#ifndef AUTHZ_CIDR_H
#define AUTHZ_CIDR_H

#include <stdbool.h>
#include <stdint.h>

#include "authz_slice.h"

typedef struct authz_ip {
    uint8_t family; /* 4 or 6 */
    uint8_t bytes[16]; /* IPv4 uses the first 4 */
} authz_ip;

typedef struct authz_cidr {
    authz_ip net;
    uint8_t prefix_len; /* 0..32 or 0..128 */
} authz_cidr;

/* Parses an IP literal ("10.1.2.3", "fd00::1", "[fd00::1]" is refused).
 * Returns 0, or -1 when |text| is not a literal. */
int authz_ip_parse(authz_slice text, authz_ip *out);

/* Parses "addr/len"; a bare address means a host prefix (/32 or /128).
 * Returns 0, or -1 on any syntax error or non-zero host bits. */
int authz_cidr_parse(authz_slice text, authz_cidr *out);

/* True when |ip| lies in |cidr| (families must agree). */
bool authz_cidr_contains(const authz_cidr *cidr, const authz_ip *ip);

/* True when |ip| lies in any of the |count| prefixes. */
bool authz_cidr_list_contains(const authz_cidr *list, size_t count, const authz_ip *ip);

/* Writes |ip| in canonical text form (RFC 5952 for IPv6) into |buf| of
 * |size| bytes (46 is always enough). Returns |buf|. */
const char *authz_ip_format(const authz_ip *ip, char *buf, size_t size);

#endif
