#include "authz_spiffe.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "authz_ascii.h"

static bool is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || authz_is_digit(c);
}

/* The SPIFFE ID specification's trust domain characters. */
static bool is_trust_domain_char(unsigned char c)
{
    return is_lower_alnum(c) || c == '.' || c == '-' || c == '_';
}

/* Its path segment characters (upper case allowed). */
static bool is_segment_char(unsigned char c)
{
    return is_trust_domain_char(c) || (c >= 'A' && c <= 'Z');
}

bool authz_spiffe_trust_domain_valid(authz_slice td)
{
    if (td.len == 0 || td.len > AUTHZ_SPIFFE_TRUST_DOMAIN_MAX)
        return false;
    for (size_t i = 0; i < td.len; i++) {
        if (!is_trust_domain_char((unsigned char)td.ptr[i]))
            return false;
    }
    return true;
}

/* Why |seg| cannot be a path segment, or NULL. */
static const char *segment_problem(authz_slice seg)
{
    if (seg.len == 0)
        return "has an empty path segment or a trailing slash";
    if (authz_slice_eq_cstr(seg, ".") || authz_slice_eq_cstr(seg, ".."))
        return "has a dot segment";
    for (size_t i = 0; i < seg.len; i++) {
        unsigned char c = (unsigned char)seg.ptr[i];
        if (c == '%')
            return "has percent-encoding";
        if (!is_segment_char(c))
            return "has a character outside [A-Za-z0-9._-] in its path";
    }
    return NULL;
}

const char *authz_spiffe_parse(authz_slice id, authz_spiffe_id *out)
{
    const authz_slice scheme = AUTHZ_SLICE_LIT("spiffe://");
    authz_slice seg[4];
    size_t count = 0;

    if (id.len == 0 || !id.ptr)
        return "is empty";
    if (id.len > AUTHZ_SPIFFE_ID_MAX)
        return "is longer than 2048 bytes";
    if (!authz_slice_has_prefix(id, scheme))
        return "does not start with spiffe:// (lower case)";
    const char *p = id.ptr + scheme.len;
    const char *end = id.ptr + id.len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    authz_slice td = {p, (size_t)((slash ? slash : end) - p)};
    if (td.len == 0)
        return "has an empty trust domain";
    for (size_t i = 0; i < td.len; i++) {
        if (td.ptr[i] == '%')
            return "has percent-encoding";
    }
    if (!authz_spiffe_trust_domain_valid(td))
        return "has a trust domain outside [a-z0-9._-] (or longer than 255 bytes)";
    if (!slash)
        return "has no path";
    /* Segments after each '/', so a trailing slash is an empty last one. */
    for (p = slash; p < end; count++) {
        const char *start = p + 1;
        const char *next = memchr(start, '/', (size_t)(end - start));
        const char *stop = next ? next : end;
        if (count == 4)
            return "has more than four path segments (not /ns/<namespace>/sa/<service-account>)";
        seg[count] = (authz_slice){start, (size_t)(stop - start)};
        const char *why = segment_problem(seg[count]);
        if (why)
            return why;
        p = next ? next : end;
    }
    if (count != 4 || !authz_slice_eq_cstr(seg[0], "ns") || !authz_slice_eq_cstr(seg[2], "sa"))
        return "has a path other than /ns/<namespace>/sa/<service-account>";
    out->trust_domain = td;
    out->namespace_name = seg[1];
    out->service_account = seg[3];
    return NULL;
}

/* Percent-decodes |in| into |out| (at least in.len bytes). Returns the
 * decoded length, or -1 on a '%' not followed by two hex digits. */
static long percent_decode(authz_slice in, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (c != '%') {
            out[n++] = (char)c;
            continue;
        }
        int hi = i + 2 < in.len ? authz_hex_value((unsigned char)in.ptr[i + 1]) : -1;
        int lo = hi >= 0 ? authz_hex_value((unsigned char)in.ptr[i + 2]) : -1;
        if (lo < 0)
            return -1;
        out[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    return (long)n;
}

/* A certificate needs no password: never let OpenSSL ask on a terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* True when only whitespace is left in |bio|. */
static bool rest_is_blank(BIO *bio)
{
    char *rest = NULL;
    long left = BIO_get_mem_data(bio, &rest);
    for (long i = 0; i < left; i++) {
        if (!strchr(" \t\r\n", rest[i]))
            return false;
    }
    return true;
}

#define OUT_OF_MEMORY "could not be read: out of memory"

/* The one URI SAN of |cert| into |arena|: NULL, or why not. */
static const char *single_uri_san(X509 *cert, authz_arena *arena, authz_slice *uri)
{
    int crit = 0;
    const char *why = NULL;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    const ASN1_IA5STRING *found = NULL;
    size_t uris = 0;

    if (!names)
        return crit == -2 ? "has more than one subjectAltName extension" : "has no subjectAltName";
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_URI) {
            found = gn->d.uniformResourceIdentifier;
            uris++;
        }
    }
    if (uris != 1) {
        why = uris == 0 ? "has no URI SAN" : "has more than one URI SAN";
        goto cleanup;
    }
    size_t len = (size_t)ASN1_STRING_length(found);
    if (len == 0 || len > AUTHZ_SPIFFE_ID_MAX) {
        why = "has a URI SAN that is empty or longer than 2048 bytes";
        goto cleanup;
    }
    char *copy = authz_arena_strndup(arena, (const char *)ASN1_STRING_get0_data(found), len);
    if (!copy) {
        why = OUT_OF_MEMORY;
        goto cleanup;
    }
    *uri = (authz_slice){copy, len};
cleanup:
    GENERAL_NAMES_free(names);
    return why;
}

int authz_spiffe_uri_san(authz_slice url_pem, authz_arena *arena, authz_slice *uri, const char **why)
{
    BIO *bio = NULL;
    X509 *cert = NULL;
    char *pem = NULL;
    long pem_len = 0;

    *why = NULL;
    if (url_pem.len == 0 || !url_pem.ptr)
        *why = "is empty";
    else if (url_pem.len > AUTHZ_SPIFFE_CERT_MAX)
        *why = "is longer than 65536 bytes";
    else if ((pem = authz_arena_alloc(arena, url_pem.len)) == NULL)
        *why = OUT_OF_MEMORY;
    else if ((pem_len = percent_decode(url_pem, pem)) < 0)
        *why = "has invalid percent-encoding";
    else if ((bio = BIO_new_mem_buf(pem, (int)pem_len)) == NULL)
        *why = OUT_OF_MEMORY;
    else if ((cert = PEM_read_bio_X509(bio, NULL, no_password, NULL)) == NULL || !rest_is_blank(bio))
        *why = "is not one PEM certificate";
    else
        *why = single_uri_san(cert, arena, uri);
    X509_free(cert);
    BIO_free(bio);
    /* OpenSSL's error queue is per thread: leave nothing for the next call. */
    ERR_clear_error();
    if (!*why)
        return 0;
    return strcmp(*why, OUT_OF_MEMORY) == 0 ? -2 : -1;
}
