#include "authz_json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "authz_ascii.h"

/* Byte classes. The low three bits classify a byte inside a string; bit 3
 * marks the bytes that can start a node (',' ':' '[' '{'), counted to bound
 * the node array before parsing. */
#define C_PLAIN 0u /* printable ASCII other than '"' and '\\' */
#define C_CTRL 1u
#define C_QUOTE 2u
#define C_BSL 3u
#define C_HIGH 4u
#define C_STRMASK 7u
#define C_TRIGGER 8u

static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, /* 0x20: '"' ',' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, /* 0x30: ':' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 3, 0, 0, 0, /* 0x50: '[' '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, /* 0x70: '{' */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x80 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x90 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xa0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xb0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xc0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xd0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xe0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xf0 */
};

typedef struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    authz_json *nodes;
    size_t used;
    size_t cap;
    bool cap_is_limit; /* cap is the caller's max_nodes, not the text's own bound */
    size_t max_depth;
    size_t max_members;
    bool allow_nul;
    authz_arena *arena;
    authz_json_error *err;
} parser;

static int fail(parser *p, authz_json_errcode code, size_t offset, const char *message)
{
    p->err->code = code;
    p->err->offset = offset;
    p->err->message = message;
    return -1;
}

/* fail() for the helpers that return an offset or a length, where 0 means error. */
static size_t fail0(parser *p, authz_json_errcode code, size_t offset, const char *message)
{
    fail(p, code, offset, message);
    return 0;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        p->pos++;
    }
}

static authz_json *new_node(parser *p)
{
    if (p->used == p->cap) {
        /* Every node is preceded by its own trigger byte (or is the root),
         * so the text's bound cannot be passed; only max_nodes can. */
        if (p->cap_is_limit)
            fail(p, AUTHZ_JSON_ELIMIT, p->pos, "too many values");
        else
            fail(p, AUTHZ_JSON_ESYNTAX, p->pos, "invalid JSON");
        return NULL;
    }
    authz_json *n = &p->nodes[p->used++];
    memset(n, 0, sizeof *n);
    return n;
}

/* Length (2-4) of the well-formed UTF-8 sequence at |b| (RFC 3629 §4), or 0. */
static size_t utf8_sequence(const unsigned char *b, size_t avail)
{
    unsigned char c = b[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || b[1] < lo || b[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++) {
        if ((b[k] & 0xc0) != 0x80)
            return 0;
    }
    return n;
}

/* Four hex digits at |b| (|avail| bytes readable) as a code unit, or -1. */
static long hex4(const unsigned char *b, size_t avail)
{
    if (avail < 4)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = authz_hex_value((unsigned char)b[k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Reads the escape whose backslash is at |i|: sets *cp to the code point
 * and returns the escape's length, or 0 (with the error set) when it is not
 * a valid escape. */
static size_t read_escape(parser *p, size_t i, uint32_t *cp)
{
    const unsigned char *s = p->s;
    if (i + 1 >= p->len)
        return fail0(p, AUTHZ_JSON_ESYNTAX, i, "unterminated string");
    switch (s[i + 1]) {
    case '"':
        *cp = '"';
        return 2;
    case '\\':
        *cp = '\\';
        return 2;
    case '/':
        *cp = '/';
        return 2;
    case 'b':
        *cp = '\b';
        return 2;
    case 'f':
        *cp = '\f';
        return 2;
    case 'n':
        *cp = '\n';
        return 2;
    case 'r':
        *cp = '\r';
        return 2;
    case 't':
        *cp = '\t';
        return 2;
    case 'u':
        break;
    default:
        return fail0(p, AUTHZ_JSON_ESYNTAX, i, "invalid escape");
    }
    long unit = hex4(s + i + 2, p->len - i - 2);
    if (unit < 0)
        return fail0(p, AUTHZ_JSON_ESYNTAX, i, "invalid \\u escape");
    if (unit >= 0xdc00 && unit <= 0xdfff)
        return fail0(p, AUTHZ_JSON_ESYNTAX, i, "lone low surrogate");
    if (unit >= 0xd800 && unit <= 0xdbff) {
        size_t j = i + 6;
        long low = -1;
        if (j + 1 < p->len && s[j] == '\\' && s[j + 1] == 'u')
            low = hex4(s + j + 2, p->len - j - 2);
        if (low < 0xdc00 || low > 0xdfff)
            return fail0(p, AUTHZ_JSON_ESYNTAX, i, "lone high surrogate");
        *cp = 0x10000u + (((uint32_t)unit - 0xd800u) << 10) + ((uint32_t)low - 0xdc00u);
        return 12;
    }
    if (unit == 0 && !p->allow_nul)
        return fail0(p, AUTHZ_JSON_ELIMIT, i, "\\u0000 in a string");
    *cp = (uint32_t)unit;
    return 6;
}

static size_t utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Walks the string body starting at |start| (just after the opening quote)
 * up to its closing quote. With |out| NULL it validates, returning in
 * *escaped whether any escape occurs; with |out| it also writes the decoded
 * bytes there (never more than the raw length) and their count to *out_len.
 * Both passes run this one function, so what is validated is exactly what
 * is decoded. Returns the offset of the closing quote, or 0 on error (a
 * closing quote is never at offset 0). */
static size_t walk_string(parser *p, size_t start, unsigned char *out, size_t *out_len, bool *escaped)
{
    const unsigned char *s = p->s;
    size_t i = start, o = 0;
    for (;;) {
        size_t run = i;
        while (i < p->len && (byte_class[s[i]] & C_STRMASK) == C_PLAIN)
            i++;
        if (out && i > run) {
            memcpy(out + o, s + run, i - run);
            o += i - run;
        }
        if (i >= p->len)
            return fail0(p, AUTHZ_JSON_ESYNTAX, start - 1, "unterminated string");
        switch (byte_class[s[i]] & C_STRMASK) {
        case C_QUOTE:
            if (out_len)
                *out_len = o;
            return i;
        case C_CTRL:
            return fail0(p, AUTHZ_JSON_ESYNTAX, i, "control character in a string");
        case C_BSL: {
            uint32_t cp = 0;
            size_t n = read_escape(p, i, &cp);
            if (n == 0)
                return 0;
            if (out)
                o += utf8_encode(cp, out + o);
            *escaped = true;
            i += n;
            break;
        }
        default: {
            size_t n = utf8_sequence(s + i, p->len - i);
            if (n == 0)
                return fail0(p, AUTHZ_JSON_ESYNTAX, i, "invalid UTF-8 in a string");
            if (out) {
                memcpy(out + o, s + i, n);
                o += n;
            }
            i += n;
            break;
        }
        }
    }
}

/* Parses the string whose opening quote is at p->pos into |node|. */
static int parse_string(parser *p, authz_json *node)
{
    size_t start = p->pos + 1;
    bool escaped = false;
    size_t end = walk_string(p, start, NULL, NULL, &escaped);
    if (end == 0)
        return -1;
    node->type = AUTHZ_JSON_STRING;
    if (!escaped) {
        node->u.str = (const char *)p->s + start;
        node->n = (uint32_t)(end - start);
    } else {
        unsigned char *buf = authz_arena_alloc(p->arena, end - start);
        if (!buf)
            return fail(p, AUTHZ_JSON_ENOMEM, start - 1, "out of memory");
        size_t out_len = 0;
        walk_string(p, start, buf, &out_len, &escaped);
        node->u.str = (const char *)buf;
        node->n = (uint32_t)out_len;
    }
    p->pos = end + 1;
    return 0;
}

/* number = [ "-" ] int [ frac ] [ exp ] (RFC 8259 §6). */
static int parse_number(parser *p, authz_json *node)
{
    const unsigned char *s = p->s;
    size_t start = p->pos, i = p->pos;
    bool neg = false;
    if (s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= p->len || !authz_is_digit((unsigned char)s[i]))
        return fail(p, AUTHZ_JSON_ESYNTAX, i, "invalid number");
    uint64_t mag = 0;
    const uint64_t max_mag = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    bool overflow = false;
    if (s[i] == '0') {
        i++;
        if (i < p->len && authz_is_digit((unsigned char)s[i]))
            return fail(p, AUTHZ_JSON_ESYNTAX, start, "number with a leading zero");
    } else {
        while (i < p->len && authz_is_digit((unsigned char)s[i])) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (mag > (max_mag - d) / 10)
                overflow = true;
            else
                mag = mag * 10 + d;
            i++;
        }
    }
    bool integral = true;
    if (i < p->len && s[i] == '.') {
        integral = false;
        i++;
        if (i >= p->len || !authz_is_digit((unsigned char)s[i]))
            return fail(p, AUTHZ_JSON_ESYNTAX, i, "fraction without digits");
        while (i < p->len && authz_is_digit((unsigned char)s[i]))
            i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        integral = false;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->len || !authz_is_digit((unsigned char)s[i]))
            return fail(p, AUTHZ_JSON_ESYNTAX, i, "exponent without digits");
        while (i < p->len && authz_is_digit((unsigned char)s[i]))
            i++;
    }
    if (integral) {
        if (overflow)
            return fail(p, AUTHZ_JSON_ELIMIT, start, "integer outside int64");
        node->type = AUTHZ_JSON_INT;
        /* -(2^63) has no positive int64 counterpart to negate. */
        if (mag > (uint64_t)INT64_MAX)
            node->u.i = INT64_MIN;
        else
            node->u.i = neg ? -(int64_t)mag : (int64_t)mag;
        p->pos = i;
        return 0;
    }
    size_t n = i - start;
    if (n >= AUTHZ_JSON_NUMBER_MAX)
        return fail(p, AUTHZ_JSON_ELIMIT, start, "number literal too long");
    char buf[AUTHZ_JSON_NUMBER_MAX];
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + n)
        return fail(p, AUTHZ_JSON_ESYNTAX, start, "invalid number");
    if (isinf(d))
        return fail(p, AUTHZ_JSON_ELIMIT, start, "number overflows a double");
    node->type = AUTHZ_JSON_REAL;
    node->u.d = d;
    p->pos = i;
    return 0;
}

static int parse_literal(parser *p, authz_json *node)
{
    static const struct {
        const char *text;
        size_t len;
        authz_json_type type;
    } literals[] = {
        {"true", 4, AUTHZ_JSON_TRUE}, {"false", 5, AUTHZ_JSON_FALSE}, {"null", 4, AUTHZ_JSON_NULL}};
    for (size_t k = 0; k < sizeof literals / sizeof literals[0]; k++) {
        size_t n = literals[k].len;
        if (p->len - p->pos >= n && memcmp(p->s + p->pos, literals[k].text, n) == 0) {
            node->type = (uint8_t)literals[k].type;
            p->pos += n;
            return 0;
        }
    }
    return fail(p, AUTHZ_JSON_ESYNTAX, p->pos, "unexpected character");
}

static int parse_value(parser *p, size_t depth);

/* Whether the |n| bytes at |a| and |b| are equal: keys of equal length
 * mostly differ in their first byte, tested before calling memcmp. */
static bool same_bytes(const char *a, const char *b, size_t n)
{
    return n == 0 || (a[0] == b[0] && memcmp(a, b, n) == 0);
}

/* The node after |v|'s subtree. */
static const authz_json *after(const authz_json *v)
{
    return v + (v->type == AUTHZ_JSON_ARRAY || v->type == AUTHZ_JSON_OBJECT ? v->u.span : 1u);
}

static int parse_array(parser *p, authz_json *node, size_t depth)
{
    size_t self = (size_t)(node - p->nodes);
    node->type = AUTHZ_JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    uint32_t count = 0;
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            if (parse_value(p, depth) != 0)
                return -1;
            count++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == ']') {
                p->pos++;
                break;
            }
            return fail(p, AUTHZ_JSON_ESYNTAX, p->pos, "expected ',' or ']'");
        }
    }
    node->n = count;
    node->u.span = (uint32_t)(p->used - self);
    return 0;
}

static int parse_object(parser *p, authz_json *node, size_t depth)
{
    size_t self = (size_t)(node - p->nodes);
    node->type = AUTHZ_JSON_OBJECT;
    p->pos++;
    skip_ws(p);
    uint32_t count = 0;
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, AUTHZ_JSON_ESYNTAX, p->pos, "expected a string key");
            if (count == p->max_members)
                return fail(p, AUTHZ_JSON_ELIMIT, p->pos, "too many members in an object");
            size_t key_at = p->pos;
            authz_json *key = new_node(p);
            if (!key || parse_string(p, key) != 0)
                return -1;
            /* Quadratic, but members are bounded; lengths are compared first. */
            const authz_json *k = p->nodes + self + 1;
            for (uint32_t m = 0; m < count; m++) {
                if (k->n == key->n && same_bytes(k->u.str, key->u.str, key->n))
                    return fail(p, AUTHZ_JSON_ESYNTAX, key_at, "duplicate key");
                k = after(k + 1);
            }
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, AUTHZ_JSON_ESYNTAX, p->pos, "expected ':'");
            p->pos++;
            if (parse_value(p, depth) != 0)
                return -1;
            count++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == '}') {
                p->pos++;
                break;
            }
            return fail(p, AUTHZ_JSON_ESYNTAX, p->pos, "expected ',' or '}'");
        }
    }
    node->n = count;
    node->u.span = (uint32_t)(p->used - self);
    return 0;
}

/* Parses one value at p->pos; |depth| counts the containers around it. */
static int parse_value(parser *p, size_t depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, AUTHZ_JSON_ESYNTAX, p->pos, "unexpected end of input");
    unsigned char c = p->s[p->pos];
    if ((c == '[' || c == '{') && depth >= p->max_depth)
        return fail(p, AUTHZ_JSON_ELIMIT, p->pos, "nesting too deep");
    authz_json *node = new_node(p);
    if (!node)
        return -1;
    switch (c) {
    case '[':
        return parse_array(p, node, depth + 1);
    case '{':
        return parse_object(p, node, depth + 1);
    case '"':
        return parse_string(p, node);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return parse_number(p, node);
    default:
        return parse_literal(p, node);
    }
}

int authz_json_parse(const char *text, size_t len, const authz_json_limits *limits, authz_arena *arena,
                     const authz_json **root, authz_json_error *err)
{
    static const authz_json_limits unbounded = {0, 0, 0, false};
    if (!limits)
        limits = &unbounded;
    parser p;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)text;
    p.len = len;
    p.arena = arena;
    p.err = err;
    err->code = AUTHZ_JSON_OK;
    err->offset = 0;
    err->message = "ok";
    *root = NULL;
    p.max_depth = limits->max_depth;
    if (p.max_depth == 0 || p.max_depth > AUTHZ_JSON_DEPTH_CEILING)
        p.max_depth = AUTHZ_JSON_DEPTH_CEILING;
    p.max_members = limits->max_members;
    if (p.max_members == 0 || p.max_members > AUTHZ_JSON_MEMBERS_CEILING)
        p.max_members = AUTHZ_JSON_MEMBERS_CEILING;
    p.allow_nul = limits->allow_nul;

    if (len >= UINT32_MAX)
        return fail(&p, AUTHZ_JSON_ELIMIT, 0, "text too long");
    if (len > 0 && !text)
        return fail(&p, AUTHZ_JSON_ESYNTAX, 0, "no text");
    /* Upper bound on the nodes of any parse of this text, valid or not. */
    size_t bound = 1;
    for (size_t i = 0; i < len; i++)
        bound += byte_class[p.s[i]] >> 3;
    p.cap = bound;
    if (limits->max_nodes > 0 && limits->max_nodes < bound) {
        p.cap = limits->max_nodes;
        p.cap_is_limit = true;
    }
    p.nodes = authz_arena_alloc(arena, p.cap * sizeof(authz_json));
    if (!p.nodes)
        return fail(&p, AUTHZ_JSON_ENOMEM, 0, "out of memory");
    if (parse_value(&p, 0) != 0)
        return -1;
    skip_ws(&p);
    if (p.pos != p.len)
        return fail(&p, AUTHZ_JSON_ESYNTAX, p.pos, "data after the top-level value");
    *root = p.nodes;
    return 0;
}

authz_json_type authz_json_type_of(const authz_json *v)
{
    return v ? (authz_json_type)v->type : AUTHZ_JSON_ABSENT;
}

size_t authz_json_count(const authz_json *v)
{
    return v && (v->type == AUTHZ_JSON_ARRAY || v->type == AUTHZ_JSON_OBJECT) ? v->n : 0;
}

const authz_json *authz_json_get(const authz_json *obj, authz_slice key)
{
    if (!obj || obj->type != AUTHZ_JSON_OBJECT)
        return NULL;
    const authz_json *k = obj + 1;
    for (uint32_t m = 0; m < obj->n; m++) {
        if (k->n == key.len && same_bytes(k->u.str, key.ptr, key.len))
            return k + 1;
        k = after(k + 1);
    }
    return NULL;
}

const authz_json *authz_json_at(const authz_json *arr, size_t i)
{
    if (!arr || arr->type != AUTHZ_JSON_ARRAY || i >= arr->n)
        return NULL;
    const authz_json *e = arr + 1;
    while (i-- > 0)
        e = after(e);
    return e;
}

const authz_json *authz_json_member_at(const authz_json *obj, size_t i, authz_slice *key)
{
    key->ptr = NULL;
    key->len = 0;
    if (!obj || obj->type != AUTHZ_JSON_OBJECT || i >= obj->n)
        return NULL;
    const authz_json *k = obj + 1;
    while (i-- > 0)
        k = after(k + 1);
    key->ptr = k->u.str;
    key->len = k->n;
    return k + 1;
}

bool authz_json_string(const authz_json *v, authz_slice *out)
{
    if (!v || v->type != AUTHZ_JSON_STRING)
        return false;
    out->ptr = v->u.str;
    out->len = v->n;
    return true;
}

bool authz_json_int(const authz_json *v, int64_t *out)
{
    if (!v || v->type != AUTHZ_JSON_INT)
        return false;
    *out = v->u.i;
    return true;
}

bool authz_json_real(const authz_json *v, double *out)
{
    if (!v || v->type != AUTHZ_JSON_REAL)
        return false;
    *out = v->u.d;
    return true;
}

bool authz_json_number(const authz_json *v, double *out)
{
    if (v && v->type == AUTHZ_JSON_INT) {
        *out = (double)v->u.i;
        return true;
    }
    return authz_json_real(v, out);
}

bool authz_json_bool(const authz_json *v, bool *out)
{
    if (!v || (v->type != AUTHZ_JSON_TRUE && v->type != AUTHZ_JSON_FALSE))
        return false;
    *out = v->type == AUTHZ_JSON_TRUE;
    return true;
}
