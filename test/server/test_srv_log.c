#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srv_log.h"

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *format(const pol_request *req, const pol_decision *d, authz_slice request_id)
{
    char line[SRV_LOG_LINE_MAX];
    /* 2024-05-01T12:00:00.123Z */
    size_t n = srv_log_format(line, sizeof(line), 1714564800123456789LL, request_id, req, d, 42);
    cr_assert_gt(n, 0);
    cr_assert_eq(line[n - 1], '\n', "one line");
    cr_assert_null(memchr(line, '\n', n - 1));
    json_error_t err;
    json_t *j = json_loadb(line, n, 0, &err);
    cr_assert_not_null(j, "valid JSON: %s", err.text);
    return j;
}

static const char *str(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

Test(srv_log, allow_line_fields_and_no_token)
{
    static const char token[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    pol_cluster c;
    pol_request req;
    pol_decision d;

    memset(&c, 0, sizeof(c));
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    c.name = AUTHZ_SLICE_LIT("cluster-a");
    req.authorization = AUTHZ_SLICE_LIT("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl");
    req.source = AUTHZ_SLICE_LIT("10.1.2.3");
    req.host = AUTHZ_SLICE_LIT("api.example:8443");
    req.method = AUTHZ_SLICE_LIT("GET");
    req.path = AUTHZ_SLICE_LIT("/a\"b\x01");
    d.allowed = true;
    d.cluster = &c;
    d.issuer_cluster = &c;
    d.subject = AUTHZ_SLICE_LIT("system:serviceaccount:shop:checkout");
    d.verified_subject = d.subject;
    authz_status_ok(&d.status);

    char line[SRV_LOG_LINE_MAX];
    size_t n =
        srv_log_format(line, sizeof(line), 1714564800123456789LL, AUTHZ_SLICE_LIT("rid-7"), &req, &d, 42);
    cr_assert_not(contains(line, n, token), "the token must never be logged");
    cr_assert_not(contains(line, n, "c2lnbmF0dXJl"), "nor its signature");
    cr_assert(contains(line, n, "\"rid-7\""));

    json_t *j = format(&req, &d, AUTHZ_SLICE_LIT("rid-7"));
    cr_assert_str_eq(str(j, "time"), "2024-05-01T12:00:00.123Z");
    cr_assert_str_eq(str(j, "request_id"), "rid-7");
    cr_assert_str_eq(str(j, "cluster"), "cluster-a");
    cr_assert_str_eq(str(j, "subject"), "system:serviceaccount:shop:checkout");
    cr_assert_str_eq(str(j, "source"), "10.1.2.3");
    cr_assert_str_eq(str(j, "method"), "GET");
    cr_assert_str_eq(str(j, "path"), "/a\"b\x01");
    cr_assert_str_eq(str(j, "decision"), "allow");
    cr_assert_str_eq(str(j, "reason"), "ok");
    cr_assert_str_eq(str(j, "issuer_cluster"), "cluster-a");
    cr_assert_str_eq(str(j, "host"), "api.example:8443");
    cr_assert_str_eq(str(j, "message"), "ok");
    cr_assert(json_is_null(json_object_get(j, "rule")), "no rules: null");
    cr_assert(json_is_null(json_object_get(j, "peer_binding")), "binding off: null");
    cr_assert(json_is_null(json_object_get(j, "peer")));
    cr_assert_eq(json_integer_value(json_object_get(j, "duration_us")), 42);
    const char *h = str(j, "token_sha256");
    cr_assert_not_null(h);
    cr_assert_eq(strlen(h), 8);
    cr_assert_eq(strspn(h, "0123456789abcdef"), 8);
    json_decref(j);
}

Test(srv_log, deny_without_token_or_request_id)
{
    pol_request req;
    pol_decision d;

    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    req.cluster = AUTHZ_SLICE_LIT("zzz");
    authz_status_set(&d.status, AUTHZ_REASON_MISSING_TOKEN, "no authorization header");
    json_t *j = format(&req, &d, (authz_slice){NULL, 0});
    cr_assert_str_eq(str(j, "decision"), "deny");
    cr_assert_str_eq(str(j, "reason"), "missing_token");
    cr_assert_str_eq(str(j, "cluster"), "zzz", "the requested cluster when none was resolved");
    cr_assert(json_is_null(json_object_get(j, "request_id")));
    cr_assert(json_is_null(json_object_get(j, "token_sha256")));
    cr_assert(json_is_null(json_object_get(j, "subject")));
    cr_assert(json_is_null(json_object_get(j, "issuer_cluster")));
    cr_assert(json_is_null(json_object_get(j, "rule")));
    cr_assert(json_is_null(json_object_get(j, "host")));
    cr_assert_str_eq(str(j, "message"), "no authorization header");
    json_decref(j);
}

/* The peer binding's result and the identity presented are logged. */
Test(srv_log, peer_binding)
{
    static const pol_peer_result results[] = {POL_PEER_RESULT_BOUND, POL_PEER_RESULT_UNBOUND,
                                              POL_PEER_RESULT_MISMATCH, POL_PEER_RESULT_MISSING};
    static const char *const names[] = {"bound", "unbound", "mismatch", "missing"};
    pol_request req;
    pol_decision d;
    memset(&req, 0, sizeof(req));
    for (size_t i = 0; i < 4; i++) {
        memset(&d, 0, sizeof(d));
        d.peer_result = results[i];
        d.peer =
            i == 1 || i == 3 ? (authz_slice){NULL, 0} : AUTHZ_SLICE_LIT("spiffe://cluster.local/ns/a/sa/b");
        json_t *j = format(&req, &d, (authz_slice){NULL, 0});
        cr_assert_str_eq(str(j, "peer_binding"), names[i]);
        if (d.peer.ptr)
            cr_assert_str_eq(str(j, "peer"), "spiffe://cluster.local/ns/a/sa/b");
        else
            cr_assert(json_is_null(json_object_get(j, "peer")));
        json_decref(j);
    }
}

/* "Who was refused and why": a token that verified but was denied by a
 * later check is logged with its subject, the issuing cluster, the rule
 * that decided and the detailed message the client is not told. */
Test(srv_log, deny_after_verification_names_who_and_why)
{
    pol_cluster target, issuer;
    pol_rule rule;
    pol_request req;
    pol_decision d;

    memset(&target, 0, sizeof(target));
    memset(&issuer, 0, sizeof(issuer));
    memset(&rule, 0, sizeof(rule));
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    target.name = AUTHZ_SLICE_LIT("cluster-a");
    issuer.name = AUTHZ_SLICE_LIT("cluster-b");
    rule.name = AUTHZ_SLICE_LIT("admin-is-ops");
    req.host = AUTHZ_SLICE_LIT("api.cluster-a.test");
    d.cluster = &target;
    d.issuer_cluster = &issuer;
    d.rule = &rule;
    d.verified_subject = AUTHZ_SLICE_LIT("system:serviceaccount:shop:web");
    authz_status_set(&d.status, AUTHZ_REASON_FORBIDDEN, "rule admin-is-ops does not allow shop:web");
    json_t *j = format(&req, &d, (authz_slice){NULL, 0});
    cr_assert_str_eq(str(j, "decision"), "deny");
    cr_assert_str_eq(str(j, "subject"), "system:serviceaccount:shop:web");
    cr_assert_str_eq(str(j, "cluster"), "cluster-a");
    cr_assert_str_eq(str(j, "issuer_cluster"), "cluster-b");
    cr_assert_str_eq(str(j, "rule"), "admin-is-ops");
    cr_assert_str_eq(str(j, "host"), "api.cluster-a.test");
    cr_assert_str_eq(str(j, "message"), "rule admin-is-ops does not allow shop:web");
    json_decref(j);
}

/* Queries and fragments carry secrets: the log keeps the path alone. */
Test(srv_log, path_is_logged_without_query_or_fragment)
{
    static const char *const paths[][2] = {
        {"/orders?access_token=s3cret&x=1", "/orders"},
        {"/cb#id_token=s3cret", "/cb"},
        {"/a#frag?s3cret", "/a"},
        {"/?s3cret", "/"},
        {"/plain", "/plain"},
    };
    pol_request req;
    pol_decision d;
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        req.path = authz_slice_from_cstr(paths[i][0]);
        char line[SRV_LOG_LINE_MAX];
        size_t n = srv_log_format(line, sizeof(line), 0, (authz_slice){NULL, 0}, &req, &d, 0);
        cr_assert_gt(n, 0);
        cr_assert_not(contains(line, n, "s3cret"), "%s", paths[i][0]);
        json_t *j = format(&req, &d, (authz_slice){NULL, 0});
        cr_assert_str_eq(str(j, "path"), paths[i][1]);
        json_decref(j);
    }
    req.path = AUTHZ_SLICE_LIT("?only-a-query");
    json_t *j = format(&req, &d, (authz_slice){NULL, 0});
    cr_assert(json_is_null(json_object_get(j, "path")), "nothing left: null");
    json_decref(j);
}

/* Escapes between runs of plain bytes, and a long plain value cut at its
 * budget (256 bytes with the opening quote). */
Test(srv_log, escaping_and_cutting)
{
    static char long_id[1000];
    pol_request req;
    pol_decision d;
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    memset(long_id, 'x', sizeof(long_id));
    req.method = AUTHZ_SLICE_LIT("ab\"cd\\ef\x01gh\xffij\"");
    json_t *j = format(&req, &d, (authz_slice){long_id, sizeof(long_id)});
    cr_assert_str_eq(str(j, "method"), "ab\"cd\\ef\x01gh\xc3\xbfij\"", "\\u00ff reads back as U+00FF");
    cr_assert_eq(strlen(str(j, "request_id")), 255);
    cr_assert_eq(strspn(str(j, "request_id"), "x"), 255);
    json_decref(j);
}

/* Each byte that must be escaped, at every offset of a value longer than
 * the eight-byte steps of the clean-run scan, and its neighbours that must
 * not: the line stays printable ASCII and the value reads back whole. */
Test(srv_log, every_escaped_byte_at_every_offset)
{
    static const unsigned char bytes[] = {0x00, 0x01, 0x1F, '"', '\\', 0x7F, 0x80, 0xC3,
                                          0xFF, 0x20, '!',  '#', '[',  ']',  0x7E, 'a'};
    char value[24];
    char line[SRV_LOG_LINE_MAX];
    pol_request req;
    pol_decision d;
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    for (size_t k = 0; k < sizeof(bytes); k++) {
        unsigned char b = bytes[k];
        for (size_t at = 0; at < sizeof(value); at++) {
            memset(value, 'v', sizeof(value));
            value[at] = (char)b;
            req.method = (authz_slice){value, sizeof(value)};
            size_t n = srv_log_format(line, sizeof(line), 0, (authz_slice){NULL, 0}, &req, &d, 0);
            cr_assert_gt(n, 0);
            for (size_t i = 0; i + 1 < n; i++) {
                cr_assert(line[i] >= 0x20 && line[i] < 0x7F, "byte 0x%02x at %zu: raw 0x%02x in the line", b,
                          at, (unsigned char)line[i]);
            }
            json_error_t err;
            json_t *j = json_loadb(line, n, JSON_ALLOW_NUL, &err);
            cr_assert_not_null(j, "byte 0x%02x at %zu: %s", b, at, err.text);
            const char *method = str(j, "method");
            size_t len = json_string_length(json_object_get(j, "method"));
            if (b < 0x80) {
                cr_assert_eq(len, sizeof(value), "byte 0x%02x at %zu", b, at);
                cr_assert(memcmp(method, value, sizeof(value)) == 0, "byte 0x%02x at %zu", b, at);
            } else {
                cr_assert_eq(len, sizeof(value) + 1, "\\u00XX reads back as two UTF-8 bytes");
            }
            json_decref(j);
        }
    }
}

/* Every string field at its worst (long, and each byte escaped to six):
 * the line is still written, whole, valid JSON, within SRV_LOG_LINE_MAX,
 * every field present (an attacker cannot drop a line by sending long
 * headers). */
Test(srv_log, longest_values_still_give_a_whole_line)
{
    static char worst[8192];
    memset(worst, '\x01', sizeof(worst) - 1);
    authz_slice w = {worst, sizeof(worst) - 1};
    pol_cluster c;
    pol_provider provider;
    pol_rule rule;
    pol_request req;
    pol_decision d;
    memset(&provider, 0, sizeof(provider));
    provider.name = w;
    memset(&c, 0, sizeof(c));
    memset(&rule, 0, sizeof(rule));
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    c.name = w;
    rule.name = w;
    req.cluster = req.source = req.host = req.method = req.path = w;
    req.authorization = w;
    d.cluster = d.issuer_cluster = &c;
    d.rule = &rule;
    d.provider = &provider;
    d.verified_subject = w;
    d.peer = w;
    d.peer_result = POL_PEER_RESULT_MISMATCH;
    memset(d.status.message, '"', sizeof(d.status.message) - 1);
    d.status.reason = AUTHZ_REASON_FORBIDDEN;
    char line[SRV_LOG_LINE_MAX];
    size_t n = srv_log_format(line, sizeof(line), INT64_C(4102444799999999999), w, &req, &d, UINT64_MAX);
    cr_assert_gt(n, 0, "the line must not be dropped");
    cr_assert_leq(n, SRV_LOG_LINE_MAX);
    json_error_t err;
    /* duration_us is 2^64 - 1, past what jansson holds as an integer. */
    json_t *j = json_loadb(line, n, JSON_DECODE_INT_AS_REAL, &err);
    cr_assert_not_null(j, "valid JSON: %s", err.text);
    static const char *const keys[] = {
        "time",         "request_id", "cluster",    "issuer_cluster", "provider",    "subject", "source",
        "host",         "method",     "path",       "decision",       "reason",      "rule",    "peer",
        "peer_binding", "message",    "generation", "duration_us",    "token_sha256"};
    cr_assert_eq(json_object_size(j), sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_not_null(json_object_get(j, keys[i]), "%s", keys[i]);
    cr_assert_str_eq(str(j, "reason"), "forbidden");
    cr_assert_str_eq(str(j, "peer_binding"), "mismatch");
    json_decref(j);
}

Test(srv_log, same_token_same_fingerprint)
{
    pol_request a, b;
    pol_decision d;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&d, 0, sizeof(d));
    a.authorization = AUTHZ_SLICE_LIT("Bearer abc.def.ghi");
    b.authorization = AUTHZ_SLICE_LIT("bearer   abc.def.ghi");
    d.token = AUTHZ_SLICE_LIT("abc.def.ghi"); /* what pol_decide extracted */
    json_t *ja = format(&a, &d, (authz_slice){NULL, 0});
    json_t *jb = format(&b, &d, (authz_slice){NULL, 0});
    cr_assert_str_eq(str(ja, "token_sha256"), str(jb, "token_sha256"),
                     "the hash covers the token, not the scheme");
    json_decref(ja);
    json_decref(jb);
}

Test(srv_log, cached_digest_is_used_as_is)
{
    pol_request req;
    pol_decision d;
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    req.authorization = AUTHZ_SLICE_LIT("Bearer abc.def.ghi");
    d.token = AUTHZ_SLICE_LIT("abc.def.ghi");
    uint8_t digest[AUTHZ_BEARER_DIGEST_LEN];
    cr_assert_eq(authz_bearer_digest(d.token, digest), 0);
    json_t *j = format(&req, &d, (authz_slice){NULL, 0});
    char hex[2 * AUTHZ_BEARER_DIGEST_LEN + 1];
    for (size_t i = 0; i < AUTHZ_BEARER_DIGEST_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    cr_assert_str_eq(str(j, "token_sha256"), hex, "hashed here when the decision carries no digest");
    json_decref(j);

    d.has_token_digest = true;
    memcpy(d.token_digest, "\xde\xad\xbe\xef", 4);
    j = format(&req, &d, (authz_slice){NULL, 0});
    cr_assert_str_eq(str(j, "token_sha256"), "deadbeef", "the token cache's digest, not a new hash");
    json_decref(j);
}

Test(srv_log, time_matches_gmtime_across_years)
{
    pol_request req;
    pol_decision d;
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    /* Steps of a little over a day and a prime number of seconds walk through
     * leap years, month ends and every time of day from 1970 to 2100. */
    for (int64_t secs = 0; secs < 4102444800LL; secs += 86400 + 7919) {
        int64_t ns = secs * 1000000000LL + 987000000LL;
        char line[SRV_LOG_LINE_MAX];
        size_t n = srv_log_format(line, sizeof(line), ns, (authz_slice){NULL, 0}, &req, &d, 0);
        cr_assert_gt(n, 0);
        time_t t = (time_t)secs;
        struct tm tm;
        cr_assert_not_null(gmtime_r(&t, &tm));
        char want[40];
        strftime(want, sizeof want, "{\"time\":\"%Y-%m-%dT%H:%M:%S.987Z\"", &tm);
        cr_assert(strncmp(line, want, strlen(want)) == 0, "at %lld: %.40s, wanted %s", (long long)secs, line,
                  want);
    }
}

/* Lines gathered in a batch reach stderr (captured through a pipe) whole,
 * in order and none lost; the batch, and so each write(2), never holds more
 * than PIPE_BUF bytes. */
Test(srv_log, batch_writes_whole_lines)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    cr_assert_eq(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);

    pol_request req;
    pol_decision d;
    memset(&req, 0, sizeof(req));
    memset(&d, 0, sizeof(d));
    req.path = AUTHZ_SLICE_LIT("/orders");
    static srv_log_batch batch;
    enum { LINES = 40 };
    for (int i = 0; i < LINES; i++) {
        srv_log_decision(&batch, AUTHZ_SLICE_LIT("rid"), &req, &d, (uint64_t)i);
        cr_assert_leq(batch.len, SRV_LOG_BATCH_BYTES);
    }
    srv_log_flush(&batch);
    cr_assert_eq(batch.len, 0);
    cr_assert_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(fds[1]);

    static char all[64 * 1024];
    size_t got = 0;
    ssize_t n;
    while ((n = read(fds[0], all + got, sizeof(all) - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    int lines = 0;
    for (char *line = all; line < all + got;) {
        char *end = memchr(line, '\n', (size_t)(all + got - line));
        cr_assert_not_null(end, "every line ends in a newline");
        json_error_t err;
        json_t *j = json_loadb(line, (size_t)(end - line), 0, &err);
        cr_assert_not_null(j, "line %d is JSON: %s", lines, err.text);
        cr_assert_eq(json_integer_value(json_object_get(j, "duration_us")), lines, "in order");
        json_decref(j);
        lines++;
        line = end + 1;
    }
    cr_assert_eq(lines, LINES);
}
