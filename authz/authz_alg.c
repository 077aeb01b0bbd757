#include "authz_alg.h"

static const char *const alg_names[] = {
    [AUTHZ_ALG_UNSUPPORTED] = "unsupported", [AUTHZ_ALG_RS256] = "RS256", [AUTHZ_ALG_PS256] = "PS256",
    [AUTHZ_ALG_ES256] = "ES256",             [AUTHZ_ALG_ES384] = "ES384", [AUTHZ_ALG_ES512] = "ES512",
};

authz_alg authz_alg_from_name(authz_slice name)
{
    for (unsigned i = AUTHZ_ALG_RS256; i <= AUTHZ_ALG_ES512; i++) {
        if (authz_slice_eq_cstr(name, alg_names[i]))
            return (authz_alg)i;
    }
    return AUTHZ_ALG_UNSUPPORTED;
}

const char *authz_alg_name(authz_alg alg)
{
    if ((unsigned)alg > AUTHZ_ALG_ES512)
        return alg_names[AUTHZ_ALG_UNSUPPORTED];
    return alg_names[alg];
}
