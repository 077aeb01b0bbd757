#include "pol_cfgcheck.h"

#include <stdbool.h>
#include <string.h>

#include "authz_cidr.h"
#include "authz_spiffe.h"
#include "pol_cfg.h"
#include "pol_snapshot.h"

/* A username or groups prefix, and the prefix part of a user or group. */
#define PREFIX_MAX_BYTES 256u

const char *pol_cfgcheck_name(authz_slice s)
{
    if (s.len > POL_CFG_NAME_MAX_BYTES)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok)
            return "may only contain letters, digits, '.', '_' and '-'";
    }
    return NULL;
}

static bool is_dns_name(authz_slice s)
{
    if (s.len == 0 || s.len > POL_CFG_NAME_MAX_BYTES)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_';
        if (!ok || ++label > 63)
            return false;
    }
    return label > 0;
}

/* A bracketed IPv6 literal "[...]" . */
static bool is_bracketed_ipv6(authz_slice s)
{
    if (s.len < 3 || s.ptr[0] != '[' || s.ptr[s.len - 1] != ']')
        return false;
    authz_ip ip;
    authz_slice inner = {s.ptr + 1, s.len - 2};
    return memchr(inner.ptr, ':', inner.len) != NULL && authz_ip_parse(inner, &ip) == 0;
}

const char *pol_cfgcheck_host(authz_slice s)
{
    if (s.ptr[0] == '[') {
        const char *close = memchr(s.ptr, ']', s.len);
        if (close && close != s.ptr + s.len - 1)
            return "must not carry a port";
        return is_bracketed_ipv6(s) ? NULL : "is not a valid [IPv6] literal";
    }
    if (memchr(s.ptr, ':', s.len))
        return "must not carry a port (write IPv6 hosts as [addr])";
    /* One leading "*." label: a wildcard over the rest (pol_target). */
    if (s.len >= 2 && s.ptr[0] == '*' && s.ptr[1] == '.') {
        authz_slice rest = {s.ptr + 2, s.len - 2};
        return is_dns_name(rest) ? NULL : "is not a valid wildcard host (\"*.\" then a host name)";
    }
    if (memchr(s.ptr, '*', s.len))
        return "is not a valid host name (a wildcard is one leading \"*.\" label)";
    return is_dns_name(s) ? NULL : "is not a valid host name";
}

/* RFC 9110 5.6.2 tchar, lower-case letters only (names are stored lower-case
 * and compared ignoring case). */
static bool is_header_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

const char *pol_cfgcheck_header_name(authz_slice s)
{
    if (s.len > POL_CFG_NAME_MAX_BYTES)
        return "is too long";
    if (s.ptr[0] == ':')
        return "is a pseudo-header: use path_prefix, methods or the cluster's hosts";
    for (size_t i = 0; i < s.len; i++) {
        if (!is_header_tchar(s.ptr[i]))
            return "is not an HTTP header name";
    }
    return NULL;
}

const char *pol_cfgcheck_claim_header_name(authz_slice s)
{
    const char *problem = pol_cfgcheck_header_name(s);
    if (problem)
        return problem;
    char lowered[POL_CFG_NAME_MAX_BYTES];
    for (size_t i = 0; i < s.len; i++)
        lowered[i] = (s.ptr[i] >= 'A' && s.ptr[i] <= 'Z') ? (char)(s.ptr[i] - 'A' + 'a') : s.ptr[i];
    authz_slice low = {lowered, s.len};
    if (authz_slice_eq_cstr(low, "authorization") || authz_slice_eq_cstr(low, "host") ||
        authz_slice_has_prefix(low, AUTHZ_SLICE_LIT("x-tokengate-")))
        return "is a header tokengate sets or removes itself";
    return NULL;
}

const char *pol_cfgcheck_header_value(authz_slice s)
{
    if (s.len > 1024)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x20 || c == 0x7f)
            return "contains a control character";
        if (c == ',')
            return "contains a comma (a list value is refused as ambiguous)";
    }
    if (s.ptr[0] == ' ' || s.ptr[s.len - 1] == ' ')
        return "has surrounding spaces";
    return NULL;
}

const char *pol_cfgcheck_claim_path(authz_slice s)
{
    if (s.len > 256)
        return "is too long";
    if (s.ptr[0] == '.' || s.ptr[s.len - 1] == '.')
        return "must not start or end with '.'";
    for (size_t i = 1; i < s.len; i++) {
        if (s.ptr[i] == '.' && s.ptr[i - 1] == '.')
            return "has an empty segment ('..')";
    }
    return NULL;
}

const char *pol_cfgcheck_listen(authz_slice s)
{
    authz_slice host;
    const char *colon;
    if (s.ptr[0] == '[') {
        const char *close = memchr(s.ptr, ']', s.len);
        if (!close)
            return "has an unclosed '['";
        host = (authz_slice){s.ptr, (size_t)(close - s.ptr) + 1};
        if (!is_bracketed_ipv6(host))
            return "is not a valid [IPv6] literal";
        colon = close + 1;
        if (colon >= s.ptr + s.len || *colon != ':')
            return "must be host:port";
    } else {
        colon = memchr(s.ptr, ':', s.len);
        if (!colon)
            return "must be host:port";
        host = (authz_slice){s.ptr, (size_t)(colon - s.ptr)};
        if (memchr(colon + 1, ':', (size_t)(s.ptr + s.len - colon - 1)))
            return "must be host:port (write IPv6 addresses as [addr]:port)";
        authz_ip ip;
        if (!is_dns_name(host) && authz_ip_parse(host, &ip) != 0)
            return "has an invalid host";
    }
    const char *port = colon + 1;
    size_t port_len = (size_t)(s.ptr + s.len - port);
    if (port_len == 0 || port_len > 5)
        return "port must be 1..65535";
    unsigned long value = 0;
    for (size_t i = 0; i < port_len; i++) {
        if (port[i] < '0' || port[i] > '9')
            return "port must be 1..65535";
        value = value * 10u + (unsigned long)(port[i] - '0');
    }
    if (value < 1 || value > 65535)
        return "port must be 1..65535";
    return NULL;
}

const char *pol_cfgcheck_path_prefix(authz_slice s)
{
    return s.ptr[0] == '/' ? NULL : "must start with '/'";
}

const char *pol_cfgcheck_method(authz_slice s)
{
    if (s.len > 32)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return "must be an upper-case HTTP method";
    }
    return NULL;
}

const char *pol_cfgcheck_service_account(authz_slice s)
{
    const char *colon = memchr(s.ptr, ':', s.len);
    if (!colon || colon == s.ptr || colon == s.ptr + s.len - 1 ||
        memchr(colon + 1, ':', (size_t)(s.ptr + s.len - colon - 1)))
        return "must be \"namespace:name\"";
    return NULL;
}

const char *pol_cfgcheck_client_san(authz_slice s)
{
    const char *sep = s.len >= 3 ? strstr(s.ptr, "://") : NULL;
    if (!sep)
        return is_dns_name(s) ? NULL : "is neither a URI (scheme://...) nor a DNS name";
    size_t scheme_len = (size_t)(sep - s.ptr);
    if (scheme_len == 0 || !((s.ptr[0] >= 'a' && s.ptr[0] <= 'z') || (s.ptr[0] >= 'A' && s.ptr[0] <= 'Z')))
        return "URI must start with a scheme (scheme://...)";
    if (scheme_len + 3 == s.len)
        return "URI has nothing after the scheme";
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] <= 0x20 || s.ptr[i] >= 0x7f)
            return "URI must not contain spaces, control or non-ASCII bytes";
    }
    return NULL;
}

const char *pol_cfgcheck_https_url(authz_slice s)
{
    static const char scheme[] = "https://";
    if (s.len > 2048)
        return "longer than 2048 bytes";
    if (s.len <= sizeof scheme - 1 || memcmp(s.ptr, scheme, sizeof scheme - 1) != 0)
        return "must be an https:// URL";
    if (s.ptr[sizeof scheme - 1] == '/')
        return "names no host";
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] <= ' ' || s.ptr[i] > '~')
            return "must be printable ASCII without spaces";
    }
    return NULL;
}

const char *pol_cfgcheck_trust_domain(authz_slice s)
{
    return authz_spiffe_trust_domain_valid(s)
               ? NULL
               : "must be a SPIFFE trust domain: [a-z0-9._-], at most 255 bytes";
}

const char *pol_cfgcheck_prefix(authz_slice s)
{
    if (s.len > PREFIX_MAX_BYTES)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < 0x20 || s.ptr[i] > 0x7e || s.ptr[i] == ',')
            return "may only contain printable ASCII without ','";
    }
    if (authz_slice_has_prefix(s, AUTHZ_SLICE_LIT("system:")))
        return "must not start with \"system:\" (reserved for Kubernetes identities)";
    return NULL;
}

const char *pol_cfgcheck_principal(authz_slice s)
{
    if (s.len > PREFIX_MAX_BYTES + POL_MAX_GROUP_BYTES)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < 0x20 || s.ptr[i] > 0x7e || s.ptr[i] == ',')
            return "may only contain printable ASCII without ','";
    }
    return NULL;
}
