#include "authz_jwt.h"

#include <stdlib.h>
#include <string.h>

#include "authz_b64.h"

/* Largest decoded signature: RSA-8192 is 1024 bytes (ES512 is 132). */
#define JWT_MAX_SIGNATURE 1024u
/* Longest alg or claim value quoted in a message. */
#define JWT_SHOWN 32

authz_jwt_limits authz_jwt_default_limits(void)
{
    authz_jwt_limits limits = {AUTHZ_JWT_DEFAULT_MAX_TOKEN, AUTHZ_JWT_DEFAULT_MAX_DEPTH};
    return limits;
}

static bool is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Exact decoded size of a base64url segment; lengths of 1 mod 4 fail later. */
static size_t b64url_decoded_len(size_t len)
{
    size_t rest = len % 4;
    return len / 4 * 3 + (rest == 2 ? 1 : rest == 3 ? 2 : 0);
}

/* Deepest array/object nesting outside strings. jansson 2.14 only has a
 * compile-time limit, so this bounds recursion before json_loadb runs. */
static size_t json_depth(const unsigned char *text, size_t len, size_t stop_above)
{
    size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth > deepest)
                deepest = depth;
            if (deepest > stop_above)
                return deepest;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

/* Decodes one segment and parses it as a JSON object. */
static int decode_json(authz_slice segment, const char *what, const authz_jwt_limits *limits, json_t **out,
                       authz_status *status)
{
    int rc = -1;
    json_t *root = NULL;
    size_t cap = authz_b64url_decoded_max(segment.len);
    unsigned char *buf = malloc(cap);
    if (!buf) {
        authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory decoding the %s", what);
        goto cleanup;
    }
    long n = authz_b64url_decode(segment, buf, cap);
    if (n < 0) {
        authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "%s is not canonical base64url", what);
        goto cleanup;
    }
    size_t len = (size_t)n;
    if (json_depth(buf, len, limits->max_json_depth) > limits->max_json_depth) {
        authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "%s JSON nests deeper than %zu", what,
                         limits->max_json_depth);
        goto cleanup;
    }
    /* jansson leaves the error code unset, and the text empty, when its very
     * first allocation fails: zeroing tells that case apart from bad JSON. */
    json_error_t err;
    memset(&err, 0, sizeof err);
    root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!root && (json_error_code(&err) == json_error_out_of_memory || err.text[0] == '\0')) {
        authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory parsing the %s", what);
        goto cleanup;
    }
    if (!root) {
        authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "%s is not valid JSON: %s", what, err.text);
        goto cleanup;
    }
    if (!json_is_object(root)) {
        authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "%s is not a JSON object", what);
        goto cleanup;
    }
    *out = root;
    root = NULL;
    rc = 0;
cleanup:
    json_decref(root);
    free(buf);
    return rc;
}

static authz_slice json_slice(const json_t *s)
{
    authz_slice out = {json_string_value(s), json_string_length(s)};
    return out;
}

/* Reads optional string member |key| of |obj|. Returns -1 (status set) when
 * present but not a string. */
static int get_str(const json_t *obj, const char *key, const char *where, authz_jwt_str *out,
                   authz_status *status)
{
    const json_t *v = json_object_get(obj, key);
    out->present = false;
    out->value.ptr = NULL;
    out->value.len = 0;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "%s%s is not a string", where, key);
    out->present = true;
    out->value = json_slice(v);
    return 0;
}

/* NumericDate (RFC 7519 §2): an integer, or a real floored to one that fits int64. */
static authz_jwt_time numeric_date(const json_t *v)
{
    authz_jwt_time t = {AUTHZ_JWT_TIME_ABSENT, 0};
    if (!v)
        return t;
    t.state = AUTHZ_JWT_TIME_INVALID;
    if (json_is_integer(v)) {
        t.state = AUTHZ_JWT_TIME_VALID;
        t.seconds = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        /* Both bounds are exact powers of two; the range check keeps the cast defined. */
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
            int64_t s = (int64_t)d;
            if ((double)s > d)
                s--; /* the cast truncated a negative value toward zero */
            t.state = AUTHZ_JWT_TIME_VALID;
            t.seconds = s;
        }
    }
    return t;
}

/* Reads an optional {name, uid} object member of kubernetes.io. */
static int get_ref(const json_t *k8s, const char *key, authz_jwt_str *name, authz_jwt_str *uid,
                   authz_status *status)
{
    const json_t *ref = json_object_get(k8s, key);
    name->present = uid->present = false;
    if (!ref)
        return 0;
    if (!json_is_object(ref))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "kubernetes.io.%s is not an object",
                                key);
    char where[48];
    snprintf(where, sizeof where, "kubernetes.io.%s.", key);
    if (get_str(ref, "name", where, name, status) != 0 || get_str(ref, "uid", where, uid, status) != 0)
        return -1;
    return 0;
}

static int parse_header(authz_jwt *jwt, authz_status *status)
{
    const json_t *h = jwt->header_json;
    if (json_object_get(h, "crit"))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "crit header not supported");
    const json_t *alg = json_object_get(h, "alg");
    if (!alg)
        return authz_status_set(status, AUTHZ_REASON_UNSUPPORTED_ALG, "token header has no alg");
    if (!json_is_string(alg))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "header alg is not a string");
    if (get_str(h, "kid", "header ", &jwt->kid, status) != 0 ||
        get_str(h, "typ", "header ", &jwt->typ, status) != 0)
        return -1;
    /* jwk, jku, x5u and x5c are never read: keys come from configuration only. */
    jwt->alg_name = json_slice(alg);
    jwt->alg = authz_alg_from_name(jwt->alg_name);
    if (jwt->alg == AUTHZ_ALG_UNSUPPORTED) {
        size_t shown = jwt->alg_name.len < JWT_SHOWN ? jwt->alg_name.len : JWT_SHOWN;
        return authz_status_set(status, AUTHZ_REASON_UNSUPPORTED_ALG, "alg \"%.*s\" is not supported",
                                (int)shown, jwt->alg_name.ptr);
    }
    return 0;
}

static int parse_audience(authz_jwt *jwt, const json_t *aud, authz_status *status)
{
    if (!aud)
        return 0;
    if (json_is_string(aud)) {
        jwt->aud = malloc(sizeof *jwt->aud);
        if (!jwt->aud)
            return authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory reading aud");
        jwt->aud[0] = json_slice(aud);
        jwt->aud_count = 1;
        jwt->aud_present = true;
        return 0;
    }
    if (!json_is_array(aud))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "aud is neither a string nor an array");
    size_t n = json_array_size(aud);
    if (n > AUTHZ_JWT_MAX_AUDIENCES)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "aud has %zu entries, limit %u", n,
                                AUTHZ_JWT_MAX_AUDIENCES);
    for (size_t i = 0; i < n; i++) {
        if (!json_is_string(json_array_get(aud, i)))
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "aud[%zu] is not a string", i);
    }
    if (n > 0) {
        jwt->aud = malloc(n * sizeof *jwt->aud);
        if (!jwt->aud)
            return authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory reading aud");
        for (size_t i = 0; i < n; i++)
            jwt->aud[i] = json_slice(json_array_get(aud, i));
    }
    jwt->aud_count = n;
    jwt->aud_present = true;
    return 0;
}

static int parse_kubernetes(authz_jwt *jwt, const json_t *k8s, authz_status *status)
{
    if (!k8s)
        return 0;
    if (!json_is_object(k8s))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "kubernetes.io is not an object");
    jwt->k8s_present = true;
    if (get_str(k8s, "namespace", "kubernetes.io.", &jwt->k8s_namespace, status) != 0 ||
        get_ref(k8s, "serviceaccount", &jwt->k8s_sa_name, &jwt->k8s_sa_uid, status) != 0 ||
        get_ref(k8s, "pod", &jwt->k8s_pod_name, &jwt->k8s_pod_uid, status) != 0 ||
        get_ref(k8s, "node", &jwt->k8s_node_name, &jwt->k8s_node_uid, status) != 0)
        return -1;
    jwt->k8s_warnafter = numeric_date(json_object_get(k8s, "warnafter"));
    if (jwt->k8s_warnafter.state == AUTHZ_JWT_TIME_INVALID)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                "kubernetes.io.warnafter is not a NumericDate");
    return 0;
}

static int parse_payload(authz_jwt *jwt, authz_status *status)
{
    const json_t *p = jwt->payload_json;
    if (get_str(p, "iss", "", &jwt->iss, status) != 0 || get_str(p, "sub", "", &jwt->sub, status) != 0)
        return -1;
    if (parse_audience(jwt, json_object_get(p, "aud"), status) != 0)
        return -1;
    jwt->exp = numeric_date(json_object_get(p, "exp"));
    jwt->nbf = numeric_date(json_object_get(p, "nbf"));
    jwt->iat = numeric_date(json_object_get(p, "iat"));
    return parse_kubernetes(jwt, json_object_get(p, "kubernetes.io"), status);
}

/* Splits |token| into its three segments, checking form only. */
static int split_token(authz_slice token, size_t max_bytes, authz_slice seg[3], authz_status *status)
{
    if (!token.ptr || token.len == 0)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "token is empty");
    if (token.len > max_bytes)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "token is %zu bytes, limit %zu",
                                token.len, max_bytes);
    if (token.ptr[0] == '{')
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "JSON-serialized JWS is not accepted");
    size_t dots[2];
    size_t ndots = 0;
    for (size_t i = 0; i < token.len; i++) {
        char c = token.ptr[i];
        if (c == '.') {
            if (ndots == 2)
                return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                        "token has more than three segments (JWE or nested token?)");
            dots[ndots++] = i;
        } else if (!is_b64url_char(c)) {
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                    "token has a character outside base64url at offset %zu", i);
        }
    }
    if (ndots != 2)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "token has %zu segments, expected 3",
                                ndots + 1);
    seg[0] = (authz_slice){token.ptr, dots[0]};
    seg[1] = (authz_slice){token.ptr + dots[0] + 1, dots[1] - dots[0] - 1};
    seg[2] = (authz_slice){token.ptr + dots[1] + 1, token.len - dots[1] - 1};
    static const char *const names[3] = {"header", "payload", "signature"};
    for (int i = 0; i < 3; i++) {
        if (seg[i].len == 0)
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "token %s segment is empty",
                                    names[i]);
    }
    return 0;
}

int authz_jwt_parse(authz_slice token, const authz_jwt_limits *limits, authz_jwt *out, authz_status *status)
{
    int rc = -1;
    authz_jwt jwt;
    memset(&jwt, 0, sizeof jwt);
    memset(out, 0, sizeof *out);
    authz_jwt_limits defaults = authz_jwt_default_limits();
    if (!limits)
        limits = &defaults;

    authz_slice seg[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
    if (split_token(token, limits->max_token_bytes, seg, status) != 0)
        goto cleanup;
    size_t sig_len = b64url_decoded_len(seg[2].len);
    if (sig_len > JWT_MAX_SIGNATURE) {
        authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "signature is %zu bytes, limit %u", sig_len,
                         JWT_MAX_SIGNATURE);
        goto cleanup;
    }
    if (decode_json(seg[0], "header", limits, &jwt.header_json, status) != 0)
        goto cleanup;
    if (parse_header(&jwt, status) != 0)
        goto cleanup;
    if (decode_json(seg[1], "payload", limits, &jwt.payload_json, status) != 0)
        goto cleanup;
    if (parse_payload(&jwt, status) != 0)
        goto cleanup;

    size_t sig_cap = authz_b64url_decoded_max(seg[2].len);
    jwt.signature = malloc(sig_cap);
    if (!jwt.signature) {
        authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory decoding the signature");
        goto cleanup;
    }
    long n = authz_b64url_decode(seg[2], jwt.signature, sig_cap);
    if (n < 0) {
        authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "signature is not canonical base64url");
        goto cleanup;
    }
    jwt.signature_len = (size_t)n;
    jwt.signing_input = (authz_slice){token.ptr, seg[0].len + 1 + seg[1].len};

    *out = jwt;
    memset(&jwt, 0, sizeof jwt);
    rc = authz_status_set(status, AUTHZ_REASON_OK, "ok");
cleanup:
    authz_jwt_free(&jwt);
    return rc;
}

void authz_jwt_free(authz_jwt *jwt)
{
    json_decref(jwt->header_json);
    json_decref(jwt->payload_json);
    free(jwt->signature);
    free(jwt->aud);
    memset(jwt, 0, sizeof *jwt);
}

int authz_jwt_cidr_claim(const authz_jwt *jwt, const char *claim, authz_cidr *out, size_t max, size_t *count)
{
    *count = 0;
    const json_t *v = jwt->payload_json ? json_object_get(jwt->payload_json, claim) : NULL;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return -1;
    size_t n = json_array_size(v);
    if (n == 0 || n > AUTHZ_JWT_MAX_CIDRS || n > max)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        if (!json_is_string(item) || authz_cidr_parse(json_slice(item), &out[i]) != 0)
            return -1;
    }
    *count = n;
    return 1;
}
