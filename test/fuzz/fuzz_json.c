/* fuzz_json: authz_json_parse on arbitrary text, differentially against
 * jansson.
 *
 * Checks on our own parser: the DOM is self-consistent (every container's
 * span is 1 plus its children's spans and the root's span covers the node
 * count, object keys are distinct, strings are valid UTF-8 without NUL
 * unless allowed); allowing \u0000 never turns an accepted document into a
 * rejected one or changes it; tight limits either refuse with ELIMIT or give
 * the same DOM within them, and never accept what the unlimited parse
 * refuses as a syntax error.
 *
 * Against jansson (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL):
 * when both accept, the documents must be identical (types, int64 values,
 * doubles bit for bit, string bytes, members). When only one side accepts,
 * the input is printed, not asserted: the two differ on purpose (depth,
 * number length and range, duplicate keys after unescaping); two known
 * jansson limits are not printed (no NUL in keys, a raw NUL byte ends its
 * input). Set TG_FUZZ_JSON_QUIET to silence the rest. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "json: " __VA_ARGS__);                                                                         \
        fprintf(stderr, "\n");                                                                                         \
        abort();                                                                                                       \
    } while (0)

/* Length of the UTF-8 sequence at |s| (|n| bytes left), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80) {
        return 1;
    } else if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        cp = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0u) != 0x80u) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

static void check_string(authz_slice s, bool allow_nul)
{
    for (size_t i = 0; i < s.len;) {
        size_t k = utf8_seq((const unsigned char *)s.ptr + i, s.len - i);
        if (k == 0) {
            FAIL("string with invalid UTF-8 at %zu", i);
        }
        if (!allow_nul && s.ptr[i] == '\0') {
            FAIL("string with NUL although not allowed");
        }
        i += k;
    }
}

/* Walks |v|; returns its node count (keys included) and checks spans. */
static size_t check_dom(const authz_json *v, bool allow_nul, size_t depth, size_t *max_depth)
{
    authz_json_type t = authz_json_type_of(v);
    size_t nodes = 1;
    authz_slice s;

    if (depth > *max_depth) {
        *max_depth = depth;
    }
    switch (t) {
    case AUTHZ_JSON_NULL:
    case AUTHZ_JSON_FALSE:
    case AUTHZ_JSON_TRUE:
    case AUTHZ_JSON_INT:
        break;
    case AUTHZ_JSON_REAL: {
        double d = 0;
        if (!authz_json_real(v, &d) || d != d || d - d != 0) {
            FAIL("real that is not finite");
        }
        break;
    }
    case AUTHZ_JSON_STRING:
        if (!authz_json_string(v, &s)) {
            FAIL("string getter refuses a string");
        }
        check_string(s, allow_nul);
        break;
    case AUTHZ_JSON_ARRAY:
        for (size_t i = 0; i < authz_json_count(v); i++) {
            const authz_json *e = authz_json_at(v, i);
            if (e == NULL) {
                FAIL("array element %zu of %zu missing", i, authz_json_count(v));
            }
            nodes += check_dom(e, allow_nul, depth + 1, max_depth);
        }
        if (authz_json_at(v, authz_json_count(v)) != NULL) {
            FAIL("array element past the end");
        }
        break;
    case AUTHZ_JSON_OBJECT:
        for (size_t i = 0; i < authz_json_count(v); i++) {
            authz_slice key = {NULL, 0};
            const authz_json *m = authz_json_member_at(v, i, &key);
            if (m == NULL) {
                FAIL("member %zu of %zu missing", i, authz_json_count(v));
            }
            check_string(key, allow_nul);
            if (authz_json_get(v, key) != m) {
                FAIL("get does not find member %zu (duplicate key?)", i);
            }
            nodes += 1 + check_dom(m, allow_nul, depth + 1, max_depth);
        }
        break;
    default:
        FAIL("node of type %d", (int)t);
    }
    if ((t == AUTHZ_JSON_ARRAY || t == AUTHZ_JSON_OBJECT) && v->u.span != nodes) {
        FAIL("span %u, subtree has %zu nodes", v->u.span, nodes);
    }
    return nodes;
}

/* True when our |a| and jansson's |b| hold the same document. */
static bool same_as_jansson(const authz_json *a, const json_t *b)
{
    authz_slice s;
    int64_t i;
    double d;

    switch (authz_json_type_of(a)) {
    case AUTHZ_JSON_NULL:
        return json_is_null(b);
    case AUTHZ_JSON_FALSE:
        return json_is_false(b);
    case AUTHZ_JSON_TRUE:
        return json_is_true(b);
    case AUTHZ_JSON_INT:
        return authz_json_int(a, &i) && json_is_integer(b) && json_integer_value(b) == i;
    case AUTHZ_JSON_REAL:
        return authz_json_real(a, &d) && json_is_real(b) && memcmp(&d, &(double){json_real_value(b)}, sizeof(d)) == 0;
    case AUTHZ_JSON_STRING:
        return authz_json_string(a, &s) && json_is_string(b) && json_string_length(b) == s.len &&
               (s.len == 0 || memcmp(json_string_value(b), s.ptr, s.len) == 0);
    case AUTHZ_JSON_ARRAY:
        if (!json_is_array(b) || json_array_size(b) != authz_json_count(a)) {
            return false;
        }
        for (size_t k = 0; k < authz_json_count(a); k++) {
            if (!same_as_jansson(authz_json_at(a, k), json_array_get(b, k))) {
                return false;
            }
        }
        return true;
    case AUTHZ_JSON_OBJECT:
        if (!json_is_object(b) || json_object_size(b) != authz_json_count(a)) {
            return false;
        }
        for (size_t k = 0; k < authz_json_count(a); k++) {
            authz_slice key;
            const authz_json *m = authz_json_member_at(a, k, &key);
            const json_t *bm = json_object_getn(b, key.ptr ? key.ptr : "", key.len);
            if (bm == NULL || !same_as_jansson(m, bm)) {
                return false;
            }
        }
        return true;
    default:
        return false;
    }
}

/* True when two of our DOMs are the same document (members in order). */
static bool same_dom(const authz_json *a, const authz_json *b)
{
    authz_json_type t = authz_json_type_of(a);
    authz_slice sa, sb;

    if (t != authz_json_type_of(b)) {
        return false;
    }
    switch (t) {
    case AUTHZ_JSON_INT:
        return a->u.i == b->u.i;
    case AUTHZ_JSON_REAL:
        return memcmp(&a->u.d, &b->u.d, sizeof(double)) == 0;
    case AUTHZ_JSON_STRING:
        return authz_json_string(a, &sa) && authz_json_string(b, &sb) && authz_slice_eq(sa, sb);
    case AUTHZ_JSON_ARRAY:
    case AUTHZ_JSON_OBJECT:
        if (authz_json_count(a) != authz_json_count(b)) {
            return false;
        }
        for (size_t k = 0; k < authz_json_count(a); k++) {
            const authz_json *ma, *mb;
            if (t == AUTHZ_JSON_ARRAY) {
                ma = authz_json_at(a, k);
                mb = authz_json_at(b, k);
            } else {
                ma = authz_json_member_at(a, k, &sa);
                mb = authz_json_member_at(b, k, &sb);
                if (!authz_slice_eq(sa, sb)) {
                    return false;
                }
            }
            if (!same_dom(ma, mb)) {
                return false;
            }
        }
        return true;
    default:
        return true;
    }
}

static void note(const char *what, const uint8_t *data, size_t size, const char *detail)
{
    static unsigned printed;
    if (getenv("TG_FUZZ_JSON_QUIET") != NULL || printed >= 50) {
        return;
    }
    printed++;
    fprintf(stderr, "json: %s (%s): ", what, detail);
    for (size_t i = 0; i < size && i < 200; i++) {
        unsigned char c = data[i];
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            fputc(c, stderr);
        } else {
            fprintf(stderr, "\\x%02x", c);
        }
    }
    fprintf(stderr, "%s\n", size > 200 ? "..." : "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    authz_json_limits strict = {0, 0, 0, false};
    authz_json_limits nul_ok = {0, 0, 0, true};
    authz_json_limits tight = {4, 16, 4, true};
    authz_arena arena;
    const authz_json *root = NULL, *root_nul = NULL, *root_tight = NULL;
    authz_json_error err, err_nul, err_tight;
    json_error_t jerr;
    json_t *j;
    size_t max_depth = 0, nodes;
    int rc, rc_nul, rc_tight;

    authz_arena_init(&arena, NULL, 0, 16u * 1024u * 1024u);
    rc = authz_json_parse(text, size, &strict, &arena, &root, &err);
    rc_nul = authz_json_parse(text, size, &nul_ok, &arena, &root_nul, &err_nul);
    rc_tight = authz_json_parse(text, size, &tight, &arena, &root_tight, &err_tight);
    if (rc == 0) {
        check_dom(root, false, 0, &max_depth);
        if (rc_nul != 0 || !same_dom(root, root_nul)) {
            FAIL("allowing NUL refuses or changes an accepted document");
        }
    } else if (root != NULL || err.code == AUTHZ_JSON_OK || err.message == NULL || err.offset > size) {
        FAIL("failure %d at %zu without a clean result", (int)err.code, err.offset);
    }
    if (rc_nul == 0) {
        max_depth = 0;
        nodes = check_dom(root_nul, true, 0, &max_depth);
        if (rc_tight == 0 && (!same_dom(root_nul, root_tight) || max_depth > tight.max_depth || nodes > 16)) {
            FAIL("tight limits accept depth %zu, %zu nodes, or change the document", max_depth, nodes);
        }
        if (rc_tight != 0 && err_tight.code != AUTHZ_JSON_ELIMIT) {
            FAIL("tight limits refuse an accepted document with code %d", (int)err_tight.code);
        }
    } else if (rc_tight == 0) {
        FAIL("tight limits accept a refused document");
    }

    j = json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (rc_nul == 0 && j != NULL) {
        if (!same_as_jansson(root_nul, j)) {
            FAIL("both accept, documents differ");
        }
    } else if (rc_nul == 0) {
        /* jansson cannot hold a NUL in a key: known, not news. */
        if (strstr(jerr.text, "NUL byte in object key") == NULL) {
            note("we accept, jansson refuses", data, size, jerr.text);
        }
    } else if (j != NULL && err_nul.code == AUTHZ_JSON_ESYNTAX && memchr(data, '\0', size) == NULL) {
        /* ELIMIT is by design (depth, number length); jansson's decoder stops
         * at a raw NUL byte and accepts what came before it. */
        note("jansson accepts, we refuse", data, size, err_nul.message);
    }
    json_decref(j);
    authz_arena_free(&arena);
    return 0;
}
