#include "tg_testtoken.h"

#include <stdio.h>
#include <stdlib.h>

#include "tg_testkeys.h"

json_t *tg_k8s_claims(const char *iss, const char *aud, const char *ns, const char *sa, int64_t now)
{
    char sub[256];
    int n = snprintf(sub, sizeof sub, "system:serviceaccount:%s:%s", ns, sa);
    if (n < 0 || (size_t)n >= sizeof sub)
        return NULL;
    return json_pack("{s:s, s:s, s:[s], s:I, s:I, s:I, s:{s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}}",
                     "iss", iss, "sub", sub, "aud", aud, "exp", (json_int_t)(now + 3600), "nbf",
                     (json_int_t)now, "iat", (json_int_t)now, "kubernetes.io", "namespace", ns,
                     "serviceaccount", "name", sa, "uid", "sa-uid", "pod", "name", "pod-1", "uid", "pod-uid",
                     "node", "name", "node-1", "uid", "node-uid");
}

char *tg_jws_claims(EVP_PKEY *key, const char *alg, const char *kid, const json_t *claims)
{
    char *jws = NULL;
    json_t *header = kid ? json_pack("{s:s, s:s, s:s}", "alg", alg, "kid", kid, "typ", "JWT")
                         : json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
    char *h = header ? json_dumps(header, JSON_COMPACT) : NULL;
    char *p = json_dumps(claims, JSON_COMPACT);
    if (h && p)
        jws = tg_jws(key, alg, h, p);
    free(h);
    free(p);
    json_decref(header);
    return jws;
}
