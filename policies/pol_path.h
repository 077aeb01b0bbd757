/* pol_path: the request path rules are matched against.
 *
 * Envoy forwards the path as the client sent it unless told otherwise, and
 * upstream servers decode, merge and resolve it before they route. A rule
 * compared with the raw bytes would guard a different path than the one
 * served (`//admin`, `/api/../admin`, `/%61dmin`), so rules see the path
 * normalized the way RFC 3986 says, and a path that cannot be normalized to
 * one unambiguous meaning is refused instead of guessed at.
 *
 * Pure: no I/O, no allocation; the caller provides the output buffer. */
#ifndef POL_PATH_H
#define POL_PATH_H

#include <stddef.h>

#include "authz_slice.h"

/* What to do with an encoded slash or backslash (%2F, %5C, either case). */
typedef enum pol_path_slashes {
    POL_PATH_SLASHES_REJECT = 0, /* malformed: upstreams disagree on whether it separates segments */
    POL_PATH_SLASHES_KEEP,       /* kept encoded (upper-case hex) and matched literally */
} pol_path_slashes;

/* Why a path was refused. POL_PATH_OK is 0. */
typedef enum pol_path_error {
    POL_PATH_OK = 0,
    POL_PATH_NOT_ABSOLUTE,  /* does not start with '/' */
    POL_PATH_CONTROL,       /* a control byte (0x00-0x1f, 0x7f), raw or percent-encoded */
    POL_PATH_BACKSLASH,     /* a raw '\' */
    POL_PATH_INVALID_BYTE,  /* a byte RFC 3986 does not allow in a path (space, '"', '<', non-ASCII, ...) */
    POL_PATH_BAD_ESCAPE,    /* '%' not followed by two hex digits */
    POL_PATH_ENCODED_SLASH, /* %2F or %5C while escaped slashes are rejected */
    POL_PATH_BAD_UTF8, /* percent-encoded bytes >= 0x80 that are not UTF-8 (overlong forms, surrogates) */
    POL_PATH_DOT_PARAMETER, /* a segment that is empty, "." or ".." before a ';' ("/..;/admin") */
    POL_PATH_NO_ROOM,       /* |out_size| is smaller than the path: a caller's error, not the client's */
} pol_path_error;

/* A short English description of |error| ("invalid percent-encoding", ...).
 * Static storage. */
const char *pol_path_error_text(pol_path_error error);

/* Normalizes the request target |raw| into |out| (|out_size| bytes, at
 * least raw.len; the result is never longer than the input):
 *  - the query ('?') and fragment ('#') are split off and not part of the
 *    result; they are only checked for control bytes;
 *  - percent-encoded unreserved characters (A-Z a-z 0-9 - . _ ~) are
 *    decoded, any other escape is kept with upper-case hex (RFC 3986
 *    6.2.2.1, 6.2.2.2);
 *  - runs of '/' are merged into one;
 *  - "." and ".." segments are removed (RFC 3986 5.2.4, clamped at the
 *    root), also when they appear only after decoding ("%2e%2E").
 * Refused (the return value says why, *error_offset the byte of |raw| where
 * it was found): a path not starting with '/', control bytes anywhere,
 * a raw backslash, bytes outside RFC 3986's pchar, invalid escapes,
 * encoded bytes >= 0x80 that are not well-formed UTF-8, a segment whose
 * name before a ';' is empty, "." or ".." (servlet containers strip such
 * parameters and would resolve it), and %2F / %5C unless |slashes| is
 * POL_PATH_SLASHES_KEEP; POL_PATH_NO_ROOM when |out_size| is too small.
 * Normalizing a result again returns it unchanged.
 * On success *out_len is the result's length; |out| is not terminated.
 * |error_offset| may be NULL. */
pol_path_error pol_path_normalize(authz_slice raw, pol_path_slashes slashes, char *out, size_t out_size,
                                  size_t *out_len, size_t *error_offset);

#endif
