#include "srv_httpauth.h"

#include <stdio.h>
#include <string.h>

#include "authz_reason.h"
#include "srv_checkresp.h"
#include "srv_extauthz.h"

#define CLUSTER_PREFIX "/clusters/"

static bool lower_eq(authz_slice a, const char *lower)
{
    size_t n = strlen(lower);

    if (a.len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a.ptr[i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + 32);
        }
        if (c != (unsigned char)lower[i]) {
            return false;
        }
    }
    return true;
}

/* A header's value and on how many lines it came (0: absent). */
typedef struct found_header {
    authz_slice value;
    size_t count;
} found_header;

static found_header find(const srv_httpauth_request *in, const char *lower_name)
{
    found_header f = {{NULL, 0}, 0};

    for (size_t i = 0; i < in->header_count; i++) {
        if (lower_eq(in->headers[i].name, lower_name)) {
            if (f.count == 0) {
                f.value = in->headers[i].value;
            }
            f.count++;
        }
    }
    return f;
}

static authz_slice trim(authz_slice s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

/* Splits /clusters/<name><rest> off |target|: true with |name| and |rest|
 * (which starts at the '/', '?' or end after the name). */
static bool cluster_prefix(authz_slice target, authz_slice *name, authz_slice *rest)
{
    const authz_slice prefix = AUTHZ_SLICE_LIT(CLUSTER_PREFIX);
    size_t end = prefix.len;

    if (!authz_slice_has_prefix(target, prefix)) {
        return false;
    }
    while (end < target.len && target.ptr[end] != '/' && target.ptr[end] != '?') {
        end++;
    }
    *name = (authz_slice){target.ptr + prefix.len, end - prefix.len};
    *rest = (authz_slice){target.ptr + end, target.len - end};
    return true;
}

/* The header the style needs: exactly one line, else |why| is the reason. */
static authz_slice required(const srv_httpauth_request *in, const char *lower_name, srv_httpauth_view *view,
                            const char *why)
{
    found_header f = find(in, lower_name);

    if (f.count != 1 && view->malformed == NULL) {
        view->malformed = why;
    }
    return f.count == 1 ? f.value : (authz_slice){NULL, 0};
}

/* scheme://authority/path?query -> host (authority) and path; false when
 * it is not of that form or carries userinfo. */
static bool split_url(authz_slice url, authz_slice *host, authz_slice *path)
{
    size_t i = 0;
    size_t start;

    while (i + 2 < url.len && !(url.ptr[i] == ':' && url.ptr[i + 1] == '/' && url.ptr[i + 2] == '/')) {
        if (url.ptr[i] == '/' || url.ptr[i] == '?') {
            return false;
        }
        i++;
    }
    if (i == 0 || i + 2 >= url.len) {
        return false;
    }
    start = i + 3;
    i = start;
    while (i < url.len && url.ptr[i] != '/' && url.ptr[i] != '?' && url.ptr[i] != '#') {
        if (url.ptr[i] == '@') {
            return false;
        }
        i++;
    }
    *host = (authz_slice){url.ptr + start, i - start};
    *path = i < url.len ? (authz_slice){url.ptr + i, url.len - i} : AUTHZ_SLICE_LIT("/");
    return host->len > 0;
}

static void view_envoy(const srv_httpauth_request *in, srv_httpauth_view *view)
{
    authz_slice name, rest;
    found_header host = find(in, "host");

    view->req.method = in->method;
    view->req.host = host.count == 1 ? host.value : (authz_slice){NULL, 0};
    if (!cluster_prefix(in->target, &name, &rest)) {
        view->malformed = "envoy style: the path must start with path_prefix /clusters/<name> or /clusters/*";
        return;
    }
    /* "*" routes by host: no cluster name can hold it. */
    view->req.cluster = authz_slice_eq_cstr(name, "*") ? (authz_slice){NULL, 0} : name;
    if (name.len == 0) {
        view->req.cluster = AUTHZ_SLICE_LIT("");
    }
    view->req.path = rest;
}

static void view_forwarded(const srv_httpauth_request *in, srv_httpauth_view *view)
{
    found_header host = find(in, "x-forwarded-host");

    view->req.method =
        required(in, "x-forwarded-method", view, "forwarded style: no single X-Forwarded-Method");
    view->req.path = required(in, "x-forwarded-uri", view, "forwarded style: no single X-Forwarded-Uri");
    if (host.count > 1 && view->malformed == NULL) {
        view->malformed = "forwarded style: X-Forwarded-Host on more than one line";
    }
    view->req.host = host.count == 1 ? host.value : (authz_slice){NULL, 0};
}

static void view_original(const srv_httpauth_request *in, srv_httpauth_view *view)
{
    found_header url = find(in, "x-original-url");
    found_header uri = find(in, "x-original-uri");
    authz_slice path = {NULL, 0};

    view->req.method = required(in, "x-original-method", view, "original style: no single X-Original-Method");
    if (url.count > 1 || uri.count > 1) {
        view->malformed = "original style: X-Original-URL or X-Original-URI on more than one line";
        return;
    }
    if (url.count == 1) {
        if (!split_url(url.value, &view->req.host, &path)) {
            view->malformed = "original style: X-Original-URL is not scheme://host/path";
            return;
        }
        /* Whichever of the two the proxy overwrites, the other may be the client's. */
        if (uri.count == 1 && !authz_slice_eq(uri.value, path)) {
            view->malformed = "original style: X-Original-URI differs from the path of X-Original-URL";
            return;
        }
    } else if (uri.count == 1) {
        path = uri.value;
    } else if (view->malformed == NULL) {
        view->malformed = "original style: no X-Original-URL or X-Original-URI";
    }
    view->req.path = path;
}

static void view_source(const pol_snapshot *snap, const srv_httpauth_request *in, srv_httpauth_view *view)
{
    if (snap->server.http_trust_x_real_ip) {
        found_header ip = find(in, "x-real-ip");
        view->req.source = ip.count == 1 ? trim(ip.value) : (authz_slice){NULL, 0};
    } else {
        found_header xff = find(in, "x-forwarded-for");
        view->req.source = xff.count == 1
                               ? srv_extauthz_xff_from_right(xff.value, snap->server.http_trusted_proxy_hops)
                               : (authz_slice){NULL, 0};
    }
}

void srv_httpauth_view_request(const pol_snapshot *snap, const srv_httpauth_request *in,
                               srv_httpauth_view *view)
{
    found_header auth = find(in, "authorization");
    authz_slice name, rest;

    memset(view, 0, sizeof(*view));
    switch (snap->server.http_style) {
    case POL_HTTP_STYLE_FORWARDED:
        view_forwarded(in, view);
        break;
    case POL_HTTP_STYLE_ORIGINAL:
        view_original(in, view);
        break;
    case POL_HTTP_STYLE_ENVOY:
    default:
        view_envoy(in, view);
        break;
    }
    if (snap->server.http_style != POL_HTTP_STYLE_ENVOY && cluster_prefix(in->target, &name, &rest)) {
        view->req.cluster = name.len > 0 ? name : AUTHZ_SLICE_LIT("");
    }
    view_source(snap, in, view);
    view->req.authorization = auth.value;
    view->req.authorization_repeated = auth.count > 1;
    view->request_id = find(in, "x-request-id").value;
    for (size_t i = 0; i < snap->condition_header_count; i++) {
        size_t count = 0;
        for (size_t j = 0; j < in->header_count; j++) {
            if (in->headers[j].name.len == snap->condition_headers[i].len &&
                lower_eq(in->headers[j].name, snap->condition_headers[i].ptr)) {
                if (count == 0) {
                    view->condition_headers[i].value = in->headers[j].value;
                }
                count++;
            }
        }
        view->condition_headers[i].count = count;
    }
    view->req.condition_headers = view->condition_headers;
}

void srv_httpauth_decide(const pol_snapshot *snap, const srv_httpauth_request *in, int64_t now,
                         pol_decide_ctx *ctx, srv_httpauth_view *view, pol_decision *out)
{
    srv_httpauth_view_request(snap, in, view);
    view->req.now = now;
    if (view->malformed == NULL) {
        pol_decide(snap, &view->req, ctx, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    out->generation = snap->generation;
    authz_status_set(&out->status, AUTHZ_REASON_MALFORMED_REQUEST, "%s", view->malformed);
}

/* ---- the answer ---- */

typedef struct writer {
    char *buf;
    size_t len;
    size_t cap;
    bool bad; /* over capacity, or a value that cannot be a header */
} writer;

static void put(writer *wr, authz_slice s)
{
    if (s.len > wr->cap - wr->len) {
        wr->bad = true;
        return;
    }
    if (s.len > 0) {
        memcpy(wr->buf + wr->len, s.ptr, s.len);
        wr->len += s.len;
    }
}

/* "name: value\r\n"; a value with a control byte (CR, LF, ...) is refused. */
static void put_header(writer *wr, authz_slice name, authz_slice value)
{
    for (size_t i = 0; i < value.len; i++) {
        unsigned char c = (unsigned char)value.ptr[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            wr->bad = true;
            return;
        }
    }
    put(wr, name);
    put(wr, AUTHZ_SLICE_LIT(": "));
    put(wr, value);
    put(wr, AUTHZ_SLICE_LIT("\r\n"));
}

static authz_slice status_line(int32_t status)
{
    switch (status) {
    case 200:
        return AUTHZ_SLICE_LIT("HTTP/1.1 200 OK\r\n");
    case 400:
        return AUTHZ_SLICE_LIT("HTTP/1.1 400 Bad Request\r\n");
    case 401:
        return AUTHZ_SLICE_LIT("HTTP/1.1 401 Unauthorized\r\n");
    case 403:
        return AUTHZ_SLICE_LIT("HTTP/1.1 403 Forbidden\r\n");
    default:
        return AUTHZ_SLICE_LIT("HTTP/1.1 503 Service Unavailable\r\n");
    }
}

/* Writes |r| (srv_extauthz_describe's) as an HTTP/1.1 answer. */
static void write_answer(writer *wr, const srv_checkresp *r, bool close, bool head)
{
    char length[24];
    int n = snprintf(length, sizeof(length), "%zu", r->allow ? (size_t)0 : r->body.len);

    /* A deny is never a 2xx, whatever the decision's reason says. */
    put(wr, status_line(r->allow ? 200 : r->http_status >= 400 ? r->http_status : 503));
    for (size_t i = 0; i < r->n_headers; i++) {
        put_header(wr, r->headers[i].key, r->headers[i].value);
    }
    if (r->allow && (r->remove_authorization || r->n_remove > 0)) {
        /* Envoy's http_service removes these upstream; other proxies are
         * configured to (README, HTTP mode). */
        put(wr, AUTHZ_SLICE_LIT("x-envoy-auth-headers-to-remove: "));
        for (size_t i = 0; i < r->n_remove; i++) {
            put(wr, r->remove[i]);
            if (i + 1 < r->n_remove || r->remove_authorization) {
                put(wr, AUTHZ_SLICE_LIT(","));
            }
        }
        if (r->remove_authorization) {
            put(wr, AUTHZ_SLICE_LIT("authorization"));
        }
        put(wr, AUTHZ_SLICE_LIT("\r\n"));
    }
    if (close) {
        put(wr, AUTHZ_SLICE_LIT("connection: close\r\n"));
    }
    put_header(wr, AUTHZ_SLICE_LIT("content-length"), (authz_slice){length, n > 0 ? (size_t)n : 0});
    put(wr, AUTHZ_SLICE_LIT("\r\n"));
    if (!r->allow && !head) {
        put(wr, r->body);
    }
}

/* Room for |r| as written: its parts plus the fixed text around each. */
static size_t answer_bound(const srv_checkresp *r)
{
    size_t n = 256u + r->body.len;

    for (size_t i = 0; i < r->n_headers; i++) {
        n += r->headers[i].key.len + r->headers[i].value.len + 4u;
    }
    for (size_t i = 0; i < r->n_remove; i++) {
        n += r->remove[i].len + 1u;
    }
    return n;
}

#define FALLBACK_BODY "{\"allowed\":false,\"reason\":\"internal_error\",\"message\":\"internal_error\"}"
_Static_assert(sizeof(FALLBACK_BODY) - 1 == 70, "content-length of the fallback answer");
static const char FALLBACK[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "x-tokengate-reason: internal_error\r\n"
                               "content-type: application/json\r\n"
                               "connection: close\r\n"
                               "content-length: 70\r\n"
                               "\r\n" FALLBACK_BODY;

int srv_httpauth_answer(const pol_decision *d, pol_deny_details details, bool close, bool head,
                        authz_arena *arena, uint8_t **out, size_t *out_len)
{
    srv_checkresp r;
    writer wr = {NULL, 0, 0, false};

    if (srv_extauthz_describe(d, details, arena, &r) == 0) {
        wr.cap = answer_bound(&r);
        wr.buf = authz_arena_alloc(arena, wr.cap);
        if (wr.buf != NULL) {
            write_answer(&wr, &r, close, head);
        }
    }
    if (wr.buf == NULL || wr.bad) {
        /* Fail closed with a fixed deny; the caller closes the connection. */
        *out = (uint8_t *)(uintptr_t)FALLBACK;
        /* A HEAD request's answer has no body, whatever its content-length says. */
        *out_len = sizeof(FALLBACK) - 1u - (head ? sizeof(FALLBACK_BODY) - 1u : 0u);
        return 1;
    }
    *out = (uint8_t *)wr.buf;
    *out_len = wr.len;
    return 0;
}

authz_slice srv_httpauth_protocol_error(int status)
{
#define PROTOCOL_ERROR(line) "HTTP/1.1 " line "\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    switch (status) {
    case 408:
        return AUTHZ_SLICE_LIT(PROTOCOL_ERROR("408 Request Timeout"));
    case 413:
        return AUTHZ_SLICE_LIT(PROTOCOL_ERROR("413 Content Too Large"));
    case 414:
        return AUTHZ_SLICE_LIT(PROTOCOL_ERROR("414 URI Too Long"));
    case 431:
        return AUTHZ_SLICE_LIT(PROTOCOL_ERROR("431 Request Header Fields Too Large"));
    default:
        return AUTHZ_SLICE_LIT(PROTOCOL_ERROR("400 Bad Request"));
    }
#undef PROTOCOL_ERROR
}
