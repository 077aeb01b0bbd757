/* authz_bearer: the credential in an Authorization header (RFC 6750 §2.1). */
#ifndef AUTHZ_BEARER_H
#define AUTHZ_BEARER_H

#include <stdint.h>

#include "authz_reason.h"
#include "authz_slice.h"

/* Extracts the token from |header| ("Bearer <token>", scheme
 * case-insensitive, one or more spaces after it, surrounding whitespace
 * tolerated; a tab right after the scheme is not, RFC 7235 wants 1*SP). The
 * credential is a b64token (RFC 6750 §2.1). Exactly one credential: several joined by a proxy ("Bearer a,
 * Bearer b"), whitespace or a comma inside the token, another scheme or an
 * empty token are malformed. An absent header (|header|.ptr NULL or empty)
 * is missing_token. On success |*token| borrows from |header|. Returns 0 or
 * -1 with |status| set to missing_token or malformed_token. */
int authz_bearer_extract(authz_slice header, authz_slice *token, authz_status *status);

/* Bytes of a credential's digest that logs show. */
#define AUTHZ_BEARER_DIGEST_LEN 4u

/* Writes the first AUTHZ_BEARER_DIGEST_LEN bytes of SHA-256(|credential|)
 * into |out|: enough to tell tokens apart in logs, useless to replay one.
 * Returns 0, or -1 for an empty credential or a hashing failure. */
int authz_bearer_digest(authz_slice credential, uint8_t out[AUTHZ_BEARER_DIGEST_LEN]);

#endif
