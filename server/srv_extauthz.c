#include "srv_extauthz.h"

#include <string.h>

#include "authz_reason.h"
#include "srv_pbarena.h"

typedef Envoy__Service__Auth__V3__AttributeContext attr_ctx;
typedef Envoy__Service__Auth__V3__AttributeContext__HttpRequest http_req;
typedef Envoy__Config__Core__V3__HeaderValueOption hv_option;
typedef Google__Protobuf__Struct pb_struct;

#define FIELDS_MAX 5u
#define HEADERS_MAX 4u

static authz_slice slice_of(const char *s)
{
    return authz_slice_from_cstr(s);
}

static bool key_equals_ci(const char *key, size_t key_len, const char *name)
{
    size_t n = strlen(name);
    if (key_len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != name[i]) {
            return false;
        }
    }
    return true;
}

/* First value of header |name| (lower-case): the headers map, then the raw
 * header_map that Envoy sends with encode_raw_headers. */
static authz_slice find_header(const http_req *http, const char *name)
{
    authz_slice none = {NULL, 0};
    if (http == NULL) {
        return none;
    }
    for (size_t i = 0; i < http->n_headers; i++) {
        const char *key = http->headers[i]->key;
        if (key != NULL && key_equals_ci(key, strlen(key), name)) {
            return slice_of(http->headers[i]->value);
        }
    }
    if (http->header_map != NULL) {
        for (size_t i = 0; i < http->header_map->n_headers; i++) {
            const Envoy__Config__Core__V3__HeaderValue *hv = http->header_map->headers[i];
            if (hv->key == NULL || !key_equals_ci(hv->key, strlen(hv->key), name)) {
                continue;
            }
            if (hv->raw_value.len > 0) {
                authz_slice raw = {(const char *)hv->raw_value.data, hv->raw_value.len};
                return raw;
            }
            return slice_of(hv->value);
        }
    }
    return none;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The |hops|-th comma-separated entry from the right of |xff| (1 = last),
 * trimmed; empty when there are fewer entries. */
static authz_slice xff_from_right(authz_slice xff, size_t hops)
{
    authz_slice none = {NULL, 0};
    size_t end = xff.len;
    size_t seen = 0;

    if (xff.ptr == NULL) {
        return none;
    }
    for (;;) {
        size_t start = end;
        while (start > 0 && xff.ptr[start - 1] != ',') {
            start--;
        }
        seen++;
        if (seen == hops) {
            size_t b = start, e = end;
            while (b < e && is_space(xff.ptr[b])) {
                b++;
            }
            while (e > b && is_space(xff.ptr[e - 1])) {
                e--;
            }
            authz_slice out = {xff.ptr + b, e - b};
            return out;
        }
        if (start == 0) {
            return none;
        }
        end = start - 1;
    }
}

static authz_slice peer_address(const attr_ctx *attrs)
{
    authz_slice none = {NULL, 0};
    if (attrs->source == NULL || attrs->source->address == NULL ||
        attrs->source->address->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS ||
        attrs->source->address->socket_address == NULL) {
        return none;
    }
    return slice_of(attrs->source->address->socket_address->address);
}

void srv_extauthz_view_request(const Envoy__Service__Auth__V3__CheckRequest *msg, size_t trusted_proxy_hops,
                               srv_extauthz_view *view)
{
    const attr_ctx *attrs = msg->attributes;
    const http_req *http = NULL;

    memset(view, 0, sizeof(*view));
    if (attrs == NULL) {
        return;
    }
    if (attrs->request != NULL) {
        http = attrs->request->http;
    }
    for (size_t i = 0; i < attrs->n_context_extensions; i++) {
        const char *key = attrs->context_extensions[i]->key;
        if (key != NULL && strcmp(key, "cluster") == 0) {
            view->req.cluster = slice_of(attrs->context_extensions[i]->value);
            break;
        }
    }
    if (trusted_proxy_hops == 0) {
        view->req.source = peer_address(attrs);
    } else {
        view->req.source = xff_from_right(find_header(http, "x-forwarded-for"), trusted_proxy_hops);
    }
    if (http == NULL) {
        return;
    }
    view->req.authorization = find_header(http, "authorization");
    view->req.host = slice_of(http->host);
    if (view->req.host.len == 0) {
        view->req.host = find_header(http, ":authority");
    }
    view->req.method = slice_of(http->method);
    if (view->req.method.len == 0) {
        view->req.method = find_header(http, ":method");
    }
    view->req.path = slice_of(http->path);
    if (view->req.path.len == 0) {
        view->req.path = find_header(http, ":path");
    }
    view->request_id = find_header(http, "x-request-id");
}

/* ---- response building (all from the arena) ---- */

typedef struct builder {
    authz_arena *arena;
    bool failed;
} builder;

static void *b_alloc(builder *b, size_t size)
{
    void *p = authz_arena_calloc(b->arena, 1, size);
    if (p == NULL) {
        b->failed = true;
    }
    return p;
}

static char *b_str(builder *b, authz_slice s)
{
    char *p = authz_arena_strndup(b->arena, s.len > 0 ? s.ptr : "", s.len);
    if (p == NULL) {
        b->failed = true;
    }
    return p;
}

static hv_option *b_header(builder *b, const char *key, authz_slice value)
{
    hv_option *opt = b_alloc(b, sizeof(*opt));
    Envoy__Config__Core__V3__HeaderValue *hv = b_alloc(b, sizeof(*hv));
    char *v = b_str(b, value);

    if (opt == NULL || hv == NULL || v == NULL) {
        return NULL;
    }
    envoy__config__core__v3__header_value__init(hv);
    hv->key = (char *)(uintptr_t)key; /* static storage, never written through */
    hv->value = v;
    envoy__config__core__v3__header_value_option__init(opt);
    opt->header = hv;
    /* Explicit: the zero default would append a second header on new Envoy. */
    opt->append_action =
        ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__OVERWRITE_IF_EXISTS_OR_ADD;
    return opt;
}

static void b_field(builder *b, pb_struct *st, const char *key, authz_slice value)
{
    Google__Protobuf__Struct__FieldsEntry *entry = b_alloc(b, sizeof(*entry));
    Google__Protobuf__Value *v = b_alloc(b, sizeof(*v));
    char *s = b_str(b, value);

    if (entry == NULL || v == NULL || s == NULL || st->n_fields >= FIELDS_MAX) {
        b->failed = true;
        return;
    }
    google__protobuf__value__init(v);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = s;
    google__protobuf__struct__fields_entry__init(entry);
    entry->key = (char *)(uintptr_t)key;
    entry->value = v;
    st->fields[st->n_fields++] = entry;
}

static pb_struct *b_struct(builder *b)
{
    pb_struct *st = b_alloc(b, sizeof(*st));
    Google__Protobuf__Struct__FieldsEntry **fields = b_alloc(b, FIELDS_MAX * sizeof(*fields));
    if (st == NULL || fields == NULL) {
        return NULL;
    }
    google__protobuf__struct__init(st);
    st->fields = fields;
    return st;
}

static authz_slice cluster_name(const pol_decision *d)
{
    authz_slice none = {NULL, 0};
    if (d->cluster != NULL) {
        return d->cluster->name;
    }
    if (d->issuer_cluster != NULL) {
        return d->issuer_cluster->name;
    }
    return none;
}

/* Appends |s| JSON-escaped to |out| (capacity checked by the caller:
 * at most 6 bytes per input byte). */
static size_t json_escape(char *out, authz_slice s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            out[n++] = '\\';
            out[n++] = 'u';
            out[n++] = '0';
            out[n++] = '0';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0x0Fu];
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

static char *deny_body(builder *b, authz_slice reason, authz_slice message)
{
    static const char p1[] = "{\"allowed\":false,\"reason\":\"";
    static const char p2[] = "\",\"message\":\"";
    static const char p3[] = "\"}";
    size_t cap = sizeof(p1) + sizeof(p2) + sizeof(p3) + 6u * (reason.len + message.len) + 1u;
    char *out = b_alloc(b, cap);
    size_t n = 0;

    if (out == NULL) {
        return NULL;
    }
    memcpy(out + n, p1, sizeof(p1) - 1);
    n += sizeof(p1) - 1;
    n += json_escape(out + n, reason);
    memcpy(out + n, p2, sizeof(p2) - 1);
    n += sizeof(p2) - 1;
    n += json_escape(out + n, message);
    memcpy(out + n, p3, sizeof(p3) - 1);
    n += sizeof(p3) - 1;
    out[n] = '\0';
    return out;
}

static char *concat(builder *b, const authz_slice *parts, size_t count)
{
    size_t total = 1;
    size_t n = 0;
    char *out;

    for (size_t i = 0; i < count; i++) {
        total += parts[i].len;
    }
    out = b_alloc(b, total);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (parts[i].len > 0) {
            memcpy(out + n, parts[i].ptr, parts[i].len);
            n += parts[i].len;
        }
    }
    out[n] = '\0';
    return out;
}

static void build_allow(builder *b, const pol_decision *d, Envoy__Service__Auth__V3__CheckResponse *resp,
                        pb_struct *meta)
{
    Envoy__Service__Auth__V3__OkHttpResponse *ok = b_alloc(b, sizeof(*ok));
    hv_option **headers = b_alloc(b, HEADERS_MAX * sizeof(*headers));
    char **remove = b_alloc(b, sizeof(*remove));
    authz_slice cluster = cluster_name(d);

    if (ok == NULL || headers == NULL || remove == NULL) {
        return;
    }
    envoy__service__auth__v3__ok_http_response__init(ok);
    headers[0] = b_header(b, "x-tokengate-cluster", cluster);
    headers[1] = b_header(b, "x-tokengate-subject", d->subject);
    headers[2] = b_header(b, "x-tokengate-namespace", d->namespace_name);
    headers[3] = b_header(b, "x-tokengate-service-account", d->service_account);
    ok->headers = headers;
    ok->n_headers = HEADERS_MAX;
    /* Without forward_token the upstream never sees the credential. */
    if (d->cluster == NULL || !d->cluster->forward_token) {
        remove[0] = (char *)(uintptr_t) "authorization";
        ok->headers_to_remove = remove;
        ok->n_headers_to_remove = 1;
    }
    resp->http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_OK_RESPONSE;
    resp->ok_response = ok;
    if (meta != NULL) {
        b_field(b, meta, "cluster", cluster);
        b_field(b, meta, "subject", d->subject);
        b_field(b, meta, "namespace", d->namespace_name);
        b_field(b, meta, "service_account", d->service_account);
    }
}

static void build_deny(builder *b, const pol_decision *d, Envoy__Service__Auth__V3__CheckResponse *resp,
                       pb_struct *meta)
{
    Envoy__Service__Auth__V3__DeniedHttpResponse *denied = b_alloc(b, sizeof(*denied));
    Envoy__Type__V3__HttpStatus *http_status = b_alloc(b, sizeof(*http_status));
    hv_option **headers = b_alloc(b, 2 * sizeof(*headers));
    authz_slice reason = slice_of(authz_reason_name(d->status.reason));
    authz_slice message = {d->status.message, strnlen(d->status.message, sizeof(d->status.message))};
    int http = authz_reason_http_status(d->status.reason);
    authz_slice cluster = cluster_name(d);

    if (denied == NULL || http_status == NULL || headers == NULL) {
        return;
    }
    if (message.len > 0) {
        const authz_slice parts[] = {reason, AUTHZ_SLICE_LIT(": "), message};
        resp->status->message = concat(b, parts, 3);
    } else {
        resp->status->message = b_str(b, reason);
    }
    envoy__type__v3__http_status__init(http_status);
    http_status->code = (Envoy__Type__V3__StatusCode)http;
    envoy__service__auth__v3__denied_http_response__init(denied);
    denied->status = http_status;
    headers[0] = b_header(b, "x-tokengate-reason", reason);
    denied->n_headers = 1;
    if (http == 401) {
        const authz_slice parts[] = {
            AUTHZ_SLICE_LIT("Bearer realm=\"tokengate\", error=\"invalid_token\", error_description=\""),
            reason, AUTHZ_SLICE_LIT("\"")};
        headers[1] = b_header(b, "www-authenticate", slice_of(concat(b, parts, 3)));
        denied->n_headers = 2;
    }
    denied->headers = headers;
    denied->body = deny_body(b, reason, message);
    resp->http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
    resp->denied_response = denied;
    if (meta != NULL && cluster.len > 0) {
        b_field(b, meta, "cluster", cluster);
    }
}

int srv_extauthz_build_response(const pol_decision *d, authz_arena *arena, uint8_t **out, size_t *out_len)
{
    builder b = {arena, false};
    Envoy__Service__Auth__V3__CheckResponse resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    Google__Rpc__Status *status = b_alloc(&b, sizeof(*status));
    pb_struct *meta = b_struct(&b);
    uint8_t *buf;
    size_t size;
    bool allowed = d->allowed && d->status.reason == AUTHZ_REASON_OK;

    if (status == NULL || meta == NULL) {
        return -1;
    }
    google__rpc__status__init(status);
    /* A deny must carry a non-zero code: an absent status means allow. */
    status->code = allowed ? 0 : authz_reason_grpc_code(d->status.reason);
    if (!allowed && status->code == 0) {
        status->code = authz_reason_grpc_code(AUTHZ_REASON_INTERNAL_ERROR);
    }
    resp.status = status;
    resp.dynamic_metadata = meta;
    if (allowed) {
        build_allow(&b, d, &resp, meta);
    } else {
        build_deny(&b, d, &resp, meta);
    }
    b_field(&b, meta, "reason", slice_of(authz_reason_name(allowed ? AUTHZ_REASON_OK : d->status.reason)));
    if (b.failed ||
        resp.http_response_case == ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE__NOT_SET) {
        return -1;
    }
    size = envoy__service__auth__v3__check_response__get_packed_size(&resp);
    buf = authz_arena_alloc(arena, size > 0 ? size : 1);
    if (buf == NULL) {
        return -1;
    }
    *out_len = envoy__service__auth__v3__check_response__pack(&resp, buf);
    *out = buf;
    return 0;
}

size_t srv_extauthz_fallback_response(uint8_t *buf, size_t size)
{
    Envoy__Service__Auth__V3__CheckResponse resp = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__INIT;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    Envoy__Service__Auth__V3__DeniedHttpResponse denied =
        ENVOY__SERVICE__AUTH__V3__DENIED_HTTP_RESPONSE__INIT;
    Envoy__Type__V3__HttpStatus http_status = ENVOY__TYPE__V3__HTTP_STATUS__INIT;

    status.code = authz_reason_grpc_code(AUTHZ_REASON_INTERNAL_ERROR);
    status.message = (char *)(uintptr_t)authz_reason_name(AUTHZ_REASON_INTERNAL_ERROR);
    http_status.code = (Envoy__Type__V3__StatusCode)authz_reason_http_status(AUTHZ_REASON_INTERNAL_ERROR);
    denied.status = &http_status;
    resp.status = &status;
    resp.http_response_case = ENVOY__SERVICE__AUTH__V3__CHECK_RESPONSE__HTTP_RESPONSE_DENIED_RESPONSE;
    resp.denied_response = &denied;
    if (envoy__service__auth__v3__check_response__get_packed_size(&resp) > size) {
        return 0;
    }
    return envoy__service__auth__v3__check_response__pack(&resp, buf);
}

int srv_extauthz_check(const pol_snapshot *snap, const uint8_t *msg, size_t len, int64_t now,
                       pol_decide_ctx *ctx, srv_extauthz_result *out)
{
    srv_pbarena pb;
    Envoy__Service__Auth__V3__CheckRequest *req;

    memset(out, 0, sizeof(*out));
    srv_pbarena_init(&pb, ctx->arena);
    req = envoy__service__auth__v3__check_request__unpack(&pb.alloc, len, msg);
    if (req == NULL) {
        /* Out of budget is our limit, not the peer's error: deny. */
        return pb.failed ? -2 : -1;
    }
    srv_extauthz_view_request(req, snap->server.trusted_proxy_hops, &out->view);
    out->view.req.now = now;
    pol_decide(snap, &out->view.req, ctx, &out->decision);
    if (srv_extauthz_build_response(&out->decision, ctx->arena, &out->response, &out->response_len) != 0) {
        return -2;
    }
    return 0;
}
