#include "srv_extauthz.h"

#include <string.h>

#include "authz_reason.h"
#include "srv_checkresp.h"

_Static_assert(SRV_CHECKRESP_HEADERS_MAX >= 4 + POL_MAX_CLAIM_HEADERS + 2 + 3,
               "identity, claim, shadow, peer and provider identity headers");
_Static_assert(SRV_CHECKRESP_REMOVE_MAX >= POL_MAX_CLAIM_HEADERS + 2 + 3,
               "claim, peer, shadow and identity headers to remove");

static authz_slice slice_of(const char *s)
{
    return authz_slice_from_cstr(s);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

authz_slice srv_extauthz_xff_from_right(authz_slice xff, size_t hops)
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

/* |field| unless it is empty, then the header |h|. */
static authz_slice field_or_header(const srv_checkreq *msg, authz_slice field, srv_checkreq_header h)
{
    return field.len > 0 ? field : srv_checkreq_header_value(msg, h);
}

/* The request carried header |h| on more than one line: header_map keeps
 * each line; in the headers map a repeated key is one key set twice. */
static bool on_several_lines(const srv_checkreq *msg, srv_checkreq_header h)
{
    return !msg->map_hdr[h].found && msg->raw_hdr[h].count > 1;
}

void srv_extauthz_view_request(const srv_checkreq *msg, size_t trusted_proxy_hops, srv_extauthz_view *view)
{
    memset(view, 0, sizeof(*view));
    view->req.cluster = msg->cluster;
    if (msg->cluster_found && msg->cluster.len == 0) {
        /* Named but empty: a non-NULL empty slice, which is no cluster. */
        view->req.cluster = AUTHZ_SLICE_LIT("");
    }
    if (trusted_proxy_hops == 0) {
        view->req.source = msg->peer_address;
    } else if (!on_several_lines(msg, SRV_CHECKREQ_H_FORWARDED_FOR)) {
        view->req.source = srv_extauthz_xff_from_right(
            srv_checkreq_header_value(msg, SRV_CHECKREQ_H_FORWARDED_FOR), trusted_proxy_hops);
    }
    view->req.authorization = srv_checkreq_header_value(msg, SRV_CHECKREQ_H_AUTHORIZATION);
    view->req.authorization_repeated = on_several_lines(msg, SRV_CHECKREQ_H_AUTHORIZATION);
    view->req.host = field_or_header(msg, msg->host, SRV_CHECKREQ_H_AUTHORITY);
    view->req.method = field_or_header(msg, msg->method, SRV_CHECKREQ_H_METHOD);
    view->req.path = field_or_header(msg, msg->path, SRV_CHECKREQ_H_PATH);
    view->req.peer_principal = msg->peer_principal;
    view->req.peer_certificate = msg->peer_certificate;
    view->request_id = srv_checkreq_header_value(msg, SRV_CHECKREQ_H_REQUEST_ID);
}

/* ---- response building ---- */

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

/* {"allowed":false,"reason":..,"message":..} in |arena|; ptr NULL when the
 * arena runs out. */
static authz_slice deny_body(authz_arena *arena, authz_slice reason, authz_slice message)
{
    const authz_slice p1 = AUTHZ_SLICE_LIT("{\"allowed\":false,\"reason\":\"");
    const authz_slice p2 = AUTHZ_SLICE_LIT("\",\"message\":\"");
    const authz_slice p3 = AUTHZ_SLICE_LIT("\"}");
    authz_slice out = {NULL, 0};
    char *buf = authz_arena_alloc(arena, p1.len + p2.len + p3.len + 6u * (reason.len + message.len));
    size_t n = 0;

    if (buf == NULL) {
        return out;
    }
    memcpy(buf + n, p1.ptr, p1.len);
    n += p1.len;
    n += json_escape(buf + n, reason);
    memcpy(buf + n, p2.ptr, p2.len);
    n += p2.len;
    n += json_escape(buf + n, message);
    memcpy(buf + n, p3.ptr, p3.len);
    n += p3.len;
    out.ptr = buf;
    out.len = n;
    return out;
}

/* |parts| joined in |arena|; ptr NULL when the arena runs out. */
static authz_slice concat(authz_arena *arena, const authz_slice *parts, size_t count)
{
    authz_slice out = {NULL, 0};
    size_t total = 0;
    size_t n = 0;
    char *buf;

    for (size_t i = 0; i < count; i++) {
        total += parts[i].len;
    }
    buf = authz_arena_alloc(arena, total > 0 ? total : 1);
    if (buf == NULL) {
        return out;
    }
    for (size_t i = 0; i < count; i++) {
        if (parts[i].len > 0) {
            memcpy(buf + n, parts[i].ptr, parts[i].len);
            n += parts[i].len;
        }
    }
    out.ptr = buf;
    out.len = n;
    return out;
}

static void add_pair(srv_checkresp_pair *pairs, size_t *count, authz_slice key, authz_slice value)
{
    pairs[*count].key = key;
    pairs[*count].value = value;
    (*count)++;
}

/* An identity header: set to |value|, or removed when it is empty (set
 * anyway with |always|). */
static void set_or_remove(srv_checkresp *r, authz_slice name, authz_slice value, bool always)
{
    if (always || value.len > 0) {
        add_pair(r->headers, &r->n_headers, name, value);
    } else {
        r->remove[r->n_remove++] = name;
    }
}

static void describe_allow(const pol_decision *d, srv_checkresp *r)
{
    authz_slice cluster = cluster_name(d);
    authz_slice none = {NULL, 0};

    r->allow = true;
    add_pair(r->headers, &r->n_headers, AUTHZ_SLICE_LIT("x-tokengate-cluster"), cluster);
    add_pair(r->headers, &r->n_headers, AUTHZ_SLICE_LIT("x-tokengate-subject"), d->subject);
    /* A provider token names no service account: those headers are removed. */
    set_or_remove(r, AUTHZ_SLICE_LIT("x-tokengate-namespace"), d->provider ? none : d->namespace_name,
                  !d->provider);
    set_or_remove(r, AUTHZ_SLICE_LIT("x-tokengate-service-account"), d->provider ? none : d->service_account,
                  !d->provider);
    /* Without forward_token the upstream never sees the credential. */
    r->remove_authorization = d->cluster == NULL || !d->cluster->forward_token;
    /* Claim headers overwrite, or are removed when the claim is absent:
     * either way the upstream sees only what the token says. */
    for (size_t i = 0; i < d->claim_header_count; i++) {
        const pol_claim_value *cv = &d->claim_headers[i];
        if (cv->present) {
            add_pair(r->headers, &r->n_headers, cv->header, cv->value);
        } else {
            r->remove[r->n_remove++] = cv->header;
        }
    }
    /* The verified mesh identity, else no x-tokengate-peer: a client's own
     * copy never reaches the upstream. */
    if (d->peer_result == POL_PEER_RESULT_BOUND) {
        add_pair(r->headers, &r->n_headers, AUTHZ_SLICE_LIT("x-tokengate-peer"), d->peer);
    } else {
        r->remove[r->n_remove++] = AUTHZ_SLICE_LIT("x-tokengate-peer");
    }
    /* Upstream sees what enforcing the shadow rule would have denied, and
     * otherwise no x-tokengate-shadow-reason at all, not a client's own. */
    if (d->shadow_denied) {
        add_pair(r->headers, &r->n_headers, AUTHZ_SLICE_LIT("x-tokengate-shadow-reason"),
                 slice_of(authz_reason_name(d->shadow_status.reason)));
    } else {
        r->remove[r->n_remove++] = AUTHZ_SLICE_LIT("x-tokengate-shadow-reason");
    }
    /* A provider token's identity; removed for a service account, so a
     * copy the client sent never reaches the upstream. */
    set_or_remove(r, AUTHZ_SLICE_LIT("x-tokengate-user"), d->provider ? d->username : none, false);
    set_or_remove(r, AUTHZ_SLICE_LIT("x-tokengate-groups"), d->provider ? d->groups : none, false);
    set_or_remove(r, AUTHZ_SLICE_LIT("x-tokengate-provider"), d->provider ? d->provider->name : none, false);
    add_pair(r->meta, &r->n_meta, AUTHZ_SLICE_LIT("cluster"), cluster);
    add_pair(r->meta, &r->n_meta, AUTHZ_SLICE_LIT("subject"), d->subject);
    add_pair(r->meta, &r->n_meta, AUTHZ_SLICE_LIT("namespace"), d->namespace_name);
    add_pair(r->meta, &r->n_meta, AUTHZ_SLICE_LIT("service_account"), d->service_account);
    if (d->provider)
        add_pair(r->meta, &r->n_meta, AUTHZ_SLICE_LIT("provider"), d->provider->name);
}

/* RFC 6750 3.1: a request without credentials gets the challenge alone;
 * a credential that failed gets error="invalid_token". */
static authz_slice www_authenticate(authz_arena *arena, authz_reason reason, authz_slice name)
{
    if (reason == AUTHZ_REASON_MISSING_TOKEN) {
        return AUTHZ_SLICE_LIT("Bearer realm=\"tokengate\"");
    }
    const authz_slice parts[] = {
        AUTHZ_SLICE_LIT("Bearer realm=\"tokengate\", error=\"invalid_token\", error_description=\""), name,
        AUTHZ_SLICE_LIT("\"")};
    return concat(arena, parts, 3);
}

/* Returns -1 when the arena runs out. */
static int describe_deny(const pol_decision *d, pol_deny_details details, authz_arena *arena,
                         srv_checkresp *r)
{
    authz_slice reason = slice_of(authz_reason_name(d->status.reason));
    /* The detailed message names clusters, keys and rules: only trusted
     * callers get it; everyone else the reason's fixed sentence. */
    authz_slice message =
        details == POL_DENY_DETAILS_FULL
            ? (authz_slice){d->status.message, strnlen(d->status.message, sizeof(d->status.message))}
            : slice_of(authz_reason_public_message(d->status.reason));
    authz_slice cluster = cluster_name(d);

    r->allow = false;
    r->http_status = authz_reason_http_status(d->status.reason);
    r->message = reason;
    if (message.len > 0) {
        const authz_slice parts[] = {reason, AUTHZ_SLICE_LIT(": "), message};
        r->message = concat(arena, parts, 3);
    }
    add_pair(r->headers, &r->n_headers, AUTHZ_SLICE_LIT("x-tokengate-reason"), reason);
    if (r->http_status == 401) {
        authz_slice challenge = www_authenticate(arena, d->status.reason, reason);
        if (challenge.ptr == NULL) {
            return -1;
        }
        add_pair(r->headers, &r->n_headers, AUTHZ_SLICE_LIT("www-authenticate"), challenge);
    }
    add_pair(r->headers, &r->n_headers, AUTHZ_SLICE_LIT("content-type"), AUTHZ_SLICE_LIT("application/json"));
    r->body = deny_body(arena, reason, message);
    if (r->message.ptr == NULL || r->body.ptr == NULL) {
        return -1;
    }
    if (cluster.len > 0) {
        add_pair(r->meta, &r->n_meta, AUTHZ_SLICE_LIT("cluster"), cluster);
    }
    return 0;
}

int srv_extauthz_describe(const pol_decision *d, pol_deny_details details, authz_arena *arena,
                          srv_checkresp *r)
{
    bool allowed = d->allowed && d->status.reason == AUTHZ_REASON_OK;

    memset(r, 0, sizeof(*r));
    /* A deny must carry a non-zero code: an absent status means allow. */
    r->code = allowed ? 0 : authz_reason_grpc_code(d->status.reason);
    if (!allowed && r->code == 0) {
        r->code = authz_reason_grpc_code(AUTHZ_REASON_INTERNAL_ERROR);
    }
    if (allowed) {
        describe_allow(d, r);
    } else if (describe_deny(d, details, arena, r) != 0) {
        return -1;
    }
    add_pair(r->meta, &r->n_meta, AUTHZ_SLICE_LIT("reason"),
             slice_of(authz_reason_name(allowed ? AUTHZ_REASON_OK : d->status.reason)));
    return 0;
}

int srv_extauthz_build_response(const pol_decision *d, pol_deny_details details, authz_arena *arena,
                                uint8_t **out, size_t *out_len)
{
    srv_checkresp r;
    uint8_t *buf;
    size_t size;

    if (srv_extauthz_describe(d, details, arena, &r) != 0) {
        return -1;
    }
    size = srv_checkresp_size(&r);
    buf = authz_arena_alloc(arena, size);
    if (buf == NULL) {
        return -1;
    }
    *out_len = srv_checkresp_encode(&r, buf);
    *out = buf;
    return 0;
}

size_t srv_extauthz_fallback_response(uint8_t *buf, size_t size)
{
    srv_checkresp r;

    memset(&r, 0, sizeof(r));
    r.code = authz_reason_grpc_code(AUTHZ_REASON_INTERNAL_ERROR);
    r.message = slice_of(authz_reason_name(AUTHZ_REASON_INTERNAL_ERROR));
    r.http_status = authz_reason_http_status(AUTHZ_REASON_INTERNAL_ERROR);
    if (srv_checkresp_size(&r) > size) {
        return 0;
    }
    return srv_checkresp_encode(&r, buf);
}

/* The rules' condition headers of |msg| into |view|: the headers map's
 * entries when it has the name, else header_map's lines. */
static int view_condition_headers(const pol_snapshot *snap, const uint8_t *msg, size_t len,
                                  srv_extauthz_view *view)
{
    srv_checkreq_named found[POL_MAX_CONDITION_HEADERS];

    if (snap->condition_header_count == 0) {
        return 0;
    }
    if (srv_checkreq_find_headers(msg, len, snap->condition_headers, snap->condition_header_count, found) !=
        0) {
        return -1;
    }
    for (size_t i = 0; i < snap->condition_header_count; i++) {
        pol_header_value *h = &view->condition_headers[i];
        h->count = found[i].map_count > 0 ? found[i].map_count : found[i].raw_count;
        h->value = found[i].map_count > 0 ? found[i].map_value : found[i].raw_value;
    }
    view->req.condition_headers = view->condition_headers;
    return 0;
}

int srv_extauthz_check(const pol_snapshot *snap, const uint8_t *msg, size_t len, int64_t now,
                       pol_decide_ctx *ctx, srv_extauthz_result *out)
{
    srv_checkreq req;

    memset(out, 0, sizeof(*out));
    if (srv_checkreq_parse(msg, len, &req) != 0) {
        return -1;
    }
    srv_extauthz_view_request(&req, snap->server.trusted_proxy_hops, &out->view);
    if (view_condition_headers(snap, msg, len, &out->view) != 0) {
        return -1;
    }
    out->view.req.now = now;
    pol_decide(snap, &out->view.req, ctx, &out->decision);
    if (srv_extauthz_build_response(&out->decision, snap->server.deny_details, ctx->arena, &out->response,
                                    &out->response_len) != 0) {
        return -2;
    }
    return 0;
}
