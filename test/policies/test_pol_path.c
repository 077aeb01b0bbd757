/* pol_path: the normalizer alone. Expected outputs follow RFC 3986 (5.2.4
 * dot segments, 6.2.2.1 upper-case escapes, 6.2.2.2 unreserved decoding),
 * plus slash merging and the refusals pol_path.h lists; a property checks
 * that normalizing twice equals normalizing once over generated paths. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_path.h"

typedef struct path_case {
    const char *in;
    size_t len; /* 0: strlen(in) */
    pol_path_slashes slashes;
    const char *want;     /* NULL when refused */
    pol_path_error error; /* when refused */
    size_t at;            /* byte of the refusal */
} path_case;

#define OK(in, want)                                                                                         \
    {                                                                                                        \
        in, 0, POL_PATH_SLASHES_REJECT, want, POL_PATH_OK, 0                                                 \
    }
#define KEEP(in, want)                                                                                       \
    {                                                                                                        \
        in, 0, POL_PATH_SLASHES_KEEP, want, POL_PATH_OK, 0                                                   \
    }
#define BAD(in, err, at)                                                                                     \
    {                                                                                                        \
        in, 0, POL_PATH_SLASHES_REJECT, NULL, err, at                                                        \
    }

static const path_case cases[] = {
    OK("/", "/"),
    OK("/a/b", "/a/b"),
    OK("/a/b/", "/a/b/"),
    /* slashes merged */
    OK("//", "/"),
    OK("//a///b//", "/a/b/"),
    /* dot segments, RFC 3986 5.2.4 (and its 5.4 examples, as paths) */
    OK("/a/b/c/./../../g", "/a/g"),
    OK("/mid/content=5/../6", "/mid/6"),
    OK("/a/.", "/a/"),
    OK("/a/./", "/a/"),
    OK("/a/..", "/"),
    OK("/a/b/..", "/a/"),
    OK("/a/b/../", "/a/"),
    OK("/..", "/"),
    OK("/../../a", "/a"),
    OK("/./a", "/a"),
    OK("/a/.../b", "/a/.../b"),
    OK("/a/..b/.c/b..", "/a/..b/.c/b.."),
    OK("/a//../b", "/b"),
    /* unreserved decoded, either hex case; the rest kept, upper-case */
    OK("/%61%62%63", "/abc"),
    OK("/%41%5a%7E%2d%5F%2E%30", "/AZ~-_.0"),
    OK("/%2e/a", "/a"),
    OK("/a/%2E%2e/b", "/b"),
    OK("/a/.%2e", "/"),
    OK("/%3b%3F%23%25%20", "/%3B%3F%23%25%20"),
    OK("/%2561", "/%2561"),
    OK("/%c3%a9/%E2%82%AC/%f0%9f%98%80", "/%C3%A9/%E2%82%AC/%F0%9F%98%80"),
    /* sub-delims, ':' and '@' stand for themselves */
    OK("/a:b@c!$&'()*+,;=d", "/a:b@c!$&'()*+,;=d"),
    OK("/a;b/c", "/a;b/c"),
    OK("/a;b/../c", "/c"),
    /* query and fragment are not part of the path */
    OK("/a?b", "/a"),
    OK("/a?/../b", "/a"),
    OK("/a/..?x", "/"),
    OK("/a#/b", "/a"),
    OK("/a?b#c", "/a"),
    OK("/a?q=\\%zz%2F\"", "/a"),
    /* escaped slashes kept when configured, upper-case, literal */
    KEEP("/a%2fb", "/a%2Fb"),
    KEEP("/a%5cb", "/a%5Cb"),
    KEEP("/a%2F..%2Fb", "/a%2F..%2Fb"),
    KEEP("/x/%2F/..", "/x/"),
    /* refused */
    BAD("", POL_PATH_NOT_ABSOLUTE, 0),
    BAD("a/b", POL_PATH_NOT_ABSOLUTE, 0),
    BAD("*", POL_PATH_NOT_ABSOLUTE, 0),
    BAD("?/a", POL_PATH_NOT_ABSOLUTE, 0),
    BAD("http://h/a", POL_PATH_NOT_ABSOLUTE, 0),
    BAD("/a%2Fb", POL_PATH_ENCODED_SLASH, 2),
    BAD("/a%2fb", POL_PATH_ENCODED_SLASH, 2),
    BAD("/a%5Cb", POL_PATH_ENCODED_SLASH, 2),
    BAD("/a%5cb", POL_PATH_ENCODED_SLASH, 2),
    BAD("/a\\b", POL_PATH_BACKSLASH, 2),
    BAD("/a%", POL_PATH_BAD_ESCAPE, 2),
    BAD("/a%4", POL_PATH_BAD_ESCAPE, 2),
    BAD("/a%4?1", POL_PATH_BAD_ESCAPE, 2),
    BAD("/a%g1", POL_PATH_BAD_ESCAPE, 2),
    BAD("/a%%41", POL_PATH_BAD_ESCAPE, 2),
    BAD("/a%00", POL_PATH_CONTROL, 2),
    BAD("/a%0a", POL_PATH_CONTROL, 2),
    BAD("/a%7F", POL_PATH_CONTROL, 2),
    BAD("/a\tb", POL_PATH_CONTROL, 2),
    BAD("/a\x7f", POL_PATH_CONTROL, 2),
    BAD("/a?b\nc", POL_PATH_CONTROL, 4),
    BAD("/a#\x01", POL_PATH_CONTROL, 3),
    BAD("/a b", POL_PATH_INVALID_BYTE, 2),
    BAD("/a\"b", POL_PATH_INVALID_BYTE, 2),
    BAD("/a<b>", POL_PATH_INVALID_BYTE, 2),
    BAD("/a{b}", POL_PATH_INVALID_BYTE, 2),
    BAD("/a|b", POL_PATH_INVALID_BYTE, 2),
    BAD("/a^b", POL_PATH_INVALID_BYTE, 2),
    BAD("/a`b", POL_PATH_INVALID_BYTE, 2),
    BAD("/a[b]", POL_PATH_INVALID_BYTE, 2),
    BAD("/\xc3\xa9", POL_PATH_INVALID_BYTE, 1),
    BAD("/%c0%ae", POL_PATH_BAD_UTF8, 1),
    BAD("/%C1%81", POL_PATH_BAD_UTF8, 1),
    BAD("/%e0%80%ae", POL_PATH_BAD_UTF8, 4),
    BAD("/%f0%80%80%ae", POL_PATH_BAD_UTF8, 4),
    BAD("/%ed%a0%80", POL_PATH_BAD_UTF8, 4),
    BAD("/%f4%90%80%80", POL_PATH_BAD_UTF8, 4),
    BAD("/%f5%80%80%80", POL_PATH_BAD_UTF8, 1),
    BAD("/%80", POL_PATH_BAD_UTF8, 1),
    BAD("/%c3", POL_PATH_BAD_UTF8, 4),
    BAD("/%c3/", POL_PATH_BAD_UTF8, 4),
    BAD("/%c3a", POL_PATH_BAD_UTF8, 4),
    BAD("/%c3%41", POL_PATH_BAD_UTF8, 4),
    BAD("/..;/a", POL_PATH_DOT_PARAMETER, 1),
    BAD("/a/.;x/b", POL_PATH_DOT_PARAMETER, 3),
    BAD("/a/%2e%2e;/b", POL_PATH_DOT_PARAMETER, 3),
    BAD("/;x/a", POL_PATH_DOT_PARAMETER, 1),
    BAD("/..;a;b/x", POL_PATH_DOT_PARAMETER, 1),
    BAD("/a/;", POL_PATH_DOT_PARAMETER, 3),
};

static size_t case_len(const path_case *c)
{
    return c->len ? c->len : strlen(c->in);
}

Test(pol_path, table)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const path_case *c = &cases[i];
        size_t len = case_len(c);
        char out[256];
        size_t out_len = 99, at = 99;
        pol_path_error e = pol_path_normalize((authz_slice){c->in, len}, c->slashes, out, len, &out_len, &at);
        if (c->want) {
            cr_expect_eq(e, POL_PATH_OK, "%s: refused (%s at %zu)", c->in, pol_path_error_text(e), at);
            cr_expect(out_len == strlen(c->want) && memcmp(out, c->want, out_len) == 0,
                      "%s: got %.*s, want %s", c->in, (int)out_len, out, c->want);
        } else {
            cr_expect_eq(e, c->error, "%s: got %s, want %s", c->in, pol_path_error_text(e),
                         pol_path_error_text(c->error));
            cr_expect_eq(at, c->at, "%s: at %zu, want %zu", c->in, at, c->at);
            cr_expect_eq(out_len, 0);
        }
    }
}

Test(pol_path, nul_anywhere_is_a_control_byte)
{
    static const char with_nul[] = "/api\0/../admin";
    char out[32];
    size_t out_len, at;
    authz_slice raw = {with_nul, sizeof with_nul - 1};
    cr_assert_eq(pol_path_normalize(raw, POL_PATH_SLASHES_KEEP, out, sizeof out, &out_len, &at),
                 POL_PATH_CONTROL);
    cr_assert_eq(at, 4);
    static const char nul_in_query[] = "/a?\0";
    raw = (authz_slice){nul_in_query, sizeof nul_in_query - 1};
    cr_assert_eq(pol_path_normalize(raw, POL_PATH_SLASHES_KEEP, out, sizeof out, &out_len, &at),
                 POL_PATH_CONTROL);
}

Test(pol_path, output_never_exceeds_the_path)
{
    /* Exactly the path's length is enough (the query does not count);
     * one byte less is refused without writing past it. */
    char out[8];
    size_t out_len, at;
    memset(out, 'Z', sizeof out);
    cr_assert_eq(
        pol_path_normalize(AUTHZ_SLICE_LIT("/ab/cd?xyz"), POL_PATH_SLASHES_REJECT, out, 6, &out_len, &at),
        POL_PATH_OK);
    cr_assert_eq(out_len, 6);
    cr_assert_eq(out[6], 'Z');
    memset(out, 'Z', sizeof out);
    cr_assert_eq(
        pol_path_normalize(AUTHZ_SLICE_LIT("/ab/cd?xyz"), POL_PATH_SLASHES_REJECT, out, 5, &out_len, &at),
        POL_PATH_NO_ROOM);
    cr_assert_eq(out[5], 'Z');
    cr_assert_eq(pol_path_normalize(AUTHZ_SLICE_LIT("/ab"), POL_PATH_SLASHES_REJECT, out, 3, &out_len, NULL),
                 POL_PATH_OK);
}

Test(pol_path, every_error_has_a_text)
{
    for (int e = POL_PATH_OK; e <= POL_PATH_NO_ROOM; e++) {
        const char *text = pol_path_error_text((pol_path_error)e);
        cr_assert(text && text[0], "%d", e);
    }
}

/* ---- property: idempotent, bounded, in normal form ---------------------- */

static const char *const pieces[] = {
    "/",  "/",   "//",  ".",   "..",  "%2e", "%2E", "a",         "B",      "%41", "%62",    ";",
    ";x", "%3B", "%2F", "%5c", "%25", "%c3", "%a9", "~",         "?",      "#",   "%C0%AE", "%",
    "\\", ":@",  "-",   "_",   "%7E", "%20", "=",   "%e2%82%ac", "%2e%2e", "%00", " ",      "\xc3\xa9",
};

/* xorshift: reproducible without a seed file. */
static unsigned next_random(unsigned *state)
{
    unsigned x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* A normalized path: starts with '/', no "//", no "." or ".." segment, no
 * '?' or '#', every '%' followed by two upper-case hex digits. */
static void expect_normal_form(const char *s, size_t len, const char *from)
{
    cr_assert(len >= 1 && s[0] == '/', "%s -> %.*s", from, (int)len, s);
    size_t seg = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && s[i] != '/') {
            cr_assert(s[i] != '?' && s[i] != '#', "%s -> %.*s", from, (int)len, s);
            if (s[i] == '%') {
                cr_assert(i + 2 < len, "%s -> %.*s", from, (int)len, s);
                for (size_t k = 1; k <= 2; k++)
                    cr_assert(strchr("0123456789ABCDEF", s[i + k]) != NULL, "%s -> %.*s", from, (int)len, s);
            }
            continue;
        }
        size_t n = i - seg;
        cr_assert(n > 0 || i == len, "empty segment: %s -> %.*s", from, (int)len, s);
        cr_assert(!(n == 1 && s[seg] == '.') && !(n == 2 && s[seg] == '.' && s[seg + 1] == '.'),
                  "dot segment: %s -> %.*s", from, (int)len, s);
        seg = i + 1;
    }
}

Test(pol_path, normalizing_twice_equals_once)
{
    unsigned state = 0x2545f491u;
    size_t accepted = 0;
    for (int round = 0; round < 20000; round++) {
        char in[256];
        size_t len = 0;
        in[len++] = '/';
        int count = (int)(next_random(&state) % 12);
        for (int k = 0; k < count; k++) {
            const char *p = pieces[next_random(&state) % (sizeof pieces / sizeof pieces[0])];
            size_t n = strlen(p);
            memcpy(in + len, p, n);
            len += n;
        }
        pol_path_slashes mode = (round & 1) ? POL_PATH_SLASHES_KEEP : POL_PATH_SLASHES_REJECT;
        char once[256], twice[256];
        size_t once_len, twice_len, at;
        in[len] = '\0';
        if (pol_path_normalize((authz_slice){in, len}, mode, once, len, &once_len, &at) != POL_PATH_OK)
            continue;
        accepted++;
        cr_assert_leq(once_len, len);
        expect_normal_form(once, once_len, in);
        pol_path_error e =
            pol_path_normalize((authz_slice){once, once_len}, mode, twice, once_len, &twice_len, &at);
        cr_assert_eq(e, POL_PATH_OK, "%s -> %.*s refused the second time: %s", in, (int)once_len, once,
                     pol_path_error_text(e));
        cr_assert(twice_len == once_len && memcmp(once, twice, once_len) == 0, "%s -> %.*s -> %.*s", in,
                  (int)once_len, once, (int)twice_len, twice);
    }
    /* The generator must exercise the accepting side, not only refusals. */
    cr_assert_gt(accepted, 2000, "only %zu accepted", accepted);
}
