/* tg_testkeys: keys and tokens minted at test time, for the unit tests,
 * tg-mint, the integration tests and the demo. Never for production.
 *
 * Ownership: every function returning char * or unsigned char * returns a
 * malloc'd buffer the caller releases with free(); EVP_PKEY * results are
 * released with EVP_PKEY_free and json_t * with json_decref. NULL means
 * failure (unknown name, OpenSSL or allocation error). Key arguments are
 * borrowed. Algorithm names are RFC 7518's ("RS256", "PS256", "ES256"...). */
#ifndef TG_TESTKEYS_H
#define TG_TESTKEYS_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

/* Generates a key pair: "rsa2048", "rsa1024", "rsa3072", "rsa4096", "p256",
 * "p384" or "p521". */
EVP_PKEY *tg_keygen(const char *type);

/* The algorithm kube-apiserver signs with for |key|: "RS256" for RSA,
 * "ES256"/"ES384"/"ES512" by curve; NULL for anything else. Static storage. */
const char *tg_key_default_alg(const EVP_PKEY *key);

/* PKCS#8 "PRIVATE KEY" PEM of |key|. */
char *tg_private_pem(const EVP_PKEY *key);

/* SubjectPublicKeyInfo "PUBLIC KEY" PEM of |key|. */
char *tg_public_pem(const EVP_PKEY *key);

/* PKCS#1 "RSA PUBLIC KEY" PEM of an RSA |key|. */
char *tg_rsa_public_pem_pkcs1(const EVP_PKEY *key);

/* A self-signed "CERTIFICATE" PEM carrying |key| (private key required). */
char *tg_cert_pem(EVP_PKEY *key);

/* The same with a subjectAltName of the |count| URIs |uris| (none when 0). */
char *tg_cert_pem_with_uris(EVP_PKEY *key, const char *const *uris, size_t count);

/* DER SubjectPublicKeyInfo of |key|; its length in |*len|. */
unsigned char *tg_spki_der(const EVP_PKEY *key, size_t *len);

/* Reads the first private key of PEM text |pem| (|len| bytes). */
EVP_PKEY *tg_load_private_pem(const char *pem, size_t len);

/* kube-apiserver's key id: base64url(SHA-256(DER SubjectPublicKeyInfo)). */
char *tg_fingerprint(const EVP_PKEY *key);

/* Unpadded base64url of |len| bytes of |data|. */
char *tg_b64url(const void *data, size_t len);

/* What a JWK carries besides the key material. NULL members are left out. */
typedef struct tg_jwk_opts {
    const char *kid;      /* written as given */
    bool kid_fingerprint; /* when |kid| is NULL: write tg_fingerprint as kid */
    const char *alg;
    const char *use;
} tg_jwk_opts;

/* The public JWK of |key| (RSA n/e or EC crv/x/y) as a jansson object, for
 * tests that tamper with it. |opts| may be NULL (no kid, alg or use). */
json_t *tg_jwk_json(const EVP_PKEY *key, const tg_jwk_opts *opts);

/* {"keys":[...]} of |count| public keys; |opts| is NULL or |count| options,
 * one per key. Compact JSON text. */
char *tg_jwks(EVP_PKEY *const *keys, const tg_jwk_opts *opts, size_t count);

/* Signs |len| bytes of |data| with private |key| under |alg|: RS256 PKCS#1
 * v1.5, PS256 with MGF1-SHA-256 and a 32-byte salt, ESxxx as raw R||S of
 * twice the key's coordinate length (the hash follows |alg| even when it
 * does not fit the curve, for hostile tests). Length in |*sig_len|. */
unsigned char *tg_sign_raw(EVP_PKEY *key, const char *alg, const void *data, size_t len, size_t *sig_len);

/* As tg_sign_raw for an EC |key|, but the ASN.1 DER ECDSA-Sig-Value a JWS
 * must not carry. */
unsigned char *tg_sign_der(EVP_PKEY *key, const char *alg, const void *data, size_t len, size_t *sig_len);

/* "b64url(header).b64url(payload)": the JWS signing input. */
char *tg_signing_input(const char *header_json, const char *payload_json);

/* Compact JWS of the JSON texts |header_json| and |payload_json|, taken
 * byte for byte (the header is not checked against |alg|). */
char *tg_jws(EVP_PKEY *key, const char *alg, const char *header_json, const char *payload_json);

/* Compact JWS whose ECDSA signature is DER-encoded (hostile). */
char *tg_jws_der(EVP_PKEY *key, const char *alg, const char *header_json, const char *payload_json);

/* Compact JWS MACed with HS256/HS384/HS512 under |secret_len| bytes of
 * |secret| (any bytes, empty included): the key-confusion attack. */
char *tg_jws_hmac(const char *alg, const void *secret, size_t secret_len, const char *header_json,
                  const char *payload_json);

/* Compact JWS carrying |sig_len| arbitrary bytes of |sig| as signature
 * (an empty third part when |sig_len| is 0). */
char *tg_jws_with_sig(const char *header_json, const char *payload_json, const void *sig, size_t sig_len);

#endif
