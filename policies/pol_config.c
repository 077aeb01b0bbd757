#include "pol_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "authz_cidr.h"
#include "authz_jwt.h"
#include "authz_key.h"
#include "authz_spiffe.h"
#include "pol_lint.h"
#include "pol_path.h"

#define KEY_FILE_MAX_BYTES (1024u * 1024u)
#define LIST_MAX 4096u      /* items in any one list of the config */
#define NAME_MAX_BYTES 253u /* cluster/rule names and hosts (DNS name length) */
#define PATH_TEXT_MAX 256u  /* a JSON path in a message */
#define VALUE_TEXT_MAX 80u  /* a value quoted in a message */
#define MAX_REPORTED_ERRORS 20u
#define MAX_KEPT_WARNINGS 100u
#define MAX_HINTED_KEYS 32u
#define FILE_PATH_MAX 4096u

typedef struct cfg_ctx {
    const char *file; /* the config path, for messages */
    char *dir;        /* owned: folder of the config file, for relative key paths */
    char *err;        /* caller's buffer */
    size_t err_size;
    size_t err_used;
    size_t errors;
    authz_slice *warnings; /* owned until handed to the snapshot */
    size_t warning_count;  /* at most MAX_KEPT_WARNINGS: further ones are dropped */
    /* Known keys an unknown key was probably meant to be, with their
     * object: their absence is the same mistake, not a second error. */
    struct {
        const json_t *obj;
        const char *key;
    } hinted[MAX_HINTED_KEYS];
    size_t hinted_count;
    /* Some cluster has no valid name: a rule naming it is a follow-on. */
    bool cluster_names_incomplete;
} cfg_ctx;

/* ---- error reporting -------------------------------------------------- */

static void err_append(cfg_ctx *ctx, const char *text)
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

/* Renders |value| as compact JSON, shortened to VALUE_TEXT_MAX. */
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
static void format_report(const cfg_ctx *ctx, const char *path, const json_t *value, const char *problem,
                          const char *hint, char *line, size_t size)
{
    char shown[VALUE_TEXT_MAX];
    shown[0] = '\0';
    if (value)
        render_value(value, shown, sizeof shown);
    int n = snprintf(line, size, "%s: %s: %s%s%s%s%s%s", ctx->file, path[0] ? path : "(top level)", problem,
                     shown[0] ? " (" : "", shown, shown[0] ? ")" : "", hint ? "; " : "", hint ? hint : "");
    if (n < 0)
        line[0] = '\0';
}

static void report_error(cfg_ctx *ctx, const char *path, const json_t *value, const char *hint,
                         const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void report_error(cfg_ctx *ctx, const char *path, const json_t *value, const char *hint,
                         const char *fmt, va_list ap)
{
    ctx->errors++;
    if (ctx->errors > MAX_REPORTED_ERRORS) {
        if (ctx->errors == MAX_REPORTED_ERRORS + 1)
            err_append(ctx, "\n(further errors not shown)");
        return;
    }
    char problem[512];
    if (vsnprintf(problem, sizeof problem, fmt, ap) < 0)
        problem[0] = '\0';
    char line[1024];
    format_report(ctx, path, value, problem, hint, line, sizeof line);
    if (ctx->errors > 1)
        err_append(ctx, "\n");
    err_append(ctx, line);
}

/* Records the error "<file>: <path>: <problem> (<value>)"; |value| may be NULL. */
static void cfg_fail(cfg_ctx *ctx, const char *path, const json_t *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cfg_fail(cfg_ctx *ctx, const char *path, const json_t *value, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_error(ctx, path, value, NULL, fmt, ap);
    va_end(ap);
}

/* As cfg_fail, with "; <hint>" after the value: what probably fixes it. */
static void cfg_fail_hint(cfg_ctx *ctx, const char *path, const json_t *value, const char *hint,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void cfg_fail_hint(cfg_ctx *ctx, const char *path, const json_t *value, const char *hint,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_error(ctx, path, value, hint, fmt, ap);
    va_end(ap);
}

/* Records a warning, in the same form as an error: the config loads, and
 * `tokengate check` shows it (--strict makes it fatal). Out of memory
 * loses the warning, never the load. */
static void cfg_warn(cfg_ctx *ctx, const char *path, const json_t *value, const char *hint, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

static void cfg_warn(cfg_ctx *ctx, const char *path, const json_t *value, const char *hint, const char *fmt,
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

static void path_key(char out[PATH_TEXT_MAX], const char *parent, const char *key)
{
    int n = parent[0] ? snprintf(out, PATH_TEXT_MAX, "%s.%s", parent, key)
                      : snprintf(out, PATH_TEXT_MAX, "%s", key);
    if (n < 0)
        out[0] = '\0';
}

static void path_index(char out[PATH_TEXT_MAX], const char *parent, size_t index)
{
    if (snprintf(out, PATH_TEXT_MAX, "%s[%zu]", parent, index) < 0)
        out[0] = '\0';
}

/* ---- files ------------------------------------------------------------ */

/* Reads at most |limit| bytes of |path| into a NUL-terminated malloc'd
 * buffer. Returns 0, or -1 with a reason in |why|. */
static int read_file_bounded(const char *path, size_t limit, char **out, size_t *out_len, char *why,
                             size_t why_size)
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

/* |name| relative to the config folder unless absolute. NULL when too long
 * or out of memory. */
static char *resolve_path(const cfg_ctx *ctx, const char *name)
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

/* ---- typed getters ---------------------------------------------------- */

/* Reports every member of |obj| not in the NULL-terminated |allowed|,
 * naming the known key it is probably a typo of. Such a known key, when
 * absent, is remembered so its absence is not reported again. */
static void check_keys(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *const *allowed)
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
        char path[PATH_TEXT_MAX];
        path_key(path, parent, key);
        const char *near = pol_lint_closest(key, allowed);
        if (!near) {
            cfg_fail(ctx, path, value, "unknown key");
            continue;
        }
        char hint[PATH_TEXT_MAX];
        snprintf(hint, sizeof hint, "did you mean `%s`?", near);
        cfg_fail_hint(ctx, path, value, hint, "unknown key");
        if (!json_object_get(obj, near) && ctx->hinted_count < MAX_HINTED_KEYS) {
            ctx->hinted[ctx->hinted_count].obj = obj;
            ctx->hinted[ctx->hinted_count++].key = near;
        }
    }
}

/* Reports required |key| of |obj| as missing, unless an unknown key of
 * |obj| was already reported as its probable typo. */
static void cfg_missing(cfg_ctx *ctx, const json_t *obj, const char *path, const char *key)
{
    for (size_t i = 0; i < ctx->hinted_count; i++) {
        if (ctx->hinted[i].obj == obj && strcmp(ctx->hinted[i].key, key) == 0)
            return;
    }
    cfg_fail(ctx, path, NULL, "is required");
}

static bool is_object(cfg_ctx *ctx, const json_t *value, const char *path)
{
    if (json_is_object(value))
        return true;
    cfg_fail(ctx, path, value, "must be an object");
    return false;
}

/* Leaves *out alone when |key| is absent. */
static void get_int(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, int64_t min,
                    int64_t max, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    char path[PATH_TEXT_MAX];
    path_key(path, parent, key);
    if (!json_is_integer(v)) {
        cfg_fail(ctx, path, v, "must be an integer");
        return;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        cfg_fail(ctx, path, v, "must be between %lld and %lld", (long long)min, (long long)max);
        return;
    }
    *out = (int64_t)n;
}

static void get_size(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, int64_t min,
                     int64_t max, size_t *out)
{
    int64_t v = (int64_t)*out;
    get_int(ctx, obj, parent, key, min, max, &v);
    *out = (size_t)v;
}

static void get_bool(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    if (!json_is_boolean(v)) {
        char path[PATH_TEXT_MAX];
        path_key(path, parent, key);
        cfg_fail(ctx, path, v, "must be true or false");
        return;
    }
    *out = json_is_true(v);
}

/* Sets *out to the index of the string |key| of |obj| in the NULL-terminated
 * |choices|; leaves *out alone when |key| is absent. */
static void get_choice(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
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
    char path[PATH_TEXT_MAX], expected[128] = "";
    for (int i = 0; choices[i]; i++) {
        size_t used = strlen(expected);
        snprintf(expected + used, sizeof expected - used, "%s\"%s\"", i == 0 ? "" : " or ", choices[i]);
    }
    path_key(path, parent, key);
    cfg_fail(ctx, path, v, "must be %s", expected);
}

/* An owned, NUL-terminated copy; lower-cased when asked. */
static bool dup_slice(const char *s, size_t len, bool lower, authz_slice *out)
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

/* A validator for one string value: returns NULL when fine, else the problem. */
typedef const char *(*string_check)(authz_slice s);

/* Checks that |v| is a non-empty string without NUL passing |check|.
 * Returns true and sets *s (borrowed from |v|) when so. */
static bool string_value(cfg_ctx *ctx, const json_t *v, const char *path, string_check check, authz_slice *s)
{
    if (!json_is_string(v)) {
        cfg_fail(ctx, path, v, "must be a string");
        return false;
    }
    s->ptr = json_string_value(v);
    s->len = json_string_length(v);
    if (s->len == 0) {
        cfg_fail(ctx, path, v, "must not be empty");
        return false;
    }
    if (memchr(s->ptr, '\0', s->len)) {
        cfg_fail(ctx, path, v, "must not contain NUL");
        return false;
    }
    const char *problem = check ? check(*s) : NULL;
    if (problem) {
        cfg_fail(ctx, path, v, "%s", problem);
        return false;
    }
    return true;
}

/* Copies the string |key| of |obj| into *out (owned). Absent: an error when
 * |required|, else *out is left alone. */
static void get_string(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, bool required,
                       string_check check, authz_slice *out)
{
    char path[PATH_TEXT_MAX];
    path_key(path, parent, key);
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            cfg_missing(ctx, obj, path, key);
        return;
    }
    authz_slice s;
    if (!string_value(ctx, v, path, check, &s))
        return;
    authz_slice copy;
    if (!dup_slice(s.ptr, s.len, false, &copy)) {
        cfg_fail(ctx, path, NULL, "out of memory");
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

/* "mode" of a rule or cluster: *shadow is true for "shadow"; absent is
 * "enforce". */
static void get_mode(cfg_ctx *ctx, const json_t *obj, const char *parent, bool *shadow)
{
    char path[PATH_TEXT_MAX];
    path_key(path, parent, "mode");
    const json_t *v = json_object_get(obj, "mode");
    authz_slice s;
    if (v && string_value(ctx, v, path, check_mode, &s))
        *shadow = authz_slice_eq_cstr(s, "shadow");
}

/* The array |key| of |obj|: NULL when absent (an error when |required|) or
 * invalid (not an array, empty, too long). */
static const json_t *get_array(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                               bool required, bool allow_empty, size_t max, char path[PATH_TEXT_MAX])
{
    path_key(path, parent, key);
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            cfg_missing(ctx, obj, path, key);
        return NULL;
    }
    if (!json_is_array(v)) {
        cfg_fail(ctx, path, v, "must be an array");
        return NULL;
    }
    /* An empty list would read as "nothing allowed" to some and "anything"
     * to others: leave the key out instead. */
    if (json_array_size(v) == 0 && !allow_empty) {
        cfg_fail(ctx, path, v, "must not be empty (leave the key out instead)");
        return NULL;
    }
    if (json_array_size(v) > max) {
        cfg_fail(ctx, path, NULL, "has %zu items, at most %zu allowed", json_array_size(v), max);
        return NULL;
    }
    return v;
}

/* A list of strings, copied (lower-cased when asked) into an owned array. */
static void get_string_list(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                            bool required, bool lower, string_check check, authz_slice **out, size_t *count)
{
    char path[PATH_TEXT_MAX];
    const json_t *arr = get_array(ctx, obj, parent, key, required, false, LIST_MAX, path);
    if (!arr)
        return;
    size_t n = json_array_size(arr);
    authz_slice *items = calloc(n, sizeof *items);
    if (!items) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char item_path[PATH_TEXT_MAX];
        path_index(item_path, path, i);
        authz_slice s;
        if (!string_value(ctx, json_array_get(arr, i), item_path, check, &s))
            continue;
        if (!dup_slice(s.ptr, s.len, lower, &items[kept])) {
            cfg_fail(ctx, item_path, NULL, "out of memory");
            continue;
        }
        kept++;
    }
    *out = items;
    *count = kept;
}

static void get_cidr_list(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                          authz_cidr **out, size_t *count)
{
    char path[PATH_TEXT_MAX];
    const json_t *arr = get_array(ctx, obj, parent, key, false, false, LIST_MAX, path);
    if (!arr)
        return;
    size_t n = json_array_size(arr);
    authz_cidr *items = calloc(n, sizeof *items);
    if (!items) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char item_path[PATH_TEXT_MAX];
        path_index(item_path, path, i);
        const json_t *v = json_array_get(arr, i);
        authz_slice s;
        if (!string_value(ctx, v, item_path, NULL, &s))
            continue;
        if (authz_cidr_parse(s, &items[kept]) != 0) {
            char network[64];
            char hint[128];
            if (pol_lint_cidr_network(s, network, sizeof network)) {
                snprintf(hint, sizeof hint, "host bits are set: did you mean %s?", network);
                cfg_fail_hint(ctx, item_path, v, hint, "not a CIDR");
            } else {
                cfg_fail(ctx, item_path, v, "not a CIDR");
            }
            continue;
        }
        if (!memchr(s.ptr, '/', s.len)) {
            char hint[96];
            snprintf(hint, sizeof hint, "write %.*s/%u if one host is meant", (int)s.len, s.ptr,
                     (unsigned)items[kept].prefix_len);
            cfg_warn(ctx, item_path, v, hint, "CIDR without a prefix length");
        }
        kept++;
    }
    *out = items;
    *count = kept;
}

/* ---- value validators --------------------------------------------------- */

static const char *check_name(authz_slice s)
{
    if (s.len > NAME_MAX_BYTES)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok)
            return "may only contain letters, digits, '.', '_' and '-'";
    }
    return NULL;
}

static bool is_dns_name(authz_slice s)
{
    if (s.len == 0 || s.len > NAME_MAX_BYTES)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_';
        if (!ok || ++label > 63)
            return false;
    }
    return label > 0;
}

/* A bracketed IPv6 literal "[...]" . */
static bool is_bracketed_ipv6(authz_slice s)
{
    if (s.len < 3 || s.ptr[0] != '[' || s.ptr[s.len - 1] != ']')
        return false;
    authz_ip ip;
    authz_slice inner = {s.ptr + 1, s.len - 2};
    return memchr(inner.ptr, ':', inner.len) != NULL && authz_ip_parse(inner, &ip) == 0;
}

static const char *check_host(authz_slice s)
{
    if (s.ptr[0] == '[') {
        const char *close = memchr(s.ptr, ']', s.len);
        if (close && close != s.ptr + s.len - 1)
            return "must not carry a port";
        return is_bracketed_ipv6(s) ? NULL : "is not a valid [IPv6] literal";
    }
    if (memchr(s.ptr, ':', s.len))
        return "must not carry a port (write IPv6 hosts as [addr])";
    /* One leading "*." label: a wildcard over the rest (pol_target). */
    if (s.len >= 2 && s.ptr[0] == '*' && s.ptr[1] == '.') {
        authz_slice rest = {s.ptr + 2, s.len - 2};
        return is_dns_name(rest) ? NULL : "is not a valid wildcard host (\"*.\" then a host name)";
    }
    if (memchr(s.ptr, '*', s.len))
        return "is not a valid host name (a wildcard is one leading \"*.\" label)";
    return is_dns_name(s) ? NULL : "is not a valid host name";
}

/* RFC 9110 5.6.2 tchar, lower-case letters only (names are stored lower-case
 * and compared ignoring case). */
static bool is_header_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *check_header_name(authz_slice s)
{
    if (s.len > NAME_MAX_BYTES)
        return "is too long";
    if (s.ptr[0] == ':')
        return "is a pseudo-header: use path_prefix, methods or the cluster's hosts";
    for (size_t i = 0; i < s.len; i++) {
        if (!is_header_tchar(s.ptr[i]))
            return "is not an HTTP header name";
    }
    return NULL;
}

/* A header tokengate sets or removes itself: not for claim_to_headers. */
static const char *check_claim_header_name(authz_slice s)
{
    const char *problem = check_header_name(s);
    if (problem)
        return problem;
    char lowered[NAME_MAX_BYTES];
    for (size_t i = 0; i < s.len; i++)
        lowered[i] = (s.ptr[i] >= 'A' && s.ptr[i] <= 'Z') ? (char)(s.ptr[i] - 'A' + 'a') : s.ptr[i];
    authz_slice low = {lowered, s.len};
    if (authz_slice_eq_cstr(low, "authorization") || authz_slice_eq_cstr(low, "host") ||
        authz_slice_has_prefix(low, AUTHZ_SLICE_LIT("x-tokengate-")))
        return "is a header tokengate sets or removes itself";
    return NULL;
}

/* A header value a condition compares exactly: no control bytes, no comma
 * (a comma-separated value is several values, refused as ambiguous), no
 * surrounding whitespace (proxies strip it). */
static const char *check_header_value(authz_slice s)
{
    if (s.len > 1024)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x20 || c == 0x7f)
            return "contains a control character";
        if (c == ',')
            return "contains a comma (a list value is refused as ambiguous)";
    }
    if (s.ptr[0] == ' ' || s.ptr[s.len - 1] == ' ')
        return "has surrounding spaces";
    return NULL;
}

/* "a.b.c": dot-separated, no empty segment. */
static const char *check_claim_path(authz_slice s)
{
    if (s.len > 256)
        return "is too long";
    if (s.ptr[0] == '.' || s.ptr[s.len - 1] == '.')
        return "must not start or end with '.'";
    for (size_t i = 1; i < s.len; i++) {
        if (s.ptr[i] == '.' && s.ptr[i - 1] == '.')
            return "has an empty segment ('..')";
    }
    return NULL;
}

static const char *check_listen(authz_slice s)
{
    authz_slice host;
    const char *colon;
    if (s.ptr[0] == '[') {
        const char *close = memchr(s.ptr, ']', s.len);
        if (!close)
            return "has an unclosed '['";
        host = (authz_slice){s.ptr, (size_t)(close - s.ptr) + 1};
        if (!is_bracketed_ipv6(host))
            return "is not a valid [IPv6] literal";
        colon = close + 1;
        if (colon >= s.ptr + s.len || *colon != ':')
            return "must be host:port";
    } else {
        colon = memchr(s.ptr, ':', s.len);
        if (!colon)
            return "must be host:port";
        host = (authz_slice){s.ptr, (size_t)(colon - s.ptr)};
        if (memchr(colon + 1, ':', (size_t)(s.ptr + s.len - colon - 1)))
            return "must be host:port (write IPv6 addresses as [addr]:port)";
        authz_ip ip;
        if (!is_dns_name(host) && authz_ip_parse(host, &ip) != 0)
            return "has an invalid host";
    }
    const char *port = colon + 1;
    size_t port_len = (size_t)(s.ptr + s.len - port);
    if (port_len == 0 || port_len > 5)
        return "port must be 1..65535";
    unsigned long value = 0;
    for (size_t i = 0; i < port_len; i++) {
        if (port[i] < '0' || port[i] > '9')
            return "port must be 1..65535";
        value = value * 10u + (unsigned long)(port[i] - '0');
    }
    if (value < 1 || value > 65535)
        return "port must be 1..65535";
    return NULL;
}

static const char *check_path_prefix(authz_slice s)
{
    return s.ptr[0] == '/' ? NULL : "must start with '/'";
}

static const char *check_method(authz_slice s)
{
    if (s.len > 32)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return "must be an upper-case HTTP method";
    }
    return NULL;
}

static const char *check_service_account(authz_slice s)
{
    const char *colon = memchr(s.ptr, ':', s.len);
    if (!colon || colon == s.ptr || colon == s.ptr + s.len - 1 ||
        memchr(colon + 1, ':', (size_t)(s.ptr + s.len - colon - 1)))
        return "must be \"namespace:name\"";
    return NULL;
}

/* A client certificate SAN: a URI ("spiffe://trust-domain/path", what
 * Istio's and SPIFFE's workload certificates carry) or a DNS name. Compared
 * exactly (DNS names ignoring ASCII case), so no wildcards. */
static const char *check_client_san(authz_slice s)
{
    const char *sep = s.len >= 3 ? strstr(s.ptr, "://") : NULL;
    if (!sep)
        return is_dns_name(s) ? NULL : "is neither a URI (scheme://...) nor a DNS name";
    size_t scheme_len = (size_t)(sep - s.ptr);
    if (scheme_len == 0 || !((s.ptr[0] >= 'a' && s.ptr[0] <= 'z') || (s.ptr[0] >= 'A' && s.ptr[0] <= 'Z')))
        return "URI must start with a scheme (scheme://...)";
    if (scheme_len + 3 == s.len)
        return "URI has nothing after the scheme";
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] <= 0x20 || s.ptr[i] >= 0x7f)
            return "URI must not contain spaces, control or non-ASCII bytes";
    }
    return NULL;
}

/* The file name |key| of |obj|, resolved against the config folder into
 * *out (owned). Absent: an error when |required|. The file itself is read
 * by whoever uses it (server/srv_tls for TLS material). */
static void get_file_path(cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, bool required,
                          authz_slice *out)
{
    authz_slice name = {NULL, 0};
    get_string(ctx, obj, parent, key, required, NULL, &name);
    if (!name.ptr)
        return;
    char *full = resolve_path(ctx, name.ptr);
    free((void *)name.ptr);
    if (!full) {
        char path[PATH_TEXT_MAX];
        path_key(path, parent, key);
        cfg_fail(ctx, path, json_object_get(obj, key), "path too long or out of memory");
        return;
    }
    out->ptr = full;
    out->len = strlen(full);
}

/* An https URL with a host, printable ASCII, at most 2048 bytes: keys are
 * fetched over TLS only (plain http would let the network choose them). */
static const char *check_https_url(authz_slice s)
{
    static const char scheme[] = "https://";
    if (s.len > 2048)
        return "longer than 2048 bytes";
    if (s.len <= sizeof scheme - 1 || memcmp(s.ptr, scheme, sizeof scheme - 1) != 0)
        return "must be an https:// URL";
    if (s.ptr[sizeof scheme - 1] == '/')
        return "names no host";
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] <= ' ' || s.ptr[i] > '~')
            return "must be printable ASCII without spaces";
    }
    return NULL;
}

/* Remote keys of a cluster or provider whose issuer is |issuer|:
 * "jwks_uri" or "discovery", with "ca_file", "bearer_token_file",
 * "refresh_seconds", "fetch_timeout_seconds"; *remote says whether any. */
static void parse_remote_source(cfg_ctx *ctx, const json_t *obj, const char *path, authz_slice issuer,
                                pol_remote_source *src, bool *remote)
{
    const char *const extras[] = {"ca_file", "bearer_token_file", "refresh_seconds", "fetch_timeout_seconds",
                                  NULL};

    src->fetch_timeout_seconds = 10;
    get_string(ctx, obj, path, "jwks_uri", false, check_https_url, &src->jwks_uri);
    get_bool(ctx, obj, path, "discovery", &src->discovery);
    get_file_path(ctx, obj, path, "ca_file", false, &src->ca_file);
    get_file_path(ctx, obj, path, "bearer_token_file", false, &src->bearer_token_file);
    get_int(ctx, obj, path, "refresh_seconds", 60, 86400, &src->refresh_seconds);
    get_int(ctx, obj, path, "fetch_timeout_seconds", 1, 60, &src->fetch_timeout_seconds);
    *remote = src->discovery || json_object_get(obj, "jwks_uri") != NULL;
    /* Read at every fetch; a missing one is a mistake to report now. */
    const authz_slice *files[] = {&src->ca_file, &src->bearer_token_file};
    const char *file_keys[] = {"ca_file", "bearer_token_file"};
    for (size_t i = 0; i < 2; i++) {
        if (files[i]->ptr && access(files[i]->ptr, R_OK) != 0) {
            char key_path[PATH_TEXT_MAX];
            path_key(key_path, path, file_keys[i]);
            cfg_fail(ctx, key_path, json_object_get(obj, file_keys[i]), "%s: %s", files[i]->ptr,
                     strerror(errno));
        }
    }
    if (src->discovery && json_object_get(obj, "jwks_uri")) {
        char key_path[PATH_TEXT_MAX];
        path_key(key_path, path, "jwks_uri");
        cfg_fail(ctx, key_path, json_object_get(obj, "jwks_uri"),
                 "give jwks_uri or discovery, not both (discovery finds the jwks_uri)");
    }
    if (src->discovery && issuer.ptr && check_https_url(issuer) != NULL) {
        char key_path[PATH_TEXT_MAX];
        path_key(key_path, path, "issuer");
        cfg_fail(ctx, key_path, json_object_get(obj, "issuer"), "discovery needs an https:// issuer");
    }
    for (size_t i = 0; !*remote && extras[i]; i++) {
        if (json_object_get(obj, extras[i])) {
            char key_path[PATH_TEXT_MAX];
            path_key(key_path, path, extras[i]);
            cfg_fail(ctx, key_path, json_object_get(obj, extras[i]), "needs jwks_uri or discovery");
        }
    }
}

/* "tls": {"cert_file", "key_file", "client_ca_file", "allowed_client_sans"}. */
static void parse_tls(cfg_ctx *ctx, const json_t *root, pol_tls_settings *tls)
{
    static const char *const keys[] = {"cert_file", "key_file", "client_ca_file", "allowed_client_sans",
                                       NULL};
    const json_t *obj = json_object_get(root, "tls");
    if (!obj || !is_object(ctx, obj, "tls"))
        return;
    check_keys(ctx, obj, "tls", keys);
    tls->enabled = true;
    get_file_path(ctx, obj, "tls", "cert_file", true, &tls->cert_file);
    get_file_path(ctx, obj, "tls", "key_file", true, &tls->key_file);
    get_file_path(ctx, obj, "tls", "client_ca_file", false, &tls->client_ca_file);
    get_string_list(ctx, obj, "tls", "allowed_client_sans", false, false, check_client_san,
                    &tls->allowed_client_sans, &tls->allowed_client_san_count);
    if (json_object_get(obj, "allowed_client_sans") && !json_object_get(obj, "client_ca_file"))
        cfg_fail(ctx, "tls.allowed_client_sans", NULL,
                 "needs tls.client_ca_file: without client certificates there is no SAN to check");
}

/* ---- peer binding ------------------------------------------------------ */

static const char *check_trust_domain(authz_slice s)
{
    return authz_spiffe_trust_domain_valid(s)
               ? NULL
               : "must be a SPIFFE trust domain: [a-z0-9._-], at most 255 bytes";
}

/* "peer_binding": {"mode": "off"|"spiffe", "trust_domain", "required"}
 * of a cluster or rule; keys left out stay unset (pol_peer_effective). */
static void get_peer_binding(cfg_ctx *ctx, const json_t *parent_obj, const char *parent, pol_peer_binding *b)
{
    static const char *const keys[] = {"mode", "trust_domain", "required", NULL};
    static const char *const modes[] = {"off", "spiffe", NULL}; /* POL_PEER_MODE_OFF + index */
    char path[PATH_TEXT_MAX];
    path_key(path, parent, "peer_binding");
    const json_t *obj = json_object_get(parent_obj, "peer_binding");
    if (!obj || !is_object(ctx, obj, path))
        return;
    check_keys(ctx, obj, path, keys);
    int mode = -1;
    get_choice(ctx, obj, path, "mode", modes, &mode);
    if (mode >= 0)
        b->mode = (pol_peer_mode)(POL_PEER_MODE_OFF + mode);
    get_string(ctx, obj, path, "trust_domain", false, check_trust_domain, &b->trust_domain);
    b->required_set = json_object_get(obj, "required") != NULL;
    get_bool(ctx, obj, path, "required", &b->required);
}

/* A rule's peer_binding may only tighten that of each cluster it applies
 * to: a rule that loosened it would let a stolen token through on its
 * routes. */
static void check_peer_tightens(cfg_ctx *ctx, const json_t *obj, const char *path, const pol_snapshot *snap,
                                const pol_rule *r)
{
    size_t n = r->cluster_count > 0 ? r->cluster_count : snap->cluster_count;
    for (size_t i = 0; i < n; i++) {
        size_t index = r->cluster_count > 0 ? r->clusters[i] : i;
        const pol_cluster *c = &snap->clusters[index];
        const char *key = pol_peer_loosens(&c->peer, &r->peer);
        if (!key)
            continue;
        char binding_path[PATH_TEXT_MAX], key_path[PATH_TEXT_MAX];
        path_key(binding_path, path, "peer_binding");
        path_key(key_path, binding_path, key);
        cfg_fail(ctx, key_path, json_object_get(json_object_get(obj, "peer_binding"), key),
                 "loosens the peer_binding of cluster %.*s (clusters[%zu]); a rule may only tighten it",
                 (int)c->name.len, c->name.ptr ? c->name.ptr : "", index);
        return;
    }
}

/* ---- clusters ----------------------------------------------------------- */

/* Where loaded keys go: a cluster's or an identity provider's key set and
 * the record of the files they came from. */
typedef struct key_sink {
    authz_keyset *keys;
    pol_key_file **files;
    size_t *file_count;
} key_sink;

/* Remembers that keys [first, sink->keys->count) came from file |name|
 * named at |path|, for reports. */
static void record_key_file(cfg_ctx *ctx, key_sink sink, authz_slice name, const char *path, size_t first)
{
    pol_key_file *grown = realloc(*sink.files, (*sink.file_count + 1) * sizeof *grown);
    if (!grown) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    *sink.files = grown;
    pol_key_file *f = &grown[*sink.file_count];
    memset(f, 0, sizeof *f);
    if (!dup_slice(name.ptr, name.len, false, &f->name) ||
        !dup_slice(path, strlen(path), false, &f->json_path)) {
        free((void *)f->name.ptr);
        cfg_fail(ctx, path, NULL, "out of memory");
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

static void load_key_file(cfg_ctx *ctx, key_sink sink, const json_t *v, const char *path, bool jwks)
{
    authz_slice name;
    if (!string_value(ctx, v, path, NULL, &name))
        return;
    char *full = resolve_path(ctx, name.ptr);
    char *data = NULL;
    size_t len = 0;
    size_t first = sink.keys->count;
    char why[256];
    if (!full) {
        cfg_fail(ctx, path, v, "path too long or out of memory");
        goto cleanup;
    }
    if (read_file_bounded(full, KEY_FILE_MAX_BYTES, &data, &len, why, sizeof why) != 0) {
        cfg_fail(ctx, path, v, "%s: %s", full, why);
        goto cleanup;
    }
    int rc = jwks ? authz_keyset_add_jwks(sink.keys, data, len, AUTHZ_KEY_DEFAULT_MAX_KEYS, why, sizeof why)
                  : authz_keyset_add_pem(sink.keys, data, len, AUTHZ_KEY_DEFAULT_MAX_KEYS, why, sizeof why);
    if (rc != 0)
        cfg_fail_hint(ctx, path, v, key_file_hint(jwks, data, len), "%s: %s", full, why);
    else
        record_key_file(ctx, sink, name, path, first);
cleanup:
    free(data);
    free(full);
}

/* The key files of a cluster or provider: "jwks_file" and
 * "public_key_files" of |obj| into |sink|. Returns false when neither is
 * given. */
static bool load_key_files(cfg_ctx *ctx, const json_t *obj, const char *path, key_sink sink)
{
    char key_path[PATH_TEXT_MAX];
    const json_t *jwks = json_object_get(obj, "jwks_file");
    if (jwks) {
        path_key(key_path, path, "jwks_file");
        load_key_file(ctx, sink, jwks, key_path, true);
    }
    const json_t *pems = json_object_get(obj, "public_key_files");
    if (pems) {
        char list_path[PATH_TEXT_MAX];
        const json_t *arr = get_array(ctx, obj, path, "public_key_files", false, false, LIST_MAX, list_path);
        for (size_t i = 0; arr && i < json_array_size(arr); i++) {
            path_index(key_path, list_path, i);
            load_key_file(ctx, sink, json_array_get(arr, i), key_path, false);
        }
    }
    return jwks || pems;
}

/* A key owner's (cluster's or identity provider's) keys: files into
 * |sink|, a remote source into |source| / |remote|; at least one of them.
 * An owner with remote keys may start without any: its tokens are denied
 * (unknown_key) and /readyz stays 503 until they load. */
static void load_key_sources(cfg_ctx *ctx, const json_t *obj, const char *path, authz_slice issuer,
                             key_sink sink, pol_remote_source *source, bool *remote)
{
    size_t errors_before_keys = ctx->errors;
    bool has_files = load_key_files(ctx, obj, path, sink);
    parse_remote_source(ctx, obj, path, issuer, source, remote);
    if (!has_files && !*remote)
        cfg_fail(ctx, path, NULL, "needs jwks_file, public_key_files, jwks_uri or discovery");
    else if (has_files && sink.keys->count == 0 && ctx->errors == errors_before_keys)
        cfg_fail(ctx, path, NULL, "no signing key was loaded");
}

/* "claim_to_headers": [{"claim": "a.b", "header": "x-b"}, ...], at most
 * POL_MAX_CLAIM_HEADERS, header names unique within the cluster. */
static void get_claim_headers(cfg_ctx *ctx, const json_t *obj, const char *parent, pol_cluster *c)
{
    static const char *const keys[] = {"claim", "header", NULL};
    char path[PATH_TEXT_MAX];
    const json_t *arr =
        get_array(ctx, obj, parent, "claim_to_headers", false, false, POL_MAX_CLAIM_HEADERS, path);
    if (!arr)
        return;
    c->claim_headers = calloc(json_array_size(arr), sizeof *c->claim_headers);
    if (!c->claim_headers) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char item_path[PATH_TEXT_MAX];
        path_index(item_path, path, i);
        const json_t *item = json_array_get(arr, i);
        if (!is_object(ctx, item, item_path))
            continue;
        check_keys(ctx, item, item_path, keys);
        pol_claim_header entry = {{NULL, 0}, {NULL, 0}};
        get_string(ctx, item, item_path, "claim", true, check_claim_path, &entry.claim);
        authz_slice header = {NULL, 0};
        get_string(ctx, item, item_path, "header", true, check_claim_header_name, &header);
        if (header.ptr && !dup_slice(header.ptr, header.len, true, &entry.header))
            cfg_fail(ctx, item_path, NULL, "out of memory");
        free((void *)header.ptr);
        for (size_t k = 0; entry.header.ptr && k < c->claim_header_count; k++) {
            if (authz_slice_eq(entry.header, c->claim_headers[k].header)) {
                char key_path[PATH_TEXT_MAX];
                path_key(key_path, item_path, "header");
                cfg_fail(ctx, key_path, json_object_get(item, "header"), "duplicates the header of %s[%zu]",
                         path, k);
            }
        }
        if (!entry.claim.ptr || !entry.header.ptr) {
            free((void *)entry.claim.ptr);
            free((void *)entry.header.ptr);
            continue;
        }
        c->claim_headers[c->claim_header_count++] = entry;
    }
}

static void parse_cluster(cfg_ctx *ctx, const json_t *obj, const char *path, pol_cluster *c)
{
    static const char *const keys[] = {"name",
                                       "issuer",
                                       "audiences",
                                       "jwks_file",
                                       "public_key_files",
                                       "source_cidrs",
                                       "hosts",
                                       "forward_token",
                                       "cidr_claim",
                                       "max_token_age_seconds",
                                       "enforce_warnafter",
                                       "claim_to_headers",
                                       "mode",
                                       "peer_binding",
                                       "jwks_uri",
                                       "discovery",
                                       "ca_file",
                                       "bearer_token_file",
                                       "refresh_seconds",
                                       "fetch_timeout_seconds",
                                       NULL};
    authz_keyset_init(&c->keys);
    if (!dup_slice("boundCIDRs", strlen("boundCIDRs"), false, &c->cidr_claim)) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    if (!is_object(ctx, obj, path))
        return;
    check_keys(ctx, obj, path, keys);
    get_string(ctx, obj, path, "name", true, check_name, &c->name);
    get_string(ctx, obj, path, "issuer", true, NULL, &c->issuer);
    get_string_list(ctx, obj, path, "audiences", true, false, NULL, &c->audiences, &c->audience_count);
    get_cidr_list(ctx, obj, path, "source_cidrs", &c->source_cidrs, &c->source_cidr_count);
    get_string_list(ctx, obj, path, "hosts", false, true, check_host, &c->hosts, &c->host_count);
    get_bool(ctx, obj, path, "forward_token", &c->forward_token);
    get_string(ctx, obj, path, "cidr_claim", false, NULL, &c->cidr_claim);
    get_int(ctx, obj, path, "max_token_age_seconds", 0, 31536000, &c->max_token_age);
    get_bool(ctx, obj, path, "enforce_warnafter", &c->enforce_warnafter);
    get_claim_headers(ctx, obj, path, c);
    get_mode(ctx, obj, path, &c->shadow);
    get_peer_binding(ctx, obj, path, &c->peer);

    key_sink sink = {&c->keys, &c->key_files, &c->key_file_count};
    load_key_sources(ctx, obj, path, c->issuer, sink, &c->source, &c->remote);
}

/* Hands a pol_lint finding to cfg_fail (|ctx| is the cfg_ctx). */
static void lint_error(void *ctx, const pol_lint_finding *f)
{
    json_t *value = f->value.ptr ? json_stringn(f->value.ptr, f->value.len) : NULL;
    cfg_fail_hint(ctx, f->path, value, f->hint, "%s", f->problem);
    json_decref(value);
}

/* Hands a pol_lint finding to cfg_warn. */
static void lint_warning(void *ctx, const pol_lint_finding *f)
{
    json_t *value = f->value.ptr ? json_stringn(f->value.ptr, f->value.len) : NULL;
    cfg_warn(ctx, f->path, value, f->hint, "%s", f->problem);
    json_decref(value);
}

static void check_cluster_uniqueness(cfg_ctx *ctx, const pol_snapshot *snap)
{
    for (size_t i = 0; i < snap->cluster_count; i++) {
        const pol_cluster *a = &snap->clusters[i];
        char path[PATH_TEXT_MAX];
        for (size_t j = 0; j < i; j++) {
            const pol_cluster *b = &snap->clusters[j];
            if (a->name.len > 0 && authz_slice_eq(a->name, b->name)) {
                snprintf(path, sizeof path, "clusters[%zu].name", i);
                json_t *shown = json_stringn(a->name.ptr, a->name.len);
                cfg_fail(ctx, path, shown, "duplicates the name of clusters[%zu]", j);
                json_decref(shown);
            }
            for (size_t h = 0; h < a->host_count; h++) {
                for (size_t k = 0; k < b->host_count; k++) {
                    if (!authz_slice_eq(a->hosts[h], b->hosts[k]))
                        continue;
                    snprintf(path, sizeof path, "clusters[%zu].hosts[%zu]", i, h);
                    json_t *shown = json_stringn(a->hosts[h].ptr, a->hosts[h].len);
                    cfg_fail(ctx, path, shown,
                             "host of cluster %.*s already belongs to cluster %.*s (clusters[%zu])",
                             (int)a->name.len, a->name.ptr, (int)b->name.len, b->name.ptr, j);
                    json_decref(shown);
                }
            }
        }
        for (size_t h = 0; h < a->host_count; h++) {
            for (size_t k = 0; k < h; k++) {
                if (authz_slice_eq(a->hosts[h], a->hosts[k])) {
                    snprintf(path, sizeof path, "clusters[%zu].hosts[%zu]", i, h);
                    json_t *shown = json_stringn(a->hosts[h].ptr, a->hosts[h].len);
                    cfg_fail(ctx, path, shown, "duplicate host");
                    json_decref(shown);
                }
            }
        }
    }
}

/* ---- identity providers --------------------------------------------------- */

#define PREFIX_MAX_BYTES 256u
#define MAX_REQUIRED_VALUES 64u
#define MAX_CLAIM_RULES 64u

/* A username or groups prefix: may be empty; printable ASCII without a
 * comma (x-tokengate-groups joins groups with commas); never "system:",
 * which Kubernetes reserves for its own identities. */
static const char *check_prefix(authz_slice s)
{
    if (s.len > PREFIX_MAX_BYTES)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < 0x20 || s.ptr[i] > 0x7e || s.ptr[i] == ',')
            return "may only contain printable ASCII without ','";
    }
    if (authz_slice_has_prefix(s, AUTHZ_SLICE_LIT("system:")))
        return "must not start with \"system:\" (reserved for Kubernetes identities)";
    return NULL;
}

/* A user or group a rule names: printable ASCII, no comma (a group holding
 * one is refused at decision time, so it could never match). */
static const char *check_principal(authz_slice s)
{
    if (s.len > PREFIX_MAX_BYTES + POL_MAX_GROUP_BYTES)
        return "is too long";
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < 0x20 || s.ptr[i] > 0x7e || s.ptr[i] == ',')
            return "may only contain printable ASCII without ','";
    }
    return NULL;
}

/* "claim_mappings.username" or ".groups": {"claim", "prefix"}; the prefix
 * is required with a claim and may be "" (as in kube-apiserver's
 * structured authentication config). */
static void parse_claim_mapping(cfg_ctx *ctx, const json_t *mappings, const char *parent, const char *key,
                                authz_slice *claim, authz_slice *prefix)
{
    static const char *const keys[] = {"claim", "prefix", NULL};
    char path[PATH_TEXT_MAX];
    path_key(path, parent, key);
    const json_t *obj = json_object_get(mappings, key);
    if (!obj || !is_object(ctx, obj, path))
        return;
    check_keys(ctx, obj, path, keys);
    free((void *)claim->ptr);
    *claim = (authz_slice){NULL, 0};
    get_string(ctx, obj, path, "claim", true, check_claim_path, claim);
    char prefix_path[PATH_TEXT_MAX];
    path_key(prefix_path, path, "prefix");
    const json_t *v = json_object_get(obj, "prefix");
    if (!v) {
        cfg_missing(ctx, obj, prefix_path, "prefix");
        return;
    }
    if (!json_is_string(v)) {
        cfg_fail(ctx, prefix_path, v, "must be a string (\"\" for none)");
        return;
    }
    authz_slice s = {json_string_value(v), json_string_length(v)};
    const char *problem = check_prefix(s);
    if (problem) {
        cfg_fail(ctx, prefix_path, v, "%s", problem);
        return;
    }
    free((void *)prefix->ptr);
    if (!dup_slice(s.ptr, s.len, false, prefix))
        cfg_fail(ctx, prefix_path, NULL, "out of memory");
}

/* One required value: a string, a boolean or a number. */
static bool required_value(cfg_ctx *ctx, const json_t *v, const char *path, pol_required_value *out)
{
    memset(out, 0, sizeof *out);
    if (json_is_boolean(v)) {
        out->kind = POL_VALUE_BOOL;
        out->boolean = json_is_true(v);
    } else if (json_is_number(v)) {
        out->kind = POL_VALUE_NUMBER;
        out->number = json_number_value(v);
    } else if (json_is_string(v)) {
        out->kind = POL_VALUE_STRING;
        if (!dup_slice(json_string_value(v), json_string_length(v), false, &out->text)) {
            cfg_fail(ctx, path, NULL, "out of memory");
            return false;
        }
    } else {
        cfg_fail(ctx, path, v, "must be a string, a boolean or a number");
        return false;
    }
    return true;
}

/* "claim_validation_rules": [{"claim", "required_value" | "required_values"}]. */
static void parse_claim_rules(cfg_ctx *ctx, const json_t *obj, const char *parent, pol_provider *p)
{
    static const char *const keys[] = {"claim", "required_value", "required_values", NULL};
    char path[PATH_TEXT_MAX];
    const json_t *arr =
        get_array(ctx, obj, parent, "claim_validation_rules", false, false, MAX_CLAIM_RULES, path);
    if (!arr)
        return;
    p->claim_rules = calloc(json_array_size(arr), sizeof *p->claim_rules);
    if (!p->claim_rules) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char item_path[PATH_TEXT_MAX], values_path[PATH_TEXT_MAX];
        path_index(item_path, path, i);
        const json_t *item = json_array_get(arr, i);
        if (!is_object(ctx, item, item_path))
            continue;
        check_keys(ctx, item, item_path, keys);
        pol_claim_rule *r = &p->claim_rules[p->claim_rule_count++];
        get_string(ctx, item, item_path, "claim", true, check_claim_path, &r->claim);
        const json_t *one = json_object_get(item, "required_value");
        const json_t *many = json_object_get(item, "required_values");
        if (!one == !many) {
            cfg_fail(ctx, item_path, NULL, "needs exactly one of required_value and required_values");
            continue;
        }
        if (many)
            many = get_array(ctx, item, item_path, "required_values", false, false, MAX_REQUIRED_VALUES,
                             values_path);
        else
            path_key(values_path, item_path, "required_value");
        size_t n = many ? json_array_size(many) : (one ? 1u : 0u);
        r->one_of = many != NULL;
        r->values = n > 0 ? calloc(n, sizeof *r->values) : NULL;
        if (n > 0 && !r->values) {
            cfg_fail(ctx, values_path, NULL, "out of memory");
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            char value_path[PATH_TEXT_MAX];
            if (many)
                path_index(value_path, values_path, k);
            else
                snprintf(value_path, sizeof value_path, "%s", values_path);
            if (required_value(ctx, many ? json_array_get(many, k) : one, value_path,
                               &r->values[r->value_count]))
                r->value_count++;
        }
    }
}

static void parse_provider(cfg_ctx *ctx, const json_t *obj, const char *path, const pol_snapshot *snap,
                           pol_provider *p)
{
    static const char *const keys[] = {"name",
                                       "issuer",
                                       "audiences",
                                       "jwks_file",
                                       "public_key_files",
                                       "jwks_uri",
                                       "discovery",
                                       "ca_file",
                                       "bearer_token_file",
                                       "refresh_seconds",
                                       "fetch_timeout_seconds",
                                       "claim_mappings",
                                       "claim_validation_rules",
                                       "clusters",
                                       NULL};
    authz_keyset_init(&p->keys);
    if (!is_object(ctx, obj, path))
        return;
    check_keys(ctx, obj, path, keys);
    get_string(ctx, obj, path, "name", true, check_name, &p->name);
    get_string(ctx, obj, path, "issuer", true, NULL, &p->issuer);
    get_string_list(ctx, obj, path, "audiences", true, false, NULL, &p->audiences, &p->audience_count);

    /* Without a username mapping: sub, prefixed with "<issuer>#" as
     * kube-apiserver's --oidc-username-claim default does, so a provider's
     * subject never reads as another's or as a service account. */
    if (!dup_slice("sub", 3, false, &p->username_claim) || !p->issuer.ptr ||
        !dup_slice(p->issuer.ptr, p->issuer.len + 1, false, &p->username_prefix)) {
        if (p->issuer.ptr)
            cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    ((char *)p->username_prefix.ptr)[p->issuer.len] = '#';
    char mappings_path[PATH_TEXT_MAX];
    path_key(mappings_path, path, "claim_mappings");
    const json_t *mappings = json_object_get(obj, "claim_mappings");
    if (mappings && is_object(ctx, mappings, mappings_path)) {
        static const char *const mapping_keys[] = {"username", "groups", NULL};
        check_keys(ctx, mappings, mappings_path, mapping_keys);
        parse_claim_mapping(ctx, mappings, mappings_path, "username", &p->username_claim,
                            &p->username_prefix);
        parse_claim_mapping(ctx, mappings, mappings_path, "groups", &p->groups_claim, &p->groups_prefix);
    }
    parse_claim_rules(ctx, obj, path, p);

    char list_path[PATH_TEXT_MAX];
    const json_t *arr =
        get_array(ctx, obj, path, "clusters", true, false, POL_CONFIG_MAX_CLUSTERS, list_path);
    p->clusters = arr ? calloc(json_array_size(arr), sizeof *p->clusters) : NULL;
    for (size_t i = 0; p->clusters && i < json_array_size(arr); i++) {
        char item_path[PATH_TEXT_MAX];
        path_index(item_path, list_path, i);
        authz_slice name;
        if (!string_value(ctx, json_array_get(arr, i), item_path, NULL, &name))
            continue;
        const pol_cluster *c = pol_snapshot_find_cluster(snap, name);
        if (c)
            p->clusters[p->cluster_count++] = pol_snapshot_cluster_index(snap, c);
        else if (!ctx->cluster_names_incomplete)
            cfg_fail(ctx, item_path, json_array_get(arr, i), "names no configured cluster");
    }
    if (arr && !p->clusters)
        cfg_fail(ctx, list_path, NULL, "out of memory");

    key_sink sink = {&p->keys, &p->key_files, &p->key_file_count};
    load_key_sources(ctx, obj, path, p->issuer, sink, &p->source, &p->remote);
}

/* The issuer alone tells a provider's token from a cluster's before any
 * key is tried: two providers, or a provider and a cluster, may not share
 * one; nor may two providers share a name. */
static void check_provider_uniqueness(cfg_ctx *ctx, const pol_snapshot *snap)
{
    char path[PATH_TEXT_MAX];
    for (size_t i = 0; i < snap->provider_count; i++) {
        const pol_provider *p = &snap->providers[i];
        json_t *issuer = p->issuer.ptr ? json_stringn(p->issuer.ptr, p->issuer.len) : NULL;
        snprintf(path, sizeof path, "identity_providers[%zu].issuer", i);
        for (size_t j = 0; issuer && j < snap->cluster_count; j++) {
            const pol_cluster *c = &snap->clusters[j];
            if (authz_slice_eq(p->issuer, c->issuer))
                cfg_fail(ctx, path, issuer,
                         "is also the issuer of cluster %.*s (clusters[%zu]): a provider's issuer may be no "
                         "cluster's",
                         (int)c->name.len, c->name.ptr ? c->name.ptr : "", j);
        }
        for (size_t j = 0; issuer && j < i; j++) {
            if (authz_slice_eq(p->issuer, snap->providers[j].issuer))
                cfg_fail(ctx, path, issuer, "duplicates the issuer of identity_providers[%zu]", j);
        }
        json_decref(issuer);
        for (size_t j = 0; p->name.len > 0 && j < i; j++) {
            if (!authz_slice_eq(p->name, snap->providers[j].name))
                continue;
            snprintf(path, sizeof path, "identity_providers[%zu].name", i);
            json_t *shown = json_stringn(p->name.ptr, p->name.len);
            cfg_fail(ctx, path, shown, "duplicates the name of identity_providers[%zu]", j);
            json_decref(shown);
        }
    }
}

static void parse_providers(cfg_ctx *ctx, const json_t *root, pol_snapshot *snap)
{
    char path[PATH_TEXT_MAX];
    const json_t *arr =
        get_array(ctx, root, "", "identity_providers", false, true, POL_CONFIG_MAX_PROVIDERS, path);
    if (!arr || json_array_size(arr) == 0)
        return;
    snap->providers = calloc(json_array_size(arr), sizeof *snap->providers);
    if (!snap->providers) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    snap->provider_count = json_array_size(arr);
    for (size_t i = 0; i < snap->provider_count; i++) {
        char item_path[PATH_TEXT_MAX];
        path_index(item_path, path, i);
        parse_provider(ctx, json_array_get(arr, i), item_path, snap, &snap->providers[i]);
        snap->key_count += snap->providers[i].keys.count;
    }
    check_provider_uniqueness(ctx, snap);
}

/* ---- rules -------------------------------------------------------------- */

/* Rules match normalized paths (pol_path), so a prefix that is not in
 * that form could never match what it names: refuse it and show the form
 * to write instead. */
static void check_prefix_normalized(cfg_ctx *ctx, const json_t *rule, const char *path,
                                    pol_path_slashes slashes, authz_slice prefix)
{
    if (prefix.len == 0)
        return;
    char key_path[PATH_TEXT_MAX];
    path_key(key_path, path, "path_prefix");
    const json_t *v = json_object_get(rule, "path_prefix");
    char *normal = malloc(prefix.len);
    if (!normal) {
        cfg_fail(ctx, key_path, NULL, "out of memory");
        return;
    }
    size_t len = 0, at = 0;
    pol_path_error e = pol_path_normalize(prefix, slashes, normal, prefix.len, &len, &at);
    if (e != POL_PATH_OK)
        cfg_fail(ctx, key_path, v, "%s at byte %zu%s", pol_path_error_text(e), at,
                 e == POL_PATH_ENCODED_SLASH ? " (see escaped_slashes)" : "");
    else if (len != prefix.len || memcmp(normal, prefix.ptr, len) != 0)
        cfg_fail(ctx, key_path, v, "is not a normalized path; requests are matched as \"%.*s\"",
                 (int)(len > VALUE_TEXT_MAX ? VALUE_TEXT_MAX : len), normal);
    free(normal);
}

/* The index of lower-case header |name| in snap->condition_headers, added
 * when new; -1 (reported at |path|) when there are too many or out of
 * memory. */
static long condition_header_index(cfg_ctx *ctx, pol_snapshot *snap, authz_slice name, const char *path)
{
    for (size_t i = 0; i < snap->condition_header_count; i++) {
        if (authz_slice_eq(snap->condition_headers[i], name))
            return (long)i;
    }
    if (snap->condition_header_count == POL_MAX_CONDITION_HEADERS) {
        cfg_fail(ctx, path, NULL, "more than %u distinct header names in rule conditions",
                 POL_MAX_CONDITION_HEADERS);
        return -1;
    }
    if (!dup_slice(name.ptr, name.len, true, &snap->condition_headers[snap->condition_header_count])) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return -1;
    }
    return (long)snap->condition_header_count++;
}

/* "headers": {"x-api-version": ["v2", "v3"], "x-tenant": ["*"]}: each
 * named header present with one of the values ("*" alone: any value). */
static void get_header_conditions(cfg_ctx *ctx, const json_t *obj, const char *parent, pol_snapshot *snap,
                                  pol_rule *r)
{
    const json_t *v = json_object_get(obj, "headers");
    if (!v)
        return;
    char path[PATH_TEXT_MAX];
    path_key(path, parent, "headers");
    if (!is_object(ctx, v, path))
        return;
    size_t n = json_object_size(v);
    if (n == 0) {
        cfg_fail(ctx, path, v, "must not be empty (leave the key out instead)");
        return;
    }
    if (n > POL_MAX_RULE_HEADERS) {
        cfg_fail(ctx, path, NULL, "has %zu headers, at most %u allowed", n, POL_MAX_RULE_HEADERS);
        return;
    }
    r->headers = calloc(n, sizeof *r->headers);
    if (!r->headers) {
        cfg_fail(ctx, path, NULL, "out of memory");
        return;
    }
    const char *name;
    json_t *values;
    json_object_foreach((json_t *)v, name, values)
    {
        char name_path[PATH_TEXT_MAX];
        path_key(name_path, path, name);
        authz_slice name_slice = authz_slice_from_cstr(name);
        json_t *shown_name = json_string(name);
        const char *problem =
            name_slice.len == 0 ? "is not an HTTP header name" : check_header_name(name_slice);
        if (problem) {
            cfg_fail(ctx, name_path, shown_name, "header name %s", problem);
            json_decref(shown_name);
            continue;
        }
        json_decref(shown_name);
        pol_header_condition cond = {0, NULL, 0};
        get_string_list(ctx, v, path, name, true, false, check_header_value, &cond.values, &cond.value_count);
        if (!cond.values)
            continue;
        bool star = false;
        for (size_t i = 0; i < cond.value_count; i++)
            star = star || authz_slice_eq_cstr(cond.values[i], "*");
        if (star && cond.value_count > 1) {
            cfg_fail(ctx, name_path, values, "\"*\" (any value) must be the only value");
        }
        if (star) {
            for (size_t i = 0; i < cond.value_count; i++)
                free((void *)cond.values[i].ptr);
            cond.value_count = 0;
        }
        char lowered[NAME_MAX_BYTES];
        for (size_t i = 0; i < name_slice.len; i++)
            lowered[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
        authz_slice low = {lowered, name_slice.len};
        long index = -1;
        bool repeated = false;
        for (size_t k = 0; k < r->header_count; k++)
            repeated = repeated || authz_slice_eq(snap->condition_headers[r->headers[k].header], low);
        if (repeated)
            cfg_fail(ctx, name_path, NULL, "names the same header as another key of %s (names ignore case)",
                     path);
        else
            index = condition_header_index(ctx, snap, low, name_path);
        if (index < 0) {
            for (size_t i = 0; i < cond.value_count; i++)
                free((void *)cond.values[i].ptr);
            free(cond.values);
            continue;
        }
        cond.header = (size_t)index;
        r->headers[r->header_count++] = cond;
    }
}

static void parse_rule(cfg_ctx *ctx, const json_t *obj, const char *path, pol_snapshot *snap, pol_rule *r)
{
    static const char *const keys[] = {"name",    "clusters",   "path_prefix",      "ignore_case",
                                       "methods", "namespaces", "service_accounts", "source_cidrs",
                                       "headers", "mode",       "peer_binding",     "users",
                                       "groups",  NULL};
    if (!is_object(ctx, obj, path))
        return;
    check_keys(ctx, obj, path, keys);
    get_string(ctx, obj, path, "name", true, NULL, &r->name);
    get_string(ctx, obj, path, "path_prefix", false, check_path_prefix, &r->path_prefix);
    check_prefix_normalized(ctx, obj, path, snap->escaped_slashes, r->path_prefix);
    get_bool(ctx, obj, path, "ignore_case", &r->ignore_case);
    get_string_list(ctx, obj, path, "methods", false, false, check_method, &r->methods, &r->method_count);
    get_string_list(ctx, obj, path, "namespaces", false, false, NULL, &r->namespaces, &r->namespace_count);
    get_string_list(ctx, obj, path, "service_accounts", false, false, check_service_account,
                    &r->service_accounts, &r->service_account_count);
    get_cidr_list(ctx, obj, path, "source_cidrs", &r->source_cidrs, &r->source_cidr_count);
    get_string_list(ctx, obj, path, "users", false, false, check_principal, &r->users, &r->user_count);
    get_string_list(ctx, obj, path, "groups", false, false, check_principal, &r->groups, &r->group_count);
    get_header_conditions(ctx, obj, path, snap, r);
    get_mode(ctx, obj, path, &r->shadow);
    get_peer_binding(ctx, obj, path, &r->peer);

    char list_path[PATH_TEXT_MAX];
    const json_t *arr =
        get_array(ctx, obj, path, "clusters", false, false, POL_CONFIG_MAX_CLUSTERS, list_path);
    if (!arr)
        return;
    r->clusters = calloc(json_array_size(arr), sizeof *r->clusters);
    if (!r->clusters) {
        cfg_fail(ctx, list_path, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char item_path[PATH_TEXT_MAX];
        path_index(item_path, list_path, i);
        const json_t *v = json_array_get(arr, i);
        authz_slice name;
        if (!string_value(ctx, v, item_path, NULL, &name))
            continue;
        const pol_cluster *c = pol_snapshot_find_cluster(snap, name);
        if (!c) {
            if (!ctx->cluster_names_incomplete)
                cfg_fail(ctx, item_path, v, "names no configured cluster");
            continue;
        }
        r->clusters[r->cluster_count++] = pol_snapshot_cluster_index(snap, c);
    }
}

/* ---- top level ---------------------------------------------------------- */

/* "escaped_slashes": "reject" (the default) or "keep". */
static void get_escaped_slashes(cfg_ctx *ctx, const json_t *root, pol_path_slashes *out)
{
    const json_t *v = json_object_get(root, "escaped_slashes");
    authz_slice s;
    if (!v || !string_value(ctx, v, "escaped_slashes", NULL, &s))
        return;
    if (authz_slice_eq_cstr(s, "reject"))
        *out = POL_PATH_SLASHES_REJECT;
    else if (authz_slice_eq_cstr(s, "keep"))
        *out = POL_PATH_SLASHES_KEEP;
    else
        cfg_fail(ctx, "escaped_slashes", v, "must be \"reject\" or \"keep\"");
}

/* Request bytes held for undecided calls. Absent, each bound defaults to its
 * fixed size but never below what it must hold (one whole message per
 * connection, one connection's worth per worker); given, it must hold that. */
static void parse_buffer_bounds(cfg_ctx *ctx, const json_t *root, pol_server_settings *server)
{
    const json_t *conn = json_object_get(root, "max_buffered_bytes_per_connection");
    const json_t *worker = json_object_get(root, "max_buffered_bytes_per_worker");

    get_size(ctx, root, "", "max_buffered_bytes_per_connection", POL_BUFFERED_MIN, POL_BUFFERED_MAX,
             &server->max_buffered_bytes_per_connection);
    get_size(ctx, root, "", "max_buffered_bytes_per_worker", POL_BUFFERED_MIN, POL_BUFFERED_MAX,
             &server->max_buffered_bytes_per_worker);
    if (server->max_buffered_bytes_per_connection < server->max_message_bytes) {
        if (conn) {
            cfg_fail(ctx, "max_buffered_bytes_per_connection", conn,
                     "must be at least max_message_bytes (%zu), or no message of that size could arrive",
                     server->max_message_bytes);
        }
        server->max_buffered_bytes_per_connection = server->max_message_bytes;
    }
    if (server->max_buffered_bytes_per_worker < server->max_buffered_bytes_per_connection) {
        if (worker) {
            cfg_fail(ctx, "max_buffered_bytes_per_worker", worker,
                     "must be at least max_buffered_bytes_per_connection (%zu)",
                     server->max_buffered_bytes_per_connection);
        }
        server->max_buffered_bytes_per_worker = server->max_buffered_bytes_per_connection;
    }
}

static void parse_top(cfg_ctx *ctx, const json_t *root, pol_snapshot *snap)
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
    check_keys(ctx, root, "", keys);
    /* "$schema" names config.schema.json for editors: a string, else unused. */
    const json_t *schema = json_object_get(root, "$schema");
    authz_slice schema_ref;
    if (schema)
        string_value(ctx, schema, "$schema", NULL, &schema_ref);
    get_string(ctx, root, "", "listen", false, check_listen, &snap->server.listen);
    get_size(ctx, root, "", "workers", 0, 256, &snap->server.workers);
    get_int(ctx, root, "", "clock_skew_seconds", 0, 3600, &snap->clock_skew);
    get_size(ctx, root, "", "max_token_bytes", 256, 1048576, &snap->max_token_bytes);
    get_size(ctx, root, "", "max_message_bytes", 1024, 67108864, &snap->server.max_message_bytes);
    get_size(ctx, root, "", "max_connections", 1, 1000000, &snap->server.max_connections);
    get_size(ctx, root, "", "max_concurrent_streams", 1, 65536, &snap->server.max_concurrent_streams);
    get_size(ctx, root, "", "trusted_proxy_hops", 0, 16, &snap->server.trusted_proxy_hops);
    get_size(ctx, root, "", "idle_timeout_seconds", 0, 86400, &snap->server.idle_timeout_seconds);
    get_size(ctx, root, "", "request_timeout_seconds", 1, 3600, &snap->server.request_timeout_seconds);
    get_size(ctx, root, "", "send_timeout_seconds", 1, 3600, &snap->server.send_timeout_seconds);
    parse_buffer_bounds(ctx, root, &snap->server);
    get_bool(ctx, root, "", "log_decisions", &snap->server.log_decisions);
    get_size(ctx, root, "", "max_kidless_keys", 0, 1024, &snap->max_kidless_keys);
    get_escaped_slashes(ctx, root, &snap->escaped_slashes);
    get_string(ctx, root, "", "admin_listen", false, check_listen, &snap->server.admin_listen);
    get_bool(ctx, root, "", "watch_config", &snap->server.watch_config);
    parse_tls(ctx, root, &snap->server.tls);
    /* Indexed by pol_deny_details. */
    static const char *const deny_details[] = {"generic", "full", NULL};
    int details = (int)snap->server.deny_details;
    get_choice(ctx, root, "", "deny_details", deny_details, &details);
    snap->server.deny_details = (pol_deny_details)details;
    get_string(ctx, root, "", "http_listen", false, check_listen, &snap->server.http_listen);
    /* Indexed by pol_http_style. */
    static const char *const http_styles[] = {"envoy", "forwarded", "original", NULL};
    int style = (int)snap->server.http_style;
    get_choice(ctx, root, "", "http_style", http_styles, &style);
    snap->server.http_style = (pol_http_style)style;
    /* At least 1: the HTTP listener's peer is the proxy, never the client. */
    get_size(ctx, root, "", "http_trusted_proxy_hops", 1, 16, &snap->server.http_trusted_proxy_hops);
    get_bool(ctx, root, "", "http_trust_x_real_ip", &snap->server.http_trust_x_real_ip);
    const json_t *cache = json_object_get(root, "token_cache");
    if (cache && is_object(ctx, cache, "token_cache")) {
        static const char *const cache_keys[] = {"size", NULL};
        check_keys(ctx, cache, "token_cache", cache_keys);
        get_size(ctx, cache, "token_cache", "size", 0, 10000000, &snap->server.token_cache_size);
    }

    char path[PATH_TEXT_MAX];
    const json_t *clusters = get_array(ctx, root, "", "clusters", true, false, POL_CONFIG_MAX_CLUSTERS, path);
    ctx->cluster_names_incomplete = clusters == NULL;
    if (clusters) {
        snap->clusters = calloc(json_array_size(clusters), sizeof *snap->clusters);
        if (!snap->clusters) {
            cfg_fail(ctx, path, NULL, "out of memory");
            return;
        }
        snap->cluster_count = json_array_size(clusters);
        for (size_t i = 0; i < snap->cluster_count; i++) {
            char item_path[PATH_TEXT_MAX];
            path_index(item_path, path, i);
            parse_cluster(ctx, json_array_get(clusters, i), item_path, &snap->clusters[i]);
            snap->key_count += snap->clusters[i].keys.count;
            if (snap->clusters[i].name.len == 0)
                ctx->cluster_names_incomplete = true;
        }
        check_cluster_uniqueness(ctx, snap);
    }
    parse_providers(ctx, root, snap);
    if (pol_lint_shared_keys(snap, lint_error, ctx) != 0)
        cfg_fail(ctx, "clusters", NULL, "out of memory");

    const json_t *rules = get_array(ctx, root, "", "rules", false, true, POL_CONFIG_MAX_RULES, path);
    if (rules && json_array_size(rules) > 0) {
        snap->rules = calloc(json_array_size(rules), sizeof *snap->rules);
        if (!snap->rules) {
            cfg_fail(ctx, path, NULL, "out of memory");
            return;
        }
        snap->rule_count = json_array_size(rules);
        for (size_t i = 0; i < snap->rule_count; i++) {
            char item_path[PATH_TEXT_MAX];
            path_index(item_path, path, i);
            parse_rule(ctx, json_array_get(rules, i), item_path, snap, &snap->rules[i]);
            check_peer_tightens(ctx, json_array_get(rules, i), item_path, snap, &snap->rules[i]);
            for (size_t j = 0; j < i; j++) {
                if (snap->rules[i].name.len > 0 && authz_slice_eq(snap->rules[i].name, snap->rules[j].name)) {
                    char name_path[PATH_TEXT_MAX];
                    path_key(name_path, item_path, "name");
                    cfg_fail(ctx, name_path, json_object_get(json_array_get(rules, i), "name"),
                             "duplicates the name of rules[%zu]", j);
                }
            }
        }
    }
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
    if (!dup_slice(path, strlen(path), false, &snap->path) ||
        !dup_slice("127.0.0.1:9191", strlen("127.0.0.1:9191"), false, &snap->server.listen)) {
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
    cfg_ctx ctx = {.file = path, .err = err, .err_size = err_size};
    char why[256];

    *out = NULL;
    if (err && err_size > 0)
        err[0] = '\0';
    ctx.dir = dir_of(path);
    if (!ctx.dir) {
        cfg_fail(&ctx, "", NULL, "out of memory");
        goto cleanup;
    }
    if (read_file_bounded(path, POL_CONFIG_MAX_FILE_BYTES, &text, &len, why, sizeof why) != 0) {
        cfg_fail(&ctx, "", NULL, "%s", why);
        goto cleanup;
    }
    json_error_t jerr;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char line[512];
        snprintf(line, sizeof line, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        ctx.errors++;
        err_append(&ctx, line);
        goto cleanup;
    }
    if (!is_object(&ctx, root, ""))
        goto cleanup;
    snap = snapshot_new(path);
    if (!snap) {
        cfg_fail(&ctx, "", NULL, "out of memory");
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
