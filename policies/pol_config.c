#include "pol_config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_jwt.h"
#include "pol_cfg.h"
#include "pol_cfgcheck.h"
#include "pol_cluster_load.h"
#include "pol_lint.h"
#include "pol_path.h"
#include "pol_provider_load.h"
#include "pol_rule_load.h"

/* Folder of |path| for relative key paths, malloc'd; NULL when out of memory. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    memcpy(out, path, len);
    out[len] = '\0';
    return out;
}

/* "tls": {"cert_file", "key_file", "client_ca_file", "allowed_client_sans"}. */
static void parse_tls(pol_cfg_ctx *ctx, const json_t *root, pol_tls_settings *tls)
{
    static const char *const keys[] = {"cert_file", "key_file", "client_ca_file", "allowed_client_sans",
                                       NULL};
    const json_t *obj = json_object_get(root, "tls");
    if (!obj || !pol_cfg_is_object(ctx, obj, "tls"))
        return;
    pol_cfg_check_keys(ctx, obj, "tls", keys);
    tls->enabled = true;
    pol_cfg_get_file_path(ctx, obj, "tls", "cert_file", true, &tls->cert_file);
    pol_cfg_get_file_path(ctx, obj, "tls", "key_file", true, &tls->key_file);
    pol_cfg_get_file_path(ctx, obj, "tls", "client_ca_file", false, &tls->client_ca_file);
    pol_cfg_get_string_list(ctx, obj, "tls", "allowed_client_sans", false, false, pol_cfgcheck_client_san,
                            &tls->allowed_client_sans, &tls->allowed_client_san_count);
    if (json_object_get(obj, "allowed_client_sans") && !json_object_get(obj, "client_ca_file"))
        pol_cfg_fail(ctx, "tls.allowed_client_sans", NULL,
                     "needs tls.client_ca_file: without client certificates there is no SAN to check");
}

/* Hands a pol_lint finding to pol_cfg_fail (|ctx| is the pol_cfg_ctx). */
static void lint_error(void *ctx, const pol_lint_finding *f)
{
    json_t *value = f->value.ptr ? json_stringn(f->value.ptr, f->value.len) : NULL;
    pol_cfg_fail_hint(ctx, f->path, value, f->hint, "%s", f->problem);
    json_decref(value);
}

/* Hands a pol_lint finding to pol_cfg_warn. */
static void lint_warning(void *ctx, const pol_lint_finding *f)
{
    json_t *value = f->value.ptr ? json_stringn(f->value.ptr, f->value.len) : NULL;
    pol_cfg_warn(ctx, f->path, value, f->hint, "%s", f->problem);
    json_decref(value);
}

/* ---- top level ---------------------------------------------------------- */

/* "escaped_slashes": "reject" (the default) or "keep". */
static void get_escaped_slashes(pol_cfg_ctx *ctx, const json_t *root, pol_path_slashes *out)
{
    const json_t *v = json_object_get(root, "escaped_slashes");
    authz_slice s;
    if (!v || !pol_cfg_string_value(ctx, v, "escaped_slashes", NULL, &s))
        return;
    if (authz_slice_eq_cstr(s, "reject"))
        *out = POL_PATH_SLASHES_REJECT;
    else if (authz_slice_eq_cstr(s, "keep"))
        *out = POL_PATH_SLASHES_KEEP;
    else
        pol_cfg_fail(ctx, "escaped_slashes", v, "must be \"reject\" or \"keep\"");
}

/* Request bytes held for undecided calls. Absent, each bound defaults to its
 * fixed size but never below what it must hold (one whole message per
 * connection, one connection's worth per worker); given, it must hold that. */
static void parse_buffer_bounds(pol_cfg_ctx *ctx, const json_t *root, pol_server_settings *server)
{
    const json_t *conn = json_object_get(root, "max_buffered_bytes_per_connection");
    const json_t *worker = json_object_get(root, "max_buffered_bytes_per_worker");

    pol_cfg_get_size(ctx, root, "", "max_buffered_bytes_per_connection", POL_BUFFERED_MIN, POL_BUFFERED_MAX,
                     &server->max_buffered_bytes_per_connection);
    pol_cfg_get_size(ctx, root, "", "max_buffered_bytes_per_worker", POL_BUFFERED_MIN, POL_BUFFERED_MAX,
                     &server->max_buffered_bytes_per_worker);
    if (server->max_buffered_bytes_per_connection < server->max_message_bytes) {
        if (conn) {
            pol_cfg_fail(ctx, "max_buffered_bytes_per_connection", conn,
                         "must be at least max_message_bytes (%zu), or no message of that size could arrive",
                         server->max_message_bytes);
        }
        server->max_buffered_bytes_per_connection = server->max_message_bytes;
    }
    if (server->max_buffered_bytes_per_worker < server->max_buffered_bytes_per_connection) {
        if (worker) {
            pol_cfg_fail(ctx, "max_buffered_bytes_per_worker", worker,
                         "must be at least max_buffered_bytes_per_connection (%zu)",
                         server->max_buffered_bytes_per_connection);
        }
        server->max_buffered_bytes_per_worker = server->max_buffered_bytes_per_connection;
    }
}

static void parse_top(pol_cfg_ctx *ctx, const json_t *root, pol_snapshot *snap)
{
    static const char *const keys[] = {"$schema",
                                       "listen",
                                       "workers",
                                       "clock_skew_seconds",
                                       "max_token_bytes",
                                       "max_message_bytes",
                                       "max_connections",
                                       "max_concurrent_streams",
                                       "trusted_proxy_hops",
                                       "idle_timeout_seconds",
                                       "request_timeout_seconds",
                                       "send_timeout_seconds",
                                       "max_buffered_bytes_per_connection",
                                       "max_buffered_bytes_per_worker",
                                       "token_cache",
                                       "log_decisions",
                                       "max_kidless_keys",
                                       "escaped_slashes",
                                       "admin_listen",
                                       "watch_config",
                                       "tls",
                                       "deny_details",
                                       "http_listen",
                                       "http_style",
                                       "http_trusted_proxy_hops",
                                       "http_trust_x_real_ip",
                                       "clusters",
                                       "identity_providers",
                                       "rules",
                                       NULL};
    pol_cfg_check_keys(ctx, root, "", keys);
    /* "$schema" names config.schema.json for editors: a string, else unused. */
    const json_t *schema = json_object_get(root, "$schema");
    authz_slice schema_ref;
    if (schema)
        pol_cfg_string_value(ctx, schema, "$schema", NULL, &schema_ref);
    pol_cfg_get_string(ctx, root, "", "listen", false, pol_cfgcheck_listen, &snap->server.listen);
    pol_cfg_get_size(ctx, root, "", "workers", 0, 256, &snap->server.workers);
    pol_cfg_get_int(ctx, root, "", "clock_skew_seconds", 0, 3600, &snap->clock_skew);
    pol_cfg_get_size(ctx, root, "", "max_token_bytes", 256, 1048576, &snap->max_token_bytes);
    pol_cfg_get_size(ctx, root, "", "max_message_bytes", 1024, 67108864, &snap->server.max_message_bytes);
    pol_cfg_get_size(ctx, root, "", "max_connections", 1, 1000000, &snap->server.max_connections);
    pol_cfg_get_size(ctx, root, "", "max_concurrent_streams", 1, 65536, &snap->server.max_concurrent_streams);
    pol_cfg_get_size(ctx, root, "", "trusted_proxy_hops", 0, 16, &snap->server.trusted_proxy_hops);
    pol_cfg_get_size(ctx, root, "", "idle_timeout_seconds", 0, 86400, &snap->server.idle_timeout_seconds);
    pol_cfg_get_size(ctx, root, "", "request_timeout_seconds", 1, 3600,
                     &snap->server.request_timeout_seconds);
    pol_cfg_get_size(ctx, root, "", "send_timeout_seconds", 1, 3600, &snap->server.send_timeout_seconds);
    parse_buffer_bounds(ctx, root, &snap->server);
    pol_cfg_get_bool(ctx, root, "", "log_decisions", &snap->server.log_decisions);
    pol_cfg_get_size(ctx, root, "", "max_kidless_keys", 0, 1024, &snap->max_kidless_keys);
    get_escaped_slashes(ctx, root, &snap->escaped_slashes);
    pol_cfg_get_string(ctx, root, "", "admin_listen", false, pol_cfgcheck_listen, &snap->server.admin_listen);
    pol_cfg_get_bool(ctx, root, "", "watch_config", &snap->server.watch_config);
    parse_tls(ctx, root, &snap->server.tls);
    /* Indexed by pol_deny_details. */
    static const char *const deny_details[] = {"generic", "full", NULL};
    int details = (int)snap->server.deny_details;
    pol_cfg_get_choice(ctx, root, "", "deny_details", deny_details, &details);
    snap->server.deny_details = (pol_deny_details)details;
    pol_cfg_get_string(ctx, root, "", "http_listen", false, pol_cfgcheck_listen, &snap->server.http_listen);
    /* Indexed by pol_http_style. */
    static const char *const http_styles[] = {"envoy", "forwarded", "original", NULL};
    int style = (int)snap->server.http_style;
    pol_cfg_get_choice(ctx, root, "", "http_style", http_styles, &style);
    snap->server.http_style = (pol_http_style)style;
    /* At least 1: the HTTP listener's peer is the proxy, never the client. */
    pol_cfg_get_size(ctx, root, "", "http_trusted_proxy_hops", 1, 16, &snap->server.http_trusted_proxy_hops);
    pol_cfg_get_bool(ctx, root, "", "http_trust_x_real_ip", &snap->server.http_trust_x_real_ip);
    const json_t *cache = json_object_get(root, "token_cache");
    if (cache && pol_cfg_is_object(ctx, cache, "token_cache")) {
        static const char *const cache_keys[] = {"size", NULL};
        pol_cfg_check_keys(ctx, cache, "token_cache", cache_keys);
        pol_cfg_get_size(ctx, cache, "token_cache", "size", 0, 10000000, &snap->server.token_cache_size);
    }

    if (!pol_cluster_load_all(ctx, root, snap))
        return;
    pol_provider_load_all(ctx, root, snap);
    if (pol_lint_shared_keys(snap, lint_error, ctx) != 0)
        pol_cfg_fail(ctx, "clusters", NULL, "out of memory");

    pol_rule_load_all(ctx, root, snap);
}

/* A snapshot with every default set; NULL when out of memory. */
static pol_snapshot *snapshot_new(const char *path)
{
    pol_snapshot *snap = calloc(1, sizeof *snap);
    if (!snap)
        return NULL;
    atomic_init(&snap->refs, 1);
    snap->clock_skew = 60;
    snap->max_token_bytes = AUTHZ_JWT_DEFAULT_MAX_TOKEN;
    snap->max_kidless_keys = 8;
    snap->server.workers = 0;
    snap->server.max_message_bytes = 1048576;
    snap->server.max_connections = 10000;
    snap->server.max_concurrent_streams = 1024;
    snap->server.trusted_proxy_hops = 0;
    snap->server.token_cache_size = 10000;
    snap->server.idle_timeout_seconds = 300;
    snap->server.request_timeout_seconds = 30;
    snap->server.send_timeout_seconds = 10;
    snap->server.max_buffered_bytes_per_connection = 16u * 1024u * 1024u;
    snap->server.max_buffered_bytes_per_worker = 64u * 1024u * 1024u;
    snap->server.log_decisions = true;
    snap->server.deny_details = POL_DENY_DETAILS_GENERIC;
    snap->server.http_trusted_proxy_hops = 1;
    if (!pol_cfg_dup_slice(path, strlen(path), false, &snap->path) ||
        !pol_cfg_dup_slice("127.0.0.1:9191", strlen("127.0.0.1:9191"), false, &snap->server.listen)) {
        pol_snapshot_release(snap);
        return NULL;
    }
    return snap;
}

/* Distinct per load without a process-wide counter: the monotonic clock in
 * nanoseconds. Loads are serialised by their callers and each takes far
 * longer than a nanosecond, so no two snapshots share a value. */
static uint64_t load_generation(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 1;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int pol_config_load(const char *path, pol_snapshot **out, char *err, size_t err_size)
{
    int rc = -1;
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    pol_snapshot *snap = NULL;
    pol_cfg_ctx ctx = {.file = path, .err = err, .err_size = err_size};
    char why[256];

    *out = NULL;
    if (err && err_size > 0)
        err[0] = '\0';
    ctx.dir = dir_of(path);
    if (!ctx.dir) {
        pol_cfg_fail(&ctx, "", NULL, "out of memory");
        goto cleanup;
    }
    if (pol_cfg_read_file(path, POL_CONFIG_MAX_FILE_BYTES, &text, &len, why, sizeof why) != 0) {
        pol_cfg_fail(&ctx, "", NULL, "%s", why);
        goto cleanup;
    }
    json_error_t jerr;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char line[512];
        snprintf(line, sizeof line, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        ctx.errors++;
        pol_cfg_err_append(&ctx, line);
        goto cleanup;
    }
    if (!pol_cfg_is_object(&ctx, root, ""))
        goto cleanup;
    snap = snapshot_new(path);
    if (!snap) {
        pol_cfg_fail(&ctx, "", NULL, "out of memory");
        goto cleanup;
    }
    parse_top(&ctx, root, snap);
    if (ctx.errors > 0)
        goto cleanup;
    pol_lint_warnings(snap, lint_warning, &ctx);
    snap->warnings = ctx.warnings;
    snap->warning_count = ctx.warning_count;
    ctx.warnings = NULL;
    ctx.warning_count = 0;
    snap->generation = load_generation();
    *out = snap;
    snap = NULL;
    rc = 0;
cleanup:
    pol_snapshot_release(snap);
    json_decref(root);
    free(text);
    for (size_t i = 0; i < ctx.warning_count; i++)
        free((void *)ctx.warnings[i].ptr);
    free(ctx.warnings);
    free(ctx.dir);
    return rc;
}
