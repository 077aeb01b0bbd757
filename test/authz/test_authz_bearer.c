#include <criterion/criterion.h>
#include <string.h>

#include "authz_bearer.h"

static authz_reason extract(const char *header, authz_slice *token, authz_status *st)
{
    authz_slice h = authz_slice_from_cstr(header);
    int rc = authz_bearer_extract(h, token, st);
    cr_assert_eq(rc == 0, st->reason == AUTHZ_REASON_OK);
    return st->reason;
}

static void expect_token(const char *header, const char *want)
{
    authz_slice tok;
    authz_status st;
    cr_assert_eq(extract(header, &tok, &st), AUTHZ_REASON_OK, "header [%s]: %s", header, st.message);
    cr_assert(authz_slice_eq_cstr(tok, want), "header [%s] gave [%.*s]", header, (int)tok.len, tok.ptr);
}

static void expect_reason(const char *header, authz_reason want)
{
    authz_slice tok = {"x", 1};
    authz_status st;
    cr_assert_eq(extract(header, &tok, &st), want, "header [%s]: got %s (%s)", header,
                 authz_reason_name(st.reason), st.message);
    cr_assert_null(tok.ptr);
    cr_assert_eq(tok.len, 0);
}

Test(bearer, plain)
{
    expect_token("Bearer abc.def.ghi", "abc.def.ghi");
}

Test(bearer, scheme_case_insensitive)
{
    expect_token("bearer a.b.c", "a.b.c");
    expect_token("BEARER a.b.c", "a.b.c");
    expect_token("bEaReR a.b.c", "a.b.c");
}

Test(bearer, several_spaces_and_ows)
{
    expect_token("Bearer    a.b.c", "a.b.c");
    expect_token("  Bearer a.b.c  ", "a.b.c");
    expect_token("\tBearer a.b.c\t \t", "a.b.c");
}

Test(bearer, b64token_set)
{
    expect_token("Bearer a-b_c.d~e+f/g==", "a-b_c.d~e+f/g==");
}

Test(bearer, token_is_borrowed)
{
    const char *h = "Bearer xyz";
    authz_slice tok;
    authz_status st;
    cr_assert_eq(authz_bearer_extract(authz_slice_from_cstr(h), &tok, &st), 0);
    cr_assert_eq(tok.ptr, h + 7);
}

Test(bearer, missing)
{
    authz_slice tok;
    authz_status st;
    authz_slice none = {NULL, 0};
    cr_assert_eq(authz_bearer_extract(none, &tok, &st), -1);
    cr_assert_eq(st.reason, AUTHZ_REASON_MISSING_TOKEN);
    expect_reason("", AUTHZ_REASON_MISSING_TOKEN);
    expect_reason("   ", AUTHZ_REASON_MISSING_TOKEN);
}

Test(bearer, scheme_only)
{
    expect_reason("Bearer", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer ", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer    ", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer ==", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(bearer, several_credentials)
{
    expect_reason("Bearer a, Bearer b", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer a,Bearer b", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer a Bearer b", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer a,b", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer a b", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer a\tb", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(bearer, tab_after_scheme_is_malformed)
{
    expect_reason("Bearer\ta.b.c", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(bearer, other_scheme)
{
    authz_slice tok;
    authz_status st;
    cr_assert_eq(extract("Basic dXNlcjpwYXNz", &tok, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert(strstr(st.message, "Basic"), "%s", st.message);
    cr_assert_null(strstr(st.message, "dXNlcjpwYXNz"), "%s", st.message);
    expect_reason("Bearerabc", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Token a.b.c", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(bearer, bare_token_is_not_echoed)
{
    authz_slice tok;
    authz_status st;
    cr_assert_eq(extract("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", &tok, &st),
                 AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert_null(strstr(st.message, "eyJ"), "%s", st.message);
}

Test(bearer, long_scheme_is_not_echoed)
{
    authz_slice tok;
    authz_status st;
    cr_assert_eq(extract("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA b", &tok, &st),
                 AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert_null(strstr(st.message, "AAAAAAAAAAAAAAAAA"), "%s", st.message);
}

Test(bearer, bad_characters)
{
    expect_reason("Bearer a\"b", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer a=b", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer a;b", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer a\x01", AUTHZ_REASON_MALFORMED_TOKEN);
    expect_reason("Bearer \xc3\xa9", AUTHZ_REASON_MALFORMED_TOKEN);
}

Test(bearer, message_never_echoes_token)
{
    authz_slice tok;
    authz_status st;
    cr_assert_eq(extract("Bearer secretpart, Bearer other", &tok, &st), AUTHZ_REASON_MALFORMED_TOKEN);
    cr_assert_null(strstr(st.message, "secretpart"), "%s", st.message);
}
