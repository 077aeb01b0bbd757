#include <criterion/criterion.h>

#include <string.h>

#include "srv_httpauth.h"

/* The view reads only the server settings and the rules' condition headers
 * of a snapshot: a zeroed one with those set stands in for a loaded config. */
static pol_snapshot snap;
static authz_arena arena;

static void setup(void)
{
    memset(&snap, 0, sizeof(snap));
    snap.server.http_trusted_proxy_hops = 1;
    authz_arena_init(&arena, NULL, 0, 0);
}

static void teardown(void)
{
    authz_arena_free(&arena);
}

TestSuite(srv_httpauth, .init = setup, .fini = teardown);

#define H(n, v)                                                                                              \
    {                                                                                                        \
        AUTHZ_SLICE_LIT(n), AUTHZ_SLICE_LIT(v)                                                               \
    }

static srv_httpauth_view view_of(const char *method, const char *target, const srv_httpauth_header *headers,
                                 size_t count)
{
    srv_httpauth_request in = {authz_slice_from_cstr(method), authz_slice_from_cstr(target), headers, count};
    srv_httpauth_view v;
    srv_httpauth_view_request(&snap, &in, &v);
    return v;
}

static void assert_slice(authz_slice s, const char *want)
{
    if (want == NULL) {
        cr_assert_null(s.ptr, "got '%.*s', want NULL", (int)s.len, s.ptr);
        return;
    }
    cr_assert(authz_slice_eq_cstr(s, want), "got '%.*s', want '%s'", (int)s.len, s.ptr ? s.ptr : "", want);
}

Test(srv_httpauth, envoy_prefix_names_cluster_and_is_removed)
{
    srv_httpauth_header h[] = {H("Host", "api.a.example"), H("Authorization", "Bearer t"),
                               H("X-Forwarded-For", "1.1.1.1, 10.0.0.7"), H("X-Original-URI", "/public")};
    srv_httpauth_view v = view_of("POST", "/clusters/cluster-a/admin/x?q=1", h, 4);

    cr_assert_null(v.malformed);
    assert_slice(v.req.cluster, "cluster-a");
    assert_slice(v.req.path, "/admin/x?q=1");
    assert_slice(v.req.method, "POST");
    assert_slice(v.req.host, "api.a.example");
    assert_slice(v.req.source, "10.0.0.7");
    assert_slice(v.req.authorization, "Bearer t");
}

Test(srv_httpauth, envoy_star_routes_by_host_and_prefix_is_required)
{
    srv_httpauth_view v = view_of("GET", "/clusters/*/x", NULL, 0);
    cr_assert_null(v.malformed);
    assert_slice(v.req.cluster, NULL);
    assert_slice(v.req.path, "/x");
    v = view_of("GET", "/clusters//x", NULL, 0);
    cr_assert(v.req.cluster.ptr != NULL && v.req.cluster.len == 0, "an empty name is no cluster");
    cr_assert_not_null(view_of("GET", "/x", NULL, 0).malformed);
    cr_assert_not_null(view_of("GET", "/clustersx/a", NULL, 0).malformed);
}

Test(srv_httpauth, forwarded_style_reads_its_headers_only)
{
    srv_httpauth_header h[] = {H("X-Forwarded-Method", "DELETE"), H("X-Forwarded-Uri", "/a/b"),
                               H("X-Forwarded-Host", "api.b.example"), H("X-Original-URI", "/public"),
                               H("X-Forwarded-For", "10.0.0.9")};
    snap.server.http_style = POL_HTTP_STYLE_FORWARDED;
    srv_httpauth_view v = view_of("GET", "/clusters/cluster-b", h, 5);

    cr_assert_null(v.malformed);
    assert_slice(v.req.method, "DELETE");
    assert_slice(v.req.path, "/a/b");
    assert_slice(v.req.host, "api.b.example");
    assert_slice(v.req.cluster, "cluster-b");
    /* Without the auth URL's prefix the host decides. */
    assert_slice(view_of("GET", "/auth", h, 5).req.cluster, NULL);
    /* Missing or repeated: malformed. */
    cr_assert_not_null(view_of("GET", "/", h + 1, 4).malformed);
    srv_httpauth_header twice[] = {H("X-Forwarded-Method", "GET"), H("X-Forwarded-Uri", "/a"),
                                   H("x-forwarded-uri", "/b")};
    cr_assert_not_null(view_of("GET", "/", twice, 3).malformed);
}

Test(srv_httpauth, original_style_url_and_uri)
{
    snap.server.http_style = POL_HTTP_STYLE_ORIGINAL;
    srv_httpauth_header url[] = {H("X-Original-Method", "GET"),
                                 H("X-Original-URL", "https://api.a.example:8443")};
    srv_httpauth_view v = view_of("GET", "/", url, 2);
    cr_assert_null(v.malformed);
    assert_slice(v.req.host, "api.a.example:8443");
    assert_slice(v.req.path, "/");

    srv_httpauth_header both[] = {H("X-Original-Method", "GET"), H("X-Original-URL", "http://h/x?y"),
                                  H("X-Original-URI", "/x?y")};
    v = view_of("GET", "/", both, 3);
    cr_assert_null(v.malformed);
    assert_slice(v.req.path, "/x?y");
    both[2].value = AUTHZ_SLICE_LIT("/public");
    cr_assert_not_null(view_of("GET", "/", both, 3).malformed);

    srv_httpauth_header uri[] = {H("X-Original-Method", "GET"), H("X-Original-URI", "/only")};
    v = view_of("GET", "/clusters/c", uri, 2);
    cr_assert_null(v.malformed);
    assert_slice(v.req.host, NULL);
    assert_slice(v.req.cluster, "c");

    static const char *const bad[] = {"api.a.example/x", "https://user@h/x", "https:///x", "/x://h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        srv_httpauth_header h[] = {H("X-Original-Method", "GET"),
                                   {AUTHZ_SLICE_LIT("X-Original-URL"), authz_slice_from_cstr(bad[i])}};
        cr_assert_not_null(view_of("GET", "/", h, 2).malformed, "%s", bad[i]);
    }
}

Test(srv_httpauth, source_hops_and_real_ip)
{
    srv_httpauth_header h[] = {H("X-Forwarded-For", "10.0.0.1, 10.0.0.2 , 10.0.0.3"),
                               H("X-Real-IP", " 10.9.9.9 ")};
    snap.server.http_trusted_proxy_hops = 2;
    assert_slice(view_of("GET", "/clusters/*/", h, 2).req.source, "10.0.0.2");
    snap.server.http_trusted_proxy_hops = 4;
    cr_assert_eq(view_of("GET", "/clusters/*/", h, 2).req.source.len, 0);
    snap.server.http_trust_x_real_ip = true;
    assert_slice(view_of("GET", "/clusters/*/", h, 2).req.source, "10.9.9.9");
    srv_httpauth_header two[] = {H("X-Real-IP", "10.9.9.9"), H("X-Real-IP", "10.9.9.8")};
    cr_assert_eq(view_of("GET", "/clusters/*/", two, 2).req.source.len, 0);
}

Test(srv_httpauth, repeated_authorization_and_condition_headers)
{
    srv_httpauth_header h[] = {H("Authorization", "Bearer a"), H("authorization", "Bearer b"),
                               H("X-Tenant", "t1"), H("x-tenant", "t2")};
    snap.condition_headers[0] = AUTHZ_SLICE_LIT("x-tenant");
    snap.condition_header_count = 1;
    srv_httpauth_view v = view_of("GET", "/clusters/*/", h, 4);
    cr_assert(v.req.authorization_repeated);
    cr_assert_eq(v.condition_headers[0].count, 2); /* a copied view: read its own array */
    assert_slice(v.condition_headers[0].value, "t1");
}

static authz_slice answer(const pol_decision *d, bool close, bool head, int *rc)
{
    uint8_t *out = NULL;
    size_t len = 0;
    *rc = srv_httpauth_answer(d, POL_DENY_DETAILS_GENERIC, close, head, &arena, &out, &len);
    return (authz_slice){(const char *)out, len};
}

static bool contains(authz_slice s, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.len; i++) {
        if (memcmp(s.ptr + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

Test(srv_httpauth, allow_answer)
{
    pol_cluster cluster = {.name = AUTHZ_SLICE_LIT("cluster-a")};
    pol_decision d = {.allowed = true,
                      .cluster = &cluster,
                      .subject = AUTHZ_SLICE_LIT("system:serviceaccount:ns:sa"),
                      .namespace_name = AUTHZ_SLICE_LIT("ns"),
                      .service_account = AUTHZ_SLICE_LIT("sa")};
    int rc;
    authz_slice a = answer(&d, false, false, &rc);

    cr_assert_eq(rc, 0);
    cr_assert(authz_slice_has_prefix(a, AUTHZ_SLICE_LIT("HTTP/1.1 200 OK\r\n")));
    cr_assert(contains(a, "\r\nx-tokengate-subject: system:serviceaccount:ns:sa\r\n"));
    cr_assert(contains(a, "\r\nx-tokengate-cluster: cluster-a\r\n"));
    cr_assert(contains(a, "\r\nx-envoy-auth-headers-to-remove: "
                          "x-tokengate-peer,x-tokengate-shadow-reason,x-tokengate-user,x-tokengate-groups,x-"
                          "tokengate-provider,authorization\r\n"));
    cr_assert(contains(a, "\r\ncontent-length: 0\r\n\r\n"));
    cr_assert(!contains(a, "connection: close"));
    cluster.forward_token = true;
    cr_assert(contains(
        answer(&d, true, false, &rc),
        "\r\nx-envoy-auth-headers-to-remove: x-tokengate-peer,x-tokengate-shadow-reason,x-tokengate-user,"
        "x-tokengate-groups,x-tokengate-provider\r\n"));
    cr_assert(contains(answer(&d, true, false, &rc), "\r\nconnection: close\r\n"));
}

Test(srv_httpauth, deny_answers)
{
    pol_decision d = {.allowed = false};
    int rc;

    authz_status_set(&d.status, AUTHZ_REASON_EXPIRED, "expired at 1");
    authz_slice a = answer(&d, false, false, &rc);
    cr_assert(authz_slice_has_prefix(a, AUTHZ_SLICE_LIT("HTTP/1.1 401 Unauthorized\r\n")));
    cr_assert(contains(a, "\r\nx-tokengate-reason: expired\r\n"));
    cr_assert(contains(a, "www-authenticate: Bearer realm=\"tokengate\", error=\"invalid_token\""));
    cr_assert(contains(a, "\r\n\r\n{\"allowed\":false,\"reason\":\"expired\""));
    cr_assert(!contains(a, "expired at 1"), "generic details by default");
    authz_slice head = answer(&d, false, true, &rc);
    cr_assert(head.len > 4 && memcmp(head.ptr + head.len - 4, "\r\n\r\n", 4) == 0, "HEAD: no body");

    static const struct {
        authz_reason reason;
        const char *line;
    } cases[] = {{AUTHZ_REASON_FORBIDDEN, "HTTP/1.1 403 "},
                 {AUTHZ_REASON_MALFORMED_REQUEST, "HTTP/1.1 400 "},
                 {AUTHZ_REASON_INTERNAL_ERROR, "HTTP/1.1 503 "},
                 {AUTHZ_REASON_OK, "HTTP/1.1 503 "}}; /* not allowed yet "ok": never a 200 */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        authz_status_set(&d.status, cases[i].reason, "x");
        a = answer(&d, false, false, &rc);
        cr_assert(authz_slice_has_prefix(a, authz_slice_from_cstr(cases[i].line)), "%.*s", (int)a.len, a.ptr);
    }
}

Test(srv_httpauth, header_value_with_crlf_is_never_written)
{
    pol_cluster cluster = {.name = AUTHZ_SLICE_LIT("cluster-a")};
    pol_decision d = {.allowed = true,
                      .cluster = &cluster,
                      .subject = AUTHZ_SLICE_LIT("system:serviceaccount:ns:sa\r\nx-evil: 1"),
                      .namespace_name = AUTHZ_SLICE_LIT("ns"),
                      .service_account = AUTHZ_SLICE_LIT("sa")};
    int rc;
    authz_slice a = answer(&d, false, false, &rc);

    cr_assert_eq(rc, 1, "the fixed deny, and the caller closes");
    cr_assert(authz_slice_has_prefix(a, AUTHZ_SLICE_LIT("HTTP/1.1 503 ")));
    cr_assert(!contains(a, "x-evil"));
}

Test(srv_httpauth, protocol_errors_close)
{
    static const int statuses[] = {400, 408, 413, 414, 431, 999};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        authz_slice a = srv_httpauth_protocol_error(statuses[i]);
        char want[16];
        snprintf(want, sizeof(want), "HTTP/1.1 %d ", statuses[i] == 999 ? 400 : statuses[i]);
        cr_assert(authz_slice_has_prefix(a, authz_slice_from_cstr(want)), "%s", want);
        cr_assert(contains(a, "\r\nconnection: close\r\n"));
    }
}
