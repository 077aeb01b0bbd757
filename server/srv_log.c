#include "srv_log.h"

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authz_bearer.h"
#include "authz_reason.h"
#include "authz_time.h"

_Static_assert(SRV_LOG_LINE_MAX <= SRV_LOG_BATCH_BYTES, "a whole line fits an empty batch");

typedef struct out_buf {
    char *p;
    size_t size;
    size_t len;
    int overflow;
} out_buf;

static void put_raw(out_buf *o, const char *s, size_t n)
{
    if (o->len + n > o->size) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_cstr(out_buf *o, const char *s)
{
    put_raw(o, s, strlen(s));
}

static bool needs_escape(unsigned char c)
{
    return c == '"' || c == '\\' || c < 0x20 || c >= 0x7F;
}

/* Length of the prefix of |p| that needs no escape. Eight bytes a step: a
 * word is clean when no byte is below 0x20, has its high bit set, or equals
 * '"', '\\' or 0x7F (the "has a zero byte" test, exact for "any byte"); the
 * word that holds a hit is then scanned byte by byte. Every decision logs
 * about 200 bytes of values, so this is the log's hot loop. */
static size_t clean_prefix(const char *p, size_t n)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t highs = UINT64_C(0x8080808080808080);
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        uint64_t quote = w ^ (ones * '"');
        uint64_t backslash = w ^ (ones * '\\');
        uint64_t del = w ^ (ones * 0x7Fu);
        uint64_t hits = ((w - ones * 0x20u) & ~w) | w | ((quote - ones) & ~quote) |
                        ((backslash - ones) & ~backslash) | ((del - ones) & ~del);
        if ((hits & highs) != 0) {
            break;
        }
    }
    while (i < n && !needs_escape((unsigned char)p[i])) {
        i++;
    }
    return i;
}

/* A JSON string, escaped, cut short (never inside an escape) when the line
 * would exceed its budget; the closing quote is always reserved. The opening
 * quote is the caller's. */
static void put_json_rest(out_buf *o, authz_slice s, size_t budget)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = o->len - 1; /* the budget counts the opening quote */
    size_t i = 0;

    while (i < s.len && !o->overflow) {
        size_t run = clean_prefix(s.ptr + i, s.len - i);
        size_t room = budget - (o->len - start);
        put_raw(o, s.ptr + i, run < room ? run : room);
        if (run > room || i + run == s.len) {
            break;
        }
        i += run;
        unsigned char c = (unsigned char)s.ptr[i];
        char esc[6] = {'\\', (char)c};
        size_t n = 2;
        if (c != '"' && c != '\\') {
            /* Control and non-ASCII bytes are escaped one by one: the log
             * stays valid JSON even when a header carries invalid UTF-8. */
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0x0Fu];
            n = 6;
        }
        if (o->len - start + n > budget) {
            break;
        }
        put_raw(o, esc, n);
        i++;
    }
    put_raw(o, "\"", 1);
}

/* Escaped bytes per value: the eleven string fields at their budgets, their
 * names and the fixed parts stay within SRV_LOG_LINE_MAX, so no line is ever
 * dropped for its length (test_srv_log fills every field to check). */
#define VALUE_BUDGET 256u
#define PATH_BUDGET 768u
#define FIXED_PARTS                                                                                          \
    464u /* names, punctuation, time, decision, peer_binding, generation, duration, fingerprint */
_Static_assert(11u * VALUE_BUDGET + PATH_BUDGET + FIXED_PARTS <= SRV_LOG_LINE_MAX, "a full line fits");

/* ,"name": then the value: |name_open| is the literal ,"name":" (the
 * value's opening quote included), so a field costs one copy before its
 * value. An absent value is null. */
static void put_field_within(out_buf *o, const char *name_open, size_t name_open_len, authz_slice value,
                             size_t budget)
{
    if (value.ptr == NULL) {
        put_raw(o, name_open, name_open_len - 1);
        put_raw(o, "null", 4);
    } else {
        put_raw(o, name_open, name_open_len);
        put_json_rest(o, value, budget);
    }
}

#define FIELD_OPEN(name) ",\"" name "\":\""
#define PUT_FIELD(o, name, value)                                                                            \
    put_field_within(o, FIELD_OPEN(name), sizeof FIELD_OPEN(name) - 1, value, VALUE_BUDGET)
#define PUT_PATH_FIELD(o, value)                                                                             \
    put_field_within(o, FIELD_OPEN("path"), sizeof FIELD_OPEN("path") - 1, value, PATH_BUDGET)

/* |s| when non-empty, else the absent slice (logged as null). */
static authz_slice or_null(authz_slice s)
{
    authz_slice none = {NULL, 0};
    return s.len > 0 ? s : none;
}

/* The path without its query or fragment: they carry secrets (tokens,
 * signatures, session ids). */
static authz_slice path_without_query(authz_slice path)
{
    for (size_t i = 0; i < path.len; i++) {
        if (path.ptr[i] == '?' || path.ptr[i] == '#') {
            path.len = i;
            break;
        }
    }
    return path;
}

/* Writes |v| in decimal. */
static void put_u64(out_buf *o, uint64_t v)
{
    char buf[20];
    size_t n = sizeof buf;
    do {
        buf[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    put_raw(o, buf + n, sizeof buf - n);
}

/* Writes |v| as exactly |width| decimal digits. */
static void put_digits(out_buf *o, uint64_t v, size_t width)
{
    char buf[8];
    for (size_t i = width; i > 0; i--) {
        buf[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    put_raw(o, buf, width);
}

/* "2024-05-01T12:00:00.123Z" (authz_time_rfc3339 plus milliseconds), or
 * null for a clock outside years 1970-9999. */
static void put_time(out_buf *o, int64_t now_ns)
{
    char text[AUTHZ_TIME_RFC3339_SIZE];
    if (now_ns < 0 || !authz_time_rfc3339(now_ns / 1000000000, text)) {
        put_cstr(o, "null");
        return;
    }
    put_raw(o, "\"", 1);
    put_raw(o, text, AUTHZ_TIME_RFC3339_SIZE - 2); /* up to the Z */
    put_raw(o, ".", 1);
    put_digits(o, (uint64_t)(now_ns / 1000000 % 1000), 3);
    put_raw(o, "Z\"", 2);
}

/* The token's fingerprint: from the decision when the token cache had it,
 * else hashed here; a header that held no bearer credential is hashed whole
 * so a malformed one can still be correlated. */
static void put_token_hash(out_buf *o, const pol_request *req, const pol_decision *d)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[AUTHZ_BEARER_DIGEST_LEN];
    char text[2 + 2 * AUTHZ_BEARER_DIGEST_LEN];

    if (d->has_token_digest) {
        memcpy(digest, d->token_digest, sizeof digest);
    } else if (authz_bearer_digest(d->token.len > 0 ? d->token : req->authorization, digest) != 0) {
        put_cstr(o, "null");
        return;
    }
    text[0] = '"';
    for (size_t i = 0; i < AUTHZ_BEARER_DIGEST_LEN; i++) {
        text[1 + 2 * i] = hex[digest[i] >> 4];
        text[2 + 2 * i] = hex[digest[i] & 0x0Fu];
    }
    text[sizeof text - 1] = '"';
    put_raw(o, text, sizeof text);
}

authz_slice srv_log_decision_name(const pol_decision *d)
{
    if (d->allowed && d->shadow_denied) {
        return AUTHZ_SLICE_LIT("shadow_deny");
    }
    return d->allowed ? AUTHZ_SLICE_LIT("allow") : AUTHZ_SLICE_LIT("deny");
}

authz_reason srv_log_decision_reason(const pol_decision *d)
{
    if (d->allowed) {
        return d->shadow_denied ? d->shadow_status.reason : AUTHZ_REASON_OK;
    }
    return d->status.reason;
}

size_t srv_log_format(char *out, size_t size, int64_t now_ns, authz_slice request_id, const pol_request *req,
                      const pol_decision *d, uint64_t duration_us)
{
    out_buf o = {out, size > 0 ? size - 1 : 0, 0, 0};
    authz_slice none = {NULL, 0};
    authz_slice cluster = d->cluster != NULL ? d->cluster->name : or_null(req->cluster);
    authz_slice message = {d->status.message, strnlen(d->status.message, sizeof(d->status.message))};

    put_cstr(&o, "{\"time\":");
    put_time(&o, now_ns);
    PUT_FIELD(&o, "request_id", or_null(request_id));
    PUT_FIELD(&o, "cluster", cluster);
    PUT_FIELD(&o, "issuer_cluster", d->issuer_cluster != NULL ? d->issuer_cluster->name : none);
    PUT_FIELD(&o, "provider", d->provider != NULL ? d->provider->name : none);
    PUT_FIELD(&o, "subject", or_null(d->verified_subject));
    PUT_FIELD(&o, "source", or_null(req->source));
    PUT_FIELD(&o, "host", or_null(req->host));
    PUT_FIELD(&o, "method", or_null(req->method));
    PUT_PATH_FIELD(&o, or_null(path_without_query(req->path)));
    PUT_FIELD(&o, "decision", srv_log_decision_name(d));
    PUT_FIELD(&o, "reason", authz_slice_from_cstr(authz_reason_name(srv_log_decision_reason(d))));
    PUT_FIELD(&o, "rule", d->rule != NULL ? d->rule->name : none);
    PUT_FIELD(&o, "peer", or_null(d->peer));
    PUT_FIELD(&o, "peer_binding", authz_slice_from_cstr(pol_peer_result_name(d->peer_result)));
    PUT_FIELD(&o, "message", message);
    put_cstr(&o, ",\"generation\":");
    put_u64(&o, d->generation);
    put_cstr(&o, ",\"duration_us\":");
    put_u64(&o, duration_us);
    put_cstr(&o, ",\"token_sha256\":");
    put_token_hash(&o, req, d);
    put_cstr(&o, "}");
    if (o.overflow) {
        return 0;
    }
    out[o.len++] = '\n';
    return o.len;
}

void srv_log_flush(srv_log_batch *batch)
{
    size_t off = 0;
    while (off < batch->len) {
        ssize_t n = write(STDERR_FILENO, batch->data + off, batch->len - off);
        if (n <= 0) {
            break;
        }
        off += (size_t)n;
    }
    batch->len = 0;
}

void srv_log_decision(srv_log_batch *batch, authz_slice request_id, const pol_request *req,
                      const pol_decision *d, uint64_t duration_us)
{
    char line[SRV_LOG_LINE_MAX];
    struct timespec ts;
    size_t n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return;
    }
    n = srv_log_format(line, sizeof(line), (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, request_id, req, d,
                       duration_us);
    if (n == 0) {
        return;
    }
    if (batch->len + n > sizeof(batch->data)) {
        srv_log_flush(batch);
    }
    memcpy(batch->data + batch->len, line, n);
    batch->len += n;
}
