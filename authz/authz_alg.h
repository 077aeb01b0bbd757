/* authz_alg: the JWS algorithms tokengate accepts.
 *
 * Those kube-apiserver signs with (RS256, ES256/384/512) plus PS256 for
 * external signers. Everything else, "none" and HS* above all, is refused. */
#ifndef AUTHZ_ALG_H
#define AUTHZ_ALG_H

#include "authz_slice.h"

typedef enum authz_alg {
    AUTHZ_ALG_UNSUPPORTED = 0,
    AUTHZ_ALG_RS256,
    AUTHZ_ALG_PS256,
    AUTHZ_ALG_ES256,
    AUTHZ_ALG_ES384,
    AUTHZ_ALG_ES512,
} authz_alg;

/* The algorithm named exactly |name| (case-sensitive, RFC 7518), or
 * AUTHZ_ALG_UNSUPPORTED. */
authz_alg authz_alg_from_name(authz_slice name);

/* "RS256", ...; "unsupported" for AUTHZ_ALG_UNSUPPORTED. Static storage. */
const char *authz_alg_name(authz_alg alg);

#endif
