#include "pol_keysrc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pol_cfgcheck.h"
#include "pol_lint.h"

#define KEY_FILE_MAX_BYTES (1024u * 1024u)

/* Remote keys of a cluster or provider whose issuer is |issuer|:
 * "jwks_uri" or "discovery", with "ca_file", "bearer_token_file",
 * "refresh_seconds", "fetch_timeout_seconds"; *remote says whether any. */
static void parse_remote_source(pol_cfg_ctx *ctx, const json_t *obj, const char *path, authz_slice issuer,
                                pol_remote_source *src, bool *remote)
{
    const char *const extras[] = {"ca_file", "bearer_token_file", "refresh_seconds", "fetch_timeout_seconds",
                                  NULL};

    src->fetch_timeout_seconds = 10;
    pol_cfg_get_string(ctx, obj, path, "jwks_uri", false, pol_cfgcheck_https_url, &src->jwks_uri);
    pol_cfg_get_bool(ctx, obj, path, "discovery", &src->discovery);
    pol_cfg_get_file_path(ctx, obj, path, "ca_file", false, &src->ca_file);
    pol_cfg_get_file_path(ctx, obj, path, "bearer_token_file", false, &src->bearer_token_file);
    pol_cfg_get_int(ctx, obj, path, "refresh_seconds", 60, 86400, &src->refresh_seconds);
    pol_cfg_get_int(ctx, obj, path, "fetch_timeout_seconds", 1, 60, &src->fetch_timeout_seconds);
    *remote = src->discovery || json_object_get(obj, "jwks_uri") != NULL;
    /* Read at every fetch; a missing one is a mistake to report now. */
    const authz_slice *files[] = {&src->ca_file, &src->bearer_token_file};
    const char *file_keys[] = {"ca_file", "bearer_token_file"};
    for (size_t i = 0; i < 2; i++) {
        if (files[i]->ptr && access(files[i]->ptr, R_OK) != 0) {
            char key_path[POL_CFG_PATH_TEXT_MAX];
            pol_cfg_path_key(key_path, path, file_keys[i]);
            pol_cfg_fail(ctx, key_path, json_object_get(obj, file_keys[i]), "%s: %s", files[i]->ptr,
                         strerror(errno));
        }
    }
    if (src->discovery && json_object_get(obj, "jwks_uri")) {
        char key_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_key(key_path, path, "jwks_uri");
        pol_cfg_fail(ctx, key_path, json_object_get(obj, "jwks_uri"),
                     "give jwks_uri or discovery, not both (discovery finds the jwks_uri)");
    }
    if (src->discovery && issuer.ptr && pol_cfgcheck_https_url(issuer) != NULL) {
        char key_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_key(key_path, path, "issuer");
        pol_cfg_fail(ctx, key_path, json_object_get(obj, "issuer"), "discovery needs an https:// issuer");
    }
    for (size_t i = 0; !*remote && extras[i]; i++) {
        if (json_object_get(obj, extras[i])) {
            char key_path[POL_CFG_PATH_TEXT_MAX];
            pol_cfg_path_key(key_path, path, extras[i]);
            pol_cfg_fail(ctx, key_path, json_object_get(obj, extras[i]), "needs jwks_uri or discovery");
        }
    }
}

/* Remembers that keys [first, sink->keys->count) came from file |name|
 * named at |path|, for reports. */
static void record_key_file(pol_cfg_ctx *ctx, pol_key_sink sink, authz_slice name, const char *path,
                            size_t first)
{
    pol_key_file *grown = realloc(*sink.files, (*sink.file_count + 1) * sizeof *grown);
    if (!grown) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    *sink.files = grown;
    pol_key_file *f = &grown[*sink.file_count];
    memset(f, 0, sizeof *f);
    if (!pol_cfg_dup_slice(name.ptr, name.len, false, &f->name) ||
        !pol_cfg_dup_slice(path, strlen(path), false, &f->json_path)) {
        free((void *)f->name.ptr);
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    f->first_key = first;
    f->key_count = sink.keys->count - first;
    (*sink.file_count)++;
}

/* The hint for a key file that failed to load as |jwks| (else PEM): the
 * other config key, when the file has the other format. */
static const char *key_file_hint(bool jwks, const char *data, size_t len)
{
    pol_lint_file_kind kind = pol_lint_key_file_kind(data, len);
    if (jwks && kind == POL_LINT_FILE_PEM)
        return "this is a PEM key: use public_key_files";
    if (!jwks && kind == POL_LINT_FILE_JSON)
        return "this is a JWKS: use jwks_file";
    return NULL;
}

static void load_key_file(pol_cfg_ctx *ctx, pol_key_sink sink, const json_t *v, const char *path, bool jwks)
{
    authz_slice name;
    if (!pol_cfg_string_value(ctx, v, path, NULL, &name))
        return;
    char *full = pol_cfg_resolve_path(ctx, name.ptr);
    char *data = NULL;
    size_t len = 0;
    size_t first = sink.keys->count;
    char why[256];
    if (!full) {
        pol_cfg_fail(ctx, path, v, "path too long or out of memory");
        goto cleanup;
    }
    if (pol_cfg_read_file(full, KEY_FILE_MAX_BYTES, &data, &len, why, sizeof why) != 0) {
        pol_cfg_fail(ctx, path, v, "%s: %s", full, why);
        goto cleanup;
    }
    int rc = jwks ? authz_keyset_add_jwks(sink.keys, data, len, AUTHZ_KEY_DEFAULT_MAX_KEYS, why, sizeof why)
                  : authz_keyset_add_pem(sink.keys, data, len, AUTHZ_KEY_DEFAULT_MAX_KEYS, why, sizeof why);
    if (rc != 0)
        pol_cfg_fail_hint(ctx, path, v, key_file_hint(jwks, data, len), "%s: %s", full, why);
    else
        record_key_file(ctx, sink, name, path, first);
cleanup:
    free(data);
    free(full);
}

/* The key files of a cluster or provider: "jwks_file" and
 * "public_key_files" of |obj| into |sink|. Returns false when neither is
 * given. */
static bool load_key_files(pol_cfg_ctx *ctx, const json_t *obj, const char *path, pol_key_sink sink)
{
    char key_path[POL_CFG_PATH_TEXT_MAX];
    const json_t *jwks = json_object_get(obj, "jwks_file");
    if (jwks) {
        pol_cfg_path_key(key_path, path, "jwks_file");
        load_key_file(ctx, sink, jwks, key_path, true);
    }
    const json_t *pems = json_object_get(obj, "public_key_files");
    if (pems) {
        char list_path[POL_CFG_PATH_TEXT_MAX];
        const json_t *arr =
            pol_cfg_get_array(ctx, obj, path, "public_key_files", false, false, POL_CFG_LIST_MAX, list_path);
        for (size_t i = 0; arr && i < json_array_size(arr); i++) {
            pol_cfg_path_index(key_path, list_path, i);
            load_key_file(ctx, sink, json_array_get(arr, i), key_path, false);
        }
    }
    return jwks || pems;
}

void pol_keysrc_load(pol_cfg_ctx *ctx, const json_t *obj, const char *path, authz_slice issuer,
                     pol_key_sink sink, pol_remote_source *source, bool *remote)
{
    size_t errors_before_keys = ctx->errors;
    bool has_files = load_key_files(ctx, obj, path, sink);
    parse_remote_source(ctx, obj, path, issuer, source, remote);
    if (!has_files && !*remote)
        pol_cfg_fail(ctx, path, NULL, "needs jwks_file, public_key_files, jwks_uri or discovery");
    else if (has_files && sink.keys->count == 0 && ctx->errors == errors_before_keys)
        pol_cfg_fail(ctx, path, NULL, "no signing key was loaded");
}
