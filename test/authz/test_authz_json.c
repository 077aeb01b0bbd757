#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_json.h"
#include "tg_failalloc.h"

static const authz_json_limits loose = {0, 0, 0, false};

/* Parses |len| bytes of |text| with |limits| in a fresh arena; the arena is
 * returned through |arena| (caller frees). */
static int parse_n(const char *text, size_t len, const authz_json_limits *limits, authz_arena *arena,
                   const authz_json **root, authz_json_error *err)
{
    authz_arena_init(arena, NULL, 0, 0);
    int rc = authz_json_parse(text, len, limits, arena, root, err);
    cr_assert_eq(rc == 0, err->code == AUTHZ_JSON_OK, "rc %d code %d", rc, err->code);
    cr_assert_eq(rc == 0, *root != NULL);
    return rc;
}

/* Parses a copy of exactly |len| bytes in its own heap block, so ASan sees
 * any read past the end. */
static authz_json_errcode code_of_n(const char *text, size_t len, const authz_json_limits *limits,
                                    size_t *offset)
{
    char *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, text, len);
    authz_arena arena;
    const authz_json *root;
    authz_json_error err;
    parse_n(copy, len, limits, &arena, &root, &err);
    if (offset)
        *offset = err.offset;
    if (err.code != AUTHZ_JSON_OK)
        cr_assert(err.message && err.message[0], "every error has a message");
    authz_arena_free(&arena);
    free(copy);
    return err.code;
}

static authz_json_errcode code_of(const char *text)
{
    return code_of_n(text, strlen(text), &loose, NULL);
}

Test(json, accepts_rfc8259_grammar)
{
    const char *ok[] = {"{}",
                        "[]",
                        "0",
                        "-0",
                        "1",
                        "-1",
                        "0.5",
                        "-0.0",
                        "1e5",
                        "1E5",
                        "1e+5",
                        "1e-5",
                        "1.5e3",
                        "-1.25E-2",
                        "true",
                        "false",
                        "null",
                        "\"\"",
                        "\"abc\"",
                        " \t\r\n{ \t\r\n} \t\r\n",
                        "[1,2,3]",
                        "[[[]]]",
                        "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
                        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
                        "\"\\u00e9\\u20AC\"",
                        "\"\\ud83d\\ude00\"",
                        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
                        "\"\x7f\"",
                        "{\"\":0}",
                        "[\"\xef\xbf\xbf\",\"\xf4\x8f\xbf\xbf\",\"\xed\x9f\xbf\",\"\xee\x80\x80\"]",
                        "123456789",
                        "1.7976931348623157e308",
                        "5e-324",
                        "1e-400",
                        "[0,-0,0e0,0.0e-0]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(code_of(ok[i]), AUTHZ_JSON_OK, "%s", ok[i]);
}

Test(json, rejects_bad_grammar)
{
    const char *bad[] = {"",
                         " ",
                         "{",
                         "}",
                         "[",
                         "]",
                         "[1,]",
                         "[,1]",
                         "[1,,2]",
                         "{\"a\":1,}",
                         "{,}",
                         "{\"a\"}",
                         "{\"a\":}",
                         "{\"a\" 1}",
                         "{a:1}",
                         "{'a':1}",
                         "['a']",
                         "[1 2]",
                         "{\"a\":1 \"b\":2}",
                         "01",
                         "-01",
                         "00",
                         "+1",
                         "-",
                         ".5",
                         "5.",
                         "1.e5",
                         "1e",
                         "1e+",
                         "1E-",
                         "0x10",
                         "NaN",
                         "Infinity",
                         "-Infinity",
                         "nul",
                         "tru",
                         "falsey",
                         "True",
                         "NULL",
                         "[true false]",
                         "{} {}",
                         "1 2",
                         "[] x",
                         "\"a\" \"b\"",
                         "//c\n1",
                         "/*c*/1",
                         "[1]\x0b",
                         "\xef\xbb\xbf{}",
                         "\f[]",
                         "[\xc2\xa0]",
                         "\"abc",
                         "\"\\\"",
                         "\"\\x41\"",
                         "\"\\u12\"",
                         "\"\\u12G4\"",
                         "\"\\U0041\"",
                         "\"\\'\"",
                         "\"\\a\"",
                         "[1e5.5]",
                         "1.5.5",
                         "--1",
                         "-.5",
                         "1e5e5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(code_of(bad[i]), AUTHZ_JSON_ESYNTAX, "%s", bad[i]);
}

Test(json, control_characters_must_be_escaped)
{
    for (unsigned c = 0; c < 0x20; c++) {
        char text[4] = {'"', (char)c, '"', 0};
        cr_assert_eq(code_of_n(text, 3, &loose, NULL), AUTHZ_JSON_ESYNTAX, "raw 0x%02x", c);
        char esc[16];
        snprintf(esc, sizeof esc, "\"\\u%04x\"", c);
        cr_assert_eq(code_of(esc), c == 0 ? AUTHZ_JSON_ELIMIT : AUTHZ_JSON_OK, "%s", esc);
    }
}

Test(json, nul_only_when_allowed)
{
    authz_json_limits allow = {0, 0, 0, true};
    cr_assert_eq(code_of("\"a\\u0000b\""), AUTHZ_JSON_ELIMIT);
    cr_assert_eq(code_of_n("\"a\\u0000b\"", 10, &allow, NULL), AUTHZ_JSON_OK);
    authz_arena arena;
    const authz_json *root;
    authz_json_error err;
    cr_assert_eq(parse_n("\"a\\u0000b\"", 10, &allow, &arena, &root, &err), 0);
    authz_slice s;
    cr_assert(authz_json_string(root, &s));
    cr_assert_eq(s.len, 3);
    cr_assert_eq(memcmp(s.ptr, "a\0b", 3), 0);
    authz_arena_free(&arena);
    /* A raw NUL byte is a control character either way. */
    cr_assert_eq(code_of_n("\"a\0b\"", 5, &allow, NULL), AUTHZ_JSON_ESYNTAX);
    cr_assert_eq(code_of_n("1\0", 2, &allow, NULL), AUTHZ_JSON_ESYNTAX);
}

Test(json, invalid_utf8)
{
    const char *bad[] = {
        "\"\x80\"",                     /* lone continuation */
        "\"\xbf\"",                     /* lone continuation */
        "\"\xc0\xaf\"",                 /* overlong '/' */
        "\"\xc1\xbf\"",                 /* overlong */
        "\"\xe0\x80\xaf\"",             /* overlong 3-byte */
        "\"\xe0\x9f\xbf\"",             /* overlong 3-byte, highest */
        "\"\xf0\x80\x80\xaf\"",         /* overlong 4-byte */
        "\"\xf0\x8f\xbf\xbf\"",         /* overlong 4-byte, highest */
        "\"\xed\xa0\x80\"",             /* U+D800 encoded */
        "\"\xed\xbf\xbf\"",             /* U+DFFF encoded */
        "\"\xed\xa0\xbd\xed\xb8\x80\"", /* CESU-8 pair */
        "\"\xf4\x90\x80\x80\"",         /* U+110000 */
        "\"\xf5\x80\x80\x80\"",         /* beyond */
        "\"\xf8\x88\x80\x80\x80\"",
        "\"\xfe\"",
        "\"\xff\"",
        "\"\xc3\"",         /* truncated before the quote */
        "\"\xe2\x82\"",     /* truncated */
        "\"\xf0\x9f\x98\"", /* truncated */
        "\"\xc3\x28\"",     /* bad continuation */
        "\"\xe2\x28\xa1\"",
        "\"\xe2\x82\x28\"",
        "\"\xf0\x28\x8c\xbc\"",
        "\"\xf0\x9f\x98\x28\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(code_of(bad[i]), AUTHZ_JSON_ESYNTAX, "case %zu", i);
    /* Truncated at the very end of the text, no closing quote: no read past it. */
    cr_assert_eq(code_of_n("\"\xf0\x9f", 3, &loose, NULL), AUTHZ_JSON_ESYNTAX);
    cr_assert_eq(code_of_n("\"\xe2", 2, &loose, NULL), AUTHZ_JSON_ESYNTAX);
    /* Outside strings any non-ASCII byte is a syntax error. */
    cr_assert_eq(code_of("\xc3\xa9"), AUTHZ_JSON_ESYNTAX);
}

Test(json, surrogate_escapes)
{
    const char *bad[] = {"\"\\ud800\"",       "\"\\udc00\"",   "\"\\udbff\\u0041\"", "\"\\ud800\\ud800\"",
                         "\"\\ud800x\"",      "\"\\ud800\\\"", "\"\\ud800\\n\"",     "\"\\ude00\\ud83d\"",
                         "\"\\ud83d\\ude0\"", "\"\\ud83d\\"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(code_of(bad[i]), AUTHZ_JSON_ESYNTAX, "%s", bad[i]);
    cr_assert_eq(code_of_n("\"\\ud83d\\ude00", 13, &loose, NULL), AUTHZ_JSON_ESYNTAX, "no closing quote");
    cr_assert_eq(code_of_n("\"\\u00", 5, &loose, NULL), AUTHZ_JSON_ESYNTAX);
    cr_assert_eq(code_of_n("\"\\", 2, &loose, NULL), AUTHZ_JSON_ESYNTAX);
}

/* Parses a one-string document and checks its decoded bytes. */
static void expect_string(const char *json, const char *want, size_t want_len, bool zero_copy)
{
    authz_arena arena;
    const authz_json *root;
    authz_json_error err;
    cr_assert_eq(parse_n(json, strlen(json), &loose, &arena, &root, &err), 0, "%s: %s", json, err.message);
    authz_slice s;
    cr_assert(authz_json_string(root, &s));
    cr_assert_eq(s.len, want_len, "%s: len %zu", json, s.len);
    cr_assert_eq(memcmp(s.ptr, want, want_len), 0, "%s", json);
    if (zero_copy)
        cr_assert_eq(s.ptr, json + 1, "unescaped strings point into the text");
    else
        cr_assert(s.ptr < json || s.ptr >= json + strlen(json), "escaped strings are decoded elsewhere");
    authz_arena_free(&arena);
}

Test(json, string_decoding)
{
    expect_string("\"plain\"", "plain", 5, true);
    expect_string("\"\"", "", 0, true);
    expect_string("\"caf\xc3\xa9\"", "caf\xc3\xa9", 5, true);
    expect_string("\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7, false);
    expect_string("\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5, false);
    expect_string("\"\\u0041\\u00e9\\u20ac\"", "A\xc3\xa9\xe2\x82\xac", 6, false);
    expect_string("\"\\uD83D\\uDE00!\"", "\xf0\x9f\x98\x80!", 5, false);
    expect_string("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4, false);
    expect_string("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"", "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf",
                  11, false);
    expect_string("\"https:\\/\\/kube.example\"", "https://kube.example", 20, false);
}

Test(json, duplicate_keys)
{
    const char *bad[] = {"{\"a\":1,\"a\":1}",
                         "{\"a\":1,\"b\":2,\"a\":3}",
                         "{\"a\":1,\"\\u0061\":2}",
                         "{\"\\u0061\":1,\"a\":2}",
                         "{\"\":1,\"\":2}",
                         "{\"x\":{\"a\":1,\"a\":2}}",
                         "[{\"a\":1,\"a\":1}]",
                         "{\"a\\/b\":1,\"a/b\":1}",
                         "{\"\xc3\xa9\":1,\"\\u00e9\":2}",
                         "{\"a\":[1,{\"b\":2}],\"c\":3,\"a\":4}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(code_of(bad[i]), AUTHZ_JSON_ESYNTAX, "%s", bad[i]);
    const char *ok[] = {"{\"a\":1,\"b\":1}",     "{\"a\":1,\"A\":1}",         "{\"a\":1,\"aa\":1,\"\":1}",
                        "[{\"a\":1},{\"a\":1}]", "{\"a\":{\"a\":{\"a\":1}}}", "{\"ab\":1,\"ba\":1}"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(code_of(ok[i]), AUTHZ_JSON_OK, "%s", ok[i]);
    size_t offset = 0;
    code_of_n("{\"a\":1, \"a\":2}", 14, &loose, &offset);
    cr_assert_eq(offset, 8, "the duplicate key's offset: %zu", offset);
}

/* Parses |json| expecting one number. */
static const authz_json *number(const char *json, authz_arena *arena)
{
    const authz_json *root;
    authz_json_error err;
    cr_assert_eq(parse_n(json, strlen(json), &loose, arena, &root, &err), 0, "%s: %s", json, err.message);
    return root;
}

Test(json, integers_exact_in_int64)
{
    static const struct {
        const char *text;
        int64_t value;
    } cases[] = {{"0", 0},
                 {"-0", 0},
                 {"7", 7},
                 {"-7", -7},
                 {"1700000000", 1700000000},
                 {"9223372036854775807", INT64_MAX},
                 {"-9223372036854775808", INT64_MIN},
                 {"-9223372036854775807", -INT64_MAX},
                 {"9007199254740993", 9007199254740993LL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        authz_arena arena;
        const authz_json *v = number(cases[i].text, &arena);
        int64_t got = 0;
        cr_assert_eq(authz_json_type_of(v), AUTHZ_JSON_INT, "%s", cases[i].text);
        cr_assert(authz_json_int(v, &got));
        cr_assert_eq(got, cases[i].value, "%s", cases[i].text);
        double d;
        cr_assert_not(authz_json_real(v, &d));
        cr_assert(authz_json_number(v, &d));
        authz_arena_free(&arena);
    }
    const char *out[] = {"9223372036854775808", "-9223372036854775809", "18446744073709551616",
                         "123456789012345678901234567890", "-99999999999999999999"};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        cr_assert_eq(code_of(out[i]), AUTHZ_JSON_ELIMIT, "%s", out[i]);
}

Test(json, reals)
{
    static const struct {
        const char *text;
        double value;
    } cases[] = {{"1.5", 1.5},   {"-1.5", -1.5},     {"1e3", 1000.0},  {"1.7e9", 1.7e9},
                 {"2E-2", 0.02}, {"9.3e18", 9.3e18}, {"1e300", 1e300}, {"-1e300", -1e300},
                 {"0.0", 0.0},   {"1e-400", 0.0},    {"1.0", 1.0},     {"123.456e-7", 123.456e-7}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        authz_arena arena;
        const authz_json *v = number(cases[i].text, &arena);
        double got = 0;
        cr_assert_eq(authz_json_type_of(v), AUTHZ_JSON_REAL, "%s", cases[i].text);
        cr_assert(authz_json_real(v, &got));
        cr_assert_eq(got, cases[i].value, "%s: %g", cases[i].text, got);
        int64_t i64;
        cr_assert_not(authz_json_int(v, &i64));
        authz_arena_free(&arena);
    }
    authz_arena arena;
    double d = 0;
    cr_assert(authz_json_real(number("-0.0", &arena), &d));
    cr_assert(d == 0.0 && signbit(d), "-0.0 keeps its sign");
    authz_arena_free(&arena);
    const char *overflow[] = {"1e400", "-1e400", "1e309", "2e308",
                              "179769313486231580793728971405303415079934132"
                              "71.0e290"};
    for (size_t i = 0; i < sizeof overflow / sizeof overflow[0]; i++)
        cr_assert_eq(code_of(overflow[i]), AUTHZ_JSON_ELIMIT, "%s", overflow[i]);
    /* Long literals are bounded before the stack copy. */
    char longnum[AUTHZ_JSON_NUMBER_MAX + 8];
    memset(longnum, '1', sizeof longnum - 1);
    longnum[1] = '.';
    longnum[sizeof longnum - 1] = '\0';
    cr_assert_eq(code_of(longnum), AUTHZ_JSON_ELIMIT);
    longnum[AUTHZ_JSON_NUMBER_MAX - 1] = '\0';
    cr_assert_eq(code_of(longnum), AUTHZ_JSON_OK, "63 characters fit");
}

Test(json, literals_and_getters)
{
    authz_arena arena;
    const authz_json *root;
    authz_json_error err;
    const char *text = "{\"t\":true,\"f\":false,\"n\":null,\"s\":\"x\",\"a\":[1,[2,3],{\"k\":4},5],\"o\":{}}";
    cr_assert_eq(parse_n(text, strlen(text), &loose, &arena, &root, &err), 0);
    cr_assert_eq(authz_json_type_of(root), AUTHZ_JSON_OBJECT);
    cr_assert_eq(authz_json_count(root), 6);
    bool b = false;
    cr_assert(authz_json_bool(authz_json_get(root, AUTHZ_SLICE_LIT("t")), &b) && b);
    cr_assert(authz_json_bool(authz_json_get(root, AUTHZ_SLICE_LIT("f")), &b) && !b);
    cr_assert_eq(authz_json_type_of(authz_json_get(root, AUTHZ_SLICE_LIT("n"))), AUTHZ_JSON_NULL);
    cr_assert_not(authz_json_bool(authz_json_get(root, AUTHZ_SLICE_LIT("n")), &b));
    cr_assert_null(authz_json_get(root, AUTHZ_SLICE_LIT("missing")));
    cr_assert_null(authz_json_get(root, AUTHZ_SLICE_LIT("")));
    cr_assert_eq(authz_json_type_of(NULL), AUTHZ_JSON_ABSENT);
    authz_slice s;
    cr_assert_not(authz_json_string(NULL, &s));
    cr_assert_not(authz_json_string(authz_json_get(root, AUTHZ_SLICE_LIT("t")), &s));

    const authz_json *a = authz_json_get(root, AUTHZ_SLICE_LIT("a"));
    cr_assert_eq(authz_json_count(a), 4);
    int64_t v = 0;
    cr_assert(authz_json_int(authz_json_at(a, 0), &v) && v == 1);
    cr_assert_eq(authz_json_count(authz_json_at(a, 1)), 2);
    cr_assert(authz_json_int(authz_json_at(authz_json_at(a, 1), 1), &v) && v == 3);
    cr_assert(authz_json_int(authz_json_get(authz_json_at(a, 2), AUTHZ_SLICE_LIT("k")), &v) && v == 4);
    cr_assert(authz_json_int(authz_json_at(a, 3), &v) && v == 5, "skips nested subtrees");
    cr_assert_null(authz_json_at(a, 4));
    cr_assert_null(authz_json_at(root, 0), "an object is not an array");
    cr_assert_null(authz_json_get(a, AUTHZ_SLICE_LIT("k")), "an array is not an object");
    cr_assert_eq(authz_json_count(authz_json_at(a, 0)), 0);

    authz_slice key;
    const authz_json *o = authz_json_member_at(root, 5, &key);
    cr_assert(authz_slice_eq_cstr(key, "o"));
    cr_assert_eq(authz_json_type_of(o), AUTHZ_JSON_OBJECT);
    cr_assert_eq(authz_json_count(o), 0);
    cr_assert(authz_json_string(authz_json_member_at(root, 3, &key), &s) && authz_slice_eq_cstr(s, "x"));
    cr_assert(authz_slice_eq_cstr(key, "s"));
    cr_assert_null(authz_json_member_at(root, 6, &key));
    cr_assert_null(key.ptr);
    cr_assert_null(authz_json_member_at(a, 0, &key));
    authz_arena_free(&arena);
}

/* [[[...]]] or {"a":{"a":...}} with |depth| containers. */
static char *nested(size_t depth, bool objects)
{
    size_t cap = depth * 6 + 4;
    char *out = malloc(cap);
    size_t pos = 0;
    for (size_t i = 0; i < depth; i++)
        pos +=
            (size_t)snprintf(out + pos, cap - pos, "%s", objects ? (i + 1 < depth ? "{\"a\":" : "{") : "[");
    for (size_t i = 0; i < depth; i++)
        out[pos++] = objects ? '}' : ']';
    out[pos] = '\0';
    return out;
}

Test(json, depth_bound)
{
    authz_json_limits limits = {16, 0, 0, false};
    for (int objects = 0; objects < 2; objects++) {
        char *at = nested(16, objects);
        char *past = nested(17, objects);
        cr_assert_eq(code_of_n(at, strlen(at), &limits, NULL), AUTHZ_JSON_OK, "%s", at);
        size_t offset = 0;
        cr_assert_eq(code_of_n(past, strlen(past), &limits, &offset), AUTHZ_JSON_ELIMIT, "%s", past);
        cr_assert_eq(past[offset], objects ? '{' : '[', "offset %zu points at the 17th container", offset);
        free(at);
        free(past);
    }
    /* Scalars do not count as a level. */
    authz_json_limits one = {1, 0, 0, false};
    cr_assert_eq(code_of_n("[1,\"a\",null]", 12, &one, NULL), AUTHZ_JSON_OK);
    cr_assert_eq(code_of_n("[[]]", 4, &one, NULL), AUTHZ_JSON_ELIMIT);
    /* 0 means the ceiling, which bounds recursion however deep the text. */
    char *deep = nested(100000, false);
    cr_assert_eq(code_of_n(deep, strlen(deep), &loose, NULL), AUTHZ_JSON_ELIMIT);
    free(deep);
    char *ceiling = nested(AUTHZ_JSON_DEPTH_CEILING, true);
    cr_assert_eq(code_of_n(ceiling, strlen(ceiling), &loose, NULL), AUTHZ_JSON_OK);
    free(ceiling);
}

Test(json, node_bound)
{
    authz_json_limits limits = {0, 5, 0, false};
    cr_assert_eq(code_of_n("[1,2,3,4]", 9, &limits, NULL), AUTHZ_JSON_OK, "5 nodes");
    cr_assert_eq(code_of_n("[1,2,3,4,5]", 11, &limits, NULL), AUTHZ_JSON_ELIMIT);
    cr_assert_eq(code_of_n("{\"a\":1,\"b\":2}", 13, &limits, NULL), AUTHZ_JSON_OK, "keys count");
    cr_assert_eq(code_of_n("{\"a\":1,\"b\":[]}", 14, &limits, NULL), AUTHZ_JSON_OK);
    cr_assert_eq(code_of_n("{\"a\":1,\"b\":[0]}", 15, &limits, NULL), AUTHZ_JSON_ELIMIT);
    /* The bound from the text itself holds for texts full of trigger bytes in strings. */
    cr_assert_eq(code_of("[\",,,::[[{{\",{\"a\":[{}]}]"), AUTHZ_JSON_OK);
    cr_assert_eq(code_of("{\"a\" }"), AUTHZ_JSON_ESYNTAX);
    cr_assert_eq(code_of("{\"a\":1 \"b\"}"), AUTHZ_JSON_ESYNTAX);
}

Test(json, member_bound)
{
    char text[8192];
    for (size_t members = 255; members <= 257; members++) {
        size_t pos = 0;
        text[pos++] = '{';
        for (size_t i = 0; i < members; i++)
            pos += (size_t)snprintf(text + pos, sizeof text - pos, "%s\"k%zu\":%zu", i ? "," : "", i, i);
        text[pos++] = '}';
        authz_json_limits limits = {0, 0, 256, false};
        cr_assert_eq(code_of_n(text, pos, &limits, NULL), members <= 256 ? AUTHZ_JSON_OK : AUTHZ_JSON_ELIMIT,
                     "%zu members", members);
    }
    /* The bound is per object, arrays are not objects. */
    authz_json_limits two = {0, 0, 2, false};
    cr_assert_eq(code_of_n("[{\"a\":1,\"b\":2},{\"a\":1,\"b\":2}]", 29, &two, NULL), AUTHZ_JSON_OK);
    cr_assert_eq(code_of_n("[1,2,3,4,5]", 11, &two, NULL), AUTHZ_JSON_OK);
    cr_assert_eq(code_of_n("{\"a\":1,\"b\":2,\"c\":3}", 19, &two, NULL), AUTHZ_JSON_ELIMIT);
}

Test(json, null_limits_mean_the_ceilings)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 0);
    const authz_json *root;
    authz_json_error err;
    cr_assert_eq(authz_json_parse("[[1]]", 5, NULL, &arena, &root, &err), 0);
    cr_assert_eq(authz_json_parse("\"\\u0000\"", 8, NULL, &arena, &root, &err), -1);
    cr_assert_eq(err.code, AUTHZ_JSON_ELIMIT);
    char *deep = nested(AUTHZ_JSON_DEPTH_CEILING + 1, false);
    cr_assert_eq(authz_json_parse(deep, strlen(deep), NULL, &arena, &root, &err), -1);
    cr_assert_eq(err.code, AUTHZ_JSON_ELIMIT);
    free(deep);
    authz_arena_free(&arena);
}

Test(json, error_offsets)
{
    size_t offset = 99;
    code_of_n("[1,2,x]", 7, &loose, &offset);
    cr_assert_eq(offset, 5);
    code_of_n("  {\"a\":01}", 10, &loose, &offset);
    cr_assert_eq(offset, 7);
    code_of_n("\"ab\x80\"", 5, &loose, &offset);
    cr_assert_eq(offset, 3);
    code_of_n("{} ,", 4, &loose, &offset);
    cr_assert_eq(offset, 3);
}

Test(json, every_allocation_failure_is_enomem)
{
    const char *text = "{\"a\\u0041\":[\"x\\n\",\"\\u00e9\",{\"b\":\"\\/\"}],\"c\":\"plain\",\"d\":\"\\t\"}";
    bool succeeded = false;
    size_t budget;
    for (budget = 0; budget < 64 && !succeeded; budget++) {
        tg_failalloc fa;
        tg_failalloc_init(&fa, budget);
        authz_arena arena;
        /* A tiny chunk size puts every allocation through the allocator. */
        authz_arena_init(&arena, &fa.alloc, 16, 0);
        const authz_json *root = NULL;
        authz_json_error err;
        int rc = authz_json_parse(text, strlen(text), &loose, &arena, &root, &err);
        if (rc == 0) {
            succeeded = true;
            authz_slice s;
            cr_assert(authz_json_string(authz_json_get(root, AUTHZ_SLICE_LIT("aA")), &s) == false);
            cr_assert_eq(authz_json_count(authz_json_get(root, AUTHZ_SLICE_LIT("aA"))), 3);
        } else {
            cr_assert_eq(err.code, AUTHZ_JSON_ENOMEM, "budget %zu: %s", budget, err.message);
            cr_assert_null(root);
        }
        authz_arena_free(&arena);
    }
    cr_assert(succeeded);
    cr_assert_gt(budget, 4, "the tape and each escaped string allocate");
}

Test(json, arena_budget_exhaustion_is_enomem)
{
    authz_arena arena;
    authz_arena_init(&arena, NULL, 64, 256);
    const authz_json *root;
    authz_json_error err;
    const char *text = "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]";
    cr_assert_eq(authz_json_parse(text, strlen(text), &loose, &arena, &root, &err), -1);
    cr_assert_eq(err.code, AUTHZ_JSON_ENOMEM);
    authz_arena_free(&arena);
}

Test(json, huge_flat_input_stays_linear)
{
    /* 1 MiB of "[0,0,...]": every byte a node trigger, bounded by max_nodes before allocation. */
    size_t n = 1u << 20;
    char *text = malloc(n);
    text[0] = '[';
    for (size_t i = 1; i + 1 < n; i += 2) {
        text[i] = '0';
        text[i + 1] = ',';
    }
    text[n - 1] = ']';
    authz_json_limits limits = {16, 1024, 256, false};
    authz_arena arena;
    authz_arena_init(&arena, NULL, 0, 64u * 1024u);
    const authz_json *root;
    authz_json_error err;
    cr_assert_eq(authz_json_parse(text, n, &limits, &arena, &root, &err), -1);
    cr_assert_eq(err.code, AUTHZ_JSON_ELIMIT, "%s", err.message);
    authz_arena_free(&arena);
    free(text);
}

/* Random mutations of a token-like document: any outcome but a crash or an
 * ASan report is fine, and a success must be re-parseable consistently. */
Test(json, mutation_smoke)
{
    const char *seed = "{\"iss\":\"https://k\\/s\",\"aud\":[\"a\",\"b\"],\"exp\":1700000000,\"x\":-1.5e3,"
                       "\"kubernetes.io\":{\"namespace\":\"n\\u00e9\",\"pod\":{\"name\":\"p\"}},\"t\":true}";
    size_t len = strlen(seed);
    unsigned state = 12345;
    static const char alphabet[] = "{}[]\",:\\u0aeE.-+ \x80\xc3\xed\xf4tfn";
    for (int round = 0; round < 4000; round++) {
        char *copy = malloc(len);
        memcpy(copy, seed, len);
        for (int k = 0; k < 3; k++) {
            state = state * 1103515245u + 12345u;
            size_t at = (state >> 8) % len;
            state = state * 1103515245u + 12345u;
            copy[at] = alphabet[(state >> 8) % (sizeof alphabet - 1)];
        }
        size_t cut = round % 7 == 0 ? (size_t)(state >> 4) % len : len;
        authz_arena arena;
        authz_arena_init(&arena, NULL, 0, 0);
        const authz_json *root;
        authz_json_error err;
        int rc = authz_json_parse(copy, cut, &loose, &arena, &root, &err);
        if (rc == 0)
            cr_assert_not_null(root);
        else
            cr_assert(err.offset <= cut, "offset %zu within %zu bytes", err.offset, cut);
        authz_arena_free(&arena);
        free(copy);
    }
}

/* The duplicate check is quadratic in members: at the ceiling with keys of
 * one length (memcmp on every pair) it still takes little time. */
Test(json, duplicate_check_worst_case_is_cheap)
{
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    size_t pos = 0;
    text[pos++] = '{';
    for (size_t i = 0; i < AUTHZ_JSON_MEMBERS_CEILING; i++)
        pos += (size_t)snprintf(text + pos, cap - pos, "%s\"kkkkkkkkkkkkkkkkkkkkkkkkk%04zu\":0", i ? "," : "",
                                i);
    text[pos++] = '}';
    clock_t start = clock();
    cr_assert_eq(code_of_n(text, pos, &loose, NULL), AUTHZ_JSON_OK);
    cr_assert_lt((double)(clock() - start) / CLOCKS_PER_SEC, 0.5);
    free(text);
}
