/* authz_b64: strict base64url (RFC 4648 §5) without padding, as JWS uses. */
#ifndef AUTHZ_B64_H
#define AUTHZ_B64_H

#include <stddef.h>

#include "authz_slice.h"

/* Bytes needed to decode |len| characters (an upper bound). */
size_t authz_b64url_decoded_max(size_t len);

/* Decodes |in| into |out| (|out_size| >= authz_b64url_decoded_max(in.len)).
 * Refuses padding, '+', '/', whitespace, a length of 1 mod 4 and
 * non-canonical trailing bits. Returns the decoded length, or -1. */
long authz_b64url_decode(authz_slice in, unsigned char *out, size_t out_size);

/* Encodes |len| bytes of |in| into |out| (|out_size| >= 4 * ceil(len / 3) + 1),
 * NUL-terminated, unpadded. Returns the encoded length. */
size_t authz_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_size);

#endif
