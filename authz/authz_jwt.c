#include "authz_jwt.h"

#include <stdio.h>
#include <string.h>

#include "authz_b64.h"

/* Largest decoded signature: RSA-8192 is 1024 bytes (ES512 is 132). */
#define JWT_MAX_SIGNATURE 1024u
/* Longest alg or claim value quoted in a message. */
#define JWT_SHOWN 32

authz_jwt_limits authz_jwt_default_limits(void)
{
    authz_jwt_limits limits = {AUTHZ_JWT_DEFAULT_MAX_TOKEN, AUTHZ_JWT_DEFAULT_MAX_DEPTH,
                               AUTHZ_JWT_DEFAULT_MAX_NODES};
    return limits;
}

static size_t max_nodes(const authz_jwt_limits *limits)
{
    return limits->max_json_nodes ? limits->max_json_nodes : AUTHZ_JWT_DEFAULT_MAX_NODES;
}

size_t authz_jwt_arena_bound(const authz_jwt_limits *limits)
{
    authz_jwt_limits defaults = authz_jwt_default_limits();
    if (!limits)
        limits = &defaults;
    /* Alignment padding plus a chunk header, counted for every request. */
    const size_t per_alloc = 64;
    size_t token = limits->max_token_bytes;
    size_t nodes = max_nodes(limits);
    size_t text = token / 4 * 3 + 3;                     /* decoded header + payload */
    size_t escaped = text;                               /* unescaped strings are never longer */
    size_t tapes = 2 * (nodes + 1) * sizeof(authz_json); /* node arrays */
    size_t fixed = AUTHZ_JWT_MAX_AUDIENCES * sizeof(authz_slice) + JWT_MAX_SIGNATURE + 4;
    size_t allocs = 2 * nodes + 6; /* texts, tapes, escaped strings, aud, signature */
    return text + escaped + tapes + fixed + allocs * per_alloc;
}

/* 1 for the base64url alphabet (RFC 4648 §5), 0 for every other byte. */
static const unsigned char b64url_char[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, /* 0x20: '-' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0x30: 0-9 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40: A-O */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, /* 0x50: P-Z '_' */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60: a-o */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, /* 0x70: p-z */
};

/* End of the run of base64url bytes starting at |i|: four bytes a step,
 * then one at a time. */
static size_t b64url_run(const unsigned char *p, size_t i, size_t len)
{
    while (len - i >= 4 &&
           (b64url_char[p[i]] & b64url_char[p[i + 1]] & b64url_char[p[i + 2]] & b64url_char[p[i + 3]]))
        i += 4;
    while (i < len && b64url_char[p[i]])
        i++;
    return i;
}

/* Exact decoded size of a base64url segment; lengths of 1 mod 4 fail later. */
static size_t b64url_decoded_len(size_t len)
{
    size_t rest = len % 4;
    return len / 4 * 3 + (rest == 2 ? 1 : rest == 3 ? 2 : 0);
}

/* Decodes one segment into the arena and parses it as a JSON object. */
static int decode_json(authz_slice segment, const char *what, const authz_jwt_limits *limits,
                       authz_arena *arena, authz_slice *text, const authz_json **root, authz_status *status)
{
    size_t cap = authz_b64url_decoded_max(segment.len);
    unsigned char *buf = authz_arena_alloc(arena, cap);
    if (!buf)
        return authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory decoding the %s", what);
    long n = authz_b64url_decode(segment, buf, cap);
    if (n < 0)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "%s is not canonical base64url", what);
    authz_json_limits json_limits = {limits->max_json_depth, max_nodes(limits), AUTHZ_JWT_MAX_MEMBERS, false};
    authz_json_error err;
    if (authz_json_parse((const char *)buf, (size_t)n, &json_limits, arena, root, &err) != 0) {
        if (err.code == AUTHZ_JSON_ENOMEM)
            return authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory parsing the %s",
                                    what);
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                "%s is not valid JSON: %s at offset %zu", what, err.message, err.offset);
    }
    if (authz_json_type_of(*root) != AUTHZ_JSON_OBJECT)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "%s is not a JSON object", what);
    text->ptr = (const char *)buf;
    text->len = (size_t)n;
    return 0;
}

/* No enclosing kubernetes.io member, for get_str. */
#define NO_REF ((authz_slice){"", 0})

/* Reads optional string member |key| of |obj|. Returns -1 (status set) when
 * present but not a string; the message names it |where| (and |ref|, a
 * kubernetes.io member the object is, when not empty) followed by |key|. */
static int get_str(const authz_json *obj, authz_slice key, const char *where, authz_slice ref,
                   authz_jwt_str *out, authz_status *status)
{
    const authz_json *v = authz_json_get(obj, key);
    out->present = false;
    out->value.ptr = NULL;
    out->value.len = 0;
    if (!v)
        return 0;
    if (!authz_json_string(v, &out->value))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "%s%.*s%s%.*s is not a string", where,
                                (int)ref.len, ref.ptr, ref.len ? "." : "", (int)key.len, key.ptr);
    out->present = true;
    return 0;
}

/* NumericDate (RFC 7519 §2): an integer, or a real floored to one that fits int64. */
static authz_jwt_time numeric_date(const authz_json *v)
{
    authz_jwt_time t = {AUTHZ_JWT_TIME_ABSENT, 0};
    if (!v)
        return t;
    t.state = AUTHZ_JWT_TIME_INVALID;
    double d = 0;
    if (authz_json_int(v, &t.seconds)) {
        t.state = AUTHZ_JWT_TIME_VALID;
    } else if (authz_json_real(v, &d)) {
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
static int get_ref(const authz_json *k8s, authz_slice key, authz_jwt_str *name, authz_jwt_str *uid,
                   authz_status *status)
{
    const authz_json *ref = authz_json_get(k8s, key);
    name->present = uid->present = false;
    if (!ref)
        return 0;
    if (authz_json_type_of(ref) != AUTHZ_JSON_OBJECT)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "kubernetes.io.%.*s is not an object",
                                (int)key.len, key.ptr);
    if (get_str(ref, AUTHZ_SLICE_LIT("name"), "kubernetes.io.", key, name, status) != 0 ||
        get_str(ref, AUTHZ_SLICE_LIT("uid"), "kubernetes.io.", key, uid, status) != 0)
        return -1;
    return 0;
}

static int parse_header(authz_jwt *jwt, authz_status *status)
{
    const authz_json *h = jwt->header;
    if (authz_json_get(h, AUTHZ_SLICE_LIT("crit")))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "crit header not supported");
    const authz_json *alg = authz_json_get(h, AUTHZ_SLICE_LIT("alg"));
    if (!alg)
        return authz_status_set(status, AUTHZ_REASON_UNSUPPORTED_ALG, "token header has no alg");
    if (!authz_json_string(alg, &jwt->alg_name))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "header alg is not a string");
    if (get_str(h, AUTHZ_SLICE_LIT("kid"), "header ", NO_REF, &jwt->kid, status) != 0 ||
        get_str(h, AUTHZ_SLICE_LIT("typ"), "header ", NO_REF, &jwt->typ, status) != 0)
        return -1;
    /* jwk, jku, x5u and x5c are never read: keys come from configuration only. */
    jwt->alg = authz_alg_from_name(jwt->alg_name);
    if (jwt->alg == AUTHZ_ALG_UNSUPPORTED) {
        size_t shown = jwt->alg_name.len < JWT_SHOWN ? jwt->alg_name.len : JWT_SHOWN;
        return authz_status_set(status, AUTHZ_REASON_UNSUPPORTED_ALG, "alg \"%.*s\" is not supported",
                                (int)shown, jwt->alg_name.ptr);
    }
    return 0;
}

static int parse_audience(authz_jwt *jwt, const authz_json *aud, authz_arena *arena, authz_status *status)
{
    if (!aud)
        return 0;
    authz_slice one;
    if (authz_json_string(aud, &one)) {
        jwt->aud = authz_arena_alloc(arena, sizeof *jwt->aud);
        if (!jwt->aud)
            return authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory reading aud");
        jwt->aud[0] = one;
        jwt->aud_count = 1;
        jwt->aud_present = true;
        return 0;
    }
    if (authz_json_type_of(aud) != AUTHZ_JSON_ARRAY)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "aud is neither a string nor an array");
    size_t n = authz_json_count(aud);
    if (n > AUTHZ_JWT_MAX_AUDIENCES)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "aud has %zu entries, limit %u", n,
                                AUTHZ_JWT_MAX_AUDIENCES);
    if (n > 0) {
        jwt->aud = authz_arena_alloc(arena, n * sizeof *jwt->aud);
        if (!jwt->aud)
            return authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory reading aud");
        for (size_t i = 0; i < n; i++) {
            if (!authz_json_string(authz_json_at(aud, i), &jwt->aud[i]))
                return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "aud[%zu] is not a string", i);
        }
    }
    jwt->aud_count = n;
    jwt->aud_present = true;
    return 0;
}

static int parse_kubernetes(authz_jwt *jwt, const authz_json *k8s, authz_status *status)
{
    if (!k8s)
        return 0;
    if (authz_json_type_of(k8s) != AUTHZ_JSON_OBJECT)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "kubernetes.io is not an object");
    jwt->k8s_present = true;
    if (get_str(k8s, AUTHZ_SLICE_LIT("namespace"), "kubernetes.io.", NO_REF, &jwt->k8s_namespace, status) !=
            0 ||
        get_ref(k8s, AUTHZ_SLICE_LIT("serviceaccount"), &jwt->k8s_sa_name, &jwt->k8s_sa_uid, status) != 0 ||
        get_ref(k8s, AUTHZ_SLICE_LIT("pod"), &jwt->k8s_pod_name, &jwt->k8s_pod_uid, status) != 0 ||
        get_ref(k8s, AUTHZ_SLICE_LIT("node"), &jwt->k8s_node_name, &jwt->k8s_node_uid, status) != 0)
        return -1;
    jwt->k8s_warnafter = numeric_date(authz_json_get(k8s, AUTHZ_SLICE_LIT("warnafter")));
    if (jwt->k8s_warnafter.state == AUTHZ_JWT_TIME_INVALID)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                "kubernetes.io.warnafter is not a NumericDate");
    return 0;
}

static int parse_payload(authz_jwt *jwt, authz_arena *arena, authz_status *status)
{
    const authz_json *p = jwt->payload;
    if (get_str(p, AUTHZ_SLICE_LIT("iss"), "", NO_REF, &jwt->iss, status) != 0 ||
        get_str(p, AUTHZ_SLICE_LIT("sub"), "", NO_REF, &jwt->sub, status) != 0)
        return -1;
    if (parse_audience(jwt, authz_json_get(p, AUTHZ_SLICE_LIT("aud")), arena, status) != 0)
        return -1;
    jwt->exp = numeric_date(authz_json_get(p, AUTHZ_SLICE_LIT("exp")));
    jwt->nbf = numeric_date(authz_json_get(p, AUTHZ_SLICE_LIT("nbf")));
    jwt->iat = numeric_date(authz_json_get(p, AUTHZ_SLICE_LIT("iat")));
    return parse_kubernetes(jwt, authz_json_get(p, AUTHZ_SLICE_LIT("kubernetes.io")), status);
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
    const unsigned char *p = (const unsigned char *)token.ptr;
    for (size_t i = b64url_run(p, 0, token.len); i < token.len; i = b64url_run(p, i + 1, token.len)) {
        if (p[i] != '.')
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                    "token has a character outside base64url at offset %zu", i);
        if (ndots == 2)
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                    "token has more than three segments (JWE or nested token?)");
        dots[ndots++] = i;
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

int authz_jwt_parse(authz_slice token, const authz_jwt_limits *limits, authz_arena *arena, authz_jwt *out,
                    authz_status *status)
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
    if (decode_json(seg[0], "header", limits, arena, &jwt.header_text, &jwt.header, status) != 0)
        goto cleanup;
    if (parse_header(&jwt, status) != 0)
        goto cleanup;
    if (decode_json(seg[1], "payload", limits, arena, &jwt.payload_text, &jwt.payload, status) != 0)
        goto cleanup;
    if (parse_payload(&jwt, arena, status) != 0)
        goto cleanup;

    size_t sig_cap = authz_b64url_decoded_max(seg[2].len);
    jwt.signature = authz_arena_alloc(arena, sig_cap);
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
    rc = authz_status_ok(status);
cleanup:
    return rc;
}

int authz_jwt_cidr_claim(const authz_jwt *jwt, const char *claim, authz_cidr *out, size_t max, size_t *count)
{
    *count = 0;
    const authz_json *v = authz_json_get(jwt->payload, authz_slice_from_cstr(claim));
    if (!v)
        return 0;
    if (authz_json_type_of(v) != AUTHZ_JSON_ARRAY)
        return -1;
    size_t n = authz_json_count(v);
    if (n == 0 || n > AUTHZ_JWT_MAX_CIDRS || n > max)
        return -1;
    for (size_t i = 0; i < n; i++) {
        authz_slice text;
        if (!authz_json_string(authz_json_at(v, i), &text) || authz_cidr_parse(text, &out[i]) != 0)
            return -1;
    }
    *count = n;
    return 1;
}
