/* authz_spiffe: the caller's mesh identity as a Kubernetes workload.
 *
 * A strict reader of the SPIFFE IDs Istio (and any SPIFFE mesh on
 * Kubernetes) gives workloads, spiffe://<trust-domain>/ns/<ns>/sa/<sa>, and
 * of the single URI SAN of an X.509 SVID as Envoy passes it in
 * source.certificate (a URL-encoded PEM). Only that one form is accepted:
 * anything a lenient URI parser would have to normalize first (case,
 * percent-encoding, dot segments, empty segments, a trailing slash, a port,
 * userinfo, a query) is refused, so one identity has one spelling.
 * Pure: no I/O, no globals; OpenSSL only parses. */
#ifndef AUTHZ_SPIFFE_H
#define AUTHZ_SPIFFE_H

#include <stdbool.h>

#include "authz_arena.h"
#include "authz_slice.h"

/* Longest SPIFFE ID (the SPIFFE ID specification's URI bound) and trust
 * domain name. */
#define AUTHZ_SPIFFE_ID_MAX 2048u
#define AUTHZ_SPIFFE_TRUST_DOMAIN_MAX 255u
/* Longest source.certificate accepted, URL-encoded: a leaf certificate is a
 * few KiB; anything longer is refused before it is decoded. */
#define AUTHZ_SPIFFE_CERT_MAX 65536u

/* A parsed workload ID; slices borrow the parsed text. */
typedef struct authz_spiffe_id {
    authz_slice trust_domain;
    authz_slice namespace_name;
    authz_slice service_account;
} authz_spiffe_id;

/* Parses |id| as exactly spiffe://<trust-domain>/ns/<ns>/sa/<sa>: the
 * scheme in lower case, a trust domain of [a-z0-9._-] (at most
 * AUTHZ_SPIFFE_TRUST_DOMAIN_MAX bytes), then exactly four path segments of
 * [A-Za-z0-9._-], none empty, "." or "..", the first "ns" and the third
 * "sa"; at most AUTHZ_SPIFFE_ID_MAX bytes in all. Returns NULL and fills
 * |out| (slices into |id|), or a static sentence saying what is wrong
 * (|out| is then unspecified). */
const char *authz_spiffe_parse(authz_slice id, authz_spiffe_id *out);

/* True when |td| is a trust domain authz_spiffe_parse accepts. */
bool authz_spiffe_trust_domain_valid(authz_slice td);

/* The one URI SAN of the certificate |url_pem|: a PEM "CERTIFICATE" block,
 * percent-encoded as Envoy sends source.certificate (plain PEM is accepted
 * too), at most AUTHZ_SPIFFE_CERT_MAX bytes, with nothing but whitespace
 * after the block. The certificate is parsed, not verified: the proxy
 * verified it in the TLS handshake. Returns 0 with *uri the SAN copied into
 * |arena| (at most AUTHZ_SPIFFE_ID_MAX bytes, not yet parsed as a SPIFFE
 * ID); -1 with *why a static sentence (too long, bad percent-encoding, not
 * one certificate, no subjectAltName, not exactly one URI SAN); -2 when
 * |arena| or OpenSSL ran out of memory. */
int authz_spiffe_uri_san(authz_slice url_pem, authz_arena *arena, authz_slice *uri, const char **why);

#endif
