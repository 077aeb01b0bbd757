/* authz_json: a strict JSON parser (RFC 8259) into a read-only DOM in an arena.
 *
 * Built for untrusted token headers and payloads: every input-controlled
 * quantity (depth, values, members per object, number length) is bounded by
 * the caller before work or memory grows with it, and everything is
 * allocated from one authz_arena, so a request's parse costs no heap traffic
 * and is released with the arena.
 *
 * Strictness: whitespace is SP, HT, LF and CR only; no BOM, comments,
 * trailing commas, single quotes, NaN/Infinity, leading '+' or leading
 * zeros; strings must be valid UTF-8 (no overlong forms, no encoded
 * surrogates, nothing above U+10FFFF) with control characters escaped and
 * \u escapes forming whole code points (a lone surrogate is refused);
 * duplicate keys, compared after unescaping, are refused in every object;
 * nothing but whitespace may follow the top-level value (which may be any
 * value). An integer literal (no fraction, no exponent) outside int64 is
 * refused rather than rounded; other numbers are doubles, and one that
 * overflows a double (1e400) is refused. \u0000 is refused unless the caller
 * allows it, so decoded strings never hide a NUL from C string APIs.
 *
 * The DOM is a flat array of 16-byte nodes in document order: a container
 * is followed by its subtree, an object's children alternate key (a string
 * node) and value. Nodes are read through the functions below. */
#ifndef AUTHZ_JSON_H
#define AUTHZ_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz_arena.h"
#include "authz_slice.h"

typedef enum authz_json_type {
    AUTHZ_JSON_ABSENT = 0, /* what the getters report for a NULL node */
    AUTHZ_JSON_NULL,
    AUTHZ_JSON_FALSE,
    AUTHZ_JSON_TRUE,
    AUTHZ_JSON_INT,  /* integer literal that fits int64 */
    AUTHZ_JSON_REAL, /* any other number, as a finite double */
    AUTHZ_JSON_STRING,
    AUTHZ_JSON_ARRAY,
    AUTHZ_JSON_OBJECT,
} authz_json_type;

/* One DOM node. Read it through the functions below; the layout is shown
 * only so nodes can live in arrays. */
typedef struct authz_json {
    uint8_t type; /* authz_json_type */
    uint32_t n;   /* string: byte length; array: elements; object: members */
    union {
        const char *str; /* string bytes (not NUL-terminated) */
        int64_t i;
        double d;
        uint32_t span; /* container: nodes in its subtree, itself included */
    } u;
} authz_json;

/* Hard ceilings, whatever the caller asks for: depth bounds the parser's
 * recursion, members bound the quadratic duplicate-key check. */
#define AUTHZ_JSON_DEPTH_CEILING 256u
#define AUTHZ_JSON_MEMBERS_CEILING 1024u
/* Longest number literal accepted (bytes). */
#define AUTHZ_JSON_NUMBER_MAX 64u

/* Caller bounds. For max_depth and max_members, 0 and values above the
 * ceiling mean the ceiling; max_nodes 0 means no bound beyond the text's own
 * (one node per ',' ':' '[' '{' plus one). */
typedef struct authz_json_limits {
    size_t max_depth;   /* arrays/objects nested deeper are refused */
    size_t max_nodes;   /* values plus object keys in the whole document */
    size_t max_members; /* members of one object */
    bool allow_nul;     /* accept \u0000 in strings */
} authz_json_limits;

typedef enum authz_json_errcode {
    AUTHZ_JSON_OK = 0,
    AUTHZ_JSON_ESYNTAX, /* not JSON under the rules above (duplicate keys included) */
    AUTHZ_JSON_ELIMIT,  /* JSON, but past a caller bound (depth, nodes, members, number length, size) */
    AUTHZ_JSON_ENOMEM,  /* the arena refused an allocation */
} authz_json_errcode;

typedef struct authz_json_error {
    authz_json_errcode code;
    size_t offset;       /* byte offset in the text where the problem was found */
    const char *message; /* short, static storage, never quotes the input */
} authz_json_error;

/* Parses |text| (|len| bytes, not NUL-terminated, at most UINT32_MAX) under
 * |limits| into a DOM allocated from |arena|. On success returns 0 and
 * *root points at the top-level value; string nodes point into |text| when
 * the string had no escape, into the arena otherwise, so the DOM is valid
 * while both |text| and the arena's allocations live. On failure returns -1
 * with |err| set (code ESYNTAX, ELIMIT or ENOMEM) and *root NULL; whatever
 * was allocated stays in the arena until it is reset. |limits| NULL means
 * all zero (the ceilings, no node bound, \u0000 refused). Numbers are converted
 * with strtod, which must see the C locale's decimal point. */
int authz_json_parse(const char *text, size_t len, const authz_json_limits *limits, authz_arena *arena,
                     const authz_json **root, authz_json_error *err);

/* The node's type; AUTHZ_JSON_ABSENT for NULL. */
authz_json_type authz_json_type_of(const authz_json *v);

/* Elements of an array or members of an object; 0 for anything else. */
size_t authz_json_count(const authz_json *v);

/* Member |key| (compared byte for byte, after unescaping) of object |obj|.
 * NULL when |obj| is NULL, not an object, or has no such member. */
const authz_json *authz_json_get(const authz_json *obj, authz_slice key);

/* Element |i| of array |arr| (linear in |i|); NULL when |arr| is not an
 * array or |i| is out of range. */
const authz_json *authz_json_at(const authz_json *arr, size_t i);

/* Member |i| of object |obj|: returns its value and sets *key; NULL (and
 * *key empty) when |obj| is not an object or |i| is out of range. */
const authz_json *authz_json_member_at(const authz_json *obj, size_t i, authz_slice *key);

/* Typed getters: true and *out set when |v| has that type, false (and *out
 * untouched) otherwise, NULL included. authz_json_number accepts INT and
 * REAL (an INT converted to double may round). */
bool authz_json_string(const authz_json *v, authz_slice *out);
bool authz_json_int(const authz_json *v, int64_t *out);
bool authz_json_real(const authz_json *v, double *out);
bool authz_json_number(const authz_json *v, double *out);
bool authz_json_bool(const authz_json *v, bool *out);

#endif
