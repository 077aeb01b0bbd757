#include "pol_cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pol_lint.h"

#define MAX_REPORTED_ERRORS 20u
#define MAX_KEPT_WARNINGS 100u
#define FILE_PATH_MAX 4096u

/* ---- error reporting -------------------------------------------------- */

void pol_cfg_err_append(pol_cfg_ctx *ctx, const char *text)
{
    if (!ctx->err || ctx->err_size == 0 || ctx->err_used + 1 >= ctx->err_size)
        return;
    size_t room = ctx->err_size - ctx->err_used - 1;
    size_t len = strlen(text);
    if (len > room)
        len = room;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        /* Keys and values come from the file: keep the report one clean line each. */
        ctx->err[ctx->err_used + i] = (c == '\n' || (c >= 0x20 && c <= 0x7e)) ? (char)c : '?';
    }
    ctx->err_used += len;
    ctx->err[ctx->err_used] = '\0';
}

/* Renders |value| as compact JSON, shortened to POL_CFG_VALUE_TEXT_MAX. */
static void render_value(const json_t *value, char *out, size_t size)
{
    out[0] = '\0';
    char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!text)
        return;
    size_t len = strlen(text);
    if (len >= size) {
        memcpy(out, text, size - 4);
        memcpy(out + size - 4, "...", 4);
    } else {
        memcpy(out, text, len + 1);
    }
    free(text);
}

/* Formats "<file>: <path>: <problem> (<value>); <hint>" into |line|;
 * |value| and |hint| may be NULL. */
static void format_report(const pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *problem,
                          const char *hint, char *line, size_t size)
{
    char shown[POL_CFG_VALUE_TEXT_MAX];
    shown[0] = '\0';
    if (value)
        render_value(value, shown, sizeof shown);
    int n = snprintf(line, size, "%s: %s: %s%s%s%s%s%s", ctx->file, path[0] ? path : "(top level)", problem,
                     shown[0] ? " (" : "", shown, shown[0] ? ")" : "", hint ? "; " : "", hint ? hint : "");
    if (n < 0)
        line[0] = '\0';
}

static void report_error(pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *hint,
                         const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void report_error(pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *hint,
                         const char *fmt, va_list ap)
{
    ctx->errors++;
    if (ctx->errors > MAX_REPORTED_ERRORS) {
        if (ctx->errors == MAX_REPORTED_ERRORS + 1)
            pol_cfg_err_append(ctx, "\n(further errors not shown)");
        return;
    }
    char problem[512];
    if (vsnprintf(problem, sizeof problem, fmt, ap) < 0)
        problem[0] = '\0';
    char line[1024];
    format_report(ctx, path, value, problem, hint, line, sizeof line);
    if (ctx->errors > 1)
        pol_cfg_err_append(ctx, "\n");
    pol_cfg_err_append(ctx, line);
}

void pol_cfg_fail(pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_error(ctx, path, value, NULL, fmt, ap);
    va_end(ap);
}

void pol_cfg_fail_hint(pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *hint,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_error(ctx, path, value, hint, fmt, ap);
    va_end(ap);
}

void pol_cfg_warn(pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *hint, const char *fmt,
                  ...)
{
    if (ctx->warning_count == MAX_KEPT_WARNINGS)
        return;
    if (!ctx->warnings) {
        ctx->warnings = calloc(MAX_KEPT_WARNINGS, sizeof *ctx->warnings);
        if (!ctx->warnings)
            return;
    }
    char problem[256];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(problem, sizeof problem, fmt, ap) < 0)
        problem[0] = '\0';
    va_end(ap);
    char line[1024];
    format_report(ctx, path, value, problem, hint, line, sizeof line);
    size_t len = strlen(line);
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    /* Same cleaning as errors: one printable line. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        copy[i] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
    }
    copy[len] = '\0';
    ctx->warnings[ctx->warning_count++] = (authz_slice){copy, len};
}

void pol_cfg_path_key(char out[POL_CFG_PATH_TEXT_MAX], const char *parent, const char *key)
{
    int n = parent[0] ? snprintf(out, POL_CFG_PATH_TEXT_MAX, "%s.%s", parent, key)
                      : snprintf(out, POL_CFG_PATH_TEXT_MAX, "%s", key);
    if (n < 0)
        out[0] = '\0';
}

void pol_cfg_path_index(char out[POL_CFG_PATH_TEXT_MAX], const char *parent, size_t index)
{
    if (snprintf(out, POL_CFG_PATH_TEXT_MAX, "%s[%zu]", parent, index) < 0)
        out[0] = '\0';
}

/* ---- files ------------------------------------------------------------ */

int pol_cfg_read_file(const char *path, size_t limit, char **out, size_t *out_len, char *why, size_t why_size)
{
    int rc = -1;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_size, "cannot open: %s", strerror(errno));
        goto cleanup;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        snprintf(why, why_size, "cannot stat: %s", strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "not a regular file");
        goto cleanup;
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > limit) {
        snprintf(why, why_size, "file is larger than %zu bytes", limit);
        goto cleanup;
    }
    /* One byte beyond the limit detects a file that grew since fstat. */
    size_t cap = (size_t)st.st_size + 2;
    buf = malloc(cap);
    if (!buf) {
        snprintf(why, why_size, "out of memory");
        goto cleanup;
    }
    size_t len = fread(buf, 1, cap - 1, f);
    if (ferror(f)) {
        snprintf(why, why_size, "read error");
        goto cleanup;
    }
    if (len > limit || len > (size_t)st.st_size) {
        snprintf(why, why_size, "file is larger than %zu bytes", len > limit ? limit : (size_t)st.st_size);
        goto cleanup;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = 0;
cleanup:
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

char *pol_cfg_resolve_path(const pol_cfg_ctx *ctx, const char *name)
{
    size_t name_len = strlen(name);
    size_t dir_len = name[0] == '/' ? 0 : strlen(ctx->dir);
    size_t total = dir_len + 1 + name_len + 1;
    if (total > FILE_PATH_MAX)
        return NULL;
    char *out = malloc(total);
    if (!out)
        return NULL;
    if (dir_len == 0) {
        memcpy(out, name, name_len + 1);
    } else {
        memcpy(out, ctx->dir, dir_len);
        out[dir_len] = '/';
        memcpy(out + dir_len + 1, name, name_len + 1);
    }
    return out;
}

/* ---- typed getters ---------------------------------------------------- */

void pol_cfg_check_keys(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(allowed[i], key) == 0;
        if (known)
            continue;
        char path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_key(path, parent, key);
        const char *near = pol_lint_closest(key, allowed);
        if (!near) {
            pol_cfg_fail(ctx, path, value, "unknown key");
            continue;
        }
        char hint[POL_CFG_PATH_TEXT_MAX];
        snprintf(hint, sizeof hint, "did you mean `%s`?", near);
        pol_cfg_fail_hint(ctx, path, value, hint, "unknown key");
        if (!json_object_get(obj, near) && ctx->hinted_count < POL_CFG_MAX_HINTED_KEYS) {
            ctx->hinted[ctx->hinted_count].obj = obj;
            ctx->hinted[ctx->hinted_count++].key = near;
        }
    }
}

void pol_cfg_missing(pol_cfg_ctx *ctx, const json_t *obj, const char *path, const char *key)
{
    for (size_t i = 0; i < ctx->hinted_count; i++) {
        if (ctx->hinted[i].obj == obj && strcmp(ctx->hinted[i].key, key) == 0)
            return;
    }
    pol_cfg_fail(ctx, path, NULL, "is required");
}

bool pol_cfg_is_object(pol_cfg_ctx *ctx, const json_t *value, const char *path)
{
    if (json_is_object(value))
        return true;
    pol_cfg_fail(ctx, path, value, "must be an object");
    return false;
}

void pol_cfg_get_int(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, int64_t min,
                     int64_t max, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    char path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(path, parent, key);
    if (!json_is_integer(v)) {
        pol_cfg_fail(ctx, path, v, "must be an integer");
        return;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        pol_cfg_fail(ctx, path, v, "must be between %lld and %lld", (long long)min, (long long)max);
        return;
    }
    *out = (int64_t)n;
}

void pol_cfg_get_size(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, int64_t min,
                      int64_t max, size_t *out)
{
    int64_t v = (int64_t)*out;
    pol_cfg_get_int(ctx, obj, parent, key, min, max, &v);
    *out = (size_t)v;
}

void pol_cfg_get_bool(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    if (!json_is_boolean(v)) {
        char path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_key(path, parent, key);
        pol_cfg_fail(ctx, path, v, "must be true or false");
        return;
    }
    *out = json_is_true(v);
}

void pol_cfg_get_choice(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                        const char *const *choices, int *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    for (int i = 0; json_is_string(v) && choices[i]; i++) {
        if (strcmp(json_string_value(v), choices[i]) == 0) {
            *out = i;
            return;
        }
    }
    char path[POL_CFG_PATH_TEXT_MAX], expected[128] = "";
    for (int i = 0; choices[i]; i++) {
        size_t used = strlen(expected);
        snprintf(expected + used, sizeof expected - used, "%s\"%s\"", i == 0 ? "" : " or ", choices[i]);
    }
    pol_cfg_path_key(path, parent, key);
    pol_cfg_fail(ctx, path, v, "must be %s", expected);
}

bool pol_cfg_dup_slice(const char *s, size_t len, bool lower, authz_slice *out)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    for (size_t i = 0; i < len; i++)
        copy[i] = (lower && s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    copy[len] = '\0';
    out->ptr = copy;
    out->len = len;
    return true;
}

bool pol_cfg_string_value(pol_cfg_ctx *ctx, const json_t *v, const char *path, pol_cfg_string_check check,
                          authz_slice *s)
{
    if (!json_is_string(v)) {
        pol_cfg_fail(ctx, path, v, "must be a string");
        return false;
    }
    s->ptr = json_string_value(v);
    s->len = json_string_length(v);
    if (s->len == 0) {
        pol_cfg_fail(ctx, path, v, "must not be empty");
        return false;
    }
    if (memchr(s->ptr, '\0', s->len)) {
        pol_cfg_fail(ctx, path, v, "must not contain NUL");
        return false;
    }
    const char *problem = check ? check(*s) : NULL;
    if (problem) {
        pol_cfg_fail(ctx, path, v, "%s", problem);
        return false;
    }
    return true;
}

void pol_cfg_get_string(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                        bool required, pol_cfg_string_check check, authz_slice *out)
{
    char path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(path, parent, key);
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            pol_cfg_missing(ctx, obj, path, key);
        return;
    }
    authz_slice s;
    if (!pol_cfg_string_value(ctx, v, path, check, &s))
        return;
    authz_slice copy;
    if (!pol_cfg_dup_slice(s.ptr, s.len, false, &copy)) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    free((void *)out->ptr);
    *out = copy;
}

static const char *check_mode(authz_slice s)
{
    if (authz_slice_eq_cstr(s, "enforce") || authz_slice_eq_cstr(s, "shadow"))
        return NULL;
    return "must be \"enforce\" or \"shadow\"";
}

void pol_cfg_get_mode(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, bool *shadow)
{
    char path[POL_CFG_PATH_TEXT_MAX];
    pol_cfg_path_key(path, parent, "mode");
    const json_t *v = json_object_get(obj, "mode");
    authz_slice s;
    if (v && pol_cfg_string_value(ctx, v, path, check_mode, &s))
        *shadow = authz_slice_eq_cstr(s, "shadow");
}

const json_t *pol_cfg_get_array(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                                bool required, bool allow_empty, size_t max, char path[POL_CFG_PATH_TEXT_MAX])
{
    pol_cfg_path_key(path, parent, key);
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            pol_cfg_missing(ctx, obj, path, key);
        return NULL;
    }
    if (!json_is_array(v)) {
        pol_cfg_fail(ctx, path, v, "must be an array");
        return NULL;
    }
    /* An empty list would read as "nothing allowed" to some and "anything"
     * to others: leave the key out instead. */
    if (json_array_size(v) == 0 && !allow_empty) {
        pol_cfg_fail(ctx, path, v, "must not be empty (leave the key out instead)");
        return NULL;
    }
    if (json_array_size(v) > max) {
        pol_cfg_fail(ctx, path, NULL, "has %zu items, at most %zu allowed", json_array_size(v), max);
        return NULL;
    }
    return v;
}

void pol_cfg_get_string_list(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                             bool required, bool lower, pol_cfg_string_check check, authz_slice **out,
                             size_t *count)
{
    char path[POL_CFG_PATH_TEXT_MAX];
    const json_t *arr = pol_cfg_get_array(ctx, obj, parent, key, required, false, POL_CFG_LIST_MAX, path);
    if (!arr)
        return;
    size_t n = json_array_size(arr);
    authz_slice *items = calloc(n, sizeof *items);
    if (!items) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char item_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_index(item_path, path, i);
        authz_slice s;
        if (!pol_cfg_string_value(ctx, json_array_get(arr, i), item_path, check, &s))
            continue;
        if (!pol_cfg_dup_slice(s.ptr, s.len, lower, &items[kept])) {
            pol_cfg_fail(ctx, item_path, NULL, "out of memory");
            continue;
        }
        kept++;
    }
    *out = items;
    *count = kept;
}

void pol_cfg_get_cidr_list(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                           authz_cidr **out, size_t *count)
{
    char path[POL_CFG_PATH_TEXT_MAX];
    const json_t *arr = pol_cfg_get_array(ctx, obj, parent, key, false, false, POL_CFG_LIST_MAX, path);
    if (!arr)
        return;
    size_t n = json_array_size(arr);
    authz_cidr *items = calloc(n, sizeof *items);
    if (!items) {
        pol_cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char item_path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_index(item_path, path, i);
        const json_t *v = json_array_get(arr, i);
        authz_slice s;
        if (!pol_cfg_string_value(ctx, v, item_path, NULL, &s))
            continue;
        if (authz_cidr_parse(s, &items[kept]) != 0) {
            char network[64];
            char hint[128];
            if (pol_lint_cidr_network(s, network, sizeof network)) {
                snprintf(hint, sizeof hint, "host bits are set: did you mean %s?", network);
                pol_cfg_fail_hint(ctx, item_path, v, hint, "not a CIDR");
            } else {
                pol_cfg_fail(ctx, item_path, v, "not a CIDR");
            }
            continue;
        }
        if (!memchr(s.ptr, '/', s.len)) {
            char hint[96];
            snprintf(hint, sizeof hint, "write %.*s/%u if one host is meant", (int)s.len, s.ptr,
                     (unsigned)items[kept].prefix_len);
            pol_cfg_warn(ctx, item_path, v, hint, "CIDR without a prefix length");
        }
        kept++;
    }
    *out = items;
    *count = kept;
}

void pol_cfg_get_file_path(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                           bool required, authz_slice *out)
{
    authz_slice name = {NULL, 0};
    pol_cfg_get_string(ctx, obj, parent, key, required, NULL, &name);
    if (!name.ptr)
        return;
    char *full = pol_cfg_resolve_path(ctx, name.ptr);
    free((void *)name.ptr);
    if (!full) {
        char path[POL_CFG_PATH_TEXT_MAX];
        pol_cfg_path_key(path, parent, key);
        pol_cfg_fail(ctx, path, json_object_get(obj, key), "path too long or out of memory");
        return;
    }
    out->ptr = full;
    out->len = strlen(full);
}
