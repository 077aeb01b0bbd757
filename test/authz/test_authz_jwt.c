#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_b64.h"
#include "authz_jwt.h"
#include "tg_failalloc.h"

/* Every parse of a test allocates from this arena; each Criterion test is its own process. */
static authz_arena arena;

static void arena_setup(void)
{
    authz_arena_init(&arena, NULL, 0, 0);
}

static void arena_teardown(void)
{
    authz_arena_free(&arena);
}

TestSuite(jwt, .init = arena_setup, .fini = arena_teardown);

#define GOOD_HEADER "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"
#define GOOD_PAYLOAD "{\"iss\":\"https://kube.example\",\"aud\":[\"api\"],\"exp\":2000000000}"

/* Appends base64url(|data|) to |out| at |*pos|. */
static void append_b64(char *out, size_t cap, size_t *pos, const unsigned char *data, size_t len)
{
    size_t n = authz_b64url_encode(data, len, out + *pos, cap - *pos);
    cr_assert(n > 0 || len == 0);
    *pos += n;
}

/* header.payload.signature with |sig_len| fake signature bytes. Caller frees. */
static char *make_token(const char *header, const char *payload, size_t sig_len)
{
    size_t hl = strlen(header), pl = strlen(payload);
    size_t cap = (hl + pl + sig_len) * 2 + 16;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    unsigned char *sig = malloc(sig_len + 1);
    cr_assert_not_null(sig);
    for (size_t i = 0; i < sig_len; i++)
        sig[i] = (unsigned char)(i * 7 + 1);
    size_t pos = 0;
    append_b64(out, cap, &pos, (const unsigned char *)header, hl);
    out[pos++] = '.';
    append_b64(out, cap, &pos, (const unsigned char *)payload, pl);
    out[pos++] = '.';
    append_b64(out, cap, &pos, sig, sig_len);
    out[pos] = '\0';
    free(sig);
    return out;
}

static authz_reason parse_text(const char *token, authz_jwt *jwt, authz_status *st)
{
    int rc = authz_jwt_parse(authz_slice_from_cstr(token), NULL, &arena, jwt, st);
    cr_assert_eq(rc == 0, st->reason == AUTHZ_REASON_OK, "rc %d reason %s", rc,
                 authz_reason_name(st->reason));
    if (rc != 0) {
        cr_assert_null(jwt->header);
        cr_assert_null(jwt->payload);
        cr_assert_null(jwt->header_text.ptr);
        cr_assert_null(jwt->signature);
        cr_assert_null(jwt->aud);
    }
    return st->reason;
}

/* Parses header/payload and expects |want|. */
static void expect(const char *header, const char *payload, authz_reason want)
{
    char *token = make_token(header, payload, 64);
    authz_jwt jwt;
    authz_status st;
    authz_reason got = parse_text(token, &jwt, &st);
    cr_assert_eq(got, want, "header %s payload %s: got %s (%s)", header, payload, authz_reason_name(got),
                 st.message);
    free(token);
}

static void expect_payload(const char *payload, authz_reason want)
{
    expect(GOOD_HEADER, payload, want);
}

static void expect_header(const char *header, authz_reason want)
{
    expect(header, GOOD_PAYLOAD, want);
}

/* Parses a good-header token with |payload|, which must succeed. */
static void parse_ok(const char *payload, authz_jwt *jwt, char **token)
{
    *token = make_token(GOOD_HEADER, payload, 256);
    authz_status st;
    cr_assert_eq(parse_text(*token, jwt, &st), AUTHZ_REASON_OK, "%s: %s", payload, st.message);
}

static authz_jwt_time parse_time_claim(const char *payload)
{
    authz_jwt jwt;
    char *token;
    parse_ok(payload, &jwt, &token);
    authz_jwt_time t = jwt.exp;
    free(token);
    return t;
}

Test(jwt, good_token)
{
    char *token = make_token(GOOD_HEADER, GOOD_PAYLOAD, 256);
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_OK, "%s", st.message);
    cr_assert_eq(jwt.alg, AUTHZ_ALG_RS256);
    cr_assert(authz_slice_eq_cstr(jwt.alg_name, "RS256"));
    cr_assert(jwt.kid.present && authz_slice_eq_cstr(jwt.kid.value, "k1"));
    cr_assert(jwt.typ.present && authz_slice_eq_cstr(jwt.typ.value, "JWT"));
    cr_assert(jwt.iss.present && authz_slice_eq_cstr(jwt.iss.value, "https://kube.example"));
    cr_assert_not(jwt.sub.present);
    cr_assert(jwt.aud_present);
    cr_assert_eq(jwt.aud_count, 1);
    cr_assert(authz_slice_eq_cstr(jwt.aud[0], "api"));
    cr_assert_eq(jwt.exp.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(jwt.exp.seconds, 2000000000);
    cr_assert_eq(jwt.nbf.state, AUTHZ_JWT_TIME_ABSENT);
    cr_assert_eq(jwt.iat.state, AUTHZ_JWT_TIME_ABSENT);
    cr_assert_not(jwt.k8s_present);

    const char *second_dot = strchr(strchr(token, '.') + 1, '.');
    cr_assert_eq(jwt.signing_input.ptr, token);
    cr_assert_eq(jwt.signing_input.len, (size_t)(second_dot - token));
    cr_assert_eq(jwt.signature_len, 256);
    for (size_t i = 0; i < 256; i++)
        cr_assert_eq(jwt.signature[i], (unsigned char)(i * 7 + 1));
    cr_assert(authz_slice_eq_cstr(jwt.header_text, GOOD_HEADER));
    cr_assert(authz_slice_eq_cstr(jwt.payload_text, GOOD_PAYLOAD));
    cr_assert_eq(authz_json_type_of(jwt.header), AUTHZ_JSON_OBJECT);
    cr_assert_eq(authz_json_count(jwt.payload), 3);
    free(token);
}

Test(jwt, all_supported_algs)
{
    const char *algs[] = {"RS256", "PS256", "ES256", "ES384", "ES512"};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        char header[64];
        snprintf(header, sizeof header, "{\"alg\":\"%s\"}", algs[i]);
        expect_header(header, AUTHZ_REASON_OK);
    }
}

Test(jwt, alg_none_and_hmac_refused)
{
    const char *headers[] = {"{\"alg\":\"none\"}",  "{\"alg\":\"None\"}",  "{\"alg\":\"NONE\"}",
                             "{\"alg\":\"HS256\"}", "{\"alg\":\"HS512\"}", "{\"alg\":\"rs256\"}",
                             "{\"alg\":\"RS512\"}", "{\"alg\":\"\"}",      "{\"typ\":\"JWT\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        expect_header(headers[i], AUTHZ_REASON_UNSUPPORTED_ALG);
}

Test(jwt, alg_named_in_message)
{
    char *token = make_token("{\"alg\":\"HS256\"}", GOOD_PAYLOAD, 32);
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_UNSUPPORTED_ALG);
    cr_assert(strstr(st.message, "HS256"), "%s", st.message);
    free(token);
}

Test(jwt, alg_wrong_type)
{
    expect_header("{\"alg\":256}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_header("{\"alg\":null}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_header("{\"alg\":[\"RS256\"]}", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, crit_refused)
{
    const char *headers[] = {"{\"alg\":\"RS256\",\"crit\":[\"x\"],\"x\":1}",
                             "{\"alg\":\"RS256\",\"crit\":[]}", "{\"alg\":\"RS256\",\"crit\":\"alg\"}",
                             "{\"alg\":\"RS256\",\"crit\":{}}", "{\"alg\":\"RS256\",\"crit\":null}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        expect_header(headers[i], AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, kid_typ_types)
{
    expect_header("{\"alg\":\"RS256\",\"kid\":1}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_header("{\"alg\":\"RS256\",\"kid\":null}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_header("{\"alg\":\"RS256\",\"typ\":[]}", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, embedded_key_headers_ignored)
{
    char *token =
        make_token("{\"alg\":\"ES256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"},\"jku\":\"https://evil/\","
                   "\"x5u\":\"https://evil/c\",\"x5c\":[\"MIIB\"]}",
                   GOOD_PAYLOAD, 64);
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_OK, "%s", st.message);
    cr_assert_eq(jwt.alg, AUTHZ_ALG_ES256);
    cr_assert_not(jwt.kid.present);
    free(token);
}

Test(jwt, duplicate_keys)
{
    expect_header("{\"alg\":\"RS256\",\"alg\":\"RS256\"}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_header("{\"alg\":\"RS256\",\"kid\":\"a\",\"kid\":\"b\"}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"iss\":\"a\",\"iss\":\"b\",\"exp\":1}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"aud\":\"a\",\"aud\":[\"b\"],\"exp\":1}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"exp\":1,\"exp\":2}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"kubernetes.io\":{},\"kubernetes.io\":{}}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"kubernetes.io\":{\"namespace\":\"a\",\"namespace\":\"b\"}}",
                   AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"kubernetes.io\":{\"serviceaccount\":{\"name\":\"a\",\"name\":\"b\"}}}",
                   AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, segment_count)
{
    authz_jwt jwt;
    authz_status st;
    char *token = make_token(GOOD_HEADER, GOOD_PAYLOAD, 64);
    size_t len = strlen(token);

    char *five = malloc(len + 8);
    snprintf(five, len + 8, "%s.AA.AA", token);
    cr_assert_eq(parse_text(five, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    free(five);

    char *two = strdup(token);
    *strrchr(two, '.') = '\0';
    cr_assert_eq(parse_text(two, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    free(two);

    cr_assert_eq(parse_text("abc", &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert_eq(parse_text("", &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    authz_slice null_token = {NULL, 0};
    cr_assert_eq(authz_jwt_parse(null_token, NULL, &arena, &jwt, &st), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_MALFORMED_TOKEN);
    free(token);
}

Test(jwt, empty_segments)
{
    authz_jwt jwt;
    authz_status st;
    char *token = make_token(GOOD_HEADER, GOOD_PAYLOAD, 64);
    char *p1 = strchr(token, '.'), *p2 = strchr(p1 + 1, '.');
    char buf[1024];

    snprintf(buf, sizeof buf, "%s", p1); /* ".payload.sig" */
    cr_assert_eq(parse_text(buf, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    snprintf(buf, sizeof buf, "%.*s.%s", (int)(p1 - token), token, p2); /* "header..sig" */
    cr_assert_eq(parse_text(buf, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    snprintf(buf, sizeof buf, "%.*s", (int)(p2 - token + 1), token); /* "header.payload." */
    cr_assert_eq(parse_text(buf, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN, "%s", st.message);
    cr_assert_eq(parse_text("..", &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    free(token);
}

Test(jwt, non_base64url_characters)
{
    authz_jwt jwt;
    authz_status st;
    char *token = make_token(GOOD_HEADER, GOOD_PAYLOAD, 64);
    size_t len = strlen(token);
    const char *inserts[] = {"=", "+", "/", " ", "\t", "\n", "%", "\x80"};
    for (size_t i = 0; i < sizeof inserts / sizeof inserts[0]; i++) {
        char *bad = malloc(len + 2);
        snprintf(bad, len + 2, "%s%s", token, inserts[i]);
        cr_assert_eq(parse_text(bad, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN, "insert %zu", i);
        bad[3] = inserts[i][0]; /* inside the header segment too */
        bad[len] = '\0';
        cr_assert_eq(parse_text(bad, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN, "insert %zu", i);
        free(bad);
    }
    free(token);
}

Test(jwt, padding_refused)
{
    /* {"alg":"RS256"} is 15 bytes: 20 characters, no padding needed; add a 16th byte to need it. */
    char header_b64[64], payload_b64[256], token[512];
    const char *header = "{\"alg\":\"RS256\"} ";
    authz_b64url_encode((const unsigned char *)header, strlen(header), header_b64, sizeof header_b64);
    authz_b64url_encode((const unsigned char *)GOOD_PAYLOAD, strlen(GOOD_PAYLOAD), payload_b64,
                        sizeof payload_b64);
    authz_jwt jwt;
    authz_status st;
    snprintf(token, sizeof token, "%s.%s.AAAA", header_b64, payload_b64);
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_OK, "%s", st.message);
    snprintf(token, sizeof token, "%s==.%s.AAAA", header_b64, payload_b64);
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    snprintf(token, sizeof token, "%s.%s.AA==", header_b64, payload_b64);
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    /* A length of 1 mod 4 and non-canonical trailing bits. */
    snprintf(token, sizeof token, "%s.%s.AAAAA", header_b64, payload_b64);
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    snprintf(token, sizeof token, "%s.%s.AB", header_b64, payload_b64);
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, json_serialization_refused)
{
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(parse_text("{\"payload\":\"e30\",\"signatures\":[]}", &jwt, &st),
                 AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert(strstr(st.message, "JSON"), "%s", st.message);
}

Test(jwt, signature_size)
{
    authz_jwt jwt;
    authz_status st;
    char *ok = make_token(GOOD_HEADER, GOOD_PAYLOAD, 1024);
    cr_assert_eq(parse_text(ok, &jwt, &st), AUTHZ_REASON_OK, "%s", st.message);
    cr_assert_eq(jwt.signature_len, 1024);
    free(ok);
    char *big = make_token(GOOD_HEADER, GOOD_PAYLOAD, 1025);
    cr_assert_eq(parse_text(big, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    free(big);
}

Test(jwt, huge_token_fast)
{
    size_t len = 1u << 20;
    char *token = malloc(len + 1);
    memset(token, 'A', len);
    token[100] = '.';
    token[200] = '.';
    token[len] = '\0';
    authz_jwt jwt;
    authz_status st;
    clock_t start = clock();
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert(strstr(st.message, "1048576 bytes, limit 16384"), "%s", st.message);

    /* With a limit that admits it, a 1 MiB token of dots stops at the third. */
    authz_jwt_limits limits = {len, 16, 0};
    memset(token, '.', len);
    cr_assert_eq(authz_jwt_parse((authz_slice){token, len}, &limits, &arena, &jwt, &st), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert(strstr(st.message, "more than three"), "%s", st.message);
    cr_assert_lt((double)(clock() - start) / CLOCKS_PER_SEC, 0.5);
    free(token);
}

Test(jwt, hundred_thousand_dots)
{
    size_t len = 100000;
    char *token = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        token[i] = i % 2 ? '.' : 'A';
    token[len] = '\0';
    authz_jwt jwt;
    authz_status st;
    clock_t start = clock();
    authz_jwt_limits limits = {len, 16, 0};
    cr_assert_eq(authz_jwt_parse((authz_slice){token, len}, &limits, &arena, &jwt, &st), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert(strstr(st.message, "more than three"), "%s", st.message);
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert_lt((double)(clock() - start) / CLOCKS_PER_SEC, 0.5);
    free(token);
}

/* {"alg":"RS256","x":[[[...]]]} with |depth| total nesting levels. */
static char *nested_header(size_t depth)
{
    size_t inner = depth - 1;
    size_t cap = 32 + 2 * inner;
    char *h = malloc(cap);
    size_t pos = (size_t)snprintf(h, cap, "{\"alg\":\"RS256\",\"x\":");
    memset(h + pos, '[', inner);
    pos += inner;
    memset(h + pos, ']', inner);
    pos += inner;
    h[pos++] = '}';
    h[pos] = '\0';
    return h;
}

Test(jwt, nesting_depth)
{
    authz_jwt_limits limits = {1u << 20, AUTHZ_JWT_DEFAULT_MAX_DEPTH, 0};
    size_t depths[] = {AUTHZ_JWT_DEFAULT_MAX_DEPTH, AUTHZ_JWT_DEFAULT_MAX_DEPTH + 1, 10000};
    authz_reason want[] = {AUTHZ_REASON_OK, AUTHZ_REASON_MALFORMED_TOKEN, AUTHZ_REASON_MALFORMED_TOKEN};
    for (size_t i = 0; i < 3; i++) {
        char *header = nested_header(depths[i]);
        char *token = make_token(header, GOOD_PAYLOAD, 64);
        authz_jwt jwt;
        authz_status st;
        authz_jwt_parse(authz_slice_from_cstr(token), &limits, &arena, &jwt, &st);
        cr_assert_eq(st.reason, want[i], "depth %zu: %s", depths[i], st.message);
        free(token);
        free(header);
    }
}

Test(jwt, brackets_inside_strings_do_not_count)
{
    expect_header("{\"alg\":\"RS256\",\"x\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[[\"}",
                  AUTHZ_REASON_OK);
}

Test(jwt, bad_json)
{
    expect_header("{\"alg\":\"RS256\"", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_header("[\"RS256\"]", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_header("{\"alg\":\"RS256\"} x", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("\"just a string\"", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"iss\":\"a\\u0000b\"}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"exp\":123456789012345678901234567890}", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, string_claim_types)
{
    expect_payload("{\"iss\":1}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"iss\":null}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"sub\":[\"x\"]}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{}", AUTHZ_REASON_OK);
}

Test(jwt, audience_forms)
{
    authz_jwt jwt;
    char *token;

    parse_ok("{\"aud\":[]}", &jwt, &token);
    cr_assert(jwt.aud_present);
    cr_assert_eq(jwt.aud_count, 0);
    free(token);

    parse_ok("{\"aud\":\"\"}", &jwt, &token);
    cr_assert(jwt.aud_present);
    cr_assert_eq(jwt.aud_count, 1);
    cr_assert_eq(jwt.aud[0].len, 0);
    free(token);

    parse_ok("{\"aud\":[\"\"]}", &jwt, &token);
    cr_assert_eq(jwt.aud_count, 1);
    free(token);

    parse_ok("{\"aud\":[\"a\",\"b\",\"c\"]}", &jwt, &token);
    cr_assert_eq(jwt.aud_count, 3);
    cr_assert(authz_slice_eq_cstr(jwt.aud[2], "c"));
    free(token);

    parse_ok("{}", &jwt, &token);
    cr_assert_not(jwt.aud_present);
    cr_assert_eq(jwt.aud_count, 0);
    free(token);
}

Test(jwt, audience_wrong_types)
{
    expect_payload("{\"aud\":1}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"aud\":{}}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"aud\":null}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"aud\":[1]}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"aud\":[\"a\",[\"b\"]]}", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, audience_count_limit)
{
    char payload[1024];
    size_t pos = (size_t)snprintf(payload, sizeof payload, "{\"aud\":[");
    for (unsigned i = 0; i <= AUTHZ_JWT_MAX_AUDIENCES; i++)
        pos += (size_t)snprintf(payload + pos, sizeof payload - pos, "%s\"a%u\"", i ? "," : "", i);
    snprintf(payload + pos, sizeof payload - pos, "]}");
    expect_payload(payload, AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, numeric_dates)
{
    authz_jwt_time t;
    t = parse_time_claim("{\"exp\":1700000000}");
    cr_assert_eq(t.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(t.seconds, 1700000000);
    t = parse_time_claim("{\"exp\":-5}");
    cr_assert_eq(t.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(t.seconds, -5);
    t = parse_time_claim("{\"exp\":1.9}");
    cr_assert_eq(t.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(t.seconds, 1);
    t = parse_time_claim("{\"exp\":-1.5}");
    cr_assert_eq(t.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(t.seconds, -2);
    t = parse_time_claim("{\"exp\":1.7e9}");
    cr_assert_eq(t.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(t.seconds, 1700000000);
    t = parse_time_claim("{\"exp\":9223372036854775807}");
    cr_assert_eq(t.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(t.seconds, INT64_MAX);
    t = parse_time_claim("{\"exp\":-9223372036854775808}");
    cr_assert_eq(t.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(t.seconds, INT64_MIN);
    t = parse_time_claim("{}");
    cr_assert_eq(t.state, AUTHZ_JWT_TIME_ABSENT);
}

Test(jwt, numeric_dates_invalid)
{
    const char *payloads[] = {
        "{\"exp\":\"1700000000\"}", "{\"exp\":true}",   "{\"exp\":null}",  "{\"exp\":{}}", "{\"exp\":[1]}",
        "{\"exp\":1e300}",          "{\"exp\":-1e300}", "{\"exp\":9.3e18}"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        authz_jwt_time t = parse_time_claim(payloads[i]);
        cr_assert_eq(t.state, AUTHZ_JWT_TIME_INVALID, "%s", payloads[i]);
    }
    /* A real that overflows a double is not JSON we accept. */
    expect_payload("{\"exp\":1e400}", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(jwt, nbf_iat)
{
    authz_jwt jwt;
    char *token;
    parse_ok("{\"nbf\":10,\"iat\":\"x\"}", &jwt, &token);
    cr_assert_eq(jwt.nbf.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(jwt.nbf.seconds, 10);
    cr_assert_eq(jwt.iat.state, AUTHZ_JWT_TIME_INVALID);
    free(token);
}

Test(jwt, kubernetes_claims_extracted)
{
    authz_jwt jwt;
    char *token;
    parse_ok("{\"iss\":\"https://kubernetes.default.svc\",\"sub\":\"system:serviceaccount:shop:cart\","
             "\"aud\":[\"api\",\"other\"],\"exp\":1700003600,\"nbf\":1700000000,\"iat\":1700000000,"
             "\"jti\":\"abc\",\"kubernetes.io\":{\"namespace\":\"shop\","
             "\"serviceaccount\":{\"name\":\"cart\",\"uid\":\"sa-uid\"},"
             "\"pod\":{\"name\":\"cart-1\",\"uid\":\"pod-uid\"},"
             "\"node\":{\"name\":\"node-a\",\"uid\":\"node-uid\"},\"warnafter\":1700000607}}",
             &jwt, &token);
    cr_assert(jwt.k8s_present);
    cr_assert(authz_slice_eq_cstr(jwt.sub.value, "system:serviceaccount:shop:cart"));
    cr_assert(authz_slice_eq_cstr(jwt.k8s_namespace.value, "shop"));
    cr_assert(jwt.k8s_sa_name.present && authz_slice_eq_cstr(jwt.k8s_sa_name.value, "cart"));
    cr_assert(jwt.k8s_sa_uid.present && authz_slice_eq_cstr(jwt.k8s_sa_uid.value, "sa-uid"));
    cr_assert(jwt.k8s_pod_name.present && authz_slice_eq_cstr(jwt.k8s_pod_name.value, "cart-1"));
    cr_assert(jwt.k8s_pod_uid.present && authz_slice_eq_cstr(jwt.k8s_pod_uid.value, "pod-uid"));
    cr_assert(jwt.k8s_node_name.present && authz_slice_eq_cstr(jwt.k8s_node_name.value, "node-a"));
    cr_assert(jwt.k8s_node_uid.present && authz_slice_eq_cstr(jwt.k8s_node_uid.value, "node-uid"));
    cr_assert_eq(jwt.k8s_warnafter.state, AUTHZ_JWT_TIME_VALID);
    cr_assert_eq(jwt.k8s_warnafter.seconds, 1700000607);
    cr_assert_eq(jwt.aud_count, 2);
    cr_assert_eq(jwt.iat.seconds, 1700000000);
    free(token);
}

Test(jwt, kubernetes_claims_partial)
{
    authz_jwt jwt;
    char *token;
    parse_ok("{\"kubernetes.io\":{\"namespace\":\"ns\"}}", &jwt, &token);
    cr_assert(jwt.k8s_present);
    cr_assert_not(jwt.k8s_sa_name.present);
    cr_assert_not(jwt.k8s_pod_name.present);
    cr_assert_eq(jwt.k8s_warnafter.state, AUTHZ_JWT_TIME_ABSENT);
    free(token);
}

Test(jwt, kubernetes_claims_wrong_types)
{
    const char *payloads[] = {
        "{\"kubernetes.io\":\"shop\"}",
        "{\"kubernetes.io\":[]}",
        "{\"kubernetes.io\":{\"namespace\":1}}",
        "{\"kubernetes.io\":{\"serviceaccount\":\"cart\"}}",
        "{\"kubernetes.io\":{\"serviceaccount\":{\"name\":1}}}",
        "{\"kubernetes.io\":{\"serviceaccount\":{\"uid\":[]}}}",
        "{\"kubernetes.io\":{\"pod\":[]}}",
        "{\"kubernetes.io\":{\"pod\":{\"name\":null}}}",
        "{\"kubernetes.io\":{\"node\":{\"uid\":false}}}",
        "{\"kubernetes.io\":{\"warnafter\":\"soon\"}}",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++)
        expect_payload(payloads[i], AUTHZ_REASON_MALFORMED_TOKEN);
}

static int cidr_claim(const char *payload, authz_cidr *out, size_t max, size_t *count)
{
    authz_jwt jwt;
    char *token;
    parse_ok(payload, &jwt, &token);
    *count = 99;
    int rc = authz_jwt_cidr_claim(&jwt, "boundCIDRs", out, max, count);
    free(token);
    return rc;
}

Test(jwt, cidr_claim)
{
    authz_cidr out[4];
    size_t count;
    cr_assert_eq(cidr_claim("{}", out, 4, &count), 0);
    cr_assert_eq(count, 0);
    cr_assert_eq(
        cidr_claim("{\"boundCIDRs\":[\"10.0.0.0/8\",\"fd00::/8\",\"::ffff:1.2.3.4\"]}", out, 4, &count), 1);
    cr_assert_eq(count, 3);
    cr_assert_eq(out[0].prefix_len, 8);
    cr_assert_eq(out[1].net.family, 6);
    cr_assert_eq(out[2].net.family, 4);
    cr_assert_eq(out[2].prefix_len, 32);
}

Test(jwt, cidr_claim_malformed)
{
    const char *payloads[] = {
        "{\"boundCIDRs\":[]}",
        "{\"boundCIDRs\":\"10.0.0.0/8\"}",
        "{\"boundCIDRs\":[\"10.0.0.1/8\"]}",
        "{\"boundCIDRs\":[\"10.0.0.0/8\",1]}",
        "{\"boundCIDRs\":[\"nope\"]}",
        "{\"boundCIDRs\":null}",
        "{\"boundCIDRs\":[\"1.1.1.1\",\"2.2.2.2\",\"3.3.3.3\",\"4.4.4.4\",\"5.5.5.5\"]}"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        authz_cidr out[4];
        size_t count;
        cr_assert_eq(cidr_claim(payloads[i], out, 4, &count), -1, "%s", payloads[i]);
        cr_assert_eq(count, 0);
    }
}

Test(jwt, cidr_claim_on_zeroed_jwt)
{
    authz_jwt jwt;
    memset(&jwt, 0, sizeof jwt);
    authz_cidr out[1];
    size_t count = 5;
    cr_assert_eq(authz_jwt_cidr_claim(&jwt, "boundCIDRs", out, 1, &count), 0);
    cr_assert_eq(count, 0);
}

Test(jwt, default_limits)
{
    authz_jwt_limits l = authz_jwt_default_limits();
    cr_assert_eq(l.max_token_bytes, AUTHZ_JWT_DEFAULT_MAX_TOKEN);
    cr_assert_eq(l.max_json_depth, AUTHZ_JWT_DEFAULT_MAX_DEPTH);
    cr_assert_eq(l.max_json_nodes, AUTHZ_JWT_DEFAULT_MAX_NODES);
}

Test(jwt, out_of_memory_on_every_path)
{
    char *token =
        make_token(GOOD_HEADER,
                   "{\"iss\":\"https:\\/\\/i\",\"aud\":[\"a\",\"b\"],\"exp\":1,"
                   "\"kubernetes.io\":{\"namespace\":\"n\\u00e9\",\"serviceaccount\":{\"name\":\"s\"}}}",
                   64);
    bool succeeded = false;
    size_t budget;
    for (budget = 0; budget < 64 && !succeeded; budget++) {
        tg_failalloc fa;
        tg_failalloc_init(&fa, budget);
        authz_arena small;
        /* A tiny chunk size puts every arena request through the allocator. */
        authz_arena_init(&small, &fa.alloc, 16, 0);
        authz_jwt jwt;
        authz_status st;
        int rc = authz_jwt_parse(authz_slice_from_cstr(token), NULL, &small, &jwt, &st);
        if (rc == 0) {
            succeeded = true;
            cr_assert(authz_slice_eq_cstr(jwt.iss.value, "https://i"));
            cr_assert(authz_slice_eq_cstr(jwt.k8s_namespace.value, "n\xc3\xa9"));
            cr_assert_eq(jwt.aud_count, 2);
        } else {
            cr_assert_eq(st.reason, AUTHZ_REASON_INTERNAL_ERROR, "fail at %zu: %s (%s)", budget,
                         authz_reason_name(st.reason), st.message);
            cr_assert_null(jwt.header);
            cr_assert_null(jwt.signature);
        }
        authz_arena_free(&small);
    }
    cr_assert(succeeded);
    cr_assert_gt(budget, 6, "texts, node arrays, escaped strings, aud and signature all allocate");
    free(token);
}

Test(jwt, arena_budget_exhaustion_is_internal_error)
{
    char *token = make_token(GOOD_HEADER, GOOD_PAYLOAD, 64);
    authz_arena tight;
    authz_arena_init(&tight, NULL, 64, 256);
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(authz_jwt_parse(authz_slice_from_cstr(token), NULL, &tight, &jwt, &st), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_INTERNAL_ERROR, "%s", st.message);
    authz_arena_free(&tight);
    free(token);
}

/* A token as large as the limits allow, dense with values and escapes. */
static char *worst_case_token(const authz_jwt_limits *limits)
{
    size_t cap = (limits->max_token_bytes - 128) / 4 * 3;
    char *payload = malloc(cap + 1);
    size_t pos = (size_t)snprintf(payload, cap, "{\"a\":[");
    size_t values = 0;
    while (pos + 16 < cap && values + 8 < limits->max_json_nodes) {
        pos += (size_t)snprintf(payload + pos, cap - pos, "\"\\n\",");
        values++;
    }
    payload[pos++] = '"';
    while (pos + 4 < cap) {
        payload[pos++] = '\\';
        payload[pos++] = '/';
    }
    snprintf(payload + pos, cap + 1 - pos, "\"]}");
    char *token = make_token("{\"alg\":\"ES256\"}", payload, 64);
    free(payload);
    return token;
}

Test(jwt, arena_bound_is_enough)
{
    authz_jwt_limits limits = {16384, 16, 1024};
    char *token = worst_case_token(&limits);
    cr_assert_leq(strlen(token), limits.max_token_bytes);
    size_t chunk = 1024;
    authz_arena bounded;
    authz_arena_init(&bounded, NULL, chunk, 2 * authz_jwt_arena_bound(&limits) + chunk);
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(authz_jwt_parse(authz_slice_from_cstr(token), &limits, &bounded, &jwt, &st), 0, "%s",
                 st.message);
    cr_assert_gt(authz_json_count(authz_json_get(jwt.payload, AUTHZ_SLICE_LIT("a"))), 1000);
    authz_arena_free(&bounded);

    /* The server's request arena (16 KiB chunks) keeps 256 KiB beyond what
     * unpacking the message takes: the densest default-limit parse fits in
     * that slack alone. */
    authz_arena request;
    authz_arena_init(&request, NULL, 16384, 0);
    cr_assert_eq(authz_jwt_parse(authz_slice_from_cstr(token), &limits, &request, &jwt, &st), 0, "%s",
                 st.message);
    cr_assert_leq(request.held, 256u * 1024u, "held %zu", request.held);
    authz_arena_free(&request);
    free(token);
    cr_assert_gt(authz_jwt_arena_bound(NULL), 3 * AUTHZ_JWT_DEFAULT_MAX_TOKEN / 2);
}

Test(jwt, json_bounds)
{
    /* Values: the default allows 1024 per text. */
    char payload[16384];
    size_t pos = (size_t)snprintf(payload, sizeof payload, "{\"a\":[");
    for (unsigned i = 0; i < AUTHZ_JWT_DEFAULT_MAX_NODES; i++)
        pos += (size_t)snprintf(payload + pos, sizeof payload - pos, "%s0", i ? "," : "");
    snprintf(payload + pos, sizeof payload - pos, "]}");
    expect_payload(payload, AUTHZ_REASON_MALFORMED_TOKEN);
    /* Members: at most 256 per object. */
    pos = (size_t)snprintf(payload, sizeof payload, "{");
    for (unsigned i = 0; i <= AUTHZ_JWT_MAX_MEMBERS; i++)
        pos += (size_t)snprintf(payload + pos, sizeof payload - pos, "%s\"k%u\":0", i ? "," : "", i);
    snprintf(payload + pos, sizeof payload - pos, "}");
    expect_payload(payload, AUTHZ_REASON_MALFORMED_TOKEN);
    pos = (size_t)snprintf(payload, sizeof payload, "{");
    for (unsigned i = 1; i < AUTHZ_JWT_MAX_MEMBERS; i++)
        pos += (size_t)snprintf(payload + pos, sizeof payload - pos, "%s\"k%u\":0", i > 1 ? "," : "", i);
    snprintf(payload + pos, sizeof payload - pos, "}");
    expect_payload(payload, AUTHZ_REASON_OK);
}

Test(jwt, strict_json)
{
    expect_payload("{\"iss\":\"a\",\"\\u0069ss\":\"b\"}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"iss\":\"a\",}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"iss\":\"\xc0\xaf\"}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"iss\":\"\\ud800\"}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"exp\":01}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("{\"exp\":NaN}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_payload("\xef\xbb\xbf{}", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_header("{\"alg\":\"RS256\"}\n", AUTHZ_REASON_OK);

    char *token = make_token(GOOD_HEADER, "{\"iss\":\"x\",\"exp\":01}", 64);
    authz_jwt jwt;
    authz_status st;
    cr_assert_eq(parse_text(token, &jwt, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert(strstr(st.message, "payload is not valid JSON") && strstr(st.message, "offset 17"), "%s",
              st.message);
    free(token);
}

Test(jwt, escaped_claims_are_decoded)
{
    authz_jwt jwt;
    char *token;
    parse_ok("{\"iss\":\"https:\\/\\/"
             "kube\",\"aud\":\"\\u0061pi\",\"kubernetes.io\":{\"namespace\":\"sh\\u006fp\"}}",
             &jwt, &token);
    cr_assert(authz_slice_eq_cstr(jwt.iss.value, "https://kube"));
    cr_assert(authz_slice_eq_cstr(jwt.aud[0], "api"));
    cr_assert(authz_slice_eq_cstr(jwt.k8s_namespace.value, "shop"));
    free(token);
}
