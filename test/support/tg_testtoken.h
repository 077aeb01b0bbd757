/* tg_testtoken: Kubernetes service-account tokens built from jansson claims,
 * for tests that vary one claim at a time.
 *
 * Ownership as in tg_testkeys: char * results are freed with free(), json_t *
 * results with json_decref; NULL means failure. */
#ifndef TG_TESTTOKEN_H
#define TG_TESTTOKEN_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>

/* The claims of a valid projected token of |iss| for the one audience |aud|
 * and the subject system:serviceaccount:<ns>:<sa>: exp |now| + 3600, nbf and
 * iat |now|, and a kubernetes.io claim with namespace, service account, pod
 * and node (names and uids). */
json_t *tg_k8s_claims(const char *iss, const char *aud, const char *ns, const char *sa, int64_t now);

/* Compact JWS of |claims| (borrowed) signed by |key| under |alg|, with the
 * protected header {"alg":alg,"kid":kid,"typ":"JWT"} (no kid when |kid| is
 * NULL). */
char *tg_jws_claims(EVP_PKEY *key, const char *alg, const char *kid, const json_t *claims);

#endif
