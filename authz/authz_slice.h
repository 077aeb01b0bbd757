/* authz_slice: a borrowed byte range (pointer + length).
 *
 * Slices never own memory; whoever hands one out says how long it stays
 * valid. They are not NUL-terminated. */
#ifndef AUTHZ_SLICE_H
#define AUTHZ_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct authz_slice {
    const char *ptr;
    size_t len;
} authz_slice;

#define AUTHZ_SLICE_LIT(s) ((authz_slice){(s), sizeof(s) - 1})

/* A slice over NUL-terminated |s|; NULL gives the empty slice. */
static inline authz_slice authz_slice_from_cstr(const char *s)
{
    authz_slice out = {s, s ? strlen(s) : 0};
    return out;
}

/* Byte-for-byte equality. */
static inline bool authz_slice_eq(authz_slice a, authz_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Equality with NUL-terminated |s|. */
static inline bool authz_slice_eq_cstr(authz_slice a, const char *s)
{
    return authz_slice_eq(a, authz_slice_from_cstr(s));
}

/* True when |a| begins with |prefix|. */
static inline bool authz_slice_has_prefix(authz_slice a, authz_slice prefix)
{
    return a.len >= prefix.len && (prefix.len == 0 || memcmp(a.ptr, prefix.ptr, prefix.len) == 0);
}

#endif
