#include "authz_bearer.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>

/* Longest scheme name quoted in a message; longer ones are cut. */
#define BEARER_SCHEME_SHOWN 16

/* One class table for every byte test of the scan (bits may combine):
 * W  optional whitespace (SP, HTAB)
 * T  b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 §2.1), '=' aside
 * S  auth-scheme-like name character (ALPHA / DIGIT / "-") */
#define W 1u
#define T 2u
#define S 4u
#define TS (T | S)
static const unsigned char byte_class[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  W,  0,  0,  0,  0,  0,  0,  /* 0x00: HTAB */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    W,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  T,  0,  TS, T,  T,  /* 0x20: SP + - . / */
    TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, 0,  0,  0,  0,  0,  0,  /* 0x30: 0-9 */
    0,  TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, /* 0x40: A-O */
    TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, 0,  0,  0,  0,  T,  /* 0x50: P-Z _ */
    0,  TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, /* 0x60: a-o */
    TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, TS, 0,  0,  0,  T,  0,  /* 0x70: p-z ~ */
};
#undef TS

static unsigned cls(char c)
{
    return byte_class[(unsigned char)c];
}

static bool is_ows(char c)
{
    return (cls(c) & W) != 0;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Looks like an auth-scheme name, so it may be quoted in a message without
 * risking echoing a credential. */
static bool is_scheme_like(authz_slice s)
{
    if (s.len == 0 || s.len > BEARER_SCHEME_SHOWN)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!(cls(s.ptr[i]) & S))
            return false;
    }
    return true;
}

int authz_bearer_extract(authz_slice header, authz_slice *token, authz_status *status)
{
    static const char bearer[] = "bearer";
    const size_t bearer_len = sizeof bearer - 1;

    token->ptr = NULL;
    token->len = 0;
    if (!header.ptr || header.len == 0)
        return authz_status_set(status, AUTHZ_REASON_MISSING_TOKEN, "no authorization header");

    size_t begin = 0;
    size_t end = header.len;
    while (begin < end && is_ows(header.ptr[begin]))
        begin++;
    while (end > begin && is_ows(header.ptr[end - 1]))
        end--;
    if (begin == end)
        return authz_status_set(status, AUTHZ_REASON_MISSING_TOKEN, "authorization header is empty");

    size_t scheme_end = begin;
    while (scheme_end < end && !is_ows(header.ptr[scheme_end]))
        scheme_end++;
    authz_slice scheme = {header.ptr + begin, scheme_end - begin};

    bool is_bearer = scheme.len == bearer_len;
    for (size_t i = 0; is_bearer && i < bearer_len; i++)
        is_bearer = ascii_lower(scheme.ptr[i]) == bearer[i];
    if (!is_bearer) {
        /* A header without any space may be a bare token: never quote it. */
        if (scheme_end < end && is_scheme_like(scheme))
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                    "authorization scheme \"%.*s\" is not Bearer", (int)scheme.len,
                                    scheme.ptr);
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                "authorization header has no Bearer scheme");
    }
    if (scheme_end == end)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "Bearer scheme without a credential");
    /* RFC 7235 §2.1: the scheme and its credential are separated by 1*SP. */
    if (header.ptr[scheme_end] != ' ')
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                "Bearer scheme must be followed by a space");

    size_t cred = scheme_end;
    while (cred < end && header.ptr[cred] == ' ')
        cred++;

    /* The hot loop: table loads tested four bytes a step, then one at a time. */
    const unsigned char *p = (const unsigned char *)header.ptr;
    size_t i = cred;
    while (end - i >= 4 &&
           (byte_class[p[i]] & byte_class[p[i + 1]] & byte_class[p[i + 2]] & byte_class[p[i + 3]] & T))
        i += 4;
    while (i < end && (byte_class[p[i]] & T))
        i++;
    size_t body_end = i;
    while (i < end && header.ptr[i] == '=')
        i++;
    if (i != end) {
        char c = header.ptr[i];
        if (is_ows(c) || c == ',')
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                    "authorization header carries more than one credential");
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                "bearer credential has a character outside the b64token set");
    }
    if (body_end == cred)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "bearer credential is empty");

    token->ptr = header.ptr + cred;
    token->len = end - cred;
    return authz_status_ok(status);
}

int authz_bearer_digest(authz_slice credential, uint8_t out[AUTHZ_BEARER_DIGEST_LEN])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (!credential.ptr || credential.len == 0 ||
        EVP_Digest(credential.ptr, credential.len, digest, &digest_len, EVP_sha256(), NULL) != 1 ||
        digest_len < AUTHZ_BEARER_DIGEST_LEN)
        return -1;
    memcpy(out, digest, AUTHZ_BEARER_DIGEST_LEN);
    return 0;
}
