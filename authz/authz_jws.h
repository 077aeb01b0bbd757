/* authz_jws: JWS signature verification with OpenSSL 3 EVP. */
#ifndef AUTHZ_JWS_H
#define AUTHZ_JWS_H

#include <stdbool.h>
#include <stddef.h>

#include "authz_alg.h"
#include "authz_key.h"
#include "authz_slice.h"

/* Verifies |sig| (|sig_len| bytes, as decoded from the token) over
 * |signing_input| with |key| under |alg|. ECDSA signatures must be raw R||S
 * of exactly twice the curve's byte length, with 0 < r, s < n; a DER
 * signature is a bad signature. RSA signatures must be exactly the modulus
 * length. Returns 0 when valid; -1 for any other outcome, including
 * authz_key_allows_alg(key, alg) being false and OpenSSL errors (whose queue
 * is cleared). Thread-safe for a shared |key|. */
int authz_jws_verify(const authz_key *key, authz_alg alg, authz_slice signing_input, const unsigned char *sig,
                     size_t sig_len);

/* Whether |sig| (|sig_len| bytes) has the form a JWS ECDSA signature must
 * have for the EC |key|: raw R||S of exactly twice the curve's byte length
 * with 0 < r < n and 0 < s < n, n the curve order (RFC 7518 3.4; the
 * "psychic signature" class, CVE-2022-21449, is r or s zero or not reduced).
 * authz_jws_verify refuses anything else before OpenSSL sees it. False for
 * a key that is not EC, NULL arguments or another length. Thread-safe. */
bool authz_jws_ecdsa_in_range(const authz_key *key, const unsigned char *sig, size_t sig_len);

#endif
