#include "srv_checkreq.h"

#include <limits.h>
#include <string.h>

/* How a known field must arrive. K_BOOL takes any wire type, as protobuf-c
 * does (it reads a bool from whatever bytes the field has). */
enum kind { K_VARINT, K_I64, K_LEN, K_MSG, K_BOOL };

/* What to do with a field's value while walking. */
enum action {
    A_NONE,
    A_SLOT0, /* keep in the instance's slot 0..2 (map entry key/value, ...) */
    A_SLOT1,
    A_SLOT2,
    A_METHOD,
    A_PATH,
    A_HOST,
    A_PEER,         /* socket_address.address of the source */
    A_PRINCIPAL,    /* source.principal */
    A_CERTIFICATE,  /* source.certificate */
    A_ENTER_SOCKET, /* the source address oneof becomes socket_address */
    A_ENTER_OTHER   /* the source address oneof becomes pipe / internal */
};

/* Message types. The source peer has its own chain so that only its
 * address is taken; map entries have one type per use. */
enum msg {
    M_CHECKREQ,
    M_ATTR,
    M_PEER_SRC,
    M_PEER,
    M_ADDR_SRC,
    M_ADDR,
    M_SOCK_SRC,
    M_SOCK,
    M_PIPE,
    M_INTERNAL,
    M_REQUEST,
    M_TIMESTAMP,
    M_HTTP,
    M_HDR_ENTRY,
    M_EXT_ENTRY,
    M_STR_ENTRY,
    M_HEADERMAP,
    M_HEADERVALUE,
    M_TLS,
    M_METADATA,
    M_STRUCT_ENTRY,
    M_ANY_ENTRY,
    M_ANY,
    M_STRUCT,
    M_FIELDS_ENTRY,
    M_VALUE,
    M_LIST,
    M_COUNT
};

typedef struct fdesc {
    uint8_t num;
    uint8_t kind;
    uint8_t sub; /* enum msg, for K_MSG */
    uint8_t act;
} fdesc;

typedef struct mdesc {
    const fdesc *fields;
    size_t count;
} mdesc;

#define F(num, kind, sub, act) {num, kind, sub, act}
#define STR(num, act) F(num, K_LEN, 0, act)
#define MSG(num, sub, act) F(num, K_MSG, sub, act)
#define VAR(num) F(num, K_VARINT, 0, A_NONE)

/* The tree proto/ describes, field numbers as Envoy publishes them. */
static const fdesc f_checkreq[] = {MSG(1, M_ATTR, A_NONE)};
static const fdesc f_attr[] = {
    MSG(1, M_PEER_SRC, A_NONE),   MSG(2, M_PEER, A_NONE),     MSG(4, M_REQUEST, A_NONE),
    MSG(10, M_EXT_ENTRY, A_NONE), MSG(11, M_METADATA, A_NONE), MSG(13, M_METADATA, A_NONE),
    MSG(12, M_TLS, A_NONE),
};
static const fdesc f_peer_src[] = {
    MSG(1, M_ADDR_SRC, A_NONE), STR(2, A_NONE),        MSG(3, M_STR_ENTRY, A_NONE),
    STR(4, A_PRINCIPAL),        STR(5, A_CERTIFICATE),
};
static const fdesc f_peer[] = {
    MSG(1, M_ADDR, A_NONE), STR(2, A_NONE), MSG(3, M_STR_ENTRY, A_NONE), STR(4, A_NONE), STR(5, A_NONE),
};
static const fdesc f_addr_src[] = {
    MSG(1, M_SOCK_SRC, A_ENTER_SOCKET),
    MSG(2, M_PIPE, A_ENTER_OTHER),
    MSG(3, M_INTERNAL, A_ENTER_OTHER),
};
static const fdesc f_addr[] = {MSG(1, M_SOCK, A_NONE), MSG(2, M_PIPE, A_NONE), MSG(3, M_INTERNAL, A_NONE)};
static const fdesc f_sock_src[] = {
    VAR(1), STR(2, A_PEER), VAR(3), STR(4, A_NONE), STR(5, A_NONE), F(6, K_BOOL, 0, A_NONE), STR(7, A_NONE),
};
static const fdesc f_sock[] = {
    VAR(1), STR(2, A_NONE), VAR(3), STR(4, A_NONE), STR(5, A_NONE), F(6, K_BOOL, 0, A_NONE), STR(7, A_NONE),
};
static const fdesc f_pipe[] = {STR(1, A_NONE), VAR(2)};
static const fdesc f_internal[] = {STR(1, A_NONE), STR(2, A_NONE)};
static const fdesc f_request[] = {MSG(1, M_TIMESTAMP, A_NONE), MSG(2, M_HTTP, A_NONE)};
static const fdesc f_timestamp[] = {VAR(1), VAR(2)};
static const fdesc f_http[] = {
    STR(1, A_NONE),  STR(2, A_METHOD), MSG(3, M_HDR_ENTRY, A_NONE), MSG(13, M_HEADERMAP, A_NONE),
    STR(4, A_PATH),  STR(5, A_HOST),   STR(6, A_NONE),              STR(7, A_NONE),
    STR(8, A_NONE),  VAR(9),           STR(10, A_NONE),             STR(11, A_NONE),
    STR(12, A_NONE),
};
static const fdesc f_pair[] = {STR(1, A_SLOT0), STR(2, A_SLOT1)};
static const fdesc f_str_entry[] = {STR(1, A_NONE), STR(2, A_NONE)};
static const fdesc f_headermap[] = {MSG(1, M_HEADERVALUE, A_NONE)};
static const fdesc f_headervalue[] = {STR(1, A_SLOT0), STR(2, A_SLOT1), STR(3, A_SLOT2)};
static const fdesc f_tls[] = {STR(1, A_NONE)};
static const fdesc f_metadata[] = {MSG(1, M_STRUCT_ENTRY, A_NONE), MSG(2, M_ANY_ENTRY, A_NONE)};
static const fdesc f_struct_entry[] = {STR(1, A_NONE), MSG(2, M_STRUCT, A_NONE)};
static const fdesc f_any_entry[] = {STR(1, A_NONE), MSG(2, M_ANY, A_NONE)};
static const fdesc f_any[] = {STR(1, A_NONE), STR(2, A_NONE)};
static const fdesc f_struct[] = {MSG(1, M_FIELDS_ENTRY, A_NONE)};
static const fdesc f_fields_entry[] = {STR(1, A_NONE), MSG(2, M_VALUE, A_NONE)};
static const fdesc f_value[] = {
    VAR(1), F(2, K_I64, 0, A_NONE), STR(3, A_NONE), F(4, K_BOOL, 0, A_NONE), MSG(5, M_STRUCT, A_NONE),
    MSG(6, M_LIST, A_NONE),
};
static const fdesc f_list[] = {MSG(1, M_VALUE, A_NONE)};

#define M(arr) {arr, sizeof(arr) / sizeof(arr[0])}
static const mdesc messages[M_COUNT] = {
    [M_CHECKREQ] = M(f_checkreq),         [M_ATTR] = M(f_attr),
    [M_PEER_SRC] = M(f_peer_src),         [M_PEER] = M(f_peer),
    [M_ADDR_SRC] = M(f_addr_src),         [M_ADDR] = M(f_addr),
    [M_SOCK_SRC] = M(f_sock_src),         [M_SOCK] = M(f_sock),
    [M_PIPE] = M(f_pipe),                 [M_INTERNAL] = M(f_internal),
    [M_REQUEST] = M(f_request),           [M_TIMESTAMP] = M(f_timestamp),
    [M_HTTP] = M(f_http),                 [M_HDR_ENTRY] = M(f_pair),
    [M_EXT_ENTRY] = M(f_pair),            [M_STR_ENTRY] = M(f_str_entry),
    [M_HEADERMAP] = M(f_headermap),       [M_HEADERVALUE] = M(f_headervalue),
    [M_TLS] = M(f_tls),                   [M_METADATA] = M(f_metadata),
    [M_STRUCT_ENTRY] = M(f_struct_entry), [M_ANY_ENTRY] = M(f_any_entry),
    [M_ANY] = M(f_any),                   [M_STRUCT] = M(f_struct),
    [M_FIELDS_ENTRY] = M(f_fields_entry), [M_VALUE] = M(f_value),
    [M_LIST] = M(f_list),
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Reads a varint of at most |max| bytes. Returns its length, 0 when it does
 * not end within |max| bytes or before |end|. */
static size_t read_varint(const uint8_t *p, const uint8_t *end, size_t max, uint64_t *out)
{
    size_t avail = (size_t)(end - p);
    size_t limit = avail < max ? avail : max;
    uint64_t v = 0;

    for (size_t i = 0; i < limit; i++) {
        v |= (uint64_t)(p[i] & 0x7Fu) << (7u * i);
        if ((p[i] & 0x80u) == 0) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

static bool wire_type_ok(uint8_t kind, unsigned wt)
{
    switch (kind) {
    case K_VARINT:
        return wt == WT_VARINT;
    case K_I64:
        return wt == WT_I64;
    case K_LEN:
    case K_MSG:
        return wt == WT_LEN;
    default:
        return true;
    }
}

static const fdesc *find_field(const mdesc *md, uint64_t num)
{
    for (size_t i = 0; i < md->count; i++) {
        if (md->fields[i].num == num) {
            return &md->fields[i];
        }
    }
    return NULL;
}

/* |key| equals lower-case |name| ignoring ASCII case. */
static bool eq_ci(authz_slice key, const char *name, size_t name_len)
{
    if (key.len != name_len) {
        return false;
    }
    for (size_t i = 0; i < name_len; i++) {
        char c = key.ptr[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != name[i]) {
            return false;
        }
    }
    return true;
}

#define NAME(s) s, sizeof(s) - 1

/* Which looked-up header |key| names, or -1. The names differ in length,
 * so one comparison decides. */
static int header_index(authz_slice key)
{
    switch (key.len) {
    case 13:
        return eq_ci(key, NAME("authorization")) ? SRV_CHECKREQ_H_AUTHORIZATION : -1;
    case 12:
        return eq_ci(key, NAME("x-request-id")) ? SRV_CHECKREQ_H_REQUEST_ID : -1;
    case 15:
        return eq_ci(key, NAME("x-forwarded-for")) ? SRV_CHECKREQ_H_FORWARDED_FOR : -1;
    case 10:
        return eq_ci(key, NAME(":authority")) ? SRV_CHECKREQ_H_AUTHORITY : -1;
    case 7:
        return eq_ci(key, NAME(":method")) ? SRV_CHECKREQ_H_METHOD : -1;
    case 5:
        return eq_ci(key, NAME(":path")) ? SRV_CHECKREQ_H_PATH : -1;
    default:
        return -1;
    }
}

static void hit(srv_checkreq_hit *hits, authz_slice key, authz_slice value)
{
    int i = header_index(key);
    if (i >= 0) {
        hits[i].found = true;
        hits[i].value = value;
        hits[i].count++;
    }
}

typedef struct reader {
    srv_checkreq *out;
    bool in_socket; /* the source address oneof currently holds socket_address */
    /* srv_checkreq_find_headers: further names to count, NULL otherwise. */
    const authz_slice *names;
    size_t name_count;
    srv_checkreq_named *named;
} reader;

/* Counts |key| against the further names of srv_checkreq_find_headers. */
static void named_hit(reader *r, authz_slice key, authz_slice value, bool raw)
{
    for (size_t i = 0; i < r->name_count; i++) {
        if (!eq_ci(key, r->names[i].ptr, r->names[i].len)) {
            continue;
        }
        if (raw) {
            r->named[i].raw_count++;
            r->named[i].raw_value = value;
        } else {
            r->named[i].map_count++;
            r->named[i].map_value = value;
        }
    }
}

/* One instance of message |m| is complete: entries take part in lookups. */
static void commit(reader *r, unsigned m, const authz_slice *slot)
{
    if (r->name_count > 0 && (m == M_HDR_ENTRY || m == M_HEADERVALUE)) {
        named_hit(r, slot[0], m == M_HDR_ENTRY ? slot[1] : (slot[2].len > 0 ? slot[2] : slot[1]),
                  m == M_HEADERVALUE);
    }
    switch (m) {
    case M_HDR_ENTRY:
        hit(r->out->map_hdr, slot[0], slot[1]);
        break;
    case M_HEADERVALUE:
        hit(r->out->raw_hdr, slot[0], slot[2].len > 0 ? slot[2] : slot[1]);
        break;
    case M_EXT_ENTRY:
        if (authz_slice_eq(slot[0], AUTHZ_SLICE_LIT("cluster"))) {
            r->out->cluster_found = true;
            r->out->cluster = slot[1];
        }
        break;
    default:
        break;
    }
}

static void enter(reader *r, uint8_t act)
{
    authz_slice none = {NULL, 0};
    /* Switching the oneof clears it; a repeated socket_address merges. */
    if (act == A_ENTER_SOCKET && !r->in_socket) {
        r->out->peer_address = none;
        r->in_socket = true;
    } else if (act == A_ENTER_OTHER) {
        r->out->peer_address = none;
        r->in_socket = false;
    }
}

static void store(reader *r, uint8_t act, authz_slice v, authz_slice *slot)
{
    switch (act) {
    case A_SLOT0:
    case A_SLOT1:
    case A_SLOT2:
        slot[act - A_SLOT0] = v;
        break;
    case A_METHOD:
        r->out->method = v;
        break;
    case A_PATH:
        r->out->path = v;
        break;
    case A_HOST:
        r->out->host = v;
        break;
    case A_PEER:
        r->out->peer_address = v;
        break;
    case A_PRINCIPAL:
        r->out->peer_principal = v;
        break;
    case A_CERTIFICATE:
        r->out->peer_certificate = v;
        break;
    default:
        break;
    }
}

/* Walks one instance of message |m| in [p, end). Returns 0 or -1. */
static int walk(reader *r, const uint8_t *p, const uint8_t *end, unsigned m, unsigned depth)
{
    const mdesc *md = &messages[m];
    authz_slice slot[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};

    while (p < end) {
        uint64_t tag = 0;
        uint64_t v = 0;
        size_t n = read_varint(p, end, 5, &tag);
        const uint8_t *val = NULL;
        size_t val_len = 0;
        unsigned wt;
        const fdesc *f;

        if (n == 0 || tag > UINT32_MAX || (tag >> 3) == 0) {
            return -1;
        }
        p += n;
        wt = (unsigned)(tag & 7u);
        switch (wt) {
        case WT_VARINT:
            n = read_varint(p, end, 10, &v);
            if (n == 0) {
                return -1;
            }
            p += n;
            break;
        case WT_I64:
            if ((size_t)(end - p) < 8) {
                return -1;
            }
            p += 8;
            break;
        case WT_I32:
            if ((size_t)(end - p) < 4) {
                return -1;
            }
            p += 4;
            break;
        case WT_LEN:
            /* protobuf-c's limits: a 5-byte prefix and INT_MAX bytes. */
            n = read_varint(p, end, 5, &v);
            if (n == 0 || v > INT_MAX || v > (uint64_t)(end - p) - n) {
                return -1;
            }
            val = p + n;
            val_len = (size_t)v;
            p = val + val_len;
            break;
        default: /* groups (3, 4) and 6, 7 */
            return -1;
        }
        f = find_field(md, tag >> 3);
        if (f == NULL) {
            continue;
        }
        if (!wire_type_ok(f->kind, wt)) {
            return -1;
        }
        if (f->kind == K_MSG) {
            if (depth + 1 >= SRV_CHECKREQ_MAX_DEPTH) {
                return -1;
            }
            enter(r, f->act);
            if (walk(r, val, val + val_len, f->sub, depth + 1) != 0) {
                return -1;
            }
        } else if (f->kind == K_LEN && f->act != A_NONE) {
            authz_slice s = {(const char *)val, val_len};
            store(r, f->act, s, slot);
        }
    }
    commit(r, m, slot);
    return 0;
}

int srv_checkreq_parse(const uint8_t *buf, size_t len, srv_checkreq *out)
{
    reader r = {out, false, NULL, 0, NULL};

    memset(out, 0, sizeof(*out));
    if (len == 0) {
        return 0;
    }
    if (buf == NULL) {
        return -1;
    }
    return walk(&r, buf, buf + len, M_CHECKREQ, 0);
}

int srv_checkreq_find_headers(const uint8_t *buf, size_t len, const authz_slice *names, size_t count,
                              srv_checkreq_named *found)
{
    srv_checkreq scratch;
    reader r = {&scratch, false, names, count, found};

    memset(&scratch, 0, sizeof(scratch));
    memset(found, 0, count * sizeof(*found));
    if (len == 0) {
        return 0;
    }
    if (buf == NULL) {
        return -1;
    }
    return walk(&r, buf, buf + len, M_CHECKREQ, 0);
}

authz_slice srv_checkreq_header_value(const srv_checkreq *req, srv_checkreq_header h)
{
    return req->map_hdr[h].found ? req->map_hdr[h].value : req->raw_hdr[h].value;
}
