/* tg-mint: keys and Kubernetes-style service-account tokens for tests and
 * the demo. Never for production: it trusts its arguments completely. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tg_testkeys.h"

#define MINT_MAX_FILE (1024L * 1024L)
#define MINT_MAX_AUD 16
#define MINT_MAX_DROP 16
/* Bound on any time argument (about 31,700 years): beyond it is a typo, and it keeps now + offset in range.
 */
#define MINT_MAX_SECONDS 1000000000000LL

static const char mint_usage[] =
    "usage:\n"
    "  tg-mint keygen --type rsa2048|rsa3072|rsa4096|p256|p384|p521 --private OUT.pem\n"
    "                 [--public OUT.pub.pem] [--jwks OUT.jwks.json] [--kid KID]\n"
    "  tg-mint sign --key PRIV.pem [--alg ALG] [--kid KID | --no-kid] [--header JSON]\n"
    "               [--iss ISS] [--aud AUD]... [--namespace NS --service-account SA [--pod POD]]\n"
    "               [--sa-uid UID] [--pod-uid UID] [--exp-in S] [--nbf-in S] [--iat-in S] [--now EPOCH]\n"
    "               [--claims JSON] [--drop CLAIM]... [--payload RAW_JSON]\n"
    "               [--hmac-key FILE (with --alg HS256|HS384|HS512, --key optional)]\n"
    "  tg-mint fingerprint --key PEM\n"
    "Defaults: alg from the key, kid = kube-apiserver fingerprint, exp-in 3600, nbf-in 0, iat-in 0.\n"
    "--alg none gives an unsigned token (empty signature). --payload signs RAW_JSON verbatim.\n"
    "keygen --kid only names the key in the JWKS: pass the same --kid to sign.\n";

static int mint_usage_error(const char *why)
{
    if (why)
        fprintf(stderr, "tg-mint: %s\n", why);
    fputs(mint_usage, stderr);
    return 2;
}

/* Reads a whole file (at most MINT_MAX_FILE bytes), NUL-terminated. */
static char *mint_read_file(const char *path, size_t *len)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        goto fail;
    buf = malloc((size_t)MINT_MAX_FILE + 1);
    if (!buf)
        goto fail;
    size_t n = fread(buf, 1, (size_t)MINT_MAX_FILE + 1, f);
    if (ferror(f) || n > (size_t)MINT_MAX_FILE)
        goto fail;
    buf[n] = '\0';
    *len = n;
    fclose(f);
    return buf;
fail:
    fprintf(stderr, "tg-mint: cannot read %s\n", path);
    free(buf);
    if (f)
        fclose(f);
    return NULL;
}

static int mint_write_file(const char *path, const char *text, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) {
        fprintf(stderr, "tg-mint: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n <= 0) {
            fprintf(stderr, "tg-mint: cannot write %s\n", path);
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd) == 0 ? 0 : -1;
}

/* A private or public key from a PEM file. */
static EVP_PKEY *mint_load_key(const char *path, bool need_private)
{
    size_t len = 0;
    char *pem = mint_read_file(path, &len);
    EVP_PKEY *key = pem ? tg_load_private_pem(pem, len) : NULL;
    if (pem && !key && !need_private) {
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    }
    if (pem && !key)
        fprintf(stderr, "tg-mint: no %skey in %s\n", need_private ? "private " : "", path);
    free(pem);
    ERR_clear_error();
    return key;
}

static int mint_parse_seconds(const char *text, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || v > MINT_MAX_SECONDS || v < -MINT_MAX_SECONDS)
        return -1;
    *out = v;
    return 0;
}

static json_t *mint_parse_object(const char *text, const char *what)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(v)) {
        fprintf(stderr, "tg-mint: %s must be a JSON object (%s)\n", what, v ? "not an object" : jerr.text);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* A random RFC 4122 version-4 UUID into |out| (37 bytes). */
static int mint_uuid(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

static int mint_keygen(int argc, char **argv)
{
    const char *type = NULL, *priv_path = NULL, *pub_path = NULL, *jwks_path = NULL, *kid = NULL;
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc)
            return mint_usage_error("option without value");
        const char *val = argv[++i];
        if (strcmp(opt, "--type") == 0)
            type = val;
        else if (strcmp(opt, "--private") == 0)
            priv_path = val;
        else if (strcmp(opt, "--public") == 0)
            pub_path = val;
        else if (strcmp(opt, "--jwks") == 0)
            jwks_path = val;
        else if (strcmp(opt, "--kid") == 0)
            kid = val;
        else
            return mint_usage_error("unknown keygen option");
    }
    if (!type || !priv_path)
        return mint_usage_error("keygen needs --type and --private");
    int ret = 1;
    char *priv = NULL, *pub = NULL, *jwks = NULL;
    EVP_PKEY *key = tg_keygen(type);
    if (!key) {
        ret = mint_usage_error("unknown key type");
        goto cleanup;
    }
    priv = tg_private_pem(key);
    pub = tg_public_pem(key);
    tg_jwk_opts opts = {.kid = kid, .kid_fingerprint = true, .alg = tg_key_default_alg(key), .use = "sig"};
    jwks = tg_jwks(&key, &opts, 1);
    if (!priv || !pub || !jwks) {
        fprintf(stderr, "tg-mint: key export failed\n");
        goto cleanup;
    }
    if (mint_write_file(priv_path, priv, 0600) != 0 ||
        (pub_path && mint_write_file(pub_path, pub, 0644) != 0))
        goto cleanup;
    if (jwks_path) {
        size_t len = strlen(jwks);
        char *line = malloc(len + 2);
        if (!line)
            goto cleanup;
        memcpy(line, jwks, len);
        line[len] = '\n';
        line[len + 1] = '\0';
        int wr = mint_write_file(jwks_path, line, 0644);
        free(line);
        if (wr != 0)
            goto cleanup;
    }
    ret = 0;
cleanup:
    free(priv);
    free(pub);
    free(jwks);
    EVP_PKEY_free(key);
    return ret;
}

typedef struct mint_sign_args {
    const char *key_path, *alg, *kid, *header, *iss, *ns, *sa, *pod, *sa_uid, *pod_uid, *claims, *payload;
    const char *hmac_path;
    const char *aud[MINT_MAX_AUD];
    size_t aud_count;
    const char *drop[MINT_MAX_DROP];
    size_t drop_count;
    bool no_kid;
    long long exp_in, nbf_in, iat_in, now;
} mint_sign_args;

/* Parses sign's options into |a|; returns 0 or the usage exit code. */
static int mint_sign_parse(int argc, char **argv, mint_sign_args *a)
{
    memset(a, 0, sizeof *a);
    a->exp_in = 3600;
    a->now = (long long)time(NULL);
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--no-kid") == 0) {
            a->no_kid = true;
            continue;
        }
        if (i + 1 >= argc)
            return mint_usage_error("option without value");
        const char *val = argv[++i];
        const char **slot = NULL;
        long long *num = NULL;
        if (strcmp(opt, "--key") == 0)
            slot = &a->key_path;
        else if (strcmp(opt, "--alg") == 0)
            slot = &a->alg;
        else if (strcmp(opt, "--kid") == 0)
            slot = &a->kid;
        else if (strcmp(opt, "--header") == 0)
            slot = &a->header;
        else if (strcmp(opt, "--iss") == 0)
            slot = &a->iss;
        else if (strcmp(opt, "--namespace") == 0)
            slot = &a->ns;
        else if (strcmp(opt, "--service-account") == 0)
            slot = &a->sa;
        else if (strcmp(opt, "--pod") == 0)
            slot = &a->pod;
        else if (strcmp(opt, "--sa-uid") == 0)
            slot = &a->sa_uid;
        else if (strcmp(opt, "--pod-uid") == 0)
            slot = &a->pod_uid;
        else if (strcmp(opt, "--claims") == 0)
            slot = &a->claims;
        else if (strcmp(opt, "--payload") == 0)
            slot = &a->payload;
        else if (strcmp(opt, "--hmac-key") == 0)
            slot = &a->hmac_path;
        else if (strcmp(opt, "--exp-in") == 0)
            num = &a->exp_in;
        else if (strcmp(opt, "--nbf-in") == 0)
            num = &a->nbf_in;
        else if (strcmp(opt, "--iat-in") == 0)
            num = &a->iat_in;
        else if (strcmp(opt, "--now") == 0)
            num = &a->now;
        else if (strcmp(opt, "--aud") == 0) {
            if (a->aud_count == MINT_MAX_AUD)
                return mint_usage_error("too many --aud");
            a->aud[a->aud_count++] = val;
            continue;
        } else if (strcmp(opt, "--drop") == 0) {
            if (a->drop_count == MINT_MAX_DROP)
                return mint_usage_error("too many --drop");
            a->drop[a->drop_count++] = val;
            continue;
        } else {
            return mint_usage_error("unknown sign option");
        }
        if (slot)
            *slot = val;
        else if (mint_parse_seconds(val, num) != 0)
            return mint_usage_error("bad number of seconds");
    }
    if (a->no_kid && a->kid)
        return mint_usage_error("--kid and --no-kid exclude each other");
    if ((a->ns != NULL) != (a->sa != NULL))
        return mint_usage_error("--namespace and --service-account go together");
    if (a->pod && !a->ns)
        return mint_usage_error("--pod needs --namespace and --service-account");
    bool hmac = a->alg && a->alg[0] == 'H' && a->alg[1] == 'S';
    if (hmac && !a->hmac_path)
        return mint_usage_error("HS* needs --hmac-key");
    if (!hmac && a->hmac_path)
        return mint_usage_error("--hmac-key needs --alg HS256|HS384|HS512");
    bool unsigned_token = a->alg && strcmp(a->alg, "none") == 0;
    if (!a->key_path && !hmac && !unsigned_token)
        return mint_usage_error("sign needs --key");
    return 0;
}

/* {"name": ..., "uid": ...} with a random uid unless |uid| is given. */
static json_t *mint_ref(const char *name, const char *uid)
{
    char random_uid[37];
    if (!uid) {
        if (mint_uuid(random_uid) != 0)
            return NULL;
        uid = random_uid;
    }
    return json_pack("{s:s, s:s}", "name", name, "uid", uid);
}

static json_t *mint_claims(const mint_sign_args *a)
{
    json_t *c = json_object();
    char jti[37];
    if (!c || mint_uuid(jti) != 0)
        goto fail;
    if (a->iss && json_object_set_new(c, "iss", json_string(a->iss)) != 0)
        goto fail;
    if (a->ns) {
        size_t len = strlen(a->ns) + strlen(a->sa) + sizeof "system:serviceaccount::";
        char *sub = malloc(len);
        if (!sub)
            goto fail;
        snprintf(sub, len, "system:serviceaccount:%s:%s", a->ns, a->sa);
        int rc = json_object_set_new(c, "sub", json_string(sub));
        free(sub);
        if (rc != 0)
            goto fail;
    }
    if (a->aud_count) {
        json_t *aud = json_array();
        if (json_object_set_new(c, "aud", aud) != 0)
            goto fail;
        for (size_t i = 0; i < a->aud_count; i++) {
            if (json_array_append_new(aud, json_string(a->aud[i])) != 0)
                goto fail;
        }
    }
    if (json_object_set_new(c, "exp", json_integer(a->now + a->exp_in)) != 0 ||
        json_object_set_new(c, "iat", json_integer(a->now + a->iat_in)) != 0 ||
        json_object_set_new(c, "nbf", json_integer(a->now + a->nbf_in)) != 0 ||
        json_object_set_new(c, "jti", json_string(jti)) != 0)
        goto fail;
    if (a->ns) {
        json_t *k8s = json_object();
        if (json_object_set_new(c, "kubernetes.io", k8s) != 0 ||
            json_object_set_new(k8s, "namespace", json_string(a->ns)) != 0 ||
            json_object_set_new(k8s, "serviceaccount", mint_ref(a->sa, a->sa_uid)) != 0 ||
            (a->pod && json_object_set_new(k8s, "pod", mint_ref(a->pod, a->pod_uid)) != 0))
            goto fail;
    }
    if (a->claims) {
        json_t *extra = mint_parse_object(a->claims, "--claims");
        int rc = extra ? json_object_update(c, extra) : -1;
        json_decref(extra);
        if (rc != 0)
            goto fail;
    }
    for (size_t i = 0; i < a->drop_count; i++)
        json_object_del(c, a->drop[i]);
    return c;
fail:
    json_decref(c);
    return NULL;
}

static int mint_sign(int argc, char **argv)
{
    mint_sign_args a;
    int rc = mint_sign_parse(argc, argv, &a);
    if (rc != 0)
        return rc;
    int ret = 1;
    EVP_PKEY *key = NULL;
    json_t *header = NULL, *claims = NULL;
    char *header_text = NULL, *payload_text = NULL, *token = NULL, *fingerprint = NULL, *secret = NULL;
    if (a.key_path && !(key = mint_load_key(a.key_path, true)))
        goto cleanup;
    const char *alg = a.alg ? a.alg : tg_key_default_alg(key);
    if (!alg) {
        fprintf(stderr, "tg-mint: no default alg for this key\n");
        goto cleanup;
    }
    const char *kid = a.kid;
    if (!kid && !a.no_kid && key) {
        fingerprint = tg_fingerprint(key);
        kid = fingerprint;
    }
    header = json_object();
    if (!header || json_object_set_new(header, "alg", json_string(alg)) != 0 ||
        (kid && json_object_set_new(header, "kid", json_string(kid)) != 0))
        goto cleanup;
    if (a.header) {
        json_t *extra = mint_parse_object(a.header, "--header");
        int urc = extra ? json_object_update(header, extra) : -1;
        json_decref(extra);
        if (urc != 0)
            goto cleanup;
    }
    header_text = json_dumps(header, JSON_COMPACT);
    if (a.payload) {
        payload_text = strdup(a.payload);
    } else {
        claims = mint_claims(&a);
        payload_text = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    }
    if (!header_text || !payload_text)
        goto cleanup;
    if (strcmp(alg, "none") == 0) {
        token = tg_jws_with_sig(header_text, payload_text, NULL, 0);
    } else if (a.hmac_path) {
        size_t len = 0;
        secret = mint_read_file(a.hmac_path, &len);
        token = secret ? tg_jws_hmac(alg, secret, len, header_text, payload_text) : NULL;
    } else {
        token = tg_jws(key, alg, header_text, payload_text);
    }
    if (!token) {
        fprintf(stderr, "tg-mint: cannot sign with alg %s and this key\n", alg);
        goto cleanup;
    }
    printf("%s\n", token);
    ret = 0;
cleanup:
    free(token);
    free(secret);
    free(fingerprint);
    free(header_text);
    free(payload_text);
    json_decref(header);
    json_decref(claims);
    EVP_PKEY_free(key);
    return ret;
}

static int mint_fingerprint(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "--key") != 0)
        return mint_usage_error("fingerprint needs --key PEM");
    EVP_PKEY *key = mint_load_key(argv[1], false);
    char *kid = key ? tg_fingerprint(key) : NULL;
    int ret = kid ? 0 : 1;
    if (kid)
        printf("%s\n", kid);
    free(kid);
    EVP_PKEY_free(key);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return mint_usage_error(NULL);
    if (strcmp(argv[1], "keygen") == 0)
        return mint_keygen(argc - 2, argv + 2);
    if (strcmp(argv[1], "sign") == 0)
        return mint_sign(argc - 2, argv + 2);
    if (strcmp(argv[1], "fingerprint") == 0)
        return mint_fingerprint(argc - 2, argv + 2);
    return mint_usage_error("unknown command");
}
