/* fuzz_config: pol_config_load on the input as a config file.
 *
 * The loader takes a path, so the input is written to config.json in a
 * private temp dir made on the first call. Next to it sit k.jwks (a JWKS of
 * one P-256 public key) and k.pem (its PEM), minted at startup, so configs
 * naming them get past key loading into cluster and rule validation.
 *
 * Checks: success gives a snapshot within the documented limits and an empty
 * error; failure gives no snapshot and a non-empty, NUL-terminated error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pol_config.h"
#include "tg_testkeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "config: " __VA_ARGS__);                                                                       \
        fprintf(stderr, "\n");                                                                                         \
        abort();                                                                                                       \
    } while (0)

static char dir_path[64];
static char config_path[96];
static char jwks_path[96];
static char pem_path[96];

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        FAIL("cannot write %s", path);
    }
}

static void remove_dir(void)
{
    unlink(config_path);
    unlink(jwks_path);
    unlink(pem_path);
    rmdir(dir_path);
}

static void setup_once(void)
{
    EVP_PKEY *key;
    char *jwks;
    char *pem;

    if (dir_path[0] != '\0') {
        return;
    }
    snprintf(dir_path, sizeof(dir_path), "/tmp/tg-fuzz-config-XXXXXX");
    if (mkdtemp(dir_path) == NULL) {
        FAIL("mkdtemp");
    }
    snprintf(config_path, sizeof(config_path), "%s/config.json", dir_path);
    snprintf(jwks_path, sizeof(jwks_path), "%s/k.jwks", dir_path);
    snprintf(pem_path, sizeof(pem_path), "%s/k.pem", dir_path);
    key = tg_keygen("p256");
    if (key == NULL) {
        FAIL("keygen");
    }
    jwks = tg_jwks(&key, &(tg_jwk_opts){.kid = "k1", .alg = "ES256", .use = "sig"}, 1);
    pem = tg_public_pem(key);
    if (jwks == NULL || pem == NULL) {
        FAIL("jwks");
    }
    write_file(jwks_path, jwks, strlen(jwks));
    write_file(pem_path, pem, strlen(pem));
    free(jwks);
    free(pem);
    EVP_PKEY_free(key);
    atexit(remove_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pol_snapshot *snap = NULL;
    char err[4096];

    /* Bigger than the loader's own cap only tests the cap; keep runs fast. */
    if (size > 65536) {
        return 0;
    }
    setup_once();
    write_file(config_path, data, size);
    memset(err, 0x5A, sizeof(err));
    if (pol_config_load(config_path, &snap, err, sizeof(err)) == 0) {
        if (snap == NULL || snap->cluster_count == 0 || snap->cluster_count > POL_CONFIG_MAX_CLUSTERS ||
            snap->rule_count > POL_CONFIG_MAX_RULES) {
            FAIL("snapshot with %zu clusters, %zu rules", snap ? snap->cluster_count : 0,
                 snap ? snap->rule_count : 0);
        }
        for (size_t i = 0; i < snap->rule_count; i++) {
            for (size_t j = 0; j < snap->rules[i].cluster_count; j++) {
                if (snap->rules[i].clusters[j] >= snap->cluster_count) {
                    FAIL("rule %zu names cluster index %zu", i, snap->rules[i].clusters[j]);
                }
            }
        }
        pol_snapshot_release(snap);
    } else {
        if (snap != NULL || memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
            FAIL("failure without a message or with a snapshot");
        }
    }
    return 0;
}
