/* pol_cfgcheck: the validators the config loader applies to single string
 * values (pol_cfg_string_check). Each takes a non-empty slice without NUL
 * (pol_cfg_string_value checks that first) and returns NULL when the value
 * is fine, else the problem as a constant phrase that follows the value's
 * path in a report ("is too long"). Private to the loader. */
#ifndef POL_CFGCHECK_H
#define POL_CFGCHECK_H

#include "authz_slice.h"

/* A cluster or provider name: letters, digits, '.', '_', '-', at most 253
 * bytes. */
const char *pol_cfgcheck_name(authz_slice s);

/* A cluster host: a DNS name, one leading "*." label then a DNS name, or a
 * bracketed IPv6 literal; never a port. */
const char *pol_cfgcheck_host(authz_slice s);

/* An HTTP header name (RFC 9110 5.6.2 token), not a pseudo-header, at most
 * 253 bytes. */
const char *pol_cfgcheck_header_name(authz_slice s);

/* A claim_to_headers header: as pol_cfgcheck_header_name, and not one
 * tokengate sets or removes itself (authorization, host, x-tokengate-*). */
const char *pol_cfgcheck_claim_header_name(authz_slice s);

/* A header value a condition compares exactly: at most 1024 bytes, no
 * control bytes, no comma (a comma-separated value is several values,
 * refused as ambiguous), no surrounding spaces (proxies strip them). */
const char *pol_cfgcheck_header_value(authz_slice s);

/* A claim path "a.b.c": dot-separated, no empty segment, at most 256 bytes. */
const char *pol_cfgcheck_claim_path(authz_slice s);

/* A listen address "host:port" or "[IPv6]:port", port 1..65535. */
const char *pol_cfgcheck_listen(authz_slice s);

/* A rule path_prefix: starts with '/'. */
const char *pol_cfgcheck_path_prefix(authz_slice s);

/* An upper-case HTTP method, at most 32 bytes. */
const char *pol_cfgcheck_method(authz_slice s);

/* A service account "namespace:name". */
const char *pol_cfgcheck_service_account(authz_slice s);

/* A client certificate SAN: a URI ("spiffe://trust-domain/path", what
 * Istio's and SPIFFE's workload certificates carry) or a DNS name. Compared
 * exactly (DNS names ignoring ASCII case), so no wildcards. */
const char *pol_cfgcheck_client_san(authz_slice s);

/* An https URL with a host, printable ASCII, at most 2048 bytes: keys are
 * fetched over TLS only (plain http would let the network choose them). */
const char *pol_cfgcheck_https_url(authz_slice s);

/* A SPIFFE trust domain (authz_spiffe_trust_domain_valid). */
const char *pol_cfgcheck_trust_domain(authz_slice s);

/* A username or groups prefix: may be empty (so also called on an empty
 * slice); printable ASCII without a comma (x-tokengate-groups joins groups
 * with commas); never "system:", which Kubernetes reserves for its own
 * identities. */
const char *pol_cfgcheck_prefix(authz_slice s);

/* A user or group a rule names: printable ASCII, no comma (a group holding
 * one is refused at decision time, so it could never match). */
const char *pol_cfgcheck_principal(authz_slice s);

#endif
